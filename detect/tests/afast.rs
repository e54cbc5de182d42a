//! A-Fast-RCNN's learned adversaries against their oracles: ASDN pretrained on the occlusion
//! search's targets agrees with the search on held-out windows; one adversarial ASDN update
//! raises the detector's loss on the masked positives; ASTN's parameter gradient through the
//! rotation matches central differences (f64); angles stay inside +-10 degrees on every path;
//! Q15.16 follows f32 on a short run; bad input is an `Err` that writes nothing.

use hardmine::{BceWithLogits, ChannelBlockRotation, DropoutMask, Error, OcclusionSearch, Real};
use hardmine::{Reduction, SplitMix64, Q16};
use hardmine_detect::{
    apply_mask, from_chw, init_master, patch_gradient, to_chw, Asdn, Astn, DetectorSpec, Scalar,
    Sgd, CELLS, MAX_ANGLE,
};
use hardmine_host_tests::tolerance::{Tolerance, FD_REL, FD_STEP};

/// A positive: its window (HWC), anchor and class.
#[derive(Clone)]
struct Positive {
    patch: Vec<f64>,
    anchor: usize,
    class: usize,
}

/// The tiny detector with a head of `U(-0.3, 0.3)` weights (the init's 0.01 would make every
/// occlusion a rounding error), in f64.
fn detector(seed: u64) -> (DetectorSpec, Vec<f64>) {
    let spec = DetectorSpec::tiny();
    let mut params = vec![0.0; spec.params_len()];
    spec.init(&mut SplitMix64::new(seed), -2.0, &mut params)
        .unwrap();
    let mut rng = SplitMix64::new(seed ^ 0xbeef);
    for p in &mut params[spec.head_params()] {
        *p = 0.6 * rng.unit_f64() - 0.3;
    }
    (spec, params)
}

/// ReLU-like windows: half the values 0, the rest `U(0, 1)`; `one_class` fixes anchor 0,
/// class 0.
fn positives(seed: u64, n: usize, one_class: bool) -> Vec<Positive> {
    let mut rng = SplitMix64::new(seed);
    let len = DetectorSpec::tiny().patch_len();
    (0..n)
        .map(|_| Positive {
            patch: (0..len)
                .map(|_| {
                    let v = rng.unit_f64();
                    if v < 0.5 {
                        0.0
                    } else {
                        2.0 * (v - 0.5)
                    }
                })
                .collect(),
            anchor: if one_class { 0 } else { rng.below(6) as usize },
            class: if one_class { 0 } else { rng.below(10) as usize },
        })
        .collect()
}

fn to<T: Real>(xs: &[f64]) -> Vec<T> {
    xs.iter().map(|&v| T::from_f64(v)).collect()
}

/// The detector's classification loss on a window: BCE (summed) of the anchor's class row
/// against its one-hot target, with its gradient of the row when `grad` is given.
fn det_loss<T: Scalar>(
    spec: &DetectorSpec,
    params: &[T],
    patch: &[T],
    p: &Positive,
    grad: Option<&mut [T]>,
) -> T {
    let (a, c) = (spec.num_anchors(), spec.num_classes());
    let mut cls = vec![T::ZERO; a * c];
    let mut boxes = vec![T::ZERO; a * 4];
    spec.head_forward_at(params, patch, &mut cls, &mut boxes)
        .unwrap();
    let row = &cls[p.anchor * c..(p.anchor + 1) * c];
    let mut t = vec![T::ZERO; c];
    t[p.class] = T::ONE;
    let bce = BceWithLogits::new().with_reduction(Reduction::Sum);
    match grad {
        Some(g) => {
            g.fill(T::ZERO);
            bce.value_and_grad(row, &t, None, &mut g[p.anchor * c..(p.anchor + 1) * c])
                .unwrap()
        }
        None => bce.value(row, &t, None).unwrap(),
    }
}

