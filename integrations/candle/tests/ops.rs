//! The candle ops against hardmine (the gradient through the op is hardmine's, bit for bit)
//! and against candle's own autodiff of each formula written in candle tensor ops (the
//! references below, which share no code with hardmine), under a plain loss, a composite
//! `3 * loss + sum(x^2)` and a per-element loss times a random upstream gradient.

use candle_core::{DType, Device, Result, Tensor, Var};
use hardmine::{
    BceWithLogits, GhmC, GhmR, Ohem, SigmoidFocal, SigmoidFocalLabels, SmoothL1, SplitMix64,
};
use hardmine_candle::{
    bce_with_logits, ohem, sigmoid_focal, sigmoid_focal_labels, smooth_l1, Harmonized, Reduction,
};

const CPU: Device = Device::Cpu;

fn uniform(rng: &mut SplitMix64, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| lo + (hi - lo) * rng.unit_f64()).collect()
}

fn binary(rng: &mut SplitMix64, n: usize, p: f64) -> Vec<f64> {
    (0..n)
        .map(|_| f64::from(u8::from(rng.unit_f64() < p)))
        .collect()
}

fn vec(t: &Tensor) -> Vec<f64> {
    t.flatten_all().and_then(|t| t.to_vec1::<f64>()).unwrap()
}

fn grad_of(loss: &Tensor, x: &Var) -> Vec<f64> {
    let grads = loss.backward().unwrap();
    vec(grads.get(x.as_tensor()).expect("no gradient reached x"))
}

/// `|a - b| <= rel * max(|a|, |b|) + abs` element by element.
fn close(a: &[f64], b: &[f64], rel: f64, abs: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (&a, &b)) in a.iter().zip(b).enumerate() {
        let tol = rel * a.abs().max(b.abs()) + abs;
        assert!((a - b).abs() <= tol, "{what}[{i}]: {a} vs {b}");
    }
}

// The formulas in candle tensor ops (f64), differentiated by candle's autodiff.

fn sigmoid(x: &Tensor) -> Result<Tensor> {
    (x.neg()?.exp()? + 1.0)?.recip()
}

/// PyTorch's stable `max(x, 0) - t x + ln(1 + e^-|x|)`.
fn bce_formula(x: &Tensor, t: &Tensor) -> Result<Tensor> {
    let softplus = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    (x.relu()? - (x * t)?)? + softplus
}

/// torchvision's `sigmoid_focal_loss` with `gamma = 2`, per element.
fn focal_formula(x: &Tensor, t: &Tensor, alpha: f64) -> Result<Tensor> {
    let p = sigmoid(x)?;
    let one_minus_t = t.affine(-1.0, 1.0)?;
    let p_t = ((&p * t)? + (p.affine(-1.0, 1.0)? * &one_minus_t)?)?;
    let q = p_t.affine(-1.0, 1.0)?;
    let a_t = (t.affine(alpha, 0.0)? + one_minus_t.affine(1.0 - alpha, 0.0)?)?;
    (a_t * bce_formula(x, t)?)? * q.sqr()?
}

/// PyTorch's `smooth_l1_loss`, per element.
fn smooth_l1_formula(p: &Tensor, t: &Tensor, beta: f64) -> Result<Tensor> {
    let d = (p - t)?;
    let a = d.abs()?;
    let quadratic = d.sqr()?.affine(0.5 / beta, 0.0)?;
    let linear = a.affine(1.0, -0.5 * beta)?;
    a.lt(beta)?.where_cond(&quadratic, &linear)
}

fn reduce(per: Tensor, r: Reduction) -> Result<Tensor> {
    match r {
        Reduction::None => Ok(per),
        Reduction::Sum => per.sum_all(),
        Reduction::Mean => per.mean_all(),
    }
}

type Op = fn(&Tensor, &Tensor, Reduction) -> Result<Tensor>;
type Formula = fn(&Tensor, &Tensor) -> Result<Tensor>;
type Reference = fn(&[f64], &[f64], Reduction, &mut [f64]) -> f64;

