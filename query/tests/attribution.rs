//! Attribution golden tests: hand-computed credit for every model and window rule, the
//! identity join across devices, and a property test (every conversion's credit sums to 1
//! or it is unattributed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use unmogrowp_query::attribution::rules::{attribute, Credited, Ev, Kind, Windows};
use unmogrowp_query::attribution::{AttributionParams, Collector, Model, DAY_MS};

const H: i64 = 3_600_000;
const D: i64 = DAY_MS;

/// Defaults: click 7 d, view 24 h, re-attribution 30 d.
const W: Windows = Windows {
    click_ms: 7 * D,
    view_ms: D,
    reattribution_ms: 30 * D,
};

fn touch(kind: Kind, ts: i64, channel: u32) -> Ev {
    Ev {
        ts,
        order: 0,
        kind,
        channel,
        revenue: 0.0,
        excluded: false,
    }
}
fn click(ts: i64, channel: u32) -> Ev {
    touch(Kind::Click, ts, channel)
}
fn view(ts: i64, channel: u32) -> Ev {
    touch(Kind::View, ts, channel)
}
fn install(ts: i64) -> Ev {
    Ev {
        ts,
        order: 0,
        kind: Kind::Conversion(0),
        channel: u32::MAX,
        revenue: 0.0,
        excluded: false,
    }
}
fn purchase(ts: i64, revenue: f64) -> Ev {
    Ev {
        kind: Kind::Conversion(1),
        revenue,
        ..install(ts)
    }
}

/// Events in the given order, with log order = position (sorted as the collector sorts).
fn history(mut evs: Vec<Ev>) -> Vec<Ev> {
    for (i, e) in evs.iter_mut().enumerate() {
        e.order = i as u64;
    }
    evs.sort_by_key(|e| (e.ts, e.order));
    evs
}

fn shares(c: &Credited) -> Vec<(u32, f64)> {
    let mut s = c.shares.clone();
    s.sort_by_key(|x| x.0);
    s
}

fn assert_shares(c: &Credited, want: &[(u32, f64)]) {
    let got = shares(c);
    assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
    for ((gc, gw), (wc, ww)) in got.iter().zip(want) {
        assert_eq!(gc, wc, "got {got:?}, want {want:?}");
        assert!((gw - ww).abs() < 1e-12, "got {got:?}, want {want:?}");
    }
}

/// Three clicks (channels 1, 2, 3) at -3 h, -2 h, -1 h before an install at 10 h.
fn three_clicks() -> Vec<Ev> {
    history(vec![
        click(7 * H, 1),
        click(8 * H, 2),
        click(9 * H, 3),
        install(10 * H),
    ])
}

#[test]
fn every_model_on_three_clicks() {
    let h = three_clicks();
    let one = |m: Model| attribute(&h, &W, &m).remove(0);
    assert_shares(&one(Model::LastTouch), &[(3, 1.0)]);
    assert_shares(&one(Model::FirstTouch), &[(1, 1.0)]);
    assert_shares(
        &one(Model::Linear),
        &[(1, 1.0 / 3.0), (2, 1.0 / 3.0), (3, 1.0 / 3.0)],
    );
    assert_shares(&one(Model::PositionBased), &[(1, 0.4), (2, 0.2), (3, 0.4)]);
    // Half-life 1 h: ages 3 h, 2 h, 1 h weigh 1/8, 1/4, 1/2; normalised by 7/8.
    assert_shares(
        &one(Model::TimeDecay { half_life_ms: H }),
        &[(1, 1.0 / 7.0), (2, 2.0 / 7.0), (3, 4.0 / 7.0)],
    );
}

