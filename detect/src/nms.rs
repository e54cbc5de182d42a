//! Inference post-processing of a dense head: score threshold, pre-NMS top-k, decoding,
//! small-box filter, per-class NMS, at most `max_per_img` detections.
//!
//! ```text
//! candidates = every (anchor i, class c) with score[i * C + c] > score_thr
//! pool       = the best nms_pre candidates          (nms_pre = candidates.len())
//! order      = score descending, then anchor ascending, then class ascending
//! for each in the pool, in order:
//!   box = decode(anchor_i, delta_i), clipped to the image when given
//!   drop it unless width > min_bbox_size and height > min_bbox_size   (when set)
//!   drop it if IoU(box, a kept box of class c) > iou_thr               (greedy NMS)
//!   keep it; stop at max_per_img = out.len()
//! ```
//! mmdetection's `BaseDenseHead._predict_by_feat_single` and `_bbox_post_process` for one
//! level (`filter_scores_and_topk`, `delta2bbox` with `max_shape`, `min_bbox_size`,
//! `batched_nms`, `max_per_img`), with sigmoid scores: an anchor may give a detection in
//! several classes. NMS suppresses at IoU strictly above the threshold (mmcv's and
//! torchvision's `nms`) and IoU is [`hardmine::iou`]; per-class NMS is computed per class,
//! not with `batched_nms`'s coordinate offsets (which round the IoU a little differently).
//! Ties, which mmdetection's sorts leave unspecified, go to the lower anchor, then the lower
//! class, so the output is a deterministic function of the input.
//!
//! Memory: the caller's `candidates` (the pool, kept as a heap: `O(N * C * log nms_pre)`) and
//! `out`; time for NMS `O(nms_pre * max_per_img)` IoUs.
//!
//! # Defaults
//! [`PostProcess::retinanet`]: RetinaNet's `test_cfg`, `score_thr = 0.05`, `nms iou_threshold
//! = 0.5`, `min_bbox_size = 0`, and the default [`DeltaXywhCoder`]; `nms_pre = 1000` and
//! `max_per_img = 100` there are the lengths of the caller's buffers here.
//!
//! # Errors
//! `InvalidParameter`: `"score_thr"` unless finite, `"nms_iou"` unless in `[0, 1]`,
//! `"min_bbox_size"` unless finite and `>= 0`, `"num_classes"` unless 1 to 65 536,
//! `"nms_pre"` for an empty `candidates`, `"max_per_img"` for an empty `out`, `"image"` for a
//! negative image size. `LengthMismatch` unless `scores` holds `num_classes` values per anchor
//! and `deltas` 4; `NonFinite`/`InvalidBox` for the anchors, `NonFinite` for a delta, a score
//! or the image size (the value's index).

use crate::coder::check_image;
use crate::math::{all_finite, box_at, length, parameter};
use crate::DeltaXywhCoder;
use hardmine::{check_boxes, iou, Error, Real};

/// One detection: its box, score, class and the anchor it came from.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Detection<T> {
    /// `[x1, y1, x2, y2]`, decoded from the anchor (and clipped to the image when given).
    pub bbox: [T; 4],
    /// The class score it was ranked by.
    pub score: T,
    /// The class, `0..num_classes`.
    pub class: u16,
    /// The anchor's index.
    pub anchor: usize,
}

/// A slot of the pre-NMS pool: a score and its flat index `anchor * num_classes + class`.
/// The caller provides `nms_pre` of them (`[Candidate::default(); 1000]`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Candidate<T> {
    score: T,
    index: usize,
}

impl<T: Real> Candidate<T> {
    /// The candidate's score.
    pub fn score(&self) -> T {
        self.score
    }

    /// Its flat index `anchor * num_classes + class`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Whether `self` is ranked before `other`: higher score, then lower index.
    fn before(&self, other: &Self) -> bool {
        self.score > other.score || (self.score == other.score && self.index < other.index)
    }
}

