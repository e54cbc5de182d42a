//! Input validation shared by every entry point (DESIGN §4), and by the sibling crates
//! (`hardmine-detect`, `hardmine-gpu`) that must answer bad input as the core does.

use crate::{ClassLabel, Error, Real};

/// `Err(LengthMismatch)` unless `got == expected`.
#[inline]
pub fn length(expected: usize, got: usize) -> Result<(), Error> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::LengthMismatch { expected, got })
    }
}

/// `Err(NonFinite { index })` unless `x` is finite.
#[inline]
pub(crate) fn finite<T: Real>(x: T, index: usize) -> Result<T, Error> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(Error::NonFinite { index })
    }
}

/// A finite binary target in `[0, 1]`.
#[inline]
pub(crate) fn unit_target<T: Real>(t: T, index: usize) -> Result<T, Error> {
    let t = finite(t, index)?;
    if t >= T::ZERO && t <= T::ONE {
        Ok(t)
    } else {
        Err(Error::InvalidTarget { index })
    }
}

/// The first non-finite element of `xs`, as an error. (A branch-free pass the compiler
/// vectorises; the search for the culprit only runs when there is one.)
pub fn all_finite<T: Real>(xs: &[T]) -> Result<(), Error> {
    if xs.iter().fold(true, |ok, x| ok & x.is_finite()) {
        return Ok(());
    }
    match xs.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(Error::NonFinite { index }),
        None => Ok(()),
    }
}

/// A length check for an optional slice.
#[inline]
pub(crate) fn optional_length<T>(expected: usize, xs: Option<&[T]>) -> Result<(), Error> {
    xs.map_or(Ok(()), |xs| length(expected, xs.len()))
}

/// `Err(InvalidParameter(name))` unless `ok`: a constructor's check of one hyper-parameter.
#[inline]
pub fn parameter(ok: bool, name: &'static str) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidParameter(name))
    }
}

/// A finite hyper-parameter `>= 0` (gamma, beta, a loss weight), else `InvalidParameter(name)`.
#[inline]
pub fn non_negative<T: Real>(v: T, name: &'static str) -> Result<(), Error> {
    parameter(v.is_finite() && v >= T::ZERO, name)
}

/// A finite hyper-parameter `> 0` (ASL1's mu), else `InvalidParameter(name)`.
#[inline]
pub fn positive<T: Real>(v: T, name: &'static str) -> Result<(), Error> {
    parameter(v.is_finite() && v > T::ZERO, name)
}

/// A hyper-parameter in `[0, 1]` (an alpha, a fraction; NaN fails), else
/// `InvalidParameter(name)`.
#[inline]
pub fn unit<T: Real>(v: T, name: &'static str) -> Result<(), Error> {
    parameter(v >= T::ZERO && v <= T::ONE, name)
}

/// `rows * cols`, or `Err(InvalidParameter(name))` when it overflows.
#[inline]
pub(crate) fn product(rows: usize, cols: usize, name: &'static str) -> Result<usize, Error> {
    rows.checked_mul(cols).ok_or(Error::InvalidParameter(name))
}

/// What an element-wise loss accepts as its second input.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[doc(hidden)]
pub enum Targets {
    /// Binary targets in `[0, 1]`.
    Unit,
    /// Any finite value (regression targets).
    Any,
}

/// The first bad element, in the documented precedence: per index, the weight, the input and
/// the target must be finite, then a unit target must lie in `[0, 1]`. Indices count from
/// `base` (the slices are a block starting there).
pub(crate) fn first_error<T: Real>(
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
        if !target_ok(t, targets) {
            return Some(Error::InvalidTarget { index });
        }
    }
    None
}

/// Whether every element is valid: one branch-free pass the compiler vectorises (the
/// sequential `first_error` only runs to name the culprit).
pub(crate) fn all_valid<T: Real>(xs: &[T], ts: &[T], ws: Option<&[T]>, targets: Targets) -> bool {
    let ok = xs.iter().zip(ts).fold(true, |ok, (&x, &t)| {
        ok & x.is_finite() & target_ok(t, targets)
    });
    ok & weights_ok(ws)
}

/// A target's validity, without branches: finite, and in `[0, 1]` for `Unit`.
#[inline(always)]
fn target_ok<T: Real>(t: T, targets: Targets) -> bool {
    t.is_finite() & ((targets != Targets::Unit) | ((t >= T::ZERO) & (t <= T::ONE)))
}

/// Whether every weight (if any) is finite.
#[inline(always)]
fn weights_ok<T: Real>(ws: Option<&[T]>) -> bool {
    ws.is_none_or(|w| w.iter().fold(true, |ok, w| ok & w.is_finite()))
}

/// `(all_valid, all_hard)` of a block, branch-free passes over it (inlined, so a whole block's
/// loops have a constant length: no remainder code). Hard targets (exactly 0 or 1) are valid
/// unit targets, so a hard block of a `Unit` loss only checks its inputs' finiteness.
#[inline(always)]
pub(crate) fn screen<T: Real>(
    xs: &[T],
    ts: &[T],
    ws: Option<&[T]>,
    targets: Targets,
) -> (bool, bool) {
    let (finite, hard) = xs.iter().zip(ts).fold((true, true), |(f, h), (&x, &t)| {
        (f & x.is_finite(), h & ((t == T::ZERO) | (t == T::ONE)))
    });
    let hard = (targets == Targets::Unit) & hard;
    let targets_ok = hard || ts.iter().fold(true, |ok, &t| ok & target_ok(t, targets));
    (finite & targets_ok & weights_ok(ws), hard)
}

