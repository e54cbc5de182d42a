//! `SigmoidFocalLabels`: equals the dense loss on the implicit one-hot (masked rows zero), with
//! any integer labels (background outside 0..C) and label weights.
#![no_main]
use hardmine::{Error, Reduction, SigmoidFocal, SigmoidFocalLabels};
use hardmine_fuzz::{assert_close, bounded, F32_TOL};
use libfuzzer_sys::fuzz_target;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    classes: u8,
    logits: Vec<i16>,
    labels: Vec<i32>,
    weights: Vec<u8>,
    gamma: u8,
    nan_at: Option<u16>,
}

fuzz_target!(|inp: Input| {
    let c = usize::from(inp.classes % 8);
    let focal = SigmoidFocal::new(0.25f32, f32::from(inp.gamma % 6) * 0.5)
        .unwrap()
        .with_reduction(Reduction::Sum);
    let head = match SigmoidFocalLabels::new(focal, c) {
        Err(e) => return assert_eq!((e, c), (Error::InvalidParameter("classes"), 0)),
        Ok(h) => h,
    };
    let rows = inp.labels.len();
    let mut x = bounded(&inp.logits, 20.0);
    x.resize(rows * c, 0.5);
    let w: Vec<f32> = (0..rows)
        .map(|i| f32::from(inp.weights.get(i).copied().unwrap_or(1) % 3) * 0.5)
        .collect();
    if let Some(at) = inp.nan_at {
        if !x.is_empty() {
            let i = usize::from(at) % x.len();
            x[i] = f32::NAN;
            assert_eq!(
                head.value(&x, &inp.labels, Some(&w)),
                Err(Error::NonFinite { index: i })
            );
            return;
        }
    }
    let mut g = vec![0.0f32; rows * c];
    let loss = head
        .value_and_grad(&x, &inp.labels, Some(&w), &mut g)
        .unwrap();
    // The dense form on the expanded one-hot, row weights applied by hand.
    let mut t = vec![0.0f32; rows * c];
    for (i, &l) in inp.labels.iter().enumerate() {
        if (0..c as i64).contains(&i64::from(l)) {
            t[i * c + l as usize] = 1.0;
        }
    }
    let mut per = vec![0.0f32; rows * c];
    focal
        .with_reduction(Reduction::None)
        .per_element(&x, &t, &mut per)
        .unwrap();
    let dense: f64 = per
        .iter()
        .enumerate()
        .map(|(k, &v)| f64::from(w[k / c.max(1)] * v))
        .sum();
    assert_close(&[f64::from(loss)], &[dense], F32_TOL, "labels vs dense");
    for (k, &gv) in g.iter().enumerate() {
        assert!(gv.is_finite());
        if w[k / c] == 0.0 {
            assert_eq!(gv, 0.0, "masked rows get zero gradient");
        }
    }
});
