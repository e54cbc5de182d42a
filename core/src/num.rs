//! The numeric types every algorithm is generic over.
//!
//! [`Real`] is sealed: it is implemented for `f32`, `f64` and Q15.16 ([`Q16`]) here, and every loss and miner is
//! written once against it, so the paths cannot drift apart. Only this module knows how a type
//! computes `exp` or `ln`; algorithms call the trait.
//!
//! Each type sums into its accumulator [`Real::Acc`]: `f32` sums into `f64` (so a mean over a
//! million elements keeps f32 accuracy), `f64` into itself, [`Q16`] into [`Q48`].

mod fixed;
mod float;
mod fx;

pub use fixed::{Q16, Q48};

use core::fmt::Debug;
use core::ops::{Add, Div, Mul, Neg, Sub};

/// Whether the f32/f64 kernels fuse their multiply-adds into FMA instructions (one rounding
/// each, and vector FMA in the loops): true when the `std` feature is on (`core` has no fused
/// multiply-add) and the build targets FMA hardware (x86-64 with `-C target-cpu=native` or
/// `-C target-feature=+fma` on a CPU that has it; aarch64 always). Results then differ from
/// an unfused build's in the last bits, within every documented error bound; Q15.16 is the
/// same either way.
pub const FUSED_MULTIPLY_ADD: bool = float::FUSED;

/// A real-number type the library computes in: `f32`, `f64` or [`Q16`] (Q15.16 fixed point).
///
/// This is the surface generic numeric code needs (constants, conversions, arithmetic, the
/// accumulator and a few documented kernels); the loss kernels' internal stages are
/// crate-private. Arithmetic operators follow the type's own rules (IEEE for floats; Q15.16
/// rounds to nearest and saturates). Each kernel's accuracy is stated here and enforced by a
/// host test against the named constant of `host-tests/src/tolerance.rs`.
pub trait Real:
    Copy
    + PartialOrd
    + Debug
    + Default
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + private::Sealed
    + private::Kernels
{
    /// The wider type sums and moving averages are kept in: `f32` sums into `f64`, `f64`
    /// into itself, [`Q16`] into [`Q48`].
    type Acc: Real<Acc = Self::Acc>;

    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// 1/2.
    const HALF: Self;
    /// The type's resolution at 1: the distance from 1 to the next value (`f32::EPSILON`,
    /// `f64::EPSILON`, one LSB `2^-16` for Q15.16).
    const EPSILON: Self;

    /// `x` rounded to the nearest value of this type (saturating where the type is bounded).
    fn from_f64(x: f64) -> Self;
    /// This value as an `f64` (exact for `f32` and `f64`).
    fn to_f64(self) -> f64;
    /// The count `n` as this type, rounded (saturating where the type is bounded).
    fn from_count(n: u64) -> Self;
    /// This value in the accumulator type (exact).
    fn widen(self) -> Self::Acc;
    /// An accumulator value rounded back to this type.
    fn narrow(acc: Self::Acc) -> Self;

    /// Neither NaN nor infinite.
    fn is_finite(self) -> bool;
    /// `|x|`.
    fn abs(self) -> Self;
    /// `self * a + b`. f32/f64: one rounding (an FMA instruction) where
    /// [`FUSED_MULTIPLY_ADD`] is true, two roundings otherwise; Q15.16: `*` then `+`.
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        self * a + b
    }
    /// The larger of two values (`self` when they compare equal or unordered).
    #[inline]
    fn max(self, other: Self) -> Self {
        if other > self {
            other
        } else {
            self
        }
    }
    /// The smaller of two values (`self` when they compare equal or unordered).
    #[inline]
    fn min(self, other: Self) -> Self {
        if other < self {
            other
        } else {
            self
        }
    }
    /// `self / n` (a mean's divisor); `n = 0` returns `self`.
    fn div_count(self, n: usize) -> Self;

    /// `e^x`. f32/f64: libm, < 1 ULP.
    fn exp(self) -> Self;
    /// `ln(1 + x)`, exact near 0. f32/f64: libm, < 1 ULP.
    fn ln_1p(self) -> Self;
    /// `sqrt(x)`, correctly rounded for f32/f64.
    fn sqrt(self) -> Self;
    /// The logistic function `1 / (1 + e^-x)`, evaluated without cancellation on both sides
    /// (`e^x / (1 + e^x)` for `x < 0`). f32: max error 3 ULP (`KERNEL_F32_ULP`) over every input;
    /// Q15.16: 0.5 LSB (`FIXED_KERNEL_LSB`), correctly rounded.
    fn sigmoid(self) -> Self;
}

pub(crate) mod private {
    pub trait Sealed {}

