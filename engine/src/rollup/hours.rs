//! [`Hours`]: some hours of one app and what they add up to.

use super::*;

/// Some hours of one app, taken out of [`Rollups`].
pub struct Hours(pub(super) Vec<(i64, Arc<Hour>)>);

impl Hours {
    /// Totals cut into buckets of `width_hours` aligned on multiples of it since the epoch
    /// (24 = UTC days); buckets without events are left out. `width_hours` ≥ the range gives
    /// one bucket (or none).
    pub fn buckets(&self, width_hours: i64) -> Vec<Bucket> {
        let width = width_hours.max(1);
        let mut out: Vec<Bucket> = Vec::new();
        let mut users = RoaringBitmap::new();
        let mut platform_users: BTreeMap<&str, RoaringBitmap> = BTreeMap::new();
        let mut revenue = 0i128;
        let finish = |b: &mut Bucket,
                      users: &mut RoaringBitmap,
                      pu: &mut BTreeMap<&str, RoaringBitmap>,
                      revenue: &mut i128| {
            b.totals.users = users.len();
            for (p, bm) in pu.iter() {
                if let Some(e) = b.totals.platforms.get_mut(*p) {
                    e.1 = bm.len();
                }
            }
            b.totals.revenue = *revenue as f64 / 1e6;
            *users = RoaringBitmap::new();
            pu.clear();
            *revenue = 0;
        };
        for (h, hour) in &self.0 {
            let h = *h;
            let start = if width >= i64::MAX / HOUR_MS {
                i64::MIN
            } else {
                h.div_euclid(width) * width * HOUR_MS
            };
            if out.last().is_none_or(|b| b.start_ms != start) {
                if let Some(b) = out.last_mut() {
                    finish(b, &mut users, &mut platform_users, &mut revenue);
                }
                out.push(Bucket {
                    start_ms: start,
                    totals: Totals::default(),
                });
            }
            let Some(b) = out.last_mut() else { continue };
            let t = &mut b.totals;
            t.events += hour.events;
            for (k, n) in &hour.by_type {
                *t.by_type.entry(k.to_string()).or_default() += n.events;
            }
            revenue += hour.revenue_micros;
            users |= &hour.users;
            for (p, ph) in &hour.platforms {
                t.platforms.entry(p.to_string()).or_default().0 += ph.events;
                *platform_users.entry(p).or_default() |= &ph.users;
            }
        }
        if let Some(b) = out.last_mut() {
            finish(b, &mut users, &mut platform_users, &mut revenue);
        }
        out
    }

    /// The hours' events in buckets of `width_hours` aligned on multiples of it since the
    /// epoch (24: UTC days), by bucket start (ms); buckets without events are left out.
    pub fn bucket_groups(&self, width_hours: i64, users: bool) -> BTreeMap<i64, GroupTotals> {
        let width = width_hours.max(1);
        let mut out: BTreeMap<i64, GroupTotals> = BTreeMap::new();
        for (h, hour) in &self.0 {
            let g = out
                .entry(h.div_euclid(width) * width * HOUR_MS)
                .or_default();
            g.events += hour.events;
            if users {
                g.users |= &hour.users;
            }
            g.revenue_micros += hour.revenue_micros;
            g.revenue_events += hour.revenue_events;
            for (t, th) in &hour.by_type {
                *group_count(&mut g.by_type, t) += th.events;
            }
        }
        out
    }

    /// The hours' events grouped by `dim`, by group key (the platform or the event type;
    /// `""` for [`RollupDim::All`], present even without events). Without `users` the groups'
    /// user sets stay empty (the unions are most of the work).
    pub fn groups(&self, dim: RollupDim, users: bool) -> BTreeMap<String, GroupTotals> {
        let mut out: BTreeMap<String, GroupTotals> = BTreeMap::new();
        pub(super) fn group<'a>(
            out: &'a mut BTreeMap<String, GroupTotals>,
            k: &str,
        ) -> &'a mut GroupTotals {
            if !out.contains_key(k) {
                out.insert(k.to_string(), GroupTotals::default());
            }
            out.get_mut(k).expect("inserted above")
        }
        if dim == RollupDim::All {
            group(&mut out, "");
        }
        for (_, h) in &self.0 {
            match dim {
                RollupDim::All => {
                    let g = group(&mut out, "");
                    g.events += h.events;
                    if users {
                        g.users |= &h.users;
                    }
                    g.revenue_micros += h.revenue_micros;
                    g.revenue_events += h.revenue_events;
                    for (t, th) in &h.by_type {
                        *group_count(&mut g.by_type, t) += th.events;
                    }
                }
                RollupDim::Platform => {
                    for (p, ph) in &h.platforms {
                        let g = group(&mut out, p);
                        g.events += ph.events;
                        if users {
                            g.users |= &ph.users;
                        }
                    }
                }
                RollupDim::EventType => {
                    for (t, th) in &h.by_type {
                        let g = group(&mut out, t);
                        g.events += th.events;
                        if users {
                            g.users |= &th.users;
                        }
                    }
                }
            }
        }
        out
    }

    /// Totals over all the hours.
    pub fn totals(&self) -> Totals {
        self.buckets(i64::MAX)
            .pop()
            .map(|b| b.totals)
            .unwrap_or_default()
    }

    /// The users who did `event_type` within each UTC day of the hours (days without any
    /// are left out), in day order: `(day start ms, users)`.
    pub(super) fn daily_users_of_type(&self, event_type: &str) -> Vec<(i64, RoaringBitmap)> {
        self.daily(|h| h.by_type.get(event_type).map(|t| &t.users))
    }

    /// The users active (any event) within each UTC day of the hours, in day order.
    pub(super) fn daily_users(&self) -> Vec<(i64, RoaringBitmap)> {
        self.daily(|h| Some(&h.users))
    }

    pub(super) fn daily(
        &self,
        pick: impl Fn(&Hour) -> Option<&RoaringBitmap>,
    ) -> Vec<(i64, RoaringBitmap)> {
        let mut out: Vec<(i64, RoaringBitmap)> = Vec::new();
        for (h, hour) in &self.0 {
            let Some(users) = pick(hour) else { continue };
            let day = h.div_euclid(24) * 24 * HOUR_MS;
            match out.last_mut() {
                Some((d, u)) if *d == day => *u |= users,
                _ => out.push((day, users.clone())),
            }
        }
        out
    }
}
