//! `hardmine bench`: throughput of each op and path in million elements per second: a warm-up,
//! then the median of at least `repeats` timed calls of forward + gradient (selection for the
//! miners), one thread, inputs from a fixed seed shaped like a detector's (logits mostly
//! negative, one positive per hundred).

use hardmine::{
    BalancedSampler, BceWithLogits, Budget, GhmC, GhmR, Ohem, Real, Reduction, SOhem, SigmoidFocal,
    SigmoidFocalLabels, SmoothL1, SoftmaxCrossEntropy, SoftmaxFocal, SplitMix64, TopK, Q16,
};
use std::hint::black_box;
use std::time::Instant;

/// The ops `bench` measures.
pub const OPS: [&str; 11] = [
    "bce",
    "focal",
    "focal_labels",
    "softmax_ce",
    "softmax_focal",
    "smooth_l1",
    "ghm_c",
    "ghm_r",
    "ohem",
    "balanced",
    "sohem",
];
/// The vector instructions this binary was compiled for: the figures depend on them (the
/// f32 and Q15.16 kernels run about twice as fast with AVX2; build with
/// `RUSTFLAGS="-C target-cpu=native"` to use what the machine has).
pub fn vector_isa() -> &'static str {
    if cfg!(target_feature = "avx512f") {
        "AVX-512"
    } else if cfg!(all(target_feature = "avx2", target_feature = "fma")) {
        "AVX2 + FMA"
    } else if cfg!(target_feature = "avx2") {
        "AVX2"
    } else if cfg!(target_feature = "sse4.1") {
        "SSE4.1"
    } else if cfg!(target_feature = "sse2") {
        "SSE2 (the portable x86-64 baseline)"
    } else if cfg!(target_feature = "neon") {
        "NEON"
    } else {
        "no vector extension known to this build"
    }
}

/// The paths it measures on the CPU.
pub const PATHS: [&str; 3] = ["f32", "f64", "fixed"];
/// Classes of the multi-class ops (COCO's 80).
const CLASSES: usize = 80;

/// One measurement.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Op name.
    pub op: String,
    /// Path name.
    pub path: String,
    /// Elements per call.
    pub n: usize,
    /// Million elements per second (median).
    pub melem_per_s: f64,
    /// Nanoseconds per element (median).
    pub ns_per_elem: f64,
    /// Bytes of the op's state object (loss or miner, with its fixed working heap).
    pub state_bytes: usize,
}

