"""The SQL benchmark's query set: each query in the appliance's dialect (ClickHouse functions,
run unchanged by chDB) and, where DuckDB spells it differently, in DuckDB's."""

Q = []


def q(name, kind, sql, duckdb=None, chdb=None):
    Q.append({"name": name, "kind": kind, "appliance": sql, "duckdb": duckdb or sql, "chdb": chdb or sql})


# --- the dashboard's queries (seed: stats, events over time, platforms, top campaigns) ---
q("dash_stats", "dashboard",
  "SELECT count() AS total_events, uniqExact(user_id) AS active_users, sum(revenue) AS revenue "
  "FROM events WHERE app_id = 'app_00' AND timestamp >= now() - INTERVAL 7 DAY",
  duckdb="SELECT count(*) AS total_events, count(DISTINCT user_id) AS active_users, sum(revenue) AS revenue "
  "FROM events WHERE app_id = 'app_00' AND timestamp >= now() - INTERVAL 7 DAY")
q("dash_events_over_time", "dashboard",
  "SELECT toStartOfHour(timestamp) AS hour, count() AS events FROM events "
  "WHERE app_id = 'app_00' AND timestamp >= now() - INTERVAL 24 HOUR GROUP BY hour ORDER BY hour",
  duckdb="SELECT date_trunc('hour', timestamp) AS hour, count(*) AS events FROM events "
  "WHERE app_id = 'app_00' AND timestamp >= now() - INTERVAL 24 HOUR GROUP BY hour ORDER BY hour")
q("dash_platforms", "dashboard",
  "SELECT platform, count() AS events, uniqExact(user_id) AS users FROM events "
  "WHERE app_id = 'app_01' AND timestamp >= now() - INTERVAL 30 DAY GROUP BY platform ORDER BY events DESC",
  duckdb="SELECT platform, count(*) AS events, count(DISTINCT user_id) AS users FROM events "
  "WHERE app_id = 'app_01' AND timestamp >= now() - INTERVAL 30 DAY GROUP BY platform ORDER BY events DESC")
q("dash_top_campaigns", "dashboard",
  "SELECT attribution_campaign AS campaign, countIf(event_type = 'install') AS installs, "
  "sumIf(revenue, event_type = 'purchase') AS revenue FROM events "
  "WHERE app_id = 'app_00' AND attribution_campaign IS NOT NULL GROUP BY campaign ORDER BY installs DESC, campaign LIMIT 10",
  duckdb="SELECT attribution_campaign AS campaign, count(*) FILTER (WHERE event_type = 'install') AS installs, "
  "sum(revenue) FILTER (WHERE event_type = 'purchase') AS revenue FROM events "
  "WHERE app_id = 'app_00' AND attribution_campaign IS NOT NULL GROUP BY campaign ORDER BY installs DESC, campaign LIMIT 10")
q("dash_conversion_rate", "dashboard",
  "SELECT countIf(event_type = 'purchase') * 1.0 / countIf(event_type = 'install') AS conversion_rate "
  "FROM events WHERE app_id = 'app_02' AND timestamp >= now() - INTERVAL 30 DAY",
  duckdb="SELECT count(*) FILTER (WHERE event_type = 'purchase') * 1.0 / count(*) FILTER (WHERE event_type = 'install') "
  "AS conversion_rate FROM events WHERE app_id = 'app_02' AND timestamp >= now() - INTERVAL 30 DAY")
# --- analyst queries ---
q("daily_counts", "analytic",
  "SELECT toDate(timestamp) AS day, count() AS events FROM events GROUP BY day ORDER BY day",
  duckdb="SELECT CAST(timestamp AS DATE) AS day, count(*) AS events FROM events GROUP BY day ORDER BY day")
q("hourly_active_users_7d", "analytic",
  "SELECT toStartOfHour(timestamp) AS hour, uniqExact(user_id) AS users FROM events "
  "WHERE timestamp >= now() - INTERVAL 7 DAY GROUP BY hour ORDER BY hour",
  duckdb="SELECT date_trunc('hour', timestamp) AS hour, count(DISTINCT user_id) AS users FROM events "
  "WHERE timestamp >= now() - INTERVAL 7 DAY GROUP BY hour ORDER BY hour")
q("uniq_users_per_campaign", "analytic",
  "SELECT attribution_campaign, uniqExact(user_id) AS users FROM events "
  "WHERE attribution_campaign IS NOT NULL GROUP BY attribution_campaign ORDER BY users DESC, attribution_campaign LIMIT 20",
  duckdb="SELECT attribution_campaign, count(DISTINCT user_id) AS users FROM events "
  "WHERE attribution_campaign IS NOT NULL GROUP BY attribution_campaign ORDER BY users DESC, attribution_campaign LIMIT 20")
q("top_apps_by_revenue", "analytic",
  "SELECT app_id, sum(revenue) AS revenue, count() AS purchases FROM events "
  "WHERE event_type = 'purchase' GROUP BY app_id ORDER BY revenue DESC LIMIT 10",
  duckdb="SELECT app_id, sum(revenue) AS revenue, count(*) AS purchases FROM events "
  "WHERE event_type = 'purchase' GROUP BY app_id ORDER BY revenue DESC LIMIT 10")
