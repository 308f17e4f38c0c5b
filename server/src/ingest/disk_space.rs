//! [`DiskSpace`]: ingest pauses (507 `insufficient_storage`) while the data directory's file
//! system has less than `ingest.min_free_disk_mb` free, and resumes by itself once space
//! returns. Refusing early keeps ENOSPC away from the log writer, which would otherwise stop
//! for good on its first failed write (a restart is then needed; fsync is never retried).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cluster::ClusterError;

/// How long a free-space reading is reused (one `statvfs` per interval, not per request).
const REFRESH: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub struct DiskSpace {
    dir: PathBuf,
    min_free_bytes: u64,
    epoch: Instant,
    /// Microseconds after `epoch` of the last reading, + 1 (0: never read).
    read_at_us: AtomicU64,
    free: AtomicU64,
}

impl DiskSpace {
    pub fn new(dir: PathBuf, min_free_mb: u64) -> Self {
        Self {
            dir,
            min_free_bytes: min_free_mb.saturating_mul(1 << 20),
            epoch: Instant::now(),
            read_at_us: AtomicU64::new(0),
            free: AtomicU64::new(0),
        }
    }

    /// Bytes free for this process on the data directory's file system (`None` if unknown).
    /// Lock-free on the ingest path: a reading is reused for `REFRESH`; concurrent requests
    /// may both refresh it, which is harmless.
    fn free_bytes(&self) -> Option<u64> {
        let now_us = self.epoch.elapsed().as_micros() as u64 + 1;
        let at = self.read_at_us.load(Ordering::Acquire);
        if at != 0 && now_us.saturating_sub(at) < REFRESH.as_micros() as u64 {
            return Some(self.free.load(Ordering::Relaxed));
        }
        match rustix::fs::statvfs(&self.dir) {
            Ok(s) => {
                let free = s.f_bavail.saturating_mul(s.f_frsize);
                self.free.store(free, Ordering::Relaxed);
                self.read_at_us.store(now_us, Ordering::Release);
                Some(free)
            }
            Err(e) => {
                tracing::debug!(error = %e, "statvfs of the data directory failed");
                None
            }
        }
    }

    /// Refuses a write while the disk is below the floor.
    pub fn check(&self) -> Result<(), ClusterError> {
        if self.min_free_bytes == 0 {
            return Ok(());
        }
        match self.free_bytes() {
            Some(free) if free < self.min_free_bytes => Err(ClusterError::DiskFull(format!(
                "the data disk has {} MiB free, below ingest.min_free_disk_mb ({} MiB); \
                 ingest resumes by itself when space is freed",
                free >> 20,
                self.min_free_bytes >> 20
            ))),
            _ => Ok(()),
        }
    }
}
