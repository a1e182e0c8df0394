//! The sets service loop. See the crate docs for the delivery guarantees.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Context, Error, Result};
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use pump_bus::codec::decode_pose_frame;
use pump_bus::connect::flush_bounded;
use pump_bus::streams::{ensure_streams_retrying, POSES_STREAM};
use pump_bus::subject::{self, CameraId, POSES_ALL};
use pump_proto::PoseFrame;
use pump_sets::ClosedSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;
use crate::count::{CameraCount, Checkpoint, Handled, Skipped};
use crate::metrics::SetsStats;

/// Stream of resume checkpoints, the last one per camera (a key-value store in all but name:
/// the KV API itself does not work against Debian's nats-server 2.9).
pub const CHECKPOINT_STREAM: &str = "PUMP_SETS_RESUME";

pub struct Service {
    pub config: Config,
    pub client: async_nats::Client,
    pub stats: Arc<SetsStats>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served, if anywhere.
    pub ops: Option<tokio::net::TcpListener>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("config", &self.config).finish()
    }
}

/// A camera as the loop holds it: its count, and when its last pose arrived (a camera silent
/// for its quiet time has its set closed).
struct CameraState {
    id: CameraId,
    count: CameraCount,
    last_pose_at: std::time::Instant,
    /// Sets closed but not yet acknowledged (JetStream away), oldest first: retried every tick
    /// until stored, the camera's checkpoint held behind them meanwhile.
    unstored: std::collections::VecDeque<Unstored>,
}

/// A set waiting to be stored.
struct Unstored {
    message: pump_proto::SetEvent,
    /// A publish of it failed: it may have been stored all the same (the ack lost), so a later
    /// "duplicate" is this very set stored, not one stored before.
    tried: bool,
}

