//! Losses: binary, softmax and box regression, each generic over [`Real`](crate::Real).

mod asl1;
mod bce;
mod distribution_ce;
pub(crate) mod elementwise;
mod rowwise;
mod sigmoid_focal;
mod sigmoid_focal_labels;
mod smooth_l1;
mod softmax_ce;
mod softmax_focal;

pub use asl1::Asl1;
pub use bce::BceWithLogits;
pub use distribution_ce::{DistributionCe, Weighting};
pub use sigmoid_focal::SigmoidFocal;
pub use sigmoid_focal_labels::SigmoidFocalLabels;
pub use smooth_l1::SmoothL1;
pub use softmax_ce::SoftmaxCrossEntropy;
pub use softmax_focal::SoftmaxFocal;
