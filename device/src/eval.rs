//! COCO's box AP on fixed-capacity buffers: pycocotools' `COCOeval` rules as the CLI's
//! evaluator (`cli/src/coco.rs`) states them (per image and class, detections in score order
//! take the unmatched ground truth of highest IoU at or above each threshold of
//! `linspace(0.5, 0.95, 10)`; per class, the detections of every image sorted by score, stable;
//! precision envelope read at `linspace(0, 1, 101)`; classes without ground truth left out),
//! with matching done image by image so that only one record per detection is kept. The
//! area-range rule never applies to these boxes and is left out. A CLI test checks that both
//! evaluators give the same figures on the same detections.

use crate::scene::{Digits, Domain, Split};
use crate::train::{head, prepare, Buffers};
use crate::{Detector, Path, ANCHORS, CLASSES, MAX_PER_IMAGE, PARAMS};
use hardmine::{Error, Real, SplitMix64};
use hardmine_detect::coco::{iou_xywh, to_xywh};
use hardmine_detect::{Candidate, Detection, HeadOutput};

/// Held-out test scenes (target domain, test digits).
pub const TEST_SCENES: usize = 20;
/// Their seed.
pub const TEST_SEED: u64 = 0x7e57;
/// Held-out validation scenes (target domain, validation digits: no digit of a test scene
/// appears in them) that `hardmine tune --config device` picks the learning rates on.
pub const VAL_SCENES: usize = 20;
/// Their seed (pretraining's source-domain validation uses `0x7a1`).
pub const VAL_SEED: u64 = 0x7a1d;
/// IoU thresholds.
const NUM_IOU: usize = 10;
/// Recall points.
const NUM_RECALL: usize = 101;
/// The most scenes one evaluation holds.
pub const MAX_SCENES: usize = 20;
/// The most records.
const MAX_RECORDS: usize = MAX_SCENES * MAX_PER_IMAGE;

/// AP at IoU 0.5 and over 0.50:0.95 (`-1` without ground truth, as pycocotools).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// AP50.
    pub ap50: f64,
    /// AP.
    pub ap: f64,
}

/// What an evaluation saw, for a caller that checks it (the CLI's cross-check).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// A ground-truth box of `image`.
    Truth {
        /// The scene.
        image: usize,
        /// Its class.
        class: usize,
        /// `[x1, y1, x2, y2]`.
        bbox: [f64; 4],
    },
    /// A detection of `image`, in the order evaluated.
    Detection {
        /// The scene.
        image: usize,
        /// Its class.
        class: usize,
        /// `[x1, y1, x2, y2]`.
        bbox: [f64; 4],
        /// Its score.
        score: f64,
    },
}

/// `np.linspace(start, stop, N)`, as the CLI's.
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

/// pycocotools' `bbIou` on `[x1, y1, x2, y2]` boxes (via `[x, y, w, h]`, its operation order).
fn iou(d: [f64; 4], g: [f64; 4]) -> f64 {
    iou_xywh(to_xywh(d), to_xywh(g))
}

#[derive(Debug, Clone, Copy, Default)]
struct Record<T> {
    score: T,
    class: u8,
    tp: u16,
}

/// The AP of `params` (`PARAMS`) on the [`TEST_SCENES`] test scenes.
///
/// # Errors
/// The network's and the post-processing's.
pub fn evaluate<T: Path>(
    det: &Detector<T>,
    params: &[T; PARAMS],
    digits: &Digits<'_>,
    b: &mut Buffers<T>,
    on: &mut dyn FnMut(Event),
) -> Result<Summary, Error> {
    evaluate_on(
        det,
        params,
        digits,
        (Split::Test, Domain::Target, TEST_SEED, TEST_SCENES),
        b,
        on,
    )
}

