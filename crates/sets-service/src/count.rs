//! One camera's count with the delivery guarantee, pure: no NATS, no tokio. The service shell
//! (`run.rs`) feeds it each pose with its stream sequence, publishes what it returns, and stores
//! its checkpoint.
//!
//! The guarantee, in this file's terms:
//! - **Never lost.** The checkpoint's `resume_seq` is the stream sequence of the earliest pose the
//!   tracker still needs (the set in progress), so a restart that replays from there rebuilds that
//!   set. It moves only through [`CameraCount::commit`], which the shell calls after the sets a
//!   pose closed were acknowledged; a set that never was ([`CameraCount::hold`]) pins the
//!   checkpoint, so the next start publishes it again.
//! - **Never twice.** A replayed pose (`seq <= last_seq`) rebuilds state but its live rep counts
//!   are not returned (they were published before); sets are published again with the same set
//!   id, which the server deduplicates.
//! - **In order.** Replicas race: a camera's poses arrive out of frame order. Each waits up to
//!   the reorder window ([`CameraCount::with_reorder`], in the camera's own time: until a pose that
//!   many seconds newer has arrived, or the camera falls silent) and is counted in frame order, so
//!   what two replicas infer adds up. A pose older than one already counted (later than the
//!   window), or of an earlier segment, is skipped; a pose of a new segment closes the set in
//!   progress with what it has.
//!
//! Over 600 lines with its tests: the code is about 320, the rest are the guarantee's unit tests.

use std::collections::{BTreeMap, VecDeque};

use pump_proto::{PoseFrame, RepProgress};
use pump_sets::{ClosedSet, FrameInput, SetConfig, SetTracker, TrackerEvent};
use pump_types::Pose;

/// Seconds of a camera's timeline over which its pose rate is measured.
const POSE_RATE_WINDOW_SECONDS: f64 = 5.0;

/// Where a camera resumes: replay from `resume_seq`; events up to `last_seq` were already sent.
/// Sequences of one poses stream: `stream` says which (its creation time, unix ns; 0 unknown, as
/// an older pump wrote them), so a checkpoint of a stream since deleted and made again, whose
/// sequences start over at 1, is not taken for this one's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub resume_seq: u64,
    pub last_seq: u64,
    pub stream: u64,
}

impl Checkpoint {
    /// A new camera's: nothing done yet, on the stream `stream`.
    pub fn on(stream: u64) -> Self {
        Self { stream, ..Self::default() }
    }

    /// The stored form: three decimal numbers, readable with `nats stream get`.
    pub fn encode(&self) -> bytes::Bytes {
        format!("{} {} {}", self.resume_seq, self.last_seq, self.stream).into()
    }

    /// Reads the stored form, or an older pump's two numbers (the stream unknown).
    pub fn decode(b: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(b).ok()?;
        let mut parts = s.split(' ');
        let (resume, last) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
        let stream = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        parts.next().is_none().then_some(Self { resume_seq: resume, last_seq: last, stream })
    }

    /// Whether this checkpoint's sequences are those of the poses stream made at `stream` whose
    /// last sequence is `last_seq`: the same stream, or (unknown) none beyond its end.
    pub fn is_of(&self, stream: u64, last_seq: u64) -> bool {
        if self.stream == 0 {
            self.resume_seq <= last_seq.saturating_add(1)
        } else {
            self.stream == stream
        }
    }
}

/// Why a pose was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// Before the checkpoint: its effect is already in what was published.
    Done,
    /// Older than the camera's last pose, or of an earlier segment.
    OutOfOrder,
}

/// What one pose did.
#[derive(Debug, Default)]
pub struct Handled {
    pub skipped: Option<Skipped>,
    /// A pose seen before a restart, counted again to rebuild the set in progress.
    pub replayed: bool,
    /// Live counts to publish (none while replaying).
    pub reps: Vec<RepProgress>,
    /// Reps of the set in progress after this pose, when it changed.
    pub reps_in_set: Option<usize>,
    /// Sets closed: publish each, then [`CameraCount::commit`].
    pub closed: Vec<ClosedSet>,
    /// The camera's pose rate on its timeline, once a half window of it is seen.
    pub pose_rate: Option<f64>,
    /// The pose began a new segment of the camera's timeline (not the first).
    pub new_segment: bool,
    /// Where the closed sets' timeline sat on the wall clock: capture time − timeline time of
    /// their camera's poses (ns).
    pub wall_offset_ns: i64,
}

