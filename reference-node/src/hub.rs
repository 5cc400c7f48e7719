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

/// A live subscription. Its keys are kept once, sorted and without repeats, in one exact-size
/// allocation per list; the indexes below hold one `(key, subscription)` pair per key.
#[derive(Debug)]
struct Sub {
    outbox: Outbox,
    id: RequestId,
    authors: Box<[PublicKey]>,
    threads: Box<[EntryId]>,
    mentions: Box<[PublicKey]>,
    /// The filter items it counts toward its connection's and the node's totals: the lengths
    /// of its three lists as sent, repeats included ([FEED-34], [FEED-36]).
    items: usize,
    /// Live events start at this arrival number; earlier ones were in the backfill snapshot.
    live_from: u64,
}

type SubKey = (u64, RequestId);

/// An index from a key to the subscriptions naming it: one ordered set of pairs, so that a key
/// costs one pair (48 bytes and its share of a B-tree node) instead of a map entry with a set
/// of its own (measured: 353 bytes per item before, see the test `registry_bytes_per_item`).
type Index<K> = BTreeSet<(K, SubKey)>;

/// Why a subscription does not fit the bounds on filter items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemsRefused {
    /// The connection's subscriptions would hold more than `max_filter_items` ([FEED-34]).
    Connection,
    /// All connections' subscriptions would hold more than `max_total_filter_items`
    /// ([FEED-35]).
    Node,
}

/// The subscription registry, indexed by author, thread and mention so that fanning an entry
/// out costs what it matches, not the number of subscriptions.
///
/// Its lock is held both while a subscription takes its backfill snapshot and while a committed
/// batch is fanned out, which is what makes the hand-over from backfill to live exact
/// ([FEED-15], [FEED-16], [FEED-17]).
#[derive(Debug, Default)]
pub(crate) struct Subs {
    subs: BTreeMap<SubKey, Sub>,
    by_author: Index<PublicKey>,
    by_thread: Index<EntryId>,
    by_mention: Index<PublicKey>,
    /// Filter items per connection, over its live subscriptions ([FEED-34]).
    conn_items: BTreeMap<u64, usize>,
    /// Filter items over every connection ([FEED-35]).
    total_items: usize,
}

fn sorted<K: Ord + Copy>(keys: &[K]) -> Box<[K]> {
    let mut v = keys.to_vec();
    v.sort_unstable();
    v.dedup();
    v.into_boxed_slice()
}

fn index_add<K: Ord + Copy>(index: &mut Index<K>, keys: &[K], sub: SubKey) {
    for k in keys {
        index.insert((*k, sub));
    }
}

fn index_remove<K: Ord + Copy>(index: &mut Index<K>, keys: &[K], sub: SubKey) {
    for k in keys {
        index.remove(&(*k, sub));
    }
}

/// The subscriptions naming `key` in `index`.
fn index_hits<K: Ord + Copy>(index: &Index<K>, key: K, hits: &mut Vec<SubKey>) {
    let lo = (key, (0, RequestId::small(0)));
    let hi = (key, (u64::MAX, RequestId::MAX));
    hits.extend(index.range(lo..=hi).map(|(_, sub)| *sub));
}

impl Subs {
    /// Number of subscriptions connection `conn` holds.
    pub(crate) fn count(&self, conn: u64) -> usize {
        self.subs.range((conn, RequestId::small(0))..=(conn, RequestId::MAX)).count()
    }

    /// Whether `conn` already has subscription `id`.
    pub(crate) fn has(&self, conn: u64, id: RequestId) -> bool {
        self.subs.contains_key(&(conn, id))
    }

    /// The filter items connection `conn` holds.
    pub(crate) fn conn_items(&self, conn: u64) -> usize {
        self.conn_items.get(&conn).copied().unwrap_or(0)
    }

