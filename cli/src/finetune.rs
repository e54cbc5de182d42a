//! `hardmine finetune`: on-line fine-tuning of a small one-stage detector (RetinaNet's
//! design: anchors, IoU assignment, a convolutional head with a classification and a box
//! branch) on scenes of real handwritten digits, one scene per SGD step, once per loss or
//! miner, on the f32 or the Q15.16 path.
//!
//! The network is pretrained on a source domain (`hardmine pretrain`, weights committed in
//! `data/pretrained.bin`); fine-tuning trains the head only, on a shifted target domain,
//! from the same weights for every method. See the README's "The main job".

pub mod config;
pub mod data;
pub mod device;
pub mod method;
pub mod prepare;
pub mod pretrain;
pub mod scene;
pub mod train;
pub mod tune;
pub mod weights;

use crate::coco::Summary;
use crate::op::unsupported;
use anyhow::bail;
use config::Detector;
use data::Digits;
use hardmine::Q16;
use hardmine_detect::Scalar;
use method::{BoxLoss, Method};
use prepare::SceneSet;
use scene::Domain;
use serde::Serialize;
use std::time::Instant;
use train::Run;

/// The numeric path of a run: f32, or Q15.16 end to end (features, head, loss, gradients;
/// the weights' master copy in Q31.32); the others answer [`crate::op::Unsupported`].
pub use crate::op::Path;

/// Seeds of the fixed scene sets (the same for every run and seed).
const TEST_SEED: u64 = 0x7e57;
const VAL_SEED: u64 = 0x7a1;
const SOURCE_SEED: u64 = 0x5ce;

/// Which scenes a run is evaluated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Split {
    /// The test scenes (test digits).
    Test,
    /// The validation scenes (validation digits; what `tune` and CI use).
    Val,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Numeric path.
    pub path: Path,
    /// SGD steps (one scene each) per run.
    pub steps: usize,
    /// The first seed of the training scenes' stream and the samplers.
    pub seed: u64,
    /// Seeds to run, from `seed` on.
    pub seeds: usize,
    /// Evaluation scenes (target domain; as many source scenes for forgetting).
    pub eval_scenes: usize,
    /// The scenes evaluated on.
    pub split: Split,
    /// A learning rate for every run instead of the tuned ones.
    pub lr: Option<f64>,
    /// ASDN's joint-training learning rate instead of the tuned one (`afast_asdn`, `afast`).
    pub asdn_lr: Option<f64>,
    /// ASTN's learning rate instead of the tuned one (`afast`).
    pub astn_lr: Option<f64>,
    /// Methods to run.
    pub methods: Vec<Method>,
    /// Whether to add the box-loss ablation (focal with L1, ASL1 and GHM-R).
    pub ablation: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            path: Path::F32,
            steps: 2000,
            seed: 7,
            seeds: 1,
            eval_scenes: 200,
            split: Split::Test,
            lr: None,
            asdn_lr: None,
            astn_lr: None,
            methods: method::ALL.to_vec(),
            ablation: true,
        }
    }
}

impl Options {
    /// Whether the options can run: `Err` says why not.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.steps == 0 || self.eval_scenes == 0 || self.seeds == 0 {
            bail!("--steps, --eval-scenes and --seeds must be at least 1");
        }
        for (name, lr) in [
            ("lr", self.lr),
            ("asdn-lr", self.asdn_lr),
            ("astn-lr", self.astn_lr),
        ] {
            if let Some(lr) = lr {
                if !(lr.is_finite() && lr > 0.0) {
                    bail!("--{name} must be a positive number");
                }
            }
        }
        Ok(())
    }

    /// The runs, in report order: each method with its box loss, then the ablation (focal with
    /// each box loss, whether or not `methods` holds focal).
    pub fn runs(&self) -> Vec<(Method, BoxLoss)> {
        let mut runs: Vec<_> = self
            .methods
            .iter()
            .map(|&m| (m, m.default_box_loss()))
            .collect();
        if self.ablation {
            for b in method::BOX_LOSSES {
                if !runs.contains(&(Method::Focal, b)) {
                    runs.push((Method::Focal, b));
                }
            }
        }
        runs
    }
}

