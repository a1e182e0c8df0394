//! `pump up CONFIG`: one file, one command. nats-server and every service start from the config,
//! the squat clip named there as a camera gives its 5-rep set over gRPC, SIGTERM stops them all
//! in order and leaves none running; a bad config stops `pump up` before anything runs. With a
//! `[hook]` table the set lands in (a stand-in of) the PUMP logger, once, its clip linked.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use pump_tests::nats::free_port;
use pump_tests::procs::{free_addr, run, Service};
use pump_tests::testdata;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_config_one_command_the_whole_system() {
    let dir = tempfile::tempdir().unwrap();
    let (capture, infer, sets, gateway, grpc) = (free_addr(), free_addr(), free_addr(), free_addr(), free_addr());
    let hook = free_addr();
    let config = dir.path().join("pump.toml");
    let (pump_base, pump) = pump_tests::pump_logger::stand_in(&["Squat"]).await;
    let key = dir.path().join("pump-key");
    std::fs::write(&key, pump_tests::pump_logger::KEY).unwrap();
    std::fs::write(
        &config,
        format!(
            r#"nats_url = "nats://127.0.0.1:{nats}"
log = "warn"

[cameras.gym]
source = "{clip}"
exercise = "squat"

[capture]
http_addr = "{capture}"

[infer]
http_addr = "{infer}"

[sets]
http_addr = "{sets}"
quiet_seconds = 4

[gateway]
http_addr = "{gateway}"
grpc_addr = "{grpc}"
clips = true

[hook]
http_addr = "{hook}"
pump = "{pump_base}"
api_key_file = "{key}"
time_zone = "UTC"
weight = 60
clip_base = "http://gym-box:9104"
"#,
            key = key.display(),
            nats = free_port(),
            clip = testdata("squat_5reps_15fps.mp4").display(),
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    // The pinned nats-server, as a user of the checkout runs it (`just setup`).
    let nats_server = pump_tests::nats::binary().display().to_string();
    let up = Service::start(
        "pump",
        &["up", &config.display().to_string(), "--data", &data.display().to_string()],
        &[("PUMP_NATS_SERVER", nats_server)],
        dir.path(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !up.log().contains("preview: http://") {
        assert!(Instant::now() < deadline, "pump up said no preview address: {}", up.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A current server: every acknowledged set is on disk before its ack.
    let nats_conf = std::fs::read_to_string(data.join("nats.conf")).unwrap();
    assert!(nats_conf.contains("sync_interval: always"), "{nats_conf}");
    assert!(!up.log().contains("older than 2.10"), "{}", up.log());
    assert!(up.log().contains(&format!("preview: http://{gateway}/   gRPC: {grpc}")), "{}", up.log());

    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}")).unwrap().connect_lazy();
    let mut q = pump_proto::pose_query_client::PoseQueryClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(90);
    let found = loop {
        let got = q.list_sets(pump_proto::ListSetsRequest::default()).await.map(|r| r.into_inner().sets);
        if let Ok(s) = &got {
            if !s.is_empty() {
                break s.clone();
            }
        }
        assert!(Instant::now() < deadline, "no set: {got:?}\n{}", up.log());
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(found.iter().map(|s| (s.camera.as_str(), s.reps)).collect::<Vec<_>>(), vec![("gym", 5)]);
    // In PUMP: once, as PUMP stores a camera's set, its clip linked.
    let set = &found[0];
    let clip = format!("http://gym-box:9104/clips/{}.avi", set.set_id);
    pump_tests::eventually("the set's clip linked in PUMP", Duration::from_secs(60), || async {
        pump.lock().unwrap().sets.first().is_some_and(|s| s.2.as_deref() == Some(clip.as_str()))
    })
    .await;
    let date =
        jiff::Timestamp::from_nanosecond(i128::from(set.end_unix_ns)).unwrap().to_zoned(jiff::tz::TimeZone::UTC).date();
    let confidence = (f64::from(set.confidence) * 1000.0).round() / 1000.0;
    {
        let p = pump.lock().unwrap();
        assert_eq!(p.sets.len(), 1, "{:?}", p.sets);
        let b = &p.sets[0].1;
        assert_eq!(
            (b["Date"].as_str(), b["Name"].as_str(), b["Reps"].as_u64(), b["Weight"].as_str()),
            (Some(date.to_string().as_str()), Some("Squat"), Some(5), Some("60.0")),
            "{b}"
        );
        assert_eq!((b["Confidence"].as_f64(), b["Pending"].as_bool()), (Some(confidence), Some(set.pending)), "{b}");
        assert!(p.refused.is_empty(), "{:?}", p.refused);
    }
    // The hook's ops port: ready, and counting what it logged.
    assert_eq!(pump_tests::http::get(hook, "/readyz").await.status, 200);
    let metrics = pump_tests::http::get(hook, "/metrics").await.text();
    assert!(metrics.contains("pump_hook_sets_delivered_total 1"), "{metrics}");

    let (status, log, took) = up.terminate().await;
    assert_eq!(status.code(), Some(0), "{log}");
    for name in ["pump-hook", "pump-gateway", "pump-sets", "pump-infer", "nats-server"] {
        assert!(log.contains(&format!("stopped {name}\n")), "{name}: {log}");
    }
    assert!(took < Duration::from_secs(60), "stopping took {took:?}");
    // Nothing left listening.
    for addr in [infer, sets, gateway, grpc, hook] {
        assert!(std::net::TcpListener::bind(addr).is_ok(), "{addr} still taken: {log}");
    }
    let _ = capture;

    // A key no service has: one line, nothing started.
    std::fs::write(&config, "[sets]\nquiet_second = 4\n").unwrap();
    let out = run(
        "pump",
        vec!["up".into(), config.display().to_string(), "--data".into(), data.display().to_string()],
        vec![],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("quiet_second") && stderr.lines().count() == 1, "{stderr}");
}
