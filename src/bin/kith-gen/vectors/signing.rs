//! `vectors/signing.json`: canonical() (JCS without floats), signing bytes for every context,
//! and strict signature verification (chapter 02).

use kith_proto::account::KeyReplacement;
use kith_proto::canonical::CanonicalValue;
use kith_proto::cert::Certificate;
use kith_proto::entry::EntryDraft;
use kith_proto::identity::IdentityNote;
use kith_proto::signing::{prefixed, Context};
use kith_proto::ErrorCode::{BadSignature, MalformedFrame, WeakKey};
use kith_proto::Signature;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{add_l_to_s, file as vector_file, hex, key, Case, Group};

fn jcs_case(tc_id: &str, comment: &str, reqs: &[&str], input: &str) -> Case {
    let value = CanonicalValue::parse(input).unwrap_or_else(|e| panic!("{tc_id}: {e}"));
    let bytes = value.to_jcs();
    Case::valid(tc_id, comment, reqs)
        .with("input", input)
        .with("canonical", String::from_utf8_lossy(&bytes).into_owned())
        .with("canonical_hex", hex(&bytes))
}

/// (tc_id, comment, requirements, flags, JSON text).
type BadInput = (&'static str, &'static str, &'static [&'static str], &'static [&'static str], &'static str);

fn jcs_group() -> Group {
    let mut g = Group::new(
        "Canonical",
        "Parse `input` (JSON text) as a Kith value and write canonical(value): RFC 8785 JCS over values without floats. Valid cases give the exact bytes (`canonical_hex`; `canonical` is the same as text). Invalid inputs have no Kith value; in a frame they are refused with malformed_frame.",
    );
    g.push(jcs_case(
        "jcs-rfc8785-3.2.2-without-floats",
        "RFC 8785 §3.2.2's example with the float members removed (Kith has no floats): escapes, literals, key order.",
        &["SIGN-1", "SIGN-2", "SIGN-3", "SIGN-4", "SIGN-5", "SIGN-7"],
        "{\n  \"numbers\": [333333333, 4],\n  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n  \"literals\": [null, true, false]\n}",
    ));
    g.push(jcs_case(
        "jcs-rfc8785-3.2.3-sorting",
        "RFC 8785 §3.2.3's sorting example: keys ordered by UTF-16 code units, so U+1F600 (a surrogate pair, 0xd83d) sorts before U+FB33.",
        &["SIGN-5", "SIGN-6"],
        "{\n  \"\\u20ac\": \"Euro Sign\",\n  \"\\r\": \"Carriage Return\",\n  \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\",\n  \"1\": \"One\",\n  \"\\ud83d\\ude00\": \"Emoji: Grinning Face\",\n  \"\\u0080\": \"Control\",\n  \"\\u00f6\": \"Latin Small Letter O With Diaeresis\"\n}",
    ));
    g.push(jcs_case(
        "jcs-integers",
        "Shortest decimal integers, zero, negatives and both ends of the range.",
        &["SIGN-2"],
        "[0, -1, 10, 9007199254740991, -9007199254740991, 7]",
    ));
    g.push(jcs_case("jcs-control-escapes", "Controls with short escapes use them; others are \\u00xx in lowercase hex; U+007F and non-ASCII stay literal; / is not escaped.", &["SIGN-3"], "\"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f\\u007f/\\u00e9\\ud834\\udd1e\""));
    g.push(jcs_case(
        "jcs-nested-empty",
        "Empty object and array, nesting, no whitespace.",
        &["SIGN-4", "SIGN-5", "SIGN-7"],
        "{ \"b\" : [ { } , [ ] ] , \"a\" : { \"d\" : null , \"c\" : true } }",
    ));
    g.push(jcs_case(
        "jcs-key-prefix",
        "A proper prefix sorts first; byte order otherwise (ASCII).",
        &["SIGN-6"],
        r#"{"ab":1,"a":2,"b":3,"A":4,"":5}"#,
    ));
    g.push(jcs_case(
        "jcs-equal-strings-after-escapes",
        "Escapes denote scalar values: \\u0061 is a.",
        &["SIGN-3"],
        r#"{"x":"\u0061\u00e9"}"#,
    ));
    let bad: [BadInput; 8] = [
        ("jcs-invalid-float-fraction", "1.0 is a float even though whole.", &["ENC-4"], &["Float"], "[1.0]"),
        ("jcs-invalid-float-exponent", "1e3 is a float.", &["ENC-4"], &["Float"], "{\"a\":1e3}"),
        (
            "jcs-invalid-rfc8785-float",
            "RFC 8785's example keeps 2e0; Kith refuses it.",
            &["ENC-4"],
            &["Float"],
            "{\"numbers\":[333333333,4,2e0]}",
        ),
        ("jcs-invalid-negative-zero", "-0 has no canonical form.", &["ENC-5"], &["NegativeZero"], "[-0]"),
        (
            "jcs-invalid-above-range",
            "2^53 is outside the integer range.",
            &["ENC-6"],
            &["IntegerRange"],
            "[9007199254740992]",
        ),
        (
            "jcs-invalid-below-range",
            "-2^53 is outside the integer range.",
            &["ENC-6"],
            &["IntegerRange"],
            "[-9007199254740992]",
        ),
        (
            "jcs-invalid-duplicate-key-escaped",
            "The same key twice, once escaped.",
            &["ENC-3"],
            &["DuplicateKey"],
            r#"{"a":1,"\u0061":2}"#,
        ),
        (
            "jcs-invalid-lone-surrogate",
            "A high surrogate without its low half.",
            &["ENC-7"],
            &["LoneSurrogate"],
            r#"["\ud834"]"#,
        ),
    ];
    for (id, comment, reqs, flags, input) in bad {
        g.push(Case::invalid(id, comment, reqs, flags, MalformedFrame).with("input", input));
    }
    g
}

