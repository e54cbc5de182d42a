//! Compares runner output with a golden case's `expected`, at a path's tolerance.
//!
//! `|got - exp| <= rtol |exp| + afrac * scale + floor`, where `scale` is the largest `|exp|` of
//! the array being compared, or `max(1, |loss|)` for a scalar loss (golden/README.md).

use crate::parity::Path;
use serde_json::Value;

/// Checks every output line of one case against its expectation; `Err` says what differs.
pub fn check_case(case: &Value, lines: &[Value], path: Path) -> Result<(), String> {
    let expected: Vec<&Value> = match case.get("batches").and_then(Value::as_array) {
        Some(batches) => batches.iter().filter_map(|b| b.get("expected")).collect(),
        None => case.get("expected").into_iter().collect(),
    };
    if expected.len() != lines.len() {
        return Err(match lines.first().and_then(|l| l.get("error")) {
            Some(e) => format!("runner error: {e}"),
            None => format!(
                "{} output lines for {} expectations",
                lines.len(),
                expected.len()
            ),
        });
    }
    for (batch, (exp, got)) in expected.iter().zip(lines).enumerate() {
        if let Some(e) = got.get("error") {
            return Err(format!("batch {batch}: runner error: {e}"));
        }
        let exp = exp
            .as_object()
            .ok_or_else(|| format!("batch {batch}: `expected` is not an object"))?;
        for (key, e) in exp {
            let g = got
                .get(key)
                .ok_or_else(|| format!("batch {batch}: no `{key}` in output"))?;
            let what = |m: String| format!("batch {batch}, {key}: {m}");
            if key == "selected" {
                // Index sets: compared as sets.
                let sorted = |v: &Value| {
                    let mut s: Vec<i64> = v
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_i64)
                        .collect();
                    s.sort_unstable();
                    s
                };
                if sorted(e) != sorted(g) {
                    return Err(what("index sets differ".into()));
                }
            } else if is_exact(e) {
                // Integers (a best index, window starts) must match exactly.
                if e != g {
                    return Err(what(format!("got {g}, expected {e}")));
                }
            } else {
                compare(e, g, path).map_err(what)?;
            }
        }
    }
    Ok(())
}

/// Integer literals, and arrays of arrays (window coordinates), compare exactly.
fn is_exact(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_i64() || n.is_u64(),
        Value::Array(a) => a.first().is_some_and(Value::is_array),
        _ => false,
    }
}

fn compare(exp: &Value, got: &Value, path: Path) -> Result<(), String> {
    let (rtol, afrac, floor) = path.tolerance();
    match (exp, got) {
        (Value::Array(e), Value::Array(g)) => {
            if e.len() != g.len() {
                return Err(format!("length {} instead of {}", g.len(), e.len()));
            }
            let scale = e
                .iter()
                .filter_map(Value::as_f64)
                .fold(0.0f64, |m, x| m.max(x.abs()));
            for (i, (e, g)) in e.iter().zip(g).enumerate() {
                let e = e.as_f64().ok_or("expected a number")?;
                let g = g
                    .as_f64()
                    .ok_or_else(|| format!("[{i}]: not a finite number"))?;
                within(e, g, rtol, afrac * scale + floor, path)
                    .map_err(|m| format!("[{i}]: {m}"))?;
            }
            Ok(())
        }
        (e, g) => {
            let e = e.as_f64().ok_or("expected a number")?;
            let g = g.as_f64().ok_or("not a finite number")?;
            within(e, g, rtol, afrac * e.abs().max(1.0) + floor, path)
        }
    }
}

/// Fixed-point results whose exact value lies beyond the Q15.16 range pass when saturated
/// with the right sign.
const FIXED_RANGE: f64 = 16384.0;

fn within(exp: f64, got: f64, rtol: f64, abs: f64, path: Path) -> Result<(), String> {
    if path == Path::Fixed
        && exp.abs() > FIXED_RANGE
        && got.signum() == exp.signum()
        && got.abs() >= FIXED_RANGE
    {
        return Ok(());
    }
    let err = (got - exp).abs();
    let bound = rtol * exp.abs() + abs;
    if err <= bound {
        Ok(())
    } else {
        Err(format!(
            "got {got:e}, expected {exp:e} (error {err:.3e} > bound {bound:.3e})"
        ))
    }
}
