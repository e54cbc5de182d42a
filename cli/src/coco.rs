//! COCO-style box evaluation, computed by the project with pycocotools' `COCOeval` rules, and the
//! COCO JSON files that let a user check the figures with pycocotools itself.
//!
//! # The rules (pycocotools 2.0 `cocoeval.py`, `iouType='bbox'`, area range `all`, `maxDets` 100)
//!
//! For every image and class:
//! - detections are sorted by score, highest first, with a *stable* sort (numpy's
//!   `argsort(-scores, kind='mergesort')`), so equal scores keep their input order; then only the
//!   first [`MAX_DETS`] are kept. As in `COCOeval.evaluateImg`, the cap is per image *and class*
//!   (`dt[0:maxDet]` runs on the detections of one category), not per image over all classes;
//! - IoU is `maskUtils.iou` on `[x, y, w, h]` boxes: continuous coordinates, no `+1` in widths,
//!   computed in the same operation order as pycocotools' C code (`bbIou`), so the values agree
//!   bit for bit with what pycocotools computes from the JSON we write;
//! - at each IoU threshold `t` of `np.linspace(0.5, 0.95, 10)`, each detection in score order takes
//!   the unmatched ground truth of highest IoU with `IoU >= min(t, 1 - 1e-10)`; on equal IoU the
//!   later ground truth wins (pycocotools' `if ious[d, g] < iou: continue`);
//! - a ground truth is *ignored* when its area `w * h` lies outside `[0, 1e10]` (areaRng `all`);
//!   ignored ground truths are sorted last and not counted, a detection matched to one is ignored,
//!   and so is an unmatched detection whose area lies outside that range. The boxes this project
//!   makes never reach such areas; the rule is mirrored so that no input can disagree.
//!
//! Then per class, over all images: the kept detections are concatenated image by image and
//! sorted by score (stable again, so ties go to the lower image index), true and false positives
//! are summed cumulatively, `recall = tp / n_gt`, `precision = tp / (tp + fp + eps)` with
//! `eps = np.spacing(1)`, the precision is made non-increasing from the right (the envelope), and
//! it is read at the 101 recall points `np.linspace(0, 1, 101)` with
//! `np.searchsorted(recall, points, side='left')`, 0 past the last detection. A class with no
//! (non-ignored) ground truth has no AP (`-1` in pycocotools) and is left out of every mean; a class
//! with ground truth but no detections has AP 0.
//!
//! [`Summary::ap`] is pycocotools' `stats[0]` (mean over the 10 thresholds, 101 points and the
//! classes that have ground truth), [`Summary::ap50`] `stats[1]`, [`Summary::ap75`] `stats[2]`,
//! [`Summary::ar100`] `stats[8]`. When no class has ground truth these are `-1`, as in
//! pycocotools. `tools/coco_check.py` recomputes them with pycocotools from the files
//! [`write_ground_truth`] and [`write_detections`] write, and `cli/tests/coco.rs` runs it on
//! seeded random scenes whenever `python3` can import pycocotools (set
//! `HARDMINE_REQUIRE_PYCOCOTOOLS=1` to make its absence a failure); they agree to about 1e-15.
//!
//! Ties in score are resolved by input order, so give [`write_detections`] the detections in the
//! order they were evaluated (for [`evaluate`], the same slice) for pycocotools to break them the
//! same way.
//!
//! # Inputs
//!
//! Boxes are `[x1, y1, x2, y2]` in pixels, with `x1 <= x2` and `y1 <= y2`. A non-finite
//! coordinate or score, an inverted box, a class or image index out of range is an `Err` (never a
//! panic), and the evaluator is left as it was.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::json;

/// pycocotools' `maxDets[-1]`: detections kept per image and class.
pub const MAX_DETS: usize = 100;
/// Number of IoU thresholds, `np.linspace(0.5, 0.95, 10)`.
pub const NUM_IOU: usize = 10;
/// Number of recall points, `np.linspace(0, 1, 101)`.
pub const NUM_RECALL: usize = 101;
/// Index of IoU 0.5 in [`iou_thresholds`].
pub const IOU50: usize = 0;
/// Index of IoU 0.75 in [`iou_thresholds`] (exactly 0.75 there, as pycocotools' `np.where` needs).
pub const IOU75: usize = 5;
/// pycocotools' area range `all`: `[0 ** 2, 1e5 ** 2]`.
const AREA_MAX: f64 = 1e10;

/// A ground-truth box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroundTruth {
    /// Image (scene) index, from 0.
    pub image: usize,
    /// Class index, from 0.
    pub class: usize,
    /// `[x1, y1, x2, y2]`, continuous pixel coordinates.
    pub bbox: [f64; 4],
}

/// A detection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Image (scene) index, from 0.
    pub image: usize,
    /// Class index, from 0.
    pub class: usize,
    /// `[x1, y1, x2, y2]`, continuous pixel coordinates.
    pub bbox: [f64; 4],
    /// Confidence; higher ranks first.
    pub score: f64,
}

