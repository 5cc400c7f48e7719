//! Client-side limits and key generation that no vector file can carry.

use kith_proto::frame::{RequestId, ServerFrame};
use kith_proto::{ErrorCode, SecretKey};

/// FRAME-9: a client accepts frames from a node of up to 16777216 bytes (16 MiB), far above the
/// 65536 a node accepts from a client. Too large to ship as a vector, so built here.
#[test]
fn client_accepts_a_16_mib_frame() {
    const LIMIT: usize = 16 * 1024 * 1024;
    let empty = ServerFrame::error(Some(RequestId::small(1)), ErrorCode::Internal, "").to_text();
    let message = "m".repeat(LIMIT - empty.len());
    let text = ServerFrame::error(Some(RequestId::small(1)), ErrorCode::Internal, message).to_text();
    assert_eq!(text.len(), LIMIT);
    let frame = ServerFrame::parse(&text).expect("a 16 MiB frame parses");
    assert_eq!(frame.answers(), Some(RequestId::small(1)));
}

/// SIGN-13: keys come from the operating system's CSPRNG. A smoke test only: two fresh keys
/// differ, and neither is the key of an all-zero or all-one seed.
#[test]
fn fresh_keys_come_from_a_random_source() {
    let (a, b) = (SecretKey::random(), SecretKey::random());
    assert_ne!(a.public(), b.public());
    for fixed in [[0u8; 32], [1u8; 32], [0xff; 32]] {
        assert_ne!(a.seed(), fixed);
    }
}
