//! The valid base frames, one builder per client request type, each sent in the state where
//! it is valid: `node_info` and `hello` on a fresh connection, `auth` after a valid `hello`,
//! everything else in a session of the run's fuzz account (or, for `replace_key`, of a
//! throwaway account the case creates under it).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kith_proto::account::{AccountName, AccountRequest, CreateUser, Invitees, KeyReplacement, RemoveUser, ReplaceKey};
use kith_proto::entry::EntryDraft;
use kith_proto::feed::{Filter, Get, Heads, Publish, Replicate, Subscribe, Unsubscribe};
use kith_proto::handshake::ClientHandshake;
use kith_proto::identity::{AddIdentity, Follow, Follows, Identities, IdentityNote, Unfollow};
use kith_proto::node_info::NodeInfo;
use kith_proto::session::client::ClientSession;
use kith_proto::{ClientFrame, Entry, EntryId, ErrorCode, PublicKey, RequestId, SecretKey, ServerFrame};

use super::oracle::HsState;
use super::rng::Rng;
use super::wire::Wire;
use crate::client::{client_config, Transcript, DEFAULT_WAIT};

/// Expiry of every certificate and key replacement the fuzzer signs (2100-01-01): fixed, so
/// that a case's frames do not depend on the clock.
pub const FAR_FUTURE_MS: u64 = 4_102_444_800_000;

/// Timestamp of the entries the fuzzer signs (2025-01-01), plus a case-dependent offset.
pub const BASE_TIMESTAMP_MS: u64 = 1_735_689_600_000;

/// One base frame per client request type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseKind {
    /// `node_info`, before the handshake.
    NodeInfo,
    /// `hello`.
    Hello,
    /// `auth`, after a valid hello.
    Auth,
    /// `account`.
    Account,
    /// `create_user` of a new account under the fuzz account.
    CreateUser,
    /// `replace_key` by a throwaway account of its own key.
    ReplaceKey,
    /// `remove_user` of a throwaway account.
    RemoveUser,
    /// `invitees` of the fuzz account, from the start or after a random key.
    Invitees,
    /// `publish` of entry 1 of a fresh author.
    Publish,
    /// `subscribe`.
    Subscribe,
    /// `unsubscribe` of a subscription just opened.
    Unsubscribe,
    /// `heads`.
    Heads,
    /// `replicate` of the canary's feed.
    Replicate,
    /// `get` of the canary.
    Get,
    /// `add_identity` by the fuzz account.
    AddIdentity,
    /// `identities`.
    Identities,
    /// `follow`.
    Follow,
    /// `unfollow`.
    Unfollow,
    /// `follows`.
    Follows,
}

impl BaseKind {
    /// Every kind, in the registry's order.
    pub const ALL: [BaseKind; 19] = [
        BaseKind::NodeInfo,
        BaseKind::Hello,
        BaseKind::Auth,
        BaseKind::Account,
        BaseKind::CreateUser,
        BaseKind::ReplaceKey,
        BaseKind::RemoveUser,
        BaseKind::Invitees,
        BaseKind::Publish,
        BaseKind::Subscribe,
        BaseKind::Unsubscribe,
        BaseKind::Heads,
        BaseKind::Replicate,
        BaseKind::Get,
        BaseKind::AddIdentity,
        BaseKind::Identities,
        BaseKind::Follow,
        BaseKind::Unfollow,
        BaseKind::Follows,
    ];

