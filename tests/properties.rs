//! Property tests of the protocol core: round trips of every wire message and signed object,
//! canonical bytes that survive member reordering and whitespace, and decoders that never panic
//! on arbitrary or mutated bytes. The robustness checks call the oracles of
//! `kith_proto::harness`, the same functions the cargo-fuzz targets in `fuzz/` call.
//!
//! Failing seeds are written to `tests/proptest-regressions/properties.txt` and replayed first on
//! every run; that file is committed (see the README beside it).
//!
//! Case counts are per property and small where Ed25519 signing dominates (debug builds are
//! slow at it); the whole file runs in well under a minute in the debug profile.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use kith_proto::account::{
    Account, AccountName, AccountOk, AccountRequest, CreateUser, CreateUserOk, Invitees, InviteesOk, KeyReplacement,
    RemoveUser, RemoveUserOk, ReplaceKey, ReplaceKeyOk,
};
use kith_proto::address::{Host, NodeAddress};
use kith_proto::canonical::{CanonicalObject, CanonicalValue};
use kith_proto::cert::Certificate;
use kith_proto::encoding::{EntryId, EphemeralKey, PublicKey, Signature, MAX_SAFE_INTEGER};
use kith_proto::entry::{verify_entry, Entry, EntryDraft, Kind};
use kith_proto::feed::{
    Event, Filter, Get, GetOk, HeadInfo, Heads, HeadsOk, Publish, PublishOk, Replicate, ReplicateOk, StoredEnd,
    Subscribe, SubscribeOk, Unsubscribe, UnsubscribeOk,
};
use kith_proto::frame::{parse_client_frame, Closing, ErrorFrame};
use kith_proto::handshake::{Auth, Challenge, Hello, Welcome};
use kith_proto::harness;
use kith_proto::identity::{
    AddIdentity, AddIdentityOk, Follow, FollowOk, Follows, FollowsOk, Identities, IdentitiesOk, Identity, IdentityNote,
    Unfollow, UnfollowOk,
};
use kith_proto::node_info::{Limits, NodeInfo, NodeInfoOk};
use kith_proto::version::PROTOCOL_VERSION;
use kith_proto::{ClientFrame, ErrorCode, RequestId, RequestKind, SecretKey, ServerFrame};
use proptest::prelude::*;
use proptest::strategy::{Union, ValueTree};
use proptest::test_runner::{FileFailurePersistence, TestRunner};

/// Where failing seeds go; relative to the package root, where `cargo test` runs.
const REGRESSIONS: &str = "tests/proptest-regressions/properties.txt";

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies for typed values.
// ---------------------------------------------------------------------------------------------

fn u53() -> impl Strategy<Value = u64> {
    prop_oneof![0..=16u64, 0..=MAX_SAFE_INTEGER, Just(MAX_SAFE_INTEGER)]
}

fn request_id() -> impl Strategy<Value = RequestId> {
    u53().prop_map(|v| RequestId::new(v).expect("u53() stays within 2^53 - 1"))
}

fn secret() -> impl Strategy<Value = SecretKey> {
    any::<[u8; 32]>().prop_map(SecretKey::from_seed)
}

/// A valid key without a scalar multiplication: random bytes that decode to a point of large
/// order (about half of all byte strings do).
fn public_key() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_filter_map("not a canonical point of large order", |b| PublicKey::from_bytes_checked(b).ok())
}

fn entry_id() -> impl Strategy<Value = EntryId> {
    any::<[u8; 32]>().prop_map(EntryId::from_bytes)
}

fn signature() -> impl Strategy<Value = Signature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&a);
        bytes[32..].copy_from_slice(&b);
        Signature::from_bytes(bytes)
    })
}

fn ephemeral() -> impl Strategy<Value = EphemeralKey> {
    any::<[u8; 32]>().prop_map(EphemeralKey::from_bytes)
}

/// Short text from all of Unicode (controls and characters above U+FFFF included).
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("(.|\n){{0,{max}}}")).expect("regex")
}

fn json_value() -> impl Strategy<Value = CanonicalValue> {
    let leaf = prop_oneof![
        Just(CanonicalValue::Null),
        any::<bool>().prop_map(CanonicalValue::Bool),
        (-(MAX_SAFE_INTEGER as i64)..=(MAX_SAFE_INTEGER as i64)).prop_map(CanonicalValue::Integer),
        text(8).prop_map(CanonicalValue::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(CanonicalValue::Array),
            proptest::collection::btree_map(text(6), inner, 0..4).prop_map(CanonicalValue::Object),
        ]
    })
}

fn content() -> impl Strategy<Value = CanonicalObject> {
    proptest::collection::btree_map(text(6), json_value(), 0..4)
}

/// A kind and content that pass [ENTRY-9] and, for `profile`, [ENTRY-14] / [ENTRY-15].
fn kind_and_content() -> impl Strategy<Value = (Kind, CanonicalObject)> {
    let plain = ("[a-z0-9._:-]{1,16}", content())
        .prop_filter_map("profile needs its content", |(k, c)| Some((Kind::new(k).ok()?, c)))
        .prop_filter("profile needs its content", |(k, _)| k.as_str() != Kind::PROFILE);
    let profile = (text(16), proptest::option::of(text(32)), content()).prop_map(|(name, about, mut c)| {
        let name = if name.is_empty() { "x".to_owned() } else { name };
        c.insert("name".into(), CanonicalValue::String(name));
        match about {
            Some(a) => c.insert("about".into(), CanonicalValue::String(a)),
            None => c.remove("about"),
        };
        (Kind::new(Kind::PROFILE).expect("profile"), c)
    });
    prop_oneof![4 => plain, 1 => profile]
}

