//! Softmax cross-entropy on class labels, as PyTorch's `cross_entropy`.
//!
//! ```text
//! L_i      = -ln softmax(x_i)_y = ln sum_j e^(x_ij) - x_iy
//! dL/dx_ij = p_ij              for j != y
//! dL/dx_iy = -(1 - p_iy) = -sum_{j != y} p_ij       (a separate sum, never 1 - p)
//! ```
//! Logits are row-major `[rows x classes]`, one label per row. A negative label ignores its row
//! (PyTorch's `ignore_index`); `Mean` divides by the number of rows not ignored (0 when all are),
//! or by `avg_factor + eps` when given one ([`SoftmaxCrossEntropy::with_avg_factor`],
//! mmdetection's `weight_reduce_loss`; ignored rows still add nothing).
//!
//! Stability: max-shifted log-sum-exp; `ln p_y` from `ln_1p(-(1 - p_y))` when `p_y > 1/2`, so
//! near-certain rows keep full relative accuracy. Finite for all finite logits (`+-1e4` too).
//! Accuracy: 1e-5 relative (`F32_REL`) in f32, 1e-10 relative (`F64_REL`) in f64,
//! against the exact value (host-tests `tolerance.rs`).
//!
//! # Errors
//! `new`: `InvalidParameter("classes")` for 0 classes; `with_avg_factor`:
//! `InvalidParameter("avg_factor")` unless finite and `>= 0`. Calls:
//! `InvalidParameter("avg_factor")` for `Sum` with a factor (checked first), `LengthMismatch` (logits must be
//! `rows * classes`; the gradient as the logits, per-row output as the labels), `NonFinite`
//! (logit), `InvalidTarget` (a label at or above `classes`; the index is the row).

use super::elementwise::Output;
use super::rowwise::{self, Row};
use crate::kernel::SoftmaxRow;
use crate::{ClassLabel, Error, Real, Reduction};

/// Softmax cross-entropy over `rows x classes` logits.
///
/// # Examples
/// ```
/// use hardmine::SoftmaxCrossEntropy;
/// let ce = SoftmaxCrossEntropy::new(3)?;
/// let loss = ce.value(&[2.0f64, 0.0, 0.0, 0.0, 0.0, 0.0], &[0i32, -1])?;
/// assert!((loss - (2.0f64.exp() + 2.0).ln() + 2.0).abs() < 1e-12);
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SoftmaxCrossEntropy {
    classes: usize,
    reduction: Reduction,
    avg_factor: Option<f64>,
}

/// Loss of one row and, when asked, its gradient (unreduced) written to `grad`.
pub(crate) fn row_loss<T: Real>(row: Row<'_, T>, grad: Option<&mut [T]>) -> T {
    let mut grad = grad;
    let stats = SoftmaxRow::new(row.logits, row.class, grad.as_deref_mut());
    if let Some(grad) = grad {
        // p_j for j != y; -(1 - p_y) = -q for the label, never by subtraction.
        stats.probs(grad);
        if let Some(g) = grad.get_mut(row.class) {
            *g = -stats.q;
        }
    }
    -stats.ln_p
}

impl SoftmaxCrossEntropy {
    /// Cross-entropy over `classes` classes, reduced by `Mean`.
    ///
    /// # Errors
    /// `InvalidParameter("classes")` when `classes` is 0.
    pub const fn new(classes: usize) -> Result<Self, Error> {
        if classes == 0 {
            return Err(Error::InvalidParameter("classes"));
        }
        Ok(Self {
            classes,
            reduction: Reduction::Mean,
            avg_factor: None,
        })
    }

    super::reduction_accessors!(const);

    super::avg_factor_accessors!(f64);

    /// The number of classes.
    pub const fn classes(&self) -> usize {
        self.classes
    }

    fn run<T: Real, L: ClassLabel>(
        &self,
        rows: (&[T], &[L]),
        out: Output<'_, T>,
    ) -> Result<T, Error> {
        rowwise::run(
            (
                self.reduction,
                self.avg_factor.map(T::Acc::from_f64),
                self.classes,
            ),
            rows,
            out,
            (|_| T::ONE, row_loss),
        )
    }

    super::entry_points!(
        rows <T: Real, L: ClassLabel> (logits: &[T], labels: &[L]),
        value: "The reduced loss.",
        grad: "The reduced loss, with its gradient with respect to the logits written to `grad`.",
        per_element: "The per-row losses (0 for ignored rows) written to `out`, one per label.",
    );
}
