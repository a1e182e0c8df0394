//! A clip of every set (`--clips`): the frames inference posed during the set, the skeleton and
//! the rep count burnt in, as Motion-JPEG AVI in a JetStream object store (`pump-clips`) — so it
//! lives with the rest of pump's data, any gateway replica serves it, and nothing needs a disk of
//! its own.
//!
//! Recording reads the bus like any client: capture and inference never wait for it. Each
//! camera's frames wait here until their pose comes (a frame inference skipped is dropped), so a
//! clip holds exactly the frames that have a pose, each with its own pose drawn — at the pose
//! rate, not the camera's. A set is known only once its first rep is done, so the last
//! [`PRE_ROLL`] of posed frames are always kept, and everything while a set is in progress (up to
//! [`MAX_CLIP`]). When the set closes, its span is cut out, drawn and written off the runtime;
//! the oldest clips are deleted first when the store would pass its size, and the bucket's
//! max age drops old ones.
//!
//! Memory is bounded per camera whatever the cameras send and whether or not inference runs:
//! [`WAITING_BYTES`] of frames waiting for a pose, [`POSED_BYTES`] of posed JPEGs (a longer set
//! keeps its last part), and [`KEEP_QUEUE_BYTES`] queued to be kept across all cameras.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_nats::jetstream::object_store::{self, ObjectStore};
use bytes::Bytes;
use futures::StreamExt;
use prost::Message;
use pump_bus::frame::{CheckedFrame, Pixels};
use pump_bus::ops::PerCamera;
use pump_bus::subject::{FRAMES_ALL, POSES_ALL, SETS_ALL};
use pump_proto::{Frame, PoseFrame, SetEvent};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::error::ServiceError;
use crate::live::LiveCameras;
use crate::snapshot::{render, Overlay};

pub const CLIPS_BUCKET: &str = "pump-clips";
/// Posed frames always kept: a set starts at its first rep's start, heard of only once that rep
/// is done (a slow rep takes 5 s or more).
pub const PRE_ROLL: Duration = Duration::from_secs(15);
/// The longest clip: a set in progress longer than this keeps only its last part.
pub const MAX_CLIP: Duration = Duration::from_secs(180);
/// Frames before the set's start and after its end.
const MARGIN_NS: i64 = 500_000_000;
/// Frames waiting for their pose, per camera: inference is under a second behind, or the frame
/// was never taken.
const WAITING: usize = 48;
/// ... and their bytes: ten raw 1080p frames (a third of a second at 30 fps), many more JPEGs.
/// With inference stopped every frame waits: this, not 48 raw frames (300 MB), is what it costs.
pub const WAITING_BYTES: usize = 64 << 20;
/// Posed JPEGs kept per camera: 180 s of 1080p at 10 poses/s, about; past it a set in progress
/// keeps only its last part, as past [`MAX_CLIP`].
pub const POSED_BYTES: usize = 192 << 20;
/// Raw frames queued to the keeping thread, all cameras together; past it they are dropped
/// (counted) as past [`KEEP_QUEUE`].
pub const KEEP_QUEUE_BYTES: usize = 128 << 20;
/// The longest a stored clip is read into memory: a clip is never larger (`MAX_CLIP` of posed
/// frames), whatever the object's metadata claims.
const MAX_CLIP_BYTES: usize = POSED_BYTES * 2;
pub const CONTENT_TYPE: &str = "video/x-msvideo";
/// Posed frames waiting to be kept: a second or more of every camera; beyond, they are dropped
/// (counted) rather than hold up the bus.
const KEEP_QUEUE: usize = 256;
/// How long after a set closes its clip is cut: the poses of its last frames come up to a model
/// time or two later.
const SETTLE: Duration = Duration::from_secs(1);

