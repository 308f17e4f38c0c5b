//! [`QueryService`]: runs analyst SQL against `events` on the query runtime, within limits:
//! admission (per user and per node), a time limit, a memory pool per query that makes sorts,
//! aggregations and joins spill to disk, and cancellation as soon as nobody reads the answer.
//! Statements that could change the session or touch files are rejected at planning time.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::MemTable;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::execution::disk_manager::{DiskManager, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::sql::parser::Statement as DfStatement;
use engine::Engine;
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::admission::{Admission, Limiter};
use crate::attribution::{
    self, table::AttributionFunction, AttributionParams, FraudReport, Report,
};
use crate::audit_log::AuditLogSource;
use crate::clickhouse;
use crate::complexity;
pub use crate::config::QueryConfig;
use crate::deadline::PlanningBudget;
use crate::error::{QueryError, Result};
use crate::events::{EventsTable, MetadataCache, MetadataCacheStats, ScanOptions};
use crate::node_memory::{NodeMemory, QueryPool};
use crate::runtime::QueryRuntime;
use crate::value_guard::{self, ValueBudget};

#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
}

/// What one query may see: the per-request catalog holds only these tables, so nothing
/// else can be named, joined or listed, whatever the SQL.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Apps whose events are visible (`None`: every app, for admins).
    pub apps: Option<Arc<BTreeSet<String>>>,
    /// Extra in-memory tables (e.g. `audit_log` for admins).
    pub extra_tables: Vec<(String, RecordBatch)>,
    /// Read every answer from the events, never from the rollups (the dashboard's
    /// `source=scan`), whatever `query.rollup_answers` says.
    pub scan_only: bool,
    /// The audit log, for admins: becomes the `audit_log` table when a statement names it.
    pub audit_log: Option<Arc<dyn AuditLogSource>>,
    /// More tables for admins (`security_alerts`), loaded when a statement names them.
    pub admin_tables: Vec<Arc<dyn crate::admin_table::AdminTable>>,
}

/// Who runs a query and how long it may take.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// Admission is counted per user.
    pub user: String,
    /// Shorter time limit than `query.timeout_secs`, if wanted.
    pub timeout: Option<Duration>,
    /// Fixes `now()` / `today()` (golden tests).
    pub now: Option<DateTime<Utc>>,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct QueryStats {
    pub started: AtomicU64,
    pub finished: AtomicU64,
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    pub rejected_busy: AtomicU64,
    pub timed_out: AtomicU64,
    pub cancelled: AtomicU64,
}

impl QueryStats {
    pub fn running(&self) -> u64 {
        self.started.load(Ordering::Relaxed) - self.finished.load(Ordering::Relaxed)
    }
}

enum Msg {
    Batch(RecordBatch),
    End,
    Error(QueryError),
}

/// A running query's answer, batch by batch. Dropping it cancels the query.
pub struct QueryStream {
    pub schema: SchemaRef,
    /// This query's id (in the log, and in the message of an internal error).
    pub id: String,
    rx: mpsc::Receiver<Msg>,
    done: bool,
}

impl QueryStream {
    /// The next batch; `None` once the whole answer was delivered.
    pub async fn next(&mut self) -> Option<Result<RecordBatch>> {
        if self.done {
            return None;
        }
        match self.rx.recv().await {
            Some(Msg::Batch(b)) => Some(Ok(b)),
            Some(Msg::End) => {
                self.done = true;
                None
            }
            Some(Msg::Error(e)) => {
                self.done = true;
                Some(Err(e))
            }
            None => {
                self.done = true;
                Some(Err(QueryError::Execution(
                    "the query stopped without completing".into(),
                )))
            }
        }
    }
}

struct Inner {
    engine: Engine,
    cfg: QueryConfig,
    runtime: QueryRuntime,
    limiter: Limiter,
    stats: QueryStats,
    /// Disk manager, caches and object stores shared by all queries; each query gets its own
    /// memory pool on top.
    base_env: Arc<RuntimeEnv>,
    metadata_cache: Arc<MetadataCache>,
    /// Called when the last running query ends (the binary returns freed memory to the OS).
    idle_hook: Option<IdleHook>,
    /// The memory pools of the queries alive now (for `/metrics`).
    pools: parking_lot::Mutex<Vec<Weak<dyn MemoryPool>>>,
    /// What all queries together hold, against `query.total_memory_bytes`.
    node_memory: Arc<NodeMemory>,
}

