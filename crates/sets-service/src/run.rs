//! The sets service loop. See the crate docs for the delivery guarantees.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, consumer, message::PublishMessage};
use futures::StreamExt;
use prost::Message;
use pump_bus::codec::decode_pose_frame;
use pump_bus::connect::{flush_bounded, BusConfig};
use pump_bus::ops::{PerCamera, RateWindow};
use pump_bus::streams::{ensure_streams_retrying, StreamLimits, POSES_STREAM};
use pump_bus::subject::{self, CameraId, POSES_ALL};
use pump_pose::Pose;
use pump_proto::{AngleRange, FeatureRow, PoseFrame, RepProgress};
use pump_sets::{FrameInput, SetConfig, SetEvent, SetTracker, TrackerEvent, Zone};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Stream of resume checkpoints, the last one per camera (a key-value store in all but name:
/// the KV API itself does not work against Debian's nats-server 2.9).
pub const CHECKPOINT_STREAM: &str = "PUMP_SETS_RESUME";
const CHECKPOINT_PREFIX: &str = "pump.sets-resume.";

#[derive(Debug, Clone)]
pub struct Config {
    pub bus: BusConfig,
    pub limits: StreamLimits,
    /// Settings of every camera, but for what `cameras` says of one.
    pub sets: SetConfig,
    /// Per-camera exercise and zone, over `sets`.
    pub cameras: BTreeMap<String, CameraSettings>,
    /// Durable consumer name on the poses stream.
    pub consumer: String,
    /// How often checkpoints are written (also after every set and at shutdown).
    pub checkpoint_interval: Duration,
}

impl Config {
    pub fn new(bus: BusConfig) -> Self {
        Self {
            bus,
            limits: StreamLimits::default(),
            sets: SetConfig::default(),
            cameras: BTreeMap::new(),
            consumer: "pump-sets".into(),
            checkpoint_interval: Duration::from_secs(1),
        }
    }

    /// The settings `camera` is counted with.
    pub fn sets_for(&self, camera: &str) -> SetConfig {
        let mut cfg = self.sets.clone();
        if let Some(c) = self.cameras.get(camera) {
            if c.exercise.is_some() {
                cfg.exercise.clone_from(&c.exercise);
            }
            if c.zone.is_some() {
                cfg.zone = c.zone;
            }
        }
        cfg
    }
}

/// What one camera changes of the service's settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CameraSettings {
    pub exercise: Option<String>,
    pub zone: Option<Zone>,
}

/// Seconds of a camera's timeline over which its pose rate is measured.
const POSE_RATE_WINDOW_SECONDS: f64 = 5.0;

/// Counters of the sets stage.
#[derive(Debug, Default)]
pub struct SetsStats {
    pub poses: AtomicU64,
    pub out_of_order: AtomicU64,
    pub sets_published: AtomicU64,
    pub reps_published: AtomicU64,
    pub replayed: AtomicU64,
    /// Set once the consumer is in place: poses published from now on are seen.
    pub ready: std::sync::atomic::AtomicBool,
    pub cameras: PerCamera<SetsCameraStats>,
}

/// One camera as the sets stage sees it.
#[derive(Debug, Clone, Default)]
pub struct SetsCameraStats {
    poses: RateWindow,
    /// Poses a second on the camera's own timeline (what the rep counter sees), over the last
    /// few seconds of it; 0 until there are enough.
    pub pose_rate: f64,
    /// The pose rate is under the floor at which counts are exact: sets are pending.
    pub below_floor: bool,
    /// Reps of the set in progress (0 between sets).
    pub reps: usize,
    /// Sets stored since the start (duplicates after a restart not counted).
    pub sets: u64,
}

pub struct Service {
    pub config: Config,
    pub client: async_nats::Client,
    pub stats: Arc<SetsStats>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served, if anywhere.
    pub ops: Option<tokio::net::TcpListener>,
}

