//! Which `(app_id, event_id)` keys are stored, per UTC day of the event's timestamp (a retry
//! carries the same timestamp, so it lands on the same day): the days within the idempotency
//! window (`dedupe_window_secs`) in memory — a set of 128-bit hashes per day — and every
//! older day answered by the segments themselves: each segment's summary holds a filter of its
//! keys (a binary fuse filter, 2.25 bytes a key, one false "maybe" in 65,536), and a "maybe"
//! is settled by reading the segment's ids, which then stay in memory until their day leaves
//! the window again. So memory grows with the window, not with history, and an event re-sent
//! after the window is still stored once.
//!
//! Within `engine.memory_budget_mb` ([`DedupeSet::shrink_to`]): days before yesterday are
//! packed into sorted arrays ([`crate::day_keys`]); over the budget, the filters of segments
//! whose keys are not in memory are left in their summaries (read back when a lookup needs
//! them), then whole days of the window leave memory oldest first — answers stay exact, only
//! late events and re-sends of those days get slower.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use xorf::{BinaryFuse16, Filter};

use crate::day_keys::DayKeys;
use crate::error::Result;
use crate::funnel::day_of;
use crate::hash128::Hash128Set;
use crate::manifest::SegmentMeta;

pub(crate) fn key(app_id: &str, event_id: &str) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(app_id.as_bytes());
    h.update(&[0]);
    h.update(event_id.as_bytes());
    h.digest128()
}

/// The part of a key a segment filter holds.
pub(crate) fn filter_key(k: u128) -> u64 {
    k as u64
}

/// A filter of `keys` (none for an empty set; `Err` only if construction fails, which the
/// caller records as "no filter": every lookup then reads the segment's ids).
pub(crate) fn build_filter(keys: &[u128]) -> Option<BinaryFuse16> {
    if keys.is_empty() {
        return None;
    }
    let mut v: Vec<u64> = keys.iter().map(|k| filter_key(*k)).collect();
    v.sort_unstable();
    v.dedup();
    BinaryFuse16::try_from(&v[..]).ok()
}

/// What dedupe reads of a stored segment when memory does not hold it.
pub(crate) trait StoredKeys {
    /// The `(key, day)` of every row with an `event_id`.
    fn keys(&self, root: &Path, seg: &SegmentMeta) -> Result<Vec<(u128, i64)>>;
    /// The segment's key filter from its summary (`Ok(None)`: the segment has none).
    fn filter(
        &self,
        root: &Path,
        seg: &SegmentMeta,
    ) -> std::result::Result<Option<BinaryFuse16>, String>;
}

/// A segment's key filter, where it is.
enum KeyFilter {
    Held(BinaryFuse16),
    /// Left in the segment's summary by the memory budget.
    InSummary,
    /// None could be built: every lookup reads the ids.
    Absent,
}

/// One segment, as dedupe sees it.
struct SegmentKeys {
    meta: SegmentMeta,
    first_day: i64,
    last_day: i64,
    /// Whether the segment has ids at all, and their filter.
    has_ids: bool,
    filter: KeyFilter,
    /// Its keys are in the day sets (flushed or loaded since open); else it is asked.
    in_memory: bool,
}

pub(crate) struct DedupeSet {
    root: PathBuf,
    window_days: i64,
    days: BTreeMap<i64, DayKeys>,
    segments: HashMap<u64, SegmentKeys>,
    /// The segments whose keys are not in memory (and that have ids), single-day ones by app
    /// and day; those of several days (month, year, whole-app partitions) are few and looked
    /// through.
    by_day: HashMap<Box<str>, HashMap<i64, Vec<u64>>>,
    wide: Vec<u64>,
    /// Lookups settled by reading a segment's ids (filter said maybe).
    pub(crate) segment_reads: u64,
    /// Filters read back from summaries, and days and filters the budget sent out of memory.
    pub(crate) filter_reads: u64,
    pub(crate) budget_evictions: u64,
    /// Set once the budget sent a day of the window out of memory: the window loader stops.
    pub(crate) budget_limited: bool,
    /// Keys of erased events still in a segment not rewritten yet, by segment: that segment
    /// never answers them, so every node decides alike whether or not it rewrote it yet.
    masked: HashMap<u64, Hash128Set>,
}

