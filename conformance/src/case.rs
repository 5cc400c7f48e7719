//! The case model: what a case is ([`Case`]), what it may ask of the target ([`Needs`]), the
//! context it runs in ([`Ctx`]) and the small vocabulary of steps and expectations cases are
//! written in ([`Step`], [`expect_error`], [`want!`](crate::want)).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use kith_proto::account::Account;
use kith_proto::entry::{EntryDraft, Kind};
use kith_proto::frame::ErrorFrame;
use kith_proto::node_info::Limits;
use kith_proto::VerifiedEntry;
use kith_proto::{verify_entry, ClientFrame, Entry, ErrorCode, PublicKey, RequestId, SecretKey, ServerFrame};
use serde::Serialize;

use crate::client::{self, ClientError, Connection, Incoming, Session, Transcript, DEFAULT_WAIT};
use crate::launch::{LaunchedNode, NodeConfig};

/// How binding a case's requirement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Level {
    /// A MUST: failing it fails the run.
    #[serde(rename = "MUST")]
    Must,
    /// A SHOULD: failing it is a warning.
    #[serde(rename = "SHOULD")]
    Should,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
        })
    }
}

/// What a case needs of the target beyond a running node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needs {
    /// Any node: runs against `--url` too, sharing the node with other cases.
    Shared,
    /// A node of its own launched with this configuration (a small budget, a restart); not
    /// applicable against `--url`.
    OwnNode(NodeConfig),
    /// A node of its own with this configuration when the runner launches nodes (e.g. a short
    /// handshake timeout); the shared node against `--url`.
    PreferOwnNode(NodeConfig),
}

/// Why a case did not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailKind {
    /// The node broke the expectation.
    Fail,
    /// The node answered `unsupported`.
    Unimplemented,
    /// The target cannot run this case (e.g. its limits make it impossible).
    NotApplicable,
}

/// A broken expectation: what the case expected and what it got.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// Fail, unimplemented or not applicable.
    pub kind: FailKind,
    /// What the case expected.
    pub expected: String,
    /// What happened instead.
    pub got: String,
    /// The requirement the node broke, when it is a more precise one than the case's own
    /// requirements (e.g. HS-35 for a close without the error code as reason in a
    /// certificate case) or a prerequisite's rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

impl Failure {
    /// A failed expectation.
    pub fn fail(expected: impl Into<String>, got: impl Into<String>) -> Self {
        Failure { kind: FailKind::Fail, expected: expected.into(), got: got.into(), rule: None }
    }

    /// A case the target cannot run.
    pub fn not_applicable(why: impl Into<String>) -> Self {
        Failure { kind: FailKind::NotApplicable, expected: why.into(), got: String::new(), rule: None }
    }

    /// Names the requirement actually broken (e.g. `"HS-35, FRAME-31"`).
    pub fn rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }
}

/// A step every login depends on, which the runner checks once before the cases run (a login
/// as the admin, an invite, a login of the invited user). When it fails, every case that needs
/// a login fails at once with this, instead of waiting out its own timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prerequisite {
    /// What failed: `login`, `admin invite`, ...
    pub what: String,
    /// The requirement the node broke.
    pub rule: &'static str,
    /// Exactly what happened.
    pub reason: String,
}

impl std::fmt::Display for Prerequisite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "prerequisite failed: {} ({}): {}", self.what, self.rule, self.reason)
    }
}

impl Prerequisite {
    /// The failure of a case that needed what failed.
    pub fn failure(&self) -> Failure {
        Failure::fail(format!("a working {} (probed once before the cases ran)", self.what), self.to_string())
            .rule(self.rule)
    }
}

/// What a failure converted from a client error expects; the runner adds the case's title.
pub const EXCHANGE: &str = "the exchange to complete";

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let kind = match &e {
            ClientError::Refused(f) if f.code == ErrorCode::Unsupported => FailKind::Unimplemented,
            _ => FailKind::Fail,
        };
        Failure { kind, expected: EXCHANGE.into(), got: e.to_string(), rule: None }
    }
}

/// What a case returns.
pub type CaseResult = Result<(), Failure>;

/// A case's body, as written by hand (see [`run!`](crate::run)).
pub type CaseFn = fn(Ctx) -> BoxFuture<'static, CaseResult>;

/// A case's body as the runner calls it: a plain [`CaseFn`], or a closure that carries the
/// parameters of a generated case (e.g. a fuzz case's seed and index).
pub type CaseRun = Arc<dyn Fn(Ctx) -> BoxFuture<'static, CaseResult> + Send + Sync>;

/// One conformance case.
#[derive(Clone)]
pub struct Case {
    /// Stable ID: family prefix and a name, never a position (e.g. `HS-VALID-001`).
    pub id: &'static str,
    /// One line saying what is checked.
    pub title: &'static str,
    /// The spec requirement IDs the case checks (without brackets).
    pub requirements: &'static [&'static str],
    /// MUST or SHOULD.
    pub level: Level,
    /// The case's own time limit.
    pub timeout: Duration,
    /// What it needs of the target.
    pub needs: Needs,
    /// Whether the case must run alone on a shared node: it saturates a node-wide resource
    /// (connections from the runner's address, handshakes in progress) that concurrent cases
    /// would also hit. Exclusive cases run one at a time after the others.
    pub exclusive: bool,
    /// The steps.
    pub run: CaseRun,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case").field("id", &self.id).field("requirements", &self.requirements).finish_non_exhaustive()
    }
}

