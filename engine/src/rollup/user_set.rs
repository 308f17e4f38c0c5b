//! Sets of a rollup's dense user ids, and unions of them.

use super::*;

/// Below this many users a set is a sorted vector (one allocation, 4 bytes a user);
/// campaign-hours are many and mostly small, so bitmaps there would cost ~3× the memory.
pub(super) const SMALL_SET: usize = 256;

/// A set of dense user ids: a sorted vector while small, a roaring bitmap once large.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) enum UserSet {
    Small(Vec<u32>),
    Large(RoaringBitmap),
}

impl UserSet {
    pub(super) fn insert(&mut self, u: u32) {
        match self {
            UserSet::Small(v) => match v.binary_search(&u) {
                Ok(_) => {}
                Err(_) if v.len() >= SMALL_SET => {
                    let mut b: RoaringBitmap = v.iter().copied().collect();
                    b.insert(u);
                    *self = UserSet::Large(b);
                }
                Err(i) => v.insert(i, u),
            },
            UserSet::Large(b) => {
                b.insert(u);
            }
        }
    }

    /// Adds every user of `other`.
    pub(super) fn union(&mut self, other: UserSet) {
        match (&mut *self, other) {
            (UserSet::Large(a), UserSet::Large(b)) => *a |= b,
            (UserSet::Large(a), UserSet::Small(v)) => a.extend(v),
            (UserSet::Small(v), UserSet::Large(mut b)) => {
                b.extend(v.iter().copied());
                *self = UserSet::Large(b);
            }
            (UserSet::Small(_), UserSet::Small(v)) => v.into_iter().for_each(|u| self.insert(u)),
        }
    }

    pub(super) fn max(&self) -> Option<u32> {
        match self {
            UserSet::Small(v) => v.last().copied(),
            UserSet::Large(b) => b.max(),
        }
    }

    pub(super) fn for_each(&self, mut f: impl FnMut(u32)) {
        match self {
            UserSet::Small(v) => v.iter().for_each(|u| f(*u)),
            UserSet::Large(b) => b.iter().for_each(f),
        }
    }

    pub(super) fn bytes(&self) -> u64 {
        match self {
            UserSet::Small(v) => 4 * v.len() as u64,
            UserSet::Large(b) => b.serialized_size() as u64,
        }
    }
}

/// A union of user sets being built: a plain bit per user id when that is small enough (each
/// member is then one store, however many sets are added), else a roaring bitmap.
pub(super) enum Union {
    Dense(Vec<u64>),
    Sparse(RoaringBitmap),
}

impl Union {
    /// For ids below `max_id`; dense if `max_id / 8` bytes is within `dense_budget`.
    pub(super) fn new(max_id: u32, dense_budget: usize) -> Self {
        let words = max_id as usize / 64 + 1;
        if words * 8 <= dense_budget {
            Union::Dense(vec![0; words])
        } else {
            Union::Sparse(RoaringBitmap::new())
        }
    }

    pub(super) fn add(&mut self, set: &UserSet) {
        match (self, set) {
            (Union::Sparse(b), UserSet::Large(l)) => *b |= l,
            (Union::Sparse(b), UserSet::Small(v)) => b.extend(v.iter().copied()),
            (Union::Dense(w), s) => s.for_each(|u| {
                if let Some(x) = w.get_mut(u as usize / 64) {
                    *x |= 1 << (u % 64);
                }
            }),
        }
    }

    pub(super) fn len(&self) -> u64 {
        match self {
            Union::Dense(w) => w.iter().map(|x| u64::from(x.count_ones())).sum(),
            Union::Sparse(b) => b.len(),
        }
    }

    /// The union as a bitmap.
    pub(super) fn into_bitmap(self) -> RoaringBitmap {
        match self {
            Union::Sparse(b) => b,
            Union::Dense(w) => {
                let ids = w.into_iter().enumerate().flat_map(|(i, mut x)| {
                    std::iter::from_fn(move || {
                        (x != 0).then(|| {
                            let bit = x.trailing_zeros();
                            x &= x - 1;
                            i as u32 * 64 + bit
                        })
                    })
                });
                RoaringBitmap::from_sorted_iter(ids).unwrap_or_default()
            }
        }
    }
}
