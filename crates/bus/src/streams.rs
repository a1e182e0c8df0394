//! The JetStream streams. Set-up is idempotent: the first service to start creates them, with its
//! limits and replicas; later starts (and every reconnection) find them as they are and change
//! nothing — a service started with other limits says so once, in a warning, and keeps the
//! stream's: a gateway started with defaults must not shrink a sets stream an operator made
//! larger (`nats stream edit` changes a stream's limits).

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::error::{Error, Result};
use crate::subject::{FRAMES_ALL, POSES_ALL};

pub const FRAMES_STREAM: &str = "PUMP_FRAMES";
pub const POSES_STREAM: &str = "PUMP_POSES";
pub const SETS_STREAM: &str = "PUMP_SETS";

/// Largest pose frame or set message the streams accept: a pose frame of 100 people is ~25 KB, a
/// set with its features a few KB; anything near this is not one.
pub const MAX_MESSAGE_BYTES: i32 = 1 << 20;

/// The sets stream: on disk, kept for 30 days and at most `sets_max_bytes` (the oldest go first),
/// and deduplicated by message id (the set id) for a day, so a set published again after a
/// restart is stored once.
pub fn sets_config(limits: &StreamLimits) -> stream::Config {
    stream::Config {
        name: SETS_STREAM.into(),
        subjects: vec![crate::subject::SETS_ALL.into()],
        storage: stream::StorageType::File,
        max_age: Duration::from_secs(30 * 24 * 3600),
        max_bytes: limits.sets_max_bytes,
        max_message_size: MAX_MESSAGE_BYTES,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: Duration::from_secs(24 * 3600),
        allow_direct: true,
        num_replicas: limits.replicas,
        ..Default::default()
    }
}

/// Limits of the streams.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamLimits {
    /// Largest frame accepted, in bytes (a 1080p JPEG at quality 90 is ~0.5 MB).
    pub max_frame_bytes: i32,
    /// Most bytes the frames stream holds (in nats-server's memory), and most cameras (one frame
    /// each): a flood of new camera names evicts the oldest frames instead of filling the
    /// server's memory at up to `max_frame_bytes` a name. A live camera's frame is back within a
    /// frame period.
    pub frames_max_bytes: i64,
    pub max_cameras: i64,
    /// How long pose history is kept.
    pub poses_max_age: Duration,
    /// How much pose history is kept, in bytes.
    pub poses_max_bytes: i64,
    /// How much set history is kept, in bytes (the oldest sets go first).
    pub sets_max_bytes: i64,
    /// Copies of every stream and bucket pump creates, on that many nodes of a NATS cluster (1 on
    /// a single server; 3 in the shipped cluster configs: the loss of one node loses nothing).
    pub replicas: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 8 * 1024 * 1024,
            frames_max_bytes: 1 << 30,
            max_cameras: 256,
            poses_max_age: Duration::from_secs(3600),
            poses_max_bytes: 1 << 30,
            sets_max_bytes: 256 << 20,
            replicas: 1,
        }
    }
}

/// The frames stream: memory only, one message per camera, older discarded, so a consumer that
/// starts late reads each camera's newest frame at once and nothing queues.
pub fn frames_config(limits: &StreamLimits) -> stream::Config {
    stream::Config {
        name: FRAMES_STREAM.into(),
        subjects: vec![FRAMES_ALL.into()],
        storage: stream::StorageType::Memory,
        max_messages_per_subject: 1,
        max_messages: limits.max_cameras,
        max_bytes: limits.frames_max_bytes,
        discard: stream::DiscardPolicy::Old,
        max_message_size: limits.max_frame_bytes,
        allow_direct: true,
        num_replicas: limits.replicas,
        ..Default::default()
    }
}

/// The poses stream: every pose frame, kept for a configurable age and size (history for queries).
pub fn poses_config(limits: &StreamLimits) -> stream::Config {
    stream::Config {
        name: POSES_STREAM.into(),
        subjects: vec![POSES_ALL.into()],
        storage: stream::StorageType::File,
        max_age: limits.poses_max_age,
        max_bytes: limits.poses_max_bytes,
        max_message_size: MAX_MESSAGE_BYTES,
        discard: stream::DiscardPolicy::Old,
        allow_direct: true,
        num_replicas: limits.replicas,
        ..Default::default()
    }
}

/// What of `existing` differs from what this service would create (`wanted`): limits and replicas.
pub fn differences(existing: &stream::Config, wanted: &stream::Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |what: &str, have: String, want: String| {
        if have != want {
            out.push(format!("{what} {have} (this service: {want})"));
        }
    };
    // The server says "no limit" as -1 where a config asks for it with 0.
    let limit = |v: i64| if v > 0 { v.to_string() } else { "none".to_string() };
    check("replicas", existing.num_replicas.max(1).to_string(), wanted.num_replicas.max(1).to_string());
    check("max_bytes", limit(existing.max_bytes), limit(wanted.max_bytes));
    check("max_messages", limit(existing.max_messages), limit(wanted.max_messages));
    check("max_age", format!("{:?}", existing.max_age), format!("{:?}", wanted.max_age));
    check("max_message_size", limit(i64::from(existing.max_message_size)), limit(i64::from(wanted.max_message_size)));
    out
}

