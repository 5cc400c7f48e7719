//! Spec chapter 3, "Entries": the signed, hash-linked feed entry, its stateless validation
//! ([`Entry`]'s decoder and [`verify_entry`]) and its place in a feed ([`check_chain`]).

use std::borrow::Cow;
use std::collections::BTreeSet;

#[cfg(feature = "gen")]
use schemars::JsonSchema;
use serde::{de, Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::canonical::{deserialize_object, CanonicalObject, CanonicalValue};
use crate::encoding::{EncodingError, EntryId, PublicKey, Signature, MAX_SAFE_INTEGER};
use crate::error::{ErrorCode, HasErrorCode};
use crate::signing::{signing_bytes, Context, SecretKey};

/// Longest `name` of a `profile` entry's content, in bytes ([ENTRY-14]).
pub const MAX_PROFILE_NAME: usize = 64;
/// Longest `about` of a `profile` entry's content, in bytes ([ENTRY-15]).
pub const MAX_PROFILE_ABOUT: usize = 1024;
/// Largest canonical signed entry, in bytes ([ENTRY-17]).
pub const MAX_ENTRY_BYTES: usize = 16384;
/// Most user keys an entry may mention ([ENTRY-10]).
pub const MAX_MENTIONS: usize = 64;
/// Most entry ids an entry may reference ([ENTRY-12]).
pub const MAX_REFS: usize = 64;
/// Longest `kind`, in characters ([ENTRY-9]).
pub const MAX_KIND_LEN: usize = 64;

/// Why an entry was refused. Each variant carries its spec error code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EntryError {
    /// A field is missing, extra, of the wrong type, or breaks a field rule.
    #[error("malformed entry: {0}")]
    Malformed(String),
    /// A key or id is not in its canonical text form, or a key is weak.
    #[error("{0}")]
    Encoding(#[from] EncodingError),
    /// `seq` is 0.
    #[error("seq must be at least 1")]
    SeqZero,
    /// `prev` is null although `seq` > 1, or set although `seq` is 1.
    #[error("prev must be null exactly when seq is 1")]
    PrevShape,
    /// The canonical signed entry is larger than [`MAX_ENTRY_BYTES`].
    #[error("entry is {size} bytes, more than {max}", max = MAX_ENTRY_BYTES)]
    TooLarge {
        /// Its canonical size.
        size: usize,
    },
    /// The signature does not verify under the entry context.
    #[error("entry signature does not verify")]
    BadSignature,
    /// `seq` skips past the feed's head + 1.
    #[error("seq {seq} does not follow the feed head {head}")]
    Gap {
        /// The entry's seq.
        seq: u64,
        /// The feed's head seq.
        head: u64,
    },
    /// `prev` is not the id of the feed's entry at `seq - 1`.
    #[error("prev does not link to the feed head")]
    BrokenLink,
    /// The timestamp is earlier than the previous entry's.
    #[error("timestamp {timestamp} is before the previous entry's {prev}")]
    TimestampBackwards {
        /// The entry's timestamp.
        timestamp: u64,
        /// The previous entry's timestamp.
        prev: u64,
    },
    /// A different entry is known at this (author, seq).
    #[error("a different entry exists at seq {seq}")]
    Fork {
        /// The contested seq.
        seq: u64,
    },
    /// The entry at this (author, seq) was pruned, so the node cannot tell duplicate from fork.
    #[error("seq {seq} has been pruned")]
    Pruned {
        /// The pruned seq.
        seq: u64,
    },
}

impl HasErrorCode for EntryError {
    fn code(&self) -> ErrorCode {
        match self {
            EntryError::Malformed(_) => ErrorCode::MalformedEntry,
            EntryError::Encoding(e) => e.code(),
            EntryError::SeqZero | EntryError::Gap { .. } => ErrorCode::BadSequence,
            EntryError::PrevShape | EntryError::BrokenLink => ErrorCode::BadPrev,
            EntryError::TooLarge { .. } => ErrorCode::EntryTooLarge,
            EntryError::BadSignature => ErrorCode::BadSignature,
            EntryError::TimestampBackwards { .. } => ErrorCode::BadTimestamp,
            EntryError::Fork { .. } => ErrorCode::Fork,
            EntryError::Pruned { .. } => ErrorCode::Pruned,
        }
    }
}

/// An entry kind: 1 to 64 characters of `a-z 0-9 . _ : -` ([ENTRY-9]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
#[serde(transparent)]
pub struct Kind(#[cfg_attr(feature = "gen", schemars(regex(pattern = r"^[a-z0-9._:-]{1,64}$")))] String);

impl Kind {
    /// The reserved kind of profile metadata entries (chapter 9).
    pub const PROFILE: &'static str = "profile";

    /// Checks and wraps a kind.
    pub fn new(kind: impl Into<String>) -> Result<Self, EntryError> {
        let kind = kind.into();
        let ok = !kind.is_empty()
            && kind.len() <= MAX_KIND_LEN
            && kind.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b':' | b'-'));
        if ok {
            Ok(Kind(kind))
        } else {
            Err(EntryError::Malformed(format!("kind {} is not 1-64 of [a-z0-9._:-]", crate::envelope::quote(&kind))))
        }
    }

    /// The kind's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text: Cow<'de, str> = Deserialize::deserialize(d)?;
        Kind::new(text.into_owned()).map_err(de::Error::custom)
    }
}

