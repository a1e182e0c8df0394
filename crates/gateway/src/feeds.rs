//! Each watched camera's last frames, from one NATS subscription shared by all its viewers (the
//! preview's live views, snapshots with the skeleton): a skeleton is drawn only on the frame its
//! pose came from, so the frames a pose may still arrive for are kept.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use prost::Message;
use pump_bus::subject::{self, CameraId};
use pump_proto::{Frame, PoseFrame};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::live::LiveCameras;
use crate::snapshot::pose_fits;

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
    /// Where the feeds run, so shutdown waits for them.
    tasks: TaskTracker,
}

impl FrameFeeds {
    pub fn new(client: async_nats::Client, shutdown: CancellationToken, tasks: TaskTracker) -> Arc<Self> {
        Arc::new(Self { client, feeds: Mutex::default(), shutdown, tasks })
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
        self.tasks.spawn(self.clone().feed(cam.clone(), tx, sub));
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

/// The newest frame that has its pose, for a snapshot with the skeleton: the kept frame if its
/// pose is out, else a moment of the camera's feed (at most a second) until a pose and its frame
/// meet; the kept frame with nobody drawn if none does. Shared by the HTTP and gRPC snapshots.
pub async fn frame_with_pose(
    feeds: &Arc<FrameFeeds>,
    book: &LiveCameras,
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
pub const SNAPSHOT_POSE_WAIT: Duration = Duration::from_secs(1);
