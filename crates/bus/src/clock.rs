//! Wall-clock time in nanoseconds since the Unix epoch: comparable across processes and hosts
//! (as far as their clocks agree), which frame ages need.

use std::time::{SystemTime, UNIX_EPOCH};

/// Returns now, in ns since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// How long a lag floor remembers its smallest lag: long enough to span a burst of late frames
/// (a reconnection's backlog), short enough to follow a clock that is corrected.
const FLOOR_BUCKET_NS: i64 = 15_000_000_000;

/// The smallest lag (receiver's clock minus the publisher's timestamp) seen over the last
/// 15–30 s. Two hosts' clocks need not agree: the freshest frames' lag is their offset plus the
/// transit time, so a frame's age measured above this floor is right whatever the skew, where
/// `now - capture_ts` would call every frame of a host 0.5 s behind too old (or, ahead, none).
#[derive(Debug, Clone, Copy, Default)]
pub struct LagFloor {
    bucket_start_ns: i64,
    current: Option<i64>,
    previous: Option<i64>,
    samples: u64,
}

impl LagFloor {
    /// Records a message published at `ts_ns` and received at `now_ns`.
    pub fn observe(&mut self, now_ns: i64, ts_ns: i64) {
        let lag = now_ns.saturating_sub(ts_ns);
        if now_ns.saturating_sub(self.bucket_start_ns) >= FLOOR_BUCKET_NS {
            self.previous = self.current;
            self.current = None;
            self.bucket_start_ns = now_ns;
        }
        self.current = Some(self.current.map_or(lag, |c| c.min(lag)));
        self.samples += 1;
    }

    /// The floor: the smallest recent lag, once anything was seen.
    pub fn floor_ns(&self) -> Option<i64> {
        match (self.current, self.previous) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Messages seen since the start.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// How far past the floor a message published at `ts_ns` is at `now_ns` (its raw lag before
    /// anything was seen).
    pub fn age_ns(&self, now_ns: i64, ts_ns: i64) -> i64 {
        now_ns.saturating_sub(ts_ns).saturating_sub(self.floor_ns().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn a_skewed_publisher_ages_from_its_freshest_lag() {
        // The publisher's clock is 5 s behind: raw lags are 5 s and more.
        let mut f = LagFloor::default();
        for i in 0..30 {
            let now = 100 * S + i * S / 15;
            f.observe(now, now - 5 * S - 2_000_000);
        }
        let now = 103 * S;
        assert_eq!(f.age_ns(now, now - 5 * S - 2_000_000), 0);
        // A frame that sat a second in a queue is a second old, not six.
        assert_eq!(f.age_ns(now, now - 6 * S - 2_000_000), S);
        // Ahead by 3 s: negative raw lags, ages still from the floor.
        let mut g = LagFloor::default();
        g.observe(now, now + 3 * S);
        assert_eq!(g.age_ns(now + S / 2, now + 3 * S - S / 2), S);
    }

    #[test]
    fn a_late_burst_does_not_raise_the_floor_and_old_lags_are_forgotten() {
        let mut f = LagFloor::default();
        f.observe(10 * S, 10 * S);
        f.observe(11 * S, 8 * S); // a backlog 3 s late
        assert_eq!(f.floor_ns(), Some(0));
        // 30 s on, only the late lags remain: the floor follows (a clock stepped by 3 s).
        f.observe(26 * S, 23 * S);
        f.observe(42 * S, 39 * S);
        assert_eq!(f.floor_ns(), Some(3 * S));
        assert_eq!(f.samples(), 4);
    }
}
