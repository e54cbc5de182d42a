//! Stratified online hard example mining (S-OHEM; Li et al., "S-OHEM: Stratified Online Hard
//! Example Mining for Object Detection", CCCV 2017).
//!
//! ```text
//! c_i      = alpha(s) L_cls,i + beta(s) L_loc,i            s in [0, 1]: training progress
//! alpha(s) = alpha_0 + (alpha_1 - alpha_0) s,   beta(s) = beta_0 + (beta_1 - beta_0) s
//! strata   = S bands of c split at its quantiles j/S (estimated with a 256-bin histogram
//!            over [min c, max c]; membership is by bin, so it is exact and deterministic)
//! take_j   = min(|stratum j|, quota_j + carry)   easiest stratum first; an unfilled quota
//!            carries to the next harder stratum; what the hardest cannot use is given back
//!            to the easier strata, hardest first
//! pick     = the take_j highest c in stratum j
//! ```
//! The paper gives the idea (classification dominates early, localisation late; sample every
//! difficulty band instead of only the top) but not its constants. **Ours**: `alpha` 1 -> 0.5,
//! `beta` 0.5 -> 1 (linear in `s`), 4 strata, equal quotas (the remainder of `k / S` to the
//! hardest strata), and the give-back rule, which makes the miner select `min(k, N)` examples.
//! Memory `O(K + 256)`; `S + 2` passes over the input.
//!
//! # Errors
//! `new`: `InvalidParameter("k")` unless `1 <= k <= K`, `InvalidParameter("strata")` unless
//! `1 <= strata <= 16` and `strata <= k`. `with_quotas`: `LengthMismatch` (one per stratum),
//! `InvalidParameter("quotas")` unless they sum to `k`. `with_schedule`:
//! `InvalidParameter("schedule")` unless finite and `>= 0`. `select`: `LengthMismatch`,
//! `NonFinite`, `InvalidParameter("progress")` outside `[0, 1]`.

use super::selection::Selection;
use super::top_k::{Ranked, TopK};
use crate::{check, Error, Real};
use heapless::Vec;

/// The most strata supported.
pub const MAX_STRATA: usize = 16;
/// Bins of the quantile histogram.
const QUANTILE_BINS: usize = 256;
/// Lanes of the screened passes.
const LANES: usize = 8;

/// S-OHEM selection of `k <= K` examples from every stratum of difficulty.
///
/// # Examples
/// ```
/// use hardmine::SOhem;
/// let sohem = SOhem::<f32, 16>::new(4, 2)?;
/// let cls = [0.1, 0.2, 0.3, 0.4, 5.0, 6.0, 7.0, 8.0];
/// let loc = [0.0; 8];
/// // Two strata: the two hardest of each half.
/// assert_eq!(sohem.select(&cls, &loc, 0.0)?.indices(), &[2, 3, 6, 7]);
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SOhem<T, const K: usize> {
    k: usize,
    strata: usize,
    quotas: [usize; MAX_STRATA],
    schedule: [T; 4],
}