/// The occlusion search's target cell of a window: the cell whose zeroing lowers the true
/// class's logit most.
fn search_target(spec: &DetectorSpec, params: &[f64], p: &Positive) -> (usize, Vec<f64>) {
    let f = spec.feature_channels();
    let (a, c) = (spec.num_anchors(), spec.num_classes());
    let search = OcclusionSearch::new(f, 3, 3, 1, 1).unwrap();
    let mut chw = vec![0.0; 9 * f];
    to_chw(&p.patch, f, &mut chw).unwrap();
    let mut scratch = vec![0.0; 9 * f];
    let mut hwc = vec![0.0; 9 * f];
    let mut scores = vec![0.0; search.window_count()];
    let (mut cls, mut boxes) = (vec![0.0; a * c], vec![0.0; a * 4]);
    let best = search
        .search(&chw, &mut scratch, &mut scores, |m| {
            from_chw(m, f, &mut hwc).unwrap();
            spec.head_forward_at(params, &hwc, &mut cls, &mut boxes)
                .unwrap();
            cls[p.anchor * c + p.class]
        })
        .unwrap();
    let mut target = vec![0.0; CELLS];
    search.target_map(best, &mut target).unwrap();
    (best, target)
}

fn argmax<T: Real>(xs: &[T]) -> usize {
    (0..xs.len()).fold(0, |b, i| if xs[i] > xs[b] { i } else { b })
}

/// ASDN pretrained on `train` (SGD, `epochs` passes, one window a step), in `T`.
fn pretrain<T: Scalar>(
    asdn: &Asdn,
    params: &mut [T],
    train: &[(Vec<f64>, Vec<f64>)],
    epochs: usize,
    lr: f64,
) {
    let sgd = Sgd::new(lr, 0.9, 0.0).unwrap();
    let mut master = vec![<T as Scalar>::Master::default(); params.len()];
    init_master(params, &mut master).unwrap();
    let mut buf = vec![<T as Scalar>::Master::default(); params.len()];
    let mut grads = vec![T::ZERO; params.len()];
    let (mut hidden, mut g_hidden) = (
        vec![T::ZERO; asdn.hidden_len()],
        vec![T::ZERO; asdn.hidden_len()],
    );
    let (mut scores, mut g) = ([T::ZERO; CELLS], [T::ZERO; CELLS]);
    for _ in 0..epochs {
        for (patch, target) in train {
            let (patch, target) = (to::<T>(patch), to::<T>(target));
            asdn.forward(params, &patch, &mut hidden, &mut scores)
                .unwrap();
            asdn.pretrain_grad(&scores, &target, &mut g).unwrap();
            asdn.backward(params, &patch, &hidden, &g, &mut g_hidden, &mut grads)
                .unwrap();
            sgd.step(params, &mut master, &mut buf, &mut grads).unwrap();
        }
    }
}

/// Share of `windows` whose highest ASDN score is the search's target cell.
fn agreement<T: Scalar>(asdn: &Asdn, params: &[T], windows: &[(Vec<f64>, usize)]) -> f64 {
    let mut hidden = vec![T::ZERO; asdn.hidden_len()];
    let mut scores = [T::ZERO; CELLS];
    let hits = windows
        .iter()
        .filter(|(patch, best)| {
            asdn.forward(params, &to::<T>(patch), &mut hidden, &mut scores)
                .unwrap();
            argmax(&scores) == *best
        })
        .count();
    hits as f64 / windows.len() as f64
}

#[test]
fn pretrained_asdn_agrees_with_the_search_on_held_out_windows() {
    let (spec, det) = detector(11);
    let asdn = Asdn::tiny();
    let all = positives(5, 1200, true);
    let labelled: Vec<(Vec<f64>, Vec<f64>, usize)> = all
        .iter()
        .map(|p| {
            let (best, target) = search_target(&spec, &det, p);
            (p.patch.clone(), target, best)
        })
        .collect();
    let (train, held) = labelled.split_at(1000);
    let train: Vec<_> = train
        .iter()
        .map(|(p, t, _)| (p.clone(), t.clone()))
        .collect();
    let held: Vec<_> = held.iter().map(|(p, _, b)| (p.clone(), *b)).collect();
    // Chance: the most frequent target cell's share among the held-out windows.
    let mut counts = [0usize; CELLS];
    held.iter().for_each(|(_, b)| counts[*b] += 1);
    let chance = *counts.iter().max().unwrap() as f64 / held.len() as f64;
    let mut params = vec![0.0f64; asdn.params_len()];
    asdn.init(&mut SplitMix64::new(3), &mut params).unwrap();
    let before = agreement(&asdn, &params, &held);
    pretrain(&asdn, &mut params, &train, 5, 0.02);
    let after = agreement(&asdn, &params, &held);
    println!("agreement: {before:.3} at init, {after:.3} pretrained, chance {chance:.3}");
    assert!(
        after >= 0.5 && after >= 2.0 * chance,
        "{after} vs chance {chance}"
    );
}

