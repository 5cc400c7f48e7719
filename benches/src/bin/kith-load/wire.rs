//! The tool's websocket client: connecting, the handshake, the admin's session that creates the
//! load's users, the pipelined publisher and the subscriber that listens. Everything that sends or
//! receives on a socket is here.
//!
//! The handshake runs on the core's client session; the sockets, the clock, randomness and
//! request ids are the shared driver's (`kith-client`): a publisher sends and reads
//! acknowledgements at once on the two halves of one [`Connection::split`], and publishers and
//! listeners read acks and events as raw text without decoding them (the generator must stay
//! far cheaper than the node it measures). Connections record no transcript and send small
//! frames at once (TCP_NODELAY), as the tool's own sockets did.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kith_client::{counted_id, now_ms, random_bytes, ConnectOptions, Connection, Raw, RawError, Transcript};
use kith_proto::account::{AccountName, CreateUser};
use kith_proto::cert::Certificate;
use kith_proto::feed::{Filter, Heads, Subscribe};
use kith_proto::handshake::ClientConfig;
use kith_proto::session::client::ClientSession;
use kith_proto::version::PROTOCOL_VERSION;
use kith_proto::{ClientFrame, PublicKey, RequestId, SecretKey, ServerFrame};
use serde::Deserialize;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::measure::Stamps;
use crate::Res;

pub(crate) type Ws = Connection;

/// How long any single answer may take before the run is declared failed.
pub(crate) const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// A publish allowance large enough never to run out during a run.
pub(crate) const BIG_ALLOWANCE: u64 = 1_000_000_000_000;

pub(crate) fn fresh_name(prefix: &str) -> String {
    let b = random_bytes();
    let hex: String = b[..6].iter().map(|x| format!("{x:02x}")).collect();
    format!("{prefix}{hex}")
}

pub(crate) async fn connect(url: &str) -> Res<Ws> {
    let options = ConnectOptions::new("load", Transcript::default()).wait(ANSWER_WAIT).recording(false);
    let ws = Connection::connect_with(url, options).await.map_err(|e| e.to_string())?;
    ws.set_nodelay(true).map_err(|e| format!("TCP_NODELAY: {e}"))?;
    Ok(ws)
}

pub(crate) async fn send_text(ws: &mut Ws, text: String) -> Res<()> {
    ws.send_text(&text).await.map_err(|e| format!("websocket send: {e}"))
}

pub(crate) async fn recv_frame(ws: &mut Ws) -> Res<ServerFrame> {
    ws.recv_frame(ANSWER_WAIT).await.map_err(|e| e.to_string())
}

/// A user's key with a peer key it blessed: what logging in needs.
#[derive(Clone)]
pub(crate) struct Identity {
    pub(crate) peer: SecretKey,
    pub(crate) cert: Certificate,
}

impl Identity {
    pub(crate) fn new(user: SecretKey) -> Self {
        let peer = SecretKey::from_seed(random_bytes());
        let cert = Certificate::issue(&user, peer.public(), now_ms() + 24 * 3_600_000);
        Identity { peer, cert }
    }

    /// Starts a handshake on a fresh client session of the core (its `hello` is request 1, its
    /// `auth` request 2): the session and the `hello` to send. Prepared before a timed run, so
    /// that the client's own curve work is not timed.
    pub(crate) fn start(&self, node: PublicKey) -> Res<(ClientSession, String)> {
        let config = ClientConfig {
            peer: self.peer.clone(),
            cert: self.cert.clone(),
            expected_node: node,
            version: PROTOCOL_VERSION.into(),
        };
        let mut session = ClientSession::new();
        let hello = session.hello(config, random_bytes()).map_err(|e| format!("handshake: {e}"))?;
        Ok((session, ClientFrame::Hello(hello).to_text()))
    }
}

/// Runs the rest of a handshake begun with [`Identity::start`].
pub(crate) async fn finish_login(ws: &mut Ws, mut session: ClientSession, hello: String) -> Res<()> {
    send_text(ws, hello).await?;
    let challenge = match recv_frame(ws).await? {
        ServerFrame::Challenge(c) => c,
        other => return Err(format!("expected challenge, got {}", other.to_text())),
    };
    let auth = session.handle_challenge(&challenge).map_err(|e| format!("handshake: {e}"))?;
    send_text(ws, ClientFrame::Auth(auth).to_text()).await?;
    match recv_frame(ws).await? {
        ServerFrame::Welcome(welcome) => {
            session.handle_welcome(&welcome).map_err(|e| format!("handshake: {e}"))?;
            Ok(())
        }
        other => Err(format!("expected welcome, got {}", other.to_text())),
    }
}

pub(crate) async fn login(url: &str, node: PublicKey, id: &Identity) -> Res<Ws> {
    let mut ws = connect(url).await?;
    let (session, hello) = id.start(node)?;
    finish_login(&mut ws, session, hello).await?;
    Ok(ws)
}

