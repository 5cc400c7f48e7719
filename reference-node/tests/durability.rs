//! An acknowledged publish survives SIGKILL: run the real binary on a data directory, publish,
//! kill it without warning, restart it on the same directory and read everything back.
#![allow(missing_docs, clippy::unwrap_used, clippy::zombie_processes)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;
use kith_proto::SecretKey;
use serde_json::json;

/// Starts the binary and returns it with the address it printed.
fn spawn(data: &Path, seed: &Path) -> (Child, String, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kith-node"))
        .args(["--listen", "127.0.0.1:0", "--log", "warn", "--storage-bytes", "100000000"])
        .arg("--data-dir")
        .arg(data)
        .arg("--peer-seed-file")
        .arg(seed)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        let line = lines.next().expect("node exited before listening").unwrap();
        if let Some(addr) = line.strip_prefix("listening ") {
            return (child, addr.to_owned(), seen);
        }
        seen.push(line);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_publishes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let admin = SecretKey::random();
    let seed = write_seed(dir.path(), &admin);
    let data = dir.path().join("data");
    let (mut child, url, banner) = spawn(&data, &seed);
    assert!(url.starts_with("ws://127.0.0.1:") && url.ends_with('/'), "{url}");
    assert_eq!(banner[0], format!("node key: {}", admin.public()));
    assert!(banner[1].starts_with("admin key file: "));
    let node = admin.public();

    let mut c = Client::login(&url, node, &admin).await;
    let alice = SecretKey::random();
    let r = c
        .req(json!({"type":"create_user","key":alice.public().to_string(),"name":"alice","invite_allowance":2,
            "publish_allowance":5}))
        .await;
    assert_eq!(r["type"], "create_user_ok");
    let mut f = Feed::with_key(admin.clone());
    let entries: Vec<_> = (0..120).map(|i| f.next(&format!("entry {i}"))).collect();
    for (i, e) in entries.iter().enumerate() {
        c.send(json!({"type":"publish","id":i,"entry":e})).await;
    }
    for i in 0..entries.len() {
        let r = c.recv().await;
        assert_eq!((r["type"].as_str(), r["id"].as_u64()), (Some("publish_ok"), Some(i as u64)), "{r}");
    }
    // Every publish is acknowledged: kill at once, no shutdown.
    child.kill().unwrap();
    child.wait().unwrap();
    drop(c);

    let (mut child, url, _) = spawn(&data, &seed);
    let mut c = Client::login(&url, node, &admin).await;
    let author = admin.public().to_string();
    let mut got = Vec::new();
    let mut after = 0;
    while got.len() < entries.len() {
        let r = c.req(json!({"type":"replicate","author":author,"after":after,"limit":1000})).await;
        let batch = r["entries"].as_array().unwrap().clone();
        assert!(!batch.is_empty(), "missing entries after {after}: {r}");
        after += batch.len() as u64;
        got.extend(batch);
    }
    assert_eq!(got, entries.iter().map(|e| serde_json::to_value(e).unwrap()).collect::<Vec<_>>());
    let acct = c.req(json!({"type":"account"})).await["account"].clone();
    assert_eq!(acct["published_entries"], 120);
    let a = Client::login(&url, node, &alice).await;
    assert_eq!(a.account["publish_allowance"], 5);
    // The chain continues where it stopped.
    c.publish_ok(&f.next("after restart")).await;
    // SIGTERM shuts down gracefully: sessions hear `closing`, the process exits 0.
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let v = c.recv().await;
    assert_eq!(v["code"], "shutting_down");
    assert!(child.wait().unwrap().success());
}