/// The AP of `params` (`PARAMS`) on the [`VAL_SCENES`] validation scenes (the tuner's).
///
/// # Errors
/// The network's and the post-processing's.
pub fn validate<T: Path>(
    det: &Detector<T>,
    params: &[T; PARAMS],
    digits: &Digits<'_>,
    b: &mut Buffers<T>,
) -> Result<Summary, Error> {
    evaluate_on(
        det,
        params,
        digits,
        (Split::Val, Domain::Target, VAL_SEED, VAL_SCENES),
        b,
        &mut |_| {},
    )
}

/// The AP of `params` on `scenes` scenes (at most [`MAX_SCENES`]) of `split`/`domain` drawn
/// with `seed`.
///
/// # Errors
/// `InvalidParameter("scenes")` above [`MAX_SCENES`]; the network's and the post-processing's.
#[inline(never)]
pub fn evaluate_on<T: Path>(
    det: &Detector<T>,
    params: &[T; PARAMS],
    digits: &Digits<'_>,
    (split, domain, seed, scenes): (Split, Domain, u64, usize),
    b: &mut Buffers<T>,
    on: &mut dyn FnMut(Event),
) -> Result<Summary, Error> {
    if scenes > MAX_SCENES {
        return Err(Error::InvalidParameter("scenes"));
    }
    let thresholds: [f64; NUM_IOU] = linspace(0.5, 0.95);
    let mut records = [Record::<T>::default(); MAX_RECORDS];
    let mut n_rec = 0usize;
    let mut n_gt = [0usize; CLASSES];
    let mut pool = [Candidate::<T>::default(); ANCHORS];
    let mut kept = [Detection::<T>::default(); MAX_PER_IMAGE];
    let mut rng = SplitMix64::new(seed);
    for image in 0..scenes {
        prepare(det, params, digits, split, domain, &mut rng, b)?;
        head(det, params, b)?;
        // Sigmoid scores, into the arena's second third.
        let (cls, rest) = b.arena.split_at_mut(ANCHORS * CLASSES);
        let scores = rest.get_mut(..ANCHORS * CLASSES).unwrap_or(&mut []);
        for (s, &v) in scores.iter_mut().zip(cls.iter()) {
            *s = v.sigmoid();
        }
        let out = HeadOutput {
            anchors: &det.anchors,
            deltas: &b.deltas,
            scores,
            num_classes: CLASSES,
        };
        let n = det
            .post
            .run(&out, Some(det.image()), &mut pool, &mut kept)?;
        let dets = kept.get(..n).unwrap_or(&[]);
        let truth = b.scene.boxes();
        let px = |h: u16| f64::from(h) / 2.0;
        for (g, &c) in truth.iter().zip(b.scene.classes.iter()) {
            on(Event::Truth {
                image,
                class: usize::from(c),
                bbox: g.map(px),
            });
            if let Some(k) = n_gt.get_mut(usize::from(c)) {
                *k += 1;
            }
        }
        for d in dets {
            on(Event::Detection {
                image,
                class: usize::from(d.class),
                bbox: d.bbox.map(|v| v.to_f64()),
                score: d.score.to_f64(),
            });
        }
        // Matching, class by class (the detections of a class are in score order already).
        for class in 0..CLASSES {
            let mut taken = [[false; crate::scene::MAX_DIGITS]; NUM_IOU];
            for d in dets.iter().filter(|d| usize::from(d.class) == class) {
                let bbox = d.bbox.map(|v| v.to_f64());
                let mut tp = 0u16;
                for (t, (&thr, taken)) in thresholds.iter().zip(taken.iter_mut()).enumerate() {
                    let mut best = thr.min(1.0 - 1e-10);
                    let mut m: Option<usize> = None;
                    for (g, (gt, &c)) in truth.iter().zip(b.scene.classes.iter()).enumerate() {
                        if usize::from(c) != class || taken.get(g).copied().unwrap_or(true) {
                            continue;
                        }
                        let v = iou(bbox, gt.map(px));
                        if v < best {
                            continue;
                        }
                        best = v;
                        m = Some(g);
                    }
                    if let Some(slot) = m.and_then(|g| taken.get_mut(g)) {
                        *slot = true;
                        tp |= 1 << t;
                    }
                }
                if let Some(r) = records.get_mut(n_rec) {
                    *r = Record {
                        score: d.score,
                        class: class as u8,
                        tp,
                    };
                    n_rec += 1;
                }
            }
        }
    }
    Ok(summary(
        records.get(..n_rec).unwrap_or(&[]),
        &n_gt,
        &thresholds,
    ))
}

