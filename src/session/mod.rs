//! The two sides of a connection as sans-IO state machines, fed what was received and the time,
//! answering with what to do: no socket, clock or task. The node (`session::server`) and the
//! client driver (`session::client`) only move bytes and keep state around them.

pub mod client;
pub mod server;
