//! `vectors/encodings.json`: the text forms of keys, ids, X25519 keys and signatures (chapter 01).

use kith_proto::ErrorCode::{BadEncoding, WeakKey};
use serde_json::Value;

use crate::common::{file as vector_file, key, Case, Group};

const RFC8032_KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

/// The eight canonical encodings of small-order points (chapter 01 §5), with their order.
pub const SMALL_ORDER: [(&str, u32); 8] = [
    ("0100000000000000000000000000000000000000000000000000000000000000", 1),
    ("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", 2),
    ("0000000000000000000000000000000000000000000000000000000000000000", 4),
    ("0000000000000000000000000000000000000000000000000000000000000080", 4),
    ("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", 8),
    ("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", 8),
    ("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", 8),
    ("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", 8),
];

/// y = p + k as a key's 32 little-endian bytes (k <= 18, so only the first byte changes).
fn y_p_plus(k: u8) -> String {
    format!("{:02x}{}7f", 0xed + k, "ff".repeat(30))
}

fn key_group() -> Group {
    let mut g = Group::new(
        "KeyDecode",
        "Decode `text` as a KEY (Ed25519 public key): lowercase hex (ENC-11), 64 characters (ENC-12), a canonical point encoding (ENC-13), not of small order (ENC-14), checked in that order.",
    );
    g.push(
        Case::valid("key-valid-rfc8032-test1", "RFC 8032 §7.1 test 1 public key.", &["ENC-10", "ENC-13"])
            .with("text", RFC8032_KEY),
    );
    let user = key("user").public().to_string();
    g.push(
        Case::valid(
            "key-valid-seed-user",
            "Public key of seed `user` (see README: seed = SHA-256(\"kith/1 vectors seed user\")).",
            &["ENC-10"],
        )
        .with("text", user.clone())
        .with("seed_label", "user"),
    );
    let bad_hex: [(&str, &str, String); 6] = [
        ("key-invalid-uppercase", "The RFC 8032 key in uppercase.", RFC8032_KEY.to_uppercase()),
        ("key-invalid-mixed-case", "One uppercase letter.", format!("D{}", &RFC8032_KEY[1..])),
        (
            "key-invalid-0x-prefix",
            "A 0x prefix replacing the first byte keeps the length at 64.",
            format!("0x{}", &RFC8032_KEY[2..]),
        ),
        ("key-invalid-leading-space", "A space replacing the first character.", format!(" {}", &RFC8032_KEY[1..])),
        ("key-invalid-non-hex-letter", "The letter g.", format!("g{}", &RFC8032_KEY[1..])),
        (
            "key-invalid-trailing-newline",
            "A newline replacing the last character.",
            format!("{}\n", &RFC8032_KEY[..63]),
        ),
    ];
    for (id, comment, text) in bad_hex {
        g.push(Case::invalid(id, comment, &["ENC-11"], &["NonLowercaseHex"], BadEncoding).with("text", text));
    }
    let bad_len: [(&str, &str, String); 5] = [
        ("key-invalid-empty", "The empty string.", String::new()),
        ("key-invalid-62-chars", "One byte short.", RFC8032_KEY[..62].to_owned()),
        ("key-invalid-63-chars", "An odd number of characters.", RFC8032_KEY[..63].to_owned()),
        ("key-invalid-66-chars", "One byte too many.", format!("{RFC8032_KEY}00")),
        ("key-invalid-128-chars", "Twice the key.", format!("{RFC8032_KEY}{RFC8032_KEY}")),
    ];
    for (id, comment, text) in bad_len {
        g.push(Case::invalid(id, comment, &["ENC-12"], &["WrongLength"], BadEncoding).with("text", text));
    }
    g.push(
        Case::invalid(
            "key-invalid-not-a-point",
            "y = 2: no x satisfies the curve equation.",
            &["ENC-13"],
            &["NotAPoint"],
            BadEncoding,
        )
        .with("text", format!("02{}", "00".repeat(31))),
    );
    g.push(
        Case::invalid("key-invalid-y-p-plus-3", "y = p + 3: the non-canonical spelling of a point of large order. ed25519-dalek's VerifyingKey::from_bytes accepts it (it reduces y mod p); a decoder must re-encode and compare.", &["ENC-13"], &["NonCanonicalPoint"], BadEncoding)
            .with("text", y_p_plus(3)),
    );
    g.push(
        Case::invalid("key-invalid-y-p", "y = p, the non-canonical spelling of y = 0 (a point of order 4): ENC-13 applies before ENC-14, so bad_encoding, not weak_key.", &["ENC-13"], &["NonCanonicalPoint"], BadEncoding)
            .with("text", y_p_plus(0)),
    );
    g.push(
        Case::invalid(
            "key-invalid-y-p-plus-1",
            "y = p + 1, the non-canonical spelling of the identity: bad_encoding (ENC-13 before ENC-14).",
            &["ENC-13"],
            &["NonCanonicalPoint"],
            BadEncoding,
        )
        .with("text", y_p_plus(1)),
    );
    g.push(
        Case::invalid(
            "key-invalid-identity-sign-bit",
            "The identity (x = 0) with the sign bit set: RFC 8032 §5.1.3 step 4 refuses x = 0 with sign 1.",
            &["ENC-13"],
            &["NonCanonicalPoint"],
            BadEncoding,
        )
        .with("text", format!("01{}80", "00".repeat(30))),
    );
    g.push(
        Case::invalid(
            "key-invalid-order2-sign-bit",
            "The order-2 point (x = 0, y = -1) with the sign bit set.",
            &["ENC-13"],
            &["NonCanonicalPoint"],
            BadEncoding,
        )
        .with("text", format!("ec{}ff", "ff".repeat(30))),
    );
    for (i, (text, order)) in SMALL_ORDER.iter().enumerate() {
        g.push(
            Case::invalid(
                &format!("key-invalid-small-order-{i}"),
                &format!("Canonical encoding of a point of order {order} (chapter 01 §5 table, row {}).", i + 1),
                &["ENC-14"],
                &["SmallOrderKey"],
                WeakKey,
            )
            .with("text", *text),
        );
    }
    g
}

