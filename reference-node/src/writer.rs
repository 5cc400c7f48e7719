//! The single writer: every mutation goes through one thread that drains its queue into one
//! redb write transaction (group commit), commits it (fsync), and only then answers, fans live
//! events out and closes revoked sessions.
//!
//! Signature checks never run here: connection tasks verify entries before queueing them, so
//! the CPU-heavy part of a publish is spread over every core ([ENTRY-18]).

use std::sync::Arc;

use kith_proto::account::{charge_invite, check_publish_allowance, Account, CreateUser, KeyReplacement};
use kith_proto::entry::{check_chain, resolve_below_head, ChainPosition, EntryError, FeedHead};
use kith_proto::feed::PublishOk;
use kith_proto::identity::{IdentityNote, NoteUsage};
use kith_proto::{Entry, ErrorCode, PublicKey, RequestId, ServerFrame, VerifiedEntry};
use redb::ReadableTable;
use tokio::sync::{mpsc, oneshot};

use crate::error::ReqError;
use crate::fault::{Fault, Faults};
use crate::hub::{Hub, Outbox};
use crate::store::{key2, Store, WriteTables, NEXT_ARRIVAL, TOTAL_BYTES};

/// Most commands applied in one write transaction.
const MAX_BATCH: usize = 1024;

/// A mutation other than publish.
#[derive(Debug)]
pub(crate) enum Op {
    CreateUser(CreateUser),
    /// Already verified by the connection.
    ReplaceKey(KeyReplacement),
    RemoveUser(PublicKey),
    /// Already verified by the connection.
    /// The note, with the node's `max_notes` and `max_note_bytes` ([IDENT-25]).
    AddIdentity(IdentityNote, u64, u64),
    /// The key, with the node's `max_follows` ([IDENT-26]).
    Follow(PublicKey, u64),
    Unfollow(PublicKey),
}

/// What a successful [`Op`] returns.
#[derive(Debug)]
pub(crate) enum OpOk {
    Account(Account),
    Unit,
}

/// A command for the writer.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// Store a verified entry for the session of `user`; the writer queues the answer on
    /// `outbox` after the commit and then completes `done`.
    Publish { outbox: Outbox, id: RequestId, user: PublicKey, entry: Box<VerifiedEntry>, done: oneshot::Sender<()> },
    /// Apply `op` for the session of `user` on connection `conn`.
    Op { conn: u64, user: PublicKey, op: Box<Op>, reply: oneshot::Sender<Result<OpOk, ReqError>> },
    /// Finish everything queued before this, then stop.
    Shutdown,
}

enum Pending {
    Publish { outbox: Outbox, id: RequestId, done: oneshot::Sender<()>, result: Result<PublishOk, ReqError> },
    Op { reply: oneshot::Sender<Result<OpOk, ReqError>>, result: Result<OpOk, ReqError> },
}

/// What to do after a commit besides answering.
enum After {
    Live(LiveEntry),
    Revoke { user: PublicKey, code: ErrorCode, except: Option<u64> },
}

pub(crate) struct Writer {
    store: Arc<Store>,
    hub: Arc<Hub>,
    budget: u64,
    faults: Faults,
    node: PublicKey,
    fanout: std::sync::mpsc::SyncSender<Vec<LiveEntry>>,
}

/// A committed entry on its way to the subscriptions.
pub(crate) struct LiveEntry {
    arrival: u64,
    entry: Box<Entry>,
    canonical: String,
}

/// Batches of committed entries the fan-out thread may lag behind the writer.
pub(crate) const FANOUT_QUEUE: usize = 64;

/// The fan-out thread: sends each committed batch, in commit order, to the matching
/// subscriptions. It holds the subscription registry's lock per batch, which with the
/// subscriptions' `live_from` arrival numbers makes the hand-over from backfill to live exact
/// ([FEED-16], [FEED-17]). Ends when the writer does.
///
/// `per_list` (the fault event-per-list) pushes once per matching filter list.
pub(crate) fn run_fanout(hub: Arc<Hub>, rx: std::sync::mpsc::Receiver<Vec<LiveEntry>>, per_list: bool) {
    while let Ok(batch) = rx.recv() {
        let subs = hub.subs();
        for e in &batch {
            subs.dispatch(e.arrival, &e.entry, &e.canonical, per_list);
        }
    }
}

