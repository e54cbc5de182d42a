//! The random positive/negative sampler (mmdetection's `RandomSampler`): the 1:3 rule.
//!
//! ```text
//! pos = a uniform random subset of the positives, of size min(#pos, expected_pos)
//! neg = a uniform random subset of the negatives, of size min(#neg, expected_neg(|pos|))
//! ```
//! One pass, reservoir sampling (Vitter's algorithm R) into `O(num)` memory: a reservoir of
//! `expected_pos` positives and one of `num` negatives; the negatives kept are then a uniform
//! subset of the reservoir (partial Fisher-Yates). Every choice takes the caller's PRNG.
//!
//! # Errors
//! `new`: `InvalidParameter("num")` when `num > K` (besides [`Budget`]'s).

use super::budget::Budget;
use super::selection::Selection;
use crate::{Error, Real, SplitMix64};
use heapless::Vec;

/// Uniform positive/negative sampling of at most `K` examples.
///
/// # Examples
/// ```
/// use hardmine::{BalancedSampler, Budget, SplitMix64};
/// let sampler = BalancedSampler::<f32, 16>::new(Budget::new(8, 0.25, None)?)?;
/// let positive: Vec<bool> = (0..100).map(|i| i % 10 == 0).collect();
/// let picked = sampler.sample(&positive, &mut SplitMix64::new(1));
/// assert_eq!(picked.len(), 8);
/// assert_eq!(picked.indices().iter().filter(|&&i| positive[i]).count(), 2);
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BalancedSampler<T, const K: usize> {
    budget: Budget<T>,
}

/// Algorithm R: offers the `seen`-th (0-based) item to a reservoir of capacity `cap`.
fn offer<const K: usize>(
    res: &mut Vec<usize, K>,
    cap: usize,
    seen: u64,
    item: usize,
    rng: &mut SplitMix64,
) {
    if res.len() < cap {
        let _ = res.push(item);
    } else {
        let j = rng.below(seen + 1);
        if let Some(slot) = usize::try_from(j).ok().and_then(|j| res.get_mut(j)) {
            *slot = item;
        }
    }
}

impl<T: Real, const K: usize> BalancedSampler<T, K> {
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

    /// Samples positives and negatives; `positive[i]` says which example `i` is.
    pub fn sample(&self, positive: &[bool], rng: &mut SplitMix64) -> Selection<K> {
        let pos_cap = self.budget.expected_pos();
        let mut pos: Vec<usize, K> = Vec::new();
        let mut neg: Vec<usize, K> = Vec::new();
        let (mut n_pos, mut n_neg) = (0u64, 0u64);
        for (i, &p) in positive.iter().enumerate() {
            if p {
                offer(&mut pos, pos_cap, n_pos, i, rng);
                n_pos += 1;
            } else {
                offer(&mut neg, self.budget.num(), n_neg, i, rng);
                n_neg += 1;
            }
        }
        let take = self.budget.expected_neg(pos.len()).min(neg.len());
        // A uniform `take`-subset of the reservoir: partial Fisher-Yates.
        for i in 0..take {
            // `d < tail.len()` is checked, so the swap has no reachable bounds check (the
            // firmware's link-time panic-freedom proof needs that).
            let d = rng.below((neg.len() - i) as u64) as usize;
            if let Some(tail) = neg.get_mut(i..) {
                if d < tail.len() {
                    tail.swap(0, d);
                }
            }
        }
        neg.truncate(take);
        for i in neg {
            let _ = pos.push(i);
        }
        Selection::from_unsorted(pos)
    }
}
