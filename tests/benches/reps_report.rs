//! `just reps-report [DIR …]`: how exactly pump counts reps, clip by clip, in the field's metrics.
//! For every clip of every folder (default: `testdata/clips`, `testdata/people`,
//! `testdata/people/hard` and `../shared/real`; any folder of `VIDEO.truth.json` files with
//! their poses beside them, or one `truth.json` with `CLIP.poses.jsonl`), `pump sets` is run on
//! the clip's poses at every schedule a busy machine delivers — full rate, every pose due at 10,
//! 6 and 4 a second, newest-wins at about 4 a second with three jittery models — told the clip's
//! exercise, and again not told (counted by the dominant motion). Printed: truth and count per
//! schedule, then per schedule RepCount's MAE (mean of |count − truth| / truth over clips) and
//! OBO (share of clips off by at most one rep), and the share of clips whose sets are exactly
//! the true sets. Not a test: nothing asserts.
//!
//! `--wide N` instead runs each clip at many more schedules (thinned from four first frames at
//! 10, 6, 5 and 4 a second, newest-wins at about 4, 6 and 10 a second with N models each) and
//! prints, per clip, how many were exact and the schedules that were not.

use std::path::{Path, PathBuf};

use pump_tests::reps::{clips_with, reps, schedules, sets_as, truth_folder, wide_schedules, Clip};
use pump_tests::{json_lines, testdata, workspace};

/// A folder's clips: its `truth.json` of clips (as `testdata/clips`), or its `*.truth.json` files.
fn folder(dir: &Path) -> Vec<Clip> {
    if dir.join("truth.json").is_file() {
        return clips_with(|name| {
            let poses = dir.join(name.replace(".mp4", ".poses.jsonl"));
            json_lines(&std::fs::read_to_string(poses).unwrap_or_default())
        });
    }
    truth_folder(dir)
}

/// A folder as the user named it: cargo runs benches in `tests/`, so a relative path is taken
/// from where `just` was called (`PUMP_INVOCATION_DIR`), else from the workspace's root.
fn given(arg: &str) -> PathBuf {
    let path = PathBuf::from(arg);
    if path.is_absolute() {
        return path;
    }
    std::env::var_os("PUMP_INVOCATION_DIR").map(PathBuf::from).unwrap_or_else(workspace).join(path)
}

#[derive(Default, Clone)]
struct Totals {
    clips: usize,
    relative_error: f64,
    off_by_one: usize,
    exact: usize,
}

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let wide: Option<u64> =
        raw.iter().position(|a| a == "--wide").map(|i| raw.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(10));
    let mut args: Vec<PathBuf> = Vec::new();
    let mut skip = false;
    for a in &raw {
        if std::mem::take(&mut skip) {
            continue;
        }
        if a == "--wide" {
            skip = true;
        } else if !a.starts_with('-') {
            args.push(given(a));
        }
    }
    if let Some(missing) = args.iter().find(|d| !d.is_dir()) {
        eprintln!("reps report: {} is not a folder", missing.display());
        std::process::exit(2);
    }
    let dirs = if args.is_empty() {
        let mut d = vec![testdata("clips"), testdata("people"), testdata("people/hard")];
        let real = workspace().join("../shared/real");
        if real.is_dir() {
            d.push(real);
        } else {
            eprintln!("reps report: no ../shared/real beside the checkout; the real videos are left out");
        }
        d
    } else {
        args
    };
    if let Some(seeds) = wide {
        return wide_report(&dirs, seeds);
    }
    for told in [true, false] {
        let names: Vec<String> = schedules(&[]).into_iter().map(|(n, _)| n).collect();
        println!();
        println!(
            "### {}",
            if told { "told the exercise (--exercise)" } else { "not told: counted by the dominant motion" }
        );
        println!();
        println!("| clip | truth | {} |", names.join(" | "));
        println!("|---|---|{}", "---|".repeat(names.len()));
        let mut totals = vec![Totals::default(); names.len()];
        for dir in &dirs {
            for clip in folder(dir) {
                let truth: u64 = clip.sets.iter().sum();
                let mut cells = Vec::new();
                for (i, (_, lines)) in schedules(&clip.lines).into_iter().enumerate() {
                    let exercise = clip.exercise.as_deref().filter(|_| told);
                    let got = reps(&sets_as(&lines, exercise, clip.quiet));
                    let n: u64 = got.iter().sum();
                    let t = &mut totals[i];
                    t.clips += 1;
                    t.relative_error += (n as f64 - truth as f64).abs() / (truth.max(1) as f64);
                    t.off_by_one += usize::from(n.abs_diff(truth) <= 1);
                    t.exact += usize::from(got == clip.sets);
                    cells.push(if got == clip.sets { "✓".to_string() } else { format!("**{got:?}**") });
                }
                let dir_name = dir.file_name().map(|d| d.to_string_lossy().to_string()).unwrap_or_default();
                println!("| {dir_name}/{} | {:?} | {} |", clip.name, clip.sets, cells.join(" | "));
            }
        }
        let row = |what: &str, f: &dyn Fn(&Totals) -> String| {
            println!("| **{what}** | | {} |", totals.iter().map(f).collect::<Vec<_>>().join(" | "));
        };
        row("MAE", &|t| format!("{:.3}", t.relative_error / t.clips.max(1) as f64));
        row("OBO", &|t| format!("{:.2}", t.off_by_one as f64 / t.clips.max(1) as f64));
        row("exact sets", &|t| format!("{}/{}", t.exact, t.clips));
    }
}

/// Per clip, told and not told: exact schedules out of all of [`wide_schedules`], and the misses.
fn wide_report(dirs: &[PathBuf], seeds: u64) {
    for told in [true, false] {
        println!();
        println!("### {} ({seeds} models per newest-wins rate)", if told { "told the exercise" } else { "not told" });
        println!();
        let (mut all, mut exact) = (0usize, 0usize);
        for dir in dirs {
            for clip in folder(dir) {
                let exercise = clip.exercise.as_deref().filter(|_| told);
                let mut misses = Vec::new();
                let runs = wide_schedules(&clip.lines, seeds);
                let n = runs.len();
                for (name, lines) in runs {
                    let got = reps(&sets_as(&lines, exercise, clip.quiet));
                    if got != clip.sets {
                        misses.push(format!("{name}: {got:?}"));
                    }
                }
                all += n;
                exact += n - misses.len();
                println!("{}/{}: truth {:?}, exact {}/{n}", dir.display(), clip.name, clip.sets, n - misses.len());
                for m in misses {
                    println!("    {m}");
                }
            }
        }
        println!("all: exact {exact}/{all}");
    }
}
