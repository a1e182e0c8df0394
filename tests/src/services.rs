//! Services started in-process against a test's nats-server, shared by the tests and benches.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failure here is a failed test

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use prost::Message;
use pump_bus::connect::{connect, BusConfig};
use pump_bus::subject::CameraId;
use pump_capture::camera::SourceSpec;
use pump_capture::config::CameraConfig;
use pump_capture::metrics::CaptureStats;
use pump_capture::run::{CameraInput, Mode};
use pump_infer::{InferStats, Predictor, SlowPredictor};
use pump_proto::PoseFrame;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::NatsServer;

/// Bound on every await here: a bug fails instead of hanging.
const T: Duration = Duration::from_secs(60);

pub async fn client(nats: &NatsServer, name: &str) -> async_nats::Client {
    tokio::time::timeout(T, connect(&BusConfig::new(nats.url(), name))).await.unwrap().unwrap()
}

/// Stops a service running in-process: cancels its token and waits (bounded) for a clean,
/// successful return. The one way tests stop what they started in-process.
pub async fn stop_task<E: std::fmt::Debug>(shutdown: &CancellationToken, task: JoinHandle<Result<(), E>>) -> Duration {
    let t0 = Instant::now();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), task).await.expect("service stops in time").unwrap().unwrap();
    t0.elapsed()
}

/// A service running in-process, with its shutdown token and counters.
#[derive(Debug)]
pub struct Running<S> {
    pub task: JoinHandle<Result<(), String>>,
    pub shutdown: CancellationToken,
    pub stats: Arc<S>,
}

impl<S> Running<S> {
    /// Cancels and waits (bounded) for a clean, successful return.
    pub async fn stop(self) -> Duration {
        stop_task(&self.shutdown, self.task).await
    }
}

pub async fn start_infer(
    nats: &NatsServer,
    predictors: Vec<Box<dyn Predictor>>,
    tweak: impl FnOnce(&mut pump_infer::Config),
) -> Running<InferStats> {
    let mut bus = BusConfig::new(nats.url(), "test-infer");
    bus.subscription_capacity = 16;
    let mut config = pump_infer::Config::new(bus.clone());
    tweak(&mut config);
    let client = tokio::time::timeout(T, connect(&bus)).await.unwrap().unwrap();
    let stats = Arc::new(InferStats::default());
    let shutdown = CancellationToken::new();
    let service = pump_infer::Service { config, client, predictors, stats: stats.clone(), ops: None };
    let token = shutdown.clone();
    let task = tokio::spawn(async move { pump_infer::run(service, token).await.map_err(|e| e.to_string()) });
    // Frames published before the service subscribes are not its to see: wait until it has.
    tokio::time::timeout(T, async {
        while !stats.is_ready() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("inference service ready");
    Running { task, shutdown, stats }
}

pub fn slow(ms: u64) -> Vec<Box<dyn Predictor>> {
    vec![Box::new(SlowPredictor { delay: Duration::from_millis(ms) })]
}

pub async fn start_capture(
    nats: &NatsServer,
    camera: &str,
    factory: pump_capture::camera::CameraFactory,
    mode: Mode,
    tweak: impl FnOnce(&mut pump_capture::Config),
) -> Running<CaptureStats> {
    let id = CameraId::new(camera).unwrap();
    let source = SourceSpec::Url("fake://camera".into());
    let mut config = pump_capture::Config::new(
        BusConfig::new(nats.url(), "test-capture"),
        vec![CameraConfig::new(id.clone(), source)],
    );
    tweak(&mut config);
    let client = client(nats, "test-capture").await;
    let stats = Arc::new(CaptureStats::default());
    let service = pump_capture::Service {
        config,
        client,
        cameras: vec![CameraInput { id, factory, mode, encoding: pump_capture::config::FrameEncoding::Bgr8 }],
        stats: stats.clone(),
        ops: None,
    };
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let task = tokio::spawn(async move { pump_capture::run(service, token).await.map_err(|e| e.to_string()) });
    Running { task, shutdown, stats }
}

/// Capture running a live FAKE camera (camera timing only: synthetic frames, one every period)
/// at `fps`.
pub async fn start_fake_live_camera(nats: &NatsServer, camera: &str, fps: f64) -> Running<CaptureStats> {
    use pump_capture::camera::fake::{FakeCamera, FakeCameraLog, FakeCameraScript};
    let script = FakeCameraScript { fps, read_takes_period: true, ..Default::default() };
    let factory = FakeCamera::factory(script, Arc::new(FakeCameraLog::default()));
    start_capture(nats, camera, factory, pump_capture::run::Mode::Live, |_| {}).await
}

/// Collects pose frames for `duration`, or until end of stream.
pub async fn collect(sub: &mut async_nats::Subscriber, duration: Duration) -> Vec<PoseFrame> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + duration;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, sub.next()).await {
        let p = PoseFrame::decode(msg.payload).unwrap();
        let eos = p.end_of_stream;
        out.push(p);
        if eos {
            break;
        }
    }
    out
}