/// The figures of one evaluation. Undefined ones (no ground truth) are `-1`, as in pycocotools.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// AP averaged over IoU 0.50:0.05:0.95 and the classes with ground truth (`stats[0]`).
    pub ap: f64,
    /// AP at IoU 0.5 (`stats[1]`).
    pub ap50: f64,
    /// AP at IoU 0.75 (`stats[2]`).
    pub ap75: f64,
    /// Recall at one false positive per scene, IoU 0.5 (see [`Evaluator::summary`]).
    pub recall_at_1fp: f64,
    /// Average recall with at most 100 detections (`stats[8]`): the last recall, averaged over
    /// thresholds and classes.
    pub ar100: f64,
    /// Per class, AP over IoU 0.50:0.05:0.95 (`-1` for a class with no ground truth).
    pub per_class_ap: Vec<f64>,
    /// Per class, AP at IoU 0.5 (`-1` for a class with no ground truth).
    pub per_class_ap50: Vec<f64>,
    /// Images evaluated (scenes, also those with neither boxes nor detections).
    pub images: usize,
    /// Ground-truth boxes counted (not ignored).
    pub ground_truths: usize,
    /// Detections kept after the per-image, per-class cap of [`MAX_DETS`].
    pub detections: usize,
}

/// `np.linspace(0.5, 0.95, 10)`, value for value: `0.5 + k * ((0.95 - 0.5) / 9)`, the last one
/// `0.95`.
pub fn iou_thresholds() -> [f64; NUM_IOU] {
    linspace(0.5, 0.95)
}

/// `np.linspace(0, 1, 101)`, value for value.
pub fn recall_points() -> [f64; NUM_RECALL] {
    linspace(0.0, 1.0)
}

/// numpy's `linspace(start, stop, N)`: `k * step + start` with `step = (stop - start) / (N - 1)`,
/// and the last value set to `stop`.
fn linspace<const N: usize>(start: f64, stop: f64) -> [f64; N] {
    let step = (stop - start) / (N as f64 - 1.0);
    let mut out = [0.0; N];
    for (k, v) in out.iter_mut().enumerate() {
        *v = k as f64 * step + start;
    }
    if let Some(last) = out.last_mut() {
        *last = stop;
    }
    out
}

pub use hardmine_detect::coco::{iou_xywh, to_xywh};

fn check_box(b: [f64; 4], what: &str) -> Result<()> {
    if b.iter().any(|v| !v.is_finite()) {
        bail!("{what}: box {b:?} has a non-finite coordinate");
    }
    if b[2] < b[0] || b[3] < b[1] {
        bail!("{what}: box {b:?} is inverted (want x1 <= x2 and y1 <= y2)");
    }
    Ok(())
}

fn check_gt(g: &GroundTruth, classes: usize, images: usize) -> Result<()> {
    if g.class >= classes {
        bail!(
            "ground truth: class {} out of range ({classes} classes)",
            g.class
        );
    }
    if g.image >= images {
        bail!(
            "ground truth: image {} out of range ({images} images)",
            g.image
        );
    }
    check_box(g.bbox, "ground truth")
}

fn check_det(d: &Detection, classes: usize, images: usize) -> Result<()> {
    if d.class >= classes {
        bail!(
            "detection: class {} out of range ({classes} classes)",
            d.class
        );
    }
    if d.image >= images {
        bail!(
            "detection: image {} out of range ({images} images)",
            d.image
        );
    }
    if !d.score.is_finite() {
        bail!("detection: score {} is not finite", d.score);
    }
    check_box(d.bbox, "detection")
}

fn outside_area(area: f64) -> bool {
    !(0.0..=AREA_MAX).contains(&area)
}

/// Descending by score; equal (including `0.0` and `-0.0`, as numpy) keeps order under a stable
/// sort. Scores are finite here.
fn by_score_desc(a: f64, b: f64) -> std::cmp::Ordering {
    b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal)
}

/// One kept detection after matching: bit `t` of `tp` set when matched to a counted ground truth
/// at threshold `t`, bit `t` of `ignored` when ignored there.
#[derive(Debug, Clone, Copy)]
struct Record {
    score: f64,
    tp: u16,
    ignored: u16,
}

impl Record {
    fn counts(&self, t: usize) -> Option<bool> {
        if self.ignored >> t & 1 == 1 {
            None
        } else {
            Some(self.tp >> t & 1 == 1)
        }
    }
}

/// Accumulates images one at a time; [`Evaluator::summary`] gives the figures.
#[derive(Debug, Clone)]
pub struct Evaluator {
    classes: usize,
    images: usize,
    /// Per class: kept detections, image by image, each image's in score order.
    records: Vec<Vec<Record>>,
    /// Per class: counted ground truths.
    gts: Vec<usize>,
    thresholds: [f64; NUM_IOU],
}