/// How much the clip store keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipLimits {
    /// The store's size: the oldest clips go first to make room.
    pub max_bytes: u64,
    /// A clip is dropped this long after it was written.
    pub max_age: Duration,
    /// Copies of the store on a NATS cluster (`--streams-replicas`).
    pub replicas: usize,
}

impl Default for ClipLimits {
    fn default() -> Self {
        Self { max_bytes: 2 << 30, max_age: Duration::from_secs(7 * 24 * 3600), replicas: 1 }
    }
}

/// The clip's name in the store, and the end of its HTTP path.
pub fn clip_name(set_id: &str) -> String {
    format!("{set_id}.avi")
}

/// A frame and its pose, to keep, with whether a set was in progress and who was counted.
#[derive(Debug)]
struct Keep {
    frame: Frame,
    pose: PoseFrame,
    in_set: bool,
    athlete: Option<pump_proto::Box>,
}

impl Keep {
    fn of((frame, pose): (Frame, PoseFrame), book: &LiveCameras) -> Self {
        // A live count exists only during a set (cheaper than cloning the set in progress, per
        // posed frame).
        let in_set = book.reps(&pose.camera) > 0;
        Self { athlete: book.athlete(&pose.camera), frame, pose, in_set }
    }
}

/// A frame inference posed (kept as JPEG), its pose, and who was counted then.
#[derive(Debug, Clone)]
struct Posed {
    frame: Frame,
    pose: PoseFrame,
    athlete: Option<pump_proto::Box>,
}

#[derive(Debug, Default)]
struct Recent {
    waiting: VecDeque<Frame>,
    /// Poses that came before their frame.
    orphans: VecDeque<PoseFrame>,
    /// Capture time until which everything is kept: a set was in progress a pre-roll before.
    busy_until: i64,
    posed: VecDeque<Posed>,
    /// The JPEG bytes of `posed`.
    posed_bytes: usize,
}

impl Recent {
    fn bytes(&self) -> usize {
        self.waiting.iter().map(Captured::bytes).sum::<usize>()
            + self.orphans.iter().map(Captured::bytes).sum::<usize>()
            + self.posed_bytes
    }
}

/// The clips: recorded when `limits` is set, served from the store either way.
pub struct Clips {
    limits: Option<ClipLimits>,
    store: OnceLock<ObjectStore>,
    /// Set ids whose clip is in the store.
    kept: Mutex<HashSet<String>>,
    cameras: PerCamera<Recent>,
    pub written: AtomicU64,
    pub failed: AtomicU64,
    /// Posed frames not kept: the keeping thread fell behind.
    pub dropped: AtomicU64,
    /// Raw bytes queued to the keeping thread.
    queued_bytes: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Clips {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clips").field("limits", &self.limits).field("open", &self.store.get().is_some()).finish()
    }
}

impl Clips {
    pub fn new(limits: Option<ClipLimits>) -> Self {
        Self {
            limits,
            store: OnceLock::new(),
            kept: Mutex::default(),
            cameras: PerCamera::default(),
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            queued_bytes: Default::default(),
        }
    }

    /// Keeps the frames of at most `max` cameras (the longest-silent forgotten first).
    pub fn set_max_cameras(&self, max: usize) {
        self.cameras.set_max(max);
    }

    /// The bytes of frames and poses held for clips now: waiting, posed and queued.
    pub fn held_bytes(&self) -> usize {
        let cameras = self.cameras.read_all(|all| all.values().map(Recent::bytes).sum::<usize>());
        cameras + self.queued_bytes.load(Ordering::Relaxed)
    }

