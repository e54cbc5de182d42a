//! Gradient-norm histograms and the moving-average density GHM weights come from.
//!
//! ```text
//! counts_b  = #{ valid i : g_i in bin b }            (bin b = [b/M, (b+1)/M), top bin closed)
//! EMA_b    <- m * EMA_b + (1 - m) * counts_b          (only bins with counts_b > 0, from 0)
//! D_b       = counts_b (m = 0)  or  EMA_b (m > 0);    n = #{ b : counts_b > 0 }
//! w_i       = tot / (n * D_b(i))                      (mmdetection's weight)
//! L         = loss_weight * sum_i w_i l_i / tot = loss_weight / n * sum_b (sum_{i in b} l_i) / D_b
//! ```
//! `tot` cancels exactly, so it is never formed; each bin's losses are summed in the
//! accumulator type before the one division by `D_b`. Memory is `O(M)` whatever the batch:
//! a [`GradientHistogram`] is `M` counters, a [`GradientDensity`] `M` accumulators. Two
//! histograms of one batch merge by adding counts (data-parallel workers, streamed chunks).

use crate::{Error, Real};

/// Counts of gradient norms in `bins` equal bins over `[0, 1]`, at most `BINS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GradientHistogram<const BINS: usize> {
    bins: usize,
    counts: [u64; BINS],
}

impl<const BINS: usize> GradientHistogram<BINS> {
    /// An empty histogram of `bins` bins.
    ///
    /// # Errors
    /// `InvalidParameter("bins")` unless `1 <= bins <= BINS`.
    pub const fn new(bins: usize) -> Result<Self, Error> {
        if bins == 0 || bins > BINS {
            return Err(Error::InvalidParameter("bins"));
        }
        Ok(Self {
            bins,
            counts: [0; BINS],
        })
    }

    /// A histogram of `counts.len()` bins with these counts (one counted elsewhere: another
    /// worker, a device).
    ///
    /// # Errors
    /// `InvalidParameter("bins")` unless `1 <= counts.len() <= BINS`.
    pub fn from_counts(counts: &[u64]) -> Result<Self, Error> {
        let mut hist = Self::new(counts.len())?;
        hist.counts
            .iter_mut()
            .zip(counts)
            .for_each(|(d, &c)| *d = c);
        Ok(hist)
    }

    /// The number of bins in use.
    pub const fn bins(&self) -> usize {
        self.bins
    }

    /// The counts of the bins in use.
    pub fn counts(&self) -> &[u64] {
        self.counts.get(..self.bins).unwrap_or(&[])
    }

    /// The number of elements counted.
    pub fn total(&self) -> u64 {
        self.counts().iter().fold(0u64, |a, &c| a.saturating_add(c))
    }

    /// Adds `other`'s counts to these (the histogram of the union of both inputs).
    ///
    /// # Errors
    /// `InvalidParameter("bins")` when the two use different numbers of bins; `self` is
    /// unchanged then.
    pub fn merge(&mut self, other: &Self) -> Result<(), Error> {
        if other.bins != self.bins {
            return Err(Error::InvalidParameter("bins"));
        }
        for (a, &b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(b);
        }
        Ok(())
    }

    /// Empties the histogram.
    pub fn clear(&mut self) {
        self.counts = [0; BINS];
    }

    /// Adds per-bin counts (one copy of a block's counters).
    pub(crate) fn add(&mut self, counts: &[u32; BINS]) {
        for (a, &b) in self.counts.iter_mut().zip(counts) {
            *a = a.saturating_add(u64::from(b));
        }
    }
}

/// The moving-average gradient density of one GHM loss (its only state across batches).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradientDensity<T: Real, const BINS: usize> {
    bins: usize,
    momentum: T::Acc,
    ema: [T::Acc; BINS],
}

/// Per-bin divisors `D_b` of one batch, made by [`GradientDensity::update`]; they weight the
/// batch's elements when the loss is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BinWeights<T: Real, const BINS: usize> {
    bins: usize,
    divisor: [T::Acc; BINS],
    valid_bins: usize,
}

