//! Shared loss maths: the logistic pair behind every binary loss and the softmax statistics
//! behind every softmax loss. Both are written so no result is formed by cancelling
//! subtraction (DESIGN §5).

pub(crate) mod blocks;
mod logistic;
mod softmax;

pub(crate) use logistic::{staged, Hard, Logistic};
pub(crate) use softmax::SoftmaxRow;

/// The first `N` values of `s`, padded with `pad` past its end: a fixed-size copy when `s`
/// has them all (vector moves), a short loop only for a chunk's tail. Every chunked kernel
/// loads its lanes with it.
#[inline(always)]
pub(crate) fn padded<T: Copy, const N: usize>(s: &[T], pad: T) -> [T; N] {
    match <[T; N]>::try_from(s) {
        Ok(a) => a,
        Err(_) => {
            let mut a = [pad; N];
            a.iter_mut().zip(s).for_each(|(d, &v)| *d = v);
            a
        }
    }
}
