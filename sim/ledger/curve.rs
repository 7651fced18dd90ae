//! The HDR percentile curve: latency read at a fixed list of quantiles, dense towards the
//! tail.
//!
//! Why a fixed list and not the histogram itself: the full histogram of a run is some
//! hundred kilobytes (1 µs .. 1 day at 3 digits); a sweep keeps thousands of verdicts. Thirteen
//! points draw the curve an engineer reads ("how bad is the worst 0.1 %?") and compare
//! across runs and versions because every run reads the same quantiles.

use hdrhistogram::Histogram;

/// The quantiles a curve is read at (0 is the minimum, 1 the maximum).
pub(crate) const QUANTILES: [f64; 13] =
    [0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999, 1.0];

/// One point of a latency percentile curve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct CurvePoint {
    /// 0 ..= 1.
    pub(crate) quantile: f64,
    /// The latency at that quantile (the histogram's highest equivalent value).
    pub micros: u64,
}

/// The curve of `histogram` (empty when nothing was recorded).
pub fn of(histogram: &Histogram<u64>) -> Vec<CurvePoint> {
    if histogram.is_empty() {
        return Vec::new();
    }
    QUANTILES
        .iter()
        .map(|&quantile| CurvePoint {
            quantile,
            micros: if quantile >= 1.0 { histogram.max() } else { histogram.value_at_quantile(quantile) },
        })
        .collect()
}

/// Where a quantile sits on the curve's "nines" axis: −log10(1 − q), so 0 → 0, 0.9 → 1,
/// 0.99 → 2, 0.999 → 3; the maximum (q = 1) is put at `NINES_MAX` + 0.5.
pub(crate) fn nines(quantile: f64) -> f64 {
    if quantile >= 1.0 {
        return NINES_MAX + 0.5;
    }
    (-(1.0 - quantile).log10()).clamp(0.0, NINES_MAX)
}

/// The most nines the curve reads (0.99999).
pub(crate) const NINES_MAX: f64 = 5.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_reads_every_quantile_and_ends_at_the_maximum() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 86_400_000_000, 3).unwrap();
        for value in 1..=10_000u64 {
            histogram.record(value * 100).unwrap();
        }
        let curve = of(&histogram);
        assert_eq!(curve.len(), QUANTILES.len());
        assert!(curve.windows(2).all(|pair| pair[0].micros <= pair[1].micros), "{curve:?}");
        assert!(curve[2].micros.abs_diff(500_000) < 1_000, "p50 {curve:?}");
        assert_eq!(curve.last().unwrap().micros, histogram.max());
        assert!(of(&Histogram::<u64>::new(3).unwrap()).is_empty());
    }

    #[test]
    fn nines_spread_the_tail() {
        assert_eq!(nines(0.0), 0.0);
        assert!((nines(0.9) - 1.0).abs() < 1e-9 && (nines(0.999) - 3.0).abs() < 1e-9);
        assert_eq!(nines(1.0), 5.5);
    }
}
