//! Sans-IO sessions: one connection's protocol state, fed received messages and the time,
//! answering with what to do. The IO layer (the node's sockets) only moves bytes.

pub mod server;
