//! hardmine on CUDA: batches of losses offloaded to the GPU through cudarc, with the core crate
//! as the oracle (`tests/gpu_vs_core.rs`).
//!
//! # Feature flags
//! - `cuda`: the CUDA backend (cudarc 0.19 with `dynamic-loading` and `cuda-12080`, so it builds
//!   with no CUDA toolkit and no GPU; kernels are CUDA C compiled by NVRTC at first use and
//!   cached in the context). Without it the same API compiles and every call returns
//!   `Err(GpuError::Unavailable)`.
//!
//! No driver library, no device, or no NVRTC is `Err(GpuError::NoDevice)`, never a panic (the
//! driver library is looked for before any context is made). Inputs are validated on the host
//! with the core's rules first (`GpuError::Input` carries the core's `Error`).
//!
//! Data: host slices in and out, or [`DeviceBuffer`]s that stay on the device between calls
//! (`upload`, `zeros`, `download`; `sigmoid_focal_on_device`, `bce_on_device` and
//! `ghm_on_device` validate them with a kernel, with the core's rules and precedence, and read
//! back only the partial sums and counts).
//!
//! Coverage: sigmoid focal (dense and label form), BCE, smooth L1, ASL1, softmax cross-entropy
//! and softmax focal (fused forward and gradient), GHM-C and GHM-R (histogram with
//! shared-memory atomics on the device, the moving average in the core's state object on the
//! host, weighting pass on the device), OHEM top-k (radix select over 64-bit rank keys on the
//! device; with NMS, the core's greedy walk on the host over the device's top candidates).
//! Reductions are deterministic: integer counts, and floating-point sums by a fixed block
//! tree with the blocks' partial sums added on the host in block order.

#[cfg(any(feature = "cuda", test))]
use hardmine::Reduction;
use hardmine::{Classification, Error, GhmKind, Regression};

#[cfg(feature = "cuda")]
mod cuda;
#[cfg(feature = "cuda")]
mod kernels;
#[cfg(not(feature = "cuda"))]
mod stub;

#[cfg(feature = "cuda")]
pub use cuda::{ptx, DeviceBuffer, Gpu};
#[cfg(not(feature = "cuda"))]
pub use stub::{ptx, DeviceBuffer, Gpu};

/// The most GHM bins the kernels' shared-memory histogram holds.
pub const MAX_GHM_BINS: usize = 64;

/// A GHM kind the kernels know ([`Classification`]: GHM-C, [`Regression`]: GHM-R), for
/// [`Gpu::ghm`]; what it accepts as targets is the core's rule for the kind. Sealed:
/// implemented here only.
pub trait DeviceKind: GhmKind<f32> + sealed::Sealed {}

mod sealed {
    /// The kernels' name for a GHM kind.
    pub trait Sealed {
        /// The kind the GHM kernels switch on, and its parameter (GHM-R's mu; 0 for GHM-C).
        #[cfg(feature = "cuda")]
        fn kernel(&self) -> (crate::kernels::GhmKernel, f64);
    }

    impl Sealed for hardmine::Classification {
        #[cfg(feature = "cuda")]
        fn kernel(&self) -> (crate::kernels::GhmKernel, f64) {
            (crate::kernels::GhmKernel::Classification, 0.0)
        }
    }

    impl Sealed for hardmine::Regression<f32> {
        #[cfg(feature = "cuda")]
        fn kernel(&self) -> (crate::kernels::GhmKernel, f64) {
            (crate::kernels::GhmKernel::Regression, f64::from(self.mu()))
        }
    }
}

impl DeviceKind for Classification {}

impl DeviceKind for Regression<f32> {}

/// Why a GPU call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuError {
    /// This build has no CUDA backend (the `cuda` feature is off).
    Unavailable,
    /// No CUDA driver library, no device, or no NVRTC on this machine.
    NoDevice,
    /// The input is invalid under the core's rules.
    Input(Error),
    /// This op has no GPU kernel yet.
    NotImplemented(&'static str),
    /// A driver or compiler error, with its message.
    Driver(String),
}

impl core::fmt::Display for GpuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GpuError::Unavailable => write!(
                f,
                "the gpu path is not in this build (enable the `cuda` feature)"
            ),
            GpuError::NoDevice => write!(f, "no CUDA driver, device or NVRTC on this machine"),
            GpuError::Input(e) => write!(f, "{e}"),
            GpuError::NotImplemented(op) => write!(f, "op `{op}` has no GPU kernel yet"),
            GpuError::Driver(m) => write!(f, "CUDA: {m}"),
        }
    }
}

