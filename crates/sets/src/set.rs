//! Sets: idle → repping → closed after `quiet` seconds without a rep (or at end of stream).
//!
//! Each frame, the athlete is picked, and the angles of the three joint families (knee, hip,
//! elbow) are fed to one rep counter each, on the side of the body the camera sees better
//! ([`crate::person`]'s `Family`). The
//! configured exercise says which family counts; without one, the exercise is recognised from the
//! set's features with the prototypes when there are some, otherwise the family with the most
//! reps counts and the exercise is `unknown`.

use std::collections::{BTreeMap, VecDeque};

use pump_features::{
    exercise_distances, exercise_spec, nearest_within, DtwConfig, FeatureMatrix, Prototype, Signal, SIGNALS,
    TRAVEL_SIGNALS,
};
use pump_types::{Keypoint, Pose, NUM_KEYPOINTS};

use crate::events::{rows_between, ClosedSet, TrackerEvent, MAX_TRACE_POINTS};
use crate::people::{distinct, presence, People, PersonId, Zone};
use crate::person::Person;
use crate::reps::{Rep, RepConfig};

/// Sets with fewer reps, or a less sure exercise, are flagged for the athlete to confirm.
pub const PENDING_MIN_REPS: usize = 3;
pub const PENDING_MIN_CONFIDENCE: f32 = 0.75;
/// Frames kept before a set starts, so its features begin at the first rep's start.
const PRE_ROLL_SECONDS: f64 = 10.0;
/// A rep counts when its person stayed in place over it, or over this many seconds before its
/// end when the rep was quicker: a quick "rep" of a slow walker's knee is no squat.
const IN_PLACE_SECONDS: f64 = 1.5;
/// Seconds after its end that a rep whose person drifted over it may still show they came back
/// to where they were (then it was done in place): a deep squat filmed tightly shifts the box
/// by half its width on the way down (the body leans, the frame's edge cuts it), and the counter
/// has the rep as the hips rise, before the body is back. Longer than the rest of a rise after
/// the counter has it (0.6 s at 2.5 s a rep), shorter than a rep.
const RETURN_SECONDS: f64 = 2.0;
/// The pose rate (poses a second) under which a set is pending and the services warn about a
/// camera. Counts were measured exact at 4 poses a second and up on every test clip, regular or
/// with newest-wins jitter, and at 3 on all but the fastest reps (docs/REPS.md); a camera
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
    /// The longest a set lasts (s) and the most reps it holds: at either, it closes at its last
    /// rep's return, said `continued`, and the athlete's next rep opens the next set.
    pub max_seconds: f64,
    pub max_reps: usize,
}

/// A set that goes on longer than this (s) is closed and continued: someone exercising for an
/// hour, or motion that never stops, would otherwise keep every frame of the hour in memory and
/// lose all of it with the process. Five minutes of poses at 30 a second is 9000 feature rows,
/// well inside one NATS message.
pub const DEFAULT_MAX_SET_SECONDS: f64 = 300.0;
/// A set of more reps than this is closed and continued, as [`DEFAULT_MAX_SET_SECONDS`].
pub const DEFAULT_MAX_SET_REPS: usize = 100;

impl Default for SetConfig {
    fn default() -> Self {
        Self {
            reps: RepConfig::default(),
            quiet: 25.0,
            exercise: None,
            prototypes: Vec::new(),
            zone: None,
            min_pose_rate: DEFAULT_MIN_POSE_RATE,
            max_seconds: DEFAULT_MAX_SET_SECONDS,
            max_reps: DEFAULT_MAX_SET_REPS,
        }
    }
}

