//! The valid traffic: clients that log in, keep a live subscription and run a seeded mix of
//! requests, and the heavy publisher that keeps the store pruning.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kith_client::{counted_id, now_ms};
use kith_proto::account::{AccountRequest, KeyReplacement, RemoveUser, ReplaceKey};
use kith_proto::feed::{Filter, Get, Heads, Publish, Replicate, Subscribe, Unsubscribe};
use kith_proto::node_info::NodeInfo;
use kith_proto::{ClientFrame, SecretKey};

use crate::conn::Conn;
use crate::ctx::Ctx;
use crate::setup::{actions, at, heavy_text, phase_len, post_text, src, Author, SRC_HEAVY, SRC_VALID};
use crate::tally::{short, Rng, Tally};
use crate::Res;

/// Logs in as a valid author and subscribes to every valid author (reading all it gets).
/// The connection in `slot`, logging in first when it holds none. A failed login is tallied as
/// `failure` and gives `None`: the caller skips this action and tries again at the next.
pub(crate) async fn logged_in<'a, F: std::future::Future<Output = Res<Conn>>>(
    slot: &'a mut Option<Conn>,
    tally: &Tally,
    failure: &str,
    login: impl FnOnce() -> F,
) -> Option<&'a mut Conn> {
    if slot.is_none() {
        match login().await {
            Ok(c) => *slot = Some(c),
            Err(e) => {
                tally.add(format!("{failure}: {}", short(&e)), 1);
                return None;
            }
        }
    }
    slot.as_mut()
}

pub(crate) async fn valid_session(ctx: &Ctx, key: &SecretKey) -> Res<Conn> {
    let mut c = Conn::session(ctx, src(0, SRC_VALID), key, None).await?;
    let authors = ctx.valid_authors.clone();
    c.must(
        |id| {
            ClientFrame::Subscribe(Subscribe { id, filter: Filter { authors, ..Filter::default() }, backfill: Some(0) })
        },
        "subscribe_ok",
    )
    .await?;
    Ok(c)
}

pub(crate) async fn valid_client(ctx: Arc<Ctx>, tally: Tally, start: Instant, idx: usize, mut me: Author) -> Author {
    let mut rng = Rng::new(ctx.args.seed, 1000 + idx as u64);
    let every = Duration::from_millis(1000 / ctx.args.valid_rate.max(1));
    let n = actions(phase_len(&ctx), every);
    let mut conn: Option<Conn> = None;
    let mut events = 0;
    for i in 0..n {
        let slot = start + every * i as u32;
        if let Some(c) = conn.as_mut() {
            if let Err(e) = c.idle_until(slot).await {
                tally.add(format!("valid failure|{}", short(&e)), 1);
                events += c.events;
                conn = None;
            }
        } else {
            at(start, every * i as u32).await;
        }
        let Some(c) = logged_in(&mut conn, &tally, "valid failure|login", || valid_session(&ctx, &me.key)).await else {
            continue;
        };
        let roll = rng.below(100);
        let result = valid_op(&ctx, &tally, c, &mut me, &mut rng, roll).await;
        match result {
            Ok(op) => tally.add(format!("valid op|{op}"), 1),
            Err(e) => {
                tally.add(format!("valid failure|{}", short(&e)), 1);
                if let Some(c) = conn.take() {
                    events += c.events;
                    c.close().await;
                }
            }
        }
    }
    if let Some(mut c) = conn.take() {
        let _ = c.idle_until(Instant::now() + Duration::from_millis(200)).await;
        events += c.events;
        c.close().await;
    }
    tally.add("valid events received", events);
    me
}