/// Median seconds of `f` over at least `repeats` calls (and at least 0.3 s), after warm-up.
fn time(repeats: usize, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < repeats.max(5)
        || (start.elapsed().as_secs_f64() < 0.3 && samples.len() < 1000)
    {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64());
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

struct Data<T> {
    logits: Vec<T>,
    targets: Vec<T>,
    labels: Vec<i32>,
    boxes: Vec<T>,
    positive: Vec<bool>,
}

/// Logits uniform in [-8, 4] and one positive per hundred, from `r`.
fn logits_and_positives<T: Real>(r: &mut SplitMix64, n: usize) -> (Vec<T>, Vec<bool>) {
    let logits: Vec<T> = (0..n)
        .map(|_| T::from_f64(-8.0 + 12.0 * r.unit_f64()))
        .collect();
    let positive: Vec<bool> = (0..n).map(|_| r.below(100) == 0).collect();
    (logits, positive)
}

/// Hard targets of the positives.
fn targets_of<T: Real>(positive: &[bool]) -> Vec<T> {
    positive
        .iter()
        .map(|&p| if p { T::ONE } else { T::ZERO })
        .collect()
}

fn data<T: Real>(n: usize) -> Data<T> {
    let mut r = SplitMix64::new(2026);
    let (logits, positive) = logits_and_positives(&mut r, n);
    let targets = targets_of(&positive);
    let labels = (0..n / CLASSES)
        .map(|_| {
            if r.below(10) == 0 {
                r.below(CLASSES as u64) as i32
            } else {
                CLASSES as i32
            }
        })
        .collect();
    let boxes = (0..n).flat_map(|_| {
        let (x, y) = (r.unit_f64() * 1000.0, r.unit_f64() * 1000.0);
        [
            x,
            y,
            x + 10.0 + r.unit_f64() * 90.0,
            y + 10.0 + r.unit_f64() * 90.0,
        ]
        .map(T::from_f64)
    });
    Data {
        logits,
        targets,
        labels,
        boxes: boxes.collect(),
        positive,
    }
}

fn err(e: hardmine::Error) -> String {
    e.to_string()
}

/// Measures `op` on the path of `T` with `n` elements.
fn measure_typed<T: Real>(op: &str, n: usize, repeats: usize) -> Result<(f64, usize), String> {
    use core::mem::size_of;
    let d = data::<T>(n);
    let mut grad = vec![T::ZERO; n];
    let sum = Reduction::Sum;
    let rows = n / CLASSES;
    let secs = match op {
        "bce" => {
            let l = BceWithLogits::new().with_reduction(sum);
            l.value_and_grad(&d.logits, &d.targets, None, &mut grad)
                .map_err(err)?;
            (
                time(repeats, || {
                    let _ = black_box(l.value_and_grad(&d.logits, &d.targets, None, &mut grad));
                }),
                size_of::<BceWithLogits>(),
            )
        }
        "focal" => {
            let l = SigmoidFocal::new(T::from_f64(0.25), T::from_f64(2.0))
                .map_err(err)?
                .with_reduction(sum);
            (
                time(repeats, || {
                    let _ = black_box(l.value_and_grad(&d.logits, &d.targets, &mut grad));
                }),
                size_of::<SigmoidFocal<T>>(),
            )
        }
        "focal_labels" => {
            let f = SigmoidFocal::new(T::from_f64(0.25), T::from_f64(2.0))
                .map_err(err)?
                .with_reduction(sum);
            let l = SigmoidFocalLabels::new(f, CLASSES).map_err(err)?;
            let (x, g) = (&d.logits[..rows * CLASSES], &mut grad[..rows * CLASSES]);
            (
                time(repeats, || {
                    let _ = black_box(l.value_and_grad(x, &d.labels, None, g));
                }),
                size_of::<SigmoidFocalLabels<'_, T>>(),
            )
        }
        "softmax_ce" | "softmax_focal" => {
            let (x, g) = (&d.logits[..rows * CLASSES], &mut grad[..rows * CLASSES]);
            let labels: Vec<i32> = d.labels.iter().map(|&l| l % CLASSES as i32).collect();
            if op == "softmax_ce" {
                let l = SoftmaxCrossEntropy::new(CLASSES)
                    .map_err(err)?
                    .with_reduction(sum);
                (
                    time(repeats, || {
                        let _ = black_box(l.value_and_grad(x, &labels, g));
                    }),
                    size_of::<SoftmaxCrossEntropy>(),
                )
            } else {
                let l = SoftmaxFocal::new(T::from_f64(0.25), T::from_f64(2.0), CLASSES)
                    .map_err(err)?
                    .with_reduction(sum);
                (
                    time(repeats, || {
                        let _ = black_box(l.value_and_grad(x, &labels, g));
                    }),
                    size_of::<SoftmaxFocal<T>>(),
                )
            }
        }
        "smooth_l1" => {
            let l = SmoothL1::new(T::from_f64(1.0 / 9.0))
                .map_err(err)?
                .with_reduction(sum);
            (
                time(repeats, || {
                    let _ = black_box(l.value_and_grad(&d.logits, &d.targets, &mut grad));
                }),
                size_of::<SmoothL1<T>>(),
            )
        }
        "ghm_c" => {
            let mut l = GhmC::<T, 30>::new(30, T::from_f64(0.75), T::ONE).map_err(err)?;
            (
                time(repeats, || {
                    let _ = black_box(l.value_and_grad(&d.logits, &d.targets, None, &mut grad));
                }),
                size_of::<GhmC<T, 30>>(),
            )
        }
        "ghm_r" => {
            let mut l =
                GhmR::<T, 10>::new(T::from_f64(0.02), 10, T::from_f64(0.7), T::ONE).map_err(err)?;
            (
                time(repeats, || {
                    let _ = black_box(l.value_and_grad(&d.logits, &d.targets, None, &mut grad));
                }),
                size_of::<GhmR<T, 10>>(),
            )
        }
        "ohem" => {
            let l = Ohem::<T, 512>::new(512).map_err(err)?;
            let bytes = size_of::<Ohem<T, 512>>() + size_of::<TopK<T, 512>>();
            (
                time(repeats, || {
                    let _ = black_box(l.select(&d.logits, None));
                }),
                bytes,
            )
        }
        "ohem_nms" => {
            let l = Ohem::<T, 512>::new(512)
                .map_err(err)?
                .with_nms(T::from_f64(0.7))
                .map_err(err)?;
            let bytes = size_of::<Ohem<T, 512>>() + size_of::<TopK<T, 512>>();
            (
                time(repeats, || {
                    let _ = black_box(l.select(&d.logits, Some(&d.boxes)));
                }),
                bytes,
            )
        }
        "balanced" => {
            let l = BalancedSampler::<T, 512>::new(
                Budget::new(512, T::from_f64(0.25), None).map_err(err)?,
            )
            .map_err(err)?;
            let mut rng = SplitMix64::new(1);
            (
                time(repeats, || {
                    let _ = black_box(l.sample(&d.positive, &mut rng));
                }),
                size_of::<BalancedSampler<T, 512>>(),
            )
        }
        "sohem" => {
            let l = SOhem::<T, 512>::new(512, 4).map_err(err)?;
            let loc = &d.targets;
            (
                time(repeats, || {
                    let _ = black_box(l.select(&d.logits, loc, T::HALF));
                }),
                size_of::<SOhem<T, 512>>() + size_of::<TopK<T, 512>>(),
            )
        }
        other => return Err(format!("unknown op `{other}`")),
    };
    Ok(secs)
}

/// Measures `op` on `path` with `n` elements.
pub fn measure(op: &str, path: &str, n: usize, repeats: usize) -> Result<Measurement, String> {
    let n = if op.starts_with("softmax") || op == "focal_labels" {
        n / CLASSES * CLASSES
    } else {
        n
    };
    let (secs, state_bytes) = match path {
        "f32" => measure_typed::<f32>(op, n, repeats)?,
        "f64" => measure_typed::<f64>(op, n, repeats)?,
        "fixed" => measure_typed::<Q16>(op, n, repeats)?,
        "gpu" => measure_gpu(op, n, repeats)?,
        other => return Err(format!("unknown path `{other}`")),
    };
    Ok(Measurement {
        op: op.to_string(),
        path: path.to_string(),
        n,
        melem_per_s: n as f64 / secs / 1e6,
        ns_per_elem: secs * 1e9 / n as f64,
        state_bytes,
    })
}

/// The GPU path through the host-slice API: each call copies the inputs to the device and the
/// gradient back, so this is end-to-end throughput, transfers included.
#[cfg(feature = "gpu")]
fn measure_gpu(op: &str, n: usize, repeats: usize) -> Result<(f64, usize), String> {
    let gpu = hardmine_gpu::Gpu::new().map_err(|e| e.to_string())?;
    let e = |e: hardmine_gpu::GpuError| e.to_string();
    // The same inputs as the CPU paths (no boxes or labels: at N = 2^28 they would be 5 GB).
    let (logits, positive) = logits_and_positives::<f32>(&mut SplitMix64::new(2026), n);
    let d = Data {
        targets: targets_of(&positive),
        logits,
        labels: Vec::new(),
        boxes: Vec::new(),
        positive,
    };
    let sum = Reduction::Sum;
    // On device-resident buffers (batches already on the GPU): the time is the validation and
    // loss kernels and the small read-backs (partial sums, GHM's counts), not PCIe.
    let (x, t) = (
        gpu.upload(&d.logits).map_err(e)?,
        gpu.upload(&d.targets).map_err(e)?,
    );
    let mut g = gpu.zeros(n).map_err(e)?;
    let secs = match op {
        "focal" => {
            let focal = SigmoidFocal::new(0.25, 2.0)
                .map_err(err)?
                .with_reduction(sum);
            gpu.sigmoid_focal_on_device(&focal, &x, &t, &mut g)
                .map_err(e)?;
            time(repeats, || {
                let _ = black_box(gpu.sigmoid_focal_on_device(&focal, &x, &t, &mut g));
            })
        }
        "bce" => {
            let bce = BceWithLogits::new().with_reduction(sum);
            gpu.bce_on_device(&bce, &x, &t, None, &mut g).map_err(e)?;
            time(repeats, || {
                let _ = black_box(gpu.bce_on_device(&bce, &x, &t, None, &mut g));
            })
        }
        "ghm_c" => {
            let mut ghm = GhmC::<f32, 30>::new(30, 0.75, 1.0).map_err(err)?;
            gpu.ghm_on_device(&mut ghm, &x, &t, None, &mut g)
                .map_err(e)?;
            time(repeats, || {
                let _ = black_box(gpu.ghm_on_device(&mut ghm, &x, &t, None, &mut g));
            })
        }
        // OHEM takes host slices: the time includes the losses' upload (4 bytes an element).
        "ohem" => {
            let ohem = Ohem::<f32, 512>::new(512).map_err(err)?;
            gpu.ohem(&ohem, &d.logits, None).map_err(e)?;
            time(repeats, || {
                let _ = black_box(gpu.ohem(&ohem, &d.logits, None));
            })
        }
        other => return Err(format!("op `{other}` has no GPU kernel yet")),
    };
    Ok((secs, core::mem::size_of::<hardmine_gpu::Gpu>()))
}

#[cfg(not(feature = "gpu"))]
fn measure_gpu(_: &str, _: usize, _: usize) -> Result<(f64, usize), String> {
    Err("the gpu path is not in this build (build hardmine-cli with --features gpu)".into())
}
