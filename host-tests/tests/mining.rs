//! Miners against brute force: TopK, NMS and OHEM (ties, multiple pool passes, per label), the
//! mmdetection OHEM sampler, the balanced sampler's proportions and uniformity, S-OHEM quotas,
//! census sums, and the bad-input rows of the mining issue.

use hardmine::{
    nms, BalancedSampler, Budget, Census, Error, GhmC, Group, Ohem, OhemSampler, SOhem, Selection,
    SigmoidFocal, SplitMix64, TopK,
};
use hardmine_host_tests::random;
use hardmine_host_tests::reference as oracle;

/// Losses with many ties: values on a coarse grid.
/// The `LengthMismatch` a call with a slice of the wrong length returns.
fn mismatch<T>(expected: usize, got: usize) -> Result<T, Error> {
    Err(Error::LengthMismatch { expected, got })
}

fn tied_losses(r: &mut SplitMix64, n: usize, levels: u64) -> Vec<f64> {
    (0..n).map(|_| r.below(levels) as f64 * 0.25).collect()
}

/// Random boxes, clustered so NMS suppresses a lot.
fn boxes(r: &mut SplitMix64, n: usize, integer: bool) -> Vec<f64> {
    let mut b = Vec::with_capacity(4 * n);
    for _ in 0..n {
        let (cx, cy) = (r.below(8) as f64 * 10.0, r.below(8) as f64 * 10.0);
        let mut v = [cx + r.unit_f64() * 6.0, cy + r.unit_f64() * 6.0, 0.0, 0.0];
        v[2] = v[0] + 4.0 + r.unit_f64() * 12.0;
        v[3] = v[1] + 4.0 + r.unit_f64() * 12.0;
        if integer {
            v.iter_mut().for_each(|x| *x = x.round());
            v[2] = v[2].max(v[0]);
            v[3] = v[3].max(v[1]);
        }
        b.extend_from_slice(&v);
    }
    b
}

#[test]
fn top_k_equals_a_full_sort() {
    for (round, mut r) in random::rounds(1000, 50) {
        let n = r.below(300) as usize;
        let k = 1 + r.below(40) as usize;
        let losses = tied_losses(&mut r, n, 6);
        let mut top = TopK::<f64, 40>::new(k).unwrap();
        // Stream in uneven pieces.
        let cut = n / 3;
        top.extend(0, &losses[..cut]).unwrap();
        for (i, &l) in losses.iter().enumerate().skip(cut) {
            top.push(i, l).unwrap();
        }
        let mut exp: Vec<usize> = oracle::ranking(&losses).into_iter().take(k).collect();
        let mut idx = vec![0usize; k];
        let mut keys = vec![0.0f64; k];
        let m = top.write_sorted(&mut idx, &mut keys);
        assert_eq!(&idx[..m], &exp[..], "round {round}: order");
        // The same keys in pieces offered back to front: a later piece holds lower indices,
        // so equal keys must displace kept ones on the index tie-break (the screened path).
        let mut rev = TopK::<f64, 40>::new(k).unwrap();
        let pieces: Vec<usize> = (0..=n).step_by(1 + n / 5).chain([n]).collect();
        for w in pieces.windows(2).rev() {
            rev.extend(w[0], &losses[w[0]..w[1]]).unwrap();
        }
        let mut idx_rev = vec![0usize; k];
        let m_rev = rev.write_sorted(&mut idx_rev, &mut keys);
        assert_eq!(
            &idx_rev[..m_rev],
            &exp[..],
            "round {round}: reversed pieces"
        );
        exp.sort_unstable();
        assert_eq!(top.selection().indices(), &exp[..], "round {round}");
    }
}

