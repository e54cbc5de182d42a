//! Statistics of one softmax row against its label, without cancellation.
//!
//! ```text
//! m = max_j x_j,  e_j = exp(x_j - m),  z = sum_j e_j
//! q = 1 - p_y = (sum_{j != y} e_j) / z           (a separate sum, never 1 - p_y)
//! ln p_y = ln_1p(-q) when q < 1/2, else (x_y - m) - ln z
//! ```

use crate::Real;

/// Softmax statistics of one row with respect to class `y`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SoftmaxRow<T> {
    max: T,
    z: T,
    /// `1 - p_y`, in `[0, 1]`.
    pub q: T,
    /// `p_y`.
    pub p: T,
    /// `ln p_y` (finite for finite logits).
    pub ln_p: T,
}

impl<T: Real> SoftmaxRow<T> {
    /// Statistics of `row` (already finite) for class `y < row.len()`.
    pub fn new<I>(row: I, y: usize) -> Self
    where
        I: Iterator<Item = T> + Clone,
    {
        let max = row
            .clone()
            .fold(None, |m: Option<T>, x| Some(m.map_or(x, |m| m.max(x))));
        let max = max.unwrap_or(T::ZERO);
        let mut other = T::ZERO.widen();
        let mut x_y = max;
        for (j, x) in row.enumerate() {
            if j == y {
                x_y = x;
            } else {
                other = other + (x - max).exp().widen();
            }
        }
        let e_y = (x_y - max).exp();
        let z_acc = other + e_y.widen();
        let z = T::narrow(z_acc);
        let q = T::narrow(other / z_acc);
        let p = T::narrow(e_y.widen() / z_acc);
        let ln_p = if q < T::HALF {
            (-q).ln_1p()
        } else {
            (x_y - max) - z.ln()
        };
        Self { max, z, q, p, ln_p }
    }

    /// `softmax(row)_j` for a logit `x_j` of the same row.
    #[inline]
    pub fn prob(&self, x: T) -> T {
        (x - self.max).exp() / self.z
    }
}
