//! The gRPC server over the NATS streams.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_nats::jetstream::{self, consumer};
use futures::{Stream, StreamExt};
use prost::Message;
use pump_bus::streams::{ensure_streams_retrying, StreamLimits, FRAMES_STREAM, POSES_STREAM, SETS_STREAM};
use pump_bus::subject::{self, CameraId, FRAMES_ALL, POSES_ALL, SETS_ALL};
use pump_proto::pose_query_server::{PoseQuery, PoseQueryServer};
use pump_proto::{
    CameraInfo, Frame, GetLatestPosesRequest, GetSnapshotRequest, ListCamerasRequest, ListCamerasResponse,
    ListSetsRequest, ListSetsResponse, PoseFrame, RepProgress, SetEvent, Snapshot, StreamPosesRequest,
    StreamRepsRequest, StreamSetsRequest,
};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use crate::snapshot::Overlay;

/// A camera whose newest frame is older than this has no snapshot (NOT_FOUND, not a stale frame).
pub(crate) const SNAPSHOT_MAX_AGE_S: f64 = 5.0;

/// Pose frames buffered per streaming client; a slower client skips ahead (newest wins).
const STREAM_BUFFER: usize = 16;

/// A live stream never hands a client a message that waited longer than this in the gateway: a
/// client that stalled gets fresh poses when it reads again, not the backlog of the stall.
pub const LIVE_MAX_AGE: Duration = Duration::from_millis(1500);

/// What the gateway runs with; tests pass their own client and a listener on port 0.
pub struct Service {
    pub client: async_nats::Client,
    pub listener: tokio::net::TcpListener,
    pub limits: StreamLimits,
    /// Pose frames skipped for slow streaming clients.
    pub skipped: Arc<AtomicU64>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served, if anywhere.
    pub ops: Option<tokio::net::TcpListener>,
    /// Snapshot JPEGs, encoded once per frame.
    pub snapshots: Arc<crate::snapshot::SnapshotCache>,
    /// Poses a second under which a camera's rep counts are not exact (said per camera).
    pub pose_rate_floor: f64,
    /// The token clients must present (gRPC and the preview), if any.
    pub access: crate::access::Access,
    /// A certificate: both ports speak TLS only.
    pub tls: Option<crate::access::TlsFiles>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("listener", &self.listener.local_addr().ok()).finish()
    }
}

/// Maps failures to gRPC codes, in one place.
pub mod status {
    use tonic::Status;

    pub fn bad_camera(name: &str) -> Status {
        Status::invalid_argument(format!("camera: {name:?} is not a camera name (letters, digits, '-', '_')"))
    }

    /// A camera nothing is kept of.
    pub fn unknown_camera(name: &str) -> Status {
        Status::not_found(format!("unknown camera {name:?}: no frames or poses kept for it"))
    }

    /// A camera with frames but no pose yet (inference down or starting).
    pub fn no_poses(name: &str) -> Status {
        Status::not_found(format!("camera {name:?} has no poses yet"))
    }

    pub fn bus(e: impl std::fmt::Display) -> Status {
        Status::unavailable(format!("message bus unavailable: {e}"))
    }
}

struct PoseQueryImpl {
    book: Arc<crate::book::CameraBook>,
    feeds: Arc<crate::preview::FrameFeeds>,
    snapshots: Arc<crate::snapshot::SnapshotCache>,
    client: async_nats::Client,
    js: jetstream::Context,
    shutdown: CancellationToken,
    skipped: Arc<AtomicU64>,
}

fn camera(name: &str) -> Result<CameraId, Status> {
    CameraId::new(name).map_err(|_| status::bad_camera(name))
}

