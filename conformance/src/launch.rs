//! Starting a node process from a command template and knowing when it is ready.
//!
//! A template is a shell command with placeholders: `{port}`, `{data_dir}`, `{node_seed_file}`
//! (the node key's seed, which is also the admin's; `{peer_seed_file}` is its old name),
//! `{storage_bytes}` and, optionally, `{handshake_timeout_ms}` and the resource limits
//! `{max_connections_per_address}`, `{max_pending_handshakes}`, `{max_requests_per_second}`,
//! `{max_subscriptions}`, `{max_queued_bytes}`, `{max_backfill}`, `{max_replicate}`, `{max_notes}`, `{max_note_bytes}`, `{max_follows}`, `{max_filter_items}` and `{max_total_filter_items}` (a template that omits one leaves that limit to
//! the node; the cases read the limits the node reports). The runner writes a fresh admin seed to
//! the seed file, runs the command (`sh -c 'exec ...'`) in a process group of its own, and waits
//! for the line `listening ws://ADDR/` on the node's standard output or standard error. Stopping
//! the node, or giving up on it, ends the whole process group (a wrapper script and the node it
//! starts alike).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kith_proto::{PublicKey, SecretKey};
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::client::random_bytes;

/// How long a launched node may take to print its `listening` line, unless the run says
/// otherwise (`--ready-wait-secs`, [`set_ready_wait`]).
pub const READY_WAIT: Duration = Duration::from_secs(15);

static READY_WAIT_MS: AtomicU64 = AtomicU64::new(15_000);

/// Sets how long [`LaunchedNode::start`] waits for the `listening` line, for the whole process
/// (the runner sets it once from `--ready-wait-secs`).
pub fn set_ready_wait(wait: Duration) {
    READY_WAIT_MS.store(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// How long [`LaunchedNode::start`] waits for the `listening` line.
pub fn ready_wait() -> Duration {
    Duration::from_millis(READY_WAIT_MS.load(Ordering::Relaxed))
}

/// Why a node could not be launched.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// Files for the node could not be prepared.
    #[error("preparing the node's files: {0}")]
    Io(#[from] std::io::Error),
    /// The process exited or never said it was listening.
    #[error(
        "node did not print a line `listening ws://HOST:PORT/` (on stdout or stderr) within {wait:?} \
         (--ready-wait-secs): {detail}\n--- node stdout (last lines) ---\n{stdout}\n--- node stderr (last lines) ---\n{stderr}"
    )]
    NotReady {
        /// How long the runner waited.
        wait: Duration,
        /// What happened.
        detail: String,
        /// The last lines the node wrote to stdout.
        stdout: String,
        /// The last lines the node wrote to stderr.
        stderr: String,
    },
}

/// What one launch asks of the node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeConfig {
    /// The storage budget in bytes.
    pub storage_bytes: u64,
    /// The handshake timeout, for templates that take `{handshake_timeout_ms}`.
    pub handshake_timeout_ms: u64,
    /// Most open connections from one address (`{max_connections_per_address}`).
    pub max_connections_per_address: u64,
    /// Most connections without `welcome`, node-wide (`{max_pending_handshakes}`).
    pub max_pending_handshakes: u64,
    /// Size and refill rate of each connection's token bucket (`{max_requests_per_second}`).
    pub max_requests_per_second: u64,
    /// Most live subscriptions per connection (`{max_subscriptions}`).
    pub max_subscriptions: u64,
    /// Bound of one connection's outbound queue in payload bytes (`{max_queued_bytes}`).
    pub max_queued_bytes: u64,
    /// Most entries one `subscribe` replays (`{max_backfill}`).
    pub max_backfill: u64,
    /// Most entries one `replicate_ok` carries (`{max_replicate}`).
    pub max_replicate: u64,
    /// Most notes one author key may have held (`{max_notes}`).
    pub max_notes: u64,
    /// Most counted bytes of one author key's notes (`{max_note_bytes}`).
    pub max_note_bytes: u64,
    /// Most keys in one follow set (`{max_follows}`).
    pub max_follows: u64,
    /// Most filter items (keys and ids) of one connection's subscriptions (`{max_filter_items}`).
    pub max_filter_items: u64,
    /// Most filter items of all connections together (`{max_total_filter_items}`); at least
    /// 4 × `max_connections_per_address` × `max_filter_items` (HS-57).
    pub max_total_filter_items: u64,
}