impl Case {
    /// A case with the default timeout (10 s) that runs on any node.
    pub fn new(
        id: &'static str,
        level: Level,
        requirements: &'static [&'static str],
        title: &'static str,
        run: CaseFn,
    ) -> Self {
        Case {
            id,
            title,
            requirements,
            level,
            timeout: Duration::from_secs(10),
            needs: Needs::Shared,
            exclusive: false,
            run: Arc::new(run),
        }
    }

    /// A generated case (default timeout, any node) whose body carries its own parameters.
    pub fn generated(
        id: &'static str,
        level: Level,
        requirements: &'static [&'static str],
        title: &'static str,
        run: CaseRun,
    ) -> Self {
        Case { run, ..Case::new(id, level, requirements, title, |_| Box::pin(async { Ok(()) })) }
    }

    /// Sets the time limit.
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout = Duration::from_millis(ms);
        self
    }

    /// Asks for a node of its own, launched with `config`.
    pub fn own_node(mut self, config: NodeConfig) -> Self {
        self.needs = Needs::OwnNode(config);
        self
    }

    /// Prefers a node of its own, launched with `config`, but runs on any node.
    pub fn prefer_own_node(mut self, config: NodeConfig) -> Self {
        self.needs = Needs::PreferOwnNode(config);
        self
    }

    /// Marks the case as one that must run alone when it shares a node with other cases.
    pub fn exclusive(mut self) -> Self {
        self.exclusive = true;
        self
    }

    /// The family: the ID's prefix before the first `-`.
    pub fn family(&self) -> &'static str {
        self.id.split('-').next().unwrap_or(self.id)
    }
}

/// Defines a case body: `run!(|ctx| { ...; Ok(()) })`. A failure that comes from the node
/// refusing one of the case's connections at a small connection limit is graded not
/// applicable (see [`RefusalGuard`]).
#[macro_export]
macro_rules! run {
    (|$ctx:ident| $body:block) => {{
        fn body($ctx: $crate::case::Ctx) -> futures_util::future::BoxFuture<'static, $crate::case::CaseResult> {
            let guard = $ctx.refusal_guard();
            #[allow(unused_mut)]
            let mut $ctx = $ctx;
            Box::pin(async move {
                let result: $crate::case::CaseResult = async move $body.await;
                guard.grade(result)
            })
        }
        body
    }};
}

/// Per-address limits below this many connections, or pending-handshake limits below half of
/// it, are ones a case may need more of at once than the node allows (a case holds up to
/// about six connections, the runner's estimate).
const SMALL_CONNECTION_LIMIT: u64 = 8;

/// How long a connection may still be refused after the case's earlier connections closed:
/// the node learns of a close only when it reads it, and counts a connection until it has
/// ended it. An upper bound; the wait ends at the first success.
pub const SLOT_WINDOW: Duration = Duration::from_secs(3);

/// Whether `e` is the node refusing a connection at a connection limit ([FRAME-42],
/// [FRAME-43]): the `error` with id null, or the close 1013 that follows it.
pub fn refused_at_limit(e: &ClientError) -> bool {
    let limit_code =
        |c: &str| c == ErrorCode::TooManyConnections.as_str() || c == ErrorCode::TooManyHandshakes.as_str();
    match e {
        ClientError::Refused(f) => f.id.is_none() && limit_code(f.code.as_str()),
        ClientError::Closed(Some((1013, reason))) => limit_code(reason),
        _ => false,
    }
}

/// Grades a case's failure not applicable when it comes from the node refusing one of the
/// case's connections while the node's connection limits are smaller than what the case holds
/// at once (e.g. `max_connections_per_address` 1 and a case with a publisher and a
/// subscriber): the node is right, the case cannot run there. Cases that provoke refusals on
/// purpose (the `LIMIT` family) say so with [`Ctx::expect_refusals`] and are graded as they are.
pub struct RefusalGuard {
    transcript: Transcript,
    limits: Limits,
    expected: Arc<std::sync::atomic::AtomicBool>,
}

impl RefusalGuard {
    /// The case's result, or not applicable as described above.
    pub fn grade(&self, result: CaseResult) -> CaseResult {
        let Err(f) = result else { return result };
        if f.kind != FailKind::Fail || self.expected.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(f);
        }
        let (per_address, pending) = (self.limits.max_connections_per_address, self.limits.max_pending_handshakes);
        if per_address >= SMALL_CONNECTION_LIMIT && pending >= SMALL_CONNECTION_LIMIT / 2 {
            return Err(f);
        }
        let refused = self.transcript.lines().into_iter().find_map(|l| {
            let received = l.dir == client::Direction::Received;
            [ErrorCode::TooManyConnections, ErrorCode::TooManyHandshakes].into_iter().find(|c| {
                received && l.text.contains(&format!("\"code\":\"{}\"", c.as_str())) && l.text.contains("\"id\":null")
            })
        });
        match refused {
            Some(code) => Err(Failure::not_applicable(format!(
                "the node refused one of the case's connections with {code} (max_connections_per_address \
                 {per_address}, max_pending_handshakes {pending}): the case holds more connections at once than \
                 these limits allow"
            ))),
            None => Err(f),
        }
    }
}

