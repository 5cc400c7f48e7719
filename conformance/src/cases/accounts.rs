//! Accounts (spec chapter 07): invites and their arithmetic, `INV-*`; key replacement,
//! `KEY-*`; removal, `RM-*`.

use kith_proto::account::{
    Account, AccountRequest, Invitees, KeyReplacement, RemoveUser, ReplaceKey, MAX_INVITEES_PAGE,
};
use kith_proto::{ClientFrame, ErrorCode, PublicKey, SecretKey, ServerFrame};
use serde_json::json;

use crate::case::{
    check_eq, entry_id, expect_close_only, expect_error, Case, CaseResult, Failure, Feed, Level::*, Ops,
};
use crate::cases::handshake::WEAK_KEY;
use crate::client::{fresh_name, now_ms, ClientError, Connection, Session, DEFAULT_WAIT};
use crate::launch::NodeConfig;
use crate::{run, want};

fn replace_req(
    node: PublicKey,
    old: &SecretKey,
    new: &SecretKey,
    expires: u64,
) -> impl FnOnce(kith_proto::RequestId) -> ClientFrame {
    let replacement = KeyReplacement::sign(node, old, new, expires);
    move |id| ClientFrame::ReplaceKey(ReplaceKey { id, replacement })
}

fn remove_req(key: PublicKey) -> impl FnOnce(kith_proto::RequestId) -> ClientFrame {
    move |id| ClientFrame::RemoveUser(RemoveUser { id, key })
}

fn later() -> u64 {
    now_ms() + 600_000
}

/// Expects a `closing` push with `code` as the next frame, then nothing but close 1000 with
/// the code as reason ([FRAME-28], [FRAME-31], [FRAME-32]).
async fn closed_with(conn: &mut Connection, code: ErrorCode) -> CaseResult {
    let frame = conn
        .recv_frame(DEFAULT_WAIT)
        .await
        .map_err(|e| Failure::fail(format!("a closing push {code}"), e.to_string()))?;
    let closing = want!(frame, Closing);
    check_eq("closing.code", closing.code, code)?;
    expect_close_only(conn, &format!("the closing push {code}"), 1000, code.as_str()).await
}

fn refused_login(r: Result<Session, Failure>, code: ErrorCode) -> CaseResult {
    match r {
        Ok(_) => Err(Failure::fail(format!("login refused with {code}"), "welcome")),
        Err(f) if f.got.contains(code.as_str()) => Ok(()),
        Err(f) => Err(Failure::fail(format!("login refused with {code}"), f.got)),
    }
}

async fn create(s: &mut Session, key: PublicKey, name: &str, n: u64, m: u64) -> Result<ServerFrame, Failure> {
    let name = name.to_owned();
    Ok(s.conn.request_json(json!({"type": "create_user", "key": key.to_string(), "name": name, "invite_allowance": n, "publish_allowance": m}), DEFAULT_WAIT).await?)
}

