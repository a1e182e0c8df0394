//! One person's signals, as the set tracker follows them: a rep counter for each [`Signal`] (the
//! knee, hip and elbow angles on the side the camera sees better; the hips', shoulders' and hands'
//! heights, in pixels, their floors in torso lengths).

use pump_features::angle::pose_joint_angle;
use pump_features::{pair_height, torso_length, ExerciseSpec, Joint, Signal, MIN_KEYPOINT_CONFIDENCE, SIGNALS};
use std::collections::VecDeque;

use pump_types::{BBox, Keypoint, NUM_KEYPOINTS};

use crate::reps::{Rep, RepConfig, RepCounter};

/// Time constant (s) of the running visibility of each side of the body: about ten frames at
/// 15 fps, whatever the pose rate.
const VISIBILITY_TAU_SECONDS: f64 = 0.66;
/// Seconds of torso lengths whose median is the person's size, the unit of the heights' floors.
/// The torso the model sees changes with the pose, either way: shorter when it leans towards the
/// camera (a front squat's bottom), 40 % longer at one body's side-on squat bottom than standing,
/// a frame's flicker. A median over several reps and the rest around them is none of these.
const SCALE_WINDOW_SECONDS: f64 = 10.0;

/// How far, as a share of its own floor, the partner of a shallow rep must dip over it (fall and
/// rise again within it, [`RepCounter::dipped_between`]) to confirm it without a rep of its own.
/// At a few poses a second the 0.2-s median averages a quarter squat's bottom with its way down:
/// the model saw one body's hips drop 10.6 px at 6 poses a second, 8.7 px smoothed, under their
/// 9.2-px floor, while its shoulders dropped 13 px; the hips moved with the rep, only not far
/// enough to be one.
const PARTNER_FALL_SHARE: f32 = 0.5;

/// A pose the model is far less sure of than of this person's own recent ones is a lost view, not
/// a posture: its body keypoints' mean confidence under this share of their median over the last
/// [`SURENESS_WINDOW_SECONDS`]. At a deep squat's bottom, framed so tightly that the head leaves
/// the picture, the model loses one body for half a second and draws another (its shoulders at
/// the frame's top, confidence 0.1–0.3, its hips back at standing height, 0.5): fed to the
/// counters, each bottom was a rise and every rep two at 10 poses a second. Over every clip and
/// real video that counted right, such a drop came 4 times in 7,000 poses, never at a rep; on
/// the two tight deep-squat clips, at every bottom.
const LOST_VIEW_SHARE: f32 = 0.6;
/// Seconds of a person's sureness whose median is what they are usually seen with: longer than a
/// rep's bottom, short enough to follow someone into the shade.
const SURENESS_WINDOW_SECONDS: f64 = 5.0;
/// Poses of that window needed before a view can be judged lost.
const SURENESS_MIN_POSES: usize = 5;

/// The mean confidence of the body's keypoints (shoulders to ankles): how sure the model is of it.
fn sureness(kps: &[Keypoint; NUM_KEYPOINTS]) -> f32 {
    kps[5..].iter().map(|k| k.confidence).sum::<f32>() / (NUM_KEYPOINTS - 5) as f32
}

/// One signal of one person: its rep counter, fed from the side the camera sees better.
#[derive(Debug, Clone)]
pub(crate) struct Family {
    pub(crate) signal: Signal,
    pub(crate) counter: RepCounter,
    /// Running visibility of the left and right joints (of a height: of the joint plotted).
    visibility: [f32; 2],
}

impl Family {
    /// The joint read for an angle signal (the side the camera sees better over time, not frame by
    /// frame), or the joint a plot of a height shows on that side.
    pub(crate) fn side(&self) -> Joint {
        let joint = self.signal.joint().unwrap_or(self.signal.plotted_joint());
        if self.visibility[1] > self.visibility[0] {
            joint.mirrored()
        } else {
            joint
        }
    }
}

/// One person's signals: one [`Family`] per entry of [`SIGNALS`], in that order.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub(crate) families: Vec<Family>,
    /// Running [`presence`]: who looks most like the athlete when two exercise alike.
    pub(crate) presence: f32,
    /// Torso lengths (pixels) of the last [`SCALE_WINDOW_SECONDS`].
    torsos: VecDeque<(f64, f32)>,
    /// [`sureness`] of the last [`SURENESS_WINDOW_SECONDS`].
    sureness: VecDeque<(f64, f32)>,
    last_t: Option<f64>,
}

impl Person {
    /// Counters for every signal: the exercise's own rests where the exercise says; the others
    /// learn where they rest.
    pub(crate) fn new(cfg: RepConfig, exercise: Option<&ExerciseSpec>) -> Self {
        Self {
            families: SIGNALS
                .iter()
                .map(|&signal| {
                    let rest = exercise.filter(|e| e.signals.contains(&signal)).and_then(|e| e.rest);
                    let cfg =
                        RepConfig { min_amplitude: signal.shared_floor(), confirm_below: signal.floor(), rest, ..cfg };
                    Family { signal, counter: RepCounter::new(cfg), visibility: [0.0; 2] }
                })
                .collect(),
            presence: 0.0,
            torsos: VecDeque::new(),
            sureness: VecDeque::new(),
            last_t: None,
        }
    }

