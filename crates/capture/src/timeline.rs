//! One camera's timeline: the time every frame carries, on which the sets stage counts reps.
//!
//! A frame's time is the stream's own clock where that clock is real and monotonic (files, most
//! RTSP), otherwise the capture's wall clock; never a constant, never going backwards inside one
//! *segment*. A segment is one run of a camera in one capture process — a play of a file, a live
//! camera for as long as capture runs — named by the wall-clock time it began: a capture restart
//! starts a new one, and the sets stage closes (never merges) what was open across it. A live
//! camera's reconnection stays in its segment: the new connection's clock starts anywhere, so the
//! timeline steps over the outage by the wall clock and goes on (a set in progress carries over,
//! its gap on record).
//!
//! Live sources start their timeline at 0 and advance it by the media clock's steps while those
//! agree with the wall clock; the first step that does not (an MJPEG-over-HTTP camera whose
//! clock stays at 0, a clock that jumps back or runs away) hands the rest of the segment to the
//! wall clock. Files keep their own clock (paced replay runs faster or slower than the wall),
//! with one frame period for a step the container gets wrong (OpenCV reports 0 for some last
//! frames).

/// Where a segment's times come from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The stream's own timestamps.
    Media,
    /// The capture's wall clock: the stream's were missing or not monotonic.
    Wall,
}

/// A media step this much longer than the wall-clock step is a jump, not time passing.
const MAX_MEDIA_LEAD_NS: i64 = 2_000_000_000;

/// The timeline of one segment.
#[derive(Debug, Clone)]
pub struct Timeline {
    file: bool,
    /// One frame period (ns) for a file step the container got wrong.
    period_ns: i64,
    clock: Clock,
    /// (media ns, wall ns, timeline ns) of the last frame.
    last: Option<(Option<i64>, i64, i64)>,
    /// A new connection began: its clock has no relation to the last one's.
    reconnected: bool,
}

impl Timeline {
    /// A file's timeline, at its container's frame rate (0 when unknown).
    pub fn file(fps: f64) -> Self {
        let period_ns = if fps.is_finite() && fps > 0.0 { (1e9 / fps) as i64 } else { 1_000_000_000 / 30 };
        Self { file: true, period_ns, clock: Clock::Media, last: None, reconnected: false }
    }

    /// A live camera's timeline.
    pub fn live() -> Self {
        Self { file: false, period_ns: 0, clock: Clock::Media, last: None, reconnected: false }
    }

    /// A live camera connected again: its next frame follows the last one by the wall clock,
    /// and the new connection's own clock gets a fresh chance.
    pub fn reconnected(&mut self) {
        self.reconnected = self.last.is_some();
    }

