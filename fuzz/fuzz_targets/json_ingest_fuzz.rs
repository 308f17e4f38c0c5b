//! TESTPLAN FZ-01 `json_ingest_fuzz`: bytes → events through the same function the HTTP
//! handler calls. The first byte picks the encoding (plain or gzip) so both decoders are
//! explored. Pass: no panic, no OOM (`-rss_limit_mb=2048`), no input slower than 1 s.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unmogrowp_server::ingest::{parse_events, IngestLimits, RequestContext};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let ctx = RequestContext {
        received_at_ms: 1_767_225_600_000,
        peer_ip: Some("127.0.0.1".into()),
        user_agent: None,
        key_app_id: if mode & 2 == 0 { Some("shop".into()) } else { None },
        strict_fields: mode & 4 == 4,
        privacy: None,
        oldest_ms: None,
    };
    let encoding = if mode & 1 == 1 { Some("gzip") } else { None };
    let _ = parse_events(body, Some("application/json"), encoding, &IngestLimits::default(), &ctx);
});
