//! `DistributionCe`: counts unchanged after a bad `observe`; class weights finite, positive and
//! summing to C; losses finite for logits in range, whatever the history.
#![no_main]
use hardmine::{DistributionCe, Weighting};
use hardmine_fuzz::{bounded, in_range};
use libfuzzer_sys::fuzz_target;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    classes: u8,
    mode: u8,
    param: f32,
    history: Vec<i8>,
    logits: Vec<i16>,
    labels: Vec<u8>,
}

fuzz_target!(|inp: Input| {
    let c = 1 + usize::from(inp.classes % 8);
    let weighting = match inp.mode % 3 {
        0 => Weighting::InverseFrequency { power: inp.param },
        1 => Weighting::EffectiveNumber { beta: inp.param },
        _ => Weighting::LogitAdjustment { tau: inp.param },
    };
    let Ok(mut loss) = DistributionCe::<f32, 8>::new(c, weighting) else {
        return;
    };
    let before = loss;
    let bad = inp.history.iter().position(|&l| l >= 0 && l as usize >= c);
    match loss.observe(&inp.history) {
        Err(_) => {
            assert!(bad.is_some());
            assert_eq!(loss, before, "counts unchanged after an Err");
            return;
        }
        Ok(()) => assert!(bad.is_none()),
    }
    let mut w = vec![0.0f32; c];
    loss.class_weights(&mut w).unwrap();
    assert!(w.iter().all(|v| v.is_finite()), "{w:?}");
    if !matches!(weighting, Weighting::LogitAdjustment { .. }) && inp.param.abs() <= 8.0 {
        let s: f32 = w.iter().sum();
        assert!(
            (s - c as f32).abs() <= 1e-3 * c as f32,
            "weights sum to {s}"
        );
    }
    let labels: Vec<u8> = inp.labels.iter().map(|l| l % c as u8).collect();
    let mut x = bounded(&inp.logits, 30.0);
    x.resize(labels.len() * c, 0.0);
    let mut g = vec![0.0f32; x.len()];
    let v = loss.value_and_grad(&x, &labels, &mut g).unwrap();
    if in_range(&x) && inp.param.abs() <= 8.0 {
        assert!(v.is_finite(), "loss {v}");
        assert!(g.iter().all(|v| v.is_finite()));
    }
});
