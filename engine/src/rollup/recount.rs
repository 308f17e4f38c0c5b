//! Counting some UTC days of an app again (erasure, issue 29): forget what the rollups hold
//! of those days, then add back the parts of the segments that cover them and the rows still
//! in memory ([`crate::erasure::recount_days`]). Also which days a user has events on.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;

use super::*;

impl Rollups {
    /// Forgets everything `app` counted on `days` (UTC day numbers): hours, campaign days and
    /// step days, in memory or out (the days are in memory again once parts covering them
    /// are merged).
    pub(crate) fn clear_days(&mut self, app: &str, days: &RangeInclusive<i64>) {
        let Some(a) = self.apps.get_mut(app) else {
            return;
        };
        let hours = days.start() * 24..(days.end() + 1) * 24;
        a.hours.retain(|h, _| !hours.contains(h));
        a.campaign_days.retain(|d, _| !days.contains(d));
        a.steps.retain(|d, _| !days.contains(d));
        self.out_days -= a.pages.clear(days);
        self.hour_out_days -= a.hour_pages.clear(days);
    }

    /// Replaces `user`'s name in `app`'s numbering by a placeholder (erasure: no stored event
    /// has it any more), so the dictionary written next no longer holds it. False if the
    /// app does not number it, or if an hour still counts it (rows of it are stored).
    pub(crate) fn forget_user(&mut self, app: &str, user: &str) -> bool {
        if self.user_days(app, user).is_none_or(|d| !d.is_empty()) {
            return false;
        }
        let Some(a) = self.apps.get_mut(app) else {
            return false;
        };
        let Some(n) = a.users.remove(user) else {
            return false;
        };
        let gone: Arc<str> = format!("\u{0}erased\u{0}{n}").into();
        if let Some(slot) = a.names.get_mut(n as usize) {
            a.name_bytes = a.name_bytes - slot.len() as u64 + gone.len() as u64;
            *slot = gone.clone();
        }
        a.users.insert(gone, n);
        true
    }

    /// The UTC days on which `app` has events of `user` (None: no stored event has it).
    pub(crate) fn user_days(&self, app: &str, user: &str) -> Option<BTreeSet<i64>> {
        let a = self.apps.get(app)?;
        let n = *a.users.get(user)?;
        Some(
            a.hours
                .iter()
                .filter(|(_, h)| h.users.contains(n))
                .map(|(h, _)| h.div_euclid(24))
                .collect(),
        )
    }
}
