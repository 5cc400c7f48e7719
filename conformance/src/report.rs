//! Reports: human text, JSON, JUnit XML, and an HTML page that shows one or several runs side
//! by side.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::cases::FAMILIES;
use crate::runner::{CaseReport, Outcome, RunReport};

/// The report format written to standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Failures with transcripts, then a summary table.
    Human,
    /// Every case with outcome, duration and transcript.
    Json,
    /// JUnit XML for CI systems.
    Junit,
    /// A self-contained HTML page.
    Html,
}

fn transcript_text(c: &CaseReport, out: &mut String) {
    for l in &c.transcript {
        let arrow = match l.dir {
            crate::client::Direction::Sent => ">",
            crate::client::Direction::Received => "<",
            crate::client::Direction::Note => "#",
        };
        let _ = writeln!(out, "    {:>9.1} ms {:<6} {arrow} {}", l.at_ms, l.conn, l.text);
    }
}

/// Human-readable report: failures and warnings with their transcripts, skipped cases with
/// reasons, a per-family table and the verdict.
pub fn human(r: &RunReport) -> String {
    let mut out = String::new();
    // Cases that failed without running, for one shared reason (a failed prerequisite, a stuck
    // family, the budget), are listed once per reason rather than one block each.
    let mut not_run: BTreeMap<String, (Option<String>, Vec<&str>)> = BTreeMap::new();
    for c in r.cases.iter().filter(|c| matches!(c.outcome, Outcome::Fail | Outcome::Warning | Outcome::Unimplemented)) {
        if let Some(f) =
            c.failure.as_ref().filter(|f| f.got.starts_with("prerequisite failed") || f.got.starts_with("not run:"))
        {
            let reason = f.got.lines().next().unwrap_or_default().to_owned();
            let entry = not_run.entry(reason).or_insert_with(|| (f.rule.clone(), Vec::new()));
            entry.1.push(c.id.as_str());
            continue;
        }
        let _ = writeln!(
            out,
            "\n{} {} ({}; {})\n  {}",
            c.outcome.label(),
            c.id,
            c.level,
            c.requirements.join(", "),
            c.title
        );
        if let Some(f) = &c.failure {
            let _ = writeln!(out, "  expected: {}\n  got:      {}", f.expected, f.got);
            if let Some(rule) = &f.rule {
                let _ = writeln!(out, "  broken:   {rule}");
            }
        }
        if !c.transcript.is_empty() {
            let _ = writeln!(out, "  transcript:");
            transcript_text(c, &mut out);
        }
    }
    for (reason, (rule, ids)) in &not_run {
        let _ = writeln!(out, "\nFAIL {} cases at once: {reason}", ids.len());
        if let Some(rule) = rule {
            let _ = writeln!(out, "  broken:   {rule}");
        }
        const SHOWN: usize = 40;
        let more = if ids.len() > SHOWN { format!(" and {} more", ids.len() - SHOWN) } else { String::new() };
        let _ = writeln!(out, "  cases:    {}{more}", ids[..ids.len().min(SHOWN)].join(", "));
    }
    let skipped: Vec<&CaseReport> =
        r.cases.iter().filter(|c| matches!(c.outcome, Outcome::Skipped | Outcome::NotApplicable)).collect();
    if !skipped.is_empty() {
        let _ = writeln!(out, "\nnot run:");
        for c in skipped {
            let _ = writeln!(out, "  {:<28} {:<8} {}", c.id, c.outcome.label(), c.reason.as_deref().unwrap_or(""));
        }
    }
    let _ = writeln!(out, "\n{}", summary_table(r));
    let _ = writeln!(out, "{}", verdict(r));
    out
}

