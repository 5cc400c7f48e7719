//! Spec chapter 6, "Node info": the one request every node answers before authentication.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::encoding::{deserialize_u53, PublicKey};
use crate::frame::RequestId;

/// `node_info`: asks what the node is and what it allows ([FRAME-*], [VER-2]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodeInfo {
    /// Request id.
    pub id: RequestId,
}

/// Limits a node declares; clients and the conformance runner respect them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Limits {
    /// Largest frame accepted, in bytes.
    #[serde(deserialize_with = "deserialize_u53")]
    pub max_frame_bytes: u64,
    /// Largest canonical signed entry, in bytes.
    #[serde(deserialize_with = "deserialize_u53")]
    pub max_entry_bytes: u64,
    /// Time allowed for a handshake, in milliseconds.
    #[serde(deserialize_with = "deserialize_u53")]
    pub handshake_timeout_ms: u64,
    /// Most entries a subscription's backfill replays.
    #[serde(deserialize_with = "deserialize_u53")]
    pub max_backfill: u64,
    /// Most entries one `replicate_ok` carries.
    #[serde(deserialize_with = "deserialize_u53")]
    pub max_replicate: u64,
    /// The storage budget, in counted bytes.
    #[serde(deserialize_with = "deserialize_u53")]
    pub storage_bytes: u64,
    /// Most live subscriptions per connection.
    #[serde(deserialize_with = "deserialize_u53")]
    pub max_subscriptions: u64,
}

/// `node_info_ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodeInfoOk {
    /// Echoed request id.
    pub id: RequestId,
    /// The node's peer key.
    pub node: PublicKey,
    /// A human name for the node.
    pub name: String,
    /// Protocol versions the node speaks, most preferred first.
    pub versions: Vec<String>,
    /// Optional features the node implements (none are defined by `kith/1` yet).
    pub features: Vec<String>,
    /// The node's limits.
    pub limits: Limits,
}
