//! The server side of one connection, sans IO: the steps of 06 §3 in their order, the token
//! bucket, the handshake, and the encoding of every answer the session gives itself.
//!
//! quinn-proto's `Connection` is the model: the node feeds each received websocket message to
//! [`ServerSession::receive`] with the time, and gets an [`Action`] back; it never decides a
//! protocol question itself. Time comes in as a parameter (a monotonic [`Instant`] for the
//! bucket and the handshake deadline, Unix milliseconds for certificates); nothing here reads a
//! clock, a socket or a database.
//!
//! The boundaries the node keeps, because they need its state or its timers:
//! - the account lookup in the middle of the handshake ([HS-34]): [`Action::LookupAccount`],
//!   answered with [`ServerSession::account_found`] or [`ServerSession::account_missing`];
//! - hello pacing per remote address ([HS-51]): [`Action::HelloNeedsTurn`], after which the
//!   node waits for the address's turn and calls [`ServerSession::process_hello`];
//! - the handshake timer ([HS-40]): the node sleeps until [`ServerSession::handshake_deadline`]
//!   and then sends [`ServerSession::handshake_timed_out`];
//! - the certificate-expiry timer ([HS-55]): the node ends the session at
//!   [`ServerSession::cert_expires`];
//! - answering in request order ([FRAME-20]): every [`Action`] is due after the answers to
//!   earlier requests, so the node queues it behind the writer completions it still waits for,
//!   and bounds how many it holds;
//! - executing a request against its accounts and store: [`Action::Execute`], whose request the
//!   core's decoders have already checked in full.

#[cfg(feature = "faults")]
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::account::{Account, AccountError, AccountName, KeyReplacement, ReplaceKey};
use crate::encoding::{EntryId, PublicKey};
use crate::entry::{verify_entry, Entry, EntryError, Kind, ProfileContent, VerifiedEntry};
use crate::envelope::RequestId;
use crate::error::{ErrorCode, HasErrorCode};
use crate::feed::{GetTarget, Publish, MAX_FILTER_ITEMS};
#[cfg(feature = "faults")]
use crate::frame::{check_frame_json, FrameJsonError};
use crate::frame::{triage_client_frame, ClientFrame, ErrorFrame, FrameError, RefusedAt, ServerFrame, MAX_FRAME_BYTES};
use crate::handshake::{Auth, HandshakeError, Hello, ServerHandshake, Welcome};
use crate::identity::{AddIdentity, IdentityError, IdentityNote};
use crate::signing::SecretKey;

/// Close code 1000, normal closure (RFC 6455 §7.4.1).
pub const WS_NORMAL_CLOSURE: u16 = 1000;
/// Close code 1008, policy violation: a failed handshake or timeout ([HS-35], [HS-40]).
pub const WS_POLICY_VIOLATION: u16 = 1008;
/// Close code 1009, message too big ([FRAME-6]).
pub const WS_MESSAGE_TOO_BIG: u16 = 1009;

/// One websocket message as received, what the session needs of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received<'a> {
    /// A text message.
    Text(&'a str),
    /// A binary message of this many bytes ([FRAME-2]).
    Binary(usize),
    /// A ping or pong: not a message of the protocol, not metered.
    Control,
    /// The peer's close frame.
    Close,
}

