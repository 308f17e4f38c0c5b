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

    /// A body whose event ids are `base`, `base+1`, …  (`base` makes them unique per run).
    pub(crate) fn render(&self, base: u64) -> Bytes {
        let mut b = self.bytes.clone();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, off) in self.id_offsets.iter().enumerate() {
            let v = base + i as u64;
            for d in 0..12 {
                b[off + 11 - d] = HEX[((v >> (4 * d)) & 0xf) as usize];
            }
        }
        Bytes::from(b)
    }
}
