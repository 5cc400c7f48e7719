//! `vectors/entries.json`: a valid feed, entries that break a rule of their own, and entries that
//! break a feed rule (chapter 03).

use kith_proto::canonical::CanonicalValue;
use kith_proto::signing::{signing_bytes, Context};
use kith_proto::ErrorCode::{self, *};
use kith_proto::{SecretKey, Signature};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::{add_l_to_s, file as vector_file, hex, key, Case, Group};

const T0: u64 = 1_767_225_600_000;

/// A signed entry as JSON, built from any unsigned object (so invalid fields can be signed too).
fn sign(author: &SecretKey, unsigned: Value, ctx: Context) -> Value {
    let canon = CanonicalValue::from_json(&unsigned).unwrap_or_else(|e| panic!("{e}"));
    let sig = author.sign(ctx, &canon);
    let mut v = unsigned;
    v["sig"] = json!(sig.to_string());
    v
}

fn unsigned(author: &SecretKey, seq: u64, prev: Option<&str>, ts: u64, content: Value) -> Value {
    json!({
        "author": author.public().to_string(),
        "seq": seq,
        "prev": prev,
        "timestamp": ts,
        "kind": "post",
        "content": content,
        "mentions": [],
        "refs": [],
    })
}

fn canonical_bytes(entry: &Value) -> Vec<u8> {
    CanonicalValue::from_json(entry).map(|c| c.to_jcs()).unwrap_or_default()
}

fn id_of(entry: &Value) -> String {
    hex(&Sha256::digest(canonical_bytes(entry)))
}

