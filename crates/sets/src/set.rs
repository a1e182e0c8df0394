//! Sets: idle → repping → closed after `quiet` seconds without a rep (or at end of stream).
//!
//! Each frame, the athlete is picked, and the angles of the three joint families (knee, hip,
//! elbow) are fed to one rep counter each, on the side of the body the camera sees better. The
//! configured exercise says which family counts; without one, the exercise is recognised from the
//! set's features with the prototypes when there are some, otherwise the family with the most
//! reps counts and the exercise is `unknown`.

use std::collections::VecDeque;

use pump_features::angle::pose_joint_angle;
use pump_features::{
    driving_joint, exercise_distances, nearest, DtwConfig, FeatureMatrix, Joint, Prototype, MIN_KEYPOINT_CONFIDENCE,
};
use pump_pose::{Keypoint, Pose, NUM_KEYPOINTS};

use crate::athlete::AthleteTracker;
use crate::reps::{Rep, RepConfig, RepCounter};

/// Sets with fewer reps, or a less sure exercise, are flagged for the athlete to confirm.
const PENDING_MIN_REPS: usize = 3;
const PENDING_MIN_CONFIDENCE: f32 = 0.75;
/// Frames kept before a set starts, so its features begin at the first rep's start.
const PRE_ROLL_SECONDS: f64 = 10.0;

#[derive(Debug, Clone)]
pub struct SetConfig {
    pub reps: RepConfig,
    /// Seconds without a rep that close a set.
    pub quiet: f64,
    /// The exercise, when the athlete said what it is.
    pub exercise: Option<String>,
    pub prototypes: Vec<Prototype>,
}

impl Default for SetConfig {
    fn default() -> Self {
        Self { reps: RepConfig::default(), quiet: 25.0, exercise: None, prototypes: Vec::new() }
    }
}

/// One frame's poses.
#[derive(Debug, Clone, Copy)]
pub struct FrameInput<'a> {
    pub t: f64,
    pub frame: u64,
    pub width: f32,
    pub height: f32,
    pub poses: &'a [Pose],
}

/// A closed set.
#[derive(Debug, Clone, PartialEq)]
pub struct SetEvent {
    pub camera: String,
    /// Stable for the same input (camera, first frame, start time), unique per set.
    pub set_id: String,
    pub start: f64,
    pub end: f64,
    pub start_frame: u64,
    pub end_frame: u64,
    pub reps: usize,
    /// Time of each rep's deepest point.
    pub rep_times: Vec<f64>,
    pub exercise: String,
    pub confidence: f32,
    pub features: FeatureMatrix,
    /// Time of each feature row.
    pub feature_times: Vec<f64>,
    /// (start, end) of each rep.
    pub rep_spans: Vec<(f64, f64)>,
    pub pending: bool,
}

impl SetEvent {
    /// The feature rows of rep `i` (0-based): a reference rep for a prototype.
    pub fn rep_features(&self, i: usize) -> Option<FeatureMatrix> {
        let (start, end) = *self.rep_spans.get(i)?;
        Some(rows_between(&self.features, &self.feature_times, start, end))
    }
}

/// The rows of `m` whose time (in `times`) lies within `start..=end`.
fn rows_between(m: &FeatureMatrix, times: &[f64], start: f64, end: f64) -> FeatureMatrix {
    FeatureMatrix {
        rows: m.rows.iter().zip(times).filter(|(_, t)| **t >= start && **t <= end).map(|(r, _)| *r).collect(),
    }
}

/// What a frame produced.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackerEvent {
    /// The live count of the set in progress went up.
    Rep {
        set_id: String,
        reps: usize,
        t: f64,
    },
    Closed(SetEvent),
}

/// The three joint families, by their left-side joint.
const FAMILIES: [Joint; 3] = [Joint::LeftKnee, Joint::LeftHip, Joint::LeftElbow];

#[derive(Debug, Clone)]
struct FrameRecord {
    t: f64,
    frame: u64,
    keypoints: Option<[Keypoint; NUM_KEYPOINTS]>,
}

#[derive(Debug, Clone)]
struct OpenSet {
    set_id: String,
    start: f64,
    /// Reps of each family already counted when the set opened are not this set's.
    base: [usize; 3],
    last_rep_t: f64,
    live: usize,
}

