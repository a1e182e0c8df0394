//! `just bench` (replicas): do inference replicas add up? Live cameras (fake, 15 fps: camera
//! timing only) into pump-inference replicas sharing the frames through the queue group, each
//! held to a rate (`--min-inference-ms`, as a slow or fast host; the predictor's own delay is a
//! named fake), into one pump-sets with its default reorder window, all in process on a real
//! nats-server. Per scenario: the poses a second pump-sets took per camera, the share it
//! discarded as out of order, and per camera the poses the replicas gave it (least and most
//! against the mean). Not a test: nothing asserts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that fails should fail loudly

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use prost::Message;
use pump_proto::PoseFrame;
use pump_tests::services::{client, slow, start_fake_live_camera, start_infer, start_sets, stop_task};
use pump_tests::NatsServer;

const WARM_UP: Duration = Duration::from_secs(3);
const MEASURE: Duration = Duration::from_secs(20);

struct Row {
    taken_per_camera: f64,
    discarded: f64,
    least: f64,
    most: f64,
}

async fn scenario(cameras: usize, replica_rates: &[f64], intake: pump_infer::config::Intake) -> Row {
    let nats = NatsServer::start();
    let (task, shutdown, stats) = start_sets(&nats, client(&nats, "sets").await);
    while !stats.ready.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut replicas = Vec::new();
    for rate in replica_rates {
        let min = Duration::from_secs_f64(1.0 / rate);
        replicas.push(
            start_infer(&nats, slow(5), |c| {
                c.min_inference = min;
                c.intake = intake;
            })
            .await,
        );
    }
    // What the replicas gave each camera, as the bus carries it.
    let given: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let mut sub = client(&nats, "count").await.subscribe("pump.poses.>").await.unwrap();
    let counter = {
        let given = given.clone();
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                if let Ok(pf) = PoseFrame::decode(m.payload) {
                    *given.lock().unwrap().entry(pf.camera).or_default() += 1;
                }
            }
        })
    };
    let mut captures = Vec::new();
    for i in 0..cameras {
        captures.push(start_fake_live_camera(&nats, &format!("cam{i}"), 15.0).await);
    }
    tokio::time::sleep(WARM_UP).await;
    let snap = || {
        (stats.poses.load(Ordering::Relaxed), stats.out_of_order.load(Ordering::Relaxed), given.lock().unwrap().clone())
    };
    let (poses0, ooo0, given0) = snap();
    tokio::time::sleep(MEASURE).await;
    let (poses1, ooo1, given1) = snap();
    let s = MEASURE.as_secs_f64();
    let (taken, discarded) = ((poses1 - poses0) as f64, (ooo1 - ooo0) as f64);
    let per_camera: Vec<f64> =
        given1.iter().map(|(c, n)| (n - given0.get(c).copied().unwrap_or(0)) as f64 / s).collect();
    let mean = per_camera.iter().sum::<f64>() / per_camera.len().max(1) as f64;
    let row = Row {
        taken_per_camera: taken / s / cameras as f64,
        discarded: if taken + discarded > 0.0 { discarded / (taken + discarded) } else { 0.0 },
        least: per_camera.iter().copied().fold(f64::INFINITY, f64::min) / mean - 1.0,
        most: per_camera.iter().copied().fold(0.0, f64::max) / mean - 1.0,
    };
    for c in captures {
        c.stop().await;
    }
    for r in replicas {
        r.stop().await;
    }
    counter.abort();
    stop_task(&shutdown, task).await;
    row
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("### Inference replicas adding up (pump-sets' 500-ms reorder window, one run each)");
    println!();
    println!("| intake | cameras (15 fps) | replicas held to | poses taken a second, per camera | discarded out of order | cameras' share, least / most against the mean |");
    println!("|---|---|---|---|---|---|");
    use pump_infer::config::Intake;
    for intake in [Intake::Queue, Intake::Pull] {
        for (cameras, rates) in [(1, vec![4.0, 4.0]), (1, vec![4.0, 12.0]), (8, vec![12.0, 12.0, 12.0])] {
            row(intake, cameras, &rates).await;
        }
    }
}

async fn row(intake: pump_infer::config::Intake, cameras: usize, rates: &[f64]) {
    let row = scenario(cameras, rates, intake).await;
    let held: Vec<String> = rates.iter().map(|r| format!("{r}/s")).collect();
    println!(
        "| {} | {cameras} | {} | {:.1} | {:.1} % | {:+.0} % / {:+.0} % |",
        format!("{intake:?}").to_lowercase(),
        held.join(" + "),
        row.taken_per_camera,
        row.discarded * 100.0,
        row.least * 100.0,
        row.most * 100.0
    );
}
