//! The hostile classes of the mix phases: request flood, slow consumers, malformed frames,
//! dropped connections, and the classes that spend the pending-handshake count (idle connections,
//! handshake and connection floods, dropped handshakes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kith_client::{counted_id, Outgoing};
use kith_proto::feed::{Filter, Heads, Replicate, Subscribe};
use kith_proto::{ClientFrame, ServerFrame};

use crate::conn::{describe, Conn, Got, WAIT};
use crate::ctx::Ctx;
use crate::setup::{
    actions, at, phase_len, src, SRC_CONN_FLOOD, SRC_DROP_REQ, SRC_MALFORMED, SRC_PENDING, SRC_REQ_FLOOD, SRC_SLOW,
};
use crate::tally::{short, Tally};
use crate::valid::logged_in;

/// Connections past a limit that the floods open: the refusals each flood expects.
pub(crate) const OVER: usize = 16;

/// Extra connections the connection flood opens past `max_connections_per_address`.
pub(crate) const CONN_OVER: usize = 8;

/// Bursts of 3 × `max_requests_per_second` `heads` requests, pipelined; counts the answers.
pub(crate) async fn request_flood(ctx: Arc<Ctx>, tally: Tally, start: Instant) {
    let every = Duration::from_secs(2);
    let n = actions(phase_len(&ctx), every);
    let burst = (ctx.limits.max_requests_per_second.saturating_mul(3)).clamp(3, 3000);
    let mut conn: Option<Conn> = None;
    for i in 0..n {
        at(start, every * i as u32).await;
        let login = || Conn::session(&ctx, src(0, SRC_REQ_FLOOD), &ctx.flood_user, None);
        let Some(c) = logged_in(&mut conn, &tally, "request flood|login failed", login).await else { continue };
        tally.add("request flood|bursts", 1);
        tally.add("request flood|requests sent", burst);
        let heavy = ctx.heavy;
        let mut failed = None;
        for _ in 0..burst {
            let id = counted_id(c.id());
            let text = ClientFrame::Heads(Heads { id, authors: vec![heavy] }).to_text();
            if let Err(e) = c.ws.feed_raw(Outgoing::Text(text)).await {
                failed = Some(e.to_string());
                break;
            }
        }
        if failed.is_none() {
            if let Err(e) = c.ws.flush_raw().await {
                failed = Some(e.to_string());
            }
        }
        let mut got = 0;
        while failed.is_none() && got < burst {
            match c.recv(WAIT).await {
                None => failed = Some("no answer in time".into()),
                Some(Got::Text(t)) => {
                    got += 1;
                    tally.add(format!("request flood|{}", describe(&t)), 1);
                }
                Some(Got::Binary) => failed = Some("binary".into()),
                Some(Got::Closed(cl)) => failed = Some(cl),
            }
        }
        if let Some(f) = failed {
            tally.add(format!("request flood|burst ended: {f}"), 1);
            conn = None;
        }
    }
    if let Some(c) = conn.take() {
        c.close().await;
    }
}

/// Subscribes to the large entries with a full backfill through a tiny receive buffer, reads
/// nothing for `slow_hold_secs`, then reads everything and records how the connection ended.
pub(crate) async fn slow_consumer(ctx: Arc<Ctx>, tally: Tally, start: Instant, idx: usize) {
    let hold = Duration::from_secs(ctx.args.slow_hold_secs);
    let every = hold + Duration::from_secs(2);
    let n = actions(phase_len(&ctx), every);
    for i in 0..n {
        at(start, Duration::from_millis(500 * idx as u64) + every * i as u32).await;
        let mut c = match Conn::session(&ctx, src(0, SRC_SLOW), &ctx.flood_user, Some(4096)).await {
            Ok(c) => c,
            Err(e) => {
                tally.add(format!("slow consumer|login failed: {}", short(&e)), 1);
                continue;
            }
        };
        let id = counted_id(c.id());
        let frame = ClientFrame::Subscribe(Subscribe {
            id,
            filter: Filter { authors: vec![ctx.heavy], ..Filter::default() },
            backfill: Some(ctx.limits.max_backfill),
        });
        if let Err(e) = c.send(frame.to_text()).await {
            tally.add(format!("slow consumer|subscribe failed: {e}"), 1);
            continue;
        }
        tally.add("slow consumer|subscribed, read nothing", 1);
        tokio::time::sleep(hold).await;
        let (frames, end) = c.drain(Duration::from_secs(3)).await;
        tally.add(format!("slow consumer|ended: {end}"), 1);
        tally.add("slow consumer frames read (not compared)", frames);
        c.close().await;
    }
}

