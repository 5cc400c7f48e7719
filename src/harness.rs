//! Robustness oracles: one function per decoder surface, shared by the property tests
//! (`tests/properties.rs`, run on stable by `cargo test`) and the cargo-fuzz targets (`fuzz/`),
//! so the code a fuzzer hammers is the code CI exercises.
//!
//! Each oracle takes any bytes, feeds them to the real decoder (bytes that are not UTF-8 are
//! read lossily: a websocket text frame is UTF-8, and the lossy text still exercises the
//! decoder), and asserts the invariants that must hold for every input:
//!
//! - the decoder never panics, and a refusal carries a code the spec assigns to that decoder;
//! - whatever it accepts re-encodes to a text that decodes to an equal value
//!   (decode(encode(x)) == x), and re-encoding that value gives the same text again (the
//!   encoding is stable);
//! - signed objects keep their signing bytes, canonical bytes and id through the round trip.
//!
//! An oracle reports a broken invariant by panicking with a message naming it: for a fuzzer
//! or a property test, the panic is the finding. Nothing here is used by a node.

use std::borrow::Cow;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::account::{Account, AccountName, KeyReplacement};
use crate::address::NodeAddress;
use crate::canonical::CanonicalValue;
use crate::cert::{CertError, Certificate};
use crate::encoding::{decode_hex, encode_hex, EncodingError, EntryId, EphemeralKey, PublicKey, Signature};
use crate::entry::{check_chain, depth, verify_entry, ChainPosition, Entry, EntryDraft, EntryError, FeedHead};
use crate::error::{ErrorCode, HasErrorCode};
use crate::feed::Filter;
use crate::frame::{check_frame_json, parse_client_frame, peek_type, ClientFrame, RequestId, ServerFrame};
use crate::handshake::{ClientConfig, ClientHandshake, Hello, ServerHandshake, Welcome};
use crate::identity::IdentityNote;
use crate::signing::SecretKey;
use crate::version::PROTOCOL_VERSION;

/// Separates frames in the input of the handshake oracles ([`server_handshake`],
/// [`client_handshake`]): one frame per line.
pub const FRAME_SEPARATOR: char = '\n';

/// Every code [`parse_client_frame`] may answer with: chapter 6's framing codes, and the codes
/// the nested decoders of entries, keys, certificates and hellos assign ([FRAME-5] ..
/// [FRAME-17], [ENC-11] .. [ENC-14], [ENTRY-2] .. [ENTRY-8], [HS-21] .. [HS-25]). A code outside
/// this set (`fork`, `not_found`, ...) can only come from text the peer chose.
pub const FRAME_DECODE_CODES: &[ErrorCode] = &[
    ErrorCode::FrameTooLarge,
    ErrorCode::MalformedFrame,
    ErrorCode::InvalidRequest,
    ErrorCode::UnknownType,
    ErrorCode::BadEncoding,
    ErrorCode::WeakKey,
    ErrorCode::MalformedEntry,
    ErrorCode::BadSequence,
    ErrorCode::BadPrev,
    ErrorCode::UnsupportedVersion,
    ErrorCode::BadCertificate,
];

/// Every code [`Entry::from_json`] may answer with ([ENTRY-2] .. [ENTRY-16]).
pub const ENTRY_DECODE_CODES: &[ErrorCode] = &[
    ErrorCode::MalformedEntry,
    ErrorCode::BadEncoding,
    ErrorCode::WeakKey,
    ErrorCode::BadSequence,
    ErrorCode::BadPrev,
];

/// The fixed clock of the handshake oracles: the `now` of `vectors/handshake.json`.
pub const HANDSHAKE_NOW_MS: u64 = 1_767_225_600_000;

/// Reads the input as text, as a websocket text frame would be (lossily if not UTF-8).
fn text_of(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

fn assert_code_in(what: &str, code: ErrorCode, allowed: &[ErrorCode], detail: &dyn std::fmt::Display) {
    assert!(allowed.contains(&code), "{what}: refused with `{code}`, not a code this decoder may give ({detail})");
}

/// The `id` a frame's text carries, when the text is a JSON object whose `id` is an integer in
/// [0, 2^53 − 1] ([FRAME-17]).
fn readable_id(text: &str) -> Option<RequestId> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let id = value.as_object()?.get("id")?.as_u64()?;
    RequestId::new(id)
}

/// Client frames, the node's decoder ([`parse_client_frame`], [FRAME-5] .. [FRAME-17]):
/// - a refusal carries a code of [`FRAME_DECODE_CODES`], and the request id exactly when the
///   frame is readable far enough to have one ([FRAME-17]);
/// - an accepted frame has the `type` its text names, and [`ClientFrame::to_text`] gives a text
///   that decodes to the same frame and re-encodes to itself.
pub fn client_frame(data: &[u8]) {
    let text = text_of(data);
    check_client_frame_text(&text);
}

