//! Reading feeds (spec chapter 08): subscriptions `SUB-*`, heads `HEADS-*`, replication
//! `REP-*` and single entries `GET-*`.

use std::time::Duration;

use kith_proto::feed::{Filter, Get, Heads, Replicate, Subscribe, Unsubscribe};
use kith_proto::{ClientFrame, Entry, EntryId, ErrorCode, PublicKey, RequestId, SecretKey, ServerFrame};
use serde_json::json;

use crate::case::{
    check, check_eq, entry_id, expect_error, publish_chain, replicate_all, Case, CaseResult, Failure, Feed, Level::*,
    Ops,
};
use crate::client::{random_bytes, Connection, Session, DEFAULT_WAIT};
use crate::{run, want};

fn filter(authors: Vec<PublicKey>, threads: Vec<EntryId>, mentions: Vec<PublicKey>) -> Filter {
    Filter { authors, threads, mentions }
}

/// Subscribes and returns the `sub` id (after checking `subscribe_ok` comes first, [FEED-12]).
async fn subscribe(s: &mut Session, f: Filter, backfill: Option<u64>) -> Result<RequestId, Failure> {
    let id = s.conn.next_id();
    s.conn.send(&ClientFrame::Subscribe(Subscribe { id, filter: f, backfill })).await?;
    let first = s.conn.recv_frame(DEFAULT_WAIT).await?;
    let ok = want!(first, SubscribeOk);
    check_eq("subscribe_ok.id", ok.id, id)?;
    Ok(ok.sub)
}

/// Reads pushes until `stored_end` of `sub`; returns the backfilled entries.
async fn backfill(conn: &mut Connection, sub: RequestId) -> Result<Vec<Entry>, Failure> {
    let mut out = Vec::new();
    loop {
        match conn.recv_frame(DEFAULT_WAIT).await? {
            ServerFrame::Event(e) if e.sub == sub => out.push(e.entry),
            ServerFrame::StoredEnd(e) if e.sub == sub => return Ok(out),
            other => return Err(crate::case::unexpected("event or stored_end", &other)),
        }
    }
}

/// Subscribes to the feeds of `authors` and reads past their backfill to `stored_end`, so
/// that from here on only live events of the returned `sub` arrive.
async fn subscribe_live(s: &mut Session, authors: Vec<PublicKey>) -> Result<RequestId, Failure> {
    let sub = subscribe(s, filter(authors, vec![], vec![]), None).await?;
    backfill(&mut s.conn, sub).await?;
    Ok(sub)
}

/// The next live event of `sub`.
async fn next_event(conn: &mut Connection, sub: RequestId) -> Result<Entry, Failure> {
    match conn.recv_frame(DEFAULT_WAIT).await? {
        ServerFrame::Event(e) if e.sub == sub => Ok(e.entry),
        other => Err(crate::case::unexpected("event", &other)),
    }
}

/// Filter items one `subscribe` of the SUB-ITEMS cases carries at most: 961 thread ids of 67
/// bytes each (quotes, hex, comma) keep the frame under the 65536 bytes of kith/1 (FRAME-5).
const ITEMS_PER_FRAME: u64 = 960;

/// `n` fresh random thread ids.
fn thread_ids(n: u64) -> Vec<EntryId> {
    (0..n).map(|_| EntryId::from_bytes(random_bytes())).collect()
}

/// A subscription to replies to `n` fresh thread ids, without backfill, read to `stored_end`.
async fn subscribe_items(s: &mut Session, n: u64) -> Result<RequestId, Failure> {
    let sub = subscribe(s, filter(vec![], thread_ids(n), vec![]), Some(0)).await?;
    let replayed = backfill(&mut s.conn, sub).await?;
    check(replayed.is_empty(), "no backfill for fresh thread ids", replayed.len())?;
    Ok(sub)
}

/// A `subscribe` of `n` fresh thread ids that must be answered with the error `code`.
async fn subscribe_refused(s: &mut Session, n: u64, code: ErrorCode) -> Result<(), Failure> {
    let threads = thread_ids(n);
    let answer = s
        .call(move |id| {
            ClientFrame::Subscribe(Subscribe { id, filter: filter(vec![], threads, vec![]), backfill: Some(0) })
        })
        .await?;
    expect_error(answer, code).map(|_| ())
}