    /// Whether `items` more filter items fit connection `conn` (at most `per_conn` there) and
    /// the node (at most `total` everywhere): exactly at a bound fits ([FEED-34], [FEED-35]).
    pub(crate) fn fits(&self, conn: u64, items: usize, per_conn: usize, total: usize) -> Result<(), ItemsRefused> {
        if self.conn_items(conn).saturating_add(items) > per_conn {
            return Err(ItemsRefused::Connection);
        }
        if self.total_items.saturating_add(items) > total {
            return Err(ItemsRefused::Node);
        }
        Ok(())
    }

    /// Registers a subscription whose live events start at arrival `live_from`, and counts its
    /// filter items.
    pub(crate) fn add(&mut self, outbox: &Outbox, id: RequestId, filter: &Filter, live_from: u64) {
        let key = (outbox.conn(), id);
        let items = filter.len();
        let sub = Sub {
            outbox: outbox.clone(),
            id,
            authors: sorted(&filter.authors),
            threads: sorted(&filter.threads),
            mentions: sorted(&filter.mentions),
            items,
            live_from,
        };
        index_add(&mut self.by_author, &sub.authors, key);
        index_add(&mut self.by_thread, &sub.threads, key);
        index_add(&mut self.by_mention, &sub.mentions, key);
        *self.conn_items.entry(key.0).or_insert(0) += items;
        self.total_items += items;
        if let Some(old) = self.subs.insert(key, sub) {
            // Not reached (the caller refuses a repeated id, [FEED-10]) unless a fault lets one
            // through: the replaced subscription's items are no longer held.
            self.release(key.0, old.items);
        }
    }

    fn release(&mut self, conn: u64, items: usize) {
        if let Some(n) = self.conn_items.get_mut(&conn) {
            *n = n.saturating_sub(items);
        }
        self.total_items = self.total_items.saturating_sub(items);
    }

    /// Removes a subscription and releases its filter items, or, with `keep_items` (the fault
    /// filter-items-not-released, [FEED-36]), leaves them counted on the connection until it
    /// ends; false when unknown.
    pub(crate) fn remove(&mut self, conn: u64, id: RequestId, keep_items: bool) -> bool {
        let key = (conn, id);
        let Some(sub) = self.subs.remove(&key) else { return false };
        index_remove(&mut self.by_author, &sub.authors, key);
        index_remove(&mut self.by_thread, &sub.threads, key);
        index_remove(&mut self.by_mention, &sub.mentions, key);
        if !keep_items {
            self.release(conn, sub.items);
        }
        true
    }

    /// Removes every subscription of `conn` and releases all the items it held ([FEED-36]).
    pub(crate) fn remove_conn(&mut self, conn: u64) {
        let ids: Vec<RequestId> =
            self.subs.range((conn, RequestId::small(0))..=(conn, RequestId::MAX)).map(|((_, id), _)| *id).collect();
        for id in ids {
            self.remove(conn, id, false);
        }
        let left = self.conn_items.remove(&conn).unwrap_or(0);
        self.total_items = self.total_items.saturating_sub(left);
    }