/// [`client_frame`] on text.
pub fn check_client_frame_text(text: &str) {
    match parse_client_frame(text) {
        Err(e) => {
            assert_code_in("client frame", e.code, FRAME_DECODE_CODES, &e);
            if let Some(id) = e.id {
                assert_eq!(
                    readable_id(text),
                    Some(id),
                    "client frame: the error echoes an id the frame does not carry"
                );
            }
            if !matches!(e.code, ErrorCode::MalformedFrame | ErrorCode::FrameTooLarge) && e.id.is_none() {
                assert_eq!(readable_id(text), None, "client frame: a readable id is not echoed in `{}`", e.code);
            }
        }
        Ok(frame) => {
            assert_eq!(peek_type(text), Some(frame.type_name()), "client frame: decoded type differs from the text's");
            assert_eq!(readable_id(text), Some(frame.id()), "client frame: decoded id differs from the text's");
            let encoded = frame.to_text();
            assert!(!encoded.is_empty(), "client frame: {} does not encode", frame.type_name());
            // The encoder writes absent list members of a filter, so the encoding may outgrow
            // the frame limit that the decoder checks first; the round trip is then moot.
            if encoded.len() > crate::frame::MAX_FRAME_BYTES {
                return;
            }
            let again = parse_client_frame(&encoded).unwrap_or_else(|e| {
                panic!("client frame: the encoding of an accepted frame is refused: {e}\n{encoded}")
            });
            assert_eq!(again, frame, "client frame: decode(encode(x)) != x\n{encoded}");
            assert_eq!(again.to_text(), encoded, "client frame: the encoding is not stable");
        }
    }
}

/// Server frames, the client's decoder ([`ServerFrame::parse`]): never panics; an accepted frame
/// re-encodes to a text that decodes to the same frame and re-encodes to itself.
pub fn server_frame(data: &[u8]) {
    let text = text_of(data);
    check_server_frame_text(&text);
}

/// [`server_frame`] on text.
pub fn check_server_frame_text(text: &str) {
    let Ok(frame) = ServerFrame::parse(text) else { return };
    let encoded = frame.to_text();
    assert!(!encoded.is_empty(), "server frame: {} does not encode", frame.type_name());
    let again = ServerFrame::parse(&encoded)
        .unwrap_or_else(|e| panic!("server frame: the encoding of an accepted frame is refused: {e}\n{encoded}"));
    assert_eq!(again, frame, "server frame: decode(encode(x)) != x\n{encoded}");
    assert_eq!(again.to_text(), encoded, "server frame: the encoding is not stable");
    assert_eq!(again.answers(), frame.answers(), "server frame: the answered id changed");
}

/// Entries ([`Entry::from_json`], [`verify_entry`], [`check_chain`]; [ENTRY-1] .. [ENTRY-32]):
/// - a refusal carries a code of [`ENTRY_DECODE_CODES`];
/// - an accepted entry re-encodes (serde, and its canonical bytes) to texts that decode to the
///   same entry, with the same canonical bytes and id;
/// - [`verify_entry`] refuses only for size or signature, and agrees with [`Entry::id`];
/// - [`check_chain`] places a verified entry as the spec says against heads derived from it.
pub fn entry(data: &[u8]) {
    let text = text_of(data);
    check_entry_text(&text);
}

/// [`entry`] on text.
pub fn check_entry_text(text: &str) {
    let entry = match Entry::from_json(text) {
        Ok(entry) => entry,
        Err(e) => {
            assert_code_in("entry", e.code(), ENTRY_DECODE_CODES, &e);
            return;
        }
    };
    let canonical = entry.canonical_bytes();
    let id = entry.id();
    assert_eq!(id.as_bytes()[..], Sha256::digest(&canonical)[..], "entry: id is not SHA-256 of the canonical bytes");
    let serde_text = serde_json::to_string(&entry).unwrap_or_else(|e| panic!("entry: does not serialise: {e}"));
    let canonical_text = std::str::from_utf8(&canonical).unwrap_or_else(|e| panic!("entry: canonical bytes: {e}"));
    for (how, encoded) in [("serde", serde_text.as_str()), ("canonical", canonical_text)] {
        let again = Entry::from_json(encoded)
            .unwrap_or_else(|e| panic!("entry: the {how} encoding of an accepted entry is refused: {e}\n{encoded}"));
        assert_eq!(again, entry, "entry: decode({how} encode(x)) != x");
        assert_eq!(again.canonical_bytes(), canonical, "entry: canonical bytes changed through the {how} encoding");
        assert_eq!(again.id(), id, "entry: id changed through the {how} encoding");
    }
    assert_eq!(
        CanonicalValue::parse(canonical_text).map(|v| v.to_jcs()).ok().as_deref(),
        Some(canonical.as_slice()),
        "entry: canonical bytes are not a JCS fixed point"
    );
    let verified = match verify_entry(&entry) {
        Ok(v) => v,
        Err(e) => {
            assert!(
                matches!(e, EntryError::TooLarge { .. } | EntryError::BadSignature),
                "entry: verify_entry refused a decoded entry with {e:?}"
            );
            return;
        }
    };
    assert_eq!(verified.id, id, "entry: verify_entry's id differs from Entry::id");
    assert_eq!(verified.canonical, canonical, "entry: verify_entry's canonical bytes differ");
    check_chain_positions(&verified);
}

