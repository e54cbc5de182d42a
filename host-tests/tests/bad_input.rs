//! One test per row of the bad-input table (DESIGN §4), over every entry point of this crate.

use hardmine::{
    Asl1, BceWithLogits, DistributionCe, Error, GhmC, GhmR, GradientHistogram,
    MovingAverageNormalizer, Real, Reduction, SigmoidFocal, SigmoidFocalLabels, SmoothL1,
    SoftmaxCrossEntropy, SoftmaxFocal, Weighting, Q16,
};

const NAN: f32 = f32::NAN;
const INF: f32 = f32::INFINITY;

// The losses with valid settings; each test below breaks one input of them.
fn focal() -> SigmoidFocal<f32> {
    SigmoidFocal::new(0.25, 2.0).unwrap()
}
fn softmax_ce(classes: usize) -> SoftmaxCrossEntropy {
    SoftmaxCrossEntropy::new(classes).unwrap()
}
fn softmax_focal(classes: usize) -> SoftmaxFocal<f32> {
    SoftmaxFocal::new(0.25, 2.0, classes).unwrap()
}
fn smooth_l1() -> SmoothL1<f32> {
    SmoothL1::new(1.0).unwrap()
}
fn asl1() -> Asl1<f32> {
    Asl1::new(0.02).unwrap()
}
fn ghm_c(momentum: f32) -> GhmC<f32, 10> {
    GhmC::new(10, momentum, 1.0).unwrap()
}
fn ghm_r(momentum: f32) -> GhmR<f32, 10> {
    GhmR::new(0.02, 10, momentum, 1.0).unwrap()
}

#[test]
fn lengths_that_disagree() {
    let x = [0.0f32; 4];
    let mut g3 = [0.0f32; 3];
    let lm = |expected, got| Err(Error::LengthMismatch { expected, got });
    assert_eq!(BceWithLogits::new().value(&x, &[0.0; 3], None), lm(4, 3));
    assert_eq!(
        BceWithLogits::new().value(&x, &x, Some(&[1.0; 5])),
        lm(4, 5)
    );
    assert_eq!(
        BceWithLogits::new().value_and_grad(&x, &x, None, &mut g3),
        lm(4, 3)
    );
    let focal = focal();
    assert_eq!(focal.value(&x, &[0.0; 2]), lm(4, 2));
    assert_eq!(
        focal.per_element(&x, &x, &mut g3),
        Err(Error::LengthMismatch {
            expected: 4,
            got: 3
        })
    );
    let head = SigmoidFocalLabels::new(focal, 2).unwrap();
    assert_eq!(head.value(&x, &[0u8; 3], None), lm(6, 4));
    assert_eq!(head.value(&x, &[0u8; 2], Some(&[1.0])), lm(2, 1));
    assert_eq!(
        head.with_class_alpha(&[0.5]).map(|_| ()),
        Err(Error::LengthMismatch {
            expected: 2,
            got: 1
        })
    );
    let ce = softmax_ce(2);
    assert_eq!(ce.value(&x, &[0i32; 3]), lm(6, 4));
    assert_eq!(ce.value_and_grad(&x, &[0i32; 2], &mut g3), lm(4, 3));
    let mut rows = [0.0f32; 3];
    assert_eq!(
        ce.per_element(&x, &[0i32; 2], &mut rows),
        Err(Error::LengthMismatch {
            expected: 2,
            got: 3
        })
    );
    assert_eq!(softmax_focal(2).value(&x, &[0i32; 1]), lm(2, 4));
    assert_eq!(smooth_l1().value(&x, &[0.0; 1]), lm(4, 1));
    assert_eq!(asl1().value(&x, &[0.0; 1]), lm(4, 1));
    let mut ghm = ghm_c(0.0);
    assert_eq!(ghm.value(&x, &[0.0; 3], None), lm(4, 3));
    assert_eq!(ghm.value_and_grad(&x, &x, None, &mut g3), lm(4, 3));
    let mut ghm = ghm_r(0.0);
    assert_eq!(ghm.value(&x, &x, Some(&[1.0; 2])), lm(4, 2));
    let d = DistributionCe::<f32, 4>::new(2, Weighting::InverseFrequency { power: 1.0 }).unwrap();
    assert_eq!(d.value(&x, &[0u8; 1]), lm(2, 4));
    assert_eq!(
        d.class_weights(&mut [0.0; 3]),
        Err(Error::LengthMismatch {
            expected: 2,
            got: 3
        })
    );
}

