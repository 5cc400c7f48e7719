//! One websocket connection to a node over tokio-tungstenite, on the core's client session:
//! raw and typed sends (whole, fragmented, or queued and flushed together), receiving with
//! a deadline, request ids and answers, pacing, and a transcript.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kith_proto::frame::ErrorFrame;
use kith_proto::session::client::{ClientSession, ClientSessionError, Push, Received};
use kith_proto::{ClientFrame, RequestId, ServerFrame};
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::transcript::{show_payload, Direction, Transcript};

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
    Handshake(#[from] ClientSessionError),
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

/// The opcode a raw message is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// A text message (its bytes need not be UTF-8: the node must judge them).
    Text,
    /// A binary message.
    Binary,
}

/// How a connection is opened. Built from [`ConnectOptions::new`] or `default()` and the
/// setters; fields are added, never renamed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// The connection's name in the transcript (e.g. `admin`, `c1`).
    pub label: String,
    /// The transcript it records into.
    pub transcript: Transcript,
    /// How long the TCP connect and the websocket upgrade may take together.
    pub wait: Duration,
    /// The socket's receive buffer in bytes (`ws://` only): a small one with no automatic
    /// growth keeps what a client does not read in the node's queue, not in the client's
    /// kernel (the slow-consumer cases).
    pub recv_buffer: Option<u32>,
    /// The local address to connect from (`ws://` only), so that a node counts the connection
    /// toward it (e.g. any of 127.0.0.0/8 on loopback).
    pub source: Option<IpAddr>,
    /// The largest message the client accepts from the node, in bytes; the websocket layer's
    /// default (64 MiB) when `None`.
    pub max_message_size: Option<usize>,
    /// Whether frames are recorded from the start (see [`Connection::set_recording`]).
    pub record: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions::new("c", Transcript::default())
    }
}

impl ConnectOptions {
    /// Options for a connection named `label` recording into `transcript`, connecting within
    /// [`DEFAULT_WAIT`], with the operating system's buffers.
    pub fn new(label: &str, transcript: Transcript) -> Self {
        ConnectOptions {
            label: label.to_owned(),
            transcript,
            wait: DEFAULT_WAIT,
            recv_buffer: None,
            source: None,
            max_message_size: None,
            record: true,
        }
    }

    /// Sets the connect timeout.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Sets the socket's receive buffer.
    pub fn recv_buffer(mut self, bytes: u32) -> Self {
        self.recv_buffer = Some(bytes);
        self
    }

    /// Sets the local address to connect from.
    pub fn source(mut self, addr: IpAddr) -> Self {
        self.source = Some(addr);
        self
    }

    /// Sets the largest message accepted from the node.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = Some(bytes);
        self
    }

    /// Sets whether frames are recorded from the start.
    pub fn recording(mut self, on: bool) -> Self {
        self.record = on;
        self
    }
}

/// A websocket connection to a node, with the core's client session (request ids, outstanding
/// requests, pushes), a transcript and a queue of frames that arrived while the client waited
/// for something else.
pub struct Connection {
    pub(crate) ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub(crate) label: String,
    pub(crate) transcript: Transcript,
    /// The sans-IO session: request ids, outstanding requests, the handshake.
    pub(crate) session: ClientSession,
    pub(crate) queued: VecDeque<String>,
    pub(crate) closed: Option<Option<(u16, String)>>,
    error_map: Arc<BTreeMap<String, String>>,
    pacer: Option<Pacer>,
    /// Frames not recorded while recording is off (see [`Connection::set_recording`]).
    unrecorded: Option<u64>,
    /// Whether the last text frame received was an answer to no outstanding request.
    stray: bool,
    /// Whether receiving checks what the node sends against the rules a client can see.
    checks: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("label", &self.label).finish_non_exhaustive()
    }
}

impl Connection {
    /// Opens a websocket to `url` within `wait`, recording into `transcript` as `label`.
    pub async fn connect(url: &str, label: &str, transcript: Transcript, wait: Duration) -> Result<Self, ClientError> {
        Self::connect_with(url, ConnectOptions::new(label, transcript).wait(wait)).await
    }

    /// Opens a websocket (`ws://` only) whose socket has a receive buffer of about
    /// `recv_buffer` bytes (see [`ConnectOptions::recv_buffer`]).
    pub async fn connect_small_buffer(
        url: &str,
        label: &str,
        transcript: Transcript,
        wait: Duration,
        recv_buffer: u32,
    ) -> Result<Self, ClientError> {
        Self::connect_with(url, ConnectOptions::new(label, transcript).wait(wait).recv_buffer(recv_buffer)).await
    }

    /// Opens a websocket with a private transcript.
    pub async fn open(url: &str) -> Result<Self, ClientError> {
        Self::connect_with(url, ConnectOptions::default()).await
    }

