//! One warning per key per period, with the count of those held back: a camera sending bad
//! frames at 30 fps says so every few seconds, not 30 times a second.

use std::time::{Duration, Instant};

use tracing::warn;

/// Keys remembered at most: past them, the ones silent a period are forgotten, and while still
/// full every new camera shares one key.
const MAX_KEYS: usize = 1024;
const MANY: &str = "(many cameras)";

/// At most one warning per key per period, with the count of the ones held back.
#[derive(Debug)]
pub struct RateLimitedLog {
    period: Duration,
    /// When each (camera, kind) last logged, and how many were held back since.
    last: std::collections::HashMap<(String, &'static str), (Instant, u64)>,
}

impl RateLimitedLog {
    pub fn new(period: Duration) -> Self {
        Self { period, last: Default::default() }
    }

    /// Logs `what` happened to `camera`, with its `reason` (made only when logged) as a field,
    /// unless this camera logged the same within the period; then counts it as held back.
    pub fn warn(&mut self, camera: &str, what: &'static str, reason: impl FnOnce() -> String) {
        let now = Instant::now();
        let mut key = (camera.to_string(), what);
        if !self.last.contains_key(&key) && self.last.len() >= MAX_KEYS {
            let period = self.period;
            self.last.retain(|_, (at, _)| now.duration_since(*at) < period);
            if self.last.len() >= MAX_KEYS {
                // A flood of camera names: held back together, not a key (and a line) each.
                key = (MANY.to_string(), what);
            }
        }
        match self.last.get_mut(&key) {
            Some((at, held)) if now.duration_since(*at) < self.period => *held += 1,
            Some((at, held)) => {
                warn!(camera_id = %camera, suppressed = *held, reason = %reason(), "{what}");
                *at = now;
                *held = 0;
            }
            None => {
                warn!(camera_id = %camera, reason = %reason(), "{what}");
                self.last.insert(key, (now, 0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_camera_names_is_remembered_within_a_bound() {
        let mut log = RateLimitedLog::new(Duration::from_secs(60));
        for i in 0..10_000 {
            log.warn(&format!("cam{i}"), "bad frame", String::new);
        }
        assert!(log.last.len() <= MAX_KEYS + 1, "{}", log.last.len());
        let many = log.last.get(&(MANY.to_string(), "bad frame")).map(|(_, held)| *held);
        assert_eq!(many, Some(10_000 - MAX_KEYS as u64 - 1), "held back together");
    }

    #[test]
    fn one_warning_per_camera_and_kind_per_period() {
        let mut log = RateLimitedLog::new(Duration::from_secs(60));
        let reason = || "bad".to_string();
        log.warn("a", "frame refused", reason);
        log.warn("a", "frame refused", reason);
        log.warn("a", "inference failed", reason);
        log.warn("b", "frame refused", reason);
        let held = |camera: &str, what| log.last[&(camera.to_string(), what)].1;
        assert_eq!((held("a", "frame refused"), held("a", "inference failed"), held("b", "frame refused")), (1, 0, 0));
    }
}
