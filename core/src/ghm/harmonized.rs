//! The GHM engine shared by GHM-C and GHM-R: histogram, moving average, weighting.

use super::histogram::{BinWeights, GradientDensity, GradientHistogram};
use crate::{check, Error, Real};

/// One element's `(gradient norm, loss, d loss)`, or `None` when its label weight masks it.
pub(crate) type Item<T> = Result<Option<(T, T, T)>, Error>;

/// What distinguishes GHM-C from GHM-R: the per-element loss and its gradient norm.
pub trait GhmKind<T: Real>: Copy + crate::num::private::Sealed {
    /// Validates one `(input, target)` pair at `index` and returns its gradient norm in
    /// `[0, 1]`, loss and gradient.
    #[doc(hidden)]
    fn element(&self, x: T, t: T, index: usize) -> Result<(T, T, T), Error>;
}

/// A gradient-harmonized loss of kind `K` ([`GhmC`](crate::GhmC) or [`GhmR`](crate::GhmR))
/// with a histogram of at most `BINS` bins. See those aliases for the maths.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ghm<T: Real, K, const BINS: usize> {
    kind: K,
    density: GradientDensity<T, BINS>,
    loss_weight: T,
}

impl<T: Real, K: GhmKind<T>, const BINS: usize> Ghm<T, K, BINS> {
    pub(crate) fn with_kind(
        kind: K,
        bins: usize,
        momentum: T,
        loss_weight: T,
    ) -> Result<Self, Error> {
        let density = GradientDensity::new(bins, momentum)?;
        if !(loss_weight.is_finite() && loss_weight >= T::ZERO) {
            return Err(Error::InvalidParameter("loss_weight"));
        }
        Ok(Self {
            kind,
            density,
            loss_weight,
        })
    }

    /// The moving-average state.
    pub fn density(&self) -> &GradientDensity<T, BINS> {
        &self.density
    }

    /// An empty histogram for [`observe`](Self::observe).
    pub fn histogram(&self) -> GradientHistogram<BINS> {
        self.density.histogram()
    }

    fn items<'s>(
        &'s self,
        xs: &'s [T],
        ts: &'s [T],
        label_weights: Option<&'s [T]>,
    ) -> Result<impl Iterator<Item = Item<T>> + 's, Error> {
        check::length(xs.len(), ts.len())?;
        check::optional_length(xs.len(), label_weights)?;
        let mut weights = label_weights.map(|w| w.iter());
        Ok(xs.iter().zip(ts).enumerate().map(move |(i, (&x, &t))| {
            let element = self.kind.element(x, t, i)?;
            let valid = match weights.as_mut().and_then(Iterator::next) {
                Some(&w) => check::finite(w, i)? > T::ZERO,
                None => true,
            };
            Ok(valid.then_some(element))
        }))
    }

    /// Counts a chunk's gradient norms into `hist` (phase 1 of the streaming API). A label
    /// weight `<= 0` masks its element out.
    ///
    /// # Errors
    /// `LengthMismatch`, `NonFinite`, `InvalidTarget` (GHM-C); `hist` is unchanged then.
    pub fn observe(
        &self,
        hist: &mut GradientHistogram<BINS>,
        xs: &[T],
        ts: &[T],
        label_weights: Option<&[T]>,
    ) -> Result<(), Error> {
        hist.count(
            self.items(xs, ts, label_weights)?
                .map(|r| r.map(|o| o.map(|v| v.0))),
        )
    }

    /// Ends a batch (phase 2): folds its histogram into the moving average and returns the
    /// batch's weights.
    ///
    /// # Errors
    /// `InvalidParameter("bins")` for a histogram of another size; state unchanged.
    pub fn finish(&mut self, hist: &GradientHistogram<BINS>) -> Result<BinWeights<T, BINS>, Error> {
        self.density.update(hist)
    }

    /// A chunk's share of the loss under `weights`, with its gradient written to `grad` when
    /// given (phase 3). The chunk must be one that was observed for these weights; the shares
    /// of all chunks add up to the one-shot loss.
    ///
    /// # Errors
    /// As [`observe`](Self::observe), and `LengthMismatch` for `grad`.
    pub fn apply(
        &self,
        weights: &BinWeights<T, BINS>,
        xs: &[T],
        ts: &[T],
        label_weights: Option<&[T]>,
        grad: Option<&mut [T]>,
    ) -> Result<T, Error> {
        if let Some(g) = &grad {
            check::length(xs.len(), g.len())?;
        }
        weights.apply(self.loss_weight, self.items(xs, ts, label_weights)?, grad)
    }

    fn one_shot(
        &mut self,
        xs: &[T],
        ts: &[T],
        label_weights: Option<&[T]>,
        grad: Option<&mut [T]>,
    ) -> Result<T, Error> {
        if let Some(g) = &grad {
            check::length(xs.len(), g.len())?;
        }
        let mut hist = self.histogram();
        self.observe(&mut hist, xs, ts, label_weights)?;
        let weights = self.finish(&hist)?;
        self.apply(&weights, xs, ts, label_weights, grad)
    }

    /// The loss of one batch, advancing the moving average once.
    ///
    /// # Errors
    /// As [`observe`](Self::observe); the state is unchanged after an `Err`.
    pub fn value(&mut self, xs: &[T], ts: &[T], label_weights: Option<&[T]>) -> Result<T, Error> {
        self.one_shot(xs, ts, label_weights, None)
    }

    /// The loss of one batch and its gradient, advancing the moving average once.
    ///
    /// # Errors
    /// As [`observe`](Self::observe), and `LengthMismatch` for `grad`; the state is unchanged
    /// after an `Err`.
    pub fn value_and_grad(
        &mut self,
        xs: &[T],
        ts: &[T],
        label_weights: Option<&[T]>,
        grad: &mut [T],
    ) -> Result<T, Error> {
        self.one_shot(xs, ts, label_weights, Some(grad))
    }
}
