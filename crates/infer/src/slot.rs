//! The newest-frame-wins slots: per camera, at most one frame waits for inference.
//!
//! Contract:
//! - `offer` never blocks for long (one short std-mutex section) and never queues: a frame that
//!   arrives while another of the same camera waits replaces it (the old one is reported, to be
//!   counted as dropped: replaced). An offered frame older than the waiting one (by capture
//!   time) is refused instead, so a late seed from the stream can never displace a live frame.
//! - `take` hands out work round robin over cameras (a camera whose frame was just taken goes to
//!   the back), at most one item per camera per call, blocking until there is work or the slots
//!   are closed. A camera has at most one frame in flight: its next frame waits (newest wins) until
//!   the worker calls `done`, so however many workers there are, a camera's poses are published in
//!   frame order (the sets stage drops poses older than the newest it has: an out-of-order pose
//!   was inference thrown away).
//! - An end-of-stream marker waits until the camera has no frame waiting and none in flight, so
//!   consumers see the last frame's pose before the marker. Workers call `done` after publishing.
//!
//! Nothing awaits under the lock, so it is a std mutex; takers are blocking worker threads, so
//! they wait on a condvar.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use pump_proto::Frame;

/// Work for an inference worker.
#[derive(Debug)]
pub enum Work {
    Frame(Frame),
    EndOfStream(Frame),
}

impl Work {
    pub fn camera(&self) -> &str {
        match self {
            Work::Frame(f) | Work::EndOfStream(f) => &f.camera,
        }
    }
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
}

#[derive(Debug, Default)]
struct CameraSlot {
    waiting: Option<Frame>,
    eos: Option<Frame>,
    in_flight: usize,
    /// Listed in `State::ready`.
    queued: bool,
}

impl CameraSlot {
    fn has_work(&self) -> bool {
        self.in_flight == 0 && (self.waiting.is_some() || self.eos.is_some())
    }
}

#[derive(Debug, Default)]
struct State {
    cameras: HashMap<String, CameraSlot>,
    /// Cameras with work, in the order they will be served.
    ready: VecDeque<String>,
    closed: bool,
}

/// The slots of every camera. Shared by the subscriber (offers) and the workers (takes).
#[derive(Debug, Default)]
pub struct FrameSlots {
    state: Mutex<State>,
    work: Condvar,
}

impl FrameSlots {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; carry on with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts a frame (or an end-of-stream marker) in its camera's slot.
    pub fn offer(&self, frame: Frame) -> Offer {
        let mut st = self.lock();
        let camera = frame.camera.clone();
        let slot = st.cameras.entry(camera.clone()).or_default();
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
        if slot.has_work() && !slot.queued {
            slot.queued = true;
            st.ready.push_back(camera);
            self.work.notify_one();
        }
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
        while out.len() < max.max(1) {
            let Some(camera) = st.ready.pop_front() else { break };
            let Some(slot) = st.cameras.get_mut(&camera) else { continue };
            slot.queued = false;
            if let Some(f) = slot.waiting.take() {
                slot.in_flight += 1;
                out.push(Work::Frame(f));
            } else if slot.in_flight == 0 {
                if let Some(e) = slot.eos.take() {
                    out.push(Work::EndOfStream(e));
                }
            }
        }
        Some(out)
    }

