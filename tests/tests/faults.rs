//! Faults an operator meets, on the real binaries against a real nats-server.
//!
//! - A second pump-sets on the same bus used to delete the first one's consumer: the first logged
//!   `consumer deleted` and exited 0, and sets stopped while everything looked healthy. Now the
//!   second is a hot standby (`/readyz` 503 "standby"), the first keeps counting, and when the
//!   first is killed (SIGKILL) mid-set the standby takes over once the lease lapses, the set
//!   stored once with all its reps; after a clean stop a standby takes over at once. A service
//!   whose consumer is deleted under it exits 1 with the reason.
//! - A nats-server restart used to leave the memory-only frames stream gone for good (ListCameras
//!   and snapshots UNAVAILABLE until the gateway restarted): every service now sets the streams up
//!   again after each reconnection.
//! - Camera and NATS passwords never reach the logs.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use pump_tests::procs::{free_addr, run, wait_ready, wait_readyz, Service};
use pump_tests::{testdata, NatsServer};

fn env(nats: &NatsServer, http: std::net::SocketAddr) -> Vec<(&'static str, String)> {
    vec![("PUMP_NATS_URL", nats.url()), ("PUMP_LOG", "warn".into()), ("PUMP_HTTP_ADDR", http.to_string())]
}

/// A pump-sets counting squats, and the address of its `/readyz`; not waited for.
fn spawn_sets(nats: &NatsServer, logs: &std::path::Path) -> (Service, std::net::SocketAddr) {
    let http = free_addr();
    let s = Service::start("pump-sets", &["--exercise", "squat", "--quiet-seconds", "4"], &env(nats, http), logs);
    (s, http)
}

async fn start_sets(nats: &NatsServer, logs: &std::path::Path) -> Service {
    let (s, http) = spawn_sets(nats, logs);
    wait_ready(&s, http).await;
    s
}

