//! Spec chapter 5, "Handshake": the four messages and a sans-IO state machine for each side.
//!
//! ```text
//! client                                            server
//!   hello {version, ephemeral, peer, cert}   ->
//!                                            <-  challenge {ephemeral, node, sig_node(T)}
//!   auth {sig_peer(T)}                       ->
//!                                            <-  welcome {account} | error
//! T = SHA-256("kith/1/transcript" || 0x00 || JCS(transcript) || X25519(client_e, server_e))
//! ```
//!
//! Both machines take messages and the clock as arguments and return the message to send, so
//! the same code runs in tests, in the node and in the conformance runner.

use std::borrow::Cow;

#[cfg(feature = "gen")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;
use x25519_dalek::StaticSecret;

use crate::account::Account;
use crate::canonical::{CanonicalObject, CanonicalValue};
use crate::cert::{CertError, Certificate};
use crate::decode::{member, wire_borrowed, DecodeRequest, RequestError};
use crate::encoding::{EphemeralKey, PublicKey, Signature};
use crate::envelope::RequestId;
use crate::error::{ErrorCode, HasErrorCode};
use crate::signing::{prefixed, Context, SecretKey};
use crate::version::SUPPORTED_VERSIONS;

/// The hash domain of the transcript hash ([HS-17]).
pub const TRANSCRIPT_DOMAIN: &str = "kith/1/transcript";

/// Default time a node allows for a handshake to finish ([HS-41]).
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

/// `hello`: the client's opening message ([HS-21]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Hello {
    /// Request id.
    pub id: RequestId,
    /// The protocol version the client speaks, one of the node's `versions`.
    pub version: String,
    /// The client's fresh X25519 public key.
    pub ephemeral: EphemeralKey,
    /// The client's peer key.
    pub peer: PublicKey,
    /// The user's blessing of `peer`; any defect in it is `bad_certificate` ([HS-25]).
    pub cert: Certificate,
}

/// The wire shape of a hello: members and JSON kinds only ([HS-21]); `cert` is any JSON value
/// here, judged at H6.
#[derive(Deserialize)]
struct HelloWire<'a> {
    id: RequestId,
    version: String,
    #[serde(borrow)]
    ephemeral: Cow<'a, str>,
    #[serde(borrow)]
    peer: Cow<'a, str>,
    cert: serde_json::Value,
}

impl Hello {
    /// The checks of chapter 5 in their order, whatever the order of members in the frame:
    /// structure (H2, [HS-21], done by the wire struct), version (H3, [HS-22]), peer (H4,
    /// [HS-23]), ephemeral (H5, [HS-24]), certificate (H6, [HS-25]). The state check (H1) is
    /// the connection's.
    fn from_wire(w: HelloWire<'_>) -> Result<Self, RequestError> {
        if !SUPPORTED_VERSIONS.contains(&w.version.as_str()) {
            return Err(RequestError::UnsupportedVersion(crate::envelope::quote(&w.version)));
        }
        let peer = member("peer", &w.peer, PublicKey::parse)?;
        let ephemeral = member("ephemeral", &w.ephemeral, EphemeralKey::parse)?;
        // Every way the certificate is malformed is `bad_certificate`, its keys' encodings too.
        let cert = Certificate::deserialize(w.cert).map_err(|e| RequestError::BadCertificate(e.to_string()))?;
        Ok(Hello { id: w.id, version: w.version, ephemeral, peer, cert })
    }
}

impl DecodeRequest for Hello {
    fn decode(text: &str) -> Result<Self, RequestError> {
        Hello::from_wire(wire_borrowed(text)?)
    }
}

impl<'de> Deserialize<'de> for Hello {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Hello::from_wire(HelloWire::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// `challenge`: the server's answer to `hello`, signed by the node key ([HS-28], [HS-18]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Challenge {
    /// Echoed request id of the hello.
    pub id: RequestId,
    /// The server's fresh X25519 public key.
    pub ephemeral: EphemeralKey,
    /// The node's peer key.
    pub node: PublicKey,
    /// The node's signature over `kith/1/hs-server` || 0x00 || transcript hash.
    pub sig: Signature,
}

/// `auth`: the client's proof over the same transcript ([HS-19]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Auth {
    /// Request id.
    pub id: RequestId,
    /// The peer's signature over `kith/1/hs-client` || 0x00 || transcript hash.
    pub sig: Signature,
}

