//! The `FUZZ` family: seeded, reproducible fuzzing of every client request type, in the
//! manner of Autobahn|Testsuite's fuzzing modes.
//!
//! Case `FUZZ-i` of seed `S` draws everything from generators derived from `(S, i)`: the
//! request type of its valid base frame ([`base`]), one to three mutations ([`mutate`]) and
//! where they land. `--fuzz-seed S --only FUZZ-i` therefore sends the same frame again. (The
//! few bytes that depend on the node cannot repeat: the `auth` signature covers the node's
//! challenge, a key replacement names the node key, and a throwaway account whose derived
//! key an earlier run against the same node already took is replaced by a random one.)
//!
//! Each case sends its mutated frame in the state where the base frame is valid, then checks
//! ([`oracle`]): (a) every frame the node sends is a valid server frame, and the answer is the
//! one the spec's processing order gives for these exact bytes — the core's decoder says
//! which step fails; (b) the connection then closes exactly as the spec's tables say, or
//! stays open and answers a follow-up `node_info`; (c) a fresh connection logs in and reads
//! back, byte for byte, a canary entry stored at the start of the run; (d) all within time
//! limits.
//!
//! Safety: the fuzzed sessions belong to one fuzz account per run (created by the admin with a
//! generous allowance) or to throwaway accounts the cases create under it; no fuzzed frame is
//! ever sent in an admin session. Every entry published is one small entry of a fresh author.

pub mod base;
pub mod json;
pub mod mutate;
pub mod oracle;
pub mod rng;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kith_proto::entry::EntryDraft;
use kith_proto::feed::Get;
use kith_proto::node_info::NodeInfo;
use kith_proto::{ClientFrame, Entry, EntryId, ErrorCode, RequestId, SecretKey};
use tokio::sync::OnceCell;

use self::base::{BaseKind, Env};
use self::mutate::Mutation;
use self::oracle::{After, Expect, Item, Situation};
use self::rng::{Rng, Stream};
use crate::case::{entry_id, Case, CaseResult, Ctx, Failure, Level, Ops};
use crate::client::{self, ClientError, DEFAULT_WAIT};

/// The seed used unless `--fuzz-seed` says otherwise ("kith" in ASCII).
pub const DEFAULT_SEED: u64 = 0x6b69_7468;

/// How many fuzz cases run unless `--fuzz-cases` says otherwise: about 15 s of the release
/// runner against the release reference node on a 2-core machine at the default concurrency
/// (measured: 5000 cases in 11 to 15 s, 350 to 450 cases/s, with other builds running).
pub const DEFAULT_CASES: u64 = 5000;

/// The most cases a run may ask for (IDs have five digits).
pub const MAX_CASES: u64 = 99_999;

/// The id of the follow-up `node_info` that checks a connection stayed open.
pub const FOLLOW_UP_ID: RequestId = RequestId::small(4_242_424_242);

/// The family's ID prefix and what it covers (for the family table of reports).
pub const FAMILY: (&str, &str) = ("FUZZ", "seeded fuzzing of every request type (chapters 01, 05, 06)");

/// The requirements every fuzz case checks.
pub const REQUIREMENTS: &[&str] = &[
    "ENC-1", "ENC-2", "ENC-3", "ENC-4", "ENC-5", "ENC-6", "ENC-7", "ENC-8", "ENC-9", "FRAME-2", "FRAME-3", "FRAME-5",
    "FRAME-6", "FRAME-10", "FRAME-11", "FRAME-12", "FRAME-13", "FRAME-17", "FRAME-18", "FRAME-31", "FRAME-32",
    "FRAME-41", "HS-35", "HS-38",
];

/// How a run's fuzz family is set up.
#[derive(Debug, Clone)]
pub struct FuzzConfig {
    /// The seed.
    pub seed: u64,
    /// How many cases (0: none).
    pub cases: u64,
    /// Options to repeat in the replay command (the target: `--fault`, `--url`, `--launch`).
    pub replay_options: String,
}

