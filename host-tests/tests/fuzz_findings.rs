//! Regression tests for what fuzzing found (fuzz/README.md lists the campaign). Each test names
//! the target that found it.

use hardmine::{Reduction, SigmoidFocal};

/// diff_f32_f64: a soft target near sigmoid(x) makes the two focal-gradient terms nearly cancel
/// (here 0.035 each, leaving 2.4e-3); computed in f32 the gradient was off by 2.3e-5 relative.
/// The element kernels now run in the accumulator type and round once.
#[test]
fn focal_gradient_with_a_soft_target_near_sigmoid_is_f32_accurate() {
    let x = [-133.0f32 / 32768.0 * 50.0, 28671.0 / 32768.0 * 50.0];
    let t = [31611.0f32 / 65535.0, 1.0];
    let (alpha, gamma) = (0.61f32, 2.9f32);
    let mut g32 = [0.0f32; 2];
    let l32 = SigmoidFocal::new(alpha, gamma)
        .unwrap()
        .with_reduction(Reduction::Sum)
        .value_and_grad(&x, &t, &mut g32)
        .unwrap();
    let x64 = x.map(f64::from);
    let t64 = t.map(f64::from);
    let mut g64 = [0.0f64; 2];
    let f = SigmoidFocal::new(f64::from(alpha), f64::from(gamma))
        .unwrap()
        .with_reduction(Reduction::Sum);
    let l64 = f.value_and_grad(&x64, &t64, &mut g64).unwrap();
    assert!(
        (f64::from(l32) - l64).abs() <= 1e-5 * l64,
        "loss {l32} vs {l64}"
    );
    let rel = (f64::from(g32[0]) - g64[0]).abs() / g64[0].abs();
    assert!(
        rel <= 1e-5 + 1e-6,
        "gradient {} vs {}: {rel:e} relative",
        g32[0],
        g64[0]
    );
}
