//! Fault coverage (`kith-conformance fault-coverage`): every MUST / MUST NOT rule of the spec
//! with the reference node's faults that break it and the cases that cite it, and, for each rule
//! that has no fault, the reason why from `conformance/fault-reasons.json`.
//!
//! The requirement coverage table (`--coverage`, `kith-gen coverage`) shows that every rule is
//! cited; this table shows which citations are proven to catch a broken node
//! (`tests/faults.rs` runs every fault against the cases citing its rule) and admits, rule by
//! rule, where no such proof exists and why. A reason starts with its category (see
//! [`Category`]), so that the summary can count the rules that are not observable apart from
//! the few that are observable and still lack a fault (the gap).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kith_node::faults::FaultInfo;

use crate::case::Case;
use crate::coverage::{spec_requirements, Requirement};

/// The checked-in table, relative to the conformance crate.
pub const TABLE_FILE: &str = "FAULT-COVERAGE.md";
/// The checked-in reasons, relative to the conformance crate.
pub const REASONS_FILE: &str = "fault-reasons.json";
/// A reason shorter than this (after its category) is a placeholder, not a reason.
pub const MIN_REASON_CHARS: usize = 25;
/// A reason text given to more rules than this is a placeholder, not specific to each rule.
pub const MAX_SAME_REASON: usize = 3;

/// The conformance crate's directory (where the table and the reasons are checked in).
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Why a rule has no fault: the word before the first `:` of its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    /// `client:` the rule binds a client, author or signer; a node cannot break it.
    Client,
    /// `spec authors:` the rule binds the authors of the spec, of extensions or of later
    /// versions; no implementation can break it.
    SpecAuthors,
    /// `not observable:` the rule binds the node, but its peer cannot see it over the wire.
    NotObservable,
    /// `vectors:` a pure function of bytes (encodings, signing bytes, ids) that every
    /// implementation recomputes against the published vectors.
    Vectors,
    /// `shared path:` observable, but the node has no code path that could break it apart from
    /// another rule whose fault or case already covers that path.
    SharedPath,
    /// `no fault yet:` observable, and a fault could break it alone: the gap.
    NoFaultYet,
}

impl Category {
    /// Every category, in summary order.
    pub const ALL: [Category; 6] = [
        Category::Client,
        Category::SpecAuthors,
        Category::NotObservable,
        Category::Vectors,
        Category::SharedPath,
        Category::NoFaultYet,
    ];

    /// The prefix a reason of this category starts with.
    pub fn prefix(self) -> &'static str {
        match self {
            Category::Client => "client:",
            Category::SpecAuthors => "spec authors:",
            Category::NotObservable => "not observable:",
            Category::Vectors => "vectors:",
            Category::SharedPath => "shared path:",
            Category::NoFaultYet => "no fault yet:",
        }
    }

    /// The summary line's wording.
    fn summary(self) -> &'static str {
        match self {
            Category::Client => "rules on clients, authors or signers (a node cannot break them)",
            Category::SpecAuthors => "rules on the authors of extensions and later versions",
            Category::NotObservable => "rules on the node that its peer cannot observe over the wire",
            Category::Vectors => "pure functions of bytes, checked by the vectors every implementation recomputes",
            Category::SharedPath => "observable, but on the code path of a rule that has a fault or case already",
            Category::NoFaultYet => "observable, no fault yet (the gap)",
        }
    }

    /// The category of a reason, from its prefix.
    pub fn of(reason: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| reason.starts_with(c.prefix()))
    }
}

/// One MUST / MUST NOT rule and what covers it.
#[derive(Debug, Clone)]
pub struct RuleRow {
    /// The rule as the spec states it.
    pub requirement: Requirement,
    /// Faults whose `requirement` is this rule.
    pub faults: Vec<&'static str>,
    /// Scripted cases citing this rule.
    pub cases: Vec<&'static str>,
    /// The reason it has no fault, if one is given.
    pub reason: Option<String>,
}

/// Why the reasons file or the table is wrong; each names the rule to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The reasons file cannot be read or is not a JSON object of strings.
    #[error("{0}: {1}")]
    Unreadable(String, String),
    /// A key appears twice in the reasons file.
    #[error("{0}: the reason is given twice")]
    Duplicate(String),
    /// A MUST rule without a fault has no reason.
    #[error("{0}: no fault and no reason in {REASONS_FILE}")]
    Missing(String),
    /// A reason for a rule that has a fault now.
    #[error("{0}: has the fault(s) {1}, so its reason in {REASONS_FILE} is stale: remove it")]
    Stale(String, String),
    /// A reason for an ID that is not a MUST / MUST NOT rule of the spec.
    #[error("{0}: not a MUST / MUST NOT rule of the spec, remove its reason")]
    NotARule(String),
    /// A reason without one of the category prefixes.
    #[error("{0}: the reason must start with one of {1}")]
    NoCategory(String, String),
    /// A reason too short to say anything specific.
    #[error("{0}: the reason is a placeholder (under {MIN_REASON_CHARS} characters after its category)")]
    TooShort(String),
    /// The same reason text for more than [`MAX_SAME_REASON`] rules.
    #[error("{0}: the same reason for {1} rules; say what is specific to each")]
    Repeated(String, usize),
}

