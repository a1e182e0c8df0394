//! What the gateway reads from the NATS streams: cameras, each camera's newest frame and poses,
//! stored sets, and consumers that read a stream from a point on. Both faces (gRPC, the HTTP
//! preview) read through here; its errors say what went wrong and map to one [`ErrorCode`].

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream::LastRawMessageErrorKind};
use futures::StreamExt;
use prost::Message;
use pump_bus::streams::{FRAMES_STREAM, POSES_STREAM, SETS_STREAM};
use pump_bus::subject::{self, CameraId, FRAMES_ALL, POSES_ALL};
use pump_proto::{Frame, PoseFrame, SetEvent};

use crate::error::{ErrorCode, ServiceError};

/// A camera whose newest frame is older than this has no snapshot (NOT_FOUND, not a stale frame).
pub const SNAPSHOT_MAX_AGE_S: f64 = 5.0;

/// The most bytes of sets one ListSets reply carries: under tonic's 4 MiB message limit, which
/// about a hundred long sets (their feature rows) used to exceed.
pub const SETS_REPLY_BUDGET: usize = 3 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unknown camera {0:?}: no frames or poses kept for it")]
    UnknownCamera(String),
    #[error("camera {0:?} has no poses yet")]
    NoPoses(String),
    #[error("camera {0}'s stream has ended")]
    Ended(String),
    #[error("camera {camera} has been silent for {age_s:.0} s")]
    Silent { camera: String, age_s: f64 },
    #[error("message bus unavailable: {0}")]
    Bus(String),
    #[error("stored {what}: {error}")]
    Corrupt { what: &'static str, error: String },
}

