//! The command line: run the suite (default), `serve` (be the reference node), `html-report`
//! (merge JSON results into one page), `faults-table` (which cases catch which fault) and
//! `fault-coverage` (every MUST rule with its faults, or the reason it has none).
//!
//! `serve`, the default self-launch and `fault-coverage` link the reference node: they exist
//! only with the `reference-node` feature (a default one). A runner built without it tests the
//! node given by `--url` or `--launch` and says so when neither is given.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::case::Case;
use crate::cases;
use crate::fuzz;
use crate::launch::{read_seed_file, Template};
use crate::report::{self, Format};
use crate::runner::{self, RunConfig, TargetSpec, Transcripts, DEFAULT_CONCURRENCY};
use crate::skipfile::SkipFile;

/// Kith conformance runner: plays scripted cases against a Kith node and grades each one.
#[derive(Parser, Debug)]
#[command(name = "kith-conformance", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do besides running the suite.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of a suite run.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
// Parsed once per process, so the size of `Serve`'s node arguments costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the reference node (what the default launch execs).
    #[cfg(feature = "reference-node")]
    Serve(kith_node::NodeArgs),
    /// Write an HTML page from one or more `--format json` results, side by side.
    HtmlReport {
        /// JSON result files.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output file.
        #[arg(short, long, default_value = "kith-conformance.html")]
        output: PathBuf,
    },
    /// Run the suite against the reference node with each fault and print which cases catch
    /// it, as a Markdown table (needs the `faults` feature).
    FaultsTable,
    /// Print the fault coverage table: every MUST / MUST NOT rule of the spec with the faults
    /// that break it and the cases citing it, or the reason (from `conformance/fault-reasons.json`)
    /// it has no fault. Exits 1 when a reason is missing, stale or a placeholder (needs the
    /// `reference-node` feature).
    FaultCoverage {
        /// Write `conformance/FAULT-COVERAGE.md` instead of printing the table.
        #[arg(long)]
        write: bool,
    },
}

/// Options of a suite run.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Test a running node at this websocket URL (needs --node-seed-file).
    #[arg(long, requires = "peer_seed_file", conflicts_with = "launch")]
    pub url: Option<String>,
    /// The seed file of the node key of the node at --url, which is also the admin's key (64
    /// lowercase hex characters). `--peer-seed-file` is the old name.
    #[arg(long = "node-seed-file", alias = "peer-seed-file")]
    pub peer_seed_file: Option<PathBuf>,
    /// Launch a fresh node per scenario group from this command template; placeholders
    /// {port} {data_dir} {node_seed_file} (old name {peer_seed_file}) {storage_bytes} and
    /// optionally {handshake_timeout_ms} {max_connections_per_address} {max_pending_handshakes}
    /// {max_requests_per_second} {max_subscriptions} {max_queued_bytes} {max_backfill} {max_replicate} {max_notes} {max_note_bytes} {max_follows} {max_filter_items} {max_total_filter_items}. The node prints
    /// `listening ws://ADDR/` on stdout or stderr when it is ready.
    #[arg(long)]
    pub launch: Option<String>,
    /// How long a launched node may take to print its `listening` line, in seconds.
    #[arg(long, default_value_t = crate::launch::READY_WAIT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub ready_wait_secs: u64,
    /// The whole run's time budget in seconds: cases not done by then fail as "not run: run
    /// budget exhausted".
    #[arg(long, default_value_t = runner::DEFAULT_BUDGET.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub budget_secs: u64,
    /// Which cases keep their transcript in the report.
    #[arg(long, value_enum, default_value = "failing")]
    pub transcripts: Transcripts,
    /// The implementation's name in the report (e.g. `mynode 0.3`); overrides the skip file's.
    #[arg(long)]
    pub implementation: Option<String>,
    /// With the default launch of the reference node: break this spec rule (faults builds).
    #[arg(long, conflicts_with_all = ["url", "launch"])]
    pub fault: Option<String>,
    /// Run only cases whose ID matches one of these globs.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Do not run cases whose ID matches one of these globs.
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
    /// The implementer's skip file (JSON: skipped cases with reasons, error-code map).
    #[arg(long)]
    pub skip_file: Option<PathBuf>,
    /// Report format on standard output.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Write the report here instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Also write an HTML report to this file.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// List the cases and exit.
    #[arg(long)]
    pub list: bool,
    /// Print requirement coverage (spec IDs against cases and vectors) and exit.
    #[arg(long)]
    pub coverage: bool,
    /// Where the spec chapters are (for --coverage).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../spec"))]
    pub spec_dir: PathBuf,
    /// Where the test vectors are (for --coverage).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors"))]
    pub vectors_dir: PathBuf,
    /// How many cases run at once.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// Seed of the FUZZ family (decimal or 0x hex); case FUZZ-i depends only on it and i.
    #[arg(long, default_value_t = fuzz::DEFAULT_SEED, value_parser = parse_seed)]
    pub fuzz_seed: u64,
    /// How many FUZZ cases (FUZZ-00001 to FUZZ-N; 0 drops the family; at most 99999).
    #[arg(long, default_value_t = fuzz::DEFAULT_CASES, value_parser = clap::value_parser!(u64).range(0..=fuzz::MAX_CASES))]
    pub fuzz_cases: u64,
    /// No progress line.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs the command line; returns the process exit code (0 pass, 1 a MUST failed, 2 usage or
