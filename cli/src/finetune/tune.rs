//! `hardmine tune`: each run's learning rate, picked on the validation scenes (validation
//! digits, never the test ones) from a fixed grid, and the committed result
//! (`data/lr.json`, keyed by path and run) that `finetune` uses unless `--lr` is given.
//!
//! The learned adversaries' rates (`afast_asdn`, `afast`) come after the detector's, each with
//! the earlier ones fixed, to keep the search to 14 more runs instead of a joint grid's 49: the
//! detector's rate with both adversaries at [`ADVERSARY_LR`], then ASDN's rate of `afast_asdn`,
//! then ASTN's rate of `afast` with `afast_asdn`'s ASDN rate (`asdn_lr`, `astn_lr` and their
//! `*_val_ap` grids in the file).

use super::method::{BoxLoss, Method};
use super::train::{run_name, Run, ADVERSARY_LR};
use super::{data::Digits, one_run, parallel, Options, Path, Shared, Split};
use anyhow::{bail, Context as _};
use hardmine::Q16;
use hardmine_detect::Scalar;
use serde_json::{json, Map, Value};

/// The grid: 7 values spanning 1000x.
pub const GRID: [f64; 7] = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1];

/// The committed result.
const TUNED: &str = include_str!("../../../data/lr.json");

/// One run's row of the search.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Tuned {
    /// Run name (method, `+box loss` when not its default).
    pub run: String,
    /// Path name.
    pub path: &'static str,
    /// The chosen learning rate (highest validation AP; the smaller on a tie).
    pub lr: f64,
    /// Validation AP at each grid value (`null`: diverged).
    pub val_ap: Vec<(f64, Option<f64>)>,
    /// The learned adversaries' rates (`afast_asdn`, `afast`).
    pub adversary: Option<AdversaryTuned>,
}

/// The adversaries' rates of a run, and the grid searched for one of them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdversaryTuned {
    /// ASDN's rate.
    pub asdn_lr: f64,
    /// ASTN's rate (`afast`).
    pub astn_lr: Option<f64>,
    /// Which rate the grid searched: `"asdn_lr"` or `"astn_lr"`.
    pub grid: &'static str,
    /// Validation AP at each value of that grid, the detector's rate fixed at `lr`.
    pub val_ap: Vec<(f64, Option<f64>)>,
}

/// The tuned adversary rates `(ASDN, ASTN)` of `method` on `path`, from the committed file
/// (ASTN's `None` for `afast_asdn`).
pub fn tuned_adversaries(path: Path, method: Method) -> anyhow::Result<(f64, Option<f64>)> {
    let file: Value = serde_json::from_str(TUNED).context("data/lr.json")?;
    let name = run_name(method, method.default_box_loss());
    let row = file.get(path.name()).and_then(|p| p.get(&name));
    let rate = |key: &str| row.and_then(|r| r.get(key)).and_then(Value::as_f64);
    let asdn = rate("asdn_lr").with_context(|| {
        format!(
            "no tuned ASDN learning rate for {name} on {path} in data/lr.json: run `hardmine tune \
             --path {path}` or pass --asdn-lr"
        )
    })?;
    Ok((asdn, rate("astn_lr")))
}

/// The tuned learning rate of a run on `path`, from the committed file.
pub fn tuned(path: Path, method: Method, box_loss: BoxLoss) -> anyhow::Result<f64> {
    let file: Value = serde_json::from_str(TUNED).context("data/lr.json")?;
    let name = run_name(method, box_loss);
    file.get(path.name())
        .and_then(|p| p.get(&name))
        .and_then(|r| r.get("lr"))
        .and_then(Value::as_f64)
        .with_context(|| {
            format!(
                "no tuned learning rate for {name} on {path} in data/lr.json: run `hardmine tune \
                 --path {path}` or pass --lr"
            )
        })
}

/// Runs the grid for every run of `opts` on the validation scenes.
pub fn run(
    opts: &Options,
    progress: &mut (dyn FnMut(&str, usize, usize) + Send),
) -> anyhow::Result<Vec<Tuned>> {
    let mut opts = opts.clone();
    opts.split = Split::Val;
    opts.validate()?;
    match opts.path {
        Path::F32 => run_on::<f32>(&opts, progress),
        Path::Fixed => run_on::<Q16>(&opts, progress),
        other => bail!("tune runs on f32 or fixed, not `{other}`"),
    }
}

