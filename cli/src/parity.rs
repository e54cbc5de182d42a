//! The parity runner: executes golden cases on one numeric path (golden/README.md contract).
//!
//! One JSON line per case (per batch for stateful ops): `{"id", "batch", "loss", "grad"}`, or
//! `{"id", "error"}` when this path cannot run the case.

use hardmine::{
    BceWithLogits, ChannelBlockRotation, GhmC, GhmR, OcclusionSearch, Ohem, Real, Reduction,
    SigmoidFocal, SigmoidFocalLabels, SmoothL1, SoftmaxCrossEntropy, SoftmaxFocal, Q16,
};
use serde_json::{json, Map, Value};

/// Capacity of the GHM histograms the runner builds (the largest `bins` it accepts).
pub const GHM_CAPACITY: usize = 256;

/// Capacity of the OHEM heap the runner builds (the largest `k` it accepts).
pub const OHEM_CAPACITY: usize = 4096;

/// A numeric path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Double precision.
    F64,
    /// Single precision.
    F32,
    /// Q15.16 fixed point.
    Fixed,
    /// CUDA.
    Gpu,
}

impl Path {
    /// Parses `f64`, `f32`, `fixed` or `gpu`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "f64" => Some(Path::F64),
            "f32" => Some(Path::F32),
            "fixed" => Some(Path::Fixed),
            "gpu" => Some(Path::Gpu),
            _ => None,
        }
    }

    /// The golden tolerance of this path: `(rtol, afrac, floor)`.
    pub fn tolerance(self) -> (f64, f64, f64) {
        match self {
            Path::F64 => (1e-10, 1e-12, 0.0),
            Path::F32 | Path::Gpu => (1e-5, 1e-6, 0.0),
            Path::Fixed => (2e-3, 2e-3, 3.1e-5),
        }
    }
}

/// Runs one case (one parsed JSON line) on `path`: one output object per batch.
pub fn run_case(case: &Value, path: Path) -> Vec<Value> {
    let id = case.get("id").cloned().unwrap_or(Value::Null);
    let result = match path {
        Path::F64 => run_typed::<f64>(case),
        Path::F32 => run_typed::<f32>(case),
        Path::Fixed => run_typed::<Q16>(case),
        Path::Gpu => run_gpu(case),
    };
    match result {
        Ok(batches) => batches
            .into_iter()
            .enumerate()
            .map(|(i, mut fields)| {
                let mut line = Map::new();
                line.insert("id".into(), id.clone());
                line.insert("batch".into(), json!(i));
                line.append(&mut fields);
                Value::Object(line)
            })
            .collect(),
        Err(error) => vec![json!({ "id": id, "error": error })],
    }
}

type Batch = Map<String, Value>;