/// One camera: its tracker for the current segment, and what the checkpoint needs.
#[derive(Debug)]
pub struct CameraCount {
    camera: String,
    settings: SetConfig,
    /// The segment being counted (a capture run, a play of a file).
    segment: Option<u64>,
    tracker: SetTracker,
    last_frame: Option<(u64, i64)>,
    /// Recent pose times on the timeline, for the pose rate.
    recent: VecDeque<f64>,
    /// (frame time, stream sequence) of the poses the tracker may still need.
    seqs: VecDeque<(f64, u64)>,
    checkpoint: Checkpoint,
    /// A closed set was not acknowledged: the checkpoint stays where it is until a restart.
    held: bool,
    dirty: bool,
    /// Capture time − timeline time of the last pose counted (ns).
    wall_offset_ns: i64,
    /// Poses waiting to be counted in frame order, by frame id.
    waiting: BTreeMap<u64, Waiting>,
    /// How much newer (ns of the camera's time) a pose must be for those before it to be counted.
    reorder_ns: i64,
    /// The highest stream sequence handled (counted, waiting or skipped as out of order).
    arrived: u64,
    /// A segment not named later than every one seen whose poses keep coming, and how many came
    /// in a row.
    earlier: Option<(u64, usize)>,
    /// The latest-named segment seen: a segment named later is a new run at once.
    latest_segment: Option<u64>,
}

/// Poses in a row of a segment named earlier than the one counted that make it the camera's run.
/// A slower replica's late poses of the run before a restart are one or two in flight; a capture
/// started again after its host's clock stepped back names its run earlier than the last (a
/// segment is named by the wall-clock time it began) and sends nothing else, so skipping all of
/// its poses as late froze the camera for as long as the clock was behind. Ten poses are its
/// first second or so, before any rep.
const EARLIER_SEGMENT_TAKEOVER_POSES: usize = 10;

/// A pose waiting for the ones a slower replica has not delivered yet.
#[derive(Debug)]
struct Waiting {
    pf: PoseFrame,
    seq: u64,
    replayed: bool,
}

impl CameraCount {
    /// A camera counted with `settings`, resuming from `checkpoint` (default: from the start).
    pub fn new(camera: &str, settings: SetConfig, checkpoint: Checkpoint) -> Self {
        Self {
            camera: camera.to_string(),
            tracker: SetTracker::new(camera, settings.clone()),
            settings,
            segment: None,
            last_frame: None,
            recent: VecDeque::new(),
            seqs: VecDeque::new(),
            checkpoint,
            held: false,
            dirty: false,
            wall_offset_ns: 0,
            waiting: BTreeMap::new(),
            reorder_ns: 0,
            arrived: 0,
            earlier: None,
            latest_segment: None,
        }
    }

    /// Counts poses in frame order when they arrive out of it by up to `window` of the camera's
    /// time (zero: as they arrive). Live counts come that much later.
    pub fn with_reorder(mut self, window: std::time::Duration) -> Self {
        self.reorder_ns = i64::try_from(window.as_nanos()).unwrap_or(i64::MAX);
        self
    }

    /// Whether poses wait to be put in order ([`CameraCount::flush`] counts them).
    pub fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Counts every waiting pose: the camera fell silent, nothing older is coming.
    pub fn flush(&mut self) -> Handled {
        let mut out = Handled::default();
        self.release(None, &mut out);
        if !out.closed.is_empty() {
            out.reps_in_set = Some(0);
        }
        out
    }

    pub fn settings(&self) -> &SetConfig {
        &self.settings
    }

    pub fn in_set(&self) -> bool {
        self.tracker.in_set()
    }

    pub fn checkpoint(&self) -> Checkpoint {
        self.checkpoint
    }

