//! Resident size for the memory examples.

/// Resident set size in bytes, from /proc/self/statm.
pub fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm field");
    pages * 4096
}
