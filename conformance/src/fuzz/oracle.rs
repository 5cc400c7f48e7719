//! The oracle: what the node must answer to the exact bytes a fuzz case sent, worked out with
//! the core's own decoder, and the judgement of what came back. Pure functions, so the oracle
//! itself is tested without a node.
//!
//! Steps 1 to 6 of the processing order (spec 06 §3) are ordered, so a frame that fails one of
//! them has exactly one right answer: its code and its id (FRAME-17). Past step 6 the state
//! check comes first (HS-20, HS-30, HS-38). After that, a `publish` has exactly one right code
//! too: its only member is the entry, and the entry's checks run in the fixed order of 03 §3
//! ("the first check that fails decides"; 06 §3 step 10: "where the order matters to
//! interoperability it is fixed: the checks of entries"), which the core's entry decoder and
//! `verify_entry` implement. Any other request with several defects may get the code of any of
//! them (FRAME-41: "which one is not specified"), so the oracle then asks only for a registry
//! error with the request's id — or success, when the frame decodes to the valid base frame.

use kith_proto::frame::{triage_client_frame, RefusedAt, MAX_FRAME_BYTES};
use kith_proto::{
    parse_client_frame, verify_entry, ClientFrame, ErrorCode, HasErrorCode, PublicKey, RequestId, RequestKind,
    ServerFrame,
};

use super::mutate::{Opcode, WireMessage};

/// The connection's handshake state when the fuzz frame is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HsState {
    /// Nothing sent yet.
    AwaitHello,
    /// A valid `hello` was answered with `challenge`.
    AwaitAuth,
    /// `welcome` received.
    Established,
}

/// What the oracle knows besides the bytes.
#[derive(Debug, Clone)]
pub struct Situation {
    /// The connection's state.
    pub state: HsState,
    /// The valid frame the mutations started from.
    pub base: ClientFrame,
    /// Codes a frame equal to the base may still get on a node that is not fresh (a re-run
    /// against `--url`: the key or name of a derived account is taken).
    pub tolerated: Vec<ErrorCode>,
    /// The node key.
    pub node_key: PublicKey,
    /// The session's user, once established.
    pub session_user: Option<PublicKey>,
    /// The clock, for certificate and replacement expiry.
    pub now_ms: u64,
}

/// Whether an error answer closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseRule {
    /// The connection stays open (checked by a follow-up `node_info`).
    Open,
    /// Close 1008 with the error code as reason (HS-35: an error in reply to hello or auth,
    /// including `invalid_request` with id null for one without a valid id, 05 §6.4).
    Close1008,
}

/// Whether a frame that decodes must be accepted or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Must {
    /// It is the base frame (up to its id, member order and ignored members): success, or one
    /// of the tolerated codes.
    Succeed,
    /// Its signature or certificate cannot verify: an error.
    Fail(String),
    /// Either, depending on state the oracle does not model.
    Either,
}

/// The answer the node owes.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// `frame_too_large` with id null, then close 1009 (FRAME-5, FRAME-6).
    TooLarge,
    /// Close 1007 without an error frame (FRAME-3).
    Utf8,
    /// Over 65536 bytes and not UTF-8: which check runs first is the websocket layer's, so
    /// either of the two answers above.
    TooLargeOrUtf8,
    /// An error frame.
    Error {
        /// The code, when the spec's order fixes it; otherwise any code that fits (see
        /// [`acceptable_later_code`]).
        code: Option<ErrorCode>,
        /// The id the error must carry (FRAME-17).
        id: Option<RequestId>,
        /// What happens to the connection.
        close: CloseRule,
        /// Why (the rule).
        why: String,
    },
    /// A frame that decodes: its response or an error, both with its id.
    Answer {
        /// The request id.
        id: RequestId,
        /// The response type (`publish_ok`, `challenge`, ...).
        response: String,
        /// Success, failure or either.
        must: Must,
        /// Codes tolerated when success is required.
        tolerated: Vec<ErrorCode>,
        /// What an error does to the connection.
        close_on_error: CloseRule,
        /// Success ends the session (a successful `replace_key`: `closing` key_replaced, close
        /// 1000, ACCT-34).
        success_closes: bool,
    },
}

