//! The shared loop of every softmax loss: `rows x classes` logits with one label per row.

use super::elementwise::Output;
use crate::kernel::blocks::{chunks, reduced, scaled, Rows};
use crate::reduction::Divisor;
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
/// mean divides by the sum of the counted rows' weights (PyTorch's weighted mean), or by
/// `avg_factor + eps` when the loss has one (checked first: `Sum` with a factor is
/// `InvalidParameter("avg_factor")`).
pub(crate) fn run<T, L, W, F>(
    (reduction, avg_factor, classes): (Reduction, Option<T::Acc>, usize),
    (logits, labels): (&[T], &[L]),
    out: Output<'_, T>,
    (weight, row_loss): (W, F),
) -> Result<T, Error>
where
    T: Real,
    L: ClassLabel,
    W: Fn(usize) -> T,
    F: Fn(Row<'_, T>, Option<&mut [T]>) -> T,
{
    let normalizer = reduction.normalizer(avg_factor)?;
    let (grad_len, per_row_len) = match &out {
        Output::Grad(g) => (Some(g.len()), None),
        Output::PerElement(e) => (None, Some(e.len())),
        Output::Nothing => (None, None),
    };
    check::softmax_inputs(classes, logits, labels, grad_len, per_row_len)?;
    let rows = labels.len();
    // A mean divides by the counted rows' total weight (none counted: the sum, 0); a sum
    // or a caller's factor needs no pass for it.
    let divisor = normalizer.divisor(|| {
        labels
            .iter()
            .filter_map(|l| l.index())
            .fold(T::ZERO.widen(), |acc, c| acc + weight(c).widen())
    });
    let divisor = divisor.filter(|&d| d != Divisor::Count(T::ZERO.widen()));
    let mut acc = T::ZERO.widen();
    let matrix = Rows {
        rows: logits,
        width: classes,
    };
    match out {
        Output::Grad(grad) => {
            for (_, (row, label, g)) in chunks(
                (
                    matrix,
                    labels,
                    Rows {
                        rows: grad,
                        width: classes,
                    },
                ),
                1,
            ) {
                let (Some(label), g) = (label.first(), g.rows) else {
                    break;
                };
                let Some(class) = label.index() else {
                    g.iter_mut().for_each(|v| *v = T::ZERO);
                    continue;
                };
                let w = weight(class);
                let row = Row {
                    logits: row.rows,
                    class,
                };
                acc = acc + (w * row_loss(row, Some(&mut *g))).widen();
                g.iter_mut().for_each(|v| *v = scaled(w * *v, divisor));
            }
        }
        out => {
            for (_, (row, label, slot)) in chunks((matrix, labels, out.slice()), 1) {
                let Some(label) = label.first() else { break };
                let loss = match label.index() {
                    Some(class) => {
                        let row = Row {
                            logits: row.rows,
                            class,
                        };
                        weight(class) * row_loss(row, None)
                    }
                    None => T::ZERO,
                };
                acc = acc + loss.widen();
                if let Some(slot) = slot.and_then(<[T]>::first_mut) {
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
