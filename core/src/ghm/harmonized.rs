//! The GHM engine shared by GHM-C and GHM-R: histogram, moving average, weighting.

use super::histogram::{BinWeights, GradientDensity, GradientHistogram};
use crate::check::{self, Targets};
use crate::kernel::blocks;
#[cfg(not(feature = "small"))]
use crate::kernel::blocks::{whole, whole_mut};
use crate::kernel::padded;
use crate::{Error, Real};

/// One element's `(gradient norm, loss, d loss)`, or `None` when its label weight masks it.
pub(crate) type Item<T> = Result<Option<(T, T, T)>, Error>;

/// What distinguishes GHM-C from GHM-R: the per-element loss and its gradient norm.
pub trait GhmKind<T: Real>: Copy + crate::num::private::Sealed {
    /// What the kind accepts as targets (validated by `check::ghm_element`).
    #[doc(hidden)]
    const TARGETS: Targets;

    /// The gradient norm in `[0, 1]`, loss and gradient of one valid `(input, target)` pair.
    #[doc(hidden)]
    fn element(&self, x: T, t: T) -> (T, T, T);

    /// Whether every element of this block is valid (finite inputs and label weights, and
    /// targets the fast form accepts), so that [`fast`](Self::fast) may evaluate it.
    #[doc(hidden)]
    fn fast_block(&self, xs: &[T], ts: &[T], label_weights: Option<&[T]>) -> bool;

    /// `(gradient norm, loss, gradient)` of each element of a chunk of a block `fast_block`
    /// accepted, into `norm`, `loss` and `grad`: branch-free, in `T`, each stage a loop over
    /// the chunk, so that they vectorise.
    #[doc(hidden)]
    fn fast<const N: usize>(&self, chunk: FastChunk<'_, T, N>);
}

/// One chunk of the fast form in fixed-size arrays: inputs and targets in, each element's
/// gradient norm, loss and gradient out.
#[doc(hidden)]
pub struct FastChunk<'a, T, const N: usize> {
    pub x: &'a [T; N],
    pub t: &'a [T; N],
    pub norm: &'a mut [T; N],
    pub loss: &'a mut [T; N],
    pub grad: &'a mut [T; N],
}

/// Elements per block: a block is validated, then counted or weighted while in cache. Both
/// phases cut a chunk into the same blocks, so an element takes the same form (fast or
/// scalar) and lands in the same bin in both.
const BLOCK: usize = 512;
/// Elements of the fast form's whole chunks (fixed-size arrays, one loop per stage).
const CHUNK: usize = 128;
/// Lanes of the chunks of a block's last, partial chunk (padded).
const LANES: usize = 8;
/// Independent copies of the per-bin counters and sums: most elements fall in one bin, and
/// rotating through copies breaks the chain of dependent updates to it.
const COPIES: usize = 4;
const _: () = assert!(CHUNK.is_multiple_of(COPIES) && LANES.is_multiple_of(COPIES));

/// One chunk of `N` elements in the fast form, of which the first `m` are real (the rest pad
/// a short chunk): per element its bin, whether its label weight lets it count (never for a
/// padding element), its loss and its gradient.
struct Fast<T, const N: usize> {
    bin: [u32; N],
    valid: [bool; N],
    loss: [T; N],
    grad: [T; N],
}

impl<T: Real, const N: usize> Fast<T, N> {
    fn new() -> Self {
        Self {
            bin: [0; N],
            valid: [false; N],
            loss: [T::ZERO; N],
            grad: [T::ZERO; N],
        }
    }