/// Codes a node never sends in reply to one well-paced request on a healthy connection.
pub fn acceptable_later_code(code: ErrorCode) -> bool {
    !matches!(
        code,
        ErrorCode::FrameTooLarge
            | ErrorCode::MalformedFrame
            | ErrorCode::Internal
            | ErrorCode::KeyReplaced
            | ErrorCode::AccountRemoved
            | ErrorCode::SlowConsumer
            | ErrorCode::HandshakeTimeout
            | ErrorCode::TooManyConnections
            | ErrorCode::TooManyHandshakes
            | ErrorCode::RateLimited
            | ErrorCode::ShuttingDown
    )
}

fn without_id(f: &ClientFrame) -> serde_json::Value {
    let mut v = serde_json::to_value(f).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
    }
    v
}

fn must_for(frame: &ClientFrame, s: &Situation) -> Must {
    if without_id(frame) == without_id(&s.base) {
        return Must::Succeed;
    }
    match frame {
        ClientFrame::Hello(h) if h.cert.verify(&h.peer, s.now_ms).is_err() => {
            Must::Fail("its certificate does not verify for its peer".into())
        }
        ClientFrame::Auth(_) => Must::Fail("its signature is not the base auth's, the only valid one".into()),
        ClientFrame::ReplaceKey(r) => match &s.session_user {
            Some(u) if r.replacement.verify(&s.node_key, u, s.now_ms).is_err() => {
                Must::Fail("its key replacement does not verify".into())
            }
            _ => Must::Either,
        },
        ClientFrame::AddIdentity(a) if a.note.verify().is_err() || Some(a.note.author) != s.session_user => {
            Must::Fail("its note does not verify or is not by the session's user".into())
        }
        _ => Must::Either,
    }
}

