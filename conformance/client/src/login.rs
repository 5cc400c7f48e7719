//! The handshake over a [`Connection`] on the core's client session, and what a logged-in
//! client does first (the admin inviting users).

use std::time::Duration;

use kith_proto::account::{Account, AccountName, CreateUser};
use kith_proto::cert::Certificate;
use kith_proto::handshake::{ClientConfig, Welcome};
use kith_proto::session::client::ClientSession;
use kith_proto::version::PROTOCOL_VERSION;
use kith_proto::{ClientFrame, PublicKey, SecretKey, ServerFrame};

use crate::connection::{ClientError, ConnectOptions, Connection, DEFAULT_WAIT};
use crate::util::{fresh_name, now_ms, random_bytes};

impl Connection {
    /// Replaces the connection's client session, before the handshake: e.g. one whose request
    /// ids start where a fuzz seed says ([`ClientSession::starting_at`]).
    pub fn reset_session(&mut self, session: ClientSession) {
        self.session = session;
    }

    /// Runs the handshake on the core's client session: sends `hello` for `config` with an
    /// ephemeral key from `ephemeral_seed`, checks the challenge, sends `auth` and returns the
    /// node's `welcome`. The node's refusal is [`ClientError::Refused`].
    pub async fn log_in(
        &mut self,
        config: ClientConfig,
        ephemeral_seed: [u8; 32],
        wait: Duration,
    ) -> Result<Welcome, ClientError> {
        let hello = self.session.hello(config, ephemeral_seed)?;
        self.send_untracked(&ClientFrame::Hello(hello.clone()).to_text()).await?;
        let challenge = match self.await_answer(hello.id, wait).await? {
            ServerFrame::Challenge(c) => c,
            ServerFrame::Error(e) => return Err(ClientError::Refused(e)),
            other => return Err(ClientError::Unexpected { expected: "challenge", got: other.to_text() }),
        };
        let auth = self.session.handle_challenge(&challenge)?;
        self.send_untracked(&ClientFrame::Auth(auth.clone()).to_text()).await?;
        let welcome = match self.await_answer(auth.id, wait).await? {
            ServerFrame::Welcome(w) => w,
            ServerFrame::Error(e) => return Err(ClientError::Refused(e)),
            other => return Err(ClientError::Unexpected { expected: "welcome", got: other.to_text() }),
        };
        self.session.handle_welcome(&welcome)?;
        Ok(welcome)
    }
}

/// The configuration for logging in as `user` with a fresh peer key `peer` and a certificate
/// for it that expires at `expires` (milliseconds since the epoch).
pub fn client_config(node_key: PublicKey, user: &SecretKey, peer: &SecretKey, expires: u64) -> ClientConfig {
    let cert = Certificate::issue(user, peer.public(), expires);
    ClientConfig { peer: peer.clone(), cert, expected_node: node_key, version: PROTOCOL_VERSION.into() }
}

/// An authenticated connection: who is logged in and the account the node welcomed.
#[derive(Debug)]
pub struct Session {
    /// The connection.
    pub conn: Connection,
    /// The user's key.
    pub user: SecretKey,
    /// The peer key the certificate blessed.
    pub peer: SecretKey,
    /// The account from `welcome`.
    pub account: Account,
}

/// Runs the handshake on an open connection as `user`, with a fresh peer key and a certificate
/// valid for an hour; `node_key` is the key in the dialled address.
pub async fn handshake(
    conn: Connection,
    node_key: PublicKey,
    user: &SecretKey,
    wait: Duration,
) -> Result<Session, ClientError> {
    handshake_until(conn, node_key, user, wait, now_ms() + 3_600_000).await
}

/// [`handshake`] with a certificate that expires at `expires` (milliseconds since the epoch):
/// the node ends the session then ([HS-55]).
pub async fn handshake_until(
    mut conn: Connection,
    node_key: PublicKey,
    user: &SecretKey,
    wait: Duration,
    expires: u64,
) -> Result<Session, ClientError> {
    let peer = SecretKey::random();
    let welcome = conn.log_in(client_config(node_key, user, &peer, expires), random_bytes(), wait).await?;
    Ok(Session { conn, user: user.clone(), peer, account: welcome.account })
}

/// Connects to `url` and logs in as `user` (see [`handshake`]).
pub async fn login(url: &str, node_key: PublicKey, user: &SecretKey) -> Result<Session, ClientError> {
    let conn = Connection::open(url).await?;
    handshake(conn, node_key, user, DEFAULT_WAIT).await
}

/// Connects to `url` as `options` say and logs in as `user` (see [`handshake`]), waiting
/// `options.wait` for each answer too.
pub async fn connect_and_login(
    url: &str,
    options: ConnectOptions,
    node_key: PublicKey,
    user: &SecretKey,
) -> Result<Session, ClientError> {
    let wait = options.wait;
    let conn = Connection::connect_with(url, options).await?;
    handshake(conn, node_key, user, wait).await
}

impl Session {
    /// Invites a fresh user with a random key and name and the given allowances; returns its
    /// secret key and account.
    pub async fn invite_user(
        &mut self,
        invite_allowance: u64,
        publish_allowance: u64,
    ) -> Result<(SecretKey, Account), ClientError> {
        let key = SecretKey::random();
        let account = self.create_user(key.public(), &fresh_name(), invite_allowance, publish_allowance).await?;
        Ok((key, account))
    }

    /// Sends `create_user` and returns the new account, or the node's refusal.
    pub async fn create_user(
        &mut self,
        key: PublicKey,
        name: &str,
        invite_allowance: u64,
        publish_allowance: u64,
    ) -> Result<Account, ClientError> {
        let name =
            AccountName::new(name).map_err(|e| ClientError::Unexpected { expected: "a valid account name", got: e })?;
        let answer = self
            .conn
            .request(
                |id| ClientFrame::CreateUser(CreateUser { id, key, name, invite_allowance, publish_allowance }),
                DEFAULT_WAIT,
            )
            .await?;
        match answer {
            ServerFrame::CreateUserOk(ok) => Ok(ok.account),
            ServerFrame::Error(e) => Err(ClientError::Refused(e)),
            other => Err(ClientError::Unexpected { expected: "create_user_ok", got: other.to_text() }),
        }
    }
}
