//! `hardmine finetune`: on-line fine-tuning of a small detector head on dense, imbalanced
//! scenes of real handwritten digits, one run per loss or miner, on the f32 or the Q15.16 path.

pub mod data;
pub mod eval;
pub mod method;
pub mod model;
pub mod scene;

use crate::op::unsupported;
use anyhow::bail;
use data::{Digits, PIXELS};
use hardmine::{Census, GhmC, Group, Real, SplitMix64, Q16};
use method::{Loss, Method};
use model::{Head, HIDDEN};
use scene::{Scene, CELLS, CLASSES};
use serde::Serialize;
use std::time::Instant;

/// The numeric path of a run: f32, or Q15.16 end to end (weights, activations, loss,
/// gradients and updates); the others answer [`crate::op::Unsupported`].
pub use crate::op::Path;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Numeric path.
    pub path: Path,
    /// SGD steps (one scene each) per method.
    pub steps: usize,
    /// Seed of the weights, the scenes and every sampler.
    pub seed: u64,
    /// Test scenes.
    pub test_scenes: usize,
    /// Learning rate.
    pub lr: f64,
    /// Methods to run.
    pub methods: Vec<Method>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            path: Path::F32,
            steps: 1000,
            seed: 7,
            test_scenes: 100,
            lr: 0.05,
            methods: method::ALL.to_vec(),
        }
    }
}

/// One method's results; serialised, the line `finetune --json` writes (the figures' series
/// left out).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Method name.
    pub method: &'static str,
    /// Path name.
    pub path: &'static str,
    /// Steps trained.
    pub steps: usize,
    /// The seed of the run.
    pub seed: u64,
    /// Test mAP (mean over digit classes of the area under the precision-recall curve).
    pub map: f64,
    /// Positive cells / all cells in the test scenes (the chance level of a class's AP is
    /// about a tenth of this).
    pub positive_rate: f64,
    /// Recall at one false positive per test scene.
    pub recall_at_1fp: f64,
    /// Training loss, averaged over the last tenth of the steps.
    pub train_loss: f64,
    /// Share of the method's own loss carried by easy negatives on test scenes.
    pub easy_negative_share: f64,
    /// Loss shares of the four census groups (easy/hard negative, easy/hard positive).
    #[serde(skip)]
    pub census: [f64; 4],
    /// Wall time of training and evaluation, seconds.
    pub wall_s: f64,
    /// Bytes of loss/miner state.
    pub state_bytes: usize,
    /// `(step, training loss)` at 50 points.
    #[serde(skip)]
    pub curve: Vec<(usize, f64)>,
    /// Counts of test elements' gradient norms `|sigmoid(x) - t|` in 30 bins.
    #[serde(skip)]
    pub grad_norms: Vec<u64>,
}

impl Options {
    /// Whether the options can run: `Err` says why not.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.steps == 0 || self.test_scenes == 0 {
            bail!("--steps and --test-scenes must be at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            bail!("--lr must be a positive number");
        }
        Ok(())
    }
}

/// Runs every requested method, two at a time (the machines this targets have two cores);
/// `progress(method, step, steps)` is called as training goes, from one thread at a time.
pub fn run(
    opts: &Options,
    progress: &mut (dyn FnMut(&str, usize, usize) + Send),
) -> anyhow::Result<Vec<Report>> {
    opts.validate()?;
    let train_one: Trainer = match opts.path {
        Path::F32 => train_one::<f32>,
        Path::Fixed => train_one::<Q16>,
        Path::F64 | Path::Gpu => {
            return Err(unsupported(format!(
                "finetune runs on f32 or fixed, not `{}`",
                opts.path
            )))
        }
    };
    let (train, test) = Digits::load()?.split();
    let progress = std::sync::Mutex::new(progress);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<anyhow::Result<Report>>> =
        (0..opts.methods.len()).map(|_| None).collect();
    let slots = std::sync::Mutex::new(&mut results);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&m) = opts.methods.get(i) else { break };
                let mut report = |name: &str, step: usize, steps: usize| {
                    if let Ok(mut p) = progress.lock() {
                        (*p)(name, step, steps);
                    }
                };
                let r = train_one(m, opts, &train, &test, &mut report);
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

/// One method's training and evaluation on one path.
type Trainer = fn(
    Method,
    &Options,
    &Digits,
    &Digits,
    &mut dyn FnMut(&str, usize, usize),
) -> anyhow::Result<Report>;

