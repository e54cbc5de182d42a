//! Q15.16 fixed point ([`Q16`], over `fixed::types::I16F16`) and its Q47.16 accumulator
//! ([`Q48`], over `I48F16`): saturating, round-to-nearest arithmetic that never wraps and never
//! panics, in debug builds too.
//!
//! Every operator rounds to nearest (ties up, away from zero for division) and saturates at the
//! type's range; `x / 0` saturates with the sign of `x` (`0 / 0 = 0`). There is no NaN or
//! infinity: `is_finite` is always true, `ln` of a non-positive value saturates to the most
//! negative value and `sqrt` of one is 0. Conversions from floats round and saturate (NaN is 0).
//! Kernels are in `fx.rs` with their error bounds.

use super::{fx, private, Real};
use core::ops::{Add, Div, Mul, Neg, Sub};
use fixed::types::{I16F16, I48F16};

/// A Q15.16 fixed-point number: 16 integer bits (sign included) and 16 fractional bits, range
/// `[-32768, 32768)`, resolution `2^-16` (one LSB, about 1.5e-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
#[repr(transparent)]
pub struct Q16(pub I16F16);

/// A Q47.16 fixed-point number, the accumulator of [`Q16`]: the same resolution, 48 integer
/// bits, so sums of billions of `Q16` values cannot overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
#[repr(transparent)]
pub struct Q48(pub I48F16);

#[cfg(feature = "defmt")]
impl defmt::Format for Q16 {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=i32}/65536", self.0.to_bits());
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Q48 {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=i64}/65536", self.0.to_bits());
    }
}

