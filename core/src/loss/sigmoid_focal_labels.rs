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

use super::elementwise::{reduced, scaled, Output};
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
        let divisor = self
            .focal
            .reduction()
            .divisor(n)
            .map(|n| T::Acc::from_count(n as u64));
        let wants_grad = out.wants_grad();
        let mut sink = out.slice().map(|s| s.iter_mut());
        let mut weights = weights.map(|w| w.iter());
        let mut acc = T::ZERO.widen();
        for (row, &label) in logits.chunks_exact(c).zip(labels) {
            let w = weights
                .as_mut()
                .and_then(Iterator::next)
                .copied()
                .unwrap_or(T::ONE);
            let class = class_of(label, c);
            let mut alphas = self.class_alpha.map(|a| a.iter());
            for (j, &x) in row.iter().enumerate() {
                let t = if class == Some(j) { T::ONE } else { T::ZERO };
                let alpha = match alphas.as_mut().and_then(Iterator::next) {
                    Some(&a) => Some(a),
                    None => self.focal.alpha(),
                };
                let (loss, grad) = if w == T::ZERO {
                    (T::ZERO, T::ZERO)
                } else {
                    let (l, g) = self.focal.element(alpha, x, t);
                    (w * l, w * g)
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
        }
        Ok(if n == 0 {
            T::ZERO
        } else {
            reduced(acc, divisor)
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
