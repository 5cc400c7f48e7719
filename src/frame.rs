//! Spec chapter 6, "Framing": one JSON object per websocket text frame, the frame registries
//! and the decoder that turns any bytes into a frame or the spec's error. Request ids are in
//! [`crate::envelope`], which the message modules import instead of this dispatcher.

use std::borrow::Cow;
use std::cell::Cell;

#[cfg(feature = "gen")]
use schemars::{JsonSchema, Schema};
use serde::{de, Deserialize, Deserializer, Serialize};

use crate::account::{
    AccountOk, AccountRequest, CreateUser, CreateUserOk, Invitees, InviteesOk, RemoveUser, RemoveUserOk, ReplaceKey,
    ReplaceKeyOk,
};
use crate::decode::{decode_request, RequestError};
use crate::encoding::MAX_SAFE_INTEGER;
// The envelope's pieces live in their own module so that the message modules, which this one
// dispatches to, need not import the dispatcher; they stay reachable here too.
pub use crate::envelope::{quote, RequestId, QUOTE_CHARS};
use crate::error::{ErrorCode, HasErrorCode};
use crate::feed::{
    Event, Get, GetOk, Heads, HeadsOk, Publish, PublishOk, Replicate, ReplicateOk, StoredEnd, Subscribe, SubscribeOk,
    Unsubscribe, UnsubscribeOk,
};
use crate::handshake::{Auth, Challenge, Hello, ServerHandshake, Welcome};
use crate::identity::{
    AddIdentity, AddIdentityOk, Follow, FollowOk, Follows, FollowsOk, Identities, IdentitiesOk, Unfollow, UnfollowOk,
};
use crate::node_info::{NodeInfo, NodeInfoOk};

/// Largest frame a node accepts, in bytes ([FRAME-4], [FRAME-5]).
pub const MAX_FRAME_BYTES: usize = 65536;

/// The close deadline, fixed by kith/1: at most this many milliseconds after a node decides to
/// end a connection, for whatever reason, it has ended the TCP connection, whether or not the
/// peer took what was still queued ([FRAME-50]).
pub const CLOSE_DEADLINE_MS: u64 = 10000;

/// The upgrade deadline, fixed by kith/1: a TCP connection that has not completed its
/// WebSocket upgrade this many milliseconds after the node accepted it is ended ([FRAME-52]).
pub const UPGRADE_DEADLINE_MS: u64 = 2000;

/// `error`: a request failed, or a frame could not be read (`id` null) ([FRAME-17]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct ErrorFrame {
    /// The failed request's id; null when it could not be read.
    #[cfg_attr(feature = "gen", schemars(with = "crate::encoding::Nullable<RequestId>"))]
    #[serde(deserialize_with = "crate::encoding::deserialize_nullable")]
    pub id: Option<RequestId>,
    /// The registry code.
    pub code: ErrorCode,
    /// Human-readable detail; clients must not parse it.
    pub message: String,
}

/// `closing` push: the node is about to close the connection, and why ([FRAME-28] ..
/// [FRAME-30]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Closing {
    /// Why: `key_replaced`, `account_removed`, `cert_expired` or `shutting_down`.
    pub code: ErrorCode,
    /// Human-readable detail.
    pub message: String,
}

