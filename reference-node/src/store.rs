//! The durable store: redb tables, the read queries connection tasks run on snapshots, and the
//! mutations the single writer applies inside one write transaction per batch.
//!
//! Layout (all keys big-endian so that byte order is numeric order):
//!
//! | table | key | value |
//! |---|---|---|
//! | `entries` | id (32) | arrival (8) ‖ canonical signed entry |
//! | `feed_seq` | author (32) ‖ seq (8) | id (32) |
//! | `arrivals` | arrival | id (32) ‖ size (8) ‖ author (32) ‖ seq (8) ‖ n ‖ refs ‖ m ‖ mentions |
//! | `feeds` | author (32) | head seq (8) ‖ head id (32) ‖ head timestamp (8) ‖ pruned_through (8) |
//! | `by_author`, `by_ref`, `by_mention` | key or id (32) ‖ arrival (8) | id (32) |
//! | `meta` | name | u64 (`next_arrival`, `total_bytes`) |
//! | `accounts` | user key (32) | account JSON |
//! | `names` | account name | user key (32) |
//! | `identities` | subject (32) ‖ author (32) | note JSON |
//! | `follows` | user (32) ‖ followed key (32) | () |
//! | `notes_by_author` | author (32) ‖ subject (32) | note size (counted bytes) |
//!
//! Pruning pops the first row of `arrivals` and deletes exactly the rows that entry owns, so its
//! cost is proportional to what it removes; `total_bytes` is kept as a running sum.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::path::Path;

use kith_proto::account::{Account, AccountName};
use kith_proto::entry::FeedHead;
use kith_proto::feed::Filter;
use kith_proto::identity::{IdentityNote, NotePosition, MAX_IDENTITIES_PAGE_BYTES};
use kith_proto::{Entry, EntryId, ErrorCode, PublicKey};
use redb::{Database, ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};

use crate::error::{NodeError, ReqError};

pub(crate) const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
pub(crate) const FEED_SEQ: TableDefinition<&[u8], &[u8]> = TableDefinition::new("feed_seq");
pub(crate) const ARRIVALS: TableDefinition<u64, &[u8]> = TableDefinition::new("arrivals");
pub(crate) const FEEDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("feeds");
pub(crate) const BY_AUTHOR: TableDefinition<&[u8], &[u8]> = TableDefinition::new("by_author");
pub(crate) const BY_REF: TableDefinition<&[u8], &[u8]> = TableDefinition::new("by_ref");
pub(crate) const BY_MENTION: TableDefinition<&[u8], &[u8]> = TableDefinition::new("by_mention");
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const ACCOUNTS: TableDefinition<&[u8], &str> = TableDefinition::new("accounts");
pub(crate) const NAMES: TableDefinition<&str, &[u8]> = TableDefinition::new("names");
pub(crate) const IDENTITIES: TableDefinition<&[u8], &str> = TableDefinition::new("identities");
pub(crate) const FOLLOWS: TableDefinition<&[u8], ()> = TableDefinition::new("follows");
/// Each author's notes with their sizes: the quota of [IDENT-25] reads at most `max_notes` rows,
/// and a removal finds the notes to delete without scanning every note ([IDENT-31]).
pub(crate) const NOTES_BY_AUTHOR: TableDefinition<&[u8], u64> = TableDefinition::new("notes_by_author");

/// redb's page cache.
const PAGE_CACHE_BYTES: usize = 64 << 20;

pub(crate) const NEXT_ARRIVAL: &str = "next_arrival";
pub(crate) const TOTAL_BYTES: &str = "total_bytes";

/// `a ‖ b` for two fixed-size keys.
pub(crate) fn key2(a: &[u8; 32], b: &[u8; 32]) -> [u8; 64] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(a);
    k[32..].copy_from_slice(b);
    k
}

/// `a ‖ n` (big-endian).
pub(crate) fn key_n(a: &[u8; 32], n: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(a);
    k[32..].copy_from_slice(&n.to_be_bytes());
    k
}

pub(crate) fn id_from(bytes: &[u8]) -> Option<EntryId> {
    let arr: [u8; 32] = bytes.get(..32)?.try_into().ok()?;
    Some(EntryId::from_bytes(arr))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    bytes.get(at..at + 8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes)
}