/// The account cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "INV-ACCOUNT-001",
            Must,
            &["ACCT-1", "ACCT-6"],
            "`account` answers the session's account with its seven members",
            run!(|ctx| {
                let mut s = ctx.user_with(3, 7).await?;
                let raw = s.conn.request_json(json!({"type": "account"}), DEFAULT_WAIT).await?;
                let a = want!(raw, AccountOk).account;
                check_eq("key", a.key, s.user.public())?;
                check_eq("allowances", (a.invite_allowance, a.publish_allowance), (Some(3), Some(7)))?;
                check_eq("counters", (a.published_entries, a.published_bytes), (0, 0))?;
                let text = s.conn.request_json(json!({"type": "account"}), DEFAULT_WAIT).await?.to_text();
                let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                let n = v["account"].as_object().map(|o| o.len()).unwrap_or(0);
                check_eq("number of account members", n, 7)?;
                // As it is now, not as `welcome` showed it ([ACCT-6]).
                s.invite_user(0, 0).await?;
                let a = s.account().await?;
                check_eq("allowances after an invite", (a.invite_allowance, a.publish_allowance), (Some(2), Some(7)))
            }),
        ),
        Case::new(
            "INV-CREATE-001",
            Must,
            &["ACCT-16", "ACCT-17"],
            "create_user makes the account as asked, with the inviter as parent",
            run!(|ctx| {
                let mut s = ctx.user_with(10, 50).await?;
                let key = SecretKey::random().public();
                let name = fresh_name();
                let a = s.create_user(key, &name, 2, 20).await?;
                check_eq("key", a.key, key)?;
                check_eq("name", a.name.as_str(), name.as_str())?;
                check_eq("parent", a.parent, Some(s.user.public()))?;
                check_eq("allowances", (a.invite_allowance, a.publish_allowance), (Some(2), Some(20)))?;
                check_eq("counters", (a.published_entries, a.published_bytes), (0, 0))
            }),
        ),
        Case::new(
            "INV-ARITH-001",
            Must,
            &["ACCT-14"],
            "inviting a child with allowance N costs the inviter 1 + N",
            run!(|ctx| {
                let mut s = ctx.user_with(10, 50).await?;
                s.invite_user(3, 5).await?;
                check_eq("invite_allowance", s.account().await?.invite_allowance, Some(6))
            }),
        ),
        Case::new(
            "INV-ARITH-002",
            Must,
            &["ACCT-15"],
            "inviting does not change the inviter's publish allowance",
            run!(|ctx| {
                let mut s = ctx.user_with(10, 50).await?;
                s.invite_user(0, 50).await?;
                check_eq("publish_allowance", s.account().await?.publish_allowance, Some(50))
            }),
        ),
        Case::new(
            "INV-EXHAUST-001",
            Must,
            &["ACCT-12"],
            "an inviter with 3 cannot give a child 3 (needs 4)",
            run!(|ctx| {
                let mut s = ctx.user_with(3, 5).await?;
                let answer = create(&mut s, SecretKey::random().public(), &fresh_name(), 3, 0).await?;
                expect_error(answer, ErrorCode::AllowanceExhausted).map(|_| ())
            }),
        ),
        Case::new(
            "INV-EXHAUST-002",
            Must,
            &["ACCT-12", "ACCT-14"],
            "spending the allowance exactly reaches 0; the next invite is refused",
            run!(|ctx| {
                let mut s = ctx.user_with(4, 5).await?;
                s.invite_user(3, 0).await?;
                check_eq("invite_allowance", s.account().await?.invite_allowance, Some(0))?;
                let r = s.create_user(SecretKey::random().public(), &fresh_name(), 0, 0).await;
                match r {
                    Err(ClientError::Refused(e)) if e.code == ErrorCode::AllowanceExhausted => Ok(()),
                    other => Err(Failure::fail("error `allowance_exhausted`", crate::case::shown(&other))),
                }
            }),
        ),
        Case::new(
            "INV-EXHAUST-003",
            Must,
            &["ACCT-12", "ACCT-16"],
            "a child can invite within its own allowance",
            run!(|ctx| {
                let (child, _) = ctx.invite(2, 5).await?;
                let mut c = ctx.login(&child).await?;
                c.invite_user(1, 5).await?;
                check_eq("child's invite_allowance", c.account().await?.invite_allowance, Some(0))
            }),
        ),
        Case::new(
            "INV-PUBLIMIT-001",
            Must,
            &["ACCT-13"],
            "a child's publish allowance above the inviter's is allowance_exhausted",
            run!(|ctx| {
                let mut s = ctx.user_with(5, 10).await?;
                let r = s.create_user(SecretKey::random().public(), &fresh_name(), 0, 11).await;
                match r {
                    Err(ClientError::Refused(e)) if e.code == ErrorCode::AllowanceExhausted => Ok(()),
                    other => Err(Failure::fail("error `allowance_exhausted`", crate::case::shown(&other))),
                }
            }),
        ),
        Case::new(
            "INV-NULL-001",
            Must,
            &["ACCT-7", "ACCT-4"],
            "create_user with a null allowance is invalid_request",
            run!(|ctx| {
                let mut admin = ctx.admin().await?;
                let answer = admin.conn.request_json(json!({"type": "create_user", "key": SecretKey::random().public().to_string(), "name": fresh_name(), "invite_allowance": null, "publish_allowance": 5}), DEFAULT_WAIT).await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "INV-MISSING-001",
            Must,
            &["ACCT-7"],
            "create_user without a name is invalid_request",
            run!(|ctx| {
                let mut admin = ctx.admin().await?;
                let answer = admin.conn.request_json(json!({"type": "create_user", "key": SecretKey::random().public().to_string(), "invite_allowance": 0, "publish_allowance": 5}), DEFAULT_WAIT).await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "INV-NAME-001",
            Must,
            &["ACCT-9"],
            "an uppercase name is invalid_request",
            run!(|ctx| {
                let mut admin = ctx.admin().await?;
                let answer = create(&mut admin, SecretKey::random().public(), "Alice", 0, 0).await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "INV-NAME-002",
            Must,
            &["ACCT-9"],
            "a name of 33 characters is invalid_request",
            run!(|ctx| {
                let mut admin = ctx.admin().await?;
                let answer = create(&mut admin, SecretKey::random().public(), &"a".repeat(33), 0, 0).await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "INV-NAME-003",
            Must,
            &["ACCT-9", "ACCT-16"],
            "a name of 32 characters of [a-z0-9_-] is accepted",
            run!(|ctx| {
                let mut admin = ctx.admin().await?;
                let name = format!("a_-9{}", &fresh_name()[1..]);
                let name = format!("{name}{}", "z".repeat(32 - name.len()));
                let answer = create(&mut admin, SecretKey::random().public(), &name, 0, 0).await?;
                want!(answer, CreateUserOk);
                Ok(())
            }),
        ),
        Case::new(
            "INV-NAME-TAKEN-001",
            Must,
            &["ACCT-11"],
            "a taken name is name_taken",
            run!(|ctx| {
                let mut admin = ctx.admin().await?;
                let name = fresh_name();
                admin.create_user(SecretKey::random().public(), &name, 0, 0).await?;
                let answer = create(&mut admin, SecretKey::random().public(), &name, 0, 0).await?;
                expect_error(answer, ErrorCode::NameTaken).map(|_| ())
            }),
        ),
        Case::new(
            "INV-KEY-TAKEN-001",
            Must,
            &["ACCT-10"],
            "the key of an existing account is key_taken",
            run!(|ctx| {
                let mut admin = ctx.admin().await?;
                let key = SecretKey::random().public();
                admin.create_user(key, &fresh_name(), 0, 0).await?;
                let answer = create(&mut admin, key, &fresh_name(), 0, 0).await?;
                expect_error(answer, ErrorCode::KeyTaken).map(|_| ())
            }),
        ),
        Case::new(
            "INV-KEY-TAKEN-002",
            Must,
            &["ACCT-10"],
            "the node key is key_taken",
            run!(|ctx| {
                let mut admin = ctx.admin().await?;
                let answer = create(&mut admin, ctx.target.node_key, &fresh_name(), 0, 0).await?;
                expect_error(answer, ErrorCode::KeyTaken).map(|_| ())
            }),
        ),
        Case::new(
            "INV-KEY-ENCODING-001",
            Must,
            &["ACCT-8"],
            "a key that is not hex is bad_encoding",
            run!(|ctx| {
                let mut admin = ctx.admin().await?;
                let answer = admin.conn.request_json(json!({"type": "create_user", "key": "g".repeat(64), "name": fresh_name(), "invite_allowance": 0, "publish_allowance": 0}), DEFAULT_WAIT).await?;
                expect_error(answer, ErrorCode::BadEncoding).map(|_| ())
            }),
        ),
        Case::new(
            "INV-KEY-WEAK-001",
            Must,
            &["ACCT-8"],
            "a small-order key is weak_key",
            run!(|ctx| {
                let mut admin = ctx.admin().await?;
                let answer = admin.conn.request_json(json!({"type": "create_user", "key": WEAK_KEY, "name": fresh_name(), "invite_allowance": 0, "publish_allowance": 0}), DEFAULT_WAIT).await?;
                expect_error(answer, ErrorCode::WeakKey).map(|_| ())
            }),
        ),
        Case::new(
            "INV-ATOMIC-001",
            Must,
            &["ACCT-18", "ACCT-12"],
            "concurrent invites never overspend the allowance",
            run!(|ctx| {
                let (key, _) = ctx.invite(5, 0).await?;
                let a = ctx.login(&key).await?;
                let b = ctx.login(&key).await?;
                let spawn = |mut s: Session| {
                    tokio::spawn(async move {
                        let mut ok = 0u64;
                        for _ in 0..4 {
                            if s.create_user(SecretKey::random().public(), &fresh_name(), 0, 0).await.is_ok() {
                                ok += 1;
                            }
                        }
                        (ok, s)
                    })
                };
                let (ta, tb) = (spawn(a), spawn(b));
                let (oa, mut s) = ta.await.map_err(|e| Failure::fail("task", e.to_string()))?;
                let (ob, _) = tb.await.map_err(|e| Failure::fail("task", e.to_string()))?;
                check_eq("invites that succeeded", oa + ob, 5)?;
                check_eq("invite_allowance", s.account().await?.invite_allowance, Some(0))
            }),
        ),
        Case::new(
            "KEY-REPLACE-001",
            Must,
            &["ACCT-31", "ACCT-33", "ACCT-34", "FRAME-28", "FRAME-32"],
            "replace_key answers the updated account, then one closing key_replaced and nothing but close 1000",
            run!(|ctx| {
                let mut s = ctx.user_with(2, 9).await?;
                let new = SecretKey::random();
                // The session has no subscription, so no push may come before the answer: the
                // very next frame must be `replace_key_ok` ([ACCT-33]), then exactly one
                // `closing`, then the close.
                let id = s.conn.next_id();
                s.conn.send(&replace_req(ctx.target.node_key, &s.user.clone(), &new, later())(id)).await?;
                let answer =
                    s.conn.recv_frame(DEFAULT_WAIT).await.map_err(|e| {
                        Failure::fail("replace_key_ok before any closing push (ACCT-33)", e.to_string())
                    })?;
                if matches!(answer, ServerFrame::Closing(_)) {
                    return Err(Failure::fail(
                        "replace_key_ok before any closing push (ACCT-33)",
                        format!("the closing push first: {}", answer.to_text()),
                    ));
                }
                let ok = want!(answer, ReplaceKeyOk);
                check_eq("replace_key_ok.id", ok.id, id)?;
                check_eq("account.key", ok.account.key, new.public())?;
                check_eq(
                    "allowances",
                    (ok.account.invite_allowance, ok.account.publish_allowance),
                    (Some(2), Some(9)),
                )?;
                closed_with(&mut s.conn, ErrorCode::KeyReplaced).await
            }),
        ),
        Case::new(
            "KEY-OLD-REFUSED-001",
            Must,
            &["ACCT-31", "HS-34"],
            "after a replacement the old key is unknown_user",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let old = s.user.clone();
                let new = SecretKey::random();
                let answer = s.call(replace_req(ctx.target.node_key, &old, &new, later())).await?;
                want!(answer, ReplaceKeyOk);
                refused_login(ctx.login(&old).await, ErrorCode::UnknownUser)
            }),
        ),
        Case::new(
            "KEY-NEW-WORKS-001",
            Must,
            &["ACCT-31"],
            "after a replacement the new key logs in to the same account",
            run!(|ctx| {
                let mut s = ctx.user_with(1, 4).await?;
                let name = s.account.name.clone();
                let new = SecretKey::random();
                let answer = s.call(replace_req(ctx.target.node_key, &s.user.clone(), &new, later())).await?;
                want!(answer, ReplaceKeyOk);
                let n = ctx.login(&new).await?;
                check_eq("name", n.account.name, name)?;
                check_eq("allowances", (n.account.invite_allowance, n.account.publish_allowance), (Some(1), Some(4)))
            }),
        ),
        Case::new(
            "KEY-OTHER-SESSIONS-001",
            Must,
            &["ACCT-34", "FRAME-28"],
            "every other session of the old key gets closing key_replaced",
            run!(|ctx| {
                let (key, _) = ctx.invite(0, 5).await?;
                let mut a = ctx.login(&key).await?;
                let mut b = ctx.login(&key).await?;
                let answer = a.call(replace_req(ctx.target.node_key, &key, &SecretKey::random(), later())).await?;
                want!(answer, ReplaceKeyOk);
                closed_with(&mut b.conn, ErrorCode::KeyReplaced).await
            }),
        ),
        Case::new(
            "KEY-CHILDREN-001",
            Must,
            &["ACCT-32"],
            "the children of a replaced key get the new key as parent",
            run!(|ctx| {
                let mut s = ctx.user_with(5, 5).await?;
                let (child, _) = s.invite_user(0, 0).await?;
                let new = SecretKey::random();
                let answer = s.call(replace_req(ctx.target.node_key, &s.user.clone(), &new, later())).await?;
                want!(answer, ReplaceKeyOk);
                let c = ctx.login(&child).await?;
                check_eq("child's parent", c.account.parent, Some(new.public()))
            }),
        ),
        Case::new(
            "KEY-ADMIN-001",
            Must,
            &["ACCT-25"],
            "replace_key in an admin session is forbidden",
            run!(|ctx| {
                let mut admin = ctx.admin().await?;
                let answer = admin
                    .call(replace_req(ctx.target.node_key, &ctx.target.admin.clone(), &SecretKey::random(), later()))
                    .await?;
                expect_error(answer, ErrorCode::Forbidden).map(|_| ())
            }),
        )
        .own_node(NodeConfig::default()),
        Case::new(
            "KEY-NODE-001",
            Must,
            &["ACCT-24"],
            "a replacement for another node is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s
                    .call(replace_req(SecretKey::random().public(), &s.user.clone(), &SecretKey::random(), later()))
                    .await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "KEY-OLD-001",
            Must,
            &["ACCT-26"],
            "a replacement of someone else's key is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let (other, _) = ctx.invite(0, 0).await?;
                let answer = s.call(replace_req(ctx.target.node_key, &other, &SecretKey::random(), later())).await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "KEY-EXPIRED-001",
            Must,
            &["ACCT-27"],
            "an expired replacement is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s
                    .call(replace_req(ctx.target.node_key, &s.user.clone(), &SecretKey::random(), now_ms() - 1000))
                    .await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "KEY-SIG-OLD-001",
            Must,
            &["ACCT-28"],
            "a replacement with a bad sig_old is bad_signature",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let new = SecretKey::random();
                let mut r = KeyReplacement::sign(ctx.target.node_key, &s.user, &new, later());
                r.sig_old = new.sign_raw(b"x");
                let answer = s.call(move |id| ClientFrame::ReplaceKey(ReplaceKey { id, replacement: r })).await?;
                expect_error(answer, ErrorCode::BadSignature).map(|_| ())
            }),
        ),
        Case::new(
            "KEY-SIG-NEW-001",
            Must,
            &["ACCT-29"],
            "a replacement with a bad sig_new is bad_signature",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let new = SecretKey::random();
                let mut r = KeyReplacement::sign(ctx.target.node_key, &s.user, &new, later());
                r.sig_new = s.user.sign_raw(b"x");
                let answer = s.call(move |id| ClientFrame::ReplaceKey(ReplaceKey { id, replacement: r })).await?;
                expect_error(answer, ErrorCode::BadSignature).map(|_| ())
            }),
        ),
        Case::new(
            "KEY-TAKEN-001",
            Must,
            &["ACCT-30"],
            "replacing with another account's key is key_taken",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let (other, _) = ctx.invite(0, 0).await?;
                let answer = s.call(replace_req(ctx.target.node_key, &s.user.clone(), &other, later())).await?;
                expect_error(answer, ErrorCode::KeyTaken).map(|_| ())
            }),
        ),
        Case::new(
            "KEY-TAKEN-002",
            Must,
            &["ACCT-30"],
            "replacing a key with itself is key_taken",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let me = s.user.clone();
                let answer = s.call(replace_req(ctx.target.node_key, &me, &me, later())).await?;
                expect_error(answer, ErrorCode::KeyTaken).map(|_| ())
            }),
        ),
        Case::new(
            "KEY-MISSING-001",
            Must,
            &["ACCT-22"],
            "a replacement without sig_new is invalid_request",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let r = KeyReplacement::sign(ctx.target.node_key, &s.user, &SecretKey::random(), later());
                let mut v = serde_json::to_value(&r).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.remove("sig_new");
                }
                let answer = s.call_json(json!({"type": "replace_key", "replacement": v})).await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "KEY-ENCODING-001",
            Must,
            &["ACCT-23"],
            "a replacement whose new key is uppercase hex is bad_encoding",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let new = SecretKey::random();
                let r = KeyReplacement::sign(ctx.target.node_key, &s.user, &new, later());
                let mut v = serde_json::to_value(&r).unwrap_or_default();
                v["new"] = json!(new.public().to_string().to_uppercase());
                let answer = s.call_json(json!({"type": "replace_key", "replacement": v})).await?;
                expect_error(answer, ErrorCode::BadEncoding).map(|_| ())
            }),
        ),
        Case::new(
            "RM-ADMIN-001",
            Must,
            &["ACCT-39", "ACCT-43"],
            "the admin removes a user, who can no longer log in",
            run!(|ctx| {
                let (key, _) = ctx.invite(0, 0).await?;
                let mut admin = ctx.admin().await?;
                let answer = admin.call(remove_req(key.public())).await?;
                want!(answer, RemoveUserOk);
                refused_login(ctx.login(&key).await, ErrorCode::UnknownUser)
            }),
        ),
        Case::new(
            "RM-PARENT-001",
            Must,
            &["ACCT-38", "ACCT-43"],
            "a parent removes its child",
            run!(|ctx| {
                let mut s = ctx.user_with(5, 5).await?;
                let (child, _) = s.invite_user(0, 0).await?;
                let answer = s.call(remove_req(child.public())).await?;
                want!(answer, RemoveUserOk);
                Ok(())
            }),
        ),
        Case::new(
            "RM-ANCESTOR-001",
            Must,
            &["ACCT-38"],
            "a grandparent removes its grandchild",
            run!(|ctx| {
                let mut g = ctx.user_with(10, 5).await?;
                let (p, _) = g.invite_user(3, 0).await?;
                let mut ps = ctx.login(&p).await?;
                let (c, _) = ps.invite_user(0, 0).await?;
                let answer = g.call(remove_req(c.public())).await?;
                want!(answer, RemoveUserOk);
                Ok(())
            }),
        ),
        Case::new(
            "RM-SELF-001",
            Must,
            &["ACCT-38"],
            "removing oneself is forbidden",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s.call(remove_req(s.user.public())).await?;
                expect_error(answer, ErrorCode::Forbidden).map(|_| ())
            }),
        ),
        Case::new(
            "RM-SIBLING-001",
            Must,
            &["ACCT-38"],
            "removing a sibling is forbidden",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let (other, _) = ctx.invite(0, 0).await?;
                let answer = s.call(remove_req(other.public())).await?;
                expect_error(answer, ErrorCode::Forbidden).map(|_| ())
            }),
        ),
        Case::new(
            "RM-CHILD-UP-001",
            Must,
            &["ACCT-38"],
            "a child removing its parent is forbidden",
            run!(|ctx| {
                let mut p = ctx.user_with(5, 5).await?;
                let (c, _) = p.invite_user(0, 0).await?;
                let mut cs = ctx.login(&c).await?;
                let answer = cs.call(remove_req(p.user.public())).await?;
                expect_error(answer, ErrorCode::Forbidden).map(|_| ())
            }),
        ),
        Case::new(
            "RM-ADMIN-KEY-001",
            Must,
            &["ACCT-38"],
            "removing the admin is forbidden",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let answer = s.call(remove_req(ctx.target.node_key)).await?;
                expect_error(answer, ErrorCode::Forbidden).map(|_| ())
            }),
        )
        .own_node(NodeConfig::default()),
        Case::new(
            "RM-UNKNOWN-001",
            Must,
            &["ACCT-37"],
            "removing a key without an account is not_found",
            run!(|ctx| {
                let mut admin = ctx.admin().await?;
                let answer = admin.call(remove_req(SecretKey::random().public())).await?;
                expect_error(answer, ErrorCode::NotFound).map(|_| ())
            }),
        ),
        Case::new(
            "RM-ENCODING-001",
            Must,
            &["ACCT-36"],
            "removing a key that is not hex is bad_encoding",
            run!(|ctx| {
                let mut admin = ctx.admin().await?;
                let answer = admin.call_json(json!({"type": "remove_user", "key": "xyz"})).await?;
                expect_error(answer, ErrorCode::BadEncoding).map(|_| ())
            }),
        ),
        Case::new(
            "RM-MISSING-001",
            Must,
            &["ACCT-35"],
            "remove_user without a key is invalid_request",
            run!(|ctx| {
                let mut admin = ctx.admin().await?;
                let answer = admin.call_json(json!({"type": "remove_user"})).await?;
                expect_error(answer, ErrorCode::InvalidRequest).map(|_| ())
            }),
        ),
        Case::new(
            "RM-REPARENT-001",
            Must,
            &["ACCT-40", "ACCT-41"],
            "a removed user's children move to its parent with their allowances unchanged",
            run!(|ctx| {
                let mut g = ctx.user_with(20, 10).await?;
                let (p, _) = g.invite_user(10, 10).await?;
                let mut ps = ctx.login(&p).await?;
                let (c, _) = ps.invite_user(2, 3).await?;
                let answer = g.call(remove_req(p.public())).await?;
                want!(answer, RemoveUserOk);
                let cs = ctx.login(&c).await?;
                check_eq("child's parent", cs.account.parent, Some(g.user.public()))?;
                check_eq(
                    "child's allowances",
                    (cs.account.invite_allowance, cs.account.publish_allowance),
                    (Some(2), Some(3)),
                )
            }),
        ),
        Case::new(
            "RM-NO-REFUND-001",
            Must,
            &["ACCT-42", "ACCT-41"],
            "removing a child refunds nothing to the parent",
            run!(|ctx| {
                let mut s = ctx.user_with(10, 10).await?;
                let (c, _) = s.invite_user(4, 0).await?;
                let before = s.account().await?;
                let answer = s.call(remove_req(c.public())).await?;
                want!(answer, RemoveUserOk);
                check_eq("parent's account", s.account().await?, before)
            }),
        ),
        Case::new(
            "RM-SESSIONS-001",
            Must,
            &["ACCT-44", "FRAME-28"],
            "a removed user's live session gets closing account_removed and close 1000",
            run!(|ctx| {
                let (key, _) = ctx.invite(0, 0).await?;
                let mut victim = ctx.login(&key).await?;
                let mut admin = ctx.admin().await?;
                let answer = admin.call(remove_req(key.public())).await?;
                want!(answer, RemoveUserOk);
                closed_with(&mut victim.conn, ErrorCode::AccountRemoved).await
            }),
        ),
        Case::new(
            "RM-ENTRIES-001",
            Must,
            &["ACCT-45"],
            "a removed user's entries stay stored",
            run!(|ctx| {
                let mut s = ctx.user().await?;
                let e = Feed::new(&s.user).next("stays");
                s.publish_ok(&e).await?;
                let mut admin = ctx.admin().await?;
                let answer = admin.call(remove_req(s.user.public())).await?;
                want!(answer, RemoveUserOk);
                let id = entry_id(&e)?;
                let answer = admin
                    .call(move |rid| {
                        ClientFrame::Get(kith_proto::feed::Get { id: rid, entry_id: Some(id), author: None, seq: None })
                    })
                    .await?;
                check_eq("the entry still held", entry_id(&want!(answer, GetOk).entry)?, id)
            }),
        ),
        Case::new(
            "RM-INVITEE-001",
            Must,
            &["ACCT-40", "ACCT-38"],
            "after a removal the grandparent may remove the re-parented child",
            run!(|ctx| {
                let mut g = ctx.user_with(20, 10).await?;
                let (p, _) = g.invite_user(5, 5).await?;
                let mut ps = ctx.login(&p).await?;
                let (c, _) = ps.invite_user(0, 0).await?;
                let answer = g.call(remove_req(p.public())).await?;
                want!(answer, RemoveUserOk);
                let answer = g.call(remove_req(c.public())).await?;
                want!(answer, RemoveUserOk);
                Ok(())
            }),
        ),
        Case::new(
            "INV-LIST-001",
            Must,
            &["ACCT-54", "ACCT-55", "ACCT-1"],
            "invitees lists the user's children and their descendants, ascending by key, with their current \
             values; a child lists only its own subtree",
            run!(|ctx| {
                let mut u = ctx.user_with(10, 10).await?;
                let (c1, _) = u.invite_user(3, 2).await?;
                let (_, c2) = u.invite_user(0, 1).await?;
                let mut s1 = ctx.login(&c1).await?;
                let (_, g1) = s1.invite_user(0, 0).await?;
                let answer = s1.call(|id| ClientFrame::Account(AccountRequest { id })).await?;
                let c1_now = want!(answer, AccountOk).account;
                let mut want = vec![c1_now.clone(), c2, g1.clone()];
                want.sort_by_key(|a| a.key);
                let (got, more) = invitees(&mut u, None).await?;
                same_accounts("invitees_ok.accounts of the user", &got, &want)?;
                check_eq("invitees_ok.more", more, false)?;
                let (got, more) = invitees(&mut s1, None).await?;
                same_accounts("invitees_ok.accounts of the child", &got, &[g1])?;
                check_eq("invitees_ok.more of the child", more, false)
            }),
        ),
        Case::new(
            "INV-LIST-002",
            Must,
            &["ACCT-54", "ACCT-55"],
            "invitees with after lists only the accounts whose key is greater; a removed account is not listed",
            run!(|ctx| {
                let mut u = ctx.user_with(10, 10).await?;
                let mut keys = Vec::new();
                for _ in 0..4 {
                    keys.push(u.invite_user(0, 0).await?.1.key);
                }
                keys.sort();
                let answer = u.call(remove_req(keys[2])).await?;
                want!(answer, RemoveUserOk);
                let (got, more) = invitees(&mut u, Some(keys[0])).await?;
                check_eq(
                    "keys after the smallest",
                    got.iter().map(|a| a.key).collect::<Vec<_>>(),
                    vec![keys[1], keys[3]],
                )?;
                check_eq("more", more, false)?;
                let (got, more) = invitees(&mut u, Some(keys[3])).await?;
                check_eq("after the largest", (got.len(), more), (0, false))
            }),
        ),
        Case::new(
            "INV-LIST-003",
            Must,
            &["ACCT-54", "ACCT-55"],
            "invitees lists at most 256 accounts, the smallest keys first, with more true; the next page \
             lists the rest",
            run!(|ctx| {
                let n = MAX_INVITEES_PAGE as u64 + 1;
                let rate = ctx.target.limits.max_requests_per_second;
                if n / rate > 15 {
                    // Legal (HS-53 allows 4 per second), but 257 paced requests would take minutes.
                    return Err(Failure::not_applicable(format!(
                        "{n} create_user requests at max_requests_per_second {rate} take over 15 s"
                    )));
                }
                let mut u = ctx.user_with(n, 0).await?;
                let mut keys = Vec::new();
                // The runner paces every case's requests to the node's reported rate.
                for _ in 0..n {
                    keys.push(u.invite_user(0, 0).await?.1.key);
                }
                keys.sort();
                let (first, more) = invitees(&mut u, None).await?;
                check_eq("first page", hex_keys(first.iter().map(|a| a.key)), hex_keys(keys[..256].iter().copied()))?;
                check_eq("more after the first page", more, true)?;
                let (rest, more) = invitees(&mut u, Some(keys[255])).await?;
                check_eq(
                    "second page",
                    (rest.iter().map(|a| a.key).collect::<Vec<_>>(), more),
                    (keys[256..].to_vec(), false),
                )
            }),
        )
        .timeout_ms(120_000),
        Case::new(
            "INV-LIST-004",
            Must,
            &["ACCT-52", "ACCT-53", "FRAME-40"],
            "invitees with an after that is null or not a string is invalid_request; one that is not a key is \
             bad_encoding, a small-order key weak_key",
            run!(|ctx| {
                let mut u = ctx.user().await?;
                for (after, code) in [
                    (json!(null), ErrorCode::InvalidRequest),
                    (json!(7), ErrorCode::InvalidRequest),
                    (json!("zz"), ErrorCode::BadEncoding),
                    (json!(WEAK_KEY), ErrorCode::WeakKey),
                ] {
                    let answer = u.call_json(json!({"type": "invitees", "after": after})).await?;
                    expect_error(answer, code)?;
                }
                Ok(())
            }),
        ),
    ]
}

/// Keys in their wire form, for failure messages.
fn hex_keys(keys: impl IntoIterator<Item = PublicKey>) -> Vec<String> {
    keys.into_iter().map(|k| k.to_string()).collect()
}

/// Compares two lists of account objects, reporting both in wire form.
fn same_accounts(what: &str, got: &[Account], want: &[Account]) -> CaseResult {
    let wire = |v: &[Account]| v.iter().map(|a| serde_json::to_string(a).unwrap_or_default()).collect::<Vec<_>>();
    if got == want {
        return Ok(());
    }
    Err(Failure::fail(format!("{what} = [{}]", wire(want).join(", ")), format!("[{}]", wire(got).join(", "))))
}

/// One `invitees` page: the accounts and `more`.
async fn invitees(s: &mut Session, after: Option<PublicKey>) -> Result<(Vec<Account>, bool), Failure> {
    let answer = s.call(move |id| ClientFrame::Invitees(Invitees { id, after })).await?;
    let ok = want!(answer, InviteesOk);
    Ok((ok.accounts, ok.more))
}
