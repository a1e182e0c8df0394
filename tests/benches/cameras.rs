//! `just bench`: how many live 15 fps cameras one machine serves with exact sets — pump's
//! headline number — and how close pump-infer comes to the model's limit on this machine. For N
//! network cameras (the squat clip of 5 reps served as HTTP MJPEG, JPEGs made once by ffmpeg, as
//! a camera's own chip does, and sent from a thread of the bench; with `--files`, half of them
//! files replayed in real time instead, which capture decodes and sends raw) through the release
//! binaries: the total and per-camera pose rates (over the span every camera was live), that
//! total against what `pump detect` does on the same frames just before and just after the row
//! (the limit), frame age while every camera was live, drops, the CPU each process took, and
//! whether every camera's set has exactly 5 reps and none is pending (pose rate under the
//! floor). Not a test: nothing asserts.
//!
//! `cargo bench -p pump-tests --bench cameras -- [N …] [--files] [--infer "ARGS"]` (after `cargo
//! build --release`). `--imgsz` and `--model` among the ARGS are given to `pump detect` too.

use std::time::Duration;

use pump_tests::gym::{detect_limit, live_cameras, quantile};

const CAMERA_FPS: f64 = 15.0;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mut counts: Vec<usize> = Vec::new();
    let mut infer: Vec<String> = Vec::new();
    let mut files = false;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--files" {
            files = true;
        } else if a == "--infer" {
            infer = it.next().unwrap_or_default().split_whitespace().map(String::from).collect();
        } else if let Ok(n) = a.parse() {
            counts.push(n);
        }
    }
    if counts.is_empty() {
        counts = vec![2, 3, 4, 6, 8];
    }
    let engine_args: Vec<String> =
        infer.windows(2).filter(|w| w[0] == "--imgsz" || w[0] == "--model").flat_map(|w| w.iter().cloned()).collect();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    // The limit is measured before and after each row and the row compared with their mean: on
    // a shared machine it moved by 15 % between runs minutes apart.
    let mut before = detect_limit(&engine_args);
    println!(
        "cameras bench: {cores} cores, {}, pump-infer {infer:?}; limit: pump detect {engine_args:?} on the clip's \
         frames, measured before and after each row; floor {} poses/s",
        if files { "half the cameras HTTP MJPEG, half files in real time" } else { "HTTP MJPEG cameras" },
        pump_sets::DEFAULT_MIN_POSE_RATE
    );
    println!(
        "| cameras | poses/s | per camera min–max (spread) | limit fps (before, after) | % of limit | per infer core (% of detect's) | age p50 / p99 ms (bound) | model ms p50 | \
         dropped | sets exact | pending | CPU cores: infer, capture, nats, cameras, sets |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut served = 0;
    for n in counts {
        let infer_args: Vec<&str> = infer.iter().map(String::as_str).collect();
        let file_cameras = if files { n / 2 } else { 0 };
        let run = rt.block_on(live_cameras(n - file_cameras, file_cameras, &infer_args, Duration::from_secs(180)));
        let after = detect_limit(&engine_args);
        let (limit, per_core) = ((before.0 + after.0) / 2.0, (before.1 + after.1) / 2.0);
        let rates = run.pose_rates();
        let total: f64 = rates.values().sum();
        let (lo, hi) = rates.values().fold((f64::MAX, 0.0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        let spread = if total > 0.0 { (hi - lo) / (total / rates.len() as f64) * 100.0 } else { 0.0 };
        let reachable = limit.min(CAMERA_FPS * n as f64);
        let ages = run.steady_ages();
        let model: Vec<f64> = run.poses.values().flat_map(|c| c.model_ms.iter().copied()).collect();
        let model_p50 = quantile(&model, 0.5);
        let bound = 2.0 * model_p50 + 1e3 / CAMERA_FPS;
        let (received, dropped) = run.poses.values().fold((0, 0), |(r, d), c| (r + c.received, d + c.dropped));
        let sets: Vec<&pump_proto::SetEvent> = run.sets.values().flatten().collect();
        let exact = run.sets.len() == n && run.sets.values().all(|s| s.len() == 1 && s[0].reps == 5);
        let pending = sets.iter().filter(|s| s.pending).count();
        if exact && pending == 0 {
            served = n;
        }
        let cores_used = run.cores();
        let used = |p: &str| cores_used.iter().find(|(n, _)| *n == p).map(|(_, c)| *c).unwrap_or(0.0);
        let cpu: Vec<String> = ["pump-infer", "pump-capture", "nats-server", "cameras", "pump-sets"]
            .iter()
            .map(|p| format!("{:.2}", used(p)))
            .collect();
        let infer_per_core = total / used("pump-infer").max(1e-9);
        println!(
            "| {n} | {total:.1} | {lo:.1}–{hi:.1} ({spread:.0} %) | {limit:.1} ({:.1}, {:.1}) | {:.0} % | {infer_per_core:.1} ({:.0} %) | {:.0} / {:.0} ({bound:.0}) | {model_p50:.1} | \
             {:.0} % | {} | {pending} of {} | {} |",
            before.0,
            after.0,
            100.0 * total / reachable,
            100.0 * infer_per_core / per_core,
            quantile(&ages, 0.5),
            quantile(&ages, 0.99),
            100.0 * dropped as f64 / received.max(1) as f64,
            if exact { "yes" } else { "no" },
            sets.len(),
            cpu.join(", ")
        );
        before = after;
    }
    println!("\none machine serves {served} live 15 fps cameras with exact, trusted sets");
}