/// One element-wise loss: the op, its candle formula and hardmine called directly.
struct Case {
    name: &'static str,
    op: Op,
    formula: Formula,
    hardmine: Reference,
    /// Targets: soft in [0, 1], or any real (regression).
    regression: bool,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "sigmoid focal",
            op: |x, t, r| sigmoid_focal(x, t, 0.25, 2.0, r),
            formula: |x, t| focal_formula(x, t, 0.25),
            hardmine: |x, t, r, g| {
                let loss = SigmoidFocal::new(0.25, 2.0).unwrap().with_reduction(r);
                loss.value_and_grad(x, t, g).unwrap()
            },
            regression: false,
        },
        Case {
            name: "bce",
            op: bce_with_logits,
            formula: bce_formula,
            hardmine: |x, t, r, g| {
                BceWithLogits::new()
                    .with_reduction(r)
                    .value_and_grad(x, t, None, g)
                    .unwrap()
            },
            regression: false,
        },
        Case {
            name: "smooth l1",
            op: |x, t, r| smooth_l1(x, t, 1.0 / 9.0, r),
            formula: |x, t| smooth_l1_formula(x, t, 1.0 / 9.0),
            hardmine: |x, t, r, g| {
                let loss = SmoothL1::new(1.0 / 9.0).unwrap().with_reduction(r);
                loss.value_and_grad(x, t, g).unwrap()
            },
            regression: true,
        },
    ]
}

fn inputs(case: &Case, seed: u64, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut rng = SplitMix64::new(seed);
    let x = uniform(&mut rng, n, -5.0, 5.0);
    let t = if case.regression {
        // Both branches of smooth L1: |d| below and above beta.
        x.iter()
            .map(|&x| x + 0.6 * (rng.unit_f64() - 0.5))
            .collect()
    } else {
        // Hard targets and soft ones.
        (0..n)
            .map(|i| match i % 3 {
                0 => 1.0,
                1 => 0.0,
                _ => rng.unit_f64(),
            })
            .collect()
    };
    (x, t)
}

#[test]
fn elementwise_gradient_is_hardmines_and_matches_candle_autodiff() {
    let n = 257;
    for case in cases() {
        for (k, r) in [Reduction::Mean, Reduction::Sum].into_iter().enumerate() {
            let (x, t) = inputs(&case, 11 + k as u64, n);
            let xv = Var::from_slice(&x, n, &CPU).unwrap();
            let tt = Tensor::from_slice(&t, n, &CPU).unwrap();
            let loss = (case.op)(xv.as_tensor(), &tt, r).unwrap();
            assert_eq!(loss.dims(), &[] as &[usize]);
            let mut g = vec![0.0; n];
            let value = (case.hardmine)(&x, &t, r, &mut g);
            assert_eq!(
                loss.to_scalar::<f64>().unwrap(),
                value,
                "{}: value",
                case.name
            );
            assert_eq!(grad_of(&loss, &xv), g, "{} {r:?}: gradient", case.name);

            // candle's autodiff of the formula.
            let reference = reduce((case.formula)(xv.as_tensor(), &tt).unwrap(), r).unwrap();
            let v_ref = reference.to_scalar::<f64>().unwrap();
            close(&[value], &[v_ref], 1e-9, 1e-15, case.name);
            close(&g, &grad_of(&reference, &xv), 1e-9, 1e-15, case.name);

            // The composite 3 * loss + sum(x^2): 3 g + 2 x.
            let extra = xv.as_tensor().sqr().unwrap().sum_all().unwrap();
            let composite = ((loss * 3.0).unwrap() + &extra).unwrap();
            let expected: Vec<f64> = g.iter().zip(&x).map(|(g, x)| 3.0 * g + 2.0 * x).collect();
            assert_eq!(
                grad_of(&composite, &xv),
                expected,
                "{}: composite",
                case.name
            );
            let composite_ref = ((reference * 3.0).unwrap() + extra).unwrap();
            close(
                &expected,
                &grad_of(&composite_ref, &xv),
                1e-9,
                1e-13,
                case.name,
            );
        }
    }
}