enum PubOutcome {
    Duplicate,
    New,
    /// A fault made the node answer ok without storing.
    Faked,
}

impl Writer {
    pub(crate) fn new(
        store: Arc<Store>,
        hub: Arc<Hub>,
        budget: u64,
        faults: Faults,
        node: PublicKey,
        fanout: std::sync::mpsc::SyncSender<Vec<LiveEntry>>,
    ) -> Self {
        Writer { store, hub, budget, faults, node, fanout }
    }

    /// Runs until a [`Cmd::Shutdown`] or until every sender is gone.
    pub(crate) fn run(self, mut rx: mpsc::Receiver<Cmd>) {
        let mut stop = false;
        while !stop {
            let Some(first) = rx.blocking_recv() else { break };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            if batch.iter().any(|c| matches!(c, Cmd::Shutdown)) {
                stop = true;
            }
            self.apply_batch(batch);
        }
        tracing::debug!("writer stopped");
    }

    fn apply_batch(&self, batch: Vec<Cmd>) {
        let mut pending = Vec::with_capacity(batch.len());
        let mut after = Vec::new();
        let tx = match self.store.db.begin_write() {
            Ok(tx) => tx,
            Err(e) => {
                tracing::error!("cannot begin write: {e}");
                return fail_all(batch, &ReqError::internal(e));
            }
        };
        let mut t = match WriteTables::open(&tx) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("cannot open tables: {e}");
                return fail_all(batch, &ReqError::internal(e));
            }
        };
        for cmd in batch {
            match cmd {
                Cmd::Publish { outbox, id, user, entry, done } => {
                    let entry_id = entry.id;
                    let result = self.publish(&mut t, &user, entry, &mut after).map(|o| PublishOk {
                        id,
                        entry_id,
                        duplicate: matches!(o, PubOutcome::Duplicate),
                    });
                    pending.push(Pending::Publish { outbox, id, done, result });
                }
                Cmd::Op { conn, user, op, reply } => {
                    let result = self.op(&mut t, conn, &user, *op, &mut after);
                    pending.push(Pending::Op { reply, result });
                }
                Cmd::Shutdown => {}
            }
        }
        if let Err(e) = t.flush_accounts() {
            tracing::error!("cannot write accounts: {e}");
            drop(t);
            drop(tx);
            return fail_pending(pending, &e);
        }
        drop(t);
        // Durable before anything is acknowledged ([FEED-5], [FEED-6]): redb's default durability fsyncs
        // on commit.
        let commit = tx.commit();
        if let Err(e) = commit {
            tracing::error!("commit failed: {e}");
            return fail_pending(pending, &ReqError::internal(e));
        }
        for p in pending {
            match p {
                Pending::Publish { outbox, id, done, result } => {
                    let frame = match result {
                        Ok(ok) => ServerFrame::PublishOk(ok),
                        Err(e) => ServerFrame::error(Some(id), e.code, e.message),
                    };
                    outbox.push(frame.to_text());
                    let _ = done.send(());
                }
                Pending::Op { reply, result } => {
                    let _ = reply.send(result);
                }
            }
        }
        let mut live = Vec::new();
        let mut revoke = Vec::new();
        for a in after {
            match a {
                After::Live(e) => live.push(e),
                After::Revoke { user, code, except } => revoke.push((user, code, except)),
            }
        }
        // The fan-out runs on its own thread, in commit order, so that the writer goes on
        // committing meanwhile; a full hand-over queue holds the writer back.
        if !live.is_empty() && !self.faults.has(Fault::DropLiveEvents) {
            let _ = self.fanout.send(live);
        }
        for (user, code, except) in revoke {
            {
                let message = match code {
                    ErrorCode::KeyReplaced => "the session's key was replaced",
                    _ => "the session's account was removed",
                };
                self.hub.revoke(&user, code, message, except);
            }
        }
    }

    /// Applies one publish inside the batch ([ENTRY-23]..[ENTRY-32], [ACCT-46]..[ACCT-50], [PRUNE-3], [PRUNE-4]).
    fn publish(
        &self,
        t: &mut WriteTables<'_>,
        user: &PublicKey,
        v: Box<VerifiedEntry>,
        after: &mut Vec<After>,
    ) -> Result<PubOutcome, ReqError> {
        let e = &v.entry;
        let head = t.head(e.author.as_bytes())?;
        let position = match check_chain(head.as_ref(), &v) {
            Ok(p) => p,
            Err(EntryError::BrokenLink) if self.faults.has(Fault::SkipChainLink) => ChainPosition::Next,
            Err(err) => {
                if self.faults.has(Fault::ChargeRejected) {
                    // The fault: the refused entry is charged all the same ([ENTRY-33]).
                    self.charge_anyway(t, user, v.canonical.len() as u64)?;
                }
                return Err(ReqError::from_coded(&err));
            }
        };
        if let Some(h) = head.as_ref().filter(|h| {
            position == ChainPosition::Next
                && e.timestamp == h.timestamp
                && self.faults.has(Fault::RejectEqualTimestamp)
        }) {
            let err = EntryError::TimestampBackwards { timestamp: e.timestamp, prev: h.timestamp };
            return Err(ReqError::from_coded(&err));
        }
        let duplicate = match position {
            ChainPosition::Anchor | ChainPosition::Next => false,
            ChainPosition::DuplicateHead => true,
            ChainPosition::BelowHead => match t.id_at(&e.author, e.seq)? {
                Some(stored) => match resolve_below_head(&stored, &v) {
                    Ok(()) => true,
                    Err(_) if self.faults.has(Fault::AcceptFork) => return Ok(PubOutcome::Faked),
                    Err(err) => {
                        if self.faults.has(Fault::ChargeRejected) {
                            self.charge_anyway(t, user, v.canonical.len() as u64)?;
                        }
                        return Err(ReqError::from_coded(&err));
                    }
                },
                // The node anchored this feed above `seq`: it never held that slot and cannot
                // link an entry into it.
                None => {
                    return Err(ReqError::new(
                        ErrorCode::BadSequence,
                        format!("seq {} is below the feed's anchor", e.seq),
                    ))
                }
            },
        };
        if duplicate {
            // Nothing stored, changed or charged ([ENTRY-28], [ENTRY-33], [ACCT-50]).
            if self.faults.has(Fault::DuplicateCharged) {
                return Ok(PubOutcome::Faked);
            }
            if self.faults.has(Fault::ChargeDuplicates) {
                // The fault: the duplicate is charged and counted ([ACCT-50]).
                self.charge_anyway(t, user, v.canonical.len() as u64)?;
            }
            return Ok(PubOutcome::Duplicate);
        }
        let mut account = t
            .account(user)?
            .ok_or_else(|| ReqError::new(ErrorCode::Forbidden, "the session's account no longer exists"))?;
        let size = v.canonical.len() as u64;
        charge_publish(&mut account, size, self.faults)?;
        t.put_account(&account)?;

        let arrival = t.meta(NEXT_ARRIVAL)?.max(1);
        t.set_meta(NEXT_ARRIVAL, arrival + 1)?;
        t.insert_entry(e, &v.id, &v.canonical, arrival)?;
        // An anchor stands for a feed whose earlier entries this node never held: they count as
        // pruned ([ENTRY-23]).
        let anchored = if self.faults.has(Fault::AnchorPrunedThroughZero) { 0 } else { e.seq - 1 };
        let pruned_through = head.map_or(anchored, |h| h.pruned_through);
        t.set_head(e.author.as_bytes(), &FeedHead { seq: e.seq, id: v.id, timestamp: e.timestamp, pruned_through })?;
        // The fault count-plus-one counts a byte more per entry ([PRUNE-1]).
        let total = t.meta(TOTAL_BYTES)? + size + u64::from(self.faults.has(Fault::CountPlusOne));
        self.prune(t, total)?;

        // The entry moves on to the fan-out: no copy of it or of its canonical bytes (JCS
        // output is UTF-8).
        let VerifiedEntry { entry, canonical, .. } = *v;
        let canonical =
            String::from_utf8(canonical).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        after.push(After::Live(LiveEntry { arrival, entry: Box::new(entry), canonical }));
        Ok(PubOutcome::New)
    }

    /// Charges `size` bytes to `user` as if an entry had been stored (faults charge-duplicates
    /// and charge-rejected only).
    fn charge_anyway(&self, t: &mut WriteTables<'_>, user: &PublicKey, size: u64) -> Result<(), ReqError> {
        if let Some(mut account) = t.account(user)? {
            if charge_publish(&mut account, size, self.faults).is_ok() {
                t.put_account(&account)?;
            }
        }
        Ok(())
    }

    /// Removes the entries earliest in arrival order while `total` exceeds the budget, and
    /// stores the new total ([PRUNE-4]..[PRUNE-8]).
    fn prune(&self, t: &mut WriteTables<'_>, mut total: u64) -> Result<(), ReqError> {
        if !self.faults.has(Fault::IgnoreBudget) {
            // The fault prune-at-budget prunes at the budget too ([PRUNE-5]).
            let at_budget = self.faults.has(Fault::PruneAtBudget);
            while total > self.budget || (at_budget && total == self.budget && total > 0) {
                let Some(pruned) = t.prune_one(self.faults.has(Fault::PruneNewestFirst))? else {
                    break;
                };
                total = total.saturating_sub(pruned.size + u64::from(self.faults.has(Fault::CountPlusOne)));
                if self.faults.has(Fault::PruneRefunds) {
                    // The fault: pruning lowers the author's counter ([ACCT-51]).
                    if let Ok(author) = PublicKey::from_bytes_checked(pruned.author) {
                        if let Some(mut a) = t.account(&author)? {
                            a.published_entries = a.published_entries.saturating_sub(1);
                            t.put_account(&a)?;
                        }
                    }
                }
                if let Some(mut h) = t.head(&pruned.author)? {
                    if self.faults.has(Fault::LoseFeedHead) && pruned.seq >= h.seq {
                        t.feeds.remove(pruned.author.as_slice()).map_err(ReqError::internal)?;
                    } else {
                        h.pruned_through = pruned.seq;
                        if self.faults.has(Fault::PrunedThroughOffByOne) && pruned.seq >= h.seq {
                            h.pruned_through = pruned.seq - 1;
                        }
                        t.set_head(&pruned.author, &h)?;
                    }
                }
            }
        }
        t.set_meta(TOTAL_BYTES, total)
    }

    /// Prunes down to the budget before the node accepts connections, in case the budget was
    /// lowered since the last run ([PRUNE-10]).
    pub(crate) fn prune_at_start(&self) -> Result<(), ReqError> {
        if self.faults.has(Fault::SkipPruneAtStart) {
            return Ok(());
        }
        let tx = self.store.db.begin_write().map_err(ReqError::internal)?;
        {
            let mut t = WriteTables::open(&tx).map_err(ReqError::internal)?;
            let total = t.meta(TOTAL_BYTES)?;
            self.prune(&mut t, total)?;
        }
        tx.commit().map_err(ReqError::internal)
    }

    fn op(
        &self,
        t: &mut WriteTables<'_>,
        conn: u64,
        user: &PublicKey,
        op: Op,
        after: &mut Vec<After>,
    ) -> Result<OpOk, ReqError> {
        let Some(me) = t.account(user)? else {
            // A replacement committed earlier in this batch moved the account away: the
            // requester's `old` is no longer its current key ([ACCT-26]), not a matter of rights.
            if matches!(op, Op::ReplaceKey(_)) {
                return Err(ReqError::new(ErrorCode::InvalidRequest, "old is no longer the account's current key"));
            }
            return Err(ReqError::new(ErrorCode::Forbidden, "the session's account no longer exists"));
        };
        match op {
            Op::CreateUser(req) => self.create_user(t, me, req).map(OpOk::Account),
            Op::ReplaceKey(r) => {
                // [ACCT-30]: the node key, any current account, `old` itself.
                if !self.faults.has(Fault::ReplaceIgnoresKeyTaken)
                    && (r.new == self.node || r.new == r.old || t.account(&r.new)?.is_some())
                {
                    return Err(ReqError::new(ErrorCode::KeyTaken, "the new key already has an account"));
                }
                let old = me.key;
                let mut moved = me;
                moved.key = r.new;
                t.put_account(&moved)?;
                t.names.insert(moved.name.as_str(), moved.key.as_bytes().as_slice()).map_err(ReqError::internal)?;
                t.delete_account(&old);
                if !self.faults.has(Fault::OldKeySurvives) {
                    after.push(After::Revoke { user: old, code: ErrorCode::KeyReplaced, except: Some(conn) });
                }
                if !self.faults.has(Fault::ChildrenKeepOldParent) {
                    reparent(t, &old, Some(r.new))?;
                }
                // The follows list belongs to the account, not the key.
                for k in follows_of(t, &old)? {
                    t.follows.remove(key2(old.as_bytes(), k.as_bytes()).as_slice()).map_err(ReqError::internal)?;
                    if self.faults.has(Fault::ReplaceDropsFollows) {
                        continue;
                    }
                    t.follows
                        .insert(key2(r.new.as_bytes(), k.as_bytes()).as_slice(), ())
                        .map_err(ReqError::internal)?;
                }
                // A replacement deletes the notes whose `author` is the replaced key ([IDENT-32]):
                // kept, they would let each replacement leave max_notes more behind, outside any
                // quota, and no longer listed (IDENT-15 lists current accounts' notes only).
                if !self.faults.has(Fault::ReplacedNotesKept) {
                    delete_notes_of(t, &old)?;
                }
                Ok(OpOk::Account(moved))
            }
            Op::RemoveUser(target) => {
                let victim = match t.account(&target)? {
                    Some(v) => v,
                    None if self.faults.has(Fault::RemoveUnknownOk) => return Ok(OpOk::Unit),
                    None => return Err(ReqError::new(ErrorCode::NotFound, "no such account")),
                };
                if !self.faults.has(Fault::NonAncestorRemoves) && !is_strict_ancestor(t, &me.key, &victim)? {
                    return Err(ReqError::new(ErrorCode::Forbidden, "only a strict ancestor may remove a user"));
                }
                if self.faults.has(Fault::RemovalRefundsChildren) {
                    // The fault: R's remaining invite allowance goes to each child ([ACCT-41]).
                    refund_children(t, &victim)?;
                }
                if self.faults.has(Fault::RemovalRefundsParent) {
                    // The fault: R's remaining allowances go back to its parent ([ACCT-42]).
                    if let Some(mut q) = victim.parent.map(|p| t.account(&p)).transpose()?.flatten() {
                        q.invite_allowance = q.invite_allowance.map(|n| n + victim.invite_allowance.unwrap_or(0));
                        q.publish_allowance = q.publish_allowance.map(|n| n + victim.publish_allowance.unwrap_or(0));
                        t.put_account(&q)?;
                    }
                }
                if !self.faults.has(Fault::OrphansKeepParent) {
                    reparent(t, &victim.key, victim.parent)?;
                }
                t.delete_account(&victim.key);
                if self.faults.has(Fault::DeleteRemovedEntries) {
                    // The fault: the removed author's entries go with the account ([ACCT-45]).
                    delete_entries_of(t, &victim.key)?;
                }
                t.names.remove(victim.name.as_str()).map_err(ReqError::internal)?;
                for k in follows_of(t, &victim.key)? {
                    t.follows
                        .remove(key2(victim.key.as_bytes(), k.as_bytes()).as_slice())
                        .map_err(ReqError::internal)?;
                }
                // The victim's notes go in this same transaction ([IDENT-31]), so that a later
                // account with the same key neither sees them again nor is charged for them.
                if !self.faults.has(Fault::RemovedNotesKept) {
                    delete_notes_of(t, &victim.key)?;
                }
                after.push(After::Revoke { user: victim.key, code: ErrorCode::AccountRemoved, except: None });
                Ok(OpOk::Unit)
            }
            Op::AddIdentity(note, max_notes, max_note_bytes) => {
                let key = key2(note.subject.as_bytes(), note.author.as_bytes());
                let by_author = key2(note.author.as_bytes(), note.subject.as_bytes());
                let (newer, replaced) = match t.identities.get(key.as_slice()).map_err(ReqError::internal)? {
                    Some(v) => {
                        let old: IdentityNote = serde_json::from_str(v.value()).map_err(ReqError::internal)?;
                        let newer = if self.faults.has(Fault::NewerNoteDropped) {
                            false
                        } else {
                            note.updated > old.updated || self.faults.has(Fault::OlderNoteReplaces)
                        };
                        (newer, Some(old.size()))
                    }
                    None => (!self.faults.has(Fault::FirstNoteDropped), None),
                };
                if !newer && self.faults.has(Fault::DiscardedNoteError) {
                    return Err(ReqError::new(ErrorCode::InvalidRequest, "a note at least as new is held"));
                }
                if newer {
                    let size = note.size();
                    if !self.faults.has(Fault::NotesUnbounded) {
                        let usage = notes_of(t, &note.author)?.into_iter().fold(NoteUsage::default(), |u, (_, s)| {
                            NoteUsage { count: u.count + 1, bytes: u.bytes.saturating_add(s) }
                        });
                        usage.admit(replaced, size, max_notes, max_note_bytes).map_err(|e| ReqError::from_coded(&e))?;
                    }
                    let json = serde_json::to_string(&note).map_err(ReqError::internal)?;
                    t.identities.insert(key.as_slice(), json.as_str()).map_err(ReqError::internal)?;
                    t.notes_by_author.insert(by_author.as_slice(), size).map_err(ReqError::internal)?;
                }
                Ok(OpOk::Unit)
            }
            Op::Follow(k, max_follows) => {
                let row = key2(me.key.as_bytes(), k.as_bytes());
                // Following a key already in the set is not growth ([IDENT-20]).
                if !self.faults.has(Fault::FollowsUnbounded)
                    && t.follows.get(row.as_slice()).map_err(ReqError::internal)?.is_none()
                    && follow_count_reaches(t, &me.key, max_follows)?
                {
                    return Err(ReqError::new(ErrorCode::QuotaExceeded, "the follow set holds max_follows keys"));
                }
                let was = t.follows.insert(row.as_slice(), ()).map_err(ReqError::internal)?;
                if was.is_some() && self.faults.has(Fault::FollowTwiceError) {
                    return Err(ReqError::new(ErrorCode::InvalidRequest, "the key is already followed"));
                }
                Ok(OpOk::Unit)
            }
            Op::Unfollow(k) => {
                let was =
                    t.follows.remove(key2(me.key.as_bytes(), k.as_bytes()).as_slice()).map_err(ReqError::internal)?;
                if was.is_none() && self.faults.has(Fault::UnfollowUnknownError) {
                    return Err(ReqError::new(ErrorCode::NotFound, "the key is not followed"));
                }
                Ok(OpOk::Unit)
            }
        }
    }

    /// `create_user` ([ACCT-10]..[ACCT-16]): every check before any write.
    fn create_user(&self, t: &mut WriteTables<'_>, mut inviter: Account, req: CreateUser) -> Result<Account, ReqError> {
        if t.account(&req.key)?.is_some() && !self.faults.has(Fault::IgnoreKeyTaken) {
            return Err(ReqError::new(ErrorCode::KeyTaken, "the key already has an account"));
        }
        if t.names.get(req.name.as_str()).map_err(ReqError::internal)?.is_some()
            && !self.faults.has(Fault::IgnoreNameTaken)
        {
            return Err(ReqError::new(ErrorCode::NameTaken, format!("the name {} is taken", req.name.as_str())));
        }
        inviter.invite_allowance = match charge_invite(inviter.invite_allowance, req.invite_allowance) {
            Ok(left) => left,
            Err(_) if self.faults.has(Fault::IgnoreInviteAllowance) => inviter.invite_allowance.map(|_| 0),
            Err(e) => return Err(ReqError::from_coded(&e)),
        };
        check_publish_allowance(inviter.publish_allowance, req.publish_allowance)
            .map_err(|e| ReqError::from_coded(&e))?;
        if self.faults.has(Fault::InviteChargesPublish) {
            // The fault: M also comes off the inviter's publish allowance ([ACCT-15]).
            inviter.publish_allowance = inviter.publish_allowance.map(|n| n.saturating_sub(req.publish_allowance));
        }
        let child = Account {
            key: req.key,
            name: req.name,
            parent: Some(inviter.key),
            invite_allowance: Some(req.invite_allowance + u64::from(self.faults.has(Fault::ChildExtraInvite))),
            publish_allowance: Some(req.publish_allowance),
            published_entries: 0,
            published_bytes: 0,
        };
        t.put_account(&inviter)?;
        t.put_account(&child)?;
        t.names.insert(child.name.as_str(), child.key.as_bytes().as_slice()).map_err(ReqError::internal)?;
        Ok(child)
    }
}

