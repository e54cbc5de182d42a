// OHEM test inputs and the comparison with the core, shared by the unit tests (`lib.rs`, host
// orchestration) and the device tests (`tests/gpu_vs_core.rs`, included there): losses on a
// coarse grid (many ties, including -0 against +0, and negatives) and boxes on a grid of
// `cells` x `cells` positions 4 apart, 16 wide, so NMS suppresses a good share.

/// `n` losses and their `4 n` box coordinates.
fn ohem_case(r: &mut hardmine::SplitMix64, n: usize, cells: u64) -> (Vec<f32>, Vec<f32>) {
    let losses = (0..n)
        .map(|i| match i % 7 {
            0 => 0.0,
            1 => -0.0,
            _ => (r.below(64) as f32 - 8.0) * 0.25,
        })
        .collect();
    let boxes = (0..n)
        .flat_map(|_| {
            let (x, y) = (r.below(cells) as f32 * 4.0, r.below(cells) as f32 * 4.0);
            [x, y, x + 16.0, y + 16.0]
        })
        .collect();
    (losses, boxes)
}

/// Checks `select(ohem, boxes, labels)` on `losses` (ascending indices, as
/// `Selection::indices`) against the core: the top `k` without NMS, then NMS at each of
/// `ious`, over all boxes and per label (three classes and the ignored -1).
fn ohem_matches_core(
    k: usize,
    (losses, boxes): (&[f32], &[f32]),
    ious: &[f32],
    mut select: impl FnMut(&hardmine::Ohem<f32, 512>, Option<&[f32]>, Option<&[i32]>) -> Vec<usize>,
) {
    let n = losses.len();
    let plain = hardmine::Ohem::<f32, 512>::new(k).unwrap();
    let exp = plain.select(losses, None).unwrap();
    assert_eq!(select(&plain, None, None), exp.indices(), "n {n}, k {k}");
    let labels: Vec<i32> = (0..n).map(|i| (i % 4) as i32 - 1).collect();
    for &iou in ious {
        let nms = plain.with_nms(iou).unwrap();
        let exp = nms.select(losses, Some(boxes)).unwrap();
        let got = select(&nms, Some(boxes), None);
        assert_eq!(got, exp.indices(), "n {n}, k {k}, nms {iou}");
        let exp = nms.select_per_label(losses, Some(boxes), &labels).unwrap();
        let got = select(&nms, Some(boxes), Some(&labels));
        assert_eq!(got, exp.indices(), "per label: n {n}, k {k}, nms {iou}");
    }
}