/// Creates the stream `cfg` describes when it is missing; an existing one is left as it is, with
/// one warning when its limits or replicas differ from `cfg`'s.
pub async fn ensure_stream(js: &jetstream::Context, cfg: stream::Config) -> Result<stream::Stream> {
    let name = cfg.name.clone();
    match js.get_stream(&name).await {
        Ok(mut existing) => {
            let info =
                existing.info().await.map_err(|e| Error::Stream { stream: name.clone(), reason: e.to_string() })?;
            let differ = differences(&info.config, &cfg);
            if !differ.is_empty() {
                tracing::warn!(stream = %name, differences = %differ.join(", "), "stream exists with other settings: left as it is");
            }
            Ok(existing)
        }
        Err(e) if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(j) if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) => {
            js.create_stream(cfg).await.map_err(|e| Error::Stream { stream: name, reason: e.to_string() })
        }
        Err(e) => Err(Error::Stream { stream: name, reason: e.to_string() }),
    }
}

/// Creates the streams (frames, poses, sets) that are missing; those that exist are left as they
/// are ([`ensure_stream`]).
pub async fn ensure_streams(js: &jetstream::Context, limits: &StreamLimits) -> Result<()> {
    for cfg in [frames_config(limits), poses_config(limits), sets_config(limits)] {
        ensure_stream(js, cfg).await?;
    }
    Ok(())
}

/// Like [`ensure_streams`], but waits for the server: a service started before nats-server
/// retries every second until the streams are there, or `shutdown` is cancelled (then `false`).
pub async fn ensure_streams_retrying(
    js: &jetstream::Context,
    limits: &StreamLimits,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<bool> {
    let mut attempts = 0u32;
    loop {
        let err = match ensure_streams(js, limits).await {
            Ok(()) => return Ok(true),
            Err(e) => e,
        };
        attempts += 1;
        if attempts == 1 || attempts.is_multiple_of(30) {
            tracing::warn!(error = %err, attempts, "streams not ready (is nats-server up?), retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => return Ok(false),
        }
    }
}

/// Keeps the streams in place while a service runs. A nats-server restarted without its store
/// (and any restart, for the memory-only frames stream) has forgotten them, and a service that
/// set them up once at start would answer "stream not found" from then on. After every new
/// connection the streams are set up again; `present` is false from a disconnection until they
/// are back, so readiness can say so. Returns when `shutdown` is cancelled.
pub async fn keep_streams(
    client: async_nats::Client,
    limits: StreamLimits,
    present: std::sync::Arc<std::sync::atomic::AtomicBool>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use std::sync::atomic::Ordering;
    let js = jetstream::new(client.clone());
    let connects = || client.statistics().connects.load(Ordering::Relaxed);
    let mut ensured_at = connects();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut failures = 0u32;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if client.connection_state() != async_nats::connection::State::Connected {
            present.store(false, Ordering::SeqCst);
            continue;
        }
        let now = connects();
        if now == ensured_at && present.load(Ordering::SeqCst) {
            continue;
        }
        match ensure_streams(&js, &limits).await {
            Ok(()) => {
                tracing::info!("streams in place after reconnecting to NATS");
                (ensured_at, failures) = (now, 0);
                present.store(true, Ordering::SeqCst);
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(120) {
                    tracing::warn!(error = %e, failures, "cannot set the streams up again, retrying");
                }
            }
        }
    }
}

/// Runs [`keep_streams`] beside a service until the returned guard is dropped (when the service's
/// `run` returns) or `shutdown` is cancelled.
#[must_use = "the streams are kept only while the guard lives"]
pub fn keep_streams_while(
    client: &async_nats::Client,
    limits: StreamLimits,
    shutdown: &tokio_util::sync::CancellationToken,
) -> tokio_util::sync::DropGuard {
    let token = shutdown.child_token();
    let present = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    tokio::spawn(keep_streams(client.clone(), limits, present, token.clone()));
    token.drop_guard()
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_limit_is_no_difference_whichever_way_it_is_said() {
        // A frames stream asked for without caps (0) reads back from the server as -1.
        let limits = super::StreamLimits { frames_max_bytes: 0, max_cameras: 0, ..Default::default() };
        let mut existing = super::frames_config(&limits);
        (existing.max_bytes, existing.max_messages) = (-1, -1);
        assert!(super::differences(&existing, &super::frames_config(&limits)).is_empty());
        existing.num_replicas = 3;
        assert_eq!(super::differences(&existing, &super::frames_config(&limits)), ["replicas 3 (this service: 1)"]);
    }
}
