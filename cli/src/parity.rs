//! The parity runner: executes golden cases on one numeric path (golden/README.md contract).
//!
//! One JSON line per case (per batch for stateful ops): `{"id", "batch", "loss", "grad"}`, or
//! `{"id", "error"}` when this path cannot run the case.

use crate::case::{
    self, Batch, Case, ErrorLine, Header, Line, LossGrad, LossValue, Name, Outcome, Pair, Weighted,
};
use crate::op::{unsupported, Op};
pub use crate::op::{Path, Unsupported};
use anyhow::bail;
use hardmine::{
    BceWithLogits, ChannelBlockRotation, Ghm, GhmC, GhmKind, GhmR, OcclusionSearch, Ohem, Real,
    Reduction, SOhem, SigmoidFocal, SigmoidFocalLabels, SmoothL1, SoftmaxCrossEntropy,
    SoftmaxFocal, Q16,
};
use serde_json::Value;

/// Capacity of the GHM histograms the runner builds (the largest `bins` it accepts).
pub const GHM_CAPACITY: usize = 256;

/// Capacity of the OHEM heap the runner builds (the largest `k` it accepts).
pub const OHEM_CAPACITY: usize = 4096;

/// Capacity of the S-OHEM heap the runner builds (the largest `k` it accepts).
pub const SOHEM_CAPACITY: usize = 4096;

/// Whether the runner has cases of `op` (the others answer [`Unsupported`]).
pub fn runs(op: Op) -> bool {
    match op {
        Op::BceWithLogits
        | Op::SigmoidFocal
        | Op::SigmoidFocalLabels
        | Op::SoftmaxCrossEntropy
        | Op::SoftmaxFocal
        | Op::SmoothL1
        | Op::GhmC
        | Op::GhmR
        | Op::Ohem
        | Op::Sohem
        | Op::OcclusionSearch
        | Op::RotateBlocks => true,
        Op::OhemNms | Op::BalancedSampler => false,
    }
}

/// A case line read: its id (for the answer) and the case, or why it cannot run.
#[derive(Debug)]
pub struct Parsed {
    /// The id the answer echoes.
    pub id: Value,
    /// The case.
    pub case: Result<Case, Invalid>,
}

/// Why a line is no case this runner can run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Invalid {
    /// An op this runner has no cases of.
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// Not a valid case: what is wrong.
    #[error("{0}")]
    Malformed(String),
}

impl From<serde_json::Error> for Invalid {
    fn from(e: serde_json::Error) -> Self {
        Invalid::Malformed(e.to_string())
    }
}

impl Parsed {
    /// The id as text (`?` when it is not a string), for `--check` lines.
    pub fn label(&self) -> &str {
        self.id.as_str().unwrap_or("?")
    }
}

/// Reads one case line. `Err` when the line is not JSON at all; a JSON value that is no valid
/// case gives a [`Parsed`] whose `case` says what is wrong.
pub fn parse_line(line: &str) -> Result<Parsed, serde_json::Error> {
    if !line.trim_start().starts_with('{') {
        // Not an object: no id and no op (a syntax error is reported as such).
        serde_json::from_str::<serde::de::IgnoredAny>(line)?;
        return Ok(not_a_case());
    }
    let header: Header = match serde_json::from_str(line) {
        Ok(h) => h,
        Err(e) if e.is_syntax() || e.is_eof() => return Err(e),
        Err(e) => {
            return Ok(Parsed {
                id: Value::Null,
                case: Err(e.into()),
            })
        }
    };
    Ok(with_header(header, || serde_json::from_str(line)))
}

/// [`parse_line`] for a case already read as JSON.
pub fn parse_value(case: &Value) -> Parsed {
    if !case.is_object() {
        return not_a_case();
    }
    match Header::deserialize_from(case) {
        Ok(header) => with_header(header, || serde_json::from_value(case.clone())),
        Err(e) => Parsed {
            id: Value::Null,
            case: Err(e.into()),
        },
    }
}

impl Header {
    fn deserialize_from(v: &Value) -> Result<Self, serde_json::Error> {
        serde::Deserialize::deserialize(v)
    }
}

