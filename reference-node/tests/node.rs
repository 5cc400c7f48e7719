//! Every request type and error path over real loopback websockets.
#![allow(missing_docs, clippy::unwrap_used, clippy::zombie_processes)]

mod common;

use common::*;
use kith_proto::account::KeyReplacement;
use kith_proto::canonical::CanonicalValue;
use kith_proto::cert::Certificate;
use kith_proto::identity::IdentityNote;
use kith_proto::SecretKey;
use serde_json::{json, Value};

#[tokio::test]
async fn node_info_before_auth() {
    let n = start_default().await;
    let mut c = Client::connect(&n.url).await;
    let r = c.req(json!({"type":"node_info"})).await;
    assert_eq!(r["type"], "node_info_ok");
    assert_eq!(r["node"], n.node.node_key.to_string());
    assert_eq!(r["name"], "test-node");
    assert_eq!(r["versions"], json!(["kith/1"]));
    let l = &r["limits"];
    assert_eq!(l["max_frame_bytes"], 65536);
    assert_eq!(l["max_entry_bytes"], 16384);
    assert_eq!(l["handshake_timeout_ms"], 10000);
    assert_eq!(l["max_backfill"], 1000);
    assert_eq!(l["max_replicate"], 1000);
    assert_eq!(l["storage_bytes"], 1u64 << 30);
    assert_eq!(l["max_subscriptions"], 64);
}

#[tokio::test]
async fn admin_logs_in_and_reads_its_account() {
    let n = start_default().await;
    let mut c = Client::login(&n.url, n.node.node_key, &n.admin).await;
    assert_eq!(c.account["name"], "admin");
    let r = c.req(json!({"type":"account"})).await;
    assert_eq!(r["type"], "account_ok");
    let a = &r["account"];
    assert_eq!(a["key"], n.node.node_key.to_string());
    assert_eq!(a["parent"], Value::Null);
    assert_eq!(a["invite_allowance"], Value::Null);
    assert_eq!(a["publish_allowance"], Value::Null);
    assert_eq!(a["published_entries"], 0);
    // Still answers node_info after auth.
    assert_eq!(c.req(json!({"type":"node_info"})).await["type"], "node_info_ok");
}

