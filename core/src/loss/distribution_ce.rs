//! Cross-entropy that knows the class distribution, tracked on-line in fixed memory.
//!
//! ```text
//! n_c = labels of class c observed so far, plus one pseudo-count   (so unseen classes stay finite)
//! N   = sum_c n_c,   pi_c = n_c / N                                  (the prior)
//!
//! InverseFrequency { power }: w_c = C * n_c^-power / sum_k n_k^-power
//! EffectiveNumber  { beta }:  E_c = (1 - beta^n_c) / (1 - beta),  w_c = C * E_c^-1 / sum_k E_k^-1
//!                             (Cui et al., CVPR 2019; 1 - beta^n as -expm1(n ln beta))
//! LogitAdjustment  { tau }:   x'_c = x_c + tau * ln pi_c,  w_c = 1     (Menon et al., ICLR 2021)
//!
//! L_i = w_y * ce(x'_i, y_i);   Mean = sum_i L_i / sum_i w_y_i  (PyTorch's weighted mean;
//!                                 sum_i L_i / (avg_factor + eps) with `with_avg_factor`)
//! dL/dx_ij = w_y * (softmax(x'_i)_j - [j = y])  (/ sum w for Mean)
//! ```
//! Weights are normalised to sum to `C` (Cui et al.'s convention), so `power = 0` or `beta = 0`
//! is plain cross-entropy. [`DistributionCe::observe`] adds a batch's labels to the counts;
//! the loss uses the counts as they stand, so call `observe` first to include the batch
//! itself. Memory: `C` counters. Accuracy as [`SoftmaxCrossEntropy`](crate::SoftmaxCrossEntropy).
//!
//! # Errors
//! `new`: `InvalidParameter("classes")` unless `1 <= classes <= C`; `"power"` unless finite and
//! `>= 0`; `"beta"` unless in `[0, 1)`; `"tau"` unless `|tau| <= 1000`; `with_avg_factor`:
//! `"avg_factor"` unless finite and `>= 0`. Calls: as
//! `SoftmaxCrossEntropy`; `observe` leaves the counts unchanged after an `Err`.

use super::elementwise::Output;
use super::rowwise::{self, Row};
use super::softmax_ce::row_loss;
use crate::num::private::Kernels as _;
use crate::{check, ClassLabel, Error, Real, Reduction};

/// The largest `|tau|` accepted: `tau ln prior` stays finite on every path (|ln prior| < 45
/// for any count a `u64` holds). Menon et al. use `tau = 1`.
const MAX_TAU: u64 = 1000;

/// How the class distribution enters the loss.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Weighting<T> {
    /// Class weight `n_c^-power` (1 is inverse frequency, 0.5 its square root).
    InverseFrequency {
        /// The exponent, `>= 0`.
        power: T,
    },
    /// Class weight `1 / E_c` with the effective number `E_c = (1 - beta^n_c) / (1 - beta)`.
    EffectiveNumber {
        /// In `[0, 1)`; Cui et al. use 0.9 to 0.9999.
        beta: T,
    },
    /// Logits shifted by `tau * ln prior` (Menon et al. use `tau = 1`).
    LogitAdjustment {
        /// The adjustment strength, `|tau| <= 1000`.
        tau: T,
    },
}

/// Class-distribution-aware softmax cross-entropy over at most `C` classes.
///
/// # Examples
/// ```
/// use hardmine::{DistributionCe, Weighting};
/// let mut ce = DistributionCe::<f32, 4>::new(3, Weighting::InverseFrequency { power: 1.0 })?;
/// ce.observe(&[0u8, 0, 0, 1])?;
/// let mut w = [0.0; 3];
/// ce.class_weights(&mut w)?;
/// assert!(w[2] > w[1] && w[1] > w[0]);
/// let loss = ce.value(&[1.0, 0.0, 0.0, 0.0, 2.0, 0.0], &[0u8, 1])?;
/// assert!(loss > 0.0);
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DistributionCe<T, const C: usize> {
    classes: usize,
    weighting: Weighting<T>,
    reduction: Reduction,
    avg_factor: Option<T>,
    counts: [u64; C],
}

