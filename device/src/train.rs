//! Head fine-tuning on the target domain, one scene per SGD step, per method.
//!
//! Every step: a target scene of train digits from the fine-tuning stream (seed
//! [`TRAIN_SEED`], the same scenes for every method), the frozen backbone's features, the
//! assignment, the head's outputs, the method's classification loss and its box loss, the
//! head's backward pass and one SGD step (the method's tuned rate, [`rate`], momentum 0.9, weight decay 1e-4, the
//! master copy in Q31.32 on the Q15.16 path), normalised by the moving average of the
//! positive count (momentum 0.9, start 3), as the CLI's job does. The methods:
//! - `bce`: BCE on every anchor that is not ignored, smooth L1 (beta 1/9) on the positives;
//! - `focal`: sigmoid focal (alpha 0.25, gamma 2), smooth L1;
//! - `ghm_c`: GHM-C (30 bins, momentum 0.75), GHM-R (mu 0.02, 10 bins, momentum 0.7, loss
//!   weight 10);
//! - `ohem`: BCE and smooth L1 on the [`MINED`] anchors of highest `L_cls + L_loc` after NMS
//!   0.7 over their decoded boxes, normalised by the sample's size.
//!
//! The buffers are the caller's [`Buffers`]; the head's outputs, their gradients and the
//! targets share one arena with the backbone's input and activations, and rows are
//! compacted in place (valid anchors, positives) instead of gathered into copies.

use crate::scene::{Digits, Domain, Scene, Split, CANVAS_PIXELS, MAX_DIGITS};
use crate::{Detector, Path, ACTIVATIONS, ANCHORS, CLASSES, FEATURES, HEAD_PARAMS, PARAMS};
use hardmine::{
    BceWithLogits, Error, GhmC, GhmR, MovingAverageNormalizer, Ohem, Real, SigmoidFocal, SmoothL1,
    SplitMix64,
};
use hardmine_detect::{init_master, Assignment, Master, Match, Sgd};

/// SGD steps per method.
pub const STEPS: usize = 200;
/// The learning rate of `method` on path `T`: the one `hardmine tune --config device` picked
/// on the validation scenes ([`rates`](crate::rates), a committed table).
pub fn rate<T: Path>(method: Method) -> f64 {
    METHODS
        .iter()
        .zip(T::RATES.iter())
        .find(|(m, _)| **m == method)
        .map_or(0.0, |(_, &r)| r)
}
/// Anchors OHEM keeps per scene.
pub const MINED: usize = 16;
/// The most positive anchors a scene may have (about 2 per digit are; more is an error).
pub const MAX_POSITIVES: usize = 32;
/// The fine-tuning stream's seed.
pub const TRAIN_SEED: u64 = 7;
/// A loss at least this large is divergence (Q15.16 saturates at 32,768).
const DIVERGED_LOSS: u64 = 30_000;
/// Steps at the end whose losses are averaged for the report.
const TAIL: usize = 20;
/// Values in the arena: the image and activations, or the logits, their gradients and the
/// targets.
pub const ARENA: usize = if CANVAS_PIXELS + ACTIVATIONS > 3 * ANCHORS * CLASSES {
    CANVAS_PIXELS + ACTIVATIONS
} else {
    3 * ANCHORS * CLASSES
};

/// The methods the job runs, in report order.
pub const METHODS: [Method; 4] = [Method::Bce, Method::Focal, Method::GhmC, Method::Ohem];

/// A classification method (with its box loss).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// BCE on every valid anchor, smooth L1.
    Bce,
    /// Sigmoid focal loss, smooth L1.
    Focal,
    /// GHM-C with GHM-R.
    GhmC,
    /// OHEM over `L_cls + L_loc`, with NMS.
    Ohem,
}

impl Method {
    /// Its name in reports (the CLI's).
    pub fn name(self) -> &'static str {
        match self {
            Method::Bce => "bce",
            Method::Focal => "focal",
            Method::GhmC => "ghm_c",
            Method::Ohem => "ohem",
        }
    }
}

