//! Counting reps on one signal: a joint's angle, or a body part's height.
//!
//! A rep is a move away from where the exercise rests and back, as a coach sees it: down and up
//! for a squat (rests high), up and down for a curl (rests low). A running median over `smoothing`
//! seconds smooths pose jitter, then a swing must go a threshold away from the last turning point
//! and back to count, and two rep turnarounds closer than `min_period` (0.6 s) are one rep.
//!
//! The threshold is the set's own: `relative` (30 %) of the median swing of the reps counted so
//! far, never under `min_amplitude`, the signal's floor (20° of a joint, an eighth of a torso
//! length). A constant would fit one body: the model sees one man's knee bottom out at 150° and
//! another's at 60°, and a set of shallow reps counts as surely as a set of deep ones, while a
//! wobble at the top of a deep set is nothing. The floor keeps keypoint flicker and sway from
//! ever being a rep. A swing between the floor and `confirm_below` is counted but said to need
//! confirming: its caller keeps it only when another signal saw the same rep. After `idle_reset`
//! seconds without a rep the set's amplitude is forgotten (the next set may be another exercise
//! or another person).
//!
//! Where the exercise rests can be given ([`Rest`]) or learned: the first swing past the floor
//! away from where the signal started says which way a rep goes (a press may start at the
//! shoulders or locked out), learned again after `idle_reset` at rest. Each rep keeps its swing
//! (the smaller of the way down and the way back), so the set can judge a rep far shallower than
//! its others as partial instead of counting it.
//!
//! Every window is in seconds, never in samples: newest-wins inference delivers anything from
//! 60 poses a second to 3, in bursts and pauses, and a window of samples would smooth over 0.15 s
//! at one rate and 3 s (a whole rep) at the other. The original's 9 samples at 15 fps are 0.6 s.

use std::collections::VecDeque;

pub use pump_features::Rest;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RepConfig {
    /// Median window, in seconds.
    pub smoothing: f64,
    /// The smallest swing that counts, in the signal's unit (degrees, torso lengths).
    pub min_amplitude: f32,
    /// Reps whose way down is under this (in the same unit; at least `min_amplitude` to mean
    /// anything) are reps only when another signal saw them too: the counter counts them and says
    /// so ([`RepCounter::needs_confirmation`]), its caller judges.
    pub confirm_below: f32,
    /// The swing that counts as a fraction of the set's median swing so far.
    pub relative: f32,
    /// Seconds between two rep bottoms.
    pub min_period: f64,
    /// Where the exercise rests; `None`: learned from the first swing.
    pub rest: Option<Rest>,
    /// Seconds at rest without a rep after which the set's amplitude (and a learned rest) is
    /// forgotten.
    pub idle_reset: f64,
}

impl Default for RepConfig {
    fn default() -> Self {
        Self {
            smoothing: 0.2,
            min_amplitude: 25.0,
            confirm_below: 0.0,
            relative: 0.3,
            min_period: 0.6,
            rest: Some(Rest::High),
            idle_reset: 10.0,
        }
    }
}

/// One counted rep, times in the stream's seconds, values in the signal's unit turned so that
/// rest is high (a signal resting low is negated).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rep {
    /// The turning point at rest before the rep.
    pub start: f64,
    /// The turnaround: the deepest point of a squat, the top of a curl.
    pub bottom: f64,
    /// Back at rest after it (updated while the athlete keeps returning).
    pub end: f64,
    /// The smoothed value at the turnaround.
    pub depth: f32,
    /// The smoothed value at rest before the rep.
    pub top: f32,
    /// The highest smoothed value after the turnaround, before the next rep began.
    pub recovery: f32,
    /// How far the smoothed value moved from `start` to `end`, every way: the way down and the
    /// way back for a clean rep, more for a signal that shook on the way.
    pub path: f32,
}

impl Rep {
    /// How far the rep went: the smaller of the way there and the way back.
    pub fn swing(&self) -> f32 {
        (self.top - self.depth).min(self.recovery - self.depth)
    }

    /// How far the signal moved over the rep besides its way there and back: the shaking of a
    /// keypoint that flickers, which a clean rep of a limb that carries the motion hardly has.
    pub fn shake(&self) -> f32 {
        (self.path - (self.top - self.depth) - (self.recovery - self.depth)).max(0.0)
    }

