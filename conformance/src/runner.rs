//! Selecting cases, starting nodes, running cases concurrently and grading them.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use globset::{Glob, GlobMatcher};
use kith_proto::SecretKey;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::case::{fetch_limits, Case, Ctx, FailKind, Failure, Level, Needs, Prerequisite, Target};
use crate::client::{with_pace, ClientError, Connection, Transcript, TranscriptLine, DEFAULT_WAIT};
use crate::launch::{LaunchedNode, NodeConfig, Template};
use crate::skipfile::SkipFile;

/// How a case came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every expectation held.
    Pass,
    /// A MUST expectation broke.
    Fail,
    /// A SHOULD expectation broke.
    Warning,
    /// The node answered `unsupported`.
    Unimplemented,
    /// Skipped by the implementer's skip file.
    Skipped,
    /// The target cannot run it (e.g. it needs a launched node).
    NotApplicable,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 6] = [
        Outcome::Pass,
        Outcome::Fail,
        Outcome::Warning,
        Outcome::Unimplemented,
        Outcome::Skipped,
        Outcome::NotApplicable,
    ];

    /// The outcome's report label.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::Warning => "warning",
            Outcome::Unimplemented => "unimplemented",
            Outcome::Skipped => "skipped",
            Outcome::NotApplicable => "n/a",
        }
    }
}

/// One case's result.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    /// The case ID.
    pub id: String,
    /// Its family prefix.
    pub family: String,
    /// What it checks.
    pub title: String,
    /// MUST or SHOULD.
    pub level: Level,
    /// The requirement IDs it checks.
    pub requirements: Vec<String>,
    /// How it came out.
    pub outcome: Outcome,
    /// Why it was skipped or not applicable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The expectation that broke.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Wall time.
    pub duration_ms: f64,
    /// Whether the case failed after waiting out an answer that never came (or its own time
    /// limit): the runner stops a family after several of these in a row.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
    /// Every frame sent and received (kept for cases that did not pass, unless the run asked
    /// for all transcripts or none).
    pub transcript: Vec<TranscriptLine>,
}

/// A whole run's result.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The implementation's name (from the skip file, or the target).
    pub implementation: String,
    /// What was tested (URL or launch command).
    pub target: String,
    /// Wall time of the run.
    pub duration_ms: f64,
    /// Every selected case, in ID order.
    pub cases: Vec<CaseReport>,
}

impl RunReport {
    /// Exit status rule: success exactly when no selected MUST case failed or came back
    /// unimplemented.
    pub fn success(&self) -> bool {
        !self
            .cases
            .iter()
            .any(|c| c.level == Level::Must && matches!(c.outcome, Outcome::Fail | Outcome::Unimplemented))
    }

    /// How many cases came out each way.
    pub fn counts(&self) -> BTreeMap<Outcome, usize> {
        let mut m = BTreeMap::new();
        for c in &self.cases {
            *m.entry(c.outcome).or_insert(0) += 1;
        }
        m
    }

    /// The IDs of cases with this outcome.
    pub fn ids_with(&self, outcome: Outcome) -> Vec<String> {
        self.cases.iter().filter(|c| c.outcome == outcome).map(|c| c.id.clone()).collect()
    }
}

/// What node the run tests.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    /// An already running node and its admin key.
    Url {
        /// The websocket URL.
        url: String,
        /// The admin's key (from the peer seed file).
        admin: Box<SecretKey>,
    },
    /// Nodes the runner launches from a template.
    Launch(Template),
}

/// Which cases keep their transcript in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Transcripts {
    /// Cases that did not pass (failures, warnings, unimplemented).
    #[default]
    Failing,
    /// Every case (large: about 30 KB per scripted case).
    All,
    /// No case.
    None,
}

/// The whole run's default time budget: far more than a full run against a working node
/// takes (a few minutes), far less than a silent node would cost without it.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(30 * 60);

/// How many cases of one family may fail after waiting out an answer, with no case of the
/// family passing in between, before the rest of the family fails at once.
pub const STUCK_AFTER: usize = 4;

/// What to run and how.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The target.
    pub target: TargetSpec,
    /// ID globs to run (empty = all).
    pub only: Vec<String>,
    /// ID globs not to run.
    pub skip: Vec<String>,
    /// The implementer's skip file.
    pub skip_file: Option<SkipFile>,
    /// How many cases run at once.
    pub concurrency: usize,
    /// Print a progress line on stderr.
    pub progress: bool,
    /// The whole run's time budget: cases not finished by then fail as not run.
    pub budget: Duration,
    /// Which cases keep their transcript.
    pub transcripts: Transcripts,
    /// The implementation's name in the report (overrides the skip file's).
    pub implementation: Option<String>,
}

