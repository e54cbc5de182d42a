//! `SOhem` and `Census`: S-OHEM selects exactly min(k, N) distinct examples; `with_edges` is
//! `Err` exactly for a wrong count or edges not finite and strictly ascending, and with preset
//! edges each stratum gives its quota (rolled over) of its hardest, never an easier example
//! over a harder one; census counts and shares sum exactly.
#![no_main]
use hardmine::{Census, Error, Group, SOhem};
use hardmine_fuzz::bounded;
use libfuzzer_sys::fuzz_target;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    k: u8,
    strata: u8,
    progress: u8,
    cls: Vec<u16>,
    loc: Vec<u16>,
    /// 0: quantile strata; 1: `edges` as given (in hundredths; `i16::MIN` stands for NaN and
    /// `i16::MAX` for infinity), mostly invalid; otherwise `strata - 1` ascending edges from
    /// `edges` as a start and steps.
    edge_mode: u8,
    edges: Vec<i16>,
    logits: Vec<i16>,
}

fuzz_target!(|inp: Input| {
    let k = 1 + usize::from(inp.k % 32);
    let strata = 1 + usize::from(inp.strata % 16);
    let Ok(mut sohem) = SOhem::<f32, 32>::new(k, strata) else {
        assert!(strata > k);
        return;
    };
    let edges: Option<Vec<f32>> = match inp.edge_mode % 4 {
        0 => None,
        1 => Some(
            inp.edges
                .iter()
                .map(|&v| match v {
                    i16::MIN => f32::NAN,
                    i16::MAX => f32::INFINITY,
                    v => f32::from(v) / 100.0,
                })
                .collect(),
        ),
        _ => {
            let raw = |j: usize| i32::from(inp.edges.get(j).copied().unwrap_or(0));
            let mut e = raw(0) % 1000;
            Some(
                (0..strata - 1)
                    .map(|j| {
                        if j > 0 {
                            e += 1 + raw(j).rem_euclid(600);
                        }
                        e as f32 / 100.0
                    })
                    .collect(),
            )
        }
    };
    if let Some(edges) = &edges {
        let valid = edges.iter().all(|e| e.is_finite()) && edges.windows(2).all(|w| w[0] < w[1]);
        match sohem.with_edges(edges) {
            Ok(preset) => {
                assert!(edges.len() == strata - 1 && valid, "{edges:?} accepted");
                sohem = preset;
            }
            Err(Error::LengthMismatch { expected, got }) => {
                assert_eq!((expected, got), (strata - 1, edges.len()));
                return;
            }
            Err(e) => {
                assert_eq!(e, Error::InvalidParameter("edges"));
                assert!(edges.len() == strata - 1 && !valid, "{edges:?} rejected");
                return;
            }
        }
    }
    let n = inp.cls.len();
    let cls: Vec<f32> = inp.cls.iter().map(|&v| f32::from(v) / 1000.0).collect();
    let loc: Vec<f32> = (0..n)
        .map(|i| f32::from(inp.loc.get(i).copied().unwrap_or(0)) / 1000.0)
        .collect();
    let s = f32::from(inp.progress % 101) / 100.0;
    let picked = sohem.select(&cls, &loc, s).unwrap();
    assert_eq!(picked.len(), k.min(n), "min(k, N) selected");
    assert!(picked.indices().windows(2).all(|w| w[0] < w[1]));
    if let Some(edges) = &edges {
        check_strata(&sohem, &cls, &loc, s, edges, picked.indices(), k);
    }

    let x = bounded(&inp.logits, 12.0);
    let t: Vec<f32> = (0..x.len())
        .map(|i| if i % 7 == 0 { 1.0 } else { 0.0 })
        .collect();
    let report = Census::new(0.5f32).unwrap().bce(&x, &t).unwrap();
    let total: u64 = Group::ALL.iter().map(|&g| report.count(g)).sum();
    assert_eq!(total, x.len() as u64);
    if report.total_loss() > 0.0 {
        let shares: f32 = Group::ALL.iter().map(|&g| report.share(g)).sum();
        assert!((shares - 1.0).abs() < 1e-5, "shares sum to {shares}");
    }
});

/// With preset edges: each stratum gives its rolled-over equal quota, and its worst pick comes
/// before (higher loss, or equal at a lower index) its best example not picked.
fn check_strata(
    sohem: &SOhem<f32, 32>,
    cls: &[f32],
    loc: &[f32],
    s: f32,
    edges: &[f32],
    picked: &[usize],
    k: usize,
) {
    let strata = edges.len() + 1;
    let (a, b) = sohem.weights(s);
    let c: Vec<f32> = cls.iter().zip(loc).map(|(&x, &y)| a * x + b * y).collect();
    let stratum = |v: f32| edges.iter().filter(|&&e| e <= v).count();
    let mut sizes = vec![0usize; strata];
    c.iter().for_each(|&v| sizes[stratum(v)] += 1);
    // Equal quotas, the remainder to the hardest; carried up, then given back down.
    let mut take: Vec<usize> = (0..strata)
        .map(|j| k / strata + usize::from(j >= strata - k % strata))
        .collect();
    let mut carry = 0;
    for (t, &size) in take.iter_mut().zip(&sizes) {
        let want = *t + carry;
        *t = want.min(size);
        carry = want - *t;
    }
    for (t, &size) in take.iter_mut().zip(&sizes).rev() {
        let extra = carry.min(size - *t);
        *t += extra;
        carry -= extra;
    }
    let mut chosen = vec![false; c.len()];
    picked.iter().for_each(|&i| chosen[i] = true);
    // Per stratum: how many picked, the worst picked and the best not picked, as (c, index).
    let mut count = vec![0usize; strata];
    let mut worst: Vec<Option<(f32, usize)>> = vec![None; strata];
    let mut best: Vec<Option<(f32, usize)>> = vec![None; strata];
    for (i, &v) in c.iter().enumerate() {
        let j = stratum(v);
        if chosen[i] {
            count[j] += 1;
            // Later indices rank lower at equal loss, so `<=` keeps the worst.
            if worst[j].is_none_or(|(w, _)| v <= w) {
                worst[j] = Some((v, i));
            }
        } else if best[j].is_none_or(|(w, _)| v > w) {
            best[j] = Some((v, i));
        }
    }
    assert_eq!(count, take, "picks per stratum (sizes {sizes:?})");
    for j in 0..strata {
        if let (Some((w, wi)), Some((u, ui))) = (worst[j], best[j]) {
            assert!(
                w > u || (w == u && wi < ui),
                "stratum {j}: picked {wi} ({w}) over {ui} ({u})"
            );
        }
    }
}
