//! The node under test: launched here (this executable's `serve`, or `--node-bin`) with the
//! soak's limit flags and environment, or given by `--url`.

use std::path::PathBuf;

use kith_bench::launch;
use kith_conformance::launch::{read_seed_file, shell_quote, LaunchedNode, NodeConfig, Template};
use kith_proto::entry::MAX_ENTRY_BYTES;
use kith_proto::node_info::EVENT_ENVELOPE_BYTES;
use kith_proto::SecretKey;

use crate::cli::{SoakArgs, MEASURE_LIVE_SET};
use crate::Res;

pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) admin: SecretKey,
    pub(crate) pid: Option<u32>,
    pub(crate) launched: Option<LaunchedNode>,
    /// The launched node's data directory (for the store's size on disk).
    pub(crate) data_dir: Option<PathBuf>,
    /// What the launch passed (and could not pass) of the limit flags.
    pub(crate) limit_flags: String,
}

pub(crate) fn help_text(program: &std::path::Path, serve: bool) -> String {
    let mut cmd = std::process::Command::new(program);
    if serve {
        cmd.arg("serve");
    }
    cmd.arg("--help")
        .output()
        .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
        .unwrap_or_default()
}

pub(crate) async fn launch(args: &SoakArgs) -> Res<Target> {
    if let Some(url) = &args.url {
        let seed = args.peer_seed_file.as_deref().ok_or("--url needs --peer-seed-file")?;
        let admin = read_seed_file(seed)?;
        return Ok(Target {
            url: url.clone(),
            admin,
            pid: args.pid,
            launched: None,
            data_dir: None,
            limit_flags: "(node given by --url)".into(),
        });
    }
    let (program, serve) = match &args.node_bin {
        Some(b) => (b.clone(), false),
        None => (std::env::current_exe().map_err(|e| format!("own executable: {e}"))?, true),
    };
    let help = help_text(&program, serve);
    let queued = args
        .max_queued_bytes
        .unwrap_or(kith_node::MAX_BACKFILL * (MAX_ENTRY_BYTES as u64 + EVENT_ENVELOPE_BYTES) + 65_536);
    let mut flags = Vec::new();
    let mut missing = Vec::new();
    if !args.node_default_limits {
        for (flag, value) in [
            ("--max-connections-per-address", args.max_connections_per_address),
            ("--max-pending-handshakes", args.max_pending_handshakes),
            ("--max-requests-per-second", args.max_requests_per_second),
            ("--max-queued-bytes", queued),
        ] {
            if help.contains(flag) {
                flags.push(format!("{flag} {value}"));
            } else {
                missing.push(flag);
            }
        }
    }
    let limit_flags = match (flags.is_empty(), missing.is_empty()) {
        (_, true) if args.node_default_limits => "none (--node-default-limits)".to_owned(),
        (_, true) => flags.join(" "),
        (true, false) => "none: this node has no limit flags yet (its defaults apply)".to_owned(),
        (false, false) => format!("{} (the node lacks {})", flags.join(" "), missing.join(", ")),
    };
    let node_env: Vec<String> =
        if args.node_env.is_empty() { vec![MEASURE_LIVE_SET.to_owned()] } else { args.node_env.clone() };
    // `env` execs the node, so the launched pid stays the node's.
    let vars: Vec<String> = node_env.iter().map(|v| shell_quote(v)).collect();
    let env = format!("env {} ", vars.join(" "));
    let template = Template(format!(
        "{env}{}{} --listen 127.0.0.1:{{port}} --data-dir {{data_dir}} --peer-seed-file {{peer_seed_file}} \
         --storage-bytes {{storage_bytes}} --handshake-timeout-ms {{handshake_timeout_ms}} --log warn {} {}",
        shell_quote(&program.to_string_lossy()),
        if serve { " serve" } else { "" },
        flags.join(" "),
        args.node_args
    ));
    let config = NodeConfig {
        storage_bytes: args.storage_bytes,
        handshake_timeout_ms: args.handshake_timeout_ms,
        ..NodeConfig::default()
    };
    let node = LaunchedNode::start(&template, &config).await.map_err(|e| e.to_string())?;
    Ok(Target {
        url: node.url().to_owned(),
        admin: node.admin().clone(),
        pid: Some(node.pid()),
        data_dir: launch::data_dir(&node),
        launched: Some(node),
        limit_flags,
    })
}