#[test]
fn ohem_and_nms_equal_brute_force_across_pool_passes() {
    for (round, mut r) in random::rounds(1100, 60) {
        let n = 1 + r.below(400) as usize;
        let k = 1 + r.below(16) as usize;
        let thr = [0.0, 0.3, 0.5, 0.7, 1.0][round as usize % 5];
        let losses = tied_losses(&mut r, n, 9);
        let b = boxes(&mut r, n, false);
        let labels = random::labels(&mut r, n, 0, 3);
        // Capacity 16 with k up to 16: heavy suppression forces many pool passes.
        let ohem = Ohem::<f64, 16>::new(k).unwrap().with_nms(thr).unwrap();
        let got = ohem.select(&losses, Some(&b)).unwrap();
        assert_eq!(
            got.indices(),
            &oracle::ohem(&losses, Some(&b), None, thr, k)[..],
            "round {round}"
        );
        let got = ohem.select_per_label(&losses, Some(&b), &labels).unwrap();
        assert_eq!(
            got.indices(),
            &oracle::ohem(&losses, Some(&b), Some(&labels), thr, k)[..],
            "round {round} per label"
        );
        let got = nms::<f64, 16>(&losses, &b, thr, k).unwrap();
        assert_eq!(
            got.indices(),
            &oracle::ohem(&losses, Some(&b), None, thr, k)[..],
            "round {round} nms"
        );
        // f32 on integer boxes (every IoU exact enough to compare the same way).
        let bi = boxes(&mut r, n, true);
        let ohem32 = Ohem::<f32, 16>::new(k)
            .unwrap()
            .with_nms(thr as f32)
            .unwrap();
        let l32: Vec<f32> = losses.iter().map(|&v| v as f32).collect();
        let b32: Vec<f32> = bi.iter().map(|&v| v as f32).collect();
        let got = ohem32.select(&l32, Some(&b32)).unwrap();
        assert_eq!(
            got.indices(),
            &oracle::ohem(&losses, Some(&bi), None, thr, k)[..],
            "round {round} f32"
        );
    }
}

/// `Ohem` of capacity `C` and NMS at `thr` selects the `k` the brute-force oracle selects.
fn nms_matches_oracle<const C: usize>(losses: &[f64], b: &[f64], thr: f64, k: usize) {
    let got = Ohem::<f64, C>::new(k)
        .unwrap()
        .with_nms(thr)
        .unwrap()
        .select(losses, Some(b))
        .unwrap();
    assert_eq!(
        got.indices(),
        &oracle::ohem(losses, Some(b), None, thr, k)[..],
        "capacity {C}, k {k}, thr {thr}"
    );
}

#[test]
fn ohem_with_k_above_n_and_thousands_of_boxes() {
    let mut r = random::rng(1200);
    let losses = tied_losses(&mut r, 30, 100);
    let b = boxes(&mut r, 30, false);
    nms_matches_oracle::<64>(&losses, &b, 0.5, 64);
    let got = Ohem::<f64, 64>::new(64)
        .unwrap()
        .select(&losses, None)
        .unwrap();
    assert_eq!(got.len(), 30, "k > N without NMS selects everything");
    let n = 5000;
    let losses = random::uniform(&mut r, n, 0.0, 5.0);
    let b = boxes(&mut r, n, false);
    nms_matches_oracle::<512>(&losses, &b, 0.7, 512);
}

#[test]
fn ohem_sampler_equals_brute_force() {
    for (round, mut r) in random::rounds(1300, 20) {
        let n = r.below(200) as usize;
        let losses = tied_losses(&mut r, n, 7);
        let positive: Vec<bool> = (0..n).map(|_| r.below(6) == 0).collect();
        let ub = if round % 2 == 0 { None } else { Some(3.0) };
        let budget = Budget::new(32, 0.25, ub).unwrap();
        let got = OhemSampler::<f64, 64>::new(budget)
            .unwrap()
            .sample(&losses, &positive)
            .unwrap();
        let order = oracle::ranking(&losses);
        let pos: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| positive[i])
            .take(8)
            .collect();
        let mut neg_cap = 32 - pos.len();
        if let Some(ub) = ub {
            neg_cap = neg_cap.min((ub * pos.len().max(1) as f64) as usize);
        }
        let mut exp: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| !positive[i])
            .take(neg_cap)
            .collect();
        exp.extend(pos);
        exp.sort_unstable();
        assert_eq!(got.indices(), &exp[..], "round {round}");
    }
}