impl std::error::Error for GpuError {}

impl From<Error> for GpuError {
    fn from(e: Error) -> Self {
        GpuError::Input(e)
    }
}

#[cfg(any(feature = "cuda", test))]
/// `Err(LengthMismatch)` unless every given length is `n`.
pub(crate) fn lengths_agree(
    n: usize,
    lens: impl IntoIterator<Item = Option<usize>>,
) -> Result<(), GpuError> {
    match lens.into_iter().flatten().find(|&len| len != n) {
        Some(got) => Err(Error::LengthMismatch { expected: n, got }.into()),
        None => Ok(()),
    }
}

#[cfg(any(feature = "cuda", test))]
/// The inputs of a softmax loss over rows of `classes` logits, by the core's rule
/// ([`hardmine::check::softmax_inputs`]); returns the rows counted (labels in `0..classes`).
pub(crate) fn softmax_inputs(
    classes: usize,
    logits: &[f32],
    labels: &[i32],
    grad_len: usize,
) -> Result<usize, GpuError> {
    hardmine::check::softmax_inputs(classes, logits, labels, Some(grad_len), None)?;
    Ok(labels
        .iter()
        .filter(|&&y| usize::try_from(y).is_ok_and(|y| y < classes))
        .count())
}

#[cfg(any(feature = "cuda", test))]
/// The inputs of the label-form focal loss over `rows` rows of `classes` logits, by the core's
/// rule ([`hardmine::check::label_inputs`]); returns the number of logits.
pub(crate) fn focal_labels_inputs(
    (rows, classes): (usize, usize),
    logits: &[f32],
    label_weights: Option<&[f32]>,
    grad_len: usize,
) -> Result<usize, GpuError> {
    hardmine::check::label_inputs(classes, logits, rows, label_weights, Some(grad_len))?;
    Ok(logits.len())
}

#[cfg(any(feature = "cuda", test))]
/// How a loss's sum is normalised: its reduction and its `avg_factor` (mmdetection's
/// `sum / (avg_factor + eps)`), by the core's rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Norm {
    reduction: Reduction,
    avg_factor: Option<f64>,
}

#[cfg(any(feature = "cuda", test))]
impl Norm {
    /// A plain sum (the GHM and miner launches, which divide by their own totals).
    #[cfg(feature = "cuda")]
    pub(crate) const SUM: Self = Self {
        reduction: Reduction::Sum,
        avg_factor: None,
    };

    /// The normalisation of a loss with `reduction` and `avg_factor`.
    ///
    /// # Errors
    /// `InvalidParameter("avg_factor")` for `Sum` with a factor: the core refuses it before it
    /// looks at the inputs, and so do the GPU entry points (call this first).
    pub(crate) fn new(reduction: Reduction, avg_factor: Option<f64>) -> Result<Self, Error> {
        if reduction == Reduction::Sum && avg_factor.is_some() {
            return Err(Error::InvalidParameter("avg_factor"));
        }
        Ok(Self {
            reduction,
            avg_factor,
        })
    }

    /// The divisor of a sum over `n` counted elements or rows: `avg_factor + eps` for a mean
    /// with a factor ([`hardmine::AVG_FACTOR_EPS`]), `n` for a plain mean over `n > 0`, else 1.
    pub(crate) fn divisor(self, n: usize) -> f64 {
        match (self.reduction, self.avg_factor) {
            (Reduction::Mean, Some(f)) => f + hardmine::AVG_FACTOR_EPS,
            (Reduction::Mean, None) if n > 0 => n as f64,
            _ => 1.0,
        }
    }
}

#[cfg(any(feature = "cuda", test))]
/// OHEM's ranking as one 64-bit key per element (the kernels' `rank_key`): the loss's
/// order-preserving bits (-0 counted as +0, as the core compares floats) above the complement
/// of the index, so a larger key ranks first, ties go to the lower index, and no two keys of
/// one batch are equal.
pub(crate) fn rank_key(losses: &[f32], index: usize) -> u64 {
    let b = losses.get(index).map_or(0, |&l| (l + 0.0).to_bits());
    let b = if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    };
    (u64::from(b) << 32) | u64::from(u32::MAX - index as u32)
}

