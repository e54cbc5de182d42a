// Validation of device-resident inputs: the smallest key CHECK_CODES * index + code over the
// bad elements, so the first bad index wins and, at one index, the first failing check in the
// core's order: binary losses check the weight, logit and target for finiteness
// (CHECK_NON_FINITE) then the target's range (CHECK_INVALID_TARGET); GHM (weight_last) checks
// the input and target, the target's range (GHM-C only), then the label weight
// (CHECK_LABEL_WEIGHT, reported as non-finite).
extern "C" __global__ void check_inputs(const float* xs, const float* ts, const float* ws,
                                        int has_w, int unit, int weight_last, unsigned n,
                                        unsigned long long* first) {
    for (unsigned k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
        float x = xs[k], t = ts[k];
        int bad_w = has_w && !isfinite(ws[k]);
        unsigned long long code;
        if (!weight_last && bad_w) {
            code = CHECK_NON_FINITE;
        } else if (!isfinite(x) || !isfinite(t)) {
            code = CHECK_NON_FINITE;
        } else if (unit && !(t >= 0.0f && t <= 1.0f)) {
            code = CHECK_INVALID_TARGET;
        } else if (weight_last && bad_w) {
            code = CHECK_LABEL_WEIGHT;
        } else {
            continue;
        }
        atomicMin(first, CHECK_CODES * (unsigned long long)k + code);
    }
}
