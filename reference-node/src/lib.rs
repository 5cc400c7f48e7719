//! # kith-node: the Kith reference node
//!
//! Serves every chapter of the spec over websockets, on a durable embedded store (redb).
//! The binary `kith-node` is a thin wrapper around [`NodeArgs`] and [`serve`]; other workspace
//! members (the conformance runner) start a node through the same two items, or through
//! [`start`] when they want the address and a shutdown handle in-process.
//!
//! | part | module |
//! |---|---|
//! | one connection: handshake, requests, answers in order | `conn` |
//! | the single writer with group commit | `writer` |
//! | redb tables, read queries, pruning | [`store`] |
//! | outbound queues, sessions, subscriptions | `hub` |
//! | connection counts and token buckets (resource limits) | `limits` |
//! | fault injection (switched on with feature `faults`) | [`faults`] |

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kith_proto::encoding::{decode_hex, encode_hex};
use kith_proto::frame::MAX_FRAME_BYTES;
use kith_proto::node_info::{Limits, NodeInfoOk};
use kith_proto::version::SUPPORTED_VERSIONS;
use kith_proto::{ErrorCode, PublicKey, RequestId, SecretKey, ServerFrame};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

mod conn;
mod error;
mod fault;
mod hub;
mod limits;
mod relax;
#[cfg(feature = "faults")]
mod session_faults;
pub mod store;
mod writer;

pub use error::{NodeError, ReqError};

/// The fault table: the faults `--fault` accepts and the rule each breaks. The table is in every
/// build (the runner's fault coverage table reads it); switching a fault on needs the `faults`
/// feature.
pub mod faults {
    pub use crate::fault::{FaultInfo, ALL};
}

/// Default of `--max-backfill`: most entries a subscription's backfill replays ([HS-9]).
pub const MAX_BACKFILL: u64 = 1000;
/// Default of `--max-replicate`: most entries one `replicate_ok` carries ([HS-10]).
pub const MAX_REPLICATE: u64 = 1000;
/// Default of `--max-subscriptions`: most live subscriptions per connection ([FEED-11]).
pub const MAX_SUBSCRIPTIONS: u64 = 64;
/// Default `max_notes`: identity notes one author key may have held ([IDENT-25]).
pub const MAX_NOTES: u64 = 1000;
/// Default `max_note_bytes`: counted bytes of one author key's held notes ([IDENT-25]).
pub const MAX_NOTE_BYTES: u64 = 4 << 20;
/// Default `max_follows`: keys in one follow set ([IDENT-26]).
pub const MAX_FOLLOWS: u64 = 10_000;
/// Default `max_filter_items`: filter items over one connection's live subscriptions
/// ([FEED-34]); four full filters (1024 each), sixteen times fewer than 64 subscriptions of a
/// frame's worth of ids each (about 62,000) that the node allowed before the bound.
pub const MAX_FILTER_ITEMS: u64 = 4096;
/// The least default of `max_total_filter_items` ([FEED-35]): 2^20 items, about 128 MiB of
/// registry at the measured ~128 bytes per item; the default is the larger of this and the
/// least HS-57 allows (4 × max_connections_per_address × max_filter_items, exactly 2^20 with the
/// defaults 64 and 4096).
pub const MIN_DEFAULT_TOTAL_FILTER_ITEMS: u64 = 1 << 20;
/// Default of `--max-connections-per-address` ([FRAME-42]).
pub const MAX_CONNECTIONS_PER_ADDRESS: u64 = 64;
/// Default of `--max-pending-handshakes` ([FRAME-43]).
pub const MAX_PENDING_HANDSHAKES: u64 = 256;
/// Default of `--max-requests-per-second`, at least 4 ([HS-53]).
pub const MAX_REQUESTS_PER_SECOND: u64 = 1000;
/// Default of `--max-hellos-per-second`: per remote address ([HS-51]).
pub const MAX_HELLOS_PER_SECOND: u64 = 1000;
/// Default of `--max-queued-bytes` ([FRAME-34]): 32 MiB, about twice the least HS-54 allows.
pub const MAX_QUEUED_BYTES: u64 = 32 << 20;

