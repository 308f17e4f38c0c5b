//! TESTPLAN WAL-04 (torn tail at every offset), WAL-05 (mid-log bit flip is detected, never
//! truncated), WAL-06 (zero-byte and header-only segments, missing newest segment), and group
//! commit, on real files.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use bytes::Bytes;
use unmogrowp_wal::{Wal, WalError, WalOptions};

fn opts() -> WalOptions {
    WalOptions {
        segment_bytes: 4096,
        max_record_bytes: 1 << 20,
        cache_bytes: 0,
    }
}

fn payload(i: u64) -> Bytes {
    Bytes::from(format!("record-{i}-{}", "x".repeat((i % 50) as usize)))
}

/// Appends `from..to` and waits until durable.
fn append_sync(wal: &Wal, from: u64, to: u64) {
    let (tx, rx) = mpsc::channel();
    let payloads = (from..to).map(payload).collect();
    wal.append(from, payloads, Box::new(move |r| tx.send(r).unwrap()))
        .unwrap();
    rx.recv().unwrap().unwrap();
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

fn check_prefix(wal: &Wal, expect_end: u64) {
    let r = wal.range();
    assert_eq!(
        r.end, expect_end,
        "recovered log should end at {expect_end}"
    );
    for (i, p) in wal.read(r.clone()).unwrap() {
        assert_eq!(p, payload(i), "record {i} differs");
    }
}

/// Writes records 1..=n into a fresh dir and returns the dir.
fn fresh(n: u64) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let wal = Wal::open(d.path(), opts(), None).unwrap();
    append_sync(&wal, 1, n + 1);
    d
}

#[test]
fn wal04_torn_tail_at_every_offset_of_the_last_record() {
    let n = 200;
    let d = fresh(n);
    let last_seg = segments(d.path()).pop().unwrap();
    let original = std::fs::read(&last_seg).unwrap();
    // Where does the last record start? Reopen and find its offset from a clean read.
    let last_len = 16 + payload(n).len();
    let start = original.len() - last_len;
    let mut cases = 0;
    for cut in start..original.len() {
        std::fs::write(&last_seg, &original[..cut]).unwrap();
        let wal = Wal::open(d.path(), opts(), None).expect("torn tail must be repaired, not fatal");
        check_prefix(&wal, n); // record n dropped, 1..n-1 intact
        assert!(wal.recovery_report().torn_tail_bytes_truncated as usize == cut - start);
        // The repaired log accepts the next append at the dropped index.
        append_sync(&wal, n, n + 1);
        drop(wal);
        cases += 1;
    }
    assert_eq!(cases, last_len);
}

#[test]
fn wal04_garbage_and_zero_fill_at_the_tail() {
    let n = 120;
    let d = fresh(n);
    let last_seg = segments(d.path()).pop().unwrap();
    let original = std::fs::read(&last_seg).unwrap();
    for garbage_len in [1usize, 7, 15, 16, 17, 100, 4096] {
        let mut bytes = original.clone();
        bytes.extend((0..garbage_len).map(|i| (i * 31 + 7) as u8));
        std::fs::write(&last_seg, &bytes).unwrap();
        let wal = Wal::open(d.path(), opts(), None).unwrap();
        check_prefix(&wal, n + 1);
    }
    // Zero-fill the last 4 KiB (or the whole segment body if smaller): the records there are
    // lost as a torn tail only if nothing valid follows; the earlier records survive.
    let mut bytes = original.clone();
    let from = bytes.len().saturating_sub(4096).max(32);
    for b in &mut bytes[from..] {
        *b = 0;
    }
    std::fs::write(&last_seg, &bytes).unwrap();
    let wal = Wal::open(d.path(), opts(), None).unwrap();
    let end = wal.range().end;
    assert!(end <= n + 1);
    check_prefix(&wal, end);
}

#[test]
fn wal05_bitflip_in_sealed_segment_is_fatal_with_location() {
    let d = fresh(300);
    let segs = segments(d.path());
    assert!(segs.len() >= 3, "need sealed segments, got {}", segs.len());
    let victim = &segs[1];
    let mut bytes = std::fs::read(victim).unwrap();
    let at = 32 + 20; // inside the first record's payload
    bytes[at] ^= 0x10;
    std::fs::write(victim, &bytes).unwrap();
    match Wal::open(d.path(), opts(), None) {
        Err(WalError::Corrupt { path, offset, .. }) => {
            assert_eq!(&path, victim);
            assert_eq!(offset, 32);
        }
        other => panic!("expected corruption error, got {other:?}"),
    }
    // Nothing was truncated: the file is exactly as we left it.
    assert_eq!(std::fs::read(victim).unwrap(), bytes);
}

