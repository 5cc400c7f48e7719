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
//! Two features add what a node built on the core does not need:
//!
//! - `harness`: the module `harness`, the robustness oracles shared by the property tests
//!   (`tests/properties.rs`) and the fuzz targets (`fuzz/`);
//! - `gen`: the `schemars::JsonSchema` impls of the wire types and the `kith-gen` binary that
//!   writes `spec/schemas/*.json` and `vectors/*.json`
//!   (`cargo run -p kith-proto --features gen --bin kith-gen`).
//!
//! Without them the core depends on serde, serde_json, the dalek crates, sha2, thiserror and
//! rand_core only.
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
#[cfg(feature = "harness")]
pub mod harness;
pub mod identity;
pub mod node_info;
pub mod session;
pub mod signing;
pub mod storage;
pub mod version;

pub use encoding::{EntryId, EphemeralKey, PublicKey, Signature};
pub use entry::{verify_entry, Entry, EntryDraft, VerifiedEntry};
pub use error::{ErrorCode, HasErrorCode};
pub use frame::{parse_client_frame, ClientFrame, RequestId, ServerFrame};
pub use session::client::{ClientSession, ClientSessionError, Push, Received};
pub use signing::{Context, SecretKey};
