//! Every conformance case, by family. IDs are stable: a case keeps its ID forever and new
//! cases get new IDs; nothing is numbered by position.

use crate::case::Case;

pub mod accounts;
pub mod entries;
pub mod feeds;
pub mod frame;
pub mod handshake;
pub mod identity;
pub mod limits;
pub mod storage;

/// The families: ID prefix and what they cover.
pub const FAMILIES: &[(&str, &str)] = &[
    ("HS", "handshake (chapters 04, 05)"),
    ("CLI", "the client's own handshake checks (chapter 05)"),
    ("ROB", "framing and encoding robustness (chapters 01, 06)"),
    ("PUB", "publishing entries (chapters 02, 03, 08)"),
    ("ALLOW", "publish allowance and counters (chapter 07)"),
    ("INV", "accounts and invites (chapter 07)"),
    ("KEY", "key replacement (chapter 07)"),
    ("RM", "removing users (chapter 07)"),
    ("SUB", "subscriptions: backfill, stored_end, live events, filters (chapter 08)"),
    ("HEADS", "feed heads (chapter 08)"),
    ("REP", "replication (chapter 08)"),
    ("GET", "single entries (chapter 08)"),
    ("IDENT", "identity notes (chapter 09)"),
    ("FOLLOW", "follow sets (chapter 09)"),
    ("PRUNE", "storage budget and pruning (chapter 10)"),
    ("RESTART", "durability across restarts (chapters 08, 10)"),
    ("VER", "versions and features (chapter 11)"),
    ("LIMIT", "resource limits (chapter 06 §8)"),
];

/// Every case, in ID order.
pub fn all() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(handshake::cases());
    v.extend(frame::cases());
    v.extend(entries::cases());
    v.extend(accounts::cases());
    v.extend(feeds::cases());
    v.extend(identity::cases());
    v.extend(storage::cases());
    v.extend(limits::cases());
    v.sort_by_key(|c| c.id);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_well_formed_and_in_a_family() {
        let cases = all();
        let mut seen = std::collections::BTreeSet::new();
        for c in &cases {
            assert!(seen.insert(c.id), "duplicate id {}", c.id);
            assert!(c.id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'), "{}", c.id);
            assert!(FAMILIES.iter().any(|(f, _)| *f == c.family()), "{} has no family", c.id);
            assert!(!c.requirements.is_empty(), "{} cites no requirement", c.id);
        }
        assert!(cases.len() >= 120, "only {} cases", cases.len());
    }
}
