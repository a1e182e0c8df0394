//! `just bench`: pump against Ultralytics, measured side by side in one run on this machine.
//!
//! - per image, latency: ms for one frame split into decode / pre-process / inference /
//!   post-process (median of N runs after warm-up), against Ultralytics' `predict()` on the file;
//! - per image, stream: ms per frame when the same image comes N times (a folder of photos),
//!   the real `pump detect` binary against Ultralytics' streaming predictor;
//! - per video: steady-state fps of the real `pump detect` (first line to last) against
//!   Ultralytics' streaming predictor timed the same way, alternating runs to even out noise.
//!
//! Set `PUMP_BENCH_PYTHON` to a Python with `ultralytics` (`just bench` makes one in
//! `.cache/bench-venv`); without it only pump's side is printed. Not a test: nothing asserts.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use opencv::core::{Mat, Vector};
use opencv::imgcodecs;
use opencv::prelude::*;
use pump_pose::{EngineConfig, ImageView, PoseEngine};
use serde_json::Value;

const REPS: usize = 30;
const VIDEO_ROUNDS: usize = 4;

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn fmt_opt(v: Option<f64>, suffix: &str) -> String {
    v.map(|v| format!("{v:.2}{suffix}")).unwrap_or_else(|| "-".into())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mut video = PathBuf::from("/usr/share/doc/opencv-doc/examples/data/vtest.avi");
    let mut images = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--video" {
            video = it.next().map(PathBuf::from).ok_or_else(|| anyhow::anyhow!("--video needs a path"))?;
        } else {
            images.push(PathBuf::from(a));
        }
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("pump bench: {cores} cores, {}", std::env::consts::ARCH);
    let python = std::env::var_os("PUMP_BENCH_PYTHON");
    if python.is_none() {
        println!("(PUMP_BENCH_PYTHON unset: Ultralytics' side is not measured)");
    }

    let mut args: Vec<OsString> = vec!["images".into(), REPS.to_string().into()];
    args.extend(images.iter().map(|p| p.clone().into_os_string()));
    let reference = python.as_ref().and_then(|py| ultralytics(py, &args));

    let mut engine = PoseEngine::load(&EngineConfig::default())?;
    println!("\nper image, latency: ms for one frame (median of {REPS} after 3 warm-up runs)");
    println!(
        "{:<12} {:>7} {:>7} {:>7} {:>7} {:>8} | {:>11} {:>6}",
        "image", "decode", "pre", "model", "post", "pump", "ultralytics", "ratio"
    );
    let mut streams = Vec::new();
    for img in &images {
        let bytes = Vector::<u8>::from_slice(&std::fs::read(img)?);
        let (mut dec, mut pre, mut model, mut post, mut total) = (vec![], vec![], vec![], vec![], vec![]);
        for i in 0..REPS + 3 {
            let t0 = Instant::now();
            let mat: Mat = imgcodecs::imdecode(&bytes, imgcodecs::IMREAD_COLOR)?;
            let t_dec = t0.elapsed();
            let view = ImageView::new(mat.data_bytes()?, mat.cols() as usize, mat.rows() as usize, mat.step1(0)?)?;
            let (_, t) = engine.detect(&view)?;
            let t_total = t0.elapsed();
            if i >= 3 {
                dec.push(t_dec);
                pre.push(t.pre);
                model.push(t.model);
                post.push(t.post);
                total.push(t_total);
            }
        }
        let name = img.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let ours = median(total);
        let key = img.to_string_lossy();
        let theirs = reference.as_ref().and_then(|r| r[key.as_ref()]["median_ms"].as_f64());
        println!(
            "{:<12} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>8.2} | {:>11} {:>6}",
            name,
            median(dec),
            median(pre),
            median(model),
            median(post),
            ours,
            fmt_opt(theirs, ""),
            fmt_opt(theirs.map(|t| t / ours), "x"),
        );
        streams.push((name, img.clone(), reference.as_ref().and_then(|r| r[key.as_ref()]["stream_ms"].as_f64())));
    }
    drop(engine);

    println!("\nper image, stream: ms per frame for {} copies through `pump detect`", REPS + 1);
    println!("{:<12} {:>8} | {:>11} {:>6}", "image", "pump", "ultralytics", "ratio");
    for (name, img, theirs) in streams {
        let copies = vec![img.as_path(); REPS + 1];
        let (_, fps) = pump_stream_fps(&copies)?;
        let ours = 1e3 / fps;
        println!(
            "{:<12} {:>8.2} | {:>11} {:>6}",
            name,
            ours,
            fmt_opt(theirs, ""),
            fmt_opt(theirs.map(|t| t / ours), "x")
        );
    }

    println!("\nvideo {} (steady state, first frame to last; {VIDEO_ROUNDS} alternating rounds)", video.display());
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 1..=VIDEO_ROUNDS {
        if let Some(py) = &python {
            if let Some(fps) =
                ultralytics(py, &["video".into(), video.clone().into_os_string()]).and_then(|r| r["fps"].as_f64())
            {
                println!("  round {round}: ultralytics {fps:.1} fps");
                theirs.push(fps);
            }
        }
        let (frames, fps) = pump_stream_fps(&[video.as_path()])?;
        println!("  round {round}: pump detect {fps:.1} fps ({frames} frames)");
        ours.push(fps);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    print!("pump {:.1} fps", mean(&ours));
    if theirs.is_empty() {
        println!();
    } else {
        println!(", ultralytics {:.1} fps → pump is {:.2}x Ultralytics", mean(&theirs), mean(&ours) / mean(&theirs));
    }
    Ok(())
}

/// Runs the release `pump detect` on `sources` and times its output lines, first to last.
fn pump_stream_fps(sources: &[&Path]) -> anyhow::Result<(usize, f64)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pump"))
        .args(["detect", "--no-progress"])
        .args(sources)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut stamps = Vec::new();
    for line in BufReader::new(stdout).lines() {
        line?;
        stamps.push(Instant::now());
    }
    let status = child.wait()?;
    anyhow::ensure!(status.success() && stamps.len() > 1, "pump detect failed on {sources:?}");
    let span = (stamps[stamps.len() - 1] - stamps[0]).as_secs_f64();
    Ok((stamps.len(), (stamps.len() - 1) as f64 / span))
}

/// Runs the Ultralytics reference script; `None` (with a note) when it fails.
fn ultralytics(python: &OsString, args: &[OsString]) -> Option<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/bench/ultralytics_ref.py");
    let out = Command::new(python)
        .arg(script)
        .arg(EngineConfig::default().model)
        .args(args)
        .env("YOLO_OFFLINE", "1")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    // Ultralytics logs to stdout too; the result is the last line.
    let text = String::from_utf8_lossy(&out.stdout);
    let parsed = text.lines().rev().find_map(|l| serde_json::from_str(l).ok());
    if parsed.is_none() {
        eprintln!("ultralytics reference failed ({}); printing pump's side only", out.status);
    }
    parsed
}
