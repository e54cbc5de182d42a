//! `Real` for `f32` and `f64`: libm kernels, one macro row per type, and the fast logistic
//! kernels (`e^-|x|`, `ln(1 + e)`) the binary and softmax losses run on.

use super::{private, Real};
use libm::Libm;

/// `a b + c` in one rounding: an FMA instruction, which LLVM vectorises. Only where the
/// target has one and the `std` feature links `mul_add` (`core` has no fused multiply-add;
/// `libm`'s `fma` is a call per element). The one place that decides
/// [`FUSED_MULTIPLY_ADD`](super::FUSED_MULTIPLY_ADD).
#[cfg(all(feature = "std", any(target_arch = "aarch64", target_feature = "fma")))]
mod fused {
    extern crate std;

    pub const FUSED: bool = true;

    #[inline(always)]
    pub(super) fn f32(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
    #[inline(always)]
    pub(super) fn f64(a: f64, b: f64, c: f64) -> f64 {
        a.mul_add(b, c)
    }
}

/// `a b + c` in two roundings, where no FMA instruction is known to the build.
#[cfg(not(all(feature = "std", any(target_arch = "aarch64", target_feature = "fma"))))]
mod fused {
    pub const FUSED: bool = false;

    #[inline(always)]
    pub(super) fn f32(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
    #[inline(always)]
    pub(super) fn f64(a: f64, b: f64, c: f64) -> f64 {
        a * b + c
    }
}

pub(super) use fused::FUSED;
use fused::{f32 as fma32, f64 as fma64};

/// `e^-a` for `a >= 0` in f32, branch-free: `a = k ln2 + r` (`k` the nearest integer,
/// Cody-Waite, libm's split of ln 2), `e^-r = 1 - r q(r)` on `|r| <= ln2/2` with `q` the
/// minimax polynomial of degree 5 for the relative error of `e^-r` (2.0e-9, below the
/// degree-7 Taylor polynomial's 3e-9 with two operations fewer; fitted by Lawson's
/// algorithm, coefficients rounded to f32) evaluated in Estrin's form (pairs, then powers of `r^2`:
/// a dependency chain of six steps instead of Horner's ten, for the same one ULP), scaled by
/// `2^-k` built from bits. Results below 2^-126 flush to 0.
#[inline(always)]
fn exp_neg_f32(a: f32) -> f32 {
    const LOG2_E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 6.931_457_519_5e-1; // 0x3f317200, 16 significant bits
    const LN2_LO: f32 = 1.428_606_820_3e-6; // 0x35bfbe8e

    // Adding 1.5 * 2^23 rounds to an integer (to nearest) and leaves it in the low mantissa
    // bits: `k` without a float-to-int conversion, which Rust saturates and which would then
    // not vectorise.
    const SHIFT: f32 = 12_582_912.0;
    let a = a.min(100.0);
    let biased = fma32(a, LOG2_E, SHIFT);
    let k = (biased.to_bits() as i32).wrapping_sub(SHIFT.to_bits() as i32);
    let kf = biased - SHIFT;
    let r = fma32(-kf, LN2_LO, fma32(-kf, LN2_HI, a));
    const Q: [f32; 6] = [
        1.0,
        -0.499_999_94,
        0.166_664_32,
        -0.041_668,
        0.008_374_155_5,
        -0.001_384_365_4,
    ];
    let r2 = r * r;
    let q = fma32(
        r2,
        fma32(r2, fma32(r, Q[5], Q[4]), fma32(r, Q[3], Q[2])),
        fma32(r, Q[1], Q[0]),
    );
    let p = fma32(-r, q, 1.0);
    // 2^-k for k <= 126 from its bits; larger k gives exponent 0 (flush to zero).
    let scale = f32::from_bits(((127 - k).max(0) as u32) << 23);
    p * scale
}

/// `ln(1 + e)` for `e` in `[0, 1]` in f32, branch-free: `2 atanh(s) = 2 s (1 + z P(z))`,
/// `s = e / (2 + e)` in `[0, 1/3]` (no `1 + e` rounding), `z = s^2`, `P` the minimax cubic on
/// `[0, 1/9]` for the relative error (4.5e-9, below the series to `s^13`'s 1.5e-8 with four
/// operations fewer; fitted as `exp_neg_f32`'s; Estrin's form as there).
#[inline(always)]
fn ln1p_unit_f32(e: f32) -> f32 {
    const P: [f32; 4] = [0.333_332_1, 0.200_107_69, 0.140_008_14, 0.140_064_24];
    let s = e / (2.0 + e);
    let z = s * s;
    let z2 = z * z;
    let poly = fma32(
        z,
        fma32(z2, fma32(z, P[3], P[2]), fma32(z, P[1], P[0])),
        1.0,
    );
    2.0 * s * poly
}

/// `e^-a` for `a >= 0` in f64, branch-free, as [`exp_neg_f32`]: Cody-Waite reduction with
/// fdlibm's split of ln 2, then `e^-r` by its Taylor polynomial to degree 13 on
/// `|r| <= ln2/2` (truncation below 4.2e-18 relative) in Estrin's form, scaled by `2^-k`
/// built from bits. Results below 2^-1022 flush to 0.
#[inline(always)]
fn exp_neg_f64(a: f64) -> f64 {
    const LOG2_E: f64 = core::f64::consts::LOG2_E;
    const LN2_HI: f64 = 6.931_471_803_691_238_164_9e-1; // 0x3fe62e42fee00000
    const LN2_LO: f64 = 1.908_214_929_270_587_700_0e-10; // 0x3dea39ef35793c76
    const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
                                                // 1 / j!, j = 0..=13.
    const C: [f64; 14] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5_040.0,
        1.0 / 40_320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
        1.0 / 6_227_020_800.0,
    ];
    let a = a.min(800.0);
    let biased = fma64(a, LOG2_E, SHIFT);
    let k = (biased.to_bits() as i64).wrapping_sub(SHIFT.to_bits() as i64);
    let kf = biased - SHIFT;
    let u = -fma64(-kf, LN2_LO, fma64(-kf, LN2_HI, a));
    let (u2, u4) = (u * u, u * u * (u * u));
    let u8 = u4 * u4;
    let low = fma64(
        u4,
        fma64(u2, fma64(u, C[7], C[6]), fma64(u, C[5], C[4])),
        fma64(u2, fma64(u, C[3], C[2]), fma64(u, C[1], C[0])),
    );
    let high = fma64(
        u4,
        fma64(u, C[13], C[12]),
        fma64(u2, fma64(u, C[11], C[10]), fma64(u, C[9], C[8])),
    );
    let p = fma64(u8, high, low);
    // 2^-k for k <= 1022 from its bits; larger k gives exponent 0 (flush to zero).
    let scale = f64::from_bits(((1023 - k).max(0) as u64) << 52);
    p * scale
}

/// `ln(1 + e)` for `e` in `[0, 1]` in f64, branch-free: above 1/2 as
/// `ln 2 + ln(1 + (e - 1) / 2)` (both steps exact there), so `f` lies in `[-1/4, 1/2]`; then
/// fdlibm's form `f - (f^2/2 - s (f^2/2 + R))`, `s = f / (2 + f)` in `[-1/7, 1/5]`,
/// `R = 2 (z/3 + z^2/5 + ... + z^10/21)`, `z = s^2` (truncation below 2e-17 relative): the
/// leading `f` is exact and the rounding falls on the small correction.
#[inline(always)]
fn ln1p_unit_f64(e: f64) -> f64 {
    // 2 / (2j + 3), j = 0..10.
    const C: [f64; 10] = [
        2.0 / 3.0,
        2.0 / 5.0,
        2.0 / 7.0,
        2.0 / 9.0,
        2.0 / 11.0,
        2.0 / 13.0,
        2.0 / 15.0,
        2.0 / 17.0,
        2.0 / 19.0,
        2.0 / 21.0,
    ];
    let upper = e > 0.5;
    let f = if upper { (e - 1.0) * 0.5 } else { e };
    let base = if upper { core::f64::consts::LN_2 } else { 0.0 };
    let s = f / (2.0 + f);
    let z = s * s;
    let (z2, z4) = (z * z, z * z * (z * z));
    let low = fma64(
        z4,
        fma64(z2, fma64(z, C[7], C[6]), fma64(z, C[5], C[4])),
        fma64(z2, fma64(z, C[3], C[2]), fma64(z, C[1], C[0])),
    );
    let r = z * fma64(z4 * z4, fma64(z, C[9], C[8]), low);
    let hfsq = 0.5 * f * f;
    base + (f - fma64(-s, hfsq + r, hfsq))
}

macro_rules! impl_float {
    // Methods that are libm's function of the same type: `name => libm_name` each.
    (@libm $t:ident: $($name:ident => $libm:ident),*) => {
        $(
            #[inline]
            fn $name(self) -> Self {
                Libm::<$t>::$libm(self)
            }
        )*
    };
    (@exp_ln1p fast $exp:ident $ln1p:ident) => {
        #[inline(always)]
        fn exp_ln1p_neg_abs(self) -> (Self, Self) {
            let e = $exp(self.abs());
            (e, $ln1p(e))
        }
        #[inline(always)]
        fn exp_neg_abs(self) -> Self {
            $exp(self.abs())
        }
        #[inline(always)]
        fn logistic_stage(self) -> Self {
            $exp(self.abs())
        }
        #[inline(always)]
        fn logistic_stage_ln(e: Self) -> Self {
            $ln1p(e)
        }
        #[inline(always)]
        fn logistic_finish(self, e: Self, lp: Self) -> (Self, Self, Self) {
            private::float_finish(self, e, lp)
        }
    };
    ($t:ident, exp_ln1p = ($fexp:ident, $fln1p:ident), fma = $fma:ident, acc = $acc:ty) => {
        impl private::Sealed for $t {}
        impl private::Unit for $t {
            #[inline(always)]
            fn mul_unit_add(self, u: Self, b: Self) -> Self {
                Real::mul_add(self, u, b)
            }
        }

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
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                $fma(self, a, b)
            }
            impl_float!(@libm $t: exp => exp, ln_1p => log1p, sqrt => sqrt);
            #[inline]
            fn sigmoid(self) -> Self {
                if self >= 0.0 {
                    1.0 / (1.0 + Libm::<$t>::exp(-self))
                } else {
                    let e = Libm::<$t>::exp(self);
                    e / (1.0 + e)
                }
            }
            #[inline]
            fn div_count(self, n: usize) -> Self {
                if n == 0 {
                    self
                } else {
                    self / n as $t
                }
            }
        }

