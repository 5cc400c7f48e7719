//! Per-connection outbound queues, the session registry (to close revoked sessions) and the
//! subscription registry (to fan live events out).
//!
//! Nothing here ever waits on a peer: a push either fits in the connection's bounded queue or
//! the connection is closed as a slow consumer ([FRAME-35]). The bound is the node's
//! `max_queued_bytes` of queued unsent payload bytes, and nothing else per connection
//! ([FRAME-34], [FRAME-48]); one node-wide bound protects the node's memory (06 §7 allows it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use kith_proto::feed::Filter;
use kith_proto::{Entry, EntryId, ErrorCode, PublicKey, RequestId};
use tokio::sync::{mpsc, watch};

/// The least node-wide bound on the bytes all connections together may have queued and unsent:
/// the connection whose push would pass the bound is closed as a slow consumer, whatever its own
/// queue holds (06 §7). The bound is the larger of this and 4 × `max_queued_bytes` ([FRAME-49]).
pub(crate) const MIN_TOTAL_QUEUED_BYTES: usize = 512 << 20;

/// The bound on one connection's queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueBound {
    /// `max_queued_bytes`: most payload bytes queued and unsent ([FRAME-34]).
    pub max_bytes: usize,
    /// The node-wide bound over all connections' queues ([FRAME-49]).
    pub max_total_bytes: usize,
    /// Fault `no-queue-limit`: never close a slow consumer; the queue grows without bound.
    pub unbounded: bool,
    /// Fault `discard-push`: drop a frame that does not fit instead of closing.
    pub discard: bool,
}

/// Something for a connection's sender task to do.
#[derive(Debug)]
pub(crate) enum Out {
    /// Send a text frame; its bytes count as queued until the charge is dropped.
    Text(String, Charge),
    /// Send a close frame and stop.
    Close(u16, &'static str),
}

/// The queued bytes of one frame, counted in its connection's queue and in the node-wide count
/// until dropped. A frame releases its bytes however it leaves the queue: handed to the
/// transport, dropped with the queue when the sender stops, or dropped mid-write when the
/// sender task is aborted at the close deadline ([FRAME-50]) — so no path can leak the
/// node-wide count.
#[derive(Debug)]
pub(crate) struct Charge {
    len: usize,
    queued: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.queued.fetch_sub(self.len, Ordering::AcqRel);
        self.total.fetch_sub(self.len, Ordering::AcqRel);
    }
}

#[derive(Debug)]
struct OutboxInner {
    conn: u64,
    tx: mpsc::UnboundedSender<Out>,
    /// This connection's queued bytes (shared with the charges of its frames).
    queued_bytes: Arc<AtomicUsize>,
    bound: QueueBound,
    /// The node-wide count of queued bytes.
    total: Arc<AtomicUsize>,
    /// Set once a close is queued or the connection is killed: nothing more is queued.
    closed: AtomicBool,
    /// Flips to true when the connection should stop reading requests.
    stop: watch::Sender<bool>,
}

/// A handle on one connection's bounded outbound queue.
#[derive(Debug, Clone)]
pub(crate) struct Outbox(Arc<OutboxInner>);

/// The receiving half, owned by the connection's sender task. Dropping it (the task ended or
/// was aborted) drops every frame still queued, which releases their bytes, and marks the
/// connection finished.
pub(crate) struct OutboxRx {
    pub rx: mpsc::UnboundedReceiver<Out>,
    pub outbox: Outbox,
}

impl Drop for OutboxRx {
    fn drop(&mut self) {
        self.outbox.finished();
    }
}

impl Outbox {
    /// A fresh queue for connection `conn`.
    pub(crate) fn new(
        conn: u64,
        total: Arc<AtomicUsize>,
        bound: QueueBound,
    ) -> (Outbox, OutboxRx, watch::Receiver<bool>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(false);
        let ob = Outbox(Arc::new(OutboxInner {
            conn,
            tx,
            queued_bytes: Arc::new(AtomicUsize::new(0)),
            bound,
            total,
            closed: AtomicBool::new(false),
            stop,
        }));
        (ob.clone(), OutboxRx { rx, outbox: ob }, stop_rx)
    }

    /// The connection's number.
    pub(crate) fn conn(&self) -> u64 {
        self.0.conn
    }

    /// Counts `len` more queued bytes; returns the charge that releases them and the
    /// connection's and the node's counts with them.
    fn charge(&self, len: usize) -> (Charge, usize, usize) {
        let bytes = self.0.queued_bytes.fetch_add(len, Ordering::AcqRel) + len;
        let total = self.0.total.fetch_add(len, Ordering::AcqRel) + len;
        (Charge { len, queued: self.0.queued_bytes.clone(), total: self.0.total.clone() }, bytes, total)
    }

