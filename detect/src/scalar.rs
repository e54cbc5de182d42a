//! The numeric types the network computes in ([`Scalar`]: `f32`, `f64`, [`Q16`]) and the
//! wider master copy SGD keeps of their weights ([`Master`]).
//!
//! A convolution's output is a dot product of `9 * in_ch` terms plus a bias. Floats sum in
//! their own type (f32 stays f32, so the loops vectorise; the error is a few ULP of the
//! largest partial sum). Q15.16 sums the exact 64-bit products (Q31.32) and rounds once at
//! the end, to nearest: an output is within half an LSB of the exact dot product of its
//! (Q15.16) inputs and weights, where a sum of rounded Q15.16 products would be off by up to
//! `9 * in_ch / 2` LSB. The sum saturates at `|2^31|` (in value), far beyond Q15.16's own range.

use core::fmt::Debug;
use fixed::types::I32F32;
use hardmine::Q16;

pub(crate) mod private {
    /// Seals [`Scalar`](super::Scalar) and [`Master`](super::Master).
    pub trait Sealed {}

    /// How a type sums a dot product (crate-private: users write code against `Scalar`).
    pub trait Dot: Copy {
        /// The running sum of a dot product.
        type Sum: Copy + Default;
        /// A value (the bias) as a sum.
        fn start(self) -> Self::Sum;
        /// `sum + a * b`.
        fn mac(sum: Self::Sum, a: Self, b: Self) -> Self::Sum;
        /// The sum rounded to this type.
        fn finish(sum: Self::Sum) -> Self;
        /// `sum_i a_i * b_i` over the shorter length.
        fn dot(a: &[Self], b: &[Self]) -> Self;
    }
}

use private::{Dot, Sealed};

/// A number type the network computes in: `f32`, `f64` or [`Q16`] (sealed), with the
/// [`Master`] type SGD keeps its weights and momentum in.
pub trait Scalar: hardmine::Real + Dot + Sealed {
    /// The master copy of a weight: the type itself for floats, Q31.32 ([`I32F32`]) for
    /// Q15.16, whose 2^-16 LSB would swallow most `lr * grad` and every weight decay.
    type Master: Master<Self>;
}

/// The wider copy of a weight of type `T` that SGD updates (see [`Sgd`](crate::Sgd)): every
/// operation rounds to nearest and saturates (never wraps, never panics).
pub trait Master<T>: Copy + Default + Debug + PartialEq + Sealed {
    /// `x` rounded to this type (saturating; NaN is 0 for fixed point).
    fn from_value(x: f64) -> Self;
    /// This value as an `f64`.
    fn to_value(self) -> f64;
    /// The weight `w`, exactly.
    fn from_weight(w: T) -> Self;
    /// The nearest weight (ties towards +infinity for Q15.16: half an LSB rounds up, so -0.5
    /// LSB becomes 0), saturating at `T`'s range.
    fn to_weight(self) -> T;
    /// Whether [`to_weight`](Self::to_weight) stays inside `T`'s range (floats: finite;
    /// Q31.32: within Q15.16's range after rounding). Outside it the weight saturated.
    fn fits(self) -> bool;
    /// Neither NaN nor infinite (always true for fixed point).
    fn finite(self) -> bool;
    /// `self + o`.
    fn plus(self, o: Self) -> Self;
    /// `self - o`.
    fn minus(self, o: Self) -> Self;
    /// `self * o`.
    fn times(self, o: Self) -> Self;
}