        impl private::Kernels for $t {
            type Stage = Self;

            impl_float!(@libm $t: exp_m1 => expm1, ln => log);
            #[inline]
            fn powf(self, e: Self) -> Self {
                Libm::<$t>::pow(self, e)
            }
            #[inline(never)]
            fn div_avg_factor(self, f: Self) -> Self {
                self / (f + f32::EPSILON as $t)
            }
            #[inline]
            fn softplus(self) -> Self {
                Real::max(self, 0.0) + Libm::<$t>::log1p(Libm::<$t>::exp(-<$t>::abs(self)))
            }
            #[inline]
            fn sin_cos(self) -> (Self, Self) {
                (Libm::<$t>::sin(self), Libm::<$t>::cos(self))
            }
            #[inline]
            fn floor_int(self) -> i64 {
                // `as i64` saturates (NaN -> 0).
                Libm::<$t>::floor(self) as i64
            }
            #[inline]
            fn from_int(i: i64) -> Self {
                i as $t
            }
            #[inline]
            fn floor_count(self) -> u64 {
                // `as u64` saturates (negative and NaN -> 0).
                Libm::<$t>::floor(self) as u64
            }
            #[inline]
            fn bin(self, bins: usize) -> usize {
                if bins > Self::SMALL_BINS {
                    // `as usize` saturates (NaN -> 0), so this cannot panic or wrap.
                    let b = Libm::<$t>::floor(self * bins as $t) as usize;
                    return b.min(bins.saturating_sub(1));
                }
                self.bin_small(bins) as usize
            }
            #[inline(always)]
            fn bin_small(self, bins: usize) -> u32 {
                // Adding SHIFT (1.5 * 2^(mantissa bits)) rounds a value below 2^22 to an
                // integer and leaves it in the low mantissa bits, so the floor and its
                // conversion need no call and no saturating cast: the form vectorises.
                const SHIFT: $t = 1.5 * (1u64 << (<$t>::MANTISSA_DIGITS - 1)) as $t;
                let top = bins.saturating_sub(1);
                // Clamped first (std's max/min take the number over a NaN, so NaN -> 0):
                // floor(clamp(y)) = clamp(floor(y)) as the bounds are whole.
                let y = (self * bins as $t).max(0.0).min(top as $t);
                let nearest = (y + SHIFT) - SHIFT;
                let floor = if nearest > y { nearest - 1.0 } else { nearest };
                ((floor + SHIFT).to_bits() - SHIFT.to_bits()) as u32
            }
            impl_float!(@exp_ln1p fast $fexp $fln1p);
        }
    };
}

