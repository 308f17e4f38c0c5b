//! Writing memtable contents as Parquet segments, one per (app, UTC day), and reading back
//! what recovery needs from them.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, TimestampMillisecondType, UInt64Type};
use chrono::Datelike;
use parking_lot::RwLock;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::crash::CrashPoints;
use crate::error::{EngineError, Result};
use crate::io::Io;
use crate::manifest::SegmentMeta;
use crate::rollup::{RollupRow, Rollups};
use crate::schema::{
    events_schema, COL_APP_ID, COL_EVENT_ID, COL_EVENT_TYPE, COL_LOG_INDEX, COL_RECEIVED_AT,
    COL_TIMESTAMP, LOW_CARDINALITY,
};
use crate::summary::SummaryBuilder;

const DAY_MS: i64 = 86_400_000;
pub(crate) const SEGMENTS_DIR: &str = "segments";

/// Columns stored not compressed: the [`LOW_CARDINALITY`] strings, dictionary-encoded, whose
/// pages are bit-packed/RLE dictionary indices that zstd shrinks by 0–20 % (measured on the
/// benchmark's segments: app_id 202 → 247 bytes, event_type 367 → 385, platform 16.7 → 13.5 kB
/// per 64k rows), while every compressed page costs a zstd decoder to read (parquet 55 makes a
/// new decompression context per page: 10 % of the CPU of a `GROUP BY app_id, event_type`);
/// and `revenue`.
fn uncompressed() -> impl Iterator<Item = &'static str> {
    LOW_CARDINALITY.iter().copied().chain(["revenue"])
}

/// Rows per data page at most. Rows are sorted by (event_type, timestamp) inside a segment, so
/// smaller pages let the page index skip more of a filter on either; 20k (parquet's default)
/// left a filter on one event type reading 60 % of the rows of the benchmark's segments.
const PAGE_ROWS: usize = 4096;

/// Parquet settings of new segments.
#[derive(Debug, Clone)]
pub(crate) struct SegmentFormat {
    pub(crate) zstd_level: i32,
    pub(crate) row_group_rows: usize,
}

/// A partition of rows ready to be written: which rows of the source batches, in order.
/// Rows are gathered one row group at a time as the segment is written, so a flush copies
/// each row once and never holds a second, sorted copy of the whole memtable.
pub(crate) struct Partition {
    pub(crate) app_id: String,
    /// Time bucket label (`YYYY-MM-DD`, `YYYY-MM`, `YYYY` or `all`).
    pub(crate) day: String,
    /// Directory of the bucket under the app's (`day=…`, `month=…`, `year=…`, `all`).
    pub(crate) dir: String,
    /// (source batch, row) of each row, in segment order.
    pub(crate) rows: Vec<(u32, u32)>,
}

impl Partition {
    /// Keeps only the rows at or after `from_ms` (a retention floor).
    pub(crate) fn keep_from(&mut self, sources: &[RecordBatch], from_ms: i64) -> Result<()> {
        let ts = sources
            .iter()
            .map(|b| Ok(column(b, COL_TIMESTAMP)?.as_primitive::<TimestampMillisecondType>()))
            .collect::<Result<Vec<_>>>()?;
        self.rows
            .retain(|&(b, r)| ts[b as usize].value(r as usize) >= from_ms);
        Ok(())
    }

    /// Rows `range` of the partition, copied out of `sources` (the batches it was made from).
    pub(crate) fn gather(
        &self,
        sources: &[RecordBatch],
        range: std::ops::Range<usize>,
    ) -> Result<RecordBatch> {
        let picks: Vec<(usize, usize)> = self.rows[range]
            .iter()
            .map(|&(b, r)| (b as usize, r as usize))
            .collect();
        crate::gather::gather(sources, &picks)
    }
}

/// How finely rows are split into segments by event time. Day unless one flush would write
/// more than `max_partitions` segments (e.g. a client spraying timestamps over decades, Q-05),
/// then the coarsest of month, year or one segment per app that stays within the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Granularity {
    Day,
    Month,
    Year,
    App,
}

