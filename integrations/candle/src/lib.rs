//! # hardmine-candle
//!
//! [hardmine](https://docs.rs/hardmine)'s losses and miners as differentiable
//! [candle](https://docs.rs/candle-core) ops, for `f32` and `f64` tensors on the CPU device.
//!
//! Each loss is a candle custom op ([`CustomOp2`]): its `cpu_fwd` runs hardmine's forward
//! pass on the tensors' data, and its `bwd` returns hardmine's own gradient (the exact,
//! numerically stable one: focal's `1 - p_t` never by subtraction, BCE's gradient as a
//! difference of two logistic values) multiplied by the gradient flowing in from above, so a
//! hardmine loss composes with any candle expression (`3 * loss + other`, a per-element loss
//! times a mask or a random upstream gradient) and `Tensor::backward` gives the exact
//! gradient of the whole expression.
//!
//! | function / type | hardmine | output |
//! |---|---|---|
//! | [`sigmoid_focal`] | [`hardmine::SigmoidFocal`] | per element (`Reduction::None`) or a scalar |
//! | [`sigmoid_focal_labels`] | [`hardmine::SigmoidFocalLabels`] (logits `[N, C]`, labels `[N]`) | `[N, C]` or a scalar |
//! | [`bce_with_logits`] | [`hardmine::BceWithLogits`] | per element or a scalar |
//! | [`smooth_l1`] | [`hardmine::SmoothL1`] | per element or a scalar |
//! | [`Harmonized`] (`GhmC`, `GhmR`) | [`hardmine::GhmC`], [`hardmine::GhmR`] | a scalar |
//! | [`ohem`] | [`hardmine::Ohem`] | indices (`u32`) and a 0/1 mask of the losses' dtype |
//!
//! Gradients flow to the first input (logits or predictions); targets and labels are
//! constants. GHM's moving average advances exactly once per forward call: the forward pass
//! keeps the batch's gradient (weighted by that batch's bin densities) in the op, and `bwd`
//! reuses it, so a backward pass, or two, never touches the moving average again.
//!
//! Every hardmine error (mismatched shapes, non-finite values, targets outside `[0, 1]`, bad
//! hyper-parameters) comes back as a candle `Err`, never a panic, and leaves a GHM state
//! unchanged.
//!
//! Why candle rather than burn: candle-core's CPU build is 76 crates (the first build of this
//! crate and its tests took 1 min 55 s on two shared cores), and its
//! `CustomOp2::bwd` hands the op its inputs and the incoming gradient, so the backward pass is
//! hardmine's exact gradient and nothing else; no kernel, backend or autodiff decorator has to
//! be written per backend.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use hardmine_candle::{sigmoid_focal, Reduction};
//! let x = Var::new(&[-2.0f32, 0.5, 3.0], &Device::Cpu)?;
//! let t = Tensor::new(&[0.0f32, 1.0, 1.0], &Device::Cpu)?;
//! let loss = sigmoid_focal(x.as_tensor(), &t, 0.25, 2.0, Reduction::Mean)?;
//! let grads = (loss * 3.0)?.backward()?;
//! let g = grads.get(x.as_tensor()).map(|g| g.to_vec1::<f32>()).transpose()?;
//! assert!(g.is_some_and(|g| g[1] < 0.0));
//! # Ok::<(), candle_core::Error>(())
//! ```

use std::sync::{Arc, Mutex, PoisonError};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, DType, Error, Layout, Result, Shape, Tensor, WithDType};
use hardmine::{
    BceWithLogits, ClassLabel, Ghm, GhmKind, Ohem, SigmoidFocal, SigmoidFocalLabels, SmoothL1,
};

pub use hardmine::Reduction;

/// A hardmine error as a candle error.
fn hm(e: hardmine::Error) -> Error {
    Error::msg(format!("hardmine: {e}"))
}

/// `v` in `T` (hardmine's conversion, which rounds to nearest).
fn real<T: Float>(v: f64) -> T {
    <T as hardmine::Real>::from_f64(v)
}

/// The element types both hardmine and candle compute in: `f32` and `f64`.
pub trait Float: hardmine::Real<Acc: Send + Sync> + WithDType {}
impl Float for f32 {}
impl Float for f64 {}

/// The data of a contiguous tensor argument of a custom op.
fn data<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| Error::msg("hardmine: the op needs contiguous inputs"))?;
    T::cpu_storage_as_slice(s)?
        .get(start..end)
        .ok_or_else(|| Error::msg("hardmine: layout outside its storage"))
}

