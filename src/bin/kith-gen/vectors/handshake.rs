//! `vectors/handshake.json`: a full handshake from fixed keys, and the ways it must fail
//! (chapter 05).

use kith_proto::account::{Account, AccountName};
use kith_proto::cert::Certificate;
use kith_proto::frame::{ClientFrame, RequestId, ServerFrame};
use kith_proto::handshake::{
    sign_transcript, Auth, Challenge, ClientConfig, ClientHandshake, Hello, ServerHandshake, Transcript, Welcome,
};
use kith_proto::signing::Context;
use kith_proto::version::PROTOCOL_VERSION;
use kith_proto::ErrorCode::{
    BadCertificate, BadEncoding, BadHandshake, BadSignature, CertExpired, InvalidRequest, UnsupportedVersion, WeakKey,
};
use kith_proto::{EphemeralKey, ErrorCode, Signature};
use serde_json::{json, Value};

use crate::common::{file as vector_file, hex, key, seed, Case, Group};
use crate::vectors::certificates::{EXPIRES, NOW};

fn client(cert: Certificate) -> (ClientHandshake, Hello) {
    let config =
        ClientConfig { peer: key("peer"), cert, expected_node: key("node").public(), version: PROTOCOL_VERSION.into() };
    ClientHandshake::start(config, seed("client-ephemeral"), RequestId::small(1))
}

fn server(ephemeral_label: &str) -> ServerHandshake {
    ServerHandshake::new(key("node"), seed(ephemeral_label))
}

fn cframe(f: ClientFrame) -> String {
    f.to_text()
}

fn sframe(f: ServerFrame) -> String {
    f.to_text()
}

/// A server-side case: feed `messages` in order; all but the last succeed.
fn server_case(c: Case, messages: Vec<String>) -> Case {
    c.with("side", "server").with("messages", messages)
}

/// A client-side case: the client has sent the good hello and receives `challenge`.
fn client_case(tc_id: &str, comment: &str, reqs: &[&str], flags: &[&str], challenge: String) -> Case {
    Case::invalid(tc_id, comment, reqs, flags, ErrorCode::BadSignature)
        .with("error", Value::Null)
        .with("side", "client")
        .with("messages", vec![challenge])
}

