//! Every Q15.16 kernel against the exact value (libm in f64, far more accurate than 2^-16),
//! over **every** Q15.16 input of the domain it serves, in LSB. In release builds the sweep is
//! exhaustive (`cargo test --release -p hardmine-host-tests --test fixed_kernels`, as CI runs
//! it); debug builds take every 13th input so the default `cargo test` stays quick.

use hardmine::{kernels, Real, Q16};
use hardmine_host_tests::tolerance::{FIXED_EXP_NEG_ABS_LSB, FIXED_KERNEL_LSB, FIXED_LOGISTIC_LSB};

const STRIDE: usize = if cfg!(debug_assertions) { 13 } else { 1 };
const LSB: f64 = 65536.0;

/// Largest `|got - exact|` in LSB over raw inputs `lo..=hi`, with the exact value saturated to
/// the Q15.16 range (saturation is the specified result beyond it).
fn sweep(lo: i32, hi: i32, kernel: impl Fn(Q16) -> Q16, exact: impl Fn(f64) -> f64) -> (f64, f64) {
    let max = f64::from(i32::MAX) / LSB;
    let min = f64::from(i32::MIN) / LSB;
    let mut worst = (0.0f64, 0.0f64);
    for bits in (i64::from(lo)..=i64::from(hi)).step_by(STRIDE) {
        let x = Q16::from_bits(bits as i32);
        let want = exact(x.to_f64()).clamp(min, max);
        let err = (kernel(x).to_f64() - want).abs() * LSB;
        if err > worst.0 {
            worst = (err, x.to_f64());
        }
    }
    worst
}

fn raw(x: f64) -> i32 {
    (x * LSB) as i32
}

fn check(name: &str, (err, at): (f64, f64)) {
    println!("{name}: worst {err:.4} LSB at {at}");
    assert!(err <= FIXED_KERNEL_LSB, "{name}: {err} LSB at x = {at}");
}

#[test]
fn exp_and_exp_m1_over_minus_32_to_16() {
    check("exp", sweep(raw(-32.0), raw(16.0), Real::exp, f64::exp));
    check(
        "exp_m1",
        sweep(raw(-32.0), raw(16.0), kernels::exp_m1, f64::exp_m1),
    );
}

#[test]
fn ln_over_0_to_256_and_ln_1p_over_minus_1_to_16() {
    check("ln", sweep(1, raw(256.0), kernels::ln, f64::ln));
    check(
        "ln_1p",
        sweep(raw(-1.0) + 1, raw(16.0), Real::ln_1p, f64::ln_1p),
    );
}

#[test]
fn sqrt_over_0_to_1024() {
    check("sqrt", sweep(0, raw(1024.0), Real::sqrt, f64::sqrt));
}

#[test]
fn sigmoid_and_softplus_over_minus_64_to_64() {
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    let softplus = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
    check(
        "sigmoid",
        sweep(raw(-64.0), raw(64.0), Real::sigmoid, sigmoid),
    );
    check(
        "softplus",
        sweep(raw(-64.0), raw(64.0), kernels::softplus, softplus),
    );
}

#[test]
fn logistic_parts_and_exp_neg_abs_over_minus_64_to_64() {
    // The fused kernel the binary losses use: sigma(x), sigma(-x) and ln(1 + e^-|x|); and its
    // first half, e^-|x|, which the softmax losses use.
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    let lp = |x: f64| (-x.abs()).exp().ln_1p();
    let (lo, hi) = (raw(-64.0), raw(64.0));
    let pos = sweep(lo, hi, |x| kernels::logistic_parts(x).0, sigmoid);
    let neg = sweep(lo, hi, |x| kernels::logistic_parts(x).1, |x| sigmoid(-x));
    let log = sweep(lo, hi, |x| kernels::logistic_parts(x).2, lp);
    let exp = sweep(lo, hi, kernels::exp_neg_abs, |x| (-x.abs()).exp());
    for (name, worst, bound) in [
        ("sigma(x)", pos, FIXED_LOGISTIC_LSB),
        ("sigma(-x)", neg, FIXED_LOGISTIC_LSB),
        ("ln(1+e^-|x|)", log, FIXED_LOGISTIC_LSB),
        ("e^-|x|", exp, FIXED_EXP_NEG_ABS_LSB),
    ] {
        println!(
            "logistic_parts {name}: worst {:.6} LSB at {}",
            worst.0, worst.1
        );
        assert!(
            worst.0 <= bound,
            "logistic_parts {name}: {} LSB at x = {}",
            worst.0,
            worst.1
        );
    }
}

#[test]
fn pow_over_the_unit_interval_for_focal_gammas() {
    for gamma in [0.0, 0.25, 0.5, 0.7, 1.0, 1.5, 2.0, 2.5, 3.0, 3.7, 5.0] {
        let g = Q16::from_f64(gamma);
        let exact_gamma = g.to_f64();
        let (err, at) = sweep(
            0,
            raw(1.0),
            |x| kernels::powf(x, g),
            |x| x.powf(exact_gamma),
        );
        check(&format!("pow gamma {gamma}"), (err, at));
    }
}

#[test]
fn saturation_has_the_right_sign() {
    assert_eq!(Q16::from_f64(11.0).exp(), Q16::MAX);
    assert_eq!(Q16::MIN.exp(), Q16::ZERO);
    assert_eq!(kernels::softplus(Q16::MAX), Q16::MAX);
    assert_eq!(kernels::softplus(Q16::MIN), Q16::ZERO);
    assert_eq!(Q16::MAX.sigmoid(), Q16::ONE);
    assert_eq!(Q16::MIN.sigmoid(), Q16::ZERO);
    assert_eq!(kernels::ln(Q16::from_f64(-3.0)), Q16::MIN);
    assert_eq!(Q16::from_f64(-3.0).sqrt(), Q16::ZERO);
    assert_eq!(
        kernels::powf(Q16::from_f64(200.0), Q16::from_f64(2.0)),
        Q16::MAX
    );
}

#[test]
fn sin_and_cos_over_minus_pi_to_pi() {
    let pi = raw(core::f64::consts::PI);
    check("sin", sweep(-pi, pi, |x| kernels::sin_cos(x).0, f64::sin));
    check("cos", sweep(-pi, pi, |x| kernels::sin_cos(x).1, f64::cos));
}
