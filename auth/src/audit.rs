//! The audit log: one record per security event, in log order, hash-chained.
//!
//! Record `n` stores `hash = SHA-256(prev_hash ‖ canonical JSON of the record without hash)`,
//! where `prev_hash` is record `n-1`'s hash (64 zeros for the first). Verification recomputes
//! every hash and link and checks the sequence numbers are contiguous, so an edited, deleted
//! or reordered record is reported by its sequence number. Truncating the tail leaves a valid
//! shorter chain; it is detected against a checkpoint (`seq`, `hash`) taken earlier (the head
//! is also kept separately in the store and compared).
//!
//! Retention (`audit.retention_days`, issue 29) removes the oldest records: the store then
//! keeps an [`AuditBase`] — the last removed record's sequence number and hash, signed with a
//! key of the cluster — and the chain is verified from it ([`verify_after`]), so a record
//! removed outside retention, or a base moved by hand, is still reported.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest stored text field (longer input is cut and marked).
pub const MAX_FIELD_CHARS: usize = 256;
pub const MAX_DETAIL_CHARS: usize = 2048;
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What the proposing node knows about a security event; the outcome may be decided when the
/// request is applied.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AuditEvent {
    /// User id, `key:<id>`, `anonymous`, or `system`.
    pub actor: String,
    pub source_ip: String,
    /// e.g. `auth.login`, `apps.create`, `query.execute`, `request.denied`.
    pub action: String,
    pub target: String,
    /// Set when the proposer already knows it (e.g. `denied`); otherwise the apply result.
    pub outcome: Option<String>,
    pub detail: String,
}

/// One stored record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditRecord {
    pub seq: u64,
    pub at_ms: i64,
    pub node: u64,
    pub actor: String,
    pub source_ip: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
    /// Raft log index of the entry that wrote it.
    pub log_index: u64,
    /// The `x-request-id` of the HTTP request that caused it; empty for records written
    /// before request ids existed or outside a request. Hashed only when present, so older
    /// chains still verify.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Makes user-controlled text safe to store and show: control characters (CR, LF, ESC, …)
/// become visible `\u{..}` escapes and the length is capped (TESTPLAN AUD-04).
pub fn sanitize(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars + 16));
    for (n, c) in s.chars().enumerate() {
        if n >= max_chars {
            out.push_str("…[truncated]");
            break;
        }
        if c.is_control() {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

impl AuditRecord {
    /// The hash of this record's content chained to `prev_hash`.
    pub fn compute_hash(&self) -> String {
        let mut body = serde_json::json!([
            self.seq,
            self.at_ms,
            self.node,
            self.actor,
            self.source_ip,
            self.action,
            self.target,
            self.outcome,
            self.detail,
            self.log_index,
        ]);
        if !self.request_id.is_empty() {
            if let Some(fields) = body.as_array_mut() {
                fields.push(self.request_id.clone().into());
            }
        }
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(body.to_string().as_bytes());
        hex::encode(h.finalize())
    }
}

/// The result of walking the chain.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VerifyReport {
    pub records: u64,
    pub ok: bool,
    /// Sequence number (or position) of the first bad record.
    pub first_bad_seq: Option<u64>,
    pub problem: Option<String>,
    pub head_seq: u64,
    pub head_hash: String,
}

/// Where the stored chain starts once retention removed its oldest records: the last
/// removed record, signed (HMAC-SHA-256 under the store's audit key) so that it cannot be
/// moved without the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditBase {
    /// The last removed record's sequence number and hash.
    pub seq: u64,
    pub hash: String,
    /// Its time, and how many records were removed in all.
    pub at_ms: i64,
    pub removed: u64,
    /// Hex HMAC-SHA-256 of the fields above.
    pub signature: String,
}

