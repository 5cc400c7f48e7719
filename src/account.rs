//! Spec chapter 7, "Accounts and invites": the account record, invite and publish allowances,
//! key replacement and removal.

use std::borrow::Cow;

#[cfg(feature = "gen")]
use schemars::JsonSchema;
use serde::{de, Deserialize, Deserializer, Serialize};
use thiserror::Error;

use crate::canonical::{CanonicalObject, CanonicalValue};
use crate::decode::{decode_by_serde, member, optional_member, wire_borrowed, DecodeRequest, RequestError};
use crate::encoding::{deserialize_opt_u53, deserialize_present, deserialize_u53, PublicKey, Signature};
use crate::envelope::RequestId;
use crate::error::{ErrorCode, HasErrorCode};
use crate::signing::{signing_bytes, Context, SecretKey};

/// An account name: 1 to 32 characters of `a-z 0-9 _ -`, assigned by the inviter, unique on
/// its node (chapter 7).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
#[serde(transparent)]
pub struct AccountName(#[cfg_attr(feature = "gen", schemars(regex(pattern = r"^[a-z0-9_-]{1,32}$")))] String);

impl AccountName {
    /// The admin's account name.
    pub const ADMIN: &'static str = "admin";

    /// Checks and wraps a name.
    pub fn new(name: impl Into<String>) -> Result<Self, String> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= 32
            && name.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
        if ok {
            Ok(AccountName(name))
        } else {
            Err(format!("account name {} is not 1-32 of [a-z0-9_-]", crate::envelope::quote(&name)))
        }
    }

    /// The name's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for AccountName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text: Cow<'de, str> = Deserialize::deserialize(d)?;
        AccountName::new(text.into_owned()).map_err(de::Error::custom)
    }
}

/// What a node tells a user about an account (chapter 7 §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Account {
    /// The account's current user key.
    pub key: PublicKey,
    /// Its name on this node.
    pub name: AccountName,
    /// The inviter's key; null for the admin.
    #[cfg_attr(feature = "gen", schemars(with = "crate::encoding::Nullable<PublicKey>"))]
    #[serde(deserialize_with = "crate::encoding::deserialize_nullable")]
    pub parent: Option<PublicKey>,
    /// Accounts it may still create, counting each child's own allowance; null = unlimited.
    #[cfg_attr(feature = "gen", schemars(with = "crate::encoding::Nullable<u64>"))]
    #[serde(deserialize_with = "deserialize_opt_u53")]
    pub invite_allowance: Option<u64>,
    /// Entries it may still publish on this node; null = unlimited.
    #[cfg_attr(feature = "gen", schemars(with = "crate::encoding::Nullable<u64>"))]
    #[serde(deserialize_with = "deserialize_opt_u53")]
    pub publish_allowance: Option<u64>,
    /// Entries it has published (newly stored) on this node.
    #[serde(deserialize_with = "deserialize_u53")]
    pub published_entries: u64,
    /// Sum of the canonical sizes of those entries.
    #[serde(deserialize_with = "deserialize_u53")]
    pub published_bytes: u64,
}

/// Why an account request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AccountError {
    /// The inviter's invite allowance is below 1 + the child's allowance.
    #[error("invite allowance {remaining} does not cover {cost}")]
    AllowanceExhausted {
        /// What the inviter has left.
        remaining: u64,
        /// What the child costs.
        cost: u64,
    },
    /// The child's publish allowance exceeds the inviter's.
    #[error("publish allowance {asked} exceeds the inviter's {limit}")]
    PublishAllowanceTooHigh {
        /// What the request asked for.
        asked: u64,
        /// The inviter's own remaining publish allowance.
        limit: u64,
    },
    /// The session's user is not a strict ancestor of the target.
    #[error("only an ancestor in the invite chain may do this")]
    NotAncestor,
    /// A replacement's signature does not verify.
    #[error("key replacement signature does not verify")]
    BadReplacementSignature,
    /// The admin's key is the node key and cannot be replaced.
    #[error("the admin's key is the node key and cannot be replaced")]
    AdminCannotReplace,
    /// A replacement names another node, another old key, or has expired.
    #[error("invalid key replacement: {0}")]
    InvalidReplacement(String),
}

