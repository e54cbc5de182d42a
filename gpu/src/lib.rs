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
//! host, weighting pass on the device). Reductions are deterministic: integer counts, and
//! floating-point sums by a fixed block tree with the blocks' partial sums added on the host
//! in block order. OHEM on the GPU is not written yet.

#[cfg(feature = "cuda")]
use hardmine::Reduction;
use hardmine::{Classification, Error, GhmKind, Regression};

#[cfg(feature = "cuda")]
mod cuda;
#[cfg(not(feature = "cuda"))]
mod stub;

#[cfg(feature = "cuda")]
pub use cuda::{ptx, DeviceBuffer, Gpu, MAX_GHM_BINS};
#[cfg(not(feature = "cuda"))]
pub use stub::{ptx, DeviceBuffer, Gpu, MAX_GHM_BINS};

/// A GHM kind the kernels know ([`Classification`]: GHM-C, [`Regression`]: GHM-R), for
/// [`Gpu::ghm`]. Sealed: implemented here only.
pub trait DeviceKind: GhmKind<f32> + sealed::Sealed {
    /// Whether targets must lie in `[0, 1]` (GHM-C).
    const UNIT_TARGETS: bool;
    /// How the kernels name it: `(0, 0)` for GHM-C, `(1, mu)` for GHM-R.
    #[doc(hidden)]
    fn device_kind(&self) -> (i32, f64);
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for hardmine::Classification {}
    impl Sealed for hardmine::Regression<f32> {}
}

impl DeviceKind for Classification {
    const UNIT_TARGETS: bool = true;
    fn device_kind(&self) -> (i32, f64) {
        (0, 0.0)
    }
}

impl DeviceKind for Regression<f32> {
    const UNIT_TARGETS: bool = false;
    fn device_kind(&self) -> (i32, f64) {
        (1, f64::from(self.mu()))
    }
}

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

#[cfg(feature = "cuda")]
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

#[cfg(feature = "cuda")]
/// `Err(NonFinite)` at the first NaN or infinite value.
pub(crate) fn first_non_finite(xs: &[f32]) -> Result<(), GpuError> {
    match xs.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(Error::NonFinite { index }.into()),
        None => Ok(()),
    }
}

#[cfg(feature = "cuda")]
/// Host-side validation of an element-wise binary loss, with the core's rules and precedence.
pub(crate) fn validate(
    logits: &[f32],
    targets: &[f32],
    weights: Option<&[f32]>,
    grad: &[f32],
) -> Result<(), GpuError> {
    let lens = [
        Some(targets.len()),
        weights.map(<[f32]>::len),
        Some(grad.len()),
    ];
    lengths_agree(logits.len(), lens)?;
    for (index, (&x, &t)) in logits.iter().zip(targets).enumerate() {
        let w_ok = weights.is_none_or(|w| w.get(index).is_some_and(|w| w.is_finite()));
        if !(w_ok && x.is_finite() && t.is_finite()) {
            return Err(Error::NonFinite { index }.into());
        }
        if !(0.0..=1.0).contains(&t) {
            return Err(Error::InvalidTarget { index }.into());
        }
    }
    Ok(())
}

#[cfg(feature = "cuda")]
/// Host-side validation of a GHM batch with the core's precedence per index: the input, the
/// target (finite; in `[0, 1]` for GHM-C), then the label weight.
pub(crate) fn validate_ghm(
    xs: &[f32],
    ts: &[f32],
    label_weights: Option<&[f32]>,
    grad: &[f32],
    unit_targets: bool,
) -> Result<(), GpuError> {
    let lens = [
        Some(ts.len()),
        label_weights.map(<[f32]>::len),
        Some(grad.len()),
    ];
    lengths_agree(xs.len(), lens)?;
    for (index, (&x, &t)) in xs.iter().zip(ts).enumerate() {
        if !(x.is_finite() && t.is_finite()) {
            return Err(Error::NonFinite { index }.into());
        }
        if unit_targets && !(0.0..=1.0).contains(&t) {
            return Err(Error::InvalidTarget { index }.into());
        }
        if label_weights.is_some_and(|w| w.get(index).is_none_or(|w| !w.is_finite())) {
            return Err(Error::NonFinite { index }.into());
        }
    }
    Ok(())
}

#[cfg(feature = "cuda")]
/// The divisor of a mean (1 for sums).
pub(crate) fn reduction_divisor(reduction: Reduction, n: usize) -> f64 {
    match reduction {
        Reduction::Mean if n > 0 => n as f64,
        _ => 1.0,
    }
}