/// A feed entry as it travels: the nine members of chapter 3 §1, nothing else ([ENTRY-2], [ENTRY-3]).
///
/// Holding an `Entry` means its fields are well-formed (encodings, seq/prev shape, kind, list
/// limits); [`verify_entry`] then checks size and signature and computes the id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
#[cfg_attr(feature = "gen", schemars(deny_unknown_fields))]
pub struct Entry {
    /// The author's user key; the signer.
    pub author: PublicKey,
    /// Position in the author's feed, from 1.
    #[cfg_attr(feature = "gen", schemars(range(min = 1, max = 9007199254740991u64)))]
    pub seq: u64,
    /// Id of the entry at `seq - 1`; null exactly when `seq` is 1.
    #[cfg_attr(feature = "gen", schemars(with = "crate::encoding::Nullable<EntryId>"))]
    pub prev: Option<EntryId>,
    /// Milliseconds since the Unix epoch, as the author claims.
    #[cfg_attr(feature = "gen", schemars(range(max = 9007199254740991u64)))]
    pub timestamp: u64,
    /// What the content means.
    pub kind: Kind,
    /// The payload: any JSON object without non-integer numbers.
    #[cfg_attr(feature = "gen", schemars(with = "std::collections::BTreeMap<String, CanonicalValue>"))]
    pub content: CanonicalObject,
    /// Users this entry calls to attention; distinct; at most 64.
    #[cfg_attr(feature = "gen", schemars(length(max = 64)))]
    pub mentions: Vec<PublicKey>,
    /// Entries this one answers or cites; distinct; at most 64.
    #[cfg_attr(feature = "gen", schemars(length(max = 64)))]
    pub refs: Vec<EntryId>,
    /// The author's signature over the entry's signing bytes.
    pub sig: Signature,
}

/// The wire shape before the field rules are applied: JSON kinds only ([ENTRY-2] ..
/// [ENTRY-4]); encodings are decoded afterwards in the order [ENTRY-5] fixes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EntryWire<'a> {
    #[serde(borrow)]
    author: Cow<'a, str>,
    seq: i64,
    #[serde(borrow, deserialize_with = "crate::encoding::deserialize_nullable")]
    prev: Option<Cow<'a, str>>,
    timestamp: i64,
    kind: String,
    #[serde(deserialize_with = "deserialize_object")]
    content: CanonicalObject,
    #[serde(borrow)]
    mentions: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    refs: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    sig: Cow<'a, str>,
}

impl<'de> Deserialize<'de> for Entry {
    /// For entries in answers a client reads; the node's decoder ([`Entry::from_json`],
    /// `publish`) keeps the typed [`EntryError`].
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Entry::from_wire(EntryWire::deserialize(d)?).map_err(de::Error::custom)
    }
}

fn distinct<T: Ord>(items: &[T]) -> bool {
    let mut seen = BTreeSet::new();
    items.iter().all(|i| seen.insert(i))
}

/// Most nesting levels an entry's `content` may have ([ENTRY-16]).
pub const MAX_CONTENT_DEPTH: usize = 32;