/// How the SUB-ITEMS cases fill a connection to exactly `max_filter_items`: the sizes of the
/// subscriptions (all full frames but the last), or why that is not possible at these limits.
fn items_plan(limits: &kith_proto::node_info::Limits) -> Result<Vec<u64>, Failure> {
    let max = limits.max_filter_items;
    let subs = max.div_ceil(ITEMS_PER_FRAME);
    if subs > limits.max_subscriptions {
        return Err(Failure::not_applicable(format!(
            "max_filter_items {max} needs {subs} subscriptions of at most {ITEMS_PER_FRAME} items; max_subscriptions is {}",
            limits.max_subscriptions
        )));
    }
    if subs > 64 {
        return Err(Failure::not_applicable(format!("max_filter_items {max} takes over 64 subscriptions to fill")));
    }
    let mut plan = vec![ITEMS_PER_FRAME; subs as usize];
    if let Some(last) = plan.last_mut() {
        *last = max - (subs - 1) * ITEMS_PER_FRAME;
    }
    Ok(plan)
}

/// Fills the session's connection with subscriptions of `plan`'s sizes; returns their subs.
async fn fill_items(s: &mut Session, plan: &[u64]) -> Result<Vec<RequestId>, Failure> {
    let mut subs = Vec::new();
    for n in plan {
        subs.push(subscribe_items(s, *n).await?);
    }
    Ok(subs)
}

