//! `kith-soak`: a bounded soak run against a Kith node (issue 7).
//!
//! It drives the same mix of valid and hostile traffic at a node in repeated phases of a fixed
//! length and, after each phase, stops every client, waits for the node to settle and reads its
//! resident memory and open file descriptors from /proc. A node that leaks a descriptor per
//! refused connection, or memory per dropped subscription, shows it as a count or a size that
//! climbs phase after phase; a node that does not leak shows the same figures every phase.
//!
//! Traffic classes (each from its own loopback source address, 127.0.0.N, so that the
//! per-address limit of one class is not spent by another):
//! - valid: V clients that log in, keep a live subscription on every valid author and run a
//!   seeded mix of publish, get, heads, replicate, subscribe/read/unsubscribe, account,
//!   node_info, user creation and removal (with the child logged in or not) and key
//!   replacement; one more valid client publishes large entries at a fixed rate so that the
//!   store prunes all the time and the slow consumers below have something to choke on.
//! - handshake flood: `max_pending_handshakes` + 16 connections that never say `hello`.
//! - connection flood: `max_connections_per_address` logged-in connections from one address,
//!   then 8 more.
//! - request flood: bursts of 3 × `max_requests_per_second` requests on one connection.
//! - slow consumers: subscribe to the large entries with a full backfill and read nothing.
//! - malformed frames: binary, invalid UTF-8, truncated JSON, nesting deeper than 64, frames
//!   over 65536 bytes, unknown types, missing ids, duplicate members and more.
//! - dropped connections: TCP close (FIN or RST) without a WebSocket close, in the middle of
//!   the handshake and right after a request whose answer is large.
//! - idle connections that run into the handshake timeout, silent or after `hello`.
//!
//! Attack phases (issue 12), after the mix phases (`--phases 0`: only these): one per attack of
//! `--attacks` (close, preupgrade, idle, notes, subscriptions; see [`Attack`]), `--attack-rounds`
//! times each, from its own address beside the valid clients. Each samples the node before, at
//! its peak (every 50 ms), when the attack's traffic stops and when the fds are back; it fails when
//! the fds are not back at the baseline by the attack's deadline, when RSS after a later round
//! passes round 1's by more than the tolerance, on a valid failure, or when the node does not
//! answer the attack as the spec says. The table is what spec 12 §11.1 reports.
//!
//! The classes that spend the node-wide pending-handshake count run one after another in one
//! task, and every other login waits while a flood is on (a read/write gate), so that the
//! refusal counts are exact and repeat phase after phase.
//!
//! Verdict (printed, and the exit code): after every phase the node's open descriptors are back
//! exactly at the baseline; its RSS after phase k >= 2 is within a noise threshold of phase 2's
//! and the least-squares slope of RSS over phases 2..n is small; every valid request got the
//! answer the spec gives it. The first phase is a warm-up: it allocates the node's caches, its
//! store reaches the pruning steady state and the allocator's arenas grow to their working size;
//! the baseline is taken after it.
//!
//! Not part of the test suite: `cargo run --release -p kith-bench --bin kith-soak`. The
//! verdict's rules are (`judge`, on synthetic and recorded series):
//! `cargo test -p kith-bench --bin kith-soak`.
//!
//! Modules: `cli` (flags), `conn` (the websocket client), `target` and `setup` (the node, its
//! users, the shared context and schedule), `valid` and `hostile` (the classes of a mix phase),
//! `attack` (one module per attack), `phase` (one mix phase), `sample` (memory and fds from
//! /proc), `tally` (counting, the seeded mix), `verdict` (the rules, with their unit tests),
//! `report` (tables and JSON).

mod attack;
mod cli;
mod conn;
mod ctx;
mod hostile;
mod phase;
mod report;
mod sample;
mod setup;
mod tally;
mod target;
mod valid;
mod verdict;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kith_bench::proc::disk_bytes;
use kith_conformance::host::{date_utc, machine};

use crate::attack::{run_attack, AttackResult};
use crate::cli::{Cli, Command, SoakArgs, MEASURE_LIVE_SET};
use crate::phase::{run_phase, PhaseFigures, PhaseResult};
use crate::report::{print_attacks, print_phases, Report};
use crate::sample::{mib, proc_sample, settle, ProcSample};
use crate::setup::setup;
use crate::target::{launch, Target};
use crate::verdict::{judge, Rules};

type Res<T> = Result<T, String>;

async fn run(args: SoakArgs) -> Res<bool> {
    let target = launch(&args).await?;
    let result = soak(&args, &target).await;
    if let Some(n) = target.launched {
        n.stop().await;
    }
    result
}

