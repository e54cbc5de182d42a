//! How per-element losses become the returned scalar.

use crate::{Error, Real};

/// Reduction of per-element losses, as in PyTorch's `reduction=` argument.
///
/// The scalar returned by `value` and `value_and_grad` is the sum for `None` and `Sum`, and
/// the mean for `Mean`; the gradient is always the gradient of that scalar. For `None` the
/// per-element losses themselves come from `per_element`. Which count a mean divides by is
/// stated by each loss (all elements for element-wise losses, non-ignored rows for softmax).
///
/// A loss given a caller's normalising factor (`with_avg_factor`, mmdetection's
/// `avg_factor`: the number of positive anchors in detection) follows mmdetection's
/// `weight_reduce_loss`: `Mean` returns `sum / (avg_factor + eps)` instead of the mean, with
/// `eps` = [`AVG_FACTOR_EPS`] (float32's epsilon, in every type, as mmdetection has it);
/// `None` ignores the factor; `Sum` with a factor is an error
/// (`Err(InvalidParameter("avg_factor"))`, mmdetection's `ValueError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Reduction {
    /// No reduction: `per_element` gives the vector; the scalar is their sum.
    None,
    /// Sum of the per-element losses.
    Sum,
    /// Mean of the per-element losses (the default, as in PyTorch).
    #[default]
    Mean,
}

/// The `eps` of mmdetection's `sum / (avg_factor + eps)`: `torch.finfo(torch.float32).eps`,
/// `2^-23`, whatever the type computed in. Below one Q15.16 LSB: the fixed-point path divides
/// exactly by `avg_factor + 2^-23` in integers (see [`Reduction`]'s types' docs in the
/// losses), so `avg_factor = 0` gives `sum * 2^23`, saturated, as mmdetection's `sum / eps`.
pub const AVG_FACTOR_EPS: f64 = f32::EPSILON as f64;

/// What the reduced scalar (and the gradient) is divided by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Divisor<A> {
    /// A mean's count (or total weight), `> 0`.
    Count(A),
    /// A caller's factor `f >= 0`: the division is by `f + AVG_FACTOR_EPS`.
    Factor(A),
}

impl<A: Real> Divisor<A> {
    /// `x` divided by this divisor.
    #[inline(always)]
    pub fn divide(self, x: A) -> A {
        match self {
            Divisor::Count(d) => x / d,
            Divisor::Factor(f) => x.div_avg_factor(f),
        }
    }
}

/// How a call normalises its sum, decided (and refused) before its inputs are looked at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Normalizer<A> {
    /// The sum itself (`Sum`, `None`).
    Sum,
    /// A mean over the loss's count.
    Count,
    /// mmdetection's mean over a caller's factor.
    Factor(A),
}

impl<A: Real> Normalizer<A> {
    /// The divisor, with `count` called only for a mean over the count.
    #[inline]
    pub fn divisor(self, count: impl FnOnce() -> A) -> Option<Divisor<A>> {
        match self {
            Normalizer::Sum => None,
            Normalizer::Count => Some(Divisor::Count(count())),
            // Floats: `x / (f + eps)` is a division by a count of `f + eps` (the same bits as
            // `div_avg_factor`), so only the fixed-point types take the factor's own path.
            Normalizer::Factor(f) if A::EXACT_AVG_FACTOR => Some(Divisor::Factor(f)),
            Normalizer::Factor(f) => Some(Divisor::Count(f + A::from_f64(AVG_FACTOR_EPS))),
        }
    }
}

impl Reduction {
    /// How this reduction normalises, with the loss's `avg_factor` (validated `>= 0` by its
    /// builder) in the accumulator type.
    ///
    /// # Errors
    /// `InvalidParameter("avg_factor")` for `Sum` with a factor (mmdetection's rule).
    #[inline]
    pub(crate) fn normalizer<A: Real>(self, avg_factor: Option<A>) -> Result<Normalizer<A>, Error> {
        match (self, avg_factor) {
            (Reduction::Sum, Some(_)) => Err(Error::InvalidParameter("avg_factor")),
            (Reduction::Mean, Some(f)) => Ok(Normalizer::Factor(f)),
            (Reduction::Mean, None) => Ok(Normalizer::Count),
            (Reduction::None, _) | (Reduction::Sum, None) => Ok(Normalizer::Sum),
        }
    }
}
