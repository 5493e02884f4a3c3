//! What both benchmarks share.

/// A process's resident memory and its peak (VmRSS, VmHWM from /proc), in MiB; `None` when it
/// has gone.
pub(crate) fn memory_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Some((kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0))
}
