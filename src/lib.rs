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
//! | 6 Framing | [`frame`], [`decode`], [`error`], [`node_info`] |
//! | 7 Accounts and invites | [`account`] |
//! | 8 Feeds | [`feed`] |
//! | 9 Identities | [`identity`] |
//! | 10 Storage and pruning | [`storage`] |
//! | 11 Versioning | [`version`] |
//!
//! [`harness`] holds the robustness oracles shared by the property tests and the fuzz targets.
#![forbid(unsafe_code)]

pub mod account;
pub mod address;
pub mod canonical;
pub mod cert;
pub mod decode;
pub mod encoding;
pub mod entry;
pub mod envelope;
pub mod error;
pub mod feed;
pub mod frame;
pub mod handshake;
pub mod harness;
pub mod identity;
pub mod node_info;
pub mod signing;
pub mod storage;
pub mod version;

pub use encoding::{EntryId, EphemeralKey, PublicKey, Signature};
pub use entry::{verify_entry, Entry, EntryDraft, VerifiedEntry};
pub use error::{ErrorCode, HasErrorCode};
pub use frame::{parse_client_frame, ClientFrame, RequestId, ServerFrame};
pub use signing::{Context, SecretKey};