impl Default for NodeConfig {
    /// Generous limits: no case outside the `LIMIT` family comes near any of them.
    fn default() -> Self {
        NodeConfig {
            storage_bytes: 64 << 20,
            handshake_timeout_ms: 10_000,
            max_connections_per_address: 4096,
            max_pending_handshakes: 1024,
            max_requests_per_second: 100_000,
            max_subscriptions: 64,
            max_queued_bytes: 32 << 20,
            max_backfill: 1000,
            max_replicate: 1000,
            // Small enough that the IDENT cases reach the bounds in a few requests.
            max_notes: 8,
            max_note_bytes: 32_768,
            // Above one page of `follows_ok` (256), so that FOLLOW-PAGE-001 applies.
            max_follows: 300,
            // The recommended value, and the least total it allows at 4096 connections (HS-57).
            max_filter_items: 4096,
            max_total_filter_items: 4 * 4096 * 4096,
        }
    }
}

/// The configuration of a node for handshake-timeout cases: a short timeout.
pub fn short_handshake_timeout() -> NodeConfig {
    NodeConfig { handshake_timeout_ms: 1000, ..NodeConfig::default() }
}

/// A node command template.
#[derive(Debug, Clone)]
pub struct Template(pub String);

impl Template {
    /// The template that starts the reference node through `exe serve ...` (the runner's own
    /// binary), with an optional `--fault`.
    pub fn reference(exe: &Path, fault: Option<&str>) -> Template {
        let mut t = format!(
            "{} serve --listen 127.0.0.1:{{port}} --data-dir {{data_dir}} --peer-seed-file {{node_seed_file}} \
             --storage-bytes {{storage_bytes}} --handshake-timeout-ms {{handshake_timeout_ms}} \
             --max-connections-per-address {{max_connections_per_address}} \
             --max-pending-handshakes {{max_pending_handshakes}} \
             --max-requests-per-second {{max_requests_per_second}} --max-subscriptions {{max_subscriptions}} \
             --max-queued-bytes {{max_queued_bytes}} --max-backfill {{max_backfill}} \
             --max-replicate {{max_replicate}} --max-notes {{max_notes}} --max-note-bytes {{max_note_bytes}} \
             --max-follows {{max_follows}} --max-filter-items {{max_filter_items}} \
             --max-total-filter-items {{max_total_filter_items}} --log warn",
            shell_quote(&exe.to_string_lossy())
        );
        if let Some(f) = fault {
            t.push_str(" --fault ");
            t.push_str(&shell_quote(f));
        }
        Template(t)
    }

    /// Fills the placeholders.
    pub fn render(&self, port: u16, data_dir: &Path, seed_file: &Path, config: &NodeConfig) -> String {
        self.0
            .replace("{port}", &port.to_string())
            .replace("{data_dir}", &shell_quote(&data_dir.to_string_lossy()))
            .replace("{node_seed_file}", &shell_quote(&seed_file.to_string_lossy()))
            .replace("{peer_seed_file}", &shell_quote(&seed_file.to_string_lossy()))
            .replace("{storage_bytes}", &config.storage_bytes.to_string())
            .replace("{handshake_timeout_ms}", &config.handshake_timeout_ms.to_string())
            .replace("{max_connections_per_address}", &config.max_connections_per_address.to_string())
            .replace("{max_pending_handshakes}", &config.max_pending_handshakes.to_string())
            .replace("{max_requests_per_second}", &config.max_requests_per_second.to_string())
            .replace("{max_subscriptions}", &config.max_subscriptions.to_string())
            .replace("{max_queued_bytes}", &config.max_queued_bytes.to_string())
            .replace("{max_backfill}", &config.max_backfill.to_string())
            .replace("{max_replicate}", &config.max_replicate.to_string())
            .replace("{max_notes}", &config.max_notes.to_string())
            .replace("{max_note_bytes}", &config.max_note_bytes.to_string())
            .replace("{max_follows}", &config.max_follows.to_string())
            .replace("{max_filter_items}", &config.max_filter_items.to_string())
            .replace("{max_total_filter_items}", &config.max_total_filter_items.to_string())
    }

