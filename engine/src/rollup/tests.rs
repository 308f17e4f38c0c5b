#![allow(clippy::unwrap_used)]
use super::*;

/// A row of `app` without attribution (shared with the paging modules' tests).
pub(super) fn row<'a>(
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
