//! `just bench` (part 2): does capture really never wait for inference, across processes' worth
//! of NATS? The original pump-cv's two mock scenarios, each run sequential (capture waits for
//! every pose: the paced mode) and decoupled (live: newest frame wins), through a real
//! nats-server; then the real model on the squat fixture replayed in real time at 15 and 30 fps.
//!
//! Prints poses published per second against the ideal min(camera fps, 1 / predict time), and
//! the frame age at publish (p50, p99) against the targets. Not a test: nothing asserts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that fails should fail loudly

use std::sync::Arc;
use std::time::Duration;

use pump_capture::camera::fake::{FakeCamera, FakeCameraLog, FakeCameraScript};
use pump_capture::run::Mode;
use pump_proto::PoseFrame;
use pump_tests::services::{
    client, collect, file_capture_config, slow, start_capture, start_default_infer, start_infer,
};
use pump_tests::{testdata, NatsServer};
use tokio_util::sync::CancellationToken;

const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(10);

fn quantile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let idx = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[idx]
}

struct Outcome {
    rate: f64,
    p50: f64,
    p99: f64,
}

fn summarise(poses: &[PoseFrame]) -> Outcome {
    let poses: Vec<&PoseFrame> = poses.iter().filter(|p| !p.end_of_stream).collect();
    let first = poses.first().map(|p| p.publish_ts_ns).unwrap_or(0);
    let last = poses.last().map(|p| p.publish_ts_ns).unwrap_or(0);
    let rate = if poses.len() > 1 { (poses.len() - 1) as f64 / ((last - first) as f64 / 1e9) } else { 0.0 };
    let mut ages: Vec<f64> = poses.iter().map(|p| (p.publish_ts_ns - p.capture_ts_ns) as f64 / 1e6).collect();
    if ages.is_empty() {
        return Outcome { rate, p50: f64::NAN, p99: f64::NAN };
    }
    Outcome { rate, p50: quantile(&mut ages, 0.5), p99: quantile(&mut ages, 0.99) }
}

async fn mock_scenario(camera_fps: f64, predict_ms: u64, mode: Mode) -> Outcome {
    let nats = NatsServer::start();
    let watcher = client(&nats, "bench").await;
    let mut sub = watcher.subscribe("pump.poses.cam").await.unwrap();
    let infer = start_infer(&nats, slow(predict_ms), |_| {}).await;
    let script = FakeCameraScript { fps: camera_fps, read_takes_period: true, ..Default::default() };
    let capture =
        start_capture(&nats, "cam", FakeCamera::factory(script, Arc::new(FakeCameraLog::default())), mode, |_| {})
            .await;
    collect(&mut sub, WARM_UP).await;
    let poses = collect(&mut sub, MEASURE).await;
    capture.stop().await;
    infer.stop().await;
    summarise(&poses)
}

async fn real_model_replay(speed: f64) -> (Outcome, u64, u64) {
    let nats = NatsServer::start();
    let watcher = client(&nats, "bench").await;
    let mut sub = watcher.subscribe("pump.poses.squat").await.unwrap();
    let infer = start_default_infer(&nats).await;
    let mut config = file_capture_config(&nats, "squat", testdata("squat_5reps_15fps.mp4"));
    config.realtime = true;
    config.realtime_speed = speed;
    let capture_client = client(&nats, "bench-capture").await;
    let capture = tokio::spawn(pump_capture::run(
        pump_capture::Service::from_config(config, capture_client),
        CancellationToken::new(),
    ));
    let poses = collect(&mut sub, Duration::from_secs(60)).await;
    let _ = tokio::time::timeout(Duration::from_secs(30), capture).await;
    let s = infer.stats.snapshot().get("squat").cloned().unwrap_or_default();
    infer.stop().await;
    (summarise(&poses), s.inferred, s.dropped())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("decoupling through a real nats-server ({cores} cores; mock camera: each read takes a frame period)");
    println!(
        "{:<28} {:<11} {:>8} {:>6} {:>7} {:>8} {:>8} | {:>10} {:>10}",
        "scenario", "mode", "poses/s", "ideal", "%ideal", "age p50", "age p99", "p50 target", "p99 target"
    );
    for (fps, predict_ms, name) in
        [(15.0_f64, 100, "15 fps camera, 100 ms model"), (100.0, 200, "fast reader, 200 ms model")]
    {
        let period_ms = 1000.0 / fps;
        let ideal = fps.min(1000.0 / predict_ms as f64);
        let p50_target = predict_ms as f64 + period_ms / 2.0 + 3.0;
        let p99_target = predict_ms as f64 + period_ms + 5.0;
        for (mode, label) in [(Mode::FilePaced, "sequential"), (Mode::Live, "decoupled")] {
            let o = mock_scenario(fps, predict_ms, mode).await;
            let targets = matches!(mode, Mode::Live);
            println!(
                "{:<28} {:<11} {:>8.2} {:>6.1} {:>6.1}% {:>6.1}ms {:>6.1}ms | {:>10} {:>10}",
                name,
                label,
                o.rate,
                ideal,
                100.0 * o.rate / ideal,
                o.p50,
                o.p99,
                if targets { format!("≤{p50_target:.1}ms") } else { "-".into() },
                if targets { format!("≤{p99_target:.1}ms") } else { "-".into() },
            );
        }
    }
    println!("\nreal model (yolo11n-pose, CPU, pump-infer's default: one single-threaded engine per core) on the squat fixture, replayed with --realtime");
    println!("{:<12} {:>8} {:>8} {:>8} {:>8} {:>8}", "replay", "poses/s", "inferred", "dropped", "age p50", "age p99");
    for (speed, label) in [(1.0, "15 fps"), (2.0, "30 fps")] {
        let (o, inferred, dropped) = real_model_replay(speed).await;
        println!("{label:<12} {:>8.2} {:>8} {:>8} {:>6.1}ms {:>6.1}ms", o.rate, inferred, dropped, o.p50, o.p99);
    }
}
