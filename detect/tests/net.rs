//! The network against oracles: a plainly written direct convolution, central finite
//! differences of every backward pass (f64), the single-location head against the full map,
//! Q15.16 against f64 within a bound derived from the weights, SGD against PyTorch's update
//! written out, and bad input.

use hardmine::{Error, Real, SplitMix64, Q16};
use hardmine_detect::{
    init_master, relu_backward, ConvSpec, DetectorSpec, Master, Scalar, Sgd, SgdStats, I32F32,
};

fn uniform(rng: &mut SplitMix64, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| lo + (hi - lo) * rng.unit_f64()).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The direct convolution, one output at a time, weights read through the documented
/// layout `((ky * 3 + kx) * in + ic) * out + oc`, zero padding by an explicit bounds test.
fn oracle(conv: &ConvSpec, p: &[f64], x: &[f64], h: usize, w: usize, relu: bool) -> Vec<f64> {
    let (ci, co, s) = (conv.in_ch(), conv.out_ch(), conv.stride());
    let oh = (h + 2 - 3) / s + 1;
    let ow = (w + 2 - 3) / s + 1;
    let mut out = vec![0.0; oh * ow * co];
    for oy in 0..oh {
        for ox in 0..ow {
            for oc in 0..co {
                let mut v = p[9 * ci * co + oc];
                for ky in 0..3 {
                    for kx in 0..3 {
                        let iy = (oy * s + ky) as i64 - 1;
                        let ix = (ox * s + kx) as i64 - 1;
                        if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                            continue;
                        }
                        for ic in 0..ci {
                            let xv = x[((iy as usize) * w + ix as usize) * ci + ic];
                            v += p[((ky * 3 + kx) * ci + ic) * co + oc] * xv;
                        }
                    }
                }
                out[(oy * ow + ox) * co + oc] = if relu { v.max(0.0) } else { v };
            }
        }
    }
    out
}

/// Sizes covering borders, odd sides and both strides.
const SHAPES: [(usize, usize, usize, usize, usize); 6] = [
    (1, 1, 1, 1, 1),
    (5, 4, 2, 3, 2),
    (7, 7, 3, 2, 2),
    (6, 9, 2, 4, 1),
    (3, 8, 1, 5, 2),
    (2, 2, 4, 3, 1),
];

#[test]
fn forward_equals_the_direct_convolution() {
    let mut rng = SplitMix64::new(11);
    for (h, w, ci, co, s) in SHAPES {
        let conv = ConvSpec::new(ci, co, s).unwrap();
        let (oh, ow) = conv.out_hw(h, w);
        assert_eq!((oh, ow), ((h + 2 - 3) / s + 1, (w + 2 - 3) / s + 1));
        let p = uniform(&mut rng, conv.params_len(), -1.0, 1.0);
        let mut x = uniform(&mut rng, h * w * ci, -1.0, 1.0);
        // Some exact zeros (the skipped inputs).
        for v in x.iter_mut().step_by(3) {
            *v = 0.0;
        }
        for relu in [false, true] {
            let want = oracle(&conv, &p, &x, h, w, relu);
            let mut got = vec![f64::NAN; oh * ow * co];
            conv.forward(&p, &x, h, w, &mut got, relu).unwrap();
            for (g, e) in got.iter().zip(&want) {
                assert!(
                    (g - e).abs() <= 1e-12,
                    "{h}x{w} {ci}->{co} s{s}: {g} vs {e}"
                );
            }
            // f32 on the same values, to f32's accuracy.
            let p32: Vec<f32> = p.iter().map(|v| *v as f32).collect();
            let x32: Vec<f32> = x.iter().map(|v| *v as f32).collect();
            let mut got32 = vec![0.0f32; oh * ow * co];
            conv.forward(&p32, &x32, h, w, &mut got32, relu).unwrap();
            for (g, e) in got32.iter().zip(&want) {
                assert!((f64::from(*g) - e).abs() <= 1e-5, "f32 {g} vs {e}");
            }
        }
    }
}

/// Central differences of `f` at `x` along every coordinate.
fn numeric_grad(x: &[f64], mut f: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let eps = 1e-6;
    let mut y = x.to_vec();
    (0..x.len())
        .map(|i| {
            y[i] = x[i] + eps;
            let up = f(&y);
            y[i] = x[i] - eps;
            let down = f(&y);
            y[i] = x[i];
            (up - down) / (2.0 * eps)
        })
        .collect()
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len());
    for (i, (g, e)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - e).abs() <= 1e-6 * (1.0 + e.abs()),
            "{what}[{i}]: {g} vs {e}"
        );
    }
}

