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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use kith_conformance::client::counted_id;
use kith_conformance::host::{date_utc, machine, status_kib};
use kith_conformance::launch::{read_seed_file, LaunchedNode, NodeConfig, Template};
use kith_proto::account::{AccountName, CreateUser};
use kith_proto::canonical::CanonicalValue;
use kith_proto::cert::Certificate;
use kith_proto::entry::{EntryDraft, Kind};
use kith_proto::feed::{Filter, Heads, Publish, Subscribe};
use kith_proto::handshake::{ClientConfig, ClientHandshake, ServerHandshake};
use kith_proto::version::PROTOCOL_VERSION;
use kith_proto::{ClientFrame, Entry, PublicKey, RequestId, SecretKey, ServerFrame};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Res<T> = Result<T, String>;

/// How long any single answer may take before the run is declared failed.
const ANSWER_WAIT: Duration = Duration::from_secs(30);
/// A publish allowance large enough never to run out during a run.
const BIG_ALLOWANCE: u64 = 1_000_000_000_000;

/// Which part of the measurement to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Scenario {
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
struct Cli {
    /// Drive this already running node (ws://HOST:PORT/) instead of launching one.
    #[arg(long)]
    url: Option<String>,
    /// The admin's (node's) seed file, needed with --url to create the load's users.
    #[arg(long)]
    peer_seed_file: Option<PathBuf>,
    /// With --url: the node's process id, to read its CPU time and memory from /proc.
    #[arg(long)]
    node_pid: Option<u32>,
    /// The node binary to launch (default: `kith-node` next to this executable).
    #[arg(long)]
    node_bin: Option<PathBuf>,
    /// Extra flags for the launched node (e.g. "--memory").
    #[arg(long, default_value = "")]
    node_args: String,
    /// Storage budget of the launched node for handshake/ingest/deliver, in bytes.
    #[arg(long, default_value_t = 1 << 30)]
    storage_bytes: u64,
    /// Scenarios to run, in this order (repeat or comma-separate).
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["handshake", "ingest", "deliver"])]
    scenario: Vec<Scenario>,
    /// Pin the launched node to core 0 and the generator to core 1.
    #[arg(long)]
    pin: bool,
    /// Run every launched-node scenario twice, unpinned and pinned, and print both.
    #[arg(long)]
    compare_pinning: bool,

    /// handshake: connections to open, handshake and close.
    #[arg(long, default_value_t = 2000)]
    connections: usize,
    /// handshake: how many handshakes run at once.
    #[arg(long, default_value_t = 32)]
    handshake_concurrency: usize,

    /// ingest: publishing connections, one author each.
    #[arg(long, default_value_t = 16)]
    publishers: usize,
    /// ingest: entries per publisher.
    #[arg(long, default_value_t = 2000)]
    entries: usize,
    /// Publishes each publisher keeps unacknowledged (pipelining).
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// ingest: subscribers following every publisher during the ingest run.
    #[arg(long, default_value_t = 0)]
    subscribers: usize,

    /// deliver: publishing authors.
    #[arg(long, default_value_t = 100)]
    deliver_publishers: usize,
    /// deliver: subscriber connections.
    #[arg(long, default_value_t = 1000)]
    deliver_subscribers: usize,
    /// deliver: authors each subscriber follows.
    #[arg(long, default_value_t = 10)]
    follow: usize,
    /// deliver: total entries per second (default: half the ingest peak of this run, else 500).
    #[arg(long)]
    deliver_rate: Option<f64>,
    /// deliver: seconds of publishing.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,

    /// prune: the node's storage budget in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    prune_budget: u64,
    /// prune: entries published in all (many times the budget).
    #[arg(long, default_value_t = 60_000)]
    prune_entries: usize,

    /// memory: stored-entry counts at which to read the node's memory.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000u64, 100_000])]
    memory_checkpoints: Vec<u64>,

    /// The server side's curve work per handshake in microseconds, from `cargo bench --bench
    /// core -- "server curve"`; without it the whole server-side state machine, measured here,
    /// stands in (a slightly kinder reference).
    #[arg(long)]
    hs_curve_us: Option<f64>,

    /// Write every figure as JSON to this file too.
    #[arg(long)]
    json: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------------------
// Small helpers: time, statistics, /proc.

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn random_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    b
}

fn fresh_name(prefix: &str) -> String {
    let b = random_bytes();
    let hex: String = b[..6].iter().map(|x| format!("{x:02x}")).collect();
    format!("{prefix}{hex}")
}

/// Percentiles of a latency sample, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
struct Latency {
    count: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Latency {
    fn of(mut micros: Vec<u32>) -> Latency {
        if micros.is_empty() {
            return Latency::default();
        }
        micros.sort_unstable();
        let at = |q: f64| {
            let i = ((micros.len() as f64) * q) as usize;
            f64::from(micros[i.min(micros.len() - 1)]) / 1000.0
        };
        Latency { count: micros.len(), p50_ms: at(0.50), p99_ms: at(0.99), max_ms: at(1.0) }
    }
}

fn micros_since(t: Instant) -> u32 {
    t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32
}

/// CPU seconds (user + system) and memory of a process, from /proc.
#[derive(Debug, Clone, Copy, Default)]
struct ProcSample {
    cpu_s: f64,
    rss_kib: u64,
    hwm_kib: u64,
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

fn proc_sample(pid: Option<u32>, ticks: f64) -> Option<ProcSample> {
    let base = match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".to_owned(),
    };
    let stat = std::fs::read_to_string(format!("{base}/stat")).ok()?;
    // The command name may contain spaces; fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("{base}/status")).ok()?;
    let kib = |name: &str| status_kib(&status, name);
    Some(ProcSample { cpu_s: (utime + stime) / ticks, rss_kib: kib("VmRSS:"), hwm_kib: kib("VmHWM:") })
}

/// CPU seconds of the node and of this generator over a phase.
#[derive(Debug, Clone, Copy)]
struct CpuMeter {
    node_pid: Option<u32>,
    ticks: f64,
    node0: Option<ProcSample>,
    gen0: Option<ProcSample>,
    t0: Instant,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
struct CpuUse {
    wall_s: f64,
    node_cpu_s: Option<f64>,
    generator_cpu_s: Option<f64>,
    node_rss_mib: Option<f64>,
    node_peak_rss_mib: Option<f64>,
}

impl CpuMeter {
    fn start(node_pid: Option<u32>, ticks: f64) -> Self {
        CpuMeter {
            node_pid,
            ticks,
            node0: node_pid.and_then(|p| proc_sample(Some(p), ticks)),
            gen0: proc_sample(None, ticks),
            t0: Instant::now(),
        }
    }

