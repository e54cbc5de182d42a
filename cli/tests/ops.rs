//! The op names live in one list, `Op`: every golden file's op is one the parity runner has,
//! every op the runner has has golden cases, every op has a bench entry and fuzz coverage, or is
//! named below as having none (with the reason). `fuzz/` is its own cargo workspace, so its
//! targets are read here by file name.

use hardmine_cli::op::Op;
use hardmine_cli::{bench, parity};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The fuzz targets of each op (file names under fuzz/fuzz_targets, without `.rs`).
fn fuzz_targets(op: Op) -> &'static [&'static str] {
    match op {
        Op::BceWithLogits => &["loss_bce", "diff_f32_f64", "diff_fixed_f64"],
        Op::SigmoidFocal => &["loss_sigmoid_focal", "diff_f32_f64", "diff_fixed_f64"],
        Op::SigmoidFocalLabels => &["loss_sigmoid_focal_labels"],
        Op::SoftmaxCrossEntropy => &["loss_softmax_ce", "diff_f32_f64"],
        Op::SoftmaxFocal => &["loss_softmax_focal"],
        Op::SmoothL1 => &["loss_box"],
        Op::GhmC => &["ghm_c"],
        Op::GhmR => &["ghm_r"],
        Op::Ohem | Op::OhemNms => &["mining_ohem"],
        Op::Sohem => &["mining_sohem"],
        Op::BalancedSampler => &["mining_balanced"],
        Op::OcclusionSearch => &["adversarial_occlusion"],
        Op::RotateBlocks => &["adversarial_rotation"],
    }
}

/// Fuzz targets that belong to no op: the parity runner's JSON input, the C ABI (every op through
/// `hardmine-ffi`'s raw pointers), and the distribution-aware
/// CE, a loss of the fine-tuning demo that has no golden op or bench entry yet.
const TARGETS_OF_NO_OP: &[&str] = &["parity_json", "loss_distribution_ce", "ffi_c_abi"];

/// Ops with no bench entry: the adversarial A-Fast-RCNN steps run per positive, not per
/// element, so they have no throughput in elements per second.
const NO_BENCH: &[Op] = &[Op::OcclusionSearch, Op::RotateBlocks];

/// Ops the bench measures on request only (not in `--op all`): `ohem_nms` keeps the default
/// table as the README has it.
const BENCH_ON_REQUEST: &[Op] = &[Op::OhemNms];

/// Ops the parity runner has whose golden cases are still being written: listed until their
/// file lands, and the test below fails once it has.
const AWAITING_GOLDEN: &[Op] = &[];

/// The op of every golden case, by file.
fn golden_ops() -> Vec<(String, String)> {
    #[derive(serde::Deserialize)]
    struct OpOnly {
        op: String,
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root().join("golden")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let case: OpOnly = serde_json::from_str(line).unwrap();
            out.push((path.display().to_string(), case.op));
        }
    }
    out
}

#[test]
fn every_golden_op_is_an_op_the_runner_has_and_back() {
    let golden = golden_ops();
    assert!(golden.len() >= 38);
    let mut seen = BTreeSet::new();
    for (file, name) in &golden {
        let op = Op::all().iter().find(|op| op.name() == *name);
        let op = op.unwrap_or_else(|| panic!("{file}: op `{name}` is not in `Op`"));
        assert!(parity::runs(*op), "{file}: the runner has no `{name}`");
        seen.insert(*op);
    }
    for &op in Op::all() {
        let has_cases = seen.contains(&op);
        if AWAITING_GOLDEN.contains(&op) {
            assert!(
                !has_cases,
                "`{op}` has golden cases now: take it off AWAITING_GOLDEN"
            );
            assert!(parity::runs(op));
        } else {
            assert_eq!(
                has_cases,
                parity::runs(op),
                "`{op}`: the runner has it exactly when golden/ has cases of it"
            );
        }
    }
}

#[test]
fn every_op_has_a_bench_entry_or_is_named_without_one() {
    for &op in Op::all() {
        let default = bench::OPS.contains(&op);
        let listed = NO_BENCH.contains(&op) || BENCH_ON_REQUEST.contains(&op);
        assert!(
            default != listed,
            "`{op}`: in bench::OPS or in exactly one list here"
        );
    }
    // The ones with no entry say so, typed; the others measure (a short run: n = 1024).
    for &op in NO_BENCH {
        let e = bench::measure(op, hardmine_cli::op::Path::F64, 1024, 1).unwrap_err();
        assert!(hardmine_cli::op::Unsupported::is(&e), "{op}: {e}");
    }
}

#[test]
fn every_op_has_a_fuzz_target_and_every_target_an_op() {
    let dir = root().join("fuzz/fuzz_targets");
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    assert!(!files.is_empty(), "{} has targets", dir.display());
    let mut mapped: BTreeSet<String> = TARGETS_OF_NO_OP.iter().map(|s| s.to_string()).collect();
    for &op in Op::all() {
        let targets = fuzz_targets(op);
        assert!(!targets.is_empty(), "`{op}` has no fuzz target");
        for t in targets {
            assert!(files.contains(*t), "`{op}`: no fuzz target `{t}`");
            mapped.insert(t.to_string());
        }
    }
    let unmapped: Vec<_> = files.difference(&mapped).collect();
    assert!(
        unmapped.is_empty(),
        "fuzz targets of no op: {unmapped:?} (map them to their op)"
    );
    let stale: Vec<_> = mapped.difference(&files).collect();
    assert!(stale.is_empty(), "no such fuzz targets: {stale:?}");
}

#[test]
fn bench_takes_every_op_by_its_canonical_name() {
    use clap::ValueEnum;
    for &op in Op::all() {
        assert_eq!(Op::from_str(&op.name(), false), Ok(op));
    }
    // One spelling each: the old bench names are gone.
    for old in ["bce", "focal", "focal_labels", "softmax_ce", "balanced"] {
        assert!(Op::from_str(old, false).is_err(), "`{old}` still parses");
    }
}

#[test]
fn finetune_methods_are_named_alike_by_clap_and_in_reports() {
    use clap::ValueEnum;
    use hardmine_cli::finetune::method::{Method, ALL};
    assert_eq!(Method::value_variants(), ALL);
    for m in ALL {
        let name = m.to_possible_value().map(|v| v.get_name().to_owned());
        assert_eq!(name.as_deref(), Some(m.name()));
    }
}