    /// Whether the template passes the handshake timeout to the node.
    pub fn sets_handshake_timeout(&self) -> bool {
        self.0.contains("{handshake_timeout_ms}")
    }
}

/// Quotes a word for `sh`.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-:=@".contains(&b)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A running node that the runner started; stopped (SIGTERM, then SIGKILL) on [`stop`] or drop.
///
/// [`stop`]: LaunchedNode::stop
#[derive(Debug)]
pub struct LaunchedNode {
    child: Child,
    pid: u32,
    url: String,
    admin: SecretKey,
    dir: Option<tempfile::TempDir>,
    template: Template,
    config: NodeConfig,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

const STDERR_LINES: usize = 40;

/// Reads a stream of the node to its end (so that the node never blocks on a full pipe),
/// keeping its last lines in `store` and sending the URL of the first `listening` line.
fn keep_lines<R: AsyncRead + Unpin + Send + 'static>(
    reader: R,
    store: Arc<Mutex<VecDeque<String>>>,
    ready: tokio::sync::mpsc::Sender<String>,
) {
    tokio::spawn(async move {
        let mut ready = Some(ready);
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = parse_listening(&line) {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(url).await;
                }
            }
            if let Ok(mut s) = store.lock() {
                if s.len() == STDERR_LINES {
                    s.pop_front();
                }
                s.push_back(line);
            }
        }
    });
}

fn tail(store: &Arc<Mutex<VecDeque<String>>>) -> String {
    store.lock().map(|s| s.iter().cloned().collect::<Vec<_>>().join("\n")).unwrap_or_default()
}

