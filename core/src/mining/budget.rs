//! The positive/negative budget of mmdetection's samplers (`num`, `pos_fraction`, `neg_pos_ub`).
//!
//! ```text
//! expected_pos = floor(num * pos_fraction)
//! expected_neg = num - sampled_pos,  capped at floor(neg_pos_ub * max(1, sampled_pos)) when set
//! ```
//! Defaults: `num = 512`, `pos_fraction = 0.25` (the 1:3 rule of Fast R-CNN), no cap.

use crate::{check, Error, Real};

/// How many positives and negatives a sampler may take.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Budget<T> {
    num: usize,
    pos_fraction: T,
    neg_pos_ub: Option<T>,
}

impl<T: Real> Budget<T> {
    /// `num` examples, a `pos_fraction` in `[0, 1]` of them positive at most, and an optional
    /// cap of `neg_pos_ub >= 0` negatives per positive.
    ///
    /// # Errors
    /// `InvalidParameter("num" | "pos_fraction" | "neg_pos_ub")`.
    pub fn new(num: usize, pos_fraction: T, neg_pos_ub: Option<T>) -> Result<Self, Error> {
        check::parameter(num > 0, "num")?;
        check::unit(pos_fraction, "pos_fraction")?;
        if let Some(ub) = neg_pos_ub {
            check::non_negative(ub, "neg_pos_ub")?;
        }
        Ok(Self {
            num,
            pos_fraction,
            neg_pos_ub,
        })
    }

    /// The total number of examples.
    pub fn num(&self) -> usize {
        self.num
    }

    /// The most positives taken.
    pub fn expected_pos(&self) -> usize {
        let n = (T::from_count(self.num as u64) * self.pos_fraction).floor_count();
        usize::try_from(n).unwrap_or(usize::MAX).min(self.num)
    }

    /// The most negatives taken once `sampled_pos` positives were.
    pub fn expected_neg(&self, sampled_pos: usize) -> usize {
        let rest = self.num.saturating_sub(sampled_pos);
        match self.neg_pos_ub {
            Some(ub) => {
                let cap = (ub * T::from_count(sampled_pos.max(1) as u64)).floor_count();
                rest.min(usize::try_from(cap).unwrap_or(usize::MAX))
            }
            None => rest,
        }
    }
}
