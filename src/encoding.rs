//! Spec chapter 1, "Encodings": the one text form of keys, ids and signatures, and the integer
//! range.
//!
//! Every type here can only be built by decoding its canonical text form (or from bytes that
//! are then encoded canonically), so holding one means it is valid ([ENC-10] .. [ENC-15]).

use std::borrow::Cow;
use std::fmt;

use ed25519_dalek::VerifyingKey;
#[cfg(feature = "gen")]
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::error::{ErrorCode, HasErrorCode};

/// The largest protocol integer, 2^53 − 1 (I-JSON's exact integer range).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Why a text form was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodingError {
    /// The text has the wrong number of characters.
    #[error("expected {expected} hex characters, found {found}")]
    Length {
        /// Characters the form requires.
        expected: usize,
        /// Characters found.
        found: usize,
    },
    /// The text holds a character other than `0-9a-f` (uppercase included).
    #[error("not lowercase hex: character {found:?} at {at}")]
    NotLowercaseHex {
        /// The offending character.
        found: char,
        /// Its byte offset.
        at: usize,
    },
    /// The 32 bytes are not the encoding of a point on the curve.
    #[error("not an Ed25519 point")]
    NotAPoint,
    /// The key is a point of small order (weak key).
    #[error("Ed25519 key of small order")]
    WeakKey,
}

impl HasErrorCode for EncodingError {
    fn code(&self) -> ErrorCode {
        match self {
            EncodingError::WeakKey => ErrorCode::WeakKey,
            _ => ErrorCode::BadEncoding,
        }
    }
}

/// Decodes exactly `N` bytes from `2N` lowercase hex characters ([ENC-10] .. [ENC-12]).
pub fn decode_hex<const N: usize>(text: &str) -> Result<[u8; N], EncodingError> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return Err(EncodingError::Length { expected: 2 * N, found: text.chars().count() });
    }
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = nibble(pair[0]).ok_or_else(|| bad_char(text, 2 * i))?;
        let lo = nibble(pair[1]).ok_or_else(|| bad_char(text, 2 * i + 1))?;
        out[i] = (hi << 4) | lo;
    }
    Ok(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn bad_char(text: &str, at: usize) -> EncodingError {
    let found = text.get(at..).and_then(|s| s.chars().next()).unwrap_or('\u{fffd}');
    EncodingError::NotLowercaseHex { found, at }
}

/// Encodes bytes as lowercase hex, the one text form of every binary value.
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(feature = "gen")]
fn hex_schema(name: &str, chars: usize, description: &str) -> Schema {
    json_schema!({
        "title": name,
        "description": description,
        "type": "string",
        "pattern": format!("^[0-9a-f]{{{chars}}}$"),
    })
}

/// Implements the text form, serde and schema for a fixed-size hex value.
macro_rules! hex_value {
    ($name:ident, $len:literal, $doc:literal) => {
        impl $name {
            /// Decodes the canonical text form.
            pub fn parse(text: &str) -> Result<Self, EncodingError> {
                Self::from_bytes_checked(decode_hex::<$len>(text)?)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&encode_hex(self.as_bytes()))
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }
        impl std::str::FromStr for $name {
            type Err = EncodingError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text: Cow<'de, str> = Deserialize::deserialize(d)?;
                // No code travels in the text: the frame decoder decodes these members itself
                // and gets the typed error (`crate::decode`).
                Self::parse(&text).map_err(de::Error::custom)
            }
        }
        #[cfg(feature = "gen")]
        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                hex_schema(stringify!($name), 2 * $len, $doc)
            }
        }
    };
}

/// An Ed25519 public key of a user or a peer: 64 lowercase hex characters, the canonical
/// encoding of a point ([ENC-13]), not of small order ([ENC-14]).
///
/// This wrapper is the only place where signatures are checked, and it checks them with
/// `verify_strict` ([SIGN-14] .. [SIGN-19]), so no caller can forget to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey {
    bytes: [u8; 32],
}

/// Whether 32 bytes are the one canonical encoding of whatever point they decode to
/// ([ENC-13]): y below p = 2^255 − 19, and no sign bit on x = 0 (x = 0 only for y = 1 and
/// y = p − 1). dalek's decompression accepts both non-canonical forms.
fn is_canonical_point_encoding(bytes: &[u8; 32]) -> bool {
    let sign = bytes[31] & 0x80 != 0;
    let top = bytes[31] & 0x7f;
    let middle_all_ff = bytes[1..31].iter().all(|b| *b == 0xff);
    // y >= p: top byte 0x7f, bytes 1..31 all 0xff, low byte >= 0xed.
    if top == 0x7f && middle_all_ff && bytes[0] >= 0xed {
        return false;
    }
    let y_is_one = bytes[0] == 1 && bytes[1..31].iter().all(|b| *b == 0) && top == 0;
    let y_is_p_minus_one = bytes[0] == 0xec && middle_all_ff && top == 0x7f;
    !(sign && (y_is_one || y_is_p_minus_one))
}

