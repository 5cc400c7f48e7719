//! The resource limits of spec 06 §8, each at its exact boundary, over loopback websockets:
//! connections per address and pending handshakes (FRAME-42..44), the token bucket (FRAME-45..47),
//! subscriptions (FEED-11), the outbound queue (FRAME-34, FRAME-35, FRAME-48), the fixed frame
//! size and depth (FRAME-5, ENC-8), and the limits reported and checked at start (HS-52..54).
//!
//! No assertion depends on how fast the machine is: what the token bucket must have allowed is
//! computed from its bound with the time the client measured, which is at least the time the
//! node had.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use kith_proto::node_info::Limits;
use serde_json::{json, Value};

/// How long a test waits for the node to notice a connection the client closed.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

fn opts() -> Opts {
    Opts::default()
}

/// Opens a websocket to the node from the loopback address `source` (any of 127.0.0.0/8).
async fn connect_from(n: &TestNode, source: [u8; 4]) -> Client {
    Client::connect_from(&n.url, source.into()).await
}

/// The first answer on a fresh connection to a `node_info`: `node_info_ok` when the connection
/// was accepted, the refusal otherwise.
async fn first_answer(c: &mut Client) -> Value {
    c.send(json!({"type":"node_info","id":1})).await;
    c.recv().await
}

/// Asserts that `c` was refused with `code`: the error with a null id, then close 1013 with the
/// code as reason, and nothing else (the `node_info` sent on it was not processed).
async fn assert_refused(c: &mut Client, code: &str) {
    let r = first_answer(c).await;
    assert_eq!((r["type"].as_str(), r["code"].as_str(), &r["id"]), (Some("error"), Some(code), &Value::Null), "{r}");
    match c.next_msg().await {
        Some(Msg::Close(Some(f))) => {
            assert_eq!(f.code, 1013);
            assert_eq!(f.reason.as_str(), code);
        }
        other => panic!("expected close 1013 {code}, got {other:?}"),
    }
}

async fn assert_accepted(c: &mut Client) {
    let r = first_answer(c).await;
    assert_eq!(r["type"], "node_info_ok", "{r}");
}

/// Closes a client and waits until the node has closed its side too.
async fn close(c: Client) {
    c.close().await;
}

