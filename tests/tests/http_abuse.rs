//! TESTPLAN FZ-02 against a running server: slowloris headers, slow bodies, 10k headers,
//! chunked-encoding abuse, oversize and gzip-bomb bodies, wrong content types, and more
//! connections than `http.max_connections`. Each gets a 4xx or a closed connection within the
//! configured timeouts, the node's memory stays bounded and it keeps serving. Also the
//! parameter parsers of the dashboard, attribution and fraud routes on random garbage: a 4xx
//! in the API's error shape, never a 5xx.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use unmogrowp_tests::TestNode;

fn node() -> (tempfile::TempDir, TestNode) {
    let dir = tempfile::tempdir().unwrap();
    let mut n = TestNode::new(
        dir.path().join("node"),
        &[
            ("UNMOGROWP_HTTP__HEADER_READ_TIMEOUT_SECS", "2"),
            ("UNMOGROWP_HTTP__BODY_READ_TIMEOUT_SECS", "2"),
            ("UNMOGROWP_HTTP__MAX_CONNECTIONS", "64"),
        ],
    );
    n.start();
    (dir, n)
}

fn connect(n: &TestNode) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", n.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

/// Reads until the server closes (or 15 s pass); returns what arrived and how long it took.
fn read_to_close(s: &mut TcpStream) -> (String, Duration) {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => out.extend_from_slice(&buf[..k]),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), t0.elapsed())
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or("")
}

fn healthy(n: &TestNode) {
    let a = n.get("/health");
    assert_eq!(a.status, 200, "{}", a.body);
}

