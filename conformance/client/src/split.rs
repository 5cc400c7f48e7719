//! What the load and soak tools need beyond request and answer: a connection split into a send
//! half and a receive half (a publisher sends on one task while another reads the answers),
//! frames read as raw text without decoding them (a generator must stay far cheaper than the node
//! it measures), raw messages sent with the way the connection ended as the error, a TCP reset
//! instead of a close, and how a stream ended ([`End`]: a close frame, a reset, or an end without
//! a close frame), which the soak tallies.
//!
//! These reads and sends go around the client session and the pacer: a raw frame is neither
//! checked nor counted as an answer, and a raw send is not paced. They are recorded in the
//! transcript like any other while recording is on (the halves of a split do not record).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::connection::{show_close, ClientError, Connection};
use crate::transcript::Direction;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a connection ended, as seen from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The node sent a close frame: its code and reason, or `None` for a close frame without
    /// a payload.
    Close(Option<(u16, String)>),
    /// The TCP connection was reset (RST): the node dropped it without a close.
    Reset,
    /// The stream ended (FIN) without a close frame.
    WithoutClose,
    /// Another websocket or socket error, in the websocket layer's words.
    Error(String),
}

impl End {
    /// How the websocket layer's error `e` ended the connection: a reset for a reset socket,
    /// an end without close for a stream that stopped before the closing handshake.
    pub fn from_ws_error(e: &WsError) -> End {
        match e {
            WsError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset => End::Reset,
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)
            | WsError::ConnectionClosed
            | WsError::AlreadyClosed => End::WithoutClose,
            other => End::Error(other.to_string()),
        }
    }

    /// The end a [`Connection`] remembers (it keeps only the close frame, if any).
    fn from_closed(closed: &Option<(u16, String)>) -> End {
        match closed {
            Some(c) => End::Close(Some(c.clone())),
            None => End::WithoutClose,
        }
    }
}

/// In the words the soak's tables use: `close 1008 rate_limited`, `close (no code)`, `reset`,
/// `ended without close frame`, `error: ...`.
impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Close(Some((code, reason))) => write!(f, "close {code} {reason}"),
            End::Close(None) => f.write_str("close (no code)"),
            End::Reset => f.write_str("reset"),
            End::WithoutClose => f.write_str("ended without close frame"),
            End::Error(e) => write!(f, "error: {e}"),
        }
    }
}

/// A message as it arrived, not decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Raw {
    /// A text message, its JSON unparsed.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// The connection ended, and how.
    Ended(End),
}

/// A message to send exactly as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A text message.
    Text(String),
    /// A text message whose payload is exactly these bytes, UTF-8 or not.
    TextBytes(Vec<u8>),
    /// A binary message.
    Binary(Vec<u8>),
}

impl Outgoing {
    fn message(self) -> Message {
        match self {
            Outgoing::Text(t) => Message::text(t),
            Outgoing::TextBytes(b) => Message::Frame(Frame::message(b, OpCode::Data(Data::Text), true)),
            Outgoing::Binary(b) => Message::binary(b),
        }
    }

    fn show(&self) -> String {
        match self {
            Outgoing::Text(t) => t.clone(),
            Outgoing::TextBytes(b) => format!("<text message of {} raw bytes>", b.len()),
            Outgoing::Binary(b) => format!("<binary {} bytes>", b.len()),
        }
    }
}

/// Why a raw read returned no text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RawError {
    /// Nothing arrived in time.
    #[error("nothing received within {0:?}")]
    Timeout(Duration),
    /// A binary message came, which the node never sends.
    #[error("binary frame from the node")]
    Binary,
    /// The connection ended.
    #[error("connection {0}")]
    Ended(End),
}

/// One websocket message from the stream, undecoded; ping and pong are skipped.
fn raw(next: Option<Result<Message, WsError>>) -> Option<Raw> {
    Some(match next {
        Some(Ok(Message::Text(t))) => Raw::Text(t.as_str().to_owned()),
        Some(Ok(Message::Binary(b))) => Raw::Binary(b.to_vec()),
        Some(Ok(Message::Close(f))) => {
            Raw::Ended(End::Close(f.map(|f| (u16::from(f.code), f.reason.as_str().to_owned()))))
        }
        Some(Ok(_)) => return None,
        Some(Err(e)) => Raw::Ended(End::from_ws_error(&e)),
        None => Raw::Ended(End::WithoutClose),
    })
}

impl Connection {
    /// Splits the connection into a send half and a receive half that can be used from two
    /// tasks at once (a pipelining publisher). The halves do not record, track request ids or
    /// pace; frames already queued by this connection are lost.
    pub fn split(self) -> (SendHalf, RecvHalf) {
        let (sink, stream) = self.ws.split();
        (SendHalf { sink }, RecvHalf { stream, ended: None })
    }

    /// Turns Nagle's algorithm off (`on`) or back on, so that a small frame leaves at once.
    pub fn set_nodelay(&self, on: bool) -> std::io::Result<()> {
        match self.ws.get_ref() {
            MaybeTlsStream::Plain(tcp) => tcp.set_nodelay(on),
            _ => Ok(()),
        }
    }