/// The wire shape of an `auth`.
#[derive(Deserialize)]
struct AuthWire<'a> {
    id: RequestId,
    #[serde(borrow)]
    sig: Cow<'a, str>,
}

impl DecodeRequest for Auth {
    fn decode(text: &str) -> Result<Self, RequestError> {
        let w: AuthWire<'_> = wire_borrowed(text)?;
        Ok(Auth { id: w.id, sig: member("sig", &w.sig, Signature::parse)? })
    }
}

/// `welcome`: the session is authenticated as `account` ([HS-36]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Welcome {
    /// Echoed request id of the auth.
    pub id: RequestId,
    /// The session's account.
    pub account: Account,
}

/// Why a handshake failed. Each variant carries its spec error code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The hello names a version the node does not speak ([HS-22]).
    #[error("unsupported protocol version {0:?}")]
    UnsupportedVersion(String),
    /// The `cert` is forged, for another peer, or expired ([HS-25], [HS-26]).
    #[error("certificate: {0}")]
    Certificate(#[from] CertError),
    /// The other side's transcript signature does not verify: `bad_signature` at the node
    /// ([HS-33]), an abort at the client ([HS-44]).
    #[error("transcript signature does not verify")]
    BadSignature,
    /// An ephemeral key of small order made the shared secret all zero ([HS-27], [HS-43]).
    #[error("X25519 shared secret is all zero")]
    NonContributory,
    /// A message arrived that the state does not allow ([HS-20], [HS-30]).
    #[error("unexpected handshake message in state {0}")]
    Unexpected(&'static str),
    /// The challenge was signed by a key other than the dialled node's: the client aborts
    /// ([HS-42]).
    #[error("challenge signed by {got}, expected {expected}")]
    WrongNode {
        /// The key in the dialled address.
        expected: PublicKey,
        /// The key in the challenge.
        got: PublicKey,
    },
}

impl HasErrorCode for HandshakeError {
    fn code(&self) -> ErrorCode {
        match self {
            HandshakeError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            HandshakeError::Certificate(e) => e.code(),
            HandshakeError::BadSignature | HandshakeError::WrongNode { .. } => ErrorCode::BadSignature,
            HandshakeError::NonContributory | HandshakeError::Unexpected(_) => ErrorCode::BadHandshake,
        }
    }
}

/// Everything the transcript hash binds ([HS-17]).
#[derive(Debug, Clone, Copy)]
pub struct Transcript<'a> {
    /// The negotiated version.
    pub version: &'a str,
    /// Client ephemeral key.
    pub client_ephemeral: &'a EphemeralKey,
    /// Client peer key.
    pub client_peer: &'a PublicKey,
    /// The client's certificate.
    pub cert: &'a Certificate,
    /// Server ephemeral key.
    pub server_ephemeral: &'a EphemeralKey,
    /// Server (node) peer key.
    pub server_peer: &'a PublicKey,
}

impl Transcript<'_> {
    /// The canonical transcript object (everything but the shared secret).
    pub fn canonical_value(&self) -> CanonicalValue {
        let mut map = CanonicalObject::new();
        map.insert("version".into(), CanonicalValue::string(self.version));
        map.insert("client_ephemeral".into(), CanonicalValue::string(self.client_ephemeral.to_string()));
        map.insert("client_peer".into(), CanonicalValue::string(self.client_peer.to_string()));
        map.insert("cert".into(), self.cert.canonical_value());
        map.insert("server_ephemeral".into(), CanonicalValue::string(self.server_ephemeral.to_string()));
        map.insert("server_peer".into(), CanonicalValue::string(self.server_peer.to_string()));
        CanonicalValue::Object(map)
    }

    /// The bytes hashed into the transcript hash:
    /// `kith/1/transcript` || 0x00 || JCS(transcript) || dh.
    pub fn hash_input(&self, dh: &[u8; 32]) -> Vec<u8> {
        let mut input = prefixed_domain();
        self.canonical_value().write_jcs(&mut input);
        input.extend_from_slice(dh);
        input
    }

    /// SHA-256 of [`Transcript::hash_input`].
    pub fn hash(&self, dh: &[u8; 32]) -> [u8; 32] {
        Sha256::digest(self.hash_input(dh)).into()
    }
}