fn group() -> Group {
    let user = key("user");
    let peer = key("peer");
    let node = key("node");
    let cert = Certificate::issue(&user, peer.public(), EXPIRES);
    let (mut cl, hello) = client(cert.clone());
    let mut sv = server("server-ephemeral");
    let challenge = sv.handle_hello(&hello, NOW).unwrap_or_else(|e| panic!("hello: {e}"));
    let auth = cl.handle_challenge(&challenge, RequestId::small(2)).unwrap_or_else(|e| panic!("challenge: {e}"));
    let done = sv.handle_auth(&auth).unwrap_or_else(|e| panic!("auth: {e}"));
    let account = Account {
        key: user.public(),
        name: AccountName::new("alice").unwrap_or_else(|e| panic!("{e}")),
        parent: Some(node.public()),
        invite_allowance: Some(3),
        publish_allowance: Some(1000),
        published_entries: 0,
        published_bytes: 0,
    };
    let welcome = Welcome { id: RequestId::small(2), account };
    let dh = x25519_dalek::StaticSecret::from(seed("client-ephemeral"))
        .diffie_hellman(&x25519_dalek::PublicKey::from(*challenge.ephemeral.as_bytes()))
        .to_bytes();
    let transcript = Transcript {
        version: &hello.version,
        client_ephemeral: &hello.ephemeral,
        client_peer: &hello.peer,
        cert: &hello.cert,
        server_ephemeral: &challenge.ephemeral,
        server_peer: &challenge.node,
    };
    assert_eq!(transcript.hash(&dh), done.transcript_hash);

    let mut g = Group::new(
        "Handshake",
        "hello -> challenge -> auth -> welcome with fixed keys. Seeds: Ed25519 keys `node`, `user`, `peer` are seed(label); the X25519 ephemeral secrets are seed(`client-ephemeral`) and seed(`server-ephemeral`) used directly as X25519 private keys (RFC 7748 clamping applies). The node's clock is `now`. Server-side cases feed `messages` (client frames, JSON text) to a fresh node in order: every message but the last must succeed and the last is answered with `error`. Client-side cases give the `challenge` a client receives after sending the valid case's hello; the client must abort (HS-42 to HS-46): there is no wire error code, so `error` is null.",
    )
    .with("node_seed_label", "node")
    .with("user_seed_label", "user")
    .with("peer_seed_label", "peer")
    .with("client_ephemeral_seed_label", "client-ephemeral")
    .with("client_ephemeral_secret_hex", hex(&seed("client-ephemeral")))
    .with("server_ephemeral_seed_label", "server-ephemeral")
    .with("server_ephemeral_secret_hex", hex(&seed("server-ephemeral")))
    .with("now", NOW);

    let hello_text = cframe(ClientFrame::Hello(hello.clone()));
    let auth_text = cframe(ClientFrame::Auth(auth.clone()));
    g.push(
        Case::valid(
            "hs-valid-full",
            "The complete handshake: every frame, the transcript and both signatures.",
            &["HS-17", "HS-18", "HS-19", "HS-28", "HS-36", "SIGN-11"],
        )
        .with("side", "both")
        .with("messages", vec![hello_text.clone(), auth_text.clone()])
        .with("hello", hello_text.clone())
        .with("challenge", sframe(ServerFrame::Challenge(challenge.clone())))
        .with("auth", auth_text.clone())
        .with("welcome", sframe(ServerFrame::Welcome(welcome)))
        .with("transcript_canonical", String::from_utf8_lossy(&transcript.canonical_value().to_jcs()).into_owned())
        .with("transcript_canonical_hex", hex(&transcript.canonical_value().to_jcs()))
        .with("dh_hex", hex(&dh))
        .with("transcript_hash_input_hex", hex(&transcript.hash_input(&dh)))
        .with("transcript_hash_hex", hex(&done.transcript_hash))
        .with("server_signature", challenge.sig.to_string())
        .with("client_signature", auth.sig.to_string())
        .with(
            "server_signing_bytes_hex",
            hex(&kith_proto::signing::prefixed(Context::HandshakeServer, &done.transcript_hash)),
        )
        .with(
            "client_signing_bytes_hex",
            hex(&kith_proto::signing::prefixed(Context::HandshakeClient, &done.transcript_hash)),
        ),
    );

    let hello_with = |f: &dyn Fn(&mut Value)| {
        let mut v = serde_json::to_value(ClientFrame::Hello(hello.clone())).unwrap_or_default();
        f(&mut v);
        v.to_string()
    };
    let hello_cert = |c: &Certificate| {
        let mut h = hello.clone();
        h.cert = c.clone();
        cframe(ClientFrame::Hello(h))
    };
    let inv = |id: &str, comment: &str, reqs: &[&str], flags: &[&str], code: ErrorCode, msgs: Vec<String>| {
        server_case(Case::invalid(id, comment, reqs, flags, code), msgs)
    };
    g.push(inv(
        "hs-invalid-unsupported-version",
        "hello asks for kith/2.",
        &["HS-22"],
        &["UnsupportedVersion"],
        UnsupportedVersion,
        vec![hello_with(&|v| v["version"] = json!("kith/2"))],
    ));
    g.push(inv(
        "hs-invalid-cert-expired",
        "The certificate expires exactly at now.",
        &["HS-26", "CERT-6"],
        &["Expired"],
        CertExpired,
        vec![hello_cert(&Certificate::issue(&user, peer.public(), NOW))],
    ));
    g.push(inv(
        "hs-invalid-cert-other-peer",
        "A certificate for `peer-other` presented by `peer`.",
        &["HS-25", "CERT-5"],
        &["WrongPeer"],
        BadCertificate,
        vec![hello_cert(&Certificate::issue(&user, key("peer-other").public(), EXPIRES))],
    ));
    let mut forged = Certificate::issue(&key("mallory"), peer.public(), EXPIRES);
    forged.user = user.public();
    g.push(inv(
        "hs-invalid-cert-wrong-signer",
        "A certificate naming `user`, signed by `mallory`.",
        &["HS-25", "CERT-4"],
        &["WrongSigner"],
        BadCertificate,
        vec![hello_cert(&forged)],
    ));
    let mut ctx_cert = cert.clone();
    let unsigned = {
        let mut v = serde_json::to_value(&cert).unwrap_or_default();
        v.as_object_mut().map(|m| m.remove("sig"));
        kith_proto::canonical::CanonicalValue::from_json(&v).unwrap_or(kith_proto::canonical::CanonicalValue::Null)
    };
    ctx_cert.sig = user.sign(Context::IdentityNote, &unsigned);
    g.push(inv(
        "hs-invalid-cert-wrong-context",
        "The certificate signed under kith/1/identity-note.",
        &["HS-25", "CERT-4", "SIGN-9"],
        &["WrongContext"],
        BadCertificate,
        vec![hello_cert(&ctx_cert)],
    ));
    g.push(inv(
        "hs-invalid-cert-bad-encoding",
        "cert.user in uppercase hex: the certificate's defects are bad_certificate, not bad_encoding.",
        &["HS-25", "CERT-3"],
        &["NonLowercaseHex"],
        BadCertificate,
        vec![hello_with(&|v| {
            let u = v["cert"]["user"].as_str().unwrap_or_default().to_uppercase();
            v["cert"]["user"] = json!(u);
        })],
    ));
    g.push(inv(
        "hs-invalid-small-order-ephemeral",
        "The client's ephemeral key is u = 0: the shared secret is all zero.",
        &["HS-27"],
        &["SmallOrderEphemeral"],
        BadHandshake,
        vec![{
            let mut h = hello.clone();
            h.ephemeral = EphemeralKey::from_bytes([0; 32]);
            cframe(ClientFrame::Hello(h))
        }],
    ));
    g.push(inv(
        "hs-invalid-peer-weak",
        "hello.peer is a small-order key.",
        &["HS-23", "ENC-14"],
        &["SmallOrderKey"],
        WeakKey,
        vec![hello_with(&|v| v["peer"] = json!(format!("01{}", "00".repeat(31))))],
    ));
    g.push(inv(
        "hs-invalid-ephemeral-encoding",
        "hello.ephemeral in uppercase hex.",
        &["HS-24", "ENC-11"],
        &["NonLowercaseHex"],
        BadEncoding,
        vec![hello_with(&|v| {
            let e = v["ephemeral"].as_str().unwrap_or_default().to_uppercase();
            v["ephemeral"] = json!(e);
        })],
    ));
    g.push(inv(
        "hs-invalid-order-state-before-fields",
        "A second hello, with a small-order peer, while awaiting auth: H1 (state) is checked before the hello's members.",
        &["HS-20", "HS-23"],
        &["OutOfOrder"],
        BadHandshake,
        vec![hello_text.clone(), hello_with(&|v| v["peer"] = json!(format!("01{}", "00".repeat(31))))],
    ));
    g.push(inv(
        "hs-invalid-order-version-before-peer",
        "hello with version kith/2 and a small-order peer: H3 (version) is checked before H4 (peer).",
        &["HS-22", "HS-23"],
        &["UnsupportedVersion"],
        UnsupportedVersion,
        vec![hello_with(&|v| {
            v["version"] = json!("kith/2");
            v["peer"] = json!(format!("01{}", "00".repeat(31)));
        })],
    ));
    g.push(inv(
        "hs-invalid-order-peer-before-ephemeral",
        "hello with a small-order peer and an uppercase ephemeral: H4 (peer) before H5 (ephemeral), although ephemeral comes first in the text.",
        &["HS-23", "HS-24"],
        &["SmallOrderKey"],
        WeakKey,
        vec![hello_with(&|v| {
            v["peer"] = json!(format!("01{}", "00".repeat(31)));
            let e = v["ephemeral"].as_str().unwrap_or_default().to_uppercase();
            v["ephemeral"] = json!(e);
        })],
    ));
    g.push(inv(
        "hs-invalid-missing-cert",
        "hello without cert.",
        &["HS-21"],
        &["MissingField"],
        InvalidRequest,
        vec![hello_with(&|v| {
            v.as_object_mut().map(|m| m.remove("cert"));
        })],
    ));
    g.push(inv(
        "hs-invalid-second-hello",
        "A second hello while awaiting auth.",
        &["HS-20"],
        &["OutOfOrder"],
        BadHandshake,
        vec![hello_text.clone(), hello_text.clone()],
    ));
    g.push(inv(
        "hs-invalid-auth-before-hello",
        "auth as the first message.",
        &["HS-30"],
        &["OutOfOrder"],
        BadHandshake,
        vec![auth_text.clone()],
    ));
    let mut flipped = *auth.sig.as_bytes();
    flipped[0] ^= 1;
    g.push(inv(
        "hs-invalid-auth-bad-signature",
        "auth.sig with one bit flipped.",
        &["HS-33"],
        &["ModifiedSignature"],
        BadSignature,
        vec![
            hello_text.clone(),
            cframe(ClientFrame::Auth(Auth { id: RequestId::small(2), sig: Signature::from_bytes(flipped) })),
        ],
    ));
    // The same client keys and hello, but the auth comes from a handshake with another server
    // ephemeral: its transcript hash differs.
    let (mut cl2, hello2) = client(cert.clone());
    let mut sv2 = server("server-ephemeral-other");
    let challenge2 = sv2.handle_hello(&hello2, NOW).unwrap_or_else(|e| panic!("{e}"));
    let replayed = cl2.handle_challenge(&challenge2, RequestId::small(2)).unwrap_or_else(|e| panic!("{e}"));
    g.push(inv(
        "hs-invalid-auth-replayed",
        "An auth made for another handshake (same hello, server ephemeral seed(`server-ephemeral-other`)).",
        &["HS-33", "HS-15"],
        &["ReplayedAuth"],
        BadSignature,
        vec![hello_text.clone(), cframe(ClientFrame::Auth(replayed))],
    ));
    let th = done.transcript_hash;
    g.push(inv(
        "hs-invalid-auth-server-context",
        "The peer signs th under kith/1/hs-server.",
        &["HS-33", "SIGN-9"],
        &["WrongContext"],
        BadSignature,
        vec![
            hello_text.clone(),
            cframe(ClientFrame::Auth(Auth {
                id: RequestId::small(2),
                sig: sign_transcript(&peer, Context::HandshakeServer, &th),
            })),
        ],
    ));
    g.push(inv(
        "hs-invalid-auth-by-user-key",
        "auth signed by the user key instead of the peer key.",
        &["HS-33"],
        &["WrongSigner"],
        BadSignature,
        vec![
            hello_text.clone(),
            cframe(ClientFrame::Auth(Auth {
                id: RequestId::small(2),
                sig: sign_transcript(&user, Context::HandshakeClient, &th),
            })),
        ],
    ));
    g.push(inv(
        "hs-invalid-auth-missing-sig",
        "auth without sig.",
        &["HS-31"],
        &["MissingField"],
        InvalidRequest,
        vec![hello_text.clone(), r#"{"id":2,"type":"auth"}"#.to_owned()],
    ));
    g.push(inv(
        "hs-invalid-auth-sig-encoding",
        "auth.sig of 126 characters.",
        &["HS-32", "ENC-12"],
        &["WrongLength"],
        BadEncoding,
        vec![hello_text.clone(), format!(r#"{{"id":2,"sig":"{}","type":"auth"}}"#, &auth.sig.to_string()[..126])],
    ));

    // Client side.
    let impostor = key("node-impostor");
    let mut sv3 = ServerHandshake::new(impostor, seed("server-ephemeral"));
    let wrong_node = sv3.handle_hello(&hello, NOW).unwrap_or_else(|e| panic!("{e}"));
    g.push(client_case(
        "hs-invalid-challenge-wrong-node",
        "The challenge is signed by `node-impostor`, not the dialled node key; a client that trusted node_info_ok.node (which the impostor controls) instead of the address would accept it.",
        &["HS-42", "HS-45", "HS-13"],
        &["WrongNodeKey"],
        sframe(ServerFrame::Challenge(wrong_node)),
    ));
    let mut bad_sig = challenge.clone();
    let mut b = *bad_sig.sig.as_bytes();
    b[5] ^= 1;
    bad_sig.sig = Signature::from_bytes(b);
    g.push(client_case(
        "hs-invalid-challenge-bad-signature",
        "challenge.sig with one bit flipped.",
        &["HS-44"],
        &["ModifiedSignature"],
        sframe(ServerFrame::Challenge(bad_sig)),
    ));
    let mut ctx = challenge.clone();
    ctx.sig = sign_transcript(&node, Context::HandshakeClient, &th);
    g.push(client_case(
        "hs-invalid-challenge-client-context",
        "The node signs th under kith/1/hs-client.",
        &["HS-44", "SIGN-9"],
        &["WrongContext"],
        sframe(ServerFrame::Challenge(ctx)),
    ));
    let zero = Challenge {
        id: RequestId::small(1),
        ephemeral: EphemeralKey::from_bytes([0; 32]),
        node: node.public(),
        sig: challenge.sig,
    };
    g.push(client_case(
        "hs-invalid-challenge-zero-ephemeral",
        "challenge.ephemeral is u = 0: dh is all zero.",
        &["HS-43"],
        &["SmallOrderEphemeral"],
        sframe(ServerFrame::Challenge(zero)),
    ));
    g
}

/// The file.
pub fn file() -> Value {
    vector_file(
        "Kith handshake",
        "The four-message handshake of spec chapter 05 from fixed keys: th = SHA-256(\"kith/1/transcript\" || 0x00 || canonical(T) || dh); the node signs \"kith/1/hs-server\" || 0x00 || th, the peer \"kith/1/hs-client\" || 0x00 || th.",
        vec![group()],
    )
}
