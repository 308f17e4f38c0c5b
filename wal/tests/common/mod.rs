//! Shared by the fault test targets: a workload over the log through a `FaultFs`, and the
//! check that everything acknowledged survived.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;

use bytes::Bytes;
use unmogrowp_wal::env::FaultFs;
use unmogrowp_wal::{RealFs, Wal, WalOptions};

pub(crate) fn opts() -> WalOptions {
    WalOptions {
        segment_bytes: 4096,
        max_record_bytes: 1 << 20,
        cache_bytes: 0,
    }
}

pub(crate) fn payload(i: u64) -> Bytes {
    Bytes::from(format!(
        "record-{i}-{}",
        "y".repeat((i * 37 % 300) as usize)
    ))
}

/// Appends `from..to` as one call; the result of its completion.
pub(crate) fn append(wal: &Wal, from: u64, to: u64) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let payloads = (from..to).map(payload).collect();
    wal.append(
        from,
        payloads,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    )
    .map_err(|e| e.to_string())?;
    rx.recv()
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// Opens the log through `fs`.
pub(crate) fn open(dir: &Path, fs: Arc<FaultFs>) -> Result<Wal, String> {
    Wal::open_with(dir, opts(), None, fs).map_err(|e| e.to_string())
}

/// Reopens with the real file system and returns every record.
pub(crate) fn reopen_real(dir: &Path) -> BTreeMap<u64, Bytes> {
    let wal = Wal::open_with(dir, opts(), None, Arc::new(RealFs))
        .unwrap_or_else(|e| panic!("the log must open after a power cut: {e}"));
    let r = wal.range();
    wal.read(r).expect("read").into_iter().collect()
}

/// Everything acknowledged is there with its payload; what is there is a gap-free run from
/// the first index with the right payloads (no phantom, no garbage).
pub(crate) fn check(got: &BTreeMap<u64, Bytes>, acked_end: u64, first: u64) {
    for i in first..acked_end {
        assert_eq!(
            got.get(&i),
            Some(&payload(i)),
            "acknowledged record {i} lost or wrong"
        );
    }
    let mut expect = first;
    for (i, p) in got {
        assert_eq!(*i, expect, "a gap before record {i}");
        assert_eq!(*p, payload(*i), "record {i} is not what was written");
        expect += 1;
    }
}