/// Charges one newly stored entry of `size` bytes to `account` ([ACCT-46]..[ACCT-49]).
fn charge_publish(account: &mut Account, size: u64, faults: Faults) -> Result<(), ReqError> {
    match account.publish_allowance {
        Some(0) if faults.has(Fault::IgnorePublishAllowance) => {}
        Some(0) => {
            return Err(ReqError::new(ErrorCode::PublishAllowanceExhausted, "publish allowance used up"));
        }
        Some(n) => account.publish_allowance = Some(n - 1),
        None => {}
    }
    account.published_entries += 1;
    // The fault published-bytes-off-by-one counts a trailing newline ([ACCT-48]).
    account.published_bytes += size + u64::from(faults.has(Fault::PublishedBytesOffByOne));
    Ok(())
}

/// Adds `victim`'s remaining invite allowance to each of its children (fault
/// removal-refunds-children only).
fn refund_children(t: &mut WriteTables<'_>, victim: &Account) -> Result<(), ReqError> {
    t.flush_accounts()?;
    let mut children = Vec::new();
    for row in t.accounts.iter().map_err(ReqError::internal)? {
        let (_, v) = row.map_err(ReqError::internal)?;
        let a: Account = serde_json::from_str(v.value()).map_err(ReqError::internal)?;
        if a.parent == Some(victim.key) {
            children.push(a);
        }
    }
    for mut c in children {
        c.invite_allowance = c.invite_allowance.map(|n| n + victim.invite_allowance.unwrap_or(0));
        t.put_account(&c)?;
    }
    Ok(())
}

