//! Criterion benches of the protocol core (filled in by the performance work).
#![allow(missing_docs)]
fn main() {}