pub(crate) fn encode_head(h: &FeedHead) -> [u8; 56] {
    let mut v = [0u8; 56];
    v[..8].copy_from_slice(&h.seq.to_be_bytes());
    v[8..40].copy_from_slice(h.id.as_bytes());
    v[40..48].copy_from_slice(&h.timestamp.to_be_bytes());
    v[48..56].copy_from_slice(&h.pruned_through.to_be_bytes());
    v
}

pub(crate) fn decode_head(v: &[u8]) -> Option<FeedHead> {
    Some(FeedHead {
        seq: u64_at(v, 0),
        id: id_from(v.get(8..40)?)?,
        timestamp: u64_at(v, 40),
        pruned_through: u64_at(v, 48),
    })
}

/// The canonical text of a stored entry row (`arrival ‖ canonical`).
pub(crate) fn entry_text(row: &[u8]) -> &str {
    std::str::from_utf8(row.get(8..).unwrap_or_default()).unwrap_or_default()
}

/// The store: one redb database, on disk or in memory.
pub struct Store {
    pub(crate) db: Database,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// Opens a read snapshot, mapping redb's error.
fn snapshot(db: &Database) -> Result<ReadTransaction, ReqError> {
    db.begin_read().map_err(ReqError::internal)
}

impl Store {
    /// Opens (or creates) the database at `path`, or an in-memory one, creates every table, and
    /// makes sure the admin account exists for `node`.
    pub fn open(path: Option<&Path>, node: &PublicKey) -> Result<Store, NodeError> {
        // A fixed page cache, so that memory does not grow with the store (redb's default
        // is 1 GiB).
        let mut builder = Database::builder();
        builder.set_cache_size(PAGE_CACHE_BYTES);
        let db = match path {
            Some(p) => builder.create(p)?,
            None => builder.create_with_backend(redb::backends::InMemoryBackend::new())?,
        };
        let tx = db.begin_write()?;
        {
            tx.open_table(ENTRIES)?;
            tx.open_table(FEED_SEQ)?;
            tx.open_table(ARRIVALS)?;
            tx.open_table(FEEDS)?;
            tx.open_table(BY_AUTHOR)?;
            tx.open_table(BY_REF)?;
            tx.open_table(BY_MENTION)?;
            let mut meta = tx.open_table(META)?;
            if meta.get(NEXT_ARRIVAL)?.is_none() {
                meta.insert(NEXT_ARRIVAL, 1)?;
                meta.insert(TOTAL_BYTES, 0)?;
            }
            let mut accounts = tx.open_table(ACCOUNTS)?;
            let mut names = tx.open_table(NAMES)?;
            tx.open_table(IDENTITIES)?;
            tx.open_table(FOLLOWS)?;
            tx.open_table(NOTES_BY_AUTHOR)?;
            // The admin is the node key's user ([ACCT-2]). When the operator starts the node
            // with another key on an existing store, the admin account moves to that key and
            // its children follow.
            let old_admin: Option<[u8; 32]> =
                names.get(AccountName::ADMIN)?.and_then(|v| <[u8; 32]>::try_from(v.value()).ok());
            if let Some(old) = old_admin.filter(|k| k != node.as_bytes()) {
                let moved = accounts.remove(old.as_slice())?.map(|v| v.value().to_owned());
                if let Some(json) = moved {
                    let mut admin: Account =
                        serde_json::from_str(&json).map_err(|e| NodeError::Config(format!("admin account: {e}")))?;
                    admin.key = *node;
                    let json = serde_json::to_string(&admin).map_err(|e| NodeError::Config(e.to_string()))?;
                    accounts.insert(node.as_bytes().as_slice(), json.as_str())?;
                    names.insert(AccountName::ADMIN, node.as_bytes().as_slice())?;
                    let mut children = Vec::new();
                    for row in accounts.iter()? {
                        let (_, v) = row?;
                        if let Ok(a) = serde_json::from_str::<Account>(v.value()) {
                            if a.parent.is_some_and(|p| p.as_bytes() == &old) {
                                children.push(a);
                            }
                        }
                    }
                    for mut c in children {
                        c.parent = Some(*node);
                        let json = serde_json::to_string(&c).map_err(|e| NodeError::Config(e.to_string()))?;
                        accounts.insert(c.key.as_bytes().as_slice(), json.as_str())?;
                    }
                }
            }
            if names.get(AccountName::ADMIN)?.is_none() {
                let admin = Account {
                    key: *node,
                    name: AccountName::new(AccountName::ADMIN).map_err(NodeError::Config)?,
                    parent: None,
                    invite_allowance: None,
                    publish_allowance: None,
                    published_entries: 0,
                    published_bytes: 0,
                };
                let json = serde_json::to_string(&admin).map_err(|e| NodeError::Config(e.to_string()))?;
                accounts.insert(node.as_bytes().as_slice(), json.as_str())?;
                names.insert(AccountName::ADMIN, node.as_bytes().as_slice())?;
            }
        }
        tx.commit()?;
        Ok(Store { db })
    }

