//! Capture and inference over a real nats-server (started per test on a free port), in-process
//! through their `run` functions. Scheduling tests use a FAKE camera (camera timing) and a
//! SLOW predictor (set delay); the end-to-end test uses the real model on the squat fixture.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use pump_bus::connect::{connect, BusConfig};
use pump_capture::camera::fake::{FakeCamera, FakeCameraLog, FakeCameraScript, FakeEvent};
use pump_capture::config::FrameEncoding;
use pump_capture::run::Mode;
use pump_infer::InferStats;
use pump_tests::services::{client, collect, file_capture_config, slow, start_capture, start_infer, start_real_infer};
use pump_tests::{testdata, NatsServer};
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_of_a_file_gets_its_pose_in_order_then_end_of_stream() {
    let nats = NatsServer::start();
    let watcher = client(&nats, "watcher").await;
    let mut poses = watcher.subscribe("pump.poses.squat").await.unwrap();
    let infer = start_real_infer(&nats).await;
    let mut config = file_capture_config(&nats, "squat", testdata("squat_5reps_15fps.mp4"));
    // Raw pixels, so the poses can be held to the Ultralytics fixture.
    config.encoding = FrameEncoding::Bgr8;
    let capture_client = client(&nats, "test-capture").await;
    let capture = tokio::spawn(pump_capture::run(
        pump_capture::Service::from_config(config, capture_client),
        CancellationToken::new(),
    ));

    let got = collect(&mut poses, Duration::from_secs(180)).await;
    // A file source ends by itself once its end of stream is out.
    tokio::time::timeout(T, capture).await.expect("capture ends after the file").unwrap().unwrap();
    assert_eq!(got.len(), 181, "180 poses then end of stream");
    let want =
        pump_tests::json_lines(&std::fs::read_to_string(testdata("squat_5reps_15fps.mp4.ultralytics.jsonl")).unwrap());
    for (i, (p, w)) in got[..180].iter().zip(&want).enumerate() {
        assert_eq!(p.frame_id, i as u64, "in order, none skipped");
        assert!(!p.end_of_stream);
        assert_eq!((p.width, p.height), (320, 516));
        assert_eq!(p.people.len(), w["poses"].as_array().unwrap().len(), "frame {i}: same people as Ultralytics");
        assert!(p.publish_ts_ns >= p.inference_end_ns && p.inference_end_ns >= p.inference_start_ns);
        assert!(p.inference_start_ns >= p.capture_ts_ns);
        assert_eq!(p.provider, "CPUExecutionProvider");
        assert_eq!(p.model, "yolo11n-pose");
    }
    // The first person of frame 0 is where Ultralytics puts it.
    let b = got[0].people[0].r#box.unwrap();
    let wb: Vec<f64> = want[0]["poses"][0]["box"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!((b.x1 as f64 - wb[0]).abs() < 1.0 && (b.y2 as f64 - wb[3]).abs() < 1.0, "{b:?} vs {wb:?}");
    assert!(got[180].end_of_stream);
    let stats = infer.stats.snapshot();
    assert_eq!(stats["squat"].inferred, 180);
    assert_eq!(stats["squat"].dropped(), 0, "a paced file loses nothing");
    infer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_predictor_always_takes_the_newest_frame_and_nothing_queues() {
    let nats = NatsServer::start();
    let watcher = client(&nats, "watcher").await;
    let mut poses = watcher.subscribe("pump.poses.cam").await.unwrap();
    let infer = start_infer(&nats, slow(100), |_| {}).await;
    let log = Arc::new(FakeCameraLog::default());
    let script = FakeCameraScript { fps: 30.0, ..Default::default() };
    let capture = start_capture(&nats, "cam", FakeCamera::factory(script, log.clone()), Mode::Live, |_| {}).await;

    let got = collect(&mut poses, Duration::from_secs(4)).await;
    let cap = capture.stop().await;
    assert!(cap < Duration::from_secs(2), "capture stops promptly: {cap:?}");
    let stats = infer.stats.clone();
    infer.stop().await;

    // 4 s of a 100 ms predictor: about 40 poses, not the 120 frames the camera made.
    assert!((25..=42).contains(&got.len()), "{} poses", got.len());
    let period_ns = 1e9 / 30.0;
    for p in &got[1..] {
        // Taken within about a frame period of its capture: had it waited longer, a newer
        // frame would have replaced it.
        let waited = (p.inference_start_ns - p.capture_ts_ns) as f64;
        assert!(waited < period_ns + 25e6, "frame {} waited {:.1} ms before inference", p.frame_id, waited / 1e6);
    }
    assert!(got.windows(2).all(|w| w[0].frame_id < w[1].frame_id), "newest first, never an older one");
    let s = &stats.snapshot()["cam"];
    assert!(s.dropped_replaced >= 50, "stale frames are counted as replaced: {s:?}");
    // Nothing queued: everything received is accounted for, but at most the one waiting.
    let accounted = s.inferred + s.dropped();
    assert!(s.received - accounted <= 1, "received {} vs inferred+dropped {accounted}", s.received);
    let ages: Vec<f64> = got.iter().map(|p| (p.publish_ts_ns - p.capture_ts_ns) as f64 / 1e6).collect();
    let max_age = ages.iter().copied().fold(0.0, f64::max);
    assert!(max_age < 100.0 + 33.4 + 50.0, "frame age stays bounded: max {max_age:.1} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_fast_camera_keeps_two_engines_busy_and_its_poses_stay_in_frame_order() {
    let nats = NatsServer::start();
    let watcher = client(&nats, "watcher").await;
    let mut poses = watcher.subscribe("pump.poses.cam").await.unwrap();
    // Two engines (FAKE predictors) of uneven speed: one's result often overtakes the other's.
    let ms = |v: &[u64]| v.iter().map(|m| Duration::from_millis(*m)).collect::<Vec<_>>();
    let engines: Vec<Box<dyn pump_infer::Predictor>> = vec![
        Box::new(pump_infer::UnevenPredictor { delays: ms(&[120, 40, 80]), next: 0 }),
        Box::new(pump_infer::UnevenPredictor { delays: ms(&[40, 110, 70]), next: 0 }),
    ];
    let infer = start_infer(&nats, engines, |_| {}).await;
    let log = Arc::new(FakeCameraLog::default());
    let script = FakeCameraScript { fps: 30.0, ..Default::default() };
    let capture = start_capture(&nats, "cam", FakeCamera::factory(script, log.clone()), Mode::Live, |_| {}).await;

    let got = collect(&mut poses, Duration::from_secs(4)).await;
    capture.stop().await;
    infer.stop().await;

    // One engine at these speeds gives at most 4 s / 80 ms = 50 poses; both, about 100.
    assert!(got.len() >= 60, "both engines work on the one camera: {} poses in 4 s", got.len());
    assert!(got.windows(2).all(|w| w[0].frame_id < w[1].frame_id), "published in frame order");
    let overtaken = got.windows(2).filter(|w| w[1].inference_end_ns < w[0].inference_end_ns).count();
    assert!(overtaken > 0, "some results finished before an older frame's and waited for it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fps_and_drops_are_counted_right_at_each_stage() {
    let nats = NatsServer::start();
    let watcher = client(&nats, "watcher").await;
    let mut poses = watcher.subscribe("pump.poses.cam").await.unwrap();
    let infer = start_infer(&nats, slow(5), |_| {}).await;
    let log = Arc::new(FakeCameraLog::default());
    let script = FakeCameraScript { fps: 20.0, ..Default::default() };
    let capture = start_capture(&nats, "cam", FakeCamera::factory(script, log.clone()), Mode::Live, |_| {}).await;
    let got = collect(&mut poses, Duration::from_secs(3)).await;
    let cap_stats = capture.stats.snapshot()["cam"].clone();
    let inf_stats = infer.stats.snapshot()["cam"].clone();
    let reads = log.events();
    capture.stop().await;
    infer.stop().await;

    // What the fake camera really delivered over its last 60 reads (the window capture's fps is
    // taken over): a busy machine makes it slower than the 20 fps it aims at, and each stage
    // must count what happened, not what was aimed at.
    let ends: Vec<Instant> =
        reads.iter().filter(|(_, e)| matches!(e, FakeEvent::ReadEnd { .. })).map(|(t, _)| *t).collect();
    let window = &ends[ends.len().saturating_sub(60)..];
    assert!(window.len() >= 20, "{} frames read in 3 s", ends.len());
    let delivered = (window.len() - 1) as f64 / (window[window.len() - 1] - window[0]).as_secs_f64();
    assert!(
        (cap_stats.fps() - delivered).abs() < 0.1 * delivered,
        "capture fps {:.1}, camera gave {delivered:.1}",
        cap_stats.fps()
    );
    assert!(cap_stats.connected);
    assert_eq!(cap_stats.skipped, 0, "a free publisher skips nothing");
    assert!(
        (inf_stats.fps() - cap_stats.fps()).abs() < 0.1 * cap_stats.fps(),
        "pose fps {:.1}, capture fps {:.1}: a fast predictor keeps up",
        inf_stats.fps(),
        cap_stats.fps()
    );
    assert_eq!(inf_stats.dropped(), 0, "a fast predictor drops nothing: {inf_stats:?}");
    // Every frame published was received and inferred (give or take the one in flight).
    assert!(cap_stats.published.abs_diff(inf_stats.received) <= 1, "{cap_stats:?} vs {inf_stats:?}");
    assert!(inf_stats.received.abs_diff(got.len() as u64) <= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_stream_releases_the_capture_only_after_the_read() {
    let nats = NatsServer::start();
    let infer = start_infer(&nats, slow(50), |_| {}).await;
    let log = Arc::new(FakeCameraLog::default());
    let script = FakeCameraScript { fps: 10.0, ..Default::default() };
    let capture = start_capture(&nats, "cam", FakeCamera::factory(script, log.clone()), Mode::Live, |_| {}).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(log.frames_read() >= 10);
    let took = capture.stop().await;
    assert!(took < Duration::from_secs(2), "capture shut down in {took:?}");
    infer.stop().await;

    let events: Vec<FakeEvent> = log.events().into_iter().map(|(_, e)| e).collect();
    let release = events.iter().position(|e| matches!(e, FakeEvent::Release { .. })).expect("capture released");
    assert_eq!(release, events.len() - 1, "nothing happens after release: {:?}", &events[release..]);
    assert!(matches!(events[release - 1], FakeEvent::ReadEnd { .. }), "released right after a read finished");
    let starts = events.iter().filter(|e| matches!(e, FakeEvent::ReadStart { .. })).count();
    let ends = events.iter().filter(|e| matches!(e, FakeEvent::ReadEnd { .. })).count();
    assert_eq!(starts, ends, "no read was cut short");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_of_stream_follows_the_last_frame_of_a_realtime_file() {
    let nats = NatsServer::start();
    let watcher = client(&nats, "watcher").await;
    let mut poses = watcher.subscribe("pump.poses.clip").await.unwrap();
    let infer = start_infer(&nats, slow(40), |_| {}).await;
    let log = Arc::new(FakeCameraLog::default());
    // A 1 s "file" at 30 fps, replayed in real time against a predictor that keeps up with
    // only some frames: the last frame still gets its pose before the marker.
    let script = FakeCameraScript { fps: 30.0, frames: Some(30), ..Default::default() };
    let capture = start_capture(&nats, "clip", FakeCamera::factory(script, log), Mode::FileRealtime, |_| {}).await;
    let got = collect(&mut poses, Duration::from_secs(20)).await;
    tokio::time::timeout(T, capture.task).await.expect("a file capture ends by itself").unwrap().unwrap();
    infer.stop().await;
    let last = got.last().expect("poses");
    assert!(last.end_of_stream, "end of stream reaches consumers");
    assert_eq!(last.frame_id, 30);
    let before = &got[got.len() - 2];
    assert!(!before.end_of_stream);
    assert_eq!(before.frame_id, 29, "the file's last frame is processed before the marker");
}

/// Capture on a FAKE 30 fps camera whose read blocks after 10 frames (until `unstall`), reopened
/// once it shows no frame for `stall`, 100 ms of backoff later.
async fn start_stalling_camera(
    nats: &NatsServer,
    stall: Duration,
) -> (pump_tests::services::Running<pump_capture::metrics::CaptureStats>, Arc<FakeCameraLog>) {
    let log = Arc::new(FakeCameraLog::default());
    let script = FakeCameraScript { fps: 30.0, stall_after: Some(10), ..Default::default() };
    let capture = start_capture(nats, "cam", FakeCamera::factory(script, log.clone()), Mode::Live, |c| {
        c.stall_timeout = stall;
        c.backoff_initial = Duration::from_millis(100);
    })
    .await;
    (capture, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_camera_is_reopened_within_the_limit_and_released_only_when_its_read_returns() {
    let nats = NatsServer::start();
    let stall = Duration::from_secs(1);
    let (capture, log) = start_stalling_camera(&nats, stall).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let reopened = loop {
        let ev = log.events();
        if let Some(at) = ev.iter().find(|(_, e)| *e == FakeEvent::Open { instance: 1 }).map(|(t, _)| *t) {
            break (ev, at);
        }
        assert!(Instant::now() < deadline, "camera was never reopened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (events, reopened_at) = reopened;
    let last_frame =
        events.iter().rev().find(|(_, e)| *e == FakeEvent::ReadEnd { instance: 0 }).map(|(t, _)| *t).unwrap();
    let gap = reopened_at - last_frame;
    // Cycle ended within 1.5 s of the limit; the reopen follows after the 100 ms backoff.
    assert!(
        gap >= stall && gap <= stall + Duration::from_millis(1500) + Duration::from_millis(100),
        "reopened {gap:?} after the last frame"
    );
    assert!(log.is_stalled(), "the old read is still blocked");
    assert!(!events.iter().any(|(_, e)| *e == FakeEvent::Release { instance: 0 }), "never released during its read");
    // Frames flow again from the new instance.
    pump_tests::eventually("frames from the new instance", Duration::from_secs(10), || async {
        log.frames_read() > 12
    })
    .await;
    let s = capture.stats.snapshot()["cam"].clone();
    assert_eq!(s.stalls, 1);
    assert!(s.connected);
    // When the stalled read finally returns, its thread releases that capture.
    log.unstall();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ev: Vec<FakeEvent> = log.events().into_iter().map(|(_, e)| e).collect();
    let end0 = ev.iter().rposition(|e| *e == FakeEvent::ReadEnd { instance: 0 }).unwrap();
    let rel0 = ev.iter().position(|e| *e == FakeEvent::Release { instance: 0 }).expect("stalled capture released");
    assert!(rel0 > end0);
    capture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_opens_back_off_exponentially_and_a_good_frame_resets_it() {
    let nats = NatsServer::start();
    let log = Arc::new(FakeCameraLog::default());
    // Four failed opens (waits of 100, 200, 400, 800 ms), a connection that gives 5 frames and
    // stalls, then a reconnect: after the reset, 100 ms again; without it, the 1 s cap.
    let script = FakeCameraScript { fps: 30.0, failing_opens: 4, stall_after: Some(5), ..Default::default() };
    let capture = start_capture(&nats, "cam", FakeCamera::factory(script, log.clone()), Mode::Live, |c| {
        c.backoff_initial = Duration::from_millis(100);
        c.backoff_max = Duration::from_millis(1000);
        c.stall_timeout = Duration::from_millis(500);
    })
    .await;
    let opened =
        |log: &FakeCameraLog| log.events().into_iter().filter(|(_, e)| matches!(e, FakeEvent::Open { .. })).count();
    let deadline = Instant::now() + Duration::from_secs(15);
    while opened(&log) < 2 {
        assert!(Instant::now() < deadline, "camera never came back after its stall: {:?}", log.events());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = capture.stats.snapshot()["cam"].clone();
    log.unstall();
    capture.stop().await;
    let events = log.events();
    let opens: Vec<Instant> = events
        .iter()
        .filter(|(_, e)| matches!(e, FakeEvent::Open { .. } | FakeEvent::OpenFailed { .. }))
        .map(|(t, _)| *t)
        .collect();
    let gaps: Vec<u128> = opens.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
    // 100, 200, 400, then 800 ms: doubling while nothing connects.
    assert!(gaps[0] >= 95 && gaps[1] >= 195 && gaps[2] >= 395 && gaps[3] >= 795, "{gaps:?}");
    assert!(gaps[3] < 1300, "{gaps:?}");
    // From the last frame before the stall to the reopen: the stall timeout (500 ms), up to a
    // watchdog tick (100 ms), and the backoff — reset to 100 ms by the connection's frames.
    let reopen = opens[5];
    let last_frame = events
        .iter()
        .filter(|(t, e)| *t < reopen && matches!(e, FakeEvent::ReadEnd { .. }))
        .map(|(t, _)| *t)
        .max()
        .unwrap();
    let gap = (reopen - last_frame).as_millis();
    assert!((595..1200).contains(&gap), "reset: {gap} ms from the stall to the reopen (no reset: ≥ 1500)");
    assert_eq!(s.open_failures, 4);
    assert_eq!(s.stalls, 1);
    assert_eq!(s.reconnects, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_inference_starts_from_the_kept_frame() {
    let nats = NatsServer::start();
    let log = Arc::new(FakeCameraLog::default());
    // A paced file waits for the pose of frame 0, which nobody computes yet.
    let script = FakeCameraScript { fps: 100.0, frames: Some(5), ..Default::default() };
    let capture = start_capture(&nats, "late", FakeCamera::factory(script, log.clone()), Mode::FilePaced, |_| {}).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(log.frames_read(), 1, "paced: the second frame waits for the first one's pose");
    // The newest frame is kept: a late reader gets it at once.
    let js = async_nats::jetstream::new(client(&nats, "reader").await);
    let stream = js.get_stream(pump_bus::streams::FRAMES_STREAM).await.unwrap();
    let kept = stream.get_last_raw_message_by_subject("pump.frames.late").await.unwrap();
    assert_eq!(pump_bus::codec::decode_frame(&kept.payload).unwrap().frame_id, 0);

    let watcher = client(&nats, "watcher").await;
    let mut poses = watcher.subscribe("pump.poses.late").await.unwrap();
    let infer = start_infer(&nats, slow(5), |_| {}).await;
    let got = collect(&mut poses, Duration::from_secs(20)).await;
    tokio::time::timeout(T, capture.task).await.unwrap().unwrap().unwrap();
    infer.stop().await;
    assert_eq!(got.iter().map(|p| p.frame_id).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 5]);
    assert!(got[5].end_of_stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_are_counted_and_skipped_and_the_service_keeps_running() {
    use pump_proto::{Encoding, Frame};
    let nats = NatsServer::start();
    let watcher = client(&nats, "watcher").await;
    let mut poses = watcher.subscribe("pump.poses.bad").await.unwrap();
    let infer = start_infer(&nats, slow(1), |_| {}).await;
    let pubc = client(&nats, "publisher").await;
    let now = pump_bus::clock::now_ns();
    let frame = |w: u32, h: u32, enc: Encoding, data: Vec<u8>| Frame {
        camera: "bad".into(),
        frame_id: 1,
        capture_ts_ns: now,
        width: w,
        height: h,
        encoding: enc as i32,
        data: data.into(),
        ..Default::default()
    };
    let bad: Vec<bytes::Bytes> = vec![
        bytes::Bytes::from_static(b"\xff\xff not a protobuf"),
        frame(0, 10, Encoding::Jpeg, vec![1, 2, 3]).encode_to_vec().into(),
        frame(100_000, 10, Encoding::Jpeg, vec![1, 2, 3]).encode_to_vec().into(),
        frame(4, 4, Encoding::Bgr8, vec![0; 7]).encode_to_vec().into(),
        frame(4, 4, Encoding::Unspecified, vec![0; 48]).encode_to_vec().into(),
    ];
    for b in bad {
        pubc.publish("pump.frames.bad", b).await.unwrap();
        pubc.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // A header that reads (64×64, as claimed) over no picture: refused by the decoder.
    let mut header = vec![0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x43, 0x00];
    header.extend([1u8; 64]);
    header.extend([0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x40, 0x00, 0x40, 0x01, 0x01, 0x11, 0x00]);
    pubc.publish("pump.frames.bad", frame(64, 64, Encoding::Jpeg, header).encode_to_vec().into()).await.unwrap();
    // A header that does not read: refused before any decoder sees it.
    pubc.publish("pump.frames.bad", frame(64, 64, Encoding::Jpeg, vec![0xff, 0xd8, 0, 0, 0]).encode_to_vec().into())
        .await
        .unwrap();
    pubc.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Still alive: a good frame gets its pose.
    let good =
        Frame { frame_id: 2, capture_ts_ns: pump_bus::clock::now_ns(), ..frame(4, 4, Encoding::Bgr8, vec![7; 48]) };
    pubc.publish("pump.frames.bad", good.encode_to_vec().into()).await.unwrap();
    pubc.flush().await.unwrap();
    let got = collect(&mut poses, Duration::from_secs(3)).await;
    let s = infer.stats.snapshot()["bad"].clone();
    infer.stop().await;
    assert_eq!(got.iter().map(|p| p.frame_id).collect::<Vec<_>>(), vec![2]);
    assert_eq!(s.dropped_invalid, 6, "{s:?}");
    assert_eq!(s.dropped_undecodable, 1, "{s:?}");
    assert_eq!(s.inferred, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_host_whose_clock_is_behind_still_gets_poses() {
    use pump_proto::{Encoding, Frame};
    let nats = NatsServer::start();
    let watcher = client(&nats, "watcher").await;
    let mut poses = watcher.subscribe("pump.poses.skewed").await.unwrap();
    let infer = start_infer(&nats, slow(5), |_| {}).await;
    let pubc = client(&nats, "capture-host").await;
    // The capture host's clock is 5 s behind this one's: every frame looks 5 s old here, ten
    // times the too-old limit, yet each is fresh.
    for id in 0..30u64 {
        let f = Frame {
            camera: "skewed".into(),
            frame_id: id,
            capture_ts_ns: pump_bus::clock::now_ns() - 5_000_000_000,
            width: 4,
            height: 4,
            encoding: Encoding::Bgr8 as i32,
            data: vec![7; 48].into(),
            ..Default::default()
        };
        pubc.publish("pump.frames.skewed", f.encode_to_vec().into()).await.unwrap();
        pubc.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(66)).await;
    }
    let got = collect(&mut poses, Duration::from_secs(2)).await;
    let s = infer.stats.snapshot()["skewed"].clone();
    infer.stop().await;
    // Only the first frames, before the lag floor is known, may be judged by the raw clock.
    assert!(got.len() >= 25, "{} poses of 30 frames: {s:?}", got.len());
    assert!(s.dropped_too_old <= 1, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_frames_each_handled_once() {
    let nats = NatsServer::start();
    let watcher = client(&nats, "watcher").await;
    let mut poses = watcher.subscribe("pump.poses.cam").await.unwrap();
    let a = start_infer(&nats, slow(5), |_| {}).await;
    let b = start_infer(&nats, slow(5), |_| {}).await;
    let log = Arc::new(FakeCameraLog::default());
    let script = FakeCameraScript { fps: 40.0, ..Default::default() };
    let capture = start_capture(&nats, "cam", FakeCamera::factory(script, log), Mode::Live, |_| {}).await;
    let got = collect(&mut poses, Duration::from_secs(3)).await;
    capture.stop().await;
    let (sa, sb) = (a.stats.snapshot()["cam"].inferred, b.stats.snapshot()["cam"].inferred);
    a.stop().await;
    b.stop().await;
    let mut ids: Vec<u64> = got.iter().map(|p| p.frame_id).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "no frame handled twice");
    assert!(sa > 10 && sb > 10, "both replicas worked: {sa} and {sb}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulled_replicas_of_unequal_speed_add_up_each_frame_once_and_pull_again_after_nats_restarts() {
    // `--intake pull`: a replica held to 12/s beside one held to 4/s (a fast and a slow host),
    // one live camera at 15 fps. The queue group gave each half the frames (the pair inferred 11
    // of the 15); pulled, each asks when it is free, so nearly every frame is inferred, once.
    let mut nats = NatsServer::start();
    let watcher = client(&nats, "watcher").await;
    let mut poses = watcher.subscribe("pump.poses.cam").await.unwrap();
    let pulled = |ms: u64| {
        move |c: &mut pump_infer::Config| {
            c.intake = pump_infer::config::Intake::Pull;
            c.min_inference = Duration::from_millis(ms);
        }
    };
    let fast = start_infer(&nats, slow(5), pulled(83)).await;
    let slower = start_infer(&nats, slow(5), pulled(250)).await;
    let capture = pump_tests::services::start_fake_live_camera(&nats, "cam", 15.0).await;
    collect(&mut poses, Duration::from_secs(1)).await;
    let got = collect(&mut poses, Duration::from_secs(4)).await;
    let mut ids: Vec<u64> = got.iter().map(|p| p.frame_id).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "no frame inferred twice");
    let span = (ids[n - 1] - ids[0] + 1) as f64;
    assert!(n as f64 >= 0.85 * span, "{n} of {span} frames inferred");
    let (f, s) = (fast.stats.snapshot()["cam"].inferred, slower.stats.snapshot()["cam"].inferred);
    assert!(f > 2 * s && s >= 10, "each replica as fast as it goes: {f} and {s}");

    // NATS restarted: the memory-only frames stream, and the consumer the replicas share on it,
    // are gone; both are made again and the frames pulled again.
    nats.restart();
    let again = tokio::time::timeout(T, async {
        loop {
            let got = collect(&mut poses, Duration::from_secs(1)).await;
            if got.len() >= 5 {
                return got;
            }
        }
    })
    .await
    .expect("poses again after NATS restarted");
    assert!(again.windows(2).all(|w| w[0].frame_id != w[1].frame_id));
    capture.stop().await;
    fast.stop().await;
    slower.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_started_before_nats_wait_for_it() {
    let port = pump_tests::nats::free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let bus = BusConfig::new(url.clone(), "early-infer");
    let client_early = tokio::time::timeout(T, connect(&bus)).await.unwrap().unwrap();
    let stats = Arc::new(InferStats::default());
    let shutdown = CancellationToken::new();
    let service = pump_infer::Service {
        config: pump_infer::Config::new(bus),
        client: client_early,
        predictors: slow(1),
        stats: stats.clone(),
        ops: None,
    };
    let token = shutdown.clone();
    let task = tokio::spawn(async move { pump_infer::run(service, token).await.map_err(|e| e.to_string()) });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!task.is_finished(), "waiting for the server, not failing");
    let nats = NatsServer::start_on(port);
    let watcher = client(&nats, "watcher").await;
    let mut poses = watcher.subscribe("pump.poses.cam").await.unwrap();
    let log = Arc::new(FakeCameraLog::default());
    let capture =
        start_capture(&nats, "cam", FakeCamera::factory(FakeCameraScript::default(), log), Mode::Live, |_| {}).await;
    let got = collect(&mut poses, Duration::from_secs(8)).await;
    assert!(!got.is_empty(), "poses flow once the server is up");
    capture.stop().await;
    pump_tests::services::stop_task(&shutdown, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_shut_down_promptly_even_when_nats_is_gone() {
    let mut nats = NatsServer::start();
    let infer = start_infer(&nats, slow(5), |_| {}).await;
    let log = Arc::new(FakeCameraLog::default());
    let capture =
        start_capture(&nats, "cam", FakeCamera::factory(FakeCameraScript::default(), log.clone()), Mode::Live, |_| {})
            .await;
    // Running: frames read and published.
    pump_tests::eventually("frames flowing", Duration::from_secs(10), || async { log.frames_read() >= 5 }).await;
    nats.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Flushing and unsubscribing need the server; shutdown must not wait for it for ever.
    let took = capture.stop().await;
    assert!(took < Duration::from_secs(8), "capture took {took:?}");
    let took = infer.stop().await;
    assert!(took < Duration::from_secs(10), "inference took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnected_camera_keeps_its_segment_and_its_time_steps_over_the_outage() {
    let nats = NatsServer::start();
    let watcher = client(&nats, "watcher").await;
    let mut frames = watcher.subscribe("pump.frames.cam").await.unwrap();
    let stall = Duration::from_millis(500);
    let (capture, log) = start_stalling_camera(&nats, stall).await;
    let mut got: Vec<pump_proto::Frame> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // Frames before the stall, then 20 from the new connection.
    while got.len() < 30 {
        let msg = tokio::time::timeout_at(deadline, futures::StreamExt::next(&mut frames)).await.unwrap().unwrap();
        got.push(pump_proto::Frame::decode(msg.payload).unwrap());
    }
    log.unstall();
    capture.stop().await;
    assert_eq!(capture_reconnects(&got), 1, "one reconnection");
    assert!(got.iter().all(|f| f.segment == got[0].segment && f.segment > 0), "one segment");
    let ts: Vec<i64> = got.iter().map(|f| f.source_ts_ns).collect();
    assert!(ts.windows(2).all(|w| w[1] > w[0]), "time goes forward: {ts:?}");
    // The outage shows as a gap on the timeline, as long as it was on the wall clock.
    let gap = ts.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(gap >= stall.as_nanos() as i64, "gap {gap} ns");
}

/// How many times the frames' wall-clock spacing shows a reconnection (a gap of over 300 ms).
fn capture_reconnects(frames: &[pump_proto::Frame]) -> usize {
    frames.windows(2).filter(|w| w[1].capture_ts_ns - w[0].capture_ts_ns > 300_000_000).count()
}
