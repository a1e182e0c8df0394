//! Joint angles from 2-D keypoints.

use pump_types::Keypoint;

/// The six joints of the feature vector, in column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Joint {
    LeftKnee,
    RightKnee,
    LeftElbow,
    RightElbow,
    LeftHip,
    RightHip,
}

/// Columns of the feature matrix, in order.
pub const JOINTS: [Joint; 6] =
    [Joint::LeftKnee, Joint::RightKnee, Joint::LeftElbow, Joint::RightElbow, Joint::LeftHip, Joint::RightHip];

impl Joint {
    /// COCO-17 indices (a, b, c) of the angle at b.
    pub fn keypoints(self) -> (usize, usize, usize) {
        match self {
            Joint::LeftKnee => (11, 13, 15), // hip, knee, ankle
            Joint::RightKnee => (12, 14, 16),
            Joint::LeftElbow => (5, 7, 9), // shoulder, elbow, wrist
            Joint::RightElbow => (6, 8, 10),
            Joint::LeftHip => (13, 11, 5), // knee, hip, shoulder
            Joint::RightHip => (14, 12, 6),
        }
    }

    /// Column of this joint in the feature matrix.
    pub fn column(self) -> usize {
        JOINTS.iter().position(|j| *j == self).unwrap_or(0)
    }

    /// The same joint on the other side of the body.
    pub fn mirrored(self) -> Joint {
        match self {
            Joint::LeftKnee => Joint::RightKnee,
            Joint::RightKnee => Joint::LeftKnee,
            Joint::LeftElbow => Joint::RightElbow,
            Joint::RightElbow => Joint::LeftElbow,
            Joint::LeftHip => Joint::RightHip,
            Joint::RightHip => Joint::LeftHip,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Joint::LeftKnee => "left_knee",
            Joint::RightKnee => "right_knee",
            Joint::LeftElbow => "left_elbow",
            Joint::RightElbow => "right_elbow",
            Joint::LeftHip => "left_hip",
            Joint::RightHip => "right_hip",
        }
    }
}

/// Interior angle at `b` of the path a-b-c, in degrees (0–180); 0 when a limb has zero length.
pub fn joint_angle(a: (f32, f32), b: (f32, f32), c: (f32, f32)) -> f32 {
    let (ux, uy) = (a.0 - b.0, a.1 - b.1);
    let (vx, vy) = (c.0 - b.0, c.1 - b.1);
    let (nu, nv) = ((ux * ux + uy * uy).sqrt(), (vx * vx + vy * vy).sqrt());
    if nu == 0.0 || nv == 0.0 {
        return 0.0;
    }
    // atan2 of cross and dot is exact near 0° and 180°, where acos loses precision.
    let cross = ux * vy - uy * vx;
    let dot = ux * vx + uy * vy;
    cross.abs().atan2(dot).to_degrees()
}

/// The angle of `joint` in a pose, if its three keypoints are confident enough.
pub fn pose_joint_angle(keypoints: &[Keypoint], joint: Joint, min_confidence: f32) -> Option<f32> {
    let (a, b, c) = joint.keypoints();
    let (ka, kb, kc) = (keypoints.get(a)?, keypoints.get(b)?, keypoints.get(c)?);
    if ka.confidence < min_confidence || kb.confidence < min_confidence || kc.confidence < min_confidence {
        return None;
    }
    Some(joint_angle((ka.x, ka.y), (kb.x, kb.y), (kc.x, kc.y)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_angle_straight_line_and_fold() {
        assert!((joint_angle((0.0, 1.0), (0.0, 0.0), (1.0, 0.0)) - 90.0).abs() < 1e-4);
        assert!((joint_angle((-1.0, 0.0), (0.0, 0.0), (1.0, 0.0)) - 180.0).abs() < 1e-4);
        assert!(joint_angle((1.0, 0.0), (0.0, 0.0), (2.0, 0.0)).abs() < 1e-4);
        assert!((joint_angle((1.0, 1.0), (0.0, 0.0), (1.0, 0.0)) - 45.0).abs() < 1e-4);
    }

    #[test]
    fn angle_is_symmetric_and_orientation_free() {
        let (a, b, c) = ((3.0, 7.0), (1.0, 2.0), (-4.0, 5.0));
        assert!((joint_angle(a, b, c) - joint_angle(c, b, a)).abs() < 1e-4);
        let mirrored = joint_angle((-3.0, 7.0), (-1.0, 2.0), (4.0, 5.0));
        assert!((joint_angle(a, b, c) - mirrored).abs() < 1e-4);
    }

    #[test]
    fn zero_length_limb_gives_zero() {
        assert_eq!(joint_angle((1.0, 1.0), (1.0, 1.0), (2.0, 3.0)), 0.0);
        assert_eq!(joint_angle((0.0, 0.0), (1.0, 1.0), (1.0, 1.0)), 0.0);
    }

    #[test]
    fn joints_have_distinct_columns_and_mirror() {
        for (i, j) in JOINTS.iter().enumerate() {
            assert_eq!(j.column(), i);
            assert_eq!(j.mirrored().mirrored(), *j);
            assert_ne!(j.mirrored(), *j);
        }
    }

    #[test]
    fn low_confidence_keypoint_gives_no_angle() {
        let mut kps = [Keypoint { x: 0.0, y: 0.0, confidence: 0.9 }; 17];
        kps[11] = Keypoint { x: 0.0, y: 0.0, confidence: 0.9 };
        kps[13] = Keypoint { x: 0.0, y: 1.0, confidence: 0.9 };
        kps[15] = Keypoint { x: 0.0, y: 2.0, confidence: 0.9 };
        assert!((pose_joint_angle(&kps, Joint::LeftKnee, 0.3).unwrap() - 180.0).abs() < 1e-4);
        kps[15].confidence = 0.2;
        assert_eq!(pose_joint_angle(&kps, Joint::LeftKnee, 0.3), None);
    }
}
