// Box losses on d = pred - target (rounded to f32, as the core subtracts). Kind BOX_SMOOTH_L1:
// smooth L1 with threshold `param` (beta 0: L1, gradient 0 at d = 0); kind BOX_ASL1: ASL1 with
// `param` = mu.
extern "C" __global__ void box_loss(const float* ps, const float* ts, float* grad,
                                    double* partial, unsigned n, int kind, double param,
                                    double scale) {
    double acc = 0.0;
    for (unsigned k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
        double d = (double)(ps[k] - ts[k]);
        double a = fabs(d), l, g;
        if (kind == BOX_SMOOTH_L1) {
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