fn prefixed_domain() -> Vec<u8> {
    let mut v = TRANSCRIPT_DOMAIN.as_bytes().to_vec();
    v.push(0);
    v
}

fn x25519(secret: &StaticSecret, theirs: &EphemeralKey) -> Result<[u8; 32], HandshakeError> {
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(*theirs.as_bytes()));
    if !shared.was_contributory() {
        return Err(HandshakeError::NonContributory);
    }
    Ok(*shared.as_bytes())
}

fn ephemeral_public(secret: &StaticSecret) -> EphemeralKey {
    EphemeralKey::from_bytes(x25519_dalek::PublicKey::from(secret).to_bytes())
}

/// The signature a side makes over the transcript hash under its context.
pub fn sign_transcript(key: &SecretKey, context: Context, hash: &[u8; 32]) -> Signature {
    key.sign_raw(&prefixed(context, hash))
}

/// What the client needs to log in.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The client's peer key.
    pub peer: SecretKey,
    /// The user's certificate for `peer`.
    pub cert: Certificate,
    /// The node key from the dialled address; any other signer is refused.
    pub expected_node: PublicKey,
    /// The version to ask for.
    pub version: String,
}

#[derive(Debug)]
enum ClientState {
    AwaitChallenge,
    AwaitWelcome { transcript_hash: [u8; 32] },
    Done,
    Failed,
}

/// The client side of the handshake.
pub struct ClientHandshake {
    config: ClientConfig,
    ephemeral: StaticSecret,
    hello: Hello,
    state: ClientState,
}

impl std::fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandshake").field("state", &self.state).finish_non_exhaustive()
    }
}

impl ClientHandshake {
    /// Starts a handshake with a fresh ephemeral secret `ephemeral_seed` (callers draw it from
    /// a CSPRNG; vectors fix it) and returns the `hello` to send.
    pub fn start(config: ClientConfig, ephemeral_seed: [u8; 32], hello_id: RequestId) -> (Self, Hello) {
        let ephemeral = StaticSecret::from(ephemeral_seed);
        let hello = Hello {
            id: hello_id,
            version: config.version.clone(),
            ephemeral: ephemeral_public(&ephemeral),
            peer: config.peer.public(),
            cert: config.cert.clone(),
        };
        let me = ClientHandshake { config, ephemeral, hello: hello.clone(), state: ClientState::AwaitChallenge };
        (me, hello)
    }

    /// Checks the challenge: signed by the dialled node ([HS-42]) over the transcript
    /// ([HS-44]); returns the `auth` to send.
    #[must_use = "the auth message must be sent"]
    pub fn handle_challenge(&mut self, challenge: &Challenge, auth_id: RequestId) -> Result<Auth, HandshakeError> {
        if !matches!(self.state, ClientState::AwaitChallenge) {
            return Err(HandshakeError::Unexpected("client awaiting welcome or done"));
        }
        self.state = ClientState::Failed;
        if challenge.node != self.config.expected_node {
            return Err(HandshakeError::WrongNode { expected: self.config.expected_node, got: challenge.node });
        }
        let dh = x25519(&self.ephemeral, &challenge.ephemeral)?;
        let transcript = Transcript {
            version: &self.hello.version,
            client_ephemeral: &self.hello.ephemeral,
            client_peer: &self.hello.peer,
            cert: &self.hello.cert,
            server_ephemeral: &challenge.ephemeral,
            server_peer: &challenge.node,
        };
        let hash = transcript.hash(&dh);
        challenge
            .node
            .verify_strict(&prefixed(Context::HandshakeServer, &hash), &challenge.sig)
            .map_err(|_| HandshakeError::BadSignature)?;
        self.state = ClientState::AwaitWelcome { transcript_hash: hash };
        Ok(Auth { id: auth_id, sig: sign_transcript(&self.config.peer, Context::HandshakeClient, &hash) })
    }

