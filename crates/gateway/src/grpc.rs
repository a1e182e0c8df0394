//! `pump.v1.PoseQuery`: the gRPC face, on the [`Store`] and the camera book.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use prost::Message;
use pump_bus::subject::{self, SETS_ALL};
use pump_proto::pose_query_server::PoseQuery;
use pump_proto::{
    CameraInfo, ClipChunk, GetLatestPosesRequest, GetSetClipRequest, GetSnapshotRequest, ListCamerasRequest,
    ListCamerasResponse, ListSetsRequest, ListSetsResponse, PoseFrame, RepProgress, SetEvent, Snapshot,
    StreamPosesRequest, StreamRepsRequest, StreamSetsRequest,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status};

/// The most sets one ListSets page holds, whatever `limit` asks.
const MAX_LIST_SETS: usize = 1000;

use crate::error::{camera, ErrorCode, ServiceError};
use crate::feeds::FrameFeeds;
use crate::live::LiveCameras;
use crate::snapshot::{Drawing, SnapshotCache};
use crate::store::{Store, StoreError};

/// Messages buffered per streaming client; a slower live client skips ahead (newest wins).
const STREAM_BUFFER: usize = 16;

/// A live stream never hands a client a message that waited longer than this in the gateway: a
/// client that stalled gets fresh poses when it reads again, not the backlog of the stall.
pub const LIVE_MAX_AGE: Duration = Duration::from_millis(1500);

type LiveStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// How a stream reaches a slow client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Every message, in order: read from a stream, so a slow client only makes its own
    /// consumer lag (the stream holds the messages, not the gateway).
    Every,
    /// As it happens: a slow client skips messages (counted) rather than making the gateway
    /// buffer them, and none older than [`LIVE_MAX_AGE`].
    Live,
}

pub(crate) struct PoseQueryImpl {
    pub book: Arc<LiveCameras>,
    pub feeds: Arc<FrameFeeds>,
    pub snapshots: Arc<SnapshotCache>,
    pub client: async_nats::Client,
    pub store: Store,
    pub shutdown: CancellationToken,
    /// Where the forwarding tasks run, so shutdown waits for them.
    pub tasks: TaskTracker,
    pub skipped: Arc<AtomicU64>,
    pub clips: Arc<crate::clips::Clips>,
}

impl PoseQueryImpl {
    /// Forwards `source`'s messages to a client until it goes away, the source ends or the
    /// gateway shuts down.
    fn forward<T, S>(&self, mut source: S, delivery: Delivery) -> LiveStream<T>
    where
        T: Message + Default + Send + 'static,
        S: Stream<Item = Bytes> + Send + Unpin + 'static,
    {
        let (tx, rx) = mpsc::channel::<(tokio::time::Instant, T)>(STREAM_BUFFER);
        let (shutdown, skipped) = (self.shutdown.clone(), self.skipped.clone());
        self.tasks.spawn(async move {
            loop {
                let payload = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tx.closed() => break,
                    m = source.next() => m,
                };
                let Some(payload) = payload else { break };
                let Ok(item) = T::decode(payload) else { continue };
                let item = (tokio::time::Instant::now(), item);
                match delivery {
                    Delivery::Every => {
                        let sent = tokio::select! {
                            _ = shutdown.cancelled() => break,
                            r = tx.send(item) => r,
                        };
                        if sent.is_err() {
                            break;
                        }
                    }
                    Delivery::Live => match tx.try_send(item) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            skipped.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => break,
                    },
                }
            }
        });
        // Aged when the client takes it, by the gateway's own clock: what waited past
        // LIVE_MAX_AGE for a stalled client is skipped. (What HTTP/2 already carried sits in the
        // client's receive window, which the client sizes.)
        let stale = self.skipped.clone();
        Box::pin(ReceiverStream::new(rx).filter_map(move |(received, item)| {
            let keep = delivery == Delivery::Every || received.elapsed() <= LIVE_MAX_AGE;
            if !keep {
                stale.fetch_add(1, Ordering::Relaxed);
            }
            std::future::ready(keep.then_some(Ok(item)))
        }))
    }

    /// A subject's messages as they arrive (core NATS; unsubscribed when forwarding ends).
    async fn live<T: Message + Default + Send + 'static>(&self, subject: String) -> Result<LiveStream<T>, Status> {
        let sub = self.client.subscribe(subject).await.map_err(ServiceError::bus)?;
        // The server has the subscription before the client gets its stream: what is published
        // once the call returned reaches it.
        self.client.flush().await.map_err(ServiceError::bus)?;
        Ok(self.forward(sub.map(|m| m.payload), Delivery::Live))
    }

    /// A stream consumer's messages, every one, until its first error.
    fn stored<T, S, E>(&self, messages: S) -> LiveStream<T>
    where
        T: Message + Default + Send + 'static,
        S: Stream<Item = Result<async_nats::jetstream::Message, E>> + Send + Unpin + 'static,
        E: Send + 'static,
    {
        let payloads = messages
            .take_while(|m| std::future::ready(m.is_ok()))
            .filter_map(|m| std::future::ready(m.ok().map(|m| m.payload.clone())));
        self.forward(Box::pin(payloads), Delivery::Every)
    }
}

