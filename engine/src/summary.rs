//! A segment's summary: what opening a generation needs from the segment's rows, so that it
//! reads summaries instead of rows — the rows' rollups ([`RollupPart`], users by the
//! dictionary's numbers, [`crate::dictionary`]) and a filter of their dedupe keys
//! ([`crate::dedupe`]).
//!
//! `ID.summary` next to `ID.parquet`, written and fsynced with the segment (before the
//! segment's directory is fsynced and before any manifest names the segment), never changed
//! afterwards. Layout: `UMGPSUMM`, format version (u32), header length (u32), the header
//! (bincode), the header's xxh3-64, then the rollup part (bincode, zstd level 1: a third of
//! its size) and the key filter (bincode), each with its xxh3-64 in the header. The header names the segment
//! (id, xxh3, rows) and the dictionary it was numbered with, so a summary is used only with
//! the very segment and dictionary it describes; anything else (missing, damaged, another
//! version) is rebuilt from the segment's rows and reported.

use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use xorf::BinaryFuse16;

use crate::dedupe;
use crate::error::{EngineError, Result};
use crate::io::Io;
use crate::manifest::SegmentMeta;
use crate::rollup::{HoursOnly, PartBuilder, RollupPart, Rollups};
use crate::segment::{self, StoredRow};

const MAGIC: &[u8; 8] = b"UMGPSUMM";
pub(crate) const VERSION: u32 = 1;
pub(crate) const EXTENSION: &str = "summary";

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    segment_id: u64,
    segment_xxh3: u64,
    rows: u64,
    dictionary_id: u64,
    /// The rollup part: its bincode length, then zstd-compressed length and checksum.
    rollup_raw_bytes: u64,
    rollup_bytes: u64,
    rollup_xxh3: u64,
    /// Rows with an `event_id`.
    keys: u64,
    filter_xxh3: u64,
}

/// A [`BinaryFuse16`] as summaries store it (its own serde form is not self-describing).
#[derive(Serialize, Deserialize)]
struct StoredFilter {
    seed: u64,
    segment_length: u32,
    segment_length_mask: u32,
    segment_count_length: u32,
    fingerprints: Vec<u16>,
}

impl From<&BinaryFuse16> for StoredFilter {
    fn from(f: &BinaryFuse16) -> Self {
        Self {
            seed: f.descriptor.seed,
            segment_length: f.descriptor.segment_length,
            segment_length_mask: f.descriptor.segment_length_mask,
            segment_count_length: f.descriptor.segment_count_length,
            fingerprints: f.fingerprints.to_vec(),
        }
    }
}

impl From<StoredFilter> for BinaryFuse16 {
    fn from(f: StoredFilter) -> Self {
        BinaryFuse16 {
            descriptor: xorf::Descriptor {
                seed: f.seed,
                segment_length: f.segment_length,
                segment_length_mask: f.segment_length_mask,
                segment_count_length: f.segment_count_length,
            },
            fingerprints: f.fingerprints.into_boxed_slice(),
        }
    }
}

/// What a segment contributes to a generation's state.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub(crate) part: RollupPart,
    /// Rows with an `event_id`.
    pub(crate) keys: u64,
    /// Filter of their dedupe keys (`None` if there are none, or it could not be built).
    pub(crate) filter: Option<BinaryFuse16>,
}

/// The summary file of segment `seg` (relative to the generation root).
pub(crate) fn path_of(seg_path: &str) -> PathBuf {
    Path::new(seg_path).with_extension(EXTENSION)
}

