//! Counters and latency histograms of the log, read by the server's `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;

pub struct WalMetrics {
    /// Number of fsyncs of record data (one per group commit).
    pub fsyncs: AtomicU64,
    /// Records made durable.
    pub records: AtomicU64,
    /// Append calls made durable (each may carry several records).
    pub appends: AtomicU64,
    pub segments_created: AtomicU64,
    /// Write + fdatasync time of each group commit, in microseconds.
    pub fsync_micros: Mutex<Histogram<u64>>,
    /// Append calls per group commit.
    pub group_sizes: Mutex<Histogram<u64>>,
}

impl Default for WalMetrics {
    fn default() -> Self {
        let h = || Histogram::new_with_bounds(1, 60_000_000, 2).expect("static histogram bounds");
        Self {
            fsyncs: AtomicU64::new(0),
            records: AtomicU64::new(0),
            appends: AtomicU64::new(0),
            segments_created: AtomicU64::new(0),
            fsync_micros: Mutex::new(h()),
            group_sizes: Mutex::new(h()),
        }
    }
}

impl WalMetrics {
    pub(crate) fn record_fsync(&self, took: Duration) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        let us = (took.as_micros() as u64).max(1);
        self.fsync_micros.lock().saturating_record(us);
    }

    pub(crate) fn record_group(&self, appends: u64, records: u64) {
        self.appends.fetch_add(appends, Ordering::Relaxed);
        self.records.fetch_add(records, Ordering::Relaxed);
        self.group_sizes.lock().saturating_record(appends.max(1));
    }
}
