//! Host-language JSON defaults (spec chapter 01): `JSON-*`; every limit exactly at its boundary
//! and one past it (chapters 01, 03, 06 to 09): `BOUND-*`.
//!
//! These are the bugs a node written from the spec alone really has and a suite testing limits
//! far from their boundary misses: a parser that reads `NaN` or `true` as a number, a limit
//! compared with `<` where the spec says "at most", a length the spec counts in UTF-8 bytes
//! counted in characters. Where a limit is counted in bytes, the cases build their strings of
//! multi-byte characters, so that a node counting characters sees a string within the limit.
//!
//! Limits the spec states and where they are checked (a limit not listed here is the node's
//! choice, reported in `node_info_ok.limits` and checked by the `LIMIT`, `SUB` and `REP` cases):
//!
//! | limit | boundary cases |
//! |---|---|
//! | frame 65536 bytes (FRAME-4, FRAME-5) | `BOUND-FRAME-*` (multi-byte padding); `ROB-MAXSIZE-001`, `ROB-OVERSIZE-001` |
//! | frame depth 64 (ENC-8) | `ROB-DEPTH-002` (64 and 65) |
//! | integers ±(2^53−1) (ENC-6) | `BOUND-SEQ-MAX-*` (seq and timestamp 2^53−1), `BOUND-U53-001`; `ROB-ID-MAX-001`, `ROB-BIGINT-001` |
//! | entry 16384 canonical bytes (ENTRY-17) | `BOUND-ENTRY-SIZE-*` (multi-byte content); `PUB-SIZE-001`, `PUB-SIZE-002` |
//! | content depth 32 (ENTRY-16) | `BOUND-CONTENT-DEPTH-*` (32, 33 of objects, 33 of arrays) |
//! | kind 1 to 64 characters (ENTRY-9) | `BOUND-KIND-*` (0 and 1); `PUB-KIND-002`, `PUB-KIND-003` (65 and 64) |
//! | mentions, refs 64 (ENTRY-10, ENTRY-12) | `BOUND-REFS-001` (64 refs); `PUB-MENTIONS-001`, `PUB-MENTIONS-003`, `PUB-REFS-001` |
//! | profile name 1 to 64 bytes, about 1024 bytes (ENTRY-14, ENTRY-15) | `BOUND-PROFILE-*` |
//! | account name 1 to 32 characters (ACCT-9) | `BOUND-ACCOUNT-NAME-001` (0); `INV-NAME-002`, `INV-NAME-003` (33 and 32) |
//! | display name 1 to 64 bytes, note 1024 bytes, 8 addresses (IDENT-4 to IDENT-6) | `BOUND-IDENT-*`; `IDENT-NAME-*`, `IDENT-NOTE-001`, `IDENT-ADDR-001` |
//! | heads authors 1024 (FEED-20) | `HEADS-005`, `HEADS-006` (1025 and 1024 short strings: FEED-20 counts before FEED-21 decodes) |
//! | subscribe filter 1024 (FEED-9) | none: FEED-8 decodes first, and 1024 keys do not fit in a frame (08 §3 note) |
//! | replicate limit at least 1 (FEED-23) | `BOUND-REPLICATE-LIMIT-001` (1); `REP-004` (0) |
//! | request integers up to 2^53−1 (FRAME-16, ENC-6) | `BOUND-U53-001` |
//! | addresses: dns label 63, dns name 253, port 65535, octet 255 (05 §2.1, IDENT-7) | `BOUND-ADDR-*` |
//! | frame depth through objects (ENC-8) | `BOUND-FRAME-DEPTH-001` |
//! | max_subscriptions, max_backfill, max_replicate (reported) | `SUB-MAX-001`, `SUB-BACKFILL-*`, `REP-006` |

use kith_proto::canonical::{CanonicalObject, CanonicalValue};
use kith_proto::entry::EntryDraft;
use kith_proto::identity::{AddIdentity, IdentityNote};
use kith_proto::{ClientFrame, EntryId, ErrorCode, SecretKey};
use serde_json::json;