impl<T: Real, const K: usize> SOhem<T, K> {
    /// `k` examples from `strata` equal-quota strata, with the default schedule.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn new(k: usize, strata: usize) -> Result<Self, Error> {
        if k == 0 || k > K {
            return Err(Error::InvalidParameter("k"));
        }
        if strata == 0 || strata > MAX_STRATA || strata > k {
            return Err(Error::InvalidParameter("strata"));
        }
        let mut quotas = [0; MAX_STRATA];
        let (base, extra) = (k / strata, k % strata);
        for (j, q) in quotas.iter_mut().take(strata).enumerate() {
            *q = base + usize::from(j >= strata - extra);
        }
        let half = T::HALF;
        Ok(Self {
            k,
            strata,
            quotas,
            schedule: [T::ONE, half, half, T::ONE],
        })
    }

    /// The same miner with per-stratum quotas, easiest stratum first, summing to `k`.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn with_quotas(self, quotas: &[usize]) -> Result<Self, Error> {
        check::length(self.strata, quotas.len())?;
        if quotas.iter().fold(0usize, |a, &q| a.saturating_add(q)) != self.k {
            return Err(Error::InvalidParameter("quotas"));
        }
        let mut q = [0; MAX_STRATA];
        q.iter_mut().zip(quotas).for_each(|(d, &s)| *d = s);
        Ok(Self { quotas: q, ..self })
    }

    /// The same miner with the schedule `alpha: alpha_0 -> alpha_1`, `beta: beta_0 -> beta_1`.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn with_schedule(self, alpha: (T, T), beta: (T, T)) -> Result<Self, Error> {
        let schedule = [alpha.0, alpha.1, beta.0, beta.1];
        if schedule.iter().any(|&v| !(v.is_finite() && v >= T::ZERO)) {
            return Err(Error::InvalidParameter("schedule"));
        }
        Ok(Self { schedule, ..self })
    }

    /// `(alpha(s), beta(s))` at training progress `s`.
    pub fn weights(&self, progress: T) -> (T, T) {
        let [a0, a1, b0, b1] = self.schedule;
        (a0 + (a1 - a0) * progress, b0 + (b1 - b0) * progress)
    }

    /// Selects `min(k, N)` examples from every stratum of the combined loss.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn select(&self, l_cls: &[T], l_loc: &[T], progress: T) -> Result<Selection<K>, Error> {
        check::length(l_cls.len(), l_loc.len())?;
        check::all_finite(l_cls)?;
        check::all_finite(l_loc)?;
        if !(progress >= T::ZERO && progress <= T::ONE) {
            return Err(Error::InvalidParameter("progress"));
        }
        let (alpha, beta) = self.weights(progress);
        let combined = || {
            l_cls
                .iter()
                .zip(l_loc)
                .map(move |(&c, &l)| alpha * c + beta * l)
        };
        let n = l_cls.len();
        let Some(first) = combined().next() else {
            return Ok(Selection::new());
        };
        let (lo, hi) = combined().fold((first, first), |(lo, hi), c| (lo.min(c), hi.max(c)));
        let span = hi - lo;
        let bin = |c: T| {
            if span > T::ZERO {
                ((c - lo) / span).bin(QUANTILE_BINS)
            } else {
                0
            }
        };
        // Per bin: its count and the range of its combined losses (so a stratum's pass can
        // skip, by one comparison, every element outside the stratum's range).
        let mut hist = [0usize; QUANTILE_BINS];
        let mut range = [(hi, lo); QUANTILE_BINS];
        for c in combined() {
            let b = bin(c);
            if let (Some(h), Some((rlo, rhi))) = (hist.get_mut(b), range.get_mut(b)) {
                *h += 1;
                (*rlo, *rhi) = (rlo.min(c), rhi.max(c));
            }
        }
        // edges[j] = first bin of stratum j; stratum j covers bins edges[j]..edges[j + 1].
        let mut edges = [QUANTILE_BINS; MAX_STRATA + 1];
        let mut below = 0usize;
        let mut j = 0;
        edges[0] = 0;
        for (b, &h) in hist.iter().enumerate() {
            while j + 1 < self.strata
                && below.saturating_mul(self.strata) >= (j + 1).saturating_mul(n)
            {
                j += 1;
                if let Some(e) = edges.get_mut(j) {
                    *e = b;
                }
            }
            below += h;
        }
        // Edges are non-decreasing, so stratum j holds the bins in edges[j]..edges[j + 1] (the
        // last one up to the top): the same as counting the edges at or below a bin.
        let stratum_of = |b: usize| {
            edges
                .iter()
                .skip(1)
                .take(self.strata - 1)
                .filter(|&&e| e <= b)
                .count()
        };
        let bins_of = |j: usize| {
            let lo = edges.get(j).copied().unwrap_or(QUANTILE_BINS);
            let hi = if j + 1 < self.strata {
                edges.get(j + 1).copied().unwrap_or(QUANTILE_BINS)
            } else {
                QUANTILE_BINS
            };
            lo..hi
        };
        let mut sizes = [0usize; MAX_STRATA];
        for (b, &h) in hist.iter().enumerate() {
            if let Some(s) = sizes.get_mut(stratum_of(b)) {
                *s += h;
            }
        }
        let take = self.takes(&sizes);
        let mut out: Vec<usize, K> = Vec::new();
        for (s, &t) in take.iter().enumerate().take(self.strata) {
            let Ok(mut top) = TopK::<T, K>::new(t) else {
                continue;
            };
            let bins = bins_of(s);
            // The stratum's range of combined losses: bins are monotone in the loss, so inside
            // it an element is in the stratum (the bin check stays as the definition).
            let (s_lo, s_hi) = range
                .get(bins.clone())
                .unwrap_or(&[])
                .iter()
                .fold((hi, lo), |(a, b), &(l, h)| (a.min(l), b.max(h)));
            // Screened eight at a time by one branch-free test (in the stratum's range and at
            // least the heap's entry key); the bin (a division) only for a candidate.
            let mut floor = s_lo;
            let offer = |top: &mut TopK<T, K>, i: usize, c: T, floor: &mut T| {
                if c >= *floor && c <= s_hi && bins.contains(&bin(c)) {
                    top.offer(Ranked { key: c, index: i });
                    *floor = top.entry_key().map_or(s_lo, |e| e.max(s_lo));
                }
            };
            let mut loc = l_loc.chunks_exact(LANES);
            let mut cls = l_cls.chunks_exact(LANES);
            let mut start = 0;
            for x in cls.by_ref() {
                let Some(y) = loc.next() else { break };
                let mut c = [T::ZERO; LANES];
                for ((c, &x), &y) in c.iter_mut().zip(x).zip(y) {
                    *c = alpha * x + beta * y;
                }
                if c.iter()
                    .fold(false, |any, &c| any | ((c >= floor) & (c <= s_hi)))
                {
                    for (k, &c) in c.iter().enumerate() {
                        offer(&mut top, start + k, c, &mut floor);
                    }
                }
                start += LANES;
            }
            for (k, (&x, &y)) in cls.remainder().iter().zip(loc.remainder()).enumerate() {
                offer(&mut top, start + k, alpha * x + beta * y, &mut floor);
            }
            for e in top.sorted() {
                let _ = out.push(e.index);
            }
        }
        Ok(Selection::from_unsorted(out))
    }

    /// How many to take from each stratum: quotas, carried up, then given back down.
    fn takes(&self, sizes: &[usize; MAX_STRATA]) -> [usize; MAX_STRATA] {
        let mut take = [0usize; MAX_STRATA];
        let mut carry = 0usize;
        for ((t, &q), &size) in take
            .iter_mut()
            .zip(&self.quotas)
            .zip(sizes)
            .take(self.strata)
        {
            let want = q + carry;
            *t = want.min(size);
            carry = want - *t;
        }
        for (t, &size) in take.iter_mut().zip(sizes).take(self.strata).rev() {
            let extra = carry.min(size - *t);
            *t += extra;
            carry -= extra;
        }
        take
    }
}