/// Sends `sig` (`-TERM`, `-KILL`, `-0`) to the process group `pgid`; true if it reached a
/// process.
async fn signal_group(pgid: u32, sig: &str) -> bool {
    if pgid == 0 {
        return false;
    }
    Command::new("kill")
        .arg(sig)
        .arg("--")
        .arg(format!("-{pgid}"))
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Ends every process of the group `pgid` (the shell, a wrapper script, the node): SIGTERM,
/// then SIGKILL to whatever is left after `grace`; reaps `child`.
async fn end_group(child: &mut Child, pgid: u32, grace: Duration) {
    signal_group(pgid, "-TERM").await;
    let deadline = tokio::time::Instant::now() + grace;
    let _ = tokio::time::timeout_at(deadline, child.wait()).await;
    // The shell may be gone while a process it started lives on: wait for the group as well.
    while tokio::time::Instant::now() < deadline && signal_group(pgid, "-0").await {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal_group(pgid, "-KILL").await;
    let _ = child.start_kill();
    let _ = child.wait().await;
}

impl LaunchedNode {
    /// Starts a node with a fresh data directory and admin seed, waiting [`ready_wait`] for it.
    pub async fn start(template: &Template, config: &NodeConfig) -> Result<Self, LaunchError> {
        Self::start_within(template, config, ready_wait()).await
    }

    /// Starts a node, waiting at most `wait` for its `listening` line.
    pub async fn start_within(template: &Template, config: &NodeConfig, wait: Duration) -> Result<Self, LaunchError> {
        let dir = tempfile::Builder::new().prefix("kith-conformance-").tempdir()?;
        let admin = SecretKey::from_seed(random_bytes());
        let seed_hex: String = admin.seed().iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(dir.path().join("peer.seed"), format!("{seed_hex}\n"))?;
        std::fs::create_dir_all(dir.path().join("data"))?;
        Self::spawn(template.clone(), config.clone(), dir, admin, wait).await
    }

    async fn spawn(
        template: Template,
        config: NodeConfig,
        dir: tempfile::TempDir,
        admin: SecretKey,
        wait: Duration,
    ) -> Result<Self, LaunchError> {
        let cmd = template.render(0, &dir.path().join("data"), &dir.path().join("peer.seed"), &config);
        // A single command replaces the shell (so that the pid is the node's); a compound one
        // runs under it. Either way the process group is the unit that gets stopped.
        let simple = !cmd.contains([';', '&', '|', '\n', '(', '`']);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(if simple { format!("exec {cmd}") } else { cmd.clone() })
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().unwrap_or(0);
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let stdout = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        if let Some(e) = child.stderr.take() {
            keep_lines(e, stderr.clone(), tx.clone());
        }
        if let Some(o) = child.stdout.take() {
            keep_lines(o, stdout.clone(), tx);
        } else {
            drop(tx);
        }
        let found = tokio::time::timeout(wait, rx.recv()).await;
        let detail = match found {
            Ok(Some(url)) => {
                return Ok(LaunchedNode { child, pid, url, admin, dir: Some(dir), template, config, stderr })
            }
            Ok(None) => "its stdout and stderr both ended".to_owned(),
            Err(_) => "timed out".to_owned(),
        };
        let status = match child.try_wait() {
            Ok(Some(status)) => format!("; the command exited with {status}"),
            _ => String::new(),
        };
        // Not ready: nothing of it may outlive this call (its data directory goes with it).
        end_group(&mut child, pid, Duration::from_millis(500)).await;
        // Give the readers a moment to collect the node's last words.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Err(LaunchError::NotReady {
            wait,
            detail: format!("{detail}{status} (command: {cmd})"),
            stdout: tail(&stdout),
            stderr: tail(&stderr),
        })
    }

    /// The websocket URL the node listens on.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The node's process id (e.g. for reading `/proc/PID/stat`).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The admin's (and the node's) secret key.
    pub fn admin(&self) -> &SecretKey {
        &self.admin
    }

    /// The node key, which is also the admin's user key.
    pub fn node_key(&self) -> PublicKey {
        self.admin.public()
    }

    /// The peer seed file given to the node.
    pub fn seed_file(&self) -> PathBuf {
        self.dir.as_ref().map(|d| d.path().join("peer.seed")).unwrap_or_default()
    }

    /// The last lines the node wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr.lock().map(|s| s.iter().cloned().collect::<Vec<_>>().join("\n")).unwrap_or_default()
    }

    /// Stops every process of the node's group: SIGTERM, then SIGKILL after `grace`.
    async fn terminate(&mut self, grace: Duration) {
        end_group(&mut self.child, self.pid, grace).await;
    }

    /// Sends a signal to the node's process group.
    async fn signal(&self, sig: &str) {
        signal_group(self.pid, sig).await;
    }

    /// Stops the node and deletes its files.
    pub async fn stop(mut self) {
        self.terminate(Duration::from_secs(3)).await;
        // The group is gone: nothing left for `drop` to kill.
        self.pid = 0;
    }

    /// Stops the node (gracefully, or with SIGKILL when `crash`) and starts it again on the
    /// same data directory and seed; the URL may change.
    pub async fn restart(self, crash: bool) -> Result<Self, LaunchError> {
        let config = self.config.clone();
        self.restart_with(crash, config).await
    }

    /// Like [`LaunchedNode::restart`], with a new configuration (e.g. a lower budget).
    pub async fn restart_with(self, crash: bool, config: NodeConfig) -> Result<Self, LaunchError> {
        let mut me = self;
        if crash {
            me.signal("-KILL").await;
            let _ = me.child.start_kill();
            let _ = me.child.wait().await;
        } else {
            me.terminate(Duration::from_secs(3)).await;
        }
        let Some(dir) = me.dir.take() else {
            return Err(LaunchError::Io(std::io::Error::other("the node's directory is gone")));
        };
        Self::spawn(me.template.clone(), config, dir, me.admin.clone(), ready_wait()).await
    }
}

