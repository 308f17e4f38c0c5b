//! Erasure (issue 29; docs/privacy.md): the stored events of one user or device of an app,
//! removed at the same log position on every node.
//!
//! [`crate::Engine::erase`] runs when the log entry is applied: it flushes the memtable (so
//! every row of earlier entries is in a segment), finds the segments holding matching rows
//! and records the erasure — with those segments as its to-do list — in the manifest, and
//! writes the erased events' ids beside it (for mirrors that delete by id). Dedupe stops
//! answering the erased ids at once, so a re-sent event is decided alike on every node
//! whether or not it rewrote its segments yet. The flush thread then rewrites the listed
//! segments one at a time, like a compaction: the new file fsynced, then one manifest edit
//! swaps it in and moves the erasure's progress, then the rollups count the segment's days
//! again. A crash anywhere leaves each segment either old (still listed) or new (not listed),
//! so a restarted node resumes where it stopped.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::datatypes::{TimestampMillisecondType, UInt64Type};
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::funnel::day_of;
use crate::manifest::SegmentMeta;
use crate::rollup::Rollups;
use crate::schema::{COL_APP_ID, COL_EVENT_ID, COL_LOG_INDEX, COL_TIMESTAMP};
use crate::segment::{self, Granularity};

/// An erasure request as the log carries it: the identifiers in every form they may be
/// stored in (as sent, and after the app's privacy transform).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EraseRequest {
    /// Letters, digits and `-` (it names a file).
    pub id: String,
    pub app_id: String,
    pub user_ids: Vec<String>,
    pub device_ids: Vec<String>,
    /// When it was asked for (ms; recorded, not used to decide).
    pub at_ms: i64,
}

/// A segment an erasure still has to rewrite, and how many of its rows it erases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasePart {
    pub segment: u64,
    pub rows: u64,
}

/// An erasure and its progress on this node, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Erasure {
    pub id: String,
    pub app_id: String,
    /// The identifiers (a row with any of them goes); emptied once sealed
    /// ([`crate::Engine::complete_erasure`]).
    pub user_ids: Vec<String>,
    pub device_ids: Vec<String>,
    /// The log index of the request: the matching rows of earlier entries are erased.
    pub index: u64,
    pub at_ms: i64,
    /// Matching rows found when it was applied.
    pub events: u64,
    /// Of those, removed from the segments so far.
    pub events_erased: u64,
    pub segments_rewritten: u64,
    /// Segments still holding matching rows.
    pub todo: Vec<ErasePart>,
    /// The leader and every mirror finished it ([`crate::Engine::complete_erasure`], a log
    /// entry): this node seals it as soon as its own rewrite is done.
    #[serde(default)]
    pub complete: bool,
    /// The identifiers and the erased events' ids were removed.
    #[serde(default)]
    pub sealed: bool,
}

impl Erasure {
    /// Every matching row is gone from this node's segments.
    pub fn done(&self) -> bool {
        self.todo.is_empty()
    }

    /// Complete everywhere, done here, not sealed yet.
    pub(crate) fn seal_due(&self) -> bool {
        !self.sealed && self.complete && self.done()
    }

    /// Which rows of `batch` (stored rows, or a projection holding `app_id`, `user_id`,
    /// `device_id` and `log_index`) this erasure removes. A sealed one matches nothing.
    pub fn matches(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        let n = batch.num_rows();
        if self.user_ids.is_empty() && self.device_ids.is_empty() {
            return Ok(BooleanArray::from(vec![false; n]));
        }
        let col = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| {
                EngineError::Decode(format!("erasure: stored rows lack column {name}"))
            })
        };
        let apps = col(COL_APP_ID)?.as_string::<i32>();
        let users = col("user_id")?.as_string::<i32>();
        let devices = col("device_id")?.as_string::<i32>();
        let index = col(COL_LOG_INDEX)?.as_primitive::<UInt64Type>();
        let any = |set: &[String], v: &str| set.iter().any(|x| x == v);
        Ok((0..n)
            .map(|i| {
                index.value(i) < self.index
                    && apps.value(i) == self.app_id
                    && ((users.is_valid(i) && any(&self.user_ids, users.value(i)))
                        || any(&self.device_ids, devices.value(i)))
            })
            .map(Some)
            .collect())
    }
}