/// Extracts a variant from a server frame or fails the case: `want!(frame, PublishOk)`.
/// An `unsupported` error grades the case unimplemented.
#[macro_export]
macro_rules! want {
    ($frame:expr, $variant:ident) => {
        match $frame {
            kith_proto::ServerFrame::$variant(x) => x,
            other => return Err($crate::case::unexpected(stringify!($variant), &other)),
        }
    };
}

/// The wire `type` of a frame named by its Rust variant (`PublishOk` -> `publish_ok`); a name
/// that is already a wire type is returned as it is.
pub fn wire_type(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// The failure for a frame of the wrong kind: "a `publish_ok` frame", with the frame that came
/// as its wire text.
pub fn unexpected(expected: &str, got: &ServerFrame) -> Failure {
    let kind = match got {
        ServerFrame::Error(e) if e.code == ErrorCode::Unsupported => FailKind::Unimplemented,
        _ => FailKind::Fail,
    };
    Failure { kind, expected: format!("a `{}` frame", wire_type(expected)), got: got.to_text(), rule: None }
}

/// Expects an error frame with `code`.
pub fn expect_error(frame: ServerFrame, code: ErrorCode) -> Result<ErrorFrame, Failure> {
    match frame {
        ServerFrame::Error(e) if e.code == code => Ok(e),
        ServerFrame::Error(e) if e.code == ErrorCode::Unsupported => Err(Failure {
            kind: FailKind::Unimplemented,
            expected: format!("error `{code}`"),
            got: ServerFrame::Error(e).to_text(),
            rule: None,
        }),
        other => Err(Failure::fail(format!("error `{code}`"), other.to_text())),
    }
}

/// How a close looks on the wire: `close 1008 "bad_certificate"`, or `no close frame`.
pub fn show_close(close: &Option<(u16, String)>) -> String {
    match close {
        Some((code, reason)) => format!("close {code} {reason:?}"),
        None => "the connection ended without a close frame".into(),
    }
}

/// After the frame that ends a connection (`after`: an error in reply to `hello` or `auth`,
/// `handshake_timeout`, `frame_too_large`, a `closing` push), the next thing from the node must
/// be the close, with close code `code` and reason `reason` ([FRAME-31]); any frame first breaks
/// [FRAME-32]. Frames that came earlier and are still unread count too: nothing the node sent on
/// the connection may go unread.
pub async fn expect_close_only(conn: &mut Connection, after: &str, code: u16, reason: &str) -> CaseResult {
    let want = format!("close {code} {reason:?}");
    match conn.recv(Duration::from_secs(3)).await {
        Ok(Incoming::Closed(Some((c, r)))) if c == code && r == reason => Ok(()),
        Ok(Incoming::Closed(other)) => {
            Err(Failure::fail(format!("{want} after {after} (FRAME-31)"), show_close(&other)))
        }
        Ok(Incoming::Text(t)) => {
            Err(Failure::fail(format!("nothing but {want} after {after} (FRAME-32)"), format!("the frame {t}")))
        }
        Ok(Incoming::Binary(b)) => Err(Failure::fail(
            format!("nothing but {want} after {after} (FRAME-32)"),
            format!("a binary frame of {} bytes", b.len()),
        )),
        Err(ClientError::Timeout(_)) => {
            Err(Failure::fail(format!("{want} within 3 s after {after}"), "the connection stayed open"))
        }
        Err(e) => Err(Failure::fail(format!("{want} after {after}"), e.to_string())),
    }
}

/// Expects `answer` to be the error `code`, and then nothing but the close with `close_code`
/// and the error code as reason ([HS-35], [FRAME-31], [FRAME-32]): the ending of a refused
/// `hello` or `auth` (1008), a `frame_too_large` (1009) or a `handshake_timeout` (1008).
pub async fn expect_error_then_close(
    conn: &mut Connection,
    answer: ServerFrame,
    code: ErrorCode,
    close_code: u16,
) -> Result<ErrorFrame, Failure> {
    let e = expect_error(answer, code)?;
    expect_close_only(conn, &format!("error {code}"), close_code, code.as_str()).await?;
    Ok(e)
}

/// Expects the result of a request to be an error frame with `code` (an answer that does not
/// come is a failure too).
pub fn expect_refused(answer: Result<ServerFrame, ClientError>, code: ErrorCode) -> Result<ErrorFrame, Failure> {
    match answer {
        Ok(frame) => expect_error(frame, code),
        Err(ClientError::Refused(e)) => expect_error(ServerFrame::Error(e), code),
        Err(e) => Err(Failure::fail(format!("error `{code}`"), e.to_string())),
    }
}

/// Fails unless `cond` holds; `got` is shown in wire spelling (see [`shown`]).
pub fn check(cond: bool, expected: impl Into<String>, got: impl std::fmt::Debug) -> CaseResult {
    if cond {
        Ok(())
    } else {
        Err(Failure::fail(expected, shown(&got)))
    }
}

/// Fails unless `got == want`; both are shown in wire spelling (see [`shown`]).
pub fn check_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> CaseResult {
    if got == want {
        Ok(())
    } else {
        Err(Failure::fail(format!("{what} = {}", shown(&want)), shown(&got)))
    }
}

/// A value as an implementer reads it on the wire, from its Rust `Debug` form: keys, ids and
/// signatures as their hex (not `PublicKey(…)`), error codes by their wire spelling
/// (`bad_certificate`, not `BadCertificate`), and a websocket close `(code, reason)` as
/// `close 1008 "bad_certificate"` (not `Some((1008, "bad_certificate"))`).
pub fn shown<T: std::fmt::Debug + ?Sized>(value: &T) -> String {
    wire_spelling(&format!("{value:?}"))
}

fn wire_spelling(debug: &str) -> String {
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    while !rest.is_empty() {
        // A close: `Some((1008, "reason"))`.
        if let Some((code, reason, len)) = close_at(rest) {
            if reason.is_empty() {
                out.push_str(&format!("close {code} with no reason"));
            } else {
                out.push_str(&format!("close {code} \"{reason}\""));
            }
            rest = &rest[len..];
            continue;
        }
        // A string literal is copied as it is.
        if rest.starts_with('"') {
            let end = string_end(rest);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        let ident_len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        if ident_len == 0 {
            let ch = rest.chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[..ch]);
            rest = &rest[ch..];
            continue;
        }
        let ident = &rest[..ident_len];
        let after = &rest[ident_len..];
        let wrapper = ["PublicKey", "Signature", "EntryId", "EphemeralKey"].contains(&ident);
        if let (true, Some(inner)) = (wrapper, after.strip_prefix('(')) {
            if let Some(close) = inner.find(')') {
                out.push_str(&inner[..close]);
                rest = &inner[close + 1..];
                continue;
            }
        }
        // An error code variant, standing alone (not a field name or a type path).
        let alone = !after.starts_with(['(', ':', '{']) && !out.ends_with("::");
        match ErrorCode::ALL.iter().find(|c| alone && format!("{c:?}") == ident) {
            Some(c) => out.push_str(c.as_str()),
            None => out.push_str(ident),
        }
        rest = after;
    }
    out
}

/// The length of the string literal at the start of `s` (escapes honoured).
fn string_end(s: &str) -> usize {
    let mut escaped = false;
    for (i, ch) in s.char_indices().skip(1) {
        match ch {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return i + 1,
            _ => {}
        }
    }
    s.len()
}

/// A `Some((code, "reason"))` at the start of `s`: the code, the reason (still escaped) and the
/// length it takes.
fn close_at(s: &str) -> Option<(u16, &str, usize)> {
    let body = s.strip_prefix("Some((")?;
    let comma = body.find(", \"")?;
    let code: u16 = body[..comma].parse().ok()?;
    let lit = &body[comma + 2..];
    let end = string_end(lit);
    let tail = lit[end..].strip_prefix("))")?;
    let len = s.len() - tail.len();
    Some((code, &lit[1..end.saturating_sub(1)], len))
}

/// What a case knows of the node under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// The websocket URL.
    pub url: String,
    /// The node key (the admin's user key).
    pub node_key: PublicKey,
    /// The admin's secret key.
    pub admin: SecretKey,
    /// The node's declared limits.
    pub limits: Limits,
    /// The implementer's error-code map (their code -> spec code).
    pub error_map: Arc<BTreeMap<String, String>>,
    /// Set when the runner's login probe failed: every login then fails at once with it.
    pub prerequisite: Option<Arc<Prerequisite>>,
}