    /// Queues a text frame. Returns false when the connection is closed or was just killed
    /// because the frame did not fit: the queue with the frame would hold more than
    /// `max_queued_bytes` ([FRAME-48]: never while within it; the close is [FRAME-35]) or all queues together
    /// more than the node-wide bound.
    pub(crate) fn push(&self, text: String) -> bool {
        if self.0.closed.load(Ordering::Acquire) {
            return false;
        }
        let (charge, bytes, total) = self.charge(text.len());
        let bound = self.0.bound;
        if !bound.unbounded && (bytes > bound.max_bytes || total > bound.max_total_bytes) {
            drop(charge);
            if bound.discard {
                // The fault: the frame is dropped and the connection lives on ([FRAME-36]).
                return true;
            }
            self.kill_slow();
            return false;
        }
        // A frame the closed queue refuses comes back in the error and releases its charge.
        self.0.tx.send(Out::Text(text, charge)).is_ok()
    }

    /// Queues a close frame after everything already queued; nothing more is queued after it.
    pub(crate) fn close(&self, code: u16, reason: &'static str) {
        if !self.0.closed.swap(true, Ordering::AcqRel) {
            let _ = self.0.tx.send(Out::Close(code, reason));
        }
        let _ = self.0.stop.send(true);
    }

    /// Queues a last frame and then a close frame; nothing can be queued between or after
    /// them ([FRAME-32]). Does nothing when the connection is already closing.
    pub(crate) fn finish(&self, text: String, code: u16, reason: &'static str) {
        if !self.0.closed.swap(true, Ordering::AcqRel) {
            let (charge, _, _) = self.charge(text.len());
            let _ = self.0.tx.send(Out::Text(text, charge));
            let _ = self.0.tx.send(Out::Close(code, reason));
        }
        let _ = self.0.stop.send(true);
    }

    /// Queues a `closing` push and then a close frame with `ws_code` ([FRAME-28], [FRAME-29]).
    pub(crate) fn closing(&self, code: ErrorCode, message: &str, ws_code: u16) {
        let frame = kith_proto::ServerFrame::Closing(kith_proto::frame::Closing { code, message: message.into() });
        self.finish(frame.to_text(), ws_code, code.as_str());
    }

    /// Closes the connection as a slow consumer: the frame that did not fit and every later one
    /// are never sent, the frames already queued are, then close 1013 ([FRAME-35],
    /// [FRAME-36]). The connection's close deadline bounds the time the peer gets to take
    /// them ([FRAME-50]).
    pub(crate) fn kill_slow(&self) {
        if !self.0.closed.swap(true, Ordering::AcqRel) {
            let _ = self.0.tx.send(Out::Close(1013, "slow_consumer"));
        }
        let _ = self.0.stop.send(true);
    }

    /// Marks the connection as finished (the sender task stopped): nothing more is queued.
    fn finished(&self) {
        self.0.closed.store(true, Ordering::Release);
        let _ = self.0.stop.send(true);
    }

    /// This connection's queued bytes (for tests).
    #[cfg(test)]
    pub(crate) fn queued_bytes(&self) -> usize {
        self.0.queued_bytes.load(Ordering::Acquire)
    }
}

/// A live subscription.
#[derive(Debug)]
struct Sub {
    outbox: Outbox,
    id: RequestId,
    authors: BTreeSet<PublicKey>,
    threads: BTreeSet<EntryId>,
    mentions: BTreeSet<PublicKey>,
    /// Live events start at this arrival number; earlier ones were in the backfill snapshot.
    live_from: u64,
}

type SubKey = (u64, RequestId);

/// The subscription registry, indexed by author, thread and mention so that fanning an entry
/// out costs what it matches, not the number of subscriptions.
///
/// Its lock is held both while a subscription takes its backfill snapshot and while a committed
/// batch is fanned out, which is what makes the hand-over from backfill to live exact
/// ([FEED-15], [FEED-16], [FEED-17]).
#[derive(Debug, Default)]
pub(crate) struct Subs {
    subs: BTreeMap<SubKey, Sub>,
    by_author: BTreeMap<PublicKey, BTreeSet<SubKey>>,
    by_thread: BTreeMap<EntryId, BTreeSet<SubKey>>,
    by_mention: BTreeMap<PublicKey, BTreeSet<SubKey>>,
}

fn index_add<K: Ord + Copy>(index: &mut BTreeMap<K, BTreeSet<SubKey>>, keys: &BTreeSet<K>, sub: SubKey) {
    for k in keys {
        index.entry(*k).or_default().insert(sub);
    }
}

fn index_remove<K: Ord + Copy>(index: &mut BTreeMap<K, BTreeSet<SubKey>>, keys: &BTreeSet<K>, sub: SubKey) {
    for k in keys {
        if let Some(set) = index.get_mut(k) {
            set.remove(&sub);
            if set.is_empty() {
                index.remove(k);
            }
        }
    }
}

impl Subs {
    /// Number of subscriptions connection `conn` holds.
    pub(crate) fn count(&self, conn: u64) -> usize {
        self.subs.range((conn, RequestId(0))..=(conn, RequestId(u64::MAX))).count()
    }