impl Default for FuzzConfig {
    fn default() -> Self {
        FuzzConfig { seed: DEFAULT_SEED, cases: DEFAULT_CASES, replay_options: String::new() }
    }
}

/// What case `index` of `seed` does: its base request type and its mutations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The base frame's type.
    pub base: BaseKind,
    /// The mutations.
    pub mutations: Vec<Mutation>,
}

impl Plan {
    /// The plan of case `index` under `seed`.
    pub fn new(seed: u64, index: u64) -> Self {
        let mut rng = Rng::for_case(seed, index, Stream::Plan);
        let base = BaseKind::ALL[rng.index(BaseKind::ALL.len())];
        Plan { base, mutations: mutate::pick_mutations(&mut rng) }
    }

    /// One line: `publish: bit-flip + fragment`.
    pub fn title(&self) -> String {
        let m: Vec<&str> = self.mutations.iter().map(|m| m.name()).collect();
        format!("fuzz {}: {}", self.base.type_name(), m.join(" + "))
    }
}

/// The run-wide state every case shares: the fuzz account and the canary, set up once per
/// node.
#[derive(Debug, Clone)]
struct Setup {
    fuzz: SecretKey,
    canary: Entry,
    canary_id: EntryId,
}

/// A node's setup, once tried.
type SetupCell = OnceCell<Result<Setup, Failure>>;

struct Shared {
    config: FuzzConfig,
    /// Per node: the setup, or why it failed. A failed setup is not tried again: every case
    /// of the family depends on it and fails at once citing it.
    setups: Mutex<BTreeMap<String, Arc<SetupCell>>>,
    /// Per node: the case after which the canary could no longer be read (the node crashed,
    /// hung or lost data). Later cases are not run against that node: they would only wait
    /// out their timeouts and repeat the one finding.
    lost: Mutex<BTreeMap<String, String>>,
}

/// The fuzz cases of `config`, `FUZZ-00001` to `FUZZ-N`.
pub fn cases(config: &FuzzConfig) -> Vec<Case> {
    let shared = Arc::new(Shared {
        config: config.clone(),
        setups: Mutex::new(BTreeMap::new()),
        lost: Mutex::new(BTreeMap::new()),
    });
    (1..=config.cases.min(MAX_CASES))
        .map(|i| {
            let plan = Plan::new(config.seed, i);
            // A CLI run builds its case list once; the IDs and titles live as long as it does.
            let id: &'static str = Box::leak(format!("FUZZ-{i:05}").into_boxed_str());
            let title: &'static str = Box::leak(plan.title().into_boxed_str());
            let shared = shared.clone();
            Case::generated(
                id,
                Level::Must,
                REQUIREMENTS,
                title,
                Arc::new(move |ctx| Box::pin(run_case(ctx, shared.clone(), i))),
            )
            .timeout_ms(40_000)
        })
        .collect()
}

/// Creates (or finds, on a node an earlier run with this seed used) the fuzz account, and
/// stores the canary.
async fn setup(ctx: &mut Ctx, seed: u64) -> Result<Setup, Failure> {
    let mut r = Rng::for_run(seed, "fuzz-account");
    let fuzz = SecretKey::from_seed(r.bytes32());
    let name = format!("fz{}", r.hex(16));
    let mut admin = ctx.admin().await?;
    let big = 1u64 << 40;
    match admin.create_user(fuzz.public(), &name, big, big).await {
        Ok(_) => {}
        Err(ClientError::Refused(e)) if e.code == ErrorCode::KeyTaken => {}
        Err(ClientError::Refused(e)) if e.code == ErrorCode::NameTaken => {
            admin.create_user(fuzz.public(), &client::fresh_name(), big, big).await?;
        }
        Err(e) => return Err(Failure::fail("the admin to create the fuzz account", e.to_string())),
    }
    admin.conn.close().await;
    let mut s = ctx.login(&fuzz).await?;
    let canary_key = SecretKey::from_seed(Rng::for_run(seed, "canary").bytes32());
    let canary =
        EntryDraft::first(base::BASE_TIMESTAMP_MS).text(&format!("kith fuzz canary, seed {seed}")).sign(&canary_key);
    s.publish_ok(&canary).await?;
    s.conn.close().await;
    let canary_id = entry_id(&canary)?;
    Ok(Setup { fuzz, canary, canary_id })
}