/// `batch` without the rows any of `erasures` removes (for readers of rows that a node may
/// not have rewritten yet, such as the mirrors).
pub fn without_erased(erasures: &[Erasure], batch: RecordBatch) -> Result<RecordBatch> {
    let mut batch = batch;
    for e in erasures.iter().filter(|e| !e.sealed) {
        let hit = e.matches(&batch)?;
        if hit.true_count() > 0 {
            let keep = arrow::compute::not(&hit)?;
            batch = arrow::compute::filter_record_batch(&batch, &keep)?;
        }
    }
    Ok(batch)
}

/// What an erasure removes from one segment.
#[derive(Default)]
pub(crate) struct Found {
    pub(crate) rows: u64,
    /// Dedupe keys of the rows with an `event_id`, with their UTC days.
    pub(crate) keys: Vec<(u128, i64)>,
    pub(crate) event_ids: Vec<String>,
}

/// Finds the rows `e` removes from segment `seg` (reading five columns).
pub(crate) fn scan(root: &Path, seg: &SegmentMeta, e: &Erasure) -> Result<Found> {
    let names = [
        COL_APP_ID,
        "user_id",
        "device_id",
        COL_LOG_INDEX,
        COL_EVENT_ID,
        COL_TIMESTAMP,
    ];
    let (_, reader) = segment::read_columns(root, seg, &names)?;
    let mut found = Found::default();
    for batch in reader {
        let batch = batch?;
        let hit = e.matches(&batch)?;
        if hit.true_count() == 0 {
            continue;
        }
        let ids = batch
            .column_by_name(COL_EVENT_ID)
            .map(|c| c.as_string::<i32>().clone());
        let ts = batch
            .column_by_name(COL_TIMESTAMP)
            .map(|c| c.as_primitive::<TimestampMillisecondType>().clone());
        let (Some(ids), Some(ts)) = (ids, ts) else {
            return Err(EngineError::Decode(
                "erasure: segment lacks event ids".into(),
            ));
        };
        for i in (0..batch.num_rows()).filter(|i| hit.value(*i)) {
            found.rows += 1;
            if ids.is_valid(i) {
                let id = ids.value(i);
                found
                    .keys
                    .push((crate::dedupe::key(&e.app_id, id), day_of(ts.value(i))));
                found.event_ids.push(id.to_string());
            }
        }
    }
    Ok(found)
}

/// Of `out` (days of `app` whose hours are out of memory), those counting one of the users
/// numbered `numbers`: read from the summaries of `segments` covering them (all of a
/// segment's days, if its summary is unusable). Before the erasure takes the engine's locks:
/// summaries are read, not rows.
pub(crate) fn user_days_out(
    root: &Path,
    segments: &[SegmentMeta],
    dictionary_id: u64,
    app: &str,
    out: &BTreeSet<i64>,
    numbers: &roaring::RoaringBitmap,
) -> BTreeSet<i64> {
    let mut found = BTreeSet::new();
    if numbers.is_empty() {
        return found;
    }
    for seg in segments.iter().filter(|s| s.app_id == app) {
        let days: BTreeSet<i64> = out.range(days_of(seg)).copied().collect();
        if days.is_empty() {
            continue;
        }
        match crate::summary::read_hours(root, seg, dictionary_id) {
            Ok(part) => found.extend(part.days_with_users(numbers).intersection(&days)),
            Err(_) => found.extend(days),
        }
    }
    found
}

/// The segments that may hold rows `e` removes: the app's segments of entries before it —
/// for a user, only those covering a day the rollups count them on (and the few spanning a
/// month or more). Days out of memory: those of `out` (the days then out, and of them those
/// counting the users, [`user_days_out`], looked at before the lock), and any gone out since.
pub(crate) fn candidates<'a>(
    segments: &'a [SegmentMeta],
    rollups: &Rollups,
    e: &'a Erasure,
    out: &(BTreeSet<i64>, BTreeSet<i64>),
) -> Vec<&'a SegmentMeta> {
    let days: Option<BTreeSet<i64>> = e.device_ids.is_empty().then(|| {
        let (looked, found) = out;
        let gone_since = rollups
            .hour_days_out(&e.app_id, i64::MIN..i64::MAX)
            .into_iter()
            .filter(|d| !looked.contains(d));
        e.user_ids
            .iter()
            .flat_map(|u| rollups.user_days(&e.app_id, u).unwrap_or_default())
            .chain(found.iter().copied())
            .chain(gone_since)
            .collect()
    });
    segments
        .iter()
        .filter(|s| s.app_id == e.app_id && s.min_log_index < e.index)
        .filter(|s| match &days {
            None => true,
            Some(days) => {
                Granularity::of_label(&s.day) != Granularity::Day
                    || days
                        .range(day_of(s.min_ts_ms)..=day_of(s.max_ts_ms))
                        .next()
                        .is_some()
            }
        })
        .collect()
}

