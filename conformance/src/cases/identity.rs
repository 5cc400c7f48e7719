//! Identities and follows (spec chapter 09): `IDENT-*`, `FOLLOW-*`; versioning (chapter 11):
//! `VER-*`.

use kith_proto::account::{KeyReplacement, RemoveUser, ReplaceKey};
use kith_proto::identity::{AddIdentity, Follow, Follows, Identities, IdentityNote, Unfollow};
use kith_proto::{ClientFrame, ErrorCode, PublicKey, SecretKey};
use serde_json::json;

use crate::case::{check, check_eq, expect_error, Case, CaseResult, Failure, Level::*, Ops};
use crate::client::{now_ms, Session};
use crate::{run, want};

fn address(key: &PublicKey) -> String {
    format!("/ip4/127.0.0.1/ws/7777/{key}")
}

fn note(author: &SecretKey, subject: PublicKey, name: &str, updated: u64) -> IdentityNote {
    IdentityNote::sign(author, subject, name, vec![address(&subject)], "met at the market", updated)
}

async fn add(s: &mut Session, n: IdentityNote) -> Result<kith_proto::ServerFrame, Failure> {
    s.call(move |id| ClientFrame::AddIdentity(AddIdentity { id, note: n })).await
}

async fn add_json(s: &mut Session, n: serde_json::Value) -> Result<kith_proto::ServerFrame, Failure> {
    s.call_json(json!({"type": "add_identity", "note": n})).await
}

/// The notes the node lists about `subject`.
async fn notes_about(s: &mut Session, subject: PublicKey) -> Result<Vec<IdentityNote>, Failure> {
    let answer = s.call(|id| ClientFrame::Identities(Identities { id })).await?;
    let list = want!(answer, IdentitiesOk).identities;
    Ok(list.into_iter().filter(|i| i.key == subject).flat_map(|i| i.notes).collect())
}

async fn follows(s: &mut Session) -> Result<Vec<PublicKey>, Failure> {
    let answer = s.call(|id| ClientFrame::Follows(Follows { id })).await?;
    Ok(want!(answer, FollowsOk).keys)
}

async fn follow(s: &mut Session, key: PublicKey) -> CaseResult {
    let answer = s.call(move |id| ClientFrame::Follow(Follow { id, key })).await?;
    want!(answer, FollowOk);
    Ok(())
}

fn note_json(n: &IdentityNote) -> serde_json::Value {
    serde_json::to_value(n).unwrap_or_default()
}

