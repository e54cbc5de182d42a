/* The host C test of the C ABI: the golden suite (examples/c-firmware/suite.c, every function
 * of hardmine.h on both paths), then every bad input with its documented status, each checking
 * that nothing the caller owns changed (outputs keep their sentinels, state its bytes). Among
 * them the two holes of issue 20: an out-of-range reduction integer, and state that was never
 * initialised. Prints "c-abi: N passed, M failed". */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "hardmine.h"
#include "suite.h"

static int passed, failed;

static void check(int ok, const char *what) {
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s\n", what);
    }
}

void suite_probe_begin(void) {}
void suite_probe_end(const char *name) { (void)name; }
void suite_print(const char *line) { puts(line); }

#define SENTINEL 1234.5f
static float loss, grad[8], elem[8];
static int32_t qloss, qgrad[8];

static void arm(void) {
    loss = SENTINEL;
    for (int i = 0; i < 8; i++) grad[i] = elem[i] = SENTINEL;
    qloss = 77;
    for (int i = 0; i < 8; i++) qgrad[i] = 77;
}

static int untouched(void) {
    int ok = loss == SENTINEL && qloss == 77;
    for (int i = 0; i < 8; i++) ok &= grad[i] == SENTINEL && elem[i] == SENTINEL && qgrad[i] == 77;
    return ok;
}

/* `status` must be `want` and no output written. */
static void bad(HmStatus status, HmStatus want, const char *what) {
    char line[160];
    snprintf(line, sizeof line, "%s: status %d, want %d", what, (int)status, (int)want);
    check(status == want, line);
    snprintf(line, sizeof line, "%s: outputs untouched", what);
    check(untouched(), line);
    arm();
}

static HmGhmC ghmc, ghmc_before;
static HmGhmR ghmr;
static HmRng rng, rng_before;
static _Alignas(HM_GHMC_ALIGN) unsigned char raw[HM_GHMC_SIZE + 8];