fn text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn frame(entry_text: &str) -> String {
    format!(r#"{{"entry":{entry_text},"id":7,"type":"publish"}}"#)
}

struct Chain {
    entries: Vec<Value>,
}

fn chain(user: &SecretKey) -> Chain {
    let friend = key("friend").public().to_string();
    let e1 = sign(user, unsigned(user, 1, None, T0, json!({"text": "hello, kith"})), Context::Entry);
    let id1 = id_of(&e1);
    let mut u2 = unsigned(
        user,
        2,
        Some(&id1),
        T0 + 60_000,
        json!({"text": "a reply to myself, mentioning a friend", "lang": "en"}),
    );
    u2["mentions"] = json!([friend]);
    u2["refs"] = json!([id1]);
    let e2 = sign(user, u2, Context::Entry);
    let id2 = id_of(&e2);
    let e3 = sign(
        user,
        unsigned(
            user,
            3,
            Some(&id2),
            T0 + 60_000,
            json!({"text": "same millisecond as seq 2 is allowed", "nested": {"list": [1, -2, true, null, "\u{e9}"]}}),
        ),
        Context::Entry,
    );
    let id3 = id_of(&e3);
    let mut u4 = unsigned(user, 4, Some(&id3), T0 + 120_000, json!({"name": "Alice", "about": "Writes vectors."}));
    u4["kind"] = json!("profile");
    let e4 = sign(user, u4, Context::Entry);
    Chain { entries: vec![e1, e2, e3, e4] }
}

fn chain_group(user: &SecretKey, c: &Chain) -> Group {
    let mut g = Group::new(
        "EntryChain",
        "A valid feed by seed `user`, in order. Each entry must pass every check of chapter 03 §3, its signing bytes and id must match, and each must extend the previous one (ENTRY-27).",
    )
    .with("author_seed_label", "user")
    .with("author", user.public().to_string());
    for (i, e) in c.entries.iter().enumerate() {
        let mut unsigned = e.clone();
        unsigned.as_object_mut().map(|m| m.remove("sig"));
        let sb = signing_bytes(Context::Entry, &CanonicalValue::from_json(&unsigned).unwrap_or(CanonicalValue::Null));
        let cb = canonical_bytes(e);
        let comment = match i {
            0 => "The first entry: seq 1, prev null.",
            1 => "seq 2 links to seq 1, mentions a user and refers to seq 1.",
            2 => "seq 3 has the same timestamp as seq 2 (allowed), nested content with integers, literals and non-ASCII text.",
            _ => "seq 4 is a profile entry (name and about).",
        };
        g.push(
            Case::valid(
                &format!("entry-chain-{}", i + 1),
                comment,
                &["ENTRY-1", "ENTRY-18", "ENTRY-19", "ENTRY-20", "ENTRY-27", "SIGN-10"],
            )
            .with("entry", text(e))
            .with("signing_bytes_hex", hex(&sb))
            .with("canonical_hex", hex(&cb))
            .with("size", cb.len())
            .with("id", id_of(e)),
        );
    }
    g
}

fn validate_group(user: &SecretKey, c: &Chain) -> Group {
    let mut g = Group::new(
        "EntryValidate",
        "Stateless validation of one entry as a node receives it in `publish` (chapter 03 §3): `entry` is the entry's exact JSON text and `frame` the publish frame carrying it. The expected error is the one the node answers to that frame; the first failing check decides. Duplicate keys, floats and out-of-range integers are refused at the frame level (chapter 01 §2) with malformed_frame.",
    )
    .with("author_seed_label", "user");
    let e1 = &c.entries[0];
    let e2 = &c.entries[1];
    let e1t = text(e1);
    let id1 = id_of(e1);
    let push =
        |g: &mut Group, id: &str, comment: &str, reqs: &[&str], flags: &[&str], code: ErrorCode, entry: String| {
            g.push(Case::invalid(id, comment, reqs, flags, code).with("frame", frame(&entry)).with("entry", entry));
        };
    let valid = |g: &mut Group, id: &str, comment: &str, reqs: &[&str], entry: &Value| {
        let t = text(entry);
        g.push(Case::valid(id, comment, reqs).with("frame", frame(&t)).with("entry", t).with("id", id_of(entry)));
    };
    valid(&mut g, "entry-valid-first", "The chain's first entry.", &["ENTRY-18"], e1);
    let reordered = format!(
        "{{ \"sig\" : {} , \"refs\":[], \"mentions\":[], \"content\":{{\"text\":\"hello, kith\"}}, \"kind\":\"post\", \"timestamp\":{}, \"prev\":null, \"seq\":1, \"author\":{} }}",
        e1["sig"], T0, e1["author"]
    );
    g.push(Case::valid("entry-valid-member-order-and-whitespace", "The first entry with members in reverse order and extra whitespace: the same entry and id (member order carries no meaning).", &["ENTRY-1"]).with("frame", frame(&reordered)).with("entry", reordered.clone()).with("id", id1.clone()));
    let with = |base: &Value, f: &dyn Fn(&mut Value)| {
        let mut v = base.clone();
        f(&mut v);
        v
    };
    let resign = |base: &Value, f: &dyn Fn(&mut Value)| {
        let mut v = base.clone();
        v.as_object_mut().map(|m| m.remove("sig"));
        f(&mut v);
        sign(user, v, Context::Entry)
    };

    // Signatures.
    let mut flipped = kith_proto::encoding::decode_hex::<64>(e1["sig"].as_str().unwrap_or_default()).unwrap_or([0; 64]);
    flipped[3] ^= 0x10;
    push(
        &mut g,
        "entry-invalid-bad-signature",
        "One bit of sig flipped.",
        &["ENTRY-18"],
        &["ModifiedSignature"],
        BadSignature,
        text(&with(e1, &|v| v["sig"] = json!(Signature::from_bytes(flipped).to_string()))),
    );
    let mut un = e1.clone();
    un.as_object_mut().map(|m| m.remove("sig"));
    push(
        &mut g,
        "entry-invalid-signature-other-context",
        "The entry's own object signed by its author under kith/1/cert.",
        &["ENTRY-18", "SIGN-9"],
        &["WrongContext"],
        BadSignature,
        text(&sign(user, un.clone(), Context::Certificate)),
    );
    push(
        &mut g,
        "entry-invalid-signed-by-other-key",
        "Signed by `mallory`, author is `user`.",
        &["ENTRY-18"],
        &["WrongSigner"],
        BadSignature,
        text(&sign(&key("mallory"), un.clone(), Context::Entry)),
    );
    let sig1 = kith_proto::encoding::decode_hex::<64>(e1["sig"].as_str().unwrap_or_default()).unwrap_or([0; 64]);
    push(
        &mut g,
        "entry-invalid-non-canonical-s",
        "sig with S + L: a second encoding of the same signature, which would give the entry a second id.",
        &["ENTRY-18", "SIGN-14"],
        &["NonCanonicalS"],
        BadSignature,
        text(&with(e1, &|v| v["sig"] = json!(Signature::from_bytes(add_l_to_s(&sig1)).to_string()))),
    );
    push(
        &mut g,
        "entry-invalid-modified-content",
        "content.text changed after signing.",
        &["ENTRY-18"],
        &["ModifiedContent"],
        BadSignature,
        text(&with(e1, &|v| v["content"]["text"] = json!("hello, kitH"))),
    );
    let mut rid = [0u8; 64];
    rid[0] = 1;
    push(&mut g, "entry-invalid-small-order-author", "author is the identity point with R = identity and S = 0, a signature that cofactored/batch verification accepts for every message; the key is refused first.", &["ENTRY-5", "ENC-14", "SIGN-19"], &["SmallOrderKey", "BatchVerification"], WeakKey, text(&with(e1, &|v| {
        v["author"] = json!(format!("01{}", "00".repeat(31)));
        v["sig"] = json!(Signature::from_bytes(rid).to_string());
    })));

    // Encodings.
    push(
        &mut g,
        "entry-invalid-author-uppercase",
        "author in uppercase hex.",
        &["ENTRY-5", "ENC-11"],
        &["NonLowercaseHex"],
        BadEncoding,
        text(&with(e1, &|v| {
            let a = v["author"].as_str().unwrap_or_default().to_uppercase();
            v["author"] = json!(a);
        })),
    );
    push(
        &mut g,
        "entry-invalid-author-non-canonical-point",
        "author is y = p + 3, the non-canonical spelling of a valid point.",
        &["ENTRY-5", "ENC-13"],
        &["NonCanonicalPoint"],
        BadEncoding,
        text(&with(e1, &|v| v["author"] = json!(format!("f0{}7f", "ff".repeat(30))))),
    );
    push(
        &mut g,
        "entry-invalid-prev-uppercase",
        "prev in uppercase hex.",
        &["ENTRY-5", "ENC-11"],
        &["NonLowercaseHex"],
        BadEncoding,
        text(&with(e2, &|v| {
            let a = v["prev"].as_str().unwrap_or_default().to_uppercase();
            v["prev"] = json!(a);
        })),
    );
    push(
        &mut g,
        "entry-invalid-sig-short",
        "sig of 126 characters.",
        &["ENTRY-5", "ENC-12"],
        &["WrongLength"],
        BadEncoding,
        text(&with(e1, &|v| {
            let s = v["sig"].as_str().unwrap_or_default()[..126].to_owned();
            v["sig"] = json!(s);
        })),
    );
    push(
        &mut g,
        "entry-invalid-mention-weak",
        "A mention of a small-order key (order 8).",
        &["ENTRY-5", "ENC-14"],
        &["SmallOrderKey"],
        WeakKey,
        text(&resign(e1, &|v| {
            v["mentions"] = json!(["26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"])
        })),
    );
    push(
        &mut g,
        "entry-invalid-decode-order",
        "prev in uppercase hex and a small-order mention: prev is decoded before mentions (ENTRY-5), whatever the member order of the text (here mentions comes first).",
        &["ENTRY-5", "ENC-11"],
        &["NonLowercaseHex"],
        BadEncoding,
        text(&resign(e2, &|v| {
            let p = v["prev"].as_str().unwrap_or_default().to_uppercase();
            v["prev"] = json!(p);
            v["mentions"] = json!(["26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"]);
        })),
    );
    push(
        &mut g,
        "entry-invalid-ref-short",
        "A ref of 62 characters.",
        &["ENTRY-5", "ENC-12"],
        &["WrongLength"],
        BadEncoding,
        text(&resign(e1, &|v| v["refs"] = json!(["00".repeat(31)]))),
    );

    // Structure.
    for member in ["author", "seq", "prev", "timestamp", "kind", "content", "mentions", "refs", "sig"] {
        push(
            &mut g,
            &format!("entry-invalid-missing-{member}"),
            &format!("No `{member}` member."),
            &["ENTRY-2"],
            &["MissingField"],
            MalformedEntry,
            text(&with(e1, &|v| {
                v.as_object_mut().map(|m| m.remove(member));
            })),
        );
    }
    push(
        &mut g,
        "entry-invalid-extra-field",
        "An extra member `tags`, signed along.",
        &["ENTRY-3"],
        &["ExtraField"],
        MalformedEntry,
        text(&resign(e1, &|v| v["tags"] = json!([]))),
    );
    push(
        &mut g,
        "entry-invalid-not-object",
        "The entry is an array.",
        &["ENTRY-2"],
        &["WrongType"],
        MalformedEntry,
        "[]".into(),
    );
    push(
        &mut g,
        "entry-invalid-seq-string",
        "seq as a string.",
        &["ENTRY-4"],
        &["WrongType"],
        MalformedEntry,
        text(&with(e1, &|v| v["seq"] = json!("1"))),
    );
    push(
        &mut g,
        "entry-invalid-content-array",
        "content is an array.",
        &["ENTRY-4"],
        &["WrongType"],
        MalformedEntry,
        text(&resign(e1, &|v| v["content"] = json!(["hello"]))),
    );
    push(
        &mut g,
        "entry-invalid-prev-number",
        "prev is a number.",
        &["ENTRY-4"],
        &["WrongType"],
        MalformedEntry,
        text(&with(e2, &|v| v["prev"] = json!(1))),
    );
    push(
        &mut g,
        "entry-invalid-mentions-not-strings",
        "mentions holds a number.",
        &["ENTRY-4"],
        &["WrongType"],
        MalformedEntry,
        text(&with(e1, &|v| v["mentions"] = json!([1]))),
    );

    // Field values.
    push(
        &mut g,
        "entry-invalid-seq-zero",
        "seq 0 with prev null, correctly signed.",
        &["ENTRY-6"],
        &["SeqZero"],
        BadSequence,
        text(&resign(e1, &|v| v["seq"] = json!(0))),
    );
    push(
        &mut g,
        "entry-invalid-seq-negative",
        "seq -1.",
        &["ENTRY-6"],
        &["SeqZero"],
        BadSequence,
        text(&resign(e1, &|v| v["seq"] = json!(-1))),
    );
    push(
        &mut g,
        "entry-invalid-timestamp-negative",
        "timestamp -1, correctly signed.",
        &["ENTRY-7"],
        &["WrongType"],
        MalformedEntry,
        text(&resign(e1, &|v| v["timestamp"] = json!(-1))),
    );
    push(
        &mut g,
        "entry-invalid-seq1-with-prev",
        "seq 1 with a prev.",
        &["ENTRY-8"],
        &["PrevShape"],
        BadPrev,
        text(&resign(e1, &|v| v["prev"] = json!(id_of(e2)))),
    );
    push(
        &mut g,
        "entry-invalid-seq2-without-prev",
        "seq 2 with prev null.",
        &["ENTRY-8"],
        &["PrevShape"],
        BadPrev,
        text(&resign(e2, &|v| v["prev"] = Value::Null)),
    );
    for (id, kind, comment) in [
        ("entry-invalid-kind-uppercase", "Post".to_owned(), "kind with an uppercase letter."),
        ("entry-invalid-kind-empty", String::new(), "kind empty."),
        ("entry-invalid-kind-65", "a".repeat(65), "kind of 65 characters."),
        ("entry-invalid-kind-space", "my post".to_owned(), "kind with a space."),
    ] {
        push(
            &mut g,
            id,
            comment,
            &["ENTRY-9"],
            &["KindGrammar"],
            MalformedEntry,
            text(&resign(e1, &|v| v["kind"] = json!(kind))),
        );
    }
    valid(
        &mut g,
        "entry-valid-kind-64",
        "kind of 64 characters from the whole alphabet.",
        &["ENTRY-9"],
        &resign(e1, &|v| {
            v["kind"] = json!(format!("{}.:_-0123456789", "abcdefghijklmnopqrstuvwxyz").repeat(2)[..64].to_owned())
        }),
    );
    let keys: Vec<String> = (0..65).map(|i| key(&format!("mention-{i}")).public().to_string()).collect();
    push(
        &mut g,
        "entry-invalid-mentions-65",
        "65 distinct mentions.",
        &["ENTRY-10"],
        &["ListRule"],
        MalformedEntry,
        text(&resign(e1, &|v| v["mentions"] = json!(keys))),
    );
    valid(
        &mut g,
        "entry-valid-mentions-64",
        "64 distinct mentions is the limit.",
        &["ENTRY-10"],
        &resign(e1, &|v| v["mentions"] = json!(keys[..64])),
    );
    push(
        &mut g,
        "entry-invalid-mentions-duplicate",
        "The same key mentioned twice.",
        &["ENTRY-11"],
        &["ListRule"],
        MalformedEntry,
        text(&resign(e1, &|v| v["mentions"] = json!([keys[0], keys[0]]))),
    );
    let ids: Vec<String> = (0..65u8).map(|i| hex(&Sha256::digest([i]))).collect();
    push(
        &mut g,
        "entry-invalid-refs-65",
        "65 distinct refs.",
        &["ENTRY-12"],
        &["ListRule"],
        MalformedEntry,
        text(&resign(e1, &|v| v["refs"] = json!(ids))),
    );
    push(
        &mut g,
        "entry-invalid-refs-duplicate",
        "The same id referenced twice.",
        &["ENTRY-13"],
        &["ListRule"],
        MalformedEntry,
        text(&resign(e1, &|v| v["refs"] = json!([ids[0], ids[0]]))),
    );
    let profile = |content: Value| {
        resign(e1, &move |v| {
            v["kind"] = json!("profile");
            v["content"] = content.clone();
        })
    };
    push(
        &mut g,
        "entry-invalid-profile-no-name",
        "A profile without name.",
        &["ENTRY-14"],
        &["ProfileRule"],
        MalformedEntry,
        text(&profile(json!({"about": "x"}))),
    );
    push(
        &mut g,
        "entry-invalid-profile-empty-name",
        "A profile with an empty name.",
        &["ENTRY-14"],
        &["ProfileRule"],
        MalformedEntry,
        text(&profile(json!({"name": ""}))),
    );
    push(
        &mut g,
        "entry-invalid-profile-name-65",
        "A profile name of 65 bytes.",
        &["ENTRY-14"],
        &["ProfileRule"],
        MalformedEntry,
        text(&profile(json!({"name": "n".repeat(65)}))),
    );
    push(
        &mut g,
        "entry-invalid-profile-about-1025",
        "A profile about of 1025 bytes.",
        &["ENTRY-15"],
        &["ProfileRule"],
        MalformedEntry,
        text(&profile(json!({"name": "A", "about": "a".repeat(1025)}))),
    );
    push(
        &mut g,
        "entry-invalid-profile-about-number",
        "A profile about that is a number.",
        &["ENTRY-15"],
        &["ProfileRule"],
        MalformedEntry,
        text(&profile(json!({"name": "A", "about": 1}))),
    );
    valid(
        &mut g,
        "entry-valid-profile-limits",
        "A profile with a 64-byte name (32 two-byte characters) and a 1024-byte about.",
        &["ENTRY-14", "ENTRY-15"],
        &profile(json!({"name": "\u{e9}".repeat(32), "about": "a".repeat(1024)})),
    );

    // Content depth.
    let nested = |depth: usize| {
        let mut v = json!([]);
        for _ in 1..depth {
            v = json!([v]);
        }
        v
    };
    valid(
        &mut g,
        "entry-valid-content-depth-32",
        "content of nesting depth 32 (the object plus 31 arrays), the limit.",
        &["ENTRY-16"],
        &resign(e1, &|v| v["content"] = json!({"d": nested(31)})),
    );
    push(
        &mut g,
        "entry-invalid-content-depth-33",
        "content of nesting depth 33, correctly signed.",
        &["ENTRY-16"],
        &["DeepNesting"],
        MalformedEntry,
        text(&resign(e1, &|v| v["content"] = json!({"d": nested(32)}))),
    );

    // Size.
    let sized = |n: usize| resign(e1, &move |v| v["content"] = json!({"text": "x".repeat(n)}));
    let base = canonical_bytes(&sized(0)).len();
    let at_limit = sized(16384 - base);
    assert_eq!(canonical_bytes(&at_limit).len(), 16384);
    valid(&mut g, "entry-valid-size-16384", "size(E) = 16384 bytes exactly, the limit.", &["ENTRY-17"], &at_limit);
    push(
        &mut g,
        "entry-invalid-size-16385",
        "size(E) = 16385 bytes, one over the limit, correctly signed.",
        &["ENTRY-17"],
        &["Oversized"],
        EntryTooLarge,
        text(&sized(16385 - base)),
    );

    // The number model, refused at the frame level.
    let content_pos = |t: &str| t.replace("\"content\":{", "\"content\":{\"n\":1.0,");
    push(
        &mut g,
        "entry-invalid-float-in-content",
        "content holds 1.0: a float, even though whole.",
        &["ENC-4"],
        &["Float"],
        MalformedFrame,
        content_pos(&e1t),
    );
    push(
        &mut g,
        "entry-invalid-exponent-in-content",
        "content holds 1e2.",
        &["ENC-4"],
        &["Float"],
        MalformedFrame,
        e1t.replace("\"content\":{", "\"content\":{\"n\":1e2,"),
    );
    push(
        &mut g,
        "entry-invalid-duplicate-key-in-content",
        "content has the key `text` twice.",
        &["ENC-3"],
        &["DuplicateKey"],
        MalformedFrame,
        e1t.replace("\"content\":{", "\"content\":{\"text\":\"other\","),
    );
    push(
        &mut g,
        "entry-invalid-duplicate-member",
        "The entry has `seq` twice (same value).",
        &["ENC-3"],
        &["DuplicateKey"],
        MalformedFrame,
        e1t.replacen('{', "{\"seq\":1,", 1),
    );
    push(
        &mut g,
        "entry-invalid-integer-out-of-range",
        "content holds 2^53.",
        &["ENC-6"],
        &["IntegerRange"],
        MalformedFrame,
        e1t.replace("\"content\":{", "\"content\":{\"n\":9007199254740992,"),
    );
    push(
        &mut g,
        "entry-invalid-seq-out-of-range",
        "seq is 2^53.",
        &["ENC-6"],
        &["IntegerRange"],
        MalformedFrame,
        e1t.replace("\"seq\":1", "\"seq\":9007199254740992"),
    );
    push(
        &mut g,
        "entry-invalid-negative-zero",
        "content holds -0.",
        &["ENC-5"],
        &["NegativeZero"],
        MalformedFrame,
        e1t.replace("\"content\":{", "\"content\":{\"n\":-0,"),
    );
    push(
        &mut g,
        "entry-invalid-lone-surrogate",
        "content.text holds a lone surrogate escape.",
        &["ENC-7"],
        &["LoneSurrogate"],
        MalformedFrame,
        e1t.replace("hello, kith", "hello, \\ud800kith"),
    );
    g
}

fn chain_rules_group(c: &Chain) -> Group {
    let user = key("user");
    let mut g = Group::new(
        "EntryChainRule",
        "Placing a valid entry in its author's feed (chapter 03 §6). `head` is the node's feed state H (seq, id, timestamp) or null when it holds nothing of the feed; `pruned_through` is P; `held` lists the ids the node holds at seqs in (P, H.seq]. A valid case names its `outcome`: anchor (ENTRY-23), next (ENTRY-27) or duplicate (ENTRY-28, ENTRY-31).",
    )
    .with("author_seed_label", "user");
    let head = |e: &Value| json!({"seq": e["seq"], "id": id_of(e), "timestamp": e["timestamp"]});
    let held = |es: &[&Value]| Value::Array(es.iter().map(|e| json!({"seq": e["seq"], "id": id_of(e)})).collect());
    let [e1, e2, e3, e4] = [&c.entries[0], &c.entries[1], &c.entries[2], &c.entries[3]];
    let case = |cs: Case, entry: &Value, h: Value, p: u64, hd: Value| {
        cs.with("entry", text(entry)).with("head", h).with("pruned_through", p).with("held", hd)
    };
    g.push(case(
        Case::valid("chain-valid-anchor-empty", "No feed state: seq 3 anchors the feed.", &["ENTRY-23"])
            .with("outcome", "anchor"),
        e3,
        Value::Null,
        0,
        json!([]),
    ));
    g.push(case(
        Case::valid("chain-valid-next", "seq 3 after head seq 2.", &["ENTRY-27"]).with("outcome", "next"),
        e3,
        head(e2),
        0,
        held(&[e1, e2]),
    ));
    g.push(case(
        Case::valid("chain-valid-duplicate-head", "The head itself again.", &["ENTRY-28"]).with("outcome", "duplicate"),
        e2,
        head(e2),
        0,
        held(&[e1, e2]),
    ));
    g.push(case(
        Case::valid("chain-valid-duplicate-below-head", "seq 1 again, held.", &["ENTRY-31"])
            .with("outcome", "duplicate"),
        e1,
        head(e2),
        0,
        held(&[e1, e2]),
    ));
    g.push(case(
        Case::invalid("chain-invalid-gap", "seq 4 after head seq 2.", &["ENTRY-24"], &["SequenceGap"], BadSequence),
        e4,
        head(e2),
        0,
        held(&[e1, e2]),
    ));
    let un = |seq: u64, prev: &str, ts: u64, t: &str| unsigned(&user, seq, Some(prev), ts, json!({"text": t}));
    let wrong_prev = sign(&user, un(3, &id_of(e1), T0 + 60_000, "links to seq 1"), Context::Entry);
    g.push(case(
        Case::invalid(
            "chain-invalid-wrong-prev",
            "seq 3 whose prev is the id of seq 1.",
            &["ENTRY-25"],
            &["WrongPrev"],
            BadPrev,
        ),
        &wrong_prev,
        head(e2),
        0,
        held(&[e1, e2]),
    ));
    let early = sign(&user, un(3, &id_of(e2), T0 + 59_999, "one ms early"), Context::Entry);
    g.push(case(
        Case::invalid(
            "chain-invalid-timestamp-backwards",
            "seq 3 one millisecond before seq 2.",
            &["ENTRY-26", "ENTRY-22"],
            &["TimestampBackwards"],
            BadTimestamp,
        ),
        &early,
        head(e2),
        0,
        held(&[e1, e2]),
    ));
    let fork2 = sign(&user, un(2, &id_of(e1), T0 + 60_000, "another seq 2"), Context::Entry);
    g.push(case(
        Case::invalid(
            "chain-invalid-fork-at-head",
            "A different seq 2 while the head is seq 2: what an author who breaks ENTRY-21 produces.",
            &["ENTRY-29", "ENTRY-21"],
            &["Fork"],
            Fork,
        ),
        &fork2,
        head(e2),
        0,
        held(&[e1, e2]),
    ));
    let fork1 = sign(&user, unsigned(&user, 1, None, T0, json!({"text": "another first entry"})), Context::Entry);
    g.push(case(
        Case::invalid(
            "chain-invalid-fork-below-head",
            "A different seq 1 while seq 1 is held and the head is seq 3.",
            &["ENTRY-32"],
            &["Fork"],
            Fork,
        ),
        &fork1,
        head(e3),
        0,
        held(&[e1, e2, e3]),
    ));
    g.push(case(
        Case::invalid(
            "chain-invalid-pruned",
            "seq 1 after the node pruned it (P = 1).",
            &["ENTRY-30"],
            &["Pruned"],
            Pruned,
        ),
        e1,
        head(e3),
        1,
        held(&[e2, e3]),
    ));
    g.push(case(
        Case::invalid(
            "chain-invalid-before-anchor",
            "The feed was anchored at seq 3, so P = 2; seq 2 then arrives.",
            &["ENTRY-23", "ENTRY-30"],
            &["Pruned"],
            Pruned,
        ),
        e2,
        head(e3),
        2,
        held(&[e3]),
    ));
    g
}

/// The file.
pub fn file() -> Value {
    let user = key("user");
    let c = chain(&user);
    vector_file(
        "Kith entries",
        "Signed, hash-linked feed entries (spec chapter 03): a valid feed, entries refused on their own, and entries refused by the feed rules. id = SHA-256(canonical(entry with sig)); signing bytes = \"kith/1/entry\" || 0x00 || canonical(entry without sig). Keys are derived from seeds: seed(label) = SHA-256(\"kith/1 vectors seed \" || label).",
        vec![chain_group(&user, &c), validate_group(&user, &c), chain_rules_group(&c)],
    )
}