#[test]
fn non_finite_inputs_name_their_index() {
    let nf = |index| Err(Error::NonFinite { index });
    for bad in [NAN, INF, -INF] {
        let x = [0.0f32, 1.0, bad, 2.0];
        let ok = [0.0f32, 1.0, 0.0, 1.0];
        assert_eq!(BceWithLogits::new().value(&x, &ok, None), nf(2));
        assert_eq!(BceWithLogits::new().value(&ok, &x, None), nf(2));
        assert_eq!(BceWithLogits::new().value(&ok, &ok, Some(&x)), nf(2));
        let focal = focal();
        assert_eq!(focal.value(&x, &ok), nf(2));
        assert_eq!(focal.value(&ok, &x), nf(2));
        let head = SigmoidFocalLabels::new(focal, 2).unwrap();
        assert_eq!(head.value(&x, &[0u8, 1], None), nf(2));
        assert_eq!(head.value(&ok, &[0u8, 1], Some(&[1.0, bad])), nf(1));
        assert_eq!(softmax_ce(2).value(&x, &[0u8, 1]), nf(2));
        assert_eq!(softmax_focal(2).value(&x, &[0u8, 1]), nf(2));
        assert_eq!(smooth_l1().value(&x, &ok), nf(2));
        assert_eq!(asl1().value(&ok, &x), nf(2));
        assert_eq!(ghm_c(0.5).value(&x, &ok, None), nf(2));
        assert_eq!(ghm_c(0.5).value(&ok, &ok, Some(&x)), nf(2));
        assert_eq!(ghm_r(0.5).value(&x, &ok, None), nf(2));
        let d = DistributionCe::<f32, 4>::new(2, Weighting::LogitAdjustment { tau: 1.0 }).unwrap();
        assert_eq!(d.value(&x, &[0u8, 1]), nf(2));
    }
}

#[test]
fn targets_outside_their_domain() {
    let it = |index| Err(Error::InvalidTarget { index });
    let x = [0.0f32; 3];
    for bad in [-0.5f32, 1.5, -1e-7, 1.0 + 1e-6] {
        let t = [0.0, bad, 1.0];
        assert_eq!(BceWithLogits::new().value(&x, &t, None), it(1));
        assert_eq!(focal().value(&x, &t), it(1));
        assert_eq!(ghm_c(0.0).value(&x, &t, None), it(1));
    }
    // Labels: at or above `classes` names no class for softmax losses (the index is the row).
    let x = [0.0f32; 6];
    assert_eq!(softmax_ce(3).value(&x, &[0u8, 3]), it(1));
    assert_eq!(softmax_focal(3).value(&x, &[7i32, 0]), it(0));
    let mut d =
        DistributionCe::<f32, 4>::new(3, Weighting::InverseFrequency { power: 1.0 }).unwrap();
    assert_eq!(d.value(&x, &[0u8, 3]), it(1));
    assert_eq!(
        d.observe(&[0u8, 1, 9]),
        Err(Error::InvalidTarget { index: 2 })
    );
    assert_eq!(d.counts(), &[0, 0, 0], "counts unchanged after an Err");
    // For sigmoid heads the same labels are background, not an error.
    let head = SigmoidFocalLabels::new(focal(), 3).unwrap();
    assert!(head.value(&x, &[3u8, 200], None).is_ok());
}