/// Reads the node's `node_info` over a fresh connection.
pub async fn fetch_limits(url: &str) -> Result<kith_proto::node_info::NodeInfoOk, ClientError> {
    let mut c = Connection::open(url).await?;
    let answer = c.request(|id| ClientFrame::NodeInfo(kith_proto::node_info::NodeInfo { id }), DEFAULT_WAIT).await?;
    c.close().await;
    match answer {
        ServerFrame::NodeInfoOk(ok) => Ok(ok),
        ServerFrame::Error(e) => Err(ClientError::Refused(e)),
        other => Err(ClientError::Unexpected { expected: "node_info_ok", got: other.to_text() }),
    }
}

/// The context a case runs in: the target, its transcript and, for cases with a node of their
/// own, the node itself.
pub struct Ctx {
    /// The node under test.
    pub target: Target,
    node: Option<LaunchedNode>,
    transcript: Transcript,
    conns: u32,
    refusals_expected: Arc<std::sync::atomic::AtomicBool>,
}

impl Ctx {
    /// A context recording into `transcript`.
    pub fn new(target: Target, node: Option<LaunchedNode>, transcript: Transcript) -> Self {
        Ctx { target, node, transcript, conns: 0, refusals_expected: Arc::default() }
    }

    /// The guard that [`run!`](crate::run) applies to the case's result.
    pub fn refusal_guard(&self) -> RefusalGuard {
        RefusalGuard {
            transcript: self.transcript.clone(),
            limits: self.target.limits.clone(),
            expected: self.refusals_expected.clone(),
        }
    }

