//! A shared, timestamped record of what a case's connections sent and received, and how a
//! payload is shown in it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

/// Which way a transcript line went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Client to node.
    Sent,
    /// Node to client.
    Received,
    /// A remark of the runner (connect, close, expectation).
    Note,
}

/// One line of a transcript.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptLine {
    /// Milliseconds since the transcript started.
    pub at_ms: f64,
    /// Which connection (e.g. `admin`, `c1`).
    pub conn: String,
    /// Which way.
    pub dir: Direction,
    /// The frame text (binary frames as `<binary N bytes>`; long frames shortened).
    pub text: String,
}

/// A shared, timestamped record of every frame a case's connections sent and received.
#[derive(Debug, Clone)]
pub struct Transcript {
    start: Instant,
    lines: Arc<Mutex<Vec<TranscriptLine>>>,
    waited_out: Arc<AtomicBool>,
}

impl Default for Transcript {
    fn default() -> Self {
        Transcript {
            start: Instant::now(),
            lines: Arc::new(Mutex::new(Vec::new())),
            waited_out: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Longest frame text kept in a transcript line.
const MAX_LINE: usize = 2048;

impl Transcript {
    /// Appends a line.
    pub fn push(&self, conn: &str, dir: Direction, text: &str) {
        let text = if text.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}... <{} bytes in all>", &text[..cut], text.len())
        } else {
            text.to_owned()
        };
        let line =
            TranscriptLine { at_ms: self.start.elapsed().as_secs_f64() * 1000.0, conn: conn.to_owned(), dir, text };
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(line);
        }
    }

    /// A copy of the lines so far.
    pub fn lines(&self) -> Vec<TranscriptLine> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Records that a wait for the node ran out with nothing received (a wait that expects
    /// silence, [`crate::Connection::quiet_for`], does not count).
    pub fn mark_timeout(&self) {
        self.waited_out.store(true, Ordering::Relaxed);
    }

    /// Whether a wait for the node ran out (see [`Transcript::mark_timeout`]): the runner
    /// counts a failing case that waited out an answer as stuck.
    pub fn waited_out(&self) -> bool {
        self.waited_out.load(Ordering::Relaxed)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_shortens_long_frames() {
        let t = Transcript::default();
        t.push("c", Direction::Sent, &"é".repeat(3000));
        let lines = t.lines();
        assert!(lines[0].text.len() < 2200);
        assert!(lines[0].text.ends_with("bytes in all>"));
    }

    #[test]
    fn payloads_show_exactly_and_briefly() {
        assert_eq!(show_payload(b"{\"a\":1}"), r#""{\"a\":1}""#);
        let long = format!("{{\"p\":\"{}\"}}", "x".repeat(70_000));
        assert_eq!(show_payload(long.as_bytes()), r#""{\"p\":\"«'x' × 70000»\"}""#);
        assert_eq!(show_payload(&[0x7b, 0xff]), "hex 7bff");
    }
}