fn not_a_case() -> Parsed {
    Parsed {
        id: Value::Null,
        case: Err(Invalid::Malformed("case has no `op`".into())),
    }
}

fn with_header(header: Header, case: impl FnOnce() -> Result<Case, serde_json::Error>) -> Parsed {
    let case = match &header.op {
        None => Err(Invalid::Malformed("case has no `op`".into())),
        Some(Name::Other(_)) => Err(Invalid::Malformed("case's `op` is not a string".into())),
        Some(Name::Text(name)) => match Op::all().iter().find(|op| op.name() == *name) {
            Some(&op) if runs(op) => case().map_err(Invalid::from),
            _ => Err(Invalid::Unsupported(Unsupported(format!(
                "op `{name}` is not supported by this runner"
            )))),
        },
    };
    Parsed {
        id: header.id,
        case,
    }
}

/// Runs a parsed case on `path`: one outcome per batch.
pub fn run(case: &Case, path: Path) -> anyhow::Result<Vec<Outcome>> {
    match path {
        Path::F64 => run_typed::<f64>(case),
        Path::F32 => run_typed::<f32>(case),
        Path::Fixed => run_typed::<Q16>(case),
        Path::Gpu => run_gpu(case),
    }
}

/// Runs a parsed line on `path`.
pub fn run_parsed(parsed: &Parsed, path: Path) -> anyhow::Result<Vec<Outcome>> {
    // The gpu path's absence is reported first, whatever the case.
    if path == Path::Gpu {
        gpu_ready()?;
    }
    match &parsed.case {
        Ok(case) => run(case, path),
        Err(Invalid::Unsupported(u)) => Err(anyhow::Error::new(u.clone())),
        Err(Invalid::Malformed(m)) => Err(anyhow::anyhow!("{m}")),
    }
}

/// The output lines of a result, as text: one per batch, or one error line.
pub fn lines(id: &Value, result: &anyhow::Result<Vec<Outcome>>) -> Vec<String> {
    let text = |r: Result<String, serde_json::Error>| {
        r.unwrap_or_else(|e| format!("{{\"id\":null,\"error\":\"serialising: {e}\"}}"))
    };
    match result {
        Ok(outcomes) => outcomes
            .iter()
            .enumerate()
            .map(|(batch, outcome)| text(serde_json::to_string(&Line { id, batch, outcome })))
            .collect(),
        Err(e) => vec![text(serde_json::to_string(&ErrorLine {
            id,
            error: format!("{e:#}"),
        }))],
    }
}

/// Runs one case (one line read as JSON) on `path`: one output object per batch.
pub fn run_case(case: &Value, path: Path) -> Vec<Value> {
    let parsed = parse_value(case);
    lines(&parsed.id, &run_parsed(&parsed, path))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect()
}

