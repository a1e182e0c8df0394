//! Dynamic time warping between feature matrices.

use crate::matrix::FeatureMatrix;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DtwConfig {
    /// Sakoe-Chiba band as a fraction of the longer sequence (never narrower than the length
    /// difference, so any two sequences have a finite distance).
    pub band: f32,
}

impl Default for DtwConfig {
    fn default() -> Self {
        Self { band: 0.1 }
    }
}

fn cost(a: &[f32; 6], b: &[f32; 6], w: &[f32; 6]) -> f32 {
    a.iter().zip(b).zip(w).map(|((x, y), w)| w * (x - y) * (x - y)).sum()
}

/// DTW distance: squared L2 per frame pair, summed along the best path within the band, divided
/// by the sum of the lengths. Infinite when either sequence is empty.
pub fn dtw_distance(a: &FeatureMatrix, b: &FeatureMatrix, cfg: &DtwConfig) -> f32 {
    dtw_distance_weighted(a, b, &[1.0; 6], cfg)
}

/// [`dtw_distance`] with each column's squared difference weighted by `w`.
pub fn dtw_distance_weighted(a: &FeatureMatrix, b: &FeatureMatrix, w: &[f32; 6], cfg: &DtwConfig) -> f32 {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return f32::INFINITY;
    }
    let band = ((cfg.band * n.max(m) as f32).ceil() as usize).max(n.abs_diff(m)).max(1);
    // Two rows of the cost table are enough.
    let mut prev = vec![f32::INFINITY; m + 1];
    let mut cur = vec![f32::INFINITY; m + 1];
    prev[0] = 0.0;
    for i in 1..=n {
        cur.fill(f32::INFINITY);
        // j stays within the band around the diagonal scaled to the other length.
        let centre = i * m / n;
        let lo = centre.saturating_sub(band).max(1);
        let hi = (centre + band).min(m);
        for j in lo..=hi {
            let best = prev[j - 1].min(prev[j]).min(cur[j - 1]);
            cur[j] = cost(&a.rows[i - 1], &b.rows[j - 1], w) + best;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[m] / (n + m) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(vals: &[f32]) -> FeatureMatrix {
        FeatureMatrix { rows: vals.iter().map(|v| [*v; 6]).collect() }
    }

    #[test]
    fn identical_sequences_are_at_zero() {
        let a = seq(&[180.0, 150.0, 100.0, 150.0, 180.0]);
        assert_eq!(dtw_distance(&a, &a, &DtwConfig::default()), 0.0);
    }

    #[test]
    fn time_stretched_copy_is_closer_than_a_different_motion() {
        let a = seq(&[180.0, 140.0, 100.0, 140.0, 180.0]);
        let stretched = seq(&[180.0, 180.0, 140.0, 140.0, 100.0, 100.0, 140.0, 140.0, 180.0, 180.0]);
        let other = seq(&[180.0, 175.0, 170.0, 175.0, 180.0, 175.0, 170.0, 175.0, 180.0, 180.0]);
        let cfg = DtwConfig::default();
        let d1 = dtw_distance(&a, &stretched, &cfg);
        let d2 = dtw_distance(&a, &other, &cfg);
        assert!(d1.is_finite() && d1 < d2, "{d1} vs {d2}");
    }

    #[test]
    fn very_different_lengths_stay_finite_and_symmetric() {
        let a = seq(&[1.0; 3]);
        let b = seq(&[2.0; 40]);
        let cfg = DtwConfig { band: 0.0 };
        let (d1, d2) = (dtw_distance(&a, &b, &cfg), dtw_distance(&b, &a, &cfg));
        assert!(d1.is_finite());
        assert!((d1 - d2).abs() < 1e-3);
        // Every frame pair costs 6 (six columns × 1²); the path has at least 40 steps.
        assert!((d1 - 6.0 * 40.0 / 43.0).abs() < 1e-3, "{d1}");
        assert!(dtw_distance(&a, &FeatureMatrix::default(), &cfg).is_infinite());
    }

    #[test]
    fn weights_scale_each_column() {
        let a = seq(&[1.0; 5]);
        let b = seq(&[3.0; 5]);
        let cfg = DtwConfig::default();
        // Every pair costs 6 × 2² unweighted; only the first column, half-weighted: 2.
        assert!((dtw_distance(&a, &b, &cfg) - 24.0 * 5.0 / 10.0).abs() < 1e-3);
        let w = [0.5, 0.0, 0.0, 0.0, 0.0, 0.0];
        assert!((dtw_distance_weighted(&a, &b, &w, &cfg) - 2.0 * 5.0 / 10.0).abs() < 1e-3);
    }
}
