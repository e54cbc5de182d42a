//! `BalancedSampler` and `OhemSampler`: budgets exact (positives at most floor(num *
//! pos_fraction), negatives fill or obey neg_pos_ub), distinct valid indices, deterministic for
//! a seed; the OHEM sampler picks the highest losses of each class.
#![no_main]
use hardmine::{BalancedSampler, Budget, OhemSampler, SplitMix64};
use hardmine_fuzz::padded;
use libfuzzer_sys::fuzz_target;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    num: u8,
    frac: u8,
    ub: Option<u8>,
    positive: Vec<bool>,
    losses: Vec<i8>,
    seed: u64,
}

fuzz_target!(|inp: Input| {
    let num = usize::from(inp.num % 64);
    let frac = f32::from(inp.frac % 101) / 100.0;
    let ub = inp.ub.map(|u| f32::from(u % 8));
    let Ok(budget) = Budget::new(num, frac, ub) else {
        assert_eq!(num, 0);
        return;
    };
    let sampler = BalancedSampler::<f32, 64>::new(budget).unwrap();
    let s = sampler.sample(&inp.positive, &mut SplitMix64::new(inp.seed));
    assert_eq!(
        s,
        sampler.sample(&inp.positive, &mut SplitMix64::new(inp.seed)),
        "deterministic"
    );
    let pos_total = inp.positive.iter().filter(|&&p| p).count();
    let pos = s.indices().iter().filter(|&&i| inp.positive[i]).count();
    let neg = s.len() - pos;
    assert_eq!(pos, pos_total.min(budget.expected_pos()), "positives");
    assert_eq!(
        neg,
        (inp.positive.len() - pos_total).min(budget.expected_neg(pos)),
        "negatives"
    );
    assert!(
        s.indices().windows(2).all(|w| w[0] < w[1])
            && s.indices().iter().all(|&i| i < inp.positive.len())
    );

    let n = inp.positive.len();
    let losses: Vec<f32> = padded(&inp.losses, n, 0);
    let o = OhemSampler::<f32, 64>::new(budget)
        .unwrap()
        .sample(&losses, &inp.positive)
        .unwrap();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| losses[b].partial_cmp(&losses[a]).unwrap().then(a.cmp(&b)));
    let p: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| inp.positive[i])
        .take(budget.expected_pos())
        .collect();
    let mut exp: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| !inp.positive[i])
        .take(budget.expected_neg(p.len()))
        .collect();
    exp.extend(p);
    exp.sort_unstable();
    assert_eq!(o.indices(), &exp[..]);
});