/// Polls `/readyz` of a pump-sets until it says it stands by; it is never ready meanwhile.
async fn wait_standby(service: &Service, addr: std::net::SocketAddr) {
    wait_readyz(service, addr, "standby", |r| {
        assert_ne!(r.status, 200, "a second pump-sets is ready while the first counts: {}", service.log());
        r.status == 503 && String::from_utf8_lossy(&r.body).contains("standby")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_pump_sets_stands_by_and_takes_over_mid_set_with_nothing_lost_or_doubled() {
    let nats = NatsServer::start();
    let logs = tempfile::tempdir().unwrap();
    let first = start_sets(&nats, logs.path()).await;

    // The second: a hot standby, not ready, saying why, that leaves the first one's consumer be.
    let (second, second_http) = spawn_sets(&nats, logs.path());
    wait_standby(&second, second_http).await;

    // The squat clip through inference; the first pump-sets dies (SIGKILL) in the middle of it.
    let infer_http = free_addr();
    let infer = Service::start("pump-infer", &[], &env(&nats, infer_http), logs.path());
    wait_ready(&infer, infer_http).await;
    let squat = testdata("squat_5reps_15fps.mp4").display().to_string();
    let camera = format!("gym={squat}");
    let capture = Service::start("pump-capture", &["--camera", &camera], &env(&nats, free_addr()), logs.path());
    let client = pump_tests::services::client(&nats, "test").await;
    let js = async_nats::jetstream::new(client.clone());
    let poses = js.get_stream(pump_bus::streams::POSES_STREAM).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::time::timeout(Duration::from_secs(5), poses.get_info()).await.unwrap().unwrap().state.messages < 60 {
        assert!(Instant::now() < deadline, "no poses: {}", infer.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = first.pid().to_string();
    assert!(std::process::Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
    let killed = Instant::now();
    wait_ready(&second, second_http).await;
    eprintln!("the standby took over {:?} after the SIGKILL", killed.elapsed());
    let (status, log) = capture.wait_exit(Duration::from_secs(120)).await;
    assert!(status.success(), "{log}");

    // The set is stored once, with its five reps: the standby resumed at the checkpoint.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sets = pump_tests::gym::stored_sets(&client).await;
        if !sets.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "no set stored after the takeover: {}", second.log());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sets = pump_tests::gym::stored_sets(&client).await;
    assert_eq!(sets["gym"].iter().map(|s| s.reps).collect::<Vec<_>>(), vec![5], "{}", second.log());

    // A clean stop releases the lease: a standby (or a restart) takes over at once.
    let (third, third_http) = spawn_sets(&nats, logs.path());
    wait_standby(&third, third_http).await;
    second.stop().await;
    let t0 = Instant::now();
    wait_ready(&third, third_http).await;
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "a takeover after a clean stop waits for nothing: {:?}",
        t0.elapsed()
    );

    // A service whose consumer is taken from it fails, loudly; it never exits 0 as if stopped.
    poses.delete_consumer("pump-sets").await.unwrap();
    let (status, log) = third.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("poses consumer"), "{log}");
    infer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_in_camera_and_nats_urls_never_reach_the_logs() {
    let nats = NatsServer::start();
    let logs = tempfile::tempdir().unwrap();
    // A camera that refuses connections: capture retries and says why, without the password.
    let camera = format!("gym=http://coach:s3cret-cam@127.0.0.1:{}/stream.mjpg", pump_tests::nats::free_port());
    let mut env = env(&nats, free_addr());
    env.retain(|(k, _)| *k != "PUMP_LOG");
    env.push(("PUMP_LOG", "info".into()));
    let capture = Service::start("pump-capture", &["--camera", &camera], &env, logs.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !capture.log().contains("reconnecting") {
        assert!(Instant::now() < deadline, "no reconnect logged: {}", capture.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = capture.stop().await;
    assert!(!log.contains("s3cret"), "{log}");
    assert!(log.contains("coach:***@127.0.0.1"), "{log}");

    // A malformed NATS URL with a password: one line, no password.
    let bad = vec![("PUMP_NATS_URL", "nats://coach:s3cret-bus@[::1".to_string())];
    let out = run("pump-sets", vec![], bad).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("s3cret") && !String::from_utf8_lossy(&out.stdout).contains("s3cret"), "{stderr}");
}

/// Asks until `camera`'s snapshot and its ListCameras entry come back (bounded).
async fn wait_camera_served(gw: &pump_tests::services::Gateway, camera: &str, what: &str) {
    use pump_proto::pose_query_client::PoseQueryClient;
    use pump_proto::{GetSnapshotRequest, ListCamerasRequest};
    let mut q = PoseQueryClient::new(gw.channel.clone());
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let snapshot = tokio::time::timeout(
            Duration::from_secs(5),
            q.get_snapshot(GetSnapshotRequest { camera: camera.into(), overlay: true }),
        )
        .await;
        let listed = tokio::time::timeout(Duration::from_secs(5), q.list_cameras(ListCamerasRequest {})).await;
        let ok_snapshot = matches!(&snapshot, Ok(Ok(s)) if s.get_ref().jpeg.starts_with(&[0xff, 0xd8]));
        let ok_listed = matches!(&listed, Ok(Ok(l)) if l.get_ref().cameras.iter().any(|c| c.camera == camera));
        if ok_snapshot && ok_listed {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: snapshot {snapshot:?}, cameras {listed:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_nats_restart_the_streams_come_back_and_the_gateway_serves_again() {
    let mut nats = NatsServer::start();
    let gw = pump_tests::services::start_gateway(&nats).await;
    let infer = pump_tests::services::start_infer(&nats, pump_tests::services::slow(20), |_| {}).await;
    let capture = pump_tests::services::start_fake_live_camera(&nats, "cam", 15.0).await;
    wait_camera_served(&gw, "cam", "before the restart").await;
    // Killed and started again: the memory-only frames stream is gone with it. Then the same
    // after an orderly stop (SIGTERM).
    nats.restart();
    wait_camera_served(&gw, "cam", "after a SIGKILL restart").await;
    nats.restart_gracefully();
    wait_camera_served(&gw, "cam", "after a SIGTERM restart").await;
    let ready = pump_tests::http::get(gw.http, "/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    capture.stop().await;
    infer.stop().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_nats_is_away_a_live_camera_drops_its_frames_instead_of_queueing_them() {
    let mut nats = NatsServer::start();
    let capture = pump_tests::services::start_fake_live_camera(&nats, "cam", 30.0).await;
    let seen = |stats: &pump_capture::metrics::CaptureStats| {
        stats.snapshot().get("cam").map(|s| (s.published, s.nats_down)).unwrap_or_default()
    };
    pump_tests::eventually("frames published", Duration::from_secs(10), || async { seen(&capture.stats).0 > 10 }).await;
    nats.stop();
    pump_tests::eventually("frames dropped, not queued", Duration::from_secs(10), || async {
        seen(&capture.stats).1 >= 30
    })
    .await;
    // Once the client knew, nothing more was handed to it: the frames it queues are those of
    // the moment it took to notice, not the outage's.
    let (published, dropped) = seen(&capture.stats);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (still, more) = seen(&capture.stats);
    assert_eq!(still, published, "frames handed to a disconnected client");
    assert!(more > dropped, "the camera kept reading: {more} dropped");
    // Back: the camera's newest frames go out again.
    nats.restart();
    pump_tests::eventually("frames published again", Duration::from_secs(15), || async {
        seen(&capture.stats).0 > still + 10
    })
    .await;
    capture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cameras_in_pump_cameras_keep_their_urls_whole() {
    // A URL with commas is one camera (it used to become two: the URL cut, and `b` on /dev/video2).
    let nats = NatsServer::start();
    let logs = tempfile::tempdir().unwrap();
    let port = pump_tests::nats::free_port();
    let http = free_addr();
    let mut e = env(&nats, http);
    e.push(("PUMP_CAMERAS", format!("rack1=http://127.0.0.1:{port}/x?a=1,b=2")));
    let capture = Service::start("pump-capture", &[], &e, logs.path());
    wait_ready(&capture, http).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !capture.log().contains("reconnecting") {
        assert!(Instant::now() < deadline, "no reconnect logged: {}", capture.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let health: serde_json::Value =
        serde_json::from_slice(&pump_tests::http::get(http, "/healthz").await.body).unwrap();
    let (_, log, _) = capture.terminate().await;
    let cameras: Vec<&String> = health["cameras"].as_object().unwrap().keys().collect();
    assert_eq!(cameras, ["rack1"], "{health}");
    assert!(log.contains(&format!("camera http://127.0.0.1:{port}/x?a=1,b=2 is unavailable")), "{log}");
    // An old comma list is refused in one line, not read as a URL or as two cameras.
    let out =
        run("pump-capture", vec![], vec![("PUMP_CAMERAS", "a=0,b=1".into()), ("PUMP_NATS_URL", nats.url())]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.lines().next().is_some_and(|l| l.contains("separated by ';'")), "{stderr}");
}

/// A JPEG whose header claims `w`×`h` over the pixels of a small one: what a decoder allocates
/// is the claim (libjpeg fills what is missing), not what the bytes hold.
fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut jpeg = std::fs::read(testdata("bus.jpg")).unwrap();
    let sof = jpeg.windows(2).position(|m| m[0] == 0xFF && (0xC0..=0xC2).contains(&m[1])).unwrap();
    jpeg[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    jpeg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jpeg_bomb_is_refused_before_it_is_decoded() {
    use prost::Message;
    use pump_proto::{Encoding, Frame, GetSnapshotRequest};
    let nats = NatsServer::start();
    let logs = tempfile::tempdir().unwrap();
    let infer_http = free_addr();
    let infer = Service::start("pump-infer", &[], &env(&nats, infer_http), logs.path());
    wait_ready(&infer, infer_http).await;
    let c = pump_tests::services::client(&nats, "attacker").await;
    let mut poses = c.subscribe("pump.poses.bomb").await.unwrap();
    let frame = |id: u64, w: u32, h: u32, data: Vec<u8>| Frame {
        camera: "bomb".into(),
        frame_id: id,
        capture_ts_ns: pump_bus::clock::now_ns(),
        width: w,
        height: h,
        encoding: Encoding::Jpeg as i32,
        data: data.into(),
        ..Default::default()
    };
    // 16000×16000 (768 MB decoded) in a frame that claims 64×48, then one that says so.
    for (id, f) in
        [(1, frame(1, 64, 48, jpeg_claiming(16000, 16000))), (2, frame(2, 16000, 16000, jpeg_claiming(16000, 16000)))]
    {
        c.publish("pump.frames.bomb", f.encode_to_vec().into()).await.unwrap();
        c.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(infer.log().is_empty() || !infer.log().contains("panicked"), "frame {id}: {}", infer.log());
    }
    // The real photo, honestly sized, still gets its pose.
    let bus = std::fs::read(testdata("bus.jpg")).unwrap();
    c.publish("pump.frames.bomb", frame(3, 810, 1080, bus).encode_to_vec().into()).await.unwrap();
    c.flush().await.unwrap();
    let got = pump_tests::services::collect(&mut poses, Duration::from_secs(20)).await;
    assert_eq!(got.iter().map(|p| p.frame_id).collect::<Vec<_>>(), vec![3], "{}", infer.log());
    let metrics = pump_tests::http::get(infer_http, "/metrics").await.text();
    assert!(
        metrics.contains(r#"pump_frames_dropped_total{stage="infer",camera="bomb",reason="invalid"} 2"#),
        "{metrics}"
    );
    // Peak memory: the model and one photo (≈150 MB here), never the bomb's 768 MB.
    let status = std::fs::read_to_string(format!("/proc/{}/status", infer.pid())).unwrap();
    let hwm_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    assert!(hwm_kb < 400 * 1024, "pump-infer peaked at {} MB", hwm_kb / 1024);
    infer.stop().await;

    // The gateway will not decode it for a snapshot either: one line, at once.
    c.publish("pump.frames.bomb2", frame(1, 64, 48, jpeg_claiming(16000, 16000)).encode_to_vec().into()).await.unwrap();
    c.flush().await.unwrap();
    let gw = pump_tests::services::start_gateway(&nats).await;
    let mut q = pump_proto::pose_query_client::PoseQueryClient::new(gw.channel.clone());
    for overlay in [false, true] {
        let req = GetSnapshotRequest { camera: "bomb2".into(), overlay };
        let err = tokio::time::timeout(Duration::from_secs(5), q.get_snapshot(req)).await.unwrap().unwrap_err();
        assert!(err.message().contains("claims 64x48"), "{err}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_camera_can_have_its_own_encoding() {
    use prost::Message;
    let nats = NatsServer::start();
    let logs = tempfile::tempdir().unwrap();
    let squat = testdata("squat_5reps_15fps.mp4").display().to_string();
    let mut e = env(&nats, free_addr());
    e.push(("PUMP_CAMERA_ENCODING", "small=jpeg:80".into()));
    let args = ["--camera", &format!("small={squat}"), "--camera", &format!("exact={squat}")];
    let capture = Service::start("pump-capture", &args, &e, logs.path());
    let client = pump_tests::services::client(&nats, "watcher").await;
    let js = async_nats::jetstream::new(client);
    let deadline = Instant::now() + Duration::from_secs(30);
    let encoding_of = |camera: &'static str| {
        let js = js.clone();
        async move {
            let stream = js.get_stream(pump_bus::streams::FRAMES_STREAM).await.ok()?;
            let m = stream.get_last_raw_message_by_subject(&format!("pump.frames.{camera}")).await.ok()?;
            pump_proto::Frame::decode(m.payload).ok().map(|f| f.encoding)
        }
    };
    let (small, exact) = loop {
        if let (Some(s), Some(x)) = (encoding_of("small").await, encoding_of("exact").await) {
            break (s, x);
        }
        assert!(Instant::now() < deadline, "no frames: {}", capture.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = capture.terminate().await;
    assert_eq!((small, exact), (pump_proto::Encoding::Jpeg as i32, pump_proto::Encoding::Bgr8 as i32));
    // A setting for a camera that is not there is one line, exit 64.
    let out = run(
        "pump-capture",
        vec!["--camera".into(), format!("a={squat}"), "--camera-encoding".into(), "b=jpeg".into()],
        vec![("PUMP_NATS_URL", nats.url())],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("camera b, which is not one of --camera"), "{stderr}");
}

/// A camera host whose clock is wrong by decades, or a frame that says it was taken at the ends
/// of time: stamps the services subtract from their own clock or from each other. Those
/// subtractions panicked (debug) or wrapped (release) in five places; now they saturate, the
/// frame is judged by the result (too old, or not yet), and every service goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_and_poses_stamped_at_the_ends_of_time_break_no_service() {
    use prost::Message;
    use pump_proto::{Encoding, Frame, PoseFrame};
    let nats = NatsServer::start();
    let logs = tempfile::tempdir().unwrap();
    let (infer_http, sets_http, gw_http) = (free_addr(), free_addr(), free_addr());
    let infer = Service::start("pump-infer", &[], &env(&nats, infer_http), logs.path());
    let sets = Service::start(
        "pump-sets",
        &["--exercise", "squat", "--quiet-seconds", "4"],
        &env(&nats, sets_http),
        logs.path(),
    );
    let grpc = free_addr().to_string();
    let gw = Service::start("pump-gateway", &["--clips", "--grpc-addr", &grpc], &env(&nats, gw_http), logs.path());
    for (s, addr) in [(&infer, infer_http), (&sets, sets_http), (&gw, gw_http)] {
        wait_ready(s, addr).await;
    }
    let c = pump_tests::services::client(&nats, "wrong-clock").await;
    let bus = std::fs::read(testdata("bus.jpg")).unwrap();
    let frame = |camera: &str, id: u64, ts: i64| Frame {
        camera: camera.into(),
        frame_id: id,
        capture_ts_ns: ts,
        source_ts_ns: ts,
        width: 810,
        height: 1080,
        encoding: Encoding::Jpeg as i32,
        data: bus.clone().into(),
        ..Default::default()
    };
    let extremes = [i64::MIN, i64::MIN + 1, -1, i64::MAX - 1, i64::MAX];
    for (i, ts) in extremes.iter().enumerate() {
        let f = frame("ends", i as u64 + 1, *ts);
        c.publish("pump.frames.ends", f.encode_to_vec().into()).await.unwrap();
        c.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Poses straight onto the bus as a replica would publish them: squats whose capture and
    // timeline clocks are at opposite ends, then at the same far end.
    for (camera, capture, source) in
        [("ends-a", i64::MAX - 60_000_000_000, i64::MIN), ("ends-b", i64::MIN, i64::MAX - 60_000_000_000)]
    {
        for i in 0..150u64 {
            let t = i as f64 / 15.0;
            let knee = pump_tests::bodies::knee_in_squats(t - 1.0, 3, 2.0);
            let mut pf: PoseFrame = pump_tests::bodies::squatting_pose_frame(camera, i, t, knee);
            let step = (t * 1e9) as i64;
            pf.capture_ts_ns = capture.saturating_add(step);
            pf.source_ts_ns = source.saturating_add(step);
            pf.publish_ts_ns = i64::MIN;
            c.publish(format!("pump.poses.{camera}"), pf.encode_to_vec().into()).await.unwrap();
        }
        c.flush().await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Every service still answers, none panicked, and a frame of now still gets its pose.
    let mut poses = c.subscribe("pump.poses.ends").await.unwrap();
    let now = pump_bus::clock::now_ns();
    c.publish("pump.frames.ends", frame("ends", 10, now).encode_to_vec().into()).await.unwrap();
    c.flush().await.unwrap();
    let got = pump_tests::services::collect(&mut poses, Duration::from_secs(20)).await;
    assert!(
        got.iter().any(|p| p.frame_id == 10),
        "{:?} {}",
        got.iter().map(|p| p.frame_id).collect::<Vec<_>>(),
        infer.log()
    );
    for (s, addr) in [(&infer, infer_http), (&sets, sets_http), (&gw, gw_http)] {
        let r = tokio::time::timeout(Duration::from_secs(5), pump_tests::http::get(addr, "/healthz")).await;
        assert!(r.is_ok(), "{} no longer answers: {}", s.log(), s.log());
        assert!(!s.log().contains("panicked"), "{}", s.log());
    }
    for s in [infer, sets, gw] {
        let log = s.stop().await;
        assert!(!log.contains("panicked"), "{log}");
    }
}

/// The distinct `camera` labels of a Prometheus text.
fn cameras_in(metrics: &[u8]) -> std::collections::BTreeSet<String> {
    let text = String::from_utf8_lossy(metrics).to_string();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split("camera=\"").nth(1).and_then(|r| r.split('"').next()).map(str::to_string))
        .collect()
}

/// Anyone who may publish frames can name a new camera per message: every service kept state
/// (inference's slots and counters, pump-sets' counts, the gateway's book and clips, their log
/// limiters) for every name ever seen. Now each keeps at most `--max-cameras`, the longest-silent
/// going first, never a camera with a set in progress; a live camera goes on being counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_camera_names_is_forgotten_by_every_service_and_the_live_camera_counted() {
    use prost::Message;
    use pump_proto::{Encoding, Frame};
    let nats = NatsServer::start();
    let logs = tempfile::tempdir().unwrap();
    let (infer_http, sets_http, gw_http) = (free_addr(), free_addr(), free_addr());
    let limited = |http| {
        let mut e = env(&nats, http);
        e.push(("PUMP_MAX_CAMERAS", "8".into()));
        e
    };
    let infer = Service::start("pump-infer", &[], &limited(infer_http), logs.path());
    let sets = Service::start("pump-sets", &["--exercise", "squat"], &limited(sets_http), logs.path());
    let grpc = free_addr().to_string();
    let gw = Service::start("pump-gateway", &["--clips", "--grpc-addr", &grpc], &limited(gw_http), logs.path());
    for (s, addr) in [(&infer, infer_http), (&sets, sets_http), (&gw, gw_http)] {
        wait_ready(s, addr).await;
    }
    let c = pump_tests::services::client(&nats, "flood").await;
    let bus = std::fs::read(testdata("bus.jpg")).unwrap();
    let frame = |camera: &str, id: u64| Frame {
        camera: camera.into(),
        frame_id: id,
        capture_ts_ns: pump_bus::clock::now_ns(),
        width: 810,
        height: 1080,
        encoding: Encoding::Jpeg as i32,
        data: bus.clone().into(),
        ..Default::default()
    };
    let mut poses = c.subscribe("pump.poses.rack1").await.unwrap();
    // The live camera at 4 fps throughout; 500 names, a frame each, in between.
    let mut id = 0;
    for round in 0..25u64 {
        id += 1;
        c.publish("pump.frames.rack1", frame("rack1", id).encode_to_vec().into()).await.unwrap();
        for i in 0..20 {
            let name = format!("flood{}", round * 20 + i);
            c.publish(format!("pump.frames.{name}"), frame(&name, 1).encode_to_vec().into()).await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(10), c.flush()).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // After the flood, rack1 is still inferred and counted.
    let sent_after = id + 1;
    for _ in 0..12 {
        id += 1;
        c.publish("pump.frames.rack1", frame("rack1", id).encode_to_vec().into()).await.unwrap();
        c.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let got = pump_tests::services::collect(&mut poses, Duration::from_secs(5)).await;
    assert!(got.iter().any(|p| p.frame_id >= sent_after), "rack1 no longer inferred: {}", infer.log());
    for (s, addr) in [(&infer, infer_http), (&sets, sets_http), (&gw, gw_http)] {
        let m = tokio::time::timeout(Duration::from_secs(5), pump_tests::http::get(addr, "/metrics")).await.unwrap();
        let cameras = cameras_in(&m.body);
        eprintln!("{addr}: {} cameras in /metrics", cameras.len());
        assert!(cameras.len() <= 8, "{} cameras kept: {cameras:?}", cameras.len());
        assert!(cameras.contains("rack1"), "{cameras:?}\n{}", s.log());
        assert!(!s.log().contains("panicked"), "{}", s.log());
    }
    // pump-sets' checkpoints: one per camera name it counted, bounded too.
    let js = async_nats::jetstream::new(c.clone());
    let mut resume = js.get_stream(pump_sets_service::run::CHECKPOINT_STREAM).await.unwrap();
    let kept = resume.info().await.unwrap().state.messages;
    eprintln!("checkpoints kept: {kept}");
    assert!(kept as i64 <= pump_sets_service::run::checkpoints_kept(8), "{kept} checkpoints");
    let refused = String::from_utf8_lossy(&pump_tests::http::get(infer_http, "/metrics").await.body).to_string();
    let line = refused.lines().find(|l| l.contains("reason=\"too_many_cameras\"")).unwrap_or_default().to_string();
    eprintln!("infer: {line}");
    // The flood's warnings are a few lines, not one per name.
    let warned = infer.log().lines().filter(|l| l.contains("every camera slot is busy")).count();
    assert!(warned <= 5, "{warned} lines: {}", infer.log());
    for s in [infer, sets, gw] {
        let log = s.stop().await;
        assert!(!log.contains("panicked"), "{log}");
    }
}

/// `/healthz`, the pods' liveness probe, answered 200 whatever the state: a model hung in its
/// runtime left a pod up for ever, its cameras' frames dropped. Now frames waiting with no run
/// finished for `stuck_after` make it 503 "stuck", and the probe restarts the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_model_makes_the_liveness_probe_fail() {
    use prost::Message;
    let nats = NatsServer::start();
    let bus = pump_bus::connect::BusConfig::new(nats.url(), "test-infer");
    let mut config = pump_infer::Config::new(bus.clone());
    config.stuck_after = Duration::from_secs(2);
    let client =
        tokio::time::timeout(Duration::from_secs(30), pump_bus::connect::connect(&bus)).await.unwrap().unwrap();
    // FAKE predictor delay: warm-up and the first frame at once, then a run that never ends.
    let hung = pump_infer::UnevenPredictor {
        delays: vec![Duration::ZERO, Duration::ZERO, Duration::from_secs(3600)],
        next: 0,
    };
    let stats = std::sync::Arc::new(pump_infer::InferStats::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let service = pump_infer::Service {
        config,
        client,
        predictors: vec![Box::new(hung)],
        stats: stats.clone(),
        ops: Some(listener),
    };
    // On a runtime of its own, let go at the end without waiting: its worker sleeps for an hour.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let _infer = rt.spawn(pump_infer::run(service, tokio_util::sync::CancellationToken::new()));
    pump_tests::eventually("inference ready", Duration::from_secs(30), || {
        let stats = stats.clone();
        async move { stats.is_ready() }
    })
    .await;
    let c = pump_tests::services::client(&nats, "camera").await;
    let health = || async {
        tokio::time::timeout(Duration::from_secs(5), pump_tests::http::get(http, "/healthz")).await.unwrap()
    };
    let mut sent = 0;
    let mut send = || {
        sent += 1;
        let f = pump_tests::media::gray_frame("cam", sent, pump_bus::clock::now_ns(), 64, 48);
        let c = c.clone();
        async move {
            c.publish("pump.frames.cam", f.encode_to_vec().into()).await.unwrap();
            c.flush().await.unwrap();
        }
    };
    // Frames at 5 fps: the first is inferred, the second hangs the model, the rest wait.
    for _ in 0..5 {
        send().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(health().await.status, 200, "not stuck yet");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let reply = loop {
        send().await;
        let reply = health().await;
        if reply.status != 200 || tokio::time::Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let body = String::from_utf8_lossy(&reply.body).to_string();
    assert_eq!(reply.status, 503, "{body}");
    assert!(body.contains("\"stuck\"") && body.contains("none done"), "{body}");
    rt.shutdown_background();
}
