//! A Kith client for tests and tools: a websocket [`Connection`] that sends raw or typed frames
//! and records a timestamped [`Transcript`], the handshake ([`login`]) and the admin's helpers
//! ([`Session::invite_user`]).
//!
//! The conformance cases and the load generator both build on this module.
//!
//! A connection paces what it sends to stay inside the node's `max_requests_per_second`
//! (spec 06 §8.2) when it is opened inside [`with_pace`] (the runner wraps every case in it) or
//! told so with [`Connection::set_pace`]; the cases that test the rate limit switch pacing off.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use kith_proto::account::{Account, AccountName, CreateUser};
use kith_proto::cert::Certificate;
use kith_proto::frame::ErrorFrame;
use kith_proto::handshake::{ClientConfig, ClientHandshake, HandshakeError};
use kith_proto::version::PROTOCOL_VERSION;
use kith_proto::{ClientFrame, PublicKey, RequestId, SecretKey, ServerFrame};
use rand_core::{OsRng, RngCore};
use serde::Serialize;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a client waits for an answer unless told otherwise.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

tokio::task_local! {
    /// The `max_requests_per_second` of the node the current task talks to, if it is paced.
    static PACE: u64;
}

/// Runs `fut` so that every [`Connection`] opened inside it (on this task) paces its sends to
/// stay inside `max_requests_per_second`, the rate the node reported.
pub async fn with_pace<F: std::future::Future>(max_requests_per_second: u64, fut: F) -> F::Output {
    PACE.scope(max_requests_per_second, fut).await
}

/// The client's own token bucket: it sends a message only with a token in hand, so that the
/// node's bucket (06 §8.2) never runs dry. It keeps a quarter of the node's rate in reserve,
/// both in size and in refill, so that messages the network or a busy node bunches together on
/// the way still find tokens on arrival.
#[derive(Debug, Clone)]
struct Pacer {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: tokio::time::Instant,
}

impl Pacer {
    /// A full bucket for a node that allows `max_requests_per_second`.
    fn new(max_requests_per_second: u64) -> Pacer {
        let r = max_requests_per_second.max(1) as f64;
        let capacity = (r * 0.75).floor().max(1.0);
        Pacer { capacity, per_sec: r * 0.75, tokens: capacity, last: tokio::time::Instant::now() }
    }

    fn refill(&mut self) {
        let now = tokio::time::Instant::now();
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
    }

    /// Waits until a token is there and takes it.
    async fn take(&mut self) {
        self.refill();
        if self.tokens < 1.0 {
            tokio::time::sleep(Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec)).await;
            self.refill();
        }
        self.tokens = (self.tokens - 1.0).max(0.0);
    }
}

/// Why a client operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The websocket could not be opened.
    #[error("cannot connect to {url}: {message}")]
    Connect {
        /// The URL dialled.
        url: String,
        /// What the websocket layer said.
        message: String,
    },
    /// Nothing arrived in time.
    #[error("nothing received within {0:?}")]
    Timeout(Duration),
    /// The connection is closed.
    #[error("connection closed: {}", show_close(.0))]
    Closed(Option<(u16, String)>),
    /// The websocket layer failed.
    #[error("websocket: {0}")]
    Ws(String),
    /// A text frame from the node is not a valid server frame.
    #[error("node sent a frame the spec does not allow: {message}: {text}")]
    BadFrame {
        /// The frame text.
        text: String,
        /// The decoder's complaint.
        message: String,
    },
    /// The node sent a binary frame, which the spec never allows.
    #[error("node sent a binary frame")]
    Binary,
    /// The node answered with an error frame.
    #[error("node answered {}: {}", .0.code, .0.message)]
    Refused(ErrorFrame),
    /// The node answered with a frame of an unexpected type.
    #[error("expected {expected}, got {got}")]
    Unexpected {
        /// What was expected.
        expected: &'static str,
        /// The frame that came.
        got: String,
    },
    /// The handshake failed on the client's side (e.g. a challenge signed by another key).
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
}

