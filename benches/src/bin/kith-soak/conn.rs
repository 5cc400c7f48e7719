//! The tool's websocket client: a connection from a chosen source address with an optional small
//! receive buffer, the handshake, requests and their answers, the frames read without decoding
//! entries, raw upgrades and raw frames for the attacks. Everything that sends or receives on a
//! socket is here.
//!
//! The websocket is the shared driver's [`Connection`] (`kith-client`), as the runner's is, and
//! the handshake runs on the core's client session; the clock, randomness, request ids, names and
//! the push test are the driver's too. The soak reads frames raw ([`Connection::next_raw`]),
//! sends malformed ones as given ([`Connection::send_raw`]), drops a connection with a TCP reset
//! ([`Connection::reset`]) and tallies how each one ended in the driver's words ([`End`]: a close
//! frame, a reset, or an end without close). Only the hand-made upgrades of the pre-upgrade
//! attacks stay on plain TCP here, since no websocket library may read behind their back.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use kith_client::{
    client_config, counted_id, fresh_name, is_push, now_ms, random_bytes, socket_addr, ConnectOptions, Connection,
    Outgoing, Raw, Transcript,
};
use kith_proto::account::{AccountName, CreateUser};
use kith_proto::node_info::{Limits, NodeInfo};
use kith_proto::session::client::ClientSession;
use kith_proto::{ClientFrame, PublicKey, RequestId, SecretKey, ServerFrame};
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};

use crate::ctx::Ctx;
use crate::tally::short;
use crate::Res;

/// How long one answer may take before the request counts as failed.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A frame from the node, read without decoding entries.
#[derive(Deserialize, Default)]
pub(crate) struct Lite {
    #[serde(rename = "type", default)]
    pub(crate) ty: String,
    #[serde(default)]
    pub(crate) id: Option<u64>,
    #[serde(default)]
    pub(crate) sub: Option<u64>,
    #[serde(default)]
    pub(crate) code: Option<String>,
}

pub(crate) fn lite(text: &str) -> Lite {
    serde_json::from_str(text).unwrap_or_else(|_| Lite { ty: "<not a frame>".into(), ..Lite::default() })
}

/// A frame in a word or two: `error CODE`, `closing CODE`, or its type.
pub(crate) fn describe(text: &str) -> String {
    let l = lite(text);
    match (l.ty.as_str(), l.code) {
        ("error" | "closing", Some(code)) => format!("{} {code}", l.ty),
        _ => l.ty,
    }
}

pub(crate) enum Got {
    Text(String),
    Binary,
    /// The connection ended: `close CODE REASON`, `reset`, `ended without close frame`.
    Closed(String),
}

pub(crate) struct Conn {
    pub(crate) ws: Connection,
    pub(crate) next_id: u64,
    pub(crate) ended: Option<String>,
    pub(crate) events: u64,
    pub(crate) ended_subs: BTreeSet<u64>,
}

/// Options for the soak's connections: no transcript (a soak opens thousands), the connect and
/// the upgrade within [`WAIT`].
fn options() -> ConnectOptions {
    ConnectOptions::new("soak", Transcript::default()).wait(WAIT).recording(false)
}

impl Conn {
    /// Opens a websocket from `source` (when binding) with an optional small receive buffer.
    pub(crate) async fn open(ctx: &Ctx, source: Option<IpAddr>, rcvbuf: Option<u32>) -> Res<Conn> {
        let mut options = options();
        if let Some(b) = rcvbuf {
            options = options.recv_buffer(b);
        }
        if let Some(ip) = source.filter(|_| ctx.bind) {
            options = options.source(ip);
        }
        let ws = Connection::connect_with(ctx.url.as_str(), options).await.map_err(|e| format!("websocket: {e}"))?;
        let _ = ws.set_nodelay(true);
        Ok(Conn { ws, next_id: 1, ended: None, events: 0, ended_subs: BTreeSet::new() })
    }

