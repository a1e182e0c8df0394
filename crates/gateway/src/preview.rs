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

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use pump_proto::{Frame, PoseFrame};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::{camera, ServiceError};
use crate::feeds::{frame_with_pose, FrameFeeds, Recent, SNAPSHOT_POSE_WAIT};
use crate::live::LiveCameras;
use crate::snapshot::{Drawing, SnapshotCache};
use crate::store::{is_fresh_beside, Store, SNAPSHOT_MAX_AGE_S};

const BOUNDARY: &str = "pumpframe";

/// What the preview routes share.
#[derive(Debug)]
pub struct Preview {
    pub store: Store,
    pub book: Arc<LiveCameras>,
    pub snapshots: Arc<SnapshotCache>,
    pub feeds: Arc<FrameFeeds>,
    /// Ends the MJPEG streams, which would otherwise hold up the server's graceful shutdown.
    pub shutdown: CancellationToken,
    pub clips: Arc<crate::clips::Clips>,
}

/// Where a set's clip is downloaded on the preview port.
pub fn clip_path(set_id: &str) -> String {
    format!("/clips/{}", crate::clips::clip_name(set_id))
}

pub fn routes(preview: Arc<Preview>) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/api/cameras", get(api_cameras))
        .route("/cameras/{camera}/snapshot.jpg", get(snapshot))
        .route("/cameras/{camera}/stream.mjpg", get(stream))
        .route("/clips/{name}", get(clip))
        .with_state(preview)
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
fn choose(book: &LiveCameras, recent: &Recent) -> Option<Shown> {
    let newest = recent.newest()?;
    let pose = book.latest(&newest.camera);
    let (frame, poses) = match pose.as_ref().and_then(|p| recent.frame_of(p).map(|f| (f.clone(), p.clone()))) {
        Some((frame, poses)) => (frame, Some(poses)),
        None => (newest.clone(), None),
    };
    let behind_ms = newest.capture_ts_ns.saturating_sub(frame.capture_ts_ns) / 1_000_000;
    Some(Shown { frame, poses, caption: true, behind_ms })
}

/// Encodes off the async threads: a JPEG of a large frame takes milliseconds.
async fn jpeg(preview: &Arc<Preview>, shown: Shown) -> Result<Bytes, String> {
    let camera = &shown.frame.camera;
    let caption = shown.caption.then(|| match shown.behind_ms {
        ms if ms > 0 => format!("REPS {}\nPOSE {ms} MS BEHIND", preview.book.reps(camera)),
        _ => format!("REPS {}", preview.book.reps(camera)),
    });
    let wanted = shown.poses.is_some() || shown.caption;
    let drawing =
        wanted.then(|| Drawing { poses: shown.poses.clone(), caption, athlete: preview.book.athlete(camera) });
    preview.snapshots.encode(shown.frame, drawing).await
}

async fn snapshot(
    State(p): State<Arc<Preview>>,
    Path(name): Path<String>,
    Query(q): Query<SnapshotQuery>,
) -> Result<Response, ServiceError> {
    let cam = camera(&name)?;
    let frame = p.store.newest_frame(&cam).await?;
    let overlay = q.overlay.as_deref().is_some_and(|v| !matches!(v, "" | "0" | "false"));
    let (frame, poses) =
        if overlay { frame_with_pose(&p.feeds, &p.book, &cam, frame).await } else { (Arc::new(frame), None) };
    let shown = Shown { frame, poses, caption: false, behind_ms: 0 };
    let body = jpeg(&p, shown).await.map_err(|e| ServiceError::internal(format!("snapshot: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "no-store")], body).into_response())
}

/// A set's clip, as a download.
async fn clip(State(p): State<Arc<Preview>>, Path(name): Path<String>) -> Result<Response, ServiceError> {
    let set_id = name
        .strip_suffix(".avi")
        .ok_or_else(|| ServiceError::bad_request(format!("{name:?} is not a clip (<set id>.avi)")))?;
    let body = p.clips.get(set_id).await?;
    let disposition = format!("attachment; filename=\"{name}\"");
    Ok((
        [(header::CONTENT_TYPE, crate::clips::CONTENT_TYPE.to_string()), (header::CONTENT_DISPOSITION, disposition)],
        body,
    )
        .into_response())
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
            let fresh = recent.newest().is_some_and(|newest| is_fresh_beside(&shown.frame, newest));
            if fresh && self.shown_ts.is_none_or(|t| shown.frame.capture_ts_ns > t) {
                self.shown_ts = Some(shown.frame.capture_ts_ns);
                return Some(shown);
            }
        }
    }
}

async fn stream(State(p): State<Arc<Preview>>, Path(name): Path<String>) -> Result<Response, ServiceError> {
    let cam = camera(&name)?;
    // A silent camera is a 404 at once, not a stream that shows nothing.
    let kept = p.store.newest_frame(&cam).await?;
    let rx = p.feeds.subscribe(&cam, Arc::new(kept)).await.map_err(ServiceError::bus)?;
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
    /// Where the athlete of the set in progress is ([x1, y1, x2, y2], source pixels): drawn
    /// bright, everyone else grey. None between sets.
    athlete: Option<[f32; 4]>,
    /// The set in progress; None between sets.
    set: Option<LiveSetRow>,
    /// The camera's recent sets, newest first: each in the one JSON form a set has everywhere
    /// ([`pump_bus::json::set_json`]), with its clip when one was recorded and its `trace` as
    /// [t_s, degrees] pairs.
    sets: Vec<serde_json::Value>,
}

#[derive(Debug, serde::Serialize)]
struct LiveSetRow {
    set_id: String,
    reps: u32,
    /// When each rep heard hit bottom (the set's timeline, s).
    rep_times_s: Vec<f64>,
    /// The counted joint's angle so far: [t_s, degrees] pairs.
    trace: Vec<[f64; 2]>,
}

/// A trace sent as two lists, as [t, degrees] pairs a plot reads.
fn pairs(t: &[f64], deg: &[f32]) -> Vec<[f64; 2]> {
    t.iter().zip(deg).map(|(t, d)| [*t, f64::from(*d)]).collect()
}

async fn api_cameras(State(p): State<Arc<Preview>>) -> Result<Response, ServiceError> {
    let names = p.store.camera_names().await?;
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
                athlete: p.book.athlete(cam.as_str()).map(|b| [b.x1, b.y1, b.x2, b.y2]),
                set: p.book.in_progress(cam.as_str()).map(|(r, rep_times_s)| LiveSetRow {
                    trace: pairs(&r.trace_t_s, &r.trace_deg),
                    set_id: r.set_id,
                    reps: r.reps,
                    rep_times_s,
                }),
                sets: p
                    .book
                    .recent_sets(cam.as_str())
                    .into_iter()
                    .map(|mut s| {
                        if p.clips.has(&s.set_id) {
                            s.clip = clip_path(&s.set_id);
                        }
                        let mut row = pump_bus::json::set_json(&s);
                        row["trace"] = serde_json::json!(pairs(&s.trace_t_s, &s.trace_deg));
                        row
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
const PAGE: &str = include_str!("page.html");