/// The placements [`check_chain`] must give a verified entry against heads built from it.
fn check_chain_positions(v: &crate::entry::VerifiedEntry) {
    let e = &v.entry;
    assert_eq!(check_chain(None, v), Ok(ChainPosition::Anchor), "chain: no head must anchor");
    let own = FeedHead { seq: e.seq, id: v.id, timestamp: e.timestamp, pruned_through: 0 };
    assert_eq!(check_chain(Some(&own), v), Ok(ChainPosition::DuplicateHead), "chain: own head must be a duplicate");
    let other = EntryId::from_bytes(Sha256::digest(v.id.as_bytes()).into());
    let rival = FeedHead { id: other, ..own };
    assert_eq!(check_chain(Some(&rival), v).map_err(|e| e.code()), Err(ErrorCode::Fork), "chain: rival head must fork");
    if let Some(prev) = e.prev {
        let before = FeedHead { seq: e.seq - 1, id: prev, timestamp: e.timestamp, pruned_through: 0 };
        assert_eq!(check_chain(Some(&before), v), Ok(ChainPosition::Next), "chain: prev head must link");
        let broken = FeedHead { id: other, ..before };
        assert_eq!(check_chain(Some(&broken), v).map_err(|e| e.code()), Err(ErrorCode::BadPrev), "chain: broken link");
        if e.timestamp < crate::encoding::MAX_SAFE_INTEGER {
            let later = FeedHead { timestamp: e.timestamp + 1, ..before };
            assert_eq!(
                check_chain(Some(&later), v).map_err(|e| e.code()),
                Err(ErrorCode::BadTimestamp),
                "chain: a timestamp before the head's"
            );
        }
    }
    if e.seq > 1 {
        let far = FeedHead { seq: e.seq - 2, ..own };
        let verdict = check_chain(Some(&far), v).map_err(|e| e.code());
        assert_eq!(verdict, Err(ErrorCode::BadSequence), "chain: a gap must be bad_sequence");
    }
    let above = FeedHead { seq: e.seq + 1, ..own };
    assert_eq!(check_chain(Some(&above), v), Ok(ChainPosition::BelowHead), "chain: below the head");
    let pruned = FeedHead { pruned_through: e.seq, ..above };
    assert_eq!(check_chain(Some(&pruned), v).map_err(|e| e.code()), Err(ErrorCode::Pruned), "chain: pruned seq");
}

/// Decodes `text` as a `T` and checks that its serde encoding decodes to an equal value and
/// re-encodes to itself; returns the value when the text was accepted.
fn serde_round_trip<T>(what: &str, text: &str) -> Option<T>
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    let value: T = serde_json::from_str(text).ok()?;
    let encoded = serde_json::to_string(&value).unwrap_or_else(|e| panic!("{what}: does not serialise: {e}"));
    let again: T = serde_json::from_str(&encoded)
        .unwrap_or_else(|e| panic!("{what}: the encoding of an accepted value is refused: {e}\n{encoded}"));
    assert_eq!(again, value, "{what}: decode(encode(x)) != x\n{encoded}");
    let twice = serde_json::to_string(&again).unwrap_or_else(|e| panic!("{what}: does not serialise: {e}"));
    assert_eq!(twice, encoded, "{what}: the encoding is not stable");
    Some(value)
}

