//! The set of stored `(app_id, event_id)` keys, as 128-bit hashes, split into shards so that
//! growing it never rehashes millions of keys at once while the engine lock is held.

use crate::hash128::Hash128Set;

const SHARDS: usize = 64;

/// Keys are already xxh3-128 hashes; the shard is chosen by their lower bits, the slot within
/// it by their upper bits ([`Hash128Set`]).
type Shard = Hash128Set;

pub(crate) fn key(app_id: &str, event_id: &str) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(app_id.as_bytes());
    h.update(&[0]);
    h.update(event_id.as_bytes());
    h.digest128()
}

pub(crate) struct DedupeSet {
    shards: Vec<Shard>,
}

impl DedupeSet {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }

    /// Inserts `k`; false if it was already present.
    pub(crate) fn insert(&mut self, k: u128) -> bool {
        self.shards[(k as usize) % SHARDS].insert(k)
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(Shard::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_app_and_once() {
        let mut s = DedupeSet::new();
        assert!(s.insert(key("a", "1")));
        assert!(!s.insert(key("a", "1")));
        assert!(s.insert(key("b", "1")));
        assert!(s.insert(key("a1", ""))); // no ambiguity between ("a","1") and ("a1","")
        assert_eq!(s.len(), 3);
    }
}
