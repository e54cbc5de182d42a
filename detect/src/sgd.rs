//! SGD with momentum and weight decay, PyTorch's `torch.optim.SGD` (no dampening, no
//! Nesterov), on slices, with a master copy of the weights:
//!
//! ```text
//! d   = g + weight_decay * w          (w: the master weight)
//! buf = momentum * buf + d            (buf starts at 0, so the first step's buf is d, as torch)
//! w   = w - lr * buf
//! weight = round(w)                   (to T, to nearest, saturating)
//! ```
//! The master weight and the momentum buffer are kept in [`Scalar::Master`]: the type itself
//! for `f32` and `f64`, Q31.32 for Q15.16. Q15.16's LSB is 2^-16 = 1.5e-5, so `lr * grad` is
//! often below half an LSB and rounds to zero, and weight decay (`lr * wd * w`, about 1e-7)
//! always does: in Q31.32 (LSB 2.3e-10) those updates accumulate until they move the weight.
//! [`SgdStats`] counts what was lost where.
//!
//! # Errors
//! [`Sgd::new`]: `InvalidParameter("lr")` unless finite and `> 0`, `"momentum"` unless in
//! `[0, 1)`, `"weight_decay"` unless finite and `>= 0`. [`Sgd::step`]: `LengthMismatch` for
//! `master`, `momentum_buf`, `grads` against `weights`; `NonFinite` (its index) for a
//! non-finite gradient, then master weight, then momentum value. Nothing changes on `Err`.

use crate::math::{all_finite, length, parameter};
use crate::scalar::{Master, Scalar};
use hardmine::Error;

/// SGD's hyper-parameters (validated).
///
/// # Examples
/// ```
/// use hardmine_detect::{init_master, Sgd};
/// let sgd = Sgd::new(0.1, 0.9, 0.0)?;
/// let mut w = [1.0f32, -2.0];
/// let mut master = [0.0f32; 2];
/// init_master(&w, &mut master)?;
/// let mut buf = [0.0f32; 2];
/// let mut g = [0.5f32, 0.0];
/// let stats = sgd.step(&mut w, &mut master, &mut buf, &mut g)?;
/// assert_eq!(w, [0.95, -2.0]);
/// assert_eq!(g, [0.0, 0.0]); // consumed
/// assert_eq!(stats.nonzero, 1);
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Sgd {
    lr: f64,
    momentum: f64,
    weight_decay: f64,
}

/// What one [`Sgd::step`] did, for the job's report. `nonzero` counts the elements whose
/// update `lr * buf` was asked to be nonzero (`buf != 0`); of those, `lost_in_master` left
/// the master weight unchanged (the update rounded to zero in the master type), and
/// `lost_in_weight` changed the master but not the rounded weight `T` (what a plain
/// `T` update would also have lost, kept here for later steps). `saturated` counts master
/// weights outside `T`'s range after the step (their `T` weight saturated: on Q15.16 that
/// is divergence; for floats a non-finite master).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SgdStats {
    /// Elements stepped (the slices' length).
    pub elements: usize,
    /// Elements with a nonzero momentum buffer after the step.
    pub nonzero: usize,
    /// Nonzero updates that left the master weight unchanged.
    pub lost_in_master: usize,
    /// Nonzero updates that changed the master weight but not the rounded weight.
    pub lost_in_weight: usize,
    /// Nonzero updates whose step `lr * buf`, rounded to `T`, is zero: what an update of
    /// `T` itself, without the master copy, would lose (on Q15.16, steps below half an LSB).
    pub lost_without_master: usize,
    /// Master weights outside `T`'s range (saturated weights).
    pub saturated: usize,
}

impl SgdStats {
    /// Updates that changed the master weight: `nonzero - lost_in_master`.
    pub fn applied(&self) -> usize {
        self.nonzero.saturating_sub(self.lost_in_master)
    }

