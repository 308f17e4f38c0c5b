//! TESTPLAN WAL-09: a full data disk under ingest.
//! - A real full file system (a small tmpfs mounted for the test): below
//!   `ingest.min_free_disk_mb` ingest answers 507 `insufficient_storage` with `Retry-After`,
//!   queries still work, and ingest resumes by itself once space is freed — no restart.
//! - ENOSPC reaching the log writer anyway (injected at the IO seam): 503 `unavailable` naming
//!   the error, nothing corrupt, every acknowledged event there after a restart.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use unmogrowp_tests::{event_uuid, TestNode};

fn post(node: &TestNode, seq: u64, n: u64) -> (u16, Value, Option<String>) {
    match node.post_events("shop", 1, seq, n) {
        Ok(a) => {
            let retry = a.header("retry-after").map(str::to_string);
            (a.status, a.body, retry)
        }
        Err(e) => (0, Value::String(e), None),
    }
}

/// A tmpfs of `mb` MiB mounted at `dir` for the life of the value.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, mb: u64) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "WAL-09 needs to mount a small tmpfs (run as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir.to_path_buf())
    }

    fn free_bytes(&self) -> u64 {
        let s = rustix::fs::statvfs(&self.0).unwrap();
        s.f_bavail * s.f_frsize
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_pauses_ingest_with_507_and_it_resumes_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("mnt"), 256);
    let mut node = TestNode::new(
        disk.0.join("data"),
        &[
            ("UNMOGROWP_INGEST__MIN_FREE_DISK_MB", "32"),
            ("UNMOGROWP_WAL__SEGMENT_BYTES", "4194304"),
        ],
    );
    node.start();
    let mut acked = BTreeSet::new();
    let mut seq = 0;
    for _ in 0..10 {
        let (status, body, _) = post(&node, seq, 50);
        assert_eq!(status, 202, "{body}");
        acked.extend((seq..seq + 50).map(|s| event_uuid(1, s)));
        seq += 50;
    }
    // Fill the disk to 16 MiB free: below the 32 MiB floor.
    let ballast = disk.0.join("ballast");
    let fill = disk.free_bytes().saturating_sub(16 << 20);
    std::fs::write(&ballast, vec![1u8; fill as usize]).unwrap();
    let t0 = Instant::now();
    let (status, body, retry) = loop {
        let r = post(&node, seq, 50);
        if r.0 == 202 {
            acked.extend((seq..seq + 50).map(|s| event_uuid(1, s)));
        }
        seq += 50;
        if r.0 != 202 || t0.elapsed() > Duration::from_secs(5) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["error"]["code"], "insufficient_storage", "{body}");
    assert!(retry.is_some(), "507 without Retry-After");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("min_free_disk_mb"),
        "{body}"
    );
    // Queries still work while ingest is paused.
    assert_eq!(
        node.count("SELECT count(*) FROM events"),
        acked.len() as u64
    );
    // Space returns: ingest resumes by itself.
    std::fs::remove_file(&ballast).unwrap();
    let t0 = Instant::now();
    loop {
        let (status, body, _) = post(&node, seq, 50);
        if status == 202 {
            acked.extend((seq..seq + 50).map(|s| event_uuid(1, s)));
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "ingest did not resume: {status} {body}"
        );
        seq += 50;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        node.count("SELECT count(*) FROM events"),
        acked.len() as u64
    );
    node.kill9();
    drop(node);
}

#[test]
fn enospc_reaching_the_log_writer_stops_writes_cleanly_and_a_restart_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TestNode::new(dir.path().join("n"), &[]);
    node.enable_disk_faults();
    node.start();
    let mut acked = BTreeSet::new();
    let mut seq = 0;
    for _ in 0..10 {
        let (status, body, _) = post(&node, seq, 25);
        assert_eq!(status, 202, "{body}");
        acked.extend((seq..seq + 25).map(|s| event_uuid(1, s)));
        seq += 25;
    }
    assert!(node.disk_script("fail write enospc path=/log/ sticky"));
    let (status, body, _) = post(&node, seq, 25);
    seq += 25;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("No space left"),
        "{body}"
    );
    node.kill9();
    node.disable_disk_faults();
    node.start();
    let stored = node.stored_event_ids();
    assert!(acked.is_subset(&stored), "acknowledged events lost");
    let (status, body, _) = post(&node, seq, 10);
    assert_eq!(status, 202, "{body}");
}