/// The node's command-line flags (each with an environment variable).
#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    /// Address to listen on; port 0 picks a free port (the real address is printed).
    #[arg(long, env = "KITH_LISTEN", default_value = "127.0.0.1:7777")]
    pub listen: String,
    /// Directory holding the database and the node key (`peer.key`).
    #[arg(long, env = "KITH_DATA_DIR", default_value = "./kith-data")]
    pub data_dir: PathBuf,
    /// Storage budget in counted bytes; the oldest entries are pruned beyond it.
    #[arg(long, env = "KITH_STORAGE_BYTES", default_value_t = 1_073_741_824)]
    pub storage_bytes: u64,
    /// File holding the node's 32-byte Ed25519 seed as 64 lowercase hex characters.
    #[arg(long, env = "KITH_PEER_SEED_FILE")]
    pub peer_seed_file: Option<PathBuf>,
    /// Keep everything in memory (no disk; for tests).
    #[arg(long, env = "KITH_MEMORY")]
    pub memory: bool,
    /// Log filter (tracing EnvFilter directive), e.g. `info` or `kith_node=debug`.
    #[arg(long, env = "KITH_LOG", default_value = "info")]
    pub log: String,
    /// Time allowed for a handshake, in milliseconds.
    #[arg(long, env = "KITH_HANDSHAKE_TIMEOUT_MS", default_value_t = 10_000)]
    pub handshake_timeout_ms: u64,
    /// The node's name in `node_info_ok`.
    #[arg(long, env = "KITH_NAME", default_value = "kith-node")]
    pub name: String,
    /// Most open connections from one remote IP address; one more is refused with
    /// `too_many_connections` and close 1013. At least 1.
    #[arg(long, env = "KITH_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = MAX_CONNECTIONS_PER_ADDRESS)]
    pub max_connections_per_address: u64,
    /// Most connections, node-wide, that are open and have not been sent `welcome`; one more
    /// is refused with `too_many_handshakes` and close 1013. At least 1.
    #[arg(long, env = "KITH_MAX_PENDING_HANDSHAKES", default_value_t = MAX_PENDING_HANDSHAKES)]
    pub max_pending_handshakes: u64,
    /// Size and refill rate (per second) of each connection's token bucket of received
    /// messages; a request finding it empty gets `rate_limited`. At least 4 (HS-53).
    #[arg(long, env = "KITH_MAX_REQUESTS_PER_SECOND", default_value_t = MAX_REQUESTS_PER_SECOND)]
    pub max_requests_per_second: u64,
    /// Most live subscriptions per connection; one more `subscribe` gets `invalid_request`.
    /// At least 1.
    #[arg(long, env = "KITH_MAX_SUBSCRIPTIONS", default_value_t = MAX_SUBSCRIPTIONS)]
    pub max_subscriptions: u64,
    /// Bound of each connection's outbound queue in unsent payload bytes; a frame that would
    /// pass it closes the connection with 1013 `slow_consumer`. At least
    /// max(max_backfill, max_replicate) × (max_entry_bytes + 256) + 65536 (16705536 with the
    /// default 1000 and 1000).
    #[arg(long, env = "KITH_MAX_QUEUED_BYTES", default_value_t = MAX_QUEUED_BYTES)]
    pub max_queued_bytes: u64,
    /// Most stored entries one `subscribe` replays as backfill; a larger `backfill` is capped,
    /// never refused. At least 1 (HS-9).
    #[arg(long, env = "KITH_MAX_BACKFILL", default_value_t = MAX_BACKFILL)]
    pub max_backfill: u64,
    /// Most entries one `replicate_ok` carries; a larger `limit` is capped, never refused.
    /// At least 1 and at most 1000 (HS-10).
    #[arg(long, env = "KITH_MAX_REPLICATE", default_value_t = MAX_REPLICATE)]
    pub max_replicate: u64,
    /// Hellos per second processed from one remote address after a burst of as many; later
    /// ones wait for their turn (within the handshake timeout), none is refused. At least 1.
    /// Not a reported limit: only the challenge comes later.
    #[arg(long, env = "KITH_MAX_HELLOS_PER_SECOND", default_value_t = MAX_HELLOS_PER_SECOND)]
    pub max_hellos_per_second: u64,
    /// Most identity notes one author key may have held at once; a note that would make more
    /// gets `quota_exceeded`. At least 1 (HS-56).
    #[arg(long, env = "KITH_MAX_NOTES", default_value_t = MAX_NOTES)]
    pub max_notes: u64,
    /// Most counted bytes (canonical form, `sig` included) of one author key's held notes; a
    /// note that would pass it gets `quota_exceeded`. At least 16384 (HS-56).
    #[arg(long, env = "KITH_MAX_NOTE_BYTES", default_value_t = MAX_NOTE_BYTES)]
    pub max_note_bytes: u64,
    /// Most keys in one account's follow set; a `follow` of a new key beyond it gets
    /// `quota_exceeded`. At least 1 (HS-56).
    #[arg(long, env = "KITH_MAX_FOLLOWS", default_value_t = MAX_FOLLOWS)]
    pub max_follows: u64,
    /// Most filter items (authors + threads + mentions, summed) over one connection's live
    /// subscriptions; a `subscribe` that would pass it gets `invalid_request`. At least 1024
    /// (HS-57).
    #[arg(long, env = "KITH_MAX_FILTER_ITEMS", default_value_t = MAX_FILTER_ITEMS)]
    pub max_filter_items: u64,
    /// Most filter items over all connections' live subscriptions; a `subscribe` that would
    /// pass it gets `busy`. At least 4 × max_connections_per_address × max_filter_items (HS-57),
    /// which is also the default when larger than 1048576.
    #[arg(long, env = "KITH_MAX_TOTAL_FILTER_ITEMS")]
    pub max_total_filter_items: Option<u64>,
    /// Break exactly one spec rule (`list` prints the faults and exits).
    #[cfg(feature = "faults")]
    #[arg(long, env = "KITH_FAULT")]
    pub fault: Option<String>,
}

