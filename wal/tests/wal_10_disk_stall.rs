//! TESTPLAN WAL-10 at the log: a disk that stalls (an `fdatasync` taking 10–500 ms) slows
//! appends down but fails none, and appends that arrive during a stall wait for the next
//! fsync together (group commit) instead of queueing one fsync each, so the delay stays about
//! one stall, not one stall per writer. (Elections under stalls are a node-level matter.)

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use unmogrowp_wal::env::{Fault, FaultFs, OpKind};

#[test]
fn appends_during_a_stalled_fsync_share_the_next_one_and_all_succeed() {
    for stall_ms in [10u64, 100, 500] {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultFs::new();
        let wal = Arc::new(open(dir.path(), fs.clone()).unwrap());
        append(&wal, 1, 2).unwrap();
        // --- phase: the next fdatasync stalls; 16 writers append meanwhile
        fs.inject(Fault::stall(
            OpKind::SyncData,
            Duration::from_millis(stall_ms),
        ));
        let syncs_before = fs
            .ops()
            .iter()
            .filter(|o| o.kind == OpKind::SyncData)
            .count();
        let t0 = Instant::now();
        let (tx, rx) = std::sync::mpsc::channel();
        // Indexes must be appended in order: one thread queues them, 16 completions wait.
        for i in 0..16u64 {
            let tx = tx.clone();
            let idx = 2 + i;
            wal.append(
                idx,
                vec![payload(idx)],
                Box::new(move |r| tx.send((idx, r.is_ok(), t0.elapsed())).unwrap()),
            )
            .unwrap();
        }
        drop(tx);
        let done: Vec<_> = rx.iter().collect();
        assert_eq!(done.len(), 16);
        assert!(
            done.iter().all(|(_, ok, _)| *ok),
            "an append failed under a stall: {done:?}"
        );
        let syncs = fs
            .ops()
            .iter()
            .filter(|o| o.kind == OpKind::SyncData)
            .count()
            - syncs_before;
        // The stalled fsync carries the first append(s); everything queued behind it goes
        // out in at most one more.
        assert!(
            syncs <= 2,
            "{syncs} fsyncs for 16 appends queued during a {stall_ms} ms stall"
        );
        let slowest = done.iter().map(|(_, _, t)| *t).max().unwrap();
        assert!(
            slowest >= Duration::from_millis(stall_ms),
            "the stall was not felt: {slowest:?}"
        );
        drop(wal);
        check(&reopen_real(dir.path()), 18, 1);
    }
}
