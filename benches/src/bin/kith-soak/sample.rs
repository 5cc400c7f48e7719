//! Sampling the node's process: resident memory and open descriptors after a phase, at an
//! attack's peak, and the wait until its descriptors settle.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kith_bench::proc::{self, fd_count};
use serde::Serialize;

/// Resident memory (VmRSS, VmHWM, and RssAnon: the heap, as opposed to mapped files) in KiB
/// and the count of open fds of a process.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct ProcSample {
    pub(crate) rss_kib: u64,
    pub(crate) hwm_kib: u64,
    pub(crate) anon_kib: u64,
    pub(crate) fds: usize,
}

pub(crate) fn proc_sample(pid: u32) -> Option<ProcSample> {
    let memory = proc::memory(Some(pid))?;
    let fds = proc::fd_count(pid)?;
    Some(ProcSample { rss_kib: memory.rss_kib, hwm_kib: memory.hwm_kib, anon_kib: memory.anon_kib, fds })
}

pub(crate) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The node's figures at one instant, and the highest of each while `stop` is unset.
pub(crate) async fn peak_sampler(pid: u32, stop: Arc<std::sync::atomic::AtomicBool>) -> ProcSample {
    let mut peak = ProcSample::default();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if let Some(s) = proc_sample(pid) {
            peak.rss_kib = peak.rss_kib.max(s.rss_kib);
            peak.anon_kib = peak.anon_kib.max(s.anon_kib);
            peak.hwm_kib = peak.hwm_kib.max(s.hwm_kib);
            peak.fds = peak.fds.max(s.fds);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    peak
}

/// Waits until the node's fd count equals `target` (or, without a target, stops changing for
/// a second), at most `limit`; returns the time it took.
pub(crate) async fn settle(pid: u32, target: Option<usize>, limit: Duration) -> f64 {
    let t0 = Instant::now();
    let mut last = fd_count(pid);
    let mut stable_since = Instant::now();
    while t0.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = fd_count(pid);
        match target {
            Some(t) if now == Some(t) => break,
            None if now == last && stable_since.elapsed() >= Duration::from_secs(1) => break,
            _ => {}
        }
        if now != last {
            stable_since = Instant::now();
            last = now;
        }
    }
    t0.elapsed().as_secs_f64()
}