/// Shared state of a running node.
pub(crate) struct Ctx {
    pub node_key: SecretKey,
    pub node_pub: PublicKey,
    pub name: String,
    pub store: Arc<store::Store>,
    pub hub: Arc<hub::Hub>,
    pub writer: mpsc::Sender<writer::Cmd>,
    pub limits: Limits,
    pub handshake_timeout: Duration,
    pub faults: fault::Faults,
    /// The counts of open and of not yet welcomed connections ([FRAME-42], [FRAME-43]).
    pub admission: Arc<limits::Admission>,
    /// Bytes queued for sending over all connections.
    pub queued_total: Arc<std::sync::atomic::AtomicUsize>,
    next_conn: AtomicU64,
    conns: Mutex<BTreeMap<u64, hub::Outbox>>,
}

impl Ctx {
    pub(crate) fn next_conn(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn add_conn(&self, ob: &hub::Outbox) {
        self.conns.lock().unwrap_or_else(|p| p.into_inner()).insert(ob.conn(), ob.clone());
    }

    pub(crate) fn remove_conn(&self, conn: u64) {
        self.conns.lock().unwrap_or_else(|p| p.into_inner()).remove(&conn);
    }

    fn all_conns(&self) -> Vec<hub::Outbox> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    pub(crate) fn node_info_text(&self, id: RequestId) -> String {
        ServerFrame::NodeInfoOk(NodeInfoOk {
            id,
            node: Some(self.node_pub)
                .filter(|_| !self.faults.has(fault::Fault::NodeInfoWrongKey))
                .or_else(wrong_node_key)
                .unwrap_or(self.node_pub),
            name: self.name.clone(),
            versions: {
                let mut v: Vec<String> = SUPPORTED_VERSIONS.iter().map(|v| (*v).to_owned()).collect();
                if self.faults.has(fault::Fault::VersionsTwice) {
                    v.extend(SUPPORTED_VERSIONS.iter().map(|v| (*v).to_owned()));
                }
                v
            },
            features: Vec::new(),
            limits: {
                let mut limits = self.limits.clone();
                if self.faults.has(fault::Fault::ReportShortHandshakeTimeout) {
                    // The fault: a value below the spec's floor ([HS-8]).
                    limits.handshake_timeout_ms = 999;
                }
                if self.faults.has(fault::Fault::ReportSmallTotalFilterItems) {
                    // The fault: a node-wide bound that one address could fill ([HS-57]).
                    limits.max_total_filter_items = limits.min_total_filter_items().saturating_sub(1);
                }
                limits
            },
        })
        .to_text()
    }
}

/// The key the fault node-info-wrong-key reports: the Ed25519 base point, a valid key that is
/// not this node's ([HS-5]).
fn wrong_node_key() -> Option<kith_proto::PublicKey> {
    let mut b = [0x66u8; 32];
    b[0] = 0x58;
    kith_proto::PublicKey::from_bytes_checked(b).ok()
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Where the node's key came from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Read from (or created in) this file.
    File(PathBuf),
    /// Drawn at random for an in-memory node; kept nowhere.
    Ephemeral,
}

/// A node that is accepting connections.
#[derive(Debug)]
pub struct RunningNode {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The node key (also the admin's user key).
    pub node_key: PublicKey,
    /// Where the key is kept.
    pub key_source: KeySource,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), NodeError>>,
}

impl RunningNode {
    /// Shuts the node down gracefully and waits for it: stop accepting, close every connection
    /// with `closing shutting_down`, let the writer finish what is queued, close the store.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let _ = self.stop.send(true);
        self.task.await.map_err(|e| NodeError::Config(format!("node task failed: {e}")))?
    }

