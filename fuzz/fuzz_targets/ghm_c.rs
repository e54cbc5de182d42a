//! `GhmC`: streaming with arbitrary chunking and merge order equals the one-shot call (loss,
//! gradient and moving average); the state is unchanged after an Err.
#![no_main]
use hardmine::GhmC;
use hardmine_fuzz::bounded;
use libfuzzer_sys::fuzz_target;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    bins: u8,
    momentum: u8,
    batches: Vec<(Vec<i16>, Vec<u8>, Vec<u8>)>,
    cuts: Vec<u16>,
    poison: Option<u16>,
}

fuzz_target!(|inp: Input| {
    let bins = 1 + usize::from(inp.bins % 30);
    let momentum = f64::from(inp.momentum % 100) / 100.0;
    let mut one = GhmC::<f64, 30>::new(bins, momentum, 1.0).unwrap();
    let mut streamed = one;
    for (raw, t, w) in inp.batches.iter().take(4) {
        let x: Vec<f64> = bounded(raw, 12.0).into_iter().map(f64::from).collect();
        let n = x.len();
        let t: Vec<f64> = (0..n)
            .map(|i| f64::from(t.get(i).copied().unwrap_or(0) % 2))
            .collect();
        let w: Vec<f64> = (0..n)
            .map(|i| f64::from(w.get(i).copied().unwrap_or(1) % 3))
            .collect();
        if let Some(p) = inp.poison.filter(|_| n > 0) {
            let mut bad = x.clone();
            bad[usize::from(p) % n] = f64::NAN;
            let before = one;
            assert!(one.value(&bad, &t, Some(&w)).is_err());
            assert_eq!(one, before, "state unchanged after an Err");
        }
        let mut g1 = vec![0.0; n];
        let l1 = one.value_and_grad(&x, &t, Some(&w), &mut g1).unwrap();
        // Chunks from the cut points, observed into two histograms in alternation, merged.
        let mut cuts: Vec<usize> = inp.cuts.iter().map(|&c| usize::from(c) % (n + 1)).collect();
        cuts.extend([0, n]);
        cuts.sort_unstable();
        cuts.dedup();
        let (mut a, mut b) = (streamed.histogram(), streamed.histogram());
        for (k, win) in cuts.windows(2).enumerate() {
            let h = if k % 2 == 0 { &mut a } else { &mut b };
            streamed
                .observe(
                    h,
                    &x[win[0]..win[1]],
                    &t[win[0]..win[1]],
                    Some(&w[win[0]..win[1]]),
                )
                .unwrap();
        }
        b.merge(&a).unwrap();
        let weights = streamed.finish(&b).unwrap();
        let mut g2 = vec![0.0; n];
        let mut l2 = 0.0;
        for win in cuts.windows(2) {
            let (s, e) = (win[0], win[1]);
            l2 += streamed
                .apply(
                    &weights,
                    &x[s..e],
                    &t[s..e],
                    Some(&w[s..e]),
                    Some(&mut g2[s..e]),
                )
                .unwrap();
        }
        assert_eq!(g1, g2, "gradients");
        assert!(
            (l1 - l2).abs() <= 1e-12 * l1.abs().max(1e-300),
            "loss {l1} vs {l2}"
        );
        assert_eq!(one, streamed, "moving averages");
        assert!(l1.is_finite() && g1.iter().all(|v| v.is_finite()));
    }
});
