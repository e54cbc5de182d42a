//! Sigmoid focal loss (Lin et al., ICCV 2017), as torchvision's `sigmoid_focal_loss`.
//!
//! ```text
//! q      = 1 - p_t = t sigma(-x) + (1 - t) sigma(x)         (never by subtraction)
//! ce     = bce_with_logits(x, t)
//! a_t    = alpha t + (1 - alpha)(1 - t)                      (1 when alpha = -1, "off")
//! L      = a_t * ce * q^gamma
//! dL/dx  = a_t * q^gamma * [ (sigma(x) - t) + gamma * ce * (1 - 2t) * r ]
//! r      = sigma(x) sigma(-x) / q   in [0, 1]   (r = 1 where q underflows to 0)
//! ```
//! Defaults from the paper and torchvision: `alpha = 0.25`, `gamma = 2`. Targets may be soft.
//! `Mean` divides by the number of elements, or by
//! `avg_factor + eps` when given one (`with_avg_factor`, mmdetection's `weight_reduce_loss`; see
//! [`Reduction`](crate::Reduction)); RetinaNet passes the number of positive anchors).
//!
//! Stability: the textbook gradient carries `q^(gamma - 1)`, which is infinite at `q = 0` for
//! `gamma < 1`; torchvision and kornia return NaN for saturated logits there. Writing the
//! derivative of `q` as `(1 - 2t) sigma(x) sigma(-x)` and folding one `q` into the bounded
//! ratio `r` leaves only `q^gamma`, so the gradient is finite for every finite logit and every
//! `gamma >= 0`, and exact at `gamma = 0` (plain weighted BCE).
//! Accuracy: 1e-5 relative (`F32_REL`) in f32, 1e-10 relative (`F64_REL`) in f64,
//! against the exact value (host-tests `tolerance.rs`).
//!
//! # Errors
//! `new`: `InvalidParameter("alpha")` unless alpha is in `[0, 1]` or exactly `-1`;
//! `InvalidParameter("gamma")` unless gamma is finite and `>= 0`.
//! `with_avg_factor`: `InvalidParameter("avg_factor")` unless finite and `>= 0`.
//! Calls: `InvalidParameter("avg_factor")` for `Sum` with a factor (checked first),
//! `LengthMismatch`, `NonFinite` (logit or target), `InvalidTarget` (outside `[0, 1]`).

use super::elementwise::{self, Each, HardLogit, Output, Split};
use crate::check::Targets;
use crate::kernel::{Hard, Logistic};
use crate::{check, Error, Real, Reduction};

/// Sigmoid focal loss on logits.
///
/// # Examples
/// ```
/// use hardmine::SigmoidFocal;
/// let focal = SigmoidFocal::new(0.25f64, 2.0)?;
/// let mut grad = [0.0; 3];
/// let loss = focal.value_and_grad(&[-4.0, 0.5, 3.0], &[0.0, 1.0, 1.0], &mut grad)?;
/// assert!(loss > 0.0 && grad[1] < 0.0);
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SigmoidFocal<T> {
    alpha: Option<T>,
    gamma: T,
    /// `gamma` when it is a whole number up to 8 (the defaults are): `q^gamma` by multiplication.
    gamma_int: Option<u32>,
    reduction: Reduction,
    avg_factor: Option<T>,
}

/// The focal loss and gradient of one logit (see the module documentation).
#[inline]
fn focal_element<A: Real>(alpha: Option<A>, gamma: A, x: A, t: A) -> (A, A) {
    let l = Logistic::new(x);
    let q = l.one_minus_pt(t);
    let ce = l.bce(t);
    let mod_factor = q.powf(gamma);
    let s = l.pos * l.neg;
    let r = if q > A::ZERO {
        (s / q).min(A::ONE)
    } else {
        A::ONE
    };
    let slope = (A::ONE - t) - t;
    let inner = l.bce_grad(t) + gamma * ce * slope * r;
    let a_t = match alpha {
        Some(a) => a * t + (A::ONE - a) * (A::ONE - t),
        None => A::ONE,
    };
    (a_t * ce * mod_factor, a_t * mod_factor * inner)
}