/// The malformed frames, in the order they are sent, with a name for the table.
pub(crate) fn malformed_frames(next_id: u64) -> Vec<(&'static str, Outgoing)> {
    let nested =
        format!("{{\"type\":\"heads\",\"id\":{next_id},\"authors\":[],\"x\":{}1{}}}", "[".repeat(100), "]".repeat(100));
    let oversized =
        format!("{{\"type\":\"heads\",\"id\":{next_id},\"authors\":[],\"pad\":\"{}\"}}", "a".repeat(70_000));
    let invalid_utf8 = Outgoing::TextBytes(b"{\"type\":\"\xff\xfe\"}".to_vec());
    vec![
        ("binary message", Outgoing::Binary(vec![0x7b, 0x7d])),
        ("truncated JSON", Outgoing::Text("{\"type\":\"heads\",\"id\":".into())),
        ("nesting depth 101", Outgoing::Text(nested)),
        ("unknown type", Outgoing::Text(format!("{{\"type\":\"no_such_request\",\"id\":{next_id}}}"))),
        ("response type sent by a client", Outgoing::Text(format!("{{\"type\":\"event\",\"id\":{next_id}}}"))),
        ("missing id", Outgoing::Text("{\"type\":\"heads\",\"authors\":[]}".into())),
        ("id out of range", Outgoing::Text("{\"type\":\"heads\",\"id\":1e300,\"authors\":[]}".into())),
        (
            "duplicate member",
            Outgoing::Text(format!("{{\"type\":\"heads\",\"id\":{next_id},\"id\":1,\"authors\":[]}}")),
        ),
        ("JSON array", Outgoing::Text("[1,2,3]".into())),
        (
            "lone surrogate escape",
            Outgoing::Text(format!("{{\"type\":\"heads\",\"id\":{next_id},\"authors\":[\"\\ud800\"]}}")),
        ),
        (
            "bad entry",
            Outgoing::Text(format!("{{\"type\":\"publish\",\"id\":{next_id},\"entry\":{{\"author\":\"zz\"}}}}")),
        ),
        ("frame of 70 KB", Outgoing::Text(oversized)),
        ("invalid UTF-8 text", invalid_utf8),
    ]
}

/// Sends each malformed frame in turn on a logged-in connection; records the answer.
pub(crate) async fn malformed(ctx: Arc<Ctx>, tally: Tally, start: Instant) {
    let every = Duration::from_millis(250);
    let n = actions(phase_len(&ctx), every);
    let mut conn: Option<Conn> = None;
    for i in 0..n {
        at(start, every * i as u32).await;
        let login = || Conn::session(&ctx, src(0, SRC_MALFORMED), &ctx.flood_user, None);
        let Some(c) = logged_in(&mut conn, &tally, "malformed|login failed", login).await else { continue };
        let frames = malformed_frames(c.next_id);
        c.next_id += 1;
        let k = (i as usize) % frames.len();
        let Some((name, msg)) = frames.into_iter().nth(k) else { continue };
        let seen = match c.send_msg(msg).await {
            Ok(()) => c.outcome(Duration::from_secs(2), Duration::from_millis(150)).await,
            Err(e) => e,
        };
        tally.add(format!("malformed|{name}: {seen}"), 1);
        if c.ended.is_some() {
            conn = None;
        }
    }
    if let Some(c) = conn.take() {
        c.close().await;
    }
}

/// Entries asked for by the requests whose connection drops: about 1.5 MB of answer. Whole
/// backfills (15 MB) to dead peers, every second, made the node's peak memory (which glibc keeps
/// as RSS) depend on how many of them overlapped; the slow consumers already cover full queues.
pub(crate) const DROP_ENTRIES: u64 = 100;

