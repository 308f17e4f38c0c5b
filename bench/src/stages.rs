//! `unmogrowp-bench stages`: the CPU cost per event of each stage of the durable ingest path,
//! on one thread, without HTTP, the log or a second process.
//!
//! End-to-end runs on this machine class move ±15% between runs, more than most single
//! changes to one stage. This measures the stages the appliance adds to parsing (encoding for
//! the log, decoding and applying to the memtable, dedupe and rollups, the Parquet flush) on
//! the same request bodies the load generator sends, so a change to one stage can be compared
//! in isolation. Each round ingests fresh event ids into the same engine and flushes; the
//! best and median round are reported (the minimum is the least disturbed by the VM).

use std::time::{Duration, Instant};

use anyhow::Context;
use engine::{ApplyBatch, Engine, EngineConfig, EventBatch};
use unmogrowp_server::ingest::{parse_events, IngestLimits, RequestContext};

use crate::body::BodyTemplate;

pub(crate) struct StagesSpec {
    /// Events per request body.
    pub batch: usize,
    /// Events per round.
    pub events: usize,
    /// Request bodies per log entry (the appliance coalesces concurrent requests).
    pub per_entry: usize,
    pub rounds: usize,
    /// Odd rounds parse with every privacy transform of issue 29 on (ip truncate, user_id
    /// hash, device_id encrypt), even rounds with all off: both in one run.
    pub privacy: bool,
}

/// Microseconds per event of each stage, one value per round.
#[derive(Default)]
struct Rounds {
    parse: Vec<f64>,
    parse_private: Vec<f64>,
    encode: Vec<f64>,
    apply: Vec<f64>,
    flush: Vec<f64>,
}

pub(crate) fn run(spec: &StagesSpec) -> anyhow::Result<()> {
    let batch = spec.batch.max(1);
    let template = BodyTemplate::new("bench_app", batch, 42 + batch as u64);
    let limits = IngestLimits::default();
    let ctx = RequestContext {
        received_at_ms: 1_763_700_000_000,
        peer_ip: Some("127.0.0.1".into()),
        user_agent: None,
        key_app_id: Some("bench_app".into()),
        strict_fields: false,
        privacy: None,
        oldest_ms: None,
    };
    let private = RequestContext {
        privacy: Some(std::sync::Arc::new(
            auth::AppPrivacy::generate(auth::Privacy {
                ip: auth::privacy::IpMode::Truncate,
                user_id: auth::privacy::UserIdMode::Hash,
                device_id: auth::privacy::DeviceIdMode::Encrypt,
                ..auth::Privacy::default()
            })
            .keyed(),
        )),
        ..ctx.clone()
    };
    let dir = tempfile::tempdir()?;
    // Rotation only when asked: every round's rows are flushed together, as one memtable.
    let cfg = EngineConfig {
        flush_rows: usize::MAX,
        flush_bytes: usize::MAX,
        ..EngineConfig::default()
    };
    let engine = Engine::open(dir.path(), cfg)?;
    let mut index = 1u64;
    let mut rounds = Rounds::default();
    let requests = (spec.events / batch).max(1);
    for round in 0..spec.rounds {
        let bodies: Vec<_> = (0..requests)
            .map(|r| template.render(round as u32, (r * batch) as u64))
            .collect();
        let (mut parse, mut encode) = (Duration::ZERO, Duration::ZERO);
        let mut encoded = Vec::with_capacity(bodies.len());
        let transformed = spec.privacy && round % 2 == 1;
        let ctx = if transformed { &private } else { &ctx };
        for body in &bodies {
            let t0 = Instant::now();
            let (events, rejected) =
                parse_events(body, Some("application/json"), None, &limits, ctx)
                    .map_err(|e| anyhow::anyhow!("bench body rejected: {e:?}"))?;
            anyhow::ensure!(rejected.is_empty(), "bench events rejected: {rejected:?}");
            let t1 = Instant::now();
            encoded.push(EventBatch::encode(&events)?);
            let t2 = Instant::now();
            drop(events);
            parse += t1 - t0;
            encode += t2 - t1;
        }
        let t0 = Instant::now();
        let mut stored = 0;
        for entry in encoded.chunks(spec.per_entry.max(1)) {
            let mut entries = Vec::with_capacity(entry.len());
            for b in entry {
                entries.push((index, b.events()?));
            }
            let outcomes = engine.apply(ApplyBatch {
                entries,
                last_index: index,
                checkpoint: serde_json::Value::Null,
            })?;
            stored += outcomes.iter().map(|o| o.accepted).sum::<u64>();
            index += 1;
        }
        let apply = t0.elapsed();
        let n = requests * batch;
        anyhow::ensure!(stored == n as u64, "stored {stored} of {n} events");
        let t0 = Instant::now();
        engine.flush().context("flush")?;
        let flush = t0.elapsed();
        let us = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
        if transformed {
            rounds.parse_private.push(us(parse));
        } else {
            rounds.parse.push(us(parse));
        }
        rounds.encode.push(us(encode));
        rounds.apply.push(us(apply));
        rounds.flush.push(us(flush));
        eprintln!(
            "round {round}: {n} events; us/event parse{} {:.3} encode {:.3} decode+apply {:.3} flush {:.3}",
            if transformed { " (privacy transforms)" } else { "" },
            us(parse),
            us(encode),
            us(apply),
            us(flush)
        );
    }
    println!("| stage | best us/event | median us/event |");
    println!("|---|---|---|");
    for (name, v) in [
        (
            "parse + validate (the parse-only ceiling's work)",
            &mut rounds.parse,
        ),
        (
            "parse + validate with ip truncate, user_id hash, device_id encrypt (--privacy)",
            &mut rounds.parse_private,
        ),
        ("encode for the log", &mut rounds.encode),
        (
            "decode + apply (dedupe, memtable, rollups)",
            &mut rounds.apply,
        ),
        (
            "flush to Parquet (sort, gather, encode, fsync)",
            &mut rounds.flush,
        ),
    ] {
        if v.is_empty() {
            continue;
        }
        v.sort_by(f64::total_cmp);
        println!("| {name} | {:.3} | {:.3} |", v[0], v[v.len() / 2]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every round stores all of its events (fresh ids per round) and flushes them.
    #[test]
    fn every_round_stores_and_flushes_its_events() {
        run(&StagesSpec {
            batch: 10,
            events: 200,
            per_entry: 3,
            rounds: 2,
            privacy: true,
        })
        .expect("stages run");
    }
}