/// A close as the wire has it: `close 1008 "bad_certificate"`, `close 1000 with no reason`, or
/// `no close frame` when the stream just ended.
pub fn show_close(close: &Option<(u16, String)>) -> String {
    match close {
        Some((code, reason)) if reason.is_empty() => format!("close {code} with no reason"),
        Some((code, reason)) => format!("close {code} {reason:?}"),
        None => "no close frame (the stream ended)".into(),
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// 32 random bytes from the operating system.
pub fn random_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    b
}

/// The request id for the `n`th request of a counter that starts at a small number: such a
/// counter stays far below 2^53 − 1, the largest request id ([FRAME-13]).
pub fn counted_id(n: u64) -> RequestId {
    RequestId::new(n).expect("request ids count up from small numbers, far below 2^53")
}

/// A fresh account name: `t` and 16 random hex digits, unique in practice.
pub fn fresh_name() -> String {
    let b = random_bytes();
    let hex: String = b[..8].iter().map(|x| format!("{x:02x}")).collect();
    format!("t{hex}")
}

/// Which way a transcript line went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Client to node.
    Sent,
    /// Node to client.
    Received,
    /// A remark of the runner (connect, close, expectation).
    Note,
}

/// One line of a transcript.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptLine {
    /// Milliseconds since the transcript started.
    pub at_ms: f64,
    /// Which connection (e.g. `admin`, `c1`).
    pub conn: String,
    /// Which way.
    pub dir: Direction,
    /// The frame text (binary frames as `<binary N bytes>`; long frames shortened).
    pub text: String,
}

/// A shared, timestamped record of every frame a case's connections sent and received.
#[derive(Debug, Clone)]
pub struct Transcript {
    start: Instant,
    lines: Arc<Mutex<Vec<TranscriptLine>>>,
    waited_out: Arc<AtomicBool>,
}

impl Default for Transcript {
    fn default() -> Self {
        Transcript {
            start: Instant::now(),
            lines: Arc::new(Mutex::new(Vec::new())),
            waited_out: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Longest frame text kept in a transcript line.
const MAX_LINE: usize = 2048;

impl Transcript {
    /// Appends a line.
    pub fn push(&self, conn: &str, dir: Direction, text: &str) {
        let text = if text.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}... <{} bytes in all>", &text[..cut], text.len())
        } else {
            text.to_owned()
        };
        let line =
            TranscriptLine { at_ms: self.start.elapsed().as_secs_f64() * 1000.0, conn: conn.to_owned(), dir, text };
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(line);
        }
    }

    /// A copy of the lines so far.
    pub fn lines(&self) -> Vec<TranscriptLine> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Records that a wait for the node ran out with nothing received (a wait that expects
    /// silence, [`Connection::quiet_for`], does not count).
    pub fn mark_timeout(&self) {
        self.waited_out.store(true, Ordering::Relaxed);
    }

    /// Whether a wait for the node ran out (see [`Transcript::mark_timeout`]): the runner
    /// counts a failing case that waited out an answer as stuck.
    pub fn waited_out(&self) -> bool {
        self.waited_out.load(Ordering::Relaxed)
    }
}

/// What arrived on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A close frame (code, reason), or the stream ended.
    Closed(Option<(u16, String)>),
}

/// A websocket connection to a node, with request ids, a transcript and a queue of frames that
/// arrived while the client waited for something else.
pub struct Connection {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    label: String,
    transcript: Transcript,
    next_id: u64,
    queued: VecDeque<String>,
    closed: Option<Option<(u16, String)>>,
    error_map: Arc<BTreeMap<String, String>>,
    pacer: Option<Pacer>,
    /// Frames not recorded while recording is off (see [`Connection::set_recording`]).
    unrecorded: Option<u64>,
    /// The ids of requests sent and not yet answered, in the order sent (a request whose id
    /// the client cannot read is not tracked).
    outstanding: VecDeque<u64>,
    /// Whether the last text frame received was an answer to no outstanding request.
    stray: bool,
    /// Whether a `closing` push came: after it nothing but the close may (FRAME-32).
    closing_seen: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("label", &self.label).finish_non_exhaustive()
    }
}

