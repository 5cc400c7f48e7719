//! Criterion benches of the protocol core: what every entry, handshake and frame costs before
//! any IO.
//!
//! The physical floor of a node is one strict Ed25519 verification per entry; these benches
//! put every other per-entry cost of the core next to it (`strict_verify`), so a reader sees at
//! once how much of `verify_entry` is the curve and how much is canonicalisation and hashing.
//! Each bench is kept short (`cargo bench` finishes in a few minutes on two cores).
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use sha2::{Digest, Sha256};

use kith_proto::account::{
    Account, AccountName, AccountOk, AccountRequest, CreateUser, CreateUserOk, Invitees, InviteesOk, KeyReplacement,
    RemoveUser, RemoveUserOk, ReplaceKey, ReplaceKeyOk,
};
use kith_proto::canonical::CanonicalValue;
use kith_proto::cert::Certificate;
use kith_proto::entry::{check_chain, ChainPosition, FeedHead};
use kith_proto::feed::{
    Event, Filter, Get, GetOk, HeadInfo, Heads, HeadsOk, Publish, PublishOk, Replicate, ReplicateOk, StoredEnd,
    Subscribe, SubscribeOk, Unsubscribe, UnsubscribeOk,
};
use kith_proto::frame::{Closing, ErrorFrame};
use kith_proto::handshake::{ClientConfig, ClientHandshake, ServerHandshake, Welcome};
use kith_proto::identity::{
    AddIdentity, AddIdentityOk, Follow, FollowOk, Follows, FollowsOk, Identities, IdentitiesOk, Identity, IdentityNote,
    Unfollow, UnfollowOk,
};
use kith_proto::node_info::{Limits, NodeInfo, NodeInfoOk};
use kith_proto::version::PROTOCOL_VERSION;
use kith_proto::{
    parse_client_frame, verify_entry, ClientFrame, Context, Entry, EntryDraft, ErrorCode, RequestId, SecretKey,
    ServerFrame, VerifiedEntry,
};

/// A fixed "now" well before every certificate's expiry.
const NOW_MS: u64 = 1_750_000_000_000;
/// Certificates in these benches expire a year after [`NOW_MS`].
const EXPIRES_MS: u64 = NOW_MS + 365 * 24 * 3_600_000;

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed([n; 32])
}

/// A typical short post: a 200-character text, one mention, one reference (about 600 canonical
/// bytes signed).
fn typical_entry() -> Entry {
    let author = key(1);
    let first = verify_entry(&EntryDraft::first(NOW_MS).sign(&author)).expect("first entry verifies");
    let mut draft =
        EntryDraft::after(&first, NOW_MS + 1).text(&"kith is a protocol for small nodes. ".repeat(6)[..200]);
    draft.mentions.push(key(2).public());
    draft.refs.push(first.id);
    draft.sign(&author)
}

/// A feed of `n` entries by one author, each linking to the one before.
fn chain(n: u64) -> Vec<Entry> {
    let author = key(3);
    let mut out = Vec::with_capacity(n as usize);
    let mut prev: Option<VerifiedEntry> = None;
    for i in 0..n {
        let draft = match &prev {
            None => EntryDraft::first(NOW_MS),
            Some(p) => EntryDraft::after(p, NOW_MS + i),
        }
        .text(&format!("entry number {i} of a benchmark chain"));
        let entry = draft.sign(&author);
        prev = Some(verify_entry(&entry).expect("chain entry verifies"));
        out.push(entry);
    }
    out
}

