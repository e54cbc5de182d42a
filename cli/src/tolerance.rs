//! The golden tolerances (golden/README.md), one named constant each:
//! `|got - exp| <= rtol |exp| + afrac * scale + floor`. `hardmine parity --check` compares with
//! them, and host-tests' tolerance table re-exports them.

use crate::op::Path;

/// Relative error allowed for an f64 loss or gradient against the exact value.
pub const F64_REL: f64 = 1e-10;
/// Absolute slack for f64, as a fraction of the largest value compared.
pub const F64_ABS_FRAC: f64 = 1e-12;
/// Relative error allowed for an f32 (CPU or GPU) loss or gradient against the exact value.
pub const F32_REL: f64 = 1e-5;
/// Absolute slack for f32, as a fraction of the largest value compared (entries near 0).
pub const F32_ABS_FRAC: f64 = 1e-6;
/// Relative error allowed for a Q15.16 result against the exact value.
pub const FIXED_REL: f64 = 2e-3;
/// Absolute slack for Q15.16, as a fraction of the largest value compared.
pub const FIXED_ABS_FRAC: f64 = 2e-3;
/// Absolute floor for Q15.16: 2 LSB (2^-15, rounded up).
pub const FIXED_FLOOR: f64 = 3.1e-5;
/// A Q15.16 result whose exact value lies beyond this magnitude passes when it saturates with
/// the right sign.
pub const FIXED_RANGE: f64 = 16384.0;

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Relative to `|exp|`.
    pub rtol: f64,
    /// Fraction of the compared array's scale (its largest `|exp|`; `max(1, |loss|)` for a
    /// scalar).
    pub afrac: f64,
    /// Absolute floor.
    pub floor: f64,
}

impl Tolerance {
    /// The golden tolerance of `path`.
    pub const fn of(path: Path) -> Self {
        match path {
            Path::F64 => Self {
                rtol: F64_REL,
                afrac: F64_ABS_FRAC,
                floor: 0.0,
            },
            Path::F32 | Path::Gpu => Self {
                rtol: F32_REL,
                afrac: F32_ABS_FRAC,
                floor: 0.0,
            },
            Path::Fixed => Self {
                rtol: FIXED_REL,
                afrac: FIXED_ABS_FRAC,
                floor: FIXED_FLOOR,
            },
        }
    }

    /// The row as `(rtol, afrac, floor)`.
    pub const fn parts(self) -> (f64, f64, f64) {
        (self.rtol, self.afrac, self.floor)
    }

    /// `Err` describing the first element of `got` outside `rtol |exp| + afrac * scale +
    /// floor`, `scale` the largest `|exp|` (a NaN on either side fails), or a length that differs.
    /// The plain rule, for tests and fuzz oracles; the golden check (`compare.rs`) adds the
    /// Q15.16 saturation rule.
    pub fn check(self, got: &[f64], exp: &[f64]) -> Result<(), String> {
        if got.len() != exp.len() {
            return Err(format!("length {} instead of {}", got.len(), exp.len()));
        }
        let scale = exp.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        for (i, (&g, &e)) in got.iter().zip(exp).enumerate() {
            let bound = self.rtol * e.abs() + self.afrac * scale + self.floor;
            // Written so a NaN on either side fails.
            let within = (g - e).abs() <= bound;
            if !within {
                return Err(format!(
                    "[{i}]: got {g:e}, expected {e:e}, bound {bound:.3e}"
                ));
            }
        }
        Ok(())
    }
}