#[test]
fn bad_hyper_parameters() {
    let p = |name| Err(Error::InvalidParameter(name));
    assert_eq!(SigmoidFocal::new(0.25f32, -1.0).map(|_| ()), p("gamma"));
    assert_eq!(
        SigmoidFocal::new(0.25f32, f32::INFINITY).map(|_| ()),
        p("gamma")
    );
    assert_eq!(SigmoidFocal::new(-0.5f32, 2.0).map(|_| ()), p("alpha"));
    assert_eq!(SigmoidFocal::new(1.01f32, 2.0).map(|_| ()), p("alpha"));
    assert!(
        SigmoidFocal::new(-1.0f32, 2.0).is_ok(),
        "alpha = -1 is 'off'"
    );
    let focal = focal();
    assert_eq!(SigmoidFocalLabels::new(focal, 0).map(|_| ()), p("classes"));
    assert_eq!(
        SigmoidFocalLabels::new(focal, 2)
            .unwrap()
            .with_class_alpha(&[0.5, 2.0])
            .map(|_| ()),
        p("alpha")
    );
    assert_eq!(SoftmaxCrossEntropy::new(0).map(|_| ()), p("classes"));
    assert_eq!(SoftmaxFocal::new(-1.0f32, 2.0, 3).map(|_| ()), p("alpha"));
    assert_eq!(SoftmaxFocal::new(0.25f32, -2.0, 3).map(|_| ()), p("gamma"));
    assert_eq!(SoftmaxFocal::new(0.25f32, 2.0, 0).map(|_| ()), p("classes"));
    assert_eq!(SmoothL1::new(-0.1f32).map(|_| ()), p("beta"));
    assert_eq!(SmoothL1::new(f32::NAN).map(|_| ()), p("beta"));
    assert_eq!(Asl1::new(0.0f32).map(|_| ()), p("mu"));
    assert_eq!(Asl1::new(-0.02f32).map(|_| ()), p("mu"));
    // Rows: one bad setting each, and the parameter the error names.
    let ghm_c_rows = [
        ((0, 0.0, 1.0), "bins"),
        ((11, 0.0, 1.0), "bins"),
        ((10, 1.0, 1.0), "momentum"),
        ((10, -0.1, 1.0), "momentum"),
        ((10, 0.5, -1.0), "loss_weight"),
    ];
    for ((bins, momentum, loss_weight), name) in ghm_c_rows {
        assert_eq!(
            GhmC::<f32, 10>::new(bins, momentum, loss_weight).map(|_| ()),
            p(name),
            "GhmC::new({bins}, {momentum}, {loss_weight})"
        );
    }
    assert_eq!(GhmR::<f32, 10>::new(0.0, 10, 0.5, 1.0).map(|_| ()), p("mu"));
    assert_eq!(GradientHistogram::<10>::new(0).map(|_| ()), p("bins"));
    type D = DistributionCe<f32, 4>;
    let inverse = Weighting::InverseFrequency { power: 1.0 };
    let distribution_rows = [
        (0, inverse, "classes"),
        (5, inverse, "classes"),
        (3, Weighting::InverseFrequency { power: -1.0 }, "power"),
        (3, Weighting::EffectiveNumber { beta: 1.0 }, "beta"),
        (3, Weighting::LogitAdjustment { tau: f32::NAN }, "tau"),
        // Fuzzing finding (loss_distribution_ce): tau = -2e38 made the f32 logit offsets infinite.
        (3, Weighting::LogitAdjustment { tau: -2e38 }, "tau"),
        (3, Weighting::LogitAdjustment { tau: 1000.5 }, "tau"),
    ];
    for (classes, weighting, name) in distribution_rows {
        assert_eq!(
            D::new(classes, weighting).map(|_| ()),
            p(name),
            "{classes} classes, {weighting:?}"
        );
    }
    let mut d = D::new(3, Weighting::LogitAdjustment { tau: -1000.0 }).unwrap();
    d.observe(&[0u8; 500]).unwrap();
    let mut offsets = [0.0f32; 3];
    d.class_weights(&mut offsets).unwrap();
    assert!(offsets.iter().all(|o| o.is_finite()), "{offsets:?}");
    assert!(d.value(&[1e4f32, -1e4, 0.0], &[1u8]).unwrap().is_finite());
}

