//! `pump cameras`, `pump poses [--follow]`, `pump sets CAMERA [--follow]`, `pump snapshot`: the
//! real binary against a gateway on a real nats-server; one clear line when the gateway or the
//! camera is not there; a follower piped into `head` ends quietly when `head` has enough.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::BufRead;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use prost::Message;
use pump_proto::{PoseFrame, SetEvent};
use pump_tests::services::{client, start_gateway};
use pump_tests::{bin, json_lines, wait_with_deadline, NatsServer};

async fn pump(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let child = Command::new(bin("pump"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_with_deadline(child, Duration::from_secs(30))
    })
    .await
    .unwrap()
}

fn args(list: &[&str], addr: &str) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.push("--grpc-addr".into());
    v.push(addr.into());
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_read_through_the_gateway() {
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let addr = gw.addr.to_string();
    let c = client(&nats, "publisher").await;
    for i in 0..3u64 {
        let pf = PoseFrame {
            camera: "rack1".into(),
            frame_id: i,
            publish_ts_ns: 10,
            capture_ts_ns: 5,
            ..Default::default()
        };
        c.publish("pump.poses.rack1", pf.encode_to_vec().into()).await.unwrap();
    }
    let js = async_nats::jetstream::new(c.clone());
    let set = SetEvent {
        camera: "rack1".into(),
        set_id: "rack1-1".into(),
        reps: 5,
        exercise: "squat".into(),
        confidence: 1.0,
        rep_depths_deg: vec![92.0, 88.5, 85.0, 90.0, 95.4],
        rep_durations_s: vec![2.0, 1.8, 1.7, 2.25, 2.5],
        // 2026-12-01T10:00:00Z, 12 s long.
        start_unix_ns: 1_796_119_200_000_000_000,
        end_unix_ns: 1_796_119_212_000_000_000,
        ..Default::default()
    };
    js.publish("pump.sets.rack1", set.encode_to_vec().into()).await.unwrap().await.unwrap();
    c.flush().await.unwrap();

    let out = pump(args(&["cameras"], &addr)).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("CAMERA") && text.contains("DROPPED") && text.contains("rack1"), "{text}");
    let out = pump(args(&["cameras", "--json"], &addr)).await;
    let cams = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!((cams[0]["camera"].as_str(), cams[0]["last_frame_id"].as_u64()), (Some("rack1"), Some(2)));
    assert!(cams[0]["pose_fps"].is_f64() && cams[0]["frames_dropped"].is_u64(), "{}", cams[0]);

    let out = pump(args(&["poses", "rack1", "--json"], &addr)).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json_lines(&String::from_utf8(out.stdout).unwrap())[0]["frame_id"], 2);

    let out = pump(args(&["sets", "rack1", "--json"], &addr)).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sets = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!((sets[0]["set_id"].as_str(), sets[0]["reps"].as_u64()), (Some("rack1-1"), Some(5)));
    assert_eq!(sets[0]["start_utc"], "2026-12-01T10:00:00Z");
    assert_eq!(sets[0]["rep_depths_deg"][2], 85.0);
    let out = pump(args(&["sets", "rack1"], &addr)).await;
    let text = String::from_utf8_lossy(&out.stdout);
    // When, how deep and how fast, per set.
    for want in ["2026-12-01T10:00:00Z", "5 reps of squat", "depth 85–95°", "tempo 1.7–2.5 s"] {
        assert!(text.contains(want), "{want:?} in {text}");
    }
    // A spreadsheet's rows: one per rep.
    let out = pump(args(&["sets", "rack1", "--csv"], &addr)).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 6, "{csv}");
    assert_eq!(rows[0], "camera,set_id,exercise,start_utc,end_utc,rep,depth_deg,duration_s,pending");
    assert_eq!(rows[3], "rack1,rack1-1,squat,2026-12-01T10:00:00Z,2026-12-01T10:00:12Z,3,85.0,1.70,false");
    let out = pump(args(&["sets", "rack1", "--csv", "--json"], &addr)).await;
    assert_eq!(out.status.code(), Some(64), "--csv and --json together: {}", String::from_utf8_lossy(&out.stderr));

    let out = pump(args(&["poses", "nobody"], &addr)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unknown camera \"nobody\"") && stderr.lines().count() == 1, "{stderr}");
    gw.stop().await;
}

#[tokio::test]
async fn an_unreachable_gateway_is_one_clear_line() {
    let port = pump_tests::nats::free_port();
    let out = pump(args(&["cameras"], &format!("127.0.0.1:{port}"))).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("cannot reach the gateway"), "{stderr}");
    assert!(!stderr.contains("panicked"));
    // A request that cannot be right is refused before any connection is tried.
    let out = pump(args(&["sets", "--follow"], &format!("127.0.0.1:{port}"))).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!((out.status.code(), stderr.trim()), (Some(1), "pump: --follow needs a CAMERA"));
}

