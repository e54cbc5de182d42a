//! The API without the `cuda` feature: every call is `Err(GpuError::Unavailable)`.

use crate::GpuError;
use hardmine::{GhmC, GhmR, Reduction};

/// The most GHM bins the kernels' shared-memory histogram holds.
pub const MAX_GHM_BINS: usize = 64;

/// The kernels compiled to PTX (unavailable in this build).
///
/// # Errors
/// `GpuError::Unavailable`.
pub fn ptx(_: Option<&'static str>) -> Result<String, GpuError> {
    Err(GpuError::Unavailable)
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

    /// GHM-C on one batch (unavailable in this build).
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    pub fn ghm_c<const BINS: usize>(
        &self,
        _: &mut GhmC<f32, BINS>,
        _: &[f32],
        _: &[f32],
        _: Option<&[f32]>,
        _: &mut [f32],
    ) -> Result<f32, GpuError> {
        Err(GpuError::Unavailable)
    }

    /// GHM-R on one batch (unavailable in this build).
    ///
    /// # Errors
    /// `GpuError::Unavailable`.
    pub fn ghm_r<const BINS: usize>(
        &self,
        _: &mut GhmR<f32, BINS>,
        _: &[f32],
        _: &[f32],
        _: Option<&[f32]>,
        _: &mut [f32],
    ) -> Result<f32, GpuError> {
        Err(GpuError::Unavailable)
    }
}
