//! `pump detect`: every frame of every source, in order, to one JSON line each.
//!
//! Three kinds of thread, so the model never waits for the decoder:
//! - a reader decodes each source in turn and pre-processes every frame into a pooled tensor;
//! - workers, each with its own engine (a session runs with `&mut`), take frames as they come;
//! - this thread puts results back in frame order and prints them.
//!
//! On a small machine, several single-threaded engines on alternate frames get more frames per
//! second than one engine spread over every core (no intra-op synchronisation), so that is the
//! default for videos; a single image gets one engine with every core, for latency.

use pump_pose::args::WorkerPlan;
use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};

use anyhow::{Context, Result};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use opencv::core::Mat;
use opencv::prelude::*;
use pump_capture::{FrameInfo, MediaSource};
use pump_pose::{EngineConfig, ImageView, InputTensor, Pose, PoseEngine, Preprocessor};

use crate::annotate::{SavePlan, Sink};
use crate::args::DetectArgs;
use crate::output::FrameLine;

const FFMPEG_OPTIONS: &str = "OPENCV_FFMPEG_CAPTURE_OPTIONS";

/// Frames prepared ahead of the workers: enough to hide decoder jitter, few enough to stay cheap.
const PREPARED_AHEAD: usize = 2;

/// Below this many frames in all, one engine with every core beats several (latency rules).
const FRAMES_FOR_PARALLEL_ENGINES: u64 = 8;

/// A frame ready for the model.
struct Prepared {
    source: usize,
    info: FrameInfo,
    height: usize,
    width: usize,
    tensor: InputTensor,
    /// The decoded frame, kept to be drawn on (`--save`).
    picture: Option<Mat>,
}

/// A frame's result, or the error that ended the run at that point of the sequence.
struct Done {
    source: usize,
    info: FrameInfo,
    height: usize,
    width: usize,
    poses: Vec<Pose>,
    picture: Option<Mat>,
}

/// Numbered so results can be put back in order; an error takes the place of the frame it hit.
type Job<T> = (u64, Result<T>);

pub fn run(args: DetectArgs) -> Result<()> {
    // OpenCV's FFmpeg backend reads its options from the environment when a video is opened;
    // set here, before any thread exists, and never over the user's own options.
    if args.decode_threads > 0 && std::env::var_os(FFMPEG_OPTIONS).is_none() {
        std::env::set_var(FFMPEG_OPTIONS, format!("threads;{}", args.decode_threads));
    }
    // Open every source first: a bad path fails before minutes of work on the ones before it.
    let sources = args.sources.iter().map(MediaSource::open).collect::<Result<Vec<_>, _>>()?;
    let save = SavePlan::new(args.save.as_deref(), args.save_dir.as_deref(), &sources)?;
    let sinks: Vec<Sink> = match &save {
        Some(plan) => sources.iter().enumerate().map(|(i, s)| Sink::new(plan.target(i), s)).collect(),
        None => Vec::new(),
    };
    let keep_pictures = save.is_some();
    let names: Vec<String> = args.sources.iter().map(|p| p.display().to_string()).collect();
    let frames: u64 = sources.iter().map(|s| s.frame_count().unwrap_or(u64::MAX / 2)).sum();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let plan = WorkerPlan::resolve(args.workers, args.model.threads, cores, frames < FRAMES_FOR_PARALLEL_ENGINES);
    let cfg = EngineConfig { threads: plan.threads, ..args.model.engine_config() };
    let engines = load_engines(&cfg, plan.workers)?;
    tracing::info!(workers = plan.workers, threads = plan.threads, "engines loaded");
    let preprocessor = engines[0].preprocessor();
    let progress = progress_bar(&sources, args.no_progress);
    let multi = sources.len() > 1;

    std::thread::scope(|scope| -> Result<()> {
        let (ready_tx, ready_rx) = bounded::<Job<Prepared>>(PREPARED_AHEAD);
        let (done_tx, done_rx) = bounded::<Job<Done>>(2 * plan.workers);
        // Workers hand tensors back here; the reader stops when every sender is gone.
        let (pool_tx, pool_rx) = unbounded::<InputTensor>();
        for _ in 0..PREPARED_AHEAD + 2 * plan.workers {
            let _ = pool_tx.send(InputTensor::default());
        }
        std::thread::Builder::new()
            .name("reader".into())
            .spawn_scoped(scope, move || read_and_prepare(sources, preprocessor, ready_tx, pool_rx, keep_pictures))?;
        for (i, engine) in engines.into_iter().enumerate() {
            let (ready, done, pool) = (ready_rx.clone(), done_tx.clone(), pool_tx.clone());
            std::thread::Builder::new()
                .name(format!("infer-{i}"))
                .spawn_scoped(scope, move || infer_worker(engine, ready, done, pool))?;
        }
        // Only the threads keep these alive now, so the run ends when they finish.
        drop((ready_rx, done_tx, pool_tx));

        let started = std::time::Instant::now();
        let result = write_in_order(&done_rx, multi, &names, &progress, sinks);
        // Dropping the receiver (on error or a closed pipe) makes every other thread stop.
        drop(done_rx);
        progress.finish_and_clear();
        let summary = result?;
        // The line the progress bar ends with (a terminal only: pipes and logs stay clean).
        if progress.length().is_some() && !progress.is_hidden() || !summary.saved.is_empty() {
            eprintln!("{}", summary.line(started.elapsed()));
        }
        Ok(())
    })
}

