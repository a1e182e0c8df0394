//! `just bench`: how many live 15 fps cameras one machine serves with exact sets — pump's
//! headline number. For N cameras (half ffmpeg HTTP MJPEG cameras, half files replayed in real
//! time, each the squat clip of 5 reps) through the release binaries: each camera's pose rate,
//! whether every camera's set has exactly 5 reps, and how many sets are pending (pose rate under
//! the floor: counted, but not trusted). Not a test: nothing asserts.
//!
//! `cargo bench -p pump-tests --bench cameras -- [N …] [--infer "ARGS"]` (after `cargo build --release`).

use std::time::Duration;

use pump_tests::gym::live_cameras;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mut counts: Vec<usize> = Vec::new();
    let mut infer: Vec<String> = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--infer" {
            infer = it.next().unwrap_or_default().split_whitespace().map(String::from).collect();
        } else if let Ok(n) = a.parse() {
            counts.push(n);
        }
    }
    if counts.is_empty() {
        counts = vec![2, 4, 6, 8, 10];
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("cameras bench: {cores} cores, pump-infer {infer:?}, floor {} poses/s", pump_sets::DEFAULT_MIN_POSE_RATE);
    println!("| cameras | poses/s per camera (min–max) | total poses/s | sets exact | pending |");
    println!("|---|---|---|---|---|");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut served = 0;
    for n in counts {
        let infer_args: Vec<&str> = infer.iter().map(String::as_str).collect();
        let run = rt.block_on(live_cameras(n - n / 2, n / 2, &infer_args, Duration::from_secs(180)));
        let sets: Vec<&pump_proto::SetEvent> = run.sets.values().flatten().collect();
        let rates: Vec<f64> = sets.iter().map(|s| s.pose_rate).collect();
        let (lo, hi) = rates.iter().fold((f64::MAX, 0.0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        let exact = run.sets.len() == n && run.sets.values().all(|s| s.len() == 1 && s[0].reps == 5);
        let pending = sets.iter().filter(|s| s.pending).count();
        if exact && pending == 0 {
            served = n;
        }
        println!(
            "| {n} | {lo:.1}–{hi:.1} | {:.1} | {} | {pending} of {} |",
            rates.iter().sum::<f64>(),
            if exact { "yes" } else { "no" },
            sets.len()
        );
    }
    println!("\none machine serves {served} live 15 fps cameras with exact, trusted sets");
}
