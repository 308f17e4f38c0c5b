//! The generation's user dictionary: each app's `user_id`s in the order the rollups number
//! them, so that segment summaries ([`crate::summary`]) can keep user sets by number.
//!
//! One append-only file per generation, `users-<id>.dict`, made of records
//! `[magic u32][body length u32][xxh3-64 of body][body]`, each numbering some of one app's
//! next users. Users are appended (and the file fsynced) before any summary that refers to
//! them is written; the manifest records how many bytes of the file are durable and named
//! ([`DictionaryMeta::bytes`]), so bytes past that — an append cut by a crash — are cut off
//! when the file is next appended to. A record that fails its checksum, a short file or
//! numbering that does not follow on is corruption: the caller rebuilds every summary (and a
//! new dictionary) from the segments and says so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::io::Io;
use crate::rollup::Rollups;

const MAGIC: u32 = 0x5544_4d55;
const HEAD: usize = 16;

/// Which dictionary file a manifest's summaries refer to, and how much of it is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DictionaryMeta {
    pub id: u64,
    pub bytes: u64,
    /// The dictionary whose numbering this file continues, when it is a rewrite of it (the
    /// names of erased users replaced, [`DictionaryWriter::rewrite`]): summaries made with
    /// that one stay valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numbering: Option<u64>,
}

impl DictionaryMeta {
    pub fn file_name(&self) -> String {
        file_name(self.id)
    }

    /// The id summaries record and are checked against: the same across rewrites.
    pub fn numbering(&self) -> u64 {
        self.numbering.unwrap_or(self.id)
    }
}

pub(crate) fn file_name(id: u64) -> String {
    format!("users-{id:016x}.dict")
}

/// True for the names of dictionary files.
pub(crate) fn is_dictionary_file(name: &str) -> bool {
    name.starts_with("users-") && name.ends_with(".dict")
}

/// One record: `app`'s users numbered `first..first + names.len()`.
#[derive(Serialize, Deserialize)]
struct Record<'a> {
    app: &'a str,
    first: u32,
    names: Vec<&'a str>,
}

/// Reads the named prefix of the dictionary into `rollups` (which must hold no users yet).
/// `Err` says what is wrong with the file.
pub(crate) fn load(
    root: &Path,
    meta: &DictionaryMeta,
    rollups: &mut Rollups,
) -> std::result::Result<(), String> {
    let path = root.join(meta.file_name());
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let named = usize::try_from(meta.bytes).map_err(|e| e.to_string())?;
    if bytes.len() < named {
        return Err(format!(
            "{} holds {} bytes, the manifest names {named}",
            path.display(),
            bytes.len()
        ));
    }
    let mut at = 0;
    while at < named {
        let body = record_at(&bytes[..named], at)
            .ok_or_else(|| format!("{}: damaged record at byte {at}", path.display()))?;
        at += HEAD + body.len();
        let r: Record<'_> = bincode::deserialize(body)
            .map_err(|e| format!("{}: record at byte {at}: {e}", path.display()))?;
        if r.first as usize != rollups.user_count(r.app) {
            return Err(format!(
                "{}: app {} numbers users from {} after {}",
                path.display(),
                r.app,
                r.first,
                rollups.user_count(r.app)
            ));
        }
        if !rollups.extend_users(r.app, r.names.iter().copied()) {
            return Err(format!(
                "{}: a user of app {} is numbered twice",
                path.display(),
                r.app
            ));
        }
    }
    Ok(())
}

/// The body of the record starting at `at`, if whole and intact.
fn record_at(bytes: &[u8], at: usize) -> Option<&[u8]> {
    let head = bytes.get(at..at + HEAD)?;
    let word = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().unwrap_or_default());
    if word(0) != MAGIC {
        return None;
    }
    let len = word(4) as usize;
    let sum = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
    let body = bytes.get(at + HEAD..at + HEAD + len)?;
    (xxhash_rust::xxh3::xxh3_64(body) == sum).then_some(body)
}