/// One operation of the valid mix, chosen by `roll` (0..100); returns its name.
pub(crate) async fn valid_op(
    ctx: &Ctx,
    tally: &Tally,
    c: &mut Conn,
    me: &mut Author,
    rng: &mut Rng,
    roll: u64,
) -> Res<&'static str> {
    let me_pub = me.key.public();
    match roll {
        0..=29 => {
            let entry = me.next_entry(&post_text(50 + rng.below(1500) as usize, rng.next()));
            let e2 = entry.clone();
            c.must(|id| ClientFrame::Publish(Publish { id, entry: e2 }), "publish_ok").await?;
            me.prev = Some(entry);
            Ok("publish")
        }
        30..=41 => {
            let Some(prev) = &me.prev else { return Ok("get (nothing yet)") };
            let entry_id = Some(prev.id());
            match c.call(|id| ClientFrame::Get(Get { id, entry_id, author: None, seq: None }), "get_ok").await? {
                Ok(_) => Ok("get"),
                // The heavy publisher's entries push everything out of a 16 MiB store within
                // seconds; a pruned entry is `not_found`, as the spec says.
                Err(code) if code == "not_found" => Ok("get (not_found: pruned)"),
                Err(code) => Err(format!("get: refused {code}")),
            }
        }
        42..=53 => {
            let mut authors = ctx.valid_authors.clone();
            authors.push(ctx.heavy);
            c.must(|id| ClientFrame::Heads(Heads { id, authors }), "heads_ok").await?;
            Ok("heads")
        }
        54..=63 => {
            let after = me.prev.as_ref().map_or(0, |p| p.seq.saturating_sub(10));
            c.must(|id| ClientFrame::Replicate(Replicate { id, author: me_pub, after, limit: 10 }), "replicate_ok")
                .await?;
            Ok("replicate")
        }
        64..=73 => {
            let author = ctx.valid_authors.get(rng.below(ctx.valid_authors.len() as u64) as usize).copied();
            let authors = author.into_iter().collect();
            let sub = c.next_id;
            c.must(
                |id| {
                    ClientFrame::Subscribe(Subscribe {
                        id,
                        filter: Filter { authors, ..Filter::default() },
                        backfill: Some(20),
                    })
                },
                "subscribe_ok",
            )
            .await?;
            c.await_stored_end(sub).await?;
            c.must(|id| ClientFrame::Unsubscribe(Unsubscribe { id, sub: counted_id(sub) }), "unsubscribe_ok").await?;
            Ok("subscribe+read+unsubscribe")
        }
        74..=78 => {
            c.must(|id| ClientFrame::Account(AccountRequest { id }), "account_ok").await?;
            Ok("account")
        }
        79..=83 => {
            c.must(|id| ClientFrame::NodeInfo(NodeInfo { id }), "node_info_ok").await?;
            Ok("node_info")
        }
        84..=94 => {
            let child = SecretKey::random();
            let key = child.public();
            c.create_user(key, 0, 10).await?;
            // Half the time the child is logged in when it is removed: its session must end.
            let child_conn = if roll.is_multiple_of(2) {
                Some(Conn::session(ctx, src(0, SRC_VALID), &child, None).await?)
            } else {
                None
            };
            c.must(|id| ClientFrame::RemoveUser(RemoveUser { id, key }), "remove_user_ok").await?;
            if let Some(mut cc) = child_conn {
                let seen = cc.outcome(Duration::from_secs(3), Duration::from_millis(300)).await;
                tally.add(format!("valid side|removed user's session: {seen}"), 1);
                cc.close().await;
                Ok("create_user+login+remove_user")
            } else {
                Ok("create_user+remove_user")
            }
        }
        _ => {
            // Key replacement: a child account logs in, hands itself to a new key, logs in
            // under it; then its parent removes it.
            let child = SecretKey::random();
            let key = child.public();
            c.create_user(key, 0, 10).await?;
            let mut cc = Conn::session(ctx, src(0, SRC_VALID), &child, None).await?;
            let new = SecretKey::random();
            let replacement = KeyReplacement::sign(ctx.node, &child, &new, now_ms() + 60_000);
            cc.must(|id| ClientFrame::ReplaceKey(ReplaceKey { id, replacement }), "replace_key_ok").await?;
            let seen = cc.outcome(Duration::from_secs(3), Duration::from_millis(300)).await;
            tally.add(format!("valid side|replaced key's session: {seen}"), 1);
            cc.close().await;
            let mut nc = Conn::session(ctx, src(0, SRC_VALID), &new, None).await?;
            nc.must(|id| ClientFrame::Account(AccountRequest { id }), "account_ok").await?;
            nc.close().await;
            let key = new.public();
            c.must(|id| ClientFrame::RemoveUser(RemoveUser { id, key }), "remove_user_ok").await?;
            Ok("create_user+replace_key+login+remove_user")
        }
    }
}

/// Publishes large entries at `heavy_rate`, keeping the store pruning and feeding the slow
/// consumers.
pub(crate) async fn heavy_publisher(ctx: Arc<Ctx>, tally: Tally, start: Instant, mut me: Author) -> Author {
    let every = Duration::from_micros(1_000_000 / ctx.args.heavy_rate.max(1));
    let n = actions(phase_len(&ctx), every);
    let mut conn: Option<Conn> = None;
    for i in 0..n {
        at(start, every * i as u32).await;
        let login = || Conn::session(&ctx, src(0, SRC_HEAVY), &me.key, None);
        let Some(c) = logged_in(&mut conn, &tally, "valid failure|heavy login", login).await else { continue };
        let entry = me.next_entry(&heavy_text(i));
        let e2 = entry.clone();
        match c.must(|id| ClientFrame::Publish(Publish { id, entry: e2 }), "publish_ok").await {
            Ok(_) => {
                me.prev = Some(entry);
                tally.add("valid op|heavy publish (15 KB)", 1);
            }
            Err(e) => {
                tally.add(format!("valid failure|heavy: {}", short(&e)), 1);
                if let Some(c) = conn.take() {
                    c.close().await;
                }
            }
        }
    }
    if let Some(c) = conn.take() {
        c.close().await;
    }
    me
}

/// Waits for the valid clients' tasks and returns their authors, in order, for the next phase; a
/// task that panicked is tallied as a valid failure and its place taken by a fresh author.
pub(crate) async fn join_valid_clients(tasks: Vec<tokio::task::JoinHandle<Author>>, tally: &Tally) -> Vec<Author> {
    let mut valid = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(a) => valid.push(a),
            Err(e) => {
                tally.add(format!("valid failure|task panicked: {e}"), 1);
                valid.push(Author::new(SecretKey::random()));
            }
        }
    }
    valid
}