impl HasErrorCode for AccountError {
    fn code(&self) -> ErrorCode {
        match self {
            AccountError::AllowanceExhausted { .. } | AccountError::PublishAllowanceTooHigh { .. } => {
                ErrorCode::AllowanceExhausted
            }
            AccountError::NotAncestor | AccountError::AdminCannotReplace => ErrorCode::Forbidden,
            AccountError::BadReplacementSignature => ErrorCode::BadSignature,
            AccountError::InvalidReplacement(_) => ErrorCode::InvalidRequest,
        }
    }
}

/// What creating a child with invite allowance `child` costs its inviter: the child's own
/// slot plus everything it may create ([ACCT-12]).
pub fn invite_cost(child: u64) -> u64 {
    child.saturating_add(1)
}

/// Charges an inviter with `remaining` allowance (None = unlimited, the admin) for a child with
/// allowance `child`, returning what the inviter has left ([ACCT-12] .. [ACCT-14]).
pub fn charge_invite(remaining: Option<u64>, child: u64) -> Result<Option<u64>, AccountError> {
    let cost = invite_cost(child);
    match remaining {
        None => Ok(None),
        Some(r) if r >= cost => Ok(Some(r - cost)),
        Some(r) => Err(AccountError::AllowanceExhausted { remaining: r, cost }),
    }
}

/// Checks a child's publish allowance against the inviter's (None = unlimited) (chapter 7 §5).
pub fn check_publish_allowance(inviter: Option<u64>, child: u64) -> Result<(), AccountError> {
    match inviter {
        Some(limit) if child > limit => Err(AccountError::PublishAllowanceTooHigh { asked: child, limit }),
        _ => Ok(()),
    }
}

/// `account`: asks for the session's own account record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct AccountRequest {
    /// Request id.
    pub id: RequestId,
}

/// `account_ok`: the session's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct AccountOk {
    /// Echoed request id.
    pub id: RequestId,
    /// The account.
    pub account: Account,
}

/// `create_user`: the session's user invites a new account (chapter 7 §5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct CreateUser {
    /// Request id.
    pub id: RequestId,
    /// The new account's key (often a throw-away invite key).
    pub key: PublicKey,
    /// Its name.
    pub name: AccountName,
    /// Accounts it may create in turn.
    #[serde(deserialize_with = "deserialize_u53")]
    #[cfg_attr(feature = "gen", schemars(range(max = 9007199254740991u64)))]
    pub invite_allowance: u64,
    /// Entries it may publish.
    #[serde(deserialize_with = "deserialize_u53")]
    #[cfg_attr(feature = "gen", schemars(range(max = 9007199254740991u64)))]
    pub publish_allowance: u64,
}

/// `create_user_ok`: the new account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct CreateUserOk {
    /// Echoed request id.
    pub id: RequestId,
    /// The created account.
    pub account: Account,
}

/// A signed key replacement: `old` hands its account to `new`; both sign (chapter 7 §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
#[cfg_attr(feature = "gen", schemars(deny_unknown_fields))]
pub struct KeyReplacement {
    /// The node's peer key (so the replacement is void elsewhere).
    pub node: PublicKey,
    /// The key being replaced.
    pub old: PublicKey,
    /// The key taking over.
    pub new: PublicKey,
    /// Milliseconds since the epoch after which the replacement is void.
    #[serde(deserialize_with = "deserialize_u53")]
    #[cfg_attr(feature = "gen", schemars(range(max = 9007199254740991u64)))]
    pub expires: u64,
    /// `old`'s signature under `kith/1/replace-key`.
    pub sig_old: Signature,
    /// `new`'s signature over the same bytes.
    pub sig_new: Signature,
}

