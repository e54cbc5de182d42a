//! One run: fine-tuning the head from the pretrained weights, one scene per SGD step, for one
//! method and box loss on one path, and its evaluation.

use super::config::{Detector, MAX_PER_IMAGE, NMS_PRE};
use super::method::{self, BoxLoss, Method, Targets, Trainer};
use super::prepare::{Prepared, SceneSet};
use super::scene::CLASSES;
use crate::coco::{self, Detection as CocoDetection, Summary};
use hardmine::{BceWithLogits, ChannelBlockRotation, DropoutMask, OcclusionSearch, SplitMix64};
use hardmine_detect::{
    apply_mask, from_chw, patch_gradient, to_chw, Asdn, Astn, Candidate, Detection, HeadOutput,
    Master, Scalar, Sgd, CELLS,
};

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
    /// ASDN's learning rate in joint training (`afast_asdn`, `afast`).
    pub asdn_lr: f64,
    /// ASTN's learning rate (`afast`).
    pub astn_lr: f64,
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
    /// The learned adversaries' outcome (`afast_asdn`, `afast`).
    pub adversaries: Option<AdversaryOutcome<T>>,
}

/// What the learned adversaries of a run did.
#[derive(Debug, Clone)]
pub struct AdversaryOutcome<T> {
    /// ASDN's weights at initialisation, after pretraining and after joint training.
    pub asdn: [Vec<T>; 3],
    /// Seconds spent pretraining ASDN (not in the run's time per step).
    pub pretrain_s: f64,
    /// Share of the sampled masks that raised the detector's loss on their positive.
    pub raised_share: f64,
    /// Share of ASTN's angles within 1% of the +-10 degree bound over the last tenth of the
    /// steps (`afast`).
    pub angle_bound_share: Option<f64>,
    /// ASTN's mean |angle| in degrees over the last tenth of the steps (`afast`).
    pub mean_abs_angle_deg: Option<f64>,
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
    let scenes = &train.scenes;
    anyhow::ensure!(!scenes.is_empty(), "no training scenes");
    let mut adversaries = if run.method.learned_adversaries() {
        let mut a = Adversaries::<T>::new(run.method, run.seed, run.asdn_lr, run.astn_lr)?;
        let start = std::time::Instant::now();
        let init = a.asdn_params.clone();
        let n = ASDN_PRETRAIN_SCENES.min(scenes.len());
        a.pretrain(det, &params, &scenes[..n])
            .map_err(|e| diverged(0, format!("ASDN pretraining: {e}")))?;
        let pretrained_asdn = a.asdn_params.clone();
        Some((a, init, pretrained_asdn, start.elapsed().as_secs_f64()))
    } else {
        None
    };
    let mut out = Outputs::new(det);
    let mut curve = Vec::new();
    let (mut tail, mut tail_n) = (0.0, 0usize);
    let (mut updates, mut zero_master, mut zero_weight) = (0u64, 0u64, 0u64);
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
        if let Some((a, ..)) = adversaries.as_mut() {
            let tail = step * 10 >= steps * 9;
            value = value
                + a.hard_positives(
                    det,
                    &params,
                    &scene.features,
                    &scene.targets,
                    avg,
                    tail,
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
    let adversaries = match adversaries {
        Some((a, init, pretrained_asdn, pretrain_s)) => {
            let share = a.angle_bound_share();
            if let Some(share) = share.filter(|&s| s > MAX_BOUND_SHARE) {
                return Err(diverged(
                    steps,
                    format!(
                        "{:.0}% of ASTN's angles at the +-10 degree bound (more than {:.0}%)",
                        100.0 * share,
                        100.0 * MAX_BOUND_SHARE
                    ),
                )
                .into());
            }
            Some(AdversaryOutcome {
                raised_share: a.raised_share(),
                angle_bound_share: share,
                mean_abs_angle_deg: a.mean_abs_angle_deg(),
                asdn: [init, pretrained_asdn, a.asdn_params],
                pretrain_s,
            })
        }
        None => None,
    };
    Ok(Trained {
        params,
        curve,
        adversaries,
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
        to_chw(&patch, f, &mut chw)?;
        // The searches' scorers return values, not results: the first error is kept and
        // returned after the search.
        let mut failed: Option<hardmine::Error> = None;
        let mut score = |m: &[T]| {
            let r = from_chw(m, f, &mut scratch)
                .and_then(|()| spec.head_forward_at(params, &scratch, &mut cls, &mut boxes));
            match r {
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
        from_chw(&rotated, f, &mut patch)?;
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

/// ASDN's pretraining: the first scenes of the run's stream, one SGD step per positive window.
pub const ASDN_PRETRAIN_SCENES: usize = 300;
/// ASDN's pretraining learning rate (per window, momentum 0.9).
pub const ASDN_PRETRAIN_LR: f64 = 0.02;
/// The adversaries' joint-training learning rate where none is tuned (`tune`'s first stage).
pub const ADVERSARY_LR: f64 = 0.01;
/// The dropout masks: the 3 top-scored cells of the 9, one of them dropped (the paper drops a
/// random third of its top-scored third).
const MASK_TOP: usize = 3;
const MASK_PICK: usize = 1;
/// An angle within 1% of the bound counts as at the bound.
const AT_BOUND: f64 = 0.99;
/// A run whose ASTN has more than this share of its angles at the bound fails.
pub const MAX_BOUND_SHARE: f64 = 0.9;

/// A-Fast-RCNN's learned adversaries of one run (`afast_asdn`: ASDN; `afast`: ASDN and
/// ASTN), their SGD state and the buffers of one window, kept across steps.
pub struct Adversaries<T: Scalar> {
    asdn: Asdn,
    astn: Option<Astn>,
    dropout: DropoutMask,
    search: OcclusionSearch,
    rotation: ChannelBlockRotation<T>,
    rng: SplitMix64,
    asdn_sgd: Sgd,
    astn_sgd: Sgd,
    /// ASDN's weights.
    pub asdn_params: Vec<T>,
    asdn_grads: Vec<T>,
    asdn_master: Vec<T::Master>,
    asdn_momentum: Vec<T::Master>,
    astn_params: Vec<T>,
    astn_grads: Vec<T>,
    astn_master: Vec<T::Master>,
    astn_momentum: Vec<T::Master>,
    // ASDN's buffers: hidden map and its gradient, scores, their gradient, the mask.
    asdn_hidden: Vec<T>,
    asdn_g_hidden: Vec<T>,
    scores: [T; CELLS],
    g_scores: [T; CELLS],
    mask: [T; CELLS],
    // ASTN's: hidden units and their gradient, the angles and theirs.
    astn_hidden: Vec<T>,
    astn_g_hidden: Vec<T>,
    angles: Vec<T>,
    g_angles: Vec<T>,
    // One window (3 x 3 x F) at a time: the patch, masked, its CHW copy, rotated, the hard
    // patch, and the gradients of the hard patch, of the rotated CHW one and of its input.
    windows: [Vec<T>; 8],
    // One location's head outputs and their gradients.
    cls: Vec<T>,
    boxes: Vec<T>,
    g_cls: Vec<T>,
    g_box: Vec<T>,
    masks: u64,
    raised: u64,
    tail_angles: u64,
    tail_at_bound: u64,
    tail_abs_sum: f64,
}

/// The windows read by index (the others are taken apart by destructuring).
const PATCH: usize = 0;
const MASKED: usize = 1;
const HARD: usize = 4;

impl<T: Scalar> Adversaries<T> {
    /// The adversaries of `method` (`afast_asdn` or `afast`), initialised from `seed`.
    pub fn new(method: Method, seed: u64, asdn_lr: f64, astn_lr: f64) -> anyhow::Result<Self> {
        anyhow::ensure!(
            method.learned_adversaries(),
            "{} has no learned adversaries",
            method.name()
        );
        let spec = hardmine_detect::DetectorSpec::tiny();
        let f = spec.feature_channels();
        let asdn = Asdn::new(f, 8)?;
        let astn = (method == Method::Afast)
            .then(|| Astn::new(f, 16, 4))
            .transpose()?;
        let mut rng = SplitMix64::new(seed ^ 0xad5e);
        let mut asdn_params = vec![T::ZERO; asdn.params_len()];
        asdn.init(&mut rng, &mut asdn_params)?;
        let astn_len = astn.map_or(0, |a| a.params_len());
        let mut astn_params = vec![T::ZERO; astn_len];
        if let Some(a) = astn {
            a.init(&mut rng, &mut astn_params)?;
        }
        let zero = <T::Master as Master<T>>::from_weight(T::ZERO);
        let mut asdn_master = vec![zero; asdn_params.len()];
        hardmine_detect::init_master(&asdn_params, &mut asdn_master)?;
        let mut astn_master = vec![zero; astn_len];
        hardmine_detect::init_master(&astn_params, &mut astn_master)?;
        let blocks = astn.map_or(0, |a| a.blocks());
        let a = spec.num_anchors();
        Ok(Self {
            asdn,
            astn,
            dropout: DropoutMask::new(1, 3, 3, MASK_TOP, MASK_PICK)?,
            search: OcclusionSearch::new(f, 3, 3, 1, 1)?,
            rotation: ChannelBlockRotation::new(f, 3, 3, 4)?,
            rng,
            asdn_sgd: Sgd::new(asdn_lr, MOMENTUM, WEIGHT_DECAY)?,
            astn_sgd: Sgd::new(astn_lr, MOMENTUM, WEIGHT_DECAY)?,
            asdn_grads: vec![T::ZERO; asdn_params.len()],
            asdn_momentum: vec![zero; asdn_params.len()],
            asdn_params,
            asdn_master,
            astn_grads: vec![T::ZERO; astn_len],
            astn_momentum: vec![zero; astn_len],
            astn_params,
            astn_master,
            asdn_hidden: vec![T::ZERO; asdn.hidden_len()],
            asdn_g_hidden: vec![T::ZERO; asdn.hidden_len()],
            scores: [T::ZERO; CELLS],
            g_scores: [T::ZERO; CELLS],
            mask: [T::ZERO; CELLS],
            astn_hidden: vec![T::ZERO; astn.map_or(0, |a| a.hidden_len())],
            astn_g_hidden: vec![T::ZERO; astn.map_or(0, |a| a.hidden_len())],
            angles: vec![T::ZERO; blocks],
            g_angles: vec![T::ZERO; blocks],
            windows: core::array::from_fn(|_| vec![T::ZERO; spec.patch_len()]),
            cls: vec![T::ZERO; a * CLASSES],
            boxes: vec![T::ZERO; a * 4],
            g_cls: vec![T::ZERO; a * CLASSES],
            g_box: vec![T::ZERO; a * 4],
            masks: 0,
            raised: 0,
            tail_angles: 0,
            tail_at_bound: 0,
            tail_abs_sum: 0.0,
        })
    }

    /// Bytes of the adversaries' weights, gradients, SGD state and buffers, and of the
    /// searches' and networks' descriptions.
    pub fn state_bytes(&self) -> usize {
        use core::mem::size_of;
        let t = size_of::<T>();
        let m = size_of::<T::Master>();
        let values = self.asdn_params.len()
            + self.asdn_grads.len()
            + self.astn_params.len()
            + self.astn_grads.len()
            + self.asdn_hidden.len()
            + self.asdn_g_hidden.len()
            + 3 * CELLS
            + self.astn_hidden.len()
            + self.astn_g_hidden.len()
            + self.angles.len()
            + self.g_angles.len()
            + self.windows.iter().map(Vec::len).sum::<usize>()
            + self.cls.len()
            + self.boxes.len()
            + self.g_cls.len()
            + self.g_box.len();
        let masters = self.asdn_master.len()
            + self.asdn_momentum.len()
            + self.astn_master.len()
            + self.astn_momentum.len();
        values * t
            + masters * m
            + size_of::<Asdn>()
            + size_of::<Option<Astn>>()
            + size_of::<DropoutMask>()
            + size_of::<OcclusionSearch>()
            + size_of::<ChannelBlockRotation<T>>()
            + 2 * size_of::<Sgd>()
            + size_of::<SplitMix64>()
    }

    /// Share of the sampled masks that raised their positive's loss.
    pub fn raised_share(&self) -> f64 {
        self.raised as f64 / self.masks.max(1) as f64
    }

    /// Share of ASTN's angles at the bound over the last tenth of the steps (`None` without
    /// ASTN).
    pub fn angle_bound_share(&self) -> Option<f64> {
        self.astn
            .map(|_| self.tail_at_bound as f64 / self.tail_angles.max(1) as f64)
    }

    /// ASTN's mean |angle| in degrees over the last tenth of the steps (`None` without ASTN).
    pub fn mean_abs_angle_deg(&self) -> Option<f64> {
        self.astn
            .map(|_| (self.tail_abs_sum / self.tail_angles.max(1) as f64).to_degrees())
    }

    /// ASDN pretrained on `scenes` with the detector `params` fixed: one SGD step per positive
    /// window, BCE against the occlusion search's target.
    pub fn pretrain(
        &mut self,
        det: &Detector<T>,
        params: &[T],
        scenes: &[Prepared<T>],
    ) -> anyhow::Result<()> {
        let sgd = Sgd::new(ASDN_PRETRAIN_LR, MOMENTUM, 0.0)?;
        let zero = <T::Master as Master<T>>::from_weight(T::ZERO);
        let mut momentum = vec![zero; self.asdn_params.len()];
        let mut target = [T::ZERO; CELLS];
        for scene in scenes {
            for (&anchor, &row) in scene.targets.positives.iter().zip(&scene.targets.pos_rows) {
                let class = scene.targets.labels[row];
                let best = self.search_target(det, params, &scene.features, anchor, class)?;
                self.search.target_map(best, &mut target)?;
                let patch = &self.windows[PATCH];
                self.asdn.forward(
                    &self.asdn_params,
                    patch,
                    &mut self.asdn_hidden,
                    &mut self.scores,
                )?;
                self.asdn
                    .pretrain_grad(&self.scores, &target, &mut self.g_scores)?;
                self.asdn.backward(
                    &self.asdn_params,
                    patch,
                    &self.asdn_hidden,
                    &self.g_scores,
                    &mut self.asdn_g_hidden,
                    &mut self.asdn_grads,
                )?;
                sgd.step(
                    &mut self.asdn_params,
                    &mut self.asdn_master,
                    &mut momentum,
                    &mut self.asdn_grads,
                )?;
            }
        }
        Ok(())
    }

    /// The occlusion search's target cell of a positive (`anchor`, `class`) under the detector
    /// `params`: the cell whose zeroing lowers the true class's logit most. Leaves the window
    /// in `windows[PATCH]`.
    fn search_target(
        &mut self,
        det: &Detector<T>,
        params: &[T],
        features: &[T],
        anchor: usize,
        class: usize,
    ) -> anyhow::Result<usize> {
        let spec = &det.spec;
        let f = spec.feature_channels();
        let (_, fw) = spec.feature_hw();
        let a = spec.num_anchors();
        let (loc, k) = (anchor / a, anchor % a);
        let [patch, _, chw, scratch, hwc, ..] = &mut self.windows;
        spec.patch_at(features, loc / fw, loc % fw, patch)?;
        to_chw(patch, f, chw)?;
        let (cls, boxes) = (&mut self.cls, &mut self.boxes);
        let mut failed: Option<hardmine::Error> = None;
        let mut scores = [T::ZERO; CELLS];
        let best = self.search.search(chw, scratch, &mut scores, |m| {
            let r =
                from_chw(m, f, hwc).and_then(|()| spec.head_forward_at(params, hwc, cls, boxes));
            match r {
                Ok(()) => cls[k * CLASSES + class],
                Err(e) => {
                    failed.get_or_insert(e);
                    T::ZERO
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        Ok(best)
    }

    /// Share of the positives of `set` whose highest ASDN score (`asdn_params`) is the
    /// search's target cell under the detector `params`.
    pub fn agreement(
        &mut self,
        det: &Detector<T>,
        params: &[T],
        asdn_params: &[T],
        set: &SceneSet<T>,
    ) -> anyhow::Result<f64> {
        let (mut hits, mut n) = (0usize, 0usize);
        for scene in &set.scenes {
            for (&anchor, &row) in scene.targets.positives.iter().zip(&scene.targets.pos_rows) {
                let class = scene.targets.labels[row];
                let best = self.search_target(det, params, &scene.features, anchor, class)?;
                self.asdn.forward(
                    asdn_params,
                    &self.windows[PATCH],
                    &mut self.asdn_hidden,
                    &mut self.scores,
                )?;
                let top = (0..CELLS).fold(0, |b, i| {
                    if self.scores[i] > self.scores[b] {
                        i
                    } else {
                        b
                    }
                });
                hits += usize::from(top == best);
                n += 1;
            }
        }
        Ok(hits as f64 / n.max(1) as f64)
    }

    /// The BCE of one anchor's class row of the head at the window `patch` (`k`: the anchor
    /// at its location), against the assignment's one-hot `target`; the row's gradient into
    /// `self.g_cls` when `grad`.
    #[allow(clippy::too_many_arguments)]
    fn row_loss(
        &mut self,
        det: &Detector<T>,
        params: &[T],
        which: usize,
        k: usize,
        target: &[T],
        bce: BceWithLogits,
        grad: bool,
    ) -> anyhow::Result<T> {
        det.spec
            .head_forward_at(params, &self.windows[which], &mut self.cls, &mut self.boxes)?;
        let logits = &self.cls[k * CLASSES..(k + 1) * CLASSES];
        Ok(if grad {
            self.g_cls.fill(T::ZERO);
            bce.value_and_grad(
                logits,
                target,
                None,
                &mut self.g_cls[k * CLASSES..(k + 1) * CLASSES],
            )?
        } else {
            bce.value(logits, target, None)?
        })
    }

    /// One scene's learned A-Fast-RCNN step: for each positive, ASDN's sampled mask on its
    /// window (and for `afast` ASTN's rotation of the masked window) makes a hard copy that
    /// the detector trains on as an extra positive (BCE on its anchor's row, normalised by
    /// `avg`, gradients into the head's `grads`); ASDN is updated toward the masks that raised
    /// the detector's loss and away from those that did not, ASTN by gradient ascent on the
    /// detector's loss of the hard copy. `tail`: count the angles at the bound. Returns the
    /// added loss.
    ///
    /// The hard copy is added beside the clean positive (the paper replaces the positive's
    /// features with it). On an `Err` the adversaries' generator, counters and gradient sums
    /// may have advanced: the caller ends the run there (a divergence), and the state is not
    /// used again.
    #[allow(clippy::too_many_arguments)]
    pub fn hard_positives(
        &mut self,
        det: &Detector<T>,
        params: &[T],
        features: &[T],
        targets: &Targets<T>,
        avg: T,
        tail: bool,
        grads: &mut [T],
    ) -> anyhow::Result<T> {
        let spec = &det.spec;
        let f = spec.feature_channels();
        let (_, fw) = spec.feature_hw();
        let a = spec.num_anchors();
        let bce = BceWithLogits::new().with_avg_factor(avg)?;
        let plain = BceWithLogits::new().with_reduction(hardmine::Reduction::Sum);
        let n = targets.positives.len();
        let mut total = T::ZERO;
        let m = T::from_f64(hardmine_detect::MAX_ANGLE * AT_BOUND);
        for (&anchor, &row) in targets.positives.iter().zip(&targets.pos_rows) {
            let (loc, k) = (anchor / a, anchor % a);
            let t = &targets.cls[row * CLASSES..(row + 1) * CLASSES];
            spec.patch_at(features, loc / fw, loc % fw, &mut self.windows[PATCH])?;
            // ASDN: a mask sampled from its scores, and whether it raised the loss.
            self.asdn.forward(
                &self.asdn_params,
                &self.windows[PATCH],
                &mut self.asdn_hidden,
                &mut self.scores,
            )?;
            self.dropout
                .sample(&self.scores, &mut self.rng, &mut self.mask)?;
            let [patch, masked, ..] = &mut self.windows;
            masked.copy_from_slice(patch);
            apply_mask(&self.mask, f, masked)?;
            let before = self.row_loss(det, params, PATCH, k, t, plain, false)?;
            let after = self.row_loss(det, params, MASKED, k, t, plain, false)?;
            let raised = after > before;
            self.masks += 1;
            self.raised += u64::from(raised);
            self.asdn
                .adversarial_grad(&self.scores, &self.mask, raised, &mut self.g_scores)?;
            for g in &mut self.g_scores {
                *g = g.div_count(n);
            }
            self.asdn.backward(
                &self.asdn_params,
                &self.windows[PATCH],
                &self.asdn_hidden,
                &self.g_scores,
                &mut self.asdn_g_hidden,
                &mut self.asdn_grads,
            )?;
            // ASTN: rotate the masked window's channel blocks.
            let hard = match self.astn {
                Some(astn) => {
                    astn.forward(
                        &self.astn_params,
                        &self.windows[MASKED],
                        &mut self.astn_hidden,
                        &mut self.angles,
                    )?;
                    if tail {
                        self.tail_angles += self.angles.len() as u64;
                        self.tail_at_bound +=
                            self.angles.iter().filter(|x| x.abs() >= m).count() as u64;
                        self.tail_abs_sum +=
                            self.angles.iter().map(|x| x.abs().to_f64()).sum::<f64>();
                    }
                    let [_, masked, chw, rotated, hard, ..] = &mut self.windows;
                    to_chw(masked, f, chw)?;
                    self.rotation.forward(chw, &self.angles, rotated)?;
                    from_chw(rotated, f, hard)?;
                    HARD
                }
                None => MASKED,
            };
            let v = self.row_loss(det, params, hard, k, t, bce, true)?;
            spec.head_backward_at(&self.windows[hard], &self.g_cls, &self.g_box, grads)?;
            total = total + v;
            if let Some(astn) = self.astn {
                // Gradient ascent: the detector loss's angle gradient, negated.
                let [_, masked, chw, _, _, g_hard, g_rotated, g_chw] = &mut self.windows;
                patch_gradient(spec, params, &self.g_cls, &self.g_box, g_hard)?;
                to_chw(g_hard, f, g_rotated)?;
                self.rotation
                    .backward(chw, &self.angles, g_rotated, g_chw, &mut self.g_angles)?;
                for g in &mut self.g_angles {
                    *g = T::ZERO - *g;
                }
                astn.backward(
                    &self.astn_params,
                    masked,
                    &self.astn_hidden,
                    &self.angles,
                    &self.g_angles,
                    &mut self.astn_g_hidden,
                    &mut self.astn_grads,
                )?;
            }
        }
        if n > 0 {
            self.asdn_sgd.step(
                &mut self.asdn_params,
                &mut self.asdn_master,
                &mut self.asdn_momentum,
                &mut self.asdn_grads,
            )?;
            if self.astn.is_some() {
                self.astn_sgd.step(
                    &mut self.astn_params,
                    &mut self.astn_master,
                    &mut self.astn_momentum,
                    &mut self.astn_grads,
                )?;
            }
        }
        Ok(total)
    }
}

/// ASDN's agreement with the search targets on the positives of `set`: `asdn_params` against
/// the detector `params`.
pub fn asdn_agreement<T: Scalar>(
    det: &Detector<T>,
    params: &[T],
    asdn_params: &[T],
    set: &SceneSet<T>,
) -> anyhow::Result<f64> {
    Adversaries::<T>::new(Method::AfastAsdn, 0, ADVERSARY_LR, ADVERSARY_LR)?.agreement(
        det,
        params,
        asdn_params,
        set,
    )
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
