//! Counting reps on one joint angle.
//!
//! A rep is an extended → flexed → extended cycle of the driving angle, as in the original:
//! a moving average over `smoothing` seconds smooths pose jitter, then a swing must go at least
//! `min_amplitude` (25°) down from the last peak and back up from the bottom to count, and two
//! rep bottoms closer than `min_period` (0.6 s) are one rep. The hysteresis makes wobbles under
//! the amplitude invisible, and reps of any depth above it count. Missing angles are skipped.
//!
//! Every window is in seconds, never in samples: newest-wins inference delivers anything from
//! 60 poses a second to 3, in bursts and pauses, and a window of samples would smooth over 0.15 s
//! at one rate and 3 s (a whole rep) at the other. The original's 9 samples at 15 fps are 0.6 s.

use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RepConfig {
    /// Moving-average window, in seconds.
    pub smoothing: f64,
    /// Degrees a swing must cover down and back up.
    pub min_amplitude: f32,
    /// Seconds between two rep bottoms.
    pub min_period: f64,
}

impl Default for RepConfig {
    fn default() -> Self {
        Self { smoothing: 0.3, min_amplitude: 25.0, min_period: 0.6 }
    }
}

/// One counted rep, times in the stream's seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rep {
    /// The peak before the descent.
    pub start: f64,
    /// The deepest point.
    pub bottom: f64,
    /// The peak after the ascent (updated while the athlete keeps extending).
    pub end: f64,
    /// The smallest (most flexed) smoothed angle.
    pub depth: f32,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Extended: tracking the highest angle since the last rep.
    Up { hi: f32, hi_t: f64 },
    /// Going down or at the bottom.
    Down { lo: f32, lo_t: f64, start_t: f64 },
}

#[derive(Debug, Clone)]
pub struct RepCounter {
    cfg: RepConfig,
    window: VecDeque<(f64, f32)>,
    phase: Option<Phase>,
    reps: Vec<Rep>,
    /// Smoothed angle at the last rep's current end.
    end_angle: f32,
}

/// Degrees a smoothed angle must rise to move a rep's end (jitter on a plateau does not).
const END_TOLERANCE: f32 = 1.0;

impl RepCounter {
    pub fn new(cfg: RepConfig) -> Self {
        Self { cfg, window: VecDeque::new(), phase: None, reps: Vec::new(), end_angle: 0.0 }
    }

    pub fn reps(&self) -> &[Rep] {
        &self.reps
    }

    pub fn count(&self) -> usize {
        self.reps.len()
    }

    /// Feeds the angle at time `t` (`None` when the joint was not seen); returns a rep when one
    /// completes at this sample. Times must not go backwards (a sample older than the last one is
    /// ignored): a new timeline gets a new counter.
    pub fn push(&mut self, t: f64, angle: Option<f32>) -> Option<Rep> {
        let angle = angle.filter(|a| a.is_finite())?;
        if !t.is_finite() || self.window.back().is_some_and(|(last, _)| t < *last) {
            return None;
        }
        self.window.push_back((t, angle));
        // The samples of the last `smoothing` seconds (at least this one): a gap empties the
        // window by itself, so nothing is averaged across it.
        while self.window.front().is_some_and(|(first, _)| t - first >= self.cfg.smoothing) && self.window.len() > 1 {
            self.window.pop_front();
        }
        let (st, smoothed) = self.mean();
        self.step(st, smoothed)
    }

    /// The window's average angle, and the time it describes: the middle of the window.
    fn mean(&self) -> (f64, f32) {
        let n = self.window.len().max(1) as f64;
        let angle = self.window.iter().map(|(_, a)| f64::from(*a)).sum::<f64>() / n;
        (self.window.iter().map(|(t, _)| t).sum::<f64>() / n, angle as f32)
    }

    /// Ends the signal. The average lags the motion by half its window, so the last samples are
    /// averaged over the shrinking tail of the window, as a centred average does at the end of its
    /// data: a rep finished in the last fraction of a second still counts. Returns the reps that
    /// completed.
    pub fn finish(&mut self) -> Vec<Rep> {
        let mut out = Vec::new();
        while self.window.len() > 1 {
            self.window.pop_front();
            let (st, smoothed) = self.mean();
            out.extend(self.step(st, smoothed));
        }
        out
    }

