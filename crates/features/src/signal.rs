//! What a rep is counted on: a joint's angle, or how high a part of the body is.
//!
//! One angle with one threshold fits the body it was tuned on. The model may see one person's knee
//! bottom out at 150° while their hips plainly drop by a third of their height, and from the front
//! a squatting knee hardly bends at all in 2-D. What a coach watches is the body's travel: the hips
//! going down and up in a squat or a lunge, the shoulders in a push-up, a sit-up or a deadlift, the
//! hands in a curl, a press or a jumping jack. So a rep counter follows one of these [`Signal`]s:
//! heights are measured in torso lengths above the bottom of the person's box (the floor they stand
//! or lie on), so the same swing counts for a child far away and an adult close by; angles stay in
//! degrees, for exercises whose travel is sideways (a cable row).

use pump_types::Keypoint;

use crate::angle::Joint;

/// A signal a rep counter follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// The knee's angle, on the side the camera sees better.
    KneeAngle,
    HipAngle,
    ElbowAngle,
    /// The middle of the hips, in torso lengths above the box's bottom.
    HipHeight,
    ShoulderHeight,
    WristHeight,
}

/// Every signal, in the order a person's counters keep them.
pub const SIGNALS: [Signal; 6] = [
    Signal::KneeAngle,
    Signal::HipAngle,
    Signal::ElbowAngle,
    Signal::HipHeight,
    Signal::ShoulderHeight,
    Signal::WristHeight,
];

/// The signals an exercise pump does not know is counted on: its dominant motion is one of the
/// body's travels (angles flicker with the keypoints of a limb the camera sees edge-on).
pub const TRAVEL_SIGNALS: [Signal; 3] = [Signal::HipHeight, Signal::ShoulderHeight, Signal::WristHeight];

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::KneeAngle => "knee_angle",
            Signal::HipAngle => "hip_angle",
            Signal::ElbowAngle => "elbow_angle",
            Signal::HipHeight => "hip_height",
            Signal::ShoulderHeight => "shoulder_height",
            Signal::WristHeight => "wrist_height",
        }
    }

    /// Index in [`SIGNALS`].
    pub fn index(self) -> usize {
        SIGNALS.iter().position(|s| *s == self).unwrap_or(0)
    }

    /// The (left-side) joint of an angle signal; `None` for a height.
    pub fn joint(self) -> Option<Joint> {
        match self {
            Signal::KneeAngle => Some(Joint::LeftKnee),
            Signal::HipAngle => Some(Joint::LeftHip),
            Signal::ElbowAngle => Some(Joint::LeftElbow),
            _ => None,
        }
    }

    /// The joint whose angle a plot of a set counted on this signal shows.
    pub fn plotted_joint(self) -> Joint {
        match self {
            Signal::KneeAngle | Signal::HipHeight => Joint::LeftKnee,
            Signal::HipAngle | Signal::ShoulderHeight => Joint::LeftHip,
            Signal::ElbowAngle | Signal::WristHeight => Joint::LeftElbow,
        }
    }

    /// The COCO-17 left/right keypoint pair of a height signal.
    fn pair(self) -> Option<(usize, usize)> {
        match self {
            Signal::HipHeight => Some((11, 12)),
            Signal::ShoulderHeight => Some((5, 6)),
            Signal::WristHeight => Some((9, 10)),
            _ => None,
        }
    }

    /// The smallest swing that is a rep on this signal alone, in the signal's unit: 20° of a joint,
    /// or an eighth of a torso length. Below it is keypoint jitter and sway; a set's own reps raise
    /// the bar from there (the rep counter's relative threshold).
    pub fn floor(self) -> f32 {
        if self.joint().is_some() {
            20.0
        } else {
            0.12
        }
    }

    /// The signal that moves with this one when the body does: the hips and the shoulders ride on
    /// one trunk, so the body going down shows in both, while a keypoint's flicker (the model's
    /// hip jumping between two places at rest) or a hand or an elbow moves one.
    pub fn moves_with(self) -> Option<Signal> {
        match self {
            Signal::HipHeight => Some(Signal::ShoulderHeight),
            Signal::ShoulderHeight => Some(Signal::HipHeight),
            _ => None,
        }
    }

    /// The joint whose angle bends when this body part goes down and that is drawn from none of
    /// its keypoints: the knee for the shoulders (a squat's knee bends as its shoulders drop,
    /// while a shoulder keypoint's flicker bends nothing). Not for the hips: the knee's angle is
    /// drawn through the hip keypoint, which a hip flicker moves with it.
    pub fn bends_with(self) -> Option<Signal> {
        match self {
            Signal::ShoulderHeight => Some(Signal::KneeAngle),
            _ => None,
        }
    }

    /// The smallest swing that is a rep when [`Signal::moves_with`] saw the same rep at the same
    /// time: a fourteenth of a torso length for the hips and the shoulders ([`Signal::floor`] for
    /// the others). A quarter squat of one body drops its hips and shoulders by a tenth of its
    /// torso as the model sees it.
    pub fn shared_floor(self) -> f32 {
        if self.moves_with().is_some() {
            0.07
        } else {
            self.floor()
        }
    }
}

