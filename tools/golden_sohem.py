#!/usr/bin/env python3
"""Generates golden/sohem.jsonl: S-OHEM selections computed in exact rational arithmetic.

Usage: python3 tools/golden_sohem.py > golden/sohem.jsonl
       python3 tools/golden_sohem.py --check   (exit 1 unless golden/sohem.jsonl is up to date)

The semantics are written from the method's description in golden/README.md (the `sohem` row),
not from the Rust code:

    c_i    = alpha(s) cls_i + beta(s) loc_i,  alpha(s) = 1 - s/2,  beta(s) = 1/2 + s/2
    strata = quantile: bin(c) = min(floor((c - min c) / (max c - min c) * 256), 255) (0 when all
             c are equal); stratum j (j >= 1) starts at the first bin b with
             #{i : bin(c_i) < b} * S >= j * N (256 when there is none), and an example belongs to
             the stratum whose bins hold its bin;
             preset: stratum j holds edge_{j-1} <= c < edge_j (edge_{-1} = -inf, edge_{S-1} = +inf)
    quota  = k // S each, plus one for each of the k % S hardest strata
    take   = easiest first, take_j = min(|stratum j|, quota_j + carry), the rest carried up;
             what is left after the hardest goes back down, hardest first, up to each one's size
    pick   = per stratum the take_j highest c, ties to the lower index

Every input is a multiple of 1/64 below 100 and progress is a multiple of 1/4, so every c is
exact in f32 and in Q15.16 as well. Each case is checked robust before it is written: every
(c - min c) / span * 256 is at least 0.05 from an integer (or exactly 0 or 256), and every c is
at least 1/32 from every edge, so rounding of the quotient on the f32 and Q15.16 paths cannot
move an example to another bin or stratum.
"""
import json
import random
import sys
from fractions import Fraction as F
from math import floor

BINS = 256
BIN_MARGIN = F(1, 20)
EDGE_MARGIN = F(1, 32)


def combined(cls, loc, s):
    alpha, beta = 1 - s / 2, F(1, 2) + s / 2
    return [alpha * x + beta * y for x, y in zip(cls, loc)]


def quantile_strata(c, strata):
    n = len(c)
    lo, hi = min(c), max(c)
    span = hi - lo

    def bin_of(v):
        return 0 if span == 0 else min(floor((v - lo) / span * BINS), BINS - 1)

    bins = [bin_of(v) for v in c]

    def below(b):
        return sum(1 for x in bins if x < b)

    first = [0] + [next((b for b in range(BINS) if below(b) * strata >= j * n), BINS)
                   for j in range(1, strata)]
    # The stratum of a bin: the last stratum starting at or below it.
    return [max(j for j in range(strata) if first[j] <= b) for b in bins]


def preset_strata(c, edges):
    return [sum(1 for e in edges if e <= v) for v in c]


