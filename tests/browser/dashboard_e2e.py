#!/usr/bin/env python3
"""The web dashboard end to end, in a real browser (Debian chromium driven by Playwright;
never a downloaded browser), against a running appliance (issue 24).

    dashboard_e2e.py --base http://127.0.0.1:8080 --password ADMIN_PASSWORD --out DIR

Seeds apps, users and events through the API, then drives the UI as people would and checks
what they see against what the API answers. Screenshots of every page go to DIR; a summary
(timings, sizes, axe results) is printed as one JSON object on stdout. Any failed check
raises (exit code 1) with what was seen. Called by tests/tests/dashboard_ui.rs.
"""
import argparse
import json
import os
import time
import urllib.error
import urllib.request

from playwright.sync_api import expect, sync_playwright

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ADMIN = "admin@localhost"
XSS_CAMPAIGN = "<script>window.__xss=1</script>"
XSS_EVENT = '"><img src=x onerror="window.__xss=2">'
HOUR = 3_600_000


class Api:
    """The API as a script uses it (its own login, re-done when the short token expires)."""

    def __init__(self, base, email, password):
        self.base, self.email, self.password, self.token = base, email, password, None

    def call(self, method, path, body=None, key=None, raw=False):
        for attempt in range(2):
            if self.token is None and key is None:
                self.token = self.login()
            headers = {"content-type": "application/json"}
            if key:
                headers["x-api-key"] = key
            else:
                headers["authorization"] = "Bearer " + self.token
            data = None if body is None else json.dumps(body).encode()
            req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    text = r.read()
                    return (r.status, dict(r.headers), text) if raw else json.loads(text or b"null")
            except urllib.error.HTTPError as e:
                if e.code == 401 and key is None and attempt == 0:
                    self.token = None
                    continue
                raise AssertionError(f"{method} {path} -> {e.code}: {e.read()[:500]!r}")

    def login(self):
        req = urllib.request.Request(
            self.base + "/api/auth/login", method="POST",
            data=json.dumps({"email": self.email, "password": self.password}).encode(),
            headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())["access_token"]