/// The working memory of a step or an evaluation (everything but the weights and SGD's state).
pub struct Buffers<T: Path> {
    /// The scene.
    pub scene: Scene,
    /// The backbone's features.
    pub features: [T; FEATURES],
    /// See the module documentation.
    pub arena: [T; ARENA],
    /// The head's box deltas (compacted to the positives by the losses).
    pub deltas: [T; 4 * ANCHORS],
    /// Their gradients.
    pub g_box: [T; 4 * ANCHORS],
    /// Decoded boxes (OHEM), or scores (evaluation).
    pub aux: [T; 4 * ANCHORS],
    /// Encoded box targets of the positives.
    pub box_targets: [T; 4 * MAX_POSITIVES],
    /// Per-anchor losses (OHEM).
    pub rows: [T; ANCHORS],
    /// Valid (not ignored) anchors, ascending, and their labels (`CLASSES`: background).
    pub valid: [u8; ANCHORS],
    /// Labels of the valid anchors.
    pub labels: [u8; ANCHORS],
    /// How many valid anchors.
    pub n_valid: usize,
    /// Positive anchors, ascending.
    pub positives: [u8; ANCHORS],
    /// Each positive's row among the valid ones.
    pub pos_rows: [u8; ANCHORS],
    /// How many positives.
    pub n_pos: usize,
}

impl<T: Path> Buffers<T> {
    /// Zeroed buffers.
    pub fn new() -> Self {
        Self {
            scene: Scene::default(),
            features: [T::ZERO; FEATURES],
            arena: [T::ZERO; ARENA],
            deltas: [T::ZERO; 4 * ANCHORS],
            g_box: [T::ZERO; 4 * ANCHORS],
            aux: [T::ZERO; 4 * ANCHORS],
            box_targets: [T::ZERO; 4 * MAX_POSITIVES],
            rows: [T::ZERO; ANCHORS],
            valid: [0; ANCHORS],
            labels: [0; ANCHORS],
            n_valid: 0,
            positives: [0; ANCHORS],
            pos_rows: [0; ANCHORS],
            n_pos: 0,
        }
    }
}

impl<T: Path> Default for Buffers<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Makes the next scene of `split`/`domain` from `rng` in `b.scene`, its image (`p / 16`) in
/// the arena's front (`CANVAS_PIXELS`) and its assignment in `b`'s targets.
///
/// # Errors
/// The assigner's; `InvalidParameter("positives")` for more than [`MAX_POSITIVES`].
pub fn next_scene<T: Path>(
    det: &Detector<T>,
    digits: &Digits<'_>,
    split: Split,
    domain: Domain,
    rng: &mut SplitMix64,
    b: &mut Buffers<T>,
) -> Result<(), Error> {
    b.scene.generate(digits, split, domain, rng);
    for (v, &p) in b.arena.iter_mut().zip(b.scene.pixels.iter()) {
        *v = T::from_count(u64::from(p)).div_count(16);
    }
    let mut gts = [T::ZERO; 4 * MAX_DIGITS];
    for (g, &h) in gts.iter_mut().zip(b.scene.boxes().iter().flatten()) {
        *g = T::from_count(u64::from(h)).div_count(2);
    }
    let gts = gts.get(..4 * b.scene.len).unwrap_or(&[]);
    let mut assigned = [Assignment::<T>::default(); ANCHORS];
    det.assigner.assign(&det.anchors, gts, &mut assigned)?;
    let (mut nv, mut np) = (0usize, 0usize);
    for (i, a) in assigned.iter().enumerate() {
        let label = match a.matched {
            Match::Ignored => continue,
            Match::Negative => CLASSES as u8,
            Match::Positive(_) if np == MAX_POSITIVES => {
                return Err(Error::InvalidParameter("positives"));
            }
            Match::Positive(g) => {
                let anchor = box_at(&det.anchors, i);
                let gt = box_at(gts, g);
                let d = det.coder.encode_box(&anchor, &gt);
                for (slot, v) in b.box_targets.iter_mut().skip(4 * np).zip(d) {
                    *slot = v;
                }
                if let (Some(p), Some(r)) = (b.positives.get_mut(np), b.pos_rows.get_mut(np)) {
                    *p = i as u8;
                    *r = nv as u8;
                }
                np += 1;
                b.scene.classes.get(g).copied().unwrap_or(0)
            }
        };
        if let (Some(v), Some(l)) = (b.valid.get_mut(nv), b.labels.get_mut(nv)) {
            *v = i as u8;
            *l = label;
        }
        nv += 1;
    }
    b.n_valid = nv;
    b.n_pos = np;
    Ok(())
}

