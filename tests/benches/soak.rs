//! `just soak`: minutes of a small gym, to see memory stay flat. Two live HTTP MJPEG cameras
//! (ffmpeg looping the squat clip followed by 8 s of the athlete standing still, so a set closes
//! every loop), pump-capture, pump-infer, pump-sets and pump-gateway (release binaries), and a
//! gRPC client streaming each camera's poses. Every 10 s each service's resident memory is
//! sampled; after a minute of warm-up the slope of each is fitted (MB per hour) and printed with
//! the frames dropped by cause, the poses the clients got and the sets stored. Not a test: nothing
//! asserts; the goal is a slope near zero.
//!
//! `PUMP_SOAK_MINUTES=30 cargo bench -p pump-tests --bench soak` (default 5 minutes).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use pump_tests::gym::{stored_sets, FfmpegCamera};
use pump_tests::procs::{free_addr, wait_ready, Service};
use pump_tests::{testdata, NatsServer};

const WARM_UP: Duration = Duration::from_secs(60);
const EVERY: Duration = Duration::from_secs(10);

fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb / 1024.0)
}

/// Least-squares slope of (seconds, MB), in MB per hour.
fn slope_per_hour(samples: &[(f64, f64)]) -> f64 {
    let n = samples.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mx, my) = (samples.iter().map(|s| s.0).sum::<f64>() / n, samples.iter().map(|s| s.1).sum::<f64>() / n);
    let cov: f64 = samples.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = samples.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    if var == 0.0 {
        0.0
    } else {
        cov / var * 3600.0
    }
}

/// The squat clip, then 8 s of its last frame: one set per loop.
fn padded_clip(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("squat-then-still.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(testdata("squat_5reps_15fps.mp4"))
        .args(["-vf", "tpad=stop_mode=clone:stop_duration=8", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18"])
        .arg(&out)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "ffmpeg could not pad the clip");
    out
}

async fn soak(minutes: f64) {
    let nats = NatsServer::start();
    let logs = tempfile::tempdir().expect("temp dir");
    let clip = padded_clip(logs.path());
    let env = |http: std::net::SocketAddr, grpc: Option<std::net::SocketAddr>| {
        let mut e =
            vec![("PUMP_NATS_URL", nats.url()), ("PUMP_LOG", "warn".to_string()), ("PUMP_HTTP_ADDR", http.to_string())];
        if let Some(g) = grpc {
            e.push(("PUMP_GRPC_ADDR", g.to_string()));
        }
        e
    };
    let (infer_http, sets_http, gw_http, grpc) = (free_addr(), free_addr(), free_addr(), free_addr());
    let infer = Service::start("pump-infer", &[], &env(infer_http, None), logs.path());
    let sets = Service::start(
        "pump-sets",
        &["--exercise", "squat", "--quiet-seconds", "6"],
        &env(sets_http, None),
        logs.path(),
    );
    let gateway = Service::start("pump-gateway", &[], &env(gw_http, Some(grpc)), logs.path());
    for (s, http) in [(&infer, infer_http), (&sets, sets_http), (&gateway, gw_http)] {
        wait_ready(s, http).await;
    }
    let cameras: Vec<FfmpegCamera> = (0..2).map(|_| FfmpegCamera::serve_looping(&clip)).collect();
    let mut args = Vec::new();
    for (i, c) in cameras.iter().enumerate() {
        args.extend(["--camera".to_string(), format!("cam{i}={}", c.url)]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let capture_http = free_addr();
    let capture = Service::start("pump-capture", &args, &env(capture_http, None), logs.path());
    wait_ready(&capture, capture_http).await;

    // A client per camera, streaming its poses all along.
    let got: Arc<BTreeMap<String, AtomicU64>> =
        Arc::new((0..2).map(|i| (format!("cam{i}"), AtomicU64::new(0))).collect());
    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}")).expect("url").connect_lazy();
    for cam in got.keys() {
        let (channel, got, cam) = (channel.clone(), got.clone(), cam.clone());
        tokio::spawn(async move {
            let mut q = pump_proto::pose_query_client::PoseQueryClient::new(channel);
            let req =
                pump_proto::StreamPosesRequest { camera: cam.clone(), wait_for_camera: true, ..Default::default() };
            let Ok(stream) = q.stream_poses(req).await else { return };
            let mut stream = stream.into_inner();
            while let Some(Ok(_)) = stream.next().await {
                got[&cam].fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    let services = [&capture, &infer, &sets, &gateway];
    let mut samples: Vec<Vec<(f64, f64)>> = vec![Vec::new(); services.len()];
    let t0 = Instant::now();
    let total = Duration::from_secs_f64(minutes * 60.0);
    println!("soak: 2 live cameras (squat clip + 8 s still, looping) for {minutes} min; memory every {EVERY:?} after {WARM_UP:?}");
    while t0.elapsed() < total {
        tokio::time::sleep(EVERY).await;
        if t0.elapsed() < WARM_UP {
            continue;
        }
        for (i, s) in services.iter().enumerate() {
            if let Some(mb) = rss_mb(s.pid()) {
                samples[i].push((t0.elapsed().as_secs_f64(), mb));
            }
        }
    }
    let metrics = pump_tests::http::get(infer_http, "/metrics").await.text();
    let mut dropped: BTreeMap<String, f64> = BTreeMap::new();
    for line in metrics.lines().filter(|l| l.starts_with("pump_frames_dropped_total{stage=\"infer\"")) {
        let reason = line.split("reason=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("?");
        let n: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        *dropped.entry(reason.to_string()).or_default() += n;
    }
    let client = pump_tests::services::client(&nats, "soak").await;
    let stored = stored_sets(&client).await;

    println!("| service | RSS after warm-up (MB) | RSS at end (MB) | slope (MB/h) |");
    println!("|---|---|---|---|");
    for (s, samples) in services.iter().zip(&samples) {
        let (first, last) = (samples.first().map_or(0.0, |s| s.1), samples.last().map_or(0.0, |s| s.1));
        println!("| {} | {first:.1} | {last:.1} | {:+.1} |", s.name, slope_per_hour(samples));
    }
    let seconds = t0.elapsed().as_secs_f64();
    for (cam, n) in got.iter() {
        let n = n.load(Ordering::Relaxed);
        let sets: Vec<u32> = stored.get(cam).map(|v| v.iter().map(|s| s.reps).collect()).unwrap_or_default();
        println!("{cam}: {n} poses streamed ({:.1}/s), {} sets stored, reps {sets:?}", n as f64 / seconds, sets.len());
    }
    println!("frames dropped by pump-infer, by cause: {dropped:?}");
    for s in [capture, infer, sets, gateway] {
        let name = s.name;
        let (status, _, took) = s.terminate().await;
        println!("{name}: exit {:?} after SIGTERM in {:.1} s", status.code(), took.as_secs_f64());
    }
    drop(cameras);
}

fn main() {
    let minutes: f64 = std::env::var("PUMP_SOAK_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(5.0);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(soak(minutes));
}
