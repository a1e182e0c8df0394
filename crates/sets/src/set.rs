//! Sets: idle → repping → closed after `quiet` seconds without a rep (or at end of stream).
//!
//! Each frame, the athlete is picked, and the angles of the three joint families (knee, hip,
//! elbow) are fed to one rep counter each, on the side of the body the camera sees better. The
//! configured exercise says which family counts; without one, the exercise is recognised from the
//! set's features with the prototypes when there are some, otherwise the family with the most
//! reps counts and the exercise is `unknown`.

use std::collections::{BTreeMap, VecDeque};

use pump_features::angle::pose_joint_angle;
use pump_features::{
    driving_joint, exercise_distances, nearest, DtwConfig, FeatureMatrix, Joint, Prototype, MIN_KEYPOINT_CONFIDENCE,
};
use pump_types::{Keypoint, Pose, NUM_KEYPOINTS};

use crate::people::{presence, People, PersonId, Zone};
use crate::reps::{Rep, RepConfig, RepCounter};

/// Sets with fewer reps, or a less sure exercise, are flagged for the athlete to confirm.
const PENDING_MIN_REPS: usize = 3;
const PENDING_MIN_CONFIDENCE: f32 = 0.75;
/// Frames kept before a set starts, so its features begin at the first rep's start.
const PRE_ROLL_SECONDS: f64 = 10.0;
/// Time constant (s) of the running visibility of each side of the body: about ten frames at
/// 15 fps, whatever the pose rate.
const VISIBILITY_TAU_SECONDS: f64 = 0.66;
/// A rep counts when its person stayed in place over it, or over this many seconds before its
/// end when the rep was quicker: a quick "rep" of a slow walker's knee is no squat.
const IN_PLACE_SECONDS: f64 = 1.5;
/// The pose rate (poses a second) under which a set is pending and the services warn about a
/// camera. Counts were measured exact at 4 poses a second and up on every test clip, regular or
/// with newest-wins jitter, and at 3 on all but the fastest reps (README, "Pose rates"); a camera
/// at "4 a second" measures 3.6 to 4.4 over a set, hence the margin.
pub const DEFAULT_MIN_POSE_RATE: f64 = 3.5;
/// A pause between poses longer than this (s) inside a set can hide a whole rep (a quick rep's
/// bottom lasts under a second): such a set is pending.
pub const MAX_TRUSTED_GAP_SECONDS: f64 = 0.8;

#[derive(Debug, Clone)]
pub struct SetConfig {
    pub reps: RepConfig,
    /// Seconds without a rep that close a set.
    pub quiet: f64,
    /// The exercise, when the athlete said what it is.
    pub exercise: Option<String>,
    pub prototypes: Vec<Prototype>,
    /// Only people standing here can be the athlete (the whole frame when `None`).
    pub zone: Option<Zone>,
    /// Poses a second under which a set's count is not trusted (the set is pending).
    pub min_pose_rate: f64,
}

impl Default for SetConfig {
    fn default() -> Self {
        Self {
            reps: RepConfig::default(),
            quiet: 25.0,
            exercise: None,
            prototypes: Vec::new(),
            zone: None,
            min_pose_rate: DEFAULT_MIN_POSE_RATE,
        }
    }
}

/// One frame's poses. `t` is seconds on the camera's timeline and never goes backwards for one
/// tracker: a new timeline (a camera or capture restart) gets a new tracker.
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
    /// Stable for the same input (camera, timeline, first frame, start time), unique per set.
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
    /// Poses a second seen during the set.
    pub pose_rate: f64,
    /// The longest pause between two poses during the set (s).
    pub longest_gap: f64,
    /// Fewer than 3 reps, an exercise recognised with confidence under 0.75, a pose rate under
    /// the floor or a pause that could hide a rep: the athlete should confirm the set.
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
    /// Every person in the zone, and their keypoints.
    people: Vec<(PersonId, [Keypoint; NUM_KEYPOINTS])>,
}

/// One person's joint signals: a rep counter per family, on the side the camera sees better.
#[derive(Debug, Clone)]
struct Person {
    counters: Vec<RepCounter>,
    /// Running visibility of each family's left and right joints.
    visibility: [[f32; 2]; 3],
    /// Running [`presence`]: who looks most like the athlete when two exercise alike.
    presence: f32,
    last_t: Option<f64>,
}