/// Certificates (chapter 4): an accepted certificate round-trips with the same signing bytes and
/// canonical form, and [`Certificate::verify`] answers only `bad_certificate` or `cert_expired`
/// ([CERT-1] .. [CERT-5]).
pub fn certificate(data: &[u8]) {
    let text = text_of(data);
    let Some(cert) = serde_round_trip::<Certificate>("certificate", &text) else { return };
    let canonical = cert.canonical_value().to_jcs();
    let canonical_text = String::from_utf8_lossy(&canonical);
    let again: Certificate = serde_json::from_str(&canonical_text)
        .unwrap_or_else(|e| panic!("certificate: canonical form refused: {e}\n{canonical_text}"));
    assert_eq!(again, cert, "certificate: decode(canonical(x)) != x");
    assert_eq!(again.signing_bytes(), cert.signing_bytes(), "certificate: signing bytes changed");
    // Each verdict costs a signature check, so three: just before expiry, at expiry (never
    // valid at or after `expires`, [CERT-6]), and for another peer ([CERT-5]).
    let before = cert.verify(&cert.peer, cert.expires.saturating_sub(1));
    let at = cert.verify(&cert.peer, cert.expires);
    let other = cert.verify(&cert.user, 0);
    for verdict in [&before, &at, &other] {
        if let Err(e) = verdict {
            assert_code_in("certificate", e.code(), &[ErrorCode::BadCertificate, ErrorCode::CertExpired], e);
        }
    }
    assert!(at.is_err(), "certificate: accepted at its expiry");
    if cert.user != cert.peer {
        assert!(other.is_err(), "certificate: accepted for a peer it does not name");
    }
    if before.is_ok() {
        assert!(matches!(at, Err(CertError::Expired { .. })), "certificate: valid signature, then {at:?} at expiry");
    }
}

/// The handshake's fixed keys: the seeds of `vectors/handshake.json` (`seed(label)` =
/// SHA-256("kith/1 vectors seed " || label)), so the vectors' messages reach every state.
struct HandshakeKeys {
    node: SecretKey,
    user: SecretKey,
    peer: SecretKey,
    client_ephemeral: [u8; 32],
    server_ephemeral: [u8; 32],
    /// A valid hello and auth for these keys, and the challenge a server answers with.
    hello: Hello,
    auth: crate::handshake::Auth,
    challenge: crate::handshake::Challenge,
    welcome: Welcome,
    /// The client's configuration (its certificate is signed once, here).
    config: ClientConfig,
    /// An entry by `user` mentioning `peer` and referring to one id, for filters to match.
    sample_entry: Entry,
}

fn vector_seed(label: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kith/1 vectors seed ");
    h.update(label.as_bytes());
    h.finalize().into()
}

fn handshake_keys() -> &'static HandshakeKeys {
    static KEYS: OnceLock<HandshakeKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let node = SecretKey::from_seed(vector_seed("node"));
        let user = SecretKey::from_seed(vector_seed("user"));
        let peer = SecretKey::from_seed(vector_seed("peer"));
        let (client_ephemeral, server_ephemeral) = (vector_seed("client-ephemeral"), vector_seed("server-ephemeral"));
        let config = client_config(&node, &user, &peer);
        let (mut client, hello) = ClientHandshake::start(config.clone(), client_ephemeral, RequestId::small(1));
        let mut server = ServerHandshake::new(node.clone(), server_ephemeral);
        let challenge = server.handle_hello(&hello, HANDSHAKE_NOW_MS).unwrap_or_else(|e| panic!("harness hello: {e}"));
        let auth =
            client.handle_challenge(&challenge, RequestId::small(2)).unwrap_or_else(|e| panic!("harness auth: {e}"));
        let account = Account {
            key: user.public(),
            name: AccountName::new("user").unwrap_or_else(|e| panic!("harness account name: {e}")),
            parent: Some(node.public()),
            invite_allowance: Some(3),
            publish_allowance: None,
            published_entries: 0,
            published_bytes: 0,
        };
        let welcome = Welcome { id: RequestId::small(2), account };
        let mut draft = EntryDraft::first(HANDSHAKE_NOW_MS);
        draft.mentions.push(peer.public());
        draft.refs.push(EntryId::from_bytes(vector_seed("ref")));
        let sample_entry = draft.sign(&user);
        HandshakeKeys {
            node,
            user,
            peer,
            client_ephemeral,
            server_ephemeral,
            hello,
            auth,
            challenge,
            welcome,
            config,
            sample_entry,
        }
    })
}

fn client_config(node: &SecretKey, user: &SecretKey, peer: &SecretKey) -> ClientConfig {
    ClientConfig {
        peer: peer.clone(),
        cert: Certificate::issue(user, peer.public(), HANDSHAKE_NOW_MS + 86_400_000),
        expected_node: node.public(),
        version: PROTOCOL_VERSION.into(),
    }
}

/// Hellos ([HS-21] .. [HS-27]): an accepted hello round-trips (as a frame too), and a fresh
/// server at the vectors' clock answers it with a challenge for its id or with a handshake code.
pub fn hello(data: &[u8]) {
    let text = text_of(data);
    let Some(hello) = serde_round_trip::<Hello>("hello", &text) else { return };
    let frame = ClientFrame::Hello(hello.clone());
    assert_eq!(parse_client_frame(&frame.to_text()).ok(), Some(frame), "hello: the frame form does not round-trip");
    let keys = handshake_keys();
    let mut server = ServerHandshake::new(keys.node.clone(), keys.server_ephemeral);
    match server.handle_hello(&hello, HANDSHAKE_NOW_MS) {
        Ok(challenge) => {
            assert_eq!(challenge.id, hello.id, "hello: the challenge does not echo the hello's id");
            assert_eq!(challenge.node, keys.node.public(), "hello: the challenge names another node");
            assert!(server.awaiting_auth(), "hello: accepted but the server does not await auth");
        }
        Err(e) => {
            let allowed = [
                ErrorCode::UnsupportedVersion,
                ErrorCode::BadCertificate,
                ErrorCode::CertExpired,
                ErrorCode::BadHandshake,
            ];
            assert_code_in("hello", e.code(), &allowed, &e);
            assert!(!server.awaiting_auth(), "hello: refused but the server awaits auth");
        }
    }
}