    /// Whether the set has a clip to fetch.
    pub fn has(&self, set_id: &str) -> bool {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).contains(set_id)
    }

    /// The clip's bytes; INVALID_ARGUMENT for what is no set id, NOT_FOUND when there is none (not recorded, not yet written, or
    /// dropped by retention).
    pub async fn get(&self, set_id: &str) -> Result<Bytes, ServiceError> {
        if set_id.is_empty() || set_id.contains(['/', '.']) {
            return Err(ServiceError::bad_request(format!("set_id: {set_id:?} is not a set id")));
        }
        let missing = || ServiceError::not_found(format!("no clip of set {set_id:?}"));
        let store = self.store.get().ok_or_else(|| match self.limits {
            None => ServiceError::not_found("clips are not recorded (pump-gateway --clips)"),
            Some(_) => ServiceError::new(crate::error::ErrorCode::Unavailable, "the clip store is not ready yet"),
        })?;
        let mut object = match store.get(clip_name(set_id)).await {
            Ok(o) => o,
            Err(e) if e.kind() == object_store::GetErrorKind::NotFound => {
                // Gone by the store's age limit: no longer listed either.
                self.kept.lock().unwrap_or_else(|e| e.into_inner()).remove(set_id);
                return Err(missing());
            }
            Err(e) => return Err(ServiceError::bus(e)),
        };
        // The metadata's size is a claim, not an allocation.
        let mut out = Vec::with_capacity(object.info.size.min(MAX_CLIP_BYTES));
        (&mut object).take(MAX_CLIP_BYTES as u64 + 1).read_to_end(&mut out).await.map_err(ServiceError::bus)?;
        if out.len() > MAX_CLIP_BYTES {
            return Err(ServiceError::internal(format!("the clip of set {set_id:?} is over {MAX_CLIP_BYTES} bytes")));
        }
        Ok(Bytes::from(out))
    }

    /// A frame: paired with its pose if that came first, else waiting for it.
    fn on_frame(&self, frame: Frame) -> Option<(Frame, PoseFrame)> {
        if frame.end_of_stream {
            return None;
        }
        self.cameras.update(&frame.camera.clone(), |r| {
            pair(frame, &mut r.waiting, &mut r.orphans, |f, p| crate::snapshot::pose_fits(p, f))
        })
    }

    /// A pose: paired with its frame if that is here (the frames before it, which inference
    /// skipped, are dropped), else waiting for it.
    fn on_pose(&self, pose: PoseFrame) -> Option<(Frame, PoseFrame)> {
        if pose.end_of_stream {
            return None;
        }
        self.cameras
            .update(&pose.camera.clone(), |r| pair(pose, &mut r.orphans, &mut r.waiting, crate::snapshot::pose_fits))
            .map(|(pose, frame)| (frame, pose))
    }

    /// Keeps a posed frame (as JPEG), and as many before it as a clip may need: the pre-roll, or
    /// everything while a set is in progress and for a pre-roll after (its clip is cut once the
    /// poses of its last frames are in).
    fn keep(&self, job: Keep) {
        let Keep { frame, pose, in_set, athlete } = job;
        // Raw frames are made JPEG once here: a set's worth of raw frames would not fit.
        let frame = match CheckedFrame::new(frame, pump_bus::frame::MAX_DIMENSION) {
            Ok(f) if matches!(f.pixels(), Pixels::Jpeg(_)) => f.into_frame(),
            Ok(f) => match render(&f, None) {
                Ok(jpeg) => Frame { data: jpeg, encoding: pump_proto::Encoding::Jpeg as i32, ..f.into_frame() },
                Err(_) => return,
            },
            Err(_) => return,
        };
        self.cameras.update(&pose.camera.clone(), |r| {
            let newest = frame.capture_ts_ns;
            if in_set {
                r.busy_until = newest.saturating_add(PRE_ROLL.as_nanos() as i64);
            }
            let keep = if newest <= r.busy_until { MAX_CLIP } else { PRE_ROLL };
            r.posed_bytes += frame.data.len();
            r.posed.push_back(Posed { frame, pose, athlete });
            while r.posed.front().is_some_and(|p| {
                newest.saturating_sub(p.frame.capture_ts_ns) > keep.as_nanos() as i64 || r.posed_bytes > POSED_BYTES
            }) {
                if let Some(gone) = r.posed.pop_front() {
                    r.posed_bytes -= gone.frame.data.len();
                }
            }
        });
    }

    /// The posed frames of `set`'s span, oldest first: by the camera's timeline (what the set's
    /// times are on; a file replayed at half speed has its wall clock run twice as fast), in the
    /// newest segment that has them (a replayed file starts its timeline again).
    fn span_of(&self, set: &SetEvent) -> Vec<Posed> {
        let margin = MARGIN_NS as f64 / 1e9;
        let (from, to) = (set.start_s - margin, set.end_s + margin);
        let within = |p: &Posed| (from..=to).contains(&(p.pose.source_ts_ns as f64 / 1e9));
        self.cameras
            .read(&set.camera, |r| {
                let Some(segment) = r.posed.iter().rev().find(|p| within(p)).map(|p| p.pose.segment) else {
                    return Vec::new();
                };
                r.posed.iter().filter(|p| p.pose.segment == segment && within(p)).cloned().collect()
            })
            .unwrap_or_default()
    }

    /// Draws and writes the clip of `set`, making room in the store first.
    async fn record(&self, set: SetEvent) -> Result<Option<u64>, String> {
        let Some(store) = self.store.get() else { return Ok(None) };
        if self.has(&set.set_id) {
            return Ok(None);
        }
        let posed = self.span_of(&set);
        if posed.is_empty() {
            return Ok(None);
        }
        let set_id = set.set_id.clone();
        let avi = tokio::task::spawn_blocking(move || draw_clip(&set, &posed)).await.map_err(|e| e.to_string())??;
        let limits = self.limits.unwrap_or_default();
        self.make_room(store, avi.len() as u64, limits.max_bytes).await?;
        let meta = object_store::ObjectMetadata {
            name: clip_name(&set_id),
            description: Some(format!("set {set_id}")),
            ..Default::default()
        };
        store.put(meta, &mut avi.as_slice()).await.map_err(|e| e.to_string())?;
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).insert(set_id);
        Ok(Some(avi.len() as u64))
    }

    /// Deletes the oldest clips until `incoming` more bytes fit under `max_bytes`.
    async fn make_room(&self, store: &ObjectStore, incoming: u64, max_bytes: u64) -> Result<(), String> {
        let mut list = store.list().await.map_err(|e| e.to_string())?;
        let mut clips = Vec::new();
        while let Some(info) = list.next().await {
            let info = info.map_err(|e| e.to_string())?;
            if !info.deleted {
                clips.push((info.modified, info.name, info.size as u64));
            }
        }
        clips.sort();
        let mut total: u64 = clips.iter().map(|c| c.2).sum();
        for (_, name, size) in clips {
            if total + incoming <= max_bytes {
                break;
            }
            store.delete(&name).await.map_err(|e| e.to_string())?;
            if let Some(id) = name.strip_suffix(".avi") {
                self.kept.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
            }
            total -= size;
        }
        Ok(())
    }
}