/// A signed entry, valid by every stateless rule of chapter 3, by a key from a random seed.
fn entry() -> impl Strategy<Value = Entry> {
    (
        secret(),
        prop_oneof![1..=3u64, 1..=MAX_SAFE_INTEGER],
        entry_id(),
        u53(),
        kind_and_content(),
        proptest::collection::btree_set(public_key(), 0..3),
        proptest::collection::btree_set(entry_id(), 0..3),
    )
        .prop_map(|(author, seq, prev, timestamp, (kind, content), mentions, refs)| {
            EntryDraft {
                seq,
                prev: (seq > 1).then_some(prev),
                timestamp,
                kind,
                content,
                mentions: mentions.into_iter().collect(),
                refs: refs.into_iter().collect(),
            }
            .sign(&author)
        })
}

fn certificate() -> impl Strategy<Value = Certificate> {
    (secret(), public_key(), u53()).prop_map(|(user, peer, expires)| Certificate::issue(&user, peer, expires))
}

fn key_replacement() -> impl Strategy<Value = KeyReplacement> {
    (public_key(), secret(), secret(), u53())
        .prop_map(|(node, old, new, exp)| KeyReplacement::sign(node, &old, &new, exp))
}

fn node_address() -> impl Strategy<Value = NodeAddress> {
    let host = prop_oneof![
        any::<u32>().prop_map(|a| Host::Ip4(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| Host::Ip6(Ipv6Addr::from(a))),
        "[a-z0-9]{1,8}(\\.[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?){0,2}".prop_map(Host::Dns),
    ];
    (host, any::<bool>(), 1..=u16::MAX, public_key()).prop_map(|(host, secure, port, node)| NodeAddress {
        host,
        secure,
        port,
        node,
    })
}

/// A note that passes [IDENT-4] .. [IDENT-8], signed by a key from a random seed.
fn identity_note() -> impl Strategy<Value = IdentityNote> {
    (
        secret(),
        public_key(),
        proptest::string::string_regex(".{1,16}").expect("regex"),
        proptest::collection::btree_set(node_address().prop_map(|a| a.to_string()), 0..3),
        text(32),
        u53(),
    )
        .prop_map(|(author, subject, name, addresses, note, updated)| {
            IdentityNote::sign(&author, subject, &name, addresses.into_iter().collect(), &note, updated)
        })
}

fn hello() -> impl Strategy<Value = Hello> {
    (request_id(), ephemeral(), public_key(), certificate()).prop_map(|(id, ephemeral, peer, cert)| Hello {
        id,
        version: PROTOCOL_VERSION.into(),
        ephemeral,
        peer,
        cert,
    })
}

fn account_name() -> impl Strategy<Value = AccountName> {
    "[a-z0-9_-]{1,32}".prop_map(|n| AccountName::new(n).expect("name"))
}

fn account() -> impl Strategy<Value = Account> {
    (
        public_key(),
        account_name(),
        proptest::option::of(public_key()),
        proptest::option::of(u53()),
        proptest::option::of(u53()),
        u53(),
        u53(),
    )
        .prop_map(
            |(key, name, parent, invite_allowance, publish_allowance, published_entries, published_bytes)| Account {
                key,
                name,
                parent,
                invite_allowance,
                publish_allowance,
                published_entries,
                published_bytes,
            },
        )
}

fn filter() -> impl Strategy<Value = Filter> {
    (
        proptest::collection::vec(public_key(), 0..3),
        proptest::collection::vec(entry_id(), 0..3),
        proptest::collection::vec(public_key(), 0..3),
    )
        .prop_map(|(authors, threads, mentions)| Filter { authors, threads, mentions })
}

/// `Limits` built from its own schema: every member the type declares gets a protocol
/// integer, so members added later are covered without touching this file (a member that is
/// not an integer makes this fail loudly).
fn limits() -> impl Strategy<Value = Limits> {
    let schema = serde_json::to_value(schemars::schema_for!(Limits)).expect("schema");
    let names: Vec<String> =
        schema["properties"].as_object().map(|p| p.keys().cloned().collect()).expect("Limits has properties");
    proptest::collection::vec(u53(), names.len()).prop_map(move |values| {
        let map: serde_json::Map<String, serde_json::Value> =
            names.iter().cloned().zip(values.into_iter().map(serde_json::Value::from)).collect();
        serde_json::from_value(serde_json::Value::Object(map)).expect("Limits from its schema's members")
    })
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    proptest::sample::select(ErrorCode::ALL)
}

// ---------------------------------------------------------------------------------------------
// The frame registries: one strategy per registered type.
// ---------------------------------------------------------------------------------------------

type Named<T> = (&'static str, BoxedStrategy<T>);

/// The strategy of one request type: real per-type code, the one place of this file a new
/// request type needs. Exhaustive on purpose: a type added to the core's registry does not
/// compile until it has a strategy here.
fn client_frame_strategy(kind: RequestKind) -> BoxedStrategy<ClientFrame> {
    use ClientFrame as C;
    use RequestKind as K;
    match kind {
        K::NodeInfo => request_id().prop_map(|id| C::NodeInfo(NodeInfo { id })).boxed(),
        K::Hello => hello().prop_map(C::Hello).boxed(),
        K::Auth => (request_id(), signature()).prop_map(|(id, sig)| C::Auth(Auth { id, sig })).boxed(),
        K::Account => request_id().prop_map(|id| C::Account(AccountRequest { id })).boxed(),
        K::CreateUser => (request_id(), public_key(), account_name(), u53(), u53())
            .prop_map(|(id, key, name, invite_allowance, publish_allowance)| {
                C::CreateUser(CreateUser { id, key, name, invite_allowance, publish_allowance })
            })
            .boxed(),
        K::ReplaceKey => (request_id(), key_replacement())
            .prop_map(|(id, replacement)| C::ReplaceKey(ReplaceKey { id, replacement }))
            .boxed(),
        K::RemoveUser => {
            (request_id(), public_key()).prop_map(|(id, key)| C::RemoveUser(RemoveUser { id, key })).boxed()
        }
        K::Invitees => (request_id(), proptest::option::of(public_key()))
            .prop_map(|(id, after)| C::Invitees(Invitees { id, after }))
            .boxed(),
        K::Publish => (request_id(), entry()).prop_map(|(id, entry)| C::Publish(Publish { id, entry })).boxed(),
        K::Subscribe => (request_id(), filter(), proptest::option::of(u53()))
            .prop_map(|(id, filter, backfill)| C::Subscribe(Subscribe { id, filter, backfill }))
            .boxed(),
        K::Unsubscribe => {
            (request_id(), request_id()).prop_map(|(id, sub)| C::Unsubscribe(Unsubscribe { id, sub })).boxed()
        }
        K::Heads => (request_id(), proptest::collection::vec(public_key(), 0..4))
            .prop_map(|(id, authors)| C::Heads(Heads { id, authors }))
            .boxed(),
        K::Replicate => (request_id(), public_key(), u53(), u53())
            .prop_map(|(id, author, after, limit)| C::Replicate(Replicate { id, author, after, limit }))
            .boxed(),
        K::Get => (
            request_id(),
            proptest::option::of(entry_id()),
            proptest::option::of(public_key()),
            proptest::option::of(u53()),
        )
            .prop_map(|(id, entry_id, author, seq)| C::Get(Get { id, entry_id, author, seq }))
            .boxed(),
        K::AddIdentity => {
            (request_id(), identity_note()).prop_map(|(id, note)| C::AddIdentity(AddIdentity { id, note })).boxed()
        }
        K::Identities => (request_id(), proptest::option::of((public_key(), public_key())))
            .prop_map(|(id, after)| {
                let after = after.map(|(subject, author)| kith_proto::identity::NotePosition { subject, author });
                C::Identities(Identities { id, after })
            })
            .boxed(),
        K::Follow => (request_id(), public_key()).prop_map(|(id, key)| C::Follow(Follow { id, key })).boxed(),
        K::Unfollow => (request_id(), public_key()).prop_map(|(id, key)| C::Unfollow(Unfollow { id, key })).boxed(),
        K::Follows => (request_id(), proptest::option::of(public_key()))
            .prop_map(|(id, after)| C::Follows(Follows { id, after }))
            .boxed(),
    }
}

/// One strategy per client frame type, in registry order: the list and its names are the
/// registry's ([`RequestKind::ALL`]).
fn client_frame_strategies() -> Vec<Named<ClientFrame>> {
    RequestKind::ALL.into_iter().map(|kind| (kind.type_name(), client_frame_strategy(kind))).collect()
}

/// One strategy per server frame type, in registry order: per-type code whose names
/// `every_frame_type_has_a_strategy` checks against [`ServerFrame::TYPES`].
fn server_frame_strategies() -> Vec<Named<ServerFrame>> {
    use ServerFrame as S;
    vec![
        (
            "node_info_ok",
            (
                request_id(),
                public_key(),
                text(12),
                proptest::collection::vec(text(8), 0..3),
                proptest::collection::vec(text(8), 0..3),
                limits(),
            )
                .prop_map(|(id, node, name, versions, features, limits)| {
                    S::NodeInfoOk(NodeInfoOk { id, node, name, versions, features, limits })
                })
                .boxed(),
        ),
        (
            "challenge",
            (request_id(), ephemeral(), public_key(), signature())
                .prop_map(|(id, ephemeral, node, sig)| S::Challenge(Challenge { id, ephemeral, node, sig }))
                .boxed(),
        ),
        ("welcome", (request_id(), account()).prop_map(|(id, account)| S::Welcome(Welcome { id, account })).boxed()),
        (
            "account_ok",
            (request_id(), account()).prop_map(|(id, account)| S::AccountOk(AccountOk { id, account })).boxed(),
        ),
        (
            "create_user_ok",
            (request_id(), account()).prop_map(|(id, account)| S::CreateUserOk(CreateUserOk { id, account })).boxed(),
        ),
        (
            "replace_key_ok",
            (request_id(), account()).prop_map(|(id, account)| S::ReplaceKeyOk(ReplaceKeyOk { id, account })).boxed(),
        ),
        ("remove_user_ok", request_id().prop_map(|id| S::RemoveUserOk(RemoveUserOk { id })).boxed()),
        (
            "invitees_ok",
            (request_id(), proptest::collection::vec(account(), 0..3), any::<bool>())
                .prop_map(|(id, accounts, more)| S::InviteesOk(InviteesOk { id, accounts, more }))
                .boxed(),
        ),
        (
            "publish_ok",
            (request_id(), entry_id(), any::<bool>())
                .prop_map(|(id, entry_id, duplicate)| S::PublishOk(PublishOk { id, entry_id, duplicate }))
                .boxed(),
        ),
        (
            "subscribe_ok",
            (request_id(), request_id()).prop_map(|(id, sub)| S::SubscribeOk(SubscribeOk { id, sub })).boxed(),
        ),
        ("event", (request_id(), entry()).prop_map(|(sub, entry)| S::Event(Event { sub, entry })).boxed()),
        ("stored_end", request_id().prop_map(|sub| S::StoredEnd(StoredEnd { sub })).boxed()),
        ("unsubscribe_ok", request_id().prop_map(|id| S::UnsubscribeOk(UnsubscribeOk { id })).boxed()),
        (
            "heads_ok",
            (
                request_id(),
                proptest::collection::vec(
                    (public_key(), u53(), entry_id(), u53()).prop_map(|(author, seq, entry_id, pruned_through)| {
                        HeadInfo { author, seq, entry_id, pruned_through }
                    }),
                    0..3,
                ),
            )
                .prop_map(|(id, heads)| S::HeadsOk(HeadsOk { id, heads }))
                .boxed(),
        ),
        (
            "replicate_ok",
            (request_id(), proptest::collection::vec(entry(), 0..3), proptest::option::of(u53()), u53())
                .prop_map(|(id, entries, head, pruned_through)| {
                    S::ReplicateOk(ReplicateOk { id, entries, head, pruned_through })
                })
                .boxed(),
        ),
        ("get_ok", (request_id(), entry()).prop_map(|(id, entry)| S::GetOk(GetOk { id, entry })).boxed()),
        ("add_identity_ok", request_id().prop_map(|id| S::AddIdentityOk(AddIdentityOk { id })).boxed()),
        (
            "identities_ok",
            (
                request_id(),
                proptest::collection::vec(
                    (public_key(), proptest::collection::vec(identity_note(), 0..2))
                        .prop_map(|(key, notes)| Identity { key, notes }),
                    0..2,
                ),
                any::<bool>(),
            )
                .prop_map(|(id, identities, more)| S::IdentitiesOk(IdentitiesOk { id, identities, more }))
                .boxed(),
        ),
        ("follow_ok", request_id().prop_map(|id| S::FollowOk(FollowOk { id })).boxed()),
        ("unfollow_ok", request_id().prop_map(|id| S::UnfollowOk(UnfollowOk { id })).boxed()),
        (
            "follows_ok",
            (request_id(), proptest::collection::vec(public_key(), 0..4), any::<bool>())
                .prop_map(|(id, keys, more)| S::FollowsOk(FollowsOk { id, keys, more }))
                .boxed(),
        ),
        (
            "error",
            (proptest::option::of(request_id()), error_code(), text(24))
                .prop_map(|(id, code, message)| S::Error(ErrorFrame { id, code, message }))
                .boxed(),
        ),
        ("closing", (error_code(), text(24)).prop_map(|(code, message)| S::Closing(Closing { code, message })).boxed()),
    ]
}

fn any_client_frame() -> impl Strategy<Value = ClientFrame> {
    Union::new(client_frame_strategies().into_iter().map(|(_, s)| s))
}

fn any_server_frame() -> impl Strategy<Value = ServerFrame> {
    Union::new(server_frame_strategies().into_iter().map(|(_, s)| s))
}

/// Each strategy makes frames of its own type, and the server list names every registered server
/// type once, in order (the client list is the registry's by construction).
#[test]
fn every_frame_type_has_a_strategy() {
    let mut runner = TestRunner::deterministic();
    for (name, strategy) in client_frame_strategies() {
        let frame = strategy.new_tree(&mut runner).expect("value").current();
        assert_eq!(frame.type_name(), name, "client strategy {name}");
    }
    let server = server_frame_strategies();
    assert_eq!(server.iter().map(|(n, _)| *n).collect::<Vec<_>>(), ServerFrame::TYPES, "server registry");
    for (name, strategy) in &server {
        let frame = strategy.new_tree(&mut runner).expect("value").current();
        assert_eq!(frame.type_name(), *name, "server strategy {name}");
    }
}

// ---------------------------------------------------------------------------------------------
// Text emission with shuffled members, arbitrary whitespace and escapes.
// ---------------------------------------------------------------------------------------------

/// SplitMix64: a tiny deterministic generator driven by one proptest-chosen seed.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// JSON whitespace ([ENC-1]: RFC 8259's four characters), sometimes none.
fn whitespace(rng: &mut Mix, out: &mut String) {
    const WS: [&str; 6] = ["", "", " ", "\n", "\t\r\n ", "  "];
    out.push_str(WS[rng.below(WS.len())]);
}

/// A JSON string with a random choice of escapes for each character: the same string value.
/// Every spelling RFC 8259 allows occurs: the character itself where it may stand bare, its
/// short escape (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`) where it has one, and
/// `\uXXXX` (surrogate pairs beyond the BMP) in upper or lower case hex.
fn emit_string(s: &str, rng: &mut Mix, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        let must = c == '"' || c == '\\' || (c as u32) < 0x20;
        let short = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '/' => Some("\\/"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ => None,
        };
        match (must, rng.below(4), short) {
            (false, 0, _) | (false, 1, None) => out.push(c),
            (_, 0..=1, Some(esc)) => out.push_str(esc),
            (_, pick, _) => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    if pick == 3 {
                        out.push_str(&format!("\\u{u:04x}"));
                    } else {
                        out.push_str(&format!("\\u{u:04X}"));
                    }
                }
            }
        }
    }
    out.push('"');
}

