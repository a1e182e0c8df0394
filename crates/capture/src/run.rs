//! The capture service: per camera, a reader thread that never waits for anyone, and a publisher
//! that sends the camera's newest frame to `pump.frames.<camera>`.
//!
//! - Live sources: each connection attempt is a *cycle* with its own reader thread and camera.
//!   A watchdog ends a cycle that fails or stalls (no frame for `stall_timeout`) and starts the
//!   next after a capped exponential backoff; a stalled thread is left to release its own
//!   capture when its read returns, so a capture is never released while a read runs.
//! - Paced files (default): frame N+1 is published only after the pose of frame N came back (or
//!   `pace_timeout` passed): lossless and deterministic. Then an end-of-stream frame.
//! - Realtime files (`realtime`): replayed at their own frame rate as if live, then end of stream.
//!
//! Shutdown: tell readers to stop, let each in-flight read finish, release captures, flush NATS.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use opencv::core::Mat;
use pump_bus::clock::now_ns;
use pump_bus::codec::{decode_pose_frame, headers};
use pump_bus::connect::flush_bounded;
use pump_bus::streams::ensure_streams_retrying;
use pump_bus::subject::{self, CameraId};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn, Instrument};

use crate::camera::{Camera, CameraFactory, OpenCvCamera, SourceSpec};
use crate::config::{Config, FrameEncoding};
use crate::encode::{encode, end_of_stream, pass_jpeg, wire_encoding, EncodedFrame, FrameMeta};
use crate::error::{Error, Result};
use crate::metrics::CaptureStats;
use crate::timeline::Timeline;

/// How long shutdown lets an in-flight read finish before leaving its thread behind.
const READ_GRACE: Duration = Duration::from_secs(5);
/// How often the watchdog looks for a stalled cycle.
const WATCHDOG_TICK: Duration = Duration::from_millis(100);

/// How a camera is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Live,
    FilePaced,
    FileRealtime,
}

/// One camera to run.
pub struct CameraInput {
    pub id: CameraId,
    pub factory: CameraFactory,
    pub mode: Mode,
    /// Its wire encoding (its own, or the service's).
    pub encoding: crate::config::FrameEncoding,
}

impl std::fmt::Debug for CameraInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraInput").field("id", &self.id).field("mode", &self.mode).finish()
    }
}

/// The newest encoded frame of each camera, for previews; the value published is this one.
pub type LatestFrames = Mutex<BTreeMap<String, watch::Receiver<Option<Arc<EncodedFrame>>>>>;

/// Everything the service runs with; tests build it with their own client and fake cameras.
pub struct Service {
    pub config: Config,
    pub client: async_nats::Client,
    pub cameras: Vec<CameraInput>,
    pub stats: Arc<CaptureStats>,
    pub latest: Arc<LatestFrames>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served, if anywhere.
    pub ops: Option<tokio::net::TcpListener>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("config", &self.config).field("cameras", &self.cameras).finish()
    }
}

impl Service {
    /// Builds OpenCV cameras for the configured sources.
    pub fn from_config(config: Config, client: async_nats::Client) -> Self {
        let read_timeout_ms = i32::try_from(config.stall_timeout.as_millis()).unwrap_or(i32::MAX);
        let cameras = config
            .cameras
            .iter()
            .map(|c| {
                let spec = c.source.clone();
                let mode = match (&c.source, c.realtime.unwrap_or(config.realtime)) {
                    (SourceSpec::File(_), false) => Mode::FilePaced,
                    (SourceSpec::File(_), true) => Mode::FileRealtime,
                    _ => Mode::Live,
                };
                let encoding = c.encoding.unwrap_or(config.encoding);
                let passthrough = encoding == FrameEncoding::Auto;
                let factory: CameraFactory = Arc::new(move || {
                    Box::new(OpenCvCamera::new(spec.clone(), read_timeout_ms).with_jpeg_passthrough(passthrough))
                        as Box<_>
                });
                CameraInput { id: c.id.clone(), factory, mode, encoding }
            })
            .collect();
        Self { config, client, cameras, stats: Arc::default(), latest: Arc::default(), ops: None }
    }
}

