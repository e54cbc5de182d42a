//! The chunk driver every pass walks its data with (`chunks`, and its lane forms `lanes` and
//! `lanes_of` for the screened passes), and the one `emit` of its results.
//!
//! A pass's parallel slices (inputs, targets, optional weights, an optional output) are cut
//! into the same chunks by [`chunks`]; a slice whose elements are rows of a matrix is wrapped
//! in [`Rows`], so one step takes one row of it and one element of the others. A kernel sees a
//! whole chunk as fixed-size arrays ([`whole`]; constant trip counts, no remainder code) and
//! the last, partial one in padded chunks ([`padded`](super::padded)).

use crate::num::private::Kernels as _;
use crate::reduction::Divisor;
use crate::Real;

/// Parallel slices that split at the same element: a slice, an optional slice, [`Rows`], or a
/// tuple of them.
pub(crate) trait Split: Sized {
    /// The first `n` elements (fewer when there are fewer) and the rest.
    fn split(self, n: usize) -> (Self, Self);
    /// Whether there is nothing left to split (the first slice, which leads the walk, is
    /// empty).
    fn is_empty(&self) -> bool;
}

impl<T> Split for &[T] {
    #[inline(always)]
    fn split(self, n: usize) -> (Self, Self) {
        self.split_at_checked(n).unwrap_or((self, &[]))
    }
    #[inline(always)]
    fn is_empty(&self) -> bool {
        <[T]>::is_empty(self)
    }
}

impl<T> Split for &mut [T] {
    #[inline(always)]
    fn split(self, n: usize) -> (Self, Self) {
        if n < self.len() {
            self.split_at_mut_checked(n).unwrap_or((&mut [], &mut []))
        } else {
            (self, &mut [])
        }
    }
    #[inline(always)]
    fn is_empty(&self) -> bool {
        <[T]>::is_empty(self)
    }
}

impl<S: Split> Split for Option<S> {
    #[inline(always)]
    fn split(self, n: usize) -> (Self, Self) {
        match self {
            Some(s) => {
                let (a, b) = s.split(n);
                (Some(a), Some(b))
            }
            None => (None, None),
        }
    }
    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.as_ref().is_none_or(S::is_empty)
    }
}

/// A slice of rows `width` elements wide: one of its elements is a row.
pub(crate) struct Rows<S> {
    pub rows: S,
    pub width: usize,
}

impl<S: Split> Split for Rows<S> {
    #[inline(always)]
    fn split(self, n: usize) -> (Self, Self) {
        let width = self.width;
        let (a, b) = self.rows.split(n.saturating_mul(width));
        (Self { rows: a, width }, Self { rows: b, width })
    }
    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

macro_rules! split_tuple {
    ($first:ident $(, $rest:ident)*) => {
        impl<$first: Split $(, $rest: Split)*> Split for ($first, $($rest,)*) {
            #[inline(always)]
            #[allow(non_snake_case)]
            fn split(self, n: usize) -> (Self, Self) {
                let ($first, $($rest,)*) = self;
                let $first = $first.split(n);
                $(let $rest = $rest.split(n);)*
                (($first.0, $($rest.0,)*), ($first.1, $($rest.1,)*))
            }
            #[inline(always)]
            fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }
    };
}

split_tuple!(A);
split_tuple!(A, B);
split_tuple!(A, B, C);
split_tuple!(A, B, C, D);

/// The chunks of `n` elements of `parts` (the last may be shorter), each with the index of its
/// first element. The first part leads: the walk ends when it is used up (callers check the
/// lengths first, so the others end with it).
#[inline(always)]
pub(crate) fn chunks<S: Split>(parts: S, n: usize) -> impl Iterator<Item = (usize, S)> {
    let n = n.max(1);
    let mut rest = Some(parts);
    let mut base = 0usize;
    core::iter::from_fn(move || {
        let parts = rest.take()?;
        if parts.is_empty() {
            return None;
        }
        let (chunk, tail) = parts.split(n);
        rest = Some(tail);
        let at = base;
        base = base.saturating_add(n);
        Some((at, chunk))
    })
}

/// A whole chunk of [`lanes`]: its first index and both slices' arrays.
pub(crate) type LanePair<'a, T, const N: usize> = (usize, &'a [T; N], &'a [T; N]);
/// The rest of [`lanes`]: its first index and both slices' last elements.
pub(crate) type LaneRest<'a, T> = (usize, &'a [T], &'a [T]);

/// The whole chunks of `N` of two parallel slices as arrays, each with the index of its first
/// element, and then the rest of both (shorter than `N`) with its first index: the form of the
/// screened lane passes (OHEM's and S-OHEM's), whose whole chunks are tested branch-free and
/// whose rest is taken element by element. Free of bounds checks: `as_chunks` splits once.
#[inline(always)]
pub(crate) fn lanes<'a, T, const N: usize>(
    a: &'a [T],
    b: &'a [T],
) -> (impl Iterator<Item = LanePair<'a, T, N>>, LaneRest<'a, T>) {
    let (a_whole, a_rest) = a.as_chunks::<N>();
    let (b_whole, b_rest) = b.as_chunks::<N>();
    let whole = a_whole.len().min(b_whole.len());
    let chunks = a_whole
        .iter()
        .zip(b_whole)
        .enumerate()
        .map(|(k, (a, b))| (k * N, a, b));
    (chunks, (whole * N, a_rest, b_rest))
}

