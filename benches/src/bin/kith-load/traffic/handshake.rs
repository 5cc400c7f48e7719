//! Scenario `handshake`: N connections each run the handshake and close.

use std::sync::Arc;
use std::time::Instant;

use kith_proto::session::client::ClientSession;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::ceiling::Ceiling;
use crate::cli::Cli;
use crate::measure::{micros_since, CpuMeter, CpuUse, Latency};
use crate::target::Target;
use crate::wire::{connect, finish_login, Identity};
use crate::Res;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct HandshakeResult {
    pub(crate) connections: usize,
    pub(crate) concurrency: usize,
    pub(crate) failures: usize,
    pub(crate) per_second: f64,
    pub(crate) cpu: CpuUse,
    pub(crate) per_node_cpu_second: Option<f64>,
    /// per_node_cpu_second × the server side's curve cost: the target is at least 0.8.
    pub(crate) ratio_to_curve: Option<f64>,
    pub(crate) latency: Latency,
}

pub(crate) async fn run_handshakes(
    cli: &Cli,
    t: &Target,
    ceiling: &Ceiling,
    ticks: f64,
    who: &Identity,
) -> Res<HandshakeResult> {
    let node = t.node_key();
    let prepared: Vec<(ClientSession, String)> = (0..cli.connections).map(|_| who.start(node)).collect::<Res<_>>()?;
    let sem = Arc::new(Semaphore::new(cli.handshake_concurrency.max(1)));
    let meter = CpuMeter::start(t.pid, ticks);
    let mut tasks = Vec::with_capacity(prepared.len());
    for (session, hello) in prepared {
        let sem = sem.clone();
        let url = t.url.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.map_err(|e| e.to_string())?;
            let start = Instant::now();
            let mut ws = connect(&url).await?;
            finish_login(&mut ws, session, hello).await?;
            let us = micros_since(start);
            ws.close().await;
            Ok::<u32, String>(us)
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    let mut failures = 0;
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(us)) => lat.push(us),
            Ok(Err(e)) => {
                failures += 1;
                first_error.get_or_insert(e);
            }
            Err(e) => {
                failures += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let cpu = meter.stop();
    if let Some(e) = first_error {
        eprintln!("  handshake failures: {failures}, first: {e}");
    }
    let done = lat.len() as f64;
    let per_node_cpu_second = cpu.node_cpu_s.filter(|s| *s > 0.0).map(|s| done / s);
    Ok(HandshakeResult {
        connections: cli.connections,
        concurrency: cli.handshake_concurrency,
        failures,
        per_second: done / cpu.wall_s,
        cpu,
        per_node_cpu_second,
        ratio_to_curve: per_node_cpu_second.map(|h| h * ceiling.hs_curve_us / 1e6),
        latency: Latency::of(lat),
    })
}
