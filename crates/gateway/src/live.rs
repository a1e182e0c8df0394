//! What the gateway learns by listening to every camera's poses, reps and sets (core NATS, no
//! stream reads): the newest pose frame and rep count, rates, drops and latency histograms. It
//! feeds `ListCameras`, the preview and `/metrics`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use futures::StreamExt;
use prost::Message;
use pump_bus::ops::{Histogram, PerCamera, PromText, RateWindow};
use pump_bus::subject::{POSES_ALL, REPS_ALL, SETS_ALL};
use pump_proto::{PoseFrame, RepProgress, SetEvent};
use tokio_util::sync::CancellationToken;

pub const POSE_FRAMES: &str = "pump_gateway_pose_frames_total";
pub const CAMERA_FRAMES: &str = "pump_camera_frames_total";
/// The same names inference exports for the same quantities.
pub const INFER_SECONDS: &str = "pump_infer_seconds";
pub const FRAME_AGE_SECONDS: &str = "pump_frame_age_seconds";

/// Recent poses a camera's rates are measured over.
const WINDOW: usize = 60;

/// Closed sets kept per camera for the preview.
const SETS_KEPT: usize = 10;

/// A camera restarting its frame ids goes back by more than this (replicas reorder by less).
const RESTART_GAP: u64 = 1000;

#[derive(Debug, Default)]
struct CameraState {
    latest: Option<Arc<PoseFrame>>,
    /// The set in progress (cleared when that set closes).
    reps: Option<RepProgress>,
    /// When each rep of the set in progress hit bottom (its timeline, s).
    rep_times: Vec<f64>,
    /// The last closed sets, oldest first.
    sets: VecDeque<SetEvent>,
    arrivals: RateWindow,
    /// (frame id, capture time ns) of recent poses: the camera's own frame rate.
    frames: VecDeque<(u64, i64)>,
    /// Model run times (ms) of recent poses.
    infer_ms: VecDeque<f64>,
    /// Per inference instance: its (received, dropped) counts for this camera.
    instances: HashMap<String, (u64, u64)>,
    pose_frames: u64,
    /// The capture run the recent frames came from: a new one (a replay under the same name)
    /// restarts the frame rate's window.
    segment: u64,
    infer_seconds: Histogram,
    age_seconds: Histogram,
}

/// A camera's rates and counts as the gateway sees them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CameraRates {
    /// Pose frames arriving per second.
    pub pose_fps: f64,
    /// Frames the camera produces per second (from the frame ids of recent poses).
    pub frame_fps: f64,
    /// Model runs per second one worker sustains (1 / mean run time of recent poses).
    pub inference_fps: f64,
    /// Frames received and frames not inferred, summed over inference instances.
    pub received: u64,
    pub dropped: u64,
    pub ended: bool,
    /// Poses arrive slower than the floor for exact rep counts (a live camera only).
    pub below_floor: bool,
}

fn push<T>(q: &mut VecDeque<T>, v: T) {
    if q.len() == WINDOW {
        q.pop_front();
    }
    q.push_back(v);
}

impl CameraState {
    fn rates(&self) -> CameraRates {
        let frame_fps =
            match (self.frames.iter().min_by_key(|(id, _)| *id), self.frames.iter().max_by_key(|(id, _)| *id)) {
                (Some(&(a, ta)), Some(&(b, tb))) if b > a && tb > ta => (b - a) as f64 / ((tb - ta) as f64 / 1e9),
                _ => 0.0,
            };
        let mean_ms = self.infer_ms.iter().sum::<f64>() / self.infer_ms.len().max(1) as f64;
        CameraRates {
            pose_fps: self.arrivals.per_second(),
            frame_fps,
            inference_fps: if mean_ms > 0.0 { 1e3 / mean_ms } else { 0.0 },
            received: self.instances.values().map(|c| c.0).sum(),
            dropped: self.instances.values().map(|c| c.1).sum(),
            ended: self.latest.as_ref().is_some_and(|p| p.end_of_stream),
            below_floor: false,
        }
    }
}

/// The sets stage's floor for exact rep counts, in poses a second (`pump_sets::DEFAULT_MIN_POSE_RATE`:
/// the gateway links no pose crate; a test keeps the two equal).
pub const DEFAULT_POSE_RATE_FLOOR: f64 = 3.5;

/// Every camera the gateway has heard of since it started.
#[derive(Debug)]
pub struct LiveCameras {
    cameras: PerCamera<CameraState>,
    /// Poses a second under which a camera's counts are not exact.
    pub pose_rate_floor: f64,
}

