#!/usr/bin/env python3
"""Generates golden/avg_factor.jsonl: loss cases normalised by a caller's `avg_factor`.

Usage: python3 tools/golden_avg_factor.py > golden/avg_factor.jsonl
       python3 tools/golden_avg_factor.py --check   (exit 1 unless golden/avg_factor.jsonl is up
                                                     to date, and the formulas below reproduce
                                                     the other vendored golden cases)

The semantics are mmdetection's `weight_reduce_loss(loss, weight, reduction, avg_factor)`
(mmdet/models/losses/utils.py), written here from its definition, not from the Rust code:

    reduction "mean" with avg_factor:  loss = sum(per-element losses) / (avg_factor + eps)
    reduction "none" with avg_factor:  the per-element losses, unchanged (the factor is ignored)
    reduction "sum"  with avg_factor:  ValueError (not a golden case: host-tests bad_input.rs)
    eps = torch.finfo(torch.float32).eps = 2^-23, in every dtype

and the per-element losses and gradients are those of the ops' rows in golden/README.md:

    bce_with_logits        w (max(x, 0) - t x + ln(1 + e^-|x|))         d/dx = w (sigma(x) - t)
    sigmoid_focal          a_t ce q^gamma, q = 1 - p_t                   (torchvision)
    sigmoid_focal_labels   the same on the one-hot of the labels, times the row's label weight
    softmax_cross_entropy  logsumexp(x_i) - x_iy (0 for a negative label) d/dx = softmax - onehot
    smooth_l1              0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta (beta 0: |d|, sign(d))

Everything is evaluated in 60-digit arithmetic (mpmath) and rounded once to f64; every input is
an f32 value. Gradients are analytic and checked here against mpmath's numerical derivative.
`--check` also recomputes every case of these ops in the other golden files (no avg_factor) and
requires them to agree to 1e-13 of each array's largest value, so the formulas are the ones those cases were made by.
"""
import json
import random
import struct
import sys

import mpmath as mp

mp.mp.dps = 60
EPS = mp.mpf(2) ** -23
OUT = "golden/avg_factor.jsonl"


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def sigmoid(x):
    return 1 / (1 + mp.exp(-x))


def bce(x, t):
    return max(x, 0) - t * x + mp.log1p(mp.exp(-abs(x)))


def bce_grad(x, t):
    return (1 - t) * sigmoid(x) - t * sigmoid(-x)


def focal(alpha, gamma):
    # q = 1 - p_t as t sigma(-x) + (1 - t) sigma(x): no cancellation at saturated logits.
    def loss(x, t):
        q = t * sigmoid(-x) + (1 - t) * sigmoid(x)
        a_t = 1 if alpha < 0 else alpha * t + (1 - alpha) * (1 - t)
        return a_t * bce(x, t) * q**gamma

    def grad(x, t):
        q = t * sigmoid(-x) + (1 - t) * sigmoid(x)
        dq = (1 - 2 * t) * sigmoid(x) * sigmoid(-x)
        a_t = 1 if alpha < 0 else alpha * t + (1 - alpha) * (1 - t)
        g = q**gamma * bce_grad(x, t)
        if gamma != 0:
            g += gamma * bce(x, t) * q ** (gamma - 1) * dq
        return a_t * g

    return loss, grad


def smooth_l1(beta):
    def loss(p, t):
        d = p - t
        return mp.mpf(0.5) * d * d / beta if abs(d) < beta else abs(d) - mp.mpf(0.5) * beta

    def grad(p, t):
        d = p - t
        return d / beta if abs(d) < beta else mp.sign(d)

    return loss, grad


def check_grad(loss, grad, x, t):
    # Away from a kink (smooth L1's |d| = beta, L1's d = 0) only.
    num = mp.diff(lambda v: loss(v, t), x)
    ana = grad(x, t)
    assert abs(num - ana) <= mp.mpf(10) ** -30 * max(1, abs(ana)), (x, t, num, ana)


