//! `hardmine pretrain`: the whole network trained on the source domain (clean backgrounds,
//! digits 8 and 12 pixels tall) with RetinaNet's losses (focal, alpha 0.25, gamma 2; smooth
//! L1, beta 1/9; both over the moving-average positive count), one scene per SGD step, on
//! f32, one thread, so the weights file is the same bit for bit from every portable build: one
//! without fused multiply-adds ([`hardmine::FUSED_MULTIPLY_ADD`] false, the plain
//! `cargo build --release` on x86-64), as the committed file was made. A build that fuses
//! (AArch64, or `-C target-cpu=native` on a CPU with FMA) rounds some products once fewer
//! and makes slightly different weights; `hardmine pretrain` says so when it runs on one.

use super::config::Detector;
use super::data::Digits;
use super::method::{BoxLoss, Method, Trainer};
use super::prepare::{self, SceneSet};
use super::scene::{Domain, Scene, CANVAS_PIXELS};
use super::train::{self, MOMENTUM, NORMALIZER, WEIGHT_DECAY};
use hardmine::{MovingAverageNormalizer, SplitMix64};
use hardmine_detect::{init_master, Sgd};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// SGD steps, one source scene each.
    pub steps: usize,
    /// Peak learning rate (after a linear warm-up over the first 5% of the steps; divided by
    /// 10 for the last 20%).
    pub lr: f64,
    /// Seed of the initial weights and the scenes.
    pub seed: u64,
    /// Source validation scenes the result is checked on.
    pub val_scenes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            steps: 40_000,
            lr: 0.02,
            seed: 1,
            val_scenes: 200,
        }
    }
}

/// The result: the weights and their source-domain validation metrics.
#[derive(Debug, Clone)]
pub struct Pretrained {
    /// The whole network's parameters.
    pub params: Vec<f32>,
    /// Source validation AP (0.50:0.95).
    pub ap: f64,
    /// Source validation AP50.
    pub ap50: f64,
    /// Training loss over the last tenth of the steps.
    pub train_loss: f64,
}

/// The learning rate at `step`.
fn schedule(opts: &Options, step: usize) -> f64 {
    let warm = (opts.steps / 20).max(1);
    if step < warm {
        opts.lr * (step + 1) as f64 / warm as f64
    } else if step * 5 >= opts.steps * 4 {
        opts.lr / 10.0
    } else {
        opts.lr
    }
}

/// Pretrains from scratch; `progress(step, steps)` as it goes.
pub fn run(opts: &Options, progress: &mut dyn FnMut(usize, usize)) -> anyhow::Result<Pretrained> {
    anyhow::ensure!(
        opts.steps > 0 && opts.val_scenes > 0,
        "--steps and --val-scenes must be at least 1"
    );
    anyhow::ensure!(
        opts.lr.is_finite() && opts.lr > 0.0,
        "--lr must be a positive number"
    );
    let digits = Digits::load()?.split();
    let det = Detector::<f32>::new()?;
    let spec = &det.spec;
    let mut params = vec![0.0f32; spec.params_len()];
    spec.init(
        &mut SplitMix64::new(opts.seed),
        // The core's portable ln (libm's), not the platform's.
        hardmine::kernels::ln(0.01f32 / 0.99),
        &mut params,
    )?;
    let mut master = vec![0.0f32; params.len()];
    let mut momentum = vec![0.0f32; params.len()];
    init_master(&params, &mut master)?;
    let mut grads = vec![0.0f32; params.len()];
    let mut g_features = vec![0.0f32; spec.features_len()];
    let mut input = vec![0.0f32; CANVAS_PIXELS];
    let mut acts = vec![0.0f32; spec.activations_len()];
    let mut scratch = vec![0.0f32; spec.scratch_len()];
    let mut features = vec![0.0f32; spec.features_len()];
    let (mut cls, mut deltas) = (vec![0.0f32; spec.cls_len()], vec![0.0f32; spec.box_len()]);
    let (mut g_cls, mut g_box) = (vec![0.0f32; spec.cls_len()], vec![0.0f32; spec.box_len()]);
    let mut trainer = Trainer::<f32>::new(Method::Focal, BoxLoss::SmoothL1, opts.seed)?;
    let mut normalizer = MovingAverageNormalizer::new(NORMALIZER.0 as f32, NORMALIZER.1 as f32)?;
    let mut rng = SplitMix64::new(opts.seed ^ 0x9e37);
    let (backbone, head) = (spec.backbone_params(), spec.head_params());
    let (mut tail, mut tail_n) = (0.0, 0usize);
    for step in 0..opts.steps {
        let scene = Scene::generate(&digits.train, Domain::Source, &mut rng);
        prepare::image(&scene, &mut input);
        let targets = prepare::targets(&det, &scene)?;
        spec.backbone_forward(&params, &input, &mut acts, &mut features)?;
        spec.head_forward(&params, &features, &mut cls, &mut deltas)?;
        let avg = normalizer.update(targets.positives.len());
        let loss = trainer.loss_and_grad(
            &cls,
            &deltas,
            &[],
            &targets,
            avg,
            0.0,
            &mut g_cls,
            &mut g_box,
        )?;
        let value = f64::from(loss.cls + loss.boxes);
        anyhow::ensure!(
            value.is_finite(),
            "pretraining diverged at step {step} (lr {})",
            opts.lr
        );
        grads.fill(0.0);
        spec.head_backward(
            &params,
            &features,
            &g_cls,
            &g_box,
            &mut grads[head.clone()],
            Some(&mut g_features),
        )?;
        spec.backbone_backward(
            &params,
            &input,
            &mut acts,
            &features,
            &mut g_features,
            &mut grads[backbone.clone()],
            &mut scratch,
        )?;
        let sgd = Sgd::new(schedule(opts, step), MOMENTUM, WEIGHT_DECAY)?;
        sgd.step(&mut params, &mut master, &mut momentum, &mut grads)?;
        if step * 10 >= opts.steps * 9 {
            tail += value;
            tail_n += 1;
        }
        if step % (opts.steps / 100).max(1) == 0 {
            progress(step, opts.steps);
        }
    }
    let scenes = prepare::scenes(
        &digits.val,
        Domain::Source,
        opts.val_scenes,
        opts.seed ^ 0x7a1,
    );
    let val: SceneSet<f32> = prepare::scene_set(&det, &params, &scenes)?;
    let summary = train::evaluate(&det, &params, &val, Method::Focal, false)?;
    Ok(Pretrained {
        params,
        ap: summary.ap,
        ap50: summary.ap50,
        train_loss: if tail_n > 0 {
            tail / tail_n as f64
        } else {
            0.0
        },
    })
}
