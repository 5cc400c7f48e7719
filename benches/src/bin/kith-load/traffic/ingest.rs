//! Scenario `ingest`: M publishers each pipelining pre-signed entries of its own feed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kith_proto::{PublicKey, SecretKey};
use serde::Serialize;
use tokio::sync::watch;

use crate::ceiling::Ceiling;
use crate::cli::Cli;
use crate::feeds::sign_feeds;
use crate::measure::{CpuMeter, CpuUse, Latency, Stamps};
use crate::target::Target;
use crate::wire::{listen, login, publish, subscribe, Admin, Identity, PubStats};
use crate::Res;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct IngestResult {
    pub(crate) publishers: usize,
    pub(crate) entries_per_publisher: usize,
    pub(crate) in_flight: usize,
    pub(crate) subscribers: usize,
    pub(crate) accepted: u64,
    pub(crate) duplicates: u64,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) accepted_per_second: f64,
    pub(crate) ack: Latency,
    pub(crate) max_ack_gap_ms: f64,
    pub(crate) cpu: CpuUse,
    /// accepted/s over the all-core strict-verify rate.
    pub(crate) ratio_to_verify_all_cores: f64,
    /// accepted/s over one core's strict-verify rate.
    pub(crate) ratio_to_verify_one_core: f64,
    /// accepted/s per node CPU-second, over one core's verify rate: t_verify × accepted /
    /// node CPU seconds.
    pub(crate) cpu_efficiency: Option<f64>,
    pub(crate) delivery: Option<Latency>,
}

/// Logs each feed's author in and publishes its frames; returns the merged stats.
pub(crate) async fn run_publishers(
    t: &Target,
    feeds: Vec<(Identity, Vec<String>)>,
    in_flight: usize,
    pace: Option<Duration>,
    stamps: Option<Arc<Stamps>>,
) -> Res<(PubStats, f64)> {
    let node = t.node_key();
    let mut sessions = Vec::with_capacity(feeds.len());
    for (id, frames) in feeds {
        sessions.push((login(&t.url, node, &id).await?, frames));
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    let n = sessions.len().max(1) as f64;
    for (i, (ws, frames)) in sessions.into_iter().enumerate() {
        let stamps = stamps.clone().map(|s| (s, i));
        // Paced publishers start spread over one period, not all at once.
        let pace = pace.map(|every| (start + every.mul_f64(i as f64 / n), every));
        tasks.push(tokio::spawn(publish(ws, frames, in_flight, pace, stamps, 1)));
    }
    let mut all = PubStats::default();
    let mut last = start;
    for task in tasks {
        let s = task.await.map_err(|e| e.to_string())??;
        all.accepted += s.accepted;
        all.duplicates += s.duplicates;
        for (k, v) in s.errors {
            *all.errors.entry(k).or_default() += v;
        }
        all.ack_us.extend(s.ack_us);
        all.max_gap_us = all.max_gap_us.max(s.max_gap_us);
        if let Some(l) = s.last_ack {
            last = last.max(l);
        }
    }
    Ok((all, last.duration_since(start).as_secs_f64()))
}

pub(crate) async fn run_ingest(cli: &Cli, t: &Target, ceiling: &Ceiling, ticks: f64) -> Res<IngestResult> {
    let mut admin = Admin::open(&t.url, &t.admin).await?;
    let users = admin.create_users(cli.publishers, "lp").await?;
    eprintln!("  signing {} x {} entries ...", cli.publishers, cli.entries);
    let feeds = sign_feeds(&users, cli.entries);
    let stamps = Arc::new(Stamps::new(&feeds));
    // Optional subscribers following every publisher.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut listeners = Vec::new();
    if cli.subscribers > 0 {
        let sub_user = admin.create_users(1, "ls").await?.remove(0);
        let who = Identity::new(sub_user);
        let authors: Vec<PublicKey> = users.iter().map(SecretKey::public).collect();
        for _ in 0..cli.subscribers {
            let mut ws = login(&t.url, t.node_key(), &who).await?;
            subscribe(&mut ws, authors.clone()).await?;
            listeners.push(tokio::spawn(listen(ws, stamps.clone(), stop_rx.clone())));
        }
    }
    let feeds: Vec<(Identity, Vec<String>)> = feeds.into_iter().map(|f| (Identity::new(f.author), f.frames)).collect();
    let meter = CpuMeter::start(t.pid, ticks);
    let (stats, secs) = run_publishers(t, feeds, cli.in_flight, None, Some(stamps.clone())).await?;
    let cpu = meter.stop();
    let delivery = if listeners.is_empty() {
        None
    } else {
        stamps.await_delivered(stats.accepted * cli.subscribers as u64, Duration::from_secs(60)).await;
        let _ = stop_tx.send(true);
        let mut lat = Vec::new();
        for l in listeners {
            lat.extend(l.await.map_err(|e| e.to_string())?.delivery_us);
        }
        Some(Latency::of(lat))
    };
    let rate = stats.accepted as f64 / secs;
    Ok(IngestResult {
        publishers: cli.publishers,
        entries_per_publisher: cli.entries,
        in_flight: cli.in_flight,
        subscribers: cli.subscribers,
        accepted: stats.accepted,
        duplicates: stats.duplicates,
        errors: stats.errors,
        accepted_per_second: rate,
        ack: Latency::of(stats.ack_us),
        max_ack_gap_ms: f64::from(stats.max_gap_us) / 1000.0,
        cpu,
        ratio_to_verify_all_cores: rate / ceiling.verify_all_cores,
        ratio_to_verify_one_core: rate / ceiling.verify_per_core,
        cpu_efficiency: cpu
            .node_cpu_s
            .filter(|s| *s > 0.0)
            .map(|s| ceiling.verify_us / 1e6 * stats.accepted as f64 / s),
        delivery,
    })
}
