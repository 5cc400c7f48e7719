//! One websocket connection: the handshake, then requests, each answered in order.
//!
//! A connection is two tasks: this one reads frames and handles them; the sender task drains
//! the bounded [`Outbox`] into the socket. Publishes are pipelined: the entry is verified here
//! (so signature checks run on every core), queued for the writer, and the writer queues the
//! answer after the commit; any other answer first waits for the publishes before it, so that
//! answers keep request order.
//!
//! Before anything is read, the connection is admitted against the per-address and pending
//! handshake counts ([FRAME-42] .. [FRAME-44]); every message it sends then takes a token from
//! its bucket ([FRAME-45] .. [FRAME-47]).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use kith_proto::account::{
    Account, AccountOk, CreateUserOk, InviteesOk, KeyReplacement, RemoveUserOk, ReplaceKeyOk, MAX_INVITEES_PAGE,
};
use kith_proto::entry::Kind;
use kith_proto::feed::{GetTarget, HeadInfo, HeadsOk, StoredEnd, SubscribeOk, UnsubscribeOk, DEFAULT_BACKFILL};
use kith_proto::frame::{peek_type, ErrorFrame};
use kith_proto::identity::{AddIdentityOk, FollowOk, FollowsOk, IdentitiesOk, Identity, UnfollowOk, MAX_FOLLOWS_PAGE};
use kith_proto::session::server::{Action, Received, Request, ServerSession, SessionConfig};
use kith_proto::{ClientFrame, ErrorCode, HasErrorCode, PublicKey, RequestId, ServerFrame, VerifiedEntry};
use rand_core::{OsRng, RngCore};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::{sleep_until, timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request as Upgrade, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::error::ReqError;
use crate::fault::{Fault, Faults};
use crate::hub::{event_text, Hub, ItemsRefused, Out, Outbox, OutboxRx, QueueBound};
use crate::limits::{Slot, Upgrading};
use crate::writer::{Cmd, Op, OpOk};
use crate::{now_ms, Ctx};

/// Largest websocket message the socket layer reads at all; larger than
/// [`kith_proto::frame::MAX_FRAME_BYTES`]
/// so that an oversized frame is seen and answered with `frame_too_large` ([FRAME-5]) (and the
/// largest frame the `no-frame-limit` fault processes).
const MAX_WS_MESSAGE: usize = 1 << 20;
/// Socket read buffer per connection.
const READ_BUFFER_BYTES: usize = 8 << 10;
/// Most publishes one connection may have queued at the writer.
const MAX_PIPELINED: usize = 256;

/// The close deadline: how long after the node decides to end a connection, for any reason,
/// the peer gets to take what is queued and the close frame before the socket is dropped
/// ([FRAME-50]; fixed by kith/1, `kith_proto::frame::CLOSE_DEADLINE_MS`).
const CLOSE_DEADLINE: Duration = Duration::from_millis(kith_proto::frame::CLOSE_DEADLINE_MS);
/// How long a refused connection gets to take its error and close frames and answer the close.
const REFUSE_WAIT: Duration = Duration::from_secs(2);

/// Close codes.
const WS_NORMAL: u16 = 1000;
const WS_POLICY: u16 = 1008;
const WS_TOO_BIG: u16 = 1009;
const WS_TRY_AGAIN_LATER: u16 = 1013;

struct Conn {
    ctx: Arc<Ctx>,
    outbox: Outbox,
    /// The protocol: every decision about a received message is the session's.
    session: ServerSession,
    /// When the session's certificate expires, once welcomed ([HS-55]).
    ends: Option<Instant>,
    pending: VecDeque<oneshot::Receiver<()>>,
    /// The connection's place in the connection counts, released when it is dropped.
    slot: Slot,
    /// When the handshake must be finished ([HS-40]): hello pacing does not wait past it.
    deadline: Instant,
    /// The account as `welcome` showed it (kept only for the fault stale-account).
    welcomed: Option<Account>,
}

/// The `heads_ok` answer to request `id` for the feed states the store found, in its order.
fn heads_ok(id: RequestId, heads: Vec<(PublicKey, kith_proto::entry::FeedHead)>) -> ServerFrame {
    let heads = heads
        .into_iter()
        .map(|(author, h)| HeadInfo { author, seq: h.seq, entry_id: h.id, pruned_through: h.pruned_through })
        .collect();
    ServerFrame::HeadsOk(HeadsOk { id, heads })
}

/// Serves one accepted TCP connection from `ip` to its end; `upgrading` is its place among the
/// upgrades under way ([FRAME-51]), released once the upgrade is over.
pub(crate) async fn serve_conn(ctx: Arc<Ctx>, tcp: TcpStream, ip: IpAddr, upgrading: Upgrading) {
    let conn_id = ctx.next_conn();
    let opened = Instant::now();
    let deadline = opened + ctx.handshake_timeout;
    // [FRAME-52]: the upgrade has its own, shorter deadline (the handshake's when shorter).
    let upgrade_by = if ctx.faults.has(Fault::NoUpgradeDeadline) {
        deadline
    } else {
        deadline.min(opened + Duration::from_millis(kith_proto::frame::UPGRADE_DEADLINE_MS))
    };
    // Small socket buffers: most connections are idle most of the time, and tungstenite's
    // 128 KiB default read buffer is allocated and zeroed per connection.
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE))
        .read_buffer_size(READ_BUFFER_BYTES);
    let _ = tcp.set_nodelay(true);
    // Admission happens when the upgrade request has been read, just before the answer that
    // completes the upgrade is written: a client that has seen its upgrade complete is counted,
    // and a failed upgrade releases its slot as the slot is dropped.
    let mut admitted: Option<Result<Slot, ErrorCode>> = None;
    #[allow(clippy::result_large_err)] // the callback's signature is tungstenite's
    let admit = |_: &Upgrade, response: Response| -> Result<Response, ErrorResponse> {
        admitted = Some(ctx.admission.admit(ip));
        Ok(response)
    };
    let upgrade = tokio_tungstenite::accept_hdr_async_with_config(tcp, admit, Some(config));
    let ws = match timeout_at(upgrade_by, upgrade).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(conn = conn_id, "websocket upgrade failed: {e}");
            return;
        }
        Err(_) => return,
    };
    drop(upgrading);
    let slot = match admitted {
        Some(Ok(slot)) => slot,
        Some(Err(code)) => {
            refuse(ws, code).await;
            return;
        }
        None => return,
    };
    let (sink, mut stream) = ws.split();
    let max_bytes = usize::try_from(ctx.limits.max_queued_bytes).unwrap_or(usize::MAX);
    let bound = QueueBound {
        // The fault slow-consumer-at-half closes at half the reported bound ([FRAME-48]).
        max_bytes: if ctx.faults.has(Fault::SlowConsumerAtHalf) { max_bytes / 2 } else { max_bytes },
        max_total_bytes: max_bytes.saturating_mul(4).max(crate::hub::MIN_TOTAL_QUEUED_BYTES),
        unbounded: ctx.faults.has(Fault::NoQueueLimit),
        discard: ctx.faults.has(Fault::DiscardPush),
    };
    let (outbox, orx, mut stop) = Outbox::new(conn_id, ctx.queued_total.clone(), bound);
    ctx.add_conn(&outbox);
    let subs_release = SubsRelease { hub: ctx.hub.clone(), conn: conn_id };
    let mut sender = tokio::spawn(send_loop(sink, orx));
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    if ctx.faults.has(Fault::ReuseEphemeral) {
        // The fault: the same ephemeral key for every handshake ([HS-14]).
        seed = [7; 32];
    }
    let session = ServerSession::new(SessionConfig {
        node_key: ctx.node_key.clone(),
        ephemeral_seed: seed,
        max_requests_per_second: ctx.limits.max_requests_per_second,
        handshake_timeout: ctx.handshake_timeout,
        opened: opened.into_std(),
    });
    #[cfg(feature = "faults")]
    let session = session.with_faults(crate::session_faults::session_faults(ctx.faults));
    let mut c = Conn {
        ctx: ctx.clone(),
        outbox: outbox.clone(),
        session,
        ends: None,
        pending: VecDeque::new(),
        slot,
        deadline,
        welcomed: None,
    };
    loop {
        let authed = c.ends.is_some();
        let session_end = c.ends.unwrap_or(deadline);
        let handshake_deadline = c.session.handshake_deadline().map(Instant::from_std);
        tokio::select! {
            // A connection that is closing processes no further request ([FRAME-33]).
            biased;
            _ = stopped(&mut stop) => break,
            _ = sleep_until(handshake_deadline.unwrap_or(deadline)), if handshake_deadline.is_some() => {
                // [HS-40]
                c.drain().await;
                let timed_out = c.session.handshake_timed_out();
                c.perform(&Received::Control, timed_out).await;
                break;
            }
            _ = sleep_until(session_end), if authed && !ctx.faults.has(Fault::SessionOutlivesCert) => {
                // [HS-55]: the session ends with its certificate, answers already due first.
                c.drain().await;
                c.outbox.closing(ErrorCode::CertExpired, "the session's certificate expired", WS_NORMAL);
                break;
            }
            msg = stream.next() => {
                let keep = match msg {
                    None => false,
                    Some(Ok(m)) => c.handle_message(m).await,
                    Some(Err(WsError::Capacity(e))) => {
                        c.drain().await;
                        c.fail(None, ErrorCode::FrameTooLarge, &format!("frame too large: {e}"), WS_TOO_BIG);
                        false
                    }
                    Some(Err(WsError::Utf8(_))) => {
                        // [FRAME-3]: fail the connection as RFC 6455 §8 says.
                        c.outbox.close(1007, "invalid utf-8");
                        false
                    }
                    Some(Err(e)) => {
                        tracing::debug!(conn = conn_id, "read error: {e}");
                        false
                    }
                };
                if !keep {
                    break;
                }
            }
        }
    }
    // The node has decided to end the connection: from here the peer gets the close deadline
    // to take what is queued, whether or not it reads ([FRAME-50]).
    let close_by = Instant::now() + CLOSE_DEADLINE;
    let _ = timeout_at(close_by, c.drain()).await;
    let user = c.session.user();
    let Conn { slot, .. } = c;
    ctx.hub.remove_conn(user, conn_id);
    drop(subs_release);
    ctx.remove_conn(conn_id);
    outbox.close(1000, "");
    drop(outbox);
    if ctx.faults.has(Fault::NoCloseDeadline) {
        // The fault: wait for as long as the peer keeps its receive window shut.
        let _ = sender.await;
    } else if timeout_at(close_by, &mut sender).await.is_err() {
        // Aborting drops the socket's write half and every queued frame (their bytes are
        // released by their charges); awaiting makes sure both are gone.
        sender.abort();
        let _ = sender.await;
    }
    drop(stream);
    // The socket is gone only now: until then the connection counts toward its address
    // ([FRAME-50], 06 §8.1).
    drop(slot);
}

