//! How long a live camera waits before its next connection attempt: doubling from an initial
//! delay up to a cap, and back to the initial delay once a connection gave a frame.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max, next: initial }
    }

    /// The wait before the next attempt; the one after it is twice as long, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (delay * 2).min(self.max);
        delay
    }

    /// A connection worked (it gave a frame): the next failure waits the initial delay again.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn delays_double_up_to_the_cap() {
        let mut b = Backoff::new(100 * MS, 300 * MS);
        let got: Vec<Duration> = (0..5).map(|_| b.next_delay()).collect();
        assert_eq!(got, [100 * MS, 200 * MS, 300 * MS, 300 * MS, 300 * MS]);
    }

    #[test]
    fn a_good_connection_resets_the_delay() {
        let mut b = Backoff::new(100 * MS, 1000 * MS);
        for _ in 0..4 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), 1000 * MS);
        b.reset();
        assert_eq!(b.next_delay(), 100 * MS);
        assert_eq!(b.next_delay(), 200 * MS);
    }

    /// The waits, taken under tokio's paused clock, are the delays given: a reset puts the next
    /// reconnect back at the initial delay after the capped ones.
    #[tokio::test(start_paused = true)]
    async fn waits_follow_the_delays_under_paused_time() {
        let mut b = Backoff::new(100 * MS, 400 * MS);
        let mut waited = Vec::new();
        for attempt in 0..6 {
            if attempt == 4 {
                b.reset();
            }
            let t0 = tokio::time::Instant::now();
            tokio::time::sleep(b.next_delay()).await;
            waited.push(t0.elapsed());
        }
        assert_eq!(waited, [100 * MS, 200 * MS, 400 * MS, 400 * MS, 100 * MS, 200 * MS]);
    }
}
