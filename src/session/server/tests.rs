//! The session fed texts and times, its actions asserted: no socket, no clock.

use super::*;
use crate::cert::Certificate;
use crate::handshake::{ClientConfig, ClientHandshake};
use crate::version::PROTOCOL_VERSION;

const RATE: u64 = 4;

fn node() -> SecretKey {
    SecretKey::from_seed([9; 32])
}

fn session(t0: Instant) -> ServerSession {
    ServerSession::new(SessionConfig {
        node_key: node(),
        ephemeral_seed: [4; 32],
        max_requests_per_second: RATE,
        handshake_timeout: Duration::from_secs(10),
        opened: t0,
    })
}

/// The error an action sends or closes with: (id, code, closes).
fn error_of(action: &Action) -> Option<(Option<u64>, ErrorCode, bool)> {
    match action {
        Action::Send(ServerFrame::Error(e)) => Some((e.id.map(RequestId::get), e.code, false)),
        Action::Close { error, .. } => Some((error.id.map(RequestId::get), error.code, true)),
        _ => None,
    }
}

fn text(s: &mut ServerSession, t: &str, now: Instant) -> Action {
    s.receive(Received::Text(t), now, 0)
}

/// A client's hello for a certificate expiring at `expires`, and the client to go on with.
fn client(expires: u64) -> (ClientHandshake, Hello) {
    let user = SecretKey::from_seed([1; 32]);
    let peer = SecretKey::from_seed([2; 32]);
    let cert = Certificate::issue(&user, peer.public(), expires);
    let config = ClientConfig { peer, cert, expected_node: node().public(), version: PROTOCOL_VERSION.into() };
    ClientHandshake::start(config, [3; 32], RequestId::small(1))
}

fn hello_text(hello: &Hello) -> String {
    ClientFrame::Hello(hello.clone()).to_text()
}

#[test]
fn binary_is_malformed_frame_and_the_connection_stays() {
    let t0 = Instant::now();
    let mut s = session(t0);
    assert_eq!(error_of(&s.receive(Received::Binary(10), t0, 0)), Some((None, ErrorCode::MalformedFrame, false)));
    assert_eq!(s.receive(Received::Control, t0, 0), Action::Nothing);
    assert_eq!(s.receive(Received::Close, t0, 0), Action::Closed);
}

#[test]
fn oversize_closes_with_frame_too_large_text_or_binary() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let big = format!(r#"{{"type":"node_info","id":1,"pad":"{}"}}"#, "x".repeat(MAX_FRAME_BYTES));
    let action = text(&mut s, &big, t0);
    assert_eq!(error_of(&action), Some((None, ErrorCode::FrameTooLarge, true)));
    assert!(matches!(action, Action::Close { ws_code: WS_MESSAGE_TOO_BIG, .. }));
    let mut s = session(t0);
    assert_eq!(
        error_of(&s.receive(Received::Binary(MAX_FRAME_BYTES + 1), t0, 0)),
        Some((None, ErrorCode::FrameTooLarge, true))
    );
}

