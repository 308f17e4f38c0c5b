//! Token buckets keyed by a string (API key id, source IP). In-process per node.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// `rate` tokens per second, holding at most `burst`.
pub struct Limiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    pub fn new(rate_per_sec: f64, burst: f64) -> Self {
        Self {
            rate: rate_per_sec,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn per_minute(n: u32) -> Self {
        Self::new(f64::from(n) / 60.0, f64::from(n))
    }

    /// Takes `n` tokens for `key`; on refusal, the seconds until they would be available.
    pub fn take(&self, key: &str, n: f64) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.buckets.lock();
        if map.len() > 100_000 {
            // Forget idle keys (full buckets) so a spray of keys cannot grow the map forever.
            let (rate, burst) = (self.rate, self.burst);
            map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let b = map.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= n {
            b.tokens -= n;
            Ok(())
        } else {
            Err((((n - b.tokens) / self.rate).ceil() as u64).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn refuses_beyond_the_burst_and_names_the_wait() {
        let l = super::Limiter::per_minute(3);
        for _ in 0..3 {
            assert!(l.take("ip", 1.0).is_ok());
        }
        assert_eq!(l.take("ip", 1.0), Err(20));
        assert!(l.take("other", 1.0).is_ok());
    }
}
