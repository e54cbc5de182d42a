//! RetinaNet's assignment of anchors to ground-truth boxes by IoU (mmdetection's
//! `MaxIoUAssigner`).
//!
//! ```text
//! iou[i][j]  = IoU(gt_i, anchor_j)
//! max_j      = max_i iou[i][j],  argmax_j = the lowest i reaching it
//! step 2     anchor j negative    if 0 <= max_j < neg_iou_thr
//! step 3     anchor j -> argmax_j if max_j >= pos_iou_thr            (otherwise: ignored)
//! step 4     for i = 0, 1, ...: if gt_max_i = max_j iou[i][j] >= min_pos_iou,
//!              every anchor j with iou[i][j] == gt_max_i -> gt i    (gt_max_assign_all)
//!              or only the lowest such j                            (gt_max_assign_all off)
//! no ground truth: every anchor negative, IoU 0
//! ```
//! This is `assign_wrt_overlaps` of mmdetection's
//! `mmdet/models/task_modules/assigners/max_iou_assigner.py`: step 4 (`match_low_quality`)
//! runs over the ground-truth boxes in order, so a later box wins an anchor that is best for
//! two, and it may take an anchor from the box step 3 gave it to. Ties go to the lowest index,
//! as `torch.max` returns the first maximal index. The IoU reported per anchor is `max_j`
//! (mmdetection's `max_overlaps`), also for an anchor step 4 reassigned.
//!
//! With `min_pos_iou = 0` (RetinaNet's), a ground-truth box that overlaps no anchor at all has
//! `gt_max = 0`, and step 4 then makes every anchor it does not overlap positive for it, as
//! mmdetection does; a small positive `min_pos_iou` avoids that.
//!
//! # Defaults
//! [`MaxIouAssigner::retinanet`]: `pos_iou_thr = 0.5`, `neg_iou_thr = 0.4`, `min_pos_iou = 0`,
//! `gt_max_assign_all = true`, `match_low_quality = true` (mmdetection's RetinaNet config).
//! IoU is [`hardmine::iou`]: continuous coordinates, 0 for an empty union (mmdetection instead
//! clamps the union at `1e-6`, which differs only for boxes whose union is below `1e-6`).
//!
//! # Errors
//! `InvalidParameter`: `"pos_iou_thr"`, `"neg_iou_thr"`, `"min_pos_iou"` unless in `[0, 1]`,
//! and `"neg_iou_thr"` above `pos_iou_thr`. [`MaxIouAssigner::assign`]: `LengthMismatch`
//! unless 4 anchor values per output and 4 values per ground-truth box; `NonFinite` and
//! `InvalidBox` (the box's index, anchors checked first) from [`hardmine::check_boxes`].

use crate::math::{box_at, parameter};
use hardmine::{check_boxes, iou, Error, Real};

/// What an anchor was assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Match {
    /// Background: its best IoU is below `neg_iou_thr` (mmdetection's `gt_inds = 0`).
    #[default]
    Negative,
    /// Neither: its best IoU is in the band `[neg_iou_thr, pos_iou_thr)` (`gt_inds = -1`);
    /// no loss.
    Ignored,
    /// Foreground, matched to ground-truth box `.0` (0-based; mmdetection's `gt_inds - 1`).
    Positive(usize),
}

/// One anchor's assignment: what it matched and its best IoU over the ground truth.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Assignment<T> {
    /// Negative, ignored, or the matched ground-truth box.
    pub matched: Match,
    /// The anchor's largest IoU with any ground-truth box (0 without ground truth).
    pub max_iou: T,
}

impl<T> Assignment<T> {
    /// The matched ground-truth box, for a positive anchor.
    pub fn gt(&self) -> Option<usize> {
        match self.matched {
            Match::Positive(i) => Some(i),
            _ => None,
        }
    }
}

/// mmdetection's `MaxIoUAssigner` (without ignore regions).
///
/// # Examples
/// ```
/// use hardmine_detect::{Assignment, Match, MaxIouAssigner};
/// // mmdetection's docstring example (there with thresholds 0.5 and 0.5).
/// let assigner = MaxIouAssigner::new(0.5f32, 0.5, 0.0)?;
/// let anchors = [0.0, 0.0, 10.0, 10.0, 10.0, 10.0, 20.0, 20.0];
/// let gts = [0.0, 0.0, 10.0, 9.0];
/// let mut out = [Assignment::default(); 2];
/// assert_eq!(assigner.assign(&anchors, &gts, &mut out)?, 1);
/// assert_eq!(out[0].matched, Match::Positive(0));
/// assert_eq!(out[1].matched, Match::Negative);
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MaxIouAssigner<T> {
    pos_iou_thr: T,
    neg_iou_thr: T,
    min_pos_iou: T,
    gt_max_assign_all: bool,
    match_low_quality: bool,
}

