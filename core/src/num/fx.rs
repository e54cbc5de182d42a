//! Integer kernels of the fixed-point types: every input and output is a raw value with 16
//! fractional bits held in an `i128` (the caller saturates to its own width). Internally the
//! kernels work in Q62 and round once, at the end, to Q16.
//!
//! ```text
//! exp:  x = n ln2 + r, |r| <= ln2/2 (reduction in Q62);  e^r by Taylor to r^13/13!
//!       (|r|^14/14! < 2^-53);  e^x = e^r 2^n
//! ln:   v = m 2^e, m in [sqrt(2)/2, sqrt(2));  ln m = 2 atanh(s), s = (m-1)/(m+1), |s| < 0.172,
//!       series to s^21/21 (< 2^-58);  ln v = ln m + e ln2
//! ```
//! Max error over every input of the domain each serves, measured by exhaustive sweeps in
//! host-tests (`fixed_kernels.rs`, bound in `tolerance.rs`): **0.5 LSB, correctly rounded**, for
//! exp and exp_m1 on [-32, 16], ln on (0, 256], ln_1p on (-1, 16], sqrt on [0, 1024], sigmoid
//! and softplus on [-64, 64], pow on [0, 1] for gamma in {0.25, 0.5, ..., 5}, and sin/cos on
//! [-pi, pi] (the internal
//! Q32/Q62 error is far below the final rounding). Beyond those domains results saturate.

/// 1 in Q62.
const ONE_62: i128 = 1 << 62;
/// ln 2 in Q62: 0x2c5c85fdf473de6b (60-digit decimal, rounded).
const LN2_62: i128 = 3_196_577_161_300_663_915;
/// sqrt 2 in Q62 (60-digit decimal, rounded).
const SQRT2_62: i128 = 6_521_908_912_666_391_106;
/// pi / 2 in Q62 (60-digit decimal, rounded).
const HALF_PI_62: i128 = 7_244_019_458_077_122_842;
/// A result "too large for any fixed type here" (callers saturate it).
pub(crate) const HUGE: i128 = 1 << 100;

/// `v / 2^shift` rounded to nearest (ties up), `shift < 127`.
#[inline]
pub(crate) fn round_shift(v: i128, shift: u32) -> i128 {
    if shift == 0 {
        v
    } else {
        v.saturating_add(1i128 << (shift - 1)) >> shift
    }
}

/// `n / d` rounded to nearest (ties away from zero); `d != 0`.
#[inline]
pub(crate) fn div_round(n: i128, d: i128) -> i128 {
    let (na, da) = (n.unsigned_abs(), d.unsigned_abs());
    let q = ((na + da / 2) / da) as i128;
    if (n < 0) != (d < 0) {
        -q
    } else {
        q
    }
}

/// `a * b` of two Q16 values, rounded.
#[inline]
pub(crate) fn mul(a: i128, b: i128) -> i128 {
    round_shift(a.saturating_mul(b), 16)
}

/// `a / b` of two Q16 values, rounded; `x / 0` is `HUGE` with the sign of `x` (`0 / 0 = 0`).
#[inline]
pub(crate) fn div(a: i128, b: i128) -> i128 {
    if b == 0 {
        a.signum() * HUGE
    } else {
        div_round(a.saturating_mul(1 << 16), b)
    }
}

/// `e^x` for `x` in Q62, as `(m, n)` with `e^x = m 2^(n - 62)`, `m` in `[0.70, 1.42]` (Q62);
/// `None` above 64 (callers saturate), `Some((0, 0))` below -64.
fn exp_parts(x62: i128) -> Option<(i128, i128)> {
    if x62 > (64 << 62) {
        return None;
    }
    if x62 < -(64 << 62) {
        return Some((0, 0));
    }
    let n = (x62 + LN2_62 / 2).div_euclid(LN2_62);
    let r = x62 - n * LN2_62;
    let (mut term, mut sum) = (ONE_62, ONE_62);
    for k in 1..=13 {
        term = ((term * r) >> 62) / k;
        sum += term;
    }
    Some((sum, n))
}

/// `e^x` for `x` in Q62, rounded once to `frac` fractional bits (`HUGE` when too large).
fn exp_to(x62: i128, frac: i128) -> i128 {
    let Some((m, n)) = exp_parts(x62) else {
        return HUGE;
    };
    let shift = 62 - n - frac;
    if shift >= 127 {
        0
    } else if shift >= 0 {
        round_shift(m, shift as u32)
    } else if shift > -64 {
        m << -shift
    } else {
        HUGE
    }
}