/// A chunk with the index of its first element.
#[cfg(not(feature = "small"))]
pub(crate) type Indexed<'a, C> = (usize, &'a C);

/// [`lanes`] of one slice: its whole chunks with their first index, and the rest with its.
#[cfg(not(feature = "small"))]
#[inline(always)]
pub(crate) fn lanes_of<T, const N: usize>(
    a: &[T],
) -> (impl Iterator<Item = Indexed<'_, [T; N]>>, Indexed<'_, [T]>) {
    let (whole, rest) = a.as_chunks::<N>();
    let at = whole.len() * N;
    (
        whole.iter().enumerate().map(|(k, c)| (k * N, c)),
        (at, rest),
    )
}

/// `s` as an array when it has exactly `N` elements.
#[cfg(not(feature = "small"))]
#[inline(always)]
pub(crate) fn whole<T, const N: usize>(s: &[T]) -> Option<&[T; N]> {
    <&[T; N]>::try_from(s).ok()
}

/// `s` as a mutable array when it has exactly `N` elements.
#[cfg(not(feature = "small"))]
#[inline(always)]
pub(crate) fn whole_mut<T, const N: usize>(s: &mut [T]) -> Option<&mut [T; N]> {
    <&mut [T; N]>::try_from(s).ok()
}

/// Where a pass writes besides its reduced scalar, and how: the gradient (scaled by the mean's
/// count, if any) or the per-element losses. A caller's factor is not applied here but by
/// [`by_factor`] after the pass: a second division loop in this hot one cost the firmware
/// 640 bytes of stack.
#[derive(Clone, Copy)]
pub(crate) struct Emit<T: Real> {
    /// The mean's count, or `None` for a sum (or a factor, applied after the pass).
    pub divisor: Option<T::Acc>,
    /// Whether the output slice receives the gradient (else the per-element losses).
    pub wants_grad: bool,
}

/// Lanes of the partial sums (element `i` of a chunk adds into lane `i % LANES`).
pub(crate) const LANES: usize = 16;

impl<T: Real> Emit<T> {
    /// Adds the losses `l` to the lane sums and writes the gradient `g` (scaled by the mean's
    /// divisor) or the losses to `dst`.
    #[inline(always)]
    pub fn emit(&self, l: &[T], g: &[T], dst: Option<&mut [T]>, acc: &mut [T::Acc; LANES]) {
        let (lanes, rest) = l.as_chunks::<LANES>();
        for c in lanes {
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
                    *d = T::narrow(v.widen() / divisor);
                }
            }
            (Some(dst), true, None) => dst.iter_mut().zip(g).for_each(|(d, &v)| *d = v),
            (Some(dst), false, _) => dst.iter_mut().zip(l).for_each(|(d, &v)| *d = v),
            (None, _, _) => {}
        }
    }
}

