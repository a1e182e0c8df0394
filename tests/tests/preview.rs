//! The gateway's HTTP side against a real nats-server: snapshots (cached, never stale), the MJPEG
//! preview with skeleton and rep count, /metrics, and the page as headless Chromium shows it.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::atomic::Ordering;
use std::time::Duration;

use prost::Message;
use pump_proto::{Frame, Keypoint, Person, PoseFrame};
use pump_tests::http::{get, mjpeg_frames, mjpeg_frames_until};
use pump_tests::media::decode_jpeg;
use pump_tests::services::{client, file_capture_config, start_gateway, start_real_infer, start_sets};
use pump_tests::{testdata, NatsServer};
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(60);

/// Pixels of the skeleton's green (washed out by JPEG's halved colour resolution).
fn green(rgb: &[u8], channels: usize) -> usize {
    rgb.chunks_exact(channels).filter(|p| i32::from(p[1]) - i32::from(p[0].max(p[2])) > 60).count()
}

fn gray_frame(camera: &str, id: u64, capture_ts_ns: i64) -> Frame {
    pump_tests::media::gray_frame(camera, id, capture_ts_ns, 200, 150)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_jpg_is_encoded_once_per_frame_and_never_stale() {
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let c = client(&nats, "publisher").await;
    let now = pump_bus::clock::now_ns();
    c.publish("pump.frames.cam", gray_frame("cam", 1, now).encode_to_vec().into()).await.unwrap();
    let pf = pose_of("cam", 1, now);
    c.publish("pump.poses.cam", pf.encode_to_vec().into()).await.unwrap();
    // A camera whose last frame reached the bus over 5 s ago is silent, whatever its capture host
    // stamped on it (here a clock a minute behind): it is judged by when the bus stored it.
    let old = gray_frame("old", 1, now - 60_000_000_000);
    c.publish("pump.frames.old", old.encode_to_vec().into()).await.unwrap();
    let old_sent = tokio::time::Instant::now();
    let ended = Frame { end_of_stream: true, ..gray_frame("ended", 2, now) };
    c.publish("pump.frames.ended", ended.encode_to_vec().into()).await.unwrap();
    c.flush().await.unwrap();
    gateway_has(gw.http, &["cam", "old", "ended"], "cam").await;

    let plain = get(gw.http, "/cameras/cam/snapshot.jpg").await;
    assert_eq!(plain.status, 200, "{}", plain.text());
    assert_eq!(plain.header("content-type"), Some("image/jpeg"));
    let (w, h, px) = decode_jpeg(&plain.body);
    assert_eq!((w, h, green(&px, 3)), (200, 150, 0));
    // Ten viewers at once, asking for the skeleton: one encode for the lot.
    let before = gw.snapshots.encodes.load(Ordering::Relaxed);
    let replies = futures::future::join_all((0..10).map(|_| get(gw.http, "/cameras/cam/snapshot.jpg?overlay=1"))).await;
    assert_eq!(gw.snapshots.encodes.load(Ordering::Relaxed) - before, 1);
    for r in &replies {
        assert_eq!(r.status, 200);
        assert_eq!(r.body, replies[0].body);
    }
    assert!(green(&decode_jpeg(&replies[0].body).2, 3) > 100, "the skeleton is drawn");

    tokio::time::sleep_until(old_sent + Duration::from_millis(5_500)).await;
    for (path, want) in [
        ("/cameras/old/snapshot.jpg", 404),
        ("/cameras/ended/snapshot.jpg", 404),
        ("/cameras/nobody/snapshot.jpg", 404),
        ("/cameras/a.b/snapshot.jpg", 400),
        ("/cameras/old/stream.mjpg", 404),
        ("/cameras/nobody/stream.mjpg", 404),
    ] {
        let r = get(gw.http, path).await;
        assert_eq!(r.status, want, "{path}: {}", r.text());
    }
    // One line saying which: silent, or ended.
    // (Its frame reached the bus 5.5 s before: more by now on a busy machine.)
    let silent = get(gw.http, "/cameras/old/snapshot.jpg").await.text();
    let seconds: Option<u64> = silent.split("silent for ").nth(1).and_then(|r| r.split(' ').next()?.parse().ok());
    assert!(seconds.is_some_and(|s| (5..60).contains(&s)), "{silent}");
    assert!(get(gw.http, "/cameras/ended/snapshot.jpg").await.text().contains("stream has ended"));
    let api: serde_json::Value = serde_json::from_slice(&get(gw.http, "/api/cameras").await.body).unwrap();
    let names: Vec<&str> = api["cameras"].as_array().unwrap().iter().map(|c| c["camera"].as_str().unwrap()).collect();
    assert_eq!(names, ["cam", "ended", "old"]);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_host_whose_clock_is_behind_has_its_snapshots_and_live_view() {
    use pump_proto::pose_query_client::PoseQueryClient;
    // Its clock is 5 s behind the gateway's: every frame it stamps looks 5 s old here, at the
    // snapshot limit, and every snapshot and live view used to be refused as silent.
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let c = client(&nats, "capture-host").await;
    let behind = |id: u64| level_frame("behind", id, pump_bus::clock::now_ns() - 6_000_000_000, 120);
    c.publish("pump.frames.behind", behind(1).encode_to_vec().into()).await.unwrap();
    c.flush().await.unwrap();
    pump_tests::eventually("the gateway to list the camera", Duration::from_secs(10), || async {
        String::from_utf8_lossy(&get(gw.http, "/api/cameras").await.body).contains("\"behind\"")
    })
    .await;
    let snap = get(gw.http, "/cameras/behind/snapshot.jpg").await;
    assert_eq!(snap.status, 200, "{}", snap.text());
    let mut q = PoseQueryClient::new(gw.channel.clone());
    let req = pump_proto::GetSnapshotRequest { camera: "behind".into(), overlay: false };
    let grpc = tokio::time::timeout(T, q.get_snapshot(req)).await.unwrap();
    assert_eq!(grpc.map(|r| r.into_inner().frame_id).map_err(|e| e.to_string()), Ok(1));
    let viewer = tokio::spawn(async move { mjpeg_frames(gw.http, "/cameras/behind/stream.mjpg", 4).await });
    for id in 2..60u64 {
        c.publish("pump.frames.behind", behind(id).encode_to_vec().into()).await.unwrap();
        c.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(66)).await;
        if viewer.is_finished() {
            break;
        }
    }
    let (reply, frames) = tokio::time::timeout(T, viewer).await.unwrap().unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(frames.len(), 4, "the live view shows the camera");
    gw.stop().await;
}

/// A frame of `camera` whose every pixel is `level`: which frame a picture shows, read back.
/// Waits until the gateway lists `cameras` (their frames or poses are stored) and has heard a
/// pose of `posed`.
async fn gateway_has(http: std::net::SocketAddr, cameras: &[&str], posed: &str) {
    pump_tests::eventually("the gateway to have the cameras and the pose", Duration::from_secs(10), || async {
        let api: serde_json::Value = serde_json::from_slice(&get(http, "/api/cameras").await.body).unwrap_or_default();
        let listed: Vec<&str> =
            api["cameras"].as_array().into_iter().flatten().filter_map(|c| c["camera"].as_str()).collect();
        let health: serde_json::Value = serde_json::from_slice(&get(http, "/healthz").await.body).unwrap_or_default();
        cameras.iter().all(|c| listed.contains(c)) && !health["cameras"][posed].is_null()
    })
    .await;
}

fn level_frame(camera: &str, id: u64, ts: i64, level: u8) -> Frame {
    let mut f = gray_frame(camera, id, ts);
    f.data = vec![level; f.data.len()].into();
    f
}

/// The pose of frame `id` (same id and capture time, as inference sends), spread over the frame
/// so the bones are long lines, not hidden under the joints' dots.
fn pose_of(camera: &str, id: u64, ts: i64) -> PoseFrame {
    let person = Person {
        keypoints: (0..17)
            .map(|i| Keypoint { x: 20.0 + 40.0 * (i % 4) as f32, y: 10.0 + 30.0 * (i / 4) as f32, confidence: 0.9 })
            .collect(),
        ..Default::default()
    };
    PoseFrame { camera: camera.into(), frame_id: id, capture_ts_ns: ts, people: vec![person], ..Default::default() }
}

/// The grey level of a picture's bottom-right corner, away from skeleton and caption.
fn corner_level(jpeg: &[u8]) -> u8 {
    let (w, h, px) = decode_jpeg(jpeg);
    px[((h - 3) * w + (w - 3)) * 3]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skeleton_is_drawn_only_on_the_frame_its_pose_came_from() {
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let c = client(&nats, "publisher").await;
    let t0 = pump_bus::clock::now_ns();
    let ts = |id: u64| t0 + id as i64 * 66_000_000;
    // Frame 1 and its pose, then frame 2 with none yet: the old code drew frame 1's pose on 2.
    c.publish("pump.frames.cam", level_frame("cam", 1, ts(1), 40).encode_to_vec().into()).await.unwrap();
    c.publish("pump.poses.cam", pose_of("cam", 1, ts(1)).encode_to_vec().into()).await.unwrap();
    c.publish("pump.frames.cam", level_frame("cam", 2, ts(2), 200).encode_to_vec().into()).await.unwrap();
    c.flush().await.unwrap();
    gateway_has(gw.http, &["cam"], "cam").await;
    // Frame 2 is the kept one (its plain snapshot is its grey level).
    pump_tests::eventually("frame 2 kept", Duration::from_secs(10), || async {
        let plain = get(gw.http, "/cameras/cam/snapshot.jpg").await;
        plain.status == 200 && decode_jpeg(&plain.body).2.iter().all(|v| v.abs_diff(200) < 8)
    })
    .await;
    let started = std::time::Instant::now();
    let snap = get(gw.http, "/cameras/cam/snapshot.jpg?overlay=1").await;
    assert_eq!(snap.status, 200, "{}", snap.text());
    assert!(started.elapsed() < Duration::from_secs(5), "a snapshot waits at most a moment for a pose");
    let (_, _, px) = decode_jpeg(&snap.body);
    assert_eq!(green(&px, 3), 0, "frame 2 has no pose yet: nobody is drawn on it");

    // A live camera whose poses lag its frames by about two frames, and whose odd frames are
    // never inferred (newest wins): every picture with a skeleton is an even frame.
    let viewer = tokio::spawn(async move { mjpeg_frames(gw.http, "/cameras/cam/stream.mjpg", 8).await });
    let level = |id: u64| if id.is_multiple_of(2) { 100 } else { 180 };
    // From frame 10, so frame 2 above (another level) never gets a pose.
    for id in 10..50u64 {
        c.publish("pump.frames.cam", level_frame("cam", id, ts(id), level(id)).encode_to_vec().into()).await.unwrap();
        if id.is_multiple_of(2) {
            let pf = pose_of("cam", id - 2, ts(id - 2));
            c.publish("pump.poses.cam", pf.encode_to_vec().into()).await.unwrap();
        }
        c.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(66)).await;
        if viewer.is_finished() {
            break;
        }
    }
    let (reply, pictures) = tokio::time::timeout(T, viewer).await.unwrap().unwrap();
    assert_eq!(reply.status, 200);
    let drawn: Vec<u8> =
        pictures.iter().filter(|j| green(&decode_jpeg(j).2, 3) > 100).map(|j| corner_level(j)).collect();
    assert!(drawn.len() >= 4, "the view shows the frames of the poses: {} of {}", drawn.len(), pictures.len());
    for l in &drawn {
        assert!(l.abs_diff(100) < 12, "a skeleton on a frame without its pose (level {l}): {drawn:?}");
    }
    gw.stop().await;
}

/// The whole pipeline on the squat clip (half speed, so the browser has time): capture, the real
/// model, the sets service and the gateway; then the live view over HTTP and in Chromium.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_page_shows_the_live_skeleton_and_rep_count_in_chromium() {
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let (sets_task, sets_shutdown, _) = start_sets(&nats, client(&nats, "sets").await);
    let infer = start_real_infer(&nats).await;
    let mut config = file_capture_config(&nats, "squat", testdata("squat_5reps_15fps.mp4"));
    (config.realtime, config.realtime_speed) = (true, 0.5);
    let capture_shutdown = CancellationToken::new();
    let capture = tokio::spawn(pump_capture::run(
        pump_capture::Service::from_config(config, client(&nats, "capture").await),
        capture_shutdown.clone(),
    ));
    // Live once poses flow.
    tokio::time::timeout(T, async {
        loop {
            let api: serde_json::Value = serde_json::from_slice(&get(gw.http, "/api/cameras").await.body).unwrap();
            if api["cameras"][0]["pose_fps"].as_f64().unwrap_or(0.0) > 0.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("poses reach the gateway");

    // Until the skeleton shows (up to 40 s of the view): on a busy machine a pose can come more
    // than a second after its frame for a while, and the view then shows the bare newest frame
    // rather than wait for it.
    let skeleton = |jpeg: &[u8]| green(&decode_jpeg(jpeg).2, 3) > 200;
    let (reply, frames) = mjpeg_frames_until(gw.http, "/cameras/squat/stream.mjpg", 300, skeleton).await;
    assert_eq!(reply.status, 200);
    assert!(reply.header("content-type").unwrap().starts_with("multipart/x-mixed-replace; boundary="));
    let last = frames.last().expect("a frame");
    assert!(skeleton(last), "the skeleton is drawn on the live view (none in {} frames)", frames.len());
    let (w, h, px) = decode_jpeg(last);
    assert_eq!((w, h), (320, 516));
    // The rep count's caption: white letters on a darkened band in the top left corner (3 px per
    // font pixel at this height, "REPS n" is 6 glyphs of 8).
    let (mut white, mut dark, mut all) = (0, 0, 0);
    for y in 8..30 {
        for x in 8..150 {
            let p = &px[(y * w + x) * 3..(y * w + x) * 3 + 3];
            all += 1;
            white += usize::from(p.iter().all(|v| *v > 200));
            dark += usize::from(p.iter().all(|v| *v < 80));
        }
    }
    assert!(white * 10 > all && dark * 3 > all, "caption: {white} white, {dark} dark of {all}");

    // A set closed earlier, as the sets service stores one: when, how deep, how fast.
    let js = async_nats::jetstream::new(client(&nats, "history").await);
    let earlier = pump_proto::SetEvent {
        camera: "squat".into(),
        set_id: "squat-earlier".into(),
        reps: 3,
        exercise: "squat".into(),
        // An hour ago on the camera's timeline: no frames of it are kept, so no clip.
        start_s: -3600.0,
        end_s: -3594.0,
        rep_depths_deg: vec![90.0, 84.6, 88.0],
        rep_durations_s: vec![2.0, 1.5, 2.5],
        start_unix_ns: pump_bus::clock::now_ns() - 60_000_000_000,
        // The knee over the set: three dips, one a rep.
        rep_times_s: vec![-3599.0, -3597.0, -3595.0],
        trace_t_s: (0..=60).map(|i| i as f64 / 10.0 - 3600.0).collect(),
        trace_deg: (0..=60)
            .map(|i| 175.0 - 85.0 * (0.5 - 0.5 * (i as f32 / 20.0 * std::f32::consts::TAU).cos()))
            .collect(),
        ..Default::default()
    };
    js.publish("pump.sets.squat", earlier.encode_to_vec().into()).await.unwrap().await.unwrap();
    // A camera whose file ended: listed below the live one, collapsed, its stream closed.
    let eos = pump_proto::PoseFrame { camera: "done".into(), end_of_stream: true, ..Default::default() };
    js.publish("pump.poses.done", eos.encode_to_vec().into()).await.unwrap().await.unwrap();

    let mut browser = pump_tests::browser::Browser::open(&format!("http://{}/", gw.http), 900, 1000).await;
    let listed = browser
        .wait_for(
            "the earlier set in the list",
            r#"(() => { const t = Array.from(document.querySelectorAll('section[data-camera="squat"] .sets li'))
                .map(li => li.textContent).join(' | ');
                return t.includes('deepest') && t; })()"#,
            Duration::from_secs(20),
        )
        .await;
    let listed = listed.as_str().unwrap();
    // Its wall-clock time (a clock time with seconds), deepest rep and mean tempo.
    assert!(listed.contains("3 × squat in 6.0 s · deepest 85° · 2.0 s a rep"), "{listed}");
    assert!(listed.split("3 × squat").next().unwrap().matches(':').count() >= 2, "a time first: {listed}");
    let placed = browser
        .wait_for(
            "the ended camera collapsed below the live one",
            r#"(() => { const e = document.getElementById('ended');
                return !e.hidden && !e.open && !!e.querySelector('section[data-camera="done"]')
                    && document.querySelector('#cameras section').dataset.camera; })()"#,
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(placed, "squat");
    assert_eq!(browser.eval("document.querySelector('#ended summary').textContent").await, "Ended cameras (1)");
    // The rep count, large beside the camera's name.
    let count = browser.eval("document.querySelector('#cameras .count').textContent").await;
    assert!(
        count.as_str().is_some_and(|c| c.ends_with("reps") && c.starts_with(|ch: char| ch.is_ascii_digit())),
        "{count}"
    );
    let size = browser
        .wait_for(
            "the live view shows a frame",
            r#"(() => { const s = document.querySelector('section[data-camera="squat"]');
                return s && s.dataset.width && `${s.dataset.width}x${s.dataset.height}`; })()"#,
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(size, "320x516");
    let stats = browser
        .wait_for("the numbers are shown", "document.querySelector('.stats').textContent", Duration::from_secs(10))
        .await;
    assert!(stats.as_str().unwrap().contains("poses "), "{stats}");
    assert_eq!(browser.eval("document.querySelector('.frame').textContent").await, "live 320×516");
    // A plot of the counted joint's angle: the set in progress's, or else the last set's.
    let plotted = browser
        .wait_for(
            "the angle plot",
            r#"(() => { const f = document.querySelector('section[data-camera="squat"] .plot');
                if (!f || f.hidden) return false;
                const r = f.querySelector('svg').getBoundingClientRect();
                return { points: f.querySelector('polyline').getAttribute('points').split(' ').length,
                         marks: f.querySelectorAll('line').length, caption: f.querySelector('figcaption').textContent,
                         rect: [r.left, r.top, r.right, r.bottom] }; })()"#,
            Duration::from_secs(20),
        )
        .await;
    let caption = plotted["caption"].as_str().unwrap();
    if caption.starts_with("last set") {
        assert_eq!((plotted["points"].as_u64(), plotted["marks"].as_u64()), (Some(61), Some(3)), "{plotted}");
        assert!(caption.contains("3 × squat") && caption.contains("(90° to 175°)"), "{caption}");
    } else {
        assert!(caption.starts_with("set in progress: "), "{caption}");
        assert!(plotted["points"].as_u64() > Some(5), "{plotted}");
    }
    // What the user sees: the skeleton on the frame, and the plot, in the browser's own pixels.
    let shot = browser.screenshot().await;
    // To look at it by eye: PUMP_TEST_SCREENSHOT=/tmp/preview.png cargo test --test preview
    if let Some(path) = std::env::var_os("PUMP_TEST_SCREENSHOT") {
        std::fs::write(path, &shot).unwrap();
    }
    let decoder = png::Decoder::new(std::io::Cursor::new(shot));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    assert!(green(pixels, channels) > 200, "the screenshot shows the skeleton");
    // The plot's line, green on its dark box.
    let rect: Vec<usize> = plotted["rect"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as usize).collect();
    let row = info.width as usize * channels;
    let plot_px: Vec<u8> = (rect[1]..rect[3].min(info.height as usize))
        .flat_map(|y| {
            pixels[y * row + rect[0] * channels..y * row + rect[2].min(info.width as usize) * channels].to_vec()
        })
        .collect();
    assert!(green(&plot_px, channels) > 100, "the screenshot shows the plot's line: {}", green(&plot_px, channels));
    drop(browser);

    // The sets service counts reps from the same poses: the count the caption shows moves.
    tokio::time::timeout(T, async {
        loop {
            let api: serde_json::Value = serde_json::from_slice(&get(gw.http, "/api/cameras").await.body).unwrap();
            let cams = api["cameras"].as_array().unwrap();
            let cam = cams.iter().find(|c| c["camera"] == "squat").unwrap();
            // Its own sets: the earlier one was published by hand.
            let sets = cam["sets"].as_array().unwrap().iter().filter(|s| s["set_id"] != "squat-earlier").count();
            if cam["reps"].as_u64().unwrap_or(0) > 0 || sets > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("reps are counted live");

    // During the set the gateway knows who is counted (drawn bright, the bystanders grey): the
    // athlete, in the middle of the frame, not one of the people at its edges.
    pump_tests::eventually("the set's athlete known", Duration::from_secs(30), || async {
        let api: serde_json::Value = serde_json::from_slice(&get(gw.http, "/api/cameras").await.body).unwrap();
        let cams = api["cameras"].as_array().unwrap();
        let b = &cams.iter().find(|c| c["camera"] == "squat").unwrap()["athlete"];
        let x = |i: usize| b[i].as_f64().unwrap_or(-1.0);
        // And the set so far: the knee's trace, and when each rep heard hit bottom.
        let set = &cams.iter().find(|c| c["camera"] == "squat").unwrap()["set"];
        let live = set["trace"].as_array().is_some_and(|t| t.len() > 10)
            && set["rep_times_s"].as_array().is_some_and(|t| !t.is_empty());
        !b.is_null() && x(0) > 20.0 && x(2) < 300.0 && x(2) - x(0) > 80.0 && live
    })
    .await;

    // When the set closes (the clip ends), its clip: listed, downloadable, every frame one the
    // set's poses came from, with the athlete's skeleton on it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let set = loop {
        let api: serde_json::Value = serde_json::from_slice(&get(gw.http, "/api/cameras").await.body).unwrap();
        let cams = api["cameras"].as_array().unwrap();
        let sets = cams.iter().find(|c| c["camera"] == "squat").unwrap()["sets"].as_array().unwrap().clone();
        if let Some(set) = sets.into_iter().find(|s| s["set_id"] != "squat-earlier" && s["clip"].is_string()) {
            break set;
        }
        assert!(tokio::time::Instant::now() < deadline, "no clip of the squat set: {api}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (set_id, path) = (set["set_id"].as_str().unwrap(), set["clip"].as_str().unwrap());
    assert_eq!(path, format!("/clips/{set_id}.avi"));
    let reply = get(gw.http, path).await;
    assert_eq!((reply.status, reply.header("content-type")), (200, Some("video/x-msvideo")), "{set}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("set.avi");
    std::fs::write(&file, &reply.body).unwrap();
    // To look at it: PUMP_TEST_CLIP=/tmp/set.avi cargo test --test preview
    if let Some(path) = std::env::var_os("PUMP_TEST_CLIP") {
        std::fs::write(path, &reply.body).unwrap();
    }
    // ffmpeg reads it: every frame a 320×516 picture with the skeleton on the athlete, who
    // squats in the middle of the frame.
    let frames = pump_tests::media::rgb_frames(&file, 320, 516);
    let stored = pump_proto::SetEvent::decode(
        async_nats::jetstream::new(client(&nats, "clips").await)
            .get_stream(pump_bus::streams::SETS_STREAM)
            .await
            .unwrap()
            .get_last_raw_message_by_subject("pump.sets.squat")
            .await
            .unwrap()
            .payload,
    )
    .unwrap();
    assert_eq!(stored.set_id, set_id);
    // The set's poses of its athlete (its feature rows), and those of half a second either side.
    let margin = (stored.pose_rate + 1.0).ceil() as usize;
    assert!(
        frames.len() >= stored.frames as usize && frames.len() <= stored.frames as usize + margin,
        "{} frames for a set of {} poses at {:.1} a second",
        frames.len(),
        stored.frames,
        stored.pose_rate
    );
    let drawn = frames.iter().filter(|f| pump_tests::media::green_in(f, 320, (80, 100, 240, 500)) > 100).count();
    assert!(drawn * 10 >= frames.len() * 9, "{drawn} of {} frames with the athlete's skeleton", frames.len());
    // gRPC: the same bytes, and ListSets says where the clip is.
    let mut q = pump_proto::pose_query_client::PoseQueryClient::new(gw.channel.clone());
    let mut chunks = tokio::time::timeout(T, q.get_set_clip(pump_proto::GetSetClipRequest { set_id: set_id.into() }))
        .await
        .unwrap()
        .unwrap()
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(c) = tokio::time::timeout(T, chunks.message()).await.unwrap().unwrap() {
        if bytes.is_empty() {
            assert_eq!((c.content_type.as_str(), c.size), ("video/x-msvideo", reply.body.len() as u64));
        }
        bytes.extend_from_slice(&c.data);
    }
    assert!(bytes == reply.body, "gRPC and HTTP give the same clip");
    let listed = q.list_sets(pump_proto::ListSetsRequest { camera: "squat".into(), ..Default::default() });
    let listed = tokio::time::timeout(T, listed).await.unwrap().unwrap().into_inner();
    let ours = listed.sets.iter().find(|s| s.set_id == set_id).unwrap();
    assert_eq!(ours.clip, path);
    assert!(listed.sets.iter().filter(|s| s.set_id != set_id).all(|s| s.clip.is_empty()));
    // And `pump clip` saves it; `pump sets` says it is there.
    let pump = |args: Vec<String>| {
        let out = std::process::Command::new(pump_tests::bin("pump")).args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let saved = dir.path().join("saved.avi");
    let grpc = gw.addr.to_string();
    let args: Vec<String> =
        ["clip", "--grpc-addr", &grpc, set_id, "-o", saved.to_str().unwrap()].map(String::from).into();
    tokio::time::timeout(T, tokio::task::spawn_blocking(move || pump(args))).await.unwrap().unwrap();
    assert!(std::fs::read(&saved).unwrap() == reply.body, "pump clip saves the same clip");
    let args: Vec<String> = ["sets", "--grpc-addr", &grpc, "squat"].map(String::from).into();
    let listed = tokio::time::timeout(T, tokio::task::spawn_blocking(move || pump(args))).await.unwrap().unwrap();
    assert!(listed.contains(&format!("clip: pump clip {set_id}")), "{listed}");
    let mut none = std::process::Command::new(pump_tests::bin("pump"));
    none.args(["clip", "--grpc-addr", &grpc, "squat-earlier"]);
    let none =
        tokio::time::timeout(T, tokio::task::spawn_blocking(move || none.output().unwrap())).await.unwrap().unwrap();
    let said = String::from_utf8_lossy(&none.stderr);
    assert_eq!((none.status.code(), said.lines().count()), (Some(1), 1), "{said}");
    assert!(said.contains("no clip of set \"squat-earlier\""), "{said}");
    let missing = q.get_set_clip(pump_proto::GetSetClipRequest { set_id: "squat-earlier".into() }).await;
    assert_eq!(missing.err().map(|e| e.code()), Some(tonic::Code::NotFound));
    assert_eq!(get(gw.http, "/clips/squat-earlier.avi").await.status, 404);
    assert_eq!(get(gw.http, "/clips/x.mp4").await.status, 400);
    // On the page: a link to it beside the set.
    let mut browser = pump_tests::browser::Browser::open(&format!("http://{}/", gw.http), 900, 1000).await;
    let link = browser
        .wait_for(
            "the clip's link",
            r#"(() => { const a = document.querySelector('section[data-camera="squat"] .sets a.clip');
                return a && a.getAttribute('href'); })()"#,
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(link, path);
    drop(browser);

    pump_tests::services::stop_task(&capture_shutdown, capture).await;
    infer.stop().await;
    pump_tests::services::stop_task(&sets_shutdown, sets_task).await;
    gw.stop().await;
}