/// A tensor's data as a vector (any layout).
fn values<T: WithDType>(t: &Tensor) -> Result<Vec<T>> {
    t.flatten_all()?.to_vec1::<T>()
}

/// `grad` (the op's gradient, one value per element of `arg`) times the incoming gradient
/// `grad_res`: element by element for a per-element output, broadcast for a scalar one.
fn chain<T: WithDType>(grad: Vec<T>, arg: &Tensor, grad_res: &Tensor) -> Result<Tensor> {
    let local = Tensor::from_vec(grad, arg.shape(), arg.device())?;
    if grad_res.dims().is_empty() {
        local.broadcast_mul(grad_res)
    } else {
        local.mul(grad_res)
    }
}

/// The output shape of a loss over `shape` under `reduction`.
fn reduced_shape(shape: &Shape, reduction: Reduction) -> Shape {
    match reduction {
        Reduction::None => shape.clone(),
        Reduction::Sum | Reduction::Mean => Shape::from(()),
    }
}

/// An element-wise hardmine loss and its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Focal { alpha: f64, gamma: f64 },
    Bce,
    SmoothL1 { beta: f64 },
}

/// An element-wise loss over `(input, target)`; gradient to `input`.
#[derive(Debug, Clone, Copy)]
struct Elementwise {
    kind: Kind,
    reduction: Reduction,
}

impl Elementwise {
    /// What `out` asks for, in `T`: the reduced value, the per-element losses, or the
    /// gradient (for `Reduction::None` that of the sum: each element's own derivative).
    fn run<T: Float>(&self, x: &[T], t: &[T], out: Output<'_, T>) -> Result<T> {
        let r = self.reduction;
        macro_rules! entry {
            ($loss:expr, $($args:expr),*) => {
                match out {
                    Output::Value => $loss.value($($args),*),
                    Output::PerElement(o) => $loss.per_element($($args,)* o).map(|()| T::ZERO),
                    Output::Grad(g) => $loss.value_and_grad($($args,)* g),
                }
            };
        }
        match self.kind {
            Kind::Focal { alpha, gamma } => {
                let loss = SigmoidFocal::new(real::<T>(alpha), real::<T>(gamma))
                    .map_err(hm)?
                    .with_reduction(r);
                entry!(loss, x, t)
            }
            Kind::Bce => {
                let loss = BceWithLogits::new().with_reduction(r);
                entry!(loss, x, t, None)
            }
            Kind::SmoothL1 { beta } => {
                let loss = SmoothL1::new(real::<T>(beta))
                    .map_err(hm)?
                    .with_reduction(r);
                entry!(loss, x, t)
            }
        }
        .map_err(hm)
    }

    fn fwd<T: Float>(&self, x: &[T], t: &[T], shape: &Shape) -> Result<(CpuStorage, Shape)> {
        if self.reduction == Reduction::None {
            let mut out = vec![T::ZERO; x.len()];
            self.run(x, t, Output::PerElement(&mut out))?;
            Ok((T::to_cpu_storage_owned(out), shape.clone()))
        } else {
            let v = self.run(x, t, Output::Value)?;
            Ok((T::to_cpu_storage_owned(vec![v]), Shape::from(())))
        }
    }

    fn grad<T: Float>(&self, x: &Tensor, t: &Tensor, grad_res: &Tensor) -> Result<Tensor> {
        let (xs, ts) = (values::<T>(x)?, values::<T>(t)?);
        let mut g = vec![T::ZERO; xs.len()];
        // For `None` the gradient of the sum: each element's own derivative.
        self.run(&xs, &ts, Output::Grad(&mut g))?;
        chain(g, x, grad_res)
    }
}

