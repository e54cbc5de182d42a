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
//! host-tests (`fixed_kernels.rs`): **0.5 LSB (`FIXED_KERNEL_LSB`), correctly rounded**, for
//! exp and exp_m1 on [-32, 16], ln on (0, 256], ln_1p on (-1, 16], sqrt on [0, 1024], sigmoid
//! and softplus on [-64, 64], pow on [0, 1] for gamma in {0.25, 0.5, ..., 5}, and sin/cos on
//! [-pi, pi] (the internal
//! Q32/Q62 error is far below the final rounding). Beyond those domains results saturate.
//!
//! The binary losses' hot path uses the logistic kernel of [`exp_neg_31`] instead: `sigma(x)`, `sigma(-x)` and
//! `ln(1 + e^-|x|)` from 128-entry tables and 64-bit products of 32-bit values (no division,
//! no 128-bit arithmetic), max error **0.50008 LSB (`FIXED_LOGISTIC_LSB`)** over every input of
//! [-64, 64]; the softmax losses use its first half, [`exp_neg_abs`] (`e^-|x|`, 0.50004 LSB
//! (`FIXED_EXP_NEG_ABS_LSB`)).

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
    // `max(1)`: `d != 0` here, but the compiler cannot see it (no panic path).
    let q = ((na + da / 2) / da.max(1)) as i128;
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
    // `m + ONE_62` is positive, so neither division can fail; `checked_div` keeps a panic path
    // out of builds that do not prove it (opt-level "s" with LTO, as a C firmware links it).
    let s = ((m - ONE_62) << 62).checked_div(m + ONE_62).unwrap_or(0);
    let s2 = (s * s) >> 62;
    let (mut term, mut sum) = (s, s);
    for k in 1..=10 {
        term = (term * s2) >> 62;
        sum += term.checked_div(2 * k + 1).unwrap_or(0);
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
    let big = (1i128 << 124).checked_div(ONE_62 + e).unwrap_or(0); // ONE_62 + e > 0
    let out = if x >= 0 { big } else { (e * big) >> 62 };
    round_shift(out, 46)
}

/// `ln(1 + e^x)` (Q16).
pub(crate) fn softplus(x: i128) -> i128 {
    let lp = ln_q62((ONE_62 + exp_neg_abs_62(x)) as u128, 62);
    round_shift(x.max(0).saturating_mul(1 << 46).saturating_add(lp), 46)
}

/// `log2(e)` in Q27.
const LOG2E_27: i64 = 193635251;
/// `ln 2` in Q31.
const LN2_31: i64 = 1488522236;

