//! Detectron2's moving-average normaliser of the positive count, the `avg_factor` a
//! RetinaNet-style head divides its losses by when one step sees few images.
//!
//! ```text
//! v_0 = initial                                               (detectron2: 100)
//! v_k = momentum * v_(k-1) + (1 - momentum) * max(num_pos_k, 1)   (detectron2: momentum 0.9)
//! ```
//! With one scene per step the positive count jumps between 1 and a dozen, and a plain
//! `sum / num_pos` jumps with it; the moving average changes the loss scale slowly instead.
//! Pass [`update`](MovingAverageNormalizer::update)'s value to a loss's `with_avg_factor`.
//! The average is kept in the accumulator type ([`Real::Acc`]: f64 for f32) and returned
//! rounded to `T`; it is `>= min(initial, 1)` at every step, so the factor is never 0.
//! Defaults from detectron2's `RetinaNet` (`loss_normalizer = 100`,
//! `loss_normalizer_momentum = 0.9`, `_ema_update` of `max(num_pos_anchors, 1)`).
//!
//! # Errors
//! `new`: `InvalidParameter("momentum")` unless momentum is in `[0, 1)`;
//! `InvalidParameter("initial")` unless initial is finite and `> 0`. `update` cannot fail.

use crate::{check, Error, Real};

/// An exponential moving average of the number of positives, as a loss's `avg_factor`.
///
/// # Examples
/// ```
/// use hardmine::{MovingAverageNormalizer, SigmoidFocal};
/// let mut norm = MovingAverageNormalizer::new(0.9f64, 100.0)?;
/// let factor = norm.update(3); // 0.9 * 100 + 0.1 * 3
/// assert!((factor - 90.3).abs() < 1e-12);
/// let focal = SigmoidFocal::new(0.25, 2.0)?.with_avg_factor(factor)?;
/// let loss = focal.value(&[0.0, 1.0], &[1.0, 0.0])?;
/// # let _ = loss;
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MovingAverageNormalizer<T: Real> {
    momentum: T::Acc,
    value: T::Acc,
}

#[cfg(feature = "defmt")]
impl<T: Real> defmt::Format for MovingAverageNormalizer<T>
where
    T::Acc: defmt::Format,
{
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "MovingAverageNormalizer {{ momentum: {}, value: {} }}",
            self.momentum,
            self.value
        );
    }
}

impl<T: Real> MovingAverageNormalizer<T> {
    /// The normaliser starting at `initial`, each update keeping `momentum` of the old value.
    ///
    /// # Errors
    /// `InvalidParameter("momentum")` unless `0 <= momentum < 1`; `InvalidParameter("initial")`
    /// unless `initial` is finite and `> 0`.
    pub fn new(momentum: T, initial: T) -> Result<Self, Error> {
        check::parameter(momentum >= T::ZERO && momentum < T::ONE, "momentum")?;
        check::positive(initial, "initial")?;
        Ok(Self {
            momentum: momentum.widen(),
            value: initial.widen(),
        })
    }

    /// Detectron2's RetinaNet normaliser: momentum 0.9, initial value 100.
    pub fn detectron2() -> Self {
        Self {
            momentum: T::Acc::from_f64(0.9),
            value: T::Acc::from_count(100),
        }
    }

    /// Folds one step's positive count in (`max(num_pos, 1)`, as detectron2) and returns the
    /// new normaliser, the factor to pass as this step's `avg_factor`.
    pub fn update(&mut self, num_pos: usize) -> T {
        let one = T::ONE.widen();
        let count = T::Acc::from_count(num_pos.max(1) as u64);
        self.value = self.momentum * self.value + (one - self.momentum) * count;
        T::narrow(self.value)
    }

    /// The current normaliser (`initial` before the first update).
    pub fn value(&self) -> T {
        T::narrow(self.value)
    }

    /// Its momentum.
    pub fn momentum(&self) -> T {
        T::narrow(self.momentum)
    }
}