/// The GPU path: the CUDA context is made once per process.
#[cfg(feature = "gpu")]
fn run_gpu(case: &Case) -> anyhow::Result<Vec<Outcome>> {
    use hardmine_gpu::GpuError;
    let gpu = gpu()?;
    let one = |r: Reduction, loss: Result<f32, GpuError>, grad: Vec<f32>| {
        gpu_batch(r, loss.map_err(gpu_err)?, &grad)
    };
    match case {
        Case::GhmC { params, batches } => gpu_ghm(gpu, ghm_c_of(params)?, batches),
        Case::GhmR { params, batches } => gpu_ghm(gpu, ghm_r_of(params)?, batches),
        Case::SigmoidFocal { params, inputs, .. } => {
            let (x, t) = binary::<f32>(inputs);
            let (alpha, gamma) = (params.alpha as f32, params.gamma as f32);
            let r = params.reduction.into();
            let mut g = vec![0.0f32; x.len()];
            let focal = hardmine::SigmoidFocal::new(alpha, gamma)?.with_reduction(r);
            let focal = factor(focal, params.avg_factor, SigmoidFocal::with_avg_factor)?;
            let loss = gpu.sigmoid_focal(&focal, &x, &t, &mut g);
            one(r, loss, g)
        }
        Case::BceWithLogits { params, inputs, .. } => {
            let (x, t) = binary::<f32>(&inputs.binary);
            let w = inputs.weights.as_deref().map(reals::<f32>);
            let r = params.reduction.into();
            let mut g = vec![0.0f32; x.len()];
            let bce = hardmine::BceWithLogits::new().with_reduction(r);
            let bce = factor(bce, params.avg_factor, |l, f: f32| l.with_avg_factor(f))?;
            let loss = gpu.bce(&bce, &x, &t, w.as_deref(), &mut g);
            one(r, loss, g)
        }
        Case::SigmoidFocalLabels { params, inputs, .. } => {
            let x = reals::<f32>(&inputs.classes.logits);
            let w = inputs.label_weights.as_deref().map(reals::<f32>);
            let y = gpu_labels(&inputs.classes.labels);
            let r = params.focal.reduction.into();
            let head = SigmoidFocalLabels::new(sigmoid_focal_of(&params.focal)?, params.classes)?;
            let mut g = vec![0.0f32; x.len()];
            let loss = gpu.sigmoid_focal_labels(&head, &x, &y, w.as_deref(), &mut g);
            one(r, loss, g)
        }
        Case::SoftmaxCrossEntropy { params, inputs, .. } => {
            let (x, y) = (reals::<f32>(&inputs.logits), gpu_labels(&inputs.labels));
            let r = params.reduction.into();
            let ce = SoftmaxCrossEntropy::new(params.classes)?.with_reduction(r);
            let ce = factor(ce, params.avg_factor, |l, f: f32| l.with_avg_factor(f))?;
            let mut g = vec![0.0f32; x.len()];
            let loss = gpu.softmax_cross_entropy(&ce, &x, &y, &mut g);
            one(r, loss, g)
        }
        Case::SoftmaxFocal { params, inputs, .. } => {
            let (x, y) = (reals::<f32>(&inputs.logits), gpu_labels(&inputs.labels));
            let r = params.focal.reduction.into();
            let f = softmax_focal_of(params)?;
            let mut g = vec![0.0f32; x.len()];
            let loss = gpu.softmax_focal(&f, &x, &y, &mut g);
            one(r, loss, g)
        }
        Case::SmoothL1 { params, inputs, .. } => {
            let (x, t) = (reals::<f32>(&inputs.pred), reals::<f32>(&inputs.target));
            let r = params.reduction.into();
            let l = SmoothL1::new(params.beta as f32)?.with_reduction(r);
            let l = factor(l, params.avg_factor, SmoothL1::with_avg_factor)?;
            let mut g = vec![0.0f32; x.len()];
            let loss = gpu.smooth_l1(&l, &x, &t, &mut g);
            one(r, loss, g)
        }
        Case::Ohem { params, inputs, .. } => {
            let losses = reals::<f32>(&inputs.losses);
            let boxes = inputs.boxes.as_deref().map(reals::<f32>);
            let ohem = ohem_of::<f32>(params)?;
            let picked = gpu
                .ohem(&ohem, &losses, boxes.as_deref())
                .map_err(gpu_err)?;
            Ok(vec![case::Selected { selected: picked }.into()])
        }
        Case::Sohem { .. } | Case::OcclusionSearch { .. } | Case::RotateBlocks { .. } => {
            Err(no_gpu_kernel(case))
        }
    }
}

/// The op of a case has no GPU kernel.
#[cfg(feature = "gpu")]
fn no_gpu_kernel(case: &Case) -> anyhow::Error {
    unsupported(format!("op `{}` has no GPU kernel yet", case.op()))
}