    /// The checkpoint, if it changed since the last call that returned it and was then stored
    /// ([`CameraCount::stored`]).
    pub fn unsaved(&self) -> Option<Checkpoint> {
        self.dirty.then_some(self.checkpoint)
    }

    /// The checkpoint returned by `unsaved` is stored.
    pub fn stored(&mut self, checkpoint: Checkpoint) {
        if checkpoint == self.checkpoint {
            self.dirty = false;
        }
    }

    /// Counts one pose frame, stream sequence `seq` (or keeps it until the poses before it came).
    pub fn pose(&mut self, pf: &PoseFrame, seq: u64) -> Handled {
        let mut out = Handled::default();
        if seq < self.checkpoint.resume_seq {
            out.skipped = Some(Skipped::Done);
            return out;
        }
        let replayed = seq <= self.checkpoint.last_seq;
        out.replayed = replayed;
        self.arrived = self.arrived.max(seq);
        // A new segment (capture restarted, a file played again): its time starts afresh, so the
        // set in progress closes with what it has and the new segment gets its own tracker.
        if self.segment == Some(pf.segment) {
            self.earlier = None;
        } else {
            if self.latest_segment.is_some_and(|s| pf.segment <= s) {
                let in_row = match self.earlier {
                    Some((s, n)) if s == pf.segment => n + 1,
                    _ => 1,
                };
                self.earlier = Some((pf.segment, in_row));
                if in_row < EARLIER_SEGMENT_TAKEOVER_POSES {
                    out.skipped = Some(Skipped::OutOfOrder);
                    return out;
                }
            }
            self.earlier = None;
            self.latest_segment = self.latest_segment.max(Some(pf.segment));
            // The old segment's waiting poses are counted before its set closes.
            self.release(None, &mut out);
            if self.segment.is_some() {
                out.closed.extend(self.tracker.finish());
                out.new_segment = true;
                out.wall_offset_ns = self.wall_offset_ns;
            }
            self.segment = Some(pf.segment);
            let name = if pf.segment == 0 { String::new() } else { format!("{:x}", pf.segment) };
            self.tracker = SetTracker::for_segment(self.camera.as_str(), name, self.settings.clone());
            self.last_frame = None;
            self.recent.clear();
            // The old segment's poses are done with once its set is published.
            self.seqs.clear();
        }
        if pf.end_of_stream {
            self.release(None, &mut out);
            out.closed.extend(self.tracker.finish());
            out.wall_offset_ns = self.wall_offset_ns;
        } else if self.older_than_counted(pf) || self.waiting.contains_key(&pf.frame_id) {
            // Later than the reorder window (or the same frame twice): its moment is past.
            out.skipped = Some(Skipped::OutOfOrder);
            return out;
        } else {
            self.waiting.insert(pf.frame_id, Waiting { pf: pf.clone(), seq, replayed });
            let newest = self.waiting.values().map(|w| w.pf.source_ts_ns).max().unwrap_or(pf.source_ts_ns);
            self.release(Some(newest.saturating_sub(self.reorder_ns)), &mut out);
        }
        if !out.closed.is_empty() {
            out.reps_in_set = Some(0);
        }
        out
    }

    /// Whether `pf` is older than a pose already counted.
    fn older_than_counted(&self, pf: &PoseFrame) -> bool {
        self.last_frame.is_some_and(|(id, ts)| pf.frame_id <= id && pf.capture_ts_ns <= ts)
    }

    /// Counts the waiting poses, in frame order, up to camera time `until_ns` (all: `None`).
    fn release(&mut self, until_ns: Option<i64>, out: &mut Handled) {
        while let Some(entry) = self.waiting.first_entry() {
            if until_ns.is_some_and(|u| entry.get().pf.source_ts_ns > u) {
                break;
            }
            let w = entry.remove();
            self.count_one(&w.pf, w.seq, w.replayed, out);
        }
    }