/// The clip of `set` from its posed frames: each with its own skeleton (the athlete bright) and
/// the set's rep count at that moment, played at the rate the poses came.
fn draw_clip(set: &SetEvent, posed: &[Posed]) -> Result<Vec<u8>, String> {
    let mut jpegs = Vec::with_capacity(posed.len());
    for p in posed {
        let t = p.pose.source_ts_ns as f64 / 1e9;
        let reps = set.rep_times_s.iter().filter(|r| **r <= t).count();
        let caption = format!("REPS {reps}");
        let overlay = Overlay { poses: Some(&p.pose), caption: Some(&caption), athlete: p.athlete };
        let frame = CheckedFrame::new(p.frame.clone(), pump_bus::frame::MAX_DIMENSION)?;
        jpegs.push(render(&frame, Some(overlay))?);
    }
    let (first, last) = (posed[0].frame.capture_ts_ns, posed[posed.len() - 1].frame.capture_ts_ns);
    let fps = if last > first { (posed.len() - 1) as f64 / ((last - first) as f64 / 1e9) } else { 1.0 };
    let (w, h) = (posed[0].frame.width, posed[0].frame.height);
    crate::avi::mjpeg_avi(&jpegs, w, h, fps.clamp(0.5, 120.0)).map_err(|e| e.to_string())
}

