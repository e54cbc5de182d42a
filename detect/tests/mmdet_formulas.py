"""mmdetection's anchor formulas in emulated float32, for the golden values of tests/anchors.rs.

Runs with plain Python 3 (no numpy or torch): each float32 operation is done in f64 and rounded
to float32, which is exact for +, -, *, / and sqrt (f64 has more than 2 * 24 + 2 bits). The
steps are those of AnchorGenerator.gen_single_level_base_anchors and single_level_grid_priors
(mmdet/models/task_modules/prior_generators/anchor_generator.py), scale_major=True,
center_offset=0, base_size=stride.

    python3 detect/tests/mmdet_formulas.py
"""
import math
import struct


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def retinanet_anchors(stride, feat_h, feat_w, octave_base_scale=4, scales_per_octave=3,
                      ratios=(0.5, 1.0, 2.0), center_offset=0.0):
    # numpy: octave scales in f64, then torch.Tensor (float32).
    scales = [f32(2 ** (i / scales_per_octave) * octave_base_scale)
              for i in range(scales_per_octave)]
    ratios = [f32(r) for r in ratios]
    w = h = stride
    x_center = f32(center_offset * w)
    y_center = f32(center_offset * h)
    h_ratios = [f32(math.sqrt(r)) for r in ratios]
    w_ratios = [f32(1 / hr) for hr in h_ratios]
    base = []
    for wr, hr in zip(w_ratios, h_ratios):  # ratios outer, scales inner
        for s in scales:
            ws = f32(f32(w * wr) * s)
            hs = f32(f32(h * hr) * s)
            base.append([f32(x_center - f32(0.5 * ws)), f32(y_center - f32(0.5 * hs)),
                         f32(x_center + f32(0.5 * ws)), f32(y_center + f32(0.5 * hs))])
    out = []
    for y in range(feat_h):
        for x in range(feat_w):
            sx, sy = f32(x * stride), f32(y * stride)
            for b in base:
                out.append([f32(b[0] + sx), f32(b[1] + sy), f32(b[2] + sx), f32(b[3] + sy)])
    return out


if __name__ == "__main__":
    for a in retinanet_anchors(8, 1, 2):
        print("    [" + ", ".join(repr(v) for v in a) + "],")