/// Writes `v` with every object's members in a random order, random whitespace between tokens
/// and random string escapes: a text every party must read as the same value ([SIGN-1]:
/// canonical is a function of the parsed value).
fn emit(v: &serde_json::Value, rng: &mut Mix, out: &mut String) {
    whitespace(rng, out);
    match v {
        serde_json::Value::Object(map) => {
            let mut members: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            for i in (1..members.len()).rev() {
                members.swap(i, rng.below(i + 1));
            }
            out.push('{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                whitespace(rng, out);
                emit_string(k, rng, out);
                whitespace(rng, out);
                out.push(':');
                emit(v, rng, out);
            }
            whitespace(rng, out);
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                emit(item, rng, out);
            }
            whitespace(rng, out);
            out.push(']');
        }
        serde_json::Value::String(s) => emit_string(s, rng, out),
        other => out.push_str(&other.to_string()),
    }
    whitespace(rng, out);
}

fn shuffled<T: serde::Serialize>(value: &T, seed: u64) -> String {
    let mut out = String::new();
    emit(&serde_json::to_value(value).expect("value"), &mut Mix(seed), &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Round trips.
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// decode(encode(x)) == x for every client frame type, through the node's decoder
    /// ([FRAME-5]); the encoding is stable, and the harness oracle agrees.
    #[test]
    fn client_frames_round_trip(frame in any_client_frame()) {
        let text = frame.to_text();
        prop_assert_eq!(parse_client_frame(&text), Ok(frame.clone()));
        prop_assert_eq!(parse_client_frame(&text).map(|f| f.to_text()), Ok(text.clone()));
        harness::check_client_frame_text(&text);
    }

    /// decode(encode(x)) == x for every server frame type, through the client's decoder
    /// ([FRAME-6]).
    #[test]
    fn server_frames_round_trip(frame in any_server_frame()) {
        let text = frame.to_text();
        prop_assert_eq!(ServerFrame::parse(&text).ok(), Some(frame.clone()));
        harness::check_server_frame_text(&text);
    }
}

proptest! {
    #![proptest_config(config(32))]

    /// Entries: the text and canonical forms decode to the same entry, whose signature
    /// verifies and whose id is SHA-256 of the canonical bytes ([ENTRY-1], [ENTRY-18]).
    #[test]
    fn entries_round_trip_and_verify(e in entry()) {
        let verified = verify_entry(&e).expect("a signed draft verifies");
        let text = serde_json::to_string(&e).expect("json");
        prop_assert_eq!(Entry::from_json(&text), Ok(e.clone()));
        let canonical = String::from_utf8(verified.canonical.clone()).expect("utf8");
        prop_assert_eq!(Entry::from_json(&canonical), Ok(e.clone()));
        prop_assert_eq!(verified.id, e.id());
        harness::check_entry_text(&text);
    }

    /// Certificates, key replacements and identity notes round-trip and still verify
    /// ([CERT-3], [ACCT-28], [ACCT-29], [IDENT-10]).
    #[test]
    fn signed_objects_round_trip_and_verify(
        cert in certificate(),
        r in key_replacement(),
        note in identity_note(),
    ) {
        let back: Certificate = serde_json::from_str(&serde_json::to_string(&cert).expect("json")).expect("cert");
        prop_assert_eq!(&back, &cert);
        if cert.expires > 0 {
            prop_assert_eq!(back.verify(&cert.peer, cert.expires - 1), Ok(()));
        }
        let back: KeyReplacement = serde_json::from_str(&serde_json::to_string(&r).expect("json")).expect("replacement");
        prop_assert_eq!(&back, &r);
        if r.expires > 0 {
            prop_assert_eq!(back.verify(&r.node, &r.old, r.expires - 1), Ok(()));
        }
        let back: IdentityNote = serde_json::from_str(&serde_json::to_string(&note).expect("json")).expect("note");
        prop_assert_eq!(&back, &note);
        prop_assert_eq!(back.verify(), Ok(()));
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical bytes under reordering and whitespace.
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(32))]

    /// Member order and whitespace carry no meaning (chapter 1 §1; chapter 3 §1 "The order of
    /// members on the wire does not matter"; [SIGN-1]): an entry written with its members
    /// shuffled at every level, arbitrary whitespace and arbitrary escapes decodes to the same
    /// entry, with the same signing bytes, canonical bytes and id, and its signature verifies.
    /// The ordered decoding of [ENTRY-5] fixes which error wins, not how a valid entry reads.
    #[test]
    fn entry_bytes_survive_reordering_and_whitespace(e in entry(), seed in any::<u64>()) {
        let text = shuffled(&e, seed);
        let back = Entry::from_json(&text).expect("a shuffled valid entry decodes");
        prop_assert_eq!(back.signing_bytes(), e.signing_bytes());
        prop_assert_eq!(back.canonical_bytes(), e.canonical_bytes());
        prop_assert_eq!(back.id(), e.id());
        prop_assert_eq!(verify_entry(&back).map(|v| v.id), Ok(e.id()));
        prop_assert_eq!(back, e);
    }

    /// The same for the other signed objects: certificates (chapter 4), key replacements
    /// ([ACCT-22], [ACCT-23] order only the checks), identity notes ([IDENT-2], [IDENT-3]) and
    /// the hello that carries a certificate ([HS-21] .. [HS-25]).
    #[test]
    fn signed_object_bytes_survive_reordering_and_whitespace(
        cert in certificate(),
        r in key_replacement(),
        note in identity_note(),
        h in hello(),
        seed in any::<u64>(),
    ) {
        let back: Certificate = serde_json::from_str(&shuffled(&cert, seed)).expect("cert");
        prop_assert_eq!(back.signing_bytes(), cert.signing_bytes());
        prop_assert_eq!(back.canonical_value().to_jcs(), cert.canonical_value().to_jcs());
        if cert.expires > 0 {
            prop_assert_eq!(back.verify(&cert.peer, cert.expires - 1), Ok(()));
        }
        let back: KeyReplacement = serde_json::from_str(&shuffled(&r, seed ^ 1)).expect("replacement");
        prop_assert_eq!(back.signing_bytes(), r.signing_bytes());
        if r.expires > 0 {
            prop_assert_eq!(back.verify(&r.node, &r.old, r.expires - 1), Ok(()));
        }
        let back: IdentityNote = serde_json::from_str(&shuffled(&note, seed ^ 2)).expect("note");
        prop_assert_eq!(back.signing_bytes(), note.signing_bytes());
        prop_assert_eq!(back.verify(), Ok(()));
        let frame = ClientFrame::Hello(h.clone());
        let back = parse_client_frame(&shuffled(&frame, seed ^ 3)).expect("hello");
        prop_assert_eq!(&back, &frame);
        if let ClientFrame::Hello(back) = back {
            prop_assert_eq!(back.cert.signing_bytes(), h.cert.signing_bytes());
        }
    }
}

