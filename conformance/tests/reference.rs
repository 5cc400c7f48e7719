//! The clean reference node passes every case: the suite's claim about the reference node.

use kith_conformance::cases;
use kith_conformance::launch::Template;
use kith_conformance::runner::{self, Outcome, RunConfig, TargetSpec, DEFAULT_CONCURRENCY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_node_passes_every_case() {
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_kith-conformance"));
    let config = RunConfig {
        concurrency: DEFAULT_CONCURRENCY,
        ..RunConfig::new(TargetSpec::Launch(Template::reference(&exe, None)))
    };
    let report = runner::run(&cases::all(), &config).await.expect("the suite runs");
    let not_passing: Vec<String> = report
        .cases
        .iter()
        .filter(|c| c.outcome != Outcome::Pass)
        .map(|c| {
            let why = c.failure.as_ref().map(|f| format!("expected {}; got {}", f.expected, f.got)).unwrap_or_default();
            format!("{} {}: {why}", c.outcome.label(), c.id)
        })
        .collect();
    assert!(
        not_passing.is_empty(),
        "{} of {} cases did not pass:\n{}",
        not_passing.len(),
        report.cases.len(),
        not_passing.join("\n")
    );
}
