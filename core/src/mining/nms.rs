//! Greedy non-maximum suppression by descending score, in bounded memory.
//!
//! ```text
//! walk candidates in order (score desc, index asc);
//! keep one unless IoU(it, an already kept box [of the same label]) > threshold; stop at k
//! ```
//! A box is suppressed when its IoU is strictly **greater** than the threshold (torchvision).
//! Memory is `O(K)` whatever N: candidates are drawn in pools of `K` (a [`TopK`] pass over the
//! input); when a pool runs out before `k` are kept, the next pool is the best `K` strictly
//! below the last candidate seen. Time `O(passes * N log K + k^2)`; one pass unless NMS
//! suppresses most of a pool.
//!
//! # Errors
//! `InvalidParameter("k")` unless `1 <= k <= K`; `InvalidParameter("nms_iou")` unless the
//! threshold is in `[0, 1]`; `LengthMismatch`, `NonFinite`, `InvalidBox` (see
//! [`check_boxes`](crate::check_boxes)).

use super::iou::{box_at, check_boxes, iou};
use super::selection::Selection;
use super::top_k::{Ranked, TopK};
use crate::{check, ClassLabel, Error, Real};
use heapless::Vec;

/// Kept indices, in the order kept.
pub(crate) fn greedy<T: Real, L: ClassLabel, const K: usize>(
    keys: &[T],
    boxes: &[T],
    labels: Option<&[L]>,
    threshold: T,
    k: usize,
) -> Vec<usize, K> {
    let label = |i: usize| labels.and_then(|l| l.get(i)).and_then(|l| l.index());
    let mut kept: Vec<usize, K> = Vec::new();
    let mut bound: Option<Ranked<T>> = None;
    while let Ok(mut pool) = TopK::<T, K>::new(K) {
        for (index, &key) in keys.iter().enumerate() {
            let e = Ranked { key, index };
            if bound.is_none_or(|b| b.before(&e)) {
                pool.offer(e);
            }
        }
        let candidates = pool.sorted();
        for c in &candidates {
            bound = Some(*c);
            let b = box_at(boxes, c.index);
            let suppressed = kept.iter().any(|&j| {
                (labels.is_none() || label(j) == label(c.index))
                    && iou(&box_at(boxes, j), &b) > threshold
            });
            if !suppressed && kept.push(c.index).is_ok() && kept.len() >= k {
                return kept;
            }
        }
        if candidates.len() < K {
            break;
        }
    }
    kept
}

/// Validates an IoU threshold.
pub(crate) fn check_threshold<T: Real>(t: T) -> Result<T, Error> {
    check::unit(t, "nms_iou").map(|()| t)
}

/// Greedy NMS: at most `k <= K` boxes, best score first, none overlapping a better kept box by
/// IoU above `iou_threshold`.
///
/// # Errors
/// See the module documentation.
///
/// # Examples
/// ```
/// let boxes = [0.0f32, 0.0, 10.0, 10.0, 1.0, 1.0, 11.0, 11.0, 20.0, 20.0, 30.0, 30.0];
/// let kept = hardmine::nms::<f32, 8>(&[0.9, 0.8, 0.7], &boxes, 0.5, 8)?;
/// assert_eq!(kept.indices(), &[0, 2]);
/// # Ok::<(), hardmine::Error>(())
/// ```
pub fn nms<T: Real, const K: usize>(
    scores: &[T],
    boxes: &[T],
    iou_threshold: T,
    k: usize,
) -> Result<Selection<K>, Error> {
    check::parameter((1..=K).contains(&k), "k")?;
    let threshold = check_threshold(iou_threshold)?;
    check::all_finite(scores)?;
    check_boxes(boxes, scores.len())?;
    Ok(Selection::from_unsorted(greedy::<T, u8, K>(
        scores, boxes, None, threshold, k,
    )))
}