    /// Waits until the node stops by itself (it does not, unless told to).
    pub async fn wait(self) -> Result<(), NodeError> {
        self.task.await.map_err(|e| NodeError::Config(format!("node task failed: {e}")))?
    }

    /// A handle that shuts the node down when sent `true`.
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

fn read_seed(path: &Path) -> Result<SecretKey, NodeError> {
    let text = std::fs::read_to_string(path)?;
    let hex = text.strip_suffix('\n').unwrap_or(&text);
    let seed = decode_hex::<32>(hex)
        .map_err(|e| NodeError::Config(format!("{}: not 64 lowercase hex characters: {e}", path.display())))?;
    Ok(SecretKey::from_seed(seed))
}

fn write_seed(path: &Path, key: &SecretKey) -> Result<(), NodeError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(format!("{}\n", encode_hex(&key.seed())).as_bytes())?;
    f.sync_all()?;
    Ok(())
}

fn load_key(args: &NodeArgs) -> Result<(SecretKey, KeySource), NodeError> {
    if let Some(p) = &args.peer_seed_file {
        return Ok((read_seed(p)?, KeySource::File(p.clone())));
    }
    if args.memory {
        return Ok((SecretKey::random(), KeySource::Ephemeral));
    }
    let p = args.data_dir.join("peer.key");
    if p.exists() {
        return Ok((read_seed(&p)?, KeySource::File(p)));
    }
    let key = SecretKey::random();
    write_seed(&p, &key)?;
    Ok((key, KeySource::File(p)))
}

#[cfg(feature = "faults")]
fn faults_of(args: &NodeArgs) -> Result<fault::Faults, NodeError> {
    match args.fault.as_deref() {
        None => Ok(fault::Faults::NONE),
        Some(name) => fault::Fault::from_name(name)
            .map(fault::Faults::one)
            .ok_or_else(|| NodeError::Config(format!("unknown fault {name:?}; `--fault list` lists them"))),
    }
}

#[cfg(not(feature = "faults"))]
fn faults_of(_: &NodeArgs) -> Result<fault::Faults, NodeError> {
    Ok(fault::Faults::NONE)
}

