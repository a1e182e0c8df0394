//! The browser preview, on the gateway's HTTP port beside `/metrics`:
//! - `/` a page listing the cameras, each with its live view, rates and last sets;
//! - `/cameras/{camera}/stream.mjpg` live frames with the skeleton and the rep count drawn on
//!   (multipart MJPEG, which every browser shows in an `<img>`). A skeleton is drawn only on the
//!   frame its pose came from: the feed keeps the last second of frames, and the view shows the
//!   frame of the newest pose (saying how far it is behind the newest frame), or the newest frame
//!   with nobody drawn when that pose's frame is gone;
//! - `/cameras/{camera}/snapshot.jpg` the newest frame (`?overlay=1`: the newest frame that has
//!   its pose, with the skeleton);
//! - `/api/cameras` what the page shows, as JSON.
//!
//! Every viewer of a camera shares one NATS subscription and one JPEG per frame; a slow viewer
//! gets the newest frame when it is ready for one, never a queue.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use futures::StreamExt;
use prost::Message;
use pump_bus::subject::{self, CameraId};
use pump_proto::{Frame, PoseFrame};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::book::CameraBook;
use crate::run::{camera_names, is_fresh, newest_frame, SNAPSHOT_MAX_AGE_S};
use crate::snapshot::{pose_fits, Overlay, SnapshotCache};

const BOUNDARY: &str = "pumpframe";

/// Frames of a camera kept for drawing poses on their own frame: a second at 15 fps, more than
/// inference lags when it keeps up.
const RECENT_FRAMES: usize = 16;

/// A camera's last frames, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Recent(VecDeque<Arc<Frame>>);

impl Recent {
    fn push(&mut self, frame: Arc<Frame>) {
        if self.0.len() == RECENT_FRAMES {
            self.0.pop_front();
        }
        self.0.push_back(frame);
    }

    pub fn newest(&self) -> Option<&Arc<Frame>> {
        self.0.back()
    }

    /// The frame `poses` came from, if it is still here.
    pub fn frame_of(&self, poses: &PoseFrame) -> Option<&Arc<Frame>> {
        self.0.iter().rev().find(|f| pose_fits(poses, f))
    }
}

/// One subscription per watched camera, shared by its viewers, ended when the last one leaves.
#[derive(Debug)]
pub struct FrameFeeds {
    client: async_nats::Client,
    feeds: Mutex<HashMap<CameraId, Arc<watch::Sender<Recent>>>>,
    shutdown: CancellationToken,
}

impl FrameFeeds {
    pub fn new(client: async_nats::Client, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Self { client, feeds: Mutex::default(), shutdown })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CameraId, Arc<watch::Sender<Recent>>>> {
        self.feeds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cameras watched right now.
    pub fn watched(&self) -> usize {
        self.lock().len()
    }

    /// The newest frames of `cam`; a feed set up now starts from `kept`, the viewer's first frame
    /// (a frame published between the two is superseded by the next within a frame period).
    pub async fn subscribe(
        self: &Arc<Self>,
        cam: &CameraId,
        kept: Arc<Frame>,
    ) -> Result<watch::Receiver<Recent>, String> {
        if let Some(tx) = self.lock().get(cam) {
            return Ok(tx.subscribe());
        }
        let sub = self.client.subscribe(subject::frames(cam)).await.map_err(|e| e.to_string())?;
        let mut seed = Recent::default();
        seed.push(kept);
        let mut feeds = self.lock();
        if let Some(tx) = feeds.get(cam) {
            // Another viewer set the feed up meanwhile: ours goes unused.
            return Ok(tx.subscribe());
        }
        let tx = Arc::new(watch::Sender::new(seed));
        let rx = tx.subscribe();
        feeds.insert(cam.clone(), tx.clone());
        tokio::spawn(self.clone().feed(cam.clone(), tx, sub));
        Ok(rx)
    }

    /// Ends the feed if nobody watches it, decided under the lock that hands out receivers, so
    /// nobody joins a feed that is ending.
    fn end_if_unwatched(&self, cam: &CameraId, tx: &Arc<watch::Sender<Recent>>) -> bool {
        let mut feeds = self.lock();
        if tx.receiver_count() > 0 {
            return false;
        }
        if feeds.get(cam).is_some_and(|t| Arc::ptr_eq(t, tx)) {
            feeds.remove(cam);
        }
        true
    }

    fn forget(&self, cam: &CameraId, tx: &Arc<watch::Sender<Recent>>) {
        let mut feeds = self.lock();
        if feeds.get(cam).is_some_and(|t| Arc::ptr_eq(t, tx)) {
            feeds.remove(cam);
        }
    }

    async fn feed(self: Arc<Self>, cam: CameraId, tx: Arc<watch::Sender<Recent>>, mut sub: async_nats::Subscriber) {
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = tx.closed() => {
                    if self.end_if_unwatched(&cam, &tx) {
                        break;
                    }
                }
                m = sub.next() => match m {
                    Some(m) => {
                        if let Ok(f) = Frame::decode(m.payload) {
                            tx.send_modify(|r| r.push(Arc::new(f)));
                        }
                    }
                    None => break,
                },
            }
        }
        self.forget(&cam, &tx);
        let _ = tokio::time::timeout(Duration::from_secs(1), sub.unsubscribe()).await;
    }
}

