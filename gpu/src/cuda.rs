//! The CUDA backend: CUDA C kernels compiled by NVRTC when the context is made.
//!
//! Each kernel is fused (loss and gradient in one pass over the data) and evaluates one element
//! in double precision, rounding the gradient to f32 once, as the core evaluates f32 elements
//! in its accumulator type. Reductions are deterministic: a fixed grid, a fixed shared-memory
//! tree in each block, and the blocks' partial sums added on the host in block order, so the
//! same input gives the same bits.

use crate::{
    first_non_finite, lengths_agree, ohem_select, radix_select, rank_key, reduction_divisor,
    validate, validate_ghm, DeviceKind, GpuError,
};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use hardmine::{
    Asl1, ClassLabel, Error, Ghm, GradientHistogram, Ohem, Reduction, SigmoidFocal,
    SigmoidFocalLabels, SmoothL1, SoftmaxCrossEntropy, SoftmaxFocal,
};
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

// One focal element: loss and gradient (the core's stable form, see `SigmoidFocal`).
__device__ void focal_element(double x, double t, double alpha, int alpha_on, double gamma,
                              double* loss, double* grad) {
    Logistic l = logistic(x);
    double ce = (x > 0.0 ? (1.0 - t) * x : -(t * x)) + l.lp;
    double q = t * l.neg + (1.0 - t) * l.pos;
    double m = pow(q, gamma);
    double s = l.pos * l.neg;
    double r = q > 0.0 ? fmin(s / q, 1.0) : 1.0;
    double inner = ((1.0 - t) * l.pos - t * l.neg) + gamma * ce * ((1.0 - t) - t) * r;
    double at = alpha_on ? alpha * t + (1.0 - alpha) * (1.0 - t) : 1.0;
    *loss = at * ce * m;
    *grad = at * m * inner;
}

extern "C" __global__ void focal(const float* xs, const float* ts, float* grad, double* partial,
                                 unsigned n, double alpha, int alpha_on, double gamma, double scale) {
    double acc = 0.0;
    for (unsigned k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
        double l, g;
        focal_element(xs[k], ts[k], alpha, alpha_on, gamma, &l, &g);
        acc += l;
        grad[k] = (float)(g * scale);
    }
    block_sum(acc, partial);
}

// The label form: logits [N x C], one label per row (outside 0..C: background), optional row
// weights and per-class alphas. The one-hot target is never stored.
extern "C" __global__ void focal_labels(const float* xs, const int* labels, const float* ws,
                                        int has_w, const float* class_alpha, int has_ca,
                                        float* grad, double* partial, unsigned n,
                                        unsigned classes, double alpha, int alpha_on,
                                        double gamma, double scale) {
    double acc = 0.0;
    for (unsigned k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
        unsigned row = k / classes, j = k % classes;
        int label = labels[row];
        double t = (label >= 0 && (unsigned)label == j) ? 1.0 : 0.0;
        double w = has_w ? (double)ws[row] : 1.0;
        double a = has_ca ? (double)class_alpha[j] : alpha;
        double l, g;
        focal_element(xs[k], t, a, has_ca ? 1 : alpha_on, gamma, &l, &g);
        acc += w * l;
        grad[k] = (float)(w * g * scale);
    }
    block_sum(acc, partial);
}

