//! The close attack: connections that flood requests, send a close frame and never read.

use std::sync::Arc;
use std::time::Duration;

use kith_client::counted_id;
use kith_proto::node_info::NodeInfo;
use kith_proto::ClientFrame;

use crate::attack::common::{per_address, Held, SRC_ATTACK};
use crate::conn::{raw_upgrade, ws_frame};
use crate::ctx::Ctx;
use crate::setup::src;
use crate::tally::{short, Tally};

pub(crate) async fn close_attack(ctx: &Ctx, tally: &Tally) -> Held {
    use tokio::io::AsyncWriteExt;
    let n = per_address(ctx, true);
    let reqs = ctx.args.close_attack_requests;
    let flood: Arc<Vec<u8>> = Arc::new(
        (0..reqs)
            .flat_map(|i| ws_frame(ClientFrame::NodeInfo(NodeInfo { id: counted_id(i + 1) }).to_text().as_bytes(), 1))
            .collect(),
    );
    tally.add(format!("close attack|connections ({} requests each)", reqs), n as u64);
    let one = |j: usize| {
        let flood = flood.clone();
        async move {
            let mut tcp = raw_upgrade(ctx, src(SRC_ATTACK, 1), Some(4096)).await?;
            // The node stops reading once it has decided to end the connection: the writes
            // then block, which is the point, so each has a bound.
            let written = tokio::time::timeout(Duration::from_secs(5), tcp.write_all(&flood)).await;
            let closed =
                tokio::time::timeout(Duration::from_secs(2), tcp.write_all(&ws_frame(&1000u16.to_be_bytes(), 8))).await;
            let how = match (written, closed) {
                (Ok(Ok(())), Ok(Ok(()))) => "flood and close frame written",
                (Ok(Ok(())), _) => "flood written, close frame blocked",
                _ => "flood blocked (node stopped reading)",
            };
            let _ = j;
            Ok::<_, String>((how, tcp))
        }
    };
    let mut held = Held::default();
    for r in futures_util::future::join_all((0..n).map(one)).await {
        match r {
            Ok((how, tcp)) => {
                tally.add(format!("close attack|{how}, socket kept open, nothing read"), 1);
                held.sockets.push(tcp);
            }
            Err(e) => tally.add(format!("attack failure|close attack: {}", short(&e)), 1),
        }
    }
    held
}
