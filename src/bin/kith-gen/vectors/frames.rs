//! `vectors/frames.json`: raw client frame texts and the node's first answer (chapters 01 §2 and
//! 06 §3).

use kith_proto::frame::MAX_FRAME_BYTES;
use kith_proto::ErrorCode::{self, *};
use serde_json::{json, Value};

use crate::common::{file as vector_file, Case, Group};

fn group() -> Group {
    let mut g = Group::new(
        "ClientFrame",
        "A node receives `frame` (the exact payload of one WebSocket text message, UTF-8) from a client and processes it with chapter 06 §3's steps. Valid frames decode as the request `frame_type`; invalid ones are answered with an error frame carrying `error` and `error_id` (the request id, or null when it could not be read, FRAME-17).",
    );
    let valid = |g: &mut Group, id: &str, comment: &str, reqs: &[&str], frame: String, ty: &str| {
        g.push(
            Case::valid(id, comment, reqs).with("frame", frame).with("frame_type", ty).with("error_id", Value::Null),
        );
    };
    let inv = |g: &mut Group,
               id: &str,
               comment: &str,
               reqs: &[&str],
               flags: &[&str],
               code: ErrorCode,
               frame: String,
               error_id: Option<u64>| {
        g.push(Case::invalid(id, comment, reqs, flags, code).with("frame", frame).with("error_id", json!(error_id)));
    };
    valid(
        &mut g,
        "frame-valid-node-info",
        "The smallest request.",
        &["FRAME-1"],
        r#"{"type":"node_info","id":1}"#.into(),
        "node_info",
    );
    valid(
        &mut g,
        "frame-valid-whitespace",
        "Whitespace between tokens carries no meaning.",
        &["FRAME-1"],
        " {\n\t\"id\" : 0 ,\r\n \"type\" : \"node_info\" } ".into(),
        "node_info",
    );
    valid(
        &mut g,
        "frame-valid-max-id",
        "id 2^53 - 1.",
        &["FRAME-13"],
        r#"{"type":"node_info","id":9007199254740991}"#.into(),
        "node_info",
    );
    valid(
        &mut g,
        "frame-valid-unknown-members",
        "Unknown members of a request are ignored, whatever their value.",
        &["FRAME-15"],
        r#"{"type":"node_info","id":7,"future":{"x":[1,"two",null]},"z":true}"#.into(),
        "node_info",
    );
    let nest = |depth: usize| {
        format!(r#"{{"type":"node_info","id":1,"deep":{}{}}}"#, "[".repeat(depth - 1), "]".repeat(depth - 1))
    };
    valid(
        &mut g,
        "frame-valid-depth-64",
        "Nesting depth 64 exactly (the frame object plus 63 arrays).",
        &["ENC-8"],
        nest(64),
        "node_info",
    );
    let pad_to = |size: usize| {
        let base = r#"{"type":"node_info","id":1,"pad":""}"#.len();
        format!(r#"{{"type":"node_info","id":1,"pad":"{}"}}"#, "x".repeat(size - base))
    };
    valid(
        &mut g,
        "frame-valid-size-65536",
        "A payload of exactly 65536 bytes: a node accepts it, and it is the largest a client may send.",
        &["FRAME-4", "FRAME-7"],
        pad_to(MAX_FRAME_BYTES),
        "node_info",
    );
    inv(
        &mut g,
        "frame-invalid-size-65537",
        "A payload of 65537 bytes: refused before parsing.",
        &["FRAME-5"],
        &["Oversized"],
        FrameTooLarge,
        pad_to(MAX_FRAME_BYTES + 1),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-truncated",
        "Not JSON: truncated.",
        &["ENC-1"],
        &["MalformedJson"],
        MalformedFrame,
        "{".into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-trailing-comma",
        "Not JSON: a trailing comma.",
        &["ENC-1"],
        &["MalformedJson"],
        MalformedFrame,
        r#"{"type":"node_info","id":1,}"#.into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-single-quotes",
        "Not JSON: single quotes.",
        &["ENC-1"],
        &["MalformedJson"],
        MalformedFrame,
        "{'type':'node_info','id':1}".into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-two-values",
        "Two JSON texts in one message.",
        &["ENC-1", "FRAME-1"],
        &["MalformedJson"],
        MalformedFrame,
        r#"{"type":"node_info","id":1}{"type":"node_info","id":2}"#.into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-bom",
        "A byte-order mark before the object.",
        &["ENC-2"],
        &["ByteOrderMark"],
        MalformedFrame,
        "\u{feff}{\"type\":\"node_info\",\"id\":1}".into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-array",
        "The top-level value is an array.",
        &["ENC-9"],
        &["MalformedJson"],
        MalformedFrame,
        r#"[{"type":"node_info","id":1}]"#.into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-string",
        "The top-level value is a string.",
        &["ENC-9"],
        &["MalformedJson"],
        MalformedFrame,
        r#""node_info""#.into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-duplicate-unknown-member",
        "An unknown member twice, once escaped: duplicates are refused even where members are ignored.",
        &["ENC-3"],
        &["DuplicateKey"],
        MalformedFrame,
        r#"{"type":"node_info","id":1,"a":1,"\u0061":2}"#.into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-duplicate-type",
        "type twice.",
        &["ENC-3"],
        &["DuplicateKey"],
        MalformedFrame,
        r#"{"type":"node_info","type":"node_info","id":1}"#.into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-duplicate-id",
        "id twice.",
        &["ENC-3"],
        &["DuplicateKey"],
        MalformedFrame,
        r#"{"type":"follows","id":5,"id":6}"#.into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-float-id",
        "id 1.0: a float, refused while parsing, so the id is unknown.",
        &["ENC-4", "FRAME-17"],
        &["Float"],
        MalformedFrame,
        r#"{"type":"node_info","id":1.0}"#.into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-float-unknown-member",
        "A float in an ignored member still makes the frame malformed.",
        &["ENC-4"],
        &["Float"],
        MalformedFrame,
        r#"{"type":"node_info","id":1,"x":0.5}"#.into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-exponent",
        "1E0 in an ignored member.",
        &["ENC-4"],
        &["Float"],
        MalformedFrame,
        r#"{"type":"node_info","id":1,"x":1E0}"#.into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-negative-zero",
        "-0 in an ignored member.",
        &["ENC-5"],
        &["NegativeZero"],
        MalformedFrame,
        r#"{"type":"node_info","id":1,"x":-0}"#.into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-id-too-large",
        "id 2^53 is outside the integer range: refused while parsing.",
        &["ENC-6"],
        &["IntegerRange"],
        MalformedFrame,
        r#"{"type":"node_info","id":9007199254740992}"#.into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-integer-below-range",
        "-2^53 in an ignored member.",
        &["ENC-6"],
        &["IntegerRange"],
        MalformedFrame,
        r#"{"type":"node_info","id":1,"x":-9007199254740992}"#.into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-lone-surrogate",
        "A lone low surrogate in an ignored member.",
        &["ENC-7"],
        &["LoneSurrogate"],
        MalformedFrame,
        r#"{"type":"node_info","id":1,"x":"\udc00"}"#.into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-depth-65",
        "Nesting depth 65.",
        &["ENC-8"],
        &["DeepNesting"],
        MalformedFrame,
        nest(65),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-missing-type",
        "No type: invalid_request, and the id is echoed.",
        &["FRAME-11", "FRAME-17"],
        &["MissingField"],
        InvalidRequest,
        r#"{"id":3}"#.into(),
        Some(3),
    );
    inv(
        &mut g,
        "frame-invalid-type-number",
        "type is a number.",
        &["FRAME-11"],
        &["WrongType"],
        InvalidRequest,
        r#"{"type":1,"id":3}"#.into(),
        Some(3),
    );
    inv(
        &mut g,
        "frame-invalid-missing-id",
        "No id.",
        &["FRAME-13", "FRAME-17"],
        &["MissingId"],
        InvalidRequest,
        r#"{"type":"node_info"}"#.into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-id-string",
        "id is a string.",
        &["FRAME-13"],
        &["MissingId"],
        InvalidRequest,
        r#"{"type":"node_info","id":"1"}"#.into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-id-negative",
        "id -1.",
        &["FRAME-13"],
        &["MissingId"],
        InvalidRequest,
        r#"{"type":"node_info","id":-1}"#.into(),
        None,
    );
    inv(
        &mut g,
        "frame-invalid-unknown-type",
        "An unregistered type; the id is echoed.",
        &["FRAME-12", "FRAME-17"],
        &["UnknownType"],
        UnknownType,
        r#"{"type":"teleport","id":4}"#.into(),
        Some(4),
    );
    inv(
        &mut g,
        "frame-invalid-response-type",
        "A response type sent by a client is not a request type.",
        &["FRAME-12"],
        &["UnknownType"],
        UnknownType,
        r#"{"type":"welcome","id":4}"#.into(),
        Some(4),
    );
    inv(
        &mut g,
        "frame-invalid-type-case",
        "Types are case-sensitive.",
        &["FRAME-12"],
        &["UnknownType"],
        UnknownType,
        r#"{"type":"Node_Info","id":4}"#.into(),
        Some(4),
    );
    inv(
        &mut g,
        "frame-invalid-request-member-type",
        "replicate.after as a string: a member of the wrong type.",
        &["FRAME-16"],
        &["WrongType"],
        InvalidRequest,
        format!(
            r#"{{"type":"replicate","id":5,"author":"{}","after":"0","limit":1}}"#,
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        ),
        Some(5),
    );
    inv(
        &mut g,
        "frame-invalid-request-key-encoding",
        "A request member that fails KEY decoding keeps chapter 01's code.",
        &["FRAME-16", "ENC-12"],
        &["WrongLength"],
        BadEncoding,
        r#"{"type":"replicate","id":5,"author":"zz","after":0,"limit":1}"#.into(),
        Some(5),
    );
    let good = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    inv(
        &mut g,
        "frame-invalid-optional-null",
        "subscribe.backfill given as null: present with the wrong type, not absent.",
        &["FRAME-40"],
        &["WrongType"],
        InvalidRequest,
        format!(r#"{{"type":"subscribe","id":8,"filter":{{"authors":["{good}"]}},"backfill":null}}"#),
        Some(8),
    );
    inv(
        &mut g,
        "frame-invalid-required-null",
        "replicate.limit given as null.",
        &["FRAME-40", "FRAME-16"],
        &["WrongType"],
        InvalidRequest,
        format!(r#"{{"type":"replicate","id":5,"author":"{good}","after":0,"limit":null}}"#),
        Some(5),
    );
    valid(
        &mut g,
        "frame-valid-optional-absent",
        "subscribe without backfill (optional, absent).",
        &["FRAME-40"],
        format!(r#"{{"type":"subscribe","id":8,"filter":{{"authors":["{good}"]}}}}"#),
        "subscribe",
    );
    g
}

fn server_group() -> Group {
    let mut g = Group::new(
        "ServerFrame",
        "A client receives `frame` from a node. `client_action` is what it does: `accept` the frame as `frame_type` (ignoring members it does not know, FRAME-22), or `ignore` a push whose type it does not know (FRAME-23). For error frames `client_code` is the code the client acts on: an unknown code is `internal` (FRAME-24).",
    );
    let key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let accept = |g: &mut Group, id: &str, comment: &str, reqs: &[&str], frame: String, ty: &str| {
        g.push(
            Case::valid(id, comment, reqs).with("frame", frame).with("client_action", "accept").with("frame_type", ty),
        );
    };
    accept(
        &mut g,
        "server-welcome-unknown-members",
        "A welcome with members from a future version, at the top and inside the account.",
        &["FRAME-22"],
        format!(
            r#"{{"type":"welcome","id":2,"account":{{"key":"{key}","name":"alice","parent":null,"invite_allowance":null,"publish_allowance":null,"published_entries":0,"published_bytes":0,"avatar":"x"}},"motd":"hi"}}"#
        ),
        "welcome",
    );
    accept(
        &mut g,
        "server-node-info-unknown-feature",
        "node_info_ok listing a feature the client does not know, and an unknown limit.",
        &["VER-10", "FRAME-22"],
        format!(
            r#"{{"type":"node_info_ok","id":1,"node":"{key}","name":"n","versions":["kith/1"],"features":["x-sparkles"],"limits":{{"max_frame_bytes":65536,"max_entry_bytes":16384,"handshake_timeout_ms":10000,"max_backfill":100,"max_replicate":512,"storage_bytes":1073741824,"max_subscriptions":16,"max_nesting_depth":64,"max_connections_per_address":8,"max_pending_handshakes":32,"max_requests_per_second":100,"max_queued_bytes":16777216,"max_notes":100,"max_note_bytes":1048576,"max_follows":1000,"max_filter_items":1024,"max_total_filter_items":32768,"x_future":1}}}}"#
        ),
        "node_info_ok",
    );
    g.push(
        Case::valid(
            "server-error-unknown-code",
            "An error code from a future registry is acted on as internal.",
            &["FRAME-24", "FRAME-25"],
        )
        .with("frame", r#"{"type":"error","id":4,"code":"x_new_problem","message":"do not parse me"}"#)
        .with("client_action", "accept")
        .with("frame_type", "error")
        .with("client_code", "internal"),
    );
    g.push(
        Case::valid("server-error-known-code", "A registered code is kept.", &["FRAME-24"])
            .with("frame", r#"{"type":"error","id":4,"code":"fork","message":"x"}"#)
            .with("client_action", "accept")
            .with("frame_type", "error")
            .with("client_code", "fork"),
    );
    g.push(
        Case::valid(
            "server-unknown-push",
            "A push type the client does not know is ignored, not an error.",
            &["FRAME-23"],
        )
        .with("frame", r#"{"type":"x_sparkle","sub":1,"glitter":true}"#)
        .with("client_action", "ignore"),
    );
    g
}

/// The file.
pub fn file() -> Value {
    vector_file(
        "Kith frames",
        "What a node answers to the raw text of a client frame, up to the decoding of its members (spec chapters 01 §2 and 06 §3), and how a client treats what a node sends (chapter 06 §3.2).",
        vec![group(), server_group()],
    )
}