#[test]
fn balanced_sampler_proportions_and_uniformity() {
    let n = 200;
    let positive: Vec<bool> = (0..n).map(|i| i % 20 == 0).collect(); // 10 positives
    let sampler = BalancedSampler::<f32, 64>::new(Budget::new(64, 0.25, None).unwrap()).unwrap();
    let mut rng = SplitMix64::new(7);
    let mut hits = vec![0u64; n];
    let draws = 4000;
    for _ in 0..draws {
        let s = sampler.sample(&positive, &mut rng);
        let pos = s.indices().iter().filter(|&&i| positive[i]).count();
        assert_eq!(pos, 10, "all 10 positives fit the 16 allowed");
        assert_eq!(s.len(), 64, "negatives fill the rest: 54");
        for &i in s.indices() {
            hits[i] += 1;
        }
    }
    // Every negative is picked with probability 54/190: chi-square over the 190 negatives.
    let p = 54.0 / 190.0;
    let exp = draws as f64 * p;
    let chi2: f64 = (0..n)
        .filter(|&i| !positive[i])
        .map(|i| (hits[i] as f64 - exp).powi(2) / exp)
        .sum();
    // 189 degrees of freedom: the 0.999 quantile is about 255 (binomial variance is below
    // Poisson's, so the statistic runs low; a biased sampler lands far above).
    assert!(chi2 < 255.0, "chi-square {chi2}");
    assert!((0..n).filter(|&i| positive[i]).all(|i| hits[i] == draws));

    // The 1:3 rule with many positives: exactly floor(64 * 0.25) = 16 positives.
    let positive: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
    let s = sampler.sample(&positive, &mut rng);
    assert_eq!(s.indices().iter().filter(|&&i| positive[i]).count(), 16);
    assert_eq!(s.len(), 64);
    // neg_pos_ub = 3 with 2 positives: 6 negatives.
    let capped =
        BalancedSampler::<f32, 64>::new(Budget::new(64, 0.25, Some(3.0)).unwrap()).unwrap();
    let positive: Vec<bool> = (0..n).map(|i| i == 3 || i == 90).collect();
    assert_eq!(capped.sample(&positive, &mut rng).len(), 8);
    // Same seed, same sample.
    let a = sampler.sample(&positive, &mut SplitMix64::new(11));
    let b = sampler.sample(&positive, &mut SplitMix64::new(11));
    assert_eq!(a, b);
}

#[test]
fn sohem_quotas_are_exact() {
    for (round, mut r) in random::rounds(1400, 20) {
        let n = 40 + r.below(400) as usize;
        let strata = 1 + r.below(6) as usize;
        let k = strata + r.below(60) as usize;
        let cls = random::uniform(&mut r, n, 0.0, 4.0);
        let loc = random::uniform(&mut r, n, 0.0, 2.0);
        let s = 0.3;
        let sohem = SOhem::<f64, 128>::new(k, strata).unwrap();
        let got = sohem.select(&cls, &loc, s).unwrap();
        assert_eq!(got.len(), k.min(n), "round {round}: min(k, N) selected");
        let (a, b) = sohem.weights(s);
        assert!((a - (1.0 - 0.5 * s)).abs() < 1e-15 && (b - (0.5 + 0.5 * s)).abs() < 1e-15);
        // Inside each stratum the hardest are taken: a picked example is never below an
        // unpicked one of the same stratum. Strata are contiguous ranges of the combined loss,
        // so check on the sorted order: the picks form at most `strata` contiguous runs ending
        // at stratum tops, and each run holds the stratum's quota when the stratum is big enough.
        let c: Vec<f64> = (0..n).map(|i| a * cls[i] + b * loc[i]).collect();
        let order = oracle::ranking(&c);
        let runs = order
            .windows(2)
            .filter(|w| got.contains(w[0]) != got.contains(w[1]))
            .count();
        assert!(
            runs <= 2 * strata,
            "round {round}: {runs} boundaries for {strata} strata"
        );
    }
    // Against the brute-force definition, ties included (losses on a few levels) and with
    // uneven quotas.
    for (round, mut r) in random::rounds(1500, 40) {
        let n = r.below(3000) as usize;
        let strata = 1 + r.below(6) as usize;
        let k = strata + r.below(120) as usize;
        let cls = if round % 2 == 0 {
            tied_losses(&mut r, n, 7)
        } else {
            random::uniform(&mut r, n, 0.0, 4.0)
        };
        let loc = random::uniform(&mut r, n, 0.0, 2.0);
        let mut quotas = vec![k / strata; strata];
        quotas[0] += k % strata;
        let sohem = SOhem::<f64, 128>::new(k, strata)
            .unwrap()
            .with_quotas(&quotas)
            .unwrap();
        let s = 0.7;
        let (a, b) = sohem.weights(s);
        let c: Vec<f64> = (0..n).map(|i| a * cls[i] + b * loc[i]).collect();
        let got = sohem.select(&cls, &loc, s).unwrap();
        assert_eq!(
            got.indices(),
            &oracle::sohem(&c, strata, &quotas)[..],
            "round {round}: n {n}, strata {strata}, k {k}"
        );
    }
    // A two-level loss in 2 strata of 4: (k, quotas, the indices selected).
    let cls = [0.1, 0.2, 0.3, 0.4, 5.0, 6.0, 7.0, 8.0];
    let cases = [
        // Equal quotas: the 2 hardest of each stratum.
        (4, None, &[2, 3, 6, 7][..]),
        // Custom quotas: 3 from the easy half, 1 from the hard half.
        (4, Some([3, 1]), &[1, 2, 3, 7]),
        // An unfilled quota rolls to the harder stratum: 6 wanted from an easy half of 4.
        (7, Some([6, 1]), &[0, 1, 2, 3, 5, 6, 7]),
    ];
    for (k, quotas, want) in cases {
        let mut sohem = SOhem::<f64, 8>::new(k, 2).unwrap();
        if let Some(quotas) = quotas {
            sohem = sohem.with_quotas(&quotas).unwrap();
        }
        let got = sohem.select(&cls, &[0.0; 8], 0.0).unwrap();
        assert_eq!(got.indices(), want, "k {k}, quotas {quotas:?}");
    }
    // Late in training localisation dominates: with s = 1, beta = 1 and alpha = 0.5.
    let sohem = SOhem::<f64, 8>::new(1, 1).unwrap();
    let got = sohem.select(&[2.0, 0.0], &[0.0, 1.5], 1.0).unwrap();
    assert_eq!(got.indices(), &[1]);
    let got = sohem.select(&[2.0, 0.0], &[0.0, 1.5], 0.0).unwrap();
    assert_eq!(got.indices(), &[0]);
}