#[test]
fn conv_gradients_match_finite_differences() {
    let mut rng = SplitMix64::new(12);
    for (h, w, ci, co, s) in SHAPES {
        let conv = ConvSpec::new(ci, co, s).unwrap();
        let (oh, ow) = conv.out_hw(h, w);
        let p = uniform(&mut rng, conv.params_len(), -1.0, 1.0);
        let x = uniform(&mut rng, h * w * ci, -1.0, 1.0);
        let r = uniform(&mut rng, oh * ow * co, -1.0, 1.0);
        for relu in [false, true] {
            let loss = |p: &[f64], x: &[f64]| {
                let mut out = vec![0.0; oh * ow * co];
                conv.forward(p, x, h, w, &mut out, relu).unwrap();
                dot(&out, &r)
            };
            let mut out = vec![0.0; oh * ow * co];
            conv.forward(&p, &x, h, w, &mut out, relu).unwrap();
            let mut g = r.clone();
            if relu {
                relu_backward(&out, &mut g).unwrap();
            }
            // Accumulates onto what is there; overwrites the input's gradient.
            let mut gp = vec![0.25; conv.params_len()];
            let mut gx = vec![7.0; x.len()];
            conv.backward(&p, &x, h, w, &g, &mut gp, Some(&mut gx))
                .unwrap();
            let gp: Vec<f64> = gp.iter().map(|v| v - 0.25).collect();
            assert_close(&gp, &numeric_grad(&p, |p| loss(p, &x)), "params");
            assert_close(&gx, &numeric_grad(&x, |x| loss(&p, x)), "input");
        }
    }
}

/// A small detector with odd sizes: 9 x 7 x 2, conv 2 -> 3 stride 2, 3 -> 4 stride 1; 2
/// anchors, 3 classes.
fn small() -> DetectorSpec {
    let layers = [
        ConvSpec::new(2, 3, 2).unwrap(),
        ConvSpec::new(3, 4, 1).unwrap(),
    ];
    DetectorSpec::new(9, 7, 2, &layers, 2, 3).unwrap()
}

/// Random parameters on the small spec, big enough that the head's gradients are not tiny.
fn small_params(spec: &DetectorSpec, rng: &mut SplitMix64) -> Vec<f64> {
    uniform(rng, spec.params_len(), -0.7, 0.7)
}

#[test]
fn network_gradients_match_finite_differences() {
    let spec = small();
    let mut rng = SplitMix64::new(13);
    let p = small_params(&spec, &mut rng);
    let image = uniform(&mut rng, spec.image_len(), 0.0, 1.0);
    let rc = uniform(&mut rng, spec.cls_len(), -1.0, 1.0);
    let rb = uniform(&mut rng, spec.box_len(), -1.0, 1.0);
    let features_of = |p: &[f64]| {
        let mut acts = vec![0.0; spec.activations_len()];
        let mut f = vec![0.0; spec.features_len()];
        spec.backbone_forward(p, &image, &mut acts, &mut f).unwrap();
        (acts, f)
    };
    let head_loss = |p: &[f64], f: &[f64]| {
        let (mut c, mut b) = (vec![0.0; spec.cls_len()], vec![0.0; spec.box_len()]);
        spec.head_forward(p, f, &mut c, &mut b).unwrap();
        dot(&c, &rc) + dot(&b, &rb)
    };
    let (mut acts, features) = features_of(&p);
    let mut g_head = vec![0.0; spec.head_params().len()];
    let mut g_features = vec![0.0; spec.features_len()];
    spec.head_backward(&p, &features, &rc, &rb, &mut g_head, Some(&mut g_features))
        .unwrap();
    let mut scratch = vec![0.0; spec.scratch_len()];
    let mut g_backbone = vec![0.0; spec.backbone_params().len()];
    let g_f = g_features.clone();
    spec.backbone_backward(
        &p,
        &image,
        &mut acts,
        &features,
        &mut g_features,
        &mut g_backbone,
        &mut scratch,
    )
    .unwrap();
    let numeric = numeric_grad(&p, |q| head_loss(q, &features_of(q).1));
    let (b, hd) = (spec.backbone_params(), spec.head_params());
    assert_close(&g_head, &numeric[hd], "head params");
    assert_close(&g_backbone, &numeric[b], "backbone params");
    assert_close(
        &g_f,
        &numeric_grad(&features, |f| head_loss(&p, f)),
        "features",
    );
}

#[test]
fn single_layer_backbone_gradient() {
    let spec = DetectorSpec::new(5, 6, 1, &[ConvSpec::new(1, 3, 2).unwrap()], 1, 2).unwrap();
    assert_eq!((spec.activations_len(), spec.scratch_len()), (0, 0));
    let mut rng = SplitMix64::new(14);
    let p = small_params(&spec, &mut rng);
    let image = uniform(&mut rng, spec.image_len(), 0.0, 1.0);
    let r = uniform(&mut rng, spec.features_len(), -1.0, 1.0);
    let loss = |p: &[f64]| {
        let mut f = vec![0.0; spec.features_len()];
        spec.backbone_forward(p, &image, &mut [], &mut f).unwrap();
        dot(&f, &r)
    };
    let mut f = vec![0.0; spec.features_len()];
    spec.backbone_forward(&p, &image, &mut [], &mut f).unwrap();
    let mut g = vec![0.0; spec.backbone_params().len()];
    let mut gf = r.clone();
    spec.backbone_backward(&p, &image, &mut [], &f, &mut gf, &mut g, &mut [])
        .unwrap();
    assert_close(
        &g,
        &numeric_grad(&p, loss)[spec.backbone_params()],
        "backbone",
    );
}

fn to<T: Real>(xs: &[f64]) -> Vec<T> {
    xs.iter().map(|v| T::from_f64(*v)).collect()
}