    /// The account of `key`, if any.
    pub(crate) fn account(&self, key: &PublicKey) -> Result<Option<Account>, ReqError> {
        let rx = snapshot(&self.db)?;
        let t = rx.open_table(ACCOUNTS).map_err(ReqError::internal)?;
        read_account(&t, key)
    }

    /// `invitees`: the accounts of which `user` is a strict ancestor and whose key is greater
    /// than `after`, ascending by key, at most `limit` of them, and whether more follow
    /// ([ACCT-54], [ACCT-55]). `only_children` is the `invitees-children-only` fault.
    ///
    /// The store keeps no index by parent (`reparent` scans too), so this reads every account
    /// once: the cost is linear in the node's accounts, paid in one read snapshot, which is what
    /// makes the answer atomic with respect to account operations ([ACCT-18]).
    pub(crate) fn invitees(
        &self,
        user: &PublicKey,
        after: Option<&PublicKey>,
        limit: usize,
        only_children: bool,
    ) -> Result<(Vec<Account>, bool), ReqError> {
        let rx = snapshot(&self.db)?;
        let t = rx.open_table(ACCOUNTS).map_err(ReqError::internal)?;
        let mut children: std::collections::BTreeMap<PublicKey, Vec<Account>> = std::collections::BTreeMap::new();
        for row in t.iter().map_err(ReqError::internal)? {
            let (_, v) = row.map_err(ReqError::internal)?;
            let a: Account = serde_json::from_str(v.value()).map_err(ReqError::internal)?;
            if let Some(parent) = a.parent {
                children.entry(parent).or_default().push(a);
            }
        }
        let mut below = Vec::new();
        let mut todo = vec![*user];
        while let Some(k) = todo.pop() {
            // Each account is taken out of the map once, so even a corrupted store with a
            // cycle ends.
            for child in children.remove(&k).unwrap_or_default() {
                if !only_children {
                    todo.push(child.key);
                }
                below.push(child);
            }
        }
        below.retain(|a| after.is_none_or(|after| a.key > *after));
        below.sort_by_key(|a| a.key);
        let more = below.len() > limit;
        below.truncate(limit);
        Ok((below, more))
    }

    /// `heads`: the heads of the known feeds among `authors`, in the order asked.
    pub(crate) fn heads(&self, authors: &[PublicKey]) -> Result<Vec<(PublicKey, FeedHead)>, ReqError> {
        let rx = snapshot(&self.db)?;
        let feeds = rx.open_table(FEEDS).map_err(ReqError::internal)?;
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        // Each distinct author once, in the order of its first occurrence ([FEED-22]).
        for a in authors.iter().filter(|a| seen.insert(**a)) {
            if let Some(v) = feeds.get(a.as_bytes().as_slice()).map_err(ReqError::internal)? {
                if let Some(h) = decode_head(v.value()) {
                    out.push((*a, h));
                }
            }
        }
        Ok(out)
    }

