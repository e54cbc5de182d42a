/* The C ABI suite (see suite.h). Tolerances as golden/README.md: f32 |got - exp| <=
 * 1e-5 |exp| + 1e-6 scale; Q15.16 2e-3 |exp| + 2e-3 scale + 3.1e-5, or, for a value beyond
 * +-16384, saturated with the right sign. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "hardmine.h"
#include "suite.h"
#include "golden_cases.h"

#define CALL(f, ...) (suite_probe_begin(), last = f(__VA_ARGS__), suite_probe_end(#f), last)

static HmStatus last;
static int failed, passed;

static void check(int ok, const char *what, const char *id) {
    char line[160];
    if (ok) {
        passed++;
        return;
    }
    failed++;
    snprintf(line, sizeof line, "FAIL %s %s", id, what);
    suite_print(line);
}

static double fabs_(double x) { return x < 0 ? -x : x; }

static double scale_of(const double *exp, size_t n, double floor1) {
    double s = floor1;
    for (size_t i = 0; i < n; i++) s = fabs_(exp[i]) > s ? fabs_(exp[i]) : s;
    return s;
}

static int close1(double got, double exp, double scale, int q16) {
    if (!q16) return fabs_(got - exp) <= 1e-5 * fabs_(exp) + 1e-6 * scale;
    if (exp > 16384.0 && got >= 32767.99) return 1;
    if (exp < -16384.0 && got <= -32767.99) return 1;
    return fabs_(got - exp) <= 2e-3 * fabs_(exp) + 2e-3 * scale + 3.1e-5;
}

/* Results of one call, on either path, as doubles. */
static float f_loss, f_grad[GOLDEN_MAX_N], f_elem[GOLDEN_MAX_N];
static int32_t q_loss, q_grad[GOLDEN_MAX_N], q_elem[GOLDEN_MAX_N];

static double got_loss(int q) { return q ? q_loss / 65536.0 : f_loss; }
static double got_at(int q, int grad, size_t i) {
    if (q) return (grad ? q_grad[i] : q_elem[i]) / 65536.0;
    return grad ? f_grad[i] : f_elem[i];
}

static void compare(const GoldenCase *c, int q) {
    const char *what = q ? "q16" : "f32";
    char tag[48];
    double s = c->loss > 1.0 || c->loss < -1.0 ? fabs_(c->loss) : 1.0;
    snprintf(tag, sizeof tag, "%s loss", what);
    check(close1(got_loss(q), c->loss, s, q), tag, c->id);
    double gs = scale_of(c->grad, c->n_grad, 0.0);
    int ok = 1;
    for (size_t i = 0; i < c->n_grad; i++) ok &= close1(got_at(q, 1, i), c->grad[i], gs, q);
    snprintf(tag, sizeof tag, "%s grad", what);
    check(ok, tag, c->id);
    if (c->n_vec) {
        double vs = scale_of(c->vec, c->n_vec, 0.0);
        ok = 1;
        for (size_t i = 0; i < c->n_vec; i++) ok &= close1(got_at(q, 0, i), c->vec[i], vs, q);
        snprintf(tag, sizeof tag, "%s elements", what);
        check(ok, tag, c->id);
    }
}