/// The tiny spec with initialised parameters, an image of p/16 values and its features.
fn tiny_case<T: Scalar>(seed: u64) -> (DetectorSpec, Vec<T>, Vec<T>, Vec<T>) {
    let spec = DetectorSpec::tiny();
    let mut rng = SplitMix64::new(seed);
    let mut params = vec![T::ZERO; spec.params_len()];
    spec.init(&mut rng, T::from_f64(-4.59511985), &mut params)
        .unwrap();
    let image: Vec<T> = (0..spec.image_len())
        .map(|_| T::from_f64(rng.below(17) as f64 / 16.0))
        .collect();
    let mut acts = vec![T::ZERO; spec.activations_len()];
    let mut features = vec![T::ZERO; spec.features_len()];
    spec.backbone_forward(&params, &image, &mut acts, &mut features)
        .unwrap();
    (spec, params, image, features)
}

fn single_location_head_is_the_full_map<T: Scalar>() {
    let (spec, params, _, features) = tiny_case::<T>(21);
    let (a, c) = (spec.num_anchors(), spec.num_classes());
    let (mut cls, mut boxes) = (vec![T::ZERO; spec.cls_len()], vec![T::ZERO; spec.box_len()]);
    spec.head_forward(&params, &features, &mut cls, &mut boxes)
        .unwrap();
    let (fh, fw) = spec.feature_hw();
    let mut patch = vec![T::ZERO; spec.patch_len()];
    let (mut c_at, mut b_at) = (vec![T::ZERO; a * c], vec![T::ZERO; a * 4]);
    let mut rng = SplitMix64::new(22);
    for y in 0..fh {
        for x in 0..fw {
            spec.patch_at(&features, y, x, &mut patch).unwrap();
            spec.head_forward_at(&params, &patch, &mut c_at, &mut b_at)
                .unwrap();
            let loc = y * fw + x;
            assert_eq!(
                &c_at[..],
                &cls[loc * a * c..(loc + 1) * a * c],
                "cls at {y},{x}"
            );
            assert_eq!(
                &b_at[..],
                &boxes[loc * a * 4..(loc + 1) * a * 4],
                "box at {y},{x}"
            );
            // The backward pass at that location equals the full map's with one row.
            if (y * 7 + x) % 37 == 0 || y == 0 || x == fw - 1 {
                let gc = to::<T>(&uniform(&mut rng, a * c, -0.1, 0.1));
                let gb = to::<T>(&uniform(&mut rng, a * 4, -0.1, 0.1));
                let mut full_c = vec![T::ZERO; spec.cls_len()];
                let mut full_b = vec![T::ZERO; spec.box_len()];
                full_c[loc * a * c..(loc + 1) * a * c].copy_from_slice(&gc);
                full_b[loc * a * 4..(loc + 1) * a * 4].copy_from_slice(&gb);
                let mut g_full = vec![T::ZERO; spec.head_params().len()];
                let mut g_at = g_full.clone();
                spec.head_backward(&params, &features, &full_c, &full_b, &mut g_full, None)
                    .unwrap();
                spec.head_backward_at(&patch, &gc, &gb, &mut g_at).unwrap();
                assert_eq!(g_full, g_at, "backward at {y},{x}");
            }
        }
    }
    // Zero padding: a corner patch has zeros in its first row and column of taps.
    spec.patch_at(&features, 0, 0, &mut patch).unwrap();
    let f = spec.feature_channels();
    for t in [0, 1, 2, 3, 6] {
        assert!(patch[t * f..(t + 1) * f].iter().all(|v| *v == T::ZERO));
    }
    assert_eq!(&patch[4 * f..5 * f], &features[..f]);
}

#[test]
fn single_location_head_is_the_full_map_f32_and_q16() {
    single_location_head_is_the_full_map::<f32>();
    single_location_head_is_the_full_map::<Q16>();
}