/// What the node must answer to `msg`, sent in situation `s`.
pub fn classify(msg: &WireMessage, s: &Situation) -> Expect {
    let utf8 = std::str::from_utf8(&msg.bytes).ok();
    if msg.bytes.len() > MAX_FRAME_BYTES {
        return if msg.opcode == Opcode::Text && utf8.is_none() { Expect::TooLargeOrUtf8 } else { Expect::TooLarge };
    }
    let err = |code, id, close, why: &str| Expect::Error { code, id, close, why: why.to_owned() };
    let open = CloseRule::Open;
    if msg.opcode == Opcode::Binary {
        return err(Some(ErrorCode::MalformedFrame), None, open, "binary message (FRAME-2, step 2)");
    }
    let Some(text) = utf8 else { return Expect::Utf8 };
    // Steps 2 to 6 as the core's decoder takes them: the core is the reference a node is judged
    // by (its own correctness rests on the vectors and properties), and the order is written once.
    let (kind, id) = match triage_client_frame(text) {
        Ok(frame) => (frame.kind(), frame.id()),
        Err((e, RefusedAt::Envelope)) => {
            let why = match e.code {
                ErrorCode::MalformedFrame => "breaks chapter 01 §2 (ENC-1..9, step 3)",
                ErrorCode::UnknownType => "unknown type (FRAME-12, step 5)",
                _ => "`type` missing or not a string (FRAME-11, step 4)",
            };
            return err(Some(e.code), e.id, open, why);
        }
        Err((e, RefusedAt::Id(ty))) => {
            let close = if matches!(ty, "hello" | "auth") { CloseRule::Close1008 } else { open };
            return err(Some(e.code), None, close, "`id` missing or not a U53 (FRAME-13, step 6)");
        }
        Err((e, RefusedAt::Members(ty))) => match (RequestKind::from_type(ty), e.id) {
            (Some(kind), Some(id)) => (kind, id),
            // The core says a refusal at step 10 passed steps 4 to 6; anything else is a core bug.
            _ => return err(Some(e.code), e.id, open, "refused by the core's decoder"),
        },
    };
    let handshake_msg = matches!(kind, RequestKind::Hello | RequestKind::Auth);
    let close_on_error = if handshake_msg { CloseRule::Close1008 } else { open };
    // Step 9: the state, before any of the request's own rules.
    match (kind, s.state) {
        (RequestKind::NodeInfo, _) => {}
        (RequestKind::Hello, HsState::AwaitHello) | (RequestKind::Auth, HsState::AwaitAuth) => {}
        (RequestKind::Hello, _) => {
            return err(Some(ErrorCode::BadHandshake), Some(id), close_on_error, "hello out of order (HS-20)")
        }
        (RequestKind::Auth, _) => {
            return err(Some(ErrorCode::BadHandshake), Some(id), close_on_error, "auth out of order (HS-30)")
        }
        (_, HsState::Established) => {}
        _ => {
            return err(Some(ErrorCode::NotAuthenticated), Some(id), open, "a request before welcome (HS-38)");
        }
    }
    // Step 10 of a publish: FEED-2, then the entry's checks in the order of 03 §3 (the
    // decoder for ENTRY-2 to ENTRY-16, `verify_entry` for ENTRY-17 and ENTRY-18). The order is
    // fixed, so the first failing check's code is the only right one.
    let entry_order = "the entry's checks run in the fixed order of 03 §3; the first that fails decides";
    match parse_client_frame(text) {
        Ok(ClientFrame::Publish(p)) if verify_entry(&p.entry).is_err() => {
            let code = verify_entry(&p.entry).err().map(|e| e.code());
            err(code, Some(id), close_on_error, &format!("its entry fails ENTRY-17 or ENTRY-18 ({entry_order})"))
        }
        Err(e) if kind == RequestKind::Publish => err(
            Some(e.code),
            Some(id),
            close_on_error,
            &format!("publish: the core refuses it ({}: {}); {entry_order}", e.code, e.message),
        ),
        Ok(frame) => Expect::Answer {
            id,
            // The registry's answer type, not one derived from the request's name.
            response: frame.answer_type().into(),
            must: must_for(&frame, s),
            tolerated: s.tolerated.clone(),
            close_on_error,
            success_closes: matches!(frame, ClientFrame::ReplaceKey(_)),
        },
        // Other requests: the chapters order some checks, but a request with defects in
        // several members may be answered with the code of any of them (06 §3, FRAME-41:
        // "a node MUST answer with the code of one of the rules the request breaks; which one
        // is not specified"), and a single-defect oracle cannot tell one defect from several.
        Err(e) => err(
            None,
            Some(id),
            close_on_error,
            &format!("the core refuses it ({}: {}); any fitting code (FRAME-41)", e.code, e.message),
        ),
    }
}

/// What the node sent, as the driver saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A text frame.
    Frame(String),
    /// A binary frame (never allowed from a node).
    Binary(usize),
    /// The connection closed (code and reason, if a close frame came).
    Closed(Option<(u16, String)>),
    /// Nothing within the wait.
    Timeout,
}

/// Whether a decoded server frame is a push rather than an answer (the core's registry says
/// which frames are).
pub fn is_push(f: &ServerFrame) -> bool {
    f.is_push()
}

/// Decodes a frame from the node; a frame that is not a `ServerFrame` breaks the spec.
pub fn decode(text: &str) -> Result<ServerFrame, String> {
    ServerFrame::parse(text)
        .map_err(|e| format!("the node sent a frame that is not a valid server frame ({e}): {text}"))
}

/// What must happen after the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    /// The connection stays open: a follow-up `node_info` gets its answer.
    Open,
    /// The node closes with this code (and reason), after a `closing` push if asked.
    Close {
        /// Close code.
        code: u16,
        /// Close reason, when the spec fixes it (FRAME-31).
        reason: Option<String>,
        /// A `closing` push with this code comes first.
        closing: Option<ErrorCode>,
    },
    /// Close 1008 or stay open.
    MayClose,
    /// Already closed as required.
    Done,
}

fn close_after(rule: CloseRule, code: ErrorCode) -> After {
    match rule {
        CloseRule::Open => After::Open,
        CloseRule::Close1008 => After::Close { code: 1008, reason: Some(code.as_str().into()), closing: None },
    }
}