    /// The ground the rep covered cleanly: its swing less its shake ([`Rep::shake`]). A hand
    /// keypoint that jitters at the top of a quarter squat swings further than the hips, and
    /// shakes further still.
    pub fn clean_swing(&self) -> f32 {
        self.swing() - self.shake()
    }
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// The way a rep goes is not known yet: the lowest and highest values since the start.
    Learning { lo: f32, lo_t: f64, lo_w: f64, hi: f32, hi_t: f64, hi_w: f64 },
    /// At rest: tracking the highest value since the last rep (`hi_w`: the walk when there).
    Up { hi: f32, hi_t: f64, hi_w: f64 },
    /// Away from rest, going towards the turnaround or at it.
    Down { lo: f32, lo_t: f64, start_t: f64, start_w: f64, top: f32 },
}

#[derive(Debug, Clone)]
pub struct RepCounter {
    cfg: RepConfig,
    window: VecDeque<(f64, f32)>,
    phase: Option<Phase>,
    /// +1 when the signal rests high, -1 when low (values are multiplied by it).
    sign: f32,
    reps: Vec<Rep>,
    /// Smoothed value at the last rep's current end.
    end_value: f32,
    /// When the counter last saw a rep end or learned its direction (idle is measured from it).
    last_activity: f64,
    /// The first of the reps of the set in progress (whose swings make its amplitude).
    set_from: usize,
    /// A move away and back too quick to be a rep: (start, the walk there, value at rest, end).
    quick: Option<(f64, f64, f32, f64)>,
    /// What one of `min_amplitude` is in the signal's values (see [`RepCounter::set_unit`]).
    unit: f32,
    /// The deepest way down (`top - depth`) of the reps of the set in progress: kept as they
    /// come, not found again among them on every sample of an hour-long set.
    set_deepest: f32,
    /// How far the smoothed value has moved since the start, every way ([`Rep::path`]), and
    /// the last smoothed value. In f64: a counter that runs for weeks walks millions of pixels,
    /// where an f32 could no longer tell one rep's path from the next.
    walked: f64,
    last_smoothed: Option<f32>,
    /// The walk at the last rep's start.
    last_start_walked: f64,
    /// The smoothed values of the last [`RECENT_SECONDS`], and back to `keep_from`, for
    /// [`RepCounter::dipped_between`].
    recent: VecDeque<(f64, f32)>,
    /// The earliest time whose values must stay in `recent` ([`RepCounter::keep_since`]).
    keep_from: f64,
}

/// Units a smoothed value must rise to move a rep's end (jitter on a plateau does not), as a
/// fraction of the threshold.
const END_TOLERANCE: f32 = 0.05;
/// Within this share of the threshold of the top, the athlete is still at rest: a move away
/// begins when they leave it, not at the highest jitter of a wait before it.
const START_SHARE_OF_THRESHOLD: f32 = 0.15;
/// A rep's end moves on by steps of at least this share of its way down: the last fiftieth of
/// the way back is the athlete settling, not the rep.
const END_SHARE_OF_SWING: f32 = 0.02;
/// Seconds a rep takes at the least, from leaving rest to coming back: jumping jacks at 100 a
/// minute take 0.6 s; a keypoint that jumps to another limb and back takes a few frames.
const MIN_REP_SECONDS: f64 = 0.45;
/// The reps whose median swing is the set's amplitude.
const AMPLITUDE_REPS: usize = 5;
/// Seconds of smoothed values kept at the least to say how far the signal fell over another
/// signal's rep: longer than any rep.
const RECENT_SECONDS: f64 = 15.0;

impl RepCounter {
    pub fn new(cfg: RepConfig) -> Self {
        let sign = if cfg.rest == Some(Rest::Low) { -1.0 } else { 1.0 };
        Self {
            cfg,
            window: VecDeque::new(),
            phase: None,
            sign,
            reps: Vec::new(),
            end_value: 0.0,
            last_activity: 0.0,
            set_from: 0,
            quick: None,
            unit: 1.0,
            set_deepest: 0.0,
            walked: 0.0,
            last_smoothed: None,
            last_start_walked: 0.0,
            recent: VecDeque::new(),
            keep_from: f64::INFINITY,
        }
    }

