//! What the measuring tools (`kith-load`, `kith-soak`) print about the machine they ran on, so
//! that every figure they report carries its conditions.

/// The CPU model, the number of cores this process may use and the installed memory, e.g.
/// `AMD EPYC, 2 cores, 24 GiB RAM` (from `/proc`; "unknown" parts where it is missing).
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<u64>().ok()))
        .map_or_else(|| "?".into(), |k| format!("{:.0} GiB", k as f64 / 1_048_576.0));
    format!("{model}, {cores} cores, {mem} RAM")
}

/// The current time in UTC as `YYYY-MM-DDTHH:MM:SSZ` (from `date -u`; empty if it fails).
pub fn date_utc() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The value in KiB of one field of a `/proc/PID/status` text, e.g. `status_kib(text, "VmRSS:")`;
/// 0 when the field is missing.
pub fn status_kib(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
}
