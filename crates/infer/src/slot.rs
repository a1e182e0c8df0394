//! The newest-frame-wins slots: per camera, at most one frame waits for inference.
//!
//! Contract:
//! - `offer` never blocks for long (one short std-mutex section) and never queues: a frame that
//!   arrives while another of the same camera waits replaces it (the old one is reported, to be
//!   counted as dropped: replaced). An offered frame older than the waiting one (by capture
//!   time) is refused instead, so a late seed from the stream can never displace a live frame.
//! - `take` hands out work round robin over cameras (a camera whose frame was just taken goes to
//!   the back; of the cameras with work, those with fewer frames in flight first), at most one
//!   item per camera per call, blocking until there is work or the slots are closed. Frames in
//!   flight per camera: the engines shared among the cameras that sent a frame in the last
//!   second (rounded up) — a lone fast camera keeps every engine busy, several cameras get one
//!   engine each, so their pose rates stay even. Each taken frame has a ticket in frame order.
//! - Results come back through `finish` with their ticket and leave in ticket order: a result
//!   that overtook an older frame of its camera waits for it, and one worker at a time sends a
//!   camera's results (`finish`, then `sent` until it returns nothing). So however many workers
//!   there are, a camera's poses are published in frame order (the sets stage drops poses older
//!   than the newest it has: an out-of-order pose was inference thrown away).
//! - An end-of-stream marker waits until the camera has no frame waiting, none in flight and
//!   none being sent, so consumers see the last frame's pose before the marker.
//!
//! Nothing awaits under the lock, so it is a std mutex; takers are blocking worker threads, so
//! they wait on a condvar.
//!
//! Over 400 lines with its tests: the code is 276, the rest are the unit tests that pin the contract.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pump_bus::frame::CheckedFrame;
use pump_proto::PoseFrame;

/// A camera that sent a frame this recently shares the engines.
const ACTIVE_WITHIN: Duration = Duration::from_secs(1);

/// A taken frame's place in its camera's order.
pub type Ticket = u64;

/// Work for an inference worker.
#[derive(Debug)]
pub enum Work {
    Frame(CheckedFrame, Ticket),
    EndOfStream(CheckedFrame),
}

/// What became of an offered frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    Stored,
    /// Stored; the frame with this id was waiting and is dropped.
    Replaced {
        dropped_frame_id: u64,
    },
    /// Not stored: a newer frame of the camera is already waiting.
    Older,
    /// Not stored: a new camera while as many as allowed are being inferred (none of them idle
    /// to forget).
    Refused,
}

#[derive(Debug, Default)]
struct CameraSlot {
    waiting: Option<CheckedFrame>,
    eos: Option<CheckedFrame>,
    /// The next ticket to hand out, and the next one to release: the difference is in flight.
    issued: Ticket,
    released: Ticket,
    /// Results back from the workers, by ticket, not yet released (`None`: no pose, the frame
    /// was dropped or failed).
    finished: BTreeMap<Ticket, Option<PoseFrame>>,
    /// A worker is sending this camera's released results.
    sending: bool,
    /// When the camera last offered a frame.
    last_offer: Option<Instant>,
    /// Listed in `State::ready`.
    queued: bool,
}

impl CameraSlot {
    fn in_flight(&self) -> u64 {
        self.issued - self.released
    }

    /// Nothing waiting, in flight or to send: forgetting it loses nothing.
    fn is_idle(&self) -> bool {
        self.waiting.is_none() && self.eos.is_none() && self.in_flight() == 0 && !self.sending && !self.queued
    }

    fn has_work(&self, most_in_flight: u64) -> bool {
        (self.waiting.is_some() && self.in_flight() < most_in_flight)
            || (self.eos.is_some() && self.waiting.is_none() && self.in_flight() == 0 && !self.sending)
    }

    /// Releases the results that are next in order: the poses among them, to be sent.
    fn release(&mut self) -> Vec<PoseFrame> {
        let mut out = Vec::new();
        while let Some(result) = self.finished.remove(&self.released) {
            self.released += 1;
            out.extend(result);
        }
        out
    }
}