async fn soak(args: &SoakArgs, t: &Target) -> Res<bool> {
    let pid = t.pid;
    // The node before any client: its fds at startup.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let startup = pid.and_then(proc_sample);
    let (ctx, mut state) = setup(args, t).await?;
    let l = &ctx.limits;
    println!("kith-soak: {} on {}; date {}", t.url, machine(), date_utc());
    println!(
        "node limits: max_connections_per_address {}, max_pending_handshakes {}, max_requests_per_second {}, \
         max_queued_bytes {}, max_subscriptions {}, handshake_timeout_ms {}, storage_bytes {}, max_backfill {}",
        l.max_connections_per_address,
        l.max_pending_handshakes,
        l.max_requests_per_second,
        l.max_queued_bytes,
        l.max_subscriptions,
        l.handshake_timeout_ms,
        l.storage_bytes,
        l.max_backfill
    );
    println!("limit flags given at launch: {}", t.limit_flags);
    if args.url.is_none() {
        let env = if args.node_env.is_empty() { MEASURE_LIVE_SET.to_owned() } else { args.node_env.join(" ") };
        println!("node environment: {env}");
    }
    println!(
        "mix (seed {}): {} valid clients x {} ops/s, heavy publisher {} x 15 KB/s, {} slow consumers (hold {} s), \
         request flood, malformed frames, dropped connections, idle connections, handshake and connection floods; \
         {} phases x {} s",
        args.seed,
        args.valid_clients,
        args.valid_rate,
        args.heavy_rate,
        args.slow_consumers,
        args.slow_hold_secs,
        args.phases,
        args.phase_secs
    );
    if let Some(s) = startup {
        println!("node at startup: RSS {:.1} MiB, HWM {:.1} MiB, {} open fds", mib(s.rss_kib), mib(s.hwm_kib), s.fds);
    }
    let mut results: Vec<PhaseResult> = Vec::new();
    let mut baseline_fds: Option<usize> = None;
    let settle_limit = Duration::from_secs(args.settle_secs);
    for phase in 1..=args.phases {
        eprintln!("phase {phase}/{} ...", args.phases);
        let (next, mut r) = run_phase(&ctx, state, phase).await;
        state = next;
        if let Some(p) = pid {
            let target = if phase == 1 { startup.map(|s| s.fds) } else { baseline_fds };
            r.settle_secs = settle(p, target, settle_limit).await;
            // Let the writer finish what the last requests queued before reading memory.
            tokio::time::sleep(Duration::from_millis(500)).await;
            r.node = proc_sample(p);
            r.disk_bytes = t.data_dir.as_deref().map(disk_bytes);
            if phase == 1 {
                baseline_fds = r.node.map(|s| s.fds);
            }
        }
        eprintln!(
            "phase {phase}: {:.1} s, valid ops {}, valid failures {}, RSS {} MiB, fds {}",
            r.secs,
            r.sum("valid op|"),
            r.sum("valid failure|"),
            r.node.map_or("n/a".into(), |s| format!("{:.1}", mib(s.rss_kib))),
            r.node.map_or("n/a".into(), |s| s.fds.to_string())
        );
        let late: Vec<String> = r
            .class_secs
            .iter()
            .filter(|(_, t)| **t > args.phase_secs as f64 + 1.0)
            .map(|(k, t)| format!("{k} {t:.1} s"))
            .collect();
        if !late.is_empty() {
            println!("phase {phase} ran past its {} s schedule: {}", args.phase_secs, late.join(", "));
        }
        results.push(r);
    }

    let mut attacks: Vec<AttackResult> = Vec::new();
    if !args.no_attacks {
        let mut order = args.attacks.clone();
        order.dedup();
        // Each attack's rounds one after another, so that round 1 is its own warm-up.
        let rounds = order.iter().flat_map(|a| (1..=args.attack_rounds.max(1)).map(move |round| (*a, round)));
        for (attack, round) in rounds {
            eprintln!("attack phase: {} round {round} ...", attack.name());
            let (next, r) = run_attack(&ctx, state, (attack, round), pid, &t.admin).await;
            state = next;
            let fmt = |s: Option<ProcSample>| {
                s.map_or("n/a".to_owned(), |s| format!("{} fds {:.1} MiB", s.fds, mib(s.rss_kib)))
            };
            eprintln!(
                "attack phase {}: {:.1} s; before {}, peak {}, end {}, after {} ({:.1} s after its end)",
                attack.name(),
                r.attack_secs,
                fmt(r.before),
                fmt(r.peak),
                fmt(r.end),
                fmt(r.after),
                r.after_secs
            );
            attacks.push(r);
        }
    }

    // The verdict.
    let figures: Vec<PhaseFigures> = results.iter().map(PhaseResult::figures).collect();
    let judged = judge(&figures, startup, pid.is_some(), &Rules::from(args));
    let mut pass = judged.pass();
    let (row_verdicts, verdict) = (judged.rows, judged.lines);

    // The tables.
    print_phases(&results, &row_verdicts);
    println!();
    for v in &verdict {
        println!("{v}");
    }
    if !attacks.is_empty() {
        pass &= print_attacks(&attacks, args, &ctx.limits);
    }
    println!("verdict: {}", if pass { "PASS" } else { "FAIL" });
    if let Some(path) = &args.json {
        let report = Report {
            date_utc: date_utc(),
            machine: machine(),
            url: t.url.clone(),
            node_limits: ctx.limits.clone(),
            limit_flags: t.limit_flags.clone(),
            startup,
            baseline_fds,
            phases: results,
            attacks,
            pass,
            verdict,
        };
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(pass)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kith-soak: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::Serve(node)) => match rt.block_on(kith_node::serve(node)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kith-soak serve: {e}");
                ExitCode::from(2)
            }
        },
        None => match rt.block_on(run(cli.soak)) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("kith-soak: {e}");
                ExitCode::from(2)
            }
        },
    }
}