#[test]
fn position_based_two_and_four_touchpoints() {
    let h = history(vec![click(0, 1), click(H, 2), install(2 * H)]);
    assert_shares(
        &attribute(&h, &W, &Model::PositionBased)[0],
        &[(1, 0.5), (2, 0.5)],
    );
    let h = history(vec![
        click(0, 1),
        click(H, 2),
        click(2 * H, 3),
        click(3 * H, 4),
        install(4 * H),
    ]);
    assert_shares(
        &attribute(&h, &W, &Model::PositionBased)[0],
        &[(1, 0.4), (2, 0.1), (3, 0.1), (4, 0.4)],
    );
}

#[test]
fn the_same_channel_twice_adds_up() {
    let h = history(vec![
        click(0, 5),
        click(H, 6),
        click(2 * H, 5),
        install(3 * H),
    ]);
    assert_shares(
        &attribute(&h, &W, &Model::Linear)[0],
        &[(5, 2.0 / 3.0), (6, 1.0 / 3.0)],
    );
}

#[test]
fn click_beats_view() {
    // A view 1 h before the install and a click 6 days before: the click takes it all.
    let h = history(vec![click(0, 1), view(6 * D - H, 2), install(6 * D)]);
    for m in [Model::LastTouch, Model::Linear, Model::FirstTouch] {
        assert_shares(&attribute(&h, &W, &m)[0], &[(1, 1.0)]);
    }
}

#[test]
fn windows_per_kind() {
    // Click 7 d + 1 ms old: outside; view 23 h old: inside, so the view wins.
    let h = history(vec![
        click(0, 1),
        view(7 * D + 1 - 23 * H, 2),
        install(7 * D + 1),
    ]);
    assert_shares(&attribute(&h, &W, &Model::LastTouch)[0], &[(2, 1.0)]);
    // Exactly 7 d is still inside.
    let h = history(vec![click(0, 1), install(7 * D)]);
    assert_shares(&attribute(&h, &W, &Model::LastTouch)[0], &[(1, 1.0)]);
    // A view 25 h old and nothing else: unattributed.
    let h = history(vec![view(0, 2), install(25 * H)]);
    let c = attribute(&h, &W, &Model::LastTouch);
    assert!(c[0].shares.is_empty() && !c[0].inherited);
    // Custom windows: a 1 h click window leaves a 2 h old click out.
    let narrow = Windows { click_ms: H, ..W };
    let h = history(vec![click(0, 1), install(2 * H)]);
    assert!(attribute(&h, &narrow, &Model::LastTouch)[0]
        .shares
        .is_empty());
}

#[test]
fn ties_are_broken_by_log_order() {
    // Two clicks at the same millisecond: the one logged later is the last touch.
    let h = history(vec![click(H, 1), click(H, 2), install(2 * H)]);
    assert_shares(&attribute(&h, &W, &Model::LastTouch)[0], &[(2, 1.0)]);
    assert_shares(&attribute(&h, &W, &Model::FirstTouch)[0], &[(1, 1.0)]);
    // A click at the conversion's millisecond but logged after it does not count.
    let h = history(vec![click(0, 1), install(H), click(H, 2)]);
    assert_shares(&attribute(&h, &W, &Model::LastTouch)[0], &[(1, 1.0)]);
    // ...logged before it, it does.
    let h = history(vec![click(0, 1), click(H, 2), install(H)]);
    assert_shares(&attribute(&h, &W, &Model::LastTouch)[0], &[(2, 1.0)]);
}

#[test]
fn touchpoints_after_the_conversion_or_consumed_do_not_count() {
    // Install, then a click: the click leads to nothing yet.
    let h = history(vec![install(0), click(H, 1)]);
    assert!(attribute(&h, &W, &Model::LastTouch)[0].shares.is_empty());
    // Click 1 leads to the first install; a re-install after click 2 goes to click 2 only,
    // even in the linear model (click 1 was consumed).
    let h = history(vec![
        click(0, 1),
        install(H),
        click(2 * H, 2),
        install(3 * H),
    ]);
    let c = attribute(&h, &W, &Model::Linear);
    assert_shares(&c[0], &[(1, 1.0)]);
    assert_shares(&c[1], &[(2, 1.0)]);
    assert!(!c[1].inherited);
    // The same click can lead to an install and to a purchase (different conversion types).
    let h = history(vec![click(0, 1), install(H), purchase(2 * H, 9.99)]);
    let c = attribute(&h, &W, &Model::LastTouch);
    assert_shares(&c[0], &[(1, 1.0)]);
    assert_shares(&c[1], &[(1, 1.0)]);
}

