//! The report: the tables printed after a run and its JSON.

use std::collections::BTreeMap;

use kith_proto::frame::{CLOSE_DEADLINE_MS, UPGRADE_DEADLINE_MS};
use kith_proto::node_info::Limits;
use serde::Serialize;

use crate::attack::common::ATTACK_SLACK;
use crate::attack::AttackResult;
use crate::cli::SoakArgs;
use crate::phase::PhaseResult;
use crate::sample::{mib, ProcSample};
use crate::verdict::judge_attack;

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) date_utc: String,
    pub(crate) machine: String,
    pub(crate) url: String,
    pub(crate) node_limits: Limits,
    pub(crate) limit_flags: String,
    pub(crate) startup: Option<ProcSample>,
    pub(crate) baseline_fds: Option<usize>,
    pub(crate) phases: Vec<PhaseResult>,
    pub(crate) attacks: Vec<AttackResult>,
    pub(crate) pass: bool,
    pub(crate) verdict: Vec<String>,
}

/// Tally keys that count what a class sent rather than what came of it: left out of the
/// "hostile actions" column, which counts one outcome per connection or per answered message.
pub(crate) const BOOKKEEPING: [&str; 5] =
    ["|connections", "|bursts", "|requests sent", "|subscribed, read nothing", "(not compared)"];

pub(crate) fn print_matrix(title: &str, rows: &BTreeMap<String, Vec<u64>>, phases: usize) {
    println!("\n{title}");
    let width = rows.keys().map(|k| k.chars().count()).max().unwrap_or(10).max(10);
    let head: String = (1..=phases).map(|p| format!(" | {:>6}", format!("ph {p}"))).collect();
    println!("| {:<width$}{head} |", "");
    let rule: String = (1..=phases).map(|_| " | -----:").collect();
    println!("| {}{rule} |", "-".repeat(width));
    for (k, v) in rows {
        let cells: String = v.iter().map(|n| format!(" | {n:>6}")).collect();
        println!("| {k:<width$}{cells} |");
    }
}

pub(crate) fn matrix(
    results: &[PhaseResult],
    keys: impl Fn(&PhaseResult) -> BTreeMap<String, u64>,
) -> BTreeMap<String, Vec<u64>> {
    let mut rows: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (i, r) in results.iter().enumerate() {
        for (k, v) in keys(r) {
            let row = rows.entry(k).or_insert_with(|| vec![0; results.len()]);
            if let Some(cell) = row.get_mut(i) {
                *cell = v;
            }
        }
    }
    rows
}