impl DedupeSet {
    pub(crate) fn new(root: &Path, window_secs: u64) -> Self {
        Self {
            root: root.to_path_buf(),
            window_days: (window_secs / 86_400).max(1) as i64,
            days: BTreeMap::new(),
            segments: HashMap::new(),
            by_day: HashMap::new(),
            wide: Vec::new(),
            segment_reads: 0,
            filter_reads: 0,
            budget_evictions: 0,
            budget_limited: false,
            masked: HashMap::new(),
        }
    }

    /// Forgets the keys of events erased from segment `id` (`keys` with their UTC days): out
    /// of the day sets now, and never answered by the segment until it is rewritten (which
    /// replaces it, [`Self::remove_segment`]).
    pub(crate) fn mask(&mut self, id: u64, keys: &[(u128, i64)]) {
        let mut by_day: BTreeMap<i64, Hash128Set> = BTreeMap::new();
        for (k, day) in keys {
            by_day.entry(*day).or_default().insert(*k);
        }
        for (day, gone) in &by_day {
            if let Some(d) = self.days.get_mut(day) {
                d.remove_all(gone);
            }
        }
        self.masked
            .entry(id)
            .or_default()
            .extend(keys.iter().map(|(k, _)| *k));
    }

    /// Registers a stored segment and its filter; `in_memory` if its keys are already in the
    /// day sets (it was just flushed from rows applied since open).
    pub(crate) fn add_segment(
        &mut self,
        meta: &SegmentMeta,
        has_ids: bool,
        filter: Option<BinaryFuse16>,
        in_memory: bool,
    ) {
        let (first_day, last_day) = (day_of(meta.min_ts_ms), day_of(meta.max_ts_ms));
        self.segments.insert(
            meta.id,
            SegmentKeys {
                meta: meta.clone(),
                first_day,
                last_day,
                has_ids,
                filter: filter.map_or(KeyFilter::Absent, KeyFilter::Held),
                in_memory,
            },
        );
        if !in_memory {
            self.index_cold(meta.id);
        }
    }

    /// Forgets segment `id` (merged away by compaction); returns whether its keys were in
    /// memory.
    pub(crate) fn remove_segment(&mut self, id: u64) -> bool {
        self.unindex_cold(id);
        self.masked.remove(&id);
        self.segments.remove(&id).is_some_and(|s| s.in_memory)
    }

    /// Lists segment `id` among those a lookup of its app and days must ask (its keys are
    /// not in memory). Only those are listed, so a day held in memory costs no lookups.
    fn index_cold(&mut self, id: u64) {
        let Some(s) = self.segments.get(&id) else {
            return;
        };
        if !s.has_ids {
            return;
        }
        if s.first_day == s.last_day {
            self.by_day
                .entry(s.meta.app_id.as_str().into())
                .or_default()
                .entry(s.first_day)
                .or_default()
                .push(id);
        } else {
            self.wide.push(id);
        }
    }

    fn unindex_cold(&mut self, id: u64) {
        let Some(s) = self.segments.get(&id) else {
            return;
        };
        if s.first_day == s.last_day {
            if let Some(days) = self.by_day.get_mut(s.meta.app_id.as_str()) {
                if let Some(v) = days.get_mut(&s.first_day) {
                    v.retain(|x| *x != id);
                    if v.is_empty() {
                        days.remove(&s.first_day);
                    }
                }
                if days.is_empty() {
                    self.by_day.remove(s.meta.app_id.as_str());
                }
            }
        } else {
            self.wide.retain(|x| *x != id);
        }
    }

    /// Whether segment `id`'s keys are in the day sets.
    pub(crate) fn is_in_memory(&self, id: u64) -> bool {
        self.segments.get(&id).is_some_and(|s| s.in_memory)
    }

    /// Inserts the key of an event of `timestamp_ms` applied at log `index`; false if it was
    /// stored before (a duplicate). May read a segment's filter or ids (`stored`) when memory
    /// does not hold them.
    pub(crate) fn insert(
        &mut self,
        app_id: &str,
        k: u128,
        timestamp_ms: i64,
        index: u64,
        stored: &dyn StoredKeys,
    ) -> Result<bool> {
        let day = day_of(timestamp_ms);
        if self.days.get(&day).is_some_and(|d| d.contains(k)) {
            return Ok(false);
        }
        if self.asked(app_id, day, k, stored)? {
            return Ok(false);
        }
        let d = self.days.entry(day).or_default();
        d.insert(k);
        d.last_index = d.last_index.max(index);
        Ok(true)
    }

