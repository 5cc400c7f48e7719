//! Identities and follows (spec chapter 09): `IDENT-*`, `FOLLOW-*`; versioning (chapter 11):
//! `VER-*`.

use kith_proto::account::{KeyReplacement, RemoveUser, ReplaceKey};
use kith_proto::identity::{
    AddIdentity, Follow, Follows, Identities, IdentitiesOk, IdentityNote, NotePosition, Unfollow, MAX_FOLLOWS_PAGE,
    MAX_IDENTITIES_PAGE_BYTES,
};
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

/// Every page of `identities_ok`, following `more` with the last listed position ([IDENT-29]).
async fn identity_pages(s: &mut Session) -> Result<Vec<IdentitiesOk>, Failure> {
    let mut pages: Vec<IdentitiesOk> = Vec::new();
    let mut after: Option<NotePosition> = None;
    loop {
        let answer = s.call(move |id| ClientFrame::Identities(Identities { id, after })).await?;
        let page = want!(answer, IdentitiesOk);
        let last = page.identities.last().and_then(|i| i.notes.last()).map(IdentityNote::position);
        let more = page.more;
        pages.push(page);
        if !more {
            return Ok(pages);
        }
        match last {
            Some(p) => after = Some(p),
            None => return Err(Failure::fail("a note on a page with more: true", "identities_ok with no note")),
        }
        if pages.len() > 100_000 {
            return Err(Failure::fail("a last page", "more than 100000 pages of identities_ok"));
        }
    }
}

/// The notes the node lists about `subject`, across the pages.
/// Creates an account again for `key` through `admin` and checks that it lists no note about
/// `subject`: the notes signed by a `what` (removed or replaced) key are gone with it
/// ([IDENT-31], [IDENT-32]).
async fn recreated_lists_no_notes(
    ctx: &mut crate::case::Ctx,
    admin: &mut Session,
    key: &SecretKey,
    subject: PublicKey,
    what: &str,
) -> CaseResult {
    admin
        .create_user(key.public(), &crate::client::fresh_name(), 0, 0)
        .await
        .map_err(|e| Failure::fail(format!("create_user_ok for the {what} key"), e.to_string()))?;
    let mut again = ctx.login(key).await?;
    check_eq(&format!("notes signed by the {what} key"), notes_about(&mut again, subject).await?, vec![])
}

pub(crate) async fn notes_about(s: &mut Session, subject: PublicKey) -> Result<Vec<IdentityNote>, Failure> {
    let pages = identity_pages(s).await?;
    Ok(pages.into_iter().flat_map(|p| p.identities).filter(|i| i.key == subject).flat_map(|i| i.notes).collect())
}

/// The follow set, across the pages ([IDENT-30]).
async fn follows(s: &mut Session) -> Result<Vec<PublicKey>, Failure> {
    let mut keys: Vec<PublicKey> = Vec::new();
    loop {
        let after = keys.last().copied();
        let answer = s.call(move |id| ClientFrame::Follows(Follows { id, after })).await?;
        let page = want!(answer, FollowsOk);
        check(page.keys.len() <= MAX_FOLLOWS_PAGE, "follows_ok lists at most 256 keys", page.keys.len())?;
        let more = page.more;
        if more && page.keys.is_empty() {
            return Err(Failure::fail("a key on a page with more: true", "follows_ok with no key"));
        }
        keys.extend(page.keys);
        if !more {
            return Ok(keys);
        }
    }
}