/// Box `i` of a flat `[x1, y1, x2, y2]` slice (zeros past the end).
pub(crate) fn box_at<T: Real>(flat: &[T], i: usize) -> [T; 4] {
    core::array::from_fn(|k| flat.get(4 * i + k).copied().unwrap_or(T::ZERO))
}

/// Scene, image, assignment and the frozen backbone's features (the image and activations
/// in the arena).
///
/// # Errors
/// The assigner's and the network's.
pub fn prepare<T: Path>(
    det: &Detector<T>,
    params: &[T],
    digits: &Digits<'_>,
    split: Split,
    domain: Domain,
    rng: &mut SplitMix64,
    b: &mut Buffers<T>,
) -> Result<(), Error> {
    next_scene(det, digits, split, domain, rng, b)?;
    let (image, rest) = b.arena.split_at_mut(CANVAS_PIXELS.min(ARENA));
    let acts = rest.get_mut(..ACTIVATIONS).unwrap_or(&mut []);
    det.spec
        .backbone_forward(params, image, acts, &mut b.features)
}

/// The head's forward pass on `b.features`: logits into the arena's front, deltas.
///
/// # Errors
/// The network's.
pub fn head<T: Path>(det: &Detector<T>, params: &[T], b: &mut Buffers<T>) -> Result<(), Error> {
    let cls = b.arena.get_mut(..ANCHORS * CLASSES).unwrap_or(&mut []);
    det.spec
        .head_forward(params, &b.features, cls, &mut b.deltas)
}

/// Copies row `from` of `width` over row `to` (nothing when either is out of range).
fn move_row<T: Copy>(buf: &mut [T], from: usize, to: usize, width: usize) {
    for j in 0..width {
        if let Some(v) = buf.get(from * width + j).copied() {
            if let Some(d) = buf.get_mut(to * width + j) {
                *d = v;
            }
        }
    }
}

/// Rows `rows[k]` (ascending) moved to rows `k`.
fn compact<T: Copy>(buf: &mut [T], rows: &[u8], width: usize) {
    for (k, &r) in rows.iter().enumerate() {
        move_row(buf, usize::from(r), k, width);
    }
}

/// The inverse of [`compact`] over `buf` (its length rows of `width`): row `k` moved to row
/// `rows[k]`, every other row zero.
fn expand<T: Real>(buf: &mut [T], rows: &[u8], width: usize) {
    let mut next = buf.len() / width;
    for (k, &r) in rows.iter().enumerate().rev() {
        let r = usize::from(r);
        for v in buf.iter_mut().take(next * width).skip((r + 1) * width) {
            *v = T::ZERO;
        }
        if r != k {
            move_row(buf, k, r, width);
        }
        next = r;
    }
    for v in buf.iter_mut().take(next * width) {
        *v = T::ZERO;
    }
}

/// The losses' state kept across steps.
pub struct State<T: Real> {
    method: Method,
    ghm_c: GhmC<T, 30>,
    ghm_r: GhmR<T, 10>,
}

impl<T: Real> State<T> {
    /// Fresh state of `method`.
    ///
    /// # Errors
    /// Never for these constants.
    pub fn new(method: Method) -> Result<Self, Error> {
        Ok(Self {
            method,
            ghm_c: GhmC::new(30, T::from_f64(0.75), T::ONE)?,
            ghm_r: GhmR::new(T::from_f64(0.02), 10, T::from_f64(0.7), T::from_count(10))?,
        })
    }
}