/// Reads the reasons file: rule ID -> reason, plus the problems found in its shape.
pub fn load_reasons(path: &Path) -> (BTreeMap<String, String>, Vec<Problem>) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return (BTreeMap::new(), vec![Problem::Unreadable(path.display().to_string(), e.to_string())]),
    };
    let reasons: BTreeMap<String, String> = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => return (BTreeMap::new(), vec![Problem::Unreadable(path.display().to_string(), e.to_string())]),
    };
    // serde keeps the last of two equal keys; a second reason for one rule is a mistake to name.
    let problems = reasons
        .keys()
        .filter(|id| text.matches(&format!("\"{id}\":")).count() > 1)
        .map(|id| Problem::Duplicate(id.clone()))
        .collect();
    (reasons, problems)
}

/// Whether a requirement is a MUST or MUST NOT rule that still asks something.
fn is_must(r: &Requirement) -> bool {
    r.level.starts_with("MUST") && !r.text.starts_with("(withdrawn")
}

/// The number of `PREFIX-n`, for sorting within a chapter.
fn number(id: &str) -> u64 {
    id.rsplit_once('-').and_then(|(_, n)| n.parse().ok()).unwrap_or(u64::MAX)
}

/// The MUST rules in chapter then number order, with their faults, cases and reasons.
pub fn rows(spec_dir: &Path, faults: &[FaultInfo], cases: &[Case], reasons: &BTreeMap<String, String>) -> Vec<RuleRow> {
    let mut rows: Vec<RuleRow> = spec_requirements(spec_dir)
        .into_iter()
        .filter(is_must)
        .map(|r| RuleRow {
            faults: faults.iter().filter(|f| f.requirement == r.id).map(|f| f.name).collect(),
            cases: cases.iter().filter(|c| c.requirements.contains(&r.id.as_str())).map(|c| c.id).collect(),
            reason: reasons.get(&r.id).cloned(),
            requirement: r,
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.requirement.chapter.as_str(), number(&a.requirement.id))
            .cmp(&(b.requirement.chapter.as_str(), number(&b.requirement.id)))
    });
    rows
}

/// Everything wrong with the reasons against the rules: missing, stale, unknown, placeholder.
pub fn problems(rows: &[RuleRow], reasons: &BTreeMap<String, String>) -> Vec<Problem> {
    let mut out = Vec::new();
    let rules: BTreeSet<&str> = rows.iter().map(|r| r.requirement.id.as_str()).collect();
    for row in rows {
        let id = row.requirement.id.clone();
        match (&row.reason, row.faults.is_empty()) {
            (None, true) => out.push(Problem::Missing(id)),
            (Some(_), false) => out.push(Problem::Stale(id, row.faults.join(", "))),
            _ => {}
        }
    }
    let prefixes = Category::ALL.iter().map(|c| format!("`{}`", c.prefix())).collect::<Vec<_>>().join(" ");
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, reason) in reasons {
        if !rules.contains(id.as_str()) {
            out.push(Problem::NotARule(id.clone()));
        }
        match Category::of(reason) {
            None => out.push(Problem::NoCategory(id.clone(), prefixes.clone())),
            Some(c) if reason[c.prefix().len()..].trim().chars().count() < MIN_REASON_CHARS => {
                out.push(Problem::TooShort(id.clone()))
            }
            Some(_) => {}
        }
        *seen.entry(reason.trim()).or_default() += 1;
    }
    for (id, reason) in reasons {
        let n = seen.get(reason.trim()).copied().unwrap_or_default();
        if n > MAX_SAME_REASON {
            out.push(Problem::Repeated(id.clone(), n));
        }
    }
    out
}

/// Text fit for one Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The rule's text cut to a readable length, with its code spans still closed.
fn short(text: &str) -> String {
    const MAX: usize = 90;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(MAX).collect();
    if s.matches('`').count() % 2 == 1 {
        s.push('`');
    }
    s.push('…');
    s
}

