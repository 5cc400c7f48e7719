//! Framing and encoding robustness (spec chapters 01 and 06): `ROB-*`. Most cases are pure
//! scripts of raw frames and expected answers.

use std::time::Duration;

use kith_proto::{ClientFrame, ErrorCode, ServerFrame};

use crate::case::{
    check, expect_close_only, expect_error, play, Case, CaseResult, Ctx, Failure, IdIs, Level::*, Ops, Step,
};
use crate::client::DEFAULT_WAIT;
use crate::{run, want};

use IdIs::{Is, Null};
use Step::*;

/// Plays `steps` on a fresh connection, logged in as a fresh user when `authed`.
async fn scripted(ctx: &mut Ctx, authed: bool, steps: Vec<Step>) -> CaseResult {
    let mut conn = if authed { ctx.user().await?.conn } else { ctx.connect().await? };
    play(&mut conn, &steps).await
}

/// Sends one raw `frame` on a fresh connection (logged in when `authed`) and expects the error
/// `code` with the id `id`, after which the connection must still be open.
async fn refused_stays_open(ctx: &mut Ctx, authed: bool, frame: &str, id: IdIs, code: ErrorCode) -> CaseResult {
    scripted(ctx, authed, vec![send(frame), ExpectError(id, code), StillOpen]).await
}

fn send(s: &str) -> Step {
    Send(s.to_owned())
}

/// A node_info request padded with an unknown member to exactly `len` bytes.
fn padded_node_info(len: usize) -> String {
    let head = r#"{"type":"node_info","id":7,"pad":""#;
    let tail = r#""}"#;
    format!("{head}{}{tail}", "x".repeat(len.saturating_sub(head.len() + tail.len())))
}

