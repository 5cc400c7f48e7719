//! Storage budget and pruning (spec chapter 10), `PRUNE-*`, and restarts, `RESTART-*`. Every
//! case here gets a node of its own: pruning is node-wide, and a restart stops the node.

use std::time::Duration;

use kith_proto::feed::{Get, Heads};
use kith_proto::{ClientFrame, Entry, ErrorCode, PublicKey, RequestId};

use crate::case::{check, check_eq, entry_id, entry_size, expect_error, Case, Ctx, Failure, Feed, Level::*, Ops};
use crate::client::Session;
use crate::launch::NodeConfig;
use crate::{run, want};

/// The smallest budget the spec allows ([PRUNE-2]).
const BUDGET: u64 = 16384;
/// Entry size used here: four fit in the budget, five do not.
const SIZE: u64 = 4000;

fn small() -> NodeConfig {
    NodeConfig { storage_bytes: BUDGET, ..NodeConfig::default() }
}

/// The next entry of `feed`, padded to exactly `SIZE` canonical bytes.
fn sized(feed: &mut Feed) -> Entry {
    sized_to(feed, SIZE)
}

/// The next entry of `feed`, padded to exactly `size` canonical bytes.
fn sized_to(feed: &mut Feed, size: u64) -> Entry {
    let probe = feed.draft().text("").sign(&feed.key);
    let pad = (size - entry_size(&probe)) as usize;
    let d = feed.draft().text(&"p".repeat(pad));
    feed.push(d)
}

async fn publish_sized(s: &mut Session, feed: &mut Feed, n: usize) -> Result<Vec<Entry>, Failure> {
    let mut out = Vec::new();
    for _ in 0..n {
        let e = sized(feed);
        check_eq("test entry size", entry_size(&e), SIZE)?;
        s.publish_ok(&e).await?;
        out.push(e);
    }
    Ok(out)
}

fn get_seq(author: PublicKey, seq: u64) -> impl FnOnce(RequestId) -> ClientFrame {
    move |id| ClientFrame::Get(Get { id, entry_id: None, author: Some(author), seq: Some(seq) })
}

/// Every held entry of `author`'s feed, read in `replicate` pages of the node's `max_replicate`.
async fn replicate_all(
    ctx: &Ctx,
    s: &mut Session,
    author: PublicKey,
) -> Result<kith_proto::feed::ReplicateOk, Failure> {
    crate::case::replicate_all(s, ctx.target.limits.max_replicate, author, 0).await
}

async fn head_of(s: &mut Session, author: PublicKey) -> Result<Option<kith_proto::feed::HeadInfo>, Failure> {
    let answer = s.call(move |id| ClientFrame::Heads(Heads { id, authors: vec![author] })).await?;
    Ok(want!(answer, HeadsOk).heads.into_iter().next())
}

async fn user(ctx: &mut Ctx) -> Result<Session, Failure> {
    ctx.user_with(0, 1000).await
}

