//! Spec chapter 6 §2, "Envelopes": what every frame carries whatever its type, and what every
//! error message does with peer input. The message modules take these from here; [`crate::frame`]
//! (the registries and the decoder) takes the message modules, so nothing here may import it.

#[cfg(feature = "gen")]
use std::borrow::Cow;

#[cfg(feature = "gen")]
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::encoding::MAX_SAFE_INTEGER;

/// Most characters of peer input that an error message quotes ([FRAME-53]).
pub const QUOTE_CHARS: usize = 32;

/// Quotes peer input in an error message: the debug form of at most its first [`QUOTE_CHARS`]
/// characters, marked when cut, so that an answer stays short whatever the peer sent
/// ([FRAME-53]); 32 characters escape to at most 320.
pub fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
    }
}

/// A client-chosen request id, echoed by the answer: an integer in [0, 2^53 − 1] ([FRAME-13]).
/// Built only through [`RequestId::new`] (checked), [`RequestId::small`] (a `u32`, always in
/// range) or decoding, so that no value out of range can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

impl RequestId {
    /// The largest request id, 2^53 − 1 ([FRAME-13]).
    pub const MAX: RequestId = RequestId(MAX_SAFE_INTEGER);

    /// `value` as a request id, or `None` above 2^53 − 1 ([FRAME-13]).
    pub const fn new(value: u64) -> Option<RequestId> {
        if value <= MAX_SAFE_INTEGER {
            Some(RequestId(value))
        } else {
            None
        }
    }

    /// A 32-bit value as a request id: always in range.
    pub const fn small(value: u32) -> RequestId {
        RequestId(value as u64)
    }

    /// The id's value.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl From<u32> for RequestId {
    fn from(value: u32) -> RequestId {
        RequestId::small(value)
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for RequestId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u64::deserialize(d)?;
        RequestId::new(v).ok_or_else(|| de::Error::custom("request id exceeds 2^53-1"))
    }
}

#[cfg(feature = "gen")]
impl JsonSchema for RequestId {
    fn schema_name() -> Cow<'static, str> {
        "RequestId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Client-chosen request id, echoed by the answer",
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_SAFE_INTEGER,
        })
    }
}
