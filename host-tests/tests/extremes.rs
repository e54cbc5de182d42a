//! Exactness beyond the references: saturated logits, small gamma, `+-1e4` logits.

use hardmine::{BceWithLogits, Reduction, SigmoidFocal, SoftmaxCrossEntropy, SoftmaxFocal};

fn focal_f64(x: f64, t: f64, gamma: f64) -> (f64, f64) {
    let f = SigmoidFocal::new(0.25, gamma)
        .unwrap()
        .with_reduction(Reduction::Sum);
    let mut g = [0.0];
    let l = f.value_and_grad(&[x], &[t], &mut g).unwrap();
    (l, g[0])
}

#[test]
fn focal_is_finite_and_exact_where_torchvision_gives_nan() {
    for gamma in [0.0f64, 0.25, 0.5, 0.999, 1.0, 2.0, 5.0] {
        for x in [-1e4f64, -800.0, -100.0, -40.0, 0.0, 40.0, 100.0, 800.0, 1e4] {
            for t in [0.0, 1.0] {
                let (l, g) = focal_f64(x, t, gamma);
                assert!(
                    l.is_finite() && g.is_finite(),
                    "gamma {gamma} x {x} t {t}: {l} {g}"
                );
                let f = SigmoidFocal::new(0.25f32, gamma as f32)
                    .unwrap()
                    .with_reduction(Reduction::Sum);
                let mut g32 = [0.0f32];
                let l32 = f
                    .value_and_grad(&[x as f32], &[t as f32], &mut g32)
                    .unwrap();
                assert!(
                    l32.is_finite() && g32[0].is_finite(),
                    "f32 gamma {gamma} x {x} t {t}"
                );
            }
        }
    }
    // A confidently wrong logit keeps full loss: x = 1e4 for a negative is ce = 1e4.
    let (l, g) = focal_f64(1e4, 0.0, 2.0);
    assert_eq!(l, 0.75 * 1e4);
    assert_eq!(g, 0.75);
    // A confident correct logit keeps relative accuracy: q = sigma(-30) exactly.
    let q = 1.0 / (1.0 + 30f64.exp());
    let ce = (-30f64).exp().ln_1p();
    let (l, _) = focal_f64(30.0, 1.0, 2.0);
    assert!((l - 0.25 * ce * q * q).abs() <= 1e-14 * l, "{l}");
}

#[test]
fn small_gamma_gradient_is_the_limit() {
    // gamma = 0.5 at a saturated negative (t = 0, x = 60): q = sigma(x), r = sigma(-x), so
    // dL/dx = (1 - alpha) q^gamma [sigma(x) + gamma ce sigma(-x)], with ce = softplus(x).
    let x = 60.0f64;
    let (s, s_neg) = (1.0 / (1.0 + (-x).exp()), (-x).exp() / (1.0 + (-x).exp()));
    let ce = x + (-x).exp().ln_1p();
    let exp = 0.75 * s.sqrt() * (s + 0.5 * ce * s_neg);
    let (_, g) = focal_f64(x, 0.0, 0.5);
    assert!((g - exp).abs() <= 1e-15 * exp, "{g} vs {exp}");
    // And at a saturated positive (t = 1, x = 60): q = sigma(-x) underflows nothing yet;
    // dL/dx = -alpha q^gamma [sigma(-x) + gamma ce sigma(x)], ce = softplus(-x).
    let ce = (-x).exp().ln_1p();
    let exp = -0.25 * s_neg.sqrt() * (s_neg + 0.5 * ce * s);
    let (_, g) = focal_f64(x, 1.0, 0.5);
    assert!((g - exp).abs() <= 1e-14 * exp.abs(), "{g} vs {exp}");
}

#[test]
fn huge_logits_in_bce_and_softmax() {
    let bce = BceWithLogits::new().with_reduction(Reduction::None);
    let mut out = [0.0f32; 4];
    bce.per_element(
        &[1e4f32, -1e4, 1e4, -1e4],
        &[1.0, 1.0, 0.0, 0.0],
        None,
        &mut out,
    )
    .unwrap();
    assert_eq!(out, [0.0, 1e4, 1e4, 0.0]);
    let ce = SoftmaxCrossEntropy::new(3)
        .unwrap()
        .with_reduction(Reduction::None);
    let mut rows = [0.0f32; 2];
    ce.per_element(&[1e4f32, -1e4, 0.0, -1e4, 1e4, 0.0], &[0u8, 0], &mut rows)
        .unwrap();
    assert_eq!(rows, [0.0, 2e4]);
    let mut g = [0.0f32; 6];
    ce.value_and_grad(&[1e4f32, -1e4, 0.0, -1e4, 1e4, 0.0], &[0u8, 0], &mut g)
        .unwrap();
    assert_eq!(g, [0.0, 0.0, 0.0, -1.0, 1.0, 0.0]);
    for gamma in [0.0f32, 0.5, 2.0] {
        let f = SoftmaxFocal::new(0.25f32, gamma, 3).unwrap();
        let mut g = [0.0f32; 6];
        let l = f
            .value_and_grad(&[1e4, -1e4, 0.0, -1e4, 1e4, 0.0], &[0u8, 0], &mut g)
            .unwrap();
        assert!(
            l.is_finite() && g.iter().all(|v| v.is_finite()),
            "gamma {gamma}: {l} {g:?}"
        );
    }
}
