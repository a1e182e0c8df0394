//! `just bench` (sets load): can one pump-sets count a large gym? A synthetic publisher puts the
//! PoseFrames of `--cameras` cameras (200) at `--rate` poses a second each (5, what newest-wins
//! inference gives a busy camera) on a real nats-server for `--seconds` (60): every camera's
//! athlete does sets of five 2-s squats with 6 s standing between them (`--quiet-seconds 4`
//! closes each). Prints pump-sets' CPU (cores) and peak memory, the pose→rep latency (from the
//! publish of a rep's last pose — where its live trace ends — to its live count on
//! `pump.reps.<camera>`, p50 and p99; `--reorder-ms` as pump-sets'), the live reps and the sets of five stored against what
//! was done, and whether it kept up (the consumer's backlog at the end). Not a test: nothing
//! asserts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that fails should fail loudly

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use prost::Message;
use pump_bus::streams::{POSES_STREAM, SETS_STREAM};
use pump_proto::{RepProgress, SetEvent};
use pump_tests::bodies::{knee_in_squats, squatting_pose_frame};
use pump_tests::gym::{cpu_seconds, quantile};
use pump_tests::procs::{free_addr, wait_ready, Service};
use pump_tests::services::client;
use pump_tests::NatsServer;

/// One loop of a camera's athlete: standing 1 s, five 2-s reps, standing 6 s.
const LEAD: f64 = 1.0;
const REPS: u32 = 5;
const SECONDS_PER_REP: f64 = 2.0;
const LOOP: f64 = LEAD + REPS as f64 * SECONDS_PER_REP + 6.0;

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kib.unwrap_or(0.0) / 1024.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cameras = arg("--cameras", 200.0) as usize;
    let rate = arg("--rate", 5.0);
    let seconds = arg("--seconds", 60.0);
    let nats = NatsServer::start();
    let logs = tempfile::tempdir().unwrap();
    let http = free_addr();
    // pump-sets' default reorder window (500 ms of a camera's time, for replicas of unequal
    // speed) holds each pose that long before it counts: `--reorder-ms 0` shows what is left.
    let reorder = (arg("--reorder-ms", 500.0) as u64).to_string();
    let sets = Service::start(
        "pump-sets",
        &["--quiet-seconds", "4", "--reorder-ms", &reorder],
        &[("PUMP_NATS_URL", nats.url()), ("PUMP_HTTP_ADDR", http.to_string()), ("PUMP_LOG", "warn".into())],
        logs.path(),
    );
    wait_ready(&sets, http).await;
    let c = client(&nats, "load").await;

    // When each camera's frame k was published, for the latency of the rep it completed.
    let published: Arc<Mutex<Vec<Vec<Instant>>>> = Arc::new(Mutex::new(vec![Vec::new(); cameras]));
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::new()));
    let live_reps = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut reps_sub = c.subscribe("pump.reps.>").await.unwrap();
    let listener = {
        let (published, latencies, live_reps) = (published.clone(), latencies.clone(), live_reps.clone());
        tokio::spawn(async move {
            while let Some(m) = reps_sub.next().await {
                let at = Instant::now();
                let Ok(r) = RepProgress::decode(m.payload) else { continue };
                let Some(cam) = r.camera.strip_prefix("cam").and_then(|n| n.parse::<usize>().ok()) else { continue };
                live_reps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // The live trace ends at the rep's last pose.
                let Some(last) = r.trace_t_s.last() else { continue };
                let k = (last * rate).round() as usize;
                if let Some(sent) = published.lock().unwrap()[cam].get(k) {
                    latencies.lock().unwrap().push(at.duration_since(*sent).as_secs_f64());
                }
            }
        })
    };

    let (cpu0, t0) = (cpu_seconds(sets.pid()), Instant::now());
    let mut next = vec![0u64; cameras];
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut sent = 0u64;
    while t0.elapsed().as_secs_f64() < seconds {
        tick.tick().await;
        let now = t0.elapsed().as_secs_f64();
        for (cam, k) in next.iter_mut().enumerate() {
            // Cameras spread over one pose interval, as unsynchronised cameras are.
            let offset = cam as f64 / cameras as f64 / rate;
            while offset + *k as f64 / rate <= now {
                let t = *k as f64 / rate;
                let knee = knee_in_squats(t % LOOP - LEAD, REPS, SECONDS_PER_REP);
                let pf = squatting_pose_frame(&format!("cam{cam:03}"), *k, t, knee);
                c.publish(format!("pump.poses.cam{cam:03}"), pf.encode_to_vec().into()).await.unwrap();
                published.lock().unwrap()[cam].push(Instant::now());
                *k += 1;
                sent += 1;
            }
        }
    }
    c.flush().await.unwrap();
    let elapsed = t0.elapsed().as_secs_f64();
    let cores = (cpu_seconds(sets.pid()) - cpu0) / elapsed;
    // What was left to count when the publisher stopped, then a moment to drain it.
    let js = async_nats::jetstream::new(c.clone());
    let pending = |js: async_nats::jetstream::Context| async move {
        let stream = js.get_stream(POSES_STREAM).await.unwrap();
        let mut consumers = stream.consumers();
        let mut n = 0;
        while let Some(Ok(info)) = consumers.next().await {
            n += info.num_pending + info.num_ack_pending as u64;
        }
        n
    };
    let backlog = pending(js.clone()).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let peak = peak_rss_mib(sets.pid());
    listener.abort();

    // What was done: every rep back to standing before a camera's last pose, and each whole
    // loop a set of five.
    let done_by = |t_end: f64| -> (usize, usize) {
        let loops = (t_end / LOOP).floor();
        let in_last = ((t_end - loops * LOOP - LEAD) / SECONDS_PER_REP).floor().clamp(0.0, REPS as f64);
        // A loop's set is done at its fifth return; the quiet (or the silence after the last pose)
        // closes it.
        let first_done = LEAD + REPS as f64 * SECONDS_PER_REP;
        let sets = if t_end < first_done { 0 } else { ((t_end - first_done) / LOOP).floor() as usize + 1 };
        (loops as usize * REPS as usize + in_last as usize, sets)
    };
    let (mut reps_done, mut sets_done) = (0, 0);
    for k in &next {
        // Up to the pose that was due next: a rep nearly back is counted on the last one sent.
        let (r, s) = done_by(*k as f64 / rate);
        reps_done += r;
        sets_done += s;
    }
    let mut stream = js.get_stream(SETS_STREAM).await.unwrap();
    let stored = stream.info().await.unwrap().state.messages;
    let mut five = 0;
    for seq in 1..=stored {
        if let Ok(m) = stream.get_raw_message(seq).await {
            five += usize::from(SetEvent::decode(m.payload).is_ok_and(|s| s.reps == REPS));
        }
    }
    let lat = latencies.lock().unwrap().clone();
    println!("### pump-sets under load ({cameras} cameras × {rate} poses/s for {seconds} s, --reorder-ms {reorder}, one run)");
    println!();
    println!("| poses | pump-sets CPU | peak memory | pose→rep p50 | p99 | live reps | sets of 5 stored | backlog at the end |");
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {:.0}/s | {cores:.2} cores | {peak:.0} MiB | {:.0} ms | {:.0} ms | {} of {reps_done} | {five} of {sets_done} | {backlog} poses |",
        sent as f64 / elapsed,
        quantile(&lat, 0.5) * 1000.0,
        quantile(&lat, 0.99) * 1000.0,
        live_reps.load(std::sync::atomic::Ordering::Relaxed),
    );
    sets.stop().await;
}
