//! [`QueryService`]: runs analyst SQL against `events` with statements that could change the
//! session or touch files rejected at planning time.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use engine::Engine;
use serde::{Deserialize, Serialize};

use crate::error::{QueryError, Result};
use crate::json::batches_to_rows;
use crate::table::EventsTable;

/// Query settings (`[query]` in the config file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// Most rows a JSON answer may carry; larger results are an error asking for a LIMIT.
    pub max_result_rows: usize,
    /// Parallelism of one query (defaults to the number of cores).
    pub target_partitions: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            max_result_rows: 100_000,
            target_partitions: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
}

/// A materialised answer in the `/api/analytics/query` JSON shape.
#[derive(Debug, Clone, Serialize)]
pub struct QueryResult {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<serde_json::Value>>,
    pub row_count: usize,
}

#[derive(Clone)]
pub struct QueryService {
    ctx: Arc<SessionContext>,
    cfg: QueryConfig,
}

impl QueryService {
    pub fn new(engine: Engine, cfg: QueryConfig) -> Result<Self> {
        let session = SessionConfig::new()
            .with_target_partitions(cfg.target_partitions.max(1))
            .with_information_schema(false);
        let ctx = SessionContext::new_with_config(session);
        ctx.register_table("events", Arc::new(EventsTable::new(engine)))?;
        Ok(Self {
            ctx: Arc::new(ctx),
            cfg,
        })
    }

    fn options() -> SQLOptions {
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
    }

    /// Plans and runs `sql`, returning Arrow batches.
    pub async fn run(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let df = self.ctx.sql_with_options(sql, Self::options()).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        Ok((schema, batches))
    }

    /// Runs `sql` and renders the answer as JSON rows.
    pub async fn query_json(&self, sql: &str) -> Result<QueryResult> {
        let (schema, batches) = self.run(sql).await?;
        let total: usize = batches.iter().map(|b| b.num_rows()).sum();
        if total > self.cfg.max_result_rows {
            return Err(QueryError::ResourcesExhausted(format!(
                "the result has {total} rows, more than query.max_result_rows = {}; add a LIMIT",
                self.cfg.max_result_rows
            )));
        }
        let columns = schema
            .fields()
            .iter()
            .map(|f| Column {
                name: f.name().clone(),
                data_type: f.data_type().to_string(),
            })
            .collect();
        let rows = batches_to_rows(&batches)?;
        Ok(QueryResult {
            columns,
            row_count: rows.len(),
            rows,
        })
    }
}

/// Request body of `POST /api/analytics/query`.
#[derive(Debug, Clone, Deserialize)]
pub struct QueryRequest {
    pub sql: String,
}
