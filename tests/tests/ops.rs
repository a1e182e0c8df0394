//! /healthz, /readyz and /metrics of the inference service, over plain HTTP.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use pump_bus::connect::BusConfig;
use pump_capture::camera::fake::{FakeCamera, FakeCameraLog, FakeCameraScript};
use pump_capture::run::Mode;
use pump_infer::{InferStats, SlowPredictor};
use pump_tests::services::{client, start_capture};
use pump_tests::NatsServer;
use tokio_util::sync::CancellationToken;

/// GET `path` from `addr`; returns (status code, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let r = pump_tests::http::get(addr, path).await;
    (r.status, r.text())
}

type Task = tokio::task::JoinHandle<pump_infer::Result<()>>;

/// Inference with a FAKE predictor of `delay` per run, serving its ops endpoints on a free port.
async fn start_infer_with_ops(
    nats: &NatsServer,
    delay: Duration,
) -> (std::net::SocketAddr, Arc<InferStats>, CancellationToken, Task) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(InferStats::default());
    let shutdown = CancellationToken::new();
    let service = pump_infer::Service {
        config: pump_infer::Config::new(BusConfig::new(nats.url(), "infer")),
        client: client(nats, "infer").await,
        predictors: vec![Box::new(SlowPredictor { delay })],
        stats: stats.clone(),
        ops: Some(listener),
    };
    let task = tokio::spawn(pump_infer::run(service, shutdown.clone()));
    (addr, stats, shutdown, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_explains_its_health_readiness_and_metrics() {
    let mut nats = NatsServer::start();
    let (addr, stats, shutdown, task) = start_infer_with_ops(&nats, Duration::from_millis(5)).await;
    tokio::time::timeout(Duration::from_secs(30), async {
        while !stats.is_ready() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    let capture = start_capture(
        &nats,
        "cam",
        FakeCamera::factory(FakeCameraScript::default(), Arc::new(FakeCameraLog::default())),
        Mode::Live,
        |_| {},
    )
    .await;
    // Until poses have come out (the first after the warm-up and the camera's first frames).
    pump_tests::eventually("poses from the camera", Duration::from_secs(15), || async {
        let body = get(addr, "/metrics").await.1;
        body.lines().any(|l| l.starts_with("pump_infer_frames_inferred_total{camera=\"cam\"}") && !l.ends_with(" 0"))
    })
    .await;

    let (code, body) = get(addr, "/readyz").await;
    assert_eq!((code, body.trim()), (200, "ready"));
    let (code, body) = get(addr, "/healthz").await;
    assert_eq!(code, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["provider"], "fake");
    assert!(health["cameras"]["cam"]["last_pose_age_s"].as_f64().unwrap() < 2.0, "{health}");
    let (code, body) = get(addr, "/metrics").await;
    assert_eq!(code, 200);
    // Parseable Prometheus text: every sample line is `name{labels} number`.
    for line in body.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (_, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    assert!(body.contains("pump_nats_connected 1"));
    assert!(body.contains("pump_infer_frames_inferred_total{camera=\"cam\"}"));
    assert!(body.contains("pump_frames_dropped_total{stage=\"infer\",camera=\"cam\",reason=\"replaced\"}"), "{body}");
    assert!(body.contains("# TYPE pump_frame_age_seconds histogram"));
    assert!(body.contains("pump_frame_age_seconds_bucket{camera=\"cam\",le=\"+Inf\"}"));
    assert!(body.contains("pump_infer_seconds_count{camera=\"cam\"}"));
    // The steps of each run, kept rather than thrown away.
    assert!(body.contains("pump_infer_stage_seconds_count{stage=\"model\"}"), "{body}");
    capture.stop().await;
    // The bus gone: not ready, and it says why.
    nats.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, body) = get(addr, "/readyz").await;
    assert_eq!((code, body.trim()), (503, "not ready: not connected to NATS"));
    pump_tests::services::stop_task(&shutdown, task).await;
}

/// Ready means the model has run once: a camera's first frame does not pay for the warm-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_is_ready_only_once_the_model_is_warmed_up() {
    let nats = NatsServer::start();
    // Its first (warm-up) run takes 1.5 s, as a cold model's might.
    let (addr, _, shutdown, task) = start_infer_with_ops(&nats, Duration::from_millis(1500)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, body) = get(addr, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("warmed up"), "{body}");
    tokio::time::timeout(Duration::from_secs(30), async {
        while get(addr, "/readyz").await.0 != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("ready after the warm-up");
    pump_tests::services::stop_task(&shutdown, task).await;
}