use crate::case::{
    check, check_eq, draft_accepted, draft_refused, entry_json, entry_size, expect_close_only, expect_error, kind,
    play, Case, CaseResult, Ctx, Failure, Feed, IdIs, Level::*, Ops, Step,
};
use crate::client::{now_ms, random_bytes, Session};
use crate::{run, want};

use IdIs::{Is, Null};
use Step::*;

/// The largest protocol integer, 2^53 − 1 (chapter 01 §1).
const MAX_INT: u64 = (1 << 53) - 1;

/// A string of exactly `n` UTF-8 bytes, made of two-byte characters (`é`) and at most one `a`:
/// about `n / 2` characters, so a node counting characters finds it well within a byte limit.
fn bytes_of_two_byte_chars(n: usize) -> String {
    format!("{}{}", "é".repeat(n / 2), "a".repeat(n % 2))
}

/// A content object nested `depth` deep (the content object itself counts as one), by objects.
fn nested_objects(depth: usize) -> Result<CanonicalObject, Failure> {
    let mut v = json!({});
    for _ in 1..depth {
        v = json!({ "a": v });
    }
    object(&v)
}

/// A content object of depth `depth` whose inner levels are arrays: `{"a":[[…]]}`.
fn nested_arrays(depth: usize) -> Result<CanonicalObject, Failure> {
    let mut v = json!([]);
    for _ in 2..depth {
        v = json!([v]);
    }
    object(&json!({ "a": v }))
}

fn object(v: &serde_json::Value) -> Result<CanonicalObject, Failure> {
    match CanonicalValue::from_json(v) {
        Ok(CanonicalValue::Object(o)) => Ok(o),
        other => Err(Failure::fail("a test object", format!("{other:?}"))),
    }
}

/// Checks the depth of a test content as chapter 01 §2 counts it, so a wrong builder cannot
/// make a case pass for the wrong reason.
fn content_depth(content: &CanonicalObject) -> usize {
    kith_proto::entry::depth(&CanonicalValue::Object(content.clone()))
}

/// A draft edit that makes the entry a profile whose content is exactly these text members.
fn profile(members: &[(&str, String)]) -> Result<impl FnOnce(&mut EntryDraft) + std::marker::Send, Failure> {
    let profile = kind("profile")?;
    let content: CanonicalObject =
        members.iter().map(|(name, text)| (name.to_string(), CanonicalValue::string(text.as_str()))).collect();
    Ok(move |d: &mut EntryDraft| {
        d.kind = profile;
        d.content = content;
    })
}

/// A fresh user's first entry as JSON text inside a `publish` frame with `id`, with the value of
/// `member` written as the bare token `token` (e.g. `NaN`), which no JSON value can hold. The
/// entry is signed with `signed_as` in that member, so that a node reading the token as that
/// number finds a valid entry.
fn publish_with_token(s: &Session, id: u64, member: &str, token: &str, edit: impl FnOnce(&mut EntryDraft)) -> String {
    let feed = Feed::new(&s.user);
    let mut d = feed.draft();
    edit(&mut d);
    let mut v = entry_json(&d.sign(&s.user));
    const MARK: &str = "__kith_token__";
    match member.strip_prefix("content.") {
        Some(inner) => v["content"][inner] = json!(MARK),
        None => v[member] = json!(MARK),
    }
    json!({"type": "publish", "id": id, "entry": v}).to_string().replace(&format!("\"{MARK}\""), token)
}

/// Sends `frame` on a fresh connection (logged in when `authed`): it must get `malformed_frame`
/// with id null ([ENC-1], [FRAME-17]) and the connection must stay open ([FRAME-10]).
async fn malformed(ctx: &mut Ctx, authed: bool, frame: String) -> CaseResult {
    let mut conn = if authed { ctx.user().await?.conn } else { ctx.connect().await? };
    play(&mut conn, &[Send(frame), ExpectError(Null, ErrorCode::MalformedFrame), StillOpen]).await
}

