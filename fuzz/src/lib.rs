//! Helpers shared by the fuzz targets: bounded inputs, the expected error of an input under the
//! bad-input table (DESIGN §4), and tolerance checks.
//!
//! Precedence of errors, which every entry point follows: lengths first; then the first bad
//! element in index order; at one index, a non-finite value before an out-of-range one.

use hardmine::{Error, Real};
use hardmine_cli::tolerance::Tolerance;

/// Logits and other values are "in range" (finite results guaranteed) within this magnitude.
pub const RANGE: f32 = 1e4;

/// Whether every value is finite and within `RANGE`.
pub fn in_range(xs: &[f32]) -> bool {
    xs.iter().all(|x| x.is_finite() && x.abs() <= RANGE)
}

/// The expected error of element-wise inputs: lengths, then per index: weight, value and target
/// finiteness, then the target's range when `unit` (binary targets).
pub fn expected_elementwise(
    xs: &[f32],
    ts: &[f32],
    ws: Option<&[f32]>,
    unit: bool,
) -> Option<Error> {
    if ts.len() != xs.len() {
        return Some(Error::LengthMismatch {
            expected: xs.len(),
            got: ts.len(),
        });
    }
    if let Some(w) = ws {
        if w.len() != xs.len() {
            return Some(Error::LengthMismatch {
                expected: xs.len(),
                got: w.len(),
            });
        }
    }
    for (i, (&x, &t)) in xs.iter().zip(ts).enumerate() {
        let w_bad = ws.is_some_and(|w| !w[i].is_finite());
        if w_bad || !x.is_finite() || !t.is_finite() {
            return Some(Error::NonFinite { index: i });
        }
        if unit && !(0.0..=1.0).contains(&t) {
            return Some(Error::InvalidTarget { index: i });
        }
    }
    None
}

/// Asserts `result` is the expected error, or `Ok` when none is expected.
pub fn assert_outcome<T: core::fmt::Debug>(
    result: &Result<T, Error>,
    expected: Option<Error>,
    what: &str,
) {
    match (result, expected) {
        (Err(e), Some(x)) => assert_eq!(*e, x, "{what}: wrong error"),
        (Ok(_), None) => {}
        (r, x) => panic!("{what}: got {r:?}, expected {x:?}"),
    }
}

/// Asserts every value is finite.
pub fn assert_finite<T: Real>(xs: &[T], what: &str) {
    for (i, x) in xs.iter().enumerate() {
        assert!(x.is_finite(), "{what}[{i}] = {x:?}");
    }
}

/// `|got - exp| <= rel |exp| + frac * scale + floor` for every element, with `scale` the
/// largest `|exp|` (the golden tolerance rule, `Tolerance::check`).
pub fn assert_close(got: &[f64], exp: &[f64], (rtol, afrac, floor): (f64, f64, f64), what: &str) {
    let tol = Tolerance { rtol, afrac, floor };
    if let Err(e) = tol.check(got, exp) {
        panic!("{what}: {e}");
    }
}

/// `assert_close` for one scalar loss, with the golden table's scale for scalars:
/// `max(1, |exp|)`.
pub fn assert_close_scalar(got: f64, exp: f64, (rel, frac, floor): (f64, f64, f64), what: &str) {
    let bound = rel * exp.abs() + frac * exp.abs().max(1.0) + floor;
    assert!(
        (got - exp).abs() <= bound,
        "{what}: {got} vs {exp} (bound {bound:e})"
    );
}

/// The f32 differential domain's floor: f32 cannot represent values below about 1e-38 (and
/// loses relative precision below that), so magnitudes under 1e-30 are compared absolutely.
pub const F32_UNDERFLOW: f64 = 1e-30;

/// f32 tolerance of the golden table.
pub const F32_TOL: (f64, f64, f64) = (1e-5, 1e-6, 0.0);
/// Q15.16 tolerance of the golden table.
pub const FIXED_TOL: (f64, f64, f64) = (2e-3, 2e-3, 3.1e-5);

/// A reduction from a byte.
pub fn reduction(b: u8) -> hardmine::Reduction {
    match b % 3 {
        0 => hardmine::Reduction::None,
        1 => hardmine::Reduction::Sum,
        _ => hardmine::Reduction::Mean,
    }
}

/// Values from raw bytes mapped into a bounded, mostly well-behaved range (for targets that
/// test numerics rather than validation): `(-scale, scale)`.
pub fn bounded(raw: &[i16], scale: f32) -> Vec<f32> {
    raw.iter()
        .map(|&v| f32::from(v) / 32768.0 * scale)
        .collect()
}

/// A feature map's shape from three fuzz bytes (targets over `c x h x w` maps).
#[derive(arbitrary::Arbitrary, Debug)]
pub struct MapShape {
    c: u8,
    h: u8,
    w: u8,
}

