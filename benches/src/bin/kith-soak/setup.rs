//! The context every task shares (the node, its limits, the soak's users, the source addresses
//! of the classes), the valid authors' feeds, the phase schedule, and the setup that creates the
//! users.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kith_client::now_ms;
use kith_proto::canonical::CanonicalValue;
use kith_proto::entry::{EntryDraft, MAX_ENTRY_BYTES};
use kith_proto::feed::Publish;
use kith_proto::{ClientFrame, Entry, PublicKey, RequestId, SecretKey};
use tokio::sync::RwLock;

use crate::cli::SoakArgs;
use crate::conn::{node_limits, resolve, Conn};
use crate::ctx::Ctx;
use crate::target::Target;
use crate::Res;

/// A publish allowance that never runs out.
pub(crate) const BIG: u64 = 1_000_000_000_000;

/// Source address 127.0.0.`n` (or 127.0.`hi`.`n`), when the node is on loopback.
pub(crate) fn src(hi: u8, n: u8) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, hi, n)))
}

pub(crate) const SRC_ADMIN: u8 = 10;

pub(crate) const SRC_VALID: u8 = 11;

pub(crate) const SRC_HEAVY: u8 = 12;

pub(crate) const SRC_CONN_FLOOD: u8 = 30;

pub(crate) const SRC_REQ_FLOOD: u8 = 40;

pub(crate) const SRC_SLOW: u8 = 50;

pub(crate) const SRC_MALFORMED: u8 = 60;

pub(crate) const SRC_DROP_REQ: u8 = 70;

pub(crate) const SRC_PENDING: u8 = 80;

/// A valid author's feed: the key and the last entry published.
pub(crate) struct Author {
    pub(crate) key: SecretKey,
    pub(crate) prev: Option<Entry>,
}

impl Author {
    pub(crate) fn new(key: SecretKey) -> Self {
        Author { key, prev: None }
    }

    pub(crate) fn next_entry(&self, text: &str) -> Entry {
        let timestamp = now_ms().max(self.prev.as_ref().map_or(0, |p| p.timestamp));
        let mut draft = EntryDraft::first(timestamp);
        if let Some(p) = &self.prev {
            draft.seq = p.seq + 1;
            draft.prev = Some(p.id());
        }
        draft.content.insert("text".into(), CanonicalValue::string(text));
        draft.sign(&self.key)
    }
}

pub(crate) fn post_text(len: usize, tag: u64) -> String {
    let mut t = format!("soak {tag}: ");
    while t.len() < len {
        t.push_str("small nodes carry whole communities. ");
    }
    t.truncate(len);
    t
}

/// Text of a large entry: close to `max_entry_bytes` once signed.
pub(crate) fn heavy_text(tag: u64) -> String {
    post_text(MAX_ENTRY_BYTES - 1200, tag)
}

pub(crate) fn actions(phase: Duration, every: Duration) -> u64 {
    (phase.as_secs_f64() / every.as_secs_f64()).floor().max(1.0) as u64
}

pub(crate) async fn at(start: Instant, offset: Duration) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(start + offset)).await;
}

pub(crate) fn phase_len(ctx: &Ctx) -> Duration {
    Duration::from_secs(ctx.args.phase_secs.max(2))
}

pub(crate) struct Setup {
    pub(crate) valid: Vec<Author>,
    pub(crate) heavy: Author,
}

/// Creates the soak's users (valid authors, the heavy publisher, the flood and dropper users)
/// and publishes the dropper's one entry; returns the context.
pub(crate) async fn setup(args: &SoakArgs, t: &Target) -> Res<(Arc<Ctx>, Setup)> {
    let (addr, bind) = resolve(&t.url).await?;
    let limits = node_limits(&t.url).await?;
    let valid: Vec<Author> = (0..args.valid_clients.max(1)).map(|_| Author::new(SecretKey::random())).collect();
    let heavy = Author::new(SecretKey::random());
    let flood_user = SecretKey::random();
    let dropper_user = SecretKey::random();
    let dropper = Author::new(dropper_user.clone());
    let dropper_first = dropper.next_entry("the one entry the dropper re-publishes");
    let dropper_entry =
        ClientFrame::Publish(Publish { id: RequestId::small(1), entry: dropper_first.clone() }).to_text();
    let ctx = Ctx {
        addr,
        url: t.url.clone(),
        node: t.admin.public(),
        limits,
        bind,
        gate: RwLock::new(()),
        valid_authors: valid.iter().map(|a| a.key.public()).collect(),
        heavy: heavy.key.public(),
        flood_user,
        dropper_user,
        dropper_entry,
        args: args.clone(),
    };
    let mut admin = Conn::session(&ctx, src(0, SRC_ADMIN), &t.admin, None).await?;
    let mut users: Vec<(PublicKey, u64, u64)> = valid.iter().map(|a| (a.key.public(), BIG, BIG)).collect();
    users.push((heavy.key.public(), 0, BIG));
    users.push((ctx.flood_user.public(), 0, 0));
    users.push((ctx.dropper_user.public(), 0, 10));
    for (key, invite_allowance, publish_allowance) in users {
        admin.create_user(key, invite_allowance, publish_allowance).await?;
    }
    admin.close().await;
    let mut d = Conn::session(&ctx, src(0, SRC_DROP_REQ), &ctx.dropper_user, None).await?;
    d.must(|id| ClientFrame::Publish(Publish { id, entry: dropper_first }), "publish_ok").await?;
    d.close().await;
    if !bind {
        eprintln!("note: the node is not on 127.0.0.1; every class shares one source address");
    }
    Ok((Arc::new(ctx), Setup { valid, heavy }))
}