/// Key replacements (chapter 7 §6): an accepted replacement round-trips with the same signing
/// bytes, and [`KeyReplacement::verify`] answers only the codes of [ACCT-24] .. [ACCT-29].
pub fn key_replacement(data: &[u8]) {
    let text = text_of(data);
    let Some(r) = serde_round_trip::<KeyReplacement>("key replacement", &text) else { return };
    for (node, user) in [(r.node, r.old), (r.node, r.new), (r.old, r.old), (r.node, r.node)] {
        for now in [0, r.expires] {
            if let Err(e) = r.verify(&node, &user, now) {
                let allowed = [ErrorCode::InvalidRequest, ErrorCode::Forbidden, ErrorCode::BadSignature];
                assert_code_in("key replacement", e.code(), &allowed, &e);
            }
        }
    }
    assert!(r.verify(&r.node, &r.old, r.expires).is_err(), "key replacement: accepted at its expiry");
}

/// Identity notes (chapter 9 §1): an accepted note round-trips with the same signing bytes, and
/// its checks answer `invalid_request` or `bad_signature` ([IDENT-4] .. [IDENT-10]).
pub fn identity_note(data: &[u8]) {
    let text = text_of(data);
    let Some(note) = serde_round_trip::<IdentityNote>("identity note", &text) else { return };
    if let Err(e) = note.verify() {
        assert_code_in("identity note", e.code(), &[ErrorCode::InvalidRequest, ErrorCode::BadSignature], &e);
    }
}

/// Subscription filters ([FEED-6] .. [FEED-8]): an accepted filter round-trips, and matching a
/// fixed entry does not panic.
pub fn filter(data: &[u8]) {
    let text = text_of(data);
    let Some(filter) = serde_round_trip::<Filter>("filter", &text) else { return };
    let total = filter.authors.len() + filter.threads.len() + filter.mentions.len();
    assert_eq!((filter.len(), filter.is_empty()), (total, total == 0), "filter: len disagrees with the lists");
    let e = &handshake_keys().sample_entry;
    let by_list = filter.authors.contains(&e.author)
        || e.refs.iter().any(|r| filter.threads.contains(r))
        || e.mentions.iter().any(|m| filter.mentions.contains(m));
    assert_eq!(filter.matches(e), by_list, "filter: matches disagrees with FEED-6");
}

/// Node addresses (chapter 5 §2): an accepted address is its own canonical text, and its URL is
/// built without panicking.
pub fn node_address(data: &[u8]) {
    let text = text_of(data);
    let Ok(address) = text.parse::<NodeAddress>() else { return };
    assert_eq!(address.to_string(), text, "node address: accepted a text that is not canonical");
    assert_eq!(address.to_string().parse::<NodeAddress>().ok(), Some(address.clone()), "node address: round trip");
    let url = address.url();
    assert!(url.starts_with("ws://") || url.starts_with("wss://"), "node address: url {url:?}");
}

/// The hex types of chapter 1 ([ENC-10] .. [ENC-15]): each accepts exactly its canonical text
/// (re-encoding gives the input back), refuses with `bad_encoding` (or `weak_key` for a
/// `KEY`), and a 32- or 64-byte input is also tried as raw bytes.
pub fn hex_types(data: &[u8]) {
    let text = text_of(data);
    check_hex_text(&text);
    if let Ok(bytes) = <[u8; 32]>::try_from(data) {
        check_key_bytes(bytes);
        check_hex_text(&encode_hex(&bytes));
    }
    if let Ok(bytes) = <[u8; 64]>::try_from(data) {
        check_hex_text(&encode_hex(&bytes));
    }
}

fn check_key_bytes(bytes: [u8; 32]) {
    match PublicKey::from_bytes_checked(bytes) {
        Ok(key) => {
            assert_eq!(key.as_bytes(), &bytes, "KEY: bytes changed");
            assert_eq!(PublicKey::parse(&key.to_string()), Ok(key), "KEY: text form does not round-trip");
        }
        Err(e) => {
            assert!(matches!(e, EncodingError::NotAPoint | EncodingError::WeakKey), "KEY bytes: refused with {e:?}");
            assert_eq!(PublicKey::parse(&encode_hex(&bytes)), Err(e), "KEY: bytes and text disagree");
        }
    }
}