    /// `replicate`: canonical texts of `author`'s entries with seq > `after`, ascending, at most
    /// `limit`; plus the head seq and pruned_through.
    pub(crate) fn replicate(
        &self,
        author: &PublicKey,
        after: u64,
        limit: u64,
    ) -> Result<(Vec<String>, Option<u64>, u64), ReqError> {
        let rx = snapshot(&self.db)?;
        let feeds = rx.open_table(FEEDS).map_err(ReqError::internal)?;
        let Some(head) = feeds.get(author.as_bytes().as_slice()).map_err(ReqError::internal)? else {
            return Ok((Vec::new(), None, 0));
        };
        let Some(head) = decode_head(head.value()) else {
            return Err(ReqError::new(ErrorCode::Internal, "corrupt feed head"));
        };
        let feed_seq = rx.open_table(FEED_SEQ).map_err(ReqError::internal)?;
        let entries = rx.open_table(ENTRIES).map_err(ReqError::internal)?;
        let lo = key_n(author.as_bytes(), after.saturating_add(1));
        let hi = key_n(author.as_bytes(), u64::MAX);
        let mut out = Vec::new();
        for row in feed_seq.range(lo.as_slice()..=hi.as_slice()).map_err(ReqError::internal)? {
            if out.len() as u64 >= limit {
                break;
            }
            let (_, id) = row.map_err(ReqError::internal)?;
            if let Some(e) = entries.get(id.value()).map_err(ReqError::internal)? {
                out.push(entry_text(e.value()).to_owned());
            }
        }
        Ok((out, Some(head.seq), head.pruned_through))
    }

    /// `get` by id: the canonical text, or `not_found`.
    pub(crate) fn get_by_id(&self, id: &EntryId) -> Result<String, ReqError> {
        let rx = snapshot(&self.db)?;
        let entries = rx.open_table(ENTRIES).map_err(ReqError::internal)?;
        match entries.get(id.as_bytes().as_slice()).map_err(ReqError::internal)? {
            Some(e) => Ok(entry_text(e.value()).to_owned()),
            None => Err(ReqError::new(ErrorCode::NotFound, "no such entry")),
        }
    }

    /// `get` by position: the canonical text ([FEED-31]), `pruned` at or below pruned_through
    /// ([FEED-32]), else `not_found` ([FEED-33]).
    pub(crate) fn get_by_position(&self, author: &PublicKey, seq: u64) -> Result<String, ReqError> {
        let rx = snapshot(&self.db)?;
        let feeds = rx.open_table(FEEDS).map_err(ReqError::internal)?;
        let head =
            feeds.get(author.as_bytes().as_slice()).map_err(ReqError::internal)?.and_then(|v| decode_head(v.value()));
        let Some(head) = head else {
            return Err(ReqError::new(ErrorCode::NotFound, "unknown feed"));
        };
        if seq <= head.pruned_through {
            return Err(ReqError::new(ErrorCode::Pruned, format!("seq {seq} was pruned")));
        }
        let feed_seq = rx.open_table(FEED_SEQ).map_err(ReqError::internal)?;
        let entries = rx.open_table(ENTRIES).map_err(ReqError::internal)?;
        let key = key_n(author.as_bytes(), seq);
        let Some(id) = feed_seq.get(key.as_slice()).map_err(ReqError::internal)? else {
            return Err(ReqError::new(ErrorCode::NotFound, format!("no entry at seq {seq}")));
        };
        match entries.get(id.value()).map_err(ReqError::internal)? {
            Some(e) => Ok(entry_text(e.value()).to_owned()),
            None => Err(ReqError::new(ErrorCode::NotFound, "no such entry")),
        }
    }