/// What a call of a hardmine entry point writes.
enum Output<'a, T> {
    Value,
    PerElement(&'a mut [T]),
    Grad(&'a mut [T]),
}

/// Checks that the two inputs of an element-wise op have one shape and one float dtype.
fn same(l1: &Layout, l2: &Layout, d1: DType, d2: DType) -> Result<()> {
    if l1.shape() != l2.shape() {
        return Err(Error::msg(format!(
            "hardmine: shapes differ: {:?} and {:?}",
            l1.shape(),
            l2.shape()
        )));
    }
    if d1 != d2 {
        return Err(Error::msg(format!(
            "hardmine: dtypes differ: {d1:?} and {d2:?}"
        )));
    }
    Ok(())
}

impl CustomOp2 for Elementwise {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Focal { .. } => "hardmine-sigmoid-focal",
            Kind::Bce => "hardmine-bce-with-logits",
            Kind::SmoothL1 { .. } => "hardmine-smooth-l1",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        same(l1, l2, s1.dtype(), s2.dtype())?;
        match s1.dtype() {
            DType::F32 => self.fwd::<f32>(data(s1, l1)?, data(s2, l2)?, l1.shape()),
            DType::F64 => self.fwd::<f64>(data(s1, l1)?, data(s2, l2)?, l1.shape()),
            d => Err(Error::msg(format!(
                "hardmine: unsupported dtype {d:?} (f32 or f64)"
            ))),
        }
    }

    fn bwd(
        &self,
        x: &Tensor,
        t: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = match x.dtype() {
            DType::F32 => self.grad::<f32>(x, t, grad_res)?,
            _ => self.grad::<f64>(x, t, grad_res)?,
        };
        Ok((Some(g), None))
    }
}

fn elementwise(x: &Tensor, t: &Tensor, kind: Kind, reduction: Reduction) -> Result<Tensor> {
    // The ops read their inputs' storage in order: a strided view is copied first (its
    // gradient flows back through the copy).
    x.contiguous()?
        .apply_op2(&t.contiguous()?, Elementwise { kind, reduction })
}

/// Sigmoid focal loss (torchvision's `sigmoid_focal_loss`) of `logits` against `targets` in
/// `[0, 1]` (soft targets allowed), same shape; `alpha` in `[0, 1]` or `-1` (off),
/// `gamma >= 0`. `Reduction::None` gives the per-element losses, `Sum` and `Mean` a scalar.
///
/// # Errors
/// hardmine's (bad `alpha` or `gamma`, non-finite values, targets outside `[0, 1]`), shapes
/// or dtypes that differ, a dtype other than `f32`/`f64`.
pub fn sigmoid_focal(
    logits: &Tensor,
    targets: &Tensor,
    alpha: f64,
    gamma: f64,
    reduction: Reduction,
) -> Result<Tensor> {
    elementwise(logits, targets, Kind::Focal { alpha, gamma }, reduction)
}

/// Binary cross-entropy on logits (PyTorch's `binary_cross_entropy_with_logits`).
///
/// # Errors
/// As [`sigmoid_focal`].
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor, reduction: Reduction) -> Result<Tensor> {
    elementwise(logits, targets, Kind::Bce, reduction)
}

/// Smooth L1 (PyTorch's `smooth_l1_loss`; `beta = 0` is L1) of `pred` against `target`.
///
/// # Errors
/// As [`sigmoid_focal`] (`beta` must be finite and `>= 0`; targets may be any finite value).
pub fn smooth_l1(
    pred: &Tensor,
    target: &Tensor,
    beta: f64,
    reduction: Reduction,
) -> Result<Tensor> {
    elementwise(pred, target, Kind::SmoothL1 { beta }, reduction)
}

/// The label form of the sigmoid focal loss: logits `[N, C]`, integer labels `[N]`.
#[derive(Debug, Clone, Copy)]
struct Labels {
    alpha: f64,
    gamma: f64,
    reduction: Reduction,
}

impl Labels {
    fn run<T: Float, L: ClassLabel>(
        &self,
        x: &[T],
        labels: &[L],
        classes: usize,
        out: Output<'_, T>,
    ) -> Result<T> {
        let focal = SigmoidFocal::new(real::<T>(self.alpha), real::<T>(self.gamma))
            .map_err(hm)?
            .with_reduction(self.reduction);
        let head = SigmoidFocalLabels::new(focal, classes).map_err(hm)?;
        match out {
            Output::Value => head.value(x, labels, None),
            Output::PerElement(o) => head.per_element(x, labels, None, o).map(|()| T::ZERO),
            Output::Grad(g) => head.value_and_grad(x, labels, None, g),
        }
        .map_err(hm)
    }

    fn fwd<T: Float, L: ClassLabel>(
        &self,
        x: &[T],
        labels: &[L],
        shape: &Shape,
    ) -> Result<(CpuStorage, Shape)> {
        let classes = classes(shape)?;
        if self.reduction == Reduction::None {
            let mut out = vec![T::ZERO; x.len()];
            self.run(x, labels, classes, Output::PerElement(&mut out))?;
            Ok((T::to_cpu_storage_owned(out), shape.clone()))
        } else {
            let v = self.run(x, labels, classes, Output::Value)?;
            Ok((
                T::to_cpu_storage_owned(vec![v]),
                reduced_shape(shape, self.reduction),
            ))
        }
    }

