//! Every requirement citation in the workspace names a rule the spec defines, and says what that
//! rule says.
//!
//! A citation is a requirement ID (`HS-22`: a prefix the spec uses, a dash, a number without a
//! leading zero) anywhere in a `.rs` file of any crate (`src/`, `tests/`, `conformance/`,
//! `reference-node/`, `benches/`, `fuzz/`), in `spec/schemas/*.json` (where the doc comments
//! land) or in a vector's `requirements`. Two checks:
//!
//! - **The ID exists**: the spec defines it (`- [HS-22] ...` in `spec/NN-*.md`) and has not
//!   withdrawn it (`- [FRAME-38] (withdrawn: ...)`).
//! - **The anchors agree**: each group of IDs cited together (`[HS-25], [HS-26]`) is read with
//!   the text before it back to the previous group, and also the text after it when it labels
//!   that text (`HS-8: ...`). The anchor words in that window are error codes (in backticks, in
//!   a string or as `ErrorCode::Variant`) and member or message names in backticks; on a doc
//!   comment's first line whose window has none, the enum variant it documents when that names
//!   an error code (`UnsupportedVersion`). Every rule of the group must contain one of the
//!   anchor words, and every error code among them must occur in one of the group's rules. A
//!   window with no anchor word is not checked for anchors.
//!
//! A citation that is right but whose line names a word its rule does not (a rule that speaks of
//! the thing by another name) is listed in `spec/citation-exceptions.txt` with a reason.
//! Case IDs (`HS-001`, `FOLLOW-PAGE-001`) have a leading zero or a longer prefix and are not
//! citations.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One requirement of the spec.
struct Rule {
    /// The text of its bullet, continuation lines included.
    text: String,
    /// Marked `(withdrawn ...)`.
    withdrawn: bool,
}

/// Every rule defined in `spec/NN-*.md`, by ID.
fn spec_rules(root: &Path) -> BTreeMap<String, Rule> {
    let mut chapters: Vec<PathBuf> =
        std::fs::read_dir(root.join("spec")).into_iter().flatten().flatten().map(|e| e.path()).collect();
    chapters.retain(|p| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        name.ends_with(".md") && name.as_bytes().first().is_some_and(u8::is_ascii_digit)
    });
    let mut out = BTreeMap::new();
    for path in chapters {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut current: Option<(String, String)> = None;
        for line in text.lines() {
            let trimmed = line.trim_start();
            let bullet = trimmed.strip_prefix("- [").or_else(|| trimmed.strip_prefix("* ["));
            let definition = bullet.and_then(|rest| {
                let end = rest.find(']')?;
                is_id(&rest[..end]).then(|| (rest[..end].to_owned(), rest[end + 1..].trim().to_owned()))
            });
            // A rule's bullet goes on over indented lines until a blank line or the next bullet.
            let continues = !trimmed.is_empty()
                && line.starts_with(' ')
                && !trimmed.starts_with("- ")
                && !trimmed.starts_with("* ");
            if definition.is_none() && continues {
                if let Some((_, body)) = current.as_mut() {
                    body.push(' ');
                    body.push_str(trimmed);
                }
                continue;
            }
            if let Some((id, body)) = current.take() {
                let withdrawn = body.starts_with("(withdrawn");
                out.insert(id, Rule { text: body, withdrawn });
            }
            current = definition;
        }
        if let Some((id, body)) = current.take() {
            let withdrawn = body.starts_with("(withdrawn");
            out.insert(id, Rule { text: body, withdrawn });
        }
    }
    out
}

/// `PREFIX-N` with N free of leading zeros.
fn is_id(id: &str) -> bool {
    let Some((prefix, n)) = id.split_once('-') else { return false };
    !prefix.is_empty()
        && prefix.bytes().all(|b| b.is_ascii_uppercase())
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
        && !(n.len() > 1 && n.starts_with('0'))
}

