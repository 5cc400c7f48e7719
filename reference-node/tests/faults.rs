//! Each fault breaks its rule, visibly over the wire (built with `--features faults`).
#![cfg(feature = "faults")]
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use common::*;
use kith_proto::account::KeyReplacement;
use kith_proto::SecretKey;
use serde_json::{json, Value};

async fn faulty(fault: &'static str) -> TestNode {
    start(Opts { fault: Some(fault), ..Opts::default() }).await
}

async fn faulty_budget(fault: &'static str, storage_bytes: u64) -> TestNode {
    start(Opts { fault: Some(fault), storage_bytes, ..Opts::default() }).await
}

async fn admin(n: &TestNode) -> Client {
    Client::login(&n.url, n.node.node_key, &n.admin).await
}

async fn user(n: &TestNode, c: &mut Client, name: &str, invites: u64, publishes: u64) -> SecretKey {
    let k = SecretKey::random();
    let r = c
        .req(json!({"type":"create_user","key":k.public().to_string(),"name":name,"invite_allowance":invites,
            "publish_allowance":publishes}))
        .await;
    assert_eq!(r["type"], "create_user_ok", "{r}");
    let _ = n;
    k
}

#[test]
fn table_names_requirements_that_exist_in_the_spec() {
    let spec: String = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../spec"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "md"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(kith_node::faults::ALL.len() >= 24);
    for f in kith_node::faults::ALL {
        assert!(spec.contains(&format!("[{}]", f.requirement)), "{} cites unknown {}", f.name, f.requirement);
    }
}

#[tokio::test]
async fn handshake_faults() {
    let n = faulty("accept-expired-cert").await;
    let mut c = Client::connect(&n.url).await;
    assert_eq!(c.handshake(n.node.node_key, &n.admin, now_ms() - 1000).await["type"], "welcome");

    let n = faulty("accept-unknown-user").await;
    let mut c = Client::connect(&n.url).await;
    assert_eq!(c.handshake(n.node.node_key, &SecretKey::random(), now_ms() + 60_000).await["type"], "welcome");

    let n = faulty("accept-bad-transcript-sig").await;
    let mut c = Client::connect(&n.url).await;
    let peer = SecretKey::random();
    let cert = kith_proto::cert::Certificate::issue(&n.admin, peer.public(), now_ms() + 60_000);
    let eph = kith_proto::encoding::encode_hex(&x25519_public());
    c.send(
        json!({"type":"hello","id":1,"version":"kith/1","ephemeral":eph,"peer":peer.public().to_string(),"cert":cert}),
    )
    .await;
    assert_eq!(c.recv().await["type"], "challenge");
    c.send(json!({"type":"auth","id":2,"sig":"22".repeat(64)})).await;
    assert_eq!(c.recv().await["type"], "welcome");
}

/// A valid X25519 public key (the base point times a fixed scalar, taken from a real hello).
fn x25519_public() -> [u8; 32] {
    use kith_proto::handshake::{ClientConfig, ClientHandshake};
    let peer = SecretKey::random();
    let cert = kith_proto::cert::Certificate::issue(&peer, peer.public(), 1);
    let config = ClientConfig { peer: peer.clone(), cert, expected_node: peer.public(), version: "kith/1".into() };
    let (_, hello) = ClientHandshake::start(config, [7; 32], kith_proto::RequestId::small(1));
    *hello.ephemeral.as_bytes()
}

