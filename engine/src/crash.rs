//! Named crash points for fault tests: when a configured point is reached the process aborts
//! at once (like `kill -9` at that exact step). Empty in production.

use std::collections::HashSet;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct CrashPoints(Arc<HashSet<String>>);

impl CrashPoints {
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        Self(Arc::new(names.into_iter().collect()))
    }

    pub fn hit(&self, name: &str) {
        if self.0.contains(name) {
            eprintln!("crash point {name} reached: aborting");
            std::process::abort();
        }
    }
}