impl Connection {
    /// Opens a websocket to `url` within `wait`, recording into `transcript` as `label`.
    pub async fn connect(url: &str, label: &str, transcript: Transcript, wait: Duration) -> Result<Self, ClientError> {
        let fail = |message: String| ClientError::Connect { url: url.to_owned(), message };
        let (ws, _) = tokio::time::timeout(wait, tokio_tungstenite::connect_async(url))
            .await
            .map_err(|_| fail(format!("no websocket within {wait:?}")))?
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self::over(ws, url, label, transcript))
    }

    /// Opens a websocket (`ws://` only) whose socket has a receive buffer of about
    /// `recv_buffer` bytes and no automatic growth, so that what a client that does not read
    /// leaves unread stays in the node's queue rather than in the client's kernel (the
    /// slow-consumer cases).
    pub async fn connect_small_buffer(
        url: &str,
        label: &str,
        transcript: Transcript,
        wait: Duration,
        recv_buffer: u32,
    ) -> Result<Self, ClientError> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let fail = |message: String| ClientError::Connect { url: url.to_owned(), message };
        let request = url.into_client_request().map_err(|e| fail(e.to_string()))?;
        let uri = request.uri();
        if uri.scheme_str() != Some("ws") {
            return Err(fail("a small receive buffer needs a ws:// URL".into()));
        }
        let host = uri.host().unwrap_or("localhost").trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = uri.port_u16().unwrap_or(80);
        let open = async {
            let addr = tokio::net::lookup_host((host.as_str(), port))
                .await?
                .next()
                .ok_or_else(|| std::io::Error::other(format!("{host} has no address")))?;
            let socket =
                if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
            socket.set_recv_buffer_size(recv_buffer)?;
            socket.connect(addr).await
        };
        let tcp = tokio::time::timeout(wait, open)
            .await
            .map_err(|_| fail(format!("no connection within {wait:?}")))?
            .map_err(|e| fail(e.to_string()))?;
        let (ws, _) = tokio::time::timeout(wait, tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp)))
            .await
            .map_err(|_| fail(format!("no websocket within {wait:?}")))?
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self::over(ws, url, label, transcript))
    }

    fn over(ws: WebSocketStream<MaybeTlsStream<TcpStream>>, url: &str, label: &str, transcript: Transcript) -> Self {
        transcript.push(label, Direction::Note, &format!("connected to {url}"));
        Connection {
            ws,
            label: label.to_owned(),
            transcript,
            next_id: 1,
            queued: VecDeque::new(),
            closed: None,
            error_map: Arc::new(BTreeMap::new()),
            pacer: PACE.try_with(|r| Pacer::new(*r)).ok(),
            unrecorded: None,
            outstanding: VecDeque::new(),
            stray: false,
            closing_seen: false,
        }
    }

    /// Opens a websocket with a private transcript.
    pub async fn open(url: &str) -> Result<Self, ClientError> {
        Self::connect(url, "c", Transcript::default(), DEFAULT_WAIT).await
    }

    /// Rewrites error codes a node sends (its own code -> spec code), as an implementer's skip
    /// file declares.
    pub fn set_error_map(&mut self, map: Arc<BTreeMap<String, String>>) {
        self.error_map = map;
    }

    /// Paces the sends to stay inside `max_requests_per_second` (`Some`), or stops pacing
    /// (`None`, for the cases that exceed the rate on purpose).
    pub fn set_pace(&mut self, max_requests_per_second: Option<u64>) {
        self.pacer = max_requests_per_second.map(Pacer::new);
    }

    /// Whether the sends are paced.
    pub fn is_paced(&self) -> bool {
        self.pacer.is_some()
    }

    async fn pace(&mut self) {
        if let Some(p) = &mut self.pacer {
            p.take().await;
        }
    }

    /// The transcript this connection records into.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// A fresh request id for this connection.
    pub fn next_id(&mut self) -> RequestId {
        let id = counted_id(self.next_id);
        self.next_id += 1;
        id
    }

    /// Stops (`false`) or resumes (`true`) recording the frames sent and received, for a case
    /// that moves thousands of them; notes and the close are always recorded, and resuming notes
    /// how many frames went unrecorded.
    pub fn set_recording(&mut self, on: bool) {
        match (on, self.unrecorded) {
            (false, None) => self.unrecorded = Some(0),
            (true, Some(n)) => {
                self.unrecorded = None;
                self.note(&format!("{n} frames not recorded"));
            }
            _ => {}
        }
    }

    fn record(&mut self, dir: Direction, text: &str) {
        match &mut self.unrecorded {
            Some(n) => *n += 1,
            None => self.transcript.push(&self.label, dir, text),
        }
    }

    /// Adds a remark to the transcript.
    pub fn note(&self, text: &str) {
        self.transcript.push(&self.label, Direction::Note, text);
    }

    /// Sends one text frame exactly as given.
    pub async fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.pace().await;
        self.record(Direction::Sent, text);
        if let Some(id) = answer_id(text) {
            self.outstanding.push_back(id);
        }
        self.ws.send(Message::text(text.to_owned())).await.map_err(|e| ClientError::Ws(e.to_string()))
    }

    /// Sends one binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> Result<(), ClientError> {
        self.pace().await;
        self.record(Direction::Sent, &format!("<binary {} bytes>", bytes.len()));
        self.ws.send(Message::binary(bytes)).await.map_err(|e| ClientError::Ws(e.to_string()))
    }

    /// Sends a text message whose payload is exactly these bytes, even if they are not UTF-8.
    pub async fn send_text_bytes(&mut self, bytes: Vec<u8>) -> Result<(), ClientError> {
        use tokio_tungstenite::tungstenite::protocol::frame::{coding::Data, coding::OpCode, Frame};
        self.pace().await;
        self.record(Direction::Sent, &format!("<text message of {} raw bytes>", bytes.len()));
        let frame = Frame::message(bytes, OpCode::Data(Data::Text), true);
        self.ws.send(Message::Frame(frame)).await.map_err(|e| ClientError::Ws(e.to_string()))
    }

    /// Sends a typed frame.
    pub async fn send(&mut self, frame: &ClientFrame) -> Result<(), ClientError> {
        self.send_text(&frame.to_text()).await
    }

    /// Closes the websocket politely.
    pub async fn close(&mut self) {
        self.transcript.push(&self.label, Direction::Note, "client closes");
        let _ = self.ws.close(None).await;
    }

    fn map_error_code(&self, text: String) -> String {
        match map_error_code(&self.error_map, &text) {
            Some((mapped, spec)) => {
                self.transcript.push(&self.label, Direction::Note, &format!("error code mapped to {spec}"));
                mapped
            }
            None => text,
        }
    }

    /// Receives the next websocket frame (queued ones first) within `wait`.
    pub async fn recv(&mut self, wait: Duration) -> Result<Incoming, ClientError> {
        let r = self.recv_quietly(wait).await;
        if matches!(r, Err(ClientError::Timeout(_))) {
            self.transcript.mark_timeout();
        }
        r
    }

    /// [`Connection::recv`] for a wait that may run out on purpose.
    async fn recv_quietly(&mut self, wait: Duration) -> Result<Incoming, ClientError> {
        if let Some(text) = self.queued.pop_front() {
            return Ok(Incoming::Text(text));
        }
        self.recv_wire(wait).await
    }

    async fn recv_wire(&mut self, wait: Duration) -> Result<Incoming, ClientError> {
        if let Some(closed) = &self.closed {
            return Ok(Incoming::Closed(closed.clone()));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next =
                tokio::time::timeout_at(deadline, self.ws.next()).await.map_err(|_| ClientError::Timeout(wait))?;
            match next {
                Some(Ok(Message::Text(t))) => {
                    self.record(Direction::Received, t.as_str());
                    if self.closing_seen {
                        return Err(ClientError::BadFrame {
                            text: t.as_str().to_owned(),
                            message: "a frame after a closing push, which must be the last frame (FRAME-32)".into(),
                        });
                    }
                    let text = self.map_error_code(t.as_str().to_owned());
                    self.settle(&text);
                    return Ok(Incoming::Text(text));
                }
                Some(Ok(Message::Binary(b))) => {
                    self.record(Direction::Received, &format!("<binary {} bytes>", b.len()));
                    return Ok(Incoming::Binary(b.to_vec()));
                }
                Some(Ok(Message::Close(frame))) => {
                    let info = frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned()));
                    self.transcript.push(&self.label, Direction::Received, &format!("<{}>", show_close(&info)));
                    self.closed = Some(info.clone());
                    return Ok(Incoming::Closed(info));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    self.transcript.push(&self.label, Direction::Note, &format!("<stream error: {e}>"));
                    self.closed = Some(None);
                    return Ok(Incoming::Closed(None));
                }
                None => {
                    self.transcript.push(&self.label, Direction::Note, "<stream ended>");
                    self.closed = Some(None);
                    return Ok(Incoming::Closed(None));
                }
            }
        }
    }

    /// Books a text frame from the node: an answer settles the oldest outstanding request with
    /// its id; an answer to none is a stray (see [`Connection::await_answer`]).
    fn settle(&mut self, text: &str) {
        self.stray = false;
        if is_push(text) {
            self.closing_seen |= is_closing(text);
            return;
        }
        if let Some(id) = answer_id(text) {
            match self.outstanding.iter().position(|x| *x == id) {
                Some(pos) => {
                    self.outstanding.remove(pos);
                }
                None => self.stray = true,
            }
        }
    }

    /// Receives the next text frame and decodes it as a server frame.
    pub async fn recv_frame(&mut self, wait: Duration) -> Result<ServerFrame, ClientError> {
        match self.recv(wait).await? {
            Incoming::Text(text) => parse_server(&text),
            Incoming::Binary(_) => Err(ClientError::Binary),
            Incoming::Closed(c) => Err(ClientError::Closed(c)),
        }
    }

    /// Receives the next frame, raw JSON text, within `wait`; pushes and answers alike.
    pub async fn recv_text(&mut self, wait: Duration) -> Result<String, ClientError> {
        match self.recv(wait).await? {
            Incoming::Text(text) => Ok(text),
            Incoming::Binary(_) => Err(ClientError::Binary),
            Incoming::Closed(c) => Err(ClientError::Closed(c)),
        }
    }

    /// Waits for the frame answering `id` (a frame whose `id` equals it), queueing what else
    /// may arrive meanwhile for later `recv` calls: pushes, and answers to earlier requests
    /// still unanswered (pipelined). An answer to no outstanding request (a second answer, an
    /// id never sent) fails: requests are answered once each (FRAME-18).
    pub async fn await_answer(&mut self, id: RequestId, wait: Duration) -> Result<ServerFrame, ClientError> {
        // Queued frames first (they may include the answer).
        if let Some(pos) = self.queued.iter().position(|t| answer_id(t) == Some(id.get())) {
            if let Some(text) = self.queued.remove(pos) {
                return parse_server(&text);
            }
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv_waiting(left, wait).await? {
                Incoming::Text(text) => {
                    // An error with id null answers a frame the node could not read: the one
                    // just sent, as far as this client can tell.
                    if (answer_id(&text) == Some(id.get()) && !is_push(&text)) || is_unaddressed_error(&text) {
                        if self.stray {
                            return Err(ClientError::BadFrame {
                                text,
                                message: format!("a second answer to request {id}, which is answered once (FRAME-18)"),
                            });
                        }
                        return parse_server(&text);
                    }
                    if self.stray {
                        return Err(ClientError::Unexpected {
                            expected: "the answer to the request, or a push (FRAME-18: one answer per request)",
                            got: format!("{text} (an answer to no request outstanding on this connection)"),
                        });
                    }
                    self.queued.push_back(text);
                }
                Incoming::Binary(_) => return Err(ClientError::Binary),
                Incoming::Closed(c) => return Err(ClientError::Closed(c)),
            }
        }
    }

    /// Sends a typed request built with a fresh id and waits for its answer.
    pub async fn request(
        &mut self,
        build: impl FnOnce(RequestId) -> ClientFrame,
        wait: Duration,
    ) -> Result<ServerFrame, ClientError> {
        let id = self.next_id();
        self.send(&build(id)).await?;
        self.await_answer(id, wait).await
    }

    /// Sends a raw JSON object with a fresh `id` set and waits for its answer.
    pub async fn request_json(
        &mut self,
        mut value: serde_json::Value,
        wait: Duration,
    ) -> Result<ServerFrame, ClientError> {
        let id = self.next_id();
        if let Some(obj) = value.as_object_mut() {
            obj.insert("id".into(), serde_json::json!(id.get()));
        }
        self.send_text(&value.to_string()).await?;
        self.await_answer(id, wait).await
    }

    /// Takes the next queued or arriving push (a frame without an `id`), skipping nothing.
    pub async fn next_push(&mut self, wait: Duration) -> Result<ServerFrame, ClientError> {
        self.recv_frame(wait).await
    }

    /// Receives within `left`; a timeout is marked in the transcript and reported as the whole
    /// `wait` the caller granted.
    async fn recv_waiting(&mut self, left: Duration, wait: Duration) -> Result<Incoming, ClientError> {
        self.recv_wire(left).await.map_err(|e| match e {
            ClientError::Timeout(_) => {
                self.transcript.mark_timeout();
                ClientError::Timeout(wait)
            }
            e => e,
        })
    }

    /// Waits until the node closes the connection; returns the close code and reason, if a
    /// close frame came. Frames arriving meanwhile are kept in the transcript only.
    pub async fn await_close(&mut self, wait: Duration) -> Result<Option<(u16, String)>, ClientError> {
        self.queued.clear();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv_waiting(left, wait).await? {
                Incoming::Closed(c) => return Ok(c),
                _ => continue,
            }
        }
    }

    /// True if nothing arrives within `wait` (the connection stays quiet and open).
    pub async fn quiet_for(&mut self, wait: Duration) -> Result<(), ClientError> {
        match self.recv_quietly(wait).await {
            Err(ClientError::Timeout(_)) => Ok(()),
            Err(e) => Err(e),
            Ok(Incoming::Closed(c)) => Err(ClientError::Closed(c)),
            Ok(Incoming::Text(t)) => Err(ClientError::Unexpected { expected: "nothing", got: t }),
            Ok(Incoming::Binary(_)) => Err(ClientError::Binary),
        }
    }
}

