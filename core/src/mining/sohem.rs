//! Stratified online hard example mining (S-OHEM; Li et al., "S-OHEM: Stratified Online Hard
//! Example Mining for Object Detection", CCCV 2017).
//!
//! ```text
//! c_i      = alpha(s) L_cls,i + beta(s) L_loc,i            s in [0, 1]: training progress
//! alpha(s) = alpha_0 + (alpha_1 - alpha_0) s,   beta(s) = beta_0 + (beta_1 - beta_0) s
//! strata   = S bands of c, either
//!            quantile (default): split at its quantiles j/S (estimated with a 256-bin
//!              histogram over [min c, max c]; membership is by bin, so it is exact and
//!              deterministic), or
//!            preset (`with_edges`): split at given edges e_1 < ... < e_{S-1}; stratum j holds
//!              e_j <= c < e_{j+1}, with e_0 = -inf and e_S = +inf
//! take_j   = min(|stratum j|, quota_j + carry)   easiest stratum first; an unfilled quota
//!            carries to the next harder stratum; what the hardest cannot use is given back
//!            to the easier strata, hardest first
//! pick     = the take_j highest c in stratum j (ties to the lower index)
//! ```
//! The paper gives the idea (classification dominates early, localisation late; sample every
//! difficulty band instead of only the top) but not its constants. **Ours**: `alpha` 1 -> 0.5,
//! `beta` 0.5 -> 1 (linear in `s`; [`SOhemSchedule::default`]), 4 strata, equal quotas (the
//! remainder of `k / S` to the hardest strata), and the give-back rule, which makes the miner
//! select `min(k, N)` examples, whichever strata are empty. The paper's own form, four preset
//! segments of the loss, is `with_edges` with three edges. Memory `O(K + 256)`; `S + 2` passes
//! over the input (`S + 1` with preset edges).
//!
//! # Errors
//! `new`: `InvalidParameter("k")` unless `1 <= k <= K`, `InvalidParameter("strata")` unless
//! `1 <= strata <= 16` and `strata <= k`. `with_quotas`: `LengthMismatch` (one per stratum),
//! `InvalidParameter("quotas")` unless they sum to `k`. `with_schedule`:
//! `InvalidParameter("schedule")` unless finite and `>= 0`. `with_edges`:
//! `LengthMismatch { expected: strata - 1, .. }`, `InvalidParameter("edges")` unless finite and
//! strictly ascending. The miner is `Copy`, so after an `Err` the caller's copy is as it was.
//! `select`: `LengthMismatch`, `NonFinite`, `InvalidParameter("progress")` outside `[0, 1]`.
//!
//! # Examples
//! Preset boundaries: four segments of the combined loss, one example from each, and the
//! quota of the empty top segment rolled back down to the hardest that remain.
//! ```
//! use hardmine::SOhem;
//! let sohem = SOhem::<f32, 8>::new(4, 4)?.with_edges(&[1.0, 2.0, 4.0])?;
//! let cls = [0.25, 0.5, 1.5, 1.25, 3.0, 2.5];
//! let loc = [0.0; 6];
//! // Segments [.., 1): {0, 1}; [1, 2): {2, 3}; [2, 4): {4, 5}; [4, ..): empty.
//! assert_eq!(sohem.select(&cls, &loc, 0.0)?.indices(), &[1, 2, 4, 5]);
//! // Edges must be finite and strictly ascending, one fewer than the strata.
//! assert!(SOhem::<f32, 8>::new(4, 4)?.with_edges(&[1.0, 1.0, 4.0]).is_err());
//! assert!(SOhem::<f32, 8>::new(4, 4)?.with_edges(&[1.0, 2.0]).is_err());
//! # Ok::<(), hardmine::Error>(())
//! ```

use super::selection::Selection;
use super::top_k::{Ranked, TopK};
use crate::kernel::blocks;
use crate::{check, Error, Real};
use heapless::Vec;

/// The most strata supported.
pub const MAX_STRATA: usize = 16;
/// Bins of the quantile histogram.
const QUANTILE_BINS: usize = 256;
/// Lanes of the screened passes.
const LANES: usize = 8;