macro_rules! float_scalar {
    ($t:ty) => {
        impl Sealed for $t {}

        impl Dot for $t {
            type Sum = $t;
            #[inline(always)]
            fn start(self) -> $t {
                self
            }
            #[inline(always)]
            fn mac(sum: $t, a: $t, b: $t) -> $t {
                a * b + sum
            }
            #[inline(always)]
            fn finish(sum: $t) -> $t {
                sum
            }
            /// Eight independent partial sums (so the loop vectorises), then their sum.
            #[inline]
            fn dot(a: &[$t], b: &[$t]) -> $t {
                let mut lanes = [0.0 as $t; 8];
                let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
                let (ra, rb) = (ca.remainder(), cb.remainder());
                for (xa, xb) in ca.zip(cb) {
                    for ((l, x), y) in lanes.iter_mut().zip(xa).zip(xb) {
                        *l += *x * *y;
                    }
                }
                let mut s = ra.iter().zip(rb).fold(0.0 as $t, |s, (x, y)| *x * *y + s);
                for l in lanes {
                    s += l;
                }
                s
            }
        }

        impl Scalar for $t {
            type Master = $t;
        }

        impl Master<$t> for $t {
            fn from_value(x: f64) -> $t {
                x as $t
            }
            fn to_value(self) -> f64 {
                f64::from(self)
            }
            #[inline(always)]
            fn from_weight(w: $t) -> $t {
                w
            }
            #[inline(always)]
            fn to_weight(self) -> $t {
                self
            }
            #[inline(always)]
            fn fits(self) -> bool {
                self.is_finite()
            }
            #[inline(always)]
            fn finite(self) -> bool {
                self.is_finite()
            }
            #[inline(always)]
            fn plus(self, o: $t) -> $t {
                self + o
            }
            #[inline(always)]
            fn minus(self, o: $t) -> $t {
                self - o
            }
            #[inline(always)]
            fn times(self, o: $t) -> $t {
                self * o
            }
        }
    };
}

float_scalar!(f32);
float_scalar!(f64);

impl Sealed for Q16 {}

/// Q31.32 bits of a Q15.16 value.
#[inline(always)]
fn q32_bits(x: Q16) -> i64 {
    i64::from(x.to_bits()) << 16
}

/// Q31.32 bits rounded to Q15.16 bits (half an LSB rounds up), unclamped.
#[inline(always)]
fn round_to_q16(bits: i64) -> i64 {
    bits.saturating_add(1 << 15) >> 16
}

#[inline(always)]
fn clamp_q16(bits: i64) -> Q16 {
    Q16::from_bits(bits.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
}

impl Dot for Q16 {
    /// The exact products' sum in Q31.32 bits.
    type Sum = i64;
    #[inline(always)]
    fn start(self) -> i64 {
        q32_bits(self)
    }
    #[inline(always)]
    fn mac(sum: i64, a: Q16, b: Q16) -> i64 {
        sum.saturating_add(i64::from(a.to_bits()) * i64::from(b.to_bits()))
    }
    #[inline(always)]
    fn finish(sum: i64) -> Q16 {
        clamp_q16(round_to_q16(sum))
    }
    #[inline]
    fn dot(a: &[Q16], b: &[Q16]) -> Q16 {
        Self::finish(a.iter().zip(b).fold(0, |s, (x, y)| Self::mac(s, *x, *y)))
    }
}

impl Scalar for Q16 {
    type Master = I32F32;
}

impl Sealed for I32F32 {}

impl Master<Q16> for I32F32 {
    fn from_value(x: f64) -> I32F32 {
        if x.is_nan() {
            return I32F32::ZERO;
        }
        // `as` saturates (and the product of a finite value cannot be NaN).
        I32F32::from_bits(libm::round(x * 4_294_967_296.0) as i64)
    }
    fn to_value(self) -> f64 {
        self.to_bits() as f64 / 4_294_967_296.0
    }
    #[inline(always)]
    fn from_weight(w: Q16) -> I32F32 {
        I32F32::from_bits(q32_bits(w))
    }
    #[inline(always)]
    fn to_weight(self) -> Q16 {
        clamp_q16(round_to_q16(self.to_bits()))
    }
    #[inline(always)]
    fn fits(self) -> bool {
        let r = round_to_q16(self.to_bits());
        r >= i64::from(i32::MIN) && r <= i64::from(i32::MAX)
    }
    #[inline(always)]
    fn finite(self) -> bool {
        true
    }
    #[inline(always)]
    fn plus(self, o: I32F32) -> I32F32 {
        I32F32::from_bits(self.to_bits().saturating_add(o.to_bits()))
    }
    #[inline(always)]
    fn minus(self, o: I32F32) -> I32F32 {
        I32F32::from_bits(self.to_bits().saturating_sub(o.to_bits()))
    }
    /// The product rounded to nearest (half up), saturated.
    #[inline(always)]
    fn times(self, o: I32F32) -> I32F32 {
        let p = i128::from(self.to_bits()) * i128::from(o.to_bits());
        let r = (p + (1 << 31)) >> 32;
        I32F32::from_bits(r.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }
}
