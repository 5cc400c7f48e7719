//! The client's side of a connection, sans-IO: the handshake of chapter 5 on
//! [`ClientHandshake`], the request ids of the session, and the reading of each frame the node
//! sends as a push or as the answer to a request still outstanding (06 §2).
//!
//! A driver (the runner's, the fuzzer's, the tools', the node's tests: `kith-client`) owns the
//! socket and the clock; it tells the session what it sent ([`ClientSession::sent`]) and asks it
//! what a received frame is ([`ClientSession::receive`]). The session never blocks and never
//! reads a clock, so the same code runs in a unit test and over a websocket.

use std::collections::VecDeque;

use serde_json::Value;
use thiserror::Error;

use crate::account::Account;
use crate::envelope::RequestId;
use crate::error::{ErrorCode, HasErrorCode};
use crate::handshake::{Auth, Challenge, ClientConfig, ClientHandshake, HandshakeError, Hello, Welcome};

/// Why the client session refused a step.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ClientSessionError {
    /// The handshake failed on the client's side (a challenge from another node, a transcript
    /// signature that does not verify, a message the state does not allow).
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// The session has handed out every request id up to 2^53 − 1 ([FRAME-13]).
    #[error("no request id left below 2^53")]
    IdsExhausted,
    /// A handshake step came in a state that does not allow it (a second hello, a challenge
    /// before the hello).
    #[error("{0} in handshake state {1}")]
    OutOfOrder(&'static str, &'static str),
}

impl HasErrorCode for ClientSessionError {
    fn code(&self) -> ErrorCode {
        match self {
            ClientSessionError::Handshake(e) => e.code(),
            ClientSessionError::IdsExhausted => ErrorCode::InvalidRequest,
            ClientSessionError::OutOfOrder(..) => ErrorCode::BadHandshake,
        }
    }
}

/// A frame the node sent on its own, not as the answer to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Push {
    /// An entry matching a subscription.
    Event,
    /// The end of a subscription's stored entries.
    StoredEnd,
    /// The node is about to close the connection; nothing but the close may follow
    /// ([FRAME-32]).
    Closing,
    /// An error whose id is null: the node could not read the request it answers, so no
    /// outstanding id is settled by it.
    UnaddressedError,
}

/// What a received frame is, as far as the session can tell from its `type` and `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// A push ([`Push`]).
    Push(Push),
    /// The answer to the outstanding request with this id; it is outstanding no longer. The id
    /// is as sent: a frame sent raw may carry one above 2^53 − 1 on purpose.
    Answer(u64),
    /// A frame carrying an id that no outstanding request has: a second answer, or an id never
    /// sent. Each request is answered once ([FRAME-18]).
    Stray(u64),
    /// Not a JSON object with a string `type` and an integer `id`: the session cannot say.
    Unreadable,
}

impl Received {
    /// Whether the frame is a push.
    pub fn is_push(self) -> bool {
        matches!(self, Received::Push(_))
    }
}

/// The push a frame of wire type `ty` is, if any; an `error` is one only when its id is null.
fn push_of(ty: &str, id: Option<&Value>) -> Option<Push> {
    match ty {
        "event" => Some(Push::Event),
        "stored_end" => Some(Push::StoredEnd),
        "closing" => Some(Push::Closing),
        "error" if id.is_some_and(Value::is_null) => Some(Push::UnaddressedError),
        _ => None,
    }
}

/// The push `text` is, if it is one: an `event`, `stored_end`, `closing`, or an `error` with a
/// null id. Frames that are not JSON objects with a string `type` are not pushes.
pub fn push_kind(text: &str) -> Option<Push> {
    let v: Value = serde_json::from_str(text).ok()?;
    push_of(v.get("type")?.as_str()?, v.get("id"))
}

/// The integer `id` member of a frame's text, if it has one (any `u64`, in range or not: a
/// frame sent raw may carry an id the node must refuse).
pub fn frame_id(text: &str) -> Option<u64> {
    let v: Value = serde_json::from_str(text).ok()?;
    v.get("id").and_then(Value::as_u64)
}