    /// Accepts the welcome; the session is authenticated.
    pub fn handle_welcome(&mut self, welcome: &Welcome) -> Result<Account, HandshakeError> {
        if !matches!(self.state, ClientState::AwaitWelcome { .. }) {
            return Err(HandshakeError::Unexpected("client not awaiting welcome"));
        }
        self.state = ClientState::Done;
        Ok(welcome.account.clone())
    }

    /// The transcript hash, once the challenge has been accepted.
    pub fn transcript_hash(&self) -> Option<[u8; 32]> {
        match self.state {
            ClientState::AwaitWelcome { transcript_hash } => Some(transcript_hash),
            _ => None,
        }
    }
}

#[derive(Debug)]
enum ServerState {
    AwaitHello,
    AwaitAuth { transcript_hash: [u8; 32], user: PublicKey, peer: PublicKey, cert_expires: u64 },
    Done,
    Failed,
}

/// A client that finished the handshake: the node still has to find `user`'s account
/// ([HS-34]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Authenticated {
    /// The user the certificate names.
    pub user: PublicKey,
    /// The peer that proved its key.
    pub peer: PublicKey,
    /// The session's transcript hash.
    pub transcript_hash: [u8; 32],
    /// The certificate's `expires`: the session ends then ([HS-55]).
    pub cert_expires: u64,
}

/// The server side of the handshake.
pub struct ServerHandshake {
    node: SecretKey,
    ephemeral: StaticSecret,
    state: ServerState,
}

impl std::fmt::Debug for ServerHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandshake").field("state", &self.state).finish_non_exhaustive()
    }
}

impl ServerHandshake {
    /// Prepares the server side with the node key and a fresh ephemeral secret.
    pub fn new(node: SecretKey, ephemeral_seed: [u8; 32]) -> Self {
        ServerHandshake { node, ephemeral: StaticSecret::from(ephemeral_seed), state: ServerState::AwaitHello }
    }

    /// True once a hello has been accepted (the next message must be `auth`).
    pub fn awaiting_auth(&self) -> bool {
        matches!(self.state, ServerState::AwaitAuth { .. })
    }

    /// Whether a frame of type `ty` is out of order in this state: a `hello` after the first
    /// ([HS-20]), or an `auth` before a hello was accepted ([HS-30]). The dispatcher's
    /// [`ServerHandshake::decode_frame`] asks it, so that this module need not know frames.
    pub(crate) fn out_of_order(&self, ty: &str) -> bool {
        match ty {
            "hello" => !matches!(self.state, ServerState::AwaitHello),
            "auth" => !matches!(self.state, ServerState::AwaitAuth { .. }),
            _ => false,
        }
    }

    /// Checks the hello at `now_ms` (version [HS-22], certificate [HS-25] [HS-26]) and returns
    /// the challenge.
    #[must_use = "the challenge must be sent"]
    pub fn handle_hello(&mut self, hello: &Hello, now_ms: u64) -> Result<Challenge, HandshakeError> {
        if !matches!(self.state, ServerState::AwaitHello) {
            return Err(HandshakeError::Unexpected("server not awaiting hello"));
        }
        self.state = ServerState::Failed;
        if !SUPPORTED_VERSIONS.contains(&hello.version.as_str()) {
            return Err(HandshakeError::UnsupportedVersion(hello.version.clone()));
        }
        hello.cert.verify(&hello.peer, now_ms)?;
        let dh = x25519(&self.ephemeral, &hello.ephemeral)?;
        let server_ephemeral = ephemeral_public(&self.ephemeral);
        let node = self.node.public();
        let transcript = Transcript {
            version: &hello.version,
            client_ephemeral: &hello.ephemeral,
            client_peer: &hello.peer,
            cert: &hello.cert,
            server_ephemeral: &server_ephemeral,
            server_peer: &node,
        };
        let hash = transcript.hash(&dh);
        let sig = sign_transcript(&self.node, Context::HandshakeServer, &hash);
        self.state = ServerState::AwaitAuth {
            transcript_hash: hash,
            user: hello.cert.user,
            peer: hello.peer,
            cert_expires: hello.cert.expires,
        };
        Ok(Challenge { id: hello.id, ephemeral: server_ephemeral, node, sig })
    }