impl RunConfig {
    /// Every case against `target`, at the default concurrency and budget, without progress
    /// line or skip file.
    pub fn new(target: TargetSpec) -> Self {
        RunConfig {
            target,
            only: Vec::new(),
            skip: Vec::new(),
            skip_file: None,
            concurrency: DEFAULT_CONCURRENCY,
            progress: false,
            budget: DEFAULT_BUDGET,
            transcripts: Transcripts::Failing,
            implementation: None,
        }
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A glob is not valid.
    #[error("bad glob {0:?}: {1}")]
    Glob(String, String),
    /// A glob (from `--only`, `--skip` or the skip file) matches no case.
    #[error("{source_name} pattern {pattern:?} matches no case")]
    MatchesNothing {
        /// Where the pattern came from.
        source_name: &'static str,
        /// The pattern.
        pattern: String,
    },
    /// Nothing is selected.
    #[error("the selection matches no case")]
    EmptySelection,
    /// The target could not be reached or started.
    #[error("target: {0}")]
    Target(String),
}

fn matcher(pattern: &str) -> Result<GlobMatcher, RunError> {
    Glob::new(pattern).map(|g| g.compile_matcher()).map_err(|e| RunError::Glob(pattern.into(), e.to_string()))
}

fn matchers(source_name: &'static str, patterns: &[String], cases: &[Case]) -> Result<Vec<GlobMatcher>, RunError> {
    let mut out = Vec::new();
    for p in patterns {
        let m = matcher(p)?;
        if !cases.iter().any(|c| m.is_match(c.id)) {
            return Err(RunError::MatchesNothing { source_name, pattern: p.clone() });
        }
        out.push(m);
    }
    Ok(out)
}

/// The cases `--only` and `--skip` select, in ID order; a pattern matching nothing is an error.
pub fn select(cases: &[Case], only: &[String], skip: &[String]) -> Result<Vec<Case>, RunError> {
    let only_m = matchers("--only", only, cases)?;
    let skip_m = matchers("--skip", skip, cases)?;
    let mut out: Vec<Case> = cases
        .iter()
        .filter(|c| only_m.is_empty() || only_m.iter().any(|m| m.is_match(c.id)))
        .filter(|c| !skip_m.iter().any(|m| m.is_match(c.id)))
        .cloned()
        .collect();
    if out.is_empty() {
        return Err(RunError::EmptySelection);
    }
    out.sort_by_key(|c| c.id);
    Ok(out)
}

/// The skip file's reason for each case it skips; an entry matching no case is an error.
pub fn skip_reasons(cases: &[Case], file: &SkipFile) -> Result<BTreeMap<&'static str, String>, RunError> {
    let mut out = BTreeMap::new();
    for entry in &file.skip {
        let m = matcher(&entry.case)?;
        let mut any = false;
        for c in cases.iter().filter(|c| m.is_match(c.id)) {
            any = true;
            out.entry(c.id).or_insert_with(|| entry.reason.clone());
        }
        if !any {
            return Err(RunError::MatchesNothing { source_name: "skip file", pattern: entry.case.clone() });
        }
    }
    Ok(out)
}

struct Progress {
    total: usize,
    done: AtomicUsize,
    enabled: bool,
}

impl Progress {
    fn tick(&self, id: &str, outcome: Outcome) {
        let n = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        if self.enabled {
            use std::io::IsTerminal;
            let mut err = std::io::stderr().lock();
            if err.is_terminal() {
                // One line, redrawn in place.
                let _ = write!(err, "\r\x1b[2K[{n:>3}/{}] {:<13} {id}", self.total, outcome.label());
                if n == self.total {
                    let _ = writeln!(err);
                }
            } else if outcome != Outcome::Pass || n == self.total || n.is_multiple_of(50) {
                // A log (CI) gets a line per non-passing case and a count now and then, not
                // terminal control codes.
                let _ = writeln!(err, "[{n:>3}/{}] {:<13} {id}", self.total, outcome.label());
            }
            let _ = err.flush();
        }
    }
}

fn report_for(case: &Case, outcome: Outcome, reason: Option<String>, failure: Option<Failure>) -> CaseReport {
    CaseReport {
        id: case.id.into(),
        family: case.family().into(),
        title: case.title.into(),
        level: case.level,
        requirements: case.requirements.iter().map(|r| (*r).to_owned()).collect(),
        outcome,
        reason,
        failure,
        duration_ms: 0.0,
        timed_out: false,
        transcript: Vec::new(),
    }
}