fn context_name(c: Context) -> &'static str {
    c.as_str()
}

fn signing_group() -> Group {
    let mut g = Group::new(
        "SigningBytes",
        "signing_bytes(ctx, obj) = ASCII ctx || 0x00 || canonical(obj without its signature members). `object` is the signed object as JSON; `signing_bytes_hex` is what its signature covers; `signer_seed_label` names the key that signed it, and the signature must verify over exactly these bytes.",
    );
    let user = key("user");
    let peer = key("peer");
    let node = key("node");
    let entry = EntryDraft::first(1_700_000_000_000).text("hello, kith").sign(&user);
    g.push(
        Case::valid(
            "signing-entry",
            "An entry: context kith/1/entry; the unsigned object is the entry without `sig`.",
            &["SIGN-8", "SIGN-10", "SIGN-12", "ENTRY-20"],
        )
        .with("context", context_name(Context::Entry))
        .with("object", serde_json::to_value(&entry).unwrap_or_default())
        .with("signer_seed_label", "user")
        .with("signing_bytes_hex", hex(&entry.signing_bytes())),
    );
    let cert = Certificate::issue(&user, peer.public(), 1_800_000_000_000);
    g.push(
        Case::valid(
            "signing-certificate",
            "A certificate: context kith/1/cert, object without `sig`.",
            &["SIGN-8", "SIGN-10"],
        )
        .with("context", context_name(Context::Certificate))
        .with("object", serde_json::to_value(&cert).unwrap_or_default())
        .with("signer_seed_label", "user")
        .with("signing_bytes_hex", hex(&cert.signing_bytes())),
    );
    let new = key("user-new");
    let repl = KeyReplacement::sign(node.public(), &user, &new, 1_800_000_000_000);
    g.push(
        Case::valid("signing-key-replacement", "A key replacement: context kith/1/replace-key, object without `sig_old` and `sig_new`; both keys sign the same bytes (`signer_seed_label` is the old key, `second_signer_seed_label` the new).", &["SIGN-8", "SIGN-10", "ACCT-21"])
            .with("context", context_name(Context::ReplaceKey))
            .with("object", serde_json::to_value(&repl).unwrap_or_default())
            .with("signer_seed_label", "user")
            .with("second_signer_seed_label", "user-new")
            .with("signing_bytes_hex", hex(&repl.signing_bytes())),
    );
    let note =
        IdentityNote::sign(&user, key("friend").public(), "Friend", vec![], "met at the \"café\"", 1_700_000_000_000);
    g.push(
        Case::valid("signing-identity-note", "An identity note: context kith/1/identity-note, object without `sig`; a quote and a non-ASCII character in a string.", &["SIGN-8", "SIGN-10", "SIGN-3"])
            .with("context", context_name(Context::IdentityNote))
            .with("object", serde_json::to_value(&note).unwrap_or_default())
            .with("signer_seed_label", "user")
            .with("signing_bytes_hex", hex(&note.signing_bytes())),
    );
    for (ctx, label) in [(Context::HandshakeServer, "node"), (Context::HandshakeClient, "peer")] {
        let th: [u8; 32] = Sha256::digest(b"example transcript").into();
        let bytes = prefixed(ctx, &th);
        let sig = key(label).sign_raw(&bytes);
        g.push(
            Case::valid(
                &format!("signing-{}", ctx.as_str().trim_start_matches("kith/1/")),
                "Handshake bytes: ctx || 0x00 || the 32-byte transcript hash itself (not its hex).",
                &["SIGN-11"],
            )
            .with("context", context_name(ctx))
            .with("transcript_hash_hex", hex(&th))
            .with("signer_seed_label", label)
            .with("signature", sig.to_string())
            .with("signing_bytes_hex", hex(&bytes)),
        );
    }
    g
}

