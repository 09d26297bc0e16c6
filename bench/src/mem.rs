//! Resident memory of this process, from `/proc/self/status` (Linux).

/// Peak resident set size (VmHWM) in bytes, if the platform reports it.
pub fn peak_rss() -> Option<u64> {
    status_kib("VmHWM:").map(|k| k * 1024)
}

/// Current resident set size (VmRSS) in bytes.
pub fn rss() -> Option<u64> {
    status_kib("VmRSS:").map(|k| k * 1024)
}

/// Resident anonymous memory (heap) and resident file pages (the mapped index),
/// in bytes: the two parts of [`rss`].
pub fn rss_parts() -> Option<(u64, u64)> {
    Some((status_kib("RssAnon:")? * 1024, status_kib("RssFile:")? * 1024))
}

/// The 1-minute load average, to tell a quiet machine from a busy one.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// A field of `/proc/<pid>/io` (`pid` "self": this process), such as
/// `write_bytes`: bytes the process caused to be written to disk.
pub fn io_field(pid: &str, field: &str) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?.trim().parse().ok()
}

/// Processor time a process (`pid` "self": this one) has taken, user and
/// system, in clock ticks ([`ticks_per_second`]).
pub fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses: utime and
    // stime are the 12th and 13th of them.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The clock ticks of [`cpu_ticks`] in a second.
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf with a constant name has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64
}

/// Resets the peak (VmHWM) to the current RSS, so that the next [`peak_rss`]
/// measures one phase only. Returns whether the kernel allowed it.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// `123.4 MB`, or `n/a`.
pub fn fmt_mb(bytes: Option<u64>) -> String {
    match bytes {
        Some(b) => format!("{:.0} MB", b as f64 / 1e6),
        None => "n/a".into(),
    }
}

/// Total length of the files under `path` (`smpl_node::budget::disk_taken`
/// gives the blocks they take, what `du` says).
pub fn disk_usage(path: &std::path::Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        std::fs::read_dir(path)
            .map(|entries| entries.filter_map(Result::ok).map(|e| disk_usage(&e.path())).sum())
            .unwrap_or(0)
    } else {
        meta.len()
    }
}
