//! Online hard example mining (Shrivastava, Gupta, Girshick, CVPR 2016).
//!
//! ```text
//! rank examples by loss (desc; ties: lower index first)
//! without NMS: the top k
//! with NMS:    walk the ranking, skip an example whose box has IoU > nms_iou with a kept
//!              box (of the same label, with `per_label`), stop at k
//! ```
//! The paper runs NMS at IoU 0.7 per image and keeps 128 RoIs of 2 images (64 each); the
//! original code applies NMS per class label, available here as `per_label`. Memory is `O(K)`
//! for any N (see [`nms`](crate::nms) for the pooled passes). `k` larger than N selects all
//! that survive.
//!
//! # Errors
//! `new`: `InvalidParameter("k")` unless `1 <= k <= K`. `with_nms`:
//! `InvalidParameter("nms_iou")` outside `[0, 1]`. `select`: `NonFinite` (loss or box),
//! `LengthMismatch` (boxes `4 N`, labels `N`; boxes required when NMS is on), `InvalidBox`.

use super::iou::check_boxes;
use super::nms::{check_threshold, greedy};
use super::selection::Selection;
use super::top_k::TopK;
use crate::{check, ClassLabel, Error, Real};

/// OHEM selection of at most `k <= K` hard examples.
///
/// # Examples
/// ```
/// use hardmine::Ohem;
/// let ohem = Ohem::<f32, 64>::new(2)?;
/// let picked = ohem.select(&[0.1, 2.0, 0.3, 1.5], None)?;
/// assert_eq!(picked.indices(), &[1, 3]);
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ohem<T, const K: usize> {
    k: usize,
    nms_iou: Option<T>,
}

impl<T: Real, const K: usize> Ohem<T, K> {
    /// Top-`k` selection without NMS.
    ///
    /// # Errors
    /// `InvalidParameter("k")` unless `1 <= k <= K`.
    pub fn new(k: usize) -> Result<Self, Error> {
        check::parameter((1..=K).contains(&k), "k")?;
        Ok(Self { k, nms_iou: None })
    }

    /// The same miner with NMS at `iou` (the paper uses 0.7).
    ///
    /// # Errors
    /// `InvalidParameter("nms_iou")` outside `[0, 1]`.
    pub fn with_nms(self, iou: T) -> Result<Self, Error> {
        Ok(Self {
            nms_iou: Some(check_threshold(iou)?),
            ..self
        })
    }

    /// The number of examples selected at most.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The NMS threshold, `None` when NMS is off.
    pub fn nms_iou(&self) -> Option<T> {
        self.nms_iou
    }

    fn run<L: ClassLabel>(
        &self,
        losses: &[T],
        boxes: Option<&[T]>,
        labels: Option<&[L]>,
    ) -> Result<Selection<K>, Error> {
        check::all_finite(losses)?;
        check::optional_length(losses.len(), labels)?;
        match self.nms_iou {
            None => {
                let mut top = TopK::<T, K>::new(self.k)?;
                top.offer_all(0, losses);
                Ok(top.selection())
            }
            Some(threshold) => {
                let boxes = boxes.unwrap_or(&[]);
                check_boxes(boxes, losses.len())?;
                let kept = greedy::<T, L, K>(losses, boxes, labels, threshold, self.k);
                Ok(Selection::from_unsorted(kept))
            }
        }
    }

    /// The hard examples among `losses` (with `boxes` `[N * 4]` when NMS is on).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn select(&self, losses: &[T], boxes: Option<&[T]>) -> Result<Selection<K>, Error> {
        self.run::<u8>(losses, boxes, None)
    }

    /// As [`select`](Self::select), with NMS applied only between boxes of the same label
    /// (the original per-class NMS).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn select_per_label<L: ClassLabel>(
        &self,
        losses: &[T],
        boxes: Option<&[T]>,
        labels: &[L],
    ) -> Result<Selection<K>, Error> {
        self.run(losses, boxes, Some(labels))
    }
}