fn grade(case: &Case, result: Result<(), Failure>) -> (Outcome, Option<String>, Option<Failure>) {
    match result {
        Ok(()) => (Outcome::Pass, None, None),
        Err(f) => match f.kind {
            FailKind::Fail if case.level == Level::Must => (Outcome::Fail, None, Some(f)),
            FailKind::Fail => (Outcome::Warning, None, Some(f)),
            FailKind::Unimplemented => (Outcome::Unimplemented, None, Some(f)),
            FailKind::NotApplicable => (Outcome::NotApplicable, Some(f.expected.clone()), None),
        },
    }
}

async fn run_one(case: Case, target: Target, node: Option<LaunchedNode>, transcripts: Transcripts) -> CaseReport {
    let transcript = Transcript::default();
    let started = Instant::now();
    // The case's connections stay inside the node's reported rate (06 §8.2); the cases that
    // exceed it on purpose switch pacing off on their own connections.
    let pace = target.limits.max_requests_per_second;
    let ctx = Ctx::new(target, node, transcript.clone());
    let mut case_timed_out = false;
    let result = match tokio::time::timeout(case.timeout, with_pace(pace, (case.run)(ctx))).await {
        Ok(r) => r,
        Err(_) => {
            case_timed_out = true;
            let last = transcript.lines().last().map(|l| format!("; last: {} {}", l.conn, l.text)).unwrap_or_default();
            Err(Failure::fail(
                format!("{} (within the case's time limit of {:?})", case.title, case.timeout),
                format!("timed out{last}"),
            ))
        }
    };
    let waited_out = case_timed_out || transcript.waited_out();
    let result = result.map_err(|mut f| {
        // A bare client error says what broke, not what the case was doing.
        if f.expected == crate::case::EXCHANGE {
            f.expected = format!("{}: {}", case.title, crate::case::EXCHANGE);
        }
        if waited_out {
            let lines = transcript.lines();
            if let Some(l) = lines.iter().rev().find(|l| l.dir == crate::client::Direction::Sent) {
                f.got.push_str(&format!("; the last frame sent (on {}): {}", l.conn, l.text));
            }
        }
        f
    });
    let (outcome, reason, failure) = grade(&case, result);
    let mut r = report_for(&case, outcome, reason, failure);
    r.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    r.timed_out = matches!(outcome, Outcome::Fail | Outcome::Warning) && waited_out;
    // A passing case's transcript says nothing its failure report would not: keeping them made
    // a JSON report of the 289 scripted cases 9.7 MB, and of the default FUZZ cases ~40 MB.
    let keep = match transcripts {
        Transcripts::All => true,
        Transcripts::Failing => !matches!(outcome, Outcome::Pass | Outcome::Skipped | Outcome::NotApplicable),
        Transcripts::None => false,
    };
    if keep {
        r.transcript = transcript.lines();
    }
    r
}

async fn target_of(
    url: &str,
    admin: SecretKey,
    error_map: &Arc<BTreeMap<String, String>>,
    prerequisite: &Option<Arc<Prerequisite>>,
) -> Result<Target, String> {
    let info = fetch_limits(url).await.map_err(|e| format!("node_info at {url}: {e}"))?;
    Ok(Target {
        url: url.to_owned(),
        node_key: admin.public(),
        admin,
        limits: info.limits,
        error_map: error_map.clone(),
        prerequisite: prerequisite.clone(),
    })
}

/// What a login probe step needs: the rule it checks and what it is called.
fn prereq(what: &str, rule: &'static str, reason: impl Into<String>) -> Prerequisite {
    Prerequisite { what: what.to_owned(), rule, reason: reason.into() }
}

/// One request of the probe, answered within the default wait, as a prerequisite failure.
async fn probe_request(
    conn: &mut Connection,
    frame: kith_proto::ClientFrame,
    id: kith_proto::RequestId,
    what: &str,
    rule: &'static str,
    want: &str,
) -> Result<kith_proto::ServerFrame, Prerequisite> {
    let ty = frame.type_name();
    conn.send(&frame).await.map_err(|e| prereq(what, rule, format!("sending `{ty}`: {e}")))?;
    match conn.await_answer(id, DEFAULT_WAIT).await {
        Ok(f) if f.type_name() == want => Ok(f),
        Ok(f) => Err(prereq(what, rule, format!("a valid `{ty}` was answered with {}", f.to_text()))),
        Err(ClientError::Timeout(w)) => Err(prereq(what, rule, format!("a valid `{ty}` got no answer within {w:?}"))),
        Err(e) => Err(prereq(what, rule, format!("a valid `{ty}` got {e}"))),
    }
}