def reduce(losses, grads, reduction, avg_factor):
    """The scalar (or vector) and the gradient of what is returned, with mmdetection's rule."""
    total = mp.fsum(losses)
    if reduction == "none":
        return [float(v) for v in losses], [float(g) for g in grads]
    if reduction == "sum":
        assert avg_factor is None, "avg_factor with sum is an error"
        div = mp.mpf(1)
    elif avg_factor is None:
        div = None
    else:
        div = mp.mpf(avg_factor) + EPS
    if div is None:
        raise ValueError("plain mean: the op's own count")
    return float(total / div), [float(g / div) for g in grads]


def elementwise(op, params, inputs):
    """Per-element (loss, grad) of an element-wise op, and the plain mean's count."""
    if op == "bce_with_logits":
        xs, ts = inputs["logits"], inputs["targets"]
        ws = inputs.get("weights") or [1.0] * len(xs)
        ls = [w * bce(mp.mpf(x), mp.mpf(t)) for x, t, w in zip(xs, ts, ws)]
        gs = [w * bce_grad(mp.mpf(x), mp.mpf(t)) for x, t, w in zip(xs, ts, ws)]
        return ls, gs, len(xs)
    if op == "sigmoid_focal":
        loss, grad = focal(mp.mpf(params["alpha"]), mp.mpf(params["gamma"]))
        xs, ts = inputs["logits"], inputs["targets"]
        for x, t in zip(xs[:4], ts[:4]):
            check_grad(loss, grad, mp.mpf(x), mp.mpf(t))
        ls = [loss(mp.mpf(x), mp.mpf(t)) for x, t in zip(xs, ts)]
        gs = [grad(mp.mpf(x), mp.mpf(t)) for x, t in zip(xs, ts)]
        return ls, gs, len(xs)
    if op == "sigmoid_focal_labels":
        loss, grad = focal(mp.mpf(params["alpha"]), mp.mpf(params["gamma"]))
        c, xs, ys = params["classes"], inputs["logits"], inputs["labels"]
        ws = inputs.get("label_weights") or [1.0] * len(ys)
        ls, gs = [], []
        for i, (y, w) in enumerate(zip(ys, ws)):
            for j in range(c):
                x, t = mp.mpf(xs[i * c + j]), mp.mpf(1 if y == j else 0)
                ls.append(w * loss(x, t))
                gs.append(w * grad(x, t))
        return ls, gs, len(xs)
    if op == "smooth_l1":
        beta = mp.mpf(params["beta"])
        ps, ts = inputs["pred"], inputs["target"]
        if beta == 0:
            ls = [abs(mp.mpf(p) - mp.mpf(t)) for p, t in zip(ps, ts)]
            gs = [mp.sign(mp.mpf(p) - mp.mpf(t)) for p, t in zip(ps, ts)]
        else:
            loss, grad = smooth_l1(beta)
            for p, t in zip(ps[:4], ts[:4]):
                if abs(abs(mp.mpf(p) - mp.mpf(t)) - beta) > mp.mpf(10) ** -6:
                    check_grad(loss, grad, mp.mpf(p), mp.mpf(t))
            ls = [loss(mp.mpf(p), mp.mpf(t)) for p, t in zip(ps, ts)]
            gs = [grad(mp.mpf(p), mp.mpf(t)) for p, t in zip(ps, ts)]
        return ls, gs, len(ps)
    raise KeyError(op)


def softmax_ce(params, inputs):
    """Per-row losses, the gradient and the count of rows not ignored."""
    c, xs, ys = params["classes"], inputs["logits"], inputs["labels"]
    ls, gs, counted = [], [], 0
    for i, y in enumerate(ys):
        row = [mp.mpf(v) for v in xs[i * c:(i + 1) * c]]
        if y < 0:
            ls.append(mp.mpf(0))
            gs += [mp.mpf(0)] * c
            continue
        counted += 1
        lse = mp.log(mp.fsum(mp.exp(v) for v in row))
        ls.append(lse - row[y])
        gs += [mp.exp(v - lse) - (1 if j == y else 0) for j, v in enumerate(row)]
    return ls, gs, counted