/// The limits the flags give, or why the node refuses to start with them: each limit must be
/// one the spec lets a node report ([`Limits::violations`]: HS-6 to HS-11, HS-52 to HS-57,
/// PRUNE-2, and the `U53` range).
fn limits_of(args: &NodeArgs) -> Result<Limits, NodeError> {
    let limits = Limits {
        max_frame_bytes: MAX_FRAME_BYTES as u64,
        max_entry_bytes: kith_proto::entry::MAX_ENTRY_BYTES as u64,
        handshake_timeout_ms: args.handshake_timeout_ms,
        max_backfill: args.max_backfill,
        max_replicate: args.max_replicate,
        storage_bytes: args.storage_bytes,
        max_subscriptions: args.max_subscriptions,
        max_nesting_depth: kith_proto::frame::MAX_FRAME_DEPTH as u64,
        max_connections_per_address: args.max_connections_per_address,
        max_pending_handshakes: args.max_pending_handshakes,
        max_requests_per_second: args.max_requests_per_second,
        max_queued_bytes: args.max_queued_bytes,
        max_notes: args.max_notes,
        max_note_bytes: args.max_note_bytes,
        max_follows: args.max_follows,
        max_filter_items: args.max_filter_items,
        max_total_filter_items: 0,
    };
    let limits = Limits {
        max_total_filter_items: args
            .max_total_filter_items
            .unwrap_or_else(|| limits.min_total_filter_items().max(MIN_DEFAULT_TOTAL_FILTER_ITEMS)),
        ..limits
    };
    // The core says which values a node may report; each maps to the flag that sets it.
    if let Err(e) = limits.validate() {
        return Err(NodeError::Config(format!("--{}: {e}", e.member.replace('_', "-"))));
    }
    if args.max_hellos_per_second < 1 {
        return Err(NodeError::Config(
            "--max-hellos-per-second 0 must be at least 1 (a rate of 0 would process no hello)".into(),
        ));
    }
    Ok(limits)
}

/// Opens the store, binds the listener and starts serving; returns once connections are
/// accepted.
pub async fn start(args: NodeArgs) -> Result<RunningNode, NodeError> {
    let limits = limits_of(&args)?;
    raise_fd_limit();
    let faults = faults_of(&args)?;
    if !args.memory {
        std::fs::create_dir_all(&args.data_dir)?;
    }
    let (node_key, key_source) = load_key(&args)?;
    let node_pub = node_key.public();
    let db_path = args.data_dir.join("kith.redb");
    let store = Arc::new(store::Store::open(if args.memory { None } else { Some(db_path.as_path()) }, &node_pub)?);
    let hub = Arc::new(hub::Hub::default());
    let (wtx, wrx) = mpsc::channel(4096);
    let (fanout_tx, fanout_rx) = std::sync::mpsc::sync_channel(writer::FANOUT_QUEUE);
    let fanout_hub = hub.clone();
    let fanout_task = tokio::task::spawn_blocking(move || {
        writer::run_fanout(fanout_hub, fanout_rx, faults.has(fault::Fault::EventPerList))
    });
    let w = writer::Writer::new(store.clone(), hub.clone(), args.storage_bytes, faults, node_pub, fanout_tx);
    w.prune_at_start().map_err(|e| NodeError::Config(format!("pruning at start: {e}")))?;
    let writer_task = tokio::task::spawn_blocking(move || w.run(wrx));
    let listener = TcpListener::bind(&args.listen).await?;
    let addr = listener.local_addr()?;
    let ctx = Arc::new(Ctx {
        node_key,
        node_pub,
        name: args.name.clone(),
        store,
        hub,
        writer: wtx,
        admission: Arc::new(
            limits::Admission::new(
                limits.max_connections_per_address,
                limits.max_pending_handshakes,
                faults.has(fault::Fault::NoConnectionLimit),
                faults.has(fault::Fault::NoHandshakeLimit),
                args.max_hellos_per_second,
            )
            .ignoring_upgrade_limit(faults.has(fault::Fault::NoUpgradeLimit)),
        ),
        limits,
        handshake_timeout: Duration::from_millis(args.handshake_timeout_ms),
        faults,
        queued_total: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        next_conn: AtomicU64::new(1),
        conns: Mutex::new(BTreeMap::new()),
    });
    let (stop, mut stop_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut reserve = FdReserve::open();
        loop {
            tokio::select! {
                r = listener.accept() => match r {
                    Ok((tcp, peer)) => match ctx.admission.start_upgrade(peer.ip()) {
                        Some(upgrading) => {
                            tokio::spawn(conn::serve_conn(ctx.clone(), tcp, peer.ip(), upgrading));
                        }
                        // [FRAME-51]: ended at once, nothing read or answered.
                        None => drop(tcp),
                    },
                    Err(e) if is_out_of_fds(&e) => reserve.shed(&listener, &e).await,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = stopped(&mut stop_rx) => break,
            }
        }
        drop(listener);
        tracing::info!("shutting down");
        for ob in ctx.all_conns() {
            // The fault shutdown-close-1000 uses the wrong close code ([FRAME-29]).
            let code = if ctx.faults.has(fault::Fault::ShutdownClose1000) { 1000 } else { 1001 };
            ob.closing(ErrorCode::ShuttingDown, "the node is shutting down", code);
        }
        let _ = ctx.writer.send(writer::Cmd::Shutdown).await;
        writer_task.await.map_err(|e| NodeError::Config(format!("writer failed: {e}")))?;
        fanout_task.await.map_err(|e| NodeError::Config(format!("fan-out failed: {e}")))?;
        // Give connection tasks a moment to flush their `closing` frames.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    });
    Ok(RunningNode { addr, node_key: node_pub, key_source, stop, task })
}

/// Raises the soft limit on open files to the hard limit, so that the node's own bounds on
/// connections, not the shell's default of 1024, decide how many sockets it holds.
fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!("open files limit: {n}"),
        Err(e) => tracing::warn!("could not raise the open files limit: {e}"),
    }
}

