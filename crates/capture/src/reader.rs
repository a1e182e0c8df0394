//! The one loop every camera is read by: open, read, stamp, encode, hand on, release. A live
//! camera, a file replayed in real time and a paced file differ only in their [`Pace`] — when a
//! frame is handed on — and in what the caller does with the end.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opencv::core::Mat;
use pump_bus::clock::now_ns;
use pump_bus::subject::CameraId;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::camera::{Camera, CameraFactory};
use crate::config::{Config, FrameEncoding};
use crate::encode::{encode, end_of_stream, pass_jpeg, wire_encoding, EncodedFrame, FrameMeta};
use crate::error::{Error, Result};
use crate::metrics::CaptureStats;
use crate::timeline::Timeline;

/// How long shutdown lets an in-flight read finish before leaving its thread behind.
pub(crate) const READ_GRACE: Duration = Duration::from_secs(5);

/// What every task of one camera knows.
#[derive(Clone)]
pub(crate) struct CameraCtx {
    pub id: CameraId,
    pub encoding: FrameEncoding,
    pub config: Config,
    pub stats: Arc<CaptureStats>,
    pub shutdown: CancellationToken,
    /// The server's largest message (bytes; 0 when unknown).
    pub max_payload: usize,
    /// Set once this camera's raw frames were found too large for the server, to warn once.
    pub fell_back: Arc<AtomicBool>,
}

impl CameraCtx {
    /// Puts what `cam` read on the wire: the camera's JPEG as it came when it passes one on;
    /// else encoded as configured, unless raw pixels would not fit in one NATS message; then as
    /// JPEG, with one warning that says how to keep the pixels faithful.
    fn encode(&self, mat: &Mat, cam: &dyn Camera, meta: FrameMeta<'_>) -> Result<Arc<EncodedFrame>> {
        use opencv::prelude::{MatTraitConst, MatTraitConstManual};
        if cam.passes_jpeg() {
            return pass_jpeg(mat.data_bytes().map_err(|e| Error::Encode(e.to_string()))?, meta);
        }
        let (w, h) = (mat.cols().max(0) as usize, mat.rows().max(0) as usize);
        let encoding = wire_encoding(self.encoding, w, h, self.max_payload);
        let fell_back = matches!(encoding, FrameEncoding::Jpeg { .. }) && encoding != self.encoding;
        if fell_back && !self.fell_back.swap(true, Ordering::Relaxed) {
            warn!(
                width = w,
                height = h,
                max_payload = self.max_payload,
                "raw frames do not fit in one NATS message: sending JPEG, whose poses are less faithful; \
                 raise max_payload in nats-server's configuration (deploy/nats.conf: 8MB)"
            );
        }
        encode(mat, meta, encoding)
    }
}

/// A camera's frame ids and timeline: one per live camera for as long as capture runs (its
/// connections come and go), one per play of a file.
pub(crate) struct Track {
    live: bool,
    /// The segment: the wall clock when this track began.
    segment: u64,
    next_id: AtomicU64,
    timeline: Mutex<Timeline>,
    last_ts: AtomicI64,
}

impl Track {
    pub fn live() -> Self {
        Self::new(true, Timeline::live())
    }

    /// A play of a file; its timeline runs at the frame rate found when it opens.
    pub fn file() -> Self {
        Self::new(false, Timeline::file(0.0))
    }

    fn new(live: bool, timeline: Timeline) -> Self {
        Self {
            live,
            segment: u64::try_from(now_ns()).unwrap_or_default(),
            next_id: AtomicU64::new(0),
            timeline: Mutex::new(timeline),
            last_ts: AtomicI64::new(0),
        }
    }

    /// A connection opened: a live camera's timeline steps over the outage by the wall clock; a
    /// file's runs at its container's frame rate.
    fn opened(&self, fps: f64) {
        let mut t = self.timeline.lock().unwrap_or_else(|e| e.into_inner());
        if self.live {
            t.reconnected();
        } else {
            *t = Timeline::file(fps);
        }
    }

    /// The next frame's id and its time on the timeline.
    fn stamp(&self, media_ns: i64, wall_ns: i64) -> (u64, i64) {
        let ts = self.timeline.lock().unwrap_or_else(|e| e.into_inner()).next(Some(media_ns), wall_ns);
        self.last_ts.store(ts, Ordering::SeqCst);
        (self.next_id.fetch_add(1, Ordering::SeqCst), ts)
    }

    /// The marker that says the file ended, after its last frame.
    pub fn end_of_stream(&self, ctx: &CameraCtx, paced: bool) -> Arc<EncodedFrame> {
        let (id, ts) = (self.next_id.load(Ordering::SeqCst), self.last_ts.load(Ordering::SeqCst));
        end_of_stream(meta(ctx, id, now_ns(), ts, self.segment, paced))
    }
}

