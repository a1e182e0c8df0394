//! The inference service: frames in from `pump.frames.>`, newest-frame-wins slots, workers
//! running the predictor, poses out on `pump.poses.<camera>`.
//!
//! Shutdown order: stop intake (unsubscribe), close the slots (waiting frames are dropped, the
//! in-flight ones finish), let the publisher drain, flush NATS, return.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use opencv::core::{Mat, Vector};
use opencv::imgcodecs;
use opencv::prelude::*;
use pump_bus::clock::now_ns;
use pump_bus::codec::decode_frame;
use pump_bus::connect::flush_bounded;
use pump_bus::frame::{self, CheckedFrame};
use pump_bus::streams::{ensure_streams_retrying, FRAMES_STREAM};
use pump_bus::subject::{self, CameraId, FRAMES_ALL};
use pump_pose::{ImageView, Pose};
use pump_proto::{Frame, PoseFrame};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::metrics::{DropReason, InferStats};
use crate::predictor::Predictor;
use crate::slot::{FrameSlots, Offer, Ticket, Work};

/// How long shutdown waits for workers and the publisher before giving up on them.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// Everything the service runs with; tests build it with their own client and fakes.
pub struct Service {
    pub config: Config,
    pub client: async_nats::Client,
    /// One per worker thread.
    pub predictors: Vec<Box<dyn Predictor>>,
    pub stats: Arc<InferStats>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served, if anywhere.
    pub ops: Option<tokio::net::TcpListener>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("config", &self.config).field("workers", &self.predictors.len()).finish()
    }
}

pub async fn run(service: Service, shutdown: CancellationToken) -> Result<()> {
    let Service { config, client, predictors, stats, ops } = service;
    config.validate()?;
    if predictors.is_empty() {
        return Err(Error::Config("at least one worker is needed".into()));
    }
    let js = jetstream::new(client.clone());
    if !ensure_streams_retrying(&js, &config.limits, &shutdown).await? {
        return Ok(());
    }
    // Set up again after every reconnection, while this service runs.
    let _streams = pump_bus::streams::keep_streams_while(&client, config.limits, &shutdown);
    // Subscribe before seeding, so no frame falls between the kept one and the live ones.
    let mut sub = client
        .queue_subscribe(FRAMES_ALL, config.queue_group.clone())
        .await
        .map_err(|source| Error::Subscribe { subject: FRAMES_ALL.into(), source })?;
    // As many frames of a camera in flight as there are engines: a lone fast camera keeps them
    // all busy; the slots put its poses back in frame order.
    let slots = Arc::new(FrameSlots::new(predictors.len()));
    // Should this future be dropped instead of shut down (its runtime going away), the worker
    // threads must still end: nothing else would wake them.
    let _close_on_drop = CloseOnDrop(slots.clone());
    let mut limiter = RateLimitedLog::new(Duration::from_secs(5));
    if let Err(e) = seed_from_kept_frames(&js, &slots, &stats, &config).await {
        warn!(error = %e, "could not read the kept frames; starting from live ones");
    }

    let tracker = TaskTracker::new();
    if let Some(listener) = ops {
        let provider = predictors[0].provider();
        let (r, h, m, c) = (stats.clone(), stats.clone(), stats.clone(), client.clone());
        let ops = pump_bus::ops::Ops {
            not_ready: pump_bus::ops::ready_with_bus(client.clone(), move || {
                (!r.is_ready()).then(|| "model not warmed up or not subscribed to frames yet".to_string())
            }),
            health: Arc::new(move || h.health(provider)),
            metrics: Arc::new(move || m.prometheus(pump_bus::ops::nats_connected(&c))),
        };
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            if let Err(e) = pump_bus::ops::serve(listener, ops, shutdown).await {
                warn!(error = %e, "ops endpoints stopped");
            }
        });
    }
    // A model's first run allocates and packs its weights: done here, not on a camera's frame.
    let predictors = warm_up(predictors).await?;
    // Workers hold the only senders: the publisher ends when the last worker does.
    let (pose_tx, pose_rx) = mpsc::channel::<PoseFrame>(64);
    for (i, predictor) in predictors.into_iter().enumerate() {
        let (slots, stats, tx, cfg) = (slots.clone(), stats.clone(), pose_tx.clone(), config.clone());
        tracker.spawn_blocking(move || worker_loop(i, predictor, &slots, &stats, &tx, &cfg));
    }
    drop(pose_tx);
    tracker.spawn(publish_loop(client.clone(), pose_rx, stats.clone(), instance_id()));
    tracker.close();
    stats.set_ready(true);
    info!(queue_group = %config.queue_group, "inference service running");

    let mut tick = tokio::time::interval(config.stats_interval);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => stats.log(),
            msg = sub.next() => match msg {
                Some(msg) => on_frame_message(msg, &slots, &stats, &config, &mut limiter),
                None => {
                    warn!("frames subscription closed");
                    break;
                }
            },
        }
    }

    stats.set_ready(false);
    // Unsubscribing talks to the server, which may be gone: bounded like the flush below.
    let _ = tokio::time::timeout(Duration::from_secs(2), sub.unsubscribe()).await;
    let dropped = slots.close();
    info!(dropped_waiting = dropped, "intake stopped, finishing in-flight frames");
    if tokio::time::timeout(SHUTDOWN_DEADLINE, tracker.wait()).await.is_err() {
        return Err(Error::Worker(format!("workers still running after {SHUTDOWN_DEADLINE:?}")));
    }
    flush_bounded(&client).await;
    stats.log();
    Ok(())
}