impl SetConfig {
    /// What is wrong with these settings, in the words of the flags that set them (`pump sets`
    /// and `pump-sets` share them); `None` when nothing is.
    pub fn check(&self) -> Option<&'static str> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let zero_or_more = |v: f64| v.is_finite() && v >= 0.0;
        if !positive(self.quiet) {
            Some("--quiet-seconds must be above zero")
        } else if !zero_or_more(self.reps.smoothing) {
            Some("--smoothing-seconds must be zero or more")
        } else if !zero_or_more(self.min_pose_rate) {
            Some("--min-pose-rate must be zero or more")
        } else if !positive(self.max_seconds) || self.max_reps == 0 {
            Some("--max-set-seconds and --max-set-reps must be above zero")
        } else {
            None
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

#[derive(Debug, Clone)]
struct FrameRecord {
    t: f64,
    frame: u64,
    /// Every person in the zone, and their keypoints.
    people: Vec<(PersonId, [Keypoint; NUM_KEYPOINTS])>,
}

/// The set in progress. Its athlete is whoever has done the most reps since it began, weighed by
/// how athlete-like they look ([`presence`]), so a bystander's stray rep that happened to open the
/// set does not own it once the athlete's reps come in.
#[derive(Debug, Clone)]
struct OpenSet {
    set_id: String,
    start: f64,
    /// Each person's count of each family's reps that are not this set's (done before it).
    base: BTreeMap<PersonId, [usize; SIGNALS.len()]>,
    athlete: PersonId,
    last_rep_t: f64,
    live: usize,
    /// Whose count the last live event said.
    reported: Option<PersonId>,
    /// The turnaround of the rep that brought the set to its longest ([`SetConfig::max_reps`],
    /// `max_seconds`): the set closes with it when the next rep comes, so that rep is back at
    /// rest (whole) in this set and the next opens the next.
    full_at: Option<f64>,
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
    /// Where the last closed set ended: a rep turning before it was that set's, or nobody's.
    closed_until: f64,
    /// Reps that came back needing a confirmation no other signal had given yet (a shallow rep
    /// of the shoulders whose knee's rep ends a moment after): offered again as other signals'
    /// reps end, for a quiet time.
    unconfirmed: Vec<(PersonId, usize, Rep)>,
    /// Reps that stood but for their person's drift over them: offered again each frame, for
    /// [`RETURN_SECONDS`], in case the person comes back to where they were.
    unplaced: Vec<(PersonId, usize, Rep)>,
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
            closed_until: f64::NEG_INFINITY,
            unconfirmed: Vec::new(),
            unplaced: Vec::new(),
        }
    }

