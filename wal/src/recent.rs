//! The newest appended entries, kept as values next to their encoded records.
//!
//! openraft reads every entry back right after appending it (to apply it, and on the leader to
//! replicate it). Decoding the record again would copy each payload into a fresh allocation;
//! entries whose payload is reference-counted (`bytes::Bytes`) are cloned from here instead.
//! The cache is always a contiguous suffix of the log: appends extend it, a truncation cuts
//! it, a purge or the budget drops its oldest entries.

use std::collections::BTreeMap;
use std::ops::Range;

/// At most this many encoded bytes of entries are kept.
pub(crate) const RECENT_BYTES: usize = 64 << 20;
/// At most this many entries are kept.
pub(crate) const RECENT_ENTRIES: usize = 4096;

pub(crate) struct Recent<E> {
    entries: BTreeMap<u64, (E, usize)>,
    bytes: usize,
}

impl<E: Clone> Recent<E> {
    pub(crate) fn new() -> Self {
        Self {
            entries: BTreeMap::new(),
            bytes: 0,
        }
    }

    /// Records entries appended at consecutive indexes from `first` (`size` = encoded bytes).
    /// An append that does not continue the cached suffix replaces it.
    pub(crate) fn extend(&mut self, first: u64, entries: Vec<(E, usize)>) {
        let continues = |r: &Self| {
            r.entries
                .last_key_value()
                .is_none_or(|(k, _)| k + 1 == first)
        };
        if !continues(self) {
            self.truncate(first);
            if !continues(self) {
                // A gap below `first`: the cache must stay contiguous.
                self.clear();
            }
        }
        for (i, (e, size)) in entries.into_iter().enumerate() {
            self.bytes += size;
            self.entries.insert(first + i as u64, (e, size));
        }
        while self.bytes > RECENT_BYTES || self.entries.len() > RECENT_ENTRIES {
            match self.entries.pop_first() {
                Some((_, (_, size))) => self.bytes -= size,
                None => break,
            }
        }
    }

    /// Drops entries at `from` and above.
    pub(crate) fn truncate(&mut self, from: u64) {
        for (_, (_, size)) in self.entries.split_off(&from) {
            self.bytes -= size;
        }
    }

    /// Drops entries at `upto` and below.
    pub(crate) fn purge(&mut self, upto: u64) {
        let keep = self.entries.split_off(&(upto + 1));
        self.entries = keep;
        self.bytes = self.entries.values().map(|(_, s)| s).sum();
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// The cached part of `range`: where it starts (`range.end` if nothing is cached there)
    /// and clones of its entries. Everything of `range` below that start must be read from
    /// the log; nothing of the log exists above the cache.
    pub(crate) fn get(&self, range: &Range<u64>) -> (u64, Vec<E>) {
        let (Some(&first), Some(&last)) = (self.entries.keys().next(), self.entries.keys().last())
        else {
            return (range.end, Vec::new());
        };
        let start = range.start.max(first);
        if start >= range.end || start > last {
            return (range.end, Vec::new());
        }
        let out = self
            .entries
            .range(start..range.end)
            .map(|(_, (e, _))| e.clone())
            .collect();
        (start, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(r: &Recent<u64>, range: Range<u64>) -> (u64, Vec<u64>) {
        r.get(&range)
    }

    #[test]
    fn stays_a_contiguous_suffix() {
        let mut r = Recent::new();
        r.extend(5, (5..10).map(|i| (i, 1)).collect());
        assert_eq!(ids(&r, 0..20), (5, vec![5, 6, 7, 8, 9]));
        assert_eq!(ids(&r, 7..9), (7, vec![7, 8]));
        assert_eq!(ids(&r, 0..3), (3, vec![]));
        // Overwriting a suffix (after a conflict) replaces it.
        r.extend(8, vec![(80, 1), (90, 1)]);
        assert_eq!(ids(&r, 0..20), (5, vec![5, 6, 7, 80, 90]));
        // A gap replaces everything.
        r.extend(20, vec![(20, 1)]);
        assert_eq!(ids(&r, 0..30), (20, vec![20]));
        r.truncate(20);
        assert_eq!(ids(&r, 0..30), (30, vec![]));
    }

    #[test]
    fn purge_and_budget_drop_the_oldest() {
        let mut r = Recent::new();
        r.extend(1, (1..=10).map(|i| (i, 1)).collect());
        r.purge(4);
        assert_eq!(ids(&r, 0..20), (5, vec![5, 6, 7, 8, 9, 10]));
        r.extend(11, vec![(11, RECENT_BYTES)]);
        assert_eq!(ids(&r, 0..20), (11, vec![11]));
        r.extend(
            12,
            (12..12 + RECENT_ENTRIES as u64 + 3)
                .map(|i| (i, 0))
                .collect(),
        );
        let (start, got) = ids(&r, 0..u64::MAX);
        assert_eq!(got.len(), RECENT_ENTRIES);
        assert_eq!(start, 15);
    }
}