/// Ends a connection's subscriptions and releases their filter items from the connection's and
/// the node-wide counts when dropped ([FEED-36]), so that no way out of `serve_conn` (a return,
/// a panic, the task dropped at shutdown) can leave them counted.
struct SubsRelease {
    hub: Arc<Hub>,
    conn: u64,
}

impl Drop for SubsRelease {
    fn drop(&mut self) {
        self.hub.subs().remove_conn(self.conn);
    }
}

/// Refuses an upgraded connection that would pass a connection limit ([FRAME-42],
/// [FRAME-43]): the error with `"id":null`, then close 1013 with the code as reason. Nothing
/// received on it is processed; it is read only to let the peer answer the close, so that the
/// error is not lost to a reset.
async fn refuse(mut ws: WebSocketStream<TcpStream>, code: ErrorCode) {
    let message = match code {
        ErrorCode::TooManyConnections => "too many open connections from this address",
        _ => "too many connections are in their handshake",
    };
    let text = ServerFrame::error(None, code, message).to_text();
    let close = CloseFrame { code: CloseCode::from(WS_TRY_AGAIN_LATER), reason: code.as_str().into() };
    let _ = timeout(REFUSE_WAIT, async {
        ws.feed(Message::text(text)).await?;
        ws.send(Message::Close(Some(close))).await?;
        while let Some(Ok(_)) = ws.next().await {}
        Ok::<(), WsError>(())
    })
    .await;
}