/// Q15.16 against f64 on the same (Q15.16) weights and image: the Q15.16 path sums exact
/// products and rounds each output once, so layer `l`'s error is at most
/// `e_l = G_l * e_(l-1) + LSB / 2`, with `G_l` the largest l1 norm of one output's weights
/// (ReLU is 1-Lipschitz) and `e_0 = 0` (the image is exact).
#[test]
fn q16_forward_within_the_derived_bound_of_f64() {
    let (spec, params, image, features) = tiny_case::<Q16>(31);
    let p64: Vec<f64> = params.iter().map(|v| v.to_f64()).collect();
    let i64_: Vec<f64> = image.iter().map(|v| v.to_f64()).collect();
    let mut acts = vec![0.0; spec.activations_len()];
    let mut f64s = vec![0.0; spec.features_len()];
    spec.backbone_forward(&p64, &i64_, &mut acts, &mut f64s)
        .unwrap();
    let half = 0.5 / 65536.0;
    let gain = |conv: &ConvSpec, p: &[f64]| {
        (0..conv.out_ch())
            .map(|oc| {
                (0..9 * conv.in_ch())
                    .map(|k| p[k * conv.out_ch() + oc].abs())
                    .sum::<f64>()
            })
            .fold(0.0, f64::max)
    };
    let mut bound = 0.0;
    for (i, l) in spec.backbone().iter().enumerate() {
        bound = gain(l, &p64[spec.layer_params(i)]) * bound + half;
    }
    let err = features
        .iter()
        .zip(&f64s)
        .map(|(q, e)| (q.to_f64() - e).abs())
        .fold(0.0, f64::max);
    let scale = f64s.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.1, "realistic magnitudes: max feature {scale}");
    assert!(err <= bound, "features: {err:e} > {bound:e}");
    // The head on the Q15.16 features against f64 on the same features.
    let (mut c, mut b) = (
        vec![Q16::ZERO; spec.cls_len()],
        vec![Q16::ZERO; spec.box_len()],
    );
    spec.head_forward(&params, &features, &mut c, &mut b)
        .unwrap();
    let fq: Vec<f64> = features.iter().map(|v| v.to_f64()).collect();
    let (mut c64, mut b64) = (vec![0.0; spec.cls_len()], vec![0.0; spec.box_len()]);
    spec.head_forward(&p64, &fq, &mut c64, &mut b64).unwrap();
    for (q, e) in c.iter().chain(&b).zip(c64.iter().chain(&b64)) {
        assert!((q.to_f64() - e).abs() <= half, "head {q:?} vs {e}");
    }
    // And the whole Q15.16 head against f64 on unquantised features, within the
    // propagated bound.
    let head_gain = gain(&spec.cls_conv(), &p64[spec.cls_params()])
        .max(gain(&spec.box_conv(), &p64[spec.box_params()]));
    spec.head_forward(&p64, &f64s, &mut c64, &mut b64).unwrap();
    let head_bound = head_gain * bound + half;
    for (q, e) in c.iter().chain(&b).zip(c64.iter().chain(&b64)) {
        assert!((q.to_f64() - e).abs() <= head_bound, "head {q:?} vs {e}");
    }
    println!("Q16 features: max error {err:e} (bound {bound:e}, max |feature| {scale})");
}

#[test]
fn init_follows_the_documented_distributions() {
    let spec = DetectorSpec::tiny();
    let mut p = vec![0.0f64; spec.params_len()];
    spec.init(&mut SplitMix64::new(5), -4.6, &mut p).unwrap();
    for (i, l) in spec.backbone().iter().enumerate() {
        let r = spec.layer_params(i);
        let (w, b) = p[r].split_at(l.weights_len());
        let bound = (6.0 / (9 * l.in_ch()) as f64).sqrt();
        assert!(w.iter().all(|v| v.abs() <= bound));
        // U(-b, b) has variance b^2 / 3.
        let var = w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64;
        assert!(
            (var / (bound * bound / 3.0) - 1.0).abs() < 0.3,
            "layer {i}: {var}"
        );
        assert!(b.iter().all(|v| *v == 0.0));
    }
    for (conv, r, bias) in [
        (spec.cls_conv(), spec.cls_params(), -4.6),
        (spec.box_conv(), spec.box_params(), 0.0),
    ] {
        let (w, b) = p[r].split_at(conv.weights_len());
        let std = (w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64).sqrt();
        assert!((std / 0.01 - 1.0).abs() < 0.05, "head std {std}");
        assert!(b.iter().all(|v| *v == bias));
    }
    // Q15.16 weights are the f64 ones rounded.
    let mut q = vec![Q16::ZERO; spec.params_len()];
    spec.init(&mut SplitMix64::new(5), Q16::from_f64(-4.6), &mut q)
        .unwrap();
    assert!(q.iter().zip(&p).all(|(q, p)| *q == Q16::from_f64(*p)));
}

/// PyTorch's SGD written out in f64.
fn torch_sgd(w: &mut [f64], buf: &mut [f64], g: &[f64], lr: f64, mom: f64, wd: f64, first: bool) {
    for i in 0..w.len() {
        let d = g[i] + wd * w[i];
        buf[i] = if first { d } else { mom * buf[i] + d };
        w[i] -= lr * buf[i];
    }
}

#[test]
fn sgd_matches_pytorch() {
    let mut rng = SplitMix64::new(41);
    let n = 50;
    let (lr, mom, wd) = (0.05, 0.9, 1e-3);
    let sgd = Sgd::new(lr, mom, wd).unwrap();
    let mut w = uniform(&mut rng, n, -1.0, 1.0);
    let mut want = w.clone();
    let mut master = vec![0.0; n];
    init_master(&w, &mut master).unwrap();
    let mut buf = vec![0.0; n];
    let mut want_buf = vec![0.0; n];
    for step in 0..5 {
        let g = uniform(&mut rng, n, -1.0, 1.0);
        let mut gs = g.clone();
        let stats = sgd.step(&mut w, &mut master, &mut buf, &mut gs).unwrap();
        torch_sgd(&mut want, &mut want_buf, &g, lr, mom, wd, step == 0);
        assert!(gs.iter().all(|v| *v == 0.0));
        assert_eq!(stats.elements, n);
        assert_eq!(
            (stats.nonzero, stats.lost_in_master, stats.saturated),
            (n, 0, 0)
        );
        for i in 0..n {
            assert!(
                (w[i] - want[i]).abs() < 1e-15,
                "step {step}: {} vs {}",
                w[i],
                want[i]
            );
            assert!((buf[i] - want_buf[i]).abs() < 1e-15);
            assert_eq!(w[i], master[i]);
        }
    }
    // Q15.16 follows the same trajectory to within its rounding.
    let mut wq: Vec<Q16> = to(&uniform(&mut SplitMix64::new(42), n, -1.0, 1.0));
    let mut w64: Vec<f64> = wq.iter().map(|v| v.to_f64()).collect();
    let mut mq = vec![I32F32::ZERO; n];
    init_master(&wq, &mut mq).unwrap();
    let (mut bq, mut b64) = (vec![I32F32::ZERO; n], vec![0.0; n]);
    for step in 0..5 {
        let mut g: Vec<Q16> = to(&uniform(&mut rng, n, -1.0, 1.0));
        let g64: Vec<f64> = g.iter().map(|v| v.to_f64()).collect();
        sgd.step(&mut wq, &mut mq, &mut bq, &mut g).unwrap();
        torch_sgd(&mut w64, &mut b64, &g64, lr, mom, wd, step == 0);
        for i in 0..n {
            assert!((mq[i].to_value() - w64[i]).abs() < 1e-8);
            assert!((wq[i].to_f64() - w64[i]).abs() <= 0.5 / 65536.0 + 1e-8);
        }
    }
}

