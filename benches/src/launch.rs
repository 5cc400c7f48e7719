//! What both tools need of a node the conformance harness launched, beyond its own accessors.

use std::path::PathBuf;

use kith_conformance::launch::LaunchedNode;

/// The launched node's data directory (for its store's size on disk): `data` beside its seed
/// file, as [`LaunchedNode::start`] lays out the node's temporary directory.
pub fn data_dir(node: &LaunchedNode) -> Option<PathBuf> {
    node.seed_file().parent().map(|d| d.join("data"))
}
