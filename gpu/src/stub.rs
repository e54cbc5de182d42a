//! The API without the `cuda` feature: every call is `Err(GpuError::Unavailable)`.

use crate::{DeviceKind, GpuError};
use hardmine::{
    Asl1, BceWithLogits, ClassLabel, Ghm, Ohem, SigmoidFocal, SigmoidFocalLabels, SmoothL1,
    SoftmaxCrossEntropy, SoftmaxFocal,
};

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
}

/// The methods of [`Gpu`], each with the CUDA build's signature (given as `name[generics](the
/// arguments after self) -> what it returns`), each `Err(GpuError::Unavailable)`.
macro_rules! unavailable {
    ($($(#[$doc:meta])* fn $name:ident[$($generics:tt)*]($($arg:ty),* $(,)?) -> $ret:ty;)+) => {
        impl Gpu {
            $(
                $(#[$doc])*
                /// (Unavailable in this build.)
                ///
                /// # Errors
                /// `GpuError::Unavailable`.
                pub fn $name<$($generics)*>(&self, $(_: $arg),*) -> Result<$ret, GpuError> {
                    Err(GpuError::Unavailable)
                }
            )+
        }
    };
}

unavailable! {
    /// Copies values to a new device buffer.
    fn upload[](&[f32]) -> DeviceBuffer;
    /// A device buffer of zeros.
    fn zeros[](usize) -> DeviceBuffer;
    /// Copies a device buffer back.
    fn download[](&DeviceBuffer, &mut [f32]) -> ();
    /// Sigmoid focal loss and its gradient.
    fn sigmoid_focal[](&SigmoidFocal<f32>, &[f32], &[f32], &mut [f32]) -> f32;
    /// Sigmoid focal loss on device buffers.
    fn sigmoid_focal_on_device[](
        &SigmoidFocal<f32>,
        &DeviceBuffer,
        &DeviceBuffer,
        &mut DeviceBuffer,
    ) -> f32;
    /// BCE with logits and its gradient.
    fn bce[](&BceWithLogits, &[f32], &[f32], Option<&[f32]>, &mut [f32]) -> f32;
    /// BCE on device buffers.
    fn bce_on_device[](
        &BceWithLogits,
        &DeviceBuffer,
        &DeviceBuffer,
        Option<&DeviceBuffer>,
        &mut DeviceBuffer,
    ) -> f32;
    /// Sigmoid focal loss in label form.
    fn sigmoid_focal_labels[](
        &SigmoidFocalLabels<'_, f32>,
        &[f32],
        &[i32],
        Option<&[f32]>,
        &mut [f32],
    ) -> f32;
    /// Smooth L1.
    fn smooth_l1[](&SmoothL1<f32>, &[f32], &[f32], &mut [f32]) -> f32;
    /// ASL1.
    fn asl1[](&Asl1<f32>, &[f32], &[f32], &mut [f32]) -> f32;
    /// Softmax cross-entropy.
    fn softmax_cross_entropy[](&SoftmaxCrossEntropy, &[f32], &[i32], &mut [f32]) -> f32;
    /// Softmax focal loss.
    fn softmax_focal[](&SoftmaxFocal<f32>, &[f32], &[i32], &mut [f32]) -> f32;
    /// GHM-C or GHM-R on one batch.
    fn ghm[K: DeviceKind, const BINS: usize](
        &mut Ghm<f32, K, BINS>,
        &[f32],
        &[f32],
        Option<&[f32]>,
        &mut [f32],
    ) -> f32;
    /// GHM on device buffers.
    fn ghm_on_device[K: DeviceKind, const BINS: usize](
        &mut Ghm<f32, K, BINS>,
        &DeviceBuffer,
        &DeviceBuffer,
        Option<&DeviceBuffer>,
        &mut DeviceBuffer,
    ) -> f32;
    /// OHEM.
    fn ohem[const K: usize](&Ohem<f32, K>, &[f32], Option<&[f32]>) -> Vec<usize>;
    /// OHEM with NMS per label.
    fn ohem_per_label[L: ClassLabel, const K: usize](
        &Ohem<f32, K>,
        &[f32],
        Option<&[f32]>,
        &[L],
    ) -> Vec<usize>;
}
