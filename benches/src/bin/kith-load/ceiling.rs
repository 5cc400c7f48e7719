//! The verify ceiling: this machine's strict-verify rate and the server side of a handshake,
//! measured in the same run, which every throughput is printed as a ratio to.

use std::time::{Duration, Instant};

use kith_client::now_ms;
use kith_proto::cert::Certificate;
use kith_proto::entry::EntryDraft;
use kith_proto::handshake::{ClientConfig, ClientHandshake, ServerHandshake};
use kith_proto::version::PROTOCOL_VERSION;
use kith_proto::{PublicKey, RequestId, SecretKey};
use serde::Serialize;

/// The cost of the curve work that bounds a node on this machine.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Ceiling {
    pub(crate) cores: usize,
    /// One strict verification of a typical entry's signing bytes, on one core.
    pub(crate) verify_us: f64,
    /// Strict verifications per second on one core.
    pub(crate) verify_per_core: f64,
    /// Strict verifications per second with one thread per core.
    pub(crate) verify_all_cores: f64,
    /// The server side of a handshake, whole (`ServerHandshake` new + hello + auth).
    pub(crate) hs_server_us: f64,
    /// Only its curve work (2 strict verifications, 1 signature, X25519 key generation and
    /// agreement), as `cargo bench` measures it, given by `--hs-curve-us`; else the whole
    /// server side above stands in for it.
    pub(crate) hs_curve_us: f64,
}

pub(crate) fn sample_entry() -> (PublicKey, Vec<u8>, kith_proto::Signature) {
    let author = SecretKey::from_seed([1; 32]);
    let e = EntryDraft::first(now_ms())
        .text(&"a typical short post of about two hundred characters. ".repeat(4))
        .sign(&author);
    (e.author, e.signing_bytes(), e.sig)
}

pub(crate) fn time_per_op(mut op: impl FnMut(), min: Duration) -> f64 {
    // Warm up, then time rounds until `min` has passed; the fastest round stands for the
    // machine (the others were disturbed by something else).
    for _ in 0..50 {
        op();
    }
    let start = Instant::now();
    let mut best = f64::INFINITY;
    while start.elapsed() < min {
        let t = Instant::now();
        for _ in 0..200 {
            op();
        }
        best = best.min(t.elapsed().as_secs_f64() / 200.0);
    }
    best * 1e6
}

pub(crate) fn measure_ceiling(hs_curve_us: Option<f64>) -> Ceiling {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (key, message, sig) = sample_entry();
    let verify_us = time_per_op(
        || {
            let _ = std::hint::black_box(key.verify_strict(&message, &sig));
        },
        Duration::from_millis(1500),
    );
    // Rounds of one thread per core; the best round stands for the machine, as above.
    let round = Duration::from_millis(250);
    let mut verify_all_cores = 0f64;
    for _ in 0..6 {
        let counts: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..cores)
                .map(|_| {
                    s.spawn(|| {
                        let start = Instant::now();
                        let mut n = 0u64;
                        while start.elapsed() < round {
                            for _ in 0..20 {
                                let _ = std::hint::black_box(key.verify_strict(&message, &sig));
                            }
                            n += 20;
                        }
                        (n, start.elapsed())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().map_or(0, |(n, t)| (n as f64 / t.as_secs_f64()) as u64)).collect()
        });
        verify_all_cores = verify_all_cores.max(counts.iter().sum::<u64>() as f64);
    }

    let node = SecretKey::from_seed([10; 32]);
    let user = SecretKey::from_seed([11; 32]);
    let peer = SecretKey::from_seed([12; 32]);
    let now = now_ms();
    let cert = Certificate::issue(&user, peer.public(), now + 24 * 3_600_000);
    let config = ClientConfig {
        peer: peer.clone(),
        cert: cert.clone(),
        expected_node: node.public(),
        version: PROTOCOL_VERSION.into(),
    };
    let (mut client, hello) = ClientHandshake::start(config, [21; 32], RequestId::small(1));
    let mut server = ServerHandshake::new(node.clone(), [22; 32]);
    let ch = server.handle_hello(&hello, now);
    let auth = ch.ok().and_then(|ch| client.handle_challenge(&ch, RequestId::small(2)).ok());
    let hs_server_us = match auth {
        Some(auth) => time_per_op(
            || {
                let mut s = ServerHandshake::new(node.clone(), [22; 32]);
                let _ = std::hint::black_box(s.handle_hello(&hello, now));
                let _ = std::hint::black_box(s.handle_auth(&auth));
            },
            Duration::from_millis(800),
        ),
        None => f64::NAN,
    };
    Ceiling {
        cores,
        verify_us,
        verify_per_core: 1e6 / verify_us,
        verify_all_cores,
        hs_server_us,
        hs_curve_us: hs_curve_us.unwrap_or(hs_server_us),
    }
}