    /// Signals that may open or extend a set: the configured exercise's, or the body's travels.
    fn active_families(&self) -> Vec<usize> {
        match self.cfg.exercise.as_deref().and_then(exercise_spec) {
            Some(e) => e.signals.iter().map(|s| s.index()).collect(),
            None => TRAVEL_SIGNALS.iter().map(|s| s.index()).collect(),
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
                events.push(TrackerEvent::Closed(Box::new(e)));
            }
        }
        let poses = distinct(input.poses);
        let ids = self.people.update(input.t, &poses);
        let mut seen = Vec::new();
        let mut reps: Vec<(PersonId, usize, Rep)> = Vec::new();
        for (pose, id) in poses.iter().zip(ids) {
            if self.cfg.zone.is_some_and(|z| !z.contains(&pose.bbox, input.width, input.height)) {
                continue;
            }
            let (cfg, exercise) = (self.cfg.reps, self.cfg.exercise.as_deref().and_then(exercise_spec));
            let person = self.persons.entry(id).or_insert_with(|| Person::new(cfg, exercise));
            let presence = presence(pose, input.width, input.height);
            reps.extend(
                person.push(input.t, &pose.keypoints, &pose.bbox, presence).into_iter().map(|(fi, r)| (id, fi, r)),
            );
            seen.push((id, pose.keypoints));
        }
        self.frames.push_back(FrameRecord { t: input.t, frame: input.frame, people: seen });
        if self.open.is_none() {
            while self.frames.front().is_some_and(|f| input.t - f.t > PRE_ROLL_SECONDS) {
                self.frames.pop_front();
            }
            // A rep that completes now turned at most a quiet time ago (a longer way back is a
            // held position left), and a set it opens begins within the pre-roll: reps older
            // than both are nobody's.
            let horizon = input.t - PRE_ROLL_SECONDS - self.cfg.quiet;
            for person in self.persons.values_mut() {
                person.forget_before(horizon);
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
        // A "rep" whose way back took longer than a set's quiet time is a held position left
        // (the set closed meanwhile), and one that turned before the last set ended is that set's
        // signal settling, not a new set.
        let (quiet, closed_until) = (self.cfg.quiet, self.closed_until);
        let within = self.cfg.reps.min_period;
        // A rep waiting for its confirmation is offered again once another signal's rep ended
        // (the only thing that can confirm it), until a quiet time after its own end.
        let now = self.last_t.unwrap_or(f64::NEG_INFINITY);
        let mut waiting = std::mem::take(&mut self.unconfirmed);
        if !reps.is_empty() {
            let confirmed_now = |(id, fi, r): &(PersonId, usize, Rep)| {
                self.persons.get(id).is_some_and(|p| p.confirmed(*fi, r, within))
            };
            let (now_confirmed, still): (Vec<_>, Vec<_>) = waiting.into_iter().partition(confirmed_now);
            waiting = still;
            for (id, fi, r) in &reps {
                if active.contains(fi) && !self.persons.get(id).is_some_and(|p| p.confirmed(*fi, r, within)) {
                    waiting.push((*id, *fi, *r));
                }
            }
            reps.extend(now_confirmed);
        }
        waiting.retain(|(id, _, r)| now - r.end < quiet && self.persons.contains_key(id));
        self.unconfirmed = waiting;
        // A rep whose person drifted over it stands once they are back where they were.
        let in_place_from = |r: &Rep| r.start.min(r.end - IN_PLACE_SECONDS);
        let mut unplaced = std::mem::take(&mut self.unplaced);
        let mut came_back = Vec::new();
        unplaced.retain(|(id, fi, r)| {
            if self.people.came_back(*id, in_place_from(r), now) {
                came_back.push((*id, *fi, *r));
                return false;
            }
            now - r.end <= RETURN_SECONDS && self.persons.contains_key(id)
        });
        let mut standing = Vec::new();
        for (id, fi, r) in reps {
            let stands = active.contains(&fi)
                && self.persons.get(&id).is_some_and(|p| p.confirmed(fi, &r, within))
                && r.bottom > closed_until
                && r.end - r.bottom < quiet;
            if !stands {
                continue;
            }
            if self.people.stayed_in_place(id, in_place_from(&r), r.end) {
                standing.push((id, fi, r));
            } else {
                unplaced.push((id, fi, r));
            }
        }
        // A set may have closed while the rep waited.
        standing.extend(came_back.into_iter().filter(|(_, _, r)| r.bottom > closed_until));
        self.unplaced = unplaced;
        let mut reps = standing;
        reps.sort_by(|a, b| a.2.bottom.total_cmp(&b.2.bottom));
        let mut events = Vec::new();
        for (id, _, rep) in reps {
            // The rep after the one that filled the set: the set closes with the reps before
            // it, marked continued, and this rep opens the next.
            let full_at = self.open.as_ref().and_then(|o| o.full_at);
            if let Some(b) = full_at.filter(|b| rep.bottom - b >= within) {
                if let Some(mut e) = self.close_before(b + within / 2.0) {
                    e.continued = true;
                    events.push(TrackerEvent::Closed(Box::new(e)));
                }
            }
            if self.open.is_none() {
                self.open = Some(self.open_set(id, &rep));
            }
            let persons = &self.persons;
            let Some(open) = self.open.as_mut() else { continue };
            // Someone who came into view during the set: all their reps are the set's.
            open.base.entry(id).or_insert([0; SIGNALS.len()]);
            let in_set = |pid: &PersonId, base: &[usize; SIGNALS.len()]| {
                let p = persons.get(pid)?;
                let n = active.iter().map(|&fi| p.counter(fi).count().saturating_sub(base[fi])).max()?;
                Some((n, p.presence, *pid))
            };
            // Reps weighed by how athlete-like the person looks: a half-seen bystander at the edge
            // whose elbow jitters through "reps" does not outweigh the athlete in front.
            let Some((_, _, athlete)) = open
                .base
                .iter()
                .filter_map(|(pid, base)| in_set(pid, base))
                .max_by(|a, b| (a.0 as f32 * a.1).total_cmp(&(b.0 as f32 * b.1)).then(a.0.cmp(&b.0)))
            else {
                continue;
            };
            open.athlete = athlete;
            // The count the set would have if it closed now: its athlete's, on its signal.
            let Some(open) = self.open.as_ref() else { continue };
            let family_reps = self.athlete_reps(open);
            let family = counting_family(self.cfg.exercise.as_deref(), &family_reps);
            let counted = full_reps(&family_reps[family], true).0;
            let live = counted.len();
            let Some(open) = self.open.as_mut() else { continue };
            // Quiet is quiet of the reps that count: a shallow "rep" of another signal (hips
            // and shoulders dipping together as the box's bottom jitters under a resting curler
            // at 4 poses a second) or a partial one is no rep of the set, and kept two sets of
            // curls 15 s apart open as one.
            if let Some(last) = counted.last() {
                open.last_rep_t = open.last_rep_t.max(last.bottom);
            }
            // A new count, or the same count now another person's (the athlete's rep landed a
            // frame after a bystander's): who is counted is said again.
            if live > open.live || (live == open.live && live > 0 && open.reported != Some(athlete)) {
                open.live = live;
                open.reported = Some(athlete);
                let (set_id, start, athlete_id) = (open.set_id.clone(), open.start, open.athlete);
                let trace = self.trace(athlete_id, family, start, rep.end.max(rep.bottom));
                let athlete = self.people.bbox_of(athlete);
                events.push(TrackerEvent::Rep { set_id, reps: live, t: rep.bottom, athlete, trace });
            }
            let (max_reps, max_seconds) = (self.cfg.max_reps, self.cfg.max_seconds);
            if let Some(open) = self.open.as_mut().filter(|o| o.full_at.is_none() && o.athlete == id) {
                if open.live >= max_reps || rep.end - open.start >= max_seconds {
                    open.full_at = Some(rep.bottom);
                }
            }
        }
        events
    }

    /// Family `fi`'s angle of `athlete` from `start` to `end`, on the side its counter reads,
    /// thinned evenly to at most [`MAX_TRACE_POINTS`].
    fn trace(&self, athlete: PersonId, fi: usize, start: f64, end: f64) -> Vec<(f64, f32)> {
        let Some(side) = self.plotted_side(athlete, fi) else { return Vec::new() };
        let all: Vec<(f64, f32)> = self
            .athlete_poses(athlete, start, end)
            .filter_map(|(t, kps)| {
                Some((t, pump_features::angle::pose_joint_angle(kps, side, pump_features::MIN_KEYPOINT_CONFIDENCE)?))
            })
            .collect();
        thin(all, MAX_TRACE_POINTS)
    }

    /// The joint a plot of a set counted on family `fi` shows, on the side the camera sees better:
    /// the exercise's own (a squat's knee, whichever travel counts), else the signal's.
    fn plotted_side(&self, athlete: PersonId, fi: usize) -> Option<pump_features::Joint> {
        let person = self.persons.get(&athlete)?;
        let joint = match self.cfg.exercise.as_deref().and_then(exercise_spec) {
            Some(e) => e.joint,
            None => SIGNALS[fi].plotted_joint(),
        };
        let angle = person.families.iter().find(|f| f.signal.joint() == Some(joint))?;
        Some(angle.side())
    }

    /// The smallest angle of `side` (the plotted joint) of `athlete` from `start` to `end`: how
    /// deep a rep went, in degrees (0 when the joint was never seen).
    fn most_flexed(&self, athlete: PersonId, side: Option<pump_features::Joint>, start: f64, end: f64) -> f32 {
        let Some(side) = side else { return 0.0 };
        self.athlete_poses(athlete, start, end)
            .filter_map(|(_, kps)| {
                pump_features::angle::pose_joint_angle(kps, side, pump_features::MIN_KEYPOINT_CONFIDENCE)
            })
            .reduce(f32::min)
            .unwrap_or(0.0)
    }

    /// The keypoints of `athlete` in each frame from `start` to `end` that saw them, with its time.
    fn athlete_poses(
        &self,
        athlete: PersonId,
        start: f64,
        end: f64,
    ) -> impl Iterator<Item = (f64, &[Keypoint; NUM_KEYPOINTS])> + '_ {
        self.frames
            .iter()
            .filter(move |f| f.t >= start && f.t <= end)
            .filter_map(move |f| f.people.iter().find(|p| p.0 == athlete).map(|p| (f.t, &p.1)))
    }

