//! # kith-client: the one Kith client driver
//!
//! A websocket [`Connection`] (tokio-tungstenite) on the core's sans-IO client session
//! ([`kith_proto::session::client::ClientSession`]): it sends typed frames, raw text or bytes
//! exactly as given, whole or in fragments ([`Connection::send_fragmented`]), or queued and
//! flushed together; it opens with the options the users need ([`ConnectOptions`]: connect
//! timeout, source address, receive buffer, largest message accepted, recording); it records a
//! timestamped [`Transcript`]; it logs in in one call ([`login`], [`connect_and_login`],
//! [`Connection::log_in`]) and waits for answers while it queues pushes
//! ([`Connection::await_answer`], [`Connection::request`]) or collects or drops them
//! ([`Connection::request_collecting`], [`Connection::request_skipping_pushes`]).
//!
//! For the load and soak tools it also splits a connection into a send and a receive half,
//! reads frames as raw text, resets a connection and tells how one ended ([`split`]).
//!
//! The conformance runner and its FUZZ family, the load and soak tools and the reference node's
//! integration tests all use this crate; it depends on the core and tokio only, never on the
//! node, so that a runner without the node can use it.
//!
//! A connection paces what it sends to stay inside the node's `max_requests_per_second`
//! (spec 06 §8.2) when it is opened inside [`with_pace`] (the runner wraps every case in it) or
//! told so with [`Connection::set_pace`]; the cases that test the rate limit switch pacing off.
#![forbid(unsafe_code)]

pub mod connection;
pub mod login;
pub mod split;
pub mod transcript;
pub mod util;

pub use connection::{
    map_error_code, parse_server, show_close, with_pace, ClientError, ConnectOptions, Connection, Incoming, Opcode,
    DEFAULT_WAIT,
};
pub use login::{client_config, connect_and_login, handshake, handshake_until, login, Session};
pub use split::{socket_addr, End, Outgoing, Raw, RawError, RecvHalf, SendHalf};
pub use transcript::{show_payload, Direction, Transcript, TranscriptLine};
pub use util::{counted_id, fresh_name, is_push, now_ms, random_bytes};