/// A dense head's outputs for one image, all anchor-major.
#[derive(Debug, Clone, Copy)]
pub struct HeadOutput<'a, T> {
    /// The anchors, `[N * 4]`.
    pub anchors: &'a [T],
    /// The predicted deltas, `[N * 4]` (one class-agnostic box per anchor, as RetinaNet).
    pub deltas: &'a [T],
    /// The class scores (sigmoid probabilities for RetinaNet), `[N * num_classes]`.
    pub scores: &'a [T],
    /// The number of classes `C`.
    pub num_classes: usize,
}

/// Score threshold, decoding and per-class NMS (RetinaNet's `test_cfg`).
///
/// # Examples
/// ```
/// use hardmine_detect::{Candidate, Detection, HeadOutput, PostProcess};
/// let anchors = [0.0f32, 0.0, 10.0, 10.0, 1.0, 0.0, 11.0, 10.0, 20.0, 20.0, 30.0, 30.0];
/// let head = HeadOutput {
///     anchors: &anchors,
///     deltas: &[0.0; 12],
///     scores: &[0.9, 0.8, 0.7], // one class
///     num_classes: 1,
/// };
/// let mut pool = [Candidate::default(); 8];
/// let mut out = [Detection::default(); 4];
/// let n = PostProcess::retinanet().run(&head, None, &mut pool, &mut out)?;
/// // Anchor 1 overlaps anchor 0 by IoU 9/11 > 0.5 and is suppressed.
/// assert_eq!(n, 2);
/// assert_eq!((out[0].anchor, out[1].anchor), (0, 2));
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PostProcess<T> {
    score_thr: T,
    iou_thr: T,
    min_bbox_size: Option<T>,
    coder: DeltaXywhCoder<T>,
}

impl<T: Real> PostProcess<T> {
    /// Keeps scores above `score_thr`, suppresses at IoU above `iou_thr`; no small-box filter,
    /// the default coder.
    ///
    /// # Errors
    /// `InvalidParameter("score_thr")` unless finite; `"nms_iou"` unless in `[0, 1]`.
    pub fn new(score_thr: T, iou_thr: T) -> Result<Self, Error> {
        parameter(score_thr.is_finite(), "score_thr")?;
        parameter(iou_thr >= T::ZERO && iou_thr <= T::ONE, "nms_iou")?;
        Ok(Self {
            score_thr,
            iou_thr,
            min_bbox_size: None,
            coder: DeltaXywhCoder::new(),
        })
    }

    /// RetinaNet's: `score_thr = 0.05`, IoU 0.5, `min_bbox_size = 0` (boxes of zero width or
    /// height are dropped), the default coder.
    pub fn retinanet() -> Self {
        Self {
            score_thr: T::from_f64(0.05),
            iou_thr: T::HALF,
            min_bbox_size: Some(T::ZERO),
            coder: DeltaXywhCoder::new(),
        }
    }

    /// The same post-processing, dropping decoded boxes whose width or height is not above
    /// `min_bbox_size` (`None`: no filter).
    ///
    /// # Errors
    /// `InvalidParameter("min_bbox_size")` unless finite and `>= 0`.
    pub fn with_min_bbox_size(self, min_bbox_size: Option<T>) -> Result<Self, Error> {
        if let Some(m) = min_bbox_size {
            hardmine::check::non_negative(m, "min_bbox_size")?;
        }
        Ok(Self {
            min_bbox_size,
            ..self
        })
    }

    /// The same post-processing with another coder.
    pub fn with_coder(self, coder: DeltaXywhCoder<T>) -> Self {
        Self { coder, ..self }
    }

    /// The score threshold.
    pub fn score_thr(&self) -> T {
        self.score_thr
    }

    /// The NMS IoU threshold.
    pub fn iou_thr(&self) -> T {
        self.iou_thr
    }

    /// The small-box filter.
    pub fn min_bbox_size(&self) -> Option<T> {
        self.min_bbox_size
    }

    /// The coder.
    pub fn coder(&self) -> &DeltaXywhCoder<T> {
        &self.coder
    }