/// Logs in as `user` step by step, naming the rule of the step that fails. A refusal at a
/// connection limit (FRAME-42, FRAME-43) is tried again for [`crate::case::SLOT_WINDOW`]: at a
/// `max_connections_per_address` of 1 the runner's own `node_info` connection, or the admin's
/// just closed, may still count until the node has ended it.
async fn probe_login(
    target: &Target,
    user: &SecretKey,
    what: &str,
    welcome_rule: &'static str,
) -> Result<Connection, Prerequisite> {
    let start = std::time::Instant::now();
    loop {
        match probe_login_once(target, user, what, welcome_rule).await {
            Err(p) if refused_at_a_limit(&p) && start.elapsed() < crate::case::SLOT_WINDOW => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            r => return r,
        }
    }
}

/// Whether a probe step failed because the node refused the connection at a connection limit:
/// its answer was the `error` with id null and code `too_many_connections` or
/// `too_many_handshakes`, or the close 1013 that follows it.
fn refused_at_a_limit(p: &Prerequisite) -> bool {
    [
        "\"code\":\"too_many_connections\"",
        "\"code\":\"too_many_handshakes\"",
        "\"too_many_connections\"",
        "\"too_many_handshakes\"",
    ]
    .iter()
    .any(|c| p.reason.contains(c))
}

/// One attempt of [`probe_login`].
async fn probe_login_once(
    target: &Target,
    user: &SecretKey,
    what: &str,
    welcome_rule: &'static str,
) -> Result<Connection, Prerequisite> {
    use kith_proto::cert::Certificate;
    use kith_proto::handshake::{ClientConfig, ClientHandshake};
    use kith_proto::{ClientFrame, ServerFrame};
    let mut conn = Connection::connect(&target.url, "probe", Transcript::default(), DEFAULT_WAIT)
        .await
        .map_err(|e| prereq(what, "HS-3", e.to_string()))?;
    conn.set_error_map(target.error_map.clone());
    let peer = SecretKey::random();
    let cert = Certificate::issue(user, peer.public(), crate::client::now_ms() + 3_600_000);
    let config = ClientConfig {
        peer,
        cert,
        expected_node: target.node_key,
        version: kith_proto::version::PROTOCOL_VERSION.into(),
    };
    let hello_id = conn.next_id();
    let (mut hs, hello) = ClientHandshake::start(config, crate::client::random_bytes(), hello_id);
    let answer = probe_request(&mut conn, ClientFrame::Hello(hello), hello_id, what, "HS-28", "challenge").await?;
    let ServerFrame::Challenge(challenge) = answer else { return Err(prereq(what, "HS-28", "no challenge")) };
    let auth_id = conn.next_id();
    let auth =
        hs.handle_challenge(&challenge, auth_id).map_err(|e| prereq(what, "HS-18", format!("the challenge: {e}")))?;
    let answer = probe_request(&mut conn, ClientFrame::Auth(auth), auth_id, what, welcome_rule, "welcome").await?;
    let ServerFrame::Welcome(welcome) = answer else { return Err(prereq(what, welcome_rule, "no welcome")) };
    hs.handle_welcome(&welcome).map_err(|e| prereq(what, "HS-36", format!("the welcome: {e}")))?;
    Ok(conn)
}

/// Checks once what nearly every case needs: a login as the admin, an admin invite, and a
/// login of the invited user.
async fn probe_prerequisites(target: &Target) -> Result<(), Prerequisite> {
    use kith_proto::account::{AccountName, CreateUser};
    use kith_proto::ClientFrame;
    let mut admin = probe_login(target, &target.admin, "login as the admin", "HS-37").await?;
    let user = SecretKey::random();
    let name = AccountName::new(crate::client::fresh_name()).map_err(|e| prereq("admin invite", "ACCT-17", e))?;
    let id = admin.next_id();
    let frame =
        ClientFrame::CreateUser(CreateUser { id, key: user.public(), name, invite_allowance: 0, publish_allowance: 1 });
    probe_request(&mut admin, frame, id, "admin invite", "ACCT-17", "create_user_ok").await?;
    admin.close().await;
    let mut invited = probe_login(target, &user, "login of an invited user", "HS-36").await?;
    invited.close().await;
    Ok(())
}

