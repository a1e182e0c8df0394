//! Faithful pixels by default: the poses computed behind the bus (capture → NATS → inference,
//! every setting at its default) are the poses `pump detect` finds in the camera's own frames —
//! same people, boxes within 1 px, keypoints with confidence ≥ 0.5 within 1.5 px — on a 1080p
//! clip (the squat clip scaled and padded to 1920×1080 by ffmpeg, 1 s of it).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Command;
use std::time::Duration;

use pump_tests::services::{client, collect, file_capture_config, start_real_infer};
use pump_tests::{bin, json_lines, testdata, wait_with_deadline, NatsServer};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_poses_match_pump_detect_on_the_camera_frames_at_1080p() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("squat1080.mp4");
    let made = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(testdata("squat_5reps_15fps.mp4"))
        .args(["-t", "1", "-vf", "scale=-2:1080,pad=1920:1080:(ow-iw)/2:0", "-c:v", "libx264", "-crf", "20"])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(made.success(), "ffmpeg makes the 1080p clip");
    let detect = Command::new(bin("pump"))
        .args(["detect", "--no-progress"])
        .arg(&clip)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = tokio::task::spawn_blocking(move || wait_with_deadline(detect, Duration::from_secs(120))).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want = json_lines(&String::from_utf8(out.stdout).unwrap());

    let nats = NatsServer::start();
    let watcher = client(&nats, "watcher").await;
    let mut poses = watcher.subscribe("pump.poses.hd").await.unwrap();
    let infer = start_real_infer(&nats).await;
    // Default settings: only the camera is given.
    let config = file_capture_config(&nats, "hd", clip.clone());
    let capture = tokio::spawn(pump_capture::run(
        pump_capture::Service::from_config(config, client(&nats, "test-capture").await),
        CancellationToken::new(),
    ));
    let got = collect(&mut poses, Duration::from_secs(120)).await;
    tokio::time::timeout(Duration::from_secs(60), capture).await.unwrap().unwrap().unwrap();
    infer.stop().await;

    assert_eq!(got.len(), want.len() + 1, "every frame, then end of stream");
    let (mut box_max, mut kp_max, mut kps) = (0.0f64, 0.0f64, 0usize);
    for (p, w) in got.iter().zip(&want) {
        assert_eq!((p.width, p.height), (1920, 1080));
        let wp = w["poses"].as_array().unwrap();
        assert_eq!(p.people.len(), wp.len(), "frame {}: same people", p.frame_id);
        for (person, wperson) in p.people.iter().zip(wp) {
            let b = person.r#box.unwrap();
            let wb: Vec<f64> = wperson["box"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            for (a, b) in [b.x1, b.y1, b.x2, b.y2].iter().zip(&wb) {
                box_max = box_max.max((f64::from(*a) - b).abs());
            }
            for (k, wk) in person.keypoints.iter().zip(wperson["keypoints"].as_array().unwrap()) {
                let wk: Vec<f64> = wk.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                if wk[2] >= 0.5 {
                    kps += 1;
                    kp_max = kp_max.max((f64::from(k.x) - wk[0]).hypot(f64::from(k.y) - wk[1]));
                }
            }
        }
    }
    eprintln!("1080p: {} frames, box max {box_max:.3} px, {kps} keypoints max {kp_max:.3} px", want.len());
    // pump detect rounds to 0.01 px.
    assert!(box_max <= 1.0, "boxes within 1 px: {box_max}");
    assert!(kp_max <= 1.5, "keypoints within 1.5 px: {kp_max}");
    assert!(kps > 0);
}