/// target error).
pub async fn main_with(cli: Cli) -> ExitCode {
    match cli.command {
        #[cfg(feature = "reference-node")]
        Some(Command::Serve(args)) => match kith_node::serve(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kith-conformance serve: {e}");
                ExitCode::from(2)
            }
        },
        Some(Command::HtmlReport { inputs, output }) => html_report(&inputs, &output),
        Some(Command::FaultsTable) => faults_table().await,
        Some(Command::FaultCoverage { write }) => fault_coverage(write),
        None => run_suite(cli.run).await,
    }
}

fn html_report(inputs: &[PathBuf], output: &Path) -> ExitCode {
    let mut runs = Vec::new();
    for p in inputs {
        match std::fs::read_to_string(p)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(v) => runs.push(v),
            Err(e) => {
                eprintln!("{}: {e}", p.display());
                return ExitCode::from(2);
            }
        }
    }
    match std::fs::write(output, report::html(&runs)) {
        Ok(()) => {
            eprintln!("wrote {}", output.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", output.display());
            ExitCode::from(2)
        }
    }
}

#[cfg(not(feature = "reference-node"))]
fn fault_coverage(_write: bool) -> ExitCode {
    eprintln!(
        "kith-conformance: fault-coverage reads the reference node's fault table, so it needs the \
         `reference-node` feature, and this runner was built without it"
    );
    ExitCode::from(2)
}

/// What a runner built without the `reference-node` feature says when asked for the node.
#[cfg(not(feature = "reference-node"))]
pub const NO_REFERENCE_NODE: &str = "kith-conformance: self-launch (no --url, no --launch: test a freshly \
     launched reference node) needs the `reference-node` feature, and this runner was built without it \
     (e.g. `cargo install --path conformance --no-default-features`); test your node with \
     `--url ws://HOST:PORT/ --node-seed-file FILE` or `--launch 'COMMAND TEMPLATE'`, or build with the \
     default features";

#[cfg(feature = "reference-node")]
fn fault_coverage(write: bool) -> ExitCode {
    let (table, problems) = crate::fault_coverage::generate();
    if write {
        let path = crate::fault_coverage::crate_dir().join(crate::fault_coverage::TABLE_FILE);
        if let Err(e) = std::fs::write(&path, &table) {
            eprintln!("{}: {e}", path.display());
            return ExitCode::from(2);
        }
        eprintln!("wrote {}", path.display());
    } else {
        print!("{table}");
    }
    for p in &problems {
        eprintln!("{p}");
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("{} problem(s) in {}", problems.len(), crate::fault_coverage::REASONS_FILE);
        ExitCode::from(1)
    }
}

fn parse_seed(s: &str) -> Result<u64, String> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("{s:?} is not a u64 seed: {e}"))
}