/// The focal loss and gradient of one logit against a hard target (exactly 0 or 1), in `T`,
/// from its logistic quantities in the target's frame ([`Hard`]): with `q = 1 - p_t` and
/// `o = p_t`, the gradient is `-+ a_t q^gamma (q + gamma ce o)`, a sum of two terms of one
/// sign, so no cancellation can occur and `T`'s precision suffices. Without branches (the
/// balance picks by [`Real::pick`]: for floats `t a + (1 - t) b`, exact for `t` in `{0, 1}`),
/// so that a loop of it becomes vector code; `pow(q)` is `q^gamma`, chosen once per call (by
/// multiplication for a whole `gamma`).
#[inline(always)]
pub(crate) fn focal_hard<T: Real>(
    (a1, a0): (T, T),
    gamma: T,
    pow: impl Fn(T) -> T,
    t: T,
    Hard { q, o, ce }: Hard<T>,
) -> (T, T) {
    let am = T::pick(t, a1, a0).mul_unit(pow(q));
    let v = (gamma * ce).mul_unit_add(o, q).mul_unit(am);
    (ce.mul_unit(am), T::flip(t, v))
}

/// Evaluates `$body` with `$pow` bound to the focal power `q -> q^gamma` of `$focal`, chosen
/// once per call: the default gamma = 2 gets its own closure, one multiplication (a choice
/// per element would stop vectorisation); other gammas share one (each arm is a copy of the
/// whole pass, which firmware pays for in flash).
///
/// `small` keeps only the shared closure, one copy of the pass: for gamma = 2 its `q.powi(2)`
/// is `(1 q) q`, and `1 q = q` exactly, so it is the `q.mul_unit(q)` of the default build bit
/// for bit (`mul_unit` equals `*` on its domain).
#[cfg(feature = "small")]
macro_rules! with_pow {
    ($focal:expr, $pow:ident => $body:expr) => {{
        let (gamma, gamma_int) = ($focal.gamma(), $focal.gamma_int());
        let $pow = move |q: T| match gamma_int {
            Some(k) => q.powi(k),
            None => q.powf(gamma),
        };
        $body
    }};
}
#[cfg(not(feature = "small"))]
macro_rules! with_pow {
    ($focal:expr, $pow:ident => $body:expr) => {{
        let (gamma, gamma_int) = ($focal.gamma(), $focal.gamma_int());
        match gamma_int {
            Some(2) => {
                let $pow = |q: T| q.mul_unit(q);
                $body
            }
            _ => {
                let $pow = move |q: T| match gamma_int {
                    Some(k) => q.powi(k),
                    None => q.powf(gamma),
                };
                $body
            }
        }
    }};
}
pub(crate) use with_pow;

/// `Some(alpha)` for alpha in `[0, 1]`, `None` for exactly -1 (off).
pub(crate) fn checked_alpha<T: Real>(alpha: T) -> Result<Option<T>, Error> {
    if alpha == -T::ONE {
        return Ok(None);
    }
    check::unit(alpha, "alpha").map(|()| Some(alpha))
}

impl<T: Real> SigmoidFocal<T> {
    /// The loss with balance `alpha` (in `[0, 1]`, or `-1` for none) and focusing parameter
    /// `gamma >= 0`, reduced by `Mean`.
    ///
    /// # Errors
    /// `InvalidParameter("alpha")` or `InvalidParameter("gamma")`.
    pub fn new(alpha: T, gamma: T) -> Result<Self, Error> {
        let alpha = checked_alpha(alpha)?;
        check::non_negative(gamma, "gamma")?;
        let whole = gamma.floor_int();
        let gamma_int = (T::from_int(whole) == gamma && whole <= 8).then_some(whole as u32);
        Ok(Self {
            alpha,
            gamma,
            gamma_int,
            reduction: Reduction::Mean,
            avg_factor: None,
        })
    }

