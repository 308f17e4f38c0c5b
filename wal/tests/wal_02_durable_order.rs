//! TESTPLAN WAL-02 and WAL-03: the order of durable steps, recorded at the IO seam. An append
//! is acknowledged only after its bytes are written and `fdatasync`ed; a new segment's header
//! is written and `fsync`ed and its directory `fsync`ed before a record goes into it; a
//! truncation is `fsync`ed before it is reported done; a vote (the Raft meta file) is written
//! to a temporary file, `fsync`ed, renamed over the old one and the directory `fsync`ed before
//! `store` returns — and survives a power cut right after.

mod common;

use std::sync::mpsc;

use common::*;
use unmogrowp_wal::env::{FaultFs, OpKind};
use unmogrowp_wal::MetaFile;

fn kinds(fs: &FaultFs) -> Vec<(OpKind, String)> {
    fs.ops()
        .into_iter()
        .map(|o| {
            let name = o.path.file_name().unwrap().to_string_lossy().into_owned();
            (o.kind, name)
        })
        .collect()
}

#[test]
fn append_write_then_fdatasync_then_ack_and_segments_are_made_durable_first() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new();
    let wal = open(dir.path(), fs.clone()).unwrap();
    fs.clear_ops();

    // --- phase: the first append creates the first segment
    let (tx, rx) = mpsc::channel();
    let fs2 = fs.clone();
    wal.append(
        1,
        vec![payload(1)],
        Box::new(move |r| {
            // What had reached the seam when the acknowledgement ran.
            tx.send((r.is_ok(), fs2.ops().len())).unwrap();
        }),
    )
    .unwrap();
    let (ok, ops_at_ack) = rx.recv().unwrap();
    assert!(ok);
    let ops = kinds(&fs);
    let seg = ops[0].1.clone();
    assert_eq!(
        ops.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        vec![
            OpKind::Create,   // the segment file
            OpKind::Write,    // its header
            OpKind::SyncAll,  // header durable
            OpKind::SyncDir,  // the file's name durable
            OpKind::Write,    // the record
            OpKind::SyncData, // the record durable
        ],
        "{ops:?}"
    );
    assert!(ops[..=4].iter().all(|(_, n)| *n == seg) || ops[3].0 == OpKind::SyncDir);
    assert_eq!(ops_at_ack, ops.len(), "acknowledged before the fdatasync");

    // --- phase: rotation when the segment is full: the old one's records durable, then the
    // new segment created durably, then the record
    fs.clear_ops();
    let mut next = 2;
    while fs.ops().iter().all(|o| o.kind != OpKind::Create) {
        append(&wal, next, next + 1).unwrap();
        next += 1;
    }
    let ops = kinds(&fs);
    let create = ops.iter().position(|(k, _)| *k == OpKind::Create).unwrap();
    assert_eq!(
        ops[create..].iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        vec![
            OpKind::Create,
            OpKind::Write,
            OpKind::SyncAll,
            OpKind::SyncDir,
            OpKind::Write,
            OpKind::SyncData
        ],
        "{ops:?}"
    );

    // --- phase: truncation: cut, fsync, then done
    fs.clear_ops();
    let (tx, rx) = mpsc::channel();
    wal.truncate(next - 1, Box::new(move |r| tx.send(r.is_ok()).unwrap()))
        .unwrap();
    assert!(rx.recv().unwrap());
    let ops: Vec<OpKind> = kinds(&fs).into_iter().map(|(k, _)| k).collect();
    let cut = ops.iter().position(|k| *k == OpKind::SetLen);
    let removed = ops.iter().position(|k| *k == OpKind::Remove);
    match (cut, removed) {
        (Some(c), _) => assert_eq!(ops.get(c + 1), Some(&OpKind::SyncAll), "{ops:?}"),
        (None, Some(r)) => assert!(ops[r..].contains(&OpKind::SyncDir), "{ops:?}"),
        (None, None) => panic!("the truncation did no IO: {ops:?}"),
    }
}

#[test]
fn a_vote_is_replaced_atomically_and_survives_a_power_cut() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new();
    let meta = MetaFile::with_fs(dir.path().join("raft-meta"), fs.clone());
    meta.store(&("term", 1)).unwrap();
    fs.clear_ops();
    meta.store(&("term", 2)).unwrap();
    let ops: Vec<OpKind> = fs.ops().into_iter().map(|o| o.kind).collect();
    assert_eq!(
        ops,
        vec![
            OpKind::Create,
            OpKind::Write,
            OpKind::SyncAll,
            OpKind::Rename,
            OpKind::SyncDir
        ]
    );
    // --- phase: power cut right after store returned: the new vote is what is on disk
    fs.power_cut().unwrap();
    let back = MetaFile::new(dir.path().join("raft-meta"));
    assert_eq!(
        back.load::<(String, u64)>().unwrap(),
        Some(("term".into(), 2))
    );
}