/// The frame `text` (an `error`, a `closing`) with its `code` rewritten by an implementer's `error_map` (their code
/// -> spec code), and the spec code; `None` when the map has nothing to rewrite.
pub fn map_error_code(map: &BTreeMap<String, String>, text: &str) -> Option<(String, String)> {
    if map.is_empty() {
        return None;
    }
    let mut v = serde_json::from_str::<serde_json::Value>(text).ok()?;
    let spec = v.get("code").and_then(|c| c.as_str()).and_then(|c| map.get(c)).cloned()?;
    v["code"] = serde_json::Value::String(spec.clone());
    Some((v.to_string(), spec))
}

fn parse_server(text: &str) -> Result<ServerFrame, ClientError> {
    let frame = ServerFrame::parse(text)
        .map_err(|e| ClientError::BadFrame { text: text.to_owned(), message: e.to_string() })?;
    if matches!(
        frame,
        ServerFrame::Welcome(_)
            | ServerFrame::AccountOk(_)
            | ServerFrame::CreateUserOk(_)
            | ServerFrame::ReplaceKeyOk(_)
    ) {
        check_account_members(text)?;
    }
    Ok(frame)
}

/// The members an account has on the wire: exactly these seven ([ACCT-1]). The typed decoder
/// ignores unknown members (as a client must, FRAME-22), so the runner checks the set itself.
const ACCOUNT_MEMBERS: [&str; 7] =
    ["key", "name", "parent", "invite_allowance", "publish_allowance", "published_entries", "published_bytes"];