/// What the node does after a received message. Each action is due after the answers to the
/// requests received before it ([FRAME-20]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "the node must carry the action out"]
pub enum Action {
    /// Nothing to do (a ping, a pong).
    Nothing,
    /// Send this frame; the connection stays open.
    Send(ServerFrame),
    /// Send this final error, then close with `ws_code` and the error's code as reason.
    Close {
        /// The final error.
        error: ErrorFrame,
        /// The websocket close code.
        ws_code: u16,
    },
    /// The peer closed the connection.
    Closed,
    /// Answer `node_info` request `id` with the node's description ([HS-4]).
    NodeInfo {
        /// The request id.
        id: RequestId,
    },
    /// A hello waits for its remote address's turn ([HS-51]); the node calls
    /// [`ServerSession::process_hello`] when the turn has come.
    HelloNeedsTurn,
    /// The handshake proved `user`'s certificate: the node looks the account up ([HS-34]) and
    /// calls [`ServerSession::account_found`] or [`ServerSession::account_missing`].
    LookupAccount {
        /// The `auth` request's id.
        id: RequestId,
        /// The certificate's user.
        user: PublicKey,
        /// The certificate's `expires`, Unix milliseconds: the session ends then ([HS-55]).
        cert_expires: u64,
    },
    /// Execute a request of the session's user: every rule of the request that does not depend
    /// on the node's state has been checked.
    Execute {
        /// The session's user.
        user: PublicKey,
        /// The checked request.
        request: Request,
    },
}

/// A request of an established session with every stateless rule checked: what the node
/// executes against its accounts and store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `publish` ([FEED-3]) with its entry verified: size, signature and id ([ENTRY-17],
    /// [ENTRY-18], [ENTRY-1]) and a profile's content ([ENTRY-14]); the chain, the allowance
    /// and the storage are the node's.
    Publish {
        /// The request id.
        id: RequestId,
        /// The verified entry, parsed once from the frame.
        entry: Box<VerifiedEntry>,
    },
    /// `replace_key` with its replacement verified ([ACCT-24] .. [ACCT-29]); whether the new
    /// key is taken ([ACCT-30]) is the node's.
    ReplaceKey {
        /// The request id.
        id: RequestId,
        /// The verified replacement.
        replacement: KeyReplacement,
    },
    /// `add_identity` with its note checked: field limits and address forms ([IDENT-4] ..
    /// [IDENT-8]), authorship ([IDENT-9]) and signature ([IDENT-10]); the per-author bounds
    /// are the node's.
    AddIdentity {
        /// The request id.
        id: RequestId,
        /// The checked note.
        note: IdentityNote,
    },
    /// Any other request: its decoder and the session checked its members.
    Other(ClientFrame),
}

impl Action {
    /// The final error `code` for request `id` (null when unknown), then the close.
    pub fn close(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>, ws_code: u16) -> Action {
        Action::Close { error: ErrorFrame { id, code, message: message.into() }, ws_code }
    }

