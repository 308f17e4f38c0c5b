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
        let hours: u64 = self
            .hours
            .range(day * 24..(day + 1) * 24)
            .map(|(_, h)| h.bytes())
            .sum();
        hours
            + self
                .campaign_days
                .get(&day)
                .map_or(0, |c| campaign_bytes(c))
    }
}

impl Rollups {
    /// Whether `app`'s hours of `day` are out of memory (load them before adding to the day).
    pub fn hours_out(&self, app: &str, day: i64) -> bool {
        self.hour_out_days > 0 && self.apps.get(app).is_some_and(|a| a.hour_pages.is_out(day))
    }

    /// The UTC days of `hours` (hour numbers, end exclusive) whose hours of `app` are out.
    pub fn hour_days_out(&self, app: &str, hours: Range<i64>) -> Vec<i64> {
        self.hour_days_out_numbered(app, hours)
            .into_iter()
            .map(|(d, _)| d)
            .collect()
    }

    /// [`Rollups::hour_days_out`], each day with the number of its going out (for
    /// [`Rollups::restore_hours`]).
    pub(crate) fn hour_days_out_numbered(&self, app: &str, hours: Range<i64>) -> Vec<(i64, u64)> {
        if self.hour_out_days == 0 || hours.is_empty() {
            return Vec::new();
        }
        let Some(a) = self.apps.get(app) else {
            return Vec::new();
        };
        a.hour_pages
            .out_in(hours.start.div_euclid(24)..=(hours.end - 1).div_euclid(24))
    }

    /// Puts `app`'s hours of `days` back: those of `part` (read from the summaries of the
    /// segments covering them) on the days still out since they were listed with their
    /// numbers ([`Rollups::hour_days_out_numbered`]). A day loaded meanwhile (by apply) is
    /// left as it is, so nothing is counted twice; a day that went out again meanwhile stays
    /// out (it may have taken rows after the caller listed the segments, so `part` could lack
    /// them: read it again). Returns the days put back.
    pub(crate) fn restore_hours(
        &mut self,
        app: &str,
        days: &[(i64, u64)],
        mut part: RollupPart,
    ) -> usize {
        let now = self.tick();
        let Some(a) = self.apps.get_mut(app) else {
            return 0;
        };
        let back: BTreeSet<i64> = days
            .iter()
            .filter(|(d, n)| a.hour_pages.take_if(*d, *n))
            .map(|(d, _)| *d)
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
                let hours: Vec<i64> = a
                    .hours
                    .range(day * 24..(day + 1) * 24)
                    .map(|(h, _)| *h)
                    .collect();
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn row(ts: i64, user: &str) -> RollupRow<'_> {
        RollupRow {
            app_id: "a",
            event_type: "open",
            timestamp_ms: ts,
            user_id: Some(user),
            platform: "ios",
            revenue: None,
            campaign: Some("c"),
            source: None,
            medium: None,
        }
    }

    /// A reader's part puts back only the days that stayed out since it listed them: a day
    /// loaded, given a row and sent out again meanwhile stays out (the part may lack the row).
    #[test]
    fn a_day_that_went_out_again_is_not_put_back_from_an_older_read() {
        let day = 24 * HOUR_MS;
        let mut r = Rollups::default();
        for (ts, u) in [(0, "u1"), (HOUR_MS, "u2"), (day, "u1"), (day + 5, "u3")] {
            r.add(row(ts, u));
        }
        let part = |r: &Rollups, rows: &[(i64, &str)]| {
            let mut b = PartBuilder::default();
            for (ts, u) in rows {
                b.add(&row(*ts, u), r.user_number("a", u));
            }
            b.finish()
        };
        let stored = [(0, "u1"), (HOUR_MS, "u2"), (day, "u1"), (day + 5, "u3")];
        assert!(r.evict_hours(u64::MAX, |_, _| true) > 0);
        assert_eq!(r.hour_days_out_count(), 2);
        // A reader lists days 0 and 1 and starts reading their summaries…
        let listed = r.hour_days_out_numbered("a", 0..48);
        let slow = part(&r, &stored);
        // …meanwhile day 0 comes back (apply), takes a row and goes out again.
        let day0 = r.hour_days_out_numbered("a", 0..24);
        assert_eq!(r.restore_hours("a", &day0, part(&r, &stored[..2])), 1);
        r.add(row(2 * HOUR_MS, "u4"));
        r.evict_hours(u64::MAX, |_, d| d == 0);
        // The slow reader's part puts back day 1 only; day 0 is read again.
        assert_eq!(r.restore_hours("a", &listed, slow), 1);
        assert!(r.hours_out("a", 0) && !r.hours_out("a", 1));
        assert_eq!(r.totals("a", 24..48).events, 2);
        let mut now = stored.to_vec();
        now.push((2 * HOUR_MS, "u4"));
        let again = r.hour_days_out_numbered("a", 0..48);
        assert_eq!(r.restore_hours("a", &again, part(&r, &now)), 1);
        let t = r.totals("a", 0..24);
        assert_eq!((t.events, t.users), (3, 3));
        assert_eq!(r.hour_days_out_count(), 0);
    }
}
