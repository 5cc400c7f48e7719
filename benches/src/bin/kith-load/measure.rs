//! Measurement: latency percentiles, the CPU time and memory of the node and of this generator
//! over a phase, and the send times that delivery latency is measured from.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kith_bench::proc;
use serde::Serialize;

use crate::feeds::Feed;

/// Percentiles of a latency sample, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Latency {
    pub(crate) count: usize,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

impl Latency {
    pub(crate) fn of(mut micros: Vec<u32>) -> Latency {
        if micros.is_empty() {
            return Latency::default();
        }
        micros.sort_unstable();
        let at = |q: f64| {
            let i = ((micros.len() as f64) * q) as usize;
            f64::from(micros[i.min(micros.len() - 1)]) / 1000.0
        };
        Latency { count: micros.len(), p50_ms: at(0.50), p99_ms: at(0.99), max_ms: at(1.0) }
    }
}

pub(crate) fn micros_since(t: Instant) -> u32 {
    t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32
}

/// CPU seconds (user + system) and memory of a process, from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProcSample {
    pub(crate) cpu_s: f64,
    pub(crate) rss_kib: u64,
    pub(crate) hwm_kib: u64,
}

pub(crate) fn proc_sample(pid: Option<u32>, ticks: f64) -> Option<ProcSample> {
    let cpu_s = proc::cpu_seconds(pid, ticks)?;
    let memory = proc::memory(pid)?;
    Some(ProcSample { cpu_s, rss_kib: memory.rss_kib, hwm_kib: memory.hwm_kib })
}

/// CPU seconds of the node and of this generator over a phase.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuMeter {
    pub(crate) node_pid: Option<u32>,
    pub(crate) ticks: f64,
    pub(crate) node0: Option<ProcSample>,
    pub(crate) gen0: Option<ProcSample>,
    pub(crate) t0: Instant,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct CpuUse {
    pub(crate) wall_s: f64,
    pub(crate) node_cpu_s: Option<f64>,
    pub(crate) generator_cpu_s: Option<f64>,
    pub(crate) node_rss_mib: Option<f64>,
    pub(crate) node_peak_rss_mib: Option<f64>,
}

impl CpuMeter {
    pub(crate) fn start(node_pid: Option<u32>, ticks: f64) -> Self {
        CpuMeter {
            node_pid,
            ticks,
            node0: node_pid.and_then(|p| proc_sample(Some(p), ticks)),
            gen0: proc_sample(None, ticks),
            t0: Instant::now(),
        }
    }

    pub(crate) fn stop(&self) -> CpuUse {
        let wall_s = self.t0.elapsed().as_secs_f64();
        let node1 = self.node_pid.and_then(|p| proc_sample(Some(p), self.ticks));
        let gen1 = proc_sample(None, self.ticks);
        CpuUse {
            wall_s,
            node_cpu_s: self.node0.zip(node1).map(|(a, b)| b.cpu_s - a.cpu_s),
            generator_cpu_s: self.gen0.zip(gen1).map(|(a, b)| b.cpu_s - a.cpu_s),
            node_rss_mib: node1.map(|s| s.rss_kib as f64 / 1024.0),
            node_peak_rss_mib: node1.map(|s| s.hwm_kib as f64 / 1024.0),
        }
    }
}

/// When each entry was sent, by author and seq, for delivery latency.
pub(crate) struct Stamps {
    pub(crate) epoch: Instant,
    /// By the author key's hex form, as events carry it (decoding a key would cost a curve
    /// point decompression per event).
    pub(crate) authors: BTreeMap<String, usize>,
    pub(crate) sent_ns: Vec<Vec<AtomicU64>>,
    /// Events received by every subscriber together.
    pub(crate) delivered: AtomicU64,
}

impl Stamps {
    pub(crate) fn new(feeds: &[Feed]) -> Self {
        Stamps {
            epoch: Instant::now(),
            authors: feeds.iter().enumerate().map(|(i, f)| (f.author.public().to_string(), i)).collect(),
            sent_ns: feeds.iter().map(|f| (0..=f.frames.len()).map(|_| AtomicU64::new(0)).collect()).collect(),
            delivered: AtomicU64::new(0),
        }
    }

    /// Waits until `expected` events have arrived in all, or `patience` has passed.
    pub(crate) async fn await_delivered(&self, expected: u64, patience: Duration) {
        let deadline = Instant::now() + patience;
        while self.delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn mark(&self, author: usize, seq: usize, at: Instant) {
        if let Some(slot) = self.sent_ns.get(author).and_then(|v| v.get(seq)) {
            slot.store(at.duration_since(self.epoch).as_nanos() as u64 + 1, Ordering::Relaxed);
        }
    }

    /// Microseconds since `(author, seq)` was sent.
    pub(crate) fn since_sent(&self, author_hex: &str, seq: usize, now: Instant) -> Option<u32> {
        let sent = self.sent_ns.get(*self.authors.get(author_hex)?)?.get(seq)?.load(Ordering::Relaxed);
        if sent == 0 {
            return None;
        }
        let now_ns = now.duration_since(self.epoch).as_nanos() as u64;
        Some((now_ns.saturating_sub(sent - 1) / 1000).min(u64::from(u32::MAX)) as u32)
    }
}