    /// The error `code` for request `id`; the connection stays open.
    pub fn error(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> Action {
        Action::Send(ServerFrame::error(id, code, message))
    }
}

/// The stateless checks of a published entry as a faulty node makes them (feature `faults`):
/// `None` keeps the session's.
#[cfg(feature = "faults")]
pub type EntryHook = Arc<dyn Fn(&Entry) -> Option<Result<VerifiedEntry, (ErrorCode, String)>> + Send + Sync>;

/// The field checks of an identity note as a faulty node makes them (feature `faults`).
#[cfg(feature = "faults")]
pub type NoteHook = Arc<dyn Fn(&IdentityNote) -> Result<(), IdentityError> + Send + Sync>;

/// Re-decodes a frame the core refused, with one rule relaxed: the node's JSON and boundary
/// faults (feature `faults`); `None` keeps the core's refusal.
#[cfg(feature = "faults")]
pub type RelaxHook =
    Arc<dyn Fn(&str, &FrameError) -> Option<Result<ClientFrame, (FrameError, RefusedAt)>> + Send + Sync>;

/// The checks a faulty node switches off in the session, each making the node break exactly
/// one rule, so that the conformance suite can prove it catches the break. Only a session built
/// with the feature `faults` can be given them (`SessionFaults`); without it every one is off.
#[derive(Debug, Clone, Copy, Default)]
#[cfg_attr(not(feature = "faults"), allow(dead_code))]
pub struct Switches {
    /// Frames over [`MAX_FRAME_BYTES`] are processed ([FRAME-5]).
    pub no_frame_limit: bool,
    /// Frames nested deeper than the limit are processed ([ENC-8]).
    pub no_depth_limit: bool,
    /// No message is ever `rate_limited` ([FRAME-46]).
    pub no_rate_limit: bool,
    /// The bucket holds one token fewer than the rate ([FRAME-47]).
    pub rate_bucket_short: bool,
    /// Certificates are checked against the epoch, not the clock ([CERT-6]).
    pub accept_expired_cert: bool,
    /// An `auth` whose transcript signature does not verify is accepted ([HS-33]).
    pub accept_bad_transcript_sig: bool,
    /// A certificate's user without an account is welcomed ([HS-34]).
    pub accept_unknown_user: bool,
    /// The handshake never times out ([HS-40]).
    pub no_handshake_timeout: bool,
    /// Entries are accepted without their signature checked ([ENTRY-18]).
    pub skip_entry_signature: bool,
    /// A key replacement naming another node is accepted ([ACCT-24]).
    pub replacement_any_node: bool,
    /// The admin may replace its key ([ACCT-25]).
    pub admin_replaces_key: bool,
    /// A key replacement whose `old` is not the session's key is accepted ([ACCT-26]).
    pub replacement_any_old: bool,
    /// A key replacement's `expires` is checked against the epoch ([ACCT-27]).
    pub accept_expired_replacement: bool,
    /// An identity note by another author than the session's user is accepted ([IDENT-9]).
    pub any_note_author: bool,
    /// An identity note is accepted without its signature checked ([IDENT-10]).
    pub skip_note_signature: bool,
}

/// The faults of a faulty node that act in the session (feature `faults`).
#[cfg(feature = "faults")]
#[derive(Clone, Default)]
pub struct SessionFaults {
    /// The checks switched off.
    pub switches: Switches,
    /// The node's re-decoding with one rule relaxed.
    pub relax: Option<RelaxHook>,
    /// The node's faulty checks of a published entry.
    pub entry_checks: Option<EntryHook>,
    /// The node's faulty field checks of an identity note.
    pub note_fields: Option<NoteHook>,
}

#[cfg(feature = "faults")]
impl std::fmt::Debug for SessionFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionFaults")
            .field("switches", &self.switches)
            .field("relax", &self.relax.is_some())
            .field("entry_checks", &self.entry_checks.is_some())
            .field("note_fields", &self.note_fields.is_some())
            .finish()
    }
}

/// What a session is configured with when its connection opens.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The node key, which signs the challenge.
    pub node_key: SecretKey,
    /// A fresh ephemeral secret for this handshake, from a CSPRNG ([HS-14]).
    pub ephemeral_seed: [u8; 32],
    /// `max_requests_per_second`: the size and refill rate of the token bucket that meters received messages ([FRAME-45]).
    pub max_requests_per_second: u64,
    /// How long the handshake may take ([HS-40]).
    pub handshake_timeout: Duration,
    /// When the connection opened (monotonic).
    pub opened: Instant,
}

#[derive(Debug)]
enum State {
    /// Before `welcome`. `pending_hello` waits for its turn ([HS-51]); `challenged` is the
    /// user and `expires` of the certificate of an answered hello.
    Handshake { pending_hello: Option<Box<Hello>>, challenged: Option<(PublicKey, u64)> },
    /// `auth` verified; the node is looking the account up ([HS-34]).
    LookingUp { id: RequestId, user: PublicKey, cert_expires: u64 },
    /// After `welcome`.
    Established { user: PublicKey, cert_expires: u64 },
}

/// The server side of one connection. See the module documentation.
#[derive(Debug)]
pub struct ServerSession {
    /// The node key's public half: key replacements must name it ([ACCT-24]).
    node: PublicKey,
    handshake: ServerHandshake,
    state: State,
    /// Tokens for received messages ([FRAME-45]).
    bucket: TokenBucket,
    rate: u64,
    /// When the handshake must be finished ([HS-40]).
    deadline: Instant,
    #[cfg(feature = "faults")]
    faults: SessionFaults,
}