    /// A set opened by `rep` of person `id`: every person's reps so far are not the set's, but
    /// for any that began with this rep.
    fn open_set(&self, id: PersonId, rep: &Rep) -> OpenSet {
        // Not before the last set ended: a rep that left rest during it began at its end.
        let start = rep.start.max(self.closed_until);
        let start_frame = self.frames.iter().find(|f| f.t >= start).map(|f| f.frame).unwrap_or_default();
        let ms = (start * 1000.0).round() as i64;
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
                    let reps = p.counter(i).reps();
                    reps.len() - reps.iter().rev().take_while(|r| r.bottom >= start).count()
                });
                (*pid, b)
            })
            .collect();
        OpenSet { set_id, start, base, athlete: id, last_rep_t: rep.bottom, live: 0, reported: None, full_at: None }
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
    pub fn finish(&mut self) -> Option<ClosedSet> {
        let mut reps: Vec<(PersonId, usize, Rep)> = Vec::new();
        for (id, person) in self.persons.iter_mut() {
            for (fi, family) in person.families.iter_mut().enumerate() {
                reps.extend(family.counter.finish().into_iter().map(|r| (*id, fi, r)));
            }
        }
        self.count(reps);
        self.close()
    }

    /// Closes the set in progress: the athlete's reps of the family that counts, over the span
    /// they cover, with what makes the count trustworthy or not.
    fn close(&mut self) -> Option<ClosedSet> {
        self.close_before(f64::INFINITY)
    }

    /// Closes the set in progress with the reps that turned before `until` (the next set's
    /// first rep may already be in the counters).
    fn close_before(&mut self, until: f64) -> Option<ClosedSet> {
        let mut open = self.open.take()?;
        let mut family_reps = self.athlete_reps(&open);
        for reps in family_reps.iter_mut() {
            reps.retain(|r| r.bottom < until);
        }
        // What the athlete said counts on its own signal; otherwise the dominant motion counts,
        // whatever the prototypes call it: a wrong name never changes a count.
        let family = counting_family(self.cfg.exercise.as_deref(), &family_reps);
        let (reps, partial) = full_reps(&family_reps[family], false);
        open.start = self.first_move(&open, &family_reps, reps.first());
        let end_guess = family_reps.iter().flatten().map(|r| r.end).fold(open.start, f64::max);
        let (features, feature_times) = self.athlete_features(&open, end_guess);
        let rep_leans: Vec<Option<f32>> = reps.iter().map(|r| self.resting_lean(open.athlete, r)).collect();
        let (exercise, confidence) = match &self.cfg.exercise {
            Some(e) => (Some(e.clone()), 1.0),
            None => match self.recognise(&reps, &rep_leans, &features, &feature_times) {
                Some((e, c)) => (Some(e), c),
                None => (None, 0.0),
            },
        };
        let end = reps.last().map_or(end_guess, |last| self.last_return(last, &family_reps));
        let side = self.plotted_side(open.athlete, family);
        let trace = self.trace(open.athlete, family, open.start, end);
        let span = self.span(open.start, end);
        let rep_depths = reps.iter().map(|r| self.most_flexed(open.athlete, side, r.start, r.end)).collect();
        // Frames up to the set's end are done with; later ones may start the next set.
        self.frames.retain(|f| f.t > end);
        self.closed_until = end;
        // A later rep may still look for its partner signal's turn within `min_period`.
        let forget = end - self.cfg.reps.min_period;
        for person in self.persons.values_mut() {
            person.forget_before(forget);
        }
        let n = reps.len();
        if n == 0 {
            // Only partial reps (a move that never came back far enough): nothing to log, and
            // a set of none would reach the athlete's log as one.
            return None;
        }
        Some(ClosedSet {
            camera: self.camera.clone(),
            set_id: open.set_id,
            start: open.start,
            end,
            start_frame: span.start_frame,
            end_frame: span.end_frame,
            reps: n,
            rep_times: reps.iter().map(|r| r.bottom).collect(),
            rep_spans: reps.iter().map(|r| (r.start, r.end)).collect(),
            rep_depths,
            rep_leans,
            partial_reps: partial.iter().map(|r| r.bottom).collect(),
            signal: SIGNALS[family],
            exercise,
            confidence,
            features,
            feature_times,
            pose_rate: span.pose_rate,
            longest_gap: span.longest_gap,
            trace,
            continued: false,
            pending: n < PENDING_MIN_REPS
                || confidence < PENDING_MIN_CONFIDENCE
                || span.pose_rate < self.cfg.min_pose_rate
                || span.longest_gap > MAX_TRUSTED_GAP_SECONDS,
        })
    }

    /// When the set began: when the athlete's first rep began, by the (upper) median of the
    /// signals that count it. The set opened on whoever's rep came back first (in the fixture, a
    /// bystander dragged along by the athlete's move), and one signal may leave rest early (a
    /// shoulder sagging before the hips go) or late.
    ///
    /// The first rep is the first one counted, where there is one: a signal that does not count
    /// (the hips dipping with a resting curler's box) may have opened the set long before it.
    fn first_move(&self, open: &OpenSet, family_reps: &[Vec<Rep>], first_counted: Option<&Rep>) -> f64 {
        let first_bottom = first_counted.map(|r| r.bottom).unwrap_or_else(|| {
            self.active_families()
                .iter()
                .filter_map(|&fi| family_reps[fi].first())
                .map(|r| r.bottom)
                .fold(f64::INFINITY, f64::min)
        });
        self.median_of_rep(family_reps, first_bottom, false, |r| r.start).unwrap_or(open.start).max(self.closed_until)
    }

    /// When the set ended: when its last rep was back at rest, by the (upper) median of the
    /// signals that count it, as [`SetTracker::first_move`] for its start.
    fn last_return(&self, last: &Rep, family_reps: &[Vec<Rep>]) -> f64 {
        self.median_of_rep(family_reps, last.bottom, true, |r| r.end).unwrap_or(last.end)
    }

    /// The (upper) median of `time` of one rep, as each counting signal saw it: the rep of each
    /// active family that turned within `min_period` of `bottom` (the latest such, with `latest`).
    fn median_of_rep(&self, family_reps: &[Vec<Rep>], bottom: f64, latest: bool, time: fn(&Rep) -> f64) -> Option<f64> {
        let near = |r: &&Rep| (r.bottom - bottom).abs() < self.cfg.reps.min_period;
        let mut times: Vec<f64> = self
            .active_families()
            .iter()
            .filter_map(|&fi| {
                if latest {
                    family_reps[fi].iter().rev().find(near)
                } else {
                    family_reps[fi].iter().find(near)
                }
            })
            .map(time)
            .collect();
        times.sort_by(f64::total_cmp);
        times.get(times.len() / 2).copied()
    }

    /// The set's athlete's reps since it opened, per family: those that stand ([`Person::confirmed`]).
    fn athlete_reps(&self, open: &OpenSet) -> Vec<Vec<Rep>> {
        let athlete = self.persons.get(&open.athlete);
        let base = open.base.get(&open.athlete).copied().unwrap_or_default();
        let within = self.cfg.reps.min_period;
        (0..SIGNALS.len())
            .map(|fi| {
                let Some(p) = athlete else { return Vec::new() };
                let reps = p.counter(fi).reps().get(base[fi]..).unwrap_or(&[]);
                reps.iter().filter(|r| p.confirmed(fi, r, within)).copied().collect()
            })
            .collect()
    }

    /// The athlete's feature rows from the set's start to `end`, with each row's time.
    fn athlete_features(&self, open: &OpenSet, end: f64) -> (FeatureMatrix, Vec<f64>) {
        let frames: Vec<(f64, &[Keypoint; NUM_KEYPOINTS])> =
            self.athlete_poses(open.athlete, open.start, end).collect();
        let features = FeatureMatrix::from_keypoints(frames.iter().map(|(_, k)| &k[..]));
        (features, frames.iter().map(|(t, _)| *t).collect())
    }

    /// The exercise the prototypes recognise, with its confidence; `None` without prototypes.
    /// Prototypes are single reps: compared rep to rep (the counted reps, or the whole set when
    /// it has none), each exercise's distance averaged over the reps.
    fn recognise(
        &self,
        reps: &[Rep],
        leans: &[Option<f32>],
        features: &FeatureMatrix,
        times: &[f64],
    ) -> Option<(String, f32)> {
        if self.cfg.prototypes.is_empty() {
            return None;
        }
        let mut queries: Vec<(FeatureMatrix, Option<f32>)> = reps
            .iter()
            .zip(leans)
            .map(|(r, lean)| (rows_between(features, times, r.start, r.end), *lean))
            .filter(|(m, _)| !m.is_empty())
            .collect();
        if queries.is_empty() {
            queries.push((features.clone(), None));
        }
        // An exercise counts only where every rep had one in its posture to compare with.
        let mut totals: Vec<(String, f32, usize)> = Vec::new();
        for (q, lean) in &queries {
            for (e, d) in exercise_distances(q, *lean, &self.cfg.prototypes, &DtwConfig::default()) {
                match totals.iter_mut().find(|(x, ..)| *x == e) {
                    Some((_, sum, n)) => (*sum, *n) = (*sum + d, *n + 1),
                    None => totals.push((e, d, 1)),
                }
            }
        }
        let totals: Vec<(String, f32)> =
            totals.into_iter().filter(|(.., n)| *n == queries.len()).map(|(e, sum, n)| (e, sum / n as f32)).collect();
        nearest_within(&totals, &self.cfg.prototypes).map(|c| (c.exercise, c.confidence))
    }

    /// How far the athlete's trunk leans at `rep`'s ends, where it rests (the median over its
    /// first and last fifth): standing or lying, for [`same_posture`].
    ///
    /// [`same_posture`]: pump_features::same_posture
    fn resting_lean(&self, athlete: PersonId, rep: &Rep) -> Option<f32> {
        let leans: Vec<f32> = self
            .athlete_poses(athlete, rep.start, rep.end)
            .filter_map(|(_, kps)| pump_features::trunk_lean(kps, pump_features::MIN_KEYPOINT_CONFIDENCE))
            .collect();
        let fifth = leans.len().div_ceil(5);
        let mut ends: Vec<f32> =
            leans.iter().take(fifth).chain(leans.iter().skip(leans.len() - fifth)).copied().collect();
        ends.sort_by(f32::total_cmp);
        ends.get(ends.len() / 2).copied()
    }

    /// The frames from `start` to `end`: first and last frame, pose rate and longest pause.
    fn span(&self, start: f64, end: f64) -> Span {
        let in_set = |f: &&FrameRecord| f.t >= start && f.t <= end;
        let start_frame = self.frames.iter().find(|f| in_set(f)).map(|f| f.frame).unwrap_or(0);
        let end_frame = self.frames.iter().rev().find(in_set).map(|f| f.frame).unwrap_or(start_frame);
        let times: Vec<f64> = self.frames.iter().filter(in_set).map(|f| f.t).collect();
        // Poses a second over the set: n poses span n - 1 intervals.
        let pose_rate = match (times.first(), times.last()) {
            (Some(first), Some(last)) if last > first => (times.len() - 1) as f64 / (last - first),
            _ => 0.0,
        };
        let longest_gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        Span { start_frame, end_frame, pose_rate, longest_gap }
    }
}