macro_rules! impl_fixed {
    (@logistic fast) => {
        /// Q31 bits of `e^-|x|`.
        type Stage = u32;

        #[inline(always)]
        fn pick(t: Self, a: Self, b: Self) -> Self {
            if t == Self::ONE {
                a
            } else {
                b
            }
        }
        #[inline(always)]
        fn flip(t: Self, v: Self) -> Self {
            if t == Self::ONE {
                -v
            } else {
                v
            }
        }
        #[inline]
        fn exp_neg_abs(self) -> Self {
            Self::from_bits(fx::exp_neg_abs(self.to_bits()))
        }
        /// `e^-|x|` in Q31.
        #[inline(always)]
        fn logistic_stage(self) -> u32 {
            fx::exp_neg_31(self.to_bits())
        }
        #[inline(always)]
        fn logistic_stage_ln(e: u32) -> Self {
            Self::from_bits(fx::ln1p_31(e))
        }
        #[inline(always)]
        fn logistic_finish(self, e: u32, lp: Self) -> (Self, Self, Self) {
            let (big, small) = fx::logistic_recip(e);
            let (big, small) = (Self::from_bits(big), Self::from_bits(small));
            if self >= Self::ZERO {
                (big, small, lp)
            } else {
                (small, big, lp)
            }
        }
    };
    (@logistic default) => {
        type Stage = Self;

        #[inline]
        fn exp_neg_abs(self) -> Self {
            (-self.abs()).exp()
        }
        #[inline(always)]
        fn logistic_stage(self) -> Self {
            self.exp_neg_abs()
        }
        #[inline(always)]
        fn logistic_stage_ln(e: Self) -> Self {
            e.ln_1p()
        }
        #[inline(always)]
        fn logistic_finish(self, e: Self, lp: Self) -> (Self, Self, Self) {
            private::float_finish(self, e, lp)
        }
    };
    ($t:ident, $inner:ty, $bits:ty, acc = $acc:ident, logistic = $logistic:ident) => {
        impl $t {
            /// The value with raw bits `bits` (the value times 2^16).
            pub const fn from_bits(bits: $bits) -> Self {
                Self(<$inner>::from_bits(bits))
            }

            /// The raw bits (the value times 2^16).
            pub const fn to_bits(self) -> $bits {
                self.0.to_bits()
            }

            /// The largest value.
            pub const MAX: Self = Self::from_bits(<$bits>::MAX);
            /// The smallest (most negative) value.
            pub const MIN: Self = Self::from_bits(<$bits>::MIN);

            #[inline]
            fn raw(self) -> i128 {
                i128::from(self.0.to_bits())
            }

            /// The product, rounded to nearest (ties up) and saturated.
            #[inline]
            fn mul_raw(a: Self, b: Self) -> Self {
                if <$bits>::BITS == 32 {
                    // 32 x 32 bits fit an i64 exactly; the rounded shift cannot overflow it.
                    let p = (a.to_bits() as i64) * (b.to_bits() as i64);
                    let r = (p + (1 << 15)) >> 16;
                    Self::from_bits(r.clamp(i64::from(<$bits>::MIN), i64::from(<$bits>::MAX)) as $bits)
                } else {
                    Self::sat(fx::mul(a.raw(), b.raw()))
                }
            }

            /// Saturates a raw i128 into this type.
            #[inline]
            fn sat(v: i128) -> Self {
                Self::from_bits(v.clamp(i128::from(<$bits>::MIN), i128::from(<$bits>::MAX)) as $bits)
            }

            /// Saturates a raw i64 into this type (no 128-bit compare: the widening and
            /// narrowing between Q16 and Q48 sit in every accumulation).
            #[inline]
            fn sat64(v: i64) -> Self {
                Self::from_bits(v.clamp(<$bits>::MIN as i64, <$bits>::MAX as i64) as $bits)
            }
        }

        impl Add for $t {
            type Output = Self;
            #[inline]
            fn add(self, o: Self) -> Self {
                Self::from_bits(self.to_bits().saturating_add(o.to_bits()))
            }
        }

        impl Sub for $t {
            type Output = Self;
            #[inline]
            fn sub(self, o: Self) -> Self {
                Self::from_bits(self.to_bits().saturating_sub(o.to_bits()))
            }
        }

        impl Mul for $t {
            type Output = Self;
            #[inline]
            fn mul(self, o: Self) -> Self {
                Self::mul_raw(self, o)
            }
        }

        impl Div for $t {
            type Output = Self;
            #[inline]
            fn div(self, o: Self) -> Self {
                Self::sat(fx::div(self.raw(), o.raw()))
            }
        }

        impl Neg for $t {
            type Output = Self;
            #[inline]
            fn neg(self) -> Self {
                Self::from_bits(self.to_bits().saturating_neg())
            }
        }

        impl private::Sealed for $t {}

        impl Real for $t {
            type Acc = $acc;

            const ZERO: Self = Self::from_bits(0);
            const ONE: Self = Self::from_bits(1 << 16);
            const HALF: Self = Self::from_bits(1 << 15);
            const EPSILON: Self = Self::from_bits(1);

            fn from_f64(x: f64) -> Self {
                if x.is_nan() {
                    return Self::ZERO;
                }
                let v = libm::round(x * 65536.0);
                // `as` saturates, then the clamp to this width.
                Self::sat(v as i128)
            }
            fn to_f64(self) -> f64 {
                self.to_bits() as f64 / 65536.0
            }
            #[inline]
            fn from_count(n: u64) -> Self {
                Self::sat(i128::from(n) << 16)
            }
            #[inline]
            fn widen(self) -> $acc {
                $acc::sat64(self.to_bits() as i64)
            }
            #[inline]
            fn narrow(acc: $acc) -> Self {
                Self::sat64(acc.to_bits() as i64)
            }
            #[inline]
            fn is_finite(self) -> bool {
                true
            }
            #[inline]
            fn abs(self) -> Self {
                Self::from_bits(self.to_bits().saturating_abs())
            }
            fn exp(self) -> Self {
                Self::sat(fx::exp(self.raw()))
            }
            fn ln_1p(self) -> Self {
                Self::sat(fx::ln_1p(self.raw()))
            }
            fn sqrt(self) -> Self {
                Self::sat(fx::sqrt(self.raw()))
            }
            fn sigmoid(self) -> Self {
                Self::sat(fx::sigmoid(self.raw()))
            }
            #[inline]
            fn div_count(self, n: usize) -> Self {
                if n == 0 {
                    self
                } else {
                    Self::sat(fx::div_round(self.raw(), n as i128))
                }
            }
        }

        impl private::Kernels for $t {
            fn exp_m1(self) -> Self {
                Self::sat(fx::exp_m1(self.raw()))
            }
            fn ln(self) -> Self {
                Self::sat(fx::ln(self.raw()))
            }
            fn powf(self, e: Self) -> Self {
                Self::sat(fx::pow(self.raw(), e.raw()))
            }
            const EXACT_AVG_FACTOR: bool = true;
            #[inline(never)]
            fn div_avg_factor(self, f: Self) -> Self {
                // x / (f + 2^-23) = x_bits 2^-16 / ((2^7 f_bits + 1) 2^-23); `max(1)` keeps
                // the divisor positive for a negative `f`, which the builders refuse.
                let d = (f.raw() << 7).saturating_add(1).max(1);
                Self::sat(fx::div_round(self.raw() << 23, d))
            }
            fn softplus(self) -> Self {
                Self::sat(fx::softplus(self.raw()))
            }
            fn sin_cos(self) -> (Self, Self) {
                let (s, c) = fx::sin_cos(self.raw());
                (Self::sat(s), Self::sat(c))
            }
            #[inline]
            fn floor_int(self) -> i64 {
                i64::try_from(self.raw() >> 16).unwrap_or(i64::MAX)
            }
            #[inline]
            fn from_int(i: i64) -> Self {
                Self::sat(i128::from(i) << 16)
            }
            #[inline]
            fn floor_count(self) -> u64 {
                u64::try_from(self.raw().max(0) >> 16).unwrap_or(u64::MAX)
            }
            #[inline]
            fn bin(self, bins: usize) -> usize {
                let b = (self.raw().max(0).saturating_mul(bins as i128)) >> 16;
                usize::try_from(b).unwrap_or(usize::MAX).min(bins.saturating_sub(1))
            }
            impl_fixed!(@logistic $logistic);
        }
    };
}