    /// A plain TCP connection to the node (for the hand-made upgrades).
    pub(crate) async fn tcp(ctx: &Ctx, source: Option<IpAddr>, rcvbuf: Option<u32>) -> Res<TcpStream> {
        let sock = if ctx.addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }
            .map_err(|e| format!("socket: {e}"))?;
        if let Some(b) = rcvbuf {
            sock.set_recv_buffer_size(b).map_err(|e| format!("SO_RCVBUF: {e}"))?;
        }
        if let Some(ip) = source.filter(|_| ctx.bind) {
            sock.bind(SocketAddr::new(ip, 0)).map_err(|e| format!("bind {ip}: {e}"))?;
        }
        let tcp = tokio::time::timeout(WAIT, sock.connect(ctx.addr))
            .await
            .map_err(|_| "no TCP connection in time".to_owned())?
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    /// Opens and logs in as `user`, holding the gate shared.
    pub(crate) async fn session(ctx: &Ctx, source: Option<IpAddr>, user: &SecretKey, rcvbuf: Option<u32>) -> Res<Conn> {
        let _shared = ctx.gate.read().await;
        let mut c = Conn::open(ctx, source, rcvbuf).await?;
        c.login(ctx.node, user).await?;
        Ok(c)
    }

    pub(crate) fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub(crate) async fn send(&mut self, text: String) -> Res<()> {
        self.send_msg(Outgoing::Text(text)).await
    }

    pub(crate) async fn send_msg(&mut self, m: Outgoing) -> Res<()> {
        self.ws.send_raw(m).await.map_err(|e| format!("send: {e}"))
    }

    /// The next message within `wait`; `None` when nothing came.
    pub(crate) async fn recv(&mut self, wait: Duration) -> Option<Got> {
        if let Some(c) = &self.ended {
            return Some(Got::Closed(c.clone()));
        }
        match self.ws.next_raw(wait).await? {
            Raw::Text(t) => Some(Got::Text(t)),
            Raw::Binary(_) => Some(Got::Binary),
            Raw::Ended(end) => {
                let ended = end.to_string();
                self.ended = Some(ended.clone());
                Some(Got::Closed(ended))
            }
        }
    }

    pub(crate) fn note_push(&mut self, l: &Lite) {
        match l.ty.as_str() {
            "event" => self.events += 1,
            "stored_end" => {
                if let Some(s) = l.sub {
                    self.ended_subs.insert(s);
                }
            }
            _ => {}
        }
    }

