//! `vectors/versioning.json`: version negotiation and context strings (chapter 11).

use kith_proto::signing::Context;
use kith_proto::version::{negotiate, SUPPORTED_VERSIONS};
use serde_json::{json, Value};

use crate::common::{file as vector_file, Case, Group};

fn negotiate_group() -> Group {
    let mut g = Group::new(
        "Negotiate",
        "A client implementing `ours` (most preferred first) reads `theirs` from node_info_ok.versions and picks `chosen`, its most preferred (for kith, the highest) version that the node also offers, compared as exact strings (VER-1); null when they share none, and then it does not send hello.",
    );
    let cases: [(&str, &str, &[&str], &[&str]); 5] = [
        ("negotiate-kith1", "Both speak kith/1.", &["kith/1"], &["kith/1"]),
        (
            "negotiate-prefer-client-order",
            "The highest version both offer, whatever order the node lists them in.",
            &["kith/2", "kith/1"],
            &["kith/1", "kith/2"],
        ),
        ("negotiate-none", "No shared version.", &["kith/1"], &["kith/2"]),
        ("negotiate-case-sensitive", "KITH/1 is not kith/1.", &["kith/1"], &["KITH/1"]),
        ("negotiate-no-trim", "A padded spelling is another string.", &["kith/1"], &["kith/1 "]),
    ];
    for (id, comment, ours, theirs) in cases {
        let theirs_owned: Vec<String> = theirs.iter().map(|s| (*s).to_owned()).collect();
        let chosen = negotiate(ours, &theirs_owned);
        let c = Case::valid(id, comment, &["VER-1", "VER-3", "VER-4"]);
        g.push(c.with("ours", json!(ours)).with("theirs", json!(theirs)).with("chosen", json!(chosen)));
    }
    g
}

fn contexts_group() -> Group {
    let mut g = Group::new("Contexts", "Every kith/1 context string, as signed bytes start with it: each begins with `kith/1/` (VER-6) and none is a prefix of another, so a signature of one kind of object never verifies as another (SIGN-8, SIGN-9).");
    let all: Vec<&str> = Context::ALL.iter().map(|c| c.as_str()).collect();
    g.push(
        Case::valid(
            "contexts-kith1",
            "The six signing contexts and the transcript hash domain of kith/1.",
            &["VER-5", "VER-6", "SIGN-8"],
        )
        .with("contexts", json!(all))
        .with("transcript_domain", kith_proto::handshake::TRANSCRIPT_DOMAIN)
        .with("versions", json!(SUPPORTED_VERSIONS)),
    );
    g
}

/// The file.
pub fn file() -> Value {
    vector_file(
        "Kith versions and contexts",
        "Version strings are compared as exact strings; every kith/1 context string begins with kith/1/ (spec chapter 11).",
        vec![negotiate_group(), contexts_group()],
    )
}
