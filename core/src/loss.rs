//! Losses: binary, softmax and box regression, each generic over [`Real`](crate::Real).

/// The three entry points every loss offers over its private `run(inputs.., Output)`:
/// `value`, `value_and_grad` and `per_element` (DESIGN §3), each documented by the line the
/// loss gives. A row-wise loss (`rows` first: every `rowwise::run` loss and the label form) takes its inputs
/// in `run` as one tuple, which it hands on to its row pass; the element-wise losses take them
/// one by one (a tuple there changed LLVM's inlining of the focal pass and cost the firmware
/// 2.4 KB of stack).
macro_rules! entry_points {
    (@run $self:ident, rows, ($($arg:ident),*), $out:expr) => {
        $self.run(($($arg),*), $out)
    };
    (@run $self:ident, , ($($arg:ident),*), $out:expr) => {
        $self.run($($arg,)* $out)
    };
    (
        $($rows:ident)? <$($g:ident: $bound:path),*> ($($arg:ident: $ty:ty),*),
        value: $value_doc:literal,
        grad: $grad_doc:literal,
        per_element: $per_doc:literal $(,)?
    ) => {
        #[doc = $value_doc]
        ///
        /// # Errors
        /// See the module documentation.
        pub fn value<$($g: $bound),*>(&self, $($arg: $ty),*) -> Result<T, Error> {
            $crate::loss::entry_points!(@run self, $($rows)?, ($($arg),*), Output::Nothing)
        }

        #[doc = $grad_doc]
        ///
        /// # Errors
        /// See the module documentation; `grad` must have the first input's length.
        pub fn value_and_grad<$($g: $bound),*>(
            &self,
            $($arg: $ty,)*
            grad: &mut [T],
        ) -> Result<T, Error> {
            $crate::loss::entry_points!(@run self, $($rows)?, ($($arg),*), Output::Grad(grad))
        }

        #[doc = $per_doc]
        ///
        /// # Errors
        /// See the module documentation; `out` must have the length stated above.
        pub fn per_element<$($g: $bound),*>(
            &self,
            $($arg: $ty,)*
            out: &mut [T],
        ) -> Result<(), Error> {
            $crate::loss::entry_points!(@run self, $($rows)?, ($($arg),*), Output::PerElement(out))
                .map(|_| ())
        }
    };
}
pub(crate) use entry_points;

/// `with_reduction` and `reduction` of a loss with a `reduction` field (`const` ones where the
/// loss's constructor is `const`).
macro_rules! reduction_accessors {
    ($($c:tt)?) => {
        /// The same loss with another reduction.
        pub $($c)? fn with_reduction(self, reduction: Reduction) -> Self {
            Self { reduction, ..self }
        }

        /// Its reduction.
        pub $($c)? fn reduction(&self) -> Reduction {
            self.reduction
        }
    };
}
pub(crate) use reduction_accessors;

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