def takes(sizes, k):
    strata = len(sizes)
    quotas = [k // strata + (1 if j >= strata - k % strata else 0) for j in range(strata)]
    take, carry = [], 0
    for q, size in zip(quotas, sizes):
        t = min(size, q + carry)
        take.append(t)
        carry = q + carry - t
    for j in reversed(range(strata)):
        extra = min(carry, sizes[j] - take[j])
        take[j] += extra
        carry -= extra
    return take


def select(cls, loc, k, strata, progress, edges=None):
    c = combined(cls, loc, progress)
    if not c:
        return []
    member = preset_strata(c, edges) if edges is not None else quantile_strata(c, strata)
    sizes = [member.count(j) for j in range(strata)]
    picked = []
    for j, t in enumerate(takes(sizes, k)):
        ranked = sorted((i for i in range(len(c)) if member[i] == j), key=lambda i: (-c[i], i))
        picked += ranked[:t]
    return sorted(picked)


def robust(cls, loc, progress, edges):
    c = combined(cls, loc, progress)
    if edges is not None:
        return all(abs(v - e) >= EDGE_MARGIN for v in c for e in edges)
    lo, hi = min(c), max(c)
    if hi == lo:
        return True
    for v in c:
        x = (v - lo) / (hi - lo) * BINS
        if x not in (0, BINS) and abs(x - round(x)) < BIN_MARGIN:
            return False
    return True


def draw(rng, n, top, levels=None):
    """n multiples of 1/64 in [0, top), or from `levels` distinct values when given (ties)."""
    if levels:
        pool = [F(rng.randrange(int(top * 64)), 64) for _ in range(levels)]
        return [rng.choice(pool) for _ in range(n)]
    return [F(rng.randrange(int(top * 64)), 64) for _ in range(n)]


def case(ident, k, strata, progress, cls, loc, edges=None):
    progress = F(progress)
    edges = None if edges is None else [F(e) for e in edges]
    assert all(0 <= v < 100 and (v * 64).denominator == 1 for v in cls + loc)
    assert edges is None or (len(edges) == strata - 1 and all(a < b for a, b in zip(edges, edges[1:])))
    assert robust(cls, loc, progress, edges), ident
    params = {"k": k, "strata": strata, "progress": float(progress)}
    if edges is not None:
        params["edges"] = [float(e) for e in edges]
    selected = select(cls, loc, k, strata, progress, edges)
    assert len(selected) == min(k, len(cls)), ident
    return {"id": ident, "op": "sohem", "params": params,
            "inputs": {"cls": [float(v) for v in cls], "loc": [float(v) for v in loc]},
            "expected": {"selected": selected}}


def robust_draw(rng, progress, edges, make):
    """Inputs from `make(rng)`, redrawn until the case is robust."""
    while True:
        cls, loc = make(rng)
        if robust(cls, loc, F(progress), None if edges is None else [F(e) for e in edges]):
            return cls, loc


def cases():
    rng = random.Random(2026)
    out = []

    def add(k, strata, progress, make, edges=None):
        cls, loc = robust_draw(rng, progress, edges, make)
        out.append(case(f"g-sohem-{len(out)}", k, strata, progress, cls, loc, edges))

    # Quantile strata.
    add(4, 2, 0.25, lambda r: (draw(r, 10, 4), draw(r, 10, 2)))
    add(8, 4, 0, lambda r: (draw(r, 24, 8), draw(r, 24, 4)))
    # Ties: losses on a few levels (equal pairs give equal c on every path).
    add(6, 3, 1, lambda r: tuple(map(list, zip(*[r.choice([(F(1, 2), F(1, 4)), (F(3, 2), F(1)),
                                                            (F(5, 4), F(3, 2)), (F(4), F(2)),
                                                            (F(3), F(11, 4))])
                                                  for _ in range(15)]))))
    # k > N: everything.
    add(16, 4, 0.5, lambda r: (draw(r, 9, 6), draw(r, 9, 6)))
    # Several strata.
    add(12, 8, 0.5, lambda r: (draw(r, 40, 60), draw(r, 40, 30)))
    # Quantile strata 1 and 2 empty (six examples in the lowest bin): their quotas roll over.
    add(4, 4, 0, lambda r: ([F(1, 4)] * 6 + [F(5), F(20)], [F(0)] * 8))
    # Preset edges, the paper's four segments.
    add(8, 4, 0.5, lambda r: (draw(r, 20, 6), draw(r, 20, 4)), edges=[2.5, 3.5, 4.5])
    # An empty middle segment: its quota rolls over to the next harder one.
    add(8, 4, 0, lambda r: ([F(1, 8), F(1, 4), F(3, 8), F(5, 8), F(7, 8),
                              F(5, 2), F(11, 4), F(3), F(13, 4), F(7, 2), F(15, 4),
                              F(9), F(10), F(11)], [F(0)] * 14), edges=[1, 2, 8])
    # An empty hardest segment: its quota goes back down, hardest first.
    add(6, 3, 1, lambda r: (draw(r, 12, 4), draw(r, 12, 2)), edges=[1.5, 50])
    # k > N with edges.
    add(12, 4, 0.25, lambda r: (draw(r, 7, 8), draw(r, 7, 8)), edges=[2, 4, 6])
    # Ties with edges, progress 1 (localisation dominates).
    add(6, 3, 1, lambda r: (draw(r, 18, 6, levels=4), draw(r, 18, 6, levels=3)), edges=[3, 6.5])
    # Every example below the first edge: all quotas carry up and come back to stratum 0.
    add(5, 4, 0.5, lambda r: (draw(r, 11, 3), draw(r, 11, 3)), edges=[20, 40, 80])
    return out


def render():
    return "".join(json.dumps(c, separators=(",", ":")) + "\n" for c in cases())


if __name__ == "__main__":
    text = render()
    if sys.argv[1:] == ["--check"]:
        with open("golden/sohem.jsonl") as f:
            sys.exit(0 if f.read() == text else "golden/sohem.jsonl is not what tools/golden_sohem.py writes")
    sys.stdout.write(text)
