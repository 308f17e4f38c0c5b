//! A realistic attribution dataset, posted through the public ingest API: `apps` apps with
//! Zipf-distributed traffic, Zipf-distributed users per app, campaigns and sources, events
//! spread over `days` days, a funnel of event types (impressions, clicks, installs, opens,
//! sessions, purchases with revenue). Deterministic for a seed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const SOURCES: [(&str, &str); 6] = [
    ("google", "cpc"),
    ("facebook", "social"),
    ("tiktok", "social"),
    ("applovin", "network"),
    ("unity", "network"),
    ("organic", "none"),
];
/// Event types and their weights: a funnel from impressions to purchases.
const KINDS: [(&str, u32); 8] = [
    ("ad_impression", 30),
    ("ad_click", 12),
    ("install", 4),
    ("app_open", 20),
    ("session_start", 18),
    ("level_up", 8),
    ("add_to_cart", 5),
    ("purchase", 3),
];
const PLATFORMS: [&str; 3] = ["ios", "android", "web"];

pub(crate) struct Spec {
    pub(crate) addr: SocketAddr,
    pub(crate) events: u64,
    pub(crate) apps: usize,
    pub(crate) users_per_app: u64,
    pub(crate) days: i64,
    /// End of the time range (ms since the epoch); events fall in the `days` before it.
    pub(crate) end_ms: i64,
    pub(crate) batch: usize,
    pub(crate) connections: usize,
    pub(crate) seed: u64,
}

/// Zipf(s = 1.1) weights for ranks 1..=n.
fn zipf(n: usize) -> WeightedIndex<f64> {
    WeightedIndex::new((1..=n).map(|k| 1.0 / (k as f64).powf(1.1))).expect("weights")
}

pub(crate) struct Gen {
    rng: StdRng,
    app_w: WeightedIndex<f64>,
    user_w: WeightedIndex<f64>,
    kind_w: WeightedIndex<u32>,
    campaign_w: WeightedIndex<f64>,
    apps: Vec<String>,
    spec_days: i64,
    end_ms: i64,
}

impl Gen {
    pub(crate) fn new(spec: &Spec, stream: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(spec.seed ^ (stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))),
            app_w: zipf(spec.apps),
            user_w: zipf(spec.users_per_app as usize),
            kind_w: WeightedIndex::new(KINDS.iter().map(|k| k.1)).expect("weights"),
            campaign_w: zipf(40),
            apps: app_ids(spec.apps),
            spec_days: spec.days,
            end_ms: spec.end_ms,
        }
    }

    /// One event's facts: the shared part of the posted JSON and the directly written row.
    pub(crate) fn draw(&mut self, seq: u64, ts: Option<i64>) -> Draw {
        let app = self.app_w.sample(&mut self.rng);
        let user = self.user_w.sample(&mut self.rng);
        let kind = KINDS[self.kind_w.sample(&mut self.rng)].0;
        // A user keeps one platform and mostly one acquisition source.
        let platform = PLATFORMS[user % 3];
        let (source, medium) = SOURCES[(user * 7 + self.rng.gen_range(0..2)) % SOURCES.len()];
        let campaign = self.campaign_w.sample(&mut self.rng);
        let span = self.spec_days * 86_400_000;
        let ts = ts.unwrap_or_else(|| self.end_ms - span + self.rng.gen_range(0..span));
        let revenue = (kind == "purchase")
            .then(|| [0.99, 1.99, 4.99, 9.99, 19.99, 49.99][self.rng.gen_range(0..6)]);
        let extra = match kind {
            "purchase" => self.rng.gen_range(0..20),
            "level_up" => self.rng.gen_range(1..60),
            _ => 0,
        };
        Draw {
            seq,
            app,
            user,
            kind,
            platform,
            source,
            medium,
            campaign,
            ts,
            revenue,
            extra,
        }
    }

    fn event(&mut self, seq: u64) -> Value {
        let d = self.draw(seq, None);
        let user = d.user;
        let mut e = json!({
            "event_id": d.event_id(),
            "app_id": self.apps[d.app],
            "event_type": d.kind,
            "user_id": format!("u{user}"),
            "device_id": format!("d{user}-{}", user % 2),
            "session_id": format!("s{user}-{}", d.ts / 1_800_000),
            "platform": d.platform,
            "app_version": format!("{}.{}.0", 1 + user % 3, user % 10),
            "timestamp": d.ts,
            "ip": format!("10.{}.{}.{}", user % 250, (user / 250) % 250, user % 7),
        });
        if d.source != "organic" {
            e["attribution"] = json!({
                "campaign": format!("{}_campaign_{}", d.source, d.campaign),
                "source": d.source,
                "medium": d.medium,
                "content": format!("creative_{}", d.campaign % 5),
            });
        }
        if let Some(revenue) = d.revenue {
            // Revenue and currency travel in event_data (the SDK contract); the appliance
            // also stores them as columns.
            e["event_data"] =
                json!({"revenue": revenue, "currency": "USD", "sku": format!("sku_{}", d.extra)});
        } else if d.kind == "level_up" {
            e["event_data"] = json!({"level": d.extra.to_string()});
        }
        e
    }
}

