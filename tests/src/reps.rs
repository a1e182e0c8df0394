//! The rep tests' clips (testdata/clips: faster and slower reps, 25 and 30 fps, two sets with a
//! rest, bystanders, a dim and a blurred gym) with their true sets, and the pose rates a busy
//! machine delivers: every k-th pose, and newest-wins schedules with a jittery model. Shared by
//! the rate tests and the fast-mode benchmark, which judges each model input size by them.
#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{bin, json_lines, run_with_input, testdata};

/// A clip, its true sets and the poses `pump detect` gave for it.
#[derive(Debug, Clone)]
pub struct Clip {
    pub name: String,
    pub sets: Vec<u64>,
    pub quiet: f64,
    /// The exercise `pump sets --exercise` is told (the clips of one folder of squats: `squat`).
    pub exercise: Option<String>,
    pub lines: Vec<serde_json::Value>,
}

/// Every clip with the poses in `clips/<stem>.<poses>.jsonl` (`poses`: the committed `poses`
/// at 640, `poses384` and `poses320` for the fast mode).
pub fn clips(poses: &str) -> Vec<Clip> {
    clips_with(|name| {
        let file = testdata(&format!("clips/{}", name.replace(".mp4", &format!(".{poses}.jsonl"))));
        json_lines(&std::fs::read_to_string(file).unwrap())
    })
}

/// Every clip, with the poses `lines` gives for its file name.
pub fn clips_with(mut lines: impl FnMut(&str) -> Vec<serde_json::Value>) -> Vec<Clip> {
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(testdata("clips/truth.json")).unwrap()).unwrap();
    truth["clips"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, t)| Clip {
            name: name.clone(),
            sets: t["sets"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap()).collect(),
            quiet: t["quiet_seconds"].as_f64().unwrap(),
            exercise: Some("squat".into()),
            lines: lines(name),
        })
        .collect()
}

/// The quiet time of clips whose truth names none: `pump sets`' default.
pub const DEFAULT_QUIET_SECONDS: f64 = 25.0;

/// Every clip of a folder whose `VIDEO.truth.json` files give the true sets (`sets`, and
/// `exercise`, `fps`, `quiet_seconds` where known), with the poses beside it: `VIDEO.ultralytics.jsonl`
/// (Ultralytics' own, timed by `fps`) or the file its `poses` field names (`pump detect` lines).
/// `../shared/real/` is such a folder, and `testdata/people/`. In name order; a truth file
/// without poses is left out.
pub fn truth_folder(dir: &Path) -> Vec<Clip> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".truth.json"))
        .collect();
    paths.sort();
    paths.iter().filter_map(|p| truth_clip(p)).collect()
}

fn truth_clip(path: &Path) -> Option<Clip> {
    let t: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let video = path.to_string_lossy().trim_end_matches(".truth.json").to_string();
    let fps = t["fps"].as_f64();
    let (poses, timed_by_fps) = match t["poses"].as_str() {
        Some(name) => (path.with_file_name(name), false),
        None => (PathBuf::from(format!("{video}.ultralytics.jsonl")), true),
    };
    let mut lines = json_lines(&std::fs::read_to_string(&poses).ok()?);
    if timed_by_fps {
        let fps = fps.unwrap_or_else(|| panic!("{}: Ultralytics' poses need the truth's fps", path.display()));
        for l in lines.iter_mut() {
            let t = l["frame"].as_f64().unwrap() / fps;
            l["ts"] = ((t * 1e6).round() / 1e6).into();
        }
    }
    // The truth's names that pump spells otherwise.
    let exercise = t["exercise"].as_str().map(|e| match e {
        "bicep_curl" => "curl".to_string(),
        other => other.to_string(),
    });
    Some(Clip {
        name: Path::new(&video).file_name()?.to_string_lossy().to_string(),
        sets: t["sets"].as_array()?.iter().map(|s| s.as_u64().unwrap()).collect(),
        quiet: t["quiet_seconds"].as_f64().unwrap_or(DEFAULT_QUIET_SECONDS),
        exercise,
        lines,
    })
}