/// Whether an accept failed because the process or the system is out of file descriptors.
fn is_out_of_fds(e: &std::io::Error) -> bool {
    // EMFILE and ENFILE on Linux and the BSDs.
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// One file descriptor kept in reserve: when descriptors run out, the accept loop gives it up
/// to accept the waiting connection and close it at once, instead of leaving it in the backlog
/// and failing the same accept every time round (a busy loop that starves everyone).
struct FdReserve {
    file: Option<std::fs::File>,
    /// When the last warning was logged (one a second at most).
    warned: Option<tokio::time::Instant>,
}

impl FdReserve {
    fn open() -> Self {
        FdReserve { file: Self::reopen(), warned: None }
    }

    fn reopen() -> Option<std::fs::File> {
        std::fs::File::open(if cfg!(unix) { "/dev/null" } else { "NUL" }).ok()
    }

    /// Out of descriptors: frees the reserve, accepts and closes one waiting connection, takes
    /// the reserve back.
    async fn shed(&mut self, listener: &TcpListener, e: &std::io::Error) {
        let now = tokio::time::Instant::now();
        if self.warned.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
            tracing::warn!("accept failed: {e}; closing connections until descriptors are free");
            self.warned = Some(now);
        }
        self.file = None;
        match tokio::time::timeout(Duration::from_millis(10), listener.accept()).await {
            Ok(Ok((tcp, _))) => drop(tcp),
            // Still out (another part of the node took the descriptor): wait a little.
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
        self.file = Self::reopen();
    }
}

/// Resolves once `true` is sent.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs a node until SIGINT or SIGTERM. Prints the node key, the admin's key file and then
/// exactly one line `listening ws://ADDR/` on stdout when ready.
pub async fn serve(args: NodeArgs) -> Result<(), NodeError> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log))
        .with_writer(std::io::stderr)
        .try_init();
    #[cfg(feature = "faults")]
    if args.fault.as_deref() == Some("list") {
        fault::print_table();
        return Ok(());
    }
    let node = start(args).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "node key: {}", node.node_key)?;
        match &node.key_source {
            KeySource::File(p) => writeln!(out, "admin key file: {}", p.display())?,
            KeySource::Ephemeral => writeln!(out, "admin key file: none (in-memory node without --peer-seed-file)")?,
        }
        writeln!(out, "listening ws://{}/", node.addr)?;
        out.flush()?;
    }
    let stop = node.stopper();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    node.wait().await
}