    /// Checks the client's transcript signature ([HS-33]).
    pub fn handle_auth(&mut self, auth: &Auth) -> Result<Authenticated, HandshakeError> {
        let ServerState::AwaitAuth { transcript_hash, user, peer, cert_expires } = self.state else {
            return Err(HandshakeError::Unexpected("server not awaiting auth"));
        };
        self.state = ServerState::Failed;
        peer.verify_strict(&prefixed(Context::HandshakeClient, &transcript_hash), &auth.sig)
            .map_err(|_| HandshakeError::BadSignature)?;
        self.state = ServerState::Done;
        Ok(Authenticated { user, peer, transcript_hash, cert_expires })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::PROTOCOL_VERSION;

    fn setup(expected_node: PublicKey, expires: u64) -> (ClientHandshake, Hello) {
        let user = SecretKey::from_seed([1; 32]);
        let peer = SecretKey::from_seed([2; 32]);
        let cert = Certificate::issue(&user, peer.public(), expires);
        let config = ClientConfig { peer, cert, expected_node, version: PROTOCOL_VERSION.into() };
        ClientHandshake::start(config, [3; 32], RequestId::small(1))
    }

    #[test]
    fn both_sides_agree() {
        let node = SecretKey::from_seed([9; 32]);
        let (mut client, hello) = setup(node.public(), 1000);
        let mut server = ServerHandshake::new(node.clone(), [4; 32]);
        let challenge = server.handle_hello(&hello, 10).expect("hello");
        let auth = client.handle_challenge(&challenge, RequestId::small(2)).expect("challenge");
        let done = server.handle_auth(&auth).expect("auth");
        assert_eq!(Some(done.transcript_hash), client.transcript_hash());
        assert_eq!(done.user, SecretKey::from_seed([1; 32]).public());
    }

    #[test]
    fn client_refuses_other_node() {
        let node = SecretKey::from_seed([9; 32]);
        let impostor = SecretKey::from_seed([8; 32]);
        let (mut client, hello) = setup(node.public(), 1000);
        let mut server = ServerHandshake::new(impostor, [4; 32]);
        let challenge = server.handle_hello(&hello, 10).expect("hello");
        assert!(matches!(
            client.handle_challenge(&challenge, RequestId::small(2)),
            Err(HandshakeError::WrongNode { .. })
        ));
    }

    #[test]
    fn replayed_auth_fails_against_fresh_ephemeral() {
        let node = SecretKey::from_seed([9; 32]);
        let (mut client, hello) = setup(node.public(), 1000);
        let mut first = ServerHandshake::new(node.clone(), [4; 32]);
        let challenge = first.handle_hello(&hello, 10).expect("hello");
        let auth = client.handle_challenge(&challenge, RequestId::small(2)).expect("challenge");
        let mut second = ServerHandshake::new(node, [5; 32]);
        let _ = second.handle_hello(&hello, 10).expect("hello again");
        assert_eq!(second.handle_auth(&auth), Err(HandshakeError::BadSignature));
    }

    #[test]
    fn server_refuses_expired_cert_and_order() {
        let node = SecretKey::from_seed([9; 32]);
        let (_, hello) = setup(node.public(), 1000);
        let mut server = ServerHandshake::new(node.clone(), [4; 32]);
        let err = server.handle_hello(&hello, 1000).expect_err("expired");
        assert_eq!(err.code(), ErrorCode::CertExpired);
        let mut server = ServerHandshake::new(node, [4; 32]);
        let auth = Auth { id: RequestId::small(1), sig: Signature::from_bytes([0; 64]) };
        assert_eq!(server.handle_auth(&auth).map_err(|e| e.code()), Err(ErrorCode::BadHandshake));
    }

    #[test]
    fn small_order_ephemeral_is_refused() {
        let node = SecretKey::from_seed([9; 32]);
        let (_, mut hello) = setup(node.public(), 1000);
        hello.ephemeral = EphemeralKey::from_bytes([0; 32]);
        let mut server = ServerHandshake::new(node, [4; 32]);
        assert_eq!(server.handle_hello(&hello, 1).map_err(|e| e.code()), Err(ErrorCode::BadHandshake));
    }
}