/// A case's labels as the GPU takes them, saturated into i32: an out-of-range label keeps its
/// meaning (negative: ignored or background; at or above the classes: background, or
/// `InvalidTarget` where labels must name a class).
#[cfg(feature = "gpu")]
fn gpu_labels(labels: &[i64]) -> Vec<i32> {
    labels
        .iter()
        .map(|&l| l.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
        .collect()
}

/// A GPU result as a batch: the reduced loss and the gradient. The GPU API has no per-element
/// losses yet, so a `none` case answers an error line rather than borrow the core's values.
#[cfg(feature = "gpu")]
fn gpu_batch(reduction: Reduction, loss: f32, grad: &[f32]) -> anyhow::Result<Vec<Outcome>> {
    if reduction == Reduction::None {
        Err(unsupported(
            "reduction `none` (per-element losses) has no GPU kernel yet",
        ))
    } else {
        Ok(vec![scalar(loss, grad)])
    }
}

/// The CUDA context, made once per process.
#[cfg(feature = "gpu")]
fn gpu() -> anyhow::Result<&'static hardmine_gpu::Gpu> {
    use hardmine_gpu::Gpu;
    use std::sync::OnceLock;
    static GPU: OnceLock<Result<Gpu, String>> = OnceLock::new();
    GPU.get_or_init(|| Gpu::new().map_err(|e| e.to_string()))
        .as_ref()
        // Without a driver, a device or NVRTC the path is not here: every case is skipped.
        .map_err(unsupported)
}

/// A GPU error: an op with no kernel is [`Unsupported`], the rest fail.
#[cfg(feature = "gpu")]
fn gpu_err(e: hardmine_gpu::GpuError) -> anyhow::Error {
    use hardmine_gpu::GpuError;
    match e {
        GpuError::Unavailable | GpuError::NoDevice | GpuError::NotImplemented(_) => unsupported(e),
        e => anyhow::Error::new(e),
    }
}

#[cfg(feature = "gpu")]
fn gpu_ready() -> anyhow::Result<()> {
    gpu().map(|_| ())
}

#[cfg(not(feature = "gpu"))]
fn gpu_ready() -> anyhow::Result<()> {
    Err(unsupported(
        "the gpu path is not in this build (build hardmine-cli with --features gpu)",
    ))
}

#[cfg(not(feature = "gpu"))]
fn run_gpu(_: &Case) -> anyhow::Result<Vec<Outcome>> {
    gpu_ready().map(|()| Vec::new())
}

/// Inputs as `T` (the fixed path quantises them here).
fn reals<T: Real>(xs: &[f64]) -> Vec<T> {
    xs.iter().map(|&x| T::from_f64(x)).collect()
}