/// The table `FAULT-COVERAGE.md` holds, as Markdown.
pub fn render(rows: &[RuleRow]) -> String {
    let mut out = String::new();
    out.push_str("# Fault coverage\n\n");
    out.push_str(
        "Generated by `cargo run -p kith-conformance -- fault-coverage --write` from the spec's \
         MUST / MUST NOT rules, the reference node's fault table (`reference-node/src/fault.rs`), \
         the cases' citations and the reasons in `conformance/fault-reasons.json`; do not edit it \
         by hand (`tests/fault_coverage.rs` fails when it differs). A fault makes the reference \
         node break exactly one rule; `tests/faults.rs` proves that a case citing the rule catches \
         it. A rule without a fault says why. The requirement coverage table beside it \
         (`kith-conformance --coverage`, `kith-gen coverage`) shows which cases and vectors cite \
         each rule.\n\n",
    );
    let with_fault = rows.iter().filter(|r| !r.faults.is_empty()).count();
    let fault_count: usize = rows.iter().map(|r| r.faults.len()).sum();
    let count = |c: Category| {
        rows.iter().filter(|r| r.faults.is_empty() && r.reason.as_deref().and_then(Category::of) == Some(c)).count()
    };
    let unexplained =
        rows.iter().filter(|r| r.faults.is_empty() && r.reason.as_deref().and_then(Category::of).is_none()).count();
    out.push_str("## Summary\n\n| | rules |\n|---|---|\n");
    out.push_str(&format!("| MUST / MUST NOT rules in the spec | {} |\n", rows.len()));
    out.push_str(&format!(
        "| with a fault that a case citing the rule catches ({fault_count} faults) | {with_fault} |\n"
    ));
    for c in Category::ALL {
        out.push_str(&format!("| no fault: {} | {} |\n", c.summary(), count(c)));
    }
    if unexplained > 0 {
        out.push_str(&format!("| no fault and no valid reason (the test fails) | {unexplained} |\n"));
    }
    let gap: Vec<&str> = rows
        .iter()
        .filter(|r| r.faults.is_empty() && r.reason.as_deref().and_then(Category::of) == Some(Category::NoFaultYet))
        .map(|r| r.requirement.id.as_str())
        .collect();
    out.push_str(&format!(
        "\nThe gap, observable rules with no fault yet: {}.\n",
        if gap.is_empty() { "none".to_owned() } else { gap.join(", ") }
    ));
    let mut chapter = "";
    for r in rows {
        if r.requirement.chapter != chapter {
            chapter = &r.requirement.chapter;
            out.push_str(&format!(
                "\n## {chapter}\n\n| rule | level | text | faults | cases | why no fault |\n|---|---|---|---|---|---|\n"
            ));
        }
        let list = |v: &[&str], code: bool| {
            if v.is_empty() {
                "—".to_owned()
            } else if code {
                v.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" ")
            } else {
                v.join(" ")
            }
        };
        let why = match (&r.reason, r.faults.is_empty()) {
            (_, false) => "—".to_owned(),
            (Some(reason), true) => cell(reason),
            (None, true) => "**no reason given**".to_owned(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.requirement.id,
            r.requirement.level,
            cell(&short(&r.requirement.text)),
            list(&r.faults, true),
            list(&r.cases, false),
            why
        ));
    }
    out
}

/// The table and the problems, from the checked-in spec, reasons, fault table and cases.
pub fn generate() -> (String, Vec<Problem>) {
    let dir = crate_dir();
    let (reasons, mut problems) = load_reasons(&dir.join(REASONS_FILE));
    let rows = rows(&dir.join("../spec"), kith_node::faults::ALL, &crate::cases::all(), &reasons);
    problems.extend(self::problems(&rows, &reasons));
    (render(&rows), problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, faults: Vec<&'static str>, reason: Option<&str>) -> RuleRow {
        RuleRow {
            requirement: Requirement {
                id: id.to_owned(),
                level: "MUST".to_owned(),
                text: "text".to_owned(),
                chapter: "01-x.md".to_owned(),
            },
            faults,
            cases: Vec::new(),
            reason: reason.map(str::to_owned),
        }
    }

    #[test]
    fn problems_name_missing_stale_unknown_and_placeholder_reasons() {
        let long = "client: only the author's signer computes this value, nothing a node sends";
        let reasons: BTreeMap<String, String> = [
            ("A-2", "client: no"),
            ("A-3", long),
            ("A-9", "no fault yet: a fault would drop the answer and case X-001 sees it"),
            ("A-4", "because the node cannot break it in any way at all"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        let rows = vec![
            row("A-1", vec![], None),
            row("A-2", vec![], reasons.get("A-2").map(String::as_str)),
            row("A-3", vec!["f"], Some(long)),
            row("A-4", vec![], reasons.get("A-4").map(String::as_str)),
        ];
        let p = problems(&rows, &reasons);
        assert!(p.contains(&Problem::Missing("A-1".into())));
        assert!(p.contains(&Problem::TooShort("A-2".into())));
        assert!(p.contains(&Problem::Stale("A-3".into(), "f".into())));
        assert!(p.contains(&Problem::NotARule("A-9".into())));
        assert!(p.iter().any(|x| matches!(x, Problem::NoCategory(id, _) if id == "A-4")));
    }

    #[test]
    fn the_same_reason_for_many_rules_is_a_placeholder() {
        let same = "not observable: the node keeps this to itself and no peer sees it";
        let reasons: BTreeMap<String, String> =
            (1..=MAX_SAME_REASON + 1).map(|i| (format!("A-{i}"), same.to_owned())).collect();
        let rows: Vec<RuleRow> = reasons.iter().map(|(id, r)| row(id, vec![], Some(r))).collect();
        let p = problems(&rows, &reasons);
        assert_eq!(p.iter().filter(|x| matches!(x, Problem::Repeated(..))).count(), MAX_SAME_REASON + 1);
    }

    #[test]
    fn rows_sort_by_chapter_then_number() {
        assert!(number("ENTRY-9") < number("ENTRY-10"));
        assert_eq!(short("a `b` c"), "a `b` c");
        let long = format!("`{}", "x".repeat(100));
        assert!(short(&long).ends_with("`…"));
    }
}