#[test]
fn none_reduction_chains_a_random_upstream_gradient() {
    let n = 200;
    for case in cases() {
        let (x, t) = inputs(&case, 99, n);
        let mut rng = SplitMix64::new(5);
        let upstream = uniform(&mut rng, n, -2.0, 2.0);
        let xv = Var::from_slice(&x, (n / 8, 8), &CPU).unwrap();
        let tt = Tensor::from_slice(&t, (n / 8, 8), &CPU).unwrap();
        let up = Tensor::from_slice(&upstream, (n / 8, 8), &CPU).unwrap();
        let per = (case.op)(xv.as_tensor(), &tt, Reduction::None).unwrap();
        assert_eq!(per.dims(), &[n / 8, 8]);
        let mut g = vec![0.0; n];
        (case.hardmine)(&x, &t, Reduction::None, &mut g);
        let expected: Vec<f64> = g.iter().zip(&upstream).map(|(g, u)| g * u).collect();
        let got = grad_of(&(&per * &up).unwrap().sum_all().unwrap(), &xv);
        assert_eq!(got, expected, "{}: upstream", case.name);
        let reference = (case.formula)(xv.as_tensor(), &tt).unwrap();
        close(&vec(&per), &vec(&reference), 1e-9, 1e-15, case.name);
        let ref_grad = grad_of(&(reference * &up).unwrap().sum_all().unwrap(), &xv);
        close(&expected, &ref_grad, 1e-9, 1e-15, case.name);
    }
}

#[test]
fn label_form_matches_hardmine_and_the_one_hot_formula() {
    let (rows, classes) = (40, 5);
    let mut rng = SplitMix64::new(3);
    let x = uniform(&mut rng, rows * classes, -4.0, 4.0);
    // Labels 0..C are classes, C (and above) background.
    let labels: Vec<u32> = (0..rows).map(|_| rng.below(7) as u32).collect();
    let upstream = uniform(&mut rng, rows * classes, -1.0, 1.0);
    let one_hot: Vec<f64> = (0..rows * classes)
        .map(|i| f64::from(u8::from(labels[i / classes] as usize == i % classes)))
        .collect();
    let xv = Var::from_slice(&x, (rows, classes), &CPU).unwrap();
    let lt = Tensor::from_slice(&labels, rows, &CPU).unwrap();
    let tt = Tensor::from_slice(&one_hot, (rows, classes), &CPU).unwrap();
    for r in [Reduction::Mean, Reduction::Sum, Reduction::None] {
        let loss = sigmoid_focal_labels(xv.as_tensor(), &lt, 0.25, 2.0, r).unwrap();
        let focal = SigmoidFocal::new(0.25, 2.0).unwrap().with_reduction(r);
        let head = SigmoidFocalLabels::new(focal, classes).unwrap();
        let mut g = vec![0.0; rows * classes];
        head.value_and_grad(&x, &labels, None, &mut g).unwrap();
        let (scalar, reference) = if r == Reduction::None {
            let up = Tensor::from_slice(&upstream, (rows, classes), &CPU).unwrap();
            g.iter_mut().zip(&upstream).for_each(|(g, u)| *g *= u);
            let formula = focal_formula(xv.as_tensor(), &tt, 0.25).unwrap();
            (
                (&loss * &up).unwrap().sum_all().unwrap(),
                (formula * up).unwrap().sum_all().unwrap(),
            )
        } else {
            (
                loss,
                reduce(focal_formula(xv.as_tensor(), &tt, 0.25).unwrap(), r).unwrap(),
            )
        };
        assert_eq!(grad_of(&scalar, &xv), g, "{r:?}");
        close(&g, &grad_of(&reference, &xv), 1e-9, 1e-15, "labels");
    }
}

/// mmdetection's GHM weights: `tot / (n * D_b)` per element, from the gradient norms `g` over
/// `bins` equal bins (the last edge nudged by 1e-6), with the moving average `ema` (updated
/// in place; momentum 0 uses the batch's counts).
fn ghm_weights(g: &[f64], bins: usize, momentum: f64, ema: &mut [f64]) -> Vec<f64> {
    let edge = |i: usize| i as f64 / bins as f64 + if i == bins { 1e-6 } else { 0.0 };
    let bin_of: Vec<usize> = g
        .iter()
        .map(|&g| {
            (0..bins)
                .find(|&b| g >= edge(b) && g < edge(b + 1))
                .unwrap()
        })
        .collect();
    let tot = g.len() as f64;
    let mut divisor = vec![0.0; bins];
    let mut n = 0.0;
    for b in 0..bins {
        let count = bin_of.iter().filter(|&&c| c == b).count() as f64;
        if count > 0.0 {
            if momentum > 0.0 {
                ema[b] = momentum * ema[b] + (1.0 - momentum) * count;
                divisor[b] = ema[b];
            } else {
                divisor[b] = count;
            }
            n += 1.0;
        }
    }
    bin_of.iter().map(|&b| tot / (n * divisor[b])).collect()
}