q("source_medium_breakdown", "analytic",
  "SELECT attribution_source, attribution_medium, count() AS events, uniqExact(device_id) AS devices "
  "FROM events GROUP BY attribution_source, attribution_medium ORDER BY events DESC",
  duckdb="SELECT attribution_source, attribution_medium, count(*) AS events, count(DISTINCT device_id) AS devices "
  "FROM events GROUP BY attribution_source, attribution_medium ORDER BY events DESC")
q("top_event_types", "analytic",
  "SELECT app_id, event_type, count() AS events FROM events GROUP BY app_id, event_type ORDER BY events DESC, app_id, event_type LIMIT 20",
  duckdb="SELECT app_id, event_type, count(*) AS events FROM events GROUP BY app_id, event_type ORDER BY events DESC, app_id, event_type LIMIT 20")
q("funnel_install_to_purchase_7d", "analytic",
  "WITH installs AS (SELECT user_id, min(timestamp) AS t FROM events WHERE app_id = 'app_00' AND event_type = 'install' GROUP BY user_id) "
  "SELECT count(DISTINCT i.user_id) AS converted FROM installs i JOIN events p ON i.user_id = p.user_id "
  "WHERE p.app_id = 'app_00' AND p.event_type = 'purchase' AND p.timestamp > i.t AND p.timestamp <= i.t + INTERVAL 7 DAY")
q("day1_retention", "analytic",
  "WITH installs AS (SELECT user_id, min(toDate(timestamp)) AS d0 FROM events WHERE app_id = 'app_01' AND event_type = 'install' GROUP BY user_id), "
  "opens AS (SELECT DISTINCT user_id, toDate(timestamp) AS d FROM events WHERE app_id = 'app_01' AND event_type = 'app_open') "
  "SELECT i.d0 AS cohort, count() AS installed, countIf(o.user_id IS NOT NULL) AS returned_day1 "
  "FROM installs i LEFT JOIN opens o ON o.user_id = i.user_id AND o.d = i.d0 + 1 GROUP BY cohort ORDER BY cohort",
  duckdb="WITH installs AS (SELECT user_id, min(CAST(timestamp AS DATE)) AS d0 FROM events WHERE app_id = 'app_01' AND event_type = 'install' GROUP BY user_id), "
  "opens AS (SELECT DISTINCT user_id, CAST(timestamp AS DATE) AS d FROM events WHERE app_id = 'app_01' AND event_type = 'app_open') "
  "SELECT i.d0 AS cohort, count(*) AS installed, count(o.user_id) AS returned_day1 "
  "FROM installs i LEFT JOIN opens o ON o.user_id = i.user_id AND o.d = i.d0 + 1 GROUP BY cohort ORDER BY cohort",
  chdb="WITH installs AS (SELECT user_id, min(toDate(timestamp)) AS d0 FROM events WHERE app_id = 'app_01' AND event_type = 'install' GROUP BY user_id), "
  "opens AS (SELECT DISTINCT user_id, toDate(timestamp) AS d FROM events WHERE app_id = 'app_01' AND event_type = 'app_open') "
  "SELECT i.d0 AS cohort, count() AS installed, countIf(o.user_id != '') AS returned_day1 "
  "FROM installs i LEFT JOIN opens o ON o.user_id = i.user_id AND o.d = i.d0 + 1 GROUP BY cohort ORDER BY cohort")
q("revenue_p90", "analytic",
  "SELECT quantile(0.9)(revenue) AS p90 FROM events WHERE event_type = 'purchase'",
  duckdb="SELECT quantile_cont(revenue, 0.9) AS p90 FROM events WHERE event_type = 'purchase'",
  chdb="SELECT quantileExact(0.9)(revenue) AS p90 FROM events WHERE event_type = 'purchase'")
q("event_data_revenue", "analytic",
  "SELECT sum(toFloat64OrZero(event_data['revenue'])) AS revenue FROM events WHERE app_id = 'app_03' AND event_type = 'purchase'",
  duckdb="SELECT sum(coalesce(TRY_CAST(event_data['revenue'] AS DOUBLE), 0)) AS revenue FROM events WHERE app_id = 'app_03' AND event_type = 'purchase'")
q("last_platform_per_user", "analytic",
  "SELECT user_id, argMax(platform, timestamp) AS platform FROM events WHERE app_id = 'app_05' GROUP BY user_id ORDER BY user_id LIMIT 10",
  duckdb="SELECT user_id, arg_max(platform, timestamp) AS platform FROM events WHERE app_id = 'app_05' GROUP BY user_id ORDER BY user_id LIMIT 10")
q("wide_scan_one_user", "analytic",
  "SELECT * EXCEPT (event_data) FROM events WHERE user_id = 'u777' ORDER BY timestamp, event_id LIMIT 100",
  duckdb="SELECT * EXCLUDE (event_data) FROM events WHERE user_id = 'u777' ORDER BY timestamp, event_id LIMIT 100")
q("wide_scan_all_columns", "analytic",
  "SELECT count() AS n, sum(length(ip)) AS ip_bytes, max(app_version) AS v, count(DISTINCT session_id) AS sessions, max(received_at) AS last FROM events",
  duckdb="SELECT count(*) AS n, sum(length(ip)) AS ip_bytes, max(app_version) AS v, count(DISTINCT session_id) AS sessions, max(received_at) AS last FROM events")