impl ServerSession {
    /// A session for a connection that has just opened.
    pub fn new(config: SessionConfig) -> Self {
        ServerSession {
            node: config.node_key.public(),
            handshake: ServerHandshake::new(config.node_key, config.ephemeral_seed),
            state: State::Handshake { pending_hello: None, challenged: None },
            bucket: TokenBucket::full(config.max_requests_per_second, config.opened),
            rate: config.max_requests_per_second,
            deadline: config.opened + config.handshake_timeout,
            #[cfg(feature = "faults")]
            faults: SessionFaults::default(),
        }
    }

    /// The same session with checks switched off (feature `faults`).
    #[cfg(feature = "faults")]
    pub fn with_faults(mut self, faults: SessionFaults) -> Self {
        if faults.switches.rate_bucket_short {
            self.bucket = self.bucket.short_by_one();
        }
        self.faults = faults;
        self
    }

    /// Whether the fault that `switch` reads is on; always false without the feature.
    #[inline]
    fn fault(&self, switch: fn(&Switches) -> bool) -> bool {
        #[cfg(feature = "faults")]
        return switch(&self.faults.switches);
        #[cfg(not(feature = "faults"))]
        {
            let _ = switch;
            false
        }
    }

    /// The session's user once `welcome` has been sent.
    pub fn user(&self) -> Option<PublicKey> {
        match self.state {
            State::Established { user, .. } => Some(user),
            _ => None,
        }
    }

    /// When the session's certificate expires, Unix milliseconds, once `welcome` has been sent
    /// ([HS-55]).
    pub fn cert_expires(&self) -> Option<u64> {
        match self.state {
            State::Established { cert_expires, .. } => Some(cert_expires),
            _ => None,
        }
    }

    /// True between an answered hello and `auth` ([HS-30]).
    pub fn awaiting_auth(&self) -> bool {
        matches!(self.state, State::Handshake { .. }) && self.handshake.awaiting_auth()
    }

    /// When the handshake must have finished, while it has not ([HS-40]).
    pub fn handshake_deadline(&self) -> Option<Instant> {
        let open = matches!(self.state, State::Handshake { .. } | State::LookingUp { .. });
        (open && !self.fault(|f| f.no_handshake_timeout)).then_some(self.deadline)
    }

    /// The handshake deadline has passed ([HS-40]).
    pub fn handshake_timed_out(&self) -> Action {
        Action::close(None, ErrorCode::HandshakeTimeout, "the handshake did not finish in time", WS_POLICY_VIOLATION)
    }

    /// Takes one received message at `now` (`unix_ms` on the wall clock) through the steps of
    /// 06 §3: the size (step 1), the kind (step 2), the rules of chapter 1, `type` and `id`
    /// (steps 3 to 6), the rate limit
    /// (step 8: only a message that passed 1 to 6 is answered `rate_limited`, [FRAME-46]), the
    /// state (step 9: [HS-20], [HS-30], [HS-38]) and the request's own rules (step 10).
    pub fn receive(&mut self, message: Received<'_>, now: Instant, unix_ms: u64) -> Action {
        if let State::Handshake { pending_hello, .. } = &mut self.state {
            // A hello whose turn never came is not processed.
            *pending_hello = None;
        }
        let size = match message {
            Received::Text(text) => Some(text.len()),
            Received::Binary(len) => Some(len),
            Received::Control | Received::Close => None,
        };
        // Data messages are metered, all of them; control frames are not messages.
        let found_token = size.is_none() || self.bucket.take(now);
        // Step 1, the size, before everything else, text or binary ([FRAME-5], [FRAME-6]).
        if let Some(len) = size.filter(|len| *len > MAX_FRAME_BYTES && !self.fault(|f| f.no_frame_limit)) {
            let message = format!("frame of {len} bytes exceeds {MAX_FRAME_BYTES}");
            return Action::close(None, ErrorCode::FrameTooLarge, message, WS_MESSAGE_TOO_BIG);
        }
        match message {
            Received::Text(text) => {
                let decoded = self.decode(text);
                self.triaged(text, decoded, found_token, unix_ms)
            }
            // [FRAME-2]: refused, and the connection stays open.
            Received::Binary(_) => Action::error(None, ErrorCode::MalformedFrame, "binary frames are not allowed"),
            Received::Control => Action::Nothing,
            Received::Close => Action::Closed,
        }
    }