/// The one-line verdict: `PASS: N cases in T s against TARGET — counts`.
pub fn verdict(r: &RunReport) -> String {
    let counts = r.counts();
    let n = |o| counts.get(&o).copied().unwrap_or(0);
    format!(
        "{}: {} cases in {:.1} s against {} ({}) — {} passed, {} failed, {} warnings, {} unimplemented, {} skipped, {} not applicable",
        if r.success() { "PASS" } else { "FAIL" },
        r.cases.len(),
        r.duration_ms / 1000.0,
        r.target,
        r.implementation,
        n(Outcome::Pass),
        n(Outcome::Fail),
        n(Outcome::Warning),
        n(Outcome::Unimplemented),
        n(Outcome::Skipped),
        n(Outcome::NotApplicable),
    )
}

/// The per-family count table.
pub fn summary_table(r: &RunReport) -> String {
    let mut fam: BTreeMap<&str, BTreeMap<Outcome, usize>> = BTreeMap::new();
    for c in &r.cases {
        *fam.entry(c.family.as_str()).or_default().entry(c.outcome).or_insert(0) += 1;
    }
    let mut out = format!("{:<8}", "family");
    for o in Outcome::ALL {
        let _ = write!(out, " {:>13}", o.label());
    }
    out.push('\n');
    let mut total: BTreeMap<Outcome, usize> = BTreeMap::new();
    for (f, counts) in &fam {
        let _ = write!(out, "{f:<8}");
        for o in Outcome::ALL {
            let n = counts.get(&o).copied().unwrap_or(0);
            *total.entry(o).or_insert(0) += n;
            let _ = write!(out, " {n:>13}");
        }
        out.push('\n');
    }
    let _ = write!(out, "{:<8}", "total");
    for o in Outcome::ALL {
        let _ = write!(out, " {:>13}", total.get(&o).copied().unwrap_or(0));
    }
    out
}

/// JSON report.
pub fn json(r: &RunReport) -> String {
    serde_json::to_string_pretty(r).unwrap_or_default()
}

/// Escapes text for XML and HTML.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => o.push_str(&format!("&#x{:x};", c as u32)),
            c => o.push(c),
        }
    }
    o
}