    /// Declares that the case provokes connection refusals on purpose, so that a failure is
    /// never excused by one.
    pub fn expect_refusals(&self) {
        self.refusals_expected.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The transcript the case's connections record into.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// The time a single answer may take.
    pub fn wait(&self) -> Duration {
        DEFAULT_WAIT
    }

    /// Opens an unauthenticated connection.
    pub async fn connect(&mut self) -> Result<Connection, Failure> {
        self.conns += 1;
        let label = format!("c{}", self.conns);
        self.connect_as(&label).await
    }

    async fn connect_as(&mut self, label: &str) -> Result<Connection, Failure> {
        let mut c = Connection::connect(&self.target.url, label, self.transcript.clone(), DEFAULT_WAIT).await?;
        c.set_error_map(self.target.error_map.clone());
        Ok(c)
    }

    /// Fails at once when the runner's login probe failed (see [`Prerequisite`]).
    fn logins_work(&self) -> Result<(), Failure> {
        match &self.target.prerequisite {
            Some(p) => Err(p.failure()),
            None => Ok(()),
        }
    }

    /// Logs in as `user` on a new connection.
    pub async fn login(&mut self, user: &SecretKey) -> Result<Session, Failure> {
        self.logins_work()?;
        self.login_as(None, user).await
    }

    /// Logs in as the admin.
    pub async fn admin(&mut self) -> Result<Session, Failure> {
        self.logins_work()?;
        let admin = self.target.admin.clone();
        self.login_as(Some("admin"), &admin).await
    }

    /// Logs in on a new connection (labelled `label`, or the next `cN`). A connection the node
    /// refuses at a connection limit is tried again for [`SLOT_WINDOW`]: a connection the case
    /// (or the runner, just before) closed may still count until the node has ended it.
    async fn login_as(&mut self, label: Option<&str>, user: &SecretKey) -> Result<Session, Failure> {
        let start = std::time::Instant::now();
        loop {
            let c = match label {
                Some(l) => self.connect_as(l).await?,
                None => self.connect().await?,
            };
            match client::handshake(c, self.target.node_key, user, DEFAULT_WAIT).await {
                Ok(s) => return Ok(s),
                Err(e) if refused_at_limit(&e) && start.elapsed() < SLOT_WINDOW => {
                    self.transcript.push(
                        "runner",
                        client::Direction::Note,
                        "refused at a connection limit; trying again",
                    );
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Logs in as `user` on a new connection with a certificate that expires at `expires`.
    pub async fn login_until(&mut self, user: &SecretKey, expires: u64) -> Result<Session, Failure> {
        self.logins_work()?;
        let c = self.connect().await?;
        Ok(client::handshake_until(c, self.target.node_key, user, DEFAULT_WAIT, expires).await?)
    }

    /// Has the admin invite a fresh user with these allowances; returns its key and account.
    pub async fn invite(
        &mut self,
        invite_allowance: u64,
        publish_allowance: u64,
    ) -> Result<(SecretKey, Account), Failure> {
        let mut admin = self.admin().await?;
        let r = admin.invite_user(invite_allowance, publish_allowance).await?;
        admin.conn.close().await;
        // The node's close answers ours; the admin's connection stops counting soon after.
        let _ = admin.conn.await_close(DEFAULT_WAIT).await;
        Ok(r)
    }

    /// A fresh user (invite allowance 10, publish allowance 1000), logged in.
    pub async fn user(&mut self) -> Result<Session, Failure> {
        self.user_with(10, 1000).await
    }

    /// A fresh user with these allowances, logged in.
    pub async fn user_with(&mut self, invite_allowance: u64, publish_allowance: u64) -> Result<Session, Failure> {
        let (key, _) = self.invite(invite_allowance, publish_allowance).await?;
        self.login(&key).await
    }

    /// Restarts the case's own node (SIGKILL when `crash`), keeping its data and admin.
    pub async fn restart(&mut self, crash: bool) -> CaseResult {
        self.restart_with(crash, None).await
    }

    /// Restarts the case's own node, with a new configuration if given.
    pub async fn restart_with(&mut self, crash: bool, config: Option<NodeConfig>) -> CaseResult {
        let Some(node) = self.node.take() else {
            return Err(Failure::not_applicable("restart needs a launched node"));
        };
        self.transcript.push("runner", client::Direction::Note, if crash { "node killed" } else { "node stopped" });
        let node = match config {
            Some(c) => node.restart_with(crash, c).await,
            None => node.restart(crash).await,
        }
        .map_err(|e| Failure::fail("the node to start again", e.to_string()))?;
        self.target.url = node.url().to_owned();
        self.transcript.push("runner", client::Direction::Note, &format!("node restarted at {}", node.url()));
        self.node = Some(node);
        Ok(())
    }

    /// Takes the launched node out of the context (so the runner can stop it).
    pub fn take_node(&mut self) -> Option<LaunchedNode> {
        self.node.take()
    }
}

/// Request helpers that turn client errors into case failures.
#[allow(async_fn_in_trait)]
pub trait Ops {
    /// The connection.
    fn c(&mut self) -> &mut Connection;

    /// Sends a typed request with a fresh id and returns the answer.
    async fn call(&mut self, build: impl FnOnce(RequestId) -> ClientFrame + Send) -> Result<ServerFrame, Failure> {
        Ok(self.c().request(build, DEFAULT_WAIT).await?)
    }

    /// Sends a raw JSON request (its `id` is set) and returns the answer.
    async fn call_json(&mut self, value: serde_json::Value) -> Result<ServerFrame, Failure> {
        Ok(self.c().request_json(value, DEFAULT_WAIT).await?)
    }

    /// Publishes an entry and returns the answer.
    async fn publish(&mut self, entry: &Entry) -> Result<ServerFrame, Failure> {
        let entry = entry.clone();
        self.call(move |id| ClientFrame::Publish(kith_proto::feed::Publish { id, entry })).await
    }

    /// Publishes an entry that must be accepted.
    async fn publish_ok(&mut self, entry: &Entry) -> Result<kith_proto::feed::PublishOk, Failure> {
        let answer = self.publish(entry).await?;
        Ok(want!(answer, PublishOk))
    }

    /// Publishes an entry that must be refused with `code`.
    async fn publish_refused(&mut self, entry: &Entry, code: ErrorCode) -> CaseResult {
        let answer = self.publish(entry).await?;
        expect_error(answer, code).map(|_| ())
    }

    /// Publishes raw entry JSON and expects `code`.
    async fn publish_raw_refused(&mut self, entry: serde_json::Value, code: ErrorCode) -> CaseResult {
        let answer = self.call_json(serde_json::json!({"type": "publish", "entry": entry})).await?;
        expect_error(answer, code).map(|_| ())
    }

    /// The session's account, fresh from the node.
    async fn account(&mut self) -> Result<Account, Failure> {
        let answer = self.call(|id| ClientFrame::Account(kith_proto::account::AccountRequest { id })).await?;
        Ok(want!(answer, AccountOk).account)
    }
}

impl Ops for Connection {
    fn c(&mut self) -> &mut Connection {
        self
    }
}

impl Ops for Session {
    fn c(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

/// Most `replicate` pages [`replicate_all`] asks for before it gives up on catching up.
const MAX_REPLICATE_PAGES: usize = 10_000;

/// Publishes the next `n` entries of `feed` (texts `entry 0`, `entry 1`, ...), each answered
/// `publish_ok`, and returns them.
pub async fn publish_chain(s: &mut Session, feed: &mut Feed, n: u64) -> Result<Vec<Entry>, Failure> {
    let mut out = Vec::new();
    for i in 0..n {
        let e = feed.next(&format!("entry {i}"));
        s.publish_ok(&e).await?;
        out.push(e);
    }
    Ok(out)
}

/// The held part of `author`'s feed above `after`, read as a client must read it: `replicate`
/// pages of `max_replicate` entries (the node's reported limit, HS-10), each starting after the
/// last seq of the one before, until a page is empty or reaches the head. Each page must be
/// ascending, above its `after`, and no longer than asked ([FEED-25]). Returns every entry read,
/// with the last page's `head` and `pruned_through`.
pub async fn replicate_all(
    s: &mut impl Ops,
    max_replicate: u64,
    author: PublicKey,
    after: u64,
) -> Result<kith_proto::feed::ReplicateOk, Failure> {
    let limit = max_replicate.max(1);
    let mut after = after;
    let mut all = Vec::new();
    for _ in 0..MAX_REPLICATE_PAGES {
        let answer =
            s.call(move |id| ClientFrame::Replicate(kith_proto::feed::Replicate { id, author, after, limit })).await?;
        let page = want!(answer, ReplicateOk);
        let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
        check(
            seqs.len() as u64 <= limit,
            format!("at most {limit} entries in a replicate_ok (limit and max_replicate {limit})"),
            seqs.len(),
        )?;
        check(
            seqs.first().is_none_or(|f| *f > after) && seqs.windows(2).all(|w| w[0] < w[1]),
            format!("the held seqs above {after} in ascending order"),
            &seqs,
        )?;
        let caught_up = match seqs.last() {
            None => true,
            Some(last) => page.head.is_none_or(|h| *last >= h),
        };
        if let Some(last) = seqs.last() {
            after = *last;
        }
        all.extend(page.entries);
        if caught_up {
            return Ok(kith_proto::feed::ReplicateOk { entries: all, ..page });
        }
    }
    Err(Failure::fail(
        format!("the feed read to its head within {MAX_REPLICATE_PAGES} replicate pages"),
        format!("{} entries read, still below the head", all.len()),
    ))
}

/// A feed being written: the author's key and the last entry, to chain the next one.
#[derive(Debug, Clone)]
pub struct Feed {
    /// The author.
    pub key: SecretKey,
    /// The last entry built.
    pub last: Option<VerifiedEntry>,
    /// Every entry built, in order.
    pub all: Vec<VerifiedEntry>,
}

impl Feed {
    /// A new feed by `key`.
    pub fn new(key: &SecretKey) -> Self {
        Feed { key: key.clone(), last: None, all: Vec::new() }
    }

    /// A new feed by a fresh key (an author with no account on the node).
    pub fn stranger() -> Self {
        Feed::new(&SecretKey::random())
    }

    /// The draft of the next entry: timestamp now, and always strictly after the last one's,
    /// so that a case not about timestamps never depends on how a node treats equal ones
    /// (ENTRY-27 has its own case).
    pub fn draft(&self) -> EntryDraft {
        let now = client::now_ms();
        match &self.last {
            None => EntryDraft::first(now),
            Some(last) => EntryDraft::after(last, now.max(last.entry.timestamp.saturating_add(1))),
        }
    }

    /// Signs a draft, records it as the last entry and returns it.
    pub fn push(&mut self, draft: EntryDraft) -> Entry {
        let entry = draft.sign(&self.key);
        if let Ok(v) = verify_entry(&entry) {
            self.last = Some(v.clone());
            self.all.push(v);
        }
        entry
    }

    /// The next entry with a text body.
    pub fn next(&mut self, text: &str) -> Entry {
        let d = self.draft().text(text);
        self.push(d)
    }

    /// The author's public key.
    pub fn author(&self) -> PublicKey {
        self.key.public()
    }
}

/// The id of an entry (the entry must be well-formed).
pub fn entry_id(entry: &Entry) -> Result<kith_proto::EntryId, Failure> {
    verify_entry(entry).map(|v| v.id).map_err(|e| Failure::fail("a valid test entry", e.to_string()))
}

/// Canonical size of an entry in bytes.
pub fn entry_size(entry: &Entry) -> u64 {
    entry.canonical_bytes().len() as u64
}

/// An entry kind.
pub fn kind(k: &str) -> Result<Kind, Failure> {
    Kind::new(k).map_err(|e| Failure::fail("a valid test kind", e.to_string()))
}

/// An entry as a JSON value, for hand-made corruption.
pub fn entry_json(entry: &Entry) -> serde_json::Value {
    serde_json::to_value(entry).unwrap_or_default()
}

/// A fresh user's session and the first entry of their own feed, built from a draft that
/// `edit` changes before it is signed.
pub async fn own_first_entry(
    ctx: &mut Ctx,
    edit: impl FnOnce(&mut EntryDraft) + Send,
) -> Result<(Session, Entry), Failure> {
    let s = ctx.user().await?;
    let mut feed = Feed::new(&s.user);
    let mut d = feed.draft();
    edit(&mut d);
    let e = feed.push(d);
    Ok((s, e))
}

/// A fresh user publishes the first entry of their own feed, its draft changed by `edit`,
/// and it must be refused with `code`.
pub async fn draft_refused(ctx: &mut Ctx, code: ErrorCode, edit: impl FnOnce(&mut EntryDraft) + Send) -> CaseResult {
    let (mut s, e) = own_first_entry(ctx, edit).await?;
    s.publish_refused(&e, code).await
}

/// A fresh user publishes the first entry of their own feed, its draft changed by `edit`,
/// and it must be accepted.
pub async fn draft_accepted(ctx: &mut Ctx, edit: impl FnOnce(&mut EntryDraft) + Send) -> CaseResult {
    let (mut s, e) = own_first_entry(ctx, edit).await?;
    s.publish_ok(&e).await.map(|_| ())
}

/// A fresh user publishes entry 1 of their own feed (text "1"), then entry 2 built from a
/// draft that `edit` changes, given entry 1; entry 2 must be refused with `code`, or
/// accepted when `code` is `None`.
pub async fn successor(
    ctx: &mut Ctx,
    code: Option<ErrorCode>,
    edit: impl FnOnce(&mut EntryDraft, &Entry) + Send,
) -> CaseResult {
    let mut s = ctx.user().await?;
    let mut feed = Feed::new(&s.user);
    let first = feed.next("1");
    s.publish_ok(&first).await?;
    let mut d = feed.draft();
    edit(&mut d, &first);
    let e = feed.push(d);
    match code {
        Some(code) => s.publish_refused(&e, code).await,
        None => s.publish_ok(&e).await.map(|_| ()),
    }
}

/// A fresh user publishes their first entry (text "x") as JSON that `edit` corrupts, and it
/// must be refused with `code`.
pub async fn raw_entry_refused(
    ctx: &mut Ctx,
    code: ErrorCode,
    edit: impl FnOnce(&mut serde_json::Value) + Send,
) -> CaseResult {
    let mut s = ctx.user().await?;
    let mut v = entry_json(&Feed::new(&s.user).next("x"));
    edit(&mut v);
    s.publish_raw_refused(v, code).await
}

/// What the id in an expected error frame must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdIs {
    /// `null`.
    Null,
    /// This number.
    Is(u64),
    /// Anything.
    Any,
}

/// One step of a scripted exchange on one connection.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send this text frame exactly.
    Send(String),
    /// Send a binary frame.
    SendBinary(Vec<u8>),
    /// Expect an error frame with this id and code within the default wait.
    ExpectError(IdIs, ErrorCode),
    /// Expect a frame of this `type`, answering this id.
    ExpectType(&'static str, IdIs),
    /// Expect the node to close the connection within this many milliseconds; the close code
    /// must be this one if given.
    ExpectClose(u64, Option<u16>),
    /// Expect the connection to stay open: a `node_info` still gets its answer.
    StillOpen,
}

/// Plays scripted steps on a connection.
pub async fn play(conn: &mut Connection, steps: &[Step]) -> CaseResult {
    for step in steps {
        match step {
            Step::Send(text) => conn.send_text(text).await?,
            Step::SendBinary(b) => conn.send_binary(b.clone()).await?,
            Step::ExpectError(id, code) => {
                let frame = recv_or_fail(conn, &format!("error {code}")).await?;
                let e = expect_error(frame, *code)?;
                check_id(*id, e.id.map(RequestId::get))?;
            }
            Step::ExpectType(ty, id) => {
                let frame = recv_or_fail(conn, ty).await?;
                if frame.type_name() != *ty {
                    return Err(unexpected(ty, &frame));
                }
                check_id(*id, frame.answers().map(RequestId::get))?;
            }
            Step::ExpectClose(ms, code) => {
                // Nothing but the close: a frame first is not the close the step expects.
                let want = code.map(|c| format!("close {c}")).unwrap_or_else(|| "a close".into());
                let closed = match conn.recv(Duration::from_millis(*ms)).await {
                    Ok(Incoming::Closed(c)) => c,
                    Ok(Incoming::Text(t)) => {
                        return Err(Failure::fail(format!("{want} and no frame before it"), format!("the frame {t}")))
                    }
                    Ok(Incoming::Binary(_)) => {
                        return Err(Failure::fail(format!("{want} and no frame before it"), "a binary frame"))
                    }
                    Err(_) => {
                        return Err(Failure::fail(
                            format!("the node to close the connection within {ms} ms"),
                            "still open",
                        ))
                    }
                };
                if let Some(code) = code {
                    let got = closed.as_ref().map(|c| c.0);
                    if got != Some(*code) {
                        return Err(Failure::fail(format!("close code {code}"), client::show_close(&closed)));
                    }
                }
            }
            Step::StillOpen => {
                let answer = conn
                    .request(|id| ClientFrame::NodeInfo(kith_proto::node_info::NodeInfo { id }), DEFAULT_WAIT)
                    .await
                    .map_err(|e| Failure::fail("the connection to stay open and answer node_info", e.to_string()))?;
                if !matches!(answer, ServerFrame::NodeInfoOk(_)) {
                    return Err(unexpected("node_info_ok", &answer));
                }
            }
        }
    }
    Ok(())
}

async fn recv_or_fail(conn: &mut Connection, what: &str) -> Result<ServerFrame, Failure> {
    match conn.recv(DEFAULT_WAIT).await {
        Ok(Incoming::Text(t)) => ServerFrame::parse(&t).map_err(|e| Failure::fail(what, format!("{t} ({e})"))),
        Ok(Incoming::Binary(_)) => Err(Failure::fail(what, "a binary frame")),
        Ok(Incoming::Closed(c)) => Err(Failure::fail(what, format!("connection closed: {}", client::show_close(&c)))),
        Err(e) => Err(Failure::fail(what, e.to_string())),
    }
}

fn check_id(want: IdIs, got: Option<u64>) -> CaseResult {
    let ok = match want {
        IdIs::Null => got.is_none(),
        IdIs::Is(n) => got == Some(n),
        IdIs::Any => true,
    };
    let show = |id: Option<u64>| id.map_or("null".to_owned(), |i| i.to_string());
    let want_text = match want {
        IdIs::Null => "null".to_owned(),
        IdIs::Is(n) => n.to_string(),
        IdIs::Any => "any".to_owned(),
    };
    check(ok, format!("id {want_text}"), format_args!("id {}", show(got)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_use_wire_spellings() {
        assert_eq!(wire_type("PublishOk"), "publish_ok");
        assert_eq!(wire_type("NodeInfoOk"), "node_info_ok");
        assert_eq!(wire_type("node_info_ok"), "node_info_ok");
        let close: Option<(u16, String)> = Some((1008, "bad_certificate".into()));
        assert_eq!(shown(&close), r#"close 1008 "bad_certificate""#);
        let bare: Option<(u16, String)> = Some((1008, String::new()));
        assert_eq!(shown(&bare), "close 1008 with no reason");
        assert_eq!(shown(&ErrorCode::BadCertificate), "bad_certificate");
        assert_eq!(shown(&Some(ErrorCode::CertExpired)), "Some(cert_expired)");
        let key = SecretKey::from_seed([7; 32]).public();
        assert_eq!(shown(&key), key.to_string());
        assert_eq!(shown(&vec![key]), format!("[{key}]"));
        // Text inside strings is left alone.
        assert_eq!(shown(&"BadCertificate PublicKey(x)"), r#""BadCertificate PublicKey(x)""#);
        let f = check_eq("close", bare, close).expect_err("differs");
        assert_eq!(f.expected, r#"close = close 1008 "bad_certificate""#);
        assert_eq!(f.got, "close 1008 with no reason");
    }

    #[test]
    fn drafts_have_strictly_increasing_timestamps() {
        let mut feed = Feed::stranger();
        let mut d = feed.draft();
        let ahead = client::now_ms() + 3_600_000;
        d.timestamp = ahead;
        feed.push(d);
        let next = feed.draft();
        assert_eq!(next.timestamp, ahead + 1, "after a later timestamp: one more, not the same");
        let second = feed.push(next);
        let third = feed.next("3");
        assert!(third.timestamp > second.timestamp);
    }
}
