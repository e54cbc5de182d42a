//! Who carries the loss: counts and loss shares of easy/hard x positive/negative examples.
//!
//! ```text
//! positive_i = t_i >= 1/2;   p_t = sigma(x) for a positive, sigma(-x) for a negative
//! hard_i     = p_t < threshold   (misclassified at the default 0.5)
//! share_g    = sum_{i in g} L_i / sum_i L_i
//! ```
//! The number that motivates focal loss and GHM: under BCE on a dense detector, easy negatives
//! carry most of the loss; [`CensusReport::easy_negative_share`] measures it for any loss
//! (`bce`, `focal`, `ghm_c`, or the caller's per-element losses through `tally`).
//!
//! # Errors
//! `new`: `InvalidParameter("threshold")` unless in `(0, 1)`. Calls: `LengthMismatch`,
//! `NonFinite`, `InvalidTarget` (outside `[0, 1]`).

use crate::kernel::Logistic;
use crate::{check, BceWithLogits, BinWeights, Error, GhmC, Real, SigmoidFocal};

/// One of the census's four groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Group {
    /// Negative, classified correctly with margin.
    EasyNegative = 0,
    /// Negative, misclassified.
    HardNegative = 1,
    /// Positive, classified correctly with margin.
    EasyPositive = 2,
    /// Positive, misclassified.
    HardPositive = 3,
}

impl Group {
    /// All four, in a fixed order.
    pub const ALL: [Group; 4] = [
        Group::EasyNegative,
        Group::HardNegative,
        Group::EasyPositive,
        Group::HardPositive,
    ];
}

/// The counts and summed losses of the four groups of one batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CensusReport<T: Real> {
    count: [u64; 4],
    loss: [T::Acc; 4],
}

impl<T: Real> CensusReport<T> {
    /// Examples in `group`.
    pub fn count(&self, group: Group) -> u64 {
        self.count.get(group as usize).copied().unwrap_or(0)
    }

    /// Summed loss of `group`.
    pub fn loss(&self, group: Group) -> T {
        T::narrow(
            self.loss
                .get(group as usize)
                .copied()
                .unwrap_or(T::ZERO.widen()),
        )
    }

    /// Summed loss of all examples.
    pub fn total_loss(&self) -> T {
        T::narrow(self.loss.iter().fold(T::ZERO.widen(), |a, &l| a + l))
    }

    /// `group`'s share of the total loss (0 when the total is 0).
    pub fn share(&self, group: Group) -> T {
        let total = self.loss.iter().fold(T::ZERO.widen(), |a, &l| a + l);
        let part = self
            .loss
            .get(group as usize)
            .copied()
            .unwrap_or(T::ZERO.widen());
        if total > T::ZERO.widen() {
            T::narrow(part / total)
        } else {
            T::ZERO
        }
    }

    /// The share of the total loss carried by easy negatives.
    pub fn easy_negative_share(&self) -> T {
        self.share(Group::EasyNegative)
    }
}

/// Splits a batch into the four groups at a `p_t` threshold.
///
/// # Examples
/// ```
/// use hardmine::{Census, Group};
/// let census = Census::new(0.5f32)?;
/// let report = census.bce(&[-6.0, -5.0, -4.0, 1.0, -1.0], &[0.0, 0.0, 0.0, 0.0, 1.0])?;
/// assert_eq!(report.count(Group::EasyNegative), 3);
/// assert_eq!(report.count(Group::HardNegative), 1);
/// assert_eq!(report.count(Group::HardPositive), 1);
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Census<T> {
    threshold: T,
}

impl<T: Real> Census<T> {
    /// A census with "hard" meaning `p_t < threshold` (0.5 = misclassified).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn new(threshold: T) -> Result<Self, Error> {
        if threshold > T::ZERO && threshold < T::ONE {
            Ok(Self { threshold })
        } else {
            Err(Error::InvalidParameter("threshold"))
        }
    }

    /// Tallies the batch with `loss(index, logit, target)` as each example's loss.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn tally<F>(
        &self,
        logits: &[T],
        targets: &[T],
        mut loss: F,
    ) -> Result<CensusReport<T>, Error>
    where
        F: FnMut(usize, T, T) -> T,
    {
        check::length(logits.len(), targets.len())?;
        let mut report = CensusReport {
            count: [0; 4],
            loss: [T::ZERO.widen(); 4],
        };
        for (i, (&x, &t)) in logits.iter().zip(targets).enumerate() {
            let x = check::finite(x, i)?;
            let t = check::unit_target(t, i)?;
            let l = Logistic::new(x);
            let positive = t >= T::HALF;
            let p_t = if positive { l.pos } else { l.neg };
            let hard = p_t < self.threshold;
            let g = usize::from(positive) * 2 + usize::from(hard);
            let value = check::finite(loss(i, x, t), i)?;
            if let (Some(c), Some(s)) = (report.count.get_mut(g), report.loss.get_mut(g)) {
                *c += 1;
                *s = *s + value.widen();
            }
        }
        Ok(report)
    }

    /// The census under binary cross-entropy.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn bce(&self, logits: &[T], targets: &[T]) -> Result<CensusReport<T>, Error> {
        self.tally(logits, targets, |_, x, t| BceWithLogits::element(x, t).0)
    }

    /// The census under a sigmoid focal loss.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn focal(
        &self,
        focal: &SigmoidFocal<T>,
        logits: &[T],
        targets: &[T],
    ) -> Result<CensusReport<T>, Error> {
        self.tally(logits, targets, |_, x, t| {
            focal.element(focal.alpha(), x, t).0
        })
    }

    /// The census under GHM-C with the batch's `weights` (from [`GhmC`]'s `finish`).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn ghm_c<const BINS: usize>(
        &self,
        ghm: &GhmC<T, BINS>,
        weights: &BinWeights<T, BINS>,
        logits: &[T],
        targets: &[T],
    ) -> Result<CensusReport<T>, Error> {
        // One element's share of the loss is `apply` on a chunk of one.
        self.tally(logits, targets, |_, x, t| {
            ghm.apply(weights, &[x], &[t], None, None)
                .unwrap_or(T::ZERO)
        })
    }
}