async fn shared_setup(ctx: &mut Ctx, shared: &Shared) -> Result<Setup, Failure> {
    let cell = {
        let mut map = shared.setups.lock().map_err(|_| Failure::fail("the fuzz setup", "lock poisoned"))?;
        map.entry(ctx.target.url.clone()).or_default().clone()
    };
    let result = cell.get_or_init(|| setup(ctx, shared.config.seed)).await;
    result.clone().map_err(|f| {
        let rule = f.rule.clone();
        let mut f = Failure::fail(
            "the run's fuzz account and canary to be set up (once per node, before any fuzz frame)",
            if f.got.starts_with("prerequisite failed") {
                format!("{} (the fuzz family's setup logs in)", f.got)
            } else {
                format!("prerequisite failed: fuzz family setup: {}: {}", f.expected, f.got)
            },
        );
        f.rule = rule;
        f
    })
}

/// What a failing case reports besides the broken rule: enough to replay it.
struct Record {
    seed: u64,
    index: u64,
    replay_options: String,
    plan: Plan,
    details: Vec<String>,
    sent: Option<mutate::WireMessage>,
}

impl Record {
    fn failure(&self, expected: &str, problem: String) -> Failure {
        let mut got = format!(
            "{problem}\n    fuzz seed {}, case FUZZ-{:05}, base {}; mutations: {}",
            self.seed,
            self.index,
            self.plan.base.type_name(),
            if self.details.is_empty() { "(none applied yet)".into() } else { self.details.join("; ") },
        );
        if let Some(m) = &self.sent {
            let kind = match m.opcode {
                mutate::Opcode::Text => "text",
                mutate::Opcode::Binary => "binary",
            };
            let frags = if m.cuts.is_empty() { String::new() } else { format!(", fragments cut at {:?}", m.cuts) };
            got.push_str(&format!(
                "\n    frame sent ({kind}, {} bytes{frags}): {}",
                m.bytes.len(),
                wire::show_payload(&m.bytes)
            ));
        }
        got.push_str(&format!(
            "\n    replay: kith-conformance --fuzz-seed {} --only FUZZ-{:05}{}",
            self.seed, self.index, self.replay_options
        ));
        Failure::fail(expected, got)
    }
}

/// The least `max_requests_per_second` the family runs against: more than the messages any of
/// its connections sends (setup sessions included), so that no message is over the rate.
const MIN_RATE: u64 = 16;

