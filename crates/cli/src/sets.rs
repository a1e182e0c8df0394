//! `pump sets`: reads `pump detect` lines, prints one JSON line per closed set, in the one form a
//! set has everywhere ([`pump_bus::json::set_json`]; docs/API.md): its times in seconds of the
//! clip, its reps, their times, depths and durations, the reps said partial, the signal counted
//! on, the exercise, the pose rate, pending and continued (closed at `--max-set-seconds` or
//! `--max-set-reps`, the next set goes on).

use std::io::{BufRead, BufReader, Write};

use anyhow::{bail, Context, Result};
use pump_pose::{BBox, Keypoint, Pose, NUM_KEYPOINTS};
use pump_sets::{ClosedSet, FrameInput, SetConfig, SetTracker};
use serde::Deserialize;

use crate::args::SetsArgs;

#[derive(Debug, Deserialize)]
struct InPose {
    #[serde(rename = "box")]
    bbox: [f32; 4],
    score: f32,
    keypoints: Vec<[f32; 3]>,
}

#[derive(Debug, Deserialize)]
struct InLine {
    #[serde(default)]
    source: Option<String>,
    frame: u64,
    #[serde(default)]
    ts: Option<f64>,
    shape: [u32; 2],
    poses: Vec<InPose>,
}

fn print_set(out: &mut impl Write, e: &ClosedSet) -> Result<()> {
    // Offline there is no wall clock: the set's times are the clip's.
    serde_json::to_writer(&mut *out, &pump_bus::json::set_json(&e.to_message(0)))?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

fn to_pose(p: &InPose, line_no: usize) -> Result<Pose> {
    if p.keypoints.len() != NUM_KEYPOINTS {
        bail!("line {line_no}: a pose has {} keypoints, expected {NUM_KEYPOINTS}", p.keypoints.len());
    }
    let mut keypoints = [Keypoint::default(); NUM_KEYPOINTS];
    for (k, [x, y, c]) in keypoints.iter_mut().zip(&p.keypoints) {
        *k = Keypoint { x: *x, y: *y, confidence: *c };
    }
    let [x1, y1, x2, y2] = p.bbox;
    Ok(Pose { bbox: BBox { x1, y1, x2, y2 }, score: p.score, keypoints })
}

/// Opens `pump detect` output: a file, or standard input for `-`.
pub fn open_input(path: &std::path::Path) -> Result<Box<dyn BufRead>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufReader::new(std::io::stdin().lock())));
    }
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Box::new(BufReader::new(f)))
}

/// Feeds every `pump detect` line to `tracker`, handing each closed set to `on_set`; the set in
/// progress at the end is closed too. Bad lines stop it with a message naming the line.
pub fn track(
    input: Box<dyn BufRead>,
    fps: Option<f64>,
    tracker: &mut SetTracker,
    mut on_set: impl FnMut(&ClosedSet) -> Result<()>,
) -> Result<()> {
    let (mut lines, mut people) = (0usize, 0usize);
    for (i, line) in input.lines().enumerate() {
        let line_no = i + 1;
        let line = line.with_context(|| format!("line {line_no}: cannot read"))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec: InLine = serde_json::from_str(&line).map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                anyhow::anyhow!("line {line_no}: not JSON: {e}")
            } else {
                anyhow::anyhow!("line {line_no}: not a `pump detect` line: {e}")
            }
        })?;
        let t = match (rec.ts, fps) {
            (_, Some(fps)) if fps > 0.0 => rec.frame as f64 / fps,
            (Some(ts), _) => ts,
            _ => bail!("line {line_no}: no `ts`; give --fps for lines without timestamps"),
        };
        let _ = rec.source;
        let poses = rec.poses.iter().map(|p| to_pose(p, line_no)).collect::<Result<Vec<_>>>()?;
        lines += 1;
        people += poses.len();
        let input =
            FrameInput { t, frame: rec.frame, width: rec.shape[1] as f32, height: rec.shape[0] as f32, poses: &poses };
        for e in tracker.push(input) {
            if let pump_sets::TrackerEvent::Closed(set) = e {
                on_set(&set)?;
            }
        }
    }
    if lines > 0 && people == 0 {
        bail!("no poses at all in {lines} frames: nobody to count reps for");
    }
    if let Some(set) = tracker.finish() {
        on_set(&set)?;
    }
    Ok(())
}

pub fn run(args: SetsArgs) -> Result<()> {
    let Some(path) = args.offline_input() else {
        let camera = args.input.as_ref().map(|p| p.to_string_lossy().to_string());
        if let Some(c) = &camera {
            // A name that looks like a file but is not one is a mistake, not a camera.
            if c.contains('/') || c.ends_with(".jsonl") || c.ends_with(".json") {
                bail!("{c}: no such file");
            }
        }
        let format = match (args.csv, args.client.json) {
            (true, _) => crate::client::SetFormat::Csv,
            (false, true) => crate::client::SetFormat::Json,
            (false, false) => crate::client::SetFormat::Text,
        };
        return crate::client::sets(&args.client, camera.as_deref(), args.follow, format);
    };
    if args.csv {
        bail!("--csv is for sets from the gateway (pump sets [CAMERA] --csv); offline sets are JSON lines");
    }
    let mut cfg = SetConfig {
        quiet: args.quiet_seconds,
        exercise: args.exercise.clone(),
        prototypes: Vec::new(),
        zone: args.zone,
        min_pose_rate: args.min_pose_rate,
        max_seconds: args.max_set_seconds,
        max_reps: args.max_set_reps,
        reps: pump_sets::RepConfig { smoothing: args.smoothing_seconds, ..Default::default() },
    };
    if let Some(why) = cfg.check() {
        bail!(why);
    }
    let input = open_input(path)?;
    cfg.prototypes = match &args.prototypes {
        Some(dir) => pump_features::load_prototypes(dir)?,
        None => pump_features::builtin_prototypes(),
    };
    let mut tracker = SetTracker::new(&args.camera, cfg);
    let mut out = std::io::stdout().lock();
    track(input, args.fps, &mut tracker, |set| print_set(&mut out, set))
}

/// `pump prototype`: records the first rep of the first set in a clip as a reference rep.
pub fn record_prototype(args: crate::args::PrototypeArgs) -> Result<()> {
    let input = open_input(&args.input)?;
    let cfg = SetConfig { exercise: Some(args.exercise.clone()), ..Default::default() };
    let mut tracker = SetTracker::new("prototype", cfg);
    let mut first: Option<ClosedSet> = None;
    track(input, args.fps, &mut tracker, |set| {
        if first.is_none() {
            first = Some(set.clone());
        }
        Ok(())
    })?;
    let set = first.context("no rep found in the clip: nothing to record")?;
    let proto = set.prototype(0, &args.exercise).context("the first rep has no frames")?;
    let json = proto.to_json();
    match &args.output {
        Some(path) => std::fs::write(path, json + "\n").with_context(|| format!("cannot write {}", path.display()))?,
        None => println!("{json}"),
    }
    eprintln!("recorded one {} rep ({} frames) from a set of {} reps", proto.exercise, proto.features.len(), set.reps);
    Ok(())
}