#[test]
fn census_sums_are_exact() {
    let mut r = random::rng(1500);
    let n = 500;
    let x = random::uniform(&mut r, n, -8.0, 4.0);
    let t: Vec<f64> = (0..n)
        .map(|i| if i % 25 == 0 { 1.0 } else { 0.0 })
        .collect();
    let census = Census::new(0.5).unwrap();
    let rep = census.bce(&x, &t).unwrap();
    let total: u64 = Group::ALL.iter().map(|&g| rep.count(g)).sum();
    assert_eq!(total, n as u64);
    let exp_hard_neg = (0..n).filter(|&i| t[i] == 0.0 && x[i] > 0.0).count() as u64;
    assert_eq!(rep.count(Group::HardNegative), exp_hard_neg);
    let bce_sum: f64 = x.iter().zip(&t).map(|(&x, &t)| oracle::bce(x, t)).sum();
    assert!((rep.total_loss() - bce_sum).abs() < 1e-9 * bce_sum);
    let shares: f64 = Group::ALL.iter().map(|&g| rep.share(g)).sum();
    assert!((shares - 1.0).abs() < 1e-12);
    // Focal loss moves the loss off the easy negatives.
    let focal = census
        .focal(&SigmoidFocal::new(0.25, 2.0).unwrap(), &x, &t)
        .unwrap();
    assert!(focal.easy_negative_share() < rep.easy_negative_share());
    // GHM-C: the per-element shares add up to the batch loss.
    let mut ghm = GhmC::<f64, 30>::new(30, 0.0, 1.0).unwrap();
    let mut hist = ghm.histogram();
    ghm.observe(&mut hist, &x, &t, None).unwrap();
    let w = ghm.finish(&hist).unwrap();
    let g = census.ghm_c(&ghm, &w, &x, &t).unwrap();
    let batch = ghm.apply(&w, &x, &t, None, None).unwrap();
    assert!(
        (g.total_loss() - batch).abs() < 1e-12 * batch,
        "{} {batch}",
        g.total_loss()
    );
}

