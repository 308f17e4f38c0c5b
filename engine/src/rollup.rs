//! Hourly rollups for dashboards: per app and UTC hour, event counts by type and platform,
//! revenue, and the exact set of users as a roaring bitmap over a per-app user dictionary, so
//! the unique users of any range of hours is a bitmap union rather than a scan.
//!
//! Maintained by [`crate::Engine::apply`] for every stored (non-duplicate) event, on every
//! node, and rebuilt from the segments when a generation is opened (start, snapshot install):
//! the rollups are a function of the stored rows, exactly like the dedupe set. Revenue is kept
//! in whole micro-units so that sums do not depend on the order rows were added.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;

use roaring::RoaringBitmap;

pub const HOUR_MS: i64 = 3_600_000;

/// The fields of one stored event that rollups need.
#[derive(Debug, Clone, Copy)]
pub struct RollupRow<'a> {
    pub app_id: &'a str,
    pub event_type: &'a str,
    pub timestamp_ms: i64,
    pub user_id: Option<&'a str>,
    pub platform: &'a str,
    pub revenue: Option<f64>,
}

/// Events and users of one platform within an hour.
#[derive(Debug, Default, Clone)]
struct PlatformHour {
    events: u64,
    users: RoaringBitmap,
}

#[derive(Debug, Default, Clone)]
struct Hour {
    events: u64,
    by_type: BTreeMap<Box<str>, u64>,
    revenue_micros: i128,
    users: RoaringBitmap,
    platforms: BTreeMap<Box<str>, PlatformHour>,
}

#[derive(Debug, Default)]
struct AppRollup {
    /// user_id → dense id, in order of first appearance on this node.
    users: HashMap<Box<str>, u32>,
    /// Keyed by hour number (`timestamp_ms.div_euclid(HOUR_MS)`).
    /// Copy-on-write: readers take the hours they need out of the lock ([`Rollups::hours`]),
    /// so bitmap unions never hold up apply.
    hours: BTreeMap<i64, Arc<Hour>>,
}

/// All apps' rollups.
#[derive(Debug, Default)]
pub struct Rollups {
    apps: HashMap<Box<str>, AppRollup>,
}

/// Totals over a set of hours.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub events: u64,
    pub by_type: BTreeMap<String, u64>,
    pub revenue: f64,
    /// Distinct non-null `user_id`s.
    pub users: u64,
    /// `(events, distinct users)` per platform.
    pub platforms: BTreeMap<String, (u64, u64)>,
}

/// One bucket of [`Rollups::buckets`]: totals of the hours in `[start_ms, start_ms + width)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub start_ms: i64,
    pub totals: Totals,
}

fn micros(revenue: f64) -> i128 {
    if revenue.is_finite() {
        (revenue * 1e6).round() as i128
    } else {
        0
    }
}

impl Rollups {
    pub fn add(&mut self, row: RollupRow<'_>) {
        let app = match self.apps.get_mut(row.app_id) {
            Some(a) => a,
            None => self.apps.entry(row.app_id.into()).or_default(),
        };
        let user = row.user_id.map(|u| match app.users.get(u) {
            Some(id) => *id,
            None => {
                let id = app.users.len() as u32;
                app.users.insert(u.into(), id);
                id
            }
        });
        let hour = Arc::make_mut(
            app.hours
                .entry(row.timestamp_ms.div_euclid(HOUR_MS))
                .or_default(),
        );
        hour.events += 1;
        match hour.by_type.get_mut(row.event_type) {
            Some(n) => *n += 1,
            None => {
                hour.by_type.insert(row.event_type.into(), 1);
            }
        }
        if let Some(r) = row.revenue {
            hour.revenue_micros += micros(r);
        }
        let platform = match hour.platforms.get_mut(row.platform) {
            Some(p) => p,
            None => hour.platforms.entry(row.platform.into()).or_default(),
        };
        platform.events += 1;
        if let Some(u) = user {
            hour.users.insert(u);
            platform.users.insert(u);
        }
    }

