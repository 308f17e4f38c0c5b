//! `GET /api/openapi.json`: an OpenAPI 3.1 description generated from the route policy table
//! (so every served route is described, with its credential), plus request and response
//! schemas for the main bodies.

use axum::Json;
use serde_json::{json, Map, Value};

use crate::security::routes::{Access, ROUTES};

fn schemas() -> Value {
    let mut all = general();
    if let (Value::Object(all), Value::Object(more)) = (&mut all, privacy()) {
        all.extend(more);
    }
    all
}

/// Bodies of the data-protection routes (issue 29).
fn privacy() -> Value {
    json!({
        "Privacy": {"type": "object", "additionalProperties": false, "description": "data protection (admin only; docs/privacy.md): applied at ingest, before an event reaches the log; fields left out keep their value",
            "properties": {
                "retention_days": {"type": "integer", "minimum": 1, "maximum": 36500, "description": "days of events kept (default 730)"},
                "ip": {"type": "string", "enum": ["keep", "truncate", "drop"], "description": "truncate: IPv4 /24, IPv6 /48"},
                "user_id": {"type": "string", "enum": ["keep", "hash"], "description": "hash: HMAC-SHA-256 under the app's own key (hex): the same user stays countable"},
                "device_id": {"type": "string", "enum": ["keep", "hash", "encrypt"], "description": "encrypt: AES-256-GCM-SIV, deterministic (enc1:…), revealed by POST /api/admin/apps/{id}/reveal"},
                "require_consent": {"type": "boolean", "description": "reject each event without a consent object"}}},
        "Reveal": {"type": "object", "required": ["device_id"], "additionalProperties": false, "properties": {"device_id": {"type": "string", "description": "a stored enc1:… device id"}}},
        "Revealed": {"type": "object", "properties": {"app_id": {"type": "string"}, "device_id": {"type": "string"}}},
        "Erase": {"type": "object", "required": ["app_id"], "additionalProperties": false, "description": "user_id, device_id or both, as the SDK sent them (their stored forms under the app's privacy settings are erased too)",
            "properties": {"app_id": {"type": "string"}, "user_id": {"type": "string"}, "device_id": {"type": "string"}}},
        "EraseAccepted": {"type": "object", "properties": {"request_id": {"type": "string", "format": "uuid"}}},
        "Erasure": {"type": "object", "description": "this node's progress (each node rewrites its own segments) and each mirror's",
            "properties": {"request_id": {"type": "string"}, "app_id": {"type": "string"},
                "state": {"type": "string", "enum": ["pending", "done"], "description": "done: this node holds none of the rows and every mirror deleted them"},
                "events_erased": {"type": "integer"}, "events": {"type": "integer", "description": "matching events found when the request was applied"},
                "segments_rewritten": {"type": "integer"}, "segments_pending": {"type": "integer"}, "log_index": {"type": "integer"},
                "requested_at": {"type": "string", "format": "date-time"}, "sealed": {"type": "boolean", "description": "the identifiers are forgotten on this node"},
                "node_id": {"type": "integer"},
                "mirrors": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "state": {"type": "string", "enum": ["pending", "done"]}}}}}}
    })
}