/// Per family: the cases that failed after waiting out an answer since the family's last pass.
#[derive(Default)]
struct Stuck {
    families: std::sync::Mutex<BTreeMap<String, Vec<String>>>,
}

impl Stuck {
    /// Why the family's remaining cases are not run, once it is stuck.
    fn check(&self, family: &str) -> Option<Failure> {
        let map = self.families.lock().ok()?;
        let ids = map.get(family).filter(|ids| ids.len() >= STUCK_AFTER)?;
        Some(Failure::fail(
            "the family to get answers",
            format!(
                "not run: the {family} family is stuck: {} of its cases in a row ({}) failed waiting for an answer \
                 that never came; see the first of them",
                ids.len(),
                ids.join(", ")
            ),
        ))
    }

    fn record(&self, r: &CaseReport) {
        if let Ok(mut map) = self.families.lock() {
            let ids = map.entry(r.family.clone()).or_default();
            if r.outcome == Outcome::Pass {
                ids.clear();
            } else if r.timed_out && ids.len() < STUCK_AFTER {
                ids.push(r.id.clone());
            }
        }
    }
}

fn budget_failure(budget: Duration) -> Failure {
    Failure::fail(
        format!("the run to reach this case within its budget of {} s (--budget-secs)", budget.as_secs()),
        "not run: run budget exhausted",
    )
}

/// How many cases may run at once on the shared node: `wanted`, but few enough that their
/// connections together stay inside the node's per-address and pending-handshake limits (a
/// case holds up to about six connections at once, and about two without `welcome`).
fn concurrency_within(wanted: usize, shared: Option<&Target>) -> usize {
    let Some(t) = shared else { return wanted.max(1) };
    let cap = |limit: u64, per_case: u64| usize::try_from(limit / per_case).unwrap_or(usize::MAX);
    wanted.min(cap(t.limits.max_connections_per_address, 6)).min(cap(t.limits.max_pending_handshakes, 2)).max(1)
}

/// Whether a case with these needs runs on a node other cases use too: the shared node, or the
/// `--url` node when the runner launches nothing.
fn shares_node(needs: &Needs, launches: bool) -> bool {
    match needs {
        Needs::Shared => true,
        Needs::PreferOwnNode(_) => !launches,
        Needs::OwnNode(_) => false,
    }
}

/// What every case of a run shares.
#[derive(Clone)]
struct Env {
    shared_target: Option<Target>,
    template: Option<Template>,
    error_map: Arc<BTreeMap<String, String>>,
    prerequisite: Option<Arc<Prerequisite>>,
    transcripts: Transcripts,
    deadline: tokio::time::Instant,
    budget: Duration,
    stuck: Arc<Stuck>,
}

/// Runs one case unless the run's budget is spent or its family is stuck, and stops it when
/// the budget runs out meanwhile.
async fn run_guarded(case: Case, env: Env) -> CaseReport {
    if tokio::time::Instant::now() >= env.deadline {
        return report_for(&case, Outcome::Fail, None, Some(budget_failure(env.budget)));
    }
    if let Some(f) = env.stuck.check(case.family()) {
        return report_for(&case, Outcome::Fail, None, Some(f));
    }
    let started = Instant::now();
    // A case that panics (a bug of the runner, not of the node) fails alone, saying so, instead
    // of ending the run.
    let task = tokio::spawn({
        let (case, env) = (case.clone(), env.clone());
        async move { run_case(case, &env).await }
    });
    let abort = task.abort_handle();
    let report = match tokio::time::timeout_at(env.deadline, task).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let why = if e.is_panic() { "the runner panicked in this case (a runner bug)" } else { "cancelled" };
            let mut r =
                report_for(&case, Outcome::Fail, None, Some(Failure::fail("the case to run", format!("{why}: {e}"))));
            r.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
            r
        }
        Err(_) => {
            abort.abort();
            let mut r = report_for(&case, Outcome::Fail, None, Some(budget_failure(env.budget)));
            r.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
            r
        }
    };
    env.stuck.record(&report);
    report
}

