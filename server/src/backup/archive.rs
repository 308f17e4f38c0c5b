//! The archive itself: writing a snapshot directory as tar with `backup.json` first and
//! `checksums.json` (the xxh3 of every file, computed while streaming) last, and reading one
//! back (optionally unpacking it) while checking every file against the listing, its checksum
//! and, for segments, the manifest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{BackupError, BackupInfo, FORMAT, INFO_FILE};

/// `backup.json` is small; anything bigger is not ours.
const MAX_INFO_BYTES: u64 = 64 << 20;
const MANIFEST: &str = "manifest.json";
/// The last member: `{"<path>": "<xxh3 hex>", …}` for every listed file.
const CHECKSUMS: &str = "checksums.json";

/// Hashes what is read through it.
struct Hashing<'a, R> {
    inner: R,
    hasher: &'a mut xxhash_rust::xxh3::Xxh3,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn header(bytes: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes);
    h.set_mode(0o600);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// Writes `backup.json`, every file `info` lists (read from `dir`) and `checksums.json` as a
/// tar stream.
pub(crate) fn write_archive(w: impl Write, dir: &Path, info: &BackupInfo) -> std::io::Result<()> {
    let mtime = chrono::Utc::now().timestamp().max(0) as u64;
    let mut b = tar::Builder::new(w);
    let body = serde_json::to_vec_pretty(info)?;
    b.append_data(
        &mut header(body.len() as u64, mtime),
        INFO_FILE,
        body.as_slice(),
    )?;
    let mut sums: BTreeMap<String, String> = BTreeMap::new();
    for f in &info.files {
        let file = std::fs::File::open(dir.join(&f.path))?;
        let len = file.metadata()?.len();
        if len != f.bytes {
            return Err(std::io::Error::other(format!(
                "{} changed size while being backed up ({} → {len} bytes)",
                f.path, f.bytes
            )));
        }
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let reader = Hashing {
            inner: file.take(f.bytes),
            hasher: &mut hasher,
        };
        b.append_data(&mut header(f.bytes, mtime), &f.path, reader)?;
        sums.insert(f.path.clone(), format!("{:016x}", hasher.digest()));
    }
    let body = serde_json::to_vec_pretty(&sums)?;
    b.append_data(
        &mut header(body.len() as u64, mtime),
        CHECKSUMS,
        body.as_slice(),
    )?;
    b.into_inner()?.flush()
}

fn invalid(m: impl Into<String>) -> BackupError {
    BackupError::Invalid(m.into())
}

