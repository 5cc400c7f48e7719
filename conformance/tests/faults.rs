//! The suite can fail: for every fault the reference node can be told to commit, the cases that
//! cite the fault's requirement are run against a node with that fault, and at least one of them
//! must fail. A fault that no case notices fails this test.
#![cfg(feature = "faults")]

use kith_conformance::cases;
use kith_conformance::cli::cases_failing_under;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_is_caught_by_a_case_citing_its_requirement() {
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_kith-conformance"));
    let all = cases::all();
    let mut problems = Vec::new();
    for fault in kith_node::faults::ALL {
        let citing: Vec<String> =
            all.iter().filter(|c| c.requirements.contains(&fault.requirement)).map(|c| c.id.to_owned()).collect();
        if citing.is_empty() {
            problems.push(format!("{} ({}): no case cites {}", fault.name, fault.requirement, fault.requirement));
            continue;
        }
        match cases_failing_under(&exe, fault.name, citing.clone()).await {
            Ok(failed) if failed.is_empty() => {
                problems.push(format!("{} ({}) went unnoticed by {}", fault.name, fault.requirement, citing.join(", ")))
            }
            Ok(failed) => eprintln!("{:<28} caught by {}", fault.name, failed.join(", ")),
            Err(e) => problems.push(format!("{}: the run failed: {e}", fault.name)),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The README's fault-by-case table (regenerated with `kith-conformance faults-table`) has a row
/// for every fault the node knows, with the requirement it breaks.
#[test]
fn the_readme_table_lists_every_fault() {
    let readme = include_str!("../README.md");
    let missing: Vec<&str> = kith_node::faults::ALL
        .iter()
        .filter(|f| !readme.contains(&format!("| `{}` | {} |", f.name, f.requirement)))
        .map(|f| f.name)
        .collect();
    assert!(
        missing.is_empty(),
        "README fault table lacks {missing:?}; regenerate it with `kith-conformance faults-table`"
    );
}