#[test]
fn ghm_c_and_r_match_mmdetections_formula_and_advance_once_per_forward() {
    let (n, bins, momentum, mu) = (300, 10, 0.75, 0.02);
    let ghm_c = Harmonized::new(GhmC::<f64, 10>::new(bins, momentum, 1.0).unwrap());
    let ghm_r = Harmonized::new(GhmR::<f64, 10>::new(mu, bins, momentum, 1.0).unwrap());
    let mut plain_c = GhmC::<f64, 10>::new(bins, momentum, 1.0).unwrap();
    let mut plain_r = GhmR::<f64, 10>::new(mu, bins, momentum, 1.0).unwrap();
    let (mut ema_c, mut ema_r) = (vec![0.0; bins], vec![0.0; bins]);
    for step in 0..4u64 {
        let mut rng = SplitMix64::new(100 + step);
        let x = uniform(&mut rng, n, -6.0, 3.0);
        let t = binary(&mut rng, n, 0.1);
        let xv = Var::from_slice(&x, n, &CPU).unwrap();
        let tt = Tensor::from_slice(&t, n, &CPU).unwrap();

        // GHM-C: the op, a composite and the formula with mmdetection's weights.
        let loss = ghm_c.forward(xv.as_tensor(), &tt).unwrap();
        let mut g = vec![0.0; n];
        let value = plain_c.value_and_grad(&x, &t, None, &mut g).unwrap();
        assert_eq!(loss.to_scalar::<f64>().unwrap(), value);
        let composite =
            ((&loss * 3.0).unwrap() + xv.as_tensor().sqr().unwrap().sum_all().unwrap()).unwrap();
        let expected: Vec<f64> = g.iter().zip(&x).map(|(g, x)| 3.0 * g + 2.0 * x).collect();
        assert_eq!(grad_of(&composite, &xv), expected, "GHM-C step {step}");
        // A second backward pass of the same graph: the same gradient, the state untouched.
        assert_eq!(grad_of(&loss, &xv), g);
        assert_eq!(ghm_c.state(), plain_c, "GHM-C state after step {step}");

        let norms: Vec<f64> = x
            .iter()
            .zip(&t)
            .map(|(&x, &t)| (1.0 / (1.0 + (-x).exp()) - t).abs())
            .collect();
        let w = Tensor::new(ghm_weights(&norms, bins, momentum, &mut ema_c), &CPU).unwrap();
        let formula = (bce_formula(xv.as_tensor(), &tt).unwrap() * w)
            .unwrap()
            .sum_all()
            .unwrap();
        let formula = (formula / n as f64).unwrap();
        close(
            &[value],
            &[formula.to_scalar::<f64>().unwrap()],
            1e-9,
            0.0,
            "GHM-C value",
        );
        close(&g, &grad_of(&formula, &xv), 1e-9, 1e-15, "GHM-C gradient");

        // GHM-R on regression deltas.
        let p = uniform(&mut rng, n, -1.0, 1.0);
        let target: Vec<f64> = p
            .iter()
            .map(|&p| p + 0.3 * (rng.unit_f64() - 0.5))
            .collect();
        let pv = Var::from_slice(&p, n, &CPU).unwrap();
        let tr = Tensor::from_slice(&target, n, &CPU).unwrap();
        let loss = ghm_r.forward(pv.as_tensor(), &tr).unwrap();
        let mut g = vec![0.0; n];
        let value = plain_r.value_and_grad(&p, &target, None, &mut g).unwrap();
        let mut rng_up = SplitMix64::new(7 + step);
        let scale = uniform(&mut rng_up, 1, 0.5, 2.0)[0];
        assert_eq!(
            grad_of(&(&loss * scale).unwrap(), &pv),
            g.iter().map(|g| g * scale).collect::<Vec<_>>()
        );
        assert_eq!(ghm_r.state(), plain_r, "GHM-R state after step {step}");
        let d = (pv.as_tensor() - &tr).unwrap();
        let root = (d.sqr().unwrap() + mu * mu).unwrap().sqrt().unwrap();
        let asl1 = root.affine(1.0, -mu).unwrap();
        let norms: Vec<f64> = p
            .iter()
            .zip(&target)
            .map(|(&p, &t)| (p - t).abs() / ((p - t).powi(2) + mu * mu).sqrt())
            .collect();
        let w = Tensor::new(ghm_weights(&norms, bins, momentum, &mut ema_r), &CPU).unwrap();
        let formula = ((asl1 * w).unwrap().sum_all().unwrap() / n as f64).unwrap();
        close(
            &[value],
            &[formula.to_scalar::<f64>().unwrap()],
            1e-9,
            0.0,
            "GHM-R value",
        );
        close(&g, &grad_of(&formula, &pv), 1e-9, 1e-15, "GHM-R gradient");
    }
}