/// Most queued frames written before one flush.
const MAX_WRITE_BATCH: usize = 256;

/// Drains the outbound queue into the socket until closed: every frame already queued is
/// written, then one flush, so that a burst of events costs one system call, not one each.
/// It may wait on the peer without bound (a peer that does not read); once the connection is
/// ending, [`serve_conn`] aborts it at the close deadline ([FRAME-50]), and the frames it held
/// release their queued bytes as they are dropped (`hub::Charge`).
async fn send_loop(mut sink: SplitSink<WebSocketStream<TcpStream>, Message>, mut orx: OutboxRx) {
    'outer: loop {
        let Some(first) = orx.rx.recv().await else { break };
        let mut batch = vec![first];
        while batch.len() < MAX_WRITE_BATCH && !matches!(batch.last(), Some(Out::Close(..))) {
            match orx.rx.try_recv() {
                Ok(out) => batch.push(out),
                Err(_) => break,
            }
        }
        let mut last = false;
        for out in batch {
            let (msg, charge) = match out {
                Out::Text(text, charge) => (Message::text(text), Some(charge)),
                Out::Close(code, reason) => {
                    last = true;
                    (Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() })), None)
                }
            };
            let fed = sink.feed(msg).await;
            // Handed to the transport: no longer queued ([FRAME-34]).
            drop(charge);
            if fed.is_err() {
                break 'outer;
            }
        }
        if sink.flush().await.is_err() || last {
            break;
        }
    }
    drop(orx);
    let _ = timeout(Duration::from_secs(1), sink.close()).await;
}

/// Resolves once the connection is told to stop reading.
async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

impl Conn {
    /// Waits until every pipelined publish has been answered.
    async fn drain(&mut self) {
        if self.ctx.faults.has(Fault::AnswersOutOfOrder) {
            // The fault: later answers do not wait for earlier publishes ([FRAME-20]).
            return;
        }
        while let Some(rx) = self.pending.pop_front() {
            let _ = rx.await;
        }
    }

    /// Queues an answer after every earlier one.
    async fn reply(&mut self, frame: ServerFrame) {
        self.drain().await;
        self.outbox.push(frame.to_text());
    }

    async fn reply_text(&mut self, text: String) {
        self.drain().await;
        self.outbox.push(text);
    }

    async fn reply_err(&mut self, id: RequestId, e: ReqError) {
        self.reply(ServerFrame::error(Some(id), e.code, e.message)).await;
    }

    /// Sends an error and closes with the code as reason (handshake failures [HS-35],
    /// timeouts [HS-40] and oversized frames [FRAME-6]).
    fn fail(&self, id: Option<RequestId>, code: ErrorCode, message: &str, ws_code: u16) {
        let text = ServerFrame::error(id, code, message).to_text();
        if self.ctx.faults.has(Fault::FrameAfterFinalError) {
            // The fault: the final error goes out twice, the second one after the end ([FRAME-32]).
            self.outbox.push(text.clone());
        }
        self.outbox.finish(text, ws_code, code.as_str());
    }

    /// Handles one websocket message; false ends the connection. The session decides what it
    /// means ([`ServerSession::receive`]); the node carries the action out.
    async fn handle_message(&mut self, msg: Message) -> bool {
        let received = match &msg {
            Message::Text(text) => Received::Text(text.as_str()),
            Message::Binary(bytes) => Received::Binary(bytes.len()),
            Message::Close(_) => Received::Close,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Received::Control,
        };
        let action = self.session.receive(received, Instant::now().into_std(), now_ms());
        self.perform(&received, action).await
    }

    /// Carries out the session's `action` for the message `received`; false ends the
    /// connection.
    async fn perform(&mut self, received: &Received<'_>, action: Action) -> bool {
        let faults = self.ctx.faults;
        match action {
            Action::Nothing => true,
            Action::Closed => false,
            Action::Close { error, ws_code } => {
                self.drain().await;
                self.fail(error.id, error.code, &error.message, ws_code);
                false
            }
            Action::Send(ServerFrame::Error(e)) => self.send_error(received, e).await,
            Action::Send(ServerFrame::Challenge(mut challenge)) => {
                if faults.has(Fault::ChallengeSigByOtherKey) {
                    // The fault: a signature the node key did not make ([HS-18]).
                    challenge.sig = kith_proto::SecretKey::random().sign_raw(b"not the transcript");
                }
                self.reply(ServerFrame::Challenge(challenge)).await;
                true
            }
            Action::Send(frame) => {
                self.reply(frame).await;
                true
            }
            Action::NodeInfo { id } => {
                if faults.has(Fault::NodeInfoMidHandshake) && self.session.awaiting_auth() {
                    // The fault: node_info refused between challenge and auth ([HS-4]).
                    let e = ReqError::new(ErrorCode::NotAuthenticated, "finish the handshake first");
                    self.reply_err(id, e).await;
                    return true;
                }
                let text = self.ctx.node_info_text(id);
                self.reply_text(text).await;
                true
            }
            Action::HelloNeedsTurn => {
                if faults.has(Fault::IgnoreHello) || !self.paced_hello().await {
                    return true;
                }
                match self.session.process_hello(now_ms()) {
                    // Only `Send` (the challenge) or `Close`: no further turn to take.
                    Action::HelloNeedsTurn => true,
                    answer => Box::pin(self.perform(received, answer)).await,
                }
            }
            Action::LookupAccount { id, user, cert_expires } => self.look_up(id, user, cert_expires).await,
            Action::Execute { user, request } => {
                let text = match received {
                    Received::Text(text) => text,
                    _ => "",
                };
                self.handle_request(user, text, request).await
            }
        }
    }