impl Evaluator {
    /// An evaluator for `classes` classes (at least 1).
    pub fn new(classes: usize) -> Result<Self> {
        if classes == 0 {
            bail!("COCO evaluation needs at least one class");
        }
        Ok(Self {
            classes,
            images: 0,
            records: vec![Vec::new(); classes],
            gts: vec![0; classes],
            thresholds: iou_thresholds(),
        })
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Images added so far; the next image's index.
    pub fn images(&self) -> usize {
        self.images
    }

    /// Adds the next image (index [`Evaluator::images`]): its ground truths and detections, in
    /// any class order. Every item's `image` must be that index. On `Err` nothing is added.
    pub fn add_image(&mut self, gts: &[GroundTruth], dets: &[Detection]) -> Result<()> {
        let image = self.images;
        for g in gts {
            check_gt(g, self.classes, usize::MAX)?;
            if g.image != image {
                bail!("ground truth for image {} given to image {image}", g.image);
            }
        }
        for d in dets {
            check_det(d, self.classes, usize::MAX)?;
            if d.image != image {
                bail!("detection for image {} given to image {image}", d.image);
            }
        }
        // All checked: from here on nothing fails.
        let mut g_boxes: Vec<([f64; 4], bool)> = Vec::new();
        let mut d_boxes: Vec<(f64, [f64; 4])> = Vec::new();
        for (class, (records, n_gt)) in self.records.iter_mut().zip(self.gts.iter_mut()).enumerate()
        {
            g_boxes.clear();
            g_boxes.extend(gts.iter().filter(|g| g.class == class).map(|g| {
                let b = to_xywh(g.bbox);
                (b, outside_area(b[2] * b[3]))
            }));
            // Ignored ground truths last, stable (np.argsort(gtIg, kind='mergesort')).
            g_boxes.sort_by_key(|&(_, ignored)| ignored);
            *n_gt += g_boxes.iter().filter(|&&(_, ignored)| !ignored).count();

            d_boxes.clear();
            d_boxes.extend(
                dets.iter()
                    .filter(|d| d.class == class)
                    .map(|d| (d.score, to_xywh(d.bbox))),
            );
            d_boxes.sort_by(|a, b| by_score_desc(a.0, b.0));
            d_boxes.truncate(MAX_DETS);

            match_image(&self.thresholds, &g_boxes, &d_boxes, records);
        }
        self.images += 1;
        Ok(())
    }

    /// The figures so far.
    ///
    /// Recall at one false positive per scene (IoU 0.5): every kept detection of every class (after
    /// the per-image, per-class cap), matched as above at IoU 0.5, is pooled and sorted by score
    /// (stable; ties go to the lower class, then the lower image, then the within-image order);
    /// walking down the list, it is the recall (true positives over all counted ground truths)
    /// just before the false positives exceed the number of images, i.e. at the last point where
    /// `fp <= images`. Ignored detections count as neither. `-1` when there is no ground truth.
    pub fn summary(&self) -> Summary {
        let rec_points = recall_points();
        let mut per_class_ap = vec![-1.0; self.classes];
        let mut per_class_ap50 = vec![-1.0; self.classes];
        // Sums over (class with gt) of precision (per threshold, over the 101 points) and recall.
        let mut prec_sum = [0.0f64; NUM_IOU];
        let mut recall_sum = 0.0f64;
        let mut with_gt = 0usize;
        let mut sorted: Vec<Record> = Vec::new();
        let mut precision: Vec<f64> = Vec::new();
        let mut recall: Vec<f64> = Vec::new();
        for ((records, &n_gt), (ap_k, ap50_k)) in self
            .records
            .iter()
            .zip(self.gts.iter())
            .zip(per_class_ap.iter_mut().zip(per_class_ap50.iter_mut()))
        {
            if n_gt == 0 {
                continue;
            }
            with_gt += 1;
            sorted.clear();
            sorted.extend_from_slice(records);
            sorted.sort_by(|a, b| by_score_desc(a.score, b.score));
            let npig = n_gt as f64;
            let mut class_sum = 0.0;
            for (t, prec_sum_t) in prec_sum.iter_mut().enumerate() {
                precision.clear();
                recall.clear();
                let (mut tp, mut fp) = (0.0f64, 0.0f64);
                for r in &sorted {
                    match r.counts(t) {
                        Some(true) => tp += 1.0,
                        Some(false) => fp += 1.0,
                        None => {}
                    }
                    recall.push(tp / npig);
                    precision.push(tp / (fp + tp + f64::EPSILON));
                }
                recall_sum += recall.last().copied().unwrap_or(0.0);
                // Envelope, right to left.
                let mut running = 0.0f64;
                for p in precision.iter_mut().rev() {
                    if running > *p {
                        *p = running;
                    }
                    running = *p;
                }
                // searchsorted(recall, point, side='left'): first index with recall >= point.
                let mut s = 0.0;
                let mut idx = 0usize;
                for &point in &rec_points {
                    while recall.get(idx).is_some_and(|&r| r < point) {
                        idx += 1;
                    }
                    match precision.get(idx) {
                        Some(&p) => s += p,
                        None => break,
                    }
                }
                let ap_t = s / NUM_RECALL as f64;
                if t == IOU50 {
                    *ap50_k = ap_t;
                }
                class_sum += ap_t;
                *prec_sum_t += ap_t;
            }
            *ap_k = class_sum / NUM_IOU as f64;
        }
        let (ap, ap50, ap75, ar100) = if with_gt == 0 {
            (-1.0, -1.0, -1.0, -1.0)
        } else {
            let k = with_gt as f64;
            let total: f64 = prec_sum.iter().sum();
            (
                total / (k * NUM_IOU as f64),
                prec_sum.get(IOU50).copied().unwrap_or(0.0) / k,
                prec_sum.get(IOU75).copied().unwrap_or(0.0) / k,
                recall_sum / (k * NUM_IOU as f64),
            )
        };
        let ground_truths: usize = self.gts.iter().sum();
        let detections: usize = self.records.iter().map(Vec::len).sum();
        Summary {
            ap,
            ap50,
            ap75,
            recall_at_1fp: self.recall_at_fp(ground_truths, self.images),
            ar100,
            per_class_ap,
            per_class_ap50,
            images: self.images,
            ground_truths,
            detections,
        }
    }

    fn recall_at_fp(&self, ground_truths: usize, max_fp: usize) -> f64 {
        if ground_truths == 0 {
            return -1.0;
        }
        let mut pooled: Vec<Record> = self.records.iter().flatten().copied().collect();
        pooled.sort_by(|a, b| by_score_desc(a.score, b.score));
        let (mut tp, mut fp) = (0usize, 0usize);
        for r in &pooled {
            match r.counts(IOU50) {
                Some(true) => tp += 1,
                Some(false) => {
                    fp += 1;
                    if fp > max_fp {
                        break;
                    }
                }
                None => {}
            }
        }
        tp as f64 / ground_truths as f64
    }
}

/// `COCOeval.evaluateImg` for one image and class: `gts` with ignored ones last, `dets` in score
/// order and capped; appends one record per detection.
fn match_image(
    thresholds: &[f64; NUM_IOU],
    gts: &[([f64; 4], bool)],
    dets: &[(f64, [f64; 4])],
    out: &mut Vec<Record>,
) {
    // ious[d][g], as computeIoU.
    let ious: Vec<Vec<f64>> = dets
        .iter()
        .map(|(_, d)| gts.iter().map(|(g, _)| iou_xywh(*d, *g)).collect())
        .collect();
    let mut records: Vec<Record> = dets
        .iter()
        .map(|&(score, _)| Record {
            score,
            tp: 0,
            ignored: 0,
        })
        .collect();
    let mut taken = vec![false; gts.len()];
    for (t, &thr) in thresholds.iter().enumerate() {
        taken.iter_mut().for_each(|m| *m = false);
        for (rec, row) in records.iter_mut().zip(ious.iter()) {
            let mut best = thr.min(1.0 - 1e-10);
            let mut m: Option<usize> = None;
            for (g, ((&iou, &(_, ignored)), &is_taken)) in
                row.iter().zip(gts.iter()).zip(taken.iter()).enumerate()
            {
                if is_taken {
                    continue;
                }
                // Matched to a counted gt and this one is ignored: stop (ignored ones are last).
                if let Some(mi) = m {
                    if gts.get(mi).is_some_and(|&(_, ig)| !ig) && ignored {
                        break;
                    }
                }
                if iou < best {
                    continue;
                }
                best = iou;
                m = Some(g);
            }
            if let Some(mi) = m {
                if let Some(slot) = taken.get_mut(mi) {
                    *slot = true;
                }
                if gts.get(mi).is_some_and(|&(_, ig)| ig) {
                    rec.ignored |= 1 << t;
                } else {
                    rec.tp |= 1 << t;
                }
            }
        }
    }
    // Unmatched detections outside the area range are ignored.
    for (rec, &(_, d)) in records.iter_mut().zip(dets.iter()) {
        if outside_area(d[2] * d[3]) {
            rec.ignored |= !rec.tp & !rec.ignored & ((1u16 << NUM_IOU) - 1);
        }
    }
    out.extend(records);
}

/// Evaluates `images` scenes of `classes` classes at once. The boxes may come in any order; each
/// image's ground truths and detections keep their relative input order (which breaks score ties).
pub fn evaluate(
    images: usize,
    classes: usize,
    gts: &[GroundTruth],
    dets: &[Detection],
) -> Result<Summary> {
    let mut ev = Evaluator::new(classes)?;
    for g in gts {
        check_gt(g, classes, images)?;
    }
    for d in dets {
        check_det(d, classes, images)?;
    }
    let mut gt_by_image: Vec<Vec<GroundTruth>> = vec![Vec::new(); images];
    for g in gts {
        if let Some(v) = gt_by_image.get_mut(g.image) {
            v.push(*g);
        }
    }
    let mut det_by_image: Vec<Vec<Detection>> = vec![Vec::new(); images];
    for d in dets {
        if let Some(v) = det_by_image.get_mut(d.image) {
            v.push(*d);
        }
    }
    for (g, d) in gt_by_image.iter().zip(det_by_image.iter()) {
        ev.add_image(g, d)?;
    }
    Ok(ev.summary())
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::new(file);
    serde_json::to_writer(&mut w, value).with_context(|| format!("writing {}", path.display()))?;
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Writes the ground truth in COCO's format: `images` (ids `image + 1`, `width`, `height`,
/// `file_name` `scene_NNNNN.png`, the scenes are not written), `annotations` (ids from 1 in input
/// order, `category_id` `class + 1`, `bbox` `[x, y, w, h]`, `area` `w * h`, `iscrowd` 0) and
/// `categories` (`class + 1` and `class_names[class]`). `images` scenes of `width` x `height`.
pub fn write_ground_truth<S: AsRef<str>>(
    path: &Path,
    images: usize,
    width: usize,
    height: usize,
    gts: &[GroundTruth],
    class_names: &[S],
) -> Result<()> {
    if class_names.is_empty() {
        bail!("COCO ground truth needs at least one class name");
    }
    for g in gts {
        check_gt(g, class_names.len(), images)?;
    }
    let images_json: Vec<_> = (0..images)
        .map(|i| {
            json!({
                "id": i + 1,
                "width": width,
                "height": height,
                "file_name": format!("scene_{i:05}.png"),
            })
        })
        .collect();
    let annotations: Vec<_> = gts
        .iter()
        .enumerate()
        .map(|(n, g)| {
            let b = to_xywh(g.bbox);
            json!({
                "id": n + 1,
                "image_id": g.image + 1,
                "category_id": g.class + 1,
                "bbox": b,
                "area": b[2] * b[3],
                "iscrowd": 0,
            })
        })
        .collect();
    let categories: Vec<_> = class_names
        .iter()
        .enumerate()
        .map(|(k, name)| json!({ "id": k + 1, "name": name.as_ref() }))
        .collect();
    let doc = json!({
        "info": { "description": "hardmine test scenes" },
        "licenses": [],
        "images": images_json,
        "annotations": annotations,
        "categories": categories,
    });
    write_json(path, &doc)
}

/// Writes detections as a COCO results list, in input order: `image_id` `image + 1`,
/// `category_id` `class + 1`, `bbox` `[x, y, w, h]`, `score`. Values are written exactly (shortest
/// round trip), so pycocotools sees the same numbers the project evaluated.
pub fn write_detections(path: &Path, dets: &[Detection]) -> Result<()> {
    for d in dets {
        check_det(d, usize::MAX, usize::MAX)?;
    }
    let list: Vec<_> = dets
        .iter()
        .map(|d| {
            json!({
                "image_id": d.image + 1,
                "category_id": d.class + 1,
                "bbox": to_xywh(d.bbox),
                "score": d.score,
            })
        })
        .collect();
    write_json(path, &serde_json::Value::Array(list))
}

#[cfg(test)]
mod tests {
    //! Expected values are derived by hand in the comments, following the rules in the module
    //! docs (pycocotools' `COCOeval`); `tools/coco_check.py` (driven by `cli/tests/coco.rs`)
    //! checks the same code against pycocotools itself.
    use super::*;

    fn gt(image: usize, class: usize, bbox: [f64; 4]) -> GroundTruth {
        GroundTruth { image, class, bbox }
    }

    fn det(image: usize, class: usize, bbox: [f64; 4], score: f64) -> Detection {
        Detection {
            image,
            class,
            bbox,
            score,
        }
    }

    /// Hand values leave out pycocotools' `eps` in `tp / (tp + fp + eps)` (1 / (1 + eps) is
    /// 1 - 2.2e-16), hence the 1e-12.
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12
    }

    fn all_close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| close(x, y))
    }

    const A: [f64; 4] = [0.0, 0.0, 10.0, 10.0];
    const FAR: [f64; 4] = [20.0, 20.0, 30.0, 30.0];

    #[test]
    fn thresholds_mirror_numpy_linspace() {
        let t = iou_thresholds();
        // pycocotools selects AP50 and AP75 with `np.where(iouThr == p.iouThrs)`: they must be
        // exact. 0.95 is the endpoint, set exactly by linspace.
        assert_eq!(t[IOU50], 0.5);
        assert_eq!(t[IOU75], 0.75);
        assert_eq!(t[9], 0.95);
        assert!(t.windows(2).all(|w| w[0] < w[1]));
        let r = recall_points();
        assert_eq!((r[0], r[50], r[100]), (0.0, 0.5, 1.0));
    }

    #[test]
    fn perfect_detections_give_one() {
        // Two images, one gt each, found exactly: IoU 1 >= every threshold (min(0.95, 1 - 1e-10)),
        // recall [0.5, 1], precision [1, 1]: every recall point reads 1.
        let gts = [gt(0, 0, A), gt(1, 0, [5.0, 5.0, 9.5, 12.25])];
        let dets = [det(0, 0, A, 0.9), det(1, 0, [5.0, 5.0, 9.5, 12.25], 0.3)];
        let s = evaluate(2, 1, &gts, &dets).unwrap();
        assert_eq!((s.ap, s.ap50, s.ap75, s.ar100), (1.0, 1.0, 1.0, 1.0));
        assert_eq!(s.recall_at_1fp, 1.0);
        assert_eq!(s.per_class_ap, vec![1.0]);
        assert_eq!((s.images, s.ground_truths, s.detections), (2, 2, 2));
    }

    #[test]
    fn false_positive_above_true_positive() {
        // Sorted: FP (0.9), TP (0.8). tp [0, 1], fp [1, 1], recall [0, 1],
        // precision [0, 1 / (2 + eps)] = [0, 0.5]; envelope [0.5, 0.5]: every point reads 0.5,
        // at every threshold.
        let gts = [gt(0, 0, A)];
        let dets = [det(0, 0, FAR, 0.9), det(0, 0, A, 0.8)];
        let s = evaluate(1, 1, &gts, &dets).unwrap();
        assert_eq!((s.ap, s.ap50, s.ap75, s.ar100), (0.5, 0.5, 0.5, 1.0));
        // One image, one FP allowed: the TP after it counts.
        assert_eq!(s.recall_at_1fp, 1.0);

        // Two FPs first: precision [0, 0, 1/3], envelope 1/3 everywhere; and the second FP
        // exceeds one per scene before the TP, so recall at 1 FP is 0.
        let dets = [
            det(0, 0, FAR, 0.9),
            det(0, 0, [40.0, 0.0, 50.0, 10.0], 0.85),
            det(0, 0, A, 0.8),
        ];
        let s = evaluate(1, 1, &gts, &dets).unwrap();
        assert!(close(s.ap, 1.0 / 3.0) && close(s.ap50, 1.0 / 3.0), "{s:?}");
        assert_eq!(s.recall_at_1fp, 0.0);
        // Two scenes: two FPs are allowed.
        let s = evaluate(2, 1, &gts, &dets).unwrap();
        assert_eq!(s.recall_at_1fp, 1.0);
    }

    #[test]
    fn score_ties_keep_input_order() {
        // Equal scores: the stable sort keeps the input order. FP first is the case above (0.5);
        // TP first: tp [1, 1], fp [0, 1], recall [1, 1], precision [1, 0.5], every point reads
        // index 0: 1.
        let gts = [gt(0, 0, A)];
        let fp_first = [det(0, 0, FAR, 0.5), det(0, 0, A, 0.5)];
        let tp_first = [det(0, 0, A, 0.5), det(0, 0, FAR, 0.5)];
        assert_eq!(evaluate(1, 1, &gts, &fp_first).unwrap().ap, 0.5);
        assert!(close(evaluate(1, 1, &gts, &tp_first).unwrap().ap, 1.0));

        // Across images the lower image comes first (images are concatenated in order).
        let gts = [gt(1, 0, A)];
        let dets = [det(1, 0, A, 0.5), det(0, 0, A, 0.5)];
        assert_eq!(evaluate(2, 1, &gts, &dets).unwrap().ap, 0.5);
        let gts = [gt(0, 0, A)];
        assert!(close(evaluate(2, 1, &gts, &dets).unwrap().ap, 1.0));
    }

    #[test]
    fn duplicate_detection_is_a_false_positive() {
        // Image 0: gt A found twice (0.9, then 0.8: the gt is taken, so FP); image 1: gt B found
        // at 0.7. Sorted TP, FP, TP: recall [0.5, 0.5, 1], precision [1, 0.5, 2/3], envelope
        // [1, 2/3, 2/3]. Points 0.00..=0.50 (51 of them) read index 0 (1), points 0.51..=1 (50)
        // read index 2 (2/3). Same at every threshold.
        let b = [3.0, 4.0, 9.0, 12.0];
        let gts = [gt(0, 0, A), gt(1, 0, b)];
        let dets = [det(0, 0, A, 0.9), det(0, 0, A, 0.8), det(1, 0, b, 0.7)];
        let s = evaluate(2, 1, &gts, &dets).unwrap();
        let want = (51.0 + 50.0 * (2.0 / 3.0)) / 101.0;
        assert!(
            close(s.ap, want) && close(s.ap50, want) && close(s.ap75, want),
            "{s:?}"
        );
        assert_eq!(s.ar100, 1.0);
    }

    #[test]
    fn class_without_ground_truth_is_excluded_and_class_without_detections_is_zero() {
        // Class 0 perfect (AP 1); class 1 only a detection (no gt: -1, excluded); class 2 a gt and
        // no detection (AP 0). Mean over classes 0 and 2: 0.5.
        let gts = [gt(0, 0, A), gt(0, 2, [50.0, 50.0, 60.0, 60.0])];
        let dets = [det(0, 0, A, 0.9), det(0, 1, FAR, 0.95)];
        let s = evaluate(1, 3, &gts, &dets).unwrap();
        assert!(all_close(&s.per_class_ap, &[1.0, -1.0, 0.0]), "{s:?}");
        assert!(all_close(&s.per_class_ap50, &[1.0, -1.0, 0.0]), "{s:?}");
        assert!(
            all_close(&[s.ap, s.ap50, s.ap75, s.ar100], &[0.5; 4]),
            "{s:?}"
        );
        // Pooled: class 1's FP (0.95, 1 FP <= 1 scene), then class 0's TP: 1 of 2 gts.
        assert_eq!(s.recall_at_1fp, 0.5);

        // No ground truth at all: every figure undefined, -1 as pycocotools.
        let s = evaluate(1, 3, &[], &dets).unwrap();
        assert_eq!((s.ap, s.ap50, s.ap75, s.ar100), (-1.0, -1.0, -1.0, -1.0));
        assert_eq!(s.recall_at_1fp, -1.0);
        assert_eq!(s.per_class_ap, vec![-1.0; 3]);
    }

    #[test]
    fn at_most_100_detections_per_image_and_class() {
        // 99 FPs above the TP: 100 kept. recall 0 until the last, precision there 1/100;
        // envelope 0.01 everywhere: AP 0.01.
        let gts = [gt(0, 0, A)];
        let mut dets: Vec<Detection> = (0..99)
            .map(|i| det(0, 0, FAR, 0.9 - i as f64 * 1e-3))
            .collect();
        dets.push(det(0, 0, A, 0.1));
        let s = evaluate(1, 1, &gts, &dets).unwrap();
        assert!(close(s.ap, 0.01), "{s:?}");
        assert_eq!(s.detections, 100);

        // A 100th FP pushes the TP past the cap: AP 0, 100 kept of 101.
        dets.insert(0, det(0, 0, FAR, 0.95));
        let s = evaluate(1, 1, &gts, &dets).unwrap();
        assert_eq!((s.ap, s.ar100, s.detections), (0.0, 0.0, 100));

        // The cap is per class (COCOeval's evaluateImg): 101 detections of class 1 do not push
        // out class 0's TP. Class 0: AP 1; class 1 has no gt.
        let mut dets: Vec<Detection> = (0..101).map(|_| det(0, 1, FAR, 0.9)).collect();
        dets.push(det(0, 0, A, 0.1));
        let s = evaluate(1, 2, &gts, &dets).unwrap();
        assert!(all_close(&s.per_class_ap, &[1.0, -1.0]), "{s:?}");
        assert_eq!(s.detections, 101);
    }

    #[test]
    fn iou_exactly_at_a_threshold_matches() {
        // [0,0,10,5] in [0,0,10,10]: 50 / (100 + 50 - 50) = 0.5 exactly, and `>=` matches.
        // TP at 0.5 only: AP50 1, AP75 0, AP = 1/10.
        assert_eq!(iou_xywh(to_xywh([0.0, 0.0, 10.0, 5.0]), to_xywh(A)), 0.5);
        let gts = [gt(0, 0, A)];
        let s = evaluate(1, 1, &gts, &[det(0, 0, [0.0, 0.0, 10.0, 5.0], 0.9)]).unwrap();
        assert!(
            all_close(&[s.ap, s.ap50, s.ap75, s.ar100], &[0.1, 1.0, 0.0, 0.1]),
            "{s:?}"
        );
        // 75 / 100 = 0.75 exactly: thresholds 0.50..=0.75, 6 of 10.
        assert_eq!(iou_xywh(to_xywh([0.0, 0.0, 10.0, 7.5]), to_xywh(A)), 0.75);
        let s = evaluate(1, 1, &gts, &[det(0, 0, [0.0, 0.0, 10.0, 7.5], 0.9)]).unwrap();
        assert!(
            all_close(&[s.ap, s.ap50, s.ap75], &[0.6, 1.0, 1.0]),
            "{s:?}"
        );
        // Just below 0.5: no match anywhere.
        let s = evaluate(1, 1, &gts, &[det(0, 0, [0.0, 0.0, 10.0, 4.999], 0.9)]).unwrap();
        assert_eq!((s.ap, s.ap50), (0.0, 0.0));
    }

    #[test]
    fn boxes_have_no_plus_one() {
        // [0,0,2,2] and [1,0,3,2]: intersection 1 x 2 = 2, union 4 + 4 - 2 = 6: IoU 1/3. With
        // inclusive pixel widths (+1) it would be 6 / 12 = 0.5 and match at IoU 0.5.
        let g = [0.0, 0.0, 2.0, 2.0];
        let d = [1.0, 0.0, 3.0, 2.0];
        assert!(close(iou_xywh(to_xywh(d), to_xywh(g)), 1.0 / 3.0));
        let s = evaluate(1, 1, &[gt(0, 0, g)], &[det(0, 0, d, 0.9)]).unwrap();
        assert_eq!(s.ap50, 0.0);
        // Touching boxes do not overlap; a zero-width box overlaps nothing.
        assert_eq!(iou_xywh(to_xywh([10.0, 0.0, 20.0, 10.0]), to_xywh(A)), 0.0);
        assert_eq!(iou_xywh(to_xywh([5.0, 0.0, 5.0, 10.0]), to_xywh(A)), 0.0);
    }

    #[test]
    fn greedy_match_on_equal_iou_takes_the_later_ground_truth() {
        // gts A = [0,0,10,10], B = [2,0,12,10]. d1 = [1,0,11,10] (0.9): IoU 90/110 = 9/11 with
        // both; pycocotools keeps the later one on equal IoU (`<` skips), so d1 takes B.
        // d2 = [0,0,7.2,10] (0.8): IoU 72/100 = 0.72 with A, 52/120 with B. So:
        // t in 0.50..=0.70 (5): both TP, AP_t 1;
        // t in {0.75, 0.80} (2): d1 TP, d2 FP: recall [0.5, 0.5], precision envelope [1, 0.5],
        //   points <= 0.5 read 1 (51), the rest lie past the end: 51/101;
        // t >= 0.85 (3): both FP, 0.
        // (Had d1 taken A, d2 would miss everywhere: AP 7 * 51/101 / 10.)
        let gts = [gt(0, 0, A), gt(0, 0, [2.0, 0.0, 12.0, 10.0])];
        let dets = [
            det(0, 0, [1.0, 0.0, 11.0, 10.0], 0.9),
            det(0, 0, [0.0, 0.0, 7.2, 10.0], 0.8),
        ];
        let s = evaluate(1, 1, &gts, &dets).unwrap();
        let want = [(5.0 + 2.0 * 51.0 / 101.0) / 10.0, 1.0, 51.0 / 101.0];
        assert!(all_close(&[s.ap, s.ap50, s.ap75], &want), "{s:?}");
    }

    #[test]
    fn huge_ground_truth_is_ignored_as_area_range_all() {
        // areaRng 'all' is [0, 1e10]: a 2e5 x 2e5 gt (4e10) is ignored. A detection on it is
        // ignored too (neither TP nor FP), so the class reads as if it were absent: AP 1.
        let huge = [0.0, 0.0, 2e5, 2e5];
        let gts = [gt(0, 0, A), gt(0, 0, huge)];
        let dets = [det(0, 0, huge, 0.9), det(0, 0, A, 0.8)];
        let s = evaluate(1, 1, &gts, &dets).unwrap();
        assert!(close(s.ap, 1.0), "{s:?}");
        assert_eq!((s.ground_truths, s.recall_at_1fp), (1, 1.0));
        // Only the huge one: no counted gt, -1.
        let s = evaluate(1, 1, &gts[1..], &dets).unwrap();
        assert_eq!((s.ap, s.ground_truths), (-1.0, 0));
    }

    #[test]
    fn bad_input_is_an_error_and_changes_nothing() {
        let g = [gt(0, 0, A)];
        let bad_dets = [
            det(0, 0, A, f64::NAN),
            det(0, 0, A, f64::INFINITY),
            det(0, 0, [0.0, f64::NAN, 1.0, 1.0], 0.5),
            det(0, 0, [5.0, 0.0, 1.0, 1.0], 0.5),
            det(0, 3, A, 0.5),
            det(1, 0, A, 0.5),
        ];
        for d in bad_dets {
            assert!(evaluate(1, 2, &g, &[d]).is_err(), "{d:?}");
        }
        assert!(evaluate(1, 2, &[gt(0, 0, [0.0, 0.0, f64::INFINITY, 1.0])], &[]).is_err());
        assert!(evaluate(1, 2, &[gt(0, 2, A)], &[]).is_err());
        assert!(evaluate(1, 2, &[gt(1, 0, A)], &[]).is_err());
        assert!(Evaluator::new(0).is_err());

        let mut ev = Evaluator::new(2).unwrap();
        ev.add_image(&g, &[det(0, 0, A, 0.9)]).unwrap();
        let before = ev.summary();
        // Image 1 is next: items labelled 0 are refused, as is a bad detection among good ones.
        assert!(ev.add_image(&g, &[]).is_err());
        assert!(ev
            .add_image(&[gt(1, 0, A)], &[det(1, 0, A, 0.9), det(1, 0, A, f64::NAN)])
            .is_err());
        assert_eq!(ev.images(), 1);
        assert_eq!(ev.summary(), before);
        // write_detections refuses what JSON cannot carry.
        let path =
            std::env::temp_dir().join(format!("hardmine-coco-bad-{}.json", std::process::id()));
        assert!(write_detections(&path, &[det(0, 0, A, f64::NAN)]).is_err());
        assert!(write_ground_truth(&path, 1, 8, 8, &[gt(0, 1, A)], &["zero"]).is_err());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn evaluator_by_image_equals_evaluate() {
        let gts = [gt(0, 0, A), gt(1, 1, [1.0, 2.0, 8.0, 9.0]), gt(1, 0, FAR)];
        let dets = [
            det(1, 0, [21.0, 20.0, 30.0, 31.0], 0.4),
            det(0, 0, [0.5, 0.0, 10.0, 9.0], 0.7),
            det(1, 1, [1.0, 2.0, 8.0, 8.0], 0.6),
            det(0, 1, FAR, 0.8),
        ];
        let all = evaluate(3, 2, &gts, &dets).unwrap();
        let mut ev = Evaluator::new(2).unwrap();
        for image in 0..3 {
            let g: Vec<_> = gts.iter().filter(|g| g.image == image).copied().collect();
            let d: Vec<_> = dets.iter().filter(|d| d.image == image).copied().collect();
            ev.add_image(&g, &d).unwrap();
        }
        assert_eq!(ev.summary(), all);
    }

    /// The number or `[numbers]` right after the first `key` in `text`, parsed by std.
    fn raw_numbers(text: &str, key: &str) -> Vec<f64> {
        let rest = &text[text.find(key).unwrap() + key.len()..];
        let rest = rest.strip_prefix('[').unwrap_or(rest);
        let end = rest.find([']', '}']).unwrap();
        let field = rest[..end].split(",\"").next().unwrap();
        field.split(',').map(|x| x.parse().unwrap()).collect()
    }

    #[test]
    fn json_files_carry_coco_fields_exactly() {
        let dir = std::env::temp_dir().join(format!("hardmine-coco-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let b = [0.1, 0.2, 0.1 + 0.2 + 7.0, 1.0 / 3.0 + 4.0];
        let gts = [gt(1, 0, b), gt(0, 1, A)];
        write_ground_truth(&dir.join("gt.json"), 2, 64, 48, &gts, &["zero", "one"]).unwrap();
        let text = std::fs::read_to_string(dir.join("gt.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let anns = v["annotations"].as_array().unwrap();
        assert_eq!(anns[0]["id"], 1);
        assert_eq!(anns[1]["id"], 2);
        assert_eq!(anns[0]["image_id"], 2);
        assert_eq!(anns[0]["category_id"], 1);
        assert_eq!(anns[0]["iscrowd"], 0);
        // serde_json's reader may be 1 ulp off (no `float_roundtrip`); std's parse is exact,
        // as Python's json is.
        let bb = raw_numbers(&text, "\"bbox\":");
        assert_eq!(bb, to_xywh(b).to_vec());
        assert_eq!(raw_numbers(&text, "\"area\":"), vec![bb[2] * bb[3]]);
        assert_eq!(v["images"][1]["id"], 2);
        assert_eq!(v["images"][1]["width"], 64);
        assert_eq!(v["images"][1]["height"], 48);
        assert_eq!(v["categories"][1]["id"], 2);
        assert_eq!(v["categories"][1]["name"], "one");

        let dets = [det(1, 1, b, 0.1 + 0.2)];
        write_detections(&dir.join("dt.json"), &dets).unwrap();
        let text = std::fs::read_to_string(dir.join("dt.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let r = &v.as_array().unwrap()[0];
        assert_eq!(
            (r["image_id"].clone(), r["category_id"].clone()),
            (2.into(), 2.into())
        );
        assert_eq!(raw_numbers(&text, "\"score\":"), vec![0.1 + 0.2]);
        assert_eq!(raw_numbers(&text, "\"bbox\":"), to_xywh(b).to_vec());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
