//! Pretraining the device's detector on the host: the whole network on source scenes of
//! train digits (clean, 8 and 12 px), focal loss and smooth L1 over the moving-average
//! positive count, one scene per SGD step, f32, as the CLI's `hardmine pretrain` does for its
//! detector (linear warm-up over the first 5% of the steps, the rate divided by 10 for the
//! last 20%). Deterministic: the same weights, bit for bit, from every build without fused
//! multiply-adds (`hardmine::FUSED_MULTIPLY_ADD` false).

use crate::eval::{evaluate_on, Summary};
use crate::scene::{Digits, Domain, Split, CANVAS_PIXELS};
use crate::train::{head, loss_and_grad, next_scene, Buffers, Method, State};
use crate::{Detector, ACTIVATIONS, ANCHORS, CLASSES, FEATURES, PARAMS};
use hardmine::{Error, MovingAverageNormalizer, SplitMix64};
use hardmine_detect::{init_master, Sgd};

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// SGD steps.
    pub steps: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Seed of the initial weights and the scenes.
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            steps: 100_000,
            lr: 0.005,
            seed: 1,
        }
    }
}

/// Source-domain validation scenes (validation digits) the result is checked on.
pub const VAL_SCENES: usize = 20;
/// Their seed.
pub const VAL_SEED: u64 = 0x7a1;

fn schedule(o: &Options, step: usize) -> f64 {
    let warm = (o.steps / 20).max(1);
    if step < warm {
        o.lr * (step + 1) as f64 / warm as f64
    } else if step * 5 >= o.steps * 4 {
        o.lr / 10.0
    } else {
        o.lr
    }
}

/// Pretrains into `params` (`PARAMS`); returns the source validation AP.
/// `progress(step)` every 1% of the steps.
///
/// # Errors
/// `InvalidParameter("steps")`/`("lr")` for zero steps or a rate that is not positive;
/// `InvalidParameter("diverged")` for a non-finite loss; the library's.
pub fn run(
    o: &Options,
    digits: &Digits<'_>,
    params: &mut [f32; PARAMS],
    progress: &mut dyn FnMut(usize),
) -> Result<Summary, Error> {
    if o.steps == 0 {
        return Err(Error::InvalidParameter("steps"));
    }
    if !(o.lr.is_finite() && o.lr > 0.0) {
        return Err(Error::InvalidParameter("lr"));
    }
    let det = Detector::<f32>::new()?;
    let spec = &det.spec;
    spec.init(
        &mut SplitMix64::new(o.seed),
        hardmine::kernels::ln(0.01f32 / 0.99),
        params,
    )?;
    let mut master = [0.0f32; PARAMS];
    let mut momentum = [0.0f32; PARAMS];
    init_master(params, &mut master)?;
    let mut grads = [0.0f32; PARAMS];
    let mut g_features = [0.0f32; FEATURES];
    let mut image = [0.0f32; CANVAS_PIXELS];
    let mut acts = [0.0f32; ACTIVATIONS];
    let mut scratch = [0.0f32; 3 * ANCHORS * CLASSES];
    let scratch = scratch
        .get_mut(..spec.scratch_len())
        .ok_or(Error::InvalidParameter("scratch"))?;
    let mut b = Buffers::<f32>::new();
    let mut state = State::<f32>::new(Method::Focal)?;
    let mut normalizer = MovingAverageNormalizer::new(0.9f32, 3.0)?;
    let mut rng = SplitMix64::new(o.seed ^ 0x9e37);
    let (backbone, head_range) = (spec.backbone_params(), spec.head_params());
    for step in 0..o.steps {
        next_scene(&det, digits, Split::Train, Domain::Source, &mut rng, &mut b)?;
        for (v, a) in image.iter_mut().zip(b.arena.iter()) {
            *v = *a;
        }
        spec.backbone_forward(params.as_slice(), &image, &mut acts, &mut b.features)?;
        head(&det, params, &mut b)?;
        let avg = normalizer.update(b.n_pos);
        let loss = loss_and_grad(&det, &mut state, &mut b, avg)?;
        if !loss.is_finite() {
            return Err(Error::InvalidParameter("diverged"));
        }
        grads.fill(0.0);
        let (gb, gh) = grads.split_at_mut(backbone.end.min(PARAMS));
        let g_cls = b
            .arena
            .get(ANCHORS * CLASSES..2 * ANCHORS * CLASSES)
            .unwrap_or(&[]);
        spec.head_backward(
            params.as_slice(),
            &b.features,
            g_cls,
            &b.g_box,
            gh.get_mut(..head_range.len()).unwrap_or(&mut []),
            Some(&mut g_features),
        )?;
        spec.backbone_backward(
            params.as_slice(),
            &image,
            &mut acts,
            &b.features,
            &mut g_features,
            gb,
            scratch,
        )?;
        Sgd::new(schedule(o, step), 0.9, 1e-4)?.step(
            params,
            &mut master,
            &mut momentum,
            &mut grads,
        )?;
        if step % (o.steps / 100).max(1) == 0 {
            progress(step);
        }
    }
    evaluate_on(
        &det,
        params,
        digits,
        (Split::Val, Domain::Source, VAL_SEED, VAL_SCENES),
        &mut b,
        &mut |_| {},
    )
}