    /// The kind of a client frame. Exhaustive on purpose: a new request type in the core's
    /// registry does not compile until the fuzzer has a base frame for it.
    pub fn of(frame: &ClientFrame) -> BaseKind {
        match frame {
            ClientFrame::NodeInfo(_) => BaseKind::NodeInfo,
            ClientFrame::Hello(_) => BaseKind::Hello,
            ClientFrame::Auth(_) => BaseKind::Auth,
            ClientFrame::Account(_) => BaseKind::Account,
            ClientFrame::CreateUser(_) => BaseKind::CreateUser,
            ClientFrame::ReplaceKey(_) => BaseKind::ReplaceKey,
            ClientFrame::RemoveUser(_) => BaseKind::RemoveUser,
            ClientFrame::Invitees(_) => BaseKind::Invitees,
            ClientFrame::Publish(_) => BaseKind::Publish,
            ClientFrame::Subscribe(_) => BaseKind::Subscribe,
            ClientFrame::Unsubscribe(_) => BaseKind::Unsubscribe,
            ClientFrame::Heads(_) => BaseKind::Heads,
            ClientFrame::Replicate(_) => BaseKind::Replicate,
            ClientFrame::Get(_) => BaseKind::Get,
            ClientFrame::AddIdentity(_) => BaseKind::AddIdentity,
            ClientFrame::Identities(_) => BaseKind::Identities,
            ClientFrame::Follow(_) => BaseKind::Follow,
            ClientFrame::Unfollow(_) => BaseKind::Unfollow,
            ClientFrame::Follows(_) => BaseKind::Follows,
        }
    }

    /// The request type on the wire.
    pub fn name(self) -> &'static str {
        match self {
            BaseKind::NodeInfo => "node_info",
            BaseKind::Hello => "hello",
            BaseKind::Auth => "auth",
            BaseKind::Account => "account",
            BaseKind::CreateUser => "create_user",
            BaseKind::ReplaceKey => "replace_key",
            BaseKind::RemoveUser => "remove_user",
            BaseKind::Invitees => "invitees",
            BaseKind::Publish => "publish",
            BaseKind::Subscribe => "subscribe",
            BaseKind::Unsubscribe => "unsubscribe",
            BaseKind::Heads => "heads",
            BaseKind::Replicate => "replicate",
            BaseKind::Get => "get",
            BaseKind::AddIdentity => "add_identity",
            BaseKind::Identities => "identities",
            BaseKind::Follow => "follow",
            BaseKind::Unfollow => "unfollow",
            BaseKind::Follows => "follows",
        }
    }
}

/// What every base frame of a run may refer to.
#[derive(Debug, Clone)]
pub struct Env {
    /// The node's websocket URL.
    pub url: String,
    /// The node key.
    pub node_key: PublicKey,
    /// The run's fuzz account.
    pub fuzz: SecretKey,
    /// The canary entry stored at the start of the run.
    pub canary: Entry,
    /// Its id.
    pub canary_id: EntryId,
    /// The case's transcript.
    pub transcript: Transcript,
    /// The implementer's error-code map (their code -> spec code).
    pub error_map: Arc<BTreeMap<String, String>>,
}

/// A base frame, ready to be mutated and sent on its connection.
#[derive(Debug)]
pub struct Prepared {
    /// The connection, in the state the frame needs.
    pub wire: Wire,
    /// The valid frame.
    pub base: ClientFrame,
    /// The connection's state.
    pub state: HsState,
    /// The session's user.
    pub session_user: Option<PublicKey>,
    /// Codes a frame equal to the base may get when the node is not fresh.
    pub tolerated: Vec<ErrorCode>,
}

fn key(rng: &mut Rng) -> SecretKey {
    SecretKey::from_seed(rng.bytes32())
}

fn request_id(rng: &mut Rng) -> RequestId {
    match rng.below(10) {
        0 => RequestId::small(0),
        1 => RequestId::MAX,
        _ => RequestId::new(rng.range(1, 999)).unwrap_or(RequestId::MAX),
    }
}

fn words(rng: &mut Rng) -> String {
    const W: &[&str] = &["kith", "fuzz", "héllo", "frame", "node", "ünïcode", "🙂", "a\"b", "tab\t", "x"];
    (0..rng.range(1, 6)).map(|_| *rng.pick(W).unwrap_or(&"x")).collect::<Vec<_>>().join(" ")
}

