//! One warning per key per period, with the count of those held back: a camera sending bad
//! frames at 30 fps says so every few seconds, not 30 times a second.

use std::time::{Duration, Instant};

use tracing::warn;

/// At most one warning per key per period, with the count of the ones held back.
#[derive(Debug)]
pub struct RateLimitedLog {
    period: Duration,
    last: std::collections::HashMap<String, (Instant, u64)>,
}

impl RateLimitedLog {
    pub fn new(period: Duration) -> Self {
        Self { period, last: Default::default() }
    }

    /// Logs `message` (made only when it is logged) unless `key` logged one within the period.
    pub fn warn(&mut self, key: &str, message: impl FnOnce() -> String) {
        let now = Instant::now();
        match self.last.get_mut(key) {
            Some((at, held)) if now.duration_since(*at) < self.period => *held += 1,
            Some((at, held)) => {
                warn!(suppressed = *held, "{}", message());
                *at = now;
                *held = 0;
            }
            None => {
                warn!("{}", message());
                self.last.insert(key.to_string(), (now, 0));
            }
        }
    }
}