#[test]
fn q16_master_keeps_updates_below_one_lsb() {
    // lr * g = 1e-7 (g one LSB), 1000 steps without momentum: the master moves by 1e-4
    // (6.6 LSB), while a plain Q15.16 update rounds to zero every time.
    let g = Q16::from_bits(1);
    let lr = 1e-7 / g.to_f64();
    assert_eq!(Q16::ONE - Q16::from_f64(lr) * g, Q16::ONE);
    let sgd = Sgd::new(lr, 0.0, 0.0).unwrap();
    let mut w = [Q16::ONE];
    let mut m = [I32F32::ZERO];
    init_master(&w, &mut m).unwrap();
    let mut buf = [I32F32::ZERO];
    let mut total = SgdStats::default();
    for _ in 0..1000 {
        let mut gs = [g];
        let stats = sgd.step(&mut w, &mut m, &mut buf, &mut gs).unwrap();
        total.add(&stats);
    }
    // Each step moves the master by lr * g rounded to Q31.32 (lr itself rounded first):
    // 429 units of 2^-32, 1e-7 to 0.1%.
    let two32 = 4_294_967_296.0f64;
    let per = ((lr * two32).round() * 65536.0 / two32).round() / two32;
    assert!((per / 1e-7 - 1.0).abs() < 2e-3);
    let moved = 1.0 - m[0].to_value();
    assert_eq!(moved, 1000.0 * per, "master moved {moved:e}");
    assert_eq!(w[0], Q16::from_f64(1.0 - 1000.0 * per));
    assert_eq!(
        (total.elements, total.nonzero, total.lost_in_master),
        (1000, 1000, 0)
    );
    // The weight changed in 7 steps (at 0.5, 1.5, ..., 6.5 LSB); the rest only in the master.
    assert_eq!(total.applied(), 1000);
    assert_eq!(total.lost_in_weight, 1000 - 7);
    // A plain Q15.16 update would lose every one: 1e-7 is below half an LSB.
    assert_eq!(total.lost_without_master, 1000);
    assert_eq!(total.saturated, 0);
    // Weight decay alone (zero gradient): lr * wd * w = 1e-2 * 1e-4 * 1 = 1e-6, below one
    // LSB, accumulates in the master.
    let sgd = Sgd::new(1e-2, 0.0, 1e-4).unwrap();
    let mut w = [Q16::ONE];
    init_master(&w, &mut m).unwrap();
    let mut buf = [I32F32::ZERO];
    for _ in 0..100 {
        sgd.step(&mut w, &mut m, &mut buf, &mut [Q16::ZERO])
            .unwrap();
    }
    let want = (1.0f64 - 1e-6).powi(100);
    assert!((m[0].to_value() - want).abs() < 1e-8, "{}", m[0].to_value());
    assert_eq!(w[0], Q16::from_f64(want));
}

#[test]
fn q16_saturation_is_counted() {
    let sgd = Sgd::new(1.0, 0.0, 0.0).unwrap();
    let mut w = [Q16::from_f64(32000.0), Q16::ZERO];
    let mut m = [I32F32::ZERO; 2];
    init_master(&w, &mut m).unwrap();
    let mut buf = [I32F32::ZERO; 2];
    let mut g = [Q16::from_f64(-1000.0), Q16::from_f64(1.0)];
    let stats = sgd.step(&mut w, &mut m, &mut buf, &mut g).unwrap();
    assert_eq!(stats.saturated, 1);
    assert_eq!(w, [Q16::MAX, Q16::from_f64(-1.0)]);
    assert!((m[0].to_value() - 33000.0).abs() < 1e-6);
    assert!(!m[0].fits() && m[1].fits());
}

