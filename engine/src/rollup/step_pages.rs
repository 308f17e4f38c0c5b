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

    /// The days a funnel over `[from_ms, to_ms)` with `window_ms` needs that are out.
    pub fn step_days_out(&self, app: &str, from_ms: i64, to_ms: i64, window_ms: i64) -> Vec<i64> {
        let Some(a) = self.apps.get(app) else {
            return Vec::new();
        };
        let (first, last) = step_range(from_ms, to_ms, window_ms);
        a.pages
            .out_in(first..=last)
            .into_iter()
            .map(|(d, _)| d)
            .collect()
    }

    /// Puts `app`'s step times of `day` back (loaded from the summaries). False, and nothing
    /// changed, if the day is not out (someone loaded it meanwhile).
    pub(crate) fn restore_steps(&mut self, app: &str, day: i64, steps: DaySteps) -> bool {
        let now = self.tick();
        let Some(a) = self.apps.get_mut(app) else {
            return false;
        };
        if !a.pages.take(day) {
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