#[test]
fn reattribution_window_keeps_active_users_with_their_source() {
    // Click A at day 0, purchases at day 1 (click), day 20 (click too old: inherits A, the
    // previous purchase was 19 d before), day 45 (inherits again: 25 d after day 20) and day
    // 80 (35 d of inactivity: organic).
    let h = history(vec![
        click(0, 1),
        purchase(D, 1.0),
        purchase(20 * D, 2.0),
        purchase(45 * D, 3.0),
        purchase(80 * D, 4.0),
    ]);
    let c = attribute(&h, &W, &Model::LastTouch);
    assert_shares(&c[0], &[(1, 1.0)]);
    assert!(!c[0].inherited);
    assert_shares(&c[1], &[(1, 1.0)]);
    assert!(c[1].inherited);
    assert_shares(&c[2], &[(1, 1.0)]);
    assert!(c[2].inherited);
    assert!(c[3].shares.is_empty() && !c[3].inherited);
    // A new click after an inactive stretch re-attributes to the new source.
    let h = history(vec![
        click(0, 1),
        purchase(D, 1.0),
        click(70 * D, 2),
        purchase(71 * D, 1.0),
    ]);
    let c = attribute(&h, &W, &Model::LastTouch);
    assert_shares(&c[1], &[(2, 1.0)]);
    // Re-attribution window 0: no inheritance at all.
    let strict = Windows {
        reattribution_ms: 0,
        ..W
    };
    let h = history(vec![click(0, 1), purchase(D, 1.0), purchase(20 * D, 1.0)]);
    assert!(attribute(&h, &strict, &Model::LastTouch)[1]
        .shares
        .is_empty());
    // A linear split is inherited as a split.
    let h = history(vec![
        click(0, 1),
        click(H, 2),
        purchase(D, 1.0),
        purchase(10 * D, 1.0),
    ]);
    let c = attribute(&h, &W, &Model::Linear);
    assert_shares(&c[1], &[(1, 0.5), (2, 0.5)]);
}

#[test]
fn excluded_touchpoints_are_never_eligible() {
    let mut h = history(vec![click(0, 1), click(H, 2), install(2 * H)]);
    h[1].excluded = true;
    assert_shares(&attribute(&h, &W, &Model::LastTouch)[0], &[(1, 1.0)]);
}

/// A tiny deterministic generator (xorshift64*): the property test needs no extra crate and
/// every failure is reproducible from its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` events at `slots` possible times `step` apart, of kinds drawn from `kinds` (0 click,
/// 1 view — one in five excluded —, 2 install, 3 purchase) over five channels.
fn random_history(rng: &mut Rng, n: usize, slots: u64, step: i64, kinds: &[u64]) -> Vec<Ev> {
    let evs: Vec<Ev> = (0..n)
        .map(|_| {
            let ts = rng.below(slots) as i64 * step;
            match kinds[rng.below(kinds.len() as u64) as usize] {
                0 => click(ts, rng.below(5) as u32),
                1 => Ev {
                    excluded: rng.below(5) == 0,
                    ..view(ts, rng.below(5) as u32)
                },
                2 => install(ts),
                _ => purchase(ts, rng.below(100) as f64),
            }
        })
        .collect();
    history(evs)
}

fn random_windows(rng: &mut Rng) -> Windows {
    Windows {
        click_ms: rng.below(10) as i64 * D,
        view_ms: rng.below(3) as i64 * D,
        reattribution_ms: rng.below(60) as i64 * D,
    }
}

