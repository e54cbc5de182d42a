//! `sigma(x)`, `sigma(-x)` and `ln(1 + e^-|x|)` from one `exp`.
//!
//! ```text
//! e = exp(-|x|)
//! sigma(|x|) = 1 / (1 + e)      sigma(-|x|) = e / (1 + e)
//! bce(x, t)  = max(x, 0) - t x + ln(1 + e)        (PyTorch's stable form)
//!            = (1 - t) x + ln_1p(e)   for x > 0,    -t x + ln_1p(e)   otherwise
//! 1 - p_t    = t sigma(-x) + (1 - t) sigma(x)       (never 1 - p_t by subtraction)
//! d bce / dx = (1 - t) sigma(x) - t sigma(-x)       (= sigma(x) - t, exact for t in {0, 1})
//! ```

use crate::Real;

/// The logistic quantities of one logit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Logistic<T> {
    x: T,
    /// `sigma(x)`.
    pub pos: T,
    /// `sigma(-x)`.
    pub neg: T,
    /// `ln(1 + e^-|x|)`.
    lp: T,
}

impl<T: Real> Logistic<T> {
    #[inline]
    pub fn new(x: T) -> Self {
        let (e, lp) = x.exp_ln1p_neg_abs();
        let big = T::ONE / (T::ONE + e);
        let small = e * big;
        let (pos, neg) = if x >= T::ZERO {
            (big, small)
        } else {
            (small, big)
        };
        Self { x, pos, neg, lp }
    }

    /// Binary cross-entropy with logits against target `t` in `[0, 1]`.
    #[inline]
    pub fn bce(&self, t: T) -> T {
        let linear = if self.x > T::ZERO {
            (T::ONE - t) * self.x
        } else {
            -(t * self.x)
        };
        linear + self.lp
    }

    /// `sigma(x) - t`, the BCE gradient.
    #[inline]
    pub fn bce_grad(&self, t: T) -> T {
        (T::ONE - t) * self.pos - t * self.neg
    }

    /// `1 - p_t = t sigma(-x) + (1 - t) sigma(x)`.
    #[inline]
    pub fn one_minus_pt(&self, t: T) -> T {
        t * self.neg + (T::ONE - t) * self.pos
    }
}

/// The two transcendental stages of [`Real::logistic_parts`] over a block of logits, each a
/// loop of its own, written to `e` and `lp`, from which `x.logistic_finish(e, lp)` gives the
/// parts of `x` (bit for bit those of `logistic_parts`). Written through references: returned
/// arrays were copied (memcpy) on the way out. A loop that keeps few values live vectorises and
/// pipelines far better than the fused form, whose registers spill: focal's hard pass ran
/// 1.7x faster staged over blocks of 128 (AVX2; 1.7x on SSE2 too).
#[inline(always)]
pub(crate) fn staged<T: Real, const N: usize>(x: &[T; N], e: &mut [T::Stage; N], lp: &mut [T; N]) {
    for (e, &x) in e.iter_mut().zip(x) {
        *e = x.logistic_stage();
    }
    for (lp, &e) in lp.iter_mut().zip(e.iter()) {
        *lp = T::logistic_stage_ln(e);
    }
}

/// The logistic quantities of a logit `x` against a hard target `t` (exactly 0 or 1), in the
/// target's frame: with `z = (1 - 2t) x` (a sign flip, exact),
///
/// ```text
/// q  = sigma(z)  = 1 - p_t          o = sigma(-z) = p_t
/// ce = max(z, 0) + ln(1 + e^-|x|)   = bce(x, t)
/// d bce / dx = sigma(x) - t = (1 - 2t) q      (`T::flip(t, q)`)
/// ```
/// so a hard-target kernel picks nothing by target: the sign of `z` orders the logistic pair
/// (the select `logistic_finish` makes anyway). Bit for bit the values the picks gave.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hard<T> {
    /// `1 - p_t`.
    pub q: T,
    /// `p_t`.
    pub o: T,
    /// `bce(x, t)`.
    pub ce: T,
}

impl<T: Real> Hard<T> {
    /// From the logit, its target and the two stages' values `e`, `lp` of [`staged`].
    #[inline(always)]
    pub fn new(x: T, t: T, e: T::Stage, lp: T) -> Self {
        let z = T::flip(t, x);
        let (q, o, lp) = z.logistic_finish(e, lp);
        Self {
            q,
            o,
            ce: z.max(T::ZERO) + lp,
        }
    }
}