impl Person {
    fn new(cfg: RepConfig) -> Self {
        Self {
            counters: FAMILIES.iter().map(|_| RepCounter::new(cfg)).collect(),
            visibility: [[0.0; 2]; 3],
            presence: 0.0,
            last_t: None,
        }
    }

    /// Feeds the person's keypoints at `t`; returns the reps completed, by family.
    fn push(&mut self, t: f64, kps: &[Keypoint; NUM_KEYPOINTS], presence: f32) -> Vec<(usize, Rep)> {
        // An exponential average in time: the same smoothing at 4 poses a second as at 30.
        let dt = self.last_t.map(|l| (t - l).max(0.0)).unwrap_or(1.0 / 15.0);
        let alpha = (1.0 - (-dt / VISIBILITY_TAU_SECONDS).exp()) as f32;
        self.last_t = Some(t);
        self.presence += alpha * (presence - self.presence);
        let mut reps = Vec::new();
        for (fi, family) in FAMILIES.iter().enumerate() {
            let sides = [*family, family.mirrored()];
            for (si, side) in sides.iter().enumerate() {
                let v = &mut self.visibility[fi][si];
                *v += alpha * (visibility(kps, *side) - *v);
            }
            // The side the camera sees better over time, not frame by frame.
            let side = if self.visibility[fi][1] > self.visibility[fi][0] { sides[1] } else { sides[0] };
            if let Some(rep) = self.counters[fi].push(t, pose_joint_angle(kps, side, MIN_KEYPOINT_CONFIDENCE)) {
                reps.push((fi, rep));
            }
        }
        reps
    }
}

/// The set in progress. Its athlete is whoever has done the most reps since it began, weighed by
/// how athlete-like they look ([`presence`]), so a bystander's stray rep that happened to open the
/// set does not own it once the athlete's reps come in.
#[derive(Debug, Clone)]
struct OpenSet {
    set_id: String,
    start: f64,
    /// Each person's count of each family's reps that are not this set's (done before it).
    base: BTreeMap<PersonId, [usize; 3]>,
    athlete: PersonId,
    last_rep_t: f64,
    live: usize,
}

/// Follows one camera's timeline.
#[derive(Debug)]
pub struct SetTracker {
    camera: String,
    /// Names the timeline in set ids, so two plays of the same clip make two sets.
    segment: String,
    cfg: SetConfig,
    people: People,
    persons: BTreeMap<PersonId, Person>,
    frames: VecDeque<FrameRecord>,
    open: Option<OpenSet>,
    /// The last time seen, to refuse a frame from the past.
    last_t: Option<f64>,
}

fn visibility(kps: &[Keypoint], joint: Joint) -> f32 {
    let (a, b, c) = joint.keypoints();
    kps[a].confidence.min(kps[b].confidence).min(kps[c].confidence)
}

impl SetTracker {
    pub fn new(camera: impl Into<String>, cfg: SetConfig) -> Self {
        Self::for_segment(camera, "", cfg)
    }

    /// A tracker for one segment of a camera's timeline (a capture run, a reconnection): set ids
    /// carry the segment, so sets of different runs never share one.
    pub fn for_segment(camera: impl Into<String>, segment: impl Into<String>, cfg: SetConfig) -> Self {
        Self {
            camera: camera.into(),
            segment: segment.into(),
            cfg,
            people: People::default(),
            persons: BTreeMap::new(),
            frames: VecDeque::new(),
            open: None,
            last_t: None,
        }
    }

    /// Families that may open or extend a set: the configured exercise's, or all.
    fn active_families(&self) -> Vec<usize> {
        match &self.cfg.exercise {
            Some(e) => {
                let j = driving_joint(e).unwrap_or(Joint::LeftKnee);
                FAMILIES.iter().position(|f| *f == j).into_iter().collect()
            }
            None => (0..FAMILIES.len()).collect(),
        }
    }

