//! Bug classes a fully green run used to let through (issue 11): canonical forms of signed
//! objects (`CANON-*`, chapters 01, 02) and of addresses (chapter 05 §2.1), exact member sets
//! of answers (`MEMBERS-*`), what an anchor and pruning record (`ANCHOR-*`, chapters 03, 10),
//! and limits a node reports but ignores (`REP-MAX-*`, `SUB-BACKFILL-MAX-*`).
//!
//! Each case here reaches its rule on purpose, where the FUZZ family reaches it only by chance:
//! entries whose content holds non-ASCII text or keys above U+FFFF, anchors above seq 1, a feed
//! pruned to nothing, reads of exactly one entry more than the reported limit.

use std::collections::BTreeSet;

use kith_proto::canonical::{CanonicalObject, CanonicalValue};
use kith_proto::feed::{Filter, Get, HeadInfo, Heads, Replicate, Subscribe};
use kith_proto::identity::{AddIdentity, Identities, IdentityNote};
use kith_proto::{verify_entry, ClientFrame, Entry, EntryId, ErrorCode, PublicKey, RequestId, SecretKey, ServerFrame};

use crate::case::{
    check, check_eq, entry_id, entry_size, expect_error, Case, CaseResult, Failure, Feed, Level::*, Ops,
};
use crate::client::{now_ms, Session, DEFAULT_WAIT};
use crate::launch::NodeConfig;
use crate::{run, want};

/// Text with characters from every UTF-8 length: 2 bytes (é), 3 bytes (日, –) and 4 bytes (😀).
const NON_ASCII: &str = "caf\u{e9} \u{2013} \u{65e5}\u{672c} \u{1f600}";

/// Two keys whose order differs between UTF-16 code units (JCS, [SIGN-6]) and code points:
/// U+1F600 is the surrogate pair D83D DE00, which sorts before U+FF01 by code unit and after
/// it by code point.
const KEY_ASTRAL: &str = "\u{1f600}";
const KEY_BMP_HIGH: &str = "\u{ff01}";

/// The largest reported limit for which the limit cases publish one entry more than it.
const MAX_LIMIT_PUBLISHED: u64 = 200;

/// Entry size used by the pruning cases.
const SIZE: u64 = 4000;

fn string(s: &str) -> CanonicalValue {
    CanonicalValue::string(s)
}

