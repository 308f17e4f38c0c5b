#!/usr/bin/env python3
"""Dashboard benchmark: every /api/dashboard endpoint for the busiest app over the last 30
days (whole hours, as the dashboard asks), p50/p99 over RUNS requests, against DuckDB running
the equivalent SQL over the very same segment files. The rollup-backed endpoints are also
timed with source=scan (the same answer computed by SQL inside the appliance).

  python3 bench/sql/dashboard.py --url http://127.0.0.1:18080 --password PW --segments DIR
  (--only top-campaigns,funnel: the endpoints whose names start so; --scan-runs 0: no
  source=scan timings, default max(5, runs / 5))
"""

import time

import duckdb

from client import Appliance, arguments, times_ms

HOUR = 3_600_000
DAY = 24 * HOUR


def pct(times, p):
    s = sorted(times)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def timed(fn, runs):
    times, out = times_ms(fn, runs)
    return pct(times, 50), pct(times, 99), out


def main():
    a = arguments(__doc__, runs=50, duckdb_runs=10, only="", scan_runs=-1)
    app = Appliance(a.url, a.password)
    to = (int(time.time() * 1000) // HOUR + 1) * HOUR
    frm = to - 30 * DAY
    rng = f"app_id={a.app}&from={frm}&to={to}"

    def get(path):
        return lambda: app.get(f"/api/dashboard/{path}")

    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    db.execute(f"CREATE VIEW ev AS SELECT * FROM read_parquet('{a.segments}/**/*.parquet')")
    where = f"app_id = '{a.app}' AND timestamp >= epoch_ms({frm}) AND timestamp < epoch_ms({to})"
    funnel = (
        f"WITH s1 AS (SELECT user_id, min(timestamp) AS t0, min(timestamp) AS t FROM ev WHERE {where} "
        f"AND event_type = 'ad_click' AND user_id IS NOT NULL GROUP BY user_id), "
        f"s2 AS (SELECT p.user_id, p.t0, min(e.timestamp) AS t FROM s1 p JOIN ev e ON e.user_id = p.user_id "
        f"WHERE e.app_id = '{a.app}' AND e.event_type = 'install' AND e.timestamp > p.t "
        f"AND e.timestamp <= p.t0 + INTERVAL 7 DAY GROUP BY p.user_id, p.t0), "
        f"s3 AS (SELECT p.user_id, p.t0, min(e.timestamp) AS t FROM s2 p JOIN ev e ON e.user_id = p.user_id "
        f"WHERE e.app_id = '{a.app}' AND e.event_type = 'purchase' AND e.timestamp > p.t "
        f"AND e.timestamp <= p.t0 + INTERVAL 7 DAY GROUP BY p.user_id, p.t0) "
        f"SELECT (SELECT count(*) FROM s1), (SELECT count(*) FROM s2), (SELECT count(*) FROM s3)")
    retention = (
        f"WITH first AS (SELECT user_id, min(date_trunc('day', timestamp)) AS d0 FROM ev WHERE {where} "
        f"AND event_type = 'install' AND user_id IS NOT NULL GROUP BY user_id), "
        f"active AS (SELECT DISTINCT user_id, date_trunc('day', timestamp) AS d FROM ev "
        f"WHERE app_id = '{a.app}' AND timestamp >= epoch_ms({frm}) AND timestamp < epoch_ms({to}) + INTERVAL 7 DAY "
        f"AND user_id IS NOT NULL) "
        f"SELECT strftime(f.d0, '%Y-%m-%d') AS cohort, datediff('day', f.d0, a.d) AS day, count(DISTINCT f.user_id) "
        f"FROM first f JOIN active a ON a.user_id = f.user_id AND a.d >= f.d0 AND a.d <= f.d0 + INTERVAL 7 DAY "
        f"GROUP BY ALL ORDER BY 1, 2")
    cases = [
        ("stats", f"stats?{rng}", True,
         f"SELECT count(*), count(DISTINCT user_id), coalesce(sum(revenue), 0), "
         f"count(*) FILTER (WHERE event_type = 'install'), count(*) FILTER (WHERE event_type = 'purchase') "
         f"FROM ev WHERE {where}"),
        ("events-over-time (hour)", f"charts/events-over-time?{rng}&interval=hour", True,
         f"SELECT date_trunc('hour', timestamp) AS t, count(*), count(DISTINCT user_id), coalesce(sum(revenue), 0) "
         f"FROM ev WHERE {where} GROUP BY t ORDER BY t"),
        ("events-over-time (day)", f"charts/events-over-time?{rng}&interval=day", True,
         f"SELECT date_trunc('day', timestamp) AS t, count(*), count(DISTINCT user_id), coalesce(sum(revenue), 0) "
         f"FROM ev WHERE {where} GROUP BY t ORDER BY t"),
        ("platforms", f"charts/platforms?{rng}", True,
         f"SELECT platform, count(*) AS events, count(DISTINCT user_id) FROM ev WHERE {where} "
         f"GROUP BY platform ORDER BY events DESC, platform"),
        ("top-campaigns", f"charts/top-campaigns?{rng}", True,
         f"SELECT attribution_campaign, attribution_source, attribution_medium, count(*), "
         f"count(*) FILTER (WHERE event_type = 'install') AS installs, "
         f"coalesce(sum(revenue) FILTER (WHERE event_type = 'purchase'), 0) AS revenue, count(DISTINCT user_id) "
         f"FROM ev WHERE {where} AND attribution_campaign IS NOT NULL GROUP BY ALL "
         f"ORDER BY installs DESC, revenue DESC, 1, 2, 3 LIMIT 10"),
        ("user-retention (7 days)", f"charts/user-retention?{rng}&days=7", True, retention),
        ("funnel (click, install, purchase; 7d)", f"charts/funnel?{rng}", True, funnel),
    ]
    print(f"Dashboard endpoints for {a.app}, 30 days to {to} (whole hours), {a.runs} requests each after one warm-up; "
          f"DuckDB {a.duckdb_runs} runs of the equivalent SQL over the same files (ms):\n")
    print("| endpoint | source | p50 | p99 | DuckDB p50 | DuckDB p99 | p50 vs DuckDB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, path, has_rollup, sql in cases:
        if a.only and not any(name.startswith(o) for o in a.only.split(",")):
            continue
        d50, d99, want = timed(lambda: db.execute(sql).fetchall(), a.duckdb_runs)
        try:
            p50, p99, out = timed(get(path), a.runs)
        except RuntimeError as e:
            # A scan may hit the per-query memory limit on large data: report it, go on.
            print(f"| {name} | scan | failed: {str(e)[-160:]} | | {d50:.1f} | {d99:.1f} | |", flush=True)
            continue
        src = out.get("source", "scan")
        print(f"| {name} | {src} | {p50:.1f} | {p99:.1f} | {d50:.1f} | {d99:.1f} | {p50 / d50:.2f} |", flush=True)
        scan_runs = max(5, a.runs // 5) if a.scan_runs < 0 else a.scan_runs
        if has_rollup and scan_runs > 0:
            try:
                s50, s99, _ = timed(get(path + "&source=scan"), scan_runs)
                print(f"| {name} | scan | {s50:.1f} | {s99:.1f} | {d50:.1f} | {d99:.1f} | {s50 / d50:.2f} |",
                      flush=True)
            except RuntimeError as e:
                print(f"| {name} | scan | failed: {str(e)[:40]}… {str(e)[-120:]} | | {d50:.1f} | {d99:.1f} | |",
                      flush=True)
        if name == "stats":
            got = [(out["total_events"], out["active_users"])]
            want = [(want[0][0], want[0][1])]
        elif name == "top-campaigns":
            got = [(r["campaign"], r["source"], r["medium"], r["events"], r["installs"], r["users"])
                   for r in out["rows"]]
            want = [(w[0], w[1], w[2], w[3], w[4], w[6]) for w in want]
        elif name.startswith("funnel"):
            got = [tuple(s["users"] for s in out["steps"])]
            want = [tuple(want[0])]
        elif name.startswith("user-retention"):
            got = [(c["cohort"], n, u) for c in out["cohorts"] for n, u in enumerate(c["retained"]) if u]
            want = [tuple(w) for w in want]
        else:
            continue
        if got != want:
            raise SystemExit(f"{name} disagrees with DuckDB:\n{got[:5]}\n{want[:5]}")


if __name__ == "__main__":
    main()