/// The file beside the manifest listing the ids of the events erasure `id` removed.
pub(crate) fn ids_file(root: &Path, id: &str) -> PathBuf {
    root.join(ids_file_name(id))
}

pub(crate) fn ids_file_name(id: &str) -> String {
    format!("erasure-{id}.ids")
}

/// Whether `id` can name an erasure (and its file).
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Reads the erased events' ids written by [`crate::Engine::erase`] (none once sealed).
pub(crate) fn read_ids(root: &Path, id: &str) -> Result<Vec<String>> {
    let path = ids_file(root, id);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(s
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(EngineError::io(&path, e)),
    }
}

/// The UTC days segment `seg` holds rows of.
pub(crate) fn days_of(seg: &SegmentMeta) -> RangeInclusive<i64> {
    day_of(seg.min_ts_ms)..=day_of(seg.max_ts_ms)
}

/// Counts `app`'s `days` again: forgets them, then merges the parts of the segments covering
/// them (read back from their summaries, or their rows where a summary is unusable) and adds
/// the rows still in memory. Under the caller's locks, so apply never sees it half done.
#[allow(clippy::too_many_arguments)]
pub(crate) fn recount_days(
    root: &Path,
    segments: &[SegmentMeta],
    dictionary_id: u64,
    memory: &[RecordBatch],
    rollups: &mut Rollups,
    app: &str,
    days: &RangeInclusive<i64>,
    floor: Option<i64>,
) -> Result<()> {
    rollups.clear_days(app, days);
    let in_days = |ts: i64| days.contains(&day_of(ts));
    for seg in segments.iter().filter(|s| s.app_id == app) {
        let span = days_of(seg);
        if span.end() < days.start() || span.start() > days.end() {
            continue;
        }
        match crate::summary::read(root, seg, dictionary_id) {
            Ok(s) => {
                let mut part = s.part;
                part.keep_days(days);
                rollups.merge(app, part);
            }
            Err(reason) => {
                tracing::warn!(segment = %seg.path, %reason,
                    "segment summary unusable while counting erased days again: reading its rows");
                segment::read_stored_rows(root, seg, |row| {
                    if in_days(row.rollup.timestamp_ms) {
                        rollups.add(row.rollup);
                    }
                })?;
            }
        }
    }
    for batch in memory {
        segment::each_stored_row(batch, Path::new("memtable"), |row| {
            if row.rollup.app_id == app && in_days(row.rollup.timestamp_ms) {
                rollups.add(row.rollup);
            }
        })?;
    }
    if let Some(f) = floor {
        rollups.forget_before(app, f);
    }
    Ok(())
}

/// Seals, in `manifest` (a copy the caller then stores in one edit), every erasure complete
/// everywhere and done here: its identifiers are cleared, and the erased users' names leave
/// the user dictionary — replaced in `rollups` and written into a new dictionary file (the
/// numbering kept) that the edit names — unless rows of them are stored again. Returns the
/// ids of the erasures sealed (the caller removes their `.ids` files after the edit; the old
/// dictionary file goes at the next open, or now).
pub(crate) fn seal_due(
    io: &crate::io::Io,
    root: &Path,
    manifest: &mut crate::Manifest,
    rollups: &mut Rollups,
    dictionary: &mut crate::dictionary::DictionaryWriter,
) -> Result<Vec<String>> {
    let mut sealed = Vec::new();
    let mut forgot = 0;
    for e in manifest.erasures.iter_mut().filter(|e| e.seal_due()) {
        forgot += e
            .user_ids
            .iter()
            .filter(|u| rollups.forget_user(&e.app_id, u))
            .count();
        e.user_ids.clear();
        e.device_ids.clear();
        e.sealed = true;
        sealed.push(e.id.clone());
    }
    if forgot > 0 {
        if let Some(meta) = dictionary.rewrite(io, root, rollups)? {
            manifest.dictionary = Some(meta);
        }
    }
    Ok(sealed)
}