proptest! {
    #![proptest_config(config(192))]

    /// Every client frame reads the same whatever its member order, whitespace and escapes
    /// (chapter 1 §1: member order carries no meaning).
    #[test]
    fn client_frames_survive_reordering_and_whitespace(frame in any_client_frame(), seed in any::<u64>()) {
        prop_assert_eq!(parse_client_frame(&shuffled(&frame, seed)), Ok(frame));
    }
}

// ---------------------------------------------------------------------------------------------
// One verdict whatever the member order, for the objects the spec decodes in a fixed order.
// ---------------------------------------------------------------------------------------------

/// Values that break a member: wrong JSON kinds, non-canonical or weak keys, bad hex.
fn bad_values() -> Vec<serde_json::Value> {
    use serde_json::json;
    let weak = format!("01{}", "00".repeat(31));
    let upper = "D75A980182B10AB7D54BFED3C964073A0EE172F3DAA62325AF021A68F707511A";
    let short = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f70751";
    vec![
        json!(null),
        json!(7),
        json!(-1),
        json!(0),
        json!(""),
        json!("zz"),
        json!(weak),
        json!(upper),
        json!(short),
        json!([weak]),
        json!([upper]),
        json!(["zz", 1]),
        json!({}),
        json!([]),
        json!("kith/2"),
        json!("[fork] not a key"),
    ]
}

