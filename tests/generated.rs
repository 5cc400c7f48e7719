//! The committed generated files are what the generator writes now: `cargo test` alone catches a
//! stale schema or vector file.

use std::process::Command;

#[test]
fn generator_check_passes() {
    let out = Command::new(env!("CARGO_BIN_EXE_kith-gen")).arg("--check").output().expect("run kith-gen");
    assert!(
        out.status.success(),
        "kith-gen --check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn generator_rejects_unknown_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_kith-gen")).arg("--frobnicate").output().expect("run kith-gen");
    assert!(!out.status.success());
}

#[test]
fn coverage_table_lists_spec_ids() {
    let out = Command::new(env!("CARGO_BIN_EXE_kith-gen")).arg("coverage").output().expect("run kith-gen");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("| requirement | chapter | vectors | tests | conformance |"), "{text}");
    assert!(text.contains("| ENC-14 |"), "{text}");
}
