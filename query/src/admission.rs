//! Admission control: at most `max_concurrent_queries` queries run on a node, and at most
//! `max_concurrent_queries_per_user` for one user; past either the query is refused at once
//! (429 with Retry-After), so overload sheds work instead of queueing memory.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{QueryError, Result};

pub(crate) struct Limiter {
    node: Arc<Semaphore>,
    node_max: usize,
    per_user: usize,
    users: Arc<Mutex<HashMap<String, usize>>>,
}

/// A running query's place; released when dropped (when the answer is complete or abandoned).
pub(crate) struct Admission {
    _node: OwnedSemaphorePermit,
    user: String,
    users: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut users = self.users.lock();
        if let Some(n) = users.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                users.remove(&self.user);
            }
        }
    }
}

impl Limiter {
    pub(crate) fn new(node_max: usize, per_user: usize) -> Self {
        Self {
            node: Arc::new(Semaphore::new(node_max.max(1))),
            node_max: node_max.max(1),
            per_user: per_user.max(1),
            users: Arc::default(),
        }
    }

    pub(crate) fn admit(&self, user: &str) -> Result<Admission> {
        let mut users = self.users.lock();
        let mine = users.get(user).copied().unwrap_or(0);
        if mine >= self.per_user {
            return Err(QueryError::Busy(format!(
                "{mine} queries of this user are running (query.max_concurrent_queries_per_user = {}); retry when one finishes",
                self.per_user
            )));
        }
        let permit = self.node.clone().try_acquire_owned().map_err(|_| {
            QueryError::Busy(format!(
                "{} queries are running on this node (query.max_concurrent_queries); retry shortly",
                self.node_max
            ))
        })?;
        *users.entry(user.to_string()).or_insert(0) += 1;
        Ok(Admission {
            _node: permit,
            user: user.to_string(),
            users: self.users.clone(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn per_user_and_per_node_bounds_release_on_drop() {
        let l = Limiter::new(3, 2);
        let a1 = l.admit("ann").unwrap();
        let a2 = l.admit("ann").unwrap();
        assert!(matches!(l.admit("ann"), Err(QueryError::Busy(_))));
        let b1 = l.admit("bob").unwrap();
        assert!(
            matches!(l.admit("cat"), Err(QueryError::Busy(_))),
            "node full"
        );
        drop(a1);
        let c1 = l.admit("cat").unwrap();
        drop((a2, b1, c1));
        assert!(l.users.lock().is_empty());
        let _again = l.admit("ann").unwrap();
    }
}
