//! Kith reference node library.
