//! Operational HTTP endpoints every service serves on its own port:
//! `/healthz` (a JSON account of itself: 200 while it makes progress, 503 with `"stuck"` when it
//! does not, so a liveness probe restarts it), `/readyz` (200 when ready, 503 with the reason
//! otherwise) and `/metrics` (Prometheus text).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

/// What a service reports; each closure is called per request.
#[derive(Clone)]
pub struct Ops {
    /// `None` when ready, else why not.
    pub not_ready: Arc<dyn Fn() -> Option<String> + Send + Sync>,
    pub health: Arc<dyn Fn() -> serde_json::Value + Send + Sync>,
    pub metrics: Arc<dyn Fn() -> String + Send + Sync>,
    /// `None` while the service makes progress, else why not (work waiting and none done for
    /// long): what a restart would cure, unlike a bus that is away.
    pub stuck: Arc<dyn Fn() -> Option<String> + Send + Sync>,
}

/// For [`Ops::stuck`] of a service whose work is its requests: answering is its progress.
pub fn never_stuck() -> Arc<dyn Fn() -> Option<String> + Send + Sync> {
    Arc::new(|| None)
}

/// Whether a service's work is going on: it is stuck when work waits and the count of what it
/// finished has not moved for `after`. Judged at each look (the probe's), so it needs no task.
#[derive(Debug)]
pub struct Progress {
    after: std::time::Duration,
    last: Option<(u64, std::time::Instant)>,
}

impl Progress {
    pub fn new(after: std::time::Duration) -> Self {
        Self { after, last: None }
    }

    /// `done`: what the service finished so far; `waiting`: whether work waits for it.
    pub fn stuck(&mut self, done: u64, waiting: bool, now: std::time::Instant) -> Option<String> {
        match self.last {
            Some((d, _)) if d != done || !waiting => self.last = Some((done, now)),
            None => self.last = Some((done, now)),
            Some(_) => {}
        }
        let since = self.last.map_or(std::time::Duration::ZERO, |(_, t)| now.saturating_duration_since(t));
        (waiting && since >= self.after).then(|| format!("work waiting and none done for {:.0} s", since.as_secs_f64()))
    }
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ops")
    }
}

/// Serves the endpoints on `listener` until `shutdown`.
pub async fn serve(listener: tokio::net::TcpListener, ops: Ops, shutdown: CancellationToken) -> std::io::Result<()> {
    serve_with(listener, ops, Router::new(), shutdown).await
}

/// Serves the endpoints and a service's own routes (the gateway's preview) on `listener` until
/// `shutdown`. Long-lived responses must end at `shutdown` themselves: the server waits for them.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    ops: Ops,
    routes: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app(ops, routes)).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

/// The endpoints and `routes` as one app (for a server of the service's own, e.g. over TLS).
pub fn app(ops: Ops, routes: Router) -> Router {
    let (h, r, m) = (ops.clone(), ops.clone(), ops);
    Router::new()
        .route(
            "/healthz",
            get(move || async move {
                let mut health = (h.health)();
                match (h.stuck)() {
                    None => (StatusCode::OK, axum::Json(health)),
                    Some(why) => {
                        if let Some(o) = health.as_object_mut() {
                            o.insert("stuck".into(), why.into());
                        }
                        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(health))
                    }
                }
            }),
        )
        .route(
            "/readyz",
            get(move || async move {
                match (r.not_ready)() {
                    None => (StatusCode::OK, "ready\n".to_string()),
                    Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
                }
            }),
        )
        .route(
            "/metrics",
            get(move || async move {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], (m.metrics)()).into_response()
            }),
        )
        .merge(routes)
}

/// The one family every stage counts what it drops in, labelled `stage` (capture, infer,
/// gateway, sets) and `reason` (and `camera` where there is one): one query sums a camera's
/// losses along the pipeline.
pub const FRAMES_DROPPED: &str = "pump_frames_dropped_total";
/// Its help line, the same from every service.
pub const FRAMES_DROPPED_HELP: &str = "Frames (or their poses) dropped, by stage and reason.";