/// The storage and restart cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "PRUNE-BUDGET-001",
            Must,
            &["PRUNE-1", "PRUNE-4", "PRUNE-6"],
            "over budget, the node keeps only what fits and reports pruned_through",
            run!(|ctx| {
                let mut s = user(&mut ctx).await?;
                let mut f = Feed::stranger();
                publish_sized(&mut s, &mut f, 10).await?;
                let r = replicate_all(&ctx, &mut s, f.author()).await?;
                let held: Vec<u64> = r.entries.iter().map(|e| e.seq).collect();
                check_eq("held seqs", held, vec![7, 8, 9, 10])?;
                check_eq("pruned_through", r.pruned_through, 6)
            }),
        )
        .own_node(small()),
        Case::new(
            "PRUNE-FITS-001",
            Must,
            &["PRUNE-5", "PRUNE-1"],
            "nothing is pruned while the entries fit the budget, even when they fill it exactly",
            run!(|ctx| {
                let mut s = user(&mut ctx).await?;
                let mut f = Feed::stranger();
                publish_sized(&mut s, &mut f, 3).await?;
                // The fourth entry makes the counted bytes exactly the budget: at most, not over.
                let last = sized_to(&mut f, BUDGET - 3 * SIZE);
                check_eq("test entry size", entry_size(&last), BUDGET - 3 * SIZE)?;
                s.publish_ok(&last).await?;
                let r = replicate_all(&ctx, &mut s, f.author()).await?;
                check_eq("held entries, pruned_through", (r.entries.len(), r.pruned_through), (4, 0))
            }),
        )
        .own_node(small()),
        Case::new(
            "PRUNE-OLDEST-001",
            Must,
            &["PRUNE-3", "PRUNE-4"],
            "the oldest entry by arrival goes first, across feeds",
            run!(|ctx| {
                let mut s = user(&mut ctx).await?;
                let (mut a, mut b) = (Feed::stranger(), Feed::stranger());
                for which in [0, 1, 0, 1, 0] {
                    let feed = if which == 0 { &mut a } else { &mut b };
                    publish_sized(&mut s, feed, 1).await?;
                }
                expect_error(s.call(get_seq(a.author(), 1)).await?, ErrorCode::Pruned)?;
                want!(s.call(get_seq(b.author(), 1)).await?, GetOk);
                want!(s.call(get_seq(a.author(), 2)).await?, GetOk);
                Ok(())
            }),
        )
        .own_node(small()),
        Case::new(
            "PRUNE-HEAD-001",
            Must,
            &["PRUNE-7", "PRUNE-8"],
            "a feed pruned to nothing keeps its head",
            run!(|ctx| {
                let mut s = user(&mut ctx).await?;
                let mut a = Feed::stranger();
                let first = publish_sized(&mut s, &mut a, 1).await?;
                publish_sized(&mut s, &mut Feed::stranger(), 4).await?;
                let h = head_of(&mut s, a.author())
                    .await?
                    .ok_or_else(|| Failure::fail("a head for the pruned feed", "none"))?;
                check_eq("head", (h.seq, h.entry_id, h.pruned_through), (1, entry_id(&first[0])?, 1))
            }),
        )
        .own_node(small()),
        Case::new(
            "PRUNE-CHAIN-001",
            Must,
            &["PRUNE-8", "ENTRY-27", "ENTRY-25"],
            "chain validation survives pruning: the right successor is accepted, a wrong one refused",
            run!(|ctx| {
                let mut s = user(&mut ctx).await?;
                let mut a = Feed::stranger();
                publish_sized(&mut s, &mut a, 1).await?;
                publish_sized(&mut s, &mut Feed::stranger(), 4).await?;
                let mut wrong = a.draft();
                wrong.prev = Some(kith_proto::EntryId::from_bytes(crate::client::random_bytes()));
                s.publish_refused(&wrong.sign(&a.key), ErrorCode::BadPrev).await?;
                let next = a.next("after pruning");
                s.publish_ok(&next).await.map(|_| ())
            }),
        )
        .own_node(small()),
        Case::new(
            "PRUNE-REPUBLISH-001",
            Must,
            &["ENTRY-30"],
            "re-publishing a pruned entry is pruned, not a duplicate",
            run!(|ctx| {
                let mut s = user(&mut ctx).await?;
                let mut a = Feed::stranger();
                let es = publish_sized(&mut s, &mut a, 6).await?;
                s.publish_refused(&es[0], ErrorCode::Pruned).await
            }),
        )
        .own_node(small()),
        Case::new(
            "PRUNE-FORK-001",
            Must,
            &["ENTRY-30"],
            "a different entry at a pruned seq is pruned, not fork",
            run!(|ctx| {
                let mut s = user(&mut ctx).await?;
                let mut a = Feed::stranger();
                publish_sized(&mut s, &mut a, 6).await?;
                let other = Feed::new(&a.key).next("another first entry");
                s.publish_refused(&other, ErrorCode::Pruned).await
            }),
        )
        .own_node(small()),
        Case::new(
            "PRUNE-GET-001",
            Must,
            &["FEED-32", "FEED-26"],
            "get of a pruned seq answers pruned; replicate reports pruned_through",
            run!(|ctx| {
                let mut s = user(&mut ctx).await?;
                let mut a = Feed::stranger();
                publish_sized(&mut s, &mut a, 5).await?;
                expect_error(s.call(get_seq(a.author(), 1)).await?, ErrorCode::Pruned)?;
                let r = replicate_all(&ctx, &mut s, a.author()).await?;
                check_eq("head, pruned_through", (r.head, r.pruned_through), (Some(5), 1))
            }),
        )
        .own_node(small()),
        Case::new(
            "PRUNE-COUNTERS-001",
            Must,
            &["ACCT-51"],
            "pruning restores no allowance and reduces no counter",
            run!(|ctx| {
                let mut s = ctx.user_with(0, 20).await?;
                let mut f = Feed::new(&s.user);
                publish_sized(&mut s, &mut f, 6).await?;
                let a = s.account().await?;
                check_eq(
                    "allowance and counters",
                    (a.publish_allowance, a.published_entries, a.published_bytes),
                    (Some(14), 6, 6 * SIZE),
                )
            }),
        )
        .own_node(small()),
        Case::new(
            "PRUNE-BIG-001",
            Must,
            &["PRUNE-4", "PRUNE-2"],
            "an entry of max_entry_bytes fills a minimal budget alone",
            run!(|ctx| {
                let mut s = user(&mut ctx).await?;
                let mut a = Feed::stranger();
                publish_sized(&mut s, &mut a, 2).await?;
                let mut b = Feed::stranger();
                let probe = b.draft().text("").sign(&b.key);
                let d = b.draft().text(&"q".repeat((BUDGET - entry_size(&probe)) as usize));
                let big = b.push(d);
                s.publish_ok(&big).await?;
                want!(s.call(get_seq(b.author(), 1)).await?, GetOk);
                let r = replicate_all(&ctx, &mut s, a.author()).await?;
                check_eq("a's entries left", r.entries.len(), 0)
            }),
        )
        .own_node(small()),
        Case::new(
            "PRUNE-LIMIT-001",
            Must,
            &["PRUNE-2", "HS-12"],
            "node_info reports a storage budget of at least 16384",
            run!(|ctx| {
                let b = ctx.target.limits.storage_bytes;
                check(b >= BUDGET, "storage_bytes >= 16384", b)
            }),
        ),
        Case::new(
            "PRUNE-RESTART-001",
            Must,
            &["PRUNE-10"],
            "a node restarted with a lower budget prunes before it accepts connections",
            run!(|ctx| {
                let mut s = user(&mut ctx).await?;
                let mut a = Feed::stranger();
                publish_sized(&mut s, &mut a, 6).await?;
                drop(s);
                ctx.restart_with(false, Some(small())).await?;
                let mut s = ctx.admin().await?;
                let r = replicate_all(&ctx, &mut s, a.author()).await?;
                check_eq("held entries, pruned_through", (r.entries.len(), r.pruned_through), (4, 2))
            }),
        )
        .own_node(NodeConfig::default())
        .timeout_ms(20_000),
        Case::new(
            "RESTART-001",
            Must,
            &["PRUNE-8", "FEED-6"],
            "entries and heads survive an orderly restart",
            run!(|ctx| {
                let mut s = user(&mut ctx).await?;
                let mut f = Feed::stranger();
                let es = publish_sized(&mut s, &mut f, 2).await?;
                drop(s);
                ctx.restart(false).await?;
                let mut s = ctx.admin().await?;
                let h = head_of(&mut s, f.author())
                    .await?
                    .ok_or_else(|| Failure::fail("the head after restart", "none"))?;
                check_eq("head", (h.seq, h.entry_id), (2, entry_id(&es[1])?))?;
                want!(s.call(get_seq(f.author(), 1)).await?, GetOk);
                Ok(())
            }),
        )
        .own_node(NodeConfig::default())
        .timeout_ms(20_000),
        Case::new(
            "RESTART-002",
            Should,
            &["FEED-6", "PRUNE-9"],
            "an entry acknowledged before a crash (SIGKILL) is still there",
            run!(|ctx| {
                let mut s = user(&mut ctx).await?;
                let e = Feed::stranger().next("durable?");
                s.publish_ok(&e).await?;
                drop(s);
                ctx.restart(true).await?;
                let mut s = ctx.admin().await?;
                let id = entry_id(&e)?;
                want!(
                    s.call(move |rid| ClientFrame::Get(Get { id: rid, entry_id: Some(id), author: None, seq: None }))
                        .await?,
                    GetOk
                );
                Ok(())
            }),
        )
        .own_node(NodeConfig::default())
        .timeout_ms(20_000),
        Case::new(
            "RESTART-003",
            Must,
            &["PRUNE-8"],
            "the state of a pruned feed survives a restart",
            run!(|ctx| {
                let mut s = user(&mut ctx).await?;
                let mut a = Feed::stranger();
                publish_sized(&mut s, &mut a, 1).await?;
                publish_sized(&mut s, &mut Feed::stranger(), 4).await?;
                drop(s);
                ctx.restart(false).await?;
                let mut s = ctx.admin().await?;
                let h = head_of(&mut s, a.author())
                    .await?
                    .ok_or_else(|| Failure::fail("the head after restart", "none"))?;
                check_eq("head seq, pruned_through", (h.seq, h.pruned_through), (1, 1))?;
                s.publish_ok(&a.next("still chains")).await.map(|_| ())
            }),
        )
        .own_node(small())
        .timeout_ms(20_000),
        Case::new(
            "RESTART-004",
            Should,
            &["PRUNE-9"],
            "accounts and follow sets survive a restart",
            run!(|ctx| {
                let (key, _) = ctx.invite(1, 2).await?;
                let mut s = ctx.login(&key).await?;
                let k = kith_proto::SecretKey::random().public();
                want!(
                    s.call(move |id| ClientFrame::Follow(kith_proto::identity::Follow { id, key: k })).await?,
                    FollowOk
                );
                drop(s);
                ctx.restart(false).await?;
                let mut s = ctx.login(&key).await?;
                check_eq("allowances", (s.account.invite_allowance, s.account.publish_allowance), (Some(1), Some(2)))?;
                let answer =
                    s.call(|id| ClientFrame::Follows(kith_proto::identity::Follows { id, after: None })).await?;
                check_eq("follows", want!(answer, FollowsOk).keys, vec![k])
            }),
        )
        .own_node(NodeConfig::default())
        .timeout_ms(20_000),
        Case::new(
            "RESTART-005",
            Should,
            &["FRAME-30", "FRAME-29"],
            "an orderly shutdown sends closing shutting_down and closes 1001",
            run!(|ctx| {
                let mut s = user(&mut ctx).await?;
                ctx.restart(false).await?;
                let frame = s
                    .conn
                    .recv_frame(Duration::from_secs(2))
                    .await
                    .map_err(|e| Failure::fail("a closing push", e.to_string()))?;
                let c = want!(frame, Closing);
                check_eq("closing.code", c.code, ErrorCode::ShuttingDown)?;
                let closed = s
                    .conn
                    .await_close(Duration::from_secs(2))
                    .await
                    .map_err(|_| Failure::fail("close 1001", "still open"))?;
                check_eq("close code", closed.map(|c| c.0), Some(1001))
            }),
        )
        .own_node(NodeConfig::default())
        .timeout_ms(20_000),
    ]
}
