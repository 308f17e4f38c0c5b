"""A loopback stand-in for ClickHouse's HTTP interface backed by the real ClickHouse engine
embedded in PyPI `chdb`: each POST's statement (URL `query` or the body, with the body as the
INSERT's data) is handed to chdb unchanged; URL parameters other than `query`, `database`,
`user` and `password` become the statement's SETTINGS, as ClickHouse applies them. Used by
tests/tests/mirror_clickhouse_modern.rs to check the mirror's modern schema (DateTime64, Map,
insert_deduplication_token) on a current engine. Usage: chdb_http.py PORT DATA_DIR
"""
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlparse

from chdb import session

PORT, PATH = int(sys.argv[1]), sys.argv[2]
SESSION = session.Session(PATH)
LOCK = threading.Lock()


def with_settings(sql, settings):
    if not settings:
        return sql
    clause = "SETTINGS " + ", ".join("%s = '%s'" % (k, v.replace("'", "\\'")) for k, v in settings)
    # INSERT INTO t [SETTINGS …] FORMAT F: settings go before FORMAT.
    m = re.match(r"(?is)^(\s*INSERT\s+INTO\s+\S+)(.*)$", sql)
    if m:
        return m.group(1) + " " + clause + m.group(2)
    return sql + " " + clause


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        url = urlparse(self.path)
        params = parse_qsl(url.query, keep_blank_values=True)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8") if n else ""
        query = next((v for k, v in params if k == "query"), None)
        db = next((v for k, v in params if k == "database"), "default")
        settings = [(k, v) for k, v in params if k not in ("query", "database", "user", "password")]
        if query is None:
            sql, data = body, ""
        else:
            sql, data = query, body
        sql = with_settings(sql.strip().rstrip(";"), settings)
        if data:
            sql = sql + "\n" + data
        try:
            with LOCK:
                if db != "default":
                    SESSION.query("CREATE DATABASE IF NOT EXISTS %s" % db)
                    SESSION.query("USE %s" % db)
                res = SESSION.query(sql, "TabSeparated")
            out = res.bytes() if hasattr(res, "bytes") else str(res).encode()
            self.answer(200, out or b"")
        except Exception as e:  # ClickHouse answers errors with 500 and the message
            self.answer(500, ("Code: 0. DB::Exception: %s" % e).encode())

    do_GET = do_POST


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