    /// Steps 1 to 6 and 10 as the core's decoder takes them (with a faulty node's relaxed rule).
    fn decode(&self, text: &str) -> Result<ClientFrame, (FrameError, RefusedAt)> {
        #[cfg(feature = "faults")]
        {
            if text.len() > MAX_FRAME_BYTES || self.faults.switches.no_depth_limit {
                // Larger than the limit only under `no-frame-limit`.
                let lenient =
                    text.len() > MAX_FRAME_BYTES || matches!(check_frame_json(text), Err(FrameJsonError::TooDeep));
                if lenient {
                    return parse_lenient(text);
                }
            }
            match triage_client_frame(text) {
                Err((e, at)) => match &self.faults.relax {
                    Some(relax) => relax(text, &e).unwrap_or(Err((e, at))),
                    None => Err((e, at)),
                },
                decoded => decoded,
            }
        }
        #[cfg(not(feature = "faults"))]
        triage_client_frame(text)
    }

    /// Step 8, then the frame or its refusal.
    fn triaged(
        &mut self,
        text: &str,
        decoded: Result<ClientFrame, (FrameError, RefusedAt)>,
        found_token: bool,
        unix_ms: u64,
    ) -> Action {
        if !found_token && !self.fault(|f| f.no_rate_limit) {
            let passed = match &decoded {
                Ok(frame) => Some(frame.id()),
                Err((e, at)) if at.passed_envelope() => e.id,
                Err(_) => None,
            };
            if let Some(id) = passed {
                let message = format!("over the rate of {} messages per second on this connection", self.rate);
                return Action::error(Some(id), ErrorCode::RateLimited, message);
            }
        }
        match decoded {
            Ok(frame) => self.frame(frame, unix_ms),
            Err((e, at)) => self.refused(text, e, at),
        }
    }

    /// A frame the decoder refused: steps 1 to 6 answer first; then the state (step 9) before
    /// the members (step 10); a handshake message's error closes ([HS-35]).
    fn refused(&self, text: &str, e: FrameError, at: RefusedAt) -> Action {
        let established = !matches!(self.state, State::Handshake { .. });
        let awaiting_auth = self.awaiting_auth();
        match at {
            RefusedAt::Envelope => Action::Send(e.to_frame()),
            // A hello or auth without a valid id is a failed handshake all the same.
            RefusedAt::Id("hello" | "auth") => Action::close(e.id, e.code, e.message, WS_POLICY_VIOLATION),
            RefusedAt::Id(_) => Action::Send(e.to_frame()),
            // [HS-20] / [HS-30]: a handshake message in the wrong state is bad_handshake before
            // anything about its members.
            RefusedAt::Members("hello") if established || awaiting_auth => Action::close(
                e.id,
                ErrorCode::BadHandshake,
                "hello is only allowed at the start of the handshake",
                WS_POLICY_VIOLATION,
            ),
            RefusedAt::Members("auth") if !awaiting_auth => {
                Action::close(e.id, ErrorCode::BadHandshake, "auth is only allowed after a hello", WS_POLICY_VIOLATION)
            }
            // The core's `hello` decoder checks in the order of [HS-21]..[HS-25] whatever the
            // order of members, and `auth`'s has one member: its error is the answer.
            RefusedAt::Members("hello" | "auth") => Action::close(e.id, e.code, e.message, WS_POLICY_VIOLATION),
            // [HS-38]: before the handshake a request that needs a session is refused as such,
            // whatever is wrong with its members.
            RefusedAt::Members(ty) if !established && ty != "node_info" => {
                Action::error(e.id, ErrorCode::NotAuthenticated, "requests other than node_info need a session")
            }
            // [FEED-2]: a publish without `entry` is invalid_request.
            RefusedAt::Members("publish") if lacks_member(text, "entry") => {
                Action::error(e.id, ErrorCode::InvalidRequest, "publish needs an `entry`")
            }
            RefusedAt::Members(_) => Action::Send(e.to_frame()),
        }
    }