    /// The backfill of a subscription: the canonical texts of the most recent `n` stored
    /// entries matching `filter`, in arrival order, and the first arrival number not in this
    /// snapshot (live events start there).
    ///
    /// A k-way merge over the index ranges, newest first: cost is proportional to `n` and the
    /// filter's size, never to what is stored.
    pub(crate) fn backfill(&self, filter: &Filter, n: u64) -> Result<(Vec<String>, u64), ReqError> {
        let rx = snapshot(&self.db)?;
        let meta = rx.open_table(META).map_err(ReqError::internal)?;
        let next_arrival = meta.get(NEXT_ARRIVAL).map_err(ReqError::internal)?.map_or(1, |v| v.value());
        if n == 0 || filter.is_empty() {
            return Ok((Vec::new(), next_arrival));
        }
        let by_author = rx.open_table(BY_AUTHOR).map_err(ReqError::internal)?;
        let by_ref = rx.open_table(BY_REF).map_err(ReqError::internal)?;
        let by_mention = rx.open_table(BY_MENTION).map_err(ReqError::internal)?;
        let entries = rx.open_table(ENTRIES).map_err(ReqError::internal)?;
        let mut ranges = Vec::new();
        let prefixes = filter
            .authors
            .iter()
            .map(|a| (&by_author, *a.as_bytes()))
            .chain(filter.threads.iter().map(|t| (&by_ref, *t.as_bytes())))
            .chain(filter.mentions.iter().map(|m| (&by_mention, *m.as_bytes())));
        for (table, prefix) in prefixes {
            let lo = key_n(&prefix, 0);
            let hi = key_n(&prefix, u64::MAX);
            ranges.push(table.range(lo.as_slice()..=hi.as_slice()).map_err(ReqError::internal)?.rev());
        }
        // Max-heap of (arrival, range index, id).
        let mut heap = BinaryHeap::new();
        for (i, r) in ranges.iter_mut().enumerate() {
            if let Some(row) = r.next() {
                let (k, v) = row.map_err(ReqError::internal)?;
                heap.push((u64_at(k.value(), 32), i, v.value().to_vec()));
            }
        }
        let mut picked: Vec<(u64, Vec<u8>)> = Vec::new();
        while let Some((arrival, i, id)) = heap.pop() {
            if picked.last().map(|(a, _)| *a) != Some(arrival) {
                if picked.len() as u64 >= n {
                    break;
                }
                picked.push((arrival, id));
            }
            if let Some(r) = ranges.get_mut(i) {
                if let Some(row) = r.next() {
                    let (k, v) = row.map_err(ReqError::internal)?;
                    heap.push((u64_at(k.value(), 32), i, v.value().to_vec()));
                }
            }
        }
        let mut out = Vec::with_capacity(picked.len());
        for (_, id) in picked.iter().rev() {
            if let Some(e) = entries.get(id.as_slice()).map_err(ReqError::internal)? {
                out.push(entry_text(e.value()).to_owned());
            }
        }
        Ok((out, next_arrival))
    }

    /// `identities`: a page of the stored notes whose author is a current account and whose
    /// position is after `after`, grouped by subject (ascending), notes by author, and whether
    /// more follow ([IDENT-15]..[IDENT-17], [IDENT-28], [IDENT-29]). `unpaged` is the
    /// `identities-unpaged` fault.
    #[allow(clippy::type_complexity)]
    pub(crate) fn identities(
        &self,
        after: Option<&NotePosition>,
        unpaged: bool,
    ) -> Result<(Vec<(PublicKey, Vec<IdentityNote>)>, bool), ReqError> {
        let rx = snapshot(&self.db)?;
        let t = rx.open_table(IDENTITIES).map_err(ReqError::internal)?;
        let accounts = rx.open_table(ACCOUNTS).map_err(ReqError::internal)?;
        // Keys are subject ‖ author, so the byte order of the table is the answer's order; the
        // range starts just past `after`.
        let lo = after.map(|p| key2(p.subject.as_bytes(), p.author.as_bytes()));
        let rows = match &lo {
            Some(lo) => t.range::<&[u8]>((std::ops::Bound::Excluded(lo.as_slice()), std::ops::Bound::Unbounded)),
            None => t.range::<&[u8]>(..),
        }
        .map_err(ReqError::internal)?;
        let mut out: Vec<(PublicKey, Vec<IdentityNote>)> = Vec::new();
        let mut total = 0u64;
        let mut listed = 0usize;
        for row in rows {
            let (_, v) = row.map_err(ReqError::internal)?;
            let note: IdentityNote = serde_json::from_str(v.value()).map_err(ReqError::internal)?;
            if accounts.get(note.author.as_bytes().as_slice()).map_err(ReqError::internal)?.is_none() {
                continue;
            }
            // The same rule as `identities_page_len`, applied as the rows stream by.
            total = total.saturating_add(note.size());
            if listed > 0 && total > MAX_IDENTITIES_PAGE_BYTES && !unpaged {
                return Ok((out, true));
            }
            listed += 1;
            match out.last_mut() {
                Some((k, notes)) if *k == note.subject => notes.push(note),
                _ => out.push((note.subject, vec![note])),
            }
        }
        Ok((out, false))
    }