fn run_typed<T: Real>(case: &Case) -> anyhow::Result<Vec<Outcome>> {
    let outcome = match case {
        Case::GhmC { params, batches } => return cpu_ghm(ghm_c_of::<T>(params)?, batches),
        Case::GhmR { params, batches } => return cpu_ghm(ghm_r_of::<T>(params)?, batches),
        Case::BceWithLogits { params, inputs, .. } => {
            let (x, t) = binary::<T>(&inputs.binary);
            let w = inputs.weights.as_deref().map(reals::<T>);
            let r = params.reduction.into();
            let bce = BceWithLogits::new().with_reduction(r);
            let bce = factor(bce, params.avg_factor, |l, f: T| l.with_avg_factor(f))?;
            rowwise(
                r,
                x.len(),
                x.len(),
                |g| bce.value_and_grad(&x, &t, w.as_deref(), g),
                |o| bce.per_element(&x, &t, w.as_deref(), o),
            )?
        }
        Case::SigmoidFocal { params, inputs, .. } => {
            let (x, t) = binary::<T>(inputs);
            let (r, focal) = (params.reduction.into(), sigmoid_focal_of::<T>(params)?);
            rowwise(
                r,
                x.len(),
                x.len(),
                |g| focal.value_and_grad(&x, &t, g),
                |o| focal.per_element(&x, &t, o),
            )?
        }
        Case::SigmoidFocalLabels { params, inputs, .. } => {
            let (x, y) = (reals::<T>(&inputs.classes.logits), &inputs.classes.labels);
            let w = inputs.label_weights.as_deref().map(reals::<T>);
            let r = params.focal.reduction.into();
            let head =
                SigmoidFocalLabels::new(sigmoid_focal_of::<T>(&params.focal)?, params.classes)?;
            rowwise(
                r,
                x.len(),
                x.len(),
                |g| head.value_and_grad(&x, y, w.as_deref(), g),
                |o| head.per_element(&x, y, w.as_deref(), o),
            )?
        }
        Case::SoftmaxCrossEntropy { params, inputs, .. } => {
            let (x, y) = (reals::<T>(&inputs.logits), &inputs.labels);
            let r = params.reduction.into();
            let ce = SoftmaxCrossEntropy::new(params.classes)?.with_reduction(r);
            let ce = factor(ce, params.avg_factor, |l, f: T| l.with_avg_factor(f))?;
            rowwise(
                r,
                x.len(),
                y.len(),
                |g| ce.value_and_grad(&x, y, g),
                |o| ce.per_element(&x, y, o),
            )?
        }
        Case::SoftmaxFocal { params, inputs, .. } => {
            let (x, y) = (reals::<T>(&inputs.logits), &inputs.labels);
            let (r, focal) = (
                params.focal.reduction.into(),
                softmax_focal_of::<T>(params)?,
            );
            rowwise(
                r,
                x.len(),
                y.len(),
                |g| focal.value_and_grad(&x, y, g),
                |o| focal.per_element(&x, y, o),
            )?
        }
        Case::SmoothL1 { params, inputs, .. } => {
            let (x, t) = (reals::<T>(&inputs.pred), reals::<T>(&inputs.target));
            let r = params.reduction.into();
            let l = SmoothL1::new(T::from_f64(params.beta))?.with_reduction(r);
            let l = factor(l, params.avg_factor, SmoothL1::with_avg_factor)?;
            rowwise(
                r,
                x.len(),
                x.len(),
                |g| l.value_and_grad(&x, &t, g),
                |o| l.per_element(&x, &t, o),
            )?
        }
        Case::Ohem { params, inputs, .. } => {
            let losses = reals::<T>(&inputs.losses);
            let boxes = inputs.boxes.as_deref().map(reals::<T>);
            let picked = ohem_of::<T>(params)?.select(&losses, boxes.as_deref())?;
            case::Selected {
                selected: picked.indices().to_vec(),
            }
            .into()
        }
        Case::Sohem { params, inputs, .. } => sohem::<T>(params, inputs)?,
        Case::RotateBlocks { params, inputs, .. } => rotate_blocks::<T>(params, inputs)?,
        Case::OcclusionSearch { params, inputs, .. } => occlusion_search::<T>(params, inputs)?,
    };
    Ok(vec![outcome])
}

/// A case's logits and targets as `T`.
fn binary<T: Real>(i: &case::BinaryInputs) -> (Vec<T>, Vec<T>) {
    (reals(&i.logits), reals(&i.targets))
}

/// A sigmoid focal loss from the case's parameters.
fn sigmoid_focal_of<T: Real>(p: &case::Focal) -> anyhow::Result<SigmoidFocal<T>> {
    let (alpha, gamma) = (T::from_f64(p.alpha), T::from_f64(p.gamma));
    let focal = SigmoidFocal::new(alpha, gamma)?.with_reduction(p.reduction.into());
    Ok(factor(focal, p.avg_factor, SigmoidFocal::with_avg_factor)?)
}

/// A softmax focal loss from the case's parameters.
fn softmax_focal_of<T: Real>(p: &case::FocalClasses) -> anyhow::Result<SoftmaxFocal<T>> {
    let (alpha, gamma) = (T::from_f64(p.focal.alpha), T::from_f64(p.focal.gamma));
    let focal =
        SoftmaxFocal::new(alpha, gamma, p.classes)?.with_reduction(p.focal.reduction.into());
    Ok(factor(
        focal,
        p.focal.avg_factor,
        SoftmaxFocal::with_avg_factor,
    )?)
}

