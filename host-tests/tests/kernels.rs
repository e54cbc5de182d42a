//! Accuracy of the f32 kernels in ULP against the f64 kernels (correctly rounded to f32 up to
//! f64's own error): `sigmoid` and `softplus`, the fast `e^-|x|` and `ln(1 + e^-|x|)`, and the
//! hard-target kernel's `sigma(x)`, `sigma(-x)`, on a dense sweep of the f32 line. The full
//! sweep of all 2^32 inputs is opt-in: `HARDMINE_EXHAUSTIVE=1 cargo test --profile
//! release-checked -p hardmine-host-tests --test kernels`.

use hardmine::{kernels, Real};
use hardmine_host_tests::tolerance::{
    ulp_distance, ulp_distance_f64, EXP_NEG_ABS_F32_ULP, EXP_NEG_ABS_F64_ULP, KERNEL_F32_ULP,
    LN1P_EXP_F32_ULP, LN1P_EXP_F64_ULP, LOGISTIC_F32_ULP,
};

/// The largest ULP distance seen and where.
#[derive(Default)]
struct Worst {
    ulp: u32,
    at: f32,
}

impl Worst {
    /// Counts `got` against the f64 value `exact` at `x`.
    fn see(&mut self, x: f32, got: f32, exact: f64) {
        let d = ulp_distance(got, exact as f32);
        if d > self.ulp {
            (self.ulp, self.at) = (d, x);
        }
    }

    /// As [`see`](Self::see), when `exact` is a normal f32 (the fast kernels flush below
    /// 2^-126; those results are checked apart).
    fn see_normal(&mut self, x: f32, got: f32, exact: f64) {
        if exact >= f64::from(f32::MIN_POSITIVE) {
            self.see(x, got, exact);
        }
    }

    fn check(&self, name: &str, bound: u32) {
        println!("{name}: worst {} ULP at {:e}", self.ulp, self.at);
        assert!(
            self.ulp <= bound,
            "{name}: {} ULP at {:e}",
            self.ulp,
            self.at
        );
    }
}

/// Calls `f` on every finite f32 (every `step`-th bit pattern; all of them with
/// `HARDMINE_EXHAUSTIVE=1`).
fn sweep(step: u64, mut f: impl FnMut(f32)) {
    let exhaustive = std::env::var("HARDMINE_EXHAUSTIVE").is_ok_and(|v| v == "1");
    let step = if exhaustive { 1 } else { step };
    let mut bits = 0u64;
    while bits <= u64::from(u32::MAX) {
        let x = f32::from_bits(bits as u32);
        bits += step;
        if x.is_finite() {
            f(x);
        }
    }
}

#[test]
fn mul_add_rounds_once_exactly_when_fused() {
    // (1 + 2^-h)^2 = 1 + 2^(1-h) + 2^-2h, with 2^-2h a tie at the precision (h = 12 in f32,
    // 27 in f64) that a separate multiplication rounds away (to even) and a fused
    // multiply-add keeps; minus 1 shows which happened.
    fn check<T: Real>(h: i32) {
        let p = |k: i32| T::from_f64(2f64.powi(k));
        let a = T::ONE + p(-h);
        let want = if hardmine::FUSED_MULTIPLY_ADD {
            p(1 - h) + p(-2 * h)
        } else {
            p(1 - h)
        };
        assert_eq!(a.mul_add(a, -T::ONE).to_f64(), want.to_f64(), "h = {h}");
    }
    check::<f32>(12);
    check::<f64>(27);
}

#[test]
fn sigmoid_and_softplus_within_their_ulp_bound() {
    let (mut s, mut p) = (Worst::default(), Worst::default());
    sweep(4099, |x| {
        s.see(x, Real::sigmoid(x), Real::sigmoid(f64::from(x)));
        p.see(x, kernels::softplus(x), kernels::softplus(f64::from(x)));
    });
    s.check("sigmoid", KERNEL_F32_ULP);
    p.check("softplus", KERNEL_F32_ULP);
}

#[test]
fn fast_exp_and_ln1p_within_their_ulp_bound() {
    let (mut e, mut l) = (Worst::default(), Worst::default());
    sweep(1021, |x| {
        let (got_e, got_l) = kernels::exp_ln1p_neg_abs(x);
        let e64 = (-f64::from(x).abs()).exp();
        e.see_normal(x, got_e, e64);
        l.see_normal(x, got_l, e64.ln_1p());
        if e64 < f64::from(f32::MIN_POSITIVE) {
            // Flushed: 0, or at most the smallest normals' neighbourhood.
            assert!(
                got_e == 0.0 || f64::from(got_e) <= 2.0 * f64::from(f32::MIN_POSITIVE),
                "e^-|{x}| = {got_e}"
            );
        }
    });
    e.check("fast e^-|x|", EXP_NEG_ABS_F32_ULP);
    l.check("fast ln(1 + e^-|x|)", LN1P_EXP_F32_ULP);
}

#[test]
fn logistic_parts_within_their_ulp_bound() {
    // `logistic_parts`, the hard-target losses' kernel: sigma(x) and sigma(-x) from the
    // fast e^-|x| and one division.
    let mut w = Worst::default();
    sweep(1021, |x| {
        let (pos, neg, _) = kernels::logistic_parts(x);
        w.see_normal(x, pos, Real::sigmoid(f64::from(x)));
        w.see_normal(x, neg, Real::sigmoid(-f64::from(x)));
    });
    w.check("logistic_parts sigma", LOGISTIC_F32_ULP);
}

#[test]
fn fast_f64_exp_and_ln1p_within_their_ulp_bound() {
    // The f64 kernels against std (the system libm, itself within 1 ULP), at 4 million arguments spread over
    // every binade of [2^-60, 708] by bit pattern plus a uniform sweep of [0, 40].
    let (mut e_worst, mut l_worst) = ((0u64, 0.0f64), (0u64, 0.0f64));
    let lo = 2f64.powi(-60).to_bits();
    let hi = 708f64.to_bits();
    let step = (hi - lo) / 2_000_000;
    let binades = (0..=2_000_000u64).map(|i| f64::from_bits(lo + i * step));
    let uniform = (0..2_000_000u32).map(|i| f64::from(i) * 2e-5);
    for x in binades.chain(uniform) {
        let (e, l) = kernels::exp_ln1p_neg_abs(x);
        let e_ref = (-x).exp();
        let d = ulp_distance_f64(e, e_ref);
        if d > e_worst.0 {
            e_worst = (d, x);
        }
        // The logarithm's own error, at the e^-|x| it was given.
        let d = ulp_distance_f64(l, e.ln_1p());
        if d > l_worst.0 {
            l_worst = (d, x);
        }
        let (p, n, _) = kernels::logistic_parts(x);
        assert!(
            (p + n - 1.0).abs() <= 2.0 * f64::EPSILON,
            "sigma pair at {x}"
        );
    }
    println!(
        "fast f64 e^-|x|: worst {} ULP at {:e}",
        e_worst.0, e_worst.1
    );
    println!(
        "fast f64 ln(1 + e^-|x|): worst {} ULP at {:e}",
        l_worst.0, l_worst.1
    );
    assert!(
        e_worst.0 <= u64::from(EXP_NEG_ABS_F64_ULP),
        "e^-|x|: {e_worst:?}"
    );
    assert!(
        l_worst.0 <= u64::from(LN1P_EXP_F64_ULP),
        "ln(1 + e^-|x|): {l_worst:?}"
    );
}