#[derive(Debug, Default)]
struct State {
    cameras: HashMap<String, CameraSlot>,
    /// Cameras with work, in the order they will be served.
    ready: VecDeque<String>,
    closed: bool,
}

impl State {
    /// Frames one camera may have in flight: the engines over the active cameras, rounded up.
    fn share(&self, engines: u64) -> u64 {
        let now = Instant::now();
        let active = self
            .cameras
            .values()
            .filter(|s| s.last_offer.is_some_and(|t| now.duration_since(t) < ACTIVE_WITHIN))
            .count() as u64;
        engines.div_ceil(active.max(1))
    }

    fn queue_if_ready(&mut self, camera: &str, engines: u64, work: &Condvar) {
        let share = self.share(engines);
        let Some(slot) = self.cameras.get_mut(camera) else { return };
        if slot.has_work(share) && !slot.queued && !self.closed {
            slot.queued = true;
            self.ready.push_back(camera.to_string());
            work.notify_one();
        }
    }
}

/// The slots of every camera. Shared by the subscriber (offers) and the workers (takes).
#[derive(Debug)]
pub struct FrameSlots {
    state: Mutex<State>,
    work: Condvar,
    /// A frame in flight finished: room for one more (`--intake pull` asks for frames then).
    freed: tokio::sync::Notify,
    most_in_flight: u64,
    /// Cameras with a slot at most: a flood of camera names costs a bounded map (and `share`,
    /// which walks it per frame, bounded time).
    max_cameras: usize,
}

impl Default for FrameSlots {
    fn default() -> Self {
        Self::new(1)
    }
}

impl FrameSlots {
    /// Slots letting each camera have up to `in_flight` frames inferred at once (at least one).
    pub fn new(in_flight: usize) -> Self {
        Self {
            state: Mutex::default(),
            work: Condvar::new(),
            freed: tokio::sync::Notify::new(),
            most_in_flight: in_flight.max(1) as u64,
            max_cameras: pump_bus::ops::DEFAULT_MAX_CAMERAS,
        }
    }