impl PoseQueryImpl {
    async fn latest(&self, camera: &CameraId) -> Result<PoseFrame, Status> {
        let stream = self.js.get_stream(POSES_STREAM).await.map_err(status::bus)?;
        match stream.get_last_raw_message_by_subject(&subject::poses(camera)).await {
            Ok(m) => PoseFrame::decode(m.payload).map_err(|e| Status::internal(format!("stored pose frame: {e}"))),
            Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {
                if camera_names(&self.js).await?.contains(camera) {
                    Err(status::no_poses(camera.as_str()))
                } else {
                    Err(status::unknown_camera(camera.as_str()))
                }
            }
            Err(e) => Err(status::bus(e)),
        }
    }
}

#[tonic::async_trait]
impl PoseQuery for PoseQueryImpl {
    async fn list_cameras(&self, _: Request<ListCamerasRequest>) -> Result<Response<ListCamerasResponse>, Status> {
        let names = camera_names(&self.js).await?;
        let frames = self.js.get_stream(FRAMES_STREAM).await.map_err(status::bus)?;
        let mut cameras = Vec::new();
        for cam in names {
            let mut info = CameraInfo {
                camera: cam.to_string(),
                pose_rate_floor: self.book.pose_rate_floor,
                ..Default::default()
            };
            match self.latest(&cam).await {
                Ok(p) => {
                    (info.last_pose_ns, info.last_frame_id) = (p.publish_ts_ns, p.frame_id);
                    info.ended = p.end_of_stream;
                }
                Err(e) if e.code() == tonic::Code::NotFound => {}
                Err(e) => return Err(e),
            }
            if let Ok(m) = frames.get_last_raw_message_by_subject(&subject::frames(&cam)).await {
                if let Ok(f) = Frame::decode(m.payload) {
                    // The camera's own word on whether it ended beats its last pose's.
                    info.last_frame_ns = f.capture_ts_ns;
                    info.ended = f.end_of_stream;
                }
            }
            if let Some(r) = self.book.rates(cam.as_str()) {
                (info.frame_fps, info.pose_fps, info.inference_fps) = (r.frame_fps, r.pose_fps, r.inference_fps);
                (info.frames_received, info.frames_dropped) = (r.received, r.dropped);
                info.below_pose_rate_floor = r.below_floor;
            }
            cameras.push(info);
        }
        Ok(Response::new(ListCamerasResponse { cameras }))
    }

    async fn get_latest_poses(&self, req: Request<GetLatestPosesRequest>) -> Result<Response<PoseFrame>, Status> {
        let cam = camera(&req.get_ref().camera)?;
        Ok(Response::new(self.latest(&cam).await?))
    }

    type StreamPosesStream = LiveStream<PoseFrame>;

