//! The mixed fault campaign (issue 25): a 3-process cluster under ingest, its log and table
//! writing through the fault-injecting file system, takes one fault after another, chosen at
//! random among kill -9, SIGSTOP (0.7-1.5 s), a network partition of one node (0.7-1.5 s), a power
//! cut (at a random durable step, or at once if idle) and EIO on an fsync (the node stops
//! writing; the operator restarts it). After each fault the cluster must have a leader again;
//! at the end every node is audited against the clients' ledger (lost, duplicated, phantom
//! events; replicas equal).
//!
//! `CAMPAIGN_FAULTS=N` (default 10: the CI slice), `CAMPAIGN_SEED=S`. The long run:
//! `./scripts/campaign.sh faults 1000`; figures in docs/reliability.md.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use unmogrowp_tests::cluster::{audit, Load, TestCluster};

fn var(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

const KINDS: [&str; 5] = ["kill9", "sigstop", "partition", "power_cut", "fsync_eio"];

#[test]
fn mixed_faults_lose_and_double_nothing() {
    let faults = var("CAMPAIGN_FAULTS", 10);
    let seed = var("CAMPAIGN_SEED", 1);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut c = TestCluster::new(3, &[("UNMOGROWP_ENGINE__FLUSH_ROWS", "5000")]);
    c.enable_disk_faults();
    c.start();
    let key = c.create_app("app1");
    let ports: Vec<u16> = c.nodes.iter().map(|n| n.port).collect();
    // Modest ingest: restarts (which rebuild the table's dedupe set and rollups) and the final
    // audit stay quick over a thousand faults.
    let load = Load::start(&ports, &key, "app1", 2, 10);
    let t0 = Instant::now();
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    let mut bytes_dropped = 0u64;
    let mut eio_fired = 0u64;
    let mut failovers = Vec::new();
    for n in 0..faults {
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..500)));
        let kind = KINDS[rng.gen_range(0..KINDS.len())];
        // Half the faults hit the leader, the rest any node.
        let (leader, _) = c.wait_leader(Duration::from_secs(60));
        let i = if rng.gen_bool(0.5) {
            leader
        } else {
            rng.gen_range(0..3)
        };
        let hold = Duration::from_millis(rng.gen_range(700..1500));
        match kind {
            "kill9" => {
                c.nodes[i].kill9();
                std::thread::sleep(Duration::from_millis(rng.gen_range(100..1000)));
                c.nodes[i].spawn();
            }
            "sigstop" => {
                let pid = c.nodes[i].pid().expect("running");
                signal(pid, "STOP");
                std::thread::sleep(hold);
                signal(pid, "CONT");
            }
            "partition" => {
                c.isolate(i);
                std::thread::sleep(hold);
                c.heal(i);
            }
            "power_cut" => {
                let node = &mut c.nodes[i];
                let script = if rng.gen_bool(0.3) {
                    format!("power-cut after={} path=/table/", rng.gen_range(1..30))
                } else {
                    format!("power-cut after={}", rng.gen_range(1..200))
                };
                node.disk_script(&script);
                if node.wait_exit(Duration::from_secs(3)).is_none() {
                    node.disk_script("power-cut");
                    node.wait_exit(Duration::from_secs(30));
                }
                let tail = node.log_tail();
                if let Some(at) = tail.rfind("bytes_dropped: ") {
                    let d: String = tail[at + 15..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    bytes_dropped += d.parse::<u64>().unwrap_or(0);
                }
                node.spawn();
            }
            "fsync_eio" => {
                let node = &mut c.nodes[i];
                node.disk_script("fail fsync eio");
                std::thread::sleep(hold);
                if node.log_tail().contains("Input/output error") {
                    eio_fired += 1;
                }
                // The node refuses writes after a failed fsync; the operator restarts it.
                node.kill9();
                node.spawn();
            }
            _ => unreachable!(),
        }
        *by_kind.entry(kind).or_default() += 1;
        let t = Instant::now();
        c.wait_leader(Duration::from_secs(60));
        failovers.push(t.elapsed());
        for node in &mut c.nodes {
            node.wait_ready(Duration::from_secs(120));
        }
        if (n + 1) % 50 == 0 {
            eprintln!(
                "campaign: {} faults in {:?}, {} acknowledged so far",
                n + 1,
                t0.elapsed(),
                load.ledger.acked()
            );
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let ledger = load.stop();
    let a = audit(&mut c, &ledger);
    failovers.sort();
    let kinds: Vec<String> = by_kind.iter().map(|(k, v)| format!("{k} {v}")).collect();
    eprintln!(
        "CAMPAIGN seed {seed}: {faults} faults ({}); EIO fired {eio_fired}; power cuts dropped {bytes_dropped} bytes not fsynced; \
         acknowledged {}, lost {}, duplicated {}, phantoms {}, replica mismatches {}, rows {}; \
         a leader agreed on after each fault ended: median {:?}, max {:?}; wall time {:?}",
        kinds.join(", "),
        a.acked,
        a.lost,
        a.duplicates,
        a.phantoms,
        a.mismatched_replicas,
        a.rows,
        failovers.get(failovers.len() / 2).copied().unwrap_or_default(),
        failovers.last().copied().unwrap_or_default(),
        t0.elapsed()
    );
    assert!(a.is_clean(), "{a:?}");
    assert!(a.acked > 0);
}