#[test]
fn rate_limited_only_after_steps_1_to_6_pass() {
    let t0 = Instant::now();
    let mut s = session(t0);
    for _ in 0..RATE {
        assert_eq!(text(&mut s, r#"{"type":"node_info","id":1}"#, t0), Action::NodeInfo { id: RequestId::small(1) });
    }
    // Over the rate: a frame that fails steps 1 to 6 gets its own error ...
    assert_eq!(error_of(&text(&mut s, "{", t0)), Some((None, ErrorCode::MalformedFrame, false)));
    assert_eq!(
        error_of(&text(&mut s, r#"{"type":"teleport","id":2}"#, t0)),
        Some((Some(2), ErrorCode::UnknownType, false))
    );
    assert_eq!(error_of(&text(&mut s, r#"{"type":"node_info"}"#, t0)), Some((None, ErrorCode::InvalidRequest, false)));
    // ... and one that passed them is rate_limited, whatever its members or the state.
    assert_eq!(
        error_of(&text(&mut s, r#"{"type":"node_info","id":3}"#, t0)),
        Some((Some(3), ErrorCode::RateLimited, false))
    );
    assert_eq!(
        error_of(&text(&mut s, r#"{"type":"get","id":4,"seq":"x"}"#, t0)),
        Some((Some(4), ErrorCode::RateLimited, false))
    );
    assert_eq!(
        error_of(&text(&mut s, r#"{"type":"heads","id":5,"authors":[]}"#, t0)),
        Some((Some(5), ErrorCode::RateLimited, false))
    );
    // A quarter second later one token is back.
    let later = t0 + Duration::from_millis(250);
    assert_eq!(text(&mut s, r#"{"type":"node_info","id":6}"#, later), Action::NodeInfo { id: RequestId::small(6) });
}

#[test]
fn not_authenticated_before_the_handshake_whatever_the_members() {
    let t0 = Instant::now();
    let mut s = session(t0);
    assert_eq!(
        error_of(&text(&mut s, r#"{"type":"heads","id":5,"authors":[]}"#, t0)),
        Some((Some(5), ErrorCode::NotAuthenticated, false))
    );
    assert_eq!(
        error_of(&text(&mut s, r#"{"type":"get","id":6,"seq":"x"}"#, t0)),
        Some((Some(6), ErrorCode::NotAuthenticated, false))
    );
    // A frame without an id fails at step 6, before the state.
    assert_eq!(
        error_of(&text(&mut s, r#"{"type":"heads","authors":[]}"#, t0)),
        Some((None, ErrorCode::InvalidRequest, false))
    );
}

#[test]
fn a_hellos_errors_close() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let action = text(&mut s, r#"{"type":"hello","id":1,"version":"kith/9"}"#, t0);
    assert_eq!(error_of(&action), Some((Some(1), ErrorCode::InvalidRequest, true)));
    let mut s = session(t0);
    let (_, mut hello) = client(1000);
    hello.version = "kith/9".into();
    assert_eq!(error_of(&text(&mut s, &hello_text(&hello), t0)), Some((Some(1), ErrorCode::UnsupportedVersion, true)));
    // An auth before a hello is bad_handshake, whatever its members.
    let mut s = session(t0);
    assert_eq!(
        error_of(&text(&mut s, r#"{"type":"auth","id":2,"sig":"x"}"#, t0)),
        Some((Some(2), ErrorCode::BadHandshake, true))
    );
    // Without an id, a hello still closes.
    let mut s = session(t0);
    assert_eq!(error_of(&text(&mut s, r#"{"type":"hello"}"#, t0)), Some((None, ErrorCode::InvalidRequest, true)));
}

#[test]
fn handshake_to_lookup_and_welcome() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let (mut c, hello) = client(5000);
    assert_eq!(text(&mut s, &hello_text(&hello), t0), Action::HelloNeedsTurn);
    let Action::Send(ServerFrame::Challenge(challenge)) = s.process_hello(1000) else { panic!("no challenge") };
    assert!(s.awaiting_auth());
    // A second hello is bad_handshake and closes.
    let mut twice = session(t0);
    assert_eq!(text(&mut twice, &hello_text(&hello), t0), Action::HelloNeedsTurn);
    let _ = twice.process_hello(1000);
    assert_eq!(error_of(&text(&mut twice, &hello_text(&hello), t0)), Some((Some(1), ErrorCode::BadHandshake, true)));
    let auth = c.handle_challenge(&challenge, RequestId::small(2)).expect("challenge");
    let user = SecretKey::from_seed([1; 32]).public();
    assert_eq!(
        text(&mut s, &ClientFrame::Auth(auth).to_text(), t0),
        Action::LookupAccount { id: RequestId::small(2), user, cert_expires: 5000 }
    );
    let account = throwaway_account(user).expect("account");
    let Action::Send(ServerFrame::Welcome(w)) = s.account_found(account.clone()) else { panic!("no welcome") };
    assert_eq!((w.id, w.account), (RequestId::small(2), account));
    assert_eq!((s.user(), s.cert_expires(), s.handshake_deadline()), (Some(user), Some(5000), None));
    // Established: requests are the node's to execute; handshake messages close.
    assert!(matches!(text(&mut s, r#"{"type":"heads","id":3,"authors":[]}"#, t0), Action::Execute { .. }));
    assert_eq!(error_of(&text(&mut s, &hello_text(&hello), t0)), Some((Some(1), ErrorCode::BadHandshake, true)));
}

#[test]
fn an_expired_certificate_and_an_unknown_user_close() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let (mut c, hello) = client(5000);
    assert_eq!(text(&mut s, &hello_text(&hello), t0), Action::HelloNeedsTurn);
    assert_eq!(error_of(&s.process_hello(5000)), Some((Some(1), ErrorCode::CertExpired, true)));
    let mut s = session(t0);
    assert_eq!(text(&mut s, &hello_text(&hello), t0), Action::HelloNeedsTurn);
    let Action::Send(ServerFrame::Challenge(challenge)) = s.process_hello(10) else { panic!("no challenge") };
    let auth = c.handle_challenge(&challenge, RequestId::small(2)).expect("challenge");
    assert!(matches!(text(&mut s, &ClientFrame::Auth(auth).to_text(), t0), Action::LookupAccount { .. }));
    assert_eq!(error_of(&s.account_missing()), Some((Some(2), ErrorCode::UnknownUser, true)));
}

#[test]
fn a_hello_whose_turn_never_came_is_dropped() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let (_, hello) = client(5000);
    assert_eq!(text(&mut s, &hello_text(&hello), t0), Action::HelloNeedsTurn);
    assert_eq!(s.receive(Received::Control, t0, 0), Action::Nothing);
    assert_eq!(s.process_hello(10), Action::Nothing);
    assert_eq!(s.handshake_deadline(), Some(t0 + Duration::from_secs(10)));
    assert!(matches!(s.handshake_timed_out(), Action::Close { ws_code: WS_POLICY_VIOLATION, .. }));
}

#[test]
fn bucket_is_full_at_open_and_refills_continuously() {
    let t0 = Instant::now();
    let mut b = TokenBucket::full(4, t0);
    assert!((0..4).all(|_| b.take(t0)));
    assert!(!b.take(t0));
    // A quarter second at 4/s is exactly one token; a hair less is not.
    assert!(!b.take(t0 + Duration::from_nanos(249_999_999)));
    assert!(b.take(t0 + Duration::from_millis(250)));
    assert!(!b.take(t0 + Duration::from_millis(250)));
    // Never more than R, however long the pause.
    let later = t0 + Duration::from_secs(3600);
    assert!((0..4).all(|_| b.take(later)));
    assert!(!b.take(later));
    // Time going backwards (it cannot with a monotonic clock) refills nothing.
    assert!(!b.take(t0));
}

#[test]
fn huge_rates_do_not_overflow() {
    let t0 = Instant::now();
    let mut b = TokenBucket::full((1 << 53) - 1, t0);
    assert!(b.take(t0 + Duration::from_secs(1 << 40)));
}

/// A session through its handshake, for the user of [`client`].
fn established(t0: Instant) -> (ServerSession, PublicKey) {
    let mut s = session(t0);
    let (mut c, hello) = client(5000);
    assert_eq!(text(&mut s, &hello_text(&hello), t0), Action::HelloNeedsTurn);
    let Action::Send(ServerFrame::Challenge(challenge)) = s.process_hello(10) else { panic!("no challenge") };
    let auth = c.handle_challenge(&challenge, RequestId::small(2)).expect("challenge");
    assert!(matches!(text(&mut s, &ClientFrame::Auth(auth).to_text(), t0), Action::LookupAccount { .. }));
    let user = SecretKey::from_seed([1; 32]).public();
    assert!(matches!(s.account_found(throwaway_account(user).expect("account")), Action::Send(_)));
    (s, user)
}

#[test]
fn a_publish_is_executed_with_its_entry_verified_and_a_bad_one_refused() {
    let t0 = Instant::now();
    let (mut s, user) = established(t0);
    let author = SecretKey::from_seed([1; 32]);
    let entry = crate::entry::EntryDraft::first(1).sign(&author);
    let publish = ClientFrame::Publish(Publish { id: RequestId::small(7), entry: entry.clone() }).to_text();
    let later = t0 + Duration::from_secs(1);
    let Action::Execute { user: who, request: Request::Publish { id, entry: verified } } =
        text(&mut s, &publish, later)
    else {
        panic!("not executed")
    };
    assert_eq!((who, id), (user, RequestId::small(7)));
    assert_eq!(verified.entry, entry);
    let mut forged = entry;
    forged.sig = crate::Signature::from_bytes([0; 64]);
    let publish = ClientFrame::Publish(Publish { id: RequestId::small(8), entry: forged }).to_text();
    assert_eq!(error_of(&text(&mut s, &publish, later)), Some((Some(8), ErrorCode::BadSignature, false)));
}

#[test]
fn a_key_replacement_is_verified_in_the_session() {
    let t0 = Instant::now();
    let (mut s, _) = established(t0);
    let old = SecretKey::from_seed([1; 32]);
    let new = SecretKey::from_seed([6; 32]);
    let good = KeyReplacement::sign(node().public(), &old, &new, 100);
    let frame =
        |id, replacement| ClientFrame::ReplaceKey(ReplaceKey { id: RequestId::small(id), replacement }).to_text();
    assert!(matches!(
        s.receive(Received::Text(&frame(3, good.clone())), t0, 50),
        Action::Execute { request: Request::ReplaceKey { .. }, .. }
    ));
    // Expired at the session's wall clock ([ACCT-27]).
    assert_eq!(
        error_of(&s.receive(Received::Text(&frame(4, good)), t0, 100)),
        Some((Some(4), ErrorCode::InvalidRequest, false))
    );
    let elsewhere = KeyReplacement::sign(SecretKey::from_seed([8; 32]).public(), &old, &new, 100);
    assert_eq!(
        error_of(&s.receive(Received::Text(&frame(5, elsewhere)), t0 + Duration::from_secs(1), 50)),
        Some((Some(5), ErrorCode::InvalidRequest, false))
    );
}