#[tokio::test]
async fn publish_faults() {
    let n = faulty("skip-entry-signature").await;
    let mut c = admin(&n).await;
    let mut f = Feed::new();
    let mut forged = serde_json::to_value(f.next("signed")).unwrap();
    forged["content"]["text"] = json!("tampered");
    assert_eq!(c.publish(&serde_json::from_value(forged).unwrap()).await["type"], "publish_ok");

    let n = faulty("skip-chain-link").await;
    let mut c = admin(&n).await;
    let mut f = Feed::new();
    let e1 = f.next("1");
    c.publish_ok(&e1).await;
    let mut d = f.draft();
    d.prev = Some(kith_proto::EntryId::from_bytes([1; 32]));
    let bad = f.push(d);
    assert_eq!(c.publish(&bad).await["type"], "publish_ok");

    let n = faulty("accept-fork").await;
    let mut c = admin(&n).await;
    let mut f = Feed::new();
    let e1 = f.next("1");
    c.publish_ok(&e1).await;
    c.publish_ok(&f.next("2")).await;
    let other1 = kith_proto::entry::EntryDraft::first(1).text("other").sign(&f.key);
    assert_eq!(c.publish(&other1).await["type"], "publish_ok");

    let n = faulty("duplicate-not-flagged").await;
    let mut c = admin(&n).await;
    let e = Feed::new().next("x");
    c.publish_ok(&e).await;
    assert_eq!(c.publish_ok(&e).await["duplicate"], false);
}

#[tokio::test]
async fn equal_timestamp_and_silent_hello_faults() {
    let n = faulty("reject-equal-timestamp").await;
    let mut c = admin(&n).await;
    let mut f = Feed::new();
    let e1 = f.next("1");
    c.publish_ok(&e1).await;
    let mut d = f.draft();
    d.timestamp = e1.timestamp;
    let same = f.push(d);
    let r = c.publish(&same).await;
    assert_eq!((r["type"].as_str(), r["code"].as_str()), (Some("error"), Some("bad_timestamp")), "{r}");
    // A later timestamp is still accepted.
    let mut f = Feed::new();
    c.publish_ok(&f.next("1")).await;
    c.publish_ok(&f.next("2")).await;

    let n = faulty("ignore-hello").await;
    let mut c = Client::connect(&n.url).await;
    let peer = SecretKey::random();
    let cert = kith_proto::cert::Certificate::issue(&n.admin, peer.public(), now_ms() + 60_000);
    let config = kith_proto::handshake::ClientConfig {
        peer,
        cert,
        expected_node: n.node.node_key,
        version: kith_proto::version::PROTOCOL_VERSION.into(),
    };
    let (_, hello) =
        kith_proto::handshake::ClientHandshake::start(config, rand_seed(), kith_proto::RequestId::small(1));
    c.send_text(kith_proto::ClientFrame::Hello(hello).to_text()).await;
    let silent = c.next_within(std::time::Duration::from_millis(1500)).await;
    assert!(matches!(silent, Err(kith_client::ClientError::Timeout(_))), "the hello got an answer: {silent:?}");
    // The connection is still open: node_info is answered.
    assert_eq!(c.req(json!({"type":"node_info"})).await["type"], "node_info_ok");
}

#[tokio::test]
async fn prune_faults() {
    let pad = "p".repeat(7000);
    // Newest first: the entry just stored is the one that goes.
    let n = faulty_budget("prune-newest-first", 16_384).await;
    let mut c = admin(&n).await;
    let mut f = Feed::new();
    let e1 = f.next(&format!("1{pad}"));
    let e2 = f.next(&format!("2{pad}"));
    let e3 = f.next(&format!("3{pad}"));
    for e in [&e1, &e2, &e3] {
        c.publish_ok(e).await;
    }
    assert_eq!(c.req(json!({"type":"get","entry_id":entry_id(&e1)})).await["type"], "get_ok");

    // No budget: everything stays.
    let n = faulty_budget("ignore-budget", 16_384).await;
    let mut c = admin(&n).await;
    let mut f = Feed::new();
    let es: Vec<_> = (0..4).map(|i| f.next(&format!("{i}{pad}"))).collect();
    for e in &es {
        c.publish_ok(e).await;
    }
    assert_eq!(c.req(json!({"type":"get","entry_id":entry_id(&es[0])})).await["type"], "get_ok");

    // A feed whose every entry is pruned loses its head.
    let n = faulty_budget("lose-feed-head", 16_384).await;
    let mut c = admin(&n).await;
    let mut g = Feed::new();
    c.publish_ok(&g.next("only")).await;
    let mut f = Feed::new();
    for i in 0..3 {
        c.publish_ok(&f.next(&format!("{i}{pad}"))).await;
    }
    let r = c.req(json!({"type":"heads","authors":[g.pub_key().to_string()]})).await;
    assert_eq!(r["heads"], json!([]));
}