/// `2^(-j/128)` in Q31, `j = 0..128` (rounded).
const EXP2_NEG: [u32; 128] = [
    0x80000000, 0x7f4f08ae, 0x7e9f0606, 0x7deff6b6, 0x7d41d96e, 0x7c94acde, 0x7be86fba, 0x7b3d20b6,
    0x7a92be8b, 0x79e947ef, 0x7940bb9e, 0x78991854, 0x77f25cce, 0x774c87cc, 0x76a7980f, 0x76038c5b,
    0x75606374, 0x74be1c20, 0x741cb528, 0x737c2d55, 0x72dc8374, 0x723db650, 0x719fc4b9, 0x7102ad80,
    0x70666f76, 0x6fcb096f, 0x6f307a41, 0x6e96c0c3, 0x6dfddbcc, 0x6d65ca38, 0x6cce8ae1, 0x6c381ca6,
    0x6ba27e65, 0x6b0daeff, 0x6a79ad56, 0x69e6784d, 0x69540ec9, 0x68c26fb1, 0x683199ed, 0x67a18c68,
    0x6712460b, 0x6683c5c3, 0x65f60a7f, 0x6569132f, 0x64dcdec3, 0x64516c2e, 0x63c6ba64, 0x633cc85b,
    0x62b39509, 0x622b1f66, 0x61a3666d, 0x611c6919, 0x60962665, 0x60109d51, 0x5f8bccdb, 0x5f07b405,
    0x5e8451d0, 0x5e01a53f, 0x5d7fad59, 0x5cfe6923, 0x5c7dd7a4, 0x5bfdf7e5, 0x5b7ec8f2, 0x5b0049d4,
    0x5a82799a, 0x5a055751, 0x5988e209, 0x590d18d3, 0x5891fac1, 0x581786e6, 0x579dbc57, 0x57249a29,
    0x56ac1f75, 0x56344b52, 0x55bd1cdb, 0x55469329, 0x54d0ad5a, 0x545b6a8b, 0x53e6c9da, 0x5372ca68,
    0x52ff6b55, 0x528cabc3, 0x521a8ad7, 0x51a907b4, 0x51382182, 0x50c7d765, 0x50582888, 0x4fe91413,
    0x4f7a9930, 0x4f0cb70c, 0x4e9f6cd4, 0x4e32b9b4, 0x4dc69cdd, 0x4d5b157e, 0x4cf022ca, 0x4c85c3f1,
    0x4c1bf829, 0x4bb2bea5, 0x4b4a169c, 0x4ae1ff43, 0x4a7a77d4, 0x4a137f88, 0x49ad1598, 0x4947393f,
    0x48e1e9ba, 0x487d2646, 0x4818ee22, 0x47b5408c, 0x47521cc6, 0x46ef8210, 0x468d6fae, 0x462be4e2,
    0x45cae0f2, 0x456a6323, 0x450a6abb, 0x44aaf702, 0x444c0740, 0x43ed9ac0, 0x438fb0cb, 0x433248ae,
    0x42d561b4, 0x4278fb2b, 0x421d1462, 0x41c1aca7, 0x4166c34c, 0x410c57a2, 0x40b268fa, 0x4058f6a8,
];
/// `ln c_j` in Q31, `c_j = 1 + j/128 + 1/256`, the middle of `[1 + j/128, 1 + (j + 1)/128)`.
const LN_MID: [u32; 128] = [
    0x007fc02b, 0x017dc476, 0x0279d488, 0x0373f805, 0x046c3662, 0x056296ec, 0x065720c4, 0x0749dae3,
    0x083acc1b, 0x0929fb18, 0x0a176e5f, 0x0b032c55, 0x0bed3b37, 0x0cd5a123, 0x0dbc6416, 0x0ea189eb,
    0x0f851860, 0x10671513, 0x11478584, 0x12266f19, 0x1303d719, 0x13dfc2b1, 0x14ba36f4, 0x159338da,
    0x166acd42, 0x1740f8f5, 0x1815c0a1, 0x18e928df, 0x19bb362e, 0x1a8becfd, 0x1b5b519f, 0x1c296856,
    0x1cf6354e, 0x1dc1bca1, 0x1e8c0253, 0x1f550a56, 0x201cd88b, 0x20e370c0, 0x21a8d6af, 0x226d0e05,
    0x23301a5c, 0x23f1ff3d, 0x24b2c022, 0x25726075, 0x2630e393, 0x26ee4cc5, 0x27aa9f4c, 0x2865de54,
    0x29200d01, 0x29d92e65, 0x2a914587, 0x2b485562, 0x2bfe60e1, 0x2cb36ae6, 0x2d677644, 0x2e1a85c5,
    0x2ecc9c24, 0x2f7dbc14, 0x302de83b, 0x30dd2334, 0x318b6f91, 0x3238cfd7, 0x32e54682, 0x3390d606,
    0x343b80ca, 0x34e5492d, 0x358e3185, 0x36363c1d, 0x36dd6b3a, 0x3783c116, 0x38293fe2, 0x38cde9c8,
    0x3971c0e9, 0x3a14c75d, 0x3ab6ff36, 0x3b586a7c, 0x3bf90b32, 0x3c98e351, 0x3d37f4cb, 0x3dd6418d,
    0x3e73cb79, 0x3f10946e, 0x3fac9e42, 0x4047eac5, 0x40e27bbf, 0x417c52f5, 0x42157221, 0x42addafb,
    0x43458f33, 0x43dc9072, 0x4472e05e, 0x45088095, 0x459d72af, 0x4631b840, 0x46c552d6, 0x475843fa,
    0x47ea8d2e, 0x487c2ff2, 0x490d2dbd, 0x499d8805, 0x4a2d4038, 0x4abc57c1, 0x4b4ad005, 0x4bd8aa65,
    0x4c65e83f, 0x4cf28ae9, 0x4d7e93b7, 0x4e0a03f9, 0x4e94dcfa, 0x4f1f2000, 0x4fa8ce4e, 0x5031e922,
    0x50ba71b7, 0x51426945, 0x51c9d0fd, 0x5250aa0f, 0x52d6f5a5, 0x535cb4e9, 0x53e1e8fd, 0x54669303,
    0x54eab417, 0x556e4d53, 0x55f15fcd, 0x5673ec98, 0x56f5f4c4, 0x5777795c, 0x57f87b6b, 0x5878fbf7,
];
/// `1 / c_j` in Q31.
const RECIP_MID: [u32; 128] = [
    0x7f807f80, 0x7e8472a8, 0x7d8c42b3, 0x7c97d911, 0x7ba71fe1, 0x7aba01eb, 0x79d06a96, 0x78ea45e7,
    0x78078078, 0x77280773, 0x764bc88c, 0x7572b202, 0x749cb290, 0x73c9b971, 0x72f9b658, 0x722c996c,
    0x71625344, 0x709ad4e5, 0x6fd60fba, 0x6f13f596, 0x6e5478ac, 0x6d978b8f, 0x6cdd212b, 0x6c252cc7,
    0x6b6fa1fe, 0x6abc74be, 0x6a0b9945, 0x695d041e, 0x68b0aa1f, 0x68068068, 0x675e7c5e, 0x66b893a9,
    0x6614bc36, 0x6572ec30, 0x64d319fe, 0x64353c48, 0x639949ec, 0x62ff3a02, 0x626703d8, 0x61d09ef3,
    0x613c030a, 0x60a92806, 0x60180602, 0x5f889545, 0x5eface49, 0x5e6ea9af, 0x5de42046, 0x5d5b2b08,
    0x5cd3c315, 0x5c4de1b6, 0x5bc9805c, 0x5b46989a, 0x5ac5242b, 0x5a451cea, 0x59c67cd8, 0x59493e15,
    0x58cd5ae2, 0x5852cda1, 0x57d990d1, 0x57619f10, 0x56eaf319, 0x567587c5, 0x56015805, 0x558e5eea,
    0x551c979b, 0x54abfd5b, 0x543c8b84, 0x53ce3d8b, 0x53610efb, 0x52f4fb77, 0x5289feb6, 0x52201488,
    0x51b738d1, 0x514f678b, 0x50e89cc3, 0x5082d499, 0x501e0b44, 0x4fba3d0b, 0x4f576647, 0x4ef58365,
    0x4e9490e2, 0x4e348b4e, 0x4dd56f47, 0x4d77397e, 0x4d19e6b4, 0x4cbd73b6, 0x4c61dd64, 0x4c0720ab,
    0x4bad3a88, 0x4b542805, 0x4afbe639, 0x4aa4724c, 0x4a4dc96f, 0x49f7e8e3, 0x49a2cdf3, 0x494e75fa,
    0x48fade5c, 0x48a8048b, 0x4855e601, 0x48048048, 0x47b3d0f2, 0x4763d59d, 0x47148bf0, 0x46c5f1a0,
    0x46780468, 0x462ac20e, 0x45de2864, 0x45923544, 0x4546e690, 0x44fc3a35, 0x44b22e28, 0x4468c067,
    0x441feef8, 0x43d7b7eb, 0x43901956, 0x43491159, 0x43029e1a, 0x42bcbdc9, 0x42776e9b, 0x4232aece,
    0x41ee7ca7, 0x41aad672, 0x4167ba82, 0x41252730, 0x40e31ade, 0x40a193f2, 0x406090d9, 0x40201008,
];