/// The length checks of an element-wise call: targets, optional weights and the output slice
/// (if any) must have the inputs' length, in that order.
#[inline]
pub(crate) fn elementwise_lengths<T>(
    xs: &[T],
    ts: &[T],
    ws: Option<&[T]>,
    out_len: Option<usize>,
) -> Result<(), Error> {
    length(xs.len(), ts.len())?;
    optional_length(xs.len(), ws)?;
    out_len.map_or(Ok(()), |len| length(xs.len(), len))
}

/// The validation of a block of an element-wise call whose first element is at `base`:
/// `Err` names the first bad element (see [`first_error`]).
#[inline(always)]
pub(crate) fn block<T: Real>(
    (xs, ts, ws): (&[T], &[T], Option<&[T]>),
    targets: Targets,
    base: usize,
    valid: bool,
) -> Result<(), Error> {
    if valid {
        Ok(())
    } else {
        Err(first_error(xs, ts, ws, targets, base).unwrap_or(Error::NonFinite { index: base }))
    }
}

/// One element of a GHM batch in the core's precedence: the input, the target (finite; in
/// `[0, 1]` for `Unit`), then the label weight. Returns whether the label weight lets the
/// element count (`> 0`, or no weights).
#[inline]
pub(crate) fn ghm_element<T: Real>(
    (x, t, w): (T, T, Option<T>),
    targets: Targets,
    index: usize,
) -> Result<bool, Error> {
    finite(x, index)?;
    match targets {
        Targets::Unit => unit_target(t, index)?,
        Targets::Any => finite(t, index)?,
    };
    w.map_or(Ok(true), |w| Ok(finite(w, index)? > T::ZERO))
}

/// Where an element's weight is checked: the element-wise losses check it first (then the
/// input and the target), GHM last (after the input and the target; mmdetection's order).
#[doc(hidden)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WeightCheck {
    /// Weight, input, target (the element-wise losses).
    First,
    /// Input, target, label weight ([`GhmC`](crate::GhmC), [`GhmR`](crate::GhmR)).
    Last,
}

/// Validates a whole element-wise call (lengths: targets, weights, output; then each element)
/// exactly as the core's losses (`WeightCheck::First`) or GHM (`WeightCheck::Last`) do: for
/// code that runs them elsewhere (the GPU crate) and must answer bad input as the core does.
#[doc(hidden)]
pub fn elementwise_inputs<T: Real>(
    (xs, ts, ws): (&[T], &[T], Option<&[T]>),
    out_len: Option<usize>,
    (targets, weight): (Targets, WeightCheck),
) -> Result<(), Error> {
    elementwise_lengths(xs, ts, ws, out_len)?;
    if weight == WeightCheck::First {
        return block((xs, ts, ws), targets, 0, all_valid(xs, ts, ws, targets));
    }
    let mut ws = ws.map(|w| w.iter());
    for (index, (&x, &t)) in xs.iter().zip(ts).enumerate() {
        let w = ws.as_mut().and_then(Iterator::next).copied();
        ghm_element((x, t, w), targets, index)?;
    }
    Ok(())
}

/// Validates a softmax call as the row-wise losses do: `classes > 0`, logits `rows * classes`
/// for one label per row, the gradient (if any) the logits' length, the per-row output (if
/// any) one per row, finite logits, then every label below `classes` (a negative label
/// ignores its row).
#[doc(hidden)]
pub fn softmax_inputs<T: Real, L: ClassLabel>(
    classes: usize,
    logits: &[T],
    labels: &[L],
    grad_len: Option<usize>,
    per_row_len: Option<usize>,
) -> Result<(), Error> {
    if classes == 0 {
        return Err(Error::InvalidParameter("classes"));
    }
    let rows = labels.len();
    length(product(rows, classes, "classes")?, logits.len())?;
    grad_len.map_or(Ok(()), |len| length(logits.len(), len))?;
    per_row_len.map_or(Ok(()), |len| length(rows, len))?;
    all_finite(logits)?;
    match labels
        .iter()
        .position(|l| l.index().is_some_and(|c| c >= classes))
    {
        Some(index) => Err(Error::InvalidTarget { index }),
        None => Ok(()),
    }
}

/// Validates a label-form call (`N x C` logits, one label per row) as
/// [`SigmoidFocalLabels`](crate::SigmoidFocalLabels) does: logits `N * C`, label weights (if
/// any) one per row, the output (if any) the logits' length, finite logits, then finite
/// weights. Labels outside `0..C` are background, never an error.
#[doc(hidden)]
pub fn label_inputs<T: Real>(
    classes: usize,
    logits: &[T],
    rows: usize,
    label_weights: Option<&[T]>,
    out_len: Option<usize>,
) -> Result<(), Error> {
    let n = product(rows, classes, "classes")?;
    length(n, logits.len())?;
    optional_length(rows, label_weights)?;
    out_len.map_or(Ok(()), |len| length(n, len))?;
    all_finite(logits)?;
    label_weights.map_or(Ok(()), all_finite)
}