/// What the preview routes share.
#[derive(Debug)]
pub struct Preview {
    pub js: jetstream::Context,
    pub book: Arc<CameraBook>,
    pub snapshots: Arc<SnapshotCache>,
    pub feeds: Arc<FrameFeeds>,
    /// Ends the MJPEG streams, which would otherwise hold up the server's graceful shutdown.
    pub shutdown: CancellationToken,
}

pub fn routes(preview: Arc<Preview>) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/api/cameras", get(api_cameras))
        .route("/cameras/{camera}/snapshot.jpg", get(snapshot))
        .route("/cameras/{camera}/stream.mjpg", get(stream))
        .with_state(preview)
}

/// A failed request: its status and one line saying why.
#[derive(Debug)]
struct HttpError(StatusCode, String);

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (self.0, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.1 + "\n").into_response()
    }
}

/// The gRPC status of a shared helper, as the HTTP answer.
impl From<tonic::Status> for HttpError {
    fn from(s: tonic::Status) -> Self {
        let code = match s.code() {
            tonic::Code::NotFound => StatusCode::NOT_FOUND,
            tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
            tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        HttpError(code, s.message().to_string())
    }
}

fn camera(name: &str) -> Result<CameraId, HttpError> {
    CameraId::new(name).map_err(|_| crate::run::status::bad_camera(name).into())
}

#[derive(Debug, serde::Deserialize)]
struct SnapshotQuery {
    #[serde(default)]
    overlay: Option<String>,
}

/// What one picture of the preview shows: a frame, the pose of that very frame if there is one,
/// and whether to caption it (rep count, and how far it is behind the newest frame).
#[derive(Debug, Clone)]
struct Shown {
    frame: Arc<Frame>,
    poses: Option<Arc<PoseFrame>>,
    caption: bool,
    behind_ms: i64,
}

/// Picks from a camera's last frames what to show: the frame of the newest pose, or the newest
/// frame with nobody drawn when that pose's frame is gone (or there is no pose yet).
fn choose(book: &CameraBook, recent: &Recent) -> Option<Shown> {
    let newest = recent.newest()?;
    let pose = book.latest(&newest.camera);
    let (frame, poses) = match pose.as_ref().and_then(|p| recent.frame_of(p).map(|f| (f.clone(), p.clone()))) {
        Some((frame, poses)) => (frame, Some(poses)),
        None => (newest.clone(), None),
    };
    let behind_ms = (newest.capture_ts_ns - frame.capture_ts_ns) / 1_000_000;
    Some(Shown { frame, poses, caption: true, behind_ms })
}

/// Encodes off the async threads: a JPEG of a large frame takes milliseconds.
async fn jpeg(preview: &Arc<Preview>, shown: Shown) -> Result<Bytes, String> {
    let p = preview.clone();
    tokio::task::spawn_blocking(move || {
        let caption = shown.caption.then(|| match shown.behind_ms {
            ms if ms > 0 => format!("REPS {}\nPOSE {ms} MS BEHIND", p.book.reps(&shown.frame.camera)),
            _ => format!("REPS {}", p.book.reps(&shown.frame.camera)),
        });
        let wanted = shown.poses.is_some() || shown.caption;
        let overlay = wanted.then_some(Overlay { poses: shown.poses.as_deref(), caption: caption.as_deref() });
        p.snapshots.jpeg(&shown.frame, overlay)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The newest frame that has its pose, for a snapshot with the skeleton: the kept frame if its
/// pose is out, else a moment of the camera's feed (at most a second) until a pose and its frame
/// meet; the kept frame with nobody drawn if none does. Shared by the HTTP and gRPC snapshots.
pub(crate) async fn frame_with_pose(
    feeds: &Arc<FrameFeeds>,
    book: &CameraBook,
    cam: &CameraId,
    kept: Frame,
) -> (Arc<Frame>, Option<Arc<PoseFrame>>) {
    let kept = Arc::new(kept);
    if let Some(poses) = book.latest(cam.as_str()).filter(|pf| pose_fits(pf, &kept)) {
        return (kept, Some(poses));
    }
    let Ok(rx) = feeds.subscribe(cam, kept.clone()).await else { return (kept, None) };
    let deadline = tokio::time::Instant::now() + SNAPSHOT_POSE_WAIT;
    while tokio::time::Instant::now() < deadline {
        let recent = rx.borrow().clone();
        if let Some(pf) = book.latest(cam.as_str()) {
            if let Some(frame) = recent.frame_of(&pf) {
                return (frame.clone(), Some(pf));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (kept, None)
}

/// How long a snapshot with the skeleton waits for a pose to meet its frame.
const SNAPSHOT_POSE_WAIT: Duration = Duration::from_secs(1);

async fn snapshot(
    State(p): State<Arc<Preview>>,
    Path(name): Path<String>,
    Query(q): Query<SnapshotQuery>,
) -> Result<Response, HttpError> {
    let cam = camera(&name)?;
    let frame = newest_frame(&p.js, &cam).await?;
    let overlay = q.overlay.as_deref().is_some_and(|v| !matches!(v, "" | "0" | "false"));
    let (frame, poses) =
        if overlay { frame_with_pose(&p.feeds, &p.book, &cam, frame).await } else { (Arc::new(frame), None) };
    let shown = Shown { frame, poses, caption: false, behind_ms: 0 };
    let body =
        jpeg(&p, shown).await.map_err(|e| HttpError(StatusCode::INTERNAL_SERVER_ERROR, format!("snapshot: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "no-store")], body).into_response())
}

struct Viewer {
    preview: Arc<Preview>,
    rx: watch::Receiver<Recent>,
    first: bool,
    /// Capture time of the last frame shown: the view never steps back in time nor repeats.
    shown_ts: Option<i64>,
    /// Since when no frame had its pose: bare frames are shown only after [`SNAPSHOT_POSE_WAIT`]
    /// of that (inference down, or lagging beyond the kept frames).
    bare_since: Option<tokio::time::Instant>,
}

impl Viewer {
    /// The next fresh picture to show, or `None` when the stream should end: the camera's stream
    /// ended, it fell silent, or the gateway is shutting down.
    async fn next_frame(&mut self) -> Option<Shown> {
        loop {
            if !std::mem::take(&mut self.first) {
                let silence = Duration::from_secs_f64(SNAPSHOT_MAX_AGE_S);
                tokio::select! {
                    _ = self.preview.shutdown.cancelled() => return None,
                    r = tokio::time::timeout(silence, self.rx.changed()) => {
                        if !matches!(r, Ok(Ok(()))) {
                            return None;
                        }
                    }
                }
            }
            let recent = self.rx.borrow_and_update().clone();
            if recent.newest().is_some_and(|f| f.end_of_stream) {
                return None;
            }
            let Some(shown) = choose(&self.preview.book, &recent) else { continue };
            if shown.poses.is_some() {
                self.bare_since = None;
            } else if self.bare_since.get_or_insert_with(tokio::time::Instant::now).elapsed() < SNAPSHOT_POSE_WAIT {
                continue;
            }
            if is_fresh(&shown.frame) && self.shown_ts.is_none_or(|t| shown.frame.capture_ts_ns > t) {
                self.shown_ts = Some(shown.frame.capture_ts_ns);
                return Some(shown);
            }
        }
    }
}

async fn stream(State(p): State<Arc<Preview>>, Path(name): Path<String>) -> Result<Response, HttpError> {
    let cam = camera(&name)?;
    // A silent camera is a 404 at once, not a stream that shows nothing.
    let kept = newest_frame(&p.js, &cam).await?;
    let rx = p
        .feeds
        .subscribe(&cam, Arc::new(kept))
        .await
        .map_err(|e| HttpError(StatusCode::SERVICE_UNAVAILABLE, format!("message bus unavailable: {e}")))?;
    let viewer = Viewer { preview: p, rx, first: true, shown_ts: None, bare_since: None };
    let parts = futures::stream::unfold(viewer, |mut v| async move {
        loop {
            let shown = v.next_frame().await?;
            let Ok(jpeg) = jpeg(&v.preview, shown).await else { continue };
            let head = format!("--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg.len());
            let mut part = Vec::with_capacity(head.len() + jpeg.len() + 2);
            part.extend_from_slice(head.as_bytes());
            part.extend_from_slice(&jpeg);
            part.extend_from_slice(b"\r\n");
            return Some((Ok::<_, Infallible>(Bytes::from(part)), v));
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, format!("multipart/x-mixed-replace; boundary={BOUNDARY}")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(parts),
    )
        .into_response())
}

#[derive(Debug, serde::Serialize)]
struct SetRow {
    set_id: String,
    reps: u32,
    exercise: String,
    confidence: f32,
    start_s: f64,
    end_s: f64,
    pending: bool,
}

#[derive(Debug, serde::Serialize)]
struct CameraRow {
    camera: String,
    frame_fps: f64,
    pose_fps: f64,
    inference_fps: f64,
    frames_received: u64,
    frames_dropped: u64,
    reps: u32,
    ended: bool,
    below_pose_rate_floor: bool,
    pose_rate_floor: f64,
    sets: Vec<SetRow>,
}

async fn api_cameras(State(p): State<Arc<Preview>>) -> Result<Response, HttpError> {
    let names = camera_names(&p.js).await?;
    let cameras: Vec<CameraRow> = names
        .iter()
        .map(|cam| {
            let r = p.book.rates(cam.as_str()).unwrap_or_default();
            CameraRow {
                camera: cam.to_string(),
                frame_fps: r.frame_fps,
                pose_fps: r.pose_fps,
                inference_fps: r.inference_fps,
                frames_received: r.received,
                frames_dropped: r.dropped,
                reps: p.book.reps(cam.as_str()),
                ended: r.ended,
                below_pose_rate_floor: r.below_floor,
                pose_rate_floor: p.book.pose_rate_floor,
                sets: p
                    .book
                    .recent_sets(cam.as_str())
                    .into_iter()
                    .map(|s| SetRow {
                        set_id: s.set_id,
                        reps: s.reps,
                        exercise: s.exercise,
                        confidence: s.confidence,
                        start_s: s.start_s,
                        end_s: s.end_s,
                        pending: s.pending,
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(Json(serde_json::json!({ "cameras": cameras })).into_response())
}

/// The page: plain HTML and a little script that lists the cameras and refreshes their numbers.
/// Each live view reports the frame size the browser decoded, and shows "no signal" (retrying)
/// while its camera is silent.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pump — live</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1rem; background: #111; color: #eee; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; }
  #cameras { display: flex; flex-wrap: wrap; gap: 1rem; }
  .camera { background: #1c1c1c; border-radius: 6px; padding: .75rem; max-width: 100%; }
  .camera h2 { font-size: 1.1rem; margin: 0 0 .5rem; }
  .camera img { display: block; max-width: min(640px, 100%); background: #000; min-height: 120px; }
  .stats, .frame { font-size: .85rem; color: #aaa; margin: .4rem 0; }
  .sets { font-size: .9rem; margin: .3rem 0 0; padding-left: 1.2rem; }
  .pending { color: #fc6; }
</style>
</head>
<body>
<h1>pump — live</h1>
<p id="status">Loading cameras…</p>
<div id="cameras"></div>
<script>
"use strict";
const shown = new Map();

function view(name) {
  const s = document.createElement("section");
  s.className = "camera";
  s.dataset.camera = name;
  s.innerHTML = '<h2></h2><img class="live" alt=""><p class="frame">connecting…</p>' +
    '<p class="stats"></p><ol class="sets"></ol>';
  s.querySelector("h2").textContent = name;
  const img = s.querySelector("img");
  const frame = s.querySelector(".frame");
  const src = "/cameras/" + encodeURIComponent(name) + "/stream.mjpg";
  img.alt = "live view of " + name;
  img.addEventListener("load", () => {
    frame.textContent = "live " + img.naturalWidth + "×" + img.naturalHeight;
    s.dataset.width = img.naturalWidth;
    s.dataset.height = img.naturalHeight;
  });
  img.addEventListener("error", () => {
    frame.textContent = "no signal";
    setTimeout(() => { img.src = src + "?t=" + Date.now(); }, 3000);
  });
  img.src = src;
  document.getElementById("cameras").appendChild(s);
  return s;
}

function fill(s, c) {
  s.querySelector(".stats").textContent =
    `camera ${c.frame_fps.toFixed(1)} fps · poses ${c.pose_fps.toFixed(1)} fps · ` +
    `model ${c.inference_fps.toFixed(1)} fps · dropped ${c.frames_dropped} of ${c.frames_received}` +
    ` · reps now ${c.reps}` + (c.ended ? " · ended" : "") +
    (c.below_pose_rate_floor
      ? ` · poses under ${c.pose_rate_floor} a second: counts not exact, sets to confirm`
      : "");
  s.querySelector(".stats").className = c.below_pose_rate_floor ? "stats pending" : "stats";
  const ol = s.querySelector(".sets");
  ol.replaceChildren(...c.sets.slice(0, 5).map(set => {
    const li = document.createElement("li");
    const took = (set.end_s - set.start_s).toFixed(1);
    li.textContent = `${set.reps} × ${set.exercise || "unknown"} in ${took} s` + (set.pending ? " (to confirm)" : "");
    if (set.pending) li.className = "pending";
    return li;
  }));
  if (c.sets.length === 0) ol.innerHTML = "<li>no sets yet</li>";
}

async function refresh() {
  try {
    const r = await fetch("/api/cameras", { cache: "no-store" });
    if (!r.ok) throw new Error(await r.text());
    const { cameras } = await r.json();
    for (const c of cameras) {
      if (!shown.has(c.camera)) shown.set(c.camera, view(c.camera));
      fill(shown.get(c.camera), c);
    }
    document.getElementById("status").textContent =
      cameras.length ? `${cameras.length} camera${cameras.length > 1 ? "s" : ""}` : "No cameras yet.";
  } catch (e) {
    document.getElementById("status").textContent = "gateway unreachable: " + e.message;
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
"#;