/// The detector's loss on `p` with cell `cell` dropped.
fn dropped_loss(spec: &DetectorSpec, det: &[f64], p: &Positive, cell: usize) -> f64 {
    let f = spec.feature_channels();
    let mut mask = [1.0; CELLS];
    mask[cell] = 0.0;
    let mut patch = p.patch.clone();
    apply_mask(&mask, f, &mut patch).unwrap();
    det_loss(spec, det, &patch, p, None)
}

/// The expected loss on `batch` under ASDN's masks (top 3, pick 1: each of the 3 best-scored
/// cells dropped with probability 1/3), exactly.
fn expected_masked_loss(
    spec: &DetectorSpec,
    det: &[f64],
    asdn: &Asdn,
    params: &[f64],
    batch: &[Positive],
) -> f64 {
    let mut hidden = vec![0.0; asdn.hidden_len()];
    let mut scores = [0.0; CELLS];
    let mut total = 0.0;
    for p in batch {
        asdn.forward(params, &p.patch, &mut hidden, &mut scores)
            .unwrap();
        let mut order: Vec<usize> = (0..CELLS).collect();
        order.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap().then(a.cmp(&b)));
        total += order[..3]
            .iter()
            .map(|&c| dropped_loss(spec, det, p, c))
            .sum::<f64>()
            / 3.0;
    }
    total / batch.len() as f64
}

#[test]
fn one_adversarial_asdn_update_raises_the_masked_loss() {
    let asdn = Asdn::tiny();
    let dropout = DropoutMask::new(1, 3, 3, 3, 1).unwrap();
    let mut gains = Vec::new();
    for seed in 0..6u64 {
        let (spec, det) = detector(100 + seed);
        let batch = positives(200 + seed, 64, false);
        let mut params = vec![0.0; asdn.params_len()];
        asdn.init(&mut SplitMix64::new(300 + seed), &mut params)
            .unwrap();
        let before = expected_masked_loss(&spec, &det, &asdn, &params, &batch);
        // One update over the batch: each positive's sampled mask, its loss change, ASDN's
        // adversarial gradient; the mean over the batch, one SGD step.
        let mut rng = SplitMix64::new(400 + seed);
        let mut grads = vec![0.0; asdn.params_len()];
        let (mut hidden, mut g_hidden) =
            (vec![0.0; asdn.hidden_len()], vec![0.0; asdn.hidden_len()]);
        let (mut scores, mut mask, mut g) = ([0.0; CELLS], [0.0; CELLS], [0.0; CELLS]);
        for p in &batch {
            asdn.forward(&params, &p.patch, &mut hidden, &mut scores)
                .unwrap();
            dropout.sample(&scores, &mut rng, &mut mask).unwrap();
            let mut masked = p.patch.clone();
            apply_mask(&mask, spec.feature_channels(), &mut masked).unwrap();
            let raised =
                det_loss(&spec, &det, &masked, p, None) > det_loss(&spec, &det, &p.patch, p, None);
            asdn.adversarial_grad(&scores, &mask, raised, &mut g)
                .unwrap();
            g.iter_mut().for_each(|v| *v /= batch.len() as f64);
            asdn.backward(&params, &p.patch, &hidden, &g, &mut g_hidden, &mut grads)
                .unwrap();
        }
        let sgd = Sgd::new(1.0, 0.0, 0.0).unwrap();
        let mut master = params.clone();
        let mut buf = vec![0.0; params.len()];
        sgd.step(&mut params, &mut master, &mut buf, &mut grads)
            .unwrap();
        let after = expected_masked_loss(&spec, &det, &asdn, &params, &batch);
        println!("seed {seed}: masked loss {before:.5} -> {after:.5}");
        gains.push(after - before);
    }
    let mean = gains.iter().sum::<f64>() / gains.len() as f64;
    assert!(mean > 0.0, "mean change {mean}: {gains:?}");
    assert!(gains.iter().filter(|&&g| g > 0.0).count() >= 5, "{gains:?}");
}

