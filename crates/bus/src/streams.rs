//! The JetStream streams. Set-up is idempotent: the first service to start creates them, later
//! starts find them as they are (or update their limits) and change nothing else.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::error::{Error, Result};
use crate::subject::{FRAMES_ALL, POSES_ALL};

pub const FRAMES_STREAM: &str = "PUMP_FRAMES";
pub const POSES_STREAM: &str = "PUMP_POSES";
pub const SETS_STREAM: &str = "PUMP_SETS";

/// The sets stream: on disk, kept for 30 days, and deduplicated by message id (the set id) for a
/// day, so a set published again after a restart is stored once.
pub fn sets_config() -> stream::Config {
    stream::Config {
        name: SETS_STREAM.into(),
        subjects: vec![crate::subject::SETS_ALL.into()],
        storage: stream::StorageType::File,
        max_age: Duration::from_secs(30 * 24 * 3600),
        duplicate_window: Duration::from_secs(24 * 3600),
        allow_direct: true,
        ..Default::default()
    }
}

/// Limits of the streams.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamLimits {
    /// Largest frame accepted, in bytes (a 1080p JPEG at quality 90 is ~0.5 MB).
    pub max_frame_bytes: i32,
    /// How long pose history is kept.
    pub poses_max_age: Duration,
    /// How much pose history is kept, in bytes.
    pub poses_max_bytes: i64,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self { max_frame_bytes: 8 * 1024 * 1024, poses_max_age: Duration::from_secs(3600), poses_max_bytes: 1 << 30 }
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
        discard: stream::DiscardPolicy::Old,
        max_message_size: limits.max_frame_bytes,
        allow_direct: true,
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
        discard: stream::DiscardPolicy::Old,
        allow_direct: true,
        ..Default::default()
    }
}

/// Creates the streams (frames, poses, sets), or updates them to these limits when they exist.
pub async fn ensure_streams(js: &jetstream::Context, limits: &StreamLimits) -> Result<()> {
    for cfg in [frames_config(limits), poses_config(limits), sets_config()] {
        let name = cfg.name.clone();
        js.create_or_update_stream(cfg).await.map_err(|source| Error::Stream { stream: name, source })?;
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