/// Deletes the stored entries of `author`'s feed (fault delete-removed-entries only; the
/// indexes keep their rows, and readers skip ids whose entry is gone).
fn delete_entries_of(t: &mut WriteTables<'_>, author: &PublicKey) -> Result<(), ReqError> {
    let lo = crate::store::key_n(author.as_bytes(), 0);
    let hi = crate::store::key_n(author.as_bytes(), u64::MAX);
    let mut ids = Vec::new();
    for row in t.feed_seq.range(lo.as_slice()..=hi.as_slice()).map_err(ReqError::internal)? {
        let (_, v) = row.map_err(ReqError::internal)?;
        ids.push(v.value().to_vec());
    }
    for id in ids {
        t.entries.remove(id.as_slice()).map_err(ReqError::internal)?;
    }
    Ok(())
}

/// Whether `ancestor` is a strict ancestor of `account` in the invite tree ([ACCT-38]).
fn is_strict_ancestor(t: &mut WriteTables<'_>, ancestor: &PublicKey, account: &Account) -> Result<bool, ReqError> {
    let mut next = account.parent;
    // The tree has no cycles; the bound only guards against a corrupted store.
    for _ in 0..1_000_000 {
        let Some(p) = next else { return Ok(false) };
        if p == *ancestor {
            return Ok(true);
        }
        next = t.account(&p)?.and_then(|a| a.parent);
    }
    Ok(false)
}

