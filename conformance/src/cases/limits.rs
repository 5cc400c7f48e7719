//! Resource limits (spec chapter 06 §7 and §8, reported as chapter 05 §3 says): `LIMIT-*`.
//!
//! Each case prefers a node of its own launched with small limits ([`small`]: 8 connections per
//! address, 4 pending handshakes, 50 messages per second; [`queue_config`]: the least queue
//! bound), and otherwise uses the limits the node reports. The cases that fill node-wide counts
//! are exclusive: against a shared node they run alone, after every other case.
//!
//! Timing is never assumed, only measured: the bound on how many messages of a burst a node may
//! accept is computed from the time the burst really took, and the waits that let a node catch
//! up (a closed connection's slot freed, a bucket refilled) are upper bounds that end as soon as
//! the expected answer comes.

use std::time::{Duration, Instant};

use kith_proto::cert::Certificate;
use kith_proto::feed::{Filter, Publish, Subscribe};
use kith_proto::handshake::{ClientConfig, ClientHandshake};
use kith_proto::node_info::{Limits, NodeInfo};
use kith_proto::version::PROTOCOL_VERSION;
use kith_proto::{ClientFrame, ErrorCode, PublicKey, RequestId, SecretKey, ServerFrame};

use crate::case::{check, check_eq, entry_size, Case, CaseResult, Ctx, Failure, Feed, Level::*};
use crate::client::{self, counted_id, now_ms, random_bytes, Connection, Incoming, Session, DEFAULT_WAIT};
use crate::launch::NodeConfig;
use crate::run;

/// How long a connection may still be refused after the count fell below the limit: the node
/// learns of a close only when it reads it. An upper bound; the wait ends at the first success.
const SLOT_WINDOW: Duration = Duration::from_secs(3);

/// Pause between two attempts inside [`SLOT_WINDOW`].
const RETRY_PAUSE: Duration = Duration::from_millis(25);

/// Most connections a case opens; a node that allows more from one address is not tested
/// (the runner's own file descriptors are the limit).
const MAX_CONNECTIONS: u64 = 500;

/// Highest rate the rate cases exercise (a burst is three times as many messages).
const MAX_RATE: u64 = 5000;

/// How long a rate-limited node may take to refill its whole bucket: one second, and a margin
/// for the two clocks.
const REFILL: Duration = Duration::from_millis(1050);

/// Bytes beyond `max_queued_bytes` that a slow consumer's transport may absorb: the node's
/// socket send buffer (Linux grows it to 4 MiB at most by default) and WebSocket buffers, and
/// the client's receive buffer, kept small ([`READER_BUFFER`]). Overflowing by more than this
/// must overflow the queue.
const TRANSPORT_SLACK: u64 = 32 << 20;

/// The slow consumer's socket receive buffer (the kernel doubles it for its bookkeeping).
const READER_BUFFER: u32 = 64 << 10;

/// The least queue bound HS-54 allows a node that replays up to 1000 entries, as the
/// reference node does: 1000 × (16384 + 256) + 65536.
const LEAST_QUEUE_BYTES: u64 = 1000 * (16384 + 256) + 65536;

/// Small limits for the connection and rate cases.
pub fn small() -> NodeConfig {
    NodeConfig {
        max_connections_per_address: 8,
        max_pending_handshakes: 4,
        max_requests_per_second: 50,
        ..NodeConfig::default()
    }
}

/// The least queue bound, so that a slow consumer overflows soon.
pub fn queue_config() -> NodeConfig {
    NodeConfig { max_queued_bytes: LEAST_QUEUE_BYTES, ..NodeConfig::default() }
}

fn node_info(id: RequestId) -> ClientFrame {
    ClientFrame::NodeInfo(NodeInfo { id })
}

/// What became of one connection attempt.
enum Admission {
    /// The node answered `node_info`.
    Accepted(Connection),
    /// The node refused the connection with this code (an `error` with id null).
    Refused(ErrorCode, Connection),
}

/// Opens a connection and sends `node_info` at once: an accepted connection answers it, a
/// refused one gets an `error` with id null and must not process it (FRAME-42, FRAME-43).
async fn attempt(ctx: &mut Ctx) -> Result<Admission, Failure> {
    ctx.expect_refusals();
    let mut c = ctx.connect().await?;
    let id = c.next_id();
    // A refused connection may already be closing; its answer is read either way.
    let _ = c.send(&node_info(id)).await;
    let want = "node_info_ok, or an error with id null and code too_many_connections or too_many_handshakes";
    match c.recv_frame(DEFAULT_WAIT).await {
        Ok(ServerFrame::NodeInfoOk(ok)) if ok.id == id => Ok(Admission::Accepted(c)),
        Ok(ServerFrame::Error(e))
            if e.id.is_none() && matches!(e.code, ErrorCode::TooManyConnections | ErrorCode::TooManyHandshakes) =>
        {
            Ok(Admission::Refused(e.code, c))
        }
        Ok(other) => Err(Failure::fail(want, other.to_text())),
        Err(e) => Err(Failure::fail(want, e.to_string())),
    }
}