/// The training-stage schedule of S-OHEM's loss weights: `alpha` (classification) goes
/// linearly from `alpha_start` at progress 0 to `alpha_end` at progress 1, `beta`
/// (localisation) from `beta_start` to `beta_end`.
///
/// # Examples
/// ```
/// use hardmine::{SOhem, SOhemSchedule};
/// let schedule = SOhemSchedule { alpha_start: 1.0, alpha_end: 0.0, ..SOhemSchedule::default() };
/// let sohem = SOhem::<f32, 8>::new(2, 1)?.with_schedule(schedule)?;
/// assert_eq!(sohem.weights(0.5), (0.5, 0.75));
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SOhemSchedule<T> {
    /// `alpha(0)`, the weight of `L_cls` at the start of training.
    pub alpha_start: T,
    /// `alpha(1)`, the weight of `L_cls` at the end of training.
    pub alpha_end: T,
    /// `beta(0)`, the weight of `L_loc` at the start of training.
    pub beta_start: T,
    /// `beta(1)`, the weight of `L_loc` at the end of training.
    pub beta_end: T,
}

impl<T: Real> Default for SOhemSchedule<T> {
    /// Ours (the paper gives none): `alpha` 1 -> 0.5, `beta` 0.5 -> 1.
    fn default() -> Self {
        Self {
            alpha_start: T::ONE,
            alpha_end: T::HALF,
            beta_start: T::HALF,
            beta_end: T::ONE,
        }
    }
}

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
    schedule: SOhemSchedule<T>,
    /// Preset stratum boundaries (the first `strata - 1` are used), or `None` for quantiles.
    edges: Option<[T; MAX_STRATA - 1]>,
}

impl<T: Real, const K: usize> SOhem<T, K> {
    /// `k` examples from `strata` equal-quota quantile strata, with the default schedule.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn new(k: usize, strata: usize) -> Result<Self, Error> {
        check::parameter((1..=K).contains(&k), "k")?;
        if strata == 0 || strata > MAX_STRATA || strata > k {
            return Err(Error::InvalidParameter("strata"));
        }
        let mut quotas = [0; MAX_STRATA];
        let (base, extra) = (k / strata, k % strata);
        for (j, q) in quotas.iter_mut().take(strata).enumerate() {
            *q = base + usize::from(j >= strata - extra);
        }
        Ok(Self {
            k,
            strata,
            quotas,
            schedule: SOhemSchedule::default(),
            edges: None,
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

    /// The same miner with another schedule of the loss weights.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn with_schedule(self, schedule: SOhemSchedule<T>) -> Result<Self, Error> {
        let SOhemSchedule {
            alpha_start,
            alpha_end,
            beta_start,
            beta_end,
        } = schedule;
        if [alpha_start, alpha_end, beta_start, beta_end]
            .iter()
            .any(|&v| !(v.is_finite() && v >= T::ZERO))
        {
            return Err(Error::InvalidParameter("schedule"));
        }
        Ok(Self { schedule, ..self })
    }

    /// The same miner with preset strata: `edges` are the `strata - 1` boundaries of the
    /// combined loss, ascending; stratum `j` holds `edges[j - 1] <= c < edges[j]` (the first
    /// from `-inf`, the last to `+inf`).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn with_edges(self, edges: &[T]) -> Result<Self, Error> {
        check::length(self.strata - 1, edges.len())?;
        let ascending = edges.iter().zip(edges.iter().skip(1)).all(|(&a, &b)| a < b);
        if !(ascending && edges.iter().all(|e| e.is_finite())) {
            return Err(Error::InvalidParameter("edges"));
        }
        let mut e = [T::ZERO; MAX_STRATA - 1];
        e.iter_mut().zip(edges).for_each(|(d, &s)| *d = s);
        Ok(Self {
            edges: Some(e),
            ..self
        })
    }

    /// `(alpha(s), beta(s))` at training progress `s`.
    pub fn weights(&self, progress: T) -> (T, T) {
        let s = &self.schedule;
        (
            s.alpha_start + (s.alpha_end - s.alpha_start) * progress,
            s.beta_start + (s.beta_end - s.beta_start) * progress,
        )
    }

    /// Selects `min(k, N)` examples from every stratum of the combined loss.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn select(&self, l_cls: &[T], l_loc: &[T], progress: T) -> Result<Selection<K>, Error> {
        check::length(l_cls.len(), l_loc.len())?;
        check::all_finite(l_cls)?;
        check::all_finite(l_loc)?;
        check::unit(progress, "progress")?;
        let (alpha, beta) = self.weights(progress);
        let losses = Combined {
            cls: l_cls,
            loc: l_loc,
            alpha,
            beta,
        };
        let strata = match &self.edges {
            Some(edges) => Strata::preset(&losses, self.strata, edges),
            None => match losses.range() {
                Some((lo, hi)) => Strata::quantile(&losses, self.strata, lo, hi),
                None => return Ok(Selection::new()),
            },
        };
        let take = self.takes(&strata.sizes);
        let mut out: Vec<usize, K> = Vec::new();
        for (j, &t) in take.iter().enumerate().take(self.strata) {
            strata.take_hardest(&losses, j, t, &mut out);
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

/// The combined losses `alpha L_cls + beta L_loc` of one call, computed where they are read.
struct Combined<'a, T> {
    cls: &'a [T],
    loc: &'a [T],
    alpha: T,
    beta: T,
}

impl<T: Real> Combined<'_, T> {
    /// The combined loss of one example.
    #[inline(always)]
    fn of(&self, cls: T, loc: T) -> T {
        self.alpha * cls + self.beta * loc
    }

