//! The API without the `cuda` feature: every call is `Err(GpuError::Unavailable)`.

use crate::{DeviceKind, GpuError};
use hardmine::{
    Asl1, ClassLabel, Ghm, Ohem, Reduction, SigmoidFocalLabels, SmoothL1, SoftmaxCrossEntropy,
    SoftmaxFocal,
};

/// The most GHM bins the kernels' shared-memory histogram holds.
pub const MAX_GHM_BINS: usize = 64;

/// The kernels compiled to PTX (unavailable in this build).
///
/// # Errors
/// `GpuError::Unavailable`.
pub fn ptx(_: Option<&'static str>) -> Result<String, GpuError> {
    Err(GpuError::Unavailable)
}

/// f32 values in device memory (none can be made in this build).
#[derive(Debug)]
pub struct DeviceBuffer {
    _private: (),
}

impl DeviceBuffer {
    /// Its number of values.
    pub fn len(&self) -> usize {
        0
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        true
    }
}

/// A CUDA context (this build has none).
#[derive(Debug)]
pub struct Gpu {
    _private: (),
}

impl Gpu {
    /// Always `Err(GpuError::Unavailable)` in this build.
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    pub fn new() -> Result<Self, GpuError> {
        Err(GpuError::Unavailable)
    }

    /// Sigmoid focal loss and gradient (unavailable in this build).
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    #[allow(clippy::too_many_arguments)]
    pub fn sigmoid_focal(
        &self,
        _: &[f32],
        _: &[f32],
        _: f32,
        _: f32,
        _: Reduction,
        _: &mut [f32],
    ) -> Result<f32, GpuError> {
        Err(GpuError::Unavailable)
    }

    /// BCE with logits and its gradient (unavailable in this build).
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    pub fn bce(
        &self,
        _: &[f32],
        _: &[f32],
        _: Option<&[f32]>,
        _: Reduction,
        _: &mut [f32],
    ) -> Result<f32, GpuError> {
        Err(GpuError::Unavailable)
    }

    /// GHM-C or GHM-R on one batch (unavailable in this build).
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    pub fn ghm<K: DeviceKind, const BINS: usize>(
        &self,
        _: &mut Ghm<f32, K, BINS>,
        _: &[f32],
        _: &[f32],
        _: Option<&[f32]>,
        _: &mut [f32],
    ) -> Result<f32, GpuError> {
        Err(GpuError::Unavailable)
    }

    /// Copies values to the device (unavailable in this build).
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    pub fn upload(&self, _: &[f32]) -> Result<DeviceBuffer, GpuError> {
        Err(GpuError::Unavailable)
    }

    /// A device buffer of zeros (unavailable in this build).
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    pub fn zeros(&self, _: usize) -> Result<DeviceBuffer, GpuError> {
        Err(GpuError::Unavailable)
    }

    /// Copies a device buffer back (unavailable in this build).
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    pub fn download(&self, _: &DeviceBuffer, _: &mut [f32]) -> Result<(), GpuError> {
        Err(GpuError::Unavailable)
    }

    /// Sigmoid focal loss on device buffers (unavailable in this build).
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    pub fn sigmoid_focal_on_device(
        &self,
        _: &DeviceBuffer,
        _: &DeviceBuffer,
        _: f32,
        _: f32,
        _: Reduction,
        _: &mut DeviceBuffer,
    ) -> Result<f32, GpuError> {
        Err(GpuError::Unavailable)
    }

    /// BCE on device buffers (unavailable in this build).
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    pub fn bce_on_device(
        &self,
        _: &DeviceBuffer,
        _: &DeviceBuffer,
        _: Option<&DeviceBuffer>,
        _: Reduction,
        _: &mut DeviceBuffer,
    ) -> Result<f32, GpuError> {
        Err(GpuError::Unavailable)
    }

    /// GHM on device buffers (unavailable in this build).
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    pub fn ghm_on_device<K: DeviceKind, const BINS: usize>(
        &self,
        _: &mut Ghm<f32, K, BINS>,
        _: &DeviceBuffer,
        _: &DeviceBuffer,
        _: Option<&DeviceBuffer>,
        _: &mut DeviceBuffer,
    ) -> Result<f32, GpuError> {
        Err(GpuError::Unavailable)
    }

    /// Sigmoid focal loss in label form (unavailable in this build).
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    pub fn sigmoid_focal_labels(
        &self,
        _: &SigmoidFocalLabels<'_, f32>,
        _: &[f32],
        _: &[i32],
        _: Option<&[f32]>,
        _: &mut [f32],
    ) -> Result<f32, GpuError> {
        Err(GpuError::Unavailable)
    }

    /// Smooth L1 (unavailable in this build).
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    pub fn smooth_l1(
        &self,
        _: &SmoothL1<f32>,
        _: &[f32],
        _: &[f32],
        _: &mut [f32],
    ) -> Result<f32, GpuError> {
        Err(GpuError::Unavailable)
    }

    /// ASL1 (unavailable in this build).
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    pub fn asl1(
        &self,
        _: &Asl1<f32>,
        _: &[f32],
        _: &[f32],
        _: &mut [f32],
    ) -> Result<f32, GpuError> {
        Err(GpuError::Unavailable)
    }

    /// Softmax cross-entropy (unavailable in this build).
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    pub fn softmax_cross_entropy(
        &self,
        _: &SoftmaxCrossEntropy,
        _: &[f32],
        _: &[i32],
        _: &mut [f32],
    ) -> Result<f32, GpuError> {
        Err(GpuError::Unavailable)
    }

    /// Softmax focal loss (unavailable in this build).
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    pub fn softmax_focal(
        &self,
        _: &SoftmaxFocal<f32>,
        _: &[f32],
        _: &[i32],
        _: &mut [f32],
    ) -> Result<f32, GpuError> {
        Err(GpuError::Unavailable)
    }

    /// OHEM (unavailable in this build).
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    pub fn ohem<const K: usize>(
        &self,
        _: &Ohem<f32, K>,
        _: &[f32],
        _: Option<&[f32]>,
    ) -> Result<Vec<usize>, GpuError> {
        Err(GpuError::Unavailable)
    }

    /// OHEM with per-label NMS (unavailable in this build).
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    pub fn ohem_per_label<L: ClassLabel, const K: usize>(
        &self,
        _: &Ohem<f32, K>,
        _: &[f32],
        _: Option<&[f32]>,
        _: &[L],
    ) -> Result<Vec<usize>, GpuError> {
        Err(GpuError::Unavailable)
    }
}
