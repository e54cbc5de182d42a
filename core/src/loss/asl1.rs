//! Authentic smooth L1 (ASL1), the box loss GHM-R is built on (Li et al., AAAI 2019).
//!
//! ```text
//! d = pred - target
//! L = sqrt(d^2 + mu^2) - mu  =  d^2 / (sqrt(d^2 + mu^2) + mu)     (no cancellation)
//!   evaluated with r = min(|d|, mu) / max(|d|, mu): no small number is squared, nothing
//!   overflows, and Q15.16 keeps its relative precision
//! dL/dpred = d / sqrt(d^2 + mu^2)          in (-1, 1): the gradient norm GHM-R bins
//! ```
//! mmdetection's `GHMR` default is `mu = 0.02`. `Mean` divides by the number of elements, or by
//! `avg_factor + eps` when given one (`with_avg_factor`, mmdetection's `weight_reduce_loss`; see
//! [`Reduction`](crate::Reduction)).
//! Accuracy: 1e-5 relative (`F32_REL`) in f32, 1e-10 relative (`F64_REL`) in f64,
//! against the exact value (host-tests `tolerance.rs`).
//!
//! # Errors
//! `new`: `InvalidParameter("mu")` unless finite and `> 0`; `with_avg_factor`:
//! `InvalidParameter("avg_factor")` unless finite and `>= 0`. Calls:
//! `InvalidParameter("avg_factor")` for `Sum` with a factor (checked first), `LengthMismatch`,
//! `NonFinite` (pred or target).

use super::elementwise::{self, Each, Output};
use crate::check::Targets;
use crate::{check, Error, Real, Reduction};

/// ASL1 loss between predictions and targets.
///
/// # Examples
/// ```
/// use hardmine::{Asl1, Reduction};
/// let l = Asl1::new(0.02f64)?.with_reduction(Reduction::Sum);
/// let v = l.value(&[1.0], &[0.0])?;
/// assert!((v - ((1.0f64 + 0.0004).sqrt() - 0.02)).abs() < 1e-15);
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Asl1<T> {
    mu: T,
    reduction: Reduction,
    avg_factor: Option<T>,
}

impl<T: Real> Asl1<T> {
    /// ASL1 with smoothing `mu > 0`, reduced by `Mean`.
    ///
    /// # Errors
    /// `InvalidParameter("mu")`.
    pub fn new(mu: T) -> Result<Self, Error> {
        check::positive(mu, "mu").map(|()| Self {
            mu,
            reduction: Reduction::Mean,
            avg_factor: None,
        })
    }

    super::reduction_accessors!();

    super::avg_factor_accessors!();

    /// Its smoothing parameter.
    pub fn mu(&self) -> T {
        self.mu
    }

    /// Loss, gradient and gradient norm `|d| / sqrt(d^2 + mu^2)` of one difference.
    #[inline]
    pub(crate) fn element(&self, d: T) -> (T, T, T) {
        // Scaled by the larger of |d| and mu so no intermediate is a square of a small number
        // (d^2 cannot overflow, and Q15.16 keeps its precision):
        // root = big * sqrt(1 + r^2), r = small / big in [0, 1].
        let a = d.abs();
        let (big, small) = if a > self.mu {
            (a, self.mu)
        } else {
            (self.mu, a)
        };
        let r = small / big;
        let stretch = (T::ONE + r * r).sqrt();
        let (loss, norm) = if a > self.mu {
            // root >= sqrt(2) mu, so `root - mu` does not cancel.
            (a * stretch - self.mu, T::ONE / stretch)
        } else {
            // sqrt(d^2 + mu^2) - mu = d^2 / (root + mu) = mu r^2 / (stretch + 1).
            (self.mu * r * r / (stretch + T::ONE), r / stretch)
        };
        (loss, if d < T::ZERO { -norm } else { norm }, norm)
    }

    fn run(&self, pred: &[T], target: &[T], out: Output<'_, T>) -> Result<T, Error> {
        elementwise::run(
            (self.reduction, self.avg_factor.map(T::widen)),
            pred,
            target,
            None,
            Targets::Any,
            out,
            Each(|p, t| {
                let (l, g, _) = self.element(p - t);
                (l, g)
            }),
        )
    }

    super::entry_points!(
        <> (pred: &[T], target: &[T]),
        value: "The reduced loss.",
        grad: "The reduced loss, with its gradient with respect to `pred` written to `grad`.",
        per_element: "The per-element losses written to `out`.",
    );
}
