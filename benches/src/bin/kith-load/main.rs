//! `kith-load`: a load generator for Kith nodes.
//!
//! It measures a node against the physical floor of the protocol, one strict Ed25519
//! verification per entry: in the same run it measures this machine's strict-verify rate and
//! prints every throughput as a ratio to it, because an absolute figure means nothing from one
//! machine to the next.
//!
//! Scenarios (`--scenario`, repeatable; default `handshake,ingest,deliver`):
//! - `handshake`: N connections each run the handshake and close; handshakes per second and per
//!   node CPU-second, against the server side's curve cost measured here.
//! - `ingest`: M publishers, each pipelining pre-signed entries of its own feed; accepted
//!   entries per second, publish-acknowledgement latency, node CPU efficiency.
//! - `deliver`: K subscribers each following F of P publishing authors while the publishers
//!   publish at a fixed rate (by default half the peak just measured); delivery latency.
//! - `prune`: a node with a small storage budget takes many times its budget; ack latency and
//!   the longest gap between acks while it prunes, and the store's size on disk.
//! - `memory`: a node with a large budget is filled to 10^4, 10^5 (, 10^6) stored entries; its
//!   resident memory at each.
//!
//! By default it launches the release `kith-node` next to its own executable with a fresh data
//! directory (`--node-bin` to choose another), optionally pinned (`--pin`: node on core 0, the
//! generator on core 1; `--compare-pinning`: both runs). `--url` drives a node that is already
//! running (then `--peer-seed-file` gives the admin key, and `--node-pid` lets it read the
//! node's CPU time and memory from /proc).
//!
//! Modules: `cli` (flags), `wire` (the websocket client: connect, handshake, the pipelined
//! publisher, the listener), `feeds` (pre-signed entries), `target` (the node: launched or by
//! URL), `traffic` (one module per scenario), `ceiling` and `measure` (the verify ceiling, CPU,
//! memory, latency), `report` (printed lines and JSON).

mod ceiling;
mod cli;
mod feeds;
mod measure;
mod report;
mod target;
mod traffic;
mod wire;

use std::process::ExitCode;

use clap::Parser;
use kith_bench::proc::clock_ticks;
use kith_conformance::host::{date_utc, machine};

use crate::ceiling::{measure_ceiling, Ceiling};
use crate::cli::{Cli, Scenario};
use crate::measure::proc_sample;
use crate::report::{
    label, loadavg, print_deliver, print_handshake, print_ingest, print_memory, print_prune, Pass, Report,
};
use crate::target::{cpus_allowed, launch, pin_self};
use crate::traffic::deliver::run_deliver;
use crate::traffic::handshake::run_handshakes;
use crate::traffic::ingest::run_ingest;
use crate::traffic::memory::run_memory;
use crate::traffic::prune::run_prune;
use crate::wire::{Admin, Identity};

type Res<T> = Result<T, String>;

async fn run_pass(cli: &Cli, ceiling: &Ceiling, ticks: f64, pinned: bool) -> Res<Pass> {
    let mut pass = Pass { pinned, ..Pass::default() };
    if pinned {
        pin_self("1")?;
    }
    let shared = cli.scenario.iter().any(|s| matches!(s, Scenario::Handshake | Scenario::Ingest | Scenario::Deliver));
    if shared {
        let t = launch(cli, cli.storage_bytes, pinned).await?;
        if let Some(pid) = t.pid {
            eprintln!(
                "  node pid {pid} may run on cpus {}, the generator on {}",
                cpus_allowed(Some(pid)),
                cpus_allowed(None)
            );
        }
        let result = async {
            for s in &cli.scenario {
                match s {
                    Scenario::Handshake => {
                        eprintln!("[{}] handshake: {} connections ...", label(pinned), cli.connections);
                        let mut admin = Admin::open(&t.url, &t.admin).await?;
                        let who = Identity::new(admin.create_users(1, "lh").await?.remove(0));
                        let r = run_handshakes(cli, &t, ceiling, ticks, &who).await?;
                        print_handshake(&r);
                        pass.handshake = Some(r);
                    }
                    Scenario::Ingest => {
                        eprintln!(
                            "[{}] ingest: {} publishers x {} entries ...",
                            label(pinned),
                            cli.publishers,
                            cli.entries
                        );
                        let r = run_ingest(cli, &t, ceiling, ticks).await?;
                        print_ingest(&r);
                        pass.ingest = Some(r);
                    }
                    Scenario::Deliver => {
                        let rate = cli
                            .deliver_rate
                            .or_else(|| pass.ingest.as_ref().map(|i| i.accepted_per_second / 2.0))
                            .unwrap_or(500.0);
                        eprintln!(
                            "[{}] deliver: {} subscribers x {} of {} authors at {rate:.0} entries/s ...",
                            label(pinned),
                            cli.deliver_subscribers,
                            cli.follow,
                            cli.deliver_publishers
                        );
                        let r = run_deliver(cli, &t, ticks, rate).await?;
                        print_deliver(&r);
                        pass.deliver = Some(r);
                    }
                    Scenario::Prune | Scenario::Memory => {}
                }
            }
            Ok::<(), String>(())
        }
        .await;
        pass.node_peak_rss_mib = t.pid.and_then(|p| proc_sample(Some(p), ticks)).map(|s| s.hwm_kib as f64 / 1024.0);
        t.stop().await;
        result?;
    }
    if cli.scenario.contains(&Scenario::Prune) {
        eprintln!("[{}] prune: budget {} bytes, {} entries ...", label(pinned), cli.prune_budget, cli.prune_entries);
        let r = run_prune(cli, ticks, pinned).await?;
        print_prune(&r);
        pass.prune = Some(r);
    }
    if cli.scenario.contains(&Scenario::Memory) {
        eprintln!("[{}] memory: checkpoints {:?} ...", label(pinned), cli.memory_checkpoints);
        let r = run_memory(cli, ticks, pinned).await?;
        print_memory(&r);
        pass.memory = Some(r);
    }
    if pinned {
        let all = format!("0-{}", ceiling.cores.saturating_sub(1));
        pin_self(&all)?;
    }
    Ok(pass)
}

async fn run(cli: Cli) -> Res<()> {
    let ticks = clock_ticks();
    eprintln!("measuring this machine's strict-verify ceiling ...");
    let ceiling = measure_ceiling(cli.hs_curve_us);
    println!("machine: {}; date {}; load average {}", machine(), date_utc(), loadavg());
    println!(
        "verify ceiling: strict verify {:.1} us = {:.0}/s per core, {:.0}/s on all {} cores; handshake server side {:.0} us (curve work {:.0} us)",
        ceiling.verify_us, ceiling.verify_per_core, ceiling.verify_all_cores, ceiling.cores, ceiling.hs_server_us, ceiling.hs_curve_us
    );
    let modes: Vec<bool> = if cli.compare_pinning { vec![false, true] } else { vec![cli.pin] };
    if cli.url.is_some() && modes.contains(&true) {
        return Err("--pin needs a launched node (not --url)".into());
    }
    let mut passes = Vec::new();
    for pinned in modes {
        println!("--- {} ---", label(pinned));
        let pass = run_pass(&cli, &ceiling, ticks, pinned).await?;
        if let Some(m) = pass.node_peak_rss_mib {
            println!("  node peak RSS: {m:.1} MiB");
        }
        passes.push(pass);
    }
    println!("load average at the end: {}", loadavg());
    let report = Report { date_utc: date_utc(), machine: machine(), ceiling, passes };
    if let Some(path) = &cli.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kith-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kith-load: {e}");
            ExitCode::FAILURE
        }
    }
}