#[test]
fn sgd_rejects_bad_input_and_changes_nothing() {
    for (lr, mom, wd, name) in [
        (0.0, 0.9, 0.0, "lr"),
        (f64::NAN, 0.9, 0.0, "lr"),
        (f64::INFINITY, 0.9, 0.0, "lr"),
        (0.1, 1.0, 0.0, "momentum"),
        (0.1, -0.1, 0.0, "momentum"),
        (0.1, f64::NAN, 0.0, "momentum"),
        (0.1, 0.9, -1e-4, "weight_decay"),
        (0.1, 0.9, f64::INFINITY, "weight_decay"),
    ] {
        assert_eq!(Sgd::new(lr, mom, wd), Err(Error::InvalidParameter(name)));
    }
    let sgd = Sgd::new(0.1, 0.9, 1e-4).unwrap();
    let w0 = vec![0.5f32, -0.25, 1.0];
    let (mut w, mut m, mut b) = (w0.clone(), w0.clone(), vec![0.1f32; 3]);
    let mut g = vec![1.0f32, f32::NAN, 2.0];
    let before = (w.clone(), m.clone(), b.clone(), g.clone());
    assert_eq!(
        sgd.step(&mut w, &mut m, &mut b, &mut g),
        Err(Error::NonFinite { index: 1 })
    );
    let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
    assert!(same(&w, &before.0) && same(&m, &before.1) && same(&b, &before.2));
    assert!(same(&g, &before.3));
    g[1] = 0.0;
    m[2] = f32::INFINITY;
    assert_eq!(
        sgd.step(&mut w, &mut m, &mut b, &mut g),
        Err(Error::NonFinite { index: 2 })
    );
    m[2] = 1.0;
    let lens = |e, got| Err(Error::LengthMismatch { expected: e, got });
    assert_eq!(sgd.step(&mut w, &mut m[..2], &mut b, &mut g), lens(3, 2));
    assert_eq!(sgd.step(&mut w, &mut m, &mut b[..1], &mut g), lens(3, 1));
    assert_eq!(sgd.step(&mut w, &mut m, &mut b, &mut g[..0]), lens(3, 0));
    assert_eq!(w, w0);
    assert_eq!(
        init_master(&w, &mut m[..1]),
        Err(Error::LengthMismatch {
            expected: 3,
            got: 1
        })
    );
    assert_eq!(
        Sgd::new(0.1, 0.9, 0.0).unwrap().with_lr(-1.0),
        Err(Error::InvalidParameter("lr"))
    );
}

