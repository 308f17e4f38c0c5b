//! The memory all running queries share ([`NodeMemory`], `query.total_memory_bytes`) and each
//! query's pool inside it ([`QueryPool`], `query.memory_limit_bytes`): a reservation must fit
//! both, so one query may use a large share of RAM for an exact distinct count while many at
//! once cannot together exhaust the machine. A reservation that does not fit is an error
//! DataFusion's spilling operators answer by spilling; the others fail the query with
//! `resources_exhausted` (422).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};

/// Bytes reserved by all queries of the node, against `query.total_memory_bytes`.
#[derive(Debug)]
pub(crate) struct NodeMemory {
    limit: usize,
    used: AtomicUsize,
}

impl NodeMemory {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    fn try_take(&self, bytes: usize) -> Result<()> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&n| n <= self.limit)
            })
            .map(|_| ())
            .map_err(|used| {
                DataFusionError::ResourcesExhausted(format!(
                    "the node's queries together hold {used} of query.total_memory_bytes = {} \
                     and this query asked for {bytes} more",
                    self.limit
                ))
            })
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// One query's pool (`inner`, limited to `query.memory_limit_bytes`) drawing on the node's.
#[derive(Debug)]
pub(crate) struct QueryPool<P> {
    inner: P,
    node: Arc<NodeMemory>,
}

impl<P: MemoryPool> QueryPool<P> {
    pub(crate) fn new(inner: P, node: Arc<NodeMemory>) -> Self {
        Self { inner, node }
    }
}

impl<P: MemoryPool> MemoryPool for QueryPool<P> {
    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer)
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer)
    }

    /// Infallible growth (DataFusion's for memory already allocated): counted, never refused.
    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.node.used.fetch_add(additional, Ordering::AcqRel);
        self.inner.grow(reservation, additional)
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink);
        self.node.give_back(shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        self.node.try_take(additional)?;
        self.inner
            .try_grow(reservation, additional)
            .inspect_err(|_| self.node.give_back(additional))
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::GreedyMemoryPool;

    #[test]
    fn a_query_is_held_to_its_own_limit_and_all_queries_to_the_nodes() {
        let node = Arc::new(NodeMemory::new(100));
        let a: Arc<dyn MemoryPool> =
            Arc::new(QueryPool::new(GreedyMemoryPool::new(60), node.clone()));
        let b: Arc<dyn MemoryPool> =
            Arc::new(QueryPool::new(GreedyMemoryPool::new(60), node.clone()));
        let mut ra = MemoryConsumer::new("a").register(&a);
        let mut rb = MemoryConsumer::new("b").register(&b);
        ra.try_grow(50).unwrap();
        // Its own limit: 50 + 20 > 60; the node's reservation is given back.
        assert!(ra.try_grow(20).is_err());
        assert_eq!(node.used.load(Ordering::Acquire), 50);
        // Within b's limit but not the node's: 50 + 55 > 100.
        let err = rb.try_grow(55).unwrap_err().to_string();
        assert!(err.contains("query.total_memory_bytes"), "{err}");
        rb.try_grow(50).unwrap();
        // The node is full until a query lets go.
        assert!(rb.try_grow(1).is_err());
        drop(ra);
        assert_eq!(node.used.load(Ordering::Acquire), 50);
        rb.try_grow(10).unwrap();
        drop(rb);
        assert_eq!(node.used.load(Ordering::Acquire), 0);
    }
}
