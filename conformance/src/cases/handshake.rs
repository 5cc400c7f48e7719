//! Handshake cases (spec chapters 04 and 05): `HS-*`, and the client's own checks, `CLI-*`.

use std::time::Duration;

use kith_proto::account::AccountRequest;
use kith_proto::cert::Certificate;
use kith_proto::handshake::{sign_transcript, Auth, ClientConfig, ClientHandshake, Hello};
use kith_proto::version::PROTOCOL_VERSION;
use kith_proto::{ClientFrame, Context, ErrorCode, PublicKey, SecretKey, ServerFrame};
use serde_json::{json, Value};

use crate::case::{
    check, check_eq, expect_close_only, expect_error, expect_error_then_close, Case, CaseResult, Ctx, Failure,
    Level::*, Ops,
};
use crate::client::{counted_id, now_ms, random_bytes, ClientError, Connection, DEFAULT_WAIT};
use crate::launch::short_handshake_timeout;
use crate::{run, want};

/// A handshake in progress, driven by hand.
pub(crate) struct Hs {
    pub conn: Connection,
    pub client: ClientHandshake,
    pub hello: Hello,
    pub peer: SecretKey,
}

/// Opens a connection and prepares (but does not send) a hello for `user`'s cert on a fresh
/// peer key, expiring at `expires`.
pub(crate) async fn prepare(ctx: &mut Ctx, user: &SecretKey, expires: u64) -> Result<Hs, Failure> {
    let mut conn = ctx.connect().await?;
    let peer = SecretKey::random();
    let cert = Certificate::issue(user, peer.public(), expires);
    let config =
        ClientConfig { peer: peer.clone(), cert, expected_node: ctx.target.node_key, version: PROTOCOL_VERSION.into() };
    let id = conn.next_id();
    let (client, hello) = ClientHandshake::start(config, random_bytes(), id);
    Ok(Hs { conn, client, hello, peer })
}

fn in_an_hour() -> u64 {
    now_ms() + 3_600_000
}

/// Sends a hello given as JSON and returns the answer.
async fn send_hello_json(conn: &mut Connection, v: Value) -> Result<ServerFrame, Failure> {
    let id = v.get("id").and_then(Value::as_u64).unwrap_or(0);
    conn.send_text(&v.to_string()).await?;
    Ok(conn.await_answer(counted_id(id), DEFAULT_WAIT).await?)
}

fn hello_json(h: &Hello) -> Value {
    serde_json::to_value(ClientFrame::Hello(h.clone())).unwrap_or_default()
}

/// Expects a handshake error `code`, then nothing but the close with code 1008 and the error
/// code as reason ([HS-35], [FRAME-31], [FRAME-32]).
pub(crate) async fn refused_and_closed(conn: &mut Connection, answer: ServerFrame, code: ErrorCode) -> CaseResult {
    expect_error_then_close(conn, answer, code, 1008).await.map(|_| ())
}

/// Sends the hello, checks the challenge, returns the valid auth (unsent).
async fn through_challenge(hs: &mut Hs) -> Result<Auth, Failure> {
    hs.conn.send(&ClientFrame::Hello(hs.hello.clone())).await?;
    let answer = hs.conn.await_answer(hs.hello.id, DEFAULT_WAIT).await?;
    let challenge = want!(answer, Challenge);
    let id = hs.conn.next_id();
    hs.client
        .handle_challenge(&challenge, id)
        .map_err(|e| Failure::fail("a challenge that verifies against the dialled node key (HS-18)", e.to_string()))
}

/// Prepares a handshake for `user`, sends its hello as JSON that `edit` changes, and expects
/// the hello refused with `code` and the connection closed.
async fn hello_refused(
    ctx: &mut Ctx,
    user: &SecretKey,
    code: ErrorCode,
    edit: impl FnOnce(&mut Value) + Send,
) -> CaseResult {
    let mut hs = prepare(ctx, user, in_an_hour()).await?;
    let mut v = hello_json(&hs.hello);
    edit(&mut v);
    let answer = send_hello_json(&mut hs.conn, v).await?;
    refused_and_closed(&mut hs.conn, answer, code).await
}