/// Connects from `source` until the node accepts (it may not yet have noticed a connection the
/// client just closed: the count is of connections the node holds open).
async fn connect_when_released(n: &TestNode, source: [u8; 4]) -> Client {
    let end = Instant::now() + RELEASE_WAIT;
    loop {
        let mut c = connect_from(n, source).await;
        let r = first_answer(&mut c).await;
        if r["type"] == "node_info_ok" {
            return c;
        }
        assert!(Instant::now() < end, "still refused: {r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const A: [u8; 4] = [127, 0, 0, 1];
const B: [u8; 4] = [127, 0, 0, 2];

#[tokio::test]
async fn node_info_reports_every_flag() {
    let n = start(Opts {
        handshake_timeout_ms: 4321,
        storage_bytes: 7_654_321,
        max_connections_per_address: 5,
        max_pending_handshakes: 6,
        max_requests_per_second: 7,
        max_subscriptions: 8,
        max_queued_bytes: 20_000_000,
        max_backfill: 9,
        max_replicate: 10,
        max_filter_items: 2000,
        max_total_filter_items: Some(40_001),
        ..opts()
    })
    .await;
    let mut c = Client::connect(&n.url).await;
    let r = c.req(json!({"type":"node_info"})).await;
    let limits: Limits = serde_json::from_value(r["limits"].clone()).unwrap();
    assert_eq!(
        limits,
        Limits {
            max_frame_bytes: 65536,
            max_entry_bytes: 16384,
            handshake_timeout_ms: 4321,
            max_backfill: 9,
            max_replicate: 10,
            storage_bytes: 7_654_321,
            max_subscriptions: 8,
            max_nesting_depth: 64,
            max_connections_per_address: 5,
            max_pending_handshakes: 6,
            max_requests_per_second: 7,
            max_queued_bytes: 20_000_000,
            max_notes: kith_node::MAX_NOTES,
            max_note_bytes: kith_node::MAX_NOTE_BYTES,
            max_follows: kith_node::MAX_FOLLOWS,
            max_filter_items: 2000,
            max_total_filter_items: 40_001,
        }
    );
    // The defaults.
    let n = start(opts()).await;
    let mut c = Client::connect(&n.url).await;
    let l = &c.req(json!({"type":"node_info"})).await["limits"];
    assert_eq!(
        [
            &l["max_connections_per_address"],
            &l["max_pending_handshakes"],
            &l["max_requests_per_second"],
            &l["max_subscriptions"],
            &l["max_queued_bytes"],
            &l["max_nesting_depth"],
            &l["max_filter_items"],
            &l["max_total_filter_items"]
        ],
        [
            &json!(64),
            &json!(256),
            &json!(1000),
            &json!(64),
            &json!(33554432),
            &json!(64),
            &json!(4096),
            &json!(1 << 20)
        ]
    );
}

#[tokio::test]
async fn start_refuses_limits_the_spec_does_not_allow() {
    let least_queue = 1000 * (16384 + 256) + 65536;
    let bad = [
        Opts { max_connections_per_address: 0, ..opts() },
        Opts { max_pending_handshakes: 0, ..opts() },
        Opts { max_requests_per_second: 0, ..opts() },
        Opts { max_requests_per_second: 3, ..opts() },
        Opts { max_subscriptions: 0, ..opts() },
        Opts { max_queued_bytes: least_queue - 1, ..opts() },
        Opts { max_requests_per_second: 1 << 53, ..opts() },
        Opts { max_backfill: 0, ..opts() },
        Opts { max_replicate: 0, ..opts() },
        Opts { max_replicate: 1001, ..opts() },
        Opts { max_backfill: 1 << 53, ..opts() },
        // HS-57: at least 1024 per connection, and node-wide at least 4 × 64 × 4096.
        Opts { max_filter_items: 1023, ..opts() },
        Opts { max_total_filter_items: Some(4 * 64 * 4096 - 1), ..opts() },
        Opts { max_filter_items: 1 << 53, max_total_filter_items: Some(1 << 60), ..opts() },
    ];
    for o in bad {
        let dir = tempfile::tempdir().unwrap();
        let seed = write_seed(dir.path(), &kith_proto::SecretKey::random());
        let e = kith_node::start(args(dir.path(), seed, &o)).await.unwrap_err();
        let text = e.to_string();
        assert!(text.contains("--max-"), "{text}");
    }
    // The queue bound follows max(max_backfill, max_replicate) (HS-54).
    let o = Opts { max_backfill: 1, max_replicate: 2, max_queued_bytes: 2 * (16384 + 256) + 65536 - 1, ..opts() };
    let dir = tempfile::tempdir().unwrap();
    let seed = write_seed(dir.path(), &kith_proto::SecretKey::random());
    let text = kith_node::start(args(dir.path(), seed, &o)).await.unwrap_err().to_string();
    assert!(text.contains("--max-queued-bytes"), "{text}");
    // The least values are accepted.
    let n = start(Opts {
        max_connections_per_address: 1,
        max_pending_handshakes: 1,
        max_requests_per_second: 4,
        max_subscriptions: 1,
        max_queued_bytes: least_queue,
        max_filter_items: 1024,
        max_total_filter_items: Some(4 * 1024),
        ..opts()
    })
    .await;
    let mut c = Client::connect(&n.url).await;
    let l = &c.req(json!({"type":"node_info"})).await["limits"];
    assert_eq!(
        [&l["max_queued_bytes"], &l["max_filter_items"], &l["max_total_filter_items"]],
        [&json!(least_queue), &json!(1024), &json!(4096)]
    );
    let least_small = 16384 + 256 + 65536;
    let n = start(Opts { max_backfill: 1, max_replicate: 1, max_queued_bytes: least_small, ..opts() }).await;
    let mut c = Client::connect(&n.url).await;
    let l = &c.req(json!({"type":"node_info"})).await["limits"];
    assert_eq!(
        [&l["max_backfill"], &l["max_replicate"], &l["max_queued_bytes"]],
        [&json!(1), &json!(1), &json!(least_small)]
    );
}

/// FRAME-42, FRAME-44: exactly `max_connections_per_address` from one address; the next is
/// refused (error, close 1013, nothing processed), another address is not affected, a refused
/// connection does not count, and closing one lets the next in.
#[tokio::test]
async fn connections_per_address_exactly() {
    let n = start(Opts { max_connections_per_address: 3, ..opts() }).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut c = connect_from(&n, A).await;
        assert_accepted(&mut c).await;
        open.push(c);
    }
    let mut refused = connect_from(&n, A).await;
    assert_refused(&mut refused, "too_many_connections").await;
    // Another address has its own count.
    let mut other = connect_from(&n, B).await;
    assert_accepted(&mut other).await;
    // A refused connection that the client keeps open does not count: close one, and the next
    // is accepted although the refused one is still there.
    let mut lingering = connect_from(&n, A).await;
    lingering.send(json!({"type":"node_info","id":1})).await;
    close(open.pop().unwrap()).await;
    let mut again = connect_when_released(&n, A).await;
    assert_eq!(again.req(json!({"type":"node_info"})).await["type"], "node_info_ok");
    let mut over = connect_from(&n, A).await;
    assert_refused(&mut over, "too_many_connections").await;
    // Authenticated connections count as well.
    close(again).await;
    let mut admin = connect_when_released(&n, A).await;
    assert_eq!(admin.handshake(n.node.node_key, &n.admin, now_ms() + 60_000).await["type"], "welcome");
    let mut over = connect_from(&n, A).await;
    assert_refused(&mut over, "too_many_connections").await;
    drop(lingering);
}

/// FRAME-43, FRAME-44: exactly `max_pending_handshakes` connections without `welcome`,
/// node-wide; `welcome` releases a slot at once, closing does too; per address is checked first.
#[tokio::test]
async fn pending_handshakes_exactly() {
    let n = start(Opts { max_pending_handshakes: 2, max_connections_per_address: 10, ..opts() }).await;
    let mut p1 = connect_from(&n, A).await;
    assert_accepted(&mut p1).await;
    let mut p2 = connect_from(&n, B).await;
    assert_accepted(&mut p2).await;
    // Node-wide: from either address.
    for source in [A, B] {
        let mut c = connect_from(&n, source).await;
        assert_refused(&mut c, "too_many_handshakes").await;
    }
    // A welcome frees the slot before it is sent.
    assert_eq!(p1.handshake(n.node.node_key, &n.admin, now_ms() + 60_000).await["type"], "welcome");
    let mut p3 = connect_from(&n, A).await;
    assert_accepted(&mut p3).await;
    let mut c = connect_from(&n, A).await;
    assert_refused(&mut c, "too_many_handshakes").await;
    // Closing a pending connection frees its slot.
    close(p2).await;
    let _p4 = connect_when_released(&n, B).await;
    // The welcomed connection never counted again: still refused at 2 pending.
    let mut c = connect_from(&n, B).await;
    assert_refused(&mut c, "too_many_handshakes").await;
    // A failed handshake (closed 1008) frees its slot too.
    let r = p3.handshake(n.node.node_key, &n.admin, now_ms() - 1).await;
    assert_eq!(r["code"], "cert_expired");
    p3.expect_close().await;
    let _p5 = connect_when_released(&n, A).await;

    // Both limits reached: per address is answered.
    let n = start(Opts { max_pending_handshakes: 2, max_connections_per_address: 2, ..opts() }).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = connect_from(&n, A).await;
        assert_accepted(&mut c).await;
        held.push(c);
    }
    let mut c = connect_from(&n, A).await;
    assert_refused(&mut c, "too_many_connections").await;
    let mut c = connect_from(&n, B).await;
    assert_refused(&mut c, "too_many_handshakes").await;
}

/// A handshake that times out frees its pending slot (HS-40 with FRAME-43).
#[tokio::test]
async fn handshake_timeout_frees_the_pending_slot() {
    let n = start(Opts { max_pending_handshakes: 1, handshake_timeout_ms: 1000, ..opts() }).await;
    let mut c = connect_from(&n, A).await;
    assert_accepted(&mut c).await;
    let mut refused = connect_from(&n, A).await;
    assert_refused(&mut refused, "too_many_handshakes").await;
    assert_eq!(c.recv().await["code"], "handshake_timeout");
    c.expect_close().await;
    let _next = connect_when_released(&n, A).await;
}

/// Sends `texts` back to back and reads one answer each; returns the answers and the time from
/// `since` until the last answer arrived (at least the time the node took).
async fn burst(c: &mut Client, texts: &[String], since: Instant) -> (Vec<Value>, f64) {
    for t in texts {
        c.feed(Out::Text(t.clone())).await;
    }
    c.flush().await;
    let mut answers = Vec::new();
    for _ in texts {
        answers.push(c.recv().await);
    }
    (answers, since.elapsed().as_secs_f64())
}

fn node_infos(from: u64, n: u64) -> Vec<String> {
    (from..from + n).map(|id| json!({"type":"node_info","id":id}).to_string()).collect()
}

/// FRAME-45..47: a full bucket of R at open, so R messages are never limited; a burst beyond
/// it gets `rate_limited` with each request's id for all but what the refill can have added;
/// answers stay in order; the connection stays usable and refills.
#[tokio::test]
async fn token_bucket_exactly() {
    const R: u64 = 10;
    let n = start(Opts { max_requests_per_second: R, ..opts() }).await;
    let opened = Instant::now();
    let mut c = Client::connect(&n.url).await;
    // R messages at once: every one found a token (FRAME-47).
    let (answers, _) = burst(&mut c, &node_infos(1, R), opened).await;
    for (i, a) in answers.iter().enumerate() {
        assert_eq!((a["type"].as_str(), a["id"].as_u64()), (Some("node_info_ok"), Some(i as u64 + 1)), "{a}");
    }
    // 3R more at once: at most R·T + 1 more can have found a token, T the time since open.
    let (answers, t) = burst(&mut c, &node_infos(100, 3 * R), opened).await;
    let mut ok = 0;
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a["id"].as_u64(), Some(100 + i as u64), "answers in request order: {a}");
        match (a["type"].as_str(), a["code"].as_str()) {
            (Some("node_info_ok"), _) => ok += 1,
            (Some("error"), Some("rate_limited")) => {}
            _ => panic!("{a}"),
        }
    }
    let allowed = (R as f64 * t + 1.0).floor() as u64;
    eprintln!("token bucket: {ok} of {} accepted within {t:.3} s (bound {allowed})", 3 * R);
    assert!(ok <= allowed, "{ok} of {} accepted within {t:.3} s; the bucket allows {allowed}", 3 * R);
    assert!(ok < 3 * R || t >= 2.0, "none limited within {t:.3} s");
    // Still open and usable once a token has come back (1/R s at least).
    tokio::time::sleep(Duration::from_millis(1000 / R + 10)).await;
    assert_eq!(c.req(json!({"type":"node_info"})).await["type"], "node_info_ok");
}

