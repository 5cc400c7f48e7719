//! Shared pieces of the generator: fixed seeds, the test-case shape, the flag notes and the one
//! output format.

use kith_proto::encoding::encode_hex;
use kith_proto::{ErrorCode, SecretKey};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The schema version of every vector file (bumped when the file shape changes).
pub const SCHEMA_VERSION: &str = "1";

/// A fixed 32-byte seed: SHA-256 of `kith/1 vectors seed <label>`. The label is written next to
/// every key so another implementation can rebuild it.
pub fn seed(label: &str) -> [u8; 32] {
    Sha256::digest(format!("kith/1 vectors seed {label}").as_bytes()).into()
}

/// The Ed25519 key whose RFC 8032 seed is [`seed`]`(label)`.
pub fn key(label: &str) -> SecretKey {
    SecretKey::from_seed(seed(label))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    encode_hex(bytes)
}

/// The group order L of edwards25519, little-endian (RFC 8032 §5.1).
pub const L_LE: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// A signature with S replaced by S + L: the same value mod L, so a verifier that does not
/// insist on S < L accepts it ([SIGN-14] forbids that).
pub fn add_l_to_s(sig: &[u8; 64]) -> [u8; 64] {
    let mut out = *sig;
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(sig[32 + i]) + u16::from(L_LE[i]) + carry;
        out[32 + i] = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    out
}

/// One test case, Wycheproof-style.
pub struct Case {
    fields: Map<String, Value>,
}

impl Case {
    /// A case that must be accepted.
    pub fn valid(tc_id: &str, comment: &str, requirements: &[&str]) -> Self {
        Self::new(tc_id, comment, requirements, &[], "valid", None)
    }

    /// A case that must be refused with `error`.
    pub fn invalid(tc_id: &str, comment: &str, requirements: &[&str], flags: &[&str], error: ErrorCode) -> Self {
        Self::new(tc_id, comment, requirements, flags, "invalid", Some(error))
    }

    fn new(
        tc_id: &str,
        comment: &str,
        requirements: &[&str],
        flags: &[&str],
        result: &str,
        error: Option<ErrorCode>,
    ) -> Self {
        let mut fields = Map::new();
        fields.insert("tc_id".into(), json!(tc_id));
        fields.insert("comment".into(), json!(comment));
        fields.insert("requirements".into(), json!(requirements));
        fields.insert("flags".into(), json!(flags));
        fields.insert("result".into(), json!(result));
        fields.insert("error".into(), error.map_or(Value::Null, |e| json!(e.as_str())));
        Case { fields }
    }

    /// Adds an input or expected output.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }

    /// The case as JSON.
    pub fn into_value(self) -> Value {
        Value::Object(self.fields)
    }
}

/// A group of cases with shared inputs.
pub struct Group {
    fields: Map<String, Value>,
    tests: Vec<Value>,
}

impl Group {
    /// A group of type `ty` (what the cases test).
    pub fn new(ty: &str, comment: &str) -> Self {
        let mut fields = Map::new();
        fields.insert("type".into(), json!(ty));
        fields.insert("comment".into(), json!(comment));
        Group { fields, tests: Vec::new() }
    }

    /// Adds a shared input.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }

    /// Adds a case.
    pub fn push(&mut self, case: Case) {
        self.tests.push(case.into_value());
    }
}

/// Builds a vector file; every flag used must have a note (checked here, so a new flag without
/// its explanation fails the generator).
pub fn file(title: &str, description: &str, groups: Vec<Group>) -> Value {
    let mut used = std::collections::BTreeSet::new();
    let mut ids = std::collections::BTreeSet::new();
    let mut count = 0usize;
    let mut test_groups = Vec::new();
    for g in groups {
        for t in &g.tests {
            count += 1;
            let id = t["tc_id"].as_str().unwrap_or_default().to_owned();
            assert!(ids.insert(id.clone()), "duplicate tc_id {id}");
            for f in t["flags"].as_array().into_iter().flatten() {
                used.insert(f.as_str().unwrap_or_default().to_owned());
            }
        }
        let mut fields = g.fields;
        fields.insert("tests".into(), Value::Array(g.tests));
        test_groups.push(Value::Object(fields));
    }
    let mut notes = Map::new();
    for flag in used {
        let (bug_type, description, effect) = note(&flag).unwrap_or_else(|| panic!("flag {flag} has no note"));
        notes.insert(flag, json!({"bug_type": bug_type, "description": description, "effect": effect}));
    }
    json!({
        "title": title,
        "description": description,
        "schema_version": SCHEMA_VERSION,
        "generator": "cargo run -p kith-proto --features gen --bin kith-gen",
        "notes": notes,
        "number_of_tests": count,
        "test_groups": test_groups,
    })
}