/// Runs until every file source has ended and, with live sources, until `shutdown`.
pub async fn run(service: Service, shutdown: CancellationToken) -> Result<()> {
    let Service { config, client, cameras, stats, latest, ops } = service;
    let js = async_nats::jetstream::new(client.clone());
    if !ensure_streams_retrying(&js, &config.limits, &shutdown).await? {
        return Ok(());
    }
    // Set up again after every reconnection, while this service runs.
    let _streams = pump_bus::streams::keep_streams_while(&client, config.limits, &shutdown);
    let tracker = TaskTracker::new();
    // The ops server runs beside the cameras: its own tracker, so file sources still end the run.
    let ops_task = ops.map(|listener| {
        let (r, h, m, c) = (stats.clone(), stats.clone(), stats.clone(), client.clone());
        let ops = pump_bus::ops::Ops {
            not_ready: pump_bus::ops::ready_with_bus(client.clone(), move || {
                (!r.is_ready()).then(|| "streams not set up yet".to_string())
            }),
            health: Arc::new(move || h.health()),
            metrics: Arc::new(move || m.prometheus(pump_bus::ops::nats_connected(&c))),
        };
        let token = shutdown.child_token();
        (tokio::spawn(pump_bus::ops::serve(listener, ops, token.clone())), token)
    });
    stats.set_ready(true);
    // The largest message the server takes: a raw frame over it goes as JPEG instead.
    let max_payload = client.server_info().max_payload;
    for cam in cameras {
        let span = tracing::info_span!("camera", camera_id = %cam.id);
        let (tx, rx) = watch::channel(None::<Arc<EncodedFrame>>);
        latest.lock().unwrap_or_else(|e| e.into_inner()).insert(cam.id.to_string(), rx.clone());
        let tx = Arc::new(tx);
        let ctx = CameraCtx {
            id: cam.id.clone(),
            encoding: cam.encoding,
            config: config.clone(),
            stats: stats.clone(),
            shutdown: shutdown.clone(),
            max_payload,
            fell_back: Arc::default(),
        };
        match cam.mode {
            Mode::Live => {
                tracker.spawn(supervise_live(ctx.clone(), cam.factory, tx).instrument(span.clone()));
                tracker.spawn(publish_latest(ctx, client.clone(), rx, None).instrument(span));
            }
            Mode::FileRealtime => {
                let (eos_tx, eos_rx) = oneshot::channel();
                tracker.spawn(play_realtime(ctx.clone(), cam.factory, tx, eos_tx).instrument(span.clone()));
                tracker.spawn(publish_latest(ctx, client.clone(), rx, Some(eos_rx)).instrument(span));
            }
            Mode::FilePaced => {
                tracker.spawn(play_paced(ctx, client.clone(), cam.factory, tx).instrument(span));
            }
        }
    }
    tracker.close();
    info!(cameras = config.cameras.len(), "capture service running");
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tracker.wait() => break,
            _ = tick.tick() => stats.log(),
            _ = shutdown.cancelled() => {
                if tokio::time::timeout(READ_GRACE * 2, tracker.wait()).await.is_err() {
                    warn!("camera tasks still running after the shutdown deadline");
                }
                break;
            }
        }
    }
    stats.set_ready(false);
    if let Some((task, token)) = ops_task {
        token.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    flush_bounded(&client).await;
    stats.log();
    Ok(())
}

#[derive(Clone)]
struct CameraCtx {
    id: CameraId,
    encoding: crate::config::FrameEncoding,
    config: Config,
    stats: Arc<CaptureStats>,
    shutdown: CancellationToken,
    /// The server's largest message (bytes; 0 when unknown).
    max_payload: usize,
    /// Set once this camera's raw frames were found too large for the server, to warn once.
    fell_back: Arc<AtomicBool>,
}

impl CameraCtx {
    /// The identity of a frame decoded at `wall_ns`, at `source_ts_ns` on `segment`'s timeline.
    fn meta(&self, frame_id: u64, wall_ns: i64, source_ts_ns: i64, segment: u64, paced: bool) -> FrameMeta<'_> {
        FrameMeta { camera: self.id.as_str(), frame_id, capture_ts_ns: wall_ns, source_ts_ns, segment, paced }
    }

    /// Puts what `cam` read on the wire: the camera's JPEG as it came when it passes one on;
    /// else encoded as configured, unless raw pixels would not fit in one NATS message; then as
    /// JPEG, with one warning that says how to keep the pixels faithful.
    fn encode(&self, mat: &Mat, cam: &dyn Camera, meta: FrameMeta<'_>) -> Result<Arc<EncodedFrame>> {
        use opencv::prelude::{MatTraitConst, MatTraitConstManual};
        if cam.passes_jpeg() {
            return pass_jpeg(mat.data_bytes().map_err(|e| Error::Encode(e.to_string()))?, meta);
        }
        let (w, h) = (mat.cols().max(0) as usize, mat.rows().max(0) as usize);
        let encoding = wire_encoding(self.encoding, w, h, self.max_payload);
        let fell_back = matches!(encoding, FrameEncoding::Jpeg { .. }) && encoding != self.encoding;
        if fell_back && !self.fell_back.swap(true, Ordering::Relaxed) {
            warn!(
                width = w,
                height = h,
                max_payload = self.max_payload,
                "raw frames do not fit in one NATS message: sending JPEG, whose poses are less faithful; \
                 raise max_payload in nats-server's configuration (deploy/nats.conf: 8MB)"
            );
        }
        encode(mat, meta, encoding)
    }
}