    /// Says what one unit of `min_amplitude` is in the values pushed: a height pushed in pixels
    /// has its floor in torso lengths, so the floor follows the person's size while the values do
    /// not. Dividing the values by a size that changes with the pose (the model sees one body's
    /// torso 40 % longer at a squat's bottom than standing) would bend the signal itself: reps
    /// shrink as the size grows over a set, and the rest after it drifts like a slow rep.
    pub fn set_unit(&mut self, unit: f32) {
        if unit.is_finite() && unit > 0.0 {
            self.unit = unit;
        }
    }

    /// Whether `rep` went down less than `confirm_below`: a rep only if another signal of the
    /// same person saw one at the same time. Judged by the way down, the same while the athlete is
    /// still on the way back as after.
    pub fn needs_confirmation(&self, rep: &Rep) -> bool {
        rep.top - rep.depth < self.cfg.confirm_below * self.unit
    }

    /// How far the smoothed signal dipped from `t0` to `t1`, in units of `min_amplitude` (torso
    /// lengths for a height), the way a rep goes: from its lowest point in the span, the smaller
    /// of the fall to it (from the highest before) and the rise after it (to the highest after).
    /// What another signal's rep asks of this one when it needs confirming ([`crate::person`]): a
    /// signal can move with a rep and still stay under its own floor. Down and back up, both in
    /// the span: a signal that only starts falling at the span's end (into the next rep, after a
    /// keypoint's flicker at rest made the other signal's "rep") moved with nothing.
    pub fn dipped_between(&self, t0: f64, t1: f64) -> f32 {
        let span: Vec<f32> =
            self.recent.iter().filter(|(t, _)| *t >= t0 && *t <= t1).map(|(_, v)| v * self.sign).collect();
        let Some((low_at, low)) = span.iter().copied().enumerate().min_by(|a, b| a.1.total_cmp(&b.1)) else {
            return 0.0;
        };
        let before = span[..=low_at].iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let after = span[low_at..].iter().copied().fold(f32::NEG_INFINITY, f32::max);
        ((before - low).min(after - low) / self.unit).max(0.0)
    }

    /// Keeps the smoothed values from `t` on, besides the last [`RECENT_SECONDS`]: another
    /// signal's reps are judged by this one's dip ([`RepCounter::dipped_between`]) again whenever
    /// their set is counted, up to its close, and a set can last minutes. A judgement made on
    /// values since forgotten would drop a long set's first reps at its end. `f64::INFINITY`
    /// keeps only the last seconds.
    pub fn keep_since(&mut self, t: f64) {
        self.keep_from = t;
    }

    /// The reps counted and not forgotten ([`RepCounter::forget_before`]), oldest first.
    pub fn reps(&self) -> &[Rep] {
        &self.reps
    }

    /// Forgets the reps that turned before `t` (a closed set's, or motion long past), but for
    /// the last few of the set in progress, whose swings are its amplitude: a counter that runs
    /// for hours holds a few reps, not every rep of the day. Returns how many it forgot.
    pub fn forget_before(&mut self, t: f64) -> usize {
        let past = self.reps.iter().take_while(|r| r.bottom < t).count();
        let n = past.min(self.set_from.max(self.reps.len().saturating_sub(AMPLITUDE_REPS)));
        self.reps.drain(..n);
        self.set_from = self.set_from.saturating_sub(n);
        n
    }

    pub fn count(&self) -> usize {
        self.reps.len()
    }

    /// Feeds the value at time `t` (`None` when the signal was not seen); returns a rep when one
    /// completes at this sample. Times must not go backwards (a sample older than the last one is
    /// ignored): a new timeline gets a new counter.
    pub fn push(&mut self, t: f64, value: Option<f32>) -> Option<Rep> {
        let value = value.filter(|a| a.is_finite())?;
        if !t.is_finite() || self.window.back().is_some_and(|(last, _)| t < *last) {
            return None;
        }
        self.window.push_back((t, value));
        // The samples of the last `smoothing` seconds (at least this one): a gap empties the
        // window by itself, so nothing is averaged across it.
        while self.window.front().is_some_and(|(first, _)| t - first >= self.cfg.smoothing) && self.window.len() > 1 {
            self.window.pop_front();
        }
        let (st, smoothed) = self.mean();
        self.step(st, smoothed)
    }

