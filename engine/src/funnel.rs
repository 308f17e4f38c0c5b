//! Ordered funnels from the rollups: every event of a known user, as (user, time), by UTC day
//! and event type. A funnel walks only the days and event types of its steps, with one slot
//! per user of the app, instead of joining the events table with itself.
//!
//! Semantics (the same as the SQL the dashboard runs with `source=scan`): step 1 is each user's
//! first step-1 event in `[from, to)` (time `t0`); step k is the user's first step-k event
//! strictly after their step k-1 time and at most `window` after `t0`, wherever it falls.

use std::collections::BTreeMap;
use std::sync::Arc;

const DAY_MS: i64 = 24 * 3_600_000;

/// The events of known users within one UTC day: `(user number, ms since the day's start)` by
/// event type, in apply order.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct DaySteps {
    pub(crate) by_type: BTreeMap<Box<str>, Vec<(u32, u32)>>,
}

impl DaySteps {
    pub(crate) fn add(&mut self, event_type: &str, user: u32, timestamp_ms: i64) {
        let at = timestamp_ms.rem_euclid(DAY_MS) as u32;
        match self.by_type.get_mut(event_type) {
            Some(v) => v.push((user, at)),
            None => {
                self.by_type.insert(event_type.into(), vec![(user, at)]);
            }
        }
    }

    /// Adds the events of `other` (the order within a type does not matter to a funnel).
    pub(crate) fn merge(&mut self, other: DaySteps) {
        for (k, v) in other.by_type {
            match self.by_type.get_mut(&k) {
                Some(mine) => mine.extend(v),
                None => {
                    self.by_type.insert(k, v);
                }
            }
        }
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        for v in self.by_type.values_mut() {
            v.shrink_to_fit();
        }
    }

    /// Bytes held by the time lists.
    pub(crate) fn bytes(&self) -> u64 {
        let pair = std::mem::size_of::<(u32, u32)>() as u64;
        self.by_type
            .values()
            .map(|v| v.capacity() as u64 * pair)
            .sum()
    }
}

/// The UTC day number of a timestamp.
pub(crate) fn day_of(timestamp_ms: i64) -> i64 {
    timestamp_ms.div_euclid(DAY_MS)
}

/// Some days of one app's step times, taken out of the rollups (reference counts), with the
/// number of users the app had then.
pub struct StepDays {
    pub(crate) days: Vec<(i64, Arc<DaySteps>)>,
    pub(crate) users: usize,
}

/// Users who reached one step of a funnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunnelStep {
    pub users: u64,
}

/// No time yet.
const UNSET: i64 = i64::MAX;

impl StepDays {
    /// The users reaching each of `steps` in order, step 1 within `[from_ms, to_ms)`, each later
    /// step within `window_ms` of the user's step-1 time. The days taken must cover
    /// `[from_ms, to_ms + window_ms)` (see [`crate::Rollups::step_days`]).
    pub fn funnel(
        &self,
        steps: &[&str],
        from_ms: i64,
        to_ms: i64,
        window_ms: i64,
    ) -> Vec<FunnelStep> {
        let mut out = Vec::with_capacity(steps.len());
        let Some((first, rest)) = steps.split_first() else {
            return out;
        };
        let n = self.users;
        // t0: each user's step-1 time; prev: their time at the last step reached.
        let mut t0 = vec![UNSET; n];
        self.each(first, |u, ts| {
            if (from_ms..to_ms).contains(&ts) && ts < t0[u] {
                t0[u] = ts;
            }
        });
        out.push(FunnelStep {
            users: t0.iter().filter(|&&t| t != UNSET).count() as u64,
        });
        let mut prev = t0.clone();
        for step in rest {
            let mut next = vec![UNSET; n];
            self.each(step, |u, ts| {
                let p = prev[u];
                if p != UNSET && ts > p && ts <= t0[u].saturating_add(window_ms) && ts < next[u] {
                    next[u] = ts;
                }
            });
            out.push(FunnelStep {
                users: next.iter().filter(|&&t| t != UNSET).count() as u64,
            });
            prev = next;
        }
        out
    }

