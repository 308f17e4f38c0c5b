//! Days of an app's rollups that may leave memory ("out": left in the segments' summaries,
//! loaded again on demand by the engine) and when loaded days were last used, so the least
//! recently used go out first. The funnel step times ([`super::step_pages`]) and the hours
//! with their campaign days ([`super::hour_pages`]) are paged this way, each by its own
//! [`Pages`].

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

/// When each loaded day of an app was last used (a stamp of [`super::Rollups::clock`]).
#[derive(Debug, Default)]
pub(super) struct Used(parking_lot::Mutex<BTreeMap<i64, u64>>);

impl Used {
    pub(super) fn touch(&self, days: impl Iterator<Item = i64>, now: u64) {
        let mut m = self.0.lock();
        for d in days {
            m.insert(d, now);
        }
    }

    pub(super) fn stamp(&self, day: i64) -> u64 {
        self.0.lock().get(&day).copied().unwrap_or(0)
    }

    pub(super) fn remove(&self, day: i64) {
        self.0.lock().remove(&day);
    }
}

/// Which days are out (each with the number of its going out, so a reader that read a day
/// back can tell whether it went out again meanwhile), and when loaded ones were last used.
#[derive(Debug, Default)]
pub(super) struct Pages {
    out: BTreeMap<i64, u64>,
    /// Days sent out so far.
    sent: u64,
    pub(super) used: Used,
}

impl Pages {
    /// Marks `day` out; false if it already was.
    pub(super) fn mark_out(&mut self, day: i64) -> bool {
        self.used.remove(day);
        if self.out.contains_key(&day) {
            return false;
        }
        self.sent += 1;
        self.out.insert(day, self.sent);
        true
    }

    pub(super) fn is_out(&self, day: i64) -> bool {
        self.out.contains_key(&day)
    }

    pub(super) fn any_out(&self) -> bool {
        !self.out.is_empty()
    }

    /// The days of `days` that are out, each with the number of its going out.
    pub(super) fn out_in(&self, days: RangeInclusive<i64>) -> Vec<(i64, u64)> {
        self.out.range(days).map(|(d, n)| (*d, *n)).collect()
    }

    /// `day` is in memory again if it is out since its going out numbered `n` (not out and
    /// back and out again since it was listed); false, and nothing changed, otherwise.
    pub(super) fn take_if(&mut self, day: i64, n: u64) -> bool {
        if self.out.get(&day) != Some(&n) {
            return false;
        }
        self.out.remove(&day);
        true
    }

    /// Forgets the days before `day`, out or loaded; returns how many out days went.
    pub(super) fn forget_before(&mut self, day: i64) -> u64 {
        let kept = self.out.split_off(&day);
        let gone = self.out.len() as u64;
        self.out = kept;
        let mut m = self.used.0.lock();
        *m = m.split_off(&day);
        gone
    }

    /// No day of `days` is out any more (they are counted in memory again); returns how
    /// many were.
    pub(super) fn clear(&mut self, days: &RangeInclusive<i64>) -> u64 {
        let before = self.out.len();
        self.out.retain(|d, _| !days.contains(d));
        (before - self.out.len()) as u64
    }
}