    /// Kernel steps with a precondition the caller guarantees (hence not public).
    pub trait Unit: Copy + core::ops::Add<Output = Self> + core::ops::Mul<Output = Self> {
        /// `self * u` for `self >= 0` and `u` in `[0, 1]`, equal to `*` there: the product
        /// lies in `[0, self]`, so Q15.16 needs neither the saturation nor the signed shift
        /// of its general product (both slow in vector code). Floats: `*`.
        #[inline(always)]
        fn mul_unit(self, u: Self) -> Self {
            self * u
        }
        /// `self * u + b` under `mul_unit`'s precondition. Floats: [`Real::mul_add`]
        /// (fused where it is).
        #[inline(always)]
        fn mul_unit_add(self, u: Self, b: Self) -> Self {
            self.mul_unit(u) + b
        }
    }

    use super::Real;

    /// The crate's internal kernels: the logistic's stages, selection helpers, binning and
    /// the libm-style functions the losses use. Not public: users write generic code against
    /// [`Real`] alone.
    pub trait Kernels: Copy + Unit {
        /// The value between the logistic's first and second stage, `e^-|x|`: the type
        /// itself for floats, Q31 bits (`u32`) for Q15.16, whose stages keep 15 more bits.
        type Stage: Copy + Default;

        /// `e^x - 1`, exact near 0. f32/f64: libm, < 1 ULP.
        fn exp_m1(self) -> Self;
        /// `ln x` for `x > 0`. f32/f64: libm, < 1 ULP.
        fn ln(self) -> Self;
        /// `x^e` for `x >= 0` (`0^0 = 1`). f32/f64: libm, < 1 ULP.
        fn powf(self, e: Self) -> Self;
        /// `self / (f + 2^-23)` for a factor `f >= 0`: mmdetection's mean over a caller's
        /// `avg_factor`, whose `eps` is float32's epsilon
        /// ([`AVG_FACTOR_EPS`](crate::reduction::AVG_FACTOR_EPS)) in every type. f32/f64:
        /// the sum `f + 2^-23` rounded, then the quotient rounded. Q15.16 (and its
        /// accumulator): `2^-23` is below one LSB, so the quotient of the exact
        /// `f + 2^-23` is computed in integers, `round(x_bits 2^23 / (2^7 f_bits + 1))`,
        /// rounded once (ties away from zero) and saturated: `f = 0` gives `x 2^23`.
        fn div_avg_factor(self, f: Self) -> Self;
        /// Whether [`div_avg_factor`](Self::div_avg_factor) is more than a division by the
        /// rounded `f + 2^-23` (true for Q15.16; floats are a plain division, so a mean over a
        /// factor divides by that sum as by a count).
        const EXACT_AVG_FACTOR: bool = false;
        /// `ln(1 + e^x)`, as `max(x, 0) + ln_1p(e^-|x|)`: finite and relative-accurate for
        /// every finite `x`. f32: max error 3 ULP (`KERNEL_F32_ULP`).
        fn softplus(self) -> Self;
        /// `(sin x, cos x)`. f32/f64: libm, < 1 ULP. Q15.16: correctly rounded on [-pi, pi].
        fn sin_cos(self) -> (Self, Self);
        /// `floor(self)` as an integer, saturating at the `i64` range (NaN is 0).
        fn floor_int(self) -> i64;
        /// The integer `i` as this type (saturating where the type is bounded).
        fn from_int(i: i64) -> Self;
        /// `floor(self)` as a count: 0 for negative values, saturating at `u64::MAX`.
        fn floor_count(self) -> u64;
        /// The histogram bin of `self` in `[0, 1]` split into `bins` equal bins:
        /// `floor(self * bins)` clamped to `0..bins` (so 1 falls in the top bin).
        fn bin(self, bins: usize) -> usize;
        /// The most bins [`bin_small`](Self::bin_small) handles.
        const SMALL_BINS: usize = 1 << 22;
        /// [`bin`](Self::bin) as a `u32`, for `bins <= SMALL_BINS`, without branches or
        /// calls (floats: so that a loop of it vectorises); unspecified (but no panic) for
        /// more bins.
        #[inline(always)]
        fn bin_small(self, bins: usize) -> u32 {
            u32::try_from(self.bin(bins)).unwrap_or(u32::MAX)
        }