/// Prints the attack phases' table and outcomes; returns whether every phase passed.
pub(crate) fn print_attacks(results: &[AttackResult], args: &SoakArgs, limits: &Limits) -> bool {
    let fmt = |s: Option<ProcSample>| s.map_or("n/a".to_owned(), |s| format!("{} / {:.1}", s.fds, mib(s.rss_kib)));
    println!("\nAttack phases (one address each, valid traffic beside; fds / RSS MiB):");
    println!("| attack | round | attack s | before | peak | end | after | peak - before | held | released s (allowed) | valid ops | valid fail | verdict |");
    println!("| ------ | ----: | -------: | -----: | ---: | --: | ----: | ------------: | ---- | -----------------: | --------: | ---------: | ------- |");
    let mut pass = true;
    for r in results {
        let first = results.iter().find(|f| f.attack == r.attack && f.round == 1);
        let bad = judge_attack(r, first, args);
        pass &= bad.is_empty();
        let delta = match (r.before, r.peak) {
            (Some(b), Some(p)) => format!("+{} / +{:.1}", p.fds.saturating_sub(b.fds), mib(p.rss_kib) - mib(b.rss_kib)),
            _ => "n/a".into(),
        };
        let valid_ops: u64 = r.counts.iter().filter(|(k, _)| k.starts_with("valid op|")).map(|(_, v)| v).sum();
        let valid_fail: u64 = r.counts.iter().filter(|(k, _)| k.starts_with("valid failure|")).map(|(_, v)| v).sum();
        println!(
            "| {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {:.1} ({:.1}) | {} | {} | {} |",
            r.attack.name(),
            r.round,
            r.attack_secs,
            fmt(r.before),
            fmt(r.peak),
            fmt(r.end),
            fmt(r.after),
            delta,
            r.attack.held(),
            r.after_secs,
            r.allowed_secs,
            valid_ops,
            valid_fail,
            if bad.is_empty() { "ok".to_owned() } else { bad.join("; ") }
        );
    }
    println!("\nAttack outcomes:");
    for r in results {
        for (k, v) in &r.counts {
            if !k.starts_with("valid op|") && !k.starts_with("valid side|") && k != "valid events received" {
                println!("  {:<13} {} {v:>7}  {k}", r.attack.name(), r.round);
            }
        }
    }
    println!(
        "attack verdict rules: by the deadline (close: handshake_timeout_ms {} + {} ms; preupgrade {} ms; idle {} ms; notes, \
         subscriptions: {} ms after the soak ends them) + {:.1} s, measured from the end of the attack's traffic or of the valid clients when later (\"allowed\"), \
         fds at most before + {} and, 0.5 s later, RSS at most round 1's after + max({} MiB, {} %) (round 1 is the warm-up); no valid failure; every attack outcome as the spec says",
        limits.handshake_timeout_ms,
        CLOSE_DEADLINE_MS,
        UPGRADE_DEADLINE_MS,
        limits.handshake_timeout_ms,
        CLOSE_DEADLINE_MS,
        ATTACK_SLACK.as_secs_f64(),
        args.attack_fd_slack,
        args.attack_rss_mib,
        args.rss_noise_pct
    );
    pass
}

/// Prints the table of the mix phases (one row each, with its verdict) and the matrices of
/// outcomes by code, by hostile class and by valid operation.
pub(crate) fn print_phases(results: &[PhaseResult], row_verdicts: &[String]) {
    println!(
        "\n| phase | secs | valid ops | valid fail | events | hostile actions | refusals+closes | settle s | RSS MiB | anon MiB | HWM MiB | disk MiB | fds | verdict |"
    );
    println!("| ----: | ---: | --------: | ---------: | -----: | --------------: | --------------: | -------: | ------: | -------: | ------: | -------: | --: | ------- |");
    for (r, v) in results.iter().zip(row_verdicts) {
        let hostile: u64 = r
            .counts
            .iter()
            .filter(|(k, _)| !k.starts_with("valid") && !BOOKKEEPING.iter().any(|b| k.ends_with(b)))
            .map(|(_, v)| v)
            .sum();
        let codes: u64 = r.by_code().values().sum();
        println!(
            "| {} | {:.1} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} |",
            r.phase,
            r.secs,
            r.sum("valid op|"),
            r.sum("valid failure|"),
            r.sum("valid events"),
            hostile,
            codes,
            r.settle_secs,
            r.node.map_or("n/a".into(), |s| format!("{:.1}", mib(s.rss_kib))),
            r.node.map_or("n/a".into(), |s| format!("{:.1}", mib(s.anon_kib))),
            r.node.map_or("n/a".into(), |s| format!("{:.1}", mib(s.hwm_kib))),
            r.disk_bytes.map_or("n/a".into(), |b| format!("{:.1}", b as f64 / 1048576.0)),
            r.node.map_or("n/a".into(), |s| s.fds.to_string()),
            v
        );
    }
    let phases = results.len();
    print_matrix(
        "Refusals and closes by code (hostile traffic and valid side effects):",
        &matrix(results, PhaseResult::by_code),
        phases,
    );
    print_matrix(
        "Hostile traffic by class and outcome:",
        &matrix(results, |r| {
            r.counts.iter().filter(|(k, _)| !k.starts_with("valid")).map(|(k, v)| (k.clone(), *v)).collect()
        }),
        phases,
    );
    print_matrix(
        "Valid traffic by operation (and failures, which must be 0):",
        &matrix(results, |r| {
            r.counts.iter().filter(|(k, _)| k.starts_with("valid")).map(|(k, v)| (k.clone(), *v)).collect()
        }),
        phases,
    );
}