/// The requirement IDs in a line whose prefix is one of the spec's, in order, with their byte
/// ranges.
fn ids_in(line: &str, prefixes: &BTreeSet<String>) -> Vec<(usize, usize, String)> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'-' || bytes[i - 1] == b'_');
        if !(bytes[i].is_ascii_uppercase() && starts_word) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_uppercase() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'-' || !prefixes.contains(&line[start..i]) {
            continue;
        }
        let dash = i;
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        // `HS-001` is a case ID; `ENTRY-7a` or `FEED-3-x` is some other name.
        let ends_word = i >= bytes.len() || !(bytes[i].is_ascii_alphanumeric() || bytes[i] == b'-' || bytes[i] == b'_');
        if i > dash + 1 && ends_word {
            let id = &line[start..i];
            let n = &line[dash + 1..i];
            if !(n.len() > 1 && n.starts_with('0')) {
                out.push((start, i, id.to_owned()));
            }
        }
    }
    out
}

/// IDs cited together (`[ACCT-28]`, `HS-20, HS-30 and HS-38`, `FEED-31..FEED-33`) and the
/// text that speaks of them.
struct Group {
    /// The IDs as written.
    ids: Vec<String>,
    /// What each must say: one ID, or every ID of a range (`ACCT-10..ACCT-16`, `HS-21 to
    /// HS-25`), of which one must say it.
    units: Vec<Vec<String>>,
    /// The text from the previous group (at most [`REACH`] bytes back) to the end of this one,
    /// as in `` `sig_old` ([ACCT-28]) ``; when the group labels what follows (`HS-8: ...`), also
    /// the text after it up to the next group.
    window: String,
}

/// How far from its IDs a citation's anchor words may stand, in bytes.
const REACH: usize = 100;

/// A group being read: start of its first ID, end of its last, its IDs, its units.
type Span = (usize, usize, Vec<String>, Vec<Vec<String>>);

/// The line's citations, grouped, with their windows.
fn groups_in(line: &str, prefixes: &BTreeSet<String>) -> Vec<Group> {
    let ids = ids_in(line, prefixes);
    let mut spans: Vec<Span> = Vec::new();
    for (start, end, id) in ids {
        let gap = spans.last().map(|(_, last_end, _, _)| &line[*last_end..start]);
        let joined = gap.is_some_and(|gap| {
            gap.split(|c: char| !c.is_ascii_alphanumeric()).all(|w| w.is_empty() || ["and", "or", "to"].contains(&w))
        });
        let ranged = gap.is_some_and(|gap| gap.contains("..") || gap.contains(" to "));
        match spans.last_mut() {
            Some(span) if joined => {
                span.1 = end;
                let from = span.2.last().cloned().unwrap_or_default();
                span.2.push(id.clone());
                match range(&from, &id) {
                    Some(all) if ranged => {
                        span.3.pop();
                        span.3.push(all);
                    }
                    _ => span.3.push(vec![id]),
                }
            }
            _ => spans.push((start, end, vec![id.clone()], vec![vec![id]])),
        }
    }
    let floor = |at: usize| (0..=at).rev().find(|i| line.is_char_boundary(*i)).unwrap_or(0);
    let ceil = |at: usize| (at.min(line.len())..=line.len()).find(|i| line.is_char_boundary(*i)).unwrap_or(line.len());
    let mut out = Vec::new();
    for (k, (start, end, ids, units)) in spans.iter().enumerate() {
        let mut before = k.checked_sub(1).map_or(0, |j| spans[j].1).max(floor(start.saturating_sub(REACH)));
        // A citation speaks for its own sentence.
        if let Some(stop) = line[before..*start].rfind(". ") {
            before += stop + 2;
        }
        let after = spans.get(k + 1).map_or(line.len(), |next| next.0).min(ceil(end + REACH));
        let left = &line[before..*end];
        let labels = {
            let rest = &line[*end..];
            rest.starts_with(':') || rest.starts_with("]:")
        };
        let window = if labels { line[before..after].to_owned() } else { left.to_owned() };
        out.push(Group { ids: ids.clone(), units: units.clone(), window });
    }
    out
}

