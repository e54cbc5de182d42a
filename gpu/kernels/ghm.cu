// GHM: one element's gradient norm (rounded to f32, then binned in f32 as the core bins),
// loss and gradient. Kind GHM_C: BCE on logit x, target t; kind GHM_R: ASL1 on d = x - t,
// rounded to f32 as the core subtracts.
__device__ int ghm_bin(float norm, int bins) {
    int b = (int)floorf(norm * (float)bins);
    return b < 0 ? 0 : (b > bins - 1 ? bins - 1 : b);
}

__device__ void ghm_element(int kind, double mu, float xf, float tf,
                            float* norm, double* loss, double* grad) {
    if (kind == GHM_C) {
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