#[tonic::async_trait]
impl PoseQuery for PoseQueryImpl {
    async fn list_cameras(&self, _: Request<ListCamerasRequest>) -> Result<Response<ListCamerasResponse>, Status> {
        let names = self.store.camera_names().await.map_err(ServiceError::from)?;
        let mut cameras = Vec::new();
        for cam in names {
            let mut info = CameraInfo {
                camera: cam.to_string(),
                pose_rate_floor: self.book.pose_rate_floor,
                ..Default::default()
            };
            match self.store.latest_poses(&cam).await.map_err(ServiceError::from) {
                Ok(p) => {
                    (info.last_pose_ns, info.last_frame_id) = (p.publish_ts_ns, p.frame_id);
                    info.ended = p.end_of_stream;
                }
                Err(e) if e.code == ErrorCode::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            if let Ok(Some(f)) = self.store.last_frame(&cam).await {
                // The camera's own word on whether it ended beats its last pose's.
                info.last_frame_ns = f.capture_ts_ns;
                info.ended = f.end_of_stream;
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
        Ok(Response::new(self.store.latest_poses(&cam).await.map_err(ServiceError::from)?))
    }

    type StreamPosesStream = LiveStream<PoseFrame>;

    async fn stream_poses(
        &self,
        req: Request<StreamPosesRequest>,
    ) -> Result<Response<Self::StreamPosesStream>, Status> {
        let r = req.get_ref();
        let cam = camera(&r.camera)?;
        if !r.wait_for_camera && !self.store.knows(&cam).await.map_err(ServiceError::from)? {
            return Err(ServiceError::from(StoreError::UnknownCamera(cam.to_string())).into());
        }
        if r.from_ns == 0 {
            return self.live(subject::poses(&cam)).await.map(Response::new);
        }
        let start = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.from_ns))
            .map_err(|e| ServiceError::bad_request(format!("from_ns: {e}")))?;
        let messages = self.store.poses_from(&cam, start).await.map_err(ServiceError::from)?;
        Ok(Response::new(self.stored(messages)))
    }

    async fn list_sets(&self, req: Request<ListSetsRequest>) -> Result<Response<ListSetsResponse>, Status> {
        let r = req.get_ref();
        if !r.since_s.is_finite() {
            return Err(ServiceError::bad_request(format!("since_s: {} is not a time", r.since_s)).into());
        }
        let filter = if r.camera.is_empty() { SETS_ALL.to_string() } else { subject::sets(&camera(&r.camera)?) };
        let limit = if r.limit == 0 { 100 } else { (r.limit as usize).min(MAX_LIST_SETS) };
        let (mut sets, next_before_seq) =
            self.store.stored_sets(filter, r.since_s, r.before_seq, limit).await.map_err(ServiceError::from)?;
        for s in sets.iter_mut().filter(|s| self.clips.has(&s.set_id)) {
            s.clip = crate::preview::clip_path(&s.set_id);
        }
        Ok(Response::new(ListSetsResponse { sets, next_before_seq }))
    }

    type StreamSetsStream = LiveStream<SetEvent>;

    async fn stream_sets(&self, req: Request<StreamSetsRequest>) -> Result<Response<Self::StreamSetsStream>, Status> {
        let cam = camera(&req.get_ref().camera)?;
        // Sets are rare and must not be skipped: a slow client holds up its own consumer only.
        let messages = self.store.new_sets(&cam).await.map_err(ServiceError::from)?;
        Ok(Response::new(self.stored(messages)))
    }

    async fn get_snapshot(&self, req: Request<GetSnapshotRequest>) -> Result<Response<Snapshot>, Status> {
        let r = req.get_ref();
        let cam = camera(&r.camera)?;
        let kept = self.store.newest_frame(&cam).await.map_err(ServiceError::from)?;
        // With the skeleton: the newest frame whose pose is out (its own pose only); none within
        // a second, the newest frame drawn with nobody.
        let (frame, poses) = if r.overlay {
            crate::feeds::frame_with_pose(&self.feeds, &self.book, &cam, kept).await
        } else {
            (Arc::new(kept), None)
        };
        let athlete = self.book.athlete(cam.as_str());
        let drawing = r.overlay.then(|| Drawing { poses: Some(poses.unwrap_or_default()), caption: None, athlete });
        let jpeg = self
            .snapshots
            .encode(frame.clone(), drawing)
            .await
            .map_err(|e| ServiceError::internal(format!("snapshot: {e}")))?;
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

    type GetSetClipStream = LiveStream<ClipChunk>;

    async fn get_set_clip(&self, req: Request<GetSetClipRequest>) -> Result<Response<Self::GetSetClipStream>, Status> {
        let clip = self.clips.get(&req.get_ref().set_id).await?;
        // Under tonic's default 4 MiB message limit, whatever the client's settings.
        let size = clip.len() as u64;
        let chunks: Vec<Result<ClipChunk, Status>> = (0..clip.len().max(1))
            .step_by(CLIP_CHUNK)
            .enumerate()
            .map(|(i, at)| {
                let data = clip.slice(at..(at + CLIP_CHUNK).min(clip.len()));
                let (content_type, size) =
                    if i == 0 { (crate::clips::CONTENT_TYPE.to_string(), size) } else { (String::new(), 0) };
                Ok(ClipChunk { data, content_type, size })
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }
}

/// The bytes of one clip chunk.
const CLIP_CHUNK: usize = 1 << 20;
