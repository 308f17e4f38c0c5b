"""What the benchmark scripts share: the command line, logging in, GETs, and timing."""

import argparse
import http.client
import json
import time
import urllib.parse


def arguments(doc, **defaults):
    """The common options (--url, --password, --segments, --app, --runs) plus `defaults`."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--url", default="http://127.0.0.1:18080")
    ap.add_argument("--password", required=True)
    ap.add_argument("--segments", required=True)
    ap.add_argument("--app", default="app_00")
    for name, value in defaults.items():
        ap.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    return ap.parse_args()


class Appliance:
    """One keep-alive connection, logged in as the admin."""

    def __init__(self, url, password):
        u = urllib.parse.urlparse(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
        self.password = password
        self.login()

    def login(self):
        self.conn.request("POST", "/api/auth/login",
                          json.dumps({"email": "admin@localhost", "password": self.password}),
                          {"content-type": "application/json"})
        self.token = json.loads(self.conn.getresponse().read())["access_token"]

    def send(self, path):
        send = lambda: self.conn.request("GET", path, headers={"authorization": f"Bearer {self.token}"})
        try:
            send()
            return self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closed the idle keep-alive connection (e.g. while DuckDB ran): the
            # request never started; send it again on a new connection.
            self.conn.close()
            send()
            return self.conn.getresponse()

    def get(self, path):
        r = self.send(path)
        body = r.read()
        if r.status == 401:
            # The access token expired (a suite over 1B events outlasts it): log in again.
            self.login()
            r = self.send(path)
            body = r.read()
        if r.status != 200:
            raise RuntimeError(f"GET {path}: {r.status} {body[:300]!r}")
        return json.loads(body)


def times_ms(fn, runs):
    """Calls `fn` once to warm up, then `runs` times; the times in ms and the last answer."""
    fn()
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times, out