/// Which object of a frame the spec decodes in a fixed order, whatever its member order:
/// `publish.entry` ([ENTRY-2] .. [ENTRY-5]), the `hello` frame ([HS-21] .. [HS-25]),
/// `replace_key.replacement` ([ACCT-22], [ACCT-23]), `add_identity.note` ([IDENT-2],
/// [IDENT-3]) and `subscribe.filter` ([FEED-7], [FEED-8]).
fn ordered_object(frame: &mut serde_json::Value) -> Option<&mut serde_json::Map<String, serde_json::Value>> {
    let member = match frame.get("type")?.as_str()? {
        "publish" => "entry",
        "replace_key" => "replacement",
        "add_identity" => "note",
        "subscribe" => "filter",
        "hello" => return frame.as_object_mut(),
        _ => return None,
    };
    frame.get_mut(member)?.as_object_mut()
}

fn ordered_frame() -> impl Strategy<Value = ClientFrame> {
    use RequestKind as K;
    Union::new(
        RequestKind::ALL
            .into_iter()
            .filter(|k| matches!(k, K::Publish | K::Hello | K::ReplaceKey | K::AddIdentity | K::Subscribe))
            .map(client_frame_strategy),
    )
}

proptest! {
    #![proptest_config(config(256))]

    /// For the objects above, breaking one to three members (or removing one) gives one verdict
    /// for every member order: the spec fixes which check runs first ([ENTRY-5], [HS-21] ..
    /// [HS-25], [ACCT-22], [ACCT-23], [IDENT-2], [IDENT-3], [FEED-7], [FEED-8]), so reordering
    /// gives one verdict — the same code and the same id — whatever the order. (Which code that
    /// is, is pinned by the invalid vectors, each with one defect.)
    #[test]
    fn ordered_decoders_give_one_verdict_whatever_the_order(
        frame in ordered_frame(),
        breaks in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<bool>()), 1..4),
        seeds in (any::<u64>(), any::<u64>()),
    ) {
        let mut value = serde_json::to_value(&frame).expect("value");
        let bad = bad_values();
        {
            let object = ordered_object(&mut value).expect("ordered object");
            for (member, bad_value, remove) in &breaks {
                let keys: Vec<String> =
                    object.keys().filter(|k| !matches!(k.as_str(), "type" | "id")).cloned().collect();
                if keys.is_empty() {
                    break;
                }
                let key = member.get(&keys).clone();
                if *remove {
                    object.remove(&key);
                } else {
                    object.insert(key, bad_value.get(&bad).clone());
                }
            }
        }
        let verdict = |text: &str| parse_client_frame(text).map_err(|e| (e.id, e.code));
        let sorted = verdict(&value.to_string());
        prop_assert_eq!(&verdict(&shuffled(&value, seeds.0)), &sorted);
        prop_assert_eq!(&verdict(&shuffled(&value, seeds.1)), &sorted);
        if let Err((_, code)) = sorted {
            prop_assert!(harness::FRAME_DECODE_CODES.contains(&code), "{}", code);
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// For every request type, with one to three members broken or removed (top level or one
    /// level down): where the chapter orders no checks, the code may depend on the member order
    /// ([FRAME-41]), but acceptance and the echoed id ([FRAME-17]) may not, and every code is
    /// one the decoder may give.
    #[test]
    fn any_request_keeps_acceptance_and_id_whatever_the_order(
        frame in any_client_frame(),
        breaks in proptest::collection::vec(
            (any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<bool>()),
            1..4,
        ),
        seeds in (any::<u64>(), any::<u64>()),
    ) {
        let mut value = serde_json::to_value(&frame).expect("value");
        let bad = bad_values();
        for (member, inner, bad_value, remove) in &breaks {
            let Some(top) = value.as_object_mut() else { break };
            let keys: Vec<String> = top.keys().filter(|k| !matches!(k.as_str(), "type" | "id")).cloned().collect();
            if keys.is_empty() {
                break;
            }
            let key = member.get(&keys).clone();
            // Break the member itself, or one of its own members when it is an object.
            let target = match top.get_mut(&key) {
                Some(serde_json::Value::Object(nested)) if !nested.is_empty() && *remove => {
                    let nested_keys: Vec<String> = nested.keys().cloned().collect();
                    let nested_key = inner.get(&nested_keys).clone();
                    nested.insert(nested_key, bad_value.get(&bad).clone());
                    continue;
                }
                _ => top,
            };
            if *remove && inner.index(2) == 0 {
                target.remove(&key);
            } else {
                target.insert(key, bad_value.get(&bad).clone());
            }
        }
        let verdict = |text: &str| parse_client_frame(text).map_err(|e| (e.id, e.code));
        let sorted = verdict(&value.to_string());
        for seed in [seeds.0, seeds.1] {
            let other = verdict(&shuffled(&value, seed));
            match (&sorted, &other) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err((a, _)), Err((b, code))) => {
                    prop_assert_eq!(a, b);
                    prop_assert!(harness::FRAME_DECODE_CODES.contains(code), "{}", code);
                }
                _ => prop_assert!(false, "acceptance depends on member order: {:?} vs {:?}", sorted, other),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Robustness: arbitrary and mutated bytes through every oracle.
// ---------------------------------------------------------------------------------------------

/// The oracles cheap enough for hundreds of cases in a debug build (the handshake oracles run
/// four state machines per input and get their own, smaller, properties).
fn cheap_oracles() -> impl Iterator<Item = &'static (&'static str, harness::Oracle)> {
    harness::ORACLES.iter().filter(|(name, _)| !name.ends_with("_handshake"))
}

/// Every string of every vector file: valid and invalid frames, entries, certificates, keys,
/// addresses; the base texts the mutation properties start from.
fn vector_strings() -> &'static [String] {
    static STRINGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    STRINGS.get_or_init(|| {
        let mut out = BTreeSet::new();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors");
        for entry in std::fs::read_dir(dir).expect("vectors/") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                let value: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
                collect_strings(&value, &mut out);
            }
        }
        out.into_iter().collect()
    })
}