    /// Runs the post-processing on `head`, with `image = [height, width]` to clip to (if any),
    /// the pool `candidates` (its length is `nms_pre`) and `out` (its length is
    /// `max_per_img`); returns how many detections were written to `out`'s front, best first.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn run(
        &self,
        head: &HeadOutput<'_, T>,
        image: Option<[T; 2]>,
        candidates: &mut [Candidate<T>],
        out: &mut [Detection<T>],
    ) -> Result<usize, Error> {
        let classes = head.num_classes;
        parameter((1..=1 << 16).contains(&classes), "num_classes")?;
        parameter(!candidates.is_empty(), "nms_pre")?;
        parameter(!out.is_empty(), "max_per_img")?;
        let n = head.scores.len() / classes;
        length(n * classes, head.scores.len())?;
        check_boxes(head.anchors, n)?;
        length(n * 4, head.deltas.len())?;
        all_finite(head.deltas)?;
        all_finite(head.scores)?;
        check_image(image)?;

        let pool = select(head.scores, self.score_thr, candidates);
        let mut kept = 0;
        for c in pool.iter() {
            let (anchor, class) = (c.index / classes, c.index % classes);
            let bbox = self.coder.decode_box(
                &box_at(head.anchors, anchor),
                &box_at(head.deltas, anchor),
                image,
            );
            if let Some(m) = self.min_bbox_size {
                if !(bbox[2] - bbox[0] > m && bbox[3] - bbox[1] > m) {
                    continue;
                }
            }
            let class = u16::try_from(class).unwrap_or(u16::MAX);
            let suppressed = out
                .iter()
                .take(kept)
                .any(|d| d.class == class && iou(&d.bbox, &bbox) > self.iou_thr);
            if suppressed {
                continue;
            }
            if let Some(slot) = out.get_mut(kept) {
                *slot = Detection {
                    bbox,
                    score: c.score,
                    class,
                    anchor,
                };
                kept += 1;
            }
            if kept >= out.len() {
                break;
            }
        }
        Ok(kept)
    }
}

/// The best `pool.len()` scores above `thr` (strictly), sorted best first into `pool`'s front;
/// returns that sorted prefix. A heap whose root is the worst kept entry.
fn select<'p, T: Real>(scores: &[T], thr: T, pool: &'p mut [Candidate<T>]) -> &'p [Candidate<T>] {
    let mut len = 0;
    for (index, &score) in scores.iter().enumerate() {
        if score <= thr {
            continue;
        }
        let c = Candidate { score, index };
        if len < pool.len() {
            if let Some(slot) = pool.get_mut(len) {
                *slot = c;
            }
            sift_up(pool, len);
            len += 1;
        } else if pool.first().is_some_and(|worst| c.before(worst)) {
            if let Some(root) = pool.first_mut() {
                *root = c;
            }
            sift_down(pool, 0, len);
        }
    }
    // Heap sort: the worst goes to the back, so the prefix ends up best first.
    for end in (1..len).rev() {
        swap(pool, 0, end);
        sift_down(pool, 0, end);
    }
    pool.get(..len).unwrap_or(&[])
}

/// Whether entry `a` of the heap ranks after entry `b` (is worse).
fn worse<T: Real>(heap: &[Candidate<T>], a: usize, b: usize) -> bool {
    match (heap.get(a), heap.get(b)) {
        (Some(x), Some(y)) => y.before(x),
        _ => false,
    }
}

/// Swaps two entries (no-op out of range).
fn swap<T: Real>(heap: &mut [Candidate<T>], a: usize, b: usize) {
    if let (Some(&x), Some(&y)) = (heap.get(a), heap.get(b)) {
        if let Some(s) = heap.get_mut(a) {
            *s = y;
        }
        if let Some(s) = heap.get_mut(b) {
            *s = x;
        }
    }
}

/// Restores the heap (worst at the root) after entry `i` was appended.
fn sift_up<T: Real>(heap: &mut [Candidate<T>], mut i: usize) {
    while i > 0 {
        let parent = (i - 1) / 2;
        if !worse(heap, i, parent) {
            break;
        }
        swap(heap, i, parent);
        i = parent;
    }
}

/// Restores the heap of the first `len` entries after entry `i` was replaced.
fn sift_down<T: Real>(heap: &mut [Candidate<T>], mut i: usize, len: usize) {
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut w = i;
        if l < len && worse(heap, l, w) {
            w = l;
        }
        if r < len && worse(heap, r, w) {
            w = r;
        }
        if w == i {
            return;
        }
        swap(heap, i, w);
        i = w;
    }
}
