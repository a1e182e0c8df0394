//! Features of a set: what the athlete's joints did, frame by frame. Pure: no async, and no I/O
//! but [`load_prototypes`].
//!
//! - [`angle`]: the interior angle at a joint, and the six joints pump follows.
//! - [`matrix`]: a set's (T, 6) joint-angle matrix, built with an explicit loop.
//! - [`dtw`]: dynamic time warping between two matrices (Sakoe-Chiba band).
//! - [`signal`]: what a rep is counted on — a joint's angle, or a body part's height in torso
//!   lengths.
//! - [`classify`]: nearest-prototype exercise recognition, and what each exercise is counted on.

pub mod angle;
pub mod classify;
pub mod dtw;
pub mod matrix;
pub mod signal;

pub use angle::{joint_angle, Joint, JOINTS};
pub use classify::{
    builtin_prototypes, classify, driving_joint, exercise_distances, exercise_spec, load_prototypes, nearest,
    nearest_within, normalise_exercise, parse_exercise, same_posture, unknown_exercise, Classification, Exercise,
    ExerciseSpec, Prototype, PrototypeError, EXERCISES, LYING_LEAN_DEG,
};
pub use dtw::{dtw_distance, dtw_distance_weighted, DtwConfig};
pub use matrix::{FeatureMatrix, MIN_KEYPOINT_CONFIDENCE};
pub use signal::{pair_height, torso_length, trunk_lean, Rest, Signal, SIGNALS, TRAVEL_SIGNALS};
