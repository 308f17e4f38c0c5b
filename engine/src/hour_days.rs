//! Loading days of an app's hours and campaign days back from the segments' summaries, for
//! the days left out of memory ([`crate::Rollups::evict_hours`], and days older than
//! `hot_days` at open): [`crate::Engine::rollups_over`] for readers, apply for a row on such a
//! day.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::Result;
use crate::funnel::day_of;
use crate::manifest::SegmentMeta;
use crate::rollup::{PartBuilder, RollupPart, Rollups};
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
    rollups: &mut dyn FnMut(&mut dyn FnMut(&Rollups)),
) -> Result<RollupPart> {
    let mut staging = Rollups::default();
    let covers = |s: &SegmentMeta| {
        s.app_id == app
            && days
                .range(day_of(s.min_ts_ms)..=day_of(s.max_ts_ms))
                .next()
                .is_some()
    };
    for seg in segments.iter().filter(|s| covers(s)) {
        let mut part = match summary::read(root, seg, dictionary_id) {
            Ok(s) => s.part,
            Err(reason) => {
                tracing::warn!(segment = %seg.path, %reason,
                    "segment summary unusable for the rollups' hours: reading the rows");
                checks.check(root, seg)?;
                let mut b = PartBuilder::default();
                let mut res = Ok(());
                rollups(&mut |r| {
                    res = segment::read_stored_rows(root, seg, |row| {
                        let e = row.rollup;
                        if days.contains(&day_of(e.timestamp_ms)) {
                            b.add(&e, e.user_id.and_then(|u| r.user_number(app, u)));
                        }
                    });
                });
                res?;
                b.finish()
            }
        };
        part.keep_hour_days(days);
        staging.merge(app, part);
    }
    Ok(staging.take_part(app))
}
