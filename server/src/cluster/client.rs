//! The HTTP client nodes use to call each other's internal Raft API: pooled keep-alive
//! connections, the cluster secret on every request, a deadline per call, and the identity
//! of both ends in headers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::http::{Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::fault::Faults;
use crate::raft::{ClusterNode, NodeId};

pub(crate) const H_FROM: &str = "x-unmogrowp-from";
pub(crate) const H_FROM_UUID: &str = "x-unmogrowp-from-uuid";
pub(crate) const H_TO: &str = "x-unmogrowp-to";
pub(crate) const H_TO_UUID: &str = "x-unmogrowp-to-uuid";
/// The answering node's wall clock (epoch ms) when it answered an internal call.
pub(crate) const H_TIME: &str = "x-unmogrowp-time-ms";

/// Answers slower than this say too little about a peer's clock (the error is up to half the
/// round trip) and are not used.
const CLOCK_SAMPLE_MAX_RTT_MS: i64 = 200;

/// One measurement of a peer's wall clock against ours, NTP-style: the peer's time minus the
/// middle of our call's round trip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockSample {
    pub offset_ms: i64,
    pub rtt_ms: i64,
}

/// The latest clock sample of every peer this node calls (the leader calls them all).
#[derive(Clone, Default)]
pub struct PeerClocks(Arc<parking_lot::Mutex<std::collections::BTreeMap<NodeId, ClockSample>>>);

impl PeerClocks {
    pub fn samples(&self) -> Vec<(NodeId, ClockSample)> {
        self.0.lock().iter().map(|(k, v)| (*k, *v)).collect()
    }

    fn record(&self, peer: NodeId, sent_ms: i64, answered_ms: i64, peer_ms: i64) {
        let rtt_ms = answered_ms - sent_ms;
        if (0..=CLOCK_SAMPLE_MAX_RTT_MS).contains(&rtt_ms) {
            let offset_ms = peer_ms - (sent_ms + answered_ms) / 2;
            self.0
                .lock()
                .insert(peer, ClockSample { offset_ms, rtt_ms });
        }
    }
}

/// Why a call to a peer failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerError {
    /// No connection was made: the request was certainly not delivered.
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    /// No answer within the deadline: the request may or may not have been acted on.
    #[error("no answer from {0} within {1:?}")]
    Timeout(String, Duration),
    /// The connection broke, or the answer could not be read.
    #[error("transport error talking to {0}: {1}")]
    Transport(String, String),
    /// The peer answered with an error status.
    #[error("{addr} answered {status}: {message}")]
    Status {
        addr: String,
        status: u16,
        message: String,
    },
}

impl PeerError {
    /// Whether the peer certainly did not act on the request.
    pub fn not_delivered(&self) -> bool {
        match self {
            PeerError::Connect(..) => true,
            // Refused by the internal API before it did anything (identity, auth, not leader).
            PeerError::Status { status, .. } => matches!(status, 401 | 403 | 409 | 421),
            _ => false,
        }
    }
}

/// Who this node is, as told to peers.
#[derive(Debug, Clone)]
pub struct Me {
    pub id: NodeId,
    pub uuid: String,
}

#[derive(Clone)]
pub struct PeerClient {
    http: Client<HttpConnector, Full<Bytes>>,
    secret: Arc<str>,
    me: Arc<Me>,
    max_bytes: usize,
    faults: Faults,
    clocks: PeerClocks,
}

impl PeerClient {
    pub fn new(secret: &str, me: Me, max_bytes: usize) -> Self {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_connect_timeout(Some(Duration::from_secs(2)));
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(8)
            .build(conn);
        Self {
            http,
            secret: secret.into(),
            me: Arc::new(me),
            max_bytes,
            faults: Faults::default(),
            clocks: PeerClocks::default(),
        }
    }

    /// Peers' clocks as measured on this client's calls.
    pub fn clocks(&self) -> &PeerClocks {
        &self.clocks
    }

    /// With fault injection (tests): calls fail as if the network were cut while
    /// `faults` says so.
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn me(&self) -> &Me {
        &self.me
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// POSTs `body` to `path` on `addr` and returns the answer body (2xx only).
    /// `target` names the node the request is meant for (its id and identity), if known.
    pub async fn post(
        &self,
        addr: &str,
        path: &str,
        target: Option<(NodeId, &ClusterNode)>,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, PeerError> {
        self.call("POST", addr, path, target, body, timeout).await
    }

    pub async fn get(&self, addr: &str, path: &str, timeout: Duration) -> Result<Bytes, PeerError> {
        self.call("GET", addr, path, None, Bytes::new(), timeout)
            .await
    }

    async fn call(
        &self,
        method: &str,
        addr: &str,
        path: &str,
        target: Option<(NodeId, &ClusterNode)>,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, PeerError> {
        if self.faults.isolated() {
            return Err(PeerError::Connect(
                addr.into(),
                "isolated by fault injection".into(),
            ));
        }
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .header("authorization", format!("Bearer {}", self.secret))
            .header("content-type", "application/octet-stream");
        // An operator's command (empty identity) does not speak for any node.
        if !self.me.uuid.is_empty() {
            req = req
                .header(H_FROM, self.me.id.to_string())
                .header(H_FROM_UUID, self.me.uuid.as_str());
        }
        if let Some((id, node)) = target {
            req = req
                .header(H_TO, id.to_string())
                .header(H_TO_UUID, node.uuid.as_str());
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| PeerError::Transport(addr.into(), e.to_string()))?;
        let sent_ms = crate::clock::now_ms();
        let fut = async {
            let resp = self.http.request(req).await.map_err(|e| {
                if e.is_connect() {
                    PeerError::Connect(addr.into(), e.to_string())
                } else {
                    PeerError::Transport(addr.into(), e.to_string())
                }
            })?;
            let status = resp.status();
            let peer_ms = resp
                .headers()
                .get(H_TIME)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i64>().ok());
            if let (Some((id, _)), Some(peer_ms)) = (target, peer_ms) {
                self.clocks
                    .record(id, sent_ms, crate::clock::now_ms(), peer_ms);
            }
            let bytes = Limited::new(resp.into_body(), self.max_bytes)
                .collect()
                .await
                .map_err(|e| PeerError::Transport(addr.into(), e.to_string()))?
                .to_bytes();
            if status != StatusCode::OK {
                return Err(PeerError::Status {
                    addr: addr.into(),
                    status: status.as_u16(),
                    message: String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned(),
                });
            }
            Ok(bytes)
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(PeerError::Timeout(addr.into(), timeout)),
        }
    }
}