fn name(rng: &mut Rng) -> AccountName {
    AccountName::new(format!("fz{}", rng.hex(16))).unwrap_or_else(|_| AccountName::new("fz").expect("valid name"))
}

/// Runs the handshake on `wire` as `user` with a peer key, hello id and ephemeral key drawn
/// from `rng`, through the driver's client session (the auth's id follows the hello's).
pub async fn login(wire: &mut Wire, node_key: PublicKey, user: &SecretKey, rng: &mut Rng) -> Result<(), String> {
    let peer = key(rng);
    let config = client_config(node_key, user, &peer, FAR_FUTURE_MS);
    wire.reset_session(ClientSession::starting_at(rng.range(1, 999)));
    wire.connection().log_in(config, rng.bytes32(), DEFAULT_WAIT).await.map(|_| ()).map_err(|e| e.to_string())
}

fn hello(node_key: PublicKey, user: &SecretKey, rng: &mut Rng) -> (ClientHandshake, kith_proto::handshake::Hello) {
    let peer = key(rng);
    let config = client_config(node_key, user, &peer, FAR_FUTURE_MS);
    let id = RequestId::new(rng.range(1, 999)).unwrap_or(RequestId::MAX);
    ClientHandshake::start(config, rng.bytes32(), id)
}

/// Creates a throwaway account under the session's user on `wire`; its key and name come
/// from `rng`, or are random when an earlier run against the same node took them.
async fn throwaway(wire: &mut Wire, rng: &mut Rng) -> Result<SecretKey, String> {
    let mut k = key(rng);
    let mut n = name(rng);
    for attempt in 0..2 {
        let frame = ClientFrame::CreateUser(CreateUser {
            id: RequestId::new(rng.range(1000, 1999)).unwrap_or(RequestId::MAX),
            key: k.public(),
            name: n.clone(),
            invite_allowance: 0,
            publish_allowance: 0,
        });
        wire.send_frame(&frame).await?;
        match wire.answer(DEFAULT_WAIT).await? {
            ServerFrame::CreateUserOk(_) => return Ok(k),
            ServerFrame::Error(e) if attempt == 0 && matches!(e.code, ErrorCode::KeyTaken | ErrorCode::NameTaken) => {
                wire.note("derived throwaway account taken (an earlier run?): a random one instead");
                k = SecretKey::random();
                n = AccountName::new(crate::client::fresh_name()).map_err(|e| e.to_string())?;
            }
            other => return Err(format!("creating a throwaway account: {}", other.to_text())),
        }
    }
    Err("could not create a throwaway account".into())
}

async fn connect(env: &Env, label: &str) -> Result<Wire, String> {
    let mut wire = Wire::connect(&env.url, label, env.transcript.clone(), DEFAULT_WAIT).await?;
    wire.set_error_map(env.error_map.clone());
    Ok(wire)
}