/// `HS-21`, `HS-25` -> `HS-21` to `HS-25`, when both have one prefix and rise.
fn range(from: &str, to: &str) -> Option<Vec<String>> {
    let (p, a) = from.split_once('-')?;
    let (q, b) = to.split_once('-')?;
    let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
    (p == q && a < b).then(|| (a..=b).map(|n| format!("{p}-{n}")).collect())
}

/// The words a citation can be anchored by.
struct Vocabulary {
    /// The error registry (chapter 06 §4).
    codes: BTreeSet<String>,
    /// Member names and message types of the schemas.
    members: BTreeSet<String>,
}

impl Vocabulary {
    fn load(root: &Path) -> Self {
        let framing = std::fs::read_to_string(root.join("spec/06-framing.md")).unwrap_or_default();
        let mut codes = BTreeSet::new();
        // The registry is the first column of the table in §4; other tables list members.
        let registry = framing.lines().skip_while(|l| !l.starts_with("## 4.")).take_while(|l| !l.starts_with("## 5."));
        for line in registry {
            if let Some(rest) = line.strip_prefix("| `") {
                if let Some(end) = rest.find('`') {
                    codes.insert(rest[..end].to_owned());
                }
            }
        }
        let mut members = BTreeSet::new();
        for entry in std::fs::read_dir(root.join("spec/schemas")).into_iter().flatten().flatten() {
            let path = entry.path();
            let Some(stem) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else { continue };
            // `hello.json` is the message `hello`; `client-frame.json` names no message.
            if !stem.contains('-') {
                members.insert(stem);
            }
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
            collect_members(&value, &mut members);
        }
        Vocabulary { codes, members }
    }

    fn knows(&self, word: &str) -> bool {
        self.codes.contains(word) || self.members.contains(word)
    }
}

/// Every key of every `properties` object in a schema, and every `const` string of a `type`.
fn collect_members(value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                if key == "properties" {
                    if let Some(props) = v.as_object() {
                        for (name, prop) in props {
                            out.insert(name.clone());
                            if name == "type" {
                                if let Some(c) = prop.get("const").and_then(|c| c.as_str()) {
                                    out.insert(c.to_owned());
                                }
                            }
                        }
                    }
                }
                collect_members(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_members(v, out)),
        _ => {}
    }
}

/// `UnsupportedVersion` -> `unsupported_version`.
fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The anchor words a line names: vocabulary words in backticks, error codes in double quotes,
/// and `ErrorCode::Variant`s.
fn anchors_in(line: &str, vocab: &Vocabulary) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, span) in line.split('`').enumerate() {
        if i % 2 == 1 {
            // `--max-backfill` is the flag for `max_backfill`.
            let span = span.replace('-', "_");
            for word in span.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                let word = word.trim_matches('_');
                if vocab.knows(word) {
                    out.insert(word.to_owned());
                }
            }
        }
    }
    for (i, span) in line.split('"').enumerate() {
        if i % 2 == 1 && vocab.codes.contains(span) {
            out.insert(span.to_owned());
        }
    }
    let mut rest = line;
    while let Some(at) = rest.find("ErrorCode::") {
        rest = &rest[at + "ErrorCode::".len()..];
        let name: String = rest.chars().take_while(char::is_ascii_alphanumeric).collect();
        let code = snake(&name);
        if vocab.codes.contains(&code) {
            out.insert(code);
        }
    }
    out
}

/// The name of the enum variant or field a line declares (`UnsupportedVersion(..),`,
/// `pub seq: u64`), if any.
fn item_name(line: &str) -> Option<String> {
    let mut words = line.trim().split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| !w.is_empty());
    let mut word = words.next()?;
    if word == "pub" {
        word = words.next()?;
        if word == "crate" || word == "super" {
            word = words.next()?;
        }
    }
    // A function's name says what it does, not which rule it keeps.
    if ["fn", "const", "static", "mod", "trait", "impl", "let", "use", "match", "if", "macro_rules"].contains(&word) {
        return None;
    }
    // A type stands for a whole message, which many rules speak of without naming it; a variant
    // or field is one case or member.
    if ["struct", "enum", "type", "union"].contains(&word) {
        return None;
    }
    word.chars().next()?.is_ascii_alphabetic().then(|| snake(word))
}