#[test]
fn ohem_mask_and_indices_are_hardmines_selection() {
    let n = 64;
    let mut rng = SplitMix64::new(21);
    let x = uniform(&mut rng, n, -4.0, 4.0);
    let t = binary(&mut rng, n, 0.2);
    let xv = Var::from_slice(&x, n, &CPU).unwrap();
    let tt = Tensor::from_slice(&t, n, &CPU).unwrap();
    let per = sigmoid_focal(xv.as_tensor(), &tt, 0.25, 2.0, Reduction::None).unwrap();
    let miner = Ohem::<f64, 16>::new(10).unwrap();
    let mined = ohem(&miner, &per, None).unwrap();

    let focal = SigmoidFocal::new(0.25, 2.0)
        .unwrap()
        .with_reduction(Reduction::None);
    let mut losses = vec![0.0; n];
    focal.per_element(&x, &t, &mut losses).unwrap();
    let picked = miner.select(&losses, None).unwrap();
    let indices: Vec<u32> = picked.indices().iter().map(|&i| i as u32).collect();
    assert_eq!(mined.indices.to_vec1::<u32>().unwrap(), indices);
    assert_eq!(mined.mask.dtype(), DType::F64);
    // The top 10 by a sort of the losses, independently.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| losses[b].total_cmp(&losses[a]).then(a.cmp(&b)));
    let mut top: Vec<u32> = order[..10].iter().map(|&i| i as u32).collect();
    top.sort_unstable();
    assert_eq!(indices, top);

    // Only the mined examples train: hardmine's gradient with the selection applied.
    let mut g = vec![0.0; n];
    focal.value_and_grad(&x, &t, &mut g).unwrap();
    picked.apply(&mut g, 1).unwrap();
    let masked = (per * &mined.mask).unwrap().sum_all().unwrap();
    assert_eq!(grad_of(&masked, &xv), g);
    // The indices gather the same losses as the mask keeps.
    let gathered = vec(&per_from(&x, &t).index_select(&mined.indices, 0).unwrap());
    let kept: Vec<f64> = picked.indices().iter().map(|&i| losses[i]).collect();
    assert_eq!(gathered, kept);
}

fn per_from(x: &[f64], t: &[f64]) -> Tensor {
    let xt = Tensor::from_slice(x, x.len(), &CPU).unwrap();
    let tt = Tensor::from_slice(t, t.len(), &CPU).unwrap();
    sigmoid_focal(&xt, &tt, 0.25, 2.0, Reduction::None).unwrap()
}