#[tokio::test]
async fn malformed_frames_get_errors_and_the_connection_stays_open() {
    let n = start_default().await;
    let mut c = Client::connect(&n.url).await;
    c.send_text("{not json".into()).await;
    let r = c.recv().await;
    assert_eq!((r["code"].as_str(), &r["id"]), (Some("malformed_frame"), &Value::Null));
    c.send_binary(vec![1u8, 2, 3]).await;
    let r = c.recv().await;
    assert_eq!((r["code"].as_str(), &r["id"]), (Some("malformed_frame"), &Value::Null));
    let r = c.req_err(json!({"type":"teleport"}), "unknown_type").await;
    assert!(r["id"].is_u64());
    c.req_err(json!({"type":"publish","entry":{"x":1}}), "not_authenticated").await;
    c.req_err(json!({"type":"account"}), "not_authenticated").await;
    c.req_err(json!({"type":"subscribe","filter":{}}), "not_authenticated").await;
    assert_eq!(c.req(json!({"type":"node_info"})).await["type"], "node_info_ok");
    // And the handshake still works on the same connection.
    let w = c.handshake(n.node.node_key, &n.admin, now_ms() + 60_000).await;
    assert_eq!(w["type"], "welcome");
    // Field errors after auth.
    c.req_err(json!({"type":"get","entry_id":"ZZ"}), "bad_encoding").await;
    c.req_err(json!({"type":"get"}), "invalid_request").await;
    c.req_err(json!({"type":"replicate","author":n.node.node_key.to_string(),"after":0,"limit":0}), "invalid_request")
        .await;
    c.send_text(r#"{"type":"account","id":1.5}"#.into()).await;
    assert_eq!(c.recv().await["code"], "malformed_frame");
}

#[tokio::test]
async fn oversized_frame_is_refused_and_closed_1009() {
    let n = start_default().await;
    let mut c = Client::connect(&n.url).await;
    let big = format!(r#"{{"type":"node_info","id":1,"pad":"{}"}}"#, "x".repeat(70_000));
    c.send_text(big).await;
    let r = c.recv().await;
    assert_eq!(r["code"], "frame_too_large");
    let close = c.expect_close().await.expect("close frame");
    assert_eq!(close.code, 1009);
}

/// 06 §3: size (step 1) before kind (step 2), and a missing id (step 6) before anything about a
/// hello's fields or the state.
#[tokio::test]
async fn processing_steps_come_in_order() {
    let n = start_default().await;
    let mut c = Client::connect(&n.url).await;
    c.send_binary(vec![b'x'; 70_000]).await;
    let r = c.recv().await;
    assert_eq!((r["code"].as_str(), &r["id"]), (Some("frame_too_large"), &Value::Null));
    assert_eq!(c.expect_close().await.unwrap().code, 1009);
    let mut c = Client::connect(&n.url).await;
    c.send(json!({"type":"hello","version":"kith/1","ephemeral":"00","peer":"00","cert":{"peer":{}}})).await;
    let r = c.recv().await;
    assert_eq!((r["code"].as_str(), &r["id"]), (Some("invalid_request"), &Value::Null), "{r}");
    assert_eq!(c.expect_close().await.unwrap().code, 1008);
}

#[tokio::test]
async fn handshake_failures_close_the_connection() {
    let n = start_default().await;
    let node = n.node.node_key;
    // Expired certificate.
    let mut c = Client::connect(&n.url).await;
    let r = c.handshake(node, &n.admin, now_ms() - 1).await;
    assert_eq!(r["code"], "cert_expired");
    assert_eq!(c.expect_close().await.unwrap().code, 1008);
    // Unknown user.
    let mut c = Client::connect(&n.url).await;
    let r = c.handshake(node, &SecretKey::random(), now_ms() + 60_000).await;
    assert_eq!(r["code"], "unknown_user");
    c.expect_close().await;
    // Forged certificate: signed by someone else than the user it names.
    let mut c = Client::connect(&n.url).await;
    let peer = SecretKey::random();
    let mut cert = Certificate::issue(&SecretKey::random(), peer.public(), now_ms() + 60_000);
    cert.user = node;
    let hello = json!({"type":"hello","id":1,"version":"kith/1","ephemeral":kith_proto::encoding::encode_hex(&[9u8;32]),
        "peer":peer.public().to_string(),"cert":cert});
    c.send(hello).await;
    assert_eq!(c.recv().await["code"], "bad_certificate");
    c.expect_close().await;
    // Unsupported version.
    let mut c = Client::connect(&n.url).await;
    let cert = Certificate::issue(&n.admin, peer.public(), now_ms() + 60_000);
    let hello = json!({"type":"hello","id":1,"version":"kith/9","ephemeral":kith_proto::encoding::encode_hex(&[9u8;32]),
        "peer":peer.public().to_string(),"cert":cert});
    c.send(hello).await;
    assert_eq!(c.recv().await["code"], "unsupported_version");
    c.expect_close().await;
    // auth before hello.
    let mut c = Client::connect(&n.url).await;
    c.send(json!({"type":"auth","id":3,"sig":"00".repeat(64)})).await;
    assert_eq!(c.recv().await["code"], "bad_handshake");
    c.expect_close().await;
}

#[tokio::test]
async fn forged_and_replayed_auth_is_bad_signature() {
    use kith_proto::handshake::{ClientConfig, ClientHandshake};
    use kith_proto::version::PROTOCOL_VERSION;
    use kith_proto::{RequestId, ServerFrame};
    let n = start_default().await;
    let node = n.node.node_key;
    let peer = SecretKey::random();
    let cert = Certificate::issue(&n.admin, peer.public(), now_ms() + 60_000);
    let config = ClientConfig { peer, cert, expected_node: node, version: PROTOCOL_VERSION.into() };
    // First connection: record a valid auth.
    let (mut hs, hello) = ClientHandshake::start(config.clone(), rand_seed(), RequestId::small(1));
    let mut a = Client::connect(&n.url).await;
    a.send(serde_json::to_value(kith_proto::ClientFrame::Hello(hello.clone())).unwrap()).await;
    let ch = a.recv().await;
    let ServerFrame::Challenge(ch) = ServerFrame::parse(&ch.to_string()).unwrap() else { panic!() };
    let auth = hs.handle_challenge(&ch, RequestId::small(2)).unwrap();
    // Second connection: same hello, replay the recorded auth: the fresh server ephemeral
    // changes the transcript.
    let mut b = Client::connect(&n.url).await;
    b.send(serde_json::to_value(kith_proto::ClientFrame::Hello(hello)).unwrap()).await;
    assert_eq!(b.recv().await["type"], "challenge");
    b.send(serde_json::to_value(kith_proto::ClientFrame::Auth(auth)).unwrap()).await;
    assert_eq!(b.recv().await["code"], "bad_signature");
    b.expect_close().await;
    // A forged signature on the first connection.
    a.send(json!({"type":"auth","id":2,"sig":"11".repeat(64)})).await;
    assert_eq!(a.recv().await["code"], "bad_signature");
    a.expect_close().await;
}

#[tokio::test]
async fn handshake_timeout_closes() {
    let n = start(Opts { handshake_timeout_ms: 1000, ..Opts::default() }).await;
    let mut c = Client::connect(&n.url).await;
    assert_eq!(c.req(json!({"type":"node_info"})).await["limits"]["handshake_timeout_ms"], 1000);
    let r = c.recv().await;
    assert_eq!((r["code"].as_str(), &r["id"]), (Some("handshake_timeout"), &Value::Null));
    c.expect_close().await;
    // A finished handshake is not timed out.
    let mut c = Client::login(&n.url, n.node.node_key, &n.admin).await;
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert_eq!(c.req(json!({"type":"account"})).await["type"], "account_ok");
    // A second hello after welcome.
    let r = c
        .req(json!({"type":"hello","version":"kith/1","ephemeral":"00".repeat(32),
        "peer":n.node.node_key.to_string(),"cert":Certificate::issue(&n.admin, n.node.node_key, now_ms()+1000)}))
        .await;
    assert_eq!(r["code"], "bad_handshake");
}

#[tokio::test]
async fn publish_get_heads_replicate() {
    let n = start_default().await;
    let mut c = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let mut own = Feed::with_key(n.admin.clone());
    let mut other = Feed::new();
    let mut entries = Vec::new();
    for i in 0..5 {
        let e = own.next(&format!("own {i}"));
        let r = c.publish_ok(&e).await;
        assert_eq!(r["entry_id"], entry_id(&e));
        assert_eq!(r["duplicate"], false);
        entries.push(e);
    }
    // Someone else's feed, relayed by the admin.
    let o1 = other.next("other 1");
    c.publish_ok(&o1).await;
    // Idempotent re-publish, head and below head.
    assert_eq!(c.publish_ok(&entries[4]).await["duplicate"], true);
    assert_eq!(c.publish_ok(&entries[1]).await["duplicate"], true);
    // Fork at a stored seq and at the head.
    let fork = own.draft();
    let mut fork2 = kith_proto::entry::EntryDraft::first(1).text("fork");
    fork2.timestamp = 5;
    c.req_err(json!({"type":"publish","entry":fork2.sign(&n.admin)}), "fork").await;
    let mut at_head = kith_proto::entry::EntryDraft::after(&verified(&entries[3]), own.ts);
    at_head = at_head.text("other head");
    c.req_err(json!({"type":"publish","entry":at_head.sign(&n.admin)}), "fork").await;
    // Broken link, gap, timestamp going backwards.
    let mut bad = fork.clone();
    bad.prev = Some(verified(&entries[0]).id);
    c.req_err(json!({"type":"publish","entry":bad.sign(&n.admin)}), "bad_prev").await;
    let mut gap = fork.clone();
    gap.seq += 1;
    c.req_err(json!({"type":"publish","entry":gap.sign(&n.admin)}), "bad_sequence").await;
    let mut early = fork.clone();
    early.timestamp = 1;
    c.req_err(json!({"type":"publish","entry":early.sign(&n.admin)}), "bad_timestamp").await;
    // Forged signature: content changed after signing.
    let mut forged = serde_json::to_value(own.next("signed")).unwrap();
    own.last = Some(verified(&entries[4]));
    forged["content"]["text"] = json!("tampered");
    c.req_err(json!({"type":"publish","entry":forged}), "bad_signature").await;
    // Malformed entry (extra field) and a bad profile.
    let mut extra = serde_json::to_value(&entries[0]).unwrap();
    extra["extra"] = json!(1);
    c.req_err(json!({"type":"publish","entry":extra}), "malformed_entry").await;
    let mut prof = own.draft();
    prof.kind = serde_json::from_value(json!("profile")).unwrap();
    prof.content.insert("nick".into(), CanonicalValue::string("x"));
    c.req_err(json!({"type":"publish","entry":prof.sign(&n.admin)}), "malformed_entry").await;
    let mut prof = own.draft();
    prof.kind = serde_json::from_value(json!("profile")).unwrap();
    prof.content.insert("name".into(), CanonicalValue::string("Admin"));
    let p = own.push(prof);
    c.publish_ok(&p).await;
    entries.push(p);

    // get by id and by position.
    let r = c.req(json!({"type":"get","entry_id":entry_id(&entries[2])})).await;
    assert_eq!(r["type"], "get_ok");
    assert_eq!(r["entry"], serde_json::to_value(&entries[2]).unwrap());
    let r = c.req(json!({"type":"get","author":n.admin.public().to_string(),"seq":3})).await;
    assert_eq!(r["entry"], serde_json::to_value(&entries[2]).unwrap());
    c.req_err(json!({"type":"get","entry_id":"ab".repeat(32)}), "not_found").await;
    c.req_err(json!({"type":"get","author":n.admin.public().to_string(),"seq":99}), "not_found").await;

    // heads, in the order asked, unknown omitted.
    let r = c
        .req(json!({"type":"heads","authors":[other.pub_key().to_string(), SecretKey::random().public().to_string(),
            n.admin.public().to_string()]}))
        .await;
    assert_eq!(r["type"], "heads_ok");
    let heads = r["heads"].as_array().unwrap();
    assert_eq!(heads.len(), 2);
    assert_eq!(heads[0]["author"], other.pub_key().to_string());
    assert_eq!(heads[0]["seq"], 1);
    assert_eq!(heads[1]["seq"], 6);
    assert_eq!(heads[1]["entry_id"], entry_id(&entries[5]));
    assert_eq!(heads[1]["pruned_through"], 0);

    // replicate.
    let r = c.req(json!({"type":"replicate","author":n.admin.public().to_string(),"after":2,"limit":2})).await;
    assert_eq!(r["type"], "replicate_ok");
    assert_eq!(r["entries"], json!([entries[2], entries[3]]));
    assert_eq!(r["head"], 6);
    assert_eq!(r["pruned_through"], 0);
    let r =
        c.req(json!({"type":"replicate","author":SecretKey::random().public().to_string(),"after":0,"limit":5})).await;
    assert_eq!((r["entries"].clone(), r["head"].clone()), (json!([]), Value::Null));

    // The admin's account counts what it stored: 5 own + 1 other + profile.
    let r = c.req(json!({"type":"account"})).await;
    assert_eq!(r["account"]["published_entries"], 7);
    let bytes: u64 = entries.iter().map(size).sum::<u64>() + size(&o1);
    assert_eq!(r["account"]["published_bytes"], bytes);
}

#[tokio::test]
async fn pipelined_publishes_are_answered_in_order() {
    let n = start_default().await;
    let mut c = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let mut f = Feed::new();
    let entries: Vec<_> = (0..100).map(|i| f.next(&format!("{i}"))).collect();
    for (i, e) in entries.iter().enumerate() {
        c.send(json!({"type":"publish","id":i,"entry":e})).await;
    }
    c.send(json!({"type":"heads","id":9999,"authors":[f.pub_key().to_string()]})).await;
    for i in 0..100 {
        let r = c.recv().await;
        assert_eq!((r["type"].as_str(), r["id"].as_u64()), (Some("publish_ok"), Some(i)), "{r}");
    }
    let r = c.recv().await;
    assert_eq!(r["heads"][0]["seq"], 100);
}

#[tokio::test]
async fn concurrent_publishers() {
    let n = start_default().await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = n.url.clone();
        let node = n.node.node_key;
        let admin = n.admin.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::login(&url, node, &admin).await;
            let mut f = Feed::new();
            for i in 0..25 {
                let e = f.next(&format!("{i}"));
                c.send(json!({"type":"publish","id":i,"entry":e})).await;
            }
            for _ in 0..25 {
                assert_eq!(c.recv().await["type"], "publish_ok");
            }
            f.pub_key()
        }));
    }
    let mut keys = Vec::new();
    for t in tasks {
        keys.push(t.await.unwrap().to_string());
    }
    let mut c = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let r = c.req(json!({"type":"heads","authors":keys})).await;
    let heads = r["heads"].as_array().unwrap();
    assert_eq!(heads.len(), 4);
    assert!(heads.iter().all(|h| h["seq"] == 25));
    assert_eq!(c.req(json!({"type":"account"})).await["account"]["published_entries"], 100);
}