impl<A: Copy> Divisor<A> {
    /// The mean's count, which [`Emit`] divides by (`None` for a factor).
    #[inline]
    pub fn count(self) -> Option<A> {
        match self {
            Divisor::Count(n) => Some(n),
            Divisor::Factor(_) => None,
        }
    }
}

/// The end of a pass normalised by a caller's factor `f` (mmdetection's `avg_factor`): the
/// pass emitted the sum `total` and the sum's gradient (`grad`, when it wrote one); both are
/// divided by `f + eps` through the accumulator, as [`reduced`] and [`scaled`] would. Kept
/// out of line: in the pass's frame it cost the firmware's focal call 130 bytes of stack.
#[inline(never)]
pub(crate) fn by_factor<T: Real>(total: T::Acc, f: T::Acc, grad: Option<&mut [T]>) -> T {
    for g in grad.into_iter().flatten() {
        *g = T::narrow(g.widen().div_avg_factor(f));
    }
    T::narrow(total.div_avg_factor(f))
}

/// The reduced scalar of a pass's sum `total` by its count (if any) or by a caller's factor,
/// whose gradient `grad` (when the pass wrote one) [`by_factor`] divides too.
#[inline(always)]
pub(crate) fn finish<T: Real>(
    total: T::Acc,
    divisor: Option<Divisor<T::Acc>>,
    grad: Option<&mut [T]>,
) -> T {
    match divisor {
        Some(Divisor::Factor(f)) => by_factor(total, f, grad),
        Some(Divisor::Count(n)) => T::narrow(total / n),
        None => T::narrow(total),
    }
}

/// `x / divisor` through the accumulator, or `x` when there is no divisor.
#[inline]
pub(crate) fn scaled<T: Real>(x: T, divisor: Option<Divisor<T::Acc>>) -> T {
    match divisor {
        Some(d) => T::narrow(d.divide(x.widen())),
        None => x,
    }
}

/// The reduced scalar of a sum `acc`: divided by the mean's divisor, if any.
#[inline]
pub(crate) fn reduced<T: Real>(acc: T::Acc, divisor: Option<Divisor<T::Acc>>) -> T {
    match divisor {
        Some(d) => T::narrow(d.divide(acc)),
        None => T::narrow(acc),
    }
}

/// The sum of the lane sums.
#[inline]
pub(crate) fn total<T: Real>(acc: &[T::Acc; LANES]) -> T::Acc {
    acc.iter().fold(T::ZERO.widen(), |a, &b| a + b)
}

#[cfg(test)]
mod tests {
    use super::{chunks, Rows};

    #[test]
    fn chunks_walk_parallel_slices_and_rows() {
        let x = [1, 2, 3, 4, 5];
        let w = [10, 20, 30, 40, 50];
        let mut out = [0; 5];
        let got: [(usize, usize); 3] = {
            let mut v = [(0, 0); 3];
            for (k, (base, (x, w, o))) in
                chunks((&x[..], Some(&w[..]), &mut out[..]), 2).enumerate()
            {
                o.iter_mut().zip(x).for_each(|(o, &x)| *o = x * 100);
                if let (Some(slot), Some(w)) = (v.get_mut(k), w) {
                    *slot = (base, x.len() + w.len());
                }
            }
            v
        };
        assert_eq!(got, [(0, 4), (2, 4), (4, 2)]);
        assert_eq!(out, [100, 200, 300, 400, 500]);
        let m = [1, 2, 3, 4, 5, 6];
        let labels = [7, 8];
        let rows: [[i32; 3]; 2] = {
            let mut v = [[0; 3]; 2];
            for (base, (r, l)) in chunks(
                (
                    Rows {
                        rows: &m[..],
                        width: 3,
                    },
                    &labels[..],
                ),
                1,
            ) {
                assert_eq!(l.len(), 1);
                if let Some(slot) = v.get_mut(base) {
                    slot.iter_mut().zip(r.rows).for_each(|(d, &s)| *d = s);
                }
            }
            v
        };
        assert_eq!(rows, [[1, 2, 3], [4, 5, 6]]);
        assert_eq!(chunks(&[0u8; 0][..], 4).count(), 0);
    }
}