fn verify_group() -> Group {
    let mut g = Group::new(
        "Verify",
        "Verify `sig` by `key` over the bytes `message_hex`, strictly and one signature at a time (chapter 02 §5). The key is decoded first (chapter 01): a weak key is refused as weak_key before any signature check; any failing signature is bad_signature.",
    );
    let user = key("user");
    let msg = b"kith/1/entry\x00{}".to_vec();
    let sig = user.sign_raw(&msg);
    let base = |c: Case| c.with("key", user.public().to_string()).with("message_hex", hex(&msg));
    g.push(
        base(Case::valid("verify-valid", "A signature by seed `user`.", &["SIGN-12", "SIGN-18"]))
            .with("sig", sig.to_string()),
    );
    let mut flipped = *sig.as_bytes();
    flipped[10] ^= 1;
    g.push(
        base(Case::invalid(
            "verify-invalid-flipped-r",
            "One bit of R flipped.",
            &["SIGN-18", "SIGN-20"],
            &["ModifiedSignature"],
            BadSignature,
        ))
        .with("sig", Signature::from_bytes(flipped).to_string()),
    );
    let mut flipped = *sig.as_bytes();
    flipped[40] ^= 1;
    g.push(
        base(Case::invalid(
            "verify-invalid-flipped-s",
            "One bit of S flipped.",
            &["SIGN-18", "SIGN-20"],
            &["ModifiedSignature"],
            BadSignature,
        ))
        .with("sig", Signature::from_bytes(flipped).to_string()),
    );
    g.push(
        base(Case::invalid("verify-invalid-s-plus-l", "S + L: the same scalar mod L. verify (non-strict in older libraries) may accept it; strict verification refuses S >= L.", &["SIGN-14", "SIGN-20"], &["NonCanonicalS"], BadSignature))
            .with("sig", Signature::from_bytes(add_l_to_s(sig.as_bytes())).to_string()),
    );
    let mut high = *sig.as_bytes();
    high[63] |= 0xe0;
    g.push(
        base(Case::invalid(
            "verify-invalid-s-high-bits",
            "S with its top three bits set (S >= 2^253 > L).",
            &["SIGN-14"],
            &["NonCanonicalS"],
            BadSignature,
        ))
        .with("sig", Signature::from_bytes(high).to_string()),
    );
    let mut r_identity = [0u8; 64];
    r_identity[0] = 1;
    g.push(
        base(Case::invalid(
            "verify-invalid-r-identity",
            "R is the identity (small order), S = 0, valid key.",
            &["SIGN-17", "SIGN-20"],
            &["SmallOrderR"],
            BadSignature,
        ))
        .with("sig", Signature::from_bytes(r_identity).to_string()),
    );
    let mut r_not_point = *sig.as_bytes();
    r_not_point[..32].copy_from_slice(&[2u8].iter().chain([0u8; 31].iter()).copied().collect::<Vec<u8>>());
    g.push(
        base(Case::invalid(
            "verify-invalid-r-not-a-point",
            "R's bytes are y = 2, not a point.",
            &["SIGN-16", "SIGN-20"],
            &["ModifiedSignature"],
            BadSignature,
        ))
        .with("sig", Signature::from_bytes(r_not_point).to_string()),
    );
    let other = key("mallory").sign_raw(&msg);
    g.push(
        base(Case::invalid(
            "verify-invalid-wrong-signer",
            "Signed by seed `mallory`, verified as `user`.",
            &["SIGN-18", "SIGN-20"],
            &["WrongSigner"],
            BadSignature,
        ))
        .with("sig", other.to_string()),
    );
    let wrong_ctx = user.sign_raw(b"kith/1/cert\x00{}");
    g.push(
        base(Case::invalid(
            "verify-invalid-other-context",
            "The same object signed under kith/1/cert: the verifier must use only the entry context.",
            &["SIGN-9", "SIGN-20"],
            &["WrongContext"],
            BadSignature,
        ))
        .with("sig", wrong_ctx.to_string()),
    );
    let mut identity_key = [0u8; 32];
    identity_key[0] = 1;
    g.push(
        Case::invalid(
            "verify-invalid-identity-key-batch-forgery",
            "Key = identity, R = identity, S = 0: [S]B = R + [k]A holds for every message, and dalek's verify_batch (cofactored, randomised) accepts it. Strict single verification refuses it, and the key itself is weak, so the verdict is weak_key before any signature check. This is why batch verification is forbidden (SIGN-19): its verdicts differ from strict ones.",
            &["SIGN-15", "SIGN-19", "ENC-14"],
            &["BatchVerification", "SmallOrderKey"],
            WeakKey,
        )
        .with("key", hex(&identity_key))
        .with("message_hex", hex(&msg))
        .with("sig", Signature::from_bytes(r_identity).to_string()),
    );
    let order2 = "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f";
    g.push(
        Case::invalid(
            "verify-invalid-order2-key",
            "A key of order 2 with R = identity, S = 0.",
            &["SIGN-15", "ENC-14"],
            &["SmallOrderKey", "SmallOrderR"],
            WeakKey,
        )
        .with("key", order2)
        .with("message_hex", hex(b"any message"))
        .with("sig", Signature::from_bytes(r_identity).to_string()),
    );
    g
}