/// Sends `frame` (its id 900) on a fresh session: it must get `code` with id 900, and the
/// connection must stay open.
async fn refused_with_id(ctx: &mut Ctx, frame: serde_json::Value, code: ErrorCode) -> CaseResult {
    let mut conn = ctx.user().await?.conn;
    play(&mut conn, &[Send(frame.to_string()), ExpectError(Is(900), code), StillOpen]).await
}

/// A fresh key's hex, for requests written by hand.
fn some_key() -> String {
    SecretKey::random().public().to_string()
}

/// A node_info request padded with an unknown member of two-byte characters to exactly `len`
/// bytes (about half as many characters).
fn padded_node_info(len: usize) -> String {
    let head = r#"{"type":"node_info","id":7,"pad":""#;
    let tail = r#""}"#;
    format!("{head}{}{tail}", bytes_of_two_byte_chars(len.saturating_sub(head.len() + tail.len())))
}

/// The first entry of a fresh user's feed with a text of two-byte characters making the signed
/// entry exactly `size` canonical bytes.
async fn entry_of_size(ctx: &mut Ctx, size: usize) -> Result<(Session, kith_proto::Entry), Failure> {
    let s = ctx.user().await?;
    let feed = Feed::new(&s.user);
    let base = entry_size(&feed.draft().text("").sign(&s.user)) as usize;
    let e = feed.draft().text(&bytes_of_two_byte_chars(size - base)).sign(&s.user);
    check_eq("canonical size", entry_size(&e), size as u64)?;
    Ok((s, e))
}

/// `add_identity` of a note by the session's user with these fields; the answer.
async fn add_note(
    s: &mut Session,
    display_name: &str,
    addresses: Vec<String>,
    text: &str,
) -> Result<kith_proto::ServerFrame, Failure> {
    let note = IdentityNote::sign(&s.user, SecretKey::random().public(), display_name, addresses, text, now_ms());
    s.call(move |id| ClientFrame::AddIdentity(AddIdentity { id, note })).await
}

fn address(n: usize) -> String {
    format!("/ip4/127.0.0.{}/ws/7777/{}", n + 1, SecretKey::random().public())
}

/// The JSON and boundary cases.
pub fn cases() -> Vec<Case> {
    let mut v = json_cases();
    v.extend(bound_cases());
    v
}