/// The GPU path: the CUDA context is made once per process.
#[cfg(feature = "gpu")]
fn run_gpu(case: &Value) -> Result<Vec<Batch>, String> {
    use hardmine_gpu::Gpu;
    use std::sync::OnceLock;
    static GPU: OnceLock<Result<Gpu, String>> = OnceLock::new();
    let gpu = GPU
        .get_or_init(|| Gpu::new().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)?;
    let op = case.get("op").and_then(Value::as_str).unwrap_or("?");
    let params = case.get("params").cloned().unwrap_or(Value::Null);
    let p = Params(&params);
    if let Some(batches) = case.get("batches").and_then(Value::as_array) {
        let gpu_err = |e: hardmine_gpu::GpuError| e.to_string();
        return match op {
            "ghm_c" => {
                let mut ghm = ghm_c_of::<f32>(&p)?;
                ghm_batches(batches, "logits", "targets", |x, t, w, g| {
                    gpu.ghm(&mut ghm, x, t, Some(w), g).map_err(gpu_err)
                })
            }
            "ghm_r" => {
                let mut ghm = ghm_r_of::<f32>(&p)?;
                ghm_batches(batches, "pred", "target", |x, t, w, g| {
                    gpu.ghm(&mut ghm, x, t, Some(w), g).map_err(gpu_err)
                })
            }
            other => Err(format!("op `{other}` has no GPU kernel yet")),
        };
    }
    let i = Inputs::of(case)?;
    let reduction = p.reduction()?;
    match op {
        "sigmoid_focal" => {
            let (x, t) = (i.reals::<f32>("logits")?, i.reals::<f32>("targets")?);
            let focal = SigmoidFocal::new(p.real::<f32>("alpha")?, p.real::<f32>("gamma")?)
                .map_err(err)?
                .with_reduction(reduction);
            let mut g = vec![0.0f32; x.len()];
            let loss = gpu
                .sigmoid_focal(&focal, &x, &t, &mut g)
                .map_err(|e| e.to_string())?;
            gpu_batch(reduction, loss, g)
        }
        "bce_with_logits" => {
            let (x, t, w) = (
                i.reals::<f32>("logits")?,
                i.reals::<f32>("targets")?,
                i.optional_reals::<f32>("weights")?,
            );
            let bce = BceWithLogits::new().with_reduction(reduction);
            let mut g = vec![0.0f32; x.len()];
            let loss = gpu
                .bce(&bce, &x, &t, w.as_deref(), &mut g)
                .map_err(|e| e.to_string())?;
            gpu_batch(reduction, loss, g)
        }
        "sigmoid_focal_labels" => {
            let (x, w) = (
                i.reals::<f32>("logits")?,
                i.optional_reals::<f32>("label_weights")?,
            );
            let y = gpu_labels(&i)?;
            let focal = SigmoidFocal::new(p.real::<f32>("alpha")?, p.real::<f32>("gamma")?)
                .map_err(err)?
                .with_reduction(reduction);
            let head = SigmoidFocalLabels::new(focal, p.usize("classes")?).map_err(err)?;
            let mut g = vec![0.0f32; x.len()];
            let loss = gpu
                .sigmoid_focal_labels(&head, &x, &y, w.as_deref(), &mut g)
                .map_err(|e| e.to_string())?;
            gpu_batch(reduction, loss, g)
        }
        "softmax_cross_entropy" | "softmax_focal" => {
            let x = i.reals::<f32>("logits")?;
            let y = gpu_labels(&i)?;
            let classes = p.usize("classes")?;
            let mut g = vec![0.0f32; x.len()];
            let loss = if op == "softmax_focal" {
                let f = SoftmaxFocal::new(p.real::<f32>("alpha")?, p.real("gamma")?, classes)
                    .map_err(err)?
                    .with_reduction(reduction);
                gpu.softmax_focal(&f, &x, &y, &mut g)
            } else {
                let ce = SoftmaxCrossEntropy::new(classes)
                    .map_err(err)?
                    .with_reduction(reduction);
                gpu.softmax_cross_entropy(&ce, &x, &y, &mut g)
            }
            .map_err(|e| e.to_string())?;
            gpu_batch(reduction, loss, g)
        }
        "smooth_l1" => {
            let (x, t) = (i.reals::<f32>("pred")?, i.reals::<f32>("target")?);
            let l = SmoothL1::new(p.real::<f32>("beta")?)
                .map_err(err)?
                .with_reduction(reduction);
            let mut g = vec![0.0f32; x.len()];
            let loss = gpu
                .smooth_l1(&l, &x, &t, &mut g)
                .map_err(|e| e.to_string())?;
            gpu_batch(reduction, loss, g)
        }
        "ohem" => {
            let losses = i.reals::<f32>("losses")?;
            let boxes = i.optional_reals::<f32>("boxes")?;
            let mut ohem = Ohem::<f32, OHEM_CAPACITY>::new(p.usize("k")?).map_err(err)?;
            if let Some(iou) = params.get("nms_iou").and_then(Value::as_f64) {
                ohem = ohem.with_nms(iou as f32).map_err(err)?;
            }
            let picked = gpu
                .ohem(&ohem, &losses, boxes.as_deref())
                .map_err(|e| e.to_string())?;
            let mut b = Batch::new();
            b.insert("selected".into(), json!(picked));
            Ok(vec![b])
        }
        other => Err(format!("op `{other}` has no GPU kernel yet")),
    }
}

