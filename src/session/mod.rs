//! The two sides of a connection as sans-IO state machines: what each side sends and how it
//! reads what it receives, with no socket, clock or task. The node and the client driver only
//! move bytes and keep state around them.

pub mod client;
