//! The GPU against the core (the oracle). Without a device only the first test runs; the
//! others are `#[ignore]`d so CPU machines report them as ignored, not passed, and
//! `gpu/check-on-device.sh` runs them with `--ignored` on a GPU host.

use hardmine::{
    Asl1, BceWithLogits, GhmC, GhmR, Ohem, Reduction, SigmoidFocal, SigmoidFocalLabels, SmoothL1,
    SoftmaxCrossEntropy, SoftmaxFocal, SplitMix64,
};
use hardmine_gpu::{Gpu, GpuError};

include!("../src/ohem_cases.rs");

/// Whether this test build has the CUDA backend.
static CUDA: bool = cfg!(feature = "cuda");

#[test]
fn no_device_is_an_error_not_a_panic() {
    match Gpu::new() {
        // A GPU host: the device tests below cover it.
        Ok(_) => {}
        Err(GpuError::Unavailable) => assert!(!CUDA, "with `cuda` a missing device is NoDevice"),
        Err(GpuError::NoDevice) => assert!(CUDA, "without `cuda` the answer is Unavailable"),
        Err(other) => panic!("unexpected error without a device: {other}"),
    }
}

/// torchvision's default focal loss (alpha 0.25, gamma 2).
fn focal_loss() -> SigmoidFocal<f32> {
    SigmoidFocal::new(0.25, 2.0).unwrap()
}

fn inputs(n: usize, soft: bool, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut r = SplitMix64::new(seed);
    let x = (0..n)
        .map(|_| (-12.0 + 16.0 * r.unit_f64()) as f32)
        .collect();
    let t = (0..n)
        .map(|_| {
            if soft {
                r.unit_f64() as f32
            } else {
                f32::from(u8::from(r.below(50) == 0))
            }
        })
        .collect();
    (x, t)
}

/// `rows x c` logits (those of `inputs(rows * c, false, seed)`) and one label per row drawn by
/// `label` from a generator seeded `seed + 1`, which is handed back for further draws.
fn class_inputs(
    rows: usize,
    c: usize,
    seed: u64,
    mut label: impl FnMut(&mut SplitMix64) -> i32,
) -> (Vec<f32>, Vec<i32>, SplitMix64) {
    let (x, _) = inputs(rows * c, false, seed);
    let mut r = SplitMix64::new(seed + 1);
    let labels = (0..rows).map(|_| label(&mut r)).collect();
    (x, labels, r)
}

fn close(got: &[f32], exp: &[f32]) -> bool {
    let scale = exp.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    got.iter()
        .zip(exp)
        .all(|(g, e)| (g - e).abs() <= 1e-5 * e.abs() + 1e-6 * scale)
}

/// The GPU's loss within 1e-5 relative of the core's (relative to at least `floor`), and its
/// gradient [`close`] to the core's.
fn agree(what: &str, floor: f32, (l_gpu, g_gpu): (f32, &[f32]), (l_cpu, g_cpu): (f32, &[f32])) {
    assert!(
        (l_gpu - l_cpu).abs() <= 1e-5 * l_cpu.abs().max(floor),
        "{what}: {l_gpu} vs {l_cpu}"
    );
    assert!(close(g_gpu, g_cpu), "{what}: gradient");
}