    /// Opens a websocket to `url` as `options` say.
    pub async fn connect_with(url: &str, options: ConnectOptions) -> Result<Self, ClientError> {
        let fail = |message: String| ClientError::Connect { url: url.to_owned(), message };
        let wait = options.wait;
        let config = options.max_message_size.map(|n| WebSocketConfig::default().max_message_size(Some(n)));
        let ws = if options.recv_buffer.is_none() && options.source.is_none() {
            let (ws, _) = tokio::time::timeout(wait, tokio_tungstenite::connect_async_with_config(url, config, false))
                .await
                .map_err(|_| fail(format!("no websocket within {wait:?}")))?
                .map_err(|e| fail(e.to_string()))?;
            ws
        } else {
            let request = url.into_client_request().map_err(|e| fail(e.to_string()))?;
            let uri = request.uri();
            if uri.scheme_str() != Some("ws") {
                return Err(fail("a receive buffer or a source address needs a ws:// URL".into()));
            }
            let host = uri.host().unwrap_or("localhost").trim_start_matches('[').trim_end_matches(']').to_owned();
            let port = uri.port_u16().unwrap_or(80);
            let open = async {
                let addr = tokio::net::lookup_host((host.as_str(), port))
                    .await?
                    .find(|a| options.source.map_or(true, |s| s.is_ipv4() == a.is_ipv4()))
                    .ok_or_else(|| std::io::Error::other(format!("{host} has no address of the source's family")))?;
                let socket =
                    if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
                if let Some(bytes) = options.recv_buffer {
                    socket.set_recv_buffer_size(bytes)?;
                }
                if let Some(source) = options.source {
                    socket.bind(SocketAddr::new(source, 0))?;
                }
                socket.connect(addr).await
            };
            let upgrade = async {
                let tcp = open.await.map_err(|e| fail(e.to_string()))?;
                tokio_tungstenite::client_async_with_config(request, MaybeTlsStream::Plain(tcp), config)
                    .await
                    .map_err(|e| fail(e.to_string()))
            };
            let (ws, _) = tokio::time::timeout(wait, upgrade)
                .await
                .map_err(|_| fail(format!("no websocket within {wait:?}")))??;
            ws
        };
        options.transcript.push(&options.label, Direction::Note, &format!("connected to {url}"));
        Ok(Connection {
            ws,
            label: options.label,
            transcript: options.transcript,
            session: ClientSession::new(),
            queued: VecDeque::new(),
            closed: None,
            error_map: Arc::new(BTreeMap::new()),
            pacer: PACE.try_with(|r| Pacer::new(*r)).ok(),
            unrecorded: if options.record { None } else { Some(0) },
            stray: false,
            checks: true,
        })
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

    /// Whether receiving checks the node's frames against the rules a client can see (no frame
    /// after a `closing` push, FRAME-32). On by default; the fuzz family turns it off, as its
    /// oracle judges every frame itself.
    pub fn set_checks(&mut self, on: bool) {
        self.checks = on;
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

    /// The connection's name in the transcript.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The core's client session under this connection.
    pub fn session(&self) -> &ClientSession {
        &self.session
    }

    /// A fresh request id for this connection.
    pub fn next_id(&mut self) -> RequestId {
        self.session.next_id().expect("a connection counts its request ids from 1 and never reaches 2^53")
    }

    /// Whether the node has closed the connection (a close frame came or the stream ended).
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
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

    pub(crate) fn record(&mut self, dir: Direction, text: &str) {
        match &mut self.unrecorded {
            Some(n) => *n += 1,
            None => self.transcript.push(&self.label, dir, text),
        }
    }

    /// Adds a remark to the transcript.
    pub fn note(&self, text: &str) {
        self.transcript.push(&self.label, Direction::Note, text);
    }

    /// Sends one text frame exactly as given; its `id`, if it has one, is outstanding until
    /// answered.
    pub async fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.session.sent_text(text);
        self.send_untracked(text).await
    }

    /// Sends a text frame whose id the session already tracks (the handshake's).
    pub(crate) async fn send_untracked(&mut self, text: &str) -> Result<(), ClientError> {
        self.pace().await;
        self.record(Direction::Sent, text);
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
        self.pace().await;
        self.record(Direction::Sent, &format!("<text message of {} raw bytes>", bytes.len()));
        let frame = Frame::message(bytes, OpCode::Data(Data::Text), true);
        self.ws.send(Message::Frame(frame)).await.map_err(|e| ClientError::Ws(e.to_string()))
    }

    /// Sends one message exactly: its opcode, its bytes (UTF-8 or not), cut into fragments at
    /// the byte offsets `cuts` (none: one frame), the first with the opcode and the rest as
    /// continuations. A node may close while the rest is still being sent (e.g. on invalid UTF-8
    /// in the first fragment): the stop is noted in the transcript and is not an error, since
    /// what the node answered is read afterwards.
    pub async fn send_fragmented(&mut self, opcode: Opcode, bytes: &[u8], cuts: &[usize]) -> Result<(), ClientError> {
        let kind = match opcode {
            Opcode::Text => "text",
            Opcode::Binary => "binary",
        };
        let frags = if cuts.is_empty() { String::new() } else { format!(", {} fragments", cuts.len() + 1) };
        self.pace().await;
        self.record(
            Direction::Sent,
            &format!("<{kind} message, {} bytes{frags}> {}", bytes.len(), show_payload(bytes)),
        );
        let data = match opcode {
            Opcode::Text => Data::Text,
            Opcode::Binary => Data::Binary,
        };
        let mut bounds = vec![0];
        bounds.extend(cuts.iter().map(|c| (*c).min(bytes.len())));
        bounds.push(bytes.len());
        let n = bounds.len() - 1;
        for i in 0..n {
            let chunk = bytes[bounds[i]..bounds[i + 1].max(bounds[i])].to_vec();
            let code = if i == 0 { OpCode::Data(data) } else { OpCode::Data(Data::Continue) };
            let frame = Frame::message(chunk, code, i == n - 1);
            if let Err(e) = self.ws.send(Message::Frame(frame)).await {
                self.note(&format!("send stopped after fragment {i}: {e}"));
                return Ok(());
            }
        }
        Ok(())
    }

    /// Queues a text frame without flushing it (see [`Connection::flush`]), so that many
    /// frames reach the node back to back (pipelining, floods); it is paced like a send.
    pub async fn feed_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.session.sent_text(text);
        self.pace().await;
        self.record(Direction::Sent, text);
        self.ws.feed(Message::text(text.to_owned())).await.map_err(|e| ClientError::Ws(e.to_string()))
    }