fn general() -> Value {
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
        "Event": {"type": "object", "required": ["event_type", "device_id"], "properties": {
            "event_type": {"type": "string"}, "app_id": {"type": "string", "description": "defaults to the API key's app; another value is rejected"},
            "device_id": {"type": "string"}, "user_id": {"type": "string"}, "session_id": {"type": "string"},
            "consent": {"type": "object", "required": ["version", "categories"], "additionalProperties": false, "description": "kept as event_data $consent_version and $consent_categories; required when the app's privacy.require_consent is on",
                "properties": {"version": {"type": "string"}, "categories": {"type": "array", "items": {"type": "string"}, "maxItems": 32}}},
            "platform": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$", "description": "ios, android, web, other or any other token; stored lower case"}, "app_version": {"type": "string"},
            "timestamp": {"description": "epoch milliseconds or RFC 3339; default: receive time"},
            "attribution": {"type": "object", "properties": {"campaign": {"type": "string"}, "source": {"type": "string"},
                "medium": {"type": "string"}, "content": {"type": "string"}, "term": {"type": "string"},
                "gclid": {"type": "string"}, "gbraid": {"type": "string"}, "wbraid": {"type": "string"}, "fbclid": {"type": "string"},
                "ttclid": {"type": "string"}, "msclkid": {"type": "string"}, "click_id": {"type": "string"}, "ad_id": {"type": "string"},
                "adset": {"type": "string"}, "creative": {"type": "string"}},
                "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
                "description": "keys other than the five UTM fields are kept too and queryable as attribution['key']"},
            "event_data": {"type": "object", "additionalProperties": true, "description": "nested objects stored flattened with dotted keys (event_data['cart.total']), arrays as JSON text, within ingest.max_event_data_depth and ingest.max_event_data_keys"},
            "ip": {"type": "string"}, "user_agent": {"type": "string"}, "event_id": {"type": "string", "format": "uuid"}},
            "additionalProperties": {"description": "unknown fields are kept as event_data['$name'] unless the app sets strict_fields"}},
        "IngestResponse": {"type": "object", "properties": {"accepted": {"type": "integer"}, "duplicates": {"type": "integer"},
            "rejected": {"type": "array", "items": {"type": "object", "properties": {"index": {"type": "integer"}, "error": {"type": "string"}}}}}},
        "Login": {"type": "object", "required": ["email", "password"], "properties": {"email": {"type": "string"}, "password": {"type": "string"}}},
        "Tokens": {"type": "object", "properties": {"access_token": {"type": "string"}, "refresh_token": {"type": "string"},
            "expires_in": {"type": "integer"}, "token_type": {"type": "string"}}},
        "Refresh": {"type": "object", "required": ["refresh_token"], "description": "with X-Session-Cookie: 1 the body may be empty (the token comes from the cookie)", "properties": {"refresh_token": {"type": "string"}}},
        "NewUser": {"type": "object", "required": ["email", "password"], "properties": {"email": {"type": "string"},
            "password": {"type": "string", "minLength": 10}, "name": {"type": "string"},
            "roles": {"type": "array", "items": {"type": "string", "enum": ["admin", "user", "readonly"]}},
            "permissions": {"type": "array", "items": {"type": "string"}}, "app_access": {"type": "array", "items": {"type": "string"}}}},
        "User": {"type": "object", "properties": {"id": {"type": "string"}, "email": {"type": "string"}, "name": {"type": "string"},
            "roles": {"type": "array", "items": {"type": "string"}}, "permissions": {"type": "array", "items": {"type": "string"}},
            "effective_permissions": {"type": "array", "items": {"type": "string"}}, "app_access": {"type": "array", "items": {"type": "string"}},
            "disabled": {"type": "boolean"}}},
        "NewApp": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "id": {"type": "string"}}},
        "PatchApp": {"type": "object", "properties": {"name": {"type": "string"},
            "allowed_origins": {"type": "array", "items": {"type": "string"}, "description": "exact browser origins (https://shop.example) whose pages may post events with this app's keys; \"*\" only when set explicitly"},
            "strict_fields": {"type": "boolean", "description": "reject unknown top-level event fields instead of keeping them as $name"},
            "privacy": {"$ref": "#/components/schemas/Privacy"}}},
        "CreatedApp": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"},
            "api_key": {"type": "string", "description": "shown once"}, "key_id": {"type": "string"}}},
        "Query": {"type": "object", "required": ["sql"], "properties": {"sql": {"type": "string"},
            "format": {"type": "string", "enum": ["json", "ndjson", "csv", "arrow", "parquet"],
                "description": "answer format (default: from Accept, else json); all but json are streamed"},
            "timeout_ms": {"type": "integer", "description": "a time limit shorter than query.timeout_secs"}}},
        "AttributionReport": {"type": "object", "required": ["model", "rows", "unattributed"], "properties": {
            "model": {"type": "string", "enum": ["last_touch", "first_touch", "linear", "time_decay", "position_based"]},
            "rows": {"type": "array", "items": {"type": "object", "properties": {
                "campaign": {"type": ["string", "null"]}, "source": {"type": ["string", "null"]}, "medium": {"type": ["string", "null"]},
                "conversions": {"type": "number", "description": "credited conversions (fractional for multi-touch models)"},
                "revenue": {"type": "number"}, "clicks": {"type": "integer", "description": "clicks in the range"},
                "impressions": {"type": "integer"}, "conversion_rate": {"type": ["number", "null"], "description": "conversions / clicks"},
                "by_type": {"type": "object", "additionalProperties": {"type": "number"}}}}},
            "unattributed": {"type": "object", "properties": {"conversions": {"type": "number"}, "revenue": {"type": "number"}}},
            "total_conversions": {"type": "integer"}, "total_revenue": {"type": "number"},
            "events_scanned": {"type": "integer"}, "identities": {"type": "integer"},
            "excluded_fraud": {"type": "object", "description": "present with exclude_fraud=true", "properties": {
                "conversions": {"type": "integer", "description": "installs from deny-listed IPs, not counted"},
                "revenue": {"type": "number"}, "touchpoints": {"type": "integer", "description": "flagged clicks and views, not eligible"}}}}},
        "FraudReport": {"type": "object", "required": ["rules", "rows"], "properties": {
            "rules": {"type": "object", "properties": {"min_click_to_install_ms": {"type": "integer"},
                "max_clicks_per_device_day": {"type": "integer"}, "max_clicks_per_ip_day": {"type": "integer"},
                "deny_ips": {"type": "array", "items": {"type": "string"}}, "install_type": {"type": "string"}}},
            "rows": {"type": "array", "items": {"type": "object", "properties": {
                "source": {"type": ["string", "null"], "description": "click source; for installs, that of the last click on the device within the click window"},
                "clicks": {"type": "integer"}, "installs": {"type": "integer"},
                "click_injection": {"type": "integer", "description": "installs less than min_click_to_install_ms after their click"},
                "abnormal_device_clicks": {"type": "integer"}, "abnormal_ip_clicks": {"type": "integer"},
                "deny_listed_clicks": {"type": "integer"}, "deny_listed_installs": {"type": "integer"},
                "flagged_click_rate": {"type": ["number", "null"]}}}},
            "flagged_devices": {"type": "integer"}, "flagged_ips": {"type": "integer"}, "events_scanned": {"type": "integer"}}},
        "Alerts": {"type": "object", "required": ["alerts", "total", "by_rule"], "properties": {
            "alerts": {"type": "array", "items": {"type": "object", "required": ["seq", "id", "at_ms", "rule", "severity", "subject", "summary"], "properties": {
                "seq": {"type": "integer"}, "id": {"type": "string", "description": "alert-<seq>; sent to webhooks as x-unmogrowp-alert-id"},
                "at_ms": {"type": "integer", "description": "when it was recorded"}, "node": {"type": "integer"},
                "rule": {"type": "string", "enum": ["password_spraying", "credential_stuffing", "denied_burst", "key_many_sources", "large_read", "admin_off_hours"]},
                "severity": {"type": "string", "enum": ["critical", "warning", "info"]},
                "subject": {"type": "string", "description": "the source address, account, actor or key it is about"},
                "summary": {"type": "string"}, "detail": {"type": "string"},
                "observed_at_ms": {"type": "integer"}, "first_audit_seq": {"type": "integer"}, "last_audit_seq": {"type": "integer"}}}},
            "next_before": {"type": ["integer", "null"]}, "total": {"type": "integer"},
            "by_rule": {"type": "object", "additionalProperties": {"type": "integer"}}}},
        "Mirrors": {"type": "array", "items": {"type": "object", "required": ["name", "kind", "state", "cursor", "lag_events", "lag_seconds", "sent_events"], "properties": {
            "name": {"type": "string"}, "kind": {"type": "string", "enum": ["postgres", "clickhouse", "kafka"], "description": "as configured (an invalid entry shows what it said)"},
            "state": {"type": "string", "enum": ["running", "retrying", "paused"]},
            "cursor": {"type": "integer", "description": "every stored event of the log entries up to this index is in the sink"},
            "lag_events": {"type": "integer", "description": "stored events after the cursor (of every app)"},
            "lag_seconds": {"type": "number", "description": "age of the oldest event not yet in the sink; 0 when caught up"},
            "sent_events": {"type": "integer", "description": "events the sink acknowledged (replays count again)"},
            "last_error": {"type": ["string", "null"], "description": "the last failure (secrets in URLs replaced by ***); kept after recovery"},
            "last_error_at": {"type": ["string", "null"], "format": "date-time"}}}},
        "MirrorReplay": {"type": "object", "description": "exactly one of the two", "properties": {
            "from_time": {"type": ["string", "integer"], "description": "RFC 3339 or ms since the epoch: re-send from the first log entry holding an event received at or after it"},
            "from_log_index": {"type": "integer", "minimum": 1, "description": "re-send from this log entry (at most the cursor + 1: a replay never skips)"}}},
        "QueryResult": {"type": "object", "properties": {"columns": {"type": "array", "items": {"type": "object",
            "properties": {"name": {"type": "string"}, "type": {"type": "string"}}}}, "rows": {"type": "array", "items": {"type": "array"}},
            "row_count": {"type": "integer"}, "elapsed_ms": {"type": "number"}}}
    })
}

