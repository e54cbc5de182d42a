//! `avg_factor` (mmdetection's `weight_reduce_loss`: `Mean` is `sum / (avg_factor + eps)`,
//! `None` ignores it) on the f64, f32 and Q15.16 paths of every loss that has a reduction, the
//! exact Q15.16 quotient, smooth L1's `beta = 0` (plain L1) on every path, and the
//! moving-average normaliser's sequence.

use hardmine::{
    Asl1, BceWithLogits, DistributionCe, MovingAverageNormalizer, Real, Reduction, SigmoidFocal,
    SigmoidFocalLabels, SmoothL1, SoftmaxCrossEntropy, SoftmaxFocal, Weighting, AVG_FACTOR_EPS,
    Q16,
};

/// `(value, value_and_grad's value, grad, per_element)` of a loss.
type Results<T> = (T, T, Vec<T>, Vec<T>);

/// One loss's three entry points, as closures of its reduction and factor.
struct Entry<T> {
    /// The results of the loss with the reduction and the factor.
    call: Box<dyn Fn(Reduction, Option<T>) -> Results<T>>,
}

/// A loss's value and its `value_and_grad`, over f64 inputs.
type Pair<'a> = (&'a dyn Fn(&[f64]) -> f64, &'a dyn Fn(&mut [f64]) -> f64);

const X: [f64; 12] = [
    0.5, -1.25, 2.0, 0.0, 3.5, -0.75, 1.0, -2.5, 0.25, 4.0, -3.0, 1.5,
];
const T01: [f64; 12] = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.25, 0.0, 1.0, 0.0];
const LABELS: [i32; 4] = [0, -1, 2, 1];

fn reals<T: Real>(xs: &[f64]) -> Vec<T> {
    xs.iter().map(|&x| T::from_f64(x)).collect()
}

