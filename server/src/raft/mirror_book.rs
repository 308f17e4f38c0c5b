//! The replicated position of every mirror: where its sink has acknowledged up to, whether an
//! admin paused it, and the last error its runner reported. Changed only by applying
//! [`MirrorOp`]s in log order, so every node holds the same book; it is recorded in the
//! engine manifest's checkpoint with each flush and shipped inside snapshots and backups.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A change to the mirrors' book, proposed by a mirror's runner (on the leader) or by an admin.
/// (Variants are encoded by position in the log: new ones go last.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MirrorOp {
    /// First run of a mirror the book does not know: it starts at the log's beginning, or
    /// (`from_now`) right after this entry. Ignored when the mirror is already known.
    Start {
        name: String,
        from_now: bool,
    },
    /// The sink acknowledged every stored event of the entries up to `through`: `seen` stored
    /// events passed over since the cursor, `sent` of them sent (the others belong to apps the
    /// mirror does not take). Ignored unless `generation` is current and `through` is ahead.
    Acked {
        name: String,
        generation: u64,
        through: u64,
        seen: u64,
        sent: u64,
        at_ms: i64,
        /// Age of the oldest event still not sent, as the runner saw it (ms).
        lag_ms: i64,
    },
    /// The runner could not write to the sink (or read from the table) and is retrying.
    Failed {
        name: String,
        generation: u64,
        error: String,
        at_ms: i64,
    },
    Pause {
        name: String,
    },
    Resume {
        name: String,
    },
    /// Re-send from the entry `from` on: the cursor moves back to just before it, to a point
    /// where `seen_before` stored events precede it (counted by the proposing node).
    Replay {
        name: String,
        from: u64,
        seen_before: u64,
    },
    /// The sink holds none of erasure `request_id`'s rows any more (issue 29).
    Erased {
        name: String,
        request_id: String,
    },
}

impl MirrorOp {
    pub fn name(&self) -> &str {
        match self {
            MirrorOp::Start { name, .. }
            | MirrorOp::Acked { name, .. }
            | MirrorOp::Failed { name, .. }
            | MirrorOp::Pause { name }
            | MirrorOp::Resume { name }
            | MirrorOp::Replay { name, .. }
            | MirrorOp::Erased { name, .. } => name,
        }
    }
}

/// One mirror's replicated position.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MirrorProgress {
    /// Every stored event of the entries up to this index reached the sink.
    pub cursor: u64,
    /// Highest cursor ever acknowledged; a batch at or below it may already be in the sink.
    pub high_water: u64,
    /// Bumped by a replay, so acknowledgements of a runner that read before it are ignored.
    pub generation: u64,
    /// Stored events (of every app) at or before the cursor.
    pub seen: u64,
    /// Events sent and acknowledged since the mirror was added (replays count again).
    pub sent_events: u64,
    pub paused: bool,
    /// Set by a failure, cleared by the next acknowledgement.
    pub retrying: bool,
    pub last_error: Option<String>,
    pub last_error_at_ms: Option<i64>,
    pub acked_at_ms: Option<i64>,
    pub lag_ms: i64,
    /// Erasures whose rows the sink no longer holds.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub erased: std::collections::BTreeSet<String>,
}

/// Every mirror's progress, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MirrorBook {
    pub mirrors: BTreeMap<String, MirrorProgress>,
}

/// What applying an op did, for the proposer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MirrorOutcome {
    Applied,
    /// Nothing changed: stale generation, not ahead, already known.
    Ignored,
    NotFound,
}

impl MirrorBook {
    pub fn get(&self, name: &str) -> Option<&MirrorProgress> {
        self.mirrors.get(name)
    }