fn smooth_l1<T: Real>() -> Result<SmoothL1<T>, Error> {
    SmoothL1::new(T::ONE.div_count(9))
}

/// The step's loss (classification plus box) and the gradients of the head's outputs: the
/// logits' in the arena's second third, the deltas' in `b.g_box`, zero where not trained.
/// Consumes the logits (compacted) and the deltas.
///
/// # Errors
/// The losses'.
pub fn loss_and_grad<T: Path>(
    det: &Detector<T>,
    state: &mut State<T>,
    b: &mut Buffers<T>,
    avg: T,
) -> Result<T, Error> {
    let nc = ANCHORS * CLASSES;
    let (nv, np) = (b.n_valid, b.n_pos);
    let valid = b.valid.get(..nv).unwrap_or(&[]);
    let labels = b.labels.get(..nv).unwrap_or(&[]);
    let positives = b.positives.get(..np).unwrap_or(&[]);
    let pos_rows = b.pos_rows.get(..np).unwrap_or(&[]);
    let (cls, rest) = b.arena.split_at_mut(nc.min(ARENA));
    let (g_cls, rest) = rest.split_at_mut(nc.min(rest.len()));
    let ts = rest.get_mut(..nc).unwrap_or(&mut []);
    // Decoded boxes of the valid anchors (OHEM's NMS), before the deltas are compacted.
    if state.method == Method::Ohem {
        det.coder
            .decode(&det.anchors, &b.deltas, Some(det.image()), &mut b.aux)?;
        compact(&mut b.aux, valid, 4);
    }
    compact(cls, valid, CLASSES);
    for (row, &l) in ts.chunks_exact_mut(CLASSES).zip(labels) {
        for (c, t) in row.iter_mut().enumerate() {
            *t = if c == usize::from(l) { T::ONE } else { T::ZERO };
        }
    }
    compact(&mut b.deltas, positives, 4);
    let x = cls.get(..nv * CLASSES).unwrap_or(&[]);
    let t = ts.get(..nv * CLASSES).unwrap_or(&[]);
    let bx = b.deltas.get(..4 * np).unwrap_or(&[]);
    let bt = b.box_targets.get(..4 * np).unwrap_or(&[]);
    if state.method == Method::Ohem {
        return ohem(
            b_rows(&mut b.rows, nv),
            &b.aux,
            x,
            t,
            bx,
            bt,
            valid,
            positives,
            pos_rows,
            g_cls,
            &mut b.g_box,
        );
    }
    let gx = g_cls.get_mut(..nv * CLASSES).unwrap_or(&mut []);
    let cls_loss = match state.method {
        Method::Focal => SigmoidFocal::new(T::from_f64(0.25), T::from_count(2))?
            .with_avg_factor(avg)?
            .value_and_grad(x, t, gx)?,
        Method::GhmC => state.ghm_c.value_and_grad(x, t, None, gx)?,
        Method::Bce | Method::Ohem => BceWithLogits::new()
            .with_avg_factor(avg)?
            .value_and_grad(x, t, None, gx)?,
    };
    expand(g_cls, valid, CLASSES);
    let gb = b.g_box.get_mut(..4 * np).unwrap_or(&mut []);
    let box_loss = if np == 0 {
        T::ZERO
    } else if state.method == Method::GhmC {
        state.ghm_r.value_and_grad(bx, bt, None, gb)?
    } else {
        smooth_l1()?
            .with_avg_factor(avg)?
            .value_and_grad(bx, bt, gb)?
    };
    expand(&mut b.g_box, positives, 4);
    Ok(cls_loss + box_loss)
}

fn b_rows<T>(rows: &mut [T; ANCHORS], n: usize) -> &mut [T] {
    rows.get_mut(..n).unwrap_or(&mut [])
}