fn bodies(method: &str, path: &str) -> (Option<&'static str>, &'static str) {
    match (method, path) {
        ("POST", "/v1/events") => (Some("Event"), "IngestResponse"),
        ("POST", "/api/auth/login") => (Some("Login"), "Tokens"),
        ("POST", "/api/auth/refresh") => (Some("Refresh"), "Tokens"),
        ("POST", "/api/auth/register") | ("POST", "/api/admin/users") => (Some("NewUser"), "User"),
        ("GET", "/api/auth/me")
        | ("GET", "/api/admin/users/{id}")
        | ("PATCH", "/api/admin/users/{id}") => (None, "User"),
        ("POST", "/api/apps") => (Some("NewApp"), "CreatedApp"),
        ("PATCH", "/api/apps/{id}") => (Some("PatchApp"), ""),
        ("POST", "/api/analytics/query") => (Some("Query"), "QueryResult"),
        ("GET", "/api/analytics/attribution") => (None, "AttributionReport"),
        ("GET", "/api/analytics/fraud") => (None, "FraudReport"),
        ("GET", "/api/admin/mirrors") => (None, "Mirrors"),
        ("GET", "/api/admin/alerts") => (None, "Alerts"),
        ("POST", "/api/admin/mirrors/{name}/replay") => (Some("MirrorReplay"), ""),
        ("POST", "/api/admin/apps/{id}/reveal") => (Some("Reveal"), "Revealed"),
        ("POST", "/api/admin/erasure") => (Some("Erase"), "EraseAccepted"),
        ("GET", "/api/admin/erasure/{id}") => (None, "Erasure"),
        _ => (None, ""),
    }
}

