//! One JSON value → one [`engine::Event`], or a message saying exactly what is wrong.

use serde_json::{Map, Value};

use engine::{Attribution, Event};

use crate::config::IngestLimits;

/// Facts about the request that events default to.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub received_at_ms: i64,
    /// Peer address, used when an event carries no `ip`.
    pub peer_ip: Option<String>,
    /// `User-Agent` header, used when an event carries no `user_agent`.
    pub user_agent: Option<String>,
    /// The app of the API key the request came with: events default to it, and an event
    /// naming another app is rejected. `None` (tests, the parse-only bench): `app_id` is
    /// required in every event.
    pub key_app_id: Option<String>,
    /// The app's `strict_fields`: unknown top-level fields are errors instead of being kept
    /// in `event_data` as `$name`.
    pub strict_fields: bool,
    /// The app's data protection (issue 29): consent required, identifiers transformed
    /// before the event goes anywhere ([`super::privacy`]). `None`: everything kept.
    pub privacy: Option<std::sync::Arc<auth::privacy::Keyed>>,
    /// The app's retention floor (ms): older events are refused, they would not be kept.
    pub oldest_ms: Option<i64>,
}

/// `platform`: any token of 1-32 characters from a-z 0-9 _ - (case-insensitive).
fn valid_platform(p: &str) -> bool {
    (1..=32).contains(&p.len())
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}
const KNOWN: &[&str] = &[
    "event_type",
    "app_id",
    "user_id",
    "device_id",
    "session_id",
    "attribution",
    "timestamp",
    "platform",
    "app_version",
    "event_data",
    "ip",
    "user_agent",
    "event_id",
    "consent",
];

type R<T> = Result<T, String>;

fn opt_string(obj: &mut Map<String, Value>, key: &str, max: usize) -> R<Option<String>> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if s.len() > max {
                Err(format!("{key}: longer than {max} bytes"))
            } else if s.is_empty() {
                Ok(None)
            } else {
                Ok(Some(s))
            }
        }
        Some(_) => Err(format!("{key}: must be a string")),
    }
}

fn req_string(obj: &mut Map<String, Value>, key: &str, max: usize) -> R<String> {
    opt_string(obj, key, max)?.ok_or_else(|| format!("{key}: required (a non-empty string)"))
}

fn valid_app_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

fn timestamp(v: Option<Value>, limits: &IngestLimits, ctx: &RequestContext) -> R<i64> {
    let ms = match v {
        None | Some(Value::Null) => return Ok(ctx.received_at_ms),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i,
            (None, Some(f)) if f.is_finite() && f.abs() < 9.0e15 => f.trunc() as i64,
            _ => return Err("timestamp: not a representable number of milliseconds".into()),
        },
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(&s)
            .map_err(|e| format!("timestamp: {s:?} is not RFC 3339 ({e})"))?
            .timestamp_millis(),
        Some(_) => {
            return Err("timestamp: must be epoch milliseconds or an RFC 3339 string".into())
        }
    };
    if ms < limits.min_timestamp_ms {
        return Err(format!(
            "timestamp: {ms} is before the earliest accepted time {}",
            limits.min_timestamp_ms
        ));
    }
    if let Some(oldest) = ctx.oldest_ms.filter(|o| ms < *o) {
        let day = chrono::DateTime::from_timestamp_millis(oldest)
            .map_or_else(|| oldest.to_string(), |d| d.format("%Y-%m-%d").to_string());
        return Err(format!(
            "timestamp: {ms} is before {day}, the oldest day this app keeps (privacy.retention_days)"
        ));
    }
    if ms > ctx.received_at_ms + limits.max_future_ms {
        return Err(format!(
            "timestamp: {ms} is more than {} ms in the future",
            limits.max_future_ms
        ));
    }
    Ok(ms)
}

/// Where attribution keys other than the five UTM fields (click and ad ids: `gclid`,
/// `fbclid`, `ttclid`, `click_id`, …) are stored: in `event_data` under this prefix, from
/// which the `attribution` map of `events` takes them back (`attribution['gclid']`).
const EXTRA_ATTRIBUTION_PREFIX: &str = "$attribution.";