/// OHEM: BCE and smooth L1 on the `MINED` valid anchors of highest `L_cls + L_loc` after NMS
/// 0.7 over `boxes`, normalised by the sample's size.
#[allow(clippy::too_many_arguments)]
fn ohem<T: Path>(
    rows: &mut [T],
    boxes: &[T],
    x: &[T],
    t: &[T],
    bx: &[T],
    bt: &[T],
    valid: &[u8],
    positives: &[u8],
    pos_rows: &[u8],
    g_cls: &mut [T],
    g_box: &mut [T],
) -> Result<T, Error> {
    let nv = rows.len();
    // Per-anchor L_cls (BCE summed over the classes), the gradient buffer as scratch.
    let scratch = g_cls.get_mut(..nv * CLASSES).unwrap_or(&mut []);
    BceWithLogits::new().per_element(x, t, None, scratch)?;
    for (r, s) in rows.iter_mut().zip(scratch.chunks_exact(CLASSES)) {
        *r = T::narrow(s.iter().fold(T::ZERO.widen(), |a, &v| a + v.widen()));
    }
    // Plus L_loc of the positives.
    let scratch = g_box.get_mut(..bx.len()).unwrap_or(&mut []);
    smooth_l1()?.per_element(bx, bt, scratch)?;
    for (&row, s) in pos_rows.iter().zip(scratch.chunks_exact(4)) {
        if let Some(r) = rows.get_mut(usize::from(row)) {
            *r = *r + T::narrow(s.iter().fold(T::ZERO.widen(), |a, &v| a + v.widen()));
        }
    }
    let picked = Ohem::<T, MINED>::new(MINED)?
        .with_nms(T::from_f64(0.7))?
        .select(rows, Some(boxes.get(..4 * nv).unwrap_or(&[])))?;
    let n = T::from_count(picked.len().max(1) as u64);
    let (mut xs, mut ts, mut gx) = (
        [T::ZERO; MINED * CLASSES],
        [T::ZERO; MINED * CLASSES],
        [T::ZERO; MINED * CLASSES],
    );
    let k = picked.len();
    for (j, &r) in picked.indices().iter().enumerate() {
        for c in 0..CLASSES {
            if let (Some(a), Some(b)) = (xs.get_mut(j * CLASSES + c), ts.get_mut(j * CLASSES + c)) {
                *a = x.get(r * CLASSES + c).copied().unwrap_or(T::ZERO);
                *b = t.get(r * CLASSES + c).copied().unwrap_or(T::ZERO);
            }
        }
    }
    let kc = k * CLASSES;
    let cls_loss = BceWithLogits::new().with_avg_factor(n)?.value_and_grad(
        xs.get(..kc).unwrap_or(&[]),
        ts.get(..kc).unwrap_or(&[]),
        None,
        gx.get_mut(..kc).unwrap_or(&mut []),
    )?;
    g_cls.fill(T::ZERO);
    for (j, &r) in picked.indices().iter().enumerate() {
        let anchor = usize::from(valid.get(r).copied().unwrap_or(0));
        for c in 0..CLASSES {
            if let Some(g) = g_cls.get_mut(anchor * CLASSES + c) {
                *g = gx.get(j * CLASSES + c).copied().unwrap_or(T::ZERO);
            }
        }
    }
    // Smooth L1 on the chosen positives.
    let (mut cx, mut ct, mut cg, mut which) = (
        [T::ZERO; MINED * 4],
        [T::ZERO; MINED * 4],
        [T::ZERO; MINED * 4],
        [0usize; MINED],
    );
    let mut m = 0usize;
    for (p, &row) in pos_rows.iter().enumerate() {
        if m < MINED && picked.contains(usize::from(row)) {
            for q in 0..4 {
                if let (Some(a), Some(b)) = (cx.get_mut(4 * m + q), ct.get_mut(4 * m + q)) {
                    *a = bx.get(4 * p + q).copied().unwrap_or(T::ZERO);
                    *b = bt.get(4 * p + q).copied().unwrap_or(T::ZERO);
                }
            }
            if let Some(w) = which.get_mut(m) {
                *w = usize::from(positives.get(p).copied().unwrap_or(0));
            }
            m += 1;
        }
    }
    let box_loss = if m == 0 {
        T::ZERO
    } else {
        smooth_l1()?.with_avg_factor(n)?.value_and_grad(
            cx.get(..4 * m).unwrap_or(&[]),
            ct.get(..4 * m).unwrap_or(&[]),
            cg.get_mut(..4 * m).unwrap_or(&mut []),
        )?
    };
    g_box.fill(T::ZERO);
    for (j, &anchor) in which.iter().take(m).enumerate() {
        for q in 0..4 {
            if let Some(g) = g_box.get_mut(4 * anchor + q) {
                *g = cg.get(4 * j + q).copied().unwrap_or(T::ZERO);
            }
        }
    }
    Ok(cls_loss + box_loss)
}