fn collect_strings(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::String(s) => {
            out.insert(s.clone());
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                // Objects embedded as JSON values (signing inputs) are texts to decode too.
                if matches!(k.as_str(), "object" | "replacement" | "note" | "certificate") && v.is_object() {
                    out.insert(v.to_string());
                }
                collect_strings(v, out);
            }
        }
        _ => {}
    }
}

/// Every handshake message sequence of `vectors/handshake.json`, one frame per line.
fn handshake_scripts() -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/handshake.json");
    let value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    let mut scripts = Vec::new();
    for group in value["test_groups"].as_array().into_iter().flatten() {
        for test in group["tests"].as_array().into_iter().flatten() {
            let mut frames: Vec<String> = Vec::new();
            for m in test["messages"].as_array().into_iter().flatten() {
                frames.extend(m.as_str().map(str::to_owned));
            }
            for key in ["challenge", "welcome"] {
                frames.extend(test[key].as_str().map(str::to_owned));
            }
            scripts.push(frames.join("\n"));
        }
    }
    scripts
}

#[test]
fn every_vector_string_passes_every_oracle() {
    let strings = vector_strings();
    assert!(strings.len() > 100, "vectors/ holds {} strings", strings.len());
    for s in strings {
        for (name, oracle) in cheap_oracles() {
            let outcome = std::panic::catch_unwind(|| oracle(s.as_bytes()));
            assert!(outcome.is_ok(), "oracle {name} failed on vector string {s:?}");
        }
    }
    let scripts = handshake_scripts();
    assert!(!scripts.is_empty());
    for script in &scripts {
        harness::server_handshake(script.as_bytes());
        harness::client_handshake(script.as_bytes());
    }
}

