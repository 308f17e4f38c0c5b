//! [`RollupPart`]: the rollups of one segment's rows, as the segment's summary persists them,
//! and how parts are added to [`Rollups`] when a generation is opened.

use std::collections::btree_map::Entry;

use serde::{Deserialize, Serialize};

use super::*;

/// The rollups of some rows of one app (one segment's), over the app's dense user numbers
/// (its dictionary, [`crate::dictionary`]) and the part's own campaign numbers
/// (`campaigns[n]` is campaign n). [`Rollups::merge`] of a part equals adding its rows one by
/// one.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct RollupPart {
    campaigns: Vec<CampaignKey>,
    hours: Vec<(i64, Hour)>,
    campaign_days: Vec<(i64, Campaigns)>,
    steps: Vec<(i64, DaySteps)>,
}

/// The front of a serialized [`RollupPart`] — its campaigns, hours and campaign days, in
/// the same order — decoded without the step times that follow (loading days of hours back,
/// [`crate::summary::read_hours`]).
#[derive(Debug, Deserialize)]
pub(crate) struct HoursOnly {
    campaigns: Vec<CampaignKey>,
    hours: Vec<(i64, Hour)>,
    campaign_days: Vec<(i64, Campaigns)>,
}

impl From<HoursOnly> for RollupPart {
    fn from(h: HoursOnly) -> Self {
        RollupPart {
            campaigns: h.campaigns,
            hours: h.hours,
            campaign_days: h.campaign_days,
            steps: Vec::new(),
        }
    }
}

impl RollupPart {
    /// Keeps only what the part counted on `days` (UTC day numbers; erasure recounts them).
    pub(crate) fn keep_days(&mut self, days: &std::ops::RangeInclusive<i64>) {
        let hours = days.start() * 24..(days.end() + 1) * 24;
        self.hours.retain(|(h, _)| hours.contains(h));
        self.campaign_days.retain(|(d, _)| days.contains(d));
        self.steps.retain(|(d, _)| days.contains(d));
    }

    /// Keeps only the hours and campaign days of `days`, and no step times (loading days of
    /// hours back, [`Rollups::restore_hours`]).
    pub(crate) fn keep_hour_days(&mut self, days: &std::collections::BTreeSet<i64>) {
        self.hours.retain(|(h, _)| days.contains(&h.div_euclid(24)));
        self.campaign_days.retain(|(d, _)| days.contains(d));
        self.steps.clear();
    }

    /// Takes the hours and campaign days of the days before `day` out of the part, returning
    /// those days.
    pub(crate) fn drop_hours_before(&mut self, day: i64) -> std::collections::BTreeSet<i64> {
        let mut old: std::collections::BTreeSet<i64> = self
            .hours
            .iter()
            .map(|(h, _)| h.div_euclid(24))
            .filter(|d| *d < day)
            .collect();
        old.extend(
            self.campaign_days
                .iter()
                .map(|(d, _)| *d)
                .filter(|d| *d < day),
        );
        self.hours.retain(|(h, _)| h.div_euclid(24) >= day);
        self.campaign_days.retain(|(d, _)| *d >= day);
        old
    }

    /// The days whose hours count one of `users`.
    pub(crate) fn days_with_users(&self, users: &RoaringBitmap) -> std::collections::BTreeSet<i64> {
        self.hours
            .iter()
            .filter(|(_, h)| !h.users.is_disjoint(users))
            .map(|(h, _)| h.div_euclid(24))
            .collect()
    }

    /// Takes the step times of `day` out of the part.
    pub(crate) fn take_steps(&mut self, day: i64) -> Option<DaySteps> {
        let i = self.steps.iter().position(|(d, _)| *d == day)?;
        Some(self.steps.swap_remove(i).1)
    }

    /// Takes the step times of the days before `day` out of the part, returning those days.
    pub(crate) fn drop_steps_before(&mut self, day: i64) -> Vec<i64> {
        let old: Vec<i64> = self
            .steps
            .iter()
            .filter(|(d, _)| *d < day)
            .map(|(d, _)| *d)
            .collect();
        self.steps.retain(|(d, _)| *d >= day);
        old
    }

