//! The attribution rules, over one identity's events in log order. Pure: no I/O, no clock.
//!
//! For a conversion `c` of type `T`:
//! 1. A touchpoint is *eligible* if it belongs to the same identity, came before `c` in the
//!    identity's history (time, then log order), is no older than the lookback window of its
//!    kind (click: `click_ms`, view: `view_ms`), and came after the identity's previous
//!    conversion of type `T` (a touchpoint leads to at most one conversion of each type).
//! 2. Click beats view: if any click is eligible, the views are ignored.
//! 3. The model splits the credit (1 in total) over the eligible touchpoints.
//! 4. No eligible touchpoint, but the identity converted (type `T`) within the re-attribution
//!    window before `c`, and that conversion was attributed: `c` keeps that conversion's
//!    credit split (a repeat purchase or re-install of an active user stays with the source
//!    that won them). After a longer inactivity, `c` is unattributed (organic).

use std::collections::VecDeque;

use super::model::Model;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Click,
    View,
    /// A conversion of the given conversion type (index into the configured list).
    Conversion(u16),
}

/// One event, as attribution needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ev {
    pub ts: i64,
    /// Tie-breaker for equal timestamps: the log order.
    pub order: u64,
    pub kind: Kind,
    /// Interned (campaign, source, medium) of a touchpoint.
    pub channel: u32,
    /// Revenue of a conversion (0 when none).
    pub revenue: f64,
    /// A touchpoint flagged as fraud and excluded: never eligible.
    pub excluded: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Windows {
    pub click_ms: i64,
    pub view_ms: i64,
    pub reattribution_ms: i64,
}

/// What a conversion was credited to: `(channel, share)` with shares summing to 1, or empty
/// (unattributed).
#[derive(Debug, Clone, PartialEq)]
pub struct Credited {
    /// Index of the conversion in the identity's event list.
    pub event: usize,
    pub shares: Vec<(u32, f64)>,
    /// The credit came from the previous conversion (rule 4), not from new touchpoints.
    pub inherited: bool,
}

struct Previous {
    ts: i64,
    /// Position of that conversion in the list: touchpoints before it are consumed.
    pos: usize,
    shares: Vec<(u32, f64)>,
}

/// Applies the rules to one identity's events, which must be sorted by `(ts, order)`.
/// Returns one [`Credited`] per conversion, in order.
pub fn attribute(events: &[Ev], windows: &Windows, model: &Model) -> Vec<Credited> {
    let mut out = Vec::new();
    let mut previous: Vec<Option<Previous>> = Vec::new();
    // Touchpoints that may still be eligible: older than both windows they never are again.
    let oldest = windows.click_ms.max(windows.view_ms);
    let mut touches: VecDeque<usize> = VecDeque::new();
    for (pos, e) in events.iter().enumerate() {
        while touches
            .front()
            .is_some_and(|&t| e.ts - events[t].ts > oldest)
        {
            touches.pop_front();
        }
        let ty = match e.kind {
            Kind::Click | Kind::View => {
                if !e.excluded {
                    touches.push_back(pos);
                }
                continue;
            }
            Kind::Conversion(ty) => ty as usize,
        };
        if previous.len() <= ty {
            previous.resize_with(ty + 1, || None);
        }
        // Touchpoints up to the previous conversion of this type are consumed: start after
        // it (the deque is in position order), so each touchpoint is looked at once per
        // conversion type, however long an identity's history.
        let first = previous[ty]
            .as_ref()
            .map_or(0, |p| touches.partition_point(|&t| t <= p.pos));
        let eligible = |want: Kind, window: i64| -> Vec<usize> {
            touches
                .range(first..)
                .copied()
                .filter(|&t| events[t].kind == want && e.ts - events[t].ts <= window)
                .collect()
        };
        let mut chosen = eligible(Kind::Click, windows.click_ms);
        if chosen.is_empty() {
            chosen = eligible(Kind::View, windows.view_ms);
        }
        let (shares, inherited) = if chosen.is_empty() {
            match &previous[ty] {
                Some(p) if e.ts - p.ts <= windows.reattribution_ms && !p.shares.is_empty() => {
                    (p.shares.clone(), true)
                }
                _ => (Vec::new(), false),
            }
        } else {
            let times: Vec<i64> = chosen.iter().map(|&t| events[t].ts).collect();
            let weights = model.weights(&times, e.ts);
            (
                merge(chosen.iter().map(|&t| events[t].channel).zip(weights)),
                false,
            )
        };
        previous[ty] = Some(Previous {
            ts: e.ts,
            pos,
            shares: shares.clone(),
        });
        out.push(Credited {
            event: pos,
            shares,
            inherited,
        });
    }
    out
}

/// Adds up the shares of the same channel, keeping first-seen order.
fn merge(shares: impl Iterator<Item = (u32, f64)>) -> Vec<(u32, f64)> {
    let mut out: Vec<(u32, f64)> = Vec::new();
    for (c, w) in shares {
        if w == 0.0 {
            continue;
        }
        match out.iter_mut().find(|(k, _)| *k == c) {
            Some((_, x)) => *x += w,
            None => out.push((c, w)),
        }
    }
    out
}
