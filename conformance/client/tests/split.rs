//! The driver's additions for the tools (split halves, raw reads and sends, a reset, how a
//! connection ended) against a small websocket server in the test that does one thing per
//! connection: echo, close with a code, end without a close frame, reset, or report how the
//! client left. (The handshake server of `driver.rs` never ends a connection on its own.)
#![allow(missing_docs)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kith_client::{socket_addr, End, Outgoing, Raw, RawError};
use kith_client::{ConnectOptions, Connection, Transcript};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy)]
enum Behaviour {
    /// Sends every text message back, until the client closes.
    Echo,
    /// Closes with 1008 `rate_limited`.
    Close,
    /// Drops the TCP connection (FIN) without a close frame.
    Fin,
    /// Drops the TCP connection with a reset.
    Reset,
}

/// Serves one connection as `behaviour` says; returns the URL and, once the client has gone,
/// how the server saw it leave.
async fn serve(behaviour: Behaviour) -> (String, oneshot::Receiver<End>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let addr = listener.local_addr().expect("bound");
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else { return };
        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
        match behaviour {
            Behaviour::Echo => {
                let end = loop {
                    match ws.next().await {
                        Some(Ok(Message::Text(t))) => {
                            let _ = ws.send(Message::text(t.as_str().to_owned())).await;
                        }
                        Some(Ok(Message::Close(f))) => {
                            break End::Close(f.map(|f| (u16::from(f.code), f.reason.as_str().to_owned())))
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => break End::from_ws_error(&e),
                        None => break End::WithoutClose,
                    }
                };
                // The reply to a close frame goes out with the next write or flush.
                let _ = ws.flush().await;
                let _ = tx.send(end);
            }
            Behaviour::Close => {
                let frame = CloseFrame { code: CloseCode::Policy, reason: "rate_limited".into() };
                let _ = ws.close(Some(frame)).await;
                while ws.next().await.is_some() {}
            }
            Behaviour::Fin => drop(ws),
            Behaviour::Reset => {
                ws.get_ref().set_zero_linger().expect("SO_LINGER");
                drop(ws);
            }
        }
    });
    (format!("ws://{addr}"), rx)
}

async fn open(url: &str) -> Connection {
    Connection::connect_with(url, ConnectOptions::new("c", Transcript::default())).await.expect("connected")
}

#[tokio::test]
async fn split_halves_pipeline_and_read_raw_text() {
    let (url, left) = serve(Behaviour::Echo).await;
    let conn = open(&url).await;
    conn.set_nodelay(true).expect("TCP_NODELAY");
    let (mut send, mut recv) = conn.split();
    let sender = tokio::spawn(async move {
        for i in 0..3 {
            send.feed_text(format!("{{\"type\":\"x\",\"id\":{i}}}")).await.expect("fed");
        }
        send.flush().await.expect("flushed");
        send
    });
    for i in 0..3 {
        // Raw: the text exactly as sent back, not a parsed frame (`x` is no frame type).
        assert_eq!(recv.next_text(WAIT).await, Ok(format!("{{\"type\":\"x\",\"id\":{i}}}")));
    }
    assert_eq!(recv.next_text(Duration::from_millis(50)).await, Err(RawError::Timeout(Duration::from_millis(50))));
    let mut send = sender.await.expect("sender");
    send.close().await.expect("close sent");
    assert_eq!(left.await.expect("server saw the end"), End::Close(None));
    assert_eq!(recv.next_text(WAIT).await, Err(RawError::Ended(End::Close(None))));
    // Once ended, a half says so again.
    assert_eq!(recv.next_raw().await, Raw::Ended(End::Close(None)));
}

#[tokio::test]
async fn raw_sends_and_reads_go_as_given() {
    let (url, _left) = serve(Behaviour::Echo).await;
    let mut conn = open(&url).await;
    conn.send_raw(Outgoing::TextBytes(b"{\"a\":1}".to_vec())).await.expect("sent");
    conn.feed_raw(Outgoing::Text("not json".into())).await.expect("fed");
    conn.flush_raw().await.expect("flushed");
    assert_eq!(conn.next_raw(WAIT).await, Some(Raw::Text("{\"a\":1}".into())));
    assert_eq!(conn.next_raw(WAIT).await, Some(Raw::Text("not json".into())));
    assert_eq!(conn.next_raw(Duration::from_millis(50)).await, None);
    assert!(conn.transcript().lines().iter().any(|l| l.text == "not json"), "raw frames are recorded");
}

#[tokio::test]
async fn a_reset_reaches_the_node_as_a_reset() {
    let (url, left) = serve(Behaviour::Echo).await;
    let mut conn = open(&url).await;
    conn.send_raw(Outgoing::Text("hi".into())).await.expect("sent");
    assert_eq!(conn.next_raw(WAIT).await, Some(Raw::Text("hi".into())));
    conn.reset();
    assert_eq!(tokio::time::timeout(WAIT, left).await.expect("in time").expect("server saw the end"), End::Reset);
}

#[tokio::test]
async fn a_close_frame_a_reset_and_an_end_without_close_are_told_apart() {
    for (behaviour, want) in [
        (Behaviour::Close, End::Close(Some((1008, "rate_limited".into())))),
        (Behaviour::Fin, End::WithoutClose),
        (Behaviour::Reset, End::Reset),
    ] {
        let (url, _left) = serve(behaviour).await;
        let mut conn = open(&url).await;
        assert_eq!(conn.next_raw(WAIT).await, Some(Raw::Ended(want.clone())));
        // The connection remembers a close frame; after a reset or a FIN, that no close came.
        let again = if matches!(want, End::Close(_)) { want.clone() } else { End::WithoutClose };
        assert_eq!(conn.next_raw(WAIT).await, Some(Raw::Ended(again)));
        let (url, _left) = serve(behaviour).await;
        let (_send, mut recv) = open(&url).await.split();
        assert_eq!(recv.next_raw().await, Raw::Ended(want.clone()));
    }
    assert_eq!(End::Close(Some((1008, "rate_limited".into()))).to_string(), "close 1008 rate_limited");
    assert_eq!(End::Reset.to_string(), "reset");
    assert_eq!(End::WithoutClose.to_string(), "ended without close frame");
}

#[tokio::test]
async fn a_url_names_its_socket_address() {
    assert_eq!(socket_addr("ws://127.0.0.1:4100/").await.expect("resolved"), "127.0.0.1:4100".parse().expect("addr"));
    assert_eq!(socket_addr("ws://[::1]:4100").await.expect("resolved"), "[::1]:4100".parse().expect("addr"));
    assert_eq!(socket_addr("ws://127.0.0.1").await.expect("resolved").port(), 80);
    assert!(socket_addr("not a url").await.is_err());
}
