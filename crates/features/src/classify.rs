//! Exercises: which joint drives the rep count, and recognition by the nearest prototype.

use serde::Deserialize;

use crate::angle::Joint;
use crate::dtw::{dtw_distance_weighted, DtwConfig};
use crate::matrix::FeatureMatrix;
use crate::signal::{Rest, Signal};

/// An exercise name as the athlete knows it (`squat`, `bench_press`, …).
pub type Exercise = String;

/// An exercise pump knows: what its reps are counted on, where it rests between reps, and the
/// joint a plot of its set shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExerciseSpec {
    pub name: &'static str,
    /// The motions a coach counts, any of which may show the reps best: the hips' or the
    /// shoulders' travel in a squat (a shallow squat that leans forward moves the shoulders more
    /// than the hips), the hands' in a curl. The one that travels most over the set counts.
    pub signals: &'static [Signal],
    /// `None`: the first move of the set says (a press may start at the shoulders or locked out).
    pub rest: Option<Rest>,
    /// The joint family (left side) a plot of the set shows; the caller picks the side the camera
    /// sees better.
    pub joint: Joint,
}

const fn spec(name: &'static str, signals: &'static [Signal], rest: Option<Rest>, joint: Joint) -> ExerciseSpec {
    ExerciseSpec { name, signals, rest, joint }
}

const HIPS_OR_SHOULDERS: &[Signal] = &[HipHeight, ShoulderHeight];
const SHOULDERS: &[Signal] = &[ShoulderHeight];
const HIPS: &[Signal] = &[HipHeight];
const HANDS: &[Signal] = &[WristHeight];
const ELBOW_ANGLE: &[Signal] = &[ElbowAngle];

use Joint::{LeftElbow as ELBOW, LeftHip as HIP, LeftKnee as KNEE};
use Signal::{ElbowAngle, HipHeight, ShoulderHeight, WristHeight};
const HIGH: Option<Rest> = Some(Rest::High);
const LOW: Option<Rest> = Some(Rest::Low);

/// The exercises pump knows; aliases share a row's signal.
pub const EXERCISES: &[ExerciseSpec] = &[
    spec("squat", HIPS_OR_SHOULDERS, HIGH, KNEE),
    spec("front_squat", HIPS_OR_SHOULDERS, HIGH, KNEE),
    spec("goblet_squat", HIPS_OR_SHOULDERS, HIGH, KNEE),
    spec("back_squat", HIPS_OR_SHOULDERS, HIGH, KNEE),
    spec("lunge", HIPS_OR_SHOULDERS, HIGH, KNEE),
    spec("split_squat", HIPS_OR_SHOULDERS, HIGH, KNEE),
    // A deadlift starts at the floor and often pauses there; a Romanian one starts standing.
    spec("deadlift", SHOULDERS, LOW, HIP),
    spec("rdl", SHOULDERS, HIGH, HIP),
    spec("romanian_deadlift", SHOULDERS, HIGH, HIP),
    spec("good_morning", SHOULDERS, HIGH, HIP),
    spec("hip_thrust", HIPS, LOW, HIP),
    spec("glute_bridge", HIPS, LOW, HIP),
    spec("situp", SHOULDERS, LOW, HIP),
    spec("sit_up", SHOULDERS, LOW, HIP),
    spec("crunch", SHOULDERS, LOW, HIP),
    spec("pushup", SHOULDERS, HIGH, ELBOW),
    spec("push_up", SHOULDERS, HIGH, ELBOW),
    spec("dip", SHOULDERS, HIGH, ELBOW),
    spec("pullup", SHOULDERS, LOW, ELBOW),
    spec("pull_up", SHOULDERS, LOW, ELBOW),
    spec("chin_up", SHOULDERS, LOW, ELBOW),
    spec("bench", HANDS, None, ELBOW),
    spec("bench_press", HANDS, None, ELBOW),
    spec("incline", HANDS, None, ELBOW),
    spec("incline_press", HANDS, None, ELBOW),
    spec("incline_bench_press", HANDS, None, ELBOW),
    spec("overhead_press", HANDS, None, ELBOW),
    spec("ohp", HANDS, None, ELBOW),
    spec("shoulder_press", HANDS, None, ELBOW),
    spec("dumbbell_press", HANDS, None, ELBOW),
    spec("curl", HANDS, LOW, ELBOW),
    spec("bicep_curl", HANDS, LOW, ELBOW),
    spec("biceps_curl", HANDS, LOW, ELBOW),
    spec("hammer_curl", HANDS, LOW, ELBOW),
    spec("lateral_raise", HANDS, LOW, ELBOW),
    spec("jumping_jack", HANDS, LOW, ELBOW),
    spec("jumping_jacks", HANDS, LOW, ELBOW),
    // The elbow, not the hands: a triceps extension and a seated row move the hands sideways or
    // behind the head.
    spec("triceps_extension", ELBOW_ANGLE, HIGH, ELBOW),
    spec("tricep_extension", ELBOW_ANGLE, HIGH, ELBOW),
    spec("row", ELBOW_ANGLE, HIGH, ELBOW),
    spec("barbell_row", ELBOW_ANGLE, HIGH, ELBOW),
    spec("dumbbell_row", ELBOW_ANGLE, HIGH, ELBOW),
];

