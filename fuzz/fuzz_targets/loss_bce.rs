//! `BceWithLogits`: Err exactly per DESIGN §4; finite results in range; value, value_and_grad
//! and per_element agree.
#![no_main]
use hardmine::BceWithLogits;
use hardmine_fuzz::{
    assert_finite, assert_outcome, check_avg_factor, expected_elementwise, in_range, reduction,
};
use libfuzzer_sys::fuzz_target;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    logits: Vec<f32>,
    targets: Vec<f32>,
    weights: Option<Vec<f32>>,
    reduction: u8,
    avg_factor: Option<f32>,
}

fuzz_target!(|inp: Input| {
    let bce = BceWithLogits::new().with_reduction(reduction(inp.reduction));
    let w = inp.weights.as_deref();
    let expected = expected_elementwise(&inp.logits, &inp.targets, w, true);
    let value = bce.value(&inp.logits, &inp.targets, w);
    assert_outcome(&value, expected, "value");
    let mut grad = vec![0.0f32; inp.logits.len()];
    let vg = bce.value_and_grad(&inp.logits, &inp.targets, w, &mut grad);
    assert_outcome(&vg, expected, "value_and_grad");
    let mut per = vec![0.0f32; inp.logits.len()];
    assert_outcome(
        &bce.per_element(&inp.logits, &inp.targets, w, &mut per),
        expected,
        "per_element",
    );
    if let (Ok(v), Ok(vg)) = (value, vg) {
        assert_eq!(v.to_bits(), vg.to_bits(), "value and value_and_grad agree");
        if in_range(&inp.logits) && w.is_none_or(in_range) {
            assert!(v.is_finite());
            assert_finite(&grad, "grad");
            assert_finite(&per, "per_element");
        }
    }
    let (x, t) = (&inp.logits, &inp.targets);
    check_avg_factor(
        inp.avg_factor,
        x.len(),
        |f| match f {
            Some(f) => BceWithLogits::new().with_avg_factor(f),
            None => Ok(BceWithLogits::new()),
        },
        |l, r, g| l.with_reduction(r).value_and_grad(x, t, w, g),
    );
});
