//! The CUDA backend: CUDA C kernels compiled by NVRTC when the context is made.
//!
//! Each kernel is fused (loss and gradient in one pass over the data) and evaluates one element
//! in double precision, rounding the gradient to f32 once, as the core evaluates f32 elements
//! in its accumulator type. Reductions are deterministic: a fixed grid, a fixed shared-memory
//! tree in each block, and the blocks' partial sums added on the host in block order, so the
//! same input gives the same bits.

use crate::{reduction_divisor, validate, validate_ghm, GpuError};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use hardmine::{Error, Ghm, GhmC, GhmKind, GhmR, GradientHistogram, Reduction, SigmoidFocal};
use std::sync::Arc;

/// Threads per block (a power of two: the reduction tree halves it).
const THREADS: u32 = 256;
/// Most blocks per launch; larger inputs are walked by grid-stride loops.
const MAX_BLOCKS: u32 = 4096;

/// The most GHM bins the kernels' shared-memory histogram holds.
pub const MAX_GHM_BINS: usize = 64;

const KERNELS: &str = r#"
#define MAX_BINS 64
struct Logistic { double pos, neg, lp; };

__device__ Logistic logistic(double x) {
    double e = exp(-fabs(x));
    double big = 1.0 / (1.0 + e);
    double small = e * big;
    Logistic l;
    l.pos = x >= 0.0 ? big : small;
    l.neg = x >= 0.0 ? small : big;
    l.lp = log1p(e);
    return l;
}

__device__ void block_sum(double acc, double* partial) {
    __shared__ double s[256];
    s[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned k = blockDim.x / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k) s[threadIdx.x] += s[threadIdx.x + k];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = s[0];
}

extern "C" __global__ void focal(const float* xs, const float* ts, float* grad, double* partial,
                                 unsigned n, double alpha, int alpha_on, double gamma, double scale) {
    double acc = 0.0;
    for (unsigned k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
        double x = xs[k], t = ts[k];
        Logistic l = logistic(x);
        double ce = (x > 0.0 ? (1.0 - t) * x : -(t * x)) + l.lp;
        double q = t * l.neg + (1.0 - t) * l.pos;
        double m = pow(q, gamma);
        double s = l.pos * l.neg;
        double r = q > 0.0 ? fmin(s / q, 1.0) : 1.0;
        double inner = ((1.0 - t) * l.pos - t * l.neg) + gamma * ce * ((1.0 - t) - t) * r;
        double at = alpha_on ? alpha * t + (1.0 - alpha) * (1.0 - t) : 1.0;
        acc += at * ce * m;
        grad[k] = (float)(at * m * inner * scale);
    }
    block_sum(acc, partial);
}

// GHM: one element's gradient norm (rounded to f32, then binned in f32 as the core bins),
// loss and gradient. kind 0: GHM-C (BCE on logit x, target t); kind 1: GHM-R (ASL1 on
// d = x - t, rounded to f32 as the core subtracts).
__device__ int ghm_bin(float norm, int bins) {
    int b = (int)floorf(norm * (float)bins);
    return b < 0 ? 0 : (b > bins - 1 ? bins - 1 : b);
}

__device__ void ghm_element(int kind, double mu, float xf, float tf,
                            float* norm, double* loss, double* grad) {
    if (kind == 0) {
        double x = xf, t = tf;
        Logistic l = logistic(x);
        double g = (1.0 - t) * l.pos - t * l.neg;
        *norm = fabsf((float)g);
        *loss = (x > 0.0 ? (1.0 - t) * x : -(t * x)) + l.lp;
        *grad = g;
    } else {
        double d = (double)(xf - tf);
        double a = fabs(d);
        double root = sqrt(d * d + mu * mu);
        *norm = (float)(a / root);
        *loss = a > mu ? root - mu : d * d / (root + mu);
        *grad = d / root;
    }
}