/// The options a fuzz replay command repeats: the target and a non-default case count.
fn replay_options(args: &RunArgs) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut out = String::new();
    if let Some(f) = &args.fault {
        out.push_str(&format!(" --fault {f}"));
    }
    if let (Some(u), Some(p)) = (&args.url, &args.peer_seed_file) {
        out.push_str(&format!(" --url {} --node-seed-file {}", quote(u), quote(&p.display().to_string())));
    }
    if let Some(l) = &args.launch {
        out.push_str(&format!(" --launch {}", quote(l)));
    }
    if args.fuzz_cases != fuzz::DEFAULT_CASES {
        out.push_str(&format!(" --fuzz-cases {}", args.fuzz_cases));
    }
    out
}

/// Every case of a run: the scripted families and the run's FUZZ cases, in ID order.
pub fn all_cases(args: &RunArgs) -> Vec<Case> {
    let mut v = cases::all();
    v.extend(fuzz::cases(&fuzz::FuzzConfig {
        seed: args.fuzz_seed,
        cases: args.fuzz_cases,
        replay_options: replay_options(args),
    }));
    v.sort_by_key(|c| c.id);
    v
}

fn list(args: &RunArgs) {
    let all = all_cases(args);
    let mut out = std::io::stdout().lock();
    for c in &all {
        let own = if matches!(c.needs, crate::case::Needs::OwnNode(_)) { " [launch]" } else { "" };
        let _ = writeln!(out, "{:<28} {:<6} {:<34} {}{own}", c.id, c.level, c.requirements.join(","), c.title);
    }
    let _ = writeln!(out, "{} cases", all.len());
}

/// The executable that `serve`s the reference node: this binary.
pub fn self_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("kith-conformance"))
}

/// The default target: this binary's own `serve`, the reference node.
#[cfg(feature = "reference-node")]
fn self_launch(args: &RunArgs) -> Option<Template> {
    Some(Template::reference(&self_exe(), args.fault.as_deref()))
}

/// Without the reference node linked in there is no default target: say what to do instead.
#[cfg(not(feature = "reference-node"))]
fn self_launch(_args: &RunArgs) -> Option<Template> {
    eprintln!("{NO_REFERENCE_NODE}");
    None
}

