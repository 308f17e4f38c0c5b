//! Hourly rollups for dashboards: per app and UTC hour, event counts by type and platform,
//! revenue, per-campaign counts, and the exact sets of users (in all, per event type, per
//! platform, per campaign) as roaring bitmaps over a per-app user dictionary, so the unique
//! users of any range of hours is a bitmap union rather than a scan. Funnels use each user's
//! event times by day and type ([`crate::funnel`]).
//!
//! Maintained by [`crate::Engine::apply`] for every stored (non-duplicate) event, on every
//! node, and rebuilt from the segments when a generation is opened (start, snapshot install):
//! the rollups are a function of the stored rows, exactly like the dedupe set. Revenue is kept
//! in whole micro-units so that sums do not depend on the order rows were added.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::funnel::{day_of, DaySteps, StepDays};

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
    /// `attribution.campaign`, `.source`, `.medium`.
    pub campaign: Option<&'a str>,
    pub source: Option<&'a str>,
    pub medium: Option<&'a str>,
}

/// A campaign as dashboards group it: (campaign, source, medium).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CampaignKey {
    pub campaign: String,
    pub source: Option<String>,
    pub medium: Option<String>,
}

/// One campaign's events within an hour or a day. Installs and purchases are the event types
/// `install` and `purchase`; revenue is that of its purchases.
#[derive(Debug, Clone)]
struct CampaignStats {
    key: Arc<CampaignKey>,
    events: u64,
    installs: u64,
    purchases: u64,
    purchase_revenue_micros: i128,
    /// Purchases that had a revenue (none: SQL's `sum` of their revenue is NULL).
    purchase_revenue_events: u64,
    users: UserSet,
}

/// Below this many users a set is a sorted vector (one allocation, 4 bytes a user);
/// campaign-hours are many and mostly small, so bitmaps there would cost ~3× the memory.
const SMALL_SET: usize = 256;

/// A set of dense user ids: a sorted vector while small, a roaring bitmap once large.
#[derive(Debug, Clone)]
enum UserSet {
    Small(Vec<u32>),
    Large(RoaringBitmap),
}

impl UserSet {
    fn insert(&mut self, u: u32) {
        match self {
            UserSet::Small(v) => match v.binary_search(&u) {
                Ok(_) => {}
                Err(_) if v.len() >= SMALL_SET => {
                    let mut b: RoaringBitmap = v.iter().copied().collect();
                    b.insert(u);
                    *self = UserSet::Large(b);
                }
                Err(i) => v.insert(i, u),
            },
            UserSet::Large(b) => {
                b.insert(u);
            }
        }
    }

    fn max(&self) -> Option<u32> {
        match self {
            UserSet::Small(v) => v.last().copied(),
            UserSet::Large(b) => b.max(),
        }
    }

    fn for_each(&self, mut f: impl FnMut(u32)) {
        match self {
            UserSet::Small(v) => v.iter().for_each(|u| f(*u)),
            UserSet::Large(b) => b.iter().for_each(f),
        }
    }

    fn add_to(&self, out: &mut RoaringBitmap) {
        match self {
            UserSet::Small(v) => out.extend(v.iter().copied()),
            UserSet::Large(b) => *out |= b,
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            UserSet::Small(v) => 4 * v.len() as u64,
            UserSet::Large(b) => b.serialized_size() as u64,
        }
    }
}

/// A union of user sets being built: a plain bit per user id when that is small enough (each
/// member is then one store, however many sets are added), else a roaring bitmap.
enum Union {
    Dense(Vec<u64>),
    Sparse(RoaringBitmap),
}

impl Union {
    /// For ids below `max_id`; dense if `max_id / 8` bytes is within `dense_budget`.
    fn new(max_id: u32, dense_budget: usize) -> Self {
        let words = max_id as usize / 64 + 1;
        if words * 8 <= dense_budget {
            Union::Dense(vec![0; words])
        } else {
            Union::Sparse(RoaringBitmap::new())
        }
    }

    fn add(&mut self, set: &UserSet) {
        match (self, set) {
            (Union::Sparse(b), UserSet::Large(l)) => *b |= l,
            (Union::Sparse(b), UserSet::Small(v)) => b.extend(v.iter().copied()),
            (Union::Dense(w), s) => s.for_each(|u| {
                if let Some(x) = w.get_mut(u as usize / 64) {
                    *x |= 1 << (u % 64);
                }
            }),
        }
    }

