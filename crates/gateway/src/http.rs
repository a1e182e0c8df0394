//! The gateway's HTTP port: `/healthz`, `/readyz`, `/metrics` and the preview, on the state the
//! gRPC side serves from.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use pump_bus::ops::{FRAMES_DROPPED, FRAMES_DROPPED_HELP};

use crate::feeds::FrameFeeds;
use crate::store::Store;

pub const JPEG_ENCODES: &str = "pump_gateway_jpeg_encodes_total";
pub const PREVIEWED_CAMERAS: &str = "pump_gateway_previewed_cameras";
pub const CLIPS_WRITTEN: &str = "pump_gateway_clips_written_total";
pub const CLIPS_FAILED: &str = "pump_gateway_clips_failed_total";
pub const CLIPS_HELD: &str = "pump_gateway_clips_held_bytes";

/// What the HTTP side (health, metrics, preview) reads: the state the gRPC side serves from.
pub(crate) struct OpsState {
    pub client: async_nats::Client,
    pub store: Store,
    pub book: Arc<crate::live::LiveCameras>,
    pub feeds: Arc<FrameFeeds>,
    pub snapshots: Arc<crate::snapshot::SnapshotCache>,
    pub skipped: Arc<AtomicU64>,
    /// The streams are set up (once, at start).
    pub streams_ready: Arc<std::sync::atomic::AtomicBool>,
    pub access: crate::access::Access,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub clips: Arc<crate::clips::Clips>,
}

impl OpsState {
    pub async fn serve(self, listener: tokio::net::TcpListener, token: CancellationToken) -> std::io::Result<()> {
        let preview = Arc::new(crate::preview::Preview {
            store: self.store.clone(),
            book: self.book.clone(),
            snapshots: self.snapshots.clone(),
            feeds: self.feeds.clone(),
            shutdown: token.clone(),
            clips: self.clips.clone(),
        });
        let routes = self.access.http(crate::preview::routes(preview.clone()));
        let tls = self.tls.clone();
        let state = Arc::new(self);
        let ops = pump_bus::ops::Ops {
            not_ready: {
                let state = state.clone();
                pump_bus::ops::ready_with_bus(state.client.clone(), move || {
                    (!state.streams_ready.load(Ordering::SeqCst))
                        .then(|| "streams not in place (being set up)".to_string())
                })
            },
            health: {
                let state = state.clone();
                Arc::new(move || state.health())
            },
            metrics: Arc::new(move || state.metrics(&preview.feeds)),
            // Its work is answering: a probe that gets an answer has it.
            stuck: pump_bus::ops::never_stuck(),
        };
        match tls {
            Some(acceptor) => {
                crate::access::serve_tls(listener, pump_bus::ops::app(ops, routes), acceptor, token).await
            }
            None => pump_bus::ops::serve_with(listener, ops, routes, token).await,
        }
    }

    /// Serving as gRPC health says it (streams set up and NATS connected), and each camera.
    fn health(&self) -> serde_json::Value {
        let connected = pump_bus::ops::is_connected(&self.client);
        serde_json::json!({
            "service": "pump-gateway",
            "serving": connected && self.streams_ready.load(Ordering::SeqCst),
            "nats_connected": connected,
            "cameras": self.book.health(),
        })
    }

    fn metrics(&self, feeds: &FrameFeeds) -> String {
        let mut p = pump_bus::ops::PromText::for_service(pump_bus::ops::nats_connected(&self.client));
        // Skipped for slow streaming clients (or waited past the live limit): newest wins.
        p.family(FRAMES_DROPPED, "counter", FRAMES_DROPPED_HELP);
        p.sample(
            FRAMES_DROPPED,
            &[("stage", "gateway"), ("reason", "slow_client")],
            self.skipped.load(Ordering::Relaxed) as f64,
        );
        // Posed frames the clip recorder could not keep up with.
        p.sample(
            FRAMES_DROPPED,
            &[("stage", "gateway"), ("reason", "clip_backlog")],
            self.clips.dropped.load(Ordering::Relaxed) as f64,
        );
        p.single(
            JPEG_ENCODES,
            "counter",
            "Snapshot and preview JPEGs encoded.",
            self.snapshots.encodes.load(Ordering::Relaxed) as f64,
        );
        p.single(PREVIEWED_CAMERAS, "gauge", "Cameras with a live preview open.", feeds.watched() as f64);
        p.single(CLIPS_WRITTEN, "counter", "Set clips written.", self.clips.written.load(Ordering::Relaxed) as f64);
        p.single(
            CLIPS_FAILED,
            "counter",
            "Set clips that could not be written.",
            self.clips.failed.load(Ordering::Relaxed) as f64,
        );
        p.single(
            CLIPS_HELD,
            "gauge",
            "Bytes of frames held for clips: waiting for their pose, posed, queued.",
            self.clips.held_bytes() as f64,
        );
        self.book.prometheus(&mut p);
        p.finish()
    }
}