#[test]
fn first_start_creates_and_keeps_the_peer_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kith-node"))
            .args(["--listen", "127.0.0.1:0", "--log", "warn"])
            .arg("--data-dir")
            .arg(&data)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let key = lines.next().unwrap().unwrap();
        let file = lines.next().unwrap().unwrap();
        let listening = lines.next().unwrap().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        (key, file, listening)
    };
    let (k1, f1, l1) = run();
    let (k2, _, _) = run();
    assert_eq!(k1, k2);
    assert!(k1.starts_with("node key: "));
    assert!(f1.ends_with("peer.key"), "{f1}");
    assert!(l1.starts_with("listening ws://127.0.0.1:"));
    let seed = std::fs::read_to_string(data.join("peer.key")).unwrap();
    assert_eq!(seed.len(), 65);
    assert!(seed.ends_with('\n'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_key_takes_over_the_admin_account() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = SecretKey::random();
    let seed = write_seed(dir.path(), &first);
    let o = Opts { memory: false, ..Opts::default() };
    let node = kith_node::start(args(dir.path(), seed, &o)).await.unwrap();
    let url = format!("ws://{}/", node.addr);
    let mut c = Client::login(&url, first.public(), &first).await;
    let alice = SecretKey::random();
    let r = c
        .req(json!({"type":"create_user","key":alice.public().to_string(),"name":"alice","invite_allowance":0,
            "publish_allowance":0}))
        .await;
    assert_eq!(r["type"], "create_user_ok");
    node.shutdown().await.unwrap();
    drop(c);
    let second = SecretKey::random();
    let other_dir = tempfile::tempdir().unwrap();
    let seed = write_seed(other_dir.path(), &second);
    let node = kith_node::start(args(dir.path(), seed, &o)).await.unwrap();
    let url = format!("ws://{}/", node.addr);
    let c = Client::login(&url, second.public(), &second).await;
    assert_eq!(c.account["name"], "admin");
    let a = Client::login(&url, second.public(), &alice).await;
    assert_eq!(a.account["parent"], second.public().to_string());
    let mut old = Client::connect(&url).await;
    assert_eq!(old.handshake(second.public(), &first, now_ms() + 60_000).await["code"], "unknown_user");
    assert!(data.join("kith.redb").exists());
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lowered_budget_prunes_before_accepting() {
    let dir = tempfile::tempdir().unwrap();
    let admin = SecretKey::random();
    let seed = write_seed(dir.path(), &admin);
    let big = Opts { memory: false, ..Opts::default() };
    let node = kith_node::start(args(dir.path(), seed.clone(), &big)).await.unwrap();
    let mut c = Client::login(&format!("ws://{}/", node.addr), admin.public(), &admin).await;
    let mut f = Feed::new();
    let pad = "q".repeat(4000);
    let mut refs_feed = Feed::new();
    for i in 0..10 {
        let mut d = f.draft().text(&format!("{i}{pad}"));
        d.mentions = vec![refs_feed.pub_key()];
        c.publish_ok(&f.push(d)).await;
    }
    let _ = &mut refs_feed;
    node.shutdown().await.unwrap();
    drop(c);
    let small = Opts { memory: false, storage_bytes: 16_384, ..Opts::default() };
    let node = kith_node::start(args(dir.path(), seed, &small)).await.unwrap();
    let mut c = Client::login(&format!("ws://{}/", node.addr), admin.public(), &admin).await;
    let h = c.req(json!({"type":"heads","authors":[f.pub_key().to_string()]})).await;
    let pruned_through = h["heads"][0]["pruned_through"].as_u64().unwrap();
    assert!(pruned_through >= 7, "{h}");
    let r = c.req(json!({"type":"replicate","author":f.pub_key().to_string(),"after":0,"limit":100})).await;
    assert_eq!(r["entries"].as_array().unwrap().len() as u64, 10 - pruned_through);
    // The mention index lost the pruned entries too.
    let s =
        c.req(json!({"type":"subscribe","filter":{"mentions":[refs_feed.pub_key().to_string()]},"backfill":100})).await;
    assert_eq!(s["type"], "subscribe_ok");
    let mut events = 0;
    while c.recv().await["type"] == "event" {
        events += 1;
    }
    assert_eq!(events, 10 - pruned_through);
    node.shutdown().await.unwrap();
}
