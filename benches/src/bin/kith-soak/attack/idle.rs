//! The idle attack: upgraded connections that never say `hello`.

use crate::attack::common::{per_address, Held, SRC_ATTACK};
use crate::conn::Conn;
use crate::ctx::Ctx;
use crate::setup::src;
use crate::tally::{short, Tally};

pub(crate) async fn idle_attack(ctx: &Ctx, tally: &Tally) -> Held {
    let n = per_address(ctx, true);
    let mut conns = Vec::new();
    for _ in 0..n {
        match Conn::open(ctx, src(SRC_ATTACK, 3), None).await {
            Ok(c) => conns.push(c),
            Err(e) => tally.add(format!("attack failure|idle open: {}", short(&e)), 1),
        }
    }
    tally.add("idle attack|upgraded connections that send nothing", conns.len() as u64);
    Held { conns, ..Held::default() }
}