#[test]
fn selection_masks_gradient_rows() {
    let mut top = TopK::<f32, 4>::new(2).unwrap();
    top.extend(0, &[0.1, 5.0, 0.2, 4.0]).unwrap();
    let sel = top.selection();
    let mut grad = [1.0f32; 8];
    sel.apply(&mut grad, 2).unwrap();
    assert_eq!(grad, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
    assert_eq!(sel.apply(&mut [1.0f32; 7], 2), mismatch(6, 7));
    assert_eq!(sel.apply(&mut [1.0f32; 4], 2), mismatch(8, 4));
    assert_eq!(
        sel.apply(&mut [1.0f32; 4], 0),
        Err(Error::InvalidParameter("row_len"))
    );
    assert!(Selection::<4>::new().is_empty());
}

#[test]
fn mining_bad_inputs() {
    let p = |name| Err(Error::InvalidParameter(name));
    assert_eq!(TopK::<f32, 4>::new(0).map(|_| ()), p("k"));
    assert_eq!(TopK::<f32, 4>::new(5).map(|_| ()), p("k"));
    assert_eq!(Ohem::<f32, 4>::new(0).map(|_| ()), p("k"));
    assert_eq!(
        Ohem::<f32, 4>::new(2).unwrap().with_nms(1.5).map(|_| ()),
        p("nms_iou")
    );
    assert_eq!(SOhem::<f32, 8>::new(4, 5).map(|_| ()), p("strata"));
    assert_eq!(
        SOhem::<f32, 8>::new(4, 2)
            .unwrap()
            .with_quotas(&[1, 1])
            .map(|_| ()),
        p("quotas")
    );
    assert_eq!(Budget::new(0, 0.25f32, None).map(|_| ()), p("num"));
    assert_eq!(Budget::new(8, 1.25f32, None).map(|_| ()), p("pos_fraction"));
    assert_eq!(
        Budget::new(8, 0.25f32, Some(-1.0)).map(|_| ()),
        p("neg_pos_ub")
    );
    assert_eq!(
        OhemSampler::<f32, 4>::new(Budget::new(8, 0.25, None).unwrap()).map(|_| ()),
        p("num")
    );
    assert_eq!(Census::new(1.0f32).map(|_| ()), p("threshold"));

    let ohem = Ohem::<f32, 4>::new(2).unwrap().with_nms(0.5).unwrap();
    let b = [0.0f32, 0.0, 1.0, 1.0, 0.0, 0.0, 2.0, 2.0];
    assert_eq!(
        ohem.select(&[1.0, f32::NAN], Some(&b)),
        Err(Error::NonFinite { index: 1 })
    );
    assert_eq!(ohem.select(&[1.0, 2.0, 3.0], Some(&b)), mismatch(12, 8));
    assert_eq!(ohem.select(&[1.0, 2.0], None), mismatch(8, 0));
    let inverted = [0.0f32, 0.0, 1.0, 1.0, 3.0, 0.0, 2.0, 2.0];
    assert_eq!(
        ohem.select(&[1.0, 2.0], Some(&inverted)),
        Err(Error::InvalidBox { index: 1 })
    );
    let nan_box = [0.0f32, 0.0, 1.0, 1.0, 0.0, f32::INFINITY, 2.0, 2.0];
    assert_eq!(
        ohem.select(&[1.0, 2.0], Some(&nan_box)),
        Err(Error::NonFinite { index: 1 })
    );
    assert_eq!(
        ohem.select_per_label(&[1.0, 2.0], Some(&b), &[0u8]),
        mismatch(2, 1)
    );
    assert_eq!(
        SOhem::<f32, 8>::new(2, 1)
            .unwrap()
            .select(&[1.0, 2.0], &[0.0], 0.5),
        mismatch(2, 1)
    );
    assert_eq!(
        SOhem::<f32, 8>::new(2, 1)
            .unwrap()
            .select(&[1.0], &[0.0], 1.5),
        Err(Error::InvalidParameter("progress"))
    );
    assert_eq!(
        OhemSampler::<f32, 8>::new(Budget::new(8, 0.25, None).unwrap())
            .unwrap()
            .sample(&[1.0], &[true, false]),
        mismatch(1, 2)
    );

    // A miner's state is unchanged after an Err.
    let mut top = TopK::<f32, 4>::new(2).unwrap();
    top.extend(0, &[1.0, 2.0]).unwrap();
    let before = top.selection();
    assert_eq!(
        top.extend(2, &[9.0, f32::NAN]),
        Err(Error::NonFinite { index: 1 })
    );
    assert_eq!(
        top.push(5, f32::INFINITY),
        Err(Error::NonFinite { index: 5 })
    );
    assert_eq!(top.selection(), before);
    assert_eq!(top.len(), 2);
}
