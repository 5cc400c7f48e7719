//! Loads every `vectors/*.json` file and recomputes every verdict with the kith-proto API.
//!
//! Nothing here trusts the files: each case's inputs go through the same decoders, verifiers
//! and state machines a node uses, and the outcome is compared with the file's `result` and
//! `error`. Where the core does not (yet) do what the spec says, the case is listed in
//! [`KNOWN_CORE_DEVIATIONS`] with the core's current answer and the reason; any other
//! disagreement fails the test, and so does a listed case whose answer changes to anything but
//! the spec's (a listed case that starts agreeing with the spec is reported for removal).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use kith_proto::account::{charge_invite, check_publish_allowance};
use kith_proto::address::NodeAddress;
use kith_proto::canonical::CanonicalValue;
use kith_proto::cert::Certificate;
use kith_proto::encoding::{decode_hex, encode_hex};
use kith_proto::entry::{check_chain, resolve_below_head, ChainPosition, FeedHead};
use kith_proto::frame::{parse_client_frame, ClientFrame, RequestId, ServerFrame};
use kith_proto::handshake::{ClientConfig, ClientHandshake, ServerHandshake};
use kith_proto::identity::{IdentityNote, ProfileContent};
use kith_proto::signing::{prefixed, signing_bytes, Context};
use kith_proto::storage::{PruneBudget, PruneModel};
use kith_proto::version::PROTOCOL_VERSION;
use kith_proto::version::{negotiate, SUPPORTED_VERSIONS};
use kith_proto::{
    verify_entry, Entry, EntryId, EphemeralKey, ErrorCode, HasErrorCode, PublicKey, SecretKey, Signature,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Cases where the core's answer differs from the spec's, with the core's answer (`valid`, an
/// error code, `code (id N)` for a wrong error id, or `abort`) and why. Each is a bug in the
/// core to fix, not in the vectors.
const KNOWN_CORE_DEVIATIONS: &[(&str, &str, &str)] = &[];

/// A verdict: `valid`, `abort` (client-side handshake failure, no wire code) or an error code.
type Verdict = String;

const VALID: &str = "valid";
const ABORT: &str = "abort";

fn code(c: ErrorCode) -> Verdict {
    c.as_str().to_owned()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(name: &str) -> Value {
    let path = root().join("vectors").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// seed(label) = SHA-256("kith/1 vectors seed " || label), as the vector files document.
fn seed(label: &str) -> [u8; 32] {
    Sha256::digest(format!("kith/1 vectors seed {label}").as_bytes()).into()
}

fn key(label: &str) -> SecretKey {
    SecretKey::from_seed(seed(label))
}

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or_else(|| panic!("missing string {field} in {v}"))
}

fn u(v: &Value, field: &str) -> u64 {
    v[field].as_u64().unwrap_or_else(|| panic!("missing integer {field} in {v}"))
}

fn opt_u(v: &Value) -> Option<u64> {
    if v.is_null() {
        None
    } else {
        Some(v.as_u64().expect("integer or null"))
    }
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex");
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
}

/// The verdict the file states for a case.
fn expected(t: &Value) -> Verdict {
    match (s(t, "result"), &t["error"]) {
        ("valid", Value::Null) => VALID.into(),
        ("invalid", Value::Null) => ABORT.into(),
        ("invalid", Value::String(c)) => {
            assert!(ErrorCode::from_wire(c).is_some(), "{}: unregistered code {c}", s(t, "tc_id"));
            c.clone()
        }
        other => panic!("{}: bad result/error {other:?}", s(t, "tc_id")),
    }
}

/// Collects verdicts across all files and settles them against the deviation list.
#[derive(Default)]
struct Checker {
    mismatches: BTreeMap<String, (Verdict, Verdict)>,
    checked: usize,
}

impl Checker {
    fn check(&mut self, t: &Value, got: Verdict) {
        self.checked += 1;
        let want = expected(t);
        if want != got {
            self.mismatches.insert(s(t, "tc_id").to_owned(), (want, got));
        }
    }

    fn settle(self, file: &str) {
        let known: BTreeMap<&str, &str> = KNOWN_CORE_DEVIATIONS.iter().map(|(id, got, _)| (*id, *got)).collect();
        let mut problems = Vec::new();
        for (id, (want, got)) in &self.mismatches {
            match known.get(id.as_str()) {
                Some(k) if *k == got => {
                    eprintln!("{file}: known core deviation {id}: spec says {want}, core says {got}")
                }
                _ => problems.push(format!("{id}: vector says {want}, core says {got}")),
            }
        }
        assert!(problems.is_empty(), "{file}: {} verdicts differ:\n{}", problems.len(), problems.join("\n"));
        assert!(self.checked > 0, "{file}: no case checked");
    }
}

/// Reports listed deviations that now agree with the spec, so the list gets pruned. Not fatal:
/// the core is fixed by other hands than these tests', and a fix must not turn the suite red.
fn report_stale_deviations(file: &str, v: &Value, checker: &Checker) {
    let mut stale = Vec::new();
    for g in v["test_groups"].as_array().expect("groups") {
        for t in g["tests"].as_array().expect("tests") {
            let id = s(t, "tc_id");
            if KNOWN_CORE_DEVIATIONS.iter().any(|(k, _, _)| *k == id) && !checker.mismatches.contains_key(id) {
                stale.push(id.to_owned());
            }
        }
    }
    if !stale.is_empty() {
        eprintln!("{file}: now agree with the spec, remove from KNOWN_CORE_DEVIATIONS: {}", stale.join(" "));
    }
}

fn for_each_case(v: &Value, mut f: impl FnMut(&Value, &Value)) {
    for g in v["test_groups"].as_array().expect("test_groups") {
        for t in g["tests"].as_array().expect("tests") {
            f(g, t);
        }
    }
}

fn run_file(name: &str, mut f: impl FnMut(&Value, &Value) -> Verdict) {
    let v = load(name);
    let mut checker = Checker::default();
    for_each_case(&v, |g, t| {
        let got = f(g, t);
        checker.check(t, got);
    });
    report_stale_deviations(name, &v, &checker);
    checker.settle(name);
}

// ---------------------------------------------------------------------------------------------
// File shape

const FILES: &[&str] = &[
    "encodings",
    "signing",
    "certificates",
    "handshake",
    "entries",
    "invites",
    "replacements",
    "requests",
    "frames",
    "identities",
    "storage",
    "versioning",
];

/// Requirement IDs defined in the spec chapters present in this checkout.
fn spec_ids() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(dir) = std::fs::read_dir(root().join("spec")) else { return out };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.ends_with(".md") && name.as_bytes()[0].is_ascii_digit()) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            if let Some(rest) = line.trim_start().strip_prefix("- [") {
                if let Some(end) = rest.find(']') {
                    // A withdrawn requirement keeps its number but cannot be cited.
                    if !rest[end + 1..].trim_start().starts_with("(withdrawn") {
                        out.insert(rest[..end].to_owned());
                    }
                }
            }
        }
    }
    out
}