    fn len(&self) -> u64 {
        match self {
            Union::Dense(w) => w.iter().map(|x| u64::from(x.count_ones())).sum(),
            Union::Sparse(b) => b.len(),
        }
    }
}

/// A campaign's totals over some hours ([`CampaignSets::totals`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignTotals {
    pub key: CampaignKey,
    pub events: u64,
    pub installs: u64,
    pub purchases: u64,
    /// Revenue of the campaign's purchases.
    pub revenue: f64,
    pub users: u64,
}

/// What [`Hours::groups`] groups the events of its hours by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollupDim {
    /// One group (key `""`) of every event.
    All,
    Platform,
    EventType,
}

/// One group of [`Hours::groups`] or [`CampaignSets::by_campaign`]. Users are the app's dense
/// user numbers ([`Rollups::user_number`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupTotals {
    pub events: u64,
    pub users: RoaringBitmap,
    /// Revenue of every event of the group, micro-units ([`RollupDim::All`] only).
    pub revenue_micros: i128,
    /// Events of the group that had a revenue ([`RollupDim::All`] only).
    pub revenue_events: u64,
    /// Events per type: every type for [`RollupDim::All`]; `install` and `purchase` for
    /// campaigns; empty otherwise.
    pub by_type: BTreeMap<String, u64>,
    /// Revenue of the group's purchases, micro-units (campaigns only).
    pub purchase_revenue_micros: i128,
    /// Purchases that had a revenue (campaigns only).
    pub purchase_revenue_events: u64,
}

/// Events and users of one event type within an hour.
#[derive(Debug, Default, Clone)]
struct TypeHour {
    events: u64,
    users: RoaringBitmap,
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
    by_type: BTreeMap<Box<str>, TypeHour>,
    revenue_micros: i128,
    /// Events that had a revenue.
    revenue_events: u64,
    users: RoaringBitmap,
    platforms: BTreeMap<Box<str>, PlatformHour>,
    /// By the app's campaign number.
    campaigns: Campaigns,
}

/// Campaign stats by the app's campaign number.
type Campaigns = BTreeMap<u32, CampaignStats>;

impl CampaignStats {
    fn count(
        slice: &mut Campaigns,
        c: u32,
        key: &Arc<CampaignKey>,
        row: &RollupRow<'_>,
        user: Option<u32>,
    ) {
        let s = slice.entry(c).or_insert_with(|| CampaignStats {
            key: key.clone(),
            events: 0,
            installs: 0,
            purchases: 0,
            purchase_revenue_micros: 0,
            purchase_revenue_events: 0,
            users: UserSet::Small(Vec::new()),
        });
        s.events += 1;
        match row.event_type {
            "install" => s.installs += 1,
            "purchase" => {
                s.purchases += 1;
                if let Some(r) = row.revenue {
                    s.purchase_revenue_micros += micros(r);
                    s.purchase_revenue_events += 1;
                }
            }
            _ => {}
        }
        if let Some(u) = user {
            s.users.insert(u);
        }
    }
}

#[derive(Debug, Default)]
struct AppRollup {
    /// user_id → dense id, in order of first appearance on this node.
    users: HashMap<Box<str>, u32>,
    /// Campaign number by [`campaign_code`], and each number's key.
    campaign_numbers: HashMap<Box<str>, u32>,
    campaigns: Vec<Arc<CampaignKey>>,
    /// The campaigns of whole UTC days (day number), copy-on-write like the hours: a range
    /// of many days adds up days, and hours only at its edges.
    campaign_days: BTreeMap<i64, Arc<Campaigns>>,
    /// Keyed by hour number (`timestamp_ms.div_euclid(HOUR_MS)`).
    /// Copy-on-write: readers take the hours they need out of the lock ([`Rollups::hours`]),
    /// so bitmap unions never hold up apply.
    hours: BTreeMap<i64, Arc<Hour>>,
    /// Every event of a known user as (user, time) by UTC day and event type, for funnels;
    /// copy-on-write like the hours.
    steps: BTreeMap<i64, Arc<DaySteps>>,
}

