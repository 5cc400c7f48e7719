//! The closed registry of wire error codes (spec chapter 6, "Error codes").
//!
//! Every error type of every layer maps onto exactly one [`ErrorCode`]; the wire error frame is
//! derived from that mapping and never typed twice.

use std::borrow::Cow;

#[cfg(feature = "gen")]
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $wire:literal ),+ $(,)?) => {
        /// A wire error code from the closed registry of spec chapter 6 (`FRAME`).
        ///
        /// Decoding an unregistered code yields [`ErrorCode::Internal`], as the spec tells
        /// clients to treat codes they do not know.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )+
        }

        impl ErrorCode {
            /// Every registered code, in registry order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The code's wire spelling.
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $wire,)+ }
            }

            /// Looks a wire spelling up in the registry.
            pub fn from_wire(s: &str) -> Option<ErrorCode> {
                match s { $($wire => Some(ErrorCode::$variant),)+ _ => None }
            }
        }
    };
}

error_codes! {
    /// The frame is not a JSON object of the protocol's shape.
    MalformedFrame = "malformed_frame",
    /// The frame's `type` is not one this node knows.
    UnknownType = "unknown_type",
    /// The frame exceeds `max_frame_bytes`.
    FrameTooLarge = "frame_too_large",
    /// The node knows the request type but does not implement it.
    Unsupported = "unsupported",
    /// The request needs an authenticated session.
    NotAuthenticated = "not_authenticated",
    /// The request's fields are well-formed JSON but violate the request's rules.
    InvalidRequest = "invalid_request",
    /// The node failed for a reason of its own; also any code a client does not know.
    Internal = "internal",
    /// The client asked for a protocol version the node does not speak.
    UnsupportedVersion = "unsupported_version",
    /// The certificate does not verify or does not bless the connecting peer.
    BadCertificate = "bad_certificate",
    /// The certificate's `expires` is not after the node's clock.
    CertExpired = "cert_expired",
    /// A signature does not verify strictly.
    BadSignature = "bad_signature",
    /// The certificate's user has no account on this node.
    UnknownUser = "unknown_user",
    /// A handshake message arrived out of order or is degenerate.
    BadHandshake = "bad_handshake",
    /// The handshake did not finish in time.
    HandshakeTimeout = "handshake_timeout",
    /// A key, id or signature is not in its one canonical text form.
    BadEncoding = "bad_encoding",
    /// An Ed25519 public key is of small order.
    WeakKey = "weak_key",
    /// An entry is missing a field, has an extra one, or breaks a field rule.
    MalformedEntry = "malformed_entry",
    /// An entry's canonical signed form exceeds `max_entry_bytes`.
    EntryTooLarge = "entry_too_large",
    /// An entry's sequence number is 0 or skips ahead of the feed's head.
    BadSequence = "bad_sequence",
    /// An entry's `prev` does not link to its predecessor.
    BadPrev = "bad_prev",
    /// An entry's timestamp is before its predecessor's.
    BadTimestamp = "bad_timestamp",
    /// A different entry is already known at this (author, seq).
    Fork = "fork",
    /// The requested entry was stored and has been pruned.
    Pruned = "pruned",
    /// The requested object is not known.
    NotFound = "not_found",
    /// The session's user may not do this.
    Forbidden = "forbidden",
    /// The inviter's invite allowance does not cover the request.
    AllowanceExhausted = "allowance_exhausted",
    /// The publisher's publish allowance is used up.
    PublishAllowanceExhausted = "publish_allowance_exhausted",
    /// The requester already holds `max_notes` notes or `max_note_bytes` of notes ([IDENT-25]),
    /// or `max_follows` followed keys ([IDENT-26]), and the request would add more.
    QuotaExceeded = "quota_exceeded",
    /// The account name is taken on this node.
    NameTaken = "name_taken",
    /// The key already belongs to an account on this node.
    KeyTaken = "key_taken",
    /// The session's key was replaced; the node closes the session.
    KeyReplaced = "key_replaced",
    /// The session's account was removed; the node closes the session.
    AccountRemoved = "account_removed",
    /// The connection's outbound queue overflowed; the node closes it.
    SlowConsumer = "slow_consumer",
    /// The node is shutting down.
    ShuttingDown = "shutting_down",
    /// The remote address already holds `max_connections_per_address` connections; the node
    /// closes the new one (1013).
    TooManyConnections = "too_many_connections",
    /// The node already has `max_pending_handshakes` connections without `welcome`; it closes
    /// the new one (1013).
    TooManyHandshakes = "too_many_handshakes",
    /// The frame arrived faster than `max_requests_per_second`; it was not processed and the
    /// connection stays open.
    RateLimited = "rate_limited",
    /// A node-wide bound is reached (today only `max_total_filter_items`, [FEED-35]): the
    /// request was not carried out, the connection stays open, and the same request may
    /// succeed later.
    Busy = "busy",
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text: Cow<'de, str> = Deserialize::deserialize(d)?;
        Ok(ErrorCode::from_wire(&text).unwrap_or(ErrorCode::Internal))
    }
}

#[cfg(feature = "gen")]
impl JsonSchema for ErrorCode {
    fn schema_name() -> Cow<'static, str> {
        "ErrorCode".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        json_schema!({
            "description": "Error code from the closed registry of spec chapter 6",
            "type": "string",
            "enum": codes,
        })
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Anything that carries a spec error code.
pub trait HasErrorCode {
    /// The wire error code this error is reported as.
    fn code(&self) -> ErrorCode;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_spelling_round_trips() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).expect("serialise");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).expect("parse");
            assert_eq!(back, *code);
        }
    }

    #[test]
    fn unknown_code_reads_as_internal() {
        let code: ErrorCode = serde_json::from_str("\"some_future_code\"").expect("parse");
        assert_eq!(code, ErrorCode::Internal);
    }
}