    /// Applies `op`, the entry at `index`; `stored` is how many stored events the log holds
    /// up to and including that entry (for a mirror that starts now).
    pub fn apply(&mut self, index: u64, stored: u64, op: &MirrorOp) -> MirrorOutcome {
        if let MirrorOp::Start { name, from_now } = op {
            if self.mirrors.contains_key(name) {
                return MirrorOutcome::Ignored;
            }
            let (cursor, seen) = if *from_now { (index, stored) } else { (0, 0) };
            self.mirrors.insert(
                name.clone(),
                MirrorProgress {
                    cursor,
                    high_water: cursor,
                    seen,
                    ..Default::default()
                },
            );
            return MirrorOutcome::Applied;
        }
        let Some(p) = self.mirrors.get_mut(op.name()) else {
            return MirrorOutcome::NotFound;
        };
        match op {
            MirrorOp::Start { .. } => MirrorOutcome::Ignored,
            MirrorOp::Acked {
                generation,
                through,
                seen,
                sent,
                at_ms,
                lag_ms,
                ..
            } => {
                if *generation != p.generation || *through <= p.cursor {
                    return MirrorOutcome::Ignored;
                }
                p.cursor = *through;
                p.high_water = p.high_water.max(*through);
                p.seen += seen;
                p.sent_events += sent;
                p.retrying = false;
                p.acked_at_ms = Some(*at_ms);
                p.lag_ms = *lag_ms;
                MirrorOutcome::Applied
            }
            MirrorOp::Failed {
                generation,
                error,
                at_ms,
                ..
            } => {
                if *generation != p.generation {
                    return MirrorOutcome::Ignored;
                }
                p.retrying = true;
                p.last_error = Some(error.clone());
                p.last_error_at_ms = Some(*at_ms);
                MirrorOutcome::Applied
            }
            MirrorOp::Pause { .. } => {
                p.paused = true;
                MirrorOutcome::Applied
            }
            MirrorOp::Resume { .. } => {
                p.paused = false;
                MirrorOutcome::Applied
            }
            MirrorOp::Replay {
                from, seen_before, ..
            } => {
                p.cursor = from.saturating_sub(1);
                p.seen = *seen_before;
                p.generation += 1;
                MirrorOutcome::Applied
            }
            MirrorOp::Erased { request_id, .. } => {
                if p.erased.insert(request_id.clone()) {
                    MirrorOutcome::Applied
                } else {
                    MirrorOutcome::Ignored
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn acked(gen: u64, through: u64, n: u64) -> MirrorOp {
        MirrorOp::Acked {
            name: "pg".into(),
            generation: gen,
            through,
            seen: n,
            sent: n,
            at_ms: 1,
            lag_ms: 0,
        }
    }

    #[test]
    fn cursor_moves_forward_only_within_its_generation() {
        let mut b = MirrorBook::default();
        assert_eq!(b.apply(5, 0, &acked(0, 9, 1)), MirrorOutcome::NotFound);
        let start = MirrorOp::Start {
            name: "pg".into(),
            from_now: true,
        };
        assert_eq!(b.apply(10, 40, &start), MirrorOutcome::Applied);
        assert_eq!(b.apply(11, 40, &start), MirrorOutcome::Ignored);
        assert_eq!(
            (b.get("pg").unwrap().cursor, b.get("pg").unwrap().seen),
            (10, 40)
        );
        assert_eq!(b.apply(12, 0, &acked(0, 20, 5)), MirrorOutcome::Applied);
        assert_eq!(b.apply(13, 0, &acked(0, 15, 5)), MirrorOutcome::Ignored);
        let replay = MirrorOp::Replay {
            name: "pg".into(),
            from: 3,
            seen_before: 2,
        };
        assert_eq!(b.apply(14, 0, &replay), MirrorOutcome::Applied);
        let p = b.get("pg").unwrap();
        assert_eq!(
            (p.cursor, p.high_water, p.generation, p.seen),
            (2, 20, 1, 2)
        );
        // A runner that read before the replay cannot move the cursor past it.
        assert_eq!(b.apply(15, 0, &acked(0, 30, 5)), MirrorOutcome::Ignored);
        assert_eq!(b.apply(16, 0, &acked(1, 30, 5)), MirrorOutcome::Applied);
        assert_eq!(b.get("pg").unwrap().sent_events, 10);
    }

    #[test]
    fn failure_sets_retrying_until_the_next_ack() {
        let mut b = MirrorBook::default();
        b.apply(
            1,
            0,
            &MirrorOp::Start {
                name: "pg".into(),
                from_now: false,
            },
        );
        let failed = MirrorOp::Failed {
            name: "pg".into(),
            generation: 0,
            error: "connection refused".into(),
            at_ms: 7,
        };
        b.apply(2, 0, &failed);
        assert!(b.get("pg").unwrap().retrying);
        b.apply(3, 0, &acked(0, 2, 1));
        let p = b.get("pg").unwrap();
        assert!(!p.retrying);
        assert_eq!(p.last_error.as_deref(), Some("connection refused"));
    }
}