/// Follows one camera.
#[derive(Debug)]
pub struct SetTracker {
    camera: String,
    cfg: SetConfig,
    athlete: AthleteTracker,
    counters: Vec<RepCounter>,
    /// Running visibility of each family's left and right joints (exponential average).
    visibility: [[f32; 2]; 3],
    frames: VecDeque<FrameRecord>,
    open: Option<OpenSet>,
}

fn visibility(kps: &[Keypoint], joint: Joint) -> f32 {
    let (a, b, c) = joint.keypoints();
    kps[a].confidence.min(kps[b].confidence).min(kps[c].confidence)
}

impl SetTracker {
    pub fn new(camera: impl Into<String>, cfg: SetConfig) -> Self {
        let counters = FAMILIES.iter().map(|_| RepCounter::new(cfg.reps)).collect();
        Self {
            camera: camera.into(),
            cfg,
            athlete: AthleteTracker::default(),
            counters,
            visibility: [[0.0; 2]; 3],
            frames: VecDeque::new(),
            open: None,
        }
    }

    /// Families that may open or extend a set: the configured exercise's, or all.
    fn active_families(&self) -> Vec<usize> {
        match &self.cfg.exercise {
            Some(e) => {
                let j = driving_joint(e);
                FAMILIES.iter().position(|f| *f == j).into_iter().collect()
            }
            None => (0..FAMILIES.len()).collect(),
        }
    }

    /// Feeds one frame; returns the rep and set events it caused.
    pub fn push(&mut self, input: FrameInput<'_>) -> Vec<TrackerEvent> {
        let mut events = Vec::new();
        // A set whose quiet time passed closes before anything else: a long-silent first tick
        // closes it at once.
        if self.open.as_ref().is_some_and(|s| input.t - s.last_rep_t >= self.cfg.quiet) {
            if let Some(e) = self.close() {
                events.push(TrackerEvent::Closed(e));
            }
        }
        let athlete = self.athlete.pick(input.poses, input.width, input.height).map(|p| p.keypoints);
        self.frames.push_back(FrameRecord { t: input.t, frame: input.frame, keypoints: athlete });
        if self.open.is_none() {
            while self.frames.front().is_some_and(|f| input.t - f.t > PRE_ROLL_SECONDS) {
                self.frames.pop_front();
            }
        }
        let mut new_rep: Option<Rep> = None;
        let active = self.active_families();
        for (fi, family) in FAMILIES.iter().enumerate() {
            let angle = athlete.as_ref().and_then(|kps| {
                let sides = [*family, family.mirrored()];
                for (si, side) in sides.iter().enumerate() {
                    let v = &mut self.visibility[fi][si];
                    *v = 0.9 * *v + 0.1 * visibility(kps, *side);
                }
                // The side the camera sees better over time, not frame by frame.
                let side = if self.visibility[fi][1] > self.visibility[fi][0] { sides[1] } else { sides[0] };
                pose_joint_angle(kps, side, MIN_KEYPOINT_CONFIDENCE)
            });
            if let Some(rep) = self.counters[fi].push(input.t, angle) {
                if active.contains(&fi) && new_rep.is_none_or(|r| rep.bottom < r.bottom) {
                    new_rep = Some(rep);
                }
            }
        }
        if let Some(rep) = new_rep {
            let base: [usize; 3] = std::array::from_fn(|i| self.counters[i].count());
            let open = self.open.get_or_insert_with(|| {
                let start_frame = self.frames.iter().find(|f| f.t >= rep.start).map(|f| f.frame).unwrap_or(input.frame);
                OpenSet {
                    set_id: format!("{}-{}-{}", self.camera, start_frame, (rep.start * 1000.0).round() as i64),
                    start: rep.start,
                    // This rep belongs to the new set: count from just before it.
                    base: std::array::from_fn(|i| {
                        base[i].saturating_sub(usize::from(
                            self.counters[i].reps().last().is_some_and(|r| r.bottom >= rep.start),
                        ))
                    }),
                    last_rep_t: rep.bottom,
                    live: 0,
                }
            });
            open.last_rep_t = open.last_rep_t.max(rep.bottom);
            let live = active.iter().map(|&i| self.counters[i].count() - open.base[i]).max().unwrap_or(0);
            if live > open.live {
                open.live = live;
                events.push(TrackerEvent::Rep { set_id: open.set_id.clone(), reps: live, t: rep.bottom });
            }
        }
        events
    }

