//! `/api/admin/cluster…`: the cluster's members and their progress, and membership changes
//! (add a learner, promote it, remove a node). Admin only; every change is audited with its
//! outcome.

use std::time::Duration;

use auth::AuthOp;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::authz::ClientIp;
use super::raft_rpc::{status_of, IdentityView, StatusView};
use super::{json_body, ApiError};
use crate::cluster::{ClusterError, MembershipChange};
use crate::node::AppState;
use crate::raft::{ClusterNode, NodeId};
use crate::security::{event, submit, Caller};

const MAX_BODY: usize = 16 << 10;
/// How long `GET /api/admin/cluster` waits for each node's own report.
const STATUS_TIMEOUT: Duration = Duration::from_millis(1500);

/// `GET /api/admin/cluster`: the leader and every member, each with its own report of its
/// log and applied index (`reachable: false` and the leader's view if it does not answer).
pub(crate) async fn show(State(state): State<AppState>) -> Json<Value> {
    let m = state.raft.metrics().borrow().clone();
    let membership = m.membership_config.membership().clone();
    let voters: Vec<NodeId> = membership.voter_ids().collect();
    let nodes: Vec<(NodeId, ClusterNode)> =
        membership.nodes().map(|(id, n)| (*id, n.clone())).collect();
    let reports = futures::future::join_all(nodes.iter().map(|(id, node)| {
        let state = state.clone();
        async move {
            if *id == state.identity.node_id {
                return Some(status_of(&state));
            }
            let b = state
                .cluster
                .client()
                .get(&node.raft_addr, "/raft/status", STATUS_TIMEOUT)
                .await
                .ok()?;
            serde_json::from_slice::<StatusView>(&b).ok()
        }
    }))
    .await;
    let out: Vec<Value> = nodes
        .iter()
        .zip(reports)
        .map(|((id, node), report)| {
            let role = if Some(*id) == m.current_leader {
                "leader"
            } else if !voters.contains(id) {
                "learner"
            } else if report.as_ref().is_some_and(|r| r.state == "candidate") {
                "candidate"
            } else {
                "follower"
            };
            // The leader's view of a follower's log when the follower does not answer.
            let matched = m
                .replication
                .as_ref()
                .and_then(|r| r.get(id).cloned().flatten())
                .map(|l| l.index);
            json!({
                "id": id,
                "http_addr": node.http_addr,
                "raft_addr": node.raft_addr,
                "role": role,
                "voter": voters.contains(id),
                "reachable": report.is_some(),
                "last_log_index": report.as_ref().map(|r| r.last_log_index).or(matched),
                "applied_index": report.as_ref().map(|r| r.applied_index),
                "term": report.as_ref().map(|r| r.term),
            })
        })
        .collect();
    Json(json!({
        "leader": m.current_leader,
        "term": m.current_term,
        "nodes": out,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddNode {
    id: NodeId,
    http_addr: String,
    raft_addr: String,
}

/// Applies `change` and records it, with its outcome, in the audit log.
async fn audited(
    state: &AppState,
    caller: &Caller,
    ip: &str,
    action: &str,
    target: String,
    change: MembershipChange,
) -> Result<(), ApiError> {
    let res = state.cluster.change(change).await;
    let mut ev = event(caller.actor(), ip, action, target, "");
    ev.outcome = Some(match &res {
        Ok(()) => "success".into(),
        Err(e) => format!("failure: {e}"),
    });
    submit(
        &state.cluster,
        state.security.request(AuthOp::AuditOnly, vec![ev]),
    )
    .await?;
    res.map_err(ApiError::from)
}

/// `POST /api/admin/cluster/nodes {"id","http_addr","raft_addr"}`: adds a running node as a
/// learner. The node is asked who it is; its identity goes into the membership.
pub(crate) async fn add(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: AddNode = json_body(req.into_body(), MAX_BODY).await?;
    let bad = |m: String| ApiError::from(ClusterError::Invalid(m));
    if body.id == 0 {
        return Err(bad("id must be positive".into()));
    }
    let view: IdentityView = state
        .cluster
        .client()
        .get(&body.raft_addr, "/raft/identity", Duration::from_secs(5))
        .await
        .map_err(|e| bad(format!("cannot reach the node at {}: {e}", body.raft_addr)))
        .and_then(|b| {
            serde_json::from_slice(&b).map_err(|e| bad(format!("not an unmogrowp node: {e}")))
        })?;
    if view.node_id != body.id {
        return Err(bad(format!(
            "{} is node {}, not node {}",
            body.raft_addr, view.node_id, body.id
        )));
    }
    // A node that belongs to another cluster (it initialised itself, or was restored or
    // created elsewhere) holds a log that conflicts with ours; adding it would corrupt both.
    let me = (state.identity.node_id, state.identity.uuid.clone());
    if !view.members.is_empty() && !view.members.contains(&me) {
        return Err(ClusterError::Conflict(format!(
            "node {} already belongs to another cluster (members {:?}); give it a new, empty data directory and a configuration that lists cluster.members, then add it again",
            body.id,
            view.members.iter().map(|(id, _)| id).collect::<Vec<_>>()
        ))
        .into());
    }
    let node = ClusterNode {
        http_addr: body.http_addr,
        raft_addr: body.raft_addr,
        uuid: view.uuid,
    };
    audited(
        &state,
        &caller,
        &ip,
        "cluster.node.add",
        format!("node {} ({})", body.id, node.raft_addr),
        MembershipChange::AddLearner { id: body.id, node },
    )
    .await?;
    Ok((
        StatusCode::OK,
        Json(json!({"id": body.id, "role": "learner"})),
    ))
}

/// `POST /api/admin/cluster/nodes/{id}/promote`: makes a caught-up learner a voter.
pub(crate) async fn promote(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<NodeId>,
) -> Result<Json<Value>, ApiError> {
    audited(
        &state,
        &caller,
        &ip,
        "cluster.node.promote",
        format!("node {id}"),
        MembershipChange::Promote { id },
    )
    .await?;
    Ok(Json(json!({"id": id, "role": "voter"})))
}

/// `DELETE /api/admin/cluster/nodes/{id}`: removes a voter or learner.
pub(crate) async fn remove(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<NodeId>,
) -> Result<Json<Value>, ApiError> {
    audited(
        &state,
        &caller,
        &ip,
        "cluster.node.remove",
        format!("node {id}"),
        MembershipChange::Remove { id },
    )
    .await?;
    Ok(Json(json!({"id": id, "removed": true})))
}