def expected(case):
    op, params, inputs = case["op"], case["params"], case["inputs"]
    if op == "softmax_cross_entropy":
        ls, gs, count = softmax_ce(params, inputs)
    else:
        ls, gs, count = elementwise(op, params, inputs)
    reduction, factor = params.get("reduction", "mean"), params.get("avg_factor")
    if reduction == "mean" and factor is None:
        div = mp.mpf(count) if count else mp.mpf(1)
        return {"loss": float(mp.fsum(ls) / div), "grad": [float(g / div) for g in gs]}
    loss, grad = reduce(ls, gs, reduction, factor)
    return {"loss": loss, "grad": grad}


def cases():
    rng = random.Random(17)

    def vals(n, lo, hi):
        return [f32(rng.uniform(lo, hi)) for _ in range(n)]

    def hard(n, p):
        return [1.0 if rng.random() < p else 0.0 for _ in range(n)]

    out = []

    def add(ident, op, params, inputs):
        c = {"id": ident, "op": op, "params": params, "inputs": inputs}
        c["expected"] = expected(c)
        out.append(c)

    x, t = vals(37, -6, 6), hard(37, 0.3)
    w = [f32(v) for v in vals(37, 0, 2)]
    add("af-bce-mean", "bce_with_logits", {"reduction": "mean", "avg_factor": 11.0},
        {"logits": x, "targets": t})
    add("af-bce-mean-frac-weights", "bce_with_logits", {"reduction": "mean", "avg_factor": 2.75},
        {"logits": x, "targets": vals(37, 0, 1), "weights": w})
    add("af-bce-zero", "bce_with_logits", {"reduction": "mean", "avg_factor": 0.0},
        {"logits": x[:9], "targets": t[:9]})
    add("af-bce-none", "bce_with_logits", {"reduction": "none", "avg_factor": 5.0},
        {"logits": x[:12], "targets": t[:12]})

    x, t = vals(300, -8, 8), hard(300, 0.05)
    add("af-focal-mean", "sigmoid_focal", {"alpha": 0.25, "gamma": 2.0, "reduction": "mean",
                                           "avg_factor": 13.0}, {"logits": x, "targets": t})
    add("af-focal-frac", "sigmoid_focal", {"alpha": 0.25, "gamma": 1.5, "reduction": "mean",
                                           "avg_factor": 0.375}, {"logits": x[:40], "targets": t[:40]})
    add("af-focal-zero", "sigmoid_focal", {"alpha": -1, "gamma": 2.0, "reduction": "mean",
                                           "avg_factor": 0.0}, {"logits": x[:16], "targets": t[:16]})
    add("af-focal-none", "sigmoid_focal", {"alpha": 0.25, "gamma": 2.0, "reduction": "none",
                                           "avg_factor": 3.0}, {"logits": x[:10], "targets": t[:10]})

    n, c = 24, 5
    labels = [rng.choice([0, 1, 2, 3, 4] if k % 4 == 0 else [5, -1, 5, 7]) for k in range(n)]
    add("af-focal-labels-mean", "sigmoid_focal_labels",
        {"alpha": 0.25, "gamma": 2.0, "reduction": "mean", "classes": c,
         "avg_factor": float(sum(1 for y in labels if 0 <= y < c))},
        {"logits": vals(n * c, -7, 5), "labels": labels,
         "label_weights": [0.0 if k % 7 == 3 else 1.0 for k in range(n)]})
    add("af-focal-labels-ema", "sigmoid_focal_labels",
        {"alpha": 0.25, "gamma": 2.0, "reduction": "mean", "classes": c, "avg_factor": 90.3},
        {"logits": vals(n * c, -7, 5), "labels": labels})

    n, c = 9, 4
    labels = [rng.randrange(-1, c) for _ in range(n)]
    labels[0] = 2
    add("af-ce-mean", "softmax_cross_entropy", {"classes": c, "reduction": "mean",
                                                "avg_factor": 2.5},
        {"logits": vals(n * c, -5, 5), "labels": labels})
    add("af-ce-zero", "softmax_cross_entropy", {"classes": c, "reduction": "mean",
                                                "avg_factor": 0.0},
        {"logits": vals(3 * c, -2, 2), "labels": [1, -1, 0]})
    add("af-ce-none", "softmax_cross_entropy", {"classes": c, "reduction": "none",
                                                "avg_factor": 4.0},
        {"logits": vals(n * c, -5, 5), "labels": labels})

    # Box deltas: |d| kept at least 0.02 from beta, so quantised inputs stay on their branch.
    def deltas(n, beta):
        p, t = [], []
        while len(p) < n:
            a, b = f32(rng.uniform(-1.5, 1.5)), f32(rng.uniform(-1.5, 1.5))
            if abs(abs(a - b) - beta) >= 0.02:
                p.append(a)
                t.append(b)
        return p, t

    p, t = deltas(40, 1 / 9)
    add("af-sl1-mean", "smooth_l1", {"beta": 0.1111111111111111, "reduction": "mean",
                                     "avg_factor": 6.0}, {"pred": p, "target": t})
    add("af-sl1-frac", "smooth_l1", {"beta": 1.0, "reduction": "mean", "avg_factor": 1.5},
        {"pred": p, "target": t})
    p, t = deltas(20, 0.0)
    p[3], p[11] = t[3], t[11]  # d = 0: L1's gradient is 0 there
    add("af-l1-mean", "smooth_l1", {"beta": 0.0, "reduction": "mean", "avg_factor": 3.0},
        {"pred": p, "target": t})
    add("af-l1-plain-mean", "smooth_l1", {"beta": 0.0, "reduction": "mean"},
        {"pred": p, "target": t})
    add("af-l1-zero", "smooth_l1", {"beta": 0.0, "reduction": "mean", "avg_factor": 0.0},
        {"pred": p[:6], "target": t[:6]})
    add("af-sl1-none", "smooth_l1", {"beta": 0.5, "reduction": "none", "avg_factor": 2.0},
        {"pred": p, "target": t})
    return out


