#!/usr/bin/env python3
"""Check the project's COCO figures against pycocotools.

    python3 tools/coco_check.py GT.json DT.json SUMMARY.json [--tol 1e-4]

GT.json and DT.json are what `hardmine_cli::coco::{write_ground_truth, write_detections}` write
(`--coco-out DIR`); SUMMARY.json is the project's `coco::Summary` for the same boxes (keys `ap`,
`ap50`, `ap75`, `ar100`, `recall_at_1fp`, `per_class_ap`, `per_class_ap50`; missing keys are not
compared). pycocotools' COCOeval (bbox) recomputes them: stats[0], stats[1], stats[2], stats[8],
the per-class means of `eval['precision']`, and recall at one false positive per scene from
`evalImgs` at IoU 0.5 (the definition in cli/src/coco.rs). Prints every figure and the largest
difference, and exits 1 if any differs by more than --tol (2 on a usage or input error).
"""

import argparse
import contextlib
import io
import json
import sys

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def load(gt_path, dt_path):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        with open(dt_path) as f:
            dets = json.load(f)
        if dets:
            dt = gt.loadRes(dets)
        else:
            # loadRes cannot take an empty list (it reads anns[0]).
            dt = COCO()
            dt.dataset = {
                "images": list(gt.dataset["images"]),
                "categories": list(gt.dataset["categories"]),
                "annotations": [],
            }
            dt.createIndex()
    return gt, dt


def recall_at_1fp(ev):
    """Pool every kept detection of every class at IoU 0.5 and area 'all', sorted by score
    (stable; evalImgs runs class by class, image by image, so ties go as in the project), and
    read the recall at the last point where false positives <= number of images."""
    all_rng = ev.params.areaRng[0]
    scores, tp, ig = [], [], []
    n_gt = 0
    for e in ev.evalImgs:
        if e is None or list(e["aRng"]) != list(all_rng):
            continue
        n_gt += int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0))
        scores.extend(e["dtScores"])
        tp.extend((np.asarray(e["dtMatches"])[0] > 0).tolist())
        ig.extend(np.asarray(e["dtIgnore"])[0].astype(bool).tolist())
    if n_gt == 0:
        return -1.0
    order = np.argsort(-np.asarray(scores, dtype=float), kind="mergesort")
    max_fp = len(ev.params.imgIds)
    hits = fps = 0
    for i in order:
        if ig[i]:
            continue
        if tp[i]:
            hits += 1
        else:
            fps += 1
            if fps > max_fp:
                break
    return hits / n_gt


def reference(gt, dt):
    ev = COCOeval(gt, dt, "bbox")
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"]  # [T, R, K, A, M]; area 'all' is 0, maxDets 100 is 2
    per_ap, per_ap50 = [], []
    for k in range(prec.shape[2]):
        p = prec[:, :, k, 0, 2]
        per_ap.append(float(np.mean(p)) if np.all(p > -1) else -1.0)
        p50 = prec[0, :, k, 0, 2]
        per_ap50.append(float(np.mean(p50)) if np.all(p50 > -1) else -1.0)
    return {
        "ap": float(ev.stats[0]),
        "ap50": float(ev.stats[1]),
        "ap75": float(ev.stats[2]),
        "ar100": float(ev.stats[8]),
        "recall_at_1fp": recall_at_1fp(ev),
        "per_class_ap": per_ap,
        "per_class_ap50": per_ap50,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("gt")
    ap.add_argument("dt")
    ap.add_argument("summary")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    try:
        gt, dt = load(args.gt, args.dt)
        with open(args.summary) as f:
            ours = json.load(f)
    except (OSError, ValueError, KeyError, AssertionError) as e:
        print(f"coco_check: cannot load the inputs: {e}", file=sys.stderr)
        return 2
    ref = reference(gt, dt)
    worst = 0.0
    failed = []
    for key, want in ref.items():
        if key not in ours:
            continue
        got = ours[key]
        if isinstance(want, list):
            if not isinstance(got, list) or len(got) != len(want):
                failed.append(f"{key}: {len(got) if isinstance(got, list) else got} entries, "
                              f"pycocotools has {len(want)}")
                continue
            pairs = [(f"{key}[{i}]", g, w) for i, (g, w) in enumerate(zip(got, want))]
        else:
            pairs = [(key, got, want)]
        for name, g, w in pairs:
            d = abs(float(g) - float(w))
            worst = max(worst, d)
            if not d <= args.tol:
                failed.append(f"{name}: project {g!r}, pycocotools {w!r} (|diff| {d:.3g})")
        if not isinstance(want, list):
            print(f"{key:>14}: project {float(got):.12f}  pycocotools {want:.12f}")
    print(f"max |project - pycocotools| = {worst:.3g} (tolerance {args.tol:g})")
    for line in failed:
        print("MISMATCH " + line, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