/// The wire shape of a replacement: members and JSON kinds only ([ACCT-22]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyReplacementWire<'a> {
    #[serde(borrow)]
    node: Cow<'a, str>,
    #[serde(borrow)]
    old: Cow<'a, str>,
    #[serde(borrow)]
    new: Cow<'a, str>,
    #[serde(deserialize_with = "deserialize_u53")]
    expires: u64,
    #[serde(borrow)]
    sig_old: Cow<'a, str>,
    #[serde(borrow)]
    sig_new: Cow<'a, str>,
}

impl KeyReplacement {
    /// Structure first ([ACCT-22], done by the wire struct), then `node`, `old`, `new`,
    /// `sig_old`, `sig_new` in that order ([ACCT-23]), whatever their order in the frame.
    fn from_wire(w: KeyReplacementWire<'_>) -> Result<Self, RequestError> {
        Ok(KeyReplacement {
            node: member("replacement.node", &w.node, PublicKey::parse)?,
            old: member("replacement.old", &w.old, PublicKey::parse)?,
            new: member("replacement.new", &w.new, PublicKey::parse)?,
            expires: w.expires,
            sig_old: member("replacement.sig_old", &w.sig_old, Signature::parse)?,
            sig_new: member("replacement.sig_new", &w.sig_new, Signature::parse)?,
        })
    }
}

impl<'de> Deserialize<'de> for KeyReplacement {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        KeyReplacement::from_wire(KeyReplacementWire::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// The wire shape of a `replace_key`.
#[derive(Deserialize)]
struct ReplaceKeyWire<'a> {
    id: RequestId,
    #[serde(borrow)]
    replacement: KeyReplacementWire<'a>,
}

impl DecodeRequest for ReplaceKey {
    fn decode(text: &str) -> Result<Self, RequestError> {
        let w: ReplaceKeyWire<'_> = wire_borrowed(text)?;
        Ok(ReplaceKey { id: w.id, replacement: KeyReplacement::from_wire(w.replacement)? })
    }
}

/// The wire shape of a `create_user` ([ACCT-7] .. [ACCT-9] are decoded from it).
#[derive(Deserialize)]
struct CreateUserWire<'a> {
    id: RequestId,
    #[serde(borrow)]
    key: Cow<'a, str>,
    name: String,
    #[serde(deserialize_with = "deserialize_u53")]
    invite_allowance: u64,
    #[serde(deserialize_with = "deserialize_u53")]
    publish_allowance: u64,
}

impl DecodeRequest for CreateUser {
    fn decode(text: &str) -> Result<Self, RequestError> {
        let w: CreateUserWire<'_> = wire_borrowed(text)?;
        Ok(CreateUser {
            id: w.id,
            key: member("key", &w.key, PublicKey::parse)?,
            name: AccountName::new(w.name).map_err(RequestError::Invalid)?,
            invite_allowance: w.invite_allowance,
            publish_allowance: w.publish_allowance,
        })
    }
}

/// The wire shape of a request naming one account by its key (`remove_user`, `follow`,
/// `unfollow`).
#[derive(Deserialize)]
pub(crate) struct KeyRequestWire<'a> {
    pub(crate) id: RequestId,
    #[serde(borrow)]
    pub(crate) key: Cow<'a, str>,
}

impl KeyRequestWire<'_> {
    /// Reads the wire struct and decodes its `key`.
    pub(crate) fn decode(text: &str) -> Result<(RequestId, PublicKey), RequestError> {
        let w: KeyRequestWire<'_> = wire_borrowed(text)?;
        Ok((w.id, member("key", &w.key, PublicKey::parse)?))
    }
}

impl DecodeRequest for RemoveUser {
    fn decode(text: &str) -> Result<Self, RequestError> {
        let (id, key) = KeyRequestWire::decode(text)?;
        Ok(RemoveUser { id, key })
    }
}