/// Nesting depth as chapter 1 defines it: scalars 0, arrays and objects 1 + their deepest
/// member.
pub fn depth(value: &CanonicalValue) -> usize {
    match value {
        CanonicalValue::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        CanonicalValue::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

impl Entry {
    /// Applies the stateless field rules in the spec's order ([ENTRY-5] .. [ENTRY-16]); the
    /// first failing rule decides the error.
    pub(crate) fn from_wire(w: EntryWire<'_>) -> Result<Self, EntryError> {
        let author = PublicKey::parse(&w.author)?;
        let prev = w.prev.as_deref().map(EntryId::parse).transpose()?;
        let mentions = w.mentions.iter().map(|m| PublicKey::parse(m)).collect::<Result<Vec<_>, _>>()?;
        let refs = w.refs.iter().map(|r| EntryId::parse(r)).collect::<Result<Vec<_>, _>>()?;
        let sig = Signature::parse(&w.sig)?;
        if w.seq < 1 {
            return Err(EntryError::SeqZero);
        }
        if w.timestamp < 0 {
            return Err(EntryError::Malformed("timestamp must not be negative".into()));
        }
        // The frame walker bounds every integer by 2^53 - 1; a standalone decode checks here.
        let (seq, timestamp) = (w.seq as u64, w.timestamp as u64);
        if seq > MAX_SAFE_INTEGER || timestamp > MAX_SAFE_INTEGER {
            return Err(EntryError::Malformed("integer exceeds 2^53-1".into()));
        }
        if (seq == 1) != prev.is_none() {
            return Err(EntryError::PrevShape);
        }
        let kind = Kind::new(w.kind)?;
        if mentions.len() > MAX_MENTIONS || !distinct(&mentions) {
            return Err(EntryError::Malformed(format!("mentions must be at most {MAX_MENTIONS} distinct keys")));
        }
        if refs.len() > MAX_REFS || !distinct(&refs) {
            return Err(EntryError::Malformed(format!("refs must be at most {MAX_REFS} distinct ids")));
        }
        if kind.as_str() == Kind::PROFILE {
            ProfileContent::check(&w.content).map_err(EntryError::Malformed)?;
        }
        let content_depth = 1 + w.content.values().map(depth).max().unwrap_or(0);
        if content_depth > MAX_CONTENT_DEPTH {
            return Err(EntryError::Malformed(format!("content nesting depth {content_depth} exceeds 32")));
        }
        Ok(Entry { author, seq, prev, timestamp, kind, content: w.content, mentions, refs, sig })
    }

    /// Decodes an entry from JSON text, with the spec's error for each way it can be wrong.
    pub fn from_json(text: &str) -> Result<Self, EntryError> {
        // Whatever serde refuses is structure: missing, extra or mistyped members ([ENTRY-2] ..
        // [ENTRY-4]), or text that is no JSON object at all.
        let wire: EntryWire<'_> = serde_json::from_str(text).map_err(|e| EntryError::Malformed(e.to_string()))?;
        Entry::from_wire(wire)
    }

    /// The entry without `sig`, as a canonical value: what the signature covers ([ENTRY-20]).
    pub fn unsigned_value(&self) -> CanonicalValue {
        let mut map = CanonicalObject::new();
        map.insert("author".into(), CanonicalValue::string(self.author.to_string()));
        map.insert("seq".into(), CanonicalValue::from_u53(self.seq));
        map.insert(
            "prev".into(),
            self.prev.as_ref().map_or(CanonicalValue::Null, |p| CanonicalValue::string(p.to_string())),
        );
        map.insert("timestamp".into(), CanonicalValue::from_u53(self.timestamp));
        map.insert("kind".into(), CanonicalValue::string(self.kind.as_str()));
        map.insert("content".into(), CanonicalValue::Object(self.content.clone()));
        map.insert(
            "mentions".into(),
            CanonicalValue::Array(self.mentions.iter().map(|k| CanonicalValue::string(k.to_string())).collect()),
        );
        map.insert(
            "refs".into(),
            CanonicalValue::Array(self.refs.iter().map(|r| CanonicalValue::string(r.to_string())).collect()),
        );
        CanonicalValue::Object(map)
    }

    /// The entry's signing bytes: `kith/1/entry` || 0x00 || JCS(entry without sig).
    pub fn signing_bytes(&self) -> Vec<u8> {
        signing_bytes(Context::Entry, &self.unsigned_value())
    }

    /// The canonical signed form, JCS of the whole entry; its SHA-256 is the id ([ENTRY-1]).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut value = self.unsigned_value();
        if let CanonicalValue::Object(map) = &mut value {
            map.insert("sig".into(), CanonicalValue::string(self.sig.to_string()));
        }
        value.to_jcs()
    }

    /// The entry's id, SHA-256 of [`Entry::canonical_bytes`] ([ENTRY-1]), without checking the
    /// signature: for authors chaining entries they just signed. Anything received goes through
    /// [`verify_entry`], which yields the same id.
    pub fn id(&self) -> EntryId {
        EntryId::from_bytes(Sha256::digest(self.canonical_bytes()).into())
    }
}

/// An entry not yet signed: what an author's UI builds.
#[derive(Debug, Clone)]
pub struct EntryDraft {
    /// Position in the feed, from 1.
    pub seq: u64,
    /// Id of the previous entry (None at seq 1).
    pub prev: Option<EntryId>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The entry kind.
    pub kind: Kind,
    /// The payload.
    pub content: CanonicalObject,
    /// Mentioned users.
    pub mentions: Vec<PublicKey>,
    /// Referenced entries.
    pub refs: Vec<EntryId>,
}

impl EntryDraft {
    /// A draft of the first entry of a feed with empty content, kind `post`.
    pub fn first(timestamp: u64) -> Self {
        EntryDraft {
            seq: 1,
            prev: None,
            timestamp,
            kind: Kind("post".into()),
            content: CanonicalObject::new(),
            mentions: Vec::new(),
            refs: Vec::new(),
        }
    }

    /// A draft of the entry after `prev` (same kind, empty content).
    pub fn after(prev: &VerifiedEntry, timestamp: u64) -> Self {
        EntryDraft {
            seq: prev.entry.seq + 1,
            prev: Some(prev.id),
            timestamp,
            kind: Kind("post".into()),
            content: CanonicalObject::new(),
            mentions: Vec::new(),
            refs: Vec::new(),
        }
    }

    /// Sets a text body (`content.text`).
    pub fn text(mut self, text: &str) -> Self {
        self.content.insert("text".into(), CanonicalValue::string(text));
        self
    }

    /// Signs the draft as `author`. The result is not checked: tests use this to build
    /// deliberately invalid entries too.
    pub fn sign(self, author: &SecretKey) -> Entry {
        let mut entry = Entry {
            author: author.public(),
            seq: self.seq,
            prev: self.prev,
            timestamp: self.timestamp,
            kind: self.kind,
            content: self.content,
            mentions: self.mentions,
            refs: self.refs,
            // Replaced below: the signature covers everything but itself.
            sig: Signature::from_bytes([0; 64]),
        };
        entry.sig = author.sign(Context::Entry, &entry.unsigned_value());
        entry
    }
}

/// An entry whose size and signature have been checked, with its id and canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEntry {
    /// The entry.
    pub entry: Entry,
    /// SHA-256 of `canonical`.
    pub id: EntryId,
    /// JCS of the signed entry: what is stored, counted and hashed.
    pub canonical: Vec<u8>,
}

