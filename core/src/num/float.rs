//! `Real` for `f32` and `f64`: libm kernels, one macro row per type.

use super::{private, Real};

macro_rules! impl_float {
    (
        $t:ty, acc = $acc:ty,
        exp = $exp:path, exp_m1 = $expm1:path, ln = $ln:path, ln_1p = $ln1p:path,
        sqrt = $sqrt:path, pow = $pow:path, floor = $floor:path, sin = $sin:path, cos = $cos:path
    ) => {
        impl private::Sealed for $t {}

        impl Real for $t {
            type Acc = $acc;

            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const HALF: Self = 0.5;
            const EPSILON: Self = <$t>::EPSILON;

            #[inline]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn from_count(n: u64) -> Self {
                n as $t
            }
            #[inline]
            fn widen(self) -> $acc {
                self as $acc
            }
            #[inline]
            fn narrow(acc: $acc) -> Self {
                acc as $t
            }
            #[inline]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline]
            fn exp_m1(self) -> Self {
                $expm1(self)
            }
            #[inline]
            fn ln(self) -> Self {
                $ln(self)
            }
            #[inline]
            fn ln_1p(self) -> Self {
                $ln1p(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                $sqrt(self)
            }
            #[inline]
            fn powf(self, e: Self) -> Self {
                $pow(self, e)
            }
            #[inline]
            fn sigmoid(self) -> Self {
                if self >= 0.0 {
                    1.0 / (1.0 + $exp(-self))
                } else {
                    let e = $exp(self);
                    e / (1.0 + e)
                }
            }
            #[inline]
            fn softplus(self) -> Self {
                Real::max(self, 0.0) + $ln1p($exp(-<$t>::abs(self)))
            }
            #[inline]
            fn div_count(self, n: usize) -> Self {
                if n == 0 {
                    self
                } else {
                    self / n as $t
                }
            }
            #[inline]
            fn sin_cos(self) -> (Self, Self) {
                ($sin(self), $cos(self))
            }
            #[inline]
            fn floor_int(self) -> i64 {
                // `as i64` saturates (NaN -> 0).
                $floor(self) as i64
            }
            #[inline]
            fn from_int(i: i64) -> Self {
                i as $t
            }
            #[inline]
            fn floor_count(self) -> u64 {
                // `as u64` saturates (negative and NaN -> 0).
                $floor(self) as u64
            }
            #[inline]
            fn bin(self, bins: usize) -> usize {
                // `as usize` saturates (NaN -> 0), so this cannot panic or wrap.
                let b = $floor(self * bins as $t) as usize;
                b.min(bins.saturating_sub(1))
            }
        }
    };
}

impl_float!(
    f32,
    acc = f64,
    exp = libm::expf,
    exp_m1 = libm::expm1f,
    ln = libm::logf,
    ln_1p = libm::log1pf,
    sqrt = libm::sqrtf,
    pow = libm::powf,
    floor = libm::floorf,
    sin = libm::sinf,
    cos = libm::cosf
);
impl_float!(
    f64,
    acc = f64,
    exp = libm::exp,
    exp_m1 = libm::expm1,
    ln = libm::log,
    ln_1p = libm::log1p,
    sqrt = libm::sqrt,
    pow = libm::pow,
    floor = libm::floor,
    sin = libm::sin,
    cos = libm::cos
);

#[cfg(test)]
mod tests {
    use crate::Real;

    #[test]
    fn sigmoid_and_softplus_at_the_extremes() {
        assert_eq!(Real::sigmoid(1e4f32), 1.0);
        assert_eq!(Real::sigmoid(-1e4f32), 0.0);
        assert_eq!(Real::softplus(1e4f32), 1e4);
        assert_eq!(Real::softplus(-1e4f64), 0.0);
        let s = Real::sigmoid(-30.0f64);
        assert!(
            (s - 9.357622968839299e-14).abs() < 1e-27,
            "sigmoid(-30) = {s}"
        );
    }

    #[test]
    fn bin_clamps() {
        assert_eq!(1.0f32.bin(10), 9);
        assert_eq!(0.0f64.bin(10), 0);
        assert_eq!(0.35f64.bin(10), 3);
        assert_eq!(f32::NAN.bin(10), 0);
    }
}
