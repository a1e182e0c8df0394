//! Poses on the wire (feature `proto`): the one conversion between the engine's `Pose` and
//! `pump.v1.Person`, for every stage that publishes or reads poses.

use pump_proto::{Keypoint as WireKeypoint, Person};

use crate::{BBox, Keypoint, Pose, NUM_KEYPOINTS};

/// The wire form of a pose.
pub fn to_person(p: &Pose) -> Person {
    Person {
        r#box: Some(pump_proto::Box { x1: p.bbox.x1, y1: p.bbox.y1, x2: p.bbox.x2, y2: p.bbox.y2 }),
        score: p.score,
        keypoints: p.keypoints.iter().map(|k| WireKeypoint { x: k.x, y: k.y, confidence: k.confidence }).collect(),
    }
}

/// A pose from its wire form; missing keypoints are left at zero confidence.
pub fn from_person(p: &Person) -> Pose {
    let b = p.r#box.unwrap_or_default();
    let mut keypoints = [Keypoint::default(); NUM_KEYPOINTS];
    for (k, kp) in keypoints.iter_mut().zip(&p.keypoints) {
        *k = Keypoint { x: kp.x, y: kp.y, confidence: kp.confidence };
    }
    Pose { bbox: BBox { x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2 }, score: p.score, keypoints }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut kps = [Keypoint::default(); NUM_KEYPOINTS];
        kps[3] = Keypoint { x: 1.5, y: 2.5, confidence: 0.7 };
        let pose = Pose { bbox: BBox { x1: 1.0, y1: 2.0, x2: 3.0, y2: 4.0 }, score: 0.9, keypoints: kps };
        assert_eq!(from_person(&to_person(&pose)), pose);
    }
}
