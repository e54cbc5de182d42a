// OHEM's selection: a radix select over one 64-bit rank key per element.

// OHEM's ranking as one 64-bit key per element: the loss's order-preserving bits (-0 counted
// as +0, as the core compares floats) above the complement of the index, so a larger key ranks
// first and ties go to the lower index, and no two keys are equal.
__device__ unsigned long long rank_key(const float* losses, unsigned k) {
    unsigned b = __float_as_uint(losses[k] + 0.0f);
    b = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
    return ((unsigned long long)b << 32) | (unsigned long long)(0xFFFFFFFFu - k);
}

// One pass of the radix select: counts the digit (RADIX_DIGITS values) at `shift` of every key
// whose bits under `mask` equal `prefix` (shared-memory counts, then integer atomics:
// deterministic).
extern "C" __global__ void rank_hist(const float* losses, unsigned n, unsigned long long prefix,
                                     unsigned long long mask, int shift, unsigned* counts) {
    __shared__ unsigned local[RADIX_DIGITS];
    for (int d = threadIdx.x; d < RADIX_DIGITS; d += blockDim.x) local[d] = 0;
    __syncthreads();
    for (unsigned k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
        unsigned long long key = rank_key(losses, k);
        if ((key & mask) == prefix)
            atomicAdd(&local[(unsigned)(key >> shift) & (RADIX_DIGITS - 1u)], 1u);
    }
    __syncthreads();
    for (int d = threadIdx.x; d < RADIX_DIGITS; d += blockDim.x)
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