// libm's functions of each type through `libm::Libm<T>` (inline wrappers of `expf`, `exp`, ...).
impl_float!(
    f32,
    exp_ln1p = (exp_neg_f32, ln1p_unit_f32),
    fma = fma32,
    acc = f64
);
impl_float!(
    f64,
    exp_ln1p = (exp_neg_f64, ln1p_unit_f64),
    fma = fma64,
    acc = f64
);

#[cfg(test)]
mod tests {
    use crate::num::private::Kernels;
    use crate::Real;

    #[test]
    fn sigmoid_and_softplus_at_the_extremes() {
        assert_eq!(Real::sigmoid(1e4f32), 1.0);
        assert_eq!(Real::sigmoid(-1e4f32), 0.0);
        assert_eq!(Kernels::softplus(1e4f32), 1e4);
        assert_eq!(Kernels::softplus(-1e4f64), 0.0);
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
        assert_eq!((-0.5f32).bin(10), 0);
        assert_eq!(f32::INFINITY.bin(10), 9);
        assert_eq!(0.999_999f64.bin(30), 29);
        assert_eq!(0.1f32.bin(3), 0);
        assert_eq!(0.5f32.bin(1 << 30), 1 << 29);
        // Against the plain floor, on a sweep through [0, 1] and past it.
        for i in 0..=200_000u32 {
            let g = i as f32 / 100_000.0;
            for bins in [1usize, 10, 30, 1000] {
                let plain = (libm::floorf(g * bins as f32) as usize).min(bins - 1);
                assert_eq!(g.bin(bins), plain, "{g} in {bins} bins");
            }
        }
    }
}
