//! Attack phases (issue 12): one attack at a time beside the valid traffic, each measured at its
//! own baseline, peak, end and after its deadline. One module per attack.

mod close;
pub(crate) mod common;
mod idle;
pub(crate) mod kind;
mod notes;
mod preupgrade;
mod subscriptions;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kith_proto::account::RemoveUser;
use kith_proto::node_info::NodeInfo;
use kith_proto::{ClientFrame, SecretKey};
use serde::Serialize;

use crate::attack::close::close_attack;
use crate::attack::common::{per_address, ATTACK_SLACK, SRC_ATTACK};
use crate::attack::idle::idle_attack;
use crate::attack::kind::Attack;
use crate::attack::notes::notes_attack;
use crate::attack::preupgrade::preupgrade_attack;
use crate::attack::subscriptions::subscriptions_attack;
use crate::conn::Conn;
use crate::ctx::Ctx;
use crate::sample::{peak_sampler, proc_sample, settle, ProcSample};
use crate::setup::{src, Setup, SRC_ADMIN};
use crate::tally::{short, Tally};
use crate::valid::{join_valid_clients, valid_client};

/// One attack phase's figures.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AttackResult {
    pub(crate) attack: Attack,
    /// 1 for the attack's first run (its warm-up for RSS), 2 for the next, ...
    pub(crate) round: usize,
    /// The node before the phase (no client).
    pub(crate) before: Option<ProcSample>,
    /// The highest figures while the attack and the valid traffic ran (sampled every 50 ms).
    pub(crate) peak: Option<ProcSample>,
    /// The node when the attack's traffic stopped (what it left still held: sockets, state).
    pub(crate) end: Option<ProcSample>,
    /// The node after the attack's deadline (and the removal of its account, for notes).
    pub(crate) after: Option<ProcSample>,
    /// Seconds the attack's own traffic took.
    pub(crate) attack_secs: f64,
    /// Seconds from the end of the attack's traffic by which the fds must be back: its deadline,
    /// or the end of the valid clients when later, plus `ATTACK_SLACK`.
    pub(crate) allowed_secs: f64,
    /// Seconds from the end of the attack's traffic until the node's fds were back at the
    /// baseline (or the deadline passed); the "after" sample is taken 0.5 s later.
    pub(crate) after_secs: f64,
    pub(crate) counts: BTreeMap<String, u64>,
}

/// Runs one attack beside the valid clients and samples the node around it.
pub(crate) async fn run_attack(
    ctx: &Arc<Ctx>,
    setup: Setup,
    (attack, round): (Attack, usize),
    pid: Option<u32>,
    admin: &SecretKey,
) -> (Setup, AttackResult) {
    if let Some(p) = pid {
        settle(p, None, Duration::from_secs(ctx.args.settle_secs)).await;
    }
    let before = pid.and_then(proc_sample);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = pid.map(|p| tokio::spawn(peak_sampler(p, stop.clone())));
    let tally = Tally::default();
    let start = Instant::now();
    let mut valid_tasks = Vec::new();
    for (idx, a) in setup.valid.into_iter().enumerate() {
        valid_tasks.push(tokio::spawn(valid_client(ctx.clone(), tally.clone(), start, idx, a)));
    }
    // The valid clients log in first, so that the attack runs beside established sessions.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t_attack = Instant::now();
    let mut held = match attack {
        Attack::Close => close_attack(ctx, &tally).await,
        Attack::Preupgrade => preupgrade_attack(ctx, &tally).await,
        Attack::Idle => idle_attack(ctx, &tally).await,
        Attack::Notes => notes_attack(ctx, &tally, admin).await,
        Attack::Subscriptions => subscriptions_attack(ctx, &tally).await,
    };
    let attack_secs = t_attack.elapsed().as_secs_f64();
    let t_end = Instant::now();
    let end = pid.and_then(proc_sample);
    if attack == Attack::Idle {
        // Each must be ended by the handshake timeout, counted from its upgrade.
        let wait = attack.deadline(&ctx.limits) + ATTACK_SLACK;
        let seen = futures_util::future::join_all(held.conns.iter_mut().map(|c| c.outcome(wait, wait))).await;
        for s in seen {
            let key = if s.contains("handshake_timeout") {
                format!("idle attack|{s}")
            } else {
                format!("attack failure|idle: {s}")
            };
            tally.add(key, 1);
        }
    }
    futures_util::future::join_all(held.conns.drain(..).map(Conn::close)).await;
    if let Some(user) = held.remove.take() {
        let removed = async {
            let mut a = Conn::session(ctx, src(0, SRC_ADMIN), admin, None).await?;
            a.must(|id| ClientFrame::RemoveUser(RemoveUser { id, key: user }), "remove_user_ok").await?;
            a.close().await;
            Ok::<_, String>(())
        };
        match removed.await {
            Ok(()) => tally.add("notes attack|account removed (its notes deleted, IDENT-31)", 1),
            Err(e) => tally.add(format!("attack failure|notes: remove the user: {}", short(&e)), 1),
        }
    }
    let valid = join_valid_clients(valid_tasks, &tally).await;
    // The node must let go of everything by the deadline, the attack's sockets still open.
    // Past the deadline the soak waits up to `--settle-secs` more, only to measure how long the
    // node did take (the verdict compares the time with the deadline).
    // The valid clients' own connections count too, so the deadline runs from their end when
    // that is later.
    let limit_at = (t_end + attack.deadline(&ctx.limits)).max(Instant::now()) + ATTACK_SLACK;
    let allowed_secs = limit_at.duration_since(t_end).as_secs_f64();
    let by = limit_at + Duration::from_secs(ctx.args.settle_secs);
    if let (Some(p), Some(b)) = (pid, before) {
        settle(p, Some(b.fds + ctx.args.attack_fd_slack), by.saturating_duration_since(Instant::now())).await;
    }
    let after_secs = t_end.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = pid.and_then(proc_sample);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = match sampler {
        Some(s) => s.await.ok(),
        None => None,
    };
    if attack == Attack::Close {
        // FRAME-50: the ended connections no longer count toward the address.
        let n = per_address(ctx, true);
        let mut answered = 0;
        let mut fresh = Vec::new();
        for _ in 0..n {
            if let Ok(mut c) = Conn::open(ctx, src(SRC_ATTACK, 1), None).await {
                if matches!(c.call(|id| ClientFrame::NodeInfo(NodeInfo { id }), "node_info_ok").await, Ok(Ok(_))) {
                    answered += 1;
                }
                fresh.push(c);
            }
        }
        let key = if answered == n {
            "close attack|new connections from the address after the deadline, answered"
        } else {
            "attack failure|close: new connections after the deadline, answered"
        };
        tally.add(key, answered as u64);
        futures_util::future::join_all(fresh.into_iter().map(Conn::close)).await;
    }
    drop(held);
    let result = AttackResult {
        attack,
        round,
        before,
        peak,
        end,
        after,
        attack_secs,
        after_secs,
        allowed_secs,
        counts: tally.snapshot(),
    };
    (Setup { valid, heavy: setup.heavy }, result)
}
