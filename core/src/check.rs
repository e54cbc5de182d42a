//! Input validation shared by every entry point (DESIGN §4).

use crate::{Error, Real};

/// `Err(LengthMismatch)` unless `got == expected`.
#[inline]
pub(crate) fn length(expected: usize, got: usize) -> Result<(), Error> {
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
pub(crate) fn all_finite<T: Real>(xs: &[T]) -> Result<(), Error> {
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

/// `rows * cols`, or `Err(InvalidParameter(name))` when it overflows.
#[inline]
pub(crate) fn product(rows: usize, cols: usize, name: &'static str) -> Result<usize, Error> {
    rows.checked_mul(cols).ok_or(Error::InvalidParameter(name))
}
