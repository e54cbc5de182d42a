//! The shared loop of every softmax loss: `rows x classes` logits with one label per row.

use super::elementwise::{reduced, scaled, Output};
use crate::{check, ClassLabel, Error, Real, Reduction};

/// What a row loss needs to know about its row.
pub(crate) struct Row<'r, T> {
    /// The row's logits (finite).
    pub logits: &'r [T],
    /// Its class, `< classes`.
    pub class: usize,
}

/// Runs `row_loss(row, grad_row) -> loss` over every labelled row, after checking lengths,
/// finiteness and labels up front. A negative label ignores its row (zero loss and gradient);
/// a label at or above `classes` is `InvalidTarget`. `weight(class)` scales a row's loss, and a
/// mean divides by the sum of the counted rows' weights (PyTorch's weighted mean).
pub(crate) fn run<T, L, W, F>(
    reduction: Reduction,
    classes: usize,
    logits: &[T],
    labels: &[L],
    out: Output<'_, T>,
    weight: W,
    row_loss: F,
) -> Result<T, Error>
where
    T: Real,
    L: ClassLabel,
    W: Fn(usize) -> T,
    F: Fn(Row<'_, T>, Option<&mut [T]>) -> T,
{
    if classes == 0 {
        return Err(Error::InvalidParameter("classes"));
    }
    let rows = labels.len();
    check::length(check::product(rows, classes, "classes")?, logits.len())?;
    match &out {
        Output::Grad(g) => check::length(logits.len(), g.len())?,
        Output::PerElement(e) => check::length(rows, e.len())?,
        Output::Nothing => {}
    }
    check::all_finite(logits)?;
    let mut total_weight = T::ZERO.widen();
    for (index, label) in labels.iter().enumerate() {
        match label.index() {
            Some(c) if c < classes => total_weight = total_weight + weight(c).widen(),
            Some(_) => return Err(Error::InvalidTarget { index }),
            None => {}
        }
    }
    let divisor = reduction.divisor(rows).map(|_| total_weight);
    let divisor = divisor.filter(|&d| d != T::ZERO.widen());
    let mut acc = T::ZERO.widen();
    match out {
        Output::Grad(grad) => {
            // Chunk iterators are walked with `next()`, never `zip`: zip's length computation
            // divides by the chunk size, a panic path the optimiser cannot always remove.
            let mut grads = grad.chunks_exact_mut(classes);
            for (row, label) in logits.chunks_exact(classes).zip(labels) {
                let Some(g) = grads.next() else { break };
                let Some(class) = label.index() else {
                    g.iter_mut().for_each(|v| *v = T::ZERO);
                    continue;
                };
                let w = weight(class);
                acc = acc + (w * row_loss(Row { logits: row, class }, Some(&mut *g))).widen();
                g.iter_mut().for_each(|v| *v = scaled(w * *v, divisor));
            }
        }
        out => {
            let mut sink = out.slice().map(|s| s.iter_mut());
            for (row, label) in logits.chunks_exact(classes).zip(labels) {
                let loss = match label.index() {
                    Some(class) => weight(class) * row_loss(Row { logits: row, class }, None),
                    None => T::ZERO,
                };
                acc = acc + loss.widen();
                if let Some(slot) = sink.as_mut().and_then(Iterator::next) {
                    *slot = loss;
                }
            }
        }
    }
    Ok(if rows == 0 {
        T::ZERO
    } else {
        reduced(acc, divisor)
    })
}
