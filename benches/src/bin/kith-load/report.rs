//! The report: the printed lines of each scenario and the JSON of a whole run.

use serde::Serialize;

use crate::ceiling::Ceiling;
use crate::traffic::deliver::DeliverResult;
use crate::traffic::handshake::HandshakeResult;
use crate::traffic::ingest::IngestResult;
use crate::traffic::memory::MemoryPoint;
use crate::traffic::prune::PruneResult;

#[derive(Debug, Clone, Serialize, Default)]
pub(crate) struct Pass {
    pub(crate) pinned: bool,
    pub(crate) handshake: Option<HandshakeResult>,
    pub(crate) ingest: Option<IngestResult>,
    pub(crate) deliver: Option<DeliverResult>,
    pub(crate) prune: Option<PruneResult>,
    pub(crate) memory: Option<Vec<MemoryPoint>>,
    pub(crate) node_peak_rss_mib: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) date_utc: String,
    pub(crate) machine: String,
    pub(crate) ceiling: Ceiling,
    pub(crate) passes: Vec<Pass>,
}

pub(crate) fn label(pinned: bool) -> &'static str {
    if pinned {
        "pinned: node core 0, generator core 1"
    } else {
        "unpinned"
    }
}

pub(crate) fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.digits$}"))
}

pub(crate) fn print_handshake(r: &HandshakeResult) {
    println!(
        "  handshakes: {:.0}/s, {} per node CPU-s (x server curve cost = {}), latency p50 {:.2} ms p99 {:.2} ms, failures {}",
        r.per_second,
        opt(r.per_node_cpu_second, 0),
        opt(r.ratio_to_curve, 2),
        r.latency.p50_ms,
        r.latency.p99_ms,
        r.failures
    );
}

pub(crate) fn print_ingest(r: &IngestResult) {
    println!(
        "  ingest: {:.0} accepted/s ({} accepted, {} dup, errors {:?}); ratio to verify ceiling: {:.3} all cores, {:.3} one core",
        r.accepted_per_second, r.accepted, r.duplicates, r.errors, r.ratio_to_verify_all_cores, r.ratio_to_verify_one_core
    );
    println!(
        "  publish ack: p50 {:.2} ms p99 {:.2} ms max {:.2} ms (longest gap between acks {:.2} ms); node CPU {} s, generator CPU {} s, over {:.2} s; CPU efficiency {}",
        r.ack.p50_ms,
        r.ack.p99_ms,
        r.ack.max_ms,
        r.max_ack_gap_ms,
        opt(r.cpu.node_cpu_s, 2),
        opt(r.cpu.generator_cpu_s, 2),
        r.cpu.wall_s,
        opt(r.cpu_efficiency, 3)
    );
    if let Some(d) = &r.delivery {
        println!("  delivery: p50 {:.2} ms p99 {:.2} ms ({} events)", d.p50_ms, d.p99_ms, d.count);
    }
}

pub(crate) fn print_deliver(r: &DeliverResult) {
    println!(
        "  deliver: {:.0} accepted/s (target {:.0}); delivered {}/{}; delivery p50 {:.2} ms p99 {:.2} ms max {:.2} ms; ack p99 {:.2} ms; closed subscribers {}; node CPU {} s over {:.1} s",
        r.accepted_per_second,
        r.target_rate,
        r.delivered,
        r.expected,
        r.delivery.p50_ms,
        r.delivery.p99_ms,
        r.delivery.max_ms,
        r.ack.p99_ms,
        r.closed_subscribers,
        opt(r.cpu.node_cpu_s, 2),
        r.cpu.wall_s
    );
    println!("  deliver: generator CPU {} s", opt(r.cpu.generator_cpu_s, 2));
}

pub(crate) fn print_prune(r: &PruneResult) {
    println!(
        "  prune: budget {} B, published {} entries ({} B), {:.0} accepted/s, errors {:?}; ack while pruning p50 {:.2} p99 {:.2} max {:.2} ms; longest ack gap {:.2} ms; on disk at end {} B",
        r.budget_bytes,
        r.published,
        r.published_bytes,
        r.accepted_per_second,
        r.errors,
        r.ack_while_pruning.p50_ms,
        r.ack_while_pruning.p99_ms,
        r.ack_while_pruning.max_ms,
        r.max_ack_gap_ms,
        r.disk_bytes_end.map_or_else(|| "n/a".into(), |b| b.to_string())
    );
    println!(
        "  prune: counted bytes held at the end {} of budget {} ({})",
        r.stored_bytes_end,
        r.budget_bytes,
        if r.stored_bytes_end <= r.budget_bytes { "within" } else { "OVER BUDGET" }
    );
}

pub(crate) fn print_memory(points: &[MemoryPoint]) {
    for p in points {
        println!(
            "  memory: {:>8} stored: node RSS {} MiB, peak {} MiB, on disk {} MiB, {:.0} accepted/s, ack p99 {:.2} ms",
            p.stored_entries,
            opt(p.node_rss_mib, 1),
            opt(p.node_peak_rss_mib, 1),
            p.disk_bytes.map_or_else(|| "n/a".into(), |b| format!("{:.1}", b as f64 / 1048576.0)),
            p.accepted_per_second,
            p.ack.p99_ms
        );
    }
}

/// The 1-minute load average: how much else ran on the machine (figures from a busy machine
/// are pessimistic).
pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}