int main(void) {
    int suite_failed = suite_run();
    check(suite_failed == 0, "golden suite");
    arm();

    const float x[4] = {1.0f, -2.0f, 0.5f, 3.0f}, t[4] = {0.0f, 1.0f, 1.0f, 0.0f};
    const float nan_x[4] = {1.0f, 0.0f / 0.0f, 0.5f, 3.0f}, bad_t[4] = {0.0f, 2.0f, 1.0f, 0.0f};
    const int32_t xq[4] = {65536, -131072, 32768, 196608}, tq[4] = {0, 65536, 65536, 0};

    /* Hole 1: a reduction integer outside the enumeration (UB as a Rust enum before). */
    bad(hm_sigmoid_focal_f32(x, t, 4, 0.25f, 2.0f, 7, NULL, &loss, grad, NULL), HM_STATUS_INVALID_REDUCTION, "focal reduction 7");
    bad(hm_sigmoid_focal_f32(x, t, 4, 0.25f, 2.0f, -1, NULL, &loss, grad, NULL), HM_STATUS_INVALID_REDUCTION, "focal reduction -1");
    bad(hm_bce_q16(xq, tq, NULL, 4, 3, NULL, &qloss, qgrad, NULL), HM_STATUS_INVALID_REDUCTION, "bce q16 reduction 3");

    /* Hole 2: never-initialised state (0x7F bytes, zeros), state of another path or type. */
    memset(&ghmc, 0x7F, sizeof ghmc);
    memcpy(&ghmc_before, &ghmc, sizeof ghmc);
    bad(hm_ghmc_value_and_grad_f32(&ghmc, x, t, NULL, 4, &loss, grad), HM_STATUS_UNINITIALISED, "ghmc 0x7F state");
    check(memcmp(&ghmc, &ghmc_before, sizeof ghmc) == 0, "0x7F state untouched");
    memset(&ghmc, 0, sizeof ghmc);
    bad(hm_ghmc_value_and_grad_q16(&ghmc, xq, tq, NULL, 4, &qloss, qgrad), HM_STATUS_UNINITIALISED, "ghmc zero state");
    check(hm_ghmc_init_q16(&ghmc, 10, 49152, 65536) == HM_STATUS_OK, "ghmc q16 init");
    bad(hm_ghmc_value_and_grad_f32(&ghmc, x, t, NULL, 4, &loss, grad), HM_STATUS_UNINITIALISED, "q16 state on the f32 path");
    check(hm_ghmr_init_f32(&ghmr, 0.02f, 10, 0.75f, 1.0f) == HM_STATUS_OK, "ghmr init");
    bad(hm_ghmc_value_and_grad_f32((HmGhmC *)(void *)&ghmr, x, t, NULL, 4, &loss, grad), HM_STATUS_UNINITIALISED,
        "GHM-R state as GHM-C");
    memset(&rng, 0x7F, sizeof rng);
    {
        uint8_t pos[4] = {1, 0, 0, 1};
        size_t scratch[4], idx[4], count = 99;
        HmStatus s = hm_balanced_sample_f32(pos, 4, 4, 0.5f, -1.0f, &rng, scratch, sizeof scratch, idx, &count);
        bad(s, HM_STATUS_UNINITIALISED, "sampler with an uninitialised rng");
        check(count == 99, "sampler count untouched");
        check(hm_rng_init(&rng, 1) == HM_STATUS_OK, "rng init");
        memcpy(&rng_before, &rng, sizeof rng);
        pos[2] = 2;
        bad(hm_balanced_sample_f32(pos, 4, 4, 0.5f, -1.0f, &rng, scratch, sizeof scratch, idx, &count), HM_STATUS_INVALID_TARGET,
            "sampler mask byte 2");
        pos[2] = 0;
        bad(hm_balanced_sample_f32(pos, 4, 0, 0.5f, -1.0f, &rng, scratch, sizeof scratch, idx, &count), HM_STATUS_INVALID_PARAMETER,
            "sampler num 0");
        bad(hm_balanced_sample_f32(pos, 4, 4, 0.5f, -1.0f, &rng, scratch, 8, idx, &count), HM_STATUS_SCRATCH_TOO_SMALL,
            "sampler scratch too small");
        check(memcmp(&rng, &rng_before, sizeof rng) == 0 && count == 99, "rng and count untouched");
    }

    /* Each status of a bad input. */
    bad(hm_sigmoid_focal_f32(nan_x, t, 4, 0.25f, 2.0f, HM_REDUCTION_SUM, NULL, &loss, grad, NULL), HM_STATUS_NON_FINITE, "nan logit");
    bad(hm_sigmoid_focal_f32(x, t, 4, 0.25f, -1.0f, HM_REDUCTION_SUM, NULL, &loss, grad, NULL), HM_STATUS_INVALID_PARAMETER, "gamma -1");
    bad(hm_bce_f32(x, bad_t, NULL, 4, HM_REDUCTION_MEAN, NULL, &loss, grad, NULL), HM_STATUS_INVALID_TARGET, "bce target 2");
    {
        const float f = 2.0f;
        bad(hm_bce_f32(x, t, NULL, 4, HM_REDUCTION_SUM, &f, &loss, grad, NULL), HM_STATUS_INVALID_PARAMETER, "avg_factor with sum");
        const float neg = -1.0f;
        bad(hm_smooth_l1_f32(x, t, 4, 1.0f, HM_REDUCTION_MEAN, &neg, &loss, grad, NULL), HM_STATUS_INVALID_PARAMETER, "avg_factor -1");
    }
    bad(hm_bce_f32(NULL, t, NULL, 4, HM_REDUCTION_MEAN, NULL, &loss, grad, NULL), HM_STATUS_NULL_POINTER, "null logits");
    bad(hm_bce_f32(x, t, NULL, 4, HM_REDUCTION_MEAN, NULL, NULL, grad, NULL), HM_STATUS_NULL_POINTER, "null loss");
    bad(hm_smooth_l1_f32(x, t, 4, 1.0f, HM_REDUCTION_NONE, NULL, &loss, grad, NULL), HM_STATUS_NULL_POINTER, "none without elements");
    bad(hm_ghmc_value_and_grad_f32(NULL, x, t, NULL, 4, &loss, grad), HM_STATUS_NULL_POINTER, "null ghm state");
    bad(hm_asl1_f32((const float *)(const void *)((const char *)x + 1), t, 2, 0.02f, HM_REDUCTION_SUM, NULL, &loss, grad, NULL),
        HM_STATUS_MISALIGNED, "misaligned pred");
    bad(hm_ghmc_value_and_grad_f32((HmGhmC *)(void *)(raw + 4), x, t, NULL, 4, &loss, grad), HM_STATUS_MISALIGNED,
        "misaligned state");
    bad(hm_asl1_f32(x, t, 4, 0.0f, HM_REDUCTION_SUM, NULL, &loss, grad, NULL), HM_STATUS_INVALID_PARAMETER, "asl1 mu 0");
    bad(hm_ghmc_init_f32(&ghmc, 31, 0.5f, 1.0f), HM_STATUS_INVALID_PARAMETER, "ghmc bins > HM_GHM_BINS");
    {
        float io[4] = {1.0f, 2.0f, 3.0f, 4.0f};
        bad(hm_smooth_l1_f32(io, t, 4, 1.0f, HM_REDUCTION_SUM, NULL, &loss, io, NULL), HM_STATUS_OVERLAP, "grad over pred");
        bad(hm_smooth_l1_f32(x, t, 4, 1.0f, HM_REDUCTION_NONE, NULL, &loss, grad, grad + 2), HM_STATUS_OVERLAP, "elements over grad");
    }
    {
        const int32_t labels[2] = {0, 4}, ok_labels[2] = {0, -1};
        float l8[8] = {0};
        bad(hm_softmax_ce_f32(l8, labels, 2, 4, HM_REDUCTION_MEAN, NULL, &loss, grad, NULL), HM_STATUS_INVALID_TARGET, "label >= classes");
        bad(hm_softmax_ce_f32(l8, ok_labels, SIZE_MAX / 2, 4, HM_REDUCTION_MEAN, NULL, &loss, grad, NULL), HM_STATUS_LENGTH_MISMATCH,
            "rows * classes overflows");
        bad(hm_softmax_focal_f32(l8, ok_labels, 2, 0, 0.25f, 2.0f, HM_REDUCTION_MEAN, NULL, &loss, grad, NULL),
            HM_STATUS_INVALID_PARAMETER, "0 classes");
        bad(hm_sigmoid_focal_labels_f32(l8, ok_labels, NULL, 2, 4, 2.0f, NULL, 2.0f, HM_REDUCTION_SUM, NULL, &loss, grad, NULL),
            HM_STATUS_INVALID_PARAMETER, "alpha 2");
    }
    {
        const float losses[3] = {0.1f, 0.9f, 0.5f};
        const float boxes[12] = {0, 0, 1, 1, 5, 5, 4, 6, 2, 2, 3, 3}; /* the second is inverted */
        size_t scratch[3], idx[2] = {99, 99}, count = 99;
        size_t bytes = hm_ohem_scratch_bytes(3);
        HmStatus s = hm_ohem_topk_nms_f32(losses, boxes, NULL, 3, 2, 0.5f, scratch, bytes, idx, &count);
        bad(s, HM_STATUS_INVALID_BOX, "inverted box");
        bad(hm_ohem_topk_f32(losses, 3, 2, scratch, bytes - 1, idx, &count), HM_STATUS_SCRATCH_TOO_SMALL, "ohem scratch too small");
        bad(hm_ohem_topk_f32(losses, 3, 0, scratch, bytes, idx, &count), HM_STATUS_INVALID_PARAMETER, "ohem k 0");
        bad(hm_ohem_topk_nms_f32(losses, boxes, NULL, 3, 2, 1.5f, scratch, bytes, idx, &count), HM_STATUS_INVALID_PARAMETER, "iou 1.5");
        bad(hm_ohem_topk_q16(NULL, 3, 2, scratch, bytes, idx, &count), HM_STATUS_NULL_POINTER, "ohem null losses");
        check(idx[0] == 99 && idx[1] == 99 && count == 99, "ohem outputs untouched");
    }
    /* Length 0: null arrays are allowed (the sum of nothing is 0). */
    check(hm_bce_f32(NULL, NULL, NULL, 0, HM_REDUCTION_SUM, NULL, &loss, NULL, NULL) == HM_STATUS_OK && loss == 0.0f,
          "n = 0 with null arrays: sum 0");
    check(hm_smooth_l1_q16(NULL, NULL, 0, 65536, HM_REDUCTION_NONE, NULL, &qloss, NULL, NULL) == HM_STATUS_OK && qloss == 0,
          "n = 0, reduction none: no elements needed");
    {
        size_t count = 99, idx[1];
        check(hm_ohem_topk_f32(NULL, 0, 1, NULL, 0, idx, &count) == HM_STATUS_OK && count == 0, "ohem n = 0: no scratch needed");
    }
    arm();

    /* GHM state unchanged by a failed batch. */
    check(hm_ghmc_init_f32(&ghmc, 10, 0.75f, 1.0f) == HM_STATUS_OK, "ghmc init");
    check(hm_ghmc_value_and_grad_f32(&ghmc, x, t, NULL, 4, &loss, grad) == HM_STATUS_OK, "ghmc batch");
    arm();
    memcpy(&ghmc_before, &ghmc, sizeof ghmc);
    bad(hm_ghmc_value_and_grad_f32(&ghmc, nan_x, t, NULL, 4, &loss, grad), HM_STATUS_NON_FINITE, "ghmc nan");
    bad(hm_ghmc_value_and_grad_f32(&ghmc, x, bad_t, NULL, 4, &loss, grad), HM_STATUS_INVALID_TARGET, "ghmc target 2");
    check(memcmp(&ghmc, &ghmc_before, sizeof ghmc) == 0, "ghmc state unchanged after errors");
    printf("c-abi: %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
