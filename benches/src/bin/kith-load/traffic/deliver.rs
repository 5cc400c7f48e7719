//! Scenario `deliver`: K subscribers each following F of P authors who publish at a fixed rate.

use std::sync::Arc;
use std::time::Duration;

use kith_proto::{PublicKey, SecretKey};
use serde::Serialize;
use tokio::sync::watch;

use crate::cli::Cli;
use crate::feeds::sign_feeds;
use crate::measure::{CpuMeter, CpuUse, Latency, Stamps};
use crate::target::Target;
use crate::traffic::ingest::run_publishers;
use crate::wire::{listen, login, subscribe, Admin, Identity};
use crate::Res;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeliverResult {
    pub(crate) publishers: usize,
    pub(crate) subscribers: usize,
    pub(crate) follow: usize,
    pub(crate) target_rate: f64,
    pub(crate) accepted_per_second: f64,
    pub(crate) ack: Latency,
    pub(crate) delivered: u64,
    pub(crate) expected: u64,
    pub(crate) delivery: Latency,
    pub(crate) closed_subscribers: usize,
    pub(crate) cpu: CpuUse,
}

pub(crate) async fn run_deliver(cli: &Cli, t: &Target, ticks: f64, rate: f64) -> Res<DeliverResult> {
    let p = cli.deliver_publishers.max(1);
    let follow = cli.follow.min(p).max(1);
    let per_pub = ((rate / p as f64) * cli.duration).ceil().max(1.0) as usize;
    let mut admin = Admin::open(&t.url, &t.admin).await?;
    let users = admin.create_users(p, "dp").await?;
    let sub_user = admin.create_users(1, "ds").await?.remove(0);
    eprintln!("  signing {p} x {per_pub} entries ...");
    let feeds = sign_feeds(&users, per_pub);
    let stamps = Arc::new(Stamps::new(&feeds));
    let who = Identity::new(sub_user);
    let authors: Vec<PublicKey> = users.iter().map(SecretKey::public).collect();
    eprintln!("  opening {} subscribers ...", cli.deliver_subscribers);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut listeners = Vec::new();
    let mut followers = vec![0u64; p];
    let stride = (p / follow).max(1);
    for j in 0..cli.deliver_subscribers {
        // Subscriber j follows authors j, j + stride, j + 2 stride, ...: every author gets the
        // same number of followers.
        let picks: Vec<usize> = (0..follow).map(|k| (j + k * stride) % p).collect();
        for &a in &picks {
            followers[a] += 1;
        }
        let mut ws = login(&t.url, t.node_key(), &who).await?;
        subscribe(&mut ws, picks.iter().map(|&a| authors[a]).collect()).await?;
        listeners.push(tokio::spawn(listen(ws, stamps.clone(), stop_rx.clone())));
    }
    let expected: u64 = feeds.iter().enumerate().map(|(a, f)| f.frames.len() as u64 * followers[a]).sum();
    let every = Duration::from_secs_f64(p as f64 / rate);
    let feeds: Vec<(Identity, Vec<String>)> = feeds.into_iter().map(|f| (Identity::new(f.author), f.frames)).collect();
    let meter = CpuMeter::start(t.pid, ticks);
    let (stats, secs) = run_publishers(t, feeds, cli.in_flight, Some(every), Some(stamps.clone())).await?;
    // Every event still on its way counts; a node that falls behind shows it in the latency.
    stamps.await_delivered(expected, Duration::from_secs(60)).await;
    let cpu = meter.stop();
    let _ = stop_tx.send(true);
    let mut lat = Vec::new();
    let mut delivered = 0;
    let mut closed = 0;
    for l in listeners {
        let s = l.await.map_err(|e| e.to_string())?;
        delivered += s.events;
        lat.extend(s.delivery_us);
        if s.closed.is_some() {
            closed += 1;
        }
    }
    Ok(DeliverResult {
        publishers: p,
        subscribers: cli.deliver_subscribers,
        follow,
        target_rate: rate,
        accepted_per_second: stats.accepted as f64 / secs,
        ack: Latency::of(stats.ack_us),
        delivered,
        expected,
        delivery: Latency::of(lat),
        closed_subscribers: closed,
        cpu,
    })
}
