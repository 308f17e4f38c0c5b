//! How many distinct source addresses use each API key, per window, on this node: a key seen
//! from far more addresses than usual is reported once per window as an audit record
//! (`apikey.many_sources`), which the alert rules turn into an alert. Counted per node (ingest
//! is not audited, and nodes do not share these counts); the client address is the one
//! [`super::Security::client_ip`] establishes, so behind a trusted proxy it is the
//! `X-Forwarded-For` hop.

use std::collections::{HashMap, HashSet};

use parking_lot::Mutex;

#[derive(Default)]
struct KeyWindow {
    start_ms: i64,
    sources: HashSet<String>,
    /// Moving average of previous windows' distinct addresses; `None` before the first ended.
    usual: Option<f64>,
    reported: bool,
}

pub struct KeySources {
    window_ms: i64,
    min_sources: u64,
    factor: f64,
    keys: Mutex<HashMap<String, KeyWindow>>,
}

/// A key that crossed its threshold in the current window.
#[derive(Debug, Clone, PartialEq)]
pub struct Unusual {
    pub sources: usize,
    pub usual: Option<f64>,
}

/// Most keys tracked at once (keys are created by admins; this bounds memory regardless).
const MAX_KEYS: usize = 100_000;

impl KeySources {
    pub fn new(window_secs: u64, min_sources: u64, factor: f64) -> Self {
        Self {
            window_ms: (window_secs.max(1) as i64).saturating_mul(1000),
            min_sources: min_sources.max(1),
            factor: factor.max(1.0),
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn threshold(&self, usual: Option<f64>) -> usize {
        let t = usual.map_or(self.min_sources as f64, |u| {
            (self.factor * u).max(self.min_sources as f64)
        });
        t.ceil() as usize
    }

    /// Notes that `key` was used from `source` at `now_ms`; `Some` the first time in a window
    /// that the key's distinct sources exceed the threshold.
    pub fn observe(&self, key: &str, source: &str, now_ms: i64) -> Option<Unusual> {
        let mut keys = self.keys.lock();
        if keys.len() >= MAX_KEYS && !keys.contains_key(key) {
            let cutoff = now_ms - 2 * self.window_ms;
            keys.retain(|_, w| w.start_ms > cutoff);
            if keys.len() >= MAX_KEYS {
                return None;
            }
        }
        // Looked up by `&str`: no allocation per request for a known key.
        if !keys.contains_key(key) {
            keys.insert(
                key.to_string(),
                KeyWindow {
                    start_ms: now_ms,
                    ..KeyWindow::default()
                },
            );
        }
        let w = keys.get_mut(key)?;
        if now_ms - w.start_ms >= self.window_ms {
            let n = w.sources.len() as f64;
            w.usual = Some(w.usual.map_or(n, |u| 0.7 * u + 0.3 * n));
            w.sources.clear();
            w.reported = false;
            w.start_ms = now_ms;
        }
        let limit = self.threshold(w.usual);
        // Counting stops just past the limit: memory stays bounded per key.
        if w.sources.len() <= limit && !w.sources.contains(source) {
            w.sources.insert(source.to_string());
        }
        if !w.reported && w.sources.len() > limit {
            w.reported = true;
            return Some(Unusual {
                sources: w.sources.len(),
                usual: w.usual,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_new_sources_are_reported_once_per_window_and_a_steady_crowd_is_usual() {
        let k = KeySources::new(60, 10, 5.0);
        let mut reports = 0;
        for i in 0..100 {
            reports += usize::from(k.observe("key1", &format!("10.0.0.{i}"), 1_000).is_some());
        }
        assert_eq!(reports, 1);
        // The same source over and over: nothing.
        for t in 0..1000 {
            assert!(k.observe("key2", "10.0.0.1", t).is_none());
        }
        // A key that always has 40 sources: after the first window, 40 is its usual.
        let k = KeySources::new(60, 10, 5.0);
        for w in 0..5i64 {
            let mut got = 0;
            for i in 0..40 {
                got += usize::from(
                    k.observe("sdk", &format!("10.1.0.{i}"), w * 60_000 + i)
                        .is_some(),
                );
            }
            assert_eq!(got, usize::from(w == 0), "window {w}");
        }
    }
}