/// Where an exercise rests between reps: at the signal's top (a squat stands tall) or its bottom
/// (a curl hangs its hands, a sit-up lies flat, a deadlift starts at the floor). A rep is a move
/// away from rest and back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rest {
    High,
    Low,
}

/// The confidence-weighted height of a pair of keypoints, in the unit of `scale`, above `floor_y`
/// (image rows grow downwards); `None` when neither keypoint is confident enough.
pub fn pair_height(
    keypoints: &[Keypoint],
    signal: Signal,
    floor_y: f32,
    scale: f32,
    min_confidence: f32,
) -> Option<f32> {
    let (a, b) = signal.pair()?;
    let (mut sum, mut weight) = (0.0f32, 0.0f32);
    for k in [keypoints.get(a)?, keypoints.get(b)?] {
        if k.confidence >= min_confidence && k.y.is_finite() {
            sum += k.confidence * k.y;
            weight += k.confidence;
        }
    }
    (weight > 0.0 && scale > 0.0).then(|| (floor_y - sum / weight) / scale)
}

/// The middles of the shoulders and of the hips (one side where the other is not confident);
/// `None` unless a shoulder and a hip are confident.
fn torso(keypoints: &[Keypoint], min_confidence: f32) -> Option<((f32, f32), (f32, f32))> {
    let mid = |a: usize, b: usize| -> Option<(f32, f32)> {
        let (ka, kb) = (keypoints.get(a)?, keypoints.get(b)?);
        match (ka.confidence >= min_confidence, kb.confidence >= min_confidence) {
            (true, true) => Some(((ka.x + kb.x) / 2.0, (ka.y + kb.y) / 2.0)),
            (true, false) => Some((ka.x, ka.y)),
            (false, true) => Some((kb.x, kb.y)),
            (false, false) => None,
        }
    };
    Some((mid(5, 6)?, mid(11, 12)?))
}

/// The torso's length (shoulders' middle to hips' middle), the unit of a person's heights; `None`
/// unless a shoulder and a hip are confident.
pub fn torso_length(keypoints: &[Keypoint], min_confidence: f32) -> Option<f32> {
    let (s, h) = torso(keypoints, min_confidence)?;
    let len = ((s.0 - h.0).powi(2) + (s.1 - h.1).powi(2)).sqrt();
    (len.is_finite() && len > 0.0).then_some(len)
}

