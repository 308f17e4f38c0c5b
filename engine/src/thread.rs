//! Thread priority for background work (flushes here, query workers in `query`).

/// Sets the calling thread's nice value (Linux: per thread), so the thread yields CPU to
/// normal-priority threads such as those acknowledging writes. Failure only costs latency.
#[allow(unsafe_code)]
pub fn lower_current_thread_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    // SAFETY: gettid and setpriority take plain integers and touch no memory of ours.
    let rc = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice)
    };
    if rc != 0 {
        tracing::warn!(nice, "could not lower a background thread's priority");
    }
}