    /// Marks a taken frame of `camera` finished (published or dropped).
    pub fn done(&self, camera: &str) {
        let mut st = self.lock();
        let Some(slot) = st.cameras.get_mut(camera) else { return };
        slot.in_flight = slot.in_flight.saturating_sub(1);
        if slot.has_work() && !slot.queued {
            slot.queued = true;
            st.ready.push_back(camera.to_string());
            self.work.notify_one();
        }
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

    #[test]
    fn a_camera_has_one_frame_in_flight_so_its_poses_stay_in_order() {
        let slots = FrameSlots::new();
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
        slots.done("a");
        let third = slots.take(4, Duration::ZERO).unwrap_or_default();
        assert_eq!(ids(&third), vec![("a".to_string(), 3, false)]);
    }

    fn frame(camera: &str, id: u64) -> Frame {
        Frame { camera: camera.into(), frame_id: id, capture_ts_ns: id as i64 * 1000, ..Default::default() }
    }

    fn eos(camera: &str, id: u64) -> Frame {
        Frame { end_of_stream: true, ..frame(camera, id) }
    }

    fn ids(work: &[Work]) -> Vec<(String, u64, bool)> {
        work.iter()
            .map(|w| match w {
                Work::Frame(f) => (f.camera.clone(), f.frame_id, false),
                Work::EndOfStream(f) => (f.camera.clone(), f.frame_id, true),
            })
            .collect()
    }

    const T: Duration = Duration::from_millis(10);

    #[test]
    fn newer_frame_replaces_the_waiting_one() {
        let s = FrameSlots::new();
        assert_eq!(s.offer(frame("a", 1)), Offer::Stored);
        assert_eq!(s.offer(frame("a", 2)), Offer::Replaced { dropped_frame_id: 1 });
        assert_eq!(s.offer(frame("a", 3)), Offer::Replaced { dropped_frame_id: 2 });
        assert_eq!(s.waiting(), 1);
        assert_eq!(ids(&s.take(4, T).unwrap()), vec![("a".into(), 3, false)]);
        assert!(s.take(4, T).unwrap().is_empty(), "nothing queued behind the newest");
    }

    #[test]
    fn older_frame_never_displaces_a_newer_one() {
        let s = FrameSlots::new();
        s.offer(frame("a", 5));
        assert_eq!(s.offer(frame("a", 4)), Offer::Older);
        assert_eq!(ids(&s.take(1, T).unwrap()), vec![("a".into(), 5, false)]);
    }

    #[test]
    fn cameras_are_served_round_robin() {
        let s = FrameSlots::new();
        s.offer(frame("a", 1));
        s.offer(frame("b", 1));
        s.offer(frame("c", 1));
        assert_eq!(ids(&s.take(1, T).unwrap()), vec![("a".into(), 1, false)]);
        s.done("a");
        s.offer(frame("a", 2));
        // a went to the back: b and c come first.
        assert_eq!(ids(&s.take(2, T).unwrap()), vec![("b".into(), 1, false), ("c".into(), 1, false)]);
        assert_eq!(ids(&s.take(2, T).unwrap()), vec![("a".into(), 2, false)]);
    }

    #[test]
    fn a_batch_holds_at_most_one_frame_per_camera() {
        let s = FrameSlots::new();
        s.offer(frame("a", 1));
        s.offer(frame("a", 2));
        s.offer(frame("b", 1));
        let got = ids(&s.take(8, T).unwrap());
        assert_eq!(got, vec![("a".into(), 2, false), ("b".into(), 1, false)]);
    }

    #[test]
    fn end_of_stream_waits_for_the_last_frame() {
        let s = FrameSlots::new();
        s.offer(frame("a", 9));
        s.offer(eos("a", 10));
        assert_eq!(ids(&s.take(4, T).unwrap()), vec![("a".into(), 9, false)]);
        // Frame 9 is in flight: the marker must not overtake its pose.
        assert!(s.take(4, T).unwrap().is_empty());
        s.done("a");
        assert_eq!(ids(&s.take(4, T).unwrap()), vec![("a".into(), 10, true)]);
    }

    #[test]
    fn end_of_stream_alone_is_handed_out() {
        let s = FrameSlots::new();
        s.offer(eos("a", 0));
        assert_eq!(ids(&s.take(4, T).unwrap()), vec![("a".into(), 0, true)]);
    }

    #[test]
    fn close_wakes_waiting_takers() {
        let s = std::sync::Arc::new(FrameSlots::new());
        let s2 = s.clone();
        let h = std::thread::spawn(move || s2.take(1, Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(s.close(), 0);
        assert!(h.join().unwrap().is_none());
    }

    #[test]
    fn close_drops_waiting_frames() {
        let s = FrameSlots::new();
        s.offer(frame("a", 1));
        s.offer(frame("b", 1));
        assert_eq!(s.close(), 2);
        assert!(s.take(1, T).is_none());
    }

    #[test]
    fn take_times_out_empty() {
        let s = FrameSlots::new();
        let t0 = std::time::Instant::now();
        assert!(s.take(1, Duration::from_millis(30)).unwrap().is_empty());
        assert!(t0.elapsed() >= Duration::from_millis(25));
    }
}
