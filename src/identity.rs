//! Spec chapter 9, "Identities": users of other nodes, described by signed notes of the local
//! users who know them, and followed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::canonical::{CanonicalObject, CanonicalValue};
use std::borrow::Cow;

use crate::encoding::{decode_member, deserialize_u53, PublicKey, Signature};
use crate::error::{ErrorCode, HasErrorCode};
use crate::frame::RequestId;
use crate::signing::{signing_bytes, Context, SecretKey};

/// Longest display name, in bytes.
pub const MAX_DISPLAY_NAME: usize = 64;
/// Longest note, in bytes.
pub const MAX_NOTE: usize = 1024;
/// Most addresses a note may list.
pub const MAX_ADDRESSES: usize = 8;

/// A local user's signed description of an identity (chapter 9 §1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct IdentityNote {
    /// The identity described (a user key, usually of another node).
    pub subject: PublicKey,
    /// The local user who wrote the note; the signer.
    pub author: PublicKey,
    /// What the author calls the identity.
    #[schemars(length(min = 1, max = 64))]
    pub display_name: String,
    /// Node addresses (chapter 5 form) where the identity can be reached.
    #[schemars(length(max = 8))]
    pub addresses: Vec<String>,
    /// Free text.
    #[schemars(length(max = 1024))]
    pub note: String,
    /// Milliseconds since the epoch; a newer note replaces an older one by the same author.
    #[serde(deserialize_with = "deserialize_u53")]
    #[schemars(range(max = 9007199254740991u64))]
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

impl<'de> Deserialize<'de> for IdentityNote {
    /// Structure first ([IDENT-2]), then `subject`, `author`, `sig` in that order ([IDENT-3]),
    /// whatever their order in the frame.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = IdentityNoteWire::deserialize(d)?;
        Ok(IdentityNote {
            subject: decode_member(&w.subject, PublicKey::parse)?,
            author: decode_member(&w.author, PublicKey::parse)?,
            sig: decode_member(&w.sig, Signature::parse)?,
            display_name: w.display_name,
            addresses: w.addresses,
            note: w.note,
            updated: w.updated,
        })
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
}

impl HasErrorCode for IdentityError {
    fn code(&self) -> ErrorCode {
        match self {
            IdentityError::BadSignature => ErrorCode::BadSignature,
            IdentityError::Invalid(_) => ErrorCode::InvalidRequest,
            IdentityError::NotAuthor => ErrorCode::Forbidden,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Identity {
    /// The identity's key.
    pub key: PublicKey,
    /// The notes, one per author, ordered by author key.
    pub notes: Vec<IdentityNote>,
}

/// `add_identity`: store a note by the session's user (chapter 9 §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AddIdentity {
    /// Request id.
    pub id: RequestId,
    /// The note.
    pub note: IdentityNote,
}

/// `add_identity_ok`: stored (or an equal or newer note was already held).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AddIdentityOk {
    /// Echoed request id.
    pub id: RequestId,
}

/// `identities`: every identity the node's users described (chapter 9 §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Identities {
    /// Request id.
    pub id: RequestId,
}

/// `identities_ok`: identities ordered by key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IdentitiesOk {
    /// Echoed request id.
    pub id: RequestId,
    /// The identities.
    pub identities: Vec<Identity>,
}

/// `follow`: the session's user follows an identity (chapter 9 §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Follow {
    /// Request id.
    pub id: RequestId,
    /// The identity's key.
    pub key: PublicKey,
}

/// `follow_ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FollowOk {
    /// Echoed request id.
    pub id: RequestId,
}

/// `unfollow`: stops following (chapter 9 §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Unfollow {
    /// Request id.
    pub id: RequestId,
    /// The identity's key.
    pub key: PublicKey,
}

/// `unfollow_ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UnfollowOk {
    /// Echoed request id.
    pub id: RequestId,
}

/// `follows`: the keys the session's user follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Follows {
    /// Request id.
    pub id: RequestId,
}

/// `follows_ok`: followed keys, ordered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FollowsOk {
    /// Echoed request id.
    pub id: RequestId,
    /// The keys.
    pub keys: Vec<PublicKey>,
}

/// The content of a `profile` entry, a user's own metadata ([ENTRY-14], [ENTRY-15]). Other
/// members are allowed, so profiles can grow without a new kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProfileContent {
    /// The user's own display name, 1 to 64 bytes of UTF-8.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// About the user, at most 1024 bytes of UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub about: Option<String>,
}

impl ProfileContent {
    /// Checks the content of an entry of kind `profile`.
    pub fn check(content: &CanonicalObject) -> Result<ProfileContent, String> {
        let name = match content.get("name") {
            Some(CanonicalValue::String(n)) if !n.is_empty() && n.len() <= MAX_DISPLAY_NAME => n.clone(),
            _ => return Err("profile content needs a `name` string of 1-64 bytes".into()),
        };
        let about = match content.get("about") {
            None => None,
            Some(CanonicalValue::String(a)) if a.len() <= MAX_NOTE => Some(a.clone()),
            Some(_) => return Err("profile `about` must be a string of at most 1024 bytes".into()),
        };
        Ok(ProfileContent { name, about })
    }
}
