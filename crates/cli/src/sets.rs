//! `pump sets`: reads `pump detect` lines, prints one JSON line per closed set:
//! `{"type":"set","set_id":…,"camera":…,"start":s,"end":s,"start_frame":i,"end_frame":j,
//!   "reps":N,"rep_times":[…],"partial_reps":[…],"counted_on":signal,"exercise":…,"confidence":c,"frames":T,"pose_rate":r,"longest_gap":s,"pending":b,
//!   "continued":b}` (`continued`: closed at `--max-set-seconds`/`--max-set-reps`, the next set goes on).

use std::io::{BufRead, BufReader, Write};

use anyhow::{bail, Context, Result};
use pump_pose::{BBox, Keypoint, Pose, NUM_KEYPOINTS};
use pump_sets::{ClosedSet, FrameInput, SetConfig, SetTracker};
use serde::{Deserialize, Serialize};

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

#[derive(Debug, Serialize)]
struct OutSet<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    set_id: &'a str,
    camera: &'a str,
    start: f64,
    end: f64,
    start_frame: u64,
    end_frame: u64,
    reps: usize,
    rep_times: Vec<f64>,
    partial_reps: Vec<f64>,
    counted_on: &'a str,
    exercise: &'a str,
    confidence: f64,
    frames: usize,
    pose_rate: f64,
    longest_gap: f64,
    pending: bool,
    continued: bool,
}

fn r3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn print_set(out: &mut impl Write, e: &ClosedSet) -> Result<()> {
    let line = OutSet {
        kind: "set",
        set_id: &e.set_id,
        camera: &e.camera,
        start: r3(e.start),
        end: r3(e.end),
        start_frame: e.start_frame,
        end_frame: e.end_frame,
        reps: e.reps,
        rep_times: e.rep_times.iter().map(|t| r3(*t)).collect(),
        partial_reps: e.partial_reps.iter().map(|t| r3(*t)).collect(),
        counted_on: e.signal.name(),
        exercise: e.exercise_name(),
        confidence: r3(e.confidence as f64),
        frames: e.features.len(),
        pose_rate: r3(e.pose_rate),
        longest_gap: r3(e.longest_gap),
        pending: e.pending,
        continued: e.continued,
    };
    serde_json::to_writer(&mut *out, &line)?;
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
