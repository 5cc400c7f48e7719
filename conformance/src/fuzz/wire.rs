//! The fuzz cases' own websocket connection: it sends any payload as text or binary, whole or
//! in continuation fragments, which the suite's `Connection` does not offer, and records what
//! it sends and receives in the case's transcript.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kith_proto::{ClientFrame, ServerFrame};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::mutate::{Opcode, WireMessage};
use super::oracle::Item;
use crate::client::{Direction, Transcript};

/// A raw websocket connection to the node.
pub struct Wire {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    label: String,
    transcript: Transcript,
    closed: Option<Option<(u16, String)>>,
    error_map: Arc<BTreeMap<String, String>>,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire").field("label", &self.label).finish_non_exhaustive()
    }
}

/// How a payload is shown in transcripts and reports: JSON-escaped text when it is UTF-8,
/// hex otherwise; runs of one character longer than 64 are written `«'x' × N»` so that a
/// 65 KiB frame stays readable and exact.
pub fn show_payload(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(t) => {
            let mut out = String::new();
            let chars: Vec<char> = t.chars().collect();
            let mut i = 0;
            while i < chars.len() {
                let c = chars[i];
                let mut j = i;
                while j < chars.len() && chars[j] == c {
                    j += 1;
                }
                if j - i > 64 {
                    out.push_str(&format!("«{:?} × {}»", c, j - i));
                } else {
                    for ch in &chars[i..j] {
                        out.extend(ch.escape_debug());
                    }
                }
                i = j;
            }
            format!("\"{out}\"")
        }
        Err(_) => format!("hex {}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()),
    }
}

impl Wire {
    /// Opens a websocket to `url` within `wait`.
    pub async fn connect(url: &str, label: &str, transcript: Transcript, wait: Duration) -> Result<Self, String> {
        let (ws, _) = tokio::time::timeout(wait, tokio_tungstenite::connect_async(url))
            .await
            .map_err(|_| format!("no websocket to {url} within {wait:?}"))?
            .map_err(|e| format!("cannot connect to {url}: {e}"))?;
        transcript.push(label, Direction::Note, &format!("connected to {url}"));
        Ok(Wire { ws, label: label.to_owned(), transcript, closed: None, error_map: Arc::new(BTreeMap::new()) })
    }

    /// Rewrites the error codes the node sends (its own code -> spec code), as the
    /// implementer's skip file declares, before the oracle sees them.
    pub fn set_error_map(&mut self, map: Arc<BTreeMap<String, String>>) {
        self.error_map = map;
    }

    /// Adds a remark to the transcript.
    pub fn note(&self, text: &str) {
        self.transcript.push(&self.label, Direction::Note, text);
    }

    /// Sends a typed frame as one text message.
    pub async fn send_frame(&mut self, frame: &ClientFrame) -> Result<(), String> {
        let text = frame.to_text();
        self.transcript.push(&self.label, Direction::Sent, &text);
        self.ws.send(Message::text(text)).await.map_err(|e| format!("send: {e}"))
    }

    /// Sends `msg` exactly: its opcode, its bytes (UTF-8 or not) and its fragments.
    pub async fn send_message(&mut self, msg: &WireMessage) -> Result<(), String> {
        let kind = match msg.opcode {
            Opcode::Text => "text",
            Opcode::Binary => "binary",
        };
        let frags = if msg.cuts.is_empty() { String::new() } else { format!(", {} fragments", msg.cuts.len() + 1) };
        self.transcript.push(
            &self.label,
            Direction::Sent,
            &format!("<{kind} message, {} bytes{frags}> {}", msg.bytes.len(), show_payload(&msg.bytes)),
        );
        let data = match msg.opcode {
            Opcode::Text => Data::Text,
            Opcode::Binary => Data::Binary,
        };
        let mut bounds = vec![0];
        bounds.extend(msg.cuts.iter().map(|c| (*c).min(msg.bytes.len())));
        bounds.push(msg.bytes.len());
        let n = bounds.len() - 1;
        for i in 0..n {
            let chunk = msg.bytes[bounds[i]..bounds[i + 1].max(bounds[i])].to_vec();
            let opcode = if i == 0 { OpCode::Data(data) } else { OpCode::Data(Data::Continue) };
            let frame = Frame::message(chunk, opcode, i == n - 1);
            // A node may close while the rest is still being sent (e.g. on invalid UTF-8 in
            // the first fragment); what it answered is read afterwards.
            if let Err(e) = self.ws.send(Message::Frame(frame)).await {
                self.note(&format!("send stopped after fragment {i}: {e}"));
                return Ok(());
            }
        }
        Ok(())
    }

    /// The next thing the node sends: a frame, a close, or nothing within `wait`.
    pub async fn recv(&mut self, wait: Duration) -> Item {
        if let Some(c) = &self.closed {
            return Item::Closed(c.clone());
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(n) => n,
                Err(_) => {
                    self.transcript.mark_timeout();
                    return Item::Timeout;
                }
            };
            match next {
                Some(Ok(Message::Text(t))) => {
                    self.transcript.push(&self.label, Direction::Received, t.as_str());
                    if let Some((mapped, spec)) = crate::client::map_error_code(&self.error_map, t.as_str()) {
                        self.note(&format!("error code mapped to {spec}"));
                        return Item::Frame(mapped);
                    }
                    return Item::Frame(t.as_str().to_owned());
                }
                Some(Ok(Message::Binary(b))) => {
                    self.transcript.push(&self.label, Direction::Received, &format!("<binary {} bytes>", b.len()));
                    return Item::Binary(b.len());
                }
                Some(Ok(Message::Close(frame))) => {
                    let info = frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned()));
                    self.transcript.push(
                        &self.label,
                        Direction::Received,
                        &format!("<{}>", crate::client::show_close(&info)),
                    );
                    self.closed = Some(info.clone());
                    return Item::Closed(info);
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    self.note(&format!("<stream error: {e}>"));
                    self.closed = Some(None);
                    return Item::Closed(None);
                }
                None => {
                    self.note("<stream ended>");
                    self.closed = Some(None);
                    return Item::Closed(None);
                }
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
        if self.closed.is_none() {
            self.note("client closes");
            let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_show_exactly_and_briefly() {
        assert_eq!(show_payload(b"{\"a\":1}"), r#""{\"a\":1}""#);
        let long = format!("{{\"p\":\"{}\"}}", "x".repeat(70_000));
        assert_eq!(show_payload(long.as_bytes()), r#""{\"p\":\"«'x' × 70000»\"}""#);
        assert_eq!(show_payload(&[0x7b, 0xff]), "hex 7bff");
    }
}