/// `loss` normalised by the case's `avg_factor` (as `T`, so each path quantises it as its
/// inputs), when the case has one.
fn factor<L, T: Real>(
    loss: L,
    avg_factor: Option<f64>,
    with: impl FnOnce(L, T) -> Result<L, hardmine::Error>,
) -> Result<L, hardmine::Error> {
    match avg_factor {
        Some(f) => with(loss, T::from_f64(f)),
        None => Ok(loss),
    }
}

/// An OHEM miner from the case's parameters.
fn ohem_of<T: Real>(p: &case::Ohem) -> anyhow::Result<Ohem<T, OHEM_CAPACITY>> {
    let ohem = Ohem::<T, OHEM_CAPACITY>::new(p.k)?;
    Ok(match p.nms_iou {
        Some(iou) => ohem.with_nms(T::from_f64(iou))?,
        None => ohem,
    })
}

/// A GHM-C sequence's loss from the case's parameters.
fn ghm_c_of<T: Real>(p: &case::GhmC) -> anyhow::Result<GhmC<T, GHM_CAPACITY>> {
    Ok(GhmC::new(
        p.bins,
        T::from_f64(p.momentum),
        T::from_f64(p.loss_weight),
    )?)
}

/// A GHM-R sequence's loss from the case's parameters.
fn ghm_r_of<T: Real>(p: &case::GhmR) -> anyhow::Result<GhmR<T, GHM_CAPACITY>> {
    let (mu, momentum) = (T::from_f64(p.mu), T::from_f64(p.ghm.momentum));
    Ok(GhmR::new(
        mu,
        p.ghm.bins,
        momentum,
        T::from_f64(p.ghm.loss_weight),
    )?)
}