/// One run's results; serialised, the line `finetune --json` writes (the figures' series
/// left out).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The run's name: the method, and `+box loss` when not its default.
    #[serde(skip)]
    pub run: String,
    /// Classification method.
    pub method: &'static str,
    /// Box loss.
    pub box_loss: &'static str,
    /// Path name.
    pub path: &'static str,
    /// The seed of the training stream.
    pub seed: u64,
    /// Steps trained.
    pub steps: usize,
    /// Learning rate.
    pub lr: f64,
    /// COCO AP (IoU 0.50:0.95) on the evaluation scenes after fine-tuning.
    pub ap: f64,
    /// AP at IoU 0.5.
    pub ap50: f64,
    /// AP at IoU 0.75.
    pub ap75: f64,
    /// AP at IoU 0.75 with the predicted deltas zeroed (the anchors alone).
    pub ap75_anchors_only: f64,
    /// Recall at one false positive per scene, IoU 0.5.
    pub recall_at_1fp: f64,
    /// AP of the pretrained detector on the same scenes, before fine-tuning.
    pub ap_before: f64,
    /// Its AP50.
    pub ap50_before: f64,
    /// Source-domain AP50 of the pretrained detector.
    pub ap_source_before: f64,
    /// Source-domain AP50 after fine-tuning (forgetting: the drop from `ap_source_before`).
    pub ap_source_after: f64,
    /// Positive anchors / all anchors over the evaluation scenes.
    pub positive_rate: f64,
    /// The training loss (cls + box), averaged over the last tenth of the steps.
    pub train_loss: f64,
    /// Share of the parameter updates (non-zero gradient) that changed the weights' master
    /// copy by nothing.
    pub zero_update_share: f64,
    /// Share whose step `lr * momentum buffer` rounds to zero in the weight's own type: what
    /// an update without the master copy would lose (Q15.16; on f32 the master is the weight,
    /// and a step lost against the weight counts in `zero_update_share`).
    pub zero_update_share_without_master: f64,
    /// Wall time of training and evaluation, seconds.
    pub wall_s: f64,
    /// Training milliseconds per step.
    pub ms_per_step: f64,
    /// Bytes of loss/miner state (with the learned adversaries' weights, SGD state and
    /// buffers for `afast_asdn` and `afast`).
    pub state_bytes: usize,
    /// ASDN's joint-training learning rate (`afast_asdn`, `afast`; else `null`).
    pub asdn_lr: Option<f64>,
    /// ASTN's learning rate (`afast`).
    pub astn_lr: Option<f64>,
    /// Seconds of ASDN's pretraining (not in `ms_per_step`).
    pub adversary_pretrain_s: Option<f64>,
    /// Share of the evaluation scenes' positives whose highest ASDN score is the occlusion
    /// search's target cell: ASDN at initialisation with the pretrained detector (chance is
    /// about 1/9)...
    pub asdn_agreement_init: Option<f64>,
    /// ... after pretraining, before joint training (pretrained detector) ...
    pub asdn_agreement_before: Option<f64>,
    /// ... and after joint training (the fine-tuned detector's targets).
    pub asdn_agreement_after: Option<f64>,
    /// Share of ASDN's sampled masks that raised their positive's classification loss.
    pub mask_raised_share: Option<f64>,
    /// Share of ASTN's angles within 1% of the +-10 degree bound over the last tenth of the
    /// steps (`afast`); a run with more than 90% there fails.
    pub angle_bound_share: Option<f64>,
    /// ASTN's mean |angle| in degrees over the last tenth of the steps (`afast`).
    pub mean_abs_angle_deg: Option<f64>,
    /// `null`, or `"ohem diverged at step 412 (lr 0.3): ..."` (the metrics are then `null`).
    pub diverged: Option<String>,
    /// `(step, loss)` at 50 points.
    #[serde(skip)]
    pub curve: Vec<(usize, f64)>,
    /// The run's detections on the evaluation scenes (for `--coco-out` and the figures).
    #[serde(skip)]
    pub detections: Vec<crate::coco::Detection>,
}

/// What every run of one path shares: the detector, the pretrained weights and the fixed
/// scene sets with their backbone features.
pub struct Shared<T> {
    /// The detector.
    pub det: Detector<T>,
    /// The pretrained weights on this path.
    pub pretrained: Vec<T>,
    /// The evaluation scenes (target domain).
    pub eval: SceneSet<T>,
    /// Source-domain test scenes (forgetting).
    pub source: SceneSet<T>,
    /// Metrics of the pretrained detector on `eval` and on `source`.
    pub before: (Summary, Summary),
}