/// The ten cases of "Taming the many EdDSAs" (Chalkias, Garillot, Nikolaenko, 2020; the
/// ed25519-speccheck cases.json), each with the verdict Kith's rules give: small-order keys are
/// weak, R must be canonical and not of small order, S < L, the equation is cofactorless.
/// (case, public key, message, signature, verdict, requirements, flags, comment)
type SpeccheckCase = (
    u32,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static str,
);

const SPECCHECK: &[SpeccheckCase] = &[
        (0, "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", "8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000", "weak_key", &["SIGN-15", "ENC-14", "SIGN-19"], &["SmallOrderKey", "SmallOrderR"], "S = 0, A and R of small order: both the cofactored and the cofactorless equation hold; the key is weak."),
        (1, "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04", "weak_key", &["SIGN-15", "ENC-14"], &["SmallOrderKey"], "0 < S < L, A of small order, R of mixed order: both equations hold; the key is weak."),
        (2, "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43", "aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e", "bad_signature", &["SIGN-17", "SIGN-20"], &["SmallOrderR"], "0 < S < L, A of mixed order, R of small order: both equations hold; strict verification refuses the small-order R."),
        (3, "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d", "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79", "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009", "valid", &["SIGN-18"], &[], "0 < S < L, A and R of mixed order, and the cofactorless equation holds: valid (a mixed-order key is not of small order, ENC-14)."),
        (4, "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d", "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c", "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09", "bad_signature", &["SIGN-18", "SIGN-19", "SIGN-20"], &["BatchVerification"], "0 < S < L, A and R of mixed order: only the cofactored equation holds, so cofactorless verification refuses it while cofactored (and batch) verification accepts it."),
        (5, "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d", "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c", "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405", "bad_signature", &["SIGN-18", "SIGN-20"], &["BatchVerification"], "0 < S < L, A of mixed order, R of order L: only the cofactored equation holds."),
        (6, "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623", "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40", "e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514", "bad_signature", &["SIGN-14", "SIGN-20"], &["NonCanonicalS"], "S >= L (S not reduced), otherwise a valid signature: refused by the S < L check."),
        (7, "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623", "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40", "8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22", "bad_signature", &["SIGN-14", "SIGN-20"], &["NonCanonicalS"], "S much larger than L: refused by the S < L check."),
        (8, "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43", "fdaebc429f4a735932a160da1301080c13280eea8bc280d1b392c6b9e6ba3a5a", "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f454d370c8d9fc323a41450f8d513eafeb5b0697390c1e505a0d4ddc71f566607", "bad_signature", &["SIGN-16", "SIGN-20"], &["NonCanonicalPoint"], "R is y = p, a non-canonical encoding (of a small-order point); the equation holds if the verifier reduces R before hashing."),
        (9, "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43", "84b698d39be126ff55fe45079e6c8bf64a0d7db6994560b4e96b7021eb39c1a1", "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f084d5b99c2a9463d9c8bd5026916996984eeec87ddf1d3be329006ace1b37b09", "bad_signature", &["SIGN-16", "SIGN-20"], &["NonCanonicalPoint"], "R is y = p, a non-canonical encoding; the equation holds if the verifier hashes the reduced R."),
];

