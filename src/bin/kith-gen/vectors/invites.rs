//! `vectors/invites.json`: invite and publish allowance arithmetic (chapter 07 §5).

use kith_proto::account::charge_invite;
use kith_proto::encoding::MAX_SAFE_INTEGER;
use kith_proto::ErrorCode::AllowanceExhausted;
use serde_json::{json, Value};

use crate::common::{file as vector_file, Case, Group};

/// (tc_id, comment, inviter's allowance, child's allowance, requirements).
type InviteRow = (&'static str, &'static str, Option<u64>, u64, &'static [&'static str]);

fn invite_group() -> Group {
    let mut g = Group::new(
        "InviteAllowance",
        "An inviter I with `inviter_invite_allowance` (null = unlimited, the admin) creates a child with invite allowance N = `child_invite_allowance`. It succeeds when I's allowance is null or at least 1 + N, and then I keeps `remaining` (null stays null); otherwise allowance_exhausted and nothing changes. 1 + N is computed exactly (ENC-16).",
    );
    let cases: [InviteRow; 11] = [
        ("invite-valid-simple", "10 - (1 + 3) = 6.", Some(10), 3, &["ACCT-12", "ACCT-14"]),
        ("invite-valid-exact", "4 covers 1 + 3 exactly, leaving 0.", Some(4), 3, &["ACCT-12", "ACCT-14"]),
        ("invite-valid-leaf", "A child that may invite no one costs 1.", Some(1), 0, &["ACCT-14"]),
        ("invite-invalid-one-short", "3 does not cover 1 + 3.", Some(3), 3, &["ACCT-12"]),
        ("invite-invalid-zero", "An inviter with 0 left cannot invite even a leaf.", Some(0), 0, &["ACCT-12"]),
        (
            "invite-invalid-child-equal",
            "The child's own slot counts: 5 does not cover 1 + 5.",
            Some(5),
            5,
            &["ACCT-12"],
        ),
        (
            "invite-valid-admin-unlimited",
            "The admin's null allowance is never charged.",
            None,
            1000,
            &["ACCT-3", "ACCT-14"],
        ),
        (
            "invite-valid-admin-max",
            "The admin grants the largest allowance.",
            None,
            MAX_SAFE_INTEGER,
            &["ACCT-14", "ENC-16"],
        ),
        (
            "invite-valid-max-minus-one",
            "2^53 - 1 covers 1 + (2^53 - 2) exactly.",
            Some(MAX_SAFE_INTEGER),
            MAX_SAFE_INTEGER - 1,
            &["ACCT-12", "ENC-16"],
        ),
        (
            "invite-invalid-max-overflow",
            "1 + (2^53 - 1) = 2^53 exceeds 2^53 - 1: computed exactly, it is not covered.",
            Some(MAX_SAFE_INTEGER),
            MAX_SAFE_INTEGER,
            &["ACCT-12", "ENC-16"],
        ),
        (
            "invite-invalid-small-vs-max",
            "A small allowance never covers a huge child (no wrap-around).",
            Some(2),
            MAX_SAFE_INTEGER,
            &["ACCT-12", "ENC-16"],
        ),
    ];
    for (id, comment, inviter, child, reqs) in cases {
        let c = match charge_invite(inviter, child) {
            Ok(remaining) => Case::valid(id, comment, reqs).with("remaining", json!(remaining)),
            Err(_) => {
                let flags: &[&str] = if child == MAX_SAFE_INTEGER {
                    &["AllowanceExhausted", "Overflow"]
                } else {
                    &["AllowanceExhausted"]
                };
                Case::invalid(id, comment, reqs, flags, AllowanceExhausted).with("remaining", json!(inviter))
            }
        };
        g.push(c.with("inviter_invite_allowance", json!(inviter)).with("child_invite_allowance", child));
    }
    g
}

