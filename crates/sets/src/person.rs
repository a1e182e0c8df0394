//! One person's joint signals, as the set tracker follows them: a rep counter per joint family
//! (knee, hip, elbow), each fed from the side of the body the camera sees better.

use pump_features::angle::pose_joint_angle;
use pump_features::{Joint, MIN_KEYPOINT_CONFIDENCE};
use pump_types::{Keypoint, NUM_KEYPOINTS};

use crate::reps::{Rep, RepConfig, RepCounter};

/// Time constant (s) of the running visibility of each side of the body: about ten frames at
/// 15 fps, whatever the pose rate.
const VISIBILITY_TAU_SECONDS: f64 = 0.66;

/// The three joint families, by their left-side joint.
pub(crate) const FAMILIES: [Joint; 3] = [Joint::LeftKnee, Joint::LeftHip, Joint::LeftElbow];

/// One joint family of one person: its rep counter, fed from the side the camera sees better.
#[derive(Debug, Clone)]
pub(crate) struct Family {
    /// The left-side joint; the right one is its mirror.
    joint: Joint,
    pub(crate) counter: RepCounter,
    /// Running visibility of the left and right joints.
    visibility: [f32; 2],
}

impl Family {
    /// Feeds the family's angle at `t`, visibility weighed with `alpha`; a rep when one ended.
    fn push(&mut self, t: f64, kps: &[Keypoint; NUM_KEYPOINTS], alpha: f32) -> Option<Rep> {
        let sides = [self.joint, self.joint.mirrored()];
        for (v, side) in self.visibility.iter_mut().zip(sides) {
            *v += alpha * (visibility(kps, side) - *v);
        }
        self.counter.push(t, pose_joint_angle(kps, self.side(), MIN_KEYPOINT_CONFIDENCE))
    }

    /// The side the camera sees better over time, not frame by frame: the joint counted.
    pub(crate) fn side(&self) -> Joint {
        if self.visibility[1] > self.visibility[0] {
            self.joint.mirrored()
        } else {
            self.joint
        }
    }
}

/// One person's joint signals: one [`Family`] per entry of [`FAMILIES`], in that order.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub(crate) families: Vec<Family>,
    /// Running [`presence`]: who looks most like the athlete when two exercise alike.
    pub(crate) presence: f32,
    last_t: Option<f64>,
}

impl Person {
    pub(crate) fn new(cfg: RepConfig) -> Self {
        Self {
            families: FAMILIES
                .iter()
                .map(|&joint| Family { joint, counter: RepCounter::new(cfg), visibility: [0.0; 2] })
                .collect(),
            presence: 0.0,
            last_t: None,
        }
    }

    /// Feeds the person's keypoints at `t`; returns the reps completed, by family index.
    pub(crate) fn push(&mut self, t: f64, kps: &[Keypoint; NUM_KEYPOINTS], presence: f32) -> Vec<(usize, Rep)> {
        // An exponential average in time: the same smoothing at 4 poses a second as at 30.
        let dt = self.last_t.map(|l| (t - l).max(0.0)).unwrap_or(1.0 / 15.0);
        let alpha = (1.0 - (-dt / VISIBILITY_TAU_SECONDS).exp()) as f32;
        self.last_t = Some(t);
        self.presence += alpha * (presence - self.presence);
        self.families.iter_mut().enumerate().filter_map(|(fi, f)| f.push(t, kps, alpha).map(|r| (fi, r))).collect()
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
