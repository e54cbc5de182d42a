//! The `hardmine` command as users and scripts call it: the command lines of the README,
//! .ci/run and gpu/check-on-device.sh, `--help` from clap, the S-OHEM parity op, and error
//! lines (never a panic) for malformed case lines. `sohem.jsonl` beside this file: a quantile
//! case, a preset-edges case (k = N, so every example is selected whatever the edges), a k
//! beyond the runner's capacity, and one missing a param.

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn hardmine(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hardmine"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn golden_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join("golden"))
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.ends_with(".jsonl").then(|| format!("golden/{name}"))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_command_has_help_from_clap() {
    for args in [
        &["--help"][..],
        &["parity", "--help"],
        &["bench", "--help"],
        &["finetune", "--help"],
        &["plot", "--help"],
    ] {
        let o = hardmine(args);
        assert!(o.status.success(), "{args:?}");
        assert!(stdout(&o).contains("Usage: hardmine"), "{args:?}");
    }
    assert!(stdout(&hardmine(&["parity", "--help"])).contains("--check"));
    // No command: the usage, on stderr, exit status 2.
    assert_eq!(hardmine(&[]).status.code(), Some(2));
    assert_eq!(
        hardmine(&["parity", "--path", "f65", "x"]).status.code(),
        Some(2)
    );
}

#[test]
fn the_ci_s_golden_check_passes_on_every_cpu_path() {
    let files = golden_files();
    for path in ["f64", "f32", "fixed"] {
        let mut args = vec!["parity", "--path", path, "--check"];
        args.extend(files.iter().map(String::as_str));
        let o = hardmine(&args);
        assert!(o.status.success(), "{path}: {}", stdout(&o));
        let out = stdout(&o);
        let last = out.lines().last().unwrap_or_default();
        assert!(
            last.ends_with(" passed, 0 failed, 0 skipped"),
            "{path}: {last}"
        );
    }
}

#[test]
fn the_gpu_path_of_a_build_without_it_answers_error_lines_and_skips() {
    if cfg!(feature = "gpu") {
        return;
    }
    let files = golden_files();
    let mut args = vec!["parity", "--path", "gpu"];
    args.extend(files.iter().map(String::as_str));
    let out = stdout(&hardmine(&args));
    assert!(!out.is_empty());
    assert!(out
        .lines()
        .all(|l| l.contains("\"error\":\"the gpu path is not in this build")));
    args.push("--check");
    let out = stdout(&hardmine(&args));
    assert!(out
        .lines()
        .last()
        .unwrap_or_default()
        .starts_with("0 passed, 0 failed, "));
}

#[test]
fn sohem_cases_run_and_check() {
    let o = hardmine(&["parity", "--path", "f64", "cli/tests/sohem.jsonl"]);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(
        lines[0],
        r#"{"id":"t-sohem-0","batch":0,"selected":[1,2,4,5]}"#
    );
    assert_eq!(
        lines[1],
        r#"{"id":"t-sohem-edges","batch":0,"selected":[0,1,2,3]}"#
    );
    assert!(
        lines[2].contains("exceeds the runner's capacity 4096"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].contains("\"error\":\"missing field `progress`"),
        "{}",
        lines[3]
    );
    for path in ["f64", "f32", "fixed"] {
        let o = hardmine(&["parity", "--path", path, "--check", "cli/tests/sohem.jsonl"]);
        assert_eq!(o.status.code(), Some(1), "{path}: failures exit 1");
        let out = stdout(&o);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "ok    t-sohem-0", "{path}");
        assert_eq!(lines[1], "ok    t-sohem-edges", "{path}");
        assert!(
            lines[2].starts_with("FAIL  t-sohem-big-k: "),
            "{}",
            lines[2]
        );
        assert!(lines[3].starts_with("FAIL  t-sohem-bad: "), "{}", lines[3]);
        assert_eq!(lines[4], "2 passed, 2 failed, 0 skipped");
    }
}

