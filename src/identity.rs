//! Spec chapter 9, "Identities": users of other nodes, described by signed notes of the local
//! users who know them, and followed.

#[cfg(feature = "gen")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::canonical::{CanonicalObject, CanonicalValue};
use std::borrow::Cow;

use crate::account::{AfterKeyWire, KeyRequestWire};
use crate::decode::{member, wire, wire_borrowed, DecodeRequest, RequestError};
use crate::encoding::{deserialize_present, deserialize_u53, PublicKey, Signature};
use crate::envelope::RequestId;
use crate::error::{ErrorCode, HasErrorCode};
use crate::signing::{signing_bytes, Context, SecretKey};

/// Longest display name, in bytes.
pub const MAX_DISPLAY_NAME: usize = 64;
/// Longest note, in bytes.
pub const MAX_NOTE: usize = 1024;
/// Most addresses a note may list.
pub const MAX_ADDRESSES: usize = 8;

/// A local user's signed description of an identity (chapter 9 §1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
#[cfg_attr(feature = "gen", schemars(deny_unknown_fields))]
pub struct IdentityNote {
    /// The identity described (a user key, usually of another node).
    pub subject: PublicKey,
    /// The local user who wrote the note; the signer.
    pub author: PublicKey,
    /// What the author calls the identity.
    #[cfg_attr(feature = "gen", schemars(length(min = 1, max = 64)))]
    pub display_name: String,
    /// Node addresses (chapter 5 form) where the identity can be reached.
    #[cfg_attr(feature = "gen", schemars(length(max = 8)))]
    pub addresses: Vec<String>,
    /// Free text.
    #[cfg_attr(feature = "gen", schemars(length(max = 1024)))]
    pub note: String,
    /// Milliseconds since the epoch; a newer note replaces an older one by the same author.
    #[serde(deserialize_with = "deserialize_u53")]
    #[cfg_attr(feature = "gen", schemars(range(max = 9007199254740991u64)))]
    pub updated: u64,
    /// The author's signature under `kith/1/identity-note`.
    pub sig: Signature,
}

/// The wire shape of a note: members and JSON kinds only ([IDENT-2]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityNoteWire<'a> {
    #[serde(borrow)]
    subject: Cow<'a, str>,
    #[serde(borrow)]
    author: Cow<'a, str>,
    display_name: String,
    addresses: Vec<String>,
    note: String,
    #[serde(deserialize_with = "deserialize_u53")]
    updated: u64,
    #[serde(borrow)]
    sig: Cow<'a, str>,
}

impl IdentityNote {
    /// Structure first ([IDENT-2], done by the wire struct), then `subject`, `author`, `sig` in
    /// that order ([IDENT-3]), whatever their order in the frame.
    fn from_wire(w: IdentityNoteWire<'_>) -> Result<Self, RequestError> {
        Ok(IdentityNote {
            subject: member("note.subject", &w.subject, PublicKey::parse)?,
            author: member("note.author", &w.author, PublicKey::parse)?,
            sig: member("note.sig", &w.sig, Signature::parse)?,
            display_name: w.display_name,
            addresses: w.addresses,
            note: w.note,
            updated: w.updated,
        })
    }
}

impl<'de> Deserialize<'de> for IdentityNote {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IdentityNote::from_wire(IdentityNoteWire::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Why a note was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The signature does not verify.
    #[error("identity note signature does not verify")]
    BadSignature,
    /// A field breaks its limits, or an address is not in canonical form.
    #[error("invalid identity note: {0}")]
    Invalid(String),
    /// The note's author is not the session's user.
    #[error("the note's author is not the session's user")]
    NotAuthor,
    /// Storing the note would pass the author's `max_notes` or `max_note_bytes` ([IDENT-25]).
    #[error("storing the note would pass max_notes or max_note_bytes")]
    QuotaExceeded,
}

/// What one author key holds, for the quota of [IDENT-25].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoteUsage {
    /// Notes held.
    pub count: u64,
    /// The sum of their [`IdentityNote::size`].
    pub bytes: u64,
}

impl NoteUsage {
    /// Whether storing a note of `new_size` bytes, replacing a held note of `replaced` bytes
    /// (IDENT-12) or adding one (IDENT-11), keeps the author within `max_notes` and
    /// `max_note_bytes` ([IDENT-25]). A note discarded under IDENT-13 is never checked.
    pub fn admit(
        self,
        replaced: Option<u64>,
        new_size: u64,
        max_notes: u64,
        max_note_bytes: u64,
    ) -> Result<NoteUsage, IdentityError> {
        let count = if replaced.is_some() { self.count } else { self.count.saturating_add(1) };
        let bytes = self.bytes.saturating_sub(replaced.unwrap_or(0)).saturating_add(new_size);
        if count > max_notes || bytes > max_note_bytes {
            return Err(IdentityError::QuotaExceeded);
        }
        Ok(NoteUsage { count, bytes })
    }
}

impl HasErrorCode for IdentityError {
    fn code(&self) -> ErrorCode {
        match self {
            IdentityError::BadSignature => ErrorCode::BadSignature,
            IdentityError::Invalid(_) => ErrorCode::InvalidRequest,
            IdentityError::NotAuthor => ErrorCode::Forbidden,
            IdentityError::QuotaExceeded => ErrorCode::QuotaExceeded,
        }
    }
}