    /// The window's median value (a keypoint that flickers for a frame moves no median), and the
    /// time it describes: the middle of the window.
    fn mean(&self) -> (f64, f32) {
        let n = self.window.len().max(1) as f64;
        let mut values: Vec<f32> = self.window.iter().map(|(_, a)| *a).collect();
        values.sort_by(f32::total_cmp);
        let m = values.len() / 2;
        let v = match values.len() {
            0 => 0.0,
            l if l % 2 == 1 => values[m],
            _ => (values[m - 1] + values[m]) / 2.0,
        };
        (self.window.iter().map(|(t, _)| t).sum::<f64>() / n, v)
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

    /// The swing that counts now: the set's own, never under the floor.
    fn threshold(&self) -> f32 {
        let mut recent: Vec<f32> =
            self.reps[self.set_from..].iter().rev().take(AMPLITUDE_REPS).map(Rep::swing).collect();
        // Reps that need confirming make a set of shallow reps: once a rep of the set went down
        // twice the floor (and far enough to stand alone), a pause on the way up of a deeper rep
        // (a rebound that 4 poses a second happen to catch) is no quarter rep. Not once one rep
        // just reached the floor of one signal alone: a quarter squat's reps measure either side.
        let deep_enough = (2.0 * self.cfg.min_amplitude).max(self.cfg.confirm_below) * self.unit;
        let deep = self.set_deepest >= deep_enough;
        let floor =
            if deep { self.cfg.min_amplitude.max(self.cfg.confirm_below) } else { self.cfg.min_amplitude } * self.unit;
        if recent.is_empty() {
            return floor;
        }
        recent.sort_by(f32::total_cmp);
        floor.max(self.cfg.relative * recent[recent.len() / 2])
    }

    fn step(&mut self, t: f64, raw: f32) -> Option<Rep> {
        self.recent.push_back((t, raw));
        while self.recent.front().is_some_and(|(t0, _)| t - t0 > RECENT_SECONDS && *t0 < self.keep_from) {
            self.recent.pop_front();
        }
        let h = self.threshold();
        if let Some(last) = self.last_smoothed.replace(raw) {
            self.walked += f64::from((raw - last).abs());
        }
        let w = self.walked;
        let Some(phase) = self.phase else {
            self.last_activity = t;
            self.phase = Some(match self.cfg.rest {
                None => Phase::Learning { lo: raw, lo_t: t, lo_w: w, hi: raw, hi_t: t, hi_w: w },
                Some(_) => Phase::Up { hi: raw * self.sign, hi_t: t, hi_w: w },
            });
            return None;
        };
        match phase {
            Phase::Learning { lo, lo_t, lo_w, hi, hi_t, hi_w } => {
                let (lo, lo_t, lo_w) = if raw < lo { (raw, t, w) } else { (lo, lo_t, lo_w) };
                let (hi, hi_t, hi_w) = if raw > hi { (raw, t, w) } else { (hi, hi_t, hi_w) };
                self.phase = Some(if raw <= hi - h {
                    // Away from a high start: the exercise rests high.
                    self.sign = 1.0;
                    self.last_activity = t;
                    Phase::Down { lo: raw, lo_t: t, start_t: hi_t, start_w: hi_w, top: hi }
                } else if raw >= lo + h {
                    self.sign = -1.0;
                    self.last_activity = t;
                    Phase::Down { lo: -raw, lo_t: t, start_t: lo_t, start_w: lo_w, top: -lo }
                } else {
                    Phase::Learning { lo, lo_t, lo_w, hi, hi_t, hi_w }
                });
                None
            }
            Phase::Up { hi, hi_t, hi_w } => {
                let s = raw * self.sign;
                if t - self.last_activity > self.cfg.idle_reset && self.set_from < self.reps.len() {
                    // Long at rest: the next set has its own amplitude, and learns its own direction
                    // — from rest. Where the idle time ran out on the way away from it (a rest
                    // between sets a little shorter than `idle_reset` and the next set's first
                    // descent), learning from here would take the way back up for the first
                    // swing and count every rep of the set turned inside out: the move already
                    // begun goes the way the last set's did.
                    self.set_from = self.reps.len();
                    self.set_deepest = 0.0;
                    if self.cfg.rest.is_none() && s >= hi - START_SHARE_OF_THRESHOLD * h {
                        self.phase = Some(Phase::Learning { lo: raw, lo_t: t, lo_w: w, hi: raw, hi_t: t, hi_w: w });
                        return None;
                    }
                }
                let hi = hi.max(s);
                let tol = END_TOLERANCE * h;
                // Still near the top: the move away (the next rep's start) has not begun.
                let (hi_t, hi_w) = if s >= hi - START_SHARE_OF_THRESHOLD * h { (t, w) } else { (hi_t, hi_w) };
                // Returning further than plateau jitter moves the last rep's end, while the
                // return goes on; standing still at rest does not, nor a slow drift after it
                // (the rep ended when the move back paused).
                let end_tol = self.reps.last().map_or(tol, |r| tol.max(END_SHARE_OF_SWING * (r.top - r.depth)));
                if s > self.end_value + end_tol {
                    if let Some(last) = self.reps.last_mut() {
                        if t - last.end <= self.cfg.min_period {
                            last.end = last.end.max(t);
                            last.path = (w - self.last_start_walked) as f32;
                        }
                        last.recovery = last.recovery.max(s);
                    }
                    self.end_value = s;
                }
                self.phase = Some(if s <= hi - h {
                    // A dip right after one too quick to be a rep continues it.
                    let (start_t, start_w, top) = match self.quick.take() {
                        Some((st, sw, top, end)) if hi_t - end < self.cfg.min_period => (st, sw, top.max(hi)),
                        _ => (hi_t, hi_w, hi),
                    };
                    Phase::Down { lo: s, lo_t: t, start_t, start_w, top }
                } else {
                    Phase::Up { hi, hi_t, hi_w }
                });
                None
            }
            Phase::Down { lo, lo_t, start_t, start_w, top } => {
                let s = raw * self.sign;
                if s < lo {
                    self.phase = Some(Phase::Down { lo: s, lo_t: t, start_t, start_w, top });
                    None
                } else if s >= lo + h {
                    self.phase = Some(Phase::Up { hi: s, hi_t: t, hi_w: w });
                    self.end_value = s;
                    self.last_activity = t;
                    let too_soon = self.reps.last().is_some_and(|r| lo_t - r.bottom < self.cfg.min_period);
                    if too_soon {
                        // A double dip inside the refractory period is the same rep.
                        if let Some(last) = self.reps.last_mut() {
                            if lo < last.depth {
                                last.depth = lo;
                                last.bottom = lo_t;
                            }
                            last.end = t;
                            last.path = (w - self.last_start_walked) as f32;
                            last.recovery = last.recovery.max(s);
                            self.set_deepest = self.set_deepest.max(last.top - last.depth);
                        }
                        return None;
                    }
                    if t - start_t < MIN_REP_SECONDS {
                        // Away and back quicker than any body moves: a keypoint that jumped, or
                        // the first half of a bounce that the next dip completes.
                        self.quick = Some((start_t, start_w, top, t));
                        return None;
                    }
                    self.quick = None;
                    let rep = Rep {
                        start: start_t,
                        bottom: lo_t,
                        end: t,
                        depth: lo,
                        top,
                        recovery: s,
                        path: (w - start_w) as f32,
                    };
                    self.last_start_walked = start_w;
                    self.reps.push(rep);
                    self.set_deepest = self.set_deepest.max(top - lo);
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
    fn a_dip_is_down_and_back_within_the_span_not_a_fall_into_the_next_rep() {
        // One 2-s squat from 1 s (its bottom at 2 s), then standing.
        let c = count(&some(squats(1, 115.0, 2.0, 1.0, 15.0)), RepConfig::default());
        // Over the whole rep: down 60° and back (in the unit of the floor: degrees here).
        let whole = c.dipped_between(1.0, 3.0);
        assert!((whole - 60.0).abs() < 3.0, "{whole}");
        // Over a span that ends on the way down (a flicker before the rep, say), the signal fell
        // but never came back: no dip.
        assert!(c.dipped_between(0.0, 1.8) < 1.0, "{}", c.dipped_between(0.0, 1.8));
        // Over one that starts at the bottom: nothing fell in it.
        assert!(c.dipped_between(2.0, 3.0) < 1.0);
        // Down and a quarter of the way back: the smaller of the two.
        let part = c.dipped_between(1.0, 2.33);
        assert!(part > 5.0 && part < 0.5 * whole, "{part} of {whole}");
    }

    #[test]
    fn a_clean_rep_walks_its_way_down_and_back_and_a_shaking_one_further() {
        let clean = count(&some(squats(4, 90.0, 2.0, 1.0, 15.0)), RepConfig::default());
        for r in clean.reps() {
            assert!(r.shake() < 0.05 * r.swing(), "{r:?}");
            assert!((r.clean_swing() - r.swing()).abs() < 0.05 * r.swing());
        }
        // The same reps seen through a keypoint that jumps 25° either way every two frames on
        // the way down and up (a hand the model loses against the body): the median keeps a
        // two-frame jump, and the rep walks it.
        let jumpy: Vec<(f64, Option<f32>)> = squats(4, 90.0, 2.0, 1.0, 15.0)
            .into_iter()
            .enumerate()
            .map(|(i, (t, a))| {
                let jump = if (i / 2) % 2 == 0 { 25.0 } else { -25.0 };
                (t, Some(if (110.0..160.0).contains(&a) { a + jump } else { a }))
            })
            .collect();
        let shaking = count(&jumpy, RepConfig::default());
        assert_eq!(shaking.count(), 4);
        let shake: f32 = shaking.reps().iter().map(Rep::shake).sum();
        assert!(shake > 0.3 * shaking.reps().iter().map(Rep::swing).sum::<f32>(), "{:?}", shaking.reps());
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

    /// A height signal in torso lengths: `reps` cosine dips of `swing` from 1.8, `period` s
    /// each, after 1 s at rest, at 15 poses a second.
    fn heights(reps: usize, swing: f32, period: f64) -> Vec<(f64, Option<f32>)> {
        squats(reps, 175.0 - swing * 100.0, period, 1.0, 15.0)
            .into_iter()
            .map(|(t, a)| (t, Some(1.8 - (175.0 - a) / 100.0)))
            .collect()
    }

    fn travel() -> RepConfig {
        RepConfig { min_amplitude: 0.12, ..Default::default() }
    }

    #[test]
    fn shallow_and_deep_sets_both_count_and_a_wobble_in_a_deep_set_does_not() {
        // A set of shallow reps (a sixth of a torso) counts as surely as a deep one.
        assert_eq!(count(&heights(5, 0.17, 2.0), travel()).count(), 5);
        assert_eq!(count(&heights(5, 0.9, 2.0), travel()).count(), 5);
        // Under the floor, nothing.
        assert_eq!(count(&heights(5, 0.08, 2.0), travel()).count(), 0);
        // In a deep set, a 0.2 bob between reps is under 30 % of the set's swing: no rep.
        let mut s = heights(3, 0.9, 2.0);
        let t0 = s.last().unwrap().0;
        for i in 0..45 {
            let t = t0 + (i + 1) as f64 / 15.0;
            let x = i as f64 / 45.0 * std::f64::consts::TAU;
            s.push((t, Some(1.8 - 0.1 * (1.0 - x.cos()) as f32)));
        }
        assert_eq!(count(&s, travel()).count(), 3);
    }

    #[test]
    fn a_signal_resting_low_counts_up_and_down_and_its_rest_can_be_learned() {
        // A curl's hands: up 0.8 and back down, resting low.
        let curls: Vec<(f64, Option<f32>)> =
            heights(4, 0.8, 2.0).into_iter().map(|(t, v)| (t, v.map(|v| 3.6 - v))).collect();
        let low = RepConfig { rest: Some(Rest::Low), ..travel() };
        let c = count(&curls, low);
        assert_eq!(c.count(), 4);
        assert!((c.reps()[0].bottom - 2.0).abs() < 0.2, "the turnaround is the top: {:?}", c.reps()[0]);
        // Told nothing, the first move away from where it started says which way a rep goes.
        let learned = count(&curls, RepConfig { rest: None, ..travel() });
        assert_eq!(learned.count(), 4);
        assert_eq!(learned.reps()[0].bottom, c.reps()[0].bottom);
        assert_eq!(count(&heights(4, 0.8, 2.0), RepConfig { rest: None, ..travel() }).count(), 4);
    }

    #[test]
    fn a_second_set_after_a_rest_about_as_long_as_the_idle_time_is_counted_the_right_way_up() {
        // Told nothing, 3 shallow squats (the hips drop a sixth of a torso, under twice the
        // floor), a rest, 4 more: whatever the rest, however the idle time falls against the
        // second set's first descent, 7 reps that turn at the bottoms (never the tops between).
        for rest in (0..=60).map(|i| 6.0 + i as f64 / 10.0) {
            let mut s = heights(3, 0.17, 3.0);
            let t0 = s.last().map_or(0.0, |l| l.0) + rest;
            s.extend(heights(4, 0.17, 3.0).into_iter().map(|(t, v)| (t0 + t, v)));
            let c = count(&s, RepConfig { rest: None, ..travel() });
            assert_eq!(c.count(), 7, "rest {rest} s: {:?}", c.reps());
            assert!(c.reps().iter().all(|r| r.depth < 1.7), "rest {rest} s, a top counted: {:?}", c.reps());
        }
    }

    #[test]
    fn keypoint_flicker_is_never_a_rep() {
        // Standing still, with the hips' keypoint jumping a whole torso for one or two frames now
        // and then: no rep however big the jump.
        let s: Vec<(f64, Option<f32>)> = (0..300)
            .map(|i| {
                let jump = if i % 40 == 10 || (i % 40 == 11 && i % 80 < 40) { 1.0 } else { 0.0 };
                (i as f64 / 30.0, Some(1.8 - jump))
            })
            .collect();
        assert_eq!(count(&s, travel()).count(), 0);
        assert_eq!(count(&s, RepConfig { smoothing: 0.0, ..travel() }).count(), 0);
    }

    #[test]
    fn the_floor_is_in_the_unit_given_and_the_values_are_not() {
        // Heights in pixels: 30-px dips of a person whose torso is 200 px (floor 24 px) count;
        // of one whose torso is 300 px (floor 36 px) they are sway.
        let pixels: Vec<(f64, Option<f32>)> =
            heights(4, 0.3, 2.0).into_iter().map(|(t, v)| (t, v.map(|v| v * 100.0))).collect();
        for (unit, reps) in [(200.0, 4), (300.0, 0)] {
            let mut c = RepCounter::new(travel());
            c.set_unit(unit);
            for &(t, v) in &pixels {
                c.push(t, v);
            }
            c.finish();
            assert_eq!(c.count(), reps, "torso {unit} px");
        }
        // A unit that is no size is ignored.
        let mut c = RepCounter::new(travel());
        c.set_unit(0.0);
        c.set_unit(f32::NAN);
        assert_eq!(c.threshold(), 0.12);
    }

    #[test]
    fn swings_between_the_two_floors_are_counted_and_said_to_need_confirming() {
        let shared = RepConfig { min_amplitude: 0.07, confirm_below: 0.12, ..travel() };
        let c = count(&heights(4, 0.1, 2.5), shared);
        assert_eq!(c.count(), 4);
        assert!(c.reps().iter().all(|r| c.needs_confirmation(r)), "{:?}", c.reps());
        let c = count(&heights(4, 0.5, 2.0), shared);
        assert_eq!(c.count(), 4);
        assert!(c.reps().iter().all(|r| !c.needs_confirmation(r)));
        // A deep rep that pauses a tenth of a torso back up before going on down and up: once the
        // set has had a rep deep enough alone, the pause splits nothing.
        let mut s = heights(1, 0.6, 2.0);
        let t0 = s.last().unwrap().0;
        for i in 0..60 {
            let t = t0 + (i + 1) as f64 / 15.0;
            let x = i as f64 / 60.0;
            let v = match x {
                x if x < 0.3 => 1.8 - 0.6 * (x / 0.3) as f32,
                x if x < 0.45 => 1.2 + 0.1 * ((x - 0.3) / 0.15) as f32,
                x if x < 0.55 => 1.3 - 0.1 * ((x - 0.45) / 0.1) as f32,
                x => 1.2 + 0.6 * ((x - 0.55) / 0.45).min(1.0) as f32,
            };
            s.push((t, Some(v)));
        }
        assert_eq!(count(&s, shared).count(), 2);
        assert_eq!(count(&heights(4, 0.1, 2.5), travel()).count(), 0, "under one floor alone: nothing");
    }

    #[test]
    fn each_rep_keeps_its_swing_for_the_set_to_judge() {
        let c = count(&heights(3, 0.6, 2.0), travel());
        assert_eq!(c.count(), 3);
        for r in c.reps() {
            assert!((r.swing() - 0.6).abs() < 0.08, "{r:?}");
            assert!(r.start < r.bottom && r.bottom < r.end);
        }
    }
}
