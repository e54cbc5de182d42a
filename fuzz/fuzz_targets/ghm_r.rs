//! `GhmR`: Err exactly per DESIGN §4 with the state unchanged; finite results; the streaming
//! phases equal the one-shot call.
#![no_main]
use hardmine::GhmR;
use hardmine_fuzz::{assert_outcome, expected_elementwise, in_range};
use libfuzzer_sys::fuzz_target;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    mu: f32,
    bins: u8,
    momentum: u8,
    pred: Vec<f32>,
    target: Vec<f32>,
    weights: Option<Vec<f32>>,
}

fuzz_target!(|inp: Input| {
    let Ok(mut ghm) = GhmR::<f32, 16>::new(
        inp.mu,
        1 + usize::from(inp.bins % 16),
        f32::from(inp.momentum % 100) / 100.0,
        1.0,
    ) else {
        assert!(!(inp.mu.is_finite() && inp.mu > 0.0));
        return;
    };
    let w = inp.weights.as_deref();
    let expected = expected_elementwise(&inp.pred, &inp.target, w, false);
    let before = ghm;
    let mut g = vec![0.0f32; inp.pred.len()];
    let r = ghm.value_and_grad(&inp.pred, &inp.target, w, &mut g);
    assert_outcome(&r, expected, "value_and_grad");
    if r.is_err() {
        assert_eq!(ghm, before, "state unchanged after an Err");
        return;
    }
    if in_range(&inp.pred) && in_range(&inp.target) && w.is_none_or(in_range) {
        assert!(r.unwrap().is_finite());
        assert!(g.iter().all(|v| v.is_finite()));
    }
    let mut streamed = before;
    let mut hist = streamed.histogram();
    let half = inp.pred.len() / 2;
    let (wa, wb) = (w.map(|w| &w[..half]), w.map(|w| &w[half..]));
    streamed
        .observe(&mut hist, &inp.pred[half..], &inp.target[half..], wb)
        .unwrap();
    streamed
        .observe(&mut hist, &inp.pred[..half], &inp.target[..half], wa)
        .unwrap();
    let weights = streamed.finish(&hist).unwrap();
    let mut g2 = vec![0.0f32; inp.pred.len()];
    streamed
        .apply(
            &weights,
            &inp.pred[..half],
            &inp.target[..half],
            wa,
            Some(&mut g2[..half]),
        )
        .unwrap();
    streamed
        .apply(
            &weights,
            &inp.pred[half..],
            &inp.target[half..],
            wb,
            Some(&mut g2[half..]),
        )
        .unwrap();
    assert_eq!(streamed, ghm, "moving averages");
    assert_eq!(g, g2, "gradients");
});
