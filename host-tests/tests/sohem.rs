//! S-OHEM's preset boundaries and schedule: the golden cases of `golden/sohem.jsonl` on the f64,
//! f32 and Q15.16 paths, `with_edges` against a brute-force oracle (ties, losses on an edge,
//! empty strata, uneven quotas), its errors, quota rollover, and `SOhemSchedule`.

use hardmine::{Error, Real, SOhem, SOhemSchedule, SplitMix64, Q16};
use hardmine_host_tests::{golden, random};
use serde_json::Value;

/// Capacity of the miners under test (the golden cases keep `k` within it).
const CAP: usize = 128;

/// S-OHEM with preset edges by brute force, from its definition: stratum `j` holds
/// `edges[j - 1] <= c < edges[j]`; quotas carried up to harder strata, the rest given back
/// down, hardest first; the hardest of each stratum, ties to the lower index. Sorted indices.
fn preset_oracle<T: Real>(c: &[T], edges: &[T], quotas: &[usize]) -> Vec<usize> {
    let strata = quotas.len();
    let stratum: Vec<usize> = c
        .iter()
        .map(|&v| edges.iter().filter(|&&e| e <= v).count())
        .collect();
    let sizes: Vec<usize> = (0..strata)
        .map(|j| stratum.iter().filter(|&&s| s == j).count())
        .collect();
    let mut take = vec![0; strata];
    let mut carry = 0;
    for j in 0..strata {
        take[j] = (quotas[j] + carry).min(sizes[j]);
        carry = quotas[j] + carry - take[j];
    }
    for j in (0..strata).rev() {
        let extra = carry.min(sizes[j] - take[j]);
        take[j] += extra;
        carry -= extra;
    }
    let mut order: Vec<usize> = (0..c.len()).collect();
    order.sort_by(|&a, &b| c[b].partial_cmp(&c[a]).unwrap().then(a.cmp(&b)));
    let mut out: Vec<usize> = (0..strata)
        .flat_map(|j| {
            order
                .iter()
                .copied()
                .filter(|&i| stratum[i] == j)
                .take(take[j])
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort_unstable();
    out
}

/// The golden cases cover both modes; `tests/golden.rs` runs them on every path through the
/// parity runner, so they are not run a second time here.
#[test]
fn golden_cases_cover_quantile_and_preset_strata() {
    let cases: Vec<Value> = golden::cases()
        .into_iter()
        .filter(|(file, _)| file == "sohem.jsonl")
        .map(|(_, c)| c)
        .collect();
    assert!(cases.len() >= 12, "{} sohem cases", cases.len());
    let preset = cases.iter().filter(|c| c["params"].get("edges").is_some());
    assert!(preset.count() >= 5, "cases of both modes");
    assert!(cases.iter().all(|c| c["op"] == "sohem"));
}

/// Random inputs for the preset path: on a few levels for ties, or continuous; edges drawn
/// from the losses themselves (so some losses lie exactly on an edge) or anywhere, including
/// beyond the range (empty strata).
fn preset_round<T: Real>(r: &mut SplitMix64, round: u64) {
    let n = r.below(2000) as usize;
    let strata = 1 + r.below(16) as usize;
    let k = strata + r.below((CAP - strata + 1) as u64) as usize;
    let levels = [0, 3, 9][(round % 3) as usize];
    let draw = |r: &mut SplitMix64, n: usize, scale: f64| -> Vec<f64> {
        if levels == 0 {
            random::uniform(r, n, 0.0, scale)
        } else {
            (0..n)
                .map(|_| r.below(levels) as f64 * scale / levels as f64)
                .collect()
        }
    };
    let cls = draw(r, n, 4.0);
    let loc = draw(r, n, 2.0);
    let (cls, loc): (Vec<T>, Vec<T>) = (
        cls.iter().map(|&v| T::from_f64(v)).collect(),
        loc.iter().map(|&v| T::from_f64(v)).collect(),
    );
    let progress = T::from_f64(r.below(5) as f64 / 4.0);
    let mut quotas = vec![k / strata; strata];
    quotas[strata - 1] += k % strata;
    if round % 2 == 1 {
        // Uneven quotas: everything to one stratum.
        quotas = vec![0; strata];
        quotas[r.below(strata as u64) as usize] = k;
    }
    let base = SOhem::<T, CAP>::new(k, strata)
        .unwrap()
        .with_quotas(&quotas)
        .unwrap();
    let (a, b) = base.weights(progress);
    let c: Vec<T> = cls.iter().zip(&loc).map(|(&x, &y)| a * x + b * y).collect();
    // Distinct edges, a third of them (when there are losses) on a loss.
    let mut edges: Vec<T> = Vec::new();
    while edges.len() < strata - 1 {
        edges.push(match (r.below(3), c.is_empty()) {
            (0, false) => c[r.below(c.len() as u64) as usize],
            _ => T::from_f64(r.unit_f64() * 8.0 - 1.0),
        });
        edges.sort_by(|x, y| x.partial_cmp(y).unwrap());
        edges.dedup();
    }
    let sohem = base.with_edges(&edges).unwrap();
    let got = sohem.select(&cls, &loc, progress).unwrap();
    assert_eq!(got.len(), k.min(n), "round {round}: min(k, N)");
    assert_eq!(
        got.indices(),
        &preset_oracle(&c, &edges, &quotas)[..],
        "round {round}: n {n}, strata {strata}, k {k}"
    );
}

#[test]
fn preset_edges_equal_the_brute_force_definition() {
    for round in 0..150u64 {
        preset_round::<f64>(&mut random::rng(2600 + round), round);
        preset_round::<f32>(&mut random::rng(2800 + round), round);
        preset_round::<Q16>(&mut random::rng(3000 + round), round);
    }
}

#[test]
fn with_edges_rejects_bad_edges_and_changes_nothing() {
    let m = SOhem::<f32, 8>::new(4, 4).unwrap();
    for got in [0usize, 2, 4] {
        assert_eq!(
            m.with_edges(&[1.0; 4][..got]),
            Err(Error::LengthMismatch { expected: 3, got })
        );
    }
    let edges = Err(Error::InvalidParameter("edges"));
    assert_eq!(m.with_edges(&[1.0, 1.0, 2.0]), edges, "equal");
    assert_eq!(m.with_edges(&[1.0, 3.0, 2.0]), edges, "descending");
    assert_eq!(m.with_edges(&[f32::NAN, 1.0, 2.0]), edges, "NaN");
    assert_eq!(m.with_edges(&[0.0, 1.0, f32::INFINITY]), edges, "infinite");
    assert_eq!(m.with_edges(&[f32::NEG_INFINITY, 1.0, 2.0]), edges, "-inf");
    // The count is checked first.
    assert_eq!(
        m.with_edges(&[2.0, 1.0]),
        Err(Error::LengthMismatch {
            expected: 3,
            got: 2
        })
    );
    // One stratum takes no edges; negative edges are fine.
    assert!(SOhem::<f32, 8>::new(2, 1).unwrap().with_edges(&[]).is_ok());
    assert!(m.with_edges(&[-3.0, -2.0, 0.5]).is_ok());
    // Nothing changed after an error: the miner still mines its quantile strata, and a
    // preset miner keeps its edges through a failed `with_edges`.
    let cls = [0.1f32, 0.2, 0.3, 0.4, 5.0, 6.0, 7.0, 8.0];
    let quantile = m.select(&cls, &[0.0; 8], 0.0).unwrap();
    assert_eq!(m, SOhem::<f32, 8>::new(4, 4).unwrap());
    assert_eq!(quantile.indices(), &[1, 3, 5, 7]);
    let preset = m.with_edges(&[5.5, 6.5, 7.5]).unwrap();
    let before = preset.select(&cls, &[0.0; 8], 0.0).unwrap();
    assert_eq!(before.indices(), &[4, 5, 6, 7]);
    assert!(preset.with_edges(&[1.0, 0.0, 2.0]).is_err());
    assert_eq!(preset.select(&cls, &[0.0; 8], 0.0).unwrap(), before);
    // Quotas and edges compose in either order.
    assert_eq!(
        m.with_quotas(&[1, 0, 0, 3])
            .unwrap()
            .with_edges(&[1.0, 2.0, 3.0]),
        m.with_edges(&[1.0, 2.0, 3.0])
            .unwrap()
            .with_quotas(&[1, 0, 0, 3])
    );
}

#[test]
fn preset_quotas_roll_over_from_empty_and_short_strata() {
    // c = cls at progress 0 (beta = 0.5, loc = 0).
    let cls = [
        0.125f64, 0.25, 0.375, 0.625, 0.875, 2.5, 2.75, 3.0, 3.25, 3.5, 3.75, 9.0, 10.0, 11.0,
    ];
    // `k` from preset segments at `edges` with `quotas` (or equal ones): the picks from the
    // first `n` losses.
    let pick = |k: usize, quotas: &[usize], edges: &[f64], n: usize| -> Vec<usize> {
        let mut m = SOhem::<f64, 16>::new(k, edges.len() + 1).unwrap();
        if !quotas.is_empty() {
            m = m.with_quotas(quotas).unwrap();
        }
        let m = m.with_edges(edges).unwrap();
        m.select(&cls[..n], &[0.0; 14][..n], 0.0)
            .unwrap()
            .indices()
            .to_vec()
    };
    // Four segments at 1, 2 and 8; [1, 2) is empty: its 2 carry to [2, 8), which takes 4.
    assert_eq!(
        pick(8, &[], &[1.0, 2.0, 8.0], 14),
        [3, 4, 7, 8, 9, 10, 12, 13]
    );
    // Every example in the top segment: all quotas carry up, and there is room for them.
    let top = [6, 7, 8, 9, 10, 11, 12, 13];
    assert_eq!(pick(8, &[], &[-3.0, -2.0, -1.0], 14), top);
    // Every example below the first edge: the quotas carried to the (empty) top come back
    // down to the bottom segment.
    assert_eq!(pick(3, &[], &[20.0, 30.0], 14), [11, 12, 13]);
    // A short hardest segment (3 of a quota of 5) gives 2 back to the next one down.
    assert_eq!(pick(8, &[3, 5], &[8.0], 14), top);
    // A loss on an edge belongs to the upper segment: 2.5 is in [2.5, ..), so the lower
    // segment's one pick is 0.875.
    assert_eq!(pick(2, &[], &[2.5], 7), [4, 6]);
    // k > N: all of them; no examples, none.
    assert_eq!(pick(8, &[], &[1.0, 2.0, 8.0], 5), [0, 1, 2, 3, 4]);
    assert!(pick(8, &[], &[1.0, 2.0, 8.0], 0).is_empty());
}

#[test]
fn the_schedule_is_a_named_struct() {
    let d = SOhemSchedule::<f64>::default();
    assert_eq!(
        d,
        SOhemSchedule {
            alpha_start: 1.0,
            alpha_end: 0.5,
            beta_start: 0.5,
            beta_end: 1.0
        }
    );
    let m = SOhem::<f64, 8>::new(1, 1).unwrap();
    assert_eq!(m.with_schedule(d), Ok(m));
    let late = m
        .with_schedule(SOhemSchedule {
            alpha_start: 2.0,
            alpha_end: 0.0,
            beta_start: 0.0,
            beta_end: 4.0,
        })
        .unwrap();
    assert_eq!(late.weights(0.25), (1.5, 1.0));
    assert_eq!(late.weights(1.0), (0.0, 4.0));
    let schedule = Err(Error::InvalidParameter("schedule"));
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        for field in 0..4 {
            let mut s = [1.0; 4];
            s[field] = bad;
            let s = SOhemSchedule {
                alpha_start: s[0],
                alpha_end: s[1],
                beta_start: s[2],
                beta_end: s[3],
            };
            assert_eq!(m.with_schedule(s), schedule, "{s:?}");
        }
    }
    // The schedule steers the pick: classification early, localisation late.
    let (cls, loc) = ([2.0, 0.0], [0.0, 1.5]);
    assert_eq!(late.select(&cls, &loc, 0.0).unwrap().indices(), &[0]);
    assert_eq!(late.select(&cls, &loc, 1.0).unwrap().indices(), &[1]);
}