fn object(members: &[(&str, CanonicalValue)]) -> CanonicalValue {
    CanonicalValue::Object(members.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
}

/// Publishes `first` (the entry under test, seq 1 of `feed`) and checks everything a node
/// reports of it against the ids the runner computes with RFC 8785: the `publish_ok` id, the
/// `get` by that id (the same entry, whose signature verifies), `heads`, and the next entry,
/// chained to that id, accepted.
async fn published_as_signed(s: &mut Session, feed: &mut Feed, first: Entry) -> CaseResult {
    let id = entry_id(&first)?;
    let ok = s.publish_ok(&first).await?;
    check_eq("publish_ok (entry_id, duplicate)", (ok.entry_id, ok.duplicate), (id, false))?;
    let answer =
        s.call(move |rid| ClientFrame::Get(Get { id: rid, entry_id: Some(id), author: None, seq: None })).await?;
    let got = want!(answer, GetOk).entry;
    check(got == first, "get_ok.entry equal to the published entry", &got)?;
    let v = verify_entry(&got).map_err(|e| Failure::fail("the entry get returns verifies", e.to_string()))?;
    check_eq("id of the entry get returns", v.id, id)?;
    let author = feed.author();
    let h = head(s, author).await?;
    check_eq("heads (seq, entry_id)", h.map(|h| (h.seq, h.entry_id)), Some((1, id)))?;
    let next = feed.next("after");
    s.publish_ok(&next).await.map(|_| ())
}

async fn head(s: &mut Session, author: PublicKey) -> Result<Option<HeadInfo>, Failure> {
    let answer = s.call(move |id| ClientFrame::Heads(Heads { id, authors: vec![author] })).await?;
    Ok(want!(answer, HeadsOk).heads.into_iter().next())
}

fn get_seq(author: PublicKey, seq: u64) -> impl FnOnce(RequestId) -> ClientFrame {
    move |id| ClientFrame::Get(Get { id, entry_id: None, author: Some(author), seq: Some(seq) })
}

fn replicate(author: PublicKey, after: u64, limit: u64) -> impl FnOnce(RequestId) -> ClientFrame {
    move |id| ClientFrame::Replicate(Replicate { id, author, after, limit })
}

/// A limit small enough to publish one entry more than it, or the case is not applicable.
fn small_limit(name: &str, value: u64) -> Result<u64, Failure> {
    if value > MAX_LIMIT_PUBLISHED {
        return Err(Failure::not_applicable(format!(
            "{name} is {value}; this case publishes {name} + 1 entries and does so only up to {MAX_LIMIT_PUBLISHED}"
        )));
    }
    Ok(value)
}

/// A node of its own with small read limits, so that the caps show.
fn small_reads() -> NodeConfig {
    NodeConfig { max_replicate: 3, max_backfill: 2, ..NodeConfig::default() }
}

/// A node of its own with the least budget ([PRUNE-2]).
fn small_budget() -> NodeConfig {
    NodeConfig { storage_bytes: 16384, ..NodeConfig::default() }
}

/// An entry of `feed` drafted by `edit` and padded to exactly `SIZE` canonical bytes.
fn sized(feed: &mut Feed, edit: impl Fn(&mut kith_proto::entry::EntryDraft)) -> Result<Entry, Failure> {
    let mut probe = feed.draft().text("");
    edit(&mut probe);
    let pad = SIZE.saturating_sub(entry_size(&probe.sign(&feed.key))) as usize;
    let mut d = feed.draft().text(&"p".repeat(pad));
    edit(&mut d);
    let e = feed.push(d);
    check_eq("test entry size", entry_size(&e), SIZE)?;
    Ok(e)
}

/// An anchor of a fresh feed at `seq` (its `prev` names an entry the node never saw), with
/// the feed ready to chain the next entry.
fn anchor_at(seq: u64, pad_to_size: bool) -> Result<(Feed, Entry), Failure> {
    let mut feed = Feed::stranger();
    let edit = |d: &mut kith_proto::entry::EntryDraft| {
        d.seq = seq;
        d.prev = Some(EntryId::from_bytes([7; 32]));
    };
    let e = if pad_to_size {
        sized(&mut feed, edit)?
    } else {
        let mut d = feed.draft().text("anchor");
        edit(&mut d);
        feed.push(d)
    };
    check(feed.last.is_some(), "a valid anchor entry", &e)?;
    Ok((feed, e))
}

/// An identity note about a fresh subject listing `address`.
fn note_with(s: &Session, address: &str) -> IdentityNote {
    IdentityNote::sign(&s.user, SecretKey::random().public(), "Ann", vec![address.to_owned()], "", now_ms())
}

async fn add(s: &mut Session, n: IdentityNote) -> Result<ServerFrame, Failure> {
    s.call(move |id| ClientFrame::AddIdentity(AddIdentity { id, note: n })).await
}

/// The canonical-form, member-set, anchor and read-limit cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "CANON-UTF8-001",
            Must,
            &["SIGN-3", "SIGN-10", "ENTRY-18"],
            "an entry with non-ASCII text (2-, 3- and 4-byte UTF-8) is accepted under its RFC 8785 id, raw UTF-8 \
             signed, and read back as published",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut feed = Feed::stranger();
                let mut d = feed.draft().text(NON_ASCII);
                d.content.insert("\u{e9}t\u{e9}".into(), string("\u{fc}ber \u{1f9d7}"));
                let e = feed.push(d);
                published_as_signed(&mut s, &mut feed, e).await
            }),
        ),
        Case::new(
            "CANON-UTF8-002",
            Must,
            &["SIGN-3", "SIGN-10"],
            "a profile entry whose name and about are non-ASCII is accepted under its RFC 8785 id",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut feed = Feed::stranger();
                let mut d = feed.draft();
                d.kind = crate::case::kind("profile")?;
                d.content = CanonicalObject::new();
                d.content.insert("name".into(), string("Zo\u{eb} \u{1f600}"));
                d.content.insert("about".into(), string("\u{3053}\u{3093}\u{306b}\u{3061}\u{306f}"));
                let e = feed.push(d);
                published_as_signed(&mut s, &mut feed, e).await
            }),
        ),
        Case::new(
            "CANON-KEYS-001",
            Must,
            &["SIGN-6", "SIGN-5", "SIGN-10"],
            "an entry whose content keys differ in UTF-16 and code point order (U+1F600 before U+FF01) is \
             accepted under its RFC 8785 id",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut feed = Feed::stranger();
                let mut d = feed.draft().text("keys");
                d.content.insert(KEY_BMP_HIGH.into(), string("bmp"));
                d.content.insert(KEY_ASTRAL.into(), string("astral"));
                d.content.insert(
                    "nested".into(),
                    object(&[(KEY_BMP_HIGH, CanonicalValue::from_u53(1)), (KEY_ASTRAL, CanonicalValue::from_u53(2))]),
                );
                let e = feed.push(d);
                published_as_signed(&mut s, &mut feed, e).await
            }),
        ),
        Case::new(
            "CANON-KEYS-002",
            Must,
            &["SIGN-6", "SIGN-10"],
            "keys U+E000 and U+10000 (UTF-16 D800 DC00 sorts first) in the same object are accepted",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut feed = Feed::stranger();
                let mut d = feed.draft();
                d.content = CanonicalObject::new();
                d.content.insert("\u{e000}".into(), string("private use"));
                d.content.insert("\u{10000}".into(), string("linear b"));
                let e = feed.push(d);
                published_as_signed(&mut s, &mut feed, e).await
            }),
        ),
        Case::new(
            "CANON-ADDR-001",
            Must,
            &["IDENT-7"],
            "identity-note addresses in a non-canonical spelling are invalid_request: IPv6 with capitals, with \
             zero groups not compressed, with leading zeros, with the wrong run or a single zero group compressed; DNS \
             names with capitals",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let key = SecretKey::random().public();
                for host in [
                    "ip6/2001:DB8::1",
                    "ip6/2001:db8:0:0::1",
                    "ip6/2001:db8:0:0:0:0:0:1",
                    "ip6/2001:0db8::1",
                    "ip6/2001:db8:0:0:1::1",
                    "ip6/2001:db8::1:1:1:1:1",
                    "dns/Example.org",
                    "dns/EXAMPLE.ORG",
                ] {
                    let n = note_with(&s, &format!("/{host}/wss/443/{key}"));
                    let answer = add(&mut s, n).await?;
                    expect_error(answer, ErrorCode::InvalidRequest).map_err(|f| f.rule(format!("IDENT-7 ({host})")))?;
                }
                Ok(())
            }),
        )
        // Nine requests: at the least request rate (4 per second) they take a few seconds.
        .timeout_ms(30_000),
        Case::new(
            "CANON-ADDR-002",
            Must,
            &["IDENT-7", "IDENT-11", "IDENT-15"],
            "identity-note addresses in their canonical spelling are accepted and listed as sent",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let key = SecretKey::random().public();
                // Eight addresses, the most a note may list ([IDENT-6]), in one note.
                let addresses: Vec<String> = [
                    "ip6/2001:db8::1",
                    "ip6/2001:db8:0:1:1:1:1:1",
                    "ip6/2001:db8::1:0:0:1",
                    "ip6/::1",
                    "ip6/::ffff:192.0.2.1",
                    "ip4/192.0.2.1",
                    "dns/example.org",
                    "dns/xn--caf-dma.example",
                ]
                .iter()
                .map(|host| format!("/{host}/wss/443/{key}"))
                .collect();
                let n =
                    IdentityNote::sign(&s.user, SecretKey::random().public(), "Ann", addresses.clone(), "", now_ms());
                let subject = n.subject;
                want!(add(&mut s, n).await?, AddIdentityOk);
                let listed: Vec<Vec<String>> = crate::cases::identity::notes_about(&mut s, subject)
                    .await?
                    .into_iter()
                    .map(|n| n.addresses)
                    .collect();
                check_eq("addresses of the note listed", listed, vec![addresses])
            }),
        ),
        Case::new(
            "MEMBERS-NOTE-001",
            Must,
            &["IDENT-15", "IDENT-16"],
            "identities_ok lists the note with exactly its seven members, as sent, in an identity object of \
             exactly {key, notes} (the raw JSON is checked)",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let n = note_with(&s, &format!("/dns/example.org/wss/443/{}", SecretKey::random().public()));
                let subject = n.subject.to_string();
                let sent = serde_json::to_value(&n).map_err(|e| Failure::fail("a note as JSON", e.to_string()))?;
                want!(add(&mut s, n).await?, AddIdentityOk);
                // The note may be on any page ([IDENT-28]): page on in raw JSON until it shows.
                let mut after: Option<kith_proto::identity::NotePosition> = None;
                let identity = loop {
                    let id = s.conn.next_id();
                    s.conn.send(&ClientFrame::Identities(Identities { id, after })).await?;
                    let text = s.conn.recv_text(DEFAULT_WAIT).await?;
                    let value: serde_json::Value = serde_json::from_str(&text)
                        .map_err(|e| Failure::fail("identities_ok as JSON", e.to_string()))?;
                    check_eq(
                        "answer (type, id)",
                        (value["type"].as_str(), value["id"].as_u64()),
                        (Some("identities_ok"), Some(id.get())),
                    )?;
                    let list = value["identities"].as_array().cloned().unwrap_or_default();
                    if let Some(found) = list.iter().find(|i| i["key"].as_str() == Some(subject.as_str())) {
                        break found.clone();
                    }
                    let last = list.last().and_then(|i| i["notes"].as_array()).and_then(|n| n.last());
                    let position = last.and_then(|n| {
                        let subject = n["subject"].as_str().and_then(|k| PublicKey::parse(k).ok())?;
                        let author = n["author"].as_str().and_then(|k| PublicKey::parse(k).ok())?;
                        Some(kith_proto::identity::NotePosition { subject, author })
                    });
                    match (value["more"].as_bool(), position) {
                        (Some(true), Some(p)) => after = Some(p),
                        _ => return Err(Failure::fail(format!("an identity object with key {subject}"), &text)),
                    }
                };
                let keys = |v: &serde_json::Value| -> BTreeSet<String> {
                    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
                };
                check_eq("members of the identity object", keys(&identity), ["key", "notes"].map(String::from).into())?;
                let notes = identity["notes"].as_array().cloned().unwrap_or_default();
                check_eq("notes about the subject", notes.len(), 1)?;
                let members: BTreeSet<String> =
                    ["subject", "author", "display_name", "addresses", "note", "updated", "sig"]
                        .map(String::from)
                        .into();
                check_eq("members of the listed note", keys(&notes[0]), members)?;
                check_eq("the listed note", &notes[0], &sent)
            }),
        ),
        Case::new(
            "ANCHOR-001",
            Must,
            &["ENTRY-23", "FEED-22", "FEED-26", "FEED-32"],
            "an anchor at seq 5 records pruned_through 4: in heads, in replicate, and get of seq 2 is pruned",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let (feed, e) = anchor_at(5, false)?;
                let id = entry_id(&e)?;
                s.publish_ok(&e).await?;
                let author = feed.author();
                let h = head(&mut s, author).await?.map(|h| (h.seq, h.entry_id, h.pruned_through));
                check_eq("heads (seq, entry_id, pruned_through)", h, Some((5, id, 4)))?;
                let r = want!(s.call(replicate(author, 0, 1)).await?, ReplicateOk);
                let seqs: Vec<u64> = r.entries.iter().map(|e| e.seq).collect();
                check_eq(
                    "replicate (seqs, head, pruned_through)",
                    (seqs, r.head, r.pruned_through),
                    (vec![5], Some(5), 4),
                )?;
                expect_error(s.call(get_seq(author, 2)).await?, ErrorCode::Pruned)?;
                expect_error(s.call(get_seq(author, 4)).await?, ErrorCode::Pruned)?;
                expect_error(s.call(get_seq(author, 6)).await?, ErrorCode::NotFound).map(|_| ())
            }),
        ),
        Case::new(
            "ANCHOR-PRUNE-001",
            Must,
            &["PRUNE-6", "PRUNE-7", "ENTRY-23", "FEED-26", "FEED-32"],
            "a feed anchored at seq 5 and pruned entry by entry records pruned_through 5, then 6 with its head \
             (6, id) kept, and takes seq 7 after it",
            run!(|ctx| {
                let budget = ctx.target.limits.storage_bytes;
                let fit = budget / SIZE;
                if !(2..=8).contains(&fit) {
                    return Err(Failure::not_applicable(format!(
                        "storage_bytes {budget} holds {fit} entries of {SIZE} bytes; the case needs 2 to 8"
                    )));
                }
                let mut s = ctx.user_with(0, 1000).await?;
                let (mut a, a5) = anchor_at(5, true)?;
                s.publish_ok(&a5).await?;
                let a6 = sized(&mut a, |_| {})?;
                s.publish_ok(&a6).await?;
                let author = a.author();
                let id6 = entry_id(&a6)?;
                let mut other = Feed::stranger();
                // Held so far: a5, a6. The next fit - 2 entries fill the budget, one more prunes
                // a5, one more after that prunes a6 (the head).
                for _ in 0..fit - 1 {
                    let e = sized(&mut other, |_| {})?;
                    s.publish_ok(&e).await?;
                }
                let h = head(&mut s, author).await?.map(|h| (h.seq, h.entry_id, h.pruned_through));
                check_eq("heads after a5 is pruned (seq, entry_id, pruned_through)", h, Some((6, id6, 5)))?;
                expect_error(s.call(get_seq(author, 5)).await?, ErrorCode::Pruned)?;
                want!(s.call(get_seq(author, 6)).await?, GetOk);
                let e = sized(&mut other, |_| {})?;
                s.publish_ok(&e).await?;
                let h = head(&mut s, author).await?.map(|h| (h.seq, h.entry_id, h.pruned_through));
                check_eq("heads after a6, the head, is pruned (seq, entry_id, pruned_through)", h, Some((6, id6, 6)))?;
                let r = want!(s.call(replicate(author, 0, 1)).await?, ReplicateOk);
                check_eq(
                    "replicate (entries, head, pruned_through)",
                    (r.entries.len(), r.head, r.pruned_through),
                    (0, Some(6), 6),
                )?;
                expect_error(s.call(get_seq(author, 6)).await?, ErrorCode::Pruned)?;
                let a7 = a.next("7");
                s.publish_ok(&a7).await.map(|_| ())
            }),
        )
        .own_node(small_budget())
        // About twenty requests: at the least request rate (4 per second) they take seconds.
        .timeout_ms(30_000),
        Case::new(
            "REP-MAX-001",
            Must,
            &["FEED-25"],
            "with max_replicate + 1 entries held, replicate with limit max_replicate + 1 (and with the largest \
             limit) returns exactly max_replicate entries",
            run!(|ctx| {
                let max = small_limit("max_replicate", ctx.target.limits.max_replicate)?;
                let mut s = ctx.user_with(0, max + 10).await?;
                let mut f = Feed::stranger();
                crate::case::publish_chain(&mut s, &mut f, max + 1).await?;
                let want: Vec<u64> = (1..=max).collect();
                for limit in [max + 1, 9_007_199_254_740_991] {
                    let r = want!(s.call(replicate(f.author(), 0, limit)).await?, ReplicateOk);
                    let seqs: Vec<u64> = r.entries.iter().map(|e| e.seq).collect();
                    check_eq(&format!("seqs for limit {limit} (max_replicate {max})"), seqs, want.clone())?;
                }
                Ok(())
            }),
        )
        .prefer_own_node(small_reads()),
        Case::new(
            "SUB-BACKFILL-MAX-001",
            Must,
            &["FEED-13"],
            "with max_backfill + 1 matching entries held, a subscribe asking for max_backfill + 1 replays exactly \
             the last max_backfill",
            run!(|ctx| {
                let max = small_limit("max_backfill", ctx.target.limits.max_backfill)?;
                let mut s = ctx.user_with(0, max + 10).await?;
                let mut f = Feed::stranger();
                crate::case::publish_chain(&mut s, &mut f, max + 1).await?;
                let id = s.conn.next_id();
                let filter = Filter { authors: vec![f.author()], threads: vec![], mentions: vec![] };
                s.conn.send(&ClientFrame::Subscribe(Subscribe { id, filter, backfill: Some(max + 1) })).await?;
                let ok = want!(s.conn.recv_frame(DEFAULT_WAIT).await?, SubscribeOk);
                let mut seqs = Vec::new();
                loop {
                    match s.conn.recv_frame(DEFAULT_WAIT).await? {
                        ServerFrame::Event(e) if e.sub == ok.sub => seqs.push(e.entry.seq),
                        ServerFrame::StoredEnd(e) if e.sub == ok.sub => break,
                        other => return Err(crate::case::unexpected("event or stored_end", &other)),
                    }
                }
                check_eq(&format!("backfilled seqs (max_backfill {max})"), seqs, (2..=max + 1).collect::<Vec<_>>())
            }),
        )
        .prefer_own_node(small_reads()),
    ]
}
