//! `hardmine tune`: each run's learning rate, picked on the validation scenes (validation
//! digits, never the test ones) from a fixed grid, and the committed result
//! (`data/lr.json`, keyed by path and run) that `finetune` uses unless `--lr` is given.

use super::method::{BoxLoss, Method};
use super::train::{run_name, Run};
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
    let jobs: Vec<Run> = runs
        .iter()
        .flat_map(|&(method, box_loss)| {
            GRID.iter().map(move |&lr| Run {
                method,
                box_loss,
                lr,
                seed: opts.seed,
            })
        })
        .collect();
    let name = |j: &Run| format!("{} lr {}", run_name(j.method, j.box_loss), j.lr);
    let reports = parallel(&jobs, opts.steps, progress, name, |job, report| {
        one_run(&shared, &set, *job, opts.path, opts.steps, report)
    })?;
    runs.iter()
        .zip(reports.chunks(GRID.len()))
        .map(|(&(m, b), rows)| {
            let val_ap: Vec<(f64, Option<f64>)> = rows
                .iter()
                .map(|r| (r.lr, r.diverged.is_none().then_some(r.ap)))
                .collect();
            let best = val_ap
                .iter()
                .filter_map(|&(lr, ap)| ap.map(|ap| (lr, ap)))
                .fold(None, |best: Option<(f64, f64)>, (lr, ap)| match best {
                    Some((_, b)) if b >= ap => best,
                    _ => Some((lr, ap)),
                });
            let Some((lr, _)) = best else {
                bail!(
                    "{}: every learning rate of the grid diverged",
                    run_name(m, b)
                );
            };
            Ok(Tuned {
                run: run_name(m, b),
                path: opts.path.name(),
                lr,
                val_ap,
            })
        })
        .collect()
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
        path.insert(t.run.clone(), json!({ "lr": t.lr, "val_ap": grid }));
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
}