impl PublicKey {
    /// Builds a key from its 32 bytes, refusing non-canonical encodings, non-points and
    /// small-order points.
    pub fn from_bytes_checked(bytes: [u8; 32]) -> Result<Self, EncodingError> {
        if !is_canonical_point_encoding(&bytes) {
            return Err(EncodingError::NotAPoint);
        }
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| EncodingError::NotAPoint)?;
        if key.is_weak() {
            return Err(EncodingError::WeakKey);
        }
        Ok(PublicKey { bytes })
    }

    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// Verifies `signature` over `message` with RFC 8032 strict rules (dalek's
    /// `verify_strict`: canonical S, no small-order R or A, cofactorless), one signature at a
    /// time ([SIGN-14] .. [SIGN-19]).
    pub fn verify_strict(&self, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        let key = VerifyingKey::from_bytes(&self.bytes).map_err(|_| SignatureError)?;
        let sig = ed25519_dalek::Signature::from_bytes(&signature.bytes);
        key.verify_strict(message, &sig).map_err(|_| SignatureError)
    }
}
hex_value!(PublicKey, 32, "Ed25519 public key: 64 lowercase hex characters");

/// A signature that failed strict verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("signature does not verify")]
pub struct SignatureError;

impl HasErrorCode for SignatureError {
    fn code(&self) -> ErrorCode {
        ErrorCode::BadSignature
    }
}

/// An Ed25519 signature: 128 lowercase hex characters ([ENC-10]). Whether S is canonical is a
/// verification question, answered by [`PublicKey::verify_strict`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature {
    bytes: [u8; 64],
}

impl Signature {
    /// Wraps 64 signature bytes.
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        Signature { bytes }
    }
    fn from_bytes_checked(bytes: [u8; 64]) -> Result<Self, EncodingError> {
        Ok(Signature { bytes })
    }
    /// The signature's 64 bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.bytes
    }
}
hex_value!(Signature, 64, "Ed25519 signature: 128 lowercase hex characters");

/// An entry id, the SHA-256 of the entry's canonical signed form ([ENC-15], [ENTRY-1]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId {
    bytes: [u8; 32],
}

impl EntryId {
    /// Wraps a 32-byte digest.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        EntryId { bytes }
    }
    fn from_bytes_checked(bytes: [u8; 32]) -> Result<Self, EncodingError> {
        Ok(EntryId { bytes })
    }
    /// The id's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}
hex_value!(EntryId, 32, "Entry id (SHA-256): 64 lowercase hex characters");

/// An X25519 public key used once per handshake: 64 lowercase hex characters ([ENC-15]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EphemeralKey {
    bytes: [u8; 32],
}

impl EphemeralKey {
    /// Wraps 32 X25519 public key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        EphemeralKey { bytes }
    }
    fn from_bytes_checked(bytes: [u8; 32]) -> Result<Self, EncodingError> {
        Ok(EphemeralKey { bytes })
    }
    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}
hex_value!(EphemeralKey, 32, "X25519 ephemeral public key: 64 lowercase hex characters");

/// Schema-only stand-in for an `Option<T>` member that is always present, as `null` or a `T`
/// (for example an entry's `prev`): `#[schemars(with = "Nullable<T>")]` makes the member
/// required and nullable, where a plain `Option<T>` would make it optional. Only with the `gen`
/// feature, like every schema.
#[cfg(feature = "gen")]
pub(crate) struct Nullable<T>(std::marker::PhantomData<T>);

#[cfg(feature = "gen")]
impl<T: JsonSchema> JsonSchema for Nullable<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("Nullable_{}", T::schema_name()).into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({ "anyOf": [generator.subschema_for::<T>(), { "type": "null" }] })
    }
}

/// Deserialises a protocol integer, refusing values above 2^53 − 1 ([ENC-6]).
pub(crate) fn deserialize_u53<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if v > MAX_SAFE_INTEGER {
        return Err(de::Error::custom(format!("integer {v} exceeds 2^53-1")));
    }
    Ok(v)
}

/// Deserialises a member that may be absent but, when present, must not be `null`
/// ([FRAME-40]); use with `#[serde(default, deserialize_with = "deserialize_present")]`.
pub(crate) fn deserialize_present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Deserialises a member that must be present and may be `null` (`T|null`): without this,
/// serde would read an absent `Option` member as `null` ([ENTRY-2]).
pub(crate) fn deserialize_nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

/// Deserialises an absent-or-integer protocol member: absent is `None`, `null` is refused
/// ([FRAME-40]); use with `#[serde(default, ...)]`.
pub(crate) fn deserialize_present_u53<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    deserialize_u53(d).map(Some)
}