/// The five UTM fields, and the other keys (click ids) as `event_data` pairs.
fn attribution(v: Option<Value>, limits: &IngestLimits) -> R<(Attribution, Vec<(String, String)>)> {
    let mut obj = match v {
        None | Some(Value::Null) => return Ok((Attribution::default(), Vec::new())),
        Some(Value::Object(o)) => o,
        Some(_) => return Err("attribution: must be an object".into()),
    };
    let mut f = |k: &str| {
        opt_string(&mut obj, k, limits.max_string_bytes).map_err(|e| format!("attribution.{e}"))
    };
    let utm = Attribution {
        campaign: f("campaign")?,
        source: f("source")?,
        medium: f("medium")?,
        content: f("content")?,
        term: f("term")?,
    };
    let mut extra = Vec::with_capacity(obj.len());
    for (k, v) in obj {
        if k.is_empty()
            || k.len() > 64
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        {
            return Err(format!(
                "attribution: key {k:?} must be 1-64 characters from A-Z a-z 0-9 _ - ."
            ));
        }
        let text = match v {
            Value::Null => continue,
            Value::String(s) if s.is_empty() => continue,
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(format!("attribution.{k}: must be a string")),
        };
        if text.len() > limits.max_string_bytes {
            return Err(format!(
                "attribution.{k}: longer than ingest.max_string_bytes = {}",
                limits.max_string_bytes
            ));
        }
        extra.push((format!("{EXTRA_ATTRIBUTION_PREFIX}{k}"), text));
    }
    Ok((utm, extra))
}

struct EventData {
    pairs: Vec<(String, String)>,
    revenue: Option<f64>,
    currency: Option<String>,
}

/// Renders a scalar as stored (`None` for null); arrays as their JSON text.
fn scalar_text(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

/// Flattens `obj` into `out` as dotted keys (`cart.total`), arrays as their JSON text, within
/// `ingest.max_event_data_depth` levels.
fn flatten(
    prefix: &str,
    obj: Map<String, Value>,
    depth: usize,
    limits: &IngestLimits,
    out: &mut Vec<(String, String)>,
) -> R<()> {
    for (k, v) in obj {
        if k.is_empty() {
            return Err(format!("event_data: empty key under {prefix:?}"));
        }
        let key = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        if key.len() > limits.max_key_bytes {
            return Err(format!(
                "event_data: key {key:?} is longer than ingest.max_key_bytes = {}",
                limits.max_key_bytes
            ));
        }
        match v {
            Value::Object(inner) => {
                if depth >= limits.max_event_data_depth {
                    return Err(format!(
                        "event_data.{key}: nested deeper than ingest.max_event_data_depth = {}",
                        limits.max_event_data_depth
                    ));
                }
                flatten(&key, inner, depth + 1, limits, out)?;
            }
            v => {
                let Some(text) = scalar_text(v) else { continue };
                if text.len() > limits.max_string_bytes {
                    return Err(format!(
                        "event_data.{key}: longer than ingest.max_string_bytes = {}",
                        limits.max_string_bytes
                    ));
                }
                out.push((key, text));
            }
        }
        if out.len() > limits.max_event_data_keys {
            return Err(format!(
                "event_data: more than ingest.max_event_data_keys = {} keys (nested keys count once each)",
                limits.max_event_data_keys
            ));
        }
    }
    Ok(())
}

fn event_data(
    v: Option<Value>,
    extra: Vec<(String, String)>,
    limits: &IngestLimits,
) -> R<EventData> {
    let obj = match v {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(o)) => o,
        Some(_) => return Err("event_data: must be an object".into()),
    };
    let mut pairs = Vec::with_capacity(obj.len() + extra.len());
    flatten("", obj, 1, limits, &mut pairs)?;
    pairs.extend(extra);
    if pairs.len() > limits.max_event_data_keys {
        return Err(format!(
            "event_data: more than ingest.max_event_data_keys = {} keys (nested keys and kept unknown fields count once each)",
            limits.max_event_data_keys
        ));
    }
    let mut out = EventData {
        pairs: Vec::with_capacity(pairs.len()),
        revenue: None,
        currency: None,
    };
    for (k, s) in pairs {
        match k.as_str() {
            "revenue" => {
                let r: f64 = s
                    .trim()
                    .parse()
                    .map_err(|_| format!("event_data.revenue: {s:?} is not a number"))?;
                if !r.is_finite() {
                    return Err("event_data.revenue: must be finite".into());
                }
                out.revenue = Some(r);
            }
            "currency" => {
                if s.len() != 3 || !s.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(format!(
                        "event_data.currency: {s:?} is not an ISO 4217 code"
                    ));
                }
                out.currency = Some(s.to_ascii_uppercase());
            }
            _ => {}
        }
        out.pairs.push((k, s));
    }
    Ok(out)
}

