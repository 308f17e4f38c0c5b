#!/usr/bin/env python3
"""Web dashboard timings in a real browser (Debian chromium via Playwright) against a loaded
appliance: first contentful paint of the page, and the time until the dashboard's data is on
screen (every panel of the busiest app loaded), for the 7-day and 30-day periods. One cold
load after login, then RUNS reloads; the numbers are the browser's own clock
(performance.getEntriesByName('first-contentful-paint'), performance.now() when the last
panel settled), medians and ranges.

  python3 bench/sql/ui.py --url http://127.0.0.1:18080 --password PW [--runs 7]
  DATA=/tmp/sqlkeep SUITES=ui bench/sql/run.sh     # on the 10M-event dataset
"""
import argparse
import json
import os
import statistics

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SETTLED = """() => document.querySelector('[data-stat]') !== null &&
    document.querySelectorAll('section.panel').length >= 6 &&
    ![...document.querySelectorAll('section.panel')].some(s => s.getAttribute('aria-busy') === 'true')"""


def measure(page):
    page.wait_for_function(SETTLED, polling="raf", timeout=60_000)
    return page.evaluate("""() => ({
        fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,
        data: performance.now(),
        bytes: performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))
            .filter(e => !e.name.includes('/api/')).reduce((n, e) => n + e.encodedBodySize, 0)})""")


def summary(xs):
    return {"median": round(statistics.median(xs)), "min": round(min(xs)), "max": round(max(xs))}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--app", default="app_00")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--segments", help="ignored (run.sh passes it to every suite)")
    p.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    p.add_argument("--screenshot", default=os.environ.get("UI_SCREENSHOT"),
                   help="save the settled 7-day dashboard here (PNG)")
    a = p.parse_args()
    out = {}
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=a.chromium, args=ARGS)
        # A first visit: a fresh profile, nothing cached, the login page's paint.
        first = []
        for _ in range(3):
            ctx = b.new_context()
            p0 = ctx.new_page()
            p0.goto(a.url + "/login")
            p0.get_by_label("Password").wait_for()
            first.append(p0.evaluate("(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime"))
            ctx.close()
        out["first_visit_login_fcp_ms"] = summary(first)
        page = b.new_page(viewport={"width": 1360, "height": 900})
        page.goto(a.url + "/login")
        page.get_by_label("Email").fill("admin@localhost")
        page.get_by_label("Password").fill(a.password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/dashboard**")
        for period in ("7d", "30d"):
            runs = []
            for i in range(a.runs + 1):
                page.goto(f"{a.url}/dashboard?app={a.app}&range={period}")
                runs.append(measure(page))
            cold, warm = runs[0], runs[1:]
            if a.screenshot and period == "7d":
                page.screenshot(path=a.screenshot, full_page=True)
            out[period] = {"cold": {k: round(v) for k, v in cold.items() if v is not None},
                           "fcp_ms": summary([r["fcp"] for r in warm]),
                           "data_shown_ms": summary([r["data"] for r in warm]),
                           "static_bytes_encoded": warm[-1]["bytes"]}
        b.close()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
