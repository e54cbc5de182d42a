//! `SigmoidFocal` (dense): parameter validation, Err exactly per DESIGN §4, finite loss and
//! gradient for every finite logit in range and every gamma >= 0 (0 < gamma < 1 included).
#![no_main]
use hardmine::{Error, SigmoidFocal};
use hardmine_fuzz::{
    assert_finite, assert_outcome, check_avg_factor, expected_elementwise, in_range, reduction,
};
use libfuzzer_sys::fuzz_target;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    alpha: f32,
    gamma: f32,
    logits: Vec<f32>,
    targets: Vec<f32>,
    reduction: u8,
    avg_factor: Option<f32>,
}

fuzz_target!(|inp: Input| {
    let focal = SigmoidFocal::new(inp.alpha, inp.gamma);
    let alpha_ok = inp.alpha == -1.0 || (0.0..=1.0).contains(&inp.alpha);
    let gamma_ok = inp.gamma.is_finite() && inp.gamma >= 0.0;
    match (&focal, alpha_ok, gamma_ok) {
        (Err(Error::InvalidParameter("alpha")), false, _) => return,
        (Err(Error::InvalidParameter("gamma")), true, false) => return,
        (Ok(_), true, true) => {}
        other => panic!("constructor: {other:?}"),
    }
    let focal = focal.unwrap().with_reduction(reduction(inp.reduction));
    let expected = expected_elementwise(&inp.logits, &inp.targets, None, true);
    let mut grad = vec![0.0f32; inp.logits.len()];
    let r = focal.value_and_grad(&inp.logits, &inp.targets, &mut grad);
    assert_outcome(&r, expected, "value_and_grad");
    if let Ok(v) = r {
        if in_range(&inp.logits) && inp.gamma <= 64.0 {
            assert!(v.is_finite(), "loss {v}");
            assert_finite(&grad, "grad");
        }
    }
    let (x, t) = (&inp.logits, &inp.targets);
    check_avg_factor(
        inp.avg_factor,
        x.len(),
        |f| match f {
            Some(f) => focal.with_avg_factor(f),
            None => Ok(focal),
        },
        |l, r, g| l.with_reduction(r).value_and_grad(x, t, g),
    );
});
