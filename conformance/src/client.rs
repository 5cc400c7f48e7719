//! The runner's client is the one client driver, `kith-client`: a websocket [`Connection`] that
//! sends raw or typed frames and records a timestamped [`Transcript`], the handshake
//! ([`login`]) and the admin's helpers ([`Session::invite_user`]). Re-exported here so that the
//! cases, the FUZZ family and the tools name it `kith_conformance::client`.

pub use kith_client::*;