fn check_account_members(text: &str) -> Result<(), ClientError> {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let extra: Vec<&String> = v
        .get("account")
        .and_then(|a| a.as_object())
        .map(|o| o.keys().filter(|k| !ACCOUNT_MEMBERS.contains(&k.as_str())).collect())
        .unwrap_or_default();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(ClientError::BadFrame {
            text: text.to_owned(),
            message: format!("an account has exactly the seven members of 07 §2 (ACCT-1), this one also {extra:?}"),
        })
    }
}

fn answer_id(text: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    v.get("id").and_then(|i| i.as_u64())
}

fn is_unaddressed_error(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text).ok().is_some_and(|v| {
        v.get("type").and_then(|t| t.as_str()) == Some("error") && v.get("id").is_some_and(|i| i.is_null())
    })
}

fn is_closing(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .is_some_and(|v| v.get("type").and_then(|t| t.as_str()) == Some("closing"))
}

fn is_push(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(|t| matches!(t, "event" | "stored_end" | "closing")))
        .unwrap_or(false)
}

/// An authenticated connection: who is logged in and the account the node welcomed.
#[derive(Debug)]
pub struct Session {
    /// The connection.
    pub conn: Connection,
    /// The user's key.
    pub user: SecretKey,
    /// The peer key the certificate blessed.
    pub peer: SecretKey,
    /// The account from `welcome`.
    pub account: Account,
}