    /// Which clock the segment follows now.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The time (ns from the segment's start, strictly increasing) of a frame whose media
    /// timestamp is `media_ns` (`None` when the source gave none) and which was decoded at wall
    /// time `wall_ns`.
    pub fn next(&mut self, media_ns: Option<i64>, wall_ns: i64) -> i64 {
        let media_ns = media_ns.filter(|m| *m >= 0);
        let Some((last_media, last_wall, last_out)) = self.last else {
            // Files are on their own clock from the start; a live segment starts at 0.
            let out = if self.file { media_ns.unwrap_or(0) } else { 0 };
            if !self.file && media_ns.is_none() {
                self.clock = Clock::Wall;
            }
            self.last = Some((media_ns, wall_ns, out));
            return out;
        };
        let media_step = match (media_ns, last_media) {
            (Some(m), Some(l)) if m > l => Some(m - l),
            _ => None,
        };
        let wall_step = wall_ns - last_wall;
        let step = if self.file {
            media_step.unwrap_or(self.period_ns)
        } else if std::mem::take(&mut self.reconnected) {
            self.clock = Clock::Media;
            wall_step
        } else {
            if self.clock == Clock::Media && media_step.is_none_or(|s| s > wall_step.max(0) + MAX_MEDIA_LEAD_NS) {
                self.clock = Clock::Wall;
            }
            match self.clock {
                Clock::Media => media_step.unwrap_or(wall_step),
                Clock::Wall => wall_step,
            }
        };
        let out = last_out + step.max(1);
        self.last = Some((media_ns, wall_ns, out));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    #[test]
    fn a_file_keeps_its_own_clock_even_when_paced_faster_than_the_wall() {
        let mut t = Timeline::file(15.0);
        let times: Vec<i64> = (0..5).map(|i| t.next(Some(i * 66 * MS), 1_000 * MS + i * MS)).collect();
        assert_eq!(times, vec![0, 66 * MS, 132 * MS, 198 * MS, 264 * MS]);
        assert_eq!(t.clock(), Clock::Media);
    }

    #[test]
    fn a_file_step_reported_as_zero_is_one_frame_period() {
        let mut t = Timeline::file(10.0);
        assert_eq!(t.next(Some(0), 0), 0);
        assert_eq!(t.next(Some(100 * MS), 0), 100 * MS);
        // OpenCV's last frame of some files: position 0.
        assert_eq!(t.next(Some(0), 0), 200 * MS);
        assert_eq!(t.next(None, 0), 300 * MS);
    }

    #[test]
    fn a_live_camera_whose_clock_stays_at_zero_runs_on_the_wall_clock() {
        let mut t = Timeline::live();
        let wall0 = 1_700_000_000_000 * MS;
        let times: Vec<i64> = (0..4).map(|i| t.next(Some(0), wall0 + i * 66 * MS)).collect();
        assert_eq!(times, vec![0, 66 * MS, 132 * MS, 198 * MS]);
        assert_eq!(t.clock(), Clock::Wall);
    }

    #[test]
    fn a_live_camera_with_a_real_clock_keeps_it_through_bursts() {
        let mut t = Timeline::live();
        // RTSP: media time from an arbitrary origin, frames read in bursts.
        let media = [5_000, 5_066, 5_133, 5_200, 5_266];
        let wall = [0, 10, 20, 200, 210];
        let times: Vec<i64> = media.iter().zip(wall).map(|(m, w)| t.next(Some(m * MS), w * MS)).collect();
        assert_eq!(times, vec![0, 66 * MS, 133 * MS, 200 * MS, 266 * MS]);
        assert_eq!(t.clock(), Clock::Media);
    }

    #[test]
    fn a_live_clock_that_jumps_hands_over_to_the_wall_clock_without_going_back() {
        let mut t = Timeline::live();
        assert_eq!(t.next(Some(1_000 * MS), 0), 0);
        assert_eq!(t.next(Some(1_066 * MS), 66 * MS), 66 * MS);
        // Backwards: the wall clock takes over from where the timeline was.
        assert_eq!(t.next(Some(10 * MS), 132 * MS), 132 * MS);
        assert_eq!(t.clock(), Clock::Wall);
        // Even a media clock that behaves again is not trusted in this segment.
        assert_eq!(t.next(Some(76 * MS), 200 * MS), 200 * MS);
        // A forward jump of an hour is not an hour of exercise either.
        let mut t = Timeline::live();
        t.next(Some(0), 0);
        t.next(Some(66 * MS), 66 * MS);
        assert_eq!(t.next(Some(3_600_000 * MS), 132 * MS), 132 * MS);
    }

    #[test]
    fn a_reconnection_steps_over_the_outage_by_the_wall_clock_and_trusts_the_new_clock_again() {
        let mut t = Timeline::live();
        assert_eq!(t.next(Some(0), 0), 0);
        assert_eq!(t.next(Some(0), 66 * MS), 66 * MS);
        assert_eq!(t.clock(), Clock::Wall, "an MJPEG camera without a clock");
        // Gone for 3 s; the new connection's clock starts at 7 000 ms and is real.
        t.reconnected();
        assert_eq!(t.next(Some(7_000 * MS), 3_066 * MS), 3_066 * MS);
        assert_eq!(t.next(Some(7_066 * MS), 3_140 * MS), 3_132 * MS);
        assert_eq!(t.clock(), Clock::Media);
    }

    #[test]
    fn time_never_stands_still_or_goes_back() {
        let mut t = Timeline::live();
        let a = t.next(None, 100);
        let b = t.next(None, 100);
        let c = t.next(None, 50);
        assert!(a < b && b < c);
    }
}
