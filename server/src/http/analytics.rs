//! `GET /api/analytics/attribution`: conversions credited to campaigns, sources and media,
//! computed from the raw events of the range asked for, with the model and windows asked for.
//!
//! Parameters: `app_id` (required), `from` / `to` (RFC 3339, a date or epoch ms; default
//! the last 30 days), `model` (`last_touch` default, `first_touch`, `linear`, `time_decay`,
//! `position_based`), `half_life` (time decay, default `7d`), `conversion` (comma-separated
//! event types, default `install,purchase`), `click_types` / `view_types` (default
//! `ad_click` / `ad_impression`), `click_window` (default `7d`), `view_window` (`24h`),
//! `reattribution_window` (`30d`), `timeout_ms`; fraud (defaults from `[fraud]`):
//! `exclude_fraud` (`false`), `min_click_to_install` (`10s`), `max_clicks_per_device`,
//! `max_clicks_per_ip` (per UTC day), `deny_ips` (comma-separated, added to the configured).
//!
//! `GET /api/analytics/fraud` takes the same parameters and answers the fraud signals per
//! source ([`query::attribution::FraudReport`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use auth::AuthOp;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use query::attribution::{
    parse_time_ms, parse_window_ms, AttributionParams, FraudReport, Model, Report,
};

use super::authz::ClientIp;
use super::ApiError;
use crate::node::AppState;
use crate::security::{event, submit, Caller};

const KNOWN: [&str; 17] = [
    "app_id",
    "from",
    "to",
    "model",
    "half_life",
    "conversion",
    "click_types",
    "view_types",
    "click_window",
    "view_window",
    "reattribution_window",
    "timeout_ms",
    "exclude_fraud",
    "min_click_to_install",
    "max_clicks_per_device",
    "max_clicks_per_ip",
    "deny_ips",
];

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The parameters of a request, checked.
fn params(
    q: &HashMap<String, String>,
    now_ms: i64,
    fraud: &crate::config::FraudSettings,
) -> Result<AttributionParams, ApiError> {
    // Keys starting with `_` are cache busters and ignored; other unknown keys are typos.
    if let Some(k) = q
        .keys()
        .find(|k| !k.starts_with('_') && !KNOWN.contains(&k.as_str()))
    {
        return Err(ApiError::invalid(format!(
            "unknown parameter {k:?}; known: {}",
            KNOWN.join(", ")
        )));
    }
    let app = q
        .get("app_id")
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ApiError::invalid("app_id is required"))?;
    let time = |k: &str, default: i64| -> Result<i64, ApiError> {
        q.get(k)
            .map(|v| parse_time_ms(v).map_err(|e| ApiError::invalid(format!("{k}: {e}"))))
            .unwrap_or(Ok(default))
    };
    let to = time("to", now_ms)?;
    let from = time("from", to - 30 * query::attribution::DAY_MS)?;
    let mut p = AttributionParams::new(app.clone(), from, to);
    let window = |k: &str| -> Result<Option<i64>, ApiError> {
        q.get(k)
            .map(|v| parse_window_ms(v).map_err(|e| ApiError::invalid(format!("{k}: {e}"))))
            .transpose()
    };
    p.model = Model::parse(
        q.get("model").map_or("last_touch", String::as_str),
        window("half_life")?,
    )?;
    if let Some(c) = q.get("conversion") {
        p.conversion_types = list(c);
    }
    if let Some(c) = q.get("click_types") {
        p.click_types = list(c);
    }
    if let Some(v) = q.get("view_types") {
        p.view_types = list(v);
    }
    if let Some(w) = window("click_window")? {
        p.windows.click_ms = w;
    }
    if let Some(w) = window("view_window")? {
        p.windows.view_ms = w;
    }
    if let Some(w) = window("reattribution_window")? {
        p.windows.reattribution_ms = w;
    }
    p.fraud = fraud.rules().map_err(ApiError::invalid)?;
    if let Some(w) = window("min_click_to_install")? {
        p.fraud.min_click_to_install_ms = w;
    }
    let count = |k: &str| -> Result<Option<u64>, ApiError> {
        q.get(k)
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::invalid(format!("{k}: {v:?} is not a number")))
            })
            .transpose()
    };
    if let Some(n) = count("max_clicks_per_device")? {
        p.fraud.max_clicks_per_device_day = n;
    }
    if let Some(n) = count("max_clicks_per_ip")? {
        p.fraud.max_clicks_per_ip_day = n;
    }
    if let Some(d) = q.get("deny_ips") {
        p.fraud.deny(list(d))?;
    }
    p.exclude_fraud = match q.get("exclude_fraud").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(v) => {
            return Err(ApiError::invalid(format!(
                "exclude_fraud: {v:?} is not true or false"
            )))
        }
    };
    p.validate()?;
    Ok(p)
}

