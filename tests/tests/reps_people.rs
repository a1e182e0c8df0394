//! Reps of people the counter was never tuned on: real videos of real people (`../shared/real/`:
//! squats from the side and the front, a lunge, push-ups, sit-ups, a curl) and other people of
//! `bus.jpg` warped through squats (`testdata/people/`), at every pose schedule a busy machine
//! delivers (full rate, 10, 6 and 4 a second, newest-wins at 4 a second). Exactly the true sets
//! every time, told the exercise and not told (counted by the dominant motion).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use pump_tests::reps::{misses, real_videos, truth_folder, Clip};
use pump_tests::testdata;

fn assert_exact(clips: &[Clip], told: bool) {
    assert!(!clips.is_empty(), "no clips");
    let wrong: Vec<String> = clips.iter().flat_map(|c| misses(c, told)).collect();
    assert!(wrong.is_empty(), "{} wrong (told the exercise: {told}):\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn real_people_are_counted_exactly_at_every_pose_rate() {
    let Some(clips) = real_videos() else { return };
    assert_exact(&clips, true);
}

#[test]
fn real_people_are_counted_exactly_without_being_told_the_exercise() {
    let Some(clips) = real_videos() else { return };
    assert_exact(&clips, false);
}

#[test]
fn other_bodies_depths_tempos_and_sides_are_counted_exactly_at_every_pose_rate() {
    let clips = truth_folder(&testdata("people"));
    assert!(clips.len() >= 5, "{} clips", clips.len());
    assert_exact(&clips, true);
    assert_exact(&clips, false);
}