/// Appends users as the rollups number them (on the flush thread and at open).
#[derive(Debug)]
pub(crate) struct DictionaryWriter {
    /// The generation the file belongs to.
    root: PathBuf,
    meta: DictionaryMeta,
    /// Users of each app already in the file.
    written: HashMap<String, usize>,
}

impl DictionaryWriter {
    /// A writer for a new, empty dictionary file `id`.
    pub(crate) fn new_file(root: &Path, id: u64) -> Self {
        Self {
            root: root.to_path_buf(),
            meta: DictionaryMeta {
                id,
                bytes: 0,
                numbering: None,
            },
            written: HashMap::new(),
        }
    }

    /// A writer continuing `meta`, whose users `rollups` holds (just loaded).
    pub(crate) fn loaded(root: &Path, meta: DictionaryMeta, rollups: &Rollups) -> Self {
        let written = rollups
            .apps()
            .into_iter()
            .map(|a| {
                let n = rollups.user_count(&a);
                (a, n)
            })
            .collect();
        Self {
            root: root.to_path_buf(),
            meta,
            written,
        }
    }

    pub(crate) fn meta(&self) -> DictionaryMeta {
        self.meta
    }

    /// Appends every user the rollups number that the file does not hold yet and fsyncs it,
    /// so any summary written afterwards may refer to them. Returns what the next manifest
    /// records. `None` if `root` is not this dictionary's generation (a snapshot replaced the
    /// table meanwhile).
    pub(crate) fn persist(
        &mut self,
        io: &Io,
        root: &Path,
        rollups: &RwLock<Rollups>,
    ) -> Result<Option<DictionaryMeta>> {
        if root != self.root {
            return Ok(None);
        }
        let (out, counts) = records(&rollups.read(), &self.written)?;
        let path = root.join(self.meta.file_name());
        if self.meta.bytes == 0 && !path.exists() {
            io.write_synced(&path, &out)?;
            io.sync_dir(root)?;
        } else if !out.is_empty() {
            io.append_synced(&path, self.meta.bytes, &out)?;
        }
        self.meta.bytes += out.len() as u64;
        self.written.extend(counts);
        Ok(Some(self.meta))
    }
}

impl DictionaryWriter {
    /// Writes the whole numbering as the rollups hold it now into a new file (the next id),
    /// fsynced with its directory, and continues in it: how the names of erased users leave
    /// the disk ([`Rollups::forget_user`] replaced them in memory). The caller records the
    /// returned meta in a manifest edit, then removes the old file. Summaries stay valid: the
    /// numbers did not change ([`DictionaryMeta::numbering`]).
    pub(crate) fn rewrite(
        &mut self,
        io: &Io,
        root: &Path,
        rollups: &Rollups,
    ) -> Result<Option<DictionaryMeta>> {
        if root != self.root {
            return Ok(None);
        }
        let (out, counts) = records(rollups, &HashMap::new())?;
        let meta = DictionaryMeta {
            id: self.meta.id + 1,
            bytes: out.len() as u64,
            numbering: Some(self.meta.numbering()),
        };
        io.write_synced(&root.join(meta.file_name()), &out)?;
        io.sync_dir(root)?;
        self.meta = meta;
        self.written = counts.into_iter().collect();
        Ok(Some(meta))
    }
}

/// The records numbering each app's users after the `written` ones, and each app's count.
fn records(
    r: &Rollups,
    written: &HashMap<String, usize>,
) -> Result<(Vec<u8>, Vec<(String, usize)>)> {
    let mut out = Vec::new();
    let mut counts = Vec::new();
    for app in r.apps() {
        let from = written.get(&app).copied().unwrap_or(0);
        let names = r.users_from(&app, from);
        if names.is_empty() {
            continue;
        }
        let rec = Record {
            app: &app,
            first: from as u32,
            names: names.iter().map(|n| &**n).collect(),
        };
        let body =
            bincode::serialize(&rec).map_err(|e| crate::EngineError::Decode(e.to_string()))?;
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&body).to_le_bytes());
        out.extend_from_slice(&body);
        counts.push((app, from + names.len()));
    }
    Ok((out, counts))
}
