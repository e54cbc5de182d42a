//! `SoftmaxCrossEntropy`: Err exactly per DESIGN §4 (negative label ignores, >= C is
//! InvalidTarget), finite results in range, the gradient of each labelled row sums to zero.
#![no_main]
use hardmine::{Error, SoftmaxCrossEntropy};
use hardmine_fuzz::{check_avg_factor, in_range, reduction};
use libfuzzer_sys::fuzz_target;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    classes: u8,
    logits: Vec<f32>,
    labels: Vec<i16>,
    reduction: u8,
    avg_factor: Option<f32>,
}

fuzz_target!(|inp: Input| {
    let c = usize::from(inp.classes % 12);
    let ce = match SoftmaxCrossEntropy::new(c) {
        Err(e) => return assert_eq!((e, c), (Error::InvalidParameter("classes"), 0)),
        Ok(ce) => ce.with_reduction(reduction(inp.reduction)),
    };
    let n = inp.labels.len() * c;
    let mut g = vec![0.0f32; inp.logits.len()];
    let r = ce.value_and_grad(&inp.logits, &inp.labels, &mut g);
    let expected = if inp.logits.len() != n {
        Some(Error::LengthMismatch {
            expected: n,
            got: inp.logits.len(),
        })
    } else if let Some(i) = inp.logits.iter().position(|x| !x.is_finite()) {
        Some(Error::NonFinite { index: i })
    } else {
        inp.labels
            .iter()
            .position(|&l| l >= 0 && l as usize >= c)
            .map(|i| Error::InvalidTarget { index: i })
    };
    match (r, expected) {
        (Err(e), Some(x)) => assert_eq!(e, x),
        (Ok(v), None) => {
            if in_range(&inp.logits) {
                assert!(v.is_finite());
                for (row, &l) in g.chunks_exact(c).zip(&inp.labels) {
                    assert!(row.iter().all(|v| v.is_finite()));
                    let s: f32 = row.iter().sum();
                    let scale: f32 = row.iter().map(|v| v.abs()).sum();
                    assert!(
                        s.abs() <= 1e-5 * scale.max(1e-30) + 1e-6,
                        "row sum {s} (label {l})"
                    );
                }
            }
        }
        (r, x) => panic!("got {r:?}, expected {x:?}"),
    }
    let (x, y) = (&inp.logits, &inp.labels);
    check_avg_factor(
        inp.avg_factor,
        x.len(),
        |f| match f {
            Some(f) => ce.with_avg_factor(f),
            None => Ok(ce),
        },
        |l, r, g| l.with_reduction(r).value_and_grad(x, y, g),
    );
});