    /// At most `max` cameras have a slot: a new one past that takes the slot of the idle camera
    /// silent longest, or is refused while every one is busy.
    pub fn with_max_cameras(self, max: usize) -> Self {
        Self { max_cameras: max.max(1), ..self }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; carry on with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts a frame (or an end-of-stream marker) in its camera's slot: only checked frames get
    /// this far, so every one taken can be decoded.
    pub fn offer(&self, frame: CheckedFrame) -> Offer {
        let mut st = self.lock();
        let camera = frame.camera.clone();
        if !st.cameras.contains_key(&camera) && st.cameras.len() >= self.max_cameras {
            let idle = st.cameras.iter().filter(|(_, s)| s.is_idle()).min_by_key(|(_, s)| s.last_offer);
            let Some(idle) = idle.map(|(c, _)| c.clone()) else { return Offer::Refused };
            st.cameras.remove(&idle);
        }
        let slot = st.cameras.entry(camera.clone()).or_default();
        if !frame.end_of_stream {
            slot.last_offer = Some(Instant::now());
        }
        let outcome = if frame.end_of_stream {
            slot.eos = Some(frame);
            Offer::Stored
        } else {
            match &slot.waiting {
                Some(w) if w.capture_ts_ns > frame.capture_ts_ns => Offer::Older,
                Some(w) => {
                    let dropped_frame_id = w.frame_id;
                    slot.waiting = Some(frame);
                    Offer::Replaced { dropped_frame_id }
                }
                None => {
                    slot.waiting = Some(frame);
                    Offer::Stored
                }
            }
        };
        st.queue_if_ready(&camera, self.most_in_flight, &self.work);
        outcome
    }

    /// Takes up to `max` items of different cameras, round robin; waits up to `timeout` for
    /// work. `None` once closed and drained of nothing more to give.
    pub fn take(&self, max: usize, timeout: Duration) -> Option<Vec<Work>> {
        let mut st = self.lock();
        if st.ready.is_empty() && !st.closed {
            st = self
                .work
                .wait_timeout_while(st, timeout, |s| s.ready.is_empty() && !s.closed)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        if st.ready.is_empty() && st.closed {
            return None;
        }
        let mut out = Vec::new();
        let share = st.share(self.most_in_flight);
        while out.len() < max.max(1) {
            // The first of the cameras with the fewest frames in flight: a camera with none
            // goes before a second frame of one already being inferred.
            let fewest =
                st.ready.iter().enumerate().min_by_key(|(_, c)| st.cameras.get(*c).map_or(0, CameraSlot::in_flight));
            let Some(at) = fewest.map(|(i, _)| i) else { break };
            let Some(camera) = st.ready.remove(at) else { break };
            let Some(slot) = st.cameras.get_mut(&camera) else { continue };
            slot.queued = false;
            if !slot.has_work(share) {
                continue;
            }
            if let Some(f) = slot.waiting.take() {
                out.push(Work::Frame(f, slot.issued));
                slot.issued += 1;
            } else if let Some(e) = slot.eos.take() {
                out.push(Work::EndOfStream(e));
            }
        }
        Some(out)
    }

    /// A taken frame of `camera` is finished: its pose frame, or `None` (dropped, failed).
    /// Returns the poses now due to be sent, in order, by this caller, which then calls `sent`
    /// until that returns nothing; empty when they are not due yet or another worker is
    /// sending this camera's (it will send these too).
    pub fn finish(&self, camera: &str, ticket: Ticket, result: Option<PoseFrame>) -> Vec<PoseFrame> {
        let mut st = self.lock();
        let Some(slot) = st.cameras.get_mut(camera) else { return Vec::new() };
        slot.finished.insert(ticket, result);
        self.freed.notify_one();
        if slot.sending {
            return Vec::new();
        }
        let out = slot.release();
        slot.sending = !out.is_empty();
        st.queue_if_ready(camera, self.most_in_flight, &self.work);
        out
    }

    /// The poses `finish` (or the last `sent`) returned are sent: the next ones due, or nothing
    /// (and the camera's sending is over).
    pub fn sent(&self, camera: &str) -> Vec<PoseFrame> {
        let mut st = self.lock();
        let Some(slot) = st.cameras.get_mut(camera) else { return Vec::new() };
        let out = slot.release();
        slot.sending = !out.is_empty();
        st.queue_if_ready(camera, self.most_in_flight, &self.work);
        out
    }

    /// How many more frames, of `capacity` (engines × batch), these slots can take now without
    /// one replacing another: `capacity` less those waiting and in flight (a frame in flight is
    /// counted until its result is in, released or not).
    pub fn room(&self, capacity: usize) -> usize {
        let st = self.lock();
        let busy: u64 =
            st.cameras.values().map(|s| s.in_flight() - s.finished.len() as u64 + u64::from(s.waiting.is_some())).sum();
        capacity.saturating_sub(usize::try_from(busy).unwrap_or(usize::MAX))
    }

    /// Resolves once a frame in flight has finished since the last time it resolved.
    pub fn room_freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.freed.notified()
    }

    /// Frames currently waiting (at most one per camera).
    pub fn waiting(&self) -> usize {
        self.lock().cameras.values().filter(|s| s.waiting.is_some()).count()
    }

    /// Stops the slots: waiting frames are dropped (their count is returned), frames in flight
    /// finish, and every taker wakes to `None`.
    pub fn close(&self) -> usize {
        let mut st = self.lock();
        st.closed = true;
        st.ready.clear();
        let mut dropped = 0;
        for slot in st.cameras.values_mut() {
            dropped += usize::from(slot.waiting.take().is_some());
            slot.queued = false;
        }
        self.work.notify_all();
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pump_proto::Frame;

    #[test]
    fn a_new_camera_past_the_limit_takes_an_idle_cameras_slot_or_is_refused() {
        let slots = FrameSlots::new(1).with_max_cameras(2);
        slots.offer(frame("a", 1));
        slots.offer(frame("b", 1));
        // Both busy (a frame waiting each): a third camera is refused, the two keep theirs.
        assert_eq!(slots.offer(frame("c", 1)), Offer::Refused);
        let taken = slots.take(4, Duration::ZERO).unwrap_or_default();
        assert_eq!(taken.len(), 2);
        // "a" finishes and goes idle; "b" is still in flight.
        assert_eq!(frame_ids(&slots.finish("a", 0, Some(pose("a", 1)))), vec![1]);
        assert!(slots.sent("a").is_empty());
        assert_eq!(slots.offer(frame("c", 1)), Offer::Stored, "c takes a's slot");
        assert_eq!(slots.offer(frame("d", 1)), Offer::Refused, "b in flight, c waiting");
        // b's pose still comes, in order.
        assert_eq!(frame_ids(&slots.finish("b", 0, Some(pose("b", 1)))), vec![1]);
        // A flood of names costs at most two slots.
        for i in 0..1000 {
            slots.offer(frame(&format!("flood{i}"), 1));
        }
        assert!(slots.lock().cameras.len() <= 2);
    }

    #[test]
    fn room_is_what_is_neither_waiting_nor_being_inferred_and_a_finish_says_so() {
        let slots = FrameSlots::new(2);
        assert_eq!(slots.room(2), 2);
        slots.offer(frame("a", 1));
        assert_eq!(slots.room(2), 1, "one waiting");
        let taken = slots.take(1, Duration::ZERO).unwrap_or_default();
        assert_eq!(taken.len(), 1);
        slots.offer(frame("b", 1));
        assert_eq!(slots.room(2), 0, "one in flight, one waiting");
        assert_eq!(slots.room(1), 0, "never below none");
        let _ = slots.take(1, Duration::ZERO);
        // b finishes first: its result is in (a's not yet, so b's is not released), and the
        // engine it ran on is free.
        assert!(slots.finish("b", 0, Some(pose("b", 1))).len() <= 1);
        assert_eq!(slots.room(2), 1);
        // The finish left a permit: a pull waiting for room wakes at once.
        assert!(futures::FutureExt::now_or_never(slots.room_freed()).is_some());
        assert!(futures::FutureExt::now_or_never(slots.room_freed()).is_none(), "one permit, taken");
    }

    #[test]
    fn with_one_in_flight_a_cameras_next_frame_waits_for_the_last() {
        let slots = FrameSlots::new(1);
        slots.offer(frame("a", 1));
        let first = slots.take(1, Duration::ZERO).unwrap_or_default();
        assert_eq!(ids(&first), vec![("a".to_string(), 1, false)]);
        // Frame 2 arrives while 1 is in flight: a second worker gets nothing of camera a …
        slots.offer(frame("a", 2));
        slots.offer(frame("b", 1));
        let second = slots.take(4, Duration::ZERO).unwrap_or_default();
        assert_eq!(ids(&second), vec![("b".to_string(), 1, false)]);
        // … frame 3 replaces 2 (newest wins), and comes once 1 is done.
        assert_eq!(slots.offer(frame("a", 3)), Offer::Replaced { dropped_frame_id: 2 });
        assert!(slots.take(4, Duration::ZERO).unwrap_or_default().is_empty());
        assert_eq!(frame_ids(&slots.finish("a", 0, Some(pose("a", 1)))), vec![1]);
        assert!(slots.sent("a").is_empty());
        let third = slots.take(4, Duration::ZERO).unwrap_or_default();
        assert_eq!(ids(&third), vec![("a".to_string(), 3, false)]);
    }

    #[test]
    fn a_lone_camera_keeps_two_workers_busy_and_its_poses_leave_in_frame_order() {
        let slots = FrameSlots::new(2);
        slots.offer(frame("a", 1));
        let w1 = slots.take(1, T).unwrap();
        slots.offer(frame("a", 2));
        let w2 = slots.take(1, T).unwrap();
        assert_eq!((ids(&w1), ids(&w2)), (vec![("a".into(), 1, false)], vec![("a".into(), 2, false)]));
        // A third frame waits: two are in flight.
        slots.offer(frame("a", 3));
        assert!(slots.take(1, Duration::ZERO).unwrap().is_empty());
        // Frame 2's pose is ready first: it waits for frame 1's.
        assert!(slots.finish("a", 1, Some(pose("a", 2))).is_empty());
        // Its ticket is still unreleased, so frame 3 still waits.
        assert!(slots.take(1, Duration::ZERO).unwrap().is_empty());
        assert_eq!(frame_ids(&slots.finish("a", 0, Some(pose("a", 1)))), vec![1, 2]);
        assert!(slots.sent("a").is_empty());
        assert_eq!(ids(&slots.take(1, T).unwrap()), vec![("a".into(), 3, false)]);
    }

    #[test]
    fn several_cameras_share_the_engines_one_frame_in_flight_each() {
        let slots = FrameSlots::new(2);
        slots.offer(frame("a", 1));
        slots.offer(frame("b", 1));
        assert_eq!(ids(&slots.take(1, T).unwrap()), vec![("a".into(), 1, false)]);
        assert_eq!(ids(&slots.take(1, T).unwrap()), vec![("b".into(), 1, false)]);
        // Two cameras, two engines: a second frame of a waits for a's first, however idle.
        slots.offer(frame("a", 2));
        assert!(slots.take(1, Duration::ZERO).unwrap().is_empty());
        assert_eq!(frame_ids(&slots.finish("a", 0, Some(pose("a", 1)))), vec![1]);
        assert!(slots.sent("a").is_empty());
        assert_eq!(ids(&slots.take(1, T).unwrap()), vec![("a".into(), 2, false)]);
    }

    #[test]
    fn a_camera_with_nothing_in_flight_goes_first() {
        let slots = FrameSlots::new(4);
        slots.offer(frame("a", 1));
        slots.take(1, T).unwrap();
        // a (one in flight, share 2 of 4 engines) is queued before b, but b has none in flight.
        slots.offer(frame("a", 2));
        slots.offer(frame("b", 1));
        assert_eq!(ids(&slots.take(1, T).unwrap()), vec![("b".into(), 1, false)]);
        assert_eq!(ids(&slots.take(1, T).unwrap()), vec![("a".into(), 2, false)]);
    }

    #[test]
    fn one_worker_at_a_time_sends_a_cameras_poses() {
        let slots = FrameSlots::new(2);
        slots.offer(frame("a", 1));
        slots.take(1, T).unwrap();
        slots.offer(frame("a", 2));
        slots.take(1, T).unwrap();
        // Worker 1 is sending frame 1's pose when frame 2's comes back: worker 2 sends nothing …
        assert_eq!(frame_ids(&slots.finish("a", 0, Some(pose("a", 1)))), vec![1]);
        assert!(slots.finish("a", 1, Some(pose("a", 2))).is_empty());
        // … worker 1 sends it after its own.
        assert_eq!(frame_ids(&slots.sent("a")), vec![2]);
        assert!(slots.sent("a").is_empty());
    }

    #[test]
    fn a_dropped_frame_releases_its_place_without_a_pose() {
        let slots = FrameSlots::new(2);
        slots.offer(frame("a", 1));
        slots.take(1, T).unwrap();
        slots.offer(frame("a", 2));
        slots.take(1, T).unwrap();
        assert!(slots.finish("a", 1, Some(pose("a", 2))).is_empty());
        assert_eq!(frame_ids(&slots.finish("a", 0, None)), vec![2]);
    }

    fn pose(camera: &str, id: u64) -> PoseFrame {
        PoseFrame { camera: camera.into(), frame_id: id, ..Default::default() }
    }

    fn frame_ids(poses: &[PoseFrame]) -> Vec<u64> {
        poses.iter().map(|p| p.frame_id).collect()
    }

    /// A one-pixel frame: what the slots do depends only on camera, id and time.
    fn frame(camera: &str, id: u64) -> CheckedFrame {
        let f = Frame {
            camera: camera.into(),
            frame_id: id,
            capture_ts_ns: id as i64 * 1000,
            width: 1,
            height: 1,
            encoding: pump_proto::Encoding::Bgr8 as i32,
            data: vec![0; 3].into(),
            ..Default::default()
        };
        CheckedFrame::try_from(f).unwrap()
    }

    fn eos(camera: &str, id: u64) -> CheckedFrame {
        CheckedFrame::try_from(Frame { end_of_stream: true, ..frame(camera, id).into_frame() }).unwrap()
    }

    fn ids(work: &[Work]) -> Vec<(String, u64, bool)> {
        work.iter()
            .map(|w| match w {
                Work::Frame(f, _) => (f.camera.clone(), f.frame_id, false),
                Work::EndOfStream(f) => (f.camera.clone(), f.frame_id, true),
            })
            .collect()
    }

    const T: Duration = Duration::from_millis(10);

    #[test]
    fn newer_frame_replaces_the_waiting_one() {
        let s = FrameSlots::new(1);
        assert_eq!(s.offer(frame("a", 1)), Offer::Stored);
        assert_eq!(s.offer(frame("a", 2)), Offer::Replaced { dropped_frame_id: 1 });
        assert_eq!(s.offer(frame("a", 3)), Offer::Replaced { dropped_frame_id: 2 });
        assert_eq!(s.waiting(), 1);
        assert_eq!(ids(&s.take(4, T).unwrap()), vec![("a".into(), 3, false)]);
        assert!(s.take(4, T).unwrap().is_empty(), "nothing queued behind the newest");
    }

    #[test]
    fn older_frame_never_displaces_a_newer_one() {
        let s = FrameSlots::new(1);
        s.offer(frame("a", 5));
        assert_eq!(s.offer(frame("a", 4)), Offer::Older);
        assert_eq!(ids(&s.take(1, T).unwrap()), vec![("a".into(), 5, false)]);
    }

    #[test]
    fn cameras_are_served_round_robin() {
        let s = FrameSlots::new(1);
        s.offer(frame("a", 1));
        s.offer(frame("b", 1));
        s.offer(frame("c", 1));
        assert_eq!(ids(&s.take(1, T).unwrap()), vec![("a".into(), 1, false)]);
        s.finish("a", 0, None);
        s.offer(frame("a", 2));
        // a went to the back: b and c come first.
        assert_eq!(ids(&s.take(2, T).unwrap()), vec![("b".into(), 1, false), ("c".into(), 1, false)]);
        assert_eq!(ids(&s.take(2, T).unwrap()), vec![("a".into(), 2, false)]);
    }

    #[test]
    fn a_batch_holds_at_most_one_frame_per_camera() {
        let s = FrameSlots::new(1);
        s.offer(frame("a", 1));
        s.offer(frame("a", 2));
        s.offer(frame("b", 1));
        let got = ids(&s.take(8, T).unwrap());
        assert_eq!(got, vec![("a".into(), 2, false), ("b".into(), 1, false)]);
    }

    #[test]
    fn end_of_stream_waits_for_the_last_frame() {
        let s = FrameSlots::new(1);
        s.offer(frame("a", 9));
        s.offer(eos("a", 10));
        assert_eq!(ids(&s.take(4, T).unwrap()), vec![("a".into(), 9, false)]);
        // Frame 9 is in flight: the marker must not overtake its pose …
        assert!(s.take(4, T).unwrap().is_empty());
        assert_eq!(frame_ids(&s.finish("a", 0, Some(pose("a", 9)))), vec![9]);
        // … nor its sending.
        assert!(s.take(4, Duration::ZERO).unwrap().is_empty());
        assert!(s.sent("a").is_empty());
        assert_eq!(ids(&s.take(4, T).unwrap()), vec![("a".into(), 10, true)]);
    }

    #[test]
    fn end_of_stream_alone_is_handed_out() {
        let s = FrameSlots::new(1);
        s.offer(eos("a", 0));
        assert_eq!(ids(&s.take(4, T).unwrap()), vec![("a".into(), 0, true)]);
    }

    #[test]
    fn close_wakes_waiting_takers() {
        let s = std::sync::Arc::new(FrameSlots::new(1));
        let s2 = s.clone();
        let h = std::thread::spawn(move || s2.take(1, Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(s.close(), 0);
        assert!(h.join().unwrap().is_none());
    }

    #[test]
    fn close_drops_waiting_frames() {
        let s = FrameSlots::new(1);
        s.offer(frame("a", 1));
        s.offer(frame("b", 1));
        assert_eq!(s.close(), 2);
        assert!(s.take(1, T).is_none());
    }

    #[test]
    fn take_times_out_empty() {
        let s = FrameSlots::new(1);
        let t0 = std::time::Instant::now();
        assert!(s.take(1, Duration::from_millis(30)).unwrap().is_empty());
        assert!(t0.elapsed() >= Duration::from_millis(25));
    }
}
