//! Day-N retention cohorts from the first-event and activity hours.

use super::*;

/// One day-N retention cohort ([`retention`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cohort {
    /// Start of the cohort's UTC day (ms).
    pub day_ms: i64,
    /// `retained[n]`: cohort users active on day n; `retained[0]` is the cohort's size.
    pub retained: Vec<u64>,
}

/// Day-N retention: each user's cohort is the first UTC day within `first` on which they did
/// `cohort_event`; they count as retained on day n (0..=`days`) if they did anything that day
/// within `active` (the same hours extended by `days`). Cohorts in day order, empty ones left
/// out: what the dashboard's retention chart scans for, from bitmaps.
pub fn retention(first: &Hours, active: &Hours, cohort_event: &str, days: u32) -> Vec<Cohort> {
    let active: HashMap<i64, RoaringBitmap> = active.daily_users().into_iter().collect();
    let mut seen = RoaringBitmap::new();
    let mut out = Vec::new();
    for (day, users) in first.daily_users_of_type(cohort_event) {
        let cohort = &users - &seen;
        seen |= &users;
        if cohort.is_empty() {
            continue;
        }
        let retained = (0..=i64::from(days))
            .map(|n| {
                active
                    .get(&(day + n * 24 * HOUR_MS))
                    .map_or(0, |a| cohort.intersection_len(a))
            })
            .collect();
        out.push(Cohort {
            day_ms: day,
            retained,
        });
    }
    out
}
