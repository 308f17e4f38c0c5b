#!/usr/bin/env python3
"""A web SDK in a real browser (Debian chromium driven by Playwright, never a downloaded
browser): serves a page from its own loopback origin and, from that page, posts one event
with fetch (key in the X-Api-Key header, so the browser sends a CORS preflight first) and one
with navigator.sendBeacon (key in ?api_key=, text/plain body, no preflight).

    sdk_cors.py --api http://127.0.0.1:8080 --key KEY --page-port 8089 --tag allowed

Prints one JSON object: what the page saw ({"fetch_status", "fetch_body", "fetch_error",
"beacon_queued"}). Called by tests/tests/browser_ingest.rs, which checks what was stored.
"""
import argparse
import http.server
import json
import os
import tempfile
import threading

from playwright.sync_api import sync_playwright

PAGE = """<!doctype html><meta charset="utf-8"><title>shop</title>
<script src="sdk.js"></script>"""

# What a minimal SDK does; run with the appliance's URL, the key and a tag for the events.
SDK = """
async function sendAll(api, key, tag) {
  const out = {};
  const ev = (kind) => ({event_type: kind, device_id: 'browser-' + tag, platform: 'web',
                         event_data: {page: {path: '/cart', title: 'Cart'}}});
  try {
    const r = await fetch(api + '/v1/events', {
      method: 'POST',
      headers: {'content-type': 'application/json', 'x-api-key': key},
      body: JSON.stringify([ev('fetch_' + tag)]),
    });
    out.fetch_status = r.status;
    out.fetch_body = await r.json();
  } catch (e) {
    out.fetch_error = String(e);
  }
  out.beacon_queued = navigator.sendBeacon(
    api + '/v1/events?api_key=' + encodeURIComponent(key),
    JSON.stringify(ev('beacon_' + tag)));
  return out;
}
"""

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def serve(port, root):
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=root, **k)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--api", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--page-port", type=int, required=True)
    p.add_argument("--tag", required=True)
    p.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as root:
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write(PAGE)
        with open(os.path.join(root, "sdk.js"), "w") as f:
            f.write(SDK)
        httpd = serve(a.page_port, root)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=a.chromium, args=CHROMIUM_ARGS)
                try:
                    page = browser.new_context().new_page()
                    page.goto(f"http://127.0.0.1:{a.page_port}/index.html")
                    out = page.evaluate("([api, key, tag]) => sendAll(api, key, tag)",
                                        [a.api, a.key, a.tag])
                    # Let the beacon leave before the browser closes.
                    page.wait_for_timeout(1000)
                finally:
                    browser.close()
        finally:
            httpd.shutdown()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