/// Points every child of `old` at `new` ([ACCT-32], [ACCT-40]).
fn reparent(t: &mut WriteTables<'_>, old: &PublicKey, new: Option<PublicKey>) -> Result<(), ReqError> {
    t.flush_accounts()?;
    let mut children = Vec::new();
    for row in t.accounts.iter().map_err(ReqError::internal)? {
        let (_, v) = row.map_err(ReqError::internal)?;
        let a: Account = serde_json::from_str(v.value()).map_err(ReqError::internal)?;
        if a.parent == Some(*old) {
            children.push(a);
        }
    }
    for mut c in children {
        c.parent = new;
        t.put_account(&c)?;
    }
    Ok(())
}

/// Deletes every identity note whose author is `author`, from both tables ([IDENT-31], [IDENT-32]).
fn delete_notes_of(t: &mut WriteTables<'_>, author: &PublicKey) -> Result<(), ReqError> {
    for (subject, _) in notes_of(t, author)? {
        t.identities.remove(key2(subject.as_bytes(), author.as_bytes()).as_slice()).map_err(ReqError::internal)?;
        t.notes_by_author.remove(key2(author.as_bytes(), subject.as_bytes()).as_slice()).map_err(ReqError::internal)?;
    }
    Ok(())
}

/// The subjects of `author`'s held notes with their sizes; at most `max_notes` rows when the
/// quota holds.
fn notes_of(t: &WriteTables<'_>, author: &PublicKey) -> Result<Vec<(PublicKey, u64)>, ReqError> {
    let lo = key2(author.as_bytes(), &[0; 32]);
    let hi = key2(author.as_bytes(), &[0xff; 32]);
    let mut out = Vec::new();
    for row in t.notes_by_author.range(lo.as_slice()..=hi.as_slice()).map_err(ReqError::internal)? {
        let (k, v) = row.map_err(ReqError::internal)?;
        let bytes: Option<[u8; 32]> = k.value().get(32..64).and_then(|b| b.try_into().ok());
        if let Some(key) = bytes.and_then(|b| PublicKey::from_bytes_checked(b).ok()) {
            out.push((key, v.value()));
        }
    }
    Ok(out)
}