/// Checks an entry's size ([ENTRY-17]) and strict signature ([ENTRY-18]) and computes its id
/// ([ENTRY-1]). Stateless: the feed rules are [`check_chain`]'s.
pub fn verify_entry(entry: &Entry) -> Result<VerifiedEntry, EntryError> {
    let unsigned = entry.unsigned_value();
    let mut canonical = Vec::with_capacity(512);
    {
        let CanonicalValue::Object(map) = &unsigned else {
            return Err(EntryError::Malformed("entry is not an object".into()));
        };
        let mut signed = map.clone();
        signed.insert("sig".into(), CanonicalValue::string(entry.sig.to_string()));
        crate::canonical::write_jcs_object(&signed, &mut canonical);
    }
    if canonical.len() > MAX_ENTRY_BYTES {
        return Err(EntryError::TooLarge { size: canonical.len() });
    }
    let message = signing_bytes(Context::Entry, &unsigned);
    entry.author.verify_strict(&message, &entry.sig).map_err(|_| EntryError::BadSignature)?;
    let id = EntryId::from_bytes(Sha256::digest(&canonical).into());
    Ok(VerifiedEntry { entry: entry.clone(), id, canonical })
}

/// What a node keeps of a feed even after pruning every entry of it (chapter 10): enough to
/// validate the next entry and to tell duplicate, fork and pruned apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedHead {
    /// The highest seq accepted.
    pub seq: u64,
    /// Its id.
    pub id: EntryId,
    /// Its timestamp.
    pub timestamp: u64,
    /// Every seq at or below this has been pruned (0 = none).
    pub pruned_through: u64,
}

