//! [`CampaignSets`]: the campaign stats of the hours and days making up a range.

use super::*;

/// Campaign stats of an hour or of a whole day.
pub(super) enum CampaignSlice {
    Hour(Arc<Hour>),
    Day(Arc<Campaigns>),
}

/// The hours and days making up a range, taken out of [`Rollups`] ([`Rollups::campaigns`]).
pub struct CampaignSets(pub(super) Vec<CampaignSlice>);

impl CampaignSets {
    pub(super) fn slices(&self) -> impl Iterator<Item = &Campaigns> {
        self.0.iter().map(|s| match s {
            CampaignSlice::Hour(h) => &h.campaigns,
            CampaignSlice::Day(d) => &**d,
        })
    }

    /// The events with a campaign grouped by the campaign's name alone (whatever their
    /// source and medium): events, users, `install` and `purchase` counts and the revenue of
    /// the purchases.
    pub fn by_campaign(&self) -> BTreeMap<String, GroupTotals> {
        // Users: unions of many small sets, a bit per user id while all campaigns' bits fit
        // in 64 MiB (as in `totals`), made bitmaps at the end.
        let mut max_id = 0;
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for slice in self.slices() {
            for c in slice.values() {
                max_id = max_id.max(c.users.max().unwrap_or(0));
                let n = names.len();
                names.entry(c.key.campaign.as_str()).or_insert(n);
            }
        }
        let budget = (64 << 20) / names.len().max(1);
        let mut acc: Vec<Option<(GroupTotals, Union)>> = (0..names.len())
            .map(|_| Some((GroupTotals::default(), Union::new(max_id, budget))))
            .collect();
        for slice in self.slices() {
            for c in slice.values() {
                let Some((g, users)) = &mut acc[names[c.key.campaign.as_str()]] else {
                    continue;
                };
                g.events += c.events;
                *group_count(&mut g.by_type, "install") += c.installs;
                *group_count(&mut g.by_type, "purchase") += c.purchases;
                g.purchase_revenue_micros += c.purchase_revenue_micros;
                g.purchase_revenue_events += c.purchase_revenue_events;
                users.add(&c.users);
            }
        }
        names
            .into_iter()
            .filter_map(|(name, i)| {
                let (mut g, users) = acc[i].take()?;
                g.users = users.into_bitmap();
                Some((name.to_string(), g))
            })
            .collect()
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

pub(super) fn group_count<'a>(m: &'a mut BTreeMap<String, u64>, k: &str) -> &'a mut u64 {
    if !m.contains_key(k) {
        m.insert(k.to_string(), 0);
    }
    m.get_mut(k).expect("inserted above")
}
