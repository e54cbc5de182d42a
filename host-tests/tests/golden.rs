//! Every vendored golden case passes `hardmine parity` on f64, f32 and Q15.16 at the published
//! tolerances. Ops that later issues add are listed explicitly: they must answer with a
//! per-case error line (the runner contract) until they land, and nothing else may.

use hardmine_cli::case::Outcome;
use hardmine_cli::op::Op;
use hardmine_cli::{compare, parity};
use hardmine_host_tests::golden;
use hardmine_host_tests::tolerance::Tolerance;

/// Ops whose implementation belongs to open issues (none at present; an op listed here must
/// answer with an error line until it lands).
const NOT_YET: &[Op] = &[];

fn run_path(path: parity::Path) {
    let cases = golden::cases();
    assert!(cases.len() >= 38, "golden/ holds {} cases", cases.len());
    let mut checked = 0;
    let mut failures = Vec::new();
    for (file, case) in &cases {
        let parsed = parity::parse_value(case);
        let id = parsed.label().to_owned();
        let result = parity::run_parsed(&parsed, path);
        let op = parsed.case.as_ref().map(|c| c.op());
        if op.as_ref().is_ok_and(|op| NOT_YET.contains(op)) {
            assert!(
                result.is_err(),
                "{file} {id}: an unimplemented op must answer one error line"
            );
            continue;
        }
        let expected = match &parsed.case {
            Ok(c) => c.expectations(),
            Err(e) => {
                failures.push(format!("{file} {id}: {e}"));
                continue;
            }
        };
        match compare::check(&expected, &result, path) {
            Ok(()) => checked += 1,
            Err(why) => failures.push(format!("{file} {id}: {why}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{path:?} failures:\n{}",
        failures.join("\n")
    );
    assert!(checked >= 38, "only {checked} cases checked");
}

#[test]
fn golden_f64() {
    run_path(parity::Path::F64);
}

#[test]
fn golden_f32() {
    run_path(parity::Path::F32);
}

/// In the default (debug) test build this also proves the fixed path never overflows: debug
/// builds panic on integer overflow, and the whole suite runs through Q15.16 here.
#[test]
fn golden_fixed() {
    run_path(parity::Path::Fixed);
}

#[test]
fn the_gpu_path_answers_error_lines_without_cuda() {
    for (_, case) in golden::cases().iter().take(3) {
        // Through the JSON-in, JSON-out API the fuzz target drives.
        let lines = parity::run_case(case, parity::Path::Gpu);
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0]["error"].is_string(),
            "the gpu path must answer an error line"
        );
        assert_eq!(lines[0]["id"], case["id"]);
        assert!(compare::check_case(case, &lines, parity::Path::Gpu).is_err());
    }
}

#[test]
fn the_json_api_agrees_with_the_typed_one() {
    for (_, case) in golden::cases() {
        let lines = parity::run_case(&case, parity::Path::F64);
        assert_eq!(lines[0]["id"], case["id"]);
        assert_eq!(
            compare::check_case(&case, &lines, parity::Path::F64),
            Ok(())
        );
    }
}

#[test]
fn the_checker_rejects_a_perturbed_result() {
    // The comparison itself must be able to fail: nudge one gradient entry past the bound.
    let (_, case) = golden::cases()
        .into_iter()
        .find(|(_, c)| c["op"] == "bce_with_logits")
        .unwrap();
    let parsed = parity::parse_value(&case);
    let expected = parsed.case.as_ref().unwrap().expectations();
    let mut outcomes = parity::run_parsed(&parsed, parity::Path::F32).unwrap();
    let Outcome::LossGrad(lg) = &mut outcomes[0] else {
        panic!("bce answers a loss and a gradient")
    };
    let g = lg.grad[0];
    lg.grad[0] = g * (1.0 + 1e-3) + 1e-3;
    assert!(compare::check(&expected, &Ok(outcomes.clone()), parity::Path::F32).is_err());
    // And through the JSON lines.
    let mut lines = parity::run_case(&case, parity::Path::F32);
    let g = lines[0]["grad"][0].as_f64().unwrap();
    lines[0]["grad"][0] = serde_json::json!(g * (1.0 + 1e-3) + 1e-3);
    assert!(compare::check_case(&case, &lines, parity::Path::F32).is_err());
}

#[test]
fn the_tolerance_table_is_the_golden_readme_s() {
    let readme = std::fs::read_to_string(golden::dir().join("README.md")).unwrap();
    for (row, path) in [
        ("| f64 |", parity::Path::F64),
        ("| f32, gpu |", parity::Path::F32),
        ("| fixed (Q15.16) |", parity::Path::Fixed),
    ] {
        let line = readme.lines().find(|l| l.starts_with(row)).unwrap();
        let cells: Vec<f64> = line
            .split('|')
            .skip(2)
            .filter_map(|c| c.trim().parse().ok())
            .collect();
        let t = Tolerance::of(path);
        assert_eq!(cells, [t.rtol, t.afrac, t.floor], "{row}");
    }
}
