//! The gateway against a real nats-server: health, reflection, every PoseQuery RPC with its
//! error codes, a slow streaming client that cannot grow the gateway, and the bus going away.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use prost::Message;
use pump_proto::pose_query_client::PoseQueryClient;
use pump_proto::{
    GetLatestPosesRequest, GetSnapshotRequest, ListCamerasRequest, ListSetsRequest, PoseFrame, StreamPosesRequest,
};
use pump_tests::services::{client, start_gateway};
use pump_tests::NatsServer;
use tonic::Code;

const T: Duration = Duration::from_secs(30);

async fn publish(c: &async_nats::Client, camera: &str, ids: std::ops::Range<u64>) {
    for i in ids {
        let pf =
            PoseFrame { camera: camera.into(), frame_id: i, publish_ts_ns: 1_000 + i as i64, ..Default::default() };
        c.publish(format!("pump.poses.{camera}"), pf.encode_to_vec().into()).await.unwrap();
    }
    c.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_poses_list_and_errors_have_the_right_codes() {
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let c = client(&nats, "publisher").await;
    publish(&c, "rack1", 0..3).await;
    publish(&c, "rack2", 0..1).await;
    let mut q = PoseQueryClient::new(gw.channel.clone());
    // The gateway reads the bus on its own: on a busy machine the last pose lands a moment after
    // it was published.
    let latest = tokio::time::timeout(T, async {
        loop {
            match q.get_latest_poses(GetLatestPosesRequest { camera: "rack1".into() }).await {
                Ok(r) if r.get_ref().frame_id == 2 => break r,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(latest.get_ref().frame_id, 2);
    // rack2's one pose was published after rack1's.
    let cams = tokio::time::timeout(T, async {
        loop {
            let cams = q.list_cameras(ListCamerasRequest {}).await.unwrap().into_inner().cameras;
            if cams.len() >= 2 {
                break cams;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(
        cams.iter().map(|c| (c.camera.as_str(), c.last_frame_id)).collect::<Vec<_>>(),
        vec![("rack1", 2), ("rack2", 0)]
    );
    let err = q.get_latest_poses(GetLatestPosesRequest { camera: "nobody".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    let err = q.get_latest_poses(GetLatestPosesRequest { camera: "a.b>".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    let err = q.stream_poses(StreamPosesRequest { camera: "".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // A camera nothing is kept of: NOT_FOUND at once, not a stream that waits for ever.
    let req = StreamPosesRequest { camera: "nobody".into(), ..Default::default() };
    let err = tokio::time::timeout(T, q.stream_poses(req)).await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    assert!(err.message().contains("unknown camera"), "{err}");
    let err = q.get_snapshot(GetSnapshotRequest { camera: "nobody".into(), overlay: true }).await.unwrap_err();
    assert!(err.message().contains("unknown camera"), "{err}");
    let err = q.list_sets(ListSetsRequest { since_s: f64::NAN, ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_poses_goes_live_and_a_slow_client_skips_instead_of_queueing() {
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let c = client(&nats, "publisher").await;
    let mut q = PoseQueryClient::new(gw.channel.clone());
    let mut stream = q
        .stream_poses(StreamPosesRequest { camera: "cam".into(), from_ns: 0, wait_for_camera: true })
        .await
        .unwrap()
        .into_inner();
    // Subscribed before the call returned: nothing published from now on is missed.
    publish(&c, "cam", 0..5).await;
    for want in 0..5 {
        let got = tokio::time::timeout(T, stream.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(got.frame_id, want);
    }
    // Not reading while 2 000 frames go by: the gateway keeps at most its small buffer. They come
    // in bursts of 100 (a busy camera's seconds, not one flood): a flood on a loaded machine
    // overflows the gateway's NATS subscription first, and those frames are never "skipped".
    for start in (5..2005).step_by(100) {
        publish(&c, "cam", start..start + 100).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(gw.skipped.load(Ordering::Relaxed) > 1000, "skipped {}", gw.skipped.load(Ordering::Relaxed));
    let mut got = Vec::new();
    while let Ok(Some(Ok(p))) = tokio::time::timeout(Duration::from_millis(500), stream.next()).await {
        got.push(p.frame_id);
    }
    // What it kept is bounded: the per-client buffer plus what HTTP/2 flow control holds.
    assert!(got.len() < 1000, "{} frames were held for a slow client", got.len());
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_gets_fresh_poses_after_the_stall() {
    use pump_proto::{Keypoint, Person};
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let c = client(&nats, "publisher").await;
    // A client that sizes its HTTP/2 window as gRPC's Go and C cores do (64 KB), as pump's does:
    // what the window holds was sent before the stall and is the client's to read first.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", gw.addr))
        .unwrap()
        .initial_stream_window_size(Some(64 * 1024))
        .connect()
        .await
        .unwrap();
    let mut q = PoseQueryClient::new(channel);
    let req = StreamPosesRequest { camera: "cam".into(), from_ns: 0, wait_for_camera: true };
    let mut stream = q.stream_poses(req).await.unwrap().into_inner();
    // Pose frames of ~8 KB (30 people), so that what HTTP/2 holds is a few frames.
    let person = Person { keypoints: vec![Keypoint { x: 1.0, y: 2.0, confidence: 0.5 }; 17], ..Default::default() };
    let frame = move |i: u64| PoseFrame {
        camera: "cam".into(),
        frame_id: i,
        publish_ts_ns: pump_bus::clock::now_ns(),
        people: vec![person.clone(); 30],
        ..Default::default()
    };
    let size = frame(0).encoded_len() + 5;
    // 6 s unread at 30 poses/s.
    let t_stall = tokio::time::Instant::now();
    let mut id = 0;
    while t_stall.elapsed() < Duration::from_secs(6) {
        c.publish("pump.poses.cam", frame(id).encode_to_vec().into()).await.unwrap();
        id += 1;
        tokio::time::sleep(Duration::from_millis(33)).await;
    }
    let read_from = pump_bus::clock::now_ns();
    // Reading again while the camera goes on: the window's worth of old poses, then fresh ones.
    let publisher = {
        let c = c.clone();
        tokio::spawn(async move {
            for i in id..id + 60 {
                c.publish("pump.poses.cam", frame(i).encode_to_vec().into()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(33)).await;
            }
        })
    };
    let mut ages = Vec::new();
    while let Ok(Some(Ok(p))) = tokio::time::timeout(Duration::from_millis(1500), stream.next()).await {
        ages.push((read_from - p.publish_ts_ns) as f64 / 1e9);
    }
    publisher.await.unwrap();
    let stale = ages.iter().filter(|&&a| a > 1.5).count();
    // The 64 KB window plus one 32 KB chunk of tonic's encoder: what HTTP/2 took before the stall.
    let in_flight = (96 * 1024) / size + 2;
    assert!(stale <= in_flight, "{stale} stale poses after the stall (HTTP/2 holds {in_flight}): {ages:?}");
    assert!(ages.len() > stale + 30, "fresh poses came after the stale ones: {ages:?}");
    assert!(ages.iter().skip_while(|&&a| a > 1.5).all(|&a| a <= 1.5), "{ages:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let mut r = ServerReflectionClient::new(gw.channel.clone());
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut resp = r.server_reflection_info(futures::stream::iter(vec![req])).await.unwrap().into_inner();
    let msg = tokio::time::timeout(T, resp.next()).await.unwrap().unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else { panic!("{msg:?}") };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"pump.v1.PoseQuery".to_string()), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health".to_string()), "{names:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_sets_are_listed_in_pages_that_fit_a_reply() {
    use pump_proto::{FeatureRow, ListSetsRequest, SetEvent};
    // 120 sets of 2000 feature rows (~55 kB each, 6.5 MB in all): one reply of them all was
    // over tonic's 4 MiB limit, and the call failed.
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let js = async_nats::jetstream::new(client(&nats, "publisher").await);
    let rows: Vec<FeatureRow> = (0..2000).map(|i| FeatureRow { angles: vec![i as f32; 6] }).collect();
    for n in 0..120u32 {
        let set = SetEvent {
            camera: "long".into(),
            set_id: format!("long-{n}"),
            reps: 5,
            features: rows.clone(),
            ..Default::default()
        };
        js.publish("pump.sets.long", set.encode_to_vec().into()).await.unwrap().await.unwrap();
    }
    let mut q = PoseQueryClient::new(gw.channel.clone());
    let (mut pages, mut all, mut before_seq) = (0, Vec::new(), 0);
    loop {
        let req = ListSetsRequest { camera: "long".into(), limit: 1000, before_seq, ..Default::default() };
        let page = tokio::time::timeout(T, q.list_sets(req)).await.unwrap().unwrap().into_inner();
        assert!(!page.sets.is_empty() && page.encoded_len() < 4 << 20, "{} bytes", page.encoded_len());
        pages += 1;
        let ids: Vec<String> = page.sets.into_iter().map(|s| s.set_id).collect();
        all.splice(0..0, ids);
        if page.next_before_seq == 0 {
            break;
        }
        before_seq = page.next_before_seq;
        assert!(pages < 10, "paging does not end");
    }
    assert!(pages >= 2, "one page held them all");
    assert_eq!(all, (0..120).map(|n| format!("long-{n}")).collect::<Vec<_>>(), "every set once, in order");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_unreachable_is_unavailable() {
    let mut nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    nats.stop();
    let mut q = PoseQueryClient::new(gw.channel.clone());
    let err = tokio::time::timeout(T, q.get_latest_poses(GetLatestPosesRequest { camera: "cam".into() }))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sets_are_listed_and_streamed_and_reps_stream_live() {
    use pump_proto::{ListSetsRequest, RepProgress, SetEvent, StreamRepsRequest, StreamSetsRequest};
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let c = client(&nats, "publisher").await;
    let js = async_nats::jetstream::new(c.clone());
    let mut q = PoseQueryClient::new(gw.channel.clone());
    let mut live_sets = q.stream_sets(StreamSetsRequest { camera: "a".into() }).await.unwrap().into_inner();
    let mut live_reps = q.stream_reps(StreamRepsRequest { camera: "a".into() }).await.unwrap().into_inner();
    // Both in place before the calls returned: nothing published from now on is missed.
    for (cam, id, reps) in [("a", "a-1", 5u32), ("b", "b-1", 3), ("a", "a-2", 8)] {
        let set =
            SetEvent { camera: cam.into(), set_id: id.into(), reps, exercise: "squat".into(), ..Default::default() };
        js.publish(format!("pump.sets.{cam}"), set.encode_to_vec().into()).await.unwrap().await.unwrap();
    }
    for n in 1..=3u32 {
        let p = RepProgress { camera: "a".into(), set_id: "a-3".into(), reps: n, t_s: n as f64, ..Default::default() };
        c.publish("pump.reps.a", p.encode_to_vec().into()).await.unwrap();
    }
    c.flush().await.unwrap();

    let mut streamed = Vec::new();
    for _ in 0..2 {
        streamed.push(tokio::time::timeout(T, live_sets.next()).await.unwrap().unwrap().unwrap().set_id);
    }
    assert_eq!(streamed, vec!["a-1", "a-2"], "only camera a's sets, in order");
    let mut reps = Vec::new();
    for _ in 0..3 {
        reps.push(tokio::time::timeout(T, live_reps.next()).await.unwrap().unwrap().unwrap().reps);
    }
    assert_eq!(reps, vec![1, 2, 3]);

    let ids = |r: tonic::Response<pump_proto::ListSetsResponse>| {
        r.into_inner().sets.into_iter().map(|s| s.set_id).collect::<Vec<_>>()
    };
    let a = q.list_sets(ListSetsRequest { camera: "a".into(), since_s: 0.0, limit: 0, before_seq: 0 }).await.unwrap();
    assert_eq!(ids(a), vec!["a-1", "a-2"]);
    let newest =
        q.list_sets(ListSetsRequest { camera: String::new(), since_s: 0.0, limit: 2, before_seq: 0 }).await.unwrap();
    assert_eq!(ids(newest), vec!["b-1", "a-2"], "the newest two, oldest first");
    let future =
        q.list_sets(ListSetsRequest { camera: String::new(), since_s: 4e9, limit: 0, before_seq: 0 }).await.unwrap();
    assert!(ids(future).is_empty());
    let none =
        q.list_sets(ListSetsRequest { camera: "nobody".into(), since_s: 0.0, limit: 0, before_seq: 0 }).await.unwrap();
    assert!(ids(none).is_empty());
    let err =
        q.list_sets(ListSetsRequest { camera: "x y".into(), since_s: 0.0, limit: 0, before_seq: 0 }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_poses_from_a_time_replays_history_then_goes_live_with_no_gap_or_duplicate() {
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let c = client(&nats, "publisher").await;
    publish(&c, "cam", 0..5).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let from = pump_bus::clock::now_ns();
    tokio::time::sleep(Duration::from_millis(100)).await;
    publish(&c, "cam", 5..10).await;
    let mut q = PoseQueryClient::new(gw.channel.clone());
    let mut stream = q
        .stream_poses(StreamPosesRequest { camera: "cam".into(), from_ns: from, wait_for_camera: true })
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(tokio::time::timeout(T, stream.next()).await.unwrap().unwrap().unwrap().frame_id);
    }
    // Live frames published while the client is still reading history.
    publish(&c, "cam", 10..15).await;
    for _ in 0..5 {
        got.push(tokio::time::timeout(T, stream.next()).await.unwrap().unwrap().unwrap().frame_id);
    }
    assert_eq!(got, (5..15).collect::<Vec<_>>(), "history from `from`, then live, each once, in order");
    assert!(tokio::time::timeout(Duration::from_millis(300), stream.next()).await.is_err(), "nothing more");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_jpeg_encoded_once_per_frame_and_never_stale() {
    use pump_proto::{Frame, GetSnapshotRequest, Keypoint, Person};
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let c = client(&nats, "publisher").await;
    let now = pump_bus::clock::now_ns();
    let frame = |camera: &str, id: u64, ts: i64| pump_tests::media::gray_frame(camera, id, ts, 64, 48);
    c.publish("pump.frames.cam", frame("cam", 7, now).encode_to_vec().into()).await.unwrap();
    // Silent: its last frame reached the bus over 5 s ago (whatever its stamp; checked below).
    c.publish("pump.frames.old", frame("old", 1, now - 10_000_000_000).encode_to_vec().into()).await.unwrap();
    let old_sent = tokio::time::Instant::now();
    let kps = (0..17).map(|i| Keypoint { x: 10.0 + i as f32 * 2.0, y: 10.0 + i as f32, confidence: 0.9 }).collect();
    let person = Person { r#box: None, score: 0.9, keypoints: kps };
    // The pose of frame 7 carries its capture time, as inference's do.
    let pf =
        PoseFrame { camera: "cam".into(), frame_id: 7, capture_ts_ns: now, people: vec![person], ..Default::default() };
    c.publish("pump.poses.cam", pf.encode_to_vec().into()).await.unwrap();
    c.flush().await.unwrap();

    let mut q = PoseQueryClient::new(gw.channel.clone());
    let plain = q.get_snapshot(GetSnapshotRequest { camera: "cam".into(), overlay: false }).await.unwrap().into_inner();
    assert_eq!((plain.frame_id, plain.width, plain.height), (7, 64, 48));
    assert_eq!(&plain.jpeg[..2], &[0xff, 0xd8], "a JPEG");
    let mut overlays = Vec::new();
    for _ in 0..3 {
        overlays.push(
            q.get_snapshot(GetSnapshotRequest { camera: "cam".into(), overlay: true }).await.unwrap().into_inner().jpeg,
        );
    }
    assert_ne!(overlays[0], plain.jpeg, "the skeleton is drawn on");
    assert!(overlays.iter().all(|j| *j == overlays[0]));
    assert_eq!(gw.snapshots.encodes.load(Ordering::Relaxed), 2, "one encode per frame and variant, however many ask");
    tokio::time::sleep_until(old_sent + Duration::from_millis(5_500)).await;
    for (camera, code) in [("nobody", Code::NotFound), ("old", Code::NotFound), ("a.b", Code::InvalidArgument)] {
        let err = q.get_snapshot(GetSnapshotRequest { camera: camera.into(), overlay: false }).await.unwrap_err();
        assert_eq!(err.code(), code, "{camera}: {err}");
    }
    // A stream that ended has no snapshot either.
    let eos = Frame {
        camera: "cam".into(),
        frame_id: 8,
        capture_ts_ns: pump_bus::clock::now_ns(),
        end_of_stream: true,
        ..Default::default()
    };
    c.publish("pump.frames.cam", eos.encode_to_vec().into()).await.unwrap();
    c.flush().await.unwrap();
    let err = q.get_snapshot(GetSnapshotRequest { camera: "cam".into(), overlay: false }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    gw.stop().await;
}

/// 64 clients asking for skeleton snapshots of four 4K cameras, each frame new (so each is drawn
/// and encoded, ~0.2 s of a core): health must still answer at once. Encoding on the tokio
/// workers, under the cache's lock, stalled it for as long as an encode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_at_once_while_64_clients_ask_for_snapshots() {
    use pump_proto::{Encoding, Keypoint, Person};
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let c = client(&nats, "camera").await;
    let (w, h) = (3840u32, 2160u32);
    let bgr: Vec<u8> =
        (0..h).flat_map(|y| (0..w).flat_map(move |x| [(x / 15) as u8, (y / 8) as u8, ((x + y) / 23) as u8])).collect();
    let big = pump_tests::media::gray_frame("cam", 1, 1, w, h);
    let big = pump_proto::Frame { data: bgr.into(), ..big };
    let jpeg = pump_gateway::snapshot::render(&pump_bus::frame::CheckedFrame::new(big, 8192).unwrap(), None).unwrap();
    assert!(jpeg.len() < 900_000, "a 4K frame that fits a NATS message: {} bytes", jpeg.len());
    let cameras = ["cam0", "cam1", "cam2", "cam3"];
    let stop = tokio_util::sync::CancellationToken::new();
    // Each camera at 5 fps, each frame with its own pose, as inference publishes them.
    let cameras_task = {
        let (c, stop, jpeg) = (c.clone(), stop.clone(), jpeg.clone());
        tokio::spawn(async move {
            for id in 1.. {
                for cam in cameras {
                    let now = pump_bus::clock::now_ns();
                    let frame = pump_proto::Frame {
                        camera: cam.into(),
                        frame_id: id,
                        capture_ts_ns: now,
                        width: w,
                        height: h,
                        encoding: Encoding::Jpeg as i32,
                        data: jpeg.clone(),
                        ..Default::default()
                    };
                    let kps = (0..17).map(|i| Keypoint {
                        x: 900.0 + i as f32 * 60.0,
                        y: 300.0 + i as f32 * 90.0,
                        confidence: 0.9,
                    });
                    let person = Person { r#box: None, score: 0.9, keypoints: kps.collect() };
                    let pose = PoseFrame {
                        camera: cam.into(),
                        frame_id: id,
                        capture_ts_ns: now,
                        people: vec![person],
                        ..Default::default()
                    };
                    let _ = c.publish(format!("pump.frames.{cam}"), frame.encode_to_vec().into()).await;
                    let _ = c.publish(format!("pump.poses.{cam}"), pose.encode_to_vec().into()).await;
                }
                let _ = c.flush().await;
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        })
    };
    let snapshots_done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let ask = |cam: &'static str| {
        let (mut q, stop, done) = (PoseQueryClient::new(gw.channel.clone()), stop.clone(), snapshots_done.clone());
        async move {
            while !stop.is_cancelled() {
                let req = GetSnapshotRequest { camera: cam.into(), overlay: true };
                if let Ok(Ok(_)) = tokio::time::timeout(T, q.get_snapshot(req)).await {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    };
    let clients: Vec<_> = (0..64).map(|i| tokio::spawn(ask(cameras[i % 4]))).collect();
    pump_tests::eventually("snapshots being drawn", T, || {
        let done = snapshots_done.clone();
        async move { done.load(Ordering::Relaxed) >= 64 }
    })
    .await;
    let encodes_before = gw.snapshots.encodes.load(Ordering::Relaxed);
    // Its own connection, as a kubelet's probe has.
    let probe = tonic::transport::Channel::from_shared(format!("http://{}", gw.addr)).unwrap().connect().await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(probe);
    let mut took = Vec::new();
    for _ in 0..30 {
        let t0 = tokio::time::Instant::now();
        let req = tonic_health::pb::HealthCheckRequest { service: String::new() };
        tokio::time::timeout(T, health.check(req)).await.unwrap().unwrap();
        took.push(t0.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let encodes = gw.snapshots.encodes.load(Ordering::Relaxed) - encodes_before;
    stop.cancel();
    for t in clients {
        tokio::time::timeout(T, t).await.unwrap().unwrap();
    }
    tokio::time::timeout(T, cameras_task).await.unwrap().unwrap();
    took.sort();
    let (median, worst) = (took[took.len() / 2], took[took.len() - 1]);
    eprintln!("health: median {median:?}, worst {worst:?}, while {encodes} snapshots were encoded");
    assert!(encodes >= 4, "the frames were drawn meanwhile: {encodes} encodes");
    // The median, not every call: a busy machine may preempt any one of them.
    assert!(median < Duration::from_millis(100), "health took {median:?} (median), {worst:?} at worst");
    assert!(worst < Duration::from_secs(1), "health took {worst:?} at worst");
    gw.stop().await;
}

/// A 15 fps camera (fake timing) and a 100 ms model (fake delay) through the real services:
/// ListCameras gives the camera's rate, the pose rate the model allows, and the drops between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_cameras_reports_frame_pose_and_inference_rates_and_drops() {
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let infer = pump_tests::services::start_infer(&nats, pump_tests::services::slow(100), |_| {}).await;
    let capture = pump_tests::services::start_fake_live_camera(&nats, "cam", 15.0).await;
    // Rates are measured over the last 60 poses at most: 4 s is 40 of them.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut q = PoseQueryClient::new(gw.channel.clone());
    let cams = tokio::time::timeout(T, q.list_cameras(ListCamerasRequest {})).await.unwrap().unwrap().into_inner();
    let cam = &cams.cameras[0];
    assert_eq!(cam.camera, "cam");
    assert!((cam.frame_fps - 15.0).abs() < 1.5, "{cam:?}");
    assert!(cam.pose_fps > 8.0 && cam.pose_fps < 10.5, "{cam:?}");
    assert!(cam.inference_fps > 8.0 && cam.inference_fps <= 10.0, "{cam:?}");
    // A third of the frames find the model busy and are replaced by a newer one.
    assert!(cam.frames_dropped * 5 > cam.frames_received && cam.frames_dropped < cam.frames_received, "{cam:?}");
    let age_s = (pump_bus::clock::now_ns() - cam.last_frame_ns) as f64 / 1e9;
    assert!(age_s < 1.0 && !cam.ended, "{cam:?}");
    assert!(cam.last_pose_ns > 0 && cam.last_frame_id > 30, "{cam:?}");
    capture.stop().await;
    infer.stop().await;
    gw.stop().await;
}

/// The status of the gateway's service and of "" (what default probes ask), in that order. The
/// gateway sets them one after the other, so a probe between the two may see them differ for an
/// instant; what must hold is that both reach the same state.
async fn health(channel: &tonic::transport::Channel) -> (i32, i32) {
    let ask = |service: &str| {
        let mut h = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let req = tonic_health::pb::HealthCheckRequest { service: service.into() };
        async move { tokio::time::timeout(T, h.check(req)).await.unwrap().unwrap().get_ref().status }
    };
    (ask("pump.v1.PoseQuery").await, ask("").await)
}

/// Waits until the named service and "" both say `want`.
async fn wait_health(
    channel: &tonic::transport::Channel,
    want: tonic_health::pb::health_check_response::ServingStatus,
) {
    let mut last = (0, 0);
    tokio::time::timeout(T, async {
        loop {
            last = health(channel).await;
            if last == (want as i32, want as i32) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("health never became {want:?} for both the named service and \"\": last {last:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_not_serving_while_the_bus_is_down_and_serving_again_after() {
    use tonic_health::pb::health_check_response::ServingStatus;
    let mut nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    nats.stop();
    wait_health(&gw.channel, ServingStatus::NotServing).await;
    let ready = pump_tests::http::get(gw.http, "/readyz").await;
    assert_eq!((ready.status, ready.text().trim()), (503, "not ready: not connected to NATS"));
    let said = |reply: pump_tests::http::Reply| {
        let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        (v["serving"].as_bool(), v["nats_connected"].as_bool())
    };
    assert_eq!(said(pump_tests::http::get(gw.http, "/healthz").await), (Some(false), Some(false)));
    nats.restart();
    wait_health(&gw.channel, ServingStatus::Serving).await;
    // HTTP follows gRPC health (set just after it: ready over HTTP means SERVING over gRPC).
    pump_tests::eventually("/readyz to follow gRPC health", Duration::from_secs(1), || async {
        pump_tests::http::get(gw.http, "/readyz").await.status == 200
    })
    .await;
    assert_eq!(said(pump_tests::http::get(gw.http, "/healthz").await), (Some(true), Some(true)));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_carry_per_camera_histograms() {
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let c = client(&nats, "publisher").await;
    let now = pump_bus::clock::now_ns();
    for i in 0..5u64 {
        let pf = PoseFrame {
            camera: "cam".into(),
            frame_id: i,
            capture_ts_ns: now + i as i64 * 66_000_000,
            inference_start_ns: now + i as i64 * 66_000_000 + 1_000_000,
            inference_end_ns: now + i as i64 * 66_000_000 + 31_000_000,
            publish_ts_ns: now + i as i64 * 66_000_000 + 35_000_000,
            instance: "i1".into(),
            provider: "CPUExecutionProvider".into(),
            frames_received: i + 1,
            frames_dropped: i / 2,
            ..Default::default()
        };
        c.publish("pump.poses.cam", pf.encode_to_vec().into()).await.unwrap();
    }
    c.flush().await.unwrap();
    let heard = "pump_gateway_pose_frames_total{camera=\"cam\"} 5";
    pump_tests::eventually("the gateway to hear the 5 poses", T, || async {
        pump_tests::http::get(gw.http, "/metrics").await.text().contains(heard)
    })
    .await;
    let body = pump_tests::http::get(gw.http, "/metrics").await.text();
    // Parseable Prometheus text: every family typed, every sample `name{labels} number`.
    let mut typed = std::collections::HashSet::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            typed.insert(t.split_whitespace().next().unwrap().to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"].iter().fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
        assert!(typed.contains(name) || typed.contains(family), "{line} has no # TYPE");
    }
    assert!(body.contains("pump_nats_connected 1"));
    assert!(body.contains("pump_gateway_pose_frames_total{camera=\"cam\"} 5"), "{body}");
    // Model time under the name inference exports it by.
    assert!(body.contains("pump_infer_seconds_bucket{camera=\"cam\",le=\"0.04\"} 5"), "{body}");
    assert!(body.contains("pump_frame_age_seconds_bucket{camera=\"cam\",le=\"0.04\"} 5"), "{body}");
    assert!(body.contains("pump_camera_frames_total{camera=\"cam\",stage=\"inference_dropped\"} 2"), "{body}");
    // Rates are counters' rate(), not gauges: frames 0..=4 were captured.
    assert!(body.contains("pump_camera_frames_total{camera=\"cam\",stage=\"captured\"} 5"), "{body}");
    assert!(!body.contains("_fps{") && !body.contains("_per_second{"), "{body}");
    // Health explains itself: per camera how long ago, how fast, on what.
    let health: serde_json::Value =
        serde_json::from_slice(&pump_tests::http::get(gw.http, "/healthz").await.body).unwrap();
    let cam = &health["cameras"]["cam"];
    assert!(cam["last_pose_age_s"].as_f64().unwrap() < 5.0, "{health}");
    assert_eq!((cam["provider"].as_str(), cam["frames_dropped"].as_u64()), (Some("CPUExecutionProvider"), Some(2)));
    assert_eq!(health["nats_connected"], true);
    gw.stop().await;
}

/// A set of 20 posed gray frames at 10 a second on camera "gym", its timeline starting at
/// `t0_s`: frames, their poses, then the set, as capture, inference and the sets stage publish them.
async fn a_set_on_the_bus(c: &async_nats::Client, set_id: &str, t0_s: f64) {
    let now = pump_bus::clock::now_ns();
    for i in 0..20u64 {
        let source_ts_ns = ((t0_s + i as f64 * 0.1) * 1e9) as i64;
        let capture_ts_ns = now + i as i64 * 100_000_000;
        let frame_id = (t0_s * 10.0) as u64 + i;
        let frame = pump_tests::media::gray_frame("gym", frame_id, capture_ts_ns, 160, 120);
        c.publish("pump.frames.gym", pump_proto::Frame { source_ts_ns, ..frame }.encode_to_vec().into()).await.unwrap();
        let pose = PoseFrame {
            camera: "gym".into(),
            frame_id,
            capture_ts_ns,
            source_ts_ns,
            width: 160,
            height: 120,
            ..Default::default()
        };
        c.publish("pump.poses.gym", pose.encode_to_vec().into()).await.unwrap();
    }
    let set = pump_proto::SetEvent {
        camera: "gym".into(),
        set_id: set_id.into(),
        start_s: t0_s + 0.75,
        end_s: t0_s + 1.25,
        reps: 1,
        rep_times_s: vec![t0_s + 1.0],
        ..Default::default()
    };
    c.publish("pump.sets.gym", set.encode_to_vec().into()).await.unwrap();
    c.flush().await.unwrap();
}

/// The gateway recording clips while inference is stopped: every raw frame waits for a pose
/// that never comes. It held 48 of them per camera (four raw 720p cameras: 530 MB); now each
/// camera's wait is bounded in bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_raw_cameras_with_inference_stopped_hold_bounded_memory_for_clips() {
    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let c = client(&nats, "camera").await;
    let cameras = ["raw0", "raw1", "raw2", "raw3"];
    let (w, h) = (1280, 720);
    // Connected, so the client knows the server takes 8 MB messages (1 MB until it has heard).
    tokio::time::timeout(T, c.flush()).await.unwrap().unwrap();
    // Frame `id` of every camera, on the bus.
    let send = |id: u64| {
        let c = c.clone();
        async move {
            for cam in cameras {
                let frame = pump_tests::media::gray_frame(cam, id, pump_bus::clock::now_ns(), w, h);
                tokio::time::timeout(T, c.publish(format!("pump.frames.{cam}"), frame.encode_to_vec().into()))
                    .await
                    .unwrap()
                    .unwrap();
            }
            tokio::time::timeout(T, c.flush()).await.unwrap().unwrap();
        }
    };
    // 60 frames each (six seconds of a 10 fps camera, sent as fast as the bus takes them).
    for id in 0..60u64 {
        send(id).await;
    }
    let held = |body: &[u8]| -> f64 {
        let text = String::from_utf8_lossy(body).to_string();
        let line = text.lines().find(|l| l.starts_with("pump_gateway_clips_held_bytes ")).unwrap_or_default();
        line.split(' ').nth(1).and_then(|v| v.parse().ok()).unwrap_or(-1.0)
    };
    // The burst is in once a frame sent after it is: the cameras go on at 4 fps, as live ones do,
    // until the gateway shows each one's. (On a loaded machine the server may drop a frame of the
    // burst for a subscriber that lags — core NATS, as the frames subject is — so waiting for
    // the burst's own last frame could wait for ever.)
    let mut q = PoseQueryClient::new(gw.channel.clone());
    let deadline = tokio::time::Instant::now() + 2 * T;
    for id in 60u64.. {
        send(id).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        let mut newest = Vec::new();
        for cam in cameras {
            let req = GetSnapshotRequest { camera: cam.into(), overlay: false };
            let got = tokio::time::timeout(T, q.get_snapshot(req)).await.unwrap();
            newest.push(got.map(|r| r.into_inner().frame_id).unwrap_or_default());
        }
        if newest.iter().all(|n| *n >= 60) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "frames after the burst never reached the gateway: {newest:?}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let metrics = pump_tests::http::get(gw.http, "/metrics").await;
    let bytes = held(&metrics.body);
    let bound = (4 * pump_gateway::clips::WAITING_BYTES) as f64;
    eprintln!("held for clips: {:.0} MB (bound {:.0} MB)", bytes / 1e6, bound / 1e6);
    assert!(bytes > 0.0 && bytes <= bound, "{bytes} bytes held for clips, over {bound}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clips_are_kept_within_the_store_size_oldest_first_and_age_out() {
    let nats = NatsServer::start();
    let limits = pump_gateway::clips::ClipLimits { max_bytes: 1, max_age: Duration::from_secs(3600), replicas: 1 };
    let gw = pump_tests::services::start_gateway_with_clips(&nats, limits).await;
    let c = client(&nats, "bus").await;
    let clip = |id: &'static str| async move { pump_tests::http::get(gw.http, &format!("/clips/{id}.avi")).await };
    a_set_on_the_bus(&c, "gym-first", 0.0).await;
    pump_tests::eventually("the first clip", T, || async { clip("gym-first").await.status == 200 }).await;
    // Half a second either side of the set (0.25 s to 1.75 s): 15 posed frames of 20.
    let first = clip("gym-first").await.body;
    let frames = first.windows(4).filter(|w| w == b"00dc").count();
    assert_eq!(frames, 15 * 2, "each frame named in its chunk and in the index");
    // A store too small for two: the second clip makes room by deleting the first.
    a_set_on_the_bus(&c, "gym-second", 10.0).await;
    pump_tests::eventually("the second clip", T, || async { clip("gym-second").await.status == 200 }).await;
    assert_eq!(clip("gym-first").await.status, 404);
    // The store's own age limit drops what is older.
    let js = async_nats::jetstream::new(c.clone());
    let info = js.get_stream("OBJ_pump-clips").await.unwrap().info().await.unwrap().config.clone();
    assert_eq!(info.max_age, Duration::from_secs(3600));
    gw.stop().await;
}
