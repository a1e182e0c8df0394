//! The inference service: frames in from `pump.frames.>`, newest-frame-wins slots, workers
//! running the predictor, poses out on `pump.poses.<camera>`.
//!
//! Shutdown order: stop intake (unsubscribe), close the slots (waiting frames are dropped, the
//! in-flight ones finish), let the publisher drain, flush NATS, return.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use pump_bus::clock::now_ns;
use pump_bus::connect::flush_bounded;
use pump_bus::streams::ensure_streams_retrying;
use pump_bus::subject::{CameraId, FRAMES_ALL};
use pump_pose::ImageView;
use pump_proto::PoseFrame;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::{Config, Intake};
use crate::error::{Error, Result};
use crate::intake::{on_frame_message, seed_from_kept_frames};
use crate::metrics::InferStats;
use crate::predictor::Predictor;
use crate::pull::PullIntake;
use crate::slot::FrameSlots;
use crate::worker::worker_loop;
use pump_bus::ratelog::RateLimitedLog;

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
    let mut intake = match config.intake {
        Intake::Queue => Frames::Queue(
            client
                .queue_subscribe(FRAMES_ALL, config.queue_group.clone())
                .await
                .map_err(|source| Error::Subscribe { subject: FRAMES_ALL.into(), source })?,
        ),
        Intake::Pull => Frames::Pull(Box::new(PullIntake::new(
            js.clone(),
            config.queue_group.clone(),
            predictors.len() * config.batch,
        ))),
    };
    // As many frames of a camera in flight as there are engines: a lone fast camera keeps them
    // all busy; the slots put its poses back in frame order.
    let max_cameras = usize::try_from(config.limits.max_cameras).unwrap_or(pump_bus::ops::DEFAULT_MAX_CAMERAS);
    let slots = Arc::new(FrameSlots::new(predictors.len()).with_max_cameras(max_cameras));
    stats.set_max_cameras(max_cameras);
    // Should this future be dropped instead of shut down (its runtime going away), the worker
    // threads must still end: nothing else would wake them.
    let _close_on_drop = CloseOnDrop(slots.clone());
    let mut limiter = RateLimitedLog::new(Duration::from_secs(5));
    // Pulled, the shared consumer starts at the kept frames; seeding them too would infer them twice.
    if config.intake == Intake::Queue {
        if let Err(e) = seed_from_kept_frames(&js, &slots, &stats, &config).await {
            warn!(error = %e, "could not read the kept frames; starting from live ones");
        }
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
            stuck: {
                let (stats, slots) = (stats.clone(), slots.clone());
                let progress = std::sync::Mutex::new(pump_bus::ops::Progress::new(config.stuck_after));
                Arc::new(move || {
                    let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
                    // Judged once warmed up: a first run (a GPU's engine build) may take minutes.
                    p.stuck(stats.runs_done(), stats.is_ready() && slots.waiting() > 0, Instant::now())
                })
            },
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
            msg = intake.next(&slots) => match msg {
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
    if let Frames::Queue(sub) = &mut intake {
        let _ = tokio::time::timeout(Duration::from_secs(2), sub.unsubscribe()).await;
    }
    // Pulled: the open request is given up (the server forgets it within its second; a frame it
    // hands out meanwhile is lost as a frame on the wire is, the next goes to another replica).
    drop(intake);
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

/// Where frames come from: the queue group's subscription, or pulled when there is room.
enum Frames {
    Queue(async_nats::Subscriber),
    Pull(Box<PullIntake>),
}

impl Frames {
    /// The next frame message; `None` once the subscription is closed (pulling never ends).
    async fn next(&mut self, slots: &FrameSlots) -> Option<async_nats::Message> {
        match self {
            Self::Queue(sub) => sub.next().await,
            Self::Pull(pull) => Some(pull.next(slots).await),
        }
    }
}

struct CloseOnDrop(Arc<FrameSlots>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
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
        let age_ms = pf.publish_ts_ns.saturating_sub(pf.capture_ts_ns) as f64 / 1e6;
        if let Err(e) = pump_bus::publish::poses(&client, &camera, &pf).await {
            warn!(camera_id = %camera, error = %e, "publishing poses failed");
            continue;
        }
        stats.published(&pf.camera, age_ms, pf.end_of_stream);
    }
}