/// A case's labels as the GPU takes them, saturated into i32: an out-of-range label keeps its
/// meaning (negative: ignored or background; at or above the classes: background, or
/// `InvalidTarget` where labels must name a class).
#[cfg(feature = "gpu")]
fn gpu_labels(i: &Inputs<'_>) -> Result<Vec<i32>, String> {
    Ok(i.labels("labels")?
        .iter()
        .map(|&l| l.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
        .collect())
}

/// A GPU result as a batch: the reduced loss and the gradient. The GPU API has no per-element
/// losses yet, so a `none` case answers an error line rather than borrow the core's values.
#[cfg(feature = "gpu")]
fn gpu_batch(reduction: Reduction, loss: f32, grad: Vec<f32>) -> Result<Vec<Batch>, String> {
    if reduction == Reduction::None {
        Err("reduction `none` (per-element losses) has no GPU kernel yet".into())
    } else {
        Ok(vec![scalar(loss, &grad)])
    }
}

#[cfg(not(feature = "gpu"))]
fn run_gpu(_: &Value) -> Result<Vec<Batch>, String> {
    Err("the gpu path is not in this build (build hardmine-cli with --features gpu)".into())
}

fn run_typed<T: Real>(case: &Value) -> Result<Vec<Batch>, String> {
    let op = case
        .get("op")
        .and_then(Value::as_str)
        .ok_or("case has no `op`")?;
    let params = case.get("params").cloned().unwrap_or(Value::Null);
    let p = Params(&params);
    if let Some(batches) = case.get("batches").and_then(Value::as_array) {
        return match op {
            "ghm_c" => {
                let mut ghm = ghm_c_of::<T>(&p)?;
                ghm_batches(batches, "logits", "targets", |x, t, w, g| {
                    ghm.value_and_grad(x, t, Some(w), g).map_err(err)
                })
            }
            "ghm_r" => {
                let mut ghm = ghm_r_of::<T>(&p)?;
                ghm_batches(batches, "pred", "target", |x, t, w, g| {
                    ghm.value_and_grad(x, t, Some(w), g).map_err(err)
                })
            }
            other => Err(format!("op `{other}` is not supported by this runner")),
        };
    }
    let i = Inputs::of(case)?;
    let reduction = p.reduction()?;
    let batch = match op {
        "bce_with_logits" => {
            let (x, t, w) = (
                i.reals::<T>("logits")?,
                i.reals::<T>("targets")?,
                i.optional_reals::<T>("weights")?,
            );
            let bce = BceWithLogits::new().with_reduction(reduction);
            elementwise(
                reduction,
                x.len(),
                |g| bce.value_and_grad(&x, &t, w.as_deref(), g),
                |o| bce.per_element(&x, &t, w.as_deref(), o),
            )
        }
        "sigmoid_focal" => {
            let (x, t) = (i.reals::<T>("logits")?, i.reals::<T>("targets")?);
            let focal = SigmoidFocal::new(p.real("alpha")?, p.real("gamma")?)
                .map_err(|e| e.to_string())?
                .with_reduction(reduction);
            elementwise(
                reduction,
                x.len(),
                |g| focal.value_and_grad(&x, &t, g),
                |o| focal.per_element(&x, &t, o),
            )
        }
        "sigmoid_focal_labels" => {
            let (x, y, w) = (
                i.reals::<T>("logits")?,
                i.labels("labels")?,
                i.optional_reals::<T>("label_weights")?,
            );
            let focal = SigmoidFocal::new(p.real("alpha")?, p.real("gamma")?)
                .map_err(|e| e.to_string())?
                .with_reduction(reduction);
            let head =
                SigmoidFocalLabels::new(focal, p.usize("classes")?).map_err(|e| e.to_string())?;
            elementwise(
                reduction,
                x.len(),
                |g| head.value_and_grad(&x, &y, w.as_deref(), g),
                |o| head.per_element(&x, &y, w.as_deref(), o),
            )
        }
        "softmax_cross_entropy" => {
            let (x, y) = (i.reals::<T>("logits")?, i.labels("labels")?);
            let ce = SoftmaxCrossEntropy::new(p.usize("classes")?)
                .map_err(|e| e.to_string())?
                .with_reduction(reduction);
            rowwise(
                reduction,
                x.len(),
                y.len(),
                |g| ce.value_and_grad(&x, &y, g),
                |o| ce.per_element(&x, &y, o),
            )
        }
        "softmax_focal" => {
            let (x, y) = (i.reals::<T>("logits")?, i.labels("labels")?);
            let focal = SoftmaxFocal::new(p.real("alpha")?, p.real("gamma")?, p.usize("classes")?)
                .map_err(|e| e.to_string())?
                .with_reduction(reduction);
            rowwise(
                reduction,
                x.len(),
                y.len(),
                |g| focal.value_and_grad(&x, &y, g),
                |o| focal.per_element(&x, &y, o),
            )
        }
        "smooth_l1" => {
            let (x, t) = (i.reals::<T>("pred")?, i.reals::<T>("target")?);
            let l = SmoothL1::new(p.real("beta")?)
                .map_err(|e| e.to_string())?
                .with_reduction(reduction);
            elementwise(
                reduction,
                x.len(),
                |g| l.value_and_grad(&x, &t, g),
                |o| l.per_element(&x, &t, o),
            )
        }
        "ohem" => {
            let losses = i.reals::<T>("losses")?;
            let boxes = i.optional_reals::<T>("boxes")?;
            let mut ohem =
                Ohem::<T, OHEM_CAPACITY>::new(p.usize("k")?).map_err(|e| e.to_string())?;
            if let Some(iou) = params.get("nms_iou").and_then(Value::as_f64) {
                ohem = ohem.with_nms(T::from_f64(iou)).map_err(|e| e.to_string())?;
            }
            let picked = ohem
                .select(&losses, boxes.as_deref())
                .map_err(|e| e.to_string())?;
            let mut b = Batch::new();
            b.insert("selected".into(), json!(picked.indices()));
            Ok(b)
        }
        "rotate_blocks" => rotate_blocks::<T>(&p, &i),
        "occlusion_search" => occlusion_search::<T>(&p, &i),
        other => return Err(format!("op `{other}` is not supported by this runner")),
    };
    batch.map(|b| vec![b])
}

fn err(e: hardmine::Error) -> String {
    e.to_string()
}

/// A stateful GHM case: the same loss object over every batch, in order.
/// A GHM-C sequence's loss from the case's parameters.
fn ghm_c_of<T: Real>(p: &Params<'_>) -> Result<GhmC<T, GHM_CAPACITY>, String> {
    GhmC::new(
        p.usize("bins")?,
        p.real("momentum")?,
        p.real("loss_weight")?,
    )
    .map_err(err)
}

/// A GHM-R sequence's loss from the case's parameters.
fn ghm_r_of<T: Real>(p: &Params<'_>) -> Result<GhmR<T, GHM_CAPACITY>, String> {
    let (mu, bins) = (p.real("mu")?, p.usize("bins")?);
    GhmR::new(mu, bins, p.real("momentum")?, p.real("loss_weight")?).map_err(err)
}

fn ghm_batches<T: Real>(
    batches: &[Value],
    x_key: &str,
    t_key: &str,
    mut call: impl FnMut(&[T], &[T], &[T], &mut [T]) -> Result<T, String>,
) -> Result<Vec<Batch>, String> {
    batches
        .iter()
        .map(|b| {
            let i = Inputs::of(b)?;
            let (x, t, w) = (
                i.reals::<T>(x_key)?,
                i.reals::<T>(t_key)?,
                i.reals::<T>("label_weights")?,
            );
            let mut g = vec![T::ZERO; x.len()];
            let loss = call(&x, &t, &w, &mut g)?;
            Ok(scalar(loss, &g))
        })
        .collect()
}

/// `rotate_blocks`: output, the gradient for the given upstream gradient, and grad_angles.
fn rotate_blocks<T: Real>(p: &Params<'_>, i: &Inputs<'_>) -> Result<Batch, String> {
    let (x, up) = (i.reals::<T>("features")?, i.reals::<T>("upstream")?);
    let angles = p.reals::<T>("angles")?;
    let rot = ChannelBlockRotation::<T>::new(
        p.usize("channels")?,
        p.usize("height")?,
        p.usize("width")?,
        p.usize("blocks")?,
    )
    .and_then(|r| r.with_max_angle(T::from_f64(core::f64::consts::PI)))
    .map_err(err)?;
    let mut out = vec![T::ZERO; x.len()];
    rot.forward(&x, &angles, &mut out).map_err(err)?;
    let mut g = vec![T::ZERO; x.len()];
    let mut ga = vec![T::ZERO; angles.len()];
    rot.backward(&x, &angles, &up, &mut g, &mut ga)
        .map_err(err)?;
    let mut b = Batch::new();
    b.insert("output".into(), numbers(&out));
    b.insert("grad".into(), numbers(&g));
    b.insert("grad_angles".into(), numbers(&ga));
    Ok(b)
}

/// `occlusion_search` with the scorer `sigmoid(sum(scorer_weights * features) + scorer_bias)`.
fn occlusion_search<T: Real>(p: &Params<'_>, i: &Inputs<'_>) -> Result<Batch, String> {
    let x = i.reals::<T>("features")?;
    let w = i.reals::<T>("scorer_weights")?;
    let bias = T::from_f64(
        i.0.get("scorer_bias")
            .and_then(Value::as_f64)
            .ok_or("missing input `scorer_bias`")?,
    );
    let search = OcclusionSearch::new(
        p.usize("channels")?,
        p.usize("height")?,
        p.usize("width")?,
        p.usize("window")?,
        p.usize("stride")?,
    )
    .map_err(err)?;
    if w.len() != x.len() {
        return Err("scorer_weights and features differ in length".into());
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
    let best = search
        .search(&x, &mut scratch, &mut scores, scorer)
        .map_err(err)?;
    let windows: Vec<Value> = (0..search.window_count())
        .filter_map(|k| search.window(k))
        .map(|(r, c)| json!([r, c]))
        .collect();
    let mut b = Batch::new();
    b.insert("scores".into(), numbers(&scores));
    b.insert("windows".into(), Value::Array(windows));
    b.insert("best".into(), json!(best));
    Ok(b)
}

/// Loss and gradient of an element-wise loss; for `none`, the loss is the per-element vector.
fn elementwise<T: Real>(
    reduction: Reduction,
    n: usize,
    with_grad: impl FnOnce(&mut [T]) -> Result<T, hardmine::Error>,
    per_element: impl FnOnce(&mut [T]) -> Result<(), hardmine::Error>,
) -> Result<Batch, String> {
    rowwise(reduction, n, n, with_grad, per_element)
}

/// As `elementwise`, with `rows` per-element outputs for a `[rows x classes]` input of `n`.
fn rowwise<T: Real>(
    reduction: Reduction,
    n: usize,
    rows: usize,
    with_grad: impl FnOnce(&mut [T]) -> Result<T, hardmine::Error>,
    per_element: impl FnOnce(&mut [T]) -> Result<(), hardmine::Error>,
) -> Result<Batch, String> {
    let mut g = vec![T::ZERO; n];
    let loss = with_grad(&mut g).map_err(|e| e.to_string())?;
    if reduction == Reduction::None {
        let mut out = vec![T::ZERO; rows];
        per_element(&mut out).map_err(|e| e.to_string())?;
        let mut b = Batch::new();
        b.insert("loss".into(), numbers(&out));
        b.insert("grad".into(), numbers(&g));
        Ok(b)
    } else {
        Ok(scalar(loss, &g))
    }
}

fn scalar<T: Real>(loss: T, grad: &[T]) -> Batch {
    let mut b = Batch::new();
    b.insert("loss".into(), number(loss));
    b.insert("grad".into(), numbers(grad));
    b
}

fn number<T: Real>(x: T) -> Value {
    // Non-finite results have no JSON number; they are reported as null and fail the check.
    serde_json::Number::from_f64(x.to_f64()).map_or(Value::Null, Value::Number)
}

fn numbers<T: Real>(xs: &[T]) -> Value {
    Value::Array(xs.iter().map(|&x| number(x)).collect())
}

struct Params<'a>(&'a Value);

impl Params<'_> {
    fn f64(&self, key: &str) -> Result<f64, String> {
        self.0
            .get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("missing number param `{key}`"))
    }

    fn real<T: Real>(&self, key: &str) -> Result<T, String> {
        self.f64(key).map(T::from_f64)
    }

    fn usize(&self, key: &str) -> Result<usize, String> {
        self.0
            .get(key)
            .and_then(Value::as_u64)
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| format!("missing integer param `{key}`"))
    }

    fn reals<T: Real>(&self, key: &str) -> Result<Vec<T>, String> {
        let arr = self
            .0
            .get(key)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("missing param `{key}`"))?;
        arr.iter()
            .map(|v| {
                v.as_f64()
                    .map(T::from_f64)
                    .ok_or_else(|| format!("param `{key}` has a non-number"))
            })
            .collect()
    }

    fn reduction(&self) -> Result<Reduction, String> {
        match self.0.get("reduction").and_then(Value::as_str) {
            None | Some("mean") => Ok(Reduction::Mean),
            Some("sum") => Ok(Reduction::Sum),
            Some("none") => Ok(Reduction::None),
            Some(other) => Err(format!("unknown reduction `{other}`")),
        }
    }
}