fn run_on<T: Scalar + Send + Sync>(
    opts: &Options,
    progress: &mut (dyn FnMut(&str, usize, usize) + Send),
) -> anyhow::Result<Vec<Tuned>> {
    let digits = Digits::load()?.split();
    let shared = Shared::<T>::new(opts, &digits)?;
    let set = shared.train_set(&digits.train, opts.steps, opts.seed)?;
    let runs = opts.runs();
    let mut grid =
        |jobs: Vec<Run>, label: &'static str| -> anyhow::Result<Vec<(f64, Option<f64>)>> {
            let name = |j: &Run| {
                let lr = match label {
                    "asdn_lr" => j.asdn_lr,
                    "astn_lr" => j.astn_lr,
                    _ => j.lr,
                };
                format!("{} {label} {lr}", run_name(j.method, j.box_loss))
            };
            let reports = parallel(&jobs, opts.steps, progress, name, |job, report| {
                one_run(&shared, &set, *job, opts.path, opts.steps, report)
            })?;
            Ok(jobs
                .iter()
                .zip(&reports)
                .map(|(j, r)| {
                    let lr = match label {
                        "asdn_lr" => j.asdn_lr,
                        "astn_lr" => j.astn_lr,
                        _ => j.lr,
                    };
                    (lr, r.diverged.is_none().then_some(r.ap))
                })
                .collect())
        };
    // Stage 1: the detector's rate of every run (the adversaries at ADVERSARY_LR).
    let base = |method: Method, box_loss: BoxLoss, lr: f64| Run {
        method,
        box_loss,
        lr,
        seed: opts.seed,
        asdn_lr: ADVERSARY_LR,
        astn_lr: ADVERSARY_LR,
    };
    let jobs: Vec<Run> = runs
        .iter()
        .flat_map(|&(m, b)| GRID.iter().map(move |&lr| base(m, b, lr)))
        .collect();
    let all = grid(jobs, "lr")?;
    let mut tuned: Vec<Tuned> = runs
        .iter()
        .zip(all.chunks(GRID.len()))
        .map(|(&(m, b), rows)| {
            let Some(lr) = best(rows) else {
                bail!(
                    "{}: every learning rate of the grid diverged",
                    run_name(m, b)
                );
            };
            Ok(Tuned {
                run: run_name(m, b),
                path: opts.path.name(),
                lr,
                val_ap: rows.to_vec(),
                adversary: None,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    // Stage 2: ASDN's rate of afast_asdn, the detector's rate fixed at its stage-1 value.
    // Stage 3: ASTN's rate of afast, with its stage-1 detector rate and afast_asdn's ASDN rate
    // (the committed one when afast_asdn is not tuned now, else ADVERSARY_LR).
    let mut asdn_rate = tuned_adversaries(opts.path, Method::AfastAsdn)
        .map(|(a, _)| a)
        .unwrap_or(ADVERSARY_LR);
    for (method, label) in [(Method::AfastAsdn, "asdn_lr"), (Method::Afast, "astn_lr")] {
        let Some(row) = tuned
            .iter_mut()
            .find(|t| t.run == run_name(method, method.default_box_loss()))
        else {
            continue;
        };
        let jobs: Vec<Run> = GRID
            .iter()
            .map(|&lr| Run {
                asdn_lr: if method == Method::AfastAsdn {
                    lr
                } else {
                    asdn_rate
                },
                astn_lr: lr,
                ..base(method, method.default_box_loss(), row.lr)
            })
            .collect();
        let rows = grid(jobs, label)?;
        let Some(lr) = best(&rows) else {
            bail!("{}: every {label} of the grid diverged", row.run);
        };
        if method == Method::AfastAsdn {
            asdn_rate = lr;
        }
        row.adversary = Some(AdversaryTuned {
            asdn_lr: asdn_rate,
            astn_lr: (method == Method::Afast).then_some(lr),
            grid: label,
            val_ap: rows,
        });
    }
    Ok(tuned)
}

/// The learning rate of highest validation AP (the smaller on a tie), `None` when all diverged.
fn best(rows: &[(f64, Option<f64>)]) -> Option<f64> {
    rows.iter()
        .filter_map(|&(lr, ap)| ap.map(|ap| (lr, ap)))
        .fold(None, |best: Option<(f64, f64)>, (lr, ap)| match best {
            Some((_, b)) if b >= ap => best,
            _ => Some((lr, ap)),
        })
        .map(|(lr, _)| lr)
}

/// `existing` (the file's text) with the rows of `tuned` replacing their path's entries.
pub fn merged(existing: &str, tuned: &[Tuned]) -> anyhow::Result<String> {
    let mut file: Map<String, Value> = if existing.trim().is_empty() {
        Map::new()
    } else {
        serde_json::from_str(existing).context("the learning-rate file")?
    };
    for t in tuned {
        let path = file
            .entry(t.path)
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(path) = path else {
            bail!("the learning-rate file: `{}` is not an object", t.path);
        };
        let grid: Map<String, Value> = t
            .val_ap
            .iter()
            .map(|(lr, ap)| (lr.to_string(), json!(ap)))
            .collect();
        let mut row = json!({ "lr": t.lr, "val_ap": grid });
        if let (Some(a), Value::Object(r)) = (&t.adversary, &mut row) {
            r.insert("asdn_lr".into(), json!(a.asdn_lr));
            if let Some(astn) = a.astn_lr {
                r.insert("astn_lr".into(), json!(astn));
            }
            let grid: Map<String, Value> = a
                .val_ap
                .iter()
                .map(|(lr, ap)| (lr.to_string(), json!(ap)))
                .collect();
            r.insert(format!("{}_val_ap", a.grid), Value::Object(grid));
        }
        path.insert(t.run.clone(), row);
    }
    Ok(serde_json::to_string_pretty(&file)? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_spans_thirty_fold_or_more() {
        assert!(GRID.len() >= 4);
        assert!(GRID[GRID.len() - 1] / GRID[0] >= 30.0);
        assert!(GRID.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn merging_keeps_the_other_paths() {
        let t = Tuned {
            run: "bce".into(),
            path: "f32",
            lr: 0.01,
            val_ap: vec![(0.001, Some(0.1)), (0.01, Some(0.3)), (0.1, None)],
            adversary: None,
        };
        let first = merged("", std::slice::from_ref(&t)).unwrap();
        let other = Tuned {
            path: "fixed",
            lr: 0.1,
            ..t
        };
        let both: Value = serde_json::from_str(&merged(&first, &[other]).unwrap()).unwrap();
        assert_eq!(both["f32"]["bce"]["lr"], json!(0.01));
        assert_eq!(both["fixed"]["bce"]["lr"], json!(0.1));
        assert_eq!(both["f32"]["bce"]["val_ap"]["0.1"], Value::Null);
    }

    #[test]
    fn merging_writes_the_adversaries_rates_and_grid() {
        let t = Tuned {
            run: "afast".into(),
            path: "f32",
            lr: 0.001,
            val_ap: vec![(0.001, Some(0.4))],
            adversary: Some(AdversaryTuned {
                asdn_lr: 0.003,
                astn_lr: Some(0.01),
                grid: "astn_lr",
                val_ap: vec![(0.01, Some(0.41)), (0.1, None)],
            }),
        };
        let v: Value = serde_json::from_str(&merged("", &[t]).unwrap()).unwrap();
        let row = &v["f32"]["afast"];
        assert_eq!(row["asdn_lr"], json!(0.003));
        assert_eq!(row["astn_lr"], json!(0.01));
        assert_eq!(row["astn_lr_val_ap"]["0.01"], json!(0.41));
        assert_eq!(row["astn_lr_val_ap"]["0.1"], Value::Null);
    }

    #[test]
    fn the_committed_file_has_the_adversaries_rates_on_both_paths() {
        for path in [Path::F32, Path::Fixed] {
            let (asdn, astn) = tuned_adversaries(path, Method::Afast).unwrap();
            assert!(GRID.contains(&asdn), "{path}: {asdn}");
            assert!(astn.is_some_and(|a| GRID.contains(&a)), "{path}: {astn:?}");
            let (asdn_only, none) = tuned_adversaries(path, Method::AfastAsdn).unwrap();
            assert!(GRID.contains(&asdn_only) && none.is_none());
            // afast uses afast_asdn's ASDN rate (tune's third stage).
            assert_eq!(asdn, asdn_only);
        }
    }
}
