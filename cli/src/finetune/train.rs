//! One run: fine-tuning the head from the pretrained weights, one scene per SGD step, for one
//! method and box loss on one path, and its evaluation.

use super::config::{Detector, MAX_PER_IMAGE, NMS_PRE};
use super::method::{self, BoxLoss, Method, Targets, Trainer};
use super::prepare::SceneSet;
use super::scene::CLASSES;
use crate::coco::{self, Detection as CocoDetection, Summary};
use hardmine::{ChannelBlockRotation, OcclusionSearch};
use hardmine_detect::{Candidate, Detection, HeadOutput, Master, Scalar, Sgd};

/// SGD's momentum and weight decay (mmdetection's RetinaNet schedule).
pub const MOMENTUM: f64 = 0.9;
/// Weight decay.
pub const WEIGHT_DECAY: f64 = 1e-4;
/// The moving average of the positive count (detectron2's RetinaNet): its momentum, and its
/// start, about the mean count of a scene (detectron2 starts at 100 for batches of 16 images).
pub const NORMALIZER: (f64, f64) = (0.9, 10.0);

/// A loss at least this large counts as divergence (Q15.16 saturates at 32,768; on f32 such
/// a loss has long stopped meaning anything for a normalised detection loss).
pub const DIVERGED_LOSS: u64 = 30_000;

/// What one run trains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    /// The classification method.
    pub method: Method,
    /// The box loss.
    pub box_loss: BoxLoss,
    /// The learning rate.
    pub lr: f64,
    /// The seed of the samplers (the scenes' order is the caller's).
    pub seed: u64,
}

/// A run that stopped: the step and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{method} diverged at step {step} (lr {lr}): {why}")]
pub struct Diverged {
    /// The method's name (with its box loss when not the default).
    pub method: String,
    /// The step.
    pub step: usize,
    /// The learning rate.
    pub lr: f64,
    /// What went non-finite or saturated.
    pub why: String,
}

/// What a run's training produced.
#[derive(Debug, Clone)]
pub struct Trained<T> {
    /// The whole network's parameters, the head trained.
    pub params: Vec<T>,
    /// `(step, cls + box loss)` at 50 points.
    pub curve: Vec<(usize, f64)>,
    /// The loss averaged over the last tenth of the steps.
    pub train_loss: f64,
    /// Parameter updates with a non-zero gradient.
    pub updates: u64,
    /// Of those, the ones that changed the master copy by nothing.
    pub zero_master: u64,
    /// Of those, the ones whose step rounds to zero in the weight's own type (what an update
    /// without the master copy would lose).
    pub zero_weight: u64,
}

/// The head's outputs of one scene and its buffers.
struct Outputs<T> {
    cls: Vec<T>,
    deltas: Vec<T>,
    decoded: Vec<T>,
    g_cls: Vec<T>,
    g_box: Vec<T>,
}

impl<T: Scalar> Outputs<T> {
    fn new(det: &Detector<T>) -> Self {
        let (c, b) = (det.spec.cls_len(), det.spec.box_len());
        Self {
            cls: vec![T::ZERO; c],
            deltas: vec![T::ZERO; b],
            decoded: vec![T::ZERO; b],
            g_cls: vec![T::ZERO; c],
            g_box: vec![T::ZERO; b],
        }
    }
}

/// The display name of a run: the method, and its box loss when not the method's default.
pub fn run_name(method: Method, box_loss: BoxLoss) -> String {
    if box_loss == method.default_box_loss() {
        method.name().to_owned()
    } else {
        format!("{}+{}", method.name(), box_loss.name())
    }
}

