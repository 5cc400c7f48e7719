//! `vectors/replacements.json`: `replace_key` and its doubly signed replacement (chapter 07 §6).

use kith_proto::account::KeyReplacement;
use kith_proto::canonical::CanonicalValue;
use kith_proto::signing::Context;
use kith_proto::ErrorCode::{self, *};
use kith_proto::Signature;
use serde_json::{json, Value};

use crate::common::{add_l_to_s, file as vector_file, key, Case, Group};

const NOW: u64 = 1_767_225_600_000;
const EXPIRES: u64 = NOW + 3_600_000;

fn frame(replacement: &str) -> String {
    format!(r#"{{"id":12,"replacement":{replacement},"type":"replace_key"}}"#)
}

fn text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn group() -> Group {
    let node = key("node");
    let old = key("invitee");
    let new = key("user-new");
    let mut g = Group::new(
        "ReplaceKey",
        "A node (key seed `node`, clock `now`) receives `frame`, a replace_key carrying `replacement` (JSON text), on a session whose user is `session_user`. Chapter 07 §6.3's checks in order, the first failing decides: structure (ACCT-22), decoding node, old, new, sig_old, sig_new (ACCT-23), node (ACCT-24), admin session (ACCT-25), old is the session's user (ACCT-26), expiry (ACCT-27), sig_old (ACCT-28), sig_new (ACCT-29). Whether `new` is taken (ACCT-30) depends on the node's accounts and is left to the conformance suite.",
    )
    .with("node_seed_label", "node")
    .with("old_seed_label", "invitee")
    .with("new_seed_label", "user-new")
    .with("now", NOW);
    let good = KeyReplacement::sign(node.public(), &old, &new, EXPIRES);
    let gv = serde_json::to_value(&good).unwrap_or_default();
    let session = old.public().to_string();
    let case = |c: Case, v: String, session: &str| {
        c.with("frame", frame(&v)).with("replacement", v).with("session_user", session.to_owned())
    };
    let inv = |g: &mut Group, id: &str, comment: &str, reqs: &[&str], flags: &[&str], code: ErrorCode, v: String| {
        g.push(case(Case::invalid(id, comment, reqs, flags, code), v, &session));
    };
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = gv.clone();
        f(&mut v);
        text(&v)
    };
    // Re-signs by both keys after a change, so only the changed rule is broken.
    let resign = |f: &dyn Fn(&mut Value)| {
        let mut v = gv.clone();
        f(&mut v);
        let mut unsigned = v.clone();
        if let Some(m) = unsigned.as_object_mut() {
            m.remove("sig_old");
            m.remove("sig_new");
        }
        let canon = CanonicalValue::from_json(&unsigned).unwrap_or(CanonicalValue::Null);
        v["sig_old"] = json!(old.sign(Context::ReplaceKey, &canon).to_string());
        v["sig_new"] = json!(new.sign(Context::ReplaceKey, &canon).to_string());
        text(&v)
    };
    g.push(case(
        Case::valid(
            "replace-valid",
            "`invitee` hands its account to `user-new`; both sign the same bytes.",
            &["ACCT-21", "ACCT-28", "ACCT-29"],
        ),
        text(&gv),
        &session,
    ));
    inv(
        &mut g,
        "replace-invalid-missing-sig-new",
        "No sig_new.",
        &["ACCT-22"],
        &["MissingField"],
        InvalidRequest,
        with(&|v| {
            v.as_object_mut().map(|m| m.remove("sig_new"));
        }),
    );
    inv(
        &mut g,
        "replace-invalid-extra-member",
        "An extra member.",
        &["ACCT-22"],
        &["ExtraField"],
        InvalidRequest,
        with(&|v| v["reason"] = json!("new phone")),
    );
    inv(
        &mut g,
        "replace-invalid-expires-string",
        "expires as a string.",
        &["ACCT-22"],
        &["WrongType"],
        InvalidRequest,
        with(&|v| v["expires"] = json!(EXPIRES.to_string())),
    );
    inv(
        &mut g,
        "replace-invalid-node-uppercase",
        "node in uppercase hex.",
        &["ACCT-23", "ENC-11"],
        &["NonLowercaseHex"],
        BadEncoding,
        with(&|v| {
            let n = v["node"].as_str().unwrap_or_default().to_uppercase();
            v["node"] = json!(n);
        }),
    );
    inv(
        &mut g,
        "replace-invalid-new-weak",
        "new is a small-order key.",
        &["ACCT-23", "ENC-14"],
        &["SmallOrderKey"],
        WeakKey,
        with(&|v| v["new"] = json!(format!("01{}", "00".repeat(31)))),
    );
    inv(
        &mut g,
        "replace-invalid-decode-order",
        "old in uppercase hex and new of small order: old is decoded first.",
        &["ACCT-23", "ENC-11"],
        &["NonLowercaseHex"],
        BadEncoding,
        with(&|v| {
            let o = v["old"].as_str().unwrap_or_default().to_uppercase();
            v["old"] = json!(o);
            v["new"] = json!(format!("01{}", "00".repeat(31)));
        }),
    );
    inv(
        &mut g,
        "replace-invalid-sig-old-short",
        "sig_old of 126 characters.",
        &["ACCT-23", "ENC-12"],
        &["WrongLength"],
        BadEncoding,
        with(&|v| {
            let s = v["sig_old"].as_str().unwrap_or_default()[..126].to_owned();
            v["sig_old"] = json!(s);
        }),
    );
    inv(
        &mut g,
        "replace-invalid-other-node",
        "A replacement for another node, correctly signed.",
        &["ACCT-24"],
        &["WrongPeer"],
        InvalidRequest,
        resign(&|v| v["node"] = json!(key("node-other").public().to_string())),
    );
    let admin_repl = KeyReplacement::sign(node.public(), &node, &new, EXPIRES);
    g.push(case(
        Case::invalid(
            "replace-invalid-admin-session",
            "The admin (whose key is the node key) tries to replace its key.",
            &["ACCT-25"],
            &["WrongSigner"],
            Forbidden,
        ),
        text(&serde_json::to_value(&admin_repl).unwrap_or_default()),
        &node.public().to_string(),
    ));
    g.push(case(
        Case::invalid(
            "replace-invalid-not-session-user",
            "A valid replacement of `invitee` sent on a session of `user`.",
            &["ACCT-26"],
            &["WrongSigner"],
            InvalidRequest,
        ),
        text(&gv),
        &key("user").public().to_string(),
    ));
    inv(
        &mut g,
        "replace-invalid-expired",
        "expires = now, correctly signed.",
        &["ACCT-27"],
        &["Expired"],
        InvalidRequest,
        resign(&|v| v["expires"] = json!(NOW)),
    );
    let mut flipped = *good.sig_old.as_bytes();
    flipped[7] ^= 2;
    inv(
        &mut g,
        "replace-invalid-sig-old",
        "One bit of sig_old flipped.",
        &["ACCT-28"],
        &["ModifiedSignature"],
        BadSignature,
        with(&|v| v["sig_old"] = json!(Signature::from_bytes(flipped).to_string())),
    );
    inv(
        &mut g,
        "replace-invalid-sig-new-by-old",
        "sig_new is old's signature: new never agreed.",
        &["ACCT-29"],
        &["WrongSigner"],
        BadSignature,
        with(&|v| v["sig_new"] = v["sig_old"].clone()),
    );
    inv(
        &mut g,
        "replace-invalid-sig-new-s-plus-l",
        "sig_new with S + L.",
        &["ACCT-29", "SIGN-14"],
        &["NonCanonicalS"],
        BadSignature,
        with(&|v| v["sig_new"] = json!(Signature::from_bytes(add_l_to_s(good.sig_new.as_bytes())).to_string())),
    );
    inv(
        &mut g,
        "replace-invalid-other-context",
        "Both signatures made under kith/1/cert instead of kith/1/replace-key.",
        &["ACCT-28", "SIGN-9"],
        &["WrongContext"],
        BadSignature,
        with(&|v| {
            let mut unsigned = gv.clone();
            if let Some(m) = unsigned.as_object_mut() {
                m.remove("sig_old");
                m.remove("sig_new");
            }
            let canon = CanonicalValue::from_json(&unsigned).unwrap_or(CanonicalValue::Null);
            v["sig_old"] = json!(old.sign(Context::Certificate, &canon).to_string());
            v["sig_new"] = json!(new.sign(Context::Certificate, &canon).to_string());
        }),
    );
    inv(
        &mut g,
        "replace-invalid-expired-and-bad-signature",
        "Expired and sig_old forged: expiry is checked first (ACCT-27 before ACCT-28).",
        &["ACCT-27", "ACCT-28"],
        &["Expired", "ModifiedSignature"],
        InvalidRequest,
        with(&|v| v["expires"] = json!(NOW)),
    );
    g
}

/// The file.
pub fn file() -> Value {
    vector_file(
        "Kith key replacement",
        "A key replacement hands an account from `old` to `new`, signed by both under kith/1/replace-key (spec chapter 07 §6). Keys are derived from seeds: seed(label) = SHA-256(\"kith/1 vectors seed \" || label).",
        vec![group()],
    )
}
