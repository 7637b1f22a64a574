//! A process's peak resident memory, as Lambda's `Max Memory Used` reports
//! it, read from `/proc/<pid>/status` (`VmHWM`).

/// The peak resident set size of a live process in KiB, or `None` once it
/// is gone (or off Linux).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_peak() {
        let kib = peak_rss_kib(std::process::id());
        assert!(kib.is_some_and(|k| k > 0), "{kib:?}");
        assert_eq!(peak_rss_kib(u32::MAX), None);
    }
}
