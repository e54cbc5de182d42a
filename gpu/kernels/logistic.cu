// The logistic losses: sigmoid focal (dense and label form) and BCE with logits.

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