/// Builds one frame enum from its list of `type => Variant(Message)` lines: the enum itself,
/// its `TYPES`, `type_name`, decoder dispatch and schemas. `frame_registry!` calls it once per
/// side.
macro_rules! frame_enum {
    ($(#[$meta:meta])* $name:ident decoded by $decode:ident => $error:ty { $( $(#[$vdoc:meta])* $wire:literal => $variant:ident($ty:ty) ),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[cfg_attr(feature = "gen", derive(JsonSchema))]
        #[serde(tag = "type")]
        #[allow(clippy::large_enum_variant)]
        pub enum $name {
            $( $(#[$vdoc])* #[serde(rename = $wire)] $variant($ty), )+
        }

        impl $name {
            /// Every registered `type`, in registry order.
            pub const TYPES: &'static [&'static str] = &[$($wire),+];

            /// This frame's `type`.
            pub fn type_name(&self) -> &'static str {
                match self { $($name::$variant(_) => $wire,)+ }
            }

            /// Decodes a frame whose `type` has been read, or None for an unknown type.
            fn decode_typed(ty: &str, text: &str) -> Option<Result<Self, $error>> {
                match ty {
                    $($wire => Some($decode::<$ty>(text).map($name::$variant)),)+
                    _ => None,
                }
            }

            /// The JSON Schema of each registered frame type, `type` property included (feature
            /// `gen`).
            #[cfg(feature = "gen")]
            pub fn schemas() -> Vec<(&'static str, Schema)> {
                vec![$(($wire, with_type_property(schemars::schema_for!($ty), $wire)),)+]
            }
        }
    };
}

/// The registry of chapter 11 §6, one entry per request type: its `type`, variant and message,
/// whether a node answers it before authentication, its answer's `type`, variant and message,
/// and the pushes it opens; then the server frames that answer no one request type. From it come
/// `ClientFrame`, `ServerFrame` (answers and pushes in registry order, then the others),
/// `RequestKind`, `REQUESTS`, `ClientFrame::id` and `ServerFrame::is_push`, so that a new
/// request type is one entry here, not an edit of every list of request types.
macro_rules! frame_registry {
    (
        $(#[$client_meta:meta])* ClientFrame decoded by $client_decode:ident => $client_error:ty;
        $(#[$server_meta:meta])* ServerFrame decoded by $server_decode:ident => $server_error:ty;
        requests {
            $(
                $(#[$rdoc:meta])* $rwire:literal => $rvar:ident($rty:ty), before auth: $before_auth:literal,
                $(#[$adoc:meta])* answered by $awire:literal => $avar:ident($aty:ty)
                $(, $(#[$pdoc:meta])* pushing $pwire:literal => $pvar:ident($pty:ty))*;
            )+
        }
        other server frames {
            $( $(#[$odoc:meta])* $owire:literal => $ovar:ident($oty:ty), push: $opush:literal; )+
        }
    ) => {
        frame_enum! {
            $(#[$client_meta])* ClientFrame decoded by $client_decode => $client_error {
                $( $(#[$rdoc])* $rwire => $rvar($rty), )+
            }
        }

        frame_enum! {
            $(#[$server_meta])* ServerFrame decoded by $server_decode => $server_error {
                $(
                    $(#[$adoc])* $awire => $avar($aty),
                    $( $(#[$pdoc])* $pwire => $pvar($pty), )*
                )+
                $( $(#[$odoc])* $owire => $ovar($oty), )+
            }
        }

        /// A request type of the registry without its members: what a node, a fuzzer or a test
        /// enumerates or dispatches on when it needs every request type (chapter 11 §6). Its
        /// variants are [`ClientFrame`]'s, in the same order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RequestKind {
            $( $(#[$rdoc])* $rvar, )+
        }

        /// Every request type with its answer and pushes, in registry order (chapter 11 §6);
        /// `REQUESTS[k as usize]` is the entry of kind `k`.
        pub const REQUESTS: &[RequestSpec] = &[
            $(
                RequestSpec {
                    kind: RequestKind::$rvar,
                    request: $rwire,
                    answer: $awire,
                    pushes: &[$($pwire),*],
                    before_auth: $before_auth,
                },
            )+
        ];

        impl RequestKind {
            /// How many request types the registry holds.
            pub const COUNT: usize = ClientFrame::TYPES.len();

            /// Every request type, in registry order.
            pub const ALL: [RequestKind; RequestKind::COUNT] = [$(RequestKind::$rvar),+];

            /// The kind of a client frame.
            pub fn of(frame: &ClientFrame) -> RequestKind {
                match frame { $(ClientFrame::$rvar(_) => RequestKind::$rvar,)+ }
            }

            /// The kind whose `type` is `ty`, or None for a type the registry does not hold.
            pub fn from_type(ty: &str) -> Option<RequestKind> {
                match ty {
                    $($rwire => Some(RequestKind::$rvar),)+
                    _ => None,
                }
            }

            /// Its registry entry.
            pub fn spec(self) -> &'static RequestSpec {
                &REQUESTS[self as usize]
            }

            /// The request's `type`.
            pub const fn type_name(self) -> &'static str {
                match self { $(RequestKind::$rvar => $rwire,)+ }
            }

            /// The `type` of the frame that answers it on success (`invitees` → `invitees_ok`,
            /// `hello` → `challenge`).
            pub const fn answer_type(self) -> &'static str {
                match self { $(RequestKind::$rvar => $awire,)+ }
            }

            /// Whether a node answers it before authentication ([HS-38]): `node_info`, `hello`
            /// and `auth`.
            pub const fn allowed_before_auth(self) -> bool {
                match self { $(RequestKind::$rvar => $before_auth,)+ }
            }
        }

        impl ClientFrame {
            /// The request id every client frame carries.
            pub fn id(&self) -> RequestId {
                match self { $(ClientFrame::$rvar(m) => m.id,)+ }
            }
        }

        impl ServerFrame {
            /// Whether the frame is a push (`event`, `stored_end`, `closing`), sent without a
            /// request to answer, rather than an answer or an `error`.
            pub fn is_push(&self) -> bool {
                match self {
                    $( $( ServerFrame::$pvar(_) => true, )* )+
                    $( ServerFrame::$ovar(_) => $opush, )+
                    _ => false,
                }
            }
        }
    };
}

/// One request type's entry in the registry ([`REQUESTS`], chapter 11 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestSpec {
    /// Its kind.
    pub kind: RequestKind,
    /// The request's `type`.
    pub request: &'static str,
    /// The `type` of its answer on success.
    pub answer: &'static str,
    /// The `type`s of the pushes it opens (`subscribe`: `event`, `stored_end`).
    pub pushes: &'static [&'static str],
    /// Whether a node answers it before authentication ([HS-38]).
    pub before_auth: bool,
}

/// Decodes a frame a node sends: serde alone, as a client reads it.
fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str(text)
}

/// Adds the `type` discriminator to a message struct's schema.
#[cfg(feature = "gen")]
fn with_type_property(mut schema: Schema, wire: &str) -> Schema {
    if let Some(obj) = schema.as_object_mut() {
        let props = obj.entry("properties").or_insert_with(|| serde_json::json!({}));
        if let Some(props) = props.as_object_mut() {
            props.insert("type".into(), serde_json::json!({ "const": wire }));
        }
        let required = obj.entry("required").or_insert_with(|| serde_json::json!([]));
        if let Some(list) = required.as_array_mut() {
            list.insert(0, serde_json::json!("type"));
        }
        obj.insert("title".into(), serde_json::json!(wire));
    }
    schema
}

frame_registry! {
    /// Every frame a client sends ([FRAME-1], [FRAME-12]).
    ClientFrame decoded by decode_request => RequestError;
    /// Every frame a node sends ([FRAME-1]).
    ServerFrame decoded by from_json => serde_json::Error;
    requests {
        /// Pre-auth: what is this node?
        "node_info" => NodeInfo(NodeInfo), before auth: true,
            /// Answer to `node_info`.
            answered by "node_info_ok" => NodeInfoOk(NodeInfoOk);
        /// Handshake step 1.
        "hello" => Hello(Hello), before auth: true,
            /// Answer to `hello`.
            answered by "challenge" => Challenge(Challenge);
        /// Handshake step 3.
        "auth" => Auth(Auth), before auth: true,
            /// Answer to `auth`.
            answered by "welcome" => Welcome(Welcome);
        /// The session's own account.
        "account" => Account(AccountRequest), before auth: false,
            /// Answer to `account`.
            answered by "account_ok" => AccountOk(AccountOk);
        /// Invite a user.
        "create_user" => CreateUser(CreateUser), before auth: false,
            /// Answer to `create_user`.
            answered by "create_user_ok" => CreateUserOk(CreateUserOk);
        /// Replace the session's key.
        "replace_key" => ReplaceKey(ReplaceKey), before auth: false,
            /// Answer to `replace_key`.
            answered by "replace_key_ok" => ReplaceKeyOk(ReplaceKeyOk);
        /// Remove a descendant.
        "remove_user" => RemoveUser(RemoveUser), before auth: false,
            /// Answer to `remove_user`.
            answered by "remove_user_ok" => RemoveUserOk(RemoveUserOk);
        /// List the session user's descendants.
        "invitees" => Invitees(Invitees), before auth: false,
            /// Answer to `invitees`.
            answered by "invitees_ok" => InviteesOk(InviteesOk);
        /// Store an entry.
        "publish" => Publish(Publish), before auth: false,
            /// Answer to `publish`.
            answered by "publish_ok" => PublishOk(PublishOk);
        /// Open a subscription.
        "subscribe" => Subscribe(Subscribe), before auth: false,
            /// Answer to `subscribe`.
            answered by "subscribe_ok" => SubscribeOk(SubscribeOk),
            /// Push: a matching entry.
            pushing "event" => Event(Event),
            /// Push: backfill complete.
            pushing "stored_end" => StoredEnd(StoredEnd);
        /// Close a subscription.
        "unsubscribe" => Unsubscribe(Unsubscribe), before auth: false,
            /// Answer to `unsubscribe`.
            answered by "unsubscribe_ok" => UnsubscribeOk(UnsubscribeOk);
        /// Feed heads.
        "heads" => Heads(Heads), before auth: false,
            /// Answer to `heads`.
            answered by "heads_ok" => HeadsOk(HeadsOk);
        /// Feed entries after a seq.
        "replicate" => Replicate(Replicate), before auth: false,
            /// Answer to `replicate`.
            answered by "replicate_ok" => ReplicateOk(ReplicateOk);
        /// One entry.
        "get" => Get(Get), before auth: false,
            /// Answer to `get`.
            answered by "get_ok" => GetOk(GetOk);
        /// Describe an identity.
        "add_identity" => AddIdentity(AddIdentity), before auth: false,
            /// Answer to `add_identity`.
            answered by "add_identity_ok" => AddIdentityOk(AddIdentityOk);
        /// List identities.
        "identities" => Identities(Identities), before auth: false,
            /// Answer to `identities`.
            answered by "identities_ok" => IdentitiesOk(IdentitiesOk);
        /// Follow an identity.
        "follow" => Follow(Follow), before auth: false,
            /// Answer to `follow`.
            answered by "follow_ok" => FollowOk(FollowOk);
        /// Unfollow an identity.
        "unfollow" => Unfollow(Unfollow), before auth: false,
            /// Answer to `unfollow`.
            answered by "unfollow_ok" => UnfollowOk(UnfollowOk);
        /// List follows.
        "follows" => Follows(Follows), before auth: false,
            /// Answer to `follows`.
            answered by "follows_ok" => FollowsOk(FollowsOk);
    }
    other server frames {
        /// A failed request.
        "error" => Error(ErrorFrame), push: false;
        /// Push: the connection is about to close.
        "closing" => Closing(Closing), push: true;
    }
}

impl ClientFrame {
    /// The frame's request type.
    pub fn kind(&self) -> RequestKind {
        RequestKind::of(self)
    }

    /// The `type` of the frame that answers this one on success (`invitees_ok` for
    /// `invitees`).
    pub fn answer_type(&self) -> &'static str {
        self.kind().answer_type()
    }

    /// Whether a node answers this frame before authentication ([HS-38]).
    pub fn allowed_before_auth(&self) -> bool {
        self.kind().allowed_before_auth()
    }

    /// Encodes the frame as the text of one websocket frame.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl ServerFrame {
    /// Encodes the frame as the text of one websocket frame.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Builds an error frame.
    pub fn error(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::Error(ErrorFrame { id, code, message: message.into() })
    }

    /// The request id this frame answers, if it is an answer.
    pub fn answers(&self) -> Option<RequestId> {
        let v = serde_json::to_value(self).ok()?;
        v.get("id").and_then(|id| id.as_u64()).and_then(RequestId::new)
    }

    /// Decodes a server frame (as a client or the conformance runner does). Dispatching on
    /// `type` first avoids buffering the whole frame, as the derived decoder would.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let head: Head<'_> = serde_json::from_str(text)?;
        let ty = head.ty.unwrap_or_default();
        match ServerFrame::decode_typed(&ty, text) {
            Some(result) => result,
            None => Err(de::Error::custom(format!("unknown server frame type {ty:?}"))),
        }
    }
}

/// Why a client frame could not be decoded: the error frame a node answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct FrameError {
    /// The request id, when it could be read.
    pub id: Option<RequestId>,
    /// The spec code.
    pub code: ErrorCode,
    /// Detail.
    pub message: String,
}

impl FrameError {
    /// The error frame to send.
    pub fn to_frame(&self) -> ServerFrame {
        ServerFrame::error(self.id, self.code, self.message.clone())
    }
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow, default)]
    ty: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

/// The `id` of a frame whose `type` is not a string, the one member read, to echo it ([FRAME-17]).
#[derive(Deserialize)]
struct LooseHead {
    #[serde(default)]
    id: Option<serde_json::Value>,
}

/// The registered client `type` of a frame's text, if it has one (read without decoding the
/// rest).
pub fn peek_type(text: &str) -> Option<&'static str> {
    let head: Head<'_> = serde_json::from_str(text).ok()?;
    let ty = head.ty?;
    ClientFrame::TYPES.iter().copied().find(|t| *t == ty.as_ref())
}

/// Most nesting levels a frame may have ([ENC-8]).
pub const MAX_FRAME_DEPTH: usize = 64;

/// Which rule of chapter 1 §2 a frame breaks ([ENC-1] .. [ENC-9]); every one is
/// `malformed_frame` in a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameJsonError {
    /// The text begins with a byte-order mark ([ENC-1]).
    #[error("frame begins with a byte-order mark")]
    ByteOrderMark,
    /// The text is not JSON, or holds a lone surrogate: what the JSON parser said.
    #[error("{0}")]
    Syntax(String),
    /// An object holds the same key twice ([ENC-3]).
    #[error("duplicate key {0}")]
    DuplicateKey(String),
    /// An integer outside ±(2^53 − 1) ([ENC-6]).
    #[error("integer {0} outside ±(2^53-1)")]
    IntegerOutOfRange(i128),
    /// A number with a fraction or an exponent, `-0`, or one too large for 64 bits ([ENC-5]).
    #[error("number with a fraction or exponent, -0, or out of range")]
    NotAnInteger,
    /// Arrays and objects nested deeper than [`MAX_FRAME_DEPTH`] ([ENC-8]).
    #[error("nesting depth exceeds {MAX_FRAME_DEPTH}")]
    TooDeep,
    /// The top-level value is not an object ([ENC-9]).
    #[error("the top-level value is not an object")]
    NotAnObject,
}

/// Checks the rules of chapter 1 §2 that hold everywhere in a frame ([ENC-1] .. [ENC-9]):
/// JSON grammar, no byte-order mark, no duplicate keys, integers only and within ±(2^53 − 1),
/// no `-0`, no lone surrogates, depth at most 64, an object at the top.
pub fn check_frame_json(text: &str) -> Result<(), FrameJsonError> {
    use serde::de::DeserializeSeed;
    if text.starts_with('\u{feff}') {
        return Err(FrameJsonError::ByteOrderMark);
    }
    // The walk's own refusals are typed values in this slot; serde only carries the failure out
    // of the parser. An error with an empty slot is the parser's own: a syntax error.
    let refused = Cell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let walked =
        Walk { depth: 0, refused: &refused }.deserialize(&mut de).and_then(|is_object| de.end().map(|()| is_object));
    match walked {
        Ok(true) => Ok(()),
        Ok(false) => Err(FrameJsonError::NotAnObject),
        Err(e) => Err(refused.take().unwrap_or_else(|| FrameJsonError::Syntax(e.to_string()))),
    }
}

/// A validating walk over a JSON value that builds nothing; yields whether it was an object.
/// The rule it refuses is put in `refused` before the walk stops.
struct Walk<'s> {
    depth: usize,
    refused: &'s Cell<Option<FrameJsonError>>,
}

impl Walk<'_> {
    fn refuse<E: de::Error>(&self, rule: FrameJsonError) -> E {
        let error = E::custom(&rule);
        self.refused.set(Some(rule));
        error
    }

    fn enter<E: de::Error>(&self) -> Result<usize, E> {
        if self.depth + 1 > MAX_FRAME_DEPTH {
            return Err(self.refuse(FrameJsonError::TooDeep));
        }
        Ok(self.depth + 1)
    }
}

impl<'de> de::DeserializeSeed<'de> for Walk<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for Walk<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        if v.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(self.refuse(FrameJsonError::IntegerOutOfRange(v.into())));
        }
        Ok(false)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        if v > MAX_SAFE_INTEGER {
            return Err(self.refuse(FrameJsonError::IntegerOutOfRange(v.into())));
        }
        Ok(false)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        // serde_json reports `-0`, fractions, exponents and integers beyond 64 bits as floats.
        Err(self.refuse(FrameJsonError::NotAnInteger))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let depth = self.enter()?;
        while seq.next_element_seed(Walk { depth, refused: self.refused })?.is_some() {}
        Ok(false)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let depth = self.enter()?;
        // A set, not a list: a 64 KiB frame can hold thousands of keys in one object.
        let mut keys: std::collections::BTreeSet<Cow<'de, str>> = std::collections::BTreeSet::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if keys.contains(&key) {
                return Err(self.refuse(FrameJsonError::DuplicateKey(quote(&key))));
            }
            keys.insert(key);
            map.next_value_seed(Walk { depth, refused: self.refused })?;
        }
        Ok(true)
    }
}