def seed(api, now_ms):
    """Two apps with events over the last days; campaign names and an event type carry XSS
    payloads; devices with two clicks make linear and last-touch attribution differ."""
    keys = {}
    for app in ("shop", "games"):
        keys[app] = api.call("POST", "/api/apps", {"name": app.title(), "id": app})["api_key"]
    base = (now_ms // HOUR) * HOUR - 30 * HOUR
    events = []
    for d in range(40):
        dev = f"dev-{d}"
        t = base + d * 600_000
        first, second = ("summer", "autumn") if d % 2 else ("autumn", XSS_CAMPAIGN)
        plat = ["ios", "android", "web", "tvos"][d % 4]
        def ev(kind, ts, camp=None, **extra):
            e = {"event_type": kind, "device_id": dev, "user_id": f"u{d}", "platform": plat,
                 "timestamp": ts}
            if camp:
                e["attribution"] = {"campaign": camp, "source": "google" if camp == "summer" else "meta",
                                    "medium": "cpc"}
            e.update(extra)
            return e
        events.append(ev("ad_click", t, first))
        events.append(ev("ad_click", t + 60_000, second))
        events.append(ev("install", t + 120_000, second))
        if d % 3 == 0:
            events.append(ev("purchase", t + 180_000, second,
                             event_data={"revenue": 9.5, "currency": "USD", "cart": {"total": 9.5}}))
        if d % 5 == 0:
            events.append(ev(XSS_EVENT, t + 200_000))
    r = api.call("POST", "/v1/events", events, key=keys["shop"])
    assert r["accepted"] == len(events), r
    g = [{"event_type": "app_open", "device_id": f"g{i}", "platform": "android",
          "timestamp": base + i * 1000} for i in range(7)]
    assert api.call("POST", "/v1/events", g, key=keys["games"])["accepted"] == 7
    api.call("POST", "/api/admin/users", {"email": "ana@example.com", "password": "analyst-password-1",
                                          "roles": ["user"], "app_access": ["shop"]})
    api.call("POST", "/api/admin/users", {"email": "ro@example.com", "password": "readonly-password-1",
                                          "roles": ["readonly"], "app_access": ["shop"]})
    return keys, len(events)


def wait_rows(api, sql, want, limit=15):
    t0 = time.time()
    while True:
        rows = api.call("POST", "/api/analytics/query", {"sql": sql})["rows"]
        if rows and rows[0][0] >= want or time.time() - t0 > limit:
            return rows[0][0] if rows else None
        time.sleep(0.2)


class Run:
    def __init__(self, args, browser):
        self.a, self.browser = args, browser
        self.out = {"pages": {}, "axe": {}, "timings": {}}
        self.axe = open(args.axe).read()

    def context(self):
        ctx = self.browser.new_context(viewport={"width": 1360, "height": 900}, timezone_id="Pacific/Kiritimati")
        ctx.add_init_script("""
          window.__csp = [];
          document.addEventListener('securitypolicyviolation',
            e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
          window.addEventListener('error', e => { (window.__errors ||= []).push(String(e.message)); });
        """)
        return ctx

    def shot(self, page, name):
        page.screenshot(path=os.path.join(self.a.out, f"{name}.png"), full_page=True)
        self.out["pages"][name] = page.url

    def check_axe(self, page, name):
        page.evaluate(self.axe)
        res = page.evaluate("""async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }""")
        bad = [v for v in res if v["impact"] in ("serious", "critical")]
        self.out["axe"][name] = {"violations": [f"{v['id']} ({v['impact']}): {v['nodes']}" for v in res],
                                 "serious_or_critical": bad}
        assert not bad, f"axe on {name}: {json.dumps(bad, indent=1)}"

    def safe(self, page, name):
        """No script ran from user data and nothing violated the CSP."""
        assert page.evaluate("window.__xss") is None, f"XSS payload ran on {name}"
        csp = page.evaluate("window.__csp")
        assert not csp, f"CSP violations on {name}: {csp}"
        errors = page.evaluate("window.__errors || []")
        assert not errors, f"script errors on {name}: {errors}"

    def login(self, page, email, password):
        page.goto(self.a.base + "/")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--axe", required=True, help="axe.min.js (ui/node_modules/axe-core)")
    p.add_argument("--token-ttl", type=float, default=0, help="the node's access-token lifetime, s")
    p.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    api = Api(a.base, ADMIN, a.password)
    now_ms = int(time.time() * 1000)
    keys, n_shop = seed(api, now_ms)
    assert wait_rows(api, "SELECT count() FROM events WHERE app_id = 'shop'", n_shop) == n_shop

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=a.chromium, args=CHROMIUM_ARGS)
        try:
            run = Run(a, browser)
            scenarios(run, api, keys, n_shop)
        finally:
            browser.close()
    print(json.dumps(run.out))