/// Query-string parameters of the GET analytics routes.
fn query_parameters(method: &str, path: &str) -> Vec<Value> {
    let p = |name: &str, required: bool, description: &str| json!({"name": name, "in": "query", "required": required, "schema": {"type": "string"}, "description": description});
    match (method, path) {
        ("GET", "/api/admin/audit") => vec![
            p("after", false, "oldest-first pages: records with seq > after (default 0)"),
            p("limit", false, "records per page, 1-1000 (default 100)"),
            p("order", false, "asc (default) or desc (newest first)"),
            p("before", false, "newest-first pages: records with seq < before (the answer's next_before)"),
            p("actor", false, "newest-first only: this actor exactly (user id, key:<id>, anonymous)"),
            p("action", false, "newest-first only: actions starting with this (auth.login, apps.)"),
            p("outcome", false, "newest-first only: outcomes starting with this (success, denied, failure)"),
        ],
        ("GET", "/api/admin/alerts") => vec![
            p("limit", false, "alerts per page, 1-1000 (default 100), newest first"),
            p("before", false, "alerts with seq < before (the answer's next_before)"),
            p("rule", false, "only this rule"),
        ],
        ("POST", "/v1/events") => vec![p(
            "api_key",
            false,
            "the app's API key, instead of the X-Api-Key header (navigator.sendBeacon cannot set headers)",
        )],
        ("GET", "/api/analytics/attribution") | ("GET", "/api/analytics/fraud") => vec![
            p("app_id", true, "the app"),
            p(
                "from",
                false,
                "start (RFC 3339, YYYY-MM-DD or epoch ms; default: to - 30 days)",
            ),
            p("to", false, "end, exclusive (default: now)"),
            p(
                "model",
                false,
                "last_touch (default), first_touch, linear, time_decay, position_based",
            ),
            p(
                "half_life",
                false,
                "time_decay half-life, e.g. 7d (default)",
            ),
            p(
                "conversion",
                false,
                "conversion event types, comma-separated (default install,purchase)",
            ),
            p("click_types", false, "click event types (default ad_click)"),
            p(
                "view_types",
                false,
                "view event types (default ad_impression)",
            ),
            p("click_window", false, "click lookback, e.g. 7d (default)"),
            p("view_window", false, "view lookback, e.g. 24h (default)"),
            p(
                "reattribution_window",
                false,
                "how long an active user keeps its source, e.g. 30d (default)",
            ),
            p(
                "timeout_ms",
                false,
                "a time limit shorter than query.timeout_secs",
            ),
            p(
                "exclude_fraud",
                false,
                "true: flagged touchpoints are not eligible, installs from deny-listed IPs are not conversions (attribution only; default false)",
            ),
            p(
                "min_click_to_install",
                false,
                "shorter click-to-install times are click injection (default fraud.min_click_to_install_ms)",
            ),
            p(
                "max_clicks_per_device",
                false,
                "clicks per device and UTC day above which all are flagged (default fraud.max_clicks_per_device_day)",
            ),
            p(
                "max_clicks_per_ip",
                false,
                "clicks per IP and UTC day above which all are flagged (default fraud.max_clicks_per_ip_day)",
            ),
            p(
                "deny_ips",
                false,
                "addresses or CIDR ranges, comma-separated, added to fraud.deny_ips",
            ),
        ],
        ("GET", path) if path.starts_with("/api/dashboard/") => {
            let mut v = vec![
                p("app_id", true, "the app"),
                p(
                    "from",
                    false,
                    "start (RFC 3339, YYYY-MM-DD or epoch ms; default: to - 7 days)",
                ),
                p(
                    "to",
                    false,
                    "end, exclusive (default: the end of the current UTC hour)",
                ),
            ];
            if path == "/api/dashboard/charts/funnel" {
                v.push(p(
                    "source",
                    false,
                    "auto or rollup (default: each user's event times kept by the rollups, \
                     any range) or scan (SQL self-joins); the answer's \"source\" says which",
                ));
            } else {
                v.push(p(
                    "source",
                    false,
                    "auto (default: the hourly rollups when from and to are whole UTC hours, \
                     else SQL), rollup or scan; the answer's \"source\" says which",
                ));
            }
            match path {
                "/api/dashboard/charts/events-over-time" => {
                    v.push(p("interval", false, "hour (default) or day"))
                }
                "/api/dashboard/charts/top-campaigns" => {
                    v.push(p("limit", false, "rows, 1-1000 (default 10)"))
                }
                "/api/dashboard/charts/user-retention" => {
                    v.push(p(
                        "days",
                        false,
                        "days after the cohort day, 1-90 (default 7)",
                    ));
                    v.push(p(
                        "cohort_event",
                        false,
                        "event type starting a cohort (default install)",
                    ));
                }
                "/api/dashboard/charts/funnel" => {
                    v.push(p(
                        "steps",
                        false,
                        "2-8 event types in order (default ad_click,install,purchase)",
                    ));
                    v.push(p("window", false, "from the first step, e.g. 7d (default)"));
                }
                _ => {}
            }
            v
        }
        _ => Vec::new(),
    }
}