#[test]
fn empty_input_is_zero_and_leaves_state_alone() {
    let e: [f32; 0] = [];
    assert_eq!(BceWithLogits::new().value(&e, &e, None), Ok(0.0));
    assert_eq!(focal().value_and_grad(&e, &e, &mut []), Ok(0.0));
    let head = SigmoidFocalLabels::new(focal(), 3).unwrap();
    assert_eq!(head.value(&e, &[0u8; 0], None), Ok(0.0));
    assert_eq!(softmax_ce(3).value(&e, &[0u8; 0]), Ok(0.0));
    assert_eq!(softmax_focal(3).value(&e, &[0u8; 0]), Ok(0.0));
    assert_eq!(smooth_l1().value(&e, &e), Ok(0.0));
    assert_eq!(asl1().value(&e, &e), Ok(0.0));
    // All rows ignored is "empty" too: 0, not PyTorch's NaN.
    assert_eq!(softmax_ce(2).value(&[1.0f32, 2.0], &[-1i32]), Ok(0.0));
    let mut ghm = ghm_c(0.75);
    let before = ghm;
    assert_eq!(ghm.value(&e, &e, None), Ok(0.0));
    assert_eq!(
        ghm, before,
        "an empty batch leaves the moving average alone"
    );
    let mut ghm = ghm_r(0.75);
    let before = ghm;
    assert_eq!(ghm.value(&e, &e, None), Ok(0.0));
    assert_eq!(ghm, before);
    let mut d =
        DistributionCe::<f32, 4>::new(3, Weighting::EffectiveNumber { beta: 0.99 }).unwrap();
    d.observe::<u8>(&[]).unwrap();
    assert_eq!(d.counts(), &[0, 0, 0]);
}

#[test]
fn ghm_state_is_unchanged_after_an_err() {
    let mut ghm = GhmC::<f32, 30>::new(30, 0.75, 1.0).unwrap();
    ghm.value(&[-3.0, 2.0, 0.5, -1.0], &[0.0, 1.0, 1.0, 0.0], None)
        .unwrap();
    let before = ghm;
    // A bad element at the very end: everything before it was already looked at.
    assert!(ghm
        .value(&[-3.0, 2.0, 0.5, NAN], &[0.0, 1.0, 1.0, 0.0], None)
        .is_err());
    assert!(ghm
        .value(&[-3.0, 2.0, 0.5, 1.0], &[0.0, 1.0, 1.0, 2.0], None)
        .is_err());
    assert!(ghm
        .value_and_grad(&[-3.0, 2.0], &[0.0, 1.0], None, &mut [0.0; 1])
        .is_err());
    assert_eq!(ghm, before);
    // The streaming phases too: a failed observe leaves the histogram as it was.
    let mut hist = ghm.histogram();
    ghm.observe(&mut hist, &[-3.0, 2.0], &[0.0, 1.0], None)
        .unwrap();
    let counted = hist;
    assert!(ghm
        .observe(&mut hist, &[-3.0, INF], &[0.0, 1.0], None)
        .is_err());
    assert_eq!(hist, counted);
    let mut other = GradientHistogram::<30>::new(10).unwrap();
    assert_eq!(hist.merge(&other), Err(Error::InvalidParameter("bins")));
    assert_eq!(other.merge(&hist), Err(Error::InvalidParameter("bins")));
    assert_eq!(
        ghm.finish(&other).map(|_| ()),
        Err(Error::InvalidParameter("bins"))
    );
    assert_eq!(ghm, before);

    let mut ghm = ghm_r(0.9);
    ghm.value(&[0.1, 0.2], &[0.0, 0.5], None).unwrap();
    let before = ghm;
    assert!(ghm.value(&[0.1, 0.2], &[0.0, NAN], None).is_err());
    assert!(ghm
        .value(&[0.1, 0.2], &[0.0, 0.5], Some(&[1.0, INF]))
        .is_err());
    assert_eq!(ghm, before);
}

