//! `vectors/identities.json`: identity notes as `add_identity` carries them, node addresses, and
//! follow keys (chapters 09 and 05 §2).

use kith_proto::identity::IdentityNote;
use kith_proto::signing::Context;
use kith_proto::ErrorCode::{self, *};
use kith_proto::{SecretKey, Signature};
use serde_json::{json, Value};

use crate::common::{file as vector_file, key, Case, Group};

/// The example node key of chapter 05 §2.2.
const K: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";

fn frame(note: &str) -> String {
    format!(r#"{{"id":9,"note":{note},"type":"add_identity"}}"#)
}

fn resign(author: &SecretKey, note: &Value, f: &dyn Fn(&mut Value)) -> Value {
    let mut v = note.clone();
    v.as_object_mut().map(|m| m.remove("sig"));
    f(&mut v);
    let canon =
        kith_proto::canonical::CanonicalValue::from_json(&v).unwrap_or(kith_proto::canonical::CanonicalValue::Null);
    v["sig"] = json!(author.sign(Context::IdentityNote, &canon).to_string());
    v
}

fn notes_group() -> Group {
    let user = key("user");
    let friend = key("friend");
    let mut g = Group::new(
        "AddIdentity",
        "A node receives `frame`, an add_identity carrying `note` (JSON text), from a session of the note's author (seed `user`). Checks of chapter 09 §2 in order: structure (invalid_request), encodings (bad_encoding / weak_key), limits and addresses (invalid_request), signature (bad_signature). The author check (IDENT-9) needs a session and is left to the conformance suite.",
    )
    .with("author_seed_label", "user");
    let note = IdentityNote::sign(
        &user,
        friend.public(),
        "Friend",
        vec![format!("/dns/kith.example.org/wss/443/{K}")],
        "Met at the café.",
        1_767_225_600_000,
    );
    let nv = serde_json::to_value(&note).unwrap_or_default();
    let text = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    let valid = |g: &mut Group, id: &str, comment: &str, reqs: &[&str], v: &Value| {
        g.push(Case::valid(id, comment, reqs).with("note", text(v)).with("frame", frame(&text(v))));
    };
    let inv = |g: &mut Group, id: &str, comment: &str, reqs: &[&str], flags: &[&str], code: ErrorCode, v: String| {
        g.push(Case::invalid(id, comment, reqs, flags, code).with("frame", frame(&v)).with("note", v));
    };
    valid(
        &mut g,
        "note-valid",
        "A note by `user` about `friend` with one address.",
        &["IDENT-1", "IDENT-10", "SIGN-10"],
        &nv,
    );
    valid(
        &mut g,
        "note-valid-limits",
        "display_name of 64 bytes, note of 1024 bytes, 8 distinct addresses.",
        &["IDENT-4", "IDENT-5", "IDENT-6"],
        &resign(&user, &nv, &|v| {
            v["display_name"] = json!("\u{e9}".repeat(32));
            v["note"] = json!("n".repeat(1024));
            v["addresses"] = json!((1..=8).map(|p| format!("/ip4/127.0.0.1/ws/{p}/{K}")).collect::<Vec<_>>());
        }),
    );
    inv(
        &mut g,
        "note-invalid-missing-updated",
        "No `updated`.",
        &["IDENT-2"],
        &["MissingField"],
        InvalidRequest,
        text(&resign(&user, &nv, &|v| {
            v.as_object_mut().map(|m| m.remove("updated"));
        })),
    );
    inv(
        &mut g,
        "note-invalid-extra-member",
        "An extra member, signed along.",
        &["IDENT-2"],
        &["ExtraField"],
        InvalidRequest,
        text(&resign(&user, &nv, &|v| v["mood"] = json!("happy"))),
    );
    inv(
        &mut g,
        "note-invalid-addresses-string",
        "addresses is a string.",
        &["IDENT-2"],
        &["WrongType"],
        InvalidRequest,
        text(&resign(&user, &nv, &|v| v["addresses"] = json!("/dns/x/ws/1/"))),
    );
    inv(
        &mut g,
        "note-invalid-subject-uppercase",
        "subject in uppercase hex.",
        &["IDENT-3", "ENC-11"],
        &["NonLowercaseHex"],
        BadEncoding,
        text(&resign(&user, &nv, &|v| {
            let s = v["subject"].as_str().unwrap_or_default().to_uppercase();
            v["subject"] = json!(s);
        })),
    );
    inv(
        &mut g,
        "note-invalid-subject-weak",
        "subject is a small-order key.",
        &["IDENT-3", "ENC-14"],
        &["SmallOrderKey"],
        WeakKey,
        text(&resign(&user, &nv, &|v| v["subject"] = json!(format!("01{}", "00".repeat(31))))),
    );
    inv(
        &mut g,
        "note-invalid-decode-order",
        "subject in uppercase hex and author of small order: subject is decoded first (IDENT-3), although author comes first in the text.",
        &["IDENT-3", "ENC-11"],
        &["NonLowercaseHex"],
        BadEncoding,
        text(&{
            let mut v = nv.clone();
            let s = v["subject"].as_str().unwrap_or_default().to_uppercase();
            v["subject"] = json!(s);
            v["author"] = json!(format!("01{}", "00".repeat(31)));
            v
        }),
    );
    inv(
        &mut g,
        "note-invalid-sig-short",
        "sig of 126 characters.",
        &["IDENT-3", "ENC-12"],
        &["WrongLength"],
        BadEncoding,
        text(&{
            let mut v = nv.clone();
            let s = v["sig"].as_str().unwrap_or_default()[..126].to_owned();
            v["sig"] = json!(s);
            v
        }),
    );
    inv(
        &mut g,
        "note-invalid-empty-name",
        "display_name empty.",
        &["IDENT-4"],
        &["Oversized"],
        InvalidRequest,
        text(&resign(&user, &nv, &|v| v["display_name"] = json!(""))),
    );
    inv(
        &mut g,
        "note-invalid-name-65",
        "display_name of 65 bytes.",
        &["IDENT-4"],
        &["Oversized"],
        InvalidRequest,
        text(&resign(&user, &nv, &|v| v["display_name"] = json!("n".repeat(65)))),
    );
    inv(
        &mut g,
        "note-invalid-note-1025",
        "note of 1025 bytes.",
        &["IDENT-5"],
        &["Oversized"],
        InvalidRequest,
        text(&resign(&user, &nv, &|v| v["note"] = json!("n".repeat(1025)))),
    );
    inv(
        &mut g,
        "note-invalid-9-addresses",
        "9 addresses.",
        &["IDENT-6"],
        &["Oversized"],
        InvalidRequest,
        text(&resign(&user, &nv, &|v| {
            v["addresses"] = json!((1..=9).map(|p| format!("/ip4/127.0.0.1/ws/{p}/{K}")).collect::<Vec<_>>())
        })),
    );
    inv(
        &mut g,
        "note-invalid-bad-address",
        "An address with port 0.",
        &["IDENT-7", "HS-1"],
        &["MalformedJson"],
        InvalidRequest,
        text(&resign(&user, &nv, &|v| v["addresses"] = json!([format!("/ip4/127.0.0.1/ws/0/{K}")]))),
    );
    inv(
        &mut g,
        "note-invalid-duplicate-address",
        "The same address twice.",
        &["IDENT-8"],
        &["ListRule"],
        InvalidRequest,
        text(&resign(&user, &nv, &|v| {
            v["addresses"] = json!([format!("/ip4/127.0.0.1/ws/7777/{K}"), format!("/ip4/127.0.0.1/ws/7777/{K}")])
        })),
    );
    let mut flipped = *note.sig.as_bytes();
    flipped[1] ^= 4;
    inv(
        &mut g,
        "note-invalid-bad-signature",
        "One bit of sig flipped: a node refuses it, and a client verifying notes it receives in identities_ok refuses it too.",
        &["IDENT-10", "IDENT-18"],
        &["ModifiedSignature"],
        BadSignature,
        text(&{
            let mut v = nv.clone();
            v["sig"] = json!(Signature::from_bytes(flipped).to_string());
            v
        }),
    );
    inv(
        &mut g,
        "note-invalid-entry-context",
        "The note signed under kith/1/entry.",
        &["IDENT-10", "SIGN-9"],
        &["WrongContext"],
        BadSignature,
        text(&{
            let mut v = nv.clone();
            v.as_object_mut().map(|m| m.remove("sig"));
            let canon = kith_proto::canonical::CanonicalValue::from_json(&v)
                .unwrap_or(kith_proto::canonical::CanonicalValue::Null);
            v["sig"] = json!(user.sign(Context::Entry, &canon).to_string());
            v
        }),
    );
    inv(
        &mut g,
        "note-invalid-modified",
        "updated changed after signing.",
        &["IDENT-10"],
        &["ModifiedContent"],
        BadSignature,
        text(&{
            let mut v = nv.clone();
            v["updated"] = json!(1_767_225_600_001u64);
            v
        }),
    );
    g
}

fn address_group() -> Group {
    let mut g = Group::new(
        "NodeAddress",
        "Parse `address` (chapter 05 §2.1). A valid address maps to `url` (§2.2). An invalid one is never dialled (HS-1) and, inside an identity note, is answered with invalid_request (IDENT-7).",
    );
    for (id, addr, url) in [
        ("address-valid-ip4", format!("/ip4/127.0.0.1/ws/7777/{K}"), "ws://127.0.0.1:7777/"),
        ("address-valid-ip6-loopback", format!("/ip6/::1/wss/443/{K}"), "wss://[::1]:443/"),
        ("address-valid-ip6", format!("/ip6/2001:db8::7/ws/7777/{K}"), "ws://[2001:db8::7]:7777/"),
        ("address-valid-dns", format!("/dns/kith.example.org/wss/443/{K}"), "wss://kith.example.org:443/"),
        ("address-valid-max-port", format!("/ip4/10.0.0.1/ws/65535/{K}"), "ws://10.0.0.1:65535/"),
    ] {
        g.push(Case::valid(id, "Chapter 05 §2.2's example.", &["HS-1", "HS-2"]).with("address", addr).with("url", url));
    }
    let p = |id: &str, comment: &str, addr: String| {
        Case::invalid(id, comment, &["HS-1", "IDENT-7"], &["MalformedJson"], InvalidRequest).with("address", addr)
    };
    for c in [
        p(
            "address-invalid-octet-leading-zero",
            "A leading zero in an IPv4 octet.",
            format!("/ip4/127.0.0.01/ws/7777/{K}"),
        ),
        p("address-invalid-port-zero", "Port 0.", format!("/ip4/127.0.0.1/ws/0/{K}")),
        p("address-invalid-port-leading-zero", "A leading zero in the port.", format!("/ip4/127.0.0.1/ws/07777/{K}")),
        p("address-invalid-port-too-large", "Port 65536.", format!("/ip4/127.0.0.1/ws/65536/{K}")),
        p("address-invalid-dns-uppercase", "An uppercase host name.", format!("/dns/Kith.Example.org/wss/443/{K}")),
        p("address-invalid-scheme", "Scheme http.", format!("/ip4/127.0.0.1/http/80/{K}")),
        p("address-invalid-trailing-slash", "A trailing slash.", format!("/ip4/127.0.0.1/ws/7777/{K}/")),
        p(
            "address-invalid-key-uppercase",
            "The key in uppercase.",
            format!("/ip4/127.0.0.1/ws/7777/{}", K.to_uppercase()),
        ),
        p(
            "address-invalid-key-weak",
            "The key is a small-order point.",
            format!("/ip4/127.0.0.1/ws/7777/01{}", "00".repeat(31)),
        ),
        p("address-invalid-ip6-uppercase", "IPv6 with uppercase hex.", format!("/ip6/2001:DB8::7/ws/7777/{K}")),
    ] {
        g.push(c);
    }
    g
}

fn follow_group() -> Group {
    let mut g = Group::new("FollowKey", "A `follow` frame (`frame`): its key is decoded as a KEY (IDENT-19).");
    let friend = key("friend").public().to_string();
    g.push(
        Case::valid("follow-valid", "Follow seed `friend`.", &["IDENT-19", "IDENT-20"])
            .with("frame", format!(r#"{{"id":3,"key":"{friend}","type":"follow"}}"#)),
    );
    g.push(
        Case::invalid(
            "follow-invalid-uppercase",
            "The key in uppercase.",
            &["IDENT-19", "ENC-11"],
            &["NonLowercaseHex"],
            BadEncoding,
        )
        .with("frame", format!(r#"{{"id":3,"key":"{}","type":"follow"}}"#, friend.to_uppercase())),
    );
    g.push(
        Case::invalid(
            "follow-invalid-weak",
            "A small-order key.",
            &["IDENT-19", "ENC-14"],
            &["SmallOrderKey"],
            WeakKey,
        )
        .with("frame", format!(r#"{{"id":3,"key":"01{}","type":"unfollow"}}"#, "00".repeat(31))),
    );
    g
}

/// The file.
pub fn file() -> Value {
    vector_file(
        "Kith identity notes, node addresses and follows",
        "Identity notes are a local user's signed description of another user (spec chapter 09); node addresses are chapter 05 §2's text form. Keys are derived from seeds: seed(label) = SHA-256(\"kith/1 vectors seed \" || label).",
        vec![notes_group(), address_group(), follow_group()],
    )
}
