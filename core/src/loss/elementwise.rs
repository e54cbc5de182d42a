//! The shared loop of every element-wise loss: validation, weights, reduction, outputs.

use crate::check::{self, Targets};
#[cfg(not(feature = "small"))]
use crate::kernel::blocks::whole;
use crate::kernel::blocks::{self, Emit, LANES};
use crate::kernel::{padded, staged, Hard};
use crate::reduction::Divisor;
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

/// Elements per block of the single pass: validated, then computed while in L1, one loop per
/// stage over the block (see [`HardLogit`]). 128: measured against 64, 256, 512 and 1,024 for
/// focal (fixed-size blocks), 128 was fastest (the block's inputs and stage arrays, 3 KB in
/// f32, leave L1 to the streaming data), and a block's scratch stays small on a
/// microcontroller's stack.
pub(crate) const BLOCK: usize = 128;

/// One block in fixed-size arrays: the inputs and targets in, each element's loss and gradient
/// out.
pub(crate) struct Lanes<'a, T, const N: usize> {
    pub x: &'a [T; N],
    pub t: &'a [T; N],
    pub l: &'a mut [T; N],
    pub g: &'a mut [T; N],
}

/// A loss's computation over a block of `N` elements: per element `(loss, grad)` into `l` and
/// `g`. `hard`: every target of the block is exactly 0 or 1 (and targets are `Unit`).
pub(crate) trait Kernel<T> {
    fn block<const N: usize>(&self, hard: bool, lanes: Lanes<'_, T, N>);
}

/// One element function `(x, t) -> (loss, grad)` on every block; a branch-free one
/// vectorises.
pub(crate) struct Each<F>(pub F);

impl<T: Real, F: Fn(T, T) -> (T, T)> Kernel<T> for Each<F> {
    #[inline(always)]
    fn block<const N: usize>(&self, _: bool, Lanes { x, t, l, g }: Lanes<'_, T, N>) {
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
    fn block<const N: usize>(&self, _: bool, Lanes { x, t, l, g }: Lanes<'_, T, N>) {
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
    fn block<const N: usize>(&self, hard: bool, lanes: Lanes<'_, T, N>) {
        if hard {
            self.0.block(hard, lanes);
        } else {
            self.1.block(hard, lanes);
        }
    }
}

/// What every block computes with: the kernel and where its results go.
struct Pass<'k, K, T: Real> {
    kernel: &'k K,
    emit: Emit<T>,
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
        let lanes = Lanes {
            x,
            t,
            l: &mut l,
            g: &mut g,
        };
        self.kernel.block(hard, lanes);
        if let Some(w) = w {
            for ((l, g), &w) in l.iter_mut().zip(g.iter_mut()).zip(w) {
                *l = *l * w;
                *g = *g * w;
            }
        }
        if m == N {
            self.emit.emit(&l, &g, dst, acc);
        } else {
            let (l, g) = (l.get(..m).unwrap_or(&[]), g.get(..m).unwrap_or(&[]));
            self.emit.emit(l, g, dst, acc);
        }
    }

    /// The last, partial block: chunks of `LANES`, the last one padded.
    fn tail(&self, hard: bool, part: Part<'_, T>, acc: &mut [T::Acc; LANES]) {
        for (_, (x, t, w, d)) in blocks::chunks(part, LANES) {
            let lanes = (&padded(x, T::ZERO), &padded(t, T::ZERO));
            self.block::<LANES>(hard, lanes, w, d, acc, x.len());
        }
    }
}

/// A block of a call: inputs, targets, optional weights and optional output.
type Part<'a, T> = (&'a [T], &'a [T], Option<&'a [T]>, Option<&'a mut [T]>);

/// Runs `kernel` over `xs` and `ts` (and the optional per-element weights) in one pass: after
/// the lengths, each block of [`BLOCK`] elements is validated (an `Err` names the first bad
/// element, as a separate validation pass would), then computed while it is in cache, with
/// `hard = true` when every target of the block is exactly 0 or 1 (and `targets` is `Unit`).
/// Outputs before a bad block are written (DESIGN §4: ignore them). A mean divides by the
/// number of elements, or by `avg_factor + eps` when the loss has one (checked first: `Sum`
/// with a factor is `InvalidParameter("avg_factor")`, whatever the inputs).
pub(crate) fn run<T, K>(
    (reduction, avg_factor): (Reduction, Option<T::Acc>),
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
    let normalizer = reduction.normalizer(avg_factor)?;
    let n = xs.len();
    check::elementwise_lengths(xs, ts, weights, out.len())?;
    if n == 0 {
        return Ok(T::ZERO);
    }
    let divisor = normalizer.divisor(|| T::Acc::from_count(n as u64));
    let wants_grad = out.wants_grad();
    let emit = Emit {
        divisor: divisor.and_then(Divisor::count),
        wants_grad,
    };
    let pass = Pass {
        kernel: &kernel,
        emit,
    };
    let mut acc = [T::ZERO.widen(); LANES];
    let mut dst = out.slice();
    for (base, (xb, tb, wb, db)) in blocks::chunks((xs, ts, weights, dst.as_deref_mut()), BLOCK) {
        #[cfg(not(feature = "small"))]
        {
            let full = (whole::<T, BLOCK>(xb), whole::<T, BLOCK>(tb));
            let (valid, hard) = match full {
                (Some(x), Some(t)) => check::screen(x, t, wb, targets),
                _ => check::screen(xb, tb, wb, targets),
            };
            check::block((xb, tb, wb), targets, base, valid)?;
            match full {
                (Some(x), Some(t)) => pass.block(hard, (x, t), wb, db, &mut acc, BLOCK),
                _ => pass.tail(hard, (xb, tb, wb, db), &mut acc),
            }
        }
        // `small`: every block in padded chunks of `LANES`, the form of a partial block. The
        // same elements land in the same lane sums in the same order, so the results are
        // those of the whole-block form, bit for bit.
        #[cfg(feature = "small")]
        {
            let (valid, hard) = check::screen(xb, tb, wb, targets);
            check::block((xb, tb, wb), targets, base, valid)?;
            pass.tail(hard, (xb, tb, wb, db), &mut acc);
        }
    }
    let grad = dst.filter(|_| wants_grad);
    Ok(blocks::finish(blocks::total::<T>(&acc), divisor, grad))
}