fn sequence_group() -> Group {
    let mut g = Group::new(
        "InviteSequence",
        "One inviter invites several children in order; each step is charged as in InviteAllowance and a refused step changes nothing. `steps[i].result` is valid or invalid (allowance_exhausted) and `steps[i].remaining` the inviter's allowance after the step. The case's result is that of the last step.",
    );
    let mut remaining = Some(10);
    let mut steps = Vec::new();
    let mut last_ok = true;
    for child in [3u64, 2, 0, 3, 1] {
        match charge_invite(remaining, child) {
            Ok(r) => {
                remaining = r;
                last_ok = true;
                steps.push(
                    json!({"child_invite_allowance": child, "result": "valid", "error": null, "remaining": remaining}),
                );
            }
            Err(_) => {
                last_ok = false;
                steps.push(json!({"child_invite_allowance": child, "result": "invalid", "error": "allowance_exhausted", "remaining": remaining}));
            }
        }
    }
    let c = if last_ok {
        Case::valid(
            "invite-sequence-exhaustion",
            "10 -> 6 -> 3 -> 2, then 3 is refused (needs 4) and 1 still succeeds (needs 2), leaving 0.",
            &["ACCT-12", "ACCT-14"],
        )
    } else {
        Case::invalid(
            "invite-sequence-exhaustion",
            "sequence",
            &["ACCT-12"],
            &["AllowanceExhausted"],
            AllowanceExhausted,
        )
    };
    g.push(c.with("inviter_invite_allowance", 10).with("steps", Value::Array(steps)));
    g
}

fn publish_group() -> Group {
    let mut g = Group::new(
        "PublishAllowance",
        "An inviter I with `inviter_publish_allowance` (null = unlimited) creates a child with publish allowance M = `child_publish_allowance`: allowance_exhausted when I's is not null and less than M (ACCT-13). The inviter's publish allowance is not charged (ACCT-15).",
    );
    let cases: [(&str, &str, Option<u64>, u64); 5] = [
        ("publish-allowance-valid-equal", "M equal to the inviter's.", Some(100), 100),
        ("publish-allowance-valid-less", "M below the inviter's.", Some(100), 0),
        ("publish-allowance-invalid-more", "M one above the inviter's.", Some(100), 101),
        ("publish-allowance-valid-admin", "The admin's null allowance allows any M.", None, MAX_SAFE_INTEGER),
        ("publish-allowance-invalid-zero", "An inviter with 0 left cannot grant 1.", Some(0), 1),
    ];
    for (id, comment, inviter, child) in cases {
        let c = match kith_proto::account::check_publish_allowance(inviter, child) {
            Ok(()) => Case::valid(id, comment, &["ACCT-13", "ACCT-15"]),
            Err(_) => Case::invalid(id, comment, &["ACCT-13"], &["AllowanceExhausted"], AllowanceExhausted),
        };
        g.push(
            c.with("inviter_publish_allowance", json!(inviter))
                .with("child_publish_allowance", child)
                .with("remaining", json!(inviter)),
        );
    }
    g
}

fn name_group() -> Group {
    let mut g = Group::new(
        "AccountName",
        "A `create_user` frame (`frame`) whose `name` is checked against chapter 07 §9's grammar, 1 to 32 of a-z 0-9 _ -: invalid_request otherwise (ACCT-9). The admin's name obeys the same grammar (ACCT-5).",
    );
    let key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let frame = |name: &str| {
        format!(
            r#"{{"id":4,"invite_allowance":0,"key":"{key}","name":{},"publish_allowance":10,"type":"create_user"}}"#,
            json!(name)
        )
    };
    for (id, name, comment) in [
        ("name-valid-admin", "admin".to_owned(), "The default admin name."),
        ("name-valid-one-char", "a".to_owned(), "One character."),
        ("name-valid-32", "abcdefghijklmnopqrstuvwxyz_-0123".to_owned(), "32 characters from the whole alphabet."),
    ] {
        g.push(Case::valid(id, comment, &["ACCT-9", "ACCT-5"]).with("name", name.clone()).with("frame", frame(&name)));
    }
    for (id, name, comment) in [
        ("name-invalid-empty", String::new(), "Empty."),
        ("name-invalid-33", "a".repeat(33), "33 characters."),
        ("name-invalid-uppercase", "Alice".to_owned(), "An uppercase letter."),
        ("name-invalid-space", "al ice".to_owned(), "A space."),
        ("name-invalid-dot", "a.b".to_owned(), "A dot (allowed in kinds, not in names)."),
        ("name-invalid-non-ascii", "\u{e9}mile".to_owned(), "A non-ASCII letter."),
    ] {
        g.push(
            Case::invalid(id, comment, &["ACCT-9"], &["NameGrammar"], kith_proto::ErrorCode::InvalidRequest)
                .with("name", name.clone())
                .with("frame", frame(&name)),
        );
    }
    g
}

/// The file.
pub fn file() -> Value {
    vector_file(
        "Kith invite and publish allowances, account names",
        "Creating an account charges the inviter's invite allowance 1 + the child's invite allowance; a child's publish allowance is bounded by the inviter's (spec chapter 07 §5).",
        vec![invite_group(), sequence_group(), publish_group(), name_group()],
    )
}