/// A threshold in `[0, 1]` (the core's rule; NaN fails), returned.
fn unit<T: Real>(v: T, name: &'static str) -> Result<T, Error> {
    hardmine::check::unit(v, name).map(|()| v)
}

impl<T: Real> MaxIouAssigner<T> {
    /// An assigner with these thresholds, `gt_max_assign_all` and `match_low_quality` on.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn new(pos_iou_thr: T, neg_iou_thr: T, min_pos_iou: T) -> Result<Self, Error> {
        let pos_iou_thr = unit(pos_iou_thr, "pos_iou_thr")?;
        let neg_iou_thr = unit(neg_iou_thr, "neg_iou_thr")?;
        parameter(neg_iou_thr <= pos_iou_thr, "neg_iou_thr")?;
        Ok(Self {
            pos_iou_thr,
            neg_iou_thr,
            min_pos_iou: unit(min_pos_iou, "min_pos_iou")?,
            gt_max_assign_all: true,
            match_low_quality: true,
        })
    }

    /// RetinaNet's: positive at IoU `>= 0.5`, negative below `0.4`, ignored between, every
    /// ground-truth box's best anchors positive (`min_pos_iou = 0`).
    pub fn retinanet() -> Self {
        Self {
            pos_iou_thr: T::HALF,
            neg_iou_thr: T::from_f64(0.4),
            min_pos_iou: T::ZERO,
            gt_max_assign_all: true,
            match_low_quality: true,
        }
    }

    /// Whether step 4 gives a box all its best anchors (`true`, the default) or only the
    /// lowest-indexed one.
    pub fn with_gt_max_assign_all(self, gt_max_assign_all: bool) -> Self {
        Self {
            gt_max_assign_all,
            ..self
        }
    }

    /// Whether step 4 runs at all (`true`, the default, for one-stage detectors).
    pub fn with_match_low_quality(self, match_low_quality: bool) -> Self {
        Self {
            match_low_quality,
            ..self
        }
    }

    /// The positive threshold.
    pub fn pos_iou_thr(&self) -> T {
        self.pos_iou_thr
    }

    /// The negative threshold.
    pub fn neg_iou_thr(&self) -> T {
        self.neg_iou_thr
    }

    /// The least IoU step 4 needs.
    pub fn min_pos_iou(&self) -> T {
        self.min_pos_iou
    }

    /// Assigns each of `out.len()` anchors (`anchors`: `[out.len() * 4]`) to the
    /// ground-truth boxes `gts` (`[G * 4]`); returns the number of positive anchors
    /// (RetinaNet's `avg_factor`). Time `O(3 * N * G)` IoUs, no memory beyond `out`.
    ///
    /// # Errors
    /// See the module documentation; `out` is untouched on `Err`.
    pub fn assign(
        &self,
        anchors: &[T],
        gts: &[T],
        out: &mut [Assignment<T>],
    ) -> Result<usize, Error> {
        check_boxes(anchors, out.len())?;
        check_boxes(gts, gts.len() / 4)?;
        let num_gts = gts.len() / 4;
        if num_gts == 0 {
            out.fill(Assignment {
                matched: Match::Negative,
                max_iou: T::ZERO,
            });
            return Ok(0);
        }
        // Steps 1 to 3.
        for (j, slot) in out.iter_mut().enumerate() {
            let anchor = box_at(anchors, j);
            let (mut best, mut arg) = (iou(&box_at(gts, 0), &anchor), 0);
            for i in 1..num_gts {
                let v = iou(&box_at(gts, i), &anchor);
                if v > best {
                    (best, arg) = (v, i);
                }
            }
            let matched = if best >= self.pos_iou_thr {
                Match::Positive(arg)
            } else if best < self.neg_iou_thr {
                Match::Negative
            } else {
                Match::Ignored
            };
            *slot = Assignment {
                matched,
                max_iou: best,
            };
        }
        // Step 4: each box's best anchors, boxes in order (a later box wins).
        if self.match_low_quality {
            for i in 0..num_gts {
                let gt = box_at(gts, i);
                let gt_max = (0..out.len())
                    .map(|j| iou(&gt, &box_at(anchors, j)))
                    .fold(None, |m: Option<T>, v| Some(m.map_or(v, |m| m.max(v))));
                let Some(gt_max) = gt_max else { break };
                if gt_max < self.min_pos_iou {
                    continue;
                }
                for (j, slot) in out.iter_mut().enumerate() {
                    if iou(&gt, &box_at(anchors, j)) == gt_max {
                        slot.matched = Match::Positive(i);
                        if !self.gt_max_assign_all {
                            break;
                        }
                    }
                }
            }
        }
        Ok(out
            .iter()
            .filter(|a| matches!(a.matched, Match::Positive(_)))
            .count())
    }
}
