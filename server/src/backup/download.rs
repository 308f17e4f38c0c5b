//! `unmogrowp backup`: asks a node for a backup over the admin API, checks the archive while
//! it arrives (every listed file, every segment's xxh3) and publishes it atomically: the
//! output file exists only if the whole archive arrived intact.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

use super::{read_archive, BackupInfo};

/// How the command authenticates: an access token, or an admin's email and password.
pub struct Credentials {
    pub token: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
}

/// Copies everything read from `inner` into `out`.
struct Tee<R, W> {
    inner: R,
    out: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

fn error_text(e: ureq::Error) -> anyhow::Error {
    match e {
        ureq::Error::Status(code, r) => {
            let body: serde_json::Value = r.into_json().unwrap_or_default();
            let msg = body["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| body.to_string());
            anyhow!("HTTP {code}: {msg}")
        }
        other => anyhow!("{other}"),
    }
}

fn token(agent: &ureq::Agent, base: &str, c: &Credentials) -> anyhow::Result<String> {
    if let Some(t) = &c.token {
        return Ok(t.clone());
    }
    let (Some(email), Some(password)) = (&c.email, &c.password) else {
        bail!("give --token (or UNMOGROWP_TOKEN), or --email with UNMOGROWP_PASSWORD");
    };
    let r: serde_json::Value = agent
        .post(&format!("{base}/api/auth/login"))
        .send_json(serde_json::json!({"email": email, "password": password}))
        .map_err(error_text)
        .context("logging in")?
        .into_json()?;
    r["access_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("the login answer has no access_token"))
}

fn partial_path(out: &Path) -> PathBuf {
    let mut p = out.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

/// Downloads a backup from the node at `url` into `out`.
pub fn download(url: &str, creds: &Credentials, out: &Path) -> anyhow::Result<BackupInfo> {
    let base = url.trim_end_matches('/');
    // No overall timeout: a large table takes a while; a stalled transfer still fails.
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout_read(Duration::from_secs(900))
        .build();
    let token = token(&agent, base, creds)?;
    let resp = agent
        .post(&format!("{base}/api/admin/backup"))
        .set("authorization", &format!("Bearer {token}"))
        .call()
        .map_err(error_text)
        .context("requesting the backup")?;
    let partial = partial_path(out);
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut tee = Tee {
        inner: resp.into_reader(),
        out: std::io::BufWriter::new(file),
    };
    let checked = read_archive(&mut tee, None);
    let info = match checked {
        Ok(i) => i,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            bail!("the backup did not arrive intact: {e}");
        }
    };
    // The tar trailer's padding, if the reader stopped before it.
    std::io::copy(&mut tee.inner, &mut tee.out)?;
    let file = tee.out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&partial, out)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        wal::sync_dir(dir)?;
    }
    Ok(info)
}