#[derive(Debug)]
enum State {
    /// No hello sent yet.
    Fresh,
    /// The hello went out; the challenge is awaited.
    AwaitChallenge(Box<ClientHandshake>),
    /// The auth went out; the welcome is awaited.
    AwaitWelcome(Box<ClientHandshake>),
    /// The node welcomed the session as this account.
    Established(Box<Account>),
    /// A handshake step failed; the session cannot log in any more.
    Failed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Fresh => "fresh",
            State::AwaitChallenge(_) => "awaiting challenge",
            State::AwaitWelcome(_) => "awaiting welcome",
            State::Established(_) => "established",
            State::Failed => "failed",
        }
    }
}

/// The client's side of one connection: handshake, request ids and outstanding requests.
#[derive(Debug)]
pub struct ClientSession {
    state: State,
    next_id: u64,
    /// Ids of requests sent and not yet answered, oldest first.
    outstanding: VecDeque<u64>,
    /// Whether a `closing` push came: after it the node may send nothing but the close.
    closing_seen: bool,
}

impl Default for ClientSession {
    fn default() -> Self {
        ClientSession::new()
    }
}

impl ClientSession {
    /// A fresh session whose request ids count up from 1.
    pub fn new() -> ClientSession {
        ClientSession::starting_at(1)
    }

    /// A fresh session whose request ids count up from `first_id` (a fuzzer draws it, so that
    /// a case's frames are a function of its seed).
    pub fn starting_at(first_id: u64) -> ClientSession {
        ClientSession { state: State::Fresh, next_id: first_id, outstanding: VecDeque::new(), closing_seen: false }
    }

    /// The next request id, checked to stay at most 2^53 − 1 ([FRAME-13]).
    pub fn next_id(&mut self) -> Result<RequestId, ClientSessionError> {
        let id = RequestId::new(self.next_id).ok_or(ClientSessionError::IdsExhausted)?;
        self.next_id += 1;
        Ok(id)
    }

    /// Books a request sent with this id as outstanding until its answer comes.
    pub fn sent(&mut self, id: u64) {
        self.outstanding.push_back(id);
    }

    /// Books a frame sent as raw text: outstanding under its `id`, if it has an integer one.
    pub fn sent_text(&mut self, text: &str) {
        if let Some(id) = frame_id(text) {
            self.sent(id);
        }
    }