/// Runs one case on the node its needs ask for: the shared target, or a node launched for it.
async fn run_case(case: Case, env: &Env) -> CaseReport {
    match (&case.needs, env.shared_target.clone(), env.template.clone()) {
        (Needs::Shared | Needs::PreferOwnNode(_), Some(target), None) | (Needs::Shared, Some(target), Some(_)) => {
            run_one(case.clone(), target, None, env.transcripts).await
        }
        (Needs::OwnNode(cfg) | Needs::PreferOwnNode(cfg), _, Some(template)) => {
            match LaunchedNode::start(&template, cfg).await {
                Ok(node) => {
                    match target_of(node.url(), node.admin().clone(), &env.error_map, &env.prerequisite).await {
                        Ok(target) => run_one(case.clone(), target, Some(node), env.transcripts).await,
                        Err(e) => report_for(&case, Outcome::Fail, None, Some(Failure::fail("node_info", e))),
                    }
                }
                Err(e) => report_for(&case, Outcome::Fail, None, Some(Failure::fail("a launched node", e.to_string()))),
            }
        }
        _ => report_for(
            &case,
            Outcome::NotApplicable,
            Some("needs a node the runner launches (small budget or restart); use --launch".into()),
            None,
        ),
    }
}

/// Runs the selected cases against the configured target.
pub async fn run(cases: &[Case], config: &RunConfig) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let selected = select(cases, &config.only, &config.skip)?;
    let reasons = match &config.skip_file {
        Some(f) => skip_reasons(cases, f)?,
        None => BTreeMap::new(),
    };
    let error_map = Arc::new(config.skip_file.as_ref().map(|f| f.error_map.clone()).unwrap_or_default());
    let progress = Arc::new(Progress { total: selected.len(), done: AtomicUsize::new(0), enabled: config.progress });
    let mut reports = Vec::new();
    let mut to_run = Vec::new();
    for case in selected {
        if let Some(reason) = reasons.get(case.id) {
            progress.tick(case.id, Outcome::Skipped);
            reports.push(report_for(&case, Outcome::Skipped, Some(reason.clone()), None));
        } else {
            to_run.push(case);
        }
    }

    let (shared_node, template, target_name) = match &config.target {
        TargetSpec::Url { url, .. } => (None, None, url.clone()),
        TargetSpec::Launch(t) => {
            let needs_shared = to_run.iter().any(|c| c.needs == Needs::Shared);
            let node = if needs_shared {
                Some(
                    LaunchedNode::start(t, &NodeConfig::default())
                        .await
                        .map_err(|e| RunError::Target(e.to_string()))?,
                )
            } else {
                None
            };
            (node, Some(t.clone()), t.0.clone())
        }
    };
    let mut shared_target = match (&config.target, &shared_node) {
        (TargetSpec::Url { url, admin }, _) => {
            Some(target_of(url, (**admin).clone(), &error_map, &None).await.map_err(RunError::Target)?)
        }
        (_, Some(node)) => {
            Some(target_of(node.url(), node.admin().clone(), &error_map, &None).await.map_err(RunError::Target)?)
        }
        _ => None,
    };
    // One login probe before the families: if a login cannot work, the cases that need one
    // fail at once citing it, instead of each waiting out its timeouts.
    let prerequisite = match &shared_target {
        Some(t) => probe_prerequisites(t).await.err().map(Arc::new),
        None => None,
    };
    if let (Some(p), true) = (&prerequisite, config.progress) {
        eprintln!("{p}; every case that needs a login fails at once");
    }
    if let Some(t) = &mut shared_target {
        t.prerequisite = prerequisite.clone();
    }
    let env = Env {
        shared_target,
        template,
        error_map,
        prerequisite,
        transcripts: config.transcripts,
        deadline: tokio::time::Instant::from_std(started + config.budget),
        budget: config.budget,
        stuck: Arc::new(Stuck::default()),
    };

    // Exclusive cases that would share a node wait until everything else is done, then run one
    // at a time; on a node of their own they are as free as any other case.
    let launches = env.template.is_some();
    let (alone, together): (Vec<Case>, Vec<Case>) =
        to_run.into_iter().partition(|c| c.exclusive && shares_node(&c.needs, launches));
    let sem = Arc::new(Semaphore::new(concurrency_within(config.concurrency, env.shared_target.as_ref())));
    let mut tasks = tokio::task::JoinSet::new();
    for case in together {
        let sem = sem.clone();
        let progress = progress.clone();
        let env = env.clone();
        tasks.spawn(async move {
            let Ok(_permit) = sem.acquire_owned().await else {
                return report_for(&case, Outcome::Fail, None, Some(Failure::fail("a free slot", "semaphore closed")));
            };
            let report = run_guarded(case, env).await;
            progress.tick(&report.id, report.outcome);
            report
        });
    }
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(r) => reports.push(r),
            Err(e) => return Err(RunError::Target(format!("a case task panicked: {e}"))),
        }
    }
    for case in alone {
        let report = run_guarded(case, env.clone()).await;
        progress.tick(&report.id, report.outcome);
        reports.push(report);
    }
    if let Some(node) = shared_node {
        node.stop().await;
    }
    reports.sort_by(|a, b| a.id.cmp(&b.id));
    let implementation = config
        .implementation
        .clone()
        .or_else(|| config.skip_file.as_ref().and_then(|f| f.implementation.clone()))
        .unwrap_or_else(|| match &config.target {
            TargetSpec::Url { url, .. } => url.clone(),
            TargetSpec::Launch(_) => "launched node".into(),
        });
    Ok(RunReport {
        implementation,
        target: target_name,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        cases: reports,
    })
}