/// The detector's loss on `p` after ASTN's rotation of its window, and (when `grads`) the
/// gradient of that loss with respect to ASTN's parameters, through the rotation's angle
/// gradient.
fn astn_loss(
    spec: &DetectorSpec,
    det: &[f64],
    astn: &Astn,
    params: &[f64],
    p: &Positive,
    grads: Option<&mut [f64]>,
) -> f64 {
    let f = spec.feature_channels();
    let rotation = ChannelBlockRotation::<f64>::new(f, 3, 3, astn.blocks()).unwrap();
    let mut hidden = vec![0.0; astn.hidden_len()];
    let mut angles = vec![0.0; astn.blocks()];
    astn.forward(params, &p.patch, &mut hidden, &mut angles)
        .unwrap();
    let mut chw = vec![0.0; 9 * f];
    to_chw(&p.patch, f, &mut chw).unwrap();
    let mut rotated = vec![0.0; 9 * f];
    rotation.forward(&chw, &angles, &mut rotated).unwrap();
    let mut hard = vec![0.0; 9 * f];
    from_chw(&rotated, f, &mut hard).unwrap();
    let Some(grads) = grads else {
        return det_loss(spec, det, &hard, p, None);
    };
    let (a, c) = (spec.num_anchors(), spec.num_classes());
    let mut g_cls = vec![0.0; a * c];
    let loss = det_loss(spec, det, &hard, p, Some(&mut g_cls));
    let mut g_patch = vec![0.0; 9 * f];
    patch_gradient(spec, det, &g_cls, &vec![0.0; a * 4], &mut g_patch).unwrap();
    let mut up = vec![0.0; 9 * f];
    to_chw(&g_patch, f, &mut up).unwrap();
    let mut g_features = vec![0.0; 9 * f];
    let mut g_angles = vec![0.0; astn.blocks()];
    rotation
        .backward(&chw, &angles, &up, &mut g_features, &mut g_angles)
        .unwrap();
    let mut g_hidden = vec![0.0; astn.hidden_len()];
    astn.backward(
        params,
        &p.patch,
        &hidden,
        &angles,
        &g_angles,
        &mut g_hidden,
        grads,
    )
    .unwrap();
    loss
}

#[test]
fn astn_gradient_through_the_rotation_matches_finite_differences() {
    let (spec, det) = detector(21);
    let astn = Astn::tiny();
    let mut params = vec![0.0; astn.params_len()];
    astn.init(&mut SplitMix64::new(22), &mut params).unwrap();
    // Scale the second layer up so that the angles spread over the bound.
    let n = params.len();
    for v in &mut params[n - astn.blocks() * (astn.hidden_len() + 1)..] {
        *v *= 4.0;
    }
    let mut checked = 0;
    for p in positives(23, 4, false) {
        let mut grads = vec![0.0; n];
        astn_loss(&spec, &det, &astn, &params, &p, Some(&mut grads));
        let mut rng = SplitMix64::new(24);
        // Every bias and output weight, and 60 first-layer weights.
        let mut idx: Vec<usize> = (0..60).map(|_| rng.below(n as u64) as usize).collect();
        idx.extend(n - astn.blocks() * (astn.hidden_len() + 1)..n);
        for i in idx {
            let mut q = params.clone();
            q[i] = params[i] + FD_STEP;
            let up = astn_loss(&spec, &det, &astn, &q, &p, None);
            q[i] = params[i] - FD_STEP;
            let down = astn_loss(&spec, &det, &astn, &q, &p, None);
            let fd = (up - down) / (2.0 * FD_STEP);
            let bound = 100.0 * FD_REL * fd.abs().max(grads[i].abs()) + 1e-8;
            assert!(
                (fd - grads[i]).abs() <= bound,
                "param {i}: fd {fd:e}, analytic {:e}",
                grads[i]
            );
            checked += usize::from(grads[i] != 0.0);
        }
    }
    assert!(checked > 100, "{checked} nonzero gradients checked");
}