impl IdentityNote {
    fn unsigned(&self) -> CanonicalValue {
        let mut map = CanonicalObject::new();
        map.insert("subject".into(), CanonicalValue::string(self.subject.to_string()));
        map.insert("author".into(), CanonicalValue::string(self.author.to_string()));
        map.insert("display_name".into(), CanonicalValue::string(&self.display_name));
        map.insert(
            "addresses".into(),
            CanonicalValue::Array(self.addresses.iter().map(CanonicalValue::string).collect()),
        );
        map.insert("note".into(), CanonicalValue::string(&self.note));
        map.insert("updated".into(), CanonicalValue::from_u53(self.updated));
        CanonicalValue::Object(map)
    }

    /// The note's counted size: the byte length of its canonical form, `sig` included, which is
    /// what `max_note_bytes` and the pages of `identities_ok` count ([IDENT-25], [IDENT-28]).
    pub fn size(&self) -> u64 {
        let mut v = self.unsigned();
        if let CanonicalValue::Object(map) = &mut v {
            map.insert("sig".into(), CanonicalValue::string(self.sig.to_string()));
        }
        v.to_jcs().len() as u64
    }

    /// The note's place in the order of `identities_ok`.
    pub fn position(&self) -> NotePosition {
        NotePosition { subject: self.subject, author: self.author }
    }

    /// The bytes the signature covers.
    pub fn signing_bytes(&self) -> Vec<u8> {
        signing_bytes(Context::IdentityNote, &self.unsigned())
    }

    /// Builds and signs a note as `author`.
    pub fn sign(
        author: &SecretKey,
        subject: PublicKey,
        display_name: &str,
        addresses: Vec<String>,
        note: &str,
        updated: u64,
    ) -> Self {
        let mut n = IdentityNote {
            subject,
            author: author.public(),
            display_name: display_name.into(),
            addresses,
            note: note.into(),
            updated,
            sig: Signature::from_bytes([0; 64]),
        };
        n.sig = author.sign(Context::IdentityNote, &n.unsigned());
        n
    }

    /// Checks the fields, then the signature (see [`IdentityNote::check_fields`] and
    /// [`IdentityNote::verify_signature`]). A node checks the author between the two
    /// ([IDENT-9]).
    pub fn verify(&self) -> Result<(), IdentityError> {
        self.check_fields()?;
        self.verify_signature()
    }

    /// Checks the signature ([IDENT-10]).
    pub fn verify_signature(&self) -> Result<(), IdentityError> {
        self.author.verify_strict(&self.signing_bytes(), &self.sig).map_err(|_| IdentityError::BadSignature)
    }

    /// Checks limits ([IDENT-4] .. [IDENT-6]), address forms ([IDENT-7]) and distinct
    /// addresses ([IDENT-8]).
    pub fn check_fields(&self) -> Result<(), IdentityError> {
        if self.display_name.is_empty() || self.display_name.len() > MAX_DISPLAY_NAME {
            return Err(IdentityError::Invalid("display_name must be 1-64 bytes".into()));
        }
        if self.note.len() > MAX_NOTE {
            return Err(IdentityError::Invalid("note must be at most 1024 bytes".into()));
        }
        if self.addresses.len() > MAX_ADDRESSES {
            return Err(IdentityError::Invalid("at most 8 addresses".into()));
        }
        for a in &self.addresses {
            a.parse::<crate::address::NodeAddress>().map_err(|e| IdentityError::Invalid(e.to_string()))?;
        }
        let distinct: std::collections::BTreeSet<&String> = self.addresses.iter().collect();
        if distinct.len() != self.addresses.len() {
            return Err(IdentityError::Invalid("the same address appears twice".into()));
        }
        Ok(())
    }
}

/// An identity with every note the node's users wrote about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Identity {
    /// The identity's key.
    pub key: PublicKey,
    /// The notes, one per author, ordered by author key.
    pub notes: Vec<IdentityNote>,
}

/// `add_identity`: store a note by the session's user (chapter 9 §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct AddIdentity {
    /// Request id.
    pub id: RequestId,
    /// The note.
    pub note: IdentityNote,
}

/// `add_identity_ok`: stored (or an equal or newer note was already held).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct AddIdentityOk {
    /// Echoed request id.
    pub id: RequestId,
}

/// `identities`: the identities the node's users described, a page at a time (chapter 9 §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Identities {
    /// Request id.
    pub id: RequestId,
    /// List only notes after this position; present means not `null` ([IDENT-27]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::encoding::deserialize_present"
    )]
    pub after: Option<NotePosition>,
}

/// A note's place in the order of `identities_ok`: by subject, then author ([IDENT-16],
/// [IDENT-17]). Field order matters: the derived `Ord` compares `subject` first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NotePosition {
    /// The note's subject.
    pub subject: PublicKey,
    /// The note's author.
    pub author: PublicKey,
}

