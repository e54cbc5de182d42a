//! The shared loop of every element-wise loss: validation, weights, reduction, outputs.

use crate::check::{self, Targets};
use crate::kernel::{padded, staged, Hard};
use crate::{Error, Real, Reduction};

/// Where an entry point writes besides the returned scalar.
pub(crate) enum Output<'a, T> {
    /// Only the scalar.
    Nothing,
    /// The gradient of the scalar with respect to the first input.
    Grad(&'a mut [T]),
    /// The weighted per-element losses, unreduced.
    PerElement(&'a mut [T]),
}

impl<'a, T> Output<'a, T> {
    /// The output slice, whichever kind it is.
    pub fn slice(self) -> Option<&'a mut [T]> {
        match self {
            Output::Nothing => None,
            Output::Grad(s) | Output::PerElement(s) => Some(s),
        }
    }

    pub fn len(&self) -> Option<usize> {
        match self {
            Output::Nothing => None,
            Output::Grad(s) | Output::PerElement(s) => Some(s.len()),
        }
    }

    pub fn wants_grad(&self) -> bool {
        matches!(self, Output::Grad(_))
    }
}

/// `x / divisor` through the accumulator, or `x` when there is no divisor.
#[inline]
pub(crate) fn scaled<T: Real>(x: T, divisor: Option<T::Acc>) -> T {
    match divisor {
        Some(d) => T::narrow(x.widen() / d),
        None => x,
    }
}

/// The reduced scalar of a sum `acc` of `count` weighted terms.
#[inline]
pub(crate) fn reduced<T: Real>(acc: T::Acc, divisor: Option<T::Acc>) -> T {
    match divisor {
        Some(d) => T::narrow(acc / d),
        None => T::narrow(acc),
    }
}

/// Elements per block of the single pass: validated, then computed while in L1, one loop per
/// stage over the block (see [`HardLogit`]). 128: measured against 64, 256, 512 and 1,024 for
/// focal (fixed-size blocks), 128 was fastest (the block's inputs and stage arrays, 3 KB in
/// f32, leave L1 to the streaming data), and a block's scratch stays small on a
/// microcontroller's stack.
pub(crate) const BLOCK: usize = 128;

/// Lanes of the partial sums, and the chunk of the last, partial block (padded, so that the
/// kernels only ever see whole arrays).
pub(crate) const LANES: usize = 16;

/// A loss's computation over a block of `N` elements: per element `(loss, grad)` into `l` and
/// `g`. `hard`: every target of the block is exactly 0 or 1 (and targets are `Unit`).
pub(crate) trait Kernel<T> {
    fn block<const N: usize>(
        &self,
        hard: bool,
        x: &[T; N],
        t: &[T; N],
        l: &mut [T; N],
        g: &mut [T; N],
    );
}

/// One element function `(x, t) -> (loss, grad)` on every block; a branch-free one
/// vectorises.
pub(crate) struct Each<F>(pub F);

impl<T: Real, F: Fn(T, T) -> (T, T)> Kernel<T> for Each<F> {
    #[inline(always)]
    fn block<const N: usize>(
        &self,
        _: bool,
        x: &[T; N],
        t: &[T; N],
        l: &mut [T; N],
        g: &mut [T; N],
    ) {
        for (((l, g), &x), &t) in l.iter_mut().zip(g.iter_mut()).zip(x).zip(t) {
            (*l, *g) = (self.0)(x, t);
        }
    }
}

/// An element function `(t, Hard) -> (loss, grad)` of a hard target and the logistic
/// quantities of its logit in the target's frame ([`Hard`]), for blocks of hard targets; the
/// logistic's two transcendental stages run first, each a loop over the block ([`staged`]).
pub(crate) struct HardLogit<F>(pub F);

impl<T: Real, F: Fn(T, Hard<T>) -> (T, T)> Kernel<T> for HardLogit<F> {
    #[inline(always)]
    fn block<const N: usize>(
        &self,
        _: bool,
        x: &[T; N],
        t: &[T; N],
        l: &mut [T; N],
        g: &mut [T; N],
    ) {
        let (mut e, mut lp) = ([T::Stage::default(); N], [T::ZERO; N]);
        staged(x, &mut e, &mut lp);
        let parts = e.iter().zip(&lp);
        for ((((l, g), &x), &t), (&e, &lp)) in
            l.iter_mut().zip(g.iter_mut()).zip(x).zip(t).zip(parts)
        {
            (*l, *g) = (self.0)(t, Hard::new(x, t, e, lp));
        }
    }
}

/// The first kernel on blocks whose targets are all hard, the second elsewhere.
pub(crate) struct Split<H, S>(pub H, pub S);

impl<T: Real, H: Kernel<T>, S: Kernel<T>> Kernel<T> for Split<H, S> {
    #[inline(always)]
    fn block<const N: usize>(
        &self,
        hard: bool,
        x: &[T; N],
        t: &[T; N],
        l: &mut [T; N],
        g: &mut [T; N],
    ) {
        if hard {
            self.0.block(hard, x, t, l, g);
        } else {
            self.1.block(hard, x, t, l, g);
        }
    }
}

/// What every block computes with: the kernel, the mean's divisor and whether the output
/// slice (if any) receives the gradient or the per-element losses.
struct Pass<'k, K, T: Real> {
    kernel: &'k K,
    divisor: Option<T::Acc>,
    wants_grad: bool,
}