/// Whether `user`'s follow set holds at least `bound` keys. It counts rows without decoding
/// them and stops at `bound`: a `follow` costs O(`max_follows`) row reads and no curve work
/// (decoding every key of the set on every `follow` made filling a set of 10,000 take minutes).
fn follow_count_reaches(t: &WriteTables<'_>, user: &PublicKey, bound: u64) -> Result<bool, ReqError> {
    let lo = key2(user.as_bytes(), &[0; 32]);
    let hi = key2(user.as_bytes(), &[0xff; 32]);
    let mut n = 0u64;
    for row in t.follows.range(lo.as_slice()..=hi.as_slice()).map_err(ReqError::internal)? {
        row.map_err(ReqError::internal)?;
        n += 1;
        if n >= bound {
            return Ok(true);
        }
    }
    Ok(n >= bound)
}

fn follows_of(t: &WriteTables<'_>, user: &PublicKey) -> Result<Vec<PublicKey>, ReqError> {
    let lo = key2(user.as_bytes(), &[0; 32]);
    let hi = key2(user.as_bytes(), &[0xff; 32]);
    let mut out = Vec::new();
    for row in t.follows.range(lo.as_slice()..=hi.as_slice()).map_err(ReqError::internal)? {
        let (k, _) = row.map_err(ReqError::internal)?;
        let bytes: Option<[u8; 32]> = k.value().get(32..64).and_then(|b| b.try_into().ok());
        if let Some(key) = bytes.and_then(|b| PublicKey::from_bytes_checked(b).ok()) {
            out.push(key);
        }
    }
    Ok(out)
}

/// Answers a publish that could not be committed with `err`, in its connection's order.
fn fail_publish(outbox: &Outbox, id: RequestId, done: oneshot::Sender<()>, err: &ReqError) {
    outbox.push(ServerFrame::error(Some(id), err.code, &err.message).to_text());
    let _ = done.send(());
}

/// Answers every command of a batch that could not be committed with `err` ([FRAME-27]).
fn fail_pending(pending: Vec<Pending>, err: &ReqError) {
    for p in pending {
        match p {
            Pending::Publish { outbox, id, done, .. } => fail_publish(&outbox, id, done, err),
            Pending::Op { reply, .. } => {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}

/// Answers every command of a batch that was never applied with `err` ([FRAME-27]).
fn fail_all(batch: Vec<Cmd>, err: &ReqError) {
    for cmd in batch {
        match cmd {
            Cmd::Publish { outbox, id, done, .. } => fail_publish(&outbox, id, done, err),
            Cmd::Op { reply, .. } => {
                let _ = reply.send(Err(err.clone()));
            }
            Cmd::Shutdown => {}
        }
    }
}