/// What is paired by capture time: a frame and its pose.
trait Captured {
    fn capture_ts(&self) -> i64;
    /// What it holds in memory, about.
    fn bytes(&self) -> usize;
}

impl Captured for Frame {
    fn capture_ts(&self) -> i64 {
        self.capture_ts_ns
    }
    fn bytes(&self) -> usize {
        self.data.len()
    }
}

impl Captured for PoseFrame {
    fn capture_ts(&self) -> i64 {
        self.capture_ts_ns
    }
    fn bytes(&self) -> usize {
        self.encoded_len()
    }
}

/// Pairs `item` with its partner among `theirs` (both sides come in capture order, so partners
/// older than `item` are never coming and go), or queues it among `ours` (at most [`WAITING`]
/// of them and [`WAITING_BYTES`], the oldest going first) for its partner to find. The bus orders each subject, not frames against poses: either may
/// come first.
fn pair<A: Captured, B: Captured>(
    item: A,
    ours: &mut VecDeque<A>,
    theirs: &mut VecDeque<B>,
    fits: impl Fn(&A, &B) -> bool,
) -> Option<(A, B)> {
    let at = item.capture_ts();
    while theirs.front().is_some_and(|t| t.capture_ts() < at) {
        theirs.pop_front();
    }
    if theirs.front().is_some_and(|t| fits(&item, t)) {
        return theirs.pop_front().map(|t| (item, t));
    }
    let mut held = ours.iter().map(Captured::bytes).sum::<usize>() + item.bytes();
    while ours.len() >= WAITING || (held > WAITING_BYTES && !ours.is_empty()) {
        held -= ours.pop_front().map_or(0, |o| o.bytes());
    }
    if held <= WAITING_BYTES {
        ours.push_back(item);
    }
    None
}

/// Opens (or makes) the clip bucket, retrying until the bus lets it.
async fn open_store(
    js: &async_nats::jetstream::Context,
    limits: ClipLimits,
    shutdown: &CancellationToken,
) -> Option<ObjectStore> {
    let mut wait = Duration::from_millis(200);
    loop {
        let made = match js.get_object_store(CLIPS_BUCKET).await {
            Ok(s) => Ok(s),
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: CLIPS_BUCKET.to_string(),
                    description: Some("pump: a clip of each set".into()),
                    max_age: limits.max_age,
                    num_replicas: limits.replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string()),
        };
        match made {
            Ok(s) => return Some(s),
            Err(e) => warn!(error = %e, "clip store not available yet"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(wait) => wait = (wait * 2).min(Duration::from_secs(5)),
        }
    }
}

