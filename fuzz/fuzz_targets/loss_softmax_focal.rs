//! `SoftmaxFocal`: parameter validation; finite loss and gradient for any gamma >= 0 at any
//! logits in range (a saturated softmax with 0 < gamma < 1 included); gamma = 0 with alpha = 1
//! equals cross-entropy.
#![no_main]
use hardmine::{Reduction, SoftmaxCrossEntropy, SoftmaxFocal};
use hardmine_fuzz::{assert_close, in_range, F32_TOL};
use libfuzzer_sys::fuzz_target;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    alpha: f32,
    gamma: f32,
    classes: u8,
    logits: Vec<f32>,
    labels: Vec<u8>,
}

fuzz_target!(|inp: Input| {
    let c = 1 + usize::from(inp.classes % 10);
    let labels: Vec<u8> = inp.labels.iter().map(|l| l % c as u8).collect();
    let mut x = inp.logits.clone();
    x.resize(labels.len() * c, 0.0);
    let Ok(focal) = SoftmaxFocal::new(inp.alpha, inp.gamma, c) else {
        assert!(!((0.0..=1.0).contains(&inp.alpha) && inp.gamma.is_finite() && inp.gamma >= 0.0));
        return;
    };
    let focal = focal.with_reduction(Reduction::Sum);
    let mut g = vec![0.0f32; x.len()];
    let r = focal.value_and_grad(&x, &labels, &mut g);
    if !x.iter().all(|v| v.is_finite()) {
        assert!(r.is_err());
        return;
    }
    let v = r.unwrap();
    if in_range(&x) && inp.gamma <= 64.0 {
        assert!(v.is_finite(), "loss {v}");
        assert!(g.iter().all(|v| v.is_finite()), "grad");
    }
    let plain = SoftmaxFocal::new(1.0f32, 0.0, c)
        .unwrap()
        .with_reduction(Reduction::Sum)
        .value(&x, &labels)
        .unwrap();
    let ce = SoftmaxCrossEntropy::new(c)
        .unwrap()
        .with_reduction(Reduction::Sum)
        .value(&x, &labels)
        .unwrap();
    if in_range(&x) {
        assert_close(
            &[f64::from(plain)],
            &[f64::from(ce)],
            F32_TOL,
            "gamma 0 is CE",
        );
    }
});