    fn stop(&self) -> CpuUse {
        let wall_s = self.t0.elapsed().as_secs_f64();
        let node1 = self.node_pid.and_then(|p| proc_sample(Some(p), self.ticks));
        let gen1 = proc_sample(None, self.ticks);
        CpuUse {
            wall_s,
            node_cpu_s: self.node0.zip(node1).map(|(a, b)| b.cpu_s - a.cpu_s),
            generator_cpu_s: self.gen0.zip(gen1).map(|(a, b)| b.cpu_s - a.cpu_s),
            node_rss_mib: node1.map(|s| s.rss_kib as f64 / 1024.0),
            node_peak_rss_mib: node1.map(|s| s.hwm_kib as f64 / 1024.0),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The verify ceiling: this machine's strict-verify rate, measured in the same run.

/// The cost of the curve work that bounds a node on this machine.
#[derive(Debug, Clone, Copy, Serialize)]
struct Ceiling {
    cores: usize,
    /// One strict verification of a typical entry's signing bytes, on one core.
    verify_us: f64,
    /// Strict verifications per second on one core.
    verify_per_core: f64,
    /// Strict verifications per second with one thread per core.
    verify_all_cores: f64,
    /// The server side of a handshake, whole (`ServerHandshake` new + hello + auth).
    hs_server_us: f64,
    /// Only its curve work (2 strict verifications, 1 signature, X25519 key generation and
    /// agreement), as `cargo bench` measures it, given by `--hs-curve-us`; else the whole
    /// server side above stands in for it.
    hs_curve_us: f64,
}

fn sample_entry() -> (PublicKey, Vec<u8>, kith_proto::Signature) {
    let author = SecretKey::from_seed([1; 32]);
    let e = EntryDraft::first(now_ms())
        .text(&"a typical short post of about two hundred characters. ".repeat(4))
        .sign(&author);
    (e.author, e.signing_bytes(), e.sig)
}

fn time_per_op(mut op: impl FnMut(), min: Duration) -> f64 {
    // Warm up, then time rounds until `min` has passed; the fastest round stands for the
    // machine (the others were disturbed by something else).
    for _ in 0..50 {
        op();
    }
    let start = Instant::now();
    let mut best = f64::INFINITY;
    while start.elapsed() < min {
        let t = Instant::now();
        for _ in 0..200 {
            op();
        }
        best = best.min(t.elapsed().as_secs_f64() / 200.0);
    }
    best * 1e6
}

fn measure_ceiling(hs_curve_us: Option<f64>) -> Ceiling {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (key, message, sig) = sample_entry();
    let verify_us = time_per_op(
        || {
            let _ = std::hint::black_box(key.verify_strict(&message, &sig));
        },
        Duration::from_millis(1500),
    );
    // Rounds of one thread per core; the best round stands for the machine, as above.
    let round = Duration::from_millis(250);
    let mut verify_all_cores = 0f64;
    for _ in 0..6 {
        let counts: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..cores)
                .map(|_| {
                    s.spawn(|| {
                        let start = Instant::now();
                        let mut n = 0u64;
                        while start.elapsed() < round {
                            for _ in 0..20 {
                                let _ = std::hint::black_box(key.verify_strict(&message, &sig));
                            }
                            n += 20;
                        }
                        (n, start.elapsed())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().map_or(0, |(n, t)| (n as f64 / t.as_secs_f64()) as u64)).collect()
        });
        verify_all_cores = verify_all_cores.max(counts.iter().sum::<u64>() as f64);
    }

    let node = SecretKey::from_seed([10; 32]);
    let user = SecretKey::from_seed([11; 32]);
    let peer = SecretKey::from_seed([12; 32]);
    let now = now_ms();
    let cert = Certificate::issue(&user, peer.public(), now + 24 * 3_600_000);
    let config = ClientConfig {
        peer: peer.clone(),
        cert: cert.clone(),
        expected_node: node.public(),
        version: PROTOCOL_VERSION.into(),
    };
    let (mut client, hello) = ClientHandshake::start(config, [21; 32], RequestId::small(1));
    let mut server = ServerHandshake::new(node.clone(), [22; 32]);
    let ch = server.handle_hello(&hello, now);
    let auth = ch.ok().and_then(|ch| client.handle_challenge(&ch, RequestId::small(2)).ok());
    let hs_server_us = match auth {
        Some(auth) => time_per_op(
            || {
                let mut s = ServerHandshake::new(node.clone(), [22; 32]);
                let _ = std::hint::black_box(s.handle_hello(&hello, now));
                let _ = std::hint::black_box(s.handle_auth(&auth));
            },
            Duration::from_millis(800),
        ),
        None => f64::NAN,
    };
    Ceiling {
        cores,
        verify_us,
        verify_per_core: 1e6 / verify_us,
        verify_all_cores,
        hs_server_us,
        hs_curve_us: hs_curve_us.unwrap_or(hs_server_us),
    }
}

// ---------------------------------------------------------------------------------------------
// The client side: connecting, the handshake, users.

async fn connect(url: &str) -> Res<Ws> {
    let (ws, _) = tokio::time::timeout(ANSWER_WAIT, tokio_tungstenite::connect_async_with_config(url, None, true))
        .await
        .map_err(|_| format!("no websocket from {url} within {ANSWER_WAIT:?}"))?
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    Ok(ws)
}

async fn recv_text(ws: &mut Ws) -> Res<String> {
    loop {
        let next = tokio::time::timeout(ANSWER_WAIT, ws.next()).await.map_err(|_| "no answer in time".to_owned())?;
        match next {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Close(f))) => return Err(format!("node closed the connection: {f:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("websocket: {e}")),
            None => return Err("connection ended".into()),
        }
    }
}

async fn send_text(ws: &mut Ws, text: String) -> Res<()> {
    ws.send(Message::text(text)).await.map_err(|e| format!("websocket send: {e}"))
}

async fn recv_frame(ws: &mut Ws) -> Res<ServerFrame> {
    let text = recv_text(ws).await?;
    ServerFrame::parse(&text).map_err(|e| format!("bad frame from node: {e}: {text}"))
}

/// A user's key with a peer key it blessed: what logging in needs.
#[derive(Clone)]
struct Identity {
    peer: SecretKey,
    cert: Certificate,
}

impl Identity {
    fn new(user: SecretKey) -> Self {
        let peer = SecretKey::from_seed(random_bytes());
        let cert = Certificate::issue(&user, peer.public(), now_ms() + 24 * 3_600_000);
        Identity { peer, cert }
    }

    fn start(&self, node: PublicKey) -> (ClientHandshake, String) {
        let config = ClientConfig {
            peer: self.peer.clone(),
            cert: self.cert.clone(),
            expected_node: node,
            version: PROTOCOL_VERSION.into(),
        };
        let (hs, hello) = ClientHandshake::start(config, random_bytes(), RequestId::small(1));
        (hs, ClientFrame::Hello(hello).to_text())
    }
}

/// Runs the rest of a handshake begun with [`Identity::start`].
async fn finish_login(ws: &mut Ws, mut hs: ClientHandshake, hello: String) -> Res<()> {
    send_text(ws, hello).await?;
    let challenge = match recv_frame(ws).await? {
        ServerFrame::Challenge(c) => c,
        other => return Err(format!("expected challenge, got {}", other.to_text())),
    };
    let auth = hs.handle_challenge(&challenge, RequestId::small(2)).map_err(|e| format!("handshake: {e}"))?;
    send_text(ws, ClientFrame::Auth(auth).to_text()).await?;
    match recv_frame(ws).await? {
        ServerFrame::Welcome(_) => Ok(()),
        other => Err(format!("expected welcome, got {}", other.to_text())),
    }
}

async fn login(url: &str, node: PublicKey, id: &Identity) -> Res<Ws> {
    let mut ws = connect(url).await?;
    let (hs, hello) = id.start(node);
    finish_login(&mut ws, hs, hello).await?;
    Ok(ws)
}

/// The admin's session, which creates the load's users.
struct Admin {
    ws: Ws,
    next_id: u64,
}

impl Admin {
    async fn open(url: &str, admin: &SecretKey) -> Res<Admin> {
        let ws = login(url, admin.public(), &Identity::new(admin.clone())).await?;
        Ok(Admin { ws, next_id: 10 })
    }

    /// Creates `n` users with fresh keys, pipelining the requests.
    async fn create_users(&mut self, n: usize, prefix: &str) -> Res<Vec<SecretKey>> {
        let keys: Vec<SecretKey> = (0..n).map(|_| SecretKey::from_seed(random_bytes())).collect();
        for chunk in keys.chunks(64) {
            for k in chunk {
                self.next_id += 1;
                let name = AccountName::new(fresh_name(prefix)).map_err(|e| format!("account name: {e}"))?;
                let frame = ClientFrame::CreateUser(CreateUser {
                    id: counted_id(self.next_id),
                    key: k.public(),
                    name,
                    invite_allowance: 0,
                    publish_allowance: BIG_ALLOWANCE,
                });
                self.ws.feed(Message::text(frame.to_text())).await.map_err(|e| format!("websocket send: {e}"))?;
            }
            self.ws.flush().await.map_err(|e| format!("websocket send: {e}"))?;
            for _ in chunk {
                match recv_frame(&mut self.ws).await? {
                    ServerFrame::CreateUserOk(_) => {}
                    other => return Err(format!("create_user refused: {}", other.to_text())),
                }
            }
        }
        Ok(keys)
    }

    /// Counted bytes the node holds of these feeds: per feed, the entries in
    /// (pruned_through, head seq], whose canonical sizes `sizes[feed][seq - 1]` are known.
    async fn stored_bytes(&mut self, authors: &[PublicKey], sizes: &[Vec<usize>]) -> Res<u64> {
        self.next_id += 1;
        let frame = ClientFrame::Heads(Heads { id: counted_id(self.next_id), authors: authors.to_vec() });
        send_text(&mut self.ws, frame.to_text()).await?;
        let heads = match recv_frame(&mut self.ws).await? {
            ServerFrame::HeadsOk(h) => h.heads,
            other => return Err(format!("heads refused: {}", other.to_text())),
        };
        let mut total = 0u64;
        for h in heads {
            let Some(i) = authors.iter().position(|a| *a == h.author) else { continue };
            let held = sizes[i].get(h.pruned_through as usize..h.seq as usize).unwrap_or(&[]);
            total += held.iter().map(|&s| s as u64).sum::<u64>();
        }
        Ok(total)
    }
}

// ---------------------------------------------------------------------------------------------
// Entries, pre-signed before any timed phase.

/// One author's feed, signed in advance: publish frames and canonical sizes.
struct Feed {
    author: SecretKey,
    frames: Vec<String>,
    sizes: Vec<usize>,
}

/// The body of a typical short post (about 200 characters).
fn post_text(author: usize, seq: u64) -> String {
    let mut t = format!("post {seq} by author {author}: ");
    while t.len() < 200 {
        t.push_str("small nodes carry whole communities. ");
    }
    t.truncate(200);
    t
}

/// Signs entries `first_seq..first_seq + n` of `author`'s feed, continuing after `prev`
/// (the entry at `first_seq - 1`, if any).
fn sign_feed(
    author: &SecretKey,
    index: usize,
    prev: Option<&Entry>,
    first_seq: u64,
    n: usize,
) -> (Vec<String>, Vec<usize>, Option<Entry>) {
    let mut frames = Vec::with_capacity(n);
    let mut sizes = Vec::with_capacity(n);
    let mut prev: Option<Entry> = prev.cloned();
    let kind = Kind::new("post").ok();
    for i in 0..n as u64 {
        let seq = first_seq + i;
        let timestamp = now_ms().max(prev.as_ref().map_or(0, |p| p.timestamp));
        let mut content = kith_proto::canonical::CanonicalObject::new();
        content.insert("text".into(), CanonicalValue::string(post_text(index, seq)));
        let draft = EntryDraft {
            seq,
            prev: prev.as_ref().map(Entry::id),
            timestamp,
            kind: kind.clone().unwrap_or_else(|| EntryDraft::first(0).kind),
            content,
            mentions: Vec::new(),
            refs: Vec::new(),
        };
        let entry = draft.sign(author);
        sizes.push(entry.canonical_bytes().len());
        frames.push(ClientFrame::Publish(Publish { id: counted_id(seq), entry: entry.clone() }).to_text());
        prev = Some(entry);
    }
    (frames, sizes, prev)
}

/// Signs `per_author` entries for each author, spread over every core.
fn sign_feeds(authors: &[SecretKey], per_author: usize) -> Vec<Feed> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = authors.len().div_ceil(cores).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = authors
            .chunks(chunk)
            .enumerate()
            .map(|(c, keys)| {
                s.spawn(move || {
                    keys.iter()
                        .enumerate()
                        .map(|(i, k)| {
                            let (frames, sizes, _) = sign_feed(k, c * chunk + i, None, 1, per_author);
                            Feed { author: k.clone(), frames, sizes }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

// ---------------------------------------------------------------------------------------------
// Publishing and subscribing.

/// When each entry was sent, by author and seq, for delivery latency.
struct Stamps {
    epoch: Instant,
    /// By the author key's hex form, as events carry it (decoding a key would cost a curve
    /// point decompression per event).
    authors: BTreeMap<String, usize>,
    sent_ns: Vec<Vec<AtomicU64>>,
    /// Events received by every subscriber together.
    delivered: AtomicU64,
}

impl Stamps {
    fn new(feeds: &[Feed]) -> Self {
        Stamps {
            epoch: Instant::now(),
            authors: feeds.iter().enumerate().map(|(i, f)| (f.author.public().to_string(), i)).collect(),
            sent_ns: feeds.iter().map(|f| (0..=f.frames.len()).map(|_| AtomicU64::new(0)).collect()).collect(),
            delivered: AtomicU64::new(0),
        }
    }

    /// Waits until `expected` events have arrived in all, or `patience` has passed.
    async fn await_delivered(&self, expected: u64, patience: Duration) {
        let deadline = Instant::now() + patience;
        while self.delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn mark(&self, author: usize, seq: usize, at: Instant) {
        if let Some(slot) = self.sent_ns.get(author).and_then(|v| v.get(seq)) {
            slot.store(at.duration_since(self.epoch).as_nanos() as u64 + 1, Ordering::Relaxed);
        }
    }

    /// Microseconds since `(author, seq)` was sent.
    fn since_sent(&self, author_hex: &str, seq: usize, now: Instant) -> Option<u32> {
        let sent = self.sent_ns.get(*self.authors.get(author_hex)?)?.get(seq)?.load(Ordering::Relaxed);
        if sent == 0 {
            return None;
        }
        let now_ns = now.duration_since(self.epoch).as_nanos() as u64;
        Some((now_ns.saturating_sub(sent - 1) / 1000).min(u64::from(u32::MAX)) as u32)
    }
}

/// What a publisher saw.
#[derive(Debug, Default)]
struct PubStats {
    accepted: u64,
    duplicates: u64,
    errors: BTreeMap<String, u64>,
    ack_us: Vec<u32>,
    /// Longest time between two acks while publishes were outstanding.
    max_gap_us: u32,
    last_ack: Option<Instant>,
}

/// An answer to a publish, read without decoding the whole frame.
#[derive(Deserialize)]
struct AckLite<'a> {
    #[serde(rename = "type", borrow)]
    ty: &'a str,
    #[serde(default)]
    duplicate: bool,
    #[serde(default, borrow)]
    code: Option<&'a str>,
}

/// Publishes `frames` on `ws` keeping at most `in_flight` unacknowledged; with `pace`, entry i
/// is sent no earlier than `start + i * every`.
async fn publish(
    ws: Ws,
    frames: Vec<String>,
    in_flight: usize,
    pace: Option<(Instant, Duration)>,
    stamps: Option<(Arc<Stamps>, usize)>,
    first_seq: usize,
) -> Res<PubStats> {
    let (mut sink, mut stream) = ws.split();
    let sem = Semaphore::new(in_flight.max(1));
    let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
    let n = frames.len();
    let send = async {
        for (i, text) in frames.into_iter().enumerate() {
            if let Some((start, every)) = pace {
                let at = start + every.mul_f64(i as f64);
                if at > Instant::now() {
                    sink.flush().await.map_err(|e| format!("send: {e}"))?;
                    tokio::time::sleep_until(at.into()).await;
                }
            }
            let permit = match sem.try_acquire() {
                Ok(p) => p,
                Err(_) => {
                    sink.flush().await.map_err(|e| format!("send: {e}"))?;
                    sem.acquire().await.map_err(|e| format!("semaphore: {e}"))?
                }
            };
            permit.forget();
            let now = Instant::now();
            if let Some((s, a)) = &stamps {
                s.mark(*a, first_seq + i, now);
            }
            let _ = tx.send(now);
            sink.feed(Message::text(text)).await.map_err(|e| format!("send: {e}"))?;
        }
        sink.flush().await.map_err(|e| format!("send: {e}"))?;
        Ok::<_, String>(sink)
    };
    let recv = async {
        let mut stats = PubStats::default();
        let mut last = Instant::now();
        let mut got = 0;
        while got < n {
            let next =
                tokio::time::timeout(ANSWER_WAIT, stream.next()).await.map_err(|_| "no ack in time".to_owned())?;
            let text = match next {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(f))) => return Err(format!("node closed the publisher: {f:?}")),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(format!("websocket: {e}")),
                None => return Err("publisher connection ended".into()),
            };
            let now = Instant::now();
            let sent = rx.recv().await.ok_or("ack without a publish")?;
            got += 1;
            sem.add_permits(1);
            stats.ack_us.push(now.saturating_duration_since(sent).as_micros().min(u128::from(u32::MAX)) as u32);
            // A gap counts only while this ack's publish was already waiting.
            if sent < last {
                stats.max_gap_us = stats.max_gap_us.max(now.duration_since(last).as_micros() as u32);
            }
            last = now;
            let ack: AckLite<'_> = serde_json::from_str(text.as_str()).map_err(|e| format!("bad ack {e}: {text}"))?;
            match ack.ty {
                "publish_ok" if ack.duplicate => stats.duplicates += 1,
                "publish_ok" => stats.accepted += 1,
                "error" => *stats.errors.entry(ack.code.unwrap_or("?").to_owned()).or_default() += 1,
                other => return Err(format!("unexpected {other} among acks")),
            }
        }
        stats.last_ack = Some(last);
        Ok::<_, String>((stats, stream))
    };
    let (sent, received) = tokio::join!(send, recv);
    let sink = sent?;
    let (stats, stream) = received?;
    if let Ok(mut ws) = sink.reunite(stream) {
        let _ = ws.close(None).await;
    }
    Ok(stats)
}

/// An event push, read without decoding the entry.
#[derive(Deserialize)]
struct EventLite<'a> {
    #[serde(rename = "type", borrow)]
    ty: &'a str,
    #[serde(default, borrow)]
    entry: Option<EntryLite<'a>>,
}

#[derive(Deserialize)]
struct EntryLite<'a> {
    #[serde(borrow)]
    author: &'a str,
    seq: usize,
}

/// What a subscriber saw.
#[derive(Debug, Default)]
struct SubStats {
    events: u64,
    delivery_us: Vec<u32>,
    closed: Option<String>,
}

/// Subscribes to `authors` (no backfill) and reports readiness on `ready`.
async fn subscribe(ws: &mut Ws, authors: Vec<PublicKey>) -> Res<()> {
    let frame = ClientFrame::Subscribe(Subscribe {
        id: RequestId::small(10),
        filter: Filter { authors, ..Filter::default() },
        backfill: Some(0),
    });
    send_text(ws, frame.to_text()).await?;
    let mut ok = false;
    loop {
        match recv_frame(ws).await? {
            ServerFrame::SubscribeOk(_) => ok = true,
            ServerFrame::StoredEnd(_) if ok => return Ok(()),
            ServerFrame::StoredEnd(_) | ServerFrame::Event(_) => {}
            other => return Err(format!("subscribe refused: {}", other.to_text())),
        }
    }
}

/// Receives events until `stop`, recording each one's delivery latency.
async fn listen(mut ws: Ws, stamps: Arc<Stamps>, mut stop: watch::Receiver<bool>) -> SubStats {
    let mut stats = SubStats::default();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let now = Instant::now();
                    if let Ok(EventLite { ty: "event", entry: Some(e) }) = serde_json::from_str::<EventLite<'_>>(t.as_str()) {
                        stats.events += 1;
                        stamps.delivered.fetch_add(1, Ordering::Relaxed);
                        if let Some(us) = stamps.since_sent(e.author, e.seq, now) {
                            stats.delivery_us.push(us);
                        }
                    }
                }
                Some(Ok(Message::Close(f))) => { stats.closed = Some(format!("{f:?}")); break; }
                Some(Ok(_)) => {}
                Some(Err(e)) => { stats.closed = Some(e.to_string()); break; }
                None => { stats.closed = Some("ended".into()); break; }
            }
        }
    }
    let _ = ws.close(None).await;
    stats
}

// ---------------------------------------------------------------------------------------------
// The node under test.

/// A node to drive: launched here or given by URL.
struct Target {
    url: String,
    admin: SecretKey,
    pid: Option<u32>,
    data_dir: Option<PathBuf>,
    launched: Option<LaunchedNode>,
}

impl Target {
    fn node_key(&self) -> PublicKey {
        self.admin.public()
    }