/// Row "bad hyper-parameter", for the normalisers: a negative, NaN or infinite `avg_factor` is
/// refused by every loss's builder, which leaves the loss it was called on as it was; so are a
/// moving-average normaliser's momentum outside `[0, 1)` and a non-positive initial value.
#[test]
fn bad_avg_factors_and_normalizers() {
    let p = |name| Err(Error::InvalidParameter(name));
    for bad in [-1.0f32, -1e-30, NAN, INF, -INF] {
        assert_eq!(
            BceWithLogits::new().with_avg_factor(bad).map(|_| ()),
            p("avg_factor")
        );
        assert_eq!(
            softmax_ce(3).with_avg_factor(bad).map(|_| ()),
            p("avg_factor")
        );
        assert_eq!(focal().with_avg_factor(bad).map(|_| ()), p("avg_factor"));
        let head = SigmoidFocalLabels::new(focal(), 2).unwrap();
        assert_eq!(head.with_avg_factor(bad).map(|_| ()), p("avg_factor"));
        assert_eq!(
            softmax_focal(3).with_avg_factor(bad).map(|_| ()),
            p("avg_factor")
        );
        assert_eq!(
            smooth_l1().with_avg_factor(bad).map(|_| ()),
            p("avg_factor")
        );
        assert_eq!(asl1().with_avg_factor(bad).map(|_| ()), p("avg_factor"));
        let d = DistributionCe::<f32, 4>::new(2, Weighting::InverseFrequency { power: 1.0 });
        assert_eq!(d.unwrap().with_avg_factor(bad).map(|_| ()), p("avg_factor"));
        // The loss it was called on keeps its factor (the builder consumes a copy).
        let set = focal().with_avg_factor(4.0).unwrap();
        assert!(set.with_avg_factor(bad).is_err());
        assert_eq!(set.avg_factor(), Some(4.0));
        let bce = BceWithLogits::new().with_avg_factor(2.5f32).unwrap();
        assert!(bce.with_avg_factor(bad).is_err());
        assert_eq!(bce.avg_factor(), Some(2.5));
    }
    // Q15.16 has no NaN; a negative factor is its only bad one.
    let neg = Q16::from_f64(-0.5);
    assert_eq!(
        SmoothL1::new(Q16::from_f64(1.0))
            .unwrap()
            .with_avg_factor(neg)
            .map(|_| ()),
        p("avg_factor")
    );
    assert_eq!(
        BceWithLogits::new().with_avg_factor(neg).map(|_| ()),
        p("avg_factor")
    );
    assert!(
        focal().with_avg_factor(0.0).is_ok(),
        "0 is mmdetection's sum / eps"
    );
    for (momentum, initial, name) in [
        (1.0f32, 100.0, "momentum"),
        (-0.1, 100.0, "momentum"),
        (NAN, 100.0, "momentum"),
        (0.9, 0.0, "initial"),
        (0.9, -3.0, "initial"),
        (0.9, NAN, "initial"),
        (0.9, INF, "initial"),
    ] {
        assert_eq!(
            MovingAverageNormalizer::new(momentum, initial).map(|_| ()),
            p(name)
        );
    }
}