/// How far the trunk leans from upright, in degrees: 0 with the shoulders straight above the
/// hips, 90 lying (either way round), 180 upside down. `None` as for [`torso_length`].
pub fn trunk_lean(keypoints: &[Keypoint], min_confidence: f32) -> Option<f32> {
    let (s, h) = torso(keypoints, min_confidence)?;
    // Image y grows downwards: upright is the shoulders above (smaller y than) the hips.
    let (dx, up) = ((s.0 - h.0).abs(), h.1 - s.1);
    let lean = dx.atan2(up).to_degrees();
    (lean.is_finite() && (dx > 0.0 || up != 0.0)).then_some(lean)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kp(x: f32, y: f32, c: f32) -> Keypoint {
        Keypoint { x, y, confidence: c }
    }

    #[test]
    fn heights_are_in_torso_lengths_above_the_floor_weighted_by_confidence() {
        let mut k = [kp(0.0, 0.0, 0.0); 17];
        k[5] = kp(0.0, 100.0, 0.9);
        k[6] = kp(10.0, 100.0, 0.9);
        k[11] = kp(0.0, 200.0, 0.9);
        k[12] = kp(10.0, 220.0, 0.3);
        assert_eq!(torso_length(&k, 0.3), Some(110.0));
        let h = pair_height(&k, Signal::ShoulderHeight, 400.0, 100.0, 0.3).unwrap();
        assert!((h - 3.0).abs() < 1e-5);
        // The less sure hip counts for less: 0.9 at 200, 0.3 at 220.
        let h = pair_height(&k, Signal::HipHeight, 400.0, 100.0, 0.3).unwrap();
        assert!((h - (400.0 - 205.0) / 100.0).abs() < 1e-4, "{h}");
        // An unseen pair, an angle signal and a zero scale have no height.
        assert_eq!(pair_height(&k, Signal::WristHeight, 400.0, 100.0, 0.3), None);
        assert_eq!(pair_height(&k, Signal::KneeAngle, 400.0, 100.0, 0.3), None);
        assert_eq!(pair_height(&k, Signal::HipHeight, 400.0, 0.0, 0.3), None);
        k[12].confidence = 0.1;
        assert_eq!(torso_length(&k, 0.3), Some((100.0f32 * 100.0 + 5.0 * 5.0).sqrt()));
    }

    #[test]
    fn the_trunk_leans_from_upright_whichever_way_the_body_lies() {
        let body = |shoulders: (f32, f32), hips: (f32, f32)| {
            let mut k = [kp(0.0, 0.0, 0.0); 17];
            for i in [5, 6] {
                k[i] = kp(shoulders.0, shoulders.1, 0.9);
            }
            for i in [11, 12] {
                k[i] = kp(hips.0, hips.1, 0.9);
            }
            k
        };
        let lean = |s, h| trunk_lean(&body(s, h), 0.3).unwrap();
        assert!(lean((50.0, 100.0), (50.0, 200.0)).abs() < 1e-4, "standing");
        assert!((lean((150.0, 200.0), (50.0, 200.0)) - 90.0).abs() < 1e-4, "lying, head right");
        assert!((lean((-50.0, 200.0), (50.0, 200.0)) - 90.0).abs() < 1e-4, "lying, head left");
        assert!((lean((100.0, 150.0), (50.0, 200.0)) - 45.0).abs() < 1e-4, "bent forward");
        assert!((lean((50.0, 300.0), (50.0, 200.0)) - 180.0).abs() < 1e-4, "upside down");
        // No trunk without a confident shoulder and hip, nor where they coincide.
        let mut k = body((50.0, 100.0), (50.0, 200.0));
        k[11].confidence = 0.1;
        k[12].confidence = 0.1;
        assert_eq!(trunk_lean(&k, 0.3), None);
        assert_eq!(trunk_lean(&body((50.0, 100.0), (50.0, 100.0)), 0.3), None);
    }

    #[test]
    fn signals_have_indices_units_and_plots() {
        for (i, s) in SIGNALS.iter().enumerate() {
            assert_eq!(s.index(), i);
            assert!(s.floor() > 0.0);
            assert!(s.shared_floor() > 0.0 && s.shared_floor() <= s.floor());
            // Moving together goes both ways.
            assert!(s.moves_with().is_none_or(|p| p.moves_with() == Some(*s) && p != *s));
            assert_eq!(s.joint().is_some(), !TRAVEL_SIGNALS.contains(s));
        }
        assert_eq!(Signal::HipHeight.plotted_joint(), Joint::LeftKnee);
        assert_eq!(Signal::ElbowAngle.plotted_joint(), Joint::LeftElbow);
    }
}
