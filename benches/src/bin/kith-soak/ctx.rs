//! What every task of the soak needs: where the node is, its limits, the users, the handshake
//! gate. Apart from `setup.rs`, which builds it, so that the connection code can take it
//! without importing the setup.

use std::net::SocketAddr;

use kith_proto::node_info::Limits;
use kith_proto::{PublicKey, SecretKey};
use tokio::sync::RwLock;

use crate::cli::SoakArgs;

/// What every task needs: where the node is, its limits, the users, the handshake gate.
pub(crate) struct Ctx {
    pub(crate) addr: SocketAddr,
    pub(crate) url: String,
    pub(crate) node: PublicKey,
    pub(crate) limits: Limits,
    /// Whether client sockets bind 127.0.0.N source addresses (the node is on loopback).
    pub(crate) bind: bool,
    /// Logins hold it shared; the floods of the pending-handshake count hold it exclusively.
    pub(crate) gate: RwLock<()>,
    pub(crate) valid_authors: Vec<PublicKey>,
    pub(crate) heavy: PublicKey,
    pub(crate) flood_user: SecretKey,
    pub(crate) dropper_user: SecretKey,
    pub(crate) dropper_entry: String,
    pub(crate) args: SoakArgs,
}
