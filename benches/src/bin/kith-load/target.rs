//! The node under test: launched here (optionally pinned to a core) or given by URL.

use std::path::PathBuf;

use kith_bench::launch;
use kith_bench::proc;
use kith_conformance::launch::{read_seed_file, LaunchedNode, NodeConfig, Template};
use kith_proto::{PublicKey, SecretKey};

use crate::cli::Cli;
use crate::Res;

/// A node to drive: launched here or given by URL.
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) admin: SecretKey,
    pub(crate) pid: Option<u32>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) launched: Option<LaunchedNode>,
}

impl Target {
    pub(crate) fn node_key(&self) -> PublicKey {
        self.admin.public()
    }

    pub(crate) async fn stop(self) {
        if let Some(n) = self.launched {
            n.stop().await;
        }
    }

    /// Bytes the node's files take on disk.
    pub(crate) fn disk_bytes(&self) -> Option<u64> {
        self.data_dir.as_deref().map(proc::disk_bytes)
    }
}

/// The launched node's connection and rate limits (06 §8) and its hello pacing (HS-51), far
/// beyond what any scenario uses.
pub(crate) const GENEROUS_LIMITS: &[(&str, u64)] = &[
    ("--max-connections-per-address", 1_000_000),
    ("--max-pending-handshakes", 1_000_000),
    ("--max-requests-per-second", 1_000_000_000),
    ("--max-hellos-per-second", 1_000_000_000),
];

pub(crate) fn default_node_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("kith-node")))
        .unwrap_or_else(|| PathBuf::from("kith-node"))
}

pub(crate) async fn launch(cli: &Cli, storage_bytes: u64, pinned: bool) -> Res<Target> {
    if let Some(url) = &cli.url {
        let seed = cli.peer_seed_file.as_deref().ok_or("--url needs --peer-seed-file (the admin's seed)")?;
        let admin = read_seed_file(seed)?;
        return Ok(Target { url: url.clone(), admin, pid: cli.node_pid, data_dir: None, launched: None });
    }
    let bin = cli.node_bin.clone().unwrap_or_else(default_node_bin);
    if !bin.exists() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p kith-node` or pass --node-bin",
            bin.display()
        ));
    }
    let pin = if pinned { "taskset -c 0 " } else { "" };
    // The load comes from one address, opens thousands of connections and pipelines far beyond
    // the node's default rate: launch it with limits the load cannot reach, unless --node-args
    // sets them.
    let limits: String = GENEROUS_LIMITS
        .iter()
        .filter(|(flag, _)| !cli.node_args.contains(flag))
        .map(|(flag, value)| format!(" {flag} {value}"))
        .collect();
    let template = Template(format!(
        "{pin}{} --listen 127.0.0.1:{{port}} --data-dir {{data_dir}} --peer-seed-file {{peer_seed_file}} \
         --storage-bytes {{storage_bytes}} --log warn{limits} {}",
        kith_conformance::launch::shell_quote(&bin.to_string_lossy()),
        cli.node_args
    ));
    let config = NodeConfig { storage_bytes, ..NodeConfig::default() };
    let node = LaunchedNode::start(&template, &config).await.map_err(|e| e.to_string())?;
    let data_dir = launch::data_dir(&node);
    Ok(Target {
        url: node.url().to_owned(),
        admin: node.admin().clone(),
        pid: Some(node.pid()),
        data_dir,
        launched: Some(node),
    })
}

/// Pins this process (every thread) to `cpus` (a taskset list), or undoes it.
pub(crate) fn pin_self(cpus: &str) -> Res<()> {
    let status = std::process::Command::new("taskset")
        .args(["-a", "-c", "-p", cpus, &std::process::id().to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("taskset -a -c -p {cpus} failed"))
    }
}

/// The `Cpus_allowed_list` of a process (this one with `None`), to show that pinning held.
pub(crate) fn cpus_allowed(pid: Option<u32>) -> String {
    let path = pid.map_or_else(|| "/proc/self/status".to_owned(), |p| format!("/proc/{p}/status"));
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).map(|l| l.trim().to_owned()))
        .unwrap_or_else(|| "?".into())
}