#[test]
#[ignore = "needs a CUDA device: run by gpu/check-on-device.sh"]
fn focal_and_bce_match_the_core() {
    let gpu = Gpu::new().expect("a CUDA device");
    for (n, soft) in [
        (1usize, false),
        (1000, false),
        (1000, true),
        (1 << 20, false),
        (3_000_001, true),
    ] {
        let (x, t) = inputs(n, soft, n as u64);
        for reduction in [Reduction::Sum, Reduction::Mean] {
            let (mut g_gpu, mut g_cpu) = (vec![0.0f32; n], vec![0.0f32; n]);
            let focal = focal_loss().with_reduction(reduction);
            let l_gpu = gpu.sigmoid_focal(&focal, &x, &t, &mut g_gpu).unwrap();
            let l_cpu = focal.value_and_grad(&x, &t, &mut g_cpu).unwrap();
            agree(
                &format!("focal n={n}"),
                1.0,
                (l_gpu, &g_gpu),
                (l_cpu, &g_cpu),
            );
            let bce = BceWithLogits::new().with_reduction(reduction);
            let l_gpu = gpu.bce(&bce, &x, &t, None, &mut g_gpu).unwrap();
            let l_cpu = bce.value_and_grad(&x, &t, None, &mut g_cpu).unwrap();
            agree(&format!("bce n={n}"), 1.0, (l_gpu, &g_gpu), (l_cpu, &g_cpu));
        }
        // Deterministic: the same input gives the same bits.
        let (mut a, mut b) = (vec![0.0f32; n], vec![0.0f32; n]);
        let focal = focal_loss().with_reduction(Reduction::Sum);
        let la = gpu.sigmoid_focal(&focal, &x, &t, &mut a).unwrap();
        let lb = gpu.sigmoid_focal(&focal, &x, &t, &mut b).unwrap();
        assert_eq!((la.to_bits(), a), (lb.to_bits(), b));
    }
}

#[test]
#[ignore = "needs a CUDA device: run by gpu/check-on-device.sh"]
fn bad_inputs_are_errors_on_the_device_path() {
    let gpu = Gpu::new().expect("a CUDA device");
    let mut g = [0.0f32; 2];
    let focal = focal_loss().with_reduction(Reduction::Sum);
    let r = gpu.sigmoid_focal(&focal, &[0.0, f32::NAN], &[0.0, 1.0], &mut g);
    assert_eq!(
        r,
        Err(GpuError::Input(hardmine::Error::NonFinite { index: 1 }))
    );
    let bce = BceWithLogits::new().with_reduction(Reduction::Sum);
    let r = gpu.bce(&bce, &[0.0, 1.0], &[0.0, 2.0], None, &mut g);
    assert_eq!(
        r,
        Err(GpuError::Input(hardmine::Error::InvalidTarget { index: 1 }))
    );
}

/// GHM inputs away from the bin edges (within 1e-4 of an edge the f32 norms of the device,
/// evaluated in double and rounded once, and of the core's vectorised kernel may bin apart).
fn ghm_inputs(n: usize, seed: u64, bins: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (x, t) = inputs(n, false, seed);
    let mut r = SplitMix64::new(seed ^ 0x5eed);
    let w = (0..n)
        .map(|_| f32::from(u8::from(r.below(10) != 0)))
        .collect();
    let x = x
        .iter()
        .zip(&t)
        .map(|(&x, &t)| {
            let g = (1.0 / (1.0 + (-f64::from(x)).exp()) - f64::from(t)).abs() * bins as f64;
            if (g - g.round()).abs() < 1e-4 * bins as f64 {
                x + 1e-2
            } else {
                x
            }
        })
        .collect();
    (x, t, w)
}