/// One byte-level mutation of a text.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(prop::sample::Index, u8),
    Truncate(prop::sample::Index),
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index, usize),
    Splice(prop::sample::Index, prop::sample::Index, prop::sample::Index),
    Duplicate(prop::sample::Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let idx = any::<prop::sample::Index>;
    prop_oneof![
        (idx(), 0..8u8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        idx().prop_map(Mutation::Truncate),
        (idx(), prop_oneof![Just(b'"'), Just(b'{'), Just(b'}'), Just(b'['), Just(b','), Just(b'\\'), any::<u8>()])
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (idx(), 1..16usize).prop_map(|(i, n)| Mutation::Remove(i, n)),
        (idx(), idx(), idx()).prop_map(|(at, from, other)| Mutation::Splice(at, from, other)),
        (idx(), 1..32usize).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn mutate(base: &[u8], mutations: &[Mutation], pool: &[String]) -> Vec<u8> {
    let mut bytes = base.to_vec();
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::FlipBit(i, bit) => {
                if !bytes.is_empty() {
                    let at = i.index(len);
                    bytes[at] ^= 1 << bit;
                }
            }
            Mutation::Truncate(i) => bytes.truncate(i.index(len)),
            Mutation::Insert(i, b) => bytes.insert(i.index(len + 1).min(bytes.len()), *b),
            Mutation::Remove(i, n) => {
                let at = i.index(len).min(bytes.len());
                let end = (at + n).min(bytes.len());
                bytes.drain(at..end);
            }
            Mutation::Splice(at, from, other) => {
                let other = other.get(pool).as_bytes();
                let at = at.index(len).min(bytes.len());
                let from = from.index(other.len().max(1)).min(other.len());
                bytes.truncate(at);
                bytes.extend_from_slice(&other[from..]);
            }
            Mutation::Duplicate(i, n) => {
                let at = i.index(len).min(bytes.len());
                let end = (at + n).min(bytes.len());
                let piece = bytes[at..end].to_vec();
                bytes.splice(at..at, piece);
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(config(2048))]

    /// Arbitrary bytes never make a cheap oracle panic.
    #[test]
    fn arbitrary_bytes_never_break_an_oracle(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        for (_, oracle) in cheap_oracles() {
            oracle(&data);
        }
    }

    /// Arbitrary JSON-ish text (from a JSON alphabet) never makes a cheap oracle panic.
    #[test]
    fn json_alphabet_text_never_breaks_an_oracle(
        data in proptest::string::string_regex(r#"[\[\]{}:,"\\ 0-9a-fu.eE+\-ntrl/]{0,96}"#).expect("regex"),
    ) {
        for (_, oracle) in cheap_oracles() {
            oracle(data.as_bytes());
        }
    }

    /// Valid and invalid vector texts, mutated (bit flips, truncations, insertions, removals,
    /// splices with another vector text, duplications), never make a cheap oracle panic.
    #[test]
    fn mutated_vector_texts_never_break_an_oracle(
        base in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let pool = vector_strings();
        let data = mutate(base.get(pool).as_bytes(), &mutations, pool);
        for (_, oracle) in cheap_oracles() {
            oracle(&data);
        }
    }

    /// Any JSON value the canonical parser accepts, written with shuffled members, whitespace
    /// and escapes, passes the canonical-JSON oracle (canonical text is a fixed point).
    #[test]
    fn canonical_json_of_shuffled_values(v in json_value(), seed in any::<u64>()) {
        let text = shuffled(&v, seed);
        harness::canonical_json(text.as_bytes());
        let back = CanonicalValue::parse(&text).expect("shuffled canonical value parses");
        prop_assert_eq!(back.to_jcs(), v.to_jcs());
    }
}

proptest! {
    #![proptest_config(config(192))]

    /// Mutated valid frames of every type (fresh from the strategies, signatures included)
    /// never make a cheap oracle panic.
    #[test]
    fn mutated_valid_frames_never_break_an_oracle(
        frame in any_client_frame(),
        reply in any_server_frame(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let pool = vector_strings();
        for text in [frame.to_text(), reply.to_text()] {
            let data = mutate(text.as_bytes(), &mutations, pool);
            for (_, oracle) in cheap_oracles() {
                oracle(&data);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// The handshake machines, started in every state, fed the vectors' message sequences with
    /// mutations (and with frames of other vectors spliced in), never panic and only move as
    /// the spec says ([HS-20] .. [HS-36], [HS-16], [HS-17]).
    #[test]
    fn handshake_machines_survive_mutated_scripts(
        script in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 0..3),
    ) {
        let scripts = handshake_scripts();
        let data = mutate(script.get(&scripts).as_bytes(), &mutations, vector_strings());
        harness::server_handshake(&data);
        harness::client_handshake(&data);
    }

    /// The handshake machines fed arbitrary bytes.
    #[test]
    fn handshake_machines_survive_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..128)) {
        harness::server_handshake(&data);
        harness::client_handshake(&data);
    }
}

// ---------------------------------------------------------------------------------------------
// Regressions found by the properties above (the seeds are in tests/proptest-regressions/).
// ---------------------------------------------------------------------------------------------

/// Found by `ordered_decoders_give_one_verdict_whatever_the_order`: a string of the wrong JSON
/// kind is quoted in serde's message (`invalid type: string "[fork]"`), and the frame decoder
/// read the first `[code]` anywhere in the message, so the peer chose the error code. The
/// decoder now reads only the tag a nested decoder puts at the start; a wrong kind is
/// `invalid_request` ([FRAME-16], [IDENT-2], [FEED-7]).
#[test]
fn peer_text_cannot_choose_the_error_code() {
    let key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let sig = "00".repeat(64);
    for frame in [
        format!(
            r#"{{"type":"add_identity","id":4,"note":{{"subject":"{key}","author":"{key}","display_name":"a","addresses":[],"note":"","updated":"[fork]","sig":"{sig}"}}}}"#
        ),
        r#"{"type":"subscribe","id":4,"filter":{"authors":"[fork]"}}"#.to_owned(),
        format!(r#"{{"type":"replicate","id":4,"author":"{key}","after":"[not_found]","limit":1}}"#),
        r#"{"type":"get","id":4,"seq":"[pruned]"}"#.to_owned(),
        format!(r#"{{"type":"create_user","id":4,"key":"{key}","name":"a","invite_allowance":"[weak_key]"}}"#),
    ] {
        let e = parse_client_frame(&frame).expect_err("must fail");
        assert_eq!((e.id, e.code), (Some(RequestId::small(4)), ErrorCode::InvalidRequest), "{frame}: {}", e.message);
        harness::check_client_frame_text(&frame);
    }
}

/// Every input kept in `fuzz/regressions/<target>/` (crashes the fuzzers found, and bugs the
/// properties found, stored where `cargo fuzz run <target> <file>` replays them) goes through
/// its oracle on stable too.
#[test]
fn fuzz_regressions_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut replayed = 0;
    for target in std::fs::read_dir(&dir).expect("fuzz/regressions/") {
        let target = target.expect("entry").path();
        if !target.is_dir() {
            continue;
        }
        let name = target.file_name().and_then(|n| n.to_str()).expect("target name").to_owned();
        let (_, oracle) =
            harness::ORACLES.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no oracle named {name}"));
        for input in std::fs::read_dir(&target).expect("inputs") {
            let input = input.expect("entry").path();
            let data = std::fs::read(&input).expect("read");
            let outcome = std::panic::catch_unwind(|| oracle(&data));
            assert!(outcome.is_ok(), "fuzz regression {} fails its oracle", input.display());
            replayed += 1;
        }
    }
    assert!(replayed > 0, "fuzz/regressions/ holds no input");
}