impl<T: Real, const C: usize> DistributionCe<T, C> {
    /// The loss over `classes <= C` classes with no labels seen yet, reduced by `Mean`.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn new(classes: usize, weighting: Weighting<T>) -> Result<Self, Error> {
        check::parameter((1..=C).contains(&classes), "classes")?;
        let ok = match weighting {
            Weighting::InverseFrequency { power } => (power.is_finite() && power >= T::ZERO)
                .then_some(())
                .ok_or(Error::InvalidParameter("power")),
            Weighting::EffectiveNumber { beta } => (beta >= T::ZERO && beta < T::ONE)
                .then_some(())
                .ok_or(Error::InvalidParameter("beta")),
            Weighting::LogitAdjustment { tau } => (tau.abs() <= T::from_count(MAX_TAU))
                .then_some(())
                .ok_or(Error::InvalidParameter("tau")),
        };
        ok.map(|()| Self {
            classes,
            weighting,
            reduction: Reduction::Mean,
            avg_factor: None,
            counts: [0; C],
        })
    }

    super::reduction_accessors!();

    super::avg_factor_accessors!();

    /// Labels observed per class (without the pseudo-count).
    pub fn counts(&self) -> &[u64] {
        self.counts.get(..self.classes).unwrap_or(&[])
    }

    /// Adds a batch's labels to the class counts; negative labels are skipped.
    ///
    /// # Errors
    /// `InvalidTarget` for a label at or above `classes`; the counts are unchanged then.
    pub fn observe<L: ClassLabel>(&mut self, labels: &[L]) -> Result<(), Error> {
        let mut counts = self.counts;
        for (index, label) in labels.iter().enumerate() {
            match label.index() {
                Some(c) if c < self.classes => {
                    if let Some(n) = counts.get_mut(c) {
                        *n = n.saturating_add(1);
                    }
                }
                Some(_) => return Err(Error::InvalidTarget { index }),
                None => {}
            }
        }
        self.counts = counts;
        Ok(())
    }

    /// Per-class weights `w_c` and logit offsets `tau ln pi_c` from the current counts.
    fn tables(&self) -> ([T; C], [T; C]) {
        let mut weight = [T::ONE; C];
        let mut offset = [T::ZERO; C];
        let one = T::ONE.widen();
        let n = |c: u64| T::Acc::from_count(c.saturating_add(1));
        let counts = self.counts.iter().take(self.classes);
        match self.weighting {
            Weighting::LogitAdjustment { tau } => {
                let total = self.counts().iter().fold(0u64, |a, &c| a.saturating_add(c));
                let all = T::Acc::from_count(total.saturating_add(self.classes as u64));
                for (o, &c) in offset.iter_mut().zip(counts) {
                    *o = T::narrow(tau.widen() * (n(c) / all).ln());
                }
            }
            Weighting::InverseFrequency { power } => {
                // Relative to the rarest class, so the largest raw weight is exactly 1 and
                // none underflows (Q15.16 has 16 fractional bits; n^-1 of a million does).
                let rarest = counts.clone().copied().min().unwrap_or(0);
                let ln_rarest = n(rarest).ln();
                let raw = |c: u64| (-(power.widen()) * (n(c).ln() - ln_rarest)).exp();
                normalise(&mut weight, counts.map(|&c| raw(c)), self.classes);
            }
            Weighting::EffectiveNumber { beta } => {
                let ln_beta = beta.widen().ln();
                // 1 / E_c = (1 - beta) / (1 - beta^n_c); beta = 0 gives 1 for every class.
                let raw = |c: u64| {
                    if beta == T::ZERO {
                        one
                    } else {
                        (one - beta.widen()) / -(n(c) * ln_beta).exp_m1()
                    }
                };
                normalise(&mut weight, counts.map(|&c| raw(c)), self.classes);
            }
        }
        (weight, offset)
    }

    /// Writes the current class weights (or, for logit adjustment, the logit offsets) to `out`.
    ///
    /// # Errors
    /// `LengthMismatch` unless `out` has one slot per class.
    pub fn class_weights(&self, out: &mut [T]) -> Result<(), Error> {
        check::length(self.classes, out.len())?;
        let (weight, offset) = self.tables();
        let table = match self.weighting {
            Weighting::LogitAdjustment { .. } => offset,
            _ => weight,
        };
        out.iter_mut().zip(table).for_each(|(o, w)| *o = w);
        Ok(())
    }

    fn run<L: ClassLabel>(&self, rows: (&[T], &[L]), out: Output<'_, T>) -> Result<T, Error> {
        let (weight, offset) = self.tables();
        let w = |c: usize| weight.get(c).copied().unwrap_or(T::ONE);
        rowwise::run(
            (self.reduction, self.avg_factor.map(T::widen), self.classes),
            rows,
            out,
            (w, |row, grad| {
                let mut shifted = [T::ZERO; C];
                for ((s, &x), &o) in shifted.iter_mut().zip(row.logits).zip(&offset) {
                    *s = x + o;
                }
                let logits = shifted.get(..row.logits.len()).unwrap_or(&[]);
                row_loss(
                    Row {
                        logits,
                        class: row.class,
                    },
                    grad,
                )
            }),
        )
    }

    super::entry_points!(
        rows <L: ClassLabel> (logits: &[T], labels: &[L]),
        value: "The reduced loss under the current counts.",
        grad: "The reduced loss and its gradient with respect to the (unshifted) logits.",
        per_element: "The weighted per-row losses written to `out`, one per label.",
    );
}

/// Writes `C * raw_c / sum raw` into the first `classes` slots of `weight`.
fn normalise<T: Real>(weight: &mut [T], raw: impl Iterator<Item = T::Acc> + Clone, classes: usize) {
    let sum = raw.clone().fold(T::ZERO.widen(), |a, r| a + r);
    let scale = T::Acc::from_count(classes as u64) / sum;
    for (w, r) in weight.iter_mut().zip(raw) {
        *w = T::narrow(r * scale);
    }
}