/// 1 in Q31.
const ONE_31: i64 = 1 << 31;

/// `a * b >> 31` of two Q31 values below 2^32 in magnitude (floor).
#[inline(always)]
fn mul_31(a: i64, b: i64) -> i64 {
    (a * b) >> 31
}

/// A Q31 value in `[0, 2]` rounded to Q16 (ties up).
#[inline(always)]
fn q31_to_q16(v: i64) -> i32 {
    ((v + (1 << 14)) >> 15) as i32
}

/// The Q15.16 logistic kernel, `(sigma(|x|), sigma(-|x|), ln(1 + e^-|x|))` of a Q16 raw `x`,
/// each rounded once to Q16 from Q31, with 64-bit multiplications of 32-bit values only (no
/// division, no loop):
///
/// ```text
/// e^-a = 2^-(a log2 e) = 2^-k 2^(-j/128) e^(-u),  u = r ln2 < ln2/128: e^-u to u^3 (< 2^-34)
/// w = 1 + e^-a = c_i (1 + d),  c_i = 1 + i/128 + 1/256 (table),  |d| <= 2^-8
/// ln w = ln c_i + ln(1 + d)  (to d^3, < 2^-34);   1/w = (1/c_i) / (1 + d)  (to d^3, < 2^-32)
/// sigma(-a) = e^-a / w
/// ```
/// The Q31 results are within a few 2^-31 of the exact values, so each Q16 result is the
/// correctly rounded one except within 8e-5 LSB of a tie: max error 0.50008 LSB
/// (`FIXED_LOGISTIC_LSB`; host-tests `fixed_kernels.rs` sweeps every input of [-64, 64]). `|x| >= 16` gives `(1, 0, 0)`, the
/// rounded values there.
///
/// In three stages: this one, then [`ln1p_31`] and [`logistic_recip`] of its value (a loop
/// over a block runs them one at a time; `Real::logistic_parts` composes them); `|x| >= 16`
/// needs no branch of its own (`e` is below 2^-22 there, and 0 from 23).
///
/// This stage: `e^-|x|` in Q31 (in `[0, 2^31]`), without branches and in unsigned arithmetic
/// (every intermediate is non-negative, so the floors are those of signed arithmetic): a loop
/// of it over a block vectorises (64-bit lanes, a gather for the table) where the target has
/// 64-bit vector multiplies (AVX2).
#[inline(always)]
pub(crate) fn exp_neg_31(x: i32) -> u32 {
    const ONE: u64 = 1 << 31;
    let mul = |a: u64, b: u64| (a * b) >> 31;
    // a log2(e) = k + j/128 + r in Q43, with a <= 2^31 (Q16), so the product is below 2^59;
    // 2^-k of a Q31 value is 0 from k = 32 (the shift is capped at 63).
    let a = u64::from(x.unsigned_abs());
    let y = a * LOG2E_27 as u64;
    let k = y >> 43;
    let j = ((y >> 36) & 127) as usize;
    let u = mul((y & ((1 << 36) - 1)) >> 5, LN2_31 as u64) >> 7;
    // e^-u = 1 - u (1 - u (1/2 - u/6)).
    let t = ONE / 2 - mul(u, ONE / 6);
    let t = ONE - mul(u, t);
    let p = ONE - mul(u, t);
    (mul(u64::from(EXP2_NEG.get(j).copied().unwrap_or(1 << 31)), p) >> k.min(63)) as u32
}

