//! The GPU against the core (the oracle). Without a device only the first test runs; the
//! others are `#[ignore]`d so CPU machines report them as ignored, not passed, and
//! `gpu/check-on-device.sh` runs them with `--ignored` on a GPU host.

use hardmine::{BceWithLogits, Reduction, SigmoidFocal, SplitMix64};
use hardmine_gpu::{Gpu, GpuError};

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

fn close(got: &[f32], exp: &[f32]) -> bool {
    let scale = exp.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    got.iter()
        .zip(exp)
        .all(|(g, e)| (g - e).abs() <= 1e-5 * e.abs() + 1e-6 * scale)
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
            let l_gpu = gpu
                .sigmoid_focal(&x, &t, 0.25, 2.0, reduction, &mut g_gpu)
                .unwrap();
            let focal = SigmoidFocal::new(0.25f32, 2.0)
                .unwrap()
                .with_reduction(reduction);
            let l_cpu = focal.value_and_grad(&x, &t, &mut g_cpu).unwrap();
            assert!(
                (l_gpu - l_cpu).abs() <= 1e-5 * l_cpu.abs().max(1.0),
                "focal n={n}: {l_gpu} vs {l_cpu}"
            );
            assert!(close(&g_gpu, &g_cpu), "focal grad n={n}");
            let l_gpu = gpu.bce(&x, &t, None, reduction, &mut g_gpu).unwrap();
            let l_cpu = BceWithLogits::new()
                .with_reduction(reduction)
                .value_and_grad(&x, &t, None, &mut g_cpu)
                .unwrap();
            assert!(
                (l_gpu - l_cpu).abs() <= 1e-5 * l_cpu.abs().max(1.0),
                "bce n={n}: {l_gpu} vs {l_cpu}"
            );
            assert!(close(&g_gpu, &g_cpu), "bce grad n={n}");
        }
        // Deterministic: the same input gives the same bits.
        let (mut a, mut b) = (vec![0.0f32; n], vec![0.0f32; n]);
        let la = gpu
            .sigmoid_focal(&x, &t, 0.25, 2.0, Reduction::Sum, &mut a)
            .unwrap();
        let lb = gpu
            .sigmoid_focal(&x, &t, 0.25, 2.0, Reduction::Sum, &mut b)
            .unwrap();
        assert_eq!((la.to_bits(), a), (lb.to_bits(), b));
    }
}

#[test]
#[ignore = "needs a CUDA device: run by gpu/check-on-device.sh"]
fn bad_inputs_are_errors_on_the_device_path() {
    let gpu = Gpu::new().expect("a CUDA device");
    let mut g = [0.0f32; 2];
    let r = gpu.sigmoid_focal(
        &[0.0, f32::NAN],
        &[0.0, 1.0],
        0.25,
        2.0,
        Reduction::Sum,
        &mut g,
    );
    assert_eq!(
        r,
        Err(GpuError::Input(hardmine::Error::NonFinite { index: 1 }))
    );
    let r = gpu.bce(&[0.0, 1.0], &[0.0, 2.0], None, Reduction::Sum, &mut g);
    assert_eq!(
        r,
        Err(GpuError::Input(hardmine::Error::InvalidTarget { index: 1 }))
    );
}
