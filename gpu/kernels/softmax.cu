// Softmax cross-entropy (kind SOFTMAX_CROSS_ENTROPY) or softmax focal loss (SOFTMAX_FOCAL)
// over rows of `classes` logits, one thread a row (the row's statistics in a fixed order:
// deterministic). A negative label ignores its row (zero loss and gradient); labels >= classes
// are refused on the host. 1 - p_y is summed over the other classes, never formed by
// subtraction (as the core).
extern "C" __global__ void softmax_rows(const float* xs, const int* labels, float* grad,
                                        double* partial, unsigned rows, unsigned classes,
                                        int kind, double alpha, double gamma, double scale) {
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
        if (kind == SOFTMAX_CROSS_ENTROPY) {
            acc += -ln_p;
            own = -q;
            each = 1.0;
        } else {
            double mod = pow(q, gamma);
            double ratio = q > 0.0 ? ln_p / q : -1.0;
            double f = mod * (1.0 - gamma * p * ratio);
            acc += -(alpha * mod * ln_p);
            own = -(alpha * q * f);
            each = alpha * f;
        }
        for (unsigned j = 0; j < classes; j++) {
            double v = j == (unsigned)y ? own : each * (exp((double)x[j] - m) / z);
            g[j] = (float)(v * scale);
        }
    }
    block_sum(acc, partial);
}