/// The row of a known exercise.
pub fn exercise_spec(exercise: &str) -> Option<&'static ExerciseSpec> {
    let e = normalise_exercise(exercise);
    EXERCISES.iter().find(|s| s.name == e)
}

/// The canonical form of an exercise name: lowercase, `-` and spaces as `_`.
pub fn normalise_exercise(exercise: &str) -> String {
    exercise.trim().to_ascii_lowercase().replace([' ', '-'], "_")
}

/// The joint family a plot of `exercise`'s set shows; `None` for a name pump does not know
/// (a usage error where the user typed it: see [`unknown_exercise`]).
pub fn driving_joint(exercise: &str) -> Option<Joint> {
    exercise_spec(exercise).map(|s| s.joint)
}

/// Checks an exercise name a user typed (a flag's value parser): its canonical form, or the one
/// line that lists the valid names.
pub fn parse_exercise(exercise: &str) -> Result<String, String> {
    driving_joint(exercise).map(|_| normalise_exercise(exercise)).ok_or_else(|| unknown_exercise(exercise))
}

/// The one line a user gets for an exercise name pump does not know, listing the valid ones.
pub fn unknown_exercise(exercise: &str) -> String {
    let names: Vec<&str> = EXERCISES.iter().map(|s| s.name).collect();
    format!("unknown exercise `{exercise}`; known: {}", names.join(", "))
}

/// One reference repetition of an exercise.
#[derive(Debug, Clone, PartialEq)]
pub struct Prototype {
    pub exercise: Exercise,
    pub features: FeatureMatrix,
    /// How far a rep may be from this one and still be this exercise (an open set): without it
    /// the nearest exercise wins however far it is, and with one exercise known every set would
    /// be it. `None`: no limit.
    pub max_distance: Option<f32>,
    /// The trunk's lean from upright at the rep's ends, where it rests (degrees;
    /// [`crate::signal::trunk_lean`]): a rep that starts lying down is never a standing
    /// exercise's ([`same_posture`]). `None`: unknown, compared with any rep.
    pub trunk: Option<f32>,
}

/// A trunk resting this far from upright (degrees) lies: a push-up, a sit-up, a bench press.
/// Measured on the real videos at the reps' ends: standing exercises 0–30° (a curl 0–3°, squats
/// 1–30°, the lunge 4–18°), lying ones 85–95°. 65° leaves a deadlift's start at the floor,
/// the trunk some 45–60° over, standing.
pub const LYING_LEAN_DEG: f32 = 65.0;

