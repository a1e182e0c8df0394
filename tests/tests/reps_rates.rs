//! `pump sets` on every test clip (testdata/clips: faster and slower reps, 25 and 30 fps, two
//! sets with a rest, bystanders, a dim and a blurred gym), at full rate and thinned to the rates a
//! busy machine delivers: every k-th pose at 10, 6 and 4 poses a second, and newest-wins
//! schedules (each interval between half and one and a half times the mean) at 4 a second.
//! Exactly the true sets every time; a pause that can hide a rep is never a silent wrong count.
//! Each with the poses of the parity model input (640) and of the fast mode (`--imgsz 384` and
//! `320`), which docs/MEASUREMENTS.md recommends for more cameras per machine.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use pump_tests::reps::{clips, exact_newest_wins, exact_thinned, never_silently_wrong};

/// The committed poses: at 640 (parity), and at 384 and 320 (the fast mode).
const POSES: [&str; 3] = ["poses", "poses384", "poses320"];

#[test]
fn every_clip_is_exact_at_full_rate_and_thinned_to_10_6_and_4_poses_a_second() {
    for poses in POSES {
        for clip in clips(poses) {
            exact_thinned(&clip).unwrap_or_else(|e| panic!("{poses}: {e}"));
        }
    }
}

#[test]
fn every_clip_is_exact_at_4_poses_a_second_with_newest_wins_jitter() {
    for poses in POSES {
        for clip in clips(poses) {
            exact_newest_wins(&clip).unwrap_or_else(|e| panic!("{poses}: {e}"));
        }
    }
}

#[test]
fn a_lost_second_of_poses_is_exact_or_pending_never_silently_wrong() {
    for poses in POSES {
        for clip in clips(poses) {
            never_silently_wrong(&clip).unwrap_or_else(|e| panic!("{poses}: {e}"));
        }
    }
}
