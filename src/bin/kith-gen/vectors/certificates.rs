//! `vectors/certificates.json`: decoding and verifying certificates (chapter 04).

use kith_proto::cert::Certificate;
use kith_proto::signing::Context;
use kith_proto::ErrorCode::{BadCertificate, CertExpired};
use kith_proto::Signature;
use serde_json::{json, Value};

use crate::common::{add_l_to_s, file as vector_file, hex, key, Case, Group};

/// The verifier's clock in every case, in ms since the epoch.
pub const NOW: u64 = 1_767_225_600_000;
/// The expiry of the good certificate: 30 days after NOW.
pub const EXPIRES: u64 = NOW + 30 * 86_400_000;

fn text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn group() -> Group {
    let user = key("user");
    let peer = key("peer");
    let mallory = key("mallory");
    let other_peer = key("peer-other");
    let mut g = Group::new(
        "CertificateVerify",
        "Decode `certificate` (JSON text) and verify it for the peer key `presented_peer` at clock `now` (ms). Every decoding or verification defect is bad_certificate (CERT-1 to CERT-5); expiry is checked last (CERT-6).",
    )
    .with("user_seed_label", "user")
    .with("peer_seed_label", "peer")
    .with("now", NOW);
    let good = Certificate::issue(&user, peer.public(), EXPIRES);
    let good_json = serde_json::to_value(&good).unwrap_or_default();
    let case = |c: Case, cert: String, presented: &str| {
        c.with("certificate", cert).with("presented_peer", presented.to_owned())
    };
    let p = peer.public().to_string();
    g.push(
        case(
            Case::valid(
                "cert-valid",
                "A certificate by `user` for `peer`, expiring 30 days after now.",
                &["CERT-4", "CERT-7", "SIGN-10"],
            ),
            text(&good_json),
            &p,
        )
        .with("signing_bytes_hex", hex(&good.signing_bytes())),
    );
    let edge = Certificate::issue(&user, peer.public(), NOW + 1);
    g.push(case(
        Case::valid("cert-valid-expires-now-plus-1", "expires = now + 1 ms is still valid.", &["CERT-6"]),
        text(&serde_json::to_value(&edge).unwrap_or_default()),
        &p,
    ));
    let at_now = Certificate::issue(&user, peer.public(), NOW);
    g.push(case(
        Case::invalid(
            "cert-invalid-expires-now",
            "expires = now: expired (expires <= now).",
            &["CERT-6"],
            &["Expired"],
            CertExpired,
        ),
        text(&serde_json::to_value(&at_now).unwrap_or_default()),
        &p,
    ));
    let past = Certificate::issue(&user, peer.public(), NOW - 86_400_000);
    g.push(case(
        Case::invalid(
            "cert-invalid-expired-yesterday",
            "expires a day before now.",
            &["CERT-6"],
            &["Expired"],
            CertExpired,
        ),
        text(&serde_json::to_value(&past).unwrap_or_default()),
        &p,
    ));
    let mut forged = Certificate::issue(&mallory, peer.public(), EXPIRES);
    forged.user = user.public();
    g.push(case(
        Case::invalid(
            "cert-invalid-wrong-signer",
            "Signed by `mallory` but naming `user`.",
            &["CERT-4"],
            &["WrongSigner"],
            BadCertificate,
        ),
        text(&serde_json::to_value(&forged).unwrap_or_default()),
        &p,
    ));
    let mut wrong_ctx = good.clone();
    let mut unsigned = good_json.clone();
    if let Value::Object(m) = &mut unsigned {
        m.remove("sig");
    }
    let canon = kith_proto::canonical::CanonicalValue::from_json(&unsigned)
        .unwrap_or(kith_proto::canonical::CanonicalValue::Null);
    wrong_ctx.sig = user.sign(Context::Entry, &canon);
    g.push(case(
        Case::invalid(
            "cert-invalid-entry-context",
            "The certificate's object signed by `user` under kith/1/entry instead of kith/1/cert.",
            &["CERT-4", "SIGN-9"],
            &["WrongContext"],
            BadCertificate,
        ),
        text(&serde_json::to_value(&wrong_ctx).unwrap_or_default()),
        &p,
    ));
    g.push(case(
        Case::invalid(
            "cert-invalid-other-peer",
            "A valid certificate for `peer`, presented by `peer-other`.",
            &["CERT-5"],
            &["WrongPeer"],
            BadCertificate,
        ),
        text(&good_json),
        &other_peer.public().to_string(),
    ));
    let mut tampered = good_json.clone();
    tampered["expires"] = json!(EXPIRES + 1);
    g.push(case(
        Case::invalid(
            "cert-invalid-tampered-expires",
            "expires changed after signing.",
            &["CERT-4"],
            &["ModifiedContent"],
            BadCertificate,
        ),
        text(&tampered),
        &p,
    ));
    let mut malleable = good.clone();
    malleable.sig = Signature::from_bytes(add_l_to_s(good.sig.as_bytes()));
    g.push(case(
        Case::invalid(
            "cert-invalid-s-plus-l",
            "S + L in the signature.",
            &["CERT-4", "SIGN-14"],
            &["NonCanonicalS"],
            BadCertificate,
        ),
        text(&serde_json::to_value(&malleable).unwrap_or_default()),
        &p,
    ));
    g.push(case(
        Case::invalid(
            "cert-invalid-expired-and-forged",
            "Expired and signed by `mallory`: CERT-6 applies only after CERT-1 to CERT-5 pass, so bad_certificate.",
            &["CERT-4", "CERT-6"],
            &["WrongSigner"],
            BadCertificate,
        ),
        {
            let mut f = Certificate::issue(&mallory, peer.public(), NOW);
            f.user = user.public();
            text(&serde_json::to_value(&f).unwrap_or_default())
        },
        &p,
    ));
    g.push(case(
        Case::invalid(
            "cert-invalid-expired-other-peer",
            "Expired and presented by another peer: bad_certificate (CERT-5 before CERT-6).",
            &["CERT-5", "CERT-6"],
            &["WrongPeer"],
            BadCertificate,
        ),
        text(&serde_json::to_value(&at_now).unwrap_or_default()),
        &other_peer.public().to_string(),
    ));
    for (id, comment, reqs, flag, mutate) in [
        (
            "cert-invalid-missing-sig",
            "No `sig` member.",
            &["CERT-1"][..],
            "MissingField",
            Box::new(|v: &mut Value| {
                v.as_object_mut().map(|m| m.remove("sig"));
            }) as Box<dyn Fn(&mut Value)>,
        ),
        (
            "cert-invalid-missing-expires",
            "No `expires` member.",
            &["CERT-1"][..],
            "MissingField",
            Box::new(|v: &mut Value| {
                v.as_object_mut().map(|m| m.remove("expires"));
            }),
        ),
        (
            "cert-invalid-extra-member",
            "An extra member `note`.",
            &["CERT-1"][..],
            "ExtraField",
            Box::new(|v: &mut Value| {
                v["note"] = json!("hi");
            }),
        ),
        (
            "cert-invalid-expires-string",
            "expires as a string.",
            &["CERT-2"][..],
            "WrongType",
            Box::new(|v: &mut Value| {
                v["expires"] = json!(EXPIRES.to_string());
            }),
        ),
        (
            "cert-invalid-expires-negative",
            "A negative expires.",
            &["CERT-2"][..],
            "WrongType",
            Box::new(|v: &mut Value| {
                v["expires"] = json!(-1);
            }),
        ),
        (
            "cert-invalid-user-uppercase",
            "user in uppercase hex: bad_certificate, not bad_encoding.",
            &["CERT-3", "ENC-11"][..],
            "NonLowercaseHex",
            Box::new(|v: &mut Value| {
                let u = v["user"].as_str().unwrap_or_default().to_uppercase();
                v["user"] = json!(u);
            }),
        ),
        (
            "cert-invalid-peer-small-order",
            "peer is the identity point: bad_certificate, not weak_key.",
            &["CERT-3", "ENC-14"][..],
            "SmallOrderKey",
            Box::new(|v: &mut Value| {
                v["peer"] = json!(format!("01{}", "00".repeat(31)));
            }),
        ),
        (
            "cert-invalid-sig-short",
            "sig of 126 hex characters.",
            &["CERT-3", "ENC-12"][..],
            "WrongLength",
            Box::new(|v: &mut Value| {
                let s = v["sig"].as_str().unwrap_or_default()[..126].to_owned();
                v["sig"] = json!(s);
            }),
        ),
    ] {
        let mut v = good_json.clone();
        mutate(&mut v);
        g.push(case(Case::invalid(id, comment, reqs, &[flag], BadCertificate), text(&v), &p));
    }
    g
}

/// The file.
pub fn file() -> Value {
    vector_file(
        "Kith certificates",
        "A certificate is a user's signed blessing of a peer key until `expires` (spec chapter 04). Keys are derived from seeds: seed(label) = SHA-256(\"kith/1 vectors seed \" || label).",
        vec![group()],
    )
}
