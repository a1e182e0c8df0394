//! The Python client example (`examples/python/client.py`, docs/API.md) against a real gateway:
//! stubs generated from `proto/` with grpcio-tools, in a venv made once under target/.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use prost::Message;
use pump_proto::{Keypoint, Person, PoseFrame, SetEvent};
use pump_tests::services::{client, start_gateway};
use pump_tests::{json_lines, wait_with_deadline, workspace, NatsServer};

/// A venv with grpcio and grpcio-tools, made once (PyPI) and kept under target/.
fn python() -> PathBuf {
    let venv = workspace().join("target").join("pump-tests").join("python-client");
    let py = venv.join("bin").join("python");
    let ready =
        |py: &Path| Command::new(py).args(["-c", "import grpc, grpc_tools"]).output().is_ok_and(|o| o.status.success());
    if !ready(&py) {
        let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().unwrap();
        assert!(made.success(), "python3 -m venv (apt install python3-venv)");
        let pip = Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "grpcio==1.85.3", "grpcio-tools==1.85.1"])
            .spawn()
            .unwrap();
        let out = wait_with_deadline(pip, Duration::from_secs(600));
        assert!(out.status.success() && ready(&py), "pip install grpcio grpcio-tools");
    }
    py
}

fn run_client(py: &Path, stubs: &Path, args: &[&str]) -> std::process::Output {
    let child = Command::new(py)
        .arg(workspace().join("examples/python/client.py"))
        .args(args)
        .env("PYTHONPATH", stubs)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_with_deadline(child, Duration::from_secs(60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_reads_cameras_poses_and_sets() {
    let py = tokio::task::spawn_blocking(python).await.unwrap();
    let stubs = tempfile::tempdir().unwrap();
    let protos: Vec<PathBuf> =
        ["frames", "sets", "query"].iter().map(|p| workspace().join(format!("proto/pump/v1/{p}.proto"))).collect();
    let made = Command::new(&py)
        .args(["-m", "grpc_tools.protoc", "-I"])
        .arg(workspace().join("proto"))
        .arg(format!("--python_out={}", stubs.path().display()))
        .arg(format!("--grpc_python_out={}", stubs.path().display()))
        .args(&protos)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));

    let nats = NatsServer::start();
    let gw = start_gateway(&nats).await;
    let c = client(&nats, "publisher").await;
    let person = Person {
        score: 0.9,
        keypoints: vec![Keypoint { x: 10.0, y: 20.0, confidence: 0.8 }; 17],
        ..Default::default()
    };
    let pf = PoseFrame { camera: "rack1".into(), frame_id: 7, people: vec![person], ..Default::default() };
    c.publish("pump.poses.rack1", pf.encode_to_vec().into()).await.unwrap();
    let set = SetEvent {
        camera: "rack1".into(),
        set_id: "rack1-1".into(),
        reps: 2,
        exercise: "squat".into(),
        rep_depths_deg: vec![88.0, 91.0],
        rep_durations_s: vec![2.0, 2.5],
        start_unix_ns: 1_796_119_200_000_000_000,
        ..Default::default()
    };
    async_nats::jetstream::new(c.clone())
        .publish("pump.sets.rack1", set.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();
    c.flush().await.unwrap();

    let addr = gw.addr.to_string();
    let out = run_client(&py, stubs.path(), &["rack1", "--addr", &addr]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&String::from_utf8(out.stdout).unwrap());
    let of = |t: &str| lines.iter().filter(|l| l["type"] == t).cloned().collect::<Vec<_>>();
    assert_eq!(of("camera")[0]["camera"], "rack1");
    let poses = &of("poses")[0];
    assert_eq!((poses["frame_id"].as_u64(), poses["people"][0]["keypoints"].as_array().unwrap().len()), (Some(7), 17));
    let sets = of("set");
    assert_eq!((sets[0]["set_id"].as_str(), sets[0]["reps"].as_u64()), (Some("rack1-1"), Some(2)));
    assert_eq!(sets[0]["rep_depths_deg"][1], 91.0);
    assert_eq!(sets[0]["start_unix_ns"], 1_796_119_200_000_000_000u64);

    // An unknown camera: one line with the code docs/API.md gives, exit 1.
    let out = run_client(&py, stubs.path(), &["nobody", "--addr", &addr]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("pump client: NOT_FOUND: unknown camera \"nobody\"") && stderr.lines().count() == 1,
        "{stderr}"
    );
    gw.stop().await;
}