    /// A decoded frame, against the session's state (step 9).
    fn frame(&mut self, frame: ClientFrame, unix_ms: u64) -> Action {
        if let ClientFrame::NodeInfo(m) = &frame {
            return Action::NodeInfo { id: m.id };
        }
        match (&mut self.state, frame) {
            (State::Handshake { .. }, ClientFrame::Hello(hello)) if self.handshake.awaiting_auth() => {
                let e = HandshakeError::Unexpected("server not awaiting hello");
                Action::close(Some(hello.id), e.code(), e.to_string(), WS_POLICY_VIOLATION)
            }
            (State::Handshake { pending_hello, .. }, ClientFrame::Hello(hello)) => {
                *pending_hello = Some(Box::new(hello));
                Action::HelloNeedsTurn
            }
            (State::Handshake { .. }, ClientFrame::Auth(auth)) => self.auth(&auth),
            (State::Handshake { .. } | State::LookingUp { .. }, other) => Action::error(
                Some(other.id()),
                ErrorCode::NotAuthenticated,
                "only node_info, hello and auth are allowed before the handshake",
            ),
            (State::Established { .. }, ClientFrame::Hello(Hello { id, .. }))
            | (State::Established { .. }, ClientFrame::Auth(Auth { id, .. })) => Action::close(
                Some(id),
                ErrorCode::BadHandshake,
                "the session is already authenticated",
                WS_POLICY_VIOLATION,
            ),
            (State::Established { user, .. }, request) => {
                let user = *user;
                self.checked(user, request, unix_ms)
            }
        }
    }

    /// The stateless checks of a request (step 10) that its decoder does not make.
    fn checked(&self, user: PublicKey, frame: ClientFrame, unix_ms: u64) -> Action {
        let request = match frame {
            ClientFrame::Publish(Publish { id, entry }) => match self.verified_entry(entry) {
                Ok(entry) => Request::Publish { id, entry: Box::new(entry) },
                Err((code, message)) => return Action::error(Some(id), code, message),
            },
            ClientFrame::ReplaceKey(ReplaceKey { id, replacement }) => {
                match self.verified_replacement(&replacement, &user, unix_ms) {
                    Ok(()) => Request::ReplaceKey { id, replacement },
                    Err(e) => return Action::error(Some(id), e.code(), e.to_string()),
                }
            }
            ClientFrame::AddIdentity(AddIdentity { id, note }) => match self.checked_note(&note, &user) {
                Ok(()) => Request::AddIdentity { id, note },
                Err(e) => return Action::error(Some(id), e.code(), e.to_string()),
            },
            ClientFrame::Subscribe(m) if m.filter.len() > MAX_FILTER_ITEMS => {
                let message = format!("a filter holds at most {MAX_FILTER_ITEMS} items");
                return Action::error(Some(m.id), ErrorCode::InvalidRequest, message);
            }
            ClientFrame::Replicate(m) if m.limit == 0 => {
                return Action::error(Some(m.id), ErrorCode::InvalidRequest, "limit must be at least 1");
            }
            ClientFrame::Get(m) if m.target().is_none() => {
                let message = "give either entry_id or author and seq";
                return Action::error(Some(m.id), ErrorCode::InvalidRequest, message);
            }
            ClientFrame::Get(m) if matches!(m.target(), Some(GetTarget::Position(_, 0))) => {
                return Action::error(Some(m.id), ErrorCode::InvalidRequest, "seq must be at least 1");
            }
            other => Request::Other(other),
        };
        Action::Execute { user, request }
    }