def text():
    return "".join(json.dumps(c, separators=(",", ":")) + "\n" for c in cases())


def close(a, b):
    """Within 1e-13 of the larger magnitude (of the array, for arrays: one vendored case has
    0 for a 4e-131 loss)."""
    if isinstance(a, list):
        scale = max([abs(v) for v in a + b] + [1e-300])
        return len(a) == len(b) and all(abs(x - y) <= 1e-13 * scale for x, y in zip(a, b))
    return abs(a - b) <= 1e-13 * max(abs(a), abs(b)) + 1e-300


def check_others():
    files = ["bce_with_logits", "sigmoid_focal", "sigmoid_focal_labels", "softmax_cross_entropy",
             "smooth_l1"]
    bad = 0
    for name in files:
        for line in open(f"golden/{name}.jsonl"):
            case = json.loads(line)
            got = expected(case)
            exp = case["expected"]
            if not (close(got["loss"], exp["loss"]) and close(got["grad"], exp["grad"])):
                print(f"{case['id']}: these formulas disagree with the vendored case")
                bad += 1
    return bad


if __name__ == "__main__":
    if "--check" in sys.argv:
        bad = check_others()
        if open(OUT).read() != text():
            print(f"{OUT} is not what tools/golden_avg_factor.py generates")
            bad += 1
        sys.exit(1 if bad else 0)
    sys.stdout.write(text())
