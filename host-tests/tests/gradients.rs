//! Central-difference gradient checks in f64 for every loss: the analytic gradient of
//! `value_and_grad` against `(L(x + h) - L(x - h)) / 2h` of the same loss's `value`.

use hardmine::{
    Asl1, BceWithLogits, DistributionCe, GhmC, GhmR, Reduction, SigmoidFocal, SigmoidFocalLabels,
    SmoothL1, SoftmaxCrossEntropy, SoftmaxFocal, Weighting,
};
use hardmine_host_tests::random;
use hardmine_host_tests::tolerance::{FD_REL, FD_STEP};

/// Compares `grad` with central differences of `value` at every coordinate of `x`.
fn fd_check(name: &str, x: &[f64], grad: &[f64], value: impl Fn(&[f64]) -> f64) {
    let scale = grad.iter().fold(0.0f64, |m, g| m.max(g.abs())).max(1e-3);
    let mut xp = x.to_vec();
    for i in 0..x.len() {
        let h = FD_STEP * x[i].abs().max(1.0);
        xp[i] = x[i] + h;
        let up = value(&xp);
        xp[i] = x[i] - h;
        let down = value(&xp);
        xp[i] = x[i];
        let fd = (up - down) / (2.0 * h);
        let err = (fd - grad[i]).abs();
        assert!(
            err <= FD_REL * scale + FD_REL * grad[i].abs(),
            "{name}[{i}] at x={}: analytic {} vs fd {fd}",
            x[i],
            grad[i]
        );
    }
}

#[test]
fn elementwise_losses() {
    for (round, mut r) in random::rounds(600, 6) {
        let n = 40;
        let x = random::uniform(&mut r, n, -8.0, 8.0);
        let t = random::targets(&mut r, n, 0.5);
        let w = random::uniform(&mut r, n, 0.0, 2.0);
        let red = [Reduction::Mean, Reduction::Sum, Reduction::None][round as usize % 3];
        let mut g = vec![0.0; n];

        let bce = BceWithLogits::new().with_reduction(red);
        bce.value_and_grad(&x, &t, Some(&w), &mut g).unwrap();
        fd_check("bce", &x, &g, |x| bce.value(x, &t, Some(&w)).unwrap());

        for gamma in [0.0, 0.4, 1.0, 2.0, 3.7] {
            let focal = SigmoidFocal::new(0.25, gamma).unwrap().with_reduction(red);
            focal.value_and_grad(&x, &t, &mut g).unwrap();
            fd_check(&format!("focal gamma {gamma}"), &x, &g, |x| {
                focal.value(x, &t).unwrap()
            });
        }

        let p = random::uniform(&mut r, n, -2.0, 2.0);
        let q: Vec<f64> = p.iter().map(|v| v + 0.37).collect();
        let sl = SmoothL1::new(0.5).unwrap().with_reduction(red);
        let pr = random::uniform(&mut r, n, -2.0, 2.0);
        sl.value_and_grad(&pr, &q, &mut g).unwrap();
        fd_check("smooth l1", &pr, &g, |x| sl.value(x, &q).unwrap());
        let a = Asl1::new(0.1).unwrap().with_reduction(red);
        a.value_and_grad(&pr, &q, &mut g).unwrap();
        fd_check("asl1", &pr, &g, |x| a.value(x, &q).unwrap());
    }
}

