//! The integration tests' node launcher, and their client: a thin JSON layer on the one client
//! driver, `kith-client`.
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use kith_client::{client_config, ClientError, ConnectOptions, Connection, Incoming};
use kith_node::{NodeArgs, RunningNode};
use kith_proto::encoding::encode_hex;
use kith_proto::entry::{EntryDraft, VerifiedEntry};
use kith_proto::session::client::ClientSession;
use kith_proto::{Entry, PublicKey, SecretKey, ServerFrame};
use serde_json::{json, Value};

pub const WAIT: Duration = Duration::from_secs(10);

pub use kith_client::now_ms;

/// A node running in this process, with its admin's secret key.
pub struct TestNode {
    pub node: RunningNode,
    pub admin: SecretKey,
    pub url: String,
    pub dir: tempfile::TempDir,
}

pub struct Opts {
    pub storage_bytes: u64,
    pub handshake_timeout_ms: u64,
    pub memory: bool,
    pub fault: Option<&'static str>,
    pub max_connections_per_address: u64,
    pub max_pending_handshakes: u64,
    pub max_requests_per_second: u64,
    pub max_subscriptions: u64,
    pub max_queued_bytes: u64,
    pub max_hellos_per_second: u64,
    pub max_backfill: u64,
    pub max_replicate: u64,
    pub max_filter_items: u64,
    pub max_total_filter_items: Option<u64>,
}

impl Default for Opts {
    /// The node's defaults for every limit.
    fn default() -> Self {
        Opts {
            storage_bytes: 1 << 30,
            handshake_timeout_ms: 10_000,
            memory: true,
            fault: None,
            max_connections_per_address: kith_node::MAX_CONNECTIONS_PER_ADDRESS,
            max_pending_handshakes: kith_node::MAX_PENDING_HANDSHAKES,
            max_requests_per_second: kith_node::MAX_REQUESTS_PER_SECOND,
            max_subscriptions: kith_node::MAX_SUBSCRIPTIONS,
            max_queued_bytes: kith_node::MAX_QUEUED_BYTES,
            max_hellos_per_second: kith_node::MAX_HELLOS_PER_SECOND,
            max_backfill: kith_node::MAX_BACKFILL,
            max_replicate: kith_node::MAX_REPLICATE,
            max_filter_items: kith_node::MAX_FILTER_ITEMS,
            max_total_filter_items: None,
        }
    }
}

pub fn args(dir: &std::path::Path, seed_file: PathBuf, o: &Opts) -> NodeArgs {
    let _ = &o.fault;
    NodeArgs {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.join("data"),
        storage_bytes: o.storage_bytes,
        peer_seed_file: Some(seed_file),
        memory: o.memory,
        log: "warn".into(),
        handshake_timeout_ms: o.handshake_timeout_ms,
        name: "test-node".into(),
        max_connections_per_address: o.max_connections_per_address,
        max_pending_handshakes: o.max_pending_handshakes,
        max_requests_per_second: o.max_requests_per_second,
        max_subscriptions: o.max_subscriptions,
        max_queued_bytes: o.max_queued_bytes,
        max_hellos_per_second: o.max_hellos_per_second,
        max_backfill: o.max_backfill,
        max_replicate: o.max_replicate,
        max_notes: kith_node::MAX_NOTES,
        max_note_bytes: kith_node::MAX_NOTE_BYTES,
        max_follows: kith_node::MAX_FOLLOWS,
        max_filter_items: o.max_filter_items,
        max_total_filter_items: o.max_total_filter_items,
        #[cfg(feature = "faults")]
        fault: o.fault.map(str::to_owned),
    }
}

pub fn write_seed(dir: &std::path::Path, admin: &SecretKey) -> PathBuf {
    let p = dir.join("admin.seed");
    std::fs::write(&p, format!("{}\n", encode_hex(&admin.seed()))).unwrap();
    p
}

pub async fn start(o: Opts) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let admin = SecretKey::random();
    let seed = write_seed(dir.path(), &admin);
    let node = kith_node::start(args(dir.path(), seed, &o)).await.unwrap();
    let url = format!("ws://{}/", node.addr);
    TestNode { node, admin, url, dir }
}

pub async fn start_default() -> TestNode {
    start(Opts::default()).await
}

/// A close frame as the node sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: String,
}

/// A message from the node: a text or binary frame, or a close frame (`None` when it had no
/// code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    Text(String),
    Binary(Vec<u8>),
    Close(Option<Close>),
}

/// A message to queue for sending (see [`Client::feed`]).
#[derive(Debug, Clone)]
pub enum Out {
    Text(String),
    Binary(Vec<u8>),
}