    async fn stream_poses(
        &self,
        req: Request<StreamPosesRequest>,
    ) -> Result<Response<Self::StreamPosesStream>, Status> {
        let r = req.get_ref();
        let cam = camera(&r.camera)?;
        if !r.wait_for_camera && !camera_names(&self.js).await?.contains(&cam) {
            return Err(status::unknown_camera(cam.as_str()));
        }
        if r.from_ns == 0 {
            return self.live(subject::poses(&cam)).await.map(Response::new);
        }
        let start_time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.from_ns))
            .map_err(|e| Status::invalid_argument(format!("from_ns: {e}")))?;
        // One ordered consumer reads the history and then keeps going live: the same cursor
        // throughout, so nothing falls between the two and nothing comes twice.
        let stream = self.js.get_stream(POSES_STREAM).await.map_err(status::bus)?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: subject::poses(&cam),
                deliver_policy: consumer::DeliverPolicy::ByStartTime { start_time },
                ..Default::default()
            })
            .await
            .map_err(status::bus)?;
        let messages = consumer.messages().await.map_err(status::bus)?;
        Ok(Response::new(self.forward_stored(messages)))
    }

    async fn list_sets(&self, req: Request<ListSetsRequest>) -> Result<Response<ListSetsResponse>, Status> {
        let r = req.get_ref();
        if !r.since_s.is_finite() {
            return Err(Status::invalid_argument(format!("since_s: {} is not a time", r.since_s)));
        }
        let filter = if r.camera.is_empty() { SETS_ALL.to_string() } else { subject::sets(&camera(&r.camera)?) };
        let limit = if r.limit == 0 { 100 } else { r.limit as usize };
        Ok(Response::new(ListSetsResponse { sets: stored_sets(&self.js, filter, r.since_s, limit).await? }))
    }

    type StreamSetsStream = LiveStream<SetEvent>;

    async fn stream_sets(&self, req: Request<StreamSetsRequest>) -> Result<Response<Self::StreamSetsStream>, Status> {
        let cam = camera(&req.get_ref().camera)?;
        let stream = self.js.get_stream(SETS_STREAM).await.map_err(status::bus)?;
        let consumer: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                filter_subject: subject::sets(&cam),
                deliver_policy: consumer::DeliverPolicy::New,
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(status::bus)?;
        let messages = consumer.messages().await.map_err(status::bus)?;
        // Sets are rare and must not be skipped: a slow client holds up its own consumer only.
        Ok(Response::new(self.forward_stored(messages)))
    }

    async fn get_snapshot(&self, req: Request<GetSnapshotRequest>) -> Result<Response<Snapshot>, Status> {
        let r = req.get_ref();
        let cam = camera(&r.camera)?;
        let kept = newest_frame(&self.js, &cam).await?;
        // With the skeleton: the newest frame whose pose is out (its own pose only); none within
        // a second, the newest frame drawn with nobody.
        let (frame, poses) = if r.overlay {
            crate::preview::frame_with_pose(&self.feeds, &self.book, &cam, kept).await
        } else {
            (Arc::new(kept), None)
        };
        let nobody = PoseFrame::default();
        let overlay = r.overlay.then(|| Overlay { poses: Some(poses.as_deref().unwrap_or(&nobody)), caption: None });
        let jpeg = self.snapshots.jpeg(&frame, overlay).map_err(|e| Status::internal(format!("snapshot: {e}")))?;
        Ok(Response::new(Snapshot {
            camera: cam.to_string(),
            frame_id: frame.frame_id,
            capture_ts_ns: frame.capture_ts_ns,
            width: frame.width,
            height: frame.height,
            jpeg,
        }))
    }

    type StreamRepsStream = LiveStream<RepProgress>;

    async fn stream_reps(&self, req: Request<StreamRepsRequest>) -> Result<Response<Self::StreamRepsStream>, Status> {
        let cam = camera(&req.get_ref().camera)?;
        self.live(subject::reps(&cam)).await.map(Response::new)
    }
}

/// Every camera with kept frames or poses. A camera with frames but no poses yet (inference
/// down) is one too.
pub(crate) async fn camera_names(js: &jetstream::Context) -> Result<std::collections::BTreeSet<CameraId>, Status> {
    let mut names = std::collections::BTreeSet::new();
    for (stream, all) in [(POSES_STREAM, POSES_ALL), (FRAMES_STREAM, FRAMES_ALL)] {
        let stream = js.get_stream(stream).await.map_err(status::bus)?;
        let mut subjects = stream.info_with_subjects(all).await.map_err(status::bus)?;
        while let Some(item) = subjects.next().await {
            let name = item.map_err(status::bus)?.0;
            if let Some(cam) = subject::camera_of_poses(&name).or_else(|| subject::camera_of_frames(&name)) {
                names.insert(cam);
            }
        }
    }
    Ok(names)
}