impl Default for LiveCameras {
    fn default() -> Self {
        Self::with_floor(DEFAULT_POSE_RATE_FLOOR)
    }
}

impl LiveCameras {
    pub fn on_pose(&self, pf: PoseFrame) {
        self.cameras.update(&pf.camera.clone(), |s| {
            if !pf.instance.is_empty() {
                s.instances.insert(pf.instance.clone(), (pf.frames_received, pf.frames_dropped));
            }
            if !pf.end_of_stream {
                s.pose_frames += 1;
                s.arrivals.tick();
                if pf.segment != s.segment || s.frames.back().is_some_and(|&(id, _)| pf.frame_id + RESTART_GAP < id) {
                    s.segment = pf.segment;
                    s.frames.clear();
                }
                push(&mut s.frames, (pf.frame_id, pf.capture_ts_ns));
                if pf.inference_end_ns > pf.inference_start_ns && pf.inference_start_ns > 0 {
                    let ms = (pf.inference_end_ns - pf.inference_start_ns) as f64 / 1e6;
                    push(&mut s.infer_ms, ms);
                    s.infer_seconds.observe(ms / 1e3);
                }
                if pf.publish_ts_ns > pf.capture_ts_ns && pf.capture_ts_ns > 0 {
                    s.age_seconds.observe((pf.publish_ts_ns - pf.capture_ts_ns) as f64 / 1e9);
                }
            }
            s.latest = Some(Arc::new(pf));
        });
    }

    pub fn on_reps(&self, r: RepProgress) {
        self.cameras.update(&r.camera.clone(), |s| {
            match &s.reps {
                Some(old) if old.set_id == r.set_id => {
                    if r.reps > old.reps {
                        s.rep_times.push(r.t_s);
                    }
                }
                _ => s.rep_times = vec![r.t_s],
            }
            s.reps = Some(r);
        });
    }

    pub fn on_set(&self, set: SetEvent) {
        self.cameras.update(&set.camera.clone(), |s| {
            if s.reps.as_ref().is_some_and(|r| r.set_id == set.set_id) {
                s.reps = None;
                s.rep_times.clear();
            }
            if !s.sets.iter().any(|k| k.set_id == set.set_id) {
                if s.sets.len() == SETS_KEPT {
                    s.sets.pop_front();
                }
                s.sets.push_back(set);
            }
        });
    }

    pub fn rates(&self, camera: &str) -> Option<CameraRates> {
        self.cameras.read(camera, CameraState::rates).map(|r| self.judged(r))
    }

    /// Keeps at most `max` cameras (the longest-silent forgotten first).
    pub fn set_max_cameras(&self, max: usize) {
        self.cameras.set_max(max);
    }

    /// A book whose cameras are judged against `pose_rate_floor`.
    pub fn with_floor(pose_rate_floor: f64) -> Self {
        Self { cameras: PerCamera::default(), pose_rate_floor }
    }

    /// Rates with `below_floor` said: a live camera whose poses come slower than the floor.
    fn judged(&self, mut r: CameraRates) -> CameraRates {
        r.below_floor = !r.ended && r.pose_fps > 0.0 && r.pose_fps < self.pose_rate_floor;
        r
    }

    /// The newest pose frame heard (an end-of-stream one included).
    pub fn latest(&self, camera: &str) -> Option<Arc<PoseFrame>> {
        self.cameras.read(camera, |s| s.latest.clone()).flatten()
    }

    /// Where the athlete of the set in progress was last seen; `None` between sets.
    pub fn athlete(&self, camera: &str) -> Option<pump_proto::Box> {
        self.cameras.read(camera, |s| s.reps.as_ref().and_then(|r| r.athlete)).flatten()
    }

    /// The set in progress, with when each of its reps hit bottom; `None` between sets.
    pub fn in_progress(&self, camera: &str) -> Option<(RepProgress, Vec<f64>)> {
        self.cameras.read(camera, |s| s.reps.clone().map(|r| (r, s.rep_times.clone()))).flatten()
    }

    /// Reps of the set in progress: 0 between sets.
    pub fn reps(&self, camera: &str) -> u32 {
        self.cameras.read(camera, |s| s.reps.as_ref().map_or(0, |r| r.reps)).unwrap_or(0)
    }

    /// The last closed sets (up to 10), newest first.
    pub fn recent_sets(&self, camera: &str) -> Vec<SetEvent> {
        self.cameras.read(camera, |s| s.sets.iter().rev().cloned().collect()).unwrap_or_default()
    }

    /// Every camera heard of.
    pub fn cameras(&self) -> Vec<String> {
        self.cameras.names()
    }