#[test]
fn malformed_lines_answer_error_lines_not_panics() {
    let dir = std::env::temp_dir().join(format!("hardmine-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.jsonl");
    let lines = [
        "not json",
        r#"{"id": "x","#,
        "[1, 2]",
        "null",
        r#"{"id": "no-op"}"#,
        r#"{"id": 3, "op": 7}"#,
        r#"{"id": "unknown", "op": "nope"}"#,
        r#"{"id": "sampler", "op": "balanced_sampler"}"#,
        r#"{"id": "alias", "op": "bce"}"#,
        r#"{"id": "types", "op": "bce_with_logits", "inputs": {"logits": ["a"], "targets": [0]}}"#,
        r#"{"id": "lengths", "op": "bce_with_logits", "inputs": {"logits": [1, 2], "targets": [0]}}"#,
        r#"{"id": "reduction", "op": "smooth_l1", "params": {"beta": 1, "reduction": "max"}, "inputs": {"pred": [1], "target": [0]}}"#,
        r#"{"id": "no-batches", "op": "ghm_c", "params": {"bins": 10, "momentum": 0, "loss_weight": 1}}"#,
        r#"{"id": "big", "op": "bce_with_logits", "inputs": {"logits": [1e300], "targets": [0]}, "expected": {"loss": 1.0, "grad": [1.0]}}"#,
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let name = file.to_string_lossy().into_owned();
    for path in ["f64", "f32", "fixed", "gpu"] {
        let o = hardmine(&["parity", "--path", path, &name]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{path}: invalid JSON counts as failed"
        );
        let out = stdout(&o);
        assert_eq!(out.lines().count(), lines.len(), "{path}: {out}");
        if path == "gpu" {
            continue;
        }
        for l in out.lines().take(lines.len() - 1) {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(v["error"].is_string(), "{path}: {l}");
        }
        let out: Vec<&str> = out.lines().collect();
        assert!(
            out[0].starts_with(r#"{"id":null,"error":""#) && out[0].contains(":1: invalid JSON")
        );
        assert!(out[1].contains(":2: invalid JSON"));
        assert_eq!(out[2], r#"{"id":null,"error":"case has no `op`"}"#);
        assert_eq!(out[4], r#"{"id":"no-op","error":"case has no `op`"}"#);
        assert_eq!(
            out[6],
            r#"{"id":"unknown","error":"op `nope` is not supported by this runner"}"#
        );
        assert_eq!(
            out[8],
            r#"{"id":"alias","error":"op `bce` is not supported by this runner"}"#
        );
        assert_eq!(
            out[10],
            r#"{"id":"lengths","error":"length mismatch: expected 2, got 1"}"#
        );
        let check = stdout(&hardmine(&["parity", "--path", path, "--check", &name]));
        let skips = check.lines().filter(|l| l.starts_with("skip  ")).count();
        assert_eq!(
            skips, 3,
            "{path}: the ops this runner lacks are skipped\n{check}"
        );
        assert!(check
            .lines()
            .last()
            .unwrap_or_default()
            .ends_with(" 3 skipped"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_speaks_the_canonical_op_names() {
    let o = hardmine(&[
        "bench",
        "--op",
        "bce_with_logits",
        "--op",
        "sigmoid_focal",
        "--path",
        "f32",
        "--n",
        "1024",
        "--repeats",
        "1",
        "--json",
    ]);
    assert!(o.status.success());
    let out = stdout(&o);
    let ops: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["op"].to_string())
        .collect();
    assert_eq!(ops, ["\"bce_with_logits\"", "\"sigmoid_focal\""]);
    let o = hardmine(&[
        "bench",
        "--op",
        "rotate_blocks",
        "--path",
        "f32",
        "--n",
        "1024",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("has no bench entry"));
    assert_eq!(hardmine(&["bench", "--n", "100"]).status.code(), Some(2));
}

#[test]
fn finetune_refuses_a_path_it_does_not_run_on() {
    let o = hardmine(&["finetune", "--path", "f64", "--steps", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("finetune runs on f32 or fixed, not `f64`"));
    let o = hardmine(&["finetune", "--steps", "0"]);
    assert_eq!(o.status.code(), Some(2));
    let o = hardmine(&["finetune", "--methods", "bce,nope"]);
    assert_eq!(o.status.code(), Some(2));
}
