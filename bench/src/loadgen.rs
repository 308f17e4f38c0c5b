//! Open-loop HTTP/1.1 load generator. Each connection sends on a fixed schedule; latency is
//! measured from the *intended* send time, so a stalled server is charged for the queueing it
//! causes (no coordinated omission). With `rate = None` every connection sends back-to-back
//! (saturation: measures the maximum rate).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;

use crate::body::BodyTemplate;

#[derive(Debug, Clone)]
pub(crate) struct LoadSpec {
    pub(crate) addr: String,
    pub(crate) path: String,
    pub(crate) connections: usize,
    /// Requests per second over all connections; `None` = as fast as possible.
    pub(crate) rate: Option<f64>,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    /// Sent as `X-Api-Key` (the appliance requires one; the ceilings ignore it).
    pub(crate) api_key: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct LoadResult {
    pub(crate) requests: u64,
    pub(crate) events: u64,
    pub(crate) errors: u64,
    pub(crate) elapsed: Duration,
    pub(crate) hist: Histogram<u64>,
}

impl LoadResult {
    pub(crate) fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
    pub(crate) fn requests_per_sec(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    /// Latency quantile in milliseconds.
    pub(crate) fn ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
}

static RUN_ID: AtomicU64 = AtomicU64::new(0);

/// The first event-id sequence number of connection `c` (< 256): connections own disjoint
/// ranges of 2^40 ids within the 48-bit field.
pub(crate) fn id_base(c: u64) -> u64 {
    c << 40
}

pub(crate) async fn run(
    spec: &LoadSpec,
    template: Arc<BodyTemplate>,
) -> anyhow::Result<LoadResult> {
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1,
        120_000_000,
        3,
    )?));
    let counters = Arc::new((AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)));
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.duration;
    // Unique event ids: the run (time in seconds and a counter) fills the id's first 32 bits,
    // the connection and its request sequence the last 48 (see `id_base`).
    let run = ((std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as u32)
        << 8)
        | (RUN_ID.fetch_add(1, Ordering::Relaxed) as u32 & 0xff);
    anyhow::ensure!(spec.connections <= 256, "at most 256 connections");
    let mut tasks = Vec::new();
    for c in 0..spec.connections {
        let spec = spec.clone();
        let (hist, counters, template) = (hist.clone(), counters.clone(), template.clone());
        let id_base = id_base(c as u64);
        tasks.push(tokio::spawn(async move {
            connection(
                spec,
                c,
                start,
                measure_from,
                end,
                hist,
                counters,
                template,
                run,
                id_base,
            )
            .await
        }));
    }
    for t in tasks {
        t.await??;
    }
    let h = hist.lock().clone();
    Ok(LoadResult {
        requests: counters.0.load(Ordering::Relaxed),
        events: counters.1.load(Ordering::Relaxed),
        errors: counters.2.load(Ordering::Relaxed),
        elapsed: spec.duration,
        hist: h,
    })
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    spec: LoadSpec,
    c: usize,
    start: Instant,
    measure_from: Instant,
    end: Instant,
    hist: Arc<Mutex<Histogram<u64>>>,
    counters: Arc<(AtomicU64, AtomicU64, AtomicU64)>,
    template: Arc<BodyTemplate>,
    run: u32,
    id_base: u64,
) -> anyhow::Result<()> {
    let stream = tokio::net::TcpStream::connect(&spec.addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let interval = spec
        .rate
        .map(|r| Duration::from_secs_f64(spec.connections as f64 / r));
    // Spread connections over one interval so they do not fire in lockstep.
    let mut next = start
        + interval.map_or(Duration::ZERO, |i| {
            i.mul_f64(c as f64 / spec.connections as f64)
        });
    let mut local = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let mut seq: u64 = 0;
    let n_events = template.events() as u64;
    let mut last_err = None;
    let mut reported = false;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if interval.is_some() && next > now {
            tokio::time::sleep_until(next.into()).await;
        }
        let intended = if interval.is_some() {
            next
        } else {
            Instant::now()
        };
        anyhow::ensure!(
            seq * n_events < 1 << 40,
            "event id space of a connection exhausted"
        );
        let body = template.render(run, id_base + seq * n_events);
        seq += 1;
        let mut req = Request::post(&spec.path);
        if let Some(k) = &spec.api_key {
            req = req.header("x-api-key", k.as_str());
        }
        let req = req
            .header("host", "bench")
            .header("content-type", "application/json")
            .body(Full::new(body))?;
        let ok = match sender.send_request(req).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let ok = status == 202 || status == 200;
                if !ok && !reported {
                    reported = true;
                    eprintln!(
                        "connection {c}: HTTP {status}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(300)])
                    );
                }
                ok
            }
            Err(e) => {
                last_err = Some(e.to_string());
                false
            }
        };
        let done = Instant::now();
        if intended >= measure_from && done <= end {
            if ok {
                counters.0.fetch_add(1, Ordering::Relaxed);
                counters.1.fetch_add(n_events, Ordering::Relaxed);
                local.saturating_record((done - intended).as_micros() as u64);
            } else {
                counters.2.fetch_add(1, Ordering::Relaxed);
            }
        }
        if !ok && last_err.is_some() {
            // The connection is broken; stop this connection rather than spin.
            break;
        }
        if let Some(i) = interval {
            next += i;
        }
    }
    hist.lock().add(&local)?;
    if let Some(e) = last_err {
        eprintln!("connection {c}: {e}");
    }
    Ok(())
}
