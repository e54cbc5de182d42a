//! GHM-R, the gradient-harmonized regression loss on ASL1: the kind and the constructor.

use super::harmonized::{FastChunk, Ghm, GhmKind};
use crate::check::{self, Targets};
use crate::{Asl1, Error, Real};

/// GHM-R's kind: ASL1 on box deltas, gradient norm `|d| / sqrt(d^2 + mu^2)`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Regression<T> {
    asl1: Asl1<T>,
}

impl<T> crate::num::private::Sealed for Regression<T> {}

impl<T: Real> Regression<T> {
    /// The ASL1 smoothing `mu`.
    pub fn mu(&self) -> T {
        self.asl1.mu()
    }
}

impl<T: Real> GhmKind<T> for Regression<T> {
    const TARGETS: Targets = Targets::Any;

    #[inline]
    fn element(&self, p: T, t: T) -> (T, T, T) {
        let (loss, grad, norm) = self.asl1.element(p - t);
        (norm, loss, grad)
    }

    #[inline]
    fn fast_block(&self, xs: &[T], ts: &[T], label_weights: Option<&[T]>) -> bool {
        check::all_valid(xs, ts, label_weights, Targets::Any)
    }

    #[inline(always)]
    fn fast<const N: usize>(&self, chunk: FastChunk<'_, T, N>) {
        let FastChunk {
            x: p,
            t,
            norm,
            loss,
            grad,
        } = chunk;
        let out = norm.iter_mut().zip(loss.iter_mut()).zip(grad.iter_mut());
        for (((norm, loss), grad), (&p, &t)) in out.zip(p.iter().zip(t)) {
            (*loss, *grad, *norm) = self.asl1.element(p - t);
        }
    }
}

/// GHM-R, the gradient-harmonized box-regression loss (Li, Liu, Wang, AAAI 2019), with
/// mmdetection 3.x `GHMR` semantics, on the ASL1 loss.
///
/// ```text
/// d_i  = pred_i - target_i,   l_i = sqrt(d_i^2 + mu^2) - mu          (ASL1)
/// g_i  = |d_i| / sqrt(d_i^2 + mu^2)   in [0, 1)
/// valid_i = label_weight_i > 0;  bins, EMA, D_b, n as in `GradientDensity`
/// L    = loss_weight / n * sum_b (sum_{valid i in b} l_i) / D_b
/// dL/dpred_i = loss_weight / (n * D_b(i)) * d_i / sqrt(d_i^2 + mu^2)
/// ```
/// mmdetection's `tot` is the sum of the label weights floored at 1 (not a count); it cancels
/// exactly, as in GHM-C. mmdetection's defaults: `mu = 0.02`, `bins = 10`, `momentum = 0`,
/// `loss_weight = 1`. The streaming API is GHM-C's. Like GHM-C it takes no `avg_factor` (its
/// own `tot` normalises it, as in mmdetection).
/// Accuracy: 1e-5 relative (`F32_REL`) in f32, 1e-10 relative (`F64_REL`) in f64,
/// against the exact value (host-tests `tolerance.rs`).
///
/// # Errors
/// `new`: `InvalidParameter("mu" | "bins" | "momentum" | "loss_weight")`. Calls:
/// `LengthMismatch`, `NonFinite` (pred, target or label weight). After an `Err` the moving
/// average and any histogram passed in are unchanged.
///
/// # Examples
/// ```
/// use hardmine::GhmR;
/// let mut ghm = GhmR::<f64, 10>::new(0.02, 10, 0.0, 1.0)?;
/// let mut grad = [0.0; 3];
/// let loss = ghm.value_and_grad(&[0.5, 0.1, -0.2], &[0.4, 0.1, 0.3], None, &mut grad)?;
/// assert!(loss > 0.0 && grad[2] < 0.0);
/// # Ok::<(), hardmine::Error>(())
/// ```
pub type GhmR<T, const BINS: usize> = Ghm<T, Regression<T>, BINS>;

impl<T: Real, const BINS: usize> Ghm<T, Regression<T>, BINS> {
    /// GHM-R with ASL1 smoothing `mu > 0` over `bins <= BINS` bins, EMA `momentum` in `[0, 1)`
    /// and `loss_weight >= 0`.
    ///
    /// # Errors
    /// `InvalidParameter("mu" | "bins" | "momentum" | "loss_weight")`.
    pub fn new(mu: T, bins: usize, momentum: T, loss_weight: T) -> Result<Self, Error> {
        Self::with_kind(
            Regression {
                asl1: Asl1::new(mu)?,
            },
            bins,
            momentum,
            loss_weight,
        )
    }
}
