//! Writing memtable contents as Parquet segments, one per (app, UTC day), and reading back
//! what recovery needs from them.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::{Float64Type, TimestampMillisecondType, UInt64Type};
use chrono::Datelike;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::crash::CrashPoints;
use crate::error::{EngineError, Result};
use crate::manifest::{sync_dir, write_synced, SegmentMeta};
use crate::rollup::RollupRow;
use crate::schema::{
    events_schema, COL_APP_ID, COL_EVENT_ID, COL_EVENT_TYPE, COL_LOG_INDEX, COL_RECEIVED_AT,
    COL_TIMESTAMP,
};

const DAY_MS: i64 = 86_400_000;
pub(crate) const SEGMENTS_DIR: &str = "segments";

/// Parquet settings of new segments.
#[derive(Debug, Clone)]
pub(crate) struct SegmentFormat {
    pub(crate) zstd_level: i32,
    pub(crate) row_group_rows: usize,
}

/// A partition of rows ready to be written.
pub(crate) struct Partition {
    pub(crate) app_id: String,
    /// Time bucket label (`YYYY-MM-DD`, `YYYY-MM`, `YYYY` or `all`).
    pub(crate) day: String,
    /// Directory of the bucket under the app's (`day=…`, `month=…`, `year=…`, `all`).
    pub(crate) dir: String,
    pub(crate) batch: RecordBatch,
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
/// One integer sort and one gather per partition: event types are replaced by their rank among
/// the distinct values, so the sort compares integers, and rows are copied once, straight from
/// the memtable batches into the partition (no concatenated intermediate copy).
pub(crate) fn partition(batches: &[RecordBatch], max_partitions: usize) -> Result<Vec<Partition>> {
    partition_with(batches, max_partitions, None)
}

/// Like [`partition`], with the granularity fixed (compaction keeps its segments' bucket).
pub(crate) fn partition_with(
    batches: &[RecordBatch],
    max_partitions: usize,
    fixed: Option<Granularity>,
) -> Result<Vec<Partition>> {
    let batches: Vec<&RecordBatch> = batches.iter().filter(|b| b.num_rows() > 0).collect();
    if batches.is_empty() {
        return Ok(Vec::new());
    }
    let mut cols = Vec::with_capacity(batches.len());
    for b in &batches {
        cols.push((
            column(b, COL_APP_ID)?.as_string::<i32>(),
            column(b, COL_EVENT_TYPE)?.as_string::<i32>(),
            column(b, COL_TIMESTAMP)?.as_primitive::<TimestampMillisecondType>(),
            column(b, COL_LOG_INDEX)?.as_primitive::<UInt64Type>(),
        ));
    }
    // Distinct (app, bucket) groups and event types, each numbered in sorted order.
    let mut granularity = fixed.unwrap_or(Granularity::Day);
    let mut groups: HashMap<(&str, i64), u32> = HashMap::new();
    loop {
        groups.clear();
        for (apps, _, ts, _) in &cols {
            for row in 0..apps.len() {
                groups.insert((apps.value(row), granularity.bucket(ts.value(row))), 0);
            }
        }
        let coarser = match granularity {
            Granularity::Day => Granularity::Month,
            Granularity::Month => Granularity::Year,
            Granularity::Year | Granularity::App => Granularity::App,
        };
        if fixed.is_some() || groups.len() <= max_partitions.max(1) || coarser == granularity {
            break;
        }
        tracing::warn!(
            partitions = groups.len(),
            max_partitions,
            ?coarser,
            "one flush spans too many days; using coarser segments"
        );
        granularity = coarser;
    }
    let mut types: HashMap<&str, u32> = HashMap::new();
    for (_, kinds, _, _) in &cols {
        for row in 0..kinds.len() {
            types.insert(kinds.value(row), 0);
        }
    }
    let group_keys = number_in_order(&mut groups);
    number_in_order(&mut types);
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut keys: Vec<(u32, u32, i64, u64, u32, u32)> = Vec::with_capacity(total);
    for (bi, (apps, kinds, ts, idx)) in cols.iter().enumerate() {
        for row in 0..apps.len() {
            let t = ts.value(row);
            keys.push((
                groups[&(apps.value(row), granularity.bucket(t))],
                types[kinds.value(row)],
                t,
                idx.value(row),
                bi as u32,
                row as u32,
            ));
        }
    }
    keys.sort_unstable();
    let all = concat_batches(&events_schema(), batches.iter().copied())?;
    let offsets: Vec<u32> = batches
        .iter()
        .scan(0u32, |acc, b| {
            let o = *acc;
            *acc += b.num_rows() as u32;
            Some(o)
        })
        .collect();
    let mut out = Vec::with_capacity(group_keys.len());
    let mut start = 0;
    for (g, (app_id, bucket)) in group_keys.iter().enumerate() {
        let end = start + keys[start..].partition_point(|k| k.0 == g as u32);
        let picks: UInt32Array = keys[start..end]
            .iter()
            .map(|k| offsets[k.4 as usize] + k.5)
            .collect();
        let (dir, label) = granularity.label(*bucket);
        out.push(Partition {
            app_id: app_id.to_string(),
            day: label,
            dir,
            batch: take_record_batch(&all, &picks)?,
        });
        start = end;
    }
    Ok(out)
}

/// Reads a whole segment back (for compaction), checking it against its manifest entry.
pub(crate) fn read_segment(root: &Path, meta: &SegmentMeta) -> Result<Vec<RecordBatch>> {
    verify(root, meta)?;
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

/// Replaces each value of `m` by the rank of its key; returns the keys in rank order.
fn number_in_order<K: Ord + Copy + std::hash::Hash>(m: &mut HashMap<K, u32>) -> Vec<K> {
    let mut ks: Vec<K> = m.keys().copied().collect();
    ks.sort_unstable();
    for (i, k) in ks.iter().enumerate() {
        m.insert(*k, i as u32);
    }
    ks
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

/// Writes one partition as segment `id`: encoded in memory, written, fsynced, and its new
/// directories fsynced. Crash point `flush.segment_written` fires after the first file.
pub(crate) fn write_segment(
    root: &Path,
    id: u64,
    part: &Partition,
    fmt: &SegmentFormat,
    crash: &CrashPoints,
    stage: &str,
) -> Result<SegmentMeta> {
    let rel = PathBuf::from(SEGMENTS_DIR)
        .join(app_dir(&part.app_id))
        .join(&part.dir)
        .join(format!("{id:020}.parquet"));
    let path = root.join(&rel);
    let level = ZstdLevel::try_new(fmt.zstd_level).map_err(|e| EngineError::Parquet {
        path: path.clone(),
        source: e,
    })?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_size(fmt.row_group_rows)
        .set_statistics_enabled(EnabledStatistics::Page)
        .build();
    let mut buf = Vec::with_capacity(part.batch.get_array_memory_size() / 4);
    {
        let mut w =
            ArrowWriter::try_new(&mut buf, part.batch.schema(), Some(props)).map_err(|e| {
                EngineError::Parquet {
                    path: path.clone(),
                    source: e,
                }
            })?;
        w.write(&part.batch).map_err(|e| EngineError::Parquet {
            path: path.clone(),
            source: e,
        })?;
        w.close().map_err(|e| EngineError::Parquet {
            path: path.clone(),
            source: e,
        })?;
    }
    create_dirs_durably(root, rel.parent().unwrap_or(Path::new(SEGMENTS_DIR)))?;
    write_synced(&path, &buf)?;
    crash.hit(&format!("{stage}.segment_written"));
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    let ts = column(&part.batch, COL_TIMESTAMP)?.as_primitive::<TimestampMillisecondType>();
    let idx = column(&part.batch, COL_LOG_INDEX)?.as_primitive::<arrow::datatypes::UInt64Type>();
    let received = column(&part.batch, COL_RECEIVED_AT)?.as_primitive::<TimestampMillisecondType>();
    Ok(SegmentMeta {
        id,
        path: rel.to_string_lossy().into_owned(),
        app_id: part.app_id.clone(),
        day: part.day.clone(),
        rows: part.batch.num_rows() as u64,
        bytes: buf.len() as u64,
        xxh3: xxhash_rust::xxh3::xxh3_64(&buf),
        min_ts_ms: arrow::compute::min(ts).unwrap_or(0),
        max_ts_ms: arrow::compute::max(ts).unwrap_or(0),
        min_log_index: arrow::compute::min(idx).unwrap_or(0),
        max_log_index: arrow::compute::max(idx).unwrap_or(0),
        min_received_ms: arrow::compute::min(received),
        max_received_ms: arrow::compute::max(received),
    })
}

/// Creates `rel` under `root`, fsyncing each parent whose entry was added.
fn create_dirs_durably(root: &Path, rel: &Path) -> Result<()> {
    let mut cur = root.to_path_buf();
    for comp in rel.components() {
        let parent = cur.clone();
        cur.push(comp);
        if !cur.exists() {
            std::fs::create_dir(&cur).map_err(|e| EngineError::io(&cur, e))?;
            sync_dir(&parent)?;
        }
    }
    Ok(())
}

/// Checks a listed segment is present and intact (size and xxh3).
pub(crate) fn verify(root: &Path, meta: &SegmentMeta) -> Result<()> {
    let path = root.join(&meta.path);
    let bytes = std::fs::read(&path).map_err(|e| EngineError::Corrupt {
        what: "segment",
        path: path.clone(),
        reason: format!("listed in the manifest but unreadable: {e}"),
    })?;
    if bytes.len() as u64 != meta.bytes || xxhash_rust::xxh3::xxh3_64(&bytes) != meta.xxh3 {
        return Err(EngineError::Corrupt {
            what: "segment",
            path,
            reason: format!(
                "size or checksum differs from the manifest ({} bytes on disk, {} expected)",
                bytes.len(),
                meta.bytes
            ),
        });
    }
    Ok(())
}

/// What opening a generation rebuilds from each stored row: the dedupe key and the rollups.
pub(crate) struct StoredRow<'a> {
    pub(crate) event_id: Option<&'a str>,
    pub(crate) rollup: RollupRow<'a>,
}

/// Reads, from one segment, the columns that the dedupe set and the rollups are rebuilt from.
pub(crate) fn read_stored_rows(
    root: &Path,
    meta: &SegmentMeta,
    mut f: impl FnMut(StoredRow<'_>),
) -> Result<()> {
    let path = root.join(&meta.path);
    let pq = |e| EngineError::Parquet {
        path: path.clone(),
        source: e,
    };
    let file = File::open(&path).map_err(|e| EngineError::io(&path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?;
    let schema = events_schema();
    let names = [
        COL_APP_ID,
        COL_EVENT_ID,
        COL_EVENT_TYPE,
        COL_TIMESTAMP,
        "user_id",
        "platform",
        "revenue",
    ];
    let cols = names
        .iter()
        .map(|n| schema.index_of(n))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), cols);
    let reader = builder.with_projection(mask).build().map_err(pq)?;
    for batch in reader {
        let batch = batch?;
        let col = |n: &str| -> Result<&Arc<dyn Array>> {
            batch.column_by_name(n).ok_or_else(|| EngineError::Corrupt {
                what: "segment",
                path: path.clone(),
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
                },
            });
        }
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
                m.push(&event(app, kind, *ts, id), 10 + (c * 3 + i) as u64 / 2)
                    .unwrap();
            }
            batches.extend(m.batches().unwrap());
        }
        let parts = partition(&batches, 1000).unwrap();
        let got: Vec<(String, String, Vec<String>)> = parts
            .iter()
            .map(|p| {
                let ids = rows(&p.batch).into_iter().map(|r| r.3).collect();
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
            for (kind, ts, idx, id, data_id) in rows(&p.batch) {
                assert_eq!(id, data_id, "event_data moved with its row");
                let src = input.iter().position(|r| r.3 == id).unwrap();
                assert_eq!((kind.as_str(), ts), (input[src].1, input[src].2));
                assert_eq!(idx, 10 + src as u64 / 2);
            }
        }
        assert!(partition(&[], 1000).unwrap().is_empty());
    }
}
