//! A process's figures from /proc (Linux), and the size of a directory on disk. Each reader
//! returns `None` when the process (or /proc) is not there, and the tools then print `n/a`.

use std::path::Path;

use kith_conformance::host::status_kib;

/// Clock ticks per second (`getconf CLK_TCK`), the unit of the CPU times in `/proc/PID/stat`.
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// `/proc/PID` of `pid`, or `/proc/self` for this process.
fn dir(pid: Option<u32>) -> String {
    match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".to_owned(),
    }
}

/// CPU seconds (user + system) a process has used, with `ticks` from [`clock_ticks`].
pub fn cpu_seconds(pid: Option<u32>, ticks: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("{}/stat", dir(pid))).ok()?;
    // The command name may contain spaces; fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks)
}

/// Resident memory of a process, in KiB, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the highest resident so far.
    pub hwm_kib: u64,
    /// `RssAnon`: the resident heap, as opposed to mapped files.
    pub anon_kib: u64,
}

/// The resident memory of a process (this one with `None`).
pub fn memory(pid: Option<u32>) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("{}/status", dir(pid))).ok()?;
    let kib = |name: &str| status_kib(&status, name);
    Some(Memory { rss_kib: kib("VmRSS:"), hwm_kib: kib("VmHWM:"), anon_kib: kib("RssAnon:") })
}

/// How many file descriptors a process has open.
pub fn fd_count(pid: u32) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd")).ok().map(|d| d.count())
}

/// Bytes the files under `dir` take (a store's size on disk); 0 for what cannot be read.
pub fn disk_bytes(dir: &Path) -> u64 {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {
            std::fs::read_dir(dir).map(|d| d.flatten().map(|e| disk_bytes(&e.path())).sum()).unwrap_or(0)
        }
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}