    /// Feeds the person's keypoints and box at `t`; returns the reps completed, by family index.
    pub(crate) fn push(
        &mut self,
        t: f64,
        kps: &[Keypoint; NUM_KEYPOINTS],
        bbox: &BBox,
        presence: f32,
    ) -> Vec<(usize, Rep)> {
        // Exponential averages in time: the same smoothing at 4 poses a second as at 30.
        let dt = self.last_t.map(|l| (t - l).max(0.0)).unwrap_or(1.0 / 15.0);
        let alpha = |tau: f64| (1.0 - (-dt / tau).exp()) as f32;
        self.last_t = Some(t);
        self.presence += alpha(VISIBILITY_TAU_SECONDS) * (presence - self.presence);
        // A lost view feeds the counters nothing, as a pose not seen: the signals wait for the body.
        let lost = self.lost_view(t, sureness(kps));
        if let Some(torso) = torso_length(kps, MIN_KEYPOINT_CONFIDENCE).filter(|_| !lost) {
            self.torsos.push_back((t, torso));
        }
        while self.torsos.front().is_some_and(|(t0, _)| t - t0 > SCALE_WINDOW_SECONDS) && self.torsos.len() > 1 {
            self.torsos.pop_front();
        }
        let scale = self.scale();
        let a = alpha(VISIBILITY_TAU_SECONDS);
        let mut out = Vec::new();
        for (fi, f) in self.families.iter_mut().enumerate() {
            let joint = f.signal.joint().unwrap_or(f.signal.plotted_joint());
            for (v, side) in f.visibility.iter_mut().zip([joint, joint.mirrored()]) {
                *v += a * (visibility(kps, side) - *v);
            }
            // Heights go to the counter in pixels, its floor in torso lengths.
            let value = match f.signal.joint() {
                _ if lost => None,
                Some(_) => pose_joint_angle(kps, f.side(), MIN_KEYPOINT_CONFIDENCE),
                None => {
                    let Some(s) = scale else { continue };
                    f.counter.set_unit(s);
                    pair_height(kps, f.signal, bbox.y2, 1.0, MIN_KEYPOINT_CONFIDENCE)
                }
            };
            if let Some(r) = f.counter.push(t, value) {
                out.push((fi, r));
            }
        }
        self.keep_partners_values();
        out
    }

    /// Every signal keeps its values back to the start of the oldest rep any signal still holds:
    /// the values a rep was confirmed by ([`Person::confirmed`]) stay until the rep is forgotten.
    fn keep_partners_values(&mut self) {
        let oldest = self.families.iter().filter_map(|f| f.counter.reps().first()).map(|r| r.start);
        let oldest = oldest.fold(f64::INFINITY, f64::min);
        for f in self.families.iter_mut() {
            f.counter.keep_since(oldest);
        }
    }

    /// Whether a pose of this `sureness` at `t` is a lost view ([`LOST_VIEW_SHARE`]). Every pose
    /// joins the window, lost or not, so a person seen less surely for good (the light changed,
    /// they turned) is judged by that within half the window.
    fn lost_view(&mut self, t: f64, sureness: f32) -> bool {
        while self.sureness.front().is_some_and(|(t0, _)| t - t0 > SURENESS_WINDOW_SECONDS) {
            self.sureness.pop_front();
        }
        let lost = self.sureness.len() >= SURENESS_MIN_POSES && {
            let mut v: Vec<f32> = self.sureness.iter().map(|(_, c)| *c).collect();
            v.sort_by(f32::total_cmp);
            sureness < LOST_VIEW_SHARE * v[v.len() / 2]
        };
        self.sureness.push_back((t, sureness));
        lost
    }

    /// The median torso length of the last [`SCALE_WINDOW_SECONDS`] (pixels).
    fn scale(&self) -> Option<f32> {
        let mut v: Vec<f32> = self.torsos.iter().map(|(_, l)| *l).collect();
        v.sort_by(f32::total_cmp);
        v.get(v.len() / 2).copied()
    }

    /// Whether family `fi`'s `rep` stands: deep enough on its own, or seen by the signal that
    /// moves with it ([`Signal::moves_with`]): turning within `within` seconds of it, or dipping
    /// over it by at least [`PARTNER_FALL_SHARE`] of its own floor (the hips and the shoulders of
    /// a quarter squat; never one keypoint's flicker, which moves one signal); or by the joint
    /// that bends with it ([`Signal::bends_with`]) turning within `within` (a slow quarter squat
    /// of one body: its hips, as the model saw them, hardly moved, its knee bent 30° each rep).
    pub(crate) fn confirmed(&self, fi: usize, rep: &Rep, within: f64) -> bool {
        let family = &self.families[fi];
        if !family.counter.needs_confirmation(rep) {
            return true;
        }
        let turned_near = |counter: &RepCounter| {
            // Reps come in the order they turned: only the last few can be near this one.
            let mut near = counter.reps().iter().rev().take_while(|r| r.bottom > rep.bottom - within);
            near.any(|r| r.bottom - rep.bottom < within)
        };
        let partner = family.signal.moves_with().is_some_and(|partner| {
            let counter = self.counter(partner.index());
            turned_near(counter)
                || counter.dipped_between(rep.start, rep.end) >= PARTNER_FALL_SHARE * partner.shared_floor()
        });
        partner || family.signal.bends_with().is_some_and(|joint| turned_near(self.counter(joint.index())))
    }

    /// Forgets every signal's reps that turned before `t` ([`RepCounter::forget_before`]).
    pub(crate) fn forget_before(&mut self, t: f64) {
        for f in self.families.iter_mut() {
            f.counter.forget_before(t);
        }
    }

    /// Family `fi`'s rep counter.
    pub(crate) fn counter(&self, fi: usize) -> &RepCounter {
        &self.families[fi].counter
    }
}

fn visibility(kps: &[Keypoint], joint: Joint) -> f32 {
    let (a, b, c) = joint.keypoints();
    kps[a].confidence.min(kps[b].confidence).min(kps[c].confidence)
}
