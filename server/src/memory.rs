//! Returning freed memory to the OS. mimalloc (the binary's allocator) keeps freed pages for
//! reuse and purges them lazily, on later allocator activity: after a query that used
//! hundreds of MiB the node's RSS stayed at its peak while idle (measured: 627 MiB after a
//! spilling sort, idle 79 MiB). Purging eagerly on every free (`MIMALLOC_PURGE_DELAY=0`)
//! returns it but cost ~10% of ingest throughput at batch 100, so instead the query service
//! calls [`release_freed`] when its last running query ends: one forced collection then.
//! Measured in docs/sql.md ("Memory").

/// Forces mimalloc to collect the calling thread's heap and purge every freed arena block.
/// Harmless when mimalloc is not the global allocator (its heaps are then empty).
#[allow(unsafe_code)]
pub fn release_freed() {
    // SAFETY: mi_collect takes no pointers and may be called from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