impl AuditBase {
    fn mac(key: &[u8], seq: u64, hash: &str, at_ms: i64, removed: u64) -> String {
        use hmac::{Hmac, Mac};
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
        mac.update(format!("unmogrowp-audit-base:{seq}:{hash}:{at_ms}:{removed}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    pub fn signed(key: &[u8], seq: u64, hash: String, at_ms: i64, removed: u64) -> Self {
        let signature = Self::mac(key, seq, &hash, at_ms, removed);
        Self {
            seq,
            hash,
            at_ms,
            removed,
            signature,
        }
    }

    /// Whether the signature is the key's.
    pub fn signature_ok(&self, key: &[u8]) -> bool {
        Self::mac(key, self.seq, &self.hash, self.at_ms, self.removed) == self.signature
    }
}

/// Verifies records given in stored (key) order, each as its storage key's sequence number
/// and raw bytes. `head` is the head recorded separately by the store; `checkpoint` an
/// earlier `(seq, hash)` that must still be in the chain.
pub fn verify<I>(
    records: I,
    head: Option<(u64, String)>,
    checkpoint: Option<(u64, String)>,
) -> VerifyReport
where
    I: IntoIterator<Item = (u64, Vec<u8>)>,
{
    verify_after(records, (0, GENESIS_HASH.to_string()), head, checkpoint)
}

/// [`verify`] of a chain whose records through `base` (`(seq, hash)` of the last removed
/// record) were removed: the first stored record must be `seq + 1` and link to `hash`. A
/// checkpoint at the base must match it; one before the base was removed with its record.
pub fn verify_after<I>(
    records: I,
    base: (u64, String),
    head: Option<(u64, String)>,
    checkpoint: Option<(u64, String)>,
) -> VerifyReport
where
    I: IntoIterator<Item = (u64, Vec<u8>)>,
{
    let (base_seq, base_hash) = base;
    if let Some((cs, ch)) = &checkpoint {
        if *cs == base_seq && *ch != base_hash && *cs > 0 {
            return VerifyReport {
                records: 0,
                ok: false,
                first_bad_seq: Some(*cs),
                problem: Some(format!("record {cs} differs from the checkpoint")),
                head_seq: base_seq,
                head_hash: base_hash,
            };
        }
    }
    let checkpoint = checkpoint.filter(|(cs, _)| *cs > base_seq);
    let mut prev_hash = base_hash;
    let mut expected_seq = base_seq + 1;
    let mut n = 0u64;
    let mut checkpoint_seen = false;
    let fail = |seq: u64, problem: String, n: u64, prev: &str| VerifyReport {
        records: n,
        ok: false,
        first_bad_seq: Some(seq),
        problem: Some(problem),
        head_seq: seq.saturating_sub(1),
        head_hash: prev.to_string(),
    };
    for (key_seq, bytes) in records {
        n += 1;
        let rec: AuditRecord = match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => {
                return fail(
                    key_seq,
                    format!("record {key_seq} does not decode: {e}"),
                    n,
                    &prev_hash,
                )
            }
        };
        if key_seq != expected_seq || rec.seq != key_seq {
            let at = expected_seq.min(key_seq);
            return fail(
                at,
                format!("expected record {expected_seq}, found key {key_seq} holding record {} (deleted or reordered)", rec.seq),
                n,
                &prev_hash,
            );
        }
        if rec.prev_hash != prev_hash {
            return fail(
                key_seq,
                format!("record {key_seq} does not link to record {}", key_seq - 1),
                n,
                &prev_hash,
            );
        }
        if rec.compute_hash() != rec.hash {
            return fail(
                key_seq,
                format!("record {key_seq} was modified (hash mismatch)"),
                n,
                &prev_hash,
            );
        }
        if let Some((cs, ch)) = &checkpoint {
            if *cs == key_seq {
                if *ch != rec.hash {
                    return fail(
                        key_seq,
                        format!("record {key_seq} differs from the checkpoint"),
                        n,
                        &prev_hash,
                    );
                }
                checkpoint_seen = true;
            }
        }
        prev_hash = rec.hash;
        expected_seq += 1;
    }
    let last = expected_seq - 1;
    if let Some((cs, _)) = &checkpoint {
        if !checkpoint_seen && *cs > 0 {
            return fail(
                last + 1,
                format!(
                    "the chain ends at record {last}, before checkpoint record {cs} (truncated)"
                ),
                n,
                &prev_hash,
            );
        }
    }
    if let Some((hs, hh)) = head {
        if hs != last || hh != prev_hash {
            return fail(last + 1, format!("the chain ends at record {last} but the store's head is record {hs} (truncated or head altered)"), n, &prev_hash);
        }
    }
    VerifyReport {
        records: n,
        ok: true,
        first_bad_seq: None,
        problem: None,
        head_seq: last,
        head_hash: prev_hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let mut r = AuditRecord {
                    seq,
                    at_ms: seq as i64,
                    node: 1,
                    actor: "a".into(),
                    source_ip: "127.0.0.1".into(),
                    action: "x".into(),
                    target: format!("t{seq}"),
                    outcome: "success".into(),
                    detail: String::new(),
                    log_index: seq,
                    // Records with and without a request id share one chain.
                    request_id: if seq % 2 == 0 {
                        format!("req-{seq}")
                    } else {
                        String::new()
                    },
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                r.hash = r.compute_hash();
                prev = r.hash.clone();
                r
            })
            .collect()
    }

    fn raw(rs: &[AuditRecord]) -> Vec<(u64, Vec<u8>)> {
        rs.iter()
            .map(|r| (r.seq, serde_json::to_vec(r).expect("json")))
            .collect()
    }

    #[test]
    fn detects_edit_delete_swap_and_truncation() {
        let c = chain(10);
        assert!(verify(raw(&c), Some((10, c[9].hash.clone())), None).ok);
        let mut edited = raw(&c);
        edited[4].1 = serde_json::to_vec(&AuditRecord {
            target: "evil".into(),
            ..c[4].clone()
        })
        .expect("json");
        assert_eq!(verify(edited, None, None).first_bad_seq, Some(5));
        let mut retagged = raw(&c);
        retagged[5].1 = serde_json::to_vec(&AuditRecord {
            request_id: "someone-else".into(),
            ..c[5].clone()
        })
        .expect("json");
        assert_eq!(verify(retagged, None, None).first_bad_seq, Some(6));
        let mut deleted = raw(&c);
        deleted.remove(6);
        assert_eq!(verify(deleted, None, None).first_bad_seq, Some(7));
        let mut swapped = raw(&c);
        let (a, b) = (swapped[2].1.clone(), swapped[3].1.clone());
        swapped[2].1 = b;
        swapped[3].1 = a;
        assert_eq!(verify(swapped, None, None).first_bad_seq, Some(3));
        let truncated = raw(&c[..8]);
        let r = verify(truncated.clone(), None, Some((9, c[8].hash.clone())));
        assert!(!r.ok && r.first_bad_seq == Some(9), "{r:?}");
        assert!(!verify(truncated, Some((10, c[9].hash.clone())), None).ok);
    }

    #[test]
    fn sanitize_escapes_control_characters_and_caps_length() {
        assert_eq!(
            sanitize("a\r\nb\u{1b}[31m", 100),
            "a\\u{d}\\u{a}b\\u{1b}[31m"
        );
        let long = "x".repeat(1_000_000);
        assert!(sanitize(&long, MAX_FIELD_CHARS).chars().count() < MAX_FIELD_CHARS + 20);
    }
}