/// A note of about `text` bytes more than the usual, about a fresh subject.
fn big_note(author: &SecretKey, text: usize) -> IdentityNote {
    let subject = SecretKey::random().public();
    IdentityNote::sign(author, subject, "Someone", vec![address(&subject)], &"x".repeat(text), now_ms())
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
                let answer = a.call(|id| ClientFrame::Identities(Identities { id, after: None })).await?;
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
            "IDENT-QUOTA-001",
            Must,
            &["IDENT-25"],
            "max_notes notes are stored; one more about a new subject is quota_exceeded, a newer version of a held one is not",
            run!(|ctx| {
                let max = ctx.target.limits.max_notes;
                let mut s = ctx.user().await?;
                let probe = big_note(&s.user, 0);
                if max > 64 || max.saturating_add(1).saturating_mul(probe.size()) > ctx.target.limits.max_note_bytes {
                    return Err(Failure::not_applicable(format!("max_notes {max} is too many to store, or not the first bound")));
                }
                let mut held = Vec::new();
                for _ in 0..max {
                    let n = big_note(&s.user, 0);
                    want!(add(&mut s, n.clone()).await?, AddIdentityOk);
                    held.push(n);
                }
                let extra = big_note(&s.user, 0);
                expect_error(add(&mut s, extra.clone()).await?, ErrorCode::QuotaExceeded)?;
                check_eq("notes about the refused subject", notes_about(&mut s, extra.subject).await?, vec![])?;
                if let Some(first) = held.first() {
                    let newer = note(&s.user, first.subject, "Renamed", first.updated + 1);
                    want!(add(&mut s, newer).await?, AddIdentityOk);
                }
                Ok(())
            }),
        ),
        Case::new(
            "IDENT-QUOTA-002",
            Must,
            &["IDENT-25"],
            "notes up to max_note_bytes are stored; one that would pass it is quota_exceeded, before max_notes",
            run!(|ctx| {
                let l = ctx.target.limits.clone();
                let mut s = ctx.user().await?;
                // Control characters take six bytes each in the canonical form (`\u0001`), so
                // few notes reach the byte bound.
                let heavy = |author: &SecretKey| {
                    let subject = SecretKey::random().public();
                    IdentityNote::sign(author, subject, "Heavy", vec![], &"\u{1}".repeat(1024), now_ms())
                };
                let size = heavy(&s.user).size();
                let fit = l.max_note_bytes / size;
                if fit > 64 || fit.saturating_add(1) > l.max_notes {
                    return Err(Failure::not_applicable(format!(
                        "max_note_bytes {} holds {fit} notes of {size} bytes: too many, or max_notes {} comes first",
                        l.max_note_bytes, l.max_notes
                    )));
                }
                for _ in 0..fit {
                    let n = heavy(&s.user);
                    want!(add(&mut s, n).await?, AddIdentityOk);
                }
                let extra = heavy(&s.user);
                expect_error(add(&mut s, extra.clone()).await?, ErrorCode::QuotaExceeded)?;
                check_eq("notes about the refused subject", notes_about(&mut s, extra.subject).await?, vec![])
            }),
        ),
        Case::new(
            "FOLLOW-QUOTA-001",
            Must,
            &["IDENT-26", "IDENT-20"],
            "max_follows keys are followed; one more is quota_exceeded, a key already followed is not",
            run!(|ctx| {
                let max = ctx.target.limits.max_follows;
                if max > 1024 {
                    return Err(Failure::not_applicable(format!("max_follows {max} is too many to follow")));
                }
                let rate = ctx.target.limits.max_requests_per_second;
                if max / rate > 15 {
                    // Legal (HS-53 allows 4 per second), but that many paced follows take minutes.
                    return Err(Failure::not_applicable(format!(
                        "{max} follow requests at max_requests_per_second {rate} take over 15 s"
                    )));
                }
                let mut s = ctx.user().await?;
                let mut keys = Vec::new();
                for _ in 0..max {
                    let k = SecretKey::random().public();
                    follow(&mut s, k).await?;
                    keys.push(k);
                }
                let extra = SecretKey::random().public();
                expect_error(
                    s.call(move |id| ClientFrame::Follow(Follow { id, key: extra })).await?,
                    ErrorCode::QuotaExceeded,
                )?;
                if let Some(k) = keys.first().copied() {
                    follow(&mut s, k).await?;
                }
                keys.sort();
                check_eq("follows", follows(&mut s).await?, keys)
            }),
        )
        // Each follow is a write the node commits before answering: up to 1024 of them, one at
        // a time, on a loaded machine.
        .timeout_ms(60_000),
        Case::new(
            "FOLLOW-PAGE-001",
            Must,
            &["IDENT-30", "IDENT-22"],
            "a follow set of more than 256 keys is listed in pages of 256, ascending, with more",
            run!(|ctx| {
                let max = ctx.target.limits.max_follows;
                let want_n = MAX_FOLLOWS_PAGE as u64 + 1;
                if max < want_n {
                    return Err(Failure::not_applicable(format!("max_follows {max} is below 257")));
                }
                let rate = ctx.target.limits.max_requests_per_second;
                if want_n / rate > 15 {
                    // Legal (HS-53 allows 4 per second), but 257 paced follows would take minutes.
                    return Err(Failure::not_applicable(format!(
                        "{want_n} follow requests at max_requests_per_second {rate} take over 15 s"
                    )));
                }
                let mut s = ctx.user().await?;
                let mut keys = Vec::new();
                for _ in 0..want_n {
                    let k = SecretKey::random().public();
                    follow(&mut s, k).await?;
                    keys.push(k);
                }
                keys.sort();
                let first = want!(s.call(|id| ClientFrame::Follows(Follows { id, after: None })).await?, FollowsOk);
                check_eq("first page", first.keys.as_slice(), keys.get(..MAX_FOLLOWS_PAGE).unwrap_or_default())?;
                check_eq("more on the first page", first.more, true)?;
                let after = first.keys.last().copied();
                let second = want!(s.call(move |id| ClientFrame::Follows(Follows { id, after })).await?, FollowsOk);
                check_eq("second page", second.keys.as_slice(), keys.get(MAX_FOLLOWS_PAGE..).unwrap_or_default())?;
                check_eq("more on the last page", second.more, false)
            }),
        )
        .timeout_ms(60_000),
        Case::new(
            "IDENT-PAGE-001",
            Must,
            &["IDENT-28", "IDENT-29", "IDENT-15"],
            "identities_ok pages hold at most 32768 note bytes, in position order, and together list every note",
            run!(|ctx| {
                let l = ctx.target.limits.clone();
                let size = big_note(&SecretKey::random(), 1000).size();
                let per_user = l.max_notes.min(l.max_note_bytes / size.max(1));
                let wanted = 2 * MAX_IDENTITIES_PAGE_BYTES / size + 1;
                let users = wanted.div_ceil(per_user.max(1));
                if per_user == 0 || users > 16 {
                    return Err(Failure::not_applicable(format!("{users} users would be needed")));
                }
                let rate = l.max_requests_per_second;
                let requests = wanted + 4 * users;
                if requests / rate > 15 {
                    // Legal (HS-53 allows 4 per second), but the paced requests would take minutes.
                    return Err(Failure::not_applicable(format!(
                        "about {requests} requests at max_requests_per_second {rate} take over 15 s"
                    )));
                }
                let mut mine = Vec::new();
                let mut last = None;
                for _ in 0..users {
                    let mut s = ctx.user().await?;
                    for _ in 0..per_user.min(wanted - mine.len() as u64) {
                        let n = big_note(&s.user, 1000);
                        want!(add(&mut s, n.clone()).await?, AddIdentityOk);
                        mine.push(n);
                    }
                    last = Some(s);
                }
                let Some(mut s) = last else { return Err(Failure::fail("a user", "none")) };
                let pages = identity_pages(&mut s).await?;
                let mut seen: Vec<IdentityNote> = Vec::new();
                for (i, p) in pages.iter().enumerate() {
                    let notes: Vec<&IdentityNote> = p.identities.iter().flat_map(|x| x.notes.iter()).collect();
                    let bytes: u64 = notes.iter().map(|n| n.size()).sum();
                    check(notes.len() == 1 || bytes <= MAX_IDENTITIES_PAGE_BYTES, "page note bytes <= 32768", (i, bytes))?;
                    check(!p.more || !notes.is_empty(), "a page with more lists a note", i)?;
                    seen.extend(notes.into_iter().cloned());
                }
                let ordered = seen.windows(2).all(|w| w[0].position() < w[1].position());
                check(ordered, "notes strictly ascending by (subject, author) across pages", seen.len())?;
                let listed: std::collections::BTreeSet<NotePosition> = seen.iter().map(|n| n.position()).collect();
                let missing = mine.iter().filter(|n| !listed.contains(&n.position())).count();
                check_eq("stored notes missing from the pages", missing, 0)
            }),
        )
        .timeout_ms(60_000),
        Case::new(
            "IDENT-REMOVED-002",
            Must,
            &["IDENT-31"],
            "a removed account's notes are gone: an account created again with its key lists none of them",
            run!(|ctx| {
                let (key, _) = ctx.invite(0, 0).await?;
                let mut b = ctx.login(&key).await?;
                let n = big_note(&key, 0);
                want!(add(&mut b, n.clone()).await?, AddIdentityOk);
                drop(b);
                let mut admin = ctx.admin().await?;
                let target = key.public();
                want!(admin.call(move |id| ClientFrame::RemoveUser(RemoveUser { id, key: target })).await?, RemoveUserOk);
                recreated_lists_no_notes(&mut ctx, &mut admin, &key, n.subject, "removed").await
            }),
        ),
        Case::new(
            "IDENT-REPLACED-001",
            Must,
            &["IDENT-32"],
            "a replaced key's notes are gone: an account created again with the old key lists none of them",
            run!(|ctx| {
                let (old, _) = ctx.invite(0, 0).await?;
                let mut b = ctx.login(&old).await?;
                let n = big_note(&old, 0);
                want!(add(&mut b, n.clone()).await?, AddIdentityOk);
                let new = SecretKey::random();
                let r = KeyReplacement::sign(ctx.target.node_key, &old, &new, now_ms() + 600_000);
                want!(
                    b.call(move |id| ClientFrame::ReplaceKey(ReplaceKey { id, replacement: r })).await?,
                    ReplaceKeyOk
                );
                drop(b);
                let mut admin = ctx.admin().await?;
                recreated_lists_no_notes(&mut ctx, &mut admin, &old, n.subject, "replaced").await
            }),
        ),
        Case::new(
            "IDENT-AFTER-001",
            Must,
            &["IDENT-27"],
            "identities with after null is invalid_request; follows with after not hex is bad_encoding",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                expect_error(s.call_json(json!({"type": "identities", "after": null})).await?, ErrorCode::InvalidRequest)?;
                expect_error(s.call_json(json!({"type": "follows", "after": "beef"})).await?, ErrorCode::BadEncoding)
                    .map(|_| ())
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
