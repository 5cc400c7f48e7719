//! Spec chapter 2, "Canonical signing bytes", first half: RFC 8785 (JCS) restricted to values
//! without floats.
//!
//! [`CanonicalValue`] cannot hold a float, an integer outside ±(2^53 − 1) or a duplicate key,
//! and its serde decoder refuses them ([ENC-3], [ENC-4], [ENC-6]). [`CanonicalValue::to_jcs`] is
//! the one function that produces canonical bytes ([SIGN-1] to [SIGN-7]).

use std::collections::BTreeMap;
use std::fmt;

#[cfg(feature = "gen")]
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::encoding::MAX_SAFE_INTEGER;

/// A JSON value that has exactly one canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanonicalValue {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer within ±(2^53 − 1).
    Integer(i64),
    /// A string (always valid UTF-8, so no lone surrogates).
    String(String),
    /// An array.
    Array(Vec<CanonicalValue>),
    /// An object; the map makes duplicate keys unrepresentable.
    Object(CanonicalObject),
}

/// A JSON object without duplicate keys.
pub type CanonicalObject = BTreeMap<String, CanonicalValue>;

/// Why a value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CanonicalError {
    /// A number with a fraction or exponent, or too large for an `i64`.
    #[error("non-integer number")]
    NonInteger,
    /// An integer outside ±(2^53 − 1).
    #[error("integer {0} outside the range ±(2^53-1)")]
    OutOfRange(i128),
    /// An object key appears twice.
    #[error("duplicate key {0:?}")]
    DuplicateKey(String),
}

impl CanonicalValue {
    /// Builds an integer value, refusing the range outside ±(2^53 − 1).
    pub fn integer(v: i128) -> Result<Self, CanonicalError> {
        if v.unsigned_abs() > u128::from(MAX_SAFE_INTEGER) {
            return Err(CanonicalError::OutOfRange(v));
        }
        Ok(CanonicalValue::Integer(v as i64))
    }

    /// Builds a value from an unsigned protocol integer (callers hold u53 values).
    pub fn from_u53(v: u64) -> Self {
        debug_assert!(v <= MAX_SAFE_INTEGER);
        CanonicalValue::Integer(v.min(MAX_SAFE_INTEGER) as i64)
    }

    /// Builds a string value.
    pub fn string(s: impl Into<String>) -> Self {
        CanonicalValue::String(s.into())
    }

    /// Parses JSON text, refusing floats, out-of-range integers and duplicate keys.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Converts any serialisable value, refusing floats and out-of-range integers. Duplicate keys
    /// cannot arise from a `Serialize` type that holds no maps with duplicate keys.
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Self, CanonicalError> {
        let json = serde_json::to_value(value).map_err(|_| CanonicalError::NonInteger)?;
        Self::from_json(&json)
    }

    /// Converts a `serde_json::Value` (which cannot hold duplicate keys).
    pub fn from_json(json: &serde_json::Value) -> Result<Self, CanonicalError> {
        Ok(match json {
            serde_json::Value::Null => CanonicalValue::Null,
            serde_json::Value::Bool(b) => CanonicalValue::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Self::integer(i128::from(i))?
                } else if let Some(u) = n.as_u64() {
                    Self::integer(i128::from(u))?
                } else {
                    return Err(CanonicalError::NonInteger);
                }
            }
            serde_json::Value::String(s) => CanonicalValue::String(s.clone()),
            serde_json::Value::Array(a) => {
                CanonicalValue::Array(a.iter().map(Self::from_json).collect::<Result<_, _>>()?)
            }
            serde_json::Value::Object(o) => CanonicalValue::Object(
                o.iter().map(|(k, v)| Ok((k.clone(), Self::from_json(v)?))).collect::<Result<_, _>>()?,
            ),
        })
    }

    /// The RFC 8785 canonical bytes of this value.
    pub fn to_jcs(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.write_jcs(&mut out);
        out
    }

    /// Appends the RFC 8785 canonical bytes of this value to `out`.
    pub fn write_jcs(&self, out: &mut Vec<u8>) {
        match self {
            CanonicalValue::Null => out.extend_from_slice(b"null"),
            CanonicalValue::Bool(true) => out.extend_from_slice(b"true"),
            CanonicalValue::Bool(false) => out.extend_from_slice(b"false"),
            CanonicalValue::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
            CanonicalValue::String(s) => write_jcs_string(s, out),
            CanonicalValue::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_jcs(out);
                }
                out.push(b']');
            }
            CanonicalValue::Object(map) => write_jcs_object(map, out),
        }
    }
}

/// Appends an object's canonical bytes: members sorted by the UTF-16 code units of their
/// keys, as RFC 8785 section 3.2.3 requires (this differs from byte order only for keys with
/// characters above U+FFFF).
pub fn write_jcs_object(map: &CanonicalObject, out: &mut Vec<u8>) {
    let mut members: Vec<(&String, &CanonicalValue)> = map.iter().collect();
    if members.iter().any(|(k, _)| k.chars().any(|c| c as u32 > 0xFFFF)) {
        members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    }
    out.push(b'{');
    for (i, (k, v)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_jcs_string(k, out);
        out.push(b':');
        v.write_jcs(out);
    }
    out.push(b'}');
}

