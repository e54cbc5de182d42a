//! The shared loop of every element-wise loss: validation, weights, reduction, outputs.

use crate::kernel::padded;
use crate::{check, Error, Real, Reduction};

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

/// What an element-wise loss accepts as its second input.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Targets {
    /// Binary targets in `[0, 1]`.
    Unit,
    /// Any finite value (regression targets).
    Any,
}

/// The first bad element, in the documented precedence: per index, the weight, the input and
/// the target must be finite, then a unit target must lie in `[0, 1]`. Indices count from
/// `base` (the slices are a block starting there).
fn first_error<T: Real>(
    xs: &[T],
    ts: &[T],
    ws: Option<&[T]>,
    targets: Targets,
    base: usize,
) -> Option<Error> {
    let mut ws = ws.map(|w| w.iter());
    for (index, (&x, &t)) in (base..).zip(xs.iter().zip(ts)) {
        let w_ok = ws
            .as_mut()
            .and_then(Iterator::next)
            .is_none_or(|w| w.is_finite());
        if !(w_ok && x.is_finite() && t.is_finite()) {
            return Some(Error::NonFinite { index });
        }
        if targets == Targets::Unit && !(t >= T::ZERO && t <= T::ONE) {
            return Some(Error::InvalidTarget { index });
        }
    }
    None
}

/// Whether every element is valid: one branch-free pass the compiler vectorises (the
/// sequential `first_error` only runs to name the culprit).
pub(crate) fn all_valid<T: Real>(xs: &[T], ts: &[T], ws: Option<&[T]>, targets: Targets) -> bool {
    let unit = targets == Targets::Unit;
    let ok = xs.iter().zip(ts).fold(true, |ok, (&x, &t)| {
        ok & x.is_finite() & t.is_finite() & (!unit | ((t >= T::ZERO) & (t <= T::ONE)))
    });
    ok & ws.is_none_or(|w| w.iter().fold(true, |ok, w| ok & w.is_finite()))
}

/// Whether every target is exactly 0 or 1 (hard labels, the detection case).
pub(crate) fn all_hard<T: Real>(ts: &[T]) -> bool {
    ts.iter()
        .fold(true, |ok, &t| ok & ((t == T::ZERO) | (t == T::ONE)))
}

/// Lanes of the compute pass: sixteen independent partial sums, a chunk the compiler can
/// vectorise (a single running float sum would serialise the loop).
pub(crate) const LANES: usize = 16;

/// One chunk's values.
pub(crate) type Lanes<T> = [T; LANES];

/// A lane function from a scalar element function `(x, t) -> (loss, grad)` (the same for
/// hard and soft targets).
#[inline(always)]
pub(crate) fn lanes<T: Real>(
    element: impl Fn(T, T) -> (T, T),
) -> impl Fn(bool, &Lanes<T>, &Lanes<T>, &mut Lanes<T>, &mut Lanes<T>) {
    let each = each(element);
    #[inline(always)]
    move |_, x, t, l, g| each(x, t, l, g)
}

/// A lane function that uses `hard` on blocks whose targets are all exactly 0 or 1 and
/// `soft` elsewhere.
#[inline(always)]
pub(crate) fn split<T: Real>(
    hard: impl Fn(&Lanes<T>, &Lanes<T>, &mut Lanes<T>, &mut Lanes<T>),
    soft: impl Fn(&Lanes<T>, &Lanes<T>, &mut Lanes<T>, &mut Lanes<T>),
) -> impl Fn(bool, &Lanes<T>, &Lanes<T>, &mut Lanes<T>, &mut Lanes<T>) {
    #[inline(always)]
    move |is_hard, x, t, l, g| {
        if is_hard {
            hard(x, t, l, g);
        } else {
            soft(x, t, l, g);
        }
    }
}

/// A scalar element function `(x, t) -> (loss, grad)` as a lane function of four arguments.
#[inline(always)]
pub(crate) fn each<T: Real>(
    element: impl Fn(T, T) -> (T, T),
) -> impl Fn(&Lanes<T>, &Lanes<T>, &mut Lanes<T>, &mut Lanes<T>) {
    #[inline(always)]
    move |x, t, l, g| {
        for (((l, g), &x), &t) in l.iter_mut().zip(g.iter_mut()).zip(x).zip(t) {
            (*l, *g) = element(x, t);
        }
    }
}

/// One chunk: per-lane `(weight * loss, weight * grad)`.
#[inline(always)]
fn chunk<T: Real, F>(
    x: &Lanes<T>,
    t: &Lanes<T>,
    w: Option<&[T]>,
    hard: bool,
    element: &F,
) -> (Lanes<T>, Lanes<T>)
where
    F: Fn(bool, &Lanes<T>, &Lanes<T>, &mut Lanes<T>, &mut Lanes<T>),
{
    let (mut l, mut g) = ([T::ZERO; LANES], [T::ZERO; LANES]);
    element(hard, x, t, &mut l, &mut g);
    if let Some(w) = w {
        for ((l, g), &w) in l.iter_mut().zip(g.iter_mut()).zip(w) {
            *l = *l * w;
            *g = *g * w;
        }
    }
    (l, g)
}

/// Elements per block of the single pass: validated, then computed while still in L1.
const BLOCK: usize = 64 * LANES; // 1,024: sixty-four chunks, 8 KB of f32 inputs

