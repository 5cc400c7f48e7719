//! The driver against a small websocket server in the test: the core's server handshake for
//! `hello` and `auth`, and for any other request a `stored_end` push, then an error frame that
//! answers it and says how the request arrived (its length and the client's address).
#![allow(missing_docs)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kith_client::{
    connect_and_login, ClientError, ConnectOptions, Connection, Direction, Incoming, Opcode, Transcript, DEFAULT_WAIT,
};
use kith_proto::account::{Account, AccountName};
use kith_proto::handshake::{ServerHandshake, Welcome};
use kith_proto::node_info::NodeInfo;
use kith_proto::{ClientFrame, ErrorCode, SecretKey, ServerFrame};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// Starts the server; returns its URL and the node key.
async fn serve() -> (String, SecretKey) {
    let node = SecretKey::from_seed([7; 32]);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let addr = listener.local_addr().expect("bound");
    let key = node.clone();
    tokio::spawn(async move {
        while let Ok((tcp, peer)) = listener.accept().await {
            let key = key.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                let mut hs = ServerHandshake::new(key, [9; 32]);
                while let Some(Ok(msg)) = ws.next().await {
                    let text = match msg {
                        Message::Text(t) => t.as_str().to_owned(),
                        Message::Binary(b) => format!("<{} binary bytes>", b.len()),
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    let answer = match kith_proto::parse_client_frame(&text) {
                        Ok(ClientFrame::Hello(h)) => match hs.handle_hello(&h, 1_700_000_000_000) {
                            Ok(c) => ServerFrame::Challenge(c),
                            Err(e) => ServerFrame::error(Some(h.id), ErrorCode::BadHandshake, e.to_string()),
                        },
                        Ok(ClientFrame::Auth(a)) => match hs.handle_auth(&a) {
                            Ok(who) => ServerFrame::Welcome(Welcome {
                                id: a.id,
                                account: Account {
                                    key: who.user,
                                    name: AccountName::new("admin").expect("a valid name"),
                                    parent: None,
                                    invite_allowance: None,
                                    publish_allowance: None,
                                    published_entries: 0,
                                    published_bytes: 0,
                                },
                            }),
                            Err(e) => ServerFrame::error(Some(a.id), ErrorCode::BadSignature, e.to_string()),
                        },
                        Ok(other) => {
                            let push = format!(r#"{{"type":"stored_end","sub":{}}}"#, other.id());
                            if ws.send(Message::text(push)).await.is_err() {
                                return;
                            }
                            ServerFrame::error(
                                Some(other.id()),
                                ErrorCode::Internal,
                                format!("{} bytes from {}", text.len(), peer.ip()),
                            )
                        }
                        Err(_) => ServerFrame::error(None, ErrorCode::MalformedFrame, format!("{} bytes", text.len())),
                    };
                    if ws.send(Message::text(answer.to_text())).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("ws://{addr}/"), node)
}

#[tokio::test]
async fn logs_in_and_queues_pushes_while_it_waits_for_an_answer() {
    let (url, node) = serve().await;
    let user = SecretKey::from_seed([1; 32]);
    let transcript = Transcript::default();
    let mut s = connect_and_login(&url, ConnectOptions::new("admin", transcript.clone()), node.public(), &user)
        .await
        .expect("the test server welcomes every valid handshake");
    assert_eq!(s.account.key, user.public());
    assert!(s.conn.session().is_established());

    // The answer comes after a push: the push is queued for the next receive.
    let answer = s.conn.request(|id| ClientFrame::NodeInfo(NodeInfo { id }), DEFAULT_WAIT).await.expect("answered");
    assert!(
        matches!(answer, ServerFrame::Error(e) if e.code == ErrorCode::Internal && e.message.contains("127.0.0.1"))
    );
    assert!(matches!(s.conn.next_push(DEFAULT_WAIT).await, Ok(ServerFrame::StoredEnd(_))));

    // Collecting: the push before the answer is handed out with it.
    let (pushes, answer) =
        s.conn.request_collecting(|id| ClientFrame::NodeInfo(NodeInfo { id }), DEFAULT_WAIT).await.expect("answered");
    assert_eq!(pushes.len(), 1);
    assert!(matches!(answer, ServerFrame::Error(_)));
    assert_eq!(s.conn.session().outstanding().count(), 0);

    // Skipping: the push before the answer is dropped.
    let answer = s
        .conn
        .request_skipping_pushes(|id| ClientFrame::NodeInfo(NodeInfo { id }), DEFAULT_WAIT)
        .await
        .expect("answered");
    assert!(matches!(answer, ServerFrame::Error(_)));
    assert!(s.conn.quiet_for(Duration::from_millis(100)).await.is_ok());

    let lines = transcript.lines();
    assert!(lines.iter().any(|l| l.dir == Direction::Sent && l.text.contains(r#""type":"hello""#)));
    assert!(lines.iter().any(|l| l.dir == Direction::Received && l.text.contains(r#""type":"welcome""#)));
    s.conn.close().await;
}

#[tokio::test]
async fn fragments_arrive_as_one_message_and_raw_bytes_as_given() {
    let (url, _) = serve().await;
    let mut c = Connection::open(&url).await.expect("connects");
    let text = r#"{"type":"node_info","id":5}"#;
    c.send_fragmented(Opcode::Text, text.as_bytes(), &[3, 10, 11]).await.expect("sent");
    let push = c.recv_text(DEFAULT_WAIT).await.expect("the push");
    assert!(push.contains("stored_end"), "{push}");
    let answer = c.recv_frame(DEFAULT_WAIT).await.expect("the answer");
    assert!(matches!(answer, ServerFrame::Error(e) if e.message.starts_with(&format!("{} bytes", text.len()))));

    // Not JSON: an error with a null id, which answers the request just sent.
    let id = c.next_id();
    c.send_text("{nope").await.expect("sent");
    let answer = c.await_answer(id, DEFAULT_WAIT).await.expect("an unaddressed error");
    assert!(matches!(answer, ServerFrame::Error(e) if e.id.is_none() && e.code == ErrorCode::MalformedFrame));
}

#[tokio::test]
async fn queued_frames_go_out_together_and_options_apply() {
    let (url, _) = serve().await;
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
    let options =
        ConnectOptions::default().source(source).recv_buffer(64 * 1024).max_message_size(1 << 20).recording(false);
    let mut c = Connection::connect_with(&url, options).await.expect("connects from 127.0.0.3");
    for id in 10..13 {
        c.feed_text(&format!(r#"{{"type":"node_info","id":{id}}}"#)).await.expect("queued");
    }
    c.flush().await.expect("flushed");
    let mut answers = 0;
    while answers < 3 {
        let t = c.recv_text(DEFAULT_WAIT).await.expect("a frame");
        if t.contains(r#""type":"error""#) {
            assert!(t.contains("from 127.0.0.3"), "{t}");
            answers += 1;
        }
    }
    assert_eq!(c.session().outstanding().count(), 0);
    assert!(c.transcript().lines().iter().all(|l| l.dir == Direction::Note), "recording was off");

    let bad = SocketAddr::new(source, 1);
    let err = Connection::connect_with("wss://127.0.0.1:1/", ConnectOptions::default().source(bad.ip()))
        .await
        .expect_err("a source address needs ws://");
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    assert!(matches!(c.recv(Duration::from_millis(50)).await, Err(ClientError::Timeout(_))));
    c.close().await;
    assert!(!matches!(c.recv(Duration::from_millis(500)).await, Ok(Incoming::Text(_))));
}