async fn run_suite(args: RunArgs) -> ExitCode {
    if args.list {
        list(&args);
        return ExitCode::SUCCESS;
    }
    if args.coverage {
        let (text, _) = crate::coverage::report(&cases::all(), &args.spec_dir, &args.vectors_dir);
        print!("{text}");
        return ExitCode::SUCCESS;
    }
    if args.fault.is_some() && !cfg!(feature = "faults") {
        eprintln!("--fault needs a build with `--features faults`");
        return ExitCode::from(2);
    }
    let target = if let Some(url) = &args.url {
        let Some(seed) = &args.peer_seed_file else {
            eprintln!("--url needs --node-seed-file");
            return ExitCode::from(2);
        };
        match read_seed_file(seed) {
            Ok(admin) => TargetSpec::Url { url: url.clone(), admin: Box::new(admin) },
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        }
    } else if let Some(t) = &args.launch {
        TargetSpec::Launch(Template(t.clone()))
    } else {
        match self_launch(&args) {
            Some(t) => TargetSpec::Launch(t),
            None => return ExitCode::from(2),
        }
    };
    let skip_file = match &args.skip_file {
        Some(p) => match SkipFile::load(p) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    crate::launch::set_ready_wait(std::time::Duration::from_secs(args.ready_wait_secs));
    let config = RunConfig {
        only: args.only.clone(),
        skip: args.skip.clone(),
        skip_file,
        concurrency: args.concurrency,
        progress: !args.quiet,
        budget: std::time::Duration::from_secs(args.budget_secs),
        transcripts: args.transcripts,
        implementation: args.implementation.clone(),
        ..RunConfig::new(target)
    };
    let report = match runner::run(&all_cases(&args), &config).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kith-conformance: {e}");
            return ExitCode::from(2);
        }
    };
    let text = match args.format {
        Format::Human => report::human(&report),
        Format::Json => report::json(&report),
        Format::Junit => report::junit(&report),
        Format::Html => report::html(&[serde_json::to_value(&report).unwrap_or_default()]),
    };
    let written = match &args.output {
        Some(p) => std::fs::write(p, &text).map_err(|e| format!("{}: {e}", p.display())),
        None => std::io::stdout().lock().write_all(text.as_bytes()).map_err(|e| e.to_string()),
    };
    if let Err(e) = written {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    if let Some(p) = &args.html {
        if let Err(e) = std::fs::write(p, report::html(&[serde_json::to_value(&report).unwrap_or_default()])) {
            eprintln!("{}: {e}", p.display());
            return ExitCode::from(2);
        }
    }
    // The report went to a file: the verdict still goes to the terminal (or CI log).
    if args.output.is_some() {
        eprintln!("{}", report::summary_table(&report));
        eprintln!("{}", report::verdict(&report));
    }
    if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// For one fault: the cases that fail when the reference node runs with it.
#[cfg(feature = "faults")]
pub async fn cases_failing_under(exe: &Path, fault: &str, only: Vec<String>) -> Result<Vec<String>, runner::RunError> {
    cases_failing(exe, Some(fault), only).await
}

/// The cases (among `only`, or all) that fail or warn against the reference node, with
/// `fault` or clean.
#[cfg(feature = "faults")]
async fn cases_failing(exe: &Path, fault: Option<&str>, only: Vec<String>) -> Result<Vec<String>, runner::RunError> {
    let config = RunConfig {
        only,
        concurrency: DEFAULT_CONCURRENCY,
        transcripts: Transcripts::None,
        ..RunConfig::new(TargetSpec::Launch(Template::reference(exe, fault)))
    };
    let report = runner::run(&cases::all(), &config).await?;
    let mut ids = report.ids_with(runner::Outcome::Fail);
    ids.extend(report.ids_with(runner::Outcome::Warning));
    Ok(ids)
}

#[cfg(feature = "faults")]
async fn faults_table() -> ExitCode {
    let exe = self_exe();
    let all = cases::all();
    // Cases that fail on the clean node are not evidence about any fault.
    let baseline = match cases_failing(&exe, None, Vec::new()).await {
        Ok(ids) => ids,
        Err(e) => {
            eprintln!("clean run: {e}");
            return ExitCode::from(2);
        }
    };
    println!("| fault | violates | failing cases that cite it | other failing cases |");
    println!("|---|---|---|---|");
    let mut missed = 0;
    for f in kith_node::faults::ALL {
        eprintln!("fault {} ...", f.name);
        let ids = match cases_failing_under(&exe, f.name, Vec::new()).await {
            Ok(ids) => ids,
            Err(e) => {
                eprintln!("{}: {e}", f.name);
                return ExitCode::from(2);
            }
        };
        let ids: Vec<&str> = ids.iter().map(String::as_str).filter(|id| !baseline.iter().any(|b| b == id)).collect();
        let cites = |id: &&str| all.iter().any(|c| c.id == *id && c.requirements.contains(&f.requirement));
        let citing: Vec<&str> = ids.iter().copied().filter(cites).collect();
        let other: Vec<&str> = ids.iter().copied().filter(|id| !cites(id)).collect();
        if citing.is_empty() {
            missed += 1;
        }
        let list = |v: &[&str]| if v.is_empty() { "—".to_owned() } else { v.join(", ") };
        println!("| `{}` | {} | {} | {} |", f.name, f.requirement, list(&citing), list(&other));
    }
    if !baseline.is_empty() {
        println!("\n(not counted: {} cases that also fail on the clean node: {})", baseline.len(), baseline.join(", "));
    }
    if missed > 0 {
        eprintln!("{missed} fault(s) not caught by a case citing their requirement");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

#[cfg(not(feature = "faults"))]
async fn faults_table() -> ExitCode {
    eprintln!("faults-table needs a build with `--features faults`");
    ExitCode::from(2)
}
