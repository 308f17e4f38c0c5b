//! TESTPLAN WAL-03: a vote (the Raft meta file) is written to a temporary file, `fsync`ed,
//! renamed over the old one and the directory `fsync`ed before `store` returns, so it
//! survives a power cut right after; and with the power going out at each step of storing
//! it, what is on disk afterwards is the old vote or the new one, never neither or garbage
//! (a node can never vote twice in one term after a power cut).

use unmogrowp_wal::env::{FaultFs, OpKind};
use unmogrowp_wal::MetaFile;

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

#[test]
fn a_power_cut_at_each_step_of_storing_a_vote_leaves_the_old_or_the_new_one() {
    for k in 1..=6u64 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft-meta");
        {
            let fs = FaultFs::new();
            let meta = MetaFile::with_fs(path.clone(), fs.clone());
            meta.store(&("term", 1)).unwrap();
            fs.power_cut().unwrap();
        }
        let fs = FaultFs::new();
        let meta = MetaFile::with_fs(path.clone(), fs.clone());
        fs.cut_at(k);
        let stored = meta.store(&("term", 2)).is_ok() && !fs.is_off();
        if !fs.is_off() {
            fs.power_cut().unwrap();
        }
        let back = MetaFile::new(path)
            .load::<(String, u64)>()
            .unwrap_or_else(|e| panic!("cut at step {k}: the vote file does not read: {e}"));
        match back {
            Some((_, 2)) => {}
            Some((_, 1)) => assert!(!stored, "cut at step {k}: a stored vote was lost"),
            other => panic!("cut at step {k}: {other:?}"),
        }
        if k == 6 {
            assert!(stored, "storing a vote takes more than 5 durable steps");
        }
    }
}
