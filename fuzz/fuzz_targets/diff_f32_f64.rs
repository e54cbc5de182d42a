//! f32 against f64 on the stated domain (|logit| <= 50, targets in [0, 1], gamma in [0, 5]):
//! focal, BCE and softmax CE within the published f32 tolerance; values below 1e-30 in
//! magnitude (under f32's normal range after a margin) are compared absolutely.
#![no_main]
use hardmine::{BceWithLogits, Reduction, SigmoidFocal, SoftmaxCrossEntropy};
use hardmine_fuzz::{assert_close, assert_close_scalar, bounded, F32_TOL, F32_UNDERFLOW};
use libfuzzer_sys::fuzz_target;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    logits: Vec<i16>,
    targets: Vec<u16>,
    gamma: u8,
    alpha: u8,
}

/// The published f32 tolerance, with values under `F32_UNDERFLOW` compared absolutely.
const TOL: (f64, f64, f64) = (F32_TOL.0, F32_TOL.1, F32_UNDERFLOW);

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

fuzz_target!(|inp: Input| {
    let x = bounded(&inp.logits, 50.0);
    let n = x.len();
    let t: Vec<f32> = (0..n)
        .map(|i| f32::from(inp.targets.get(i).copied().unwrap_or(0)) / 65535.0)
        .collect();
    let (x64, t64) = (widen(&x), widen(&t));
    let gamma = f32::from(inp.gamma % 51) / 10.0;
    let alpha = f32::from(inp.alpha % 101) / 100.0;
    let (f32l, f64l) = (
        SigmoidFocal::new(alpha, gamma)
            .unwrap()
            .with_reduction(Reduction::Sum),
        SigmoidFocal::new(f64::from(alpha), f64::from(gamma))
            .unwrap()
            .with_reduction(Reduction::Sum),
    );
    let (mut g32, mut g64) = (vec![0.0f32; n], vec![0.0f64; n]);
    let a = f32l.value_and_grad(&x, &t, &mut g32).unwrap();
    let b = f64l.value_and_grad(&x64, &t64, &mut g64).unwrap();
    assert_close_scalar(f64::from(a), b, TOL, "focal loss");
    assert_close(&widen(&g32), &g64, TOL, "focal grad");
    let bce = BceWithLogits::new().with_reduction(Reduction::Mean);
    let a = bce.value_and_grad(&x, &t, None, &mut g32).unwrap();
    let b = bce.value_and_grad(&x64, &t64, None, &mut g64).unwrap();
    assert_close_scalar(f64::from(a), b, TOL, "bce loss");
    assert_close(&widen(&g32), &g64, TOL, "bce grad");
    let c = 1 + n % 7;
    let rows = n / c;
    let labels: Vec<i32> = (0..rows)
        .map(|i| (inp.targets.get(i).copied().unwrap_or(0) as usize % c) as i32)
        .collect();
    let ce = SoftmaxCrossEntropy::new(c)
        .unwrap()
        .with_reduction(Reduction::Sum);
    let a = ce
        .value_and_grad(&x[..rows * c], &labels, &mut g32[..rows * c])
        .unwrap();
    let b = ce
        .value_and_grad(&x64[..rows * c], &labels, &mut g64[..rows * c])
        .unwrap();
    assert_close_scalar(f64::from(a), b, TOL, "softmax ce loss");
    assert_close(
        &widen(&g32[..rows * c]),
        &g64[..rows * c],
        TOL,
        "softmax ce grad",
    );
});