/// The AP figures from the matched records (image by image, each image's in score order).
fn summary<T: Real>(
    records: &[Record<T>],
    n_gt: &[usize; CLASSES],
    thresholds: &[f64; NUM_IOU],
) -> Summary {
    let points: [f64; NUM_RECALL] = linspace(0.0, 1.0);
    let mut prec_sum = [0.0f64; NUM_IOU];
    let mut with_gt = 0usize;
    let mut order = [0u16; MAX_RECORDS];
    for (class, &gts) in n_gt.iter().enumerate() {
        if gts == 0 {
            continue;
        }
        with_gt += 1;
        // This class's records, stably sorted by score, highest first (insertion sort).
        let mut n = 0usize;
        for (i, r) in records.iter().enumerate() {
            if usize::from(r.class) != class {
                continue;
            }
            let score = r.score.to_f64();
            let mut j = n;
            while j > 0 {
                let prev = order.get(j - 1).copied().unwrap_or(0);
                let ps = records
                    .get(usize::from(prev))
                    .map_or(0.0, |p| p.score.to_f64());
                if ps >= score {
                    break;
                }
                if let Some(o) = order.get_mut(j) {
                    *o = prev;
                }
                j -= 1;
            }
            if let Some(o) = order.get_mut(j) {
                *o = i as u16;
            }
            n += 1;
        }
        let sorted = order.get(..n).unwrap_or(&[]);
        let hit = |j: usize, t: usize| {
            sorted
                .get(j)
                .and_then(|&i| records.get(usize::from(i)))
                .is_some_and(|r| r.tp >> t & 1 == 1)
        };
        let npig = gts as f64;
        for (t, ps) in prec_sum.iter_mut().enumerate().take(thresholds.len()) {
            // searchsorted(recall, point, 'left') for each point: the first rank reaching it.
            let mut first = [n; NUM_RECALL];
            let (mut tp, mut k) = (0.0f64, 0usize);
            for j in 0..n {
                if hit(j, t) {
                    tp += 1.0;
                }
                let recall = tp / npig;
                while k < NUM_RECALL && points.get(k).is_some_and(|&p| recall >= p) {
                    if let Some(f) = first.get_mut(k) {
                        *f = j;
                    }
                    k += 1;
                }
            }
            // Precision envelope from the right, read where each point lands.
            let fp_total = n as f64 - tp;
            let (mut tp_j, mut fp_j) = (tp, fp_total);
            let mut q = [0.0f64; NUM_RECALL];
            let mut running = 0.0f64;
            let mut kk = NUM_RECALL;
            for j in (0..n).rev() {
                let mut p = tp_j / (fp_j + tp_j + f64::EPSILON);
                if running > p {
                    p = running;
                }
                running = p;
                while kk > 0 && first.get(kk - 1).is_some_and(|&f| f >= j) {
                    if first.get(kk - 1) == Some(&j) {
                        if let Some(v) = q.get_mut(kk - 1) {
                            *v = p;
                        }
                    }
                    kk -= 1;
                }
                if hit(j, t) {
                    tp_j -= 1.0;
                } else {
                    fp_j -= 1.0;
                }
            }
            let mut s = 0.0;
            for (&f, &v) in first.iter().zip(q.iter()) {
                if f >= n {
                    break;
                }
                s += v;
            }
            *ps += s / NUM_RECALL as f64;
        }
    }
    if with_gt == 0 {
        return Summary {
            ap50: -1.0,
            ap: -1.0,
        };
    }
    let k = with_gt as f64;
    let total: f64 = prec_sum.iter().sum();
    Summary {
        ap50: prec_sum.first().copied().unwrap_or(0.0) / k,
        ap: total / (k * NUM_IOU as f64),
    }
}