impl<K: Kernel<T>, T: Real> Pass<'_, K, T> {
    /// Computes the whole block `x`, `t` and emits its first `m` elements (all but a padded
    /// tail's), weighted by `w` if given.
    #[inline(always)]
    fn block<const N: usize>(
        &self,
        hard: bool,
        (x, t): (&[T; N], &[T; N]),
        w: Option<&[T]>,
        dst: Option<&mut [T]>,
        acc: &mut [T::Acc; LANES],
        m: usize,
    ) {
        let (mut l, mut g) = ([T::ZERO; N], [T::ZERO; N]);
        self.kernel.block(hard, x, t, &mut l, &mut g);
        if let Some(w) = w {
            for ((l, g), &w) in l.iter_mut().zip(g.iter_mut()).zip(w) {
                *l = *l * w;
                *g = *g * w;
            }
        }
        if m == N {
            self.emit(&l, &g, dst, acc);
        } else {
            let (l, g) = (l.get(..m).unwrap_or(&[]), g.get(..m).unwrap_or(&[]));
            self.emit(l, g, dst, acc);
        }
    }

    /// The last, partial block: chunks of `LANES`, the last one padded.
    fn tail(
        &self,
        hard: bool,
        (xs, ts): (&[T], &[T]),
        ws: Option<&[T]>,
        dst: Option<&mut [T]>,
        acc: &mut [T::Acc; LANES],
    ) {
        let mut t_chunks = ts.chunks(LANES);
        let mut w_chunks = ws.map(|w| w.chunks(LANES));
        let mut d_chunks = dst.map(|d| d.chunks_mut(LANES));
        for x in xs.chunks(LANES) {
            let Some(t) = t_chunks.next() else { break };
            let lanes = (&padded(x, T::ZERO), &padded(t, T::ZERO));
            let w = w_chunks.as_mut().and_then(Iterator::next);
            let d = d_chunks.as_mut().and_then(Iterator::next);
            self.block::<LANES>(hard, lanes, w, d, acc, x.len());
        }
    }

    /// Adds `l` to the lane sums and writes the gradient (scaled by the mean's divisor) or
    /// the per-element losses to `dst`.
    #[inline(always)]
    fn emit(&self, l: &[T], g: &[T], dst: Option<&mut [T]>, acc: &mut [T::Acc; LANES]) {
        let (chunks, rest) = l.as_chunks::<LANES>();
        for c in chunks {
            for (a, &l) in acc.iter_mut().zip(c) {
                *a = *a + l.widen();
            }
        }
        for (a, &l) in acc.iter_mut().zip(rest) {
            *a = *a + l.widen();
        }
        // Three loops, not one with a choice per element: the compiler would compute the
        // division for every element and then select.
        match (dst, self.wants_grad, self.divisor) {
            (Some(dst), true, Some(divisor)) => {
                for (d, &v) in dst.iter_mut().zip(g) {
                    *d = scaled(v, Some(divisor));
                }
            }
            (Some(dst), true, None) => dst.iter_mut().zip(g).for_each(|(d, &v)| *d = v),
            (Some(dst), false, _) => dst.iter_mut().zip(l).for_each(|(d, &v)| *d = v),
            (None, _, _) => {}
        }
    }
}

/// Runs `kernel` over `xs` and `ts` (and the optional per-element weights) in one pass: after
/// the lengths, each block of [`BLOCK`] elements is validated (an `Err` names the first bad
/// element, as a separate validation pass would), then computed while it is in cache, with
/// `hard = true` when every target of the block is exactly 0 or 1 (and `targets` is `Unit`).
/// Outputs before a bad block are written (DESIGN §4: ignore them).
pub(crate) fn run<T, K>(
    reduction: Reduction,
    xs: &[T],
    ts: &[T],
    weights: Option<&[T]>,
    targets: Targets,
    out: Output<'_, T>,
    kernel: K,
) -> Result<T, Error>
where
    T: Real,
    K: Kernel<T>,
{
    let n = xs.len();
    check::elementwise_lengths(xs, ts, weights, out.len())?;
    if n == 0 {
        return Ok(T::ZERO);
    }
    let pass = Pass {
        kernel: &kernel,
        divisor: reduction.divisor(n).map(|n| T::Acc::from_count(n as u64)),
        wants_grad: out.wants_grad(),
    };
    let mut acc = [T::ZERO.widen(); LANES];
    let mut t_blocks = ts.chunks(BLOCK);
    let mut w_blocks = weights.map(|w| w.chunks(BLOCK));
    let mut d_blocks = out.slice().map(|d| d.chunks_mut(BLOCK));
    for (b, xb) in xs.chunks(BLOCK).enumerate() {
        let Some(tb) = t_blocks.next() else { break };
        let wb = w_blocks.as_mut().and_then(Iterator::next);
        let db = d_blocks.as_mut().and_then(Iterator::next);
        let full = (<&[T; BLOCK]>::try_from(xb), <&[T; BLOCK]>::try_from(tb));
        let (valid, hard) = match full {
            (Ok(x), Ok(t)) => check::screen(x, t, wb, targets),
            _ => check::screen(xb, tb, wb, targets),
        };
        check::block((xb, tb, wb), targets, b * BLOCK, valid)?;
        match full {
            (Ok(x), Ok(t)) => pass.block(hard, (x, t), wb, db, &mut acc, BLOCK),
            _ => pass.tail(hard, (xb, tb), wb, db, &mut acc),
        }
    }
    let total = acc.iter().fold(T::ZERO.widen(), |a, &b| a + b);
    Ok(reduced(total, pass.divisor))
}
