//! Statistics of one softmax row against its label, without cancellation.
//!
//! ```text
//! m = max_j x_j,  e_j = exp(x_j - m),  z = sum_j e_j
//! q = 1 - p_y = (sum_{j != y} e_j) / z           (a separate sum, never 1 - p_y)
//! ln p_y = ln_1p(-q) when q < 1/2, else (x_y - m) - ln z
//! ```

use super::padded;
use crate::Real;

/// Softmax statistics of one row with respect to class `y`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SoftmaxRow<T> {
    z: T,
    /// `1 - p_y`, in `[0, 1]`.
    pub q: T,
    /// `p_y`.
    pub p: T,
    /// `ln p_y` (finite for finite logits).
    pub ln_p: T,
}

/// Lanes of the exponential pass.
const LANES: usize = 8;

impl<T: Real> SoftmaxRow<T> {
    /// Statistics of `row` (already finite) for class `y < row.len()`. With `scratch` (the
    /// row's gradient slice, same length), each `e_j = exp(x_j - max)` is left there for
    /// [`probs`](Self::probs). The exponentials run eight lanes at a time with
    /// [`Real::exp_neg_abs`] (the fast f32 kernel: vector code); each chunk's sum of the other
    /// classes is added to the accumulator.
    pub fn new(row: &[T], y: usize, scratch: Option<&mut [T]>) -> Self {
        let first = row.first().copied().unwrap_or(T::ZERO);
        let max = row.iter().fold(first, |m, &x| m.max(x));
        let mut other = T::ZERO.widen();
        let mut e_y = T::ZERO;
        let mut dst = scratch.map(|s| s.chunks_mut(LANES));
        for (k, x) in row.chunks(LANES).enumerate() {
            let xl: [T; LANES] = padded(x, max);
            let mut e = [T::ZERO; LANES];
            e.iter_mut()
                .zip(&xl)
                .for_each(|(e, &x)| *e = (max - x).exp_neg_abs());
            if x.len() < LANES {
                // The padding lanes (x = max, e = 1) of a row's last, short chunk.
                e.iter_mut().skip(x.len()).for_each(|e| *e = T::ZERO);
            }
            if let Some(d) = dst.as_mut().and_then(Iterator::next) {
                d.iter_mut().zip(&e).for_each(|(d, &v)| *d = v);
            }
            // The label's own term is kept out of the others' sum.
            if let Some(slot) = y.checked_sub(k * LANES).and_then(|i| e.get_mut(i)) {
                e_y = *slot;
                *slot = T::ZERO;
            }
            other = other + e.iter().fold(T::ZERO.widen(), |s, &v| s + v.widen());
        }
        let z_acc = other + e_y.widen();
        let z = T::narrow(z_acc);
        let q = T::narrow(other / z_acc);
        let p = T::narrow(e_y.widen() / z_acc);
        let x_y = row.get(y).copied().unwrap_or(max);
        let ln_p = if q < T::HALF {
            (-q).ln_1p()
        } else {
            (x_y - max) - z.ln()
        };
        Self { z, q, p, ln_p }
    }

    /// Turns the `e_j` that [`new`](Self::new) left in `scratch` into `softmax(row)_j`.
    #[inline]
    pub fn probs(&self, scratch: &mut [T]) {
        let z = self.z;
        scratch.iter_mut().for_each(|e| *e = *e / z);
    }
}
