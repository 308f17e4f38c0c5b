//! TESTPLAN RAFT-10: a follower held far behind must catch up from a snapshot; the follower,
//! the leader, or both are killed with -9 while the snapshot is being transferred. No
//! partially received or installed snapshot is ever used, leftovers are cleaned up, and the
//! follower converges to the same rows as the others (PQ-04).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use unmogrowp_tests::cluster::{check_ledger, Load, TestCluster};

/// Frequent snapshots and purges, and tiny chunks so a transfer takes long enough to be hit.
const ENV: &[(&str, &str)] = &[
    ("UNMOGROWP_RAFT__SNAPSHOT_LOG_BYTES", "262144"),
    ("UNMOGROWP_RAFT__KEEP_AFTER_SNAPSHOT", "10"),
    ("UNMOGROWP_CLUSTER__SNAPSHOT_CHUNK_BYTES", "2048"),
];

#[derive(Clone, Copy, Debug)]
enum Victim {
    Follower,
    Leader,
    Both,
}

fn incoming(snapshots: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(snapshots)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("incoming-"))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Table generations and staging directories of the node's engine.
fn table_dirs(data: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(data.join("table"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn kill_during_snapshot_transfer_and_install() {
    let mut c = TestCluster::new(3, ENV);
    c.start();
    let key = c.create_app("app1");
    let lagging = 2;
    let snapshots = c.nodes[lagging].data_dir.join("snapshots");
    // Clients write through nodes 1 and 2 only (node 3 is cut off most of the time).
    let ports: Vec<u16> = c.nodes[..2].iter().map(|n| n.port).collect();
    let load = Load::start(&ports, &key, "app1", 2, 100);
    let mut hits = 0;
    // CI: one cycle of the three victims; the campaign sets SNAPSHOT_CYCLES.
    let cycles: usize = std::env::var("SNAPSHOT_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let victims: Vec<Victim> = (0..cycles)
        .flat_map(|_| [Victim::Follower, Victim::Leader, Victim::Both])
        .collect();
    let rounds = victims.len();
    for (round, victim) in victims.into_iter().enumerate() {
        // Hold node 3 behind until the leader's snapshot has moved well past its log (the
        // entries it lacks are purged: only a snapshot can bring it back).
        let behind_at = c
            .status(lagging)
            .and_then(|s| s["last_log_index"].as_u64())
            .unwrap_or(0);
        c.isolate(lagging);
        let t0 = Instant::now();
        loop {
            let (l, _) = c.wait_leader(Duration::from_secs(30));
            let snap = c
                .status(l)
                .and_then(|s| s["snapshot_index"].as_u64())
                .unwrap_or(0);
            if snap > behind_at + 100 {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "round {round}: the leader took no snapshot past {behind_at}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let (leader, _) = c.wait_leader(Duration::from_secs(30));
        c.heal(lagging);
        // Wait for the transfer to be under way, then kill.
        let t0 = Instant::now();
        while incoming(&snapshots).is_empty() && t0.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(2));
        }
        let caught = !incoming(&snapshots).is_empty();
        if caught {
            hits += 1;
        }
        match victim {
            Victim::Follower => c.nodes[lagging].kill9(),
            Victim::Leader => c.nodes[leader].kill9(),
            Victim::Both => {
                c.nodes[lagging].kill9();
                c.nodes[leader].kill9();
            }
        }
        eprintln!(
            "round {round}: killed {victim:?} (leader node {}) with a transfer under way: {caught}",
            leader + 1
        );
        if matches!(victim, Victim::Follower | Victim::Both) {
            // What a crash left: at most a receiving directory and at most one table
            // generation besides CURRENT's (an install is a rename, then CURRENT).
            c.nodes[lagging].spawn();
            c.nodes[lagging].wait_healthy(Duration::from_secs(60));
            assert!(
                incoming(&snapshots).is_empty(),
                "round {round}: a partial transfer survived the restart"
            );
            let dirs = table_dirs(&c.nodes[lagging].data_dir);
            assert!(
                dirs.iter().all(|d| d.starts_with("gen-")) && dirs.len() == 1,
                "round {round}: leftovers in the table directory: {dirs:?}"
            );
        }
        if matches!(victim, Victim::Leader | Victim::Both) {
            std::thread::sleep(Duration::from_secs(2));
            c.nodes[leader].start();
        }
        c.wait_converged(Duration::from_secs(180));
    }
    let ledger = load.stop();
    assert!(ledger.acked() > 0);
    let rows = check_ledger(&mut c, &ledger);
    eprintln!(
        "RAFT-10: {hits}/{rounds} kills landed mid-transfer; {} acknowledged, {} unknown, {rows} rows on every node; lost 0, duplicates 0, phantoms 0",
        ledger.acked(),
        ledger.unknown.lock().expect("ledger").len()
    );
    assert!(
        hits * 3 >= rounds * 2,
        "only {hits} of {rounds} kills landed during a transfer; the test did not exercise RAFT-10"
    );
}