    /// Feeds one pose to the tracker; `replayed`: seen before a restart (its live counts were
    /// published then).
    fn count_one(&mut self, pf: &PoseFrame, seq: u64, replayed: bool, out: &mut Handled) {
        if self.older_than_counted(pf) {
            return;
        }
        self.last_frame = Some((pf.frame_id, pf.capture_ts_ns));
        self.wall_offset_ns = pf.capture_ts_ns.saturating_sub(pf.source_ts_ns);
        out.wall_offset_ns = self.wall_offset_ns;
        let poses: Vec<Pose> = pf.people.iter().map(pump_types::proto::from_person).collect();
        let t = pf.source_ts_ns as f64 / 1e9;
        if let Some(rate) = self.pose_rate(t) {
            out.pose_rate = Some(rate);
        }
        let input =
            FrameInput { t, frame: pf.frame_id, width: pf.width as f32, height: pf.height as f32, poses: &poses };
        for event in self.tracker.push(input) {
            match event {
                TrackerEvent::Rep { set_id, reps, t, athlete, trace } => {
                    out.reps_in_set = Some(reps);
                    if !replayed {
                        out.reps.push(RepProgress {
                            camera: self.camera.clone(),
                            set_id,
                            reps: reps as u32,
                            t_s: t,
                            athlete: athlete.map(|b| pump_proto::Box { x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2 }),
                            trace_t_s: trace.iter().map(|p| p.0).collect(),
                            trace_deg: trace.iter().map(|p| p.1).collect(),
                        });
                    }
                }
                TrackerEvent::Closed(set) => out.closed.push(*set),
            }
        }
        self.seqs.push_back((t, seq));
    }

    /// Capture time − timeline time of the camera's last pose (ns): where its timeline sits on
    /// the wall clock.
    pub fn wall_offset_ns(&self) -> i64 {
        self.wall_offset_ns
    }

    /// Whether a camera silent for `silent_s` has a set that [`CameraCount::close_silent`] closes.
    pub fn closes_if_silent(&self, silent_s: f64) -> bool {
        silent_s >= self.settings.quiet && self.tracker.in_set()
    }

    /// The highest stream sequence of the camera's poses handled: a newer one on the stream is a
    /// pose still on its way.
    pub fn arrived(&self) -> u64 {
        self.arrived
    }

    /// Closes the set in progress of a camera silent for its quiet time (a live camera that was
    /// unplugged sends no frame that would close it). Publish, then `commit(None)`.
    pub fn close_silent(&mut self, silent_s: f64) -> Option<ClosedSet> {
        self.closes_if_silent(silent_s).then(|| self.tracker.finish()).flatten()
    }

    /// Everything up to stream sequence `seq` (the pose just handled; `None`: the last one
    /// handled) is published: the checkpoint moves past what the tracker no longer needs.
    pub fn commit(&mut self, seq: Option<u64>) {
        let earliest = self.tracker.earliest_needed();
        while self.seqs.front().is_some_and(|(t, _)| earliest.is_none_or(|e| *t < e)) {
            self.seqs.pop_front();
        }
        if self.held {
            return;
        }
        let seq = seq.unwrap_or(self.arrived.max(self.checkpoint.last_seq));
        // Counted in frame order, the poses' sequences are not in order: the earliest any pose the
        // tracker needs, or one still waiting, has is where a restart replays from; a waiting pose
        // is not done, so its live counts are published after a restart.
        let needed = self.seqs.iter().map(|(_, s)| *s).min();
        let waiting = self.waiting.values().map(|w| w.seq).min();
        let resume = [needed, waiting].into_iter().flatten().min().unwrap_or(seq + 1);
        let done = waiting.map_or(seq, |w| seq.min(w.saturating_sub(1)));
        let next = Checkpoint {
            resume_seq: resume.max(self.checkpoint.resume_seq),
            last_seq: self.checkpoint.last_seq.max(done),
            ..self.checkpoint
        };
        if next != self.checkpoint {
            self.checkpoint = next;
            self.dirty = true;
        }
    }

    /// While a closed set is not acknowledged (`held`), the checkpoint stays before it, so a
    /// restart publishes it again (never lost; the server drops it if it did arrive); once it is,
    /// the next [`CameraCount::commit`] moves on.
    pub fn hold(&mut self, held: bool) {
        self.held = held;
    }