#[tokio::test]
async fn invite_and_publish_allowances() {
    let n = start_default().await;
    let mut admin = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let alice = SecretKey::random();
    let r = admin
        .req(json!({"type":"create_user","key":alice.public().to_string(),"name":"alice","invite_allowance":3,
            "publish_allowance":2}))
        .await;
    assert_eq!(r["type"], "create_user_ok", "{r}");
    assert_eq!(r["account"]["parent"], n.node.node_key.to_string());
    assert_eq!(r["account"]["invite_allowance"], 3);
    // The admin stays unlimited.
    assert_eq!(admin.req(json!({"type":"account"})).await["account"]["invite_allowance"], Value::Null);
    // Unique names and keys; name rules.
    admin
        .req_err(
            json!({"type":"create_user","key":SecretKey::random().public().to_string(),"name":"alice",
            "invite_allowance":0,"publish_allowance":0}),
            "name_taken",
        )
        .await;
    admin
        .req_err(
            json!({"type":"create_user","key":alice.public().to_string(),"name":"alice2","invite_allowance":0,
            "publish_allowance":0}),
            "key_taken",
        )
        .await;
    admin
        .req_err(
            json!({"type":"create_user","key":SecretKey::random().public().to_string(),"name":"Bad Name",
            "invite_allowance":0,"publish_allowance":0}),
            "invalid_request",
        )
        .await;

    let mut a = Client::login(&n.url, n.node.node_key, &alice).await;
    assert_eq!(a.account["name"], "alice");
    // A child's publish allowance may not exceed the inviter's.
    a.req_err(
        json!({"type":"create_user","key":SecretKey::random().public().to_string(),"name":"bob","invite_allowance":0,
            "publish_allowance":3}),
        "allowance_exhausted",
    )
    .await;
    // Costs 1 + 1 = 2 of alice's 3.
    let bob = SecretKey::random();
    let r = a
        .req(json!({"type":"create_user","key":bob.public().to_string(),"name":"bob","invite_allowance":1,
            "publish_allowance":2}))
        .await;
    assert_eq!(r["type"], "create_user_ok", "{r}");
    assert_eq!(a.req(json!({"type":"account"})).await["account"]["invite_allowance"], 1);
    // Needs 2, has 1.
    a.req_err(
        json!({"type":"create_user","key":SecretKey::random().public().to_string(),"name":"carol","invite_allowance":1,
            "publish_allowance":0}),
        "allowance_exhausted",
    )
    .await;
    // Needs 1, has 1.
    let r = a
        .req(json!({"type":"create_user","key":SecretKey::random().public().to_string(),"name":"carol",
            "invite_allowance":0,"publish_allowance":0}))
        .await;
    assert_eq!(r["type"], "create_user_ok");
    assert_eq!(a.req(json!({"type":"account"})).await["account"]["invite_allowance"], 0);

    // Publish allowance: 2 entries, duplicates free.
    let mut f = Feed::with_key(alice.clone());
    let e1 = f.next("1");
    let e2 = f.next("2");
    a.publish_ok(&e1).await;
    a.publish_ok(&e2).await;
    assert_eq!(a.publish_ok(&e2).await["duplicate"], true);
    let e3 = f.next("3");
    a.req_err(json!({"type":"publish","entry":e3}), "publish_allowance_exhausted").await;
    let acct = a.req(json!({"type":"account"})).await["account"].clone();
    assert_eq!(acct["publish_allowance"], 0);
    assert_eq!(acct["published_entries"], 2);
    assert_eq!(acct["published_bytes"], size(&e1) + size(&e2));
    // Exhausted publishers can still re-publish what is stored.
    assert_eq!(a.publish_ok(&e1).await["duplicate"], true);
    // With nothing left alice cannot give bob publish allowance either.
    a.req_err(
        json!({"type":"create_user","key":SecretKey::random().public().to_string(),"name":"dave","invite_allowance":0,
            "publish_allowance":1}),
        "allowance_exhausted",
    )
    .await;
}

