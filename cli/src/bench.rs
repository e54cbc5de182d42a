//! `hardmine bench`: throughput of each op and path in million elements per second: a warm-up,
//! then the median of at least `repeats` timed calls of forward + gradient (selection for the
//! miners), one thread, inputs from a fixed seed shaped like a detector's (logits mostly
//! negative, one positive per hundred).

use crate::op::{unsupported, Op, Path};
use hardmine::{
    BalancedSampler, BceWithLogits, Budget, GhmC, GhmR, Ohem, Real, Reduction, SOhem, SigmoidFocal,
    SigmoidFocalLabels, SmoothL1, SoftmaxCrossEntropy, SoftmaxFocal, SplitMix64, TopK, Q16,
};
use serde::Serialize;
use std::hint::black_box;
use std::time::Instant;

/// The ops `bench` measures by default (`--op all`), in report order; `ohem_nms` is measured
/// on request.
pub const OPS: [Op; 11] = [
    Op::BceWithLogits,
    Op::SigmoidFocal,
    Op::SigmoidFocalLabels,
    Op::SoftmaxCrossEntropy,
    Op::SoftmaxFocal,
    Op::SmoothL1,
    Op::GhmC,
    Op::GhmR,
    Op::Ohem,
    Op::BalancedSampler,
    Op::Sohem,
];

/// The smallest `n` it takes.
pub const MIN_N: usize = 1024;

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

/// The paths it measures by default (`--path all`): the CPU's.
pub const PATHS: [Path; 3] = [Path::F32, Path::F64, Path::Fixed];
/// Classes of the multi-class ops (COCO's 80).
const CLASSES: usize = 80;

/// One measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// Op.
    pub op: Op,
    /// Path.
    pub path: Path,
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

/// `f`'s median time (see [`time`]), and `bytes` of state.
fn timed<R>(repeats: usize, bytes: usize, mut f: impl FnMut() -> R) -> (f64, usize) {
    (
        time(repeats, || {
            black_box(f());
        }),
        bytes,
    )
}

/// Whether `op` takes `[rows x classes]` logits (its `n` is rounded down to whole rows).
fn rows_of_classes(op: Op) -> bool {
    matches!(
        op,
        Op::SigmoidFocalLabels | Op::SoftmaxCrossEntropy | Op::SoftmaxFocal
    )
}

/// Measures `op` on the path of `T` with `n` elements: median seconds and state bytes.
fn measure_typed<T: Real>(op: Op, n: usize, repeats: usize) -> anyhow::Result<(f64, usize)> {
    use core::mem::size_of;
    let d = data::<T>(n);
    let mut grad = vec![T::ZERO; n];
    let sum = Reduction::Sum;
    let rows = n / CLASSES;
    let (x, labels) = (&d.logits[..rows * CLASSES], &d.labels);
    let (alpha, gamma) = (T::from_f64(0.25), T::from_f64(2.0));
    Ok(match op {
        Op::BceWithLogits => {
            let l = BceWithLogits::new().with_reduction(sum);
            l.value_and_grad(&d.logits, &d.targets, None, &mut grad)?;
            timed(repeats, size_of::<BceWithLogits>(), || {
                l.value_and_grad(&d.logits, &d.targets, None, &mut grad)
            })
        }
        Op::SigmoidFocal => {
            let l = SigmoidFocal::new(alpha, gamma)?.with_reduction(sum);
            timed(repeats, size_of::<SigmoidFocal<T>>(), || {
                l.value_and_grad(&d.logits, &d.targets, &mut grad)
            })
        }
        Op::SigmoidFocalLabels => {
            let f = SigmoidFocal::new(alpha, gamma)?.with_reduction(sum);
            let l = SigmoidFocalLabels::new(f, CLASSES)?;
            let g = &mut grad[..rows * CLASSES];
            timed(repeats, size_of::<SigmoidFocalLabels<'_, T>>(), || {
                l.value_and_grad(x, labels, None, g)
            })
        }
        Op::SoftmaxCrossEntropy => {
            let labels = class_labels(labels);
            let l = SoftmaxCrossEntropy::new(CLASSES)?.with_reduction(sum);
            let g = &mut grad[..rows * CLASSES];
            timed(repeats, size_of::<SoftmaxCrossEntropy>(), || {
                l.value_and_grad(x, &labels, g)
            })
        }
        Op::SoftmaxFocal => {
            let labels = class_labels(labels);
            let l = SoftmaxFocal::new(alpha, gamma, CLASSES)?.with_reduction(sum);
            let g = &mut grad[..rows * CLASSES];
            timed(repeats, size_of::<SoftmaxFocal<T>>(), || {
                l.value_and_grad(x, &labels, g)
            })
        }
        Op::SmoothL1 => {
            let l = SmoothL1::new(T::from_f64(1.0 / 9.0))?.with_reduction(sum);
            timed(repeats, size_of::<SmoothL1<T>>(), || {
                l.value_and_grad(&d.logits, &d.targets, &mut grad)
            })
        }
        Op::GhmC => {
            let mut l = GhmC::<T, 30>::new(30, T::from_f64(0.75), T::ONE)?;
            timed(repeats, size_of::<GhmC<T, 30>>(), || {
                l.value_and_grad(&d.logits, &d.targets, None, &mut grad)
            })
        }
        Op::GhmR => {
            let mut l = GhmR::<T, 10>::new(T::from_f64(0.02), 10, T::from_f64(0.7), T::ONE)?;
            timed(repeats, size_of::<GhmR<T, 10>>(), || {
                l.value_and_grad(&d.logits, &d.targets, None, &mut grad)
            })
        }
        Op::Ohem => {
            let l = Ohem::<T, 512>::new(512)?;
            let bytes = size_of::<Ohem<T, 512>>() + size_of::<TopK<T, 512>>();
            timed(repeats, bytes, || l.select(&d.logits, None))
        }
        Op::OhemNms => {
            let l = Ohem::<T, 512>::new(512)?.with_nms(T::from_f64(0.7))?;
            let bytes = size_of::<Ohem<T, 512>>() + size_of::<TopK<T, 512>>();
            timed(repeats, bytes, || l.select(&d.logits, Some(&d.boxes)))
        }
        Op::BalancedSampler => {
            let l = BalancedSampler::<T, 512>::new(Budget::new(512, alpha, None)?)?;
            let mut rng = SplitMix64::new(1);
            timed(repeats, size_of::<BalancedSampler<T, 512>>(), || {
                l.sample(&d.positive, &mut rng)
            })
        }
        Op::Sohem => {
            let l = SOhem::<T, 512>::new(512, 4)?;
            let bytes = size_of::<SOhem<T, 512>>() + size_of::<TopK<T, 512>>();
            timed(repeats, bytes, || l.select(&d.logits, &d.targets, T::HALF))
        }
        Op::OcclusionSearch | Op::RotateBlocks => return Err(no_entry(op)),
    })
}