impl Granularity {
    /// Bucket of an event time (ms since the epoch).
    fn bucket(self, ts_ms: i64) -> i64 {
        let day = ts_ms.div_euclid(DAY_MS);
        match self {
            Granularity::Day => day,
            Granularity::App => 0,
            Granularity::Month | Granularity::Year => {
                let d = chrono::DateTime::from_timestamp(day * 86_400, 0).unwrap_or_default();
                let (y, m) = (i64::from(d.year()), i64::from(d.month0()));
                if self == Granularity::Month {
                    y * 12 + m
                } else {
                    y
                }
            }
        }
    }

    /// The granularity of a stored partition label.
    pub(crate) fn of_label(label: &str) -> Granularity {
        match label.len() {
            10 => Granularity::Day,
            7 => Granularity::Month,
            4 if label != "all" => Granularity::Year,
            _ => Granularity::App,
        }
    }

    /// The partition label stored as the segment's `day` and its directory name.
    fn label(self, bucket: i64) -> (String, String) {
        match self {
            Granularity::Day => {
                let l = day_string(bucket);
                (format!("day={l}"), l)
            }
            Granularity::Month => {
                let l = format!(
                    "{:04}-{:02}",
                    bucket.div_euclid(12),
                    bucket.rem_euclid(12) + 1
                );
                (format!("month={l}"), l)
            }
            Granularity::Year => (format!("year={bucket:04}"), format!("{bucket:04}")),
            Granularity::App => ("all".into(), "all".into()),
        }
    }
}

/// Splits rows into (app, time bucket) partitions, each sorted by (event_type, timestamp,
/// log index), ties kept in apply order. The bucket is a UTC day unless that would make more
/// than `max_partitions` partitions (see [`Granularity`]).
///
/// One integer sort and one gather per partition: apps, buckets and event types are replaced
/// by their rank among the distinct values (looked up once per run of equal values, not once
/// per row), so the sort compares integers, and rows are copied once, straight from the
/// memtable batches into the partition (no concatenated intermediate copy).
pub(crate) fn partition(batches: &[RecordBatch], max_partitions: usize) -> Result<Vec<Partition>> {
    partition_with(batches, max_partitions, None)
}

/// Like [`partition`], with the granularity fixed (compaction keeps its segments' bucket).
pub(crate) fn partition_with(
    batches: &[RecordBatch],
    max_partitions: usize,
    fixed: Option<Granularity>,
) -> Result<Vec<Partition>> {
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Ok(Vec::new());
    }
    let mut cols = Vec::with_capacity(batches.len());
    for b in batches {
        cols.push((
            column(b, COL_APP_ID)?.as_string::<i32>(),
            column(b, COL_EVENT_TYPE)?.as_string::<i32>(),
            column(b, COL_TIMESTAMP)?.as_primitive::<TimestampMillisecondType>(),
            column(b, COL_LOG_INDEX)?.as_primitive::<UInt64Type>(),
        ));
    }
    // Distinct (app, bucket) groups, numbered per row; coarser buckets if there are too many.
    let mut granularity = fixed.unwrap_or(Granularity::Day);
    let (group_of_row, groups) = loop {
        let numbered = number_rows(cols.iter().flat_map(|(apps, _, ts, _)| {
            (0..apps.len()).map(move |row| (apps.value(row), granularity.bucket(ts.value(row))))
        }));
        let coarser = match granularity {
            Granularity::Day => Granularity::Month,
            Granularity::Month => Granularity::Year,
            Granularity::Year | Granularity::App => Granularity::App,
        };
        let n = numbered.1.len();
        if fixed.is_some() || n <= max_partitions.max(1) || coarser == granularity {
            break numbered;
        }
        tracing::warn!(
            partitions = n,
            max_partitions,
            ?coarser,
            "one flush spans too many days; using coarser segments"
        );
        granularity = coarser;
    };
    let (type_of_row, types) = number_rows(
        cols.iter()
            .flat_map(|(_, kinds, _, _)| (0..kinds.len()).map(move |row| kinds.value(row))),
    );
    let (group_rank, group_keys) = ranks(&groups);
    let (type_rank, _) = ranks(&types);
    let mut keys: Vec<(u32, u32, i64, u64, u32, u32)> = Vec::with_capacity(group_of_row.len());
    let mut at = 0;
    for (bi, (_, _, ts, idx)) in cols.iter().enumerate() {
        for row in 0..ts.len() {
            keys.push((
                group_rank[group_of_row[at] as usize],
                type_rank[type_of_row[at] as usize],
                ts.value(row),
                idx.value(row),
                bi as u32,
                row as u32,
            ));
            at += 1;
        }
    }
    drop((group_of_row, type_of_row));
    keys.sort_unstable();
    let mut out = Vec::with_capacity(group_keys.len());
    let mut start = 0;
    for (g, (app_id, bucket)) in group_keys.iter().enumerate() {
        let end = start + keys[start..].partition_point(|k| k.0 == g as u32);
        let picks: Vec<(u32, u32)> = keys[start..end].iter().map(|k| (k.4, k.5)).collect();
        let (dir, label) = granularity.label(*bucket);
        out.push(Partition {
            app_id: app_id.to_string(),
            day: label,
            dir,
            rows: picks,
        });
        start = end;
    }
    Ok(out)
}