    /// Fills in the chunk `x`, `t` (label weights `w`, `m` real elements), in place: the
    /// arrays are reused chunk after chunk (built and returned per chunk, they were zeroed
    /// and copied each time, 7% of GHM-C's time).
    #[inline(always)]
    fn fill<K: GhmKind<T>>(
        &mut self,
        kind: &K,
        bins: usize,
        (x, t): (&[T; N], &[T; N]),
        w: Option<&[T]>,
        m: usize,
    ) {
        match w {
            Some(w) => {
                let mut w = w.iter();
                self.valid
                    .iter_mut()
                    .for_each(|v| *v = w.next().is_some_and(|&w| w > T::ZERO));
            }
            None => self
                .valid
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = i < m),
        }
        let mut norm = [T::ZERO; N];
        kind.fast(FastChunk {
            x,
            t,
            norm: &mut norm,
            loss: &mut self.loss,
            grad: &mut self.grad,
        });
        if bins <= T::SMALL_BINS {
            self.bin
                .iter_mut()
                .zip(&norm)
                .for_each(|(b, &n)| *b = n.bin_small(bins));
        } else {
            self.bin
                .iter_mut()
                .zip(&norm)
                .for_each(|(b, &n)| *b = u32::try_from(n.bin(bins)).unwrap_or(u32::MAX));
        }
    }
}

/// What a pass does with the fast form of a chunk and the chunk's gradient slice.
trait Visit<T> {
    fn visit<const N: usize>(&mut self, fast: &Fast<T, N>, grad: Option<&mut [T]>);
}

/// Visits the fast form of each chunk of a block: whole chunks of [`CHUNK`], then the rest
/// in padded chunks of [`LANES`].
#[inline(always)]
fn fast_chunks<T: Real, K: GhmKind<T>>(
    kind: &K,
    bins: usize,
    (xb, tb, wb, gb): Chunk<'_, T>,
    visitor: &mut impl Visit<T>,
) {
    // `small`: the whole block in padded chunks of `LANES`. Lane `i` of a chunk uses counter
    // copy `i % COPIES` and both chunk sizes are multiples of `COPIES`, so every element
    // updates the same copy in the same order: the results are bit for bit the same.
    #[cfg(feature = "small")]
    {
        let mut lanes = Fast::<T, LANES>::new();
        for (_, (x, t, w, g)) in blocks::chunks((xb, tb, wb, gb), LANES) {
            let xt = (&padded(x, T::ZERO), &padded(t, T::ZERO));
            lanes.fill(kind, bins, xt, w, x.len());
            visitor.visit(&lanes, g);
        }
    }
    #[cfg(not(feature = "small"))]
    let mut fast = Fast::<T, CHUNK>::new();
    #[cfg(not(feature = "small"))]
    for (_, (x, t, w, g)) in blocks::chunks((xb, tb, wb, gb), CHUNK) {
        match (whole::<T, CHUNK>(x), whole::<T, CHUNK>(t)) {
            (Some(x), Some(t)) => {
                fast.fill(kind, bins, (x, t), w, CHUNK);
                visitor.visit(&fast, g);
            }
            _ => {
                let mut lanes = Fast::<T, LANES>::new();
                for (_, (x, t, w, g)) in blocks::chunks((x, t, w, g), LANES) {
                    let xt = (&padded(x, T::ZERO), &padded(t, T::ZERO));
                    lanes.fill(kind, bins, xt, w, x.len());
                    visitor.visit(&lanes, g);
                }
            }
        }
    }
}

/// Phase 1 (and the first pass of a one-shot call, `LOSS`): counts each element's bin into
/// one of `COPIES` copies; with `LOSS` also adds its loss to its bin's sum and writes its
/// unweighted gradient (0 for a masked element).
struct Count<'a, T: Real, const BINS: usize, const LOSS: bool> {
    counts: &'a mut [[u32; BINS]; COPIES],
    sums: &'a mut [[T::Acc; BINS]; COPIES],
}