/// The robustness cases.
pub fn cases() -> Vec<Case> {
    let mut all = vec![
        Case::new(
            "ROB-JSON-001",
            Must,
            &["ENC-1", "FRAME-10", "FRAME-17"],
            "text that is not JSON is malformed_frame (id null); the connection stays open",
            run!(|ctx| {
                scripted(
                    &mut ctx,
                    true,
                    vec![send(r#"{"type":"account","id":1"#), ExpectError(Null, ErrorCode::MalformedFrame), StillOpen],
                )
                .await
            }),
        ),
        Case::new(
            "ROB-JSON-002",
            Must,
            &["ENC-9", "FRAME-10"],
            "a JSON array is malformed_frame",
            run!(|ctx| {
                refused_stays_open(&mut ctx, true, r#"[{"type":"account","id":1}]"#, Null, ErrorCode::MalformedFrame)
                    .await
            }),
        ),
        Case::new(
            "ROB-JSON-003",
            Must,
            &["ENC-2"],
            "a payload starting with a byte-order mark is malformed_frame",
            run!(|ctx| {
                refused_stays_open(
                    &mut ctx,
                    true,
                    "\u{feff}{\"type\":\"account\",\"id\":1}",
                    Null,
                    ErrorCode::MalformedFrame,
                )
                .await
            }),
        ),
        Case::new(
            "ROB-JSON-PREAUTH-001",
            Must,
            &["ENC-1", "FRAME-10"],
            "malformed JSON before the handshake is malformed_frame and the connection stays open",
            run!(|ctx| {
                scripted(
                    &mut ctx,
                    false,
                    vec![send("nonsense"), ExpectError(Null, ErrorCode::MalformedFrame), StillOpen],
                )
                .await
            }),
        ),
        Case::new(
            "ROB-DUPKEY-001",
            Must,
            &["ENC-3"],
            "an object with a duplicate member is malformed_frame",
            run!(|ctx| {
                refused_stays_open(
                    &mut ctx,
                    true,
                    r#"{"type":"account","id":1,"id":2}"#,
                    Null,
                    ErrorCode::MalformedFrame,
                )
                .await
            }),
        ),
        Case::new(
            "ROB-DUPKEY-002",
            Must,
            &["ENC-3"],
            "duplicate members that are equal only after escape processing are malformed_frame",
            run!(|ctx| {
                refused_stays_open(
                    &mut ctx,
                    true,
                    r#"{"type":"follows","id":1,"x":1,"\u0078":2}"#,
                    Null,
                    ErrorCode::MalformedFrame,
                )
                .await
            }),
        ),
        Case::new(
            "ROB-FLOAT-001",
            Must,
            &["ENC-4"],
            "a number with a fraction anywhere in the frame is malformed_frame",
            run!(|ctx| {
                refused_stays_open(
                    &mut ctx,
                    true,
                    r#"{"type":"follows","id":1,"x":1.0}"#,
                    Null,
                    ErrorCode::MalformedFrame,
                )
                .await
            }),
        ),
        Case::new(
            "ROB-FLOAT-002",
            Must,
            &["ENC-4"],
            "a number with an exponent is malformed_frame",
            run!(|ctx| {
                refused_stays_open(
                    &mut ctx,
                    true,
                    r#"{"type":"follows","id":1,"x":1e3}"#,
                    Null,
                    ErrorCode::MalformedFrame,
                )
                .await
            }),
        ),
        Case::new(
            "ROB-NEGZERO-001",
            Must,
            &["ENC-5"],
            "the number -0 is malformed_frame",
            run!(|ctx| {
                refused_stays_open(
                    &mut ctx,
                    true,
                    r#"{"type":"follows","id":1,"x":-0}"#,
                    Null,
                    ErrorCode::MalformedFrame,
                )
                .await
            }),
        ),
        Case::new(
            "ROB-BIGINT-001",
            Must,
            &["ENC-6"],
            "an integer above 2^53-1 anywhere in the frame is malformed_frame",
            run!(|ctx| {
                refused_stays_open(
                    &mut ctx,
                    true,
                    r#"{"type":"follows","id":1,"x":9007199254740992}"#,
                    Null,
                    ErrorCode::MalformedFrame,
                )
                .await
            }),
        ),
        Case::new(
            "ROB-SURROGATE-001",
            Must,
            &["ENC-7"],
            "a lone surrogate escape is malformed_frame",
            run!(|ctx| {
                refused_stays_open(
                    &mut ctx,
                    true,
                    r#"{"type":"follows","id":1,"x":"\ud800"}"#,
                    Null,
                    ErrorCode::MalformedFrame,
                )
                .await
            }),
        ),
        Case::new(
            "ROB-DEPTH-001",
            Must,
            &["ENC-8"],
            "nesting deeper than 64 is malformed_frame",
            run!(|ctx| {
                let deep = format!(r#"{{"type":"follows","id":1,"x":{}{}}}"#, "[".repeat(80), "]".repeat(80));
                scripted(&mut ctx, true, vec![Send(deep), ExpectError(Null, ErrorCode::MalformedFrame), StillOpen])
                    .await
            }),
        ),
        Case::new(
            "ROB-DEPTH-002",
            Must,
            &["ENC-8"],
            "nesting depth 64 exactly is accepted, depth 65 is malformed_frame",
            run!(|ctx| {
                // The frame object and 63 arrays: depth 64; one more array: 65.
                let nested = |arrays: usize| {
                    format!(r#"{{"type":"follows","id":1,"x":{}{}}}"#, "[".repeat(arrays), "]".repeat(arrays))
                };
                scripted(
                    &mut ctx,
                    true,
                    vec![
                        Send(nested(63)),
                        ExpectType("follows_ok", Is(1)),
                        Send(nested(64)),
                        ExpectError(Null, ErrorCode::MalformedFrame),
                        StillOpen,
                    ],
                )
                .await
            }),
        ),
        Case::new(
            "ROB-BINARY-001",
            Must,
            &["FRAME-2"],
            "a binary message is malformed_frame (id null) and the connection stays open",
            run!(|ctx| {
                scripted(
                    &mut ctx,
                    true,
                    vec![
                        SendBinary(br#"{"type":"account","id":1}"#.to_vec()),
                        ExpectError(Null, ErrorCode::MalformedFrame),
                        StillOpen,
                    ],
                )
                .await
            }),
        ),
        Case::new(
            "ROB-UTF8-001",
            Must,
            &["FRAME-3"],
            "a text message that is not UTF-8 fails the connection with close code 1007",
            run!(|ctx| {
                let mut conn = ctx.user().await?.conn;
                conn.send_text_bytes(b"{\"type\":\"follows\",\"id\":1,\"x\":\"\xff\xfe\"}".to_vec()).await?;
                play(&mut conn, &[ExpectClose(3000, Some(1007))]).await
            }),
        ),
        Case::new(
            "ROB-UNKNOWN-TYPE-001",
            Must,
            &["FRAME-12", "FRAME-17"],
            "an unknown type is unknown_type with the id echoed; the connection stays open",
            run!(|ctx| {
                refused_stays_open(&mut ctx, true, r#"{"type":"teleport","id":42}"#, Is(42), ErrorCode::UnknownType)
                    .await
            }),
        ),
        Case::new(
            "ROB-UNKNOWN-TYPE-002",
            Must,
            &["FRAME-12"],
            "an unknown type before the handshake is unknown_type",
            run!(|ctx| {
                refused_stays_open(&mut ctx, false, r#"{"type":"teleport","id":43}"#, Is(43), ErrorCode::UnknownType)
                    .await
            }),
        ),
        Case::new(
            "ROB-NO-TYPE-001",
            Must,
            &["FRAME-11", "FRAME-17"],
            "a frame without `type` is invalid_request with the id echoed",
            run!(|ctx| {
                scripted(
                    &mut ctx,
                    true,
                    vec![send(r#"{"id":5}"#), ExpectError(Is(5), ErrorCode::InvalidRequest), StillOpen],
                )
                .await
            }),
        ),
        Case::new(
            "ROB-NO-TYPE-002",
            Must,
            &["FRAME-11"],
            "a frame whose `type` is a number is invalid_request",
            run!(|ctx| {
                scripted(
                    &mut ctx,
                    true,
                    vec![send(r#"{"type":7,"id":6}"#), ExpectError(Is(6), ErrorCode::InvalidRequest), StillOpen],
                )
                .await
            }),
        ),
        Case::new(
            "ROB-NO-ID-001",
            Must,
            &["FRAME-13", "FRAME-17"],
            "a request without `id` is invalid_request with id null",
            run!(|ctx| {
                scripted(
                    &mut ctx,
                    true,
                    vec![send(r#"{"type":"account"}"#), ExpectError(Null, ErrorCode::InvalidRequest), StillOpen],
                )
                .await
            }),
        ),
        Case::new(
            "ROB-ID-STRING-001",
            Must,
            &["FRAME-13", "FRAME-17"],
            "a request whose `id` is a string is invalid_request with id null",
            run!(|ctx| {
                refused_stays_open(&mut ctx, true, r#"{"type":"account","id":"1"}"#, Null, ErrorCode::InvalidRequest)
                    .await
            }),
        ),
        Case::new(
            "ROB-ID-NEGATIVE-001",
            Must,
            &["FRAME-13", "FRAME-17"],
            "a request whose `id` is negative is invalid_request with id null",
            run!(|ctx| {
                refused_stays_open(&mut ctx, true, r#"{"type":"account","id":-1}"#, Null, ErrorCode::InvalidRequest)
                    .await
            }),
        ),
        Case::new(
            "ROB-ID-MAX-001",
            Must,
            &["FRAME-13"],
            "the largest id, 2^53-1, is echoed exactly",
            run!(|ctx| {
                scripted(
                    &mut ctx,
                    true,
                    vec![
                        send(r#"{"type":"account","id":9007199254740991}"#),
                        ExpectType("account_ok", Is(9007199254740991)),
                    ],
                )
                .await
            }),
        ),
        Case::new(
            "ROB-ID-ZERO-001",
            Must,
            &["FRAME-13", "FRAME-18"],
            "id 0 is a valid request id",
            run!(|ctx| {
                scripted(&mut ctx, true, vec![send(r#"{"type":"account","id":0}"#), ExpectType("account_ok", Is(0))])
                    .await
            }),
        ),
        Case::new(
            "ROB-UNKNOWN-FIELD-001",
            Must,
            &["FRAME-15"],
            "unknown members of a request are ignored",
            run!(|ctx| {
                scripted(
                    &mut ctx,
                    true,
                    vec![send(r#"{"type":"account","id":3,"future":{"x":[1,2]}}"#), ExpectType("account_ok", Is(3))],
                )
                .await
            }),
        ),
        Case::new(
            "ROB-INVALID-REQ-001",
            Must,
            &["FRAME-16"],
            "a member of the wrong type is invalid_request",
            run!(|ctx| {
                scripted(
                    &mut ctx,
                    true,
                    vec![
                        send(r#"{"type":"follows","id":3}"#),
                        ExpectType("follows_ok", Is(3)),
                        send(r#"{"type":"follow","id":4,"key":17}"#),
                        ExpectError(Is(4), ErrorCode::InvalidRequest),
                        StillOpen,
                    ],
                )
                .await
            }),
        ),
        Case::new(
            "ROB-INVALID-REQ-002",
            Must,
            &["FRAME-16"],
            "a request lacking a required member is invalid_request",
            run!(|ctx| {
                refused_stays_open(&mut ctx, true, r#"{"type":"unsubscribe","id":8}"#, Is(8), ErrorCode::InvalidRequest)
                    .await
            }),
        ),
        Case::new(
            "ROB-NULL-001",
            Must,
            &["FRAME-40", "FRAME-16"],
            "an optional member given as null is invalid_request",
            run!(|ctx| {
                scripted(&mut ctx, true, vec![send(r#"{"type":"subscribe","id":9,"filter":{"authors":[],"threads":[],"mentions":[]},"backfill":null}"#), ExpectError(Is(9), ErrorCode::InvalidRequest), StillOpen]).await
            }),
        ),
        Case::new(
            "ROB-CHECK-ORDER-001",
            Must,
            &["FRAME-41", "FRAME-16"],
            "a request with a mistyped member and a bad key gets the code of one of its defects",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s
                    .call_json(serde_json::json!({"type": "replicate", "author": "zz", "after": 0, "limit": "ten"}))
                    .await?;
                match answer {
                    ServerFrame::Error(e) if matches!(e.code, ErrorCode::InvalidRequest | ErrorCode::BadEncoding) => {
                        play(&mut s.conn, &[StillOpen]).await
                    }
                    other => Err(Failure::fail("invalid_request or bad_encoding", other.to_text())),
                }
            }),
        ),
        Case::new(
            "ROB-DECODE-ORDER-001",
            Must,
            &["FEED-8"],
            "filter keys are decoded in the listed order: a bad author is reported before a weak mention",
            run!(|ctx| {
                let text = format!(
                    r#"{{"type":"subscribe","id":11,"filter":{{"authors":["AB"],"threads":[],"mentions":["{}"]}}}}"#,
                    crate::cases::handshake::WEAK_KEY
                );
                scripted(&mut ctx, true, vec![Send(text), ExpectError(Is(11), ErrorCode::BadEncoding), StillOpen]).await
            }),
        ),
        Case::new(
            "ROB-SEVERAL-001",
            Must,
            &["ENTRY-5", "ENTRY-9"],
            "an entry whose author is not hex and whose kind breaks the grammar is bad_encoding: ENTRY-5 decides before ENTRY-9",
            run!(|ctx| {
                // 03 §3: the entry's checks run in order and the first that fails decides;
                // 06 §3 ("where the order matters to interoperability it is fixed: the checks
                // of entries"), so FRAME-41's freedom does not reach inside an entry.
                let mut s = ctx.user().await?;
                let mut feed = crate::case::Feed::new(&s.user);
                let mut v = crate::case::entry_json(&feed.next("x"));
                v["author"] = serde_json::json!("AB");
                v["kind"] = serde_json::json!("NOT A KIND");
                let answer = s.call_json(serde_json::json!({"type": "publish", "entry": v})).await?;
                expect_error(answer, ErrorCode::BadEncoding)?;
                play(&mut s.conn, &[StillOpen]).await
            }),
        ),
        Case::new(
            "ROB-OVERSIZE-001",
            Must,
            &["FRAME-5", "FRAME-6", "FRAME-31", "FRAME-32"],
            "a frame over 65536 bytes is frame_too_large (id null), then nothing but close 1009",
            run!(|ctx| {
                let mut conn = ctx.user().await?.conn;
                conn.send_text(&padded_node_info(65537)).await?;
                play(&mut conn, &[ExpectError(Null, ErrorCode::FrameTooLarge)]).await?;
                expect_close_only(&mut conn, "error frame_too_large", 1009, "frame_too_large").await
            }),
        ),
        Case::new(
            "ROB-OVERSIZE-002",
            Must,
            &["FRAME-32", "FRAME-33"],
            "after frame_too_large the node answers nothing more on the connection",
            run!(|ctx| {
                let mut conn = ctx.user().await?.conn;
                conn.send_text(&padded_node_info(70000)).await?;
                let _ = conn.send_text(r#"{"type":"account","id":99}"#).await;
                play(&mut conn, &[ExpectError(Null, ErrorCode::FrameTooLarge)]).await?;
                match conn.recv(Duration::from_secs(3)).await {
                    Ok(crate::client::Incoming::Closed(_)) => Ok(()),
                    Ok(crate::client::Incoming::Text(t)) => Err(Failure::fail("no frame after frame_too_large", t)),
                    Ok(crate::client::Incoming::Binary(_)) => {
                        Err(Failure::fail("no frame after frame_too_large", "binary"))
                    }
                    Err(e) => Err(Failure::fail("the connection to close", e.to_string())),
                }
            }),
        ),
        Case::new(
            "ROB-MAXSIZE-001",
            Must,
            &["FRAME-4"],
            "a frame of exactly 65536 bytes is accepted",
            run!(|ctx| {
                let text = padded_node_info(65536);
                check(text.len() == 65536, "a 65536-byte frame", text.len())?;
                scripted(&mut ctx, true, vec![Send(text), ExpectType("node_info_ok", Is(7))]).await
            }),
        ),
        Case::new(
            "ROB-ORDER-001",
            Must,
            &["FRAME-18", "FRAME-19", "FRAME-20"],
            "pipelined requests, publishes among them, are answered once each, in order",
            run!(|ctx| {
                let mut conn = ctx.user().await?.conn;
                let n = paced_count(&ctx, 50);
                // Publishes wait for the node's storage; the fast requests after them must not
                // overtake their answers ([FRAME-20]).
                let mut feed = crate::case::Feed::stranger();
                for i in 0..n {
                    let text = match i % 3 {
                        0 => {
                            let e = feed.next(&format!("pipelined {i}"));
                            let entry = serde_json::to_string(&e).unwrap_or_default();
                            format!(r#"{{"type":"publish","id":{},"entry":{entry}}}"#, 1000 + i)
                        }
                        1 => format!(r#"{{"type":"account","id":{}}}"#, 1000 + i),
                        _ => format!(r#"{{"type":"follows","id":{}}}"#, 1000 + i),
                    };
                    conn.send_text(&text).await?;
                }
                for i in 0..n {
                    let f = conn.recv_frame(DEFAULT_WAIT).await?;
                    check(
                        f.answers().map(kith_proto::RequestId::get) == Some(1000 + i),
                        format!("the answer to request {}", 1000 + i),
                        f.to_text(),
                    )?;
                    let kind_ok = match i % 3 {
                        0 => matches!(f, ServerFrame::PublishOk(ref ok) if !ok.duplicate),
                        1 => matches!(f, ServerFrame::AccountOk(_)),
                        _ => matches!(f, ServerFrame::FollowsOk(_)),
                    };
                    check(kind_ok, "publish_ok (not a duplicate), account_ok or follows_ok in turn", f.to_text())?;
                }
                Ok(())
            }),
        ),
        Case::new(
            "ROB-FLOOD-001",
            Must,
            &["FRAME-18", "FRAME-34", "FRAME-36"],
            "a flood of 2000 requests is answered in full while the client reads",
            run!(|ctx| {
                let mut conn = ctx.user().await?.conn;
                // The client paces itself inside the node's rate: a slow rate gets a shorter flood
                // (five seconds' worth), so that the case fits its time limit.
                let n = 2000u64.min(ctx.target.limits.max_requests_per_second.saturating_mul(5)).max(1);
                for i in 0..n {
                    conn.send_text(&format!(r#"{{"type":"heads","id":{i},"authors":[]}}"#)).await?;
                }
                let mut next = 0;
                while next < n {
                    match conn.recv(DEFAULT_WAIT).await? {
                        crate::client::Incoming::Text(t) => {
                            let f = ServerFrame::parse(&t).map_err(|e| Failure::fail("heads_ok", e.to_string()))?;
                            check(f.answers().map(kith_proto::RequestId::get) == Some(next), format!("answer {next}"), t)?;
                            next += 1;
                        }
                        crate::client::Incoming::Closed(c) => {
                            // Closing with slow_consumer is allowed only if the client stopped reading; it did not.
                            return Err(Failure::fail(
                                format!("all {n} answers"),
                                format!("closed after {next}: {}", crate::client::show_close(&c)),
                            ));
                        }
                        crate::client::Incoming::Binary(_) => return Err(Failure::fail("text", "binary")),
                    }
                }
                Ok(())
            }),
        )
        .timeout_ms(15_000),
        Case::new(
            "ROB-FLOOD-002",
            Must,
            &["FRAME-2", "FRAME-10"],
            "a flood of malformed frames is answered with malformed_frame each and the connection survives",
            run!(|ctx| {
                let mut conn = ctx.user().await?.conn;
                let n = paced_count(&ctx, 200);
                for _ in 0..n {
                    conn.send_text("{{{").await?;
                }
                for _ in 0..n {
                    let f = conn.recv_frame(DEFAULT_WAIT).await?;
                    expect_error(f, ErrorCode::MalformedFrame)?;
                }
                play(&mut conn, &[StillOpen]).await
            }),
        ),
        Case::new(
            "ROB-ERRORCODE-001",
            Must,
            &["FRAME-26"],
            "every error code the node sends in this case is registered",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let probes = [
                    r#"{"type":"teleport"}"#,
                    r#"{"type":"get"}"#,
                    r#"{"type":"replicate","author":"00","after":0,"limit":1}"#,
                    r#"{"type":"remove_user","key":"0000000000000000000000000000000000000000000000000000000000000000"}"#,
                    r#"{"type":"unsubscribe","sub":123456}"#,
                ];
                for p in probes {
                    let v: serde_json::Value =
                        serde_json::from_str(p).map_err(|e| Failure::fail("probe json", e.to_string()))?;
                    let id = s.conn.next_id();
                    let mut v = v;
                    v["id"] = serde_json::json!(id.get());
                    s.conn.send_text(&v.to_string()).await?;
                    let text = s.conn.recv_text(DEFAULT_WAIT).await?;
                    let raw: serde_json::Value =
                        serde_json::from_str(&text).map_err(|e| Failure::fail("json", e.to_string()))?;
                    if let Some(code) = raw.get("code").and_then(|c| c.as_str()) {
                        check(ErrorCode::from_wire(code).is_some(), "a registered error code", code)?;
                    }
                }
                Ok(())
            }),
        ),
        Case::new(
            "ROB-UNSUPPORTED-001",
            Must,
            &["FRAME-14", "FRAME-18"],
            "every kith/1 request type is implemented (or answered `unsupported`, graded unimplemented)",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s.call(|id| ClientFrame::Follows(kith_proto::identity::Follows { id, after: None })).await?;
                want!(answer, FollowsOk);
                let answer = s.call(|id| ClientFrame::Identities(kith_proto::identity::Identities { id, after: None })).await?;
                want!(answer, IdentitiesOk);
                Ok(())
            }),
        ),
    ];
    all.extend(entry_order_cases());
    all
}

/// The members of an entry in the order of 03 §1.
const ENTRY_MEMBERS: [&str; 9] = ["author", "seq", "prev", "timestamp", "kind", "content", "mentions", "refs", "sig"];

/// One defect of an entry: the member it is in and the value that breaks a rule of 03 §3.
#[derive(Clone, Copy)]
struct Defect {
    member: &'static str,
    value: fn() -> serde_json::Value,
}

/// Two defects whose checks 03 §3 orders, and whose codes differ: `first` is the earlier check,
/// so its `code` decides, whichever member comes first on the wire.
struct OrderPair {
    /// The case with `first`'s member first on the wire, and the one with `second`'s first.
    ids: [&'static str; 2],
    titles: [&'static str; 2],
    requirements: &'static [&'static str],
    first: Defect,
    second: Defect,
    code: ErrorCode,
}

/// A publish frame (id `id`) carrying `entry` with the members named in `front` first on the
/// wire, in that order, and the others after them in the order of 03 §1.
fn publish_text(id: kith_proto::RequestId, entry: &serde_json::Value, front: [&str; 2]) -> String {
    let members: Vec<String> = front
        .iter()
        .chain(ENTRY_MEMBERS.iter().filter(|m| !front.contains(m)))
        .filter_map(|m| entry.get(*m).map(|v| format!("{}:{v}", serde_json::Value::from(*m))))
        .collect();
    format!(r#"{{"type":"publish","id":{id},"entry":{{{}}}}}"#, members.join(","))
}

/// A fresh user publishes their first entry with both defects, the members in the wire order
/// `front`; the answer must be `code`, and the connection stays open.
async fn entry_order(
    ctx: &mut Ctx,
    first: Defect,
    second: Defect,
    front: [&'static str; 2],
    code: ErrorCode,
) -> CaseResult {
    let mut s = ctx.user().await?;
    let mut v = crate::case::entry_json(&crate::case::Feed::new(&s.user).next("x"));
    v[first.member] = (first.value)();
    v[second.member] = (second.value)();
    let id = s.conn.next_id();
    s.conn.send_text(&publish_text(id, &v, front)).await?;
    let answer = s.conn.await_answer(id, DEFAULT_WAIT).await?;
    match answer {
        ServerFrame::Error(e) if e.code == code && e.id == Some(id) => play(&mut s.conn, &[StillOpen]).await,
        other => Err(Failure::fail(
            format!(
                "error {code} with id {id}: the `{}` check comes before the `{}` check in 03 §3, and the first that fails decides",
                first.member, second.member
            ),
            other.to_text(),
        )),
    }
}

fn bad_hex() -> serde_json::Value {
    serde_json::json!("AB")
}

fn bad_kind() -> serde_json::Value {
    serde_json::json!("NOT A KIND")
}

fn huge_content() -> serde_json::Value {
    serde_json::json!({"text": "x".repeat(17_000)})
}

/// A well-encoded signature that does not verify for the entry it is put in: the signature of
/// another entry by another key.
fn foreign_sig() -> serde_json::Value {
    let key = kith_proto::SecretKey::from_seed([7; 32]);
    let other = kith_proto::EntryDraft::first(1).text("another entry").sign(&key);
    serde_json::json!(other.sig.to_string())
}

const SEQ_STRING: Defect = Defect { member: "seq", value: || serde_json::json!("1") };
const SEQ_ZERO: Defect = Defect { member: "seq", value: || serde_json::json!(0) };
const AUTHOR_NOT_HEX: Defect = Defect { member: "author", value: bad_hex };
const KIND_BAD: Defect = Defect { member: "kind", value: bad_kind };
const MENTION_WEAK: Defect =
    Defect { member: "mentions", value: || serde_json::json!([crate::cases::handshake::WEAK_KEY]) };
const REF_NOT_HEX: Defect = Defect { member: "refs", value: || serde_json::json!(["AB"]) };
const SIG_NOT_HEX: Defect = Defect { member: "sig", value: || serde_json::json!("zz".repeat(64)) };
const SIG_FOREIGN: Defect = Defect { member: "sig", value: foreign_sig };
const TIMESTAMP_NEGATIVE: Defect = Defect { member: "timestamp", value: || serde_json::json!(-1) };
const PREV_ON_FIRST: Defect = Defect { member: "prev", value: || serde_json::json!("ab".repeat(32)) };
const CONTENT_TOO_LARGE: Defect = Defect { member: "content", value: huge_content };

/// The entry check order (03 §3, fixed by 06 §3 step 10): pairs of defects whose codes differ,
/// each in both member orders on the wire, so that a node that reports the first defect it
/// meets while decoding fails one of the two.
fn entry_order_cases() -> Vec<Case> {
    let pairs = [
        OrderPair {
            ids: ["ROB-ENTRY-ORDER-001", "ROB-ENTRY-ORDER-002"],
            titles: [
                "`seq` a string and `author` not hex is malformed_entry (ENTRY-4 before ENTRY-5), `seq` first on the wire",
                "`seq` a string and `author` not hex is malformed_entry (ENTRY-4 before ENTRY-5), `author` first on the wire",
            ],
            requirements: &["ENTRY-4", "ENTRY-5"],
            first: SEQ_STRING,
            second: AUTHOR_NOT_HEX,
            code: ErrorCode::MalformedEntry,
        },
        OrderPair {
            ids: ["ROB-ENTRY-ORDER-003", "ROB-ENTRY-ORDER-004"],
            titles: [
                "`author` not hex and a bad `kind` is bad_encoding (ENTRY-5 before ENTRY-9), `author` first on the wire",
                "`author` not hex and a bad `kind` is bad_encoding (ENTRY-5 before ENTRY-9), `kind` first on the wire",
            ],
            requirements: &["ENTRY-5", "ENTRY-9"],
            first: AUTHOR_NOT_HEX,
            second: KIND_BAD,
            code: ErrorCode::BadEncoding,
        },
        OrderPair {
            ids: ["ROB-ENTRY-ORDER-005", "ROB-ENTRY-ORDER-006"],
            titles: [
                "a weak key in `mentions` and a ref not hex is weak_key (mentions decoded before refs, ENTRY-5), `mentions` first on the wire",
                "a weak key in `mentions` and a ref not hex is weak_key (mentions decoded before refs, ENTRY-5), `refs` first on the wire",
            ],
            requirements: &["ENTRY-5"],
            first: MENTION_WEAK,
            second: REF_NOT_HEX,
            code: ErrorCode::WeakKey,
        },
        OrderPair {
            ids: ["ROB-ENTRY-ORDER-007", "ROB-ENTRY-ORDER-008"],
            titles: [
                "`sig` not hex and `seq` 0 is bad_encoding (ENTRY-5 before ENTRY-6), `sig` first on the wire",
                "`sig` not hex and `seq` 0 is bad_encoding (ENTRY-5 before ENTRY-6), `seq` first on the wire",
            ],
            requirements: &["ENTRY-5", "ENTRY-6"],
            first: SIG_NOT_HEX,
            second: SEQ_ZERO,
            code: ErrorCode::BadEncoding,
        },
        OrderPair {
            ids: ["ROB-ENTRY-ORDER-009", "ROB-ENTRY-ORDER-010"],
            titles: [
                "`seq` 0 and a negative `timestamp` is bad_sequence (ENTRY-6 before ENTRY-7), `seq` first on the wire",
                "`seq` 0 and a negative `timestamp` is bad_sequence (ENTRY-6 before ENTRY-7), `timestamp` first on the wire",
            ],
            requirements: &["ENTRY-6", "ENTRY-7"],
            first: SEQ_ZERO,
            second: TIMESTAMP_NEGATIVE,
            code: ErrorCode::BadSequence,
        },
        OrderPair {
            ids: ["ROB-ENTRY-ORDER-011", "ROB-ENTRY-ORDER-012"],
            titles: [
                "a `prev` on seq 1 and a bad `kind` is bad_prev (ENTRY-8 before ENTRY-9), `prev` first on the wire",
                "a `prev` on seq 1 and a bad `kind` is bad_prev (ENTRY-8 before ENTRY-9), `kind` first on the wire",
            ],
            requirements: &["ENTRY-8", "ENTRY-9"],
            first: PREV_ON_FIRST,
            second: KIND_BAD,
            code: ErrorCode::BadPrev,
        },
        OrderPair {
            ids: ["ROB-ENTRY-ORDER-013", "ROB-ENTRY-ORDER-014"],
            titles: [
                "a bad `kind` in an entry over 16384 bytes is malformed_entry (ENTRY-9 before ENTRY-17), `kind` first on the wire",
                "a bad `kind` in an entry over 16384 bytes is malformed_entry (ENTRY-9 before ENTRY-17), `content` first on the wire",
            ],
            requirements: &["ENTRY-9", "ENTRY-17"],
            first: KIND_BAD,
            second: CONTENT_TOO_LARGE,
            code: ErrorCode::MalformedEntry,
        },
        OrderPair {
            ids: ["ROB-ENTRY-ORDER-015", "ROB-ENTRY-ORDER-016"],
            titles: [
                "an entry over 16384 bytes with a signature that does not verify is entry_too_large (ENTRY-17 before ENTRY-18), `content` first on the wire",
                "an entry over 16384 bytes with a signature that does not verify is entry_too_large (ENTRY-17 before ENTRY-18), `sig` first on the wire",
            ],
            requirements: &["ENTRY-17", "ENTRY-18"],
            first: CONTENT_TOO_LARGE,
            second: SIG_FOREIGN,
            code: ErrorCode::EntryTooLarge,
        },
    ];
    let mut cases = Vec::new();
    for p in pairs {
        let (first, second, code) = (p.first, p.second, p.code);
        for (i, front) in [[first.member, second.member], [second.member, first.member]].into_iter().enumerate() {
            cases.push(Case::generated(
                p.ids[i],
                Must,
                p.requirements,
                p.titles[i],
                std::sync::Arc::new(move |mut ctx: Ctx| {
                    Box::pin(async move { entry_order(&mut ctx, first, second, front, code).await })
                        as futures_util::future::BoxFuture<'static, CaseResult>
                }),
            ));
        }
    }
    cases
}

/// `most` messages, or fewer when the node's `max_requests_per_second` would make sending them
/// paced (three quarters of the rate) take more than about four seconds of the case's ten.
fn paced_count(ctx: &crate::case::Ctx, most: u64) -> u64 {
    (ctx.target.limits.max_requests_per_second * 3).clamp(4, most)
}