#[test]
fn wal05_bitflip_mid_tail_segment_with_valid_records_after_is_fatal() {
    let d = fresh(150);
    let last = segments(d.path()).pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    assert!(
        bytes.len() > 32 + 200,
        "tail segment too small for the test"
    );
    bytes[32 + 20] ^= 0x01; // first record of the tail segment; later records are valid
    std::fs::write(&last, &bytes).unwrap();
    let before = bytes.len();
    assert!(matches!(
        Wal::open(d.path(), opts(), None),
        Err(WalError::Corrupt { .. })
    ));
    assert_eq!(
        std::fs::metadata(&last).unwrap().len() as usize,
        before,
        "must not truncate"
    );
}

#[test]
fn wal05_bitflip_in_header_of_sealed_segment_is_fatal() {
    let d = fresh(300);
    let segs = segments(d.path());
    let mut bytes = std::fs::read(&segs[0]).unwrap();
    bytes[3] ^= 0xff;
    std::fs::write(&segs[0], &bytes).unwrap();
    assert!(matches!(
        Wal::open(d.path(), opts(), None),
        Err(WalError::Corrupt { .. })
    ));
}

#[test]
fn wal06_zero_byte_and_header_only_newest_segment() {
    let n = 100;
    let d = fresh(n);
    // A crash right after creating the next segment: the file exists with no (durable) bytes.
    let next = d.path().join(format!("{:020}.wal", n + 1));
    std::fs::write(&next, b"").unwrap();
    let wal = Wal::open(d.path(), opts(), None).unwrap();
    check_prefix(&wal, n + 1);
    assert_eq!(wal.recovery_report().headers_rewritten, 1);
    append_sync(&wal, n + 1, n + 5);
    drop(wal);
    let wal = Wal::open(d.path(), opts(), None).unwrap();
    check_prefix(&wal, n + 5);
}

#[test]
fn wal06_zero_byte_sealed_segment_is_fatal() {
    let d = fresh(300);
    let segs = segments(d.path());
    std::fs::write(&segs[1], b"").unwrap();
    let err = Wal::open(d.path(), opts(), None).unwrap_err();
    assert!(
        matches!(err, WalError::Corrupt { .. } | WalError::Gap(_)),
        "{err:?}"
    );
}

#[test]
fn wal06_missing_middle_segment_is_a_gap() {
    let d = fresh(300);
    let segs = segments(d.path());
    std::fs::remove_file(&segs[1]).unwrap();
    assert!(matches!(
        Wal::open(d.path(), opts(), None),
        Err(WalError::Gap(_))
    ));
}

#[test]
fn group_commit_shares_fsyncs() {
    let d = tempfile::tempdir().unwrap();
    let wal = Wal::open(d.path(), WalOptions::default(), None).unwrap();
    let n = 2000u64;
    let (tx, rx) = mpsc::channel();
    for i in 1..=n {
        let tx = tx.clone();
        wal.append(i, vec![payload(i)], Box::new(move |r| tx.send(r).unwrap()))
            .unwrap();
    }
    for _ in 0..n {
        rx.recv().unwrap().unwrap();
    }
    let m = wal.metrics();
    let fsyncs = m.fsyncs.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        fsyncs < n / 4,
        "{fsyncs} fsyncs for {n} appends: appends are not grouped"
    );
    drop(wal);
    let wal = Wal::open(d.path(), WalOptions::default(), None).unwrap();
    check_prefix(&wal, n + 1);
}

