//! `unmogrowp-bench ingest`: the appliance against three ceilings (hello-world, parse-only, and
//! durable: parse-only plus a group-committed durable write), measured by the same generator in
//! the same run, printed as markdown tables.
//!
//! The VM this runs on changes speed by 2–3× over minutes, so a ceiling measured a few minutes
//! before the appliance can make a ratio move by ±15%. Each target's max rate is therefore
//! measured `rounds` times in alternation (hello, parse, durable, appliance, hello, …), each round with
//! a fresh process as before; a ratio is computed within a round, and the tables give the
//! median round and the spread.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use crate::body::BodyTemplate;
use crate::loadgen::{self, LoadResult, LoadSpec};
use crate::{start, Target};

pub(crate) struct Spec {
    pub bin: PathBuf,
    pub batches: Vec<usize>,
    pub connections: usize,
    pub duration: Duration,
    pub targets: Vec<String>,
    pub rounds: usize,
}

const TARGETS: [&str; 6] = [
    "hello",
    "parse",
    "durable",
    "appliance",
    "cluster3",
    "cluster3-follower",
];

/// One target at one batch size: its max-rate rounds and the half-rate run.
struct Cell {
    name: &'static str,
    batch: usize,
    max: Vec<LoadResult>,
    half: Option<LoadResult>,
    events_per_fsync: String,
}

impl Cell {
    fn rates(&self) -> Vec<f64> {
        self.max.iter().map(LoadResult::events_per_sec).collect()
    }

    /// The round with the median max rate.
    fn median(&self) -> &LoadResult {
        &self.max[median_index(&self.rates())]
    }
}

pub(crate) async fn ingest(spec: Spec) -> anyhow::Result<()> {
    let names: Vec<&'static str> = TARGETS
        .into_iter()
        .filter(|n| spec.targets.iter().any(|t| t == n))
        .collect();
    println!("| target | batch | max events/s | max req/s | p50 / p99 / p999 ms at max | events/s at half rate | p50 / p99 / p999 ms at half rate | errors | events per fsync | max events/s per round |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut cells: Vec<Cell> = Vec::new();
    for &batch in &spec.batches {
        let template = Arc::new(BodyTemplate::new("bench_app", batch, 42 + batch as u64));
        let first = cells.len();
        for &name in &names {
            cells.push(Cell {
                name,
                batch,
                max: Vec::new(),
                half: None,
                events_per_fsync: "–".into(),
            });
        }
        for round in 0..spec.rounds {
            for cell in &mut cells[first..] {
                let t = start(cell.name, &spec.bin)?;
                let max =
                    measure(&t, template.clone(), spec.connections, None, spec.duration).await?;
                cell.max.push(max);
                if round + 1 < spec.rounds {
                    continue;
                }
                // Last round: the half-rate run follows in the same process, as a steady
                // load would after a burst, at half of the median max rate.
                let half_rate = cell.median().requests_per_sec() / 2.0;
                let half = measure(
                    &t,
                    template.clone(),
                    spec.connections,
                    Some(half_rate.max(1.0)),
                    spec.duration,
                )
                .await?;
                cell.half = Some(half);
                if !is_ceiling(cell.name) {
                    // Every generated event id is unique; a duplicate means the generator is
                    // broken and the cell would measure the (cheaper) duplicate path.
                    let dups = metric(
                        t.addr,
                        r#"unmogrowp_ingest_events_total{outcome="duplicate"}"#,
                    );
                    anyhow::ensure!(
                        dups == Some(0.0),
                        "the appliance counted {dups:?} duplicate events; the generator must send unique ids"
                    );
                    cell.events_per_fsync = metric(t.addr, "unmogrowp_events_per_fsync")
                        .map_or("?".into(), |v| format!("{v:.0}"));
                }
            }
        }
        for cell in &cells[first..] {
            print_row(cell);
        }
    }
    println!();
    print_ratios(&spec.batches, &cells);
    print_cluster_ratios(&spec.batches, &cells);
    Ok(())
}

/// The reference servers of `bench/src/servers.rs` and `durable.rs`, which have no `/metrics`.
fn is_ceiling(name: &str) -> bool {
    matches!(name, "hello" | "parse" | "durable")
}

/// A value of the target's Prometheus `/metrics` (the appliance's own counters).
fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nhost: x\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// One load run against `t`: max rate when `rate` is `None`, else that fixed request rate.
async fn measure(
    t: &Target,
    template: Arc<BodyTemplate>,
    connections: usize,
    rate: Option<f64>,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let spec = LoadSpec {
        addr: t.addr.to_string(),
        path: "/v1/events".into(),
        connections,
        rate,
        duration,
        warmup: Duration::from_secs(2),
        api_key: t.api_key.clone(),
    };
    loadgen::run(&spec, template).await
}

fn print_row(c: &Cell) {
    let max = c.median();
    let (half_rate, half_ms, half_errors) =
        c.half.as_ref().map_or((0.0, "–".to_string(), 0), |h| {
            (
                h.events_per_sec(),
                format!("{:.2} / {:.2} / {:.2}", h.ms(0.5), h.ms(0.99), h.ms(0.999)),
                h.errors,
            )
        });
    let errors: u64 = c.max.iter().map(|m| m.errors).sum::<u64>() + half_errors;
    let rounds: Vec<String> = c.rates().iter().map(|r| format!("{r:.0}")).collect();
    println!(
        "| {} | {} | {:.0} | {:.0} | {:.2} / {:.2} / {:.2} | {half_rate:.0} | {half_ms} | {errors} | {} | {} |",
        c.name,
        c.batch,
        max.events_per_sec(),
        max.requests_per_sec(),
        max.ms(0.5),
        max.ms(0.99),
        max.ms(0.999),
        c.events_per_fsync,
        rounds.join(" / "),
    );
}

fn find<'a>(cells: &'a [Cell], name: &str, batch: usize) -> Option<&'a Cell> {
    cells.iter().find(|c| c.name == name && c.batch == batch)
}

