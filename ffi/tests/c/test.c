/* The C ABI against vendored golden cases, at the published f32 tolerance
 * (|got - exp| <= 1e-5 |exp| + 1e-6 scale). Prints "c-abi: N passed, M failed". */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "hardmine.h"
#include "golden_cases.h"

static int passed, failed;

static void check(int ok, const char *what) {
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s\n", what);
    }
}

static int close_scalar(double got, double exp) {
    double scale = fabs(exp) > 1.0 ? fabs(exp) : 1.0;
    return fabs(got - exp) <= 1e-5 * fabs(exp) + 1e-6 * scale;
}

static int close_array(const float *got, const double *exp, size_t n) {
    double scale = 0.0;
    for (size_t i = 0; i < n; i++) scale = fabs(exp[i]) > scale ? fabs(exp[i]) : scale;
    for (size_t i = 0; i < n; i++)
        if (!(fabs(got[i] - exp[i]) <= 1e-5 * fabs(exp[i]) + 1e-6 * scale)) return 0;
    return 1;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* GHM state in static memory, as firmware would keep it. */
static HmGhmC ghmc_state;
static HmGhmR ghmr_state;

int main(void) {
    float loss, grad[1024];

    check(hm_sigmoid_focal(focal_x, focal_t, N(focal_x), 0.25f, 2.0f, HM_REDUCTION_SUM, &loss, grad) == HM_STATUS_OK, "focal status");
    check(close_scalar(loss, focal_loss), "focal loss");
    check(close_array(grad, focal_grad, N(focal_grad)), "focal grad");

    check(hm_bce(bce_x, bce_t, bce_w, N(bce_x), HM_REDUCTION_MEAN, &loss, grad) == HM_STATUS_OK, "bce status");
    check(close_scalar(loss, bce_loss), "bce loss");
    check(close_array(grad, bce_grad, N(bce_grad)), "bce grad");

    const float *gx[] = {ghmc_x0, ghmc_x1, ghmc_x2}, *gt[] = {ghmc_t0, ghmc_t1, ghmc_t2}, *gw[] = {ghmc_w0, ghmc_w1, ghmc_w2};
    const double gl[] = {ghmc_loss0, ghmc_loss1, ghmc_loss2}, *gg[] = {ghmc_grad0, ghmc_grad1, ghmc_grad2};
    check(hm_ghmc_init(&ghmc_state, (size_t)ghmc_params[1], ghmc_params[2], ghmc_params[3]) == HM_STATUS_OK, "ghmc init");
    for (int b = 0; b < GHMC_BATCHES; b++) {
        check(hm_ghmc_value_and_grad(&ghmc_state, gx[b], gt[b], gw[b], GHMC_N, &loss, grad) == HM_STATUS_OK, "ghmc status");
        check(close_scalar(loss, gl[b]), "ghmc loss");
        check(close_array(grad, gg[b], GHMC_N), "ghmc grad");
    }

    const float *rx[] = {ghmr_x0, ghmr_x1, ghmr_x2}, *rt[] = {ghmr_t0, ghmr_t1, ghmr_t2}, *rw[] = {ghmr_w0, ghmr_w1, ghmr_w2};
    const double rl[] = {ghmr_loss0, ghmr_loss1, ghmr_loss2}, *rg[] = {ghmr_grad0, ghmr_grad1, ghmr_grad2};
    check(hm_ghmr_init(&ghmr_state, ghmr_params[0], (size_t)ghmr_params[1], ghmr_params[2], ghmr_params[3]) == HM_STATUS_OK, "ghmr init");
    for (int b = 0; b < GHMR_BATCHES; b++) {
        check(hm_ghmr_value_and_grad(&ghmr_state, rx[b], rt[b], rw[b], GHMR_N, &loss, grad) == HM_STATUS_OK, "ghmr status");
        check(close_scalar(loss, rl[b]), "ghmr loss");
        check(close_array(grad, rg[b], GHMR_N), "ghmr grad");
    }

    size_t picked[OHEM_K], count = 0;
    check(hm_ohem_topk(ohem_losses, N(ohem_losses), OHEM_K, picked, &count) == HM_STATUS_OK, "ohem status");
    check(count == N(ohem_selected) && memcmp(picked, ohem_selected, sizeof(ohem_selected)) == 0, "ohem selection");

    /* Bad inputs: error codes, never a crash; state untouched after an error. */
    float bad[2] = {1.0f, NAN}, t2[2] = {0.0f, 1.0f}, g2[2];
    check(hm_sigmoid_focal(bad, t2, 2, 0.25f, 2.0f, HM_REDUCTION_SUM, &loss, g2) == HM_STATUS_NON_FINITE, "nan logit");
    check(hm_sigmoid_focal(t2, t2, 2, 0.25f, -1.0f, HM_REDUCTION_SUM, &loss, g2) == HM_STATUS_INVALID_PARAMETER, "bad gamma");
    float tbad[2] = {0.0f, 2.0f};
    check(hm_bce(t2, tbad, NULL, 2, HM_REDUCTION_MEAN, &loss, g2) == HM_STATUS_INVALID_TARGET, "bad target");
    check(hm_bce(NULL, t2, NULL, 2, HM_REDUCTION_MEAN, &loss, g2) == HM_STATUS_NULL_POINTER, "null pointer");
    HmGhmC before;
    memcpy(&before, &ghmc_state, sizeof before);
    check(hm_ghmc_value_and_grad(&ghmc_state, bad, t2, NULL, 2, &loss, g2) == HM_STATUS_NON_FINITE, "ghmc nan");
    check(memcmp(&before, &ghmc_state, sizeof before) == 0, "ghmc state unchanged after an error");
    check(hm_ghmc_init(&ghmc_state, 31, 0.5f, 1.0f) == HM_STATUS_INVALID_PARAMETER, "ghmc bins > capacity");
    check(hm_ohem_topk(ohem_losses, N(ohem_losses), 0, picked, &count) == HM_STATUS_INVALID_PARAMETER, "ohem k = 0");

    printf("c-abi: %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