    /// Waits for the answer to request `id` (or an error with id null), counting pushes.
    pub(crate) async fn answer(&mut self, id: u64) -> Res<(Lite, String)> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await {
                None => return Err("no answer in time".into()),
                Some(Got::Text(t)) => {
                    let l = lite(&t);
                    if is_push(&t) {
                        self.note_push(&l);
                        continue;
                    }
                    if l.id == Some(id) || (l.ty == "error" && l.id.is_none()) {
                        return Ok((l, t));
                    }
                    return Err(format!("answer to another request: {}", short(&t)));
                }
                Some(Got::Binary) => return Err("binary frame from the node".into()),
                Some(Got::Closed(c)) => return Err(format!("connection {c}")),
            }
        }
    }

    /// Sends a typed request and returns its answer: `Ok(Ok(text))` when its type is `ok`,
    /// `Ok(Err(code))` for an error frame, `Err` when the exchange itself failed.
    pub(crate) async fn call(
        &mut self,
        build: impl FnOnce(RequestId) -> ClientFrame,
        ok: &str,
    ) -> Res<Result<String, String>> {
        let id = self.id();
        self.send(build(counted_id(id)).to_text()).await?;
        let (l, text) = self.answer(id).await?;
        if l.ty == ok {
            Ok(Ok(text))
        } else if l.ty == "error" {
            Ok(Err(l.code.unwrap_or_else(|| "?".into())))
        } else {
            Err(format!("expected {ok}, got {}", short(&text)))
        }
    }

    /// Like [`Conn::call`] for requests that must succeed.
    pub(crate) async fn must(&mut self, build: impl FnOnce(RequestId) -> ClientFrame, ok: &str) -> Res<String> {
        match self.call(build, ok).await? {
            Ok(t) => Ok(t),
            Err(code) => Err(format!("{ok}: refused {code}")),
        }
    }

    /// Creates an account for `key` under this session's user, with a fresh name.
    pub(crate) async fn create_user(
        &mut self,
        key: PublicKey,
        invite_allowance: u64,
        publish_allowance: u64,
    ) -> Res<()> {
        let name = AccountName::new(fresh_name()).map_err(|e| format!("account name: {e}"))?;
        self.must(
            |id| ClientFrame::CreateUser(CreateUser { id, key, name, invite_allowance, publish_allowance }),
            "create_user_ok",
        )
        .await
        .map(drop)
    }

    /// Logs in as `user` on the core's client session (see [`Conn::hello`]).
    pub(crate) async fn login(&mut self, node: PublicKey, user: &SecretKey) -> Res<()> {
        let (mut session, hid) = self.hello(node, user).await?;
        let (_, text) = self.answer(hid).await?;
        let challenge = match ServerFrame::parse(&text) {
            Ok(ServerFrame::Challenge(c)) => c,
            _ => return Err(format!("expected challenge, got {}", short(&text))),
        };
        let aid = self.auth_id();
        let auth = session.handle_challenge(&challenge).map_err(|e| format!("handshake: {e}"))?;
        self.send(ClientFrame::Auth(auth).to_text()).await?;
        let (_, text) = self.answer(aid).await?;
        match ServerFrame::parse(&text) {
            Ok(ServerFrame::Welcome(welcome)) => {
                session.handle_welcome(&welcome).map(drop).map_err(|e| format!("handshake: {e}"))
            }
            _ => Err(format!("expected welcome, got {}", short(&text))),
        }
    }

    /// Sends `hello` as `user` with a fresh peer key, from a client session of the core whose
    /// ids continue this connection's; returns the session and the hello's id.
    pub(crate) async fn hello(&mut self, node: PublicKey, user: &SecretKey) -> Res<(ClientSession, u64)> {
        let peer = SecretKey::random();
        let config = client_config(node, user, &peer, now_ms() + 24 * 3_600_000);
        let hid = self.id();
        let mut session = ClientSession::starting_at(hid);
        let hello = session.hello(config, random_bytes()).map_err(|e| format!("handshake: {e}"))?;
        self.send(ClientFrame::Hello(hello).to_text()).await?;
        Ok((session, hid))
    }

    /// The id the session gives `auth`: the one after the hello's, taken from this connection's
    /// counter too, so that the two count alike.
    pub(crate) fn auth_id(&mut self) -> u64 {
        self.id()
    }

    /// What the node sends next, in words: frames until `quiet` passes with nothing (the first
    /// frame may take `first`) or the connection ends; `nothing` when nothing came.
    pub(crate) async fn outcome(&mut self, first: Duration, quiet: Duration) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut wait = first;
        while parts.len() < 8 {
            match self.recv(wait).await {
                None => break,
                Some(Got::Text(t)) => parts.push(describe(&t)),
                Some(Got::Binary) => parts.push("binary".into()),
                Some(Got::Closed(c)) => {
                    parts.push(c);
                    break;
                }
            }
            wait = quiet;
        }
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    }

    /// Waits for `stored_end` of subscription `sub`, counting the events before it.
    pub(crate) async fn await_stored_end(&mut self, sub: u64) -> Res<()> {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.ended_subs.remove(&sub) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await {
                None => return Err("no stored_end in time".into()),
                Some(Got::Text(t)) => {
                    let l = lite(&t);
                    if !is_push(&t) {
                        return Err(format!("unexpected frame awaiting stored_end: {}", short(&t)));
                    }
                    self.note_push(&l);
                }
                Some(Got::Binary) => return Err("binary frame from the node".into()),
                Some(Got::Closed(c)) => return Err(format!("connection {c}")),
            }
        }
        Ok(())
    }

    /// Reads pushes until `until`, counting events (a client that reads while it waits).
    pub(crate) async fn idle_until(&mut self, until: Instant) -> Res<()> {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            match self.recv(left).await {
                None => return Ok(()),
                Some(Got::Text(t)) => {
                    let l = lite(&t);
                    if !is_push(&t) {
                        return Err(format!("unexpected frame while idle: {}", short(&t)));
                    }
                    self.note_push(&l);
                }
                Some(Got::Binary) => return Err("binary frame from the node".into()),
                Some(Got::Closed(c)) => return Err(format!("connection {c}")),
            }
        }
    }

    /// Reads everything until the connection ends or nothing comes for `quiet`; returns the
    /// frames read and how it ended (`still open` if it did not).
    pub(crate) async fn drain(&mut self, quiet: Duration) -> (u64, String) {
        let mut frames = 0;
        loop {
            match self.recv(quiet).await {
                None => return (frames, "still open".into()),
                Some(Got::Text(_) | Got::Binary) => frames += 1,
                Some(Got::Closed(c)) => return (frames, c),
            }
        }
    }

    /// Closes politely and waits (briefly) for the node's close.
    pub(crate) async fn close(mut self) {
        if self.ended.is_none() {
            self.ws.close().await;
            let wait = Duration::from_secs(2);
            let _ = tokio::time::timeout(wait, async {
                while !matches!(self.ws.next_raw(wait).await, Some(Raw::Ended(_)) | None) {}
            })
            .await;
        }
    }

    /// Drops the TCP connection without a WebSocket close: FIN, or RST with `rst`.
    pub(crate) fn drop_tcp(self, rst: bool) {
        if rst {
            self.ws.reset();
        }
    }
}

