// Shared by every kernel: the logistic function in its stable form and the deterministic
// block reduction. (The names in capitals are defined by the Rust side, gpu/src/kernels.rs.)
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
    __shared__ double s[THREADS];
    s[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned k = blockDim.x / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k) s[threadIdx.x] += s[threadIdx.x + k];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = s[0];
}