impl SetsStats {
    /// Prometheus text of the sets stage.
    pub fn prometheus(&self, nats_connected: f64) -> String {
        let mut p = pump_bus::ops::PromText::for_service(nats_connected);
        for (name, help, v) in [
            ("pump_sets_poses_total", "Pose frames processed.", &self.poses),
            ("pump_sets_out_of_order_total", "Pose frames dropped as older than the last one.", &self.out_of_order),
            ("pump_sets_published_total", "Sets stored (duplicates not counted).", &self.sets_published),
            ("pump_reps_published_total", "Live rep counts published.", &self.reps_published),
            ("pump_sets_replayed_total", "Pose frames replayed after a restart.", &self.replayed),
        ] {
            p.single(name, "counter", help, v.load(Ordering::Relaxed) as f64);
        }
        type Pick = fn(&SetsCameraStats) -> f64;
        let per_camera: [(&str, &str, &str, Pick); 5] = [
            ("pump_sets_poses_per_second", "gauge", "Pose frames processed per second over the last 60.", |s| {
                s.poses.per_second()
            }),
            ("pump_sets_reps_in_progress", "gauge", "Reps of the set in progress.", |s| s.reps as f64),
            ("pump_sets_pose_rate", "gauge", "Poses a second on the camera's timeline, over its last 5 s.", |s| {
                s.pose_rate
            }),
            (
                "pump_sets_below_pose_rate_floor",
                "gauge",
                "1 while the pose rate is under the floor for exact counts.",
                |s| f64::from(u8::from(s.below_floor)),
            ),
            ("pump_sets_stored_total", "counter", "Sets stored, per camera.", |s| s.sets as f64),
        ];
        let cameras = self.cameras.snapshot();
        for (name, kind, help, pick) in per_camera {
            p.per_camera(name, kind, help, &cameras, pick);
        }
        p.finish()
    }

    /// Health: readiness, totals, and per camera the age of the last pose, the rates (arrival,
    /// and on the camera's timeline against the floor for exact counts), the reps of the set in
    /// progress and the sets stored.
    pub fn health(&self, pose_rate_floor: f64) -> serde_json::Value {
        let cameras: serde_json::Map<String, serde_json::Value> = self
            .cameras
            .snapshot()
            .into_iter()
            .map(|(c, s)| {
                let v = serde_json::json!({"last_pose_age_s": s.poses.last_age_s(),
                    "poses_per_second": s.poses.per_second(), "pose_rate": s.pose_rate,
                    "pose_rate_floor": pose_rate_floor, "below_pose_rate_floor": s.below_floor,
                    "reps_in_set": s.reps, "sets_stored": s.sets});
                (c, v)
            })
            .collect();
        serde_json::json!({"service": "pump-sets", "ready": self.ready.load(Ordering::SeqCst),
            "poses": self.poses.load(Ordering::Relaxed), "sets_published": self.sets_published.load(Ordering::Relaxed),
            "cameras": cameras})
    }
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("config", &self.config).finish()
    }
}

/// Where a camera resumes: replay from `resume_seq`; events up to `last_seq` were already sent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Checkpoint {
    resume_seq: u64,
    last_seq: u64,
}

impl Checkpoint {
    fn encode(&self) -> bytes::Bytes {
        format!("{} {}", self.resume_seq, self.last_seq).into()
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(b).ok()?;
        let (a, b) = s.split_once(' ')?;
        Some(Self { resume_seq: a.parse().ok()?, last_seq: b.parse().ok()? })
    }
}

struct CameraState {
    id: CameraId,
    settings: SetConfig,
    /// The segment of the camera's timeline being counted (a capture run, a play of a file).
    segment: Option<u64>,
    tracker: SetTracker,
    last_frame: Option<(u64, i64)>,
    /// Recent pose times on the timeline, for the pose rate.
    recent: VecDeque<f64>,
    /// When the last pose arrived: a camera silent for its quiet time has its set closed.
    last_pose_at: std::time::Instant,
    /// (frame time, stream sequence) of the poses the tracker may still need.
    seqs: VecDeque<(f64, u64)>,
    checkpoint: Checkpoint,
    dirty: bool,
}

