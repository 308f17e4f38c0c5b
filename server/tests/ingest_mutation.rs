//! FZ-01 in miniature (the cargo-fuzz target is still to come): tens of thousands of mutated
//! and hostile bodies through decoding and validation. Every one must end in events, per-event
//! rejections or a request-level error; none may panic.

use rand::{Rng, SeedableRng};
use unmogrowp_server::ingest::{parse_events, IngestLimits, RequestContext};

fn seed_bodies() -> Vec<Vec<u8>> {
    let ev = r#"{"event_type":"purchase","app_id":"a","device_id":"d","user_id":"u","platform":"ios","timestamp":"2025-11-21T10:00:00Z","attribution":{"campaign":"c"},"event_data":{"revenue":"9.99","currency":"USD","n":1},"event_id":"9f3c1d2e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"}"#;
    vec![
        ev.as_bytes().to_vec(),
        format!("[{ev},{ev}]").into_bytes(),
        format!("{ev}\n{ev}\n").into_bytes(),
        b"[".repeat(10_000),
        format!("{}1{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
        br#"{"event_type":1e400,"app_id":"a","device_id":"d"}"#.to_vec(),
        br#"{"event_type":"x","app_id":"a","device_id":"d","timestamp":-9223372036854775808}"#
            .to_vec(),
        br#"{"event_type":"x","app_id":"a","device_id":"d","timestamp":1e300}"#.to_vec(),
        b"\xef\xbb\xbf{\"event_type\":\"x\"}".to_vec(),
        b"{\"event_type\":\"\\u0000\",\"app_id\":\"a\",\"device_id\":\"\\ud800\"}".to_vec(),
        b"\xff\xfe\xfd".to_vec(),
        br#"{"event_type":"x","event_type":"y","app_id":"a","device_id":"d"}"#.to_vec(),
    ]
}

#[test]
fn mutated_bodies_never_panic() {
    let limits = IngestLimits::default();
    let ctx = RequestContext {
        received_at_ms: 1_763_700_000_000,
        peer_ip: None,
        user_agent: None,
        key_app_id: None,
        strict_fields: false,
        privacy: None,
        oldest_ms: None,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let seeds = seed_bodies();
    let mut outcomes = [0usize; 3];
    for i in 0..40_000 {
        let mut b = seeds[i % seeds.len()].clone();
        for _ in 0..rng.gen_range(0..6) {
            if b.is_empty() {
                break;
            }
            let at = rng.gen_range(0..b.len());
            match rng.gen_range(0..4) {
                0 => b[at] = rng.gen(),
                1 => {
                    b.remove(at);
                }
                2 => b.insert(
                    at,
                    *b"{}[]\",:\\0e-".get(rng.gen_range(0..12)).unwrap_or(&b'x'),
                ),
                _ => b.truncate(at),
            }
        }
        for enc in [None, Some("gzip")] {
            match parse_events(&b, None, enc, &limits, &ctx) {
                Ok((ok, _)) if !ok.is_empty() => outcomes[0] += 1,
                Ok(_) => outcomes[1] += 1,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    outcomes[2] += 1;
                }
            }
        }
    }
    // The mutations exercise every path: some bodies stay valid, some events are rejected, some
    // bodies are refused whole.
    assert!(outcomes.iter().all(|n| *n > 100), "{outcomes:?}");
}
