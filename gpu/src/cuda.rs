//! The CUDA backend: CUDA C kernels compiled by NVRTC when the context is made.
//!
//! Each kernel is fused (loss and gradient in one pass over the data) and evaluates one element
//! in double precision, rounding the gradient to f32 once, as the core evaluates f32 elements
//! in its accumulator type. Reductions are deterministic: a fixed grid, a fixed shared-memory
//! tree in each block, and the blocks' partial sums added on the host in block order, so the
//! same input gives the same bits.

use crate::kernels::{
    program, BoxKernel, CheckCode, SoftmaxKernel, CHECK_CODES, RADIX_DIGITS, THREADS,
};
use crate::{
    focal_labels_inputs, lengths_agree, ohem_select, radix_select, rank_key, softmax_inputs,
    DeviceKind, GpuError, Norm, MAX_GHM_BINS,
};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use hardmine::check::{elementwise_inputs, Targets, WeightCheck};
use hardmine::{
    Asl1, BceWithLogits, ClassLabel, Error, Ghm, GradientHistogram, Ohem, SigmoidFocal,
    SigmoidFocalLabels, SmoothL1, SoftmaxCrossEntropy, SoftmaxFocal,
};
use std::sync::Arc;

/// The core's element-wise rule for binary losses (weight first, targets in `[0, 1]`).
const LOSS_UNIT: (Targets, WeightCheck) = (Targets::Unit, WeightCheck::First);

/// Most blocks per launch; larger inputs are walked by grid-stride loops.
const MAX_BLOCKS: u32 = 4096;

/// f32 values in device memory: a batch that stays on the GPU between calls (made by
/// [`Gpu::upload`] or [`Gpu::zeros`], read back by [`Gpu::download`]).
#[derive(Debug)]
pub struct DeviceBuffer {
    slice: CudaSlice<f32>,
    len: usize,
}

impl DeviceBuffer {
    /// Its number of values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A launch over `n` elements: its element count, grid and the mean's divisor.
struct Shape {
    n32: u32,
    cfg: LaunchConfig,
    divisor: f64,
}

impl Shape {
    /// The shape of a batch of `n` (`None` when empty: the loss is 0 and nothing runs).
    fn of(n: usize, norm: Norm) -> Result<Option<Self>, GpuError> {
        if n == 0 {
            return Ok(None);
        }
        let n32 =
            u32::try_from(n).map_err(|_| GpuError::Driver("more than 2^32 - 1 elements".into()))?;
        Ok(Some(Self {
            n32,
            cfg: launch_config(n),
            divisor: norm.divisor(n),
        }))
    }

    /// Zeroed per-block partial sums.
    fn partials(&self, s: &Arc<CudaStream>) -> Result<CudaSlice<f64>, GpuError> {
        s.alloc_zeros::<f64>(self.cfg.grid_dim.0 as usize)
            .map_err(driver)
    }