impl<T: Real, const BINS: usize, const LOSS: bool> Visit<T> for Count<'_, T, BINS, LOSS> {
    #[inline(always)]
    fn visit<const N: usize>(&mut self, f: &Fast<T, N>, grad: Option<&mut [T]>) {
        let zero = T::ZERO.widen();
        let lanes = f.bin.iter().zip(&f.valid).zip(&f.loss);
        for (i, ((&b, &v), &l)) in lanes.enumerate() {
            let b = b as usize;
            if let Some(c) = self.counts.get_mut(i % COPIES).and_then(|c| c.get_mut(b)) {
                *c += u32::from(v);
            }
            if !LOSS {
                continue;
            }
            if let Some(s) = self.sums.get_mut(i % COPIES).and_then(|s| s.get_mut(b)) {
                *s = *s + if v { l.widen() } else { zero };
            }
        }
        if let (true, Some(g)) = (LOSS, grad) {
            let masked = |(d, (&v, &ok)): (&mut T, (&T, &bool))| *d = if ok { v } else { T::ZERO };
            let lanes = f.grad.iter().zip(&f.valid);
            match <&mut [T; N]>::try_from(&mut *g) {
                Ok(g) => g.iter_mut().zip(lanes).for_each(masked),
                Err(_) => g.iter_mut().zip(lanes).for_each(masked),
            }
        }
    }
}

/// Phase 3: weighs each gradient by its bin's factor (0 unless valid and its bin live) and
/// adds the losses of live elements to their bins' sums.
struct Weigh<'a, T: Real, const BINS: usize> {
    live: &'a [bool; BINS],
    factor: &'a [T::Acc; BINS],
    sums: &'a mut [[T::Acc; BINS]; COPIES],
}

impl<T: Real, const BINS: usize> Visit<T> for Weigh<'_, T, BINS> {
    #[inline(always)]
    fn visit<const N: usize>(&mut self, f: &Fast<T, N>, grad: Option<&mut [T]>) {
        let zero = T::ZERO.widen();
        // Gathered per lane, then weighted without branches (vector code).
        let (mut on, mut k) = ([false; N], [zero; N]);
        let gathered = on.iter_mut().zip(k.iter_mut());
        for ((on, k), (&b, &v)) in gathered.zip(f.bin.iter().zip(&f.valid)) {
            let b = b as usize;
            *on = v && self.live.get(b).copied().unwrap_or(false);
            *k = self.factor.get(b).copied().unwrap_or(zero);
        }
        let mut out = [T::ZERO; N];
        for (((o, &d), &k), &on) in out.iter_mut().zip(&f.grad).zip(&k).zip(&on) {
            let v = T::narrow(d.widen() * k);
            *o = if on { v } else { T::ZERO };
        }
        for (i, ((&b, &l), &on)) in f.bin.iter().zip(&f.loss).zip(&on).enumerate() {
            let b = b as usize;
            if let Some(s) = self.sums.get_mut(i % COPIES).and_then(|s| s.get_mut(b)) {
                *s = *s + if on { l.widen() } else { zero };
            }
        }
        if let Some(g) = grad {
            store(g, &out);
        }
    }
}

/// Writes `values` to the chunk `dst` (up to `N` long).
#[inline(always)]
fn store<T: Copy, const N: usize>(dst: &mut [T], values: &[T; N]) {
    match <&mut [T; N]>::try_from(&mut *dst) {
        Ok(d) => *d = *values,
        Err(_) => dst.iter_mut().zip(values).for_each(|(d, &v)| *d = v),
    }
}

/// Multiplies each gradient by the factor of the bin of its norm `|g|` (0 for a dead bin,
/// where only zero gradients of masked elements fall), a chunk at a time.
fn weigh_gradients<T: Real, const BINS: usize>(
    grad: &mut [T],
    factor: &[T::Acc; BINS],
    bins: usize,
) {
    for (_, g) in blocks::chunks(grad, CHUNK) {
        #[cfg(not(feature = "small"))]
        if let Some(g) = whole_mut::<T, CHUNK>(g) {
            weigh_chunk(g, factor, bins);
            continue;
        }
        for (_, g) in blocks::chunks(g, LANES) {
            let mut lanes: [T; LANES] = padded(g, T::ZERO);
            weigh_chunk(&mut lanes, factor, bins);
            g.iter_mut().zip(&lanes).for_each(|(d, &v)| *d = v);
        }
    }
}

