//! A set's feature matrix: T frames × 6 joint angles.
//!
//! Built with an explicit loop over frames: the original measured a vectorised version at
//! 0.6–0.7× the loop's speed for realistic sets (150–500 frames).

use pump_types::Keypoint;

use crate::angle::{pose_joint_angle, JOINTS};

/// Keypoints below this confidence make their angles missing.
pub const MIN_KEYPOINT_CONFIDENCE: f32 = 0.3;

/// The least a still joint counts for in [`FeatureMatrix::motion`]: held still where the other
/// exercise moves it is still a difference.
pub const MIN_MOTION_WEIGHT: f32 = 0.1;

/// The angle a joint is taken to have before it was ever seen: straight.
const BEFORE_FIRST_VALID: f32 = 180.0;

/// T rows of the six angles, in `JOINTS` order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeatureMatrix {
    pub rows: Vec<[f32; 6]>,
}

impl FeatureMatrix {
    /// Builds the matrix from each frame's keypoints (the athlete's). A missing angle carries the
    /// last valid value forward, 180° before any.
    pub fn from_keypoints<'a>(frames: impl IntoIterator<Item = &'a [Keypoint]>) -> Self {
        let mut last = [BEFORE_FIRST_VALID; 6];
        let mut rows = Vec::new();
        for kps in frames {
            let mut row = [0.0f32; 6];
            for (col, joint) in JOINTS.iter().enumerate() {
                if let Some(a) = pose_joint_angle(kps, *joint, MIN_KEYPOINT_CONFIDENCE) {
                    last[col] = a;
                }
                row[col] = last[col];
            }
            rows.push(row);
        }
        Self { rows }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// How much each joint takes part in the motion, 0.1–1: its angle's spread (5th to 95th
    /// percentile, so a flickering keypoint's spike does not count) over the widest spread.
    /// What a coach looks at: a squat is its knees and hips, a curl its elbows, whatever the
    /// still joints hold.
    pub fn motion(&self) -> [f32; 6] {
        let mut spread = [0.0f32; 6];
        if self.rows.len() >= 2 {
            for (c, s) in spread.iter_mut().enumerate() {
                let mut col: Vec<f32> = self.rows.iter().map(|r| r[c]).collect();
                col.sort_by(f32::total_cmp);
                let at = |q: f32| col[((col.len() - 1) as f32 * q).round() as usize];
                *s = at(0.95) - at(0.05);
            }
        }
        let widest = spread.iter().copied().fold(0.0, f32::max);
        if widest <= 0.0 {
            return [1.0; 6];
        }
        spread.map(|s| (s / widest).clamp(MIN_MOTION_WEIGHT, 1.0))
    }

    /// (min, max) of each column; `None` for an empty matrix.
    pub fn ranges(&self) -> Option<[(f32, f32); 6]> {
        let first = self.rows.first()?;
        let mut r = [(0.0, 0.0); 6];
        for c in 0..6 {
            r[c] = (first[c], first[c]);
        }
        for row in &self.rows {
            for c in 0..6 {
                r[c].0 = r[c].0.min(row[c]);
                r[c].1 = r[c].1.max(row[c]);
            }
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(knee_x: f32, conf: f32) -> [Keypoint; 17] {
        let mut k = [Keypoint { x: 0.0, y: 0.0, confidence: 0.0 }; 17];
        k[11] = Keypoint { x: 0.0, y: 0.0, confidence: conf };
        k[13] = Keypoint { x: knee_x, y: 1.0, confidence: conf };
        k[15] = Keypoint { x: 0.0, y: 2.0, confidence: conf };
        k
    }

    #[test]
    fn missing_angles_carry_forward_and_start_straight() {
        let frames = [leg(0.0, 0.1), leg(1.0, 0.9), leg(0.0, 0.1), leg(0.0, 0.9)];
        let m = FeatureMatrix::from_keypoints(frames.iter().map(|f| &f[..]));
        assert_eq!(m.len(), 4);
        let col: Vec<f32> = m.rows.iter().map(|r| r[0]).collect();
        assert_eq!(col[0], 180.0, "nothing valid yet");
        assert!((col[1] - 90.0).abs() < 1e-3);
        assert_eq!(col[2], col[1], "carried forward");
        assert!((col[3] - 180.0).abs() < 1e-3);
        // Joints never seen stay at 180.
        assert!(m.rows.iter().all(|r| r[2] == 180.0));
        let ranges = m.ranges().unwrap();
        assert!((ranges[0].0 - 90.0).abs() < 1e-3 && (ranges[0].1 - 180.0).abs() < 1e-3);
    }

    #[test]
    fn motion_weighs_the_joints_that_move_and_ignores_a_spike() {
        // The knees swing 90°, the elbows 30°, the hips hold still but for one flicker.
        let rows: Vec<[f32; 6]> = (0..40)
            .map(|i| {
                let phase = (i as f32 / 39.0 * std::f32::consts::PI).sin();
                let hip = if i == 20 { 90.0 } else { 170.0 };
                [180.0 - 90.0 * phase, 180.0 - 90.0 * phase, 160.0 - 30.0 * phase, 160.0 - 30.0 * phase, hip, hip]
            })
            .collect();
        let w = FeatureMatrix { rows }.motion();
        assert!((w[0] - 1.0).abs() < 1e-3 && (w[1] - 1.0).abs() < 1e-3, "{w:?}");
        assert!((w[2] - 1.0 / 3.0).abs() < 0.02, "{w:?}");
        assert_eq!((w[4], w[5]), (MIN_MOTION_WEIGHT, MIN_MOTION_WEIGHT), "a one-frame spike is no motion");
        // Nothing moving: every joint counts alike.
        assert_eq!(FeatureMatrix { rows: vec![[170.0; 6]; 5] }.motion(), [1.0; 6]);
        assert_eq!(FeatureMatrix::default().motion(), [1.0; 6]);
    }

    #[test]
    fn empty_input_gives_empty_matrix() {
        let m = FeatureMatrix::from_keypoints(std::iter::empty());
        assert!(m.is_empty());
        assert_eq!(m.ranges(), None);
    }
}
