//! `pump sets` end to end through the binary: exactly 5 reps in one set on the squat fixture,
//! from Ultralytics' poses and from pump's own (as a pipe), and one clear line for bad input.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use pump_tests::{bin, json_lines, run_with_input, testdata, wait_with_deadline};

fn sets(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(bin("pump"));
    cmd.arg("sets").args(args);
    run_with_input(cmd, stdin.unwrap_or_default().to_vec(), Duration::from_secs(60))
}

fn truth_reps() -> u64 {
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(testdata("squat_5reps_15fps.mp4.truth.json")).unwrap()).unwrap();
    truth["sets"][0].as_u64().unwrap()
}

#[test]
fn squat_fixture_from_ultralytics_poses_is_one_set_of_five() {
    let fixture = testdata("squat_5reps_15fps.mp4.ultralytics.jsonl");
    for extra in [&["--exercise", "squat"][..], &[][..]] {
        let mut args = vec!["--fps", "15"];
        args.extend_from_slice(extra);
        args.push(fixture.to_str().unwrap());
        let out = sets(&args, None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let lines = json_lines(&String::from_utf8(out.stdout).unwrap());
        assert_eq!(lines.len(), 1, "one set: {lines:?}");
        let s = &lines[0];
        assert_eq!(s["type"], "set");
        assert_eq!(s["reps"].as_u64(), Some(truth_reps()));
        assert_eq!(s["rep_times"].as_array().unwrap().len(), 5);
        // Without --exercise, the shipped squats recognise it, sure enough.
        assert_eq!(s["exercise"], "squat");
        assert_eq!(s["pending"], false, "{s}");
        // The one form a set has everywhere: the keys, in order, of what `pump sets --json`
        // prints from the gateway and `pump hook --url` posts.
        let form = pump_bus::json::set_json(&pump_proto::SetEvent::default());
        let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(s), keys(&form));
        assert!(s["counted_on"].as_str().is_some_and(|c| !c.is_empty()), "{s}");
        assert_eq!(
            (&s["start_utc"], &s["clip"]),
            (&"".into(), &serde_json::Value::Null),
            "offline: no wall clock, no clip"
        );
        if !extra.is_empty() {
            // The truth's set runs over frames 15–165.
            assert!(s["start_frame"].as_u64().unwrap().abs_diff(15) <= 3, "{s}");
            assert!(s["end_frame"].as_u64().unwrap().abs_diff(165) <= 3, "{s}");
        }
    }
}