/// The wire shape of a request paged by an optional account key (`invitees`, `follows`):
/// `after` absent, or a string ([FRAME-40]: `null` is refused).
#[derive(Deserialize)]
pub(crate) struct AfterKeyWire {
    pub(crate) id: RequestId,
    #[serde(default, deserialize_with = "deserialize_present")]
    pub(crate) after: Option<String>,
}

impl AfterKeyWire {
    /// Reads the wire struct and decodes its `after`.
    pub(crate) fn decode(text: &str) -> Result<(RequestId, Option<PublicKey>), RequestError> {
        let w: AfterKeyWire = crate::decode::wire(text)?;
        Ok((w.id, optional_member("after", w.after.as_deref(), PublicKey::parse)?))
    }
}

impl DecodeRequest for Invitees {
    fn decode(text: &str) -> Result<Self, RequestError> {
        let (id, after) = AfterKeyWire::decode(text)?;
        Ok(Invitees { id, after })
    }
}

decode_by_serde!(AccountRequest);

impl KeyReplacement {
    fn unsigned(node: &PublicKey, old: &PublicKey, new: &PublicKey, expires: u64) -> CanonicalValue {
        let mut map = CanonicalObject::new();
        map.insert("node".into(), CanonicalValue::string(node.to_string()));
        map.insert("old".into(), CanonicalValue::string(old.to_string()));
        map.insert("new".into(), CanonicalValue::string(new.to_string()));
        map.insert("expires".into(), CanonicalValue::from_u53(expires));
        CanonicalValue::Object(map)
    }

    /// The bytes both signatures cover.
    pub fn signing_bytes(&self) -> Vec<u8> {
        signing_bytes(Context::ReplaceKey, &Self::unsigned(&self.node, &self.old, &self.new, self.expires))
    }

    /// Builds a replacement signed by both keys.
    pub fn sign(node: PublicKey, old: &SecretKey, new: &SecretKey, expires: u64) -> Self {
        let unsigned = Self::unsigned(&node, &old.public(), &new.public(), expires);
        KeyReplacement {
            node,
            old: old.public(),
            new: new.public(),
            expires,
            sig_old: old.sign(Context::ReplaceKey, &unsigned),
            sig_new: new.sign(Context::ReplaceKey, &unsigned),
        }
    }

    /// Checks a replacement received by `node` over a session of `session_user` at `now_ms`,
    /// in the spec's order: node ([ACCT-24]), the admin may not replace ([ACCT-25]), old is
    /// the requester ([ACCT-26]), expiry ([ACCT-27]), `sig_old` ([ACCT-28]), `sig_new`
    /// ([ACCT-29]). Whether `new` is taken ([ACCT-30]) depends on the node's accounts and is
    /// the node's check, made after this one.
    pub fn verify(&self, node: &PublicKey, session_user: &PublicKey, now_ms: u64) -> Result<(), AccountError> {
        self.check(node, session_user, now_ms, true)
    }

    /// [`KeyReplacement::verify`] without the refusal of the admin's replacement ([ACCT-25]):
    /// the `admin-replaces-key` fault of the reference node only.
    #[cfg(feature = "faults")]
    pub fn verify_letting_the_admin_replace(
        &self,
        node: &PublicKey,
        session_user: &PublicKey,
        now_ms: u64,
    ) -> Result<(), AccountError> {
        self.check(node, session_user, now_ms, false)
    }

    fn check(
        &self,
        node: &PublicKey,
        session_user: &PublicKey,
        now_ms: u64,
        refuse_the_admin: bool,
    ) -> Result<(), AccountError> {
        if self.node != *node {
            return Err(AccountError::InvalidReplacement("names another node".into()));
        }
        if refuse_the_admin && session_user == node {
            return Err(AccountError::AdminCannotReplace);
        }
        if self.old != *session_user {
            return Err(AccountError::InvalidReplacement("old is not the session's user".into()));
        }
        if self.expires <= now_ms {
            return Err(AccountError::InvalidReplacement("expired".into()));
        }
        let bytes = self.signing_bytes();
        self.old.verify_strict(&bytes, &self.sig_old).map_err(|_| AccountError::BadReplacementSignature)?;
        self.new.verify_strict(&bytes, &self.sig_new).map_err(|_| AccountError::BadReplacementSignature)?;
        Ok(())
    }
}

