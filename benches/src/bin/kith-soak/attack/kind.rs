//! The attacks a soak can mount (`--attacks`), with how long a node may hold what each leaves.
//! Apart from the attacks' code so that the command line can name them without importing it.

use std::time::Duration;

use kith_proto::frame::{CLOSE_DEADLINE_MS, UPGRADE_DEADLINE_MS};
use kith_proto::node_info::Limits;
use serde::Serialize;

/// An attack of issue 12 that one address mounts against the node, with valid traffic beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Attack {
    /// `max_connections_per_address` upgraded connections with a 4 KiB receive buffer that never
    /// read, flood `node_info` before logging in, send a close frame and keep the TCP socket open
    /// (issue 12 "Critical"; `benches/close-attack.py`). The node must drop them within the close
    /// deadline (FRAME-50).
    Close,
    /// 2 × `max_connections_per_address` + 16 raw TCP sockets that never start the upgrade
    /// (`benches/preupgrade-flood.py`): 16 ended at once, the rest at the upgrade deadline (FRAME-51/52).
    Preupgrade,
    /// `max_connections_per_address` upgraded connections that never say `hello`: held for the
    /// handshake timeout (HS-40).
    Idle,
    /// One user stores notes up to `max_notes` / `max_note_bytes` (IDENT-25) and follows up
    /// to `max_follows` (IDENT-26); kept until the account is removed (IDENT-31).
    Notes,
    /// `max_connections_per_address` logged-in connections with `max_subscriptions` subscriptions
    /// each, every filter as many thread ids as a frame holds (FEED-9, FEED-11).
    Subscriptions,
}

impl Attack {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Attack::Close => "close",
            Attack::Preupgrade => "preupgrade",
            Attack::Idle => "idle",
            Attack::Notes => "notes",
            Attack::Subscriptions => "subscriptions",
        }
    }

    /// How long the node may hold what the attack left once its traffic has stopped: the
    /// longest wait for the "after" sample (plus `ATTACK_SLACK`), which is taken as soon as the
    /// node's fds are back at the baseline.
    pub(crate) fn deadline(self, l: &Limits) -> Duration {
        let close = Duration::from_millis(CLOSE_DEADLINE_MS);
        match self {
            // A connection that has not logged in ends at the handshake timeout at the latest
            // (HS-40), even while it still has requests to read; then the close deadline runs.
            Attack::Close => Duration::from_millis(l.handshake_timeout_ms) + close,
            Attack::Preupgrade => Duration::from_millis(UPGRADE_DEADLINE_MS.min(l.handshake_timeout_ms)),
            Attack::Idle => Duration::from_millis(l.handshake_timeout_ms),
            // The soak ends these itself (close frames; the account's removal): the node has
            // the close deadline to let go of them (FRAME-50).
            Attack::Notes | Attack::Subscriptions => close,
        }
    }

    /// What the measured-bounds table says the node holds it for.
    pub(crate) fn held(self) -> &'static str {
        match self {
            Attack::Close => "until it reads the close frame, at most handshake_timeout_ms (HS-40); then the close deadline, 10 s (FRAME-50)",
            Attack::Preupgrade => "upgrade deadline, 2 s after accept (FRAME-52)",
            Attack::Idle => "handshake_timeout_ms after the upgrade (HS-40)",
            Attack::Notes => "stored until the account is removed (IDENT-31); the phase removes it",
            Attack::Subscriptions => "as long as the connections stay open; the phase closes them",
        }
    }
}