    fn fwd_labels<T: Float>(
        &self,
        x: &[T],
        s2: &CpuStorage,
        l2: &Layout,
        shape: &Shape,
    ) -> Result<(CpuStorage, Shape)> {
        match s2.dtype() {
            DType::U8 => self.fwd(x, data::<u8>(s2, l2)?, shape),
            DType::U32 => self.fwd(x, data::<u32>(s2, l2)?, shape),
            DType::I64 => self.fwd(x, data::<i64>(s2, l2)?, shape),
            d => Err(Error::msg(format!(
                "hardmine: labels must be u8, u32 or i64, not {d:?}"
            ))),
        }
    }

    fn grad<T: Float>(&self, x: &Tensor, labels: &Tensor, grad_res: &Tensor) -> Result<Tensor> {
        let xs = values::<T>(x)?;
        let classes = classes(x.shape())?;
        let mut g = vec![T::ZERO; xs.len()];
        match labels.dtype() {
            DType::U8 => self.run(&xs, &values::<u8>(labels)?, classes, Output::Grad(&mut g)),
            DType::U32 => self.run(&xs, &values::<u32>(labels)?, classes, Output::Grad(&mut g)),
            _ => self.run(&xs, &values::<i64>(labels)?, classes, Output::Grad(&mut g)),
        }?;
        chain(g, x, grad_res)
    }
}

/// `C` of logits `[N, C]`.
fn classes(shape: &Shape) -> Result<usize> {
    match shape.dims() {
        [_, c] => Ok(*c),
        d => Err(Error::msg(format!(
            "hardmine: logits must be [N, C], not {d:?}"
        ))),
    }
}

impl CustomOp2 for Labels {
    fn name(&self) -> &'static str {
        "hardmine-sigmoid-focal-labels"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let rows = match l1.shape().dims() {
            [n, _] => *n,
            d => {
                return Err(Error::msg(format!(
                    "hardmine: logits must be [N, C], not {d:?}"
                )))
            }
        };
        if l2.shape().dims() != [rows] {
            return Err(Error::msg(format!(
                "hardmine: labels must be [{rows}], not {:?}",
                l2.shape()
            )));
        }
        match s1.dtype() {
            DType::F32 => self.fwd_labels::<f32>(data(s1, l1)?, s2, l2, l1.shape()),
            DType::F64 => self.fwd_labels::<f64>(data(s1, l1)?, s2, l2, l1.shape()),
            d => Err(Error::msg(format!(
                "hardmine: unsupported dtype {d:?} (f32 or f64)"
            ))),
        }
    }

    fn bwd(
        &self,
        x: &Tensor,
        labels: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = match x.dtype() {
            DType::F32 => self.grad::<f32>(x, labels, grad_res)?,
            _ => self.grad::<f64>(x, labels, grad_res)?,
        };
        Ok((Some(g), None))
    }
}

/// Sigmoid focal loss on class labels (mmdetection's `FocalLoss(use_sigmoid=True)` on a
/// detection head): `logits` `[N, C]`, `labels` `[N]` (`u8`, `u32` or `i64`; a label outside
/// `0..C` is background, an all-zero target row). `Mean` divides by `N * C`.
///
/// # Errors
/// As [`sigmoid_focal`]; logits not `[N, C]`, labels not `[N]`.
pub fn sigmoid_focal_labels(
    logits: &Tensor,
    labels: &Tensor,
    alpha: f64,
    gamma: f64,
    reduction: Reduction,
) -> Result<Tensor> {
    logits.contiguous()?.apply_op2(
        &labels.contiguous()?,
        Labels {
            alpha,
            gamma,
            reduction,
        },
    )
}

/// A gradient-harmonized loss (GHM-C or GHM-R) with its moving average, for candle.
///
/// Clones share one moving average. Each [`forward`](Self::forward) is one batch: it advances
/// the moving average once and returns the scalar loss; the backward pass uses the gradient
/// computed with that batch's weights (mmdetection detaches them) and never updates the state.
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// use hardmine_candle::Harmonized;
/// let ghm = Harmonized::new(hardmine::GhmC::<f32, 30>::new(30, 0.75, 1.0).map_err(candle_core::Error::msg)?);
/// let x = Var::new(&[-4.0f32, -3.5, 2.0, -0.1], &Device::Cpu)?;
/// let t = Tensor::new(&[0.0f32, 0.0, 1.0, 1.0], &Device::Cpu)?;
/// let loss = ghm.forward(x.as_tensor(), &t)?;
/// let grads = loss.backward()?;
/// assert!(grads.get(x.as_tensor()).is_some());
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Harmonized<T: Float, K, const BINS: usize> {
    state: Arc<Mutex<Ghm<T, K, BINS>>>,
}

