//! The core's registries against the spec's (chapter 11 §6, chapter 06 §4, chapter 02 §2): every
//! registered name exists in the code and nothing else does, so an extension or a typo in either
//! shows up here.

use std::collections::BTreeSet;
use std::path::PathBuf;

use kith_proto::frame::{ClientFrame, RequestId, RequestKind, ServerFrame, REQUESTS};
use kith_proto::node_info::NodeInfo;
use kith_proto::signing::Context;
use kith_proto::ErrorCode;

fn chapter(prefix: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spec");
    let path = std::fs::read_dir(&dir)
        .expect("spec dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
        .unwrap_or_else(|| panic!("no spec chapter {prefix}"));
    std::fs::read_to_string(path).expect("chapter")
}

/// The section of `text` from the heading starting with `start` to the next `## ` heading.
fn section<'a>(text: &'a str, start: &str) -> &'a str {
    let at = text.find(start).unwrap_or_else(|| panic!("no section {start}"));
    let rest = &text[at + start.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The backticked names in the first column of a markdown table.
fn first_column(table: &str) -> Vec<String> {
    table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(name, _)| name.to_owned()))
        .collect()
}

/// One row of chapter 11 §6's table of request types: request, response, whether a session is
/// needed.
fn request_rows(registry: &str) -> Vec<(String, String, bool)> {
    registry
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let session = match cells[3] {
                "yes" => true,
                "no" => false,
                other => panic!("`Session needed` is {other:?} in {line}"),
            };
            (cells[1].trim_matches('`').to_owned(), cells[2].trim_matches('`').to_owned(), session)
        })
        .collect()
}

/// Chapter 11 §6: the core's registry (`REQUESTS`) is the spec's table of request types row for
/// row: the same requests, each with the same response and the same need of a session; the
/// server registry is those responses, the pushes and the error frame; no name is both a request
/// and a response (VER-12: one name, one purpose).
#[test]
fn frame_types_match_the_registry() {
    let text = chapter("11-");
    let registry = section(&text, "## 6. Registries");
    let spec_rows: BTreeSet<(String, String, bool)> = request_rows(registry).into_iter().collect();
    let our_rows: BTreeSet<(String, String, bool)> =
        REQUESTS.iter().map(|r| (r.request.to_owned(), r.answer.to_owned(), !r.before_auth)).collect();
    assert_eq!(our_rows, spec_rows, "REQUESTS differs from chapter 11 §6's table of request types");
    let requests: BTreeSet<String> = spec_rows.iter().map(|(request, _, _)| request.clone()).collect();
    let client: BTreeSet<String> = ClientFrame::TYPES.iter().map(|t| (*t).to_owned()).collect();
    assert_eq!(client, requests, "client frame registry differs from chapter 11 §6");
    let pushes_line = registry.lines().find(|l| l.starts_with("**Pushes:**")).expect("the pushes line");
    let spec_pushes: BTreeSet<String> = pushes_line.split('`').skip(1).step_by(2).map(str::to_owned).collect();
    let our_pushes: BTreeSet<String> =
        REQUESTS.iter().flat_map(|r| r.pushes.iter().copied()).chain(["closing"]).map(str::to_owned).collect();
    assert_eq!(our_pushes, spec_pushes, "pushes differ from chapter 11 §6");
    let mut server: BTreeSet<String> = spec_rows.iter().map(|(_, response, _)| response.clone()).collect();
    server.extend(spec_pushes);
    server.insert("error".to_owned());
    let ours: BTreeSet<String> = ServerFrame::TYPES.iter().map(|t| (*t).to_owned()).collect();
    assert_eq!(ours, server, "server frame registry differs from chapter 11 §6");
    assert_eq!(ClientFrame::TYPES.len(), client.len(), "a client type is registered twice");
    assert_eq!(ServerFrame::TYPES.len(), ours.len(), "a server type is registered twice");
    assert_eq!(REQUESTS.len(), RequestKind::COUNT);
    assert!(client.is_disjoint(&ours), "a name is both a request and a response (VER-12)");
}

/// Chapter 06 §4: the closed error registry (FRAME-26).
#[test]
fn error_codes_match_the_registry() {
    let text = chapter("06-");
    let table = section(&text, "## 4. Error codes");
    let spec: BTreeSet<String> = first_column(table).into_iter().collect();
    let ours: BTreeSet<String> = ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect();
    assert_eq!(ours, spec, "ErrorCode::ALL differs from chapter 06 §4");
    assert_eq!(ErrorCode::ALL.len(), ours.len());
}

/// Chapter 02 §2 and 11 §6: the context strings (SIGN-8, VER-6).
#[test]
fn contexts_match_the_registry() {
    let text = chapter("11-");
    let registry = section(&text, "## 6. Registries");
    for c in Context::ALL {
        assert!(registry.contains(&format!("`{}`", c.as_str())), "{} is not registered", c.as_str());
    }
    assert!(registry.contains(&format!("`{}`", kith_proto::handshake::TRANSCRIPT_DOMAIN)));
}

/// VER-16: registered names never use the experimental prefixes `x-` / `x_`.
#[test]
fn registered_names_are_not_experimental() {
    let names =
        ClientFrame::TYPES.iter().chain(ServerFrame::TYPES).copied().chain(ErrorCode::ALL.iter().map(|c| c.as_str()));
    for n in names {
        assert!(!n.starts_with("x_") && !n.starts_with("x-"), "{n}");
    }
}

/// VER-14: the signed objects of kith/1 have exactly their registered members; a feature may not
/// add one, and the schemas refuse any other (`additionalProperties: false`).
#[test]
fn signed_objects_have_fixed_members() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spec/schemas");
    for (file, members) in [
        ("entry", &["author", "content", "kind", "mentions", "prev", "refs", "seq", "sig", "timestamp"][..]),
        ("certificate", &["expires", "peer", "sig", "user"][..]),
        ("key-replacement", &["expires", "new", "node", "old", "sig_new", "sig_old"][..]),
        ("identity-note", &["addresses", "author", "display_name", "note", "sig", "subject", "updated"][..]),
    ] {
        let text = std::fs::read_to_string(dir.join(format!("{file}.json"))).expect("schema");
        let schema: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(schema["additionalProperties"], false, "{file}");
        let mut props: Vec<&str> =
            schema["properties"].as_object().expect("props").keys().map(String::as_str).collect();
        props.sort_unstable();
        assert_eq!(props, members, "{file}");
        let mut required: Vec<&str> =
            schema["required"].as_array().expect("required").iter().map(|v| v.as_str().expect("name")).collect();
        required.sort_unstable();
        assert_eq!(required, members, "{file}: every member is required");
    }
}

/// VER-15, HS-38: only node_info, hello and auth are answered before authentication, by the
/// registry and by the frames it generates.
#[test]
fn only_the_handshake_is_pre_authentication() {
    let pre: Vec<&str> =
        RequestKind::ALL.into_iter().filter(|k| k.allowed_before_auth()).map(RequestKind::type_name).collect();
    assert_eq!(pre, ["node_info", "hello", "auth"]);
    let node_info = ClientFrame::NodeInfo(NodeInfo { id: RequestId::small(1) });
    assert!(node_info.allowed_before_auth());
    let account = kith_proto::parse_client_frame(r#"{"type":"account","id":1}"#).expect("account");
    assert!(!account.allowed_before_auth());
    let hs38 = chapter("05-");
    let rule = hs38.lines().find(|l| l.starts_with("- [HS-38]")).expect("HS-38");
    for t in pre {
        assert!(rule.contains(&format!("`{t}`")), "HS-38 does not name {t}");
    }
}