fn entries(c: &mut Criterion) {
    let entry = typical_entry();
    let verified = verify_entry(&entry).expect("typical entry verifies");
    let message = entry.signing_bytes();
    let author = key(1);
    let draft = EntryDraft {
        seq: entry.seq,
        prev: entry.prev,
        timestamp: entry.timestamp,
        kind: entry.kind.clone(),
        content: entry.content.clone(),
        mentions: entry.mentions.clone(),
        refs: entry.refs.clone(),
    };
    let publish_text = ClientFrame::Publish(Publish { id: RequestId::small(7), entry: entry.clone() }).to_text();

    let mut g = c.benchmark_group("entry");
    g.throughput(Throughput::Elements(1));
    g.bench_function("signing_bytes", |b| b.iter(|| black_box(&entry).signing_bytes()));
    g.bench_function("canonical_bytes", |b| b.iter(|| black_box(&entry).canonical_bytes()));
    g.bench_function("id (canonical_bytes + sha256)", |b| {
        b.iter(|| Sha256::digest(black_box(&entry).canonical_bytes()))
    });
    g.bench_function("sign (EntryDraft::sign)", |b| {
        b.iter_batched(|| draft.clone(), |d| d.sign(&author), BatchSize::SmallInput)
    });
    g.bench_function("strict_verify (PublicKey::verify_strict)", |b| {
        b.iter(|| black_box(&entry.author).verify_strict(black_box(&message), &entry.sig))
    });
    // The wrapper decompresses the key on every call; this is what a cached point would cost.
    let dalek_key = ed25519_dalek::VerifyingKey::from_bytes(entry.author.as_bytes()).expect("valid key");
    let dalek_sig = ed25519_dalek::Signature::from_bytes(entry.sig.as_bytes());
    g.bench_function("strict_verify, key already decompressed (dalek)", |b| {
        b.iter(|| black_box(&dalek_key).verify_strict(black_box(&message), &dalek_sig))
    });
    let author_hex = entry.author.to_string();
    g.bench_function("public_key_parse (hex + decompress + small-order check)", |b| {
        b.iter(|| kith_proto::PublicKey::parse(black_box(&author_hex)))
    });
    g.bench_function("verify_entry (size + strict verify + id)", |b| b.iter(|| verify_entry(black_box(&entry))));
    g.bench_function("ingest_core (parse publish frame + verify_entry)", |b| {
        b.iter(|| match parse_client_frame(black_box(&publish_text)) {
            Ok(ClientFrame::Publish(p)) => verify_entry(&p.entry).map(|v| v.id),
            _ => unreachable!("the sample is a publish frame"),
        })
    });
    g.bench_function("json_encode (serde_json::to_string)", |b| {
        b.iter(|| serde_json::to_string(black_box(&verified.entry)))
    });
    g.finish();
}

fn chain_validation(c: &mut Criterion) {
    const N: u64 = 1_000;
    let entries = chain(N);
    let mut g = c.benchmark_group("chain");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(N));
    g.bench_function("validate 1000 entries (verify_entry + check_chain)", |b| {
        b.iter(|| {
            let mut head: Option<FeedHead> = None;
            for e in black_box(&entries) {
                let v = verify_entry(e).expect("chain entry verifies");
                let pos = check_chain(head.as_ref(), &v).expect("chain links");
                debug_assert!(matches!(pos, ChainPosition::Anchor | ChainPosition::Next));
                head = Some(FeedHead { seq: v.entry.seq, id: v.id, timestamp: v.entry.timestamp, pruned_through: 0 });
            }
            head
        })
    });
    g.finish();
}

fn client_config(node: &SecretKey) -> ClientConfig {
    let user = key(11);
    let peer = key(12);
    let cert = Certificate::issue(&user, peer.public(), EXPIRES_MS);
    ClientConfig { peer, cert, expected_node: node.public(), version: PROTOCOL_VERSION.into() }
}