/// Every loss with a reduction, on `T`.
fn entries<T: Real + 'static>() -> Vec<(&'static str, Entry<T>)> {
    let x: Vec<T> = reals(&X);
    let t: Vec<T> = reals(&T01);
    let n = x.len();
    fn run<T: Real>(
        n: usize,
        rows: usize,
        value: impl Fn() -> Result<T, hardmine::Error>,
        grad: impl Fn(&mut [T]) -> Result<T, hardmine::Error>,
        per: impl Fn(&mut [T]) -> Result<(), hardmine::Error>,
    ) -> (T, T, Vec<T>, Vec<T>) {
        let mut g = vec![T::ZERO; n];
        let mut o = vec![T::ZERO; rows];
        let v = value().unwrap();
        let vg = grad(&mut g).unwrap();
        per(&mut o).unwrap();
        (v, vg, g, o)
    }
    let mut out: Vec<(&'static str, Entry<T>)> = Vec::new();
    let (xa, ta) = (x.clone(), t.clone());
    out.push((
        "bce",
        Entry {
            call: Box::new(move |r, f| {
                let mut l = BceWithLogits::new().with_reduction(r);
                if let Some(f) = f {
                    l = l.with_avg_factor(f).unwrap();
                }
                let w = Some(&ta[..]);
                run(
                    n,
                    n,
                    || l.value(&xa, &ta, w),
                    |g| l.value_and_grad(&xa, &ta, w, g),
                    |o| l.per_element(&xa, &ta, w, o),
                )
            }),
        },
    ));
    let (xa, ta) = (x.clone(), t.clone());
    out.push((
        "sigmoid_focal",
        Entry {
            call: Box::new(move |r, f| {
                let mut l = SigmoidFocal::new(T::from_f64(0.25), T::from_f64(2.0))
                    .unwrap()
                    .with_reduction(r);
                if let Some(f) = f {
                    l = l.with_avg_factor(f).unwrap();
                }
                run(
                    n,
                    n,
                    || l.value(&xa, &ta),
                    |g| l.value_and_grad(&xa, &ta, g),
                    |o| l.per_element(&xa, &ta, o),
                )
            }),
        },
    ));
    let xa = x.clone();
    out.push((
        "sigmoid_focal_labels",
        Entry {
            call: Box::new(move |r, f| {
                let focal = SigmoidFocal::new(T::from_f64(0.25), T::from_f64(1.5))
                    .unwrap()
                    .with_reduction(r);
                let mut l = SigmoidFocalLabels::new(focal, 3).unwrap();
                if let Some(f) = f {
                    l = l.with_avg_factor(f).unwrap();
                }
                run(
                    n,
                    n,
                    || l.value(&xa, &LABELS, None),
                    |g| l.value_and_grad(&xa, &LABELS, None, g),
                    |o| l.per_element(&xa, &LABELS, None, o),
                )
            }),
        },
    ));
    let xa = x.clone();
    out.push((
        "softmax_cross_entropy",
        Entry {
            call: Box::new(move |r, f| {
                let mut l = SoftmaxCrossEntropy::new(3).unwrap().with_reduction(r);
                if let Some(f) = f {
                    l = l.with_avg_factor(f).unwrap();
                }
                run(
                    n,
                    4,
                    || l.value(&xa, &LABELS),
                    |g| l.value_and_grad(&xa, &LABELS, g),
                    |o| l.per_element(&xa, &LABELS, o),
                )
            }),
        },
    ));
    let xa = x.clone();
    out.push((
        "softmax_focal",
        Entry {
            call: Box::new(move |r, f| {
                let mut l = SoftmaxFocal::new(T::from_f64(0.25), T::from_f64(2.0), 3)
                    .unwrap()
                    .with_reduction(r);
                if let Some(f) = f {
                    l = l.with_avg_factor(f).unwrap();
                }
                run(
                    n,
                    4,
                    || l.value(&xa, &LABELS),
                    |g| l.value_and_grad(&xa, &LABELS, g),
                    |o| l.per_element(&xa, &LABELS, o),
                )
            }),
        },
    ));
    let xa = x.clone();
    out.push((
        "distribution_ce",
        Entry {
            call: Box::new(move |r, f| {
                let power = T::from_f64(0.5);
                let mut l =
                    DistributionCe::<T, 4>::new(3, Weighting::InverseFrequency { power }).unwrap();
                l.observe(&[0u8, 0, 0, 1, 2, 2]).unwrap();
                let mut l = l.with_reduction(r);
                if let Some(f) = f {
                    l = l.with_avg_factor(f).unwrap();
                }
                run(
                    n,
                    4,
                    || l.value(&xa, &LABELS),
                    |g| l.value_and_grad(&xa, &LABELS, g),
                    |o| l.per_element(&xa, &LABELS, o),
                )
            }),
        },
    ));
    for (name, beta) in [("smooth_l1", 0.5), ("l1", 0.0)] {
        let (xa, ta) = (x.clone(), t.clone());
        out.push((
            name,
            Entry {
                call: Box::new(move |r, f| {
                    let mut l = SmoothL1::new(T::from_f64(beta)).unwrap().with_reduction(r);
                    if let Some(f) = f {
                        l = l.with_avg_factor(f).unwrap();
                    }
                    run(
                        n,
                        n,
                        || l.value(&xa, &ta),
                        |g| l.value_and_grad(&xa, &ta, g),
                        |o| l.per_element(&xa, &ta, o),
                    )
                }),
            },
        ));
    }
    let (xa, ta) = (x, t);
    out.push((
        "asl1",
        Entry {
            call: Box::new(move |r, f| {
                let mut l = Asl1::new(T::from_f64(0.02)).unwrap().with_reduction(r);
                if let Some(f) = f {
                    l = l.with_avg_factor(f).unwrap();
                }
                run(
                    n,
                    n,
                    || l.value(&xa, &ta),
                    |g| l.value_and_grad(&xa, &ta, g),
                    |o| l.per_element(&xa, &ta, o),
                )
            }),
        },
    ));
    out
}

/// Mean with a factor is the sum over `f + eps` (value and gradient, within `rel` of the
/// sum's scale); `value` equals `value_and_grad`'s value; `None` and the per-element losses
/// ignore the factor, bit for bit.
fn relation<T: Real + 'static>(rel: f64) {
    for (name, e) in entries::<T>() {
        let (sum, _, sum_g, per) = (e.call)(Reduction::Sum, None);
        let (none, _, none_g, _) = (e.call)(Reduction::None, None);
        for f in [0.0, 0.375, 1.0, 7.0, 250.0] {
            let factor = T::from_f64(f);
            let div = factor.to_f64() + AVG_FACTOR_EPS;
            let (v, vg, g, o) = (e.call)(Reduction::Mean, Some(factor));
            assert_eq!(v, vg, "{name} f {f}: value and value_and_grad agree");
            assert_eq!(o, per, "{name} f {f}: per-element losses ignore the factor");
            let close = |got: f64, want: f64| {
                // A Q15.16 result can saturate; the float ones cannot here.
                let sat = (T::from_f64(1e9).to_f64() - got.abs()).abs() < 1.0;
                let tol = rel * want.abs().max(1.0) + rel / div;
                (sat && want.abs() > 3e4) || (got - want).abs() <= tol
            };
            let want = sum.to_f64() / div;
            assert!(close(v.to_f64(), want), "{name} f {f}: {v:?} vs {want}");
            for (i, (&a, &b)) in g.iter().zip(&sum_g).enumerate() {
                let want = b.to_f64() / div;
                assert!(
                    close(a.to_f64(), want),
                    "{name} f {f} grad[{i}]: {a:?} vs {want}"
                );
            }
            let (nv, _, ng, _) = (e.call)(Reduction::None, Some(factor));
            assert_eq!((nv, ng), (none, none_g.clone()), "{name}: none ignores it");
        }
    }
}