fn check_hex_text(text: &str) {
    fn check<T: std::fmt::Display + PartialEq + std::fmt::Debug>(
        what: &str,
        parsed: Result<T, EncodingError>,
        raw: &Result<impl AsRef<[u8]>, EncodingError>,
        text: &str,
        may_be_weak: bool,
    ) {
        match parsed {
            Ok(v) => {
                assert_eq!(v.to_string(), text, "{what}: accepted a text that is not canonical");
                let raw = raw.as_ref().unwrap_or_else(|e| panic!("{what}: accepted text that is not hex: {e}"));
                assert_eq!(encode_hex(raw.as_ref()), text, "{what}: bytes and text disagree");
            }
            Err(e) => {
                let allowed: &[ErrorCode] =
                    if may_be_weak { &[ErrorCode::BadEncoding, ErrorCode::WeakKey] } else { &[ErrorCode::BadEncoding] };
                assert_code_in(what, e.code(), allowed, &e);
            }
        }
    }
    let raw32 = decode_hex::<32>(text);
    let raw64 = decode_hex::<64>(text);
    if let Ok(bytes) = &raw32 {
        assert_eq!(encode_hex(bytes), text, "hex: decode_hex accepted a non-canonical text");
        // Every 32 bytes are an id and an X25519 key; a KEY is 32 bytes the curve accepts.
        assert!(EntryId::parse(text).is_ok() && EphemeralKey::parse(text).is_ok(), "ID/XKEY refused valid hex");
    }
    if let Ok(bytes) = &raw64 {
        assert_eq!(encode_hex(bytes), text, "hex: decode_hex accepted a non-canonical text");
        assert!(Signature::parse(text).is_ok(), "SIG refused valid hex");
    }
    check("KEY", PublicKey::parse(text), &raw32, text, true);
    check("ID", EntryId::parse(text), &raw32, text, false);
    check("XKEY", EphemeralKey::parse(text), &raw32, text, false);
    check("SIG", Signature::parse(text), &raw64, text, false);
}

/// Canonical JSON (chapter 2 §1, [SIGN-1] .. [SIGN-8]): for any value [`CanonicalValue::parse`]
/// accepts, canonical(parse(canonical(x))) == canonical(x), the value survives, and the
/// canonical text means the same as serde's; frame-level checking ([`check_frame_json`])
/// accepts exactly the objects the canonical parser accepts within the frame depth.
pub fn canonical_json(data: &[u8]) {
    let text = text_of(data);
    let parsed = CanonicalValue::parse(&text);
    if check_frame_json(&text).is_ok() {
        assert!(
            matches!(parsed, Ok(CanonicalValue::Object(_))),
            "canonical: check_frame_json accepts what the canonical parser refuses: {parsed:?}"
        );
    }
    let Ok(value) = parsed else { return };
    let jcs = value.to_jcs();
    let jcs_text = std::str::from_utf8(&jcs).unwrap_or_else(|e| panic!("canonical: JCS is not UTF-8: {e}"));
    let again = CanonicalValue::parse(jcs_text).unwrap_or_else(|e| panic!("canonical: JCS refused: {e}\n{jcs_text}"));
    assert_eq!(again, value, "canonical: parse(canonical(x)) != x");
    assert_eq!(again.to_jcs(), jcs, "canonical: canonical text is not idempotent");
    let ours: serde_json::Value =
        serde_json::from_str(jcs_text).unwrap_or_else(|e| panic!("canonical: JCS is not JSON: {e}"));
    let theirs = serde_json::to_value(&value).unwrap_or_else(|e| panic!("canonical: value does not serialise: {e}"));
    assert_eq!(ours, theirs, "canonical: JCS means something other than the value");
    if let CanonicalValue::Object(_) = value {
        if depth(&value) <= crate::frame::MAX_FRAME_DEPTH && !text.starts_with('\u{feff}') {
            assert_eq!(check_frame_json(&text), Ok(()), "canonical: check_frame_json refuses a canonical object");
        }
    }
}

/// What the handshake oracles believe a state machine's state is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitFirst,
    AwaitSecond,
    Done,
    Failed,
}

/// The handshake codes a node may answer `hello` and `auth` with once decoded ([HS-20] ..
/// [HS-34]; `unknown_user` is the node's account lookup, not the machine's).
const SERVER_HANDSHAKE_CODES: &[ErrorCode] = &[
    ErrorCode::UnsupportedVersion,
    ErrorCode::BadCertificate,
    ErrorCode::CertExpired,
    ErrorCode::BadSignature,
    ErrorCode::BadHandshake,
];