/// Memory reserved by the queries running now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryMemory {
    /// All running queries together.
    pub reserved_bytes: usize,
    /// The one query holding the most (each may hold up to `query.memory_limit_bytes`).
    pub largest_bytes: usize,
}

/// What to do when no query is running any more.
pub type IdleHook = Arc<dyn Fn() + Send + Sync>;

#[derive(Clone)]
pub struct QueryService {
    inner: Arc<Inner>,
}

impl QueryService {
    /// The engine the queries read (the dashboard reads its rollups directly).
    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }
}

/// Counts a query as finished however its task ends.
struct Running(Arc<Inner>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.stats.finished.fetch_add(1, Ordering::Relaxed);
        if self.0.stats.running() == 0 {
            if let Some(hook) = &self.0.idle_hook {
                hook();
            }
        }
    }
}

impl QueryService {
    pub fn new(engine: Engine, cfg: QueryConfig) -> Result<Self> {
        cfg.validate().map_err(QueryError::InvalidQuery)?;
        let cfg = cfg.resolved();
        let spill_dir = cfg
            .spill_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("unmogrowp-query-spill"));
        std::fs::create_dir_all(&spill_dir).map_err(|e| {
            QueryError::Execution(format!("cannot create {}: {e}", spill_dir.display()))
        })?;
        let disk = DiskManager::builder()
            .with_mode(DiskManagerMode::Directories(vec![spill_dir]))
            .with_max_temp_directory_size(cfg.max_spill_bytes);
        let base_env = RuntimeEnvBuilder::new()
            .with_disk_manager_builder(disk)
            .build_arc()?;
        let runtime = QueryRuntime::new(cfg.threads, cfg.thread_nice)?;
        let limiter = Limiter::new(
            cfg.max_concurrent_queries,
            cfg.max_concurrent_queries_per_user,
        );
        let node_memory = Arc::new(NodeMemory::new(cfg.total_memory_bytes));
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                metadata_cache: Arc::new(MetadataCache::new(cfg.parquet_metadata_cache_bytes)),
                cfg,
                runtime,
                limiter,
                stats: QueryStats::default(),
                base_env,
                idle_hook: None,
                pools: parking_lot::Mutex::new(Vec::new()),
                node_memory,
            }),
        })
    }

    /// Runs `hook` whenever the last running query ends, on the thread that ran it. The
    /// binary uses it to hand the memory a query freed back to the OS (docs/sql.md, "Memory").
    /// Call before the service is cloned.
    pub fn with_idle_hook(mut self, hook: IdleHook) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.idle_hook = Some(hook);
        }
        self
    }

    pub fn config(&self) -> &QueryConfig {
        &self.inner.cfg
    }

    pub fn stats(&self) -> &QueryStats {
        &self.inner.stats
    }

    /// What the running queries have reserved of their memory pools.
    pub fn memory(&self) -> QueryMemory {
        let mut pools = self.inner.pools.lock();
        pools.retain(|p| p.strong_count() > 0);
        let mut m = QueryMemory::default();
        for p in pools.iter().filter_map(Weak::upgrade) {
            let r = p.reserved();
            m.reserved_bytes += r;
            m.largest_bytes = m.largest_bytes.max(r);
        }
        m
    }

    /// Footers cached between queries.
    pub fn metadata_cache(&self) -> MetadataCacheStats {
        self.inner.metadata_cache.stats()
    }

    /// Drops the cached footers of segment files that no longer exist (a stat per cached
    /// file: call it off the async runtime, now and then); returns how many went.
    pub fn forget_deleted_footers(&self) -> usize {
        self.inner
            .metadata_cache
            .forget_missing(std::path::Path::new("/"))
    }

    /// Bytes of spill files currently on disk.
    pub fn spill_bytes(&self) -> u64 {
        self.inner.base_env.disk_manager.used_disk_space()
    }

    /// Admits one more query of `opts.user` (429 past the limits) and gives its time limit.
    fn admit(&self, opts: &QueryOptions) -> Result<(Admission, Duration)> {
        let admission = self.inner.limiter.admit(&opts.user).inspect_err(|_| {
            self.inner
                .stats
                .rejected_busy
                .fetch_add(1, Ordering::Relaxed);
        })?;
        let limit = Duration::from_secs(self.inner.cfg.timeout_secs);
        Ok((admission, opts.timeout.map_or(limit, |t| t.min(limit))))
    }

    /// Admits, plans and starts `sql` within `scope`; the answer arrives through the returned
    /// stream. Errors found while planning (bad SQL, too complex, 429, timeout) come back here.
    /// Planning counts toward the time limit: the caller stops waiting at the deadline, and
    /// the planner itself stops at its next rule boundary ([`PlanningBudget`]).
    pub async fn start(
        &self,
        sql: &str,
        mut scope: Scope,
        opts: QueryOptions,
    ) -> Result<QueryStream> {
        let stats = &self.inner.stats;
        self.inner.cfg.complexity().check_text(sql)?;
        crate::audit_log::resolve(&mut scope, sql)?;
        crate::admin_table::resolve(&mut scope, sql)?;
        let (admission, timeout) = self.admit(&opts)?;
        let deadline = Instant::now() + timeout;
        let budget = PlanningBudget::new(deadline.into_std());
        let (plan_tx, plan_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(2);
        let inner = self.inner.clone();
        let sql = sql.to_string();
        let id = query_id();
        stats.started.fetch_add(1, Ordering::Relaxed);
        let task_id = id.clone();
        let task_budget = budget.clone();
        self.inner.runtime.spawn(async move {
            let _admission = admission;
            let running = Running(inner);
            let inner = &running.0;
            let mut plan_tx = Some(plan_tx);
            let run = drive(
                inner,
                &sql,
                &scope,
                opts.now,
                Limits {
                    id: task_id.clone(),
                    deadline,
                    timeout,
                    budget: task_budget,
                },
                &mut plan_tx,
                tx.clone(),
            );
            if let Err(panic) = std::panic::AssertUnwindSafe(run).catch_unwind().await {
                let e = panicked(&task_id, &sql, panic);
                inner.stats.failed.fetch_add(1, Ordering::Relaxed);
                match plan_tx.take() {
                    Some(p) => {
                        let _ = p.send(Err(e));
                    }
                    None => {
                        let _ = tx.send(Msg::Error(e)).await;
                    }
                }
            }
        });
        // Whatever happens below, planning is no longer awaited once this returns (or is
        // dropped because the client went away).
        let _abandon = Abandon(budget);
        match tokio::time::timeout_at(deadline, plan_rx).await {
            Ok(Ok(Ok(schema))) => Ok(QueryStream {
                schema,
                id,
                rx,
                done: false,
            }),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(QueryError::Execution(format!(
                "query {id} stopped while being planned"
            ))),
            Err(_) => Err(timeout_error(timeout)),
        }
    }

    /// Attributes the conversions `params` asks for over the events `scope` may see, on the
    /// query runtime, admitted and time-limited like a query. Stopped if the caller goes away.
    pub async fn attribution(
        &self,
        params: AttributionParams,
        scope: Scope,
        opts: QueryOptions,
    ) -> Result<Report> {
        self.attribution_job(params, scope, opts, |ctx, p| async move {
            attribution::run(&ctx, p).await
        })
        .await
    }

    /// The fraud signals of `params`' app and range (see [`attribution::fraud`]), run like
    /// [`QueryService::attribution`].
    pub async fn fraud(
        &self,
        params: AttributionParams,
        scope: Scope,
        opts: QueryOptions,
    ) -> Result<FraudReport> {
        self.attribution_job(params, scope, opts, |ctx, p| async move {
            attribution::run_fraud(&ctx, p).await
        })
        .await
    }

    async fn attribution_job<T, F, Fut>(
        &self,
        params: AttributionParams,
        scope: Scope,
        opts: QueryOptions,
        job: F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(SessionContext, AttributionParams) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T>> + Send,
    {
        params.validate()?;
        let stats = &self.inner.stats;
        let (admission, timeout) = self.admit(&opts)?;
        let (tx, rx) = oneshot::channel();
        let inner = self.inner.clone();
        stats.started.fetch_add(1, Ordering::Relaxed);
        self.inner.runtime.spawn(async move {
            let _admission = admission;
            let running = Running(inner);
            let inner = &running.0;
            let id = query_id();
            let work = async {
                let ctx = session(inner, &scope, None)?;
                job(ctx, params).await
            };
            let work =
                std::panic::AssertUnwindSafe(tokio::time::timeout(timeout, work)).catch_unwind();
            let mut tx = tx;
            let outcome = tokio::select! {
                _ = tx.closed() => None,
                r = work => Some(match r {
                    Ok(r) => r.unwrap_or_else(|_| Err(timeout_error(timeout))),
                    Err(panic) => Err(panicked(&id, "(attribution)", panic)),
                }),
            };
            let counter = match &outcome {
                None => &inner.stats.cancelled,
                Some(Ok(_)) => &inner.stats.completed,
                Some(Err(QueryError::Timeout(_))) => &inner.stats.timed_out,
                Some(Err(_)) => &inner.stats.failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if let Some(r) = outcome {
                let _ = tx.send(r);
            }
        });
        rx.await.unwrap_or_else(|_| {
            Err(QueryError::Execution(
                "the attribution stopped without completing".into(),
            ))
        })
    }

    /// Plans and runs `sql` over everything (operators and tests), returning Arrow batches.
    pub async fn run(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        self.run_at(sql, &Scope::default(), None).await
    }

    /// Plans and runs `sql` within `scope` with `now()` / `today()` fixed at `now` (the
    /// current time if `None`; golden tests fix it), collecting the whole answer.
    pub async fn run_at(
        &self,
        sql: &str,
        scope: &Scope,
        now: Option<DateTime<Utc>>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let opts = QueryOptions {
            user: String::new(),
            timeout: None,
            now,
        };
        let mut stream = self.start(sql, scope.clone(), opts).await?;
        let mut batches = Vec::new();
        while let Some(b) = stream.next().await {
            batches.push(b?);
        }
        Ok((stream.schema, batches))
    }
}

fn timeout_error(timeout: Duration) -> QueryError {
    QueryError::Timeout(format!(
        "the query ran longer than its time limit of {:.1} s (query.timeout_secs, or the request's timeout_ms) and was stopped",
        timeout.as_secs_f64()
    ))
}

/// When a query must stop.
struct Limits {
    id: String,
    deadline: Instant,
    timeout: Duration,
    budget: PlanningBudget,
}

/// Marks planning as abandoned when the caller stops waiting for it.
struct Abandon(PlanningBudget);

impl Drop for Abandon {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

/// A new query id: `q-` and 16 hex digits, unique enough to find one query in the logs.
fn query_id() -> String {
    format!("q-{:016x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// The error for a query whose code panicked, logged with its id and SQL.
fn panicked(id: &str, sql: &str, panic: Box<dyn std::any::Any + Send>) -> QueryError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into());
    tracing::error!(query_id = id, sql, panic = %message, "a query panicked; it was stopped and the node keeps serving");
    QueryError::Panicked {
        query_id: id.to_string(),
        message,
    }
}

/// The query task: plans, then moves batches to the reader until the answer is complete, the
/// reader is gone (cancel), the deadline passes or execution fails.
async fn drive(
    inner: &Inner,
    sql: &str,
    scope: &Scope,
    now: Option<DateTime<Utc>>,
    limits: Limits,
    plan_tx: &mut Option<oneshot::Sender<Result<SchemaRef>>>,
    tx: mpsc::Sender<Msg>,
) {
    let Limits {
        id,
        deadline,
        timeout,
        budget,
    } = limits;
    let stats = &inner.stats;
    let count = |c: &AtomicU64| {
        c.fetch_add(1, Ordering::Relaxed);
    };
    let planned = tokio::time::timeout_at(deadline, async {
        let df = plan(inner, sql, scope, now, &budget).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let stream: SendableRecordBatchStream = df.execute_stream().await?;
        Ok::<_, QueryError>((schema, stream))
    })
    .await;
    let send_plan = |plan_tx: &mut Option<oneshot::Sender<Result<SchemaRef>>>, r| {
        plan_tx.take().is_some_and(|p| p.send(r).is_ok())
    };
    let (schema, mut stream) = match planned {
        Ok(Ok(p)) => p,
        Ok(Err(_)) | Err(_) if budget.expired() => {
            count(&stats.timed_out);
            send_plan(plan_tx, Err(timeout_error(timeout)));
            return;
        }
        Ok(Err(e)) => {
            count(&stats.failed);
            send_plan(plan_tx, Err(e.while_planning().in_query(&id)));
            return;
        }
        Err(_) => {
            count(&stats.timed_out);
            send_plan(plan_tx, Err(timeout_error(timeout)));
            return;
        }
    };
    if !send_plan(plan_tx, Ok(schema)) {
        count(&stats.cancelled);
        return;
    }
    let outcome = loop {
        let next = tokio::select! {
            _ = tx.closed() => break Err(None),
            _ = tokio::time::sleep_until(deadline) => break Err(Some(timeout_error(timeout))),
            n = stream.next() => n,
        };
        let msg = match next {
            None => break Ok(()),
            Some(Err(e)) => break Err(Some(QueryError::from(e).in_query(&id))),
            Some(Ok(b)) if b.num_rows() == 0 => continue,
            Some(Ok(b)) => Msg::Batch(b),
        };
        tokio::select! {
            r = tx.send(msg) => if r.is_err() { break Err(None) },
            _ = tokio::time::sleep_until(deadline) => break Err(Some(timeout_error(timeout))),
        }
    };
    // Stop the computation before telling the reader.
    drop(stream);
    let last = match outcome {
        Ok(()) => {
            count(&stats.completed);
            Msg::End
        }
        Err(None) => {
            count(&stats.cancelled);
            return;
        }
        Err(Some(e)) => {
            count(if matches!(e, QueryError::Timeout(_)) {
                &stats.timed_out
            } else {
                &stats.failed
            });
            Msg::Error(e)
        }
    };
    tokio::select! {
        _ = tx.send(last) => {},
        _ = tx.closed() => {},
    }
}

/// A fresh session whose catalog holds `events` limited to the scope's apps, plus the scope's
/// extra tables, with its own memory pool, which also bounds what functions build
/// ([`value_guard`]). No `information_schema`, no URL tables, no object stores but the local
/// one used by the engine's own segment scans.
fn session(inner: &Inner, scope: &Scope, now: Option<DateTime<Utc>>) -> Result<SessionContext> {
    let cfg = &inner.cfg;
    let mut session = SessionConfig::new()
        .with_target_partitions(cfg.target_partitions.max(1))
        .with_information_schema(false);
    session.options_mut().sql_parser.recursion_limit = cfg.complexity().parser_recursion_limit();
    let pool: Arc<dyn datafusion::execution::memory_pool::MemoryPool> = Arc::new(QueryPool::new(
        TrackConsumersPool::new(
            FairSpillPool::new(cfg.memory_limit_bytes),
            NonZeroUsize::new(3).expect("non-zero"),
        ),
        inner.node_memory.clone(),
    ));
    {
        let mut pools = inner.pools.lock();
        pools.retain(|p| p.strong_count() > 0);
        pools.push(Arc::downgrade(&pool));
    }
    let env = RuntimeEnv {
        memory_pool: pool.clone(),
        ..inner.base_env.as_ref().clone()
    };
    // count(DISTINCT x) becomes uniq_exact(x) before DataFusion plans it as a GROUP BY x.
    let mut rules = datafusion::optimizer::Optimizer::new().rules;
    rules.insert(0, Arc::new(clickhouse::DistinctCountRule::new()));
    // DataFusion's physical rules, then ours (on the final plan).
    let mut physical_rules =
        datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
    physical_rules.push(Arc::new(crate::events::TopKBoundRule));
    if cfg.group_on_dictionary {
        physical_rules.push(Arc::new(crate::events::DictionaryGroupRule::new(
            inner.metadata_cache.clone(),
        )));
    }
    let state = datafusion::execution::SessionStateBuilder::new()
        .with_config(session)
        .with_runtime_env(Arc::new(env))
        .with_default_features()
        .with_optimizer_rules(rules)
        .with_physical_optimizer_rules(physical_rules)
        .build();
    let mut ctx = SessionContext::new_with_state(state);
    if cfg.rollup_answers && !scope.scan_only {
        ctx.add_optimizer_rule(Arc::new(crate::rollup::RollupRule));
    }
    clickhouse::register(&mut ctx)?;
    value_guard::register(
        &ctx,
        &ValueBudget {
            max_value_bytes: cfg.max_value_bytes,
            memory_limit_bytes: cfg.memory_limit_bytes,
            pool,
            sites: Arc::default(),
        },
    );
    ctx.register_udtf(
        "attribution",
        Arc::new(AttributionFunction::new(now.unwrap_or_else(Utc::now))),
    );
    let options = ScanOptions {
        pushdown_filters: cfg.parquet_pushdown_filters,
        metadata_cache: Some(inner.metadata_cache.clone()),
    };
    let base = Arc::new(EventsTable::scoped(
        inner.engine.clone(),
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

/// `state` with a deadline check between every two planning rules.
fn with_deadline_checks(state: SessionState, budget: &PlanningBudget) -> SessionState {
    let mut b = SessionStateBuilder::new_from_existing(state);
    if let Some(a) = b.analyzer() {
        a.rules = budget.interleave_analyzer(&a.rules);
    }
    if let Some(o) = b.optimizer() {
        o.rules = budget.interleave_optimizer(&o.rules);
    }
    if let Some(p) = b.physical_optimizers() {
        p.rules = budget.interleave_physical(&p.rules);
    }
    b.build()
}

/// Parses `sql`, checks its complexity, expands its ClickHouse functions, plans it and checks
/// it only reads.
async fn plan(
    inner: &Inner,
    sql: &str,
    scope: &Scope,
    now: Option<DateTime<Utc>>,
    budget: &PlanningBudget,
) -> Result<DataFrame> {
    let ctx = session(inner, scope, now)?;
    crate::seed_views::register(&ctx, sql).await?;
    let mut state = with_deadline_checks(ctx.state(), budget);
    if let Some(t) = now {
        state.execution_props_mut().query_execution_start_time = t;
    }
    let limits = inner.cfg.complexity();
    let mut statement = state.sql_to_statement(sql, "generic").map_err(|e| {
        let e = QueryError::from(e);
        let text = e.to_string();
        if text.contains("RecursionLimitExceeded") || text.contains("recursion limit exceeded") {
            complexity::too_complex(format!(
                "the statement nests parentheses, subqueries or prefix operators more than \
                 query.max_expression_depth = {} levels deep",
                limits.max_expression_depth
            ))
        } else {
            e
        }
    })?;
    if let Err(e) = limits.check(&statement) {
        complexity::drop_deep(statement, sql.len());
        return Err(e);
    }
    limits.with_stack(|| match &mut statement {
        DfStatement::Statement(s) => clickhouse::rewrite(s),
        DfStatement::Explain(e) => match e.statement.as_mut() {
            DfStatement::Statement(s) => clickhouse::rewrite(s),
            _ => Ok(()),
        },
        _ => Ok(()),
    })?;
    let plan = state.statement_to_plan(statement).await?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)?;
    Ok(DataFrame::new(state, plan))
}

/// Request body of `POST /api/analytics/query`.
#[derive(Debug, Clone, Deserialize)]
pub struct QueryRequest {
    pub sql: String,
    /// `json` (default), `ndjson`, `csv`, `arrow` or `parquet`; otherwise the `Accept` header.
    #[serde(default)]
    pub format: Option<String>,
    /// A time limit shorter than the server's `query.timeout_secs`.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}