/// Fine-tunes the head of `params` (`PARAMS`, the pretrained weights on entry) with
/// `method` for [`STEPS`] steps at learning rate `lr`; returns the mean loss of the last 20
/// steps. A diverging step (a non-finite or saturating loss, a saturated weight) is
/// `InvalidParameter("diverged")`.
///
/// # Errors
/// `(step, error)`: the first library error and the step it happened at.
#[inline(never)]
pub fn fine_tune<T: Path>(
    det: &Detector<T>,
    params: &mut [T; PARAMS],
    digits: &Digits<'_>,
    method: Method,
    lr: f64,
    b: &mut Buffers<T>,
) -> Result<T, (usize, Error)> {
    let at = |step: usize| move |e: Error| (step, e);
    let head_range = det.spec.head_params();
    let zero = <T::Master as Master<T>>::from_weight(T::ZERO);
    let mut master = [zero; HEAD_PARAMS];
    let mut momentum = [zero; HEAD_PARAMS];
    let mut grads = [T::ZERO; HEAD_PARAMS];
    init_master(params.get(head_range.clone()).unwrap_or(&[]), &mut master).map_err(at(0))?;
    let sgd = Sgd::new(lr, 0.9, 1e-4).map_err(at(0))?;
    let mut normalizer =
        MovingAverageNormalizer::new(T::from_f64(0.9), T::from_count(3)).map_err(at(0))?;
    let mut state = State::<T>::new(method).map_err(at(0))?;
    let mut rng = SplitMix64::new(TRAIN_SEED);
    let mut tail = T::ZERO;
    for step in 0..STEPS {
        let e = at(step);
        prepare(
            det,
            params,
            digits,
            Split::Train,
            Domain::Target,
            &mut rng,
            b,
        )
        .map_err(e)?;
        head(det, params, b).map_err(e)?;
        let avg = normalizer.update(b.n_pos);
        let loss = loss_and_grad(det, &mut state, b, avg).map_err(e)?;
        if !loss.is_finite() || loss.abs() >= T::from_count(DIVERGED_LOSS) {
            return Err((step, Error::InvalidParameter("diverged")));
        }
        grads.fill(T::ZERO);
        let g_cls = b
            .arena
            .get(ANCHORS * CLASSES..2 * ANCHORS * CLASSES)
            .unwrap_or(&[]);
        det.spec
            .head_backward(params, &b.features, g_cls, &b.g_box, &mut grads, None)
            .map_err(e)?;
        let weights = params.get_mut(head_range.clone()).unwrap_or(&mut []);
        let stats = sgd
            .step(weights, &mut master, &mut momentum, &mut grads)
            .map_err(e)?;
        if stats.saturated > 0 {
            return Err((step, Error::InvalidParameter("diverged")));
        }
        if step + TAIL >= STEPS {
            tail = tail + loss;
        }
    }
    Ok(tail.div_count(TAIL))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{vec, vec::Vec};

    #[test]
    fn compact_and_expand_are_inverse_on_the_rows() {
        let mut buf: Vec<i32> = (1..=12).collect(); // 6 rows of 2
        let rows = [1u8, 2, 5];
        compact(&mut buf, &rows, 2);
        assert_eq!(&buf[..6], &[3, 4, 5, 6, 11, 12]);
        let mut f: Vec<f32> = buf.iter().map(|&v| v as f32).collect();
        expand(&mut f, &rows, 2);
        assert_eq!(f, vec![0., 0., 3., 4., 5., 6., 0., 0., 0., 0., 11., 12.]);
    }
}