    /// Number of apps, hours and dictionary entries held (for `/metrics`).
    pub fn size(&self) -> RollupSize {
        let mut s = RollupSize::default();
        for a in self.apps.values() {
            s.apps += 1;
            s.users += a.users.len() as u64;
            s.hours += a.hours.len() as u64;
            for h in a.hours.values() {
                s.bitmap_bytes += h.users.serialized_size() as u64;
                s.bitmap_bytes += h
                    .platforms
                    .values()
                    .map(|p| p.users.serialized_size() as u64)
                    .sum::<u64>();
            }
        }
        s
    }

    /// The rollups of `app` over `hours` (hour numbers, end exclusive): cheap (reference
    /// counts), so the caller can drop the lock before adding them up.
    pub fn hours(&self, app: &str, hours: Range<i64>) -> Hours {
        Hours(self.apps.get(app).map_or_else(Vec::new, |a| {
            a.hours.range(hours).map(|(h, x)| (*h, x.clone())).collect()
        }))
    }

    /// [`Hours::buckets`] of [`Rollups::hours`].
    pub fn buckets(&self, app: &str, hours: Range<i64>, width_hours: i64) -> Vec<Bucket> {
        self.hours(app, hours).buckets(width_hours)
    }

    /// [`Hours::totals`] of [`Rollups::hours`].
    pub fn totals(&self, app: &str, hours: Range<i64>) -> Totals {
        self.hours(app, hours).totals()
    }
}

/// Some hours of one app, taken out of [`Rollups`].
pub struct Hours(Vec<(i64, Arc<Hour>)>);

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
                *t.by_type.entry(k.to_string()).or_default() += n;
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

    /// Totals over all the hours.
    pub fn totals(&self) -> Totals {
        self.buckets(i64::MAX)
            .pop()
            .map(|b| b.totals)
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupSize {
    pub apps: u64,
    pub users: u64,
    pub hours: u64,
    pub bitmap_bytes: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row<'a>(
        app: &'a str,
        kind: &'a str,
        ts: i64,
        user: Option<&'a str>,
        platform: &'a str,
        revenue: Option<f64>,
    ) -> RollupRow<'a> {
        RollupRow {
            app_id: app,
            event_type: kind,
            timestamp_ms: ts,
            user_id: user,
            platform,
            revenue,
        }
    }

    #[test]
    fn unions_users_across_hours_and_buckets_by_day() {
        let mut r = Rollups::default();
        let h = HOUR_MS;
        r.add(row("a", "install", 0, Some("u1"), "ios", None));
        r.add(row("a", "purchase", h + 5, Some("u1"), "ios", Some(1.10)));
        r.add(row(
            "a",
            "purchase",
            2 * h,
            Some("u2"),
            "android",
            Some(2.20),
        ));
        r.add(row("a", "open", 25 * h, None, "web", None));
        r.add(row("b", "open", 0, Some("u1"), "ios", None));
        r.add(row("a", "open", -1, Some("u3"), "ios", None)); // the hour before the epoch

        let t = r.totals("a", 0..48);
        assert_eq!(t.events, 4);
        assert_eq!(t.users, 2);
        assert_eq!(t.by_type["purchase"], 2);
        assert!((t.revenue - 3.30).abs() < 1e-9);
        assert_eq!(t.platforms["ios"], (2, 1));
        assert_eq!(t.platforms["android"], (1, 1));
        assert_eq!(t.platforms["web"], (1, 0));

        let days = r.buckets("a", -1..48, 24);
        assert_eq!(days.len(), 3);
        assert_eq!(days[0].start_ms, -24 * h);
        assert_eq!(days[1].start_ms, 0);
        assert_eq!(days[1].totals.users, 2);
        assert_eq!(days[2].start_ms, 24 * h);
        assert_eq!(days[2].totals.events, 1);
        assert_eq!(r.totals("a", 1..2).users, 1);
        assert_eq!(r.totals("nope", 0..48), Totals::default());
        assert_eq!(r.size().apps, 2);
    }
}