fn id_group() -> Group {
    let mut g = Group::new("IdDecode", "Decode `text` as an ID (entry id): any 64 lowercase hex characters (ENC-15).");
    g.push(
        Case::valid("id-valid-zero", "All zero bytes are a well-formed id.", &["ENC-15"]).with("text", "00".repeat(32)),
    );
    g.push(Case::valid("id-valid-ff", "All 0xff bytes.", &["ENC-15"]).with("text", "ff".repeat(32)));
    g.push(
        Case::valid("id-valid-mixed", "SHA-256 of the empty string.", &["ENC-10", "ENC-15"])
            .with("text", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    );
    g.push(
        Case::invalid("id-invalid-uppercase", "Uppercase.", &["ENC-11"], &["NonLowercaseHex"], BadEncoding)
            .with("text", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"),
    );
    g.push(
        Case::invalid("id-invalid-short", "31 bytes.", &["ENC-12"], &["WrongLength"], BadEncoding)
            .with("text", "00".repeat(31)),
    );
    g.push(
        Case::invalid("id-invalid-long", "33 bytes.", &["ENC-12"], &["WrongLength"], BadEncoding)
            .with("text", "00".repeat(33)),
    );
    g.push(
        Case::invalid(
            "id-invalid-multibyte",
            "64 bytes of text but 32 characters (é is two UTF-8 bytes).",
            &["ENC-11", "ENC-12"],
            &["NonLowercaseHex"],
            BadEncoding,
        )
        .with("text", "é".repeat(32)),
    );
    g
}

fn xkey_group() -> Group {
    let mut g = Group::new("XKeyDecode", "Decode `text` as an XKEY (X25519 public key): any 64 lowercase hex characters (ENC-15); degenerate keys are caught by the handshake's shared-secret check, not here.");
    g.push(
        Case::valid(
            "xkey-valid-zero",
            "The all-zero u-coordinate is a well-formed XKEY (the handshake refuses it later).",
            &["ENC-15"],
        )
        .with("text", "00".repeat(32)),
    );
    g.push(
        Case::valid("xkey-valid-basepoint", "u = 9, the X25519 base point.", &["ENC-15"])
            .with("text", format!("09{}", "00".repeat(31))),
    );
    g.push(
        Case::invalid("xkey-invalid-uppercase", "Uppercase.", &["ENC-11"], &["NonLowercaseHex"], BadEncoding)
            .with("text", format!("0A{}", "00".repeat(31))),
    );
    g.push(
        Case::invalid("xkey-invalid-short", "62 characters.", &["ENC-12"], &["WrongLength"], BadEncoding)
            .with("text", "00".repeat(31)),
    );
    g
}

fn sig_group() -> Group {
    let mut g = Group::new("SigDecode", "Decode `text` as a SIG: 128 lowercase hex characters (ENC-12, ENC-15); whether it verifies is chapter 02's question.");
    let sig = key("user").sign_raw(b"kith");
    g.push(
        Case::valid("sig-valid", "A signature by seed `user` over the ASCII bytes `kith`.", &["ENC-10", "ENC-15"])
            .with("text", sig.to_string()),
    );
    g.push(
        Case::valid("sig-valid-zero", "All zero bytes decode (and never verify).", &["ENC-15"])
            .with("text", "00".repeat(64)),
    );
    g.push(
        Case::invalid("sig-invalid-uppercase", "Uppercase.", &["ENC-11"], &["NonLowercaseHex"], BadEncoding)
            .with("text", sig.to_string().to_uppercase()),
    );
    g.push(
        Case::invalid(
            "sig-invalid-64-chars",
            "The length of a key, not a signature.",
            &["ENC-12"],
            &["WrongLength"],
            BadEncoding,
        )
        .with("text", "00".repeat(32)),
    );
    g.push(
        Case::invalid("sig-invalid-130-chars", "One byte too many.", &["ENC-12"], &["WrongLength"], BadEncoding)
            .with("text", format!("{sig}00")),
    );
    g
}

/// The file.
pub fn file() -> Value {
    vector_file(
        "Kith text encodings",
        "The one text form of KEY, ID, XKEY and SIG values (spec chapter 01). Each case decodes `text` as the group's type; valid cases must decode and re-encode to the same text.",
        vec![key_group(), id_group(), xkey_group(), sig_group()],
    )
}
