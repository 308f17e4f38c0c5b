//! On-disk format of log segments.
//!
//! ```text
//! segment file  = header record*
//! header (32 B) = magic "UMGPWAL\0" | version u32 LE | crc32(all other header bytes) u32 LE
//!                 | first_index u64 LE | prev_end u64 LE
//! ```
//!
//! `prev_end` is the index the previous segment ended before (equal to `first_index` unless
//! the log was rewritten with a gap); recovery checks it against the previous segment, so a
//! missing segment is always detected.
//!
//! ```text
//! record        = payload_len u32 LE | crc32(index || payload) u32 LE | index u64 LE | payload
//! ```
//!
//! File names are the zero-padded first index, so lexical order is log order:
//! `00000000000000000001.wal`.

use std::path::{Path, PathBuf};

pub(crate) const MAGIC: &[u8; 8] = b"UMGPWAL\0";
pub(crate) const VERSION: u32 = 1;
pub(crate) const HEADER_LEN: u64 = 32;
pub(crate) const RECORD_HEADER_LEN: u64 = 16;
const SUFFIX: &str = ".wal";

pub(crate) fn segment_file_name(first_index: u64) -> String {
    format!("{first_index:020}{SUFFIX}")
}

pub(crate) fn segment_path(dir: &Path, first_index: u64) -> PathBuf {
    dir.join(segment_file_name(first_index))
}

/// Parses `00000000000000000042.wal` into 42; other names are not segments.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn header_crc(h: &[u8]) -> u32 {
    let mut c = crc32fast::Hasher::new();
    c.update(&h[0..12]);
    c.update(&h[16..32]);
    c.finalize()
}

pub(crate) fn encode_header(first_index: u64, prev_end: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first_index.to_le_bytes());
    h[24..32].copy_from_slice(&prev_end.to_le_bytes());
    let crc = header_crc(&h);
    h[12..16].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Why a header could not be accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderError {
    Short,
    AllZero,
    BadMagic,
    BadVersion(u32),
    BadCrc,
    WrongFirstIndex(u64),
}

/// Validates a header and returns its `prev_end`.
pub(crate) fn decode_header(buf: &[u8], expected_first: u64) -> Result<u64, HeaderError> {
    if buf.len() < HEADER_LEN as usize {
        return Err(HeaderError::Short);
    }
    let h = &buf[..HEADER_LEN as usize];
    if h.iter().all(|b| *b == 0) {
        return Err(HeaderError::AllZero);
    }
    if &h[0..8] != MAGIC {
        return Err(HeaderError::BadMagic);
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if version != VERSION {
        return Err(HeaderError::BadVersion(version));
    }
    let crc = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
    if crc != header_crc(h) {
        return Err(HeaderError::BadCrc);
    }
    let first = u64::from_le_bytes(read8(&h[16..24]));
    if first != expected_first {
        return Err(HeaderError::WrongFirstIndex(first));
    }
    Ok(u64::from_le_bytes(read8(&h[24..32])))
}

fn read8(b: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    a
}

fn record_crc(index: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&index.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Appends one encoded record to `out`.
pub(crate) fn encode_record(out: &mut Vec<u8>, index: u64, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&record_crc(index, payload).to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Result of decoding the record that starts at `buf[0]`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// A whole, checksummed record: its index and payload range within `buf`.
    Record {
        index: u64,
        payload: std::ops::Range<usize>,
    },
    /// `buf` ends inside the record.
    Truncated,
    /// The bytes are not a valid record (bad checksum or impossible length).
    Invalid(&'static str),
}

pub(crate) fn decode_record(buf: &[u8], max_record_len: u32) -> Decoded {
    if buf.len() < RECORD_HEADER_LEN as usize {
        return Decoded::Truncated;
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let index = u64::from_le_bytes(read8(&buf[8..16]));
    if len > max_record_len {
        return Decoded::Invalid("record length exceeds the configured maximum");
    }
    let end = RECORD_HEADER_LEN as usize + len as usize;
    if buf.len() < end {
        return Decoded::Truncated;
    }
    let payload = RECORD_HEADER_LEN as usize..end;
    if record_crc(index, &buf[payload.clone()]) != crc {
        return Decoded::Invalid("record checksum mismatch");
    }
    Decoded::Record { index, payload }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_in_log_order() {
        assert_eq!(segment_file_name(42), "00000000000000000042.wal");
        assert_eq!(parse_segment_name("00000000000000000042.wal"), Some(42));
        assert_eq!(parse_segment_name("42.wal"), None);
        assert_eq!(parse_segment_name("00000000000000000042.tmp"), None);
        assert!(segment_file_name(9) < segment_file_name(10));
    }

    #[test]
    fn record_roundtrip_and_corruption() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 7, b"hello");
        assert_eq!(
            decode_record(&buf, 1 << 20),
            Decoded::Record {
                index: 7,
                payload: 16..21
            }
        );
        assert_eq!(decode_record(&buf[..20], 1 << 20), Decoded::Truncated);
        buf[17] ^= 1;
        assert!(matches!(decode_record(&buf, 1 << 20), Decoded::Invalid(_)));
    }

    #[test]
    fn header_roundtrip() {
        let h = encode_header(5, 3);
        assert_eq!(decode_header(&h, 5), Ok(3));
        assert_eq!(decode_header(&h, 6), Err(HeaderError::WrongFirstIndex(5)));
        assert_eq!(decode_header(&[0u8; 32], 5), Err(HeaderError::AllZero));
        assert_eq!(decode_header(&h[..10], 5), Err(HeaderError::Short));
    }
}