#[tokio::test]
async fn account_faults() {
    let n = faulty("ignore-invite-allowance").await;
    let mut a = admin(&n).await;
    let alice = user(&n, &mut a, "alice", 0, 5).await;
    let mut c = Client::login(&n.url, n.node.node_key, &alice).await;
    user(&n, &mut c, "bob", 3, 0).await;

    let n = faulty("ignore-publish-allowance").await;
    let mut a = admin(&n).await;
    let alice = user(&n, &mut a, "alice", 0, 0).await;
    let mut c = Client::login(&n.url, n.node.node_key, &alice).await;
    c.publish_ok(&Feed::with_key(alice.clone()).next("free")).await;

    let n = faulty("non-ancestor-removes").await;
    let mut a = admin(&n).await;
    let alice = user(&n, &mut a, "alice", 0, 0).await;
    let bob = user(&n, &mut a, "bob", 0, 0).await;
    let mut c = Client::login(&n.url, n.node.node_key, &alice).await;
    assert_eq!(c.req(json!({"type":"remove_user","key":bob.public().to_string()})).await["type"], "remove_user_ok");

    let n = faulty("old-key-survives").await;
    let mut a = admin(&n).await;
    let alice = user(&n, &mut a, "alice", 0, 0).await;
    let mut s1 = Client::login(&n.url, n.node.node_key, &alice).await;
    let mut s2 = Client::login(&n.url, n.node.node_key, &alice).await;
    let r = KeyReplacement::sign(n.node.node_key, &alice, &SecretKey::random(), now_ms() + 60_000);
    assert_eq!(s1.req(json!({"type":"replace_key","replacement":r})).await["type"], "replace_key_ok");
    // No `closing`: the next frame on the other session answers its request.
    assert_eq!(s2.req(json!({"type":"node_info"})).await["type"], "node_info_ok");
}

#[tokio::test]
async fn subscribe_faults() {
    let n = faulty("drop-live-events").await;
    let mut c = admin(&n).await;
    let mut f = Feed::new();
    let author = f.pub_key().to_string();
    assert_eq!(c.req(json!({"type":"subscribe","filter":{"authors":[author]}})).await["type"], "subscribe_ok");
    assert_eq!(c.recv().await["type"], "stored_end");
    c.publish_ok(&f.next("live")).await;
    assert_eq!(c.req(json!({"type":"node_info"})).await["type"], "node_info_ok");

    let n = faulty("skip-backfill").await;
    let mut c = admin(&n).await;
    let mut f = Feed::new();
    c.publish_ok(&f.next("stored")).await;
    let author = f.pub_key().to_string();
    assert_eq!(c.req(json!({"type":"subscribe","filter":{"authors":[author]}})).await["type"], "subscribe_ok");
    let v: Value = c.recv().await;
    assert_eq!(v["type"], "stored_end");
}

fn limited(fault: &'static str) -> Opts {
    Opts { fault: Some(fault), ..Opts::default() }
}

/// The node's first answer to a `node_info` on a fresh connection.
async fn first_answer(n: &TestNode) -> (Client, Value) {
    let mut c = Client::connect(&n.url).await;
    c.send(json!({"type":"node_info","id":1})).await;
    let r = c.recv().await;
    (c, r)
}

#[tokio::test]
async fn connection_limit_faults() {
    // FRAME-42: a second connection from the address although the limit is 1.
    let n = start(Opts { max_connections_per_address: 1, ..limited("no-connection-limit") }).await;
    let (_a, r) = first_answer(&n).await;
    assert_eq!(r["type"], "node_info_ok");
    let (_b, r) = first_answer(&n).await;
    assert_eq!(r["type"], "node_info_ok", "{r}");
    // FRAME-43: a second pending handshake although the limit is 1.
    let n = start(Opts { max_pending_handshakes: 1, ..limited("no-handshake-limit") }).await;
    let (_a, r) = first_answer(&n).await;
    assert_eq!(r["type"], "node_info_ok");
    let (_b, r) = first_answer(&n).await;
    assert_eq!(r["type"], "node_info_ok", "{r}");
    // Each fault switches off only its own check.
    let n = start(Opts { max_connections_per_address: 1, ..limited("no-handshake-limit") }).await;
    let (_a, _) = first_answer(&n).await;
    let (_b, r) = first_answer(&n).await;
    assert_eq!(r["code"], "too_many_connections", "{r}");
}