#[cfg(any(feature = "cuda", test))]
/// The `m`-th largest of a batch's distinct rank keys (`1 <= m <=` the batch's length), by
/// radix select: eight passes, each asking `hist(prefix, mask, shift)` for the 256 counts of
/// the 8-bit digit at `shift` among the keys whose bits under `mask` equal `prefix` (a device
/// histogram), and following the digit that holds the `m`-th key.
pub(crate) fn radix_select(
    m: u64,
    mut hist: impl FnMut(u64, u64, i32) -> Result<Vec<u32>, GpuError>,
) -> Result<u64, GpuError> {
    let (mut prefix, mut mask, mut remaining) = (0u64, 0u64, m);
    for pass in 0..8 {
        let shift = 56 - 8 * pass;
        let counts = hist(prefix, mask, shift)?;
        // The digit of the `remaining`-th largest key under the prefix.
        let mut digit = None;
        for (d, &count) in counts.iter().enumerate().rev() {
            if u64::from(count) >= remaining {
                digit = Some(d as u64);
                break;
            }
            remaining -= u64::from(count);
        }
        let digit = digit.ok_or_else(|| {
            GpuError::Driver(format!("radix select: fewer than {m} keys counted"))
        })?;
        prefix |= digit << shift;
        mask |= 0xFF << shift;
    }
    Ok(prefix)
}

#[cfg(any(feature = "cuda", test))]
/// OHEM with the core's validation and semantics, given `top_ranked(m)`: the `m` highest-ranked
/// indices in rank order (the device's part). Without NMS the top `k`; with NMS the core's
/// greedy walk over the top `4k` candidates, doubled until it keeps `k` or holds every
/// element (the walk over a prefix of the ranking makes the full walk's first decisions).
/// With `labels`, NMS only between boxes of one label (`select_per_label`). Returns ascending
/// indices, as `Selection::indices`.
pub(crate) fn ohem_select<L: hardmine::ClassLabel, const K: usize>(
    ohem: &hardmine::Ohem<f32, K>,
    losses: &[f32],
    boxes: Option<&[f32]>,
    labels: Option<&[L]>,
    mut top_ranked: impl FnMut(usize) -> Result<Vec<usize>, GpuError>,
) -> Result<Vec<usize>, GpuError> {
    let n = losses.len();
    if let Some(index) = losses.iter().position(|l| !l.is_finite()) {
        return Err(Error::NonFinite { index }.into());
    }
    lengths_agree(n, [labels.map(<[L]>::len)])?;
    let k = ohem.k();
    let boxes = match ohem.nms_iou() {
        Some(_) => {
            let boxes = boxes.unwrap_or(&[]);
            hardmine::check_boxes(boxes, n)?;
            Some(boxes)
        }
        None => None,
    };
    if n == 0 {
        return Ok(Vec::new());
    }
    let Some(boxes) = boxes else {
        let mut top = top_ranked(k.min(n))?;
        top.sort_unstable();
        return Ok(top);
    };
    let mut m = k.saturating_mul(4).min(n);
    loop {
        let ranked = top_ranked(m)?;
        // The candidates in rank order, so the core's ranking of them (ties to the lower
        // position) is theirs.
        let sub_losses: Vec<f32> = ranked
            .iter()
            .map(|&i| losses.get(i).copied().unwrap_or(0.0))
            .collect();
        let sub_boxes: Vec<f32> = ranked
            .iter()
            .flat_map(|&i| {
                boxes
                    .get(4 * i..4 * i + 4)
                    .unwrap_or(&[0.0; 4])
                    .iter()
                    .copied()
            })
            .collect();
        let kept = match labels {
            Some(labels) => {
                let sub_labels: Vec<L> = ranked
                    .iter()
                    .filter_map(|&i| labels.get(i).copied())
                    .collect();
                ohem.select_per_label(&sub_losses, Some(&sub_boxes), &sub_labels)?
            }
            None => ohem.select(&sub_losses, Some(&sub_boxes))?,
        };
        if kept.len() >= k || m == n {
            let mut picked: Vec<usize> = kept
                .indices()
                .iter()
                .filter_map(|&r| ranked.get(r).copied())
                .collect();
            picked.sort_unstable();
            return Ok(picked);
        }
        m = m.saturating_mul(2).min(n);
    }
}