/// [`weigh_gradients`] of one chunk: bins, then factors, then products, each a loop.
#[inline(always)]
fn weigh_chunk<T: Real, const BINS: usize, const N: usize>(
    g: &mut [T; N],
    factor: &[T::Acc; BINS],
    bins: usize,
) {
    let zero = T::ZERO.widen();
    let mut bin = [0u32; N];
    if bins <= T::SMALL_BINS {
        bin.iter_mut()
            .zip(g.iter())
            .for_each(|(b, &v)| *b = v.abs().bin_small(bins));
    } else {
        bin.iter_mut()
            .zip(g.iter())
            .for_each(|(b, &v)| *b = u32::try_from(v.abs().bin(bins)).unwrap_or(u32::MAX));
    }
    let mut k = [zero; N];
    k.iter_mut()
        .zip(&bin)
        .for_each(|(k, &b)| *k = factor.get(b as usize).copied().unwrap_or(zero));
    for (v, &k) in g.iter_mut().zip(&k) {
        *v = T::narrow(v.widen() * k);
    }
}

/// One chunk: inputs, targets, label weights and gradient.
type Chunk<'a, T> = (&'a [T], &'a [T], Option<&'a [T]>, Option<&'a mut [T]>);

/// A gradient-harmonized loss of kind `K` ([`GhmC`](crate::GhmC) or [`GhmR`](crate::GhmR))
/// with a histogram of at most `BINS` bins. See those aliases for the maths.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ghm<T: Real, K, const BINS: usize> {
    kind: K,
    density: GradientDensity<T, BINS>,
    loss_weight: T,
}

impl<T: Real, K: GhmKind<T>, const BINS: usize> Ghm<T, K, BINS> {
    pub(crate) fn with_kind(
        kind: K,
        bins: usize,
        momentum: T,
        loss_weight: T,
    ) -> Result<Self, Error> {
        let density = GradientDensity::new(bins, momentum)?;
        check::non_negative(loss_weight, "loss_weight")?;
        Ok(Self {
            kind,
            density,
            loss_weight,
        })
    }

    /// The moving-average state.
    pub fn density(&self) -> &GradientDensity<T, BINS> {
        &self.density
    }

    /// Its loss weight.
    pub fn loss_weight(&self) -> T {
        self.loss_weight
    }

    /// Its kind ([`Classification`](crate::Classification) or
    /// [`Regression`](crate::Regression), which knows its `mu`).
    pub fn kind(&self) -> &K {
        &self.kind
    }

    /// An empty histogram for [`observe`](Self::observe).
    pub fn histogram(&self) -> GradientHistogram<BINS> {
        self.density.histogram()
    }