    /// Feeds one frame; returns the rep and set events it caused. A frame older than the last
    /// one is ignored (it belongs to another timeline or arrived late).
    pub fn push(&mut self, input: FrameInput<'_>) -> Vec<TrackerEvent> {
        let mut events = Vec::new();
        if !input.t.is_finite() || self.last_t.is_some_and(|l| input.t < l) {
            return events;
        }
        self.last_t = Some(input.t);
        // A set whose quiet time passed closes before anything else: a long-silent first tick
        // closes it at once.
        if self.open.as_ref().is_some_and(|s| input.t - s.last_rep_t >= self.cfg.quiet) {
            if let Some(e) = self.close() {
                events.push(TrackerEvent::Closed(e));
            }
        }
        let ids = self.people.update(input.t, input.poses);
        let mut seen = Vec::new();
        let mut reps: Vec<(PersonId, usize, Rep)> = Vec::new();
        for (pose, id) in input.poses.iter().zip(ids) {
            if self.cfg.zone.is_some_and(|z| !z.contains(&pose.bbox, input.width, input.height)) {
                continue;
            }
            let person = self.persons.entry(id).or_insert_with(|| Person::new(self.cfg.reps));
            let presence = presence(pose, input.width, input.height);
            reps.extend(person.push(input.t, &pose.keypoints, presence).into_iter().map(|(fi, r)| (id, fi, r)));
            seen.push((id, pose.keypoints));
        }
        self.frames.push_back(FrameRecord { t: input.t, frame: input.frame, people: seen });
        if self.open.is_none() {
            while self.frames.front().is_some_and(|f| input.t - f.t > PRE_ROLL_SECONDS) {
                self.frames.pop_front();
            }
        }
        events.extend(self.count(reps));
        self.forget_people();
        events
    }

    /// Counts the reps completed this frame: those of the exercise's joint, done in place. The
    /// first opens a set; the set's athlete is then whoever has the most reps in it, weighed by
    /// [`presence`].
    fn count(&mut self, mut reps: Vec<(PersonId, usize, Rep)>) -> Vec<TrackerEvent> {
        let active = self.active_families();
        reps.retain(|(id, fi, r)| {
            active.contains(fi) && self.people.stayed_in_place(*id, r.start.min(r.end - IN_PLACE_SECONDS), r.end)
        });
        reps.sort_by(|a, b| a.2.bottom.total_cmp(&b.2.bottom));
        let mut events = Vec::new();
        for (id, _, rep) in reps {
            if self.open.is_none() {
                self.open = Some(self.open_set(id, &rep));
            }
            let persons = &self.persons;
            let Some(open) = self.open.as_mut() else { continue };
            // Someone who came into view during the set: all their reps are the set's.
            open.base.entry(id).or_insert([0; 3]);
            let in_set = |pid: &PersonId, base: &[usize; 3]| {
                let p = persons.get(pid)?;
                let n = active.iter().map(|&fi| p.counters[fi].count().saturating_sub(base[fi])).max()?;
                Some((n, p.presence, *pid))
            };
            // Reps weighed by how athlete-like the person looks: a half-seen bystander at the edge
            // whose elbow jitters through "reps" does not outweigh the athlete in front.
            let Some((live, _, athlete)) = open
                .base
                .iter()
                .filter_map(|(pid, base)| in_set(pid, base))
                .max_by(|a, b| (a.0 as f32 * a.1).total_cmp(&(b.0 as f32 * b.1)).then(a.0.cmp(&b.0)))
            else {
                continue;
            };
            open.athlete = athlete;
            if athlete == id {
                open.last_rep_t = open.last_rep_t.max(rep.bottom);
            }
            if live > open.live {
                open.live = live;
                events.push(TrackerEvent::Rep { set_id: open.set_id.clone(), reps: live, t: rep.bottom });
            }
        }
        events
    }

    /// A set opened by `rep` of person `id`: every person's reps so far are not the set's, but
    /// for any that began with this rep.
    fn open_set(&self, id: PersonId, rep: &Rep) -> OpenSet {
        let start_frame = self.frames.iter().find(|f| f.t >= rep.start).map(|f| f.frame).unwrap_or_default();
        let ms = (rep.start * 1000.0).round() as i64;
        let set_id = if self.segment.is_empty() {
            format!("{}-{start_frame}-{ms}", self.camera)
        } else {
            format!("{}-{}-{start_frame}-{ms}", self.camera, self.segment)
        };
        let base = self
            .persons
            .iter()
            .map(|(pid, p)| {
                let b = std::array::from_fn(|i| {
                    let reps = p.counters[i].reps();
                    reps.len() - reps.iter().rev().take_while(|r| r.bottom >= rep.start).count()
                });
                (*pid, b)
            })
            .collect();
        OpenSet { set_id, start: rep.start, base, athlete: id, last_rep_t: rep.bottom, live: 0 }
    }