#[cfg(test)]
mod tests {
    use super::{
        focal_labels_inputs, ohem_select, radix_select, rank_key, softmax_inputs, GpuError,
    };
    use hardmine::{Ohem, SigmoidFocal, SigmoidFocalLabels, SoftmaxCrossEntropy, SplitMix64};

    include!("ohem_cases.rs");

    /// The GPU's normalisation is the core's: the sum over the divisor is the core's reduced
    /// loss for every reduction, with and without `avg_factor` (0 and fractional ones too),
    /// and `Sum` with a factor is refused as the core refuses it.
    #[test]
    fn the_divisor_is_the_cores() {
        use super::Norm;
        use hardmine::{Error, Reduction, SmoothL1};
        let (p, t) = (
            [0.5f32, -2.0, 1.25, 0.0, 3.0],
            [0.0f32, 0.5, 1.25, 1.0, -1.0],
        );
        let sum = SmoothL1::new(0.5f32)
            .unwrap()
            .with_reduction(Reduction::Sum)
            .value(&p, &t)
            .unwrap();
        for r in [Reduction::Mean, Reduction::Sum, Reduction::None] {
            for f in [None, Some(0.0f32), Some(0.375), Some(3.0), Some(96.5)] {
                let mut l = SmoothL1::new(0.5f32).unwrap().with_reduction(r);
                if let Some(f) = f {
                    l = l.with_avg_factor(f).unwrap();
                }
                let norm = Norm::new(r, l.avg_factor().map(f64::from));
                match l.value(&p, &t) {
                    Ok(core) => {
                        let gpu = (f64::from(sum) / norm.unwrap().divisor(p.len())) as f32;
                        let tol = 1e-6 * core.abs().max(1.0);
                        assert!((gpu - core).abs() <= tol, "{r:?} {f:?}: {gpu} vs {core}");
                    }
                    Err(e) => {
                        assert_eq!(e, Error::InvalidParameter("avg_factor"));
                        assert_eq!(norm, Err(e), "{r:?} {f:?}");
                    }
                }
            }
        }
    }

    /// The device's part on the host: the same radix select with a host histogram, the same
    /// collection and ordering.
    fn top_ranked_on_host(losses: &[f32], m: usize) -> Result<Vec<usize>, GpuError> {
        let keys: Vec<u64> = (0..losses.len()).map(|i| rank_key(losses, i)).collect();
        let threshold = radix_select(m as u64, |prefix, mask, shift| {
            let mut counts = vec![0u32; 256];
            for &key in keys.iter().filter(|&&key| key & mask == prefix) {
                counts[((key >> shift) & 255) as usize] += 1;
            }
            Ok(counts)
        })?;
        let mut top: Vec<usize> = (0..losses.len())
            .filter(|&i| keys[i] >= threshold)
            .collect();
        assert_eq!(top.len(), m, "exactly m keys at or above the m-th");
        top.sort_unstable_by_key(|&i| core::cmp::Reverse(keys[i]));
        Ok(top)
    }

    #[test]
    fn rank_keys_order_as_the_core_ranks() {
        let losses = [
            1.0f32,
            -0.0,
            0.0,
            -2.5,
            1.0,
            f32::MAX,
            -f32::MAX,
            1e-45,
            -1e-45,
        ];
        let mut order: Vec<usize> = (0..losses.len()).collect();
        order.sort_unstable_by_key(|&i| core::cmp::Reverse(rank_key(&losses, i)));
        // Loss descending, ties (1.0 twice, -0 and +0) to the lower index.
        assert_eq!(order, [5, 0, 4, 7, 1, 2, 8, 3, 6]);
    }

    /// The host orchestration of the device OHEM against the core, without a device: the
    /// radix select, the collection, and NMS over growing prefixes of the ranking.
    #[test]
    fn ohem_orchestration_selects_what_the_core_selects() {
        let mut r = SplitMix64::new(91);
        for (n, k) in [
            (1usize, 1usize),
            (2, 5),
            (10, 3),
            (257, 16),
            (1000, 64),
            (4000, 512),
        ] {
            let (losses, boxes) = ohem_case(&mut r, n, 20);
            ohem_matches_core(
                k,
                (&losses, &boxes),
                &[0.1, 0.3, 0.7],
                |ohem, boxes, labels| {
                    let host = |m| top_ranked_on_host(&losses, m);
                    ohem_select(ohem, &losses, boxes, labels, host).unwrap()
                },
            );
        }
    }

