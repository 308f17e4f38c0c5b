//! The query runtime: a Tokio runtime of its own, with lower-priority worker threads, on which
//! every query is planned and executed. Ingest and the HTTP server run on the main runtime,
//! so a CPU-heavy query competes with acknowledgements only through the kernel scheduler,
//! which favours the main runtime's normal-priority threads (the InfluxDB IOx pattern).

use std::future::Future;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

use crate::error::{QueryError, Result};

/// Stack of each query thread. Planning recursion is stack-safe on its own (DataFusion's
/// `recursive_protection` moves deep recursion to heap-allocated stack segments), but
/// evaluating an expression recurses once per nesting level on this stack. At
/// `query.max_expression_depth`'s upper bound ([`crate::config::MAX_EXPRESSION_DEPTH`]) the
/// deepest expressions the tests run need well under a quarter of it (docs/sql.md). Only the
/// pages a thread touches take memory.
pub(crate) const QUERY_THREAD_STACK_BYTES: usize = 16 << 20;

pub(crate) struct QueryRuntime {
    rt: Option<Runtime>,
}

impl QueryRuntime {
    pub(crate) fn new(threads: usize, nice: i32) -> Result<Self> {
        let rt = Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("query")
            .thread_stack_size(QUERY_THREAD_STACK_BYTES)
            .on_thread_start(move || engine::lower_current_thread_priority(nice))
            .enable_all()
            .build()
            .map_err(|e| QueryError::Execution(format!("cannot start the query runtime: {e}")))?;
        Ok(Self { rt: Some(rt) })
    }

    fn handle(&self) -> &Handle {
        self.rt
            .as_ref()
            .expect("runtime present until drop")
            .handle()
    }

    pub(crate) fn spawn<F>(&self, f: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle().spawn(f)
    }
}

impl Drop for QueryRuntime {
    fn drop(&mut self) {
        // Dropping a runtime blocks; this may run inside the server's runtime at shutdown.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
