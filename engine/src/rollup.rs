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
use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CampaignKey {
    pub campaign: String,
    pub source: Option<String>,
    pub medium: Option<String>,
}

/// One campaign's events within an hour or a day. Installs and purchases are the event types
/// `install` and `purchase`; revenue is that of its purchases.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CampaignStats {
    /// Not persisted: a [`RollupPart`] numbers its campaigns itself.
    #[serde(skip)]
    key: Arc<CampaignKey>,
    events: u64,
    installs: u64,
    purchases: u64,
    purchase_revenue_micros: i128,
    /// Purchases that had a revenue (none: SQL's `sum` of their revenue is NULL).
    purchase_revenue_events: u64,
    users: UserSet,
}

mod campaigns;
mod hour_pages;
mod hours;
mod pages;
mod part;
mod recount;
mod retention;
mod step_pages;
#[cfg(test)]
mod tests;
mod user_set;

pub use campaigns::CampaignSets;
use campaigns::{group_count, CampaignSlice};
pub use hours::Hours;
pub(crate) use part::{HoursOnly, PartBuilder, RollupPart};
pub use retention::{retention, Cohort};
use user_set::{Union, UserSet};

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
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct TypeHour {
    events: u64,
    users: RoaringBitmap,
}

/// Events and users of one platform within an hour.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct PlatformHour {
    events: u64,
    users: RoaringBitmap,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
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

/// Runs a function with the live rollups under the caller's lock (readers from the segments
/// that number users by them only when a summary is unusable).
pub(crate) type WithRollups<'a> = dyn FnMut(&mut dyn FnMut(&Rollups)) + 'a;

/// Campaign stats by the app's campaign number.
type Campaigns = BTreeMap<u32, CampaignStats>;

/// Bytes of the user sets of `c` (for the memory budget).
fn campaign_bytes(c: &Campaigns) -> u64 {
    c.values().map(|s| s.users.bytes()).sum()
}

impl Hour {
    /// Bytes of the hour's user sets (serialized size of its bitmaps).
    fn bytes(&self) -> u64 {
        let bytes = |b: &RoaringBitmap| b.serialized_size() as u64;
        bytes(&self.users)
            + self
                .platforms
                .values()
                .map(|p| bytes(&p.users))
                .sum::<u64>()
            + self.by_type.values().map(|t| bytes(&t.users)).sum::<u64>()
            + campaign_bytes(&self.campaigns)
    }
}

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
    /// user_id → dense id, in order of first appearance on this node (or as the generation's
    /// persisted dictionary numbers them, [`crate::dictionary`]).
    users: HashMap<Arc<str>, u32>,
    /// Each dense id's user_id.
    names: Vec<Arc<str>>,
    /// Bytes of the user_ids in `names` (for the memory budget).
    name_bytes: u64,
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
    /// Which step days are out of memory, and when loaded ones were last used.
    pages: pages::Pages,
    /// Which days of hours and campaign days are out of memory (both of a day go together).
    hour_pages: pages::Pages,
}

/// All apps' rollups.
#[derive(Debug, Default)]
pub struct Rollups {
    apps: HashMap<Box<str>, AppRollup>,
    /// Stamps for the least-recently-used order of step days.
    clock: std::sync::atomic::AtomicU64,
    /// Step days out of memory over all apps: while 0, apply checks nothing per event.
    out_days: u64,
    /// Days of hours out of memory over all apps (the same for hours).
    hour_out_days: u64,
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

impl AppRollup {
    /// The dense number of `user`, numbering it if new.
    fn user(&mut self, user: &str) -> u32 {
        match self.users.get(user) {
            Some(id) => *id,
            None => {
                let id = self.names.len() as u32;
                let name: Arc<str> = user.into();
                self.name_bytes += name.len() as u64;
                self.names.push(name.clone());
                self.users.insert(name, id);
                id
            }
        }
    }

    /// The number of campaign `key`, numbering it if new (`code` is a reused buffer).
    fn campaign(
        &mut self,
        code: &mut String,
        campaign: &str,
        source: Option<&str>,
        medium: Option<&str>,
    ) -> u32 {
        campaign_code(code, [Some(campaign), source, medium]);
        match self.campaign_numbers.get(code.as_str()) {
            Some(n) => *n,
            None => {
                let n = self.campaigns.len() as u32;
                self.campaigns.push(Arc::new(CampaignKey {
                    campaign: campaign.to_string(),
                    source: source.map(str::to_string),
                    medium: medium.map(str::to_string),
                }));
                self.campaign_numbers.insert(code.as_str().into(), n);
                n
            }
        }
    }

    /// Counts one row whose user and campaign are already numbered.
    fn count(&mut self, row: &RollupRow<'_>, user: Option<u32>, campaign: Option<u32>) {
        let hour = Arc::make_mut(
            self.hours
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
            Arc::make_mut(self.steps.entry(day_of(row.timestamp_ms)).or_default()).add(
                row.event_type,
                u,
                row.timestamp_ms,
            );
        }
        if let Some(c) = campaign {
            let key = &self.campaigns[c as usize];
            CampaignStats::count(&mut hour.campaigns, c, key, row, user);
            let day = Arc::make_mut(
                self.campaign_days
                    .entry(row.timestamp_ms.div_euclid(24 * HOUR_MS))
                    .or_default(),
            );
            CampaignStats::count(day, c, key, row, user);
        }
    }
}

impl Rollups {
    pub fn add(&mut self, row: RollupRow<'_>) {
        let app = match self.apps.get_mut(row.app_id) {
            Some(a) => a,
            None => self.apps.entry(row.app_id.into()).or_default(),
        };
        let user = row.user_id.map(|u| app.user(u));
        let campaign = row
            .campaign
            .map(|c| app.campaign(&mut self.code, c, row.source, row.medium));
        app.count(&row, user, campaign);
    }