/// JUnit XML: one test suite per family; failures and MUST-level unimplemented cases are
/// `<failure>`, skipped and not applicable cases `<skipped>`, warnings pass with a note.
pub fn junit(r: &RunReport) -> String {
    let mut by_family: BTreeMap<&str, Vec<&CaseReport>> = BTreeMap::new();
    for c in &r.cases {
        by_family.entry(c.family.as_str()).or_default().push(c);
    }
    let failing = |c: &CaseReport| {
        c.outcome == Outcome::Fail || (c.outcome == Outcome::Unimplemented && c.level == crate::case::Level::Must)
    };
    let skipped = |c: &CaseReport| {
        matches!(c.outcome, Outcome::Skipped | Outcome::NotApplicable)
            || (c.outcome == Outcome::Unimplemented && c.level == crate::case::Level::Should)
    };
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"kith-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        r.cases.len(),
        r.cases.iter().filter(|c| failing(c)).count(),
        r.cases.iter().filter(|c| skipped(c)).count(),
        r.duration_ms / 1000.0
    );
    for (fam, cases) in by_family {
        let time: f64 = cases.iter().map(|c| c.duration_ms).sum::<f64>() / 1000.0;
        let _ = writeln!(
            out,
            "  <testsuite name=\"{fam}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{time:.3}\">",
            cases.len(),
            cases.iter().filter(|c| failing(c)).count(),
            cases.iter().filter(|c| skipped(c)).count(),
        );
        for c in cases {
            let _ = write!(
                out,
                "    <testcase classname=\"kith.{fam}\" name=\"{} {}\" time=\"{:.3}\">",
                escape(&c.id),
                escape(&c.title),
                c.duration_ms / 1000.0
            );
            let mut details = String::new();
            if let Some(f) = &c.failure {
                let _ = writeln!(details, "expected: {}\ngot: {}", f.expected, f.got);
                if let Some(rule) = &f.rule {
                    let _ = writeln!(details, "broken: {rule}");
                }
            }
            transcript_text(c, &mut details);
            if failing(c) {
                let msg = c.failure.as_ref().map(|f| format!("expected {}", f.expected)).unwrap_or_default();
                let _ = write!(out, "<failure message=\"{}\">{}</failure>", escape(&msg), escape(&details));
            } else if skipped(c) {
                let msg = c.reason.clone().unwrap_or_else(|| c.outcome.label().to_owned());
                let _ = write!(out, "<skipped message=\"{}\"/>", escape(&msg));
            } else if c.outcome == Outcome::Warning {
                let _ = write!(out, "<system-out>WARNING (SHOULD)\n{}</system-out>", escape(&details));
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn outcome_class(o: &str) -> &'static str {
    match o {
        "pass" => "pass",
        "fail" => "fail",
        "warning" => "warn",
        "unimplemented" => "unimpl",
        _ => "skip",
    }
}

/// An HTML page for one or more JSON reports: one column per implementation, one row per
/// case, grouped by family; each cell opens to the failure and the transcript.
pub fn html(runs: &[Value]) -> String {
    let mut rows: BTreeMap<String, (String, String, String, String)> = BTreeMap::new();
    for run in runs {
        for c in run["cases"].as_array().into_iter().flatten() {
            let id = c["id"].as_str().unwrap_or_default().to_owned();
            rows.entry(id).or_insert_with(|| {
                (
                    c["family"].as_str().unwrap_or_default().to_owned(),
                    c["title"].as_str().unwrap_or_default().to_owned(),
                    c["level"].as_str().unwrap_or_default().to_owned(),
                    c["requirements"]
                        .as_array()
                        .map(|r| r.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default(),
                )
            });
        }
    }
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Kith conformance report</title><style>\
         body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top}\
         .pass{background:#c8f0c8}.fail{background:#f4b4b4}.warn{background:#f8e4a0}.unimpl{background:#d8c8f0}.skip{background:#e4e4e4}\
         pre{font-size:11px;max-width:70em;overflow:auto;white-space:pre-wrap}h2{margin-top:1.5em}summary{cursor:pointer}\
         </style></head><body><h1>Kith conformance report</h1>\n<table><tr><th>implementation</th><th>target</th><th>result</th><th>cases</th><th>time</th></tr>\n",
    );
    // Runs with the same implementation name (no `--implementation`) get numbered columns.
    let labels: Vec<String> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            let name = run["implementation"].as_str().unwrap_or_default();
            let same = runs.iter().filter(|r| r["implementation"].as_str().unwrap_or_default() == name).count();
            if same > 1 {
                format!("{name} (run {})", i + 1)
            } else {
                name.to_owned()
            }
        })
        .collect();
    for (run, label) in runs.iter().zip(&labels) {
        let cases = run["cases"].as_array().map(|c| c.len()).unwrap_or(0);
        let failed = run["cases"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["level"] == "MUST" && (c["outcome"] == "fail" || c["outcome"] == "unimplemented"));
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{cases}</td><td>{:.1} s</td></tr>",
            escape(label),
            escape(run["target"].as_str().unwrap_or_default()),
            if failed { "fail" } else { "pass" },
            if failed { "FAIL" } else { "PASS" },
            run["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0
        );
    }
    out.push_str("</table>\n");
    let mut current = String::new();
    for (id, (family, title, level, reqs)) in &rows {
        if *family != current {
            if !current.is_empty() {
                out.push_str("</table>\n");
            }
            current = family.clone();
            let desc = FAMILIES.iter().find(|(f, _)| f == family).map(|(_, d)| *d).unwrap_or("");
            let _ = write!(
                out,
                "<h2>{} — {}</h2><table><tr><th>case</th><th>level</th><th>requirements</th>",
                escape(family),
                escape(desc)
            );
            for label in &labels {
                let _ = write!(out, "<th>{}</th>", escape(label));
            }
            out.push_str("</tr>\n");
        }
        let _ = write!(
            out,
            "<tr><td><b>{}</b><br>{}</td><td>{}</td><td>{}</td>",
            escape(id),
            escape(title),
            escape(level),
            escape(reqs)
        );
        for run in runs {
            let case = run["cases"].as_array().into_iter().flatten().find(|c| c["id"] == id.as_str());
            match case {
                None => out.push_str("<td class=\"skip\">—</td>"),
                Some(c) => {
                    let o = c["outcome"].as_str().unwrap_or("?");
                    let mut detail = String::new();
                    if let Some(r) = c["reason"].as_str() {
                        let _ = writeln!(detail, "reason: {r}");
                    }
                    if c["failure"].is_object() {
                        let _ = writeln!(
                            detail,
                            "expected: {}\ngot: {}",
                            c["failure"]["expected"].as_str().unwrap_or_default(),
                            c["failure"]["got"].as_str().unwrap_or_default()
                        );
                        if let Some(rule) = c["failure"]["rule"].as_str() {
                            let _ = writeln!(detail, "broken: {rule}");
                        }
                    }
                    for l in c["transcript"].as_array().into_iter().flatten() {
                        let arrow = match l["dir"].as_str() {
                            Some("sent") => ">",
                            Some("received") => "<",
                            _ => "#",
                        };
                        let _ = writeln!(
                            detail,
                            "{:>9.1} ms {:<6} {arrow} {}",
                            l["at_ms"].as_f64().unwrap_or(0.0),
                            l["conn"].as_str().unwrap_or_default(),
                            l["text"].as_str().unwrap_or_default()
                        );
                    }
                    let _ = write!(
                        out,
                        "<td class=\"{}\"><details><summary>{} ({:.0} ms)</summary><pre>{}</pre></details></td>",
                        outcome_class(o),
                        escape(o),
                        c["duration_ms"].as_f64().unwrap_or(0.0),
                        escape(&detail)
                    );
                }
            }
        }
        out.push_str("</tr>\n");
    }
    if !current.is_empty() {
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Level;

    fn sample() -> RunReport {
        let c = |id: &str, outcome| CaseReport {
            id: id.into(),
            family: "HS".into(),
            title: "t <x>".into(),
            level: Level::Must,
            requirements: vec!["HS-1".into()],
            outcome,
            reason: None,
            failure: None,
            duration_ms: 1.0,
            timed_out: false,
            transcript: vec![],
        };
        RunReport {
            implementation: "impl".into(),
            target: "ws://x/".into(),
            duration_ms: 5.0,
            cases: vec![c("HS-A-001", Outcome::Pass), c("HS-B-001", Outcome::Fail)],
        }
    }

    #[test]
    fn junit_counts_and_escapes() {
        let x = junit(&sample());
        assert!(x.contains("tests=\"2\" failures=\"1\""));
        assert!(x.contains("t &lt;x&gt;"));
    }

    #[test]
    fn html_shows_runs_side_by_side() {
        let a = serde_json::to_value(sample()).expect("json");
        let mut b = a.clone();
        b["implementation"] = "other".into();
        let page = html(&[a.clone(), b]);
        assert!(page.contains("<th>impl</th><th>other</th>"));
        let same = html(&[a.clone(), a]);
        assert!(same.contains("<th>impl (run 1)</th><th>impl (run 2)</th>"), "{same}");
        assert!(page.matches("class=\"fail\"").count() >= 2);
    }

    #[test]
    fn human_lists_cases_failed_for_one_reason_once() {
        let mut r = sample();
        let prereq = crate::case::Failure::fail("a login", "prerequisite failed: login as the admin (HS-28): silence")
            .rule("HS-28");
        for c in &mut r.cases {
            c.outcome = Outcome::Fail;
            c.failure = Some(prereq.clone());
        }
        let h = human(&r);
        assert!(h.contains("FAIL 2 cases at once: prerequisite failed: login as the admin (HS-28): silence"), "{h}");
        assert!(h.contains("cases:    HS-A-001, HS-B-001"), "{h}");
        assert!(!h.contains("\nFAIL HS-A-001"), "{h}");
    }

    #[test]
    fn human_has_verdict_and_table() {
        let h = human(&sample());
        assert!(h.contains("FAIL: 2 cases"));
        assert!(h.contains("total"));
    }
}
