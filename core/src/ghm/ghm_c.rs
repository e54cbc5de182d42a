//! GHM-C, the gradient-harmonized classification loss: the kind and the constructor.

use super::harmonized::{FastChunk, Ghm, GhmKind};
use crate::check::{self, Targets};
use crate::kernel::{staged, Hard, Logistic};
use crate::{Error, Real};

/// GHM-C's kind: BCE on logits, gradient norm `|sigma(x) - t|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Classification;

impl crate::num::private::Sealed for Classification {}

impl<T: Real> GhmKind<T> for Classification {
    const TARGETS: Targets = Targets::Unit;

    #[inline]
    fn element(&self, x: T, t: T) -> (T, T, T) {
        let l = Logistic::new(x.widen());
        let t = t.widen();
        let grad = T::narrow(l.bce_grad(t));
        (grad.abs(), T::narrow(l.bce(t)), grad)
    }

    #[inline]
    fn fast_block(&self, xs: &[T], ts: &[T], label_weights: Option<&[T]>) -> bool {
        // One pass: valid, and every target hard (which makes the range checks unnecessary).
        let (valid, hard) = check::screen(xs, ts, label_weights, Targets::Unit);
        valid && hard
    }

    /// Hard targets: the gradient `sigma(x) - t` is one logistic value (no cancellation), in
    /// `T`, and its norm is `1 - p_t`. The logistic's stages run first over the chunk (into
    /// `norm` and `loss` as scratch), see `kernel::staged`.
    #[inline(always)]
    fn fast<const N: usize>(&self, chunk: FastChunk<'_, T, N>) {
        let FastChunk {
            x,
            t,
            norm,
            loss,
            grad,
        } = chunk;
        let mut e = [T::Stage::default(); N];
        staged(x, &mut e, loss);
        let out = norm.iter_mut().zip(loss.iter_mut()).zip(grad.iter_mut());
        for ((((norm, loss), grad), (&x, &t)), &e) in out.zip(x.iter().zip(t)).zip(&e) {
            let h = Hard::new(x, t, e, *loss);
            (*norm, *loss, *grad) = (h.q, h.ce, T::flip(t, h.q));
        }
    }
}

/// GHM-C, the gradient-harmonized classification loss (Li, Liu, Wang, AAAI 2019), with
/// mmdetection 3.x `GHMC` semantics.
///
/// ```text
/// g_i  = |sigma(x_i) - t_i|                    (exact: |(1-t) sigma(x) - t sigma(-x)|)
/// valid_i = label_weight_i > 0;  bins, EMA, D_b, n as in `GradientDensity`
/// L    = loss_weight / n * sum_b (sum_{valid i in b} bce(x_i, t_i)) / D_b
/// dL/dx_i = loss_weight / (n * D_b(i)) * (sigma(x_i) - t_i)    (0 for masked elements)
/// ```
/// Weights, `tot` and `n` are constants in the backward pass (mmdetection detaches them). One
/// call is one batch of one FPN level: it advances the moving average once. mmdetection's
/// defaults: `bins = 10`, `momentum = 0`, `loss_weight = 1`; the paper's RetinaNet setting is
/// 30 bins and momentum 0.75. Label weights only mask (> 0 is valid); they do not scale the
/// loss, exactly as in mmdetection. It takes no `avg_factor`: GHM normalises by its own `tot`
/// (mmdetection's `GHMC` has no `avg_factor` argument).
///
/// Streaming: [`Ghm::observe`](crate::Ghm::observe) any number of chunks (or merge histograms from workers), then
/// [`Ghm::finish`](crate::Ghm::finish) once, then [`Ghm::apply`](crate::Ghm::apply) each chunk; the partial losses add up to the
/// one-shot [`Ghm::value_and_grad`](crate::Ghm::value_and_grad), whose memory is `O(BINS)` whatever the batch size.
/// Accuracy: 1e-5 relative (`F32_REL`) in f32, 1e-10 relative (`F64_REL`) in f64,
/// against the exact value (host-tests `tolerance.rs`).
///
/// # Errors
/// `new`: `InvalidParameter("bins" | "momentum" | "loss_weight")`. Calls: `LengthMismatch`,
/// `NonFinite` (logit, target or label weight), `InvalidTarget` (outside `[0, 1]`). After an
/// `Err` the moving average and any histogram passed in are unchanged.
///
/// # Examples
/// ```
/// use hardmine::GhmC;
/// let mut ghm = GhmC::<f32, 30>::new(30, 0.75, 1.0)?;
/// let logits = [-4.0, -3.5, 2.0, -0.1];
/// let targets = [0.0, 0.0, 1.0, 1.0];
/// let mut grad = [0.0; 4];
/// let loss = ghm.value_and_grad(&logits, &targets, None, &mut grad)?;
/// assert!(loss > 0.0 && grad[3] < 0.0);
/// # Ok::<(), hardmine::Error>(())
/// ```
pub type GhmC<T, const BINS: usize> = Ghm<T, Classification, BINS>;

impl<T: Real, const BINS: usize> Ghm<T, Classification, BINS> {
    /// GHM-C over `bins <= BINS` bins with EMA `momentum` in `[0, 1)` and `loss_weight >= 0`.
    ///
    /// # Errors
    /// `InvalidParameter("bins" | "momentum" | "loss_weight")`.
    pub fn new(bins: usize, momentum: T, loss_weight: T) -> Result<Self, Error> {
        Self::with_kind(Classification, bins, momentum, loss_weight)
    }
}
