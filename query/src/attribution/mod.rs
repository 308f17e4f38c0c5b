//! Attribution: which campaign, source and medium get the credit for installs, purchases and
//! any other conversion, computed from the raw events of a time range whenever it is asked
//! for (never frozen at ingest), so any range can be re-run with other windows or models.
//!
//! * [`rules`]: the rules over one identity's history (windows, click beats view,
//!   re-attribution), pure and tested with hand-computed cases.
//! * [`model`]: how a conversion's credit is split (last/first touch, linear, time decay,
//!   position based).
//! * [`Collector`]: turns the scanned events into identities (a device, joined with every
//!   other device its known `user_id` was seen on) and adds the credit up per channel.
//! * [`table`]: the SQL table function `attribution(app, from, to [, model])`.

mod collect;
pub mod fraud;
pub mod model;
pub mod rules;
mod scan;
pub(crate) mod table;

use serde::{Deserialize, Serialize};

pub use collect::Collector;
pub use fraud::{FraudReport, FraudRow, FraudRules};
pub use model::{Model, DAY_MS};
pub use rules::Windows;
pub(crate) use scan::{run, run_fraud};

use crate::error::{QueryError, Result};

/// What to attribute.
#[derive(Debug, Clone)]
pub struct AttributionParams {
    pub app_id: String,
    /// Conversions with `from_ms <= timestamp < to_ms` are attributed.
    pub from_ms: i64,
    pub to_ms: i64,
    pub model: Model,
    /// Event types that are conversions (default `install`, `purchase`).
    pub conversion_types: Vec<String>,
    /// Event types that are clicks (default `ad_click`).
    pub click_types: Vec<String>,
    /// Event types that are views (default `ad_impression`).
    pub view_types: Vec<String>,
    pub windows: Windows,
    /// Touchpoints flagged by the fraud rules are not eligible, and installs from deny-listed
    /// IPs are not conversions.
    pub exclude_fraud: bool,
    pub fraud: FraudRules,
}

impl AttributionParams {
    pub const DEFAULT_CLICK_WINDOW_MS: i64 = 7 * DAY_MS;
    pub const DEFAULT_VIEW_WINDOW_MS: i64 = DAY_MS;
    pub const DEFAULT_REATTRIBUTION_WINDOW_MS: i64 = 30 * DAY_MS;

