//! [`QueryService`]: runs analyst SQL against `events` with statements that could change the
//! session or touch files rejected at planning time.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::MemTable;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use engine::Engine;
use serde::{Deserialize, Serialize};

use crate::clickhouse;
use crate::error::{QueryError, Result};
use crate::events::{EventsTable, ScanOptions};
use crate::json::batches_to_rows;

/// Query settings (`[query]` in the config file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// Most rows a JSON answer may carry; larger results are an error asking for a LIMIT.
    pub max_result_rows: usize,
    /// Parallelism of one query (defaults to the number of cores).
    pub target_partitions: usize,
    /// Evaluate WHERE filters while decoding Parquet (only matching rows are decoded for the
    /// other columns); off reads whole pages and filters afterwards.
    pub parquet_pushdown_filters: bool,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            max_result_rows: 100_000,
            target_partitions: std::thread::available_parallelism().map_or(2, |n| n.get()),
            parquet_pushdown_filters: true,
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

/// What one query may see: the per-request catalog holds only these tables, so nothing
/// else can be named, joined or listed, whatever the SQL.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Apps whose events are visible (`None`: every app, for admins).
    pub apps: Option<Arc<BTreeSet<String>>>,
    /// Extra in-memory tables (e.g. `audit_log` for admins).
    pub extra_tables: Vec<(String, RecordBatch)>,
}

#[derive(Clone)]
pub struct QueryService {
    engine: Engine,
    cfg: QueryConfig,
}

impl QueryService {
    pub fn new(engine: Engine, cfg: QueryConfig) -> Result<Self> {
        Ok(Self { engine, cfg })
    }

    /// A fresh session whose catalog holds `events` limited to the scope's apps, plus the
    /// scope's extra tables. No `information_schema`, no URL tables, no object stores but
    /// the local one used by the engine's own segment scans.
    fn session(&self, scope: &Scope) -> Result<SessionContext> {
        let session = SessionConfig::new()
            .with_target_partitions(self.cfg.target_partitions.max(1))
            .with_information_schema(false);
        let mut ctx = SessionContext::new_with_config(session);
        clickhouse::register(&mut ctx)?;
        let options = ScanOptions {
            pushdown_filters: self.cfg.parquet_pushdown_filters,
        };
        let base = Arc::new(EventsTable::scoped(
            self.engine.clone(),
            scope.apps.clone(),
            options,
        ));
        ctx.register_table("events", clickhouse::events_view(base)?)?;
        for (name, batch) in &scope.extra_tables {
            let t = MemTable::try_new(batch.schema(), vec![vec![batch.clone()]])?;
            ctx.register_table(name.as_str(), Arc::new(t))?;
        }
        Ok(ctx)
    }

    fn options() -> SQLOptions {
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
    }

    /// Plans and runs `sql` over everything (operators and tests), returning Arrow batches.
    pub async fn run(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        self.run_scoped(sql, &Scope::default()).await
    }

    /// Plans and runs `sql` within `scope`.
    pub async fn run_scoped(
        &self,
        sql: &str,
        scope: &Scope,
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        self.run_at(sql, scope, None).await
    }

    /// Plans and runs `sql` within `scope` with `now()` / `today()` fixed at `now` (the
    /// current time if `None`; golden tests fix it).
    pub async fn run_at(
        &self,
        sql: &str,
        scope: &Scope,
        now: Option<DateTime<Utc>>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let df = self.plan(sql, scope, now).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        Ok((schema, batches))
    }

    /// Parses `sql`, expands its ClickHouse functions, plans it and checks it only reads.
    async fn plan(
        &self,
        sql: &str,
        scope: &Scope,
        now: Option<DateTime<Utc>>,
    ) -> Result<DataFrame> {
        let ctx = self.session(scope)?;
        let mut state = ctx.state();
        if let Some(t) = now {
            state.execution_props_mut().query_execution_start_time = t;
        }
        let mut statement = state.sql_to_statement(sql, "generic")?;
        match &mut statement {
            DfStatement::Statement(s) => clickhouse::rewrite(s)?,
            DfStatement::Explain(e) => {
                if let DfStatement::Statement(s) = e.statement.as_mut() {
                    clickhouse::rewrite(s)?
                }
            }
            _ => {}
        }
        let plan = state.statement_to_plan(statement).await?;
        Self::options().verify_plan(&plan)?;
        Ok(DataFrame::new(state, plan))
    }

    /// Runs `sql` over everything and renders the answer as JSON rows.
    pub async fn query_json(&self, sql: &str) -> Result<QueryResult> {
        self.query_json_scoped(sql, &Scope::default()).await
    }

    /// Runs `sql` within `scope` and renders the answer as JSON rows.
    pub async fn query_json_scoped(&self, sql: &str, scope: &Scope) -> Result<QueryResult> {
        let (schema, batches) = self.run_scoped(sql, scope).await?;
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
