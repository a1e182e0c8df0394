//! The service binaries as an operator runs them: flags and `PUMP_*` environment, bad input
//! refused in one line with exit code 64, and the whole pipeline on the squat clip
//! (`pump-capture` → `pump-infer` → `pump-sets` → `pump-gateway` → `pump sets`), every long-running
//! service stopping on SIGTERM with exit code 0.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pump_tests::nats::free_port;
use pump_tests::procs::{free_addr, run, wait_ready, Service};
use pump_tests::{bin, json_lines, testdata, wait_with_deadline, NatsServer};

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn bad_input_is_one_clear_line_and_exit_code_64() {
    let squat = testdata("squat_5reps_15fps.mp4").display().to_string();
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        ("pump-capture", strings(&["--camera", "c=/no/such/clip.mp4"]), "/no/such/clip.mp4: no such file"),
        ("pump-capture", strings(&["--camera", "c=Cargo.toml"]), "Cargo.toml: not an image or a video"),
        (
            "pump-capture",
            vec!["--camera".into(), format!("c={squat}"), "--jpeg-quality".into(), "0".into()],
            "JPEG quality 0 must be within 1..=100",
        ),
        ("pump-infer", strings(&["--batch", "65"]), "batch 65 must be within 1..=64"),
        ("pump-sets", strings(&["--quiet-seconds", "0"]), "--quiet-seconds must be above zero"),
        ("pump-sets", strings(&["--prototypes", "/no/such/folder"]), "/no/such/folder"),
    ];
    // Nothing listens here: bad input must be refused before any connection is tried.
    let nowhere = format!("nats://127.0.0.1:{}", free_port());
    for (name, args, want) in cases {
        let out = run(name, args.clone(), vec![("PUMP_NATS_URL", nowhere.clone())]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{name} {args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name} {args:?}: one line, got {stderr}");
        assert!(stderr.starts_with(&format!("{name}: ")) && stderr.contains(want), "{name} {args:?}: {stderr}");
    }
    // What clap rejects is the same exit code, with clap's message and usage.
    for (name, args, want) in [
        ("pump-capture", vec![], "--camera"),
        ("pump-gateway", strings(&["--grpc-addr", "not-an-address"]), "not-an-address"),
        ("pump-infer", strings(&["--device", "tpu"]), "tpu"),
    ] {
        let out = run(name, args, vec![]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{name}: {stderr}");
        assert!(stderr.starts_with("error: ") && stderr.contains(want), "{name}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_binaries_count_the_squat_clip_and_stop_on_sigterm() {
    let nats = NatsServer::start();
    let logs = tempfile::tempdir().unwrap();
    let grpc = free_addr();
    let env = |http: SocketAddr| {
        vec![
            ("PUMP_NATS_URL", nats.url()),
            ("PUMP_LOG", "warn".to_string()),
            ("PUMP_GRPC_ADDR", grpc.to_string()),
            ("PUMP_HTTP_ADDR", http.to_string()),
        ]
    };
    let (infer_http, sets_http, gateway_http) = (free_addr(), free_addr(), free_addr());
    let infer = Service::start("pump-infer", &[], &env(infer_http), logs.path());
    let sets = Service::start("pump-sets", &["--exercise", "squat"], &env(sets_http), logs.path());
    let gateway = Service::start("pump-gateway", &[], &env(gateway_http), logs.path());
    wait_ready(&infer, infer_http).await;
    wait_ready(&sets, sets_http).await;
    wait_ready(&gateway, gateway_http).await;

    // A file camera is played losslessly (each frame waits for its pose), then ends its stream.
    let squat = testdata("squat_5reps_15fps.mp4").display().to_string();
    let out = run("pump-capture", vec!["--camera".into(), format!("squat={squat}")], env(free_addr())).await;
    assert!(out.status.success(), "pump-capture: {}", String::from_utf8_lossy(&out.stderr));

    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(testdata("squat_5reps_15fps.mp4.truth.json")).unwrap()).unwrap();
    let want_reps = truth["sets"][0].as_u64().unwrap();
    // The end of the stream closes the set; the gateway hears it a moment later.
    let deadline = Instant::now() + Duration::from_secs(30);
    let set = loop {
        let out = run("pump", strings(&["sets", "squat", "--json", "--grpc-addr", &grpc.to_string()]), vec![]).await;
        assert!(out.status.success(), "pump sets: {}", String::from_utf8_lossy(&out.stderr));
        if let Some(set) = json_lines(&String::from_utf8(out.stdout).unwrap()).into_iter().next() {
            break set;
        }
        assert!(Instant::now() < deadline, "no set within 30 s; pump-sets says: {}", sets.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!((set["reps"].as_u64(), set["exercise"].as_str()), (Some(want_reps), Some("squat")), "{set}");

    let out = run("pump", strings(&["cameras", "--json", "--grpc-addr", &grpc.to_string()]), vec![]).await;
    let cameras = json_lines(&String::from_utf8(out.stdout).unwrap());
    let squat_camera = cameras.iter().find(|c| c["camera"] == "squat").unwrap();
    assert_eq!(squat_camera["frames_dropped"].as_u64(), Some(0), "lossless: {squat_camera}");

    // Each service's health explains the camera; the sets service's metrics count the set.
    let health = |addr: SocketAddr| async move {
        let reply = pump_tests::http::get(addr, "/healthz").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        serde_json::from_slice::<serde_json::Value>(&reply.body).unwrap()
    };
    let h = health(sets_http).await;
    let cam = &h["cameras"]["squat"];
    assert_eq!((cam["sets_stored"].as_u64(), cam["reps_in_set"].as_u64()), (Some(1), Some(0)), "{h}");
    assert!(cam["last_pose_age_s"].as_f64().is_some_and(|a| a < 60.0), "{h}");
    let h = health(infer_http).await;
    assert!(h["provider"].as_str().is_some_and(|p| p.contains("CPU")), "{h}");
    assert!(h["cameras"]["squat"]["last_pose_age_s"].is_f64(), "{h}");
    let h = health(gateway_http).await;
    assert_eq!(h["cameras"]["squat"]["frames_dropped"].as_u64(), Some(0), "{h}");
    let metrics = pump_tests::http::get(sets_http, "/metrics").await.text();
    assert!(metrics.contains("pump_sets_stored_total{camera=\"squat\"} 1\n"), "{metrics}");
    assert!(metrics.contains("pump_sets_reps_in_progress{camera=\"squat\"} 0\n"), "{metrics}");

    // A client still following when the gateway stops is let go, not waited for forever.
    let follower = Command::new(bin("pump"))
        .args(["poses", "squat", "--follow", "--grpc-addr", &grpc.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    for service in [infer, sets, gateway] {
        let name = service.name;
        let (status, log, took) = service.terminate().await;
        assert_eq!(status.code(), Some(0), "{name} on SIGTERM after {took:?}: {log}");
        assert!(!log.contains("panicked"), "{name}: {log}");
    }
    let out = tokio::task::spawn_blocking(move || wait_with_deadline(follower, Duration::from_secs(20))).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "the follower, when the gateway stopped: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_nats_urls_connects_to_whichever_answers() {
    // A cluster's URLs, the first of a node that is down: from the environment (comma-separated)
    // and from the config file (a list), the service connects to the one that answers.
    let nats = NatsServer::start();
    let logs = tempfile::tempdir().unwrap();
    let down = format!("nats://127.0.0.1:{}", free_port());
    let (infer_http, sets_http) = (free_addr(), free_addr());
    let infer = Service::start(
        "pump-infer",
        &[],
        &[
            ("PUMP_NATS_URL", format!("{down},{}", nats.url())),
            ("PUMP_LOG", "warn".into()),
            ("PUMP_HTTP_ADDR", infer_http.to_string()),
        ],
        logs.path(),
    );
    let config = logs.path().join("cluster.toml");
    std::fs::write(
        &config,
        format!("nats_url = [\"{down}\", \"{}\"]\nlog = \"warn\"\n[streams]\nreplicas = 1\n", nats.url()),
    )
    .unwrap();
    let sets = Service::start(
        "pump-sets",
        &["--config", &config.display().to_string()],
        &[("PUMP_HTTP_ADDR", sets_http.to_string())],
        logs.path(),
    );
    wait_ready(&infer, infer_http).await;
    wait_ready(&sets, sets_http).await;
    // A list with a part that is no URL is one clear line naming it.
    let out = run("pump-sets", vec![], vec![("PUMP_NATS_URL", format!("{},nats://h:notaport", nats.url()))]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("nats://h:notaport"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