async fn create(c: &mut Client, key: &SecretKey, name: &str, invites: u64) {
    let r = c
        .req(json!({"type":"create_user","key":key.public().to_string(),"name":name,"invite_allowance":invites,
            "publish_allowance":10}))
        .await;
    assert_eq!(r["type"], "create_user_ok", "{r}");
}

#[tokio::test]
async fn key_replacement_closes_every_session_of_the_old_key() {
    let n = start_default().await;
    let mut admin = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let alice = SecretKey::random();
    create(&mut admin, &alice, "alice", 5).await;
    let bob = SecretKey::random();
    let mut a1 = Client::login(&n.url, n.node.node_key, &alice).await;
    create(&mut a1, &bob, "bob", 0).await;
    admin.req(json!({"type":"follow","key":bob.public().to_string()})).await;
    a1.req(json!({"type":"follow","key":bob.public().to_string()})).await;
    let mut a2 = Client::login(&n.url, n.node.node_key, &alice).await;
    let new = SecretKey::random();
    // Invalid replacements.
    let wrong_node = KeyReplacement::sign(SecretKey::random().public(), &alice, &new, now_ms() + 60_000);
    a1.req_err(json!({"type":"replace_key","replacement":wrong_node}), "invalid_request").await;
    let expired = KeyReplacement::sign(n.node.node_key, &alice, &new, now_ms() - 1);
    a1.req_err(json!({"type":"replace_key","replacement":expired}), "invalid_request").await;
    let mut forged = KeyReplacement::sign(n.node.node_key, &alice, &new, now_ms() + 60_000);
    forged.sig_new = forged.sig_old;
    a1.req_err(json!({"type":"replace_key","replacement":forged}), "bad_signature").await;
    let taken = KeyReplacement::sign(n.node.node_key, &alice, &bob, now_ms() + 60_000);
    a1.req_err(json!({"type":"replace_key","replacement":taken}), "key_taken").await;
    let not_mine = KeyReplacement::sign(n.node.node_key, &bob, &new, now_ms() + 60_000);
    a1.req_err(json!({"type":"replace_key","replacement":not_mine}), "invalid_request").await;

    let r = KeyReplacement::sign(n.node.node_key, &alice, &new, now_ms() + 60_000);
    let ok = a1.req(json!({"type":"replace_key","replacement":r})).await;
    assert_eq!(ok["type"], "replace_key_ok", "{ok}");
    assert_eq!(ok["account"]["key"], new.public().to_string());
    assert_eq!(ok["account"]["name"], "alice");
    for c in [&mut a1, &mut a2] {
        let closing = c.recv().await;
        assert_eq!((closing["type"].as_str(), closing["code"].as_str()), (Some("closing"), Some("key_replaced")));
        let close = c.expect_close().await.expect("close frame");
        assert_eq!((close.code, close.reason.as_str()), (1000, "key_replaced"));
    }
    // The admin's key is the node key: it cannot be replaced.
    let r = KeyReplacement::sign(n.node.node_key, &n.admin, &SecretKey::random(), now_ms() + 60_000);
    admin.req_err(json!({"type":"replace_key","replacement":r}), "forbidden").await;
    // A replacement to the node key or to oneself is key_taken.
    let mut a4 = Client::login(&n.url, n.node.node_key, &new).await;
    let r = KeyReplacement::sign(n.node.node_key, &new, &n.admin, now_ms() + 60_000);
    a4.req_err(json!({"type":"replace_key","replacement":r}), "key_taken").await;
    let r = KeyReplacement::sign(n.node.node_key, &new, &new, now_ms() + 60_000);
    a4.req_err(json!({"type":"replace_key","replacement":r}), "key_taken").await;
    // The old key is unknown now; the new one logs into the same account.
    let mut old = Client::connect(&n.url).await;
    assert_eq!(old.handshake(n.node.node_key, &alice, now_ms() + 60_000).await["code"], "unknown_user");
    let mut a3 = Client::login(&n.url, n.node.node_key, &new).await;
    assert_eq!(a3.account["name"], "alice");
    assert_eq!(a3.account["invite_allowance"], 4);
    assert_eq!(a3.req(json!({"type":"follows"})).await["keys"], json!([bob.public().to_string()]));
    // Bob's parent follows the account to its new key.
    let b = Client::login(&n.url, n.node.node_key, &bob).await;
    assert_eq!(b.account["parent"], new.public().to_string());
    // The admin's session was never touched.
    assert_eq!(admin.req(json!({"type":"follows"})).await["keys"], json!([bob.public().to_string()]));
}

