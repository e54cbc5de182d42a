//! Random inputs against the naive f64 oracles (`reference.rs`): the f64 path within
//! `F64_REL`-class bounds of the oracle's own rounding, the f32 path within `F32_REL`.

use hardmine::{
    Asl1, BceWithLogits, DistributionCe, Error, GhmC, GhmR, Real, Reduction, SigmoidFocal,
    SigmoidFocalLabels, SmoothL1, SoftmaxCrossEntropy, SoftmaxFocal, Weighting, Q16,
};
use hardmine_host_tests::random::{self, to_f32, to_f64};
use hardmine_host_tests::reference as oracle;
use hardmine_host_tests::tolerance::{check_close, Path, Tolerance, F32_ABS_FRAC, F32_REL};

/// The naive oracle loses a few digits to cancellation; 1e-9 is its honest f64 agreement.
const ORACLE_F64_REL: f64 = 1e-9;

fn q(xs: &[f64]) -> Vec<Q16> {
    xs.iter().map(|&x| Q16::from_f64(x)).collect()
}

fn from_q(xs: &[Q16]) -> Vec<f64> {
    xs.iter().map(|x| x.to_f64()).collect()
}

/// The fixed path against the exact value at the fixed-point tolerance (relative, a fraction of
/// the array's scale, and a 2-LSB floor).
fn fixed(name: &str, exp: &[f64], got: Vec<f64>) {
    Tolerance::of(Path::Fixed)
        .check(&got, exp)
        .unwrap_or_else(|e| panic!("{name} fixed {e}"));
}

/// The f64 and f32 paths against the oracle's per-element `exp`: each path writes its losses
/// into a buffer as long as `exp`.
fn both<F64, F32>(name: &str, exp: &[f64], f64_path: F64, f32_path: F32)
where
    F64: FnOnce(&mut [f64]) -> Result<(), Error>,
    F32: FnOnce(&mut [f32]) -> Result<(), Error>,
{
    let mut o64 = vec![0.0; exp.len()];
    f64_path(&mut o64).unwrap_or_else(|e| panic!("{name} f64: {e:?}"));
    check_close(&o64, exp, ORACLE_F64_REL, 1e-12).unwrap_or_else(|e| panic!("{name} f64: {e}"));
    let mut o32 = vec![0.0f32; exp.len()];
    f32_path(&mut o32).unwrap_or_else(|e| panic!("{name} f32: {e:?}"));
    check_close(&to_f64(&o32), exp, F32_REL, F32_ABS_FRAC)
        .unwrap_or_else(|e| panic!("{name} f32: {e}"));
}

/// A scalar loss (a GHM batch) of the f64 and f32 paths against the oracle's `exp`.
fn both_scalar(name: &str, exp: f64, got64: f64, got32: f32) {
    check_close(&[got64], &[exp], ORACLE_F64_REL, 1e-15)
        .unwrap_or_else(|e| panic!("{name} f64: {e}"));
    check_close(&[f64::from(got32)], &[exp], F32_REL, 1e-12)
        .unwrap_or_else(|e| panic!("{name} f32: {e}"));
}

/// Weighted BCE at the inputs the fixed path sees (rounded to 2^-16).
fn exp_bce_at(x: &[f64], t: &[f64], w: &[f64]) -> Vec<f64> {
    let r = |v: &[f64]| from_q(&q(v));
    let (x, t, w) = (r(x), r(t), r(w));
    x.iter()
        .zip(&t)
        .zip(&w)
        .map(|((&x, &t), &w)| w * oracle::bce(x, t))
        .collect()
}

