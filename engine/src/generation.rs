//! Opening a table generation: its manifest, its files checked, and the state kept in memory
//! beside the rows — the dedupe set and the rollups — made from the segments' summaries
//! ([`crate::summary`]) and the user dictionary ([`crate::dictionary`]), or rebuilt from the
//! rows where a summary is missing or damaged (and then written, so the next open is fast).

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use parking_lot::RwLock;

use crate::config::EngineConfig;
use crate::crash::CrashPoints;
use crate::dedupe::DedupeSet;
use crate::dictionary::{self, DictionaryWriter};
use crate::error::{EngineError, Result};
use crate::io::Io;
use crate::manifest::{self, Manifest, SegmentMeta};
use crate::rollup::Rollups;
use crate::scrub::SegmentChecks;
use crate::segment::{self, SEGMENTS_DIR};
use crate::summary::{self, Summary, SummaryBuilder};

/// An opened generation.
pub(crate) struct Loaded {
    pub(crate) manifest: Manifest,
    pub(crate) dedupe: DedupeSet,
    pub(crate) rollups: Rollups,
    pub(crate) dictionary: DictionaryWriter,
    /// Summaries that were missing or damaged and were rebuilt from their segment's rows.
    pub(crate) rebuilt: u64,
}

/// Loads generation `root`: its manifest, removing files no manifest names (left by a flush
/// that crashed before its manifest edit; their rows are still in the log), checking the
/// segments, and making the dedupe set and the rollups from the summaries — or from the rows
/// of the segments whose summary is missing, damaged, or made with another dictionary, whose
/// summaries are then rewritten (reported as a warning and in [`Loaded::rebuilt`]).
///
/// With `verify_all` (`engine.verify_segments_on_open`, and always for an installed
/// snapshot), every segment file is checked (size, xxh3) before this returns and a damaged one
/// fails it; else `checks` checks them before their first read and in the background
/// ([`crate::scrub`]).
pub(crate) fn load(
    io: &Io,
    root: &Path,
    cfg: &EngineConfig,
    verify_all: bool,
    checks: &SegmentChecks,
) -> Result<Loaded> {
    let mut manifest = manifest::load(root)?.unwrap_or_default();
    let tmp = root.join(format!("{}.tmp", manifest::MANIFEST_FILE));
    if tmp.exists() {
        let _ = io.remove_file(&tmp);
    }
    let mut listed: HashSet<PathBuf> = HashSet::new();
    for s in &manifest.segments {
        listed.insert(root.join(&s.path));
        listed.insert(root.join(summary::path_of(&s.path)));
    }
    remove_orphans(io, &root.join(SEGMENTS_DIR), &listed)?;
    remove_other_dictionaries(io, root, manifest.dictionary.map(|d| d.file_name()))?;
    remove_stale_erasure_files(io, root, &manifest)?;

    let mut rollups = Rollups::default();
    let mut dedupe = DedupeSet::new(root, cfg.dedupe_window_secs);
    let (mut dict, mut expect_summaries) = match manifest.dictionary {
        Some(meta) => match dictionary::load(root, &meta, &mut rollups) {
            Ok(()) => (DictionaryWriter::loaded(root, meta, &rollups), true),
            Err(reason) => {
                tracing::warn!(%reason, "the user dictionary is damaged: rebuilding every segment summary from the rows");
                rollups = Rollups::default();
                (DictionaryWriter::new_file(root, meta.id + 1), false)
            }
        },
        None => (DictionaryWriter::new_file(root, 0), false),
    };
    // Written before summaries existed: every segment is read once, quietly.
    expect_summaries &= !manifest.segments.is_empty();
    let dictionary_id = dict.meta().numbering();
    let today = crate::funnel::day_of(chrono::Utc::now().timestamp_millis());
    let hot_from = today - i64::from(cfg.hot_days);
    // Hours: today and yesterday always (the last 24 hours are read by every scrape).
    let hour_from = hot_from.min(today - 1);
    let mut rebuilt: Vec<(SegmentMeta, Option<Summary>)> = Vec::new();
    let use_summaries = manifest.dictionary.is_some() && expect_summaries;
    let segments = &manifest.segments;
    // At once on their own threads: checking the segment files' checksums, reading and
    // decoding summaries (2-4 threads: at 500M events one reader was the bottleneck), and
    // merging them (here, in manifest order).
    std::thread::scope(|scope| -> Result<()> {
        let verifier = scope.spawn(|| -> Result<()> {
            if verify_all {
                checks.check_all(root, segments)?;
            }
            Ok(())
        });
        // Readers: reader j reads segments j, j + k, j + 2k, … in order into its own bounded
        // channel, so the merge below takes them back in manifest order with no reordering.
        let k = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
        let mut readers = Vec::with_capacity(k);
        for j in 0..k {
            let (tx, rx) = std::sync::mpsc::sync_channel(16);
            readers.push(rx);
            scope.spawn(move || {
                for seg in segments.iter().skip(j).step_by(k) {
                    let read = if use_summaries {
                        summary::read(root, seg, dictionary_id).map(|mut s| {
                            // Older days stay in the summary until a reader needs them.
                            let old = s.part.drop_steps_before(hot_from);
                            let old_hours = s.part.drop_hours_before(hour_from);
                            (s, old, old_hours)
                        })
                    } else {
                        Err("no summary expected".into())
                    };
                    if tx.send(read).is_err() {
                        return;
                    }
                }
            });
        }
        for (i, seg) in segments.iter().enumerate() {
            if !root.join(&seg.path).exists() {
                return Err(EngineError::Corrupt {
                    what: "segment",
                    path: root.join(&seg.path),
                    reason: "listed in the manifest but missing".into(),
                });
            }
            let read = readers[i % k]
                .recv()
                .map_err(|_| EngineError::Decode("a summary reader stopped".into()))?;
            let read = read.and_then(|(s, old, old_hours)| {
                let known = rollups.user_count(&seg.app_id);
                match s.part.max_user() {
                    Some(m) if m as usize >= known => Err(format!(
                        "it refers to user {m}, the dictionary numbers {known}"
                    )),
                    _ => Ok((s, old, old_hours)),
                }
            });
            match read {
                Ok((s, old, old_hours)) => {
                    dedupe.add_segment(seg, s.keys > 0, s.filter, false);
                    rollups.merge(&seg.app_id, s.part);
                    for day in old {
                        rollups.mark_steps_out(&seg.app_id, day);
                    }
                    for day in old_hours {
                        rollups.mark_hours_out(&seg.app_id, day);
                    }
                }
                Err(reason) => {
                    if expect_summaries {
                        tracing::warn!(segment = %seg.path, %reason,
                            "segment summary missing or damaged: rebuilding it from the segment's rows");
                    }
                    // Rows of a damaged file must not become a summary that checks out.
                    checks.check(root, seg)?;
                    let mut b = SummaryBuilder::new();
                    segment::read_stored_rows(root, seg, |row| {
                        rollups.add(row.rollup);
                        b.add_row(&rollups, row);
                    })?;
                    let built = b.finish();
                    match &built {
                        Some(s) => dedupe.add_segment(seg, s.keys > 0, s.filter.clone(), false),
                        None => dedupe.add_segment(seg, true, None, false),
                    }
                    rebuilt.push((seg.clone(), built));
                }
            }
        }
        verifier
            .join()
            .unwrap_or_else(|_| Err(EngineError::Decode("segment verification panicked".into())))
    })?;
    // Days read from rows (rebuilt summaries) before the hot days go out like the rest.
    rollups.evict_steps(0, |day| day < hot_from);
    rollups.evict_hours(u64::MAX, |_, day| day < hour_from);
    // Lists grown by doubling while rebuilding: up to half of them was slack.
    rollups.shrink_to_fit();
    let count = rebuilt.len() as u64;
    if !rebuilt.is_empty() {
        let lock = RwLock::new(rollups);
        let meta = dict
            .persist(io, root, &lock)?
            .unwrap_or_else(|| dict.meta());
        let mut dirs = BTreeSet::new();
        for (seg, s) in &rebuilt {
            if let Some(s) = s {
                summary::write(io, root, seg, meta.numbering(), s)?;
                if let Some(d) = root.join(&seg.path).parent() {
                    dirs.insert(d.to_path_buf());
                }
            }
        }
        for d in &dirs {
            io.sync_dir(d)?;
        }
        manifest.dictionary = Some(meta);
        manifest.edit += 1;
        manifest::store(io, root, &manifest, &CrashPoints::default())?;
        remove_other_dictionaries(io, root, Some(meta.file_name()))?;
        rollups = lock.into_inner();
    }
    // Erased events still in segments not rewritten yet: dedupe must not answer them.
    for e in manifest.erasures.iter().filter(|e| !e.done()) {
        for p in &e.todo {
            if let Some(seg) = manifest.segments.iter().find(|s| s.id == p.segment) {
                let found = crate::erasure::scan(root, seg, e)?;
                dedupe.mask(seg.id, &found.keys);
            }
        }
    }
    // Erasures complete and done but not sealed when the process stopped: sealed now.
    if manifest.erasures.iter().any(|e| e.seal_due()) {
        let sealed = crate::erasure::seal_due(io, root, &mut manifest, &mut rollups, &mut dict)?;
        manifest.edit += 1;
        manifest::store(io, root, &manifest, &CrashPoints::default())?;
        remove_other_dictionaries(io, root, manifest.dictionary.map(|d| d.file_name()))?;
        for id in sealed {
            let _ = io.remove_file(&crate::erasure::ids_file(root, &id));
        }
    }
    // Rows below a retention floor left in a segment that spans it count no more.
    for (app, floor) in &manifest.retention {
        rollups.forget_before(app, *floor);
    }
    Ok(Loaded {
        manifest,
        dedupe,
        rollups,
        dictionary: dict,
        rebuilt: count,
    })
}