    /// The ids of requests sent and not yet answered, oldest first.
    pub fn outstanding(&self) -> impl Iterator<Item = u64> + '_ {
        self.outstanding.iter().copied()
    }

    /// Whether a `closing` push has come ([FRAME-32]: nothing but the close may follow it).
    pub fn closing_seen(&self) -> bool {
        self.closing_seen
    }

    /// Reads a frame the node sent: a push, the answer to an outstanding request (which is
    /// then settled), a stray, or unreadable.
    #[must_use = "the caller decides what to do with a push, an answer or a stray"]
    pub fn receive(&mut self, text: &str) -> Received {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return Received::Unreadable;
        };
        let Some(ty) = v.get("type").and_then(Value::as_str) else {
            return Received::Unreadable;
        };
        if let Some(push) = push_of(ty, v.get("id")) {
            self.closing_seen |= push == Push::Closing;
            return Received::Push(push);
        }
        let Some(id) = v.get("id").and_then(Value::as_u64) else {
            return Received::Unreadable;
        };
        match self.outstanding.iter().position(|x| *x == id) {
            Some(pos) => {
                self.outstanding.remove(pos);
                Received::Answer(id)
            }
            None => Received::Stray(id),
        }
    }

    /// Starts the handshake: the `hello` to send, under the next request id, for the peer and
    /// certificate of `config` and an ephemeral key from `ephemeral_seed` (a CSPRNG's, or a
    /// fixed one for vectors and fuzz seeds).
    pub fn hello(&mut self, config: ClientConfig, ephemeral_seed: [u8; 32]) -> Result<Hello, ClientSessionError> {
        if !matches!(self.state, State::Fresh) {
            return Err(ClientSessionError::OutOfOrder("hello", self.state.name()));
        }
        let id = self.next_id()?;
        let (hs, hello) = ClientHandshake::start(config, ephemeral_seed, id);
        self.sent(id.get());
        self.state = State::AwaitChallenge(Box::new(hs));
        Ok(hello)
    }

    /// Checks the node's challenge (signed by the dialled node over the transcript) and returns
    /// the `auth` to send under the next request id.
    pub fn handle_challenge(&mut self, challenge: &Challenge) -> Result<Auth, ClientSessionError> {
        if !matches!(self.state, State::AwaitChallenge(_)) {
            return Err(ClientSessionError::OutOfOrder("challenge", self.state.name()));
        }
        // A failed step leaves the session failed: the handshake is not retried on it.
        let State::AwaitChallenge(mut hs) = std::mem::replace(&mut self.state, State::Failed) else {
            return Err(ClientSessionError::OutOfOrder("challenge", "failed"));
        };
        let id = self.next_id()?;
        let auth = hs.handle_challenge(challenge, id)?;
        self.sent(id.get());
        self.state = State::AwaitWelcome(hs);
        Ok(auth)
    }

    /// Accepts the node's `welcome`: the session is established as its account.
    pub fn handle_welcome(&mut self, welcome: &Welcome) -> Result<&Account, ClientSessionError> {
        if !matches!(self.state, State::AwaitWelcome(_)) {
            return Err(ClientSessionError::OutOfOrder("welcome", self.state.name()));
        }
        let State::AwaitWelcome(mut hs) = std::mem::replace(&mut self.state, State::Failed) else {
            return Err(ClientSessionError::OutOfOrder("welcome", "failed"));
        };
        let account = hs.handle_welcome(welcome)?;
        self.state = State::Established(Box::new(account));
        match &self.state {
            State::Established(a) => Ok(a),
            _ => Err(ClientSessionError::OutOfOrder("welcome", "failed")),
        }
    }

    /// The account the node welcomed the session as, once established.
    pub fn account(&self) -> Option<&Account> {
        match &self.state {
            State::Established(a) => Some(a),
            _ => None,
        }
    }

    /// Whether the handshake has finished with a `welcome`.
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{Account, AccountName};
    use crate::cert::Certificate;
    use crate::handshake::ServerHandshake;
    use crate::signing::SecretKey;
    use crate::version::PROTOCOL_VERSION;

    fn config(user: &SecretKey, node: &SecretKey) -> ClientConfig {
        let peer = SecretKey::from_seed([3; 32]);
        let cert = Certificate::issue(user, peer.public(), 4_102_444_800_000);
        ClientConfig { peer, cert, expected_node: node.public(), version: PROTOCOL_VERSION.into() }
    }

    fn account(user: &SecretKey) -> Account {
        Account {
            key: user.public(),
            name: AccountName::new("alice").expect("a valid name"),
            parent: None,
            invite_allowance: None,
            publish_allowance: None,
            published_entries: 0,
            published_bytes: 0,
        }
    }

    #[test]
    fn ids_count_up_and_stop_at_the_largest() {
        let mut s = ClientSession::new();
        assert_eq!(s.next_id(), Ok(RequestId::small(1)));
        assert_eq!(s.next_id(), Ok(RequestId::small(2)));
        let mut s = ClientSession::starting_at(RequestId::MAX.get());
        assert_eq!(s.next_id(), Ok(RequestId::MAX));
        assert_eq!(s.next_id(), Err(ClientSessionError::IdsExhausted));
        assert_eq!(ClientSessionError::IdsExhausted.code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn frames_are_pushes_answers_strays_or_unreadable() {
        let mut s = ClientSession::new();
        s.sent(4);
        s.sent_text(r#"{"type":"heads","id":5,"authors":[]}"#);
        assert_eq!(s.outstanding().collect::<Vec<_>>(), [4, 5]);
        assert_eq!(s.receive(r#"{"type":"event","sub":4,"entry":{}}"#), Received::Push(Push::Event));
        assert_eq!(s.receive(r#"{"type":"stored_end","sub":4}"#), Received::Push(Push::StoredEnd));
        let unaddressed = r#"{"type":"error","id":null,"code":"malformed_frame","message":"m"}"#;
        assert_eq!(s.receive(unaddressed), Received::Push(Push::UnaddressedError));
        assert_eq!(s.receive(r#"{"type":"heads_ok","id":5,"heads":[]}"#), Received::Answer(5));
        assert_eq!(s.receive(r#"{"type":"heads_ok","id":5,"heads":[]}"#), Received::Stray(5));
        assert_eq!(s.receive(r#"{"type":"error","id":4,"code":"internal","message":""}"#), Received::Answer(4));
        assert_eq!(s.outstanding().count(), 0);
        assert_eq!(s.receive("not json"), Received::Unreadable);
        assert_eq!(s.receive(r#"{"id":3}"#), Received::Unreadable);
        assert_eq!(s.receive(r#"{"type":"publish_ok","id":"x"}"#), Received::Unreadable);
        assert!(!s.closing_seen());
        assert_eq!(s.receive(r#"{"type":"closing","code":"shutting_down"}"#), Received::Push(Push::Closing));
        assert!(s.closing_seen());
        assert_eq!(push_kind(r#"{"type":"error","id":7}"#), None);
        assert_eq!(push_kind(r#"{"type":"closing"}"#), Some(Push::Closing));
        assert_eq!(frame_id(r#"{"type":"x","id":9007199254740993}"#), Some(9_007_199_254_740_993));
    }

    #[test]
    fn logs_in_against_the_core_server() {
        let (user, node) = (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32]));
        let mut client = ClientSession::new();
        let hello = client.hello(config(&user, &node), [4; 32]).expect("a fresh session says hello");
        assert_eq!(hello.id, RequestId::small(1));
        assert!(matches!(client.hello(config(&user, &node), [4; 32]), Err(ClientSessionError::OutOfOrder(..))));

        let mut server = ServerHandshake::new(node.clone(), [5; 32]);
        let challenge = server.handle_hello(&hello, 1_700_000_000_000).expect("the node challenges a valid hello");
        assert_eq!(client.receive(&serde_json::to_string(&challenge).unwrap_or_default()), Received::Unreadable);
        let auth = client.handle_challenge(&challenge).expect("the dialled node signed the challenge");
        assert_eq!(auth.id, RequestId::small(2));
        let authed = server.handle_auth(&auth).expect("the transcript signature verifies");
        assert_eq!(authed.user, user.public());
        assert!(!client.is_established());
        let welcome = Welcome { id: auth.id, account: account(&user) };
        assert_eq!(client.handle_welcome(&welcome).map(|a| a.key), Ok(user.public()));
        assert!(client.is_established());
        assert_eq!(client.account().map(|a| a.name.as_str()), Some("alice"));
        assert!(matches!(client.handle_challenge(&challenge), Err(ClientSessionError::OutOfOrder(..))));
        assert!(client.is_established(), "a late challenge does not undo the session");
    }

    #[test]
    fn a_challenge_from_another_node_fails_the_session() {
        let (user, node, other) =
            (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32]), SecretKey::from_seed([9; 32]));
        let mut client = ClientSession::new();
        let hello = client.hello(config(&user, &node), [4; 32]).expect("hello");
        let mut server = ServerHandshake::new(other, [5; 32]);
        let challenge = server.handle_hello(&hello, 1_700_000_000_000).expect("the other node challenges too");
        let err = client.handle_challenge(&challenge).expect_err("signed by the wrong node");
        assert!(matches!(err, ClientSessionError::Handshake(HandshakeError::WrongNode { .. })));
        assert_eq!(err.code(), ErrorCode::BadSignature);
        let welcome = Welcome { id: RequestId::small(2), account: account(&user) };
        assert!(client.handle_welcome(&welcome).is_err());
        assert!(!client.is_established());
    }
}
