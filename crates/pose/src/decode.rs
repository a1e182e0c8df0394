//! Post-processing as Ultralytics' `non_max_suppression` + `scale_boxes`/`scale_coords` do it for
//! a single-class pose model: confidence filter, centre boxes to corners, class-agnostic NMS in
//! score order, at most `max_det` people, then back to source pixels, clipped.

use crate::letterbox::Letterbox;
use crate::types::{BBox, Keypoint, Pose, NUM_KEYPOINTS};

/// Channel layout of one anchor in the (N, 56, A) output: where each quantity lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLayout {
    /// Row of the box centre x; cy, w, h follow.
    pub box_cx: usize,
    /// Row of the person score (already a sigmoid in the export).
    pub score: usize,
    /// Row of the first keypoint's x; each keypoint has (x, y, visibility).
    pub keypoints: usize,
    /// Rows per anchor.
    pub channels: usize,
}

impl OutputLayout {
    /// YOLO-pose with one class and COCO-17 keypoints: 4 + 1 + 17 × 3 = 56 rows.
    pub const YOLO_POSE: Self = Self { box_cx: 0, score: 4, keypoints: 5, channels: 5 + NUM_KEYPOINTS * 3 };
}

/// Thresholds, with Ultralytics' predictor defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeConfig {
    /// Minimum person score; strictly greater passes.
    pub conf: f32,
    /// NMS IoU above which the lower-scored box is dropped.
    pub iou: f32,
    /// At most this many people per image.
    pub max_det: usize,
    /// Candidates kept (best first) before NMS.
    pub max_nms: usize,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        Self { conf: 0.25, iou: 0.7, max_det: 300, max_nms: 30_000 }
    }
}

/// Reusable candidate buffers.
#[derive(Debug, Default)]
pub struct Decoder {
    candidates: Vec<(f32, usize, BBox)>,
    kept: Vec<usize>,
}

impl Decoder {
    /// Decodes one image's output, `rows` laid out as (`layout.channels`, `anchors`), into people
    /// in source pixels, best first.
    pub fn decode(
        &mut self,
        rows: &[f32],
        anchors: usize,
        layout: OutputLayout,
        cfg: &DecodeConfig,
        lb: &Letterbox,
    ) -> Vec<Pose> {
        debug_assert_eq!(rows.len(), layout.channels * anchors);
        let at = |row: usize, a: usize| rows[row * anchors + a];
        let scores = &rows[layout.score * anchors..(layout.score + 1) * anchors];
        self.candidates.clear();
        for (a, &s) in scores.iter().enumerate() {
            if s > cfg.conf {
                let (cx, cy) = (at(layout.box_cx, a), at(layout.box_cx + 1, a));
                let (w, h) = (at(layout.box_cx + 2, a), at(layout.box_cx + 3, a));
                let (hw, hh) = (w / 2.0, h / 2.0);
                self.candidates.push((s, a, BBox { x1: cx - hw, y1: cy - hh, x2: cx + hw, y2: cy + hh }));
            }
        }
        // Stable sort: equal scores keep anchor order, so runs are reproducible.
        self.candidates.sort_by(|x, y| y.0.total_cmp(&x.0));
        self.candidates.truncate(cfg.max_nms);
        nms(&self.candidates, cfg.iou, cfg.max_det, &mut self.kept);

        let map = lb.mapper();
        self.kept
            .iter()
            .map(|&i| {
                let (score, a, b) = self.candidates[i];
                let (x1, y1) = map(b.x1, b.y1);
                let (x2, y2) = map(b.x2, b.y2);
                let mut keypoints = [Keypoint::default(); NUM_KEYPOINTS];
                for (k, kp) in keypoints.iter_mut().enumerate() {
                    let r = layout.keypoints + 3 * k;
                    let (x, y) = map(at(r, a), at(r + 1, a));
                    *kp = Keypoint { x, y, confidence: at(r + 2, a) };
                }
                Pose { bbox: BBox { x1, y1, x2, y2 }, score, keypoints }
            })
            .collect()
    }
}