/// Deserialises an optional protocol integer (see [`deserialize_u53`]).
pub(crate) fn deserialize_opt_u53<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<u64>::deserialize(d)? {
        Some(v) if v > MAX_SAFE_INTEGER => Err(de::Error::custom(format!("integer {v} exceeds 2^53-1"))),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    #[test]
    fn pinned_key_text() {
        let key = PublicKey::parse(KEY).expect("RFC 8032 test key 1");
        assert_eq!(key.to_string(), KEY);
        assert_eq!(key.as_bytes()[0], 0xd7);
    }

    #[test]
    fn rejects_other_forms() {
        assert!(matches!(PublicKey::parse(&KEY.to_uppercase()), Err(EncodingError::NotLowercaseHex { .. })));
        assert!(matches!(PublicKey::parse(&KEY[..62]), Err(EncodingError::Length { .. })));
        assert!(matches!(PublicKey::parse(&format!("{KEY}00")), Err(EncodingError::Length { .. })));
        assert!(PublicKey::parse(&format!("0x{}", &KEY[2..])).is_err());
        assert!(PublicKey::parse(&format!(" {}", &KEY[1..])).is_err());
    }

    #[test]
    fn rejects_small_order_keys() {
        // The identity point (0, 1) and the order-2 point (0, -1).
        let identity = format!("01{}", "00".repeat(31));
        assert_eq!(PublicKey::parse(&identity), Err(EncodingError::WeakKey));
        let minus_one = format!("ecff{}7f", "ff".repeat(29));
        assert_eq!(PublicKey::parse(&minus_one), Err(EncodingError::WeakKey));
    }

    #[test]
    fn rejects_non_canonical_point_encodings() {
        // y = p + 1 ≡ 1 (the identity, non-canonically) and y = 1 with the sign bit set on x = 0.
        let y_p_plus_1 = format!("ee{}7f", "ff".repeat(30));
        assert_eq!(PublicKey::parse(&y_p_plus_1), Err(EncodingError::NotAPoint));
        let neg_zero_x = format!("01{}80", "00".repeat(30));
        assert_eq!(PublicKey::parse(&neg_zero_x), Err(EncodingError::NotAPoint));
    }

    proptest! {
        /// The byte test agrees with decompress-and-recompress on every input that decodes.
        #[test]
        fn canonical_test_matches_recompression(bytes in proptest::array::uniform32(any::<u8>())) {
            if let Ok(key) = VerifyingKey::from_bytes(&bytes) {
                let recompressed = key.to_edwards().compress().to_bytes() == bytes;
                prop_assert_eq!(is_canonical_point_encoding(&bytes), recompressed);
            }
        }
    }

    #[test]
    fn canonical_test_on_the_edge_encodings() {
        let mut p_minus_one = [0xff; 32];
        p_minus_one[0] = 0xec;
        p_minus_one[31] = 0x7f;
        let mut one = [0; 32];
        one[0] = 1;
        for y in [p_minus_one, one] {
            let key = VerifyingKey::from_bytes(&y).expect("decodes");
            assert!(is_canonical_point_encoding(&y));
            let mut signed = y;
            signed[31] |= 0x80;
            assert!(!is_canonical_point_encoding(&signed));
            if let Ok(k) = VerifyingKey::from_bytes(&signed) {
                assert_ne!(k.to_edwards().compress().to_bytes(), signed);
            }
            assert_eq!(key.to_edwards().compress().to_bytes(), y);
        }
        // Every y in [p, 2^255), with either sign: non-canonical whenever it decodes.
        for low in 0xedu8..=0xff {
            for sign in [0u8, 0x80] {
                let mut y = [0xff; 32];
                y[0] = low;
                y[31] = 0x7f | sign;
                assert!(!is_canonical_point_encoding(&y));
                if let Ok(k) = VerifyingKey::from_bytes(&y) {
                    assert_ne!(k.to_edwards().compress().to_bytes(), y);
                }
            }
        }
    }

    #[test]
    fn rejects_non_points() {
        // y = 2 is not the y-coordinate of a curve point.
        let two = format!("02{}", "00".repeat(31));
        assert_eq!(PublicKey::parse(&two), Err(EncodingError::NotAPoint));
    }

    #[test]
    fn multibyte_text_is_refused_without_panicking() {
        let text = "é".repeat(32);
        assert!(EntryId::parse(&text).is_err());
        let text = format!("{}é", "a".repeat(62));
        assert!(EntryId::parse(&text).is_err());
    }

    proptest! {
        #[test]
        fn entry_id_round_trips(bytes in proptest::array::uniform32(any::<u8>())) {
            let id = EntryId::from_bytes(bytes);
            prop_assert_eq!(EntryId::parse(&id.to_string()).expect("round trip"), id);
        }

        #[test]
        fn signature_round_trips(bytes in proptest::collection::vec(any::<u8>(), 64)) {
            let mut arr = [0u8; 64];
            arr.copy_from_slice(&bytes);
            let sig = Signature::from_bytes(arr);
            prop_assert_eq!(Signature::parse(&sig.to_string()).expect("round trip"), sig);
        }

        #[test]
        fn decoder_never_panics(text in ".{0,70}") {
            let _ = EntryId::parse(&text);
            let _ = PublicKey::parse(&text);
        }
    }
}