/// `replace_key`: hands the session's account to a new key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct ReplaceKey {
    /// Request id.
    pub id: RequestId,
    /// The doubly signed replacement.
    pub replacement: KeyReplacement,
}

/// `replace_key_ok`: the account now answers to `account.key`; this session closes next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct ReplaceKeyOk {
    /// Echoed request id.
    pub id: RequestId,
    /// The account under its new key.
    pub account: Account,
}

/// `remove_user`: an ancestor removes an account (chapter 7 §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct RemoveUser {
    /// Request id.
    pub id: RequestId,
    /// The account's key.
    pub key: PublicKey,
}

/// `invitees`: the accounts below the session's user in the invite tree, a page at a time
/// (chapter 7 §7.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Invitees {
    /// Request id.
    pub id: RequestId,
    /// List only accounts whose key is greater than this; present means not `null` ([ACCT-52]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::encoding::deserialize_present"
    )]
    pub after: Option<PublicKey>,
}

/// Most accounts one `invitees_ok` lists ([ACCT-54]).
pub const MAX_INVITEES_PAGE: usize = 256;

/// `invitees_ok`: a page of the session user's descendants, ascending by key ([ACCT-54]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct InviteesOk {
    /// Echoed request id.
    pub id: RequestId,
    /// At most [`MAX_INVITEES_PAGE`] account objects.
    #[cfg_attr(feature = "gen", schemars(length(max = 256)))]
    pub accounts: Vec<Account>,
    /// Whether descendants after the last listed one exist ([ACCT-55]).
    pub more: bool,
}

/// `remove_user_ok`: the account is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct RemoveUserOk {
    /// Echoed request id.
    pub id: RequestId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowance_arithmetic() {
        assert_eq!(charge_invite(Some(10), 3), Ok(Some(6)));
        assert_eq!(charge_invite(Some(4), 3), Ok(Some(0)));
        assert_eq!(charge_invite(Some(3), 3).map_err(|e| e.code()), Err(ErrorCode::AllowanceExhausted));
        assert_eq!(charge_invite(Some(0), 0).map_err(|e| e.code()), Err(ErrorCode::AllowanceExhausted));
        assert_eq!(charge_invite(None, u64::MAX), Ok(None));
        assert_eq!(invite_cost(u64::MAX), u64::MAX);
    }

    #[test]
    fn replacement_needs_both_signatures() {
        let node = SecretKey::from_seed([9; 32]).public();
        let old = SecretKey::from_seed([1; 32]);
        let new = SecretKey::from_seed([2; 32]);
        let r = KeyReplacement::sign(node, &old, &new, 100);
        assert_eq!(r.verify(&node, &old.public(), 99), Ok(()));
        assert_eq!(r.verify(&node, &new.public(), 99).map_err(|e| e.code()), Err(ErrorCode::InvalidRequest));
        assert_eq!(r.verify(&node, &node, 99).map_err(|e| e.code()), Err(ErrorCode::Forbidden));
        assert_eq!(r.verify(&old.public(), &old.public(), 99).map_err(|e| e.code()), Err(ErrorCode::InvalidRequest));
        assert_eq!(r.verify(&node, &old.public(), 100).map_err(|e| e.code()), Err(ErrorCode::InvalidRequest));
        let mut bad = r.clone();
        bad.sig_new = bad.sig_old;
        assert_eq!(bad.verify(&node, &old.public(), 99).map_err(|e| e.code()), Err(ErrorCode::BadSignature));
    }
}
