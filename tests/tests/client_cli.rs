//! `pump cameras`, `pump poses`, `pump sets CAMERA`: the real binary against a gateway on a real
//! nats-server, and one clear line when the gateway or the camera is not there.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::{Command, Output};
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
    let out = pump(args(&["sets", "rack1"], &addr)).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("5 reps of squat"));

    let out = pump(args(&["poses", "nobody"], &addr)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no poses for camera") && stderr.lines().count() == 1, "{stderr}");
    gw.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), gw.task).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn an_unreachable_gateway_is_one_clear_line() {
    let port = pump_tests::nats::free_port();
    let out = pump(args(&["cameras"], &format!("127.0.0.1:{port}"))).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("cannot reach the gateway"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}
