//! One mix phase: every class's tasks started together, their outcomes tallied, and what the
//! verdict reads of the phase.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kith_proto::SecretKey;
use serde::Serialize;

use crate::ctx::Ctx;
use crate::hostile::{drop_mid_request, malformed, pending_classes, request_flood, slow_consumer};
use crate::sample::ProcSample;
use crate::setup::{Author, Setup};
use crate::tally::Tally;
use crate::valid::{heavy_publisher, join_valid_clients, valid_client};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PhaseResult {
    pub(crate) phase: usize,
    pub(crate) secs: f64,
    pub(crate) settle_secs: f64,
    /// When each class finished, seconds after the phase started (a class that ran late
    /// stretches the phase).
    pub(crate) class_secs: BTreeMap<String, f64>,
    /// The store's size on disk after the phase (launched node only).
    pub(crate) disk_bytes: Option<u64>,
    pub(crate) counts: BTreeMap<String, u64>,
    pub(crate) node: Option<ProcSample>,
}

impl PhaseResult {
    pub(crate) fn sum(&self, prefix: &str) -> u64 {
        self.counts.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum()
    }

    /// Refusals and closes by code, over every class: `error CODE` and `close N REASON` parts
    /// of the outcomes, each counted as often as its outcome.
    pub(crate) fn by_code(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for (k, v) in &self.counts {
            let Some((class, outcome)) = k.split_once('|') else { continue };
            if class.starts_with("valid") && class != "valid side" {
                continue;
            }
            let outcome = outcome.rsplit(": ").next().unwrap_or(outcome);
            for part in outcome.split(", ") {
                if part.starts_with("error ") || part.starts_with("close ") || part.starts_with("closing ") {
                    *m.entry(part.to_owned()).or_default() += v;
                }
            }
        }
        m
    }
}

/// When each class's last task finished, in seconds after the phase started.
pub(crate) type Finish = Arc<Mutex<BTreeMap<&'static str, f64>>>;

/// Runs `f`, then notes in `finish` when it ended (the latest of the class's tasks).
pub(crate) async fn timed<T>(
    class: &'static str,
    start: Instant,
    finish: Finish,
    f: impl std::future::Future<Output = T>,
) -> T {
    let r = f.await;
    let t = start.elapsed().as_secs_f64();
    if let Ok(mut m) = finish.lock() {
        let e = m.entry(class).or_insert(0.0);
        *e = e.max(t);
    }
    r
}

pub(crate) async fn run_phase(ctx: &Arc<Ctx>, setup: Setup, phase: usize) -> (Setup, PhaseResult) {
    let tally = Tally::default();
    let finish = Finish::default();
    let start = Instant::now();
    let (c, t, f) = (ctx, &tally, &finish);
    let mut valid_tasks = Vec::new();
    for (idx, a) in setup.valid.into_iter().enumerate() {
        let work = valid_client(c.clone(), t.clone(), start, idx, a);
        valid_tasks.push(tokio::spawn(timed("valid clients", start, f.clone(), work)));
    }
    let work = heavy_publisher(c.clone(), t.clone(), start, setup.heavy);
    let heavy = tokio::spawn(timed("heavy publisher", start, f.clone(), work));
    let mut hostile = vec![
        tokio::spawn(timed("request flood", start, f.clone(), request_flood(c.clone(), t.clone(), start))),
        tokio::spawn(timed("malformed", start, f.clone(), malformed(c.clone(), t.clone(), start))),
        tokio::spawn(timed("drop mid-request", start, f.clone(), drop_mid_request(c.clone(), t.clone(), start))),
        tokio::spawn(timed("pending-count classes", start, f.clone(), pending_classes(c.clone(), t.clone(), start))),
    ];
    for i in 0..ctx.args.slow_consumers {
        let work = slow_consumer(c.clone(), t.clone(), start, i);
        hostile.push(tokio::spawn(timed("slow consumers", start, f.clone(), work)));
    }
    let valid = join_valid_clients(valid_tasks, &tally).await;
    let heavy = match heavy.await {
        Ok(a) => a,
        Err(e) => {
            tally.add(format!("valid failure|heavy task panicked: {e}"), 1);
            Author::new(SecretKey::random())
        }
    };
    for task in hostile {
        if let Err(e) = task.await {
            tally.add(format!("tool|task panicked: {e}"), 1);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let class_secs = finish.lock().map(|m| m.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()).unwrap_or_default();
    let result = PhaseResult {
        phase,
        secs,
        settle_secs: 0.0,
        class_secs,
        disk_bytes: None,
        counts: tally.snapshot(),
        node: None,
    };
    (Setup { valid, heavy }, result)
}

/// What the verdict reads of one phase: its number, the node's figures after it and the valid
/// requests that did not get the spec's answer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PhaseFigures {
    pub(crate) phase: usize,
    pub(crate) node: Option<ProcSample>,
    pub(crate) valid_failures: u64,
}

impl PhaseResult {
    pub(crate) fn figures(&self) -> PhaseFigures {
        PhaseFigures { phase: self.phase, node: self.node, valid_failures: self.sum("valid failure|") }
    }
}