/// Appends a string in JCS form: `"` and `\` escaped, the controls with short forms as
/// `\b \f \n \r \t`, other controls as `\u00xx` in lowercase hex, everything else literal.
pub fn write_jcs_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => {
                const DIGITS: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(DIGITS[(b >> 4) as usize]);
                out.push(DIGITS[(b & 15) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

impl Serialize for CanonicalValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CanonicalValue::Null => s.serialize_unit(),
            CanonicalValue::Bool(b) => s.serialize_bool(*b),
            CanonicalValue::Integer(i) => s.serialize_i64(*i),
            CanonicalValue::String(v) => s.serialize_str(v),
            CanonicalValue::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            CanonicalValue::Object(map) => {
                let mut m = s.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

struct CanonicalVisitor;

impl<'de> Visitor<'de> for CanonicalVisitor {
    type Value = CanonicalValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value without floats or duplicate keys")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(CanonicalValue::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(CanonicalValue::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(CanonicalValue::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        CanonicalValue::integer(i128::from(v)).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        CanonicalValue::integer(i128::from(v)).map_err(E::custom)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom(CanonicalError::NonInteger))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(CanonicalValue::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(CanonicalValue::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(CanonicalValue::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = CanonicalObject::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(CanonicalError::DuplicateKey(key)));
            }
            let value = map.next_value()?;
            out.insert(key, value);
        }
        Ok(CanonicalValue::Object(out))
    }
}

impl<'de> Deserialize<'de> for CanonicalValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CanonicalVisitor)
    }
}

#[cfg(feature = "gen")]
impl JsonSchema for CanonicalValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CanonicalValue".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Any JSON value without non-integer numbers; integers within ±(2^53-1); no duplicate keys",
        })
    }
}

/// Deserialises a JSON object as a [`CanonicalObject`], refusing any other JSON type.
pub fn deserialize_object<'de, D: Deserializer<'de>>(d: D) -> Result<CanonicalObject, D::Error> {
    match CanonicalValue::deserialize(d)? {
        CanonicalValue::Object(map) => Ok(map),
        _ => Err(de::Error::custom("expected a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn jcs(text: &str) -> String {
        String::from_utf8(CanonicalValue::parse(text).expect("parse").to_jcs()).expect("utf8")
    }

    /// RFC 8785 section 3.2.2's example with its float member removed (Kith refuses floats).
    #[test]
    fn rfc8785_example_without_floats() {
        let input = r#"{
          "numbers": [333333333, 4, 2e0],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        assert!(CanonicalValue::parse(input).is_err(), "2e0 is a float in JCS's number model");
        let input = r#"{
          "numbers": [333333333, 4],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        assert_eq!(
            jcs(input),
            r#"{"literals":[null,true,false],"numbers":[333333333,4],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    /// RFC 8785 section 3.2.3's sorting example: keys ordered by UTF-16 code units.
    #[test]
    fn rfc8785_sorting_example() {
        let input = r#"{
          "\u20ac": "Euro Sign",
          "\r": "Carriage Return",
          "\ufb33": "Hebrew Letter Dalet With Dagesh",
          "1": "One",
          "\ud83d\ude00": "Emoji: Grinning Face",
          "\u0080": "Control",
          "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let out = jcs(input);
        let keys: Vec<String> =
            out.split("\":\"").filter_map(|part| part.rsplit('"').next().map(str::to_owned)).collect();
        assert_eq!(
            &keys[..7],
            &["\\r", "1", "\u{80}", "\u{f6}", "\u{20ac}", "\u{1f600}", "\u{fb33}"].map(String::from)
        );
    }

    #[test]
    fn refuses_floats_duplicates_and_range() {
        assert!(CanonicalValue::parse("1.0").is_err());
        assert!(CanonicalValue::parse("1e3").is_err());
        assert!(CanonicalValue::parse(r#"{"a":1,"a":2}"#).is_err());
        assert!(CanonicalValue::parse("9007199254740992").is_err());
        assert!(CanonicalValue::parse("-9007199254740992").is_err());
        assert!(CanonicalValue::parse("18446744073709551616").is_err());
        assert_eq!(jcs("9007199254740991"), "9007199254740991");
        assert_eq!(jcs("-9007199254740991"), "-9007199254740991");
        assert!(CanonicalValue::parse("-0").is_err(), "negative zero is refused, as a float would be");
    }

    #[test]
    fn pinned_escapes() {
        assert_eq!(jcs(r#""\u0000\u001f\u007f\b\f\t""#), "\"\\u0000\\u001f\u{7f}\\b\\f\\t\"");
        assert_eq!(jcs(r#""\ud834\udd1e""#), "\"\u{1d11e}\"");
        assert!(CanonicalValue::parse(r#""\ud834""#).is_err(), "lone surrogate");
    }

    fn arb_value() -> impl Strategy<Value = CanonicalValue> {
        let leaf = prop_oneof![
            Just(CanonicalValue::Null),
            any::<bool>().prop_map(CanonicalValue::Bool),
            (-(MAX_SAFE_INTEGER as i64)..=(MAX_SAFE_INTEGER as i64)).prop_map(CanonicalValue::Integer),
            any::<String>().prop_map(CanonicalValue::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(CanonicalValue::Array),
                proptest::collection::btree_map(any::<String>(), inner, 0..6).prop_map(CanonicalValue::Object),
            ]
        })
    }

    proptest! {
        #[test]
        fn jcs_round_trips_and_is_a_fixed_point(v in arb_value()) {
            let bytes = v.to_jcs();
            let text = std::str::from_utf8(&bytes).expect("utf8");
            let back = CanonicalValue::parse(text).expect("reparse");
            prop_assert_eq!(&back, &v);
            prop_assert_eq!(back.to_jcs(), bytes);
        }

        #[test]
        fn jcs_agrees_with_serde_json_on_meaning(v in arb_value()) {
            let ours: serde_json::Value = serde_json::from_slice(&v.to_jcs()).expect("json");
            let theirs = serde_json::to_value(&v).expect("value");
            prop_assert_eq!(ours, theirs);
        }
    }
}