#[test]
fn bce_and_focal_match_the_oracle() {
    for round in 0..20u64 {
        let mut r = random::rng(round);
        let n = 1 + r.below(300) as usize;
        let x = to_f64(&to_f32(&random::uniform(&mut r, n, -30.0, 30.0)));
        let t = to_f64(&to_f32(&random::targets(&mut r, n, 0.7)));
        let w = to_f64(&to_f32(&random::uniform(&mut r, n, 0.0, 2.0)));
        let exp: Vec<f64> = x
            .iter()
            .zip(&t)
            .zip(&w)
            .map(|((&x, &t), &w)| w * oracle::bce(x, t))
            .collect();
        let bce = BceWithLogits::new().with_reduction(Reduction::None);
        both(
            "bce",
            &exp,
            |o| bce.per_element(&x, &t, Some(&w), o),
            |o| bce.per_element(&to_f32(&x), &to_f32(&t), Some(&to_f32(&w)), o),
        );
        let x = to_f64(&to_f32(&x.iter().map(|v| v * 0.4).collect::<Vec<f64>>()));
        let mut o = vec![Q16::ZERO; n];
        bce.per_element(&q(&x), &q(&t), Some(&q(&w)), &mut o)
            .unwrap();
        fixed("bce", &exp_bce_at(&x, &t, &w), from_q(&o));
        let alpha = [-1.0, 0.0, 0.25, 0.9, 1.0][round as usize % 5];
        let gamma = [0.0, 0.5, 1.0, 2.0, 3.7][(round as usize / 5) % 5];
        let exp: Vec<f64> = x
            .iter()
            .zip(&t)
            .map(|(&x, &t)| oracle::focal(x, t, alpha, gamma))
            .collect();
        both(
            &format!("focal a={alpha} g={gamma}"),
            &exp,
            |o| {
                SigmoidFocal::new(alpha, gamma)
                    .unwrap()
                    .per_element(&x, &t, o)
            },
            |o| {
                let f = SigmoidFocal::new(alpha as f32, gamma as f32).unwrap();
                f.per_element(&to_f32(&x), &to_f32(&t), o)
            },
        );
        let mut o = vec![Q16::ZERO; n];
        let f = SigmoidFocal::new(Q16::from_f64(alpha), Q16::from_f64(gamma)).unwrap();
        f.per_element(&q(&x), &q(&t), &mut o).unwrap();
        // The fixed path sees inputs rounded to 2^-16: compare with the exact loss there.
        let (xq, tq) = (from_q(&q(&x)), from_q(&q(&t)));
        let gq = Q16::from_f64(gamma).to_f64();
        let exp_q: Vec<f64> = xq
            .iter()
            .zip(&tq)
            .map(|(&x, &t)| oracle::focal(x, t, alpha, gq))
            .collect();
        fixed(&format!("focal a={alpha} g={gamma}"), &exp_q, from_q(&o));
    }
}

#[test]
fn focal_labels_match_the_dense_oracle() {
    for (_, mut r) in random::rounds(100, 10) {
        let (rows, c) = (1 + r.below(60) as usize, 1 + r.below(8) as usize);
        let x = to_f64(&to_f32(&random::uniform(&mut r, rows * c, -12.0, 12.0)));
        let y = random::labels(&mut r, rows, -1, c as i64 + 2);
        let w: Vec<f64> = (0..rows)
            .map(|_| [0.0, 1.0, 0.5][r.below(3) as usize])
            .collect();
        let class_alpha = to_f64(&to_f32(&random::uniform(&mut r, c, 0.0, 1.0)));
        let mut exp = vec![0.0; rows * c];
        for i in 0..rows {
            for j in 0..c {
                let t = if y[i] == j as i64 { 1.0 } else { 0.0 };
                exp[i * c + j] = w[i] * oracle::focal(x[i * c + j], t, class_alpha[j], 2.0);
            }
        }
        both(
            "focal labels",
            &exp,
            |o| {
                let f = SigmoidFocal::new(0.25, 2.0).unwrap();
                let head = SigmoidFocalLabels::new(f, c)
                    .unwrap()
                    .with_class_alpha(&class_alpha)
                    .unwrap();
                head.per_element(&x, &y, Some(&w), o)
            },
            |o| {
                let f = SigmoidFocal::new(0.25f32, 2.0).unwrap();
                let a = to_f32(&class_alpha);
                let head = SigmoidFocalLabels::new(f, c)
                    .unwrap()
                    .with_class_alpha(&a)
                    .unwrap();
                head.per_element(&to_f32(&x), &y, Some(&to_f32(&w)), o)
            },
        );
    }
}