/// Unknown top-level fields: errors for a `strict_fields` app, otherwise kept as
/// `event_data['$name']` (JSON text for objects and arrays) so an SDK release that adds a
/// field loses nothing.
fn unknown_fields(
    obj: &mut Map<String, Value>,
    limits: &IngestLimits,
    ctx: &RequestContext,
) -> R<Vec<(String, String)>> {
    let unknown: Vec<String> = obj
        .keys()
        .filter(|k| !KNOWN.contains(&k.as_str()))
        .cloned()
        .collect();
    if ctx.strict_fields {
        if let Some(k) = unknown.first() {
            return Err(format!("{k}: unknown field (this app sets strict_fields)"));
        }
    }
    let mut kept = Vec::with_capacity(unknown.len());
    for k in unknown {
        let key = format!("${k}");
        if key.len() > limits.max_key_bytes {
            return Err(format!(
                "{k}: unknown field name longer than ingest.max_key_bytes = {}",
                limits.max_key_bytes
            ));
        }
        let Some(text) = obj.remove(&k).and_then(scalar_text) else {
            continue;
        };
        if text.len() > limits.max_string_bytes {
            return Err(format!(
                "{k}: longer than ingest.max_string_bytes = {}",
                limits.max_string_bytes
            ));
        }
        kept.push((key, text));
    }
    Ok(kept)
}