/// Runs the handshake on an open connection as `user`, with a fresh peer key and a certificate
/// valid for an hour; `node_key` is the key in the dialled address.
pub async fn handshake(
    conn: Connection,
    node_key: PublicKey,
    user: &SecretKey,
    wait: Duration,
) -> Result<Session, ClientError> {
    handshake_until(conn, node_key, user, wait, now_ms() + 3_600_000).await
}

/// [`handshake`] with a certificate that expires at `expires` (milliseconds since the epoch):
/// the node ends the session then ([HS-55]).
pub async fn handshake_until(
    mut conn: Connection,
    node_key: PublicKey,
    user: &SecretKey,
    wait: Duration,
    expires: u64,
) -> Result<Session, ClientError> {
    let peer = SecretKey::random();
    let cert = Certificate::issue(user, peer.public(), expires);
    let config = ClientConfig { peer: peer.clone(), cert, expected_node: node_key, version: PROTOCOL_VERSION.into() };
    let hello_id = conn.next_id();
    let (mut hs, hello) = ClientHandshake::start(config, random_bytes(), hello_id);
    conn.send(&ClientFrame::Hello(hello)).await?;
    let challenge = match conn.await_answer(hello_id, wait).await? {
        ServerFrame::Challenge(c) => c,
        ServerFrame::Error(e) => return Err(ClientError::Refused(e)),
        other => return Err(ClientError::Unexpected { expected: "challenge", got: other.to_text() }),
    };
    let auth_id = conn.next_id();
    let auth = hs.handle_challenge(&challenge, auth_id)?;
    conn.send(&ClientFrame::Auth(auth)).await?;
    let welcome = match conn.await_answer(auth_id, wait).await? {
        ServerFrame::Welcome(w) => w,
        ServerFrame::Error(e) => return Err(ClientError::Refused(e)),
        other => return Err(ClientError::Unexpected { expected: "welcome", got: other.to_text() }),
    };
    let account = hs.handle_welcome(&welcome)?;
    Ok(Session { conn, user: user.clone(), peer, account })
}