#[tokio::test]
async fn removal_by_ancestors_only() {
    let n = start_default().await;
    let mut admin = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let (alice, bob, carol) = (SecretKey::random(), SecretKey::random(), SecretKey::random());
    create(&mut admin, &alice, "alice", 10).await;
    let mut a = Client::login(&n.url, n.node.node_key, &alice).await;
    create(&mut a, &bob, "bob", 3).await;
    let mut b = Client::login(&n.url, n.node.node_key, &bob).await;
    create(&mut b, &carol, "carol", 0).await;
    let mut c = Client::login(&n.url, n.node.node_key, &carol).await;
    // Not ancestors: a child, oneself, a stranger's key.
    c.req_err(json!({"type":"remove_user","key":bob.public().to_string()}), "forbidden").await;
    b.req_err(json!({"type":"remove_user","key":bob.public().to_string()}), "forbidden").await;
    b.req_err(json!({"type":"remove_user","key":alice.public().to_string()}), "forbidden").await;
    b.req_err(json!({"type":"remove_user","key":n.node.node_key.to_string()}), "forbidden").await;
    a.req_err(json!({"type":"remove_user","key":SecretKey::random().public().to_string()}), "not_found").await;
    // Alice removes bob; bob's session closes; carol moves up to alice.
    assert_eq!(a.req(json!({"type":"remove_user","key":bob.public().to_string()})).await["type"], "remove_user_ok");
    let closing = b.recv().await;
    assert_eq!((closing["type"].as_str(), closing["code"].as_str()), (Some("closing"), Some("account_removed")));
    b.expect_close().await;
    let acct = c.req(json!({"type":"account"})).await["account"].clone();
    assert_eq!(acct["parent"], alice.public().to_string());
    let mut gone = Client::connect(&n.url).await;
    assert_eq!(gone.handshake(n.node.node_key, &bob, now_ms() + 60_000).await["code"], "unknown_user");
    // The name is free again; the admin (ancestor of all) removes carol.
    create(&mut a, &SecretKey::random(), "bob", 0).await;
    assert_eq!(
        admin.req(json!({"type":"remove_user","key":carol.public().to_string()})).await["type"],
        "remove_user_ok"
    );
    let closing = c.recv().await;
    assert_eq!(closing["code"], "account_removed");
}

