//! A synthetic athlete for the service tests and benches that publish poses straight onto the bus:
//! a body that squats as one does, whatever the model.

use pump_proto::{Keypoint, Person, PoseFrame};

/// A person squatting to `knee` degrees, as a body does: the ankles stay on the floor, the shins
/// and thighs fold, the hips and the shoulders above them go down by what the legs lost.
pub fn squatting_person(knee: f32) -> Person {
    let mut k = vec![Keypoint { x: 0.0, y: 0.0, confidence: 0.9 }; 17];
    let a = ((180.0 - knee) / 2.0).to_radians();
    let hip_y = 400.0 - 200.0 * a.cos();
    for (hip, kn, ankle, x0) in [(11, 13, 15, 100.0f32), (12, 14, 16, 140.0)] {
        k[ankle] = Keypoint { x: x0, y: 400.0, confidence: 0.9 };
        k[kn] = Keypoint { x: x0 + 100.0 * a.sin(), y: 400.0 - 100.0 * a.cos(), confidence: 0.9 };
        k[hip] = Keypoint { x: x0, y: hip_y, confidence: 0.9 };
    }
    for (shoulder, elbow, wrist, x0) in [(5, 7, 9, 100.0f32), (6, 8, 10, 140.0)] {
        k[shoulder] = Keypoint { x: x0, y: hip_y - 100.0, confidence: 0.9 };
        k[elbow] = Keypoint { x: x0, y: hip_y - 50.0, confidence: 0.9 };
        k[wrist] = Keypoint { x: x0, y: hip_y, confidence: 0.9 };
    }
    let bbox = pump_proto::Box { x1: 80.0, y1: hip_y - 150.0, x2: 260.0, y2: 410.0 };
    Person { r#box: Some(bbox), score: 0.9, keypoints: k }
}

/// The knee `t` seconds into `reps` squats of `seconds_per_rep` each (from standing, 175°, down
/// to 90° and back); standing before and after. Rep `i`'s bottom is at `(i + 0.5) ×
/// seconds_per_rep`, its return at `(i + 1) × seconds_per_rep`.
pub fn knee_in_squats(t: f64, reps: u32, seconds_per_rep: f64) -> f32 {
    if !(0.0..=reps as f64 * seconds_per_rep).contains(&t) {
        return 175.0;
    }
    175.0 - 85.0 * (0.5 - 0.5 * (t / seconds_per_rep * std::f64::consts::TAU).cos()) as f32
}

/// Camera `camera`'s pose frame `frame_id`, `t` seconds into its timeline (the capture clock 1 s
/// ahead), its athlete squatting to `knee` degrees.
pub fn squatting_pose_frame(camera: &str, frame_id: u64, t: f64, knee: f32) -> PoseFrame {
    PoseFrame {
        camera: camera.into(),
        frame_id,
        capture_ts_ns: 1_000_000_000 + (t * 1e9) as i64,
        source_ts_ns: (t * 1e9) as i64,
        width: 400,
        height: 500,
        people: vec![squatting_person(knee)],
        ..Default::default()
    }
}
