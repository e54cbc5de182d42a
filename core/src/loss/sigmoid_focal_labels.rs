//! Sigmoid focal loss on integer class labels (the detection-head form of mmdetection's
//! `FocalLoss` with `use_sigmoid=True`).
//!
//! ```text
//! logits [N x C], labels [N], label_weights [N] (optional)
//! t_ij   = 1 if labels_i == j else 0      (labels outside 0..C: background, an all-zero row)
//! L_ij   = w_i * focal(x_ij, t_ij; alpha_j, gamma)
//! ```
//! The one-hot matrix is never materialised. A label weight of 0 masks its row out: it adds
//! nothing and gets zero gradient. Optional per-class alpha replaces the scalar alpha with
//! `alpha_j` for class column `j` (the most asked-for extension of torchvision's loss).
//! `Mean` divides by all `N * C` elements, masked rows included (mmdetection without
//! `avg_factor`). Gradient and accuracy as [`SigmoidFocal`](crate::SigmoidFocal).
//!
//! # Errors
//! `new`: `InvalidParameter("classes")` for 0 classes. `with_class_alpha`:
//! `LengthMismatch` unless one alpha per class, `InvalidParameter("alpha")` outside `[0, 1]`.
//! Calls: `LengthMismatch` (logits must be `N * C`, weights `N`), `NonFinite` (logit or
//! weight; the index is into the slice that holds it).

use super::elementwise::{reduced, scaled, Output, LANES};
use super::sigmoid_focal::{focal_hard, PowPass};
use crate::kernel::{padded, staged, Hard};
use crate::label::class_of;
use crate::{check, ClassLabel, Error, Real, SigmoidFocal};

/// Sigmoid focal loss over `N x C` logits with one class label per row.
///
/// # Examples
/// ```
/// use hardmine::{Reduction, SigmoidFocal, SigmoidFocalLabels};
/// let focal = SigmoidFocal::new(0.25f32, 2.0)?.with_reduction(Reduction::Sum);
/// let head = SigmoidFocalLabels::new(focal, 3)?;
/// // Two anchors: the first is class 2, the second background (label 3 = C).
/// let logits = [-3.0, -2.0, 1.0, -4.0, -5.0, -1.0];
/// let loss = head.value(&logits, &[2u16, 3], None)?;
/// assert!(loss > 0.0);
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SigmoidFocalLabels<'a, T> {
    focal: SigmoidFocal<T>,
    classes: usize,
    class_alpha: Option<&'a [T]>,
}

impl<'a, T: Real> SigmoidFocalLabels<'a, T> {
    /// The label form of `focal` over `classes` classes.
    ///
    /// # Errors
    /// `InvalidParameter("classes")` when `classes` is 0.
    pub fn new(focal: SigmoidFocal<T>, classes: usize) -> Result<Self, Error> {
        if classes == 0 {
            return Err(Error::InvalidParameter("classes"));
        }
        Ok(Self {
            focal,
            classes,
            class_alpha: None,
        })
    }

    /// The same loss with one alpha per class (each in `[0, 1]`).
    ///
    /// # Errors
    /// `LengthMismatch` or `InvalidParameter("alpha")`.
    pub fn with_class_alpha(self, class_alpha: &'a [T]) -> Result<Self, Error> {
        check::length(self.classes, class_alpha.len())?;
        if class_alpha.iter().any(|&a| !(a >= T::ZERO && a <= T::ONE)) {
            return Err(Error::InvalidParameter("alpha"));
        }
        Ok(Self {
            class_alpha: Some(class_alpha),
            ..self
        })
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The focal loss it applies to each class column.
    pub fn focal(&self) -> &SigmoidFocal<T> {
        &self.focal
    }

    /// Its per-class alphas, when set.
    pub fn class_alpha(&self) -> Option<&'a [T]> {
        self.class_alpha
    }

    fn run<L: ClassLabel>(
        &self,
        logits: &[T],
        labels: &[L],
        weights: Option<&[T]>,
        out: Output<'_, T>,
    ) -> Result<T, Error> {
        let c = self.classes;
        let n = check::product(labels.len(), c, "classes")?;
        check::length(n, logits.len())?;
        check::optional_length(labels.len(), weights)?;
        if let Some(len) = out.len() {
            check::length(n, len)?;
        }
        check::all_finite(logits)?;
        if let Some(w) = weights {
            check::all_finite(w)?;
        }
        self.focal.with_pow(Rows {
            head: self,
            logits,
            labels,
            weights,
            out,
        })
    }

