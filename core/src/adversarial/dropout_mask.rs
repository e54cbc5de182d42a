//! ASDN dropout masks: drop `pick` cells at random among the `top` highest-scoring cells of
//! the adversarial network's score map, in every channel (A-Fast-RCNN).
//!
//! ```text
//! ranked = the top cells of the score map (ties: lower index first)
//! dropped = a uniform random pick-subset of ranked (Knuth's selection sampling, caller's PRNG)
//! mask_cell = 0 if dropped else 1;   features *= mask;  gradients *= mask (dropped cells pass 0)
//! ```
//! Defaults from the released code: 15 of the top 20 cells of a 7x7 map (about a third of it).
//!
//! # Errors
//! `new`: `InvalidParameter("top")` unless `1 <= top <= cells`, `"pick"` unless
//! `pick <= top`. `sample`: `LengthMismatch`, `NonFinite` (a score). `apply`: `LengthMismatch`.

use super::shape::MapShape;
use crate::{check, Error, Real, SplitMix64};

/// Random masks over the top cells of a score map.
///
/// # Examples
/// ```
/// use hardmine::{DropoutMask, SplitMix64};
/// let masks = DropoutMask::new(1, 3, 3, 4, 2)?;
/// let scores = [0.9f32, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.0, 0.05];
/// let mut mask = [0.0f32; 9];
/// masks.sample(&scores, &mut SplitMix64::new(3), &mut mask)?;
/// assert_eq!(mask.iter().filter(|&&m| m == 0.0).count(), 2);
/// assert!([1, 3, 5, 7, 8].iter().all(|&i| mask[i] == 1.0)); // never outside the top 4
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DropoutMask {
    shape: MapShape,
    top: usize,
    pick: usize,
}

impl DropoutMask {
    /// Masks for `channels x height x width` maps dropping `pick` of the `top` cells.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn new(
        channels: usize,
        height: usize,
        width: usize,
        top: usize,
        pick: usize,
    ) -> Result<Self, Error> {
        let shape = MapShape::new(channels, height, width)?;
        if top == 0 || top > shape.cells() {
            return Err(Error::InvalidParameter("top"));
        }
        if pick > top {
            return Err(Error::InvalidParameter("pick"));
        }
        Ok(Self { shape, top, pick })
    }

    /// Writes a mask (`H * W`: 0 for a dropped cell, 1 otherwise) drawn from `scores` (`H * W`).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn sample<T: Real>(
        &self,
        scores: &[T],
        rng: &mut SplitMix64,
        mask: &mut [T],
    ) -> Result<(), Error> {
        check::length(self.shape.cells(), scores.len())?;
        check::length(self.shape.cells(), mask.len())?;
        check::all_finite(scores)?;
        // Mark the top cells in `mask` (2 = ranked), by repeated selection of the best unmarked.
        let two = T::ONE + T::ONE;
        mask.iter_mut().for_each(|m| *m = T::ONE);
        for _ in 0..self.top {
            let best = scores
                .iter()
                .zip(mask.iter())
                .enumerate()
                .filter(|(_, (_, &m))| m != two)
                .fold(None, |b: Option<(usize, T)>, (i, (&s, _))| match b {
                    Some((_, bs)) if bs >= s => b,
                    _ => Some((i, s)),
                });
            if let Some(m) = best.and_then(|(i, _)| mask.get_mut(i)) {
                *m = two;
            }
        }
        // Selection sampling: each ranked cell is dropped with probability needed / remaining.
        let (mut needed, mut remaining) = (self.pick as u64, self.top as u64);
        for m in mask.iter_mut().filter(|m| **m == two) {
            let drop = rng.below(remaining) < needed;
            needed -= u64::from(drop);
            remaining -= 1;
            *m = if drop { T::ZERO } else { T::ONE };
        }
        Ok(())
    }

    /// Multiplies every channel of `values` (`C * H * W` features, or their gradient) by the
    /// `mask`, so dropped cells are zero and pass zero gradient.
    ///
    /// # Errors
    /// `LengthMismatch`.
    pub fn apply<T: Real>(&self, mask: &[T], values: &mut [T]) -> Result<(), Error> {
        check::length(self.shape.cells(), mask.len())?;
        check::length(self.shape.len(), values.len())?;
        for channel in values.chunks_exact_mut(self.shape.cells()) {
            channel.iter_mut().zip(mask).for_each(|(v, &m)| *v = *v * m);
        }
        Ok(())
    }
}