fn ids(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

/// The last `min(b, max_backfill)` of `all`: what a backfill of `b` replays of these stored
/// matches on a node reporting `max_backfill` ([FEED-13]).
fn last_of<T: Clone>(all: &[T], b: u64, max_backfill: u64) -> Vec<T> {
    let n = usize::try_from(b.min(max_backfill)).unwrap_or(usize::MAX).min(all.len());
    all[all.len() - n..].to_vec()
}

fn get_seq(author: PublicKey, seq: u64) -> impl FnOnce(RequestId) -> ClientFrame {
    move |id| ClientFrame::Get(Get { id, entry_id: None, author: Some(author), seq: Some(seq) })
}

fn get_id(entry_id: EntryId) -> impl FnOnce(RequestId) -> ClientFrame {
    move |id| ClientFrame::Get(Get { id, entry_id: Some(entry_id), author: None, seq: None })
}

fn replicate(author: PublicKey, after: u64, limit: u64) -> impl FnOnce(RequestId) -> ClientFrame {
    move |id| ClientFrame::Replicate(Replicate { id, author, after, limit })
}

fn heads(authors: Vec<PublicKey>) -> impl FnOnce(RequestId) -> ClientFrame {
    move |id| ClientFrame::Heads(Heads { id, authors })
}

async fn quiet(conn: &mut Connection, what: &str) -> CaseResult {
    conn.quiet_for(Duration::from_millis(300)).await.map_err(|e| Failure::fail(what.to_owned(), e.to_string()))
}

/// The feed-reading cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "SUB-BACKFILL-001",
            Must,
            &["FEED-12", "FEED-13", "FEED-14", "FEED-15"],
            "subscribe_ok, then the stored matches oldest first, then stored_end",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut feed = Feed::stranger();
                publish_chain(&mut s, &mut feed, 3).await?;
                let sub = subscribe(&mut s, filter(vec![feed.author()], vec![], vec![]), None).await?;
                let got = backfill(&mut s.conn, sub).await?;
                // The default backfill (100), capped at max_backfill.
                check_eq("backfilled seqs", ids(&got), last_of(&[1, 2, 3], 100, ctx.target.limits.max_backfill))
            }),
        ),
        Case::new(
            "SUB-BACKFILL-002",
            Must,
            &["FEED-13", "FEED-14"],
            "backfill 2 of 5 stored matches sends the last two",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut feed = Feed::stranger();
                publish_chain(&mut s, &mut feed, 5).await?;
                let sub = subscribe(&mut s, filter(vec![feed.author()], vec![], vec![]), Some(2)).await?;
                let want = last_of(&[1, 2, 3, 4, 5], 2, ctx.target.limits.max_backfill);
                check_eq("backfilled seqs", ids(&backfill(&mut s.conn, sub).await?), want)
            }),
        ),
        Case::new(
            "SUB-BACKFILL-003",
            Must,
            &["FEED-15"],
            "backfill 0 sends only stored_end",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut feed = Feed::stranger();
                publish_chain(&mut s, &mut feed, 2).await?;
                let sub = subscribe(&mut s, filter(vec![feed.author()], vec![], vec![]), Some(0)).await?;
                check_eq("backfilled seqs", ids(&backfill(&mut s.conn, sub).await?), vec![])
            }),
        ),
        Case::new(
            "SUB-BACKFILL-004",
            Must,
            &["FEED-14"],
            "backfill across authors follows arrival order (the last max_backfill of three when fewer)",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let (mut a, mut b) = (Feed::stranger(), Feed::stranger());
                let e1 = a.next("a1");
                let e2 = b.next("b1");
                let e3 = a.next("a2");
                for e in [&e1, &e2, &e3] {
                    s.publish_ok(e).await?;
                }
                let sub = subscribe(&mut s, filter(vec![b.author(), a.author()], vec![], vec![]), None).await?;
                let got: Vec<String> =
                    backfill(&mut s.conn, sub).await?.iter().map(|e| format!("{}/{}", e.author, e.seq)).collect();
                let arrival = [e1, e2, e3].map(|e| format!("{}/{}", e.author, e.seq));
                check_eq("authors/seqs in arrival order", got, last_of(&arrival, 100, ctx.target.limits.max_backfill))
            }),
        ),
        Case::new(
            "SUB-END-001",
            Must,
            &["FEED-15"],
            "a filter matching nothing still gets exactly one stored_end",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let sub = subscribe(&mut s, filter(vec![SecretKey::random().public()], vec![], vec![]), None).await?;
                check_eq("backfill", backfill(&mut s.conn, sub).await?.len(), 0)?;
                quiet(&mut s.conn, "nothing after stored_end").await
            }),
        ),
        Case::new(
            "SUB-QUEUE-001",
            Must,
            &["FRAME-37", "FRAME-36", "FRAME-48"],
            "a backfill of up to 40 large entries (as many as max_backfill and half of storage_bytes allow) \
             waits in the queue while the client does not read",
            run!(|ctx| {
                let limits = ctx.target.limits.clone();
                // The entries take at most half the budget, so that they are held when the
                // subscription is made (other cases publish too).
                let room = limits.storage_bytes / 2;
                let n = 40u64.min(limits.max_backfill).min(room / 8400).max(1);
                let pad = (room / n).saturating_sub(400).min(8000) as usize;
                let mut s = ctx.user().await?;
                let mut f = Feed::stranger();
                for i in 0..n {
                    let d = f.draft().text(&format!("{i}{}", "b".repeat(pad)));
                    let e = f.push(d);
                    s.publish_ok(&e).await?;
                }
                s.conn.note(&format!("{n} entries of {pad} bytes of text published; not reading for a second"));
                let sub = subscribe(&mut s, filter(vec![f.author()], vec![], vec![]), Some(n)).await?;
                tokio::time::sleep(Duration::from_millis(1000)).await;
                let got = ids(&backfill(&mut s.conn, sub).await?);
                if got == (1..=n).collect::<Vec<_>>() {
                    return Ok(());
                }
                // Entries pruned since they were published (a small budget that other cases
                // fill too) are not the queue's fault; the held ones must all be there.
                let answer = s.call(heads(vec![f.author()])).await?;
                let pruned = want!(answer, HeadsOk).heads.first().map_or(0, |h| h.pruned_through);
                let k = got.len() as u64;
                let suffix = k <= n && got == (n + 1 - k..=n).collect::<Vec<_>>();
                if pruned > 0 && suffix && k >= n.saturating_sub(pruned) {
                    return Err(Failure::not_applicable(format!(
                        "storage_bytes {}: the node pruned seqs 1 to {pruned} of the {n} before they could be \
                         replayed (others publish too)",
                        limits.storage_bytes
                    )));
                }
                check_eq("backfilled seqs", got, (1..=n).collect())
            }),
        )
        .timeout_ms(20_000),
        Case::new(
            "SUB-LIVE-001",
            Must,
            &["FEED-16", "FEED-1"],
            "an entry stored after subscribing is pushed live, unchanged",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut p = ctx.user().await?;
                let mut feed = Feed::stranger();
                let sub = subscribe_live(&mut s, vec![feed.author()]).await?;
                let e = feed.next("live");
                p.publish_ok(&e).await?;
                let got = next_event(&mut s.conn, sub).await?;
                check_eq("live entry id", entry_id(&got)?, entry_id(&e)?)
            }),
        ),
        Case::new(
            "SUB-LIVE-002",
            Must,
            &["FEED-16"],
            "live events come in arrival order",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut p = ctx.user().await?;
                let mut feed = Feed::stranger();
                let sub = subscribe_live(&mut s, vec![feed.author()]).await?;
                publish_chain(&mut p, &mut feed, 5).await?;
                let mut got = Vec::new();
                for _ in 0..5 {
                    got.push(next_event(&mut s.conn, sub).await?.seq);
                }
                check_eq("live seqs", got, vec![1, 2, 3, 4, 5])
            }),
        ),
        Case::new(
            "SUB-LIVE-003",
            Must,
            &["FEED-16"],
            "entries that do not match are not pushed",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut p = ctx.user().await?;
                let (mut wanted, mut other) = (Feed::stranger(), Feed::stranger());
                let sub = subscribe_live(&mut s, vec![wanted.author()]).await?;
                p.publish_ok(&other.next("not for you")).await?;
                let e = wanted.next("for you");
                p.publish_ok(&e).await?;
                let got = next_event(&mut s.conn, sub).await?;
                check_eq("first live event", entry_id(&got)?, entry_id(&e)?)
            }),
        ),
        Case::new(
            "SUB-LIVE-004",
            Must,
            &["FEED-16"],
            "an entry published on the subscribing connection itself is pushed too",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut feed = Feed::new(&s.user);
                let sub = subscribe_live(&mut s, vec![feed.author()]).await?;
                let e = feed.next("mine");
                s.publish_ok(&e).await?;
                let got = next_event(&mut s.conn, sub).await?;
                check_eq("event", entry_id(&got)?, entry_id(&e)?)
            }),
        ),
        Case::new(
            "SUB-THREAD-001",
            Must,
            &["FEED-13", "FEED-16"],
            "a threads filter matches entries whose refs contain the id",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut p = ctx.user().await?;
                let root = Feed::stranger().next("root");
                p.publish_ok(&root).await?;
                let root_id = entry_id(&root)?;
                let mut replier = Feed::stranger();
                let mut d = replier.draft().text("old reply");
                d.refs = vec![root_id];
                let old = replier.push(d);
                p.publish_ok(&old).await?;
                let sub = subscribe(&mut s, filter(vec![], vec![root_id], vec![]), None).await?;
                check_eq(
                    "backfill",
                    backfill(&mut s.conn, sub).await?.iter().map(entry_id).collect::<Result<Vec<_>, _>>()?,
                    vec![entry_id(&old)?],
                )?;
                let mut d = replier.draft().text("new reply");
                d.refs = vec![EntryId::from_bytes(random_bytes()), root_id];
                let new = replier.push(d);
                p.publish_ok(&new).await?;
                check_eq("live reply", entry_id(&next_event(&mut s.conn, sub).await?)?, entry_id(&new)?)
            }),
        ),
        Case::new(
            "SUB-MENTION-001",
            Must,
            &["FEED-13", "FEED-16"],
            "a mentions filter matches entries that mention the key",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut p = ctx.user().await?;
                let me = SecretKey::random().public();
                let sub = subscribe(&mut s, filter(vec![], vec![], vec![me]), None).await?;
                backfill(&mut s.conn, sub).await?;
                let mut f = Feed::stranger();
                p.publish_ok(&f.next("no mention")).await?;
                let mut d = f.draft().text("hey");
                d.mentions = vec![me];
                let e = f.push(d);
                p.publish_ok(&e).await?;
                check_eq("event", entry_id(&next_event(&mut s.conn, sub).await?)?, entry_id(&e)?)
            }),
        ),
        Case::new(
            "SUB-OR-001",
            Must,
            &["FEED-13"],
            "an entry matches when any filter list matches",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let (mut a, mut b) = (Feed::stranger(), Feed::stranger());
                let m = SecretKey::random().public();
                let e1 = a.next("by a");
                let mut d = b.draft().text("mentions m");
                d.mentions = vec![m];
                let e2 = b.push(d);
                s.publish_ok(&e1).await?;
                s.publish_ok(&e2).await?;
                let sub = subscribe(&mut s, filter(vec![a.author()], vec![], vec![m]), None).await?;
                let got = backfill(&mut s.conn, sub).await?.iter().map(entry_id).collect::<Result<Vec<_>, _>>()?;
                let want = last_of(&[entry_id(&e1)?, entry_id(&e2)?], 100, ctx.target.limits.max_backfill);
                check_eq("backfilled ids", got, want)
            }),
        ),
        Case::new(
            "SUB-NODUP-001",
            Must,
            &["FEED-17"],
            "an entry matching several lists, or re-published, is pushed once",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut p = ctx.user().await?;
                let mut f = Feed::stranger();
                let sub = subscribe(&mut s, filter(vec![f.author()], vec![], vec![f.author()]), None).await?;
                backfill(&mut s.conn, sub).await?;
                let mut d = f.draft().text("self mention");
                d.mentions = vec![f.author()];
                let e = f.push(d);
                p.publish_ok(&e).await?;
                p.publish_ok(&e).await?;
                next_event(&mut s.conn, sub).await?;
                quiet(&mut s.conn, "no second event").await
            }),
        ),
        Case::new(
            "SUB-UNSUB-001",
            Must,
            &["FEED-19"],
            "after unsubscribe_ok no event of the subscription arrives",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut p = ctx.user().await?;
                let mut f = Feed::stranger();
                let sub = subscribe_live(&mut s, vec![f.author()]).await?;
                let answer = s.call(move |id| ClientFrame::Unsubscribe(Unsubscribe { id, sub })).await?;
                want!(answer, UnsubscribeOk);
                p.publish_ok(&f.next("too late")).await?;
                quiet(&mut s.conn, "no event after unsubscribe_ok").await
            }),
        ),
        Case::new(
            "SUB-UNSUB-002",
            Must,
            &["FEED-18"],
            "unsubscribing an unknown sub is not_found",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer =
                    s.call(|id| ClientFrame::Unsubscribe(Unsubscribe { id, sub: RequestId::small(987654) })).await?;
                expect_error(answer, ErrorCode::NotFound).map(|_| ())
            }),
        ),
        Case::new(
            "SUB-UNSUB-003",
            Must,
            &["FEED-18"],
            "a subscription of another connection cannot be unsubscribed",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut o = ctx.user().await?;
                let sub = subscribe_live(&mut s, vec![SecretKey::random().public()]).await?;
                let answer = o.call(move |id| ClientFrame::Unsubscribe(Unsubscribe { id, sub })).await?;
                expect_error(answer, ErrorCode::NotFound).map(|_| ())
            }),
        ),
        Case::new(
            "SUB-INVALID-001",
            Must,
            &["FEED-7"],
            "subscribe without a filter is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s.call_json(json!({"type": "subscribe"})).await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "SUB-INVALID-002",
            Must,
            &["FEED-7"],
            "a filter list that is not an array of strings is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s.call_json(json!({"type": "subscribe", "filter": {"authors": [1]}})).await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "SUB-ENCODING-001",
            Must,
            &["FEED-8"],
            "a filter author that is not a key is bad_encoding",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s
                    .call_json(
                        json!({"type": "subscribe", "filter": {"authors": ["ABC"], "threads": [], "mentions": []}}),
                    )
                    .await?;
                expect_error(answer, ErrorCode::BadEncoding).map(|_| ())
            }),
        ),
        Case::new(
            "SUB-DUP-ID-001",
            Must,
            &["FEED-10"],
            "a subscribe whose id is an active sub is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let sub = subscribe_live(&mut s, vec![SecretKey::random().public()]).await?;
                s.conn
                    .send(&ClientFrame::Subscribe(Subscribe {
                        id: sub,
                        filter: filter(vec![], vec![], vec![]),
                        backfill: None,
                    }))
                    .await?;
                let answer = s.conn.await_answer(sub, DEFAULT_WAIT).await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "SUB-MAX-001",
            Must,
            &["FEED-11", "HS-12"],
            "one subscription over max_subscriptions is invalid_request",
            run!(|ctx| {
                let max = ctx.target.limits.max_subscriptions;
                if max > 256 {
                    return Err(Failure::not_applicable(format!("max_subscriptions {max} is too many to open")));
                }
                let mut s = ctx.user().await?;
                for _ in 0..max {
                    let sub =
                        subscribe(&mut s, filter(vec![SecretKey::random().public()], vec![], vec![]), Some(0)).await?;
                    backfill(&mut s.conn, sub).await?;
                }
                let answer = s
                    .call(|id| {
                        ClientFrame::Subscribe(Subscribe {
                            id,
                            filter: filter(vec![], vec![], vec![]),
                            backfill: Some(0),
                        })
                    })
                    .await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "SUB-ITEMS-001",
            Must,
            &["FEED-34", "HS-12"],
            "filter items summed over a connection's subscriptions: one past max_filter_items is invalid_request, \
             exactly max_filter_items is accepted, and one more after that is invalid_request",
            run!(|ctx| {
                let plan = items_plan(&ctx.target.limits)?;
                let mut s = ctx.user().await?;
                let (last, full) = plan.split_last().map(|(l, f)| (*l, f.to_vec())).unwrap_or((0, Vec::new()));
                fill_items(&mut s, &full).await?;
                // One past the bound, in the subscription that reaches it.
                subscribe_refused(&mut s, last + 1, ErrorCode::InvalidRequest).await?;
                // Exactly the bound.
                subscribe_items(&mut s, last).await?;
                subscribe_refused(&mut s, 1, ErrorCode::InvalidRequest).await?;
                // The connection stays open and answers.
                let answer = s.call(|id| ClientFrame::NodeInfo(kith_proto::node_info::NodeInfo { id })).await?;
                want!(answer, NodeInfoOk);
                Ok(())
            }),
        ),
        Case::new(
            "SUB-ITEMS-002",
            Must,
            &["FEED-36", "FEED-34"],
            "an unsubscribe releases its filter items: at max_filter_items, after unsubscribing a subscription \
             of n items a new one of n items is accepted, and one item more is not",
            run!(|ctx| {
                let plan = items_plan(&ctx.target.limits)?;
                let mut s = ctx.user().await?;
                let subs = fill_items(&mut s, &plan).await?;
                let (sub, freed) = (subs[0], plan[0]);
                let answer = s.call(move |id| ClientFrame::Unsubscribe(Unsubscribe { id, sub })).await?;
                want!(answer, UnsubscribeOk);
                subscribe_items(&mut s, freed).await?;
                subscribe_refused(&mut s, 1, ErrorCode::InvalidRequest).await
            }),
        ),
        Case::new(
            "SUB-ITEMS-003",
            Must,
            &["FEED-36", "FEED-34"],
            "the filter items of a closed connection are released: a new connection of the same user fills \
             max_filter_items again",
            run!(|ctx| {
                let plan = items_plan(&ctx.target.limits)?;
                let (key, _) = ctx.invite(10, 10).await?;
                let mut s = ctx.login(&key).await?;
                fill_items(&mut s, &plan).await?;
                subscribe_refused(&mut s, 1, ErrorCode::InvalidRequest).await?;
                s.conn.close().await;
                let _ = s.conn.await_close(DEFAULT_WAIT).await;
                let mut s = ctx.login(&key).await?;
                fill_items(&mut s, &plan).await?;
                subscribe_refused(&mut s, 1, ErrorCode::InvalidRequest).await
            }),
        ),
        Case::new(
            "HEADS-001",
            Must,
            &["FEED-22", "FEED-5"],
            "heads reports seq, id and pruned_through of a feed",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut f = Feed::stranger();
                let es = publish_chain(&mut s, &mut f, 3).await?;
                let answer = s.call(heads(vec![f.author()])).await?;
                let h = want!(answer, HeadsOk).heads;
                check(h.len() == 1, "one head", &h)?;
                check_eq(
                    "head",
                    (h[0].author, h[0].seq, h[0].entry_id, h[0].pruned_through),
                    (f.author(), 3, entry_id(&es[2])?, 0),
                )
            }),
        ),
        Case::new(
            "HEADS-002",
            Must,
            &["FEED-22"],
            "heads omits unknown authors, keeps first-occurrence order and lists each once (an order that is \
             neither sorted nor reverse-sorted nor arrival order)",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                // Three authors x < y < z (by key), published in the order z, x, y and asked for
                // as y, unknown, z, x, y: the required order y, z, x differs from the sorted one,
                // the reverse-sorted one and the arrival order, on every run.
                let mut feeds = [Feed::stranger(), Feed::stranger(), Feed::stranger()];
                feeds.sort_by_key(|f| f.author().to_string());
                let [mut x, mut y, mut z] = feeds;
                for f in [&mut z, &mut x, &mut y] {
                    let e = f.next("h");
                    s.publish_ok(&e).await?;
                }
                let unknown = SecretKey::random().public();
                let asked = vec![y.author(), unknown, z.author(), x.author(), y.author()];
                let answer = s.call(heads(asked)).await?;
                let h = want!(answer, HeadsOk).heads;
                check_eq(
                    "authors",
                    h.iter().map(|x| x.author.to_string()).collect::<Vec<_>>(),
                    [y.author(), z.author(), x.author()].map(|k| k.to_string()).to_vec(),
                )
            }),
        ),
        Case::new(
            "HEADS-004",
            Must,
            &["FEED-21"],
            "heads with an author that is not a key is bad_encoding",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s.call_json(json!({"type": "heads", "authors": ["00"]})).await?;
                expect_error(answer, ErrorCode::BadEncoding).map(|_| ())
            }),
        ),
        Case::new(
            "HEADS-005",
            Must,
            &["FEED-20", "FEED-21"],
            "heads with 1025 authors that are not keys is invalid_request: the authors are counted before \
             they are decoded, and the session stays usable",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s.call_json(json!({"type": "heads", "authors": vec!["a"; 1025]})).await?;
                expect_error(answer, ErrorCode::InvalidRequest)?;
                let answer = s.call_json(json!({"type": "heads", "authors": []})).await?;
                check_eq("heads after the refusal", want!(answer, HeadsOk).heads.len(), 0)
            }),
        ),
        Case::new(
            "HEADS-006",
            Must,
            &["FEED-20", "FEED-21"],
            "heads with exactly 1024 authors that are not keys is within the count, so the first is decoded: \
             bad_encoding",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s.call_json(json!({"type": "heads", "authors": vec!["a"; 1024]})).await?;
                expect_error(answer, ErrorCode::BadEncoding).map(|_| ())
            }),
        ),
        Case::new(
            "REP-001",
            Must,
            &["FEED-25", "FEED-26", "FEED-1"],
            "replicate after 0 returns the feed ascending with head and pruned_through",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut f = Feed::stranger();
                let es = publish_chain(&mut s, &mut f, 4).await?;
                let r = replicate_all(&mut s, ctx.target.limits.max_replicate, f.author(), 0).await?;
                check_eq(
                    "ids",
                    r.entries.iter().map(entry_id).collect::<Result<Vec<_>, _>>()?,
                    es.iter().map(entry_id).collect::<Result<Vec<_>, _>>()?,
                )?;
                check_eq("head, pruned_through", (r.head, r.pruned_through), (Some(4), 0))
            }),
        ),
        Case::new(
            "REP-002",
            Must,
            &["FEED-25"],
            "replicate after 2 limit 2 returns seqs 3 and 4 (only 3 when max_replicate is 1)",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut f = Feed::stranger();
                publish_chain(&mut s, &mut f, 5).await?;
                let answer = s.call(replicate(f.author(), 2, 2)).await?;
                let n = ctx.target.limits.max_replicate.min(2) as usize;
                check_eq("seqs", ids(&want!(answer, ReplicateOk).entries), vec![3, 4][..n].to_vec())
            }),
        ),
        Case::new(
            "REP-003",
            Must,
            &["FEED-26"],
            "replicate of an unknown author is empty with head null and pruned_through 0",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s.call(replicate(SecretKey::random().public(), 0, 10)).await?;
                let r = want!(answer, ReplicateOk);
                check_eq("answer", (r.entries.len(), r.head, r.pruned_through), (0, None, 0))
            }),
        ),
        Case::new(
            "REP-004",
            Must,
            &["FEED-23"],
            "replicate with limit 0 is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s.call(replicate(SecretKey::random().public(), 0, 0)).await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "REP-005",
            Must,
            &["FEED-24"],
            "replicate of an author that is not a key is bad_encoding",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer =
                    s.call_json(json!({"type": "replicate", "author": "nope", "after": 0, "limit": 1})).await?;
                expect_error(answer, ErrorCode::BadEncoding).map(|_| ())
            }),
        ),
        Case::new(
            "REP-006",
            Must,
            &["FEED-25", "HS-12"],
            "a limit above max_replicate is capped, not refused: exactly min(max_replicate, held) entries",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut f = Feed::stranger();
                // One entry more than max_replicate when that is small, so that the cap shows.
                let max = ctx.target.limits.max_replicate;
                let n = max.saturating_add(1).min(4);
                publish_chain(&mut s, &mut f, n).await?;
                let answer = s.call(replicate(f.author(), 0, 9_007_199_254_740_991)).await?;
                check_eq("seqs", ids(&want!(answer, ReplicateOk).entries), (1..=n.min(max)).collect::<Vec<_>>())
            }),
        ),
        Case::new(
            "REP-007",
            Must,
            &["FEED-25"],
            "replicate after the head returns no entries but the head",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut f = Feed::stranger();
                publish_chain(&mut s, &mut f, 2).await?;
                let answer = s.call(replicate(f.author(), 2, 5)).await?;
                let r = want!(answer, ReplicateOk);
                check_eq("answer", (r.entries.len(), r.head), (0, Some(2)))
            }),
        ),
        Case::new(
            "GET-001",
            Must,
            &["FEED-30", "FEED-1"],
            "get by id returns the entry",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let e = Feed::stranger().next("get me");
                s.publish_ok(&e).await?;
                let answer = s.call(get_id(entry_id(&e)?)).await?;
                check_eq("entry", want!(answer, GetOk).entry, e)
            }),
        ),
        Case::new(
            "GET-002",
            Must,
            &["FEED-30"],
            "get of an unknown id is not_found",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s.call(get_id(EntryId::from_bytes(random_bytes()))).await?;
                expect_error(answer, ErrorCode::NotFound).map(|_| ())
            }),
        ),
        Case::new(
            "GET-003",
            Must,
            &["FEED-31"],
            "get by author and seq returns the entry",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut f = Feed::stranger();
                let es = publish_chain(&mut s, &mut f, 3).await?;
                let answer = s.call(get_seq(f.author(), 2)).await?;
                check_eq("entry id", entry_id(&want!(answer, GetOk).entry)?, entry_id(&es[1])?)
            }),
        ),
        Case::new(
            "GET-004",
            Must,
            &["FEED-33"],
            "get of a seq beyond the head is not_found",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let mut f = Feed::stranger();
                publish_chain(&mut s, &mut f, 2).await?;
                let answer = s.call(get_seq(f.author(), 3)).await?;
                expect_error(answer, ErrorCode::NotFound).map(|_| ())
            }),
        ),
        Case::new(
            "GET-005",
            Must,
            &["FEED-33"],
            "get of an unknown author is not_found",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s.call(get_seq(SecretKey::random().public(), 1)).await?;
                expect_error(answer, ErrorCode::NotFound).map(|_| ())
            }),
        ),
        Case::new(
            "GET-006",
            Must,
            &["FEED-27"],
            "get with both forms is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s.call_json(json!({"type": "get", "entry_id": "ab".repeat(32), "author": SecretKey::random().public().to_string(), "seq": 1})).await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "GET-007",
            Must,
            &["FEED-27"],
            "get with only an author is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer =
                    s.call_json(json!({"type": "get", "author": SecretKey::random().public().to_string()})).await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "GET-008",
            Must,
            &["FEED-28"],
            "get of seq 0 is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s
                    .call_json(json!({"type": "get", "author": SecretKey::random().public().to_string(), "seq": 0}))
                    .await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "GET-009",
            Must,
            &["FEED-29"],
            "get of an id that is not hex is bad_encoding",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s.call_json(json!({"type": "get", "entry_id": "Z".repeat(64)})).await?;
                expect_error(answer, ErrorCode::BadEncoding).map(|_| ())
            }),
        ),
        Case::new(
            "GET-010",
            Must,
            &["FEED-27"],
            "get with neither form is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s.call_json(json!({"type": "get"})).await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
    ]
}
