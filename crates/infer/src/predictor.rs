//! What runs on a frame: the real pose engine, or a fake with a set delay for scheduling tests
//! and benchmarks (named as such).

use std::time::Duration;

use pump_pose::{ImageView, Pose, PoseEngine, StageTimings};

/// Finds people in a batch of images. One per worker thread (sessions run with `&mut`).
pub trait Predictor: Send {
    /// The people in each image, and the time each step of the run took.
    fn predict(&mut self, images: &[ImageView<'_>]) -> pump_pose::Result<(Vec<Vec<Pose>>, StageTimings)>;
    /// Model name carried by every PoseFrame.
    fn model(&self) -> String;
    /// Execution provider really in use.
    fn provider(&self) -> &'static str;
}

impl Predictor for PoseEngine {
    fn predict(&mut self, images: &[ImageView<'_>]) -> pump_pose::Result<(Vec<Vec<Pose>>, StageTimings)> {
        self.detect_batch(images)
    }

    fn model(&self) -> String {
        self.model_path().file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default()
    }

    fn provider(&self) -> &'static str {
        PoseEngine::provider(self).name()
    }
}

/// FAKE for scheduling tests and benchmarks: takes `delay` per run and finds nobody.
#[derive(Debug, Clone)]
pub struct SlowPredictor {
    pub delay: Duration,
}

impl Predictor for SlowPredictor {
    fn predict(&mut self, images: &[ImageView<'_>]) -> pump_pose::Result<(Vec<Vec<Pose>>, StageTimings)> {
        std::thread::sleep(self.delay);
        Ok((vec![Vec::new(); images.len()], StageTimings { model: self.delay, ..Default::default() }))
    }

    fn model(&self) -> String {
        "slow-predictor".into()
    }

    fn provider(&self) -> &'static str {
        "fake"
    }
}

/// FAKE for scheduling tests: each run takes the next of `delays` (cycling), finds nobody. Two
/// of them with different cycles make one worker's result overtake another's.
#[derive(Debug, Clone)]
pub struct UnevenPredictor {
    pub delays: Vec<Duration>,
    pub next: usize,
}

impl Predictor for UnevenPredictor {
    fn predict(&mut self, images: &[ImageView<'_>]) -> pump_pose::Result<(Vec<Vec<Pose>>, StageTimings)> {
        let delay = self.delays.get(self.next % self.delays.len().max(1)).copied().unwrap_or_default();
        std::thread::sleep(delay);
        self.next += 1;
        Ok((vec![Vec::new(); images.len()], StageTimings { model: delay, ..Default::default() }))
    }

    fn model(&self) -> String {
        "uneven-predictor".into()
    }

    fn provider(&self) -> &'static str {
        "fake"
    }
}