/// Connects to `url` and logs in as `user` (see [`handshake`]).
pub async fn login(url: &str, node_key: PublicKey, user: &SecretKey) -> Result<Session, ClientError> {
    let conn = Connection::open(url).await?;
    handshake(conn, node_key, user, DEFAULT_WAIT).await
}

impl Session {
    /// Invites a fresh user with a random key and name and the given allowances; returns its
    /// secret key and account.
    pub async fn invite_user(
        &mut self,
        invite_allowance: u64,
        publish_allowance: u64,
    ) -> Result<(SecretKey, Account), ClientError> {
        let key = SecretKey::random();
        let account = self.create_user(key.public(), &fresh_name(), invite_allowance, publish_allowance).await?;
        Ok((key, account))
    }

    /// Sends `create_user` and returns the new account, or the node's refusal.
    pub async fn create_user(
        &mut self,
        key: PublicKey,
        name: &str,
        invite_allowance: u64,
        publish_allowance: u64,
    ) -> Result<Account, ClientError> {
        let name =
            AccountName::new(name).map_err(|e| ClientError::Unexpected { expected: "a valid account name", got: e })?;
        let answer = self
            .conn
            .request(
                |id| ClientFrame::CreateUser(CreateUser { id, key, name, invite_allowance, publish_allowance }),
                DEFAULT_WAIT,
            )
            .await?;
        match answer {
            ServerFrame::CreateUserOk(ok) => Ok(ok.account),
            ServerFrame::Error(e) => Err(ClientError::Refused(e)),
            other => Err(ClientError::Unexpected { expected: "create_user_ok", got: other.to_text() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_names_are_valid_and_differ() {
        let a = fresh_name();
        assert!(AccountName::new(a.clone()).is_ok());
        assert_ne!(a, fresh_name());
    }

    #[test]
    fn transcript_shortens_long_frames() {
        let t = Transcript::default();
        t.push("c", Direction::Sent, &"é".repeat(3000));
        let lines = t.lines();
        assert!(lines[0].text.len() < 2200);
        assert!(lines[0].text.ends_with("bytes in all>"));
    }

    #[tokio::test]
    async fn the_pacer_keeps_a_quarter_in_reserve() {
        let start = std::time::Instant::now();
        let mut p = Pacer::new(1000);
        for _ in 0..750 {
            p.take().await;
        }
        assert!(start.elapsed() < Duration::from_millis(50), "a full bucket sends 750 at once");
        for _ in 0..75 {
            p.take().await;
        }
        // 75 more at 750 per second take a tenth of a second (at least; a busy host takes longer).
        assert!(start.elapsed() >= Duration::from_millis(95), "{:?}", start.elapsed());
    }

    #[tokio::test]
    async fn pace_is_scoped_to_the_task() {
        assert!(PACE.try_with(|r| *r).is_err());
        assert_eq!(with_pace(7, async { PACE.try_with(|r| *r).ok() }).await, Some(7));
    }

    #[test]
    fn error_codes_are_mapped_and_closes_shown_as_on_the_wire() {
        let map: BTreeMap<String, String> = [("E_JSON".to_owned(), "malformed_frame".to_owned())].into();
        let (text, spec) =
            map_error_code(&map, r#"{"type":"error","id":null,"code":"E_JSON","message":"m"}"#).expect("mapped");
        assert_eq!(spec, "malformed_frame");
        assert!(text.contains(r#""code":"malformed_frame""#), "{text}");
        assert_eq!(map_error_code(&map, r#"{"type":"error","id":1,"code":"internal"}"#), None);
        assert_eq!(map_error_code(&BTreeMap::new(), r#"{"code":"E_JSON"}"#), None);
        assert_eq!(show_close(&Some((1008, "bad_certificate".into()))), r#"close 1008 "bad_certificate""#);
        assert_eq!(show_close(&Some((1008, String::new()))), "close 1008 with no reason");
        assert_eq!(
            ClientError::Closed(Some((1009, "frame_too_large".into()))).to_string(),
            r#"connection closed: close 1009 "frame_too_large""#
        );
    }

    #[test]
    fn an_account_with_a_member_too_many_is_refused() {
        let ok = r#"{"type":"account_ok","id":1,"account":{"key":"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a","name":"bob","parent":null,"invite_allowance":null,"publish_allowance":null,"published_entries":0,"published_bytes":0}}"#;
        assert!(parse_server(ok).is_ok());
        let extra = ok.replace(r#""published_bytes":0}"#, r#""published_bytes":0,"admin":true}"#);
        assert!(matches!(parse_server(&extra), Err(ClientError::BadFrame { .. })));
    }

    #[test]
    fn answer_ids_and_pushes() {
        assert_eq!(answer_id(r#"{"type":"publish_ok","id":4}"#), Some(4));
        assert_eq!(answer_id(r#"{"type":"error","id":null}"#), None);
        assert!(is_push(r#"{"type":"event","sub":4}"#));
        assert!(!is_push(r#"{"type":"error","id":4}"#));
    }
}
