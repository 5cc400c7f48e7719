//! What the tools `kith-load` and `kith-soak` share: the figures they read of a node's process
//! (CPU time, memory, open descriptors) and of its store on disk, and what they need of a node
//! they launched.
//!
//! The binaries live in `src/bin/`; the criterion benches of the core in `benches/`.

#![forbid(unsafe_code)]

pub mod launch;
pub mod proc;