/// What [`Gen::draw`] decided about one event.
pub(crate) struct Draw {
    pub(crate) seq: u64,
    pub(crate) app: usize,
    pub(crate) user: usize,
    pub(crate) kind: &'static str,
    pub(crate) platform: &'static str,
    pub(crate) source: &'static str,
    pub(crate) medium: &'static str,
    pub(crate) campaign: usize,
    pub(crate) ts: i64,
    pub(crate) revenue: Option<f64>,
    /// The SKU of a purchase, the level of a level-up.
    pub(crate) extra: u32,
}

impl Draw {
    pub(crate) fn event_id(&self) -> String {
        format!("00000000-0000-4000-8000-{:012x}", self.seq)
    }

    /// The row the appliance would store for the posted event (ingest also copies revenue
    /// and currency from `event_data` into their columns).
    pub(crate) fn stored(&self, app_id: &str, received_at_ms: i64) -> engine::Event {
        let user = self.user;
        let organic = self.source == "organic";
        let attr = |v: String| (!organic).then_some(v);
        engine::Event {
            timestamp_ms: self.ts,
            app_id: app_id.to_string(),
            event_type: self.kind.to_string(),
            user_id: Some(format!("u{user}")),
            session_id: Some(format!("s{user}-{}", self.ts / 1_800_000)),
            device_id: format!("d{user}-{}", user % 2),
            platform: self.platform.to_string(),
            app_version: Some(format!("{}.{}.0", 1 + user % 3, user % 10)),
            attribution: engine::Attribution {
                campaign: attr(format!("{}_campaign_{}", self.source, self.campaign)),
                source: attr(self.source.to_string()),
                medium: attr(self.medium.to_string()),
                content: attr(format!("creative_{}", self.campaign % 5)),
                term: None,
            },
            event_data: match (self.revenue, self.kind) {
                (Some(r), _) => vec![
                    ("currency".to_string(), "USD".to_string()),
                    ("revenue".to_string(), format!("{r}")),
                    ("sku".to_string(), format!("sku_{}", self.extra)),
                ],
                (None, "level_up") => vec![("level".to_string(), self.extra.to_string())],
                _ => Vec::new(),
            },
            revenue: self.revenue,
            currency: self.revenue.map(|_| "USD".to_string()),
            ip: Some(format!(
                "10.{}.{}.{}",
                user % 250,
                (user / 250) % 250,
                user % 7
            )),
            user_agent: None,
            received_at_ms,
            event_id: Some(self.event_id()),
        }
    }
}

pub(crate) fn app_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("app_{i:02}")).collect()
}

/// Posts the dataset; returns events accepted.
pub(crate) fn run(spec: Spec, keys: Vec<String>) -> anyhow::Result<u64> {
    let spec = Arc::new(spec);
    let keys = Arc::new(keys);
    let accepted = Arc::new(AtomicU64::new(0));
    let next_batch = Arc::new(AtomicU64::new(0));
    let batches = spec.events.div_ceil(spec.batch as u64);
    let t0 = Instant::now();
    let workers: Vec<_> = (0..spec.connections)
        .map(|w| {
            let (spec, keys, accepted, next_batch) = (
                spec.clone(),
                keys.clone(),
                accepted.clone(),
                next_batch.clone(),
            );
            std::thread::spawn(move || -> anyhow::Result<()> {
                let mut gen = Gen::new(&spec, w as u64);
                loop {
                    let b = next_batch.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        return Ok(());
                    }
                    // One app per request (ingest keys are per app): regroup by app.
                    let first = b * spec.batch as u64;
                    let last = (first + spec.batch as u64).min(spec.events);
                    let mut by_app: Vec<Vec<Value>> = vec![Vec::new(); spec.apps];
                    for seq in first..last {
                        let e = gen.event(seq);
                        let i = e["app_id"]
                            .as_str()
                            .and_then(|a| a[4..].parse::<usize>().ok())
                            .unwrap_or(0);
                        by_app[i].push(e);
                    }
                    for (i, events) in by_app.into_iter().enumerate() {
                        if events.is_empty() {
                            continue;
                        }
                        let body = serde_json::to_vec(&events)?;
                        let (status, answer) = crate::http_post(
                            spec.addr,
                            "/v1/events",
                            &[("x-api-key", &keys[i])],
                            &body,
                        )?;
                        anyhow::ensure!(status == 202, "ingest failed: {status} {answer}");
                        accepted
                            .fetch_add(answer["accepted"].as_u64().unwrap_or(0), Ordering::Relaxed);
                    }
                    if b % 500 == 0 {
                        let done = accepted.load(Ordering::Relaxed);
                        eprintln!("  {done} events in {:.0} s", t0.elapsed().as_secs_f64());
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    Ok(accepted.load(Ordering::Relaxed))
}
