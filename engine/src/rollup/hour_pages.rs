//! The hours and campaign days of an app by UTC day, paged like the funnel step times
//! ([`super::step_pages`]): days older than `hot_days` stay in the segments' summaries when a
//! generation is opened, the memory budget sends the least recently used loaded days out
//! again, and readers load the days they need first ([`crate::Engine::rollups_over`]). A
//! day's hours and its campaign day go out and come back together.

use std::collections::BTreeSet;

use super::*;

impl AppRollup {
    /// The days with hours or campaigns in memory.
    fn hour_days(&self) -> BTreeSet<i64> {
        let hours = self.hours.keys().map(|h| h.div_euclid(24));
        hours.chain(self.campaign_days.keys().copied()).collect()
    }

    /// Bytes of the user sets of `day` (as [`Rollups::size`] counts them).
    fn day_bytes(&self, day: i64) -> u64 {
        let hours: u64 = self.hours.range(day * 24..(day + 1) * 24).map(|(_, h)| h.bytes()).sum();
        hours + self.campaign_days.get(&day).map_or(0, |c| campaign_bytes(c))
    }
}

impl Rollups {
    /// Whether `app`'s hours of `day` are out of memory (load them before adding to the day).
    pub fn hours_out(&self, app: &str, day: i64) -> bool {
        self.hour_out_days > 0
            && self
                .apps
                .get(app)
                .is_some_and(|a| a.hour_pages.out.contains(&day))
    }

    /// The UTC days of `hours` (hour numbers, end exclusive) whose hours of `app` are out.
    pub fn hour_days_out(&self, app: &str, hours: Range<i64>) -> Vec<i64> {
        if self.hour_out_days == 0 || hours.is_empty() {
            return Vec::new();
        }
        let Some(a) = self.apps.get(app) else {
            return Vec::new();
        };
        let days = hours.start.div_euclid(24)..=(hours.end - 1).div_euclid(24);
        a.hour_pages.out.range(days).copied().collect()
    }

    /// Puts `app`'s hours of `days` back: those of `part` (read from the summaries of the
    /// segments covering them) on the days still out. Days loaded meanwhile (by apply) are
    /// left as they are, so nothing is counted twice. Returns the days put back.
    pub(crate) fn restore_hours(&mut self, app: &str, days: &[i64], mut part: RollupPart) -> usize {
        let now = self.tick();
        let Some(a) = self.apps.get_mut(app) else {
            return 0;
        };
        let back: BTreeSet<i64> = days
            .iter()
            .copied()
            .filter(|d| a.hour_pages.out.remove(d))
            .collect();
        a.hour_pages.used.touch(back.iter().copied(), now);
        self.hour_out_days -= back.len() as u64;
        part.keep_hour_days(&back);
        self.merge(app, part);
        back.len()
    }

    /// Marks `app`'s hours of `day` out without holding them (at open, for days left in the
    /// summaries).
    pub(crate) fn mark_hours_out(&mut self, app: &str, day: i64) {
        let a = match self.apps.get_mut(app) {
            Some(a) => a,
            None => self.apps.entry(app.into()).or_default(),
        };
        let held = a.hours.range(day * 24..(day + 1) * 24).next().is_some()
            || a.campaign_days.contains_key(&day);
        if !held && a.hour_pages.mark_out(day) {
            self.hour_out_days += 1;
        }
    }

    /// Sends loaded days of hours out, least recently used first, until at least `excess`
    /// bytes of user sets left memory (or no day `evictable(app, day)` allows is left: the
    /// engine keeps recent days, days with rows not yet in a segment, and the days of apps
    /// being erased). Returns the bytes sent.
    pub fn evict_hours(&mut self, excess: u64, evictable: impl Fn(&str, i64) -> bool) -> u64 {
        if excess == 0 {
            return 0;
        }
        let mut candidates: Vec<(u64, Box<str>, i64)> = Vec::new();
        for (name, a) in &self.apps {
            for day in a.hour_days().into_iter().filter(|d| evictable(name, *d)) {
                candidates.push((a.hour_pages.used.stamp(day), name.clone(), day));
            }
        }
        candidates.sort();
        let mut sent = 0;
        for (_, name, day) in candidates {
            if sent >= excess {
                break;
            }
            if let Some(a) = self.apps.get_mut(&name) {
                sent += a.day_bytes(day);
                let hours: Vec<i64> = a.hours.range(day * 24..(day + 1) * 24).map(|(h, _)| *h).collect();
                for h in hours {
                    a.hours.remove(&h);
                }
                a.campaign_days.remove(&day);
                if a.hour_pages.mark_out(day) {
                    self.hour_out_days += 1;
                }
            }
        }
        sent
    }

    /// Days of hours held out of memory, over all apps.
    pub fn hour_days_out_count(&self) -> u64 {
        self.hour_out_days
    }

    pub(super) fn touch_hours(&self, app: &AppRollup, days: impl Iterator<Item = i64>) {
        let mut days: Vec<i64> = days.collect();
        days.dedup();
        if !days.is_empty() {
            app.hour_pages.used.touch(days.into_iter(), self.tick());
        }
    }
}