    async fn stop(self) {
        if let Some(n) = self.launched {
            n.stop().await;
        }
    }

    /// Bytes the node's files take on disk.
    fn disk_bytes(&self) -> Option<u64> {
        fn walk(p: &Path) -> u64 {
            match std::fs::metadata(p) {
                Ok(m) if m.is_dir() => {
                    std::fs::read_dir(p).map(|d| d.flatten().map(|e| walk(&e.path())).sum()).unwrap_or(0)
                }
                Ok(m) => m.len(),
                Err(_) => 0,
            }
        }
        self.data_dir.as_deref().map(walk)
    }
}

/// The launched node's connection and rate limits (06 §8) and its hello pacing (HS-51), far
/// beyond what any scenario uses.
const GENEROUS_LIMITS: &[(&str, u64)] = &[
    ("--max-connections-per-address", 1_000_000),
    ("--max-pending-handshakes", 1_000_000),
    ("--max-requests-per-second", 1_000_000_000),
    ("--max-hellos-per-second", 1_000_000_000),
];

fn default_node_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("kith-node")))
        .unwrap_or_else(|| PathBuf::from("kith-node"))
}

async fn launch(cli: &Cli, storage_bytes: u64, pinned: bool) -> Res<Target> {
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
    let data_dir = node.seed_file().parent().map(|d| d.join("data"));
    Ok(Target {
        url: node.url().to_owned(),
        admin: node.admin().clone(),
        pid: Some(node.pid()),
        data_dir,
        launched: Some(node),
    })
}