/// A new segment of a camera's timeline, named by the wall clock now.
fn new_segment() -> u64 {
    u64::try_from(now_ns()).unwrap_or_default()
}

/// What one reader thread shares with its supervisor.
struct Cycle {
    /// Set by the supervisor: leave after the current read.
    stop: AtomicBool,
    /// When the cycle last showed life (start, then every frame).
    last_activity: Mutex<Instant>,
    frames: AtomicU64,
}

impl Cycle {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            stop: AtomicBool::new(false),
            last_activity: Mutex::new(Instant::now()),
            frames: AtomicU64::new(0),
        })
    }

    fn idle_for(&self) -> Duration {
        self.last_activity.lock().unwrap_or_else(|e| e.into_inner()).elapsed()
    }

    fn alive(&self) {
        *self.last_activity.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.frames.fetch_add(1, Ordering::Relaxed);
    }
}

/// Why a reader cycle ended.
#[derive(Debug)]
enum CycleEnd {
    Stopped,
    OpenFailed(String),
    ReadFailed(String),
    Ended,
}

impl std::fmt::Display for CycleEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CycleEnd::Stopped => f.write_str("stopped"),
            CycleEnd::OpenFailed(e) => write!(f, "open failed: {e}"),
            CycleEnd::ReadFailed(e) => write!(f, "read failed: {e}"),
            CycleEnd::Ended => f.write_str("the stream ended"),
        }
    }
}

/// Reads frames until told to stop or the camera fails. The capture is released here, after the
/// last read returned.
fn reader_cycle(
    ctx: &CameraCtx,
    factory: &CameraFactory,
    cycle: &Cycle,
    next_id: &AtomicU64,
    (segment, timeline): (u64, &Mutex<Timeline>),
    tx: &watch::Sender<Option<Arc<EncodedFrame>>>,
) -> CycleEnd {
    let mut cam = factory();
    if let Err(e) = cam.open() {
        ctx.stats.update(ctx.id.as_str(), |s| s.open_failures += 1);
        return CycleEnd::OpenFailed(e.to_string());
    }
    ctx.stats.update(ctx.id.as_str(), |s| s.connected = true);
    // One segment for the camera while capture runs; a new connection steps over the outage.
    timeline.lock().unwrap_or_else(|e| e.into_inner()).reconnected();
    // One Mat per cycle, reused by every read.
    let mut mat = Mat::default();
    let end = loop {
        if cycle.stop.load(Ordering::SeqCst) {
            break CycleEnd::Stopped;
        }
        match cam.read(&mut mat) {
            Ok(Some(media_ns)) => {
                if cycle.stop.load(Ordering::SeqCst) {
                    break CycleEnd::Stopped;
                }
                let wall = now_ns();
                let ts = timeline.lock().unwrap_or_else(|e| e.into_inner()).next(Some(media_ns), wall);
                let meta = ctx.meta(next_id.fetch_add(1, Ordering::SeqCst), wall, ts, segment, false);
                match ctx.encode(&mat, cam.as_ref(), meta) {
                    Ok(f) => {
                        cycle.alive();
                        ctx.stats.captured(ctx.id.as_str());
                        tx.send_replace(Some(f));
                    }
                    Err(e) => break CycleEnd::ReadFailed(e.to_string()),
                }
            }
            Ok(None) => break CycleEnd::Ended,
            Err(e) => {
                ctx.stats.update(ctx.id.as_str(), |s| s.read_failures += 1);
                break CycleEnd::ReadFailed(e.to_string());
            }
        }
    };
    cam.release();
    end
}