    /// Forgets what `app` counted before `before_ms` (a UTC day start; retention, issue 29):
    /// its hours, campaign days and step days, in memory or out.
    pub fn forget_before(&mut self, app: &str, before_ms: i64) {
        let Some(a) = self.apps.get_mut(app) else {
            return;
        };
        a.hours = a.hours.split_off(&before_ms.div_euclid(HOUR_MS));
        a.campaign_days = a
            .campaign_days
            .split_off(&before_ms.div_euclid(24 * HOUR_MS));
        let day = day_of(before_ms);
        a.steps = a.steps.split_off(&day);
        self.out_days -= a.pages.forget_before(day);
        self.hour_out_days -= a.hour_pages.forget_before(day);
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
            // Each name once (shared by the map and the list, behind a 16-byte count header,
            // rounded up by the allocator), the map's slots and control bytes, the list.
            s.dictionary_bytes += a.name_bytes
                + a.names.len() as u64 * 24
                + a.users.capacity() as u64 * 25
                + a.names.capacity() as u64 * 16;
            s.hours += a.hours.len() as u64;
            s.funnel_bytes += a.steps.values().map(|d| d.bytes()).sum::<u64>();
            s.bitmap_bytes += a
                .campaign_days
                .values()
                .map(|d| campaign_bytes(d))
                .sum::<u64>();
            s.bitmap_bytes += a.hours.values().map(|h| h.bytes()).sum::<u64>();
        }
        s
    }

    /// The apps with rollups, sorted.
    pub fn apps(&self) -> Vec<String> {
        let mut apps: Vec<String> = self.apps.keys().map(|a| a.to_string()).collect();
        apps.sort();
        apps
    }

    /// The rollups of `app` over `hours` (hour numbers, end exclusive): cheap (reference
    /// counts), so the caller can drop the lock before adding them up.
    /// Days of `hours` that are out of memory are missing: readers load them first
    /// ([`crate::Engine::rollups_over`]).
    pub fn hours(&self, app: &str, hours: Range<i64>) -> Hours {
        let Some(a) = self.apps.get(app) else {
            return Hours(Vec::new());
        };
        let taken: Vec<(i64, Arc<Hour>)> =
            a.hours.range(hours).map(|(h, x)| (*h, x.clone())).collect();
        self.touch_hours(a, taken.iter().map(|(h, _)| h.div_euclid(24)));
        Hours(taken)
    }

    /// The campaigns of `app` over `hours` (hour numbers, end exclusive): whole UTC days from
    /// the per-day sets, the hours before the first and after the last whole day from the
    /// hours. Cheap, like [`Rollups::hours`] (and like it, missing the days out of memory);
    /// add up with [`CampaignSets::totals`].
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
            take_hours(hours.clone());
        } else {
            take_hours(hours.start..first_day * 24);
            take_hours(end_day * 24..hours.end);
            for (_, d) in a.campaign_days.range(first_day..end_day) {
                out.push(CampaignSlice::Day(d.clone()));
            }
        }
        if !hours.is_empty() {
            let days = hours.start.div_euclid(24)..=(hours.end - 1).div_euclid(24);
            self.touch_hours(a, a.campaign_days.range(days).map(|(d, _)| *d));
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
        let (first, last) = step_pages::step_range(from_ms, to_ms, window_ms);
        let days: Vec<(i64, Arc<DaySteps>)> = a
            .steps
            .range(first..=last)
            .map(|(d, x)| (*d, x.clone()))
            .collect();
        self.touch_steps(a, days.iter().map(|(d, _)| *d));
        StepDays {
            days,
            users: a.users.len(),
        }
    }

    /// The dense number of `user` within `app`, if any stored event of the app has it.
    pub fn user_number(&self, app: &str, user: &str) -> Option<u32> {
        self.apps.get(app)?.users.get(user).copied()
    }

    /// Calls `f` with each of `app`'s dense numbers in `numbers` and its `user_id` (numbers
    /// the app does not have are left out), under the caller's lock: for counting users
    /// across apps by their ids.
    pub fn with_user_names(
        &self,
        app: &str,
        numbers: &RoaringBitmap,
        mut f: impl FnMut(u32, &str),
    ) {
        let Some(a) = self.apps.get(app) else {
            return;
        };
        for n in numbers {
            if let Some(name) = a.names.get(n as usize) {
                f(n, name);
            }
        }
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupSize {
    pub apps: u64,
    pub users: u64,
    pub hours: u64,
    pub bitmap_bytes: u64,
    /// Bytes of the user dictionaries (each app's user_id ↔ number maps).
    pub dictionary_bytes: u64,
    /// Bytes of the per-user step times kept for funnels.
    pub funnel_bytes: u64,
}
