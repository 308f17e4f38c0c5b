//! Opening a log directory: validating every segment and repairing only a torn tail.
//!
//! Rules (see the crate README):
//! - A sealed segment (any but the newest) must be fully valid: any bad or partial record is
//!   corruption and opening fails with the path and offset.
//! - In the newest segment, a bad or partial record is a torn tail (the process died during a
//!   write that was never acknowledged) only if no valid later record follows it; then the file
//!   is truncated there. If a valid record follows, it is mid-log corruption and opening fails.
//! - A zero-byte or all-zero header is accepted only on the newest segment (crash right after
//!   creating it) and rewritten.

use std::path::{Path, PathBuf};

use crate::env::FileSystem;
use crate::error::{Result, WalError};
use crate::format::{
    decode_header, decode_record, encode_header, parse_segment_name, segment_path, Decoded,
    HeaderError, HEADER_LEN, RECORD_HEADER_LEN,
};

/// What one segment holds after recovery.
#[derive(Debug)]
pub(crate) struct RecoveredSegment {
    pub(crate) first_index: u64,
    /// Where the previous segment ended when this one was created.
    pub(crate) prev_end: u64,
    pub(crate) path: PathBuf,
    /// File offset of record `first_index + i`.
    pub(crate) offsets: Vec<u64>,
    pub(crate) size: u64,
}

/// Facts about what recovery found and did, for logs and metrics.
#[derive(Debug, Default, Clone)]
pub struct RecoveryReport {
    pub segments: usize,
    pub records: u64,
    pub torn_tail_bytes_truncated: u64,
    pub headers_rewritten: usize,
}

pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut firsts = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| WalError::io(dir, e))? {
        let entry = entry.map_err(|e| WalError::io(dir, e))?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_segment_name) {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    Ok(firsts)
}

pub(crate) fn recover(
    fs: &dyn FileSystem,
    dir: &Path,
    max_record_len: u32,
) -> Result<(Vec<RecoveredSegment>, RecoveryReport)> {
    let firsts = list_segments(dir)?;
    let mut report = RecoveryReport::default();
    let mut out: Vec<RecoveredSegment> = Vec::with_capacity(firsts.len());
    for (i, first) in firsts.iter().copied().enumerate() {
        let is_last = i + 1 == firsts.len();
        let path = segment_path(dir, first);
        let seg = recover_segment(fs, &path, first, is_last, max_record_len, &mut report)?;
        if let Some(prev) = out.last() {
            let expected = prev.first_index + prev.offsets.len() as u64;
            let prev_ok = seg.prev_end == expected
                || (seg.prev_end == PREV_END_UNKNOWN && seg.first_index == expected);
            if !prev_ok || seg.first_index < expected {
                return Err(WalError::Gap(format!(
                    "segment {} (first index {}) was written after a segment ending before {}, \
                     but the segment before it on disk ends before {}: a segment is missing or truncated",
                    path.display(),
                    seg.first_index,
                    seg.prev_end,
                    expected
                )));
            }
        }
        report.records += seg.offsets.len() as u64;
        out.push(seg);
    }
    report.segments = out.len();
    Ok((out, report))
}