// Softmax cross-entropy (focal = 0) or softmax focal loss over rows of `classes` logits, one
// thread a row (the row's statistics in a fixed order: deterministic). A negative label
// ignores its row (zero loss and gradient); labels >= classes are refused on the host.
// 1 - p_y is summed over the other classes, never formed by subtraction (as the core).
extern "C" __global__ void softmax_rows(const float* xs, const int* labels, float* grad,
                                        double* partial, unsigned rows, unsigned classes,
                                        int focal, double alpha, double gamma, double scale) {
    double acc = 0.0;
    for (unsigned r = blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += gridDim.x * blockDim.x) {
        const float* x = xs + (size_t)r * classes;
        float* g = grad + (size_t)r * classes;
        int y = labels[r];
        if (y < 0) {
            for (unsigned j = 0; j < classes; j++) g[j] = 0.0f;
            continue;
        }
        double m = x[0];
        for (unsigned j = 1; j < classes; j++) m = fmax(m, (double)x[j]);
        double other = 0.0, ey = 0.0;
        for (unsigned j = 0; j < classes; j++) {
            double e = exp((double)x[j] - m);
            if (j == (unsigned)y) ey = e; else other += e;
        }
        double z = other + ey, q = other / z, p = ey / z;
        double ln_p = q < 0.5 ? log1p(-q) : ((double)x[y] - m) - log(z);
        double own, each;
        if (focal) {
            double mod = pow(q, gamma);
            double ratio = q > 0.0 ? ln_p / q : -1.0;
            double f = mod * (1.0 - gamma * p * ratio);
            acc += -(alpha * mod * ln_p);
            own = -(alpha * q * f);
            each = alpha * f;
        } else {
            acc += -ln_p;
            own = -q;
            each = 1.0;
        }
        for (unsigned j = 0; j < classes; j++) {
            double v = j == (unsigned)y ? own : each * (exp((double)x[j] - m) / z);
            g[j] = (float)(v * scale);
        }
    }
    block_sum(acc, partial);
}