/// Inference with the real model (one engine, default threads), ready.
pub async fn start_real_infer(nats: &NatsServer) -> Running<InferStats> {
    let engine = tokio::task::spawn_blocking(|| pump_pose::PoseEngine::load(&pump_pose::EngineConfig::default()))
        .await
        .unwrap()
        .unwrap();
    start_infer(nats, vec![Box::new(engine)], |_| {}).await
}

/// Inference with the real model as pump-infer runs it by default: one single-threaded engine
/// per core.
pub async fn start_default_infer(nats: &NatsServer) -> Running<InferStats> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let plan = pump_pose::args::WorkerPlan::resolve(0, 0, cores, false);
    let config = pump_pose::EngineConfig { threads: plan.threads, ..pump_pose::EngineConfig::default() };
    let engines = tokio::task::spawn_blocking(move || {
        (0..plan.workers)
            .map(|_| pump_pose::PoseEngine::load(&config).map(|e| Box::new(e) as Box<dyn pump_infer::Predictor>))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .unwrap()
    .unwrap();
    start_infer(nats, engines, |_| {}).await
}

/// Capture configuration for one file camera.
pub fn file_capture_config(nats: &NatsServer, camera: &str, file: std::path::PathBuf) -> pump_capture::Config {
    pump_capture::Config::new(
        BusConfig::new(nats.url(), "test-capture"),
        vec![CameraConfig::new(CameraId::new(camera).unwrap(), SourceSpec::File(file))],
    )
}

/// The sets service, counting squats (a set closes after 3.5 s without a rep: longer than one
/// 2-s rep, shorter than the rest after a set).
pub fn start_sets(
    nats: &NatsServer,
    client: async_nats::Client,
) -> (JoinHandle<pump_sets_service::Result<()>>, CancellationToken, Arc<pump_sets_service::SetsStats>) {
    let mut config = pump_sets_service::Config::new(BusConfig::new(nats.url(), "test-sets"));
    config.sets.quiet = 3.5;
    config.sets.exercise = Some("squat".into());
    let stats = Arc::new(pump_sets_service::SetsStats::default());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(pump_sets_service::run(
        pump_sets_service::Service { config, client, stats: stats.clone(), ops: None },
        shutdown.clone(),
    ));
    (task, shutdown, stats)
}

/// A gateway running in-process, with a connected channel.
#[derive(Debug)]
pub struct Gateway {
    pub task: JoinHandle<anyhow::Result<()>>,
    pub shutdown: CancellationToken,
    pub channel: tonic::transport::Channel,
    pub skipped: Arc<std::sync::atomic::AtomicU64>,
    pub addr: std::net::SocketAddr,
    /// The HTTP port: preview, /metrics, /healthz, /readyz.
    pub http: std::net::SocketAddr,
    pub snapshots: Arc<pump_gateway::snapshot::SnapshotCache>,
}

impl Gateway {
    /// Cancels and waits (bounded) for a clean, successful return.
    pub async fn stop(self) {
        stop_task(&self.shutdown, self.task).await;
    }
}

/// Starts the gateway on a free port and waits until it reports SERVING; it records clips.
pub async fn start_gateway(nats: &NatsServer) -> Gateway {
    start_gateway_with_clips(nats, Default::default()).await
}

/// As [`start_gateway`], its clips kept within `clips`.
pub async fn start_gateway_with_clips(nats: &NatsServer, clips: pump_gateway::clips::ClipLimits) -> Gateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ops = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = ops.local_addr().unwrap();
    let skipped = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let snapshots = Arc::new(pump_gateway::snapshot::SnapshotCache::default());
    let service = pump_gateway::Service {
        client: client(nats, "gateway").await,
        listener,
        limits: Default::default(),
        skipped: skipped.clone(),
        ops: Some(ops),
        snapshots: snapshots.clone(),
        pose_rate_floor: pump_gateway::live::DEFAULT_POSE_RATE_FLOOR,
        access: pump_gateway::access::Access::open(),
        tls: None,
        clips: Some(clips),
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(pump_gateway::run(service, shutdown.clone()));
    let channel =
        tokio::time::timeout(T, tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect())
            .await
            .unwrap()
            .unwrap();
    // Serving once the streams are there.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    tokio::time::timeout(T, async {
        loop {
            let r = health.check(tonic_health::pb::HealthCheckRequest { service: "pump.v1.PoseQuery".into() }).await;
            if r.is_ok_and(|r| {
                r.get_ref().status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
            }) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("gateway reports SERVING");
    Gateway { task, shutdown, channel, skipped, addr, http, snapshots }
}
