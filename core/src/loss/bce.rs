//! Binary cross-entropy with logits, as PyTorch's `binary_cross_entropy_with_logits`.
//!
//! ```text
//! L(x, t)  = w * [ max(x, 0) - t x + ln(1 + e^-|x|) ]        (= -w [t ln s + (1-t) ln(1-s)])
//! dL/dx    = w * [ (1 - t) sigma(x) - t sigma(-x) ]          (= w (sigma(x) - t))
//! ```
//! Targets may be soft (any value in `[0, 1]`); optional per-element weights `w` multiply the
//! loss. `Mean` divides by the number of elements, as PyTorch does (not by the weights' sum),
//! or by `avg_factor + eps` when given one ([`BceWithLogits::with_avg_factor`],
//! mmdetection's `weight_reduce_loss`).
//!
//! Stability: the loss uses PyTorch's stable form with `ln_1p`, and the gradient is written as a
//! difference of two logistic values, so it is exact for hard targets at any logit (no
//! `sigma(x) - 1` cancellation). Finite for every finite logit, `+-1e4` included.
//! Accuracy: 1e-5 relative (`F32_REL`) in f32, 1e-10 relative (`F64_REL`) in f64,
//! against the exact value (host-tests `tolerance.rs`).
//!
//! # Errors
//! `with_avg_factor`: `InvalidParameter("avg_factor")` unless finite and `>= 0`. Calls:
//! `InvalidParameter("avg_factor")` for `Sum` with a factor (checked first),
//! `LengthMismatch` (targets, weights, output), `NonFinite` (logit, target or weight),
//! `InvalidTarget` (target outside `[0, 1]`).

use super::elementwise::{self, Each, HardLogit, Output, Split};
use crate::check::Targets;
use crate::kernel::{Hard, Logistic};
use crate::{Error, Real, Reduction};

/// BCE of one logit against a hard target (0 or 1), in `T` (the gradient `-sigma(-x)` or
/// `sigma(x)` is one term: no cancellation), from its logistic quantities `h`; branch-free,
/// so a loop of it vectorises.
#[inline(always)]
fn bce_hard<T: Real>(t: T, h: Hard<T>) -> (T, T) {
    (h.ce, T::flip(t, h.q))
}

/// Binary cross-entropy on logits.
///
/// # Examples
/// ```
/// use hardmine::{BceWithLogits, Reduction};
/// let bce = BceWithLogits::new().with_reduction(Reduction::Sum);
/// let loss = bce.value(&[0.0f32, 2.0], &[1.0, 0.0], None)?;
/// assert!((loss - (core::f32::consts::LN_2 + 2.126_928)).abs() < 1e-5);
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BceWithLogits {
    reduction: Reduction,
    avg_factor: Option<f64>,
}

impl BceWithLogits {
    /// The loss with `Reduction::Mean`.
    pub const fn new() -> Self {
        Self {
            reduction: Reduction::Mean,
            avg_factor: None,
        }
    }

    super::reduction_accessors!(const);

    super::avg_factor_accessors!(f64);

    /// The loss of one logit against target `t` (unvalidated), and its gradient.
    #[inline]
    pub(crate) fn element<T: Real>(x: T, t: T) -> (T, T) {
        // In the accumulator type, rounded once (see `SigmoidFocal::element`).
        let (x, t) = (x.widen(), t.widen());
        let l = Logistic::new(x);
        (T::narrow(l.bce(t)), T::narrow(l.bce_grad(t)))
    }

    fn run<T: Real>(
        &self,
        logits: &[T],
        targets: &[T],
        weights: Option<&[T]>,
        out: Output<'_, T>,
    ) -> Result<T, Error> {
        // Hard targets (the detection case) are evaluated in `T`: the gradient's two terms
        // cannot cancel then. Soft targets go through the accumulator type.
        elementwise::run(
            (self.reduction, self.avg_factor.map(T::Acc::from_f64)),
            logits,
            targets,
            weights,
            Targets::Unit,
            out,
            Split(HardLogit(bce_hard), Each(Self::element)),
        )
    }

    super::entry_points!(
        <T: Real> (logits: &[T], targets: &[T], weights: Option<&[T]>),
        value: "The reduced loss.",
        grad: "The reduced loss, with its gradient with respect to the logits written to `grad`.",
        per_element: "The weighted per-element losses written to `out`.",
    );
}

#[cfg(test)]
mod tests {
    use super::BceWithLogits;
    use crate::Reduction;

    #[test]
    fn saturated_logits_are_exact() {
        let bce = BceWithLogits::new().with_reduction(Reduction::None);
        let mut out = [0.0f32; 4];
        bce.per_element(
            &[1e4, -1e4, 1e4, -1e4],
            &[1.0, 0.0, 0.0, 1.0],
            None,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [0.0, 0.0, 1e4, 1e4]);
        let mut g = [0.0f32; 2];
        bce.value_and_grad(&[30.0f32, -30.0], &[1.0, 0.0], None, &mut g)
            .unwrap();
        // sigma(30) - 1 = -sigma(-30), not 0.
        assert!(
            (g[0] + 9.357623e-14).abs() < 1e-19,
            "grad(30, 1) = {}",
            g[0]
        );
        assert!(
            (g[1] - 9.357623e-14).abs() < 1e-19,
            "grad(-30, 0) = {}",
            g[1]
        );
    }
}