    fn step(&mut self, t: f64, s: f32) -> Option<Rep> {
        let amp = self.cfg.min_amplitude;
        match self.phase {
            None => {
                self.phase = Some(Phase::Up { hi: s, hi_t: t });
                None
            }
            Some(Phase::Up { hi, hi_t }) => {
                let hi = hi.max(s);
                // Still near the top: the descent (the next rep's start) has not begun.
                let hi_t = if s >= hi - END_TOLERANCE { t } else { hi_t };
                // Rising by more than plateau jitter moves the last rep's end; standing still
                // at the top does not.
                if s > self.end_angle + END_TOLERANCE {
                    if let Some(last) = self.reps.last_mut() {
                        last.end = last.end.max(t);
                    }
                    self.end_angle = s;
                }
                self.phase = Some(if s <= hi - amp {
                    Phase::Down { lo: s, lo_t: t, start_t: hi_t }
                } else {
                    Phase::Up { hi, hi_t }
                });
                None
            }
            Some(Phase::Down { lo, lo_t, start_t }) => {
                if s < lo {
                    self.phase = Some(Phase::Down { lo: s, lo_t: t, start_t });
                    None
                } else if s >= lo + amp {
                    self.phase = Some(Phase::Up { hi: s, hi_t: t });
                    self.end_angle = s;
                    let too_soon = self.reps.last().is_some_and(|r| lo_t - r.bottom < self.cfg.min_period);
                    if too_soon {
                        // A double dip inside the refractory period is the same rep.
                        if let Some(last) = self.reps.last_mut() {
                            if lo < last.depth {
                                last.depth = lo;
                                last.bottom = lo_t;
                            }
                            last.end = t;
                        }
                        return None;
                    }
                    let rep = Rep { start: start_t, bottom: lo_t, end: t, depth: lo };
                    self.reps.push(rep);
                    Some(rep)
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A knee angle signal: `reps` cosine cycles from 175° down to `depth`, `period` s each,
    /// after `lead` s standing, at `fps`.
    fn squats(reps: usize, depth: f32, period: f64, lead: f64, fps: f64) -> Vec<(f64, f32)> {
        let total = lead * 2.0 + reps as f64 * period;
        let n = (total * fps) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / fps;
                let x = t - lead;
                let a = if x < 0.0 || x > reps as f64 * period {
                    175.0
                } else {
                    let phase = (x / period).fract() * std::f64::consts::TAU;
                    175.0 - (175.0 - depth) * (0.5 - 0.5 * phase.cos()) as f32
                };
                (t, a)
            })
            .collect()
    }

    fn count(signal: &[(f64, Option<f32>)], cfg: RepConfig) -> RepCounter {
        let mut c = RepCounter::new(cfg);
        for &(t, a) in signal {
            c.push(t, a);
        }
        c.finish();
        c
    }

    fn some(s: Vec<(f64, f32)>) -> Vec<(f64, Option<f32>)> {
        s.into_iter().map(|(t, a)| (t, Some(a))).collect()
    }

    /// Deterministic pseudo-noise in [-1, 1].
    fn noise(i: usize) -> f32 {
        let x = (i as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((x >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
    }

    #[test]
    fn one_rep_per_full_cycle() {
        let c = count(&some(squats(5, 90.0, 2.0, 1.0, 15.0)), RepConfig::default());
        assert_eq!(c.count(), 5);
        let r = c.reps()[0];
        assert!(r.start < r.bottom && r.bottom < r.end);
        assert!((r.bottom - 2.0).abs() < 0.2, "first bottom at 2 s: {r:?}");
        assert!(r.depth < 100.0);
    }

    #[test]
    fn wobbles_under_the_amplitude_are_ignored() {
        let c = count(&some(squats(6, 160.0, 1.5, 1.0, 30.0)), RepConfig::default());
        assert_eq!(c.count(), 0, "15° swings are not reps");
        let c = count(&some(squats(6, 140.0, 1.5, 1.0, 30.0)), RepConfig::default());
        assert_eq!(c.count(), 6, "35° swings are");
    }

    #[test]
    fn refractory_period_merges_double_dips() {
        // Two dips 0.4 s apart (one bounce at the bottom) then a proper rep 2 s later.
        let mut s = Vec::new();
        for i in 0..120 {
            let t = i as f64 / 30.0;
            let a = match t {
                t if (0.5..0.7).contains(&t) => 90.0,
                t if (0.7..0.8).contains(&t) => 125.0,
                t if (0.8..1.0).contains(&t) => 90.0,
                t if (2.5..3.0).contains(&t) => 90.0,
                _ => 175.0,
            };
            s.push((t, Some(a)));
        }
        let cfg = RepConfig { smoothing: 0.0, ..Default::default() };
        assert_eq!(count(&s, cfg).count(), 2);
    }

    #[test]
    fn jitter_dropouts_and_mixed_depths_still_count_exactly() {
        let mut s: Vec<(f64, Option<f32>)> = Vec::new();
        // 8 reps alternating deep and shallow (90° and 130°), 10° of jitter, every 7th frame missing.
        for (k, depth) in [90.0, 130.0, 90.0, 130.0, 90.0, 130.0, 90.0, 130.0].iter().enumerate() {
            for (t, a) in squats(1, *depth, 1.6, 0.0, 30.0) {
                let t = t + k as f64 * 1.6 + 1.0;
                let i = s.len();
                let a = if i % 7 == 3 { None } else { Some(a + 10.0 * noise(i)) };
                s.push((t, a));
            }
        }
        assert_eq!(count(&s, RepConfig::default()).count(), 8);
    }

    #[test]
    fn fast_reps_at_30_fps_count() {
        let c = count(&some(squats(10, 80.0, 0.8, 1.0, 30.0)), RepConfig::default());
        assert_eq!(c.count(), 10);
    }

    #[test]
    fn a_long_gap_restarts_smoothing_without_inventing_reps() {
        let mut s = some(squats(2, 90.0, 2.0, 1.0, 15.0));
        let t_end = s.last().unwrap().0;
        // 5 s of nothing, then standing still at another angle.
        for i in 0..30 {
            s.push((t_end + 5.0 + i as f64 / 15.0, Some(160.0)));
        }
        assert_eq!(count(&s, RepConfig::default()).count(), 2);
    }

    #[test]
    fn missing_joint_is_not_a_rep() {
        let s: Vec<(f64, Option<f32>)> = (0..100).map(|i| (i as f64 / 15.0, None)).collect();
        assert_eq!(count(&s, RepConfig::default()).count(), 0);
    }

    /// Sample times as newest-wins inference delivers them: intervals from half to one and a
    /// half times the mean, at `rate` poses a second on average.
    fn newest_wins_times(rate: f64, seconds: f64, seed: usize) -> Vec<f64> {
        let mut t = 0.0;
        let mut out = Vec::new();
        let mut i = seed * 7919;
        while t < seconds {
            out.push(t);
            i += 1;
            t += (1.0 + 0.5 * f64::from(noise(i))) / rate;
        }
        out
    }

    #[test]
    fn exact_at_every_pose_rate_from_3_to_60_regular_or_not() {
        for rate in [3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 30.0, 60.0] {
            for period in [1.6, 2.0, 3.0] {
                let signal = |t: f64| {
                    let x = t - 1.0;
                    if !(0.0..=5.0 * period).contains(&x) {
                        175.0
                    } else {
                        175.0 - 85.0 * (0.5 - 0.5 * (x / period * std::f64::consts::TAU).cos()) as f32
                    }
                };
                let total = 2.0 + 5.0 * period;
                for seed in 0..4 {
                    let times: Vec<f64> = if seed == 0 {
                        (0..(total * rate) as usize).map(|i| i as f64 / rate).collect()
                    } else {
                        newest_wins_times(rate, total, seed)
                    };
                    let s: Vec<(f64, Option<f32>)> = times.iter().map(|&t| (t, Some(signal(t)))).collect();
                    let c = count(&s, RepConfig::default());
                    assert_eq!(c.count(), 5, "{rate} poses/s, {period} s reps, seed {seed}");
                }
            }
        }
    }

    #[test]
    fn a_sample_from_the_past_is_ignored() {
        let mut c = RepCounter::new(RepConfig::default());
        for (t, a) in squats(2, 90.0, 2.0, 1.0, 15.0) {
            c.push(t, Some(a));
        }
        assert_eq!(c.count(), 2);
        // A late pose of the first rep's bottom, and a non-finite angle: neither counts.
        assert_eq!(c.push(2.0, Some(90.0)), None);
        assert_eq!(c.push(9.0, Some(f32::NAN)), None);
        assert_eq!(c.count(), 2);
    }
}