fn handshake(c: &mut Criterion) {
    let node = key(10);
    let config = client_config(&node);
    // One complete exchange to take the messages each side receives from.
    let (mut client, hello) = ClientHandshake::start(config.clone(), [21; 32], RequestId::small(1));
    let mut server = ServerHandshake::new(node.clone(), [22; 32]);
    let challenge = server.handle_hello(&hello, NOW_MS).expect("hello accepted");
    let auth = client.handle_challenge(&challenge, RequestId::small(2)).expect("challenge accepted");
    let _ = server.handle_auth(&auth).expect("auth accepted");

    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1));
    // Server: verify the cert, X25519 (key generation and agreement), sign the transcript,
    // verify the client's transcript signature.
    g.bench_function("server side (new + handle_hello + handle_auth)", |b| {
        b.iter(|| {
            let mut s = ServerHandshake::new(node.clone(), [22; 32]);
            let ch = s.handle_hello(black_box(&hello), NOW_MS).expect("hello accepted");
            black_box(ch);
            s.handle_auth(black_box(&auth)).expect("auth accepted")
        })
    });
    // Client: X25519 (key generation and agreement), verify the node's signature, sign.
    g.bench_function("client side (start + handle_challenge)", |b| {
        b.iter(|| {
            let (mut cl, h) = ClientHandshake::start(config.clone(), [21; 32], RequestId::small(1));
            black_box(h);
            cl.handle_challenge(black_box(&challenge), RequestId::small(2)).expect("challenge accepted")
        })
    });

    // The server side's curve work alone, through the dalek crates directly: what the
    // protocol around it is measured against.
    let cert_bytes = config.cert.signing_bytes();
    let hs_message = kith_proto::signing::prefixed(Context::HandshakeServer, &[7; 32]);
    let client_sig = config.peer.sign_raw(&hs_message);
    let client_e = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([21; 32]));
    g.bench_function("server curve work only (2 verify + sign + 2 X25519)", |b| {
        b.iter(|| {
            let cert_ok = config.cert.user.verify_strict(black_box(&cert_bytes), &config.cert.sig).is_ok();
            let secret = x25519_dalek::StaticSecret::from(black_box([22; 32]));
            let public = x25519_dalek::PublicKey::from(&secret);
            let shared = secret.diffie_hellman(&client_e);
            let sig = node.sign_raw(black_box(&hs_message));
            let auth_ok = config.peer.public().verify_strict(&hs_message, &client_sig).is_ok();
            (cert_ok, public, shared.to_bytes(), sig, auth_ok)
        })
    });
    g.bench_function("x25519 keygen + agreement", |b| {
        b.iter(|| {
            let secret = x25519_dalek::StaticSecret::from(black_box([22; 32]));
            let public = x25519_dalek::PublicKey::from(&secret);
            (public, secret.diffie_hellman(&client_e).to_bytes())
        })
    });
    g.bench_function("ed25519 sign (32-byte transcript)", |b| b.iter(|| node.sign_raw(black_box(&hs_message))));
    g.finish();
}

fn sample_account(n: u8) -> Account {
    Account {
        key: key(n).public(),
        name: AccountName::new(format!("user-{n}")).expect("valid name"),
        parent: Some(key(10).public()),
        invite_allowance: Some(5),
        publish_allowance: Some(10_000),
        published_entries: 42,
        published_bytes: 21_000,
    }
}