fn json_cases() -> Vec<Case> {
    vec![
        Case::new(
            "JSON-NAN-001",
            Must,
            &["ENC-1", "FRAME-17"],
            "`NaN` as replicate's `after` is malformed_frame (id null); the connection stays open",
            run!(|ctx| {
                let frame =
                    format!(r#"{{"type":"replicate","id":900,"author":"{}","after":NaN,"limit":1}}"#, some_key());
                malformed(&mut ctx, true, frame).await
            }),
        ),
        Case::new(
            "JSON-NAN-002",
            Must,
            &["ENC-1", "FRAME-17"],
            "`Infinity` as replicate's `limit` is malformed_frame (id null)",
            run!(|ctx| {
                let frame =
                    format!(r#"{{"type":"replicate","id":900,"author":"{}","after":0,"limit":Infinity}}"#, some_key());
                malformed(&mut ctx, true, frame).await
            }),
        ),
        Case::new(
            "JSON-NAN-003",
            Must,
            &["ENC-1", "FRAME-17"],
            "`-Infinity` as a request's `id` is malformed_frame (id null), before any handshake",
            run!(|ctx| { malformed(&mut ctx, false, r#"{"type":"node_info","id":-Infinity}"#.into()).await }),
        ),
        Case::new(
            "JSON-NAN-004",
            Must,
            &["ENC-1", "FRAME-17"],
            "`NaN` inside entry content is malformed_frame (id null), even when the entry is signed with 0 there",
            run!(|ctx| {
                let s = ctx.user().await?;
                let frame = publish_with_token(&s, 900, "content.x", "NaN", |d| {
                    d.content.insert("x".into(), CanonicalValue::Integer(0));
                });
                let mut conn = s.conn;
                play(&mut conn, &[Send(frame), ExpectError(Null, ErrorCode::MalformedFrame), StillOpen]).await
            }),
        ),
        Case::new(
            "JSON-NAN-005",
            Must,
            &["ENC-1", "FRAME-17"],
            "`Infinity` as an entry's `timestamp` is malformed_frame (id null)",
            run!(|ctx| {
                let s = ctx.user().await?;
                let frame = publish_with_token(&s, 900, "timestamp", "Infinity", |d| d.timestamp = 0);
                let mut conn = s.conn;
                play(&mut conn, &[Send(frame), ExpectError(Null, ErrorCode::MalformedFrame), StillOpen]).await
            }),
        ),
        Case::new(
            "JSON-NAN-006",
            Must,
            &["ENC-1", "FRAME-17"],
            "`-Infinity` as an entry's `seq` is malformed_frame (id null)",
            run!(|ctx| {
                let s = ctx.user().await?;
                let frame = publish_with_token(&s, 900, "seq", "-Infinity", |_| {});
                let mut conn = s.conn;
                play(&mut conn, &[Send(frame), ExpectError(Null, ErrorCode::MalformedFrame), StillOpen]).await
            }),
        ),
        Case::new(
            "JSON-NAN-007",
            Must,
            &["ENC-1", "FRAME-17"],
            "`NaN` as get's `seq` is malformed_frame (id null)",
            run!(|ctx| {
                let frame = format!(r#"{{"type":"get","id":900,"author":"{}","seq":NaN}}"#, some_key());
                malformed(&mut ctx, true, frame).await
            }),
        ),
        Case::new(
            "JSON-BOOL-001",
            Must,
            &["ENTRY-4"],
            "an entry whose `seq` is `true` is malformed_entry, even when signed with seq 1",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut v = entry_json(&Feed::new(&s.user).next("x"));
                v["seq"] = json!(true);
                s.publish_raw_refused(v, ErrorCode::MalformedEntry).await
            }),
        ),
        Case::new(
            "JSON-BOOL-002",
            Must,
            &["ENTRY-4"],
            "an entry whose `timestamp` is `true` is malformed_entry, even when signed with timestamp 1",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut d = Feed::new(&s.user).draft();
                d.timestamp = 1;
                let mut v = entry_json(&d.sign(&s.user));
                v["timestamp"] = json!(true);
                s.publish_raw_refused(v, ErrorCode::MalformedEntry).await
            }),
        ),
        Case::new(
            "JSON-BOOL-003",
            Must,
            &["ENTRY-4"],
            "an entry whose `timestamp` is `false` is malformed_entry, even when signed with timestamp 0",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut d = Feed::new(&s.user).draft();
                d.timestamp = 0;
                let mut v = entry_json(&d.sign(&s.user));
                v["timestamp"] = json!(false);
                s.publish_raw_refused(v, ErrorCode::MalformedEntry).await
            }),
        ),
        Case::new(
            "JSON-BOOL-004",
            Must,
            &["FRAME-16"],
            "`true` as replicate's `after` is invalid_request",
            run!(|ctx| {
                let frame = json!({"type": "replicate", "id": 900, "author": some_key(), "after": true, "limit": 1});
                refused_with_id(&mut ctx, frame, ErrorCode::InvalidRequest).await
            }),
        ),
        Case::new(
            "JSON-BOOL-005",
            Must,
            &["FRAME-16"],
            "`true` as get's `seq` is invalid_request",
            run!(|ctx| {
                let frame = json!({"type": "get", "id": 900, "author": some_key(), "seq": true});
                refused_with_id(&mut ctx, frame, ErrorCode::InvalidRequest).await
            }),
        ),
        Case::new(
            "JSON-BOOL-006",
            Must,
            &["FRAME-13", "FRAME-17"],
            "`true` as a request's `id` is invalid_request with id null",
            run!(|ctx| {
                let mut conn = ctx.connect().await?;
                let frame = r#"{"type":"node_info","id":true}"#.to_owned();
                play(&mut conn, &[Send(frame), ExpectError(Null, ErrorCode::InvalidRequest), StillOpen]).await
            }),
        ),
        Case::new(
            "JSON-BOOL-007",
            Must,
            &["ACCT-7"],
            "`true` as create_user's `publish_allowance` is invalid_request",
            run!(|ctx| {
                let mut admin = ctx.admin().await?;
                let frame = json!({"type": "create_user", "id": 900, "key": some_key(),
                    "name": crate::client::fresh_name(), "invite_allowance": 0, "publish_allowance": true});
                play(&mut admin.conn, &[Send(frame.to_string()), ExpectError(Is(900), ErrorCode::InvalidRequest)]).await
            }),
        ),
        Case::new(
            "JSON-BOOL-008",
            Must,
            &["FRAME-16"],
            "`false` as subscribe's `backfill` is invalid_request",
            run!(|ctx| {
                let frame = json!({"type": "subscribe", "id": 900, "filter": {"authors": [some_key()]},
                    "backfill": false});
                refused_with_id(&mut ctx, frame, ErrorCode::InvalidRequest).await
            }),
        ),
    ]
}

