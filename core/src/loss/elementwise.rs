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

/// Runs `element(x, t, index) -> (loss, d loss / d x)` over `xs` and `ts` (and the optional
/// per-element weights), after checking every length up front. `element` validates its own
/// inputs; weights are checked for finiteness here.
pub(crate) fn run<T, F>(
    reduction: Reduction,
    xs: &[T],
    ts: &[T],
    weights: Option<&[T]>,
    out: Output<'_, T>,
    element: F,
) -> Result<T, Error>
where
    T: Real,
    F: Fn(T, T, usize) -> Result<(T, T), Error>,
{
    let n = xs.len();
    check::length(n, ts.len())?;
    check::optional_length(n, weights)?;
    if let Some(len) = out.len() {
        check::length(n, len)?;
    }
    let divisor = reduction.divisor(n).map(|n| T::Acc::from_count(n as u64));
    let wants_grad = out.wants_grad();
    let mut sink = out.slice().map(|s| s.iter_mut());
    let mut weights = weights.map(|w| w.iter());
    let mut acc = T::ZERO.widen();
    for (index, (&x, &t)) in xs.iter().zip(ts).enumerate() {
        let w = match weights.as_mut().and_then(Iterator::next) {
            Some(&w) => Some(check::finite(w, index)?),
            None => None,
        };
        let (loss, grad) = element(x, t, index)?;
        let (loss, grad) = match w {
            Some(w) => (w * loss, w * grad),
            None => (loss, grad),
        };
        acc = acc + loss.widen();
        if let Some(slot) = sink.as_mut().and_then(Iterator::next) {
            *slot = if wants_grad {
                scaled(grad, divisor)
            } else {
                loss
            };
        }
    }
    Ok(if n == 0 {
        T::ZERO
    } else {
        reduced(acc, divisor)
    })
}