/// Builds Prometheus text, one metric family at a time.
#[derive(Debug, Default)]
pub struct PromText {
    out: String,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl PromText {
    /// A service's metrics, starting with what every service exports: its NATS connection
    /// (`nats_connected`: 1 or 0, see [`nats_connected`]).
    pub fn for_service(nats_connected: f64) -> Self {
        let mut p = Self::default();
        p.single("pump_nats_connected", "gauge", "1 while connected to NATS.", nats_connected);
        p
    }

    /// A family of one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) -> &mut Self {
        self.family(name, kind, help).sample(name, &[], value)
    }

    /// A family with one sample per camera, `pick`ed from each camera's state.
    pub fn per_camera<T>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        cameras: &std::collections::BTreeMap<String, T>,
        pick: impl Fn(&T) -> f64,
    ) -> &mut Self {
        self.family(name, kind, help);
        for (camera, state) in cameras {
            self.sample(name, &[("camera", camera)], pick(state));
        }
        self
    }

    /// Starts a family: `kind` is `counter`, `gauge` or `histogram`.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        let labels = if labels.is_empty() { String::new() } else { format!("{{{}}}", labels.join(",")) };
        let _ = writeln!(self.out, "{name}{labels} {value}");
        self
    }

    /// The `_bucket`, `_sum` and `_count` samples of one histogram of the current family.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) -> &mut Self {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (bound, n) in h.bounds.iter().zip(&h.counts) {
            cumulative += n;
            let le = bound.to_string();
            let mut l = labels.to_vec();
            l.push(("le", &le));
            self.sample(&bucket, &l, cumulative as f64);
        }
        let mut l = labels.to_vec();
        l.push(("le", "+Inf"));
        self.sample(&bucket, &l, h.count as f64);
        self.sample(&format!("{name}_sum"), labels, h.sum);
        self.sample(&format!("{name}_count"), labels, h.count as f64)
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Seconds, bucketed for Prometheus: from a few ms (a model run on a GPU) to seconds (a frame
/// that waited far too long).
pub const SECONDS_BUCKETS: &[f64] = &[0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12];

/// A Prometheus histogram: observations counted per bucket since the start, never forgotten.
#[derive(Debug, Clone)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); those above the last bound only in `count`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new(SECONDS_BUCKETS)
    }
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, counts: vec![0; bounds.len()], sum: 0.0, count: 0 }
    }

    pub fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

/// Events per second over the last `N` events (60 for every pump rate), and the age of the last.
#[derive(Debug, Clone, Default)]
pub struct RateWindow {
    times: std::collections::VecDeque<std::time::Instant>,
}

impl RateWindow {
    const N: usize = 60;

    /// Records an event now.
    pub fn tick(&mut self) {
        if self.times.len() == Self::N {
            self.times.pop_front();
        }
        self.times.push_back(std::time::Instant::now());
    }

