//! Snapshot archive: the engine's manifest and segment files in one checksummed stream.
//!
//! ```text
//! archive = "UMGPSNAP" version:u32 file* end
//! file    = 0x01 name_len:u32 name data_len:u64 data crc32(data):u32
//! end     = 0x00 file_count:u32
//! ```
//! Names are relative paths; unpacking refuses absolute paths and `..`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

const MAGIC: &[u8; 8] = b"UMGPSNAP";
const VERSION: u32 = 1;
const MAX_NAME: u32 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("io error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("snapshot archive is malformed: {0}")]
    Malformed(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `files` (name in archive, file on disk) into a new archive at `out`, fsynced.
pub fn pack(out: &Path, files: &[(String, PathBuf)]) -> Result<(), ArchiveError> {
    let f = File::create(out).map_err(io(out))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    w.write_all(MAGIC).map_err(io(out))?;
    w.write_all(&VERSION.to_le_bytes()).map_err(io(out))?;
    for (name, path) in files {
        let data = std::fs::read(path).map_err(io(path))?;
        w.write_all(&[1]).map_err(io(out))?;
        w.write_all(&(name.len() as u32).to_le_bytes())
            .map_err(io(out))?;
        w.write_all(name.as_bytes()).map_err(io(out))?;
        w.write_all(&(data.len() as u64).to_le_bytes())
            .map_err(io(out))?;
        w.write_all(&data).map_err(io(out))?;
        w.write_all(&crc32fast::hash(&data).to_le_bytes())
            .map_err(io(out))?;
    }
    w.write_all(&[0]).map_err(io(out))?;
    w.write_all(&(files.len() as u32).to_le_bytes())
        .map_err(io(out))?;
    let f = w.into_inner().map_err(|e| ArchiveError::Io {
        path: out.to_path_buf(),
        source: e.into_error(),
    })?;
    f.sync_all().map_err(io(out))
}

/// Unpacks the archive at `src` into `dest`, verifying every checksum. Returns the file names.
pub fn unpack(src: &Path, dest: &Path) -> Result<Vec<String>, ArchiveError> {
    let f = File::open(src).map_err(io(src))?;
    let total = f.metadata().map_err(io(src))?.len();
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(io(src))?;
    if &magic != MAGIC {
        return Err(ArchiveError::Malformed("bad magic".into()));
    }
    let version = read_u32(&mut r, src)?;
    if version != VERSION {
        return Err(ArchiveError::Malformed(format!(
            "unsupported version {version}"
        )));
    }
    let mut names = Vec::new();
    loop {
        let mut tag = [0u8; 1];
        r.read_exact(&mut tag).map_err(io(src))?;
        match tag[0] {
            0 => {
                let count = read_u32(&mut r, src)?;
                if count as usize != names.len() {
                    return Err(ArchiveError::Malformed(format!(
                        "trailer says {count} files, archive holds {}",
                        names.len()
                    )));
                }
                return Ok(names);
            }
            1 => {}
            t => return Err(ArchiveError::Malformed(format!("unknown record tag {t}"))),
        }
        let name_len = read_u32(&mut r, src)?;
        if name_len == 0 || name_len > MAX_NAME {
            return Err(ArchiveError::Malformed(format!("name length {name_len}")));
        }
        let mut name = vec![0u8; name_len as usize];
        r.read_exact(&mut name).map_err(io(src))?;
        let name = String::from_utf8(name)
            .map_err(|_| ArchiveError::Malformed("file name is not UTF-8".into()))?;
        let rel = Path::new(&name);
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(ArchiveError::Malformed(format!(
                "unsafe file name {name:?}"
            )));
        }
        let len = read_u64(&mut r, src)?;
        if len > total {
            return Err(ArchiveError::Malformed(format!(
                "file {name} claims {len} bytes"
            )));
        }
        let mut data = vec![0u8; len as usize];
        r.read_exact(&mut data).map_err(io(src))?;
        let crc = read_u32(&mut r, src)?;
        if crc32fast::hash(&data) != crc {
            return Err(ArchiveError::Malformed(format!(
                "checksum mismatch in {name}"
            )));
        }
        let out = dest.join(rel);
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let mut f = File::create(&out).map_err(io(&out))?;
        f.write_all(&data).map_err(io(&out))?;
        f.sync_all().map_err(io(&out))?;
        names.push(name);
    }
}

fn read_u32(r: &mut impl Read, p: &Path) -> Result<u32, ArchiveError> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(io(p))?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(r: &mut impl Read, p: &Path) -> Result<u64, ArchiveError> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b).map_err(io(p))?;
    Ok(u64::from_le_bytes(b))
}
