//! TESTPLAN WAL-01 at the IO seam: three real processes whose log and table write through a
//! fault-injecting file system. Under ingest, the power goes out on all three at once (every
//! byte not fsynced is dropped, then each process dies), they restart, and this repeats; then
//! on one node at a time, at a random durable step. After each campaign: lost = 0,
//! duplicates = 0, phantoms = 0, replicas equal (PQ-04).
//!
//! `POWER_ROUNDS=N` sets the rounds (default 3 in CI; the campaign runs 50).

use std::time::Duration;

use rand::Rng;
use unmogrowp_tests::cluster::{check_ledger, Load, TestCluster};

fn rounds() -> usize {
    std::env::var("POWER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// Three nodes writing through the fault-injecting file system (frequent flushes, so cuts
/// land in the table too), under ingest from 4 clients.
fn loaded_cluster() -> (TestCluster, Load) {
    let mut c = TestCluster::new(3, &[("UNMOGROWP_ENGINE__FLUSH_ROWS", "3000")]);
    c.enable_disk_faults();
    c.start();
    let key = c.create_app("app1");
    let ports: Vec<u16> = c.nodes.iter().map(|n| n.port).collect();
    let load = Load::start(&ports, &key, "app1", 4, 20);
    (c, load)
}

/// Bytes the node's last power cut dropped (from its log), summed over `which`.
fn dropped(c: &TestCluster, which: &[usize]) -> u64 {
    which
        .iter()
        .filter_map(|&i| {
            let tail = c.nodes[i].log_tail();
            let at = tail.rfind("bytes_dropped: ");
            let at = at?;
            let n: String = tail[at + 15..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            n.parse::<u64>().ok()
        })
        .sum()
}

/// Cuts the power of every node in `which` at once (one thread each): each dies at one of its
/// next few durable calls (so a write whose fsync has not come yet is often in flight), or at
/// once if it is idle.
fn power_cut(c: &mut TestCluster, which: &[usize], rng: &mut impl Rng) {
    let scripts: Vec<String> = (0..c.nodes.len())
        .map(|_| format!("power-cut after={}", rng.gen_range(1..6)))
        .collect();
    std::thread::scope(|s| {
        for (i, node) in c.nodes.iter_mut().enumerate() {
            if which.contains(&i) {
                let script = &scripts[i];
                s.spawn(move || {
                    node.disk_script(script);
                    if node.wait_exit(Duration::from_secs(2)).is_none() {
                        node.disk_script("power-cut");
                        assert!(
                            node.wait_exit(Duration::from_secs(30)).is_some(),
                            "node {} survived its power cut",
                            i + 1
                        );
                    }
                });
            }
        }
    });
}

#[test]
fn power_loss_on_all_nodes_at_once_loses_nothing_acknowledged() {
    let (mut c, load) = loaded_cluster();
    let mut rng = rand::thread_rng();
    let rounds = rounds();
    let mut total_dropped = 0;
    for round in 0..rounds {
        std::thread::sleep(Duration::from_millis(rng.gen_range(1500..3500)));
        let acked = load.ledger.acked();
        power_cut(&mut c, &[0, 1, 2], &mut rng);
        let bytes = dropped(&c, &[0, 1, 2]);
        total_dropped += bytes;
        for n in &mut c.nodes {
            n.spawn();
        }
        c.wait_leader(Duration::from_secs(60));
        eprintln!("WAL-01 round {}/{rounds}: power cut on all 3 nodes at {acked} acknowledged events, {bytes} bytes not fsynced dropped", round + 1);
    }
    std::thread::sleep(Duration::from_secs(2));
    let ledger = load.stop();
    let rows = check_ledger(&mut c, &ledger);
    eprintln!("WAL-01: {rounds} power cuts on all nodes ({total_dropped} bytes not fsynced dropped); {} acknowledged, {rows} rows on every node, lost 0, duplicates 0", ledger.acked());
    assert!(ledger.acked() > 0);
}

#[test]
fn power_loss_on_one_node_at_a_random_durable_step_loses_nothing() {
    let (mut c, load) = loaded_cluster();
    let mut rng = rand::thread_rng();
    let rounds = rounds() * 2;
    for round in 0..rounds {
        std::thread::sleep(Duration::from_millis(rng.gen_range(500..1500)));
        let i = rng.gen_range(0..3);
        let step = rng.gen_range(1..400);
        // Table steps (flushes, compactions) are rarer than log appends: aim there half the time.
        let script = if round % 2 == 0 {
            format!("power-cut after={step}")
        } else {
            format!("power-cut after={} path=/table/", step % 40 + 1)
        };
        let node = &mut c.nodes[i];
        node.disk_script(&script);
        // The cut comes when the node reaches that step; if it is idle, cut it now.
        if node.wait_exit(Duration::from_secs(5)).is_none() {
            node.disk_script("power-cut");
            node.wait_exit(Duration::from_secs(30));
        }
        let bytes = dropped(&c, &[i]);
        let node = &mut c.nodes[i];
        node.spawn();
        c.wait_leader(Duration::from_secs(60));
        eprintln!("WAL-01 minority round {}/{rounds}: node {} lost power ({script}), {bytes} bytes not fsynced dropped", round + 1, i + 1);
    }
    std::thread::sleep(Duration::from_secs(2));
    let ledger = load.stop();
    let rows = check_ledger(&mut c, &ledger);
    eprintln!("WAL-01 minority: {rounds} single-node power cuts; {} acknowledged, {rows} rows, lost 0, duplicates 0", ledger.acked());
}
