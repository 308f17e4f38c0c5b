//! TESTPLAN FZ-01 (CI slice): the ingest decoder and validator (`parse_events`, bytes → events)
//! on the seed corpus of the test plan and on random mutations of it, in-process. Every input
//! must come back as events or a per-request / per-event error: no panic, no input taking more
//! than a second, no allocation beyond the body limits. The coverage-guided campaign
//! (libFuzzer through cargo-fuzz) runs the same function: `fuzz/fuzz_targets/json_ingest_fuzz.rs`,
//! `./scripts/campaign.sh ingest-fuzz` (docs/reliability.md).

use std::io::Write;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use unmogrowp_server::ingest::{parse_events, IngestLimits, RequestContext};

fn ctx() -> RequestContext {
    RequestContext {
        received_at_ms: 1_767_225_600_000,
        peer_ip: Some("127.0.0.1".into()),
        user_agent: Some("fuzz".into()),
        key_app_id: Some("shop".into()),
        strict_fields: false,
        privacy: None,
        oldest_ms: None,
    }
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// The seed corpus of TESTPLAN FZ-01 plus valid events of every shape.
pub fn corpus() -> Vec<Vec<u8>> {
    let valid = br#"{"event_type":"purchase","device_id":"d1","user_id":"u1","platform":"ios","timestamp":1767225600000,"attribution":{"campaign":"c","source":"s"},"event_data":{"revenue":9.99,"currency":"USD","sku":"a"},"event_id":"6f1c7a52-0a43-4d39-9a7e-1b2f0c3d4e5f"}"#.to_vec();
    let mut c = vec![
        valid.clone(),
        [b"[".as_slice(), &valid, b",", &valid, b"]"].concat(),
        [valid.as_slice(), b"\n", &valid, b"\n"].concat(),
        [b"\xEF\xBB\xBF".as_slice(), &valid].concat(),
        b"\xff\xfe\xfd{\"event_type\":\"x\"}".to_vec(),
        b"{\"event_type\":\"\xc3\x28\"}".to_vec(),
        format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        format!(
            "{{\"event_type\":\"x\",\"event_data\":{}1{}}}",
            "{\"a\":".repeat(10_000),
            "}".repeat(10_000)
        )
        .into_bytes(),
        br#"{"event_type":"x","device_id":"d","timestamp":1e400}"#.to_vec(),
        br#"{"event_type":"x","device_id":"d","event_data":{"revenue":NaN}}"#.to_vec(),
        br#"{"event_type":"x","event_type":"y","device_id":"d","device_id":"e"}"#.to_vec(),
        br#"{"event_type":"\u0000","device_id":"\u0000\ud800"}"#.to_vec(),
        br#"{"event_type":"x","device_id":"d","timestamp":-9223372036854775808}"#.to_vec(),
        br#"{"event_type":"x","device_id":"d","timestamp":"9999-99-99T99:99:99Z"}"#.to_vec(),
        br#"{"event_type":"x","device_id":"d","event_data":{"revenue":1e308,"currency":"ZZZZ"}}"#
            .to_vec(),
        br#"{"event_type":"x","device_id":"d","event_id":"not-a-uuid","platform":"TV"}"#.to_vec(),
        br#"[{},{},null,1,"s",[]]"#.to_vec(),
        b"".to_vec(),
        b"   \n  ".to_vec(),
        b"null".to_vec(),
        gzip(&valid),
        format!(
            "{{\"event_type\":\"{}\",\"device_id\":\"d\"}}",
            "a".repeat(2 << 20)
        )
        .into_bytes(),
    ];
    // A string of 100 MB (over the body limit: refused before parsing).
    c.push(format!("{{\"event_type\":\"{}\"}}", "a".repeat(100 << 20)).into_bytes());
    c
}

fn run_one(input: &[u8], limits: &IngestLimits, encoding: Option<&str>) -> Duration {
    let t0 = Instant::now();
    let outcome = std::panic::catch_unwind(|| {
        let _ = parse_events(input, Some("application/json"), encoding, limits, &ctx());
    });
    if outcome.is_err() {
        let shown: Vec<u8> = input.iter().take(300).copied().collect();
        panic!(
            "parse_events panicked on {} bytes: {:?}",
            input.len(),
            String::from_utf8_lossy(&shown)
        );
    }
    t0.elapsed()
}

fn mutate(rng: &mut rand::rngs::StdRng, corpus: &[Vec<u8>], input: &mut Vec<u8>) {
    const TOKENS: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b"\"",
        b"\\u0000",
        b"\\ud800",
        b"1e400",
        b"-0",
        b"null",
        b"true",
        b"\"event_data\":{",
        b"\"attribution\":{",
        b"\"timestamp\":",
        b"\"event_id\":\"",
        b"\n",
        b"\xff",
        b"\xc3",
        b"NaN",
    ];
    for _ in 0..rng.gen_range(1..6) {
        let len = input.len();
        match rng.gen_range(0..6) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                input[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.gen_range(0..len);
                input.remove(i);
            }
            2 => {
                let i = rng.gen_range(0..=len);
                let t = TOKENS[rng.gen_range(0..TOKENS.len())];
                input.splice(i..i, t.iter().copied());
            }
            3 if len > 1 => {
                let a = rng.gen_range(0..len);
                let b = rng.gen_range(a..len);
                let piece = input[a..=b].to_vec();
                let i = rng.gen_range(0..=input.len());
                input.splice(i..i, piece);
            }
            4 => {
                let other = &corpus[rng.gen_range(0..corpus.len())];
                if !other.is_empty() && other.len() < 1 << 16 {
                    let cut = rng.gen_range(0..=input.len());
                    let from = rng.gen_range(0..other.len());
                    input.truncate(cut);
                    input.extend_from_slice(&other[from..]);
                }
            }
            _ => {
                let i = rng.gen_range(0..=len);
                input.insert(i, rng.gen());
            }
        }
    }
}

#[test]
fn json_ingest_fuzz_slice() {
    let execs: u64 = std::env::var("INGEST_FUZZ_EXECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let limits = IngestLimits::default();
    let corpus = corpus();
    let mut slowest = Duration::ZERO;
    for c in &corpus {
        slowest = slowest.max(run_one(c, &limits, None));
        slowest = slowest.max(run_one(c, &limits, Some("gzip")));
    }
    let small: Vec<Vec<u8>> = corpus.into_iter().filter(|c| c.len() < 1 << 16).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for i in 0..execs {
        let mut input = small[(i as usize) % small.len()].clone();
        mutate(&mut rng, &small, &mut input);
        let enc = if i % 16 == 0 {
            input = gzip(&input);
            Some("gzip")
        } else {
            None
        };
        slowest = slowest.max(run_one(&input, &limits, enc));
    }
    println!("FZ-01 slice: {execs} mutated inputs, slowest {slowest:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "slowest input took {slowest:?}"
    );
}