/// Numbers distinct values in order of first appearance: each row's number, and the values.
/// Hashes a value only when it differs from the previous row's (rows come in runs: a
/// request's events mostly share app, day and often type).
fn number_rows<K: Eq + std::hash::Hash + Copy>(
    rows: impl Iterator<Item = K>,
) -> (Vec<u32>, Vec<K>) {
    let mut numbers: HashMap<K, u32> = HashMap::new();
    let mut distinct = Vec::new();
    let mut per_row = Vec::with_capacity(rows.size_hint().0);
    let mut last: Option<(K, u32)> = None;
    for k in rows {
        let n = match last {
            Some((lk, n)) if lk == k => n,
            _ => {
                let n = *numbers.entry(k).or_insert_with(|| {
                    distinct.push(k);
                    (distinct.len() - 1) as u32
                });
                last = Some((k, n));
                n
            }
        };
        per_row.push(n);
    }
    (per_row, distinct)
}

/// For values numbered by first appearance: each number's rank in sorted order, and the values
/// in sorted order.
fn ranks<K: Ord + Copy>(distinct: &[K]) -> (Vec<u32>, Vec<K>) {
    let mut order: Vec<u32> = (0..distinct.len() as u32).collect();
    order.sort_unstable_by_key(|&i| distinct[i as usize]);
    let mut rank = vec![0u32; distinct.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i as usize] = r as u32;
    }
    (rank, order.iter().map(|&i| distinct[i as usize]).collect())
}