#[test]
fn softmax_losses_match_the_oracle() {
    for (round, mut r) in random::rounds(200, 12) {
        let (rows, c) = (1 + r.below(40) as usize, 1 + r.below(12) as usize);
        let x = to_f64(&to_f32(&random::uniform(&mut r, rows * c, -25.0, 25.0)));
        let y = random::labels(&mut r, rows, -1, c as i64);
        let (alpha, gamma) = (
            0.25 + 0.05 * round as f64,
            [0.0, 0.7, 2.0, 3.7][round as usize % 4],
        );
        let ce_exp: Vec<f64> = (0..rows)
            .map(|i| {
                if y[i] < 0 {
                    0.0
                } else {
                    oracle::softmax_ce(&x[i * c..(i + 1) * c], y[i] as usize)
                }
            })
            .collect();
        let fo_exp: Vec<f64> = (0..rows)
            .map(|i| {
                if y[i] < 0 {
                    0.0
                } else {
                    oracle::softmax_focal(&x[i * c..(i + 1) * c], y[i] as usize, alpha, gamma)
                }
            })
            .collect();
        let ce = SoftmaxCrossEntropy::new(c).unwrap();
        both(
            "softmax ce",
            &ce_exp,
            |o| ce.per_element(&x, &y, o),
            |o| ce.per_element(&to_f32(&x), &y, o),
        );
        both(
            "softmax focal",
            &fo_exp,
            |o| {
                SoftmaxFocal::new(alpha, gamma, c)
                    .unwrap()
                    .per_element(&x, &y, o)
            },
            |o| {
                let f = SoftmaxFocal::new(alpha as f32, gamma as f32, c).unwrap();
                f.per_element(&to_f32(&x), &y, o)
            },
        );
        let xq = from_q(&q(&x));
        let at = |f: &dyn Fn(&[f64], usize) -> f64| -> Vec<f64> {
            (0..rows)
                .map(|i| {
                    if y[i] < 0 {
                        0.0
                    } else {
                        f(&xq[i * c..(i + 1) * c], y[i] as usize)
                    }
                })
                .collect()
        };
        let mut o = vec![Q16::ZERO; rows];
        ce.per_element(&q(&x), &y, &mut o).unwrap();
        fixed(
            "softmax ce",
            &at(&|r, k| oracle::softmax_ce(r, k)),
            from_q(&o),
        );
        let (aq, gq) = (Q16::from_f64(alpha), Q16::from_f64(gamma));
        SoftmaxFocal::new(aq, gq, c)
            .unwrap()
            .per_element(&q(&x), &y, &mut o)
            .unwrap();
        let (af, gf) = (aq.to_f64(), gq.to_f64());
        fixed(
            "softmax focal",
            &at(&|r, k| oracle::softmax_focal(r, k, af, gf)),
            from_q(&o),
        );
        // Mean over labelled rows, as PyTorch's ignore_index.
        let labelled = y.iter().filter(|&&v| v >= 0).count();
        let mean: f64 = if labelled == 0 {
            0.0
        } else {
            ce_exp.iter().sum::<f64>() / labelled as f64
        };
        let got = ce.value(&x, &y).unwrap();
        assert!(
            (got - mean).abs() <= 1e-9 * mean.abs().max(1e-300),
            "mean {got} vs {mean}"
        );
    }
}

/// A box loss of one parameter (`SmoothL1`'s beta, `Asl1`'s mu), on every path.
trait BoxLoss {
    const NAME: &'static str;
    /// The oracle's loss at the difference `d` of prediction and target.
    fn exact(d: f64, param: f64) -> f64;
    /// The loss of `param`, per element, written to `out`.
    fn per_element<T: Real>(param: T, p: &[T], t: &[T], out: &mut [T]) -> Result<(), Error>;
}

impl BoxLoss for SmoothL1<f64> {
    const NAME: &'static str = "smooth l1";
    fn exact(d: f64, beta: f64) -> f64 {
        oracle::smooth_l1(d, beta)
    }
    fn per_element<T: Real>(beta: T, p: &[T], t: &[T], out: &mut [T]) -> Result<(), Error> {
        SmoothL1::new(beta)?.per_element(p, t, out)
    }
}

impl BoxLoss for Asl1<f64> {
    const NAME: &'static str = "asl1";
    fn exact(d: f64, mu: f64) -> f64 {
        oracle::asl1(d, mu)
    }
    fn per_element<T: Real>(mu: T, p: &[T], t: &[T], out: &mut [T]) -> Result<(), Error> {
        Asl1::new(mu)?.per_element(p, t, out)
    }
}

/// `L` of `param` on the f64 and f32 paths against the oracle, and on the fixed path against
/// the oracle of the inputs and `param` as Q15.16 rounds them.
fn box_loss<L: BoxLoss>(p: &[f64], t: &[f64], param: f64) {
    let exact = |p: &[f64], t: &[f64], param: f64| -> Vec<f64> {
        p.iter()
            .zip(t)
            .map(|(a, b)| L::exact(a - b, param))
            .collect()
    };
    both(
        L::NAME,
        &exact(p, t, param),
        |o| L::per_element(param, p, t, o),
        |o| L::per_element(param as f32, &to_f32(p), &to_f32(t), o),
    );
    let (pq, tq, param_q) = (q(p), q(t), Q16::from_f64(param));
    let mut o = vec![Q16::ZERO; p.len()];
    L::per_element(param_q, &pq, &tq, &mut o).unwrap();
    let e = exact(&from_q(&pq), &from_q(&tq), param_q.to_f64());
    fixed(L::NAME, &e, from_q(&o));
}

