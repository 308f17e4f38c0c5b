//! Realistic attribution-event request bodies with a unique `event_id` per event, made by
//! patching a sequence number into a pre-serialized template (cheap enough that the generator
//! is not the bottleneck).

use bytes::Bytes;
use rand::{Rng, SeedableRng};

const ID_PREFIX: &str = "00000000-0000-4000-8000-";

pub(crate) struct BodyTemplate {
    bytes: Vec<u8>,
    /// Offsets of the 12 hex digits to patch, one per event.
    id_offsets: Vec<usize>,
}

impl BodyTemplate {
    /// A JSON array (or one object when `batch == 1`) of `batch` events for `app`.
    pub(crate) fn new(app: &str, batch: usize, seed: u64) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let kinds = [
            "app_open",
            "ad_click",
            "ad_impression",
            "install",
            "purchase",
            "session_start",
            "level_up",
        ];
        let sources = [
            "google", "facebook", "tiktok", "unity", "applovin", "organic",
        ];
        let mut out = String::new();
        if batch > 1 {
            out.push('[');
        }
        for i in 0..batch {
            if i > 0 {
                out.push(',');
            }
            let kind = kinds[rng.gen_range(0..kinds.len())];
            let user = rng.gen_range(0..1_000_000u32);
            let platform = ["ios", "android", "web"][rng.gen_range(0..3)];
            let mut e = serde_json::json!({
                "event_type": kind,
                "app_id": app,
                "device_id": format!("d-{:08x}", rng.gen::<u32>()),
                "user_id": format!("u-{user}"),
                "session_id": format!("s-{:08x}", rng.gen::<u32>()),
                "platform": platform,
                "app_version": "4.12.0",
                "timestamp": 1_763_700_000_000i64 + rng.gen_range(0..86_400_000i64),
                "attribution": {
                    "campaign": format!("summer_sale_{}", rng.gen_range(0..40)),
                    "source": sources[rng.gen_range(0..sources.len())],
                    "medium": "cpc",
                },
                "ip": format!("10.{}.{}.{}", rng.gen::<u8>(), rng.gen::<u8>(), rng.gen::<u8>()),
                "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15",
                "event_id": format!("{ID_PREFIX}000000000000"),
            });
            if kind == "purchase" {
                e["event_data"] = serde_json::json!({"revenue": rng.gen_range(99..9999) as f64 / 100.0, "currency": "USD", "sku": "gems_500"});
            } else if kind == "level_up" {
                e["event_data"] =
                    serde_json::json!({"level": rng.gen_range(1..80), "character": "mage"});
            }
            out.push_str(&e.to_string());
        }
        if batch > 1 {
            out.push(']');
        }
        let bytes = out.into_bytes();
        let needle = ID_PREFIX.as_bytes();
        let id_offsets: Vec<usize> = bytes
            .windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle)
            .map(|(i, _)| i + needle.len())
            .collect();
        assert_eq!(id_offsets.len(), batch);
        Self { bytes, id_offsets }
    }

    pub(crate) fn events(&self) -> usize {
        self.id_offsets.len()
    }

    /// A body whose event ids are `{run:08x}-0000-4000-8000-{base+i:012x}` for event `i`:
    /// `run` tells runs apart, `base` (< 2^48) connections and requests within a run.
    pub(crate) fn render(&self, run: u32, base: u64) -> Bytes {
        let mut b = self.bytes.clone();
        for (i, off) in self.id_offsets.iter().enumerate() {
            put_hex(&mut b[off - ID_PREFIX.len()..][..8], u64::from(run));
            put_hex(&mut b[*off..][..12], base + i as u64);
        }
        Bytes::from(b)
    }
}

/// Writes the low `out.len()` hex digits of `v` into `out`, most significant first.
fn put_hex(out: &mut [u8], v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = out.len();
    for (d, slot) in out.iter_mut().rev().enumerate() {
        *slot = HEX[((v >> (4 * d)) & 0xf) as usize];
    }
    debug_assert!(
        n == 16 || v >> (4 * n) == 0,
        "{v:#x} does not fit {n} hex digits"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn ids(body: &[u8]) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_slice(body).expect("valid JSON");
        let events = match v {
            serde_json::Value::Array(a) => a,
            one => vec![one],
        };
        events
            .iter()
            .map(|e| e["event_id"].as_str().expect("event_id").to_string())
            .collect()
    }

    /// Every event the generator sends in a run, across connections and requests, and across
    /// two runs, has its own id (an earlier layout overlapped the connection and time bits).
    #[test]
    fn event_ids_are_unique_across_connections_requests_and_runs() {
        for batch in [1, 7] {
            let t = BodyTemplate::new("app", batch, 1);
            let mut seen = HashSet::new();
            for run in [0x1234_5600, 0x1234_5601] {
                for c in 0..64u64 {
                    for seq in 0..50u64 {
                        let base = super::super::loadgen::id_base(c) + seq * batch as u64;
                        for id in ids(&t.render(run, base)) {
                            assert!(seen.insert(id.clone()), "duplicate id {id}");
                        }
                    }
                }
            }
            assert_eq!(seen.len(), 2 * 64 * 50 * batch);
        }
    }
}