/// One realistic sample of every client frame type.
fn client_samples() -> Vec<ClientFrame> {
    let node = key(10);
    let config = client_config(&node);
    let (_, hello) = ClientHandshake::start(config.clone(), [21; 32], RequestId::small(1));
    let mut server = ServerHandshake::new(node.clone(), [22; 32]);
    let challenge = server.handle_hello(&hello, NOW_MS).expect("hello accepted");
    let (mut client, _) = ClientHandshake::start(config, [21; 32], RequestId::small(1));
    let auth = client.handle_challenge(&challenge, RequestId::small(2)).expect("challenge accepted");
    let entry = typical_entry();
    let id = verify_entry(&entry).expect("verifies").id;
    let note = IdentityNote::sign(
        &key(11),
        key(30).public(),
        "Alice",
        vec![format!("/ip4/192.0.2.7/ws/7777/{}", key(31).public())],
        "met at the allotment",
        NOW_MS,
    );
    let authors: Vec<_> = (40..50).map(|n| key(n).public()).collect();
    let frames = vec![
        ClientFrame::NodeInfo(NodeInfo { id: RequestId::small(1) }),
        ClientFrame::Hello(hello),
        ClientFrame::Auth(auth),
        ClientFrame::Account(AccountRequest { id: RequestId::small(3) }),
        ClientFrame::CreateUser(CreateUser {
            id: RequestId::small(4),
            key: key(13).public(),
            name: AccountName::new("bob").expect("valid name"),
            invite_allowance: 3,
            publish_allowance: 1000,
        }),
        ClientFrame::ReplaceKey(ReplaceKey {
            id: RequestId::small(5),
            replacement: KeyReplacement::sign(node.public(), &key(11), &key(14), EXPIRES_MS),
        }),
        ClientFrame::RemoveUser(RemoveUser { id: RequestId::small(6), key: key(13).public() }),
        ClientFrame::Invitees(Invitees { id: RequestId::small(18), after: Some(key(13).public()) }),
        ClientFrame::Publish(Publish { id: RequestId::small(7), entry }),
        ClientFrame::Subscribe(Subscribe {
            id: RequestId::small(8),
            filter: Filter { authors: authors.clone(), threads: vec![id], mentions: vec![key(11).public()] },
            backfill: Some(100),
        }),
        ClientFrame::Unsubscribe(Unsubscribe { id: RequestId::small(9), sub: RequestId::small(8) }),
        ClientFrame::Heads(Heads { id: RequestId::small(10), authors }),
        ClientFrame::Replicate(Replicate { id: RequestId::small(11), author: key(1).public(), after: 10, limit: 100 }),
        ClientFrame::Get(Get { id: RequestId::small(12), entry_id: Some(id), author: None, seq: None }),
        ClientFrame::AddIdentity(AddIdentity { id: RequestId::small(13), note }),
        ClientFrame::Identities(Identities { id: RequestId::small(14), after: None }),
        ClientFrame::Follow(Follow { id: RequestId::small(15), key: key(30).public() }),
        ClientFrame::Unfollow(Unfollow { id: RequestId::small(16), key: key(30).public() }),
        ClientFrame::Follows(Follows { id: RequestId::small(17), after: None }),
    ];
    assert_eq!(frames.len(), ClientFrame::TYPES.len(), "one sample per client frame type");
    frames
}