fn event_seq(v: &Value) -> u64 {
    assert_eq!(v["type"], "event", "{v}");
    v["entry"]["seq"].as_u64().unwrap()
}

#[tokio::test]
async fn subscribe_backfill_then_live_then_unsubscribe() {
    let n = start_default().await;
    let mut p = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let mut s = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let mut f = Feed::new();
    let mut g = Feed::new();
    let root = f.next("root");
    p.publish_ok(&root).await;
    let root_id = verified(&root).id;
    for i in 2..=5 {
        p.publish_ok(&f.next(&format!("{i}"))).await;
    }
    // A reply in g's feed referencing root and mentioning someone.
    let watched = SecretKey::random().public();
    let mut d = g.draft().text("reply");
    d.refs = vec![root_id];
    d.mentions = vec![watched];
    let reply = g.push(d);
    p.publish_ok(&reply).await;

    let sid = s.id();
    s.send(json!({"type":"subscribe","id":sid,"filter":{"authors":[f.pub_key().to_string()]},"backfill":3})).await;
    let ok = s.recv().await;
    assert_eq!((ok["type"].as_str(), ok["sub"].as_u64()), (Some("subscribe_ok"), Some(sid)));
    let seqs: Vec<u64> = [s.recv().await, s.recv().await, s.recv().await].iter().map(event_seq).collect();
    assert_eq!(seqs, vec![3, 4, 5]);
    assert_eq!(s.recv().await["type"], "stored_end");
    // Live, for this sub only.
    p.publish_ok(&f.next("6")).await;
    let ev = s.recv().await;
    assert_eq!((event_seq(&ev), ev["sub"].as_u64()), (6, Some(sid)));

    // Threads and mentions filters, with default backfill; an entry matching twice comes once.
    let t = s
        .req(json!({"type":"subscribe","filter":{"threads":[root_id.to_string()],"mentions":[watched.to_string()]}}))
        .await;
    assert_eq!(t["type"], "subscribe_ok");
    let ev = s.recv().await;
    assert_eq!(ev["entry"], serde_json::to_value(&reply).unwrap());
    assert_eq!(s.recv().await["type"], "stored_end");

    // Unsubscribe: no more events for it.
    let r = s.req(json!({"type":"unsubscribe","sub":sid})).await;
    assert_eq!(r["type"], "unsubscribe_ok");
    p.publish_ok(&f.next("7")).await;
    let r = s.req(json!({"type":"unsubscribe","sub":sid})).await;
    assert_eq!(r["code"], "not_found", "no event for an ended sub may arrive: {r}");
    // Re-using an open subscription id is refused.
    let tid = t["sub"].as_u64().unwrap();
    s.send(json!({"type":"subscribe","id":tid,"filter":{}})).await;
    assert_eq!(s.recv().await["code"], "invalid_request");
}