/// The server's handshake machine ([`ServerHandshake`], [HS-20] .. [HS-36]): the input is a
/// sequence of client frames, one per line ([`FRAME_SEPARATOR`]), fed in order to four
/// machines, one started in each state (awaiting hello, awaiting auth, established, failed).
/// Every frame goes through [`ServerHandshake::decode_frame`] and, when it is a hello or an
/// auth, to `handle_hello` / `handle_auth` — also when the state check refused it, to exercise
/// the machine's own guard. Never a panic; every refusal a handshake code; the machine's
/// observable state follows the spec's transitions.
pub fn server_handshake(data: &[u8]) {
    let text = text_of(data);
    let frames: Vec<&str> = text.split(FRAME_SEPARATOR).collect();
    let keys = handshake_keys();
    for start in [Phase::AwaitFirst, Phase::AwaitSecond, Phase::Done, Phase::Failed] {
        let mut server = ServerHandshake::new(keys.node.clone(), keys.server_ephemeral);
        match start {
            Phase::AwaitFirst => {}
            Phase::AwaitSecond | Phase::Done => {
                if let Err(e) = server.handle_hello(&keys.hello, HANDSHAKE_NOW_MS) {
                    panic!("harness: the valid hello is refused: {e}");
                }
                if start == Phase::Done {
                    if let Err(e) = server.handle_auth(&keys.auth) {
                        panic!("harness: the valid auth is refused: {e}");
                    }
                }
            }
            Phase::Failed => {
                // The version is checked first (H3), so this is the cheapest way to fail.
                let unsupported = Hello { version: "kith/0".into(), ..keys.hello.clone() };
                let err = server.handle_hello(&unsupported, HANDSHAKE_NOW_MS).err();
                assert_eq!(err.map(|e| e.code()), Some(ErrorCode::UnsupportedVersion), "harness: failing hello");
            }
        }
        let mut phase = start;
        for frame in &frames {
            phase = server_step(&mut server, phase, frame, keys);
            assert_eq!(server.awaiting_auth(), phase == Phase::AwaitSecond, "server handshake: state is not {phase:?}");
        }
    }
}

fn server_step(server: &mut ServerHandshake, phase: Phase, text: &str, keys: &HandshakeKeys) -> Phase {
    let gated = server.decode_frame(text);
    if let Err(e) = &gated {
        let mut allowed = FRAME_DECODE_CODES.to_vec();
        allowed.push(ErrorCode::BadHandshake);
        assert_code_in("server handshake: decode_frame", e.code, &allowed, e);
    }
    // A hello or auth out of its state that got as far as its members (a readable id) is
    // `bad_handshake` whatever is wrong with the members (H1, [HS-20]; A1, [HS-30]); any other
    // frame decodes exactly as the connection's decoder decodes it.
    let plain = parse_client_frame(text);
    let plain_id = match &plain {
        Ok(frame) => Some(frame.id()),
        Err(e) => e.id,
    };
    let out_of_state = match peek_type(text) {
        Some("hello") => phase != Phase::AwaitFirst,
        Some("auth") => phase != Phase::AwaitSecond,
        _ => false,
    };
    if out_of_state && plain_id.is_some() {
        let got = gated.as_ref().err().map(|e| (e.id, e.code));
        assert_eq!(got, Some((plain_id, ErrorCode::BadHandshake)), "server handshake: H1/A1 in {phase:?}");
    } else {
        assert_eq!(gated, plain, "server handshake: decode_frame differs from parse_client_frame in {phase:?}");
    }
    let frame = match gated {
        Ok(frame) => frame,
        Err(e) if e.code == ErrorCode::BadHandshake => {
            // The state check refused the frame (a hello or auth out of its state, checked
            // above); the machine's own guard must refuse it too, changing nothing.
            assert!(out_of_state, "server handshake: bad_handshake in {phase:?} for {text:?}");
            match plain {
                Ok(ClientFrame::Hello(h)) => {
                    let err = server.handle_hello(&h, HANDSHAKE_NOW_MS).err().map(|e| e.code());
                    assert_eq!(err, Some(ErrorCode::BadHandshake), "server handshake: hello accepted in {phase:?}");
                }
                Ok(ClientFrame::Auth(a)) => {
                    let err = server.handle_auth(&a).err().map(|e| e.code());
                    assert_eq!(err, Some(ErrorCode::BadHandshake), "server handshake: auth accepted in {phase:?}");
                }
                _ => {}
            }
            return phase;
        }
        Err(_) => return phase,
    };
    match frame {
        ClientFrame::Hello(h) => {
            assert_eq!(phase, Phase::AwaitFirst, "server handshake: decode_frame passed a hello in {phase:?}");
            match server.handle_hello(&h, HANDSHAKE_NOW_MS) {
                Ok(challenge) => {
                    assert_eq!(challenge.id, h.id, "server handshake: challenge id");
                    assert_eq!(challenge.node, keys.node.public(), "server handshake: challenge node");
                    Phase::AwaitSecond
                }
                Err(e) => {
                    assert_code_in("server handshake: hello", e.code(), SERVER_HANDSHAKE_CODES, &e);
                    Phase::Failed
                }
            }
        }
        ClientFrame::Auth(a) => {
            assert_eq!(phase, Phase::AwaitSecond, "server handshake: decode_frame passed an auth in {phase:?}");
            match server.handle_auth(&a) {
                Ok(done) => {
                    assert_eq!(done.peer, keys.peer.public(), "server handshake: authenticated another peer");
                    Phase::Done
                }
                Err(e) => {
                    assert_code_in("server handshake: auth", e.code(), SERVER_HANDSHAKE_CODES, &e);
                    Phase::Failed
                }
            }
        }
        _ => phase,
    }
}