/// One realistic sample of every server frame type.
fn server_samples() -> Vec<ServerFrame> {
    let node = key(10);
    let config = client_config(&node);
    let (_, hello) = ClientHandshake::start(config, [21; 32], RequestId::small(1));
    let mut server = ServerHandshake::new(node.clone(), [22; 32]);
    let challenge = server.handle_hello(&hello, NOW_MS).expect("hello accepted");
    let entry = typical_entry();
    let id = verify_entry(&entry).expect("verifies").id;
    let replicated = chain(10);
    let note = IdentityNote::sign(&key(11), key(30).public(), "Alice", vec![], "met at the allotment", NOW_MS);
    let frames = vec![
        ServerFrame::NodeInfoOk(NodeInfoOk {
            id: RequestId::small(1),
            node: node.public(),
            name: "allotment".into(),
            versions: vec![PROTOCOL_VERSION.into()],
            features: vec![],
            limits: Limits {
                max_frame_bytes: 65536,
                max_entry_bytes: 16384,
                handshake_timeout_ms: 10_000,
                max_backfill: 1000,
                max_replicate: 1000,
                storage_bytes: 1 << 30,
                max_subscriptions: 64,
                max_nesting_depth: 64,
                max_connections_per_address: 64,
                max_pending_handshakes: 256,
                max_requests_per_second: 1000,
                max_queued_bytes: 32 << 20,
                max_notes: 1000,
                max_note_bytes: 4 << 20,
                max_follows: 10_000,
                max_filter_items: 4096,
                max_total_filter_items: 1_048_576,
            },
        }),
        ServerFrame::Challenge(challenge),
        ServerFrame::Welcome(Welcome { id: RequestId::small(2), account: sample_account(11) }),
        ServerFrame::AccountOk(AccountOk { id: RequestId::small(3), account: sample_account(11) }),
        ServerFrame::CreateUserOk(CreateUserOk { id: RequestId::small(4), account: sample_account(13) }),
        ServerFrame::ReplaceKeyOk(ReplaceKeyOk { id: RequestId::small(5), account: sample_account(14) }),
        ServerFrame::RemoveUserOk(RemoveUserOk { id: RequestId::small(6) }),
        ServerFrame::InviteesOk(InviteesOk {
            id: RequestId::small(18),
            accounts: (20..30).map(sample_account).collect(),
            more: true,
        }),
        ServerFrame::PublishOk(PublishOk { id: RequestId::small(7), entry_id: id, duplicate: false }),
        ServerFrame::SubscribeOk(SubscribeOk { id: RequestId::small(8), sub: RequestId::small(8) }),
        ServerFrame::Event(Event { sub: RequestId::small(8), entry }),
        ServerFrame::StoredEnd(StoredEnd { sub: RequestId::small(8) }),
        ServerFrame::UnsubscribeOk(UnsubscribeOk { id: RequestId::small(9) }),
        ServerFrame::HeadsOk(HeadsOk {
            id: RequestId::small(10),
            heads: (40..50)
                .map(|n| HeadInfo { author: key(n).public(), seq: 100, entry_id: id, pruned_through: 10 })
                .collect(),
        }),
        ServerFrame::ReplicateOk(ReplicateOk {
            id: RequestId::small(11),
            entries: replicated,
            head: Some(10),
            pruned_through: 0,
        }),
        ServerFrame::GetOk(GetOk { id: RequestId::small(12), entry: typical_entry() }),
        ServerFrame::AddIdentityOk(AddIdentityOk { id: RequestId::small(13) }),
        ServerFrame::IdentitiesOk(IdentitiesOk {
            id: RequestId::small(14),
            identities: vec![Identity { key: key(30).public(), notes: vec![note] }],
            more: false,
        }),
        ServerFrame::FollowOk(FollowOk { id: RequestId::small(15) }),
        ServerFrame::UnfollowOk(UnfollowOk { id: RequestId::small(16) }),
        ServerFrame::FollowsOk(FollowsOk {
            id: RequestId::small(17),
            keys: (30..40).map(|n| key(n).public()).collect(),
            more: false,
        }),
        ServerFrame::Error(ErrorFrame {
            id: Some(RequestId::small(18)),
            code: ErrorCode::Fork,
            message: "a fork".into(),
        }),
        ServerFrame::Closing(Closing { code: ErrorCode::KeyReplaced, message: "key replaced".into() }),
    ];
    assert_eq!(frames.len(), ServerFrame::TYPES.len(), "one sample per server frame type");
    frames
}

fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_client_frame");
    g.measurement_time(Duration::from_secs(1));
    g.warm_up_time(Duration::from_millis(300));
    for frame in client_samples() {
        let text = frame.to_text();
        assert_eq!(parse_client_frame(&text).as_ref(), Ok(&frame), "sample round-trips");
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(frame.type_name(), |b| b.iter(|| parse_client_frame(black_box(&text))));
    }
    g.finish();

    let mut g = c.benchmark_group("ServerFrame::parse");
    g.measurement_time(Duration::from_secs(1));
    g.warm_up_time(Duration::from_millis(300));
    for frame in server_samples() {
        let text = frame.to_text();
        assert_eq!(ServerFrame::parse(&text).ok().as_ref(), Some(&frame), "sample round-trips");
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(frame.type_name(), |b| b.iter(|| ServerFrame::parse(black_box(&text))));
    }
    g.finish();

    // The canonicaliser on its own, over a typical entry's unsigned value.
    let value: CanonicalValue = typical_entry().unsigned_value();
    let mut g = c.benchmark_group("canonical");
    g.bench_function("to_jcs (typical entry)", |b| b.iter(|| black_box(&value).to_jcs()));
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = entries, chain_validation, handshake, frames
}
criterion_main!(benches);