static void run_case(const GoldenCase *c) {
    const float *ff = c->has_factor ? &c->factor : NULL;
    const int32_t *fq = c->has_factor ? &c->factor_q : NULL;
    HmStatus sf = -1, sq = -1;
    switch (c->op) {
    case 0:
        sf = CALL(hm_bce_f32, c->a, c->b, c->w, c->n, c->reduction, ff, &f_loss, f_grad, f_elem);
        sq = CALL(hm_bce_q16, c->a_q, c->b_q, c->w_q, c->n, c->reduction, fq, &q_loss, q_grad, q_elem);
        break;
    case 1:
        sf = CALL(hm_sigmoid_focal_f32, c->a, c->b, c->n, c->alpha, c->gamma, c->reduction, ff, &f_loss, f_grad, f_elem);
        sq = CALL(hm_sigmoid_focal_q16, c->a_q, c->b_q, c->n, c->alpha_q, c->gamma_q, c->reduction, fq, &q_loss, q_grad, q_elem);
        break;
    case 2:
        sf = CALL(hm_sigmoid_focal_labels_f32, c->a, c->labels, c->w, c->rows, c->classes, c->alpha, NULL, c->gamma,
                  c->reduction, ff, &f_loss, f_grad, f_elem);
        sq = CALL(hm_sigmoid_focal_labels_q16, c->a_q, c->labels, c->w_q, c->rows, c->classes, c->alpha_q, NULL, c->gamma_q,
                  c->reduction, fq, &q_loss, q_grad, q_elem);
        break;
    case 3:
        sf = CALL(hm_softmax_ce_f32, c->a, c->labels, c->rows, c->classes, c->reduction, ff, &f_loss, f_grad, f_elem);
        sq = CALL(hm_softmax_ce_q16, c->a_q, c->labels, c->rows, c->classes, c->reduction, fq, &q_loss, q_grad, q_elem);
        break;
    case 4:
        sf = CALL(hm_softmax_focal_f32, c->a, c->labels, c->rows, c->classes, c->alpha, c->gamma, c->reduction, ff,
                  &f_loss, f_grad, f_elem);
        sq = CALL(hm_softmax_focal_q16, c->a_q, c->labels, c->rows, c->classes, c->alpha_q, c->gamma_q, c->reduction, fq,
                  &q_loss, q_grad, q_elem);
        break;
    case 5:
        sf = CALL(hm_smooth_l1_f32, c->a, c->b, c->n, c->par, c->reduction, ff, &f_loss, f_grad, f_elem);
        sq = CALL(hm_smooth_l1_q16, c->a_q, c->b_q, c->n, c->par_q, c->reduction, fq, &q_loss, q_grad, q_elem);
        break;
    case 6:
        sf = CALL(hm_asl1_f32, c->a, c->b, c->n, c->par, c->reduction, ff, &f_loss, f_grad, f_elem);
        sq = CALL(hm_asl1_q16, c->a_q, c->b_q, c->n, c->par_q, c->reduction, fq, &q_loss, q_grad, q_elem);
        break;
    }
    check(sf == HM_STATUS_OK, "f32 status", c->id);
    check(sq == HM_STATUS_OK, "q16 status", c->id);
    compare(c, 0);
    compare(c, 1);
}

/* Per-class alpha equal to the scalar alpha gives the scalar result (the label form's own
 * golden cases have no per-class alpha). */
static void class_alpha(void) {
    const GoldenCase *c = &golden_cases[6];
    float alpha[64];
    int32_t alpha_q[64];
    for (size_t j = 0; j < c->classes && j < 64; j++) {
        alpha[j] = c->alpha;
        alpha_q[j] = c->alpha_q;
    }
    float l1;
    int32_t q1;
    check(CALL(hm_sigmoid_focal_labels_f32, c->a, c->labels, c->w, c->rows, c->classes, c->alpha, alpha, c->gamma,
               c->reduction, NULL, &l1, NULL, NULL) == HM_STATUS_OK, "class alpha f32", c->id);
    check(close1(l1, c->loss, c->loss, 0), "class alpha f32 loss", c->id);
    check(CALL(hm_sigmoid_focal_labels_q16, c->a_q, c->labels, c->w_q, c->rows, c->classes, c->alpha_q, alpha_q,
               c->gamma_q, c->reduction, NULL, &q1, NULL, NULL) == HM_STATUS_OK, "class alpha q16", c->id);
    check(close1(q1 / 65536.0, c->loss, c->loss, 1), "class alpha q16 loss", c->id);
}

static HmGhmC ghmc;
static HmGhmR ghmr;

