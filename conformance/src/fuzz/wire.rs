//! The fuzz cases' connection: the driver's [`Connection`] with pacing and the driver's own
//! checks off (the oracle judges every frame), sending any payload as text or binary, whole or
//! in continuation fragments, and reading what comes as the oracle's [`Item`]s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kith_proto::session::client::ClientSession;
use kith_proto::{ClientFrame, ServerFrame};

use super::mutate::{Opcode, WireMessage};
use super::oracle::Item;
use crate::client::{ClientError, ConnectOptions, Connection, Incoming, Transcript};

pub use crate::client::show_payload;

/// A raw websocket connection to the node.
#[derive(Debug)]
pub struct Wire {
    conn: Connection,
}

impl Wire {
    /// Opens a websocket to `url` within `wait`.
    pub async fn connect(url: &str, label: &str, transcript: Transcript, wait: Duration) -> Result<Self, String> {
        let mut conn = Connection::connect_with(url, ConnectOptions::new(label, transcript).wait(wait))
            .await
            .map_err(|e| e.to_string())?;
        // The fuzz family sends exactly what it means to, when it means to.
        conn.set_pace(None);
        conn.set_checks(false);
        Ok(Wire { conn })
    }

    /// Rewrites the error codes the node sends (its own code -> spec code), as the
    /// implementer's skip file declares, before the oracle sees them.
    pub fn set_error_map(&mut self, map: Arc<BTreeMap<String, String>>) {
        self.conn.set_error_map(map);
    }

    /// Adds a remark to the transcript.
    pub fn note(&self, text: &str) {
        self.conn.note(text);
    }

    /// Replaces the connection's client session, before a handshake (see
    /// [`Connection::reset_session`]).
    pub fn reset_session(&mut self, session: ClientSession) {
        self.conn.reset_session(session);
    }

    /// The driver's connection, for its handshake.
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Sends a typed frame as one text message.
    pub async fn send_frame(&mut self, frame: &ClientFrame) -> Result<(), String> {
        self.conn.send(frame).await.map_err(|e| format!("send: {e}"))
    }

    /// Sends `msg` exactly: its opcode, its bytes (UTF-8 or not) and its fragments.
    pub async fn send_message(&mut self, msg: &WireMessage) -> Result<(), String> {
        let opcode = match msg.opcode {
            Opcode::Text => crate::client::Opcode::Text,
            Opcode::Binary => crate::client::Opcode::Binary,
        };
        self.conn.send_fragmented(opcode, &msg.bytes, &msg.cuts).await.map_err(|e| format!("send: {e}"))
    }

    /// The next thing the node sends: a frame, a close, or nothing within `wait`.
    pub async fn recv(&mut self, wait: Duration) -> Item {
        match self.conn.recv(wait).await {
            Ok(Incoming::Text(t)) => Item::Frame(t),
            Ok(Incoming::Binary(b)) => Item::Binary(b.len()),
            Ok(Incoming::Closed(c)) => Item::Closed(c),
            Err(ClientError::Timeout(_)) => Item::Timeout,
            // With the checks off the driver reports nothing else; read as the end.
            Err(e) => {
                self.note(&format!("<receive failed: {e}>"));
                Item::Closed(None)
            }
        }
    }

    /// The next frame that is not a push, decoded; pushes are skipped.
    pub async fn answer(&mut self, wait: Duration) -> Result<ServerFrame, String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await {
                Item::Frame(t) => {
                    let f = super::oracle::decode(&t)?;
                    if !super::oracle::is_push(&f) {
                        return Ok(f);
                    }
                }
                other => return Err(format!("expected an answer, got {}", super::oracle::show(&other))),
            }
        }
    }

    /// Closes politely.
    pub async fn close(&mut self) {
        if !self.conn.is_closed() {
            self.conn.close().await;
        }
    }
}
