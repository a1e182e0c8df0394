//! Counting reps on one joint angle.
//!
//! A rep is an extended → flexed → extended cycle of the driving angle, as in the original:
//! a moving average (9 samples) smooths pose jitter, then a swing must go at least
//! `min_amplitude` (25°) down from the last peak and back up from the bottom to count, and two
//! rep bottoms closer than `min_period` (0.6 s) are one rep. The hysteresis makes wobbles under
//! the amplitude invisible, and reps of any depth above it count. Missing angles are skipped; a
//! long gap restarts the smoothing rather than averaging across it.

use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RepConfig {
    /// Moving-average window, in samples.
    pub smoothing: usize,
    /// Degrees a swing must cover down and back up.
    pub min_amplitude: f32,
    /// Seconds between two rep bottoms.
    pub min_period: f64,
    /// A gap in valid angles longer than this (s) restarts the smoothing.
    pub max_gap: f64,
}

impl Default for RepConfig {
    fn default() -> Self {
        Self { smoothing: 9, min_amplitude: 25.0, min_period: 0.6, max_gap: 1.0 }
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
    /// completes at this sample.
    pub fn push(&mut self, t: f64, angle: Option<f32>) -> Option<Rep> {
        let angle = angle?;
        if self.window.back().is_some_and(|(last, _)| t - last > self.cfg.max_gap) {
            self.window.clear();
        }
        self.window.push_back((t, angle));
        if self.window.len() > self.cfg.smoothing.max(1) {
            self.window.pop_front();
        }
        let smoothed = self.window.iter().map(|(_, a)| a).sum::<f32>() / self.window.len() as f32;
        // The average describes the middle of its window.
        let st = self.window[self.window.len() / 2].0;
        self.step(st, smoothed)
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
        let cfg = RepConfig { smoothing: 1, ..Default::default() };
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
}
