//! The pre-upgrade attack: raw TCP sockets that never start the websocket upgrade.

use std::time::{Duration, Instant};

use kith_proto::frame::UPGRADE_DEADLINE_MS;

use crate::attack::common::{Held, ATTACK_SLACK, SRC_ATTACK};
use crate::conn::{ended_within, Conn};
use crate::ctx::Ctx;
use crate::hostile::OVER;
use crate::setup::src;
use crate::tally::{short, Tally};

pub(crate) async fn preupgrade_attack(ctx: &Ctx, tally: &Tally) -> Held {
    let l = &ctx.limits;
    let want = 2 * l.max_connections_per_address.min(512) as usize + OVER;
    // Leave 16 of the node-wide bound to the valid clients' upgrades.
    let n = want.min((2 * l.max_pending_handshakes as usize).saturating_sub(16).max(1));
    tally.add(
        format!(
            "preupgrade|sockets (2 x max_connections_per_address + {OVER}, at most 2 x max_pending_handshakes - 16)"
        ),
        n as u64,
    );
    let mut socks = Vec::new();
    for _ in 0..n {
        match Conn::tcp(ctx, src(SRC_ATTACK, 2), None).await {
            Ok(t) => socks.push(t),
            Err(e) => tally.add(format!("attack failure|preupgrade connect: {}", short(&e)), 1),
        }
    }
    // Past the per-address bound the node ends a socket at once; the rest at the deadline.
    let deadline = Duration::from_millis(UPGRADE_DEADLINE_MS.min(l.handshake_timeout_ms)) + ATTACK_SLACK;
    let t0 = Instant::now();
    let waits = socks.into_iter().map(|mut t| async move {
        let ended = ended_within(&mut t, deadline).await;
        (ended, t0.elapsed(), t)
    });
    let mut held = Held::default();
    for (ended, at, t) in futures_util::future::join_all(waits).await {
        let key = match (ended, at < Duration::from_millis(500)) {
            (true, true) => "preupgrade|ended by the node at once".to_owned(),
            (true, false) => "preupgrade|ended by the node at the upgrade deadline".to_owned(),
            (false, _) => "attack failure|preupgrade: socket still open past the upgrade deadline".to_owned(),
        };
        tally.add(key, 1);
        held.sockets.push(t);
    }
    held
}