/// The explanation of each flag: (bug type, what the case does, what an implementation with the
/// bug would get wrong).
fn note(flag: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match flag {
        "NonLowercaseHex" => ("NON_CANONICAL_ENCODING", "A hex field uses uppercase letters, a prefix, whitespace or another non-hex character.", "A lenient decoder accepts two spellings of one key or id, so byte comparisons, dedup and signatures over the text disagree between implementations."),
        "WrongLength" => ("NON_CANONICAL_ENCODING", "A hex field is shorter or longer than its type requires.", "A decoder that pads, truncates or reads a prefix accepts a value the author never wrote."),
        "NonCanonicalPoint" => ("NON_CANONICAL_ENCODING", "A public key's bytes decode to a point only after reducing y modulo p, or carry a sign bit set for x = 0.", "Libraries that reduce y (ed25519-dalek's VerifyingKey::from_bytes) give one point two spellings: two accounts, two feeds or two signatures for one key."),
        "NotAPoint" => ("INVALID_POINT", "A public key's 32 bytes are not on the curve.", "A decoder that skips the curve check accepts a key that can never verify, or crashes later."),
        "SmallOrderKey" => ("WEAK_KEY", "A public key of small order (one of the eight encodings of chapter 01 §5).", "With a small-order key, signatures with a small-order R verify for many messages under cofactored or lenient rules: anyone can forge entries for such an author."),
        "NonCanonicalS" => ("SIGNATURE_MALLEABILITY", "S + L replaces S: the same scalar modulo L.", "A verifier without the S < L check accepts a second valid signature for the same message, so the entry gets a second id (a fork without the author's key)."),
        "SmallOrderR" => ("SIGNATURE_MALLEABILITY", "R is a point of small order.", "Cofactored or batch verification accepts signatures that strict cofactorless verification refuses; implementations then disagree on validity."),
        "BatchVerification" => ("VERIFIER_DISAGREEMENT", "Identity key, R = identity, S = 0: the equation holds for every message under cofactored (batch) verification.", "A node that verifies in batches (dalek's verify_batch) accepts a universal forgery for the degenerate key; that is why batch verification is forbidden and the key is refused as weak."),
        "ModifiedSignature" => ("SIGNATURE_NOT_CHECKED", "One bit of the signature is flipped.", "A node that does not verify signatures stores forged entries."),
        "WrongSigner" => ("SIGNATURE_NOT_CHECKED", "Signed by a key other than the one the object names.", "A verifier that checks the signature against the wrong key accepts impersonation."),
        "WrongContext" => ("CROSS_PROTOCOL_SIGNATURE", "A valid signature over the same object but under another context string.", "A verifier that ignores the context lets a signature made for one kind of object pass as another (e.g. a certificate as an entry)."),
        "ModifiedContent" => ("SIGNATURE_NOT_CHECKED", "A signed field was changed after signing.", "A verifier that signs or hashes a different serialisation than canonical() misses tampering or rejects honest objects."),
        "Expired" => ("TIME_CHECK", "The certificate's expiry is at or before the verifier's clock.", "A verifier that compares with < instead of <= (or ignores expiry) accepts a certificate the user meant to end."),
        "WrongPeer" => ("BINDING", "The certificate blesses a different peer key than the one presented.", "A node that does not bind the certificate to the connecting peer lets anyone replay a user's certificate."),
        "MissingField" => ("SCHEMA", "A required member is absent.", "A decoder that defaults missing members signs or stores an object the author did not write."),
        "ExtraField" => ("SCHEMA", "A member that the object does not define.", "Extra members in signed objects change nothing in the signature check of a lenient decoder but are dropped on re-serialisation, so ids differ between nodes."),
        "WrongType" => ("SCHEMA", "A member has the wrong JSON kind.", "A lenient decoder coerces (\"1\" to 1) and accepts a text that no canonical encoder produces."),
        "Float" => ("NUMBER_MODEL", "A number with a fraction or exponent, even if whole (1.0, 1e3).", "Floats have several spellings and lossy parsers; canonical() would depend on the parser, so signatures break between implementations."),
        "DuplicateKey" => ("AMBIGUOUS_JSON", "An object has the same key twice.", "Parsers disagree on which value wins; a node and a client could see different content under one signature."),
        "IntegerRange" => ("NUMBER_MODEL", "An integer outside ±(2^53−1).", "JavaScript and double-based parsers round it, so two implementations read different values under one signature."),
        "NegativeZero" => ("NUMBER_MODEL", "The number -0.", "Some parsers read -0 as a float, others as 0; canonical() has no spelling for it."),
        "LoneSurrogate" => ("STRING_MODEL", "A \\u escape of an unpaired surrogate.", "Such a string has no UTF-8 form; lenient parsers substitute U+FFFD and change the signed bytes."),
        "DeepNesting" => ("RESOURCE_LIMIT", "Nesting deeper than 64 levels.", "A recursive parser without a depth limit can be crashed by a small frame."),
        "ByteOrderMark" => ("SYNTAX", "The frame starts with U+FEFF.", "A parser that skips the BOM accepts frames that strict parsers refuse."),
        "MalformedJson" => ("SYNTAX", "The text is not RFC 8259 JSON, or not an object.", "A lenient parser (JSON5, trailing commas) accepts frames other implementations refuse."),
        "SeqZero" => ("CHAIN_RULE", "seq is 0.", "A feed with a seq-0 entry has no well-defined first entry; replication from `after: 0` skips it."),
        "PrevShape" => ("CHAIN_RULE", "prev is null although seq > 1, or set although seq = 1.", "A node that ignores prev's shape stores entries that cannot be linked."),
        "SequenceGap" => ("CHAIN_RULE", "seq skips ahead of the head + 1.", "A node that accepts gaps stores feeds with holes that replication can never fill."),
        "WrongPrev" => ("CHAIN_RULE", "prev is not the id of the head.", "A node that does not check the link accepts a second history for the feed."),
        "TimestampBackwards" => ("CHAIN_RULE", "timestamp is before the predecessor's.", "A node that skips the check lets readers sort a feed differently from its seq order."),
        "Fork" => ("CHAIN_RULE", "A different entry at a seq the node already holds.", "A node that overwrites or keeps both lets an author show different histories to different readers."),
        "Pruned" => ("CHAIN_RULE", "An entry at a seq the node has pruned.", "A node cannot tell a duplicate from a fork once the entry is gone; answering ok or fork would be a guess."),
        "Oversized" => ("RESOURCE_LIMIT", "The object exceeds its size limit.", "A node without the limit can be filled, and other nodes refuse what it relays."),
        "KindGrammar" => ("SCHEMA", "kind breaks its grammar (case, length, characters).", "Kinds that differ only in case or are empty make filters and reserved kinds ambiguous."),
        "NameGrammar" => ("SCHEMA", "An account name breaks its grammar (case, length, characters).", "Names that differ only in case or use look-alike characters let one user pose as another on the node."),
        "ListRule" => ("SCHEMA", "mentions or refs exceed 64 elements or repeat an element.", "Nodes that skip the rule fan one entry out to many subscriptions or store different lists."),
        "ProfileRule" => ("SCHEMA", "A profile entry's content breaks the profile rules.", "Clients show profiles that other nodes refuse."),
        "UnsupportedVersion" => ("NEGOTIATION", "hello asks for a version the node does not speak.", "A node that proceeds anyway runs a handshake whose rules neither side agreed on."),
        "WrongNodeKey" => ("BINDING", "The challenge is signed by a key other than the dialled node's.", "A client that trusts any signer logs in to a man in the middle."),
        "ReplayedAuth" => ("REPLAY", "An auth signature made for another handshake's transcript.", "A server that does not bind auth to its own fresh ephemeral accepts a replayed login."),
        "SmallOrderEphemeral" => ("NON_CONTRIBUTORY", "An X25519 ephemeral key of small order: the shared secret is all zero.", "A node that does not check the shared secret runs a transcript the attacker fully controls."),
        "OutOfOrder" => ("STATE_MACHINE", "A handshake message arrives in the wrong state.", "A server that accepts auth before hello authenticates nothing."),
        "AllowanceExhausted" => ("ARITHMETIC", "The inviter's allowance does not cover 1 + the child's allowance.", "A node that forgets the child's own slot, or checks with < instead of <=, lets an invite tree grow past its bound."),
        "Overflow" => ("ARITHMETIC", "1 + allowance exceeds 2^53−1 or would wrap a fixed-width integer.", "A node that wraps or saturates wrongly grants a huge allowance for a tiny cost."),
        "UnknownType" => ("FORWARD_COMPATIBILITY", "The frame's type is not registered.", "A node that drops the frame silently leaves the client waiting for an answer."),
        "CheckOrder" => ("CHECK_ORDER", "The request breaks two rules whose order its chapter fixes; the earlier rule decides the code.", "A node that checks in another order (for example decodes before it counts) answers another code, and a client cannot tell which rule it broke."),
        "MissingId" => ("SCHEMA", "A request without a valid id.", "The answer cannot be matched to its request."),
        _ => return None,
    })
}

/// The one output format: keys sorted at every depth, 2-space indent, trailing newline.
pub fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(&sorted(value)).unwrap_or_default();
    text.push('\n');
    text
}

/// Rebuilds every object with its keys in sorted order (whatever serde_json's map type is).
pub fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}
