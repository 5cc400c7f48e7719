//! # kith-conformance: scripted conformance cases against any Kith node
//!
//! The runner plays [`cases`] against a node at a websocket URL or against nodes it launches
//! ([`launch`]), grades each case ([`runner`]) and writes reports ([`report`]). The [`client`]
//! module is a small Kith client that the load generator reuses.
#![forbid(unsafe_code)]

pub mod case;
pub mod cases;
pub mod cli;
pub mod client;
pub mod coverage;
#[cfg(feature = "reference-node")]
pub mod fault_coverage;
pub mod fuzz;
pub mod host;
pub mod launch;
pub mod report;
pub mod runner;
pub mod skipfile;