/// Whether two reps' trunks were in the same posture, standing or lying; an unknown lean
/// matches either.
pub fn same_posture(a: Option<f32>, b: Option<f32>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a >= LYING_LEAN_DEG) == (b >= LYING_LEAN_DEG),
        _ => true,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrototypeError {
    #[error("not a prototype: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("prototype has no frames")]
    Empty,
    #[error("max_distance must be a distance above zero")]
    MaxDistance,
    #[error("trunk must be a lean from upright in degrees, 0 to 180")]
    Trunk,
    #[error("{path}: {source}")]
    Read { path: std::path::PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    File { path: std::path::PathBuf, source: Box<PrototypeError> },
}

/// The reference reps pump ships (`crates/features/prototypes`): what a camera without
/// `--exercise` or `--prototypes` is recognised by. Only reps recorded from real people: the
/// squat fixture's man and the first rep of each real video (README there), radii measured on
/// squats of other people (docs/REPS.md, "Exercise recognition").
pub fn builtin_prototypes() -> Vec<Prototype> {
    const SHIPPED: &[&str] = &[
        include_str!("../prototypes/squat.json"),
        include_str!("../prototypes/squat_side_walkout.json"),
        include_str!("../prototypes/squat_crossfit_side.json"),
        include_str!("../prototypes/squat_barbell_front.json"),
        include_str!("../prototypes/lunge_split_squat_side.json"),
        include_str!("../prototypes/curl_dumbbell_side.json"),
        include_str!("../prototypes/pushup_floor_side.json"),
        include_str!("../prototypes/situp_side.json"),
    ];
    // Each is parsed by a unit test: a shipped file that does not parse fails it.
    SHIPPED.iter().filter_map(|text| Prototype::from_json(text).ok()).collect()
}

/// Loads every `*.json` prototype in `dir`, in name order. The crate's one piece of I/O: the
/// services and the CLI read prototypes the same way.
pub fn load_prototypes(dir: &std::path::Path) -> Result<Vec<Prototype>, PrototypeError> {
    fn read(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> PrototypeError {
        let path = path.to_path_buf();
        move |source| PrototypeError::Read { path, source }
    }
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(read(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(read(&p))?;
        out.push(
            Prototype::from_json(&text).map_err(|e| PrototypeError::File { path: p.clone(), source: Box::new(e) })?,
        );
    }
    Ok(out)
}

#[derive(Deserialize)]
struct PrototypeFile {
    exercise: String,
    frames: Vec<[f32; 6]>,
    #[serde(default)]
    max_distance: Option<f32>,
    #[serde(default)]
    trunk: Option<f32>,
}

impl Prototype {
    /// Parses `{"exercise": "squat", "frames": [[6 angles], …], "max_distance": d, "trunk": deg}`
    /// (the last two optional).
    pub fn from_json(text: &str) -> Result<Self, PrototypeError> {
        let f: PrototypeFile = serde_json::from_str(text)?;
        if f.frames.is_empty() {
            return Err(PrototypeError::Empty);
        }
        if f.max_distance.is_some_and(|d| !(d.is_finite() && d > 0.0)) {
            return Err(PrototypeError::MaxDistance);
        }
        if f.trunk.is_some_and(|t| !(0.0..=180.0).contains(&t)) {
            return Err(PrototypeError::Trunk);
        }
        Ok(Self {
            exercise: f.exercise,
            features: FeatureMatrix { rows: f.frames },
            max_distance: f.max_distance,
            trunk: f.trunk,
        })
    }

    /// The JSON form [`Prototype::from_json`] reads.
    pub fn to_json(&self) -> String {
        let mut v = serde_json::json!({ "exercise": self.exercise, "frames": self.features.rows });
        if let Some(d) = self.max_distance {
            v["max_distance"] = d.into();
        }
        if let Some(t) = self.trunk {
            v["trunk"] = t.into();
        }
        v.to_string()
    }
}

/// The nearest prototype's exercise and how sure that is.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    pub exercise: Exercise,
    /// (second best − best) / second best over exercises, clamped to 0..1; 1 with one exercise.
    pub confidence: f32,
    pub distance: f32,
}

/// Each exercise's distance to `query` (a rep, its trunk's lean): that of its nearest prototype
/// in the same posture. The joints that move in either rep weigh most ([`FeatureMatrix::motion`]):
/// a squat's knees and a curl's elbows decide, not the arms a squatter holds one way or another.
pub fn exercise_distances(
    query: &FeatureMatrix,
    trunk: Option<f32>,
    prototypes: &[Prototype],
    cfg: &DtwConfig,
) -> Vec<(Exercise, f32)> {
    let mut out: Vec<(Exercise, f32)> = Vec::new();
    let moves = query.motion();
    for p in prototypes.iter().filter(|p| same_posture(trunk, p.trunk)) {
        let theirs = p.features.motion();
        let w: [f32; 6] = std::array::from_fn(|c| moves[c].max(theirs[c]));
        let d = dtw_distance_weighted(query, &p.features, &w, cfg);
        match out.iter_mut().find(|(e, _)| *e == p.exercise) {
            Some((_, best)) => *best = best.min(d),
            None => out.push((p.exercise.clone(), d)),
        }
    }
    out
}

/// Picks the nearest exercise: confidence = (second − best) / second, clamped to 0..1; 1 with one
/// exercise; `None` with none.
pub fn nearest(distances: &[(Exercise, f32)]) -> Option<Classification> {
    let (best_i, _) = distances.iter().enumerate().min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))?;
    let (exercise, d) = distances[best_i].clone();
    let second =
        distances.iter().enumerate().filter(|(i, _)| *i != best_i).map(|(_, (_, d))| *d).fold(f32::INFINITY, f32::min);
    let confidence = if second.is_infinite() {
        1.0
    } else if second <= 0.0 {
        0.0
    } else {
        ((second - d) / second).clamp(0.0, 1.0)
    };
    Some(Classification { exercise, confidence, distance: d })
}

