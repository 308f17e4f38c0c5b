//! First start: the cluster's JWT secret and the first admin, created once through the log.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use auth::{AuthOp, AuthOutcome, Role, User};
use rand::RngCore;

use super::StartError;
use crate::clock::now_ms;
use crate::cluster::Cluster;
use crate::config::ServerConfig;
use crate::security::{event, submit, Security};

pub(super) const ADMIN_EMAIL: &str = "admin@localhost";
pub(super) const ADMIN_PASSWORD_ENV: &str = "UNMOGROWP_ADMIN_PASSWORD";
pub(super) const PASSWORD_FILE: &str = "initial-admin-password";

fn random_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut raw = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    raw.iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Runs until the cluster's auth state exists: whenever this node leads a cluster whose auth
/// state is empty (and it has applied everything committed), it proposes the secret and the
/// admin. Proposing twice is harmless: the second `Bootstrap` is refused when applied.
pub(super) async fn run(cfg: Arc<ServerConfig>, cluster: Cluster, sec: Arc<Security>) {
    loop {
        if sec.store.is_bootstrapped() {
            return;
        }
        let leads = cluster.leader().is_some_and(|(l, _)| l == cfg.node_id);
        if leads {
            // Apply everything committed first, so an existing bootstrap is seen.
            if cluster.read_barrier().await.is_ok() && !sec.store.is_bootstrapped() {
                match once(&cfg, &cluster, &sec).await {
                    Ok(()) => {}
                    Err(e) => tracing::error!(error = %e, "bootstrap failed; retrying"),
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn once(cfg: &ServerConfig, cluster: &Cluster, sec: &Security) -> Result<(), StartError> {
    let (password, from_env) = match &cfg.process.admin_password {
        Some(p) => {
            auth::password::check_strength(p)
                .map_err(|m| StartError::Bootstrap(format!("{ADMIN_PASSWORD_ENV}: {m}")))?;
            (p.clone(), true)
        }
        None => (random_password(), false),
    };
    let admin = User {
        id: uuid::Uuid::new_v4().to_string(),
        email: ADMIN_EMAIL.into(),
        name: "admin".into(),
        password_hash: sec
            .hash_password(password.clone())
            .await
            .map_err(|e| StartError::Bootstrap(e.to_string()))?,
        roles: vec![Role::Admin],
        permissions: vec![],
        app_access: vec![],
        disabled: false,
        created_at_ms: now_ms(),
        last_login_at_ms: None,
        lockout: Default::default(),
    };
    let ev = event(
        "system".into(),
        "",
        "cluster.bootstrap",
        format!("user {} ({ADMIN_EMAIL})", admin.id),
        "signing key generated; first admin created",
    );
    let op = AuthOp::Bootstrap {
        jwt_secret: new_jwt_secret(),
        admin,
    };
    let outcome = submit(cluster, sec.request(op, vec![ev]))
        .await
        .map_err(|e| StartError::Bootstrap(format!("bootstrap: {e}")))?;
    if outcome != AuthOutcome::Ok {
        return Ok(());
    }
    if from_env {
        tracing::info!(
            email = ADMIN_EMAIL,
            "created the admin user with the password from {ADMIN_PASSWORD_ENV}"
        );
        return Ok(());
    }
    let path = cfg.data_dir.join(PASSWORD_FILE);
    let mut f = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
    }
    .map_err(|e| StartError::DataDir(path.display().to_string(), e))?;
    writeln!(f, "{password}")
        .and_then(|()| f.sync_all())
        .map_err(|e| StartError::DataDir(path.display().to_string(), e))?;
    tracing::warn!(
        email = ADMIN_EMAIL,
        password = %password,
        file = %path.display(),
        "created the admin user; this password is shown once (also in the file, mode 0600): log in and change it"
    );
    Ok(())
}

/// A fresh 256-bit JWT secret from the OS CSPRNG, hex-encoded (RFC 8725 §3.5).
pub(crate) fn new_jwt_secret() -> String {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    hex::encode(secret)
}
