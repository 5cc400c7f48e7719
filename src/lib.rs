//! # kith-proto: the Kith protocol core
//!
//! Plain types and state machines, no IO: bytes and time go in, typed messages, verdicts and
//! bytes to send come out. The module tree mirrors the spec's chapters in `spec/`:
//!
//! | spec chapter | module |
//! |---|---|
//! | 1 Encodings | [`encoding`] |
//! | 2 Canonical signing bytes | [`canonical`], [`signing`] |
//! | 3 Entries | [`entry`] |
//! | 4 Certificates | [`cert`] |
//! | 5 Handshake | [`handshake`], [`address`] |
//! | 6 Framing | [`frame`], [`error`], [`node_info`] |
//! | 7 Accounts and invites | [`account`] |
//! | 8 Feeds | [`feed`] |
//! | 9 Identities | [`identity`] |
//! | 10 Storage and pruning | [`storage`] |
//! | 11 Versioning | [`version`] |
#![forbid(unsafe_code)]

pub mod canonical;
pub mod encoding;
pub mod error;
pub mod signing;

pub use encoding::{EntryId, EphemeralKey, PublicKey, Signature};
pub use error::{ErrorCode, HasErrorCode};
pub use signing::{Context, SecretKey};