    /// The label-form focal loss's checks answer bad inputs as the core does, in its order.
    #[test]
    fn focal_labels_errors_are_the_cores() {
        let focal = SigmoidFocal::new(0.25f32, 2.0).unwrap();
        let head = SigmoidFocalLabels::new(focal, 3).unwrap();
        let (good, labels) = ([0.5f32; 6], [0i32, 3]);
        let mut nan = good;
        nan[4] = f32::NAN;
        let w_nan = [1.0, f32::INFINITY];
        // Logits, row weights and the gradient's length.
        type Case<'a> = (&'a [f32], Option<&'a [f32]>, usize);
        let cases: [Case<'_>; 8] = [
            (&good[..5], None, 6),
            (&good[..5], Some(&[1.0]), 5),
            // Weights of another length before a gradient of another length.
            (&good, Some(&[1.0]), 5),
            (&good, None, 7),
            (&nan, Some(&w_nan), 6),
            (&good, Some(&w_nan), 6),
            (&good, Some(&[1.0, 2.0]), 6),
            (&good, None, 6),
        ];
        for (logits, weights, grad_len) in cases {
            let mut grad = vec![0.0; grad_len];
            let exp = head
                .value_and_grad(logits, &labels, weights, &mut grad)
                .map(|_| logits.len());
            let got = focal_labels_inputs((labels.len(), 3), logits, weights, grad_len);
            assert_eq!(
                got,
                exp.map_err(GpuError::from),
                "{logits:?} {weights:?} {grad_len}"
            );
        }
    }

    /// The softmax losses' checks answer bad inputs as the core does, in its order, and count
    /// the rows a mean divides by.
    #[test]
    fn softmax_errors_are_the_cores() {
        let ce = SoftmaxCrossEntropy::new(2).unwrap();
        let good = [0.5f32, -1.0, 2.0, 0.0, 1.0, 1.0];
        let mut nan = good;
        nan[5] = f32::NAN;
        let cases: [(&[f32], &[i32], usize); 7] = [
            (&good[..5], &[0, 1, 1], 6),
            (&good, &[0, 1, 1], 5),
            (&nan, &[0, 2, 1], 6),
            (&good, &[0, 2, 7], 6),
            (&good, &[-1, 1, 0], 6),
            (&good, &[-1, -3, -1], 6),
            (&good[..0], &[], 0),
        ];
        for (logits, labels, grad_len) in cases {
            let mut grad = vec![0.0; grad_len];
            let got = softmax_inputs(2, logits, labels, grad_len);
            let exp = ce.value_and_grad(logits, labels, &mut grad);
            match (got, exp) {
                (Ok(counted), Ok(_)) => {
                    let rows = labels.iter().filter(|&&y| y >= 0).count();
                    assert_eq!(counted, rows, "{labels:?}");
                }
                (got, exp) => assert_eq!(got.map(|_| ()), exp.map(|_| ()).map_err(GpuError::from)),
            }
        }
    }

    #[test]
    fn ohem_errors_are_the_cores() {
        let never = |_| -> Result<Vec<usize>, GpuError> { panic!("no ranking for a bad input") };
        let plain = Ohem::<f32, 8>::new(2).unwrap();
        let nms = plain.with_nms(0.5).unwrap();
        for (ohem, losses, boxes) in [
            (plain, &[1.0f32, f32::NAN][..], None),
            (nms, &[1.0, 2.0][..], Some(&[0.0f32; 4][..])),
            (nms, &[1.0, 2.0][..], None),
            (nms, &[1.0][..], Some(&[0.0, 0.0, f32::INFINITY, 1.0][..])),
        ] {
            let exp = ohem.select(losses, boxes).unwrap_err();
            let got = ohem_select::<u8, 8>(&ohem, losses, boxes, None, never);
            assert_eq!(got, Err(exp.into()));
        }
        let labels = [0u8; 3];
        let exp = nms
            .select_per_label(&[1.0, 2.0], None, &labels)
            .unwrap_err();
        let got = ohem_select(&nms, &[1.0, 2.0], None, Some(&labels[..]), never);
        assert_eq!(got, Err(exp.into()));
        assert_eq!(
            ohem_select::<u8, 8>(&plain, &[], None, None, never),
            Ok(Vec::new())
        );
    }
}