def scenarios(run, api, keys, n_shop):
    a, out = run.a, run.out
    ctx = run.context()
    page = ctx.new_page()

    # --- the first screen: headers, sizes, CSP
    resp = page.goto(a.base + "/")
    h = resp.headers
    assert "default-src 'self'" in h.get("content-security-policy", ""), h
    assert "no-cache" in h.get("cache-control", ""), h
    sizes = page.evaluate("""() => performance.getEntriesByType('resource').concat(
        performance.getEntriesByType('navigation')).map(e => ({name: e.name, bytes: e.transferSize,
        encoded: e.encodedBodySize}))""")
    out["first_screen_transfer_bytes"] = sum(s["bytes"] for s in sizes)
    out["first_screen_encoded_bytes"] = sum(s["encoded"] for s in sizes)
    assert out["first_screen_encoded_bytes"] <= 100 * 1024, sizes

    # --- wrong password: a readable message
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("login-error")).to_contain_text("Wrong email or password")
    assert page.get_by_label("Email").get_attribute("autocomplete") == "username"
    assert page.get_by_label("Password").get_attribute("autocomplete") == "current-password"
    run.shot(page, "login-error")
    run.check_axe(page, "login")

    # --- admin logs in: the dashboard of the first app, numbers equal the API's
    t0 = time.time()
    page.get_by_label("Password").fill(a.password)
    with page.expect_response(lambda r: "/api/dashboard/stats" in r.url) as first_resp:
        page.get_by_role("button", name="Log in").click()
    # No app used before: the first app the user may access (games sorts first).
    assert "app_id=games" in first_resp.value.url, first_resp.value.url
    expect(page.locator('[data-stat="Total events"]')).to_have_text("7")
    out["timings"]["login_to_dashboard_ms"] = round((time.time() - t0) * 1000)
    with page.expect_response(lambda r: "/api/dashboard/stats" in r.url and "app_id=shop" in r.url) as stats_resp:
        page.get_by_label("App").select_option("shop")
    stats = stats_resp.value.json()
    assert stats["total_events"] == n_shop, (stats, n_shop)
    # The same answer from the API directly, with the range the page asked for.
    q = stats_resp.value.url.split("?", 1)[1]
    direct = api.call("GET", "/api/dashboard/stats?" + q)
    for k in ("total_events", "active_users", "installs", "purchases", "revenue"):
        assert direct[k] == stats[k], (k, direct, stats)
    cards = {k: page.locator(f'[data-stat="{k}"]').inner_text() for k in
             ("Total events", "Active users", "Installs", "Purchases", "Revenue", "Conversion rate")}
    assert cards["Total events"].replace(",", "").replace("\u202f", "") == str(direct["total_events"]), cards
    assert cards["Installs"].replace(",", "") == str(direct["installs"]), cards
    assert cards["Purchases"].replace(",", "") == str(direct["purchases"]), cards
    assert cards["Active users"].replace(",", "") == str(direct["active_users"]), cards
    assert direct["revenue"] == 14 * 9.5 and cards["Revenue"] == "133", (direct, cards)
    out["dashboard_cards"] = cards
    expect(page.get_by_role("heading", name="Top campaigns")).to_be_visible()
    expect(page.get_by_role("cell", name=XSS_CAMPAIGN)).to_be_visible()  # shown as text
    expect(page.get_by_role("row", name="tvos")).to_be_visible()
    page.wait_for_load_state("networkidle")
    # Refresh cookie: HttpOnly, so the page's script cannot see it.
    assert "unmogrowp_refresh" not in page.evaluate("document.cookie")
    cookie = [c for c in ctx.cookies() if c["name"] == "unmogrowp_refresh"]
    assert cookie and cookie[0]["httpOnly"] and cookie[0]["sameSite"] == "Strict", ctx.cookies()
    run.safe(page, "dashboard")
    run.shot(page, "dashboard")
    run.check_axe(page, "dashboard")

    # --- a reload resumes the session from the cookie; paint and data timings
    page.reload()
    expect(page.locator('[data-stat="Total events"]')).to_be_visible()
    t = page.evaluate("""() => ({fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,
        now: performance.now()})""")
    out["timings"]["reload_fcp_ms"] = round(t["fcp"] or -1)
    out["timings"]["reload_data_shown_ms_upper_bound"] = round(t["now"])
    assert t["fcp"] and t["fcp"] < 1000, t

    # --- a custom range is whole UTC days, in the URL and in the requests
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
    page.get_by_label("Period").select_option("custom")
    with page.expect_response(lambda r: "/api/dashboard/stats" in r.url and f"from={day}T00" in r.url) as cr:
        page.get_by_label("From").fill(day)
    assert "range=custom" in page.url and cr.value.ok, (page.url, cr.value.url)
    page.get_by_label("Period").select_option("7d")

    # --- funnel steps the user picks; a step name the API refuses is an error shown as text
    page.get_by_label("Add step").fill(XSS_EVENT)
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_role("alert").filter(has_text="is not an event type")).to_contain_text("<img src=x onerror=")
    run.safe(page, "dashboard-funnel-error")
    page.get_by_role("button", name="Remove step " + XSS_EVENT).click()
    page.get_by_role("button", name="Remove step purchase").click()
    page.get_by_label("Add step").fill("purchase")
    with page.expect_response(lambda r: "/charts/funnel" in r.url and r.status == 200) as fr:
        page.get_by_role("button", name="Add", exact=True).click()
    f = fr.value.json()
    assert [s["event_type"] for s in f["steps"]] == ["ad_click", "install", "purchase"], f
    funnel = page.get_by_role("region", name="Step table")
    for st in f["steps"]:
        expect(funnel.get_by_role("row").filter(has_text=st["event_type"])).to_contain_text(f"{st['users']:,}")

    # --- attribution: switching the model changes the table as the API does
    page.get_by_role("link", name="Attribution").click()
    with page.expect_response(lambda r: "/api/analytics/attribution" in r.url and "model=linear" in r.url) as ar:
        page.get_by_test_id("model").select_option("linear")
    linear = ar.value.json()
    page.wait_for_timeout(300)
    last = api.call("GET", "/api/analytics/attribution?" + ar.value.url.split("?", 1)[1].replace("model=linear", "model=last_touch"))
    by = lambda rep: {(r["campaign"], r["source"]): round(r["conversions"], 4) for r in rep["rows"]}
    assert by(linear) != by(last), (linear, last)
    table = page.get_by_role("table", name="Attribution by campaign, source and medium")
    for (camp, src), conv in by(linear).items():
        row = table.get_by_role("row").filter(has_text=camp or "NULL").filter(has_text=src or "NULL").first
        expect(row).to_contain_text(f"{conv:g}")
    run.safe(page, "attribution")
    run.shot(page, "attribution")
    run.check_axe(page, "attribution")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download CSV").first.click()
    csv_text = open(dl.value.path()).read()
    assert csv_text.startswith("Campaign,Source,Medium,Conversions"), csv_text[:200]
    assert len(csv_text.strip().splitlines()) == len(linear["rows"]) + 1, csv_text

    # --- SQL console: an error with its code, then a result
    page.get_by_role("link", name="SQL").click()
    editor = page.get_by_label("SQL statement")
    editor.fill("SELEC 1")
    editor.press("Control+Enter")
    expect(page.get_by_test_id("sql-error")).to_contain_text("invalid_query")
    editor.fill("SELECT app_id, count() AS n FROM events GROUP BY app_id ORDER BY app_id")
    editor.press("Control+Enter")
    expect(page.get_by_role("cell", name="shop", exact=True)).to_be_visible()
    with page.expect_download() as dl:
        page.get_by_role("button", name="CSV", exact=True).click()
    sql_csv = open(dl.value.path()).read().splitlines()
    assert sql_csv[0] == "app_id,n" and any(l.startswith("shop,") for l in sql_csv), sql_csv
    run.safe(page, "sql")
    run.shot(page, "sql")
    run.check_axe(page, "sql")

    # --- apps: create one, the key is shown once, events sent with it appear
    page.get_by_role("link", name="Apps").click()
    page.get_by_label("Name").fill("New Web")
    page.get_by_label("Id (optional)").fill("new_web")
    page.get_by_role("button", name="Create", exact=True).click()
    key = page.get_by_test_id("new-key").inner_text().strip()
    assert key and "x-api-key: " + key in page.get_by_test_id("curl-line").inner_text()
    run.shot(page, "apps-new-key")
    run.check_axe(page, "apps")
    evs = [{"event_type": "install", "device_id": f"w{i}", "platform": "web"} for i in range(5)]
    assert api.call("POST", "/v1/events", evs, key=key)["accepted"] == 5
    assert wait_rows(api, "SELECT count() FROM events WHERE app_id = 'new_web'", 5) == 5
    page.reload()
    expect(page.get_by_test_id("new-key")).to_have_count(0)  # shown once
    # Revoke that key in the UI (a confirm dialog): the API refuses it from then on.
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Keys and settings").nth(
        [x["id"] for x in api.call("GET", "/api/apps")["apps"]].index("new_web")).click()
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_role("cell", name="revoked", exact=False).first).to_be_visible()
    req = urllib.request.Request(a.base + "/v1/events", data=json.dumps(evs[0]).encode(), method="POST",
                                 headers={"content-type": "application/json", "x-api-key": key})
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("a revoked key was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 401, e.code
    page.goto(a.base + "/dashboard?app=new_web")
    expect(page.locator('[data-stat="Total events"]')).to_have_text("5")
    page.get_by_role("link", name="SQL").click()
    editor = page.get_by_label("SQL statement")
    editor.fill("SELECT count() AS n FROM events WHERE app_id = 'new_web'")
    editor.press("Control+Enter")
    expect(page.locator(".results tbody td").first).to_have_text("5")

    # --- admin pages
    page.get_by_role("link", name="Users").click()
    expect(page.locator("td").filter(has_text="ana@example.com").first).to_be_visible()
    # Create a user through the form, then disable it: the API sees both.
    form = page.get_by_role("region", name="Create a user")
    form.get_by_label("Email").fill("max@example.com")
    form.get_by_label("Initial password").fill("max-password-123")
    form.get_by_label("Role").select_option("user")
    form.get_by_label("shop").check()
    form.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status").filter(has_text="Created max@example.com")).to_be_visible()
    page.get_by_role("button", name="Disable max@example.com").click()
    expect(page.get_by_role("status").filter(has_text="Disabled max@example.com")).to_be_visible()
    maxu = [u for u in api.call("GET", "/api/admin/users")["users"] if u["email"] == "max@example.com"][0]
    assert maxu["disabled"] and maxu["app_access"] == ["shop"] and maxu["roles"] == ["user"], maxu
    run.shot(page, "admin-users")
    run.check_axe(page, "admin-users")
    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_test_id("chain-status")).to_contain_text("Verified")
    page.get_by_label("Action").fill("apps.create")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr").first).to_contain_text("apps.create")
    run.shot(page, "admin-audit")
    run.check_axe(page, "admin-audit")
    page.get_by_role("link", name="Cluster").click()
    expect(page.get_by_role("cell", name="leader")).to_be_visible()
    run.shot(page, "admin-cluster")
    run.check_axe(page, "admin-cluster")
    run.safe(page, "admin")

    # --- silent refresh: the page renews its token from the cookie before it expires
    if a.token_ttl:
        refreshes = []
        page.on("response", lambda r: refreshes.append(r.status) if "/api/auth/refresh" in r.url else None)
        page.wait_for_timeout(int((a.token_ttl - 30 + 3) * 1000))
        page.get_by_role("link", name="Dashboard").click()
        expect(page.locator('[data-stat="Total events"]')).to_be_visible()
        assert refreshes and all(s == 200 for s in refreshes), refreshes
        out["silent_refresh"] = True
    # --- logout
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("Password")).to_be_visible()
    page.reload()
    expect(page.get_by_label("Password")).to_be_visible()
    # Logging in again opens the dashboard on the app used last (new_web), not the first.
    with page.expect_response(lambda r: "/api/dashboard/stats" in r.url) as again:
        run.login(page, ADMIN, a.password)
    assert "app_id=new_web" in again.value.url, again.value.url
    ctx.close()

    # --- a user granted one app never sees another
    ctx = run.context()
    page = ctx.new_page()
    run.login(page, "ana@example.com", "analyst-password-1")
    expect(page.locator('[data-stat="Total events"]')).to_be_visible()
    options = page.get_by_label("App").locator("option").all_inner_texts()
    assert options == ["Shop (shop)"], options
    nav = page.get_by_role("navigation", name="Main").inner_text()
    assert "Users" not in nav and "Audit" not in nav and "Cluster" not in nav, nav
    page.goto(a.base + "/dashboard?app=games")
    expect(page.get_by_label("App")).to_have_value("shop")
    page.get_by_role("link", name="SQL").click()
    editor = page.get_by_label("SQL statement")
    editor.fill("SELECT DISTINCT app_id FROM events ORDER BY app_id")
    editor.press("Control+Enter")
    expect(page.locator(".results tbody td")).to_have_text(["shop"])
    run.shot(page, "user-one-app-sql")
    page.goto(a.base + "/admin/users")
    expect(page.get_by_role("heading", name="No access to this page")).to_be_visible()
    run.shot(page, "user-no-access")
    # --- the session ends (an admin disables the user): back to the login page, with a notice
    ana = [u for u in api.call("GET", "/api/admin/users")["users"] if u["email"] == "ana@example.com"][0]
    api.call("PATCH", f"/api/admin/users/{ana['id']}", {"disabled": True})
    page.get_by_role("link", name="Dashboard").click()
    # (The panels may show their loading status first: wait for the login form.)
    expect(page.get_by_label("Password")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="session has expired")).to_be_visible()
    api.call("PATCH", f"/api/admin/users/{ana['id']}", {"disabled": False})
    ctx.close()

    # --- readonly: no dashboard data
    ctx = run.context()
    page = ctx.new_page()
    run.login(page, "ro@example.com", "readonly-password-1")
    expect(page.get_by_role("heading", name="Apps and keys")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main").inner_text()
    assert "Dashboard" not in nav and "SQL" not in nav, nav
    page.goto(a.base + "/dashboard")
    expect(page.get_by_role("heading", name="No dashboard access")).to_be_visible()
    expect(page.locator("[data-stat]")).to_have_count(0)
    run.shot(page, "readonly")
    run.check_axe(page, "readonly")
    ctx.close()


if __name__ == "__main__":
    main()
