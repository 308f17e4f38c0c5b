#!/usr/bin/env python3
"""Runs the query set (queries.py) hot against the appliance's SQL endpoint, DuckDB and chDB
over the very same Parquet segment files, and prints a markdown table: median of `--runs`
timed runs after one warm-up, and the geometric mean of the per-query ratios.

  python3 bench/sql/run.py --url http://127.0.0.1:18080 --password PW --segments DIR
"""

import argparse
import http.client
import json
import math
import statistics
import sys
import time
import urllib.parse

import chdb.session
import duckdb

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from queries import Q  # noqa: E402


class Appliance:
    def __init__(self, url, password):
        u = urllib.parse.urlparse(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
        body = self.call("/api/auth/login", {"email": "admin@localhost", "password": password}, auth=False)
        self.token = body["access_token"]
        self.server_ms = {}

    def call(self, path, payload, auth=True):
        headers = {"content-type": "application/json"}
        if auth:
            headers["authorization"] = f"Bearer {self.token}"
        try:
            self.conn.request("POST", path, json.dumps(payload), headers)
            r = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closed the keep-alive connection while DuckDB and chDB ran: once more
            # on a new one (queries only read).
            self.conn.close()
            self.conn.request("POST", path, json.dumps(payload), headers)
            r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"{path}: {r.status} {data[:300]!r}")
        return json.loads(data)

    def run(self, sql):
        body = self.call("/api/analytics/query", {"sql": sql})
        self.last_server_ms = body["elapsed_ms"]
        return body["rows"]


def numbers(rows):
    """The numeric cells of each row (numbers, and strings that are numbers: chDB quotes
    64-bit integers), floats rounded to 2 decimals, rows sorted: what the engines must agree
    on whatever their types, timestamp formats and order of ties."""
    out = []
    for row in rows:
        cells = []
        for v in row:
            if isinstance(v, bool) or v is None:
                continue
            if isinstance(v, str):
                try:
                    v = float(v)
                except ValueError:
                    continue
            if isinstance(v, (int, float)):
                cells.append(round(float(v), 2))
        out.append(tuple(cells))
    return sorted(out)


def timed(fn, runs):
    fn()  # warm-up
    times = []
    out = None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:18080")
    ap.add_argument("--password", required=True)
    ap.add_argument("--segments", required=True, help="the generation's segments/ directory")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default="", help="comma-separated parts of query names")
    args = ap.parse_args()
    glob = f"{args.segments.rstrip('/')}/**/*.parquet"

    app = Appliance(args.url, args.password)
    duck = duckdb.connect()
    duck.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{glob}', hive_partitioning = false)")
    ch = chdb.session.Session()
    ch.query("CREATE DATABASE IF NOT EXISTS bench ENGINE = Atomic")
    ch.query(f"CREATE VIEW IF NOT EXISTS bench.events AS SELECT * FROM file('{glob}', Parquet)")
    ch.query("USE bench")

    rows = []
    for q in Q:
        if args.only and not any(part in q["name"] for part in args.only.split(",")):
            continue
        a_ms, a_out = timed(lambda: app.run(q["appliance"]), args.runs)
        server_ms = app.last_server_ms
        d_ms, d_out = timed(lambda: duck.execute(q["duckdb"]).fetchall(), args.runs)
        c_ms, c_out = timed(lambda: ch.query(q["chdb"], "JSONCompact"), args.runs)
        c_rows = json.loads(str(c_out))["data"] if str(c_out).strip() else []
        agree = len(a_out) == len(d_out) == len(c_rows)
        values = numbers(a_out) == numbers(d_out), numbers(a_out) == numbers(c_rows)
        rows.append((q, a_ms, server_ms, d_ms, c_ms, agree, len(a_out), values))
        print(f"{q['name']:32} appliance {a_ms:8.1f} ms (server {server_ms:7.1f})  duckdb {d_ms:8.1f}  chdb {c_ms:8.1f}"
              f"  rows {len(a_out)}/{len(d_out)}/{len(c_rows)}", file=sys.stderr, flush=True)

    def geomean(xs):
        return math.exp(sum(math.log(x) for x in xs) / len(xs))

    yn = lambda b: "yes" if b else "NO"  # noqa: E731
    print("| query | kind | appliance ms (HTTP) | appliance ms (engine) | DuckDB ms | chDB ms | vs DuckDB | vs chDB | rows agree | numbers = DuckDB / chDB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    for q, a, s, d, c, agree, n, (vd, vc) in rows:
        print(f"| {q['name']} | {q['kind']} | {a:.1f} | {s:.1f} | {d:.1f} | {c:.1f} | {a / d:.2f} | {a / c:.2f} | {yn(agree)} ({n}) | {yn(vd)} / {yn(vc)} |")
    gd = geomean([r[1] / r[3] for r in rows])
    gc = geomean([r[1] / r[4] for r in rows])
    gsd = geomean([r[2] / r[3] for r in rows])
    gsc = geomean([r[2] / r[4] for r in rows])
    print(f"\nGeometric mean of appliance/peer time (HTTP end to end): vs DuckDB {gd:.2f}, vs chDB {gc:.2f}; "
          f"engine time only: vs DuckDB {gsd:.2f}, vs chDB {gsc:.2f} (below 1 = appliance faster).")
    dash = [a for q, a, *_ in rows if q["kind"] == "dashboard"]
    if dash:
        print(f"Dashboard queries: max {max(dash):.1f} ms end to end.")


if __name__ == "__main__":
    main()