/// Most counted bytes ([`IdentityNote::size`]) of the notes of one `identities_ok` ([IDENT-28]).
/// With notes of at most [`MAX_NOTE_SIZE`] bytes a page holds at least two, and the whole answer
/// stays below 65536 bytes, the least `max_queued_bytes` leaves for a request's answers ([HS-54]).
pub const MAX_IDENTITIES_PAGE_BYTES: u64 = 32_768;

/// An upper bound on [`IdentityNote::size`] for any note that passes §1: a 64-byte name and a
/// 1024-byte text even if every byte is escaped as `\u00XX`, 8 addresses of the longest form,
/// two keys, a signature and the members' names. The least `max_note_bytes` ([HS-56]).
pub const MAX_NOTE_SIZE: u64 = 16_384;

/// How many of `sizes`, taken in order, one `identities_ok` carries: the longest prefix whose
/// sum is at most [`MAX_IDENTITIES_PAGE_BYTES`], and at least one when any remain ([IDENT-28]).
pub fn identities_page_len(sizes: impl IntoIterator<Item = u64>) -> usize {
    let mut total = 0u64;
    let mut n = 0usize;
    for s in sizes {
        total = total.saturating_add(s);
        if total > MAX_IDENTITIES_PAGE_BYTES && n > 0 {
            break;
        }
        n += 1;
    }
    n
}

/// `identities_ok`: a page of identities ordered by key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct IdentitiesOk {
    /// Echoed request id.
    pub id: RequestId,
    /// The identities.
    pub identities: Vec<Identity>,
    /// Whether notes after the last listed one exist ([IDENT-29]).
    pub more: bool,
}

/// `follow`: the session's user follows an identity (chapter 9 §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Follow {
    /// Request id.
    pub id: RequestId,
    /// The identity's key.
    pub key: PublicKey,
}

/// `follow_ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct FollowOk {
    /// Echoed request id.
    pub id: RequestId,
}

/// `unfollow`: stops following (chapter 9 §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Unfollow {
    /// Request id.
    pub id: RequestId,
    /// The identity's key.
    pub key: PublicKey,
}

/// `unfollow_ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct UnfollowOk {
    /// Echoed request id.
    pub id: RequestId,
}

/// `follows`: the keys the session's user follows, a page at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Follows {
    /// Request id.
    pub id: RequestId,
    /// List only keys greater than this; present means not `null` ([IDENT-27]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::encoding::deserialize_present"
    )]
    pub after: Option<PublicKey>,
}

/// Most keys one `follows_ok` lists ([IDENT-30]).
pub const MAX_FOLLOWS_PAGE: usize = 256;

/// `follows_ok`: a page of followed keys, ordered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct FollowsOk {
    /// Echoed request id.
    pub id: RequestId,
    /// At most [`MAX_FOLLOWS_PAGE`] keys.
    #[cfg_attr(feature = "gen", schemars(length(max = 256)))]
    pub keys: Vec<PublicKey>,
    /// Whether followed keys after the last listed one exist ([IDENT-30]).
    pub more: bool,
}

/// The content of a `profile` entry: an entry kind, so it lives with the entries (chapter 03).
pub use crate::entry::ProfileContent;

/// The wire shape of an `add_identity`.
#[derive(Deserialize)]
struct AddIdentityWire<'a> {
    id: RequestId,
    #[serde(borrow)]
    note: IdentityNoteWire<'a>,
}

impl DecodeRequest for AddIdentity {
    fn decode(text: &str) -> Result<Self, RequestError> {
        let w: AddIdentityWire<'_> = wire_borrowed(text)?;
        Ok(AddIdentity { id: w.id, note: IdentityNote::from_wire(w.note)? })
    }
}

/// The wire shape of a [`NotePosition`]: exactly its two members, as texts.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NotePositionWire {
    subject: String,
    author: String,
}

/// The wire shape of an `identities`: `after` absent or a position ([IDENT-27]).
#[derive(Deserialize)]
struct IdentitiesWire {
    id: RequestId,
    #[serde(default, deserialize_with = "deserialize_present")]
    after: Option<NotePositionWire>,
}

impl DecodeRequest for Identities {
    fn decode(text: &str) -> Result<Self, RequestError> {
        let w: IdentitiesWire = wire(text)?;
        let after = match w.after {
            None => None,
            Some(p) => Some(NotePosition {
                subject: member("after.subject", &p.subject, PublicKey::parse)?,
                author: member("after.author", &p.author, PublicKey::parse)?,
            }),
        };
        Ok(Identities { id: w.id, after })
    }
}

impl DecodeRequest for Follow {
    fn decode(text: &str) -> Result<Self, RequestError> {
        let (id, key) = KeyRequestWire::decode(text)?;
        Ok(Follow { id, key })
    }
}

impl DecodeRequest for Unfollow {
    fn decode(text: &str) -> Result<Self, RequestError> {
        let (id, key) = KeyRequestWire::decode(text)?;
        Ok(Unfollow { id, key })
    }
}

impl DecodeRequest for Follows {
    fn decode(text: &str) -> Result<Self, RequestError> {
        let (id, after) = AfterKeyWire::decode(text)?;
        Ok(Follows { id, after })
    }
}