impl<T: Scalar> Shared<T> {
    /// Builds the sets of `opts` on path `T`.
    pub fn new(opts: &Options, digits: &data::Splits) -> anyhow::Result<Self> {
        let det = Detector::<T>::new()?;
        let pretrained = weights::pretrained::<T>(&det.spec)?;
        let (target, source) = evaluation_sets(opts, digits);
        let eval = prepare::scene_set(&det, &pretrained, &target)?;
        let source = prepare::scene_set(&det, &pretrained, &source)?;
        let before = (
            train::evaluate(&det, &pretrained, &eval, Method::Bce, false)?,
            train::evaluate(&det, &pretrained, &source, Method::Bce, false)?,
        );
        Ok(Self {
            det,
            pretrained,
            eval,
            source,
            before,
        })
    }

    /// Training scenes of seed `seed` (target domain, train digits), one per step.
    pub fn train_set(
        &self,
        digits: &Digits,
        steps: usize,
        seed: u64,
    ) -> anyhow::Result<SceneSet<T>> {
        prepare::scene_set(
            &self.det,
            &self.pretrained,
            &prepare::scenes(digits, Domain::Target, steps, seed),
        )
    }
}

/// Runs one (method, box loss) on one seed and evaluates it.
pub fn one_run<T: Scalar>(
    shared: &Shared<T>,
    train_set: &SceneSet<T>,
    run: Run,
    path: Path,
    steps: usize,
    progress: &mut dyn FnMut(usize),
) -> anyhow::Result<Report> {
    let start = Instant::now();
    let (before, source_before) = &shared.before;
    let mut report = Report {
        run: train::run_name(run.method, run.box_loss),
        method: run.method.name(),
        box_loss: run.box_loss.name(),
        path: path.name(),
        seed: run.seed,
        steps,
        lr: run.lr,
        ap: f64::NAN,
        ap50: f64::NAN,
        ap75: f64::NAN,
        ap75_anchors_only: f64::NAN,
        recall_at_1fp: f64::NAN,
        ap_before: before.ap,
        ap50_before: before.ap50,
        ap_source_before: source_before.ap50,
        ap_source_after: f64::NAN,
        positive_rate: shared.eval.positive_rate,
        train_loss: f64::NAN,
        zero_update_share: f64::NAN,
        zero_update_share_without_master: f64::NAN,
        wall_s: 0.0,
        ms_per_step: f64::NAN,
        state_bytes: method::Trainer::<T>::new(run.method, run.box_loss, run.seed)?.state_bytes()
            + if run.method.learned_adversaries() {
                train::Adversaries::<T>::new(run.method, run.seed, run.asdn_lr, run.astn_lr)?
                    .state_bytes()
            } else {
                0
            },
        asdn_lr: run.method.learned_adversaries().then_some(run.asdn_lr),
        astn_lr: (run.method == Method::Afast).then_some(run.astn_lr),
        adversary_pretrain_s: None,
        asdn_agreement_init: None,
        asdn_agreement_before: None,
        asdn_agreement_after: None,
        mask_raised_share: None,
        angle_bound_share: None,
        mean_abs_angle_deg: None,
        diverged: None,
        curve: Vec::new(),
        detections: Vec::new(),
    };
    let det = &shared.det;
    let trained = match train::train(det, &shared.pretrained, train_set, run, steps, progress) {
        Ok(t) => t,
        Err(e) => match e.downcast::<train::Diverged>() {
            Ok(d) => {
                report.diverged = Some(d.to_string());
                report.wall_s = start.elapsed().as_secs_f64();
                return Ok(report);
            }
            Err(e) => return Err(e),
        },
    };
    let pretrain_s = trained.adversaries.as_ref().map_or(0.0, |a| a.pretrain_s);
    report.ms_per_step = (start.elapsed().as_secs_f64() - pretrain_s) * 1e3 / steps as f64;
    if let Some(a) = &trained.adversaries {
        let agree =
            |params: &[T], asdn: &[T]| train::asdn_agreement(det, params, asdn, &shared.eval);
        report.adversary_pretrain_s = Some(a.pretrain_s);
        report.asdn_agreement_init = Some(agree(&shared.pretrained, &a.asdn[0])?);
        report.asdn_agreement_before = Some(agree(&shared.pretrained, &a.asdn[1])?);
        report.asdn_agreement_after = Some(agree(&trained.params, &a.asdn[2])?);
        report.mask_raised_share = Some(a.raised_share);
        report.angle_bound_share = a.angle_bound_share;
        report.mean_abs_angle_deg = a.mean_abs_angle_deg;
    }
    let dets = train::detect(det, &trained.params, &shared.eval, run.method, false)?;
    let truth = shared.eval.ground_truth();
    let n = shared.eval.scenes.len();
    let after = crate::coco::evaluate(n, scene::CLASSES, &truth, &dets)?;
    let anchors = train::evaluate(det, &trained.params, &shared.eval, run.method, true)?;
    let source = train::evaluate(det, &trained.params, &shared.source, run.method, false)?;
    let share = |k: u64| {
        if trained.updates > 0 {
            k as f64 / trained.updates as f64
        } else {
            0.0
        }
    };
    report.ap = after.ap;
    report.ap50 = after.ap50;
    report.ap75 = after.ap75;
    report.recall_at_1fp = after.recall_at_1fp;
    report.ap75_anchors_only = anchors.ap75;
    report.ap_source_after = source.ap50;
    report.train_loss = trained.train_loss;
    report.zero_update_share = share(trained.zero_master);
    report.zero_update_share_without_master = share(trained.zero_weight);
    report.curve = trained.curve;
    report.detections = dets;
    report.wall_s = start.elapsed().as_secs_f64();
    Ok(report)
}

