//! The shared loop of every element-wise loss: validation, weights, reduction, outputs.

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
/// the target must be finite, then a unit target must lie in `[0, 1]`.
fn first_error<T: Real>(xs: &[T], ts: &[T], ws: Option<&[T]>, targets: Targets) -> Option<Error> {
    let mut ws = ws.map(|w| w.iter());
    for (index, (&x, &t)) in xs.iter().zip(ts).enumerate() {
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
fn all_valid<T: Real>(xs: &[T], ts: &[T], ws: Option<&[T]>, targets: Targets) -> bool {
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

/// Lanes of the compute pass: eight independent partial sums, a chunk the compiler can
/// vectorise (a single running float sum would serialise the loop).
pub(crate) const LANES: usize = 8;

/// Eight values.
pub(crate) type Lanes<T> = [T; LANES];

/// A lane function from a scalar element function: `(loss, grad)` of each lane.
#[inline(always)]
pub(crate) fn lanes<T: Real>(
    element: impl Fn(T, T) -> (T, T),
) -> impl Fn(&Lanes<T>, &Lanes<T>, &mut Lanes<T>, &mut Lanes<T>) {
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
    element: &F,
) -> (Lanes<T>, Lanes<T>)
where
    F: Fn(&Lanes<T>, &Lanes<T>, &mut Lanes<T>, &mut Lanes<T>),
{
    let (mut l, mut g) = ([T::ZERO; LANES], [T::ZERO; LANES]);
    element(x, t, &mut l, &mut g);
    if let Some(w) = w {
        for ((l, g), &w) in l.iter_mut().zip(g.iter_mut()).zip(w) {
            *l = *l * w;
            *g = *g * w;
        }
    }
    (l, g)
}

/// The first `LANES` values of `s` as an array (zeros past its end).
#[inline(always)]
fn lanes_of<T: Real>(s: &[T]) -> Lanes<T> {
    let mut a = [T::ZERO; LANES];
    a.iter_mut().zip(s).for_each(|(d, &v)| *d = v);
    a
}

/// Runs the pure lane function `element(x, t, loss, grad)` (eight elements at a time; see
/// [`lanes`] for a scalar one) over `xs` and `ts` (and the optional per-element weights) after
/// checking every length and value up front.
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
    F: Fn(&Lanes<T>, &Lanes<T>, &mut Lanes<T>, &mut Lanes<T>),
{
    let n = xs.len();
    check::length(n, ts.len())?;
    check::optional_length(n, weights)?;
    if let Some(len) = out.len() {
        check::length(n, len)?;
    }
    if !all_valid(xs, ts, weights, targets) {
        return Err(first_error(xs, ts, weights, targets).unwrap_or(Error::NonFinite { index: 0 }));
    }
    if n == 0 {
        return Ok(T::ZERO);
    }
    let divisor = reduction.divisor(n).map(|n| T::Acc::from_count(n as u64));
    let wants_grad = out.wants_grad();
    let mut sink = out.slice();
    let mut acc = [T::ZERO.widen(); LANES];
    let full = n - n % LANES;
    let (xh, xt) = xs.split_at(full);
    let (th, tt) = ts.split_at(full);
    let (wh, wt) = match weights {
        Some(w) => {
            let (a, b) = w.split_at(full);
            (Some(a), Some(b))
        }
        None => (None, None),
    };
    let mut emit = |offset: usize, l: &[T], g: &[T], acc: &mut [T::Acc; LANES]| {
        for (a, &l) in acc.iter_mut().zip(l) {
            *a = *a + l.widen();
        }
        if let Some(dst) = sink
            .as_deref_mut()
            .and_then(|s| s.get_mut(offset..offset + l.len()))
        {
            let src = if wants_grad { g } else { l };
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = if wants_grad { scaled(v, divisor) } else { v };
            }
        }
    };
    let mut w_chunks = wh.map(|w| w.chunks_exact(LANES));
    // Walked with `next()`, not `zip`: see `rowwise::run`.
    let mut t_chunks = th.chunks_exact(LANES);
    for (k, x) in xh.chunks_exact(LANES).enumerate() {
        let Some(t) = t_chunks.next() else { break };
        let w = w_chunks.as_mut().and_then(Iterator::next);
        let (l, g) = chunk(&lanes_of(x), &lanes_of(t), w, &element);
        emit(k * LANES, &l, &g, &mut acc);
    }
    if !xt.is_empty() {
        // The tail, padded with zero-weight lanes.
        let (mut x, mut t, mut w) = ([T::ZERO; LANES], [T::ZERO; LANES], [T::ZERO; LANES]);
        x.iter_mut().zip(xt).for_each(|(d, &s)| *d = s);
        t.iter_mut().zip(tt).for_each(|(d, &s)| *d = s);
        for (i, d) in w.iter_mut().enumerate().take(xt.len()) {
            *d = wt.and_then(|w| w.get(i)).copied().unwrap_or(T::ONE);
        }
        let (l, g) = chunk(&x, &t, Some(&w), &element);
        let m = xt.len();
        emit(
            full,
            l.get(..m).unwrap_or(&[]),
            g.get(..m).unwrap_or(&[]),
            &mut acc,
        );
    }
    let total = acc.iter().fold(T::ZERO.widen(), |a, &b| a + b);
    Ok(reduced(total, divisor))
}