    /// Drops the signals of people gone from view, except the athlete of the set in progress.
    fn forget_people(&mut self) {
        let athlete = self.open.as_ref().map(|o| o.athlete);
        let people = &self.people;
        self.persons.retain(|id, _| people.is_followed(*id) || Some(*id) == athlete);
        if let Some(open) = self.open.as_mut() {
            let persons = &self.persons;
            open.base.retain(|id, _| persons.contains_key(id));
        }
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

    /// Ends the stream (or this segment of the camera's timeline): counts a rep finished in its
    /// last moments, then closes the set in progress.
    pub fn finish(&mut self) -> Option<SetEvent> {
        let mut reps: Vec<(PersonId, usize, Rep)> = Vec::new();
        for (id, person) in self.persons.iter_mut() {
            for (fi, counter) in person.counters.iter_mut().enumerate() {
                reps.extend(counter.finish().into_iter().map(|r| (*id, fi, r)));
            }
        }
        self.count(reps);
        self.close()
    }

    fn close(&mut self) -> Option<SetEvent> {
        let open = self.open.take()?;
        let athlete = self.persons.get(&open.athlete);
        let base = open.base.get(&open.athlete).copied().unwrap_or_default();
        let family_reps: Vec<Vec<Rep>> = (0..FAMILIES.len())
            .map(|fi| {
                athlete.map(|p| p.counters[fi].reps().get(base[fi]..).unwrap_or(&[]).to_vec()).unwrap_or_default()
            })
            .collect();
        let athlete_kps = |f: &FrameRecord| f.people.iter().find(|p| p.0 == open.athlete).map(|p| p.1);
        // Which family counts.
        let (mut exercise, mut confidence) = match &self.cfg.exercise {
            Some(e) => (e.clone(), 1.0),
            None => ("unknown".to_string(), 0.0),
        };
        let end_guess = family_reps.iter().flatten().map(|r| r.end).fold(open.start, f64::max);
        let frames: Vec<(f64, [Keypoint; NUM_KEYPOINTS])> = self
            .frames
            .iter()
            .filter(|f| f.t >= open.start && f.t <= end_guess)
            .filter_map(|f| athlete_kps(f).map(|k| (f.t, k)))
            .collect();
        let features = FeatureMatrix::from_keypoints(frames.iter().map(|(_, k)| &k[..]));
        let feature_times: Vec<f64> = frames.iter().map(|(t, _)| *t).collect();
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
            let j = driving_joint(&exercise).unwrap_or(Joint::LeftKnee);
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
        let times: Vec<f64> = self.frames.iter().filter(in_set).map(|f| f.t).collect();
        // Poses a second over the set: n poses span n - 1 intervals.
        let pose_rate = match (times.first(), times.last()) {
            (Some(first), Some(last)) if last > first => (times.len() - 1) as f64 / (last - first),
            _ => 0.0,
        };
        let longest_gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
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
            pose_rate,
            longest_gap,
            pending: n < PENDING_MIN_REPS
                || confidence < PENDING_MIN_CONFIDENCE
                || pose_rate < self.cfg.min_pose_rate
                || longest_gap > MAX_TRUSTED_GAP_SECONDS,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pump_types::BBox;

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

    /// Someone standing still at `x`, `scale` times the athlete's size.
    fn bystander(x: f32, scale: f32) -> Pose {
        let mut p = person(178.0);
        for k in p.keypoints.iter_mut() {
            k.x = x + (k.x - 80.0) * scale;
            k.y *= scale;
        }
        p.bbox = BBox { x1: x, y1: 50.0 * scale, x2: x + 180.0 * scale, y2: 420.0 * scale };
        p.score = 0.95;
        p
    }

    /// The athlete at the left edge, squatting `reps` from t = 1; others given by `others`.
    fn scene(t: &mut SetTracker, reps: usize, others: impl Fn(u64) -> Vec<Pose>) -> Vec<SetEvent> {
        let mut events = Vec::new();
        for i in 0..(15 * (2 + 2 * reps as u64)) {
            let time = i as f64 / 15.0;
            let mut poses = others(i);
            poses.push(person(knee_at(time, 1.0, reps)));
            events.extend(t.push(FrameInput { t: time, frame: i, width: 900.0, height: 500.0, poses: &poses }));
        }
        let mut sets = closed(&events);
        sets.extend(t.finish());
        sets
    }

    #[test]
    fn the_athlete_is_who_exercises_not_the_biggest_most_central_person() {
        // Two still bystanders, bigger and more central than the athlete, in view from the start.
        let mut t = SetTracker::new("cam", squat_cfg(5.0));
        let sets = scene(&mut t, 5, |_| vec![bystander(350.0, 1.15), bystander(600.0, 1.1)]);
        assert_eq!(sets.iter().map(|s| s.reps).collect::<Vec<_>>(), vec![5]);
    }

    #[test]
    fn a_bystander_who_moves_a_little_does_not_take_the_set() {
        // A bystander in the middle bends their knees once, by 40°, just before the athlete's
        // first rep ends: their rep opens the set, the athlete's five make it theirs.
        let mut t = SetTracker::new("cam", squat_cfg(5.0));
        let sets = scene(&mut t, 5, |i| {
            let mut b = person(if (10..25).contains(&i) { 135.0 } else { 178.0 });
            for k in b.keypoints.iter_mut() {
                k.x += 400.0;
            }
            b.bbox = BBox { x1: 480.0, y1: 50.0, x2: 660.0, y2: 420.0 };
            vec![b]
        });
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].reps, 5);
    }