    /// Per camera: how long ago a pose was heard and its frame captured, rates, and the
    /// execution provider the poses came from.
    pub fn health(&self) -> serde_json::Value {
        let now = pump_bus::clock::now_ns();
        let cameras: serde_json::Map<String, serde_json::Value> = self.cameras.read_all(|map| {
            map.iter()
                .map(|(c, s)| {
                    let r = self.judged(s.rates());
                    let latest = s.latest.as_deref();
                    let age = |ns: i64| (ns > 0).then(|| (now - ns) as f64 / 1e9);
                    let v = serde_json::json!({
                        "last_pose_age_s": s.arrivals.last_age_s(),
                        "last_posed_frame_age_s": latest.and_then(|p| age(p.capture_ts_ns)),
                        "provider": latest.map(|p| p.provider.clone()),
                        "pose_fps": r.pose_fps,
                        "pose_rate_floor": self.pose_rate_floor,
                        "below_pose_rate_floor": r.below_floor,
                        "frame_fps": r.frame_fps,
                        "frames_dropped": r.dropped,
                        "ended": r.ended,
                    });
                    (c.clone(), v)
                })
                .collect()
        });
        serde_json::Value::Object(cameras)
    }

    /// Per camera and stage: pose frames, drops, fps, model time and frame age histograms.
    pub fn prometheus(&self, p: &mut PromText) {
        self.cameras.read_all(|map| Self::prometheus_of(map, p));
    }

    fn prometheus_of(map: &BTreeMap<String, CameraState>, p: &mut PromText) {
        let rates: Vec<(&String, CameraRates)> = map.iter().map(|(c, s)| (c, s.rates())).collect();
        p.per_camera(POSE_FRAMES, "counter", "Pose frames heard by the gateway.", map, |s| s.pose_frames as f64);
        // What each stage did with a camera's frames: captured (its newest posed frame's id + 1:
        // ids count every frame the camera gave), received and dropped by inference (summed
        // over its instances). Rates are these counters' `rate()`, not gauges.
        p.family(CAMERA_FRAMES, "counter", "Frames of a camera, by stage (inference summed over its instances).");
        for ((c, r), s) in rates.iter().zip(map.values()) {
            let captured = s.latest.as_deref().map_or(0, |p| p.frame_id + 1);
            p.sample(CAMERA_FRAMES, &[("camera", c), ("stage", "captured")], captured as f64);
            p.sample(CAMERA_FRAMES, &[("camera", c), ("stage", "inference_received")], r.received as f64);
            p.sample(CAMERA_FRAMES, &[("camera", c), ("stage", "inference_dropped")], r.dropped as f64);
        }
        p.family(INFER_SECONDS, "histogram", "Model run time of the poses heard.");
        for (c, s) in map.iter() {
            p.histogram(INFER_SECONDS, &[("camera", c)], &s.infer_seconds);
        }
        p.family(FRAME_AGE_SECONDS, "histogram", "Frame age when its pose was published.");
        for (c, s) in map.iter() {
            p.histogram(FRAME_AGE_SECONDS, &[("camera", c)], &s.age_seconds);
        }
    }
}