/// The admin's session, which creates the load's users.
pub(crate) struct Admin {
    pub(crate) ws: Ws,
    pub(crate) next_id: u64,
}

impl Admin {
    pub(crate) async fn open(url: &str, admin: &SecretKey) -> Res<Admin> {
        let ws = login(url, admin.public(), &Identity::new(admin.clone())).await?;
        Ok(Admin { ws, next_id: 10 })
    }

    /// Creates `n` users with fresh keys, pipelining the requests.
    pub(crate) async fn create_users(&mut self, n: usize, prefix: &str) -> Res<Vec<SecretKey>> {
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
                self.ws.feed_text(&frame.to_text()).await.map_err(|e| format!("websocket send: {e}"))?;
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
    pub(crate) async fn stored_bytes(&mut self, authors: &[PublicKey], sizes: &[Vec<usize>]) -> Res<u64> {
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

/// What a publisher saw.
#[derive(Debug, Default)]
pub(crate) struct PubStats {
    pub(crate) accepted: u64,
    pub(crate) duplicates: u64,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) ack_us: Vec<u32>,
    /// Longest time between two acks while publishes were outstanding.
    pub(crate) max_gap_us: u32,
    pub(crate) last_ack: Option<Instant>,
}

/// An answer to a publish, read without decoding the whole frame.
#[derive(Deserialize)]
pub(crate) struct AckLite<'a> {
    #[serde(rename = "type", borrow)]
    pub(crate) ty: &'a str,
    #[serde(default)]
    pub(crate) duplicate: bool,
    #[serde(default, borrow)]
    pub(crate) code: Option<&'a str>,
}

/// Publishes `frames` on `ws` keeping at most `in_flight` unacknowledged; with `pace`, entry i
/// is sent no earlier than `start + i * every`.
pub(crate) async fn publish(
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
            sink.feed_text(text).await.map_err(|e| format!("send: {e}"))?;
        }
        sink.flush().await.map_err(|e| format!("send: {e}"))?;
        Ok::<_, String>(sink)
    };
    let recv = async {
        let mut stats = PubStats::default();
        let mut last = Instant::now();
        let mut got = 0;
        while got < n {
            let text = match stream.next_text(ANSWER_WAIT).await {
                Ok(t) => t,
                Err(RawError::Timeout(_)) => return Err("no ack in time".to_owned()),
                Err(RawError::Binary) => continue,
                Err(RawError::Ended(end)) => return Err(format!("publisher connection {end}")),
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
            let ack: AckLite<'_> = serde_json::from_str(&text).map_err(|e| format!("bad ack {e}: {text}"))?;
            match ack.ty {
                "publish_ok" if ack.duplicate => stats.duplicates += 1,
                "publish_ok" => stats.accepted += 1,
                "error" => *stats.errors.entry(ack.code.unwrap_or("?").to_owned()).or_default() += 1,
                other => return Err(format!("unexpected {other} among acks")),
            }
        }
        stats.last_ack = Some(last);
        Ok::<_, String>(stats)
    };
    let (sent, received) = tokio::join!(send, recv);
    let mut sink = sent?;
    let stats = received?;
    let _ = sink.close().await;
    Ok(stats)
}

/// An event push, read without decoding the entry.
#[derive(Deserialize)]
pub(crate) struct EventLite<'a> {
    #[serde(rename = "type", borrow)]
    pub(crate) ty: &'a str,
    #[serde(default, borrow)]
    pub(crate) entry: Option<EntryLite<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct EntryLite<'a> {
    #[serde(borrow)]
    pub(crate) author: &'a str,
    pub(crate) seq: usize,
}

/// What a subscriber saw.
#[derive(Debug, Default)]
pub(crate) struct SubStats {
    pub(crate) events: u64,
    pub(crate) delivery_us: Vec<u32>,
    pub(crate) closed: Option<String>,
}

/// Subscribes to `authors` (no backfill) and reports readiness on `ready`.
pub(crate) async fn subscribe(ws: &mut Ws, authors: Vec<PublicKey>) -> Res<()> {
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
pub(crate) async fn listen(ws: Ws, stamps: Arc<Stamps>, mut stop: watch::Receiver<bool>) -> SubStats {
    let mut stats = SubStats::default();
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            msg = stream.next_raw() => match msg {
                Raw::Text(t) => {
                    let now = Instant::now();
                    if let Ok(EventLite { ty: "event", entry: Some(e) }) = serde_json::from_str::<EventLite<'_>>(&t) {
                        stats.events += 1;
                        stamps.delivered.fetch_add(1, Ordering::Relaxed);
                        if let Some(us) = stamps.since_sent(e.author, e.seq, now) {
                            stats.delivery_us.push(us);
                        }
                    }
                }
                Raw::Binary(_) => {}
                Raw::Ended(end) => { stats.closed = Some(end.to_string()); break; }
            }
        }
    }
    let _ = sink.close().await;
    stats
}