/// A scene's pixels as `T` (exact: `p / 16`, integer arithmetic only), and its blank cells.
fn inputs<T: Real>(scene: &Scene, x: &mut [T], blank: &mut [bool]) {
    for (v, &p) in x.iter_mut().zip(&scene.pixels) {
        *v = T::from_count(u64::from(p)).div_count(16);
    }
    for (k, b) in blank.iter_mut().enumerate() {
        *b = scene.blank(k);
    }
}

fn train_one<T: Real>(
    method: Method,
    opts: &Options,
    train: &Digits,
    test: &Digits,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> anyhow::Result<Report> {
    let start = Instant::now();
    let mut head = Head::<T>::init(opts.seed);
    let mut grads = Head::<T>::zeros();
    let mut loss = Loss::<T>::new(method, opts.seed)?;
    let mut rng = SplitMix64::new(opts.seed);
    let lr = T::from_f64(opts.lr);
    let mut x = vec![T::ZERO; CELLS * PIXELS];
    let mut blank = vec![false; CELLS];
    let mut hidden = [T::ZERO; CELLS * HIDDEN];
    let mut logits = vec![T::ZERO; CELLS * CLASSES];
    let mut g = vec![T::ZERO; CELLS * CLASSES];
    let mut curve = Vec::new();
    let (mut tail_sum, mut tail_n) = (0.0, 0usize);
    for step in 0..opts.steps {
        let scene = Scene::generate(train, &mut rng);
        inputs(&scene, &mut x, &mut blank);
        for k in 0..CELLS {
            let (xs, hs, ls) = (&x[k * PIXELS..(k + 1) * PIXELS], k * HIDDEN, k * CLASSES);
            head.forward(
                xs,
                blank[k],
                &mut hidden[hs..hs + HIDDEN],
                &mut logits[ls..ls + CLASSES],
            );
        }
        let progress_t = T::from_count((step * 1000 / opts.steps.max(1)) as u64).div_count(1000);
        let mut value = loss.value_and_grad(&logits, &scene.labels, progress_t, &mut g)?;
        if method == Method::Afast {
            value = value + afast_positives(&loss, &head, &scene, &x, &mut grads)?;
        }
        for k in 0..CELLS {
            let gk = &g[k * CLASSES..(k + 1) * CLASSES];
            if gk.iter().any(|&v| v != T::ZERO) {
                let hs = &hidden[k * HIDDEN..(k + 1) * HIDDEN];
                head.backward(
                    &x[k * PIXELS..(k + 1) * PIXELS],
                    blank[k],
                    hs,
                    gk,
                    &mut grads,
                );
            }
        }
        head.step(&mut grads, lr);
        let v = value.to_f64();
        if step * 10 >= opts.steps * 9 {
            tail_sum += v;
            tail_n += 1;
        }
        if step % (opts.steps / 50).max(1) == 0 {
            curve.push((step, v));
            progress(method.name(), step, opts.steps);
        }
    }
    let mut report = evaluate(method, opts, &head, &mut loss, test)?;
    report.train_loss = if tail_n > 0 {
        tail_sum / tail_n as f64
    } else {
        0.0
    };
    report.curve = curve;
    report.state_bytes = loss.state_bytes();
    report.wall_s = start.elapsed().as_secs_f64();
    Ok(report)
}

/// A-Fast-RCNN's extra step: each positive is occluded where it hurts most and trained on as
/// an additional positive. Returns the added BCE loss; gradients go straight into `grads`.
fn afast_positives<T: Real>(
    loss: &Loss<T>,
    head: &Head<T>,
    scene: &Scene,
    x: &[T],
    grads: &mut Head<T>,
) -> anyhow::Result<T> {
    let bce = hardmine::BceWithLogits::new().with_reduction(hardmine::Reduction::Sum);
    let mut total = T::ZERO;
    for (k, &label) in scene.labels.iter().enumerate().filter(|(_, &l)| l >= 0) {
        let occluded = loss.hard_positive(head, &x[k * PIXELS..(k + 1) * PIXELS], label)?;
        let (mut h, mut l, mut g) = ([T::ZERO; HIDDEN], [T::ZERO; CLASSES], [T::ZERO; CLASSES]);
        head.forward(&occluded, false, &mut h, &mut l);
        let t: Vec<T> = (0..CLASSES)
            .map(|c| if c as i32 == label { T::ONE } else { T::ZERO })
            .collect();
        total = total + bce.value_and_grad(&l, &t, None, &mut g)?;
        head.backward(&occluded, false, &h, &g, grads);
    }
    Ok(total)
}

/// Test metrics of a trained head.
fn evaluate<T: Real>(
    method: Method,
    opts: &Options,
    head: &Head<T>,
    loss: &mut Loss<T>,
    test: &Digits,
) -> anyhow::Result<Report> {
    let mut rng = SplitMix64::new(opts.seed ^ 0x7e57_5ce2e);
    let mut x = vec![T::ZERO; CELLS * PIXELS];
    let mut blank = vec![false; CELLS];
    let mut hidden = [T::ZERO; HIDDEN];
    let mut logits = vec![T::ZERO; CELLS * CLASSES];
    let mut per_class: Vec<Vec<(f64, bool)>> = vec![Vec::new(); CLASSES];
    let mut pooled = Vec::new();
    let mut census = [0.0f64; 4];
    let mut grad_norms = vec![0u64; 30];
    let mut positives = 0usize;
    let judge = Census::new(T::HALF)?;
    for s in 0..opts.test_scenes {
        let scene = Scene::generate(test, &mut rng);
        inputs(&scene, &mut x, &mut blank);
        for k in 0..CELLS {
            head.forward(
                &x[k * PIXELS..(k + 1) * PIXELS],
                blank[k],
                &mut hidden,
                &mut logits[k * CLASSES..(k + 1) * CLASSES],
            );
        }
        positives += scene.labels.iter().filter(|&&l| l >= 0).count();
        let targets: Vec<T> = scene
            .labels
            .iter()
            .flat_map(|&l| (0..CLASSES).map(move |c| if l == c as i32 { T::ONE } else { T::ZERO }))
            .collect();
        for (k, row) in logits.chunks_exact(CLASSES).enumerate() {
            let z: Vec<f64> = row.iter().map(|v| v.to_f64()).collect();
            let scores: Vec<f64> = if method == Method::DistributionCe {
                let m = z.iter().fold(0.0f64, |a, &b| a.max(b));
                let denom = (-m).exp() + z.iter().map(|v| (v - m).exp()).sum::<f64>();
                z.iter().map(|v| (v - m).exp() / denom).collect()
            } else {
                z.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect()
            };
            for (c, &sc) in scores.iter().enumerate() {
                let pos = scene.labels[k] == c as i32;
                per_class[c].push((sc, pos));
                pooled.push((sc, pos));
                let t = if pos { 1.0 } else { 0.0 };
                let norm = (1.0 / (1.0 + (-z[c]).exp()) - t).abs();
                grad_norms[((norm * 30.0) as usize).min(29)] += 1;
            }
        }
        if s < 10 && method == Method::DistributionCe {
            // Its own loss: per-row softmax CE over digits and background; p_t is the
            // probability of the row's true class (background for negatives).
            let rows = loss.distribution_rows(&logits, &scene.labels)?;
            for (&label, (row_loss, p_t)) in scene.labels.iter().zip(rows) {
                let group = usize::from(label >= 0) * 2 + usize::from(p_t < 0.5);
                census[group] += row_loss;
            }
        } else if s < 10 {
            let report = match method {
                Method::Focal => {
                    let f = hardmine::SigmoidFocal::new(T::from_f64(0.25), T::from_f64(2.0))?;
                    judge.focal(&f, &logits, &targets)
                }
                Method::GhmC => {
                    let mut ghm: GhmC<T, 30> = *loss.ghm();
                    let mut hist = ghm.histogram();
                    ghm.observe(&mut hist, &logits, &targets, None)?;
                    let w = ghm.finish(&hist)?;
                    judge.ghm_c(&ghm, &w, &logits, &targets)
                }
                _ => judge.bce(&logits, &targets),
            }?;
            for (slot, g) in census.iter_mut().zip(Group::ALL) {
                *slot += report.loss(g).to_f64();
            }
        }
    }
    let aps: Vec<f64> = per_class
        .into_iter()
        .filter_map(eval::average_precision)
        .collect();
    let map = if aps.is_empty() {
        0.0
    } else {
        aps.iter().sum::<f64>() / aps.len() as f64
    };
    let total: f64 = census.iter().sum();
    let shares = census.map(|v| if total > 0.0 { v / total } else { 0.0 });
    Ok(Report {
        method: method.name(),
        path: opts.path.name(),
        steps: opts.steps,
        seed: opts.seed,
        map,
        positive_rate: positives as f64 / (opts.test_scenes * CELLS) as f64,
        recall_at_1fp: eval::recall_at_false_positives(pooled, opts.test_scenes),
        train_loss: 0.0,
        easy_negative_share: shares[0],
        census: shares,
        wall_s: 0.0,
        state_bytes: 0,
        curve: Vec::new(),
        grad_norms,
    })
}