/// The camera's newest kept frame, if it is fresh: a camera silent for longer than
/// [`SNAPSHOT_MAX_AGE_S`], or whose stream ended, is NOT_FOUND, never its stale frame.
pub(crate) async fn newest_frame(js: &jetstream::Context, cam: &CameraId) -> Result<Frame, Status> {
    let frames = js.get_stream(FRAMES_STREAM).await.map_err(status::bus)?;
    let frame = match frames.get_last_raw_message_by_subject(&subject::frames(cam)).await {
        Ok(m) => Frame::decode(m.payload).map_err(|e| Status::internal(format!("stored frame: {e}")))?,
        Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {
            return Err(status::unknown_camera(cam.as_str()))
        }
        Err(e) => return Err(status::bus(e)),
    };
    if frame.end_of_stream {
        return Err(Status::not_found(format!("camera {cam}'s stream has ended")));
    }
    if !is_fresh(&frame) {
        let age_s = (pump_bus::clock::now_ns() - frame.capture_ts_ns) as f64 / 1e9;
        return Err(Status::not_found(format!("camera {cam} has been silent for {age_s:.0} s")));
    }
    Ok(frame)
}

/// A frame worth showing: not an end of stream, captured within [`SNAPSHOT_MAX_AGE_S`].
pub(crate) fn is_fresh(frame: &Frame) -> bool {
    let age_s = (pump_bus::clock::now_ns() - frame.capture_ts_ns) as f64 / 1e9;
    !frame.end_of_stream && age_s <= SNAPSHOT_MAX_AGE_S
}

/// Closed sets on `filter` stored at or after `since_s`, oldest first, the newest `limit` of them.
pub(crate) async fn stored_sets(
    js: &jetstream::Context,
    filter: String,
    since_s: f64,
    limit: usize,
) -> Result<Vec<SetEvent>, Status> {
    let stream = js.get_stream(SETS_STREAM).await.map_err(status::bus)?;
    let mut consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: filter,
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .map_err(status::bus)?;
    let mut pending = consumer.info().await.map_err(status::bus)?.num_pending;
    let mut sets = std::collections::VecDeque::new();
    if pending > 0 {
        let mut messages = consumer.messages().await.map_err(status::bus)?;
        while pending > 0 {
            let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
                .await
                .map_err(|_| status::bus("reading the sets stream timed out"))?
                .ok_or_else(|| status::bus("sets stream closed"))?
                .map_err(status::bus)?;
            let info = msg.info().map_err(status::bus)?;
            pending = info.pending;
            let stored = info.published.unix_timestamp_nanos() as f64 / 1e9;
            if stored >= since_s {
                if let Ok(set) = SetEvent::decode(msg.payload.clone()) {
                    sets.push_back(set);
                    if sets.len() > limit {
                        sets.pop_front();
                    }
                }
            }
        }
    }
    Ok(sets.into())
}

type LiveStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

impl PoseQueryImpl {
    /// Forwards messages stored in a stream, in order, none skipped: a slow client only makes its
    /// own consumer lag (the stream holds the messages, not the gateway).
    fn forward_stored<T, S, E>(&self, mut messages: S) -> LiveStream<T>
    where
        T: Message + Default + Send + 'static,
        S: Stream<Item = Result<jetstream::Message, E>> + Send + Unpin + 'static,
        E: Send + 'static,
    {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tx.closed() => break,
                    m = messages.next() => m,
                };
                let Some(Ok(msg)) = msg else { break };
                let Ok(item) = T::decode(msg.payload.clone()) else { continue };
                if tx.send(Ok(item)).await.is_err() {
                    break;
                }
            }
        });
        Box::pin(ReceiverStream::new(rx))
    }

    /// Forwards a subject's messages to a client as they arrive. The producer ends when the client
    /// goes away, the bus closes or the gateway shuts down; a slow client skips messages rather
    /// than making the gateway buffer them.
    async fn live<T: Message + Default + Send + 'static>(&self, subject: String) -> Result<LiveStream<T>, Status> {
        let mut sub = self.client.subscribe(subject).await.map_err(status::bus)?;
        let (tx, rx) = mpsc::channel::<(tokio::time::Instant, Result<T, Status>)>(STREAM_BUFFER);
        let (shutdown, skipped) = (self.shutdown.clone(), self.skipped.clone());
        let stale = skipped.clone();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tx.closed() => break,
                    m = sub.next() => m,
                };
                let Some(msg) = msg else { break };
                let Ok(item) = T::decode(msg.payload) else { continue };
                match tx.try_send((tokio::time::Instant::now(), Ok(item))) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        skipped.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => break,
                }
            }
            let _ = sub.unsubscribe().await;
        });
        // Aged when the client takes it, by the gateway's own clock: what waited past
        // LIVE_MAX_AGE for a stalled client is skipped. (What HTTP/2 already carried sits in the
        // client's receive window, which the client sizes.)
        let fresh = ReceiverStream::new(rx).filter_map(move |(received, item)| {
            let keep = received.elapsed() <= LIVE_MAX_AGE;
            if !keep {
                stale.fetch_add(1, Ordering::Relaxed);
            }
            std::future::ready(keep.then_some(item))
        });
        Ok(Box::pin(fresh))
    }
}

