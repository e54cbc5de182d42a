//! `SmoothL1` and `Asl1`: Err exactly per DESIGN §4; finite, non-negative losses and gradients
//! bounded by 1 in magnitude (both are 1-Lipschitz) for finite inputs in range.
#![no_main]
use hardmine::{Asl1, Error, SmoothL1};
use hardmine_fuzz::{assert_outcome, check_avg_factor, expected_elementwise, in_range, reduction};
use libfuzzer_sys::fuzz_target;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    beta: f32,
    mu: f32,
    pred: Vec<f32>,
    target: Vec<f32>,
    reduction: u8,
    avg_factor: Option<f32>,
}

fuzz_target!(|inp: Input| {
    let expected = expected_elementwise(&inp.pred, &inp.target, None, false);
    let n = inp.pred.len();
    let red = reduction(inp.reduction);
    let bounded = in_range(&inp.pred) && in_range(&inp.target);
    // Both losses: the expected error, else (in range) a finite, non-negative loss and a
    // gradient bounded by 1.
    let lipschitz = |what: &str, run: &dyn Fn(&mut [f32]) -> Result<f32, Error>| {
        let mut g = vec![0.0f32; n];
        let r = run(&mut g);
        assert_outcome(&r, expected, what);
        if let (Ok(v), true) = (r, bounded) {
            assert!(v.is_finite() && v >= 0.0, "{what}: loss {v}");
            assert!(
                g.iter().all(|g| g.is_finite() && g.abs() <= 1.0 + 1e-6),
                "{what}: grad"
            );
        }
    };
    match SmoothL1::new(inp.beta) {
        Ok(l) => lipschitz("smooth l1", &|g| {
            l.with_reduction(red)
                .value_and_grad(&inp.pred, &inp.target, g)
        }),
        Err(_) => assert!(!(inp.beta.is_finite() && inp.beta >= 0.0)),
    }
    match Asl1::new(inp.mu) {
        Ok(l) => lipschitz("asl1", &|g| {
            l.with_reduction(red)
                .value_and_grad(&inp.pred, &inp.target, g)
        }),
        Err(_) => assert!(!(inp.mu.is_finite() && inp.mu > 0.0)),
    }
    let (p, t) = (&inp.pred, &inp.target);
    if let Ok(l) = SmoothL1::new(inp.beta) {
        check_avg_factor(
            inp.avg_factor,
            n,
            |f| f.map_or(Ok(l), |f| l.with_avg_factor(f)),
            |l, r, g| l.with_reduction(r).value_and_grad(p, t, g),
        );
    }
    if let Ok(l) = Asl1::new(inp.mu) {
        check_avg_factor(
            inp.avg_factor,
            n,
            |f| f.map_or(Ok(l), |f| l.with_avg_factor(f)),
            |l, r, g| l.with_reduction(r).value_and_grad(p, t, g),
        );
    }
});
