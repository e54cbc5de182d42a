//! GHM's streaming API equals the one-shot call; histograms merge by adding counts.

use hardmine::{GhmC, GhmR};
use hardmine_host_tests::random;

#[test]
fn streaming_equals_one_shot_for_any_chunking() {
    let mut r = random::rng(900);
    let n = 1000;
    let x: Vec<f32> = random::uniform(&mut r, n, -9.0, 5.0)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let t: Vec<f32> = (0..n)
        .map(|_| if r.below(20) == 0 { 1.0 } else { 0.0 })
        .collect();
    let w: Vec<f32> = (0..n)
        .map(|_| if r.below(10) == 0 { 0.0 } else { 1.0 })
        .collect();
    // With label weights, and without (every element counts: chunks that end mid-lane must
    // not count their padding).
    for masked in [true, false] {
        streaming_matches(&x, &t, masked.then_some(&w[..]));
    }
}

fn streaming_matches(x: &[f32], t: &[f32], w: Option<&[f32]>) {
    let n = x.len();
    let mut one = GhmC::<f32, 30>::new(30, 0.75, 1.0).unwrap();
    let mut streamed = one;
    for batch in 0..3 {
        let mut g_one = vec![0.0f32; n];
        let l_one = one.value_and_grad(x, t, w, &mut g_one).unwrap();

        // Cut the batch into uneven chunks, counted by two "workers" and merged.
        let cuts = [0, 1, 37 + batch, 500, 501, 999, n];
        let mut a = streamed.histogram();
        let mut b = streamed.histogram();
        for (k, win) in cuts.windows(2).enumerate() {
            let (s, e) = (win[0], win[1]);
            let hist = if k % 2 == 0 { &mut a } else { &mut b };
            streamed
                .observe(hist, &x[s..e], &t[s..e], w.map(|w| &w[s..e]))
                .unwrap();
        }
        a.merge(&b).unwrap();
        let valid = w.map_or(n, |w| w.iter().filter(|&&v| v > 0.0).count());
        assert_eq!(a.total(), valid as u64);
        let weights = streamed.finish(&a).unwrap();
        let mut g = vec![0.0f32; n];
        let mut l = 0.0f64;
        for win in cuts.windows(2) {
            let (s, e) = (win[0], win[1]);
            l += f64::from(
                streamed
                    .apply(
                        &weights,
                        &x[s..e],
                        &t[s..e],
                        w.map(|w| &w[s..e]),
                        Some(&mut g[s..e]),
                    )
                    .unwrap(),
            );
        }
        assert_eq!(g, g_one, "batch {batch}: streamed gradient differs");
        assert!(
            (l - f64::from(l_one)).abs() <= 1e-6 * f64::from(l_one),
            "batch {batch}: {l} vs {l_one}"
        );
        assert_eq!(streamed, one, "batch {batch}: moving averages differ");
    }
}

#[test]
fn ghm_r_streaming_equals_one_shot() {
    let mut r = random::rng(901);
    let n = 300;
    let p = random::uniform(&mut r, n, -1.0, 1.0);
    let q = random::uniform(&mut r, n, -1.0, 1.0);
    let mut one = GhmR::<f64, 10>::new(0.02, 10, 0.7, 10.0).unwrap();
    let mut streamed = one;
    let l_one = one.value(&p, &q, None).unwrap();
    let mut hist = streamed.histogram();
    for c in p.chunks(64).zip(q.chunks(64)) {
        streamed.observe(&mut hist, c.0, c.1, None).unwrap();
    }
    let weights = streamed.finish(&hist).unwrap();
    let l: f64 = p
        .chunks(64)
        .zip(q.chunks(64))
        .map(|c| streamed.apply(&weights, c.0, c.1, None, None).unwrap())
        .sum();
    assert!((l - l_one).abs() <= 1e-12 * l_one, "{l} vs {l_one}");
    assert_eq!(streamed, one);
}

#[test]
fn memory_does_not_grow_with_the_batch() {
    // The state is O(BINS): one accumulator per bin plus a few parameters, for any batch.
    assert!(core::mem::size_of::<GhmC<f32, 30>>() <= 30 * 8 + 32);
    assert!(core::mem::size_of::<hardmine::GradientHistogram<30>>() <= 30 * 8 + 8);
}