/// Reads a whole archive, checking it, and unpacks it into `unpack_to` (which must be empty
/// or absent; every file and directory is fsynced) when given. A truncated, reordered or
/// altered archive is an error naming what is wrong.
pub fn read_archive(r: impl Read, unpack_to: Option<&Path>) -> Result<BackupInfo, BackupError> {
    let mut ar = tar::Archive::new(r);
    let mut info: Option<BackupInfo> = None;
    let mut listed: HashMap<String, u64> = HashMap::new();
    // Path → (bytes, xxh3) of what the archive held.
    let mut seen: HashMap<String, (u64, u64)> = HashMap::new();
    let mut manifest: Option<Vec<u8>> = None;
    let mut sums: Option<BTreeMap<String, String>> = None;
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    // Reading the tar stream fails only on a cut or damaged archive (unpacking errors are
    // reported as they are).
    let cut = |e: std::io::Error| invalid(format!("the archive is truncated or damaged: {e}"));
    for entry in ar.entries().map_err(cut)? {
        let mut e = entry.map_err(cut)?;
        let path = e.path()?.to_string_lossy().into_owned();
        if e.header().entry_type() != tar::EntryType::Regular {
            return Err(invalid(format!("{path} is not a regular file")));
        }
        if info.is_none() {
            if path != INFO_FILE {
                return Err(invalid(format!(
                    "the first member is {path}, not {INFO_FILE}"
                )));
            }
            let mut body = Vec::new();
            (&mut e).take(MAX_INFO_BYTES).read_to_end(&mut body)?;
            let parsed: BackupInfo = serde_json::from_slice(&body)
                .map_err(|err| invalid(format!("{INFO_FILE}: {err}")))?;
            if parsed.format != FORMAT {
                return Err(invalid(format!(
                    "archive format {} is not supported (this binary reads format {FORMAT})",
                    parsed.format
                )));
            }
            for f in &parsed.files {
                if f.path.starts_with('/') || f.path.split('/').any(|p| p == ".." || p.is_empty()) {
                    return Err(invalid(format!("unsafe path {:?}", f.path)));
                }
                listed.insert(f.path.clone(), f.bytes);
            }
            info = Some(parsed);
            continue;
        }
        if sums.is_some() {
            return Err(invalid(format!(
                "{path} follows {CHECKSUMS}, which must come last"
            )));
        }
        if path == CHECKSUMS {
            let mut body = Vec::new();
            (&mut e).take(MAX_INFO_BYTES).read_to_end(&mut body)?;
            sums = Some(
                serde_json::from_slice(&body)
                    .map_err(|err| invalid(format!("{CHECKSUMS}: {err}")))?,
            );
            continue;
        }
        let Some(&expected) = listed.get(&path) else {
            return Err(invalid(format!("{path} is not listed in {INFO_FILE}")));
        };
        if seen.contains_key(&path) {
            return Err(invalid(format!("{path} appears twice")));
        }
        let mut out = match unpack_to {
            Some(root) => {
                let to = root.join(&path);
                if let Some(p) = to.parent() {
                    std::fs::create_dir_all(p)?;
                    let mut d = p.to_path_buf();
                    while d.starts_with(root) && dirs.insert(d.clone()) {
                        if !d.pop() {
                            break;
                        }
                    }
                }
                Some(std::fs::File::create(&to)?)
            }
            None => None,
        };
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let keep = path == MANIFEST;
        let mut kept = Vec::new();
        let mut total = 0u64;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = e.read(&mut buf).map_err(cut)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            hasher.update(&buf[..n]);
            if keep {
                kept.extend_from_slice(&buf[..n]);
            }
            if let Some(f) = out.as_mut() {
                f.write_all(&buf[..n])?;
            }
        }
        if total != expected {
            return Err(invalid(format!(
                "{path} is truncated or padded: it holds {total} bytes, {INFO_FILE} lists {expected}"
            )));
        }
        if let Some(f) = out {
            f.sync_all()?;
        }
        if keep {
            manifest = Some(kept);
        }
        seen.insert(path, (total, hasher.digest()));
    }
    let info = info.ok_or_else(|| invalid("the archive is empty"))?;
    let missing: Vec<&String> = listed.keys().filter(|p| !seen.contains_key(*p)).collect();
    if !missing.is_empty() {
        return Err(invalid(format!(
            "the archive is truncated: {} listed files are missing (e.g. {})",
            missing.len(),
            missing[0]
        )));
    }
    let sums = sums.ok_or_else(|| {
        invalid(format!(
            "the archive is truncated: it does not end with {CHECKSUMS}"
        ))
    })?;
    for (path, &(_, xxh3)) in &seen {
        match sums.get(path) {
            Some(s) if *s == format!("{xxh3:016x}") => {}
            Some(_) => {
                return Err(invalid(format!(
                    "{path} is damaged: its checksum differs from {CHECKSUMS}"
                )))
            }
            None => return Err(invalid(format!("{path} has no checksum in {CHECKSUMS}"))),
        }
    }
    let bytes = manifest.ok_or_else(|| invalid(format!("no {MANIFEST}")))?;
    let m = engine::Manifest::decode(&bytes, Path::new(MANIFEST))?;
    for seg in &m.segments {
        match seen.get(&seg.path) {
            Some(&(bytes, xxh3)) if bytes == seg.bytes && xxh3 == seg.xxh3 => {}
            Some(_) => {
                return Err(invalid(format!(
                    "segment {} differs from the manifest (size or xxh3)",
                    seg.path
                )))
            }
            None => return Err(invalid(format!("segment {} is missing", seg.path))),
        }
    }
    if m.segments.len() != info.segments {
        return Err(invalid(format!(
            "the manifest names {} segments, {INFO_FILE} {}",
            m.segments.len(),
            info.segments
        )));
    }
    for d in dirs.iter().rev() {
        wal::sync_dir(d)?;
    }
    Ok(info)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{list_files, FileEntry};
    use super::*;

    /// A snapshot-like directory: one segment (with its manifest entry) and an auth file.
    fn sample(dir: &Path) -> BackupInfo {
        let seg = b"PAR1 not really parquet, but the bytes are what is checked".repeat(50);
        std::fs::create_dir_all(dir.join("segments/app=a")).unwrap();
        std::fs::create_dir_all(dir.join("auth")).unwrap();
        std::fs::write(dir.join("segments/app=a/1.parquet"), &seg).unwrap();
        std::fs::write(dir.join("auth/000009.sst"), b"rocks".repeat(300)).unwrap();
        std::fs::write(dir.join("meta.json"), b"{}").unwrap();
        let m = engine::Manifest {
            segments: vec![engine::SegmentMeta {
                id: 1,
                path: "segments/app=a/1.parquet".into(),
                app_id: "a".into(),
                day: "2026-01-01".into(),
                rows: 7,
                bytes: seg.len() as u64,
                xxh3: xxhash_rust::xxh3::xxh3_64(&seg),
                min_ts_ms: 0,
                max_ts_ms: 0,
                min_log_index: 1,
                max_log_index: 1,
                min_received_ms: None,
                max_received_ms: None,
            }],
            ..Default::default()
        };
        m.store_in(dir).unwrap();
        let files = list_files(dir).unwrap();
        BackupInfo {
            format: FORMAT,
            version: "test".into(),
            created_at: "now".into(),
            node_id: 1,
            snapshot_id: "s".into(),
            last_log_index: 1,
            last_log_term: 1,
            auth_applied_index: 1,
            segments: 1,
            rows: 7,
            bytes: files.iter().map(|f| f.bytes).sum(),
            files,
        }
    }

    #[test]
    fn round_trip_unpacks_every_file() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        let info = sample(&src);
        let mut tar = Vec::new();
        write_archive(&mut tar, &src, &info).unwrap();
        let out = d.path().join("out");
        let got = read_archive(tar.as_slice(), Some(&out)).unwrap();
        assert_eq!(got.files, info.files);
        for FileEntry { path, .. } in &info.files {
            assert_eq!(
                std::fs::read(src.join(path)).unwrap(),
                std::fs::read(out.join(path)).unwrap(),
                "{path}"
            );
        }
    }

    #[test]
    fn truncation_at_any_point_is_detected() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        let info = sample(&src);
        let mut tar = Vec::new();
        write_archive(&mut tar, &src, &info).unwrap();
        // Everything after the last member's data is the tar trailer (zero blocks).
        let data_end = tar.len() - 1024;
        for cut in (0..data_end).step_by(97) {
            assert!(
                read_archive(&tar[..cut], None).is_err(),
                "an archive cut at byte {cut} of {} was accepted",
                tar.len()
            );
        }
    }

    #[test]
    fn a_flipped_byte_in_any_file_is_detected() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        let info = sample(&src);
        let mut tar = Vec::new();
        write_archive(&mut tar, &src, &info).unwrap();
        for f in &info.files {
            let content = std::fs::read(src.join(&f.path)).unwrap();
            // The member's data: find it in the archive and flip its middle byte.
            let at = tar
                .windows(content.len())
                .position(|w| w == content.as_slice())
                .unwrap()
                + content.len() / 2;
            let mut bad = tar.clone();
            bad[at] ^= 0x40;
            let err = read_archive(bad.as_slice(), None).unwrap_err().to_string();
            assert!(err.contains(&f.path), "{}: {err}", f.path);
        }
    }

    fn raw_tar(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in members {
            b.append_data(&mut header(data.len() as u64, 0), path, data.as_slice())
                .unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unlisted_unsafe_or_misplaced_members_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        let mut info = sample(&src);
        let info_bytes = |i: &BackupInfo| serde_json::to_vec(i).unwrap();
        let err = |members: &[(&str, Vec<u8>)]| {
            read_archive(raw_tar(members).as_slice(), None)
                .unwrap_err()
                .to_string()
        };
        assert!(err(&[("meta.json", b"{}".to_vec())]).contains("first member"));
        assert!(err(&[
            (INFO_FILE, info_bytes(&info)),
            ("auth/smuggled", b"x".to_vec())
        ])
        .contains("not listed"));
        info.files[0].path = "../escape".into();
        assert!(err(&[(INFO_FILE, info_bytes(&info))]).contains("unsafe path"));
        info.format = 99;
        assert!(err(&[(INFO_FILE, info_bytes(&info))]).contains("not supported"));
    }
}
