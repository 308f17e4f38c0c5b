//! The host clock's NTP discipline state, read with `adjtimex(2)` (read-only), so that a node
//! whose clock is unsynchronised or drifting is visible in `/metrics` and can be alarmed on
//! (JWT `exp`/`nbf`/`iat` checks and lockout windows use the wall clock; TESTPLAN AUTH-04).

/// The wall clock in epoch milliseconds (tokens, sessions, audit times, default ranges).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What the kernel knows about the clock's synchronisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NtpState {
    /// An NTP daemon disciplines the clock and the kernel considers it synchronised.
    pub synchronized: bool,
    /// Current offset from the reference, seconds.
    pub offset_secs: f64,
    /// Maximum error estimate, seconds (16 s when nobody disciplines the clock).
    pub max_error_secs: f64,
}

/// Reads the state without changing anything; `None` if the call fails.
#[allow(unsafe_code)]
pub fn ntp_state() -> Option<NtpState> {
    // SAFETY: `timex` is plain old data; with `modes == 0` adjtimex only fills it in.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: a valid, exclusively borrowed `timex` for the duration of the call.
    let state = unsafe { libc::adjtimex(&mut t) };
    if state < 0 {
        return None;
    }
    let per_sec = if t.status & libc::STA_NANO != 0 {
        1e9
    } else {
        1e6
    };
    Some(NtpState {
        synchronized: state != libc::TIME_ERROR && t.status & libc::STA_UNSYNC == 0,
        offset_secs: t.offset as f64 / per_sec,
        max_error_secs: t.maxerror as f64 / 1e6,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_kernel_state() {
        let s = super::ntp_state().expect("adjtimex");
        assert!(s.max_error_secs >= 0.0);
        assert!(s.offset_secs.abs() < 3600.0);
    }
}
