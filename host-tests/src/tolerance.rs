//! The one tolerance table of the project. Every accuracy a doc comment states is enforced
//! by a test that reads its row here.

/// A numeric path.
pub use hardmine_cli::op::Path;
/// The golden parity tolerances (golden/README.md), one table for `hardmine parity --check` and
/// these tests: `F32_REL` and `F32_ABS_FRAC` of the array's scale besides, `F64_REL` and
/// `F64_ABS_FRAC`, and the fixed row; `Tolerance::of(path)` gives a path's row.
pub use hardmine_cli::tolerance::{
    Tolerance, F32_ABS_FRAC, F32_REL, F64_ABS_FRAC, F64_REL, FIXED_ABS_FRAC, FIXED_FLOOR, FIXED_REL,
};

/// Declares each bound as a named constant and lists them all, with the golden tolerances
/// re-exported above, in [`TABLE`], so that a test can check every bound a doc comment quotes
/// against the constant it names.
macro_rules! bounds {
    (
        golden: [$($golden:ident),*];
        $($(#[$doc:meta])* $name:ident: $ty:ty = $value:expr;)*
    ) => {
        $($(#[$doc])* pub const $name: $ty = $value;)*
        /// Every bound of the project by name, as an `f64`: what a doc comment quotes as
        /// ``VALUE [UNIT] (`NAME`)`` must equal it (`tests/accuracy_docs.rs`).
        pub const TABLE: &[(&str, f64)] = &[
            $((stringify!($golden), $golden as f64),)*
            $((stringify!($name), $value as f64)),*
        ];
    };
}

bounds! {
    golden: [F32_REL, F64_REL, F32_ABS_FRAC, F64_ABS_FRAC, FIXED_REL, FIXED_ABS_FRAC, FIXED_FLOOR];
    /// Max error in ULP of the f32 `sigmoid` and `softplus` kernels over every f32 input.
    KERNEL_F32_ULP: u32 = 3;
    /// Max error in ULP of the fast f32 `e^-|x|` over every f32 input whose result is at or
    /// above 2^-126 (smaller ones flush to 0).
    EXP_NEG_ABS_F32_ULP: u32 = 1;
    /// Max error in ULP of the fast f32 `ln(1 + e^-|x|)`, on the same inputs.
    LN1P_EXP_F32_ULP: u32 = 4;
    /// Max error in ULP of the f32 logistic pair `sigma(x)`, `sigma(-x)` of the hard-target
    /// kernel (`logistic_parts`), on the same inputs.
    LOGISTIC_F32_ULP: u32 = 3;
    /// Max distance in ULP of the fast f64 `e^-|x|` from libm's, at 4 million arguments.
    EXP_NEG_ABS_F64_ULP: u32 = 2;
    /// Max distance in ULP of the fast f64 `ln(1 + e^-|x|)` from libm's `log1p` of the same
    /// `e^-|x|`, at the same arguments.
    LN1P_EXP_F64_ULP: u32 = 1;
    /// Max error in LSB (2^-16) of every correctly rounded Q15.16 kernel (exp, exp_m1, ln,
    /// ln_1p, sqrt, sigmoid, softplus, pow, sin, cos) against the exact value, over every input
    /// of the domain it serves: 0.5 (the 1e-9 is f64 slop at ties).
    FIXED_KERNEL_LSB: f64 = 0.5 + 1e-9;
    /// Max error in LSB of the Q15.16 logistic kernel (`logistic_parts`: sigma(x), sigma(-x),
    /// ln(1 + e^-|x|)) over every input of [-64, 64], as measured: correctly rounded except
    /// within 8e-5 LSB of a tie (its Q31 arithmetic keeps a few 2^-31).
    FIXED_LOGISTIC_LSB: f64 = 0.50008;
    /// Max error in LSB of the Q15.16 `e^-|x|` (the logistic kernel's first stage, rounded
    /// once) over every input of [-64, 64], as measured.
    FIXED_EXP_NEG_ABS_LSB: f64 = 0.50004;
    /// Central-difference step of the f64 gradient checks.
    FD_STEP: f64 = 1e-6;
    /// Relative tolerance of a central difference against the analytic gradient.
    FD_REL: f64 = 1e-6;
}

/// Fixed-point loss tolerance against the exact value (the golden fixed row): relative, a
/// fraction of the array's scale, and an absolute floor of 2 LSB.
pub const FIXED: (f64, f64, f64) = Tolerance::of(Path::Fixed).parts();

/// `Err` describing the first element of `got` outside `rel * |exp| + abs_frac * scale`
/// (`Tolerance::check` with no floor).
pub fn check_close(got: &[f64], exp: &[f64], rel: f64, abs_frac: f64) -> Result<(), String> {
    Tolerance {
        rtol: rel,
        afrac: abs_frac,
        floor: 0.0,
    }
    .check(got, exp)
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