/// Greedy NMS over candidates sorted best first (torchvision semantics: drop when IoU > `iou`).
/// Writes the indices kept, at most `max_det`, into `kept`.
fn nms(sorted: &[(f32, usize, BBox)], iou: f32, max_det: usize, kept: &mut Vec<usize>) {
    kept.clear();
    for (i, (_, _, b)) in sorted.iter().enumerate() {
        if kept.len() == max_det {
            break;
        }
        if kept.iter().all(|&k| sorted[k].2.iou(b) <= iou) {
            kept.push(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: OutputLayout = OutputLayout::YOLO_POSE;

    /// Builds a (56, A) output with the given anchors: (cx, cy, w, h, score), keypoints at the centre.
    fn output(anchors: &[(f32, f32, f32, f32, f32)]) -> Vec<f32> {
        let a = anchors.len();
        let mut rows = vec![0.0; L.channels * a];
        for (i, &(cx, cy, w, h, s)) in anchors.iter().enumerate() {
            for (r, v) in [cx, cy, w, h, s].into_iter().enumerate() {
                rows[r * a + i] = v;
            }
            for k in 0..NUM_KEYPOINTS {
                rows[(L.keypoints + 3 * k) * a + i] = cx;
                rows[(L.keypoints + 3 * k + 1) * a + i] = cy;
                rows[(L.keypoints + 3 * k + 2) * a + i] = 0.9;
            }
        }
        rows
    }

    fn identity() -> Letterbox {
        Letterbox::plan(640, 640, 640, 640, true, 32)
    }

    #[test]
    fn zero_detections_give_no_people() {
        let rows = output(&[(10.0, 10.0, 5.0, 5.0, 0.1), (50.0, 50.0, 5.0, 5.0, 0.25)]);
        let out = Decoder::default().decode(&rows, 2, L, &DecodeConfig::default(), &identity());
        assert!(out.is_empty(), "scores at or under conf must not pass");
    }

    #[test]
    fn overlapping_detections_collapse_to_the_best() {
        let mut anchors = vec![];
        for i in 0..50 {
            anchors.push((100.0 + i as f32 * 0.2, 100.0, 80.0, 160.0, 0.3 + i as f32 * 0.01));
        }
        anchors.push((400.0, 300.0, 60.0, 120.0, 0.5));
        let rows = output(&anchors);
        let out = Decoder::default().decode(&rows, anchors.len(), L, &DecodeConfig::default(), &identity());
        assert_eq!(out.len(), 2);
        assert!((out[0].score - 0.79).abs() < 1e-6);
        assert!((out[1].score - 0.5).abs() < 1e-6);
        assert_eq!(out[1].bbox, BBox { x1: 370.0, y1: 240.0, x2: 430.0, y2: 360.0 });
    }

    #[test]
    fn iou_exactly_at_threshold_is_kept() {
        // A 10×10 box and its top half: IoU = 50 / 100 = 0.5 exactly in binary floating point.
        let a = (5.0, 5.0, 10.0, 10.0, 0.9);
        let b = (5.0, 2.5, 10.0, 5.0, 0.8);
        let rows = output(&[a, b]);
        let cfg = DecodeConfig { iou: 0.5, ..Default::default() };
        let out = Decoder::default().decode(&rows, 2, L, &cfg, &identity());
        assert_eq!(out.len(), 2);
        let cfg = DecodeConfig { iou: 0.49, ..Default::default() };
        assert_eq!(Decoder::default().decode(&rows, 2, L, &cfg, &identity()).len(), 1);
    }

    #[test]
    fn max_det_caps_people() {
        let anchors: Vec<_> = (0..20).map(|i| (i as f32 * 30.0 + 15.0, 20.0, 10.0, 10.0, 0.9)).collect();
        let rows = output(&anchors);
        let cfg = DecodeConfig { max_det: 7, ..Default::default() };
        assert_eq!(Decoder::default().decode(&rows, 20, L, &cfg, &identity()).len(), 7);
    }

    #[test]
    fn boxes_and_keypoints_map_back_and_clip() {
        // zidane: 1280×720 in a 640×384 input, pad 12 rows above.
        let lb = Letterbox::plan(1280, 720, 640, 640, true, 32);
        let mut rows = output(&[(320.0, 192.0, 100.0, 400.0, 0.8)]);
        // A keypoint outside the image (in the padding, beyond the right edge).
        rows[L.keypoints] = 700.0; // one anchor: row r sits at index r
        rows[L.keypoints + 1] = 2.0;
        let out = Decoder::default().decode(&rows, 1, L, &DecodeConfig::default(), &lb);
        let p = &out[0];
        assert_eq!((p.bbox.x1, p.bbox.x2), (540.0, 740.0));
        assert_eq!((p.bbox.y1, p.bbox.y2), (0.0, 720.0), "box clipped to the image");
        assert_eq!((p.keypoints[0].x, p.keypoints[0].y), (1280.0, 0.0));
        assert_eq!((p.keypoints[1].x, p.keypoints[1].y), (640.0, 360.0));
        assert!((p.keypoints[1].confidence - 0.9).abs() < 1e-6);
    }
}