/// Row "bad hyper-parameter", at call time: `avg_factor` with `Reduction::Sum` (mmdetection's
/// `ValueError`) is refused by every entry point of every loss, before its inputs are looked
/// at (so empty and malformed inputs too), writing nothing; the class counts of a
/// distribution-aware CE stay as they were.
#[test]
fn avg_factor_with_sum_is_refused_by_every_entry_point() {
    let e = Err(Error::InvalidParameter("avg_factor"));
    let sum = Reduction::Sum;
    let (x, t) = ([0.5f32, -1.0, 2.0, 0.0], [1.0f32, 0.0, 0.0, 1.0]);
    let check = |value: Result<f32, Error>, grad: Result<f32, Error>, per: Result<(), Error>| {
        assert_eq!(value, e);
        assert_eq!(grad, e);
        assert_eq!(per.map(|()| 0.0), e);
    };
    let mut g = [7.0f32; 4];
    let mut rows = [7.0f32; 2];
    let bce = BceWithLogits::new()
        .with_avg_factor(3.0f32)
        .unwrap()
        .with_reduction(sum);
    check(
        bce.value(&x, &t, None),
        bce.value_and_grad(&x, &t, None, &mut g),
        bce.per_element(&x, &t, None, &mut g),
    );
    assert_eq!(bce.value::<f32>(&[], &[], None), e, "empty input");
    assert_eq!(bce.value(&x, &t[..1], None), e, "before the lengths");
    let focal = focal().with_reduction(sum).with_avg_factor(3.0).unwrap();
    check(
        focal.value(&x, &t),
        focal.value_and_grad(&x, &t, &mut g),
        focal.per_element(&x, &t, &mut g),
    );
    let head = SigmoidFocalLabels::new(focal, 2).unwrap();
    check(
        head.value(&x, &[0u8, 5], None),
        head.value_and_grad(&x, &[0u8, 5], None, &mut g),
        head.per_element(&x, &[0u8, 5], None, &mut g),
    );
    let ce = softmax_ce(2)
        .with_avg_factor(1.0f32)
        .unwrap()
        .with_reduction(sum);
    check(
        ce.value(&x, &[0i32, 1]),
        ce.value_and_grad(&x, &[0i32, 1], &mut g),
        ce.per_element(&x, &[0i32, 1], &mut rows),
    );
    let sf = softmax_focal(2)
        .with_avg_factor(1.0)
        .unwrap()
        .with_reduction(sum);
    check(
        sf.value(&x, &[0i32, 1]),
        sf.value_and_grad(&x, &[0i32, 1], &mut g),
        sf.per_element(&x, &[0i32, 1], &mut rows),
    );
    let l1 = smooth_l1()
        .with_avg_factor(2.0)
        .unwrap()
        .with_reduction(sum);
    check(
        l1.value(&x, &t),
        l1.value_and_grad(&x, &t, &mut g),
        l1.per_element(&x, &t, &mut g),
    );
    let a = asl1().with_avg_factor(2.0).unwrap().with_reduction(sum);
    check(
        a.value(&x, &t),
        a.value_and_grad(&x, &t, &mut g),
        a.per_element(&x, &t, &mut g),
    );
    let mut d = DistributionCe::<f32, 4>::new(2, Weighting::InverseFrequency { power: 1.0 })
        .unwrap()
        .with_avg_factor(2.0)
        .unwrap()
        .with_reduction(sum);
    d.observe(&[0u8, 0, 1]).unwrap();
    let counts = [d.counts()[0], d.counts()[1]];
    check(
        d.value(&x, &[0u8, 1]),
        d.value_and_grad(&x, &[0u8, 1], &mut g),
        d.per_element(&x, &[0u8, 1], &mut rows),
    );
    assert_eq!(d.counts(), counts);
    assert_eq!((g, rows), ([7.0; 4], [7.0; 2]), "nothing written");
    // `None` ignores the factor, as mmdetection does; `Mean` takes it.
    let none = BceWithLogits::new().with_reduction(Reduction::None);
    assert_eq!(
        none.with_avg_factor(3.0f32).unwrap().value(&x, &t, None),
        none.value(&x, &t, None)
    );
}