impl Drop for LaunchedNode {
    /// A node dropped without [`LaunchedNode::stop`] (e.g. when a case timed out) is killed
    /// with its whole process group, so that no node outlives the runner.
    fn drop(&mut self) {
        // The group may outlive the shell (a wrapper's child), so it is killed either way.
        if self.pid != 0 {
            let _ = std::process::Command::new("kill")
                .arg("-KILL")
                .arg("--")
                .arg(format!("-{}", self.pid))
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Reads the URL from a `listening ws://ADDR/` line.
pub fn parse_listening(line: &str) -> Option<String> {
    let rest = line.trim().strip_prefix("listening ")?;
    (rest.starts_with("ws://") || rest.starts_with("wss://")).then(|| rest.to_owned())
}

/// Reads a peer seed file: 64 lowercase hex characters and a newline.
pub fn read_seed_file(path: &Path) -> Result<SecretKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let seed = kith_proto::encoding::decode_hex::<32>(text.trim_end_matches('\n'))
        .map_err(|e| format!("{}: not 64 lowercase hex characters: {e}", path.display()))?;
    Ok(SecretKey::from_seed(seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line() {
        assert_eq!(parse_listening("listening ws://127.0.0.1:4000/"), Some("ws://127.0.0.1:4000/".into()));
        assert_eq!(parse_listening("starting"), None);
    }

    #[test]
    fn template_renders_and_quotes() {
        let t = Template::reference(Path::new("/x y/kc"), Some("skip-sig"));
        let s = t.render(0, Path::new("/d"), Path::new("/s"), &NodeConfig::default());
        assert!(s.starts_with("'/x y/kc' serve --listen 127.0.0.1:0 --data-dir /d"), "{s}");
        assert!(s.contains("--handshake-timeout-ms 10000 --max-connections-per-address 4096 "), "{s}");
        assert!(s.contains("--max-pending-handshakes 1024 --max-requests-per-second 100000 "), "{s}");
        assert!(s.contains("--max-subscriptions 64 --max-queued-bytes 33554432 "), "{s}");
        assert!(s.ends_with("--max-backfill 1000 --max-replicate 1000 --max-notes 8 --max-note-bytes 32768 --max-follows 300 --max-filter-items 4096 --max-total-filter-items 67108864 --log warn --fault skip-sig"), "{s}");
        assert!(!s.contains('{'), "every placeholder is filled: {s}");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[tokio::test]
    async fn a_command_that_never_listens_is_reported() {
        let t = Template("echo hello; echo oops >&2".into());
        let err = LaunchedNode::start(&t, &NodeConfig::default()).await.expect_err("not ready");
        let text = err.to_string();
        assert!(text.contains("stdout and stderr both ended") && text.contains("oops"), "{text}");
        assert!(text.contains("listening ws://HOST:PORT/"), "says what it waits for: {text}");
    }

    #[tokio::test]
    async fn a_listening_line_on_stderr_is_found() {
        let t = Template("echo noise; echo 'listening ws://127.0.0.1:9/' >&2; sleep 30".into());
        let node = LaunchedNode::start(&t, &NodeConfig::default()).await.expect("ready");
        assert_eq!(node.url(), "ws://127.0.0.1:9/");
        node.stop().await;
    }

    #[test]
    fn the_node_seed_file_placeholder_and_its_old_name() {
        let t = Template("n --a {node_seed_file} --b {peer_seed_file}".into());
        let s = t.render(0, Path::new("/d"), Path::new("/s x"), &NodeConfig::default());
        assert_eq!(s, "n --a '/s x' --b '/s x'");
    }

    #[tokio::test]
    async fn a_listening_line_is_found() {
        let t = Template("echo noise; echo 'listening ws://127.0.0.1:9/'; sleep 30".into());
        let node = LaunchedNode::start(&t, &NodeConfig::default()).await.expect("ready");
        assert_eq!(node.url(), "ws://127.0.0.1:9/");
        assert!(node.pid() > 0);
        let seed = read_seed_file(&node.seed_file()).expect("seed");
        assert_eq!(seed.public(), node.node_key());
        node.stop().await;
    }
}