/// Keeps a live camera connected: runs reader cycles, ends failed or stalled ones, reconnects
/// with capped exponential backoff (reset by any good frame). Never gives up.
async fn supervise_live(ctx: CameraCtx, factory: CameraFactory, tx: Arc<watch::Sender<Option<Arc<EncodedFrame>>>>) {
    let mut backoff = ctx.config.backoff_initial;
    let next_id = Arc::new(AtomicU64::new(0));
    // The camera's timeline, across its connections. A stalled reader of an ended cycle checks
    // `stop` after its read returns, before it would touch the timeline.
    let (segment, timeline) = (new_segment(), Arc::new(Mutex::new(Timeline::live())));
    let mut attempt = 0u64;
    while !ctx.shutdown.is_cancelled() {
        attempt += 1;
        let cycle = Cycle::new();
        let (done_tx, mut done_rx) = oneshot::channel();
        let spawned = {
            let (ctx, factory, cycle, next_id, tx, timeline) =
                (ctx.clone(), factory.clone(), cycle.clone(), next_id.clone(), tx.clone(), timeline.clone());
            std::thread::Builder::new().name(format!("capture-{}", ctx.id)).spawn(move || {
                let end = reader_cycle(&ctx, &factory, &cycle, &next_id, (segment, &timeline), &tx);
                let _ = done_tx.send(end);
            })
        };
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start a reader thread");
        }
        let mut watchdog = tokio::time::interval(WATCHDOG_TICK);
        let end = loop {
            tokio::select! {
                end = &mut done_rx => break end.unwrap_or(CycleEnd::ReadFailed("reader thread died".into())),
                _ = watchdog.tick() => {
                    if cycle.idle_for() > ctx.config.stall_timeout {
                        // The thread may be stuck in read(); it releases its capture itself when
                        // (if) that returns, and this camera moves on with a fresh one.
                        cycle.stop.store(true, Ordering::SeqCst);
                        ctx.stats.update(ctx.id.as_str(), |s| s.stalls += 1);
                        break CycleEnd::ReadFailed(format!("no frame for {:?}", ctx.config.stall_timeout));
                    }
                }
                _ = ctx.shutdown.cancelled() => {
                    cycle.stop.store(true, Ordering::SeqCst);
                    if tokio::time::timeout(READ_GRACE, &mut done_rx).await.is_err() {
                        warn!("a read is still blocked at shutdown; its thread is left to finish it");
                    }
                    break CycleEnd::Stopped;
                }
            }
        };
        ctx.stats.update(ctx.id.as_str(), |s| s.connected = false);
        if matches!(end, CycleEnd::Stopped) || ctx.shutdown.is_cancelled() {
            break;
        }
        if cycle.frames.load(Ordering::Relaxed) > 0 {
            backoff = ctx.config.backoff_initial;
        }
        warn!(attempt, reason = %end, retry_in_ms = backoff.as_millis() as u64, "camera read failed, reconnecting");
        ctx.stats.update(ctx.id.as_str(), |s| s.reconnects += 1);
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = ctx.shutdown.cancelled() => break,
        }
        backoff = (backoff * 2).min(ctx.config.backoff_max);
    }
}

/// Publishes each new newest frame; with `eos`, publishes the last frame and then the
/// end-of-stream marker when the file ends. Never holds up the reader: it only reads the watch.
async fn publish_latest(
    ctx: CameraCtx,
    client: async_nats::Client,
    mut rx: watch::Receiver<Option<Arc<EncodedFrame>>>,
    mut eos: Option<oneshot::Receiver<Arc<EncodedFrame>>>,
) {
    let subject = subject::frames(&ctx.id);
    let mut last_id: Option<u64> = None;
    let publish = |f: Arc<EncodedFrame>, last_id: &mut Option<u64>| {
        let client = client.clone();
        let subject = subject.clone();
        let stats = ctx.stats.clone();
        let camera = ctx.id.to_string();
        let skipped = last_id.map(|l| f.frame.frame_id.saturating_sub(l + 1)).unwrap_or(0);
        *last_id = Some(f.frame.frame_id);
        async move {
            let hdrs = headers(f.frame.frame_id, f.frame.capture_ts_ns);
            match client.publish_with_headers(subject, hdrs, f.payload.clone()).await {
                Ok(()) => stats.update(&camera, |s| {
                    s.published += 1;
                    s.skipped += skipped;
                }),
                Err(e) => warn!(error = %e, "publishing a frame failed"),
            }
        }
    };
    // The newest frame if it has not gone out yet. Decided by frame id, not by the watch's
    // "changed" flag, which a reader thread that has finished (and dropped its sender) hides.
    let unpublished = |rx: &watch::Receiver<Option<Arc<EncodedFrame>>>, last_id: Option<u64>| {
        rx.borrow().clone().filter(|f| last_id.is_none_or(|l| f.frame.frame_id > l))
    };
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            changed = rx.changed() => {
                if let Some(f) = unpublished(&rx, last_id) {
                    publish(f, &mut last_id).await;
                }
                if changed.is_err() {
                    // The reader is gone; a file's end-of-stream marker may still be on its way.
                    if let Some(Ok(marker)) = match eos.take() { Some(r) => Some(r.await), None => None } {
                        publish(marker, &mut last_id).await;
                        ctx.stats.update(ctx.id.as_str(), |s| s.ended = true);
                    }
                    break;
                }
            }
            Ok(marker) = async { match eos.as_mut() { Some(r) => r.await, None => std::future::pending().await } } => {
                // The file ended: its last frame goes out before the marker.
                if let Some(f) = unpublished(&rx, last_id) {
                    publish(f, &mut last_id).await;
                }
                publish(marker, &mut last_id).await;
                ctx.stats.update(ctx.id.as_str(), |s| s.ended = true);
                break;
            }
        }
    }
}

