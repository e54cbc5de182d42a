//! Small helpers shared by the modules: the natural logarithm from the public `Real` surface,
//! box access, and the core's checks.
//!
//! ```text
//! ln(x) = k * ln 2 + ln_1p(m - 1),   x = m * 2^k,  m in [0.75, 1.5)
//! ```
//! `m - 1` is exact for floats (Sterbenz), so `ln` is within a few ULP of the true value for
//! f32/f64 whatever `x`; Q15.16 loses at most the halvings' low bits.

use hardmine::Real;

/// `ln 2` to f64 precision.
const LN_2: f64 = core::f64::consts::LN_2;

/// Enough halvings or doublings for any finite f64 (subnormals included).
const MAX_STEPS: i32 = 1100;

/// `ln(x)` for a finite `x > 0`. Other inputs end after at most `MAX_STEPS` steps, never a
/// hang: for floats `-inf` at 0, NaN below 0 or for NaN, `+inf` at `+inf` (as `log`).
pub(crate) fn ln<T: Real>(x: T) -> T {
    let three_halves = T::from_f64(1.5);
    let three_quarters = T::from_f64(0.75);
    let mut m = x;
    let mut k: i32 = 0;
    while m >= three_halves && k < MAX_STEPS {
        m = m * T::HALF;
        k += 1;
    }
    while m < three_quarters && m > T::ZERO && k > -MAX_STEPS {
        m = m + m;
        k -= 1;
    }
    let r = (m - T::ONE).ln_1p();
    if k == 0 {
        r
    } else {
        T::from_f64(f64::from(k) * LN_2) + r
    }
}

/// Box `i` of a flat `[N * 4]` slice (zeros past the end, which validated input never reaches).
#[inline]
pub(crate) fn box_at<T: Real>(boxes: &[T], i: usize) -> [T; 4] {
    let mut b = [T::ZERO; 4];
    let start = i.saturating_mul(4);
    if let Some(s) = boxes.get(start..start.saturating_add(4)) {
        b.copy_from_slice(s);
    }
    b
}

pub(crate) use hardmine::check::{all_finite, length, parameter};

#[cfg(test)]
mod tests {
    use super::ln;
    use hardmine::{Real, Q16};

    #[test]
    fn ln_matches_std_on_f64_over_many_magnitudes() {
        for &x in &[
            1e-300, 1e-20, 0.001, 0.3, 0.75, 1.0, 1.4999, 1.5, 2.0, 10.0, 1e10, 1e300,
        ] {
            let got: f64 = ln(x);
            let want = f64::ln(x);
            assert!(
                (got - want).abs() <= 4.0 * f64::EPSILON * want.abs().max(1.0),
                "{x}"
            );
        }
        assert_eq!(ln(1.0f64), 0.0);
        assert!((ln(f64::MIN_POSITIVE / 8.0) - (f64::MIN_POSITIVE / 8.0).ln()).abs() < 1e-12);
    }

    #[test]
    fn ln_outside_its_domain_ends_like_log() {
        assert_eq!(ln(0.0f64), f64::NEG_INFINITY);
        assert!(ln(-1.0f64).is_nan() && ln(f64::NAN).is_nan());
        assert_eq!(ln(f32::INFINITY), f32::INFINITY);
    }

    #[test]
    fn ln_matches_std_on_f32_and_q16() {
        for &x in &[1e-30f32, 0.016, 0.5, 1.0, 3.0, 62.5, 1e30] {
            let got: f32 = ln(x);
            assert!(
                (got - x.ln()).abs() <= 4.0 * f32::EPSILON * x.ln().abs().max(1.0),
                "{x}"
            );
        }
        for &x in &[0.016f64, 0.5, 1.0, 3.0, 62.5, 1000.0] {
            let got = ln(Q16::from_f64(x)).to_f64();
            assert!((got - x.ln()).abs() < 2e-3, "{x}: {got}");
        }
    }
}
