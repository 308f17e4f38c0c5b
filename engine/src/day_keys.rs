//! The event-id keys of one UTC day held in memory by [`crate::dedupe`]: the keys still
//! arriving in a hash set, and the rest packed into one sorted array — 16 bytes a key instead
//! of the hash set's 20–40 (its buckets are at most 7/8 full and double when full). Keys are
//! xxh3-128 hashes, so they are spread evenly and a lookup starts where the key's value says
//! it should be and gallops from there: a few probes instead of a binary search's ~24.

use crate::hash128::Hash128Set;

#[derive(Default)]
pub(crate) struct DayKeys {
    fresh: Hash128Set,
    sealed: Box<[u128]>,
    /// Highest log index that inserted a key (a day leaves memory only once it is flushed).
    pub(crate) last_index: u64,
}

impl DayKeys {
    pub(crate) fn contains(&self, k: u128) -> bool {
        self.fresh.contains(&k) || sorted_contains(&self.sealed, k)
    }

    /// Adds `k` (the caller checked it is new, or does not care: adding twice keeps one).
    pub(crate) fn insert(&mut self, k: u128) {
        if !sorted_contains(&self.sealed, k) {
            self.fresh.insert(k);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.fresh.len() + self.sealed.len()
    }

    /// Removes the keys in `gone` (erased events; one pass over the packed keys).
    pub(crate) fn remove_all(&mut self, gone: &Hash128Set) {
        self.fresh.retain(|k| !gone.contains(k));
        if self.sealed.iter().any(|k| gone.contains(k)) {
            let kept: Vec<u128> = self
                .sealed
                .iter()
                .copied()
                .filter(|k| !gone.contains(k))
                .collect();
            self.sealed = kept.into_boxed_slice();
        }
    }

    /// Bytes held: the hash set's buckets (a `u128` and a control byte each) and the array.
    pub(crate) fn bytes(&self) -> u64 {
        let buckets = if self.fresh.capacity() == 0 {
            0
        } else {
            (self.fresh.capacity() * 8 / 7).next_power_of_two()
        };
        (buckets * 17 + self.sealed.len() * 16) as u64
    }

    /// Whether packing is worth it now: the fresh keys are at least `min` and at least half
    /// as many as the packed ones (so every key is copied a bounded number of times while a
    /// day is loaded segment by segment).
    pub(crate) fn worth_sealing(&self, min: usize) -> bool {
        self.fresh.len() >= min.max(self.sealed.len() / 2)
    }

    /// Packs the fresh keys into the sorted array.
    pub(crate) fn seal(&mut self) {
        if self.fresh.is_empty() {
            return;
        }
        let mut fresh: Vec<u128> = std::mem::take(&mut self.fresh).into_iter().collect();
        fresh.sort_unstable();
        let old = std::mem::take(&mut self.sealed);
        let mut out = Vec::with_capacity(old.len() + fresh.len());
        let (mut i, mut j) = (0, 0);
        while i < old.len() && j < fresh.len() {
            if old[i] <= fresh[j] {
                if old[i] == fresh[j] {
                    j += 1;
                }
                out.push(old[i]);
                i += 1;
            } else {
                out.push(fresh[j]);
                j += 1;
            }
        }
        out.extend_from_slice(&old[i..]);
        out.extend_from_slice(&fresh[j..]);
        self.sealed = out.into_boxed_slice();
    }
}

/// Whether sorted `v` holds `k`, for keys spread evenly over `u128`: starts at the position
/// `k`'s value predicts and gallops towards it before a binary search of the last step.
pub(crate) fn sorted_contains(v: &[u128], k: u128) -> bool {
    let n = v.len();
    if n == 0 {
        return false;
    }
    let guess = (((k >> 64) * n as u128) >> 64) as usize;
    let (mut lo, mut hi) = (guess, guess + 1); // k, if present, is in v[lo..hi] once done
    let mut step = 1;
    while lo > 0 && v[lo] > k {
        hi = lo;
        lo = lo.saturating_sub(step);
        step *= 2;
    }
    step = 1;
    while hi < n && v[hi - 1] < k {
        lo = hi - 1;
        hi = (hi + step).min(n);
        step *= 2;
    }
    v[lo..hi].binary_search(&k).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize, seed: u64) -> Vec<u128> {
        (0..n as u64)
            .map(|i| xxhash_rust::xxh3::xxh3_128_with_seed(&i.to_le_bytes(), seed))
            .collect()
    }

    #[test]
    fn sorted_lookup_finds_every_key_and_nothing_else() {
        for n in [0, 1, 2, 3, 17, 1000, 65_537] {
            let mut v = keys(n, 1);
            v.sort_unstable();
            for k in &v {
                assert!(sorted_contains(&v, *k), "n={n}");
            }
            for k in keys(2000, 2) {
                assert!(!sorted_contains(&v, k), "n={n}");
            }
            // Keys at the edges of the value range, and skewed ones.
            for k in [0, 1, u128::MAX, u128::MAX - 1, 1 << 100] {
                assert_eq!(sorted_contains(&v, k), v.binary_search(&k).is_ok());
            }
        }
        let skewed: Vec<u128> = (0..5000u128).collect();
        for k in [0u128, 1, 4999, 2500, 5000, u128::MAX] {
            assert_eq!(sorted_contains(&skewed, k), k < 5000);
        }
    }

    #[test]
    fn sealing_keeps_every_key_once_and_shrinks_memory() {
        let mut d = DayKeys::default();
        let a = keys(100_000, 3);
        for k in &a[..60_000] {
            d.insert(*k);
        }
        let hashed = d.bytes();
        d.seal();
        assert!(d.bytes() < hashed, "{} < {hashed}", d.bytes());
        assert_eq!(d.bytes(), 60_000 * 16);
        // Overlapping inserts after sealing: still one of each.
        for k in &a[50_000..] {
            d.insert(*k);
        }
        assert_eq!(d.len(), 100_000);
        d.seal();
        assert_eq!(d.len(), 100_000);
        assert!(d.sealed.windows(2).all(|w| w[0] < w[1]));
        for k in &a {
            assert!(d.contains(*k));
        }
        assert!(!d.contains(keys(1, 4)[0]));
    }
}
