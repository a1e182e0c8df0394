//! The capture service, wired: per camera, a reader thread that never waits for anyone
//! ([`crate::reader`]: one loop for every kind of source) and a publisher that sends its frames to
//! `pump.frames.<camera>` ([`crate::publish`]).
//!
//! - Live sources ([`crate::live`]): connection cycles under a stall watchdog, reconnected with
//!   a capped exponential backoff; the newest frame wins.
//! - Paced files (default, [`crate::file`]): frame N+1 is read only after the pose of frame N
//!   came back (or `pace_timeout` passed): lossless and deterministic. Then end of stream.
//! - Realtime files (`realtime`): replayed at their own frame rate as if live, then end of stream.
//!
//! Shutdown: tell readers to stop, let each in-flight read finish, release cameras, flush NATS.

use std::sync::Arc;
use std::time::Duration;

use pump_bus::connect::flush_bounded;
use pump_bus::streams::ensure_streams_retrying;
use pump_bus::subject::CameraId;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn, Instrument};

use crate::camera::{CameraFactory, OpenCvCamera, SourceSpec};
use crate::config::{Config, FrameEncoding};
use crate::encode::EncodedFrame;
use crate::error::Result;
use crate::file::{play_paced, play_realtime};
use crate::live::supervise_live;
use crate::metrics::CaptureStats;
use crate::publish::publish_latest;
use crate::reader::{CameraCtx, READ_GRACE};

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

/// Everything the service runs with; tests build it with their own client and fake cameras.
pub struct Service {
    pub config: Config,
    pub client: async_nats::Client,
    pub cameras: Vec<CameraInput>,
    pub stats: Arc<CaptureStats>,
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
        Self { config, client, cameras, stats: Arc::default(), ops: None }
    }
}

/// Runs until every file source has ended and, with live sources, until `shutdown`.
pub async fn run(service: Service, shutdown: CancellationToken) -> Result<()> {
    let Service { config, client, cameras, stats, ops } = service;
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
            // A camera that stops is reopened (--stall-timeout-ms): none holds the service up.
            stuck: pump_bus::ops::never_stuck(),
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
                tracker.spawn(play_paced(ctx, client.clone(), cam.factory).instrument(span));
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