/// The real videos of real people beside the checkout (`../shared/real/`), or `None` with one
/// line saying why the caller skips them.
pub fn real_videos() -> Option<Vec<Clip>> {
    let dir = crate::workspace().join("../shared/real");
    if !dir.is_dir() {
        eprintln!("skipped: no real videos at {} (../shared is absent)", dir.display());
        return None;
    }
    Some(truth_folder(&dir))
}

/// `pump sets --exercise squat` on these pose lines: the sets it prints.
pub fn sets(lines: &[&serde_json::Value], quiet: f64) -> Vec<serde_json::Value> {
    sets_as(lines, Some("squat"), quiet)
}

/// `pump sets [--exercise E]` on these pose lines: the sets it prints.
pub fn sets_as(lines: &[&serde_json::Value], exercise: Option<&str>, quiet: f64) -> Vec<serde_json::Value> {
    let told: Vec<&str> = exercise.map(|e| vec!["--exercise", e]).unwrap_or_default();
    sets_with(lines, &told, quiet)
}

/// `pump sets ARGS` on these pose lines: the sets it prints.
pub fn sets_with(lines: &[&serde_json::Value], args: &[&str], quiet: f64) -> Vec<serde_json::Value> {
    let mut cmd = Command::new(bin("pump"));
    cmd.arg("sets").args(args);
    cmd.args(["--quiet-seconds", &quiet.to_string(), "-"]);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let out = run_with_input(cmd, text.into_bytes(), Duration::from_secs(60));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    json_lines(&String::from_utf8(out.stdout).unwrap())
}

fn ts(l: &serde_json::Value) -> f64 {
    l["ts"].as_f64().unwrap()
}

/// Every pose whose time is due at `rate` a second, from the first.
pub fn thinned(lines: &[serde_json::Value], rate: f64) -> Vec<&serde_json::Value> {
    thinned_from(lines, rate, 0.0)
}