#[test]
fn mean_with_a_factor_is_the_sum_over_factor_plus_eps_f64() {
    relation::<f64>(1e-14);
}

#[test]
fn mean_with_a_factor_is_the_sum_over_factor_plus_eps_f32() {
    relation::<f32>(2e-7);
}

#[test]
fn mean_with_a_factor_is_the_sum_over_factor_plus_eps_fixed() {
    relation::<Q16>(2e-5);
}

/// Q15.16: the quotient of the exact `f + 2^-23` (below one LSB) in integers, rounded once
/// to nearest (ties away from zero) and saturated: `round(sum_bits 2^23 / (128 f_bits + 1))`,
/// computed here from the `Sum` result's bits.
#[test]
fn the_fixed_quotient_is_exact() {
    let round = |n: i128, d: i128| {
        let q = (2 * n.abs() + d) / (2 * d);
        if n < 0 {
            -q
        } else {
            q
        }
    };
    for (name, e) in entries::<Q16>() {
        let (sum, _, sum_g, _) = (e.call)(Reduction::Sum, None);
        for bits in [0i128, 1, 2, 3, 100, 65_536, 98_304, 655_360, 3_000_000] {
            let f = Q16::from_f64(bits as f64 / 65536.0);
            let d = 128 * bits + 1;
            let want = |s: Q16| {
                let q = round(i128::from(q16_bits(s)) << 23, d);
                q.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32
            };
            let (v, _, g, _) = (e.call)(Reduction::Mean, Some(f));
            assert_eq!(q16_bits(v), want(sum), "{name} f_bits {bits}");
            for (i, (&a, &b)) in g.iter().zip(&sum_g).enumerate() {
                assert_eq!(q16_bits(a), want(b), "{name} f_bits {bits} grad[{i}]");
            }
        }
    }
}

/// A Q15.16 value's raw bits (exact: `to_f64` is `bits / 2^16`).
fn q16_bits(x: Q16) -> i32 {
    (x.to_f64() * 65536.0) as i32
}