/// Fine-tunes the head of `pretrained` on `train` (one scene per step, in order, cycling).
pub fn train<T: Scalar>(
    det: &Detector<T>,
    pretrained: &[T],
    train: &SceneSet<T>,
    run: Run,
    steps: usize,
    progress: &mut dyn FnMut(usize),
) -> anyhow::Result<Trained<T>> {
    let name = run_name(run.method, run.box_loss);
    let diverged = |step: usize, why: String| Diverged {
        method: name.clone(),
        step,
        lr: run.lr,
        why,
    };
    let spec = &det.spec;
    let head = spec.head_params();
    let mut params = pretrained.to_vec();
    let zero = <T::Master as Master<T>>::from_weight(T::ZERO);
    let mut master = vec![zero; head.len()];
    let mut momentum = vec![zero; head.len()];
    hardmine_detect::init_master(&params[head.clone()], &mut master)?;
    let mut grads = vec![T::ZERO; head.len()];
    let sgd = Sgd::new(run.lr, MOMENTUM, WEIGHT_DECAY)?;
    let mut normalizer = hardmine::MovingAverageNormalizer::new(
        T::from_f64(NORMALIZER.0),
        T::from_f64(NORMALIZER.1),
    )?;
    let mut trainer = Trainer::<T>::new(run.method, run.box_loss, run.seed)?;
    let mut out = Outputs::new(det);
    let mut curve = Vec::new();
    let (mut tail, mut tail_n) = (0.0, 0usize);
    let (mut updates, mut zero_master, mut zero_weight) = (0u64, 0u64, 0u64);
    let scenes = &train.scenes;
    anyhow::ensure!(!scenes.is_empty(), "no training scenes");
    for step in 0..steps {
        let scene = &scenes[step % scenes.len()];
        // Whatever fails inside a step (a non-finite value reaching a loss, the decoder or a
        // search) is that run's divergence, reported as such; the other runs go on.
        spec.head_forward(&params, &scene.features, &mut out.cls, &mut out.deltas)
            .map_err(|e| diverged(step, format!("head: {e}")))?;
        if run.method == Method::Ohem {
            det.coder
                .decode(
                    &det.anchors,
                    &out.deltas,
                    Some(det.image()),
                    &mut out.decoded,
                )
                .map_err(|e| diverged(step, format!("decoding: {e}")))?;
        }
        let avg = normalizer.update(scene.targets.positives.len());
        let progress_t = T::from_count((step * 1000 / steps.max(1)) as u64).div_count(1000);
        let loss = trainer
            .loss_and_grad(
                &out.cls,
                &out.deltas,
                &out.decoded,
                &scene.targets,
                avg,
                progress_t,
                &mut out.g_cls,
                &mut out.g_box,
            )
            .map_err(|e| diverged(step, e.to_string()))?;
        grads.fill(T::ZERO);
        spec.head_backward(
            &params,
            &scene.features,
            &out.g_cls,
            &out.g_box,
            &mut grads,
            None,
        )
        .map_err(|e| diverged(step, format!("head backward: {e}")))?;
        let mut value = loss.cls + loss.boxes;
        if run.method == Method::AfastSearch {
            value = value
                + hard_positives(
                    det,
                    &params,
                    &scene.features,
                    &scene.targets,
                    avg,
                    &mut grads,
                )
                .map_err(|e| diverged(step, format!("A-Fast-RCNN step: {e}")))?;
        }
        // Q15.16 saturates at 32,768: a loss that close to it is a saturated loss.
        if !value.is_finite() || value.abs() >= T::from_count(DIVERGED_LOSS) {
            return Err(diverged(step, format!("loss {}", value.to_f64())).into());
        }
        let stats = sgd
            .step(
                &mut params[head.clone()],
                &mut master,
                &mut momentum,
                &mut grads,
            )
            .map_err(|e| diverged(step, e.to_string()))?;
        if stats.saturated > 0 {
            return Err(diverged(step, format!("{} weights saturated", stats.saturated)).into());
        }
        updates += stats.nonzero as u64;
        zero_master += stats.lost_in_master as u64;
        zero_weight += stats.lost_without_master as u64;
        let v = value.to_f64();
        if step * 10 >= steps * 9 {
            tail += v;
            tail_n += 1;
        }
        if step % (steps / 50).max(1) == 0 {
            curve.push((step, v));
            progress(step);
        }
    }
    Ok(Trained {
        params,
        curve,
        train_loss: if tail_n > 0 {
            tail / tail_n as f64
        } else {
            0.0
        },
        updates,
        zero_master,
        zero_weight,
    })
}

