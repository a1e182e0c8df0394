//! `just bench` (part 3): the cost of a set's features. ns per feature-matrix call for sets of
//! T = 150 and 500 frames (the loop-based build), and per DTW comparison between two sets.
//! Not a test: nothing asserts.

use std::hint::black_box;
use std::time::Instant;

use pump_features::{dtw_distance, DtwConfig, FeatureMatrix};
use pump_types::Keypoint;

/// A squatting skeleton's keypoints for T frames, with some low-confidence frames.
fn frames(t: usize) -> Vec<[Keypoint; 17]> {
    (0..t)
        .map(|i| {
            let phase = i as f32 / 30.0 * std::f32::consts::TAU;
            let bend = 40.0 * (0.5 - 0.5 * phase.cos());
            let mut k = [Keypoint { x: 0.0, y: 0.0, confidence: 0.9 }; 17];
            for (j, kp) in k.iter_mut().enumerate() {
                kp.x = 100.0 + j as f32 * 3.0 + bend * ((j % 3) as f32 - 1.0);
                kp.y = 50.0 + j as f32 * 20.0 - bend;
                kp.confidence = if (i + j) % 11 == 0 { 0.1 } else { 0.9 };
            }
            k
        })
        .collect()
}

fn ns_per_call(iters: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    let t0 = Instant::now();
    for _ in 0..iters {
        f();
    }
    t0.elapsed().as_nanos() as f64 / iters as f64
}

fn main() {
    println!("features (pure, one core)");
    let mut mats = Vec::new();
    for t in [150usize, 500] {
        let f = frames(t);
        let ns = ns_per_call(2000, || {
            black_box(FeatureMatrix::from_keypoints(black_box(&f).iter().map(|k| &k[..])));
        });
        println!("feature matrix, T = {t:>3}: {ns:>9.0} ns per call ({:.1} ns per frame)", ns / t as f64);
        mats.push(FeatureMatrix::from_keypoints(f.iter().map(|k| &k[..])));
    }
    let cfg = DtwConfig::default();
    for (a, b) in [(0, 0), (1, 1), (0, 1)] {
        let (ma, mb) = (&mats[a], &mats[b]);
        let ns = ns_per_call(200, || {
            black_box(dtw_distance(black_box(ma), black_box(mb), &cfg));
        });
        println!("DTW {:>3} × {:>3} frames (band 10 %): {:>9.0} ns per comparison", ma.len(), mb.len(), ns);
    }
}