/// The gradient is the gradient of the returned scalar: central differences in f64.
#[test]
fn the_gradient_is_the_returned_scalars() {
    let x: Vec<f64> = X.to_vec();
    let t: Vec<f64> = T01.to_vec();
    let focal = SigmoidFocal::new(0.25, 2.0)
        .unwrap()
        .with_avg_factor(2.5)
        .unwrap();
    let l1 = SmoothL1::new(0.6).unwrap().with_avg_factor(0.75).unwrap();
    let ce = SoftmaxCrossEntropy::new(3)
        .unwrap()
        .with_avg_factor(1.5)
        .unwrap();
    let focal_v = |x: &[f64]| focal.value(x, &t).unwrap();
    let focal_g = |g: &mut [f64]| focal.value_and_grad(&x, &t, g).unwrap();
    let l1_v = |x: &[f64]| l1.value(x, &t).unwrap();
    let l1_g = |g: &mut [f64]| l1.value_and_grad(&x, &t, g).unwrap();
    let ce_v = |x: &[f64]| ce.value(x, &LABELS).unwrap();
    let ce_g = |g: &mut [f64]| ce.value_and_grad(&x, &LABELS, g).unwrap();
    let losses: [(&str, Pair<'_>); 3] = [
        ("focal", (&focal_v, &focal_g)),
        ("smooth_l1", (&l1_v, &l1_g)),
        ("ce", (&ce_v, &ce_g)),
    ];
    for (name, (value, grad)) in losses {
        let mut g = vec![0.0; x.len()];
        grad(&mut g);
        for i in 0..x.len() {
            let h = 1e-6;
            let (mut hi, mut lo) = (x.clone(), x.clone());
            hi[i] += h;
            lo[i] -= h;
            let fd = (value(&hi) - value(&lo)) / (2.0 * h);
            assert!(
                (fd - g[i]).abs() <= 1e-7 * g[i].abs().max(1.0),
                "{name}[{i}]: fd {fd} vs grad {}",
                g[i]
            );
        }
    }
}

/// `SmoothL1::new(0)` is L1 on every path: `|d|`, gradient `sign(d)`, 0 at `d = 0`.
fn l1_is_plain<T: Real>() {
    let p: Vec<T> = reals(&[0.75, -2.5, 1.0, 0.0, 3.25, -0.5]);
    let t: Vec<T> = reals(&[0.25, 1.0, 1.0, -1.5, 3.25, -0.5]);
    let l1 = SmoothL1::new(T::ZERO)
        .unwrap()
        .with_reduction(Reduction::None);
    let mut out = vec![T::ZERO; p.len()];
    let mut g = vec![T::ZERO; p.len()];
    l1.per_element(&p, &t, &mut out).unwrap();
    l1.value_and_grad(&p, &t, &mut g).unwrap();
    let want_l: Vec<T> = reals(&[0.5, 3.5, 0.0, 1.5, 0.0, 0.0]);
    let want_g: Vec<T> = reals(&[1.0, -1.0, 0.0, 1.0, 0.0, 0.0]);
    assert_eq!(out, want_l);
    assert_eq!(g, want_g);
    // As the box loss: the mean over three positives.
    let boxes = SmoothL1::new(T::ZERO)
        .unwrap()
        .with_avg_factor(T::from_f64(3.0))
        .unwrap();
    let v = boxes.value_and_grad(&p, &t, &mut g).unwrap().to_f64();
    assert!((v - 5.5 / (3.0 + AVG_FACTOR_EPS)).abs() < 1e-4, "{v}");
}

#[test]
fn smooth_l1_with_beta_zero_is_l1_on_every_path() {
    l1_is_plain::<f64>();
    l1_is_plain::<f32>();
    l1_is_plain::<Q16>();
}

/// Detectron2's normaliser, by hand: `v = 0.9 v + 0.1 max(n, 1)` from 100.
#[test]
fn the_moving_average_normalizer_follows_detectron2() {
    let mut n = MovingAverageNormalizer::<f64>::detectron2();
    assert_eq!(n, MovingAverageNormalizer::new(0.9, 100.0).unwrap());
    assert_eq!((n.value(), n.momentum()), (100.0, 0.9));
    // 0.9 * 100 + 0.1 * 3 = 90.3; 0.9 * 90.3 + 0.1 * 1 (0 positives count as 1) = 81.37;
    // 0.9 * 81.37 + 0.1 * 12 = 74.433.
    for (num_pos, want) in [(3, 90.3), (0, 81.37), (12, 74.433)] {
        let got = n.update(num_pos);
        assert!((got - want).abs() < 1e-12, "{num_pos}: {got} vs {want}");
        assert_eq!(n.value(), got);
    }
    // f32 keeps the average in f64 (momentum 0.9 rounded to f32); Q15.16 in Q47.16, with its
    // momentum rounded to 0.899994 (58982 / 65536): the same recurrence with that momentum,
    // within a few LSB of rounding per step.
    let mut q = MovingAverageNormalizer::<Q16>::detectron2();
    let mut f = MovingAverageNormalizer::<f32>::detectron2();
    let (m32, mq) = (f64::from(0.9f32), q.momentum().to_f64());
    assert_eq!(mq, 58982.0 / 65536.0);
    let (mut v32, mut vq) = (100.0, 100.0);
    for num_pos in [3usize, 0, 12, 1, 40] {
        let c = num_pos.max(1) as f64;
        v32 = m32 * v32 + (1.0 - m32) * c;
        vq = mq * vq + (1.0 - mq) * c;
        let (a, b) = (q.update(num_pos).to_f64(), f64::from(f.update(num_pos)));
        assert!((a - vq).abs() < 1e-4, "Q16 {num_pos}: {a} vs {vq}");
        assert!((b - v32).abs() <= 1e-7 * v32, "f32 {num_pos}: {b} vs {v32}");
    }
    // Momentum 0: each step's count, floored at 1, so the factor is never 0.
    let mut z = MovingAverageNormalizer::new(0.0f32, 0.5).unwrap();
    assert_eq!((z.update(5), z.update(0), z.value()), (5.0, 1.0, 1.0));
}