    /// Events per second over the window; 0 with fewer than two.
    pub fn per_second(&self) -> f64 {
        match (self.times.front(), self.times.back()) {
            (Some(a), Some(b)) if self.times.len() > 1 && b > a => {
                (self.times.len() - 1) as f64 / (*b - *a).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Seconds since the last event, if any.
    pub fn last_age_s(&self) -> Option<f64> {
        self.times.back().map(|t| t.elapsed().as_secs_f64())
    }
}

/// Cameras a service keeps state of by default (`--max-cameras`, as the frames stream keeps).
pub const DEFAULT_MAX_CAMERAS: usize = 256;

/// Per-camera state shared between a service's camera tasks and its ops endpoints. The lock
/// shrugs off poisoning: a panic in one camera's task must not take /metrics and /healthz with it.
///
/// At most [`DEFAULT_MAX_CAMERAS`] (or [`PerCamera::set_max`]) cameras are kept: a new one past
/// that forgets the camera silent longest, so a flood of camera names costs a bounded map and
/// only evicts names that are themselves silent (a live camera is seen every frame).
#[derive(Debug)]
pub struct PerCamera<T> {
    cameras: std::sync::Mutex<Cameras<T>>,
}

#[derive(Debug)]
struct Cameras<T> {
    states: std::collections::BTreeMap<String, T>,
    /// When each camera was last updated, in updates (exact where clocks tie).
    seen: std::collections::HashMap<String, u64>,
    updates: u64,
    max: usize,
    forgotten: u64,
}

impl<T> Default for PerCamera<T> {
    fn default() -> Self {
        let cameras = Cameras {
            states: Default::default(),
            seen: Default::default(),
            updates: 0,
            max: DEFAULT_MAX_CAMERAS,
            forgotten: 0,
        };
        Self { cameras: std::sync::Mutex::new(cameras) }
    }
}

impl<T> PerCamera<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cameras<T>> {
        self.cameras.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps at most `max` cameras (at least one) from now on.
    pub fn set_max(&self, max: usize) {
        self.lock().max = max.max(1);
    }

    /// Cameras forgotten to stay within the maximum.
    pub fn forgotten(&self) -> u64 {
        self.lock().forgotten
    }

    /// Cameras kept now.
    pub fn len(&self) -> usize {
        self.lock().states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Changes one camera's state, starting it from `T::default()` the first time the camera is
    /// seen (forgetting the longest-silent one when the map is full). Called per frame, so a
    /// known camera costs no allocation.
    pub fn update<R>(&self, camera: &str, f: impl FnOnce(&mut T) -> R) -> R
    where
        T: Default,
    {
        let mut guard = self.lock();
        let map = &mut *guard;
        map.updates += 1;
        let now = map.updates;
        if let Some(state) = map.states.get_mut(camera) {
            if let Some(t) = map.seen.get_mut(camera) {
                *t = now;
            }
            return f(state);
        }
        while map.states.len() >= map.max {
            let Some(oldest) = map.seen.iter().min_by_key(|(_, t)| **t).map(|(c, _)| c.clone()) else { break };
            map.seen.remove(&oldest);
            map.states.remove(&oldest);
            map.forgotten += 1;
        }
        map.seen.insert(camera.to_string(), now);
        f(map.states.entry(camera.to_string()).or_default())
    }

    /// Reads one camera's state; `None` for a camera never seen.
    pub fn read<R>(&self, camera: &str, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.lock().states.get(camera).map(f)
    }

    /// Reads every camera's state at once, in camera order.
    pub fn read_all<R>(&self, f: impl FnOnce(&std::collections::BTreeMap<String, T>) -> R) -> R {
        f(&self.lock().states)
    }

    /// Every camera seen, in order.
    pub fn names(&self) -> Vec<String> {
        self.lock().states.keys().cloned().collect()
    }

    /// A copy of every camera's state.
    pub fn snapshot(&self) -> std::collections::BTreeMap<String, T>
    where
        T: Clone,
    {
        self.lock().states.clone()
    }
}

/// Readiness that needs the bus: not ready while NATS is disconnected, whatever the service's
/// own state says (`own`: `None` when ready, else why not).
pub fn ready_with_bus(
    client: async_nats::Client,
    own: impl Fn() -> Option<String> + Send + Sync + 'static,
) -> Arc<dyn Fn() -> Option<String> + Send + Sync> {
    Arc::new(move || if is_connected(&client) { own() } else { Some("not connected to NATS".to_string()) })
}

/// Whether the client is connected to NATS right now.
pub fn is_connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

/// 1 when the client is connected to NATS, else 0 (the Prometheus gauge).
pub fn nats_connected(client: &async_nats::Client) -> f64 {
    f64::from(u8::from(is_connected(client)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_help_type_and_escaped_labels() {
        let mut p = PromText::default();
        p.family("pump_frames_total", "counter", "Frames.").sample("pump_frames_total", &[("camera", "a\"b")], 3.0);
        let t = p.finish();
        assert!(t.contains("# TYPE pump_frames_total counter"));
        assert!(t.contains("pump_frames_total{camera=\"a\\\"b\"} 3"));
    }

    #[test]
    fn per_camera_state_starts_at_default_and_is_kept_per_camera() {
        let m = PerCamera::<u64>::default();
        assert_eq!(m.read("a", |n| *n), None);
        m.update("b", |n| *n += 2);
        assert_eq!(
            m.update("a", |n| {
                *n += 1;
                *n
            }),
            1
        );
        m.update("b", |n| *n += 3);
        assert_eq!(m.read("b", |n| *n), Some(5));
        assert_eq!(m.names(), ["a", "b"]);
        assert_eq!(m.read_all(|all| all.values().sum::<u64>()), 6);
        assert_eq!(m.snapshot().into_iter().collect::<Vec<_>>(), [("a".to_string(), 1), ("b".to_string(), 5)]);
    }

    #[test]
    fn a_flood_of_camera_names_forgets_the_longest_silent_and_keeps_the_live_one() {
        let m = PerCamera::<u64>::default();
        m.set_max(3);
        for i in 0..1000 {
            m.update("live", |n| *n += 1);
            m.update(&format!("flood{i}"), |n| *n += 1);
        }
        assert_eq!(m.len(), 3);
        assert_eq!(m.read("live", |n| *n), Some(1000), "the live camera kept its count");
        assert_eq!(m.names(), ["flood998", "flood999", "live"]);
        assert_eq!(m.forgotten(), 998);
    }

    #[test]
    fn stuck_only_while_work_waits_and_nothing_is_done() {
        let t0 = std::time::Instant::now();
        let at = |s: u64| t0 + std::time::Duration::from_secs(s);
        let mut p = Progress::new(std::time::Duration::from_secs(60));
        assert_eq!(p.stuck(0, true, at(0)), None);
        assert_eq!(p.stuck(5, true, at(59)), None, "done moved");
        assert_eq!(p.stuck(5, true, at(100)), None, "40 s since");
        assert!(p.stuck(5, true, at(119)).is_some_and(|w| w.contains("60 s")));
        assert_eq!(p.stuck(6, true, at(120)), None, "it moved again");
        // Nothing waiting: idle, not stuck, however long.
        assert_eq!(p.stuck(6, false, at(1000)), None);
        assert_eq!(p.stuck(6, true, at(1001)), None, "work came a second ago");
    }

    #[test]
    fn per_camera_state_survives_a_panic_while_it_was_held() {
        let m = std::sync::Arc::new(PerCamera::<u64>::default());
        let held = m.clone();
        let panicked = std::thread::spawn(move || held.update("a", |_| panic!("camera task died"))).join();
        assert!(panicked.is_err());
        m.update("a", |n| *n += 1);
        assert_eq!(m.read("a", |n| *n), Some(1));
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_at_inf() {
        static B: &[f64] = &[0.1, 1.0];
        let mut h = Histogram::new(B);
        for v in [0.05, 0.1, 0.5, 3.0] {
            h.observe(v);
        }
        let mut p = PromText::default();
        p.family("x_seconds", "histogram", "X.").histogram("x_seconds", &[("camera", "c")], &h);
        let t = p.finish();
        assert!(t.contains("x_seconds_bucket{camera=\"c\",le=\"0.1\"} 2\n"), "{t}");
        assert!(t.contains("x_seconds_bucket{camera=\"c\",le=\"1\"} 3\n"), "{t}");
        assert!(t.contains("x_seconds_bucket{camera=\"c\",le=\"+Inf\"} 4\n"), "{t}");
        assert!(t.contains("x_seconds_sum{camera=\"c\"} 3.65\n"), "{t}");
        assert!(t.contains("x_seconds_count{camera=\"c\"} 4\n"), "{t}");
    }
}