// Pass 1: each block counts its elements' bins in shared memory, then adds its counts to the
// global ones (integer atomics: the totals do not depend on the order).
extern "C" __global__ void ghm_hist(const float* xs, const float* ts, const float* ws, int has_w,
                                    unsigned n, int kind, double mu, int bins,
                                    unsigned long long* counts) {
    __shared__ unsigned local[MAX_BINS];
    for (int b = threadIdx.x; b < MAX_BINS; b += blockDim.x) local[b] = 0;
    __syncthreads();
    for (unsigned k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
        if (has_w && !(ws[k] > 0.0f)) continue;
        float norm;
        double loss, grad;
        ghm_element(kind, mu, xs[k], ts[k], &norm, &loss, &grad);
        atomicAdd(&local[ghm_bin(norm, bins)], 1u);
    }
    __syncthreads();
    for (int b = threadIdx.x; b < bins; b += blockDim.x)
        if (local[b] != 0) atomicAdd(&counts[b], (unsigned long long)local[b]);
}

// Pass 2: each element weighted by its bin's factor loss_weight / (n D_b) (0 for a masked
// element); the weighted losses summed by the deterministic block tree.
extern "C" __global__ void ghm_apply(const float* xs, const float* ts, const float* ws, int has_w,
                                     unsigned n, int kind, double mu, int bins,
                                     const double* factor, float* grad, double* partial) {
    double acc = 0.0;
    for (unsigned k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
        float out = 0.0f;
        if (!has_w || ws[k] > 0.0f) {
            float norm;
            double loss, g;
            ghm_element(kind, mu, xs[k], ts[k], &norm, &loss, &g);
            double f = factor[ghm_bin(norm, bins)];
            acc += f * loss;
            out = (float)(f * g);
        }
        grad[k] = out;
    }
    block_sum(acc, partial);
}

extern "C" __global__ void bce(const float* xs, const float* ts, const float* ws, int has_w,
                               float* grad, double* partial, unsigned n, double scale) {
    double acc = 0.0;
    for (unsigned k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
        double x = xs[k], t = ts[k], w = has_w ? (double)ws[k] : 1.0;
        Logistic l = logistic(x);
        double ce = (x > 0.0 ? (1.0 - t) * x : -(t * x)) + l.lp;
        acc += w * ce;
        grad[k] = (float)(w * ((1.0 - t) * l.pos - t * l.neg) * scale);
    }
    block_sum(acc, partial);
}
"#;

/// One batch on the device: inputs, gradient, the blocks' partial sums and the launch shape.
struct Staged {
    x: CudaSlice<f32>,
    t: CudaSlice<f32>,
    g: CudaSlice<f32>,
    partial: CudaSlice<f64>,
    n32: u32,
    cfg: LaunchConfig,
    divisor: f64,
}