/// Deterministic noise in [-1, 1].
fn noise(i: u64) -> f64 {
    let x = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// What newest-wins inference at about `rate` a second takes from a camera: when the model is
/// free it takes the newest frame, and the model's time varies by ±50 %; `pause` adds a second
/// without poses (a replica lost) at that time.
pub fn newest_wins(lines: &[serde_json::Value], rate: f64, seed: u64, pause: Option<f64>) -> Vec<&serde_json::Value> {
    let (mut out, mut free_at, mut i, mut k) = (Vec::new(), 0.0, 0usize, seed * 7919);
    while i < lines.len() {
        let mut j = i;
        while j + 1 < lines.len() && ts(&lines[j + 1]) <= free_at {
            j += 1;
        }
        free_at = free_at.max(ts(&lines[j]));
        out.push(&lines[j]);
        i = j + 1;
        k += 1;
        let mut took = (1.0 + 0.5 * noise(k)) / rate;
        if pause.is_some_and(|p| free_at <= p && p < free_at + took) {
            took += 1.0;
        }
        free_at += took;
    }
    out
}

pub fn reps(sets: &[serde_json::Value]) -> Vec<u64> {
    sets.iter().map(|s| s["reps"].as_u64().unwrap()).collect()
}

/// The pose schedules a camera's poses arrive at: every pose, every pose due at 10, 6 and 4 a
/// second, and newest-wins inference at about 4 a second (three jittery models), each named.
pub fn schedules(lines: &[serde_json::Value]) -> Vec<(String, Vec<&serde_json::Value>)> {
    let mut out = vec![("full".to_string(), lines.iter().collect())];
    for rate in [10.0, 6.0, 4.0] {
        out.push((format!("{rate}/s"), thinned(lines, rate)));
    }
    for seed in 1..=3 {
        out.push((format!("newest-wins 4/s #{seed}"), newest_wins(lines, 4.0, seed, None)));
    }
    out
}

/// Every pose due at `rate` a second, the first one `offset` seconds in: a camera whose poses
/// are thinned from another frame than the clip's first.
pub fn thinned_from(lines: &[serde_json::Value], rate: f64, offset: f64) -> Vec<&serde_json::Value> {
    let start = lines.first().map_or(0.0, ts) + offset;
    let mut next = start;
    lines
        .iter()
        .filter(|l| {
            let keep = ts(l) + 1e-9 >= next;
            if keep {
                next += 1.0 / rate;
            }
            keep
        })
        .collect()
}

/// Many more schedules than [`schedules`], for `just reps-report --wide`: thinned to 10, 6, 5
/// and 4 a second from each of several first frames, and newest-wins at about 4, 6 and 10 a
/// second with `seeds` jittery models each. A count that holds on three schedules by luck shows
/// here.
pub fn wide_schedules(lines: &[serde_json::Value], seeds: u64) -> Vec<(String, Vec<&serde_json::Value>)> {
    let mut out = vec![("full".to_string(), lines.iter().collect())];
    for rate in [10.0, 6.0, 5.0, 4.0] {
        for k in 0..4 {
            let offset = k as f64 / (4.0 * rate);
            out.push((format!("{rate}/s +{offset:.3}s"), thinned_from(lines, rate, offset)));
        }
    }
    for rate in [4.0, 6.0, 10.0] {
        for seed in 1..=seeds {
            out.push((format!("newest-wins {rate}/s #{seed}"), newest_wins(lines, rate, seed + 100, None)));
        }
    }
    out
}

/// The clip's sets under every schedule of [`schedules`], told the clip's exercise (or not, with
/// `told` false: counted by its dominant motion): the schedules whose reps differ from the truth.
pub fn misses(clip: &Clip, told: bool) -> Vec<String> {
    let exercise = clip.exercise.as_deref().filter(|_| told);
    schedules(&clip.lines)
        .into_iter()
        .filter_map(|(name, lines)| {
            let got = reps(&sets_as(&lines, exercise, clip.quiet));
            (got != clip.sets).then(|| format!("{} at {name}: truth {:?}, counted {got:?}", clip.name, clip.sets))
        })
        .collect()
}

/// Exact and not pending at full rate and thinned to 10, 6 and 4 poses a second.
pub fn exact_thinned(clip: &Clip) -> Result<(), String> {
    let all: Vec<&serde_json::Value> = clip.lines.iter().collect();
    for (rate, lines) in [
        (None, all),
        (Some(10.0), thinned(&clip.lines, 10.0)),
        (Some(6.0), thinned(&clip.lines, 6.0)),
        (Some(4.0), thinned(&clip.lines, 4.0)),
    ] {
        let got = sets(&lines, clip.quiet);
        if reps(&got) != clip.sets || got.iter().any(|s| s["pending"] != false) {
            return Err(format!("{} at {rate:?} poses/s: {got:?}", clip.name));
        }
    }
    Ok(())
}

/// Exact at about 4 poses a second, newest wins, a jittery model (three schedules).
pub fn exact_newest_wins(clip: &Clip) -> Result<(), String> {
    for seed in 1..=3 {
        let got = sets(&newest_wins(&clip.lines, 4.0, seed, None), clip.quiet);
        if reps(&got) != clip.sets {
            return Err(format!("{} seed {seed}: {got:?}", clip.name));
        }
    }
    Ok(())
}

/// With a second of poses lost: exact, or every set pending; never a wrong count that looks right.
pub fn never_silently_wrong(clip: &Clip) -> Result<(), String> {
    for pause in [3.1, 5.0] {
        let got = sets(&newest_wins(&clip.lines, 6.0, 1, Some(pause)), clip.quiet);
        let trusted = got.iter().filter(|s| s["pending"] == false).count();
        if reps(&got) != clip.sets && (got.is_empty() || trusted > 0) {
            return Err(format!("{} pause at {pause}: a wrong count not pending: {got:?}", clip.name));
        }
        if let Some(s) = got.iter().find(|s| s["longest_gap"].as_f64().unwrap() > 1.0 && s["pending"] != true) {
            return Err(format!("{} pause at {pause}: a gap over 1 s not pending: {s}", clip.name));
        }
    }
    Ok(())
}
