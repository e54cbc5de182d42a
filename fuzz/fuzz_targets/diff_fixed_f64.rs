//! Q15.16 against f64 on the stated domain (|logit| <= 30, N <= 4096 so sums stay in range):
//! focal, BCE and smooth L1 on the quantised inputs, within the published fixed tolerance.
#![no_main]
use hardmine::{BceWithLogits, Real, Reduction, SigmoidFocal, SmoothL1, Q16};
use hardmine_fuzz::{assert_close, assert_close_scalar, bounded, FIXED_TOL};
use libfuzzer_sys::fuzz_target;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    logits: Vec<i16>,
    targets: Vec<u8>,
    gamma: u8,
}

fuzz_target!(|inp: Input| {
    let x: Vec<Q16> = bounded(&inp.logits, 30.0)
        .into_iter()
        .take(4096)
        .map(|v| Q16::from_f64(f64::from(v)))
        .collect();
    let n = x.len();
    let t: Vec<Q16> = (0..n)
        .map(|i| Q16::from_count(u64::from(inp.targets.get(i).copied().unwrap_or(0) % 2)))
        .collect();
    let (x64, t64): (Vec<f64>, Vec<f64>) = (
        x.iter().map(|v| v.to_f64()).collect(),
        t.iter().map(|v| v.to_f64()).collect(),
    );
    let gamma = Q16::from_count(u64::from(inp.gamma % 6)).div_count(2);
    let fq = SigmoidFocal::new(Q16::from_f64(0.25), gamma)
        .unwrap()
        .with_reduction(Reduction::Sum);
    let ff = SigmoidFocal::new(0.25, gamma.to_f64())
        .unwrap()
        .with_reduction(Reduction::Sum);
    let (mut gq, mut gf) = (vec![Q16::ZERO; n], vec![0.0; n]);
    let a = fq.value_and_grad(&x, &t, &mut gq).unwrap();
    let b = ff.value_and_grad(&x64, &t64, &mut gf).unwrap();
    let q = |v: &[Q16]| v.iter().map(|v| v.to_f64()).collect::<Vec<f64>>();
    if b < 16384.0 {
        assert_close_scalar(a.to_f64(), b, FIXED_TOL, "focal loss");
    }
    assert_close(&q(&gq), &gf, FIXED_TOL, "focal grad");
    let bce = BceWithLogits::new().with_reduction(Reduction::Mean);
    let a = bce.value_and_grad(&x, &t, None, &mut gq).unwrap();
    let b = bce.value_and_grad(&x64, &t64, None, &mut gf).unwrap();
    assert_close_scalar(a.to_f64(), b, FIXED_TOL, "bce loss");
    assert_close(&q(&gq), &gf, FIXED_TOL, "bce grad");
    let sl = SmoothL1::new(Q16::ONE)
        .unwrap()
        .with_reduction(Reduction::Mean);
    let a = sl.value(&x, &t).unwrap();
    let b = SmoothL1::new(1.0)
        .unwrap()
        .with_reduction(Reduction::Mean)
        .value(&x64, &t64)
        .unwrap();
    assert_close_scalar(a.to_f64(), b, FIXED_TOL, "smooth l1");
});