/// The op has no throughput entry.
fn no_entry(op: Op) -> anyhow::Error {
    unsupported(format!("op `{op}` has no bench entry"))
}

/// Labels that all name a class (the softmax losses take no background).
fn class_labels(labels: &[i32]) -> Vec<i32> {
    labels.iter().map(|&l| l % CLASSES as i32).collect()
}

/// Measures `op` on `path` with `n` elements.
pub fn measure(op: Op, path: Path, n: usize, repeats: usize) -> anyhow::Result<Measurement> {
    let n = if rows_of_classes(op) {
        n / CLASSES * CLASSES
    } else {
        n
    };
    let (secs, state_bytes) = match path {
        Path::F32 => measure_typed::<f32>(op, n, repeats)?,
        Path::F64 => measure_typed::<f64>(op, n, repeats)?,
        Path::Fixed => measure_typed::<Q16>(op, n, repeats)?,
        Path::Gpu => measure_gpu(op, n, repeats)?,
    };
    Ok(Measurement {
        op,
        path,
        n,
        melem_per_s: n as f64 / secs / 1e6,
        ns_per_elem: secs * 1e9 / n as f64,
        state_bytes,
    })
}

/// The GPU path through the host-slice API: each call copies the inputs to the device and the
/// gradient back, so this is end-to-end throughput, transfers included.
#[cfg(feature = "gpu")]
fn measure_gpu(op: Op, n: usize, repeats: usize) -> anyhow::Result<(f64, usize)> {
    let gpu = hardmine_gpu::Gpu::new().map_err(unsupported)?;
    // The same inputs as the CPU paths (no boxes or labels: at N = 2^28 they would be 5 GB).
    let (logits, positive) = logits_and_positives::<f32>(&mut SplitMix64::new(2026), n);
    let targets: Vec<f32> = targets_of(&positive);
    let sum = Reduction::Sum;
    // On device-resident buffers (batches already on the GPU): the time is the validation and
    // loss kernels and the small read-backs (partial sums, GHM's counts), not PCIe.
    let (x, t) = (gpu.upload(&logits)?, gpu.upload(&targets)?);
    let mut g = gpu.zeros(n)?;
    let bytes = core::mem::size_of::<hardmine_gpu::Gpu>();
    Ok(match op {
        Op::SigmoidFocal => {
            let focal = hardmine::SigmoidFocal::new(0.25, 2.0)?.with_reduction(sum);
            gpu.sigmoid_focal_on_device(&focal, &x, &t, &mut g)?;
            timed(repeats, bytes, || {
                gpu.sigmoid_focal_on_device(&focal, &x, &t, &mut g)
            })
        }
        Op::BceWithLogits => {
            let bce = hardmine::BceWithLogits::new().with_reduction(sum);
            gpu.bce_on_device(&bce, &x, &t, None, &mut g)?;
            timed(repeats, bytes, || {
                gpu.bce_on_device(&bce, &x, &t, None, &mut g)
            })
        }
        Op::GhmC => {
            let mut ghm = GhmC::<f32, 30>::new(30, 0.75, 1.0)?;
            gpu.ghm_on_device(&mut ghm, &x, &t, None, &mut g)?;
            timed(repeats, bytes, || {
                gpu.ghm_on_device(&mut ghm, &x, &t, None, &mut g)
            })
        }
        // OHEM takes host slices: the time includes the losses' upload (4 bytes an element).
        Op::Ohem => {
            let ohem = Ohem::<f32, 512>::new(512)?;
            gpu.ohem(&ohem, &logits, None)?;
            timed(repeats, bytes, || gpu.ohem(&ohem, &logits, None))
        }
        Op::SigmoidFocalLabels
        | Op::SoftmaxCrossEntropy
        | Op::SoftmaxFocal
        | Op::SmoothL1
        | Op::GhmR
        | Op::OhemNms
        | Op::Sohem
        | Op::BalancedSampler
        | Op::OcclusionSearch
        | Op::RotateBlocks => return Err(unsupported(format!("op `{op}` has no GPU kernel yet"))),
    })
}

#[cfg(not(feature = "gpu"))]
fn measure_gpu(_: Op, _: usize, _: usize) -> anyhow::Result<(f64, usize)> {
    Err(unsupported(
        "the gpu path is not in this build (build hardmine-cli with --features gpu)",
    ))
}