fn remove_orphans(io: &Io, dir: &Path, listed: &HashSet<PathBuf>) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in rd {
        let entry = entry.map_err(|e| EngineError::io(dir, e))?;
        let path = entry.path();
        if path.is_dir() {
            remove_orphans(io, &path, listed)?;
        } else if !listed.contains(&path) {
            tracing::warn!(path = %path.display(), "removing segment file not named by the manifest (interrupted flush)");
            io.remove_file(&path)
                .map_err(|e| EngineError::io(&path, e))?;
        }
    }
    Ok(())
}

/// Removes dictionary files other than `keep` (one a crash left before a manifest named it).
fn remove_other_dictionaries(io: &Io, root: &Path, keep: Option<String>) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(root) else {
        return Ok(());
    };
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if dictionary::is_dictionary_file(&name) && Some(&name) != keep.as_ref() {
            let path = entry.path();
            io.remove_file(&path)
                .map_err(|e| EngineError::io(&path, e))?;
        }
    }
    Ok(())
}

/// Removes erased-id files no unsealed erasure names (a crash between writing one and the
/// manifest edit recording its erasure, which is applied again from the log).
fn remove_stale_erasure_files(io: &Io, root: &Path, manifest: &Manifest) -> Result<()> {
    let keep: HashSet<String> = manifest
        .erasures
        .iter()
        .filter(|e| !e.sealed)
        .map(|e| crate::erasure::ids_file_name(&e.id))
        .collect();
    let Ok(rd) = std::fs::read_dir(root) else {
        return Ok(());
    };
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("erasure-") && name.ends_with(".ids") && !keep.contains(&name) {
            let path = entry.path();
            io.remove_file(&path)
                .map_err(|e| EngineError::io(&path, e))?;
        }
    }
    Ok(())
}

