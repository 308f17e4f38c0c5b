//! Loading days of an app's hours and campaign days back from the segments' summaries, for
//! the days left out of memory ([`crate::Rollups::evict_hours`], and days older than
//! `hot_days` at open): [`crate::Engine::rollups_over`] for readers, apply for a row on such a
//! day.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::{EngineError, Result};
use crate::funnel::day_of;
use crate::manifest::SegmentMeta;
use crate::rollup::{PartBuilder, RollupPart, Rollups, WithRollups};
use crate::scrub::SegmentChecks;
use crate::segment;
use crate::summary;

/// What `app`'s rows of `days` count, from the summaries of `segments` (those of them that
/// are `app`'s and may hold rows of those days) — or, for a summary missing or damaged, from
/// the rows (checked first), numbering users by `rollups` (called only then). One part, so
/// the caller restores the days under its lock at once.
pub(crate) fn read_days(
    checks: &SegmentChecks,
    root: &Path,
    segments: &[SegmentMeta],
    dictionary_id: u64,
    app: &str,
    days: &BTreeSet<i64>,
    rollups: &mut WithRollups<'_>,
) -> Result<RollupPart> {
    let covering: Vec<&SegmentMeta> = segments
        .iter()
        .filter(|s| {
            s.app_id == app
                && days
                    .range(day_of(s.min_ts_ms)..=day_of(s.max_ts_ms))
                    .next()
                    .is_some()
        })
        .collect();
    // Summaries read and merged on 2-4 threads (weeks of a large node are thousands of
    // summaries), each into its own part; the segments whose summary is unusable come back.
    let k = std::thread::available_parallelism()
        .map_or(2, |n| n.get().clamp(2, 4))
        .min(covering.len().max(1));
    let (parts, unusable) = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..k)
            .map(|j| {
                let covering = &covering;
                scope.spawn(move || {
                    let mut staging = Rollups::default();
                    let mut unusable = Vec::new();
                    for seg in covering.iter().skip(j).step_by(k) {
                        match summary::read_hours(root, seg, dictionary_id) {
                            Ok(mut part) => {
                                part.keep_hour_days(days);
                                staging.merge(app, part);
                            }
                            Err(reason) => unusable.push(((*seg).clone(), reason)),
                        }
                    }
                    (staging.take_part(app), unusable)
                })
            })
            .collect();
        let mut parts = Vec::with_capacity(k);
        let mut unusable = Vec::new();
        for t in threads {
            let (p, u) = t
                .join()
                .map_err(|_| EngineError::Decode("a summary reader panicked".into()))?;
            parts.push(p);
            unusable.extend(u);
        }
        Ok::<_, EngineError>((parts, unusable))
    })?;
    let mut staging = Rollups::default();
    for part in parts {
        staging.merge(app, part);
    }
    for (seg, reason) in unusable {
        tracing::warn!(segment = %seg.path, %reason,
            "segment summary unusable for the rollups' hours: reading the rows");
        checks.check(root, &seg)?;
        let mut b = PartBuilder::default();
        let mut res = Ok(());
        rollups(&mut |r| {
            res = segment::read_stored_rows(root, &seg, |row| {
                let e = row.rollup;
                if days.contains(&day_of(e.timestamp_ms)) {
                    b.add(&e, e.user_id.and_then(|u| r.user_number(app, u)));
                }
            });
        });
        res?;
        let mut part = b.finish();
        part.keep_hour_days(days);
        staging.merge(app, part);
    }
    Ok(staging.take_part(app))
}