fn angles_stay_bounded<T: Scalar>() {
    let astn = Astn::tiny();
    let rotation = ChannelBlockRotation::<T>::new(16, 3, 3, astn.blocks()).unwrap();
    let m = astn.max_angle::<T>();
    let mut at_bound = 0;
    for (seed, scale) in [(1u64, 0.1), (2, 1.0), (3, 30.0), (4, 1000.0)] {
        let mut params = vec![T::ZERO; astn.params_len()];
        let mut rng = SplitMix64::new(seed);
        for v in &mut params {
            *v = T::from_f64(scale * (2.0 * rng.unit_f64() - 1.0));
        }
        for p in positives(seed, 20, false) {
            let patch = to::<T>(&p.patch.iter().map(|v| v * scale).collect::<Vec<_>>());
            let mut hidden = vec![T::ZERO; astn.hidden_len()];
            let mut angles = vec![T::ZERO; astn.blocks()];
            astn.forward(&params, &patch, &mut hidden, &mut angles)
                .unwrap();
            assert!(angles.iter().all(|a| a.abs() <= m), "{angles:?}");
            at_bound += angles.iter().filter(|a| a.abs() == m).count();
            // The rotation takes them as they are.
            let mut chw = vec![T::ZERO; patch.len()];
            to_chw(&patch, 16, &mut chw).unwrap();
            let mut out = vec![T::ZERO; patch.len()];
            rotation.forward(&chw, &angles, &mut out).unwrap();
        }
    }
    // The huge scales saturate tanh: the bound itself is reached, never passed.
    assert!(at_bound > 0);
    assert!((m.to_f64() - MAX_ANGLE).abs() <= 1e-5);
}

#[test]
fn angles_never_leave_the_bound() {
    angles_stay_bounded::<f32>();
    angles_stay_bounded::<f64>();
    angles_stay_bounded::<Q16>();
}

/// A short run in `T`: ASDN pretrained 3 passes over 24 windows, then 20 ASTN ascent steps
/// on 8 windows; returns ASDN's scores, ASTN's angles and the detector's loss on the
/// rotated window, on 16 held-out windows.
fn short_run<T: Scalar>() -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (spec, det) = detector(31);
    let f = spec.feature_channels();
    let detq = to::<T>(&det);
    let asdn = Asdn::tiny();
    let astn = Astn::tiny();
    let windows = positives(32, 48, false);
    let train: Vec<_> = windows[..24]
        .iter()
        .map(|p| (p.patch.clone(), search_target(&spec, &det, p).1))
        .collect();
    let init = |n: usize, seed: u64, f: &dyn Fn(&mut SplitMix64, &mut [f64])| {
        let mut v = vec![0.0; n];
        f(&mut SplitMix64::new(seed), &mut v);
        to::<T>(&v)
    };
    let mut a = init(asdn.params_len(), 33, &|r, v| asdn.init(r, v).unwrap());
    let mut s = init(astn.params_len(), 34, &|r, v| astn.init(r, v).unwrap());
    pretrain(&asdn, &mut a, &train, 3, 0.02);
    let rotation = ChannelBlockRotation::<T>::new(f, 3, 3, astn.blocks()).unwrap();
    let sgd = Sgd::new(0.05, 0.9, 0.0).unwrap();
    let mut master = vec![<T as Scalar>::Master::default(); s.len()];
    init_master(&s, &mut master).unwrap();
    let mut buf = vec![<T as Scalar>::Master::default(); s.len()];
    let mut grads = vec![T::ZERO; s.len()];
    let (ac, c) = (spec.num_anchors(), spec.num_classes());
    for step in 0..20 {
        let p = &windows[24 + step % 8];
        let patch = to::<T>(&p.patch);
        let mut hidden = vec![T::ZERO; astn.hidden_len()];
        let mut angles = vec![T::ZERO; astn.blocks()];
        astn.forward(&s, &patch, &mut hidden, &mut angles).unwrap();
        let mut chw = vec![T::ZERO; 9 * f];
        to_chw(&patch, f, &mut chw).unwrap();
        let mut rotated = vec![T::ZERO; 9 * f];
        rotation.forward(&chw, &angles, &mut rotated).unwrap();
        let mut hard = vec![T::ZERO; 9 * f];
        from_chw(&rotated, f, &mut hard).unwrap();
        let mut g_cls = vec![T::ZERO; ac * c];
        det_loss(&spec, &detq, &hard, p, Some(&mut g_cls));
        let mut g_patch = vec![T::ZERO; 9 * f];
        patch_gradient(&spec, &detq, &g_cls, &vec![T::ZERO; ac * 4], &mut g_patch).unwrap();
        let mut up = vec![T::ZERO; 9 * f];
        to_chw(&g_patch, f, &mut up).unwrap();
        let mut g_feat = vec![T::ZERO; 9 * f];
        let mut g_angles = vec![T::ZERO; astn.blocks()];
        rotation
            .backward(&chw, &angles, &up, &mut g_feat, &mut g_angles)
            .unwrap();
        // Ascent: the negated gradient into a minimising step.
        g_angles.iter_mut().for_each(|g| *g = T::ZERO - *g);
        let mut g_hidden = vec![T::ZERO; astn.hidden_len()];
        astn.backward(
            &s,
            &patch,
            &hidden,
            &angles,
            &g_angles,
            &mut g_hidden,
            &mut grads,
        )
        .unwrap();
        sgd.step(&mut s, &mut master, &mut buf, &mut grads).unwrap();
    }
    let (mut scores, mut angles, mut losses) = (Vec::new(), Vec::new(), Vec::new());
    for p in &windows[32..] {
        let patch = to::<T>(&p.patch);
        let mut hidden = vec![T::ZERO; asdn.hidden_len()];
        let mut sc = [T::ZERO; CELLS];
        asdn.forward(&a, &patch, &mut hidden, &mut sc).unwrap();
        scores.extend(sc.iter().map(|v| v.to_f64()));
        let mut hidden = vec![T::ZERO; astn.hidden_len()];
        let mut an = vec![T::ZERO; astn.blocks()];
        astn.forward(&s, &patch, &mut hidden, &mut an).unwrap();
        angles.extend(an.iter().map(|v| v.to_f64()));
        let mut chw = vec![T::ZERO; 9 * f];
        to_chw(&patch, f, &mut chw).unwrap();
        let mut rotated = vec![T::ZERO; 9 * f];
        rotation.forward(&chw, &an, &mut rotated).unwrap();
        let mut hard = vec![T::ZERO; 9 * f];
        from_chw(&rotated, f, &mut hard).unwrap();
        losses.push(det_loss(&spec, &detq, &hard, p, None).to_f64());
    }
    (scores, angles, losses)
}