    /// Every combined loss, in index order.
    fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.cls.iter().zip(self.loc).map(|(&x, &y)| self.of(x, y))
    }

    /// `(min c, max c)`, or `None` for no examples.
    fn range(&self) -> Option<(T, T)> {
        let first = self.iter().next()?;
        Some(
            self.iter()
                .fold((first, first), |(lo, hi), c| (lo.min(c), hi.max(c))),
        )
    }
}

/// How a combined loss is assigned to its stratum.
enum Assign<T> {
    /// Quantile strata: the histogram bin of `(c - lo) / span`, and `first[j]`, the first bin of
    /// stratum `j` (non-decreasing; stratum `j` covers bins `first[j]..first[j + 1]`).
    Quantile {
        lo: T,
        span: T,
        first: [usize; MAX_STRATA + 1],
    },
    /// Preset strata: the number of edges at or below `c`.
    Preset { edges: [T; MAX_STRATA - 1] },
}

/// The strata of one call: each example's stratum, and each stratum's size and range of
/// combined losses (`(min, max)` over its members), by which a stratum's pass skips, with one
/// comparison, every element outside it.
struct Strata<T> {
    count: usize,
    assign: Assign<T>,
    sizes: [usize; MAX_STRATA],
    ranges: [(T, T); MAX_STRATA],
}

impl<T: Real> Strata<T> {
    /// Quantile strata of losses spanning `[lo, hi]`, from a histogram of their bins.
    fn quantile(losses: &Combined<'_, T>, count: usize, lo: T, hi: T) -> Self {
        let span = hi - lo;
        // Per bin: its count and the range of its combined losses.
        let mut hist = [0usize; QUANTILE_BINS];
        let mut range = [(hi, lo); QUANTILE_BINS];
        for c in losses.iter() {
            let b = quantile_bin(c, lo, span);
            if let (Some(h), Some(r)) = (hist.get_mut(b), range.get_mut(b)) {
                *h += 1;
                *r = widen(*r, c);
            }
        }
        let first = quantile_edges(&hist, losses.cls.len(), count);
        let (mut sizes, mut ranges) = ([0; MAX_STRATA], [(hi, lo); MAX_STRATA]);
        // Bins ascending, so each stratum folds its bins' ranges in the order of its bins.
        for (b, (&h, &(rlo, rhi))) in hist.iter().zip(&range).enumerate() {
            let j = stratum_of_bin(&first, count, b);
            if let (Some(s), Some(r)) = (sizes.get_mut(j), ranges.get_mut(j)) {
                *s += h;
                *r = (r.0.min(rlo), r.1.max(rhi));
            }
        }
        Self {
            count,
            assign: Assign::Quantile { lo, span, first },
            sizes,
            ranges,
        }
    }

    /// Preset strata at `edges` (the first `count - 1`), by one pass over the losses.
    fn preset(losses: &Combined<'_, T>, count: usize, edges: &[T; MAX_STRATA - 1]) -> Self {
        let mut strata = Self {
            count,
            assign: Assign::Preset { edges: *edges },
            sizes: [0; MAX_STRATA],
            ranges: [(T::ZERO, T::ZERO); MAX_STRATA],
        };
        for c in losses.iter() {
            let j = strata.stratum(c);
            if let (Some(s), Some(r)) = (strata.sizes.get_mut(j), strata.ranges.get_mut(j)) {
                // An empty stratum's range starts at its first member.
                *r = if *s == 0 { (c, c) } else { widen(*r, c) };
                *s += 1;
            }
        }
        strata
    }

    /// The stratum of combined loss `c`.
    #[inline]
    fn stratum(&self, c: T) -> usize {
        match &self.assign {
            Assign::Quantile { lo, span, first } => {
                stratum_of_bin(first, self.count, quantile_bin(c, *lo, *span))
            }
            Assign::Preset { edges } => edges
                .iter()
                .take(self.count - 1)
                .filter(|&&e| e <= c)
                .count(),
        }
    }

