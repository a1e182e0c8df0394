//! The types every stage shares: a person's box, score and 17 COCO keypoints, the names and
//! the skeleton — light (no model, no runtime), so the sets, features and gateway crates need
//! not link the pose engine. [`proto`] (feature `proto`) is their one wire conversion.

#[cfg(feature = "proto")]
pub mod proto;

/// Number of keypoints in the COCO-17 skeleton that YOLO-pose predicts.
pub const NUM_KEYPOINTS: usize = 17;

/// COCO-17 keypoint names, in the model's output order (odd indices are the left side).
pub const KEYPOINT_NAMES: [&str; NUM_KEYPOINTS] = [
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
];

/// Bones drawn for a skeleton overlay, as pairs of keypoint indices.
pub const SKELETON: [(usize, usize); 16] = [
    (15, 13),
    (13, 11),
    (16, 14),
    (14, 12),
    (11, 12),
    (5, 11),
    (6, 12),
    (5, 6),
    (5, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (1, 2),
    (0, 1),
    (0, 2),
    (1, 3),
];

/// A keypoint in source-image pixels with the model's visibility confidence (0..1).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Keypoint {
    pub x: f32,
    pub y: f32,
    pub confidence: f32,
}

/// An axis-aligned box in source-image pixels, corners `(x1, y1)` top-left and `(x2, y2)` bottom-right.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    /// Returns the area, zero for a degenerate box.
    pub fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    /// Returns intersection over union, as torchvision's `box_iou` computes it (no +1 on sides).
    pub fn iou(&self, other: &BBox) -> f32 {
        let iw = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let ih = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = iw * ih;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
}

/// One detected person.
#[derive(Debug, Clone, PartialEq)]
pub struct Pose {
    pub bbox: BBox,
    pub score: f32,
    pub keypoints: [Keypoint; NUM_KEYPOINTS],
}
