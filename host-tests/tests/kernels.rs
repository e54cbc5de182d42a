//! Accuracy of the f32 `sigmoid` and `softplus` kernels in ULP against the f64 kernels
//! (correctly rounded to f32 up to f64's own error), on a dense sweep of the f32 line. The
//! full sweep of all 2^32 inputs is opt-in: `HARDMINE_EXHAUSTIVE=1 cargo test --profile
//! release-checked -p hardmine-host-tests --test kernels`.

use hardmine::Real;
use hardmine_host_tests::tolerance::{ulp_distance, KERNEL_F32_ULP};

fn worst(step: usize) -> (u32, f32, u32, f32) {
    let (mut ws, mut xs, mut wp, mut xp) = (0, 0.0f32, 0, 0.0f32);
    let mut bits = 0u64;
    while bits <= u64::from(u32::MAX) {
        let x = f32::from_bits(bits as u32);
        bits += step as u64;
        if !x.is_finite() {
            continue;
        }
        let s = ulp_distance(Real::sigmoid(x), Real::sigmoid(f64::from(x)) as f32);
        let p = ulp_distance(Real::softplus(x), Real::softplus(f64::from(x)) as f32);
        if s > ws {
            (ws, xs) = (s, x);
        }
        if p > wp {
            (wp, xp) = (p, x);
        }
    }
    (ws, xs, wp, xp)
}

#[test]
fn sigmoid_and_softplus_within_their_ulp_bound() {
    let exhaustive = std::env::var("HARDMINE_EXHAUSTIVE").is_ok_and(|v| v == "1");
    let (ws, xs, wp, xp) = worst(if exhaustive { 1 } else { 4099 });
    println!("sigmoid worst {ws} ULP at {xs:e}; softplus worst {wp} ULP at {xp:e}");
    assert!(ws <= KERNEL_F32_ULP, "sigmoid: {ws} ULP at {xs:e}");
    assert!(wp <= KERNEL_F32_ULP, "softplus: {wp} ULP at {xp:e}");
}

#[test]
fn fast_exp_and_ln1p_within_their_ulp_bound() {
    use hardmine_host_tests::tolerance::FAST_KERNEL_F32_ULP;
    let exhaustive = std::env::var("HARDMINE_EXHAUSTIVE").is_ok_and(|v| v == "1");
    let step = if exhaustive { 1 } else { 1021 };
    let (mut we, mut wl, mut at_e, mut at_l) = (0u32, 0u32, 0.0f32, 0.0f32);
    let mut bits = 0u64;
    while bits <= u64::from(u32::MAX) {
        let x = f32::from_bits(bits as u32);
        bits += step;
        if !x.is_finite() {
            continue;
        }
        let (e, lp) = x.exp_ln1p_neg_abs();
        let e64 = (-f64::from(x).abs()).exp();
        let lp64 = e64.ln_1p();
        if e64 >= f64::from(f32::MIN_POSITIVE) {
            let d = ulp_distance(e, e64 as f32);
            if d > we {
                (we, at_e) = (d, x);
            }
        } else {
            assert!(
                e == 0.0 || f64::from(e) <= 2.0 * f64::from(f32::MIN_POSITIVE),
                "e^-|{x}| = {e}"
            );
        }
        if lp64 >= f64::from(f32::MIN_POSITIVE) {
            let d = ulp_distance(lp, lp64 as f32);
            if d > wl {
                (wl, at_l) = (d, x);
            }
        }
    }
    println!("fast e^-|x| worst {we} ULP at {at_e:e}; ln(1 + e^-|x|) worst {wl} ULP at {at_l:e}");
    assert!(we <= FAST_KERNEL_F32_ULP, "e^-|x|: {we} ULP at {at_e:e}");
    assert!(wl <= FAST_KERNEL_F32_ULP, "ln1p: {wl} ULP at {at_l:e}");
}

#[test]
fn logistic_parts_within_their_ulp_bound() {
    // `Real::logistic_parts`, the hard-target losses' kernel: sigma(x) and sigma(-x) from the
    // fast e^-|x| and one division each side (results below 2^-126 are not counted: the fast
    // e^-|x| flushes there).
    use hardmine_host_tests::tolerance::FAST_KERNEL_F32_ULP;
    let exhaustive = std::env::var("HARDMINE_EXHAUSTIVE").is_ok_and(|v| v == "1");
    let step = if exhaustive { 1 } else { 1021 };
    let (mut worst, mut at) = (0u32, 0.0f32);
    let mut bits = 0u64;
    while bits <= u64::from(u32::MAX) {
        let x = f32::from_bits(bits as u32);
        bits += step;
        if !x.is_finite() {
            continue;
        }
        let (pos, neg, _) = x.logistic_parts();
        let (p64, n64) = (Real::sigmoid(f64::from(x)), Real::sigmoid(-f64::from(x)));
        for (got, exact) in [(pos, p64), (neg, n64)] {
            if exact >= f64::from(f32::MIN_POSITIVE) {
                let d = ulp_distance(got, exact as f32);
                if d > worst {
                    (worst, at) = (d, x);
                }
            }
        }
    }
    println!("logistic_parts: sigma worst {worst} ULP at {at:e}");
    assert!(worst <= FAST_KERNEL_F32_ULP, "sigma: {worst} ULP at {at:e}");
}