/// The learning rate of a run: `--lr`, else the tuned one.
pub fn learning_rate(opts: &Options, method: Method, box_loss: BoxLoss) -> anyhow::Result<f64> {
    match opts.lr {
        Some(lr) => Ok(lr),
        None => tune::tuned(opts.path, method, box_loss),
    }
}

/// The adversaries' learning rates of a run, `(ASDN, ASTN)`: `--asdn-lr` and `--astn-lr`,
/// else the tuned ones (methods without learned adversaries get the untuned default, unused).
pub fn adversary_rates(opts: &Options, method: Method) -> anyhow::Result<(f64, f64)> {
    let default = train::ADVERSARY_LR;
    if !method.learned_adversaries() {
        return Ok((default, default));
    }
    let wants_astn = method == Method::Afast;
    if let (Some(asdn), Some(astn)) = (
        opts.asdn_lr,
        opts.astn_lr.or((!wants_astn).then_some(default)),
    ) {
        return Ok((asdn, astn));
    }
    let (asdn, astn) = tune::tuned_adversaries(opts.path, method)?;
    let astn = match (opts.astn_lr.or(astn), wants_astn) {
        (Some(lr), _) => lr,
        (None, false) => default,
        (None, true) => bail!(
            "no tuned ASTN learning rate for afast on {} in data/lr.json: run `hardmine tune` or \
             pass --astn-lr",
            opts.path
        ),
    };
    Ok((opts.asdn_lr.unwrap_or(asdn), astn))
}

/// Runs every requested run and seed, two at a time (the machines this targets have two
/// cores); `progress(run, step, steps)` is called as training goes.
pub fn run(
    opts: &Options,
    progress: &mut (dyn FnMut(&str, usize, usize) + Send),
) -> anyhow::Result<Vec<Report>> {
    opts.validate()?;
    match opts.path {
        Path::F32 => run_on::<f32>(opts, progress),
        Path::Fixed => run_on::<Q16>(opts, progress),
        Path::F64 | Path::Gpu => Err(unsupported(format!(
            "finetune runs on f32 or fixed, not `{}`",
            opts.path
        ))),
    }
}