#[test]
fn every_entry_point_rejects_bad_lengths() {
    let spec = small();
    let mut rng = SplitMix64::new(51);
    let p = small_params(&spec, &mut rng);
    let image = uniform(&mut rng, spec.image_len(), 0.0, 1.0);
    let mut acts = vec![0.0; spec.activations_len()];
    let mut f = vec![0.0; spec.features_len()];
    let (mut c, mut b) = (vec![0.0; spec.cls_len()], vec![0.0; spec.box_len()]);
    let mut gh = vec![0.0; spec.head_params().len()];
    let mut gb = vec![0.0; spec.backbone_params().len()];
    let mut gf = vec![0.0; spec.features_len()];
    let mut scratch = vec![0.0; spec.scratch_len()];
    let mut patch = vec![0.0; spec.patch_len()];
    let a = spec.num_anchors();
    let (mut ca, mut ba) = (vec![0.0; a * spec.num_classes()], vec![0.0; a * 4]);
    let short = |v: &[f64]| v[..v.len() - 1].to_vec();
    let mismatch = |r: Result<(), Error>| matches!(r, Err(Error::LengthMismatch { .. }));

    assert!(mismatch(spec.init(&mut rng, 0.0, &mut short(&p))));
    assert!(mismatch(spec.backbone_forward(
        &short(&p),
        &image,
        &mut acts,
        &mut f
    )));
    assert!(mismatch(spec.backbone_forward(
        &p,
        &short(&image),
        &mut acts,
        &mut f
    )));
    assert!(mismatch(spec.backbone_forward(
        &p,
        &image,
        &mut short(&acts),
        &mut f
    )));
    assert!(mismatch(spec.backbone_forward(
        &p,
        &image,
        &mut acts,
        &mut short(&f)
    )));
    spec.backbone_forward(&p, &image, &mut acts, &mut f)
        .unwrap();
    assert!(mismatch(spec.head_forward(&short(&p), &f, &mut c, &mut b)));
    assert!(mismatch(spec.head_forward(&p, &short(&f), &mut c, &mut b)));
    assert!(mismatch(spec.head_forward(&p, &f, &mut short(&c), &mut b)));
    assert!(mismatch(spec.head_forward(&p, &f, &mut c, &mut short(&b))));
    let hb =
        |p: &[f64], f: &[f64], c: &[f64], b: &[f64], gh: &mut [f64], gf: Option<&mut [f64]>| {
            spec.head_backward(p, f, c, b, gh, gf)
        };
    assert!(mismatch(hb(&short(&p), &f, &c, &b, &mut gh, None)));
    assert!(mismatch(hb(&p, &short(&f), &c, &b, &mut gh, None)));
    assert!(mismatch(hb(&p, &f, &short(&c), &b, &mut gh, None)));
    assert!(mismatch(hb(&p, &f, &c, &short(&b), &mut gh, None)));
    assert!(mismatch(hb(&p, &f, &c, &b, &mut short(&gh), None)));
    assert!(mismatch(hb(&p, &f, &c, &b, &mut gh, Some(&mut short(&gf)))));
    let bb = |acts: &mut [f64], f: &[f64], gf: &mut [f64], gb: &mut [f64], s: &mut [f64]| {
        spec.backbone_backward(&p, &image, acts, f, gf, gb, s)
    };
    assert!(mismatch(spec.backbone_backward(
        &short(&p),
        &image,
        &mut acts,
        &f,
        &mut gf,
        &mut gb,
        &mut scratch
    )));
    assert!(mismatch(spec.backbone_backward(
        &p,
        &short(&image),
        &mut acts,
        &f,
        &mut gf,
        &mut gb,
        &mut scratch
    )));
    assert!(mismatch(bb(
        &mut short(&acts),
        &f,
        &mut gf,
        &mut gb,
        &mut scratch
    )));
    assert!(mismatch(bb(
        &mut acts,
        &short(&f),
        &mut gf,
        &mut gb,
        &mut scratch
    )));
    assert!(mismatch(bb(
        &mut acts,
        &f,
        &mut short(&gf),
        &mut gb,
        &mut scratch
    )));
    assert!(mismatch(bb(
        &mut acts,
        &f,
        &mut gf,
        &mut short(&gb),
        &mut scratch
    )));
    assert!(mismatch(bb(
        &mut acts,
        &f,
        &mut gf,
        &mut gb,
        &mut short(&scratch)
    )));
    assert!(mismatch(spec.patch_at(&short(&f), 0, 0, &mut patch)));
    assert!(mismatch(spec.patch_at(&f, 0, 0, &mut short(&patch))));
    let (fh, fw) = spec.feature_hw();
    assert_eq!(
        spec.patch_at(&f, fh, 0, &mut patch),
        Err(Error::InvalidParameter("location"))
    );
    assert_eq!(
        spec.patch_at(&f, 0, fw, &mut patch),
        Err(Error::InvalidParameter("location"))
    );
    assert!(mismatch(spec.head_forward_at(
        &short(&p),
        &patch,
        &mut ca,
        &mut ba
    )));
    assert!(mismatch(spec.head_forward_at(
        &p,
        &short(&patch),
        &mut ca,
        &mut ba
    )));
    assert!(mismatch(spec.head_forward_at(
        &p,
        &patch,
        &mut short(&ca),
        &mut ba
    )));
    assert!(mismatch(spec.head_forward_at(
        &p,
        &patch,
        &mut ca,
        &mut short(&ba)
    )));
    assert!(mismatch(spec.head_backward_at(
        &short(&patch),
        &ca,
        &ba,
        &mut gh
    )));
    assert!(mismatch(spec.head_backward_at(
        &patch,
        &short(&ca),
        &ba,
        &mut gh
    )));
    assert!(mismatch(spec.head_backward_at(
        &patch,
        &ca,
        &short(&ba),
        &mut gh
    )));
    assert!(mismatch(spec.head_backward_at(
        &patch,
        &ca,
        &ba,
        &mut short(&gh)
    )));
    // Nothing was written by the failed calls (the outputs are still as the passes left them).
    assert!(gh.iter().chain(&gb).all(|v| *v == 0.0));

    let conv = ConvSpec::new(2, 3, 2).unwrap();
    let (h, w) = (5, 3);
    let cp = vec![0.1; conv.params_len()];
    let x = vec![0.5; h * w * 2];
    let (oh, ow) = conv.out_hw(h, w);
    let mut out = vec![0.0; oh * ow * 3];
    let mut gp = vec![0.0; conv.params_len()];
    let gx = vec![0.0; x.len()];
    assert!(mismatch(conv.forward(
        &short(&cp),
        &x,
        h,
        w,
        &mut out,
        true
    )));
    assert!(mismatch(conv.forward(
        &cp,
        &short(&x),
        h,
        w,
        &mut out,
        true
    )));
    assert!(mismatch(conv.forward(
        &cp,
        &x,
        h,
        w,
        &mut short(&out),
        true
    )));
    assert!(mismatch(conv.forward(&cp, &x, h, w + 1, &mut out, true)));
    assert_eq!(
        conv.forward(&cp, &x, 0, w, &mut out, true),
        Err(Error::InvalidParameter("height"))
    );
    assert_eq!(
        conv.forward(&cp, &x, h, 0, &mut out, true),
        Err(Error::InvalidParameter("width"))
    );
    assert_eq!(
        conv.forward(&cp, &x, usize::MAX, 3, &mut out, true),
        Err(Error::InvalidParameter("height"))
    );
    let g = out.clone();
    assert!(mismatch(conv.backward(
        &short(&cp),
        &x,
        h,
        w,
        &g,
        &mut gp,
        None
    )));
    assert!(mismatch(conv.backward(
        &cp,
        &short(&x),
        h,
        w,
        &g,
        &mut gp,
        None
    )));
    assert!(mismatch(conv.backward(
        &cp,
        &x,
        h,
        w,
        &short(&g),
        &mut gp,
        None
    )));
    assert!(mismatch(conv.backward(
        &cp,
        &x,
        h,
        w,
        &g,
        &mut short(&gp),
        None
    )));
    assert!(mismatch(conv.backward(
        &cp,
        &x,
        h,
        w,
        &g,
        &mut gp,
        Some(&mut short(&gx))
    )));
    assert!(mismatch(relu_backward(&out, &mut short(&gx))));
    assert!(gp.iter().chain(&gx).all(|v| *v == 0.0));
}