/// `e^-|x|` (Q16) from [`exp_neg_31`], rounded once: within 0.50004 LSB
/// (`FIXED_EXP_NEG_ABS_LSB`; host-tests `fixed_kernels.rs`, every input of [-64, 64]).
#[inline]
pub(crate) fn exp_neg_abs(x: i32) -> i32 {
    q31_to_q16(i64::from(exp_neg_31(x)))
}

/// `w = 1 + e` (`e` in Q31, in `[0, 2^31]`) as `c_i (1 + d)`: the table index `i` and `d`
/// in Q31.
#[inline(always)]
fn split_w(e: u32) -> (usize, i64) {
    let e = i64::from(e);
    // w = 1 + e in [1, 2]: its 128th (e = 1 falls in the last one).
    let i = ((e >> 24) as usize).min(127);
    let recip_c = i64::from(RECIP_MID.get(i).copied().unwrap_or(1 << 31));
    (i, mul_31(e - ((i as i64) << 24) - (1 << 23), recip_c))
}

/// `ln(1 + e)` rounded to Q16, of `e` in Q31 (in `[0, 2^31]`): the second stage of the
/// logistic kernel (see [`exp_neg_31`]).
#[inline(always)]
pub(crate) fn ln1p_31(e: u32) -> i32 {
    let (i, d) = split_w(e);
    let ln_c = i64::from(LN_MID.get(i).copied().unwrap_or(0));
    // ln(1 + d) = d (1 - d (1/2 - d/3)).
    let t = ONE_31 / 2 - mul_31(d, ONE_31 / 3);
    q31_to_q16(ln_c + mul_31(d, ONE_31 - mul_31(d, t)))
}

/// `(1 / (1 + e), e / (1 + e))` rounded to Q16, of `e` in Q31 (in `[0, 2^31]`): the last
/// stage of the logistic kernel (see [`exp_neg_31`]).
#[inline(always)]
pub(crate) fn logistic_recip(e: u32) -> (i32, i32) {
    let (i, d) = split_w(e);
    let recip_c = i64::from(RECIP_MID.get(i).copied().unwrap_or(1 << 31));
    // 1 / (1 + d) = 1 - d (1 - d (1 - d)).
    let t = ONE_31 - mul_31(d, ONE_31 - d);
    let recip_w = mul_31(recip_c, ONE_31 - mul_31(d, t));
    let small = mul_31(i64::from(e), recip_w);
    (q31_to_q16(recip_w), q31_to_q16(small))
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
        st = -((st * r2) >> 62)
            .checked_div((2 * n) * (2 * n + 1))
            .unwrap_or(0);
        s += st;
        ct = -((ct * r2) >> 62)
            .checked_div((2 * n - 1) * (2 * n))
            .unwrap_or(0);
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
