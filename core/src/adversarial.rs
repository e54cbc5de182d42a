//! A-Fast-RCNN hard positives in feature space (Wang, Shrivastava, Gupta, CVPR 2017):
//! occlusion (ASDN targets and masks) and channel-block rotation (ASTN).

mod dropout_mask;
mod occlusion;
mod rotation;
mod shape;

pub use dropout_mask::DropoutMask;
pub use occlusion::OcclusionSearch;
pub use rotation::ChannelBlockRotation;
pub use shape::MapShape;
