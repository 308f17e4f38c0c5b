//! TESTPLAN WAL-08 and WAL-09 at the log: an `fdatasync` that fails with EIO, or a write that
//! fails with ENOSPC, fails the appends waiting on it, the log refuses every later write with
//! the reason, and the failed fsync is never retried. After a restart everything acknowledged
//! before the failure is there and nothing is corrupt.

mod common;

use common::*;
use unmogrowp_wal::env::{Fault, FaultFs, OpKind};

fn fails_and_stays_failed(fault: Fault, kind: OpKind, errno_text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new();
    let wal = open(dir.path(), fs.clone()).unwrap();
    // --- phase: 40 records acknowledged
    for i in 0..40 {
        append(&wal, 1 + i, 2 + i).unwrap();
    }
    // --- phase: the disk fails
    fs.inject(fault);
    let before = fs.ops().iter().filter(|o| o.kind == kind).count();
    let err = append(&wal, 41, 45).expect_err("the failed IO must fail the append");
    assert!(err.contains(errno_text), "{err}");
    // Later writes are refused with the reason; nothing retries the failed call.
    fs.clear_faults();
    let again = append(&wal, 45, 46).expect_err("the log must refuse writes after a failure");
    assert!(again.contains(errno_text), "{again}");
    let after = fs.ops().iter().filter(|o| o.kind == kind).count();
    assert_eq!(before, after, "the failed call was retried");
    drop(wal);
    // --- phase: restart: the 40 acknowledged records are there, the log opens cleanly
    let got = reopen_real(dir.path());
    check(&got, 41, 1);
}

#[test]
fn eio_on_fdatasync_stops_the_log_and_keeps_what_was_acknowledged() {
    fails_and_stays_failed(
        Fault::error(OpKind::SyncData, libc::EIO),
        OpKind::SyncData,
        "Input/output error",
    );
}

#[test]
fn enospc_on_write_stops_the_log_and_keeps_what_was_acknowledged() {
    fails_and_stays_failed(
        Fault::error(OpKind::Write, libc::ENOSPC),
        OpKind::Write,
        "No space left on device",
    );
}