/// Builds the base frame of `kind` and the connection to send it on.
pub async fn prepare(kind: BaseKind, env: &Env, rng: &mut Rng) -> Result<Prepared, String> {
    let mut wire = connect(env, "fuzz").await?;
    let fuzz_user = env.fuzz.public();
    let mut state = HsState::Established;
    let mut session_user = Some(fuzz_user);
    let mut tolerated = Vec::new();
    match kind {
        BaseKind::NodeInfo | BaseKind::Hello => state = HsState::AwaitHello,
        BaseKind::Auth => state = HsState::AwaitAuth,
        BaseKind::ReplaceKey => {}
        _ => login(&mut wire, env.node_key, &env.fuzz, rng).await?,
    }
    if state != HsState::Established {
        session_user = None;
    }
    let id = request_id(rng);
    let canary_author = env.canary.author;
    let base = match kind {
        BaseKind::NodeInfo => ClientFrame::NodeInfo(NodeInfo { id }),
        BaseKind::Hello => {
            let (_, mut h) = hello(env.node_key, &env.fuzz, rng);
            h.id = id;
            ClientFrame::Hello(h)
        }
        BaseKind::Auth => {
            let (mut hs, h) = hello(env.node_key, &env.fuzz, rng);
            wire.send_frame(&ClientFrame::Hello(h)).await?;
            let challenge = match wire.answer(DEFAULT_WAIT).await? {
                ServerFrame::Challenge(c) => c,
                other => return Err(format!("expected challenge, got {}", other.to_text())),
            };
            ClientFrame::Auth(hs.handle_challenge(&challenge, id).map_err(|e| e.to_string())?)
        }
        BaseKind::Account => ClientFrame::Account(AccountRequest { id }),
        BaseKind::CreateUser => {
            tolerated = vec![ErrorCode::KeyTaken, ErrorCode::NameTaken];
            ClientFrame::CreateUser(CreateUser {
                id,
                key: key(rng).public(),
                name: name(rng),
                invite_allowance: rng.range(0, 2),
                publish_allowance: rng.range(0, 100),
            })
        }
        BaseKind::ReplaceKey => {
            // The throwaway account replaces its own key; the fuzz account only creates it.
            let mut setup = connect(env, "setup").await?;
            login(&mut setup, env.node_key, &env.fuzz, rng).await?;
            let t = throwaway(&mut setup, rng).await?;
            setup.close().await;
            login(&mut wire, env.node_key, &t, rng).await?;
            session_user = Some(t.public());
            tolerated = vec![ErrorCode::KeyTaken];
            let new = key(rng);
            ClientFrame::ReplaceKey(ReplaceKey {
                id,
                replacement: KeyReplacement::sign(env.node_key, &t, &new, FAR_FUTURE_MS),
            })
        }
        BaseKind::RemoveUser => {
            let t = throwaway(&mut wire, rng).await?;
            ClientFrame::RemoveUser(RemoveUser { id, key: t.public() })
        }
        BaseKind::Invitees => {
            ClientFrame::Invitees(Invitees { id, after: if rng.chance(50) { None } else { Some(key(rng).public()) } })
        }
        BaseKind::Publish => ClientFrame::Publish(Publish { id, entry: entry(rng, env) }),
        BaseKind::Subscribe => ClientFrame::Subscribe(Subscribe {
            id,
            filter: filter(rng, canary_author),
            backfill: if rng.chance(30) { None } else { Some(rng.range(0, 3)) },
        }),
        BaseKind::Unsubscribe => {
            let sub = RequestId::new(rng.range(2000, 2999)).unwrap_or(RequestId::MAX);
            let frame =
                ClientFrame::Subscribe(Subscribe { id: sub, filter: filter(rng, canary_author), backfill: Some(1) });
            wire.send_frame(&frame).await?;
            match wire.answer(DEFAULT_WAIT).await? {
                ServerFrame::SubscribeOk(_) => {}
                other => return Err(format!("expected subscribe_ok, got {}", other.to_text())),
            }
            await_stored_end(&mut wire, sub).await?;
            ClientFrame::Unsubscribe(Unsubscribe { id, sub })
        }
        BaseKind::Heads => {
            let mut authors = vec![canary_author];
            for _ in 0..rng.range(0, 2) {
                authors.insert(rng.index(authors.len() + 1), key(rng).public());
            }
            ClientFrame::Heads(Heads { id, authors })
        }
        BaseKind::Replicate => {
            ClientFrame::Replicate(Replicate { id, author: canary_author, after: 0, limit: rng.range(1, 5) })
        }
        BaseKind::Get => {
            if rng.chance(50) {
                ClientFrame::Get(Get { id, entry_id: Some(env.canary_id), author: None, seq: None })
            } else {
                ClientFrame::Get(Get { id, entry_id: None, author: Some(canary_author), seq: Some(1) })
            }
        }
        BaseKind::AddIdentity => {
            // The fuzz account writes many notes about fresh subjects: once it holds
            // `max_notes` of them, a valid note is refused at the quota ([IDENT-25]).
            tolerated = vec![ErrorCode::QuotaExceeded];
            ClientFrame::AddIdentity(AddIdentity { id, note: note(rng, &env.fuzz) })
        }
        BaseKind::Identities => ClientFrame::Identities(Identities { id, after: None }),
        BaseKind::Follow => {
            // Likewise for the follow set at `max_follows` ([IDENT-26]).
            tolerated = vec![ErrorCode::QuotaExceeded];
            ClientFrame::Follow(Follow { id, key: key(rng).public() })
        }
        BaseKind::Unfollow => ClientFrame::Unfollow(Unfollow { id, key: key(rng).public() }),
        BaseKind::Follows => ClientFrame::Follows(Follows { id, after: None }),
    };
    debug_assert_eq!(BaseKind::of(&base), kind);
    Ok(Prepared { wire, base, state, session_user, tolerated })
}