#[test]
fn q15_16_follows_f32_on_a_short_run() {
    let (s32, a32, l32) = short_run::<f32>();
    let (sq, aq, lq) = short_run::<Q16>();
    let fixed = Tolerance::of(hardmine_host_tests::tolerance::Path::Fixed);
    let worst = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    };
    println!(
        "max |diff|: scores {:e}, angles {:e}, losses {:e}",
        worst(&sq, &s32),
        worst(&aq, &a32),
        worst(&lq, &l32)
    );
    // ASDN's scores and the detector's loss on ASTN's windows: the golden fixed-point row.
    fixed.check(&sq, &s32).unwrap();
    fixed.check(&lq, &l32).unwrap();
    // The angles drift more: each step's angle gradient sums 144 Q15.16 products rounded one
    // by one (the rotation's backward pass) and 20 momentum steps carry it on; within 2% of
    // the bound (0.2 degrees).
    assert!(worst(&aq, &a32) <= 0.02 * MAX_ANGLE);
    // The run moved the angles (ascent did something), and the paths are not identical.
    let (_, a0) = {
        let astn = Astn::tiny();
        let mut v = vec![0.0; astn.params_len()];
        astn.init(&mut SplitMix64::new(34), &mut v).unwrap();
        let mut an = Vec::new();
        for p in &positives(32, 48, false)[32..] {
            let mut hidden = vec![0.0; astn.hidden_len()];
            let mut a = vec![0.0; astn.blocks()];
            astn.forward(&v, &p.patch, &mut hidden, &mut a).unwrap();
            an.extend(a);
        }
        ((), an)
    };
    let moved = a32
        .iter()
        .zip(&a0)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(moved > 1e-3, "ASTN did not move: {moved}");
}