async fn run_case(mut ctx: Ctx, shared: Arc<Shared>, index: u64) -> CaseResult {
    let seed = shared.config.seed;
    let mut rec = Record {
        seed,
        index,
        replay_options: shared.config.replay_options.clone(),
        plan: Plan::new(seed, index),
        details: Vec::new(),
        sent: None,
    };
    // A fuzz connection sends its messages unpaced; the oracle counts `rate_limited` as a
    // failure, which holds only while no connection sends more than the bucket holds (FRAME-47).
    if ctx.target.limits.max_requests_per_second < MIN_RATE {
        return Err(Failure::not_applicable(format!(
            "max_requests_per_second {} is below {MIN_RATE}, the most messages one fuzz connection sends unpaced",
            ctx.target.limits.max_requests_per_second
        )));
    }
    let lost = shared.lost.lock().ok().and_then(|l| l.get(&ctx.target.url).cloned());
    if let Some(at) = lost {
        return Err(Failure::not_applicable(format!("the node was lost in {at}; fix or replay that case first")));
    }
    let setup = shared_setup(&mut ctx, &shared).await.map_err(|f| {
        let mut out = rec.failure(&f.expected, f.got);
        out.rule = f.rule;
        out
    })?;
    let env = Env {
        url: ctx.target.url.clone(),
        node_key: ctx.target.node_key,
        fuzz: setup.fuzz.clone(),
        canary: setup.canary.clone(),
        canary_id: setup.canary_id,
        transcript: ctx.transcript().clone(),
        error_map: ctx.target.error_map.clone(),
    };
    let mut brng = Rng::for_case(seed, index, Stream::Base);
    let mut p = base::prepare(rec.plan.base, &env, &mut brng)
        .await
        .map_err(|e| rec.failure("a valid base frame in its state (the case's own setup)", e))?;
    let mut mrng = Rng::for_case(seed, index, Stream::Mutate);
    let donors = base::donors(&env, &mut mrng);
    let base_value = serde_json::to_value(&p.base).unwrap_or_default();
    let mutated = mutate::apply(&base_value, &rec.plan.mutations, &mut mrng, &donors);
    rec.details = mutated.details.clone();
    rec.sent = Some(mutated.message.clone());
    let expect = oracle::classify(&mutated.message, &situation(&p, &env));
    p.wire.note(&format!("base frame: {}", p.base.to_text()));
    p.wire.note(&format!("mutations: {}", mutated.details.join("; ")));
    p.wire.note(&format!("expected: {expect:?}"));
    p.wire.send_message(&mutated.message).await.map_err(|e| rec.failure("to send the frame", e))?;
    let verdict = observe(&mut p.wire, &expect).await;
    p.wire.close().await;
    if let Err(e) = verdict {
        // Is it the mutation, or does the valid frame it started from fail already (e.g. a
        // node that mishandles the base frame's non-ASCII text)?
        let base = match play_base(&env, &rec.plan, seed, index).await {
            Ok(()) => {
                "\n    the unmutated base frame, played on a fresh connection, passes: the mutation causes this".into()
            }
            Err(b) => format!(
                "\n    the unmutated base frame FAILS TOO, played on a fresh connection: {b}\n    \
                 so the cause is in the base frame ({}), not in the mutation",
                p.base.to_text()
            ),
        };
        return Err(rec.failure("the answer and connection fate the spec gives for these bytes", format!("{e}{base}")));
    }
    canary(&mut ctx, &env).await.map_err(|e| {
        if let Ok(mut l) = shared.lost.lock() {
            l.entry(env.url.clone()).or_insert_with(|| format!("FUZZ-{index:05}"));
        }
        rec.failure("a fresh connection to read back the canary intact", e)
    })
}

/// What the oracle needs to know of a prepared connection to judge a frame sent on it, read now
/// (the clock decides certificate and replacement expiry).
fn situation(p: &base::Prepared, env: &Env) -> Situation {
    Situation {
        state: p.state,
        base: p.base.clone(),
        tolerated: p.tolerated.clone(),
        node_key: env.node_key,
        session_user: p.session_user,
        now_ms: client::now_ms(),
    }
}

/// Plays case `index`'s base frame unmutated, in its state, and judges it as the oracle judges
/// any frame: `Err` says how the valid frame itself fails.
async fn play_base(env: &Env, plan: &Plan, seed: u64, index: u64) -> Result<(), String> {
    let mut brng = Rng::for_case(seed, index, Stream::Base);
    let mut p = base::prepare(plan.base, env, &mut brng).await.map_err(|e| format!("its setup: {e}"))?;
    let message =
        mutate::WireMessage { opcode: mutate::Opcode::Text, bytes: p.base.to_text().into_bytes(), cuts: Vec::new() };
    let expect = oracle::classify(&message, &situation(&p, env));
    p.wire.note("the unmutated base frame, to tell a base-frame problem from a mutation's");
    p.wire.send_message(&message).await?;
    let verdict = observe(&mut p.wire, &expect).await;
    p.wire.close().await;
    verdict
}

