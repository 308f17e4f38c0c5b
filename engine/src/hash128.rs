//! Sets of 128-bit hashes (xxh3-128 of event keys, of values counted by `uniqExact`): the
//! set hashes a key to its upper 64 bits instead of running SipHash over a hash again.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes a `u128` to its upper 64 bits; anything else still gets a real hash.
#[derive(Default)]
pub struct Hash128Hasher(u64);

impl Hasher for Hash128Hasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }

    fn write_u128(&mut self, k: u128) {
        self.0 = (k >> 64) as u64;
    }
}

/// A set of 128-bit hashes.
pub type Hash128Set = HashSet<u128, BuildHasherDefault<Hash128Hasher>>;
