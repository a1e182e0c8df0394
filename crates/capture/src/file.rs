//! Files as cameras: replayed in real time (as if live, newest frame wins) or paced (each frame
//! waits for its pose: lossless and deterministic); either way the last frame is followed by an
//! end-of-stream marker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pump_bus::subject;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::warn;

use crate::camera::CameraFactory;
use crate::encode::EncodedFrame;
use crate::publish::{publish_paced, PacedFrame};
use crate::reader::{read_camera, spawn_reader, CameraCtx, Pace, ReadEnd, Track, READ_GRACE};

/// Reads a file through to its end (or a stop) at `pace`, handing frames to `hand`; then, unless
/// stopped or it never opened, hands the end-of-stream marker to `end`. True when it played to
/// its end.
fn play(
    ctx: &CameraCtx,
    factory: &CameraFactory,
    pace: Pace,
    stop: &AtomicBool,
    hand: impl FnMut(Arc<EncodedFrame>) -> bool,
    end: impl FnOnce(Arc<EncodedFrame>),
) -> bool {
    let track = Track::file();
    let how = read_camera(ctx, factory, &track, pace, stop, hand);
    ctx.stats.update(ctx.id.as_str(), |s| s.connected = false);
    let ended = match how {
        ReadEnd::Stopped => return false,
        ReadEnd::OpenFailed(e) => {
            warn!(error = %e, "cannot open the file");
            return false;
        }
        // What was read counts: the file ends at the frame that failed.
        ReadEnd::ReadFailed(e) => {
            warn!(error = %e, "reading the file failed; ending it there");
            false
        }
        ReadEnd::Ended => true,
    };
    end(track.end_of_stream(ctx, pace == Pace::Paced));
    ended
}

/// Waits for a reader thread; at shutdown tells it to stop and lets it finish its frame and
/// release the file — left running, it could be inside OpenCV while the process exits (seen: a
/// crash in imencode).
async fn join_reader(ctx: &CameraCtx, stop: &AtomicBool, mut done: oneshot::Receiver<()>) {
    tokio::select! {
        _ = &mut done => return,
        _ = ctx.shutdown.cancelled() => stop.store(true, Ordering::SeqCst),
    }
    if tokio::time::timeout(READ_GRACE, done).await.is_err() {
        warn!("the file reader did not stop in time");
    }
}

/// Replays a file at its own frame rate (times `realtime_speed`) as if it were a live camera,
/// its newest frame in `tx`; the marker goes to `eos` for the publisher to send after the last
/// frame. With `looping`, a file that played to its end plays again at once, each play a new
/// segment of the camera's timeline (the sets stage closes the set of the play before), and the
/// marker goes only after a play that could not finish.
pub(crate) async fn play_realtime(
    ctx: CameraCtx,
    factory: CameraFactory,
    tx: Arc<watch::Sender<Option<Arc<EncodedFrame>>>>,
    eos: oneshot::Sender<Arc<EncodedFrame>>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let pace = Pace::Realtime { speed: ctx.config.realtime_speed };
    let done = {
        let (ctx, stop) = (ctx.clone(), stop.clone());
        spawn_reader(&ctx.id.clone(), move || {
            let mut eos = Some(eos);
            loop {
                let mut frames = 0u64;
                let hand = |f| {
                    frames += 1;
                    tx.send_replace(Some(f));
                    true
                };
                let mut last = None;
                let ended = play(&ctx, &factory, pace, &stop, hand, |marker| last = Some(marker));
                // A file with no frame would spin: it ends instead.
                if ctx.config.looping && ended && frames > 0 && !stop.load(Ordering::SeqCst) {
                    continue;
                }
                if let (Some(marker), Some(eos)) = (last, eos.take()) {
                    let _ = eos.send(marker);
                }
                break;
            }
        })
    };
    if let Some(done) = done {
        join_reader(&ctx, &stop, done).await;
    }
}

/// Plays a file losslessly: each frame waits for its pose (or `pace_timeout`) before the next
/// is read.
pub(crate) async fn play_paced(ctx: CameraCtx, client: async_nats::Client, factory: CameraFactory) {
    // Subscribed before the first publish, so no pose can be missed.
    let poses = match client.subscribe(subject::poses(&ctx.id)).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot subscribe to poses; cannot pace this file");
            return;
        }
    };
    let (frames_tx, frames_rx) = mpsc::channel::<PacedFrame>(1);
    let stop = Arc::new(AtomicBool::new(false));
    let done = {
        let (ctx, stop) = (ctx.clone(), stop.clone());
        spawn_reader(&ctx.id.clone(), move || {
            // Handed over, then held until the publisher's go-ahead; false once it is gone.
            let send = |f: Arc<EncodedFrame>| {
                let (go_tx, go_rx) = oneshot::channel();
                frames_tx.blocking_send((f, go_tx)).is_ok() && go_rx.blocking_recv().is_ok()
            };
            play(&ctx, &factory, Pace::Paced, &stop, send, |marker| {
                send(marker);
            });
        })
    };
    let Some(done) = done else { return };
    // Dropping the receiver at its end tells a waiting reader to stop.
    publish_paced(&ctx, &client, poses, frames_rx).await;
    stop.store(true, Ordering::SeqCst);
    if tokio::time::timeout(READ_GRACE, done).await.is_err() {
        warn!("the file reader did not stop in time");
    }
}
