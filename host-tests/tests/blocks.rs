//! The element-wise losses run over blocks (128 elements, computed stage by stage) and a last,
//! partial block in padded chunks of 16. An element's results must not depend on where it
//! falls: every length across those boundaries gives, bit for bit, the per-element losses and
//! gradients of calls on that element alone, and sums within rounding of them. Blocks are all
//! hard (targets exactly 0 or 1) or all soft, as the hard/soft choice is made per block.

use hardmine::{Asl1, BceWithLogits, Real, Reduction, SigmoidFocal, SmoothL1, Q16};
use hardmine_host_tests::random;

const LENGTHS: [usize; 12] = [1, 2, 15, 16, 17, 127, 128, 129, 143, 144, 300, 1000];

/// `f(x, t, w, out_loss, out_grad)` on the whole input, then on each element alone (with its
/// weight, if any).
fn check<T: Real + core::fmt::Debug>(
    name: &str,
    (x, t): (&[T], &[T]),
    w: Option<&[T]>,
    f: impl Fn(&[T], &[T], Option<&[T]>, &mut [T], &mut [T]) -> T,
) {
    let n = x.len();
    let (mut l, mut g) = (vec![T::ZERO; n], vec![T::ZERO; n]);
    let total = f(x, t, w, &mut l, &mut g);
    let mut sum = 0.0f64;
    for i in 0..n {
        let (mut l1, mut g1) = ([T::ZERO], [T::ZERO]);
        let one = f(&x[i..=i], &t[i..=i], w.map(|w| &w[i..=i]), &mut l1, &mut g1);
        assert_eq!(one, l1[0], "{name}: the sum of one element is its loss");
        assert_eq!(
            (l[i], g[i]),
            (l1[0], g1[0]),
            "{name}, n = {n}, element {i}: x = {:?}, t = {:?}",
            x[i],
            t[i]
        );
        sum += l1[0].to_f64();
    }
    let err = (total.to_f64() - sum).abs();
    assert!(
        err <= 1e-6 * sum.abs() + 1e-4,
        "{name}, n = {n}: sum {total:?} vs {sum}"
    );
}

fn inputs<T: Real>(seed: u64, n: usize, soft: bool) -> (Vec<T>, Vec<T>) {
    let mut r = random::rng(seed);
    let x = random::uniform(&mut r, n, -12.0, 12.0);
    let t = if soft {
        random::uniform(&mut r, n, 0.0, 1.0)
    } else {
        random::targets(&mut r, n, 1.0)
    };
    (
        x.iter().map(|&v| T::from_f64(v)).collect(),
        t.iter().map(|&v| T::from_f64(v)).collect(),
    )
}

fn losses<T: Real + core::fmt::Debug>() {
    let sum = Reduction::Sum;
    let focal = SigmoidFocal::new(T::from_f64(0.25), T::from_f64(2.0))
        .unwrap()
        .with_reduction(sum);
    let focal_half = SigmoidFocal::new(T::from_f64(0.25), T::from_f64(0.5))
        .unwrap()
        .with_reduction(sum);
    let bce = BceWithLogits::new().with_reduction(sum);
    let smooth = SmoothL1::new(T::from_f64(1.0 / 9.0))
        .unwrap()
        .with_reduction(sum);
    let asl1 = Asl1::new(T::from_f64(0.02)).unwrap().with_reduction(sum);
    for (k, &n) in LENGTHS.iter().enumerate() {
        for soft in [false, true] {
            let (x, t) = inputs::<T>(900 + k as u64, n, soft);
            let w: Vec<T> = x.iter().map(|&v| v.abs() * T::from_f64(0.1)).collect();
            for (name, focal) in [("focal", focal), ("focal gamma 0.5", focal_half)] {
                check(name, (&x, &t), None, |x, t, _, l, g| {
                    focal.per_element(x, t, l).unwrap();
                    focal.value_and_grad(x, t, g).unwrap()
                });
            }
            // Unweighted, and weighted: each element's weight goes along with it.
            for w in [None, Some(&w[..])] {
                check("bce", (&x, &t), w, |x, t, w, l, g| {
                    bce.per_element(x, t, w, l).unwrap();
                    bce.value_and_grad(x, t, w, g).unwrap()
                });
            }
            check("smooth l1", (&x, &t), None, |x, t, _, l, g| {
                smooth.per_element(x, t, l).unwrap();
                smooth.value_and_grad(x, t, g).unwrap()
            });
            check("asl1", (&x, &t), None, |x, t, _, l, g| {
                asl1.per_element(x, t, l).unwrap();
                asl1.value_and_grad(x, t, g).unwrap()
            });
        }
    }
}

#[test]
fn f32_results_do_not_depend_on_the_block() {
    losses::<f32>();
}

#[test]
fn f64_results_do_not_depend_on_the_block() {
    losses::<f64>();
}

#[test]
fn q16_results_do_not_depend_on_the_block() {
    losses::<Q16>();
}

/// Mean reduction divides every gradient by the length: still per element, whatever the block.
#[test]
fn mean_gradients_are_the_sum_gradients_divided() {
    let bce = BceWithLogits::new();
    let sum = BceWithLogits::new().with_reduction(Reduction::Sum);
    for &n in &LENGTHS {
        let (x, t) = inputs::<f32>(950 + n as u64, n, false);
        let (mut gm, mut gs) = (vec![0.0f32; n], vec![0.0f32; n]);
        bce.value_and_grad(&x, &t, None, &mut gm).unwrap();
        sum.value_and_grad(&x, &t, None, &mut gs).unwrap();
        for i in 0..n {
            assert_eq!(gm[i], (gs[i] as f64 / n as f64) as f32, "n = {n}, {i}");
        }
    }
}
