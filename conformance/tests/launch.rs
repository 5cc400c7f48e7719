//! Process hygiene of launched nodes: a node that never becomes ready, started by a wrapper
//! script (bash starting python, as implementers' launch templates do), leaves no process
//! behind, and one that prints its `listening` line on stderr is found.

use std::path::Path;
use std::time::{Duration, Instant};

use kith_conformance::launch::{LaunchedNode, NodeConfig, Template};

/// Whether process `pid` still runs (a zombie awaiting its reaper does not count).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// A wrapper script that starts python in the foreground; python writes its pid to `pid_file`
/// and then, if `ready`, prints the listening line on stderr, and lives for a minute.
fn wrapper(dir: &Path, pid_file: &Path, ready: bool) -> Template {
    let py = format!(
        "import os, sys, time\nopen({pid:?}, 'w').write(str(os.getpid()))\n{say}time.sleep(60)\n",
        pid = pid_file.display().to_string(),
        say = if ready { "print('listening ws://127.0.0.1:9/', file=sys.stderr, flush=True)\n" } else { "" },
    );
    std::fs::write(dir.join("node.py"), py).expect("write node.py");
    let script = dir.join("node.sh");
    std::fs::write(
        &script,
        format!("#!/bin/bash\necho starting\npython3 {}/node.py \"$@\"\necho done\n", dir.display()),
    )
    .expect("write node.sh");
    Template(format!("bash {} --data {{data_dir}} --seed {{node_seed_file}}", script.display()))
}

async fn pid_from(file: &Path) -> u32 {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(file).ok().and_then(|t| t.trim().parse().ok()) {
            return pid;
        }
        assert!(Instant::now() < until, "the wrapper's python never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn gone_within(pid: u32, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    while alive(pid) {
        if Instant::now() > until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

#[tokio::test]
async fn a_wrapper_that_never_gets_ready_leaves_no_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("py.pid");
    let t = wrapper(dir.path(), &pid_file, false);
    let err =
        LaunchedNode::start_within(&t, &NodeConfig::default(), Duration::from_secs(2)).await.expect_err("never ready");
    let text = err.to_string();
    assert!(text.contains("timed out") && text.contains("starting"), "{text}");
    let pid = pid_from(&pid_file).await;
    assert!(gone_within(pid, Duration::from_secs(3)).await, "python {pid} outlived the readiness timeout");
}

#[tokio::test]
async fn a_wrapper_node_ready_on_stderr_is_stopped_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("py.pid");
    let t = wrapper(dir.path(), &pid_file, true);
    let node = LaunchedNode::start_within(&t, &NodeConfig::default(), Duration::from_secs(10)).await.expect("ready");
    assert_eq!(node.url(), "ws://127.0.0.1:9/");
    let pid = pid_from(&pid_file).await;
    assert!(alive(pid));
    node.stop().await;
    assert!(gone_within(pid, Duration::from_secs(3)).await, "python {pid} outlived stop");
}

#[tokio::test]
async fn a_dropped_wrapper_node_is_killed_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("py.pid");
    let t = wrapper(dir.path(), &pid_file, true);
    let node = LaunchedNode::start_within(&t, &NodeConfig::default(), Duration::from_secs(10)).await.expect("ready");
    let pid = pid_from(&pid_file).await;
    drop(node);
    assert!(gone_within(pid, Duration::from_secs(3)).await, "python {pid} outlived drop");
}