/// Replays a file at its own frame rate (times `realtime_speed`) as if it were a live camera,
/// then sends end of stream.
async fn play_realtime(
    ctx: CameraCtx,
    factory: CameraFactory,
    tx: Arc<watch::Sender<Option<Arc<EncodedFrame>>>>,
    eos_tx: oneshot::Sender<Arc<EncodedFrame>>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = oneshot::channel::<()>();
    {
        let (ctx, stop) = (ctx.clone(), stop.clone());
        let spawned = std::thread::Builder::new().name(format!("capture-{}", ctx.id)).spawn(move || {
            let mut cam = factory();
            if let Err(e) = cam.open() {
                warn!(error = %e, "cannot open the file");
                return;
            }
            let (mut mat, start, mut id) = (Mat::default(), Instant::now(), 0u64);
            let (segment, mut timeline) = (new_segment(), Timeline::file(cam.fps()));
            let mut last_ts = 0i64;
            while !stop.load(Ordering::SeqCst) {
                match cam.read(&mut mat) {
                    Ok(Some(media_ns)) => {
                        let ts = timeline.next(Some(media_ns), now_ns());
                        // Wait until the frame's own time, as a camera would deliver it.
                        let due = start + Duration::from_nanos(ts.max(0) as u64).div_f64(ctx.config.realtime_speed);
                        // In short naps, so a stop is seen however slow the replay.
                        while let Some(wait) = due.checked_duration_since(Instant::now()) {
                            if stop.load(Ordering::SeqCst) {
                                break;
                            }
                            std::thread::sleep(wait.min(Duration::from_millis(50)));
                        }
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        last_ts = ts;
                        let meta = ctx.meta(id, now_ns(), ts, segment, false);
                        match ctx.encode(&mat, cam.as_ref(), meta) {
                            Ok(f) => {
                                ctx.stats.captured(ctx.id.as_str());
                                tx.send_replace(Some(f));
                            }
                            Err(e) => warn!(error = %e, "cannot encode a frame"),
                        }
                        id += 1;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        warn!(error = %e, "reading the file failed");
                        break;
                    }
                }
            }
            cam.release();
            if !stop.load(Ordering::SeqCst) {
                let meta = ctx.meta(id, now_ns(), last_ts, segment, false);
                let _ = eos_tx.send(end_of_stream(meta));
            }
            let _ = done_tx.send(());
        });
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start a reader thread");
            return;
        }
    }
    let mut done_rx = done_rx;
    tokio::select! {
        _ = &mut done_rx => {}
        _ = ctx.shutdown.cancelled() => {
            stop.store(true, Ordering::SeqCst);
            // Wait for the reader to finish its frame and release the file: left running, it
            // could be inside OpenCV while the process exits (seen: a crash in imencode).
            if tokio::time::timeout(READ_GRACE, done_rx).await.is_err() {
                warn!("the file reader did not stop in time");
            }
        }
    }
}

/// A frame handed from the paced reader to the publisher, with the reader's go-ahead signal.
type PacedFrame = (Arc<EncodedFrame>, oneshot::Sender<()>);