static void ghm(void) {
    const float *cx[] = {ghmc_x0, ghmc_x1, ghmc_x2}, *ct[] = {ghmc_t0, ghmc_t1, ghmc_t2}, *cw[] = {ghmc_w0, ghmc_w1, ghmc_w2};
    const int32_t *qx[] = {ghmc_x0_q, ghmc_x1_q, ghmc_x2_q}, *qt[] = {ghmc_t0_q, ghmc_t1_q, ghmc_t2_q},
                  *qw[] = {ghmc_w0_q, ghmc_w1_q, ghmc_w2_q};
    const double cl[] = {ghmc_loss0, ghmc_loss1, ghmc_loss2}, *cg[] = {ghmc_grad0, ghmc_grad1, ghmc_grad2};
    for (int q = 0; q < 2; q++) {
        HmStatus s = q ? CALL(hm_ghmc_init_q16, &ghmc, (size_t)ghmc_params_q[1], ghmc_params_q[2], ghmc_params_q[3])
                       : CALL(hm_ghmc_init_f32, &ghmc, (size_t)ghmc_params[1], ghmc_params[2], ghmc_params[3]);
        check(s == HM_STATUS_OK, "ghmc init", q ? "q16" : "f32");
        for (int b = 0; b < GHMC_BATCHES; b++) {
            s = q ? CALL(hm_ghmc_value_and_grad_q16, &ghmc, qx[b], qt[b], qw[b], GHMC_N, &q_loss, q_grad)
                  : CALL(hm_ghmc_value_and_grad_f32, &ghmc, cx[b], ct[b], cw[b], GHMC_N, &f_loss, f_grad);
            check(s == HM_STATUS_OK, "ghmc status", q ? "q16" : "f32");
            double gs = scale_of(cg[b], GHMC_N, 0.0);
            int ok = close1(got_loss(q), cl[b], cl[b] > 1 ? cl[b] : 1, q);
            for (int i = 0; i < GHMC_N; i++) ok &= close1(got_at(q, 1, (size_t)i), cg[b][i], gs, q);
            check(ok, "ghmc batch", q ? "q16" : "f32");
        }
    }
    const float *rx[] = {ghmr_x0, ghmr_x1, ghmr_x2}, *rt[] = {ghmr_t0, ghmr_t1, ghmr_t2}, *rw[] = {ghmr_w0, ghmr_w1, ghmr_w2};
    const int32_t *sx[] = {ghmr_x0_q, ghmr_x1_q, ghmr_x2_q}, *st[] = {ghmr_t0_q, ghmr_t1_q, ghmr_t2_q},
                  *sw[] = {ghmr_w0_q, ghmr_w1_q, ghmr_w2_q};
    const double rl[] = {ghmr_loss0, ghmr_loss1, ghmr_loss2}, *rg[] = {ghmr_grad0, ghmr_grad1, ghmr_grad2};
    for (int q = 0; q < 2; q++) {
        HmStatus s = q ? CALL(hm_ghmr_init_q16, &ghmr, ghmr_params_q[0], (size_t)ghmr_params_q[1], ghmr_params_q[2], ghmr_params_q[3])
                       : CALL(hm_ghmr_init_f32, &ghmr, ghmr_params[0], (size_t)ghmr_params[1], ghmr_params[2], ghmr_params[3]);
        check(s == HM_STATUS_OK, "ghmr init", q ? "q16" : "f32");
        for (int b = 0; b < GHMR_BATCHES; b++) {
            s = q ? CALL(hm_ghmr_value_and_grad_q16, &ghmr, sx[b], st[b], sw[b], GHMR_N, &q_loss, q_grad)
                  : CALL(hm_ghmr_value_and_grad_f32, &ghmr, rx[b], rt[b], rw[b], GHMR_N, &f_loss, f_grad);
            check(s == HM_STATUS_OK, "ghmr status", q ? "q16" : "f32");
            double gs = scale_of(rg[b], GHMR_N, 0.0);
            int ok = close1(got_loss(q), rl[b], rl[b] > 1 ? rl[b] : 1, q);
            for (int i = 0; i < GHMR_N; i++) ok &= close1(got_at(q, 1, (size_t)i), rg[b][i], gs, q);
            check(ok, "ghmr batch", q ? "q16" : "f32");
        }
    }
}

#define NMAX 512
static size_t scratch[NMAX], picked[NMAX];

static int same(const size_t *a, size_t na, const size_t *b, size_t nb) {
    return na == nb && memcmp(a, b, na * sizeof *a) == 0;
}

