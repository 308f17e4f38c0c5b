//! [`QueryConfig`]: the `[query]` section of the config file, its defaults and validation.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::complexity::ComplexityLimits;

/// Upper bound of `query.max_expression_depth`: what the query threads' stacks are sized
/// for ([`crate::runtime::QUERY_THREAD_STACK_BYTES`]).
pub(crate) const MAX_EXPRESSION_DEPTH: usize = 2000;

/// Query settings (`[query]` in the config file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// Most rows a JSON answer may carry; larger results are an error asking for a LIMIT or a
    /// streamed format.
    pub max_result_rows: usize,
    /// Most bytes a JSON answer may take.
    pub max_result_bytes: usize,
    /// Parallelism of one query (defaults to the number of cores).
    pub target_partitions: usize,
    /// Worker threads of the query runtime (defaults to the number of cores).
    pub threads: usize,
    /// Nice value (0-19) of the query threads: ingest and acknowledgements run at normal
    /// priority and win the CPU when both want it.
    pub thread_nice: i32,
    /// Evaluate WHERE filters while decoding Parquet (only matching rows are decoded for the
    /// other columns); off reads whole pages and filters afterwards.
    pub parquet_pushdown_filters: bool,
    /// Run `GROUP BY` on low-cardinality strings (app, event type, platform, attribution,
    /// currency) on their dictionary codes; off groups on the decoded strings.
    pub group_on_dictionary: bool,
    /// Answer aggregations the hourly rollups hold (counts, unique users, revenue of one app
    /// by platform, event type or campaign over a time range) from them instead of a scan.
    pub rollup_answers: bool,
    /// Longest a query may run, seconds (a request may ask for less with `timeout_ms`).
    pub timeout_secs: u64,
    /// Memory one query may hold in sorts, aggregations, distinct counts and joins before
    /// spilling, bytes (0: an eighth of RAM, at least 512 MiB; see [`QueryConfig::resolved`]).
    pub memory_limit_bytes: usize,
    /// Memory all running queries together may hold, bytes (0: a quarter of RAM, at least
    /// `memory_limit_bytes`; set lower, it is also the most one query gets): a query that would take more spills or gets 422, however
    /// far it is from its own limit.
    pub total_memory_bytes: usize,
    /// Directory for spill files (default: `query-spill` under the data directory).
    pub spill_dir: Option<PathBuf>,
    /// Most bytes of spill files on the node.
    pub max_spill_bytes: u64,
    /// Queries running at once on this node; more get 429.
    pub max_concurrent_queries: usize,
    /// Queries one user may run at once; more get 429.
    pub max_concurrent_queries_per_user: usize,
    /// Memory for decoded Parquet footers of segment files, kept between queries (0: off).
    /// Only footers of files that still exist are kept, so the cache holds about 200 kB per
    /// segment a query has read (≈120 MB at 100M events, ≈0.8 GB at 500M); what it holds
    /// counts against `engine.memory_budget_mb` like the rest of the process.
    pub parquet_metadata_cache_bytes: usize,
    /// Largest string, binary or list value a function may build (`repeat`, `lpad`,
    /// `concat`, `||`, `array_repeat`, `range`, …); past it the query gets 422.
    pub max_value_bytes: usize,
    /// Most bytes of SQL in one statement. This and the four limits below bound how complex
    /// a statement may be; past one the query gets 400 `query_too_complex` naming it.
    pub max_statement_bytes: usize,
    /// Deepest nesting of expressions (a chain of n `OR`s is n deep).
    pub max_expression_depth: usize,
    /// Most expression nodes (columns, literals, operators, calls) in one statement.
    pub max_expression_nodes: usize,
    /// Most items in one `IN (…)` list.
    pub max_in_list: usize,
    /// Most queries one `UNION` / `INTERSECT` / `EXCEPT` chain combines.
    pub max_union_arity: usize,
    /// Deepest nesting of subqueries.
    pub max_subquery_depth: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            max_result_rows: 100_000,
            max_result_bytes: 64 << 20,
            target_partitions: cores,
            threads: cores,
            thread_nice: 10,
            parquet_pushdown_filters: true,
            group_on_dictionary: true,
            rollup_answers: true,
            timeout_secs: 60,
            memory_limit_bytes: 0,
            total_memory_bytes: 0,
            spill_dir: None,
            max_spill_bytes: 10 << 30,
            max_concurrent_queries: 8,
            max_concurrent_queries_per_user: 4,
            parquet_metadata_cache_bytes: 1 << 30,
            max_value_bytes: 64 << 20,
            max_statement_bytes: ComplexityLimits::default().max_statement_bytes,
            max_expression_depth: ComplexityLimits::default().max_expression_depth,
            max_expression_nodes: ComplexityLimits::default().max_expression_nodes,
            max_in_list: ComplexityLimits::default().max_in_list,
            max_union_arity: ComplexityLimits::default().max_union_arity,
            max_subquery_depth: ComplexityLimits::default().max_subquery_depth,
        }
    }
}

impl QueryConfig {
    /// This configuration with the memory limits left at 0 set from the machine's RAM.
    pub fn resolved(mut self) -> Self {
        let ram = engine::physical_memory_bytes() as usize;
        if self.memory_limit_bytes == 0 {
            let total = Some(self.total_memory_bytes).filter(|&t| t > 0);
            self.memory_limit_bytes = (ram / 8).max(512 << 20).min(total.unwrap_or(usize::MAX));
        }
        if self.total_memory_bytes == 0 {
            self.total_memory_bytes = (ram / 4).max(self.memory_limit_bytes);
        }
        self
    }

    /// The statement complexity limits of this configuration.
    pub fn complexity(&self) -> ComplexityLimits {
        ComplexityLimits {
            max_statement_bytes: self.max_statement_bytes,
            max_expression_depth: self.max_expression_depth,
            max_expression_nodes: self.max_expression_nodes,
            max_in_list: self.max_in_list,
            max_union_arity: self.max_union_arity,
            max_subquery_depth: self.max_subquery_depth,
        }
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.timeout_secs == 0 || (1..16 << 20).contains(&self.memory_limit_bytes) {
            return Err(
                "query.timeout_secs must be positive and query.memory_limit_bytes at least 16 MiB"
                    .into(),
            );
        }
        let c = self.complexity();
        if self.max_value_bytes < 1024
            || c.max_statement_bytes < 1024
            || c.max_expression_depth < 16
            || c.max_expression_depth > MAX_EXPRESSION_DEPTH
            || c.max_expression_nodes < 100
            || c.max_in_list == 0
            || c.max_union_arity < 2
            || c.max_subquery_depth == 0
            || c.max_subquery_depth > 32
        {
            return Err(format!(
                "query.max_value_bytes and query.max_statement_bytes must be at least 1024, \
                 query.max_expression_depth within 16..={MAX_EXPRESSION_DEPTH}, \
                 query.max_expression_nodes at least 100, query.max_in_list at least 1, \
                 query.max_union_arity at least 2 and query.max_subquery_depth within 1..=32"
            ));
        }
        if !(0..=19).contains(&self.thread_nice) {
            return Err("query.thread_nice must be within 0..=19".into());
        }
        Ok(())
    }
}