pub async fn run(service: Service, shutdown: CancellationToken) -> Result<()> {
    let Service { config, client, stats, ops } = service;
    let floor = config.sets.min_pose_rate;
    let ops_task = ops.map(|listener| {
        let (r, h, m, c) = (stats.clone(), stats.clone(), stats.clone(), client.clone());
        let ops = pump_bus::ops::Ops {
            not_ready: pump_bus::ops::ready_with_bus(client.clone(), move || {
                if r.standby.load(Ordering::SeqCst) {
                    Some("standby: another pump-sets counts every camera".to_string())
                } else {
                    (!r.ready.load(Ordering::SeqCst)).then(|| "poses consumer not in place yet".to_string())
                }
            }),
            health: Arc::new(move || h.health(floor)),
            metrics: Arc::new(move || m.prometheus(pump_bus::ops::nats_connected(&c))),
            stuck: {
                let stats = stats.clone();
                let progress = std::sync::Mutex::new(pump_bus::ops::Progress::new(config.stuck_after));
                Arc::new(move || {
                    let counting = stats.ready.load(Ordering::SeqCst) && !stats.standby.load(Ordering::SeqCst);
                    let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
                    p.stuck(stats.turns.load(Ordering::Relaxed), counting, std::time::Instant::now())
                })
            },
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
    pump_bus::streams::ensure_stream(
        &js,
        jetstream::stream::Config {
            name: CHECKPOINT_STREAM.into(),
            subjects: vec![subject::SETS_RESUME_ALL.into(), crate::lease::LEASE_SUBJECT.into()],
            storage: jetstream::stream::StorageType::File,
            max_messages_per_subject: 1,
            // A checkpoint per camera name ever counted, however many: bounded, the one left
            // unchanged longest going first (the lease, renewed every half second, never is).
            max_messages: checkpoints_kept(config.limits.max_cameras),
            discard: jetstream::stream::DiscardPolicy::Old,
            num_replicas: config.limits.replicas,
            ..Default::default()
        },
    )
    .await
    .context("cannot set up the checkpoint stream")?;
    let store = js.get_stream(CHECKPOINT_STREAM).await.context("cannot open the checkpoint stream")?;
    // Only one instance may own the consumer below: any other waits here as a hot standby, and
    // reads the checkpoints once it holds the lease (the holder wrote them until it stopped).
    let on_standby = {
        let stats = stats.clone();
        move || stats.standby.store(true, Ordering::SeqCst)
    };
    let Some(lease) =
        crate::lease::Lease::acquire(&js, &store, &crate::lease::instance_name(), &shutdown, on_standby).await?
    else {
        return Ok(());
    };
    stats.standby.store(false, Ordering::SeqCst);
    let mut checkpoints: BTreeMap<String, Checkpoint> = BTreeMap::new();
    let mut subjects = store.info_with_subjects(subject::SETS_RESUME_ALL).await.context("cannot list checkpoints")?;
    let mut names = Vec::new();
    while let Some(item) = subjects.next().await {
        names.push(item.context("cannot list checkpoints")?.0);
    }
    // Which poses stream the checkpoints' sequences must be of: this one, by its creation time.
    let mut poses_stream = js.get_stream(POSES_STREAM).await.context("cannot find the poses stream")?;
    let poses_info = poses_stream.info().await.context("cannot read the poses stream")?;
    let (stream_id, stream_last) =
        (poses_info.created.unix_timestamp_nanos().max(0) as u64, poses_info.state.last_sequence);
    for name in names {
        let Some(camera) = subject::camera_of_sets_resume(&name) else { continue };
        if let Ok(m) = store.get_last_raw_message_by_subject(&name).await {
            match Checkpoint::decode(&m.payload) {
                Some(cp) if cp.is_of(stream_id, stream_last) => {
                    // An older pump's: this stream's from now on.
                    checkpoints.insert(camera.to_string(), Checkpoint { stream: stream_id, ..cp });
                }
                Some(cp) => warn!(
                    camera_id = camera.as_str(),
                    resume_seq = cp.resume_seq,
                    "checkpoint of a poses stream since made again: the camera starts afresh"
                ),
                None => {}
            }
        }
    }
    let deliver_policy = match checkpoints.values().map(|c| c.resume_seq).min() {
        Some(seq) => consumer::DeliverPolicy::ByStartSequence { start_sequence: seq.max(1) },
        None => consumer::DeliverPolicy::New,
    };
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
    let mut messages = pull_poses(&consumer).await?;
    stats.ready.store(true, Ordering::SeqCst);
    info!(resuming = !checkpoints.is_empty(), "sets service running");

    let mut cameras: HashMap<String, CameraState> = HashMap::new();
    let max_cameras = usize::try_from(config.limits.max_cameras).unwrap_or(pump_bus::ops::DEFAULT_MAX_CAMERAS).max(1);
    stats.cameras.set_max(max_cameras);
    let mut too_many = pump_bus::ratelog::RateLimitedLog::new(Duration::from_secs(10));
    let mut tick = tokio::time::interval(config.checkpoint_interval);
    let mut bus = Bus::new();
    // Why the loop ended other than by shutdown: the service then fails, never exits 0 silently.
    let mut lost: Option<String> = None;
    loop {
        stats.turns.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                flush_waiting(&js, &client, &mut cameras, config.reorder, &stats).await;
                close_silent_sets(&js, &poses_stream, &mut bus, &mut cameras, &stats).await;
                retry_unstored(&js, &mut cameras, &stats).await;
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
                    Err(e) if matches!(
                        e.kind(),
                        consumer::pull::MessagesErrorKind::MissingHeartbeat | consumer::pull::MessagesErrorKind::NoResponders
                    ) => {
                        // The consumer's leader is gone (a node lost) while this client's
                        // connection is not: the client would ask again only when its pull
                        // expires, 10 s on. A new pull is sent at once, and every quarter second
                        // while none answers it (the cluster electing a new leader, 4–9 s on
                        // nats-server), so poses come again within that of the election.
                        if e.kind() == consumer::pull::MessagesErrorKind::NoResponders {
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        } else {
                            warn!("poses consumer missed its heartbeat: pulling again");
                        }
                        bus.lost("the poses consumer's leader is away");
                        match pull_poses(&consumer).await {
                            Ok(m) => messages = m,
                            Err(e) => warn!(error = %e, "pulling poses again failed"),
                        }
                        continue;
                    }
                    Err(e) => {
                        warn!(error = %e, "poses consumer error");
                        bus.lost("the poses consumer failed");
                        continue;
                    }
                };
                let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
                if let Some(camera) = subject::camera_of_poses(&msg.subject) {
                    if let Ok(pf) = decode_pose_frame(&msg.payload) {
                        if !cameras.contains_key(camera.as_str())
                            && !make_room(&mut cameras, &mut checkpoints, max_cameras)
                        {
                            stats.too_many_cameras.fetch_add(1, Ordering::Relaxed);
                            too_many.warn("--max-cameras", "poses of a new camera not counted: every camera is busy", || camera.to_string());
                            if let Err(e) = msg.ack().await {
                                warn!(error = %e, "ack failed");
                            }
                            continue;
                        }
                        let state = cameras.entry(camera.to_string()).or_insert_with(|| CameraState {
                            id: camera.clone(),
                            count: CameraCount::new(
                                camera.as_str(),
                                config.sets_for(camera.as_str()),
                                checkpoints.get(camera.as_str()).copied().unwrap_or(Checkpoint::on(stream_id)),
                            )
                            .with_reorder(config.reorder),
                            last_pose_at: std::time::Instant::now(),
                            unstored: Default::default(),
                        });
                        handle(&js, &client, state, &pf, seq, &stats).await;
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
        Some(why) => Err(Error::Lost(why)),
        None => Ok(()),
    }
}

/// The poses, pulled in short requests with a 1-s heartbeat (the client's defaults wait 30 s to
/// notice a lost consumer leader).
async fn pull_poses(consumer: &consumer::PullConsumer) -> Result<consumer::pull::Stream> {
    consumer
        .stream()
        .expires(Duration::from_secs(5))
        .heartbeat(Duration::from_secs(1))
        .messages()
        .await
        .context("cannot consume poses")
}

/// Checkpoints the checkpoint stream keeps: four per camera pump-sets may count at once (cameras
/// come and go), and the lease.
pub fn checkpoints_kept(max_cameras: i64) -> i64 {
    max_cameras.max(1).saturating_mul(4).saturating_add(1)
}

/// Room for one more camera under `max`: the longest-silent camera with nothing in progress
/// (no set open, no pose waiting, no set unstored, its checkpoint saved) is forgotten, its
/// checkpoint kept to resume from should it come back. False when every camera is busy.
fn make_room(
    cameras: &mut HashMap<String, CameraState>,
    checkpoints: &mut BTreeMap<String, Checkpoint>,
    max: usize,
) -> bool {
    if cameras.len() < max {
        return true;
    }
    let idle = cameras
        .values()
        .filter(|c| !c.count.in_set() && !c.count.has_waiting() && c.unstored.is_empty() && c.count.unsaved().is_none())
        .min_by_key(|c| c.last_pose_at)
        .map(|c| c.id.to_string());
    let Some(idle) = idle else { return false };
    if let Some(gone) = cameras.remove(&idle) {
        checkpoints.insert(idle, gone.count.checkpoint());
    }
    true
}

/// Counts one pose, publishes its live counts and the sets it closed, then commits.
async fn handle(
    js: &jetstream::Context,
    client: &async_nats::Client,
    st: &mut CameraState,
    pf: &PoseFrame,
    seq: u64,
    stats: &SetsStats,
) {
    let handled = st.count.pose(pf, seq);
    match handled.skipped {
        Some(Skipped::Done) => return,
        Some(Skipped::OutOfOrder) => {
            stats.out_of_order.fetch_add(1, Ordering::Relaxed);
            return;
        }
        None => {}
    }
    stats.poses.fetch_add(1, Ordering::Relaxed);
    stats.cameras.update(st.id.as_str(), |c| c.poses.tick());
    st.last_pose_at = std::time::Instant::now();
    if handled.replayed {
        stats.replayed.fetch_add(1, Ordering::Relaxed);
    }
    if handled.new_segment {
        info!(camera_id = %st.id, segment = pf.segment, "new segment of the camera's timeline");
    }
    deliver(js, client, st, handled, Some(seq), stats).await;
}

/// Publishes what counting poses did (live counts, closed sets), then commits.
async fn deliver(
    js: &jetstream::Context,
    client: &async_nats::Client,
    st: &mut CameraState,
    handled: Handled,
    seq: Option<u64>,
    stats: &SetsStats,
) {
    if let Some(rate) = handled.pose_rate {
        watch_pose_rate(&st.id, rate, st.count.settings().min_pose_rate, stats);
    }
    if let Some(reps) = handled.reps_in_set {
        stats.cameras.update(st.id.as_str(), |c| c.reps = reps);
    }
    for rep in handled.reps {
        if pump_bus::publish::reps(client, &st.id, &rep).await.is_ok() {
            stats.reps_published.fetch_add(1, Ordering::Relaxed);
        }
    }
    publish_and_commit(js, st, handled.closed, handled.wall_offset_ns, seq, stats).await;
}

/// Counts the poses still waiting for older ones of every camera silent for the reorder window:
/// nothing older is coming (the window is camera time; a camera that stopped sends no newer pose
/// that would let them go).
async fn flush_waiting(
    js: &jetstream::Context,
    client: &async_nats::Client,
    cameras: &mut HashMap<String, CameraState>,
    window: Duration,
    stats: &SetsStats,
) {
    for st in cameras.values_mut() {
        if st.count.has_waiting() && st.last_pose_at.elapsed() >= window {
            let handled = st.count.flush();
            deliver(js, client, st, handled, None, stats).await;
        }
    }
}

/// Publishes the sets a camera closed, then lets its checkpoint move past them; one that is not
/// acknowledged waits in the camera's queue, retried every tick ([`retry_unstored`]), and holds
/// the checkpoint behind it (a restart meanwhile publishes it again).
async fn publish_and_commit(
    js: &jetstream::Context,
    st: &mut CameraState,
    closed: Vec<ClosedSet>,
    wall_offset_ns: i64,
    seq: Option<u64>,
    stats: &SetsStats,
) {
    for set in closed {
        if let Some(message) = fitted(set.to_message(wall_offset_ns), &st.id, stats) {
            st.unstored.push_back(Unstored { message, tried: false });
            stats.sets_unstored.fetch_add(1, Ordering::Relaxed);
        }
    }
    publish_unstored(js, st, FRESH_TRIES, stats).await;
    st.count.commit(seq);
}

/// Tries of a set just closed (a moment's loss rides them out); a waiting one is tried once a
/// tick, so a stream that stays away holds the loop up for one acknowledgement's wait at most.
const FRESH_TRIES: u32 = 3;
const WAITING_TRIES: u32 = 1;

/// Publishes a camera's waiting sets in order until one is not acknowledged; the checkpoint is
/// held while any waits and let go (moved on at once) when none does. False when one failed.
async fn publish_unstored(js: &jetstream::Context, st: &mut CameraState, tries: u32, stats: &SetsStats) -> bool {
    let had = st.unstored.len();
    while let Some(waiting) = st.unstored.front_mut() {
        if !publish_set(js, &st.id, waiting, tries, stats).await {
            break;
        }
        st.unstored.pop_front();
    }
    stats.sets_unstored.fetch_sub((had - st.unstored.len()) as u64, Ordering::Relaxed);
    st.count.hold(!st.unstored.is_empty());
    st.unstored.is_empty()
}

/// Every tick: the sets JetStream did not take, tried again in order (all of one camera, then
/// the next), until the first that fails again — the stream is still away.
async fn retry_unstored(js: &jetstream::Context, cameras: &mut HashMap<String, CameraState>, stats: &SetsStats) {
    for st in cameras.values_mut().filter(|st| !st.unstored.is_empty()) {
        if !publish_unstored(js, st, WAITING_TRIES, stats).await {
            return;
        }
        st.count.commit(None);
        info!(camera_id = %st.id, "every set of the camera stored again");
    }
}

/// The set as the sets stream can take it: one longer than the stream's largest message (a set
/// of many minutes' frames) keeps every rep but has its feature rows thinned, evenly, until it
/// fits, with one warning; `None`, refused with the reason, where even that cannot make it fit.
fn fitted(mut message: pump_proto::SetEvent, camera: &CameraId, stats: &SetsStats) -> Option<pump_proto::SetEvent> {
    let limit = pump_bus::streams::MAX_MESSAGE_BYTES as usize;
    let rows = message.features.len();
    let mut every: usize = 1;
    while prost::Message::encoded_len(&message) > limit {
        if message.features.is_empty() {
            warn!(camera_id = %camera, set_id = %message.set_id, bytes = prost::Message::encoded_len(&message), limit,
                "set refused: larger than the sets stream takes even without its feature rows");
            stats.sets_refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        every = every.saturating_mul(2);
        // Every other row from the first; a last row alone goes too.
        if message.features.len() == 1 {
            message.features.clear();
        } else {
            message.features = message.features.iter().step_by(2).cloned().collect();
        }
    }
    if every > 1 {
        warn!(camera_id = %camera, set_id = %message.set_id, rows, kept = message.features.len(), every,
            "set larger than the sets stream takes: its feature rows thinned to fit, every rep kept");
        stats.sets_thinned.fetch_add(1, Ordering::Relaxed);
    }
    Some(message)
}

/// Whether the bus answers the sets service: a camera's silence counts only from when it last
/// did. While the cluster elects new leaders for a lost node's streams (seconds), or the poses
/// consumer's pull is issued again, no pose arrives though the cameras' poses are stored on the
/// stream; a set closed by that silence lost every rep after it (half a set, then the other
/// half counted as a second).
#[derive(Debug)]
struct Bus {
    /// The bus did not answer, or the poses consumer failed, since it last answered.
    away: bool,
    /// When it answered again after being away (or the service started).
    back_at: std::time::Instant,
}

impl Bus {
    fn new() -> Self {
        Self { away: false, back_at: std::time::Instant::now() }
    }

    fn lost(&mut self, why: &str) {
        if !self.away {
            warn!(why, "bus away: no set is closed for its camera's silence until it answers again");
        }
        self.away = true;
    }

    /// It answered: the first answer after being away starts every camera's silence afresh.
    fn answered(&mut self) -> bool {
        let was_away = std::mem::replace(&mut self.away, false);
        if was_away {
            self.back_at = std::time::Instant::now();
            info!("bus answering again: silent cameras' sets close after their quiet time from now");
        }
        was_away
    }
}

/// Whether the poses stream holds a pose of `camera` newer than stream sequence `arrived`
/// (`None`: the stream's leader did not answer).
async fn newer_pose_stored(poses: &jetstream::stream::Stream, camera: &CameraId, arrived: u64) -> Option<bool> {
    let subject = subject::poses(camera);
    let last = poses.get_last_raw_message_by_subject(&subject);
    match tokio::time::timeout(Duration::from_secs(2), last).await {
        Ok(Ok(m)) => Some(m.sequence > arrived),
        // Aged out: nothing of it is on its way.
        Ok(Err(e)) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => Some(false),
        _ => None,
    }
}

/// Closes the set in progress of every camera silent for its quiet time: a live camera that was
/// unplugged, or whose capture stopped, sends no frame that would close it. Silent means no pose
/// arrived for the quiet time while the bus answered, and the poses stream holds none newer than
/// the last one taken in (asked of the stream's leader before a set is closed).
async fn close_silent_sets(
    js: &jetstream::Context,
    poses: &jetstream::stream::Stream,
    bus: &mut Bus,
    cameras: &mut HashMap<String, CameraState>,
    stats: &SetsStats,
) {
    for st in cameras.values_mut() {
        let silent_s = st.last_pose_at.elapsed().min(bus.back_at.elapsed()).as_secs_f64();
        if !st.count.closes_if_silent(silent_s) {
            continue;
        }
        let Some(newer) = newer_pose_stored(poses, &st.id, st.count.arrived()).await else {
            return bus.lost("the poses stream did not answer");
        };
        if bus.answered() {
            return;
        }
        if newer {
            // Stored, not delivered yet: the consumer is behind or being set up again.
            continue;
        }
        if let Some(set) = st.count.close_silent(silent_s) {
            info!(camera_id = %st.id, quiet_s = st.count.settings().quiet, "camera silent: closing its set");
            stats.cameras.update(st.id.as_str(), |c| c.reps = 0);
            let offset = st.count.wall_offset_ns();
            publish_and_commit(js, st, vec![set], offset, None, stats).await;
        }
    }
}

/// Says when a camera's pose rate crosses the floor under which counts are not exact: a
/// warning (once per crossing), `/healthz`, `/metrics`; the sets themselves say so with
/// `pending`.
fn watch_pose_rate(camera: &CameraId, rate: f64, floor: f64, stats: &SetsStats) {
    let mut crossed = None;
    stats.cameras.update(camera.as_str(), |c| {
        c.pose_rate = rate;
        let below = rate < floor;
        if below != c.below_floor {
            c.below_floor = below;
            crossed = Some(below);
        }
    });
    match crossed {
        Some(true) => warn!(
            camera_id = %camera, pose_rate = format!("{rate:.1}"), floor,
            "pose rate under the floor for exact rep counts: sets will be pending (more inference, fewer cameras per replica)"
        ),
        Some(false) => {
            info!(camera_id = %camera, pose_rate = format!("{rate:.1}"), floor, "pose rate back above the floor")
        }
        None => {}
    }
}

/// Publishes a set (true once the server acknowledges it; a duplicate, same set id, is stored
/// once) in up to `tries` tries; a longer loss is [`retry_unstored`]'s.
async fn publish_set(
    js: &jetstream::Context,
    camera: &CameraId,
    waiting: &mut Unstored,
    tries: u32,
    stats: &SetsStats,
) -> bool {
    let message = &waiting.message;
    for attempt in 1..=tries {
        let publish = pump_bus::publish::set(js, camera, message);
        match tokio::time::timeout(Duration::from_secs(5), publish).await {
            Ok(Ok(duplicate)) => {
                // Stored by this try, or by an earlier one whose ack was lost.
                if !duplicate || waiting.tried {
                    stats.sets_published.fetch_add(1, Ordering::Relaxed);
                    stats.cameras.update(camera.as_str(), |c| c.sets += 1);
                }
                info!(camera_id = %camera, set_id = %message.set_id, reps = message.reps, duplicate, "set closed");
                return true;
            }
            failed => {
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "no acknowledgement within 5 s".to_string(),
                };
                stats.set_publish_failures.fetch_add(1, Ordering::Relaxed);
                waiting.tried = true;
                warn!(camera_id = %camera, set_id = %message.set_id, attempt, error, "publishing a set failed");
                if attempt < tries {
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
            }
        }
    }
    warn!(camera_id = %camera, set_id = %message.set_id, "set not acknowledged yet: kept, and tried again every tick");
    false
}

/// Writes changed checkpoints and waits for the server to store them.
async fn save_checkpoints(js: &jetstream::Context, cameras: &mut HashMap<String, CameraState>) {
    for st in cameras.values_mut() {
        let Some(checkpoint) = st.count.unsaved() else { continue };
        let camera = &st.id;
        let stored = match js.publish(subject::sets_resume(camera), checkpoint.encode()).await {
            Ok(ack) => tokio::time::timeout(Duration::from_secs(5), ack)
                .await
                .map_err(|_| "no ack".to_string())
                .and_then(|r| r.map_err(|e| e.to_string())),
            Err(e) => Err(e.to_string()),
        };
        match stored {
            Ok(_) => st.count.stored(checkpoint),
            Err(e) => warn!(camera_id = %camera, error = %e, "checkpoint not saved"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_of(rows: usize, reps: usize) -> pump_proto::SetEvent {
        pump_proto::SetEvent {
            set_id: "s".into(),
            reps: reps as u32,
            rep_times_s: (0..reps).map(|i| i as f64).collect(),
            features: (0..rows).map(|i| pump_proto::FeatureRow { angles: vec![i as f32; 6] }).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_set_too_large_for_the_stream_keeps_its_reps_and_loses_feature_rows_evenly() {
        let stats = SetsStats::default();
        let camera = CameraId::new("gym").unwrap();
        // An hour at 30 poses/s: 108 000 rows, ~3.5 MB.
        let big = set_of(108_000, 40);
        assert!(prost::Message::encoded_len(&big) > pump_bus::streams::MAX_MESSAGE_BYTES as usize);
        let fit = fitted(big.clone(), &camera, &stats).unwrap();
        assert!(prost::Message::encoded_len(&fit) <= pump_bus::streams::MAX_MESSAGE_BYTES as usize);
        assert_eq!((fit.reps, &fit.rep_times_s), (40, &big.rep_times_s));
        // Every 4th row, from the first: still the set's motion from start to end.
        assert_eq!(fit.features.len(), 27_000);
        assert_eq!(fit.features[1].angles[0], 4.0);
        assert_eq!(stats.sets_thinned.load(Ordering::Relaxed), 1);
        // A set that fits is left whole.
        assert_eq!(fitted(set_of(500, 5), &camera, &stats).unwrap().features.len(), 500);
        assert_eq!(stats.sets_thinned.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_first_answer_after_the_bus_was_away_starts_silence_afresh_and_only_the_first() {
        let mut bus = Bus::new();
        let started = bus.back_at;
        assert!(!bus.answered(), "never away: nothing starts afresh");
        assert_eq!(bus.back_at, started);
        bus.lost("test");
        bus.lost("test");
        std::thread::sleep(Duration::from_millis(5));
        assert!(bus.answered());
        assert!(bus.back_at > started);
        assert!(!bus.answered());
    }

    #[test]
    fn a_set_that_cannot_fit_at_all_is_refused_with_its_reason_not_retried_for_ever() {
        let stats = SetsStats::default();
        let camera = CameraId::new("gym").unwrap();
        assert!(fitted(set_of(10, 200_000), &camera, &stats).is_none());
        assert_eq!(stats.sets_refused.load(Ordering::Relaxed), 1);
    }
}
