//! How per-element losses become the returned scalar.

/// Reduction of per-element losses, as in PyTorch's `reduction=` argument.
///
/// The scalar returned by `value` and `value_and_grad` is the sum for `None` and `Sum`, and
/// the mean for `Mean`; the gradient is always the gradient of that scalar. For `None` the
/// per-element losses themselves come from `per_element`. Which count a mean divides by is
/// stated by each loss (all elements for element-wise losses, non-ignored rows for softmax).
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

impl Reduction {
    /// The divisor a mean over `count` elements uses, or `None` when this reduction sums.
    pub(crate) const fn divisor(self, count: usize) -> Option<usize> {
        match self {
            Reduction::Mean => Some(count),
            Reduction::None | Reduction::Sum => None,
        }
    }
}
