//! The gym's wall display, as pump-cv drives it through PUMP: awake while someone is there
//! (`POST /api/wall/wake` once a person has been in view of any camera for `wake_after`), asleep
//! once nobody has been for `sleep_after` (`POST /api/wall/sleep`). Pure: the hook feeds it what
//! the cameras see and the time, and sends what it says.

use std::time::Duration;

/// What the display should be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Wake,
    Sleep,
}

impl Command {
    /// PUMP's endpoint for it.
    pub fn path(self) -> &'static str {
        match self {
            Command::Wake => "api/wall/wake",
            Command::Sleep => "api/wall/sleep",
        }
    }
}

/// Presence over time → wake and sleep, each said once per change.
#[derive(Debug, Clone)]
pub struct Wall {
    wake_after: Duration,
    sleep_after: Duration,
    /// Since when someone has been in view without a gap longer than `GAP`.
    present_since: Option<Duration>,
    /// When someone was last in view.
    last_seen: Option<Duration>,
    /// What the display was last told (`None`: nothing yet; it is asleep or awake as it was).
    told: Option<Command>,
    /// When the wall started watching: nobody seen for `sleep_after` since then is asleep.
    started: Duration,
}

/// A person missing from the poses this long breaks their presence (poses of a live camera come
/// several times a second; a missed detection or two is no one leaving).
const GAP: Duration = Duration::from_millis(1500);

impl Wall {
    /// `now` is any monotonic clock's time, the same for every call.
    pub fn new(wake_after: Duration, sleep_after: Duration, now: Duration) -> Self {
        Self { wake_after, sleep_after, present_since: None, last_seen: None, told: None, started: now }
    }

    /// A camera's poses at `now`: whether anyone was in them.
    pub fn poses(&mut self, now: Duration, anyone: bool) -> Option<Command> {
        if anyone {
            let continuing = self.last_seen.is_some_and(|l| now.saturating_sub(l) <= GAP);
            if !continuing {
                self.present_since = Some(now);
            }
            self.last_seen = Some(now);
        }
        self.tick(now)
    }

    /// The time passing with or without poses (cameras off say nothing): what to tell now.
    pub fn tick(&mut self, now: Duration) -> Option<Command> {
        let present_for = match (self.present_since, self.last_seen) {
            (Some(since), Some(last)) if now.saturating_sub(last) <= GAP => Some(last.saturating_sub(since)),
            _ => None,
        };
        let nobody_for = now.saturating_sub(self.last_seen.unwrap_or(self.started));
        let want = if present_for.is_some_and(|p| p >= self.wake_after) {
            Some(Command::Wake)
        } else if present_for.is_none() && nobody_for >= self.sleep_after {
            Some(Command::Sleep)
        } else {
            None
        };
        match want {
            Some(c) if self.told != Some(c) => {
                self.told = Some(c);
                Some(c)
            }
            _ => None,
        }
    }

    /// The last command could not be sent: it is said again at the next look.
    pub fn unsent(&mut self) {
        self.told = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: f64) -> Duration {
        Duration::from_secs_f64(x)
    }

    fn wall() -> Wall {
        Wall::new(s(1.0), s(600.0), s(0.0))
    }

    #[test]
    fn someone_in_view_a_second_wakes_it_once() {
        let mut w = wall();
        assert_eq!(w.poses(s(10.0), true), None);
        assert_eq!(w.poses(s(10.5), true), None);
        assert_eq!(w.poses(s(11.0), true), Some(Command::Wake));
        assert_eq!(w.poses(s(11.2), true), None, "said once");
        assert_eq!(w.tick(s(12.0)), None);
    }

    #[test]
    fn a_passer_by_or_a_flicker_wakes_nothing() {
        let mut w = wall();
        // Seen for 0.6 s, then gone for longer than a missed detection, then seen again briefly.
        for t in [5.0, 5.3, 5.6] {
            assert_eq!(w.poses(s(t), true), None);
        }
        assert_eq!(w.poses(s(8.0), true), None, "a new presence, not 3 s of one");
        assert_eq!(w.poses(s(8.5), true), None);
        // A detection missed for a moment does not break a presence.
        assert_eq!(w.poses(s(9.2), true), Some(Command::Wake));
    }

    #[test]
    fn nobody_for_ten_minutes_puts_it_to_sleep_once_and_someone_wakes_it_again() {
        let mut w = wall();
        for t in [0.0, 0.5, 1.0] {
            w.poses(s(t), true);
        }
        // Poses without anyone, and no poses at all (cameras off), count the same.
        assert_eq!(w.poses(s(300.0), false), None);
        assert_eq!(w.tick(s(600.5)), None, "600 s since the last person at 1 s: not yet");
        assert_eq!(w.tick(s(601.0)), Some(Command::Sleep));
        assert_eq!(w.tick(s(700.0)), None, "said once");
        w.poses(s(800.0), true);
        assert_eq!(w.poses(s(801.0), true), Some(Command::Wake));
    }

    #[test]
    fn started_with_nobody_it_sleeps_after_the_wait_and_a_failed_send_is_said_again() {
        let mut w = wall();
        assert_eq!(w.tick(s(599.0)), None);
        assert_eq!(w.tick(s(600.0)), Some(Command::Sleep));
        w.unsent();
        assert_eq!(w.tick(s(601.0)), Some(Command::Sleep));
        assert_eq!(Command::Wake.path(), "api/wall/wake");
    }
}
