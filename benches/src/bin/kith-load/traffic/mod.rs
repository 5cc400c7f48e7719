//! The scenarios, one module each: what traffic it drives at the node and the figures it keeps.

pub(crate) mod deliver;
pub(crate) mod handshake;
pub(crate) mod ingest;
pub(crate) mod memory;
pub(crate) mod prune;