/// A `pump … --follow` whose reader takes `n` lines, then goes away as `head -n N` does.
struct Follower {
    child: std::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Follower {
    fn start(args: Vec<String>, n: usize) -> Self {
        let mut child =
            Command::new(bin("pump")).args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().take(n) {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
            // The pipe's read end closes here.
        });
        Follower { child, lines }
    }

    /// The next line, while `poke` keeps producing (a stream may be set up after the first).
    async fn next_line<F: std::future::Future<Output = ()>>(&mut self, mut poke: impl FnMut() -> F) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(line)) = tokio::time::timeout(Duration::from_millis(100), self.lines.recv()).await {
                return line;
            }
            assert!(tokio::time::Instant::now() < deadline, "no line from the follower within 20 s");
            poke().await;
        }
    }

    /// Keeps producing until the follower, writing into the closed pipe, exits.
    async fn finish<F: std::future::Future<Output = ()>>(mut self, mut poke: impl FnMut() -> F) -> Output {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(tokio::time::Instant::now() < deadline, "the follower did not end after its reader left");
            poke().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::task::spawn_blocking(move || wait_with_deadline(self.child, Duration::from_secs(5))).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_print_as_things_happen_and_end_quietly_when_their_reader_leaves() {
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let addr = gw.addr.to_string();
    let c = client(&nats, "publisher").await;
    let next_id = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let pose = || {
        let (c, id) = (c.clone(), next_id.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        async move {
            let pf = PoseFrame { camera: "rack1".into(), frame_id: id, ..Default::default() };
            c.publish("pump.poses.rack1", pf.encode_to_vec().into()).await.unwrap();
            c.flush().await.unwrap();
        }
    };

    // `pump poses rack1 --follow --json | head -n 3`, on a camera with a pose kept (without
    // --wait, an unknown camera is an error: the follower must not race the first pose).
    pose().await;
    let mut poses = Follower::start(args(&["poses", "rack1", "--follow", "--json"], &addr), 3);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(json_lines(&poses.next_line(pose).await)[0]["frame_id"].as_u64().unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "newest last: {ids:?}");
    let out = poses.finish(pose).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "quiet: {stderr}");

    // `pump sets rack1 --follow | head -n 2`: the stored set, then one closed while following.
    let js = async_nats::jetstream::new(c.clone());
    let set = |n: u64| SetEvent { camera: "rack1".into(), set_id: format!("rack1-{n}"), reps: 5, ..Default::default() };
    js.publish("pump.sets.rack1", set(1).encode_to_vec().into()).await.unwrap().await.unwrap();
    let next_set = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(2));
    let close_set = || {
        let (js, n) = (js.clone(), next_set.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        let event = set(n);
        async move {
            js.publish("pump.sets.rack1", event.encode_to_vec().into()).await.unwrap().await.unwrap();
        }
    };
    let mut sets = Follower::start(args(&["sets", "rack1", "--follow", "--json"], &addr), 2);
    let first = json_lines(&sets.next_line(|| async {}).await)[0].clone();
    assert_eq!(first["set_id"], "rack1-1", "{first}");
    let second = json_lines(&sets.next_line(close_set).await)[0].clone();
    assert!(second["set_id"].as_str().unwrap() > "rack1-1", "{second}");
    let out = sets.finish(close_set).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!((out.status.code(), stderr.is_empty()), (Some(0), true), "{stderr}");

    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_writes_the_newest_frame_as_jpeg() {
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let addr = gw.addr.to_string();
    let c = client(&nats, "publisher").await;
    let frame = pump_tests::media::gray_frame("rack1", 9, pump_bus::clock::now_ns(), 160, 120);
    c.publish("pump.frames.rack1", frame.encode_to_vec().into()).await.unwrap();
    c.flush().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rack1.jpg");

    let out = pump(args(&["snapshot", "rack1", "--overlay", "-o", path.to_str().unwrap()], &addr)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("rack1: frame 9 (160x120) written to"), "{stderr}");
    let (w, h, _) = pump_tests::media::decode_jpeg(&std::fs::read(&path).unwrap());
    assert_eq!((w, h), (160, 120));

    let out = pump(args(&["snapshot", "nobody", "-o", path.to_str().unwrap()], &addr)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let out = pump(args(&["snapshot", "rack1", "-o", "/no/such/folder/x.jpg"], &addr)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write /no/such/folder/x.jpg") && stderr.lines().count() == 1, "{stderr}");
    gw.stop().await;
}