fn run_on<T: Scalar + Send + Sync>(
    opts: &Options,
    progress: &mut (dyn FnMut(&str, usize, usize) + Send),
) -> anyhow::Result<Vec<Report>> {
    let digits = Digits::load()?.split();
    let shared = Shared::<T>::new(opts, &digits)?;
    let runs = opts.runs();
    let mut jobs = Vec::new();
    for s in 0..opts.seeds {
        for &(m, b) in &runs {
            let (asdn_lr, astn_lr) = adversary_rates(opts, m)?;
            jobs.push(Run {
                method: m,
                box_loss: b,
                lr: learning_rate(opts, m, b)?,
                seed: opts.seed + s as u64,
                asdn_lr,
                astn_lr,
            });
        }
    }
    let mut sets = Vec::new();
    for s in 0..opts.seeds {
        sets.push(shared.train_set(&digits.train, opts.steps, opts.seed + s as u64)?);
    }
    let name = |j: &Run| train::run_name(j.method, j.box_loss);
    parallel(&jobs, opts.steps, progress, name, |job, report| {
        let set = &sets[(job.seed - opts.seed) as usize];
        one_run(&shared, set, *job, opts.path, opts.steps, report)
    })
}

/// Runs `work` over `jobs` on two threads, results in job order; `progress(job, step,
/// steps)` is called from one thread at a time.
pub fn parallel<J: Sync, R: Send>(
    jobs: &[J],
    steps: usize,
    progress: &mut (dyn FnMut(&str, usize, usize) + Send),
    name: impl Fn(&J) -> String + Sync,
    work: impl Fn(&J, &mut dyn FnMut(usize)) -> anyhow::Result<R> + Sync,
) -> anyhow::Result<Vec<R>> {
    let progress = std::sync::Mutex::new(progress);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<anyhow::Result<R>>> = (0..jobs.len()).map(|_| None).collect();
    let slots = std::sync::Mutex::new(&mut results);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let name = name(job);
                let mut report = |step: usize| {
                    if let Ok(mut p) = progress.lock() {
                        (*p)(&name, step, steps);
                    }
                };
                let r = work(job, &mut report);
                if let Ok(mut s) = slots.lock() {
                    s[i] = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| bail!("a training thread failed")))
        .collect()
}

/// Writes the evaluation scenes' ground truth (`ground_truth.json`), and for each run its
/// detections (`<method>_<box loss>_<path>_seed<seed>.json`) and the project's figures for them
/// (`....summary.json`, what `tools/coco_check.py` compares pycocotools with) to `dir`.
pub fn coco_out(dir: &std::path::Path, opts: &Options, reports: &[Report]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let mut truth = Vec::new();
    for (image, s) in evaluation_scenes(opts)?.iter().enumerate() {
        for (&bbox, &c) in s.boxes.iter().zip(&s.classes) {
            truth.push(crate::coco::GroundTruth {
                image,
                class: usize::from(c),
                bbox,
            });
        }
    }
    let names: Vec<String> = (0..scene::CLASSES).map(|c| c.to_string()).collect();
    let side = scene::CANVAS;
    crate::coco::write_ground_truth(
        &dir.join("ground_truth.json"),
        opts.eval_scenes,
        side,
        side,
        &truth,
        &names,
    )?;
    for r in reports.iter().filter(|r| r.diverged.is_none()) {
        let name = format!("{}_{}_{}_seed{}", r.method, r.box_loss, r.path, r.seed);
        crate::coco::write_detections(&dir.join(format!("{name}.json")), &r.detections)?;
        let s = crate::coco::evaluate(opts.eval_scenes, scene::CLASSES, &truth, &r.detections)?;
        let path = dir.join(format!("{name}.summary.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&s)? + "\n")
            .with_context(|| path.display().to_string())?;
    }
    Ok(())
}

/// The evaluation scenes of `opts`: the target-domain ones the runs are scored on and the
/// source-domain ones forgetting is measured on, from the split's digits.
fn evaluation_sets(
    opts: &Options,
    digits: &data::Splits,
) -> (Vec<scene::Scene>, Vec<scene::Scene>) {
    let (set_digits, seed) = match opts.split {
        Split::Test => (&digits.test, TEST_SEED),
        Split::Val => (&digits.val, VAL_SEED),
    };
    let n = opts.eval_scenes;
    (
        prepare::scenes(set_digits, Domain::Target, n, seed),
        prepare::scenes(set_digits, Domain::Source, n, SOURCE_SEED ^ seed),
    )
}

/// The target-domain evaluation scenes of `opts`, the very ones [`Shared::new`] scores on.
pub fn evaluation_scenes(opts: &Options) -> anyhow::Result<Vec<scene::Scene>> {
    Ok(evaluation_sets(opts, &Digits::load()?.split()).0)
}