/// An item as the wire has it (a close as `close 1008 "reason"`).
pub(crate) fn show(item: &Item) -> String {
    match item {
        Item::Frame(t) => t.clone(),
        Item::Binary(n) => format!("a binary frame of {n} bytes"),
        Item::Closed(c) => format!("the connection closed: {}", crate::client::show_close(c)),
        Item::Timeout => "nothing within the wait".into(),
    }
}

/// Judges the first non-push item after the fuzz frame (the answer, or a close).
pub fn judge_answer(e: &Expect, item: &Item) -> Result<After, String> {
    let too_large = |item: &Item| -> Result<After, String> {
        match item {
            Item::Frame(t) => match decode(t)? {
                ServerFrame::Error(f) if f.code == ErrorCode::FrameTooLarge && f.id.is_none() => {
                    Ok(After::Close { code: 1009, reason: Some("frame_too_large".into()), closing: None })
                }
                _ => Err(format!("expected error frame_too_large with id null (FRAME-5, FRAME-17), got {t}")),
            },
            other => Err(format!("expected error frame_too_large with id null (FRAME-5), got {}", show(other))),
        }
    };
    let utf8 = |item: &Item| -> Result<After, String> {
        match item {
            Item::Closed(Some((1007, _))) => Ok(After::Done),
            other => Err(format!("expected close 1007 without an error frame (FRAME-3), got {}", show(other))),
        }
    };
    match e {
        Expect::TooLarge => too_large(item),
        Expect::Utf8 => utf8(item),
        Expect::TooLargeOrUtf8 => too_large(item).or_else(|a| utf8(item).map_err(|b| format!("{a}; or {b}"))),
        Expect::Error { code, id, close, why } => {
            let want = match code {
                Some(c) => format!("error {c} with id {}", id_text(*id)),
                None => format!("an error with id {}", id_text(*id)),
            };
            let Item::Frame(t) = item else { return Err(format!("expected {want} ({why}), got {}", show(item))) };
            match decode(t)? {
                ServerFrame::Error(f) => {
                    let code_ok = match code {
                        Some(c) => f.code == *c,
                        None => acceptable_later_code(f.code),
                    };
                    if !code_ok || f.id != *id {
                        return Err(format!("expected {want} ({why}), got {t}"));
                    }
                    Ok(close_after(*close, f.code))
                }
                _ => Err(format!("expected {want} ({why}), got {t}")),
            }
        }
        Expect::Answer { id, response, must, tolerated, close_on_error, success_closes } => {
            let want = match must {
                Must::Succeed => format!("{response} with id {id} (the frame decodes to the valid base frame)"),
                Must::Fail(why) => format!("an error with id {id} ({why})"),
                Must::Either => format!("{response} or an error, with id {id}"),
            };
            let Item::Frame(t) = item else { return Err(format!("expected {want}, got {}", show(item))) };
            let f = decode(t)?;
            if let ServerFrame::Error(err) = &f {
                let tolerated_here = tolerated.contains(&err.code);
                if err.id != Some(*id)
                    || !acceptable_later_code(err.code)
                    || (*must == Must::Succeed && !tolerated_here)
                {
                    return Err(format!("expected {want}, got {t}"));
                }
                return Ok(close_after(*close_on_error, err.code));
            }
            if matches!(must, Must::Fail(_)) || f.type_name() != response || f.answers() != Some(*id) {
                return Err(format!("expected {want}, got {t}"));
            }
            if *success_closes {
                return Ok(After::Close {
                    code: 1000,
                    reason: Some("key_replaced".into()),
                    closing: Some(ErrorCode::KeyReplaced),
                });
            }
            Ok(After::Open)
        }
    }
}

fn id_text(id: Option<RequestId>) -> String {
    id.map(|i| i.to_string()).unwrap_or_else(|| "null".into())
}