/// Reads the answer to the fuzz frame and what follows it, and judges both.
async fn observe(wire: &mut wire::Wire, expect: &Expect) -> Result<(), String> {
    let answer = next_non_push(wire).await?;
    let after = oracle::judge_answer(expect, &answer)?;
    let mut items = Vec::new();
    match after {
        After::Done => {}
        After::Open | After::MayClose => {
            if let Err(e) = wire.send_frame(&ClientFrame::NodeInfo(NodeInfo { id: FOLLOW_UP_ID })).await {
                wire.note(&format!("follow-up not sent: {e}"));
            }
            loop {
                let item = wire.recv(DEFAULT_WAIT).await;
                let done = match &item {
                    Item::Frame(t) => !oracle::decode(t).map(|f| is_subscription_push(&f)).unwrap_or(false),
                    _ => true,
                };
                items.push(item);
                if done {
                    break;
                }
            }
        }
        After::Close { .. } => loop {
            let item = wire.recv(DEFAULT_WAIT).await;
            let done = !matches!(item, Item::Frame(_)) || items.len() > 8;
            items.push(item);
            if done {
                break;
            }
        },
    }
    oracle::judge_after(&after, &items, FOLLOW_UP_ID)
}

fn is_subscription_push(f: &kith_proto::ServerFrame) -> bool {
    matches!(f, kith_proto::ServerFrame::Event(_) | kith_proto::ServerFrame::StoredEnd(_))
}

/// The first thing after the fuzz frame that is not a subscription push.
async fn next_non_push(wire: &mut wire::Wire) -> Result<Item, String> {
    let deadline = tokio::time::Instant::now() + DEFAULT_WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now()).max(Duration::from_millis(1));
        let item = wire.recv(left).await;
        if let Item::Frame(t) = &item {
            if is_subscription_push(&oracle::decode(t)?) {
                continue;
            }
        }
        return Ok(item);
    }
}

/// (c): a fresh connection logs in as the fuzz account and gets the canary by id.
async fn canary(ctx: &mut Ctx, env: &Env) -> Result<(), String> {
    let mut s = ctx.login(&env.fuzz).await.map_err(|f| format!("login on a fresh connection: {}", f.got))?;
    let id = s.conn.next_id();
    let frame = ClientFrame::Get(Get { id, entry_id: Some(env.canary_id), author: None, seq: None });
    let answer = match s.conn.send(&frame).await {
        Ok(()) => s.conn.await_answer(id, DEFAULT_WAIT).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    s.conn.close().await;
    oracle::judge_canary(&env.canary, id, &answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_stable_and_cover_every_request_type() {
        assert_eq!(Plan::new(DEFAULT_SEED, 42), Plan::new(DEFAULT_SEED, 42));
        let plans: Vec<Plan> = (1..=DEFAULT_CASES).map(|i| Plan::new(DEFAULT_SEED, i)).collect();
        for k in BaseKind::ALL {
            assert!(plans.iter().filter(|p| p.base == k).count() >= 50, "{k:?} is rare");
        }
        for (m, _) in mutate::WEIGHTED {
            assert!(plans.iter().any(|p| p.mutations.contains(m)), "{m:?} never drawn");
        }
    }

    #[test]
    fn ids_and_requirements() {
        let cases = cases(&FuzzConfig { seed: 1, cases: 12, replay_options: String::new() });
        assert_eq!(cases.len(), 12);
        assert_eq!(cases[0].id, "FUZZ-00001");
        assert_eq!(cases[11].id, "FUZZ-00012");
        assert!(cases.iter().all(|c| c.family() == "FUZZ" && c.title.starts_with("fuzz ")));
        let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/06-framing.md"))
            .unwrap_or_default()
            + &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/01-encodings.md"))
                .unwrap_or_default()
            + &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/05-handshake.md"))
                .unwrap_or_default();
        for r in REQUIREMENTS {
            assert!(spec.contains(&format!("[{r}]")), "{r} is not in the spec");
        }
    }
}