    /// Defaults for everything but the app and the range.
    pub fn new(app_id: impl Into<String>, from_ms: i64, to_ms: i64) -> Self {
        Self {
            app_id: app_id.into(),
            from_ms,
            to_ms,
            model: Model::LastTouch,
            conversion_types: vec!["install".into(), "purchase".into()],
            click_types: vec!["ad_click".into()],
            view_types: vec!["ad_impression".into()],
            windows: Windows {
                click_ms: Self::DEFAULT_CLICK_WINDOW_MS,
                view_ms: Self::DEFAULT_VIEW_WINDOW_MS,
                reattribution_ms: Self::DEFAULT_REATTRIBUTION_WINDOW_MS,
            },
            exclude_fraud: false,
            fraud: FraudRules::default(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(QueryError::InvalidQuery(m));
        if self.app_id.is_empty() {
            return bad("app_id is required".into());
        }
        if self.from_ms >= self.to_ms {
            return bad("from must be before to".into());
        }
        let w = &self.windows;
        if w.click_ms < 0 || w.view_ms < 0 || w.reattribution_ms < 0 {
            return bad("windows may not be negative".into());
        }
        if w.click_ms.max(w.view_ms) > 366 * DAY_MS || w.reattribution_ms > 366 * DAY_MS {
            return bad("windows are at most 366 days".into());
        }
        self.fraud.validate()?;
        if self.conversion_types.is_empty() {
            return bad("at least one conversion event type is needed".into());
        }
        if self.conversion_types.len() > u16::MAX as usize {
            return bad("too many conversion event types".into());
        }
        let touch = |t: &String| self.click_types.contains(t) || self.view_types.contains(t);
        if let Some(t) = self.conversion_types.iter().find(|t| touch(t)) {
            return bad(format!(
                "{t:?} cannot be both a conversion and a touchpoint"
            ));
        }
        if let Some(t) = self
            .click_types
            .iter()
            .find(|t| self.view_types.contains(t))
        {
            return bad(format!("{t:?} cannot be both a click and a view"));
        }
        Ok(())
    }

    /// Events before this time can still matter: touchpoints in the lookback window of the
    /// first conversions, and the earlier conversions a repeat conversion inherits from.
    pub fn history_from_ms(&self) -> i64 {
        let w = &self.windows;
        self.from_ms
            .saturating_sub(w.reattribution_ms)
            .saturating_sub(w.click_ms.max(w.view_ms))
    }

    /// Every event type the scan has to read.
    pub fn event_types(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .conversion_types
            .iter()
            .chain(&self.click_types)
            .chain(&self.view_types)
            .cloned()
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// Credit of one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelRow {
    pub campaign: Option<String>,
    pub source: Option<String>,
    pub medium: Option<String>,
    /// Conversions credited (fractional for multi-touch models).
    pub conversions: f64,
    /// Revenue of those conversions, by the same shares.
    pub revenue: f64,
    /// Clicks and impressions of the channel within the range.
    pub clicks: u64,
    pub impressions: u64,
    /// `conversions / clicks` (null without clicks).
    pub conversion_rate: Option<f64>,
    /// Credited conversions per conversion event type.
    pub by_type: std::collections::BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Unattributed {
    pub conversions: f64,
    pub revenue: f64,
}

/// The answer of `GET /api/analytics/attribution`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub model: String,
    /// Channels by credited conversions, most first.
    pub rows: Vec<ChannelRow>,
    pub unattributed: Unattributed,
    /// Conversions in the range (attributed or not).
    pub total_conversions: u64,
    pub total_revenue: f64,
    /// Events read (the range plus the history the rules look back on).
    pub events_scanned: u64,
    pub identities: u64,
    /// What `exclude_fraud` left out (absent when not asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded_fraud: Option<ExcludedFraud>,
}

/// Conversions (installs from deny-listed IPs) and touchpoints excluded as fraud.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExcludedFraud {
    pub conversions: u64,
    pub revenue: f64,
    pub touchpoints: u64,
}

/// A point in time given as epoch milliseconds, RFC 3339 (`2026-11-01T00:00:00Z`) or a date
/// (`2026-11-01`, midnight UTC).
pub fn parse_time_ms(s: &str) -> Result<i64> {
    /// Times are within years 0000..=9999, so arithmetic on them (ranges, windows) cannot
    /// overflow.
    const MAX_MS: i64 = 253_402_300_799_999;
    let s = s.trim();
    let ms = if let Ok(ms) = s.parse::<i64>() {
        Some(ms)
    } else if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        Some(t.timestamp_millis())
    } else {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_millis())
    };
    match ms {
        Some(ms) if (-62_167_219_200_000..=MAX_MS).contains(&ms) => Ok(ms),
        Some(_) => Err(QueryError::InvalidQuery(format!(
            "{s:?} is outside the years 0000-9999"
        ))),
        None => Err(QueryError::InvalidQuery(format!(
            "{s:?} is not a time: use epoch milliseconds, RFC 3339 or YYYY-MM-DD"
        ))),
    }
}

/// A window length: a number with a unit `d`, `h`, `m`, `s` or `ms` (`7d`, `24h`), or bare
/// seconds.
pub fn parse_window_ms(s: &str) -> Result<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| {
        QueryError::InvalidQuery(format!(
            "{s:?} is not a window: use e.g. 7d, 24h, 30m, 90s or seconds"
        ))
    })?;
    let per = match unit.trim() {
        "" | "s" => 1_000,
        "ms" => 1,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => DAY_MS,
        u => {
            return Err(QueryError::InvalidQuery(format!(
                "unknown unit {u:?} in window {s:?}; one of d, h, m, s, ms"
            )))
        }
    };
    n.checked_mul(per)
        .ok_or_else(|| QueryError::InvalidQuery(format!("window {s:?} is too long")))
}
