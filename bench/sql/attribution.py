#!/usr/bin/env python3
"""Attribution benchmark: GET /api/analytics/attribution over a 30-day window of the busiest
app, per model, against DuckDB computing last-click attribution (ASOF join of each conversion
to the device's latest click within 7 days) over the very same segment files.

The DuckDB query does less than the appliance: no user-id join across devices, no view
fallback, no consumed touchpoints, no re-attribution window. It is the usual SQL an analyst
writes for last click, and the floor the appliance is compared with.

  python3 bench/sql/attribution.py --url http://127.0.0.1:18080 --password PW --segments DIR
"""

import statistics
import time

import duckdb

from client import Appliance, arguments, times_ms

DAY = 86_400_000


def timed(fn, runs):
    times, out = times_ms(fn, runs)
    return statistics.median(times), max(times), out


def main():
    a = arguments(__doc__, runs=5)
    app = Appliance(a.url, a.password)
    to = int(time.time() * 1000)
    frm = to - 30 * DAY

    def attribution(model):
        return lambda: app.get(f"/api/analytics/attribution?app_id={a.app}&from={frm}&to={to}&model={model}")

    files = f"{a.segments}/**/*.parquet"
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    sql = f"""
      WITH conv AS (
        SELECT device_id, timestamp AS ts, revenue FROM read_parquet('{files}')
        WHERE app_id = '{a.app}' AND event_type IN ('install', 'purchase')
          AND timestamp >= epoch_ms({frm}) AND timestamp < epoch_ms({to})),
      clicks AS (
        SELECT device_id, timestamp AS ts, attribution_campaign AS campaign,
               attribution_source AS source, attribution_medium AS medium
        FROM read_parquet('{files}')
        WHERE app_id = '{a.app}' AND event_type = 'ad_click'
          AND timestamp >= epoch_ms({frm - 7 * DAY}) AND timestamp < epoch_ms({to}))
      SELECT CASE WHEN v.ts - c.ts <= INTERVAL 7 DAY THEN c.campaign END AS campaign,
             count(*) AS conversions, sum(v.revenue) AS revenue
      FROM conv v ASOF LEFT JOIN clicks c ON v.device_id = c.device_id AND v.ts >= c.ts
      GROUP BY ALL ORDER BY conversions DESC"""
    rows = []
    for model in ["last_touch", "linear", "time_decay", "position_based"]:
        med, worst, r = timed(attribution(model), a.runs)
        rows.append((f"appliance {model}", med, worst,
                     f"{r['total_conversions']} conversions, {len(r['rows'])} channels, "
                     f"{r['events_scanned']} events read, {r['identities']} identities"))
    med, worst, r = timed(lambda: db.execute(sql).fetchall(), a.runs)
    conversions = sum(x[1] for x in r)
    rows.append(("DuckDB last click (ASOF join)", med, worst, f"{conversions} conversions, {len(r)} channels"))
    print(f"\nAttribution of {a.app}, 30 days, median of {a.runs} (ms):\n")
    print("| run | median ms | max ms | answer |")
    print("|---|---:|---:|---|")
    for name, med, worst, note in rows:
        print(f"| {name} | {med:.0f} | {worst:.0f} | {note} |")


if __name__ == "__main__":
    main()
