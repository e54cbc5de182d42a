//! Compares runner output with a golden case's `expected`, at a path's tolerance.
//!
//! `|got - exp| <= rtol |exp| + afrac * scale + floor`, where `scale` is the largest `|exp|` of
//! the array being compared, or `max(1, |loss|)` for a scalar loss (golden/README.md).

use crate::case::{Answer, LossValue, Outcome};
use crate::op::Path;
use crate::parity::{self, Invalid};
use crate::tolerance::{Tolerance, FIXED_RANGE};
use serde_json::Value;

/// Checks a case's results (or the runner's error) against its expectations; `Err` says what
/// differs.
pub fn check(
    expected: &[Outcome],
    result: &anyhow::Result<Vec<Outcome>>,
    path: Path,
) -> Result<(), String> {
    let got = match result {
        Ok(outcomes) => outcomes.iter().map(Ok).collect(),
        Err(e) => vec![Err(format!("{e:#}"))],
    };
    check_answers(expected, &got, path)
}

/// Checks every output line of one case (read back as JSON) against its expectation.
pub fn check_case(case: &Value, lines: &[Value], path: Path) -> Result<(), String> {
    let expected = match parity::parse_value(case).case {
        Ok(case) => case.expectations(),
        Err(Invalid::Unsupported(_) | Invalid::Malformed(_)) => Vec::new(),
    };
    let answers: Vec<Result<Outcome, String>> = lines
        .iter()
        .map(|l| match serde::Deserialize::deserialize(l) {
            Ok(Answer::Outcome(o)) => Ok(o),
            Ok(Answer::Error(e)) => Err(e.error),
            Err(e) => Err(format!("unreadable output line: {e}")),
        })
        .collect();
    let got: Vec<Result<&Outcome, String>> = answers
        .iter()
        .map(|a| a.as_ref().map_err(Clone::clone))
        .collect();
    check_answers(&expected, &got, path)
}

/// An error as the check quotes it (a JSON string, as the output line has it).
fn quoted(e: &str) -> String {
    serde_json::to_string(e).unwrap_or_else(|_| e.to_owned())
}

fn check_answers(
    expected: &[Outcome],
    got: &[Result<&Outcome, String>],
    path: Path,
) -> Result<(), String> {
    if expected.len() != got.len() {
        return Err(match got.first() {
            Some(Err(e)) => format!("runner error: {}", quoted(e)),
            _ => format!(
                "{} output lines for {} expectations",
                got.len(),
                expected.len()
            ),
        });
    }
    let tol = Tolerance::of(path);
    for (batch, (exp, got)) in expected.iter().zip(got).enumerate() {
        let got = got
            .as_ref()
            .map_err(|e| format!("batch {batch}: runner error: {}", quoted(e)))?;
        if first_key(exp) != first_key(got) {
            return Err(format!("batch {batch}: no `{}` in output", first_key(exp)));
        }
        compare_outcome(exp, got, tol, path)
            .map_err(|(key, m)| format!("batch {batch}, {key}: {m}"))?;
    }
    Ok(())
}

/// A difference: the field and what differs.
type Miss = (&'static str, String);

fn compare_outcome(exp: &Outcome, got: &Outcome, tol: Tolerance, path: Path) -> Result<(), Miss> {
    let close = |key, e: &[f64], g: &[f64]| array(e, g, tol, path).map_err(|m| (key, m));
    match (exp, got) {
        (Outcome::LossGrad(e), Outcome::LossGrad(g)) => {
            loss(&e.loss, &g.loss, tol, path).map_err(|m| ("loss", m))?;
            close("grad", &e.grad, &g.grad)
        }
        (Outcome::Selected(e), Outcome::Selected(g)) => {
            // Index sets: compared as sets.
            let sorted = |v: &[usize]| {
                let mut s = v.to_vec();
                s.sort_unstable();
                s
            };
            if sorted(&e.selected) == sorted(&g.selected) {
                Ok(())
            } else {
                Err(("selected", "index sets differ".into()))
            }
        }
        (Outcome::Windows(e), Outcome::Windows(g)) => {
            close("scores", &e.scores, &g.scores)?;
            // Window starts and the best index must match exactly.
            exact("windows", &e.windows, &g.windows)?;
            exact("best", &e.best, &g.best)
        }
        (Outcome::Rotated(e), Outcome::Rotated(g)) => {
            close("output", &e.output, &g.output)?;
            close("grad", &e.grad, &g.grad)?;
            close("grad_angles", &e.grad_angles, &g.grad_angles)
        }
        (e, _) => Err((first_key(e), "not in output".into())),
    }
}

/// The first field of an expectation (what a mismatched output lacks).
fn first_key(e: &Outcome) -> &'static str {
    match e {
        Outcome::LossGrad(_) => "loss",
        Outcome::Selected(_) => "selected",
        Outcome::Windows(_) => "scores",
        Outcome::Rotated(_) => "output",
    }
}

fn exact<V: PartialEq + serde::Serialize>(key: &'static str, e: &V, g: &V) -> Result<(), Miss> {
    if e == g {
        return Ok(());
    }
    let json = |v: &V| serde_json::to_string(v).unwrap_or_default();
    Err((key, format!("got {}, expected {}", json(g), json(e))))
}

fn loss(exp: &LossValue, got: &LossValue, tol: Tolerance, path: Path) -> Result<(), String> {
    match (exp, got) {
        (LossValue::PerElement(e), LossValue::PerElement(g)) => array(e, g, tol, path),
        (LossValue::PerElement(_), _) => Err("expected a number".into()),
        (LossValue::Scalar(_), LossValue::PerElement(_)) => Err("not a finite number".into()),
        (&LossValue::Scalar(e), &LossValue::Scalar(g)) => {
            finite(g).ok_or("not a finite number")?;
            within(
                e,
                g,
                tol.rtol,
                tol.afrac * e.abs().max(1.0) + tol.floor,
                path,
            )
        }
    }
}

/// A result that has a JSON number (a non-finite one is written `null`).
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

fn array(e: &[f64], g: &[f64], tol: Tolerance, path: Path) -> Result<(), String> {
    if e.len() != g.len() {
        return Err(format!("length {} instead of {}", g.len(), e.len()));
    }
    let scale = e.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (i, (&e, &g)) in e.iter().zip(g).enumerate() {
        let g = finite(g).ok_or_else(|| format!("[{i}]: not a finite number"))?;
        within(e, g, tol.rtol, tol.afrac * scale + tol.floor, path)
            .map_err(|m| format!("[{i}]: {m}"))?;
    }
    Ok(())
}

/// Fixed-point results whose exact value lies beyond the Q15.16 range pass when saturated
/// with the right sign.
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
