//! Which person is the athlete: the largest, most central, most confident person when the
//! track starts, then whoever overlaps the last athlete box most, so a bystander walking through
//! never steals the count.

use pump_pose::{BBox, Pose};

/// Overlap with the last athlete box needed to stay the athlete.
const MIN_TRACK_IOU: f32 = 0.3;
/// Frames without a match before the athlete is picked afresh.
const MAX_LOST_FRAMES: usize = 30;

#[derive(Debug, Clone, Default)]
pub struct AthleteTracker {
    last: Option<BBox>,
    lost: usize,
}

/// How athlete-like a person is: area share (square-rooted, so size does not swamp the rest) ×
/// closeness to the frame centre × score.
fn athlete_score(p: &Pose, width: f32, height: f32) -> f32 {
    let b = &p.bbox;
    let area = (b.area() / (width * height).max(1.0)).clamp(0.0, 1.0);
    let (cx, cy) = ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
    let (dx, dy) = ((cx - width / 2.0) / (width / 2.0).max(1.0), (cy - height / 2.0) / (height / 2.0).max(1.0));
    let centrality = (1.0 - (dx * dx + dy * dy).sqrt() / std::f32::consts::SQRT_2).clamp(0.0, 1.0);
    area.sqrt() * (0.25 + 0.75 * centrality) * p.score
}

impl AthleteTracker {
    /// Picks the athlete among `poses` of a `width`×`height` frame; `None` when not visible.
    pub fn pick<'a>(&mut self, poses: &'a [Pose], width: f32, height: f32) -> Option<&'a Pose> {
        if let Some(last) = self.last.filter(|_| self.lost <= MAX_LOST_FRAMES) {
            let best = poses
                .iter()
                .map(|p| (p.bbox.iou(&last), p))
                .filter(|(iou, _)| *iou >= MIN_TRACK_IOU)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((_, p)) = best {
                self.last = Some(p.bbox);
                self.lost = 0;
                return Some(p);
            }
            self.lost += 1;
            if self.lost <= MAX_LOST_FRAMES {
                return None;
            }
        }
        let p =
            poses.iter().max_by(|a, b| athlete_score(a, width, height).total_cmp(&athlete_score(b, width, height)))?;
        self.last = Some(p.bbox);
        self.lost = 0;
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pump_pose::Keypoint;

    fn person(x1: f32, y1: f32, x2: f32, y2: f32, score: f32) -> Pose {
        Pose { bbox: BBox { x1, y1, x2, y2 }, score, keypoints: [Keypoint::default(); 17] }
    }

    #[test]
    fn picks_the_large_central_confident_person() {
        let mut t = AthleteTracker::default();
        let poses = [
            person(0.0, 0.0, 40.0, 80.0, 0.9),
            person(300.0, 100.0, 500.0, 500.0, 0.85),
            person(600.0, 0.0, 640.0, 60.0, 0.95),
        ];
        assert_eq!(t.pick(&poses, 800.0, 600.0).unwrap().bbox.x1, 300.0);
    }

    #[test]
    fn a_bystander_walking_through_does_not_steal_the_track() {
        let mut t = AthleteTracker::default();
        let athlete = person(300.0, 100.0, 500.0, 500.0, 0.8);
        t.pick(std::slice::from_ref(&athlete), 800.0, 600.0);
        // A bigger, more central, more confident bystander crosses in front.
        for step in 0..20 {
            let x = 100.0 + step as f32 * 30.0;
            let bystander = person(x, 50.0, x + 260.0, 580.0, 0.95);
            let both = [bystander, athlete.clone()];
            let got = t.pick(&both, 800.0, 600.0).unwrap();
            assert_eq!(got.bbox, athlete.bbox, "step {step}");
        }
    }

    #[test]
    fn a_lost_athlete_is_picked_afresh_after_a_while() {
        let mut t = AthleteTracker::default();
        t.pick(&[person(0.0, 0.0, 100.0, 200.0, 0.9)], 800.0, 600.0);
        let elsewhere = [person(500.0, 300.0, 600.0, 500.0, 0.9)];
        for _ in 0..MAX_LOST_FRAMES {
            assert!(t.pick(&elsewhere, 800.0, 600.0).is_none());
        }
        assert!(t.pick(&elsewhere, 800.0, 600.0).is_some());
        assert!(t.pick(&[], 800.0, 600.0).is_none());
    }
}