    /// Whether `conn` already has subscription `id`.
    pub(crate) fn has(&self, conn: u64, id: RequestId) -> bool {
        self.subs.contains_key(&(conn, id))
    }

    /// Registers a subscription whose live events start at arrival `live_from`.
    pub(crate) fn add(&mut self, outbox: &Outbox, id: RequestId, filter: &Filter, live_from: u64) {
        let key = (outbox.conn(), id);
        let sub = Sub {
            outbox: outbox.clone(),
            id,
            authors: filter.authors.iter().copied().collect(),
            threads: filter.threads.iter().copied().collect(),
            mentions: filter.mentions.iter().copied().collect(),
            live_from,
        };
        index_add(&mut self.by_author, &sub.authors, key);
        index_add(&mut self.by_thread, &sub.threads, key);
        index_add(&mut self.by_mention, &sub.mentions, key);
        self.subs.insert(key, sub);
    }

    /// Removes a subscription; false when unknown.
    pub(crate) fn remove(&mut self, conn: u64, id: RequestId) -> bool {
        let key = (conn, id);
        let Some(sub) = self.subs.remove(&key) else { return false };
        index_remove(&mut self.by_author, &sub.authors, key);
        index_remove(&mut self.by_thread, &sub.threads, key);
        index_remove(&mut self.by_mention, &sub.mentions, key);
        true
    }

    /// Removes every subscription of `conn`.
    pub(crate) fn remove_conn(&mut self, conn: u64) {
        let ids: Vec<RequestId> =
            self.subs.range((conn, RequestId(0))..=(conn, RequestId(u64::MAX))).map(|((_, id), _)| *id).collect();
        for id in ids {
            self.remove(conn, id);
        }
    }

    /// Sends a committed entry to every matching subscription, once each.
    ///
    /// `per_list` is the fault event-per-list: one push per matching list ([FEED-17]).
    pub(crate) fn dispatch(&self, arrival: u64, entry: &Entry, canonical: &str, per_list: bool) {
        let mut hits: Vec<SubKey> = Vec::new();
        if let Some(set) = self.by_author.get(&entry.author) {
            hits.extend(set.iter().copied());
        }
        for r in &entry.refs {
            if let Some(set) = self.by_thread.get(r) {
                hits.extend(set.iter().copied());
            }
        }
        for m in &entry.mentions {
            if let Some(set) = self.by_mention.get(m) {
                hits.extend(set.iter().copied());
            }
        }
        if !per_list {
            // One event per subscription, however many of its lists match.
            hits.sort_unstable();
            hits.dedup();
        }
        for key in hits {
            if let Some(sub) = self.subs.get(&key) {
                if arrival >= sub.live_from {
                    sub.outbox.push(event_text(sub.id, canonical));
                }
            }
        }
    }
}

/// `{"type":"event","sub":N,"entry":<canonical>}` built without re-encoding the entry.
pub(crate) fn event_text(sub: RequestId, canonical: &str) -> String {
    let mut s = String::with_capacity(canonical.len() + 48);
    s.push_str("{\"type\":\"event\",\"sub\":");
    s.push_str(&sub.0.to_string());
    s.push_str(",\"entry\":");
    s.push_str(canonical);
    s.push('}');
    s
}

/// Sessions and subscriptions of the whole node.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    sessions: Mutex<BTreeMap<PublicKey, BTreeMap<u64, Outbox>>>,
    subs: Mutex<Subs>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these maps inconsistent in a way that
    // matters more than stopping the node would.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Hub {
    /// Registers an authenticated session of `user`.
    pub(crate) fn add_session(&self, user: PublicKey, outbox: &Outbox) {
        lock(&self.sessions).entry(user).or_default().insert(outbox.conn(), outbox.clone());
    }

    /// Forgets a connection everywhere.
    pub(crate) fn remove_conn(&self, user: Option<PublicKey>, conn: u64) {
        if let Some(user) = user {
            let mut s = lock(&self.sessions);
            if let Some(m) = s.get_mut(&user) {
                m.remove(&conn);
                if m.is_empty() {
                    s.remove(&user);
                }
            }
        }
        lock(&self.subs).remove_conn(conn);
    }

    /// Closes every session of `user` but `except` with a `closing` push and close code 1000
    /// ([ACCT-34], [ACCT-44], [FRAME-28]).
    pub(crate) fn revoke(&self, user: &PublicKey, code: ErrorCode, message: &str, except: Option<u64>) {
        let outboxes: Vec<Outbox> =
            lock(&self.sessions).remove(user).map(|m| m.into_values().collect()).unwrap_or_default();
        for ob in outboxes {
            if Some(ob.conn()) != except {
                ob.closing(code, message, 1000);
            }
        }
    }

    /// The subscription registry, locked.
    pub(crate) fn subs(&self) -> MutexGuard<'_, Subs> {
        lock(&self.subs)
    }
}