impl<T: Real, const BINS: usize> GradientDensity<T, BINS> {
    /// A zero density over `bins` bins with EMA `momentum`.
    ///
    /// # Errors
    /// `InvalidParameter("bins")` unless `1 <= bins <= BINS`; `InvalidParameter("momentum")`
    /// unless `momentum` is in `[0, 1)`.
    pub fn new(bins: usize, momentum: T) -> Result<Self, Error> {
        GradientHistogram::<BINS>::new(bins)?;
        if !(momentum >= T::ZERO && momentum < T::ONE) {
            return Err(Error::InvalidParameter("momentum"));
        }
        Ok(Self {
            bins,
            momentum: momentum.widen(),
            ema: [T::ZERO.widen(); BINS],
        })
    }

    /// The number of bins.
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// The moving averages of the bins in use.
    pub fn ema(&self) -> &[T::Acc] {
        self.ema.get(..self.bins).unwrap_or(&[])
    }

    /// An empty histogram that fits this density.
    pub fn histogram(&self) -> GradientHistogram<BINS> {
        GradientHistogram {
            bins: self.bins,
            counts: [0; BINS],
        }
    }

    /// Folds one batch's histogram into the moving average (when momentum > 0) and returns
    /// the batch's bin divisors.
    ///
    /// # Errors
    /// `InvalidParameter("bins")` when `hist` has another number of bins; state unchanged.
    pub fn update(&mut self, hist: &GradientHistogram<BINS>) -> Result<BinWeights<T, BINS>, Error> {
        if hist.bins != self.bins {
            return Err(Error::InvalidParameter("bins"));
        }
        let zero = T::ZERO.widen();
        let keep = self.momentum;
        let fresh = T::ONE.widen() - keep;
        let mut divisor = [zero; BINS];
        let mut valid_bins = 0;
        for ((d, e), &c) in divisor
            .iter_mut()
            .zip(self.ema.iter_mut())
            .zip(&hist.counts)
        {
            if c == 0 {
                continue;
            }
            valid_bins += 1;
            let count = T::Acc::from_count(c);
            *d = if keep > zero {
                *e = keep * *e + fresh * count;
                *e
            } else {
                count
            };
        }
        Ok(BinWeights {
            bins: self.bins,
            divisor,
            valid_bins,
        })
    }
}

impl<T: Real, const BINS: usize> BinWeights<T, BINS> {
    /// The number of non-empty bins, `n`.
    pub fn valid_bins(&self) -> usize {
        self.valid_bins
    }

    /// The divisors `D_b` of the bins in use (0 for an empty bin).
    pub fn divisors(&self) -> &[T::Acc] {
        self.divisor.get(..self.bins).unwrap_or(&[])
    }

    /// The number of bins.
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// `loss_weight / n`, or `None` when no bin is live (nothing valid was observed: the
    /// loss and every gradient are 0).
    pub(crate) fn scale(&self, loss_weight: T) -> Option<T::Acc> {
        (self.valid_bins > 0)
            .then(|| loss_weight.widen() / T::Acc::from_count(self.valid_bins as u64))
    }

    /// Per bin: whether it is live (`D_b > 0`) and its gradient factor `scale / D_b`.
    pub(crate) fn factors(&self, scale: Option<T::Acc>) -> ([bool; BINS], [T::Acc; BINS]) {
        let zero = T::ZERO.widen();
        let (mut live, mut factor) = ([false; BINS], [zero; BINS]);
        if let Some(scale) = scale {
            for ((l, f), &d) in live.iter_mut().zip(factor.iter_mut()).zip(&self.divisor) {
                if d != zero {
                    (*l, *f) = (true, scale / d);
                }
            }
        }
        (live, factor)
    }

    /// The loss from per-bin sums of the live elements' losses (in any number of copies):
    /// `scale * sum_b (sum of the copies' s_b) / D_b` over the live bins.
    pub(crate) fn total(&self, sums: &[[T::Acc; BINS]], scale: Option<T::Acc>) -> T {
        let zero = T::ZERO.widen();
        let Some(scale) = scale else {
            return T::ZERO;
        };
        let total = self
            .divisor
            .iter()
            .enumerate()
            .filter(|&(_, &d)| d != zero)
            .fold(zero, |acc, (b, &d)| {
                let s = sums
                    .iter()
                    .fold(zero, |s, copy| s + copy.get(b).copied().unwrap_or(zero));
                acc + s / d
            });
        T::narrow(total * scale)
    }
}