/// Records a clip of every set closed while the gateway runs, until `shutdown`. Without limits
/// (no `--clips`) it only opens the store to serve what another gateway recorded.
pub async fn run(clips: Arc<Clips>, book: Arc<LiveCameras>, client: async_nats::Client, shutdown: CancellationToken) {
    let js = async_nats::jetstream::new(client.clone());
    let Some(limits) = clips.limits else {
        if let Ok(store) = js.get_object_store(CLIPS_BUCKET).await {
            load_kept(&clips, &store).await;
            let _ = clips.store.set(store);
        }
        return;
    };
    let Some(store) = open_store(&js, limits, &shutdown).await else { return };
    load_kept(&clips, &store).await;
    let _ = clips.store.set(store);
    let subs = async {
        Ok::<_, async_nats::SubscribeError>((
            client.subscribe(FRAMES_ALL).await?,
            client.subscribe(POSES_ALL).await?,
            client.subscribe(SETS_ALL).await?,
        ))
    };
    let (mut frames, mut poses, mut sets) = match subs.await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot record clips");
            return;
        }
    };
    info!(max_mb = limits.max_bytes >> 20, max_age_h = limits.max_age.as_secs() / 3600, "recording a clip of each set");
    let writers = tokio_util::task::TaskTracker::new();
    // JPEG-encoding kept frames is CPU work: one thread of its own, in order, never the runtime's.
    let (keeper, jobs) = std::sync::mpsc::sync_channel::<Keep>(KEEP_QUEUE);
    let keeping = {
        let clips = clips.clone();
        std::thread::Builder::new().name("pump-clips".into()).spawn(move || {
            jobs.iter().for_each(|j: Keep| {
                let bytes = j.frame.data.len();
                clips.keep(j);
                clips.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            })
        })
    };
    let hand_over = |pair: Option<(Frame, PoseFrame)>| {
        if let Some(pair) = pair {
            let bytes = pair.0.data.len();
            let queued = clips.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
            if queued + bytes > KEEP_QUEUE_BYTES || keeper.try_send(Keep::of(pair, &book)).is_err() {
                clips.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
                clips.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(m) = frames.next() => if let Ok(f) = Frame::decode(m.payload) { hand_over(clips.on_frame(f)) },
            Some(m) = poses.next() => if let Ok(p) = PoseFrame::decode(m.payload) { hand_over(clips.on_pose(p)) },
            Some(m) = sets.next() => if let Ok(set) = SetEvent::decode(m.payload) {
                let clips = clips.clone();
                writers.spawn(async move {
                    // The poses of the set's last frames may still be on their way.
                    tokio::time::sleep(SETTLE).await;
                    let (camera, set_id) = (set.camera.clone(), set.set_id.clone());
                    match clips.record(set).await {
                        Ok(Some(bytes)) => {
                            clips.written.fetch_add(1, Ordering::Relaxed);
                            info!(camera, set_id, bytes, "clip written");
                        }
                        Ok(None) => {}
                        Err(e) => {
                            clips.failed.fetch_add(1, Ordering::Relaxed);
                            warn!(camera, set_id, error = %e, "clip not written");
                        }
                    }
                });
            },
            else => break,
        }
    }
    // A clip being written is finished (bounded): it is of a set that already closed.
    writers.close();
    let _ = tokio::time::timeout(Duration::from_secs(10), writers.wait()).await;
    drop(keeper);
    if let Ok(thread) = keeping {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

async fn load_kept(clips: &Clips, store: &ObjectStore) {
    let Ok(mut list) = store.list().await else { return };
    let mut kept = Vec::new();
    while let Some(Ok(info)) = list.next().await {
        if let (false, Some(id)) = (info.deleted, info.name.strip_suffix(".avi")) {
            kept.push(id.to_string());
        }
    }
    clips.kept.lock().unwrap_or_else(|e| e.into_inner()).extend(kept);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: u64, ts: i64) -> Frame {
        Frame {
            camera: "cam".into(),
            frame_id: id,
            capture_ts_ns: ts,
            width: 32,
            height: 24,
            encoding: pump_proto::Encoding::Bgr8 as i32,
            data: vec![90; 32 * 24 * 3].into(),
            ..Default::default()
        }
    }

    fn pose(id: u64, ts: i64) -> PoseFrame {
        PoseFrame { camera: "cam".into(), frame_id: id, capture_ts_ns: ts, source_ts_ns: ts, ..Default::default() }
    }

    fn frame_in(clips: &Clips, f: Frame, book: &LiveCameras) {
        if let Some(pair) = clips.on_frame(f) {
            clips.keep(Keep::of(pair, book));
        }
    }

    fn pose_in(clips: &Clips, p: PoseFrame, book: &LiveCameras) {
        if let Some(pair) = clips.on_pose(p) {
            clips.keep(Keep::of(pair, book));
        }
    }

    #[test]
    fn a_long_set_of_large_frames_keeps_its_last_part_within_the_cameras_budget() {
        let clips = Clips::new(Some(ClipLimits::default()));
        let noise: Vec<u8> = (0..640 * 480 * 3).map(|i: usize| (i.wrapping_mul(7919) % 251) as u8).collect();
        let raw = Frame { width: 640, height: 480, data: noise.into(), ..frame(0, 0) };
        let jpeg = render(&CheckedFrame::new(raw, 8192).unwrap(), None).unwrap();
        // 100 poses a second, all within MAX_CLIP: only the bytes bound holds them.
        let n = (POSED_BYTES / jpeg.len() + 50) as u64;
        assert!(n < 100 * MAX_CLIP.as_secs(), "{n}");
        for i in 0..n {
            let ts = i as i64 * 10_000_000;
            let f = Frame {
                frame_id: i,
                capture_ts_ns: ts,
                width: 640,
                height: 480,
                encoding: pump_proto::Encoding::Jpeg as i32,
                data: jpeg.clone(),
                ..frame(0, 0)
            };
            clips.keep(Keep { frame: f, pose: pose(i, ts), in_set: true, athlete: None });
        }
        assert!(clips.held_bytes() <= POSED_BYTES, "{} bytes held", clips.held_bytes());
        let (first, last) = clips
            .cameras
            .read("cam", |r| (r.posed.front().map(|p| p.frame.frame_id), r.posed.back().map(|p| p.frame.frame_id)))
            .unwrap();
        assert_eq!(last, Some(n - 1), "the newest is kept");
        assert!(first > Some(40), "the oldest went: {first:?}");
    }

    #[test]
    fn frames_waiting_for_a_pose_that_never_comes_are_bounded_in_bytes() {
        let clips = Clips::new(Some(ClipLimits::default()));
        let book = LiveCameras::default();
        // Raw 1080p, inference stopped: no pose ever comes.
        let raw = Frame { width: 1920, height: 1080, data: vec![7u8; 1920 * 1080 * 3].into(), ..frame(0, 0) };
        for i in 0..60 {
            frame_in(&clips, Frame { frame_id: i, capture_ts_ns: i as i64 * 33_000_000, ..raw.clone() }, &book);
        }
        assert!(clips.held_bytes() <= WAITING_BYTES, "{} bytes held", clips.held_bytes());
        // The newest still finds its pose.
        let kept = clips.cameras.read("cam", |r| r.waiting.back().map(|f| f.frame_id)).unwrap();
        assert_eq!(kept, Some(59));
    }

    #[test]
    fn only_frames_with_their_pose_are_kept_as_jpeg() {
        let (clips, book) = (Clips::new(Some(ClipLimits::default())), LiveCameras::default());
        for i in 0..10u64 {
            frame_in(&clips, frame(i, i as i64 * 100_000_000), &book);
        }
        // Inference took frames 2, 5 and 9; a pose of a frame never seen keeps nothing.
        for i in [2u64, 5, 9] {
            pose_in(&clips, pose(i, i as i64 * 100_000_000), &book);
        }
        pose_in(&clips, pose(11, 1_100_000_000), &book);
        let kept: Vec<(u64, i32)> = clips
            .cameras
            .read("cam", |r| r.posed.iter().map(|p| (p.frame.frame_id, p.frame.encoding)).collect())
            .unwrap();
        let jpeg = pump_proto::Encoding::Jpeg as i32;
        assert_eq!(kept, vec![(2, jpeg), (5, jpeg), (9, jpeg)]);
        assert_eq!(clips.cameras.read("cam", |r| r.waiting.len()), Some(0));
        // A pose heard before its frame (another subscription) waits for it.
        pose_in(&clips, pose(12, 1_200_000_000), &book);
        frame_in(&clips, frame(12, 1_200_000_000), &book);
        assert_eq!(clips.cameras.read("cam", |r| r.posed.back().map(|p| p.frame.frame_id)), Some(Some(12)));
    }

    #[test]
    fn between_sets_only_the_pre_roll_is_kept() {
        let (clips, book) = (Clips::new(Some(ClipLimits::default())), LiveCameras::default());
        let step = 500_000_000i64;
        for i in 0..100u64 {
            frame_in(&clips, frame(i, i as i64 * step), &book);
            pose_in(&clips, pose(i, i as i64 * step), &book);
        }
        let span =
            clips.cameras.read("cam", |r| r.posed.back().unwrap().frame.capture_ts_ns - r.posed[0].frame.capture_ts_ns);
        assert_eq!(span, Some(PRE_ROLL.as_nanos() as i64));
    }

    #[test]
    fn a_long_set_is_kept_whole_until_its_clip_is_cut() {
        let (clips, book) = (Clips::new(Some(ClipLimits::default())), LiveCameras::default());
        let step = 500_000_000i64;
        let rep =
            |reps| pump_proto::RepProgress { camera: "cam".into(), set_id: "s".into(), reps, ..Default::default() };
        for i in 0..160u64 {
            // A set heard of at the 30th second, closed at the 70th.
            match i {
                60 => book.on_reps(rep(1)),
                140 => book.on_set(SetEvent { camera: "cam".into(), set_id: "s".into(), ..Default::default() }),
                _ => {}
            }
            frame_in(&clips, frame(i, i as i64 * step), &book);
            pose_in(&clips, pose(i, i as i64 * step), &book);
        }
        // Ten seconds after it closed, its frames from a pre-roll before it on are all here.
        let first = clips.cameras.read("cam", |r| r.posed[0].frame.frame_id).unwrap();
        // (A pre-roll before the last frame seen before the set was heard of.)
        assert_eq!(first, 59 - 2 * PRE_ROLL.as_secs());
    }

    #[test]
    fn a_clip_has_the_sets_posed_frames_with_the_count_of_reps_done() {
        let (clips, book) = (Clips::new(Some(ClipLimits::default())), LiveCameras::default());
        let step = 100_000_000i64;
        for i in 0..40u64 {
            frame_in(&clips, frame(i, i as i64 * step), &book);
            pose_in(&clips, pose(i, i as i64 * step), &book);
        }
        let set = SetEvent {
            camera: "cam".into(),
            set_id: "s".into(),
            start_s: 1.0,
            end_s: 3.0,
            rep_times_s: vec![1.5, 2.5],
            ..Default::default()
        };
        let posed = clips.span_of(&set);
        // From half a second before to half a second after.
        assert_eq!((posed[0].frame.frame_id, posed[posed.len() - 1].frame.frame_id), (5, 35));
        // The same file played again (a new segment, its timeline from 0 again): a set closed
        // now is of the new play.
        for i in 0..40u64 {
            let ts = (40 + i as i64) * step;
            frame_in(&clips, Frame { segment: 7, ..frame(i, ts) }, &book);
            pose_in(&clips, PoseFrame { segment: 7, source_ts_ns: i as i64 * step, ..pose(i, ts) }, &book);
        }
        let again = clips.span_of(&set);
        assert_eq!(again.len(), 31);
        assert!(again.iter().all(|p| p.pose.segment == 7 && p.frame.capture_ts_ns >= 45 * step));
        let avi = draw_clip(&set, &posed).unwrap();
        assert_eq!(&avi[8..12], b"AVI ");
        // 31 frames at the poses' 10 a second.
        let strh = avi.windows(4).position(|w| w == b"strh").unwrap() + 8;
        let at = |i: usize| u32::from_le_bytes([avi[i], avi[i + 1], avi[i + 2], avi[i + 3]]);
        assert_eq!((at(strh + 24), at(strh + 32)), (10_000, 31));
    }
}