/// Decodes one client frame's text ([FRAME-5] .. [FRAME-17]):
/// - over [`MAX_FRAME_BYTES`]: `frame_too_large`;
/// - breaking a rule of chapter 1 §2 (grammar, duplicates, numbers, depth, not an object):
///   `malformed_frame`;
/// - no string `type`: `invalid_request`;
/// - an unregistered `type`: `unknown_type`;
/// - a missing or invalid `id`: `invalid_request`;
/// - a registered type whose fields break its rules: the nested object's code (e.g.
///   `malformed_entry`, `bad_encoding`, `weak_key`) or else `invalid_request`.
///
/// The error carries the request id whenever the frame is an object whose `id` is an integer in
/// [0, 2^53 − 1] ([FRAME-17]). Unknown fields are ignored ([FRAME-15]).
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    triage_client_frame(text).map_err(|(e, _)| e)
}

/// How far a refused client frame got through the steps of 06 §3, as the decoder saw it: what
/// a node needs to put its own steps (the rate limit, step 8; the state, step 9) in their place
/// around the decoder's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedAt {
    /// Steps 1 to 5: the size, the rules of chapter 1, a string `type`, a registered `type`.
    Envelope,
    /// Step 6: a registered `type` (named) without a valid `id` ([FRAME-12]).
    Id(&'static str),
    /// Step 10: the members of a registered request (named) with a valid `id`.
    Members(&'static str),
}

impl RefusedAt {
    /// Whether the frame passed steps 1 to 6 (its own rules, step 10, failed).
    pub fn passed_envelope(self) -> bool {
        matches!(self, RefusedAt::Members(_))
    }
}

/// [`parse_client_frame`], saying with each refusal how far the frame got ([`RefusedAt`]).
pub fn triage_client_frame(text: &str) -> Result<ClientFrame, (FrameError, RefusedAt)> {
    let envelope = |id, code, message| (FrameError { id, code, message }, RefusedAt::Envelope);
    if text.len() > MAX_FRAME_BYTES {
        let message = format!("frame of {} bytes exceeds {MAX_FRAME_BYTES}", text.len());
        return Err(envelope(None, ErrorCode::FrameTooLarge, message));
    }
    let loose_id = || {
        serde_json::from_str::<LooseHead>(text)
            .ok()
            .and_then(|h| h.id)
            .and_then(|v| v.as_u64())
            .and_then(RequestId::new)
    };
    if let Err(e) = check_frame_json(text) {
        return Err(envelope(None, ErrorCode::MalformedFrame, e.to_string()));
    }
    let head: Head<'_> = match serde_json::from_str(text) {
        Ok(head) => head,
        // The frame passed chapter 1's checks, so `type` is not a string.
        Err(e) => return Err(envelope(loose_id(), ErrorCode::InvalidRequest, e.to_string())),
    };
    let id = head.id.as_ref().and_then(|v| v.as_u64()).and_then(RequestId::new);
    let Some(ty) = head.ty else {
        return Err(envelope(id, ErrorCode::InvalidRequest, "missing string `type`".into()));
    };
    let Some(registered) = ClientFrame::TYPES.iter().copied().find(|t| *t == ty.as_ref()) else {
        return Err(envelope(id, ErrorCode::UnknownType, format!("unknown type {}", quote(&ty))));
    };
    let Some(id) = id else {
        return Err((
            FrameError {
                id: None,
                code: ErrorCode::InvalidRequest,
                message: "missing or invalid `id` (an integer in [0, 2^53-1])".into(),
            },
            RefusedAt::Id(registered),
        ));
    };
    match ClientFrame::decode_typed(registered, text) {
        Some(Ok(frame)) => Ok(frame),
        Some(Err(e)) => {
            Err((FrameError { id: Some(id), code: e.code(), message: e.to_string() }, RefusedAt::Members(registered)))
        }
        None => Err(envelope(Some(id), ErrorCode::UnknownType, format!("unknown type {}", quote(&ty)))),
    }
}

