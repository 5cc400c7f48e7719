//! The clock, randomness and names every client needs, once.

use std::time::{SystemTime, UNIX_EPOCH};

use kith_proto::session::client::push_kind;
use kith_proto::RequestId;
use rand_core::{OsRng, RngCore};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// 32 random bytes from the operating system.
pub fn random_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    b
}

/// The request id for the `n`th request of a counter that starts at a small number: such a
/// counter stays far below 2^53 − 1, the largest request id ([FRAME-13]).
pub fn counted_id(n: u64) -> RequestId {
    RequestId::new(n).expect("request ids count up from small numbers, far below 2^53")
}

/// A fresh account name: `t` and 16 random hex digits, unique in practice.
pub fn fresh_name() -> String {
    let b = random_bytes();
    let hex: String = b[..8].iter().map(|x| format!("{x:02x}")).collect();
    format!("t{hex}")
}

/// Whether the frame text is a push the node sends on its own (`event`, `stored_end`,
/// `closing`) rather than an answer; an `error` is an answer here, even with a null id (it
/// answers a request the node could not read). The core's client session reads the frame.
pub fn is_push(text: &str) -> bool {
    push_kind(text).is_some_and(|p| p != kith_proto::Push::UnaddressedError)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_proto::account::AccountName;

    #[test]
    fn fresh_names_are_valid_and_differ() {
        let a = fresh_name();
        assert!(AccountName::new(a.clone()).is_ok());
        assert_ne!(a, fresh_name());
    }

    #[test]
    fn pushes_are_events_stored_ends_and_closings() {
        assert!(is_push(r#"{"type":"event","sub":4}"#));
        assert!(is_push(r#"{"type":"closing","code":"shutting_down"}"#));
        assert!(!is_push(r#"{"type":"error","id":4}"#));
        assert!(!is_push(r#"{"type":"error","id":null}"#));
        assert!(!is_push("not json"));
        assert_eq!(counted_id(7).get(), 7);
        assert!(now_ms() > 1_700_000_000_000);
        assert_ne!(random_bytes(), random_bytes());
    }
}
