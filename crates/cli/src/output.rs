//! The `pump detect` line format, a contract other tools read:
//! `{"frame":0,"ts":0.0,"shape":[H,W],"poses":[{"box":[x1,y1,x2,y2],"score":s,"keypoints":[[x,y,c],…]}]}`
//! plus `"source"` when several sources are given.

use pump_pose::Pose;
use serde::Serialize;

/// One frame's line.
#[derive(Debug, Serialize)]
pub struct FrameLine<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'a str>,
    pub frame: u64,
    pub ts: f64,
    pub shape: [usize; 2],
    pub poses: Vec<PoseJson>,
}

#[derive(Debug, Serialize)]
pub struct PoseJson {
    #[serde(rename = "box")]
    pub bbox: [f64; 4],
    pub score: f64,
    pub keypoints: Vec<[f64; 3]>,
}

/// Rounds for print: pixels to 1/100, confidences to 1/10 000 — far below model noise, and
/// the lines stay short.
fn round(v: f32, decimals: i32) -> f64 {
    let m = 10f64.powi(decimals);
    (v as f64 * m).round() / m
}

impl From<&Pose> for PoseJson {
    fn from(p: &Pose) -> Self {
        let b = &p.bbox;
        Self {
            bbox: [round(b.x1, 2), round(b.y1, 2), round(b.x2, 2), round(b.y2, 2)],
            score: round(p.score, 4),
            keypoints: p.keypoints.iter().map(|k| [round(k.x, 2), round(k.y, 2), round(k.confidence, 4)]).collect(),
        }
    }
}

impl<'a> FrameLine<'a> {
    pub fn new(source: Option<&'a str>, frame: u64, ts: f64, height: usize, width: usize, poses: &[Pose]) -> Self {
        Self {
            source,
            frame,
            ts: (ts * 1e6).round() / 1e6,
            shape: [height, width],
            poses: poses.iter().map(PoseJson::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pump_pose::{BBox, Keypoint};

    #[test]
    fn line_matches_the_contract() {
        let pose = Pose {
            bbox: BBox { x1: 1.004, y1: 2.0, x2: 3.0, y2: 4.0 },
            score: 0.88712,
            keypoints: [Keypoint { x: 5.0, y: 6.0, confidence: 0.5 }; 17],
        };
        let line = serde_json::to_string(&FrameLine::new(None, 0, 0.0, 720, 1280, &[pose])).unwrap();
        assert!(line.starts_with(r#"{"frame":0,"ts":0.0,"shape":[720,1280],"poses":[{"box":[1.0,2.0,3.0,4.0],"score":0.8871,"keypoints":[[5.0,6.0,0.5],"#));
        let with_source = serde_json::to_string(&FrameLine::new(Some("a.mp4"), 3, 0.2, 1, 2, &[])).unwrap();
        assert_eq!(with_source, r#"{"source":"a.mp4","frame":3,"ts":0.2,"shape":[1,2],"poses":[]}"#);
    }
}