/// Writes `summary` of segment `seg` as its summary file and fsyncs it (the caller fsyncs
/// the directory).
pub(crate) fn write(
    io: &Io,
    root: &Path,
    seg: &SegmentMeta,
    dictionary_id: u64,
    summary: &Summary,
) -> Result<()> {
    let enc = |e: bincode::Error| EngineError::Decode(e.to_string());
    let raw = bincode::serialize(&summary.part).map_err(enc)?;
    let rollup = zstd::bulk::compress(&raw, 1).map_err(|e| EngineError::io(&seg.path, e))?;
    let filter =
        bincode::serialize(&summary.filter.as_ref().map(StoredFilter::from)).map_err(enc)?;
    let header = Header {
        segment_id: seg.id,
        segment_xxh3: seg.xxh3,
        rows: seg.rows,
        dictionary_id,
        rollup_raw_bytes: raw.len() as u64,
        rollup_bytes: rollup.len() as u64,
        rollup_xxh3: xxhash_rust::xxh3::xxh3_64(&rollup),
        keys: summary.keys,
        filter_xxh3: xxhash_rust::xxh3::xxh3_64(&filter),
    };
    let head = bincode::serialize(&header).map_err(enc)?;
    let mut out = Vec::with_capacity(32 + head.len() + rollup.len() + filter.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(head.len() as u32).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&head).to_le_bytes());
    out.extend_from_slice(&rollup);
    out.extend_from_slice(&filter);
    io.write_synced(&root.join(path_of(&seg.path)), &out)
}

/// Reads the summary of `seg`, if it is there, intact and made for this segment and
/// dictionary; `Err` says why not.
pub(crate) fn read(
    root: &Path,
    seg: &SegmentMeta,
    dictionary_id: u64,
) -> std::result::Result<Summary, String> {
    let (part, keys, filter) = read_as::<RollupPart>(root, seg, dictionary_id)?;
    let filter: Option<StoredFilter> = bincode::deserialize(&filter).map_err(|e| e.to_string())?;
    Ok(Summary {
        part,
        keys,
        filter: filter.map(BinaryFuse16::from),
    })
}

/// [`read`], only the rollup part's hours and campaign days (loading days of hours back):
/// the step times, serialized after them, are not decoded, nor is the key filter.
pub(crate) fn read_hours(
    root: &Path,
    seg: &SegmentMeta,
    dictionary_id: u64,
) -> std::result::Result<RollupPart, String> {
    Ok(read_as::<HoursOnly>(root, seg, dictionary_id)?.0.into())
}

/// The checked summary of `seg`: its rollup part decoded as `T` (a prefix of it will do:
/// trailing bytes are allowed), its key count and the key filter's bytes.
fn read_as<T: serde::de::DeserializeOwned>(
    root: &Path,
    seg: &SegmentMeta,
    dictionary_id: u64,
) -> std::result::Result<(T, u64, Vec<u8>), String> {
    let path = root.join(path_of(&seg.path));
    let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
    let (h, at) = header(&bytes, seg)?;
    let short = || "the file is cut short".to_string();
    if h.dictionary_id != dictionary_id {
        return Err("it numbers users by another dictionary".into());
    }
    let rollup = bytes
        .get(at..at + h.rollup_bytes as usize)
        .ok_or_else(short)?;
    let filter = bytes.get(at + rollup.len()..).ok_or_else(short)?;
    if xxhash_rust::xxh3::xxh3_64(rollup) != h.rollup_xxh3
        || xxhash_rust::xxh3::xxh3_64(filter) != h.filter_xxh3
    {
        return Err("its contents fail their checksum".into());
    }
    let raw =
        zstd::bulk::decompress(rollup, h.rollup_raw_bytes as usize).map_err(|e| e.to_string())?;
    let part: T = bincode::deserialize(&raw).map_err(|e| e.to_string())?;
    Ok((part, h.keys, filter.to_vec()))
}