    /// Asks the segments of (`app_id`, `day`) whose keys are not in memory; on a "maybe",
    /// reads the segment's keys into memory and looks again.
    fn asked(&mut self, app_id: &str, day: i64, k: u128, stored: &dyn StoredKeys) -> Result<bool> {
        if self.by_day.is_empty() && self.wide.is_empty() {
            return Ok(false); // every segment's keys are in memory
        }
        let single = self
            .by_day
            .get(app_id)
            .and_then(|d| d.get(&day))
            .map_or(&[][..], Vec::as_slice);
        let wide = self.wide.iter().filter(|id| {
            self.segments.get(id).is_some_and(|s| {
                s.meta.app_id == app_id && (s.first_day..=s.last_day).contains(&day)
            })
        });
        let cold: Vec<u64> = single.iter().chain(wide).copied().collect();
        for id in cold {
            if !self.maybe_in(id, k, stored) {
                continue;
            }
            self.load_segment(id, stored)?;
            if self.days.get(&day).is_some_and(|d| d.contains(k)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether segment `id` (keys not in memory) may hold `k`, by its filter — read back
    /// from its summary if the budget left it there. A summary that cannot be read is
    /// reported and answered "maybe": the ids decide.
    fn maybe_in(&mut self, id: u64, k: u128, stored: &dyn StoredKeys) -> bool {
        let Some(s) = self.segments.get_mut(&id) else {
            return false;
        };
        if s.in_memory || !s.has_ids || self.masked.get(&id).is_some_and(|m| m.contains(&k)) {
            return false;
        }
        if matches!(s.filter, KeyFilter::InSummary) {
            self.filter_reads += 1;
            s.filter = match stored.filter(&self.root, &s.meta) {
                Ok(Some(f)) => KeyFilter::Held(f),
                Ok(None) => KeyFilter::Absent,
                Err(reason) => {
                    tracing::warn!(segment = %s.meta.path, %reason,
                        "segment summary unusable for its key filter: reading the ids");
                    KeyFilter::Absent
                }
            };
        }
        match &s.filter {
            KeyFilter::Held(f) => f.contains(&filter_key(k)),
            KeyFilter::InSummary | KeyFilter::Absent => true,
        }
    }

    /// Reads segment `id`'s keys into the day sets.
    fn load_segment(&mut self, id: u64, stored: &dyn StoredKeys) -> Result<()> {
        let Some(s) = self.segments.get(&id) else {
            return Ok(());
        };
        let keys = stored.keys(&self.root, &s.meta)?;
        self.segment_reads += 1;
        self.add_keys(id, &keys);
        Ok(())
    }

    /// Adds keys read from segment `id` (by the window loader, or [`Self::load_segment`]) and
    /// marks it in memory.
    pub(crate) fn add_keys(&mut self, id: u64, keys: &[(u128, i64)]) {
        if self.segments.get(&id).is_none_or(|s| s.in_memory) {
            return;
        }
        self.unindex_cold(id);
        if let Some(s) = self.segments.get_mut(&id) {
            s.in_memory = true;
        }
        let masked = self.masked.get(&id);
        for (k, day) in keys {
            if masked.is_none_or(|m| !m.contains(k)) {
                self.days.entry(*day).or_default().insert(*k);
            }
        }
    }

    /// Packs the keys of days before yesterday into sorted arrays: every fresh key on the
    /// housekeeping tick (`min_fresh` 1), or only days whose fresh keys are worth it while
    /// the window loader adds segment after segment.
    pub(crate) fn seal_days(&mut self, now_ms: i64, min_fresh: usize) {
        let yesterday = day_of(now_ms) - 1;
        for d in self.days.range_mut(..yesterday).map(|(_, d)| d) {
            if d.worth_sealing(min_fresh) {
                d.seal();
            }
        }
    }

    /// The segments of the window's days whose keys are not in memory, newest day first (for
    /// the loader that fills the window after open).
    pub(crate) fn window_to_load(&self, now_ms: i64) -> Vec<SegmentMeta> {
        if self.budget_limited {
            return Vec::new();
        }
        let horizon = day_of(now_ms) - self.window_days;
        let mut v: Vec<&SegmentKeys> = self
            .segments
            .values()
            .filter(|s| !s.in_memory && s.has_ids && s.last_day >= horizon)
            .collect();
        v.sort_by_key(|s| std::cmp::Reverse((s.last_day, s.meta.id)));
        v.into_iter().map(|s| s.meta.clone()).collect()
    }

    /// Drops from memory the days older than the window whose keys are all in segments
    /// (`flushed_index`); their segments are asked again from then on. Packs the days
    /// before yesterday.
    pub(crate) fn evict(&mut self, now_ms: i64, flushed_index: Option<u64>) {
        let horizon = day_of(now_ms) - self.window_days;
        let flushed = flushed_index.unwrap_or(0);
        let old: Vec<i64> = self
            .days
            .range(..horizon)
            .filter(|(_, d)| d.last_index <= flushed)
            .map(|(day, _)| *day)
            .collect();
        self.drop_days(&old);
        self.seal_days(now_ms, 1);
    }

    fn drop_days(&mut self, old: &[i64]) {
        if old.is_empty() {
            return;
        }
        for day in old {
            self.days.remove(day);
        }
        // A segment stays in memory only if every day it covers still is.
        let cold: Vec<u64> = self
            .segments
            .values_mut()
            .filter(|s| s.in_memory && (s.first_day..=s.last_day).any(|d| old.contains(&d)))
            .map(|s| {
                s.in_memory = false;
                s.meta.id
            })
            .collect();
        for id in cold {
            self.index_cold(id);
        }
    }

    /// Brings what dedupe holds ([`Self::bytes`]) to at most `budget`: first filters are left
    /// in their summaries (those of segments whose keys are in memory, then the others;
    /// oldest days first),
    /// then whole days of keys leave memory, oldest first — never today's or yesterday's, nor
    /// a day with keys not yet flushed. Returns whether it got there.
    pub(crate) fn shrink_to(
        &mut self,
        budget: u64,
        now_ms: i64,
        flushed_index: Option<u64>,
    ) -> bool {
        let mut held = self.bytes();
        if held <= budget {
            return true;
        }
        let yesterday = day_of(now_ms) - 1;
        // Filters of segments asked through them last (those whose keys are in memory are
        // not asked at all), oldest days first.
        let mut filters: Vec<(bool, i64, u64)> = self
            .segments
            .values()
            .filter(|s| s.last_day < yesterday)
            .filter(|s| matches!(s.filter, KeyFilter::Held(_)))
            .map(|s| (!s.in_memory, s.last_day, s.meta.id))
            .collect();
        filters.sort_unstable();
        for (_, _, id) in filters {
            if held <= budget {
                return true;
            }
            if let Some(s) = self.segments.get_mut(&id) {
                if let KeyFilter::Held(f) = &s.filter {
                    held = held.saturating_sub(f.fingerprints.len() as u64 * 2);
                    s.filter = KeyFilter::InSummary;
                    self.budget_evictions += 1;
                }
            }
        }
        let flushed = flushed_index.unwrap_or(0);
        let days: Vec<(i64, u64)> = self
            .days
            .range(..yesterday)
            .filter(|(_, d)| d.last_index <= flushed)
            .map(|(day, d)| (*day, d.bytes()))
            .collect();
        let mut out = Vec::new();
        for (day, bytes) in days {
            if held <= budget {
                break;
            }
            out.push(day);
            held = held.saturating_sub(bytes);
        }
        if !out.is_empty() {
            self.budget_evictions += out.len() as u64;
            self.budget_limited = true;
            tracing::warn!(days = out.len(), first = out[0],
                "dedupe: days of the window left memory (engine.memory_budget_mb); their ids are answered by the segments' filters");
            self.drop_days(&out);
        }
        held <= budget
    }

    /// Keys held in memory.
    pub(crate) fn len(&self) -> usize {
        self.days.values().map(DayKeys::len).sum()
    }

    /// Days held in memory.
    pub(crate) fn days_in_memory(&self) -> usize {
        self.days.len()
    }

    /// Bytes of the key sets held in memory.
    pub(crate) fn key_bytes(&self) -> u64 {
        self.days.values().map(DayKeys::bytes).sum()
    }

    /// Bytes of the segments' filters held in memory.
    pub(crate) fn filter_bytes(&self) -> u64 {
        self.segments
            .values()
            .filter_map(|s| match &s.filter {
                KeyFilter::Held(f) => Some(f.fingerprints.len() as u64 * 2),
                _ => None,
            })
            .sum()
    }

    /// Filters left in their summaries.
    pub(crate) fn filters_in_summaries(&self) -> usize {
        self.segments
            .values()
            .filter(|s| matches!(s.filter, KeyFilter::InSummary))
            .count()
    }

    /// Everything dedupe holds in memory, as the memory budget counts it.
    pub(crate) fn bytes(&self) -> u64 {
        self.key_bytes() + self.filter_bytes()
    }
}