fn meta(
    ctx: &CameraCtx,
    frame_id: u64,
    capture_ts_ns: i64,
    source_ts_ns: i64,
    segment: u64,
    paced: bool,
) -> FrameMeta<'_> {
    FrameMeta { camera: ctx.id.as_str(), frame_id, capture_ts_ns, source_ts_ns, segment, paced }
}

/// When a frame is handed on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Pace {
    /// As the camera gives it; the newest wins downstream.
    Live,
    /// At the frame's own time (times `speed`), as a camera would give a file's frames.
    Realtime { speed: f64 },
    /// When the hand-over returns: the publisher lets the next frame be read once this one's
    /// pose is back (or timed out). Frames are marked paced.
    Paced,
}

/// Why a read ended.
#[derive(Debug)]
pub(crate) enum ReadEnd {
    /// Told to stop, or the hand-over refused the frame.
    Stopped,
    OpenFailed(String),
    /// A read failed, or a frame could not be put on the wire: a live camera reconnects, a file
    /// ends there.
    ReadFailed(String),
    /// The stream ended (a file's last frame was read).
    Ended,
}

impl std::fmt::Display for ReadEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadEnd::Stopped => f.write_str("stopped"),
            ReadEnd::OpenFailed(e) => write!(f, "open failed: {e}"),
            ReadEnd::ReadFailed(e) => write!(f, "read failed: {e}"),
            ReadEnd::Ended => f.write_str("the stream ended"),
        }
    }
}

/// Opens a fresh camera from `factory` and reads it until `stop`, a failure or its end, handing
/// each frame to `hand` (which returns false to stop). Runs on a reader thread: every OpenCV
/// call blocks. The camera is released here, after its last read returned — never while a read
/// runs. `stop` is checked again after each read, before the frame touches the track: a stalled
/// read of an abandoned connection that returns late changes nothing.
pub(crate) fn read_camera(
    ctx: &CameraCtx,
    factory: &CameraFactory,
    track: &Track,
    pace: Pace,
    stop: &AtomicBool,
    mut hand: impl FnMut(Arc<EncodedFrame>) -> bool,
) -> ReadEnd {
    let camera = ctx.id.as_str();
    let mut cam = factory();
    if let Err(e) = cam.open() {
        ctx.stats.update(camera, |s| s.open_failures += 1);
        return ReadEnd::OpenFailed(e.to_string());
    }
    ctx.stats.update(camera, |s| s.connected = true);
    track.opened(cam.fps());
    let start = Instant::now();
    // One Mat per connection, reused by every read.
    let mut mat = Mat::default();
    let stopped = || stop.load(Ordering::SeqCst);
    let end = loop {
        if stopped() {
            break ReadEnd::Stopped;
        }
        let media_ns = match cam.read(&mut mat) {
            Ok(Some(media_ns)) => media_ns,
            Ok(None) => break ReadEnd::Ended,
            Err(e) => {
                ctx.stats.update(camera, |s| s.read_failures += 1);
                break ReadEnd::ReadFailed(e.to_string());
            }
        };
        if stopped() {
            break ReadEnd::Stopped;
        }
        let wall = now_ns();
        let (id, ts) = track.stamp(media_ns, wall);
        let capture_ts = match pace {
            Pace::Realtime { speed } => {
                let due = start + Duration::from_nanos(ts.max(0) as u64).div_f64(speed);
                if !sleep_until(due, stop) {
                    break ReadEnd::Stopped;
                }
                now_ns()
            }
            Pace::Live | Pace::Paced => wall,
        };
        let frame =
            match ctx.encode(&mat, cam.as_ref(), meta(ctx, id, capture_ts, ts, track.segment, pace == Pace::Paced)) {
                Ok(f) => f,
                Err(e) => break ReadEnd::ReadFailed(e.to_string()),
            };
        ctx.stats.captured(camera);
        if !hand(frame) {
            break ReadEnd::Stopped;
        }
    };
    cam.release();
    end
}

/// Sleeps until `due` in short naps, so a stop is seen however slow a replay; false if stopped.
fn sleep_until(due: Instant, stop: &AtomicBool) -> bool {
    while let Some(wait) = due.checked_duration_since(Instant::now()) {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(wait.min(Duration::from_millis(50)));
    }
    !stop.load(Ordering::SeqCst)
}

/// Runs `read` on a thread of its own, in the caller's span (OpenCV's reads block; they never
/// run on the async runtime); its result comes back on the receiver. `None` when no thread
/// could be started, said in a warning.
pub(crate) fn spawn_reader<T: Send + 'static>(
    camera: &CameraId,
    read: impl FnOnce() -> T + Send + 'static,
) -> Option<oneshot::Receiver<T>> {
    let (tx, rx) = oneshot::channel();
    let span = tracing::Span::current();
    let spawned = std::thread::Builder::new().name(format!("capture-{camera}")).spawn(move || {
        let _span = span.entered();
        let _ = tx.send(read());
    });
    match spawned {
        Ok(_) => Some(rx),
        Err(e) => {
            warn!(error = %e, "cannot start a reader thread");
            None
        }
    }
}
