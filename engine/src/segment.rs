//! Writing memtable contents as Parquet segments, one per (app, UTC day), and reading back
//! what recovery needs from them.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, lexsort_to_indices, take_record_batch, SortColumn};
use arrow::datatypes::TimestampMillisecondType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::crash::CrashPoints;
use crate::error::{EngineError, Result};
use crate::manifest::{sync_dir, write_synced, SegmentMeta};
use crate::schema::{
    events_schema, COL_APP_ID, COL_EVENT_ID, COL_EVENT_TYPE, COL_LOG_INDEX, COL_TIMESTAMP,
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
    pub(crate) day: String,
    pub(crate) batch: RecordBatch,
}

/// Splits rows into (app, day) partitions, each sorted by (event_type, timestamp).
pub(crate) fn partition(batches: &[RecordBatch]) -> Result<Vec<Partition>> {
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Ok(Vec::new());
    }
    let all = concat_batches(&events_schema(), batches)?;
    let apps = column(&all, COL_APP_ID)?.as_string::<i32>().clone();
    let ts = column(&all, COL_TIMESTAMP)?
        .as_primitive::<TimestampMillisecondType>()
        .clone();
    let mut groups: BTreeMap<(String, i64), Vec<u32>> = BTreeMap::new();
    for row in 0..all.num_rows() {
        let day = ts.value(row).div_euclid(DAY_MS);
        groups
            .entry((apps.value(row).to_string(), day))
            .or_default()
            .push(row as u32);
    }
    let mut out = Vec::with_capacity(groups.len());
    for ((app_id, day), rows) in groups {
        let part = take_record_batch(&all, &UInt32Array::from(rows))?;
        let order = lexsort_to_indices(
            &[
                SortColumn {
                    values: column(&part, COL_EVENT_TYPE)?.clone(),
                    options: None,
                },
                SortColumn {
                    values: column(&part, COL_TIMESTAMP)?.clone(),
                    options: None,
                },
                SortColumn {
                    values: column(&part, COL_LOG_INDEX)?.clone(),
                    options: None,
                },
            ],
            None,
        )?;
        let sorted = take_record_batch(&part, &order)?;
        out.push(Partition {
            app_id,
            day: day_string(day),
            batch: sorted,
        });
    }
    Ok(out)
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
) -> Result<SegmentMeta> {
    let rel = PathBuf::from(SEGMENTS_DIR)
        .join(app_dir(&part.app_id))
        .join(format!("day={}", part.day))
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
    crash.hit("flush.segment_written");
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    let ts = column(&part.batch, COL_TIMESTAMP)?.as_primitive::<TimestampMillisecondType>();
    let idx = column(&part.batch, COL_LOG_INDEX)?.as_primitive::<arrow::datatypes::UInt64Type>();
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

/// Reads the (app_id, event_id) pairs of a segment, for rebuilding the dedupe set.
pub(crate) fn read_event_ids(
    root: &Path,
    meta: &SegmentMeta,
    mut f: impl FnMut(&str, &str),
) -> Result<()> {
    let path = root.join(&meta.path);
    let pq = |e| EngineError::Parquet {
        path: path.clone(),
        source: e,
    };
    let file = File::open(&path).map_err(|e| EngineError::io(&path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?;
    let schema = events_schema();
    let cols = [schema.index_of(COL_APP_ID)?, schema.index_of(COL_EVENT_ID)?];
    let mask = ProjectionMask::roots(builder.parquet_schema(), cols);
    let reader = builder.with_projection(mask).build().map_err(pq)?;
    for batch in reader {
        let batch = batch?;
        let apps = batch.column(0).as_string::<i32>();
        let ids = batch.column(1).as_string::<i32>();
        for row in 0..batch.num_rows() {
            if ids.is_valid(row) {
                f(apps.value(row), ids.value(row));
            }
        }
    }
    Ok(())
}