    /// Sends an error the session decided on, as a faulty node rewrites it.
    async fn send_error(&mut self, received: &Received<'_>, mut e: ErrorFrame) -> bool {
        let faults = self.ctx.faults;
        let text = match received {
            Received::Text(text) => *text,
            _ => "",
        };
        if matches!(received, Received::Binary(_)) && faults.has(Fault::CloseOnBinary) {
            // The fault: a binary message ends the connection ([FRAME-2]).
            self.drain().await;
            self.fail(None, ErrorCode::MalformedFrame, "binary frames are not allowed", WS_POLICY);
            return false;
        }
        if e.code == ErrorCode::NotAuthenticated {
            if faults.has(Fault::HeadsBeforeWelcome) {
                if let Ok(ClientFrame::Heads(m)) = kith_proto::parse_client_frame(text) {
                    // The fault: a known request answered before `welcome` ([HS-38]).
                    let heads = self.ctx.store.heads(&m.authors).unwrap_or_default();
                    self.reply(heads_ok(m.id, heads)).await;
                    return true;
                }
            }
            if faults.has(Fault::CloseAfterNotAuthenticated) {
                // The fault: the refusal ends the connection ([HS-39]).
                self.drain().await;
                self.fail(e.id, e.code, &e.message, WS_POLICY);
                return false;
            }
        }
        let ty = if faults.has(Fault::EntryChecksOutOfOrder) || faults.has(Fault::HeadsDecodeBeforeCount) {
            peek_type(text)
        } else {
            None
        };
        if ty == Some("publish")
            && faults.has(Fault::EntryChecksOutOfOrder)
            && matches!(e.code, ErrorCode::BadEncoding | ErrorCode::WeakKey)
        {
            // The fault: the kind grammar ([ENTRY-9]) checked before the encodings ([ENTRY-5]).
            let kind = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.pointer("/entry/kind").and_then(|k| k.as_str()).map(str::to_owned));
            if kind.is_some_and(|k| Kind::new(&k).is_err()) {
                e.code = ErrorCode::MalformedEntry;
                e.message = "kind does not match the grammar".to_owned();
            }
        }
        if ty == Some("heads")
            && faults.has(Fault::HeadsDecodeBeforeCount)
            && e.code == ErrorCode::InvalidRequest
            && e.id.is_some()
        {
            // The fault: `heads.authors` decoded ([FEED-21]) before it is counted ([FEED-20]).
            let value = serde_json::from_str::<serde_json::Value>(text).ok();
            let first_bad = value
                .as_ref()
                .and_then(|v| v.get("authors"))
                .and_then(|a| a.as_array())
                .and_then(|a| a.iter().filter_map(|t| t.as_str()).find_map(|t| PublicKey::parse(t).err()));
            if let Some(bad) = first_bad {
                e.code = bad.code();
                e.message = bad.to_string();
            }
        }
        if e.code == ErrorCode::UnknownType && faults.has(Fault::LongErrorMessage) {
            // The fault: the peer's whole `type`, escaped, in the answer ([FRAME-53]).
            let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
            e.message = format!("unknown type {:?}", v.get("type").and_then(|t| t.as_str()).unwrap_or_default());
        }
        if e.code == ErrorCode::MalformedFrame && faults.has(Fault::CloseAfterMalformed) {
            // The fault: malformed_frame ends the connection ([FRAME-10]).
            self.drain().await;
            self.fail(e.id, e.code, &e.message, WS_POLICY);
            return false;
        }
        if e.id.is_none() && e.code == ErrorCode::MalformedFrame && faults.has(Fault::EchoIdOnMalformed) {
            // The fault: a lenient parser's reading of `id` ([FRAME-17]).
            e.id = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("id").and_then(serde_json::Value::as_u64))
                .and_then(RequestId::new);
        }
        self.reply(ServerFrame::Error(e)).await;
        true
    }

    /// The account lookup in the middle of the handshake ([HS-34]), then `welcome` or the
    /// session's refusal.
    async fn look_up(&mut self, id: RequestId, user: PublicKey, cert_expires: u64) -> bool {
        let faults = self.ctx.faults;
        if user == self.ctx.node_pub && faults.has(Fault::AdminUnknownUser) {
            // The fault: the admin's certificate is refused ([HS-37]).
            let refusal = self.session.account_missing();
            return Box::pin(self.perform(&Received::Control, refusal)).await;
        }
        // Register before looking the account up, so that a replacement or removal committed
        // meanwhile either shows in the lookup or closes this session.
        self.ctx.hub.add_session(user, &self.outbox);
        let answer = match self.ctx.store.account(&user) {
            Ok(Some(account)) => {
                let account = shown_account(faults, account);
                if faults.has(Fault::StaleAccount) {
                    self.welcomed = Some(account.clone());
                }
                self.session.account_found(account)
            }
            Ok(None) => self.session.account_missing(),
            Err(e) => {
                self.ctx.hub.remove_conn(Some(user), self.outbox.conn());
                self.fail(Some(id), e.code, &e.message, WS_POLICY);
                return false;
            }
        };
        let Action::Send(welcome @ ServerFrame::Welcome(_)) = answer else {
            self.ctx.hub.remove_conn(Some(user), self.outbox.conn());
            return Box::pin(self.perform(&Received::Control, answer)).await;
        };
        // The certificate's `expires` on the wall clock, as an instant of the monotonic clock
        // that the connection's timers use.
        self.ends = Some(Instant::now() + Duration::from_millis(cert_expires.saturating_sub(now_ms())));
        // Released before `welcome` is queued, so a client that has it finds the slot free
        // ([FRAME-43]).
        self.slot.welcomed();
        if faults.has(Fault::WelcomeAccountExtraMember) {
            // The fault: an account member beyond the seven of [ACCT-1].
            let mut v = serde_json::to_value(&welcome).unwrap_or_default();
            v["account"]["admin"] = serde_json::Value::Bool(false);
            self.reply_text(v.to_string()).await;
            return true;
        }
        self.reply(welcome).await;
        true
    }

    /// Waits for this address's turn to have a `hello` processed ([HS-51]); false when the
    /// handshake deadline comes first (the connection then times out, nothing is processed).
    /// A hello the state machine refuses at once (a second one) does not wait.
    async fn paced_hello(&mut self) -> bool {
        let now = Instant::now();
        let delay = self.ctx.admission.hello_delay(self.slot.ip(), now);
        if delay.is_zero() {
            return true;
        }
        if now + delay >= self.deadline {
            sleep_until(self.deadline).await;
            return false;
        }
        tokio::time::sleep(delay).await;
        true
    }

    /// Sends `op` to the writer and waits for its result.
    async fn writer_op(&mut self, user: PublicKey, op: Op) -> Result<OpOk, ReqError> {
        self.drain().await;
        let (reply, rx) = oneshot::channel();
        let cmd = Cmd::Op { conn: self.outbox.conn(), user, op: Box::new(op), reply };
        if self.ctx.writer.send(cmd).await.is_err() {
            return Err(ReqError::new(ErrorCode::ShuttingDown, "the node is shutting down"));
        }
        rx.await.unwrap_or_else(|_| Err(ReqError::new(ErrorCode::ShuttingDown, "the node is shutting down")))
    }

    /// After `welcome`: a request of the session's user, received as `text`, its stateless
    /// rules checked by the session.
    async fn handle_request(&mut self, user: PublicKey, text: &str, request: Request) -> bool {
        let ctx = self.ctx.clone();
        let frame = match request {
            Request::Publish { id, entry } => {
                self.publish(user, id, entry).await;
                return true;
            }
            Request::ReplaceKey { id, replacement } => return self.replace_key(user, id, replacement).await,
            Request::AddIdentity { id, note } => {
                let op = Op::AddIdentity(note, ctx.limits.max_notes, ctx.limits.max_note_bytes);
                match self.writer_op(user, op).await {
                    Ok(_) => self.reply(ServerFrame::AddIdentityOk(AddIdentityOk { id })).await,
                    Err(e) => self.reply_err(id, e).await,
                }
                return true;
            }
            Request::Other(frame) => frame,
        };
        match frame {
            // The session answers these itself, and checks these two into their own requests.
            ClientFrame::NodeInfo(_)
            | ClientFrame::Hello(_)
            | ClientFrame::Auth(_)
            | ClientFrame::Publish(_)
            | ClientFrame::ReplaceKey(_)
            | ClientFrame::AddIdentity(_) => true,
            ClientFrame::Account(m)
                if ctx.faults.has(Fault::DenyUnknownMember)
                    && serde_json::from_str::<serde_json::Value>(text)
                        .ok()
                        .and_then(|v| v.as_object().map(|o| o.keys().any(|k| k != "type" && k != "id")))
                        .unwrap_or(false) =>
            {
                // The fault: an unlisted member refused ([FRAME-15]).
                self.reply_err(m.id, ReqError::new(ErrorCode::InvalidRequest, "unknown member")).await;
                true
            }
            ClientFrame::Account(m) => {
                self.drain().await;
                match ctx.store.account(&user) {
                    Ok(Some(account)) => {
                        // The fault stale-account answers with the account `welcome` showed ([ACCT-6]).
                        let account = self.welcomed.clone().unwrap_or_else(|| shown_account(ctx.faults, account));
                        self.reply(ServerFrame::AccountOk(AccountOk { id: m.id, account })).await
                    }
                    Ok(None) => self.reply_err(m.id, ReqError::new(ErrorCode::NotFound, "the account is gone")).await,
                    Err(e) => self.reply_err(m.id, e).await,
                }
                true
            }
            ClientFrame::CreateUser(m) => {
                let id = m.id;
                match self.writer_op(user, Op::CreateUser(m)).await {
                    Ok(OpOk::Account(account)) => {
                        self.reply(ServerFrame::CreateUserOk(CreateUserOk { id, account })).await
                    }
                    Ok(OpOk::Unit) => self.reply_err(id, ReqError::new(ErrorCode::Internal, "no account")).await,
                    Err(e) => self.reply_err(id, e).await,
                }
                true
            }
            ClientFrame::RemoveUser(m) => {
                match self.writer_op(user, Op::RemoveUser(m.key)).await {
                    Ok(_) => self.reply(ServerFrame::RemoveUserOk(RemoveUserOk { id: m.id })).await,
                    Err(e) => self.reply_err(m.id, e).await,
                }
                true
            }
            ClientFrame::Invitees(m) => {
                self.drain().await;
                let only_children = ctx.faults.has(Fault::InviteesChildrenOnly);
                match ctx.store.invitees(&user, m.after.as_ref(), MAX_INVITEES_PAGE, only_children) {
                    Ok((accounts, more)) => {
                        let more = more && !ctx.faults.has(Fault::InviteesMoreFalse);
                        self.reply(ServerFrame::InviteesOk(InviteesOk { id: m.id, accounts, more })).await
                    }
                    Err(e) => self.reply_err(m.id, e).await,
                }
                true
            }
            ClientFrame::Subscribe(m) => {
                self.drain().await;
                let asked = m.backfill.unwrap_or(DEFAULT_BACKFILL);
                let n =
                    if ctx.faults.has(Fault::BackfillBeyondMax) { asked } else { asked.min(ctx.limits.max_backfill) };
                let n = if ctx.faults.has(Fault::SkipBackfill) { 0 } else { n };
                if let Err(e) = self.subscribe(m.id, &m.filter, n) {
                    self.reply_err(m.id, e).await;
                }
                true
            }
            ClientFrame::Unsubscribe(m) => {
                self.drain().await;
                // The fault unsubscribe-keeps-sub never removes ([FEED-19]); unsubscribe-unknown-ok
                // answers every `sub` ([FEED-18]).
                let removed = if ctx.faults.has(Fault::UnsubscribeKeepsSub) {
                    ctx.hub.subs().has(self.outbox.conn(), m.sub)
                } else {
                    // The fault filter-items-not-released keeps the items counted ([FEED-36]).
                    ctx.hub.subs().remove(self.outbox.conn(), m.sub, ctx.faults.has(Fault::FilterItemsNotReleased))
                };
                if removed || ctx.faults.has(Fault::UnsubscribeUnknownOk) {
                    self.reply(ServerFrame::UnsubscribeOk(UnsubscribeOk { id: m.id })).await;
                } else {
                    self.reply_err(m.id, ReqError::new(ErrorCode::NotFound, "no such subscription")).await;
                }
                true
            }
            ClientFrame::Heads(m) => {
                self.drain().await;
                match ctx.store.heads(&m.authors) {
                    Ok(mut heads) => {
                        if ctx.faults.has(Fault::HeadsSorted) {
                            // The fault: key order instead of the request's order ([FEED-22]).
                            heads.sort_by_key(|(author, _)| author.to_string());
                        }
                        self.reply(heads_ok(m.id, heads)).await;
                    }
                    Err(e) => self.reply_err(m.id, e).await,
                }
                true
            }
            ClientFrame::Replicate(m) => {
                self.drain().await;
                let limit = if ctx.faults.has(Fault::ReplicateBeyondMax) {
                    m.limit
                } else {
                    m.limit.min(ctx.limits.max_replicate)
                };
                // The fault replicate-one-short ([FEED-25]).
                let limit = if ctx.faults.has(Fault::ReplicateOneShort) { limit - 1 } else { limit };
                match ctx.store.replicate(&m.author, m.after, limit) {
                    Ok((entries, head, pruned_through)) => {
                        let mut s = String::with_capacity(64 + entries.iter().map(|e| e.len() + 1).sum::<usize>());
                        s.push_str("{\"type\":\"replicate_ok\",\"id\":");
                        s.push_str(&m.id.to_string());
                        s.push_str(",\"entries\":[");
                        for (i, e) in entries.iter().enumerate() {
                            if i > 0 {
                                s.push(',');
                            }
                            s.push_str(e);
                        }
                        s.push_str("],\"head\":");
                        s.push_str(&head.map_or_else(|| "null".to_owned(), |h| h.to_string()));
                        s.push_str(",\"pruned_through\":");
                        s.push_str(&pruned_through.to_string());
                        s.push('}');
                        self.reply_text(s).await;
                    }
                    Err(e) => self.reply_err(m.id, e).await,
                }
                true
            }
            ClientFrame::Get(m) => {
                self.drain().await;
                let result = match m.target() {
                    Some(GetTarget::Id(_)) if ctx.faults.has(Fault::GetIdNotFound) => {
                        Err(ReqError::new(ErrorCode::NotFound, "no such entry"))
                    }
                    Some(GetTarget::Id(id)) => ctx.store.get_by_id(&id),
                    Some(GetTarget::Position(author, seq)) => {
                        // The fault get-position-off-by-one ([FEED-31]).
                        let at = if ctx.faults.has(Fault::GetPositionOffByOne) && seq > 1 { seq - 1 } else { seq };
                        match ctx.store.get_by_position(&author, at) {
                            // The fault get-missing-pruned ([FEED-33]).
                            Err(e) if e.code == ErrorCode::NotFound && ctx.faults.has(Fault::GetMissingPruned) => {
                                Err(ReqError::new(ErrorCode::Pruned, "pruned"))
                            }
                            other => other,
                        }
                    }
                    // The session refused a get without a target.
                    None => Err(ReqError::new(ErrorCode::InvalidRequest, "give either entry_id or author and seq")),
                };
                let result = match result {
                    Ok(text) if ctx.faults.has(Fault::GetDropsEmptyLists) => Ok(drop_empty_lists(text)),
                    other => other,
                };
                match result {
                    Ok(text) => {
                        self.reply_text(format!("{{\"type\":\"get_ok\",\"id\":{},\"entry\":{text}}}", m.id)).await
                    }
                    Err(e) => self.reply_err(m.id, e).await,
                }
                true
            }
            ClientFrame::Identities(m) => {
                self.drain().await;
                let paged = ctx.store.identities(m.after.as_ref(), ctx.faults.has(Fault::IdentitiesUnpaged));
                match paged {
                    Ok((mut list, more)) => {
                        let more = more && !ctx.faults.has(Fault::IdentitiesMoreFalse);
                        if ctx.faults.has(Fault::IdentitiesDescending) {
                            // The fault: subjects descending ([IDENT-16]).
                            list.reverse();
                        }
                        if ctx.faults.has(Fault::NotesDescending) {
                            // The fault: notes by author descending ([IDENT-17]).
                            for (_, notes) in &mut list {
                                notes.reverse();
                            }
                        }
                        let identities = list.into_iter().map(|(key, notes)| Identity { key, notes }).collect();
                        let answer = ServerFrame::IdentitiesOk(IdentitiesOk { id: m.id, identities, more });
                        if ctx.faults.has(Fault::NoteExtraMember) {
                            self.reply_text(with_extra_note_member(&answer.to_text())).await;
                        } else {
                            self.reply(answer).await;
                        }
                    }
                    Err(e) => self.reply_err(m.id, e).await,
                }
                true
            }
            ClientFrame::Follow(m) => {
                match self.writer_op(user, Op::Follow(m.key, ctx.limits.max_follows)).await {
                    Ok(_) => self.reply(ServerFrame::FollowOk(FollowOk { id: m.id })).await,
                    Err(e) => self.reply_err(m.id, e).await,
                }
                true
            }
            ClientFrame::Unfollow(m) => {
                match self.writer_op(user, Op::Unfollow(m.key)).await {
                    Ok(_) => self.reply(ServerFrame::UnfollowOk(UnfollowOk { id: m.id })).await,
                    Err(e) => self.reply_err(m.id, e).await,
                }
                true
            }
            ClientFrame::Follows(m) => {
                self.drain().await;
                let page = if ctx.faults.has(Fault::FollowsUnpaged) { usize::MAX } else { MAX_FOLLOWS_PAGE };
                match ctx.store.follows(&user, m.after.as_ref(), page) {
                    Ok((mut keys, more)) => {
                        if ctx.faults.has(Fault::FollowsDescending) {
                            // The fault: the follow set in descending order ([IDENT-22]).
                            keys.reverse();
                        }
                        let answer = ServerFrame::FollowsOk(FollowsOk { id: m.id, keys, more });
                        if ctx.faults.has(Fault::FollowsAnsweredTwice) {
                            // The fault: a second answer to the same request ([FRAME-18]).
                            self.reply(answer.clone()).await;
                        }
                        self.reply(answer).await
                    }
                    Err(e) => self.reply_err(m.id, e).await,
                }
                true
            }
        }
    }

    /// Opens a subscription: the backfill snapshot and the registration happen under the
    /// registry lock, so no event is both in the backfill and live, and none falls between
    /// ([FEED-13], [FEED-16], [FEED-17]). Its frames are queued directly (nothing earlier is pending: the caller
    /// drained).
    fn subscribe(&self, id: RequestId, filter: &kith_proto::feed::Filter, n: u64) -> Result<(), ReqError> {
        let ctx = &self.ctx;
        let conn = self.outbox.conn();
        let mut subs = ctx.hub.subs();
        if subs.has(conn, id) && !ctx.faults.has(Fault::DuplicateSubAccepted) {
            return Err(ReqError::new(ErrorCode::InvalidRequest, format!("subscription {id} is already open")));
        }
        if subs.count(conn) as u64 >= ctx.limits.max_subscriptions && !ctx.faults.has(Fault::NoSubscriptionLimit) {
            return Err(ReqError::new(ErrorCode::InvalidRequest, "too many subscriptions on this connection"));
        }
        let per_conn = usize::try_from(ctx.limits.max_filter_items).unwrap_or(usize::MAX);
        let total = usize::try_from(ctx.limits.max_total_filter_items).unwrap_or(usize::MAX);
        match subs.fits(conn, filter.len(), per_conn, total) {
            Ok(()) => {}
            // The fault: the per-connection bound is not checked ([FEED-34]).
            Err(ItemsRefused::Connection) if ctx.faults.has(Fault::NoFilterItemLimit) => {}
            Err(ItemsRefused::Connection) => {
                return Err(ReqError::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "the connection's subscriptions hold {} filter items; {} more would pass max_filter_items",
                        subs.conn_items(conn),
                        filter.len()
                    ),
                ));
            }
            Err(ItemsRefused::Node) => {
                return Err(ReqError::new(ErrorCode::Busy, "the node holds max_total_filter_items filter items"));
            }
        }
        let (mut texts, live_from) = ctx.store.backfill(filter, n)?;
        if ctx.faults.has(Fault::BackfillNewestFirst) {
            // The fault: the backfill newest first ([FEED-14]).
            texts.reverse();
        }
        subs.add(&self.outbox, id, filter, live_from);
        self.outbox.push(ServerFrame::SubscribeOk(SubscribeOk { id, sub: id }).to_text());
        for t in texts {
            self.outbox.push(event_text(id, &t));
        }
        self.outbox.push(ServerFrame::StoredEnd(StoredEnd { sub: id }).to_text());
        Ok(())
    }

    /// `replace_key` with its replacement verified by the session: whether the new key is
    /// taken ([ACCT-30]) and the replacement itself are the writer's.
    async fn replace_key(&mut self, user: PublicKey, id: RequestId, replacement: KeyReplacement) -> bool {
        let ctx = self.ctx.clone();
        match self.writer_op(user, Op::ReplaceKey(replacement)).await {
            Ok(OpOk::Account(account)) => {
                if ctx.faults.has(Fault::ClosingBeforeReplaceOk) {
                    // The fault: `closing` first, then the answer, then `closing` again ([ACCT-33]).
                    let closing = kith_proto::frame::Closing {
                        code: ErrorCode::KeyReplaced,
                        message: "the session's key was replaced".into(),
                    };
                    self.reply(ServerFrame::Closing(closing)).await;
                }
                self.reply(ServerFrame::ReplaceKeyOk(ReplaceKeyOk { id, account })).await;
                if ctx.faults.has(Fault::OldKeySurvives) {
                    return true;
                }
                // [ACCT-33], [ACCT-34]: this session too, after its answer.
                self.outbox.closing(ErrorCode::KeyReplaced, "the session's key was replaced", WS_NORMAL);
                false
            }
            Ok(OpOk::Unit) => {
                self.reply_err(id, ReqError::new(ErrorCode::Internal, "no account")).await;
                true
            }
            Err(e) => {
                self.reply_err(id, e).await;
                true
            }
        }
    }

    /// `publish` ([FEED-3]) of an entry the session verified on this connection's task; chain,
    /// allowance, storage and pruning in the writer. At most [`MAX_PIPELINED`] publishes wait
    /// at the writer; answers keep request order ([FRAME-20]).
    async fn publish(&mut self, user: PublicKey, id: RequestId, verified: Box<VerifiedEntry>) {
        while self.pending.len() >= MAX_PIPELINED {
            if let Some(rx) = self.pending.pop_front() {
                let _ = rx.await;
            }
        }
        // Forget publishes already answered.
        while let Some(front) = self.pending.front_mut() {
            match front.try_recv() {
                Err(oneshot::error::TryRecvError::Empty) => break,
                _ => {
                    self.pending.pop_front();
                }
            }
        }
        let (done, rx) = oneshot::channel();
        let cmd = Cmd::Publish { outbox: self.outbox.clone(), id, user, entry: verified, done };
        if self.ctx.writer.send(cmd).await.is_err() {
            self.reply_err(id, ReqError::new(ErrorCode::ShuttingDown, "the node is shutting down")).await;
            return;
        }
        self.pending.push_back(rx);
    }
}

