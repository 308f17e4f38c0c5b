//! `unmogrowp-bench generate`: the dataset of `unmogrowp-bench dataset` (same distributions),
//! written straight into the engine's segment format instead of through the API, then made a
//! node's data directory (`backup::restore::from_table`), so the benchmarks can run on
//! hundreds of millions of events without ingesting for hours. Events are generated in time
//! order, day by day (as they would have arrived), in log entries of `entry_events`.

use std::path::PathBuf;
use std::time::Instant;

use engine::{ApplyBatch, Engine, EngineConfig, Event};
use unmogrowp_server::config::ServerConfig;

use crate::dataset::{app_ids, Gen, Spec};

pub(crate) struct Plan {
    pub(crate) data_dir: PathBuf,
    pub(crate) http_addr: std::net::SocketAddr,
    pub(crate) events: u64,
    pub(crate) apps: usize,
    pub(crate) users_per_app: u64,
    pub(crate) days: i64,
    pub(crate) seed: u64,
    pub(crate) end_ms: i64,
}

const DAY_MS: i64 = 86_400_000;
/// Events per log entry (the appliance's entries hold a group commit's worth).
const ENTRY_EVENTS: usize = 20_000;

pub(crate) async fn run(plan: Plan) -> anyhow::Result<()> {
    let spec = Spec {
        addr: plan.http_addr,
        events: plan.events,
        apps: plan.apps,
        users_per_app: plan.users_per_app,
        days: plan.days,
        end_ms: plan.end_ms,
        batch: ENTRY_EVENTS,
        connections: 1,
        seed: plan.seed,
    };
    anyhow::ensure!(
        std::fs::read_dir(&plan.data_dir).map_or(true, |mut d| d.next().is_none()),
        "{} is not empty",
        plan.data_dir.display()
    );
    let parent = plan
        .data_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&parent)?;
    let work = tempfile::Builder::new()
        .prefix(".generate-")
        .tempdir_in(&parent)?;
    let t0 = Instant::now();
    let cfg = EngineConfig::default();
    // Each day's memtable goes to the flush thread at the day's end (`tick` rotates it when
    // older than the interval, here at once) while this thread applies the next day: writing
    // segments overlaps applying instead of following it (`flush` would wait).
    let engine = Engine::open(
        work.path(),
        EngineConfig {
            flush_interval_secs: 0,
            ..cfg.clone()
        },
    )?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(8);
    let days = plan_days(&plan);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        // Events are drawn on a thread of their own, a log entry's worth at a time.
        scope.spawn(move || draw_days(&days, &spec, tx));
        let mut index = 0u64;
        for chunk in rx {
            match chunk {
                Chunk::Entry(events) => {
                    index += 1;
                    apply(&engine, index, &events)?;
                    // At most a few memtables wait for the flush thread.
                    while engine.memtable_rows() > IN_FLIGHT_ROWS {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                }
                Chunk::DayEnd { day, seq } => {
                    // As a node does every second: the day's rows go to a segment, and days
                    // older than the dedupe window and step days beyond the memory budget
                    // leave memory once flushed, so a 500M-event run fits.
                    engine.tick()?;
                    eprintln!(
                        "  day {}/{}: {seq} events, {:.0} s",
                        day + 1,
                        plan.days,
                        t0.elapsed().as_secs_f64()
                    );
                }
            }
        }
        Ok(())
    })?;
    engine.flush()?;
    let root = engine.root();
    drop(engine);
    let written = t0.elapsed().as_secs_f64();
    let mut server = ServerConfig {
        data_dir: std::path::absolute(&plan.data_dir)?,
        http_addr: plan.http_addr,
        ..ServerConfig::default()
    };
    server.engine = cfg;
    let report = unmogrowp_server::backup::restore::from_table(&server, &root).await?;
    println!(
        "{} events in {} segments written in {written:.1} s ({:.0} events/s); node data directory {} (log continues after {}); start it with `unmogrowp serve --data-dir {}` and create the apps app_00… to read them in the dashboard",
        report.rows,
        report.segments,
        report.rows as f64 / written,
        report.data_dir,
        report.log_index,
        report.data_dir
    );
    Ok(())
}

/// What the drawing thread hands the applying one.
enum Chunk {
    /// One log entry's events.
    Entry(Vec<Event>),
    /// Day `day` (0-based) is drawn; `seq` events so far.
    DayEnd { day: i64, seq: u64 },
}

/// Rows applied but not yet in segments past which the applying thread waits for the flush
/// thread (a few memtables of `engine.flush_rows`).
const IN_FLIGHT_ROWS: usize = 3_000_000;

/// The part of the plan the drawing thread needs.
struct Days {
    events: u64,
    days: i64,
    start_ms: i64,
    apps: usize,
}

fn plan_days(plan: &Plan) -> Days {
    Days {
        events: plan.events,
        days: plan.days,
        start_ms: plan.end_ms - plan.days * DAY_MS,
        apps: plan.apps,
    }
}

/// Draws the events in time order, day by day, in log entries of [`ENTRY_EVENTS`]; stops
/// early if the applying side hung up (it failed).
fn draw_days(plan: &Days, spec: &Spec, tx: std::sync::mpsc::SyncSender<Chunk>) {
    let apps = app_ids(plan.apps);
    let mut gen = Gen::new(spec, 0);
    let mut seq = 0u64;
    for day in 0..plan.days {
        // The day's share of the events, spread evenly in time within it.
        let until = plan.events * (day as u64 + 1) / plan.days as u64;
        let n = until - seq;
        let day_start = plan.start_ms + day * DAY_MS;
        let mut pending: Vec<Event> = Vec::with_capacity(ENTRY_EVENTS);
        for k in 0..n {
            let ts = day_start + (k as i64 * DAY_MS) / n.max(1) as i64;
            let d = gen.draw(seq, Some(ts));
            pending.push(d.stored(&apps[d.app], ts + 150));
            seq += 1;
            if pending.len() == ENTRY_EVENTS {
                let full = std::mem::replace(&mut pending, Vec::with_capacity(ENTRY_EVENTS));
                if tx.send(Chunk::Entry(full)).is_err() {
                    return;
                }
            }
        }
        if !pending.is_empty() && tx.send(Chunk::Entry(pending)).is_err() {
            return;
        }
        if tx.send(Chunk::DayEnd { day, seq }).is_err() {
            return;
        }
    }
}

fn apply(engine: &Engine, index: u64, events: &[Event]) -> anyhow::Result<()> {
    engine.apply(ApplyBatch::one_entry(
        index,
        events.iter().map(Event::as_ref).collect(),
    ))?;
    Ok(())
}