/// Runs every predictor once on a blank 640×480 frame.
async fn warm_up(mut predictors: Vec<Box<dyn Predictor>>) -> Result<Vec<Box<dyn Predictor>>> {
    let t0 = Instant::now();
    let predictors = tokio::task::spawn_blocking(move || -> Result<_> {
        let blank = vec![114u8; 640 * 480 * 3];
        let image = ImageView::new(&blank, 640, 480, 640 * 3).map_err(|e| Error::Worker(e.to_string()))?;
        for p in &mut predictors {
            p.predict(std::slice::from_ref(&image)).map_err(|e| Error::Worker(format!("warm-up run failed: {e}")))?;
        }
        Ok(predictors)
    })
    .await
    .map_err(|e| Error::Worker(format!("warm-up panicked: {e}")))??;
    info!(ms = format!("{:.0}", t0.elapsed().as_secs_f64() * 1e3), "model warmed up");
    Ok(predictors)
}

struct CloseOnDrop(Arc<FrameSlots>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Starts each camera from its kept frame (the frames stream holds the newest per camera), so a
/// service that starts late does not wait for the next frame, nor for a paced file that waits
/// for it.
async fn seed_from_kept_frames(
    js: &jetstream::Context,
    slots: &FrameSlots,
    stats: &InferStats,
    config: &Config,
) -> std::result::Result<(), String> {
    let stream = js.get_stream(FRAMES_STREAM).await.map_err(|e| e.to_string())?;
    let mut subjects = stream.info_with_subjects(FRAMES_ALL).await.map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    while let Some(item) = subjects.next().await {
        names.push(item.map_err(|e| e.to_string())?.0);
    }
    let max_age_ns = config.max_frame_age.as_nanos() as i64;
    for name in names {
        let Some(camera) = subject::camera_of_frames(&name) else { continue };
        let Ok(msg) = stream.get_last_raw_message_by_subject(&name).await else { continue };
        let Ok(mut frame) = decode_frame(&msg.payload) else { continue };
        if frame.end_of_stream || (!frame.paced && now_ns() - frame.capture_ts_ns > max_age_ns) {
            continue;
        }
        frame.camera = camera.to_string();
        stats.received(camera.as_str(), frame.capture_ts_ns);
        // Kept frames came over the bus too: checked as any other.
        let Ok(frame) = CheckedFrame::new(frame, config.max_dimension) else {
            stats.dropped(camera.as_str(), DropReason::Invalid);
            continue;
        };
        if slots.offer(frame) != Offer::Stored {
            stats.dropped(camera.as_str(), DropReason::Replaced);
        }
    }
    Ok(())
}

fn on_frame_message(
    msg: async_nats::Message,
    slots: &FrameSlots,
    stats: &InferStats,
    config: &Config,
    limiter: &mut RateLimitedLog,
) {
    let Some(camera) = subject::camera_of_frames(&msg.subject) else {
        stats.dropped("?", DropReason::Invalid);
        limiter.warn("subject", || format!("frame on an invalid subject {}", msg.subject));
        return;
    };
    let cam = camera.as_str();
    let mut frame = match decode_frame(&msg.payload) {
        Ok(f) => f,
        Err(e) => {
            stats.received(cam, 0);
            stats.dropped(cam, DropReason::Invalid);
            limiter.warn(cam, || format!("camera {cam}: not a Frame: {e}"));
            return;
        }
    };
    stats.received(cam, if frame.end_of_stream || frame.paced { 0 } else { frame.capture_ts_ns });
    // The subject names the camera; a payload cannot claim another one.
    frame.camera = camera.to_string();
    let frame = match CheckedFrame::new(frame, config.max_dimension) {
        Ok(f) => f,
        Err(why) => {
            stats.dropped(cam, DropReason::Invalid);
            limiter.warn(cam, || format!("camera {cam}: frame refused: {why}"));
            return;
        }
    };
    match slots.offer(frame) {
        Offer::Stored => {}
        Offer::Replaced { .. } | Offer::Older => stats.dropped(cam, DropReason::Replaced),
    }
}

/// A frame's pixels, decoded.
enum Pixels {
    Decoded(Mat),
    Raw,
}

fn decode_pixels(f: &CheckedFrame) -> std::result::Result<Pixels, String> {
    match f.pixels() {
        frame::Pixels::Bgr8(_) => Ok(Pixels::Raw),
        frame::Pixels::Jpeg(jpeg) => {
            let buf = Vector::<u8>::from_slice(jpeg);
            let mat = imgcodecs::imdecode(&buf, imgcodecs::IMREAD_COLOR).map_err(|e| e.to_string())?;
            if mat.empty() {
                return Err("corrupt JPEG".into());
            }
            Ok(Pixels::Decoded(mat))
        }
        frame::Pixels::EndOfStream => Err("an end-of-stream marker has no pixels".into()),
    }
}

fn view<'a>(f: &'a CheckedFrame, px: &'a Pixels) -> pump_pose::Result<ImageView<'a>> {
    match px {
        Pixels::Raw => ImageView::new(&f.data, f.width as usize, f.height as usize, f.width as usize * 3),
        Pixels::Decoded(m) => {
            let data = m.data_bytes().map_err(|e| pump_pose::Error::Image(e.to_string()))?;
            let step = m.step1(0).map_err(|e| pump_pose::Error::Image(e.to_string()))?;
            ImageView::new(data, m.cols() as usize, m.rows() as usize, step)
        }
    }
}

/// A worker thread: takes work from the slots until they close, runs the predictor, and hands
/// the slots each frame's result, sending the poses they say are due (in frame order) to the
/// publisher.
fn worker_loop(
    id: usize,
    mut predictor: Box<dyn Predictor>,
    slots: &FrameSlots,
    stats: &InferStats,
    tx: &mpsc::Sender<PoseFrame>,
    cfg: &Config,
) {
    let _span = tracing::info_span!("infer_worker", worker = id).entered();
    let model = predictor.model();
    let provider = predictor.provider();
    let max_age_ns = cfg.max_frame_age.as_nanos() as i64;
    let mut limiter = RateLimitedLog::new(Duration::from_secs(5));
    while let Some(batch) = slots.take(cfg.batch, Duration::from_millis(250)) {
        let mut ready: Vec<(CheckedFrame, Ticket, Pixels)> = Vec::with_capacity(batch.len());
        for work in batch {
            match work {
                Work::EndOfStream(f) => {
                    let eos = PoseFrame {
                        camera: f.camera.clone(),
                        frame_id: f.frame_id,
                        capture_ts_ns: f.capture_ts_ns,
                        source_ts_ns: f.source_ts_ns,
                        segment: f.segment,
                        model: model.clone(),
                        provider: provider.into(),
                        end_of_stream: true,
                        ..Default::default()
                    };
                    let _ = tx.blocking_send(eos);
                }
                Work::Frame(f, ticket) => {
                    let cam = f.camera.clone();
                    if !f.paced && stats.age_ns(&cam, f.capture_ts_ns) > max_age_ns {
                        stats.dropped(&cam, DropReason::TooOld);
                        send_due(slots, tx, &cam, slots.finish(&cam, ticket, None));
                        continue;
                    }
                    match decode_pixels(&f) {
                        Ok(px) => ready.push((f, ticket, px)),
                        Err(e) => {
                            stats.dropped(&cam, DropReason::Undecodable);
                            limiter.warn(&cam, || format!("camera {cam}: frame {} undecodable: {e}", f.frame_id));
                            send_due(slots, tx, &cam, slots.finish(&cam, ticket, None));
                        }
                    }
                }
            }
        }
        if ready.is_empty() {
            continue;
        }
        let views: pump_pose::Result<Vec<ImageView<'_>>> = ready.iter().map(|(f, _, px)| view(f, px)).collect();
        let start = now_ns();
        let t0 = Instant::now();
        let result = views.and_then(|v| predictor.predict(&v));
        // A slower machine, on purpose: the pose rates a busy host delivers, reproducibly.
        if let Some(rest) = cfg.min_inference.checked_sub(t0.elapsed()) {
            std::thread::sleep(rest);
        }
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let end = now_ns();
        match result {
            Ok(people) => {
                for ((f, ticket, _), poses) in ready.iter().zip(people) {
                    stats.inferred(&f.camera, ms);
                    let pf = pose_frame(f, &poses, start, end, &model, provider);
                    send_due(slots, tx, &f.camera, slots.finish(&f.camera, *ticket, Some(pf)));
                }
            }
            Err(e) => {
                for (f, ticket, _) in &ready {
                    stats.failed(&f.camera);
                    limiter.warn(&f.camera, || format!("camera {}: inference failed: {e}", f.camera));
                    send_due(slots, tx, &f.camera, slots.finish(&f.camera, *ticket, None));
                }
            }
        }
    }
}

/// Sends a camera's poses that are due, in order, then those that fell due meanwhile (other
/// workers' results, which waited for these).
fn send_due(slots: &FrameSlots, tx: &mpsc::Sender<PoseFrame>, camera: &str, mut due: Vec<PoseFrame>) {
    while !due.is_empty() {
        for pf in due {
            // The publisher is gone only at shutdown: nothing left to deliver to.
            let _ = tx.blocking_send(pf);
        }
        due = slots.sent(camera);
    }
}

fn pose_frame(f: &Frame, poses: &[Pose], start: i64, end: i64, model: &str, provider: &str) -> PoseFrame {
    PoseFrame {
        camera: f.camera.clone(),
        frame_id: f.frame_id,
        capture_ts_ns: f.capture_ts_ns,
        source_ts_ns: f.source_ts_ns,
        segment: f.segment,
        inference_start_ns: start,
        inference_end_ns: end,
        width: f.width,
        height: f.height,
        model: model.into(),
        provider: provider.into(),
        people: poses.iter().map(pump_pose::proto::to_person).collect(),
        // Stamped by the publisher.
        ..Default::default()
    }
}

/// Names this process among the inference replicas: the host, the pid and the start time, so a
/// restarted replica (whose counters start again at zero) is a new instance.
fn instance_id() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "host".into());
    format!("{host}-{}-{:x}", std::process::id(), now_ns())
}

