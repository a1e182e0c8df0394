//! `pump sets` on every test clip (testdata/clips: faster and slower reps, 25 and 30 fps, two
//! sets with a rest, bystanders, a dim and a blurred gym), at full rate and thinned to the rates a
//! busy machine delivers: every k-th pose at 10, 6 and 4 poses a second, and newest-wins
//! schedules (each interval between half and one and a half times the mean) at 4 a second.
//! Exactly the true sets every time; a pause that can hide a rep is never a silent wrong count.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Command;
use std::time::Duration;

use pump_tests::{bin, json_lines, run_with_input, testdata};

struct Clip {
    name: String,
    sets: Vec<u64>,
    quiet: f64,
    lines: Vec<serde_json::Value>,
}

fn clips() -> Vec<Clip> {
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(testdata("clips/truth.json")).unwrap()).unwrap();
    truth["clips"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, t)| {
            let poses = testdata(&format!("clips/{}", name.replace(".mp4", ".poses.jsonl")));
            Clip {
                name: name.clone(),
                sets: t["sets"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap()).collect(),
                quiet: t["quiet_seconds"].as_f64().unwrap(),
                lines: json_lines(&std::fs::read_to_string(poses).unwrap()),
            }
        })
        .collect()
}

/// `pump sets --exercise squat` on these pose lines: the sets it prints.
fn sets(lines: &[&serde_json::Value], quiet: f64) -> Vec<serde_json::Value> {
    let mut cmd = Command::new(bin("pump"));
    cmd.args(["sets", "--exercise", "squat", "--quiet-seconds", &quiet.to_string(), "-"]);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let out = run_with_input(cmd, text.into_bytes(), Duration::from_secs(60));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    json_lines(&String::from_utf8(out.stdout).unwrap())
}

fn ts(l: &serde_json::Value) -> f64 {
    l["ts"].as_f64().unwrap()
}

/// Every pose whose time is due at `rate` a second.
fn thinned(lines: &[serde_json::Value], rate: f64) -> Vec<&serde_json::Value> {
    let mut next = 0.0;
    lines
        .iter()
        .filter(|l| {
            let keep = ts(l) + 1e-9 >= next;
            if keep {
                next += 1.0 / rate;
            }
            keep
        })
        .collect()
}

/// Deterministic noise in [-1, 1].
fn noise(i: u64) -> f64 {
    let x = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// What newest-wins inference at about `rate` a second takes from a camera: when the model is
/// free it takes the newest frame, and the model's time varies by ±50 %; `pause` adds a second
/// without poses (a replica lost) at that time.
fn newest_wins(lines: &[serde_json::Value], rate: f64, seed: u64, pause: Option<f64>) -> Vec<&serde_json::Value> {
    let (mut out, mut free_at, mut i, mut k) = (Vec::new(), 0.0, 0usize, seed * 7919);
    while i < lines.len() {
        let mut j = i;
        while j + 1 < lines.len() && ts(&lines[j + 1]) <= free_at {
            j += 1;
        }
        free_at = free_at.max(ts(&lines[j]));
        out.push(&lines[j]);
        i = j + 1;
        k += 1;
        let mut took = (1.0 + 0.5 * noise(k)) / rate;
        if pause.is_some_and(|p| free_at <= p && p < free_at + took) {
            took += 1.0;
        }
        free_at += took;
    }
    out
}

fn reps(sets: &[serde_json::Value]) -> Vec<u64> {
    sets.iter().map(|s| s["reps"].as_u64().unwrap()).collect()
}

#[test]
fn every_clip_is_exact_at_full_rate_and_thinned_to_10_6_and_4_poses_a_second() {
    for clip in clips() {
        let all: Vec<&serde_json::Value> = clip.lines.iter().collect();
        for (rate, lines) in [
            (None, all),
            (Some(10.0), thinned(&clip.lines, 10.0)),
            (Some(6.0), thinned(&clip.lines, 6.0)),
            (Some(4.0), thinned(&clip.lines, 4.0)),
        ] {
            let got = sets(&lines, clip.quiet);
            assert_eq!(reps(&got), clip.sets, "{} at {rate:?} poses/s: {got:?}", clip.name);
            for s in &got {
                assert_eq!(s["pending"], false, "{} at {rate:?} poses/s: {s}", clip.name);
            }
        }
    }
}

#[test]
fn every_clip_is_exact_at_4_poses_a_second_with_newest_wins_jitter() {
    for clip in clips() {
        for seed in 1..=3 {
            let got = sets(&newest_wins(&clip.lines, 4.0, seed, None), clip.quiet);
            assert_eq!(reps(&got), clip.sets, "{} seed {seed}: {got:?}", clip.name);
        }
    }
}

#[test]
fn a_lost_second_of_poses_is_exact_or_pending_never_silently_wrong() {
    for clip in clips() {
        for pause in [3.1, 5.0] {
            let got = sets(&newest_wins(&clip.lines, 6.0, 1, Some(pause)), clip.quiet);
            let wrong: Vec<&serde_json::Value> = got.iter().filter(|s| s["pending"] == false).collect();
            if reps(&got) != clip.sets {
                assert!(
                    !got.is_empty() && wrong.is_empty(),
                    "{} pause at {pause}: a wrong count not pending: {got:?}",
                    clip.name
                );
            }
            for s in &got {
                if s["longest_gap"].as_f64().unwrap() > 1.0 {
                    assert_eq!(s["pending"], true, "{s}");
                }
            }
        }
    }
}