/// Where an entry falls relative to a feed, by [`check_chain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum ChainPosition {
    /// The node holds nothing of this feed; the entry anchors it (any seq) ([ENTRY-23]).
    Anchor,
    /// The entry extends the feed by one ([ENTRY-27]).
    Next,
    /// The entry is the feed's head, identical: an idempotent re-publish ([ENTRY-28]).
    DuplicateHead,
    /// The entry is below the head: the caller compares with the id stored at that seq using
    /// [`resolve_below_head`].
    BelowHead,
}

/// Places a verified entry relative to the feed head the node holds ([ENTRY-23] ..
/// [ENTRY-30]).
pub fn check_chain(head: Option<&FeedHead>, entry: &VerifiedEntry) -> Result<ChainPosition, EntryError> {
    let Some(head) = head else {
        return Ok(ChainPosition::Anchor);
    };
    let seq = entry.entry.seq;
    if seq == head.seq + 1 {
        if entry.entry.prev != Some(head.id) {
            return Err(EntryError::BrokenLink);
        }
        if entry.entry.timestamp < head.timestamp {
            return Err(EntryError::TimestampBackwards { timestamp: entry.entry.timestamp, prev: head.timestamp });
        }
        return Ok(ChainPosition::Next);
    }
    if seq > head.seq + 1 {
        return Err(EntryError::Gap { seq, head: head.seq });
    }
    if seq == head.seq {
        return if entry.id == head.id { Ok(ChainPosition::DuplicateHead) } else { Err(EntryError::Fork { seq }) };
    }
    if seq <= head.pruned_through {
        return Err(EntryError::Pruned { seq });
    }
    Ok(ChainPosition::BelowHead)
}

/// Decides a below-head entry against the id the node stores at its seq: the same id is a
/// duplicate (`Ok`, [ENTRY-31]), another is a fork ([ENTRY-32]).
pub fn resolve_below_head(stored: &EntryId, entry: &VerifiedEntry) -> Result<(), EntryError> {
    if *stored == entry.id {
        Ok(())
    } else {
        Err(EntryError::Fork { seq: entry.entry.seq })
    }
}

/// The content of a `profile` entry, a user's own metadata ([ENTRY-14], [ENTRY-15]). Other
/// members are allowed, so profiles can grow without a new kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct ProfileContent {
    /// The user's own display name, 1 to 64 bytes of UTF-8.
    #[cfg_attr(feature = "gen", schemars(length(min = 1, max = 64)))]
    pub name: String,
    /// About the user, at most 1024 bytes of UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "gen", schemars(length(max = 1024)))]
    pub about: Option<String>,
}