impl_fixed!(Q16, I16F16, i32, acc = Q48, logistic = fast);
impl_fixed!(Q48, I48F16, i64, acc = Q48, logistic = default);

impl private::Unit for Q16 {
    #[inline(always)]
    fn mul_unit(self, u: Self) -> Self {
        // Raw `self` in [0, 2^31) and `u` in [0, 2^16]: the product is below 2^47 and, shifted
        // back with rounding (ties up, as `*`), at most `self`; unsigned, so the shift is a
        // logical one.
        let p = u64::from(self.to_bits() as u32) * u64::from(u.to_bits() as u32);
        Self::from_bits(((p + (1 << 15)) >> 16) as i32)
    }
}

impl private::Unit for Q48 {}

#[cfg(test)]
mod tests {
    use super::{Q16, Q48};
    use crate::num::private::Kernels;
    use crate::Real;

    fn q(x: f64) -> Q16 {
        Q16::from_f64(x)
    }

    #[test]
    fn unit_product_is_the_product() {
        use crate::num::private::Unit;
        // Every u in [0, 1] against values of self across [0, MAX] (every bit length, and
        // the ends), and the add form.
        let selves = (0..31)
            .flat_map(|k| {
                [
                    1i32 << k,
                    (1 << k) + 1,
                    (1 << k) - 1,
                    ((1i64 << (k + 1)) - 1) as i32,
                ]
            })
            .chain([0, i32::MAX, 0x7fff_8000, 3 << 16]);
        for a in selves.map(Q16::from_bits) {
            for u in (0..=1 << 16).map(Q16::from_bits) {
                assert_eq!(a.mul_unit(u), a * u, "{a:?} {u:?}");
            }
            let u = Q16::from_bits(0xc000);
            assert_eq!(a.mul_unit_add(u, Q16::ONE), a * u + Q16::ONE);
        }
    }

    #[test]
    fn arithmetic_saturates_and_rounds() {
        assert_eq!(Q16::MAX + Q16::ONE, Q16::MAX);
        assert_eq!(Q16::MIN - Q16::ONE, Q16::MIN);
        assert_eq!(-Q16::MIN, Q16::MAX);
        assert_eq!(q(200.0) * q(200.0), Q16::MAX);
        assert_eq!(q(-200.0) * q(200.0), Q16::MIN);
        assert_eq!(q(1.0) / Q16::ZERO, Q16::MAX);
        assert_eq!(q(-1.0) / Q16::ZERO, Q16::MIN);
        assert_eq!(Q16::ZERO / Q16::ZERO, Q16::ZERO);
        assert_eq!(q(1.0) / q(3.0), Q16::from_bits(21845));
        assert_eq!(q(2.0) / q(3.0), Q16::from_bits(43691));
        assert_eq!(Q16::from_f64(1e9), Q16::MAX);
        assert_eq!(Q16::from_f64(f64::NAN), Q16::ZERO);
        assert_eq!(Q16::from_count(40_000), Q16::MAX);
        assert_eq!(Q16::narrow(Q48::from_f64(1e9)), Q16::MAX);
    }

    #[test]
    fn kernels_at_known_points() {
        assert_eq!(q(0.0).exp(), Q16::ONE);
        assert_eq!(q(1.0).exp().to_bits(), 178_145); // e * 65536 = 178145.03
        assert_eq!(q(20.0).exp(), Q16::MAX);
        assert_eq!(q(-20.0).exp(), Q16::ZERO);
        assert_eq!(q(2.0).ln().to_bits(), 45_426); // ln 2 * 65536 = 45426.09
        assert_eq!(Q16::ZERO.ln(), Q16::MIN);
        assert_eq!(q(2.0).sqrt().to_bits(), 92_682); // sqrt 2 * 65536 = 92681.9
        assert_eq!(q(0.0).sigmoid(), Q16::HALF);
        assert_eq!(q(30.0).softplus(), q(30.0));
        assert_eq!(q(0.5).powf(q(2.0)), q(0.25));
        assert_eq!(Q16::ZERO.powf(Q16::ZERO), Q16::ONE);
        assert_eq!(q(0.35).bin(10), 3);
        assert_eq!(Q16::ONE.bin(10), 9);
    }
}
