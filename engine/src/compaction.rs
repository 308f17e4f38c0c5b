//! Which small segments to merge. Flushes write one segment per (app, time bucket) each time
//! the memtable rotates, so a busy day leaves many small files; compaction rewrites the small
//! segments of one (app, bucket) as one sorted segment (see `Engine`'s flush thread for the
//! crash-safe swap: new file durable, manifest replaced, old files removed when unread).

use std::collections::{BTreeMap, HashSet};

use crate::config::EngineConfig;
use crate::manifest::SegmentMeta;

/// Picks the (app, bucket) with the most small segments, if it has at least
/// `compaction_min_segments` of them, and returns its oldest small segments whose rows add up
/// to at most `compaction_max_rows`. Segments in `skip` (failed before) are never picked.
pub(crate) fn pick(
    segments: &[SegmentMeta],
    cfg: &EngineConfig,
    skip: &HashSet<u64>,
) -> Option<Vec<SegmentMeta>> {
    if cfg.compaction_min_segments < 2 {
        return None;
    }
    let small = (cfg.compaction_max_rows / 2) as u64;
    let mut groups: BTreeMap<(&str, &str), Vec<&SegmentMeta>> = BTreeMap::new();
    for s in segments {
        if s.rows < small && !skip.contains(&s.id) {
            groups.entry((&s.app_id, &s.day)).or_default().push(s);
        }
    }
    let mut best: Option<Vec<SegmentMeta>> = None;
    for (_, mut group) in groups {
        group.sort_by_key(|s| s.id);
        let mut rows = 0u64;
        let picked: Vec<SegmentMeta> = group
            .into_iter()
            .take_while(|s| {
                rows += s.rows;
                rows <= cfg.compaction_max_rows as u64
            })
            .cloned()
            .collect();
        let enough = picked.len() >= cfg.compaction_min_segments;
        if enough && best.as_ref().is_none_or(|b| picked.len() > b.len()) {
            best = Some(picked);
        }
    }
    best
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn seg(id: u64, app: &str, day: &str, rows: u64) -> SegmentMeta {
        SegmentMeta {
            id,
            path: format!("segments/{id}.parquet"),
            app_id: app.into(),
            day: day.into(),
            rows,
            bytes: 1,
            xxh3: 0,
            min_ts_ms: 0,
            max_ts_ms: 0,
            min_log_index: id,
            max_log_index: id,
            min_received_ms: None,
            max_received_ms: None,
        }
    }

    fn ids(p: Option<Vec<SegmentMeta>>) -> Vec<u64> {
        p.map(|v| v.into_iter().map(|s| s.id).collect())
            .unwrap_or_default()
    }

    #[test]
    fn picks_the_fullest_bucket_oldest_first_within_the_row_bound() {
        let cfg = EngineConfig {
            compaction_min_segments: 3,
            compaction_max_rows: 1000,
            ..EngineConfig::default()
        };
        let segs = vec![
            seg(1, "a", "2026-01-01", 100),
            seg(2, "a", "2026-01-01", 100),
            seg(3, "b", "2026-01-01", 100),
            seg(4, "a", "2026-01-02", 100),
            seg(5, "a", "2026-01-01", 100),
            seg(6, "a", "2026-01-01", 600), // not small (>= max/2)
            seg(7, "a", "2026-01-01", 400),
            seg(8, "a", "2026-01-01", 400),
        ];
        // 1+2+5+7 = 700 rows; adding 8 would exceed 1000.
        assert_eq!(ids(pick(&segs, &cfg, &HashSet::new())), vec![1, 2, 5, 7]);
        // Too few small segments anywhere else.
        assert_eq!(
            ids(pick(&segs[2..5], &cfg, &HashSet::new())),
            Vec::<u64>::new()
        );
        // Failed segments are left alone.
        let skip: HashSet<u64> = [1, 2].into();
        assert_eq!(ids(pick(&segs, &cfg, &skip)), vec![5, 7, 8]);
        let off = EngineConfig {
            compaction_min_segments: 0,
            ..cfg
        };
        assert!(pick(&segs, &off, &HashSet::new()).is_none());
    }
}