impl StoreError {
    fn bus(e: impl std::fmt::Display) -> Self {
        StoreError::Bus(e.to_string())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::UnknownCamera(_)
            | StoreError::NoPoses(_)
            | StoreError::Ended(_)
            | StoreError::Silent { .. } => ErrorCode::NotFound,
            StoreError::Bus(_) => ErrorCode::Unavailable,
            StoreError::Corrupt { .. } => ErrorCode::Internal,
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        ServiceError::new(e.code(), e.to_string())
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// The streams, read.
#[derive(Debug, Clone)]
pub struct Store {
    js: jetstream::Context,
}

impl Store {
    pub fn new(client: async_nats::Client) -> Self {
        Self { js: jetstream::new(client) }
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    async fn stream(&self, name: &str) -> Result<jetstream::stream::Stream> {
        self.js.get_stream(name).await.map_err(StoreError::bus)
    }

    /// Every camera with kept frames or poses. A camera with frames but no poses yet (inference
    /// down) is one too.
    pub async fn camera_names(&self) -> Result<BTreeSet<CameraId>> {
        let mut names = BTreeSet::new();
        for (stream, all) in [(POSES_STREAM, POSES_ALL), (FRAMES_STREAM, FRAMES_ALL)] {
            let stream = self.stream(stream).await?;
            let mut subjects = stream.info_with_subjects(all).await.map_err(StoreError::bus)?;
            while let Some(item) = subjects.next().await {
                let name = item.map_err(StoreError::bus)?.0;
                if let Some(cam) = subject::camera_of_poses(&name).or_else(|| subject::camera_of_frames(&name)) {
                    names.insert(cam);
                }
            }
        }
        Ok(names)
    }

    /// Whether anything is kept of `cam`.
    pub async fn knows(&self, cam: &CameraId) -> Result<bool> {
        Ok(self.camera_names().await?.contains(cam))
    }

    /// The camera's newest pose frame.
    pub async fn latest_poses(&self, cam: &CameraId) -> Result<PoseFrame> {
        let stream = self.stream(POSES_STREAM).await?;
        match stream.get_last_raw_message_by_subject(&subject::poses(cam)).await {
            Ok(m) => PoseFrame::decode(m.payload)
                .map_err(|e| StoreError::Corrupt { what: "pose frame", error: e.to_string() }),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Err(if self.knows(cam).await? {
                StoreError::NoPoses(cam.to_string())
            } else {
                StoreError::UnknownCamera(cam.to_string())
            }),
            Err(e) => Err(StoreError::bus(e)),
        }
    }

    /// The camera's newest kept frame, whatever its age; `None` when none is kept.
    pub async fn last_frame(&self, cam: &CameraId) -> Result<Option<Frame>> {
        Ok(self.last_frame_stored(cam).await?.map(|(frame, _)| frame))
    }

    /// The camera's newest kept frame and how long ago (s) the server stored it. Its age is
    /// judged by when it reached the bus, not by its capture stamp: a capture host whose clock is
    /// 5 s behind stamps every frame 5 s old, and had every snapshot refused.
    async fn last_frame_stored(&self, cam: &CameraId) -> Result<Option<(Frame, f64)>> {
        let frames = self.stream(FRAMES_STREAM).await?;
        match frames.get_last_raw_message_by_subject(&subject::frames(cam)).await {
            Ok(m) => {
                let stored_ns = i64::try_from(m.time.unix_timestamp_nanos()).unwrap_or(i64::MAX);
                let age_s = pump_bus::clock::now_ns().saturating_sub(stored_ns) as f64 / 1e9;
                Frame::decode(m.payload)
                    .map(|f| Some((f, age_s)))
                    .map_err(|e| StoreError::Corrupt { what: "frame", error: e.to_string() })
            }
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(StoreError::bus(e)),
        }
    }

    /// The camera's newest kept frame, if it is fresh: a camera silent for longer than
    /// [`SNAPSHOT_MAX_AGE_S`], or whose stream ended, has none — never its stale frame.
    pub async fn newest_frame(&self, cam: &CameraId) -> Result<Frame> {
        let (frame, age_s) =
            self.last_frame_stored(cam).await?.ok_or_else(|| StoreError::UnknownCamera(cam.to_string()))?;
        if frame.end_of_stream {
            return Err(StoreError::Ended(cam.to_string()));
        }
        if age_s > SNAPSHOT_MAX_AGE_S {
            return Err(StoreError::Silent { camera: cam.to_string(), age_s });
        }
        Ok(frame)
    }

    /// Closed sets on `filter` stored at or after `since_s` (and before stream sequence
    /// `before_seq`, when not 0), oldest first: the newest `limit` that fit
    /// [`SETS_REPLY_BUDGET`], and the sequence to ask before for the older ones (0: none). Only
    /// the sets from `since_s` on are read, not the whole stream.
    pub async fn stored_sets(
        &self,
        filter: String,
        since_s: f64,
        before_seq: u64,
        limit: usize,
    ) -> Result<(Vec<SetEvent>, u64)> {
        let stream = self.stream(SETS_STREAM).await?;
        let deliver_policy = match time::OffsetDateTime::from_unix_timestamp_nanos((since_s * 1e9) as i128) {
            Ok(start) if since_s > 0.0 => consumer::DeliverPolicy::ByStartTime { start_time: start },
            _ => consumer::DeliverPolicy::All,
        };
        let mut consumer: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                filter_subject: filter,
                deliver_policy,
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(StoreError::bus)?;
        let mut pending = consumer.info().await.map_err(StoreError::bus)?.num_pending;
        let mut sets: VecDeque<(u64, usize, SetEvent)> = VecDeque::new();
        let (mut bytes, mut older) = (0usize, false);
        if pending > 0 {
            let mut messages = consumer.messages().await.map_err(StoreError::bus)?;
            while pending > 0 {
                let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
                    .await
                    .map_err(|_| StoreError::bus("reading the sets stream timed out"))?
                    .ok_or_else(|| StoreError::bus("sets stream closed"))?
                    .map_err(StoreError::bus)?;
                let info = msg.info().map_err(StoreError::bus)?;
                pending = info.pending;
                let seq = info.stream_sequence;
                if before_seq > 0 && seq >= before_seq {
                    break;
                }
                let stored = info.published.unix_timestamp_nanos() as f64 / 1e9;
                if stored < since_s {
                    continue;
                }
                if let Ok(set) = SetEvent::decode(msg.payload.clone()) {
                    bytes += msg.payload.len();
                    sets.push_back((seq, msg.payload.len(), set));
                    while sets.len() > limit || (bytes > SETS_REPLY_BUDGET && sets.len() > 1) {
                        let Some((_, size, _)) = sets.pop_front() else { break };
                        bytes -= size;
                        older = true;
                    }
                }
            }
        }
        let next_before = if older { sets.front().map_or(0, |s| s.0) } else { 0 };
        Ok((sets.into_iter().map(|s| s.2).collect(), next_before))
    }

    /// The camera's poses from `start` on, history then live, through one ordered consumer: the
    /// same cursor throughout, so nothing falls between the two and nothing comes twice.
    pub async fn poses_from(&self, cam: &CameraId, start: time::OffsetDateTime) -> Result<consumer::pull::Ordered> {
        let consumer = self
            .stream(POSES_STREAM)
            .await?
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: subject::poses(cam),
                deliver_policy: consumer::DeliverPolicy::ByStartTime { start_time: start },
                ..Default::default()
            })
            .await
            .map_err(StoreError::bus)?;
        consumer.messages().await.map_err(StoreError::bus)
    }

    /// The camera's sets closed from now on.
    pub async fn new_sets(&self, cam: &CameraId) -> Result<consumer::pull::Stream> {
        let consumer: consumer::PullConsumer = self
            .stream(SETS_STREAM)
            .await?
            .create_consumer(consumer::pull::Config {
                filter_subject: subject::sets(cam),
                deliver_policy: consumer::DeliverPolicy::New,
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(StoreError::bus)?;
        consumer.messages().await.map_err(StoreError::bus)
    }
}

/// Whether `frame` is worth showing beside `newest`, its camera's newest (fresh: it just came,
/// or [`Store::newest_frame`] found it so): not an end of stream, captured within
/// [`SNAPSHOT_MAX_AGE_S`] before it. Both stamps are of one camera's clock, however far that
/// clock is from this host's.
pub fn is_fresh_beside(frame: &Frame, newest: &Frame) -> bool {
    !frame.end_of_stream && newest.capture_ts_ns.saturating_sub(frame.capture_ts_ns) as f64 / 1e9 <= SNAPSHOT_MAX_AGE_S
}