/// A stateful GHM case: the same loss object over every batch, in order, through `call`.
fn ghm_batches<T: Real, K, I: Pair>(
    batches: &[Batch<Weighted<I>>],
    mut ghm: Ghm<T, K, GHM_CAPACITY>,
    mut call: impl FnMut(&mut Ghm<T, K, GHM_CAPACITY>, &[T], &[T], &[T], &mut [T]) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<Outcome>> {
    batches
        .iter()
        .map(|b| {
            let (x, t) = b.inputs.inputs.pair();
            let (x, t, w) = (
                reals::<T>(x),
                reals::<T>(t),
                reals::<T>(&b.inputs.label_weights),
            );
            let mut g = vec![T::ZERO; x.len()];
            let loss = call(&mut ghm, &x, &t, &w, &mut g)?;
            Ok(scalar(loss, &g))
        })
        .collect()
}

/// A GHM case on the CPU.
fn cpu_ghm<T: Real, K: GhmKind<T>, I: Pair>(
    ghm: Ghm<T, K, GHM_CAPACITY>,
    batches: &[Batch<Weighted<I>>],
) -> anyhow::Result<Vec<Outcome>> {
    ghm_batches(batches, ghm, |ghm, x, t, w, g| {
        Ok(ghm.value_and_grad(x, t, Some(w), g)?)
    })
}

/// A GHM case on the GPU.
#[cfg(feature = "gpu")]
fn gpu_ghm<K: hardmine_gpu::DeviceKind, I: Pair>(
    gpu: &hardmine_gpu::Gpu,
    ghm: Ghm<f32, K, GHM_CAPACITY>,
    batches: &[Batch<Weighted<I>>],
) -> anyhow::Result<Vec<Outcome>> {
    ghm_batches(batches, ghm, |ghm, x, t, w, g| {
        gpu.ghm(ghm, x, t, Some(w), g).map_err(gpu_err)
    })
}

/// `sohem`: quantile strata, or the preset loss `edges` when the case gives them.
fn sohem<T: Real>(p: &case::Sohem, i: &case::SohemInputs) -> anyhow::Result<Outcome> {
    if p.k > SOHEM_CAPACITY {
        bail!("k = {} exceeds the runner's capacity {SOHEM_CAPACITY}", p.k);
    }
    let (cls, loc) = (reals::<T>(&i.cls), reals::<T>(&i.loc));
    let mut miner = SOhem::<T, SOHEM_CAPACITY>::new(p.k, p.strata)?;
    if let Some(edges) = &p.edges {
        miner = miner.with_edges(&reals::<T>(edges))?;
    }
    let picked = miner.select(&cls, &loc, T::from_f64(p.progress))?;
    Ok(case::Selected {
        selected: picked.indices().to_vec(),
    }
    .into())
}

/// `rotate_blocks`: output, the gradient for the given upstream gradient, and grad_angles.
fn rotate_blocks<T: Real>(p: &case::Rotation, i: &case::RotationInputs) -> anyhow::Result<Outcome> {
    let (x, up, angles) = (
        reals::<T>(&i.features),
        reals::<T>(&i.upstream),
        reals(&p.angles),
    );
    let rot =
        ChannelBlockRotation::<T>::new(p.shape.channels, p.shape.height, p.shape.width, p.blocks)
            .and_then(|r| r.with_max_angle(T::from_f64(core::f64::consts::PI)))?;
    let mut out = vec![T::ZERO; x.len()];
    rot.forward(&x, &angles, &mut out)?;
    let mut g = vec![T::ZERO; x.len()];
    let mut ga = vec![T::ZERO; angles.len()];
    rot.backward(&x, &angles, &up, &mut g, &mut ga)?;
    Ok(case::Rotated {
        output: numbers(&out),
        grad: numbers(&g),
        grad_angles: numbers(&ga),
    }
    .into())
}

/// `occlusion_search` with the scorer `sigmoid(sum(scorer_weights * features) + scorer_bias)`.
fn occlusion_search<T: Real>(
    p: &case::Occlusion,
    i: &case::OcclusionInputs,
) -> anyhow::Result<Outcome> {
    let (x, w) = (reals::<T>(&i.features), reals::<T>(&i.scorer_weights));
    let bias = T::from_f64(i.scorer_bias);
    let search = OcclusionSearch::new(
        p.shape.channels,
        p.shape.height,
        p.shape.width,
        p.window,
        p.stride,
    )?;
    if w.len() != x.len() {
        bail!("scorer_weights and features differ in length");
    }
    let mut scratch = vec![T::ZERO; x.len()];
    let mut scores = vec![T::ZERO; search.window_count()];
    let scorer = |f: &[T]| {
        let z = f
            .iter()
            .zip(&w)
            .fold(T::ZERO.widen(), |a, (&f, &w)| a + (f * w).widen());
        (T::narrow(z) + bias).sigmoid()
    };
    let best = search.search(&x, &mut scratch, &mut scores, scorer)?;
    let windows = (0..search.window_count())
        .filter_map(|k| search.window(k))
        .map(|(r, c)| [r, c])
        .collect();
    Ok(case::Windows {
        scores: numbers(&scores),
        windows,
        best,
    }
    .into())
}

/// Loss and gradient of a loss over `n` inputs with `rows` per-element outputs (`n` for an
/// element-wise loss, the rows of a `[rows x classes]` input); for `none`, the loss is the
/// per-element vector.
fn rowwise<T: Real>(
    reduction: Reduction,
    n: usize,
    rows: usize,
    with_grad: impl FnOnce(&mut [T]) -> Result<T, hardmine::Error>,
    per_element: impl FnOnce(&mut [T]) -> Result<(), hardmine::Error>,
) -> anyhow::Result<Outcome> {
    let mut g = vec![T::ZERO; n];
    let loss = with_grad(&mut g)?;
    if reduction == Reduction::None {
        let mut out = vec![T::ZERO; rows];
        per_element(&mut out)?;
        Ok(LossGrad {
            loss: LossValue::PerElement(numbers(&out)),
            grad: numbers(&g),
        }
        .into())
    } else {
        Ok(scalar(loss, &g))
    }
}

fn scalar<T: Real>(loss: T, grad: &[T]) -> Outcome {
    LossGrad {
        loss: LossValue::Scalar(loss.to_f64()),
        grad: numbers(grad),
    }
    .into()
}

/// Results as f64 (a non-finite one is written `null` and fails the check).
fn numbers<T: Real>(xs: &[T]) -> Vec<f64> {
    xs.iter().map(|&x| x.to_f64()).collect()
}
