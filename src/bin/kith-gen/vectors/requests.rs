//! `vectors/requests.json`: the stateless rules of individual requests (chapters 07 and 08),
//! decided from the frame alone, before any account or feed state.

use kith_proto::ErrorCode::{self, *};
use serde_json::Value;

use crate::common::{file as vector_file, key, Case, Group};

fn group() -> Group {
    let mut g = Group::new(
        "Request",
        "A node receives `frame` on an authenticated session. `error` is its answer from the frame alone: the frame decoder, then the request's own stateless rules in its chapter's order (replicate limit >= 1, get's two forms, get seq >= 1, at most 1024 filter items or heads authors). A valid case decodes as `frame_type` and passes those rules; what the node then answers depends on its state.",
    );
    let k = key("user").public().to_string();
    let weak = format!("01{}", "00".repeat(31));
    let id = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let valid = |g: &mut Group, tc: &str, comment: &str, reqs: &[&str], frame: String, ty: &str| {
        g.push(Case::valid(tc, comment, reqs).with("frame", frame).with("frame_type", ty));
    };
    let inv =
        |g: &mut Group, tc: &str, comment: &str, reqs: &[&str], flags: &[&str], code: ErrorCode, frame: String| {
            g.push(Case::invalid(tc, comment, reqs, flags, code).with("frame", frame));
        };
    inv(
        &mut g,
        "req-publish-missing-entry",
        "publish without entry.",
        &["FEED-2"],
        &["MissingField"],
        InvalidRequest,
        r#"{"type":"publish","id":1}"#.into(),
    );
    inv(
        &mut g,
        "req-publish-entry-array",
        "publish whose entry is an array: present but not an object.",
        &["FEED-2", "ENTRY-2"],
        &["WrongType"],
        MalformedEntry,
        r#"{"type":"publish","id":1,"entry":[]}"#.into(),
    );
    inv(
        &mut g,
        "req-publish-entry-null",
        "publish whose entry is null: present (FRAME-40) and not an object.",
        &["FEED-2", "ENTRY-2", "FRAME-40"],
        &["WrongType"],
        MalformedEntry,
        r#"{"type":"publish","id":1,"entry":null}"#.into(),
    );
    valid(
        &mut g,
        "req-subscribe-valid",
        "A filter with one author; threads and mentions absent.",
        &["FEED-7"],
        format!(r#"{{"type":"subscribe","id":2,"filter":{{"authors":["{k}"]}}}}"#),
        "subscribe",
    );
    inv(
        &mut g,
        "req-subscribe-missing-filter",
        "subscribe without filter.",
        &["FEED-7"],
        &["MissingField"],
        InvalidRequest,
        r#"{"type":"subscribe","id":2}"#.into(),
    );
    inv(
        &mut g,
        "req-subscribe-filter-array",
        "filter is an array.",
        &["FEED-7"],
        &["WrongType"],
        InvalidRequest,
        r#"{"type":"subscribe","id":2,"filter":[]}"#.into(),
    );
    inv(
        &mut g,
        "req-subscribe-authors-numbers",
        "filter.authors holds a number.",
        &["FEED-7"],
        &["WrongType"],
        InvalidRequest,
        r#"{"type":"subscribe","id":2,"filter":{"authors":[1]}}"#.into(),
    );
    inv(
        &mut g,
        "req-subscribe-decode-order",
        "A badly encoded thread written before a small-order author: authors are decoded first (FEED-8).",
        &["FEED-8", "ENC-14"],
        &["SmallOrderKey"],
        WeakKey,
        format!(r#"{{"type":"subscribe","id":2,"filter":{{"threads":["zz"],"authors":["{weak}"]}}}}"#),
    );
    let many: Vec<String> = (0..900).map(|i| format!("\"{}\"", key(&format!("author-{i}")).public())).collect();
    valid(&mut g, "req-subscribe-900-authors", "900 authors: under the 1024-item limit and within 65536 bytes. (FEED-8 decodes before FEED-9 counts, and 1025 keys cannot fit in one 65536-byte frame, so FEED-9's limit is never reached in kith/1.)", &["FEED-9", "FRAME-4"], format!(r#"{{"type":"subscribe","id":2,"filter":{{"authors":[{}]}}}}"#, many.join(",")), "subscribe");
    valid(
        &mut g,
        "req-heads-900-authors",
        "900 authors: under the 1024 limit and within 65536 bytes.",
        &["FEED-20", "FRAME-4"],
        format!(r#"{{"type":"heads","id":3,"authors":[{}]}}"#, many.join(",")),
        "heads",
    );
    let short = vec![r#""a""#; 1025].join(",");
    inv(
        &mut g,
        "req-heads-1025-short-strings",
        "1025 authors, each the undecodable string \"a\": FEED-20 counts before FEED-21 decodes, so the answer is invalid_request, not bad_encoding (the frame is about 4 kB).",
        &["FEED-20", "FEED-21"],
        &["CheckOrder"],
        InvalidRequest,
        format!(r#"{{"type":"heads","id":3,"authors":[{short}]}}"#),
    );
    let ok_short = vec![r#""a""#; 1024].join(",");
    inv(
        &mut g,
        "req-heads-1024-short-strings",
        "1024 authors, each \"a\": within FEED-20's count, so FEED-21 decodes the first and answers bad_encoding.",
        &["FEED-20", "FEED-21", "ENC-12"],
        &["WrongLength"],
        BadEncoding,
        format!(r#"{{"type":"heads","id":3,"authors":[{ok_short}]}}"#),
    );
    inv(
        &mut g,
        "req-heads-decode-order-1",
        "heads.authors = [bad hex, small-order key]: elements decode first to last.",
        &["FEED-21", "ENC-12"],
        &["WrongLength"],
        BadEncoding,
        format!(r#"{{"type":"heads","id":3,"authors":["zz","{weak}"]}}"#),
    );
    inv(
        &mut g,
        "req-heads-decode-order-2",
        "heads.authors = [small-order key, bad hex].",
        &["FEED-21", "ENC-14"],
        &["SmallOrderKey"],
        WeakKey,
        format!(r#"{{"type":"heads","id":3,"authors":["{weak}","zz"]}}"#),
    );
    valid(
        &mut g,
        "req-heads-duplicates",
        "The same author twice is allowed (the answer has one head per distinct author).",
        &["FEED-21", "FEED-22"],
        format!(r#"{{"type":"heads","id":3,"authors":["{k}","{k}"]}}"#),
        "heads",
    );
    inv(
        &mut g,
        "req-replicate-limit-zero",
        "replicate with limit 0.",
        &["FEED-23"],
        &["WrongType"],
        InvalidRequest,
        format!(r#"{{"type":"replicate","id":4,"author":"{k}","after":0,"limit":0}}"#),
    );
    inv(
        &mut g,
        "req-replicate-author-weak",
        "replicate of a small-order author.",
        &["FEED-24", "ENC-14"],
        &["SmallOrderKey"],
        WeakKey,
        format!(r#"{{"type":"replicate","id":4,"author":"{weak}","after":0,"limit":10}}"#),
    );
    valid(
        &mut g,
        "req-replicate-valid",
        "replicate after 0, limit 1.",
        &["FEED-23", "FEED-24"],
        format!(r#"{{"type":"replicate","id":4,"author":"{k}","after":0,"limit":1}}"#),
        "replicate",
    );
    valid(
        &mut g,
        "req-get-by-id",
        "get of form 1.",
        &["FEED-27"],
        format!(r#"{{"type":"get","id":5,"entry_id":"{id}"}}"#),
        "get",
    );
    valid(
        &mut g,
        "req-get-by-position",
        "get of form 2.",
        &["FEED-27", "FEED-28"],
        format!(r#"{{"type":"get","id":5,"author":"{k}","seq":1}}"#),
        "get",
    );
    inv(
        &mut g,
        "req-get-neither",
        "get with neither form.",
        &["FEED-27"],
        &["MissingField"],
        InvalidRequest,
        r#"{"type":"get","id":5}"#.into(),
    );
    inv(
        &mut g,
        "req-get-both",
        "get with members of both forms.",
        &["FEED-27"],
        &["ExtraField"],
        InvalidRequest,
        format!(r#"{{"type":"get","id":5,"entry_id":"{id}","author":"{k}","seq":1}}"#),
    );
    inv(
        &mut g,
        "req-get-author-only",
        "get with author but no seq.",
        &["FEED-27"],
        &["MissingField"],
        InvalidRequest,
        format!(r#"{{"type":"get","id":5,"author":"{k}"}}"#),
    );
    inv(
        &mut g,
        "req-get-seq-zero",
        "get of form 2 at seq 0.",
        &["FEED-28"],
        &["SeqZero"],
        InvalidRequest,
        format!(r#"{{"type":"get","id":5,"author":"{k}","seq":0}}"#),
    );
    inv(
        &mut g,
        "req-get-entry-id-null",
        "entry_id given as null: present with the wrong type (FRAME-40).",
        &["FEED-27", "FRAME-40"],
        &["WrongType"],
        InvalidRequest,
        r#"{"type":"get","id":5,"entry_id":null}"#.into(),
    );
    inv(
        &mut g,
        "req-get-bad-id",
        "entry_id of 62 characters.",
        &["FEED-29", "ENC-12"],
        &["WrongLength"],
        BadEncoding,
        format!(r#"{{"type":"get","id":5,"entry_id":"{}"}}"#, &id[..62]),
    );
    let cu =
        |extra: &str| format!(r#"{{"type":"create_user","id":6,"key":"{}","name":"bob"{extra}}}"#, key("bob").public());
    valid(
        &mut g,
        "req-create-user-valid",
        "create_user with every member.",
        &["ACCT-7"],
        cu(r#","invite_allowance":2,"publish_allowance":100"#),
        "create_user",
    );
    inv(
        &mut g,
        "req-create-user-missing-allowance",
        "No publish_allowance.",
        &["ACCT-7"],
        &["MissingField"],
        InvalidRequest,
        cu(r#","invite_allowance":2"#),
    );
    inv(
        &mut g,
        "req-create-user-allowance-null",
        "invite_allowance null (only the admin's is null, and it is never requested).",
        &["ACCT-7", "FRAME-40"],
        &["WrongType"],
        InvalidRequest,
        cu(r#","invite_allowance":null,"publish_allowance":100"#),
    );
    inv(
        &mut g,
        "req-create-user-allowance-negative",
        "invite_allowance -1.",
        &["ACCT-7"],
        &["WrongType"],
        InvalidRequest,
        cu(r#","invite_allowance":-1,"publish_allowance":100"#),
    );
    inv(
        &mut g,
        "req-create-user-key-weak",
        "The new account's key is of small order.",
        &["ACCT-8", "ENC-14"],
        &["SmallOrderKey"],
        WeakKey,
        format!(
            r#"{{"type":"create_user","id":6,"key":"{weak}","name":"bob","invite_allowance":0,"publish_allowance":0}}"#
        ),
    );
    inv(
        &mut g,
        "req-remove-user-missing-key",
        "remove_user without key.",
        &["ACCT-35"],
        &["MissingField"],
        InvalidRequest,
        r#"{"type":"remove_user","id":7}"#.into(),
    );
    inv(
        &mut g,
        "req-remove-user-bad-key",
        "remove_user with an uppercase key.",
        &["ACCT-36", "ENC-11"],
        &["NonLowercaseHex"],
        BadEncoding,
        format!(r#"{{"type":"remove_user","id":7,"key":"{}"}}"#, k.to_uppercase()),
    );
    valid(
        &mut g,
        "req-invitees-first-page",
        "invitees without after: the first page.",
        &["ACCT-54"],
        r#"{"type":"invitees","id":9}"#.into(),
        "invitees",
    );
    valid(
        &mut g,
        "req-invitees-after",
        "invitees after a key: the next page.",
        &["ACCT-54"],
        format!(r#"{{"type":"invitees","id":9,"after":"{k}"}}"#),
        "invitees",
    );
    inv(
        &mut g,
        "req-invitees-after-null",
        "invitees whose after is null: present, so of the wrong type (FRAME-40).",
        &["ACCT-52", "FRAME-40"],
        &["WrongType"],
        InvalidRequest,
        r#"{"type":"invitees","id":9,"after":null}"#.into(),
    );
    inv(
        &mut g,
        "req-invitees-after-number",
        "invitees whose after is a number.",
        &["ACCT-52"],
        &["WrongType"],
        InvalidRequest,
        r#"{"type":"invitees","id":9,"after":5}"#.into(),
    );
    inv(
        &mut g,
        "req-invitees-after-bad-hex",
        "invitees whose after is an uppercase key.",
        &["ACCT-53", "ENC-11"],
        &["NonLowercaseHex"],
        BadEncoding,
        format!(r#"{{"type":"invitees","id":9,"after":"{}"}}"#, k.to_uppercase()),
    );
    inv(
        &mut g,
        "req-invitees-after-weak",
        "invitees whose after is a small-order key.",
        &["ACCT-53", "ENC-14"],
        &["SmallOrderKey"],
        WeakKey,
        format!(r#"{{"type":"invitees","id":9,"after":"{weak}"}}"#),
    );
    inv(
        &mut g,
        "req-follow-missing-key",
        "follow without key.",
        &["FRAME-16"],
        &["MissingField"],
        InvalidRequest,
        r#"{"type":"follow","id":8}"#.into(),
    );
    g
}

/// The file.
pub fn file() -> Value {
    vector_file(
        "Kith request rules",
        "The stateless rules of individual requests (spec chapters 07 and 08): what a node answers from the frame alone. Keys are derived from seeds: seed(label) = SHA-256(\"kith/1 vectors seed \" || label).",
        vec![group()],
    )
}
