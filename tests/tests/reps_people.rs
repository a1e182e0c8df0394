//! Reps of people the counter was never tuned on: real videos of real people (`../shared/real/`:
//! squats from the side and the front, a lunge, push-ups, sit-ups, a curl) and other people of
//! `bus.jpg` warped through squats (`testdata/people/`), at every pose schedule a busy machine
//! delivers (full rate, 10, 6 and 4 a second, newest-wins at 4 a second). Exactly the true sets
//! every time, told the exercise and not told (counted by the dominant motion). And what the
//! shipped prototypes, recorded from real people, call each set.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use pump_tests::reps::{clips, misses, real_videos, sets_with, truth_folder, Clip};
use pump_tests::{testdata, workspace};

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

/// The shipped prototypes, each with the video it was recorded from (`recorded_from`).
fn shipped_prototypes() -> Vec<(PathBuf, String)> {
    let dir = workspace().join("crates/features/prototypes");
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            let from = v["recorded_from"].as_str().unwrap_or_else(|| panic!("{}: no recorded_from", p.display()));
            (p.clone(), Path::new(from).file_name().unwrap().to_string_lossy().to_string())
        })
        .collect();
    out.sort();
    out
}

/// What each of the clip's sets is called, not told the exercise: (exercise, confidence,
/// pending), by the shipped prototypes or by those in `prototypes`.
fn names(clip: &Clip, prototypes: Option<&Path>) -> Vec<(String, f64, bool)> {
    let lines: Vec<&serde_json::Value> = clip.lines.iter().collect();
    let dir = prototypes.map(|p| p.to_string_lossy().to_string());
    let args: Vec<&str> = dir.iter().flat_map(|d| ["--prototypes", d.as_str()]).collect();
    sets_with(&lines, &args, clip.quiet)
        .iter()
        .map(|s| (s["exercise"].as_str().unwrap().to_string(), s["confidence"].as_f64().unwrap(), s["pending"] == true))
        .collect()
}

#[test]
fn real_people_s_exercises_are_recognised_by_the_reps_of_other_people() {
    let Some(videos) = real_videos() else { return };
    let shipped = shipped_prototypes();
    for clip in &videos {
        // Every shipped rep but the one recorded from this video.
        let others = tempfile::tempdir().unwrap();
        for (path, from) in &shipped {
            if *from != clip.name {
                std::fs::copy(path, others.path().join(path.file_name().unwrap())).unwrap();
            }
        }
        let exercise = clip.exercise.as_deref().unwrap();
        let got = names(clip, Some(others.path()));
        assert!(!got.is_empty(), "{}: no set", clip.name);
        for (name, confidence, pending) in &got {
            if exercise == "squat" {
                // Squats are recorded from four people: the others' reps name this one's.
                assert_eq!(name, "squat", "{} ({confidence})", clip.name);
            } else {
                // No one else's rep of this exercise ships: unknown, or a name said unsure.
                assert!(name == "unknown" || *pending, "{}: {name} at {confidence}, not pending", clip.name);
            }
        }
    }
}

#[test]
fn the_shipped_prototypes_name_each_real_video_and_never_name_a_squat_surely_wrong() {
    if let Some(videos) = real_videos() {
        for clip in &videos {
            let exercise = clip.exercise.as_deref().unwrap();
            for (name, confidence, _) in names(clip, None) {
                assert_eq!(name, exercise, "{} ({confidence})", clip.name);
            }
        }
    }
    // The fixture's squats and other bodies' (whose warped arms swing as a curl's do): a squat,
    // or a name said unsure.
    let squats = clips("poses").into_iter().chain(truth_folder(&testdata("people")));
    for clip in squats {
        for (name, confidence, pending) in names(&clip, None) {
            assert!(name == "squat" || pending, "{}: {name} at {confidence}, not pending", clip.name);
        }
    }
}