// Box losses on d = pred - target (rounded to f32, as the core subtracts). kind 0: smooth L1
// with threshold `param` (beta 0: L1, gradient 0 at d = 0); kind 1: ASL1 with `param` = mu.
extern "C" __global__ void box_loss(const float* ps, const float* ts, float* grad,
                                    double* partial, unsigned n, int kind, double param,
                                    double scale) {
    double acc = 0.0;
    for (unsigned k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
        double d = (double)(ps[k] - ts[k]);
        double a = fabs(d), l, g;
        if (kind == 0) {
            if (a < param) {
                l = 0.5 * d * d / param;
                g = d / param;
            } else {
                l = a - 0.5 * param;
                g = d > 0.0 ? 1.0 : (d < 0.0 ? -1.0 : 0.0);
            }
        } else {
            double root = sqrt(d * d + param * param);
            l = a > param ? root - param : d * d / (root + param);
            g = d / root;
        }
        acc += l;
        grad[k] = (float)(g * scale);
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

// Validation of device-resident inputs: the smallest key 4 * index + code over the bad
// elements, so the first bad index wins and, at one index, the first failing check in the
// core's order: binary losses check the weight, logit and target for finiteness (code 0)
// then the target's range (code 1); GHM (weight_last) checks the input and target (0), the
// target's range (1, GHM-C only), then the label weight (2, reported as non-finite).
extern "C" __global__ void check_inputs(const float* xs, const float* ts, const float* ws,
                                        int has_w, int unit, int weight_last, unsigned n,
                                        unsigned long long* first) {
    for (unsigned k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
        float x = xs[k], t = ts[k];
        int bad_w = has_w && !isfinite(ws[k]);
        unsigned long long code;
        if (!weight_last && bad_w) {
            code = 0;
        } else if (!isfinite(x) || !isfinite(t)) {
            code = 0;
        } else if (unit && !(t >= 0.0f && t <= 1.0f)) {
            code = 1;
        } else if (weight_last && bad_w) {
            code = 2;
        } else {
            continue;
        }
        atomicMin(first, 4ull * k + code);
    }
}

// OHEM's ranking as one 64-bit key per element: the loss's order-preserving bits (-0 counted
// as +0, as the core compares floats) above the complement of the index, so a larger key ranks
// first and ties go to the lower index, and no two keys are equal.
__device__ unsigned long long rank_key(const float* losses, unsigned k) {
    unsigned b = __float_as_uint(losses[k] + 0.0f);
    b = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
    return ((unsigned long long)b << 32) | (unsigned long long)(0xFFFFFFFFu - k);
}

// One pass of the radix select: counts the 8-bit digit at `shift` of every key whose bits
// under `mask` equal `prefix` (shared-memory counts, then integer atomics: deterministic).
extern "C" __global__ void rank_hist(const float* losses, unsigned n, unsigned long long prefix,
                                     unsigned long long mask, int shift, unsigned* counts) {
    __shared__ unsigned local[256];
    for (int d = threadIdx.x; d < 256; d += blockDim.x) local[d] = 0;
    __syncthreads();
    for (unsigned k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
        unsigned long long key = rank_key(losses, k);
        if ((key & mask) == prefix) atomicAdd(&local[(unsigned)(key >> shift) & 255u], 1u);
    }
    __syncthreads();
    for (int d = threadIdx.x; d < 256; d += blockDim.x)
        if (local[d] != 0) atomicAdd(&counts[d], local[d]);
}

// The indices of the keys at or above `threshold` (the m-th largest key: exactly m of them),
// in no particular order (the host orders them by key); never more than `cap` written.
extern "C" __global__ void rank_collect(const float* losses, unsigned n,
                                        unsigned long long threshold, unsigned* out,
                                        unsigned cap, unsigned* count) {
    for (unsigned k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
        if (rank_key(losses, k) >= threshold) {
            unsigned at = atomicAdd(count, 1u);
            if (at < cap) out[at] = k;
        }
    }
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
    fn of(n: usize, reduction: Reduction) -> Result<Option<Self>, GpuError> {
        if n == 0 {
            return Ok(None);
        }
        let n32 =
            u32::try_from(n).map_err(|_| GpuError::Driver("more than 2^32 - 1 elements".into()))?;
        Ok(Some(Self {
            n32,
            cfg: launch_config(n),
            divisor: reduction_divisor(reduction, n),
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

    /// Validates device-resident inputs on the device with the core's rules and precedence
    /// (`unit`: targets in `[0, 1]`; `weight_last`: GHM's order, label weight checked last).
    fn check_on_device(
        &self,
        xs: &DeviceBuffer,
        ts: &DeviceBuffer,
        weights: Option<&DeviceBuffer>,
        grad: &DeviceBuffer,
        unit: bool,
        weight_last: bool,
    ) -> Result<(), GpuError> {
        let n = xs.len;
        lengths_agree(n, [Some(ts.len), weights.map(|w| w.len), Some(grad.len)])?;
        let Some(shape) = Shape::of(n, Reduction::Sum)? else {
            return Ok(());
        };
        let s = &self.stream;
        let mut first = s.clone_htod(&[u64::MAX]).map_err(driver)?;
        let (has_w, unit, last) = (
            i32::from(weights.is_some()),
            i32::from(unit),
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
                let index = usize::try_from(k / 4).unwrap_or(usize::MAX);
                Err(if k % 4 == 1 {
                    Error::InvalidTarget { index }
                } else {
                    Error::NonFinite { index }
                }
                .into())
            }
            _ => Ok(()),
        }
    }

    /// Launches the fused focal kernel on validated device buffers; returns the reduced loss.
    #[allow(clippy::too_many_arguments)]
    fn run_focal(
        &self,
        x: &DeviceBuffer,
        t: &DeviceBuffer,
        alpha: f32,
        gamma: f32,
        reduction: Reduction,
        g: &mut DeviceBuffer,
    ) -> Result<f32, GpuError> {
        let Some(shape) = Shape::of(x.len, reduction)? else {
            return Ok(0.0);
        };
        let s = &self.stream;
        let mut partial = shape.partials(s)?;
        let (a, on, gm, scale) = (
            f64::from(alpha),
            i32::from(alpha != -1.0),
            f64::from(gamma),
            1.0 / shape.divisor,
        );
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
        x: &DeviceBuffer,
        t: &DeviceBuffer,
        w: Option<&DeviceBuffer>,
        reduction: Reduction,
        g: &mut DeviceBuffer,
    ) -> Result<f32, GpuError> {
        let Some(shape) = Shape::of(x.len, reduction)? else {
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
        let (x, t) = (self.upload(logits)?, self.upload(targets)?);
        let mut g = self.zeros(logits.len())?;
        let loss = self.run_focal(&x, &t, alpha, gamma, reduction, &mut g)?;
        self.download(&g, grad)?;
        Ok(loss)
    }

    /// [`sigmoid_focal`](Self::sigmoid_focal) on device-resident buffers: the inputs are
    /// validated by a kernel (the core's rules and precedence) and the gradient stays on the
    /// device; only the blocks' partial sums come back.
    ///
    /// # Errors
    /// As [`sigmoid_focal`](Self::sigmoid_focal).
    pub fn sigmoid_focal_on_device(
        &self,
        logits: &DeviceBuffer,
        targets: &DeviceBuffer,
        alpha: f32,
        gamma: f32,
        reduction: Reduction,
        grad: &mut DeviceBuffer,
    ) -> Result<f32, GpuError> {
        SigmoidFocal::new(alpha, gamma)?;
        self.check_on_device(logits, targets, None, grad, true, false)?;
        self.run_focal(logits, targets, alpha, gamma, reduction, grad)
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
        let (x, t) = (self.upload(logits)?, self.upload(targets)?);
        let w = weights.map(|w| self.upload(w)).transpose()?;
        let mut g = self.zeros(logits.len())?;
        let loss = self.run_bce(&x, &t, w.as_ref(), reduction, &mut g)?;
        self.download(&g, grad)?;
        Ok(loss)
    }

    /// [`bce`](Self::bce) on device-resident buffers (see
    /// [`sigmoid_focal_on_device`](Self::sigmoid_focal_on_device)).
    ///
    /// # Errors
    /// As [`sigmoid_focal`](Self::sigmoid_focal).
    pub fn bce_on_device(
        &self,
        logits: &DeviceBuffer,
        targets: &DeviceBuffer,
        weights: Option<&DeviceBuffer>,
        reduction: Reduction,
        grad: &mut DeviceBuffer,
    ) -> Result<f32, GpuError> {
        self.check_on_device(logits, targets, weights, grad, true, false)?;
        self.run_bce(logits, targets, weights, reduction, grad)
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
        let c = head.classes();
        let n = labels
            .len()
            .checked_mul(c)
            .ok_or(Error::InvalidParameter("classes"))?;
        lengths_agree(n, [Some(logits.len()), Some(grad.len())])?;
        lengths_agree(labels.len(), [label_weights.map(<[f32]>::len)])?;
        first_non_finite(logits)?;
        if let Some(w) = label_weights {
            first_non_finite(w)?;
        }
        let focal = head.focal();
        let Some(shape) = Shape::of(n, focal.reduction())? else {
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
        let alpha = focal.alpha();
        let (a, on, gm, scale) = (
            f64::from(alpha.unwrap_or(0.0)),
            i32::from(alpha.is_some()),
            f64::from(focal.gamma()),
            1.0 / shape.divisor,
        );
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
        let (beta, reduction) = (f64::from(loss.beta()), loss.reduction());
        self.box_loss(0, beta, reduction, pred, target, grad)
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
        let (mu, reduction) = (f64::from(loss.mu()), loss.reduction());
        self.box_loss(1, mu, reduction, pred, target, grad)
    }

    /// A box loss of `kind` (0: smooth L1, 1: ASL1) with its parameter.
    fn box_loss(
        &self,
        kind: i32,
        param: f64,
        reduction: Reduction,
        pred: &[f32],
        target: &[f32],
        grad: &mut [f32],
    ) -> Result<f32, GpuError> {
        // Lengths, then finite predictions and targets: GHM-R's rules without label weights.
        validate_ghm(pred, target, None, grad, false)?;
        let Some(shape) = Shape::of(pred.len(), reduction)? else {
            return Ok(0.0);
        };
        let s = &self.stream;
        let (p, t) = (self.upload(pred)?, self.upload(target)?);
        let mut g = self.zeros(pred.len())?;
        let mut partial = shape.partials(s)?;
        let scale = 1.0 / shape.divisor;
        let mut b = s.launch_builder(&self.box_loss);
        b.arg(&p.slice)
            .arg(&t.slice)
            .arg(&mut g.slice)
            .arg(&mut partial);
        b.arg(&shape.n32).arg(&kind).arg(&param).arg(&scale);
        // SAFETY: the argument list matches `box_loss`; buffers hold `n` values.
        unsafe { b.launch(shape.cfg) }.map_err(driver)?;
        let loss = shape.total(s, &partial)?;
        self.download(&g, grad)?;
        Ok(loss)
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
        let (c, reduction) = (loss.classes(), loss.reduction());
        self.softmax(c, reduction, None, logits, labels, grad)
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
        let params = (f64::from(loss.alpha()), f64::from(loss.gamma()));
        self.softmax(
            loss.classes(),
            loss.reduction(),
            Some(params),
            logits,
            labels,
            grad,
        )
    }

    /// The softmax rows kernel (`focal`: its alpha and gamma).
    fn softmax(
        &self,
        classes: usize,
        reduction: Reduction,
        focal: Option<(f64, f64)>,
        logits: &[f32],
        labels: &[i32],
        grad: &mut [f32],
    ) -> Result<f32, GpuError> {
        let rows = labels.len();
        let n = rows
            .checked_mul(classes)
            .ok_or(Error::InvalidParameter("classes"))?;
        lengths_agree(n, [Some(logits.len()), Some(grad.len())])?;
        first_non_finite(logits)?;
        let mut counted = 0usize;
        for (index, &y) in labels.iter().enumerate() {
            match usize::try_from(y) {
                Ok(y) if y < classes => counted += 1,
                Ok(_) => return Err(Error::InvalidTarget { index }.into()),
                Err(_) => {}
            }
        }
        let c32 = u32::try_from(classes).map_err(|_| Error::InvalidParameter("classes"))?;
        let Some(shape) = Shape::of(rows, Reduction::Sum)? else {
            return Ok(0.0);
        };
        // The mean over the counted rows (none counted: the sum, which is 0).
        let divisor = match reduction {
            Reduction::Mean if counted > 0 => counted as f64,
            _ => 1.0,
        };
        let s = &self.stream;
        let x = self.upload(logits)?;
        let y = s.clone_htod(labels).map_err(driver)?;
        let mut g = self.zeros(n)?;
        let mut partial = shape.partials(s)?;
        let (on, (alpha, gamma)) = (i32::from(focal.is_some()), focal.unwrap_or((1.0, 0.0)));
        let scale = 1.0 / divisor;
        let mut b = s.launch_builder(&self.softmax_rows);
        b.arg(&x.slice).arg(&y).arg(&mut g.slice).arg(&mut partial);
        b.arg(&shape.n32)
            .arg(&c32)
            .arg(&on)
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
        validate_ghm(xs, ts, label_weights, grad, K::UNIT_TARGETS)?;
        if xs.is_empty() {
            // The core's one-shot call counts nothing, so nothing moves.
            return Ok(0.0);
        }
        let (x, t) = (self.upload(xs)?, self.upload(ts)?);
        let w = label_weights.map(|w| self.upload(w)).transpose()?;
        let mut g = self.zeros(xs.len())?;
        let loss = self.ghm_run(ghm, &x, &t, w.as_ref(), &mut g)?;
        self.download(&g, grad)?;
        Ok(loss)
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
        self.check_on_device(xs, ts, label_weights, grad, K::UNIT_TARGETS, true)?;
        self.ghm_run(ghm, xs, ts, label_weights, grad)
    }

    /// The two GHM passes on validated device buffers.
    fn ghm_run<K: DeviceKind, const BINS: usize>(
        &self,
        ghm: &mut Ghm<f32, K, BINS>,
        x: &DeviceBuffer,
        t: &DeviceBuffer,
        w: Option<&DeviceBuffer>,
        g: &mut DeviceBuffer,
    ) -> Result<f32, GpuError> {
        let bins = ghm.density().bins();
        if bins > MAX_GHM_BINS {
            return Err(Error::InvalidParameter("bins").into());
        }
        let Some(shape) = Shape::of(x.len, Reduction::Sum)? else {
            return Ok(0.0);
        };
        let (kind, mu) = ghm.kind().device_kind();
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
        // SAFETY: the argument list matches `ghm_hist`; `counts` holds `bins <= MAX_BINS`.
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
                    let shape = Shape::of(losses.len(), Reduction::Sum)?
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
        let mut counts = s.alloc_zeros::<u32>(256).map_err(driver)?;
        let threshold = radix_select(m as u64, |prefix, mask, shift| {
            s.memset_zeros(&mut counts).map_err(driver)?;
            let mut b = s.launch_builder(&self.rank_hist);
            b.arg(d_losses).arg(&shape.n32).arg(&prefix).arg(&mask);
            b.arg(&shift).arg(&mut counts);
            // SAFETY: the argument list matches `rank_hist`; `counts` holds 256 values.
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
