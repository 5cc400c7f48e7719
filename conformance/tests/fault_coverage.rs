//! The fault coverage table (`conformance/FAULT-COVERAGE.md`) is what `kith-conformance
//! fault-coverage --write` generates, and its reasons are sound: every MUST rule without a fault
//! has one, none is given for a rule that has a fault (stale) or for an ID that is not a MUST
//! rule, and none is a placeholder. Fast: no node runs.

use kith_conformance::fault_coverage::{crate_dir, generate, TABLE_FILE};

#[test]
fn every_must_rule_without_a_fault_has_a_specific_reason() {
    let (_, problems) = generate();
    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(list.is_empty(), "{} problem(s) in conformance/fault-reasons.json:\n{}", list.len(), list.join("\n"));
}

#[test]
fn the_checked_in_table_is_what_the_command_generates() {
    let (table, _) = generate();
    let path = crate_dir().join(TABLE_FILE);
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == table,
        "{} is stale: regenerate it with `cargo run -p kith-conformance -- fault-coverage --write`",
        path.display()
    );
}
