//! A node that never answers `hello` gets a fast, clear verdict: the README's main command
//! (every scripted case and the default FUZZ cases) against the reference node with the
//! `ignore-hello` fault finishes well within a minute, fails, and names the prerequisite that
//! broke (a login, HS-28) instead of waiting out every case's timeouts (19 minutes for 289
//! scripted and 200 FUZZ cases before the runner probed logins).
#![cfg(feature = "faults")]

use std::time::{Duration, Instant};

#[test]
fn a_node_that_ignores_hello_fails_fast_naming_the_prerequisite() {
    let exe = env!("CARGO_BIN_EXE_kith-conformance");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("report.json");
    let started = Instant::now();
    let run = std::process::Command::new(exe)
        .args(["--fault", "ignore-hello", "--format", "json", "--quiet", "--output"])
        .arg(&out)
        .output()
        .expect("the runner runs");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "a MUST failure exits 1; stderr:\n{stderr}");
    assert!(took < Duration::from_secs(60), "took {took:?}; a silent node must get its verdict within a minute");
    assert!(stderr.contains("FAIL: "), "the verdict line goes to stderr with --output: {stderr}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("report written")).expect("JSON report");
    let cases = report["cases"].as_array().expect("cases");
    let fuzz = cases.iter().filter(|c| c["family"] == "FUZZ").count();
    assert!(fuzz >= 5000, "the default FUZZ cases ran: {fuzz}");
    let got = |c: &serde_json::Value| c["failure"]["got"].as_str().unwrap_or_default().to_owned();
    let prerequisite = "prerequisite failed: login as the admin (HS-28)";
    let citing: Vec<&serde_json::Value> = cases.iter().filter(|c| got(c).contains(prerequisite)).collect();
    // Every case that logs in (most scripted ones, every FUZZ case) fails citing the probe.
    assert!(citing.len() > cases.len() / 2, "{} of {} cases cite the login prerequisite", citing.len(), cases.len());
    for c in &citing {
        let graded = c["outcome"] == "fail" || (c["outcome"] == "warning" && c["level"] == "SHOULD");
        assert!(graded && c["failure"]["rule"] == "HS-28", "{c}");
    }
    let hs_valid = cases.iter().find(|c| c["id"] == "HS-VALID-001").expect("HS-VALID-001");
    assert!(got(hs_valid).contains("a valid `hello` got no answer"), "{}", got(hs_valid));
    // Cases that need no login still run: a node_info before hello passes.
    let node_info = cases.iter().find(|c| c["id"] == "HS-NODEINFO-001").expect("HS-NODEINFO-001");
    assert_eq!(node_info["outcome"], "pass", "{node_info}");
}