/// A checked request: the parameters, and how to run it for this caller.
struct Job {
    params: AttributionParams,
    scope: query::Scope,
    opts: query::QueryOptions,
}

async fn job(
    state: &AppState,
    caller: &Caller,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Job, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    let p = super::app_read::user(caller)?;
    let now_ms = crate::clock::now_ms();
    let params = params(&q, now_ms, &state.cfg.fraud)?;
    let scope = super::app_read::app_scope(state, p, &params.app_id)?;
    let timeout = match q.get("timeout_ms") {
        Some(t) => Some(Duration::from_millis(t.parse().map_err(|_| {
            ApiError::invalid(format!("timeout_ms: {t:?} is not a number"))
        })?)),
        None => None,
    };
    state.cluster.read_barrier().await?;
    Ok(Job {
        params,
        scope,
        opts: query::QueryOptions {
            user: p.user_id.clone(),
            timeout,
            now: None,
        },
    })
}

/// Writes the audit record of a finished request (through Raft, before the answer).
async fn audit(
    state: &AppState,
    caller: &Caller,
    ip: &str,
    action: &str,
    target: &str,
    what: String,
    outcome: String,
) -> Result<(), ApiError> {
    let mut ev = event(caller.actor(), ip, action, target, what);
    ev.outcome = Some(outcome);
    submit(
        &state.cluster,
        state.security.request(AuthOp::AuditOnly, vec![ev]),
    )
    .await?;
    Ok(())
}

pub(crate) async fn attribution(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Report>, ApiError> {
    let Job {
        params,
        scope,
        opts,
    } = job(&state, &caller, q).await?;
    let t0 = Instant::now();
    let target = params.app_id.clone();
    let what = format!(
        "model={} from={} to={} exclude_fraud={}",
        params.model.name(),
        params.from_ms,
        params.to_ms,
        params.exclude_fraud
    );
    let answer = state.query.attribution(params, scope, opts).await;
    let elapsed_ms = t0.elapsed().as_secs_f64() * 1e3;
    let outcome = match &answer {
        Ok(r) => format!(
            "success: {} conversions, {} channels in {elapsed_ms:.1} ms",
            r.total_conversions,
            r.rows.len()
        ),
        Err(e) => format!("failure: {}: {e}", e.code()),
    };
    audit(
        &state,
        &caller,
        &ip,
        "query.attribution",
        &target,
        what,
        outcome,
    )
    .await?;
    Ok(Json(answer?))
}

/// `GET /api/analytics/fraud`: click injection, abnormal clicks per device and IP, and
/// deny-listed IPs, per source, over the range asked for.
pub(crate) async fn fraud(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<FraudReport>, ApiError> {
    let Job {
        mut params,
        scope,
        opts,
    } = job(&state, &caller, q).await?;
    if !params.conversion_types.contains(&params.fraud.install_type) {
        params
            .conversion_types
            .push(params.fraud.install_type.clone());
        params.validate()?;
    }
    let t0 = Instant::now();
    let target = params.app_id.clone();
    let what = format!("from={} to={}", params.from_ms, params.to_ms);
    let answer = state.query.fraud(params, scope, opts).await;
    let elapsed_ms = t0.elapsed().as_secs_f64() * 1e3;
    let outcome = match &answer {
        Ok(r) => format!(
            "success: {} sources, {} flagged devices in {elapsed_ms:.1} ms",
            r.rows.len(),
            r.flagged_devices
        ),
        Err(e) => format!("failure: {}: {e}", e.code()),
    };
    audit(&state, &caller, &ip, "query.fraud", &target, what, outcome).await?;
    Ok(Json(answer?))
}