    fn pose_rate(&mut self, t: f64) -> Option<f64> {
        self.recent.push_back(t);
        while self.recent.front().is_some_and(|f| t - f > POSE_RATE_WINDOW_SECONDS) {
            self.recent.pop_front();
        }
        let (first, last) = (self.recent.front()?, self.recent.back()?);
        // Judged on at least half the window, so the first poses of a camera decide nothing.
        (last - first >= POSE_RATE_WINDOW_SECONDS / 2.0).then(|| (self.recent.len() - 1) as f64 / (last - first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pump_proto::{Keypoint, Person};

    /// A squatter's pose frame at `t` s whose knee angle is `knee` degrees (hip above knee,
    /// ankle below; the shin vertical, the thigh turned by the angle).
    fn frame(frame_id: u64, t: f64, knee: f32, segment: u64) -> PoseFrame {
        let (kx, ky) = (200.0f32, 300.0f32);
        let a = (180.0 - knee).to_radians();
        let (hx, hy) = (kx - 100.0 * a.sin(), ky - 100.0 * a.cos());
        let mut kps = vec![Keypoint { x: 200.0, y: 100.0, confidence: 0.9 }; 17];
        for (i, (x, y)) in [
            (11, (hx, hy)),
            (12, (hx, hy)),
            (13, (kx, ky)),
            (14, (kx, ky)),
            (15, (kx, ky + 100.0)),
            (16, (kx, ky + 100.0)),
        ] {
            kps[i] = Keypoint { x, y, confidence: 0.9 };
        }
        PoseFrame {
            camera: "rack1".into(),
            frame_id,
            capture_ts_ns: (t * 1e9) as i64 + 1,
            source_ts_ns: (t * 1e9) as i64,
            width: 640,
            height: 480,
            segment,
            people: vec![Person {
                r#box: Some(pump_proto::Box { x1: 100.0, y1: 50.0, x2: 300.0, y2: 450.0 }),
                score: 0.9,
                keypoints: kps,
            }],
            ..Default::default()
        }
    }

    /// Five squats of 2 s at 15 fps from `t0` (170° standing, 80° at the bottom), then `rest` s
    /// standing.
    fn squats(first_id: u64, t0: f64, rest: f64, segment: u64) -> Vec<PoseFrame> {
        let n = ((10.0 + rest) * 15.0) as u64;
        (0..n)
            .map(|i| {
                let t = i as f64 / 15.0;
                let knee = if t < 10.0 { 125.0 + 45.0 * (t * std::f64::consts::PI).cos() as f32 } else { 170.0 };
                frame(first_id + i, t0 + t, knee, segment)
            })
            .collect()
    }

    fn settings() -> SetConfig {
        SetConfig { quiet: 4.0, exercise: Some("squat".into()), ..SetConfig::default() }
    }

    /// Feeds frames with sequences from `seq0`, committing after each; returns the reps
    /// published, the sets closed, and the handled outcomes' skips.
    fn feed(c: &mut CameraCount, frames: &[PoseFrame], seq0: u64) -> (Vec<u32>, Vec<ClosedSet>, Vec<Skipped>) {
        let (mut reps, mut sets, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
        for (i, f) in frames.iter().enumerate() {
            let seq = seq0 + i as u64;
            let h = c.pose(f, seq);
            reps.extend(h.reps.iter().map(|r| r.reps));
            sets.extend(h.closed);
            skipped.extend(h.skipped);
            c.commit(Some(seq));
        }
        (reps, sets, skipped)
    }

    #[test]
    fn checkpoints_read_back_and_refuse_garbage() {
        let cp = Checkpoint { resume_seq: 17, last_seq: 42, stream: 1_700_000_000_123 };
        assert_eq!(Checkpoint::decode(&cp.encode()), Some(cp));
        assert_eq!(&cp.encode()[..], b"17 42 1700000000123");
        // An older pump's: the stream unknown.
        assert_eq!(Checkpoint::decode(b"17 42"), Some(Checkpoint { resume_seq: 17, last_seq: 42, stream: 0 }));
        for bad in [&b""[..], b"17", b"a b", b"17 -1", b"17 42 x", b"1 2 3 4", &[0xff, 0x20, 0x31]] {
            assert_eq!(Checkpoint::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_checkpoint_is_of_its_own_poses_stream_only() {
        let cp = Checkpoint { resume_seq: 5000, last_seq: 4990, stream: 7 };
        assert!(cp.is_of(7, 6000));
        // The stream made again: its sequences start over.
        assert!(!cp.is_of(8, 6000));
        // An older pump's, judged by the sequences: past this stream's end it is another's.
        let old = Checkpoint { stream: 0, ..cp };
        assert!(old.is_of(9, 4999) && old.is_of(9, 6000));
        assert!(!old.is_of(9, 120));
    }

    #[test]
    fn a_set_is_counted_live_and_its_checkpoint_moves_past_it() {
        let mut c = CameraCount::new("rack1", settings(), Checkpoint::default());
        let (reps, sets, skipped) = feed(&mut c, &squats(1, 0.0, 6.0, 0), 1);
        assert_eq!(reps, vec![1, 2, 3, 4, 5]);
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].reps, 5);
        assert!(skipped.is_empty());
        let cp = c.unsaved().unwrap();
        assert_eq!(cp.last_seq, 240);
        // After the set closed only its quiet tail may still be needed: a restart resumes at the
        // first pose after the set's end (pose `seq` is at (seq - 1) / 15 s).
        assert!((cp.resume_seq - 1) as f64 / 15.0 > sets[0].end, "{cp:?} {}", sets[0].end);
        assert!(sets[0].end > 9.5, "the last rep is up at 10 s: {}", sets[0].end);
        c.stored(cp);
        assert_eq!(c.unsaved(), None);
    }

    #[test]
    fn the_checkpoint_during_a_set_covers_its_first_pose() {
        let mut c = CameraCount::new("rack1", settings(), Checkpoint::default());
        let frames = squats(1, 0.0, 6.0, 0);
        feed(&mut c, &frames[..100], 1);
        let cp = c.checkpoint();
        assert_eq!(cp.last_seq, 100);
        assert!(cp.resume_seq <= 5, "the set began at the first poses: {cp:?}");
    }

    #[test]
    fn a_restart_mid_set_rebuilds_it_publishes_no_rep_twice_and_the_same_set_id() {
        let frames = squats(1, 0.0, 6.0, 0);
        let mut first = CameraCount::new("rack1", settings(), Checkpoint::default());
        let (reps_before, _, _) = feed(&mut first, &frames[..100], 1);
        let saved = first.checkpoint();
        // The restarted service replays the stream from the checkpoint.
        let mut again = CameraCount::new("rack1", settings(), saved);
        let from = saved.resume_seq as usize - 1;
        let (reps_after, sets, _) = feed(&mut again, &frames[from..], saved.resume_seq);
        let mut all = reps_before.clone();
        all.extend(&reps_after);
        assert_eq!(all, vec![1, 2, 3, 4, 5], "each live count once: {reps_before:?} then {reps_after:?}");
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].reps, 5);
        // The same set as a run without the restart: the server deduplicates by this id.
        let mut whole = CameraCount::new("rack1", settings(), Checkpoint::default());
        let (_, uninterrupted, _) = feed(&mut whole, &frames, 1);
        assert_eq!(sets[0].set_id, uninterrupted[0].set_id);
    }

    #[test]
    fn poses_before_the_checkpoint_are_skipped_and_replays_are_marked() {
        let mut c = CameraCount::new("rack1", settings(), Checkpoint { resume_seq: 10, last_seq: 20, stream: 0 });
        assert_eq!(c.pose(&frame(1, 0.0, 170.0, 0), 9).skipped, Some(Skipped::Done));
        let h = c.pose(&frame(2, 0.1, 170.0, 0), 15);
        assert!(h.replayed && h.skipped.is_none());
        assert!(!c.pose(&frame(3, 0.2, 170.0, 0), 21).replayed);
    }

    #[test]
    fn out_of_order_poses_and_earlier_segments_are_skipped() {
        let mut c = CameraCount::new("rack1", settings(), Checkpoint::default());
        assert!(c.pose(&frame(5, 1.0, 170.0, 2), 1).skipped.is_none());
        assert_eq!(c.pose(&frame(4, 0.9, 170.0, 2), 2).skipped, Some(Skipped::OutOfOrder));
        assert_eq!(c.pose(&frame(9, 5.0, 170.0, 1), 3).skipped, Some(Skipped::OutOfOrder));
        assert!(c.pose(&frame(6, 1.1, 170.0, 2), 4).skipped.is_none());
    }

    #[test]
    fn a_capture_restarted_after_its_clock_stepped_back_is_counted_after_its_first_poses() {
        let mut c = CameraCount::new("rack1", settings(), Checkpoint::default());
        let (_, sets, _) = feed(&mut c, &squats(1, 0.0, 0.5, 2_000)[..140], 1);
        assert!(sets.is_empty() && c.in_set());
        // A slower replica's late poses of the run before: skipped, the set goes on.
        assert_eq!(c.pose(&frame(3, 0.2, 170.0, 1_000), 141).skipped, Some(Skipped::OutOfOrder));
        assert!(c.pose(&frame(141, 9.4, 170.0, 2_000), 142).skipped.is_none());
        // The capture restarted with its host's clock an hour behind: its segment is named
        // earlier. Its first poses are skipped as late; then it is the camera's run, and
        // before, it never was: the camera froze.
        let restarted = squats(1, 0.0, 6.0, 1_000);
        let (reps, sets, skipped) = feed(&mut c, &restarted, 143);
        assert_eq!(skipped.len(), EARLIER_SEGMENT_TAKEOVER_POSES - 1);
        assert_eq!(
            sets.iter().map(|s| s.reps).collect::<Vec<_>>(),
            vec![5, 5],
            "the set open when it restarted, then its own"
        );
        assert_eq!(reps, vec![1, 2, 3, 4, 5]);
        // Poses of the later-named run, now late, are skipped in turn.
        assert_eq!(c.pose(&frame(150, 10.0, 170.0, 2_000), 900).skipped, Some(Skipped::OutOfOrder));
    }

    /// The squat clip as two replicas deliver it: every other frame a model time late, so each
    /// pair arrives swapped.
    fn two_replicas(frames: &[PoseFrame]) -> Vec<PoseFrame> {
        frames.chunks(2).flat_map(|p| p.iter().rev().cloned()).collect()
    }

    #[test]
    fn poses_two_replicas_deliver_out_of_order_are_all_counted_in_frame_order() {
        let frames = two_replicas(&squats(1, 0.0, 6.0, 0));
        let window = std::time::Duration::from_millis(500);
        let mut c = CameraCount::new("rack1", settings(), Checkpoint::default()).with_reorder(window);
        let (reps, sets, skipped) = feed(&mut c, &frames, 1);
        assert!(skipped.is_empty(), "{} skipped", skipped.len());
        let flushed = c.flush();
        assert!(!c.has_waiting());
        let sets: Vec<ClosedSet> = sets.into_iter().chain(flushed.closed).collect();
        assert_eq!(reps, vec![1, 2, 3, 4, 5]);
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].reps, 5);
        // Without the window, every frame that came after a newer one is thrown away.
        let mut c = CameraCount::new("rack1", settings(), Checkpoint::default());
        let (_, _, skipped) = feed(&mut c, &frames, 1);
        assert_eq!(skipped.len(), frames.len() / 2);
    }

    #[test]
    fn a_pose_later_than_the_window_is_skipped_and_a_waiting_one_is_replayed_after_a_restart() {
        let window = std::time::Duration::from_millis(500);
        let mut c = CameraCount::new("rack1", settings(), Checkpoint::default()).with_reorder(window);
        for (i, t) in [1.0, 1.2, 1.4, 1.6].iter().enumerate() {
            assert!(c.pose(&frame(10 + i as u64, *t, 170.0, 0), 1 + i as u64).skipped.is_none());
            c.commit(Some(1 + i as u64));
        }
        // 1.0 was counted once 1.6 came; 1.2 to 1.6 wait. A pose of 0.9 s is past.
        assert_eq!(c.pose(&frame(9, 0.9, 170.0, 0), 5).skipped, Some(Skipped::OutOfOrder));
        c.commit(Some(5));
        let cp = c.checkpoint();
        assert!(c.has_waiting());
        // A restart replays from the first waiting pose at the latest, and counts it as new.
        assert!(cp.resume_seq <= 2, "{cp:?}");
        assert!(cp.last_seq < 2, "{cp:?}");
        let h = c.flush();
        assert!(h.closed.is_empty() && !c.has_waiting());
        c.commit(None);
        assert!(c.checkpoint().last_seq >= 5, "{:?}", c.checkpoint());
    }

    #[test]
    fn a_new_segment_closes_the_set_in_progress_and_starts_afresh() {
        let mut c = CameraCount::new("rack1", settings(), Checkpoint::default());
        let (_, sets, _) = feed(&mut c, &squats(1, 0.0, 0.5, 1)[..140], 1);
        assert!(sets.is_empty() && c.in_set());
        // The capture restarted: its timeline starts again at 0 in segment 2.
        let h = c.pose(&frame(1, 0.0, 170.0, 2), 141);
        assert!(h.new_segment);
        assert_eq!(h.closed.len(), 1);
        assert_eq!(h.closed[0].reps, 4);
        assert_eq!(h.reps_in_set, Some(0));
        c.commit(Some(141));
        let (reps, sets, _) = feed(&mut c, &squats(2, 0.1, 6.0, 2), 142);
        assert_eq!((reps.len(), sets.len(), sets[0].reps), (5, 1, 5));
        assert_ne!(sets[0].set_id, h.closed[0].set_id);
    }

    #[test]
    fn end_of_stream_and_silence_close_the_set() {
        let mut c = CameraCount::new("rack1", settings(), Checkpoint::default());
        feed(&mut c, &squats(1, 0.0, 0.5, 0)[..150], 1);
        assert!(c.in_set());
        assert!(c.close_silent(1.0).is_none(), "not silent for its quiet time yet");
        assert_eq!(c.close_silent(4.0).map(|s| s.reps), Some(5));
        c.commit(None);
        assert_eq!(c.checkpoint().last_seq, 150);
        let mut d = CameraCount::new("rack1", settings(), Checkpoint::default());
        feed(&mut d, &squats(1, 0.0, 0.5, 0)[..150], 1);
        let eos = PoseFrame { end_of_stream: true, ..frame(151, 10.1, 170.0, 0) };
        assert_eq!(d.pose(&eos, 151).closed.len(), 1);
    }

    #[test]
    fn an_unacknowledged_set_pins_the_checkpoint_for_the_next_start() {
        let mut c = CameraCount::new("rack1", settings(), Checkpoint::default());
        let frames = squats(1, 0.0, 6.0, 0);
        let mut pinned = None;
        for (i, f) in frames.iter().enumerate() {
            let seq = i as u64 + 1;
            let h = c.pose(f, seq);
            if !h.closed.is_empty() {
                pinned = Some(c.checkpoint());
                c.hold(true);
            }
            c.commit(Some(seq));
        }
        let pinned = pinned.expect("the set closed");
        assert_eq!(c.checkpoint(), pinned);
        // Replaying from there closes (and publishes) the same set again.
        let mut again = CameraCount::new("rack1", settings(), pinned);
        let from = pinned.resume_seq as usize - 1;
        let (_, sets, _) = feed(&mut again, &frames[from..], pinned.resume_seq);
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].reps, 5);
        // Stored after all (retried in-process): the next commit moves past it.
        c.hold(false);
        c.commit(None);
        assert!(c.checkpoint().resume_seq > pinned.resume_seq, "{:?} after {pinned:?}", c.checkpoint());
    }

    #[test]
    fn the_pose_rate_is_judged_on_half_a_window() {
        let mut c = CameraCount::new("rack1", settings(), Checkpoint::default());
        let rates: Vec<Option<f64>> =
            (0..60).map(|i| c.pose(&frame(i + 1, i as f64 / 10.0, 170.0, 0), i + 1).pose_rate).collect();
        assert!(rates[..25].iter().all(Option::is_none));
        let last = rates[59].unwrap();
        assert!((last - 10.0).abs() < 0.01, "{last}");
    }
}