fn half_p99(c: &Cell) -> f64 {
    c.half.as_ref().map_or(f64::NAN, |h| h.ms(0.99))
}

fn print_ratios(batches: &[usize], cells: &[Cell]) {
    println!("| batch | appliance / parse-only (events/s) | appliance / hello-world (req/s) | appliance p99 at half rate (ms) | appliance / durable | durable / parse-only | durable / hello-world |");
    println!("|---|---|---|---|---|---|---|");
    for &batch in batches {
        let get = |n| find(cells, n, batch);
        if let (Some(a), Some(p), Some(h)) = (get("appliance"), get("parse"), get("hello")) {
            // Events per request are the same for every target of a batch size, so the
            // request-rate ratio equals the event-rate ratio.
            let durable =
                get("durable").map_or(["–".to_string(), "–".into(), "–".into()], |d| {
                    [
                        Ratio::of(&a.rates(), &d.rates()).to_string(),
                        Ratio::of(&d.rates(), &p.rates()).to_string(),
                        Ratio::of(&d.rates(), &h.rates()).to_string(),
                    ]
                });
            println!(
                "| {batch} | {} | {} | {:.2} | {} |",
                Ratio::of(&a.rates(), &p.rates()),
                Ratio::of(&a.rates(), &h.rates()),
                half_p99(a),
                durable.join(" | ")
            );
        }
    }
}

fn print_cluster_ratios(batches: &[usize], cells: &[Cell]) {
    let clustered: Vec<usize> = batches
        .iter()
        .copied()
        .filter(|&b| find(cells, "cluster3", b).is_some())
        .collect();
    if clustered.is_empty() {
        return;
    }
    println!();
    println!("| batch | 3-node via leader / single node (events/s) | 3-node via follower / single node | p99 at half rate: single / leader / follower (ms) |");
    println!("|---|---|---|---|");
    for batch in clustered {
        let get = |n| find(cells, n, batch);
        if let (Some(a), Some(l), Some(f)) =
            (get("appliance"), get("cluster3"), get("cluster3-follower"))
        {
            println!(
                "| {batch} | {} | {} | {:.2} / {:.2} / {:.2} |",
                Ratio::of(&l.rates(), &a.rates()),
                Ratio::of(&f.rates(), &a.rates()),
                half_p99(a),
                half_p99(l),
                half_p99(f)
            );
        }
    }
}

/// Index of the median of `xs` (the lower one for an even count).
fn median_index(xs: &[f64]) -> usize {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    order[(xs.len().max(1) - 1) / 2]
}

/// Per-round ratios of two targets measured in the same rounds: the median and the range.
#[derive(Debug, PartialEq)]
struct Ratio {
    median: f64,
    min: f64,
    max: f64,
    rounds: usize,
}

impl Ratio {
    fn of(num: &[f64], den: &[f64]) -> Self {
        let r: Vec<f64> = num.iter().zip(den).map(|(n, d)| n / d).collect();
        let min = r.iter().copied().fold(f64::INFINITY, f64::min);
        let max = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Self {
            median: r.get(median_index(&r)).copied().unwrap_or(f64::NAN),
            min,
            max,
            rounds: r.len(),
        }
    }
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.rounds > 1 {
            write!(f, "{:.2} ({:.2}–{:.2})", self.median, self.min, self.max)
        } else {
            write!(f, "{:.2}", self.median)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_taken_within_a_round() {
        // The machine slowed down in round 2: both targets halved, the ratio did not.
        let r = Ratio::of(&[40.0, 20.0, 44.0], &[80.0, 40.0, 100.0]);
        assert_eq!(r.median, 0.5);
        assert_eq!((r.min, r.max, r.rounds), (0.44, 0.5, 3));
        assert_eq!(r.to_string(), "0.50 (0.44–0.50)");
        assert_eq!(Ratio::of(&[30.0], &[60.0]).to_string(), "0.50");
    }

    #[test]
    fn median_round() {
        assert_eq!(median_index(&[3.0, 1.0, 2.0]), 2);
        assert_eq!(median_index(&[5.0, 1.0, 4.0, 2.0]), 3);
        assert_eq!(median_index(&[7.0]), 0);
    }
}