struct Inputs<'a>(&'a Map<String, Value>);

impl<'a> Inputs<'a> {
    fn of(v: &'a Value) -> Result<Self, String> {
        v.get("inputs")
            .and_then(Value::as_object)
            .map(Inputs)
            .ok_or_else(|| "case has no `inputs`".into())
    }

    fn optional_reals<T: Real>(&self, key: &str) -> Result<Option<Vec<T>>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => {
                let arr = v
                    .as_array()
                    .ok_or_else(|| format!("input `{key}` is not an array"))?;
                arr.iter()
                    .map(|x| {
                        x.as_f64()
                            .map(T::from_f64)
                            .ok_or_else(|| format!("input `{key}` has a non-number"))
                    })
                    .collect::<Result<Vec<T>, String>>()
                    .map(Some)
            }
        }
    }

    fn reals<T: Real>(&self, key: &str) -> Result<Vec<T>, String> {
        self.optional_reals(key)?
            .ok_or_else(|| format!("missing input `{key}`"))
    }

    fn labels(&self, key: &str) -> Result<Vec<i64>, String> {
        let arr = self
            .0
            .get(key)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("missing input `{key}`"))?;
        arr.iter()
            .map(|x| {
                x.as_i64()
                    .ok_or_else(|| format!("input `{key}` has a non-integer"))
            })
            .collect()
    }
}
