//! The command line of `kith-load`: the scenarios and their flags.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use serde::Serialize;

/// Which part of the measurement to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Scenario {
    /// N connections handshake and close.
    Handshake,
    /// M publishers pipeline pre-signed entries as fast as the node acknowledges them.
    Ingest,
    /// K subscribers follow F of P authors publishing at a fixed rate.
    Deliver,
    /// A small storage budget under sustained publishing.
    Prune,
    /// Resident memory at growing numbers of stored entries.
    Memory,
}

/// Command-line flags.
#[derive(Parser, Debug, Clone)]
#[command(name = "kith-load", version, about = "Load generator for Kith nodes: ingest, delivery, handshakes, pruning")]
pub(crate) struct Cli {
    /// Drive this already running node (ws://HOST:PORT/) instead of launching one.
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// The admin's (node's) seed file, needed with --url to create the load's users.
    #[arg(long)]
    pub(crate) peer_seed_file: Option<PathBuf>,
    /// With --url: the node's process id, to read its CPU time and memory from /proc.
    #[arg(long)]
    pub(crate) node_pid: Option<u32>,
    /// The node binary to launch (default: `kith-node` next to this executable).
    #[arg(long)]
    pub(crate) node_bin: Option<PathBuf>,
    /// Extra flags for the launched node (e.g. "--memory").
    #[arg(long, default_value = "")]
    pub(crate) node_args: String,
    /// Storage budget of the launched node for handshake/ingest/deliver, in bytes.
    #[arg(long, default_value_t = 1 << 30)]
    pub(crate) storage_bytes: u64,
    /// Scenarios to run, in this order (repeat or comma-separate).
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["handshake", "ingest", "deliver"])]
    pub(crate) scenario: Vec<Scenario>,
    /// Pin the launched node to core 0 and the generator to core 1.
    #[arg(long)]
    pub(crate) pin: bool,
    /// Run every launched-node scenario twice, unpinned and pinned, and print both.
    #[arg(long)]
    pub(crate) compare_pinning: bool,

    /// handshake: connections to open, handshake and close.
    #[arg(long, default_value_t = 2000)]
    pub(crate) connections: usize,
    /// handshake: how many handshakes run at once.
    #[arg(long, default_value_t = 32)]
    pub(crate) handshake_concurrency: usize,

    /// ingest: publishing connections, one author each.
    #[arg(long, default_value_t = 16)]
    pub(crate) publishers: usize,
    /// ingest: entries per publisher.
    #[arg(long, default_value_t = 2000)]
    pub(crate) entries: usize,
    /// Publishes each publisher keeps unacknowledged (pipelining).
    #[arg(long, default_value_t = 32)]
    pub(crate) in_flight: usize,
    /// ingest: subscribers following every publisher during the ingest run.
    #[arg(long, default_value_t = 0)]
    pub(crate) subscribers: usize,

    /// deliver: publishing authors.
    #[arg(long, default_value_t = 100)]
    pub(crate) deliver_publishers: usize,
    /// deliver: subscriber connections.
    #[arg(long, default_value_t = 1000)]
    pub(crate) deliver_subscribers: usize,
    /// deliver: authors each subscriber follows.
    #[arg(long, default_value_t = 10)]
    pub(crate) follow: usize,
    /// deliver: total entries per second (default: half the ingest peak of this run, else 500).
    #[arg(long)]
    pub(crate) deliver_rate: Option<f64>,
    /// deliver: seconds of publishing.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) duration: f64,

    /// prune: the node's storage budget in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    pub(crate) prune_budget: u64,
    /// prune: entries published in all (many times the budget).
    #[arg(long, default_value_t = 60_000)]
    pub(crate) prune_entries: usize,

    /// memory: stored-entry counts at which to read the node's memory.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000u64, 100_000])]
    pub(crate) memory_checkpoints: Vec<u64>,

    /// The server side's curve work per handshake in microseconds, from `cargo bench -p
    /// kith-bench --bench core -- "server curve"`; without it the whole server-side state
    /// machine, measured here, stands in (a slightly kinder reference).
    #[arg(long)]
    pub(crate) hs_curve_us: Option<f64>,

    /// Write every figure as JSON to this file too.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
}