#[tokio::test]
async fn live_events_have_no_gap_or_duplicate_under_concurrent_publishing() {
    let n = start_default().await;
    let mut p = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let mut s = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let mut f = Feed::new();
    let entries: Vec<_> = (0..150).map(|i| f.next(&format!("{i}"))).collect();
    let author = f.pub_key().to_string();
    let publisher = tokio::spawn(async move {
        for (i, e) in entries.iter().enumerate() {
            p.send(json!({"type":"publish","id":i,"entry":e})).await;
        }
        for _ in 0..150 {
            assert_eq!(p.recv().await["type"], "publish_ok");
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    s.send(json!({"type":"subscribe","id":1,"filter":{"authors":[author]},"backfill":1000})).await;
    assert_eq!(s.recv().await["type"], "subscribe_ok");
    let mut seqs = Vec::new();
    let mut saw_end = false;
    while seqs.len() < 150 {
        let v = s.recv().await;
        if v["type"] == "stored_end" {
            assert!(!saw_end);
            saw_end = true;
            continue;
        }
        seqs.push(event_seq(&v));
    }
    publisher.await.unwrap();
    assert_eq!(seqs, (1..=150).collect::<Vec<u64>>());
}

#[tokio::test]
async fn pruning_keeps_the_newest_within_budget() {
    let budget = 40_000;
    let n = start(Opts { storage_bytes: budget, ..Opts::default() }).await;
    let mut c = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let mut f = Feed::new();
    let pad = "p".repeat(5000);
    let entries: Vec<_> = (0..20).map(|i| f.next(&format!("{i}{pad}"))).collect();
    for e in &entries {
        c.publish_ok(e).await;
    }
    let mut model = kith_proto::storage::PruneModel::new(kith_proto::storage::PruneBudget::new(budget).unwrap());
    for (i, e) in entries.iter().enumerate() {
        model.store(i as u64 + 1, size(e));
    }
    let first_kept = model.stored().next().unwrap();
    let keep = model.stored().count() as u64;
    assert!((5..20).contains(&keep));
    let author = f.pub_key().to_string();
    let h = c.req(json!({"type":"heads","authors":[author]})).await;
    assert_eq!(h["heads"][0]["seq"], 20);
    assert_eq!(h["heads"][0]["pruned_through"], first_kept - 1);
    c.req_err(json!({"type":"get","author":author,"seq":1}), "pruned").await;
    c.req_err(json!({"type":"get","entry_id":entry_id(&entries[0])}), "not_found").await;
    let r = c.req(json!({"type":"get","author":author,"seq":first_kept})).await;
    assert_eq!(r["type"], "get_ok");
    let r = c.req(json!({"type":"replicate","author":author,"after":0,"limit":100})).await;
    assert_eq!(r["entries"].as_array().unwrap().len() as u64, keep);
    assert_eq!(r["pruned_through"], first_kept - 1);
    // A pruned slot cannot be re-published; the head still validates the next entry.
    c.req_err(json!({"type":"publish","entry":entries[0]}), "pruned").await;
    c.publish_ok(&f.next("21")).await;
    // A whole feed pruned keeps its head.
    let mut g = Feed::new();
    let g1 = g.next("only");
    c.publish_ok(&g1).await;
    for i in 0..10 {
        c.publish_ok(&f.next(&format!("more {i}{pad}"))).await;
    }
    let h = c.req(json!({"type":"heads","authors":[g.pub_key().to_string()]})).await;
    assert_eq!((h["heads"][0]["seq"].as_u64(), h["heads"][0]["pruned_through"].as_u64()), (Some(1), Some(1)));
    // The head is still known, so re-publishing it is recognised as a duplicate.
    assert_eq!(c.publish_ok(&g1).await["duplicate"], true);
    c.req_err(json!({"type":"get","author":g.pub_key().to_string(),"seq":1}), "pruned").await;
}

/// FRAME-34, FRAME-35, FRAME-36: a bounded outbound queue; a reader that stops is closed with
/// 1013 `slow_consumer` while publishers and other subscribers carry on, and nothing queued
/// before is dropped to make room (the fast subscriber sees every event in order).
#[tokio::test]
async fn slow_consumer_is_closed_without_blocking_others() {
    let n = start_default().await;
    let mut p = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let mut slow = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let mut fast = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let mut f = Feed::new();
    let author = f.pub_key().to_string();
    for i in 0..64 {
        slow.send(json!({"type":"subscribe","id":i,"filter":{"authors":[author]},"backfill":0})).await;
    }
    for _ in 0..64 {
        // subscribe_ok + stored_end
        slow.recv().await;
        slow.recv().await;
    }
    assert_eq!(fast.req(json!({"type":"subscribe","filter":{"authors":[author]}})).await["type"], "subscribe_ok");
    assert_eq!(fast.recv().await["type"], "stored_end");
    // The slow client stops reading; every publish queues 64 events of ~16 KB for it, so
    // about 40 publishes overflow its 32 MiB queue once the socket buffers are full.
    let pad = "s".repeat(15_800);
    for i in 0..70 {
        p.publish_ok(&f.next(&format!("{i}{pad}"))).await;
        assert_eq!(event_seq(&fast.recv().await), i + 1);
    }
    // Now read the slow one: it was cut off with 1013 slow_consumer, long before it got
    // every event.
    let mut events = 0;
    let close = loop {
        match slow.next_msg().await {
            Some(Msg::Text(_)) => events += 1,
            Some(Msg::Close(f)) => break f,
            None => break None,
            Some(_) => {}
        }
    };
    assert!(events < 64 * 70, "got all {events} events");
    let close = close.expect("a close frame");
    assert_eq!(close.code, 1013);
    assert_eq!(close.reason.as_str(), "slow_consumer");
}

#[tokio::test]
async fn identities_and_follows() {
    let n = start_default().await;
    let mut admin = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let alice = SecretKey::random();
    create(&mut admin, &alice, "alice", 0).await;
    let mut a = Client::login(&n.url, n.node.node_key, &alice).await;
    let (x, y) = (SecretKey::random().public(), SecretKey::random().public());
    let addr = format!("/ip4/127.0.0.1/ws/7777/{}", n.node.node_key);
    let note = IdentityNote::sign(&alice, x, "Ex", vec![addr.clone()], "met at the fair", 10);
    assert_eq!(a.req(json!({"type":"add_identity","note":note})).await["type"], "add_identity_ok");
    let older = IdentityNote::sign(&alice, x, "Old", vec![], "", 5);
    assert_eq!(a.req(json!({"type":"add_identity","note":older})).await["type"], "add_identity_ok");
    let by_admin = IdentityNote::sign(&n.admin, x, "X", vec![], "", 1);
    a.req_err(json!({"type":"add_identity","note":by_admin}), "forbidden").await;
    let mut forged = IdentityNote::sign(&alice, y, "Y", vec![], "", 1);
    forged.display_name = "Z".into();
    a.req_err(json!({"type":"add_identity","note":forged}), "bad_signature").await;
    let by_admin = IdentityNote::sign(&n.admin, x, "X by admin", vec![], "", 1);
    admin.req(json!({"type":"add_identity","note":by_admin})).await;
    let ynote = IdentityNote::sign(&n.admin, y, "Y", vec![], "", 1);
    admin.req(json!({"type":"add_identity","note":ynote})).await;
    let r = a.req(json!({"type":"identities"})).await;
    let ids = r["identities"].as_array().unwrap();
    assert_eq!(ids.len(), 2);
    let mut subjects = vec![x.to_string(), y.to_string()];
    subjects.sort();
    assert_eq!(ids.iter().map(|i| i["key"].as_str().unwrap().to_owned()).collect::<Vec<_>>(), subjects);
    let xi = ids.iter().find(|i| i["key"] == x.to_string()).unwrap();
    assert_eq!(xi["notes"].as_array().unwrap().len(), 2);
    let alice_note =
        xi["notes"].as_array().unwrap().iter().find(|n| n["author"] == alice.public().to_string()).unwrap();
    assert_eq!(alice_note["display_name"], "Ex");
    let authors: Vec<_> = xi["notes"].as_array().unwrap().iter().map(|n| n["author"].as_str().unwrap()).collect();
    let mut sorted = authors.clone();
    sorted.sort();
    assert_eq!(authors, sorted);

    assert_eq!(a.req(json!({"type":"follow","key":y.to_string()})).await["type"], "follow_ok");
    assert_eq!(a.req(json!({"type":"follow","key":x.to_string()})).await["type"], "follow_ok");
    let mut both = vec![x.to_string(), y.to_string()];
    both.sort();
    assert_eq!(a.req(json!({"type":"follows"})).await["keys"], json!(both));
    assert_eq!(a.req(json!({"type":"unfollow","key":x.to_string()})).await["type"], "unfollow_ok");
    assert_eq!(a.req(json!({"type":"follows"})).await["keys"], json!([y.to_string()]));
    assert_eq!(admin.req(json!({"type":"follows"})).await["keys"], json!([]));
}

#[tokio::test]
async fn graceful_shutdown_says_closing() {
    let n = start_default().await;
    let mut c = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let TestNode { node, .. } = n;
    node.shutdown().await.unwrap();
    let v = c.recv().await;
    assert_eq!((v["type"].as_str(), v["code"].as_str()), (Some("closing"), Some("shutting_down")));
}

#[tokio::test]
async fn storage_budget_below_entry_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let seed = write_seed(dir.path(), &SecretKey::random());
    let o = Opts { storage_bytes: 16_383, ..Opts::default() };
    assert!(kith_node::start(args(dir.path(), seed, &o)).await.is_err());
}

#[tokio::test]
async fn anchors_heads_and_get_edges() {
    let n = start_default().await;
    let mut c = Client::login(&n.url, n.node.node_key, &n.admin).await;
    // Build a feed of 5 and give the node only its suffix from seq 4.
    let mut f = Feed::new();
    let all: Vec<_> = (1..=5).map(|i| f.next(&format!("{i}"))).collect();
    let author = f.pub_key().to_string();
    c.publish_ok(&all[3]).await;
    c.publish_ok(&all[4]).await;
    let h = c.req(json!({"type":"heads","authors":[author, author]})).await;
    assert_eq!(h["heads"].as_array().unwrap().len(), 1, "one head per distinct author: {h}");
    assert_eq!((h["heads"][0]["seq"].as_u64(), h["heads"][0]["pruned_through"].as_u64()), (Some(5), Some(3)));
    // Below the anchor counts as pruned.
    c.req_err(json!({"type":"get","author":author,"seq":2}), "pruned").await;
    c.req_err(json!({"type":"publish","entry":all[1]}), "pruned").await;
    c.req_err(json!({"type":"get","author":author,"seq":0}), "invalid_request").await;
    c.req_err(json!({"type":"get","author":author}), "invalid_request").await;
    let r = c.req(json!({"type":"replicate","author":author,"after":0,"limit":10})).await;
    assert_eq!((r["entries"].as_array().unwrap().len(), r["pruned_through"].as_u64()), (2, Some(3)));
}

#[tokio::test]
async fn notes_of_removed_users_are_not_listed() {
    let n = start_default().await;
    let mut admin = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let alice = SecretKey::random();
    create(&mut admin, &alice, "alice", 0).await;
    let mut a = Client::login(&n.url, n.node.node_key, &alice).await;
    let x = SecretKey::random().public();
    let note = IdentityNote::sign(&alice, x, "X", vec![], "", 1);
    a.req(json!({"type":"add_identity","note":note})).await;
    let dup = format!("/ip4/127.0.0.1/ws/7777/{}", n.node.node_key);
    let twice = IdentityNote::sign(&alice, x, "X", vec![dup.clone(), dup], "", 2);
    a.req_err(json!({"type":"add_identity","note":twice}), "invalid_request").await;
    assert_eq!(admin.req(json!({"type":"identities"})).await["identities"].as_array().unwrap().len(), 1);
    admin.req(json!({"type":"remove_user","key":alice.public().to_string()})).await;
    assert_eq!(admin.req(json!({"type":"identities"})).await["identities"], json!([]));
}