static void ohem(void) {
    size_t n = sizeof ohem_losses / sizeof ohem_losses[0], count = 0;
    size_t bytes = CALL(hm_ohem_scratch_bytes, n);
    size_t ns = sizeof ohem_selected / sizeof ohem_selected[0];
    check(bytes == n * sizeof(size_t) && n <= NMAX, "scratch bytes", "ohem");
    check(CALL(hm_ohem_topk_f32, ohem_losses, n, OHEM_K, scratch, bytes, picked, &count) == HM_STATUS_OK, "f32", "ohem");
    check(same(picked, count, ohem_selected, ns), "f32 selection", "ohem");
    check(CALL(hm_ohem_topk_q16, ohem_losses_q, n, OHEM_K, scratch, bytes, picked, &count) == HM_STATUS_OK, "q16", "ohem");
    check(same(picked, count, ohem_selected, ns), "q16 selection", "ohem");

    n = sizeof nms_losses / sizeof nms_losses[0];
    bytes = hm_ohem_scratch_bytes(n);
    ns = sizeof nms_selected / sizeof nms_selected[0];
    size_t nl = sizeof nms_label_selected / sizeof nms_label_selected[0];
    check(CALL(hm_ohem_topk_nms_f32, nms_losses, nms_boxes, NULL, n, NMS_K, NMS_IOU, scratch, bytes, picked, &count) == HM_STATUS_OK,
          "f32", "ohem nms");
    check(same(picked, count, nms_selected, ns), "f32 selection", "ohem nms");
    check(CALL(hm_ohem_topk_nms_q16, nms_losses_q, nms_boxes_q, NULL, n, NMS_K, NMS_IOU_Q, scratch, bytes, picked, &count) == HM_STATUS_OK,
          "q16", "ohem nms");
    check(same(picked, count, nms_selected, ns), "q16 selection", "ohem nms");
    check(CALL(hm_ohem_topk_nms_f32, nms_losses, nms_boxes, nms_labels, n, NMS_K, NMS_IOU, scratch, bytes, picked, &count) == HM_STATUS_OK,
          "f32", "ohem nms per label");
    check(same(picked, count, nms_label_selected, nl), "f32 selection", "ohem nms per label");
    check(CALL(hm_ohem_topk_nms_q16, nms_losses_q, nms_boxes_q, nms_labels, n, NMS_K, NMS_IOU_Q, scratch, bytes, picked, &count) == HM_STATUS_OK,
          "q16", "ohem nms per label");
    check(same(picked, count, nms_label_selected, nl), "q16 selection", "ohem nms per label");
}

/* The sampler: 1:3 rule on 200 examples with 30 positives, num = 64, pos_fraction 0.25 (exact
 * on both paths): 16 positives and 48 negatives, distinct, ascending, the positives positive;
 * the same seed gives the same picks on both paths, and the generator advances. */
static HmRng rng;
static size_t picks[2][64], sampler_scratch[64];

static void sampler(void) {
    uint8_t positive[200];
    size_t count[2] = {0, 0};
    for (int i = 0; i < 200; i++) positive[i] = (uint8_t)(i % 7 == 0 && i / 7 < 30);
    for (int q = 0; q < 2; q++) {
        check(CALL(hm_rng_init, &rng, 2024) == HM_STATUS_OK, "rng init", "sampler");
        size_t bytes = CALL(hm_sampler_scratch_bytes, 64);
        check(bytes <= sizeof sampler_scratch, "scratch bytes", "sampler");
        HmStatus s = q ? CALL(hm_balanced_sample_q16, positive, 200, 64, 16384, -65536, &rng, sampler_scratch, bytes, picks[q], &count[q])
                       : CALL(hm_balanced_sample_f32, positive, 200, 64, 0.25f, -1.0f, &rng, sampler_scratch, bytes, picks[q], &count[q]);
        check(s == HM_STATUS_OK, q ? "q16 status" : "f32 status", "sampler");
        size_t pos = 0;
        int ok = count[q] == 64;
        for (size_t i = 0; i < count[q]; i++) {
            pos += positive[picks[q][i]];
            if (i > 0) ok &= picks[q][i - 1] < picks[q][i];
        }
        check(ok && pos == 16, "sizes and order", "sampler");
    }
    check(same(picks[0], count[0], picks[1], count[1]), "f32 and q16 agree", "sampler");
    size_t again[64], n2 = 0;
    hm_balanced_sample_f32(positive, 200, 64, 0.25f, -1.0f, &rng, sampler_scratch, sizeof sampler_scratch, again, &n2);
    check(!same(again, n2, picks[1], count[1]), "the generator advanced", "sampler");
}

int suite_run(void) {
    char line[96];
    check(CALL(hm_version) == ((uint32_t)HM_VERSION_MAJOR << 16 | HM_VERSION_MINOR << 8 | HM_VERSION_PATCH),
          "header and library versions agree", "version");
    for (size_t i = 0; i < GOLDEN_CASES; i++) run_case(&golden_cases[i]);
    class_alpha();
    ghm();
    ohem();
    sampler();
    snprintf(line, sizeof line, "suite: %d passed, %d failed", passed, failed);
    suite_print(line);
    return failed;
}
