//! The route policy table: every route the server has, with what it requires. The router is
//! built from the same paths, `/api/openapi.json` documents them, and the RBAC matrix test
//! walks them. A request whose route is not in this table is denied.

use auth::{Permission, Principal, Role};
use hyper::http::Method;

/// What a route requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Access {
    /// Anyone (health, readiness, metrics, login, refresh, the OpenAPI document).
    Public,
    /// An active API key (`X-Api-Key`).
    IngestKey,
    /// Optional bearer token; the handler decides (registration).
    OptionalUser,
    /// Any logged-in user with this permission.
    User(Permission),
    /// A logged-in user with one of the roles and the permission (the seed's matrix).
    Roles(&'static [Role], Permission),
    /// `/api/apps/{id}…`: user or admin, the permission, and access to app `{id}`.
    App(Permission),
}

const USER_OR_ADMIN: &[Role] = &[Role::User, Role::Admin];
const ADMIN: &[Role] = &[Role::Admin];

#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
}

const fn r(
    method: &'static str,
    path: &'static str,
    access: Access,
    summary: &'static str,
) -> RouteSpec {
    RouteSpec {
        method,
        path,
        access,
        summary,
    }
}

use Access::*;
use Permission::*;

pub const ROUTES: &[RouteSpec] = &[
    r("GET", "/", Public, "Index of the API"),
    r("GET", "/health", Public, "Process is up"),
    r("GET", "/ready", Public, "Log recovered and writes accepted"),
    r("GET", "/metrics", Public, "Prometheus metrics"),
    r("GET", "/api/openapi.json", Public, "This API description"),
    r(
        "GET",
        "/assets/{*file}",
        Public,
        "The web dashboard's files (other browser paths outside /api and /v1 answer its index.html)",
    ),
    r(
        "POST",
        "/v1/events",
        IngestKey,
        "Ingest events (one object, array or NDJSON; gzip)",
    ),
    r(
        "OPTIONS",
        "/v1/events",
        Public,
        "CORS preflight of browser SDKs (origins from the apps' allowed_origins)",
    ),
    r(
        "POST",
        "/api/auth/login",
        Public,
        "Log in with email and password",
    ),
    r(
        "POST",
        "/api/auth/refresh",
        Public,
        "Exchange a refresh token (rotating)",
    ),
    r(
        "POST",
        "/api/auth/logout",
        User(AppsRead),
        "End the current session",
    ),
    r(
        "POST",
        "/api/auth/register",
        OptionalUser,
        "Create a user (admin only unless open registration)",
    ),
    r("GET", "/api/auth/me", User(AppsRead), "The current user"),
    r(
        "POST",
        "/api/analytics/query",
        Roles(USER_OR_ADMIN, AnalyticsRead),
        "Run SQL over the events of permitted apps",
    ),
    r(
        "GET",
        "/api/dashboard/stats",
        Roles(USER_OR_ADMIN, DashboardRead),
        "Events, active users, revenue and conversion rate of an app (app_id, from, to)",
    ),
    r(
        "GET",
        "/api/dashboard/charts/events-over-time",
        Roles(USER_OR_ADMIN, DashboardRead),
        "Events, users and revenue per hour or day (app_id, from, to, interval)",
    ),
    r(
        "GET",
        "/api/dashboard/charts/user-retention",
        Roles(USER_OR_ADMIN, DashboardRead),
        "Day-N retention of daily cohorts (app_id, from, to, days, cohort_event)",
    ),
    r(
        "GET",
        "/api/dashboard/charts/funnel",
        Roles(USER_OR_ADMIN, DashboardRead),
        "Users through ordered steps within a window (app_id, from, to, steps, window)",
    ),
    r(
        "GET",
        "/api/dashboard/charts/top-campaigns",
        Roles(USER_OR_ADMIN, DashboardRead),
        "Campaigns by installs, with purchases, revenue and users (app_id, from, to, limit)",
    ),
    r(
        "GET",
        "/api/dashboard/charts/platforms",
        Roles(USER_OR_ADMIN, DashboardRead),
        "Events and users per platform (app_id, from, to)",
    ),
    r(
        "GET",
        "/api/analytics/attribution",
        Roles(USER_OR_ADMIN, AnalyticsRead),
        "Conversions credited per campaign, source and medium (app_id, from, to, model, windows)",
    ),
    r(
        "GET",
        "/api/analytics/fraud",
        Roles(USER_OR_ADMIN, AnalyticsRead),
        "Fraud signals per source: click injection, abnormal clicks per device and IP, deny-listed IPs",
    ),
    r(
        "GET",
        "/api/apps",
        User(AppsRead),
        "Apps the caller may access",
    ),
    r(
        "POST",
        "/api/apps",
        Roles(ADMIN, AppsWrite),
        "Create an app and its first API key",
    ),
    r("GET", "/api/apps/{id}", App(AppsRead), "One app"),
    r(
        "PATCH",
        "/api/apps/{id}",
        App(AppsWrite),
        "Rename an app, its browser origins, strict fields; privacy (admin only)",
    ),
    r(
        "DELETE",
        "/api/apps/{id}",
        App(AppsWrite),
        "Delete an app and its keys",
    ),
    r(
        "GET",
        "/api/apps/{id}/keys",
        App(AppsRead),
        "List an app's keys (never the secrets)",
    ),
    r(
        "POST",
        "/api/apps/{id}/keys",
        App(AppsWrite),
        "Add a key to an app",
    ),
    r(
        "POST",
        "/api/apps/{id}/keys/rotate",
        App(AppsWrite),
        "Replace every active key with a new one",
    ),
    r(
        "DELETE",
        "/api/apps/{id}/keys/{key_id}",
        App(AppsWrite),
        "Revoke a key",
    ),
    r(
        "GET",
        "/api/admin/users",
        Roles(ADMIN, AdminAll),
        "List users",
    ),
    r(
        "POST",
        "/api/admin/users",
        Roles(ADMIN, AdminAll),
        "Create a user",
    ),
    r(
        "GET",
        "/api/admin/users/{id}",
        Roles(ADMIN, AdminAll),
        "One user",
    ),
    r(
        "PATCH",
        "/api/admin/users/{id}",
        Roles(ADMIN, AdminAll),
        "Change a user (name, roles, permissions, app access, disabled, password)",
    ),
    r(
        "DELETE",
        "/api/admin/users/{id}",
        Roles(ADMIN, AdminAll),
        "Delete a user",
    ),
    r(
        "POST",
        "/api/admin/users/{id}/unlock",
        Roles(ADMIN, AdminAll),
        "Clear a login lockout",
    ),
    r(
        "POST",
        "/api/admin/users/{id}/roles",
        Roles(ADMIN, AdminAll),
        "Grant a role",
    ),
    r(
        "DELETE",
        "/api/admin/users/{id}/roles/{role}",
        Roles(ADMIN, AdminAll),
        "Revoke a role",
    ),
    r(
        "POST",
        "/api/admin/users/{id}/apps",
        Roles(ADMIN, AdminAll),
        "Grant access to an app",
    ),
    r(
        "DELETE",
        "/api/admin/users/{id}/apps/{app_id}",
        Roles(ADMIN, AdminAll),
        "Revoke access to an app",
    ),
    r(
        "POST",
        "/api/admin/auth/signing-key/rotate",
        Roles(ADMIN, AdminAll),
        "Rotate the JWT signing key (the old key verifies for `overlap_secs`)",
    ),
    r(
        "GET",
        "/api/admin/cluster",
        Roles(ADMIN, AdminAll),
        "The cluster's leader and members with their log and applied index",
    ),
    r(
        "POST",
        "/api/admin/cluster/nodes",
        Roles(ADMIN, AdminAll),
        "Add a running node as a learner",
    ),
    r(
        "POST",
        "/api/admin/cluster/nodes/{id}/promote",
        Roles(ADMIN, AdminAll),
        "Promote a caught-up learner to voter",
    ),
    r(
        "DELETE",
        "/api/admin/cluster/nodes/{id}",
        Roles(ADMIN, AdminAll),
        "Remove a node from the cluster",
    ),
    r(
        "POST",
        "/api/admin/backup",
        Roles(ADMIN, AdminAll),
        "A consistent backup of the node (tar stream; see `unmogrowp backup`)",
    ),
    r(
        "GET",
        "/api/admin/audit",
        Roles(ADMIN, AuditRead),
        "Read the audit log: after, limit (oldest first), or order=desc, before, actor, action, outcome (newest first, filtered; next_before continues)",
    ),
    r(
        "GET",
        "/api/admin/alerts",
        Roles(ADMIN, AuditRead),
        "Security alerts raised by the rules over the audit log, newest first: limit, before (next_before continues), rule",
    ),
    r(
        "GET",
        "/api/admin/mirrors",
        Roles(ADMIN, AdminAll),
        "Each mirror's state, cursor, lag, events sent and last error",
    ),
    r(
        "POST",
        "/api/admin/mirrors/{name}/pause",
        Roles(ADMIN, AdminAll),
        "Pause a mirror (through the log: holds on every node)",
    ),
    r(
        "POST",
        "/api/admin/mirrors/{name}/resume",
        Roles(ADMIN, AdminAll),
        "Resume a paused mirror",
    ),
    r(
        "POST",
        "/api/admin/mirrors/{name}/replay",
        Roles(ADMIN, AdminAll),
        "Re-send a mirror's events from {\"from_time\"} or {\"from_log_index\"} on (the sink keeps each once)",
    ),
    r(
        "POST",
        "/api/admin/apps/{id}/reveal",
        Roles(ADMIN, AdminAll),
        "The device id an app's encrypted device id was made from (privacy.device_id = encrypt); audited",
    ),
    r(
        "POST",
        "/api/admin/erasure",
        Roles(ADMIN, AdminAll),
        "Erase the events of one user or device of an app everywhere (every node, every mirror): {\"app_id\",\"user_id\"?,\"device_id\"?} → 202 {\"request_id\"}; audited",
    ),
    r(
        "GET",
        "/api/admin/erasure/{id}",
        Roles(ADMIN, AdminAll),
        "An erasure's progress on this node and on each mirror: state pending|done, events_erased, segments_rewritten, mirrors",
    ),
    r(
        "GET",
        "/api/admin/audit/verify",
        Roles(ADMIN, AuditRead),
        "Verify the audit hash chain",
    ),
];

pub fn find(method: &Method, path: &str) -> Option<&'static RouteSpec> {
    ROUTES
        .iter()
        .find(|r| r.path == path && r.method == method.as_str())
}

/// Why a principal may not use a route (403), checked before app access.
pub fn check_principal(access: Access, p: &Principal) -> Result<(), String> {
    let perm = |perm: Permission| {
        if p.has(perm) {
            Ok(())
        } else {
            Err(format!("requires the {} permission", perm.as_str()))
        }
    };
    let role = |roles: &[Role]| {
        if p.has_any_role(roles) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(format!("requires role {}", names.join(" or ")))
        }
    };
    match access {
        Public | OptionalUser => Ok(()),
        IngestKey => Err("this route takes an API key, not a user token".into()),
        User(x) => perm(x),
        Roles(roles, x) => role(roles).and_then(|()| perm(x)),
        App(x) => role(USER_OR_ADMIN).and_then(|()| perm(x)),
    }
}
