//! Softmax focal loss, as mmcv's `softmax_focal_loss`.
//!
//! ```text
//! p_t      = softmax(x_i)_y,   q = 1 - p_t = sum_{j != y} p_ij
//! L_i      = -alpha * q^gamma * ln p_t
//! dL/dx_ij = -alpha * (d_jy - p_ij) * F,   F = q^gamma * (1 - gamma * p_t * (ln p_t / q))
//! ```
//! `ln p_t / q` tends to -1 as `q -> 0`; it is taken as -1 where `q` is 0, so the gradient stays
//! finite for `0 < gamma < 1` at a saturated softmax (the textbook `q^(gamma - 1)` is infinite
//! there). mmcv's default is `alpha = 0.25`, `gamma = 2`; alpha is one scalar for all classes.
//! `Mean` divides by the number of labelled rows, or by
//! `avg_factor + eps` when given one (`with_avg_factor`, mmdetection's `weight_reduce_loss`; see
//! [`Reduction`](crate::Reduction))); a negative label ignores its row.
//! Accuracy: 1e-5 relative (`F32_REL`) in f32, 1e-10 relative (`F64_REL`) in f64,
//! against the exact value (host-tests `tolerance.rs`).
//!
//! # Errors
//! `new`: `InvalidParameter("alpha")` outside `[0, 1]`, `InvalidParameter("gamma")` unless
//! finite and `>= 0`, `InvalidParameter("classes")` for 0 classes; `with_avg_factor`:
//! `InvalidParameter("avg_factor")` unless finite and `>= 0`. Calls: as
//! [`SoftmaxCrossEntropy`](crate::SoftmaxCrossEntropy).

use super::elementwise::Output;
use super::rowwise::{self, Row};
use crate::kernel::SoftmaxRow;
use crate::{check, ClassLabel, Error, Real, Reduction};

/// Softmax focal loss over `rows x classes` logits.
///
/// # Examples
/// ```
/// use hardmine::SoftmaxFocal;
/// let focal = SoftmaxFocal::new(0.25f32, 2.0, 4)?;
/// let mut grad = [0.0; 4];
/// let loss = focal.value_and_grad(&[3.0, 0.0, -1.0, 0.5], &[0u8], &mut grad)?;
/// assert!(loss > 0.0 && grad[0] < 0.0);
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SoftmaxFocal<T> {
    alpha: T,
    gamma: T,
    classes: usize,
    reduction: Reduction,
    avg_factor: Option<T>,
}

impl<T: Real> SoftmaxFocal<T> {
    /// The loss over `classes` classes, reduced by `Mean`.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn new(alpha: T, gamma: T, classes: usize) -> Result<Self, Error> {
        check::unit(alpha, "alpha")?;
        check::non_negative(gamma, "gamma")?;
        check::parameter(classes > 0, "classes")?;
        Ok(Self {
            alpha,
            gamma,
            classes,
            reduction: Reduction::Mean,
            avg_factor: None,
        })
    }

    super::reduction_accessors!();

    super::avg_factor_accessors!();

    /// Its balance `alpha`.
    pub fn alpha(&self) -> T {
        self.alpha
    }

    /// Its focusing parameter.
    pub fn gamma(&self) -> T {
        self.gamma
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    fn row_loss(&self, row: Row<'_, T>, grad: Option<&mut [T]>) -> T {
        let mut grad = grad;
        let s = SoftmaxRow::new(row.logits, row.class, grad.as_deref_mut());
        let mod_factor = s.q.powf(self.gamma);
        if let Some(grad) = grad {
            let ratio = if s.q > T::ZERO { s.ln_p / s.q } else { -T::ONE };
            let f = mod_factor * (T::ONE - self.gamma * s.p * ratio);
            s.probs(grad);
            let scale = self.alpha * f;
            grad.iter_mut().for_each(|g| *g = scale * *g);
            if let Some(g) = grad.get_mut(row.class) {
                *g = -(self.alpha * s.q * f);
            }
        }
        -(self.alpha * mod_factor * s.ln_p)
    }

    fn run<L: ClassLabel>(&self, rows: (&[T], &[L]), out: Output<'_, T>) -> Result<T, Error> {
        rowwise::run(
            (self.reduction, self.avg_factor.map(T::widen), self.classes),
            rows,
            out,
            (|_| T::ONE, |row, g| self.row_loss(row, g)),
        )
    }

    super::entry_points!(
        rows <L: ClassLabel> (logits: &[T], labels: &[L]),
        value: "The reduced loss.",
        grad: "The reduced loss, with its gradient with respect to the logits written to `grad`.",
        per_element: "The per-row losses written to `out`, one per label.",
    );
}