/// What the HTTP side (health, metrics, preview) reads: the state the gRPC side serves from.
struct OpsState {
    client: async_nats::Client,
    js: jetstream::Context,
    book: Arc<crate::book::CameraBook>,
    feeds: Arc<crate::preview::FrameFeeds>,
    snapshots: Arc<crate::snapshot::SnapshotCache>,
    skipped: Arc<AtomicU64>,
    /// The streams are set up (once, at start).
    streams_ready: Arc<std::sync::atomic::AtomicBool>,
    access: crate::access::Access,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl OpsState {
    async fn serve(self, listener: tokio::net::TcpListener, token: CancellationToken) -> std::io::Result<()> {
        let preview = Arc::new(crate::preview::Preview {
            js: self.js.clone(),
            book: self.book.clone(),
            snapshots: self.snapshots.clone(),
            feeds: self.feeds.clone(),
            shutdown: token.clone(),
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

    fn metrics(&self, feeds: &crate::preview::FrameFeeds) -> String {
        let mut p = pump_bus::ops::PromText::for_service(pump_bus::ops::nats_connected(&self.client));
        p.single(
            "pump_gateway_skipped_total",
            "counter",
            "Messages skipped for slow streaming clients.",
            self.skipped.load(Ordering::Relaxed) as f64,
        );
        p.single(
            "pump_gateway_jpeg_encodes_total",
            "counter",
            "Snapshot and preview JPEGs encoded.",
            self.snapshots.encodes.load(Ordering::Relaxed) as f64,
        );
        p.single(
            "pump_gateway_previewed_cameras",
            "gauge",
            "Cameras with a live preview open.",
            feeds.watched() as f64,
        );
        self.book.prometheus(&mut p);
        p.finish()
    }
}

/// Serves until `shutdown`: health NOT_SERVING until the streams exist, then SERVING; at
/// shutdown NOT_SERVING first, then the server drains.
/// Says whether the gateway serves, for its service's name and for "" (the whole server, which
/// default probes such as Kubernetes' ask): both follow the bus.
async fn set_health(reporter: &tonic_health::server::HealthReporter, serving: bool) {
    let status = if serving { tonic_health::ServingStatus::Serving } else { tonic_health::ServingStatus::NotServing };
    if serving {
        reporter.set_serving::<PoseQueryServer<PoseQueryImpl>>().await;
    } else {
        reporter.set_not_serving::<PoseQueryServer<PoseQueryImpl>>().await;
    }
    reporter.set_service_status("", status).await;
}

pub async fn run(service: Service, shutdown: CancellationToken) -> anyhow::Result<()> {
    let Service { client, listener, limits, skipped, ops, snapshots, pose_rate_floor, access, tls } = service;
    let http_tls = tls.as_ref().map(|t| t.http()).transpose().map_err(anyhow::Error::msg)?;
    let book = Arc::new(crate::book::CameraBook::with_floor(pose_rate_floor));
    let js = jetstream::new(client.clone());
    let listening = tokio::spawn(crate::book::listen(book.clone(), client.clone(), shutdown.clone()));
    // Frames of the cameras someone watches (the preview) or snapshots with the skeleton.
    let feeds = crate::preview::FrameFeeds::new(client.clone(), shutdown.clone());
    // Streams set up (once) and the bus connected (now): both needed to serve.
    let streams_ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ops_task = ops.map(|listener| {
        let token = shutdown.child_token();
        let state = OpsState {
            client: client.clone(),
            js: js.clone(),
            book: book.clone(),
            feeds: feeds.clone(),
            snapshots: snapshots.clone(),
            skipped: skipped.clone(),
            streams_ready: streams_ready.clone(),
            access: access.clone(),
            tls: http_tls,
        };
        (tokio::spawn(state.serve(listener, token.clone())), token)
    });
    let (reporter, health) = tonic_health::server::health_reporter();
    set_health(&reporter, false).await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pump_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pump_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let query = PoseQueryImpl {
        book: book.clone(),
        feeds,
        snapshots,
        client: client.clone(),
        js: js.clone(),
        shutdown: shutdown.clone(),
        skipped,
    };
    let addr = listener.local_addr()?;
    // The streams may not exist yet (nats-server just started); the bus may come and go. Health
    // says SERVING only while both are there.
    let watch_health = {
        let (reporter, shutdown, ready, client, book) =
            (reporter.clone(), shutdown.clone(), streams_ready.clone(), client.clone(), book.clone());
        tokio::spawn(async move {
            match ensure_streams_retrying(&js, &limits, &shutdown).await {
                Ok(true) => ready.store(true, Ordering::SeqCst),
                Ok(false) => return,
                Err(e) => {
                    warn!(error = %e, "streams not set up");
                    return;
                }
            }
            // The preview lists the last sets from the start, not only those closed since.
            match stored_sets(&js, SETS_ALL.to_string(), 0.0, 500).await {
                Ok(sets) => sets.into_iter().for_each(|s| book.on_set(s)),
                Err(e) => warn!(error = %e, "could not read the stored sets"),
            }
            // The streams again after every reconnection (a restarted server forgets them).
            let keeper = pump_bus::streams::keep_streams(client.clone(), limits, ready.clone(), shutdown.clone());
            let health = async {
                let mut serving = false;
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tick.tick() => {}
                    }
                    let now = pump_bus::ops::is_connected(&client) && ready.load(Ordering::SeqCst);
                    if now != serving {
                        serving = now;
                        if serving {
                            info!("serving: streams set up and connected to NATS");
                            set_health(&reporter, true).await;
                        } else {
                            warn!("not serving: lost the connection to NATS, or the streams");
                            set_health(&reporter, false).await;
                        }
                    }
                }
            };
            tokio::join!(keeper, health);
        })
    };
    info!(%addr, tls = tls.is_some(), token = !access.is_open(), "gateway serving gRPC");
    let stop = {
        let (reporter, shutdown) = (reporter.clone(), shutdown.clone());
        async move {
            shutdown.cancelled().await;
            set_health(&reporter, false).await;
        }
    };
    let mut server = tonic::transport::Server::builder();
    if let Some(t) = &tls {
        server = server.tls_config(t.grpc().map_err(anyhow::Error::msg)?)?;
    }
    let guard = access.grpc();
    // Health stays open: probes carry no token.
    server
        .add_service(health)
        .add_service(InterceptedService::new(reflection_v1, guard.clone()))
        .add_service(InterceptedService::new(reflection_v1alpha, guard.clone()))
        .add_service(PoseQueryServer::with_interceptor(query, guard))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop)
        .await?;
    watch_health.abort();
    listening.abort();
    if let Some((task, token)) = ops_task {
        token.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    Ok(())
}