#[test]
#[ignore = "needs a CUDA device: run by gpu/check-on-device.sh"]
fn ghm_sequences_match_the_core() {
    let gpu = Gpu::new().expect("a CUDA device");
    let mut on_gpu = GhmC::<f32, 30>::new(30, 0.75, 1.0).unwrap();
    let mut on_cpu = on_gpu;
    let mut r_gpu = GhmR::<f32, 10>::new(0.02, 10, 0.7, 1.0).unwrap();
    let mut r_cpu = r_gpu;
    for (round, n) in [1000usize, 1 << 20, 12_345].into_iter().enumerate() {
        let (x, t, w) = ghm_inputs(n, 77 + round as u64, 30);
        let (mut g_gpu, mut g_cpu) = (vec![0.0f32; n], vec![0.0f32; n]);
        let l_gpu = gpu.ghm(&mut on_gpu, &x, &t, Some(&w), &mut g_gpu).unwrap();
        let l_cpu = on_cpu.value_and_grad(&x, &t, Some(&w), &mut g_cpu).unwrap();
        let what = format!("ghm-c round {round}");
        agree(&what, 1e-3, (l_gpu, &g_gpu), (l_cpu, &g_cpu));
        assert_eq!(
            on_gpu.density(),
            on_cpu.density(),
            "ghm-c state round {round}"
        );
        // GHM-R on box deltas.
        let p: Vec<f32> = x.iter().map(|v| v / 16.0).collect();
        let q: Vec<f32> = t.iter().map(|v| v * 0.25).collect();
        let l_gpu = gpu.ghm(&mut r_gpu, &p, &q, Some(&w), &mut g_gpu).unwrap();
        let l_cpu = r_cpu.value_and_grad(&p, &q, Some(&w), &mut g_cpu).unwrap();
        let what = format!("ghm-r round {round}");
        agree(&what, 1e-3, (l_gpu, &g_gpu), (l_cpu, &g_cpu));
    }
    // Deterministic, and the state is untouched by a bad batch.
    let (x, t, w) = ghm_inputs(4096, 5, 30);
    let (mut a, mut b) = (vec![0.0f32; 4096], vec![0.0f32; 4096]);
    let (mut s1, mut s2) = (on_gpu, on_gpu);
    let la = gpu.ghm(&mut s1, &x, &t, Some(&w), &mut a).unwrap();
    let lb = gpu.ghm(&mut s2, &x, &t, Some(&w), &mut b).unwrap();
    assert_eq!((la.to_bits(), &a), (lb.to_bits(), &b));
    let before = on_gpu;
    let mut bad = t.clone();
    bad[7] = 2.0;
    let r = gpu.ghm(&mut on_gpu, &x, &bad, Some(&w), &mut b);
    assert_eq!(
        r,
        Err(GpuError::Input(hardmine::Error::InvalidTarget { index: 7 }))
    );
    assert_eq!(on_gpu, before);
    // Device-resident buffers give the host path's bits, and the device-side check keeps
    // GHM's precedence (target before label weight at one index).
    let (xd, td, wd) = (
        gpu.upload(&x).unwrap(),
        gpu.upload(&t).unwrap(),
        gpu.upload(&w).unwrap(),
    );
    let mut gd = gpu.zeros(4096).unwrap();
    let mut s3 = before;
    let lc = gpu
        .ghm_on_device(&mut s3, &xd, &td, Some(&wd), &mut gd)
        .unwrap();
    gpu.download(&gd, &mut b).unwrap();
    assert_eq!((la.to_bits(), &a, s1), (lc.to_bits(), &b, s3));
    let mut bad_w = w.clone();
    bad_w[7] = f32::NAN;
    let (bt, bw) = (gpu.upload(&bad).unwrap(), gpu.upload(&bad_w).unwrap());
    let r = gpu.ghm_on_device(&mut s3, &xd, &bt, Some(&bw), &mut gd);
    assert_eq!(
        r,
        Err(GpuError::Input(hardmine::Error::InvalidTarget { index: 7 }))
    );
}