    /// `follows`: the keys `user` follows that are greater than `after`, ascending, at most
    /// `limit` of them, and whether more follow ([IDENT-22], [IDENT-30]).
    pub(crate) fn follows(
        &self,
        user: &PublicKey,
        after: Option<&PublicKey>,
        limit: usize,
    ) -> Result<(Vec<PublicKey>, bool), ReqError> {
        let rx = snapshot(&self.db)?;
        let t = rx.open_table(FOLLOWS).map_err(ReqError::internal)?;
        let lo = key2(user.as_bytes(), after.map_or(&[0; 32], |a| a.as_bytes()));
        let hi = key2(user.as_bytes(), &[0xff; 32]);
        let mut out = Vec::new();
        for row in t.range(lo.as_slice()..=hi.as_slice()).map_err(ReqError::internal)? {
            let (k, _) = row.map_err(ReqError::internal)?;
            let bytes: Option<[u8; 32]> = k.value().get(32..64).and_then(|b| b.try_into().ok());
            if let Some(key) = bytes.and_then(|b| PublicKey::from_bytes_checked(b).ok()) {
                if Some(&key) == after {
                    continue;
                }
                if out.len() == limit {
                    return Ok((out, true));
                }
                out.push(key);
            }
        }
        Ok((out, false))
    }

    /// Counted bytes and number of entries stored (for tests and logs).
    pub fn usage(&self) -> Result<(u64, u64), NodeError> {
        let rx = self.db.begin_read()?;
        let meta = rx.open_table(META)?;
        let total = meta.get(TOTAL_BYTES)?.map_or(0, |v| v.value());
        let count = rx.open_table(ARRIVALS)?.len()?;
        Ok((total, count))
    }
}

/// Reads an account row.
pub(crate) fn read_account<T: ReadableTable<&'static [u8], &'static str>>(
    t: &T,
    key: &PublicKey,
) -> Result<Option<Account>, ReqError> {
    match t.get(key.as_bytes().as_slice()).map_err(ReqError::internal)? {
        Some(v) => Ok(Some(serde_json::from_str(v.value()).map_err(ReqError::internal)?)),
        None => Ok(None),
    }
}

/// The tables of one write transaction, opened once per batch.
pub(crate) struct WriteTables<'t> {
    pub entries: redb::Table<'t, &'static [u8], &'static [u8]>,
    pub feed_seq: redb::Table<'t, &'static [u8], &'static [u8]>,
    pub arrivals: redb::Table<'t, u64, &'static [u8]>,
    pub feeds: redb::Table<'t, &'static [u8], &'static [u8]>,
    pub by_author: redb::Table<'t, &'static [u8], &'static [u8]>,
    pub by_ref: redb::Table<'t, &'static [u8], &'static [u8]>,
    pub by_mention: redb::Table<'t, &'static [u8], &'static [u8]>,
    pub meta: redb::Table<'t, &'static str, u64>,
    pub accounts: redb::Table<'t, &'static [u8], &'static str>,
    pub names: redb::Table<'t, &'static str, &'static [u8]>,
    pub identities: redb::Table<'t, &'static [u8], &'static str>,
    pub follows: redb::Table<'t, &'static [u8], ()>,
    pub notes_by_author: redb::Table<'t, &'static [u8], u64>,
    /// Accounts read or written in this batch (None: absent or deleted), so that each is
    /// decoded at most once and written once per batch.
    account_cache: BTreeMap<PublicKey, Option<Account>>,
    dirty_accounts: BTreeSet<PublicKey>,
}

impl<'t> WriteTables<'t> {
    pub(crate) fn open(tx: &'t WriteTransaction) -> Result<Self, redb::TableError> {
        Ok(WriteTables {
            entries: tx.open_table(ENTRIES)?,
            feed_seq: tx.open_table(FEED_SEQ)?,
            arrivals: tx.open_table(ARRIVALS)?,
            feeds: tx.open_table(FEEDS)?,
            by_author: tx.open_table(BY_AUTHOR)?,
            by_ref: tx.open_table(BY_REF)?,
            by_mention: tx.open_table(BY_MENTION)?,
            meta: tx.open_table(META)?,
            accounts: tx.open_table(ACCOUNTS)?,
            names: tx.open_table(NAMES)?,
            identities: tx.open_table(IDENTITIES)?,
            follows: tx.open_table(FOLLOWS)?,
            notes_by_author: tx.open_table(NOTES_BY_AUTHOR)?,
            account_cache: BTreeMap::new(),
            dirty_accounts: BTreeSet::new(),
        })
    }

