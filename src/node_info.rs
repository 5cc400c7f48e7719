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

    /// The least `max_total_filter_items` a node may report: four times what the connections of
    /// one address may hold, so that one address holds at most a quarter of the node-wide bound
    /// and cannot by itself make `subscribe` fail for everyone else ([HS-57], [FEED-35]).
    pub fn min_total_filter_items(&self) -> u64 {
        self.max_connections_per_address.saturating_mul(self.max_filter_items).saturating_mul(4)
    }
}

/// The `max_frame_bytes` every kith/1 node reports ([HS-6]); the decoder's
/// [`crate::frame::MAX_FRAME_BYTES`], which a test in `frame` holds equal.
pub const KITH1_MAX_FRAME_BYTES: u64 = 65_536;

/// The `max_nesting_depth` every kith/1 node reports ([HS-52]); the decoder's
/// [`crate::frame::MAX_FRAME_DEPTH`], which a test in `frame` holds equal.
pub const KITH1_MAX_NESTING_DEPTH: u64 = 64;

/// The most `max_replicate` a node may report ([HS-10]).
pub const MAX_REPORTED_REPLICATE: u64 = 1000;

/// Largest integer a `U53` member can carry ([ENC-6]).
const MAX_U53: u64 = (1 << 53) - 1;

/// How a reported limit breaks its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// It must equal this value.
    Exactly(u64),
    /// It must be at least this value.
    AtLeast(u64),
    /// It must be at most this value.
    AtMost(u64),
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::Exactly(v) => write!(f, "must be {v}"),
            Bound::AtLeast(v) => write!(f, "must be at least {v}"),
            Bound::AtMost(v) => write!(f, "must be at most {v}"),
        }
    }
}

/// A limit a node may not report: the member, its value, the bound it breaks and the rule
/// that sets the bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{member} {value} {bound} ({rule}{why})")]
pub struct LimitError {
    /// The member of `limits`, as on the wire.
    pub member: &'static str,
    /// The value reported.
    pub value: u64,
    /// The bound it breaks.
    pub bound: Bound,
    /// The requirement that sets the bound.
    pub rule: &'static str,
    /// How the bound is computed, when it depends on other limits (empty otherwise).
    pub why: &'static str,
}

impl Limits {
    /// Every way these limits break the bounds the spec sets on what a node may report, in
    /// member order: the fixed kith/1 values ([HS-6], [HS-7], [HS-52]), the least values
    /// ([HS-8] to [HS-11], [HS-53], [HS-54], [HS-56], [HS-57], [PRUNE-2]), the most
    /// `max_replicate` ([HS-10]) and the `U53` range of every member ([ENC-6]). The node checks
    /// its configuration with it before it starts; the runner's HS-LIMITS cases judge a node's
    /// `node_info_ok` with it. Empty when the limits are legal.
    pub fn violations(&self) -> Vec<LimitError> {
        let entry = crate::entry::MAX_ENTRY_BYTES as u64;
        let (min_queue, min_total) = (self.min_queued_bytes(), self.min_total_filter_items());
        let mut out = Vec::new();
        let mut rule = |member, value, bound, rule, why| {
            let broken = match bound {
                Bound::Exactly(b) => value != b,
                Bound::AtLeast(b) => value < b,
                Bound::AtMost(b) => value > b,
            };
            if broken {
                out.push(LimitError { member, value, bound, rule, why });
            }
        };
        use Bound::{AtLeast, AtMost, Exactly};
        rule("max_frame_bytes", self.max_frame_bytes, Exactly(KITH1_MAX_FRAME_BYTES), "HS-6", "");
        rule("max_entry_bytes", self.max_entry_bytes, Exactly(entry), "HS-7", "");
        rule("handshake_timeout_ms", self.handshake_timeout_ms, AtLeast(1000), "HS-8", "");
        rule("max_backfill", self.max_backfill, AtLeast(1), "HS-9", "");
        rule("max_replicate", self.max_replicate, AtLeast(1), "HS-10", "");
        rule("max_replicate", self.max_replicate, AtMost(MAX_REPORTED_REPLICATE), "HS-10", "");
        rule("storage_bytes", self.storage_bytes, AtLeast(entry), "PRUNE-2", ": max_entry_bytes");
        rule("max_subscriptions", self.max_subscriptions, AtLeast(1), "HS-11", "");
        rule("max_nesting_depth", self.max_nesting_depth, Exactly(KITH1_MAX_NESTING_DEPTH), "HS-52", "");
        rule("max_connections_per_address", self.max_connections_per_address, AtLeast(1), "HS-53", "");
        rule("max_pending_handshakes", self.max_pending_handshakes, AtLeast(1), "HS-53", "");
        rule("max_requests_per_second", self.max_requests_per_second, AtLeast(MIN_REQUESTS_PER_SECOND), "HS-53", "");
        let queue_why = ": max(max_backfill, max_replicate) × (max_entry_bytes + 256) + 65536";
        rule("max_queued_bytes", self.max_queued_bytes, AtLeast(min_queue), "HS-54", queue_why);
        rule("max_notes", self.max_notes, AtLeast(1), "HS-56", "");
        rule("max_note_bytes", self.max_note_bytes, AtLeast(crate::identity::MAX_NOTE_SIZE), "HS-56", "");
        rule("max_follows", self.max_follows, AtLeast(1), "HS-56", "");
        let items = crate::feed::MAX_FILTER_ITEMS as u64;
        rule("max_filter_items", self.max_filter_items, AtLeast(items), "HS-57", "");
        let total_why = ": 4 × max_connections_per_address × max_filter_items";
        rule("max_total_filter_items", self.max_total_filter_items, AtLeast(min_total), "HS-57", total_why);
        for (member, value) in self.members() {
            rule(member, value, AtMost(MAX_U53), "ENC-6", "");
        }
        out
    }