/// The identity, follow and version cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "IDENT-ADD-001",
            Must,
            &["IDENT-11", "IDENT-14", "IDENT-15"],
            "a note by the session's user is stored and listed",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let subject = SecretKey::random().public();
                let n = note(&s.user, subject, "Ann", now_ms());
                want!(add(&mut s, n.clone()).await?, AddIdentityOk);
                check_eq("notes about the subject", notes_about(&mut s, subject).await?, vec![n])
            }),
        ),
        Case::new(
            "IDENT-NEWER-001",
            Must,
            &["IDENT-12"],
            "a newer note by the same author replaces the older",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let subject = SecretKey::random().public();
                let t = now_ms();
                let n = note(&s.user, subject, "Ann", t);
                want!(add(&mut s, n).await?, AddIdentityOk);
                let newer = note(&s.user, subject, "Anna", t + 1);
                want!(add(&mut s, newer.clone()).await?, AddIdentityOk);
                check_eq("notes", notes_about(&mut s, subject).await?, vec![newer])
            }),
        ),
        Case::new(
            "IDENT-OLDER-001",
            Must,
            &["IDENT-13", "IDENT-14"],
            "an older or equally old note is acknowledged and discarded",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let subject = SecretKey::random().public();
                let t = now_ms();
                let kept = note(&s.user, subject, "Ann", t);
                want!(add(&mut s, kept.clone()).await?, AddIdentityOk);
                let n = note(&s.user, subject, "Old", t - 1);
                want!(add(&mut s, n).await?, AddIdentityOk);
                let n = note(&s.user, subject, "Same", t);
                want!(add(&mut s, n).await?, AddIdentityOk);
                check_eq("notes", notes_about(&mut s, subject).await?, vec![kept])
            }),
        ),
        Case::new(
            "IDENT-AUTHOR-001",
            Must,
            &["IDENT-9"],
            "a note by another author is forbidden",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let other = SecretKey::random();
                let answer = add(&mut s, note(&other, SecretKey::random().public(), "X", now_ms())).await?;
                expect_error(answer, ErrorCode::Forbidden).map(|_| ())
            }),
        ),
        Case::new(
            "IDENT-SIG-001",
            Must,
            &["IDENT-10"],
            "a note with a bad signature is bad_signature",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut n = note(&s.user, SecretKey::random().public(), "Ann", now_ms());
                n.display_name = "Eve".into();
                expect_error(add(&mut s, n).await?, ErrorCode::BadSignature).map(|_| ())
            }),
        ),
        Case::new(
            "IDENT-NAME-001",
            Must,
            &["IDENT-4"],
            "an empty display name is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let n = note(&s.user, SecretKey::random().public(), "", now_ms());
                expect_error(add(&mut s, n).await?, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "IDENT-NAME-002",
            Must,
            &["IDENT-4"],
            "a display name of 65 bytes is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let n = note(&s.user, SecretKey::random().public(), &"n".repeat(65), now_ms());
                expect_error(add(&mut s, n).await?, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "IDENT-NOTE-001",
            Must,
            &["IDENT-5"],
            "a note text of 1025 bytes is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let subject = SecretKey::random().public();
                let n = IdentityNote::sign(&s.user, subject, "Ann", vec![], &"x".repeat(1025), now_ms());
                expect_error(add(&mut s, n).await?, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "IDENT-ADDR-001",
            Must,
            &["IDENT-6"],
            "nine addresses are invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let addrs = (0..9).map(|_| address(&SecretKey::random().public())).collect();
                let n = IdentityNote::sign(&s.user, SecretKey::random().public(), "Ann", addrs, "", now_ms());
                expect_error(add(&mut s, n).await?, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "IDENT-ADDR-002",
            Must,
            &["IDENT-7"],
            "an address outside the grammar is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let n = IdentityNote::sign(
                    &s.user,
                    SecretKey::random().public(),
                    "Ann",
                    vec!["http://example.org/".into()],
                    "",
                    now_ms(),
                );
                expect_error(add(&mut s, n).await?, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "IDENT-ADDR-003",
            Must,
            &["IDENT-8"],
            "the same address twice is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let a = address(&SecretKey::random().public());
                let n =
                    IdentityNote::sign(&s.user, SecretKey::random().public(), "Ann", vec![a.clone(), a], "", now_ms());
                expect_error(add(&mut s, n).await?, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "IDENT-MISSING-001",
            Must,
            &["IDENT-2"],
            "a note without `updated` is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut v = note_json(&note(&s.user, SecretKey::random().public(), "Ann", now_ms()));
                if let Some(o) = v.as_object_mut() {
                    o.remove("updated");
                }
                expect_error(add_json(&mut s, v).await?, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "IDENT-EXTRA-001",
            Must,
            &["IDENT-2"],
            "a note with an unknown member is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut v = note_json(&note(&s.user, SecretKey::random().public(), "Ann", now_ms()));
                v["mood"] = json!("happy");
                expect_error(add_json(&mut s, v).await?, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "IDENT-ENCODING-001",
            Must,
            &["IDENT-3"],
            "a note whose subject is not hex is bad_encoding",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut v = note_json(&note(&s.user, SecretKey::random().public(), "Ann", now_ms()));
                v["subject"] = json!("q".repeat(64));
                expect_error(add_json(&mut s, v).await?, ErrorCode::BadEncoding).map(|_| ())
            }),
        ),
        Case::new(
            "IDENT-ORDER-001",
            Must,
            &["IDENT-16", "IDENT-17"],
            "identities are ordered by key and their notes by author",
            run!(|ctx| {
                let mut a = ctx.user().await?;
                let mut b = ctx.user().await?;
                let subject = SecretKey::random().public();
                let n = note(&a.user, subject, "A says", now_ms());
                want!(add(&mut a, n).await?, AddIdentityOk);
                let n = note(&b.user, subject, "B says", now_ms());
                want!(add(&mut b, n).await?, AddIdentityOk);
                // A second subject, so that there are at least two identity objects to order.
                let other = SecretKey::random().public();
                let n = note(&a.user, other, "A again", now_ms());
                want!(add(&mut a, n).await?, AddIdentityOk);
                let answer = a.call(|id| ClientFrame::Identities(Identities { id })).await?;
                let list = want!(answer, IdentitiesOk).identities;
                let keys: Vec<String> = list.iter().map(|i| i.key.to_string()).collect();
                check(keys.windows(2).all(|w| w[0] < w[1]), "keys strictly ascending", &keys)?;
                for i in &list {
                    let authors: Vec<String> = i.notes.iter().map(|n| n.author.to_string()).collect();
                    check(authors.windows(2).all(|w| w[0] < w[1]), "authors strictly ascending", &authors)?;
                }
                check_eq("notes about the subject", notes_about(&mut a, subject).await?.len(), 2)?;
                check_eq("notes about the other subject", notes_about(&mut a, other).await?.len(), 1)
            }),
        ),
        Case::new(
            "IDENT-REMOVED-001",
            Must,
            &["IDENT-15"],
            "notes by a removed account are no longer listed",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let subject = SecretKey::random().public();
                let n = note(&s.user, subject, "gone soon", now_ms());
                want!(add(&mut s, n).await?, AddIdentityOk);
                let mut admin = ctx.admin().await?;
                let key = s.user.public();
                want!(admin.call(move |id| ClientFrame::RemoveUser(RemoveUser { id, key })).await?, RemoveUserOk);
                check_eq("notes", notes_about(&mut admin, subject).await?, vec![])
            }),
        ),
        Case::new(
            "FOLLOW-001",
            Must,
            &["IDENT-20", "IDENT-22"],
            "follow adds the key, also a second time",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let k = SecretKey::random().public();
                follow(&mut s, k).await?;
                follow(&mut s, k).await?;
                check_eq("follows", follows(&mut s).await?, vec![k])
            }),
        ),
        Case::new(
            "FOLLOW-002",
            Must,
            &["IDENT-21"],
            "unfollow removes the key, and succeeds when it was not followed",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let k = SecretKey::random().public();
                follow(&mut s, k).await?;
                want!(s.call(move |id| ClientFrame::Unfollow(Unfollow { id, key: k })).await?, UnfollowOk);
                want!(s.call(move |id| ClientFrame::Unfollow(Unfollow { id, key: k })).await?, UnfollowOk);
                check_eq("follows", follows(&mut s).await?, vec![])
            }),
        ),
        Case::new(
            "FOLLOW-003",
            Must,
            &["IDENT-22"],
            "follows lists keys in ascending order",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut keys: Vec<PublicKey> = (0..5).map(|_| SecretKey::random().public()).collect();
                for k in &keys {
                    follow(&mut s, *k).await?;
                }
                keys.sort_by_key(|k| k.to_string());
                check_eq("follows", follows(&mut s).await?, keys)
            }),
        ),
        Case::new(
            "FOLLOW-004",
            Must,
            &["IDENT-19"],
            "follow of a key that is not hex is bad_encoding",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                expect_error(s.call_json(json!({"type": "follow", "key": "beef"})).await?, ErrorCode::BadEncoding)
                    .map(|_| ())
            }),
        ),
        Case::new(
            "FOLLOW-005",
            Must,
            &["IDENT-23"],
            "the follow set survives a key replacement",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let k = SecretKey::random().public();
                follow(&mut s, k).await?;
                let new = SecretKey::random();
                let r = KeyReplacement::sign(ctx.target.node_key, &s.user, &new, now_ms() + 600_000);
                want!(
                    s.call(move |id| ClientFrame::ReplaceKey(ReplaceKey { id, replacement: r })).await?,
                    ReplaceKeyOk
                );
                let mut n = ctx.login(&new).await?;
                check_eq("follows", follows(&mut n).await?, vec![k])
            }),
        ),
        Case::new(
            "FOLLOW-006",
            Must,
            &["IDENT-22"],
            "follow sets are per account",
            run!(|ctx| {
                let mut a = ctx.user().await?;
                let mut b = ctx.user().await?;
                follow(&mut a, SecretKey::random().public()).await?;
                check_eq("b's follows", follows(&mut b).await?, vec![])
            }),
        ),
        Case::new(
            "VER-LIST-001",
            Must,
            &["VER-2"],
            "node_info lists kith/1 once among its versions",
            run!(|ctx| {
                let mut c = ctx.connect().await?;
                let answer = c.call(|id| ClientFrame::NodeInfo(kith_proto::node_info::NodeInfo { id })).await?;
                let v = want!(answer, NodeInfoOk).versions;
                check_eq("occurrences of kith/1", v.iter().filter(|x| *x == "kith/1").count(), 1)
            }),
        ),
        Case::new(
            "VER-FEATURES-001",
            Must,
            &["VER-8", "FRAME-26"],
            "features is a list of distinct names",
            run!(|ctx| {
                let mut c = ctx.connect().await?;
                let answer = c.call(|id| ClientFrame::NodeInfo(kith_proto::node_info::NodeInfo { id })).await?;
                let f = want!(answer, NodeInfoOk).features;
                let set: std::collections::BTreeSet<&String> = f.iter().collect();
                check_eq("distinct features", set.len(), f.len())
            }),
        ),
        Case::new(
            "VER-EXACT-001",
            Must,
            &["VER-1", "HS-22"],
            "a version spelled differently (KITH/1) is unsupported_version",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 0).await?;
                let mut hs = crate::cases::handshake::prepare(&mut ctx, &user, now_ms() + 600_000).await?;
                let mut v = serde_json::to_value(ClientFrame::Hello(hs.hello.clone())).unwrap_or_default();
                v["version"] = json!("KITH/1");
                let answer = hs.conn.request_json(v, crate::client::DEFAULT_WAIT).await?;
                crate::cases::handshake::refused_and_closed(&mut hs.conn, answer, ErrorCode::UnsupportedVersion).await
            }),
        ),
    ]
}