#[test]
fn bad_input_is_an_error_and_writes_nothing() {
    let asdn = Asdn::tiny();
    let astn = Astn::tiny();
    assert_eq!(Asdn::new(0, 8), Err(Error::InvalidParameter("features")));
    assert_eq!(Asdn::new(16, 0), Err(Error::InvalidParameter("hidden")));
    assert_eq!(Astn::new(16, 8, 17), Err(Error::InvalidParameter("blocks")));
    assert_eq!(Astn::new(16, 8, 0), Err(Error::InvalidParameter("blocks")));
    assert!(Asdn::new(usize::MAX / 2, 8).is_err());
    let mut params = vec![0.0f32; asdn.params_len()];
    asdn.init(&mut SplitMix64::new(1), &mut params).unwrap();
    let patch = vec![0.5f32; asdn.patch_len()];
    let mut hidden = vec![7.0f32; asdn.hidden_len()];
    let mut scores = [7.0f32; CELLS];
    assert!(matches!(
        asdn.forward(&params, &patch[1..], &mut hidden, &mut scores),
        Err(Error::LengthMismatch { .. })
    ));
    let mut nan = patch.clone();
    nan[5] = f32::NAN;
    assert_eq!(
        asdn.forward(&params, &nan, &mut hidden, &mut scores),
        Err(Error::NonFinite { index: 5 })
    );
    assert!(hidden.iter().chain(&scores).all(|&v| v == 7.0));
    let mut grads = vec![3.0f32; asdn.params_len()];
    let mut g_hidden = vec![0.0f32; asdn.hidden_len()];
    assert_eq!(
        asdn.backward(
            &params,
            &patch,
            &hidden,
            &[f32::INFINITY; CELLS],
            &mut g_hidden,
            &mut grads
        ),
        Err(Error::NonFinite { index: 0 })
    );
    assert!(grads.iter().all(|&v| v == 3.0));
    let mut g = [7.0f32; CELLS];
    let mut target = [0.0f32; CELLS];
    target[2] = 0.5;
    assert_eq!(
        asdn.pretrain_grad(&scores, &target, &mut g),
        Err(Error::InvalidTarget { index: 2 })
    );
    assert_eq!(
        asdn.adversarial_grad(&scores, &target, true, &mut g),
        Err(Error::InvalidTarget { index: 2 })
    );
    assert!(g.iter().all(|&v| v == 7.0));
    let mut sp = vec![0.0f32; astn.params_len()];
    astn.init(&mut SplitMix64::new(2), &mut sp).unwrap();
    let mut ah = vec![7.0f32; astn.hidden_len()];
    let mut angles = [7.0f32; 4];
    assert!(astn
        .forward(&sp, &patch, &mut ah, &mut angles[..3])
        .is_err());
    assert!(ah.iter().chain(&angles).all(|&v| v == 7.0));
    let mut sg = vec![3.0f32; astn.params_len()];
    let mut g_ah = vec![0.0f32; astn.hidden_len()];
    assert!(astn
        .backward(
            &sp,
            &patch,
            &ah,
            &[0.0; 4],
            &[f32::NAN; 4],
            &mut g_ah,
            &mut sg
        )
        .is_err());
    assert!(sg.iter().all(|&v| v == 3.0));
    let spec = DetectorSpec::tiny();
    let det = vec![0.0f32; spec.params_len()];
    let mut gp = vec![7.0f32; spec.patch_len()];
    assert!(patch_gradient(&spec, &det, &[0.0; 59], &[0.0; 24], &mut gp).is_err());
    assert!(gp.iter().all(|&v| v == 7.0));
    let mut p2 = patch.clone();
    assert!(apply_mask(&[0.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 16, &mut p2).is_err());
    assert_eq!(p2, patch);
    assert!(to_chw(&patch, 15, &mut p2).is_err());
}

#[test]
fn patch_gradient_is_the_heads_gradient_by_finite_differences() {
    let (spec, det) = detector(41);
    let p = &positives(42, 1, false)[0];
    let (a, c) = (spec.num_anchors(), spec.num_classes());
    let mut g_cls = vec![0.0; a * c];
    det_loss(&spec, &det, &p.patch, p, Some(&mut g_cls));
    let mut rng = SplitMix64::new(43);
    let g_box: Vec<f64> = (0..a * 4).map(|_| rng.unit_f64() - 0.5).collect();
    let mut g_patch = vec![0.0; spec.patch_len()];
    patch_gradient(&spec, &det, &g_cls, &g_box, &mut g_patch).unwrap();
    // The loss L = BCE(cls row) + g_box . boxes.
    let total = |patch: &[f64]| {
        let (mut cls, mut boxes) = (vec![0.0; a * c], vec![0.0; a * 4]);
        spec.head_forward_at(&det, patch, &mut cls, &mut boxes)
            .unwrap();
        det_loss(&spec, &det, patch, p, None)
            + boxes.iter().zip(&g_box).map(|(b, g)| b * g).sum::<f64>()
    };
    for i in 0..spec.patch_len() {
        let mut q = p.patch.clone();
        q[i] += FD_STEP;
        let up = total(&q);
        q[i] -= 2.0 * FD_STEP;
        let down = total(&q);
        let fd = (up - down) / (2.0 * FD_STEP);
        assert!(
            (fd - g_patch[i]).abs() <= 100.0 * FD_REL * fd.abs().max(1e-3),
            "{i}: {fd} vs {}",
            g_patch[i]
        );
    }
}
