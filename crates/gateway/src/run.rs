//! The gateway, wired: the store, the camera book, the frame feeds, the gRPC service
//! ([`crate::grpc`]) and the HTTP port ([`crate::http`]), every task in one tracker; at shutdown
//! health says NOT_SERVING first, the gRPC server drains, then every task ends in turn.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pump_bus::streams::{ensure_streams_retrying, StreamLimits};
use pump_bus::subject::SETS_ALL;
use pump_proto::pose_query_server::PoseQueryServer;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::service::interceptor::InterceptedService;
use tracing::{info, warn};

use crate::grpc::PoseQueryImpl;
use crate::http::OpsState;
use crate::store::Store;

pub use crate::grpc::LIVE_MAX_AGE;

/// How long the tasks get to end after the server has drained.
const TASKS_GRACE: Duration = Duration::from_secs(2);

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
    /// Record a clip of each set, kept within these limits (`None`: serve clips, record none).
    pub clips: Option<crate::clips::ClipLimits>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("listener", &self.listener.local_addr().ok()).finish()
    }
}

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

/// Serves until `shutdown`: health NOT_SERVING until the streams exist, then SERVING; at
/// shutdown NOT_SERVING first, then the server drains and the tasks end.
pub async fn run(service: Service, shutdown: CancellationToken) -> anyhow::Result<()> {
    let Service { client, listener, limits, skipped, ops, snapshots, pose_rate_floor, access, tls, clips } = service;
    let http_tls = tls.as_ref().map(|t| t.http()).transpose().map_err(anyhow::Error::msg)?;
    // Every task stops on this: at shutdown, or when the server fails.
    let (tasks, stop_tasks) = (TaskTracker::new(), shutdown.child_token());
    let store = Store::new(client.clone());
    // As many cameras as the frames stream keeps: a flood of names forgets the longest-silent.
    let max_cameras = usize::try_from(limits.max_cameras).unwrap_or(pump_bus::ops::DEFAULT_MAX_CAMERAS);
    let book = Arc::new(crate::live::LiveCameras::with_floor(pose_rate_floor));
    book.set_max_cameras(max_cameras);
    tasks.spawn(crate::live::listen(book.clone(), client.clone(), stop_tasks.clone()));
    let clips = Arc::new(crate::clips::Clips::new(clips));
    clips.set_max_cameras(max_cameras);
    tasks.spawn(crate::clips::run(clips.clone(), book.clone(), client.clone(), stop_tasks.clone()));
    // Frames of the cameras someone watches (the preview) or snapshots with the skeleton.
    let feeds = crate::feeds::FrameFeeds::new(client.clone(), stop_tasks.clone(), tasks.clone());
    // Streams set up (once) and the bus connected (now): both needed to serve.
    let streams_ready = Arc::new(AtomicBool::new(false));
    if let Some(listener) = ops {
        let state = OpsState {
            client: client.clone(),
            store: store.clone(),
            book: book.clone(),
            feeds: feeds.clone(),
            snapshots: snapshots.clone(),
            skipped: skipped.clone(),
            streams_ready: streams_ready.clone(),
            clips: clips.clone(),
            access: access.clone(),
            tls: http_tls,
        };
        tasks.spawn(state.serve(listener, stop_tasks.clone()));
    }
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
        store: store.clone(),
        shutdown: stop_tasks.clone(),
        tasks: tasks.clone(),
        skipped,
        clips,
    };
    let addr = listener.local_addr()?;
    tasks.spawn(watch_health(store, client, limits, book, streams_ready, reporter.clone(), stop_tasks.clone()));
    info!(%addr, tls = tls.is_some(), token = !access.is_open(), "gateway serving gRPC");
    let stop = {
        let (reporter, shutdown) = (reporter.clone(), shutdown.clone());
        async move {
            shutdown.cancelled().await;
            set_health(&reporter, false).await;
        }
    };
    // A phone that walks out of Wi-Fi leaves a half-open connection: pings find it within a
    // minute. A unary call is cut after GRPC_REQUEST_TIMEOUT (streams only need their headers
    // by then), and one connection may have only so many calls open at once.
    let mut server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(GRPC_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(GRPC_KEEPALIVE_TIMEOUT))
        .tcp_keepalive(Some(GRPC_KEEPALIVE_INTERVAL))
        .timeout(GRPC_REQUEST_TIMEOUT)
        .max_concurrent_streams(Some(GRPC_CALLS_PER_CONNECTION))
        .concurrency_limit_per_connection(GRPC_CALLS_PER_CONNECTION as usize);
    if let Some(t) = &tls {
        server = server.tls_config(t.grpc().map_err(anyhow::Error::msg)?)?;
    }
    let guard = access.grpc();
    // Health stays open: probes carry no token.
    let served = server
        .add_service(health)
        .add_service(InterceptedService::new(reflection_v1, guard.clone()))
        .add_service(InterceptedService::new(reflection_v1alpha, guard.clone()))
        .add_service(PoseQueryServer::with_interceptor(query, guard))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop)
        .await;
    stop_tasks.cancel();
    tasks.close();
    if tokio::time::timeout(TASKS_GRACE, tasks.wait()).await.is_err() {
        warn!("gateway tasks still running after the shutdown deadline");
    }
    Ok(served?)
}

/// How often an idle gRPC connection is pinged, and how long the client has to answer.
const GRPC_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const GRPC_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest a call may take to answer (a page of sets, a snapshot), unless the client asks less.
const GRPC_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Calls (streams included) one connection may have open at once: a preview with every camera's
/// live streams needs tens.
const GRPC_CALLS_PER_CONNECTION: u32 = 256;

/// Sets the streams up (they may not exist yet: nats-server just started), loads the stored
/// sets for the preview, then keeps the streams there and says SERVING only while they are and
/// the bus is connected.
async fn watch_health(
    store: Store,
    client: async_nats::Client,
    limits: StreamLimits,
    book: Arc<crate::live::LiveCameras>,
    ready: Arc<AtomicBool>,
    reporter: tonic_health::server::HealthReporter,
    shutdown: CancellationToken,
) {
    match ensure_streams_retrying(store.jetstream(), &limits, &shutdown).await {
        Ok(true) => ready.store(true, Ordering::SeqCst),
        Ok(false) => return,
        Err(e) => {
            warn!(error = %e, "streams not set up");
            return;
        }
    }
    // The preview lists the last sets from the start, not only those closed since.
    match store.stored_sets(SETS_ALL.to_string(), 0.0, 0, 500).await {
        Ok((sets, _)) => sets.into_iter().for_each(|s| book.on_set(s)),
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
}