/// The frames a set covers, and how densely.
struct Span {
    start_frame: u64,
    end_frame: u64,
    pose_rate: f64,
    longest_gap: f64,
}

/// Every `k`-th point, `k` the smallest that leaves at most `max`; the last point always kept, so
/// a plot ends where the set does.
fn thin(points: Vec<(f64, f32)>, max: usize) -> Vec<(f64, f32)> {
    if points.len() <= max || max < 2 {
        return points;
    }
    let k = (points.len() - 1).div_ceil(max - 1);
    let last = points.len() - 1;
    points.into_iter().enumerate().filter(|(i, _)| i % k == 0 || *i == last).map(|(_, p)| p).collect()
}

/// A rep whose swing is under this fraction of the set's median is partial: said, not counted.
/// A coach counts a last rep lowered most of the way; a bob at a quarter of the depth is none.
pub const PARTIAL_REP_FRACTION: f32 = 0.4;
/// A rep quicker than this fraction of the set's median rep is a hitch (a bounce on the way up, a
/// shoulder keypoint that slid for a few frames), not a rep: said as partial. Athletes slow down
/// over a set, by half at the most, never to three times as fast.
pub const QUICK_REP_FRACTION: f64 = 0.3;

/// A signal's reps split into the full ones and the partial ones, judged against the median
/// swing and the median duration of them all. While the set is `live` its last rep may still be
/// on its way back, and is judged by its way there.
fn full_reps(reps: &[Rep], live: bool) -> (Vec<Rep>, Vec<Rep>) {
    let last = reps.len().saturating_sub(1);
    let swing = |i: usize, r: &Rep| if live && i == last { r.top - r.depth } else { r.swing() };
    let mut swings: Vec<f32> = reps.iter().enumerate().map(|(i, r)| swing(i, r)).collect();
    swings.sort_by(f32::total_cmp);
    let Some(median) = swings.get(swings.len() / 2).copied() else { return (Vec::new(), Vec::new()) };
    let mut durations: Vec<f64> = reps.iter().map(|r| r.end - r.start).collect();
    durations.sort_by(f64::total_cmp);
    let typical = durations.get(durations.len() / 2).copied().unwrap_or(0.0);
    let (mut full, mut partial) = (Vec::new(), Vec::new());
    for (i, r) in reps.iter().enumerate() {
        let quick = !(live && i == last) && r.end - r.start < QUICK_REP_FRACTION * typical;
        if swing(i, r) >= PARTIAL_REP_FRACTION * median && !quick {
            full.push(*r);
        } else {
            partial.push(*r);
        }
    }
    (full, partial)
}