/// A test client on the one client driver (`kith-client`), speaking JSON values so that a test
/// can send what a typed frame cannot.
pub struct Client {
    pub conn: Connection,
    next: u64,
    pub account: Value,
}

impl Client {
    /// Opens a websocket with `options`, recording nothing but notes (the tests assert on what
    /// they receive, not on a transcript).
    async fn open(url: &str, options: ConnectOptions) -> Client {
        let conn = Connection::connect_with(url, options.wait(WAIT).recording(false)).await.unwrap();
        Client { conn, next: 1000, account: Value::Null }
    }

    pub async fn connect(url: &str) -> Client {
        Client::open(url, ConnectOptions::default()).await
    }

    /// Connects from the loopback address `source` (any of 127.0.0.0/8), so that the node
    /// counts the connection toward that address.
    pub async fn connect_from(url: &str, source: std::net::Ipv4Addr) -> Client {
        Client::open(url, ConnectOptions::default().source(source.into())).await
    }

    /// Logs in as `user` from the loopback address `source`.
    pub async fn login_from(url: &str, source: std::net::Ipv4Addr, node: PublicKey, user: &SecretKey) -> Client {
        let mut c = Client::connect_from(url, source).await;
        let w = c.handshake(node, user, now_ms() + 3_600_000).await;
        assert_eq!(w["type"], "welcome", "{w}");
        c.account = w["account"].clone();
        c
    }

    pub fn id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    pub async fn send_text(&mut self, s: String) {
        self.conn.send_text(&s).await.unwrap();
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.conn.send_binary(bytes).await.unwrap();
    }

    /// Queues a message without flushing (see [`Client::flush`]): a burst reaches the node
    /// back to back.
    pub async fn feed(&mut self, m: Out) {
        match m {
            Out::Text(t) => self.conn.feed_text(&t).await.unwrap(),
            Out::Binary(b) => self.conn.feed_binary(b).await.unwrap(),
        }
    }

    pub async fn flush(&mut self) {
        self.conn.flush().await.unwrap();
    }

    /// The next message of any kind within `wait`, or None when the stream ended without a
    /// close frame; `Err` when nothing came.
    pub async fn next_within(&mut self, wait: Duration) -> Result<Option<Msg>, ClientError> {
        Ok(match self.conn.recv(wait).await? {
            Incoming::Text(t) => Some(Msg::Text(t)),
            Incoming::Binary(b) => Some(Msg::Binary(b)),
            Incoming::Closed(Some((code, reason))) => Some(Msg::Close(Some(Close { code, reason }))),
            Incoming::Closed(None) => None,
        })
    }

    /// The next message of any kind, or None when the stream ends.
    pub async fn next_msg(&mut self) -> Option<Msg> {
        match self.next_within(WAIT).await {
            Ok(m) => m,
            Err(ClientError::Timeout(_)) => panic!("timed out waiting for a message"),
            Err(e) => panic!("{e}"),
        }
    }

