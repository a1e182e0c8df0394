//! Wall-clock time in nanoseconds since the Unix epoch: comparable across processes and hosts
//! (as far as their clocks agree), which frame ages need.

use std::time::{SystemTime, UNIX_EPOCH};

/// Returns now, in ns since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}