    /// The largest user number the part refers to.
    pub(crate) fn max_user(&self) -> Option<u32> {
        let hours = self.hours.iter().filter_map(|(_, h)| h.users.max());
        let steps = self
            .steps
            .iter()
            .flat_map(|(_, d)| d.by_type.values())
            .flat_map(|v| v.iter().map(|(u, _)| *u));
        let campaigns = self
            .campaign_days
            .iter()
            .flat_map(|(_, d)| d.values())
            .filter_map(|c| c.users.max());
        hours.chain(steps).chain(campaigns).max()
    }
}

/// Builds the [`RollupPart`] of rows whose users are already numbered.
#[derive(Default)]
pub(crate) struct PartBuilder {
    app: AppRollup,
    code: String,
}

fn unshare<T: Clone>(a: Arc<T>) -> T {
    Arc::try_unwrap(a).unwrap_or_else(|a| (*a).clone())
}

impl PartBuilder {
    pub(crate) fn add(&mut self, row: &RollupRow<'_>, user: Option<u32>) {
        let campaign = row
            .campaign
            .map(|c| self.app.campaign(&mut self.code, c, row.source, row.medium));
        self.app.count(row, user, campaign);
    }

    pub(crate) fn finish(self) -> RollupPart {
        self.app.into_part()
    }
}

impl AppRollup {
    fn into_part(self) -> RollupPart {
        let mut app = self;
        for d in app.steps.values_mut() {
            Arc::make_mut(d).shrink_to_fit();
        }
        RollupPart {
            campaigns: app.campaigns.iter().map(|k| (**k).clone()).collect(),
            hours: app
                .hours
                .into_iter()
                .map(|(h, x)| (h, unshare(x)))
                .collect(),
            campaign_days: app
                .campaign_days
                .into_iter()
                .map(|(d, x)| (d, unshare(x)))
                .collect(),
            steps: app
                .steps
                .into_iter()
                .map(|(d, x)| (d, unshare(x)))
                .collect(),
        }
    }
}

/// `stats` with campaign numbers mapped through `numbers` (part → app) and the app's keys.
fn renumber(stats: Campaigns, numbers: &[u32], keys: &[Arc<CampaignKey>]) -> Campaigns {
    stats
        .into_iter()
        .filter_map(|(c, mut s)| {
            let n = *numbers.get(c as usize)?;
            s.key = keys.get(n as usize)?.clone();
            Some((n, s))
        })
        .collect()
}

fn merge_campaigns(into: &mut Campaigns, from: Campaigns) {
    for (c, s) in from {
        match into.entry(c) {
            Entry::Vacant(v) => {
                v.insert(s);
            }
            Entry::Occupied(mut o) => {
                let t = o.get_mut();
                t.events += s.events;
                t.installs += s.installs;
                t.purchases += s.purchases;
                t.purchase_revenue_micros += s.purchase_revenue_micros;
                t.purchase_revenue_events += s.purchase_revenue_events;
                t.users.union(s.users);
            }
        }
    }
}

impl Hour {
    fn merge(&mut self, other: Hour) {
        self.events += other.events;
        for (k, t) in other.by_type {
            let e = self.by_type.entry(k).or_default();
            e.events += t.events;
            e.users |= t.users;
        }
        self.revenue_micros += other.revenue_micros;
        self.revenue_events += other.revenue_events;
        self.users |= other.users;
        for (k, p) in other.platforms {
            let e = self.platforms.entry(k).or_default();
            e.events += p.events;
            e.users |= p.users;
        }
        merge_campaigns(&mut self.campaigns, other.campaigns);
    }
}

