//! Subject names. Every subject string in pump is built here.

use crate::error::{Error, Result};

/// Every camera's newest frame.
pub const FRAMES_ALL: &str = "pump.frames.>";
/// Every camera's poses.
pub const POSES_ALL: &str = "pump.poses.>";

/// Every camera's closed sets.
pub const SETS_ALL: &str = "pump.sets.>";
/// Every camera's live rep counts.
pub const REPS_ALL: &str = "pump.reps.>";

/// Every camera's resume checkpoint of the sets stage.
pub const SETS_RESUME_ALL: &str = "pump.sets-resume.>";
/// The sets stage's lease: which instance owns the poses consumer.
pub const SETS_LEASE: &str = "pump.sets-lease";

const FRAMES_PREFIX: &str = "pump.frames.";
const POSES_PREFIX: &str = "pump.poses.";
const SETS_PREFIX: &str = "pump.sets.";
const REPS_PREFIX: &str = "pump.reps.";
const SETS_RESUME_PREFIX: &str = "pump.sets-resume.";

/// A camera's name: one NATS subject token, so it can never smuggle a wildcard or a dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CameraId(String);

impl CameraId {
    /// Validates a camera name: 1–64 of `[A-Za-z0-9_-]`.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(name))
        } else {
            Err(Error::CameraName { name })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CameraId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `pump.frames.<camera>`: the camera's newest frame.
pub fn frames(camera: &CameraId) -> String {
    format!("{FRAMES_PREFIX}{camera}")
}

/// `pump.poses.<camera>`: every pose frame of the camera.
pub fn poses(camera: &CameraId) -> String {
    format!("{POSES_PREFIX}{camera}")
}

/// `pump.sets.<camera>`: the camera's closed sets (kept, never lost).
pub fn sets(camera: &CameraId) -> String {
    format!("{SETS_PREFIX}{camera}")
}

/// `pump.reps.<camera>`: live rep counts of the set in progress.
pub fn reps(camera: &CameraId) -> String {
    format!("{REPS_PREFIX}{camera}")
}

/// `pump.sets-resume.<camera>`: where the sets stage resumes the camera after a restart.
pub fn sets_resume(camera: &CameraId) -> String {
    format!("{SETS_RESUME_PREFIX}{camera}")
}

/// The camera a resume-checkpoint subject belongs to, if it is one.
pub fn camera_of_sets_resume(subject: &str) -> Option<CameraId> {
    subject.strip_prefix(SETS_RESUME_PREFIX).and_then(|c| CameraId::new(c).ok())
}

/// The camera a poses subject belongs to, if it is one.
pub fn camera_of_poses(subject: &str) -> Option<CameraId> {
    subject.strip_prefix(POSES_PREFIX).and_then(|c| CameraId::new(c).ok())
}

/// The camera a frames subject belongs to, if it is one.
pub fn camera_of_frames(subject: &str) -> Option<CameraId> {
    subject.strip_prefix(FRAMES_PREFIX).and_then(|c| CameraId::new(c).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_names_are_single_safe_tokens() {
        assert!(CameraId::new("rack-1_left").is_ok());
        for bad in ["", "a.b", "a*", ">", "a b", &"x".repeat(65)] {
            assert!(CameraId::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn subjects_round_trip() {
        let cam = CameraId::new("rack1").unwrap();
        assert_eq!(frames(&cam), "pump.frames.rack1");
        assert_eq!(poses(&cam), "pump.poses.rack1");
        assert_eq!(camera_of_frames("pump.frames.rack1"), Some(cam.clone()));
        assert_eq!(camera_of_frames("pump.frames.a.b"), None);
        assert_eq!(camera_of_frames("pump.poses.rack1"), None);
        assert_eq!(sets_resume(&cam), "pump.sets-resume.rack1");
        assert_eq!(camera_of_sets_resume("pump.sets-resume.rack1"), Some(cam));
        assert_eq!(camera_of_sets_resume("pump.sets.rack1"), None);
    }
}
