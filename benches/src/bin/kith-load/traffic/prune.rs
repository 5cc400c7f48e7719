//! Scenario `prune`: a node with a small storage budget takes many times its budget.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kith_proto::PublicKey;
use serde::Serialize;

use crate::cli::Cli;
use crate::feeds::sign_feeds;
use crate::measure::{CpuMeter, CpuUse, Latency};
use crate::target::launch;
use crate::wire::{login, publish, Admin, Identity};
use crate::Res;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PruneResult {
    pub(crate) budget_bytes: u64,
    pub(crate) published: usize,
    pub(crate) published_bytes: u64,
    pub(crate) accepted: u64,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) accepted_per_second: f64,
    /// Acks of publishes sent after the store first exceeded its budget.
    pub(crate) ack_while_pruning: Latency,
    pub(crate) max_ack_gap_ms: f64,
    pub(crate) disk_bytes_end: Option<u64>,
    /// Counted bytes the node holds at the end, from `heads` (must not exceed the budget).
    pub(crate) stored_bytes_end: u64,
    pub(crate) cpu: CpuUse,
}

pub(crate) async fn run_prune(cli: &Cli, ticks: f64, pinned: bool) -> Res<PruneResult> {
    let t = launch(cli, cli.prune_budget, pinned).await?;
    let result = async {
        let publishers = 4usize;
        let per = cli.prune_entries.div_ceil(publishers);
        let mut admin = Admin::open(&t.url, &t.admin).await?;
        let users = admin.create_users(publishers, "pp").await?;
        eprintln!("  signing {publishers} x {per} entries ...");
        let feeds = sign_feeds(&users, per);
        let entry_size = feeds.first().and_then(|f| f.sizes.first()).copied().unwrap_or(600) as u64;
        let published_bytes: u64 = feeds.iter().flat_map(|f| f.sizes.iter()).map(|&s| s as u64).sum();
        // Publishers advance together, so the store passes its budget after about this many
        // entries per publisher; acks after that are acks of publishes that prune.
        let fill_per_pub = (cli.prune_budget / entry_size / publishers as u64) as usize;
        let sizes: Vec<Vec<usize>> = feeds.iter().map(|f| f.sizes.clone()).collect();
        let authors: Vec<PublicKey> = feeds.iter().map(|f| f.author.public()).collect();
        let feeds: Vec<(Identity, Vec<String>)> =
            feeds.into_iter().map(|f| (Identity::new(f.author), f.frames)).collect();
        let node = t.node_key();
        let mut sessions = Vec::new();
        for (id, frames) in feeds {
            sessions.push((login(&t.url, node, &id).await?, frames));
        }
        let meter = CpuMeter::start(t.pid, ticks);
        let start = Instant::now();
        let tasks: Vec<_> = sessions
            .into_iter()
            .map(|(ws, frames)| tokio::spawn(publish(ws, frames, cli.in_flight, None, None, 1)))
            .collect();
        let mut accepted = 0;
        let mut errors = BTreeMap::new();
        let mut pruning = Vec::new();
        let mut gap = 0;
        let mut last = start;
        for task in tasks {
            let s = task.await.map_err(|e| e.to_string())??;
            accepted += s.accepted;
            for (k, v) in s.errors {
                *errors.entry(k).or_default() += v;
            }
            pruning.extend(s.ack_us.iter().skip(fill_per_pub + 1).copied());
            gap = gap.max(s.max_gap_us);
            if let Some(l) = s.last_ack {
                last = last.max(l);
            }
        }
        let cpu = meter.stop();
        tokio::time::sleep(Duration::from_millis(200)).await;
        // What the node still holds, from its heads: the entries in (pruned_through, seq] of
        // each feed, whose sizes are known from signing them.
        let stored_bytes = admin.stored_bytes(&authors, &sizes).await?;
        Ok(PruneResult {
            budget_bytes: cli.prune_budget,
            published: per * publishers,
            published_bytes,
            accepted,
            errors,
            accepted_per_second: accepted as f64 / last.duration_since(start).as_secs_f64(),
            ack_while_pruning: Latency::of(pruning),
            max_ack_gap_ms: f64::from(gap) / 1000.0,
            disk_bytes_end: t.disk_bytes(),
            stored_bytes_end: stored_bytes,
            cpu,
        })
    }
    .await;
    t.stop().await;
    result
}
