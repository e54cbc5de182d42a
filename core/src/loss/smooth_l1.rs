//! Smooth L1 (Huber with slope 1), as PyTorch's `smooth_l1_loss`.
//!
//! ```text
//! d = pred - target
//! L = 0.5 d^2 / beta        if |d| < beta        dL/dpred = d / beta
//!     |d| - 0.5 beta        otherwise            dL/dpred = sign(d)   (sign(0) = 0)
//! ```
//! `beta = 0` is plain L1 (PyTorch's rule). Fast R-CNN uses `beta = 1`; mmdetection's
//! RetinaNet config uses `1/9`. `Mean` divides by the number of elements, or by
//! `avg_factor + eps` when given one (`with_avg_factor`, mmdetection's `weight_reduce_loss`; see
//! [`Reduction`](crate::Reduction)): `SmoothL1::new(0)?.with_avg_factor(num_pos)?` is
//! mmdetection's L1 box loss over the positives.
//! Accuracy: 1e-5 relative (`F32_REL`) in f32, 1e-10 relative (`F64_REL`) in f64,
//! against the exact value (host-tests `tolerance.rs`).
//!
//! # Errors
//! `new`: `InvalidParameter("beta")` unless finite and `>= 0`; `with_avg_factor`:
//! `InvalidParameter("avg_factor")` unless finite and `>= 0`. Calls:
//! `InvalidParameter("avg_factor")` for `Sum` with a factor (checked first), `LengthMismatch`,
//! `NonFinite` (pred or target).

use super::elementwise::{self, Each, Output};
use crate::check::Targets;
use crate::{check, Error, Real, Reduction};

/// Smooth L1 loss between predictions and targets.
///
/// # Examples
/// ```
/// use hardmine::{Reduction, SmoothL1};
/// let l = SmoothL1::new(1.0f32)?.with_reduction(Reduction::Sum);
/// assert_eq!(l.value(&[0.5, 3.0], &[0.0, 0.0])?, 0.125 + 2.5);
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SmoothL1<T> {
    beta: T,
    reduction: Reduction,
    avg_factor: Option<T>,
}

impl<T: Real> SmoothL1<T> {
    /// Smooth L1 with threshold `beta >= 0`, reduced by `Mean`.
    ///
    /// # Errors
    /// `InvalidParameter("beta")`.
    pub fn new(beta: T) -> Result<Self, Error> {
        check::non_negative(beta, "beta").map(|()| Self {
            beta,
            reduction: Reduction::Mean,
            avg_factor: None,
        })
    }

    super::reduction_accessors!();

    super::avg_factor_accessors!();

    /// Its threshold.
    pub fn beta(&self) -> T {
        self.beta
    }

    #[inline]
    fn element(&self, d: T) -> (T, T) {
        let a = d.abs();
        let sign = if d > T::ZERO {
            T::ONE
        } else if d < T::ZERO {
            -T::ONE
        } else {
            T::ZERO
        };
        if a < self.beta {
            (T::HALF * d * d / self.beta, d / self.beta)
        } else {
            (a - T::HALF * self.beta, sign)
        }
    }

    fn run(&self, pred: &[T], target: &[T], out: Output<'_, T>) -> Result<T, Error> {
        elementwise::run(
            (self.reduction, self.avg_factor.map(T::widen)),
            pred,
            target,
            None,
            Targets::Any,
            out,
            Each(|p, t| self.element(p - t)),
        )
    }

    super::entry_points!(
        <> (pred: &[T], target: &[T]),
        value: "The reduced loss.",
        grad: "The reduced loss, with its gradient with respect to `pred` written to `grad`.",
        per_element: "The per-element losses written to `out`.",
    );
}