fn bound_cases() -> Vec<Case> {
    vec![
        Case::new(
            "BOUND-CONTENT-DEPTH-001",
            Must,
            &["ENTRY-16"],
            "content nested exactly 32 deep is accepted",
            run!(|ctx| {
                let content = nested_objects(32)?;
                check_eq("content depth", content_depth(&content), 32)?;
                draft_accepted(&mut ctx, |d| d.content = content).await
            }),
        ),
        Case::new(
            "BOUND-CONTENT-DEPTH-002",
            Must,
            &["ENTRY-16"],
            "content nested 33 deep (objects) is malformed_entry",
            run!(|ctx| {
                let content = nested_objects(33)?;
                check_eq("content depth", content_depth(&content), 33)?;
                draft_refused(&mut ctx, ErrorCode::MalformedEntry, |d| d.content = content).await
            }),
        ),
        Case::new(
            "BOUND-CONTENT-DEPTH-003",
            Must,
            &["ENTRY-16"],
            "content nested 33 deep through arrays is malformed_entry; 32 through arrays is accepted",
            run!(|ctx| {
                let deep = nested_arrays(33)?;
                check_eq("content depth", content_depth(&deep), 33)?;
                let fits = nested_arrays(32)?;
                check_eq("content depth", content_depth(&fits), 32)?;
                draft_refused(&mut ctx, ErrorCode::MalformedEntry, |d| d.content = deep).await?;
                draft_accepted(&mut ctx, |d| d.content = fits).await
            }),
        ),
        Case::new(
            "BOUND-ENTRY-SIZE-001",
            Must,
            &["ENTRY-17"],
            "an entry of exactly 16384 canonical bytes, most of them two-byte characters, is accepted",
            run!(|ctx| {
                let (mut s, e) = entry_of_size(&mut ctx, 16384).await?;
                s.publish_ok(&e).await.map(|_| ())
            }),
        ),
        Case::new(
            "BOUND-ENTRY-SIZE-002",
            Must,
            &["ENTRY-17"],
            "an entry of 16385 canonical bytes in fewer than 9000 characters is entry_too_large",
            run!(|ctx| {
                let (mut s, e) = entry_of_size(&mut ctx, 16385).await?;
                let text = String::from_utf8(e.canonical_bytes()).unwrap_or_default();
                check(text.chars().count() < 9000, "fewer than 9000 characters", text.chars().count())?;
                s.publish_refused(&e, ErrorCode::EntryTooLarge).await
            }),
        ),
        Case::new(
            "BOUND-PROFILE-NAME-001",
            Must,
            &["ENTRY-14"],
            "a profile name of 64 bytes in 32 two-byte characters is accepted",
            run!(|ctx| { draft_accepted(&mut ctx, profile(&[("name", bytes_of_two_byte_chars(64))])?).await }),
        ),
        Case::new(
            "BOUND-PROFILE-NAME-002",
            Must,
            &["ENTRY-14"],
            "a profile name of 65 bytes in 33 characters is malformed_entry (bytes, not characters)",
            run!(|ctx| {
                let name = bytes_of_two_byte_chars(65);
                check_eq("characters", name.chars().count(), 33)?;
                draft_refused(&mut ctx, ErrorCode::MalformedEntry, profile(&[("name", name)])?).await
            }),
        ),
        Case::new(
            "BOUND-PROFILE-NAME-003",
            Must,
            &["ENTRY-14"],
            "a profile name of 17 four-byte characters (68 bytes) is malformed_entry; 16 (64 bytes) is accepted",
            run!(|ctx| {
                draft_refused(&mut ctx, ErrorCode::MalformedEntry, profile(&[("name", "🦀".repeat(17))])?).await?;
                draft_accepted(&mut ctx, profile(&[("name", "🦀".repeat(16))])?).await
            }),
        ),
        Case::new(
            "BOUND-PROFILE-NAME-004",
            Must,
            &["ENTRY-14"],
            "an empty profile name is malformed_entry; a name of one byte is accepted",
            run!(|ctx| {
                draft_refused(&mut ctx, ErrorCode::MalformedEntry, profile(&[("name", String::new())])?).await?;
                draft_accepted(&mut ctx, profile(&[("name", "a".into())])?).await
            }),
        ),
        Case::new(
            "BOUND-PROFILE-ABOUT-001",
            Must,
            &["ENTRY-15"],
            "a profile `about` of 1024 bytes in two-byte characters is accepted; 1025 bytes in 513 characters is malformed_entry",
            run!(|ctx| {
                let fits = bytes_of_two_byte_chars(1024);
                let over = bytes_of_two_byte_chars(1025);
                check_eq("characters", over.chars().count(), 513)?;
                draft_accepted(&mut ctx, profile(&[("name", "ann".into()), ("about", fits)])?).await?;
                draft_refused(&mut ctx, ErrorCode::MalformedEntry, profile(&[("name", "ann".into()), ("about", over)])?)
                    .await
            }),
        ),
        Case::new(
            "BOUND-KIND-001",
            Must,
            &["ENTRY-9"],
            "an empty kind is malformed_entry; a kind of one character is accepted",
            run!(|ctx| {
                crate::case::raw_entry_refused(&mut ctx, ErrorCode::MalformedEntry, |v| v["kind"] = json!("")).await?;
                let k = kind("z")?;
                draft_accepted(&mut ctx, |d| d.kind = k).await
            }),
        ),
        Case::new(
            "BOUND-REFS-001",
            Must,
            &["ENTRY-12"],
            "64 refs are accepted",
            run!(|ctx| {
                draft_accepted(&mut ctx, |d| d.refs = (0..64).map(|_| EntryId::from_bytes(random_bytes())).collect())
                    .await
            }),
        ),
        Case::new(
            "BOUND-SEQ-MAX-001",
            Must,
            &["ENTRY-23", "ENC-6"],
            "an anchor at seq 2^53-1 with timestamp 2^53-1 is accepted",
            run!(|ctx| {
                draft_accepted(&mut ctx, |d| {
                    d.seq = MAX_INT;
                    d.prev = Some(EntryId::from_bytes(random_bytes()));
                    d.timestamp = MAX_INT;
                })
                .await
            }),
        ),
        Case::new(
            "BOUND-SEQ-MAX-002",
            Must,
            &["ENC-6", "FRAME-17"],
            "an entry at seq 2^53 is malformed_frame (id null)",
            run!(|ctx| {
                let s = ctx.user().await?;
                let frame = publish_with_token(&s, 900, "seq", "9007199254740992", |d| {
                    d.seq = MAX_INT;
                    d.prev = Some(EntryId::from_bytes(random_bytes()));
                });
                let mut conn = s.conn;
                play(&mut conn, &[Send(frame), ExpectError(Null, ErrorCode::MalformedFrame), StillOpen]).await
            }),
        ),
        Case::new(
            "BOUND-FRAME-001",
            Must,
            &["FRAME-4"],
            "a frame of exactly 65536 bytes, padded with two-byte characters, is accepted",
            run!(|ctx| {
                let text = padded_node_info(65536);
                check_eq("frame bytes", text.len(), 65536)?;
                let mut conn = ctx.connect().await?;
                play(&mut conn, &[Send(text), ExpectType("node_info_ok", Is(7))]).await
            }),
        ),
        Case::new(
            "BOUND-FRAME-002",
            Must,
            &["FRAME-5", "FRAME-6"],
            "a frame of 65537 bytes in about 32800 characters is frame_too_large (id null), then close 1009",
            run!(|ctx| {
                let text = padded_node_info(65537);
                check_eq("frame bytes", text.len(), 65537)?;
                let mut conn = ctx.connect().await?;
                play(&mut conn, &[Send(text), ExpectError(Null, ErrorCode::FrameTooLarge)]).await?;
                expect_close_only(&mut conn, "error frame_too_large", 1009, "frame_too_large").await
            }),
        ),
        Case::new(
            "BOUND-IDENT-NAME-001",
            Must,
            &["IDENT-4"],
            "a display name of 64 bytes in two-byte characters is accepted; one of a single byte too",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                want!(add_note(&mut s, &bytes_of_two_byte_chars(64), vec![], "").await?, AddIdentityOk);
                want!(add_note(&mut s, "a", vec![], "").await?, AddIdentityOk);
                Ok(())
            }),
        ),
        Case::new(
            "BOUND-IDENT-NAME-002",
            Must,
            &["IDENT-4"],
            "a display name of 65 bytes in 33 characters is invalid_request (bytes, not characters)",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = add_note(&mut s, &bytes_of_two_byte_chars(65), vec![], "").await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "BOUND-IDENT-NOTE-001",
            Must,
            &["IDENT-5"],
            "a note text of 1024 bytes in two-byte characters is accepted; 1025 bytes in 513 characters is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                want!(add_note(&mut s, "Ann", vec![], &bytes_of_two_byte_chars(1024)).await?, AddIdentityOk);
                let answer = add_note(&mut s, "Ann", vec![], &bytes_of_two_byte_chars(1025)).await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "BOUND-IDENT-ADDR-001",
            Must,
            &["IDENT-6"],
            "a note with exactly eight distinct addresses is accepted",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                want!(add_note(&mut s, "Ann", (0..8).map(address).collect(), "").await?, AddIdentityOk);
                Ok(())
            }),
        ),
        Case::new(
            "BOUND-ADDR-LABEL-001",
            Must,
            &["IDENT-7"],
            "an address whose dns label has 63 characters is accepted; one of 64 characters is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let key = SecretKey::random().public();
                let fits = format!("/dns/{}.example/wss/443/{key}", "a".repeat(63));
                want!(add_note(&mut s, "Ann", vec![fits], "").await?, AddIdentityOk);
                let over = format!("/dns/{}.example/wss/443/{key}", "a".repeat(64));
                expect_error(add_note(&mut s, "Ann", vec![over], "").await?, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "BOUND-ADDR-NAME-001",
            Must,
            &["IDENT-7"],
            "an address whose dns name has 253 characters is accepted; one of 254 characters is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let key = SecretKey::random().public();
                let name = |last: usize| format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(last));
                check_eq("dns name length", name(61).len(), 253)?;
                let fits = format!("/dns/{}/ws/7777/{key}", name(61));
                want!(add_note(&mut s, "Ann", vec![fits], "").await?, AddIdentityOk);
                let over = format!("/dns/{}/ws/7777/{key}", name(62));
                expect_error(add_note(&mut s, "Ann", vec![over], "").await?, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "BOUND-ADDR-PORT-001",
            Must,
            &["IDENT-7"],
            "an address with port 65535 is accepted; port 65536 is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let key = SecretKey::random().public();
                want!(add_note(&mut s, "Ann", vec![format!("/ip4/10.0.0.1/ws/65535/{key}")], "").await?, AddIdentityOk);
                let answer = add_note(&mut s, "Ann", vec![format!("/ip4/10.0.0.1/ws/65536/{key}")], "").await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "BOUND-ADDR-OCTET-001",
            Must,
            &["IDENT-7"],
            "an ip4 address with an octet of 255 is accepted; 256 is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let key = SecretKey::random().public();
                want!(add_note(&mut s, "Ann", vec![format!("/ip4/10.0.0.255/ws/7777/{key}")], "").await?, AddIdentityOk);
                let answer = add_note(&mut s, "Ann", vec![format!("/ip4/10.0.0.256/ws/7777/{key}")], "").await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "BOUND-U53-001",
            Must,
            &["FRAME-16", "ENC-6"],
            "replicate with `after` and `limit` of 2^53-1 is answered (empty, head null for an unknown author)",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let author = SecretKey::random().public();
                let answer = s
                    .call(move |id| {
                        ClientFrame::Replicate(kith_proto::feed::Replicate { id, author, after: MAX_INT, limit: MAX_INT })
                    })
                    .await?;
                let page = want!(answer, ReplicateOk);
                check_eq("entries", page.entries.len(), 0)?;
                check_eq("head", page.head, None)
            }),
        ),
        Case::new(
            "BOUND-FRAME-DEPTH-001",
            Must,
            &["ENC-8"],
            "a frame nested 64 deep through objects is accepted; 65 deep is malformed_frame (id null)",
            run!(|ctx| {
                // The frame object and `objects` nested objects below it.
                let nested = |objects: usize| {
                    format!(r#"{{"type":"node_info","id":7,"x":{}{}}}"#, r#"{"a":"#.repeat(objects - 1) + "{}", "}".repeat(objects - 1))
                };
                let mut conn = ctx.connect().await?;
                play(
                    &mut conn,
                    &[
                        Send(nested(63)),
                        ExpectType("node_info_ok", Is(7)),
                        Send(nested(64)),
                        ExpectError(Null, ErrorCode::MalformedFrame),
                        StillOpen,
                    ],
                )
                .await
            }),
        ),
        Case::new(
            "BOUND-ACCOUNT-NAME-001",
            Must,
            &["ACCT-9"],
            "create_user with an empty name is invalid_request",
            run!(|ctx| {
                let mut admin = ctx.admin().await?;
                let frame = json!({"type": "create_user", "id": 900, "key": some_key(), "name": "",
                    "invite_allowance": 0, "publish_allowance": 0});
                play(&mut admin.conn, &[Send(frame.to_string()), ExpectError(Is(900), ErrorCode::InvalidRequest)])
                    .await
            }),
        ),
        Case::new(
            "BOUND-REPLICATE-LIMIT-001",
            Must,
            &["FEED-23", "FEED-25"],
            "replicate with limit 1 (the least) returns exactly one entry",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut feed = Feed::new(&s.user);
                for i in 0..2 {
                    s.publish_ok(&feed.next(&format!("{i}"))).await?;
                }
                let author = s.user.public();
                let answer = s
                    .call(move |id| {
                        ClientFrame::Replicate(kith_proto::feed::Replicate { id, author, after: 0, limit: 1 })
                    })
                    .await?;
                let page = want!(answer, ReplicateOk);
                // On a node with a small storage budget other cases' entries may have pruned
                // ours: the lowest held seq is pruned_through + 1.
                if page.pruned_through >= 2 {
                    return Err(Failure::not_applicable("both entries were pruned before the replicate"));
                }
                let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
                check_eq("seqs returned", seqs, vec![page.pruned_through + 1])
            }),
        ),
    ]
}