#[test]
fn every_file_is_well_formed() {
    let spec = spec_ids();
    let prefixes: BTreeSet<String> =
        spec.iter().filter_map(|id| id.split_once('-').map(|(p, _)| p.to_owned())).collect();
    let mut all_ids = BTreeSet::new();
    for name in FILES {
        let v = load(name);
        for field in ["title", "description", "schema_version", "notes", "number_of_tests", "test_groups"] {
            assert!(!v[field].is_null(), "{name}: no {field}");
        }
        let notes = v["notes"].as_object().expect("notes");
        let mut used = BTreeSet::new();
        let mut count = 0;
        for_each_case(&v, |_, t| {
            count += 1;
            let id = s(t, "tc_id");
            assert!(all_ids.insert(id.to_owned()), "tc_id {id} is not unique");
            assert!(!s(t, "comment").is_empty(), "{id}: empty comment");
            let reqs = t["requirements"].as_array().expect("requirements");
            assert!(!reqs.is_empty(), "{id}: cites no requirement");
            for r in reqs {
                let r = r.as_str().expect("string");
                let prefix = r.split_once('-').map(|(p, _)| p).unwrap_or_default();
                // Chapters still being written cannot be checked; a written chapter must define it.
                if prefixes.contains(prefix) {
                    assert!(spec.contains(r), "{id}: cites {r}, which the spec does not define (or withdrew)");
                }
            }
            let flags = t["flags"].as_array().expect("flags");
            if s(t, "result") == "invalid" {
                assert!(!flags.is_empty(), "{id}: an invalid case names the bug class it catches");
            }
            for f in flags {
                let f = f.as_str().expect("flag");
                assert!(notes.contains_key(f), "{name}: flag {f} of {id} has no note");
                used.insert(f.to_owned());
            }
            let _ = expected(t);
        });
        assert_eq!(v["number_of_tests"].as_u64(), Some(count), "{name}: number_of_tests");
        for (flag, note) in notes {
            assert!(used.contains(flag), "{name}: note {flag} is never used");
            for field in ["bug_type", "description", "effect"] {
                assert!(note[field].as_str().is_some_and(|t| !t.is_empty()), "{name}: note {flag} lacks {field}");
            }
        }
    }
}