/// FRAME-46 with 06 §3: over the rate, a message that fails steps 1 to 6 gets that step's error;
/// one that passes them gets `rate_limited`, even when its own rules (step 9, 10) would fail.
#[tokio::test]
async fn over_the_rate_steps_one_to_six_come_first() {
    const R: u64 = 4;
    let n = start(Opts { max_requests_per_second: R, ..opts() }).await;
    let opened = Instant::now();
    let mut c = Client::connect(&n.url).await;
    let mut texts = node_infos(1, R);
    texts.extend([
        "{not json".to_owned(),
        r#"{"type":"teleport","id":7}"#.to_owned(),
        r#"{"type":7,"id":8}"#.to_owned(),
        r#"{"type":"node_info"}"#.to_owned(),
        r#"{"type":"node_info","id":1.5}"#.to_owned(),
        r#"{"type":"get","id":9,"entry_id":"ZZ"}"#.to_owned(),
        r#"{"type":"account","id":10}"#.to_owned(),
        r#"{"type":"node_info","id":11}"#.to_owned(),
    ]);
    let (answers, t) = burst(&mut c, &texts, opened).await;
    let codes: Vec<(Value, Value)> =
        answers[R as usize..].iter().map(|a| (a["code"].clone(), a["id"].clone())).collect();
    let expected_errors = [
        (json!("malformed_frame"), Value::Null),
        (json!("unknown_type"), json!(7)),
        (json!("invalid_request"), json!(8)),
        (json!("invalid_request"), Value::Null),
        (json!("malformed_frame"), Value::Null),
    ];
    assert_eq!(codes[..5], expected_errors);
    eprintln!("over the rate: burst answered within {t:.3} s");
    // Each of those took a token only if one was there; within 1/R s none had refilled.
    if t < 1.0 / R as f64 {
        assert_eq!(
            codes[5..],
            [(json!("rate_limited"), json!(9)), (json!("rate_limited"), json!(10)), (json!("rate_limited"), json!(11))]
        );
    }
    // Over the rate, a binary message is still malformed_frame, an oversized one still
    // frame_too_large and closed.
    let opened = Instant::now();
    let mut c = Client::connect(&n.url).await;
    // R + 1 binary messages (the last over the rate), then a request over the rate.
    let mut msgs: Vec<Out> = (0..=R).map(|i| Out::Binary(vec![i as u8])).collect();
    msgs.push(Out::Text(r#"{"type":"node_info","id":4}"#.into()));
    let (answers, t) = burst_msgs(&mut c, msgs, opened).await;
    let last = R as usize + 1;
    for a in &answers[..last] {
        assert_eq!((a["code"].as_str(), &a["id"]), (Some("malformed_frame"), &Value::Null), "{a}");
    }
    if t < 1.0 / R as f64 {
        assert_eq!((answers[last]["code"].as_str(), answers[last]["id"].as_u64()), (Some("rate_limited"), Some(4)));
    }
    let big = format!(r#"{{"type":"node_info","id":5,"pad":"{}"}}"#, "x".repeat(70_000));
    c.send_text(big).await;
    assert_eq!(c.recv().await["code"], "frame_too_large");
    assert_eq!(c.expect_close().await.unwrap().code, 1009);
}

/// Like [`burst`] for any messages, each answered once.
async fn burst_msgs(c: &mut Client, msgs: Vec<Out>, since: Instant) -> (Vec<Value>, f64) {
    let count = msgs.len();
    for m in msgs {
        c.feed(m).await;
    }
    c.flush().await;
    let mut answers = Vec::new();
    for _ in 0..count {
        answers.push(c.recv().await);
    }
    (answers, since.elapsed().as_secs_f64())
}

/// FRAME-46: a rate-limited `hello` or `auth` does not close the connection (HS-35 does not
/// apply) and leaves the handshake where it was; resent later, the handshake completes.
#[tokio::test]
async fn rate_limited_hello_and_auth_can_be_resent() {
    use kith_proto::cert::Certificate;
    use kith_proto::handshake::{ClientConfig, ClientHandshake};
    use kith_proto::{ClientFrame, RequestId, SecretKey, ServerFrame};
    const R: u64 = 4;
    let n = start(Opts { max_requests_per_second: R, ..opts() }).await;
    let opened = Instant::now();
    let mut c = Client::connect(&n.url).await;
    let peer = SecretKey::random();
    let cert = Certificate::issue(&n.admin, peer.public(), now_ms() + 60_000);
    let config = ClientConfig { peer, cert, expected_node: n.node.node_key, version: "kith/1".into() };
    let (mut hs, hello) = ClientHandshake::start(config, rand_seed(), RequestId::small(50));
    let hello_text = serde_json::to_string(&ClientFrame::Hello(hello)).unwrap();
    let mut texts = node_infos(1, R);
    texts.push(hello_text.clone());
    let (answers, t) = burst(&mut c, &texts, opened).await;
    let refill_wait = Duration::from_millis(1000 / R + 10);
    eprintln!("hello burst answered within {t:.3} s");
    if t < 1.0 / R as f64 {
        let a = &answers[R as usize];
        assert_eq!((a["code"].as_str(), a["id"].as_u64()), (Some("rate_limited"), Some(50)), "{a}");
        // Still open and still before the hello: the same hello, resent once a token is back,
        // gets its challenge.
        tokio::time::sleep(refill_wait).await;
        c.send_text(hello_text).await;
    }
    let ch = c.recv().await;
    assert_eq!(ch["type"], "challenge", "{ch}");
    let ServerFrame::Challenge(challenge) = ServerFrame::parse(&ch.to_string()).unwrap() else { unreachable!() };
    let auth = hs.handle_challenge(&challenge, RequestId::small(51)).unwrap();
    let auth_text = serde_json::to_string(&ClientFrame::Auth(auth)).unwrap();
    // Empty the bucket again, then the auth over the rate.
    tokio::time::sleep(refill_wait).await;
    let since = Instant::now();
    let mut texts = Vec::new();
    let mut sent = 0;
    // Up to R + 1 node_info may be answered; send enough that the bucket is surely empty.
    texts.extend(node_infos(10, R + 1));
    texts.push(auth_text.clone());
    sent += texts.len();
    let (answers, t) = burst(&mut c, &texts, since).await;
    assert_eq!(answers.len(), sent);
    let last = answers.last().unwrap();
    if last["type"] != "welcome" {
        assert_eq!((last["code"].as_str(), last["id"].as_u64()), (Some("rate_limited"), Some(51)), "{last}");
        tokio::time::sleep(refill_wait).await;
        c.send_text(auth_text).await;
        let w = c.recv().await;
        assert_eq!(w["type"], "welcome", "{w}");
    } else {
        // Only when the node was slow enough for a token to come back.
        assert!(t >= 1.0 / R as f64, "auth found a token within {t:.3} s after {} messages", R + 1);
    }
    tokio::time::sleep(refill_wait).await;
    assert_eq!(c.req(json!({"type":"account"})).await["type"], "account_ok");
}

/// FEED-11 with the flag: exactly `max_subscriptions`; one more is `invalid_request`, the
/// connection stays open, and an unsubscribe makes room.
#[tokio::test]
async fn subscriptions_exactly() {
    let n = start(Opts { max_subscriptions: 3, ..opts() }).await;
    let mut c = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let author = n.node.node_key.to_string();
    for id in 1..=3 {
        c.send(json!({"type":"subscribe","id":id,"filter":{"authors":[author]},"backfill":0})).await;
        assert_eq!(c.recv().await["type"], "subscribe_ok");
        assert_eq!(c.recv().await["type"], "stored_end");
    }
    c.req_err(json!({"type":"subscribe","filter":{"authors":[author]}}), "invalid_request").await;
    assert_eq!(c.req(json!({"type":"unsubscribe","sub":2})).await["type"], "unsubscribe_ok");
    c.send(json!({"type":"subscribe","id":4,"filter":{"authors":[author]},"backfill":0})).await;
    assert_eq!(c.recv().await["type"], "subscribe_ok");
    assert_eq!(c.recv().await["type"], "stored_end");
    c.req_err(json!({"type":"subscribe","filter":{"authors":[author]}}), "invalid_request").await;
}

/// `n` distinct thread ids starting at `from`.
fn threads(from: u64, n: u64) -> Vec<String> {
    (from..from + n).map(|i| format!("{i:064x}")).collect()
}

async fn subscribe(c: &mut Client, id: u64, threads: Vec<String>) {
    c.send(json!({"type":"subscribe","id":id,"filter":{"threads":threads},"backfill":0})).await;
    assert_eq!(c.recv().await["type"], "subscribe_ok");
    assert_eq!(c.recv().await["type"], "stored_end");
}

/// FEED-34 and FEED-36 with the flag: filter items summed over the connection's subscriptions
/// up to `max_filter_items` exactly; one more is `invalid_request` and the connection stays
/// open; an unsubscribe frees its items, and a new connection starts from none.
#[tokio::test]
async fn filter_items_exactly() {
    let n = start(Opts { max_filter_items: 1024, ..opts() }).await;
    let mut c = Client::login(&n.url, n.node.node_key, &n.admin).await;
    subscribe(&mut c, 1, threads(0, 600)).await;
    subscribe(&mut c, 2, threads(0, 424)).await;
    c.req_err(json!({"type":"subscribe","filter":{"threads":threads(5000, 1)}}), "invalid_request").await;
    assert_eq!(c.req(json!({"type":"unsubscribe","sub":1})).await["type"], "unsubscribe_ok");
    subscribe(&mut c, 3, threads(1000, 600)).await;
    c.req_err(json!({"type":"subscribe","filter":{"threads":threads(5000, 1)}}), "invalid_request").await;
    drop(c);
    let mut c = Client::login(&n.url, n.node.node_key, &n.admin).await;
    subscribe(&mut c, 1, threads(0, 970)).await;
}

/// FEED-35 and FEED-36 across addresses (the node counts 127.0.0.N as address N): with one
/// connection per address, 1024 items per connection and the least node-wide bound HS-57
/// allows (4 × 1 × 1024), four addresses fill the node and a fifth is answered `busy` and stays
/// open; an unsubscribe and a closed connection each release their items node-wide.
#[tokio::test]
async fn total_filter_items_across_addresses() {
    let n = start(Opts {
        max_connections_per_address: 1,
        max_filter_items: 1024,
        max_total_filter_items: Some(4096),
        ..opts()
    })
    .await;
    let from = |i: u8| std::net::Ipv4Addr::new(127, 0, 0, i);
    let mut holders = Vec::new();
    for i in 1..=4 {
        let mut c = Client::login_from(&n.url, from(i), n.node.node_key, &n.admin).await;
        subscribe(&mut c, 1, threads(0, 600)).await;
        subscribe(&mut c, 2, threads(0, 424)).await;
        holders.push(c);
    }
    let mut late = Client::login_from(&n.url, from(5), n.node.node_key, &n.admin).await;
    late.req_err(json!({"type":"subscribe","filter":{"threads":threads(0, 1)}}), "busy").await;
    assert_eq!(late.req(json!({"type":"node_info"})).await["type"], "node_info_ok");
    // An unsubscribe frees its 600 items node-wide, exactly.
    assert_eq!(holders[0].req(json!({"type":"unsubscribe","sub":1})).await["type"], "unsubscribe_ok");
    subscribe(&mut late, 1, threads(0, 600)).await;
    late.req_err(json!({"type":"subscribe","filter":{"threads":threads(0, 1)}}), "busy").await;
    // A closed connection frees the rest of its items once the node has ended it.
    drop(holders.remove(0));
    let deadline = std::time::Instant::now() + Duration::from_secs(12);
    loop {
        let id = late.id();
        late.send(json!({"type":"subscribe","id":id,"filter":{"threads":threads(0, 424)},"backfill":0})).await;
        let r = late.recv().await;
        if r["type"] == "subscribe_ok" {
            assert_eq!(late.recv().await["type"], "stored_end");
            break;
        }
        assert_eq!(r["code"], "busy", "{r}");
        assert!(std::time::Instant::now() < deadline, "the closed connection's items were not released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Full again (`late` itself is at its own bound: another address asks).
    let mut other = Client::login_from(&n.url, from(6), n.node.node_key, &n.admin).await;
    other.req_err(json!({"type":"subscribe","filter":{"threads":threads(0, 1)}}), "busy").await;
}

/// FRAME-48 and FRAME-35 at the least queue bound HS-54 allows: a reader that takes nothing
/// while the node queues at most `max_queued_bytes` is never closed; one that lets far more pile
/// up is closed with 1013 `slow_consumer` after the frames queued before.
#[tokio::test]
async fn outbound_queue_is_bounded_in_bytes() {
    let least = 1000 * (16384 + 256) + 65536;
    let n = start(Opts { max_queued_bytes: least, ..opts() }).await;
    let mut c = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let (req, len) = big_feed(&mut c, 100).await;
    assert!(len > 1_600_000, "{len}");
    // Within: everything this connection is ever sent from now on fits the bound.
    let within = least as usize / len;
    let mut reader = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let (answers, close) = flood_then_read(&mut reader, &req, within).await;
    assert_eq!((answers, close), (within, None));
    assert_eq!(reader.req(json!({"type":"node_info"})).await["type"], "node_info_ok");
    // Beyond: 40 answers (65 MB) cannot all sit in the bound plus the socket buffers.
    let mut slow = Client::login(&n.url, n.node.node_key, &n.admin).await;
    let (answers, close) = flood_then_read(&mut slow, &req, 40).await;
    assert!(answers < 40, "{answers}");
    assert_eq!(close, Some((1013, "slow_consumer".to_owned())));
    // Others carry on.
    assert_eq!(c.req(json!({"type":"node_info"})).await["type"], "node_info_ok");
}

/// The fixed limits stay fixed: 65536 bytes (FRAME-5) and depth 64 (ENC-8) exactly.
#[tokio::test]
async fn frame_size_and_depth_exactly() {
    let n = start(opts()).await;
    let mut c = Client::connect(&n.url).await;
    let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    // The frame object is level 1: a member nested 63 deep makes 64.
    c.send_text(format!(r#"{{"type":"node_info","id":1,"x":{}}}"#, nested(63))).await;
    assert_eq!(c.recv().await["type"], "node_info_ok");
    c.send_text(format!(r#"{{"type":"node_info","id":2,"x":{}}}"#, nested(64))).await;
    let r = c.recv().await;
    assert_eq!((r["code"].as_str(), &r["id"]), (Some("malformed_frame"), &Value::Null));
    let frame = |size: usize| {
        let head = r#"{"type":"node_info","id":3,"pad":""}"#;
        format!(r#"{{"type":"node_info","id":3,"pad":"{}"}}"#, "x".repeat(size - head.len()))
    };
    c.send_text(frame(65536)).await;
    assert_eq!(c.recv().await["type"], "node_info_ok");
    c.send_text(frame(65537)).await;
    assert_eq!(c.recv().await["code"], "frame_too_large");
    assert_eq!(c.expect_close().await.unwrap().code, 1009);
}

/// Sends a fresh admin hello on `c` and returns the node's answer.
async fn hello(n: &TestNode, c: &mut Client) -> Value {
    use kith_proto::cert::Certificate;
    use kith_proto::handshake::{ClientConfig, ClientHandshake};
    use kith_proto::{ClientFrame, RequestId, SecretKey};
    let peer = SecretKey::random();
    let cert = Certificate::issue(&n.admin, peer.public(), now_ms() + 60_000);
    let config = ClientConfig { peer, cert, expected_node: n.node.node_key, version: "kith/1".into() };
    let (_, hello) = ClientHandshake::start(config, rand_seed(), RequestId::small(1));
    c.send_text(serde_json::to_string(&ClientFrame::Hello(hello)).unwrap()).await;
    c.recv().await
}

/// HS-51: the hellos of one address are processed at most at `--max-hellos-per-second` after a
/// burst of as many; later ones wait (none is refused); a wait past the handshake timeout ends
/// in `handshake_timeout`.
#[tokio::test]
async fn hellos_are_paced_per_address() {
    const H: u32 = 4;
    let n = start(Opts { max_hellos_per_second: u64::from(H), ..opts() }).await;
    let mut conns = Vec::new();
    for _ in 0..2 * H {
        conns.push(connect_from(&n, A).await);
    }
    let since = Instant::now();
    let answers = futures_util::future::join_all(conns.iter_mut().map(|c| hello(&n, c))).await;
    let took = since.elapsed();
    assert!(answers.iter().all(|a| a["type"] == "challenge"), "{answers:?}");
    // The last H waited for turns 1/H s apart after the burst.
    assert!(took >= Duration::from_millis(990), "{} hellos in {took:?}", 2 * H);
    // Another address has its own burst.
    let mut b = connect_from(&n, B).await;
    assert_eq!(hello(&n, &mut b).await["type"], "challenge");

    // The least handshake timeout (HS-8) against one hello a second: of two hellos sent together
    // after the burst, one gets the next turn (1 s later) and the other's turn (2 s later) comes
    // after its deadline.
    let n = start(Opts { max_hellos_per_second: 1, handshake_timeout_ms: 1000, ..opts() }).await;
    let mut first = connect_from(&n, A).await;
    assert_eq!(hello(&n, &mut first).await["type"], "challenge");
    let mut second = connect_from(&n, A).await;
    let mut third = connect_from(&n, A).await;
    let (r2, r3) = tokio::join!(hello(&n, &mut second), hello(&n, &mut third));
    let mut kinds = [r2["type"].as_str().unwrap_or(""), r3["type"].as_str().unwrap_or("")];
    kinds.sort();
    assert_eq!(kinds, ["challenge", "error"], "{r2} {r3}");
    let r = if r2["type"] == "error" { r2 } else { r3 };
    assert_eq!((r["code"].as_str(), &r["id"]), (Some("handshake_timeout"), &Value::Null), "{r}");
}
