//! Shared loss maths: the logistic pair behind every binary loss and the softmax statistics
//! behind every softmax loss. Both are written so no result is formed by cancelling
//! subtraction (DESIGN §5).

mod logistic;
mod softmax;

pub(crate) use logistic::{logistic_parts, Logistic};
pub(crate) use softmax::SoftmaxRow;
