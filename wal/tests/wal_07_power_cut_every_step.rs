//! TESTPLAN WAL-01 (one node) and WAL-07: a power cut at every durable step of a workload that
//! appends, rotates segments (4 KiB), truncates and purges. For each step k the workload runs
//! on a fresh directory, the power goes out at the k-th durable-IO call (everything not yet
//! fsynced is dropped), and the log is opened again with the real file system: it must open,
//! hold every record whose append was acknowledged, and hold nothing else than what was
//! written (no gap, no garbage).

mod common;

use std::sync::Arc;

use common::*;
use unmogrowp_wal::env::FaultFs;

/// Runs the workload until the file system goes off; returns the end of the acknowledged
/// prefix and the first index still expected (after the purge).
fn workload(dir: &std::path::Path, fs: Arc<FaultFs>) -> (u64, u64) {
    let Ok(wal) = open(dir, fs) else {
        return (1, 1);
    };
    let mut acked = 1;
    let mut first = 1;
    let mut next = 1;
    for round in 0..24u64 {
        let n = 1 + round % 5;
        if append(&wal, next, next + n).is_err() {
            return (acked, first);
        }
        next += n;
        acked = next;
        if round == 12 {
            // Drop the last two records (a new leader overwriting an unacknowledged tail).
            let (tx, rx) = std::sync::mpsc::channel();
            if wal
                .truncate(next - 2, Box::new(move |r| tx.send(r).unwrap()))
                .is_err()
                || rx.recv().unwrap().is_err()
            {
                // Not known to be done: the two records may or may not be there; count only
                // what is certainly acknowledged and not truncated.
                return (next - 2, first);
            }
            next -= 2;
            acked = next;
        }
        if round == 18 {
            let (tx, rx) = std::sync::mpsc::channel();
            let upto = next / 2;
            if wal
                .purge(upto, Box::new(move |r| tx.send(r).unwrap()))
                .is_err()
                || rx.recv().unwrap().is_err()
            {
                return (acked, first);
            }
            first = upto + 1;
        }
    }
    (acked, first)
}

#[test]
fn a_power_cut_at_every_durable_step_loses_nothing_acknowledged() {
    // --- phase: count the steps of the whole workload
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new();
    workload(dir.path(), fs.clone());
    let steps = fs.steps();
    assert!(
        steps > 60,
        "the workload made only {steps} durable-IO calls"
    );
    // --- phase: cut at each of them
    for k in 1..=steps {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultFs::new();
        fs.cut_at(k);
        let (acked, first) = workload(dir.path(), fs.clone());
        if !fs.is_off() {
            // The purge's background deletion may still be making its calls (and the call at
            // the cut point counts before the power goes off): let it finish before judging.
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        // The last few durable calls (the purge's background file deletion and directory
        // fsync) may or may not fall inside the workload, so a run can make fewer calls than
        // the counting run: then a cut beyond its last call never comes, and the log is
        // checked as it was left.
        assert!(
            fs.is_off() || fs.steps() < k,
            "step {k}: the power never went out although the run made {} durable-IO calls",
            fs.steps()
        );
        if std::env::var("WAL07_DEBUG").is_ok() {
            eprintln!("k={k} acked={acked} first={first}");
            for o in fs
                .ops()
                .iter()
                .rev()
                .take(8)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                eprintln!(
                    "   {:?} {} {}",
                    o.kind,
                    o.path.file_name().unwrap().to_string_lossy(),
                    o.len
                );
            }
            for e in std::fs::read_dir(dir.path()).unwrap() {
                let e = e.unwrap();
                eprintln!("  {:?} {}", e.file_name(), e.metadata().unwrap().len());
            }
        }
        let got = reopen_real(dir.path());
        // Purged records may still be there (the owner's purge point hides them) or not;
        // from the purge point on, everything acknowledged must be.
        let from = got
            .keys()
            .next()
            .copied()
            .unwrap_or(first)
            .max(first.min(acked));
        let tail: std::collections::BTreeMap<_, _> =
            got.range(from..).map(|(k, v)| (*k, v.clone())).collect();
        check(&tail, acked, from.min(acked));
    }
}
