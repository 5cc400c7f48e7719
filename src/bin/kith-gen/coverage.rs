//! `kith-gen coverage`: every requirement ID the spec defines, and where it is checked.
//!
//! A definition is a line of `spec/NN-*.md` that starts with `- [PREFIX-N]`. A citation is the
//! ID in a vector's `requirements`, the text `PREFIX-N` in `tests/` or `reference-node/tests/`,
//! or in the `#[cfg(test)]` part of a `src/` module, or in `conformance/src/`. A definition may instead
//! carry a mark: `(checked by the conformance suite)` or `(not testable: <why>)`; a marked ID
//! cited nowhere is listed as marked, not as uncovered.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::ExitCode;

/// How the spec marks a requirement's verification in its definition text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// No mark: some vector or test must cite it.
    None,
    /// `(checked by the conformance suite)`: the suite checks it against a running node.
    Conformance,
    /// `(not testable: ...)`: guidance no test can observe.
    NotTestable,
}

fn mark_of(definition: &str) -> Mark {
    let lower = definition.to_ascii_lowercase();
    if lower.contains("(checked by the conformance suite") {
        Mark::Conformance
    } else if lower.contains("(not testable") {
        Mark::NotTestable
    } else {
        Mark::None
    }
}

/// Requirement IDs defined in the spec chapters, in chapter order, with their chapter and mark.
fn defined(root: &Path) -> Vec<(String, String, Mark)> {
    let mut chapters: Vec<_> = std::fs::read_dir(root.join("spec"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_else(|_| Vec::new());
    chapters.retain(|p| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        name.ends_with(".md") && name.as_bytes().first().is_some_and(u8::is_ascii_digit)
    });
    chapters.sort();
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for path in chapters {
        let chapter = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for line in text.lines() {
            let line = line.trim_start();
            let Some(rest) = line.strip_prefix("- [").or_else(|| line.strip_prefix("* [")) else { continue };
            let Some(end) = rest.find(']') else { continue };
            let id = &rest[..end];
            // A withdrawn requirement keeps its number but asks nothing.
            if rest[end + 1..].trim_start().starts_with("(withdrawn") {
                continue;
            }
            if is_requirement_id(id) && seen.insert(id.to_owned()) {
                out.push((id.to_owned(), chapter.clone(), mark_of(&rest[end + 1..])));
            }
        }
    }
    out
}

/// `PREFIX-N`: uppercase letters, a dash, digits.
pub fn is_requirement_id(id: &str) -> bool {
    let Some((prefix, n)) = id.split_once('-') else { return false };
    !prefix.is_empty()
        && prefix.bytes().all(|b| b.is_ascii_uppercase())
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
}

/// Every `PREFIX-N` token in a text (not followed by another digit).
fn ids_in(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_uppercase() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_uppercase() {
                i += 1;
            }
            if i < bytes.len() && bytes[i] == b'-' {
                let dash = i;
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                if i > dash + 1 {
                    out.insert(text[start..i].to_owned());
                }
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Every file below `dir` with one of the extensions, recursively, skipping `target`.
fn files_under(dir: &Path, exts: &[&str], out: &mut Vec<std::path::PathBuf>) {
    let Ok(read) = std::fs::read_dir(dir) else { return };
    for entry in read.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target" && n != "snapshots") {
                files_under(&path, exts, out);
            }
        } else if path.extension().is_some_and(|e| exts.iter().any(|x| e == *x)) {
            out.push(path);
        }
    }
}

/// ID -> the places citing it, for one kind of source.
fn cited_in_files(root: &Path, dirs: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for dir in dirs {
        let mut files = Vec::new();
        files_under(&root.join(dir), &["rs"], &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            // In the library, only test code counts: its doc comments cite IDs for navigation,
            // which checks nothing.
            // The generator's citations are counted through the vectors it writes.
            if f.starts_with(root.join("src/bin")) {
                continue;
            }
            let text = if f.starts_with(root.join("src")) {
                text.find("#[cfg(test)]").map_or("", |at| &text[at..])
            } else {
                &text
            };
            let rel = f.strip_prefix(root).unwrap_or(&f).to_string_lossy().into_owned();
            for id in ids_in(text) {
                out.entry(id).or_default().insert(rel.clone());
            }
        }
    }
    out
}

/// ID -> vector tc_ids citing it in their `requirements`.
fn cited_in_vectors(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = Vec::new();
    files_under(&root.join("vectors"), &["json"], &mut files);
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        for group in v["test_groups"].as_array().into_iter().flatten() {
            for t in group["tests"].as_array().into_iter().flatten() {
                let tc = t["tc_id"].as_str().unwrap_or_default();
                for r in t["requirements"].as_array().into_iter().flatten() {
                    if let Some(r) = r.as_str() {
                        out.entry(r.to_owned()).or_default().insert(tc.to_owned());
                    }
                }
            }
        }
    }
    out
}

fn summary(places: Option<&BTreeSet<String>>) -> String {
    match places {
        None => String::new(),
        Some(p) if p.len() <= 3 => p.iter().cloned().collect::<Vec<_>>().join(" "),
        Some(p) => format!("{} (+{} more)", p.iter().take(3).cloned().collect::<Vec<_>>().join(" "), p.len() - 3),
    }
}

/// Prints the table; with `strict`, fails when an ID is uncovered.
pub fn run(root: &Path, strict: bool) -> ExitCode {
    let ids = defined(root);
    let vectors = cited_in_vectors(root);
    let tests = cited_in_files(root, &["src", "tests", "reference-node/tests"]);
    let conformance = cited_in_files(root, &["conformance/src"]);
    let mut uncovered = Vec::new();
    let mut marked = 0;
    println!("| requirement | chapter | vectors | tests | conformance |");
    println!("|---|---|---|---|---|");
    for (id, chapter, mark) in &ids {
        let (v, t, c) = (vectors.get(id), tests.get(id), conformance.get(id));
        if v.is_none() && t.is_none() && c.is_none() {
            match mark {
                Mark::None => {
                    uncovered.push(id.clone());
                    println!("| {id} | {chapter} | UNCOVERED | | |");
                }
                Mark::Conformance => {
                    marked += 1;
                    println!("| {id} | {chapter} | | | marked in the spec |");
                }
                Mark::NotTestable => {
                    marked += 1;
                    println!("| {id} | {chapter} | not testable (spec) | | |");
                }
            }
        } else {
            println!("| {id} | {chapter} | {} | {} | {} |", summary(v), summary(t), summary(c));
        }
    }
    let by = |m: &BTreeMap<String, BTreeSet<String>>| ids.iter().filter(|(id, _, _)| m.contains_key(id)).count();
    println!();
    println!(
        "{} requirements: {} cited by vectors, {} by tests, {} by the conformance suite, {} only marked in the spec, {} uncovered",
        ids.len(),
        by(&vectors),
        by(&tests),
        by(&conformance),
        marked,
        uncovered.len()
    );
    if !uncovered.is_empty() {
        println!("uncovered: {}", uncovered.join(" "));
    }
    if strict && !uncovered.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
