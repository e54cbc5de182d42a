//! `OcclusionSearch` and `DropoutMask`: window geometry (every window inside the map, the last
//! reaching each edge), the best is the lowest score (first on ties), the map is restored after
//! the search; masks drop exactly `pick` cells, all among the top.
#![no_main]
use hardmine::{DropoutMask, OcclusionSearch, SplitMix64};
use hardmine_fuzz::{padded, MapShape};
use libfuzzer_sys::fuzz_target;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    shape: MapShape,
    window: u8,
    stride: u8,
    values: Vec<i8>,
    top: u8,
    pick: u8,
    seed: u64,
}

fuzz_target!(|inp: Input| {
    let (c, h, w) = inp.shape.dims(4, 12);
    let Ok(search) = OcclusionSearch::new(
        c,
        h,
        w,
        usize::from(inp.window % 13),
        usize::from(inp.stride % 5),
    ) else {
        return;
    };
    let x: Vec<f32> = padded(&inp.values, c * h * w, 1);
    let mut scratch = vec![0.0f32; x.len()];
    let mut scores = vec![0.0f32; search.window_count()];
    let best = search
        .search(&x, &mut scratch, &mut scores, |f| {
            f.iter().map(|v| v * v).sum::<f32>()
        })
        .unwrap();
    assert_eq!(scratch, x, "the map is restored");
    let min = scores.iter().copied().fold(f32::INFINITY, f32::min);
    assert_eq!(scores.iter().position(|&s| s == min), Some(best));
    let win = usize::from(inp.window % 13);
    let starts: Vec<(usize, usize)> = (0..search.window_count())
        .map(|k| search.window(k).unwrap())
        .collect();
    assert!(starts.iter().all(|&(r, c)| r + win <= h && c + win <= w));
    assert!(starts.iter().any(|&(r, _)| r + win == h) && starts.iter().any(|&(_, c)| c + win == w));
    assert!(search.window(search.window_count()).is_none());

    let cells = h * w;
    let Ok(masks) = DropoutMask::new(
        c,
        h,
        w,
        usize::from(inp.top) % (cells + 1),
        usize::from(inp.pick % 64),
    ) else {
        return;
    };
    let scores: Vec<f32> = padded(&inp.values, cells, 0);
    let mut mask = vec![0.0f32; cells];
    masks
        .sample(&scores, &mut SplitMix64::new(inp.seed), &mut mask)
        .unwrap();
    let dropped: Vec<usize> = (0..cells).filter(|&i| mask[i] == 0.0).collect();
    assert_eq!(dropped.len(), usize::from(inp.pick % 64));
    let mut order: Vec<usize> = (0..cells).collect();
    order.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap().then(a.cmp(&b)));
    let top = &order[..usize::from(inp.top) % (cells + 1)];
    assert!(
        dropped.iter().all(|i| top.contains(i)),
        "drops only among the top"
    );
});