#[test]
fn property_credit_per_conversion_sums_to_one() {
    let models = [
        Model::LastTouch,
        Model::FirstTouch,
        Model::Linear,
        Model::TimeDecay { half_life_ms: D },
        Model::TimeDecay { half_life_ms: 1 },
        Model::PositionBased,
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut attributed = 0;
    for case in 0..3_000 {
        let n = 1 + rng.below(40) as usize;
        let h = random_history(&mut rng, n, 40, 6 * H, &[0, 1, 2, 3]);
        let windows = random_windows(&mut rng);
        for m in &models {
            let credited = attribute(&h, &windows, m);
            let conversions = h
                .iter()
                .filter(|e| matches!(e.kind, Kind::Conversion(_)))
                .count();
            assert_eq!(credited.len(), conversions, "case {case}");
            for c in &credited {
                if c.shares.is_empty() {
                    continue;
                }
                attributed += 1;
                let total: f64 = c.shares.iter().map(|s| s.1).sum();
                assert!(
                    (total - 1.0).abs() < 1e-9,
                    "case {case} {m:?}: {c:?} sums to {total}"
                );
                assert!(c.shares.iter().all(|s| s.1 > 0.0), "case {case}: {c:?}");
            }
        }
    }
    assert!(
        attributed > 10_000,
        "the generator made too few attributable cases: {attributed}"
    );
}

fn batch(rows: &[(i64, &str, Option<&str>, &str, Option<&str>, Option<f64>)]) -> RecordBatch {
    let ts_type = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let s = |n: &str| Field::new(n, DataType::Utf8, true);
    let schema = Arc::new(Schema::new(vec![
        Field::new("timestamp", ts_type, false),
        Field::new("log_index", DataType::UInt64, false),
        s("device_id"),
        s("user_id"),
        s("event_type"),
        s("attribution_campaign"),
        s("attribution_source"),
        s("attribution_medium"),
        Field::new("revenue", DataType::Float64, true),
    ]));
    let col = |f: &dyn Fn(
        &(i64, &str, Option<&str>, &str, Option<&str>, Option<f64>),
    ) -> Option<String>|
     -> ArrayRef { Arc::new(rows.iter().map(f).collect::<StringArray>()) };
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(
                TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.0))
                    .with_timezone("UTC"),
            ),
            Arc::new(UInt64Array::from_iter_values(0..rows.len() as u64)),
            col(&|r| Some(r.1.to_string())),
            col(&|r| r.2.map(str::to_string)),
            col(&|r| Some(r.3.to_string())),
            col(&|r| r.4.map(str::to_string)),
            col(&|r| r.4.map(|_| "google".to_string())),
            col(&|r| r.4.map(|_| "cpc".to_string())),
            Arc::new(rows.iter().map(|r| r.5).collect::<Float64Array>()),
        ],
    )
    .unwrap()
}