#[test]
fn box_losses_match_the_oracle() {
    for (round, mut r) in random::rounds(300, 10) {
        let n = 1 + r.below(200) as usize;
        let p = to_f64(&to_f32(&random::uniform(&mut r, n, -3.0, 3.0)));
        let t = to_f64(&to_f32(&random::uniform(&mut r, n, -3.0, 3.0)));
        let beta = [0.0, 1.0 / 9.0, 0.5, 1.0, 2.0][round as usize % 5];
        let mu = [0.02, 0.1, 1.0][round as usize % 3];
        box_loss::<SmoothL1<f64>>(&p, &t, beta);
        box_loss::<Asl1<f64>>(&p, &t, mu);
    }
}

/// Gradient norms closer than this to an interior bin edge may bin differently in f32 (the
/// golden cases keep the same margin); such draws are skipped, not loosened.
const EDGE_MARGIN: f64 = 1e-4;

fn near_edge(g: &[f64], bins: usize) -> bool {
    g.iter().any(|&v| {
        let s = v * bins as f64;
        (s - s.round()).abs() < EDGE_MARGIN * bins as f64
            && s.round() > 0.0
            && s.round() < bins as f64
    })
}

#[test]
fn ghm_sequences_match_mmdetection() {
    let mut checked = 0;
    for (round, mut r) in random::rounds(400, 30) {
        let bins = [7usize, 10, 30][round as usize % 3];
        let momentum = [0.0, 0.75, 0.9][(round as usize / 3) % 3];
        let loss_weight = [1.0, 2.0, 0.5][round as usize % 3];
        let mut oc = oracle::Ghm::new(bins, momentum, loss_weight, 1.0 + 1e-6);
        let mut orr = oracle::Ghm::new(bins, momentum, loss_weight, 1e3);
        let mut c64 = GhmC::<f64, 30>::new(bins, momentum, loss_weight).unwrap();
        let mut c32 = GhmC::<f32, 30>::new(bins, momentum as f32, loss_weight as f32).unwrap();
        let mut r64 = GhmR::<f64, 30>::new(0.02, bins, momentum, loss_weight).unwrap();
        let mut r32 =
            GhmR::<f32, 30>::new(0.02, bins, momentum as f32, loss_weight as f32).unwrap();
        let (mq, lq) = (Q16::from_f64(momentum), Q16::from_f64(loss_weight));
        let mut cq = GhmC::<Q16, 30>::new(bins, mq, lq).unwrap();
        for batch in 0..5 {
            // Some batches look empty: every label weight zero.
            let n = 1 + r.below(400) as usize;
            let empty = r.below(6) == 0;
            let x = to_f64(&to_f32(&random::uniform(&mut r, n, -8.0, 6.0)));
            let t: Vec<f64> = (0..n)
                .map(|_| if r.below(10) == 0 { 1.0 } else { 0.0 })
                .collect();
            let w: Vec<f64> = (0..n)
                .map(|_| if empty || r.below(8) == 0 { 0.0 } else { 1.0 })
                .collect();
            let g: Vec<f64> = x
                .iter()
                .zip(&t)
                .map(|(&x, &t)| (oracle::sigmoid(x) - t).abs())
                .collect();
            let l: Vec<f64> = x.iter().zip(&t).map(|(&x, &t)| oracle::bce(x, t)).collect();
            let tot = (w.iter().filter(|&&v| v > 0.0).count() as f64).max(1.0);
            if near_edge(&g, bins) {
                break;
            }
            let exp = oc.batch(&g, &l, &w, tot);
            both_scalar(
                &format!("ghm-c {round}/{batch}"),
                exp,
                c64.value(&x, &t, Some(&w)).unwrap(),
                c32.value(&to_f32(&x), &to_f32(&t), Some(&to_f32(&w)))
                    .unwrap(),
            );
            // The fixed path, at the exact loss of the inputs it sees (rounded to 2^-16).
            let gotq = cq.value(&q(&x), &q(&t), Some(&q(&w))).unwrap().to_f64();
            fixed(&format!("ghm-c fixed {round}/{batch}"), &[exp], vec![gotq]);
            // GHM-R on box deltas with fractional label weights (tot = their sum).
            let p = to_f64(&to_f32(&random::uniform(&mut r, n, -1.0, 1.0)));
            let q = to_f64(&to_f32(&random::uniform(&mut r, n, -1.0, 1.0)));
            let d: Vec<f64> = p.iter().zip(&q).map(|(a, b)| a - b).collect();
            let g: Vec<f64> = d
                .iter()
                .map(|d| d.abs() / (d * d + 0.0004).sqrt())
                .collect();
            if near_edge(&g, bins) {
                break;
            }
            let l: Vec<f64> = d.iter().map(|&d| oracle::asl1(d, 0.02)).collect();
            let w2: Vec<f64> = w.iter().map(|&v| v * 2.0).collect();
            let exp = orr.batch(&g, &l, &w2, w2.iter().sum::<f64>().max(1.0));
            both_scalar(
                &format!("ghm-r {round}/{batch}"),
                exp,
                r64.value(&p, &q, Some(&w2)).unwrap(),
                r32.value(&to_f32(&p), &to_f32(&q), Some(&to_f32(&w2)))
                    .unwrap(),
            );
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} GHM batches compared");
}

#[test]
fn distribution_ce_weights_survive_large_counts_in_fixed_point() {
    let mut d =
        DistributionCe::<Q16, 4>::new(3, Weighting::InverseFrequency { power: Q16::ONE }).unwrap();
    let labels: Vec<u8> = (0..1_000_000u32)
        .map(|i| if i % 1000 == 0 { 2 } else { (i % 2) as u8 })
        .collect();
    d.observe(&labels).unwrap();
    let mut w = [Q16::ZERO; 3];
    d.class_weights(&mut w).unwrap();
    let exp = oracle::class_weights(d.counts(), "inverse", 1.0);
    fixed("inverse frequency, a million labels", &exp, from_q(&w));
}

#[test]
fn distribution_ce_matches_the_formulas() {
    for (round, mut r) in random::rounds(500, 9) {
        let c = 2 + r.below(6) as usize;
        let rows = 1 + r.below(50) as usize;
        let (mode, p, weighting) = match round % 3 {
            0 => ("inverse", 0.5 + 0.25 * (round / 3) as f64, 0),
            1 => ("effective", [0.9, 0.99, 0.999][(round / 3) as usize], 1),
            _ => ("logit", [0.5, 1.0, 2.0][(round / 3) as usize], 2),
        };
        let make = |p: f64| match weighting {
            0 => Weighting::InverseFrequency { power: p },
            1 => Weighting::EffectiveNumber { beta: p },
            _ => Weighting::LogitAdjustment { tau: p },
        };
        let mut loss = DistributionCe::<f64, 8>::new(c, make(p)).unwrap();
        // A long-tailed history: class k seen about 2^-k of the time.
        let history: Vec<i64> = (0..2000)
            .map(|_| (r.next_u64().trailing_zeros() as i64).min(c as i64 - 1))
            .collect();
        loss.observe(&history).unwrap();
        let counts = loss.counts().to_vec();
        let x = random::uniform(&mut r, rows * c, -5.0, 5.0);
        let y = random::labels(&mut r, rows, -1, c as i64);
        let (weights, offsets) = if mode == "logit" {
            (vec![1.0; c], oracle::logit_offsets(&counts, p))
        } else {
            (oracle::class_weights(&counts, mode, p), vec![0.0; c])
        };
        let mut num = 0.0;
        let mut den = 0.0;
        for i in 0..rows {
            if y[i] < 0 {
                continue;
            }
            let row: Vec<f64> = (0..c).map(|j| x[i * c + j] + offsets[j]).collect();
            num += weights[y[i] as usize] * oracle::softmax_ce(&row, y[i] as usize);
            den += weights[y[i] as usize];
        }
        let exp = if den == 0.0 { 0.0 } else { num / den };
        let got = loss.value(&x, &y).unwrap();
        check_close(&[got], &[exp], ORACLE_F64_REL, 1e-15)
            .unwrap_or_else(|e| panic!("{mode} {p}: {e}"));
        // The fixed path with the same history, at the fixed-point tolerance.
        let mut lq = DistributionCe::<Q16, 8>::new(
            c,
            match weighting {
                0 => Weighting::InverseFrequency {
                    power: Q16::from_f64(p),
                },
                1 => Weighting::EffectiveNumber {
                    beta: Q16::from_f64(p),
                },
                _ => Weighting::LogitAdjustment {
                    tau: Q16::from_f64(p),
                },
            },
        )
        .unwrap();
        lq.observe(&history).unwrap();
        let gotq = lq.value(&q(&x), &y).unwrap().to_f64();
        fixed(
            &format!("distribution ce fixed {mode} {p}"),
            &[exp],
            vec![gotq],
        );
        let mut table = vec![0.0; c];
        loss.class_weights(&mut table).unwrap();
        let exp_table = if mode == "logit" { offsets } else { weights };
        check_close(&table, &exp_table, ORACLE_F64_REL, 1e-15)
            .unwrap_or_else(|e| panic!("{mode} table: {e}"));
    }
}