    /// The blocks' partial sums added in block order (deterministic), over the divisor.
    fn total(&self, s: &Arc<CudaStream>, partial: &CudaSlice<f64>) -> Result<f32, GpuError> {
        let parts = s.clone_dtoh(partial).map_err(driver)?;
        Ok((parts.iter().sum::<f64>() / self.divisor) as f32)
    }
}

/// A CUDA context with the kernels loaded.
#[derive(Debug)]
pub struct Gpu {
    stream: Arc<CudaStream>,
    focal: CudaFunction,
    focal_labels: CudaFunction,
    box_loss: CudaFunction,
    softmax_rows: CudaFunction,
    bce: CudaFunction,
    check_inputs: CudaFunction,
    ghm_hist: CudaFunction,
    ghm_apply: CudaFunction,
    rank_hist: CudaFunction,
    rank_collect: CudaFunction,
}

/// The kernels compiled to PTX by NVRTC, for the device's architecture when `arch` is `None`
/// (as [`Gpu::new`] does) or for a named one such as `"compute_90"`. Needs only NVRTC, no
/// driver and no device: a CPU machine with NVRTC checks here that every kernel compiles.
///
/// # Errors
/// `NoDevice` without NVRTC; `Driver` with the compiler's log on a compile error.
pub fn ptx(arch: Option<&'static str>) -> Result<String, GpuError> {
    // SAFETY: this only tries to open the shared library.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(GpuError::NoDevice);
    }
    let opts = cudarc::nvrtc::CompileOptions {
        arch,
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(program(), opts)
        .map(|p| p.to_src())
        .map_err(driver)
}

/// The focal kernels' `(alpha, alpha_on, gamma)` of a focal loss (alpha 0 when off: unused).
fn focal_params(focal: &SigmoidFocal<f32>) -> (f64, i32, f64) {
    let alpha = focal.alpha();
    (
        f64::from(alpha.unwrap_or(0.0)),
        i32::from(alpha.is_some()),
        f64::from(focal.gamma()),
    )
}

fn driver(e: impl core::fmt::Display) -> GpuError {
    GpuError::Driver(e.to_string())
}

fn launch_config(n: usize) -> LaunchConfig {
    let blocks = (n as u64)
        .div_ceil(u64::from(THREADS))
        .clamp(1, u64::from(MAX_BLOCKS)) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

impl Gpu {
    /// A context on device 0 with the kernels compiled and loaded.
    ///
    /// # Errors
    /// `NoDevice` when the driver library, NVRTC or a device is missing (checked before any
    /// cudarc call that would panic); `Driver` for a compile or load failure.
    pub fn new() -> Result<Self, GpuError> {
        // SAFETY: these only try to open the shared libraries.
        let present = unsafe {
            cudarc::driver::sys::is_culib_present() && cudarc::nvrtc::sys::is_culib_present()
        };
        if !present {
            return Err(GpuError::NoDevice);
        }
        let ctx = CudaContext::new(0).map_err(|_| GpuError::NoDevice)?;
        let ptx = cudarc::nvrtc::compile_ptx(program()).map_err(driver)?;
        let module = ctx.load_module(ptx).map_err(driver)?;
        let load = |name| module.load_function(name).map_err(driver);
        Ok(Self {
            stream: ctx.default_stream(),
            focal: load("focal")?,
            focal_labels: load("focal_labels")?,
            box_loss: load("box_loss")?,
            softmax_rows: load("softmax_rows")?,
            bce: load("bce")?,
            check_inputs: load("check_inputs")?,
            ghm_hist: load("ghm_hist")?,
            ghm_apply: load("ghm_apply")?,
            rank_hist: load("rank_hist")?,
            rank_collect: load("rank_collect")?,
        })
    }

    /// Copies `values` to a new device buffer.
    ///
    /// # Errors
    /// `Driver` on a CUDA failure.
    pub fn upload(&self, values: &[f32]) -> Result<DeviceBuffer, GpuError> {
        // One element at least: an empty batch still gets a valid allocation.
        let slice = if values.is_empty() {
            self.stream.alloc_zeros::<f32>(1)
        } else {
            self.stream.clone_htod(values)
        }
        .map_err(driver)?;
        Ok(DeviceBuffer {
            slice,
            len: values.len(),
        })
    }

    /// A device buffer of `n` zeros (a gradient to write into).
    ///
    /// # Errors
    /// `Driver` on a CUDA failure.
    pub fn zeros(&self, n: usize) -> Result<DeviceBuffer, GpuError> {
        let slice = self.stream.alloc_zeros::<f32>(n.max(1)).map_err(driver)?;
        Ok(DeviceBuffer { slice, len: n })
    }

    /// Copies a device buffer back into `out`.
    ///
    /// # Errors
    /// `Input(LengthMismatch)` unless `out` has the buffer's length; `Driver` on a CUDA
    /// failure.
    pub fn download(&self, buffer: &DeviceBuffer, out: &mut [f32]) -> Result<(), GpuError> {
        if out.len() != buffer.len {
            return Err(Error::LengthMismatch {
                expected: buffer.len,
                got: out.len(),
            }
            .into());
        }
        if out.is_empty() {
            return Ok(());
        }
        let src = buffer.slice.slice(..buffer.len);
        self.stream.memcpy_dtoh(&src, out).map_err(driver)
    }

    /// The host-slice form of a call on device buffers: uploads the inputs, runs `run` on them
    /// with a zeroed gradient, and copies the gradient back into `grad`.
    fn via_device(
        &self,
        (xs, ts, ws): (&[f32], &[f32], Option<&[f32]>),
        grad: &mut [f32],
        run: impl FnOnce(
            &DeviceBuffer,
            &DeviceBuffer,
            Option<&DeviceBuffer>,
            &mut DeviceBuffer,
        ) -> Result<f32, GpuError>,
    ) -> Result<f32, GpuError> {
        let (x, t) = (self.upload(xs)?, self.upload(ts)?);
        let w = ws.map(|w| self.upload(w)).transpose()?;
        let mut g = self.zeros(xs.len())?;
        let loss = run(&x, &t, w.as_ref(), &mut g)?;
        self.download(&g, grad)?;
        Ok(loss)
    }

    /// Validates device-resident inputs on the device with the core's rules and precedence
    /// (`targets`: what the loss accepts as targets; `weight_last`: GHM's order, the label
    /// weight checked after the target).
    fn check_on_device(
        &self,
        (xs, ts, weights): (&DeviceBuffer, &DeviceBuffer, Option<&DeviceBuffer>),
        grad: &DeviceBuffer,
        targets: Targets,
        weight_last: bool,
    ) -> Result<(), GpuError> {
        let n = xs.len;
        lengths_agree(n, [Some(ts.len), weights.map(|w| w.len), Some(grad.len)])?;
        let Some(shape) = Shape::of(n, Norm::SUM)? else {
            return Ok(());
        };
        let s = &self.stream;
        let mut first = s.clone_htod(&[u64::MAX]).map_err(driver)?;
        let (has_w, unit, last) = (
            i32::from(weights.is_some()),
            i32::from(targets == Targets::Unit),
            i32::from(weight_last),
        );
        let w = weights.unwrap_or(xs);
        let mut b = s.launch_builder(&self.check_inputs);
        b.arg(&xs.slice).arg(&ts.slice).arg(&w.slice);
        b.arg(&has_w)
            .arg(&unit)
            .arg(&last)
            .arg(&shape.n32)
            .arg(&mut first);
        // SAFETY: the argument list matches `check_inputs`; every buffer holds `n` values
        // (checked above) and `first` one.
        unsafe { b.launch(shape.cfg) }.map_err(driver)?;
        let key = s.clone_dtoh(&first).map_err(driver)?;
        match key.first().copied() {
            Some(k) if k != u64::MAX => {
                let index = usize::try_from(k / CHECK_CODES).unwrap_or(usize::MAX);
                Err(match CheckCode::of_key(k) {
                    Some(CheckCode::InvalidTarget) => Error::InvalidTarget { index },
                    Some(CheckCode::NonFinite | CheckCode::LabelWeight) | None => {
                        Error::NonFinite { index }
                    }
                }
                .into())
            }
            _ => Ok(()),
        }
    }

    /// Launches the fused focal kernel on validated device buffers; returns the reduced loss.
    fn run_focal(
        &self,
        loss: &SigmoidFocal<f32>,
        x: &DeviceBuffer,
        t: &DeviceBuffer,
        g: &mut DeviceBuffer,
    ) -> Result<f32, GpuError> {
        let norm = Norm::new(loss.reduction(), loss.avg_factor().map(f64::from))?;
        let Some(shape) = Shape::of(x.len, norm)? else {
            return Ok(0.0);
        };
        let s = &self.stream;
        let mut partial = shape.partials(s)?;
        let ((a, on, gm), scale) = (focal_params(loss), 1.0 / shape.divisor);
        let mut b = s.launch_builder(&self.focal);
        b.arg(&x.slice)
            .arg(&t.slice)
            .arg(&mut g.slice)
            .arg(&mut partial)
            .arg(&shape.n32);
        b.arg(&a).arg(&on).arg(&gm).arg(&scale);
        // SAFETY: the argument list matches the kernel's signature; buffers hold `n` elements and
        // `partial` one per block.
        unsafe { b.launch(shape.cfg) }.map_err(driver)?;
        shape.total(s, &partial)
    }

    /// Launches the fused BCE kernel on validated device buffers; returns the reduced loss.
    fn run_bce(
        &self,
        loss: &BceWithLogits,
        (x, t, w): (&DeviceBuffer, &DeviceBuffer, Option<&DeviceBuffer>),
        g: &mut DeviceBuffer,
    ) -> Result<f32, GpuError> {
        let norm = Norm::new(loss.reduction(), loss.avg_factor())?;
        let Some(shape) = Shape::of(x.len, norm)? else {
            return Ok(0.0);
        };
        let s = &self.stream;
        let mut partial = shape.partials(s)?;
        let (has_w, scale) = (i32::from(w.is_some()), 1.0 / shape.divisor);
        let w = w.unwrap_or(x);
        let mut b = s.launch_builder(&self.bce);
        b.arg(&x.slice)
            .arg(&t.slice)
            .arg(&w.slice)
            .arg(&has_w)
            .arg(&mut g.slice)
            .arg(&mut partial);
        b.arg(&shape.n32).arg(&scale);
        // SAFETY: as in `run_focal`; `w` holds `n` weights when `has_w` is set.
        unsafe { b.launch(shape.cfg) }.map_err(driver)?;
        shape.total(s, &partial)
    }

    /// Sigmoid focal loss (torchvision semantics, as the core's [`SigmoidFocal`], whose alpha,
    /// gamma and reduction it takes) and its gradient.
    ///
    /// # Errors
    /// `Input` for the core's bad inputs; `Driver` on a CUDA failure.
    pub fn sigmoid_focal(
        &self,
        loss: &SigmoidFocal<f32>,
        logits: &[f32],
        targets: &[f32],
        grad: &mut [f32],
    ) -> Result<f32, GpuError> {
        Norm::new(loss.reduction(), loss.avg_factor().map(f64::from))?;
        elementwise_inputs((logits, targets, None), Some(grad.len()), LOSS_UNIT)?;
        self.via_device((logits, targets, None), grad, |x, t, _, g| {
            self.run_focal(loss, x, t, g)
        })
    }

    /// [`sigmoid_focal`](Self::sigmoid_focal) on device-resident buffers: the inputs are
    /// validated by a kernel (the core's rules and precedence) and the gradient stays on the
    /// device; only the blocks' partial sums come back.
    ///
    /// # Errors
    /// As [`sigmoid_focal`](Self::sigmoid_focal).
    pub fn sigmoid_focal_on_device(
        &self,
        loss: &SigmoidFocal<f32>,
        logits: &DeviceBuffer,
        targets: &DeviceBuffer,
        grad: &mut DeviceBuffer,
    ) -> Result<f32, GpuError> {
        Norm::new(loss.reduction(), loss.avg_factor().map(f64::from))?;
        self.check_on_device((logits, targets, None), grad, Targets::Unit, false)?;
        self.run_focal(loss, logits, targets, grad)
    }

    /// Binary cross-entropy with logits (PyTorch semantics, as the core's [`BceWithLogits`],
    /// whose reduction it takes; optional weights) and its gradient.
    ///
    /// # Errors
    /// As [`sigmoid_focal`](Self::sigmoid_focal).
    pub fn bce(
        &self,
        loss: &BceWithLogits,
        logits: &[f32],
        targets: &[f32],
        weights: Option<&[f32]>,
        grad: &mut [f32],
    ) -> Result<f32, GpuError> {
        Norm::new(loss.reduction(), loss.avg_factor())?;
        elementwise_inputs((logits, targets, weights), Some(grad.len()), LOSS_UNIT)?;
        self.via_device((logits, targets, weights), grad, |x, t, w, g| {
            self.run_bce(loss, (x, t, w), g)
        })
    }

    /// [`bce`](Self::bce) on device-resident buffers (see
    /// [`sigmoid_focal_on_device`](Self::sigmoid_focal_on_device)).
    ///
    /// # Errors
    /// As [`sigmoid_focal`](Self::sigmoid_focal).
    pub fn bce_on_device(
        &self,
        loss: &BceWithLogits,
        logits: &DeviceBuffer,
        targets: &DeviceBuffer,
        weights: Option<&DeviceBuffer>,
        grad: &mut DeviceBuffer,
    ) -> Result<f32, GpuError> {
        Norm::new(loss.reduction(), loss.avg_factor())?;
        self.check_on_device((logits, targets, weights), grad, Targets::Unit, false)?;
        self.run_bce(loss, (logits, targets, weights), grad)
    }

    /// Sigmoid focal loss in label form (as the core's [`SigmoidFocalLabels`], whose
    /// classes, focal parameters, reduction and per-class alphas it takes): `logits`
    /// `[N x C]`, one label per row (outside `0..C`: background), optional row weights.
    ///
    /// # Errors
    /// `Input` for the core's bad inputs (`LengthMismatch`; `NonFinite` for a logit, then for a
    /// weight, indexed into its slice); `Driver` on a CUDA failure.
    pub fn sigmoid_focal_labels(
        &self,
        head: &SigmoidFocalLabels<'_, f32>,
        logits: &[f32],
        labels: &[i32],
        label_weights: Option<&[f32]>,
        grad: &mut [f32],
    ) -> Result<f32, GpuError> {
        let focal = head.focal();
        let norm = Norm::new(focal.reduction(), focal.avg_factor().map(f64::from))?;
        let c = head.classes();
        let n = focal_labels_inputs((labels.len(), c), logits, label_weights, grad.len())?;
        let Some(shape) = Shape::of(n, norm)? else {
            return Ok(0.0);
        };
        let c32 = u32::try_from(c).map_err(|_| Error::InvalidParameter("classes"))?;
        let s = &self.stream;
        let x = self.upload(logits)?;
        let y = s
            .clone_htod(if labels.is_empty() {
                &[0i32][..]
            } else {
                labels
            })
            .map_err(driver)?;
        let w = self.upload(label_weights.unwrap_or(&[0.0]))?;
        let ca = self.upload(head.class_alpha().unwrap_or(&[0.0]))?;
        let mut g = self.zeros(n)?;
        let mut partial = shape.partials(s)?;
        let (has_w, has_ca) = (
            i32::from(label_weights.is_some()),
            i32::from(head.class_alpha().is_some()),
        );
        let ((a, on, gm), scale) = (focal_params(focal), 1.0 / shape.divisor);
        let mut b = s.launch_builder(&self.focal_labels);
        b.arg(&x.slice).arg(&y).arg(&w.slice).arg(&has_w);
        b.arg(&ca.slice)
            .arg(&has_ca)
            .arg(&mut g.slice)
            .arg(&mut partial);
        b.arg(&shape.n32)
            .arg(&c32)
            .arg(&a)
            .arg(&on)
            .arg(&gm)
            .arg(&scale);
        // SAFETY: the argument list matches `focal_labels`; `x` and `g` hold N * C values,
        // `y` and `w` (when `has_w`) N, `ca` (when `has_ca`) C.
        unsafe { b.launch(shape.cfg) }.map_err(driver)?;
        let loss = shape.total(s, &partial)?;
        self.download(&g, grad)?;
        Ok(loss)
    }

    /// Smooth L1 (as the core's [`SmoothL1`], whose beta and reduction it takes) and its
    /// gradient.
    ///
    /// # Errors
    /// `Input` for the core's bad inputs (`LengthMismatch`, `NonFinite`); `Driver` on a CUDA
    /// failure.
    pub fn smooth_l1(
        &self,
        loss: &SmoothL1<f32>,
        pred: &[f32],
        target: &[f32],
        grad: &mut [f32],
    ) -> Result<f32, GpuError> {
        let norm = Norm::new(loss.reduction(), loss.avg_factor().map(f64::from))?;
        let kernel = (BoxKernel::SmoothL1, f64::from(loss.beta()), norm);
        self.box_loss(kernel, pred, target, grad)
    }

    /// ASL1 (as the core's [`Asl1`], whose mu and reduction it takes) and its gradient.
    ///
    /// # Errors
    /// As [`smooth_l1`](Self::smooth_l1).
    pub fn asl1(
        &self,
        loss: &Asl1<f32>,
        pred: &[f32],
        target: &[f32],
        grad: &mut [f32],
    ) -> Result<f32, GpuError> {
        let norm = Norm::new(loss.reduction(), loss.avg_factor().map(f64::from))?;
        let kernel = (BoxKernel::Asl1, f64::from(loss.mu()), norm);
        self.box_loss(kernel, pred, target, grad)
    }

    /// A box loss of `kind` with its parameter and normalisation.
    fn box_loss(
        &self,
        (kind, param, norm): (BoxKernel, f64, Norm),
        pred: &[f32],
        target: &[f32],
        grad: &mut [f32],
    ) -> Result<f32, GpuError> {
        elementwise_inputs(
            (pred, target, None),
            Some(grad.len()),
            (Targets::Any, WeightCheck::First),
        )?;
        self.via_device((pred, target, None), grad, |p, t, _, g| {
            let Some(shape) = Shape::of(p.len, norm)? else {
                return Ok(0.0);
            };
            let s = &self.stream;
            let mut partial = shape.partials(s)?;
            let (kind, scale) = (i32::from(kind), 1.0 / shape.divisor);
            let mut b = s.launch_builder(&self.box_loss);
            b.arg(&p.slice)
                .arg(&t.slice)
                .arg(&mut g.slice)
                .arg(&mut partial);
            b.arg(&shape.n32).arg(&kind).arg(&param).arg(&scale);
            // SAFETY: the argument list matches `box_loss`; buffers hold `n` values.
            unsafe { b.launch(shape.cfg) }.map_err(driver)?;
            shape.total(s, &partial)
        })
    }

    /// Softmax cross-entropy (as the core's [`SoftmaxCrossEntropy`], whose classes and
    /// reduction it takes): `logits` `[N x C]`, one label per row, negative to ignore the row.
    /// `Mean` divides by the rows counted, as PyTorch.
    ///
    /// # Errors
    /// `Input` for the core's bad inputs (`LengthMismatch`, `NonFinite` for a logit,
    /// `InvalidTarget` for a label `>= C`); `Driver` on a CUDA failure.
    pub fn softmax_cross_entropy(
        &self,
        loss: &SoftmaxCrossEntropy,
        logits: &[f32],
        labels: &[i32],
        grad: &mut [f32],
    ) -> Result<f32, GpuError> {
        let rows = (
            loss.classes(),
            Norm::new(loss.reduction(), loss.avg_factor())?,
        );
        let kind = (SoftmaxKernel::CrossEntropy, 1.0, 0.0);
        self.softmax(rows, kind, logits, labels, grad)
    }

    /// Softmax focal loss (as the core's [`SoftmaxFocal`]); see
    /// [`softmax_cross_entropy`](Self::softmax_cross_entropy).
    ///
    /// # Errors
    /// As [`softmax_cross_entropy`](Self::softmax_cross_entropy).
    pub fn softmax_focal(
        &self,
        loss: &SoftmaxFocal<f32>,
        logits: &[f32],
        labels: &[i32],
        grad: &mut [f32],
    ) -> Result<f32, GpuError> {
        let norm = Norm::new(loss.reduction(), loss.avg_factor().map(f64::from))?;
        let rows = (loss.classes(), norm);
        let (alpha, gamma) = (f64::from(loss.alpha()), f64::from(loss.gamma()));
        self.softmax(
            rows,
            (SoftmaxKernel::Focal, alpha, gamma),
            logits,
            labels,
            grad,
        )
    }

    /// The softmax rows kernel over rows of `classes` logits, for `kind` with its alpha and
    /// gamma (unused by cross-entropy).
    fn softmax(
        &self,
        (classes, norm): (usize, Norm),
        (kind, alpha, gamma): (SoftmaxKernel, f64, f64),
        logits: &[f32],
        labels: &[i32],
        grad: &mut [f32],
    ) -> Result<f32, GpuError> {
        let rows = labels.len();
        let counted = softmax_inputs(classes, logits, labels, grad.len())?;
        let n = logits.len();
        let c32 = u32::try_from(classes).map_err(|_| Error::InvalidParameter("classes"))?;
        let Some(shape) = Shape::of(rows, Norm::SUM)? else {
            return Ok(0.0);
        };
        // The mean over the counted rows (none counted: the sum, which is 0), or over the
        // loss's avg_factor + eps.
        let divisor = norm.divisor(counted);
        let s = &self.stream;
        let x = self.upload(logits)?;
        let y = s.clone_htod(labels).map_err(driver)?;
        let mut g = self.zeros(n)?;
        let mut partial = shape.partials(s)?;
        let (kind, scale) = (i32::from(kind), 1.0 / divisor);
        let mut b = s.launch_builder(&self.softmax_rows);
        b.arg(&x.slice).arg(&y).arg(&mut g.slice).arg(&mut partial);
        b.arg(&shape.n32)
            .arg(&c32)
            .arg(&kind)
            .arg(&alpha)
            .arg(&gamma)
            .arg(&scale);
        // SAFETY: the argument list matches `softmax_rows`; `x` and `g` hold rows * classes
        // values, `y` one label per row.
        unsafe { b.launch(shape.cfg) }.map_err(driver)?;
        let parts = s.clone_dtoh(&partial).map_err(driver)?;
        self.download(&g, grad)?;
        Ok((parts.iter().sum::<f64>() / divisor) as f32)
    }

    /// GHM-C or GHM-R on one batch, as the core's [`GhmC`](hardmine::GhmC) /
    /// [`GhmR`](hardmine::GhmR) (mmdetection semantics): the gradient-norm histogram is
    /// counted on the device, the moving average advances in `ghm` on the host (the core's own
    /// code, so a sequence of batches follows the core's state), and the weighting pass runs
    /// on the device. Returns the loss; writes the gradient.
    ///
    /// # Errors
    /// `Input` for the core's bad inputs (precedence per index: input, target, label weight;
    /// targets in `[0, 1]` for GHM-C) and for more than [`MAX_GHM_BINS`] bins; `Driver` on a
    /// CUDA failure. `ghm` is unchanged after any `Err`.
    pub fn ghm<K: DeviceKind, const BINS: usize>(
        &self,
        ghm: &mut Ghm<f32, K, BINS>,
        xs: &[f32],
        ts: &[f32],
        label_weights: Option<&[f32]>,
        grad: &mut [f32],
    ) -> Result<f32, GpuError> {
        elementwise_inputs(
            (xs, ts, label_weights),
            Some(grad.len()),
            (K::TARGETS, WeightCheck::Last),
        )?;
        if xs.is_empty() {
            // The core's one-shot call counts nothing, so nothing moves.
            return Ok(0.0);
        }
        self.via_device((xs, ts, label_weights), grad, |x, t, w, g| {
            self.ghm_run(ghm, (x, t, w), g)
        })
    }

    /// [`ghm`](Self::ghm) on device-resident buffers (validated by a kernel; the gradient
    /// stays on the device).
    ///
    /// # Errors
    /// As [`ghm`](Self::ghm).
    pub fn ghm_on_device<K: DeviceKind, const BINS: usize>(
        &self,
        ghm: &mut Ghm<f32, K, BINS>,
        xs: &DeviceBuffer,
        ts: &DeviceBuffer,
        label_weights: Option<&DeviceBuffer>,
        grad: &mut DeviceBuffer,
    ) -> Result<f32, GpuError> {
        self.check_on_device((xs, ts, label_weights), grad, K::TARGETS, true)?;
        self.ghm_run(ghm, (xs, ts, label_weights), grad)
    }

    /// The two GHM passes on validated device buffers.
    fn ghm_run<K: DeviceKind, const BINS: usize>(
        &self,
        ghm: &mut Ghm<f32, K, BINS>,
        (x, t, w): (&DeviceBuffer, &DeviceBuffer, Option<&DeviceBuffer>),
        g: &mut DeviceBuffer,
    ) -> Result<f32, GpuError> {
        let bins = ghm.density().bins();
        if bins > MAX_GHM_BINS {
            return Err(Error::InvalidParameter("bins").into());
        }
        let Some(shape) = Shape::of(x.len, Norm::SUM)? else {
            return Ok(0.0);
        };
        let (kind, mu) = ghm.kind().kernel();
        let kind = i32::from(kind);
        let s = &self.stream;
        let has_w = i32::from(w.is_some());
        let w = w.unwrap_or(x);
        let bins32 = bins as i32;
        let mut counts = s.alloc_zeros::<u64>(bins).map_err(driver)?;
        let mut b = s.launch_builder(&self.ghm_hist);
        b.arg(&x.slice)
            .arg(&t.slice)
            .arg(&w.slice)
            .arg(&has_w)
            .arg(&shape.n32);
        b.arg(&kind).arg(&mu).arg(&bins32).arg(&mut counts);
        // SAFETY: the argument list matches `ghm_hist`; `counts` holds `bins <= MAX_GHM_BINS`.
        unsafe { b.launch(shape.cfg) }.map_err(driver)?;
        let counts = s.clone_dtoh(&counts).map_err(driver)?;
        // The moving average advances on a copy, committed only when the batch succeeds.
        let mut next = *ghm;
        let weights = next.finish(&GradientHistogram::from_counts(&counts)?)?;
        let n_live = weights.valid_bins() as f64;
        let loss_weight = f64::from(ghm.loss_weight());
        let factor: Vec<f64> = weights
            .divisors()
            .iter()
            .map(|&d| {
                if d > 0.0 {
                    loss_weight / (n_live * d)
                } else {
                    0.0
                }
            })
            .collect();
        let factor = s.clone_htod(&factor).map_err(driver)?;
        let mut partial = shape.partials(s)?;
        let mut b = s.launch_builder(&self.ghm_apply);
        b.arg(&x.slice)
            .arg(&t.slice)
            .arg(&w.slice)
            .arg(&has_w)
            .arg(&shape.n32);
        b.arg(&kind).arg(&mu).arg(&bins32).arg(&factor);
        b.arg(&mut g.slice).arg(&mut partial);
        // SAFETY: the argument list matches `ghm_apply`; `factor` holds `bins` values.
        unsafe { b.launch(shape.cfg) }.map_err(driver)?;
        let loss = shape.total(s, &partial)?;
        *ghm = next;
        Ok(loss)
    }

    /// OHEM on the device, equal to the core's `Ohem::select(losses, boxes).indices()`
    /// (ascending indices): the ranking (loss descending, ties to the lower index) is a radix
    /// select over 64-bit keys, eight passes of 8 bits, each a device histogram; the `m`
    /// highest-ranked indices are collected on the device and ordered on the host. Without NMS
    /// `m = k`. With NMS the core's own greedy walk runs on the host over the top `m = 4k`
    /// candidates in rank order (a prefix of the full walk, so the same decisions); when it
    /// keeps fewer than `k`, `m` doubles, up to every element.
    ///
    /// # Errors
    /// `Input` for the core's bad inputs (non-finite losses, missing or invalid boxes when NMS
    /// is on), checked on the host first; `Driver` on a CUDA failure.
    pub fn ohem<const K: usize>(
        &self,
        ohem: &Ohem<f32, K>,
        losses: &[f32],
        boxes: Option<&[f32]>,
    ) -> Result<Vec<usize>, GpuError> {
        self.ohem_labels::<u8, K>(ohem, losses, boxes, None)
    }

    /// As [`ohem`](Self::ohem), with NMS only between boxes of one label, as the core's
    /// `Ohem::select_per_label` (the original per-class NMS).
    ///
    /// # Errors
    /// As [`ohem`](Self::ohem), and `Input(LengthMismatch)` for labels of another length.
    pub fn ohem_per_label<L: ClassLabel, const K: usize>(
        &self,
        ohem: &Ohem<f32, K>,
        losses: &[f32],
        boxes: Option<&[f32]>,
        labels: &[L],
    ) -> Result<Vec<usize>, GpuError> {
        self.ohem_labels(ohem, losses, boxes, Some(labels))
    }

    fn ohem_labels<L: ClassLabel, const K: usize>(
        &self,
        ohem: &Ohem<f32, K>,
        losses: &[f32],
        boxes: Option<&[f32]>,
        labels: Option<&[L]>,
    ) -> Result<Vec<usize>, GpuError> {
        let mut device = None;
        ohem_select(ohem, losses, boxes, labels, |m| {
            let (shape, d_losses) = match &device {
                Some(d) => d,
                None => {
                    let shape = Shape::of(losses.len(), Norm::SUM)?
                        .ok_or_else(|| driver("an empty batch has no ranking"))?;
                    let d_losses = self.stream.clone_htod(losses).map_err(driver)?;
                    device.insert((shape, d_losses))
                }
            };
            self.top_ranked(shape, d_losses, losses, m)
        })
    }

    /// The `m` (at most the batch's length) highest-ranked indices of the losses on the device
    /// (`losses` is their host copy), in rank order.
    fn top_ranked(
        &self,
        shape: &Shape,
        d_losses: &CudaSlice<f32>,
        losses: &[f32],
        m: usize,
    ) -> Result<Vec<usize>, GpuError> {
        let s = &self.stream;
        let mut counts = s.alloc_zeros::<u32>(RADIX_DIGITS).map_err(driver)?;
        let threshold = radix_select(m as u64, |prefix, mask, shift| {
            s.memset_zeros(&mut counts).map_err(driver)?;
            let mut b = s.launch_builder(&self.rank_hist);
            b.arg(d_losses).arg(&shape.n32).arg(&prefix).arg(&mask);
            b.arg(&shift).arg(&mut counts);
            // SAFETY: the argument list matches `rank_hist`; `counts` holds RADIX_DIGITS values.
            unsafe { b.launch(shape.cfg) }.map_err(driver)?;
            s.clone_dtoh(&counts).map_err(driver)
        })?;
        let m32 = u32::try_from(m).map_err(driver)?;
        let mut out = s.alloc_zeros::<u32>(m.max(1)).map_err(driver)?;
        let mut count = s.alloc_zeros::<u32>(1).map_err(driver)?;
        let mut b = s.launch_builder(&self.rank_collect);
        b.arg(d_losses)
            .arg(&shape.n32)
            .arg(&threshold)
            .arg(&mut out);
        b.arg(&m32).arg(&mut count);
        // SAFETY: the argument list matches `rank_collect`; it writes at most `m32` of `out`.
        unsafe { b.launch(shape.cfg) }.map_err(driver)?;
        let got = s.clone_dtoh(&count).map_err(driver)?;
        if got.first().copied() != Some(m32) {
            return Err(GpuError::Driver(format!(
                "radix select collected {got:?} of {m} indices"
            )));
        }
        let mut top: Vec<usize> = s
            .clone_dtoh(&out)
            .map_err(driver)?
            .into_iter()
            .take(m)
            .map(|i| i as usize)
            .collect();
        top.sort_unstable_by_key(|&i| core::cmp::Reverse(rank_key(losses, i)));
        Ok(top)
    }
}
