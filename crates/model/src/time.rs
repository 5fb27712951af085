//! Wall-clock time in unix milliseconds. Expiry deadlines are absolute so they survive restarts.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the unix epoch. A clock before 1970 reads as 0.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
