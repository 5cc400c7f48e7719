//! The spec's worked examples, checked with the core: every JSON example is a Kith value and a
//! frame of its type, every signed object in an example verifies, and the handshake example's
//! intermediate values (chapter 05 §5) follow from its messages (§4.5) and the RFC 7748 keys.

use std::path::PathBuf;

use kith_proto::canonical::CanonicalValue;
use kith_proto::frame::{parse_client_frame, ClientFrame, ServerFrame};
use kith_proto::handshake::Transcript;
use kith_proto::signing::{prefixed, Context};
use kith_proto::{verify_entry, Entry, HasErrorCode};
use serde_json::Value;

fn chapters() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spec");
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("spec")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().as_bytes()[0].is_ascii_digit()))
        .map(|p| {
            (p.file_name().expect("name").to_string_lossy().into_owned(), std::fs::read_to_string(&p).expect("chapter"))
        })
        .collect();
    out.sort();
    out
}

/// The ```json blocks of a text.
fn json_blocks(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```json\n") {
        let body = &rest[start + 8..];
        let end = body.find("```").expect("closed block");
        out.push(&body[..end]);
        rest = &body[end..];
    }
    out
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
}

/// Every JSON example is a Kith value; typed examples decode as their frame type; entries in
/// examples verify.
#[test]
fn json_examples_decode() {
    let mut frames = 0;
    for (name, text) in chapters() {
        for block in json_blocks(&text) {
            let value = CanonicalValue::parse(block)
                .unwrap_or_else(|e| panic!("{name}: example is not a Kith value: {e}\n{block}"));
            let json: Value = serde_json::from_str(block).expect("json");
            let Some(ty) = json.get("type").and_then(Value::as_str) else {
                if json.get("seq").is_some() && json.get("sig").is_some() {
                    let e = Entry::from_json(block).unwrap_or_else(|e| panic!("{name}: entry example: {e}"));
                    verify_entry(&e).unwrap_or_else(|e| panic!("{name}: entry example does not verify: {e}"));
                }
                continue;
            };
            if ClientFrame::TYPES.contains(&ty) {
                let f =
                    parse_client_frame(block).unwrap_or_else(|e| panic!("{name}: {ty} example refused: {e}\n{block}"));
                if let ClientFrame::Publish(p) = &f {
                    verify_entry(&p.entry).unwrap_or_else(|e| panic!("{name}: publish example: {e}"));
                }
                frames += 1;
            } else if ServerFrame::TYPES.contains(&ty) {
                ServerFrame::parse(block).unwrap_or_else(|e| panic!("{name}: {ty} example refused: {e}\n{block}"));
                frames += 1;
            }
            let _ = value;
        }
    }
    assert!(frames >= 20, "only {frames} frame examples found");
}

/// Chapter 05 §4.5 and §5: dh, canonical(T), th and both signatures of the worked example.
#[test]
fn handshake_example() {
    let (_, text) = chapters().into_iter().find(|(n, _)| n.starts_with("05-")).expect("chapter 05");
    let example = &text[text.find("### 4.5 Example").expect("§4.5")..];
    let blocks = json_blocks(example);
    let ClientFrame::Hello(hello) = parse_client_frame(blocks[0]).expect("hello") else { panic!("hello") };
    let ServerFrame::Challenge(challenge) = ServerFrame::parse(blocks[1]).expect("challenge") else {
        panic!("challenge")
    };
    let ClientFrame::Auth(auth) = parse_client_frame(blocks[2]).expect("auth") else { panic!("auth") };
    let ServerFrame::Welcome(welcome) = ServerFrame::parse(blocks[3]).expect("welcome") else { panic!("welcome") };
    assert_eq!(welcome.account.key, hello.cert.user, "HS-47: the welcome is for the certificate's user");

    // RFC 7748 §6.1: Alice's private key is the client's ephemeral secret.
    let alice: [u8; 32] =
        hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a").try_into().expect("32");
    let bob: [u8; 32] = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb").try_into().expect("32");
    let alice = x25519_dalek::StaticSecret::from(alice);
    let bob = x25519_dalek::StaticSecret::from(bob);
    assert_eq!(x25519_dalek::PublicKey::from(&alice).as_bytes(), hello.ephemeral.as_bytes());
    assert_eq!(x25519_dalek::PublicKey::from(&bob).as_bytes(), challenge.ephemeral.as_bytes());
    let dh = alice.diffie_hellman(&x25519_dalek::PublicKey::from(*challenge.ephemeral.as_bytes())).to_bytes();
    assert_eq!(dh, bob.diffie_hellman(&x25519_dalek::PublicKey::from(*hello.ephemeral.as_bytes())).to_bytes());

    let worked = &text[text.find("Worked example").expect("§5 worked example")..];
    let line_after = |label: &str| -> String {
        let at = worked.find(label).unwrap_or_else(|| panic!("{label}"));
        worked[at + label.len()..].trim_start().lines().next().expect("value").trim().to_owned()
    };
    assert_eq!(kith_proto::encoding::encode_hex(&dh), line_after("dh ="));
    let transcript = Transcript {
        version: &hello.version,
        client_ephemeral: &hello.ephemeral,
        client_peer: &hello.peer,
        cert: &hello.cert,
        server_ephemeral: &challenge.ephemeral,
        server_peer: &challenge.node,
    };
    let canonical = String::from_utf8(transcript.canonical_value().to_jcs()).expect("utf8");
    assert_eq!(canonical, line_after("canonical(T) ="), "HS-17: canonical(T)");
    let th = transcript.hash(&dh);
    assert_eq!(kith_proto::encoding::encode_hex(&th), line_after("th ="), "HS-17: th");
    challenge
        .node
        .verify_strict(&prefixed(Context::HandshakeServer, &th), &challenge.sig)
        .expect("HS-18: challenge.sig");
    hello.peer.verify_strict(&prefixed(Context::HandshakeClient, &th), &auth.sig).expect("HS-19: auth.sig");
    let cert_ok = hello.cert.verify(&hello.peer, hello.cert.expires - 1).map_err(|e| e.code());
    assert_eq!(cert_ok, Ok(()), "the example's certificate verifies");
}