/// The checked header of a summary file starting with `bytes` (at least up to the end of
/// the header) that must describe `seg`, and where the rollup part starts.
fn header(bytes: &[u8], seg: &SegmentMeta) -> std::result::Result<(Header, usize), String> {
    let short = || "the file is cut short".to_string();
    if bytes.get(..8) != Some(MAGIC.as_slice()) {
        return Err("not a summary file".into());
    }
    let word = |at: usize| -> std::result::Result<u32, String> {
        let b = bytes.get(at..at + 4).ok_or_else(short)?;
        Ok(u32::from_le_bytes(b.try_into().map_err(|_| short())?))
    };
    let version = word(8)?;
    if version != VERSION {
        return Err(format!(
            "format version {version}, this binary writes {VERSION}"
        ));
    }
    let head_len = word(12)? as usize;
    let head = bytes.get(16..16 + head_len).ok_or_else(short)?;
    let sum = bytes.get(16 + head_len..24 + head_len).ok_or_else(short)?;
    if xxhash_rust::xxh3::xxh3_64(head).to_le_bytes().as_slice() != sum {
        return Err("the header fails its checksum".into());
    }
    let h: Header = bincode::deserialize(head).map_err(|e| e.to_string())?;
    if (h.segment_id, h.segment_xxh3, h.rows) != (seg.id, seg.xxh3, seg.rows) {
        return Err("it describes another segment".into());
    }
    Ok((h, 24 + head_len))
}

/// Only the key filter of `seg`'s summary (what dedupe reads back when the memory budget
/// left it there): the header and the filter's bytes, checked; `Ok(None)` if the segment has
/// no filter. Any dictionary will do: the filter does not number users.
pub(crate) fn read_filter(
    root: &Path,
    seg: &SegmentMeta,
) -> std::result::Result<Option<BinaryFuse16>, String> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(root.join(path_of(&seg.path))).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len() as usize;
    let mut fixed = [0u8; 16];
    file.read_exact_at(&mut fixed, 0)
        .map_err(|e| e.to_string())?;
    let head_len = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]) as usize;
    let mut front = vec![0u8; (24 + head_len).min(len)];
    file.read_exact_at(&mut front, 0)
        .map_err(|e| e.to_string())?;
    let (h, at) = header(&front, seg)?;
    let from = at + h.rollup_bytes as usize;
    if from > len {
        return Err("the file is cut short".into());
    }
    let mut filter = vec![0u8; len - from];
    file.read_exact_at(&mut filter, from as u64)
        .map_err(|e| e.to_string())?;
    if xxhash_rust::xxh3::xxh3_64(&filter) != h.filter_xxh3 {
        return Err("its filter fails its checksum".into());
    }
    let filter: Option<StoredFilter> = bincode::deserialize(&filter).map_err(|e| e.to_string())?;
    Ok(filter.map(BinaryFuse16::from))
}

/// Builds a segment's summary from its rows, numbering users by rollups that hold every
/// stored row's user. A row whose user the rollups do not know (the table was replaced
/// meanwhile) leaves the segment without a summary.
#[derive(Default)]
pub(crate) struct SummaryBuilder {
    summary: Summary,
    keys: Vec<u128>,
    part: PartBuilder,
    unknown_user: bool,
}

impl SummaryBuilder {
    pub(crate) fn new() -> Self {
        Self {
            summary: Summary::default(),
            keys: Vec::new(),
            part: PartBuilder::default(),
            unknown_user: false,
        }
    }

    /// Adds the rows of `batch` (rows of the segment, in any order).
    pub(crate) fn add_batch(
        &mut self,
        batch: &RecordBatch,
        path: &Path,
        rollups: &RwLock<Rollups>,
    ) -> Result<()> {
        let r = rollups.read();
        segment::each_stored_row(batch, path, |row| self.add_row(&r, row))
    }

    /// Adds one row, numbering its user by `rollups`.
    pub(crate) fn add_row(&mut self, rollups: &Rollups, row: StoredRow<'_>) {
        if let Some(id) = row.event_id {
            self.keys.push(dedupe::key(row.rollup.app_id, id));
        }
        let user = match row.rollup.user_id {
            Some(u) => match rollups.user_number(row.rollup.app_id, u) {
                Some(n) => Some(n),
                None => {
                    self.unknown_user = true;
                    return;
                }
            },
            None => None,
        };
        self.part.add(&row.rollup, user);
    }

    /// The summary, unless a user was unknown.
    pub(crate) fn finish(self) -> Option<Summary> {
        if self.unknown_user {
            return None;
        }
        let mut s = self.summary;
        s.part = self.part.finish();
        s.keys = self.keys.len() as u64;
        s.filter = dedupe::build_filter(&self.keys);
        Some(s)
    }
}