/// `ln(v / 2^frac)` in Q62 for `v > 0` (0 for `v = 0`, which callers exclude).
fn ln_q62(v: u128, frac: u32) -> i128 {
    if v == 0 {
        return 0;
    }
    let mut e = 127 - v.leading_zeros() as i128;
    let mut m = if e >= 62 {
        (v >> (e - 62)) as i128
    } else {
        (v << (62 - e)) as i128
    };
    if m > SQRT2_62 {
        m >>= 1;
        e += 1;
    }
    let s = ((m - ONE_62) << 62) / (m + ONE_62);
    let s2 = (s * s) >> 62;
    let (mut term, mut sum) = (s, s);
    for k in 1..=10 {
        term = (term * s2) >> 62;
        sum += term / (2 * k + 1);
    }
    2 * sum + (e - frac as i128) * LN2_62
}

/// `e^x` (Q16).
pub(crate) fn exp(x: i128) -> i128 {
    exp_to(x.saturating_mul(1 << 46), 16)
}

/// `e^x - 1` (Q16).
pub(crate) fn exp_m1(x: i128) -> i128 {
    let x62 = x.saturating_mul(1 << 46);
    let e = exp_to(x62, 62);
    if e >= HUGE {
        HUGE
    } else {
        round_shift(e - ONE_62, 46)
    }
}

/// `ln x` (Q16) for `x > 0`; `-HUGE` otherwise.
pub(crate) fn ln(x: i128) -> i128 {
    if x <= 0 {
        -HUGE
    } else {
        round_shift(ln_q62(x as u128, 16), 46)
    }
}

/// `ln(1 + x)` (Q16) for `x > -1`; `-HUGE` otherwise.
pub(crate) fn ln_1p(x: i128) -> i128 {
    ln(x.saturating_add(1 << 16))
}

/// `sqrt x` (Q16), rounded to nearest; 0 for `x <= 0`.
pub(crate) fn sqrt(x: i128) -> i128 {
    if x <= 0 {
        return 0;
    }
    let v = (x as u128) << 16;
    let r = v.isqrt();
    // Round to nearest: r + 1 when v - r^2 > r (i.e. v > (r + 1/2)^2).
    (r + u128::from(v - r * r > r)) as i128
}

/// `x^e` (Q16) for `x >= 0`, `e >= 0`: integer exponents up to 64 by repeated squaring in Q62
/// when `x <= 1`, otherwise `exp(e ln x)` in Q62. `0^0 = 1`, `0^e = 0`.
pub(crate) fn pow(x: i128, e: i128) -> i128 {
    if e == 0 {
        return 1 << 16;
    }
    if x <= 0 {
        return 0;
    }
    if e & 0xffff == 0 && e <= 64 << 16 && x <= 1 << 16 {
        let (mut base, mut acc, mut k) = (x << 46, ONE_62, e >> 16);
        while k > 0 {
            if k & 1 == 1 {
                acc = round_shift(acc * base, 62);
            }
            base = round_shift(base * base, 62);
            k >>= 1;
        }
        return round_shift(acc, 46);
    }
    let y = ln_q62(x as u128, 16).saturating_mul(e) >> 16;
    exp_to(y, 16)
}

/// `e^-|x|` in Q62.
fn exp_neg_abs_62(x: i128) -> i128 {
    exp_to(
        x.saturating_abs().saturating_mul(1 << 46).saturating_neg(),
        62,
    )
}

/// The logistic function (Q16).
pub(crate) fn sigmoid(x: i128) -> i128 {
    let e = exp_neg_abs_62(x);
    let big = (1i128 << 124) / (ONE_62 + e);
    let out = if x >= 0 { big } else { (e * big) >> 62 };
    round_shift(out, 46)
}

/// `ln(1 + e^x)` (Q16).
pub(crate) fn softplus(x: i128) -> i128 {
    let lp = ln_q62((ONE_62 + exp_neg_abs_62(x)) as u128, 62);
    round_shift(x.max(0).saturating_mul(1 << 46).saturating_add(lp), 46)
}

/// `(sin x, cos x)` (Q16): `x = k pi/2 + r`, `|r| <= pi/4`, Taylor to `r^23` in Q62, then the
/// quadrant's signs and swap.
pub(crate) fn sin_cos(x: i128) -> (i128, i128) {
    let x62 = x.saturating_mul(1 << 46);
    let k = (x62 + HALF_PI_62 / 2).div_euclid(HALF_PI_62);
    let r = x62 - k * HALF_PI_62;
    let r2 = (r * r) >> 62;
    let (mut st, mut s) = (r, r);
    let (mut ct, mut c) = (ONE_62, ONE_62);
    for n in 1..=11 {
        st = -((st * r2) >> 62) / ((2 * n) * (2 * n + 1));
        s += st;
        ct = -((ct * r2) >> 62) / ((2 * n - 1) * (2 * n));
        c += ct;
    }
    let (sin, cos) = match k.rem_euclid(4) {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    };
    (round_shift(sin, 46), round_shift(cos, 46))
}