/// Publishes pose frames in the order the workers hand them over, stamping the publish time and
/// this instance's counters for the camera.
async fn publish_loop(
    client: async_nats::Client,
    mut rx: mpsc::Receiver<PoseFrame>,
    stats: Arc<InferStats>,
    instance: String,
) {
    while let Some(mut pf) = rx.recv().await {
        let Ok(camera) = CameraId::new(pf.camera.clone()) else { continue };
        pf.publish_ts_ns = now_ns();
        (pf.frames_received, pf.frames_dropped) = stats.counts(&pf.camera);
        pf.instance.clone_from(&instance);
        let age_ms = (pf.publish_ts_ns - pf.capture_ts_ns) as f64 / 1e6;
        if let Err(e) = pump_bus::publish::poses(&client, &camera, &pf).await {
            warn!(camera_id = %camera, error = %e, "publishing poses failed");
            continue;
        }
        stats.published(&pf.camera, age_ms, pf.end_of_stream);
    }
}

/// At most one warning per key per period, with the count of the ones held back.
struct RateLimitedLog {
    period: Duration,
    last: std::collections::HashMap<String, (Instant, u64)>,
}

impl RateLimitedLog {
    fn new(period: Duration) -> Self {
        Self { period, last: Default::default() }
    }

    fn warn(&mut self, key: &str, message: impl FnOnce() -> String) {
        let now = Instant::now();
        match self.last.get_mut(key) {
            Some((at, held)) if now.duration_since(*at) < self.period => *held += 1,
            Some((at, held)) => {
                warn!(suppressed = *held, "{}", message());
                *at = now;
                *held = 0;
            }
            None => {
                warn!("{}", message());
                self.last.insert(key.to_string(), (now, 0));
            }
        }
    }
}
