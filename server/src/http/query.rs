//! `POST /api/analytics/query`.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use super::{read_body, ApiError};
use crate::node::AppState;

const MAX_QUERY_BODY: usize = 1 << 20;

#[derive(Serialize)]
pub(crate) struct QueryAnswer {
    #[serde(flatten)]
    result: query::QueryResult,
    elapsed_ms: f64,
}

pub(crate) async fn run(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<QueryAnswer>, ApiError> {
    let body = read_body(req.into_body(), MAX_QUERY_BODY).await?;
    let q: query::QueryRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("expected {{\"sql\": \"…\"}}: {e}"),
        )
    })?;
    if q.sql.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "sql is empty",
        ));
    }
    let t0 = Instant::now();
    let result = state.query.query_json(&q.sql).await?;
    Ok(Json(QueryAnswer {
        result,
        elapsed_ms: t0.elapsed().as_secs_f64() * 1e3,
    }))
}
