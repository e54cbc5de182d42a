//! The one tolerance table of the project. Every accuracy a doc comment states is enforced
//! by a test that reads its row here.

/// A numeric path.
pub use hardmine_cli::op::Path;
/// The golden parity tolerances (golden/README.md), one table for `hardmine parity --check` and
/// these tests: `F32_REL` ("1e-5 relative (f32)", as the loss docs state) and `F32_ABS_FRAC`
/// of the array's scale besides, `F64_REL` ("1e-10 (f64)") and `F64_ABS_FRAC`, and the fixed
/// row; `Tolerance::of(path)` gives a path's row.
pub use hardmine_cli::tolerance::{
    Tolerance, F32_ABS_FRAC, F32_REL, F64_ABS_FRAC, F64_REL, FIXED_ABS_FRAC, FIXED_FLOOR, FIXED_REL,
};

/// Max error of the f32 `sigmoid` and `softplus` kernels in ULP over all f32 inputs
/// (`Real::sigmoid`, `Real::softplus` docs).
pub const KERNEL_F32_ULP: u32 = 3;

/// Max error of every Q15.16 kernel (exp, exp_m1, ln, ln_1p, sqrt, sigmoid, softplus, pow) in
/// LSB (2^-16) against the exact value, over every input of the domain it serves: correctly
/// rounded (`fixed_kernels.rs`; the `fx.rs` docs quote it). The 1e-9 is f64 slop at ties.
pub const FIXED_KERNEL_LSB: f64 = 0.5 + 1e-9;

/// Max error of the fused Q15.16 logistic kernel (`Real::logistic_parts`: sigma(x), sigma(-x),
/// ln(1 + e^-|x|)), in LSB, over every input in [-64, 64]: correctly rounded except within a
/// small fraction of an LSB of a tie (its integer arithmetic keeps about 2^-30).
pub const FIXED_LOGISTIC_LSB: f64 = 0.5 + 1.0 / 1024.0;

/// Fixed-point loss tolerance against the exact value (the golden fixed row): relative, a
/// fraction of the array's scale, and an absolute floor of 2 LSB.
pub const FIXED: (f64, f64, f64) = Tolerance::of(Path::Fixed).parts();

/// Max error of the f32 `exp_ln1p_neg_abs` kernel (both `e^-|x|` and `ln(1 + e^-|x|)`) in ULP
/// over all f32 inputs, results at or above 2^-126 (smaller ones flush to 0).
pub const FAST_KERNEL_F32_ULP: u32 = 4;

/// Central-difference gradient checks in f64: step and relative tolerance.
pub const FD_STEP: f64 = 1e-6;
/// Relative tolerance of a central difference against the analytic gradient.
pub const FD_REL: f64 = 1e-6;

/// `Err` describing the first element of `got` outside `rel * |exp| + abs_frac * scale`.
pub fn check_close(got: &[f64], exp: &[f64], rel: f64, abs_frac: f64) -> Result<(), String> {
    if got.len() != exp.len() {
        return Err(format!("length {} instead of {}", got.len(), exp.len()));
    }
    let scale = exp.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (i, (&g, &e)) in got.iter().zip(exp).enumerate() {
        let bound = rel * e.abs() + abs_frac * scale;
        // Written so a NaN on either side fails.
        let within = (g - e).abs() <= bound;
        if !within {
            return Err(format!(
                "[{i}]: got {g:e}, expected {e:e}, bound {bound:.3e}"
            ));
        }
    }
    Ok(())
}

/// Distance in units in the last place between two f32 values (same sign assumed close).
pub fn ulp_distance(a: f32, b: f32) -> u32 {
    // The f32 bits widened keep their order, and their distance.
    ordered_distance(
        i64::from(a.to_bits() as i32),
        i64::from(b.to_bits() as i32),
        32,
    ) as u32
}

/// Distance in units in the last place between two f64 values (same sign assumed close).
pub fn ulp_distance_f64(a: f64, b: f64) -> u64 {
    ordered_distance(a.to_bits() as i64, b.to_bits() as i64, 64)
}

/// The distance between two floats' sign-magnitude bit patterns `a`, `b` of `width` bits,
/// each mapped to a monotone integer (negative values counted down from the sign bit).
fn ordered_distance(a: i64, b: i64, width: u32) -> u64 {
    let sign = -1i64 << (width - 1);
    let key = |bits: i64| {
        if bits < 0 {
            sign.wrapping_sub(bits)
        } else {
            bits
        }
    };
    key(a).wrapping_sub(key(b)).unsigned_abs()
}