async fn send_auth(conn: &mut Connection, auth: Auth) -> Result<ServerFrame, Failure> {
    let id = auth.id;
    conn.send(&ClientFrame::Auth(auth)).await?;
    Ok(conn.await_answer(id, DEFAULT_WAIT).await?)
}

fn account_req(id: kith_proto::RequestId) -> ClientFrame {
    ClientFrame::Account(kith_proto::account::AccountRequest { id })
}

fn node_info_req(id: kith_proto::RequestId) -> ClientFrame {
    ClientFrame::NodeInfo(kith_proto::node_info::NodeInfo { id })
}

/// A small-order Ed25519 point (the identity), hex.
pub(crate) const WEAK_KEY: &str = "0100000000000000000000000000000000000000000000000000000000000000";

/// The handshake cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "HS-VALID-001",
            Must,
            &["HS-28", "HS-36", "HS-18", "HS-3"],
            "a valid handshake yields challenge and welcome with the user's account",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                let mut hs = prepare(&mut ctx, &user, in_an_hour()).await?;
                let auth = through_challenge(&mut hs).await?;
                let auth_id = auth.id;
                let answer = send_auth(&mut hs.conn, auth).await?;
                let welcome = want!(answer, Welcome);
                check_eq("welcome.id", welcome.id, auth_id)?;
                check_eq("welcome.account.key", welcome.account.key, user.public())
            }),
        ),
        Case::new(
            "HS-VALID-002",
            Must,
            &["HS-37", "ACCT-2", "ACCT-3"],
            "a certificate by the node key logs in as the admin, with null allowances",
            run!(|ctx| {
                let admin = ctx.admin().await?;
                let a = &admin.account;
                check_eq("admin key", a.key, ctx.target.node_key)?;
                check(
                    a.parent.is_none() && a.invite_allowance.is_none() && a.publish_allowance.is_none(),
                    "parent and allowances null",
                    a,
                )
            }),
        ),
        Case::new(
            "HS-CHALLENGE-001",
            Must,
            &["HS-28", "HS-5"],
            "the challenge echoes the hello id and names the node key",
            run!(|ctx| {
                let mut hs = prepare(&mut ctx, &SecretKey::random(), in_an_hour()).await?;
                hs.conn.send(&ClientFrame::Hello(hs.hello.clone())).await?;
                let answer = hs.conn.await_answer(hs.hello.id, DEFAULT_WAIT).await?;
                let c = want!(answer, Challenge);
                check_eq("challenge.node", c.node, ctx.target.node_key)
            }),
        ),
        Case::new(
            "HS-EPHEMERAL-001",
            Must,
            &["HS-14", "HS-15"],
            "the node uses a fresh ephemeral key for every handshake",
            run!(|ctx| {
                let mut seen = Vec::new();
                for _ in 0..3 {
                    let mut hs = prepare(&mut ctx, &SecretKey::random(), in_an_hour()).await?;
                    hs.conn.send(&ClientFrame::Hello(hs.hello.clone())).await?;
                    let answer = hs.conn.await_answer(hs.hello.id, DEFAULT_WAIT).await?;
                    let c = want!(answer, Challenge);
                    check(!seen.contains(&c.ephemeral), "a new server ephemeral key", c.ephemeral)?;
                    seen.push(c.ephemeral);
                }
                Ok(())
            }),
        ),
        Case::new(
            "HS-EXPIRED-001",
            Must,
            &["HS-26", "CERT-6", "HS-35", "FRAME-32"],
            "an expired certificate is refused with cert_expired and the connection closed 1008",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                let mut hs = prepare(&mut ctx, &user, now_ms() - 60_000).await?;
                let answer = send_hello_json(&mut hs.conn, hello_json(&hs.hello)).await?;
                refused_and_closed(&mut hs.conn, answer, ErrorCode::CertExpired).await
            }),
        ),
        Case::new(
            "HS-SESSION-END-001",
            Must,
            &["HS-55", "FRAME-28"],
            "a session ends when its certificate expires: a closing push cert_expired within 1000 ms of expires, \
             then close 1000",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                let expires = now_ms() + 3_000;
                let mut s = ctx.login_until(&user, expires).await?;
                let answer = s.call(|id| ClientFrame::Account(AccountRequest { id })).await?;
                want!(answer, AccountOk);
                // HS-55 allows 1000 ms after `expires`; 1500 ms more for the two clocks and the network.
                let wait = Duration::from_millis(expires.saturating_sub(now_ms()) + 2_500);
                let frame = s.conn.recv_frame(wait).await.map_err(|e| {
                    Failure::fail("a closing push cert_expired within 1000 ms of the certificate's expires (HS-55)", e.to_string())
                })?;
                let closing = want!(frame, Closing);
                check_eq("closing.code", closing.code, ErrorCode::CertExpired)?;
                expect_close_only(&mut s.conn, "the closing push cert_expired", 1000, "cert_expired").await
            }),
        ),
        Case::new(
            "HS-CERT-PEER-001",
            Must,
            &["CERT-5", "HS-25", "HS-35"],
            "a certificate for another peer key is refused with bad_certificate",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                let mut hs = prepare(&mut ctx, &user, in_an_hour()).await?;
                hs.hello.cert = Certificate::issue(&user, SecretKey::random().public(), in_an_hour());
                let answer = send_hello_json(&mut hs.conn, hello_json(&hs.hello)).await?;
                refused_and_closed(&mut hs.conn, answer, ErrorCode::BadCertificate).await
            }),
        ),
        Case::new(
            "HS-CERT-OTHER-USER-001",
            Must,
            &["CERT-4", "HS-25"],
            "a certificate naming a user but signed by another user is refused",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                let (other, _) = ctx.invite(0, 10).await?;
                let mut hs = prepare(&mut ctx, &user, in_an_hour()).await?;
                let forged = Certificate::issue(&other, hs.peer.public(), in_an_hour());
                hs.hello.cert.sig = forged.sig;
                let answer = send_hello_json(&mut hs.conn, hello_json(&hs.hello)).await?;
                refused_and_closed(&mut hs.conn, answer, ErrorCode::BadCertificate).await
            }),
        ),
        Case::new(
            "HS-CERT-EXTRA-001",
            Must,
            &["CERT-1", "HS-25"],
            "a certificate with an unknown member is refused with bad_certificate",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                hello_refused(&mut ctx, &user, ErrorCode::BadCertificate, |v| v["cert"]["extra"] = json!(1)).await
            }),
        ),
        Case::new(
            "HS-CERT-MISSING-001",
            Must,
            &["CERT-1", "HS-25"],
            "a certificate without `expires` is refused with bad_certificate",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                hello_refused(&mut ctx, &user, ErrorCode::BadCertificate, |v| {
                    if let Some(c) = v["cert"].as_object_mut() {
                        c.remove("expires");
                    }
                })
                .await
            }),
        ),
        Case::new(
            "HS-CERT-KIND-001",
            Must,
            &["CERT-2", "HS-25"],
            "a certificate whose `expires` is a string is refused with bad_certificate",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                hello_refused(&mut ctx, &user, ErrorCode::BadCertificate, |v| {
                    v["cert"]["expires"] = json!(in_an_hour().to_string())
                })
                .await
            }),
        ),
        Case::new(
            "HS-CERT-ENCODING-001",
            Must,
            &["CERT-3", "HS-25"],
            "a certificate whose user key is uppercase hex is refused with bad_certificate",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                hello_refused(&mut ctx, &user, ErrorCode::BadCertificate, |v| {
                    v["cert"]["user"] = json!(user.public().to_string().to_uppercase())
                })
                .await
            }),
        ),
        Case::new(
            "HS-CERT-WEAK-001",
            Must,
            &["CERT-3", "HS-25"],
            "a certificate whose user key is of small order is refused with bad_certificate",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                hello_refused(&mut ctx, &user, ErrorCode::BadCertificate, |v| v["cert"]["user"] = json!(WEAK_KEY)).await
            }),
        ),
        Case::new(
            "HS-CERT-ORDER-001",
            Must,
            &["CERT-6"],
            "an expired certificate with a bad signature is bad_certificate, not cert_expired",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                let mut hs = prepare(&mut ctx, &user, now_ms() - 60_000).await?;
                let other = Certificate::issue(&SecretKey::random(), hs.peer.public(), now_ms() - 60_000);
                hs.hello.cert.sig = other.sig;
                let answer = send_hello_json(&mut hs.conn, hello_json(&hs.hello)).await?;
                refused_and_closed(&mut hs.conn, answer, ErrorCode::BadCertificate).await
            }),
        ),
        Case::new(
            "HS-AUTH-SIG-001",
            Must,
            &["HS-33", "HS-35", "FRAME-32"],
            "an auth whose signature does not verify is refused with bad_signature",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                let mut hs = prepare(&mut ctx, &user, in_an_hour()).await?;
                let mut auth = through_challenge(&mut hs).await?;
                auth.sig = hs.peer.sign_raw(b"not the transcript");
                let answer = send_auth(&mut hs.conn, auth).await?;
                refused_and_closed(&mut hs.conn, answer, ErrorCode::BadSignature).await
            }),
        ),
        Case::new(
            "HS-AUTH-CONTEXT-001",
            Must,
            &["HS-33", "HS-19", "SIGN-9"],
            "an auth signed under the server's context string is refused",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                let mut hs = prepare(&mut ctx, &user, in_an_hour()).await?;
                let mut auth = through_challenge(&mut hs).await?;
                let th = hs.client.transcript_hash().ok_or_else(|| Failure::fail("a transcript hash", "none"))?;
                auth.sig = sign_transcript(&hs.peer, Context::HandshakeServer, &th);
                let answer = send_auth(&mut hs.conn, auth).await?;
                refused_and_closed(&mut hs.conn, answer, ErrorCode::BadSignature).await
            }),
        ),
        Case::new(
            "HS-AUTH-USERKEY-001",
            Must,
            &["HS-33"],
            "an auth signed by the user key instead of the peer key is refused",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                let mut hs = prepare(&mut ctx, &user, in_an_hour()).await?;
                let mut auth = through_challenge(&mut hs).await?;
                let th = hs.client.transcript_hash().ok_or_else(|| Failure::fail("a transcript hash", "none"))?;
                auth.sig = sign_transcript(&user, Context::HandshakeClient, &th);
                let answer = send_auth(&mut hs.conn, auth).await?;
                refused_and_closed(&mut hs.conn, answer, ErrorCode::BadSignature).await
            }),
        ),
        Case::new(
            "HS-REPLAY-001",
            Must,
            &["HS-33", "HS-14"],
            "an auth replayed from an earlier handshake (same hello) is refused",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                let mut first = prepare(&mut ctx, &user, in_an_hour()).await?;
                let auth = through_challenge(&mut first).await?;
                let answer = send_auth(&mut first.conn, auth.clone()).await?;
                want!(answer, Welcome);
                // Replay the recorded hello and auth on a second connection.
                let mut conn = ctx.connect().await?;
                conn.send(&ClientFrame::Hello(first.hello.clone())).await?;
                let answer = conn.await_answer(first.hello.id, DEFAULT_WAIT).await?;
                want!(answer, Challenge);
                let answer = send_auth(&mut conn, auth).await?;
                refused_and_closed(&mut conn, answer, ErrorCode::BadSignature).await
            }),
        ),
        Case::new(
            "HS-UNKNOWN-USER-001",
            Must,
            &["HS-34", "HS-29", "HS-35", "FRAME-32"],
            "a user without an account gets a challenge, then unknown_user at auth",
            run!(|ctx| {
                let mut hs = prepare(&mut ctx, &SecretKey::random(), in_an_hour()).await?;
                let auth = through_challenge(&mut hs).await?;
                let answer = send_auth(&mut hs.conn, auth).await?;
                refused_and_closed(&mut hs.conn, answer, ErrorCode::UnknownUser).await
            }),
        ),
        Case::new(
            "HS-TIMEOUT-001",
            Must,
            &["HS-40", "FRAME-31", "FRAME-32"],
            "a connection that never says hello gets handshake_timeout (id null), then nothing but close 1008",
            run!(|ctx| {
                let limit = ctx.target.limits.handshake_timeout_ms;
                if limit > 20_000 {
                    return Err(Failure::not_applicable(format!(
                        "handshake_timeout_ms {limit} is too long to wait for"
                    )));
                }
                let mut conn = ctx.connect().await?;
                let frame = conn.recv_frame(Duration::from_millis(limit + 2000)).await?;
                let e = expect_error_then_close(&mut conn, frame, ErrorCode::HandshakeTimeout, 1008).await?;
                check(e.id.is_none(), "id null", e.id)
            }),
        )
        .timeout_ms(25_000)
        .prefer_own_node(short_handshake_timeout()),
        Case::new(
            "HS-TIMEOUT-002",
            Must,
            &["HS-40", "FRAME-31", "FRAME-32"],
            "a handshake stalled after the challenge times out: handshake_timeout (id null), then nothing but close 1008",
            run!(|ctx| {
                let limit = ctx.target.limits.handshake_timeout_ms;
                if limit > 20_000 {
                    return Err(Failure::not_applicable(format!(
                        "handshake_timeout_ms {limit} is too long to wait for"
                    )));
                }
                let (user, _) = ctx.invite(0, 10).await?;
                let mut hs = prepare(&mut ctx, &user, in_an_hour()).await?;
                let _auth = through_challenge(&mut hs).await?;
                let frame = hs.conn.recv_frame(Duration::from_millis(limit + 2000)).await?;
                let e = expect_error_then_close(&mut hs.conn, frame, ErrorCode::HandshakeTimeout, 1008).await?;
                check(e.id.is_none(), "id null", e.id)
            }),
        )
        .timeout_ms(25_000)
        .prefer_own_node(short_handshake_timeout()),
        Case::new(
            "HS-TIMEOUT-003",
            Must,
            &["HS-40"],
            "a completed handshake is not timed out later",
            run!(|ctx| {
                let limit = ctx.target.limits.handshake_timeout_ms;
                if limit > 20_000 {
                    return Err(Failure::not_applicable(format!(
                        "handshake_timeout_ms {limit} is too long to wait for"
                    )));
                }
                let mut s = ctx.user().await?;
                tokio::time::sleep(Duration::from_millis(limit + 500)).await;
                s.account().await.map(|_| ())
            }),
        )
        .timeout_ms(25_000)
        .prefer_own_node(short_handshake_timeout()),
        Case::new(
            "HS-PREAUTH-001",
            Must,
            &["HS-38", "HS-39"],
            "`account` before the handshake is not_authenticated and the connection stays open",
            run!(|ctx| {
                let mut conn = ctx.connect().await?;
                let answer = conn.call(account_req).await?;
                expect_error(answer, ErrorCode::NotAuthenticated)?;
                let answer = conn.call(node_info_req).await?;
                want!(answer, NodeInfoOk);
                Ok(())
            }),
        ),
        Case::new(
            "HS-PREAUTH-002",
            Must,
            &["HS-38"],
            "`publish` before the handshake is not_authenticated",
            run!(|ctx| {
                let mut conn = ctx.connect().await?;
                let mut feed = crate::case::Feed::stranger();
                let e = feed.next("too early");
                let answer = conn.publish(&e).await?;
                expect_error(answer, ErrorCode::NotAuthenticated).map(|_| ())
            }),
        ),
        Case::new(
            "HS-PREAUTH-003",
            Must,
            &["HS-38", "HS-39"],
            "a request between hello and auth is not_authenticated and the handshake still completes",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                let mut hs = prepare(&mut ctx, &user, in_an_hour()).await?;
                let auth = through_challenge(&mut hs).await?;
                let answer =
                    hs.conn.call(|id| ClientFrame::Heads(kith_proto::feed::Heads { id, authors: vec![] })).await?;
                expect_error(answer, ErrorCode::NotAuthenticated)?;
                let answer = send_auth(&mut hs.conn, auth).await?;
                want!(answer, Welcome);
                Ok(())
            }),
        ),
        Case::new(
            "HS-NODEINFO-001",
            Must,
            &["HS-4", "HS-5"],
            "node_info before hello answers with the node key",
            run!(|ctx| {
                let mut conn = ctx.connect().await?;
                let answer = conn.call(node_info_req).await?;
                let info = want!(answer, NodeInfoOk);
                check_eq("node_info_ok.node", info.node, ctx.target.node_key)?;
                check(info.versions.iter().any(|v| v == PROTOCOL_VERSION), "versions include kith/1", info.versions)
            }),
        ),
        Case::new(
            "HS-NODEINFO-002",
            Must,
            &["HS-4"],
            "node_info between hello and auth is answered",
            run!(|ctx| {
                let mut hs = prepare(&mut ctx, &SecretKey::random(), in_an_hour()).await?;
                let _ = through_challenge(&mut hs).await?;
                let answer = hs.conn.call(node_info_req).await?;
                want!(answer, NodeInfoOk);
                Ok(())
            }),
        ),
        Case::new(
            "HS-NODEINFO-003",
            Must,
            &["HS-4"],
            "node_info after welcome is answered",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s.call(node_info_req).await?;
                want!(answer, NodeInfoOk);
                Ok(())
            }),
        ),
        Case::new(
            "HS-LIMITS-001",
            Must,
            &["HS-6", "HS-7", "HS-8", "HS-9", "HS-10", "HS-11", "HS-56", "HS-57", "PRUNE-2"],
            "node_info limits are within the spec's bounds",
            run!(|ctx| {
                reported_limits_within(
                    &ctx.target.limits,
                    &["HS-6", "HS-7", "HS-8", "HS-9", "HS-10", "HS-11", "HS-56", "HS-57", "PRUNE-2"],
                )
            }),
        ),
        Case::new(
            "HS-LIMITS-002",
            Must,
            &["HS-52", "HS-53", "HS-54"],
            "node_info reports the resource limits within the spec's bounds, the same before and after welcome",
            run!(|ctx| {
                let l = ctx.target.limits.clone();
                reported_limits_within(&l, &["HS-52", "HS-53", "HS-54"])?;
                let mut s = ctx.user().await?;
                let answer = s.call(node_info_req).await?;
                check_eq("limits after welcome", want!(answer, NodeInfoOk).limits, l)
            }),
        ),
        Case::new(
            "HS-VERSION-001",
            Must,
            &["HS-22", "HS-35", "FRAME-32"],
            "a hello for an unknown version is refused with unsupported_version",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                hello_refused(&mut ctx, &user, ErrorCode::UnsupportedVersion, |v| v["version"] = json!("kith/99")).await
            }),
        ),
        Case::new(
            "HS-HELLO-TWICE-001",
            Must,
            &["HS-20"],
            "a second hello while awaiting auth is bad_handshake",
            run!(|ctx| {
                let mut hs = prepare(&mut ctx, &SecretKey::random(), in_an_hour()).await?;
                let _ = through_challenge(&mut hs).await?;
                let mut v = hello_json(&hs.hello);
                let id = hs.conn.next_id();
                v["id"] = json!(id.get());
                let answer = send_hello_json(&mut hs.conn, v).await?;
                refused_and_closed(&mut hs.conn, answer, ErrorCode::BadHandshake).await
            }),
        ),
        Case::new(
            "HS-HELLO-TWICE-002",
            Must,
            &["HS-20", "HS-35", "FRAME-32"],
            "a hello after welcome is bad_handshake, then nothing but close 1008",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let peer = SecretKey::random();
                let cert = Certificate::issue(&s.user, peer.public(), in_an_hour());
                let config =
                    ClientConfig { peer, cert, expected_node: ctx.target.node_key, version: PROTOCOL_VERSION.into() };
                let id = s.conn.next_id();
                let (_, hello) = ClientHandshake::start(config, random_bytes(), id);
                let answer = send_hello_json(&mut s.conn, hello_json(&hello)).await?;
                refused_and_closed(&mut s.conn, answer, ErrorCode::BadHandshake).await
            }),
        ),
        Case::new(
            "HS-AUTH-EARLY-001",
            Must,
            &["HS-30", "HS-35", "FRAME-32"],
            "an auth before any hello is bad_handshake",
            run!(|ctx| {
                let mut conn = ctx.connect().await?;
                let id = conn.next_id();
                let sig = SecretKey::random().sign_raw(b"x");
                let answer = send_auth(&mut conn, Auth { id, sig }).await?;
                refused_and_closed(&mut conn, answer, ErrorCode::BadHandshake).await
            }),
        ),
        Case::new(
            "HS-AUTH-TWICE-001",
            Must,
            &["HS-30", "HS-35", "FRAME-32"],
            "an auth after welcome is bad_handshake, then nothing but close 1008",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let id = s.conn.next_id();
                let sig = s.peer.sign_raw(b"x");
                let answer = send_auth(&mut s.conn, Auth { id, sig }).await?;
                refused_and_closed(&mut s.conn, answer, ErrorCode::BadHandshake).await
            }),
        ),
        Case::new(
            "HS-HELLO-FIELDS-001",
            Must,
            &["HS-21", "FRAME-32"],
            "a hello without `cert` is invalid_request",
            run!(|ctx| {
                hello_refused(&mut ctx, &SecretKey::random(), ErrorCode::InvalidRequest, |v| {
                    if let Some(o) = v.as_object_mut() {
                        o.remove("cert");
                    }
                })
                .await
            }),
        ),
        Case::new(
            "HS-HELLO-FIELDS-002",
            Must,
            &["HS-21"],
            "a hello whose `version` is a number is invalid_request",
            run!(|ctx| {
                hello_refused(&mut ctx, &SecretKey::random(), ErrorCode::InvalidRequest, |v| v["version"] = json!(1))
                    .await
            }),
        ),
        Case::new(
            "HS-PEER-ENCODING-001",
            Must,
            &["HS-23", "ENC-11"],
            "a hello whose peer key is uppercase hex is bad_encoding",
            run!(|ctx| {
                let mut hs = prepare(&mut ctx, &SecretKey::random(), in_an_hour()).await?;
                let mut v = hello_json(&hs.hello);
                v["peer"] = json!(hs.peer.public().to_string().to_uppercase());
                let answer = send_hello_json(&mut hs.conn, v).await?;
                refused_and_closed(&mut hs.conn, answer, ErrorCode::BadEncoding).await
            }),
        ),
        Case::new(
            "HS-PEER-WEAK-001",
            Must,
            &["HS-23", "ENC-14", "FRAME-32"],
            "a hello whose peer key is of small order is weak_key",
            run!(|ctx| {
                hello_refused(&mut ctx, &SecretKey::random(), ErrorCode::WeakKey, |v| v["peer"] = json!(WEAK_KEY)).await
            }),
        ),
        Case::new(
            "HS-EPHEMERAL-ENCODING-001",
            Must,
            &["HS-24", "ENC-12"],
            "a hello whose ephemeral key is 62 hex characters is bad_encoding",
            run!(|ctx| {
                hello_refused(&mut ctx, &SecretKey::random(), ErrorCode::BadEncoding, |v| {
                    v["ephemeral"] = json!("ab".repeat(31))
                })
                .await
            }),
        ),
        Case::new(
            "HS-EPHEMERAL-ZERO-001",
            Must,
            &["HS-27"],
            "a hello whose ephemeral key gives an all-zero shared secret is bad_handshake",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                hello_refused(&mut ctx, &user, ErrorCode::BadHandshake, |v| v["ephemeral"] = json!("00".repeat(32)))
                    .await
            }),
        ),
        Case::new(
            "HS-AUTH-FIELDS-001",
            Must,
            &["HS-31"],
            "an auth without `sig` is invalid_request",
            run!(|ctx| {
                let mut hs = prepare(&mut ctx, &SecretKey::random(), in_an_hour()).await?;
                let _ = through_challenge(&mut hs).await?;
                let answer = hs.conn.call_json(json!({"type": "auth"})).await?;
                refused_and_closed(&mut hs.conn, answer, ErrorCode::InvalidRequest).await
            }),
        ),
        Case::new(
            "HS-AUTH-ENCODING-001",
            Must,
            &["HS-32", "ENC-11"],
            "an auth whose `sig` is not hex is bad_encoding",
            run!(|ctx| {
                let mut hs = prepare(&mut ctx, &SecretKey::random(), in_an_hour()).await?;
                let _ = through_challenge(&mut hs).await?;
                let answer = hs.conn.call_json(json!({"type": "auth", "sig": "zz".repeat(64)})).await?;
                refused_and_closed(&mut hs.conn, answer, ErrorCode::BadEncoding).await
            }),
        ),
        Case::new(
            "HS-TIMEOUT-DEFAULT-001",
            Should,
            &["HS-41"],
            "the node's handshake timeout is the recommended 10000 ms",
            run!(|ctx| { check_eq("handshake_timeout_ms", ctx.target.limits.handshake_timeout_ms, 10_000) }),
        ),
        Case::new(
            "CLI-WRONG-NODE-001",
            Must,
            &["HS-42", "HS-45"],
            "the client aborts when the challenge names a key other than the one dialled",
            run!(|ctx| {
                let (user, _) = ctx.invite(0, 10).await?;
                let conn = ctx.connect().await?;
                let dialled: PublicKey = SecretKey::random().public();
                match crate::client::handshake(conn, dialled, &user, DEFAULT_WAIT).await {
                    Err(ClientError::Handshake(_)) => Ok(()),
                    Ok(_) => Err(Failure::fail(
                        "the client to abort (challenge.node differs from the dialled key)",
                        "welcome",
                    )),
                    Err(e) => Err(Failure::fail("a client-side handshake abort", e.to_string())),
                }
            }),
        ),
        Case::new(
            "CLI-BAD-SIG-001",
            Must,
            &["HS-44", "HS-45"],
            "the client aborts when the challenge signature does not verify",
            run!(|ctx| {
                let mut hs = prepare(&mut ctx, &SecretKey::random(), in_an_hour()).await?;
                hs.conn.send(&ClientFrame::Hello(hs.hello.clone())).await?;
                let answer = hs.conn.await_answer(hs.hello.id, DEFAULT_WAIT).await?;
                let mut challenge = want!(answer, Challenge);
                challenge.sig = SecretKey::random().sign_raw(b"forged");
                let id = hs.conn.next_id();
                check(
                    hs.client.handle_challenge(&challenge, id).is_err(),
                    "the client to refuse a forged challenge",
                    "it accepted",
                )
            }),
        ),
        Case::new(
            "CLI-WELCOME-001",
            Must,
            &["HS-36", "HS-47"],
            "the welcome's account key equals the certificate's user",
            run!(|ctx| {
                let s = ctx.user().await?;
                check_eq("welcome.account.key", s.account.key, s.user.public())
            }),
        ),
    ]
}

/// Fails listing every bound of the given rules that the reported limits break; the bounds are
/// the core's ([`kith_proto::node_info::Limits::violations`]), the same the reference node checks
/// its own configuration with.
fn reported_limits_within(l: &kith_proto::node_info::Limits, rules: &[&str]) -> CaseResult {
    let broken: Vec<String> =
        l.violations().into_iter().filter(|e| rules.contains(&e.rule)).map(|e| e.to_string()).collect();
    check(broken.is_empty(), format!("limits within the bounds of {}", rules.join(", ")), broken)
}