/// Plays a file losslessly: each frame waits for its pose (or `pace_timeout`) before the next.
async fn play_paced(
    ctx: CameraCtx,
    client: async_nats::Client,
    factory: CameraFactory,
    latest: Arc<watch::Sender<Option<Arc<EncodedFrame>>>>,
) {
    // Subscribed before the first publish, so no pose can be missed.
    let mut poses = match client.subscribe(subject::poses(&ctx.id)).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot subscribe to poses; cannot pace this file");
            return;
        }
    };
    let (req_tx, mut req_rx) = mpsc::channel::<PacedFrame>(1);
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = oneshot::channel::<()>();
    {
        let (ctx, stop) = (ctx.clone(), stop.clone());
        let spawned = std::thread::Builder::new().name(format!("capture-{}", ctx.id)).spawn(move || {
            paced_reader(&ctx, &factory, &stop, &req_tx);
            let _ = done_tx.send(());
        });
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start a reader thread");
            return;
        }
    }
    let subject = subject::frames(&ctx.id);
    loop {
        let next = tokio::select! {
            _ = ctx.shutdown.cancelled() => None,
            r = req_rx.recv() => r,
        };
        let Some((f, go_ahead)) = next else { break };
        latest.send_replace(Some(f.clone()));
        let hdrs = headers(f.frame.frame_id, f.frame.capture_ts_ns);
        if let Err(e) = client.publish_with_headers(subject.clone(), hdrs, f.payload.clone()).await {
            warn!(error = %e, "publishing a frame failed");
        }
        ctx.stats.update(ctx.id.as_str(), |s| s.published += 1);
        if f.frame.end_of_stream {
            ctx.stats.update(ctx.id.as_str(), |s| s.ended = true);
            let _ = go_ahead.send(());
            break;
        }
        let waited = tokio::time::timeout(ctx.config.pace_timeout, async {
            while let Some(msg) = poses.next().await {
                if let Ok(p) = decode_pose_frame(&msg.payload) {
                    if p.frame_id == f.frame.frame_id && p.capture_ts_ns == f.frame.capture_ts_ns {
                        return true;
                    }
                }
            }
            false
        });
        let came_back = tokio::select! {
            r = waited => r.unwrap_or(false),
            _ = ctx.shutdown.cancelled() => break,
        };
        if !came_back {
            ctx.stats.update(ctx.id.as_str(), |s| s.pace_timeouts += 1);
            warn!(frame_id = f.frame.frame_id, "no pose within the pace timeout; sending the next frame");
        }
        let _ = go_ahead.send(());
    }
    // Dropping the receiver tells the reader to stop after its current read.
    stop.store(true, Ordering::SeqCst);
    drop(req_rx);
    if tokio::time::timeout(READ_GRACE, done_rx).await.is_err() {
        warn!("the file reader did not stop in time");
    }
}

fn paced_reader(ctx: &CameraCtx, factory: &CameraFactory, stop: &AtomicBool, req: &mpsc::Sender<PacedFrame>) {
    let mut cam = factory();
    if let Err(e) = cam.open() {
        warn!(error = %e, "cannot open the file");
        return;
    }
    let (mut mat, mut id, mut last_ts) = (Mat::default(), 0u64, 0i64);
    let (segment, mut timeline) = (new_segment(), Timeline::file(cam.fps()));
    let send = |f: Arc<EncodedFrame>| -> bool {
        let (go_tx, go_rx) = oneshot::channel();
        req.blocking_send((f, go_tx)).is_ok() && go_rx.blocking_recv().is_ok()
    };
    let finished = loop {
        if stop.load(Ordering::SeqCst) {
            break false;
        }
        match cam.read(&mut mat) {
            Ok(Some(media_ns)) => {
                let wall = now_ns();
                let ts = timeline.next(Some(media_ns), wall);
                last_ts = ts;
                let meta = ctx.meta(id, wall, ts, segment, true);
                match ctx.encode(&mat, cam.as_ref(), meta) {
                    Ok(f) => {
                        ctx.stats.captured(ctx.id.as_str());
                        if !send(f) {
                            break false;
                        }
                    }
                    Err(e) => warn!(error = %e, frame_id = id, "cannot encode a frame"),
                }
                id += 1;
            }
            Ok(None) => break true,
            Err(e) => {
                warn!(error = %e, "reading the file failed");
                break true;
            }
        }
    };
    cam.release();
    if finished {
        let meta = ctx.meta(id, now_ns(), last_ts, segment, true);
        send(end_of_stream(meta));
    }
}