#[test]
fn multi_device_users_are_one_identity_and_ranges_count_only_their_conversions() {
    let from = 10 * D;
    let to = 20 * D;
    let mut params = AttributionParams::new("app", from, to);
    params.model = Model::LastTouch;
    let mut c = Collector::new(params);
    c.push(&batch(&[
        // Phone: a click by user u1 on day 9; an install on the tablet on day 11 with u1
        // known: one identity, credited to summer.
        (9 * D, "phone", Some("u1"), "ad_click", Some("summer"), None),
        (11 * D, "tablet", Some("u1"), "install", None, None),
        // A purchase on the tablet without a user id: still the same identity (device).
        (12 * D, "tablet", None, "purchase", None, Some(10.0)),
        // Another device, no user: a click on day 5 and an install on day 15 (10 d later,
        // outside the 7 d click window): unattributed.
        (5 * D, "pc", None, "ad_click", Some("winter"), None),
        (15 * D, "pc", None, "install", None, None),
        // A conversion before the range is history only, not counted.
        (9 * D + 1, "watch", None, "ad_click", Some("winter"), None),
        (9 * D + 2, "watch", None, "install", None, None),
        // Other event types are ignored.
        (13 * D, "phone", Some("u1"), "app_open", None, None),
    ]))
    .unwrap();
    let r = c.finish();
    assert_eq!(r.total_conversions, 3);
    assert_eq!(r.total_revenue, 10.0);
    assert_eq!(r.unattributed.conversions, 1.0);
    let summer = r
        .rows
        .iter()
        .find(|x| x.campaign.as_deref() == Some("summer"))
        .unwrap();
    assert_eq!(summer.conversions, 2.0);
    assert_eq!(summer.revenue, 10.0);
    assert_eq!(summer.by_type["install"], 1.0);
    assert_eq!(summer.by_type["purchase"], 1.0);
    assert_eq!(summer.source.as_deref(), Some("google"));
    // Its click was before the range: clicks in range 0, so no rate.
    assert_eq!((summer.clicks, summer.conversion_rate), (0, None));
    // winter: no conversion and no touchpoint in the range, so no row.
    assert!(
        r.rows
            .iter()
            .all(|x| x.campaign.as_deref() != Some("winter")),
        "{:?}",
        r.rows
    );
    assert_eq!(r.identities, 3, "phone+tablet, pc, watch");
}

/// The rules as the module docs state them, each conversion looking at the whole history
/// before it (quadratic): what `attribute`, which looks at each touchpoint once per
/// conversion type, must equal.
fn reference(events: &[Ev], w: &Windows, m: &Model) -> Vec<Credited> {
    let mut out = Vec::new();
    let mut previous: std::collections::HashMap<u16, (i64, usize, Vec<(u32, f64)>)> =
        Default::default();
    for (pos, e) in events.iter().enumerate() {
        let Kind::Conversion(ty) = e.kind else {
            continue;
        };
        let after = previous.get(&ty).map(|p| p.1);
        let eligible = |want: Kind, window: i64| -> Vec<usize> {
            (0..pos)
                .filter(|&t| after.is_none_or(|a| t > a))
                .filter(|&t| {
                    events[t].kind == want && !events[t].excluded && e.ts - events[t].ts <= window
                })
                .collect()
        };
        let mut chosen = eligible(Kind::Click, w.click_ms);
        if chosen.is_empty() {
            chosen = eligible(Kind::View, w.view_ms);
        }
        let (shares, inherited) = if chosen.is_empty() {
            match previous.get(&ty) {
                Some((ts, _, s)) if e.ts - ts <= w.reattribution_ms && !s.is_empty() => {
                    (s.clone(), true)
                }
                _ => (Vec::new(), false),
            }
        } else {
            let times: Vec<i64> = chosen.iter().map(|&t| events[t].ts).collect();
            let mut shares: Vec<(u32, f64)> = Vec::new();
            for (t, wt) in chosen.iter().zip(m.weights(&times, e.ts)) {
                if wt == 0.0 {
                    continue;
                }
                match shares.iter_mut().find(|(c, _)| *c == events[*t].channel) {
                    Some((_, x)) => *x += wt,
                    None => shares.push((events[*t].channel, wt)),
                }
            }
            (shares, false)
        };
        previous.insert(ty, (e.ts, pos, shares.clone()));
        out.push(Credited {
            event: pos,
            shares,
            inherited,
        });
    }
    out
}

#[test]
fn property_equals_the_rules_as_written() {
    let models = [
        Model::LastTouch,
        Model::Linear,
        Model::TimeDecay { half_life_ms: D },
        Model::PositionBased,
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for case in 0..2_000 {
        // Long histories with many conversions: touchpoints consumed again and again.
        let n = 1 + rng.below(200) as usize;
        let h = random_history(&mut rng, n, 400, H, &[0, 0, 1, 2, 3, 3]);
        let windows = random_windows(&mut rng);
        for m in &models {
            assert_eq!(
                attribute(&h, &windows, m),
                reference(&h, &windows, m),
                "case {case} {m:?}"
            );
        }
    }
}