    /// The reduced loss.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn value<L: ClassLabel>(
        &self,
        logits: &[T],
        labels: &[L],
        label_weights: Option<&[T]>,
    ) -> Result<T, Error> {
        self.run(logits, labels, label_weights, Output::Nothing)
    }

    /// The reduced loss, with its gradient with respect to the logits written to `grad`.
    ///
    /// # Errors
    /// See the module documentation; `grad` must have the logits' length.
    pub fn value_and_grad<L: ClassLabel>(
        &self,
        logits: &[T],
        labels: &[L],
        label_weights: Option<&[T]>,
        grad: &mut [T],
    ) -> Result<T, Error> {
        self.run(logits, labels, label_weights, Output::Grad(grad))
    }

    /// The weighted per-element losses (`N * C`) written to `out`.
    ///
    /// # Errors
    /// See the module documentation; `out` must have the logits' length.
    pub fn per_element<L: ClassLabel>(
        &self,
        logits: &[T],
        labels: &[L],
        label_weights: Option<&[T]>,
        out: &mut [T],
    ) -> Result<(), Error> {
        self.run(logits, labels, label_weights, Output::PerElement(out))
            .map(|_| ())
    }
}

/// The rows of one call, run with the focal power chosen once.
struct Rows<'s, 'o, 'a, T, L> {
    head: &'s SigmoidFocalLabels<'a, T>,
    logits: &'s [T],
    labels: &'s [L],
    weights: Option<&'s [T]>,
    out: Output<'o, T>,
}

impl<T: Real, L: ClassLabel> PowPass<T> for Rows<'_, '_, '_, T, L> {
    type Out = Result<T, Error>;

    /// Each row in chunks of `LANES` classes: the one-hot targets are hard, so the focal
    /// kernel of the dense form's hard path evaluates them, a chunk at a time.
    fn run<P: Fn(T) -> T + Copy>(self, pow: P) -> Self::Out {
        let head = self.head;
        let (c, focal) = (head.classes, &head.focal);
        let gamma = focal.gamma();
        let n = self.logits.len();
        let zero = T::ZERO.widen();
        let divisor = focal
            .reduction()
            .divisor(n)
            .map(|n| T::Acc::from_count(n as u64));
        let wants_grad = self.out.wants_grad();
        let mut sink = self.out.slice().map(|s| s.chunks_mut(c));
        let mut weights = self.weights.map(|w| w.iter());
        // a_t = t a + (1 - t)(1 - a) per class column; 1 when alpha is off.
        let balance = |a: Option<T>| match a {
            Some(a) => (a, T::ONE - a),
            None => (T::ONE, T::ONE),
        };
        let mut acc = [zero; LANES];
        for (row, &label) in self.logits.chunks_exact(c).zip(self.labels) {
            let w = weights
                .as_mut()
                .and_then(Iterator::next)
                .copied()
                .unwrap_or(T::ONE);
            let class = class_of(label, c);
            let mut dst = sink
                .as_mut()
                .and_then(|s| s.next())
                .map(|d| d.chunks_mut(LANES));
            // Chunks of `LANES` classes; the last one padded (its extra lanes are dropped).
            for (k, x) in row.chunks(LANES).enumerate() {
                let start = k * LANES;
                let xl: [T; LANES] = padded(x, T::ZERO);
                let mut t = [T::ZERO; LANES];
                if let Some(slot) = class
                    .and_then(|j| j.checked_sub(start))
                    .and_then(|i| t.get_mut(i))
                {
                    *slot = T::ONE;
                }
                let mut a = [balance(focal.alpha()); LANES];
                if let Some(alphas) = head.class_alpha {
                    let chunk = alphas.get(start..).unwrap_or(&[]);
                    a.iter_mut()
                        .zip(chunk)
                        .for_each(|(d, &v)| *d = balance(Some(v)));
                }
                let (mut l, mut g) = ([T::ZERO; LANES], [T::ZERO; LANES]);
                let (mut e, mut lp) = ([T::Stage::default(); LANES], [T::ZERO; LANES]);
                staged(&xl, &mut e, &mut lp);
                let lanes = xl.iter().zip(&t).zip(e.iter().zip(&lp));
                for (((l, g), &a), ((&x, &t), (&e, &lp))) in
                    l.iter_mut().zip(g.iter_mut()).zip(&a).zip(lanes)
                {
                    let (lv, gv) = focal_hard(a, gamma, pow, t, Hard::new(x, t, e, lp));
                    (*l, *g) = (w * lv, w * gv);
                }
                for (acc, &l) in acc.iter_mut().zip(&l).take(x.len()) {
                    *acc = *acc + l.widen();
                }
                if let Some(d) = dst.as_mut().and_then(Iterator::next) {
                    match (wants_grad, divisor) {
                        (true, Some(div)) => d
                            .iter_mut()
                            .zip(&g)
                            .for_each(|(d, &v)| *d = scaled(v, Some(div))),
                        (true, None) => d.iter_mut().zip(&g).for_each(|(d, &v)| *d = v),
                        (false, _) => d.iter_mut().zip(&l).for_each(|(d, &v)| *d = v),
                    }
                }
            }
        }
        let total = acc.iter().fold(zero, |a, &b| a + b);
        Ok(if n == 0 {
            T::ZERO
        } else {
            reduced(total, divisor)
        })
    }
}
