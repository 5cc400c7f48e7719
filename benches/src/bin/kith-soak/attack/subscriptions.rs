//! The subscriptions attack: connections with every subscription they may hold, each filter as
//! large as a frame allows.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kith_client::random_bytes;
use kith_proto::feed::{Filter, Subscribe};
use kith_proto::frame::MAX_FRAME_BYTES;
use kith_proto::{ClientFrame, EntryId, RequestId};

use crate::attack::common::{paced_call, per_address, Held, SRC_ATTACK};
use crate::conn::Conn;
use crate::ctx::Ctx;
use crate::setup::{at, src};
use crate::tally::{short, Tally};

/// The largest number of thread ids (at most 1024, FEED-9) whose `subscribe` fits in one frame.
pub(crate) fn threads_per_filter(ctx: &Ctx) -> usize {
    let frame = |n: usize| {
        let threads = (0..n).map(|_| EntryId::from_bytes(random_bytes())).collect();
        ClientFrame::Subscribe(Subscribe {
            id: RequestId::small(u32::MAX),
            filter: Filter { threads, ..Filter::default() },
            backfill: None,
        })
        .to_text()
        .len()
    };
    let max = (ctx.limits.max_frame_bytes as usize).min(MAX_FRAME_BYTES);
    let mut n = 1024;
    while n > 1 && frame(n) > max {
        n = n * max / frame(n) - 1;
    }
    n
}

pub(crate) async fn subscriptions_attack(ctx: &Ctx, tally: &Tally) -> Held {
    let l = ctx.limits.clone();
    let n = per_address(ctx, true);
    let ids = threads_per_filter(ctx);
    // As many subscriptions as the connection's filter items allow (FEED-34), then one more,
    // which must be refused `invalid_request` (when `max_subscriptions` is not reached first).
    let most_subs = l.max_subscriptions.min(1024) as usize;
    let fit = (l.max_filter_items as usize / ids.max(1)).min(most_subs);
    let subs = (fit + 1).min(most_subs);
    tally.add(
        format!(
            "subscriptions attack|connections x {fit} subscriptions x {ids} thread ids (max_filter_items {})",
            l.max_filter_items
        ),
        n as u64,
    );
    let every = Duration::from_micros(1_250_000 / l.max_requests_per_second.max(1));
    let one = |_| async {
        let mut c = Conn::session(ctx, src(SRC_ATTACK, 5), &ctx.flood_user, None).await?;
        let start = Instant::now();
        let mut refused = BTreeMap::new();
        for i in 0..subs {
            at(start, every * i as u32).await;
            let threads: Vec<EntryId> = (0..ids).map(|_| EntryId::from_bytes(random_bytes())).collect();
            let got = paced_call(
                &mut c,
                |id| {
                    ClientFrame::Subscribe(Subscribe {
                        id,
                        filter: Filter { threads: threads.clone(), ..Filter::default() },
                        backfill: None,
                    })
                },
                "subscribe_ok",
            )
            .await?;
            let expected = if i < fit { "subscribe_ok" } else { "error invalid_request" };
            if got != expected {
                *refused.entry(format!("{got} (expected {expected})")).or_insert(0u64) += 1;
            }
        }
        Ok::<_, String>((c, refused))
    };
    let mut held = Held::default();
    // Logins a few at a time, within the pending-handshake count.
    let batch = (l.max_pending_handshakes / 2).clamp(1, 8) as usize;
    let mut left = n;
    while left > 0 {
        let k = left.min(batch);
        left -= k;
        for r in futures_util::future::join_all((0..k).map(one)).await {
            match r {
                Ok((c, refused)) => {
                    tally.add(
                        "subscriptions attack|connections with every subscription answered as FEED-34 says",
                        u64::from(refused.is_empty()),
                    );
                    for (code, m) in refused {
                        tally.add(format!("attack failure|subscriptions: {code}"), m);
                    }
                    held.conns.push(c);
                }
                Err(e) => tally.add(format!("attack failure|subscriptions: {}", short(&e)), 1),
            }
        }
    }
    held
}
