//! COCO's box conventions, shared by the host's COCO evaluator and the device's AP.

/// `[x1, y1, x2, y2]` to COCO's `[x, y, w, h]`.
pub fn to_xywh(b: [f64; 4]) -> [f64; 4] {
    [b[0], b[1], b[2] - b[0], b[3] - b[1]]
}

/// IoU of two `[x, y, w, h]` boxes, as pycocotools' `bbIou` (no crowd) computes it, in its
/// operation order, so that results agree to the last bit.
pub fn iou_xywh(d: [f64; 4], g: [f64; 4]) -> f64 {
    let ga = g[2] * g[3];
    let da = d[2] * d[3];
    let w = (d[2] + d[0]).min(g[2] + g[0]) - d[0].max(g[0]);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (d[3] + d[1]).min(g[3] + g[1]) - d[1].max(g[1]);
    if h <= 0.0 {
        return 0.0;
    }
    let i = w * h;
    i / (da + ga - i)
}