#[test]
#[ignore = "needs a CUDA device: run by gpu/check-on-device.sh"]
fn device_buffers_match_host_slices() {
    let gpu = Gpu::new().expect("a CUDA device");
    let n = 100_003;
    let (x, t) = inputs(n, true, 9);
    let (xd, td) = (gpu.upload(&x).unwrap(), gpu.upload(&t).unwrap());
    let mut gd = gpu.zeros(n).unwrap();
    let mut g_host = vec![0.0f32; n];
    let mut g_dev = vec![0.0f32; n];
    for reduction in [Reduction::Sum, Reduction::Mean] {
        let focal = focal_loss().with_reduction(reduction);
        let l_host = gpu.sigmoid_focal(&focal, &x, &t, &mut g_host).unwrap();
        let l_dev = gpu
            .sigmoid_focal_on_device(&focal, &xd, &td, &mut gd)
            .unwrap();
        gpu.download(&gd, &mut g_dev).unwrap();
        assert_eq!((l_host.to_bits(), &g_host), (l_dev.to_bits(), &g_dev));
        let bce = BceWithLogits::new().with_reduction(reduction);
        let l_host = gpu.bce(&bce, &x, &t, None, &mut g_host).unwrap();
        let l_dev = gpu.bce_on_device(&bce, &xd, &td, None, &mut gd).unwrap();
        gpu.download(&gd, &mut g_dev).unwrap();
        assert_eq!((l_host.to_bits(), &g_host), (l_dev.to_bits(), &g_dev));
    }
    // The device-side check answers as the host's: first bad index, NonFinite before
    // InvalidTarget at one index.
    let mut bad_t = t.clone();
    bad_t[500] = 1.5;
    bad_t[70_000] = f32::NAN;
    let bd = gpu.upload(&bad_t).unwrap();
    let focal = focal_loss().with_reduction(Reduction::Sum);
    let r = gpu.sigmoid_focal_on_device(&focal, &xd, &bd, &mut gd);
    assert_eq!(
        r,
        Err(GpuError::Input(hardmine::Error::InvalidTarget {
            index: 500
        }))
    );
    let mut bad_x = x.clone();
    bad_x[500] = f32::INFINITY;
    let bx = gpu.upload(&bad_x).unwrap();
    let bce = BceWithLogits::new().with_reduction(Reduction::Sum);
    let r = gpu.bce_on_device(&bce, &bx, &bd, None, &mut gd);
    assert_eq!(
        r,
        Err(GpuError::Input(hardmine::Error::NonFinite { index: 500 }))
    );
    let short = gpu.zeros(3).unwrap();
    assert_eq!(
        gpu.download(&short, &mut g_dev),
        Err(GpuError::Input(hardmine::Error::LengthMismatch {
            expected: 3,
            got: n
        }))
    );
}

#[test]
#[ignore = "needs a CUDA device: run by gpu/check-on-device.sh"]
fn label_focal_and_box_losses_match_the_core() {
    let gpu = Gpu::new().expect("a CUDA device");
    let (c, rows) = (80usize, 5_003usize);
    let (x, labels, mut r) = class_inputs(rows, c, 31, |r| match r.below(4) {
        0 => r.below(c as u64) as i32,
        1 => -1,
        _ => c as i32,
    });
    let w: Vec<f32> = (0..rows).map(|_| r.unit_f64() as f32).collect();
    let alphas: Vec<f32> = (0..c).map(|j| j as f32 / c as f32).collect();
    for reduction in [Reduction::Sum, Reduction::Mean] {
        let focal = focal_loss().with_reduction(reduction);
        for head in [
            SigmoidFocalLabels::new(focal, c).unwrap(),
            SigmoidFocalLabels::new(focal, c)
                .unwrap()
                .with_class_alpha(&alphas)
                .unwrap(),
        ] {
            let (mut g_gpu, mut g_cpu) = (vec![0.0f32; rows * c], vec![0.0f32; rows * c]);
            let l_gpu = gpu
                .sigmoid_focal_labels(&head, &x, &labels, Some(&w), &mut g_gpu)
                .unwrap();
            let l_cpu = head
                .value_and_grad(&x, &labels, Some(&w), &mut g_cpu)
                .unwrap();
            agree("labels", 1.0, (l_gpu, &g_gpu), (l_cpu, &g_cpu));
        }
        let (p, t) = (&x[..100_000], &x[100_000..200_000]);
        let (mut g_gpu, mut g_cpu) = (vec![0.0f32; p.len()], vec![0.0f32; p.len()]);
        for beta in [0.0f32, 1.0 / 9.0, 1.0] {
            let l = SmoothL1::new(beta).unwrap().with_reduction(reduction);
            let l_gpu = gpu.smooth_l1(&l, p, t, &mut g_gpu).unwrap();
            let l_cpu = l.value_and_grad(p, t, &mut g_cpu).unwrap();
            let what = format!("smooth l1, beta {beta}");
            agree(&what, 1.0, (l_gpu, &g_gpu), (l_cpu, &g_cpu));
        }
        let l = Asl1::new(0.02f32).unwrap().with_reduction(reduction);
        let l_gpu = gpu.asl1(&l, p, t, &mut g_gpu).unwrap();
        let l_cpu = l.value_and_grad(p, t, &mut g_cpu).unwrap();
        agree("asl1", 1.0, (l_gpu, &g_gpu), (l_cpu, &g_cpu));
    }
}

