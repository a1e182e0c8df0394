//! What a set tracker says: the live count of the set in progress going up, and each set it
//! closes.

use pump_features::{FeatureMatrix, Prototype, Signal};
use pump_types::BBox;

/// A closed set.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedSet {
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
    /// The configured or recognised exercise; `None` when it could not be told.
    pub exercise: Option<String>,
    pub confidence: f32,
    pub features: FeatureMatrix,
    /// Time of each feature row.
    pub feature_times: Vec<f64>,
    /// (start, end) of each rep.
    pub rep_spans: Vec<(f64, f64)>,
    /// Each rep's smallest angle of the plotted joint (degrees): how deep it went.
    pub rep_depths: Vec<f32>,
    /// Each rep's trunk lean at its ends (degrees from upright; `None` where the trunk was not
    /// seen): whether it was done standing or lying.
    pub rep_leans: Vec<Option<f32>>,
    /// Turnaround times of moves too shallow to be reps (under [`crate::set::PARTIAL_REP_FRACTION`]
    /// of the set's median swing): said, not counted.
    pub partial_reps: Vec<f64>,
    /// What the reps were counted on.
    pub signal: Signal,
    /// Poses a second seen during the set.
    pub pose_rate: f64,
    /// The longest pause between two poses during the set (s).
    pub longest_gap: f64,
    /// The counted joint's angle (degrees) over the set, at its times: what a plot of the set
    /// draws. At most [`MAX_TRACE_POINTS`], evenly thinned.
    pub trace: Vec<(f64, f32)>,
    /// Fewer than 3 reps, an exercise recognised with confidence under 0.75, a pose rate under
    /// the floor or a pause that could hide a rep: the athlete should confirm the set.
    pub pending: bool,
    /// Closed at the longest a set may last ([`crate::SetConfig::max_seconds`], `max_reps`)
    /// while the athlete went on: the camera's next set continues this one.
    pub continued: bool,
}

/// The most points a set's angle trace carries: a plot a few hundred pixels wide needs no more,
/// and a live count stays a few kilobytes however long the set.
pub const MAX_TRACE_POINTS: usize = 240;

/// What a set of no known exercise is called on the wire and on screen.
pub const UNKNOWN_EXERCISE: &str = "unknown";

impl ClosedSet {
    /// The exercise's name, [`UNKNOWN_EXERCISE`] when it could not be told.
    pub fn exercise_name(&self) -> &str {
        self.exercise.as_deref().unwrap_or(UNKNOWN_EXERCISE)
    }

    /// Rep `i` (0-based) as a reference rep of `exercise`: what `pump prototype` records.
    pub fn prototype(&self, i: usize, exercise: &str) -> Option<Prototype> {
        let features = self.rep_features(i).filter(|f| !f.is_empty())?;
        let trunk = self.rep_leans.get(i).copied().flatten();
        Some(Prototype { exercise: exercise.to_string(), features, max_distance: None, trunk })
    }

    /// The feature rows of rep `i` (0-based): a reference rep for a prototype.
    pub fn rep_features(&self, i: usize) -> Option<FeatureMatrix> {
        let (start, end) = *self.rep_spans.get(i)?;
        Some(rows_between(&self.features, &self.feature_times, start, end))
    }
}

/// The rows of `m` whose time (in `times`) lies within `start..=end`.
pub(crate) fn rows_between(m: &FeatureMatrix, times: &[f64], start: f64, end: f64) -> FeatureMatrix {
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
        /// Where the set's athlete was last seen: who is counted.
        athlete: Option<BBox>,
        /// The counted joint's angle over the set so far, as [`ClosedSet::trace`].
        trace: Vec<(f64, f32)>,
    },
    /// A set closed (boxed: a set with its features is far larger than a rep).
    Closed(Box<ClosedSet>),
}

#[cfg(feature = "proto")]
impl ClosedSet {
    /// The wire form of the set, its timeline times placed on the wall clock by `wall_offset_ns`
    /// (capture time − timeline time of its camera's poses; 0: not known, no wall times). The one
    /// form every consumer reads: pump-sets publishes it, `pump sets` prints it offline.
    pub fn to_message(&self, wall_offset_ns: i64) -> pump_proto::SetEvent {
        let unix_ns = |t: f64| if wall_offset_ns == 0 { 0 } else { ((t * 1e9) as i64).saturating_add(wall_offset_ns) };
        pump_proto::SetEvent {
            camera: self.camera.clone(),
            set_id: self.set_id.clone(),
            start_s: self.start,
            end_s: self.end,
            start_frame: self.start_frame,
            end_frame: self.end_frame,
            reps: self.reps as u32,
            rep_times_s: self.rep_times.clone(),
            exercise: self.exercise_name().to_string(),
            confidence: self.confidence,
            frames: self.features.len() as u32,
            angle_ranges: self
                .features
                .ranges()
                .map(|r| r.iter().map(|(min, max)| pump_proto::AngleRange { min: *min, max: *max }).collect())
                .unwrap_or_default(),
            features: self.features.rows.iter().map(|r| pump_proto::FeatureRow { angles: r.to_vec() }).collect(),
            pending: self.pending,
            pose_rate: self.pose_rate,
            longest_gap_s: self.longest_gap,
            rep_depths_deg: self.rep_depths.clone(),
            rep_durations_s: self.rep_spans.iter().map(|(start, end)| end - start).collect(),
            start_unix_ns: unix_ns(self.start),
            end_unix_ns: unix_ns(self.end),
            trace_t_s: self.trace.iter().map(|p| p.0).collect(),
            trace_deg: self.trace.iter().map(|p| p.1).collect(),
            // The gateway says where a clip is; the sets service records none.
            clip: String::new(),
            continued: self.continued,
            partial_rep_times_s: self.partial_reps.clone(),
            counted_on: self.signal.name().to_string(),
        }
    }
}