/// Logs in, sends a request (some with large answers) and drops the TCP connection at once.
pub(crate) async fn drop_mid_request(ctx: Arc<Ctx>, tally: Tally, start: Instant) {
    let every = Duration::from_millis(500);
    let n = actions(phase_len(&ctx), every);
    for i in 0..n {
        at(start, every * i as u32).await;
        let mut c = match Conn::session(&ctx, src(0, SRC_DROP_REQ), &ctx.dropper_user, None).await {
            Ok(c) => c,
            Err(e) => {
                tally.add(format!("drop mid-request|login failed: {}", short(&e)), 1);
                continue;
            }
        };
        let id = counted_id(c.id());
        let heavy = ctx.heavy;
        let (name, text) = match i % 4 {
            0 => (
                "subscribe (backfill of 100 large entries)",
                ClientFrame::Subscribe(Subscribe {
                    id,
                    filter: Filter { authors: vec![heavy], ..Filter::default() },
                    backfill: Some(DROP_ENTRIES.min(ctx.limits.max_backfill)),
                })
                .to_text(),
            ),
            1 => (
                "replicate (100 large entries)",
                ClientFrame::Replicate(Replicate {
                    id,
                    author: heavy,
                    after: 0,
                    limit: DROP_ENTRIES.min(ctx.limits.max_replicate),
                })
                .to_text(),
            ),
            2 => ("publish", ctx.dropper_entry.replace("\"id\":1,", &format!("\"id\":{},", id.get()))),
            _ => ("heads", ClientFrame::Heads(Heads { id, authors: vec![heavy] }).to_text()),
        };
        let rst = (i / 4) % 2 == 1;
        match c.send(text).await {
            Ok(()) => tally.add(format!("drop mid-request|{name}, then {}", if rst { "RST" } else { "FIN" }), 1),
            Err(e) => tally.add(format!("drop mid-request|send failed: {e}"), 1),
        }
        c.drop_tcp(rst);
    }
}

/// The classes that spend the node-wide pending-handshake count, one after another, in cycles:
/// idle connections that hit the handshake timeout, the handshake flood, the connection flood,
/// connections dropped mid-handshake.
pub(crate) async fn pending_classes(ctx: Arc<Ctx>, tally: Tally, start: Instant) {
    let timeout = Duration::from_millis(ctx.limits.handshake_timeout_ms);
    let every = (timeout + Duration::from_secs(3)).max(Duration::from_secs(4));
    let n = actions(phase_len(&ctx), every);
    for i in 0..n {
        at(start, every * i as u32).await;
        idle_connections(&ctx, &tally, timeout).await;
        {
            let _exclusive = ctx.gate.write().await;
            handshake_flood(&ctx, &tally).await;
            connection_flood(&ctx, &tally).await;
        }
        dropped_handshakes(&ctx, &tally).await;
    }
}

pub(crate) async fn idle_connections(ctx: &Ctx, tally: &Tally, timeout: Duration) {
    let silent = (ctx.limits.max_pending_handshakes / 4).clamp(1, 8) as usize;
    let after_hello = silent / 2 + 1;
    let mut conns = Vec::new();
    for j in 0..silent + after_hello {
        let mut c = match Conn::open(ctx, src(0, SRC_PENDING), None).await {
            Ok(c) => c,
            Err(e) => {
                tally.add(format!("idle|open failed: {}", short(&e)), 1);
                continue;
            }
        };
        let name = if j < silent {
            "silent"
        } else {
            match c.hello(ctx.node, &ctx.flood_user).await {
                Ok(_) => "hello, then silent",
                Err(_) => "hello failed",
            }
        };
        conns.push((name, c));
    }
    let waits = conns.into_iter().map(|(name, mut c)| async move {
        // The challenge (after a hello) comes at once; then nothing until the timeout closes it.
        let wait = timeout + Duration::from_secs(3);
        let seen = c.outcome(wait, wait).await;
        (name, seen)
    });
    for (name, seen) in futures_util::future::join_all(waits).await {
        tally.add(format!("idle|{name}: {seen}"), 1);
    }
}