    /// Queues a binary frame without flushing it.
    pub async fn feed_binary(&mut self, bytes: Vec<u8>) -> Result<(), ClientError> {
        self.pace().await;
        self.record(Direction::Sent, &format!("<binary {} bytes>", bytes.len()));
        self.ws.feed(Message::binary(bytes)).await.map_err(|e| ClientError::Ws(e.to_string()))
    }

    /// Sends everything queued with the `feed_*` methods.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        self.ws.flush().await.map_err(|e| ClientError::Ws(e.to_string()))
    }

    /// Sends a typed frame.
    pub async fn send(&mut self, frame: &ClientFrame) -> Result<(), ClientError> {
        self.send_text(&frame.to_text()).await
    }

    /// Closes the websocket politely, waiting at most two seconds for the close to go out.
    pub async fn close(&mut self) {
        self.transcript.push(&self.label, Direction::Note, "client closes");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
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
                    if self.checks && self.session.closing_seen() {
                        return Err(ClientError::BadFrame {
                            text: t.as_str().to_owned(),
                            message: "a frame after a closing push, which must be the last frame (FRAME-32)".into(),
                        });
                    }
                    let text = self.map_error_code(t.as_str().to_owned());
                    // An answer settles its outstanding request; an answer to none is a stray
                    // (see `await_answer`).
                    self.stray = matches!(self.session.receive(&text), Received::Stray(_));
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
        if let Some(pos) = self.queued.iter().position(|t| answers(t) == Some(id.get())) {
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
                    let push = kith_proto::session::client::push_kind(&text);
                    if answers(&text) == Some(id.get()) || push == Some(Push::UnaddressedError) {
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

    /// Sends a typed request built with a fresh id and collects what arrives until its answer:
    /// the pushes that came first, in order, and the answer.
    pub async fn request_collecting(
        &mut self,
        build: impl FnOnce(RequestId) -> ClientFrame,
        wait: Duration,
    ) -> Result<(Vec<ServerFrame>, ServerFrame), ClientError> {
        let id = self.next_id();
        self.send(&build(id)).await?;
        let answer = self.await_answer(id, wait).await?;
        let mut pushes = Vec::new();
        let mut rest = VecDeque::new();
        while let Some(text) = self.queued.pop_front() {
            if crate::util::is_push(&text) {
                pushes.push(parse_server(&text)?);
            } else {
                rest.push_back(text);
            }
        }
        self.queued = rest;
        Ok((pushes, answer))
    }

    /// Sends a typed request built with a fresh id and returns its answer, dropping the pushes
    /// that came before it (a tool that subscribes for load, not to read the events).
    pub async fn request_skipping_pushes(
        &mut self,
        build: impl FnOnce(RequestId) -> ClientFrame,
        wait: Duration,
    ) -> Result<ServerFrame, ClientError> {
        let id = self.next_id();
        self.send(&build(id)).await?;
        let answer = self.await_answer(id, wait).await?;
        self.queued.retain(|text| !crate::util::is_push(text));
        Ok(answer)
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

/// Decodes a frame from the node as a server frame, and checks what the typed decoder lets
/// pass (an account's member set).
pub fn parse_server(text: &str) -> Result<ServerFrame, ClientError> {
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

/// The id a frame that is not a push answers, if it carries an integer one.
fn answers(text: &str) -> Option<u64> {
    if crate::util::is_push(text) {
        return None;
    }
    kith_proto::session::client::frame_id(text)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn answer_ids_skip_pushes() {
        assert_eq!(answers(r#"{"type":"publish_ok","id":4}"#), Some(4));
        assert_eq!(answers(r#"{"type":"error","id":null}"#), None);
        assert_eq!(answers(r#"{"type":"event","sub":4,"id":4}"#), None);
    }
}