    /// The scalar items of a block whose first element is at `base` of the call's slices.
    fn items<'s>(
        &'s self,
        xs: &'s [T],
        ts: &'s [T],
        label_weights: Option<&'s [T]>,
        base: usize,
    ) -> impl Iterator<Item = Item<T>> + 's {
        let mut weights = label_weights.map(|w| w.iter());
        (base..).zip(xs.iter().zip(ts)).map(move |(i, (&x, &t))| {
            let w = weights.as_mut().and_then(Iterator::next).copied();
            let valid = check::ghm_element((x, t, w), K::TARGETS, i)?;
            Ok(valid.then(|| self.kind.element(x, t)))
        })
    }

    /// Calls `f(base, xs, ts, label_weights, grad)` on each block of the call's slices
    /// (after checking their lengths), stopping at the first `Err`.
    fn blocks<'a, F>(
        xs: &'a [T],
        ts: &'a [T],
        label_weights: Option<&'a [T]>,
        grad: Option<&'a mut [T]>,
        mut f: F,
    ) -> Result<(), Error>
    where
        F: FnMut(
            usize,
            &'a [T],
            &'a [T],
            Option<&'a [T]>,
            Option<&'a mut [T]>,
        ) -> Result<(), Error>,
    {
        check::elementwise_lengths(xs, ts, label_weights, grad.as_ref().map(|g| g.len()))?;
        for (base, (xb, tb, wb, gb)) in blocks::chunks((xs, ts, label_weights, grad), BLOCK) {
            f(base, xb, tb, wb, gb)?;
        }
        Ok(())
    }

    /// Counts a chunk's gradient norms into `hist` (phase 1 of the streaming API). A label
    /// weight `<= 0` masks its element out.
    ///
    /// # Errors
    /// `LengthMismatch`, `NonFinite`, `InvalidTarget` (GHM-C); `hist` is unchanged then.
    pub fn observe(
        &self,
        hist: &mut GradientHistogram<BINS>,
        xs: &[T],
        ts: &[T],
        label_weights: Option<&[T]>,
    ) -> Result<(), Error> {
        let mut staged = *hist;
        self.scan::<false>(&mut staged, &mut None, xs, ts, label_weights, None)?;
        *hist = staged;
        Ok(())
    }

    /// One pass over a call's slices: counts each valid element's gradient-norm bin into
    /// `hist`; with `LOSS`, also adds its loss to its bin's sum (in one of `COPIES` copies)
    /// and writes its unweighted gradient (0 for a masked element) to `grad`. Stops at the
    /// first `Err` (`hist` and `sums` are then partly updated: callers stage them).
    fn scan<const LOSS: bool>(
        &self,
        hist: &mut GradientHistogram<BINS>,
        sums: &mut Option<[[T::Acc; BINS]; COPIES]>,
        xs: &[T],
        ts: &[T],
        label_weights: Option<&[T]>,
        grad: Option<&mut [T]>,
    ) -> Result<(), Error> {
        let zero = T::ZERO.widen();
        let bins = hist.bins();
        let sums = sums.get_or_insert([[zero; BINS]; COPIES]);
        Self::blocks(xs, ts, label_weights, grad, |base, xb, tb, wb, gb| {
            let mut counts = [[0u32; BINS]; COPIES];
            if self.kind.fast_block(xb, tb, wb) {
                let mut count = Count::<T, BINS, LOSS> {
                    counts: &mut counts,
                    sums,
                };
                fast_chunks(&self.kind, bins, (xb, tb, wb, gb), &mut count);
            } else {
                let mut sink = gb.map(|g| g.iter_mut());
                for item in self.items(xb, tb, wb, base) {
                    let mut g_out = T::ZERO;
                    if let Some((norm, loss, dloss)) = item? {
                        let b = norm.bin(bins);
                        if let Some(c) = counts.first_mut().and_then(|c| c.get_mut(b)) {
                            *c += 1;
                        }
                        if let (true, Some(s)) = (LOSS, sums.first_mut().and_then(|s| s.get_mut(b)))
                        {
                            *s = *s + loss.widen();
                        }
                        g_out = dloss;
                    }
                    if let (true, Some(slot)) = (LOSS, sink.as_mut().and_then(Iterator::next)) {
                        *slot = g_out;
                    }
                }
            }
            counts.iter().for_each(|c| hist.add(c));
            Ok(())
        })
    }

    /// Ends a batch (phase 2): folds its histogram into the moving average and returns the
    /// batch's weights.
    ///
    /// # Errors
    /// `InvalidParameter("bins")` for a histogram of another size; state unchanged.
    pub fn finish(&mut self, hist: &GradientHistogram<BINS>) -> Result<BinWeights<T, BINS>, Error> {
        self.density.update(hist)
    }

    /// A chunk's share of the loss under `weights`, with its gradient written to `grad` when
    /// given (phase 3). The chunk must be one that was observed for these weights; the shares
    /// of all chunks add up to the one-shot loss.
    ///
    /// # Errors
    /// As [`observe`](Self::observe), and `LengthMismatch` for `grad`.
    pub fn apply(
        &self,
        weights: &BinWeights<T, BINS>,
        xs: &[T],
        ts: &[T],
        label_weights: Option<&[T]>,
        grad: Option<&mut [T]>,
    ) -> Result<T, Error> {
        let zero = T::ZERO.widen();
        let bins = weights.bins();
        let scale = weights.scale(self.loss_weight);
        // Per bin: whether it is live (non-empty) and its gradient factor scale / D_b.
        let (live, factor) = weights.factors(scale);
        let mut sums = [[zero; BINS]; COPIES];
        // One element's gradient, adding its loss to its bin's sum.
        let weigh = |b: usize, valid: bool, loss: T, dloss: T, sum: &mut [T::Acc; BINS]| {
            let on = valid && live.get(b).copied().unwrap_or(false);
            if !on {
                return T::ZERO;
            }
            if let Some(s) = sum.get_mut(b) {
                *s = *s + loss.widen();
            }
            T::narrow(dloss.widen() * factor.get(b).copied().unwrap_or(zero))
        };
        Self::blocks(xs, ts, label_weights, grad, |base, xb, tb, wb, gb| {
            if !self.kind.fast_block(xb, tb, wb) {
                let mut sink = gb.map(|g| g.iter_mut());
                for item in self.items(xb, tb, wb, base) {
                    let g_out = match item? {
                        Some((norm, loss, dloss)) => {
                            let [first, ..] = &mut sums;
                            weigh(norm.bin(bins), true, loss, dloss, first)
                        }
                        None => T::ZERO,
                    };
                    if let Some(slot) = sink.as_mut().and_then(Iterator::next) {
                        *slot = g_out;
                    }
                }
                return Ok(());
            }
            let mut weigh = Weigh {
                live: &live,
                factor: &factor,
                sums: &mut sums,
            };
            fast_chunks(&self.kind, bins, (xb, tb, wb, gb), &mut weigh);
            Ok(())
        })?;
        Ok(weights.total(&sums, scale))
    }

    /// One batch in two passes: [`scan`](Self::scan) counts, sums each bin's losses and
    /// writes the unweighted gradients; after the moving average is updated, the second pass
    /// weights each gradient by its bin (`|gradient|` is the norm it was counted by, so it
    /// finds the same bin). The logistic is evaluated once per element.
    fn one_shot(
        &mut self,
        xs: &[T],
        ts: &[T],
        label_weights: Option<&[T]>,
        mut grad: Option<&mut [T]>,
    ) -> Result<T, Error> {
        let mut hist = self.histogram();
        let mut sums = None;
        self.scan::<true>(
            &mut hist,
            &mut sums,
            xs,
            ts,
            label_weights,
            grad.as_deref_mut(),
        )?;
        let weights = self.finish(&hist)?;
        let scale = weights.scale(self.loss_weight);
        if let Some(g) = grad {
            let (_, factor) = weights.factors(scale);
            weigh_gradients(g, &factor, hist.bins());
        }
        let zero = T::ZERO.widen();
        Ok(weights.total(&sums.unwrap_or([[zero; BINS]; COPIES]), scale))
    }

    /// The loss of one batch, advancing the moving average once.
    ///
    /// # Errors
    /// As [`observe`](Self::observe); the state is unchanged after an `Err`.
    pub fn value(&mut self, xs: &[T], ts: &[T], label_weights: Option<&[T]>) -> Result<T, Error> {
        self.one_shot(xs, ts, label_weights, None)
    }

    /// The loss of one batch and its gradient, advancing the moving average once.
    ///
    /// # Errors
    /// As [`observe`](Self::observe), and `LengthMismatch` for `grad`; the state is unchanged
    /// after an `Err`.
    pub fn value_and_grad(
        &mut self,
        xs: &[T],
        ts: &[T],
        label_weights: Option<&[T]>,
        grad: &mut [T],
    ) -> Result<T, Error> {
        self.one_shot(xs, ts, label_weights, Some(grad))
    }
}