    /// Drops the connection with a TCP reset (SO_LINGER 0, so the kernel sends RST), without a
    /// close frame or FIN; a plain `drop` ends it with a FIN instead.
    pub fn reset(self) {
        if let MaybeTlsStream::Plain(tcp) = self.ws.get_ref() {
            // If the option cannot be set, the drop below still ends the connection (with FIN).
            let _ = tcp.set_zero_linger();
        }
        drop(self);
    }

    /// The next message within `wait` as it arrived, not decoded and not checked (queued
    /// frames first); `None` when nothing came. Once the connection has ended it returns how
    /// (a close frame, or an end without one).
    pub async fn next_raw(&mut self, wait: Duration) -> Option<Raw> {
        if let Some(text) = self.queued.pop_front() {
            return Some(Raw::Text(text));
        }
        if let Some(closed) = &self.closed {
            return Some(Raw::Ended(End::from_closed(closed)));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next()).await.ok()?;
            let Some(got) = raw(next) else { continue };
            match &got {
                Raw::Text(t) => self.record(Direction::Received, t),
                Raw::Binary(b) => self.record(Direction::Received, &format!("<binary {} bytes>", b.len())),
                Raw::Ended(end) => {
                    self.closed = Some(match end {
                        End::Close(c) => c.clone(),
                        _ => None,
                    });
                    let shown = match end {
                        End::Close(c) => show_close(c),
                        other => other.to_string(),
                    };
                    self.transcript.push(&self.label, Direction::Note, &format!("<{shown}>"));
                }
            }
            return Some(got);
        }
    }

    /// Sends one message exactly as given, unpaced and untracked; the error says how the
    /// connection ended if it had.
    pub async fn send_raw(&mut self, message: Outgoing) -> Result<(), End> {
        self.record(Direction::Sent, &message.show());
        self.ws.send(message.message()).await.map_err(|e| End::from_ws_error(&e))
    }

    /// Queues one message exactly as given without flushing it (see [`Connection::flush_raw`]).
    pub async fn feed_raw(&mut self, message: Outgoing) -> Result<(), End> {
        self.record(Direction::Sent, &message.show());
        self.ws.feed(message.message()).await.map_err(|e| End::from_ws_error(&e))
    }

    /// Sends what [`Connection::feed_raw`] queued.
    pub async fn flush_raw(&mut self) -> Result<(), End> {
        self.ws.flush().await.map_err(|e| End::from_ws_error(&e))
    }
}

/// The socket address a websocket URL names: its host resolved (the first address), its port or
/// 80; for a tool that opens plain TCP connections beside its websockets (the soak's hand-made
/// upgrades).
pub async fn socket_addr(url: &str) -> Result<SocketAddr, ClientError> {
    let fail = |message: String| ClientError::Connect { url: url.to_owned(), message };
    let request = url.into_client_request().map_err(|e| fail(e.to_string()))?;
    let uri = request.uri();
    let host = uri.host().ok_or_else(|| fail("no host".into()))?.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let first = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| fail(format!("{host}: {e}")))?
        .next()
        .ok_or_else(|| fail(format!("{host}: no address")));
    first
}

/// The sending half of a split [`Connection`].
pub struct SendHalf {
    sink: SplitSink<Ws, Message>,
}

impl fmt::Debug for SendHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendHalf").finish_non_exhaustive()
    }
}

impl SendHalf {
    /// Queues a text message without flushing it (pipelining).
    pub async fn feed_text(&mut self, text: String) -> Result<(), End> {
        self.sink.feed(Message::text(text)).await.map_err(|e| End::from_ws_error(&e))
    }

    /// Sends a text message at once.
    pub async fn send_text(&mut self, text: String) -> Result<(), End> {
        self.sink.send(Message::text(text)).await.map_err(|e| End::from_ws_error(&e))
    }

    /// Sends what [`SendHalf::feed_text`] queued.
    pub async fn flush(&mut self) -> Result<(), End> {
        self.sink.flush().await.map_err(|e| End::from_ws_error(&e))
    }

    /// Sends a close frame and flushes it.
    pub async fn close(&mut self) -> Result<(), End> {
        self.sink.close().await.map_err(|e| End::from_ws_error(&e))
    }
}

/// The receiving half of a split [`Connection`]: raw text, not decoded.
pub struct RecvHalf {
    stream: SplitStream<Ws>,
    ended: Option<End>,
}

impl fmt::Debug for RecvHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvHalf").field("ended", &self.ended).finish_non_exhaustive()
    }
}

impl RecvHalf {
    /// The next message, however long it takes; once the connection has ended, how it ended.
    /// Cancel-safe: a `select!` may drop it without losing a message.
    pub async fn next_raw(&mut self) -> Raw {
        if let Some(end) = &self.ended {
            return Raw::Ended(end.clone());
        }
        loop {
            if let Some(got) = raw(self.stream.next().await) {
                if let Raw::Ended(end) = &got {
                    self.ended = Some(end.clone());
                }
                return got;
            }
        }
    }

    /// The next text message within `wait`, its JSON unparsed.
    pub async fn next_text(&mut self, wait: Duration) -> Result<String, RawError> {
        match tokio::time::timeout(wait, self.next_raw()).await {
            Err(_) => Err(RawError::Timeout(wait)),
            Ok(Raw::Text(t)) => Ok(t),
            Ok(Raw::Binary(_)) => Err(RawError::Binary),
            Ok(Raw::Ended(end)) => Err(RawError::Ended(end)),
        }
    }
}