        /// `e^-|x|`: the first half of [`exp_ln1p_neg_abs`](Self::exp_ln1p_neg_abs) (f32:
        /// the fast kernel, 1 ULP (`EXP_NEG_ABS_F32_ULP`), vectorises; Q15.16: the 64-bit
        /// kernel, 0.50004 LSB (`FIXED_EXP_NEG_ABS_LSB`); f64: the fast f64 kernel).
        fn exp_neg_abs(self) -> Self;
        /// `(e^-|x|, ln(1 + e^-|x|))`: the two transcendental values every logistic quantity
        /// is built from. f32: branch-free polynomials the compiler inlines and vectorises
        /// (1 ULP (`EXP_NEG_ABS_F32_ULP`) and 4 ULP (`LN1P_EXP_F32_ULP`) over all f32 inputs;
        /// results below 2^-126 flush to 0); f64: the same construction in double precision
        /// (2 ULP (`EXP_NEG_ABS_F64_ULP`) and 1 ULP (`LN1P_EXP_F64_ULP`) from libm; below
        /// 2^-1022 flushed to 0); Q15.16: its `e^-|x|` kernel and `ln_1p`.
        #[inline]
        fn exp_ln1p_neg_abs(self) -> (Self, Self)
        where
            Self: Real,
        {
            let e = self.exp_neg_abs();
            (e, e.ln_1p())
        }
        /// The first stage of [`logistic_parts`](Self::logistic_parts) in staged form (see
        /// `kernel::staged`): `e^-|x|` as a [`Stage`](Self::Stage).
        fn logistic_stage(self) -> Self::Stage;
        /// The second stage, of the first stage's value `e`: `ln(1 + e)` (Q15.16: from the
        /// Q31 `e`, rounded once).
        fn logistic_stage_ln(e: Self::Stage) -> Self;
        /// The last stage: `(sigma(x), sigma(-x), ln(1 + e^-|x|))` from the two stages'
        /// values, equal bit for bit to [`logistic_parts`](Self::logistic_parts). Floats:
        /// `1 / (1 + e)` and `e / (1 + e)`, ordered by the sign of `x` with a select.
        fn logistic_finish(self, e: Self::Stage, lp: Self) -> (Self, Self, Self);
        /// `(sigma(x), sigma(-x), ln(1 + e^-|x|))`, the logistic quantities every binary
        /// loss is built from, without branches on the value (the sign picks by a select),
        /// so a loop of it vectorises for floats. f32: the pair within 3 ULP
        /// (`LOGISTIC_F32_ULP`); Q15.16: 64-bit integer kernel, each value within 0.50008 LSB
        /// (`FIXED_LOGISTIC_LSB`) of the exact value (host-tests `fixed_kernels.rs`).
        #[inline(always)]
        fn logistic_parts(self) -> (Self, Self, Self) {
            let e = self.logistic_stage();
            self.logistic_finish(e, Self::logistic_stage_ln(e))
        }
        /// For a hard target `t` (exactly 0 or 1): `a` when `t = 1`, `b` when `t = 0`.
        /// Floats: `t a + (1 - t) b`, exact for 0 and 1 and vector code in a loop; Q15.16: a
        /// select (two multiplications cost more there).
        #[inline(always)]
        fn pick(t: Self, a: Self, b: Self) -> Self
        where
            Self: Real,
        {
            t.mul_add(a, (Self::ONE - t) * b)
        }
        /// For a hard target `t`: `-v` when `t = 1`, `v` when `t = 0`. Floats: `(1 - 2t) v`;
        /// Q15.16: a select.
        #[inline(always)]
        fn flip(t: Self, v: Self) -> Self
        where
            Self: Real,
        {
            (Self::ONE - t - t) * v
        }
        /// `self^n` for a small integer `n` by repeated multiplication (`0^0 = 1`).
        #[inline]
        fn powi(self, n: u32) -> Self
        where
            Self: Real,
        {
            let mut acc = Self::ONE;
            for _ in 0..n {
                acc = acc * self;
            }
            acc
        }
    }

    /// The last logistic stage where the stage value is the type itself (the floats, and Q48).
    #[inline(always)]
    pub(crate) fn float_finish<T: Real>(x: T, e: T, lp: T) -> (T, T, T) {
        let big = T::ONE / (T::ONE + e);
        let small = e * big;
        let nonneg = x >= T::ZERO;
        (
            if nonneg { big } else { small },
            if nonneg { small } else { big },
            lp,
        )
    }
}

/// The crate-private kernels, as functions, for the host tests that measure them over every
/// input of their domain and for the sibling crates (the detector's box coder takes `ln`); not
/// part of the documented API.
#[doc(hidden)]
pub mod kernels {
    use super::Real;
    pub use crate::mining::box_at;

    /// `(sigma(x), sigma(-x), ln(1 + e^-|x|))`.
    pub fn logistic_parts<T: Real>(x: T) -> (T, T, T) {
        x.logistic_parts()
    }
    /// `(e^-|x|, ln(1 + e^-|x|))`.
    pub fn exp_ln1p_neg_abs<T: Real>(x: T) -> (T, T) {
        x.exp_ln1p_neg_abs()
    }
    /// `e^-|x|`.
    pub fn exp_neg_abs<T: Real>(x: T) -> T {
        x.exp_neg_abs()
    }
    /// `ln(1 + e^x)`.
    pub fn softplus<T: Real>(x: T) -> T {
        x.softplus()
    }
    /// `(sin x, cos x)`.
    pub fn sin_cos<T: Real>(x: T) -> (T, T) {
        x.sin_cos()
    }
    /// `x^e`.
    pub fn powf<T: Real>(x: T, e: T) -> T {
        x.powf(e)
    }
    /// `ln x`.
    pub fn ln<T: Real>(x: T) -> T {
        x.ln()
    }
    /// `e^x - 1`.
    pub fn exp_m1<T: Real>(x: T) -> T {
        x.exp_m1()
    }
}