/// What one block computes with: the lane function, whether the block's targets are all hard,
/// the mean's divisor and which output the block's slice (if any) receives.
struct Pass<'f, F, T: Real> {
    element: &'f F,
    divisor: Option<T::Acc>,
    wants_grad: bool,
}

impl<F, T: Real> Pass<'_, F, T>
where
    F: Fn(bool, &Lanes<T>, &Lanes<T>, &mut Lanes<T>, &mut Lanes<T>),
{
    /// Computes one block of whole chunks (`HARD` fixed per call, so the lane function is
    /// specialised for it), adding the weighted losses to `acc` and writing `dst` if given.
    #[inline(always)]
    fn block<const HARD: bool>(
        &self,
        xs: &[T],
        ts: &[T],
        ws: Option<&[T]>,
        dst: Option<&mut [T]>,
        acc: &mut [T::Acc; LANES],
    ) {
        let mut t_chunks = ts.chunks_exact(LANES);
        let mut w_chunks = ws.map(|w| w.chunks_exact(LANES));
        let mut d_chunks = dst.map(|d| d.chunks_exact_mut(LANES));
        // Walked with `next()`, not `zip`: see `rowwise::run`.
        for x in xs.chunks_exact(LANES) {
            let Some(t) = t_chunks.next() else { break };
            let w = w_chunks.as_mut().and_then(Iterator::next);
            let (x, t) = (padded(x, T::ZERO), padded(t, T::ZERO));
            let (l, g) = chunk(&x, &t, w, HARD, self.element);
            self.emit(&l, &g, d_chunks.as_mut().and_then(Iterator::next), acc);
        }
    }

    /// Adds `l` to the lane sums and writes the gradient (scaled by the mean's divisor) or
    /// the per-element losses to `dst`.
    #[inline(always)]
    fn emit(&self, l: &[T], g: &[T], dst: Option<&mut [T]>, acc: &mut [T::Acc; LANES]) {
        for (a, &l) in acc.iter_mut().zip(l) {
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

/// Runs the pure lane function `element(hard, x, t, loss, grad)` (a chunk of `LANES` at a time;
/// see [`lanes`] for a scalar one) over `xs` and `ts` (and the optional per-element weights)
/// in one pass: after the lengths, each block of [`BLOCK`] elements is validated (an `Err`
/// names the first bad element, as a separate validation pass would), then computed while it
/// is in cache, with `hard = true` when every target of the block is exactly 0 or 1 (and
/// `targets` is `Unit`). Outputs before a bad block are written (DESIGN §4: ignore them).
pub(crate) fn run<T, F>(
    reduction: Reduction,
    xs: &[T],
    ts: &[T],
    weights: Option<&[T]>,
    targets: Targets,
    out: Output<'_, T>,
    element: F,
) -> Result<T, Error>
where
    T: Real,
    F: Fn(bool, &Lanes<T>, &Lanes<T>, &mut Lanes<T>, &mut Lanes<T>),
{
    let n = xs.len();
    check::length(n, ts.len())?;
    check::optional_length(n, weights)?;
    if let Some(len) = out.len() {
        check::length(n, len)?;
    }
    if n == 0 {
        return Ok(T::ZERO);
    }
    let pass = Pass {
        element: &element,
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
        if !all_valid(xb, tb, wb, targets) {
            let base = b * BLOCK;
            return Err(
                first_error(xb, tb, wb, targets, base).unwrap_or(Error::NonFinite { index: base })
            );
        }
        let hard = targets == Targets::Unit && all_hard(tb);
        // `split_at_checked`: the lengths agree (checked above), but the compiler cannot see
        // it through the block iterators, and `split_at` would keep a panic path.
        let full = xb.len() - xb.len() % LANES;
        let (xh, xt) = xb.split_at_checked(full).unwrap_or((xb, &[]));
        let (th, tt) = tb.split_at_checked(full).unwrap_or((tb, &[]));
        let (wh, wt) = match wb.and_then(|w| w.split_at_checked(full)) {
            Some((a, b)) => (Some(a), Some(b)),
            None => (None, None),
        };
        let (dh, dt) = match db.and_then(|d| d.split_at_mut_checked(full)) {
            Some((a, b)) => (Some(a), Some(b)),
            None => (None, None),
        };
        if hard {
            pass.block::<true>(xh, th, wh, dh, &mut acc);
        } else {
            pass.block::<false>(xh, th, wh, dh, &mut acc);
        }
        if !xt.is_empty() {
            // The tail (only in the last block), padded with zero-weight lanes.
            let (mut x, mut t, mut w) = ([T::ZERO; LANES], [T::ZERO; LANES], [T::ZERO; LANES]);
            x.iter_mut().zip(xt).for_each(|(d, &s)| *d = s);
            t.iter_mut().zip(tt).for_each(|(d, &s)| *d = s);
            for (i, d) in w.iter_mut().enumerate().take(xt.len()) {
                *d = wt.and_then(|w| w.get(i)).copied().unwrap_or(T::ONE);
            }
            let (l, g) = chunk(&x, &t, Some(&w), hard, &element);
            let m = xt.len();
            pass.emit(
                l.get(..m).unwrap_or(&[]),
                g.get(..m).unwrap_or(&[]),
                dt,
                &mut acc,
            );
        }
    }
    let total = acc.iter().fold(T::ZERO.widen(), |a, &b| a + b);
    Ok(reduced(total, pass.divisor))
}