/// Whether `word` occurs in `text` as a whole word (not inside a longer identifier).
fn has_word(text: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        !text[..at].chars().next_back().is_some_and(is_ident)
            && !text[at + word.len()..].chars().next().is_some_and(is_ident)
    })
}

/// `path ID word: reason` lines of the exceptions file.
fn exceptions(root: &Path) -> BTreeSet<(String, String, String)> {
    let text = std::fs::read_to_string(root.join("spec/citation-exceptions.txt")).unwrap_or_default();
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (head, reason) = line.split_once(':').unwrap_or((line, ""));
        let parts: Vec<&str> = head.split_whitespace().collect();
        assert!(
            parts.len() == 3 && !reason.trim().is_empty(),
            "spec/citation-exceptions.txt: {line:?} is not `path ID word: reason`"
        );
        out.insert((parts[0].to_owned(), parts[1].to_owned(), parts[2].to_owned()));
    }
    out
}

/// Every file below `dir` ending in one of `exts`, skipping build output.
fn files_under(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                files_under(&path, exts, out);
            }
        } else if exts.iter().any(|e| name.ends_with(e)) {
            out.push(path);
        }
    }
}

/// What the checks found wrong, one line each.
fn problems(root: &Path) -> Vec<String> {
    let rules = spec_rules(root);
    let prefixes: BTreeSet<String> =
        rules.keys().filter_map(|id| id.split_once('-')).map(|(p, _)| p.to_owned()).collect();
    let vocab = Vocabulary::load(root);
    let allowed = exceptions(root);
    let mut used_exceptions = BTreeSet::new();
    let mut files = Vec::new();
    for dir in ["src", "tests", "conformance", "reference-node", "benches", "fuzz"] {
        files_under(&root.join(dir), &[".rs"], &mut files);
    }
    files_under(&root.join("spec/schemas"), &[".json"], &mut files);
    files_under(&root.join("vectors"), &[".json"], &mut files);
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let rel = file.strip_prefix(root).unwrap_or(&file).to_string_lossy().replace('\\', "/");
        // This file names IDs to test the checker itself.
        if rel == "tests/citations.rs" {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        // A schema's description is a doc comment whose lines were joined with `\n`: read it
        // in its lines again, as in the source.
        let text = if rel.ends_with(".json") { text.replace("\\n", "\n") } else { text };
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let groups = groups_in(line, &prefixes);
            if groups.is_empty() {
                continue;
            }
            // A doc comment's first line also speaks of the item it documents.
            let item = (line.trim_start().starts_with("///")
                && !lines[..n].last().is_some_and(|l| l.trim_start().starts_with("///")))
            .then(|| {
                lines[n + 1..]
                    .iter()
                    .map(|l| l.trim_start())
                    .find(|l| !l.starts_with("///") && !l.starts_with("#[") && !l.is_empty())
                    .and_then(item_name)
                    .filter(|name| vocab.codes.contains(name))
            })
            .flatten();
            for group in groups {
                let mut known = Vec::new();
                for id in &group.ids {
                    match rules.get(id) {
                        None => out.push(format!("{rel}:{}: {id} is not defined in the spec", n + 1)),
                        Some(r) if r.withdrawn => out.push(format!("{rel}:{}: {id} is withdrawn", n + 1)),
                        Some(r) => known.push((id, r)),
                    }
                }
                // Vectors carry IDs only in their `requirements`; the anchors are in the doc text.
                if known.is_empty() || rel.starts_with("vectors/") {
                    continue;
                }
                let mut anchors = anchors_in(&group.window, &vocab);
                // A vector's doc text puts the vector file's own fields in backticks (`user` is a
                // seed label there): only its error codes speak of the protocol.
                if rel.starts_with("src/bin/kith-gen/vectors/") {
                    anchors.retain(|w| vocab.codes.contains(w));
                }
                if anchors_in(line, &vocab).is_empty() {
                    anchors.extend(item.clone());
                }
                if anchors.is_empty() {
                    continue;
                }
                let mut excused = |id: &str, word: &str| {
                    let key = (rel.clone(), id.to_owned(), word.to_owned());
                    let hit = allowed.contains(&key);
                    if hit {
                        used_exceptions.insert(key);
                    }
                    hit
                };
                let ids: Vec<&str> = known.iter().map(|(id, _)| id.as_str()).collect();
                let in_group = |word: &str| {
                    group.units.iter().flatten().any(|id| rules.get(id).is_some_and(|r| has_word(&r.text, word)))
                };
                for word in anchors.iter().filter(|w| vocab.codes.contains(*w)) {
                    if !in_group(word) && !ids.iter().any(|id| excused(id, word)) {
                        out.push(format!("{rel}:{}: `{word}` is in none of {}: {}", n + 1, ids.join(" "), line.trim()));
                    }
                }
                for unit in &group.units {
                    let says =
                        |id: &String| rules.get(id).is_some_and(|r| anchors.iter().any(|w| has_word(&r.text, w)));
                    let name = unit.first().cloned().unwrap_or_default()
                        + &unit.last().filter(|_| unit.len() > 1).map(|l| format!("..{l}")).unwrap_or_default();
                    let undefined = unit.iter().all(|id| rules.get(id).map_or(true, |r| r.withdrawn));
                    if undefined || unit.iter().any(says) || anchors.iter().any(|w| excused(&name, w)) {
                        continue;
                    }
                    let words: Vec<&str> = anchors.iter().map(String::as_str).collect();
                    out.push(format!("{rel}:{}: {name} mentions none of {}: {}", n + 1, words.join(" "), line.trim()));
                }
            }
        }
    }
    for (path, id, word) in allowed.difference(&used_exceptions) {
        out.push(format!("spec/citation-exceptions.txt: `{path} {id} {word}` excuses nothing: remove it"));
    }
    out
}