#[test]
fn slow_clients_odd_framing_and_connection_floods_are_bounded() {
    let (_d, n) = node();
    let idle_kib = n.memory_kib("VmRSS");

    // Slowloris: a header line trickled one byte at a time is cut off at the header timeout.
    let mut s = connect(&n);
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let t0 = Instant::now();
    let mut closed = false;
    while t0.elapsed() < Duration::from_secs(10) {
        if s.write_all(b"a").is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let (_, _) = read_to_close(&mut s);
    assert!(closed || t0.elapsed() < Duration::from_secs(10));
    assert!(
        t0.elapsed() < Duration::from_secs(6),
        "slowloris connection held for {:?}",
        t0.elapsed()
    );
    healthy(&n);

    // A body that stops arriving: the request fails after the body timeout.
    let mut s = connect(&n);
    s.write_all(b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"email\":")
        .unwrap();
    let (answer, took) = read_to_close(&mut s);
    assert!(took < Duration::from_secs(8), "stalled body held {took:?}");
    assert!(
        answer.is_empty() || status_line(&answer).contains(" 4"),
        "{}",
        status_line(&answer)
    );
    healthy(&n);

    // 10,000 headers: 431.
    let mut s = connect(&n);
    let mut req = String::from("GET /health HTTP/1.1\r\nHost: x\r\n");
    for i in 0..10_000 {
        req.push_str(&format!("X-H{i}: v\r\n"));
    }
    req.push_str("\r\n");
    let _ = s.write_all(req.as_bytes());
    let (answer, _) = read_to_close(&mut s);
    assert!(
        answer.is_empty() || status_line(&answer).contains(" 431"),
        "{}",
        status_line(&answer)
    );

    // Chunked-encoding abuse: a bad chunk size, an overflowing one, CL with TE, junk after.
    for body in [
        "zz\r\nabc\r\n0\r\n\r\n",
        "ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
        "3;ext=\"\r\nabc\r\n0\r\n\r\n",
        "5\r\nabc\r\n0\r\n\r\n",
    ] {
        let mut s = connect(&n);
        let req = format!(
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Api-Key: nope\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
        );
        s.write_all(req.as_bytes()).unwrap();
        let (answer, took) = read_to_close(&mut s);
        let line = status_line(&answer);
        assert!(answer.is_empty() || line.contains(" 4"), "{body:?}: {line}");
        assert!(took < Duration::from_secs(8), "{body:?} held {took:?}");
        healthy(&n);
    }
    let mut s = connect(&n);
    s.write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        .unwrap();
    let (answer, _) = read_to_close(&mut s);
    assert!(
        answer.is_empty() || status_line(&answer).contains(" 4"),
        "{}",
        status_line(&answer)
    );

    // Oversize body and a gzip bomb: 413; a wrong content type on the query API: 4xx.
    let key = n.app_key("shop");
    let big = vec![b' '; 40 << 20];
    let a = n
        .try_post_raw(
            "/v1/events",
            &[
                ("x-api-key", key.as_str()),
                ("content-type", "application/json"),
            ],
            &big,
        )
        .unwrap();
    assert_eq!(a.status, 413, "{}", a.body);
    let bomb = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![b' '; 512 << 20]).unwrap();
        e.finish().unwrap()
    };
    let a = n
        .try_post_raw(
            "/v1/events",
            &[
                ("x-api-key", key.as_str()),
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            &bomb,
        )
        .unwrap();
    assert_eq!(a.status, 413, "{}", a.body);
    let token = n.admin_token();
    let auth = format!("Bearer {token}");
    let a = n
        .try_post_raw(
            "/api/analytics/query",
            &[
                ("authorization", auth.as_str()),
                ("content-type", "text/plain"),
            ],
            b"SELECT 1",
        )
        .unwrap();
    assert!((400..500).contains(&a.status), "{} {}", a.status, a.body);

    // More connections than http.max_connections (64): the extra ones are closed at once,
    // idle ones are cut at the header timeout, and then the node serves again.
    let conns: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", n.port)).ok())
        .collect();
    assert!(
        conns.len() >= 150,
        "only {} connections opened",
        conns.len()
    );
    std::thread::sleep(Duration::from_secs(4));
    drop(conns);
    let t0 = Instant::now();
    loop {
        if let Ok(a) = n.try_get("/health") {
            if a.status == 200 {
                break;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "not serving after the flood"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = n
        .metric("unmogrowp_http_connections_refused_total")
        .unwrap();
    assert!(
        refused > 0.0,
        "no connection was refused past http.max_connections"
    );
    let peak = n.memory_kib("VmHWM");
    assert!(
        peak < idle_kib + 1024 * 1024,
        "peak RSS {} MiB vs idle {} MiB",
        peak / 1024,
        idle_kib / 1024
    );
    assert!(n.get("/ready").status == 200);
}

#[test]
fn dashboard_attribution_and_fraud_parameters_never_answer_5xx() {
    let (_d, n) = node();
    let _ = n.app_key("shop");
    let token = n.admin_token();
    let routes = [
        "/api/dashboard/stats",
        "/api/dashboard/charts/events-over-time",
        "/api/dashboard/charts/platforms",
        "/api/dashboard/charts/top-campaigns",
        "/api/dashboard/charts/user-retention",
        "/api/dashboard/charts/funnel",
        "/api/analytics/attribution",
        "/api/analytics/fraud",
    ];
    let params = [
        "app_id",
        "from",
        "to",
        "interval",
        "limit",
        "days",
        "cohort_event",
        "steps",
        "window",
        "source",
        "model",
        "conversion",
        "click_window",
        "view_window",
        "reattribution_window",
        "half_life",
        "exclude_fraud",
        "min_click_to_install",
        "max_clicks_per_device",
        "max_clicks_per_ip",
        "deny_ips",
    ];
    let values = [
        "shop",
        "",
        "-1",
        "0",
        "1",
        "9223372036854775807",
        "-9223372036854775808",
        "99999999999999999999",
        "1e400",
        "NaN",
        "2026-01-01T00:00:00Z",
        "2026-13-45T99:00:00Z",
        "1767225600000",
        "hour",
        "day",
        "week",
        "7d",
        "-7d",
        "999999999d",
        "0d",
        "1h",
        "ms",
        "ad_click,install,purchase",
        ",,,,",
        "a%00b",
        "%FF%FE",
        "%E2%9C%93",
        "last_touch",
        "time_decay",
        "linear",
        "rollup",
        "scan",
        "true",
        "maybe",
        "10.0.0.0/8",
        "::1/129",
        "1.2.3.4,not-an-ip",
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(22);
    let auth = format!("Bearer {token}");
    let mut by_status = std::collections::BTreeMap::<u16, u64>::new();
    for i in 0..1500 {
        let route = routes[rng.gen_range(0..routes.len())];
        let mut q = vec![format!(
            "app_id={}",
            if rng.gen_bool(0.8) {
                "shop"
            } else {
                values[rng.gen_range(0..values.len())]
            }
        )];
        for _ in 0..rng.gen_range(0..6) {
            let p = params[rng.gen_range(0..params.len())];
            let v = if rng.gen_bool(0.1) {
                "9".repeat(rng.gen_range(1..5000))
            } else {
                values[rng.gen_range(0..values.len())].to_string()
            };
            q.push(format!("{p}={v}"));
        }
        if rng.gen_bool(0.05) {
            q.push(format!("steps={}", vec!["install"; 500].join(",")));
        }
        let path = format!("{route}?{}", q.join("&"));
        let a = n
            .try_get_raw(&path, &[("authorization", auth.as_str())])
            .unwrap_or_else(|e| panic!("#{i} {path}: transport error {e}"));
        *by_status.entry(a.status).or_default() += 1;
        assert!(a.status < 500, "#{i} {path}: {} {}", a.status, a.body);
        if a.status >= 400 {
            assert!(
                a.body["error"]["code"].is_string(),
                "#{i} {path}: {}",
                a.body
            );
        }
    }
    println!("parameter fuzz: answers by status {by_status:?}");
    healthy(&n);
}
