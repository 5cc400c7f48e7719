//! Publishing entries (spec chapters 02, 03, 07 §publish and 08 §publish): `PUB-*` and the
//! publish allowance, `ALLOW-*`.

use kith_proto::canonical::{CanonicalObject, CanonicalValue};
use kith_proto::entry::EntryDraft;
use kith_proto::feed::{Get, Heads};
use kith_proto::{ClientFrame, EntryId, ErrorCode, SecretKey, Signature};
use serde_json::json;

use crate::case::{
    check, check_eq, draft_accepted, draft_refused, entry_id, entry_json, entry_size, expect_error, kind,
    raw_entry_refused, successor, Case, Failure, Feed, Level::*, Ops,
};
use crate::cases::handshake::WEAK_KEY;
use crate::client::random_bytes;
use crate::{run, want};

/// The group order L of Ed25519, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// The same signature with S replaced by S + L: equal modulo L, but not canonical.
fn malleated(sig: &Signature) -> Signature {
    let mut b = *sig.as_bytes();
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = b[32 + i] as u16 + L[i] as u16 + carry;
        b[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    Signature::from_bytes(b)
}

fn random_id() -> EntryId {
    EntryId::from_bytes(random_bytes())
}

fn get_by_id(id: kith_proto::RequestId, entry_id: EntryId) -> ClientFrame {
    ClientFrame::Get(Get { id, entry_id: Some(entry_id), author: None, seq: None })
}

fn heads_of(id: kith_proto::RequestId, authors: Vec<kith_proto::PublicKey>) -> ClientFrame {
    ClientFrame::Heads(Heads { id, authors })
}

/// A content object nested `depth` objects deep (the content itself counts as one).
fn nested_content(depth: usize) -> Result<kith_proto::canonical::CanonicalObject, Failure> {
    let mut v = json!({});
    for _ in 1..depth {
        v = json!({ "a": v });
    }
    match CanonicalValue::from_json(&v) {
        Ok(CanonicalValue::Object(o)) => Ok(o),
        other => Err(Failure::fail("a nested test object", format!("{other:?}"))),
    }
}

/// A text of `n` bytes.
fn text_of(n: usize) -> String {
    "a".repeat(n)
}

/// A draft edit that makes the entry a profile whose content is exactly these text members.
fn profile(members: &[(&str, String)]) -> Result<impl FnOnce(&mut EntryDraft) + Send, Failure> {
    let profile = kind("profile")?;
    let content: CanonicalObject =
        members.iter().map(|(name, text)| (name.to_string(), CanonicalValue::string(text.as_str()))).collect();
    Ok(move |d: &mut EntryDraft| {
        d.kind = profile;
        d.content = content;
    })
}

/// The publish cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "PUB-VALID-001",
            Must,
            &["FEED-3", "ENTRY-1", "ENTRY-23"],
            "a first entry is stored: publish_ok with its id and duplicate false",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut feed = Feed::new(&s.user);
                let e = feed.next("hello");
                let ok = s.publish_ok(&e).await?;
                check_eq("entry_id", ok.entry_id, entry_id(&e)?)?;
                check_eq("duplicate", ok.duplicate, false)
            }),
        ),
        Case::new(
            "PUB-CHAIN-001",
            Must,
            &["ENTRY-27", "FEED-3"],
            "a chain of ten entries is accepted in order",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut feed = Feed::new(&s.user);
                for i in 0..10 {
                    let e = feed.next(&format!("entry {i}"));
                    let ok = s.publish_ok(&e).await?;
                    check_eq("duplicate", ok.duplicate, false)?;
                }
                Ok(())
            }),
        ),
        Case::new(
            "PUB-VISIBLE-001",
            Must,
            &["FEED-5", "FEED-30", "FEED-1"],
            "a published entry is at once visible to get on another connection, unchanged",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut other = ctx.user().await?;
                let e = Feed::new(&s.user).next("visible");
                s.publish_ok(&e).await?;
                let id = entry_id(&e)?;
                let answer = other.call(|rid| get_by_id(rid, id)).await?;
                let got = want!(answer, GetOk);
                check_eq("entry id of get_ok", entry_id(&got.entry)?, id)
            }),
        ),
        Case::new(
            "PUB-DUP-001",
            Must,
            &["ENTRY-28", "FEED-4"],
            "re-publishing the head is a duplicate: publish_ok with duplicate true",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let e = Feed::new(&s.user).next("twice");
                s.publish_ok(&e).await?;
                let ok = s.publish_ok(&e).await?;
                check_eq("duplicate", ok.duplicate, true)?;
                check_eq("entry_id", ok.entry_id, entry_id(&e)?)
            }),
        ),
        Case::new(
            "PUB-DUP-002",
            Must,
            &["ENTRY-31", "FEED-4"],
            "re-publishing an entry below the head is a duplicate",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut feed = Feed::new(&s.user);
                let first = feed.next("one");
                s.publish_ok(&first).await?;
                for i in 0..3 {
                    let e = feed.next(&format!("more {i}"));
                    s.publish_ok(&e).await?;
                }
                let ok = s.publish_ok(&first).await?;
                check_eq("duplicate", ok.duplicate, true)
            }),
        ),
        Case::new(
            "PUB-DUP-003",
            Must,
            &["ACCT-50", "ENTRY-33"],
            "a duplicate changes no account counter",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let e = Feed::new(&s.user).next("count once");
                s.publish_ok(&e).await?;
                let before = s.account().await?;
                s.publish_ok(&e).await?;
                let after = s.account().await?;
                check_eq("account after a duplicate", after, before)
            }),
        ),
        Case::new(
            "PUB-DUP-004",
            Must,
            &["ACCT-50", "FEED-4"],
            "a duplicate published by someone else is free for them too",
            run!(|ctx| {
                let mut a = ctx.user().await?;
                let mut b = ctx.user().await?;
                let e = Feed::new(&a.user).next("shared");
                a.publish_ok(&e).await?;
                let before = b.account().await?;
                let ok = b.publish_ok(&e).await?;
                check_eq("duplicate", ok.duplicate, true)?;
                check_eq("publisher's account", b.account().await?, before)
            }),
        ),
        Case::new(
            "PUB-FORK-001",
            Must,
            &["ENTRY-29"],
            "a different entry at the head's seq is a fork",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut feed = Feed::new(&s.user);
                let a = feed.next("a");
                s.publish_ok(&a).await?;
                let b = Feed::new(&s.user).next("b");
                s.publish_refused(&b, ErrorCode::Fork).await
            }),
        ),
        Case::new(
            "PUB-FORK-002",
            Must,
            &["ENTRY-32"],
            "a different entry below the head is a fork",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut feed = Feed::new(&s.user);
                for i in 0..4 {
                    let e = feed.next(&format!("{i}"));
                    s.publish_ok(&e).await?;
                }
                let mut alt = Feed::new(&s.user);
                alt.last = feed.all.get(1).cloned();
                let e = alt.next("another third");
                s.publish_refused(&e, ErrorCode::Fork).await
            }),
        ),
        Case::new(
            "PUB-FORK-003",
            Must,
            &["ENTRY-29", "ENTRY-33"],
            "a refused fork leaves the held entry and head in place",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let a = Feed::new(&s.user).next("a");
                s.publish_ok(&a).await?;
                let before = s.account().await?;
                let b = Feed::new(&s.user).next("b");
                s.publish_refused(&b, ErrorCode::Fork).await?;
                // Nothing charged or counted for the refused entry ([ENTRY-33]).
                check_eq("account after the refused fork", s.account().await?, before)?;
                let answer = s.call(|id| heads_of(id, vec![a.author])).await?;
                let heads = want!(answer, HeadsOk).heads;
                check(heads.len() == 1 && heads[0].entry_id == entry_id(&a)?, "the head still the first entry", &heads)
            }),
        ),
        Case::new(
            "PUB-GAP-001",
            Must,
            &["ENTRY-24"],
            "an entry that skips a seq is bad_sequence",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut feed = Feed::new(&s.user);
                let e = feed.next("1");
                s.publish_ok(&e).await?;
                let _skipped = feed.next("2");
                let e3 = feed.next("3");
                s.publish_refused(&e3, ErrorCode::BadSequence).await
            }),
        ),
        Case::new(
            "PUB-PREV-001",
            Must,
            &["ENTRY-25"],
            "an entry at head+1 whose prev is not the head's id is bad_prev",
            run!(|ctx| { successor(&mut ctx, Some(ErrorCode::BadPrev), |d, _| d.prev = Some(random_id())).await }),
        ),
        Case::new(
            "PUB-PREV-002",
            Must,
            &["ENTRY-25", "ENTRY-33"],
            "after a refused bad_prev, the right successor is still accepted",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut feed = Feed::new(&s.user);
                let e = feed.next("1");
                s.publish_ok(&e).await?;
                let mut d = feed.draft();
                d.prev = Some(random_id());
                s.publish_refused(&d.sign(&s.user), ErrorCode::BadPrev).await?;
                let good = feed.next("2");
                s.publish_ok(&good).await.map(|_| ())
            }),
        ),
        Case::new(
            "PUB-TIME-001",
            Must,
            &["ENTRY-26"],
            "an entry older than its predecessor is bad_timestamp",
            run!(|ctx| {
                successor(&mut ctx, Some(ErrorCode::BadTimestamp), |d, e| d.timestamp = e.timestamp - 1).await
            }),
        ),
        Case::new(
            "PUB-TIME-002",
            Must,
            &["ENTRY-27"],
            "an entry with the same timestamp as its predecessor is accepted",
            run!(|ctx| { successor(&mut ctx, None, |d, e| d.timestamp = e.timestamp).await }),
        ),
        Case::new(
            "PUB-ANCHOR-001",
            Must,
            &["ENTRY-23"],
            "the first entry a node sees of a feed anchors it at any seq",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut d = Feed::stranger().draft();
                d.seq = 7;
                d.prev = Some(random_id());
                let author = SecretKey::random();
                let e = d.sign(&author);
                s.publish_ok(&e).await?;
                let mut feed = Feed::new(&author);
                feed.last = kith_proto::verify_entry(&e).ok();
                let next = feed.next("8");
                s.publish_ok(&next).await.map(|_| ())
            }),
        ),
        Case::new(
            "PUB-OTHERS-001",
            Must,
            &["FEED-3", "ENTRY-23"],
            "entries by an author without an account are stored",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut feed = Feed::stranger();
                for i in 0..3 {
                    let e = feed.next(&format!("{i}"));
                    s.publish_ok(&e).await?;
                }
                Ok(())
            }),
        ),
        Case::new(
            "PUB-OTHERS-002",
            Must,
            &["ACCT-47", "ACCT-48"],
            "publishing another user's entry is charged to the publisher",
            run!(|ctx| {
                let mut a = ctx.user().await?;
                let mut b = ctx.user().await?;
                let e = Feed::new(&a.user).next("by a, carried by b");
                let before = b.account().await?;
                b.publish_ok(&e).await?;
                let after = b.account().await?;
                check_eq("b.published_entries", after.published_entries, before.published_entries + 1)?;
                check_eq("a.published_entries", a.account().await?.published_entries, 0)
            }),
        ),
        Case::new(
            "PUB-SEQ0-001",
            Must,
            &["ENTRY-6"],
            "seq 0 is bad_sequence",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut d = Feed::new(&s.user).draft();
                d.seq = 0;
                let e = d.sign(&s.user);
                let mut v = entry_json(&e);
                v["seq"] = json!(0);
                s.publish_raw_refused(v, ErrorCode::BadSequence).await
            }),
        ),
        Case::new(
            "PUB-PREVSHAPE-001",
            Must,
            &["ENTRY-8"],
            "seq 1 with a prev is bad_prev",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut d = Feed::new(&s.user).draft();
                d.prev = Some(random_id());
                let e = d.sign(&s.user);
                s.publish_raw_refused(entry_json(&e), ErrorCode::BadPrev).await
            }),
        ),
        Case::new(
            "PUB-PREVSHAPE-002",
            Must,
            &["ENTRY-8"],
            "seq 2 with prev null is bad_prev",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut d = Feed::new(&s.user).draft();
                d.seq = 2;
                let e = d.sign(&s.user);
                s.publish_raw_refused(entry_json(&e), ErrorCode::BadPrev).await
            }),
        ),
        Case::new(
            "PUB-MISSING-001",
            Must,
            &["ENTRY-2"],
            "an entry lacking `refs` is malformed_entry",
            run!(|ctx| {
                raw_entry_refused(&mut ctx, ErrorCode::MalformedEntry, |v| {
                    if let Some(o) = v.as_object_mut() {
                        o.remove("refs");
                    }
                })
                .await
            }),
        ),
        Case::new(
            "PUB-NOT-OBJECT-001",
            Must,
            &["ENTRY-2", "FEED-2"],
            "an entry that is a string is malformed_entry",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                s.publish_raw_refused(json!("entry"), ErrorCode::MalformedEntry).await
            }),
        ),
        Case::new(
            "PUB-NO-ENTRY-001",
            Must,
            &["FEED-2"],
            "a publish without `entry` is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s.call_json(json!({"type": "publish"})).await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "PUB-EXTRA-001",
            Must,
            &["ENTRY-3"],
            "an entry with an unknown member is malformed_entry",
            run!(|ctx| { raw_entry_refused(&mut ctx, ErrorCode::MalformedEntry, |v| v["extra"] = json!(true)).await }),
        ),
        Case::new(
            "PUB-KIND-TYPE-001",
            Must,
            &["ENTRY-4"],
            "an entry whose seq is a string is malformed_entry",
            run!(|ctx| { raw_entry_refused(&mut ctx, ErrorCode::MalformedEntry, |v| v["seq"] = json!("1")).await }),
        ),
        Case::new(
            "PUB-KIND-TYPE-002",
            Must,
            &["ENTRY-4"],
            "an entry whose content is an array is malformed_entry",
            run!(|ctx| { raw_entry_refused(&mut ctx, ErrorCode::MalformedEntry, |v| v["content"] = json!([1])).await }),
        ),
        Case::new(
            "PUB-ENCODING-001",
            Must,
            &["ENTRY-5", "ENC-11"],
            "an entry whose author is uppercase hex is bad_encoding",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut v = entry_json(&Feed::new(&s.user).next("x"));
                v["author"] = json!(s.user.public().to_string().to_uppercase());
                s.publish_raw_refused(v, ErrorCode::BadEncoding).await
            }),
        ),
        Case::new(
            "PUB-ENCODING-002",
            Must,
            &["ENTRY-5", "ENC-12"],
            "an entry whose sig has 126 hex characters is bad_encoding",
            run!(|ctx| {
                raw_entry_refused(&mut ctx, ErrorCode::BadEncoding, |v| v["sig"] = json!("ab".repeat(63))).await
            }),
        ),
        Case::new(
            "PUB-ENCODING-003",
            Must,
            &["ENTRY-5", "ENC-11"],
            "an entry with a `0x`-prefixed ref is bad_encoding",
            run!(|ctx| {
                raw_entry_refused(&mut ctx, ErrorCode::BadEncoding, |v| {
                    v["refs"] = json!([format!("0x{}", "ab".repeat(31))])
                })
                .await
            }),
        ),
        Case::new(
            "PUB-WEAK-001",
            Must,
            &["ENTRY-5", "ENC-14"],
            "an entry by a small-order key is weak_key",
            run!(|ctx| { raw_entry_refused(&mut ctx, ErrorCode::WeakKey, |v| v["author"] = json!(WEAK_KEY)).await }),
        ),
        Case::new(
            "PUB-WEAK-002",
            Must,
            &["ENTRY-5", "ENC-14"],
            "an entry mentioning a small-order key is weak_key",
            run!(|ctx| {
                raw_entry_refused(&mut ctx, ErrorCode::WeakKey, |v| v["mentions"] = json!([WEAK_KEY])).await
            }),
        ),
        Case::new(
            "PUB-NEG-TIMESTAMP-001",
            Must,
            &["ENTRY-7"],
            "a negative timestamp is malformed_entry",
            run!(|ctx| {
                raw_entry_refused(&mut ctx, ErrorCode::MalformedEntry, |v| v["timestamp"] = json!(-5)).await
            }),
        ),
        Case::new(
            "PUB-KIND-001",
            Must,
            &["ENTRY-9"],
            "an uppercase kind is malformed_entry",
            run!(|ctx| { raw_entry_refused(&mut ctx, ErrorCode::MalformedEntry, |v| v["kind"] = json!("Post")).await }),
        ),
        Case::new(
            "PUB-KIND-002",
            Must,
            &["ENTRY-9"],
            "a kind of 65 characters is malformed_entry",
            run!(|ctx| {
                raw_entry_refused(&mut ctx, ErrorCode::MalformedEntry, |v| v["kind"] = json!("k".repeat(65))).await
            }),
        ),
        Case::new(
            "PUB-KIND-003",
            Must,
            &["ENTRY-9"],
            "a kind of 64 characters from the whole alphabet is accepted",
            run!(|ctx| {
                let k = kind(&format!("a.b_c:d-9{}", "z".repeat(55)))?;
                draft_accepted(&mut ctx, |d| d.kind = k).await
            }),
        ),
        Case::new(
            "PUB-MENTIONS-001",
            Must,
            &["ENTRY-10"],
            "65 mentions are malformed_entry",
            run!(|ctx| {
                draft_refused(&mut ctx, ErrorCode::MalformedEntry, |d| {
                    d.mentions = (0..65).map(|_| SecretKey::random().public()).collect()
                })
                .await
            }),
        ),
        Case::new(
            "PUB-MENTIONS-002",
            Must,
            &["ENTRY-11"],
            "a key mentioned twice is malformed_entry",
            run!(|ctx| {
                draft_refused(&mut ctx, ErrorCode::MalformedEntry, |d| {
                    let k = SecretKey::random().public();
                    d.mentions = vec![k, k];
                })
                .await
            }),
        ),
        Case::new(
            "PUB-MENTIONS-003",
            Must,
            &["ENTRY-10"],
            "64 mentions are accepted",
            run!(|ctx| {
                draft_accepted(&mut ctx, |d| d.mentions = (0..64).map(|_| SecretKey::random().public()).collect()).await
            }),
        ),
        Case::new(
            "PUB-REFS-001",
            Must,
            &["ENTRY-12"],
            "65 refs are malformed_entry",
            run!(|ctx| {
                draft_refused(&mut ctx, ErrorCode::MalformedEntry, |d| d.refs = (0..65).map(|_| random_id()).collect())
                    .await
            }),
        ),
        Case::new(
            "PUB-REFS-002",
            Must,
            &["ENTRY-13"],
            "an id referenced twice is malformed_entry",
            run!(|ctx| {
                draft_refused(&mut ctx, ErrorCode::MalformedEntry, |d| {
                    let r = random_id();
                    d.refs = vec![r, r];
                })
                .await
            }),
        ),
        Case::new(
            "PUB-PROFILE-001",
            Must,
            &["ENTRY-14"],
            "a profile without a name is malformed_entry",
            run!(|ctx| {
                draft_refused(&mut ctx, ErrorCode::MalformedEntry, profile(&[("about", "nameless".into())])?).await
            }),
        ),
        Case::new(
            "PUB-PROFILE-002",
            Must,
            &["ENTRY-14"],
            "a profile name of 65 bytes is malformed_entry",
            run!(|ctx| {
                draft_refused(&mut ctx, ErrorCode::MalformedEntry, profile(&[("name", text_of(65))])?).await
            }),
        ),
        Case::new(
            "PUB-PROFILE-003",
            Must,
            &["ENTRY-15"],
            "a profile `about` of 1025 bytes is malformed_entry",
            run!(|ctx| {
                draft_refused(
                    &mut ctx,
                    ErrorCode::MalformedEntry,
                    profile(&[("name", "ann".into()), ("about", text_of(1025))])?,
                )
                .await
            }),
        ),
        Case::new(
            "PUB-PROFILE-004",
            Must,
            &["ENTRY-14", "ENTRY-15"],
            "a profile with a 64-byte name and a 1024-byte about is accepted",
            run!(|ctx| {
                draft_accepted(&mut ctx, profile(&[("name", text_of(64)), ("about", text_of(1024))])?).await
            }),
        ),
        Case::new(
            "PUB-DEPTH-001",
            Must,
            &["ENTRY-16"],
            "content nested 40 levels deep is malformed_entry",
            run!(|ctx| {
                let content = nested_content(40)?;
                draft_refused(&mut ctx, ErrorCode::MalformedEntry, |d| d.content = content).await
            }),
        ),
        Case::new(
            "PUB-DEPTH-002",
            Must,
            &["ENTRY-16"],
            "content nested 20 levels deep is accepted",
            run!(|ctx| {
                let content = nested_content(20)?;
                draft_accepted(&mut ctx, |d| d.content = content).await
            }),
        ),
        Case::new(
            "PUB-SIZE-001",
            Must,
            &["ENTRY-17"],
            "an entry of 16385 canonical bytes is entry_too_large",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let feed = Feed::new(&s.user);
                let base = entry_size(&feed.draft().text("").sign(&s.user)) as usize;
                let e = feed.draft().text(&text_of(16385 - base)).sign(&s.user);
                check_eq("canonical size", entry_size(&e), 16385)?;
                s.publish_refused(&e, ErrorCode::EntryTooLarge).await
            }),
        ),
        Case::new(
            "PUB-SIZE-002",
            Must,
            &["ENTRY-17", "FRAME-4"],
            "an entry of exactly 16384 canonical bytes is accepted",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let feed = Feed::new(&s.user);
                let base = entry_size(&feed.draft().text("").sign(&s.user)) as usize;
                let e = feed.draft().text(&text_of(16384 - base)).sign(&s.user);
                check_eq("canonical size", entry_size(&e), 16384)?;
                s.publish_ok(&e).await.map(|_| ())
            }),
        ),
        Case::new(
            "PUB-SIG-001",
            Must,
            &["ENTRY-18"],
            "an entry changed after signing is bad_signature",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut v = entry_json(&Feed::new(&s.user).next("original"));
                v["content"]["text"] = json!("altered");
                s.publish_raw_refused(v, ErrorCode::BadSignature).await
            }),
        ),
        Case::new(
            "PUB-SIG-002",
            Must,
            &["ENTRY-18"],
            "an entry signed by a key other than its author is bad_signature",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let e = Feed::stranger().next("by someone");
                let mut v = entry_json(&e);
                v["author"] = json!(s.user.public().to_string());
                s.publish_raw_refused(v, ErrorCode::BadSignature).await
            }),
        ),
        Case::new(
            "PUB-SIG-003",
            Must,
            &["ENTRY-18", "SIGN-9", "ENTRY-20"],
            "an entry signed under another context string is bad_signature",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let e = Feed::new(&s.user).next("wrong context");
                let unsigned = e.unsigned_value();
                let sig = s.user.sign(kith_proto::Context::IdentityNote, &unsigned);
                let mut v = entry_json(&e);
                v["sig"] = json!(sig.to_string());
                s.publish_raw_refused(v, ErrorCode::BadSignature).await
            }),
        ),
        Case::new(
            "PUB-SIG-004",
            Must,
            &["ENTRY-18", "SIGN-14"],
            "a signature with S >= L (malleated) is bad_signature",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let e = Feed::new(&s.user).next("malleable?");
                let mut v = entry_json(&e);
                v["sig"] = json!(malleated(&e.sig).to_string());
                s.publish_raw_refused(v, ErrorCode::BadSignature).await
            }),
        ),
        Case::new(
            "PUB-FLOAT-001",
            Must,
            &["ENC-4", "FRAME-17"],
            "a float inside entry content is malformed_frame with id null",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut v = entry_json(&Feed::new(&s.user).next("x"));
                v["content"]["n"] = json!(0.5);
                let answer = s.call_json(json!({"type": "publish", "entry": v})).await?;
                let e = expect_error(answer, ErrorCode::MalformedFrame)?;
                check(e.id.is_none(), "id null (FRAME-17)", e.id)
            }),
        ),
        Case::new(
            "PUB-CONCURRENT-001",
            Must,
            &["ENTRY-34"],
            "the same chain published concurrently on two connections ends in one consistent feed",
            run!(|ctx| {
                let mut a = ctx.user().await?;
                let mut b = ctx.user().await?;
                let mut feed = Feed::stranger();
                let entries: Vec<_> = (0..20).map(|i| feed.next(&format!("{i}"))).collect();
                let ea = entries.clone();
                let ta = tokio::spawn(async move {
                    let mut dups = 0;
                    for e in &ea {
                        if a.publish_ok(e).await?.duplicate {
                            dups += 1;
                        }
                    }
                    Ok::<_, Failure>((a, dups))
                });
                let mut dups_b = 0;
                for e in &entries {
                    if b.publish_ok(e).await?.duplicate {
                        dups_b += 1;
                    }
                }
                let (_, dups_a) = ta.await.map_err(|e| Failure::fail("task", e.to_string()))??;
                check_eq("newly stored entries over both connections", 40 - dups_a - dups_b, 20)?;
                let answer = b.call(|id| heads_of(id, vec![feed.author()])).await?;
                let heads = want!(answer, HeadsOk).heads;
                check(heads.len() == 1 && heads[0].seq == 20, "head at seq 20", &heads)
            }),
        ),
        Case::new(
            "ALLOW-EXHAUST-001",
            Must,
            &["ACCT-49"],
            "with publish allowance 2 the third new entry is publish_allowance_exhausted",
            run!(|ctx| {
                let mut s = ctx.user_with(0, 2).await?;
                let mut feed = Feed::new(&s.user);
                for i in 0..2 {
                    let e = feed.next(&format!("{i}"));
                    s.publish_ok(&e).await?;
                }
                let e = feed.next("third");
                s.publish_refused(&e, ErrorCode::PublishAllowanceExhausted).await
            }),
        ),
        Case::new(
            "ALLOW-EXHAUST-002",
            Must,
            &["ACCT-49"],
            "an entry refused for the allowance is not stored",
            run!(|ctx| {
                let mut s = ctx.user_with(0, 0).await?;
                let e = Feed::new(&s.user).next("not stored");
                s.publish_refused(&e, ErrorCode::PublishAllowanceExhausted).await?;
                let id = entry_id(&e)?;
                let answer = s.call(|rid| get_by_id(rid, id)).await?;
                expect_error(answer, ErrorCode::NotFound).map(|_| ())
            }),
        ),
        Case::new(
            "ALLOW-COUNT-001",
            Must,
            &["ACCT-46", "ACCT-47", "ACCT-48"],
            "a new entry costs 1 allowance and adds 1 entry and its size in bytes",
            run!(|ctx| {
                let mut s = ctx.user_with(0, 5).await?;
                let e = Feed::new(&s.user).next("counted");
                s.publish_ok(&e).await?;
                let a = s.account().await?;
                check_eq("publish_allowance", a.publish_allowance, Some(4))?;
                check_eq("published_entries", a.published_entries, 1)?;
                check_eq("published_bytes", a.published_bytes, entry_size(&e))
            }),
        ),
        Case::new(
            "ALLOW-DUP-001",
            Must,
            &["ACCT-50"],
            "a duplicate is accepted at allowance 0",
            run!(|ctx| {
                let mut s = ctx.user_with(0, 1).await?;
                let e = Feed::new(&s.user).next("once");
                s.publish_ok(&e).await?;
                let ok = s.publish_ok(&e).await?;
                check_eq("duplicate", ok.duplicate, true)
            }),
        ),
        Case::new(
            "ALLOW-REJECT-001",
            Must,
            &["ACCT-50"],
            "a rejected entry is not charged",
            run!(|ctx| {
                let mut s = ctx.user_with(0, 5).await?;
                let mut v = entry_json(&Feed::new(&s.user).next("bad"));
                v["content"]["text"] = json!("tampered");
                s.publish_raw_refused(v, ErrorCode::BadSignature).await?;
                let a = s.account().await?;
                check_eq("publish_allowance", a.publish_allowance, Some(5))?;
                check_eq("published_bytes", a.published_bytes, 0)
            }),
        ),
        Case::new(
            "ALLOW-ADMIN-001",
            Must,
            &["ACCT-46", "ACCT-47", "ACCT-3"],
            "the admin's allowance stays null while its counters grow",
            run!(|ctx| {
                let mut admin = ctx.admin().await?;
                let before = admin.account().await?;
                let e = Feed::stranger().next("admin carries");
                admin.publish_ok(&e).await?;
                let after = admin.account().await?;
                check_eq("publish_allowance", after.publish_allowance, None)?;
                check(
                    after.published_entries > before.published_entries,
                    "published_entries grew",
                    after.published_entries,
                )
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malleated_signature_is_refused_by_strict_verification() {
        let k = SecretKey::from_seed([3; 32]);
        let sig = k.sign_raw(b"m");
        k.public().verify_strict(b"m", &sig).expect("valid");
        assert!(k.public().verify_strict(b"m", &malleated(&sig)).is_err());
    }
}