#[test]
fn every_citation_names_a_rule_that_says_what_it_is_cited_for() {
    let started = std::time::Instant::now();
    let found = problems(&root());
    assert!(found.is_empty(), "{} wrong citations:\n{}", found.len(), found.join("\n"));
    assert!(started.elapsed().as_secs() < 2, "the citation check took {:?}", started.elapsed());
}

#[test]
fn the_checker_reads_the_spec() {
    let rules = spec_rules(&root());
    assert!(rules.len() > 300, "only {} rules read", rules.len());
    assert!(rules.get("FRAME-38").is_some_and(|r| r.withdrawn));
    assert!(rules.get("HS-22").is_some_and(|r| r.text.contains("unsupported_version")));
    let prefixes: BTreeSet<String> = ["HS", "FRAME", "ACCT"].iter().map(|s| (*s).to_owned()).collect();
    let ids: Vec<String> = ids_in("// HS-8: and [FRAME-12], not HS-001 or FOLLOW-PAGE-1", &prefixes)
        .into_iter()
        .map(|(_, _, id)| id)
        .collect();
    assert_eq!(ids, ["HS-8", "FRAME-12"]);
    let groups = groups_in("`sig_old` ([ACCT-28]), `sig_new` ([ACCT-29] and [ACCT-30]) so. HS-8: `x`", &prefixes);
    let windows: Vec<(&str, Vec<&str>)> =
        groups.iter().map(|g| (g.window.as_str(), g.ids.iter().map(String::as_str).collect())).collect();
    assert_eq!(
        windows,
        [
            ("`sig_old` ([ACCT-28", vec!["ACCT-28"]),
            ("]), `sig_new` ([ACCT-29] and [ACCT-30", vec!["ACCT-29", "ACCT-30"]),
            ("HS-8: `x`", vec!["HS-8"])
        ]
    );
    let vocab = Vocabulary::load(&root());
    assert!(vocab.codes.contains("invalid_request") && vocab.members.contains("unsubscribe"));
    assert!(vocab.codes.len() > 30 && !vocab.codes.contains("type"));
    let anchors = anchors_in(r#"`hello.version` or "bad_prev" or ErrorCode::UnknownType"#, &vocab);
    assert_eq!(anchors.into_iter().collect::<Vec<_>>(), ["bad_prev", "hello", "unknown_type", "version"]);
}