/// The client's handshake machine ([`ClientHandshake`], [HS-16], [HS-17], [HS-40] ..): the
/// input is a sequence of server frames, one per line, fed in order to four machines, one
/// started in each state (awaiting challenge, awaiting welcome, done, failed); challenges and
/// welcomes go to `handle_challenge` / `handle_welcome`. Never a panic; every refusal
/// `bad_signature` or `bad_handshake`; the transcript hash is known exactly while awaiting the
/// welcome.
pub fn client_handshake(data: &[u8]) {
    let text = text_of(data);
    let frames: Vec<&str> = text.split(FRAME_SEPARATOR).collect();
    let keys = handshake_keys();
    for start in [Phase::AwaitFirst, Phase::AwaitSecond, Phase::Done, Phase::Failed] {
        let (mut client, _) = ClientHandshake::start(keys.config.clone(), keys.client_ephemeral, RequestId::small(1));
        match start {
            Phase::AwaitFirst => {}
            Phase::AwaitSecond | Phase::Done => {
                if let Err(e) = client.handle_challenge(&keys.challenge, RequestId::small(2)) {
                    panic!("harness: the valid challenge is refused: {e}");
                }
                if start == Phase::Done {
                    if let Err(e) = client.handle_welcome(&keys.welcome) {
                        panic!("harness: the welcome is refused: {e}");
                    }
                }
            }
            Phase::Failed => {
                let mut forged = keys.challenge.clone();
                forged.node = keys.user.public();
                assert!(
                    client.handle_challenge(&forged, RequestId::small(2)).is_err(),
                    "harness: forged challenge accepted"
                );
            }
        }
        let mut phase = start;
        for frame in &frames {
            phase = client_step(&mut client, phase, frame);
            assert_eq!(
                client.transcript_hash().is_some(),
                phase == Phase::AwaitSecond,
                "client handshake: state is not {phase:?}"
            );
        }
    }
}

fn client_step(client: &mut ClientHandshake, phase: Phase, text: &str) -> Phase {
    let allowed = [ErrorCode::BadSignature, ErrorCode::BadHandshake];
    match ServerFrame::parse(text) {
        Ok(ServerFrame::Challenge(c)) => match client.handle_challenge(&c, RequestId::small(2)) {
            Ok(auth) => {
                assert_eq!(phase, Phase::AwaitFirst, "client handshake: challenge accepted in {phase:?}");
                assert_eq!(auth.id, RequestId::small(2), "client handshake: auth id");
                Phase::AwaitSecond
            }
            Err(e) => {
                assert_code_in("client handshake: challenge", e.code(), &allowed, &e);
                if phase == Phase::AwaitFirst {
                    Phase::Failed
                } else {
                    phase
                }
            }
        },
        Ok(ServerFrame::Welcome(w)) => match client.handle_welcome(&w) {
            Ok(account) => {
                assert_eq!(phase, Phase::AwaitSecond, "client handshake: welcome accepted in {phase:?}");
                assert_eq!(account, w.account, "client handshake: welcome account");
                Phase::Done
            }
            Err(e) => {
                assert_code_in("client handshake: welcome", e.code(), &allowed, &e);
                assert_ne!(phase, Phase::AwaitSecond, "client handshake: welcome refused while awaiting it");
                phase
            }
        },
        _ => phase,
    }
}

/// An oracle: takes any bytes, panics on a broken invariant.
pub type Oracle = fn(&[u8]);

/// Every oracle, by name, in the order of the fuzz targets: what the property tests feed
/// arbitrary and mutated bytes to.
pub const ORACLES: &[(&str, Oracle)] = &[
    ("client_frame", client_frame),
    ("server_frame", server_frame),
    ("entry", entry),
    ("certificate", certificate),
    ("hello", hello),
    ("key_replacement", key_replacement),
    ("identity_note", identity_note),
    ("filter", filter),
    ("node_address", node_address),
    ("hex_types", hex_types),
    ("canonical_json", canonical_json),
    ("server_handshake", server_handshake),
    ("client_handshake", client_handshake),
];