pub(crate) async fn handshake_flood(ctx: &Ctx, tally: &Tally) {
    let limit = ctx.limits.max_pending_handshakes;
    if limit > 1024 {
        tally.add("handshake flood|skipped: max_pending_handshakes over 1024", 1);
        return;
    }
    let total = limit as usize + OVER;
    // Spread over addresses so that the per-address limit is not what refuses them.
    let per = (ctx.limits.max_connections_per_address / 2).max(1) as usize;
    let mut conns = Vec::new();
    for j in 0..total {
        match Conn::open(ctx, src(1, 1 + (j / per) as u8), None).await {
            Ok(c) => conns.push(c),
            Err(e) => tally.add(format!("handshake flood|open failed: {}", short(&e)), 1),
        }
    }
    tally.add("handshake flood|connections", total as u64);
    let waits = conns.into_iter().map(|mut c| async move {
        let seen = c.outcome(Duration::from_millis(500), Duration::from_millis(200)).await;
        (seen, c)
    });
    let results = futures_util::future::join_all(waits).await;
    let mut open = Vec::new();
    for (seen, c) in results {
        tally.add(format!("handshake flood|{}", if seen == "nothing" { "accepted (nothing sent)" } else { &seen }), 1);
        open.push(c);
    }
    futures_util::future::join_all(open.into_iter().map(Conn::close)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
}

pub(crate) async fn connection_flood(ctx: &Ctx, tally: &Tally) {
    let limit = ctx.limits.max_connections_per_address;
    if limit > 512 {
        tally.add("connection flood|skipped: max_connections_per_address over 512", 1);
        return;
    }
    let mut sessions = Vec::new();
    // Logins a few at a time, so that they stay well within the pending-handshake limit.
    let batch = (ctx.limits.max_pending_handshakes / 2).clamp(1, 8) as usize;
    let mut left = limit as usize;
    while left > 0 {
        let k = left.min(batch);
        left -= k;
        let logins = (0..k).map(|_| async {
            let mut c = Conn::open(ctx, src(0, SRC_CONN_FLOOD), None).await?;
            c.login(ctx.node, &ctx.flood_user).await?;
            Ok::<_, String>(c)
        });
        for r in futures_util::future::join_all(logins).await {
            match r {
                Ok(c) => sessions.push(c),
                Err(e) => tally.add(format!("connection flood|login failed: {}", short(&e)), 1),
            }
        }
    }
    tally.add("connection flood|logged in", sessions.len() as u64);
    let mut extra = Vec::new();
    for _ in 0..CONN_OVER {
        match Conn::open(ctx, src(0, SRC_CONN_FLOOD), None).await {
            Ok(c) => extra.push(c),
            Err(e) => tally.add(format!("connection flood|open failed: {}", short(&e)), 1),
        }
    }
    let waits = extra.into_iter().map(|mut c| async move {
        let seen = c.outcome(Duration::from_millis(500), Duration::from_millis(200)).await;
        (seen, c)
    });
    for (seen, c) in futures_util::future::join_all(waits).await {
        tally.add(
            format!("connection flood|one more: {}", if seen == "nothing" { "accepted (nothing sent)" } else { &seen }),
            1,
        );
        sessions.push(c);
    }
    futures_util::future::join_all(sessions.into_iter().map(Conn::close)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
}

pub(crate) async fn dropped_handshakes(ctx: &Ctx, tally: &Tally) {
    // Before the upgrade: half an HTTP request, then FIN.
    match Conn::tcp(ctx, src(0, SRC_PENDING), None).await {
        Ok(mut tcp) => {
            use tokio::io::AsyncWriteExt;
            let _ = tcp.write_all(b"GET / HTTP/1.1\r\nHost: kith\r\nUpgrade: websocket\r\n").await;
            drop(tcp);
            tally.add("dropped handshake|half an upgrade request, FIN", 1);
        }
        Err(e) => tally.add(format!("dropped handshake|connect failed: {}", short(&e)), 1),
    }
    for (name, step, rst) in [
        ("upgraded, FIN", 0, false),
        ("upgraded, RST", 0, true),
        ("hello, FIN", 1, false),
        ("challenge read, RST", 2, true),
        ("auth sent, RST", 3, true),
    ] {
        let mut c = match Conn::open(ctx, src(0, SRC_PENDING), None).await {
            Ok(c) => c,
            Err(e) => {
                tally.add(format!("dropped handshake|open failed: {}", short(&e)), 1);
                continue;
            }
        };
        let mut ok = true;
        if step >= 1 {
            match c.hello(ctx.node, &ctx.flood_user).await {
                Ok((mut session, hid)) if step >= 2 => match c.answer(hid).await {
                    Ok((_, text)) => {
                        if step >= 3 {
                            ok = match ServerFrame::parse(&text) {
                                Ok(ServerFrame::Challenge(ch)) => {
                                    c.auth_id();
                                    match session.handle_challenge(&ch) {
                                        Ok(auth) => c.send(ClientFrame::Auth(auth).to_text()).await.is_ok(),
                                        Err(_) => false,
                                    }
                                }
                                _ => false,
                            };
                        }
                    }
                    Err(_) => ok = false,
                },
                Ok(_) => {}
                Err(_) => ok = false,
            }
        }
        tally.add(format!("dropped handshake|{name}{}", if ok { "" } else { " (a step failed)" }), 1);
        c.drop_tcp(rst);
    }
}