    super::reduction_accessors!();

    super::avg_factor_accessors!();

    /// Its balance, `None` when off.
    pub fn alpha(&self) -> Option<T> {
        self.alpha
    }

    /// Its focusing parameter.
    pub fn gamma(&self) -> T {
        self.gamma
    }

    /// Loss and gradient of one logit against target `t`, with balance `alpha`, evaluated in
    /// the accumulator type (f64 for f32) and rounded once: with a soft target near
    /// `sigmoid(x)` the two gradient terms nearly cancel, and f32's own rounding of `sigmoid`
    /// would then cost 1e-5 relative.
    #[inline]
    pub(crate) fn element(&self, alpha: Option<T>, x: T, t: T) -> (T, T) {
        let (loss, grad) = focal_element(
            alpha.map(Real::widen),
            self.gamma.widen(),
            x.widen(),
            t.widen(),
        );
        (T::narrow(loss), T::narrow(grad))
    }

    /// `gamma` when it is a whole number up to 8.
    pub(crate) fn gamma_int(&self) -> Option<u32> {
        self.gamma_int
    }

    fn run(&self, logits: &[T], targets: &[T], out: Output<'_, T>) -> Result<T, Error> {
        with_pow!(self, pow => self.run_with(logits, targets, out, pow))
    }

    #[inline(always)]
    fn run_with(
        &self,
        logits: &[T],
        targets: &[T],
        out: Output<'_, T>,
        pow: impl Fn(T) -> T + Copy,
    ) -> Result<T, Error> {
        let (alpha, gamma) = (self.alpha, self.gamma);
        // a_t = t a + (1 - t)(1 - a), or 1 when alpha is off.
        let balance = match alpha {
            Some(a) => (a, T::ONE - a),
            None => (T::ONE, T::ONE),
        };
        elementwise::run(
            (self.reduction, self.avg_factor.map(T::widen)),
            logits,
            targets,
            None,
            Targets::Unit,
            out,
            Split(
                HardLogit(|t, h| focal_hard(balance, gamma, pow, t, h)),
                Each(|x, t| self.element(alpha, x, t)),
            ),
        )
    }

    super::entry_points!(
        <> (logits: &[T], targets: &[T]),
        value: "The reduced loss (`Mean` divides by the number of elements).",
        grad: "The reduced loss, with its gradient with respect to the logits written to `grad`.",
        per_element: "The per-element losses written to `out`.",
    );
}

#[cfg(test)]
mod tests {
    use super::SigmoidFocal;
    use crate::Error;

    #[test]
    fn parameters_are_validated() {
        assert_eq!(
            SigmoidFocal::new(1.5f32, 2.0),
            Err(Error::InvalidParameter("alpha"))
        );
        assert_eq!(
            SigmoidFocal::new(0.25f32, -0.5),
            Err(Error::InvalidParameter("gamma"))
        );
        assert_eq!(
            SigmoidFocal::new(f32::NAN, 2.0),
            Err(Error::InvalidParameter("alpha"))
        );
        assert!(SigmoidFocal::new(-1.0f32, 0.0).is_ok());
    }

    #[test]
    fn gradient_is_finite_for_small_gamma_at_saturation() {
        for gamma in [0.0f32, 0.3, 0.5, 0.99] {
            let focal = SigmoidFocal::new(0.25f32, gamma).unwrap();
            for (x, t) in [(1e4f32, 1.0f32), (-1e4, 0.0), (200.0, 1.0), (-90.0, 0.0)] {
                let (l, g) = focal.element(focal.alpha(), x, t);
                assert!(
                    l.is_finite() && g.is_finite(),
                    "gamma {gamma}, x {x}: {l} {g}"
                );
            }
        }
    }
}