#[test]
fn entries_have_at_least_25_invalid_cases() {
    let v = load("entries");
    let mut invalid = 0;
    for_each_case(&v, |_, t| invalid += usize::from(s(t, "result") == "invalid"));
    assert!(invalid >= 25, "only {invalid} invalid entry cases");
}

// ---------------------------------------------------------------------------------------------
// encodings.json

#[test]
fn encodings() {
    run_file("encodings", |g, t| {
        let text = s(t, "text");
        let parsed: Result<String, ErrorCode> = match s(g, "type") {
            "KeyDecode" => PublicKey::parse(text).map(|k| k.to_string()).map_err(|e| e.code()),
            "IdDecode" => EntryId::parse(text).map(|k| k.to_string()).map_err(|e| e.code()),
            "XKeyDecode" => EphemeralKey::parse(text).map(|k| k.to_string()).map_err(|e| e.code()),
            "SigDecode" => Signature::parse(text).map(|k| k.to_string()).map_err(|e| e.code()),
            other => panic!("unknown group {other}"),
        };
        match parsed {
            Ok(back) => {
                assert_eq!(back, text, "{}: re-encoding differs", s(t, "tc_id"));
                if let Some(label) = t["seed_label"].as_str() {
                    assert_eq!(key(label).public().to_string(), text);
                }
                VALID.into()
            }
            Err(c) => code(c),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// signing.json

fn context(name: &str) -> Context {
    *Context::ALL.iter().find(|c| c.as_str() == name).unwrap_or_else(|| panic!("unknown context {name}"))
}

#[test]
fn signing() {
    run_file("signing", |g, t| {
        let id = s(t, "tc_id");
        match s(g, "type") {
            "Canonical" => match CanonicalValue::parse(s(t, "input")) {
                Ok(v) => {
                    let bytes = v.to_jcs();
                    assert_eq!(encode_hex(&bytes), s(t, "canonical_hex"), "{id}");
                    assert_eq!(String::from_utf8(bytes).expect("utf8"), s(t, "canonical"), "{id}");
                    VALID.into()
                }
                Err(_) => code(ErrorCode::MalformedFrame),
            },
            "SigningBytes" => {
                let ctx = context(s(t, "context"));
                let want = unhex(s(t, "signing_bytes_hex"));
                let signer = key(s(t, "signer_seed_label")).public();
                let mut sigs = Vec::new();
                if let Some(th) = t["transcript_hash_hex"].as_str() {
                    let th: [u8; 32] = decode_hex(th).expect("hash");
                    assert_eq!(prefixed(ctx, &th), want, "{id}");
                    sigs.push(Signature::parse(s(t, "signature")).expect("sig"));
                } else {
                    let object = &t["object"];
                    let mut unsigned = object.clone();
                    let m = unsigned.as_object_mut().expect("object");
                    for field in ["sig", "sig_old", "sig_new"] {
                        if let Some(sig) = m.remove(field) {
                            sigs.push(Signature::parse(sig.as_str().expect("sig")).expect("sig"));
                        }
                    }
                    let generic = signing_bytes(ctx, &CanonicalValue::from_json(&unsigned).expect("canonical"));
                    assert_eq!(generic, want, "{id}: generic signing bytes");
                    let text = object.to_string();
                    let typed = match ctx {
                        Context::Entry => Entry::from_json(&text).expect("entry").signing_bytes(),
                        Context::Certificate => {
                            serde_json::from_str::<Certificate>(&text).expect("cert").signing_bytes()
                        }
                        Context::ReplaceKey => serde_json::from_str::<kith_proto::account::KeyReplacement>(&text)
                            .expect("repl")
                            .signing_bytes(),
                        Context::IdentityNote => {
                            serde_json::from_str::<IdentityNote>(&text).expect("note").signing_bytes()
                        }
                        other => panic!("{other:?}"),
                    };
                    assert_eq!(typed, want, "{id}: the type's signing bytes");
                }
                assert!(!sigs.is_empty());
                let mut signers = vec![signer];
                if let Some(second) = t["second_signer_seed_label"].as_str() {
                    signers.push(key(second).public());
                }
                for (sig, signer) in sigs.iter().zip(signers.iter().cycle()) {
                    match signer.verify_strict(&want, sig) {
                        Ok(()) => {}
                        Err(e) => return code(e.code()),
                    }
                }
                VALID.into()
            }
            "Verify" => {
                let k = match PublicKey::parse(s(t, "key")) {
                    Ok(k) => k,
                    Err(e) => return code(e.code()),
                };
                let sig = match Signature::parse(s(t, "sig")) {
                    Ok(sig) => sig,
                    Err(e) => return code(e.code()),
                };
                match k.verify_strict(&unhex(s(t, "message_hex")), &sig) {
                    Ok(()) => VALID.into(),
                    Err(e) => code(e.code()),
                }
            }
            other => panic!("unknown group {other}"),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// certificates.json

#[test]
fn certificates() {
    run_file("certificates", |g, t| {
        let now = u(g, "now");
        let cert: Certificate = match serde_json::from_str(s(t, "certificate")) {
            Ok(c) => c,
            // Chapter 04 reports every decoding defect of a certificate as bad_certificate.
            Err(_) => return code(ErrorCode::BadCertificate),
        };
        if let Some(sb) = t["signing_bytes_hex"].as_str() {
            assert_eq!(encode_hex(&cert.signing_bytes()), sb);
        }
        let presented = PublicKey::parse(s(t, "presented_peer")).expect("presented peer");
        match cert.verify(&presented, now) {
            Ok(()) => VALID.into(),
            Err(e) => code(e.code()),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// handshake.json

fn json_eq(a: &str, b: &str) -> bool {
    serde_json::from_str::<Value>(a).expect("json") == serde_json::from_str::<Value>(b).expect("json")
}

#[test]
fn handshake() {
    let v = load("handshake");
    let g = &v["test_groups"][0];
    let valid = &g["tests"][0];
    assert_eq!(s(valid, "tc_id"), "hs-valid-full");
    let now = u(g, "now");
    let node = key(s(g, "node_seed_label"));
    let peer = key(s(g, "peer_seed_label"));
    assert_eq!(encode_hex(&seed(s(g, "client_ephemeral_seed_label"))), s(g, "client_ephemeral_secret_hex"));
    assert_eq!(encode_hex(&seed(s(g, "server_ephemeral_seed_label"))), s(g, "server_ephemeral_secret_hex"));
    let hello_frame = parse_client_frame(s(valid, "hello")).expect("hello");
    let ClientFrame::Hello(hello) = hello_frame else { panic!("not a hello") };
    let cert = hello.cert.clone();
    assert_eq!(cert.user, key(s(g, "user_seed_label")).public());
    let config = || ClientConfig {
        peer: peer.clone(),
        cert: cert.clone(),
        expected_node: node.public(),
        version: PROTOCOL_VERSION.into(),
    };

    // The valid transcript, recomputed by both state machines from the seeds.
    let (mut client, my_hello) = ClientHandshake::start(config(), seed("client-ephemeral"), RequestId::small(1));
    assert!(json_eq(&ClientFrame::Hello(my_hello.clone()).to_text(), s(valid, "hello")), "hello differs");
    let mut server = ServerHandshake::new(node.clone(), seed("server-ephemeral"));
    let challenge = server.handle_hello(&my_hello, now).expect("challenge");
    assert!(json_eq(&ServerFrame::Challenge(challenge.clone()).to_text(), s(valid, "challenge")), "challenge differs");
    let auth = client.handle_challenge(&challenge, RequestId::small(2)).expect("auth");
    assert!(json_eq(&ClientFrame::Auth(auth.clone()).to_text(), s(valid, "auth")), "auth differs");
    let done = server.handle_auth(&auth).expect("authenticated");
    assert_eq!(encode_hex(&done.transcript_hash), s(valid, "transcript_hash_hex"));
    assert_eq!(client.transcript_hash(), Some(done.transcript_hash));
    // The transcript bytes stated in the file hash to th, and their parts are as stated.
    let input = unhex(s(valid, "transcript_hash_input_hex"));
    assert_eq!(<[u8; 32]>::from(Sha256::digest(&input)), done.transcript_hash);
    let jcs = unhex(s(valid, "transcript_canonical_hex"));
    let dh = unhex(s(valid, "dh_hex"));
    assert_eq!([b"kith/1/transcript\x00".as_slice(), &jcs, &dh].concat(), input);
    assert_eq!(String::from_utf8(jcs.clone()).expect("utf8"), s(valid, "transcript_canonical"));
    assert_eq!(CanonicalValue::parse(s(valid, "transcript_canonical")).expect("jcs").to_jcs(), jcs);
    assert_eq!(prefixed(Context::HandshakeServer, &done.transcript_hash), unhex(s(valid, "server_signing_bytes_hex")));
    assert_eq!(prefixed(Context::HandshakeClient, &done.transcript_hash), unhex(s(valid, "client_signing_bytes_hex")));
    assert_eq!(challenge.sig.to_string(), s(valid, "server_signature"));
    assert_eq!(auth.sig.to_string(), s(valid, "client_signature"));
    node.public().verify_strict(&unhex(s(valid, "server_signing_bytes_hex")), &challenge.sig).expect("server sig");
    peer.public().verify_strict(&unhex(s(valid, "client_signing_bytes_hex")), &auth.sig).expect("client sig");
    let welcome = ServerFrame::parse(s(valid, "welcome")).expect("welcome");
    let ServerFrame::Welcome(welcome) = welcome else { panic!("not a welcome") };
    assert_eq!(client.handle_welcome(&welcome).expect("welcome").key, cert.user);

    run_file("handshake", |g, t| {
        let messages: Vec<&str> =
            t["messages"].as_array().expect("messages").iter().map(|m| m.as_str().expect("text")).collect();
        match s(t, "side") {
            "server" | "both" => {
                let mut server =
                    ServerHandshake::new(key(s(g, "node_seed_label")), seed(s(g, "server_ephemeral_seed_label")));
                let mut verdict = VALID.to_owned();
                for (i, m) in messages.iter().enumerate() {
                    assert_eq!(verdict, VALID, "{}: message {i} follows a failure", s(t, "tc_id"));
                    verdict = match server.decode_frame(m) {
                        Err(e) => code(e.code),
                        Ok(ClientFrame::Hello(h)) => {
                            server.handle_hello(&h, now).map_or_else(|e| code(e.code()), |_| VALID.into())
                        }
                        Ok(ClientFrame::Auth(a)) => {
                            server.handle_auth(&a).map_or_else(|e| code(e.code()), |_| VALID.into())
                        }
                        Ok(other) => panic!("unexpected {}", other.type_name()),
                    };
                }
                verdict
            }
            "client" => {
                let (mut client, _) =
                    ClientHandshake::start(config(), seed(s(g, "client_ephemeral_seed_label")), RequestId::small(1));
                let ServerFrame::Challenge(c) = ServerFrame::parse(messages[0]).expect("challenge") else {
                    panic!("not a challenge")
                };
                match client.handle_challenge(&c, RequestId::small(2)) {
                    Ok(_) => VALID.into(),
                    Err(_) => ABORT.into(),
                }
            }
            other => panic!("side {other}"),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// entries.json

/// What a node answers to a publish frame, before feed state (entry validity is fixed for kith/1,
/// VER-13: these vectors pin it): the frame decoder, the entry
/// checks, then the profile rule.
fn publish_verdict(frame: &str) -> Result<kith_proto::VerifiedEntry, ErrorCode> {
    let f = parse_client_frame(frame).map_err(|e| e.code)?;
    let ClientFrame::Publish(p) = f else { panic!("not a publish frame") };
    let v = verify_entry(&p.entry).map_err(|e| e.code())?;
    if p.entry.kind.as_str() == kith_proto::entry::Kind::PROFILE {
        ProfileContent::check(&p.entry.content).map_err(|_| ErrorCode::MalformedEntry)?;
    }
    Ok(v)
}

#[test]
fn entries() {
    let mut head: Option<FeedHead> = None;
    run_file("entries", |g, t| {
        let id = s(t, "tc_id");
        match s(g, "type") {
            "EntryChain" => {
                let e = Entry::from_json(s(t, "entry")).unwrap_or_else(|e| panic!("{id}: {e}"));
                let v = verify_entry(&e).unwrap_or_else(|e| panic!("{id}: {e}"));
                assert_eq!(e.author.to_string(), s(g, "author"));
                assert_eq!(encode_hex(&e.signing_bytes()), s(t, "signing_bytes_hex"), "{id}");
                assert_eq!(encode_hex(&v.canonical), s(t, "canonical_hex"), "{id}");
                assert_eq!(v.canonical.len() as u64, u(t, "size"), "{id}");
                assert_eq!(v.id.to_string(), s(t, "id"), "{id}");
                assert_eq!(encode_hex(&Sha256::digest(&v.canonical)), s(t, "id"), "{id}");
                assert_eq!(e.author, key(s(g, "author_seed_label")).public());
                let expect = if head.is_none() { ChainPosition::Anchor } else { ChainPosition::Next };
                match check_chain(head.as_ref(), &v) {
                    Ok(p) => assert_eq!(p, expect, "{id}"),
                    Err(e) => return code(e.code()),
                }
                head = Some(FeedHead { seq: e.seq, id: v.id, timestamp: e.timestamp, pruned_through: 0 });
                VALID.into()
            }
            "EntryValidate" => {
                let frame = s(t, "frame");
                assert_eq!(frame, format!(r#"{{"entry":{},"id":7,"type":"publish"}}"#, s(t, "entry")), "{id}");
                match publish_verdict(frame) {
                    Ok(v) => {
                        if expected(t) == VALID {
                            assert_eq!(v.id.to_string(), s(t, "id"), "{id}");
                        }
                        VALID.into()
                    }
                    Err(c) => code(c),
                }
            }
            "EntryChainRule" => {
                let e = Entry::from_json(s(t, "entry")).unwrap_or_else(|e| panic!("{id}: {e}"));
                let v = verify_entry(&e).unwrap_or_else(|e| panic!("{id}: {e}"));
                let h = &t["head"];
                let head = (!h.is_null()).then(|| FeedHead {
                    seq: u(h, "seq"),
                    id: EntryId::parse(s(h, "id")).expect("id"),
                    timestamp: u(h, "timestamp"),
                    pruned_through: u(t, "pruned_through"),
                });
                let held: BTreeMap<u64, EntryId> = t["held"]
                    .as_array()
                    .expect("held")
                    .iter()
                    .map(|x| (u(x, "seq"), EntryId::parse(s(x, "id")).expect("id")))
                    .collect();
                let outcome = match check_chain(head.as_ref(), &v) {
                    Err(e) => return code(e.code()),
                    Ok(ChainPosition::Anchor) => "anchor",
                    Ok(ChainPosition::Next) => "next",
                    Ok(ChainPosition::DuplicateHead) => "duplicate",
                    Ok(ChainPosition::BelowHead) => {
                        let stored = held.get(&e.seq).unwrap_or_else(|| panic!("{id}: nothing held at {}", e.seq));
                        match resolve_below_head(stored, &v) {
                            Ok(()) => "duplicate",
                            Err(e) => return code(e.code()),
                        }
                    }
                };
                assert_eq!(outcome, s(t, "outcome"), "{id}");
                VALID.into()
            }
            other => panic!("unknown group {other}"),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// invites.json

fn charge_verdict(inviter: Option<u64>, child: u64, remaining: &Value, id: &str) -> Verdict {
    match charge_invite(inviter, child) {
        Ok(r) => {
            assert_eq!(r, opt_u(remaining), "{id}: remaining");
            VALID.into()
        }
        Err(e) => {
            assert_eq!(inviter, opt_u(remaining), "{id}: a refused invite changes nothing");
            code(e.code())
        }
    }
}

#[test]
fn invites() {
    run_file("invites", |g, t| {
        let id = s(t, "tc_id");
        match s(g, "type") {
            "InviteAllowance" => charge_verdict(
                opt_u(&t["inviter_invite_allowance"]),
                u(t, "child_invite_allowance"),
                &t["remaining"],
                id,
            ),
            "InviteSequence" => {
                let mut remaining = opt_u(&t["inviter_invite_allowance"]);
                let mut last = VALID.to_owned();
                for step in t["steps"].as_array().expect("steps") {
                    last = charge_verdict(remaining, u(step, "child_invite_allowance"), &step["remaining"], id);
                    assert_eq!(last, expected(step), "{id}: step {step}");
                    remaining = opt_u(&step["remaining"]);
                }
                last
            }
            "AccountName" => match parse_client_frame(s(t, "frame")) {
                Ok(ClientFrame::CreateUser(c)) => {
                    assert_eq!(c.name.as_str(), s(t, "name"), "{id}");
                    VALID.into()
                }
                Ok(other) => panic!("{id}: {}", other.type_name()),
                Err(e) => code(e.code),
            },
            "PublishAllowance" => {
                match check_publish_allowance(opt_u(&t["inviter_publish_allowance"]), u(t, "child_publish_allowance")) {
                    Ok(()) => VALID.into(),
                    Err(e) => code(e.code()),
                }
            }
            other => panic!("unknown group {other}"),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// frames.json

/// What a client does with a frame from a node: accept it (and, for an error, the code it acts
/// on) or ignore an unknown push.
fn client_receives(text: &str) -> Result<(String, Option<ErrorCode>), String> {
    match ServerFrame::parse(text) {
        Ok(f) => {
            let code = if let ServerFrame::Error(e) = &f { Some(e.code) } else { None };
            Ok((f.to_text(), code))
        }
        Err(e) => {
            let ty = serde_json::from_str::<Value>(text).ok().and_then(|v| v["type"].as_str().map(str::to_owned));
            match ty {
                Some(ty) if !ServerFrame::TYPES.contains(&ty.as_str()) => Err("ignore".into()),
                _ => panic!("a node's frame failed to parse: {e}"),
            }
        }
    }
}

#[test]
fn frames() {
    run_file("frames", |g, t| {
        let id = s(t, "tc_id");
        if s(g, "type") == "ServerFrame" {
            return match client_receives(s(t, "frame")) {
                Ok((text, code)) => {
                    assert_eq!(s(t, "client_action"), "accept", "{id}");
                    let ty = serde_json::from_str::<Value>(&text).expect("json")["type"].as_str().map(str::to_owned);
                    assert_eq!(ty.as_deref(), Some(s(t, "frame_type")), "{id}");
                    assert_eq!(code.map(ErrorCode::as_str), t["client_code"].as_str(), "{id}");
                    VALID.into()
                }
                Err(action) => {
                    assert_eq!(s(t, "client_action"), action, "{id}");
                    VALID.into()
                }
            };
        }
        match parse_client_frame(s(t, "frame")) {
            Ok(f) => {
                if expected(t) == VALID {
                    assert_eq!(f.type_name(), s(t, "frame_type"), "{id}");
                }
                VALID.into()
            }
            Err(e) => {
                // The error frame's id is part of the answer (FRAME-17): a wrong id is a wrong
                // verdict, reported as `code (id N)`.
                let got_id = e.id.map(RequestId::get);
                if got_id == opt_u(&t["error_id"]) {
                    code(e.code)
                } else {
                    format!("{} (id {})", e.code.as_str(), got_id.map_or("null".into(), |i| i.to_string()))
                }
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// identities.json

#[test]
fn identities() {
    run_file("identities", |g, t| {
        let id = s(t, "tc_id");
        match s(g, "type") {
            "AddIdentity" => {
                let frame = s(t, "frame");
                assert_eq!(frame, format!(r#"{{"id":9,"note":{},"type":"add_identity"}}"#, s(t, "note")), "{id}");
                let note = match parse_client_frame(frame) {
                    Err(e) => return code(e.code),
                    Ok(ClientFrame::AddIdentity(a)) => a.note,
                    Ok(other) => panic!("{id}: {}", other.type_name()),
                };
                assert_eq!(note.author, key(s(g, "author_seed_label")).public(), "{id}: the session's user wrote it");
                match note.verify() {
                    Ok(()) => VALID.into(),
                    Err(e) => code(e.code()),
                }
            }
            "NodeAddress" => match s(t, "address").parse::<NodeAddress>() {
                Ok(a) => {
                    assert_eq!(a.url(), s(t, "url"), "{id}");
                    VALID.into()
                }
                // Refused addresses have no wire code of their own; inside a note they are
                // invalid_request (IDENT-7).
                Err(_) => code(ErrorCode::InvalidRequest),
            },
            "FollowKey" => match parse_client_frame(s(t, "frame")) {
                Ok(ClientFrame::Follow(_) | ClientFrame::Unfollow(_)) => VALID.into(),
                Ok(other) => panic!("{id}: {}", other.type_name()),
                Err(e) => code(e.code),
            },
            other => panic!("unknown group {other}"),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// storage.json

#[test]
fn storage() {
    run_file("storage", |g, t| {
        let id = s(t, "tc_id");
        let budget = match PruneBudget::new(u(t, "storage_bytes")) {
            Ok(b) => b,
            Err(_) => return ABORT.into(),
        };
        if s(g, "type") == "PruneOrder" {
            let mut m = PruneModel::new(budget);
            for step in t["stores"].as_array().expect("stores") {
                let pruned = m.store(u(step, "tag"), u(step, "size"));
                let want: Vec<u64> =
                    step["pruned"].as_array().expect("pruned").iter().map(|x| x.as_u64().expect("tag")).collect();
                assert_eq!(pruned, want, "{id}: pruned after tag {}", u(step, "tag"));
                assert_eq!(m.total(), u(step, "counted"), "{id}");
                assert!(m.total() <= budget.bytes(), "{id}: over budget after pruning");
                let held: Vec<u64> =
                    step["held"].as_array().expect("held").iter().map(|x| x.as_u64().expect("tag")).collect();
                assert_eq!(m.stored().collect::<Vec<_>>(), held, "{id}");
            }
        }
        VALID.into()
    });
}

// ---------------------------------------------------------------------------------------------
// versioning.json

#[test]
fn versioning() {
    run_file("versioning", |g, t| {
        let id = s(t, "tc_id");
        match s(g, "type") {
            "Negotiate" => {
                let strings = |f: &str| -> Vec<String> {
                    t[f].as_array().expect("list").iter().map(|x| x.as_str().expect("string").to_owned()).collect()
                };
                let ours = strings("ours");
                let ours: Vec<&str> = ours.iter().map(String::as_str).collect();
                let chosen = negotiate(&ours, &strings("theirs"));
                assert_eq!(chosen, t["chosen"].as_str(), "{id}");
                VALID.into()
            }
            "Contexts" => {
                let listed: Vec<&str> =
                    t["contexts"].as_array().expect("contexts").iter().map(|c| c.as_str().expect("context")).collect();
                let ours: Vec<&str> = Context::ALL.iter().map(|c| c.as_str()).collect();
                assert_eq!(listed, ours, "{id}");
                for c in listed.iter().chain([s(t, "transcript_domain")].iter()) {
                    assert!(c.starts_with("kith/1/"), "{id}: {c}");
                }
                for a in &listed {
                    for b in &listed {
                        assert!(a == b || !a.starts_with(b), "{id}: {b} is a prefix of {a}");
                    }
                }
                let versions: Vec<&str> =
                    t["versions"].as_array().expect("versions").iter().map(|v| v.as_str().expect("v")).collect();
                assert_eq!(versions, SUPPORTED_VERSIONS, "{id}");
                VALID.into()
            }
            other => panic!("unknown group {other}"),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// replacements.json

#[test]
fn replacements() {
    run_file("replacements", |g, t| {
        let id = s(t, "tc_id");
        let frame = s(t, "frame");
        assert_eq!(frame, format!(r#"{{"id":12,"replacement":{},"type":"replace_key"}}"#, s(t, "replacement")), "{id}");
        let r = match parse_client_frame(frame) {
            Err(e) => return code(e.code),
            Ok(ClientFrame::ReplaceKey(r)) => r.replacement,
            Ok(other) => panic!("{id}: {}", other.type_name()),
        };
        let node = key(s(g, "node_seed_label")).public();
        let session = PublicKey::parse(s(t, "session_user")).expect("session user");
        match r.verify(&node, &session, u(g, "now")) {
            Ok(()) => {
                assert_eq!(r.old, key(s(g, "old_seed_label")).public(), "{id}");
                assert_eq!(r.new, key(s(g, "new_seed_label")).public(), "{id}");
                VALID.into()
            }
            Err(e) => code(e.code()),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// requests.json

/// A request's stateless rules after decoding (chapter 08): the limits and forms no decoder
/// expresses.
fn request_rules(f: &ClientFrame) -> Result<(), ErrorCode> {
    use kith_proto::feed::{GetTarget, MAX_FILTER_ITEMS};
    match f {
        ClientFrame::Subscribe(s) if s.filter.len() > MAX_FILTER_ITEMS => Err(ErrorCode::InvalidRequest),
        ClientFrame::Heads(h) if h.authors.len() > MAX_FILTER_ITEMS => Err(ErrorCode::InvalidRequest),
        ClientFrame::Replicate(r) if r.limit == 0 => Err(ErrorCode::InvalidRequest),
        ClientFrame::Get(g) => match g.target() {
            None | Some(GetTarget::Position(_, 0)) => Err(ErrorCode::InvalidRequest),
            Some(_) => Ok(()),
        },
        _ => Ok(()),
    }
}

#[test]
fn requests() {
    run_file("requests", |_, t| {
        let id = s(t, "tc_id");
        let f = match parse_client_frame(s(t, "frame")) {
            Ok(f) => f,
            Err(e) => return code(e.code),
        };
        if let Err(c) = request_rules(&f) {
            return code(c);
        }
        if expected(t) == VALID {
            assert_eq!(f.type_name(), s(t, "frame_type"), "{id}");
        }
        VALID.into()
    });
}