fn credential(access: Access) -> (Value, String) {
    match access {
        Access::Public => (json!([]), "none".into()),
        Access::IngestKey => (json!([{"apiKey": []}]), "X-Api-Key".into()),
        Access::OptionalUser => (json!([{}, {"bearer": []}]), "optional bearer token".into()),
        Access::User(p) => (
            json!([{"bearer": []}]),
            format!("bearer token with {}", p.as_str()),
        ),
        Access::Roles(roles, p) => {
            let r: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            (
                json!([{"bearer": []}]),
                format!("role {} and {}", r.join("|"), p.as_str()),
            )
        }
        Access::App(p) => (
            json!([{"bearer": []}]),
            format!("role user|admin, {} and access to app {{id}}", p.as_str()),
        ),
    }
}

pub(crate) async fn document() -> Json<Value> {
    let mut paths = Map::new();
    for r in ROUTES {
        let (security, needs) = credential(r.access);
        let (req, resp) = bodies(r.method, r.path);
        let mut params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(query_parameters(r.method, r.path));
        if ["/api/auth/login", "/api/auth/refresh", "/api/auth/logout"].contains(&r.path) {
            params.push(json!({"name": "X-Session-Cookie", "in": "header", "required": false,
                "schema": {"type": "string", "enum": ["1"]},
                "description": "the browser session (the dashboard): login and refresh set the refresh token in an HttpOnly, SameSite=Strict cookie (unmogrowp_refresh, Path=/api/auth) and leave it out of the body; refresh with an empty body reads it from the cookie; logout clears it"}));
        }
        let ok = if r.path == "/api/analytics/query" {
            json!({"description": "the answer, in the format asked for (docs/sql.md)", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/QueryResult"}},
                "application/x-ndjson": {"schema": {"type": "string", "description": "one JSON object per row"}},
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}},
                "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}}}})
        } else if r.path == "/api/admin/backup" {
            json!({"description": "the backup archive (tar: backup.json first, then the snapshot's files)",
                "content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}}})
        } else if resp.is_empty() {
            json!({"description": "success"})
        } else {
            json!({"description": "success", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{resp}")}}}})
        };
        let mut op = json!({
            "summary": r.summary,
            "description": format!("Requires: {needs}."),
            "security": security,
            "parameters": params,
            "responses": {
                "200": ok,
                "400": {"description": "invalid request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "401": {"description": "missing or invalid credential"},
                "403": {"description": "not permitted"},
                "429": {"description": "rate limited (Retry-After)"},
                "503": {"description": "no leader / not ready (Retry-After)"}
            }
        });
        if r.path == "/v1/events" {
            op["responses"]["503"] = json!({"description": "no_leader / outcome_unknown (retry with the same event_ids) / unavailable: the node's log writer stopped after a failed write or fsync, the message says why (Retry-After)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
            op["responses"]["507"] = json!({"description": "insufficient_storage: the data disk is below ingest.min_free_disk_mb; ingest resumes by itself when space returns (Retry-After)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
        }
        if r.path == "/api/admin/erasure" {
            let ok = op["responses"]["200"].take();
            if let Some(m) = op["responses"].as_object_mut() {
                m.remove("200");
            }
            op["responses"]["202"] = json!({"description": "accepted: the erasure is in the log; follow it with GET /api/admin/erasure/{request_id}", "content": ok["content"].clone()});
            op["responses"]["400"] = json!({"description": "invalid_request: unknown field, no user_id or device_id, an empty or too long one", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
            op["responses"]["404"] = json!({"description": "not_found: no such app", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
        }
        if r.path == "/api/admin/erasure/{id}" {
            op["responses"]["404"] = json!({"description": "not_found: no erasure of that id on this node (one just requested may not be applied here yet)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
        }
        if r.path.starts_with("/api/admin/mirrors/") {
            op["responses"]["404"] = json!({"description": "not_found: no mirror of that name is configured", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
            op["responses"]["409"] = json!({"description": "conflict: the mirror's configuration is invalid, or it has not started yet", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
            op["responses"]["200"] = json!({"description": "the mirror's status after the change", "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        if r.path.starts_with("/api/analytics/") {
            op["responses"]["400"] = json!({"description": "invalid_query: the statement does not parse, plan or evaluate (a string that is not a timestamp, …); query_too_complex: over a statement complexity limit (query.max_statement_bytes, max_expression_depth, max_expression_nodes, max_in_list, max_union_arity, max_subquery_depth), named in the message", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
            op["responses"]["422"] = json!({"description": "resources_exhausted: memory limit, a value over query.max_value_bytes, or a JSON answer over its row/byte cap", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
            op["responses"]["500"] = json!({"description": "internal_error: a defect (a panic) inside this query, caught; the message names the query id; the node keeps serving", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
            op["responses"]["429"] = json!({"description": "too_many_queries: per-user or per-node limit of running queries (Retry-After)"});
            op["responses"]["504"] = json!({"description": "query_timeout: stopped at its time limit", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
        }
        if let Some(req) = req {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{req}")}}}});
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method.to_ascii_lowercase()] = op;
    }
    Json(json!({
        "openapi": "3.1.0",
        "info": {"title": "UnMoGrowP", "version": env!("CARGO_PKG_VERSION"),
            "description": "On-prem attribution analytics appliance: ingest, SQL analytics, apps, users and audit."},
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dashboard's API client (`ui/src/api/endpoints.json`) calls only routes this
    /// document describes: a renamed or removed route fails here, not in a user's browser.
    #[tokio::test]
    async fn the_dashboard_client_calls_only_described_routes() {
        let text = include_str!("../../../ui/src/api/endpoints.json");
        let endpoints: Map<String, Value> = serde_json::from_str(text).expect("endpoints.json");
        let Json(doc) = document().await;
        assert!(endpoints.len() > 20);
        for (name, v) in endpoints {
            let ep = v.as_str().expect("a string");
            let (method, path) = ep.split_once(' ').expect("METHOD /path");
            assert!(
                doc["paths"][path][method.to_ascii_lowercase()].is_object(),
                "ui endpoint {name} = {ep} is not in /api/openapi.json"
            );
        }
    }
}
