//! The vector files, one module each.

mod certificates;
mod encodings;
mod entries;
mod frames;
mod handshake;
mod identities;
mod invites;
mod replacements;
mod requests;
mod signing;
mod storage;
mod versioning;

use serde_json::Value;

/// Every vector file by stem.
pub fn all() -> Vec<(&'static str, Value)> {
    vec![
        ("encodings", encodings::file()),
        ("signing", signing::file()),
        ("certificates", certificates::file()),
        ("handshake", handshake::file()),
        ("entries", entries::file()),
        ("invites", invites::file()),
        ("replacements", replacements::file()),
        ("requests", requests::file()),
        ("frames", frames::file()),
        ("identities", identities::file()),
        ("storage", storage::file()),
        ("versioning", versioning::file()),
    ]
}