/// What a run did, for its last line.
#[derive(Debug, Default)]
struct Summary {
    frames: u64,
    people: u64,
    most: usize,
    saved: Vec<std::path::PathBuf>,
}

impl Summary {
    fn line(&self, took: std::time::Duration) -> String {
        let secs = took.as_secs_f64().max(1e-9);
        let mut s = format!(
            "pump detect: {} frames in {:.1} s ({:.1} fps), {:.1} people a frame (at most {})",
            self.frames,
            secs,
            self.frames as f64 / secs,
            self.people as f64 / self.frames.max(1) as f64,
            self.most
        );
        for p in &self.saved {
            s += &format!("; drawn on in {}", p.display());
        }
        s
    }
}

/// Loads the engines side by side (each load is a few hundred ms of graph optimisation).
fn load_engines(cfg: &EngineConfig, n: usize) -> Result<Vec<PoseEngine>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n).map(|_| s.spawn(|| PoseEngine::load(cfg))).collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r.context("cannot start the pose engine"),
                Err(_) => Err(anyhow::anyhow!("the pose engine panicked while loading")),
            })
            .collect()
    })
}

/// Prints results in frame order as they complete (drawing them into `sinks` when saving);
/// stops at the first error in that order.
fn write_in_order(
    done: &Receiver<Job<Done>>,
    multi: bool,
    names: &[String],
    progress: &ProgressBar,
    mut sinks: Vec<Sink>,
) -> Result<Summary> {
    let mut out = BufWriter::new(io::stdout().lock());
    let mut waiting: BTreeMap<u64, Result<Done>> = BTreeMap::new();
    let mut next = 0u64;
    let mut summary = Summary::default();
    for (seq, item) in done.iter() {
        waiting.insert(seq, item);
        while let Some(item) = waiting.remove(&next) {
            let d = item?;
            let source = multi.then(|| names[d.source].as_str());
            let line = FrameLine::new(source, d.info.index, d.info.ts, d.height, d.width, &d.poses);
            serde_json::to_writer(&mut out, &line)?;
            // A closed pipe (`pump detect … | head`) ends the run here; `main` calls that success.
            out.write_all(b"\n").and_then(|()| out.flush())?;
            if let (Some(sink), Some(mut picture)) = (sinks.get_mut(d.source), d.picture) {
                sink.write(&mut picture, &d.poses)?;
            }
            summary.frames += 1;
            summary.people += d.poses.len() as u64;
            summary.most = summary.most.max(d.poses.len());
            progress.inc(1);
            next += 1;
        }
    }
    anyhow::ensure!(waiting.is_empty(), "internal error: {} results were never printed", waiting.len());
    for sink in sinks {
        summary.saved.push(sink.finish()?);
    }
    Ok(summary)
}

/// Worker thread: runs the model on whatever frame comes next, until the reader is done.
fn infer_worker(
    mut engine: PoseEngine,
    ready: Receiver<Job<Prepared>>,
    done: Sender<Job<Done>>,
    pool: Sender<InputTensor>,
) {
    for (seq, item) in ready.iter() {
        let result = item.and_then(|p| {
            let out = engine.run_tensor(&p.tensor).context("inference failed");
            let _ = pool.send(p.tensor);
            let (mut poses, _) = out?;
            let poses = poses.remove(0);
            Ok(Done { source: p.source, info: p.info, height: p.height, width: p.width, poses, picture: p.picture })
        });
        if done.send((seq, result)).is_err() {
            return;
        }
    }
}

/// Reader thread: decodes each source in turn and pre-processes every frame into a pooled tensor.
/// Stops at the first error (sent on, in sequence) or when the workers hang up.
fn read_and_prepare(
    mut sources: Vec<MediaSource>,
    mut pre: Preprocessor,
    ready: Sender<Job<Prepared>>,
    pool: Receiver<InputTensor>,
    keep_pictures: bool,
) {
    let mut frame = Mat::default();
    let mut seq = 0u64;
    for (source, media) in sources.iter_mut().enumerate() {
        loop {
            let info = match media.read(&mut frame) {
                Ok(Some(info)) => info,
                Ok(None) => break,
                Err(e) => {
                    let _ = ready.send((seq, Err(e.into())));
                    return;
                }
            };
            let Ok(mut tensor) = pool.recv() else { return };
            let picture = if keep_pictures { frame.try_clone().ok() } else { None };
            let prepared = prepare(&frame, &mut pre, &mut tensor)
                .with_context(|| format!("{}: frame {}", media.path().display(), info.index))
                .map(|(height, width)| Prepared { source, info, height, width, tensor, picture });
            let failed = prepared.is_err();
            if ready.send((seq, prepared)).is_err() || failed {
                return;
            }
            seq += 1;
        }
    }
}

fn prepare(frame: &Mat, pre: &mut Preprocessor, tensor: &mut InputTensor) -> Result<(usize, usize)> {
    let (w, h) = (frame.cols() as usize, frame.rows() as usize);
    let step = frame.step1(0)? * frame.elem_size1();
    let view = ImageView::new(frame.data_bytes()?, w, h, step)?;
    pre.run(&[view], tensor)?;
    Ok((h, w))
}

fn progress_bar(sources: &[MediaSource], disabled: bool) -> ProgressBar {
    if disabled {
        return ProgressBar::hidden();
    }
    let total: u64 = sources.iter().map(|s| s.frame_count().unwrap_or(0)).sum();
    // indicatif draws nothing when stderr is not a terminal, so pipes and logs stay clean.
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} frames  {per_sec}  eta {eta}") {
        bar.set_style(style);
    }
    bar
}