#[test]
fn detect_piped_into_sets_counts_five() {
    let mut detect = Command::new(bin("pump"))
        .env("PUMP_THREADS", "1")
        .args(["detect", "--no-progress"])
        .arg(testdata("squat_5reps_15fps.mp4"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let sets = Command::new(bin("pump"))
        .args(["sets", "--exercise", "squat", "-"])
        .stdin(detect.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_with_deadline(sets, Duration::from_secs(120));
    assert!(detect.wait().unwrap().success(), "pump detect ends when its input is done");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["reps"].as_u64(), Some(5));
}

#[test]
fn bad_input_names_the_line() {
    let good = r#"{"frame":0,"ts":0.0,"shape":[10,10],"poses":[]}"#;
    let cases: [(String, &str); 4] = [
        (format!("{good}\nnot json\n"), "line 2: not JSON"),
        (format!("{good}\n{{\"frame\":1}}\n"), "line 2: not a `pump detect` line"),
        ("{\"frame\":0,\"shape\":[1,1],\"poses\":[]}\n".to_string(), "line 1: no `ts`"),
        (format!("{good}\n{good}\n"), "no poses at all in 2 frames"),
    ];
    for (input, needle) in cases {
        let out = sets(&["-"], Some(input.as_bytes()));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{needle}: {stderr}");
        assert!(stderr.contains(needle), "want {needle:?}: {stderr}");
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn empty_stream_is_no_sets() {
    let out = sets(&["-"], Some(b""));
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn a_recorded_prototype_recognises_the_exercise() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = testdata("squat_5reps_15fps.mp4.ultralytics.jsonl");
    let squat = dir.path().join("squat.json");
    let out = Command::new(bin("pump"))
        .args(["prototype", "--exercise", "squat", "--fps", "15", "-o"])
        .arg(&squat)
        .arg(&fixture)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A second exercise: arms bending, legs straight.
    let curl: Vec<[f32; 6]> = (0..30)
        .map(|i| {
            let e = 170.0 - 120.0 * (0.5 - 0.5 * (i as f32 / 30.0 * std::f32::consts::TAU).cos());
            [178.0, 178.0, e, e, 175.0, 175.0]
        })
        .collect();
    std::fs::write(dir.path().join("curl.json"), serde_json::json!({"exercise": "curl", "frames": curl}).to_string())
        .unwrap();
    let out = sets(&["--fps", "15", "--prototypes", dir.path().to_str().unwrap(), fixture.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["exercise"], "squat");
    assert_eq!(lines[0]["reps"].as_u64(), Some(5));
    assert!(lines[0]["confidence"].as_f64().unwrap() >= 0.75, "{}", lines[0]);
    assert_eq!(lines[0]["pending"], false);
    // A broken prototype folder is one clear error.
    std::fs::write(dir.path().join("broken.json"), "{").unwrap();
    let out = sets(&["--fps", "15", "--prototypes", dir.path().to_str().unwrap(), fixture.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.json"));
}

/// `pump detect` lines of someone curling in place: legs straight, the right forearm swinging
/// from hanging to up and back every 2 s, the left arm hidden.
fn curling_person(seconds: f64) -> String {
    let mut out = String::new();
    for i in 0..(seconds * 15.0) as usize {
        let t = i as f64 / 15.0;
        let a = (150.0 * (0.5 - 0.5 * (t * std::f64::consts::PI).cos())).to_radians();
        let (ex, ey) = (150.0, 250.0);
        let mut k = vec![[160.0, 100.0, 0.9]; 17];
        for (n, (x, y)) in [
            (5, (170.0, 170.0)),
            (6, (150.0, 170.0)),
            (7, (175.0, 250.0)),
            (8, (ex, ey)),
            (9, (178.0, 330.0)),
            (10, (ex - 80.0 * a.sin(), ey + 80.0 * a.cos())),
            (11, (168.0, 330.0)),
            (12, (152.0, 330.0)),
            (13, (168.0, 430.0)),
            (14, (152.0, 430.0)),
            (15, (168.0, 530.0)),
            (16, (152.0, 530.0)),
        ] {
            k[n] = [x, y, 0.9];
        }
        // The left arm behind the body: the camera sees the right one.
        k[7][2] = 0.3;
        k[9][2] = 0.3;
        let line = serde_json::json!({"frame": i, "ts": t, "shape": [600, 320],
            "poses": [{"box": [100.0, 60.0, 240.0, 560.0], "score": 0.9, "keypoints": k}]});
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

#[test]
fn a_set_that_is_no_squat_is_not_called_one() {
    // Ten curls of a made-up body: counted on the hands, and called what they are, by the real
    // person's curl that ships, not the squats beside it (a made-up body: said unsure).
    let dir = tempfile::tempdir().unwrap();
    let poses = dir.path().join("curls.jsonl");
    std::fs::write(&poses, curling_person(25.0)).unwrap();
    let out = sets(&[poses.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!((lines[0]["exercise"].as_str(), lines[0]["pending"].as_bool()), (Some("curl"), Some(true)));
    assert!(lines[0]["reps"].as_u64().is_some_and(|r| (11..=12).contains(&r)), "{}", lines[0]);
}

/// Half an hour of squats every 2 s with no pause, as `pump detect` lines at 15 fps.
fn endless_squats_lines(minutes: u32) -> Vec<u8> {
    let reps = minutes * 30;
    let mut text = String::new();
    for i in 0..u64::from(minutes) * 60 * 15 {
        let t = i as f64 / 15.0;
        let p = pump_tests::bodies::squatting_person(pump_tests::bodies::knee_in_squats(t - 1.0, reps, 2.0));
        let b = p.r#box.unwrap();
        let kps: Vec<[f32; 3]> = p.keypoints.iter().map(|k| [k.x, k.y, k.confidence]).collect();
        let pose = serde_json::json!({"box": [b.x1, b.y1, b.x2, b.y2], "score": p.score, "keypoints": kps});
        text.push_str(&serde_json::json!({"frame": i, "ts": t, "shape": [500, 400], "poses": [pose]}).to_string());
        text.push('\n');
    }
    text.into_bytes()
}

#[test]
fn a_half_hour_without_a_pause_is_sets_of_at_most_a_hundred_reps_continued_with_none_lost() {
    let out = sets(&["--exercise", "squat", "-"], Some(&endless_squats_lines(30)));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&String::from_utf8(out.stdout).unwrap());
    let counts: Vec<u64> = lines.iter().map(|s| s["reps"].as_u64().unwrap()).collect();
    // 900 reps, the last still on its way up when the stream ends; before, one set of them all
    // that a live camera never closed.
    assert!((899..=900).contains(&counts.iter().sum::<u64>()), "{counts:?}");
    assert!(lines.len() >= 9 && counts.iter().all(|&n| n <= 100), "{counts:?}");
    let (last, continued) = lines.split_last().unwrap();
    assert!(continued.iter().all(|s| s["continued"] == true) && last["continued"] == false, "{lines:?}");
    assert!(lines.iter().all(|s| s["partial_reps"].as_array().unwrap().is_empty()));
    for w in lines.windows(2) {
        assert!(w[1]["start"].as_f64().unwrap() >= w[0]["end"].as_f64().unwrap());
    }
    // One bad value is one clear line.
    let out = sets(&["--max-set-reps", "0", "-"], Some(b""));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-set-reps"));
}