/// One WebSocket frame from a client: FIN, the opcode, a zero mask key (payload unchanged).
pub(crate) fn ws_frame(payload: &[u8], opcode: u8) -> Vec<u8> {
    let n = payload.len();
    let mut out = vec![0x80 | opcode];
    if n < 126 {
        out.push(0x80 | n as u8);
    } else if n < 65536 {
        out.push(0x80 | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
    out
}

/// A TCP connection upgraded to a WebSocket by hand, so that the soak can write to it without a
/// WebSocket library reading (and so draining the receive buffer) behind its back.
pub(crate) async fn raw_upgrade(ctx: &Ctx, source: Option<IpAddr>, rcvbuf: Option<u32>) -> Res<TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = Conn::tcp(ctx, source, rcvbuf).await?;
    // Any 16 bytes in base64 will do: the soak does not check the accept key.
    let key = "a2l0aC1zb2FrLWF0dGFjaw==";
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        ctx.addr
    );
    tcp.write_all(request.as_bytes()).await.map_err(|e| format!("upgrade request: {e}"))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(WAIT, tcp.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            Ok(Ok(_)) => return Err("closed during the upgrade".into()),
            Ok(Err(e)) => return Err(format!("upgrade: {e}")),
            Err(_) => return Err("no upgrade answer in time".into()),
        }
        if head.len() > 8192 {
            return Err("upgrade answer over 8 KiB".into());
        }
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(format!("upgrade refused: {}", short(&String::from_utf8_lossy(&head))));
    }
    Ok(tcp)
}

/// Whether the node ends `tcp` within `wait` (EOF or reset); reads and discards what comes.
pub(crate) async fn ended_within(tcp: &mut TcpStream, wait: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = vec![0u8; 65536];
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// The socket address in a ws:// URL, and whether it is loopback IPv4 (then the soak binds
/// 127.0.0.N source addresses).
pub(crate) async fn resolve(url: &str) -> Res<(SocketAddr, bool)> {
    let addr = socket_addr(url).await.map_err(|e| e.to_string())?;
    let loopback_v4 = matches!(addr.ip(), IpAddr::V4(ip) if ip.is_loopback());
    Ok((addr, loopback_v4))
}

pub(crate) async fn node_limits(url: &str) -> Res<Limits> {
    let mut ws = Connection::connect_with(url, options()).await.map_err(|e| format!("websocket: {e}"))?;
    ws.send_text(&ClientFrame::NodeInfo(NodeInfo { id: RequestId::small(1) }).to_text())
        .await
        .map_err(|e| format!("send: {e}"))?;
    let text = ws.recv_text(WAIT).await.map_err(|e| format!("no node_info_ok: {e}"))?;
    ws.close().await;
    match ServerFrame::parse(&text) {
        Ok(ServerFrame::NodeInfoOk(ok)) => Ok(ok.limits),
        _ => Err(format!("expected node_info_ok, got {}", short(&text))),
    }
}