impl MapShape {
    /// `(channels, height, width)`: `1 + c % max_c`, `1 + h % max_side`, `1 + w % max_side`.
    pub fn dims(&self, max_c: u8, max_side: u8) -> (usize, usize, usize) {
        (
            1 + usize::from(self.c % max_c),
            1 + usize::from(self.h % max_side),
            1 + usize::from(self.w % max_side),
        )
    }
}

/// `n` values from raw fuzz values, `fill` past the end of `raw`.
pub fn padded<S: Copy, T: From<S>>(raw: &[S], n: usize, fill: S) -> Vec<T> {
    (0..n)
        .map(|i| T::from(raw.get(i).copied().unwrap_or(fill)))
        .collect()
}

/// The fuzzer's optional `avg_factor`: `None`, a bad one (negative or non-finite: the builder
/// must refuse it with `InvalidParameter("avg_factor")`), or a valid one, returned for use.
pub fn avg_factor<L: core::fmt::Debug>(
    f: Option<f32>,
    with: impl FnOnce(f32) -> Result<L, Error>,
) -> Option<(f32, L)> {
    let f = f?;
    let built = with(f);
    if f.is_finite() && f >= 0.0 {
        Some((f, built.expect("a finite factor >= 0 is accepted")))
    } else {
        assert_eq!(
            built.map(|_| ()),
            Err(Error::InvalidParameter("avg_factor")),
            "bad factor {f}"
        );
        None
    }
}

/// mmdetection's relation between a mean over a factor `f` and the sum: each returned value
/// (and each gradient entry) is `sum / (f + eps)`, within f32 rounding (twice: the sum's and
/// the quotient's) and the subnormal floor; an f32 overflow of the quotient must saturate to
/// infinity; errors are the same error.
pub fn assert_factor_relation(
    mean: &Result<f32, Error>,
    sum: &Result<f32, Error>,
    (mean_grad, sum_grad): (&[f32], &[f32]),
    f: f32,
) {
    let div = f64::from(f) + hardmine::AVG_FACTOR_EPS;
    let close = |got: f32, s: f32, what: &str| {
        if !s.is_finite() {
            return;
        }
        let want = f64::from(s) / div;
        if want.abs() > 0.999 * f64::from(f32::MAX) {
            let near = 0.99 * f64::from(f32::MAX);
            assert!(
                f64::from(got.abs()) >= near,
                "{what}: {got} should overflow ({want})"
            );
            return;
        }
        let err = (f64::from(got) - want).abs();
        assert!(
            err <= 3e-7 * want.abs() + 1e-44,
            "{what}: {got} vs sum / (f + eps) = {want} (f = {f})"
        );
    };
    match (mean, sum) {
        (Ok(m), Ok(s)) => {
            close(*m, *s, "value");
            for (i, (&g, &s)) in mean_grad.iter().zip(sum_grad).enumerate() {
                close(g, s, &format!("grad[{i}]"));
            }
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "the same error with and without the factor"),
        (m, s) => panic!("mean with a factor {m:?}, sum {s:?}"),
    }
}

/// A loss's `avg_factor` under fuzzing: `build(factor)` makes the loss (with the factor when
/// one is given) and `call(loss, reduction, grad)` runs `value_and_grad` with a gradient of
/// `n` elements. A bad factor must be refused by the builder; with a valid one, `Sum` is
/// refused at call time whatever the inputs, `Mean` is the plain sum over `f + eps`
/// ([`assert_factor_relation`]) and `None` is the plain `None`, bit for bit.
pub fn check_avg_factor<L: Copy + core::fmt::Debug>(
    f: Option<f32>,
    n: usize,
    build: impl Fn(Option<f32>) -> Result<L, Error>,
    call: impl Fn(L, hardmine::Reduction, &mut [f32]) -> Result<f32, Error>,
) {
    use hardmine::Reduction;
    let Some((f, with)) = avg_factor(f, |f| build(Some(f))) else {
        return;
    };
    let plain = build(None).expect("the loss is valid without a factor");
    let (mut g, mut sg) = (vec![0.0f32; n], vec![0.0f32; n]);
    assert_eq!(
        call(with, Reduction::Sum, &mut g),
        Err(Error::InvalidParameter("avg_factor")),
        "sum with a factor"
    );
    let mean = call(with, Reduction::Mean, &mut g);
    let sum = call(plain, Reduction::Sum, &mut sg);
    assert_factor_relation(&mean, &sum, (&g, &sg), f);
    let none = call(with, Reduction::None, &mut g).map(f32::to_bits);
    assert_eq!(
        none,
        call(plain, Reduction::None, &mut sg).map(f32::to_bits),
        "none ignores the factor"
    );
    if none.is_ok() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&g), bits(&sg), "none's gradient ignores the factor");
    }
}