#[test]
fn f32_gradients_are_hardmines() {
    let mut rng = SplitMix64::new(8);
    let x: Vec<f32> = uniform(&mut rng, 100, -8.0, 8.0)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let t: Vec<f32> = binary(&mut rng, 100, 0.3)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let xv = Var::from_slice(&x, 100, &CPU).unwrap();
    let tt = Tensor::from_slice(&t, 100, &CPU).unwrap();
    let loss = sigmoid_focal(xv.as_tensor(), &tt, 0.25, 2.0, Reduction::Mean).unwrap();
    let mut g = vec![0.0f32; 100];
    let v = SigmoidFocal::new(0.25f32, 2.0)
        .unwrap()
        .value_and_grad(&x, &t, &mut g)
        .unwrap();
    assert_eq!(loss.to_scalar::<f32>().unwrap(), v);
    let grads = loss.backward().unwrap();
    assert_eq!(
        grads.get(xv.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
        g
    );

    let ghm = Harmonized::new(GhmC::<f32, 30>::new(30, 0.75, 1.0).unwrap());
    let mut plain = GhmC::<f32, 30>::new(30, 0.75, 1.0).unwrap();
    let loss = ghm.forward(xv.as_tensor(), &tt).unwrap();
    let v = plain.value_and_grad(&x, &t, None, &mut g).unwrap();
    assert_eq!(loss.to_scalar::<f32>().unwrap(), v);
    let grads = loss.backward().unwrap();
    assert_eq!(
        grads.get(xv.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
        g
    );
}

#[test]
fn bad_input_is_an_error_and_leaves_ghm_unchanged() {
    let x = Tensor::new(&[0.5f64, -1.0, 2.0], &CPU).unwrap();
    let short = Tensor::new(&[1.0f64, 0.0], &CPU).unwrap();
    let out_of_range = Tensor::new(&[1.0f64, 0.0, 2.0], &CPU).unwrap();
    let nan = Tensor::new(&[1.0f64, f64::NAN, 0.0], &CPU).unwrap();
    let f32_t = Tensor::new(&[1.0f32, 0.0, 1.0], &CPU).unwrap();
    assert!(sigmoid_focal(&x, &short, 0.25, 2.0, Reduction::Mean).is_err());
    assert!(sigmoid_focal(&x, &out_of_range, 0.25, 2.0, Reduction::Mean).is_err());
    assert!(sigmoid_focal(
        &nan,
        &short.pad_with_zeros(0, 0, 1).unwrap(),
        0.25,
        2.0,
        Reduction::Sum
    )
    .is_err());
    assert!(sigmoid_focal(&x, &f32_t, 0.25, 2.0, Reduction::Mean).is_err());
    assert!(sigmoid_focal(
        &x,
        &short.pad_with_zeros(0, 0, 1).unwrap(),
        2.0,
        2.0,
        Reduction::Mean
    )
    .is_err());
    assert!(bce_with_logits(&x, &nan, Reduction::None).is_err());
    assert!(smooth_l1(&x, &x, -1.0, Reduction::Mean).is_err());
    let labels = Tensor::new(&[0u32, 1], &CPU).unwrap();
    assert!(sigmoid_focal_labels(&x, &labels, 0.25, 2.0, Reduction::Mean).is_err());
    let logits = Tensor::zeros((3, 2), DType::F64, &CPU).unwrap();
    assert!(sigmoid_focal_labels(&logits, &labels, 0.25, 2.0, Reduction::Mean).is_err());
    let float_labels = Tensor::zeros(3, DType::F64, &CPU).unwrap();
    assert!(sigmoid_focal_labels(&logits, &float_labels, 0.25, 2.0, Reduction::Mean).is_err());

    let ghm = Harmonized::new(GhmC::<f64, 10>::new(10, 0.75, 1.0).unwrap());
    let ok = Tensor::new(&[1.0f64, 0.0, 1.0], &CPU).unwrap();
    ghm.forward(&x, &ok).unwrap();
    let before = ghm.state();
    assert!(ghm.forward(&x, &out_of_range).is_err());
    assert!(ghm.forward(&x, &short).is_err());
    assert!(ghm.forward(&x, &f32_t).is_err());
    assert_eq!(ghm.state(), before);
    let miner = Ohem::<f64, 4>::new(2).unwrap();
    assert!(ohem(&miner, &nan, None).is_err());
}

#[test]
fn strided_inputs_are_read_in_order_and_get_their_gradient() {
    let mut rng = SplitMix64::new(12);
    let x = uniform(&mut rng, 24, -3.0, 3.0);
    let t = binary(&mut rng, 24, 0.3);
    // A transposed view: logical element (i, j) is x[j * 4 + i].
    let xv = Var::from_slice(&x, (6, 4), &CPU).unwrap();
    let view = xv.as_tensor().t().unwrap();
    let tt = Tensor::from_slice(&t, (4, 6), &CPU).unwrap();
    let loss = bce_with_logits(&view, &tt, Reduction::Sum).unwrap();
    let logical: Vec<f64> = (0..24).map(|k| x[(k % 6) * 4 + k / 6]).collect();
    let mut g = vec![0.0; 24];
    let bce = BceWithLogits::new().with_reduction(Reduction::Sum);
    let value = bce.value_and_grad(&logical, &t, None, &mut g).unwrap();
    assert_eq!(loss.to_scalar::<f64>().unwrap(), value);
    // The gradient lands on x's own layout: x[j * 4 + i] gets the logical (i, j)'s.
    let mut expected = vec![0.0; 24];
    for k in 0..24 {
        expected[(k % 6) * 4 + k / 6] = g[k];
    }
    assert_eq!(grad_of(&loss, &xv), expected);
}
