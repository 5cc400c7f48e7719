//! Scenario `memory`: a node with a large budget filled to growing numbers of stored entries; its
//! resident memory at each.

use std::time::Duration;

use kith_proto::Entry;
use serde::Serialize;

use crate::cli::Cli;
use crate::feeds::sign_feed;
use crate::measure::{proc_sample, Latency};
use crate::target::launch;
use crate::traffic::ingest::run_publishers;
use crate::wire::{Admin, Identity};
use crate::Res;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct MemoryPoint {
    pub(crate) stored_entries: u64,
    pub(crate) node_rss_mib: Option<f64>,
    pub(crate) node_peak_rss_mib: Option<f64>,
    pub(crate) disk_bytes: Option<u64>,
    pub(crate) accepted_per_second: f64,
    pub(crate) ack: Latency,
}

pub(crate) async fn run_memory(cli: &Cli, ticks: f64, pinned: bool) -> Res<Vec<MemoryPoint>> {
    let mut checkpoints = cli.memory_checkpoints.clone();
    checkpoints.sort_unstable();
    let max = checkpoints.last().copied().unwrap_or(0);
    // Budget: room for every entry (about 600 bytes each) with a margin, so nothing is pruned.
    let t = launch(cli, (max * 2048).max(64 << 20), pinned).await?;
    let result = async {
        let publishers = 4usize;
        let mut admin = Admin::open(&t.url, &t.admin).await?;
        let users = admin.create_users(publishers, "mp").await?;
        let ids: Vec<Identity> = users.iter().map(|u| Identity::new(u.clone())).collect();
        let mut prevs: Vec<Option<Entry>> = vec![None; publishers];
        let mut next_seq = vec![1u64; publishers];
        let mut stored = 0u64;
        let mut points = Vec::new();
        // Chunks bound the generator's memory for pre-signed frames.
        const CHUNK: u64 = 100_000;
        for &target in &checkpoints {
            let mut acks = Vec::new();
            let mut secs = 0.0;
            let mut stage_accepted = 0;
            while stored < target {
                let n = (target - stored).min(CHUNK);
                let per = n.div_ceil(publishers as u64) as usize;
                eprintln!("  memory: signing {} entries (stored so far {stored}) ...", per * publishers);
                let signed: Vec<(Vec<String>, Option<Entry>)> = std::thread::scope(|s| {
                    let hs: Vec<_> = (0..publishers)
                        .map(|i| {
                            let user = &users[i];
                            let prev = prevs[i].clone();
                            let first = next_seq[i];
                            s.spawn(move || {
                                let (frames, _, last) = sign_feed(user, i, prev.as_ref(), first, per);
                                (frames, last)
                            })
                        })
                        .collect();
                    hs.into_iter().map(|h| h.join().unwrap_or_default()).collect()
                });
                let mut feeds = Vec::new();
                for (i, (frames, last)) in signed.into_iter().enumerate() {
                    next_seq[i] += frames.len() as u64;
                    prevs[i] = last;
                    feeds.push((ids[i].clone(), frames));
                }
                let (s, dt) = run_publishers(&t, feeds, cli.in_flight, None, None).await?;
                if !s.errors.is_empty() {
                    return Err(format!("publishes refused while filling: {:?}", s.errors));
                }
                stored += s.accepted;
                stage_accepted += s.accepted;
                secs += dt;
                acks.extend(s.ack_us);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let sample = t.pid.and_then(|p| proc_sample(Some(p), ticks));
            points.push(MemoryPoint {
                stored_entries: stored,
                node_rss_mib: sample.map(|s| s.rss_kib as f64 / 1024.0),
                node_peak_rss_mib: sample.map(|s| s.hwm_kib as f64 / 1024.0),
                disk_bytes: t.disk_bytes(),
                accepted_per_second: stage_accepted as f64 / secs.max(1e-9),
                ack: Latency::of(acks),
            });
            eprintln!("  memory: {stored} stored, node RSS {:?} MiB", points.last().and_then(|p| p.node_rss_mib));
        }
        Ok(points)
    }
    .await;
    t.stop().await;
    result
}