/// An exercise's open-set radius: the largest `max_distance` of its prototypes; `None` (no limit)
/// when one of them has none.
fn radius(prototypes: &[Prototype], exercise: &str) -> Option<f32> {
    prototypes.iter().filter(|p| p.exercise == exercise).try_fold(0.0f32, |r, p| Some(r.max(p.max_distance?)))
}

/// As [`nearest`], in an open set: an exercise farther than its radius is no candidate, and
/// "none of them" competes at the best one's radius — a rep half way to the edge has confidence
/// 0.5 at most. `None` when no exercise is near enough (or there are none).
pub fn nearest_within(distances: &[(Exercise, f32)], prototypes: &[Prototype]) -> Option<Classification> {
    let near: Vec<(Exercise, f32)> =
        distances.iter().filter(|(e, d)| radius(prototypes, e).is_none_or(|r| *d <= r)).cloned().collect();
    let mut c = nearest(&near)?;
    if let Some(r) = radius(prototypes, &c.exercise) {
        let second = near.iter().filter(|(e, _)| *e != c.exercise).map(|(_, d)| *d).fold(r, f32::min);
        c.confidence = if second > 0.0 { ((second - c.distance) / second).clamp(0.0, 1.0) } else { 0.0 };
    }
    Some(c)
}

/// Classifies a rep by the nearest prototype within its radius; `None` without one near enough.
pub fn classify(
    query: &FeatureMatrix,
    trunk: Option<f32>,
    prototypes: &[Prototype],
    cfg: &DtwConfig,
) -> Option<Classification> {
    nearest_within(&exercise_distances(query, trunk, prototypes, cfg), prototypes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto(ex: &str, knee: &[f32], elbow: &[f32]) -> Prototype {
        let rows = knee.iter().zip(elbow).map(|(k, e)| [*k, *k, *e, *e, 170.0, 170.0]).collect();
        Prototype { exercise: ex.into(), features: FeatureMatrix { rows }, max_distance: None, trunk: None }
    }

    #[test]
    fn nearest_prototype_wins_with_a_margin() {
        let squat = proto("squat", &[180.0, 130.0, 90.0, 130.0, 180.0], &[170.0; 5]);
        let curl = proto("curl", &[180.0; 5], &[170.0, 110.0, 50.0, 110.0, 170.0]);
        let query = proto("?", &[178.0, 150.0, 120.0, 95.0, 120.0, 150.0, 178.0], &[168.0; 7]).features;
        let c = classify(&query, None, &[squat, curl], &DtwConfig::default()).unwrap();
        assert_eq!(c.exercise, "squat");
        assert!(c.confidence > 0.5 && c.confidence <= 1.0, "{c:?}");
    }

    #[test]
    fn a_rep_done_lying_is_never_a_standing_exercise() {
        let squat = Prototype { trunk: Some(12.0), ..proto("squat", &[180.0, 90.0, 180.0], &[170.0; 3]) };
        let pushup = Prototype { trunk: Some(85.0), ..proto("pushup", &[180.0; 3], &[170.0, 80.0, 170.0]) };
        let protos = [squat.clone(), pushup];
        // A squat's exact angles, lying down: only the push-up is a candidate.
        let q = squat.features.clone();
        assert_eq!(classify(&q, Some(80.0), &protos, &DtwConfig::default()).unwrap().exercise, "pushup");
        assert_eq!(classify(&q, Some(10.0), &protos, &DtwConfig::default()).unwrap().exercise, "squat");
        // Without a lean (the trunk unseen) every prototype competes.
        assert_eq!(exercise_distances(&q, None, &protos, &DtwConfig::default()).len(), 2);
        assert!(same_posture(None, Some(90.0)) && same_posture(Some(0.0), Some(LYING_LEAN_DEG - 1.0)));
        assert!(!same_posture(Some(LYING_LEAN_DEG), Some(0.0)));
    }

    #[test]
    fn a_shallow_squat_is_nearer_a_deep_one_than_a_curl_whatever_its_arms_do() {
        // The reference squat holds its elbows bent at 60°; the curl bends them 170 → 60.
        let deep = proto("squat", &[180.0, 130.0, 80.0, 130.0, 180.0], &[60.0; 5]);
        let curl = proto("curl", &[178.0; 5], &[170.0, 110.0, 60.0, 110.0, 170.0]);
        // A quarter squat with the arms hanging straight.
        let shallow = proto("?", &[178.0, 160.0, 140.0, 160.0, 178.0], &[170.0; 5]).features;
        let c = classify(&shallow, None, &[deep, curl], &DtwConfig::default()).unwrap();
        assert_eq!(c.exercise, "squat", "{c:?}");
    }

    #[test]
    fn one_prototype_is_certain_and_none_is_none() {
        let squat = proto("squat", &[180.0, 90.0, 180.0], &[170.0; 3]);
        let q = squat.features.clone();
        assert_eq!(classify(&q, None, std::slice::from_ref(&squat), &DtwConfig::default()).unwrap().confidence, 1.0);
        // Two prototypes of the same exercise are still one exercise.
        let c = classify(&q, None, &[squat.clone(), squat], &DtwConfig::default()).unwrap();
        assert_eq!(c.confidence, 1.0);
        assert!(classify(&q, None, &[], &DtwConfig::default()).is_none());
    }

    #[test]
    fn in_an_open_set_a_far_rep_is_nothing_and_a_near_one_as_sure_as_it_is_near() {
        let squat = Prototype { max_distance: Some(1000.0), ..proto("squat", &[180.0, 90.0, 180.0], &[170.0; 3]) };
        let at = |d: f32| vec![("squat".to_string(), d)];
        let protos = std::slice::from_ref(&squat);
        // Half way to the edge: 0.5, however alone the exercise is; past it: nothing.
        assert_eq!(nearest_within(&at(500.0), protos).unwrap().confidence, 0.5);
        assert_eq!(nearest_within(&at(0.0), protos).unwrap().confidence, 1.0);
        assert!(nearest_within(&at(1000.1), protos).is_none());
        // A second exercise nearer than the edge is the rival instead.
        let curl = proto("curl", &[180.0; 3], &[170.0, 50.0, 170.0]);
        let both = [squat.clone(), curl];
        let d = vec![("squat".to_string(), 100.0), ("curl".to_string(), 400.0)];
        assert_eq!(nearest_within(&d, &both).unwrap().confidence, 0.75);
        // The unlimited curl wins a rep too far from the squat, at its own (plain) confidence.
        let d = vec![("squat".to_string(), 5000.0), ("curl".to_string(), 4000.0)];
        assert_eq!(nearest_within(&d, &both).map(|c| (c.exercise, c.confidence)), Some(("curl".into(), 1.0)));
    }

    #[test]
    fn the_shipped_prototypes_parse_and_are_limited() {
        let shipped = builtin_prototypes();
        assert_eq!(shipped.len(), 8, "every shipped file parses");
        let mut exercises: Vec<&str> = shipped.iter().map(|p| p.exercise.as_str()).collect();
        exercises.dedup();
        assert_eq!(exercises, ["squat", "lunge", "curl", "pushup", "situp"]);
        for p in &shipped {
            assert!(exercise_spec(&p.exercise).is_some(), "{} is an exercise pump counts", p.exercise);
            assert_eq!(p.max_distance, Some(5000.0), "{}", p.exercise);
            assert!(p.features.len() > 10, "{}", p.exercise);
            // Recorded standing or lying, as each exercise is done.
            let lying = matches!(p.exercise.as_str(), "pushup" | "situp");
            assert_eq!(p.trunk.map(|t| t >= LYING_LEAN_DEG), Some(lying), "{}", p.exercise);
        }
    }

    #[test]
    fn prototypes_round_trip_through_json() {
        let p = proto("squat", &[180.0, 90.0], &[170.0, 170.0]);
        assert_eq!(Prototype::from_json(&p.to_json()).unwrap(), p);
        let limited = Prototype { max_distance: Some(12.5), trunk: Some(85.5), ..p };
        assert_eq!(Prototype::from_json(&limited.to_json()).unwrap(), limited);
        assert!(Prototype::from_json(r#"{"exercise":"x","frames":[[1,2,3,4,5,6]],"trunk":-1}"#).is_err());
        assert!(Prototype::from_json(r#"{"exercise":"x","frames":[[1,2,3,4,5,6]],"max_distance":0}"#).is_err());
        assert!(Prototype::from_json("{\"exercise\":\"x\",\"frames\":[]}").is_err());
        assert!(Prototype::from_json("nope").is_err());
    }

    #[test]
    fn exercise_table_picks_the_driving_joint() {
        for e in ["squat", "front squat", "lunge", "goblet_squat"] {
            assert_eq!(driving_joint(e), Some(Joint::LeftKnee), "{e}");
        }
        for e in ["deadlift", "RDL"] {
            assert_eq!(driving_joint(e), Some(Joint::LeftHip), "{e}");
        }
        for e in ["bench_press", "incline press", "overhead_press", "curl", "triceps_extension", "row"] {
            assert_eq!(driving_joint(e), Some(Joint::LeftElbow), "{e}");
        }
    }

    #[test]
    fn an_unknown_exercise_is_refused_with_the_valid_names() {
        assert_eq!(driving_joint("benchpress"), None);
        assert_eq!(driving_joint(""), None);
        let line = unknown_exercise("benchpress");
        assert!(line.contains("`benchpress`") && line.contains("bench_press") && line.contains("squat"), "{line}");
        assert!(!line.contains('\n'));
        assert_eq!(parse_exercise("Bench Press").as_deref(), Ok("bench_press"));
        assert!(parse_exercise("benchpress").is_err());
    }
}