    /// The account of `key` as this batch sees it.
    pub(crate) fn account(&mut self, key: &PublicKey) -> Result<Option<Account>, ReqError> {
        if let Some(a) = self.account_cache.get(key) {
            return Ok(a.clone());
        }
        let a = read_account(&self.accounts, key)?;
        self.account_cache.insert(*key, a.clone());
        Ok(a)
    }

    /// Stores an account (written to the table by [`WriteTables::flush_accounts`]).
    pub(crate) fn put_account(&mut self, a: &Account) -> Result<(), ReqError> {
        self.account_cache.insert(a.key, Some(a.clone()));
        self.dirty_accounts.insert(a.key);
        Ok(())
    }

    /// Deletes an account (from the table at [`WriteTables::flush_accounts`]).
    pub(crate) fn delete_account(&mut self, key: &PublicKey) {
        self.account_cache.insert(*key, None);
        self.dirty_accounts.insert(*key);
    }

    /// Writes the batch's account changes to the table; before a commit and before anything
    /// iterates the table.
    pub(crate) fn flush_accounts(&mut self) -> Result<(), ReqError> {
        for key in std::mem::take(&mut self.dirty_accounts) {
            match self.account_cache.get(&key) {
                Some(Some(a)) => {
                    let json = serde_json::to_string(a).map_err(ReqError::internal)?;
                    self.accounts.insert(key.as_bytes().as_slice(), json.as_str()).map_err(ReqError::internal)?;
                }
                _ => {
                    self.accounts.remove(key.as_bytes().as_slice()).map_err(ReqError::internal)?;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn meta(&self, name: &str) -> Result<u64, ReqError> {
        Ok(self.meta.get(name).map_err(ReqError::internal)?.map_or(0, |v| v.value()))
    }

    pub(crate) fn set_meta(&mut self, name: &str, v: u64) -> Result<(), ReqError> {
        self.meta.insert(name, v).map_err(ReqError::internal)?;
        Ok(())
    }

    pub(crate) fn head(&self, author: &[u8; 32]) -> Result<Option<FeedHead>, ReqError> {
        Ok(self.feeds.get(author.as_slice()).map_err(ReqError::internal)?.and_then(|v| decode_head(v.value())))
    }

    pub(crate) fn set_head(&mut self, author: &[u8; 32], h: &FeedHead) -> Result<(), ReqError> {
        self.feeds.insert(author.as_slice(), encode_head(h).as_slice()).map_err(ReqError::internal)?;
        Ok(())
    }

    pub(crate) fn id_at(&self, author: &PublicKey, seq: u64) -> Result<Option<EntryId>, ReqError> {
        let key = key_n(author.as_bytes(), seq);
        Ok(self.feed_seq.get(key.as_slice()).map_err(ReqError::internal)?.and_then(|v| id_from(v.value())))
    }

    /// Inserts a new entry with its index rows; returns nothing (caller updates head and meta).
    pub(crate) fn insert_entry(
        &mut self,
        entry: &Entry,
        id: &EntryId,
        canonical: &[u8],
        arrival: u64,
    ) -> Result<(), ReqError> {
        let mut row = Vec::with_capacity(8 + canonical.len());
        row.extend_from_slice(&arrival.to_be_bytes());
        row.extend_from_slice(canonical);
        let idb = id.as_bytes().as_slice();
        self.entries.insert(idb, row.as_slice()).map_err(ReqError::internal)?;
        self.feed_seq.insert(key_n(entry.author.as_bytes(), entry.seq).as_slice(), idb).map_err(ReqError::internal)?;
        // Everything pruning needs, so that it never decodes the entry again.
        let mut arow = Vec::with_capacity(82 + 32 * (entry.refs.len() + entry.mentions.len()));
        arow.extend_from_slice(id.as_bytes());
        arow.extend_from_slice(&(canonical.len() as u64).to_be_bytes());
        arow.extend_from_slice(entry.author.as_bytes());
        arow.extend_from_slice(&entry.seq.to_be_bytes());
        arow.push(entry.refs.len() as u8);
        for r in &entry.refs {
            arow.extend_from_slice(r.as_bytes());
        }
        arow.push(entry.mentions.len() as u8);
        for m in &entry.mentions {
            arow.extend_from_slice(m.as_bytes());
        }
        self.arrivals.insert(arrival, arow.as_slice()).map_err(ReqError::internal)?;
        self.by_author.insert(key_n(entry.author.as_bytes(), arrival).as_slice(), idb).map_err(ReqError::internal)?;
        for r in &entry.refs {
            self.by_ref.insert(key_n(r.as_bytes(), arrival).as_slice(), idb).map_err(ReqError::internal)?;
        }
        for m in &entry.mentions {
            self.by_mention.insert(key_n(m.as_bytes(), arrival).as_slice(), idb).map_err(ReqError::internal)?;
        }
        Ok(())
    }

    /// Removes the oldest (or, with `newest`, the newest) entry by arrival and every row it owns.
    /// Returns its size, author and seq, or None when nothing is stored.
    pub(crate) fn prune_one(&mut self, newest: bool) -> Result<Option<Pruned>, ReqError> {
        let popped = if newest { self.arrivals.pop_last() } else { self.arrivals.pop_first() };
        let Some((k, v)) = popped.map_err(ReqError::internal)? else {
            return Ok(None);
        };
        let arrival = k.value();
        let row = v.value().to_vec();
        drop((k, v));
        let corrupt = || ReqError::new(ErrorCode::Internal, "corrupt arrival row");
        let id: [u8; 32] = row.get(..32).and_then(|b| b.try_into().ok()).ok_or_else(corrupt)?;
        let size = u64_at(&row, 32);
        let removed = self.entries.remove(id.as_slice()).map_err(ReqError::internal)?.map(|g| g.value().to_vec());
        let stored = removed.ok_or_else(|| ReqError::new(ErrorCode::Internal, "arrival row without entry"))?;
        let rows = ArrivalRow::parse(&row).map_or_else(|| ArrivalRow::from_entry(&stored), Ok)?;
        self.feed_seq.remove(key_n(&rows.author, rows.seq).as_slice()).map_err(ReqError::internal)?;
        self.by_author.remove(key_n(&rows.author, arrival).as_slice()).map_err(ReqError::internal)?;
        for r in &rows.refs {
            self.by_ref.remove(key_n(r, arrival).as_slice()).map_err(ReqError::internal)?;
        }
        for m in &rows.mentions {
            self.by_mention.remove(key_n(m, arrival).as_slice()).map_err(ReqError::internal)?;
        }
        Ok(Some(Pruned { size, author: rows.author, seq: rows.seq }))
    }
}

/// What pruning removed.
pub(crate) struct Pruned {
    /// Its counted size.
    pub size: u64,
    /// Its author's key bytes.
    pub author: [u8; 32],
    /// Its seq.
    pub seq: u64,
}

/// The key material of an arrival row: `id ‖ size ‖ author ‖ seq ‖ n ‖ refs ‖ m ‖ mentions`.
struct ArrivalRow {
    author: [u8; 32],
    seq: u64,
    refs: Vec<[u8; 32]>,
    mentions: Vec<[u8; 32]>,
}

impl ArrivalRow {
    fn parse(row: &[u8]) -> Option<ArrivalRow> {
        let author: [u8; 32] = row.get(40..72)?.try_into().ok()?;
        let seq = u64_at(row, 72);
        let mut at = 80;
        let list = |at: &mut usize| -> Option<Vec<[u8; 32]>> {
            let n = usize::from(*row.get(*at)?);
            *at += 1;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push(row.get(*at..*at + 32)?.try_into().ok()?);
                *at += 32;
            }
            Some(out)
        };
        let refs = list(&mut at)?;
        let mentions = list(&mut at)?;
        Some(ArrivalRow { author, seq, refs, mentions })
    }

    /// For rows written before arrival rows carried the keys: decode the stored entry.
    fn from_entry(stored: &[u8]) -> Result<ArrivalRow, ReqError> {
        let e = Entry::from_json(entry_text(stored)).map_err(ReqError::internal)?;
        Ok(ArrivalRow {
            author: *e.author.as_bytes(),
            seq: e.seq,
            refs: e.refs.iter().map(|r| *r.as_bytes()).collect(),
            mentions: e.mentions.iter().map(|m| *m.as_bytes()).collect(),
        })
    }
}
