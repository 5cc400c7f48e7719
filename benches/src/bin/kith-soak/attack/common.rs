//! What the attacks share: their source addresses, what they leave open, how many connections
//! one address opens, and a paced call.

use std::time::Duration;

use kith_proto::{ClientFrame, PublicKey, RequestId};
use tokio::net::TcpStream;

use crate::conn::Conn;
use crate::ctx::Ctx;
use crate::Res;

/// Source addresses of the attacks (127.0.2.N), each its own per-address count.
pub(crate) const SRC_ATTACK: u8 = 2;

/// Time past an attack's deadline that the "after" sample allows for the node's timers and the
/// valid clients' closing handshakes.
pub(crate) const ATTACK_SLACK: Duration = Duration::from_millis(1500);

/// What an attack leaves open for the phase to hold until its "after" sample.
#[derive(Default)]
pub(crate) struct Held {
    pub(crate) sockets: Vec<TcpStream>,
    pub(crate) conns: Vec<Conn>,
    /// A user to remove (with the admin key) before the "after" sample.
    pub(crate) remove: Option<PublicKey>,
}

/// How many connections an attack from one address opens: the per-address limit, but no more
/// than half the node-wide pending-handshake count when it needs handshake slots, so that the
/// valid logins beside it keep theirs (the pending-slot lockout of 12 §11 is the handshake
/// flood's, not these attacks').
pub(crate) fn per_address(ctx: &Ctx, pending: bool) -> usize {
    let l = &ctx.limits;
    let n = l.max_connections_per_address.min(512);
    (if pending { n.min(l.max_pending_handshakes / 2) } else { n }).max(1) as usize
}

/// Calls with retries on `rate_limited` (the pacing is approximate); returns the answer's type
/// or error code.
pub(crate) async fn paced_call(c: &mut Conn, frame: impl Fn(RequestId) -> ClientFrame, ok: &str) -> Res<String> {
    for _ in 0..20 {
        match c.call(&frame, ok).await? {
            Ok(_) => return Ok(ok.to_owned()),
            Err(code) if code == "rate_limited" => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(code) => return Ok(format!("error {code}")),
        }
    }
    Err("rate_limited 20 times".into())
}