    /// The first of [`Limits::violations`], if any.
    pub fn validate(&self) -> Result<(), LimitError> {
        self.violations().into_iter().next().map_or(Ok(()), Err)
    }

    /// Every member with its wire name, in the order of the struct.
    pub fn members(&self) -> [(&'static str, u64); 17] {
        [
            ("max_frame_bytes", self.max_frame_bytes),
            ("max_entry_bytes", self.max_entry_bytes),
            ("handshake_timeout_ms", self.handshake_timeout_ms),
            ("max_backfill", self.max_backfill),
            ("max_replicate", self.max_replicate),
            ("storage_bytes", self.storage_bytes),
            ("max_subscriptions", self.max_subscriptions),
            ("max_nesting_depth", self.max_nesting_depth),
            ("max_connections_per_address", self.max_connections_per_address),
            ("max_pending_handshakes", self.max_pending_handshakes),
            ("max_requests_per_second", self.max_requests_per_second),
            ("max_queued_bytes", self.max_queued_bytes),
            ("max_notes", self.max_notes),
            ("max_note_bytes", self.max_note_bytes),
            ("max_follows", self.max_follows),
            ("max_filter_items", self.max_filter_items),
            ("max_total_filter_items", self.max_total_filter_items),
        ]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn legal() -> Limits {
        Limits {
            max_frame_bytes: 65_536,
            max_entry_bytes: 16_384,
            handshake_timeout_ms: 1000,
            max_backfill: 1,
            max_replicate: 1000,
            storage_bytes: 16_384,
            max_subscriptions: 1,
            max_nesting_depth: 64,
            max_connections_per_address: 1,
            max_pending_handshakes: 1,
            max_requests_per_second: 4,
            max_queued_bytes: 1000 * (16_384 + 256) + 65_536,
            max_notes: 1,
            max_note_bytes: 16_384,
            max_follows: 1,
            max_filter_items: 1024,
            max_total_filter_items: 4096,
        }
    }

    /// The least legal value of every limit passes; one below (or above, or off the fixed
    /// value) fails with the rule that sets the bound ([HS-6] to [HS-11], [HS-52] to [HS-57],
    /// [PRUNE-2], [ENC-6]).
    #[test]
    fn each_bound_is_the_spec_rule() {
        assert_eq!(legal().violations(), vec![]);
        let broken = |f: fn(&mut Limits)| {
            let mut l = legal();
            f(&mut l);
            l.violations().into_iter().map(|e| (e.member, e.rule)).collect::<Vec<_>>()
        };
        assert_eq!(broken(|l| l.max_frame_bytes = 65_537), [("max_frame_bytes", "HS-6")]);
        assert_eq!(broken(|l| l.max_entry_bytes = 16_383), [("max_entry_bytes", "HS-7")]);
        assert_eq!(broken(|l| l.handshake_timeout_ms = 999), [("handshake_timeout_ms", "HS-8")]);
        assert_eq!(broken(|l| l.max_backfill = 0), [("max_backfill", "HS-9")]);
        assert_eq!(broken(|l| l.max_replicate = 1001), [("max_replicate", "HS-10"), ("max_queued_bytes", "HS-54")]);
        assert_eq!(broken(|l| l.storage_bytes = 16_383), [("storage_bytes", "PRUNE-2")]);
        assert_eq!(broken(|l| l.max_subscriptions = 0), [("max_subscriptions", "HS-11")]);
        assert_eq!(broken(|l| l.max_nesting_depth = 65), [("max_nesting_depth", "HS-52")]);
        assert_eq!(broken(|l| l.max_requests_per_second = 3), [("max_requests_per_second", "HS-53")]);
        assert_eq!(broken(|l| l.max_queued_bytes -= 1), [("max_queued_bytes", "HS-54")]);
        assert_eq!(broken(|l| l.max_note_bytes = 16_383), [("max_note_bytes", "HS-56")]);
        assert_eq!(broken(|l| l.max_filter_items = 1023), [("max_filter_items", "HS-57")]);
        assert_eq!(broken(|l| l.max_total_filter_items = 4095), [("max_total_filter_items", "HS-57")]);
        assert_eq!(
            broken(|l| l.max_connections_per_address = 2),
            [("max_total_filter_items", "HS-57")],
            "the node-wide bound grows with the connections"
        );
        assert_eq!(broken(|l| l.storage_bytes = 1 << 53), [("storage_bytes", "ENC-6")]);
        assert!(legal().validate().is_ok());
    }
}