async fn await_stored_end(wire: &mut Wire, sub: RequestId) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + DEFAULT_WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now()).max(Duration::from_millis(1));
        match wire.recv(left).await {
            super::oracle::Item::Frame(t) => {
                if let ServerFrame::StoredEnd(e) = super::oracle::decode(&t)? {
                    if e.sub == sub {
                        return Ok(());
                    }
                }
            }
            other => return Err(format!("expected stored_end, got {}", super::oracle::show(&other))),
        }
    }
}

fn filter(rng: &mut Rng, canary_author: PublicKey) -> Filter {
    Filter {
        authors: vec![canary_author, key(rng).public()],
        threads: if rng.chance(50) { vec![EntryId::from_bytes(rng.bytes32())] } else { Vec::new() },
        mentions: if rng.chance(50) { vec![key(rng).public()] } else { Vec::new() },
    }
}

/// Entry 1 of a fresh author: valid whatever the node holds.
fn entry(rng: &mut Rng, env: &Env) -> Entry {
    let author = key(rng);
    let mut d = EntryDraft::first(BASE_TIMESTAMP_MS + rng.below(100_000_000_000)).text(&words(rng));
    for _ in 0..rng.range(0, 2) {
        d.mentions.push(key(rng).public());
    }
    if rng.chance(50) {
        d.refs.push(env.canary_id);
    }
    d.sign(&author)
}

fn note(rng: &mut Rng, author: &SecretKey) -> IdentityNote {
    let addresses =
        if rng.chance(30) { vec![format!("/ip4/127.0.0.1/ws/9/{}", key(rng).public())] } else { Vec::new() };
    IdentityNote::sign(
        author,
        key(rng).public(),
        &format!("fuzz {}", rng.hex(4)),
        addresses,
        &words(rng),
        BASE_TIMESTAMP_MS + rng.below(1_000_000),
    )
}

/// Valid frames of other request types, built without a connection, for splices.
pub fn donors(env: &Env, rng: &mut Rng) -> Vec<serde_json::Value> {
    let id = request_id(rng);
    let frames = [
        ClientFrame::NodeInfo(NodeInfo { id }),
        ClientFrame::Publish(Publish { id, entry: entry(rng, env) }),
        ClientFrame::Subscribe(Subscribe { id, filter: filter(rng, env.canary.author), backfill: Some(1) }),
        ClientFrame::Get(Get { id, entry_id: Some(env.canary_id), author: None, seq: None }),
        ClientFrame::Follow(Follow { id, key: key(rng).public() }),
        ClientFrame::AddIdentity(AddIdentity { id, note: note(rng, &env.fuzz) }),
        ClientFrame::Replicate(Replicate { id, author: env.canary.author, after: 0, limit: 1 }),
    ];
    let mut out = Vec::new();
    for _ in 0..2 {
        if let Some(f) = rng.pick(&frames) {
            out.push(serde_json::to_value(f).unwrap_or_default());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_type_has_a_base_kind() {
        let names: Vec<&str> = BaseKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, ClientFrame::TYPES);
    }
}