fn recover_segment(
    fs: &dyn FileSystem,
    path: &Path,
    first: u64,
    is_last: bool,
    max_record_len: u32,
    report: &mut RecoveryReport,
) -> Result<RecoveredSegment> {
    let buf = std::fs::read(path).map_err(|e| WalError::io(path, e))?;
    let corrupt = |offset: u64, reason: String| WalError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let prev_end = match decode_header(&buf, first) {
        Ok(p) => p,
        Err(HeaderError::Short) | Err(HeaderError::AllZero)
            if is_last && buf.iter().all(|b| *b == 0) =>
        {
            tracing::warn!(path = %path.display(), len = buf.len(),
                "newest log segment has no durable header (crash during creation); rewriting it");
            // Its predecessor is whatever is on disk before it (checked by the caller's
            // continuity rule only when it matters: an empty newest segment holds nothing).
            rewrite_header(fs, path, first, first)?;
            report.headers_rewritten += 1;
            return Ok(RecoveredSegment {
                first_index: first,
                prev_end: PREV_END_UNKNOWN,
                path: path.to_path_buf(),
                offsets: Vec::new(),
                size: HEADER_LEN,
            });
        }
        Err(e) => {
            return Err(corrupt(
                0,
                format!(
                    "bad segment header ({e:?}){}",
                    if is_last { "" } else { " in a sealed segment" }
                ),
            ))
        }
    };

    let mut offsets = Vec::new();
    let mut pos = HEADER_LEN as usize;
    while pos < buf.len() {
        let expected = first + offsets.len() as u64;
        let problem = match decode_record(&buf[pos..], max_record_len) {
            Decoded::Record { index, payload } if index == expected => {
                offsets.push(pos as u64);
                pos += payload.end;
                continue;
            }
            Decoded::Record { index, .. } => {
                format!("record index {index} where {expected} was expected")
            }
            Decoded::Truncated => "partial record".to_string(),
            Decoded::Invalid(why) => why.to_string(),
        };
        if !is_last {
            return Err(corrupt(
                pos as u64,
                format!("{problem} in a sealed segment"),
            ));
        }
        if let Some(later) = find_valid_record_after(&buf, pos + 1, expected, max_record_len) {
            return Err(corrupt(
                pos as u64,
                format!(
                    "{problem}, but a valid record follows at offset {later}: \
                     mid-log corruption, refusing to truncate acknowledged entries"
                ),
            ));
        }
        let dropped = buf.len() - pos;
        tracing::warn!(path = %path.display(), offset = pos, dropped_bytes = dropped, %problem,
            "torn tail in newest log segment; truncating the unacknowledged tail");
        truncate_file(fs, path, pos as u64)?;
        report.torn_tail_bytes_truncated += dropped as u64;
        return Ok(RecoveredSegment {
            first_index: first,
            prev_end,
            path: path.to_path_buf(),
            offsets,
            size: pos as u64,
        });
    }
    Ok(RecoveredSegment {
        first_index: first,
        prev_end,
        path: path.to_path_buf(),
        offsets,
        size: buf.len() as u64,
    })
}

/// Looks for any checksummed record with an index at or after `expected` starting past `from`.
fn find_valid_record_after(
    buf: &[u8],
    from: usize,
    expected: u64,
    max_record_len: u32,
) -> Option<usize> {
    let limit = buf.len().saturating_sub(RECORD_HEADER_LEN as usize);
    let max_plausible = expected.saturating_add(buf.len() as u64);
    (from..=limit).find(|&p| {
        let mut idx = [0u8; 8];
        idx.copy_from_slice(&buf[p + 8..p + 16]);
        let index = u64::from_le_bytes(idx);
        index >= expected
            && index <= max_plausible
            && matches!(
                decode_record(&buf[p..], max_record_len),
                Decoded::Record { .. }
            )
    })
}

/// `prev_end` of a newest segment whose header was rewritten after a crash during creation.
const PREV_END_UNKNOWN: u64 = u64::MAX;

fn rewrite_header(fs: &dyn FileSystem, path: &Path, first: u64, prev_end: u64) -> Result<()> {
    let f = fs
        .open_write(path, true)
        .map_err(|e| WalError::io(path, e))?;
    fs.write_all(&f, path, &encode_header(first, prev_end))
        .map_err(|e| WalError::io(path, e))?;
    fs.sync_all(&f, path).map_err(|e| WalError::io(path, e))
}

fn truncate_file(fs: &dyn FileSystem, path: &Path, len: u64) -> Result<()> {
    let f = fs
        .open_write(path, false)
        .map_err(|e| WalError::io(path, e))?;
    fs.set_len(&f, path, len)
        .map_err(|e| WalError::io(path, e))?;
    fs.sync_all(&f, path).map_err(|e| WalError::io(path, e))
}