fn speccheck_group() -> Group {
    let mut g = Group::new(
        "Verify",
        "The edge cases of \"Taming the many EdDSAs\" (Chalkias, Garillot, Nikolaenko, 2020, ed25519-speccheck), judged by Kith's rules: decode the key (a small-order key is weak_key), then verify strictly (SIGN-14 to SIGN-18). Implementations that verify cofactored, in batches, or without the canonicity checks disagree on several of them.",
    );
    for (i, key, msg, sig, verdict, reqs, flags, comment) in SPECCHECK {
        let id = format!("verify-speccheck-{i}");
        let comment = format!("speccheck case {i}: {comment}");
        let case = match *verdict {
            "valid" => Case::valid(&id, &comment, reqs),
            "weak_key" => Case::invalid(&id, &comment, reqs, flags, kith_proto::ErrorCode::WeakKey),
            _ => Case::invalid(&id, &comment, reqs, flags, kith_proto::ErrorCode::BadSignature),
        };
        g.push(case.with("key", *key).with("message_hex", *msg).with("sig", *sig));
    }
    g
}

/// The file.
pub fn file() -> Value {
    vector_file(
        "Kith canonical form, signing bytes and signature verification",
        "canonical() is RFC 8785 over Kith values (no floats); signatures are pure Ed25519 over context || 0x00 || canonical(object without signatures), verified strictly one at a time (spec chapter 02). Keys are derived from seeds: seed(label) = SHA-256(\"kith/1 vectors seed \" || label).",
        vec![jcs_group(), signing_group(), verify_group(), speccheck_group()],
    )
}