#[test]
fn non_finite_inputs_are_errors() {
    let conv = ConvSpec::new(1, 2, 1).unwrap();
    let mut p = vec![0.1f32; conv.params_len()];
    let mut x = vec![0.5f32; 9];
    let mut out = vec![0.0f32; 18];
    x[4] = f32::NAN;
    assert_eq!(
        conv.forward(&p, &x, 3, 3, &mut out, false),
        Err(Error::NonFinite { index: 4 })
    );
    assert!(out.iter().all(|v| *v == 0.0));
    x[4] = 0.5;
    p[3] = f32::INFINITY;
    assert_eq!(
        conv.forward(&p, &x, 3, 3, &mut out, false),
        Err(Error::NonFinite { index: 3 })
    );
    p[3] = 0.1;
    let mut g = vec![0.0f32; 18];
    g[17] = f32::NAN;
    let mut gp = vec![0.0f32; conv.params_len()];
    assert_eq!(
        conv.backward(&p, &x, 3, 3, &g, &mut gp, None),
        Err(Error::NonFinite { index: 17 })
    );
    let spec = DetectorSpec::tiny();
    let mut params = vec![0.0f32; spec.params_len()];
    assert_eq!(
        spec.init(&mut SplitMix64::new(1), f32::NAN, &mut params),
        Err(Error::NonFinite { index: 0 })
    );
    assert!(params.iter().all(|v| *v == 0.0));
}

#[test]
fn spec_validation() {
    let c = |i, o, s| ConvSpec::new(i, o, s).unwrap();
    assert_eq!(ConvSpec::new(0, 1, 1), Err(Error::InvalidParameter("conv")));
    assert_eq!(ConvSpec::new(1, 1, 0), Err(Error::InvalidParameter("conv")));
    assert_eq!(
        ConvSpec::new(usize::MAX, 2, 1),
        Err(Error::InvalidParameter("conv"))
    );
    let bad =
        |r: Result<DetectorSpec, Error>, name| assert_eq!(r, Err(Error::InvalidParameter(name)));
    bad(DetectorSpec::new(8, 8, 1, &[], 1, 1), "backbone");
    bad(DetectorSpec::new(8, 8, 1, &[c(2, 4, 1)], 1, 1), "backbone");
    bad(
        DetectorSpec::new(8, 8, 1, &[c(1, 4, 1), c(3, 4, 1)], 1, 1),
        "backbone",
    );
    bad(
        DetectorSpec::new(8, 8, 1, &[c(1, 1, 1); 9], 1, 1),
        "backbone",
    );
    bad(DetectorSpec::new(0, 8, 1, &[c(1, 4, 1)], 1, 1), "height");
    bad(DetectorSpec::new(8, 0, 1, &[c(1, 4, 1)], 1, 1), "width");
    bad(DetectorSpec::new(8, 8, 0, &[c(1, 4, 1)], 1, 1), "channels");
    bad(DetectorSpec::new(8, 8, 1, &[c(1, 4, 1)], 0, 1), "anchors");
    bad(DetectorSpec::new(8, 8, 1, &[c(1, 4, 1)], 1, 0), "classes");
    bad(
        DetectorSpec::new(usize::MAX / 2, 8, 1, &[c(1, 4, 1)], 1, 1),
        "size",
    );
    // The named configuration is the one its documentation describes.
    let tiny = DetectorSpec::new(80, 80, 1, &[c(1, 8, 2), c(8, 16, 2), c(16, 16, 1)], 6, 10);
    assert_eq!(tiny, Ok(DetectorSpec::tiny()));
    let t = DetectorSpec::tiny();
    assert_eq!(
        (t.feature_hw(), t.feature_channels(), t.feature_stride()),
        ((20, 20), 16, 4)
    );
    assert_eq!((t.cls_conv().out_ch(), t.box_conv().out_ch()), (60, 24));
    assert_eq!(t.anchors_len(), 20 * 20 * 6);
    // Ranges tile the parameters in order.
    assert_eq!(t.layer_params(0).start, 0);
    assert_eq!(t.layer_params(2).end, t.backbone_params().end);
    assert_eq!(t.cls_params().start, t.head_params().start);
    assert_eq!(t.box_params().end, t.params_len());
    assert!(t.layer_params(3).is_empty());
}

/// Master trait conversions (the Q31.32 rounding to Q15.16).
#[test]
fn q32_rounds_to_nearest() {
    let lsb = 1.0 / 65536.0;
    let m = I32F32::from_value(3.0 * lsb + 0.49 * lsb);
    assert_eq!(Master::<Q16>::to_weight(m), Q16::from_bits(3));
    let m = I32F32::from_value(3.0 * lsb + 0.5 * lsb);
    assert_eq!(Master::<Q16>::to_weight(m), Q16::from_bits(4));
    let m = I32F32::from_value(-3.0 * lsb - 0.51 * lsb);
    assert_eq!(Master::<Q16>::to_weight(m), Q16::from_bits(-4));
    assert_eq!(Master::<Q16>::to_weight(I32F32::from_value(1e6)), Q16::MAX);
    assert_eq!(
        I32F32::from_weight(Q16::from_bits(-7)).to_value(),
        -7.0 * lsb
    );
    let third = I32F32::from_value(1.0 / 3.0);
    assert!((Master::<Q16>::times(third, I32F32::from_value(3.0)).to_value() - 1.0).abs() < 1e-9);
}
