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

/// `with_avg_factor` and `avg_factor` of a loss with an `avg_factor` field: `Option<T>` in a
/// loss generic over `T`, `Option<f64>` (as `T::to_f64`, exact for every `Real`) in one whose
/// entry points are (`(f64)`).
macro_rules! avg_factor_accessors {
    (@doc) => {
        "The same loss normalised by a caller's factor (mmdetection's `avg_factor`, the number \
         of positive anchors in detection), as mmdetection's `weight_reduce_loss`: with \
         `Reduction::Mean` the scalar is `sum / (avg_factor + eps)` (`eps` = \
         [`AVG_FACTOR_EPS`](crate::AVG_FACTOR_EPS), `2^-23`, in every type) instead of the \
         mean, and the gradient is that scalar's; `Reduction::None` ignores it; with \
         `Reduction::Sum` every call is `Err(InvalidParameter(\"avg_factor\"))`. A factor \
         of 0 gives `sum / eps` (saturated in Q15.16). Q15.16 divides by the exact \
         `avg_factor + 2^-23` in integers (`eps` is below one LSB), rounded once. \
         [`MovingAverageNormalizer`](crate::MovingAverageNormalizer) smooths the factor over \
         steps."
    };
    () => {
        #[doc = $crate::loss::avg_factor_accessors!(@doc)]
        ///
        /// # Errors
        /// `InvalidParameter("avg_factor")` unless `avg_factor` is finite and `>= 0`.
        pub fn with_avg_factor(self, avg_factor: T) -> Result<Self, Error> {
            $crate::check::non_negative(avg_factor, "avg_factor")?;
            Ok(Self {
                avg_factor: Some(avg_factor),
                ..self
            })
        }

        /// Its normalising factor, if any (see [`with_avg_factor`](Self::with_avg_factor)).
        pub fn avg_factor(&self) -> Option<T> {
            self.avg_factor
        }
    };
    (f64) => {
        #[doc = $crate::loss::avg_factor_accessors!(@doc)]
        ///
        /// The factor is kept as an `f64` (exact for `f32`, `f64` and Q15.16), and each call
        /// takes it in its own accumulator type.
        ///
        /// # Errors
        /// `InvalidParameter("avg_factor")` unless `avg_factor` is finite and `>= 0`.
        pub fn with_avg_factor<T: Real>(self, avg_factor: T) -> Result<Self, Error> {
            $crate::check::non_negative(avg_factor, "avg_factor")?;
            Ok(Self {
                avg_factor: Some(avg_factor.to_f64()),
                ..self
            })
        }

        /// Its normalising factor, if any, as an `f64` (see
        /// [`with_avg_factor`](Self::with_avg_factor)).
        pub const fn avg_factor(&self) -> Option<f64> {
            self.avg_factor
        }
    };
}
pub(crate) use avg_factor_accessors;

mod asl1;
mod bce;
mod distribution_ce;
pub(crate) mod elementwise;
mod normalizer;
mod rowwise;
mod sigmoid_focal;
mod sigmoid_focal_labels;
mod smooth_l1;
mod softmax_ce;
mod softmax_focal;

pub use asl1::Asl1;
pub use bce::BceWithLogits;
pub use distribution_ce::{DistributionCe, Weighting};
pub use normalizer::MovingAverageNormalizer;
pub use sigmoid_focal::SigmoidFocal;
pub use sigmoid_focal_labels::SigmoidFocalLabels;
pub use smooth_l1::SmoothL1;
pub use softmax_ce::SoftmaxCrossEntropy;
pub use softmax_focal::SoftmaxFocal;
