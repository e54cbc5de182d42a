//! mmdetection's `OHEMSampler`: positives and negatives mined separately, by loss, under a
//! budget.
//!
//! ```text
//! pos = the expected_pos highest-loss positives
//! neg = the expected_neg(|pos|) highest-loss negatives      (see `Budget`)
//! ```
//! Ties go to the lower index. Memory `O(K)`; two passes over the input.
//!
//! # Errors
//! `new`: `InvalidParameter("num")` when `num > K` (besides [`Budget`]'s). `sample`:
//! `LengthMismatch` (one flag per loss), `NonFinite` (loss).

use super::budget::Budget;
use super::selection::Selection;
use super::top_k::{Ranked, TopK};
use crate::{check, Error, Real};
use heapless::Vec;

/// Loss-ranked positive/negative sampling of at most `K` examples.
///
/// # Examples
/// ```
/// use hardmine::{Budget, OhemSampler};
/// let sampler = OhemSampler::<f32, 8>::new(Budget::new(4, 0.25, None)?)?;
/// let losses = [0.1, 0.9, 0.5, 0.2, 0.8, 0.3];
/// let positive = [true, true, false, false, false, false];
/// assert_eq!(sampler.sample(&losses, &positive)?.indices(), &[1, 2, 4, 5]);
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OhemSampler<T, const K: usize> {
    budget: Budget<T>,
}

/// The `k` best entries (by loss) whose flag equals `want`, appended to `out`.
pub(crate) fn best_of<T: Real, const K: usize>(
    losses: &[T],
    positive: &[bool],
    want: bool,
    k: usize,
    out: &mut Vec<usize, K>,
) -> usize {
    let Ok(mut top) = TopK::<T, K>::new(k) else {
        return 0;
    };
    for (index, (&key, &p)) in losses.iter().zip(positive).enumerate() {
        if p == want {
            top.offer(Ranked { key, index });
        }
    }
    let before = out.len();
    for e in top.sorted() {
        let _ = out.push(e.index);
    }
    out.len() - before
}

impl<T: Real, const K: usize> OhemSampler<T, K> {
    /// A sampler with `budget` (its `num` at most `K`).
    ///
    /// # Errors
    /// `InvalidParameter("num")` when `budget.num() > K`.
    pub fn new(budget: Budget<T>) -> Result<Self, Error> {
        if budget.num() > K {
            return Err(Error::InvalidParameter("num"));
        }
        Ok(Self { budget })
    }

    /// The hardest positives and negatives under the budget.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn sample(&self, losses: &[T], positive: &[bool]) -> Result<Selection<K>, Error> {
        check::length(losses.len(), positive.len())?;
        check::all_finite(losses)?;
        let mut out: Vec<usize, K> = Vec::new();
        let pos = best_of(losses, positive, true, self.budget.expected_pos(), &mut out);
        best_of(
            losses,
            positive,
            false,
            self.budget.expected_neg(pos),
            &mut out,
        );
        Ok(Selection::from_unsorted(out))
    }
}