/// The wire form of a set.
pub fn set_message(e: &SetEvent) -> pump_proto::SetEvent {
    pump_proto::SetEvent {
        camera: e.camera.clone(),
        set_id: e.set_id.clone(),
        start_s: e.start,
        end_s: e.end,
        start_frame: e.start_frame,
        end_frame: e.end_frame,
        reps: e.reps as u32,
        rep_times_s: e.rep_times.clone(),
        exercise: e.exercise.clone(),
        confidence: e.confidence,
        frames: e.features.len() as u32,
        angle_ranges: e
            .features
            .ranges()
            .map(|r| r.iter().map(|(min, max)| AngleRange { min: *min, max: *max }).collect())
            .unwrap_or_default(),
        features: e.features.rows.iter().map(|r| FeatureRow { angles: r.to_vec() }).collect(),
        pending: e.pending,
        pose_rate: e.pose_rate,
        longest_gap_s: e.longest_gap,
    }
}

pub async fn run(service: Service, shutdown: CancellationToken) -> anyhow::Result<()> {
    let Service { config, client, stats, ops } = service;
    let floor = config.sets.min_pose_rate;
    let ops_task = ops.map(|listener| {
        let (r, h, m, c) = (stats.clone(), stats.clone(), stats.clone(), client.clone());
        let ops = pump_bus::ops::Ops {
            not_ready: pump_bus::ops::ready_with_bus(client.clone(), move || {
                (!r.ready.load(Ordering::SeqCst)).then(|| "poses consumer not in place yet".to_string())
            }),
            health: Arc::new(move || h.health(floor)),
            metrics: Arc::new(move || m.prometheus(pump_bus::ops::nats_connected(&c))),
        };
        let token = shutdown.child_token();
        (tokio::spawn(pump_bus::ops::serve(listener, ops, token.clone())), token)
    });
    let js = jetstream::new(client.clone());
    if !ensure_streams_retrying(&js, &config.limits, &shutdown).await? {
        return Ok(());
    }
    // Set up again after every reconnection, while this service runs.
    let _streams = pump_bus::streams::keep_streams_while(&client, config.limits, &shutdown);
    let store = js
        .create_or_update_stream(jetstream::stream::Config {
            name: CHECKPOINT_STREAM.into(),
            subjects: vec![format!("{CHECKPOINT_PREFIX}>"), crate::lease::LEASE_SUBJECT.into()],
            storage: jetstream::stream::StorageType::File,
            max_messages_per_subject: 1,
            discard: jetstream::stream::DiscardPolicy::Old,
            ..Default::default()
        })
        .await
        .context("cannot set up the checkpoint stream")?;
    let _ = store;
    let store = js.get_stream(CHECKPOINT_STREAM).await.context("cannot open the checkpoint stream")?;
    let mut checkpoints: BTreeMap<String, Checkpoint> = BTreeMap::new();
    let mut subjects =
        store.info_with_subjects(format!("{CHECKPOINT_PREFIX}>")).await.context("cannot list checkpoints")?;
    let mut names = Vec::new();
    while let Some(item) = subjects.next().await {
        names.push(item.context("cannot list checkpoints")?.0);
    }
    for name in names {
        let Some(camera) = name.strip_prefix(CHECKPOINT_PREFIX) else { continue };
        if let Ok(m) = store.get_last_raw_message_by_subject(&name).await {
            if let Some(cp) = Checkpoint::decode(&m.payload) {
                checkpoints.insert(camera.to_string(), cp);
            }
        }
    }
    let deliver_policy = match checkpoints.values().map(|c| c.resume_seq).min() {
        Some(seq) => consumer::DeliverPolicy::ByStartSequence { start_sequence: seq.max(1) },
        None => consumer::DeliverPolicy::New,
    };
    // Only one instance may own the consumer below: a second one refuses to start.
    let lease = crate::lease::Lease::acquire(&js, &store, &crate::lease::instance_name()).await?;
    let poses_stream = js.get_stream(POSES_STREAM).await.context("cannot find the poses stream")?;
    // Recreated at each start: its position is the checkpoint's, which covers the set in progress.
    let _ = poses_stream.delete_consumer(&config.consumer).await;
    let consumer: consumer::PullConsumer = poses_stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(config.consumer.clone()),
            filter_subject: POSES_ALL.into(),
            deliver_policy,
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .context("cannot create the poses consumer")?;
    let mut messages = consumer.messages().await.context("cannot consume poses")?;
    stats.ready.store(true, Ordering::SeqCst);
    info!(resuming = !checkpoints.is_empty(), "sets service running");

    let mut cameras: HashMap<String, CameraState> = HashMap::new();
    let mut tick = tokio::time::interval(config.checkpoint_interval);
    // Why the loop ended other than by shutdown: the service then fails, never exits 0 silently.
    let mut lost: Option<String> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                close_silent_sets(&js, &mut cameras, &stats).await;
                save_checkpoints(&js, &mut cameras).await;
            }
            msg = messages.next() => {
                let Some(msg) = msg else {
                    lost = Some("the poses consumer ended".into());
                    break;
                };
                let msg = match msg {
                    Ok(m) => m,
                    Err(e) if e.kind() == consumer::pull::MessagesErrorKind::ConsumerDeleted => {
                        lost = Some(format!("the poses consumer was deleted ({e}); was another pump-sets started?"));
                        break;
                    }
                    Err(e) => {
                        warn!(error = %e, "poses consumer error");
                        continue;
                    }
                };
                let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
                if let Some(camera) = subject::camera_of_poses(&msg.subject) {
                    if let Ok(pf) = decode_pose_frame(&msg.payload) {
                        let state = cameras.entry(camera.to_string()).or_insert_with(|| CameraState {
                            id: camera.clone(),
                            settings: config.sets_for(camera.as_str()),
                            // Replaced by the first pose's segment's tracker.
                            segment: None,
                            tracker: SetTracker::new(camera.as_str(), SetConfig::default()),
                            last_frame: None,
                            recent: VecDeque::new(),
                            last_pose_at: std::time::Instant::now(),
                            seqs: VecDeque::new(),
                            checkpoint: checkpoints.get(camera.as_str()).copied().unwrap_or_default(),
                            dirty: false,
                        });
                        if seq >= state.checkpoint.resume_seq {
                            handle(&js, &client, state, &pf, seq, &stats).await;
                        }
                    }
                }
                if let Err(e) = msg.ack().await {
                    warn!(error = %e, "ack failed");
                }
            }
        }
    }
    stats.ready.store(false, Ordering::SeqCst);
    if let Some((task, token)) = ops_task {
        token.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    save_checkpoints(&js, &mut cameras).await;
    lease.release().await;
    flush_bounded(&client).await;
    match lost {
        Some(why) => anyhow::bail!("{why}"),
        None => Ok(()),
    }
}

