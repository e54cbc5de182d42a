#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// Panic-freedom (DESIGN §4): no unwrap, expect, panic or panicking index outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod adversarial;
// The core's validation rules, for its sibling crates (the detector, the GPU crate), which must
// answer bad input exactly as the core does; not part of the documented API.
#[doc(hidden)]
pub mod check;
mod error;
mod ghm;
mod kernel;
mod label;
mod loss;
mod mining;
mod num;
mod reduction;
mod rng;

pub use adversarial::{ChannelBlockRotation, DropoutMask, MapShape, OcclusionSearch};
pub use error::Error;
pub use ghm::{
    BinWeights, Classification, Ghm, GhmC, GhmKind, GhmR, GradientDensity, GradientHistogram,
    Regression,
};
pub use label::ClassLabel;
pub use loss::{
    Asl1, BceWithLogits, DistributionCe, MovingAverageNormalizer, SigmoidFocal, SigmoidFocalLabels,
    SmoothL1, SoftmaxCrossEntropy, SoftmaxFocal, Weighting,
};
pub use mining::{
    check_boxes, iou, nms, BalancedSampler, Budget, Census, CensusReport, Group, Ohem, OhemSampler,
    SOhem, SOhemSchedule, Selection, TopK, MAX_STRATA,
};
pub use num::{Real, FUSED_MULTIPLY_ADD, Q16, Q48};
// The crate-private kernels as functions, for the host tests that sweep them.
#[doc(hidden)]
pub use num::kernels;
pub use reduction::{Reduction, AVG_FACTOR_EPS};
pub use rng::SplitMix64;
