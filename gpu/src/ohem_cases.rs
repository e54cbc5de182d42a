// OHEM test inputs shared by the unit tests (`lib.rs`, host orchestration) and the device
// tests (`tests/gpu_vs_core.rs`, included there): losses on a coarse grid (many ties,
// including -0 against +0, and negatives) and boxes on a grid of `cells` x `cells` positions
// 4 apart, 16 wide, so NMS suppresses a good share.

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