    /// Sends a committed entry to every matching subscription, once each.
    ///
    /// `per_list` is the fault event-per-list: one push per matching list ([FEED-17]).
    pub(crate) fn dispatch(&self, arrival: u64, entry: &Entry, canonical: &str, per_list: bool) {
        let mut hits: Vec<SubKey> = Vec::new();
        index_hits(&self.by_author, entry.author, &mut hits);
        for r in &entry.refs {
            index_hits(&self.by_thread, *r, &mut hits);
        }
        for m in &entry.mentions {
            index_hits(&self.by_mention, *m, &mut hits);
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
    s.push_str(&sub.get().to_string());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The process's resident set size in bytes, from `/proc/self/status`.
    fn rss() -> Option<usize> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// A thread id unique to `(sub, i)`, so that no two filters share an index key (the worst
    /// case: every item is a fresh key).
    fn thread_id(sub: u64, i: u64) -> EntryId {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&sub.to_le_bytes());
        b[8..16].copy_from_slice(&i.to_le_bytes());
        b[31] = 1;
        EntryId::from_bytes(b)
    }

    fn outbox(conn: u64) -> Outbox {
        let bound = QueueBound { max_bytes: 1 << 20, max_total_bytes: 1 << 30, unbounded: false, discard: false };
        Outbox::new(conn, Arc::new(AtomicUsize::new(0)), bound).0
    }

    fn filter(sub: u64, items: u64) -> Filter {
        Filter { threads: (0..items).map(|i| thread_id(sub, i)).collect(), ..Filter::default() }
    }

    /// [FEED-34], [FEED-35], [FEED-36]: both counts take a subscription's items as sent
    /// (repeats too), fit exactly at each bound, and are released by `remove` and `remove_conn`.
    #[test]
    fn filter_items_are_counted_and_released() {
        let (a, b) = (outbox(1), outbox(2));
        let mut subs = Subs::default();
        let mut twice = filter(0, 3);
        twice.threads.push(thread_id(0, 0));
        subs.add(&a, RequestId::small(1), &twice, 0);
        assert_eq!(subs.conn_items(1), 4);
        subs.add(&a, RequestId::small(2), &filter(1, 6), 0);
        assert_eq!(subs.fits(1, 0, 10, 100), Ok(()));
        assert_eq!(subs.fits(1, 1, 10, 100), Err(ItemsRefused::Connection));
        subs.add(&b, RequestId::small(1), &filter(2, 10), 0);
        assert_eq!(subs.fits(2, 0, 10, 20), Ok(()));
        assert_eq!(subs.fits(3, 1, 10, 20), Err(ItemsRefused::Node));
        assert!(subs.remove(1, RequestId::small(2), false));
        assert_eq!((subs.conn_items(1), subs.total_items), (4, 14));
        // The fault filter-items-not-released: removed, still counted until the connection ends.
        assert!(subs.remove(1, RequestId::small(1), true));
        assert_eq!((subs.conn_items(1), subs.total_items), (4, 14));
        subs.remove_conn(1);
        assert_eq!((subs.conn_items(1), subs.total_items), (0, 10));
        subs.remove_conn(2);
        assert_eq!(subs.total_items, 0);
        assert!(subs.by_thread.is_empty() && subs.subs.is_empty() && subs.conn_items.is_empty());
    }

    /// The memory one filter item costs in the registry: the RSS growth of registering
    /// 256 subscriptions of 970 distinct thread ids (about the most one kith/1 frame holds),
    /// divided by the items. The filters themselves are built before the first reading, so
    /// only the registry's own allocations are counted. Run with
    /// `cargo test -p kith-node --lib -- --ignored --nocapture registry_bytes_per_item`.
    #[test]
    #[ignore = "a measurement, not a check; prints bytes per item"]
    fn registry_bytes_per_item() {
        const SUBS: u64 = 256;
        const ITEMS: u64 = 970;
        let bound = QueueBound { max_bytes: 1 << 20, max_total_bytes: 1 << 30, unbounded: false, discard: false };
        let (outbox, _rx, _stop) = Outbox::new(1, Arc::new(AtomicUsize::new(0)), bound);
        let filters: Vec<Filter> = (0..SUBS)
            .map(|s| Filter { threads: (0..ITEMS).map(|i| thread_id(s, i)).collect(), ..Filter::default() })
            .collect();
        let mut subs = Subs::default();
        let before = rss().unwrap_or(0);
        for (s, f) in filters.iter().enumerate() {
            subs.add(&outbox, RequestId::new(s as u64).expect("a test index"), f, 0);
        }
        let after = rss().unwrap_or(0);
        let items = (SUBS * ITEMS) as usize;
        println!(
            "registry: {items} items, RSS +{} bytes, {} bytes per item",
            after.saturating_sub(before),
            after.saturating_sub(before) / items
        );
        drop(filters);
        assert_eq!(subs.subs.len(), SUBS as usize);
    }
}
