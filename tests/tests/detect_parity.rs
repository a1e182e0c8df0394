//! `pump detect` gives what Ultralytics 8.4 gives with the same model, frame by frame:
//! the same people, boxes within 1.0 px, confident keypoints (≥ 0.5) within 1.5 px, scores
//! within 0.01.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Command;

use pump_tests::{bin, json_lines, testdata};
use serde_json::Value;

const BOX_TOL: f64 = 1.0;
const KPT_TOL: f64 = 1.5;
const SCORE_TOL: f64 = 0.01;

fn nums(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect()
}

fn iou(a: &[f64], b: &[f64]) -> f64 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

/// Pairs each reference person with the detected one overlapping it most. People with equal
/// scores may come out in either order, so position in the list is not identity.
fn check_frame(name: &str, frame: usize, want: &[Value], got: &[Value]) {
    assert_eq!(got.len(), want.len(), "{name} frame {frame}: number of people");
    let mut used = vec![false; got.len()];
    for w in want {
        let wb = nums(&w["box"]);
        let (j, _) = got
            .iter()
            .enumerate()
            .filter(|(j, _)| !used[*j])
            .map(|(j, g)| (j, iou(&wb, &nums(&g["box"]))))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .expect("a person left to pair");
        used[j] = true;
        let g = &got[j];
        for (a, b) in wb.iter().zip(nums(&g["box"])) {
            assert!((a - b).abs() <= BOX_TOL, "{name} frame {frame}: box {wb:?} vs {:?}", g["box"]);
        }
        let (ws, gs) = (w["score"].as_f64().unwrap(), g["score"].as_f64().unwrap());
        assert!((ws - gs).abs() <= SCORE_TOL, "{name} frame {frame}: score {ws} vs {gs}");
        let (wk, gk) = (w["keypoints"].as_array().unwrap(), g["keypoints"].as_array().unwrap());
        assert_eq!(gk.len(), 17);
        for (k, (a, b)) in wk.iter().zip(gk).enumerate() {
            let (a, b) = (nums(a), nums(b));
            if a[2] >= 0.5 {
                let d = (a[0] - b[0]).abs().max((a[1] - b[1]).abs());
                assert!(d <= KPT_TOL, "{name} frame {frame}: keypoint {k} {a:?} vs {b:?}");
            }
        }
    }
}

fn check_fixture(name: &str) {
    let out = Command::new(bin("pump"))
        .env("PUMP_THREADS", "1")
        .env("PUMP_NO_SPIN", "1")
        .args(["detect", "--no-progress"])
        .arg(testdata(name))
        .output()
        .unwrap();
    assert!(out.status.success(), "pump detect {name} failed: {}", String::from_utf8_lossy(&out.stderr));
    let got = json_lines(&String::from_utf8(out.stdout).unwrap());
    let want = json_lines(&std::fs::read_to_string(testdata(&format!("{name}.ultralytics.jsonl"))).unwrap());
    assert_eq!(got.len(), want.len(), "{name}: one line per frame");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g["frame"].as_u64(), Some(i as u64), "{name}: frames in order, none skipped");
        assert_eq!(g["shape"], w["shape"], "{name} frame {i}: shape");
        check_frame(name, i, w["poses"].as_array().unwrap(), g["poses"].as_array().unwrap());
    }
}

#[test]
fn bus_matches_ultralytics() {
    check_fixture("bus.jpg");
}

#[test]
fn zidane_matches_ultralytics() {
    check_fixture("zidane.jpg");
}

#[test]
fn squat_video_matches_ultralytics_on_every_frame() {
    check_fixture("squat_5reps_15fps.mp4");
}