/// The `identities_ok` text with an eighth member in every note (the `note-extra-member` fault).
fn with_extra_note_member(text: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(text) else {
        return text.to_owned();
    };
    if let Some(identities) = value.get_mut("identities").and_then(|v| v.as_array_mut()) {
        for identity in identities {
            if let Some(notes) = identity.get_mut("notes").and_then(|v| v.as_array_mut()) {
                for note in notes.iter_mut().filter_map(|n| n.as_object_mut()) {
                    note.insert("stored".into(), serde_json::Value::Bool(true));
                }
            }
        }
    }
    value.to_string()
}

/// The fault get-drops-empty-lists: the entry without its empty `refs` and `mentions` ([FEED-1]).
fn drop_empty_lists(text: String) -> String {
    let Ok(serde_json::Value::Object(mut v)) = serde_json::from_str::<serde_json::Value>(&text) else { return text };
    for member in ["refs", "mentions"] {
        if v.get(member).and_then(|x| x.as_array()).is_some_and(|a| a.is_empty()) {
            v.remove(member);
        }
    }
    serde_json::Value::Object(v).to_string()
}

/// The account as `welcome` and `account_ok` show it: the fault admin-numeric-allowances gives
/// the admin numbers where [ACCT-3] wants `null`.
fn shown_account(faults: Faults, mut account: Account) -> Account {
    if account.parent.is_none() && faults.has(Fault::AdminNumericAllowances) {
        account.invite_allowance = Some(kith_proto::encoding::MAX_SAFE_INTEGER);
        account.publish_allowance = Some(kith_proto::encoding::MAX_SAFE_INTEGER);
    }
    account
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio_tungstenite::tungstenite::protocol::Role;

    /// The close deadline aborts a sender blocked in a socket write; every byte still queued,
    /// and the frame being written, must leave the connection's and the node-wide counts with
    /// it ([FRAME-50]), although the sender never reaches the end of its loop.
    #[tokio::test]
    async fn aborting_the_sender_mid_write_releases_every_queued_byte() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("buffer");
        // The peer never reads.
        let _peer = socket.connect(listener.local_addr().expect("addr")).await.expect("connect");
        let (tcp, _) = listener.accept().await.expect("accept");
        let (sink, _stream) = WebSocketStream::from_raw_socket(tcp, Role::Server, None).await.split();
        let total = Arc::new(AtomicUsize::new(0));
        let bound = QueueBound { max_bytes: usize::MAX, max_total_bytes: usize::MAX, unbounded: false, discard: false };
        let (outbox, orx, _stop) = Outbox::new(1, total.clone(), bound);
        let sender = tokio::spawn(send_loop(sink, orx));
        // 12 MB: more than the node's socket buffer can grow to and the peer's window holds.
        let frame = "x".repeat(60_000);
        for _ in 0..200 {
            assert!(outbox.push(frame.clone()));
        }
        outbox.close(1000, "");
        let mut last = usize::MAX;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = total.load(Ordering::Acquire);
            if now == last {
                break;
            }
            last = now;
        }
        assert!(last > 0, "the sender should be held back by the peer's closed window");
        assert_eq!(outbox.queued_bytes(), last);
        sender.abort();
        assert!(sender.await.is_err_and(|e| e.is_cancelled()), "the sender was still writing");
        assert_eq!(total.load(Ordering::Acquire), 0);
        assert_eq!(outbox.queued_bytes(), 0);
        // Nothing is queued on a connection whose sender is gone.
        assert!(!outbox.push("late".into()));
        assert_eq!(total.load(Ordering::Acquire), 0);
    }
}
