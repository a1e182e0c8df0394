//! `pump detect` end to end through the built binary: its line format, and one clear line with a
//! non-zero exit (never a panic or a hang) for every kind of bad input.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use pump_tests::media::{green_in, rgb_frames};
use pump_tests::{bin, identity_onnx_model, json_lines, testdata};

/// Runs `pump` with a deadline, so a hang fails the test instead of stalling the suite.
fn pump(args: &[&std::ffi::OsStr]) -> Output {
    let child = Command::new(bin("pump"))
        // Tests run side by side on few cores: one inference thread each, no spinning.
        .env("PUMP_THREADS", "1")
        .env("PUMP_NO_SPIN", "1")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    pump_tests::wait_with_deadline(child, Duration::from_secs(120))
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

/// Asserts a failure with exit `code` and a single stderr line containing `needle`.
fn assert_clear_failure(out: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {stderr}");
    assert!(stderr.contains(needle), "stderr should mention {needle:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "must not panic: {stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout for a failed start");
}

#[test]
fn image_gives_one_line_with_timestamp_zero() {
    let out = pump(&[os("detect"), testdata("zidane.jpg").as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(lines.len(), 1);
    let l = &lines[0];
    assert_eq!(l["frame"], 0);
    assert_eq!(l["ts"], 0.0);
    assert_eq!(l["shape"], serde_json::json!([720, 1280]));
    assert!(l.get("source").is_none(), "one source: no source field");
    let p = &l["poses"][0];
    assert_eq!(p["box"].as_array().unwrap().len(), 4);
    assert_eq!(p["keypoints"].as_array().unwrap().len(), 17);
    assert!(p["keypoints"].as_array().unwrap().iter().all(|k| k.as_array().unwrap().len() == 3));
}

#[test]
fn video_frames_carry_the_media_timestamps() {
    let out = pump(&[os("detect"), testdata("squat_5reps_15fps.mp4").as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(lines.len(), 180);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["frame"], i as u64);
        let ts = l["ts"].as_f64().unwrap();
        assert!((ts - i as f64 / 15.0).abs() < 1e-3, "frame {i}: ts {ts}");
    }
}

#[test]
fn decoding_threads_change_speed_not_answers() {
    let video = testdata("squat_5reps_15fps.mp4");
    let one = pump(&[os("detect"), os("--decode-threads"), os("1"), video.as_os_str()]);
    let auto = pump(&[os("detect"), os("--decode-threads"), os("0"), video.as_os_str()]);
    assert!(one.status.success() && auto.status.success(), "{}", String::from_utf8_lossy(&auto.stderr));
    assert_eq!(json_lines(std::str::from_utf8(&one.stdout).unwrap()).len(), 180);
    assert!(one.stdout == auto.stdout, "the same frames decoded, the same poses");
}

#[test]
fn several_sources_are_processed_in_order_and_named() {
    let (a, b) = (testdata("bus.jpg"), testdata("zidane.jpg"));
    let out = pump(&[os("detect"), a.as_os_str(), b.as_os_str(), a.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&String::from_utf8(out.stdout).unwrap());
    let sources: Vec<_> = lines.iter().map(|l| l["source"].as_str().unwrap().to_string()).collect();
    let names = [a.display().to_string(), b.display().to_string(), a.display().to_string()];
    assert_eq!(sources, names);
    assert_eq!(lines[0]["poses"].as_array().unwrap().len(), 4);
    assert_eq!(lines[1]["poses"].as_array().unwrap().len(), 2);
    assert_eq!(lines[0]["poses"], lines[2]["poses"], "same image, same answer");
}

#[test]
fn missing_file_is_one_clear_error() {
    let out = pump(&[os("detect"), testdata("bus.jpg").as_os_str(), os("/no/such/clip.mp4")]);
    assert_clear_failure(&out, 1, "/no/such/clip.mp4: no such file");
}

#[test]
fn directory_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let out = pump(&[os("detect"), dir.path().as_os_str()]);
    assert_clear_failure(&out, 1, "not a file");
}

#[test]
fn text_file_is_not_media() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("notes.txt");
    std::fs::write(&f, "squats on monday\n".repeat(100)).unwrap();
    let out = pump(&[os("detect"), f.as_os_str()]);
    assert_clear_failure(&out, 1, "not an image or a video");
}

#[test]
fn corrupt_video_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("broken.mp4");
    let bytes = std::fs::read(testdata("squat_5reps_15fps.mp4")).unwrap();
    // The moov atom is at the end of this file: the front half alone has no decodable frame.
    let mut half = bytes[..bytes.len() / 2].to_vec();
    half[..64].fill(0);
    std::fs::write(&f, &half).unwrap();
    let out = pump(&[os("detect"), f.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("broken.mp4"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn unreadable_image_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("cut.jpg");
    let bytes = std::fs::read(testdata("bus.jpg")).unwrap();
    std::fs::write(&f, &bytes[..200]).unwrap();
    let out = pump(&[os("detect"), f.as_os_str()]);
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cut.jpg") && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn model_that_is_not_onnx_is_rejected() {
    let out = pump(&[os("detect"), os("--model"), testdata("bus.jpg").as_os_str(), testdata("bus.jpg").as_os_str()]);
    assert_clear_failure(&out, 1, "failed to load model");
}

#[test]
fn onnx_model_that_is_not_yolo_pose_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("identity.onnx");
    std::fs::write(&m, identity_onnx_model()).unwrap();
    let out = pump(&[os("detect"), os("--model"), m.as_os_str(), testdata("bus.jpg").as_os_str()]);
    assert_clear_failure(&out, 1, "is not a YOLO-pose model");
}

#[test]
fn missing_model_names_the_fix() {
    let out = pump(&[os("detect"), os("--model"), os("/nope.onnx"), testdata("bus.jpg").as_os_str()]);
    assert_clear_failure(&out, 1, "model file not found at /nope.onnx");
}

#[test]
fn missing_onnxruntime_names_the_fix() {
    let out = pump(&[os("detect"), os("--ort-lib"), os("/nope/libonnxruntime.so"), testdata("bus.jpg").as_os_str()]);
    assert_clear_failure(&out, 1, "PUMP_ORT_LIB");
}

#[test]
fn bad_flags_exit_with_usage_code() {
    assert_eq!(pump(&[os("detect"), os("--conf"), os("2"), testdata("bus.jpg").as_os_str()]).status.code(), Some(64));
    assert_eq!(pump(&[os("detect")]).status.code(), Some(64));
    assert_eq!(pump(&[os("detect"), os("--device"), os("tpu"), os("x.jpg")]).status.code(), Some(64));
    assert_eq!(pump(&[os("--help")]).status.code(), Some(0));
}

#[test]
fn cuda_where_it_cannot_load_is_an_error_unless_fallback_is_allowed() {
    let img = testdata("bus.jpg");
    let out = pump(&[os("detect"), os("--device"), os("cuda"), img.as_os_str()]);
    assert_clear_failure(&out, 1, "--allow-cpu-fallback");
    let out = pump(&[os("detect"), os("--device"), os("cuda"), os("--allow-cpu-fallback"), img.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("running on CPU").count(), 1, "exactly one warning: {stderr}");
    assert_eq!(json_lines(&String::from_utf8(out.stdout).unwrap())[0]["poses"].as_array().unwrap().len(), 4);
    // Several engines on a video: still one warning.
    let video = testdata("squat_5reps_15fps.mp4");
    let out = pump(&[
        os("detect"),
        os("--device"),
        os("cuda"),
        os("--allow-cpu-fallback"),
        os("--workers"),
        os("2"),
        video.as_os_str(),
    ]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr).matches("running on CPU").count(), 1);
}

#[test]
fn closed_pipe_ends_quietly() {
    // `pump detect video | head -1`: the reader leaving early is not an error.
    let mut child = Command::new(bin("pump"))
        .env("PUMP_THREADS", "1")
        .args(["detect", "--no-progress"])
        .arg(testdata("squat_5reps_15fps.mp4"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "pump kept running after its reader left");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
}

#[test]
fn save_writes_the_video_with_every_pose_drawn_on_its_own_frame() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("squat.mp4");
    let clip = testdata("squat_5reps_15fps.mp4");
    let out = pump(&[os("detect"), clip.as_os_str(), os("--save"), saved.as_os_str(), os("--no-progress")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(lines.len(), 180);
    // Its last line says what it did.
    assert!(stderr.contains("pump detect: 180 frames in") && stderr.contains("drawn on in"), "{stderr}");
    let (w, h) = (320, 516);
    let drawn = rgb_frames(&saved, w, h);
    let plain = rgb_frames(&clip, w, h);
    assert_eq!((drawn.len(), plain.len()), (180, 180), "every frame, in order");
    for i in [0usize, 45, 90, 135, 179] {
        // Inside the frame's most confident person's box: bones drawn, where the clip has none.
        let b = &lines[i]["poses"][0]["box"];
        let coord = |k: usize, max: usize| (b[k].as_f64().unwrap().max(0.0) as usize).min(max);
        let bbox = (coord(0, w), coord(1, h), coord(2, w), coord(3, h));
        let (on, off) = (green_in(&drawn[i], w, bbox), green_in(&plain[i], w, bbox));
        assert!(on > 200 && off < on / 10, "frame {i}: {on} green pixels drawn, {off} in the clip");
    }
}

#[test]
fn save_dir_writes_each_image_drawn_on_under_its_own_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = pump(&[
        os("detect"),
        testdata("bus.jpg").as_os_str(),
        testdata("zidane.jpg").as_os_str(),
        os("--save-dir"),
        dir.path().as_os_str(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for name in ["bus.jpg", "zidane.jpg"] {
        let (w, h, rgb) = pump_tests::media::decode_jpeg(&std::fs::read(dir.path().join(name)).unwrap());
        let (sw, sh, _) = pump_tests::media::decode_jpeg(&std::fs::read(testdata(name)).unwrap());
        assert_eq!((w, h), (sw, sh), "{name}: its own size");
        assert!(green_in(&rgb, w, (0, 0, w, h)) > 500, "{name}: skeletons drawn");
    }
    // One output for several sources is a mistake, said in one line before any work.
    let out = pump(&[
        os("detect"),
        testdata("bus.jpg").as_os_str(),
        testdata("zidane.jpg").as_os_str(),
        os("--save"),
        dir.path().join("x.jpg").as_os_str(),
    ]);
    assert_clear_failure(&out, 1, "--save takes one SOURCE (2 given)");
    let out = pump(&[os("detect"), testdata("squat_5reps_15fps.mp4").as_os_str(), os("--save"), os("x.mkv")]);
    assert_clear_failure(&out, 1, "written as .mp4 or .avi");
}