impl Rollups {
    /// Adds a part of `app_id`'s rows whose user numbers are the app's (see
    /// [`Rollups::extend_users`]).
    pub(crate) fn merge(&mut self, app_id: &str, part: RollupPart) {
        let app = match self.apps.get_mut(app_id) {
            Some(a) => a,
            None => self.apps.entry(app_id.into()).or_default(),
        };
        let numbers: Vec<u32> = part
            .campaigns
            .iter()
            .map(|k| {
                app.campaign(
                    &mut self.code,
                    &k.campaign,
                    k.source.as_deref(),
                    k.medium.as_deref(),
                )
            })
            .collect();
        for (h, mut hour) in part.hours {
            hour.campaigns = renumber(
                std::mem::take(&mut hour.campaigns),
                &numbers,
                &app.campaigns,
            );
            match app.hours.entry(h) {
                Entry::Vacant(v) => {
                    v.insert(Arc::new(hour));
                }
                Entry::Occupied(mut o) => Arc::make_mut(o.get_mut()).merge(hour),
            }
        }
        for (d, stats) in part.campaign_days {
            let stats = renumber(stats, &numbers, &app.campaigns);
            match app.campaign_days.entry(d) {
                Entry::Vacant(v) => {
                    v.insert(Arc::new(stats));
                }
                Entry::Occupied(mut o) => merge_campaigns(Arc::make_mut(o.get_mut()), stats),
            }
        }
        for (d, steps) in part.steps {
            match app.steps.entry(d) {
                Entry::Vacant(v) => {
                    v.insert(Arc::new(steps));
                }
                Entry::Occupied(mut o) => Arc::make_mut(o.get_mut()).merge(steps),
            }
        }
    }

    /// Takes what `app_id` counted out, as one part (parts merged here to be merged into
    /// other rollups at once, [`Rollups::restore_hours`]).
    pub(crate) fn take_part(&mut self, app_id: &str) -> RollupPart {
        self.apps
            .remove(app_id)
            .map(AppRollup::into_part)
            .unwrap_or_default()
    }

    /// Numbers `names` as `app_id`'s next users, in order (loading a persisted dictionary).
    /// False, and nothing numbered, if one of them is already numbered or repeated.
    pub(crate) fn extend_users<'a>(
        &mut self,
        app_id: &str,
        names: impl IntoIterator<Item = &'a str>,
    ) -> bool {
        let app = match self.apps.get_mut(app_id) {
            Some(a) => a,
            None => self.apps.entry(app_id.into()).or_default(),
        };
        let before = app.names.len();
        for n in names {
            if app.users.contains_key(n) {
                for gone in app.names.drain(before..) {
                    app.users.remove(&gone);
                }
                return false;
            }
            app.user(n);
        }
        true
    }

    /// The number of users `app_id` has.
    pub fn user_count(&self, app_id: &str) -> usize {
        self.apps.get(app_id).map_or(0, |a| a.names.len())
    }

    /// The user_ids numbered `from..` in `app_id`, in order.
    pub(crate) fn users_from(&self, app_id: &str, from: usize) -> Vec<Arc<str>> {
        self.apps
            .get(app_id)
            .and_then(|a| a.names.get(from..))
            .map_or_else(Vec::new, <[Arc<str>]>::to_vec)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// [`HoursOnly`] reads the front of a serialized part: the same hours and campaign days,
    /// without decoding the step times that follow.
    #[test]
    fn hours_only_decodes_the_front_of_a_part() {
        let mut b = PartBuilder::default();
        for i in 0..500u32 {
            let user = format!("u{i}");
            let row = RollupRow {
                app_id: "a",
                event_type: if i % 3 == 0 { "install" } else { "open" },
                timestamp_ms: i64::from(i) * 600_000,
                user_id: Some(&user),
                platform: "ios",
                revenue: (i % 5 == 0).then_some(1.5),
                campaign: (i % 2 == 0).then_some("c"),
                source: Some("s"),
                medium: None,
            };
            b.add(&row, Some(i));
        }
        let part = b.finish();
        assert!(!part.steps.is_empty() && !part.campaign_days.is_empty());
        let bytes = bincode::serialize(&part).unwrap();
        let front: RollupPart = bincode::deserialize::<HoursOnly>(&bytes).unwrap().into();
        assert!(front.steps.is_empty());
        let same = |a: &dyn erased::Ser, b: &dyn erased::Ser| a.bytes() == b.bytes();
        assert!(same(&front.campaigns, &part.campaigns));
        assert!(same(&front.hours, &part.hours));
        assert!(same(&front.campaign_days, &part.campaign_days));
    }

    /// Compared as they are stored (a campaign's key is not: its number is).
    mod erased {
        pub(super) trait Ser {
            fn bytes(&self) -> Vec<u8>;
        }
        impl<T: serde::Serialize> Ser for T {
            fn bytes(&self) -> Vec<u8> {
                bincode::serialize(self).unwrap()
            }
        }
    }
}