    /// Calls `f(user, timestamp_ms)` for every event of `event_type` in the days taken.
    fn each(&self, event_type: &str, mut f: impl FnMut(usize, i64)) {
        for (day, steps) in &self.days {
            let Some(list) = steps.by_type.get(event_type) else {
                continue;
            };
            let base = day * DAY_MS;
            for &(u, at) in list {
                let u = u as usize;
                // Users numbered after the days were taken cannot be in them; guard anyway.
                if u < self.users {
                    f(u, base + i64::from(at));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn days(events: &[(&str, u32, i64)], users: usize) -> StepDays {
        let mut by_day: BTreeMap<i64, DaySteps> = BTreeMap::new();
        for &(kind, u, ts) in events {
            by_day.entry(day_of(ts)).or_default().add(kind, u, ts);
        }
        StepDays {
            days: by_day.into_iter().map(|(d, s)| (d, Arc::new(s))).collect(),
            users,
        }
    }

    fn users(s: &StepDays, steps: &[&str], from: i64, to: i64, window: i64) -> Vec<u64> {
        s.funnel(steps, from, to, window)
            .iter()
            .map(|f| f.users)
            .collect()
    }

    #[test]
    fn steps_in_order_within_the_window_of_the_first() {
        let d = 10 * DAY_MS;
        let s = days(
            &[
                // user 0: click, install, purchase in order within a day.
                ("ad_click", 0, d + H),
                ("install", 0, d + 2 * H),
                ("purchase", 0, d + 3 * H),
                // user 1: install before the click only: stops at step 1.
                ("install", 1, d),
                ("ad_click", 1, d + H),
                // user 2: install 8 days after the click: outside a 7-day window.
                ("ad_click", 2, d + H),
                ("install", 2, d + 8 * DAY_MS + H),
                // user 3: click before the range; the one inside counts as t0, the install
                // the next day (after `to`) still counts.
                ("ad_click", 3, d - H),
                ("ad_click", 3, d + 23 * H),
                ("install", 3, d + DAY_MS + 5 * H),
                // user 4: purchase at the same ms as install: not strictly after.
                ("ad_click", 4, d + H),
                ("install", 4, d + 2 * H),
                ("purchase", 4, d + 2 * H),
            ],
            5,
        );
        let steps = ["ad_click", "install", "purchase"];
        assert_eq!(users(&s, &steps, d, d + DAY_MS, 7 * DAY_MS), vec![5, 3, 1]);
        // A one-hour window keeps the installs of users 0 and 4 (1 h after the click) and no
        // purchase (user 0's is 2 h after the click).
        assert_eq!(users(&s, &steps, d, d + DAY_MS, H), vec![5, 2, 0]);
        // A range without clicks.
        assert_eq!(
            users(&s, &steps, d + 2 * DAY_MS, d + 3 * DAY_MS, DAY_MS),
            vec![0, 0, 0]
        );
    }

    #[test]
    fn a_later_step_is_the_first_after_the_previous_one() {
        let d = 3 * DAY_MS;
        // Purchase, then install, then purchase: the second purchase follows the install.
        let s = days(
            &[
                ("ad_click", 0, d),
                ("purchase", 0, d + H),
                ("install", 0, d + 2 * H),
                ("purchase", 0, d + 3 * H),
            ],
            1,
        );
        assert_eq!(
            users(&s, &["ad_click", "install", "purchase"], d, d + H, DAY_MS),
            vec![1, 1, 1]
        );
        // With a 2.5 h window the purchase at +3 h is out of it.
        assert_eq!(
            users(
                &s,
                &["ad_click", "install", "purchase"],
                d,
                d + H,
                5 * H / 2
            ),
            vec![1, 1, 0]
        );
    }
}
