//! A small checksummed metadata file replaced atomically (vote, purge point, committed index).
//!
//! Format: magic "UMGPMETA" | version u32 | crc32(body) u32 | body (JSON).

use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};

use std::sync::Arc;

use crate::env::{FileSystem, RealFs};
use crate::error::{Result, WalError};
use crate::fsio::write_atomic_with;

const MAGIC: &[u8; 8] = b"UMGPMETA";
const VERSION: u32 = 1;

#[derive(Debug, Clone)]
pub struct MetaFile {
    path: PathBuf,
    fs: Arc<dyn FileSystem>,
}

impl MetaFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_fs(path, Arc::new(RealFs))
    }

    /// A metadata file whose writes go through `fs` (the IO seam).
    pub fn with_fs(path: impl Into<PathBuf>, fs: Arc<dyn FileSystem>) -> Self {
        Self {
            path: path.into(),
            fs,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the value; `Ok(None)` if the file has never been written.
    pub fn load<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(WalError::io(&self.path, e)),
        };
        let corrupt = |reason: &str| WalError::Corrupt {
            path: self.path.clone(),
            offset: 0,
            reason: reason.to_string(),
        };
        if bytes.len() < 16 || &bytes[0..8] != MAGIC {
            return Err(corrupt("bad magic or short metadata file"));
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != VERSION {
            return Err(corrupt(&format!("unsupported metadata version {version}")));
        }
        let crc = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        if crc32fast::hash(&bytes[16..]) != crc {
            return Err(corrupt("metadata checksum mismatch"));
        }
        serde_json::from_slice(&bytes[16..])
            .map(Some)
            .map_err(|e| corrupt(&format!("metadata does not decode: {e}")))
    }

    /// Durably replaces the file with `value` (see [`crate::write_atomic`]).
    pub fn store<T: Serialize>(&self, value: &T) -> Result<()> {
        let body = serde_json::to_vec(value).map_err(|e| WalError::Corrupt {
            path: self.path.clone(),
            offset: 0,
            reason: format!("metadata does not encode: {e}"),
        })?;
        let mut out = Vec::with_capacity(16 + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&body);
        write_atomic_with(self.fs.as_ref(), &self.path, &out)
    }
}