/// Judges what came after the answer: `items` ends with the follow-up `node_info`'s answer
/// (id `follow_up`) when the connection must stay open, or with the close.
pub fn judge_after(after: &After, items: &[Item], follow_up: RequestId) -> Result<(), String> {
    let (last, before) = match items.split_last() {
        Some(x) => x,
        None if *after == After::Done => return Ok(()),
        None => return Err("nothing observed after the answer".into()),
    };
    let pushes_only = |before: &[Item], allow_closing: Option<ErrorCode>| -> Result<(), String> {
        for (i, it) in before.iter().enumerate() {
            let Item::Frame(t) = it else { return Err(format!("unexpected {}", show(it))) };
            match decode(t)? {
                ServerFrame::Closing(c) if Some(c.code) == allow_closing && i == before.len() - 1 => {}
                ServerFrame::Event(_) | ServerFrame::StoredEnd(_) if allow_closing.is_none() => {}
                _ => return Err(format!("a frame the spec does not allow here (FRAME-18, FRAME-32): {t}")),
            }
        }
        Ok(())
    };
    let follow_up_ok = |last: &Item| -> Result<(), String> {
        match last {
            Item::Frame(t) => match decode(t)? {
                ServerFrame::NodeInfoOk(ok) if ok.id == follow_up => Ok(()),
                _ => Err(format!("the follow-up node_info (id {follow_up}) to be answered, got {t}")),
            },
            other => Err(format!(
                "the connection to stay open and answer a follow-up node_info (id {follow_up}), got {}",
                show(other)
            )),
        }
    };
    match after {
        After::Done => Err(format!("nothing after the close, got {}", show(last))),
        After::Open => {
            pushes_only(before, None)?;
            follow_up_ok(last)
        }
        After::MayClose => {
            pushes_only(before, None)?;
            match last {
                Item::Closed(Some((1008, _))) => Ok(()),
                other => follow_up_ok(other).map_err(|e| format!("{e} (or close 1008)")),
            }
        }
        After::Close { code, reason, closing } => {
            if let Some(c) = closing {
                if !matches!(before.last(), Some(Item::Frame(t)) if matches!(decode(t), Ok(ServerFrame::Closing(x)) if x.code == *c))
                {
                    return Err(format!("a closing push with code {c} before the close (ACCT-34, FRAME-28)"));
                }
            }
            if closing.is_none() && !before.is_empty() {
                return Err(format!(
                    "no frame after the one that ends the connection (FRAME-32), got {}",
                    show(&before[0])
                ));
            }
            pushes_only(before, *closing)?;
            match last {
                Item::Closed(Some((c, r))) if c == code && reason.as_ref().is_none_or(|want| want == r) => Ok(()),
                other => Err(format!(
                    "close {code}{} (FRAME-31), got {}",
                    reason.as_ref().map(|r| format!(" with reason {r:?}")).unwrap_or_default(),
                    show(other)
                )),
            }
        }
    }
}