/// The family whose reps count: the dominant motion among the exercise's signals (the body's
/// travels without one), the one whose full reps cover the most ground (a squat's shoulders and
/// hips count alike; a sit-up's hands and shoulders; a curl's hands, not its still hips). Told
/// the exercise, where two of its signals travel about as far ([`CLOSE_TRAVEL`]), the count more
/// of the person's signals agree on wins: a shoulder that flickers through a rep lost or gained
/// still travels as far as the hips, and the knee and the hands of the same squat say which count
/// is right. Not told, the signals learn which way a rep goes, and two heights that learned it the
/// wrong way round (a lunge that began rising) agree with each other: travel alone decides, and
/// only the ground each rep covered cleanly counts ([`Rep::clean_swing`]): a hand keypoint that
/// jitters through a quarter squat swings two to three times as far as the hips, and shakes
/// further than it swings. (Told, the count the signals agree on has already outvoted a shaking
/// signal, and a hip keypoint that shakes on a rep it counts right must keep its vote.)
fn counting_family(exercise: Option<&str>, family_reps: &[Vec<Rep>]) -> usize {
    let spec = exercise.and_then(exercise_spec);
    let candidates = spec.map(|e| e.signals).unwrap_or(&TRAVEL_SIGNALS);
    let full: Vec<Vec<Rep>> = family_reps.iter().map(|r| full_reps(r, false).0).collect();
    let ground = if spec.is_some() { Rep::swing } else { Rep::clean_swing };
    let travel = |s: &Signal| -> f32 { full[s.index()].iter().map(ground).sum() };
    let most = candidates.iter().map(travel).fold(0.0, f32::max);
    let votes = |s: &Signal| -> usize {
        let n = full[s.index()].len();
        if n == 0 || spec.is_none() || travel(s) < CLOSE_TRAVEL * most {
            return 0;
        }
        full.iter().filter(|f| f.len() == n).count()
    };
    // Told, where the body's signals are split evenly between two counts, the larger one: a
    // signal loses reps (its keypoints unseen at a rep's bottom, a bottom between two samples)
    // far more often than it makes them (floors and a partner's confirmation stand between a
    // keypoint's flicker and a rep).
    let larger = |a: &Signal, b: &Signal| match spec {
        Some(_) => full[a.index()].len().cmp(&full[b.index()].len()),
        None => std::cmp::Ordering::Equal,
    };
    candidates
        .iter()
        .rev()
        .max_by(|a, b| votes(a).cmp(&votes(b)).then(larger(a, b)).then(travel(a).total_cmp(&travel(b))))
        .map(|s| s.index())
        .unwrap_or(Signal::HipHeight.index())
}

/// Travels within this fraction of the longest are "about as far" for [`counting_family`].
const CLOSE_TRAVEL: f32 = 0.75;

#[cfg(test)]
mod tests;