/// A connection the node must accept because its counts are below the limits (FRAME-44); a
/// refusal is retried for [`SLOT_WINDOW`], while the node may still count a connection the case
/// (or the runner, just before) has closed.
async fn admitted(ctx: &mut Ctx) -> Result<Connection, Failure> {
    let start = Instant::now();
    loop {
        match attempt(ctx).await? {
            Admission::Accepted(c) => return Ok(c),
            Admission::Refused(code, mut c) => {
                c.close().await;
                if start.elapsed() >= SLOT_WINDOW {
                    return Err(Failure::fail(
                        format!("a connection accepted within {SLOT_WINDOW:?}, its count being below the limit"),
                        format!("refused with {code} throughout"),
                    ));
                }
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

/// The attempt must be refused with `code`: `error` id null (already read), then close 1013
/// with reason `code` and nothing else; the `node_info` sent on it is not answered.
async fn refused_with(ctx: &mut Ctx, code: ErrorCode, nth: u64) -> CaseResult {
    let mut c = match attempt(ctx).await? {
        Admission::Accepted(_) => {
            return Err(Failure::fail(
                format!("connection {nth} refused with error {code}"),
                "accepted: it answered node_info",
            ))
        }
        Admission::Refused(got, c) if got == code => c,
        Admission::Refused(got, _) => return Err(Failure::fail(format!("error {code}"), format!("error {got}"))),
    };
    match c.recv(DEFAULT_WAIT).await {
        Ok(Incoming::Closed(Some((1013, reason)))) if reason == code.as_str() => Ok(()),
        Ok(Incoming::Closed(other)) => {
            Err(Failure::fail(format!("close 1013 \"{code}\""), crate::client::show_close(&other)))
        }
        Ok(Incoming::Text(t)) => Err(Failure::fail(
            format!("nothing after error {code} but the close (the node_info sent on the refused connection is not processed)"),
            t,
        )),
        Ok(Incoming::Binary(_)) => Err(Failure::fail("the close", "a binary frame")),
        Err(e) => Err(Failure::fail(format!("close code 1013 with reason {code}"), e.to_string())),
    }
}

/// The reported per-address limit, when a case can fill it.
fn per_address_limit(ctx: &Ctx) -> Result<u64, Failure> {
    let l = ctx.target.limits.max_connections_per_address;
    if l > MAX_CONNECTIONS {
        return Err(Failure::not_applicable(format!(
            "max_connections_per_address {l} is more connections than the runner opens ({MAX_CONNECTIONS})"
        )));
    }
    Ok(l)
}

/// Opens `l` connections from the runner's address, each accepted and welcomed (so that they
/// count toward the address only, not toward the pending handshakes).
async fn fill_address(ctx: &mut Ctx, l: u64) -> Result<Vec<Session>, Failure> {
    let (user, _) = ctx.invite(0, 0).await?;
    let mut open = Vec::new();
    for _ in 0..l {
        let c = admitted(ctx).await?;
        open.push(client::handshake(c, ctx.target.node_key, &user, DEFAULT_WAIT).await?);
    }
    Ok(open)
}

/// The reported pending-handshake limit, when a case can fill it without reaching the
/// per-address limit first.
fn pending_limit(ctx: &Ctx) -> Result<u64, Failure> {
    let l = &ctx.target.limits;
    let (p, a) = (l.max_pending_handshakes, l.max_connections_per_address);
    if p >= a {
        return Err(Failure::not_applicable(format!(
            "max_pending_handshakes {p} is not below max_connections_per_address {a}: \
             the runner's one address reaches the per-address limit first"
        )));
    }
    if p > MAX_CONNECTIONS {
        return Err(Failure::not_applicable(format!("max_pending_handshakes {p} is more than {MAX_CONNECTIONS}")));
    }
    Ok(p)
}

/// Opens `p` connections that stay without `welcome`.
async fn fill_pending(ctx: &mut Ctx, p: u64) -> Result<Vec<Connection>, Failure> {
    let mut open = Vec::new();
    for _ in 0..p {
        open.push(admitted(ctx).await?);
    }
    Ok(open)
}

/// A failure of a pending-handshake check, unless the node's handshake timeout may have closed
/// one of the pending connections opened since `start` (a short timeout against `--url`):
/// then the case is not applicable.
fn unless_timed_out(ctx: &Ctx, start: Instant, result: CaseResult) -> CaseResult {
    let limit = Duration::from_millis(ctx.target.limits.handshake_timeout_ms);
    match result {
        Err(f) if f.kind == crate::case::FailKind::Fail && start.elapsed() + Duration::from_millis(200) >= limit => {
            Err(Failure::not_applicable(format!(
                "the pending connections were open for {:?}, near the handshake timeout {limit:?}",
                start.elapsed()
            )))
        }
        r => r,
    }
}

/// The reported rate, when a case can exceed it.
fn rate(ctx: &Ctx) -> Result<u64, Failure> {
    let r = ctx.target.limits.max_requests_per_second;
    if r > MAX_RATE {
        return Err(Failure::not_applicable(format!("max_requests_per_second {r} is above the {MAX_RATE} tested")));
    }
    Ok(r.max(1))
}

/// An unpaced connection, to exceed the rate on purpose.
async fn unpaced(ctx: &mut Ctx) -> Result<Connection, Failure> {
    let mut c = ctx.connect().await?;
    c.set_pace(None);
    Ok(c)
}

/// How a burst came out.
struct Burst {
    /// Per request, in order: true when answered `node_info_ok`, false when `rate_limited`.
    accepted: Vec<bool>,
    /// From the first send to the last answer.
    took: Duration,
}

/// A guess of the size of one answer in a burst (a `node_info_ok` or a `rate_limited` error),
/// used until the first answers show the real size.
const ANSWER_BYTES_GUESS: u64 = 1024;

/// How many answers of `answer_bytes` a burst leaves unread at once: those fit in a quarter of
/// the node's `max_queued_bytes`, so that a node keeping its bound never has to close the
/// connection as a slow consumer (FRAME-48) however little its transport buffers.
fn unread_at_once(max_queued_bytes: u64, answer_bytes: u64) -> u64 {
    (max_queued_bytes / 4 / answer_bytes.max(1)).max(1)
}

/// Sends `n` `node_info` requests back to back, then `extra` frames, and reads the `n` answers:
/// each must be `node_info_ok` or `rate_limited` with the request's id, in request order
/// (FRAME-18, FRAME-20, FRAME-46). The requests go out in runs of [`unread_at_once`] with the
/// answers of each run read before the next, so that the answers due never pass the node's
/// queue bound; reading takes time, which only adds tokens, and the bounds the cases check are
/// computed from the time the burst really took. A close on the way is graded by what the node
/// was allowed to do: not a failure of the rate rules.
async fn burst(conn: &mut Connection, limits: &Limits, n: u64, extra: &[Extra]) -> Result<Burst, Failure> {
    let start = Instant::now();
    let first = conn.next_id().get();
    // Later requests get fresh ids.
    for _ in 1..n {
        conn.next_id();
    }
    let bound = limits.max_queued_bytes;
    let mut accepted = Vec::new();
    let mut biggest = 0u64;
    let mut sent = 0u64;
    while sent < n {
        let run = unread_at_once(bound, biggest.max(ANSWER_BYTES_GUESS)).min(n - sent);
        let guessed = biggest == 0;
        for i in sent..sent + run {
            conn.send(&node_info(counted_id(first + i))).await?;
        }
        let from = sent;
        sent += run;
        if sent == n {
            for e in extra {
                match e {
                    Extra::Text(t) => conn.send_text(t).await?,
                    Extra::Binary(b) => conn.send_binary(b.clone()).await?,
                }
            }
        }
        for id in first + from..first + sent {
            let want = || format!("the answer to request {id}: node_info_ok or error rate_limited, with id {id}");
            let text = match conn.recv(DEFAULT_WAIT).await {
                Ok(Incoming::Text(t)) => t,
                Ok(Incoming::Closed(Some((1013, reason)))) if reason == ErrorCode::SlowConsumer.as_str() => {
                    let due = run * biggest.max(ANSWER_BYTES_GUESS);
                    return Err(if guessed || due > bound {
                        Failure::not_applicable(format!(
                            "closed 1013 slow_consumer with up to {run} answers unread, which may pass \
                             max_queued_bytes {bound} (answers of {} bytes seen)",
                            biggest
                        ))
                    } else {
                        Failure::fail(
                            format!(
                                "no slow_consumer close while at most {run} answers of at most {biggest} bytes \
                                 ({due} bytes) were unread, within max_queued_bytes {bound} (FRAME-48)"
                            ),
                            format!("close 1013 slow_consumer after {} answers", id - first),
                        )
                    });
                }
                Ok(Incoming::Closed(Some((_, reason))))
                    if reason == ErrorCode::HandshakeTimeout.as_str()
                        && start.elapsed() + Duration::from_millis(200)
                            >= Duration::from_millis(limits.handshake_timeout_ms) =>
                {
                    return Err(Failure::not_applicable(format!(
                        "the burst of {n} messages outlasted handshake_timeout_ms {} ({:?})",
                        limits.handshake_timeout_ms,
                        start.elapsed()
                    )));
                }
                Ok(Incoming::Closed(c)) => return Err(Failure::fail(want(), format!("connection closed {c:?}"))),
                Ok(Incoming::Binary(_)) => return Err(Failure::fail(want(), "a binary frame")),
                Err(e) => return Err(Failure::fail(want(), e.to_string())),
            };
            biggest = biggest.max(text.len() as u64);
            match ServerFrame::parse(&text) {
                Ok(ServerFrame::NodeInfoOk(ok)) if ok.id.get() == id => accepted.push(true),
                Ok(ServerFrame::Error(e))
                    if e.code == ErrorCode::RateLimited && e.id.map(RequestId::get) == Some(id) =>
                {
                    accepted.push(false)
                }
                Ok(other) => return Err(Failure::fail(want(), other.to_text())),
                Err(e) => return Err(Failure::fail(want(), format!("{text} ({e})"))),
            }
        }
    }
    Ok(Burst { accepted, took: start.elapsed() })
}

/// A frame sent after a burst.
enum Extra {
    Text(String),
    Binary(Vec<u8>),
}

/// A `hello` of a fresh peer of `user`, with id `id`.
fn hello(ctx: &Ctx, user: &SecretKey, id: RequestId) -> ClientFrame {
    let peer = SecretKey::random();
    let cert = Certificate::issue(user, peer.public(), now_ms() + 3_600_000);
    let config = ClientConfig { peer, cert, expected_node: ctx.target.node_key, version: PROTOCOL_VERSION.into() };
    ClientFrame::Hello(ClientHandshake::start(config, random_bytes(), id).1)
}

/// Subscribes `n` times to `author` (backfill 0) and reads each `subscribe_ok` and
/// `stored_end`, so that from here on only live events arrive.
async fn subscribe_n(s: &mut Session, author: PublicKey, n: u64) -> CaseResult {
    for _ in 0..n {
        let id = s.conn.next_id();
        let filter = Filter { authors: vec![author], threads: vec![], mentions: vec![] };
        s.conn.send(&ClientFrame::Subscribe(Subscribe { id, filter, backfill: Some(0) })).await?;
        match s.conn.recv_frame(DEFAULT_WAIT).await? {
            ServerFrame::SubscribeOk(ok) if ok.id == id => {}
            other => return Err(crate::case::unexpected("subscribe_ok", &other)),
        }
        match s.conn.recv_frame(DEFAULT_WAIT).await? {
            ServerFrame::StoredEnd(e) if e.sub == id => {}
            other => return Err(crate::case::unexpected("stored_end", &other)),
        }
    }
    Ok(())
}

/// Publishes `n` entries of about 15 KB to `feed` (pipelined), each accepted, and returns once
/// they have been fanned out: a witness subscribed to the feed on a connection of its own has
/// received every one live. Only then may the slow consumer start reading; reading earlier
/// would drain its queue while the node is still filling it.
async fn publish_big(ctx: &mut Ctx, feed: &mut Feed, n: u64) -> CaseResult {
    let mut witness = ctx.user().await?;
    subscribe_n(&mut witness, feed.author(), 1).await?;
    let mut writer = ctx.user().await?;
    let mut ids = Vec::new();
    for i in 0..n {
        let entry = feed.next(&format!("{i} {}", "q".repeat(15_000)));
        let id = writer.conn.next_id();
        writer.conn.send(&ClientFrame::Publish(Publish { id, entry })).await?;
        ids.push(id);
    }
    for id in ids {
        match writer.conn.await_answer(id, DEFAULT_WAIT).await? {
            ServerFrame::PublishOk(_) => {}
            other => return Err(crate::case::unexpected("publish_ok", &other)),
        }
    }
    witness.conn.set_recording(false);
    for i in 0..n {
        match witness.conn.recv_frame(DEFAULT_WAIT).await {
            Ok(ServerFrame::Event(_)) => {}
            Ok(other) => return Err(crate::case::unexpected("event", &other)),
            Err(e) => return Err(Failure::fail(format!("the witness's {n} live events"), format!("{i}, then {e}"))),
        }
    }
    witness.conn.set_recording(true);
    witness.conn.note(&format!("all {n} entries fanned out"));
    // The slow consumer's events of the last entry may be queued a moment after the witness's.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

/// A fresh user logged in on a connection with a small receive buffer (see
/// [`Connection::connect_small_buffer`]): the slow consumer of the queue cases.
async fn slow_reader(ctx: &mut Ctx) -> Result<Session, Failure> {
    let (user, _) = ctx.invite(10, 0).await?;
    let mut c = Connection::connect_small_buffer(
        &ctx.target.url,
        "reader",
        ctx.transcript().clone(),
        DEFAULT_WAIT,
        READER_BUFFER,
    )
    .await?;
    c.set_error_map(ctx.target.error_map.clone());
    Ok(client::handshake(c, ctx.target.node_key, &user, DEFAULT_WAIT).await?)
}

/// Subscriptions the queue cases open on one connection: each published entry is queued once
/// per subscription, which makes a slow consumer's queue grow fast.
fn queue_subs(ctx: &Ctx) -> u64 {
    ctx.target.limits.max_subscriptions.clamp(1, 64)
}

/// The canonical size of the entries [`publish_big`] writes.
fn big_entry_size() -> u64 {
    let mut f = Feed::stranger();
    entry_size(&f.next(&format!("0 {}", "q".repeat(15_000))))
}

/// The close deadline kith/1 fixes ([FRAME-50]), with a margin for the two clocks and for
/// the node to read the close frame that ends each attacking connection.
fn close_wait() -> Duration {
    Duration::from_millis(kith_proto::frame::CLOSE_DEADLINE_MS) + Duration::from_millis(1000)
}

/// Receive buffer of the connections that end without reading (kept as small as the kernel
/// allows, so that the node's answers stay in the node).
const NON_READER_BUFFER: u32 = 4096;

/// `node_info` requests one non-reading connection sends: about 80 000, whose answers (at least
/// a `rate_limited` error of about 100 bytes each) come to some 8 MB, more than a node's socket
/// buffer (4 MiB at most on Linux by default) and the peer's closed window absorb, so the node
/// still has frames to send when the connection ends.
const NON_READER_REQUESTS: u64 = 80_000;

/// Longest a single send of a non-reading connection may take before the case decides that
/// the node stopped reading it (it closed the connection, for instance as a slow consumer).
const STALLED_SEND: Duration = Duration::from_millis(500);

/// Opens a connection with a small receive buffer that never reads, floods it with `node_info`
/// requests (the answers pile up in the node), then sends a close frame: the node ends the
/// connection while it still has frames to send that the peer will not take. The connection
/// is returned so that the socket stays open on the client's side.
async fn ended_without_reading(ctx: &mut Ctx, label: &str) -> Result<Connection, Failure> {
    ctx.expect_refusals();
    let mut c = Connection::connect_small_buffer(
        &ctx.target.url,
        label,
        ctx.transcript().clone(),
        DEFAULT_WAIT,
        NON_READER_BUFFER,
    )
    .await?;
    c.set_pace(None);
    c.note(&format!("never reads; sends {NON_READER_REQUESTS} node_info requests unread, then a close frame"));
    c.set_recording(false);
    let mut sent = 0u64;
    while sent < NON_READER_REQUESTS {
        let id = c.next_id();
        match tokio::time::timeout(STALLED_SEND, c.send(&node_info(id))).await {
            Ok(Ok(())) => sent += 1,
            // The node stopped reading (it is closing the connection) or dropped it already.
            Ok(Err(_)) | Err(_) => break,
        }
    }
    c.set_recording(true);
    c.note(&format!("{sent} requests sent; closing without reading"));
    let _ = tokio::time::timeout(STALLED_SEND, c.close()).await;
    Ok(c)
}

/// Opens a plain TCP connection to the node's host and port (`ws://` only), and sends nothing.
async fn raw_tcp(ctx: &Ctx) -> Result<tokio::net::TcpStream, Failure> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = &ctx.target.url;
    let request = url.as_str().into_client_request().map_err(|e| Failure::fail("a ws:// URL", e.to_string()))?;
    let uri = request.uri();
    if uri.scheme_str() != Some("ws") {
        return Err(Failure::not_applicable("sockets before the upgrade are tested over ws:// only"));
    }
    let host = uri.host().unwrap_or("localhost").trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(80);
    tokio::time::timeout(DEFAULT_WAIT, tokio::net::TcpStream::connect((host.as_str(), port)))
        .await
        .map_err(|_| Failure::fail("a TCP connection", format!("none within {DEFAULT_WAIT:?}")))?
        .map_err(|e| Failure::fail("a TCP connection", e.to_string()))
}

/// Whether the node has ended this TCP connection (end of stream or reset), without waiting;
/// bytes from the node count as an answer, which is not an end.
fn tcp_ended(s: &tokio::net::TcpStream) -> Result<bool, usize> {
    let mut buf = [0u8; 256];
    match s.try_read(&mut buf) {
        Ok(0) => Ok(true),
        Ok(n) => Err(n),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
        Err(_) => Ok(true),
    }
}

/// Waits up to `wait` for the node to end `s`; the time it took, or None when it is still open.
async fn ended_within(s: &mut tokio::net::TcpStream, wait: Duration) -> Result<Option<Duration>, Failure> {
    use tokio::io::AsyncReadExt;
    let start = Instant::now();
    let mut buf = [0u8; 256];
    match tokio::time::timeout(wait, s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Ok(Some(start.elapsed())),
        Ok(Ok(n)) => Err(Failure::fail(
            "the TCP connection ended without an answer",
            format!("{n} bytes: {:?}", String::from_utf8_lossy(&buf[..n])),
        )),
        Err(_) => Ok(None),
    }
}

/// The upgrade deadline kith/1 fixes ([FRAME-52]), or the handshake timeout when shorter.
fn upgrade_deadline(ctx: &Ctx) -> Duration {
    Duration::from_millis(kith_proto::frame::UPGRADE_DEADLINE_MS.min(ctx.target.limits.handshake_timeout_ms))
}

/// The resource-limit cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "LIMIT-ADDRESS-001",
            Must,
            &["FRAME-42", "FRAME-44", "FRAME-31", "FRAME-32", "FRAME-33"],
            "max_connections_per_address connections are accepted; one more gets error too_many_connections \
             (id null), then close 1013 too_many_connections, and nothing else",
            run!(|ctx| {
                let l = per_address_limit(&ctx)?;
                let _open = fill_address(&mut ctx, l).await?;
                refused_with(&mut ctx, ErrorCode::TooManyConnections, l + 1).await
            }),
        )
        .prefer_own_node(small())
        .exclusive()
        .timeout_ms(30_000),
        Case::new(
            "LIMIT-ADDRESS-002",
            Must,
            &["FRAME-44", "FRAME-42"],
            "at the per-address limit, closing one connection lets one more in, and the limit holds again",
            run!(|ctx| {
                let l = per_address_limit(&ctx)?;
                let mut open = fill_address(&mut ctx, l).await?;
                refused_with(&mut ctx, ErrorCode::TooManyConnections, l + 1).await?;
                // Closed by the client, the connection counts until the node has ended it: wait
                // for the node's close, then (in `admitted`) retry while it may still count.
                if let Some(mut s) = open.pop() {
                    s.conn.close().await;
                    let _ = s.conn.await_close(DEFAULT_WAIT).await;
                }
                // A refused connection does not count; the closed one stops counting.
                let _again = admitted(&mut ctx).await?;
                refused_with(&mut ctx, ErrorCode::TooManyConnections, l + 1).await
            }),
        )
        .prefer_own_node(small())
        .exclusive()
        .timeout_ms(30_000),
        Case::new(
            "LIMIT-PENDING-001",
            Must,
            &["FRAME-43", "FRAME-44", "FRAME-31", "FRAME-32", "FRAME-33"],
            "max_pending_handshakes connections without welcome are accepted; one more gets error \
             too_many_handshakes (id null), then close 1013 too_many_handshakes, and nothing else",
            run!(|ctx| {
                let p = pending_limit(&ctx)?;
                let start = Instant::now();
                let _pending = fill_pending(&mut ctx, p).await?;
                let refused = refused_with(&mut ctx, ErrorCode::TooManyHandshakes, p + 1).await;
                unless_timed_out(&ctx, start, refused)
            }),
        )
        .prefer_own_node(small())
        .exclusive()
        .timeout_ms(30_000),
        Case::new(
            "LIMIT-PENDING-002",
            Must,
            &["FRAME-44", "FRAME-43"],
            "at the pending-handshake limit, welcoming one connection lets one more in, and the limit holds again",
            run!(|ctx| {
                let p = pending_limit(&ctx)?;
                let (user, _) = ctx.invite(0, 0).await?;
                let start = Instant::now();
                let mut pending = fill_pending(&mut ctx, p).await?;
                let refused = refused_with(&mut ctx, ErrorCode::TooManyHandshakes, p + 1).await;
                unless_timed_out(&ctx, start, refused)?;
                let Some(first) = pending.pop() else {
                    return Err(Failure::not_applicable("max_pending_handshakes is 0"));
                };
                let _welcomed = client::handshake(first, ctx.target.node_key, &user, DEFAULT_WAIT).await?;
                let _again = admitted(&mut ctx).await?;
                let refused = refused_with(&mut ctx, ErrorCode::TooManyHandshakes, p + 1).await;
                unless_timed_out(&ctx, start, refused)
            }),
        )
        .prefer_own_node(small())
        .exclusive()
        .timeout_ms(30_000),
        Case::new(
            "LIMIT-RATE-001",
            Must,
            &["FRAME-47", "FRAME-45"],
            "a fresh connection's first max_requests_per_second messages (hello and auth included), sent back \
             to back, are never rate_limited",
            run!(|ctx| {
                let r = rate(&ctx)?;
                let (user, _) = ctx.invite(0, 0).await?;
                let conn = unpaced(&mut ctx).await?;
                let mut s = client::handshake(conn, ctx.target.node_key, &user, DEFAULT_WAIT).await?;
                let n = r.saturating_sub(2);
                let b = burst(&mut s.conn, &ctx.target.limits, n, &[]).await?;
                let limited = b.accepted.iter().filter(|a| !**a).count();
                check(
                    limited == 0,
                    format!("every one of the {r} messages answered (each found a token)"),
                    format!("{limited} of the last {n} answered rate_limited"),
                )
            }),
        )
        .prefer_own_node(small())
        .timeout_ms(30_000),
        Case::new(
            "LIMIT-RATE-002",
            Must,
            &["FRAME-45", "FRAME-46", "FRAME-47", "FRAME-18", "FRAME-20"],
            "after hello and auth, a burst of 3 × max_requests_per_second node_info requests: each answered \
             once, in order; the first R - 2 accepted, beyond R + R × (burst time) + 1 rate_limited with the \
             request's id; after a second the connection takes R more",
            run!(|ctx| {
                let r = rate(&ctx)?;
                // Logged in first, so that the second's wait below never meets the handshake
                // timeout (which may be as short as 1 s, HS-8); hello and auth took two tokens.
                let (user, _) = ctx.invite(0, 0).await?;
                let conn = unpaced(&mut ctx).await?;
                let mut c = client::handshake(conn, ctx.target.node_key, &user, DEFAULT_WAIT).await?.conn;
                let n = 3 * r;
                let b = burst(&mut c, &ctx.target.limits, n, &[]).await?;
                let accepted = b.accepted.iter().filter(|a| **a).count() as u64;
                let secs = b.took.as_secs_f64();
                // The node received the burst within `took`: its bucket held at most R tokens and
                // gained at most R × took.
                let most = r + (r as f64 * secs).floor() as u64 + 1;
                if most >= n {
                    return Err(Failure::not_applicable(format!(
                        "the burst took {:?}: at {r} per second the node may have refilled for all {n}",
                        b.took
                    )));
                }
                c.note(&format!("{accepted} of {n} accepted in {:?}; at most {most} may be", b.took));
                let first_refused = b.accepted.iter().position(|a| !*a);
                let fresh = r.saturating_sub(2);
                check(
                    first_refused.is_none_or(|i| i as u64 >= fresh),
                    format!(
                        "the first {fresh} requests answered (a full bucket holds {r} tokens; hello and auth took two)"
                    ),
                    format!("request {} of the burst rate_limited", first_refused.unwrap_or(0) + 1),
                )?;
                check(
                    accepted <= most,
                    format!("at most {most} of {n} accepted (R + R × {secs:.3} s + 1), the rest rate_limited"),
                    format!("{accepted} accepted"),
                )?;
                // Still open, handshake state unchanged, bucket full again after a second.
                tokio::time::sleep(REFILL).await;
                let again = burst(&mut c, &ctx.target.limits, r, &[]).await?;
                let limited = again.accepted.iter().filter(|a| !**a).count();
                check(
                    limited == 0,
                    format!("after waiting a second, {r} more requests answered (the bucket is full)"),
                    format!("{limited} rate_limited"),
                )
            }),
        )
        .prefer_own_node(small())
        .timeout_ms(30_000),
        Case::new(
            "LIMIT-RATE-HELLO-001",
            Must,
            &["FRAME-46"],
            "a hello over the rate is answered rate_limited with its id, the connection stays open, and the \
             hello sent again completes the handshake",
            run!(|ctx| {
                let r = rate(&ctx)?;
                let (user, account) = ctx.invite(0, 0).await?;
                let timeout = Duration::from_millis(ctx.target.limits.handshake_timeout_ms);
                // Two tokens (hello and auth) are back 2/R s after the bucket ran dry; a margin
                // for the two clocks. The whole exchange stays inside the handshake timeout.
                let refill_two = Duration::from_secs_f64(2.0 / r as f64) + Duration::from_millis(50);
                // A hello that comes right after 2R messages (R to empty the bucket, R more to
                // take what it regains while the answers are read) finds the bucket empty, unless
                // a token was refilled just in time: then it is answered with a challenge and the
                // attempt proves nothing, so it is made again on a fresh connection.
                for _ in 0..5 {
                    let opened = Instant::now();
                    let mut c = unpaced(&mut ctx).await?;
                    let hello_id = c.next_id();
                    let frame = Extra::Text(hello(&ctx, &user, hello_id).to_text());
                    burst(&mut c, &ctx.target.limits, 2 * r, &[frame]).await?;
                    match c.await_answer(hello_id, DEFAULT_WAIT).await? {
                        ServerFrame::Challenge(_) => {
                            c.note("the hello found a token; trying again");
                            c.close().await;
                            continue;
                        }
                        ServerFrame::Error(e) if e.code == ErrorCode::RateLimited => {}
                        other => return Err(crate::case::unexpected("error rate_limited or challenge", &other)),
                    }
                    // The rest of the handshake is two round trips; 200 ms is left for them.
                    if opened.elapsed() + refill_two + Duration::from_millis(200) >= timeout {
                        return Err(Failure::not_applicable(format!(
                            "the burst took {:?}: with handshake_timeout_ms {} no time is left to wait {refill_two:?} \
                             for two tokens and finish the handshake",
                            opened.elapsed(),
                            timeout.as_millis()
                        )));
                    }
                    c.note(&format!("waiting {refill_two:?} for two tokens"));
                    tokio::time::sleep(refill_two).await;
                    let s = client::handshake(c, ctx.target.node_key, &user, DEFAULT_WAIT).await.map_err(|e| {
                        Failure::fail("the connection open and the hello, sent again, answered", e.to_string())
                    })?;
                    return check_eq("welcomed account", s.account.key, account.key);
                }
                Err(Failure::fail(
                    "a hello after 2 × max_requests_per_second messages answered rate_limited",
                    "five times a challenge",
                ))
            }),
        )
        .prefer_own_node(small())
        .timeout_ms(30_000),
        Case::new(
            "LIMIT-RATE-ORDER-001",
            Must,
            &["FRAME-46", "FRAME-17", "FRAME-10"],
            "over the rate, frames that fail an earlier check get that check's error, not rate_limited",
            run!(|ctx| {
                let r = rate(&ctx)?;
                let extra = [
                    (Extra::Text("{{{".into()), None, ErrorCode::MalformedFrame),
                    (Extra::Binary(br#"{"type":"node_info","id":1}"#.to_vec()), None, ErrorCode::MalformedFrame),
                    (Extra::Text(r#"{"id":9001}"#.into()), Some(9001), ErrorCode::InvalidRequest),
                    (Extra::Text(r#"{"type":"teleport","id":9002}"#.into()), Some(9002), ErrorCode::UnknownType),
                    (Extra::Text(r#"{"type":"node_info"}"#.into()), None, ErrorCode::InvalidRequest),
                    (Extra::Text(r#"{"type":"node_info","id":"x"}"#.into()), None, ErrorCode::InvalidRequest),
                ];
                let frames: Vec<Extra> = extra
                    .iter()
                    .map(|(e, _, _)| match e {
                        Extra::Text(t) => Extra::Text(t.clone()),
                        Extra::Binary(b) => Extra::Binary(b.clone()),
                    })
                    .collect();
                let mut c = unpaced(&mut ctx).await?;
                let b = burst(&mut c, &ctx.target.limits, 3 * r, &frames).await?;
                if b.accepted.last().copied().unwrap_or(true) {
                    return Err(Failure::not_applicable(
                        "the burst's last request was not over the rate, so neither were the frames after it",
                    ));
                }
                for (_, id, code) in &extra {
                    let frame = c.recv_frame(DEFAULT_WAIT).await?;
                    let e = crate::case::expect_error(frame, *code)?;
                    check_eq("error id", e.id.map(RequestId::get), *id)?;
                }
                Ok(())
            }),
        )
        .prefer_own_node(small())
        .timeout_ms(30_000),
        Case::new(
            "LIMIT-QUEUE-001",
            Must,
            &["FRAME-35", "FRAME-34", "FRAME-36"],
            "a subscriber that never reads while more than max_queued_bytes of events are due is closed with \
             close code 1013 and reason slow_consumer",
            run!(|ctx| {
                let subs = queue_subs(&ctx);
                let size = big_entry_size();
                let bound = ctx.target.limits.max_queued_bytes;
                // Each entry is queued once per subscription, each event at least the entry.
                let per_entry = subs * size;
                let n = (bound + TRANSPORT_SLACK).div_ceil(per_entry) + 1;
                if n > 1000 {
                    return Err(Failure::not_applicable(format!(
                        "max_queued_bytes {bound} with {subs} subscriptions needs {n} entries of {size} bytes"
                    )));
                }
                let mut reader = slow_reader(&mut ctx).await?;
                let mut feed = Feed::stranger();
                subscribe_n(&mut reader, feed.author(), subs).await?;
                reader.conn.note(&format!(
                    "stops reading; {n} entries of {size} bytes, {} bytes of events, are published",
                    n * per_entry
                ));
                let overflow_from = Instant::now();
                publish_big(&mut ctx, &mut feed, n).await?;
                // The queue may have overflowed at the first publish: past the close deadline
                // the node may have dropped the socket with the close frame unsent (FRAME-50).
                let read_from = overflow_from.elapsed();
                reader.conn.set_recording(false);
                let mut events = 0u64;
                let end = loop {
                    match reader.conn.recv(DEFAULT_WAIT).await {
                        Ok(Incoming::Text(_)) => events += 1,
                        Ok(Incoming::Closed(c)) => break Ok(c),
                        Ok(Incoming::Binary(_)) => break Err("a binary frame".to_owned()),
                        Err(e) => break Err(e.to_string()),
                    }
                };
                reader.conn.set_recording(true);
                reader.conn.note(&format!("{events} of {} events arrived", n * subs));
                match end {
                    Ok(Some((1013, reason))) if reason == "slow_consumer" => {
                        check(events < n * subs, "some events never sent (the queue overflowed)", events)
                    }
                    Ok(None) if read_from >= Duration::from_millis(kith_proto::frame::CLOSE_DEADLINE_MS) => {
                        Err(Failure::not_applicable(format!(
                            "the stream ended without a close frame, and the reader began to read {read_from:?} after \
                             the first publish, past the close deadline (FRAME-50)"
                        )))
                    }
                    Ok(other) => Err(Failure::fail("close 1013 \"slow_consumer\"", crate::client::show_close(&other))),
                    Err(e) => Err(Failure::fail(
                        "close 1013 with reason slow_consumer",
                        format!("{events} of {} events, then {e}", n * subs),
                    )),
                }
            }),
        )
        .prefer_own_node(queue_config())
        .exclusive()
        .timeout_ms(60_000),
        Case::new(
            "LIMIT-QUEUE-002",
            Must,
            &["FRAME-48", "FRAME-36"],
            "a subscriber that does not read while up to 90% of max_queued_bytes of events are due is not \
             closed and then gets every event",
            run!(|ctx| {
                let size = big_entry_size();
                let bound = ctx.target.limits.max_queued_bytes;
                // Each event is at most the entry and its envelope (HS-54's 256 bytes). Fewer
                // subscriptions when a round of them would not fit 90% of a small bound.
                let per_event = size + kith_proto::node_info::EVENT_ENVELOPE_BYTES;
                let subs = queue_subs(&ctx).min((bound / 10 * 9 / per_event).max(1));
                let per_entry = subs * per_event;
                let n = (bound / 10 * 9) / per_entry;
                if n == 0 {
                    return Err(Failure::not_applicable(format!("max_queued_bytes {bound} holds no round of events")));
                }
                if n > 1000 {
                    return Err(Failure::not_applicable(format!("max_queued_bytes {bound} takes {n} entries")));
                }
                let mut reader = slow_reader(&mut ctx).await?;
                let mut feed = Feed::stranger();
                subscribe_n(&mut reader, feed.author(), subs).await?;
                reader.conn.note(&format!("stops reading; {n} entries of {size} bytes are published"));
                publish_big(&mut ctx, &mut feed, n).await?;
                reader.conn.set_recording(false);
                let mut events = 0u64;
                let mut failure = None;
                while events < n * subs {
                    match reader.conn.recv_frame(DEFAULT_WAIT).await {
                        Ok(ServerFrame::Event(_)) => events += 1,
                        Ok(other) => {
                            failure = Some(Failure::fail("an event", other.to_text()));
                            break;
                        }
                        Err(e) => {
                            failure = Some(Failure::fail(
                                format!("all {} events", n * subs),
                                format!("{events} events, then {e}"),
                            ));
                            break;
                        }
                    }
                }
                reader.conn.set_recording(true);
                reader.conn.note(&format!("{events} of {} events arrived", n * subs));
                if let Some(f) = failure {
                    return Err(f);
                }
                crate::case::play(&mut reader.conn, &[crate::case::Step::StillOpen]).await
            }),
        )
        .prefer_own_node(queue_config())
        .exclusive()
        .timeout_ms(60_000),
        Case::new(
            "LIMIT-CLOSE-001",
            Must,
            &["FRAME-50", "FRAME-44"],
            "connections that end while the peer reads nothing and keeps its socket open stop counting within \
             the close deadline: then max_connections_per_address connections from the same address are \
             accepted and a logged-in user is answered",
            run!(|ctx| {
                let l = per_address_limit(&ctx)?;
                let a = l.min(ctx.target.limits.max_pending_handshakes).clamp(1, 2);
                let (user, _) = ctx.invite(0, 0).await?;
                let mut ended = Vec::new();
                for i in 0..a {
                    ended.push(ended_without_reading(&mut ctx, &format!("ended{}", i + 1)).await?);
                }
                let closed_at = Instant::now();
                let wait = close_wait();
                ctx.transcript().push(
                    "case",
                    client::Direction::Note,
                    &format!("{a} connections ended unread; waiting {wait:?} (the close deadline and a margin)"),
                );
                tokio::time::sleep_until((closed_at + wait).into()).await;
                let mut open = Vec::new();
                for k in 1..=l {
                    let c = admitted(&mut ctx).await.map_err(|f| {
                        if f.kind == crate::case::FailKind::Fail {
                            Failure::fail(
                                format!(
                                    "connection {k} of {l} accepted: the {a} connections that ended unread {:?} \
                                     before no longer count (FRAME-50)",
                                    closed_at.elapsed()
                                ),
                                f.got,
                            )
                        } else {
                            f
                        }
                    })?;
                    open.push(client::handshake(c, ctx.target.node_key, &user, DEFAULT_WAIT).await?);
                }
                let Some(s) = open.last_mut() else {
                    return Err(Failure::not_applicable("max_connections_per_address is 0"));
                };
                let id = s.conn.next_id();
                s.conn.send(&node_info(id)).await?;
                match s.conn.await_answer(id, DEFAULT_WAIT).await? {
                    ServerFrame::NodeInfoOk(ok) if ok.id == id => {}
                    other => return Err(crate::case::unexpected("node_info_ok", &other)),
                }
                // The ended connections are kept open on this side until here.
                drop(ended);
                Ok(())
            }),
        )
        .prefer_own_node(small())
        .exclusive()
        .timeout_ms(60_000),
        Case::new(
            "LIMIT-UPGRADE-001",
            Must,
            &["FRAME-51"],
            "with 2 × min(max_connections_per_address, max_pending_handshakes) TCP connections from the address \
             that have not begun their upgrade, one more is ended at once without an answer, and those kept are \
             still open",
            run!(|ctx| {
                let l = ctx.target.limits.max_connections_per_address;
                let pending = ctx.target.limits.max_pending_handshakes;
                // From one address, whichever bound is lower binds.
                let b = 2 * l.min(pending);
                if b + 1 > MAX_CONNECTIONS {
                    return Err(Failure::not_applicable(format!("{} sockets is more than {MAX_CONNECTIONS}", b + 1)));
                }
                ctx.expect_refusals();
                let first = Instant::now();
                let mut kept = Vec::new();
                for _ in 0..b {
                    kept.push(raw_tcp(&ctx).await?);
                }
                let mut extra = raw_tcp(&ctx).await?;
                ctx.transcript().push(
                    "case",
                    client::Direction::Note,
                    &format!("{b} silent TCP connections open, then one more, in {:?}", first.elapsed()),
                );
                // Half the upgrade deadline: a node that ends it only at the deadline fails.
                let deadline = upgrade_deadline(&ctx);
                let wait = deadline / 2;
                if first.elapsed() + wait >= deadline {
                    return Err(Failure::not_applicable(format!(
                        "opening {} TCP connections took {:?}, too near the upgrade deadline {deadline:?}",
                        b + 1,
                        first.elapsed()
                    )));
                }
                match ended_within(&mut extra, wait).await? {
                    Some(_) => {}
                    None => {
                        return Err(Failure::fail(
                            format!("TCP connection {} ended at once (FRAME-51)", b + 1),
                            format!("still open after {wait:?}"),
                        ))
                    }
                }
                if first.elapsed() < deadline {
                    for (i, s) in kept.iter().enumerate() {
                        match tcp_ended(s) {
                            Ok(false) => {}
                            Ok(true) => {
                                return Err(Failure::fail(
                                    format!("TCP connection {} of {b} kept until the upgrade deadline", i + 1),
                                    format!("ended after {:?}", first.elapsed()),
                                ))
                            }
                            Err(n) => {
                                return Err(Failure::fail("no answer before an upgrade request", format!("{n} bytes")))
                            }
                        }
                    }
                }
                drop(kept);
                // Once they are gone, the address is served again: the node may take a moment
                // to read their ends, and meanwhile ends new TCP connections as before.
                let start = Instant::now();
                loop {
                    match admitted(&mut ctx).await {
                        Ok(_) => return Ok(()),
                        Err(f) if start.elapsed() >= SLOT_WINDOW => return Err(f),
                        Err(_) => tokio::time::sleep(RETRY_PAUSE).await,
                    }
                }
            }),
        )
        .prefer_own_node(small())
        .exclusive()
        .timeout_ms(30_000),
        Case::new(
            "LIMIT-UPGRADE-002",
            Must,
            &["FRAME-52"],
            "a TCP connection that sends half an upgrade request and nothing more is ended by the upgrade deadline \
             (2000 ms, or handshake_timeout_ms when shorter)",
            run!(|ctx| {
                use tokio::io::AsyncWriteExt;
                let deadline = upgrade_deadline(&ctx);
                let mut s = raw_tcp(&ctx).await?;
                let half = "GET / HTTP/1.1\r\nHost: kith\r\nUpgrade: websocket\r\n";
                s.write_all(half.as_bytes())
                    .await
                    .map_err(|e| Failure::fail("the first request lines sent", e.to_string()))?;
                ctx.transcript().push("case", client::Direction::Note, &format!("sent {half:?} and nothing more"));
                // A margin for the two clocks and the node's timer.
                let wait = deadline + Duration::from_millis(750);
                match ended_within(&mut s, wait).await? {
                    Some(after) => {
                        ctx.transcript().push("case", client::Direction::Note, &format!("ended after {after:?}"));
                        Ok(())
                    }
                    None => Err(Failure::fail(
                        format!("the TCP connection ended within the upgrade deadline {deadline:?} (FRAME-52)"),
                        format!("still open after {wait:?}"),
                    )),
                }
            }),
        )
        .prefer_own_node(small())
        .timeout_ms(30_000),
        Case::new(
            "LIMIT-ERROR-SIZE-001",
            Must,
            &["FRAME-53", "FRAME-12"],
            "a request whose unknown type is 30000 combining characters (60 KB) is answered unknown_type with a \
             message of at most 1024 bytes",
            run!(|ctx| {
                let mut c = ctx.connect().await?;
                let ty = "\u{300}".repeat(30_000);
                let text = format!(r#"{{"type":"{ty}","id":1}}"#);
                c.set_recording(false);
                c.send_text(&text).await?;
                let frame = c.recv_frame(DEFAULT_WAIT).await;
                c.set_recording(true);
                c.note(&format!("sent a request of {} bytes whose type is 30000 × U+0300", text.len()));
                let e = crate::case::expect_error(frame?, ErrorCode::UnknownType)?;
                check_eq("error id", e.id.map(RequestId::get), Some(1))?;
                check(e.message.len() <= 1024, "a message of at most 1024 bytes (FRAME-53)", e.message.len())
            }),
        ),
    ]
}