/// A CUDA context with the kernels loaded.
#[derive(Debug)]
pub struct Gpu {
    stream: Arc<CudaStream>,
    focal: CudaFunction,
    bce: CudaFunction,
    ghm_hist: CudaFunction,
    ghm_apply: CudaFunction,
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
    cudarc::nvrtc::compile_ptx_with_opts(KERNELS, opts)
        .map(|p| p.to_src())
        .map_err(driver)
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
        let ptx = cudarc::nvrtc::compile_ptx(KERNELS).map_err(driver)?;
        let module = ctx.load_module(ptx).map_err(driver)?;
        let load = |name| module.load_function(name).map_err(driver);
        Ok(Self {
            stream: ctx.default_stream(),
            focal: load("focal")?,
            bce: load("bce")?,
            ghm_hist: load("ghm_hist")?,
            ghm_apply: load("ghm_apply")?,
        })
    }

    /// Copies a validated batch to the device and allocates its gradient and partial
    /// sums (`None` for an empty batch, whose loss is 0).
    fn stage(
        &self,
        logits: &[f32],
        targets: &[f32],
        reduction: Reduction,
    ) -> Result<Option<Staged>, GpuError> {
        let n = logits.len();
        if n == 0 {
            return Ok(None);
        }
        let n32 =
            u32::try_from(n).map_err(|_| GpuError::Driver("more than 2^32 - 1 elements".into()))?;
        let s = &self.stream;
        let cfg = launch_config(n);
        Ok(Some(Staged {
            x: s.clone_htod(logits).map_err(driver)?,
            t: s.clone_htod(targets).map_err(driver)?,
            g: s.alloc_zeros::<f32>(n).map_err(driver)?,
            partial: s
                .alloc_zeros::<f64>(cfg.grid_dim.0 as usize)
                .map_err(driver)?,
            n32,
            cfg,
            divisor: reduction_divisor(reduction, n),
        }))
    }

    /// Copies the gradient back and sums the blocks' partial sums in block order.
    fn finish(&self, st: &Staged, grad: &mut [f32]) -> Result<f32, GpuError> {
        self.stream.memcpy_dtoh(&st.g, grad).map_err(driver)?;
        let parts = self.stream.clone_dtoh(&st.partial).map_err(driver)?;
        Ok((parts.iter().sum::<f64>() / st.divisor) as f32)
    }

    /// Sigmoid focal loss (torchvision semantics, as the core's `SigmoidFocal`) and its gradient.
    ///
    /// # Errors
    /// `Input` for the core's bad inputs and parameters; `Driver` on a CUDA failure.
    pub fn sigmoid_focal(
        &self,
        logits: &[f32],
        targets: &[f32],
        alpha: f32,
        gamma: f32,
        reduction: Reduction,
        grad: &mut [f32],
    ) -> Result<f32, GpuError> {
        SigmoidFocal::new(alpha, gamma)?;
        validate(logits, targets, None, grad)?;
        let Some(mut st) = self.stage(logits, targets, reduction)? else {
            return Ok(0.0);
        };
        let (a, on, gm, scale) = (
            f64::from(alpha),
            i32::from(alpha != -1.0),
            f64::from(gamma),
            1.0 / st.divisor,
        );
        let mut b = self.stream.launch_builder(&self.focal);
        b.arg(&st.x)
            .arg(&st.t)
            .arg(&mut st.g)
            .arg(&mut st.partial)
            .arg(&st.n32);
        b.arg(&a).arg(&on).arg(&gm).arg(&scale);
        // SAFETY: the argument list matches the kernel's signature; buffers hold `n` elements and
        // `partial` one per block.
        unsafe { b.launch(st.cfg) }.map_err(driver)?;
        self.finish(&st, grad)
    }

    /// Binary cross-entropy with logits (PyTorch semantics, optional weights) and its gradient.
    ///
    /// # Errors
    /// As [`sigmoid_focal`](Self::sigmoid_focal).
    pub fn bce(
        &self,
        logits: &[f32],
        targets: &[f32],
        weights: Option<&[f32]>,
        reduction: Reduction,
        grad: &mut [f32],
    ) -> Result<f32, GpuError> {
        validate(logits, targets, weights, grad)?;
        let Some(mut st) = self.stage(logits, targets, reduction)? else {
            return Ok(0.0);
        };
        let w = self
            .stream
            .clone_htod(weights.unwrap_or(&[0.0]))
            .map_err(driver)?;
        let (has_w, scale) = (i32::from(weights.is_some()), 1.0 / st.divisor);
        let mut b = self.stream.launch_builder(&self.bce);
        b.arg(&st.x)
            .arg(&st.t)
            .arg(&w)
            .arg(&has_w)
            .arg(&mut st.g)
            .arg(&mut st.partial);
        b.arg(&st.n32).arg(&scale);
        // SAFETY: as in `sigmoid_focal`; `w` holds `n` weights when `has_w` is set.
        unsafe { b.launch(st.cfg) }.map_err(driver)?;
        self.finish(&st, grad)
    }

    /// GHM-C on one batch (mmdetection semantics, as the core's [`GhmC`]): the gradient-norm
    /// histogram is counted on the device, the moving average advances in `ghm` on the host
    /// (the core's own code, so a sequence of batches follows the core's state), and the
    /// weighting pass runs on the device. Returns the loss; writes the gradient.
    ///
    /// # Errors
    /// `Input` for the core's bad inputs (precedence per index: logit, target, label weight)
    /// and for more than [`MAX_GHM_BINS`] bins; `Driver` on a CUDA failure. `ghm` is
    /// unchanged after any `Err`.
    pub fn ghm_c<const BINS: usize>(
        &self,
        ghm: &mut GhmC<f32, BINS>,
        logits: &[f32],
        targets: &[f32],
        label_weights: Option<&[f32]>,
        grad: &mut [f32],
    ) -> Result<f32, GpuError> {
        validate_ghm(logits, targets, label_weights, grad, true)?;
        let lw = ghm.loss_weight();
        self.ghm(ghm, 0, 0.0, lw, logits, targets, label_weights, grad)
    }

    /// GHM-R on one batch (ASL1 on `pred - target`, as the core's [`GhmR`]); see
    /// [`ghm_c`](Self::ghm_c).
    ///
    /// # Errors
    /// As [`ghm_c`](Self::ghm_c) (inputs: prediction, target, label weight).
    pub fn ghm_r<const BINS: usize>(
        &self,
        ghm: &mut GhmR<f32, BINS>,
        pred: &[f32],
        target: &[f32],
        label_weights: Option<&[f32]>,
        grad: &mut [f32],
    ) -> Result<f32, GpuError> {
        validate_ghm(pred, target, label_weights, grad, false)?;
        let (lw, mu) = (ghm.loss_weight(), f64::from(ghm.kind().mu()));
        self.ghm(ghm, 1, mu, lw, pred, target, label_weights, grad)
    }

    /// The two GHM passes of either kind (`kind` 0: GHM-C, 1: GHM-R) on validated inputs.
    #[allow(clippy::too_many_arguments)]
    fn ghm<K: GhmKind<f32>, const BINS: usize>(
        &self,
        ghm: &mut Ghm<f32, K, BINS>,
        kind: i32,
        mu: f64,
        loss_weight: f32,
        xs: &[f32],
        ts: &[f32],
        label_weights: Option<&[f32]>,
        grad: &mut [f32],
    ) -> Result<f32, GpuError> {
        let bins = ghm.density().bins();
        if bins > MAX_GHM_BINS {
            return Err(Error::InvalidParameter("bins").into());
        }
        let Some(mut st) = self.stage(xs, ts, Reduction::Sum)? else {
            // Empty: the core's one-shot call counts nothing, so nothing moves.
            return Ok(0.0);
        };
        let s = &self.stream;
        let w = s
            .clone_htod(label_weights.unwrap_or(&[0.0]))
            .map_err(driver)?;
        let has_w = i32::from(label_weights.is_some());
        let bins32 = bins as i32;
        let mut counts = s.alloc_zeros::<u64>(bins).map_err(driver)?;
        let mut b = s.launch_builder(&self.ghm_hist);
        b.arg(&st.x).arg(&st.t).arg(&w).arg(&has_w).arg(&st.n32);
        b.arg(&kind).arg(&mu).arg(&bins32).arg(&mut counts);
        // SAFETY: the argument list matches `ghm_hist`; `counts` holds `bins <= MAX_BINS`.
        unsafe { b.launch(st.cfg) }.map_err(driver)?;
        let counts = s.clone_dtoh(&counts).map_err(driver)?;
        // The moving average advances on a copy, committed only when the batch succeeds.
        let mut next = *ghm;
        let weights = next.finish(&GradientHistogram::from_counts(&counts)?)?;
        let n_live = weights.valid_bins() as f64;
        let factor: Vec<f64> = weights
            .divisors()
            .iter()
            .map(|&d| {
                if d > 0.0 {
                    f64::from(loss_weight) / (n_live * d)
                } else {
                    0.0
                }
            })
            .collect();
        let factor = s.clone_htod(&factor).map_err(driver)?;
        let mut b = s.launch_builder(&self.ghm_apply);
        b.arg(&st.x).arg(&st.t).arg(&w).arg(&has_w).arg(&st.n32);
        b.arg(&kind).arg(&mu).arg(&bins32).arg(&factor);
        b.arg(&mut st.g).arg(&mut st.partial);
        // SAFETY: the argument list matches `ghm_apply`; `factor` holds `bins` values.
        unsafe { b.launch(st.cfg) }.map_err(driver)?;
        let loss = self.finish(&st, grad)?;
        *ghm = next;
        Ok(loss)
    }
}