/// Reads a whole segment back (compaction, rewrites), checked against its manifest entry
/// first (unless `checks` already did): a damaged file must not become a new one that checks
/// out.
pub(crate) fn read_segment(
    checks: &crate::scrub::SegmentChecks,
    root: &Path,
    meta: &SegmentMeta,
) -> Result<Vec<RecordBatch>> {
    checks.check(root, meta)?;
    let path = root.join(&meta.path);
    let pq = |e| EngineError::Parquet {
        path: path.clone(),
        source: e,
    };
    let file = File::open(&path).map_err(|e| EngineError::io(&path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(pq)?
        .with_batch_size(64 * 1024)
        .build()
        .map_err(pq)?;
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if rows as u64 != meta.rows {
        return Err(EngineError::Corrupt {
            what: "segment",
            path,
            reason: format!("holds {rows} rows, the manifest says {}", meta.rows),
        });
    }
    Ok(batches)
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a Arc<dyn Array>> {
    b.column_by_name(name).ok_or_else(|| {
        EngineError::Arrow(arrow::error::ArrowError::SchemaError(format!(
            "missing column {name}"
        )))
    })
}

fn day_string(day: i64) -> String {
    chrono::DateTime::from_timestamp(day * 86_400, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| format!("day{day}"))
}

/// Directory-safe form of an app id (ids outside `[A-Za-z0-9_.-]` are hex-encoded).
fn app_dir(app_id: &str) -> String {
    let safe = !app_id.is_empty()
        && !app_id.starts_with('.')
        && app_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if safe {
        format!("app={app_id}")
    } else {
        let hex: String = app_id.bytes().map(|b| format!("{b:02x}")).collect();
        format!("apphex={hex}")
    }
}

/// What to write next to a segment: its summary, built from its rows as they are written,
/// numbered by dictionary `dictionary_id`.
pub(crate) struct SummaryOut<'r> {
    pub(crate) builder: SummaryBuilder,
    /// The rollups numbering the rows' users.
    pub(crate) rollups: &'r RwLock<Rollups>,
    pub(crate) dictionary_id: u64,
}

/// Writes one partition of `sources` as segment `id`: gathered and encoded one row group at a
/// time, streamed to the file, fsynced; then its summary (if asked, and complete), fsynced;
/// then its new directories fsynced. Crash point `flush.segment_written` fires after the
/// first file.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_segment(
    io: &Io,
    root: &Path,
    id: u64,
    sources: &[RecordBatch],
    part: &Partition,
    fmt: &SegmentFormat,
    crash: &CrashPoints,
    stage: &str,
    mut summary: Option<SummaryOut<'_>>,
) -> Result<(SegmentMeta, SegmentKeysOut)> {
    let rel = PathBuf::from(SEGMENTS_DIR)
        .join(app_dir(&part.app_id))
        .join(&part.dir)
        .join(format!("{id:020}.parquet"));
    let path = root.join(&rel);
    let level = ZstdLevel::try_new(fmt.zstd_level).map_err(|e| EngineError::Parquet {
        path: path.clone(),
        source: e,
    })?;
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_size(fmt.row_group_rows)
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_statistics_enabled(EnabledStatistics::Page)
        // Unique or random per row: a dictionary never pays off and min/max never prunes.
        .set_column_dictionary_enabled("event_id".into(), false)
        .set_column_dictionary_enabled("timestamp".into(), false)
        .set_column_statistics_enabled("event_id".into(), EnabledStatistics::None)
        .set_column_statistics_enabled("session_id".into(), EnabledStatistics::None)
        .set_column_statistics_enabled("user_agent".into(), EnabledStatistics::None);
    for col in uncompressed() {
        props = props.set_column_compression(col.into(), Compression::UNCOMPRESSED);
    }
    let props = props.build();
    let pq = |e| EngineError::Parquet {
        path: path.clone(),
        source: e,
    };
    io.create_dirs_durably(root, rel.parent().unwrap_or(Path::new(SEGMENTS_DIR)))?;
    let file = io.create_streamed(&path)?;
    let mut out = HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
    let mut span = Span::default();
    {
        let mut w = ArrowWriter::try_new(&mut out, events_schema(), Some(props)).map_err(pq)?;
        let step = fmt.row_group_rows.max(1);
        for start in (0..part.rows.len()).step_by(step) {
            let chunk = part.gather(sources, start..(start + step).min(part.rows.len()))?;
            span.cover(&chunk)?;
            if let Some(out) = summary.as_mut() {
                out.builder.add_batch(&chunk, &path, out.rollups)?;
            }
            w.write(&chunk).map_err(pq)?;
        }
        w.close().map_err(pq)?;
    }
    let (bytes, xxh3, file) = out.finish().map_err(|e| EngineError::io(&path, e))?;
    file.sync_all().map_err(|e| EngineError::io(&path, e))?;
    drop(file);
    let meta = SegmentMeta {
        id,
        path: rel.to_string_lossy().into_owned(),
        app_id: part.app_id.clone(),
        day: part.day.clone(),
        rows: part.rows.len() as u64,
        bytes,
        xxh3,
        min_ts_ms: span.ts.map_or(0, |r| r.0),
        max_ts_ms: span.ts.map_or(0, |r| r.1),
        min_log_index: span.log_index.map_or(0, |r| r.0),
        max_log_index: span.log_index.map_or(0, |r| r.1),
        min_received_ms: span.received.map(|r| r.0),
        max_received_ms: span.received.map(|r| r.1),
    };
    // Without a summary, dedupe reads the segment's ids whenever it is asked.
    let mut keys = SegmentKeysOut {
        has_ids: true,
        filter: None,
    };
    if let Some(out) = summary {
        let dictionary_id = out.dictionary_id;
        match out.builder.finish() {
            Some(s) => {
                crate::summary::write(io, root, &meta, dictionary_id, &s)?;
                keys = SegmentKeysOut {
                    has_ids: s.keys > 0,
                    filter: s.filter,
                };
            }
            None => tracing::warn!(
                segment = meta.id,
                "segment written without a summary (the table was replaced meanwhile)"
            ),
        }
    }
    crash.hit(&format!("{stage}.segment_written"));
    if let Some(parent) = path.parent() {
        io.sync_dir(parent)?;
    }
    Ok((meta, keys))
}

/// What dedupe needs of a segment just written: whether it has ids, and their filter.
pub(crate) struct SegmentKeysOut {
    pub(crate) has_ids: bool,
    pub(crate) filter: Option<xorf::BinaryFuse16>,
}

/// The dedupe key and UTC day of every row with an `event_id` of segment `meta`.
pub(crate) fn read_keys(root: &Path, meta: &SegmentMeta) -> Result<Vec<(u128, i64)>> {
    let (path, reader) = read_columns(root, meta, &[COL_EVENT_ID, COL_TIMESTAMP])?;
    let mut out = Vec::with_capacity(meta.rows as usize);
    for batch in reader {
        let batch = batch?;
        let missing = |n: &str| EngineError::Corrupt {
            what: "segment",
            path: path.clone(),
            reason: format!("column {n} missing"),
        };
        let ids = batch
            .column_by_name(COL_EVENT_ID)
            .ok_or_else(|| missing(COL_EVENT_ID))?
            .as_string::<i32>();
        let ts = batch
            .column_by_name(COL_TIMESTAMP)
            .ok_or_else(|| missing(COL_TIMESTAMP))?
            .as_primitive::<TimestampMillisecondType>();
        for row in 0..batch.num_rows() {
            if ids.is_valid(row) {
                out.push((
                    crate::dedupe::key(&meta.app_id, ids.value(row)),
                    crate::funnel::day_of(ts.value(row)),
                ));
            }
        }
    }
    Ok(out)
}

/// Min and max of the columns a segment's manifest entry records.
#[derive(Default)]
struct Span {
    ts: Option<(i64, i64)>,
    log_index: Option<(u64, u64)>,
    received: Option<(i64, i64)>,
}

impl Span {
    fn cover(&mut self, b: &RecordBatch) -> Result<()> {
        fn widen<T: Copy + PartialOrd>(r: &mut Option<(T, T)>, lo: Option<T>, hi: Option<T>) {
            if let (Some(lo), Some(hi)) = (lo, hi) {
                *r = Some(match *r {
                    None => (lo, hi),
                    Some((a, b)) => (if lo < a { lo } else { a }, if hi > b { hi } else { b }),
                });
            }
        }
        let ts = column(b, COL_TIMESTAMP)?.as_primitive::<TimestampMillisecondType>();
        let idx = column(b, COL_LOG_INDEX)?.as_primitive::<UInt64Type>();
        let received = column(b, COL_RECEIVED_AT)?.as_primitive::<TimestampMillisecondType>();
        widen(
            &mut self.ts,
            arrow::compute::min(ts),
            arrow::compute::max(ts),
        );
        widen(
            &mut self.log_index,
            arrow::compute::min(idx),
            arrow::compute::max(idx),
        );
        widen(
            &mut self.received,
            arrow::compute::min(received),
            arrow::compute::max(received),
        );
        Ok(())
    }
}

/// Writes through to a file, counting the bytes and hashing them (xxh3) on the way, so a
/// segment is checksummed without holding it in memory.
struct HashingWriter<W: std::io::Write> {
    inner: std::io::BufWriter<W>,
    hasher: xxhash_rust::xxh3::Xxh3,
    bytes: u64,
}

impl<W: std::io::Write> HashingWriter<W> {
    fn new(inner: std::io::BufWriter<W>) -> Self {
        Self {
            inner,
            hasher: xxhash_rust::xxh3::Xxh3::new(),
            bytes: 0,
        }
    }

    /// Flushes and returns (bytes written, xxh3 of them, the writer).
    fn finish(self) -> std::io::Result<(u64, u64, W)> {
        let file = self.inner.into_inner().map_err(|e| e.into_error())?;
        Ok((self.bytes, self.hasher.digest(), file))
    }
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Checks a listed segment is present and intact (size and xxh3).
pub(crate) fn verify(root: &Path, meta: &SegmentMeta) -> Result<()> {
    use std::io::Read;
    let path = root.join(&meta.path);
    let unreadable = |e: std::io::Error| EngineError::Corrupt {
        what: "segment",
        path: path.clone(),
        reason: format!("listed in the manifest but unreadable: {e}"),
    };
    // Streamed through one reused buffer: reading each file into a fresh allocation made the
    // kernel zero every page of every segment at open (16 GB at 500M events).
    let mut file = std::fs::File::open(&path).map_err(unreadable)?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(unreadable)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    if len != meta.bytes || hasher.digest() != meta.xxh3 {
        return Err(EngineError::Corrupt {
            what: "segment",
            path,
            reason: format!(
                "size or checksum differs from the manifest ({len} bytes on disk, {} expected)",
                meta.bytes
            ),
        });
    }
    Ok(())
}

fn opt_str(a: &arrow::array::StringArray, row: usize) -> Option<&str> {
    a.is_valid(row).then(|| a.value(row))
}

/// What opening a generation rebuilds from each stored row: the dedupe key and the rollups.
pub(crate) struct StoredRow<'a> {
    pub(crate) event_id: Option<&'a str>,
    pub(crate) rollup: RollupRow<'a>,
}

/// A reader of `names`' columns of segment `meta`, and the file's path (for errors).
pub(crate) fn read_columns(
    root: &Path,
    meta: &SegmentMeta,
    names: &[&str],
) -> Result<(
    PathBuf,
    parquet::arrow::arrow_reader::ParquetRecordBatchReader,
)> {
    let path = root.join(&meta.path);
    let pq = |e| EngineError::Parquet {
        path: path.clone(),
        source: e,
    };
    let file = File::open(&path).map_err(|e| EngineError::io(&path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?;
    let schema = events_schema();
    let cols = names
        .iter()
        .map(|n| schema.index_of(n))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), cols);
    let reader = builder.with_projection(mask).build().map_err(pq)?;
    Ok((path, reader))
}

/// Reads, from one segment, the columns that the dedupe set and the rollups are rebuilt from.
pub(crate) fn read_stored_rows(
    root: &Path,
    meta: &SegmentMeta,
    mut f: impl FnMut(StoredRow<'_>),
) -> Result<()> {
    let names = [
        COL_APP_ID,
        COL_EVENT_ID,
        COL_EVENT_TYPE,
        COL_TIMESTAMP,
        "user_id",
        "platform",
        "revenue",
        "attribution_campaign",
        "attribution_source",
        "attribution_medium",
    ];
    let (path, reader) = read_columns(root, meta, &names)?;
    for batch in reader {
        each_stored_row(&batch?, &path, &mut f)?;
    }
    Ok(())
}

/// Calls `f` with each row of `batch` (of the events schema, or a projection holding the
/// columns [`read_stored_rows`] reads); `path` names the file in errors.
pub(crate) fn each_stored_row(
    batch: &RecordBatch,
    path: &Path,
    mut f: impl FnMut(StoredRow<'_>),
) -> Result<()> {
    let col = |n: &str| -> Result<&Arc<dyn Array>> {
        batch.column_by_name(n).ok_or_else(|| EngineError::Corrupt {
            what: "segment",
            path: path.to_path_buf(),
            reason: format!("column {n} missing"),
        })
    };
    let apps = col(COL_APP_ID)?.as_string::<i32>();
    let ids = col(COL_EVENT_ID)?.as_string::<i32>();
    let kinds = col(COL_EVENT_TYPE)?.as_string::<i32>();
    let ts = col(COL_TIMESTAMP)?.as_primitive::<TimestampMillisecondType>();
    let users = col("user_id")?.as_string::<i32>();
    let platforms = col("platform")?.as_string::<i32>();
    let revenue = col("revenue")?.as_primitive::<Float64Type>();
    let campaigns = col("attribution_campaign")?.as_string::<i32>();
    let sources = col("attribution_source")?.as_string::<i32>();
    let media = col("attribution_medium")?.as_string::<i32>();
    for row in 0..batch.num_rows() {
        f(StoredRow {
            event_id: ids.is_valid(row).then(|| ids.value(row)),
            rollup: RollupRow {
                app_id: apps.value(row),
                event_type: kinds.value(row),
                timestamp_ms: ts.value(row),
                user_id: users.is_valid(row).then(|| users.value(row)),
                platform: platforms.value(row),
                revenue: revenue.is_valid(row).then(|| revenue.value(row)),
                campaign: opt_str(campaigns, row),
                source: opt_str(sources, row),
                medium: opt_str(media, row),
            },
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use arrow::array::MapArray;

    use super::*;
    use crate::event::{Attribution, Event};
    use crate::memtable::Memtable;

    fn event(app: &str, kind: &str, ts: i64, id: &str) -> Event {
        Event {
            timestamp_ms: ts,
            app_id: app.into(),
            event_type: kind.into(),
            user_id: None,
            session_id: None,
            device_id: "d".into(),
            platform: "ios".into(),
            app_version: None,
            attribution: Attribution::default(),
            event_data: vec![("id".into(), id.into())],
            revenue: None,
            currency: None,
            ip: None,
            user_agent: None,
            received_at_ms: 0,
            event_id: Some(id.into()),
        }
    }

    /// Rows of a partition as (event_type, timestamp, log_index, event_id, event_data["id"]).
    fn rows(b: &RecordBatch) -> Vec<(String, i64, u64, String, String)> {
        let kinds = column(b, COL_EVENT_TYPE).unwrap().as_string::<i32>();
        let ts = column(b, COL_TIMESTAMP)
            .unwrap()
            .as_primitive::<TimestampMillisecondType>();
        let idx = column(b, COL_LOG_INDEX)
            .unwrap()
            .as_primitive::<UInt64Type>();
        let ids = column(b, COL_EVENT_ID).unwrap().as_string::<i32>();
        let data = column(b, "event_data")
            .unwrap()
            .as_any()
            .downcast_ref::<MapArray>()
            .unwrap();
        (0..b.num_rows())
            .map(|r| {
                let m = data.value(r);
                let v = m.column(1).as_string::<i32>().value(0).to_string();
                (
                    kinds.value(r).to_string(),
                    ts.value(r),
                    idx.value(r),
                    ids.value(r).to_string(),
                    v,
                )
            })
            .collect()
    }

    #[test]
    fn partitions_by_app_and_day_sorted_with_rows_intact() {
        let day = DAY_MS;
        let input = [
            ("b", "open", day + 5, "1"),
            ("a", "open", day + 9, "2"),
            ("a", "buy", day + 9, "3"),
            ("a", "open", 2 * day + 1, "4"),
            ("a", "open", day + 1, "5"),
            ("b", "buy", day + 7, "6"),
            ("a", "buy", day + 9, "7"),
        ];
        // Several memtable batches, as a flush sees them.
        let mut batches = Vec::new();
        for (c, chunk) in input.chunks(3).enumerate() {
            let mut m = Memtable::new();
            for (i, (app, kind, ts, id)) in chunk.iter().enumerate() {
                m.push(
                    &event(app, kind, *ts, id).as_ref(),
                    10 + (c * 3 + i) as u64 / 2,
                )
                .unwrap();
            }
            batches.extend(m.batches().unwrap());
        }
        let parts = partition(&batches, 1000).unwrap();
        let got: Vec<(String, String, Vec<String>)> = parts
            .iter()
            .map(|p| {
                let ids = rows(&p.gather(&batches, 0..p.rows.len()).unwrap())
                    .into_iter()
                    .map(|r| r.3)
                    .collect();
                (p.app_id.clone(), p.day.clone(), ids)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "a".into(),
                    "1970-01-02".into(),
                    vec!["3".into(), "7".into(), "5".into(), "2".into()]
                ),
                ("a".into(), "1970-01-03".into(), vec!["4".into()]),
                (
                    "b".into(),
                    "1970-01-02".into(),
                    vec!["6".into(), "1".into()]
                ),
            ]
        );
        for p in &parts {
            for (kind, ts, idx, id, data_id) in rows(&p.gather(&batches, 0..p.rows.len()).unwrap())
            {
                assert_eq!(id, data_id, "event_data moved with its row");
                let src = input.iter().position(|r| r.3 == id).unwrap();
                assert_eq!((kind.as_str(), ts), (input[src].1, input[src].2));
                assert_eq!(idx, 10 + src as u64 / 2);
            }
        }
        assert!(partition(&[], 1000).unwrap().is_empty());
    }
}