    /// Appends to `out` the `take` highest combined losses of stratum `j` (ties to the lower
    /// index), in one pass screened eight at a time by one branch-free test: in the
    /// stratum's range and at least the heap's entry key. The stratum itself (for quantile
    /// strata a bin, so a division) is computed only for a candidate.
    fn take_hardest<const K: usize>(
        &self,
        losses: &Combined<'_, T>,
        j: usize,
        take: usize,
        out: &mut Vec<usize, K>,
    ) {
        let (Ok(top), Some(&(lo, hi))) = (TopK::<T, K>::new(take), self.ranges.get(j)) else {
            return;
        };
        let mut hardest = Hardest {
            top,
            strata: self,
            j,
            lo,
            hi,
            floor: lo,
        };
        let (whole, (start, cls, loc)) = blocks::lanes::<T, LANES>(losses.cls, losses.loc);
        for (at, x, y) in whole {
            let mut c = [T::ZERO; LANES];
            for ((c, &x), &y) in c.iter_mut().zip(x).zip(y) {
                *c = losses.of(x, y);
            }
            if c.iter().fold(false, |any, &c| any | hardest.screens(c)) {
                for (i, &c) in c.iter().enumerate() {
                    hardest.offer(at + i, c);
                }
            }
        }
        // The rest, shorter than a chunk: offered without the screen.
        for (i, (&x, &y)) in cls.iter().zip(loc).enumerate() {
            hardest.offer(start + i, losses.of(x, y));
        }
        for e in hardest.top.sorted() {
            let _ = out.push(e.index);
        }
    }
}

/// One stratum's pass: the hardest kept so far and the screen that skips the rest.
struct Hardest<'s, T: Real, const K: usize> {
    top: TopK<T, K>,
    strata: &'s Strata<T>,
    j: usize,
    /// The stratum's range of combined losses.
    lo: T,
    hi: T,
    /// The least loss that can still enter: the heap's entry key, at least `lo`.
    floor: T,
}

impl<T: Real, const K: usize> Hardest<'_, T, K> {
    /// Whether `c` may enter (branch-free): in the range and at least the floor.
    #[inline(always)]
    fn screens(&self, c: T) -> bool {
        (c >= self.floor) & (c <= self.hi)
    }

    /// Offers example `index` of combined loss `c`, if it passes the screen and is in the
    /// stratum (the definition; the screen alone decides for losses inside the range).
    #[inline]
    fn offer(&mut self, index: usize, c: T) {
        if self.screens(c) && self.strata.stratum(c) == self.j {
            self.top.offer(Ranked { key: c, index });
            self.floor = self.top.entry_key().map_or(self.lo, |e| e.max(self.lo));
        }
    }
}

/// The stratum of histogram bin `b` among `count` quantile strata starting at bins `first`:
/// how many start at or below it, after the first. The starts are non-decreasing, so this is
/// the `j` with `first[j] <= b < first[j + 1]`.
fn stratum_of_bin(first: &[usize; MAX_STRATA + 1], count: usize, b: usize) -> usize {
    first
        .iter()
        .skip(1)
        .take(count - 1)
        .filter(|&&e| e <= b)
        .count()
}

/// The first bin of each stratum (the stratum edges of the quantile histogram): stratum `j`
/// starts at the first bin with at least `j N / S` examples below it; entries from `strata`
/// on are `QUANTILE_BINS`.
fn quantile_edges(
    hist: &[usize; QUANTILE_BINS],
    n: usize,
    strata: usize,
) -> [usize; MAX_STRATA + 1] {
    let mut first = [QUANTILE_BINS; MAX_STRATA + 1];
    first[0] = 0;
    let mut below = 0usize;
    let mut j = 0;
    for (b, &h) in hist.iter().enumerate() {
        while j + 1 < strata && below.saturating_mul(strata) >= (j + 1).saturating_mul(n) {
            j += 1;
            if let Some(e) = first.get_mut(j) {
                *e = b;
            }
        }
        below += h;
    }
    first
}

/// The histogram bin of `c` over `[lo, lo + span]` (all in bin 0 when `span` is 0).
#[inline(always)]
fn quantile_bin<T: Real>(c: T, lo: T, span: T) -> usize {
    if span > T::ZERO {
        ((c - lo) / span).bin(QUANTILE_BINS)
    } else {
        0
    }
}

/// A `(min, max)` range widened to hold `c`.
#[inline]
fn widen<T: Real>(r: (T, T), c: T) -> (T, T) {
    (r.0.min(c), r.1.max(c))
}