#[tokio::test]
async fn rate_and_subscription_faults() {
    // FRAME-46: 12 messages at once on a bucket of 4 are all answered.
    let n = start(Opts { max_requests_per_second: 4, ..limited("no-rate-limit") }).await;
    let mut c = Client::connect(&n.url).await;
    for id in 1..=12 {
        c.send(json!({"type":"node_info","id":id})).await;
    }
    for id in 1..=12 {
        let r = c.recv().await;
        assert_eq!((r["type"].as_str(), r["id"].as_u64()), (Some("node_info_ok"), Some(id)), "{r}");
    }
    // FEED-11: a second subscription although the limit is 1.
    let n = start(Opts { max_subscriptions: 1, ..limited("no-subscription-limit") }).await;
    let mut c = admin(&n).await;
    for id in 1..=2 {
        c.send(json!({"type":"subscribe","id":id,"filter":{"authors":[n.node.node_key.to_string()]},"backfill":0}))
            .await;
        assert_eq!(c.recv().await["type"], "subscribe_ok");
        assert_eq!(c.recv().await["type"], "stored_end");
    }
}

#[tokio::test]
async fn queue_limit_fault() {
    // FRAME-35: 40 answers of 1.6 MB each at the least bound, and no close.
    let least = 1000 * (16384 + 256) + 65536;
    let n = start(Opts { max_queued_bytes: least, ..limited("no-queue-limit") }).await;
    let mut c = admin(&n).await;
    let (req, _) = big_feed(&mut c, 100).await;
    let mut slow = admin(&n).await;
    assert_eq!(flood_then_read(&mut slow, &req, 40).await, (40, None));
}

#[tokio::test]
async fn frame_limit_faults() {
    // FRAME-5: a 70 KB frame is processed, and the connection stays open.
    let n = start(limited("no-frame-limit")).await;
    let mut c = Client::connect(&n.url).await;
    c.send_text(format!(r#"{{"type":"node_info","id":1,"pad":"{}"}}"#, "x".repeat(70_000))).await;
    assert_eq!(c.recv().await["type"], "node_info_ok");
    assert_eq!(c.req(json!({"type":"node_info"})).await["type"], "node_info_ok");
    // ENC-8: a member nested 100 deep is ignored like any unknown member; other rules hold.
    let n = start(limited("no-depth-limit")).await;
    let mut c = Client::connect(&n.url).await;
    let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    c.send_text(format!(r#"{{"type":"node_info","id":1,"x":{deep}}}"#)).await;
    assert_eq!(c.recv().await["type"], "node_info_ok");
    c.send_text(r#"{"type":"node_info","id":2,"x":1.5}"#.to_owned()).await;
    assert_eq!(c.recv().await["code"], "malformed_frame");
    c.send_text(format!(r#"{{"type":"node_info","id":3,"pad":"{}"}}"#, "x".repeat(70_000))).await;
    assert_eq!(c.recv().await["code"], "frame_too_large");
}

#[tokio::test]
async fn handshake_timeout_fault() {
    // A clean node with this timeout sends `handshake_timeout` and closes after 1000 ms
    // (limits.rs, handshake_timeout_frees_the_pending_slot); the faulty one still answers.
    let n = start(Opts { fault: Some("no-handshake-timeout"), handshake_timeout_ms: 1000, ..Opts::default() }).await;
    let mut c = Client::connect(&n.url).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    c.send(json!({"type":"node_info","id":1})).await;
    assert_eq!(c.recv().await["type"], "node_info_ok");
}