/// The search-based A-Fast-RCNN step: for each positive, the head's 3 x 3 window of feature
/// cells around it is made hard (the cell whose occlusion lowers the true class's score most
/// is zeroed, then the channel-block rotation that raises its loss most is applied) and
/// trained on as an extra positive (BCE on its anchor's row, normalised by `avg`). Returns
/// the added loss; the gradients go into `grads` (the head's).
fn hard_positives<T: Scalar>(
    det: &Detector<T>,
    params: &[T],
    features: &[T],
    targets: &Targets<T>,
    avg: T,
    grads: &mut [T],
) -> anyhow::Result<T> {
    let spec = &det.spec;
    let f = spec.feature_channels();
    let (_, fw) = spec.feature_hw();
    let a = spec.num_anchors();
    let patch_len = spec.patch_len();
    let (mut patch, mut chw, mut scratch, mut rotated) = (
        vec![T::ZERO; patch_len],
        vec![T::ZERO; patch_len],
        vec![T::ZERO; patch_len],
        vec![T::ZERO; patch_len],
    );
    let search = OcclusionSearch::new(f, 3, 3, 1, 1)?;
    let rotation = ChannelBlockRotation::<T>::new(f, 3, 3, 4)?;
    let mut scores = vec![T::ZERO; search.window_count()];
    let mut mask = vec![T::ZERO; 9];
    let mut angles = [T::ZERO; 4];
    let (mut cls, mut boxes) = (vec![T::ZERO; a * CLASSES], vec![T::ZERO; a * 4]);
    let (mut g_cls, g_box) = (vec![T::ZERO; a * CLASSES], vec![T::ZERO; a * 4]);
    let bce = hardmine::BceWithLogits::new().with_avg_factor(avg)?;
    let mut total = T::ZERO;
    for (&anchor, &row) in targets.positives.iter().zip(&targets.pos_rows) {
        let class = targets.labels[row];
        let (loc, k) = (anchor / a, anchor % a);
        spec.patch_at(features, loc / fw, loc % fw, &mut patch)?;
        to_chw(&patch, f, &mut chw);
        // The searches' scorers return values, not results: the first error is kept and
        // returned after the search.
        let mut failed: Option<hardmine::Error> = None;
        let mut score = |m: &[T]| {
            from_chw(m, f, &mut scratch);
            match spec.head_forward_at(params, &scratch, &mut cls, &mut boxes) {
                Ok(()) => cls[k * CLASSES + class],
                Err(e) => {
                    failed.get_or_insert(e);
                    T::ZERO
                }
            }
        };
        // ASDN: occlude the cell that lowers the true class's logit most.
        let best = search.search(&chw, &mut rotated, &mut scores, &mut score)?;
        search.target_map(best, &mut mask)?;
        for plane in chw.chunks_exact_mut(9) {
            for (v, &m) in plane.iter_mut().zip(&mask) {
                if m == T::ONE {
                    *v = T::ZERO;
                }
            }
        }
        // ASTN: the rotation of channel blocks that lowers it most.
        rotation.adversarial(&chw, 5, &mut rotated, &mut angles, |m| T::ZERO - score(m))?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        from_chw(&rotated, f, &mut patch);
        spec.head_forward_at(params, &patch, &mut cls, &mut boxes)?;
        let logits = &cls[k * CLASSES..(k + 1) * CLASSES];
        // The anchor's one-hot target, as the assignment wrote it.
        let t = &targets.cls[row * CLASSES..(row + 1) * CLASSES];
        g_cls.fill(T::ZERO);
        let v = bce.value_and_grad(logits, t, None, &mut g_cls[k * CLASSES..(k + 1) * CLASSES])?;
        spec.head_backward_at(&patch, &g_cls, &g_box, grads)?;
        total = total + v;
    }
    Ok(total)
}

/// HWC `3 x 3 x f` to CHW `f x 3 x 3`.
fn to_chw<T: Copy>(hwc: &[T], f: usize, chw: &mut [T]) {
    for p in 0..9 {
        for c in 0..f {
            chw[c * 9 + p] = hwc[p * f + c];
        }
    }
}

/// CHW `f x 3 x 3` to HWC `3 x 3 x f`.
fn from_chw<T: Copy>(chw: &[T], f: usize, hwc: &mut [T]) {
    for p in 0..9 {
        for c in 0..f {
            hwc[p * f + c] = chw[c * 9 + p];
        }
    }
}

/// The detections of `params` on every scene of `set` (image `i` the `i`-th scene), scored
/// as `method` scores; with `anchors_only`, the predicted deltas are replaced by zeros.
pub fn detect<T: Scalar>(
    det: &Detector<T>,
    params: &[T],
    set: &SceneSet<T>,
    method: Method,
    anchors_only: bool,
) -> anyhow::Result<Vec<CocoDetection>> {
    let mut out = Outputs::new(det);
    let mut scores = vec![T::ZERO; det.spec.cls_len()];
    let mut pool = vec![Candidate::default(); NMS_PRE];
    let mut kept = vec![Detection::default(); MAX_PER_IMAGE];
    let mut all = Vec::new();
    for (image, scene) in set.scenes.iter().enumerate() {
        det.spec
            .head_forward(params, &scene.features, &mut out.cls, &mut out.deltas)?;
        if anchors_only {
            out.deltas.fill(T::ZERO);
        }
        method::scores(method, &out.cls, &mut scores);
        let head = HeadOutput {
            anchors: &det.anchors,
            deltas: &out.deltas,
            scores: &scores,
            num_classes: CLASSES,
        };
        let n = det
            .post
            .run(&head, Some(det.image()), &mut pool, &mut kept)?;
        all.extend(kept[..n].iter().map(|d| CocoDetection {
            image,
            class: usize::from(d.class),
            bbox: d.bbox.map(|v| v.to_f64()),
            score: d.score.to_f64(),
        }));
    }
    Ok(all)
}

/// COCO-style metrics of `params` on `set`.
pub fn evaluate<T: Scalar>(
    det: &Detector<T>,
    params: &[T],
    set: &SceneSet<T>,
    method: Method,
    anchors_only: bool,
) -> anyhow::Result<Summary> {
    let dets = detect(det, params, set, method, anchors_only)?;
    coco::evaluate(set.scenes.len(), CLASSES, &set.ground_truth(), &dets)
}
