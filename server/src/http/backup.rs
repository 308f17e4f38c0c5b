//! `POST /api/admin/backup`: a consistent backup of this node, streamed as tar (see
//! [`crate::backup`]). Admin only; audited as `cluster.backup` with its outcome.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Extension;

use super::authz::ClientIp;
use super::{ApiError, Code};
use crate::backup::export;
use crate::node::AppState;
use crate::security::{event, submit, Caller};

pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let prepared = export::prepare(export::Source {
        raft: &state.raft,
        cluster: &state.cluster,
        snapshots: &state.snapshots,
        node_id: state.identity.node_id,
    })
    .await;
    let (target, detail) = match &prepared {
        Ok(e) => (
            format!("snapshot {}", e.info.snapshot_id),
            format!(
                "log index {}, {} segments, {} rows, {} bytes",
                e.info.last_log_index, e.info.segments, e.info.rows, e.info.bytes
            ),
        ),
        Err(_) => (format!("node {}", state.identity.node_id), String::new()),
    };
    let mut ev = event(caller.actor(), &ip, "cluster.backup", target, detail);
    ev.outcome = Some(match &prepared {
        Ok(_) => "success".into(),
        Err(e) => format!("failure: {e}"),
    });
    submit(
        &state.cluster,
        state.security.request(auth::AuthOp::AuditOnly, vec![ev]),
    )
    .await?;
    let export = prepared?;
    let name = export.file_name();
    let index = export.info.last_log_index;
    let bytes = export.info.bytes;
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-tar")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        )
        .header("x-unmogrowp-backup-log-index", index)
        .header("x-unmogrowp-backup-bytes", bytes)
        .body(Body::from_stream(export::stream(export)))
        .map_err(|e| ApiError::of(Code::BackupFailed, e.to_string()))
}
