//! Spec chapter 6, "Node info": the one request every node answers before authentication.

#[cfg(feature = "gen")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::encoding::{deserialize_u53, PublicKey};
use crate::envelope::RequestId;

/// `node_info`: asks what the node is and what it allows ([HS-4]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct NodeInfo {
    /// Request id.
    pub id: RequestId,
}

/// Limits a node declares; clients and the conformance runner respect them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
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
    /// Deepest nesting of a frame's JSON; 64 in kith/1 ([ENC-8]).
    #[serde(deserialize_with = "deserialize_u53")]
    pub max_nesting_depth: u64,
    /// Most open connections from one remote IP address ([FRAME-42]).
    #[serde(deserialize_with = "deserialize_u53")]
    pub max_connections_per_address: u64,
    /// Most connections, node-wide, that are open and have not been sent `welcome` ([FRAME-43]).
    #[serde(deserialize_with = "deserialize_u53")]
    pub max_pending_handshakes: u64,
    /// Size and refill rate of each connection's token bucket of received frames ([FRAME-45]);
    /// at least [`MIN_REQUESTS_PER_SECOND`] ([HS-53]).
    #[serde(deserialize_with = "deserialize_u53")]
    pub max_requests_per_second: u64,
    /// Bound of one connection's outbound queue, in payload bytes ([FRAME-34]).
    #[serde(deserialize_with = "deserialize_u53")]
    pub max_queued_bytes: u64,
    /// Most identity notes one author key may have held at once ([IDENT-25], [HS-56]).
    #[serde(deserialize_with = "deserialize_u53")]
    pub max_notes: u64,
    /// Most counted bytes ([`crate::identity::IdentityNote::size`]) of the notes one author key
    /// may have held at once ([IDENT-25]); at least [`crate::identity::MAX_NOTE_SIZE`] ([HS-56]).
    #[serde(deserialize_with = "deserialize_u53")]
    pub max_note_bytes: u64,
    /// Most keys in one account's follow set ([IDENT-26], [HS-56]).
    #[serde(deserialize_with = "deserialize_u53")]
    pub max_follows: u64,
    /// Most filter items (the elements of `authors`, `threads` and `mentions`, summed) that one
    /// connection's live subscriptions may hold together ([FEED-34]); at least
    /// [`crate::feed::MAX_FILTER_ITEMS`] ([HS-57]).
    #[serde(deserialize_with = "deserialize_u53")]
    pub max_filter_items: u64,
    /// Most filter items that all connections' live subscriptions may hold together
    /// ([FEED-35]); at least [`Limits::min_total_filter_items`] ([HS-57]).
    #[serde(deserialize_with = "deserialize_u53")]
    pub max_total_filter_items: u64,
}

impl Limits {
    /// The least `max_queued_bytes` a node may report: room for a full backfill or a full
    /// `replicate_ok` of entries of the largest size, each with its envelope, plus the request's
    /// other answers ([FRAME-37], [HS-54]).
    pub fn min_queued_bytes(&self) -> u64 {
        self.max_backfill
            .max(self.max_replicate)
            .saturating_mul(self.max_entry_bytes.saturating_add(EVENT_ENVELOPE_BYTES))
            .saturating_add(65_536)
    }
}

impl Limits {
    /// The least `max_total_filter_items` a node may report: four times what the connections of
    /// one address may hold, so that one address holds at most a quarter of the node-wide bound
    /// and cannot by itself make `subscribe` fail for everyone else ([HS-57], [FEED-35]).
    pub fn min_total_filter_items(&self) -> u64 {
        self.max_connections_per_address.saturating_mul(self.max_filter_items).saturating_mul(4)
    }
}

/// Bytes an `event` push adds around its entry, or a `replicate_ok` around each of its entries,
/// at most (members and punctuation), used by [`Limits::min_queued_bytes`].
pub const EVENT_ENVELOPE_BYTES: u64 = 256;

/// `node_info_ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
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

/// The least `max_requests_per_second` a node may report ([HS-53]): `hello`, `auth` and two
/// more requests fit in a connection's first second.
pub const MIN_REQUESTS_PER_SECOND: u64 = 4;

crate::decode::decode_by_serde!(NodeInfo);