    /// A published entry's stateless checks, on the connection's own task: size, signature and
    /// id ([ENTRY-17], [ENTRY-18], [ENTRY-1]), then a profile's content ([ENTRY-14]).
    fn verified_entry(&self, entry: Entry) -> Result<VerifiedEntry, (ErrorCode, String)> {
        #[cfg(feature = "faults")]
        if let Some(checks) = &self.faults.entry_checks {
            if let Some(checked) = checks(&entry) {
                return checked;
            }
        }
        let verified = match verify_entry(&entry) {
            Ok(verified) => verified,
            Err(EntryError::BadSignature) if self.fault(|f| f.skip_entry_signature) => {
                let canonical = entry.canonical_bytes();
                VerifiedEntry { id: EntryId::from_bytes(Sha256::digest(&canonical).into()), entry, canonical }
            }
            Err(e) => return Err((e.code(), e.to_string())),
        };
        if verified.entry.kind.as_str() == Kind::PROFILE {
            if let Err(e) = ProfileContent::check(&verified.entry.content) {
                return Err((ErrorCode::MalformedEntry, format!("profile content: {e}")));
            }
        }
        Ok(verified)
    }

    /// An identity note's checks in the spec's order: field limits and address forms
    /// ([IDENT-4] .. [IDENT-8]), then authorship ([IDENT-9]), then the signature ([IDENT-10]).
    fn checked_note(&self, note: &IdentityNote, user: &PublicKey) -> Result<(), IdentityError> {
        #[cfg(feature = "faults")]
        let fields = match &self.faults.note_fields {
            Some(check) => check(note),
            None => note.check_fields(),
        };
        #[cfg(not(feature = "faults"))]
        let fields = note.check_fields();
        fields?;
        if note.author != *user && !self.fault(|f| f.any_note_author) {
            return Err(IdentityError::NotAuthor);
        }
        if self.fault(|f| f.skip_note_signature) {
            return Ok(());
        }
        note.verify_signature()
    }

    /// A key replacement's checks in the spec's order ([ACCT-24] .. [ACCT-29]).
    fn verified_replacement(&self, r: &KeyReplacement, user: &PublicKey, unix_ms: u64) -> Result<(), AccountError> {
        let node = if self.fault(|f| f.replacement_any_node) { r.node } else { self.node };
        let user = if self.fault(|f| f.replacement_any_old) { r.old } else { *user };
        let now = if self.fault(|f| f.accept_expired_replacement) { 0 } else { unix_ms };
        #[cfg(feature = "faults")]
        if self.faults.switches.admin_replaces_key {
            return r.verify_letting_the_admin_replace(&node, &user, now);
        }
        r.verify(&node, &user, now)
    }

    /// The hello whose turn has come ([HS-51]), checked at `unix_ms` ([HS-22] .. [HS-27]):
    /// `challenge`, or the error that closes.
    pub fn process_hello(&mut self, unix_ms: u64) -> Action {
        let now = if self.fault(|f| f.accept_expired_cert) { 0 } else { unix_ms };
        let State::Handshake { pending_hello, challenged } = &mut self.state else { return Action::Nothing };
        let Some(hello) = pending_hello.take() else { return Action::Nothing };
        match self.handshake.handle_hello(&hello, now) {
            Ok(challenge) => {
                *challenged = Some((hello.cert.user, hello.cert.expires));
                Action::Send(ServerFrame::Challenge(challenge))
            }
            Err(e) => Action::close(Some(hello.id), e.code(), e.to_string(), WS_POLICY_VIOLATION),
        }
    }

    /// `auth` ([HS-33]): the transcript signature, then the account lookup.
    fn auth(&mut self, auth: &Auth) -> Action {
        let challenged = match &self.state {
            State::Handshake { challenged, .. } => *challenged,
            _ => None,
        };
        let (user, cert_expires) = match (self.handshake.handle_auth(auth), challenged) {
            (Ok(done), _) => (done.user, done.cert_expires),
            // The fault: the answered hello's certificate stands in for the proof.
            (Err(HandshakeError::BadSignature), Some(hello)) if self.fault(|f| f.accept_bad_transcript_sig) => hello,
            (Err(e), _) => return Action::close(Some(auth.id), e.code(), e.to_string(), WS_POLICY_VIOLATION),
        };
        self.state = State::LookingUp { id: auth.id, user, cert_expires };
        Action::LookupAccount { id: auth.id, user, cert_expires }
    }

