//! Funnel step times by UTC day, paged: the days a funnel or apply needs are in memory, others
//! may be left in the segments' summaries ("out") and loaded again on demand by the engine
//! ([`crate::Engine::step_days`]). Which loaded days go out first: the least recently used.

use std::sync::atomic::Ordering;

use super::*;

impl Rollups {
    pub(super) fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether `app`'s step times of `day` are out of memory (load them before adding to or
    /// reading the day).
    pub fn steps_out(&self, app: &str, day: i64) -> bool {
        self.out_days > 0
            && self
                .apps
                .get(app)
                .is_some_and(|a| a.pages.any_out() && a.pages.is_out(day))
    }

    /// The number of `day`'s going out if `app`'s step times of it are out.
    pub(crate) fn step_day_out(&self, app: &str, day: i64) -> Option<u64> {
        if self.out_days == 0 {
            return None;
        }
        let a = self.apps.get(app)?;
        a.pages.out_in(day..=day).first().map(|(_, n)| *n)
    }

    /// The days a funnel over `[from_ms, to_ms)` with `window_ms` needs that are out, each
    /// with the number of its going out (for [`Rollups::restore_steps`]).
    pub fn step_days_out(
        &self,
        app: &str,
        from_ms: i64,
        to_ms: i64,
        window_ms: i64,
    ) -> Vec<(i64, u64)> {
        let Some(a) = self.apps.get(app) else {
            return Vec::new();
        };
        let (first, last) = step_range(from_ms, to_ms, window_ms);
        a.pages.out_in(first..=last)
    }

    /// Puts `app`'s step times of `day` back (loaded from the summaries) if the day is out
    /// since its going out numbered `n` ([`Self::step_days_out`]). False, and nothing changed,
    /// otherwise: someone loaded it meanwhile (and it may have taken rows and gone out again,
    /// so these times may be stale).
    pub(crate) fn restore_steps(&mut self, app: &str, day: i64, n: u64, steps: DaySteps) -> bool {
        let now = self.tick();
        let Some(a) = self.apps.get_mut(app) else {
            return false;
        };
        if !a.pages.take_if(day, n) {
            return false;
        }
        self.out_days -= 1;
        a.steps.insert(day, Arc::new(steps));
        a.pages.used.touch(std::iter::once(day), now);
        true
    }

    /// Marks `app`'s step times of `day` out without holding them (at open, for days left in
    /// the summaries).
    pub(crate) fn mark_steps_out(&mut self, app: &str, day: i64) {
        let a = match self.apps.get_mut(app) {
            Some(a) => a,
            None => self.apps.entry(app.into()).or_default(),
        };
        if !a.steps.contains_key(&day) && a.pages.mark_out(day) {
            self.out_days += 1;
        }
    }

    /// Bytes of the step times held in memory.
    pub fn step_bytes(&self) -> u64 {
        self.apps
            .values()
            .flat_map(|a| a.steps.values())
            .map(|d| d.bytes())
            .sum()
    }

    /// Sends loaded step days out, least recently used first, until the step times take at
    /// most `budget` bytes; only days `evictable(day)` allows (the engine keeps recent days
    /// and days with rows not yet in a segment). Returns the days sent out.
    pub fn evict_steps(&mut self, budget: u64, evictable: impl Fn(i64) -> bool) -> usize {
        let mut total = self.step_bytes();
        if total <= budget {
            return 0;
        }
        let mut candidates: Vec<(u64, Box<str>, i64, u64)> = Vec::new();
        for (name, a) in &self.apps {
            for (day, steps) in &a.steps {
                if evictable(*day) {
                    let stamp = a.pages.used.stamp(*day);
                    candidates.push((stamp, name.clone(), *day, steps.bytes()));
                }
            }
        }
        candidates.sort();
        let mut sent = 0;
        for (_, name, day, bytes) in candidates {
            if total <= budget {
                break;
            }
            if let Some(a) = self.apps.get_mut(&name) {
                a.steps.remove(&day);
                if a.pages.mark_out(day) {
                    self.out_days += 1;
                }
                total = total.saturating_sub(bytes);
                sent += 1;
            }
        }
        sent
    }

    /// Step days held out of memory, over all apps.
    pub fn step_days_out_count(&self) -> u64 {
        self.out_days
    }

    pub(super) fn touch_steps(&self, app: &AppRollup, days: impl Iterator<Item = i64>) {
        app.pages.used.touch(days, self.tick());
    }
}

/// First and last UTC day a funnel over `[from_ms, to_ms)` with `window_ms` reads.
pub(super) fn step_range(from_ms: i64, to_ms: i64, window_ms: i64) -> (i64, i64) {
    let first = day_of(from_ms);
    let last = day_of(to_ms.saturating_sub(1).saturating_add(window_ms));
    (first, last.max(first))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn row(ts: i64, user: &str) -> RollupRow<'_> {
        crate::rollup::tests::row("a", "open", ts, Some(user), "ios", None)
    }

    const DAY_MS: i64 = 24 * HOUR_MS;

    fn events(r: &Rollups, day: i64) -> usize {
        let s = r.step_days("a", day * DAY_MS, (day + 1) * DAY_MS, 0);
        s.days
            .iter()
            .filter(|(d, _)| *d == day)
            .map(|(_, x)| x.by_type.values().map(Vec::len).sum::<usize>())
            .sum()
    }

    /// A funnel's read puts a step day back only if it stayed out since the funnel listed it:
    /// a day loaded, given an event and sent out again meanwhile stays out (the older read
    /// lacks the event) and is read again.
    #[test]
    fn a_step_day_that_went_out_again_is_not_put_back_from_an_older_read() {
        let mut r = Rollups::default();
        r.add(row(10, "u1"));
        r.add(row(DAY_MS + 10, "u2"));
        let stored = |r: &Rollups, n: usize| {
            let mut d = DaySteps::default();
            for u in ["u1", "u9"].iter().take(n) {
                d.add("open", r.user_number("a", u).unwrap_or(0), 10);
            }
            d
        };
        assert_eq!(r.evict_steps(0, |_| true), 2);
        // A funnel lists day 0 and starts reading its summaries…
        let listed = r.step_days_out("a", 0, DAY_MS, 0);
        assert_eq!(listed.len(), 1);
        let slow = stored(&r, 1);
        // …meanwhile apply loads day 0, adds an event, and the budget sends it out again.
        let n = r.step_day_out("a", 0).unwrap();
        assert!(r.restore_steps("a", 0, n, stored(&r, 1)));
        r.add(row(20, "u9"));
        assert_eq!(r.evict_steps(0, |d| d == 0), 1);
        // The slow read is refused; the day is read again, with the event.
        let (day, n) = listed[0];
        assert!(!r.restore_steps("a", day, n, slow));
        assert!(r.steps_out("a", 0));
        let again = r.step_days_out("a", 0, DAY_MS, 0);
        assert_ne!(again[0].1, n);
        assert!(r.restore_steps("a", 0, again[0].1, stored(&r, 2)));
        assert_eq!(events(&r, 0), 2);
        assert_eq!(r.step_days_out_count(), 1, "day 1 is still out");
    }
}
