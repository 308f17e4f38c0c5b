//! Loading a day of funnel step times back from the segments' summaries, for the days the
//! rollups left out of memory ([`crate::Rollups::evict_steps`]).

use std::path::Path;

use crate::error::Result;
use crate::funnel::{day_of, DaySteps};
use crate::manifest::SegmentMeta;
use crate::rollup::WithRollups;
use crate::segment;
use crate::summary;

/// The segments of `app` that may hold rows of `day`.
pub(crate) fn segments_of(segments: &[SegmentMeta], app: &str, day: i64) -> Vec<SegmentMeta> {
    segments
        .iter()
        .filter(|s| s.app_id == app && (day_of(s.min_ts_ms)..=day_of(s.max_ts_ms)).contains(&day))
        .cloned()
        .collect()
}

/// `app`'s step times of `day` from `segments` (all of the app's segments that may hold the
/// day): from their summaries, or — for a summary missing or damaged — from their rows,
/// numbering users by `rollups` (called only then).
pub(crate) fn read_day(
    root: &Path,
    segments: &[SegmentMeta],
    dictionary_id: u64,
    day: i64,
    rollups: &mut WithRollups<'_>,
) -> Result<DaySteps> {
    let mut out = DaySteps::default();
    for seg in segments {
        match summary::read(root, seg, dictionary_id) {
            Ok(mut s) => {
                if let Some(d) = s.part.take_steps(day) {
                    out.merge(d);
                }
            }
            Err(reason) => {
                tracing::warn!(segment = %seg.path, %reason,
                    "segment summary unusable for funnel step times: reading the rows");
                let mut err = None;
                rollups(&mut |r| {
                    let res = segment::read_stored_rows(root, seg, |row| {
                        let e = row.rollup;
                        if day_of(e.timestamp_ms) != day {
                            return;
                        }
                        if let Some(u) = e.user_id.and_then(|u| r.user_number(e.app_id, u)) {
                            out.add(e.event_type, u, e.timestamp_ms);
                        }
                    });
                    if let Err(e) = res {
                        err = Some(e);
                    }
                });
                if let Some(e) = err {
                    return Err(e);
                }
            }
        }
    }
    out.shrink_to_fit();
    Ok(out)
}