impl<T, K, const BINS: usize> Harmonized<T, K, BINS>
where
    T: Float,
    K: GhmKind<T> + Send + 'static,
{
    /// Wraps a hardmine GHM loss (`GhmC::new(..)` or `GhmR::new(..)`).
    pub fn new(ghm: Ghm<T, K, BINS>) -> Self {
        Self {
            state: Arc::new(Mutex::new(ghm)),
        }
    }

    /// A copy of the current state (the moving average).
    pub fn state(&self) -> Ghm<T, K, BINS>
    where
        K: Copy,
    {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The loss of one batch (`input` logits for GHM-C, predictions for GHM-R; `target` of
    /// the same shape), advancing the moving average once.
    ///
    /// # Errors
    /// hardmine's (non-finite values, GHM-C targets outside `[0, 1]`; the state is then
    /// unchanged), shapes or dtypes that differ, a dtype other than `T`.
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        input.contiguous()?.apply_op2(
            &target.contiguous()?,
            GhmOp {
                state: Arc::clone(&self.state),
                grad: Mutex::new(None),
            },
        )
    }
}

/// One forward call of a GHM loss: the gradient it computed, for `bwd`.
struct GhmOp<T: Float, K, const BINS: usize> {
    state: Arc<Mutex<Ghm<T, K, BINS>>>,
    grad: Mutex<Option<Vec<T>>>,
}

impl<T, K, const BINS: usize> CustomOp2 for GhmOp<T, K, BINS>
where
    T: Float,
    K: GhmKind<T> + Send,
{
    fn name(&self) -> &'static str {
        "hardmine-ghm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        same(l1, l2, s1.dtype(), s2.dtype())?;
        let (x, t) = (data::<T>(s1, l1)?, data::<T>(s2, l2)?);
        let mut g = vec![T::ZERO; x.len()];
        let loss = {
            let mut ghm = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            // The one update of the moving average for this batch.
            ghm.value_and_grad(x, t, None, &mut g).map_err(hm)?
        };
        *self.grad.lock().unwrap_or_else(PoisonError::into_inner) = Some(g);
        Ok((T::to_cpu_storage_owned(vec![loss]), Shape::from(())))
    }

    fn bwd(
        &self,
        x: &Tensor,
        _t: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = self
            .grad
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| Error::msg("hardmine: GHM backward without its forward"))?;
        Ok((Some(chain(g, x, grad_res)?), None))
    }
}

/// The examples [`ohem`] selected: their indices and a mask over all of them.
#[derive(Debug, Clone)]
pub struct Mined {
    /// The selected indices, ascending (`u32`, `[k']` with `k' <= k`).
    pub indices: Tensor,
    /// 1 at a selected example, 0 elsewhere (`[N]`, the losses' dtype); multiply a
    /// per-element loss by it so only the mined examples train.
    pub mask: Tensor,
}

/// OHEM (hardmine's [`Ohem`]: top-k by loss, NMS on `boxes` `[N, 4]` when the miner has it)
/// over per-example `losses` `[N]` (detached: selection is not differentiable).
///
/// # Errors
/// hardmine's (non-finite losses, bad or missing boxes), a dtype other than `T`.
pub fn ohem<T: Float, const K: usize>(
    miner: &Ohem<T, K>,
    losses: &Tensor,
    boxes: Option<&Tensor>,
) -> Result<Mined> {
    let l = values::<T>(&losses.detach())?;
    let b = boxes.map(|b| values::<T>(&b.detach())).transpose()?;
    let picked = miner.select(&l, b.as_deref()).map_err(hm)?;
    let mut mask = vec![T::ZERO; l.len()];
    let mut indices = Vec::with_capacity(picked.len());
    for &i in picked.indices() {
        if let Some(m) = mask.get_mut(i) {
            *m = T::ONE;
        }
        indices.push(u32::try_from(i).map_err(Error::wrap)?);
    }
    let n = indices.len();
    Ok(Mined {
        indices: Tensor::from_vec(indices, n, losses.device())?,
        mask: Tensor::from_vec(mask, l.len(), losses.device())?,
    })
}