    /// The node found the account of [`Action::LookupAccount`]: `welcome` ([HS-36]), and the
    /// session is established.
    pub fn account_found(&mut self, account: Account) -> Action {
        let State::LookingUp { id, user, cert_expires } = self.state else { return Action::Nothing };
        self.state = State::Established { user, cert_expires };
        Action::Send(ServerFrame::Welcome(Welcome { id, account }))
    }

    /// The certificate's user has no account: `unknown_user`, and the close ([HS-34]).
    pub fn account_missing(&mut self) -> Action {
        let State::LookingUp { id, user, .. } = self.state else { return Action::Nothing };
        if self.fault(|f| f.accept_unknown_user) {
            if let Some(account) = throwaway_account(user) {
                return self.account_found(account);
            }
        }
        Action::close(
            Some(id),
            ErrorCode::UnknownUser,
            "the certificate's user has no account here",
            WS_POLICY_VIOLATION,
        )
    }
}

/// Whether `text`, a JSON object, lacks `member` (read only on an error path).
fn lacks_member(text: &str, member: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v.get(member).is_none())
}

/// The account the `accept-unknown-user` fault welcomes an unknown user with.
fn throwaway_account(user: PublicKey) -> Option<Account> {
    Some(Account {
        key: user,
        name: AccountName::new("unknown").ok()?,
        parent: None,
        invite_allowance: Some(0),
        publish_allowance: Some(0),
        published_entries: 0,
        published_bytes: 0,
    })
}

/// Decodes a frame as if the size ([FRAME-5]) or depth ([ENC-8]) rule did not exist: for the
/// `no-frame-limit` and `no-depth-limit` faults only. Any other defect is `malformed_frame` or
/// `invalid_request` with a null id.
#[cfg(feature = "faults")]
fn parse_lenient(text: &str) -> Result<ClientFrame, (FrameError, RefusedAt)> {
    let fail = |code, message: String| (FrameError { id: None, code, message }, RefusedAt::Envelope);
    if text.len() > MAX_FRAME_BYTES {
        if let Err(e) = check_frame_json(text) {
            return Err(fail(ErrorCode::MalformedFrame, e.to_string()));
        }
    }
    serde_json::from_str::<ClientFrame>(text).map_err(|e| fail(ErrorCode::InvalidRequest, e.to_string()))
}

/// Nanoseconds in a second: a token is this many nano-tokens, so that refilling at R tokens per
/// second is adding R nano-tokens per elapsed nanosecond, in exact integers.
const NANOS: u128 = 1_000_000_000;

/// A connection's token bucket of received messages ([FRAME-45]): holds at most R tokens, full
/// when the connection opens, refilled continuously at R tokens per second. Kept in exact
/// nano-tokens, so a message that finds a whole token always gets it ([FRAME-47]).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u128,
    /// Most nano-tokens held: `rate` whole tokens (one fewer under the fault rate-bucket-short).
    cap: u128,
    nano_tokens: u128,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `rate` tokens at `now`, refilled at `rate` per second.
    pub fn full(rate: u64, now: Instant) -> Self {
        let rate = u128::from(rate);
        TokenBucket { rate, cap: rate * NANOS, nano_tokens: rate * NANOS, last: now }
    }

    /// A bucket one token smaller (the fault rate-bucket-short, [FRAME-47]).
    #[cfg(feature = "faults")]
    fn short_by_one(mut self) -> Self {
        self.cap = self.cap.saturating_sub(NANOS);
        self.nano_tokens = self.cap;
        self
    }

    /// Takes one token if the bucket holds at least one at `now`; false when the message is over
    /// the rate (it then takes nothing).
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        self.last = self.last.max(now);
        self.nano_tokens = self.nano_tokens.saturating_add(elapsed.saturating_mul(self.rate)).min(self.cap);
        if self.nano_tokens >= NANOS {
            self.nano_tokens -= NANOS;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests;