#[test]
fn truncate_and_purge_survive_reopen() {
    let d = fresh(300);
    let wal = Wal::open(d.path(), opts(), None).unwrap();
    let (tx, rx) = mpsc::channel();
    let t = tx.clone();
    wal.truncate(250, Box::new(move |r| t.send(r).unwrap()))
        .unwrap();
    rx.recv().unwrap().unwrap();
    wal.purge(100, Box::new(move |r| tx.send(r).unwrap()))
        .unwrap();
    rx.recv().unwrap().unwrap();
    assert_eq!(wal.range(), 101..250);
    drop(wal);
    // The purged segment is unlinked by the dropped log's background deleter; reopening while
    // it is still at work would list a file that then vanishes (a server holds a lock file, so
    // two logs never share a directory there). Wait for it, within a bound.
    let first = format!("{:020}.wal", 1);
    let t0 = std::time::Instant::now();
    while segments(d.path()).iter().any(|p| {
        p.file_name()
            .is_some_and(|n| n.to_str() == Some(first.as_str()))
    }) {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "purged segment never removed"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let wal = Wal::open(d.path(), opts(), Some(100)).unwrap();
    assert_eq!(wal.range(), 101..250);
    check_prefix(&wal, 250);
    // The first segment (all records <= 100) is gone from disk.
    assert!(
        segments(d.path())[0].file_name().unwrap().to_str().unwrap() != format!("{:020}.wal", 1)
    );
}

#[test]
fn segments_below_the_purge_point_left_by_a_crash_are_removed_at_open() {
    let d = fresh(300);
    let before = segments(d.path()).len();
    assert!(before >= 3);
    // As if the purge point (200) was stored but the process died before unlinking.
    let wal = Wal::open(d.path(), opts(), Some(200)).unwrap();
    assert_eq!(wal.range(), 201..301);
    check_prefix(&wal, 301);
    let after = segments(d.path());
    assert!(after.len() < before, "no segment was removed");
    let first_kept: u64 = after[0]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        first_kept <= 201,
        "a segment holding live records was removed"
    );
}

/// FZ-04 in miniature: randomly damaged segment files either open (with a prefix of the log) or
/// are refused with an error; recovery never panics or trusts a damaged length field.
#[test]
fn randomly_damaged_segments_never_panic() {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut opened, mut refused) = (0, 0);
    for _ in 0..200 {
        let d = fresh(120);
        let segs = segments(d.path());
        let victim = &segs[(next() as usize) % segs.len()];
        let mut bytes = std::fs::read(victim).unwrap();
        for _ in 0..(1 + next() % 4) {
            let at = (next() as usize) % bytes.len();
            bytes[at] = next() as u8;
        }
        if next() % 3 == 0 {
            let cut = (next() as usize) % bytes.len();
            bytes.truncate(cut);
        }
        std::fs::write(victim, &bytes).unwrap();
        match Wal::open(d.path(), opts(), None) {
            Ok(wal) => {
                let end = wal.range().end;
                check_prefix(&wal, end);
                opened += 1;
            }
            Err(e) => {
                assert!(
                    matches!(e, WalError::Corrupt { .. } | WalError::Gap(_)),
                    "{e:?}"
                );
                refused += 1;
            }
        }
    }
    assert!(
        opened > 0 && refused > 0,
        "opened {opened} refused {refused}"
    );
}

/// `seal_segment` closes the current file: the next record starts a new one, so a purge past
/// everything written before deletes every file holding it (an erasure purges the log past
/// the erased events this way), and the log reads back whole after a reopen.
#[test]
fn a_sealed_segment_is_deleted_by_a_purge_past_it() {
    let d = tempfile::tempdir().unwrap();
    let big = WalOptions {
        segment_bytes: 1 << 20,
        ..opts()
    };
    let wal = Wal::open(d.path(), big.clone(), None).unwrap();
    append_sync(&wal, 1, 51);
    assert_eq!(segments(d.path()).len(), 1);
    let (tx, rx) = mpsc::channel();
    wal.seal_segment(Box::new(move |r| tx.send(r).unwrap()))
        .unwrap();
    rx.recv().unwrap().unwrap();
    append_sync(&wal, 51, 61);
    assert_eq!(
        segments(d.path()).len(),
        2,
        "the next record started a new file"
    );
    let (tx, rx) = mpsc::channel();
    wal.purge(50, Box::new(move |r| tx.send(r).unwrap()))
        .unwrap();
    rx.recv().unwrap().unwrap();
    let t0 = std::time::Instant::now();
    while segments(d.path()).len() > 1 {
        assert!(
            t0.elapsed().as_secs() < 10,
            "the sealed file was not deleted"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let held = std::fs::read(&segments(d.path())[0]).unwrap();
    let needle = b"record-50-";
    assert!(!held.windows(needle.len()).any(|w| w == needle));
    drop(wal);
    let wal = Wal::open(d.path(), big, Some(50)).unwrap();
    assert_eq!(wal.range(), 51..61);
}