    #[test]
    fn a_zone_limits_who_can_be_the_athlete() {
        // Another person squats 3 reps on the right; the zone is the left half.
        let other = |i: u64| {
            let mut b = person(knee_at(i as f64 / 15.0, 0.5, 3));
            for k in b.keypoints.iter_mut() {
                k.x += 550.0;
            }
            b.bbox = BBox { x1: 630.0, y1: 50.0, x2: 810.0, y2: 420.0 };
            vec![b]
        };
        let cfg = SetConfig { zone: Some("0,0,0.5,1".parse().unwrap()), ..squat_cfg(5.0) };
        let mut t = SetTracker::new("cam", cfg);
        let sets = scene(&mut t, 5, other);
        assert_eq!(sets.iter().map(|s| s.reps).collect::<Vec<_>>(), vec![5]);
        // Without the zone, the right-hand person's earlier reps open the set, and the athlete,
        // with more reps, owns it.
        let mut t = SetTracker::new("cam", squat_cfg(5.0));
        let sets = scene(&mut t, 5, other);
        assert_eq!(sets[0].reps, 5);
    }

    /// The last set of 4 squats from t = 1, seen at these (frame, time)s.
    fn squats_at(frames: impl Iterator<Item = (u64, f64)>) -> SetEvent {
        let mut t = SetTracker::new("cam", squat_cfg(5.0));
        let mut events = Vec::new();
        for (i, time) in frames {
            let p = [person(knee_at(time, 1.0, 4))];
            events.extend(t.push(FrameInput { t: time, frame: i, width: 400.0, height: 500.0, poses: &p }));
        }
        closed(&events).pop().or_else(|| t.finish()).unwrap()
    }

    #[test]
    fn a_set_seen_at_a_low_pose_rate_is_pending() {
        // 2.5 poses a second: counted, but under the floor.
        let s = squats_at((0..30u64).map(|i| (i, i as f64 / 2.5)));
        assert_eq!(s.reps, 4);
        assert!((s.pose_rate - 2.5).abs() < 0.01, "{}", s.pose_rate);
        assert!(s.pending);
    }

    #[test]
    fn a_pause_that_could_hide_a_rep_makes_the_set_pending() {
        // 15 poses a second, but nothing from 4.2 s to 5.2 s (a replica lost for a second).
        let s = squats_at((0..150u64).filter(|i| !(63..78).contains(i)).map(|i| (i, i as f64 / 15.0)));
        assert!(s.longest_gap > 1.0, "{}", s.longest_gap);
        assert!(s.pending);
    }

    #[test]
    fn frames_from_the_past_are_ignored_and_segments_name_the_sets() {
        let mut t = SetTracker::for_segment("cam", "s42", squat_cfg(5.0));
        let mut events = run(&mut t, 0, 150, 15.0, |t| knee_at(t, 1.0, 4));
        // A replayed clip whose time starts again at 0 on the same tracker changes nothing.
        events.extend(run(&mut t, 0, 150, 15.0, |t| knee_at(t, 1.0, 4)));
        let mut sets = closed(&events);
        sets.extend(t.finish());
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].reps, 4);
        assert!(sets[0].set_id.starts_with("cam-s42-"), "{}", sets[0].set_id);
    }
}
