//! Frames onto `pump.frames.<camera>`: one publish that counts what went out, the newest-frame
//! publisher of live cameras and real-time files, and the paced publisher that waits for each
//! frame's pose before letting the next be read.

use std::sync::Arc;

use futures::StreamExt;
use pump_bus::codec::decode_pose_frame;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::warn;

use crate::encode::EncodedFrame;
use crate::reader::CameraCtx;

/// Publishes one frame; counted as published only once the client took it.
async fn publish_frame(ctx: &CameraCtx, client: &async_nats::Client, f: &EncodedFrame, skipped: u64) -> bool {
    match pump_bus::publish::frame(client, &ctx.id, f.frame.frame_id, f.frame.capture_ts_ns, f.payload.clone()).await {
        Ok(()) => {
            ctx.stats.update(ctx.id.as_str(), |s| {
                s.published += 1;
                s.skipped += skipped;
                s.ended |= f.frame.end_of_stream;
            });
            true
        }
        Err(e) => {
            warn!(error = %e, frame_id = f.frame.frame_id, "publishing a frame failed");
            false
        }
    }
}

/// Publishes each new newest frame; with `eos`, publishes the last frame and then the
/// end-of-stream marker when the file ends. Never holds up the reader: it only reads the watch.
pub(crate) async fn publish_latest(
    ctx: CameraCtx,
    client: async_nats::Client,
    mut rx: watch::Receiver<Option<Arc<EncodedFrame>>>,
    mut eos: Option<oneshot::Receiver<Arc<EncodedFrame>>>,
) {
    // (segment, frame id) of the last frame out: a looping file starts its ids again each play.
    let mut last_id: Option<(u64, u64)> = None;
    let publish = |f: Arc<EncodedFrame>, last_id: &mut Option<(u64, u64)>| {
        let skipped = match *last_id {
            Some((segment, l)) if segment == f.frame.segment => f.frame.frame_id.saturating_sub(l + 1),
            _ => 0,
        };
        *last_id = Some((f.frame.segment, f.frame.frame_id));
        let (ctx, client) = (&ctx, &client);
        async move {
            // Without a server the client would queue every frame until it reconnects (thousands
            // of raw frames, gigabytes): a live camera's old frames are worth nothing then, so
            // they are dropped and counted; the end-of-stream marker is kept.
            if !f.frame.end_of_stream && client.connection_state() != async_nats::connection::State::Connected {
                ctx.stats.update(ctx.id.as_str(), |s| {
                    s.skipped += skipped;
                    s.nats_down += 1;
                });
                return false;
            }
            publish_frame(ctx, client, &f, skipped).await
        }
    };
    // The newest frame if it has not gone out yet. Decided by frame id, not by the watch's
    // "changed" flag, which a reader thread that has finished (and dropped its sender) hides.
    let unpublished = |rx: &watch::Receiver<Option<Arc<EncodedFrame>>>, last_id: Option<(u64, u64)>| {
        // Another segment is new whatever its name (a host clock stepped back names it lower).
        rx.borrow().clone().filter(|f| last_id.is_none_or(|(s, l)| f.frame.segment != s || f.frame.frame_id > l))
    };
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            changed = rx.changed() => {
                if let Some(f) = unpublished(&rx, last_id) {
                    publish(f, &mut last_id).await;
                }
                if changed.is_err() {
                    // The reader is gone; a file's end-of-stream marker may still be on its way.
                    if let Some(Ok(marker)) = match eos.take() { Some(r) => Some(r.await), None => None } {
                        publish(marker, &mut last_id).await;
                    }
                    break;
                }
            }
            Ok(marker) = async { match eos.as_mut() { Some(r) => r.await, None => std::future::pending().await } } => {
                // The file ended: its last frame goes out before the marker.
                if let Some(f) = unpublished(&rx, last_id) {
                    publish(f, &mut last_id).await;
                }
                publish(marker, &mut last_id).await;
                break;
            }
        }
    }
}

/// A frame handed from the paced reader to the publisher, with the reader's go-ahead signal.
pub(crate) type PacedFrame = (Arc<EncodedFrame>, oneshot::Sender<()>);

/// Publishes a paced file's frames as the reader hands them over; the reader gets its go-ahead for the next once this frame's pose came
/// back on `poses` (subscribed before the first publish, so none is missed) or `pace_timeout`
/// passed. Returns at the end-of-stream marker, when the reader is gone, or at shutdown.
pub(crate) async fn publish_paced(
    ctx: &CameraCtx,
    client: &async_nats::Client,
    mut poses: async_nats::Subscriber,
    mut frames: mpsc::Receiver<PacedFrame>,
) {
    loop {
        let next = tokio::select! {
            _ = ctx.shutdown.cancelled() => None,
            r = frames.recv() => r,
        };
        let Some((f, go_ahead)) = next else { break };
        publish_frame(ctx, client, &f, 0).await;
        if f.frame.end_of_stream {
            let _ = go_ahead.send(());
            break;
        }
        let waited = tokio::time::timeout(ctx.config.pace_timeout, async {
            while let Some(msg) = poses.next().await {
                if let Ok(p) = decode_pose_frame(&msg.payload) {
                    if p.frame_id == f.frame.frame_id && p.capture_ts_ns == f.frame.capture_ts_ns {
                        return true;
                    }
                }
            }
            false
        });
        let came_back = tokio::select! {
            r = waited => r.unwrap_or(false),
            _ = ctx.shutdown.cancelled() => break,
        };
        if !came_back {
            ctx.stats.update(ctx.id.as_str(), |s| s.pace_timeouts += 1);
            warn!(frame_id = f.frame.frame_id, "no pose within the pace timeout; sending the next frame");
        }
        let _ = go_ahead.send(());
    }
}
