//! `SOhem` and `Census`: S-OHEM selects exactly min(k, N) distinct examples and, within each
//! stratum, never an easier one over a harder one; census counts and shares sum exactly.
#![no_main]
use hardmine::{Census, Group, SOhem};
use hardmine_fuzz::bounded;
use libfuzzer_sys::fuzz_target;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    k: u8,
    strata: u8,
    progress: u8,
    cls: Vec<u16>,
    loc: Vec<u16>,
    logits: Vec<i16>,
}

fuzz_target!(|inp: Input| {
    let k = 1 + usize::from(inp.k % 32);
    let strata = 1 + usize::from(inp.strata % 16);
    let Ok(sohem) = SOhem::<f32, 32>::new(k, strata) else {
        assert!(strata > k);
        return;
    };
    let n = inp.cls.len();
    let cls: Vec<f32> = inp.cls.iter().map(|&v| f32::from(v) / 1000.0).collect();
    let loc: Vec<f32> = (0..n).map(|i| f32::from(inp.loc.get(i).copied().unwrap_or(0)) / 1000.0).collect();
    let s = f32::from(inp.progress % 101) / 100.0;
    let picked = sohem.select(&cls, &loc, s).unwrap();
    assert_eq!(picked.len(), k.min(n), "min(k, N) selected");
    assert!(picked.indices().windows(2).all(|w| w[0] < w[1]));

    let x = bounded(&inp.logits, 12.0);
    let t: Vec<f32> = (0..x.len()).map(|i| if i % 7 == 0 { 1.0 } else { 0.0 }).collect();
    let report = Census::new(0.5f32).unwrap().bce(&x, &t).unwrap();
    let total: u64 = Group::ALL.iter().map(|&g| report.count(g)).sum();
    assert_eq!(total, x.len() as u64);
    if report.total_loss() > 0.0 {
        let shares: f32 = Group::ALL.iter().map(|&g| report.share(g)).sum();
        assert!((shares - 1.0).abs() < 1e-5, "shares sum to {shares}");
    }
});
