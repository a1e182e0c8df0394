//! A live camera kept connected: each connection attempt is a *cycle* with its own reader thread
//! and camera. A watchdog ends a cycle that fails or stalls (no frame for `stall_timeout`) and
//! starts the next after a capped exponential [`Backoff`], reset by any good frame. A stalled
//! thread is left to release its own camera when (if) its read returns.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use tracing::warn;

use crate::backoff::Backoff;
use crate::camera::CameraFactory;
use crate::encode::EncodedFrame;
use crate::reader::{read_camera, spawn_reader, CameraCtx, Pace, ReadEnd, Track, READ_GRACE};

/// How often the watchdog looks for a stalled cycle.
const WATCHDOG_TICK: Duration = Duration::from_millis(100);

/// What one reader thread shares with its supervisor.
struct Cycle {
    /// Set by the supervisor: leave after the current read.
    stop: AtomicBool,
    /// When the cycle last showed life (start, then every frame).
    last_activity: Mutex<Instant>,
    frames: AtomicU64,
}

impl Cycle {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            stop: AtomicBool::new(false),
            last_activity: Mutex::new(Instant::now()),
            frames: AtomicU64::new(0),
        })
    }

    fn idle_for(&self) -> Duration {
        self.last_activity.lock().unwrap_or_else(|e| e.into_inner()).elapsed()
    }

    fn alive(&self) {
        *self.last_activity.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.frames.fetch_add(1, Ordering::Relaxed);
    }
}

/// Keeps a live camera connected, its newest frame in `tx`, until shutdown. Never gives up.
pub(crate) async fn supervise_live(
    ctx: CameraCtx,
    factory: CameraFactory,
    tx: Arc<watch::Sender<Option<Arc<EncodedFrame>>>>,
) {
    let mut backoff = Backoff::new(ctx.config.backoff_initial, ctx.config.backoff_max);
    // Ids and timeline carry over every connection of this camera.
    let track = Arc::new(Track::live());
    let mut attempt = 0u64;
    while !ctx.shutdown.is_cancelled() {
        attempt += 1;
        let cycle = Cycle::new();
        let done = {
            let (ctx, factory, cycle, track, tx) =
                (ctx.clone(), factory.clone(), cycle.clone(), track.clone(), tx.clone());
            spawn_reader(&ctx.id.clone(), move || {
                read_camera(&ctx, &factory, &track, Pace::Live, &cycle.stop, |f| {
                    cycle.alive();
                    tx.send_replace(Some(f));
                    true
                })
            })
        };
        let end = match done {
            Some(done) => watch_cycle(&ctx, &cycle, done).await,
            None => ReadEnd::ReadFailed("no reader thread".into()),
        };
        ctx.stats.update(ctx.id.as_str(), |s| s.connected = false);
        if matches!(end, ReadEnd::Stopped) || ctx.shutdown.is_cancelled() {
            break;
        }
        if cycle.frames.load(Ordering::Relaxed) > 0 {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        warn!(attempt, reason = %end, retry_in_ms = delay.as_millis() as u64, "camera read failed, reconnecting");
        ctx.stats.update(ctx.id.as_str(), |s| s.reconnects += 1);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = ctx.shutdown.cancelled() => break,
        }
    }
}

/// Waits for a cycle to end: by itself, stalled (then told to stop and left behind), or at
/// shutdown (then given [`READ_GRACE`] to finish its read).
async fn watch_cycle(ctx: &CameraCtx, cycle: &Cycle, mut done: oneshot::Receiver<ReadEnd>) -> ReadEnd {
    let mut watchdog = tokio::time::interval(WATCHDOG_TICK);
    loop {
        tokio::select! {
            end = &mut done => return end.unwrap_or(ReadEnd::ReadFailed("reader thread died".into())),
            _ = watchdog.tick() => {
                if cycle.idle_for() > ctx.config.stall_timeout {
                    // The thread may be stuck in read(); it releases its camera itself when
                    // (if) that returns, and this camera moves on with a fresh one.
                    cycle.stop.store(true, Ordering::SeqCst);
                    ctx.stats.update(ctx.id.as_str(), |s| s.stalls += 1);
                    return ReadEnd::ReadFailed(format!("no frame for {:?}", ctx.config.stall_timeout));
                }
            }
            _ = ctx.shutdown.cancelled() => {
                cycle.stop.store(true, Ordering::SeqCst);
                if tokio::time::timeout(READ_GRACE, &mut done).await.is_err() {
                    warn!("a read is still blocked at shutdown; its thread is left to finish it");
                }
                return ReadEnd::Stopped;
            }
        }
    }
}