    /// The earliest frame time the tracker's state still depends on: replaying from there
    /// rebuilds it exactly (the sets service checkpoints this to resume after a restart).
    pub fn earliest_needed(&self) -> Option<f64> {
        self.frames.front().map(|f| f.t)
    }

    /// Whether a set is in progress.
    pub fn in_set(&self) -> bool {
        self.open.is_some()
    }

    /// Ends the stream: closes the set in progress, if any.
    pub fn finish(&mut self) -> Option<SetEvent> {
        self.close()
    }

    fn close(&mut self) -> Option<SetEvent> {
        let open = self.open.take()?;
        let family_reps: Vec<Vec<Rep>> =
            self.counters.iter().zip(open.base).map(|(c, b)| c.reps().get(b..).unwrap_or(&[]).to_vec()).collect();
        // Which family counts.
        let (mut exercise, mut confidence) = match &self.cfg.exercise {
            Some(e) => (e.clone(), 1.0),
            None => ("unknown".to_string(), 0.0),
        };
        let end_guess = family_reps.iter().flatten().map(|r| r.end).fold(open.start, f64::max);
        let frames: Vec<&FrameRecord> = self.frames.iter().filter(|f| f.t >= open.start && f.t <= end_guess).collect();
        let features =
            FeatureMatrix::from_keypoints(frames.iter().filter_map(|f| f.keypoints.as_ref().map(|k| &k[..])));
        let feature_times: Vec<f64> = frames.iter().filter(|f| f.keypoints.is_some()).map(|f| f.t).collect();
        if self.cfg.exercise.is_none() && !self.cfg.prototypes.is_empty() {
            // Prototypes are single reps: compare rep to rep (on the busiest family's reps, or the
            // whole set when none), averaging each exercise's distance over the reps.
            let busiest = (0..FAMILIES.len()).rev().max_by_key(|&i| family_reps[i].len()).unwrap_or(0);
            let mut queries: Vec<FeatureMatrix> = family_reps[busiest]
                .iter()
                .map(|r| rows_between(&features, &feature_times, r.start, r.end))
                .filter(|m| !m.is_empty())
                .collect();
            if queries.is_empty() {
                queries.push(features.clone());
            }
            let mut totals: Vec<(String, f32)> = Vec::new();
            for q in &queries {
                for (e, d) in exercise_distances(q, &self.cfg.prototypes, &DtwConfig::default()) {
                    match totals.iter_mut().find(|(x, _)| *x == e) {
                        Some((_, sum)) => *sum += d / queries.len() as f32,
                        None => totals.push((e, d / queries.len() as f32)),
                    }
                }
            }
            if let Some(c) = nearest(&totals) {
                exercise = c.exercise;
                confidence = c.confidence;
            }
        }
        let family = if exercise != "unknown" {
            let j = driving_joint(&exercise);
            FAMILIES.iter().position(|f| *f == j).unwrap_or(0)
        } else {
            // Most reps; ties go to the earlier family (knee, then hip, then elbow).
            (0..FAMILIES.len()).rev().max_by_key(|&i| family_reps[i].len()).unwrap_or(0)
        };
        let reps = &family_reps[family];
        let end = reps.last().map(|r| r.end).unwrap_or(end_guess);
        let in_set = |f: &&FrameRecord| f.t >= open.start && f.t <= end;
        let start_frame = self.frames.iter().find(|f| in_set(f)).map(|f| f.frame).unwrap_or(0);
        let end_frame = self.frames.iter().rev().find(in_set).map(|f| f.frame).unwrap_or(start_frame);
        let n = reps.len();
        // Frames up to the set's end are done with; later ones may start the next set.
        self.frames.retain(|f| f.t > end);
        Some(SetEvent {
            camera: self.camera.clone(),
            set_id: open.set_id,
            start: open.start,
            end,
            start_frame,
            end_frame,
            reps: n,
            rep_times: reps.iter().map(|r| r.bottom).collect(),
            rep_spans: reps.iter().map(|r| (r.start, r.end)).collect(),
            exercise,
            confidence,
            features,
            feature_times,
            pending: n < PENDING_MIN_REPS || confidence < PENDING_MIN_CONFIDENCE,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pump_pose::BBox;

    /// A standing person whose left and right knees bend to `knee` degrees.
    fn person(knee: f32) -> Pose {
        let mut k = [Keypoint { x: 0.0, y: 0.0, confidence: 0.9 }; NUM_KEYPOINTS];
        let rad = (180.0 - knee).to_radians();
        for (hip, kn, ankle, x0) in [(11, 13, 15, 100.0f32), (12, 14, 16, 140.0)] {
            k[hip] = Keypoint { x: x0, y: 200.0, confidence: 0.9 };
            k[kn] = Keypoint { x: x0, y: 300.0, confidence: 0.9 };
            k[ankle] = Keypoint { x: x0 + 100.0 * rad.sin(), y: 300.0 + 100.0 * rad.cos(), confidence: 0.9 };
        }
        // Shoulders and arms still: only the knee and hip move.
        k[5] = Keypoint { x: 100.0, y: 100.0, confidence: 0.9 };
        k[6] = Keypoint { x: 140.0, y: 100.0, confidence: 0.9 };
        Pose { bbox: BBox { x1: 80.0, y1: 50.0, x2: 260.0, y2: 420.0 }, score: 0.9, keypoints: k }
    }

    /// Knee angle at time t for `reps` 2-s squats starting at `from`.
    fn knee_at(t: f64, from: f64, reps: usize) -> f32 {
        let x = t - from;
        if x < 0.0 || x > reps as f64 * 2.0 {
            175.0
        } else {
            175.0 - 85.0 * (0.5 - 0.5 * (x / 2.0 * std::f64::consts::TAU).cos()) as f32
        }
    }

    fn run(
        tracker: &mut SetTracker,
        from_frame: u64,
        frames: u64,
        fps: f64,
        knee: impl Fn(f64) -> f32,
    ) -> Vec<TrackerEvent> {
        let mut events = Vec::new();
        for i in from_frame..from_frame + frames {
            let t = i as f64 / fps;
            let p = [person(knee(t))];
            events.extend(tracker.push(FrameInput { t, frame: i, width: 400.0, height: 500.0, poses: &p }));
        }
        events
    }

    fn closed(events: &[TrackerEvent]) -> Vec<SetEvent> {
        events.iter().filter_map(|e| if let TrackerEvent::Closed(s) = e { Some(s.clone()) } else { None }).collect()
    }

    fn squat_cfg(quiet: f64) -> SetConfig {
        SetConfig { quiet, exercise: Some("squat".into()), ..Default::default() }
    }

    #[test]
    fn set_closes_after_quiet_seconds_with_live_counts_on_the_way() {
        let mut t = SetTracker::new("cam", squat_cfg(5.0));
        // 4 reps from t=1, then standing until t=20.
        let events = run(&mut t, 0, 300, 15.0, |t| knee_at(t, 1.0, 4));
        let live: Vec<usize> = events
            .iter()
            .filter_map(|e| if let TrackerEvent::Rep { reps, .. } = e { Some(*reps) } else { None })
            .collect();
        assert_eq!(live, vec![1, 2, 3, 4]);
        let sets = closed(&events);
        assert_eq!(sets.len(), 1);
        let s = &sets[0];
        assert_eq!(s.reps, 4);
        assert_eq!(s.rep_times.len(), 4);
        assert!((s.start - 1.0).abs() < 0.3 && (s.end - 9.0).abs() < 0.5, "{} .. {}", s.start, s.end);
        assert!(!s.pending);
        assert!(s.features.len() > 100);
        assert_eq!(s.feature_times.len(), s.features.len());
        let first = s.rep_features(0).unwrap();
        assert!((20..=40).contains(&first.len()), "one 2-s rep at 15 fps: {}", first.len());
        assert!(s.rep_features(4).is_none());
        assert!(t.finish().is_none(), "nothing left open");
    }

    #[test]
    fn two_sets_separated_by_rest_and_the_last_one_closes_at_end_of_stream() {
        let mut t = SetTracker::new("cam", squat_cfg(5.0));
        // 30 s: the second set's last rep is under 5 s before the end, so it is still open.
        let mut events = run(&mut t, 0, 450, 15.0, |t| knee_at(t, 1.0, 3).min(knee_at(t, 25.0, 2)));
        let sets = closed(&events);
        assert_eq!(sets.iter().map(|s| s.reps).collect::<Vec<_>>(), vec![3]);
        // The second set (2 reps) is still open when the stream ends.
        let last = t.finish().unwrap();
        assert_eq!(last.reps, 2);
        assert!(last.pending, "fewer than 3 reps is pending");
        assert_ne!(last.set_id, sets[0].set_id);
        events.clear();
    }

    #[test]
    fn a_knee_the_camera_cannot_see_counts_on_the_other_side() {
        let mut t = SetTracker::new("cam", squat_cfg(5.0));
        let mut events = Vec::new();
        for i in 0..150u64 {
            let time = i as f64 / 15.0;
            let mut p = person(knee_at(time, 1.0, 4));
            // Baggy trousers: the left knee is a guess the model is unsure of, and it wanders.
            p.keypoints[13].confidence = 0.15;
            p.keypoints[13].x += ((i * 37) % 23) as f32;
            events.extend(t.push(FrameInput { t: time, frame: i, width: 400.0, height: 500.0, poses: &[p] }));
        }
        let s = closed(&events).pop().or_else(|| t.finish()).unwrap();
        assert_eq!(s.reps, 4);
    }

    #[test]
    fn a_bystander_walking_through_mid_set_does_not_change_the_count() {
        let mut t = SetTracker::new("cam", squat_cfg(5.0));
        let mut events = Vec::new();
        for i in 0..150u64 {
            let time = i as f64 / 15.0;
            let athlete = person(knee_at(time, 1.0, 4));
            // A bigger, more confident person walks across in front, knees bending as they go.
            let x = -300.0 + i as f32 * 8.0;
            let mut walker = person(if i % 10 < 5 { 120.0 } else { 175.0 });
            walker.bbox = BBox { x1: x, y1: 20.0, x2: x + 260.0, y2: 490.0 };
            walker.score = 0.97;
            let poses = if (40..110).contains(&i) { vec![walker, athlete] } else { vec![athlete] };
            events.extend(t.push(FrameInput { t: time, frame: i, width: 400.0, height: 500.0, poses: &poses }));
        }
        let s = closed(&events).pop().or_else(|| t.finish()).unwrap();
        assert_eq!(s.reps, 4);
    }

    #[test]
    fn a_long_quiet_first_tick_closes_at_once() {
        let mut t = SetTracker::new("cam", squat_cfg(25.0));
        let events = run(&mut t, 0, 150, 15.0, |t| knee_at(t, 1.0, 3));
        assert!(closed(&events).is_empty());
        // The camera was silent for a minute; its next frame closes the set before anything else.
        let p = [person(175.0)];
        let ev = t.push(FrameInput { t: 70.0, frame: 1050, width: 400.0, height: 500.0, poses: &p });
        assert_eq!(closed(&ev).len(), 1);
        assert_eq!(closed(&ev)[0].reps, 3);
    }

    #[test]
    fn unknown_exercise_counts_on_the_busiest_joint_and_is_pending() {
        let mut t = SetTracker::new("cam", SetConfig { quiet: 5.0, ..Default::default() });
        run(&mut t, 0, 150, 15.0, |t| knee_at(t, 1.0, 4));
        let s = t.finish().unwrap();
        assert_eq!(s.reps, 4);
        assert_eq!(s.exercise, "unknown");
        assert!(s.pending);
    }

    #[test]
    fn prototypes_recognise_the_exercise() {
        let mut t = SetTracker::new("cam", SetConfig { quiet: 5.0, ..Default::default() });
        run(&mut t, 0, 150, 15.0, |t| knee_at(t, 1.0, 4));
        let reference = t.finish().unwrap().features;
        let squat = Prototype { exercise: "squat".into(), features: reference.clone() };
        let still = Prototype {
            exercise: "plank".into(),
            features: FeatureMatrix { rows: vec![[175.0, 175.0, 180.0, 180.0, 180.0, 180.0]; 50] },
        };
        let mut t =
            SetTracker::new("cam", SetConfig { quiet: 5.0, prototypes: vec![still, squat], ..Default::default() });
        run(&mut t, 0, 150, 15.0, |t| knee_at(t, 1.0, 4));
        let s = t.finish().unwrap();
        assert_eq!(s.exercise, "squat");
        assert!(s.confidence > 0.75, "{}", s.confidence);
        assert_eq!(s.reps, 4);
        assert!(!s.pending);
    }
}