// The handshake's frame decoding is written here, beside the decoder it wraps, so that
// `handshake.rs` (a message module this dispatcher imports) does not import the dispatcher.
impl ServerHandshake {
    /// Decodes a frame received during the handshake with the state check first: a `hello`
    /// after the first, or an `auth` before a hello was accepted, is `bad_handshake` whatever is
    /// wrong with its members (H1, [HS-20]; [HS-30]). Every other frame decodes as
    /// [`parse_client_frame`] decodes it.
    pub fn decode_frame(&self, text: &str) -> Result<ClientFrame, FrameError> {
        let result = parse_client_frame(text);
        let (id, ty) = match &result {
            Ok(frame) => (Some(frame.id()), frame.type_name()),
            // Only a frame that got as far as its members has a type worth checking.
            Err(e) if e.id.is_some() => (e.id, peek_type(text).unwrap_or("")),
            Err(_) => return result,
        };
        if self.out_of_order(ty) {
            return Err(FrameError {
                id,
                code: ErrorCode::BadHandshake,
                message: format!("{ty} is not allowed in this state of the handshake"),
            });
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::EntryDraft;
    use crate::signing::SecretKey;

    /// The `max_frame_bytes` and `max_nesting_depth` a node reports are the decoder's own bounds
    /// ([HS-6], [HS-52]).
    #[test]
    fn the_reported_fixed_limits_are_the_decoders() {
        assert_eq!(crate::node_info::KITH1_MAX_FRAME_BYTES, MAX_FRAME_BYTES as u64);
        assert_eq!(crate::node_info::KITH1_MAX_NESTING_DEPTH, MAX_FRAME_DEPTH as u64);
    }

    fn code(text: &str) -> (Option<u64>, ErrorCode) {
        let e = parse_client_frame(text).expect_err("must fail");
        (e.id.map(RequestId::get), e.code)
    }

    #[test]
    fn decode_errors_carry_spec_codes() {
        assert_eq!(code("{"), (None, ErrorCode::MalformedFrame));
        assert_eq!(code("[1]"), (None, ErrorCode::MalformedFrame));
        assert_eq!(code("\u{feff}{\"type\":\"node_info\",\"id\":1}"), (None, ErrorCode::MalformedFrame));
        assert_eq!(code(r#"{"id":3}"#), (Some(3), ErrorCode::InvalidRequest));
        assert_eq!(code(r#"{"type":7,"id":3}"#), (Some(3), ErrorCode::InvalidRequest));
        assert_eq!(code(r#"{"type":"teleport","id":4}"#), (Some(4), ErrorCode::UnknownType));
        assert_eq!(code(r#"{"type":"node_info"}"#), (None, ErrorCode::InvalidRequest));
        assert_eq!(code(r#"{"type":"node_info","id":"1"}"#), (None, ErrorCode::InvalidRequest));
        assert_eq!(code(r#"{"type":"node_info","id":1.5}"#), (None, ErrorCode::MalformedFrame));
        assert_eq!(code(r#"{"type":"node_info","id":1,"x":1.0}"#), (None, ErrorCode::MalformedFrame));
        assert_eq!(code(r#"{"type":"node_info","id":1,"x":-0}"#), (None, ErrorCode::MalformedFrame));
        assert_eq!(code(r#"{"type":"node_info","id":1,"x":"\ud800"}"#), (None, ErrorCode::MalformedFrame));
        assert_eq!(code(r#"{"type":"node_info","id":9007199254740992}"#), (None, ErrorCode::MalformedFrame));
        assert_eq!(code(r#"{"type":"node_info","id":1,"x":{"a":1,"\u0061":2}}"#), (None, ErrorCode::MalformedFrame));
        assert_eq!(code(r#"{"type":"node_info","type":"node_info","id":1}"#), (None, ErrorCode::MalformedFrame));
        assert_eq!(
            code(r#"{"type":"replicate","id":5,"author":"zz","after":0,"limit":1}"#),
            (Some(5), ErrorCode::BadEncoding)
        );
        assert_eq!(code(r#"{"type":"follows","id":5,"id":6}"#), (None, ErrorCode::MalformedFrame));
        let deep = format!(r#"{{"type":"node_info","id":1,"x":{}{}}}"#, "[".repeat(64), "]".repeat(64));
        assert_eq!(code(&deep), (None, ErrorCode::MalformedFrame));
        let ok = format!(r#"{{"type":"node_info","id":1,"x":{}{}}}"#, "[".repeat(63), "]".repeat(63));
        assert!(parse_client_frame(&ok).is_ok());
        let big = format!(r#"{{"type":"node_info","id":1,"pad":"{}"}}"#, "x".repeat(MAX_FRAME_BYTES));
        assert_eq!(code(&big), (None, ErrorCode::FrameTooLarge));
    }

    /// A string of the wrong kind is quoted in serde's message; its text must not pick the code.
    #[test]
    fn a_quoted_tag_is_not_a_code() {
        assert_eq!(
            code(r#"{"type":"subscribe","id":4,"filter":{"authors":"[fork]"}}"#),
            (Some(4), ErrorCode::InvalidRequest)
        );
        assert_eq!(code(r#"{"type":"get","id":4,"seq":"[pruned]"}"#), (Some(4), ErrorCode::InvalidRequest));
    }

    /// The walk says which rule of chapter 1 a frame broke as a value, not as text to match.
    #[test]
    fn the_walk_names_the_rule_it_refused() {
        let deep = format!(r#"{{"x":{}{}}}"#, "[".repeat(64), "]".repeat(64));
        assert_eq!(check_frame_json(&deep), Err(FrameJsonError::TooDeep));
        // A peer's string that reads like the depth message is only a duplicate key.
        assert_eq!(
            check_frame_json(r#"{"nesting depth exceeds 64":1,"nesting depth exceeds 64":2}"#),
            Err(FrameJsonError::DuplicateKey(quote("nesting depth exceeds 64")))
        );
        assert_eq!(check_frame_json("[1]"), Err(FrameJsonError::NotAnObject));
        assert_eq!(check_frame_json(r#"{"x":1.5}"#), Err(FrameJsonError::NotAnInteger));
        assert!(matches!(check_frame_json("{"), Err(FrameJsonError::Syntax(_))));
    }

    /// The tables the registry generates agree: `REQUESTS[k as usize]` is the entry of `k`, in
    /// the order of `ClientFrame::TYPES`, and every answer and push is a registered server type.
    #[test]
    fn the_generated_request_tables_agree() {
        assert_eq!(REQUESTS.len(), RequestKind::COUNT);
        for (i, kind) in RequestKind::ALL.into_iter().enumerate() {
            let spec = kind.spec();
            assert_eq!(
                (spec.kind, spec.request, kind.type_name()),
                (kind, ClientFrame::TYPES[i], ClientFrame::TYPES[i])
            );
            assert_eq!((spec.answer, spec.before_auth), (kind.answer_type(), kind.allowed_before_auth()));
            assert_eq!(RequestKind::from_type(spec.request), Some(kind));
            assert!(ServerFrame::TYPES.contains(&spec.answer), "{}", spec.answer);
            for push in spec.pushes {
                assert!(ServerFrame::TYPES.contains(push), "{push}");
            }
        }
        assert_eq!(RequestKind::from_type("teleport"), None);
        assert_eq!(RequestKind::Invitees.answer_type(), "invitees_ok");
        assert_eq!(RequestKind::Hello.answer_type(), "challenge");
    }

    #[test]
    fn pushes_are_the_registered_ones() {
        let entry = EntryDraft::first(1).sign(&SecretKey::from_seed([5; 32]));
        let event = ServerFrame::Event(Event { sub: RequestId::small(1), entry });
        let closing = ServerFrame::Closing(Closing { code: ErrorCode::ShuttingDown, message: String::new() });
        let stored_end = ServerFrame::StoredEnd(StoredEnd { sub: RequestId::small(1) });
        assert!(event.is_push() && closing.is_push() && stored_end.is_push());
        assert!(!ServerFrame::error(None, ErrorCode::Internal, "x").is_push());
        assert!(!ServerFrame::RemoveUserOk(RemoveUserOk { id: RequestId::small(1) }).is_push());
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let f = parse_client_frame(r#"{"type":"node_info","id":7,"future":{"x":1}}"#).expect("ok");
        assert_eq!(f, ClientFrame::NodeInfo(NodeInfo { id: RequestId::small(7) }));
    }

    #[test]
    fn publish_with_float_content_is_malformed_frame() {
        let e = EntryDraft::first(1).sign(&SecretKey::from_seed([5; 32]));
        let mut v = serde_json::to_value(ClientFrame::Publish(Publish { id: RequestId::small(9), entry: e.clone() }))
            .expect("v");
        v["entry"]["content"] = serde_json::json!({"x": 1.5});
        assert_eq!(code(&v.to_string()), (None, ErrorCode::MalformedFrame));
        let mut v =
            serde_json::to_value(ClientFrame::Publish(Publish { id: RequestId::small(9), entry: e })).expect("v");
        v["entry"]["extra"] = serde_json::json!(1);
        assert_eq!(code(&v.to_string()), (Some(9), ErrorCode::MalformedEntry));
    }

    #[test]
    fn frames_round_trip() {
        let e = EntryDraft::first(1).sign(&SecretKey::from_seed([5; 32]));
        let f = ClientFrame::Publish(Publish { id: RequestId::small(9), entry: e });
        assert_eq!(parse_client_frame(&f.to_text()).expect("round trip"), f);
        let s = ServerFrame::error(Some(RequestId::small(2)), ErrorCode::Fork, "x");
        assert_eq!(ServerFrame::parse(&s.to_text()).expect("round trip"), s);
        assert_eq!(s.answers(), Some(RequestId::small(2)));
    }
}
