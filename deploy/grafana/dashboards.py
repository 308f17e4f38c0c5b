#!/usr/bin/env python3
"""Writes the Grafana dashboards in deploy/grafana/dashboards/ from the panel lists below.

    python3 deploy/grafana/dashboards.py          # rewrite the JSON files
    python3 deploy/grafana/dashboards.py --check  # exit 1 if a file differs (CI)

Every query uses metrics the appliance exports (tests/tests/observability.rs evaluates each one
against a real Prometheus scraping a 3-node cluster) and filters on the cluster's `instance`
label through the `$instance` variable. Edit the lists here, not the JSON.
"""
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
I = 'instance=~"$instance"'
DS = {"type": "prometheus", "uid": "${datasource}"}


def panel(title, exprs, unit="short", kind="timeseries", legend="{{instance}}", desc=""):
    """One panel; `exprs` is a list of (expr, legend) or plain exprs."""
    targets = []
    for n, e in enumerate(exprs):
        expr, leg = e if isinstance(e, tuple) else (e, legend)
        targets.append({"datasource": DS, "expr": expr, "legendFormat": leg, "refId": chr(65 + n)})
    p = {
        "type": kind,
        "title": title,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
    }
    if desc:
        p["description"] = desc
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    return p


def dashboard(uid, title, description, rows):
    """`rows`: list of (row title, [panels]); panels laid out two per line."""
    panels, y, pid = [], 0, 1
    for row_title, ps in rows:
        panels.append({"type": "row", "title": row_title, "id": pid, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid += 1
        y += 1
        for n, p in enumerate(ps):
            p["id"] = pid
            pid += 1
            p["gridPos"] = {"h": 8, "w": 12, "x": 12 * (n % 2), "y": y + 8 * (n // 2)}
            panels.append(p)
        y += 8 * ((len(ps) + 1) // 2)
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["unmogrowp"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0},
            {"name": "instance", "label": "Node", "type": "query", "datasource": DS,
             "query": {"query": "label_values(unmogrowp_uptime_seconds, instance)", "refId": "instance"},
             "definition": "label_values(unmogrowp_uptime_seconds, instance)",
             "multi": True, "includeAll": True, "allValue": ".+", "refresh": 2, "current": {}, "hide": 0},
        ]},
        "annotations": {"list": []},
        "links": [{"title": "UnMoGrowP", "type": "dashboards", "tags": ["unmogrowp"], "asDropdown": True}],
        "panels": panels,
    }


R = "$__rate_interval"

cluster = dashboard("unmogrowp-cluster", "UnMoGrowP · Cluster",
    "Leader, terms and elections, log indexes per node, replication lag, snapshots, clocks.", [
    ("Leadership", [
        panel("Nodes up", [f'up{{job=~".*unmogrowp.*",{I}}}'], kind="stat",
              desc="0: Prometheus cannot scrape the node (alert UnmogrowpNodeDown)."),
        panel("Leader (node id) as each node sees it", [f'unmogrowp_raft_current_leader{{{I}}}'],
              desc="-1: this node knows no leader (alert UnmogrowpNoLeader)."),
        panel("Term", [f'unmogrowp_raft_term{{{I}}}']),
        panel("Elections (term changes)", [f'changes(unmogrowp_raft_term{{{I}}}[15m])'],
              desc="More than a few in 15 minutes: flapping leadership (alert UnmogrowpFrequentElections)."),
    ]),
    ("Log", [
        panel("Last log index", [f'unmogrowp_raft_last_log_index{{{I}}}']),
        panel("Applied index", [f'unmogrowp_raft_applied_index{{{I}}}']),
        panel("Apply backlog (last − applied)",
              [f'unmogrowp_raft_last_log_index{{{I}}} - unmogrowp_raft_applied_index{{{I}}}']),
        panel("Purged and snapshot index",
              [(f'unmogrowp_raft_purged_index{{{I}}}', "purged {{instance}}"),
               (f'unmogrowp_raft_snapshot_index{{{I}}}', "snapshot {{instance}}")]),
    ]),
    ("Replication and snapshots", [
        panel("Replication lag per follower (on the leader)",
              [f'unmogrowp_raft_replication_lag_entries{{{I}}}'], legend="{{instance}} → node {{peer}}",
              desc="Entries a follower has not matched (alert UnmogrowpFollowerBehind)."),
        panel("Snapshots sent and being sent",
              [(f'increase(unmogrowp_raft_snapshots_sent_total{{{I}}}[1h])', "installed/h {{instance}}"),
               (f'unmogrowp_raft_snapshot_sends{{{I}}}', "sending {{instance}}")]),
        panel("Peer RPCs refused (wrong secret or identity)",
              [f'rate(unmogrowp_raft_rpc_refused_total{{{I}}}[{R}])'], unit="reqps"),
        panel("Uptime", [f'unmogrowp_uptime_seconds{{{I}}}'], unit="s"),
    ]),
    ("Clocks", [
        panel("Peer clock offset (measured on Raft calls)",
              [f'unmogrowp_clock_peer_offset_seconds{{{I}}}'], unit="s", legend="{{instance}} → node {{peer}}",
              desc="A peer's clock minus this node's; alert UnmogrowpClockOffset beyond ±1 s."),
        panel("NTP synchronised / offset",
              [(f'unmogrowp_clock_ntp_synchronized{{{I}}}', "synced {{instance}}"),
               (f'unmogrowp_clock_ntp_offset_seconds{{{I}}}', "offset {{instance}}")]),
    ]),
])

ingest = dashboard("unmogrowp-ingest", "UnMoGrowP · Ingest & API",
    "Events by outcome, requests and latency per route, fsyncs, errors and rate limits.", [
    ("Events", [
        panel("Events/s by outcome", [f'sum by (outcome) (rate(unmogrowp_ingest_events_total{{{I}}}[{R}]))'],
              unit="short", legend="{{outcome}}"),
        panel("Events/s per node", [f'sum by (instance) (rate(unmogrowp_ingest_events_total{{outcome="accepted",{I}}}[{R}]))']),
        panel("Events per fsync (group commit)", [f'unmogrowp_events_per_fsync{{{I}}}']),
        panel("fsync latency p50 / p99",
              [(f'unmogrowp_wal_fsync_duration_seconds{{quantile="0.5",{I}}}', "p50 {{instance}}"),
               (f'unmogrowp_wal_fsync_duration_seconds{{quantile="0.99",{I}}}', "p99 {{instance}}")], unit="s"),
    ]),
    ("Requests", [
        panel("Requests/s by route", [f'sum by (route) (rate(unmogrowp_http_requests_total{{{I}}}[{R}]))'],
              unit="reqps", legend="{{route}}"),
        panel("Latency p99 by route", [f'max by (route) (unmogrowp_http_request_duration_seconds{{quantile="0.99",{I}}})'],
              unit="s", legend="{{route}}"),
        panel("Ingest latency p50 / p99 (POST /v1/events)",
              [(f'unmogrowp_http_request_duration_seconds{{route="/v1/events",quantile="0.5",{I}}}', "p50 {{instance}}"),
               (f'unmogrowp_http_request_duration_seconds{{route="/v1/events",quantile="0.99",{I}}}', "p99 {{instance}}")],
              unit="s"),
        panel("4xx and 5xx per second",
              [(f'sum by (status) (rate(unmogrowp_http_requests_total{{status=~"4..",{I}}}[{R}]))', "{{status}}"),
               (f'sum by (instance) (rate(unmogrowp_http_requests_total{{status=~"5..",{I}}}[{R}])) '
                f'or sum by (instance) (rate(unmogrowp_http_requests_total{{{I}}}[{R}])) * 0', "5xx {{instance}}")],
              unit="reqps", desc="5xx shows 0 rather than no data while there are none."),
        panel("Rate-limited (429) per route",
              [f'sum by (route) (rate(unmogrowp_http_requests_total{{status="429",{I}}}[{R}])) '
               f'or sum by (route) (rate(unmogrowp_http_requests_total{{{I}}}[{R}])) * 0'],
              unit="reqps", legend="{{route}}"),
        panel("Connections open / refused",
              [(f'unmogrowp_http_connections_open{{{I}}}', "open {{instance}}"),
               (f'rate(unmogrowp_http_connections_refused_total{{{I}}}[{R}])', "refused/s {{instance}}")]),
    ]),
])

storage = dashboard("unmogrowp-storage", "UnMoGrowP · Storage & queries",
    "Memtable, flushes, segments, compaction, disk; SQL latency, admissions, memory.", [
    ("Storage", [
        panel("Memtable rows (and the flush threshold)",
              [(f'unmogrowp_engine_memtable_rows{{{I}}}', "rows {{instance}}"),
               (f'unmogrowp_engine_memtable_flush_rows{{{I}}}', "flush at {{instance}}")]),
        panel("Flushes and flush time",
              [(f'rate(unmogrowp_engine_flushes_total{{{I}}}[{R}])', "flushes/s {{instance}}"),
               (f'rate(unmogrowp_engine_flush_seconds_total{{{I}}}[{R}])', "busy fraction {{instance}}")]),
        panel("Segments and their bytes",
              [(f'unmogrowp_engine_segments{{{I}}}', "segments {{instance}}"),
               (f'unmogrowp_engine_segment_bytes{{{I}}}', "bytes {{instance}}")]),
        panel("Compactions and failures",
              [(f'increase(unmogrowp_engine_compactions_total{{{I}}}[1h])', "compactions/h {{instance}}"),
               (f'increase(unmogrowp_engine_compaction_failures_total{{{I}}}[1h])', "failures/h {{instance}}")]),
        panel("Segment integrity: damaged, not yet checked",
              [(f'unmogrowp_engine_segments_damaged{{{I}}}', "damaged {{instance}}"),
               (f'unmogrowp_engine_segments_unchecked{{{I}}}', "unchecked {{instance}}")]),
        panel("Data directory: free", [f'unmogrowp_data_dir_available_bytes{{{I}}}'], unit="bytes"),
        panel("Log on disk", [f'unmogrowp_wal_disk_bytes{{{I}}}'], unit="bytes"),
        panel("Rollups: hours in memory, days in the summaries, bytes",
              [(f'unmogrowp_rollup_hours{{{I}}}', "hours {{instance}}"),
               (f'unmogrowp_rollup_days_out{{{I}}}', "days out {{instance}}"),
               (f'unmogrowp_rollup_bitmap_bytes{{{I}}}', "bitmap bytes {{instance}}")]),
        panel("Process memory (RSS)", [f'unmogrowp_process_resident_bytes{{{I}}}'], unit="bytes"),
    ]),
    ("Queries", [
        panel("SQL latency p50 / p99",
              [(f'unmogrowp_http_request_duration_seconds{{route="/api/analytics/query",quantile="0.5",{I}}}', "p50 {{instance}}"),
               (f'unmogrowp_http_request_duration_seconds{{route="/api/analytics/query",quantile="0.99",{I}}}', "p99 {{instance}}")],
              unit="s"),
        panel("Queries running", [f'unmogrowp_queries_running{{{I}}}']),
        panel("Admitted, rejected, timed out, failed per second",
              [(f'rate(unmogrowp_queries_started_total{{{I}}}[{R}])', "admitted {{instance}}"),
               (f'rate(unmogrowp_queries_rejected_total{{{I}}}[{R}])', "rejected {{instance}}"),
               (f'rate(unmogrowp_queries_timed_out_total{{{I}}}[{R}])', "timed out {{instance}}"),
               (f'rate(unmogrowp_queries_failed_total{{{I}}}[{R}])', "failed {{instance}}")], unit="reqps"),
        panel("Query memory: largest query vs its limit",
              [(f'unmogrowp_query_memory_largest_bytes{{{I}}}', "largest {{instance}}"),
               (f'unmogrowp_query_memory_reserved_bytes{{{I}}}', "all {{instance}}"),
               (f'unmogrowp_query_memory_limit_bytes{{{I}}}', "limit per query {{instance}}")], unit="bytes"),
        panel("Spilled to disk", [f'unmogrowp_query_spill_bytes{{{I}}}'], unit="bytes"),
        panel("Parquet footer cache hit ratio",
              [f'rate(unmogrowp_query_metadata_cache_hits_total{{{I}}}[{R}]) / (rate(unmogrowp_query_metadata_cache_hits_total{{{I}}}[{R}]) + rate(unmogrowp_query_metadata_cache_misses_total{{{I}}}[{R}]))'],
              unit="percentunit"),
        panel("Parquet footer cache held (query.parquet_metadata_cache_bytes)",
              [f'unmogrowp_query_metadata_cache_bytes{{{I}}}'], unit="bytes"),
        panel("Parquet footers evicted per second (steadily > 0: the cache is too small)",
              [f'rate(unmogrowp_query_metadata_cache_evictions_total{{{I}}}[{R}])'], unit="ops"),
    ]),
])

business = dashboard("unmogrowp-business", "UnMoGrowP · Business",
    "Per app: events, active users, revenue, installs (last 24 h, from the rollups) and live ingest.", [
    ("Last 24 hours (event time; the leader's or any node's view, they agree)", [
        panel("Events per app", [f'max by (app) (unmogrowp_app_events_24h{{{I}}})'], legend="{{app}}"),
        panel("Active users per app", [f'max by (app) (unmogrowp_app_active_users_24h{{{I}}})'], legend="{{app}}"),
        panel("Revenue per app", [f'max by (app) (unmogrowp_app_revenue_24h{{{I}}})'], legend="{{app}}"),
        panel("Installs per app", [f'max by (app) (unmogrowp_app_installs_24h{{{I}}})'], legend="{{app}}"),
    ]),
    ("Live", [
        panel("Events/s received per app (all nodes)",
              [f'sum by (app) (rate(unmogrowp_app_ingest_events_total{{outcome="accepted",{I}}}[{R}]))'],
              legend="{{app}}"),
        panel("Rejected events/s per app",
              [f'sum by (app) (rate(unmogrowp_app_ingest_events_total{{outcome="rejected",{I}}}[{R}]))'],
              legend="{{app}}"),
    ]),
])

mirrors = dashboard("unmogrowp-mirrors", "UnMoGrowP · Mirrors",
    "Mirrors to Postgres, ClickHouse and Kafka: lag, throughput, errors, state (reported by every node; the leader runs them).", [
    ("Mirrors", [
        panel("Lag (events)", [f'max by (mirror) (unmogrowp_mirror_lag_events{{{I}}})'], legend="{{mirror}}"),
        panel("Lag (seconds)", [f'max by (mirror) (unmogrowp_mirror_lag_seconds{{{I}}})'], unit="s", legend="{{mirror}}",
              desc="Alert UnmogrowpMirrorLagging."),
        panel("Events sent per second", [f'sum by (mirror) (rate(unmogrowp_mirror_sent_events_total{{{I}}}[{R}]))'],
              legend="{{mirror}}"),
        panel("Write errors per second", [f'sum by (mirror) (rate(unmogrowp_mirror_errors_total{{{I}}}[{R}]))'],
              legend="{{mirror}}"),
        panel("State", [f'max by (mirror, state) (unmogrowp_mirror_state{{{I}}}) == 1'],
              legend="{{mirror}}: {{state}}"),
        panel("Cursor (log index)", [f'max by (mirror) (unmogrowp_mirror_cursor{{{I}}})'], legend="{{mirror}}"),
    ]),
])

security = dashboard("unmogrowp-security", "UnMoGrowP · Security",
    "Logins, lockouts, denied requests, API key use, the audit chain and the signing key.", [
    ("Logins", [
        panel("Logins per minute: ok / failed / refused while locked",
              [(f'sum(rate(unmogrowp_login_successes_total{{{I}}}[{R}])) * 60', "ok"),
               (f'sum(rate(unmogrowp_login_failures_total{{{I}}}[{R}])) * 60', "failed"),
               (f'sum(rate(unmogrowp_login_locked_total{{{I}}}[{R}])) * 60', "locked")]),
        panel("Accounts locked (per hour)", [f'sum(increase(unmogrowp_auth_lockouts_total{{{I}}}[1h]))'], legend="lockouts"),
        panel("Logins refused by the per-IP limiter", [f'sum(rate(unmogrowp_login_rate_limited_total{{{I}}}[{R}])) * 60'],
              legend="per minute"),
        panel("Sessions held", [f'unmogrowp_auth_sessions{{{I}}}']),
    ]),
    ("Requests and keys", [
        panel("Denied requests (401/403) per route",
              [f'sum by (route, status) (rate(unmogrowp_http_requests_total{{status=~"401|403",{I}}}[{R}]))'],
              unit="reqps", legend="{{status}} {{route}}"),
        panel("API key use: events/s per app",
              [f'sum by (app) (rate(unmogrowp_app_ingest_events_total{{{I}}}[{R}]))'], legend="{{app}}"),
        panel("Denials not audited (over the per-IP budget)",
              [f'rate(unmogrowp_audit_suppressed_total{{{I}}}[{R}])'], unit="reqps"),
    ]),
    ("Audit and keys", [
        panel("Audit chain head (records)", [f'unmogrowp_audit_records{{{I}}}']),
        panel("Audit chain intact (last verification)", [f'unmogrowp_audit_chain_ok{{{I}}}'], kind="stat",
              desc="0: a record was edited, deleted or reordered (alert UnmogrowpAuditChainBroken)."),
        panel("Signing key age", [f'unmogrowp_auth_signing_key_age_seconds{{{I}}}'], unit="s"),
    ]),
])

DASHBOARDS = {
    "cluster.json": cluster,
    "ingest.json": ingest,
    "storage.json": storage,
    "business.json": business,
    "mirrors.json": mirrors,
    "security.json": security,
}


def main():
    check = "--check" in sys.argv[1:]
    out = HERE / "dashboards"
    out.mkdir(exist_ok=True)
    stale = []
    for name, d in DASHBOARDS.items():
        text = json.dumps(d, indent=2, ensure_ascii=False) + "\n"
        path = out / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print("out of date (run python3 deploy/grafana/dashboards.py):", ", ".join(stale))
        sys.exit(1)


if __name__ == "__main__":
    main()
