//! TESTPLAN WAL-02: the order of durable steps, recorded at the IO seam. An append is
//! acknowledged only after its bytes are written and `fdatasync`ed; a new segment's header is
//! written and `fsync`ed and its directory `fsync`ed before a record goes into it; a
//! truncation is `fsync`ed before it is reported done; a purge's removals are made durable
//! (directory `fsync`) before it is reported done. Votes: `wal_03_vote_durable`.

mod common;

use std::sync::mpsc;

use common::*;
use unmogrowp_wal::env::{FaultFs, OpKind};

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

    // --- phase: purge of whole segments. The purge point is made durable first, by
    // `RaftLogStore::purge` in the meta file (its writes: `wal_03_vote_durable`); the log then
    // drops the segments from its index and unlinks their files in the background, each batch
    // of removals followed by a directory fsync (files a crash leaves are removed at open).
    for i in next..next + 40 {
        append(&wal, i, i + 1).unwrap();
    }
    fs.clear_ops();
    let (tx, rx) = mpsc::channel();
    wal.purge(next + 20, Box::new(move |r| tx.send(r.is_ok()).unwrap()))
        .unwrap();
    assert!(rx.recv().unwrap());
    let t0 = std::time::Instant::now();
    let ops = loop {
        let ops: Vec<OpKind> = kinds(&fs).into_iter().map(|(k, _)| k).collect();
        if ops.last() == Some(&OpKind::SyncDir) && ops.contains(&OpKind::Remove) {
            break ops;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "purged segments not removed durably: {ops:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert!(
        ops.iter()
            .all(|k| matches!(k, OpKind::Remove | OpKind::SyncDir)),
        "{ops:?}"
    );
    assert_eq!(ops[0], OpKind::Remove, "{ops:?}");
}