#[test]
#[ignore = "needs a CUDA device: run by gpu/check-on-device.sh"]
fn softmax_losses_match_the_core() {
    let gpu = Gpu::new().expect("a CUDA device");
    let (c, rows) = (80usize, 20_011usize);
    let (x, labels, _) = class_inputs(rows, c, 41, |r| {
        if r.below(20) == 0 {
            -1
        } else {
            r.below(c as u64) as i32
        }
    });
    let (mut g_gpu, mut g_cpu) = (vec![0.0f32; rows * c], vec![0.0f32; rows * c]);
    for reduction in [Reduction::Sum, Reduction::Mean] {
        let ce = SoftmaxCrossEntropy::new(c)
            .unwrap()
            .with_reduction(reduction);
        let l_gpu = gpu
            .softmax_cross_entropy(&ce, &x, &labels, &mut g_gpu)
            .unwrap();
        let l_cpu = ce.value_and_grad(&x, &labels, &mut g_cpu).unwrap();
        agree("softmax ce", 1.0, (l_gpu, &g_gpu), (l_cpu, &g_cpu));
        let focal = SoftmaxFocal::new(0.25f32, 2.0, c)
            .unwrap()
            .with_reduction(reduction);
        let l_gpu = gpu.softmax_focal(&focal, &x, &labels, &mut g_gpu).unwrap();
        let l_cpu = focal.value_and_grad(&x, &labels, &mut g_cpu).unwrap();
        agree("softmax focal", 1.0, (l_gpu, &g_gpu), (l_cpu, &g_cpu));
    }
    let mut bad = labels.clone();
    bad[3] = c as i32;
    let ce = SoftmaxCrossEntropy::new(c).unwrap();
    assert_eq!(
        gpu.softmax_cross_entropy(&ce, &x, &bad, &mut g_gpu),
        Err(GpuError::Input(hardmine::Error::InvalidTarget { index: 3 }))
    );
}

#[test]
#[ignore = "needs a CUDA device: run by gpu/check-on-device.sh"]
fn ohem_selects_what_the_core_selects() {
    let gpu = Gpu::new().expect("a CUDA device");
    let mut r = SplitMix64::new(77);
    for (n, k) in [
        (1usize, 1usize),
        (10, 3),
        (1000, 64),
        (5000, 512),
        (300_000, 512),
    ] {
        let (losses, boxes) = ohem_case(&mut r, n, 40);
        ohem_matches_core(k, (&losses, &boxes), &[0.3, 0.7], |ohem, boxes, labels| {
            match labels {
                Some(labels) => gpu.ohem_per_label(ohem, &losses, boxes, labels),
                None => gpu.ohem(ohem, &losses, boxes),
            }
            .unwrap()
        });
    }
    // The core's errors, in its order.
    let plain = Ohem::<f32, 512>::new(4).unwrap();
    assert_eq!(
        gpu.ohem(&plain, &[1.0, f32::NAN], None),
        Err(GpuError::Input(hardmine::Error::NonFinite { index: 1 }))
    );
    let nms = plain.with_nms(0.5).unwrap();
    assert_eq!(
        gpu.ohem(&nms, &[1.0, 2.0], Some(&[0.0; 4])),
        Err(GpuError::Input(hardmine::Error::LengthMismatch {
            expected: 8,
            got: 4
        }))
    );
    assert_eq!(gpu.ohem(&plain, &[], None), Ok(Vec::new()));
}