/// Default number of cases run at once.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// A wait long enough for a node's handshake timeout to fire, with margin.
pub fn handshake_wait(ms: u64) -> Duration {
    Duration::from_millis(ms + 2000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::all;

    #[test]
    fn selection_rules() {
        let cases = all();
        assert!(matches!(select(&cases, &["NOPE-*".into()], &[]), Err(RunError::MatchesNothing { .. })));
        assert!(matches!(select(&cases, &["HS-*".into()], &["HS-*".into()]), Err(RunError::EmptySelection)));
        let hs = select(&cases, &["HS-*".into()], &[]).expect("handshake cases");
        assert!(hs.iter().all(|c| c.id.starts_with("HS-")));
        assert!(hs.windows(2).all(|w| w[0].id < w[1].id));
    }

    #[test]
    fn exclusive_cases_wait_only_when_they_share_a_node() {
        let cfg = NodeConfig::default();
        assert!(shares_node(&Needs::Shared, true) && shares_node(&Needs::Shared, false));
        assert!(!shares_node(&Needs::PreferOwnNode(cfg.clone()), true));
        assert!(shares_node(&Needs::PreferOwnNode(cfg.clone()), false));
        assert!(!shares_node(&Needs::OwnNode(cfg.clone()), true) && !shares_node(&Needs::OwnNode(cfg), false));
        assert!(all().iter().any(|c| c.exclusive), "the LIMIT family has exclusive cases");
    }

    #[test]
    fn stale_skip_entries_are_errors() {
        let cases = all();
        let f: SkipFile =
            serde_json::from_str(r#"{"skip":[{"case":"GONE-001","reason":"was removed"}]}"#).expect("json");
        assert!(skip_reasons(&cases, &f).is_err());
        let f: SkipFile = serde_json::from_str(r#"{"skip":[{"case":"HS-*","reason":"later"}]}"#).expect("json");
        let r = skip_reasons(&cases, &f).expect("matches");
        assert!(r.keys().all(|k| k.starts_with("HS-")) && !r.is_empty());
    }

    fn fake_target() -> Target {
        Target {
            url: "ws://127.0.0.1:9/".into(),
            node_key: SecretKey::from_seed([1; 32]).public(),
            admin: SecretKey::from_seed([1; 32]),
            limits: kith_proto::node_info::Limits {
                max_frame_bytes: 65536,
                max_entry_bytes: 16384,
                handshake_timeout_ms: 10_000,
                max_backfill: 1000,
                max_replicate: 1000,
                storage_bytes: 1 << 30,
                max_subscriptions: 64,
                max_nesting_depth: 64,
                max_connections_per_address: 64,
                max_pending_handshakes: 64,
                max_requests_per_second: 1000,
                max_queued_bytes: 32 << 20,
                max_notes: 1000,
                max_note_bytes: 4 << 20,
                max_follows: 10_000,
                max_filter_items: 4096,
                max_total_filter_items: 1_048_576,
            },
            error_map: Arc::new(BTreeMap::new()),
            prerequisite: None,
        }
    }

    fn env(budget: Duration) -> Env {
        Env {
            shared_target: Some(fake_target()),
            template: None,
            error_map: Arc::new(BTreeMap::new()),
            prerequisite: None,
            transcripts: Transcripts::Failing,
            deadline: tokio::time::Instant::now() + budget,
            budget,
            stuck: Arc::new(Stuck::default()),
        }
    }

    /// A case that waits out an answer (as a silent node makes it) and fails.
    fn waits_out(id: &'static str) -> Case {
        Case::generated(
            id,
            Level::Must,
            &["HS-28"],
            "waits for an answer",
            Arc::new(|ctx: Ctx| {
                Box::pin(async move {
                    ctx.transcript().mark_timeout();
                    Err(Failure::fail("a challenge", "nothing received within 5s"))
                })
            }),
        )
    }

    fn passes(id: &'static str) -> Case {
        Case::generated(id, Level::Must, &["HS-4"], "passes", Arc::new(|_| Box::pin(async { Ok(()) })))
    }

    #[tokio::test]
    async fn a_stuck_family_stops_and_a_pass_resets_it() {
        let env = env(Duration::from_secs(60));
        for i in 0..STUCK_AFTER - 1 {
            let r = run_guarded(waits_out(["X-1", "X-2", "X-3"][i]), env.clone()).await;
            assert!(r.timed_out && r.outcome == Outcome::Fail);
        }
        // A pass in between: the count starts again.
        assert_eq!(run_guarded(passes("X-P"), env.clone()).await.outcome, Outcome::Pass);
        for id in ["X-4", "X-5", "X-6", "X-7"] {
            let r = run_guarded(waits_out(id), env.clone()).await;
            assert!(r.failure.is_some_and(|f| !f.got.contains("stuck")));
        }
        let r = run_guarded(passes("X-8"), env.clone()).await;
        let got = r.failure.map(|f| f.got).unwrap_or_default();
        assert!(r.outcome == Outcome::Fail && got.contains("X family is stuck") && got.contains("X-4, X-5"), "{got}");
        // Other families still run.
        assert_eq!(run_guarded(passes("Y-1"), env.clone()).await.outcome, Outcome::Pass);
    }

    #[tokio::test]
    async fn the_budget_stops_cases_before_and_while_they_run() {
        let spent = env(Duration::ZERO);
        let r = run_guarded(passes("X-1"), spent).await;
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(r.failure.map(|f| f.got).as_deref(), Some("not run: run budget exhausted"));
        let slow = Case::generated(
            "X-2",
            Level::Must,
            &["HS-4"],
            "sleeps",
            Arc::new(|_| {
                Box::pin(async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok(())
                })
            }),
        );
        let started = Instant::now();
        let r = run_guarded(slow, env(Duration::from_millis(200))).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(r.failure.map(|f| f.got).as_deref(), Some("not run: run budget exhausted"));
    }

    #[tokio::test]
    async fn a_panicking_case_fails_alone() {
        let boom = Case::generated(
            "X-1",
            Level::Must,
            &["HS-4"],
            "panics",
            Arc::new(|_| Box::pin(async { panic!("a runner bug") })),
        );
        let r = run_guarded(boom, env(Duration::from_secs(60))).await;
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.failure.is_some_and(|f| f.got.contains("the runner panicked")));
    }

    #[tokio::test]
    async fn a_failed_prerequisite_fails_logins_at_once() {
        let mut target = fake_target();
        target.prerequisite = Some(Arc::new(prereq("login as the admin", "HS-28", "a valid `hello` got no answer")));
        let mut ctx = Ctx::new(target, None, Transcript::default());
        let started = Instant::now();
        let f = ctx.user().await.expect_err("no login");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(f.rule.as_deref(), Some("HS-28"));
        assert_eq!(f.got, "prerequisite failed: login as the admin (HS-28): a valid `hello` got no answer");
    }

    #[test]
    fn concurrency_stays_inside_the_connection_limits() {
        let target = |per_address, pending| {
            let mut t = fake_target();
            t.limits.max_connections_per_address = per_address;
            t.limits.max_pending_handshakes = pending;
            t
        };
        assert_eq!(concurrency_within(8, None), 8);
        assert_eq!(concurrency_within(8, Some(&target(64, 256))), 8);
        assert_eq!(concurrency_within(8, Some(&target(32, 8))), 4);
        assert_eq!(concurrency_within(8, Some(&target(1, 1))), 1);
    }

    #[test]
    fn exit_rule() {
        let c = |level, outcome| CaseReport {
            id: "X-1".into(),
            family: "X".into(),
            title: String::new(),
            level,
            requirements: vec![],
            outcome,
            reason: None,
            failure: None,
            duration_ms: 0.0,
            timed_out: false,
            transcript: vec![],
        };
        let r = |cases| RunReport { implementation: String::new(), target: String::new(), duration_ms: 0.0, cases };
        assert!(r(vec![c(Level::Must, Outcome::Pass), c(Level::Should, Outcome::Warning)]).success());
        assert!(r(vec![c(Level::Must, Outcome::Skipped), c(Level::Must, Outcome::NotApplicable)]).success());
        assert!(r(vec![c(Level::Should, Outcome::Unimplemented)]).success());
        assert!(!r(vec![c(Level::Must, Outcome::Fail)]).success());
        assert!(!r(vec![c(Level::Must, Outcome::Unimplemented)]).success());
    }
}
