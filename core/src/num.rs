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
}

/// A real-number type the library computes in: `f32`, `f64` or [`Q16`] (Q15.16 fixed point).
///
/// Arithmetic operators follow the type's own rules (IEEE for floats). The kernels are
/// documented with their accuracy; the host tests enforce each bound.
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
    + private::Unit
{
    /// The wider type sums and moving averages are kept in.
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
    /// `e^x`. f32/f64: libm, < 1 ULP.
    fn exp(self) -> Self;
    /// `e^x - 1`, exact near 0. f32/f64: libm, < 1 ULP.
    fn exp_m1(self) -> Self;
    /// `ln x` for `x > 0`. f32/f64: libm, < 1 ULP.
    fn ln(self) -> Self;
    /// `ln(1 + x)`, exact near 0. f32/f64: libm, < 1 ULP.
    fn ln_1p(self) -> Self;
    /// `sqrt(x)`, correctly rounded for f32/f64.
    fn sqrt(self) -> Self;
    /// `x^e` for `x >= 0` (`0^0 = 1`). f32/f64: libm, < 1 ULP.
    fn powf(self, e: Self) -> Self;
    /// The logistic function `1 / (1 + e^-x)`, evaluated without cancellation on both sides
    /// (`e^x / (1 + e^x)` for `x < 0`). Max error 3 ULP in f32 (host-tests `tolerance.rs`).
    fn sigmoid(self) -> Self;
    /// `ln(1 + e^x)`, as `max(x, 0) + ln_1p(e^-|x|)`: finite and relative-accurate for every
    /// finite `x`. Max error 3 ULP in f32 (host-tests `tolerance.rs`).
    fn softplus(self) -> Self;
    /// `self / n` (a mean's divisor); `n = 0` returns `self`.
    fn div_count(self, n: usize) -> Self;
    /// `(sin x, cos x)`. f32/f64: libm, < 1 ULP. Q15.16: correctly rounded on [-pi, pi].
    fn sin_cos(self) -> (Self, Self);
    /// `floor(self)` as an integer, saturating at the `i64` range (NaN is 0).
    fn floor_int(self) -> i64;
    /// The integer `i` as this type (saturating where the type is bounded).
    fn from_int(i: i64) -> Self;
    /// `(e^-|x|, ln(1 + e^-|x|))`: the two transcendental values every logistic quantity is
    /// built from. f32: branch-free polynomials the compiler inlines and vectorises (max
    /// error 1 ULP for `e^-|x|`, 4 ULP for the logarithm, over all f32 inputs; results below
    /// 2^-126 flush to 0; host-tests `kernels.rs`); f64: the same construction in double
    /// precision (within 2 and 1 ULP of libm at 4 million arguments; below 2^-1022 flushed to
    /// 0); Q15.16: its `exp` and `ln_1p`.
    #[inline]
    fn exp_ln1p_neg_abs(self) -> (Self, Self) {
        let e = (-self.abs()).exp();
        (e, e.ln_1p())
    }
    /// `(sigma(x), sigma(-x), ln(1 + e^-|x|))`, the logistic quantities every binary loss is
    /// built from, without branches on the value (the sign picks by a select), so a loop of
    /// it vectorises for floats. Floats: from [`exp_ln1p_neg_abs`](Self::exp_ln1p_neg_abs),
    /// `1 / (1 + e)` and `e / (1 + e)`. Q15.16: 64-bit integer kernel, each value correctly
    /// rounded but within 2^-22 LSB of a tie (host-tests `fixed_kernels.rs`).
    #[inline(always)]
    fn logistic_parts(self) -> (Self, Self, Self) {
        let e = self.logistic_stage();
        self.logistic_finish(e, e.logistic_stage_ln())
    }
    /// The first stage of [`logistic_parts`](Self::logistic_parts) in staged form (see
    /// `kernel::staged`): floats `e^-|x|` ([`exp_neg_abs`](Self::exp_neg_abs)); Q15.16
    /// `e^-|x|` in Q31, its bits carried in a `Q16` (not a Q15.16 value: only the next stages
    /// read it).
    #[inline(always)]
    fn logistic_stage(self) -> Self {
        self.exp_neg_abs()
    }
    /// The second stage, of the first stage's value `e`: `ln(1 + e)` (Q15.16: from the Q31
    /// `e`, rounded once).
    #[inline(always)]
    fn logistic_stage_ln(self) -> Self {
        self.ln_1p()
    }
    /// The last stage: `(sigma(x), sigma(-x), ln(1 + e^-|x|))` from the two stages' values,
    /// equal bit for bit to [`logistic_parts`](Self::logistic_parts). Floats: `1 / (1 + e)`
    /// and `e / (1 + e)`, ordered by the sign of `x` with a select.
    #[inline(always)]
    fn logistic_finish(self, e: Self, lp: Self) -> (Self, Self, Self) {
        let big = Self::ONE / (Self::ONE + e);
        let small = e * big;
        let nonneg = self >= Self::ZERO;
        (
            if nonneg { big } else { small },
            if nonneg { small } else { big },
            lp,
        )
    }
    /// For a hard target `t` (exactly 0 or 1): `a` when `t = 1`, `b` when `t = 0`. Floats:
    /// `t a + (1 - t) b`, exact for 0 and 1 and vector code in a loop; Q15.16: a select (two
    /// multiplications cost more there).
    #[inline(always)]
    fn pick(t: Self, a: Self, b: Self) -> Self {
        t.mul_add(a, (Self::ONE - t) * b)
    }
    /// For a hard target `t`: `-v` when `t = 1`, `v` when `t = 0`. Floats: `(1 - 2t) v`;
    /// Q15.16: a select.
    #[inline(always)]
    fn flip(t: Self, v: Self) -> Self {
        (Self::ONE - t - t) * v
    }
    /// `e^-|x|`: the first half of [`exp_ln1p_neg_abs`](Self::exp_ln1p_neg_abs) (f32: the
    /// fast kernel, 1 ULP, vectorises; Q15.16: the 64-bit kernel of `logistic_parts`, 0.50004
    /// LSB; f64: the fast f64 kernel).
    #[inline(always)]
    fn exp_neg_abs(self) -> Self {
        (-self.abs()).exp()
    }
    /// `self^n` for a small integer `n` by repeated multiplication (`0^0 = 1`).
    #[inline]
    fn powi(self, n: u32) -> Self {
        let mut acc = Self::ONE;
        for _ in 0..n {
            acc = acc * self;
        }
        acc
    }
    /// `floor(self)` as a count: 0 for negative values, saturating at `u64::MAX`.
    fn floor_count(self) -> u64;
    /// The histogram bin of `self` in `[0, 1]` split into `bins` equal bins:
    /// `floor(self * bins)` clamped to `0..bins` (so 1 falls in the top bin).
    fn bin(self, bins: usize) -> usize;
    /// The most bins [`bin_small`](Self::bin_small) handles.
    const SMALL_BINS: usize = 1 << 22;
    /// [`bin`](Self::bin) as a `u32`, for `bins <= SMALL_BINS`, without branches or calls
    /// (floats: so that a loop of it vectorises); unspecified (but no panic) for more bins.
    #[inline(always)]
    fn bin_small(self, bins: usize) -> u32 {
        u32::try_from(self.bin(bins)).unwrap_or(u32::MAX)
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
}