/// Pins this process (every thread) to `cpus` (a taskset list), or undoes it.
fn pin_self(cpus: &str) -> Res<()> {
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

// ---------------------------------------------------------------------------------------------
// Scenarios.

#[derive(Debug, Clone, Serialize)]
struct HandshakeResult {
    connections: usize,
    concurrency: usize,
    failures: usize,
    per_second: f64,
    cpu: CpuUse,
    per_node_cpu_second: Option<f64>,
    /// per_node_cpu_second × the server side's curve cost: the target is at least 0.8.
    ratio_to_curve: Option<f64>,
    latency: Latency,
}

async fn run_handshakes(cli: &Cli, t: &Target, ceiling: &Ceiling, ticks: f64, who: &Identity) -> Res<HandshakeResult> {
    let node = t.node_key();
    let prepared: Vec<(ClientHandshake, String)> = (0..cli.connections).map(|_| who.start(node)).collect();
    let sem = Arc::new(Semaphore::new(cli.handshake_concurrency.max(1)));
    let meter = CpuMeter::start(t.pid, ticks);
    let mut tasks = Vec::with_capacity(prepared.len());
    for (hs, hello) in prepared {
        let sem = sem.clone();
        let url = t.url.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.map_err(|e| e.to_string())?;
            let start = Instant::now();
            let mut ws = connect(&url).await?;
            finish_login(&mut ws, hs, hello).await?;
            let us = micros_since(start);
            let _ = ws.close(None).await;
            Ok::<u32, String>(us)
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    let mut failures = 0;
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(us)) => lat.push(us),
            Ok(Err(e)) => {
                failures += 1;
                first_error.get_or_insert(e);
            }
            Err(e) => {
                failures += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let cpu = meter.stop();
    if let Some(e) = first_error {
        eprintln!("  handshake failures: {failures}, first: {e}");
    }
    let done = lat.len() as f64;
    let per_node_cpu_second = cpu.node_cpu_s.filter(|s| *s > 0.0).map(|s| done / s);
    Ok(HandshakeResult {
        connections: cli.connections,
        concurrency: cli.handshake_concurrency,
        failures,
        per_second: done / cpu.wall_s,
        cpu,
        per_node_cpu_second,
        ratio_to_curve: per_node_cpu_second.map(|h| h * ceiling.hs_curve_us / 1e6),
        latency: Latency::of(lat),
    })
}

#[derive(Debug, Clone, Serialize)]
struct IngestResult {
    publishers: usize,
    entries_per_publisher: usize,
    in_flight: usize,
    subscribers: usize,
    accepted: u64,
    duplicates: u64,
    errors: BTreeMap<String, u64>,
    accepted_per_second: f64,
    ack: Latency,
    max_ack_gap_ms: f64,
    cpu: CpuUse,
    /// accepted/s over the all-core strict-verify rate.
    ratio_to_verify_all_cores: f64,
    /// accepted/s over one core's strict-verify rate.
    ratio_to_verify_one_core: f64,
    /// accepted/s per node CPU-second, over one core's verify rate: t_verify × accepted /
    /// node CPU seconds.
    cpu_efficiency: Option<f64>,
    delivery: Option<Latency>,
}

/// Logs each feed's author in and publishes its frames; returns the merged stats.
async fn run_publishers(
    t: &Target,
    feeds: Vec<(Identity, Vec<String>)>,
    in_flight: usize,
    pace: Option<Duration>,
    stamps: Option<Arc<Stamps>>,
) -> Res<(PubStats, f64)> {
    let node = t.node_key();
    let mut sessions = Vec::with_capacity(feeds.len());
    for (id, frames) in feeds {
        sessions.push((login(&t.url, node, &id).await?, frames));
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    let n = sessions.len().max(1) as f64;
    for (i, (ws, frames)) in sessions.into_iter().enumerate() {
        let stamps = stamps.clone().map(|s| (s, i));
        // Paced publishers start spread over one period, not all at once.
        let pace = pace.map(|every| (start + every.mul_f64(i as f64 / n), every));
        tasks.push(tokio::spawn(publish(ws, frames, in_flight, pace, stamps, 1)));
    }
    let mut all = PubStats::default();
    let mut last = start;
    for task in tasks {
        let s = task.await.map_err(|e| e.to_string())??;
        all.accepted += s.accepted;
        all.duplicates += s.duplicates;
        for (k, v) in s.errors {
            *all.errors.entry(k).or_default() += v;
        }
        all.ack_us.extend(s.ack_us);
        all.max_gap_us = all.max_gap_us.max(s.max_gap_us);
        if let Some(l) = s.last_ack {
            last = last.max(l);
        }
    }
    Ok((all, last.duration_since(start).as_secs_f64()))
}

async fn run_ingest(cli: &Cli, t: &Target, ceiling: &Ceiling, ticks: f64) -> Res<IngestResult> {
    let mut admin = Admin::open(&t.url, &t.admin).await?;
    let users = admin.create_users(cli.publishers, "lp").await?;
    eprintln!("  signing {} x {} entries ...", cli.publishers, cli.entries);
    let feeds = sign_feeds(&users, cli.entries);
    let stamps = Arc::new(Stamps::new(&feeds));
    // Optional subscribers following every publisher.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut listeners = Vec::new();
    if cli.subscribers > 0 {
        let sub_user = admin.create_users(1, "ls").await?.remove(0);
        let who = Identity::new(sub_user);
        let authors: Vec<PublicKey> = users.iter().map(SecretKey::public).collect();
        for _ in 0..cli.subscribers {
            let mut ws = login(&t.url, t.node_key(), &who).await?;
            subscribe(&mut ws, authors.clone()).await?;
            listeners.push(tokio::spawn(listen(ws, stamps.clone(), stop_rx.clone())));
        }
    }
    let feeds: Vec<(Identity, Vec<String>)> = feeds.into_iter().map(|f| (Identity::new(f.author), f.frames)).collect();
    let meter = CpuMeter::start(t.pid, ticks);
    let (stats, secs) = run_publishers(t, feeds, cli.in_flight, None, Some(stamps.clone())).await?;
    let cpu = meter.stop();
    let delivery = if listeners.is_empty() {
        None
    } else {
        stamps.await_delivered(stats.accepted * cli.subscribers as u64, Duration::from_secs(60)).await;
        let _ = stop_tx.send(true);
        let mut lat = Vec::new();
        for l in listeners {
            lat.extend(l.await.map_err(|e| e.to_string())?.delivery_us);
        }
        Some(Latency::of(lat))
    };
    let rate = stats.accepted as f64 / secs;
    Ok(IngestResult {
        publishers: cli.publishers,
        entries_per_publisher: cli.entries,
        in_flight: cli.in_flight,
        subscribers: cli.subscribers,
        accepted: stats.accepted,
        duplicates: stats.duplicates,
        errors: stats.errors,
        accepted_per_second: rate,
        ack: Latency::of(stats.ack_us),
        max_ack_gap_ms: f64::from(stats.max_gap_us) / 1000.0,
        cpu,
        ratio_to_verify_all_cores: rate / ceiling.verify_all_cores,
        ratio_to_verify_one_core: rate / ceiling.verify_per_core,
        cpu_efficiency: cpu
            .node_cpu_s
            .filter(|s| *s > 0.0)
            .map(|s| ceiling.verify_us / 1e6 * stats.accepted as f64 / s),
        delivery,
    })
}

#[derive(Debug, Clone, Serialize)]
struct DeliverResult {
    publishers: usize,
    subscribers: usize,
    follow: usize,
    target_rate: f64,
    accepted_per_second: f64,
    ack: Latency,
    delivered: u64,
    expected: u64,
    delivery: Latency,
    closed_subscribers: usize,
    cpu: CpuUse,
}

async fn run_deliver(cli: &Cli, t: &Target, ticks: f64, rate: f64) -> Res<DeliverResult> {
    let p = cli.deliver_publishers.max(1);
    let follow = cli.follow.min(p).max(1);
    let per_pub = ((rate / p as f64) * cli.duration).ceil().max(1.0) as usize;
    let mut admin = Admin::open(&t.url, &t.admin).await?;
    let users = admin.create_users(p, "dp").await?;
    let sub_user = admin.create_users(1, "ds").await?.remove(0);
    eprintln!("  signing {p} x {per_pub} entries ...");
    let feeds = sign_feeds(&users, per_pub);
    let stamps = Arc::new(Stamps::new(&feeds));
    let who = Identity::new(sub_user);
    let authors: Vec<PublicKey> = users.iter().map(SecretKey::public).collect();
    eprintln!("  opening {} subscribers ...", cli.deliver_subscribers);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut listeners = Vec::new();
    let mut followers = vec![0u64; p];
    let stride = (p / follow).max(1);
    for j in 0..cli.deliver_subscribers {
        // Subscriber j follows authors j, j + stride, j + 2 stride, ...: every author gets the
        // same number of followers.
        let picks: Vec<usize> = (0..follow).map(|k| (j + k * stride) % p).collect();
        for &a in &picks {
            followers[a] += 1;
        }
        let mut ws = login(&t.url, t.node_key(), &who).await?;
        subscribe(&mut ws, picks.iter().map(|&a| authors[a]).collect()).await?;
        listeners.push(tokio::spawn(listen(ws, stamps.clone(), stop_rx.clone())));
    }
    let expected: u64 = feeds.iter().enumerate().map(|(a, f)| f.frames.len() as u64 * followers[a]).sum();
    let every = Duration::from_secs_f64(p as f64 / rate);
    let feeds: Vec<(Identity, Vec<String>)> = feeds.into_iter().map(|f| (Identity::new(f.author), f.frames)).collect();
    let meter = CpuMeter::start(t.pid, ticks);
    let (stats, secs) = run_publishers(t, feeds, cli.in_flight, Some(every), Some(stamps.clone())).await?;
    // Every event still on its way counts; a node that falls behind shows it in the latency.
    stamps.await_delivered(expected, Duration::from_secs(60)).await;
    let cpu = meter.stop();
    let _ = stop_tx.send(true);
    let mut lat = Vec::new();
    let mut delivered = 0;
    let mut closed = 0;
    for l in listeners {
        let s = l.await.map_err(|e| e.to_string())?;
        delivered += s.events;
        lat.extend(s.delivery_us);
        if s.closed.is_some() {
            closed += 1;
        }
    }
    Ok(DeliverResult {
        publishers: p,
        subscribers: cli.deliver_subscribers,
        follow,
        target_rate: rate,
        accepted_per_second: stats.accepted as f64 / secs,
        ack: Latency::of(stats.ack_us),
        delivered,
        expected,
        delivery: Latency::of(lat),
        closed_subscribers: closed,
        cpu,
    })
}

#[derive(Debug, Clone, Serialize)]
struct PruneResult {
    budget_bytes: u64,
    published: usize,
    published_bytes: u64,
    accepted: u64,
    errors: BTreeMap<String, u64>,
    accepted_per_second: f64,
    /// Acks of publishes sent after the store first exceeded its budget.
    ack_while_pruning: Latency,
    max_ack_gap_ms: f64,
    disk_bytes_end: Option<u64>,
    /// Counted bytes the node holds at the end, from `heads` (must not exceed the budget).
    stored_bytes_end: u64,
    cpu: CpuUse,
}

async fn run_prune(cli: &Cli, ticks: f64, pinned: bool) -> Res<PruneResult> {
    let t = launch(cli, cli.prune_budget, pinned).await?;
    let result = async {
        let publishers = 4usize;
        let per = cli.prune_entries.div_ceil(publishers);
        let mut admin = Admin::open(&t.url, &t.admin).await?;
        let users = admin.create_users(publishers, "pp").await?;
        eprintln!("  signing {publishers} x {per} entries ...");
        let feeds = sign_feeds(&users, per);
        let entry_size = feeds.first().and_then(|f| f.sizes.first()).copied().unwrap_or(600) as u64;
        let published_bytes: u64 = feeds.iter().flat_map(|f| f.sizes.iter()).map(|&s| s as u64).sum();
        // Publishers advance together, so the store passes its budget after about this many
        // entries per publisher; acks after that are acks of publishes that prune.
        let fill_per_pub = (cli.prune_budget / entry_size / publishers as u64) as usize;
        let sizes: Vec<Vec<usize>> = feeds.iter().map(|f| f.sizes.clone()).collect();
        let authors: Vec<PublicKey> = feeds.iter().map(|f| f.author.public()).collect();
        let feeds: Vec<(Identity, Vec<String>)> =
            feeds.into_iter().map(|f| (Identity::new(f.author), f.frames)).collect();
        let node = t.node_key();
        let mut sessions = Vec::new();
        for (id, frames) in feeds {
            sessions.push((login(&t.url, node, &id).await?, frames));
        }
        let meter = CpuMeter::start(t.pid, ticks);
        let start = Instant::now();
        let tasks: Vec<_> = sessions
            .into_iter()
            .map(|(ws, frames)| tokio::spawn(publish(ws, frames, cli.in_flight, None, None, 1)))
            .collect();
        let mut accepted = 0;
        let mut errors = BTreeMap::new();
        let mut pruning = Vec::new();
        let mut gap = 0;
        let mut last = start;
        for task in tasks {
            let s = task.await.map_err(|e| e.to_string())??;
            accepted += s.accepted;
            for (k, v) in s.errors {
                *errors.entry(k).or_default() += v;
            }
            pruning.extend(s.ack_us.iter().skip(fill_per_pub + 1).copied());
            gap = gap.max(s.max_gap_us);
            if let Some(l) = s.last_ack {
                last = last.max(l);
            }
        }
        let cpu = meter.stop();
        tokio::time::sleep(Duration::from_millis(200)).await;
        // What the node still holds, from its heads: the entries in (pruned_through, seq] of
        // each feed, whose sizes are known from signing them.
        let stored_bytes = admin.stored_bytes(&authors, &sizes).await?;
        Ok(PruneResult {
            budget_bytes: cli.prune_budget,
            published: per * publishers,
            published_bytes,
            accepted,
            errors,
            accepted_per_second: accepted as f64 / last.duration_since(start).as_secs_f64(),
            ack_while_pruning: Latency::of(pruning),
            max_ack_gap_ms: f64::from(gap) / 1000.0,
            disk_bytes_end: t.disk_bytes(),
            stored_bytes_end: stored_bytes,
            cpu,
        })
    }
    .await;
    t.stop().await;
    result
}

#[derive(Debug, Clone, Serialize)]
struct MemoryPoint {
    stored_entries: u64,
    node_rss_mib: Option<f64>,
    node_peak_rss_mib: Option<f64>,
    disk_bytes: Option<u64>,
    accepted_per_second: f64,
    ack: Latency,
}

async fn run_memory(cli: &Cli, ticks: f64, pinned: bool) -> Res<Vec<MemoryPoint>> {
    let mut checkpoints = cli.memory_checkpoints.clone();
    checkpoints.sort_unstable();
    let max = checkpoints.last().copied().unwrap_or(0);
    // Budget: room for every entry (about 600 bytes each) with a margin, so nothing is pruned.
    let t = launch(cli, (max * 2048).max(64 << 20), pinned).await?;
    let result = async {
        let publishers = 4usize;
        let mut admin = Admin::open(&t.url, &t.admin).await?;
        let users = admin.create_users(publishers, "mp").await?;
        let ids: Vec<Identity> = users.iter().map(|u| Identity::new(u.clone())).collect();
        let mut prevs: Vec<Option<Entry>> = vec![None; publishers];
        let mut next_seq = vec![1u64; publishers];
        let mut stored = 0u64;
        let mut points = Vec::new();
        // Chunks bound the generator's memory for pre-signed frames.
        const CHUNK: u64 = 100_000;
        for &target in &checkpoints {
            let mut acks = Vec::new();
            let mut secs = 0.0;
            let mut stage_accepted = 0;
            while stored < target {
                let n = (target - stored).min(CHUNK);
                let per = n.div_ceil(publishers as u64) as usize;
                eprintln!("  memory: signing {} entries (stored so far {stored}) ...", per * publishers);
                let signed: Vec<(Vec<String>, Option<Entry>)> = std::thread::scope(|s| {
                    let hs: Vec<_> = (0..publishers)
                        .map(|i| {
                            let user = &users[i];
                            let prev = prevs[i].clone();
                            let first = next_seq[i];
                            s.spawn(move || {
                                let (frames, _, last) = sign_feed(user, i, prev.as_ref(), first, per);
                                (frames, last)
                            })
                        })
                        .collect();
                    hs.into_iter().map(|h| h.join().unwrap_or_default()).collect()
                });
                let mut feeds = Vec::new();
                for (i, (frames, last)) in signed.into_iter().enumerate() {
                    next_seq[i] += frames.len() as u64;
                    prevs[i] = last;
                    feeds.push((ids[i].clone(), frames));
                }
                let (s, dt) = run_publishers(&t, feeds, cli.in_flight, None, None).await?;
                if !s.errors.is_empty() {
                    return Err(format!("publishes refused while filling: {:?}", s.errors));
                }
                stored += s.accepted;
                stage_accepted += s.accepted;
                secs += dt;
                acks.extend(s.ack_us);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let sample = t.pid.and_then(|p| proc_sample(Some(p), ticks));
            points.push(MemoryPoint {
                stored_entries: stored,
                node_rss_mib: sample.map(|s| s.rss_kib as f64 / 1024.0),
                node_peak_rss_mib: sample.map(|s| s.hwm_kib as f64 / 1024.0),
                disk_bytes: t.disk_bytes(),
                accepted_per_second: stage_accepted as f64 / secs.max(1e-9),
                ack: Latency::of(acks),
            });
            eprintln!("  memory: {stored} stored, node RSS {:?} MiB", points.last().and_then(|p| p.node_rss_mib));
        }
        Ok(points)
    }
    .await;
    t.stop().await;
    result
}

// ---------------------------------------------------------------------------------------------
// One pass (pinned or not) over the scenarios that share a node, and the report.

#[derive(Debug, Clone, Serialize, Default)]
struct Pass {
    pinned: bool,
    handshake: Option<HandshakeResult>,
    ingest: Option<IngestResult>,
    deliver: Option<DeliverResult>,
    prune: Option<PruneResult>,
    memory: Option<Vec<MemoryPoint>>,
    node_peak_rss_mib: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
struct Report {
    date_utc: String,
    machine: String,
    ceiling: Ceiling,
    passes: Vec<Pass>,
}

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

/// The `Cpus_allowed_list` of a process (this one with `None`), to show that pinning held.
fn cpus_allowed(pid: Option<u32>) -> String {
    let path = pid.map_or_else(|| "/proc/self/status".to_owned(), |p| format!("/proc/{p}/status"));
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).map(|l| l.trim().to_owned()))
        .unwrap_or_else(|| "?".into())
}

fn label(pinned: bool) -> &'static str {
    if pinned {
        "pinned: node core 0, generator core 1"
    } else {
        "unpinned"
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.digits$}"))
}

fn print_handshake(r: &HandshakeResult) {
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

fn print_ingest(r: &IngestResult) {
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

fn print_deliver(r: &DeliverResult) {
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

fn print_prune(r: &PruneResult) {
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

fn print_memory(points: &[MemoryPoint]) {
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
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
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