/// Validates one event per PRODUCT.md. Unknown top-level fields are kept in `event_data` as
/// `$name`, or are errors for an app with `strict_fields`.
pub fn validate_event(v: Value, limits: &IngestLimits, ctx: &RequestContext) -> R<Event> {
    let mut obj = match v {
        Value::Object(o) => o,
        _ => return Err("event must be a JSON object".into()),
    };
    let unknown = unknown_fields(&mut obj, limits, ctx)?;
    let s = limits.max_string_bytes;
    let event_type = req_string(&mut obj, "event_type", limits.max_event_type_bytes)?;
    let app_id = match (&ctx.key_app_id, opt_string(&mut obj, "app_id", 64)?) {
        (Some(key_app), Some(given)) if *key_app != given => {
            return Err("app_id: does not match the app of the API key".into())
        }
        (Some(key_app), _) => key_app.clone(),
        (None, Some(given)) => given,
        (None, None) => return Err("app_id: required".into()),
    };
    if !valid_app_id(&app_id) {
        return Err("app_id: 1-64 characters from A-Z a-z 0-9 _ - .".into());
    }
    let device_id = req_string(&mut obj, "device_id", s)?;
    let user_id = opt_string(&mut obj, "user_id", s)?;
    let session_id = opt_string(&mut obj, "session_id", s)?;
    let platform = match opt_string(&mut obj, "platform", 64)? {
        None => "other".to_string(),
        Some(p) => {
            let p = p.to_ascii_lowercase();
            if !valid_platform(&p) {
                return Err(format!(
                    "platform: {p:?} is not a token of 1-32 characters from a-z 0-9 _ -"
                ));
            }
            p
        }
    };
    let app_version = opt_string(&mut obj, "app_version", 64)?;
    let ip = match opt_string(&mut obj, "ip", 64)? {
        Some(ip) => {
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| format!("ip: {ip:?} is not an IP address"))?;
            Some(ip)
        }
        None => ctx.peer_ip.clone(),
    };
    let user_agent =
        opt_string(&mut obj, "user_agent", limits.max_user_agent_bytes)?.or_else(|| {
            ctx.user_agent
                .clone()
                .filter(|u| u.len() <= limits.max_user_agent_bytes)
        });
    let event_id = match opt_string(&mut obj, "event_id", 64)? {
        Some(id) => Some(
            uuid::Uuid::parse_str(&id)
                .map_err(|_| format!("event_id: {id:?} is not a UUID"))?
                .hyphenated()
                .to_string(),
        ),
        None => None,
    };
    let timestamp_ms = timestamp(obj.remove("timestamp"), limits, ctx)?;
    let consent = super::privacy::consent(obj.remove("consent"))?;
    let require_consent = ctx
        .privacy
        .as_ref()
        .is_some_and(|p| p.settings.require_consent);
    if require_consent && consent.is_empty() {
        return Err(
            "consent: required by this app (privacy.require_consent): {\"version\", \"categories\": [...]}"
                .into(),
        );
    }
    let (attribution, mut extra) = attribution(obj.remove("attribution"), limits)?;
    extra.extend(unknown);
    let mut data = event_data(obj.remove("event_data"), extra, limits)?;
    data.pairs.extend(consent);
    let mut event = Event {
        timestamp_ms,
        app_id,
        event_type,
        user_id,
        session_id,
        device_id,
        platform,
        app_version,
        attribution,
        event_data: data.pairs,
        revenue: data.revenue,
        currency: data.currency,
        ip,
        user_agent,
        received_at_ms: ctx.received_at_ms,
        event_id,
    };
    if let Some(p) = &ctx.privacy {
        super::privacy::protect(&mut event, p);
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> RequestContext {
        RequestContext {
            received_at_ms: 1_763_700_000_000,
            peer_ip: Some("127.0.0.1".into()),
            user_agent: None,
            key_app_id: None,
            strict_fields: false,
            privacy: None,
            oldest_ms: None,
        }
    }

    fn ok(v: Value) -> Event {
        validate_event(v, &IngestLimits::default(), &ctx()).unwrap()
    }

    fn err(v: Value) -> String {
        validate_event(v, &IngestLimits::default(), &ctx()).unwrap_err()
    }

    #[test]
    fn full_event() {
        let e = ok(json!({
            "event_type": "purchase", "app_id": "app1", "device_id": "d1", "user_id": "u1",
            "platform": "IOS", "timestamp": "2025-11-21T10:00:00Z",
            "attribution": {"campaign": "c", "source": "s"},
            "event_data": {"revenue": "9.99", "currency": "usd", "n": 3, "ok": true, "none": null},
            "event_id": "9F3C1D2E-4B5A-4C6D-8E7F-0A1B2C3D4E5F"
        }));
        assert_eq!(e.platform, "ios");
        assert_eq!(e.revenue, Some(9.99));
        assert_eq!(e.currency.as_deref(), Some("USD"));
        assert_eq!(e.event_data.len(), 4);
        assert_eq!(
            e.event_id.as_deref(),
            Some("9f3c1d2e-4b5a-4c6d-8e7f-0a1b2c3d4e5f")
        );
        assert_eq!(e.ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(e.timestamp_ms, 1_763_719_200_000);
    }

    #[test]
    fn nested_properties_new_fields_and_platform_tokens() {
        let e = ok(json!({
            "event_type": "purchase", "app_id": "a", "device_id": "d", "platform": "tvOS",
            "event_data": {"items": [{"sku": "a", "qty": 2}], "cart": {"total": 9.5, "coupon": null,
                           "meta": {"ok": true}}, "revenue": 9.5},
            "sdk_version": "2.1", "context": {"locale": "de"}, "flags": [1, 2]
        }));
        assert_eq!(e.platform, "tvos");
        let get = |k: &str| {
            e.event_data
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("items"), Some(r#"[{"qty":2,"sku":"a"}]"#));
        assert_eq!(get("cart.total"), Some("9.5"));
        assert_eq!(get("cart.meta.ok"), Some("true"));
        assert_eq!(get("cart.coupon"), None);
        assert_eq!(get("$sdk_version"), Some("2.1"));
        assert_eq!(get("$context"), Some(r#"{"locale":"de"}"#));
        assert_eq!(get("$flags"), Some("[1,2]"));
        assert_eq!(e.revenue, Some(9.5));
        let e = ok(
            json!({"event_type": "ad_click", "app_id": "a", "device_id": "d",
            "attribution": {"campaign": "c", "gclid": "Cj0KCQ", "ad_id": 42, "fbclid": null}}),
        );
        assert_eq!(e.attribution.campaign.as_deref(), Some("c"));
        let pairs: Vec<(&str, &str)> = e
            .event_data
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("$attribution.ad_id", "42"),
                ("$attribution.gclid", "Cj0KCQ")
            ]
        );
        // An app with strict_fields refuses what it does not know.
        let strict = RequestContext {
            strict_fields: true,
            ..ctx()
        };
        let v = json!({"event_type": "x", "app_id": "a", "device_id": "d", "sdk_version": "2"});
        let e = validate_event(v, &IngestLimits::default(), &strict).unwrap_err();
        assert!(e.starts_with("sdk_version: unknown field"), "{e}");
    }

    #[test]
    fn errors_name_the_field() {
        let base = || json!({"event_type": "x", "app_id": "a", "device_id": "d"});
        assert!(err(json!({"app_id": "a", "device_id": "d"})).starts_with("event_type"));
        let mut v = base();
        v["platform"] = json!("smart tv!");
        assert!(err(v).starts_with("platform"));
        let mut v = base();
        v["platform"] = json!("x".repeat(33));
        assert!(err(v).starts_with("platform"));
        let mut v = base();
        v["event_data"] = json!({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}});
        assert!(err(v).contains("ingest.max_event_data_depth = 5"));
        let mut v = base();
        let many: serde_json::Map<String, Value> = (0..60)
            .map(|i| (format!("k{i}"), json!({"a": 1, "b": 2})))
            .collect();
        v["event_data"] = Value::Object(many);
        assert!(err(v).contains("ingest.max_event_data_keys = 100"));
        let mut v = base();
        v["timestamp"] = json!(5);
        assert!(err(v).starts_with("timestamp"));
        let mut v = base();
        v["event_id"] = json!("nope");
        assert!(err(v).starts_with("event_id"));
        let mut v = base();
        v["device_id"] = json!("x".repeat(5000));
        assert!(err(v).starts_with("device_id"));
        let mut v = base();
        v["app_id"] = json!("../etc");
        assert!(err(v).starts_with("app_id"));
    }
}