    /// Adds another step's (or slice's) counts.
    pub fn add(&mut self, o: &SgdStats) {
        self.elements += o.elements;
        self.nonzero += o.nonzero;
        self.lost_in_master += o.lost_in_master;
        self.lost_in_weight += o.lost_in_weight;
        self.lost_without_master += o.lost_without_master;
        self.saturated += o.saturated;
    }
}

impl Sgd {
    /// SGD with learning rate `lr`, `momentum` and `weight_decay` (PyTorch's semantics).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn new(lr: f64, momentum: f64, weight_decay: f64) -> Result<Self, Error> {
        parameter(lr.is_finite() && lr > 0.0, "lr")?;
        parameter((0.0..1.0).contains(&momentum), "momentum")?;
        parameter(
            weight_decay.is_finite() && weight_decay >= 0.0,
            "weight_decay",
        )?;
        Ok(Self {
            lr,
            momentum,
            weight_decay,
        })
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// The momentum.
    pub fn momentum(&self) -> f64 {
        self.momentum
    }

    /// The weight decay.
    pub fn weight_decay(&self) -> f64 {
        self.weight_decay
    }

    /// The same optimiser with another learning rate (a schedule's step).
    ///
    /// # Errors
    /// `InvalidParameter("lr")` unless finite and `> 0`.
    pub fn with_lr(self, lr: f64) -> Result<Self, Error> {
        Self::new(lr, self.momentum, self.weight_decay)
    }

    /// One step on `weights` with their `master` copy and `momentum_buf` (both start from
    /// [`init_master`] and zeros), consuming `grads`: on `Ok` they are zeroed, ready for the
    /// next accumulation. The hyper-parameters are rounded to the master type once per call.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn step<T: Scalar>(
        &self,
        weights: &mut [T],
        master: &mut [T::Master],
        momentum_buf: &mut [T::Master],
        grads: &mut [T],
    ) -> Result<SgdStats, Error> {
        let n = weights.len();
        length(n, master.len())?;
        length(n, momentum_buf.len())?;
        length(n, grads.len())?;
        all_finite(grads)?;
        for xs in [&*master, &*momentum_buf] {
            if let Some(index) = xs.iter().position(|m| !m.finite()) {
                return Err(Error::NonFinite { index });
            }
        }
        let lr = T::Master::from_value(self.lr);
        let mom = T::Master::from_value(self.momentum);
        let wd = T::Master::from_value(self.weight_decay);
        let zero = T::Master::default();
        let mut stats = SgdStats {
            elements: n,
            ..SgdStats::default()
        };
        let slots = weights
            .iter_mut()
            .zip(master.iter_mut())
            .zip(momentum_buf.iter_mut())
            .zip(grads.iter_mut());
        for (((w, m), b), g) in slots {
            let d = T::Master::from_weight(*g).plus(wd.times(*m));
            let buf = mom.times(*b).plus(d);
            let step = lr.times(buf);
            let new = m.minus(step);
            let rounded = new.to_weight();
            if buf != zero {
                stats.nonzero += 1;
                if step.to_weight() == T::ZERO {
                    stats.lost_without_master += 1;
                }
                if new == *m {
                    stats.lost_in_master += 1;
                } else if rounded == *w {
                    stats.lost_in_weight += 1;
                }
            }
            if !new.fits() {
                stats.saturated += 1;
            }
            *w = rounded;
            *m = new;
            *b = buf;
            *g = T::ZERO;
        }
        Ok(stats)
    }
}

/// The master copy of `weights` (exact), for [`Sgd::step`].
///
/// # Errors
/// `LengthMismatch` unless the lengths agree.
pub fn init_master<T: Scalar>(weights: &[T], master: &mut [T::Master]) -> Result<(), Error> {
    length(weights.len(), master.len())?;
    for (m, w) in master.iter_mut().zip(weights) {
        *m = T::Master::from_weight(*w);
    }
    Ok(())
}
