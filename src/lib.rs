//! Kith protocol core.
