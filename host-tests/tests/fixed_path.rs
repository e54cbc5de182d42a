//! The Q15.16 path end to end: wide accumulation, saturation with the right sign, and the
//! miners through the same generic code.

use hardmine::{
    BceWithLogits, Budget, GhmC, Ohem, OhemSampler, Real, Reduction, SOhem, SigmoidFocal,
    SoftmaxCrossEntropy, TopK, Q16,
};

fn q(x: f64) -> Q16 {
    Q16::from_f64(x)
}

#[test]
fn a_batch_of_100k_cannot_overflow_the_accumulator() {
    let n = 100_000;
    let x = vec![q(1000.0); n];
    let t = vec![Q16::ZERO; n];
    let mean = BceWithLogits::new().value(&x, &t, None).unwrap();
    assert_eq!(mean, q(1000.0), "the mean of 100k losses of 1000 is exact");
    let sum = BceWithLogits::new()
        .with_reduction(Reduction::Sum)
        .value(&x, &t, None)
        .unwrap();
    assert_eq!(sum, Q16::MAX, "a sum of 1e8 saturates, with the right sign");
    let mut g = vec![Q16::ZERO; n];
    SigmoidFocal::new(q(0.25), q(2.0))
        .unwrap()
        .value_and_grad(&x, &t, &mut g)
        .unwrap();
    // 0.75 / 100000 = 7.5e-6: half an LSB, rounded to the nearest representable value.
    assert!(
        g.iter().all(|&v| v.to_bits() == 0 || v.to_bits() == 1),
        "{:?}",
        g[0]
    );
    let x = vec![q(-1000.0), q(1000.0)];
    let mut g = [Q16::ZERO; 2];
    let l = SoftmaxCrossEntropy::new(2)
        .unwrap()
        .with_reduction(Reduction::Sum)
        .value_and_grad(&x, &[0u8], &mut g)
        .unwrap();
    assert_eq!(l, q(2000.0));
    assert_eq!(g, [-Q16::ONE, Q16::ONE]);
}

#[test]
fn float_conversion_saturates() {
    assert_eq!(q(1e30), Q16::MAX);
    assert_eq!(q(-1e30), Q16::MIN);
    assert_eq!(q(f64::INFINITY), Q16::MAX);
    assert_eq!(q(f64::NEG_INFINITY), Q16::MIN);
    assert_eq!(q(f64::NAN), Q16::ZERO);
    assert_eq!(q(1.0 / 65536.0).to_bits(), 1);
}

#[test]
fn ghm_moving_average_in_fixed_point_tracks_f64() {
    let mut a = GhmC::<Q16, 30>::new(30, q(0.75), Q16::ONE).unwrap();
    let mut b = GhmC::<f64, 30>::new(30, 0.75, 1.0).unwrap();
    for batch in 0..5 {
        let x: Vec<f64> = (0..4000)
            .map(|i| -6.0 + ((i * 7919 + batch * 31) % 1000) as f64 * 0.009)
            .collect();
        let t: Vec<f64> = (0..4000)
            .map(|i| if i % 50 == 0 { 1.0 } else { 0.0 })
            .collect();
        let la = a
            .value(
                &x.iter().map(|&v| q(v)).collect::<Vec<_>>(),
                &t.iter().map(|&v| q(v)).collect::<Vec<_>>(),
                None,
            )
            .unwrap();
        let lb = b.value(&x, &t, None).unwrap();
        assert!(
            (la.to_f64() - lb).abs() <= 2e-3 * lb + 3.1e-5,
            "batch {batch}: {} vs {lb}",
            la.to_f64()
        );
    }
    for (ea, eb) in a.density().ema().iter().zip(b.density().ema()) {
        assert!(
            (ea.to_f64() - eb).abs() <= 1e-3 * eb.max(1.0),
            "EMA {} vs {eb}",
            ea.to_f64()
        );
    }
}

#[test]
fn miners_run_in_fixed_point() {
    let losses: Vec<Q16> = [0.5, 2.0, 1.0, 2.0, 0.1].iter().map(|&v| q(v)).collect();
    let mut top = TopK::<Q16, 4>::new(3).unwrap();
    top.extend(0, &losses).unwrap();
    assert_eq!(top.selection().indices(), &[1, 2, 3]);
    let boxes: Vec<Q16> = [
        0.0, 0.0, 10.0, 10.0, 0.0, 0.0, 10.0, 10.0, 1.0, 1.0, 11.0, 11.0, 50.0, 50.0, 60.0, 60.0,
        0.0, 0.0, 1.0, 1.0,
    ]
    .iter()
    .map(|&v| q(v))
    .collect();
    let picked = Ohem::<Q16, 8>::new(3)
        .unwrap()
        .with_nms(q(0.5))
        .unwrap()
        .select(&losses, Some(&boxes))
        .unwrap();
    assert_eq!(picked.indices(), &[1, 3, 4]);
    let s = OhemSampler::<Q16, 8>::new(Budget::new(4, q(0.25), None).unwrap()).unwrap();
    assert_eq!(
        s.sample(&losses, &[true, false, false, false, false])
            .unwrap()
            .indices(),
        &[0, 1, 2, 3]
    );
    let sohem = SOhem::<Q16, 8>::new(2, 2).unwrap();
    assert_eq!(
        sohem
            .select(&losses, &[Q16::ZERO; 5], Q16::ZERO)
            .unwrap()
            .len(),
        2
    );
}