/// A file of a generation that a copy of the table (snapshot, backup) carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFile {
    /// Relative to the generation root.
    pub path: String,
    /// Copy only the first this many bytes, and never link: the file is appended to (the
    /// user dictionary). `None`: the whole file, which never changes (linking is fine).
    pub prefix: Option<u64>,
}

/// The files a copy of `manifest`'s table needs, found in `root`: every segment, the summaries
/// that exist (a copy without one rebuilds it when opened) and the named part of the user
/// dictionary.
pub fn table_files(root: &Path, manifest: &Manifest) -> Vec<TableFile> {
    let mut out = Vec::with_capacity(2 * manifest.segments.len() + 1);
    for s in &manifest.segments {
        out.push(TableFile {
            path: s.path.clone(),
            prefix: None,
        });
        let sum = summary::path_of(&s.path);
        if root.join(&sum).exists() {
            out.push(TableFile {
                path: sum.to_string_lossy().into_owned(),
                prefix: None,
            });
        }
    }
    if let Some(d) = &manifest.dictionary {
        out.push(TableFile {
            path: d.file_name(),
            prefix: Some(d.bytes),
        });
    }
    for e in manifest.erasures.iter().filter(|e| !e.sealed) {
        let name = crate::erasure::ids_file_name(&e.id);
        if root.join(&name).exists() {
            out.push(TableFile {
                path: name,
                prefix: None,
            });
        }
    }
    out
}