    /// The next text frame as JSON; panics on anything else.
    pub async fn recv(&mut self) -> Value {
        match self.next_msg().await {
            Some(Msg::Text(t)) => serde_json::from_str(&t).unwrap(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Sends a request (the id is filled in) and returns the next frame.
    pub async fn req(&mut self, mut v: Value) -> Value {
        let id = self.id();
        v["id"] = json!(id);
        self.send(v).await;
        let r = self.recv().await;
        assert_eq!(r["id"], json!(id), "answer to another request: {r}");
        r
    }

    /// Sends a request expecting an error with `code`.
    pub async fn req_err(&mut self, v: Value, code: &str) -> Value {
        let r = self.req(v).await;
        assert_eq!(r["type"], "error", "expected error {code}, got {r}");
        assert_eq!(r["code"], code, "{r}");
        r
    }

    /// Reads until the close frame; returns it (None when the stream just ended).
    pub async fn expect_close(&mut self) -> Option<Close> {
        loop {
            match self.next_msg().await {
                Some(Msg::Close(f)) => return f,
                None => return None,
                Some(_) => continue,
            }
        }
    }

    /// Closes politely and waits until the node has closed its side too.
    pub async fn close(mut self) {
        self.conn.close().await;
        while let Ok(Some(_)) = self.next_within(WAIT).await {
            if self.conn.is_closed() {
                break;
            }
        }
    }

    /// Full handshake as `user` with a fresh peer key; panics unless welcomed.
    pub async fn login(url: &str, node: PublicKey, user: &SecretKey) -> Client {
        let mut c = Client::connect(url).await;
        let w = c.handshake(node, user, now_ms() + 3_600_000).await;
        assert_eq!(w["type"], "welcome", "{w}");
        c.account = w["account"].clone();
        c
    }

    /// Runs the handshake (hello id 1, auth id 2) on the driver's client session and returns
    /// the node's last answer (welcome or error) as JSON.
    pub async fn handshake(&mut self, node: PublicKey, user: &SecretKey, expires: u64) -> Value {
        let peer = SecretKey::random();
        self.conn.reset_session(ClientSession::new());
        let answer = match self.conn.log_in(client_config(node, user, &peer, expires), rand_seed(), WAIT).await {
            Ok(welcome) => ServerFrame::Welcome(welcome).to_text(),
            Err(ClientError::Refused(e)) => ServerFrame::Error(e).to_text(),
            Err(ClientError::Unexpected { got, .. }) => got,
            Err(e) => panic!("handshake: {e}"),
        };
        serde_json::from_str(&answer).unwrap()
    }

    pub async fn publish(&mut self, e: &Entry) -> Value {
        self.req(json!({"type":"publish","entry":e})).await
    }

    pub async fn publish_ok(&mut self, e: &Entry) -> Value {
        let r = self.publish(e).await;
        assert_eq!(r["type"], "publish_ok", "{r}");
        r
    }
}

pub use kith_client::random_bytes as rand_seed;

/// A feed being written by one author.
pub struct Feed {
    pub key: SecretKey,
    pub last: Option<VerifiedEntry>,
    pub ts: u64,
}

impl Feed {
    pub fn new() -> Feed {
        Feed { key: SecretKey::random(), last: None, ts: 1_700_000_000_000 }
    }

    pub fn with_key(key: SecretKey) -> Feed {
        Feed { key, last: None, ts: 1_700_000_000_000 }
    }

    pub fn draft(&mut self) -> EntryDraft {
        self.ts += 1;
        match &self.last {
            None => EntryDraft::first(self.ts),
            Some(l) => EntryDraft::after(l, self.ts),
        }
    }

    /// Signs a draft and makes it the feed's head.
    pub fn push(&mut self, d: EntryDraft) -> Entry {
        let e = d.sign(&self.key);
        self.last = Some(verified(&e));
        e
    }

    pub fn next(&mut self, text: &str) -> Entry {
        let d = self.draft().text(text);
        self.push(d)
    }

    pub fn pub_key(&self) -> PublicKey {
        self.key.public()
    }
}

/// The entry with its id, without the (in debug builds slow) signature check.
pub fn verified(e: &Entry) -> VerifiedEntry {
    use sha2::Digest;
    let canonical = e.canonical_bytes();
    let id = kith_proto::EntryId::from_bytes(sha2::Sha256::digest(&canonical).into());
    VerifiedEntry { entry: e.clone(), id, canonical }
}

pub fn entry_id(e: &Entry) -> String {
    verified(e).id.to_string()
}

pub fn size(e: &Entry) -> u64 {
    e.canonical_bytes().len() as u64
}

/// Publishes `count` entries of about 16 KB and returns the `replicate` request that reads them
/// all, with the length of its answer.
pub async fn big_feed(c: &mut Client, count: usize) -> (Value, usize) {
    let mut f = Feed::new();
    let pad = "q".repeat(15_900);
    for i in 0..count {
        c.publish_ok(&f.next(&format!("{i}{pad}"))).await;
    }
    let req = json!({"type":"replicate","author":f.pub_key().to_string(),"after":0,"limit":count});
    let mut probe = req.clone();
    probe["id"] = json!(1);
    c.send(probe).await;
    let text = match c.next_msg().await {
        Some(Msg::Text(t)) => t,
        other => panic!("{other:?}"),
    };
    (req, text.len())
}

/// Sends `count` copies of `req` without reading, then reads: the answers that came and the
/// close frame, if any.
pub async fn flood_then_read(c: &mut Client, req: &Value, count: usize) -> (usize, Option<(u16, String)>) {
    for i in 0..count {
        let mut r = req.clone();
        r["id"] = json!(100 + i);
        c.feed(Out::Text(r.to_string())).await;
    }
    c.flush().await;
    let mut answers = 0;
    loop {
        match c.next_msg().await {
            Some(Msg::Text(t)) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                assert_eq!(v["type"], "replicate_ok", "{v}");
                answers += 1;
                if answers == count {
                    return (answers, None);
                }
            }
            Some(Msg::Close(f)) => return (answers, f.map(|f| (f.code, f.reason))),
            None => return (answers, None),
            Some(_) => {}
        }
    }
}