/// Judges the read-back of the canary on a fresh connection: `get_ok` with the request's id
/// and the very entry stored at the start of the run, byte for byte.
pub fn judge_canary(
    want: &kith_proto::Entry,
    id: RequestId,
    answer: &Result<ServerFrame, String>,
) -> Result<(), String> {
    match answer {
        Ok(ServerFrame::GetOk(ok)) if ok.id == id && ok.entry.canonical_bytes() == want.canonical_bytes() => Ok(()),
        Ok(ServerFrame::GetOk(ok)) if ok.id == id => Err(format!(
            "the canary entry read back changed: stored {}, got {}",
            String::from_utf8_lossy(&want.canonical_bytes()),
            String::from_utf8_lossy(&ok.entry.canonical_bytes())
        )),
        Ok(other) => Err(format!("get of the canary to answer get_ok with id {id}, got {}", other.to_text())),
        Err(e) => Err(format!("get of the canary on a fresh connection: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_proto::entry::EntryDraft;
    use kith_proto::node_info::NodeInfo;
    use kith_proto::SecretKey;

    fn situation(state: HsState) -> Situation {
        Situation {
            state,
            base: ClientFrame::NodeInfo(NodeInfo { id: RequestId::small(5) }),
            tolerated: Vec::new(),
            node_key: SecretKey::from_seed([1; 32]).public(),
            session_user: None,
            now_ms: 1,
        }
    }

    fn text(t: &str) -> WireMessage {
        WireMessage { opcode: Opcode::Text, bytes: t.as_bytes().to_vec(), cuts: Vec::new() }
    }

    fn error(id: &str, code: &str) -> Item {
        Item::Frame(format!(r#"{{"type":"error","id":{id},"code":"{code}","message":""}}"#))
    }

    #[test]
    fn classification_follows_the_processing_order() {
        let s = situation(HsState::Established);
        let big = format!(r#"{{"type":"node_info","id":1,"pad":"{}"}}"#, "x".repeat(MAX_FRAME_BYTES));
        assert_eq!(classify(&text(&big), &s), Expect::TooLarge);
        let bin = WireMessage { opcode: Opcode::Binary, bytes: b"{}".to_vec(), cuts: vec![] };
        assert!(matches!(classify(&bin, &s), Expect::Error { code: Some(ErrorCode::MalformedFrame), id: None, .. }));
        let bad = WireMessage { opcode: Opcode::Text, bytes: b"{\"a\":\"\xff\"}".to_vec(), cuts: vec![1] };
        assert_eq!(classify(&bad, &s), Expect::Utf8);
        let code = |t: &str, st| match classify(&text(t), &situation(st)) {
            Expect::Error { code, id, close, .. } => (code, id.map(RequestId::get), close),
            other => panic!("{other:?}"),
        };
        use CloseRule::*;
        use HsState::*;
        assert_eq!(
            code(r#"{"type":"node_info","id":1.5}"#, Established),
            (Some(ErrorCode::MalformedFrame), None, Open)
        );
        assert_eq!(code(r#"{"type":7,"id":3}"#, Established), (Some(ErrorCode::InvalidRequest), Some(3), Open));
        assert_eq!(code(r#"{"type":"nope","id":3}"#, AwaitHello), (Some(ErrorCode::UnknownType), Some(3), Open));
        assert_eq!(code(r#"{"type":"hello"}"#, AwaitHello), (Some(ErrorCode::InvalidRequest), None, Close1008));
        assert_eq!(
            code(r#"{"type":"publish","id":4}"#, AwaitHello),
            (Some(ErrorCode::NotAuthenticated), Some(4), Open)
        );
        assert_eq!(
            code(r#"{"type":"hello","id":4}"#, Established),
            (Some(ErrorCode::BadHandshake), Some(4), Close1008)
        );
        assert_eq!(code(r#"{"type":"auth","id":4}"#, AwaitHello), (Some(ErrorCode::BadHandshake), Some(4), Close1008));
        assert_eq!(code(r#"{"type":"hello","id":4}"#, AwaitHello), (None, Some(4), Close1008));
        assert_eq!(code(r#"{"type":"follow","id":4}"#, Established), (None, Some(4), Open));
        assert!(matches!(
            classify(&text(r#"{"id":9,"type":"node_info","x":[]}"#), &s),
            Expect::Answer { must: Must::Succeed, .. }
        ));
    }

    /// The response a decodable request owes is the registry's answer type.
    #[test]
    fn the_expected_response_is_the_registrys_answer_type() {
        let response = |t: &str, st| match classify(&text(t), &situation(st)) {
            Expect::Answer { response, .. } => response,
            other => panic!("{other:?}"),
        };
        assert_eq!(response(r#"{"type":"invitees","id":4}"#, HsState::Established), "invitees_ok");
        assert_eq!(response(r#"{"type":"follows","id":4}"#, HsState::Established), "follows_ok");
        assert_eq!(response(r#"{"type":"node_info","id":4}"#, HsState::AwaitHello), "node_info_ok");
        for kind in RequestKind::ALL {
            assert!(ServerFrame::TYPES.contains(&kind.answer_type()), "{kind:?}");
        }
    }

    fn publish_situation() -> Situation {
        let key = SecretKey::from_seed([3; 32]);
        let mut s = situation(HsState::Established);
        s.base = ClientFrame::Publish(kith_proto::feed::Publish {
            id: RequestId::small(1),
            entry: EntryDraft::first(1).text("a").sign(&key),
        });
        s
    }

    #[test]
    fn the_entry_check_order_decides_a_publish() {
        let s = publish_situation();
        let ClientFrame::Publish(base) = &s.base else { panic!("publish base") };
        let mut entry = serde_json::to_value(&base.entry).expect("entry json");
        // ENTRY-5 (author) before ENTRY-9 (kind), whatever the wire order.
        entry["author"] = serde_json::json!("AB");
        entry["kind"] = serde_json::json!("NOT A KIND");
        let frame = serde_json::json!({"type": "publish", "id": 2, "entry": entry}).to_string();
        let e = classify(&text(&frame), &s);
        assert!(
            matches!(&e, Expect::Error { code: Some(ErrorCode::BadEncoding), id: Some(id), .. } if *id == RequestId::small(2)),
            "{e:?}"
        );
        assert!(judge_answer(&e, &error("2", "malformed_entry")).is_err());
        assert!(judge_answer(&e, &error("2", "bad_encoding")).is_ok());
        // ENTRY-17 (size) before ENTRY-18 (signature): the signature of a smaller entry.
        let mut big = base.entry.clone();
        big.content.insert("text".into(), kith_proto::canonical::CanonicalValue::string("x".repeat(17_000)));
        let frame = ClientFrame::Publish(kith_proto::feed::Publish { id: RequestId::small(3), entry: big }).to_text();
        let e = classify(&text(&frame), &s);
        assert!(matches!(&e, Expect::Error { code: Some(ErrorCode::EntryTooLarge), .. }), "{e:?}");
        assert!(judge_answer(&e, &error("3", "bad_signature")).is_err());
        // A publish without `entry` is invalid_request (FEED-2), and nothing else.
        let e = classify(&text(r#"{"type":"publish","id":4}"#), &s);
        assert!(matches!(&e, Expect::Error { code: Some(ErrorCode::InvalidRequest), .. }), "{e:?}");
        // Other requests keep FRAME-41's freedom.
        let e = classify(&text(r#"{"type":"get","id":5,"entry_id":"zz","seq":0}"#), &s);
        assert!(matches!(&e, Expect::Error { code: None, .. }), "{e:?}");
    }

    #[test]
    fn a_forged_entry_must_be_refused() {
        let key = SecretKey::from_seed([3; 32]);
        let good = EntryDraft::first(1).text("a").sign(&key);
        let mut forged = EntryDraft::first(1).text("b").sign(&key);
        forged.sig = good.sig;
        let mut s = situation(HsState::Established);
        s.base = ClientFrame::Publish(kith_proto::feed::Publish { id: RequestId::small(1), entry: good });
        let f = ClientFrame::Publish(kith_proto::feed::Publish { id: RequestId::small(2), entry: forged });
        let e = classify(&text(&f.to_text()), &s);
        assert!(matches!(&e, Expect::Error { code: Some(ErrorCode::BadSignature), .. }), "{e:?}");
        assert!(judge_answer(
            &e,
            &Item::Frame(r#"{"type":"publish_ok","id":2,"entry_id":"00","duplicate":false}"#.into())
        )
        .is_err());
        assert!(judge_answer(&e, &error("2", "bad_signature")).is_ok());
    }

    #[test]
    fn the_oracle_flags_wrong_answers() {
        // Wrong close code after frame_too_large.
        let after = judge_answer(&Expect::TooLarge, &error("null", "frame_too_large")).expect("answer ok");
        assert!(judge_after(&after, &[Item::Closed(Some((1000, String::new())))], RequestId::small(9)).is_err());
        assert!(
            judge_after(&after, &[Item::Closed(Some((1009, "frame_too_large".into())))], RequestId::small(9)).is_ok()
        );
        // A frame after the error that ends the connection.
        assert!(judge_after(
            &after,
            &[error("null", "internal"), Item::Closed(Some((1009, "frame_too_large".into())))],
            RequestId::small(9)
        )
        .is_err());
        // frame_too_large with an id.
        assert!(judge_answer(&Expect::TooLarge, &error("7", "frame_too_large")).is_err());
        // Wrong id for a malformed frame (FRAME-17).
        let malformed = Expect::Error {
            code: Some(ErrorCode::MalformedFrame),
            id: None,
            close: CloseRule::Open,
            why: String::new(),
        };
        assert!(judge_answer(&malformed, &error("5", "malformed_frame")).is_err());
        assert!(judge_answer(&malformed, &error("null", "invalid_request")).is_err());
        assert_eq!(judge_answer(&malformed, &error("null", "malformed_frame")), Ok(After::Open));
        // An error frame before the 1007 close.
        assert!(judge_answer(&Expect::Utf8, &error("null", "malformed_frame")).is_err());
        assert!(judge_answer(&Expect::Utf8, &Item::Closed(Some((1002, String::new())))).is_err());
        // The connection must stay open: closing it, or a second answer, fails.
        let ok = r#"{"type":"node_info_ok","id":9,"node":"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a","name":"n","versions":["kith/1"],"features":[],"limits":{"max_frame_bytes":65536,"max_entry_bytes":16384,"handshake_timeout_ms":1,"max_backfill":1,"max_replicate":1,"storage_bytes":1,"max_subscriptions":1,"max_nesting_depth":64,"max_connections_per_address":1,"max_pending_handshakes":1,"max_requests_per_second":1,"max_queued_bytes":1,"max_notes":1,"max_note_bytes":16384,"max_follows":1,"max_filter_items":1024,"max_total_filter_items":4096}}"#;
        assert!(judge_after(&After::Open, &[Item::Frame(ok.into())], RequestId::small(9)).is_ok());
        assert!(judge_after(&After::Open, &[Item::Closed(None)], RequestId::small(9)).is_err());
        assert!(
            judge_after(&After::Open, &[error("5", "internal"), Item::Frame(ok.into())], RequestId::small(9)).is_err()
        );
        assert!(judge_after(&After::Open, &[Item::Frame(ok.into())], RequestId::small(10)).is_err());
        // Hello refused: close 1008 with the code as reason.
        let hs = Expect::Error {
            code: None,
            id: Some(RequestId::small(4)),
            close: CloseRule::Close1008,
            why: String::new(),
        };
        let after = judge_answer(&hs, &error("4", "bad_certificate")).expect("ok");
        assert!(
            judge_after(&after, &[Item::Closed(Some((1008, "bad_certificate".into())))], RequestId::small(9)).is_ok()
        );
        assert!(judge_after(&after, &[Item::Frame(ok.into())], RequestId::small(9)).is_err());
        assert!(judge_after(&after, &[Item::Closed(Some((1008, "other".into())))], RequestId::small(9)).is_err());
        // A success with the wrong id, a non-frame, a code outside the registry.
        let valid = Expect::Answer {
            id: RequestId::small(3),
            response: "follows_ok".into(),
            must: Must::Succeed,
            tolerated: vec![],
            close_on_error: CloseRule::Open,
            success_closes: false,
        };
        assert!(judge_answer(&valid, &Item::Frame(r#"{"type":"follows_ok","id":4,"keys":[],"more":false}"#.into()))
            .is_err());
        assert!(
            judge_answer(&valid, &Item::Frame(r#"{"type":"follows_ok","id":3,"keys":[],"more":false}"#.into())).is_ok()
        );
        assert!(judge_answer(&valid, &error("3", "no_such_code")).is_err());
        assert!(judge_answer(&valid, &error("3", "not_found")).is_err());
        assert!(judge_answer(&valid, &Item::Timeout).is_err());
    }

    #[test]
    fn the_oracle_flags_a_lost_canary() {
        let key = SecretKey::from_seed([4; 32]);
        let canary = EntryDraft::first(1).text("canary").sign(&key);
        let other = EntryDraft::first(1).text("canarz").sign(&key);
        let get_ok =
            |e: &kith_proto::Entry, id| Ok(ServerFrame::GetOk(kith_proto::feed::GetOk { id, entry: e.clone() }));
        assert!(judge_canary(&canary, RequestId::small(2), &get_ok(&canary, RequestId::small(2))).is_ok());
        assert!(judge_canary(&canary, RequestId::small(2), &get_ok(&other, RequestId::small(2))).is_err());
        assert!(judge_canary(&canary, RequestId::small(2), &get_ok(&canary, RequestId::small(3))).is_err());
        let missing = Ok(ServerFrame::error(Some(RequestId::small(2)), ErrorCode::NotFound, "gone"));
        assert!(judge_canary(&canary, RequestId::small(2), &missing).is_err());
        assert!(judge_canary(&canary, RequestId::small(2), &Err("connection refused".into())).is_err());
    }
}