impl ProfileContent {
    /// Checks the content of an entry of kind `profile`.
    pub fn check(content: &CanonicalObject) -> Result<ProfileContent, String> {
        let name = match content.get("name") {
            Some(CanonicalValue::String(n)) if !n.is_empty() && n.len() <= MAX_PROFILE_NAME => n.clone(),
            _ => return Err("profile content needs a `name` string of 1-64 bytes".into()),
        };
        let about = match content.get("about") {
            None => None,
            Some(CanonicalValue::String(a)) if a.len() <= MAX_PROFILE_ABOUT => Some(a.clone()),
            Some(_) => return Err("profile `about` must be a string of at most 1024 bytes".into()),
        };
        Ok(ProfileContent { name, about })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn author() -> SecretKey {
        SecretKey::from_seed([7; 32])
    }

    #[test]
    fn signed_entry_verifies_and_round_trips() {
        let e = EntryDraft::first(1_700_000_000_000).text("hello").sign(&author());
        let v = verify_entry(&e).expect("valid");
        let json = serde_json::to_string(&e).expect("json");
        let back = Entry::from_json(&json).expect("parse");
        assert_eq!(back, e);
        assert_eq!(verify_entry(&back).expect("valid").id, v.id);
        assert_eq!(v.canonical, e.canonical_bytes());
        assert_eq!(e.id(), v.id);
    }

    #[test]
    fn chain_rules() {
        let a = author();
        let e1 = verify_entry(&EntryDraft::first(10).sign(&a)).expect("e1");
        let e2 = verify_entry(&EntryDraft::after(&e1, 11).sign(&a)).expect("e2");
        let head1 = FeedHead { seq: 1, id: e1.id, timestamp: 10, pruned_through: 0 };
        assert_eq!(check_chain(None, &e2), Ok(ChainPosition::Anchor));
        assert_eq!(check_chain(Some(&head1), &e2), Ok(ChainPosition::Next));
        assert_eq!(check_chain(Some(&head1), &e1), Ok(ChainPosition::DuplicateHead));
        let early = verify_entry(&EntryDraft::after(&e1, 9).sign(&a)).expect("early");
        assert_eq!(check_chain(Some(&head1), &early).map_err(|e| e.code()), Err(ErrorCode::BadTimestamp));
        let other1 = verify_entry(&EntryDraft::first(10).text("x").sign(&a)).expect("fork");
        assert_eq!(check_chain(Some(&head1), &other1).map_err(|e| e.code()), Err(ErrorCode::Fork));
    }

    #[test]
    fn decoder_codes() {
        let e = EntryDraft::first(1).sign(&author());
        let mut v: serde_json::Value = serde_json::to_value(&e).expect("value");
        v["author"] = serde_json::Value::String(e.author.to_string().to_uppercase());
        assert_eq!(Entry::from_json(&v.to_string()).map_err(|e| e.code()), Err(ErrorCode::BadEncoding));
        let mut v: serde_json::Value = serde_json::to_value(&e).expect("value");
        v["seq"] = 0.into();
        assert_eq!(Entry::from_json(&v.to_string()).map_err(|e| e.code()), Err(ErrorCode::BadSequence));
        let mut v: serde_json::Value = serde_json::to_value(&e).expect("value");
        v["extra"] = 1.into();
        assert_eq!(Entry::from_json(&v.to_string()).map_err(|e| e.code()), Err(ErrorCode::MalformedEntry));
    }

    #[test]
    fn stateless_rules_in_spec_order() {
        let e = EntryDraft::first(1).sign(&author());
        let base: serde_json::Value = serde_json::to_value(&e).expect("value");
        let verdict = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = base.clone();
            f(&mut v);
            Entry::from_json(&v.to_string()).map(|_| ()).map_err(|e| e.code())
        };
        assert_eq!(verdict(&|v| v["seq"] = (-1).into()), Err(ErrorCode::BadSequence));
        assert_eq!(verdict(&|v| v["timestamp"] = (-1).into()), Err(ErrorCode::MalformedEntry));
        // author is decoded before sig: a weak author wins over a malformed signature.
        assert_eq!(
            verdict(&|v| {
                v["author"] = format!("01{}", "00".repeat(31)).into();
                v["sig"] = "XX".into();
            }),
            Err(ErrorCode::WeakKey)
        );
        // Encodings come before seq.
        assert_eq!(
            verdict(&|v| {
                v["seq"] = 0.into();
                v["sig"] = "XX".into();
            }),
            Err(ErrorCode::BadEncoding)
        );
        let mut deep = serde_json::json!(1);
        for _ in 0..32 {
            deep = serde_json::json!([deep]);
        }
        assert_eq!(
            verdict(&|v| v["content"] = serde_json::json!({ "d": deep.clone() })),
            Err(ErrorCode::MalformedEntry)
        );
        assert_eq!(verdict(&|v| v["kind"] = "profile".into()), Err(ErrorCode::MalformedEntry));
        assert_eq!(verdict(&|v| v["kind"] = "Post".into()), Err(ErrorCode::MalformedEntry));
    }

    #[test]
    fn profile_content_allows_extra_members() {
        let mut content = CanonicalObject::new();
        content.insert("name".into(), CanonicalValue::string("ada"));
        content.insert("avatar".into(), CanonicalValue::string("x"));
        assert!(ProfileContent::check(&content).is_ok());
        content.insert("about".into(), CanonicalValue::Null);
        assert!(ProfileContent::check(&content).is_err());
    }
}
