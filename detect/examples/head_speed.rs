//! Milliseconds per head forward + backward of `DetectorSpec::tiny()` on f32 and Q15.16
//! (`cargo run --release -p hardmine-detect --example head_speed`): dense gradients (every
//! location) and sparse ones (8 locations, as a miner selects), without and with the
//! features' gradient.

use hardmine::{SplitMix64, Q16};
use hardmine_detect::{DetectorSpec, Scalar};
use std::time::Instant;

fn run<T: Scalar>(name: &str) {
    let spec = DetectorSpec::tiny();
    let mut rng = SplitMix64::new(1);
    let mut params = vec![T::ZERO; spec.params_len()];
    spec.init(&mut rng, T::from_f64(-4.6), &mut params).unwrap();
    let image: Vec<T> = (0..spec.image_len())
        .map(|_| T::from_f64(rng.below(17) as f64 / 16.0))
        .collect();
    let mut acts = vec![T::ZERO; spec.activations_len()];
    let mut features = vec![T::ZERO; spec.features_len()];
    spec.backbone_forward(&params, &image, &mut acts, &mut features)
        .unwrap();
    let (mut cls, mut boxes) = (vec![T::ZERO; spec.cls_len()], vec![T::ZERO; spec.box_len()]);
    let dense = |n: usize| -> Vec<T> {
        (0..n)
            .map(|i| T::from_f64(((i % 7) as f64 - 3.0) * 1e-3))
            .collect()
    };
    let (g_cls, g_box) = (dense(spec.cls_len()), dense(spec.box_len()));
    let sparse = |g: &[T], row: usize| -> Vec<T> {
        g.iter()
            .enumerate()
            .map(|(i, v)| {
                if (i / row).is_multiple_of(32) {
                    *v
                } else {
                    T::ZERO
                }
            })
            .collect()
    };
    let a = spec.num_anchors();
    let (s_cls, s_box) = (
        sparse(&g_cls, a * spec.num_classes()),
        sparse(&g_box, a * 4),
    );
    let mut grad = vec![T::ZERO; spec.head_params().len()];
    let mut gf = vec![T::ZERO; spec.features_len()];
    let reps = 300;
    for (label, gc, gb, with_gf) in [
        ("dense", &g_cls, &g_box, false),
        ("sparse", &s_cls, &s_box, false),
        ("dense+grad_features", &g_cls, &g_box, true),
    ] {
        let t = Instant::now();
        for _ in 0..reps {
            spec.head_forward(&params, &features, &mut cls, &mut boxes)
                .unwrap();
            let gfo = if with_gf { Some(&mut gf[..]) } else { None };
            spec.head_backward(&params, &features, gc, gb, &mut grad, gfo)
                .unwrap();
        }
        let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
        println!("{name} {label}: {ms:.3} ms per head forward + backward");
    }
    let t = Instant::now();
    for _ in 0..reps {
        spec.head_forward(&params, &features, &mut cls, &mut boxes)
            .unwrap();
    }
    let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
    println!("{name} forward only: {ms:.3} ms");
    let t = Instant::now();
    for _ in 0..reps {
        spec.backbone_forward(&params, &image, &mut acts, &mut features)
            .unwrap();
    }
    let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
    println!("{name} backbone forward: {ms:.3} ms");
    std::hint::black_box((&cls, &boxes, &grad, &gf));
}

fn main() {
    run::<f32>("f32");
    run::<Q16>("Q16");
}
