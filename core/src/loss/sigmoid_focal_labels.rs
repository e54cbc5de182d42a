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
//! `avg_factor`), or by `avg_factor + eps` when the focal loss has one
//! ([`SigmoidFocalLabels::with_avg_factor`]: mmdetection's RetinaNet passes the number of
//! positive anchors). Gradient and accuracy as [`SigmoidFocal`](crate::SigmoidFocal).
//!
//! # Errors
//! `new`: `InvalidParameter("classes")` for 0 classes. `with_class_alpha`:
//! `LengthMismatch` unless one alpha per class, `InvalidParameter("alpha")` outside `[0, 1]`.
//! `with_avg_factor`: `InvalidParameter("avg_factor")` unless finite and `>= 0`.
//! Calls: `InvalidParameter("avg_factor")` for `Sum` with a factor (checked first),
//! `LengthMismatch` (logits must be `N * C`, weights `N`), `NonFinite` (logit or
//! weight; the index is into the slice that holds it).

use super::elementwise::Output;
use super::sigmoid_focal::{focal_hard, with_pow};
use crate::kernel::blocks::{self, Emit, Rows, LANES};
use crate::kernel::{padded, staged, Hard};
use crate::label::class_of;
use crate::reduction::{Divisor, Normalizer};
use crate::{check, ClassLabel, Error, Real, SigmoidFocal};

/// One call's inputs: logits `[N x C]`, labels `[N]` and the optional label weights `[N]`.
type Call<'a, T, L> = (&'a [T], &'a [L], Option<&'a [T]>);

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
        check::parameter(classes > 0, "classes")?;
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

    /// Validates the call, then runs the rows with the focal power chosen once.
    /// The same head with its focal loss normalised by `avg_factor`: as
    /// [`SigmoidFocal::with_avg_factor`] (mmdetection's `FocalLoss` with `avg_factor`, the
    /// number of positive anchors: `Mean` returns `sum / (avg_factor + eps)` over all `N * C`
    /// elements' sum).
    ///
    /// # Errors
    /// `InvalidParameter("avg_factor")` unless `avg_factor` is finite and `>= 0`.
    pub fn with_avg_factor(self, avg_factor: T) -> Result<Self, Error> {
        Ok(Self {
            focal: self.focal.with_avg_factor(avg_factor)?,
            ..self
        })
    }

    fn run<L: ClassLabel>(&self, call: Call<'_, T, L>, out: Output<'_, T>) -> Result<T, Error> {
        let (logits, labels, weights) = call;
        let normalizer =
            (self.focal.reduction()).normalizer(self.focal.avg_factor().map(T::widen))?;
        check::label_inputs(self.classes, logits, labels.len(), weights, out.len())?;
        with_pow!(self.focal, pow => self.rows(call, out, normalizer, pow))
    }

    super::entry_points!(
        rows <L: ClassLabel> (logits: &[T], labels: &[L], label_weights: Option<&[T]>),
        value: "The reduced loss.",
        grad: "The reduced loss, with its gradient with respect to the logits written to `grad`.",
        per_element: "The weighted per-element losses (`N * C`) written to `out`.",
    );
}

impl<T: Real> SigmoidFocalLabels<'_, T> {
    /// Each row in chunks of `LANES` classes: the one-hot targets are hard, so the focal
    /// kernel of the dense form's hard path evaluates them, a chunk at a time.
    fn rows<L: ClassLabel>(
        &self,
        (logits, labels, weights): Call<'_, T, L>,
        out: Output<'_, T>,
        normalizer: Normalizer<T::Acc>,
        pow: impl Fn(T) -> T + Copy,
    ) -> Result<T, Error> {
        let (c, focal) = (self.classes, &self.focal);
        let gamma = focal.gamma();
        let n = logits.len();
        let zero = T::ZERO.widen();
        let divisor = normalizer.divisor(|| T::Acc::from_count(n as u64));
        let wants_grad = out.wants_grad();
        let emit = Emit {
            divisor: divisor.and_then(Divisor::count),
            wants_grad,
        };
        // a_t = t a + (1 - t)(1 - a) per class column; 1 when alpha is off.
        let balance = |a: Option<T>| match a {
            Some(a) => (a, T::ONE - a),
            None => (T::ONE, T::ONE),
        };
        let mut acc = [zero; LANES];
        let mut grad = out.slice();
        let out = grad.as_deref_mut().map(|rows| Rows { rows, width: c });
        let matrix = Rows {
            rows: logits,
            width: c,
        };
        for (_, (row, label, w, dst)) in blocks::chunks((matrix, labels, weights, out), 1) {
            let Some(&label) = label.first() else { break };
            let w = w.and_then(<[T]>::first).copied().unwrap_or(T::ONE);
            let class = class_of(label, c);
            // Chunks of `LANES` classes; the last one padded (its extra lanes are dropped).
            for (start, (x, dst)) in blocks::chunks((row.rows, dst.map(|d| d.rows)), LANES) {
                let xl: [T; LANES] = padded(x, T::ZERO);
                let mut t = [T::ZERO; LANES];
                if let Some(slot) = class
                    .and_then(|j| j.checked_sub(start))
                    .and_then(|i| t.get_mut(i))
                {
                    *slot = T::ONE;
                }
                let mut a = [balance(focal.alpha()); LANES];
                if let Some(alphas) = self.class_alpha {
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
                let m = x.len();
                let (l, g) = (l.get(..m).unwrap_or(&[]), g.get(..m).unwrap_or(&[]));
                emit.emit(l, g, dst, &mut acc);
            }
        }
        let total = blocks::total::<T>(&acc);
        Ok(if n == 0 {
            T::ZERO
        } else {
            blocks::finish(total, divisor, grad.filter(|_| wants_grad))
        })
    }
}
