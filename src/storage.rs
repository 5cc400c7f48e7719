//! Spec chapter 10, "Storage budget and pruning": what counts against a node's budget and the
//! order in which entries go.
//!
//! The store itself lives in the node; this module holds the arithmetic, so that every node
//! (and the conformance runner's model of one) computes the same thing.

use std::collections::VecDeque;

use crate::entry::MAX_ENTRY_BYTES;

/// A node's storage budget in counted bytes: the sum of the canonical sizes of the stored
/// entries ([PRUNE-1], [PRUNE-2]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneBudget {
    bytes: u64,
}

impl PruneBudget {
    /// A budget of `bytes`; at least [`MAX_ENTRY_BYTES`] so that any valid entry fits
    /// ([PRUNE-2]).
    pub fn new(bytes: u64) -> Result<Self, String> {
        if bytes < MAX_ENTRY_BYTES as u64 {
            return Err(format!("storage budget {bytes} is below the entry size limit {MAX_ENTRY_BYTES}"));
        }
        Ok(PruneBudget { bytes })
    }

    /// The budget in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// How many of the oldest entries (by arrival, sizes given oldest first) must go so that
    /// `total` fits the budget ([PRUNE-4]).
    pub fn entries_to_prune<'a>(&self, total: u64, oldest_first: impl IntoIterator<Item = &'a u64>) -> usize {
        let mut total = total;
        let mut n = 0;
        for size in oldest_first {
            if total <= self.bytes {
                break;
            }
            total = total.saturating_sub(*size);
            n += 1;
        }
        n
    }
}

/// A reference model of a node's store: arrival-ordered sizes. Used by tests and the
/// conformance runner to predict which entries survive.
#[derive(Debug, Clone)]
pub struct PruneModel {
    budget: PruneBudget,
    total: u64,
    arrivals: VecDeque<(u64, u64)>,
}

impl PruneModel {
    /// An empty store with `budget`.
    pub fn new(budget: PruneBudget) -> Self {
        PruneModel { budget, total: 0, arrivals: VecDeque::new() }
    }

    /// Stores an entry with a caller-chosen `tag` and `size`; returns the tags pruned.
    pub fn store(&mut self, tag: u64, size: u64) -> Vec<u64> {
        self.arrivals.push_back((tag, size));
        self.total += size;
        let mut pruned = Vec::new();
        while self.total > self.budget.bytes() {
            let Some((t, s)) = self.arrivals.pop_front() else { break };
            self.total -= s;
            pruned.push(t);
        }
        pruned
    }

    /// Counted bytes now stored.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Tags still stored, oldest first.
    pub fn stored(&self) -> impl Iterator<Item = u64> + '_ {
        self.arrivals.iter().map(|(t, _)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_go_first_until_within_budget() {
        let budget = PruneBudget::new(20_000).expect("budget");
        let mut m = PruneModel::new(budget);
        assert!(m.store(1, 9_000).is_empty());
        assert!(m.store(2, 9_000).is_empty());
        assert_eq!(m.store(3, 9_000), vec![1]);
        assert_eq!(m.store(4, 16_000), vec![2, 3]);
        assert_eq!(m.stored().collect::<Vec<_>>(), vec![4]);
        assert!(m.total() <= budget.bytes());
        assert_eq!(budget.entries_to_prune(30_000, &[5_000, 6_000, 7_000]), 2);
        assert!(PruneBudget::new(100).is_err());
    }
}