/// All apps' rollups.
#[derive(Debug, Default)]
pub struct Rollups {
    apps: HashMap<Box<str>, AppRollup>,
    /// Reused buffer for [`campaign_code`].
    code: String,
}

/// An unambiguous text form of (campaign, source, medium), to look campaigns up without
/// allocating: each part as `-` (absent) or `+<byte length>:<text>`.
fn campaign_code(out: &mut String, parts: [Option<&str>; 3]) {
    use std::fmt::Write;
    out.clear();
    for p in parts {
        match p {
            None => out.push('-'),
            Some(t) => {
                let _ = write!(out, "+{}:{t}", t.len());
            }
        }
    }
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

/// Revenue in whole micro-units, as the rollups add it up (non-finite values count 0).
pub fn micros(revenue: f64) -> i128 {
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
        let campaign = row.campaign.map(|c| {
            campaign_code(&mut self.code, [Some(c), row.source, row.medium]);
            match app.campaign_numbers.get(self.code.as_str()) {
                Some(n) => *n,
                None => {
                    let n = app.campaigns.len() as u32;
                    app.campaigns.push(Arc::new(CampaignKey {
                        campaign: c.to_string(),
                        source: row.source.map(str::to_string),
                        medium: row.medium.map(str::to_string),
                    }));
                    app.campaign_numbers.insert(self.code.as_str().into(), n);
                    n
                }
            }
        });
        let hour = Arc::make_mut(
            app.hours
                .entry(row.timestamp_ms.div_euclid(HOUR_MS))
                .or_default(),
        );
        hour.events += 1;
        let kind = match hour.by_type.get_mut(row.event_type) {
            Some(k) => k,
            None => hour.by_type.entry(row.event_type.into()).or_default(),
        };
        kind.events += 1;
        if let Some(r) = row.revenue {
            hour.revenue_micros += micros(r);
            hour.revenue_events += 1;
        }
        let platform = match hour.platforms.get_mut(row.platform) {
            Some(p) => p,
            None => hour.platforms.entry(row.platform.into()).or_default(),
        };
        platform.events += 1;
        if let Some(u) = user {
            hour.users.insert(u);
            platform.users.insert(u);
            kind.users.insert(u);
            Arc::make_mut(app.steps.entry(day_of(row.timestamp_ms)).or_default()).add(
                row.event_type,
                u,
                row.timestamp_ms,
            );
        }
        if let Some(c) = campaign {
            let key = &app.campaigns[c as usize];
            CampaignStats::count(&mut hour.campaigns, c, key, &row, user);
            let day = Arc::make_mut(
                app.campaign_days
                    .entry(row.timestamp_ms.div_euclid(24 * HOUR_MS))
                    .or_default(),
            );
            CampaignStats::count(day, c, key, &row, user);
        }
    }

    /// Gives back the spare capacity of the funnel step lists (after a rebuild).
    pub fn shrink_to_fit(&mut self) {
        for a in self.apps.values_mut() {
            for d in a.steps.values_mut() {
                Arc::make_mut(d).shrink_to_fit();
            }
        }
    }

    /// Number of apps, hours and dictionary entries held (for `/metrics`).
    pub fn size(&self) -> RollupSize {
        let mut s = RollupSize::default();
        for a in self.apps.values() {
            s.apps += 1;
            s.users += a.users.len() as u64;
            s.hours += a.hours.len() as u64;
            s.funnel_bytes += a.steps.values().map(|d| d.bytes()).sum::<u64>();
            for d in a.campaign_days.values() {
                s.bitmap_bytes += d.values().map(|c| c.users.bytes()).sum::<u64>();
            }
            for h in a.hours.values() {
                s.bitmap_bytes += h.users.serialized_size() as u64;
                let bytes = |b: &RoaringBitmap| b.serialized_size() as u64;
                s.bitmap_bytes += h.platforms.values().map(|p| bytes(&p.users)).sum::<u64>();
                s.bitmap_bytes += h.by_type.values().map(|t| bytes(&t.users)).sum::<u64>();
                s.bitmap_bytes += h.campaigns.values().map(|c| c.users.bytes()).sum::<u64>();
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

    /// The campaigns of `app` over `hours` (hour numbers, end exclusive): whole UTC days from
    /// the per-day sets, the hours before the first and after the last whole day from the
    /// hours. Cheap, like [`Rollups::hours`]; add up with [`CampaignSets::totals`].
    pub fn campaigns(&self, app: &str, hours: Range<i64>) -> CampaignSets {
        let Some(a) = self.apps.get(app) else {
            return CampaignSets(Vec::new());
        };
        let first_day = hours.start.div_euclid(24) + i64::from(hours.start.rem_euclid(24) != 0);
        let end_day = hours.end.div_euclid(24);
        let mut out = Vec::new();
        let mut take_hours = |r: Range<i64>| {
            for (_, h) in a.hours.range(r) {
                out.push(CampaignSlice::Hour(h.clone()));
            }
        };
        if first_day >= end_day {
            take_hours(hours);
        } else {
            take_hours(hours.start..first_day * 24);
            take_hours(end_day * 24..hours.end);
            for (_, d) in a.campaign_days.range(first_day..end_day) {
                out.push(CampaignSlice::Day(d.clone()));
            }
        }
        CampaignSets(out)
    }

    /// The step times of `app` on the UTC days a funnel with step 1 in `[from_ms, to_ms)` and
    /// `window_ms` can touch. Cheap, like [`Rollups::hours`]; walk with [`StepDays::funnel`].
    pub fn step_days(&self, app: &str, from_ms: i64, to_ms: i64, window_ms: i64) -> StepDays {
        let Some(a) = self.apps.get(app) else {
            return StepDays {
                days: Vec::new(),
                users: 0,
            };
        };
        let last = day_of(to_ms.saturating_sub(1).saturating_add(window_ms));
        StepDays {
            days: a
                .steps
                .range(day_of(from_ms)..=last.max(day_of(from_ms)))
                .map(|(d, x)| (*d, x.clone()))
                .collect(),
            users: a.users.len(),
        }
    }

    /// The dense number of `user` within `app`, if any stored event of the app has it.
    pub fn user_number(&self, app: &str, user: &str) -> Option<u32> {
        self.apps.get(app)?.users.get(user).copied()
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
    pub fn bucket_groups(&self, width_hours: i64) -> BTreeMap<i64, GroupTotals> {
        let width = width_hours.max(1);
        let mut out: BTreeMap<i64, GroupTotals> = BTreeMap::new();
        for (h, hour) in &self.0 {
            let g = out
                .entry(h.div_euclid(width) * width * HOUR_MS)
                .or_default();
            g.events += hour.events;
            g.users |= &hour.users;
            g.revenue_micros += hour.revenue_micros;
            g.revenue_events += hour.revenue_events;
            for (t, th) in &hour.by_type {
                *group_count(&mut g.by_type, t) += th.events;
            }
        }
        out
    }

    /// The hours' events grouped by `dim`, by group key (the platform or the event type;
    /// `""` for [`RollupDim::All`], present even without events).
    pub fn groups(&self, dim: RollupDim) -> BTreeMap<String, GroupTotals> {
        let mut out: BTreeMap<String, GroupTotals> = BTreeMap::new();
        fn group<'a>(out: &'a mut BTreeMap<String, GroupTotals>, k: &str) -> &'a mut GroupTotals {
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
                    g.users |= &h.users;
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
                        g.users |= &ph.users;
                    }
                }
                RollupDim::EventType => {
                    for (t, th) in &h.by_type {
                        let g = group(&mut out, t);
                        g.events += th.events;
                        g.users |= &th.users;
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
    fn daily_users_of_type(&self, event_type: &str) -> Vec<(i64, RoaringBitmap)> {
        self.daily(|h| h.by_type.get(event_type).map(|t| &t.users))
    }

    /// The users active (any event) within each UTC day of the hours, in day order.
    fn daily_users(&self) -> Vec<(i64, RoaringBitmap)> {
        self.daily(|h| Some(&h.users))
    }

    fn daily(&self, pick: impl Fn(&Hour) -> Option<&RoaringBitmap>) -> Vec<(i64, RoaringBitmap)> {
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

/// Campaign stats of an hour or of a whole day.
enum CampaignSlice {
    Hour(Arc<Hour>),
    Day(Arc<Campaigns>),
}

/// The hours and days making up a range, taken out of [`Rollups`] ([`Rollups::campaigns`]).
pub struct CampaignSets(Vec<CampaignSlice>);

impl CampaignSets {
    fn slices(&self) -> impl Iterator<Item = &Campaigns> {
        self.0.iter().map(|s| match s {
            CampaignSlice::Hour(h) => &h.campaigns,
            CampaignSlice::Day(d) => &**d,
        })
    }

    /// The events with a campaign grouped by the campaign's name alone (whatever their
    /// source and medium): events, users, `install` and `purchase` counts and the revenue of
    /// the purchases.
    pub fn by_campaign(&self) -> BTreeMap<String, GroupTotals> {
        let mut out: BTreeMap<String, GroupTotals> = BTreeMap::new();
        for slice in self.slices() {
            for c in slice.values() {
                if !out.contains_key(&c.key.campaign) {
                    out.insert(c.key.campaign.clone(), GroupTotals::default());
                }
                let g = out.get_mut(&c.key.campaign).expect("inserted above");
                g.events += c.events;
                *group_count(&mut g.by_type, "install") += c.installs;
                *group_count(&mut g.by_type, "purchase") += c.purchases;
                g.purchase_revenue_micros += c.purchase_revenue_micros;
                g.purchase_revenue_events += c.purchase_revenue_events;
                c.users.add_to(&mut g.users);
            }
        }
        out
    }

    /// Every campaign's totals (events with a campaign only), unordered.
    pub fn totals(&self) -> Vec<CampaignTotals> {
        // Unions of many small sets: a bit per user id while all campaigns' bits fit in 64 MiB.
        let mut max_id = 0;
        let mut keys: HashMap<*const CampaignKey, usize> = HashMap::new();
        for slice in self.slices() {
            for c in slice.values() {
                max_id = max_id.max(c.users.max().unwrap_or(0));
                let n = keys.len();
                keys.entry(Arc::as_ptr(&c.key)).or_insert(n);
            }
        }
        let budget = (64 << 20) / keys.len().max(1);
        struct Acc<'a> {
            key: &'a CampaignKey,
            events: u64,
            installs: u64,
            purchases: u64,
            revenue: i128,
            users: Union,
        }
        let mut acc: Vec<Option<Acc<'_>>> = (0..keys.len()).map(|_| None).collect();
        for slice in self.slices() {
            for c in slice.values() {
                let slot = &mut acc[keys[&Arc::as_ptr(&c.key)]];
                let a = slot.get_or_insert_with(|| Acc {
                    key: &c.key,
                    events: 0,
                    installs: 0,
                    purchases: 0,
                    revenue: 0,
                    users: Union::new(max_id, budget),
                });
                a.events += c.events;
                a.installs += c.installs;
                a.purchases += c.purchases;
                a.revenue += c.purchase_revenue_micros;
                a.users.add(&c.users);
            }
        }
        acc.into_iter()
            .flatten()
            .map(|a| CampaignTotals {
                key: a.key.clone(),
                events: a.events,
                installs: a.installs,
                purchases: a.purchases,
                revenue: a.revenue as f64 / 1e6,
                users: a.users.len(),
            })
            .collect()
    }
}

fn group_count<'a>(m: &'a mut BTreeMap<String, u64>, k: &str) -> &'a mut u64 {
    if !m.contains_key(k) {
        m.insert(k.to_string(), 0);
    }
    m.get_mut(k).expect("inserted above")
}

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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupSize {
    pub apps: u64,
    pub users: u64,
    pub hours: u64,
    pub bitmap_bytes: u64,
    /// Bytes of the per-user step times kept for funnels.
    pub funnel_bytes: u64,
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
            campaign: None,
            source: None,
            medium: None,
        }
    }

    #[test]
    fn user_sets_grow_into_bitmaps_and_unions_agree_dense_or_sparse() {
        let mut a = UserSet::Small(Vec::new());
        let mut b = UserSet::Small(Vec::new());
        for u in (0..1000u32).rev() {
            a.insert(u * 3);
            a.insert(u * 3); // again: no effect
            if u % 2 == 0 {
                b.insert(u * 5);
            }
        }
        assert!(matches!(a, UserSet::Large(_)));
        assert!(matches!(b, UserSet::Large(_)));
        let mut c = UserSet::Small(Vec::new());
        c.insert(7);
        c.insert(1);
        assert!(matches!(&c, UserSet::Small(v) if v == &[1, 7]));
        let want: std::collections::BTreeSet<u32> = (0..1000)
            .map(|u| u * 3)
            .chain((0..1000).filter(|u| u % 2 == 0).map(|u| u * 5))
            .chain([1, 7])
            .collect();
        for budget in [0, 1 << 20] {
            let mut u = Union::new(5000, budget);
            assert_eq!(matches!(u, Union::Dense(_)), budget > 0);
            for s in [&a, &b, &c] {
                u.add(s);
            }
            assert_eq!(u.len(), want.len() as u64);
        }
    }

    #[test]
    fn campaigns_and_daily_users_of_a_type() {
        let mut r = Rollups::default();
        let h = HOUR_MS;
        let c = |mut x: RollupRow<'static>, camp: &'static str, src: Option<&'static str>| {
            x.campaign = Some(camp);
            x.source = src;
            x
        };
        r.add(c(
            row("a", "install", 0, Some("u1"), "ios", None),
            "c1",
            Some("g"),
        ));
        r.add(c(
            row("a", "purchase", h, Some("u1"), "ios", Some(2.5)),
            "c1",
            Some("g"),
        ));
        r.add(c(
            row("a", "open", h, Some("u2"), "ios", Some(9.0)),
            "c1",
            Some("g"),
        ));
        r.add(c(
            row("a", "install", 2 * h, Some("u2"), "ios", None),
            "c1",
            None,
        ));
        r.add(row("a", "install", 25 * h, Some("u3"), "ios", None)); // no campaign
        r.add(c(
            row("a", "install", 26 * h, Some("u1"), "ios", None),
            "c1",
            Some("g"),
        ));

        let mut got = r.campaigns("a", 0..48).totals();
        got.sort_by(|x, y| x.key.cmp(&y.key));
        let key = |s: Option<&str>| CampaignKey {
            campaign: "c1".into(),
            source: s.map(str::to_string),
            medium: None,
        };
        assert_eq!(
            got,
            vec![
                CampaignTotals {
                    key: key(None),
                    events: 1,
                    installs: 1,
                    purchases: 0,
                    revenue: 0.0,
                    users: 1
                },
                CampaignTotals {
                    key: key(Some("g")),
                    events: 4,
                    installs: 2,
                    purchases: 1,
                    revenue: 2.5,
                    users: 2
                },
            ]
        );
        assert!(r.campaigns("a", 3..25).totals().is_empty());
        // Whole days from the day sets, edges from the hours: every split agrees with hours.
        for (from, to) in [
            (0, 48),
            (1, 48),
            (0, 26),
            (1, 27),
            (2, 3),
            (-5, 100),
            (24, 48),
        ] {
            let mut by_days = r.campaigns("a", from..to).totals();
            let mut by_hours = CampaignSets(
                r.hours("a", from..to)
                    .0
                    .into_iter()
                    .map(|(_, h)| CampaignSlice::Hour(h))
                    .collect(),
            )
            .totals();
            by_days.sort_by(|x, y| x.key.cmp(&y.key));
            by_hours.sort_by(|x, y| x.key.cmp(&y.key));
            assert_eq!(by_days, by_hours, "{from}..{to}");
        }

        let installs = r.hours("a", 0..48).daily_users_of_type("install");
        let days: Vec<(i64, Vec<u32>)> = installs
            .iter()
            .map(|(d, u)| (*d, u.iter().collect()))
            .collect();
        // Dense user ids in order of first appearance: u1 0, u2 1, u3 2.
        assert_eq!(days, vec![(0, vec![0, 1]), (24 * h, vec![0, 2])]);
        assert_eq!(r.hours("a", 0..48).daily_users().len(), 2);
        assert!(r.hours("a", 0..48).daily_users_of_type("nope").is_empty());

        // Cohorts: day 0 = {u1, u2} (first installs), day 1 = {u3} (u1 installed before).
        // Active: day 0 {u1, u2}, day 1 {u3, u1}.
        let got = retention(&r.hours("a", 0..48), &r.hours("a", 0..72), "install", 1);
        assert_eq!(
            got,
            vec![
                Cohort {
                    day_ms: 0,
                    retained: vec![2, 1]
                },
                Cohort {
                    day_ms: 24 * h,
                    retained: vec![1, 0]
                },
            ]
        );
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