/// Feeds the book until `shutdown` or until the bus closes the subscriptions.
pub async fn listen(book: Arc<LiveCameras>, client: async_nats::Client, shutdown: CancellationToken) {
    let subs = async {
        Ok::<_, async_nats::SubscribeError>((
            client.subscribe(POSES_ALL).await?,
            client.subscribe(REPS_ALL).await?,
            client.subscribe(SETS_ALL).await?,
        ))
    };
    let (mut poses, mut reps, mut sets) = match subs.await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen to poses: camera rates stay empty");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(m) = poses.next() => if let Ok(pf) = PoseFrame::decode(m.payload) { book.on_pose(pf) },
            Some(m) = reps.next() => if let Ok(r) = RepProgress::decode(m.payload) { book.on_reps(r) },
            Some(m) = sets.next() => if let Ok(s) = SetEvent::decode(m.payload) { book.on_set(s) },
            else => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_camera_under_the_pose_rate_floor_is_said_to_be() {
        let book = LiveCameras::with_floor(3.5);
        let live = |pose_fps, ended| CameraRates { pose_fps, ended, ..Default::default() };
        assert!(book.judged(live(2.0, false)).below_floor);
        assert!(!book.judged(live(4.0, false)).below_floor);
        assert!(!book.judged(live(2.0, true)).below_floor, "an ended camera is not slow");
        assert!(!book.judged(live(0.0, false)).below_floor, "no poses yet: nothing to judge");
    }

    fn pose(id: u64, instance: &str, received: u64, dropped: u64) -> PoseFrame {
        PoseFrame {
            camera: "cam".into(),
            frame_id: id,
            capture_ts_ns: 1_000_000_000 + id as i64 * 66_666_667,
            inference_start_ns: 10,
            inference_end_ns: 10 + 40_000_000,
            publish_ts_ns: 1_000_000_000 + id as i64 * 66_666_667 + 50_000_000,
            instance: instance.into(),
            frames_received: received,
            frames_dropped: dropped,
            ..Default::default()
        }
    }

    #[test]
    fn rates_come_from_frame_ids_and_model_times() {
        let book = LiveCameras::default();
        // Every other frame of a 15 fps camera reaches a pose.
        for i in 0..20 {
            book.on_pose(pose(i * 2, "a", i * 2 + 1, i));
        }
        let r = book.rates("cam").unwrap();
        assert!((r.frame_fps - 15.0).abs() < 0.01, "{r:?}");
        assert!((r.inference_fps - 25.0).abs() < 0.01, "{r:?}");
        assert_eq!((r.received, r.dropped), (39, 19));
        assert!(book.rates("other").is_none());
    }

    #[test]
    fn drops_sum_over_instances_and_a_restart_resets_the_window() {
        let book = LiveCameras::default();
        book.on_pose(pose(5000, "a", 10, 2));
        book.on_pose(pose(5001, "b", 7, 1));
        book.on_pose(pose(5002, "a", 12, 3));
        let r = book.rates("cam").unwrap();
        assert_eq!((r.received, r.dropped), (19, 4));
        // The camera restarts: ids from 0 again, the old ones no longer count.
        book.on_pose(pose(0, "a", 13, 3));
        book.on_pose(pose(3, "a", 14, 3));
        assert!((book.rates("cam").unwrap().frame_fps - 15.0).abs() < 0.01);
    }

    #[test]
    fn a_short_clip_replayed_under_its_name_keeps_its_frame_rate() {
        let book = LiveCameras::default();
        // A 75-frame clip, played twice under one name: ids restart by less than the restart gap,
        // later in time; the second play is a new segment.
        for (segment, t0) in [(1u64, 0i64), (2, 60_000_000_000)] {
            for id in 0..75u64 {
                let mut p = pose(id, "a", id + 1, 0);
                p.segment = segment;
                p.capture_ts_ns += t0;
                book.on_pose(p);
            }
        }
        assert!((book.rates("cam").unwrap().frame_fps - 15.0).abs() < 0.01);
    }

    #[test]
    fn reps_clear_when_their_set_closes() {
        let book = LiveCameras::default();
        book.on_reps(RepProgress {
            camera: "cam".into(),
            set_id: "s1".into(),
            reps: 3,
            t_s: 1.0,
            ..Default::default()
        });
        assert_eq!(book.reps("cam"), 3);
        // A rep heard twice (a replayed count) is one rep time; joined mid-set, the times of
        // the reps heard.
        for (reps, t_s) in [(4, 3.0), (4, 3.0), (5, 5.0)] {
            book.on_reps(RepProgress { camera: "cam".into(), set_id: "s1".into(), reps, t_s, ..Default::default() });
        }
        assert_eq!(book.in_progress("cam").unwrap().1, vec![1.0, 3.0, 5.0]);
        book.on_set(SetEvent { camera: "cam".into(), set_id: "s0".into(), ..Default::default() });
        assert_eq!(book.reps("cam"), 5);
        book.on_set(SetEvent { camera: "cam".into(), set_id: "s1".into(), reps: 4, ..Default::default() });
        assert_eq!(book.reps("cam"), 0);
        assert!(book.in_progress("cam").is_none());
        assert_eq!(book.recent_sets("cam")[0].reps, 4);
        // Heard twice (stored, then live): kept once.
        book.on_set(SetEvent { camera: "cam".into(), set_id: "s1".into(), reps: 4, ..Default::default() });
        assert_eq!(book.recent_sets("cam").len(), 2);
    }

    #[test]
    fn metrics_carry_histograms_per_camera() {
        let book = LiveCameras::default();
        book.on_pose(pose(1, "a", 1, 0));
        let mut p = PromText::default();
        book.prometheus(&mut p);
        let t = p.finish();
        assert!(t.contains("pump_infer_seconds_bucket{camera=\"cam\",le=\"0.04\"} 1"), "{t}");
        assert!(t.contains("pump_frame_age_seconds_count{camera=\"cam\"} 1"), "{t}");
        assert!(t.contains("pump_camera_frames_total{camera=\"cam\",stage=\"captured\"} 2"), "{t}");
    }
}