async fn handle(
    js: &jetstream::Context,
    client: &async_nats::Client,
    st: &mut CameraState,
    pf: &PoseFrame,
    seq: u64,
    stats: &SetsStats,
) {
    stats.poses.fetch_add(1, Ordering::Relaxed);
    stats.cameras.update(st.id.as_str(), |c| c.poses.tick());
    st.last_pose_at = std::time::Instant::now();
    let replaying = seq <= st.checkpoint.last_seq;
    if replaying {
        stats.replayed.fetch_add(1, Ordering::Relaxed);
    }
    let mut closed = Vec::new();
    // A new segment (capture restarted, a file played again): its time starts afresh, so the set
    // in progress closes with what it has and the new segment gets its own tracker.
    if st.segment != Some(pf.segment) {
        if st.segment.is_some_and(|s| pf.segment < s) {
            // A late pose of an earlier segment.
            stats.out_of_order.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if st.segment.is_some() {
            closed.extend(st.tracker.finish());
            info!(camera_id = %st.id, segment = pf.segment, "new segment of the camera's timeline");
        }
        st.segment = Some(pf.segment);
        let name = if pf.segment == 0 { String::new() } else { format!("{:x}", pf.segment) };
        st.tracker = SetTracker::for_segment(st.id.as_str(), name, st.settings.clone());
        st.last_frame = None;
        st.recent.clear();
        // The old segment's poses are done with once its set is published below.
        st.seqs.clear();
    }
    if pf.end_of_stream {
        closed.extend(st.tracker.finish());
    } else {
        // Replicas may deliver out of order: a frame older than the last one is dropped.
        if st.last_frame.is_some_and(|(id, ts)| pf.frame_id <= id && pf.capture_ts_ns <= ts) {
            stats.out_of_order.fetch_add(1, Ordering::Relaxed);
            return;
        }
        st.last_frame = Some((pf.frame_id, pf.capture_ts_ns));
        let poses: Vec<Pose> = pf.people.iter().map(pump_pose::proto::from_person).collect();
        let t = pf.source_ts_ns as f64 / 1e9;
        watch_pose_rate(st, t, stats);
        let input =
            FrameInput { t, frame: pf.frame_id, width: pf.width as f32, height: pf.height as f32, poses: &poses };
        for event in st.tracker.push(input) {
            match event {
                TrackerEvent::Rep { set_id, reps, t } => {
                    stats.cameras.update(st.id.as_str(), |c| c.reps = reps);
                    // A rep replayed after a restart was published before it.
                    if replaying {
                        continue;
                    }
                    let msg = RepProgress { camera: st.id.to_string(), set_id, reps: reps as u32, t_s: t };
                    if client.publish(subject::reps(&st.id), msg.encode_to_vec().into()).await.is_ok() {
                        stats.reps_published.fetch_add(1, Ordering::Relaxed);
                    }
                }
                TrackerEvent::Closed(set) => closed.push(set),
            }
        }
        st.seqs.push_back((t, seq));
    }
    publish_and_checkpoint(js, st, closed, seq, stats).await;
}

/// Publishes the sets a camera closed, then moves its checkpoint past what the tracker no
/// longer needs (`seq`: the last pose handled).
async fn publish_and_checkpoint(
    js: &jetstream::Context,
    st: &mut CameraState,
    closed: Vec<SetEvent>,
    seq: u64,
    stats: &SetsStats,
) {
    for set in closed {
        stats.cameras.update(st.id.as_str(), |c| c.reps = 0);
        publish_set(js, &st.id, &set, stats).await;
    }
    let earliest = st.tracker.earliest_needed();
    while st.seqs.front().is_some_and(|(t, _)| earliest.is_none_or(|e| *t < e)) {
        st.seqs.pop_front();
    }
    st.checkpoint = Checkpoint {
        resume_seq: st.seqs.front().map(|(_, s)| *s).unwrap_or(seq + 1),
        last_seq: st.checkpoint.last_seq.max(seq),
    };
    st.dirty = true;
}

/// Closes the set in progress of every camera silent for its quiet time: a live camera that was
/// unplugged, or whose capture stopped, sends no frame that would close it.
async fn close_silent_sets(js: &jetstream::Context, cameras: &mut HashMap<String, CameraState>, stats: &SetsStats) {
    for st in cameras.values_mut() {
        let silent = st.last_pose_at.elapsed().as_secs_f64() >= st.settings.quiet;
        if silent && st.tracker.in_set() {
            info!(camera_id = %st.id, quiet_s = st.settings.quiet, "camera silent: closing its set");
            let closed: Vec<SetEvent> = st.tracker.finish().into_iter().collect();
            let seq = st.checkpoint.last_seq;
            publish_and_checkpoint(js, st, closed, seq, stats).await;
        }
    }
}

/// Measures the camera's pose rate on its own timeline and says when it crosses the floor under
/// which counts are not exact: a warning (once per crossing), `/healthz`, `/metrics`; the sets
/// themselves say so with `pending`.
fn watch_pose_rate(st: &mut CameraState, t: f64, stats: &SetsStats) {
    st.recent.push_back(t);
    while st.recent.front().is_some_and(|f| t - f > POSE_RATE_WINDOW_SECONDS) {
        st.recent.pop_front();
    }
    let (Some(first), Some(last)) = (st.recent.front(), st.recent.back()) else { return };
    // Judged on at least half the window, so the first poses of a camera decide nothing.
    if last - first < POSE_RATE_WINDOW_SECONDS / 2.0 {
        return;
    }
    let rate = (st.recent.len() - 1) as f64 / (last - first);
    let floor = st.settings.min_pose_rate;
    let mut crossed = None;
    stats.cameras.update(st.id.as_str(), |c| {
        c.pose_rate = rate;
        let below = rate < floor;
        if below != c.below_floor {
            c.below_floor = below;
            crossed = Some(below);
        }
    });
    match crossed {
        Some(true) => warn!(
            camera_id = %st.id, pose_rate = format!("{rate:.1}"), floor,
            "pose rate under the floor for exact rep counts: sets will be pending (more inference, fewer cameras per replica)"
        ),
        Some(false) => {
            info!(camera_id = %st.id, pose_rate = format!("{rate:.1}"), floor, "pose rate back above the floor")
        }
        None => {}
    }
}

/// Publishes a set until the server acknowledges it; a duplicate (same set id) is stored once.
async fn publish_set(js: &jetstream::Context, camera: &CameraId, set: &SetEvent, stats: &SetsStats) {
    let payload = bytes::Bytes::from(set_message(set).encode_to_vec());
    for attempt in 1..=10u32 {
        let publish = PublishMessage::build().payload(payload.clone()).message_id(&set.set_id);
        let acked = match js.send_publish(subject::sets(camera), publish).await {
            Ok(ack) => ack.await.map(|a| a.duplicate).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match acked {
            Ok(duplicate) => {
                if !duplicate {
                    stats.sets_published.fetch_add(1, Ordering::Relaxed);
                    stats.cameras.update(camera.as_str(), |c| c.sets += 1);
                }
                info!(camera_id = %camera, set_id = %set.set_id, reps = set.reps, duplicate, "set closed");
                return;
            }
            Err(e) => {
                warn!(camera_id = %camera, set_id = %set.set_id, attempt, error = %e, "publishing a set failed, retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
        }
    }
    warn!(camera_id = %camera, set_id = %set.set_id, "set not acknowledged; it will be published again on restart");
}

/// Writes changed checkpoints and waits for the server to store them.
async fn save_checkpoints(js: &jetstream::Context, cameras: &mut HashMap<String, CameraState>) {
    for (camera, st) in cameras.iter_mut().filter(|(_, s)| s.dirty) {
        let stored = match js.publish(format!("{CHECKPOINT_PREFIX}{camera}"), st.checkpoint.encode()).await {
            Ok(ack) => tokio::time::timeout(Duration::from_secs(5), ack)
                .await
                .map_err(|_| "no ack".to_string())
                .and_then(|r| r.map_err(|e| e.to_string())),
            Err(e) => Err(e.to_string()),
        };
        match stored {
            Ok(_) => st.dirty = false,
            Err(e) => warn!(camera_id = %camera, error = %e, "checkpoint not saved"),
        }
    }
}