#[test]
fn label_and_softmax_losses() {
    for (round, mut r) in random::rounds(700, 6) {
        let (rows, c) = (12, 5);
        let x = random::uniform(&mut r, rows * c, -6.0, 6.0);
        let y = random::labels(&mut r, rows, -1, c as i64 + 1);
        let y_soft: Vec<i64> = y.iter().map(|&v| v.min(c as i64 - 1)).collect();
        let w: Vec<f64> = (0..rows).map(|i| [0.0, 1.0, 0.7][i % 3]).collect();
        let red = [Reduction::Mean, Reduction::Sum][round as usize % 2];
        let mut g = vec![0.0; rows * c];

        let alphas = [0.1, 0.2, 0.3, 0.4, 0.9];
        let head =
            SigmoidFocalLabels::new(SigmoidFocal::new(0.25, 1.5).unwrap().with_reduction(red), c)
                .unwrap()
                .with_class_alpha(&alphas)
                .unwrap();
        head.value_and_grad(&x, &y, Some(&w), &mut g).unwrap();
        fd_check("focal labels", &x, &g, |x| {
            head.value(x, &y, Some(&w)).unwrap()
        });

        let ce = SoftmaxCrossEntropy::new(c).unwrap().with_reduction(red);
        ce.value_and_grad(&x, &y_soft, &mut g).unwrap();
        fd_check("softmax ce", &x, &g, |x| ce.value(x, &y_soft).unwrap());

        for gamma in [0.0, 0.7, 2.0] {
            let f = SoftmaxFocal::new(0.25, gamma, c)
                .unwrap()
                .with_reduction(red);
            f.value_and_grad(&x, &y_soft, &mut g).unwrap();
            fd_check(&format!("softmax focal {gamma}"), &x, &g, |x| {
                f.value(x, &y_soft).unwrap()
            });
        }

        for weighting in [
            Weighting::InverseFrequency { power: 0.5 },
            Weighting::EffectiveNumber { beta: 0.99 },
            Weighting::LogitAdjustment { tau: 1.0 },
        ] {
            let mut d = DistributionCe::<f64, 8>::new(c, weighting)
                .unwrap()
                .with_reduction(red);
            d.observe(&[0i64, 0, 0, 0, 1, 1, 2]).unwrap();
            d.value_and_grad(&x, &y_soft, &mut g).unwrap();
            fd_check(&format!("distribution ce {weighting:?}"), &x, &g, |x| {
                d.value(x, &y_soft).unwrap()
            });
        }
    }
}

#[test]
fn ghm_losses_with_detached_weights() {
    // The weights are constants of the backward pass: differentiate the loss with the
    // histogram frozen, i.e. with the weights of the unperturbed batch applied.
    let mut r = random::rng(800);
    let n = 60;
    let x = random::uniform(&mut r, n, -6.0, 4.0);
    let t: Vec<f64> = (0..n).map(|i| if i % 7 == 0 { 1.0 } else { 0.0 }).collect();
    let w: Vec<f64> = (0..n).map(|i| if i % 9 == 0 { 0.0 } else { 1.0 }).collect();
    let mut ghm = GhmC::<f64, 10>::new(10, 0.75, 2.0).unwrap();
    let mut hist = ghm.histogram();
    ghm.observe(&mut hist, &x, &t, Some(&w)).unwrap();
    let weights = ghm.finish(&hist).unwrap();
    let mut g = vec![0.0; n];
    ghm.apply(&weights, &x, &t, Some(&w), Some(&mut g)).unwrap();
    // Small steps do not move any norm across a bin edge for these inputs, so the frozen
    // weights are the batch's own.
    fd_check("ghm-c", &x, &g, |xp| {
        ghm.apply(&weights, xp, &t, Some(&w), None).unwrap()
    });

    let p = random::uniform(&mut r, n, -1.0, 1.0);
    let q = random::uniform(&mut r, n, -1.0, 1.0);
    let mut ghm = GhmR::<f64, 10>::new(0.02, 10, 0.0, 1.0).unwrap();
    let mut hist = ghm.histogram();
    ghm.observe(&mut hist, &p, &q, Some(&w)).unwrap();
    let weights = ghm.finish(&hist).unwrap();
    ghm.apply(&weights, &p, &q, Some(&w), Some(&mut g)).unwrap();
    fd_check("ghm-r", &p, &g, |xp| {
        ghm.apply(&weights, xp, &q, Some(&w), None).unwrap()
    });
}
