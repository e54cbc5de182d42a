//! `hardmine plot`: the figures people want to look at, as SVG.
//!
//! (a) `focal_loss.svg`: focal loss against p_t for gamma 0, 0.5, 1, 2, 5 (computed by the
//!     library's `SigmoidFocal`, alpha off);
//! (b) `gradient_norms.svg`: the gradient-norm distribution of the bce-trained model's test
//!     examples, with the GHM-C weights (`tot / (n * count)`) it implies;
//! (c) `training_curves.svg`: each method's training loss relative to its first step;
//! (d) `census.svg`: who carries each method's loss on test scenes.

use crate::finetune::{self, Report};
use crate::svg;
use anyhow::Context as _;
use hardmine::{Reduction, SigmoidFocal};
use std::path::Path;

/// Writes the four figures for `reports` (one per method) into `dir`; returns their paths.
pub fn write_all(dir: &Path, reports: &[Report]) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let figures = [
        ("focal_loss.svg", focal_curves()?),
        ("gradient_norms.svg", gradient_norms(reports)),
        ("training_curves.svg", training_curves(reports)),
        ("census.svg", census(reports)),
    ];
    let mut written = Vec::new();
    for (name, body) in figures {
        let path = dir.join(name);
        std::fs::write(&path, body).with_context(|| path.display().to_string())?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

fn focal_curves() -> anyhow::Result<String> {
    let p: Vec<f64> = (1..=400).map(|k| k as f64 / 400.0).collect();
    let logits: Vec<f64> = p
        .iter()
        .map(|&p| if p >= 1.0 { 40.0 } else { (p / (1.0 - p)).ln() })
        .collect();
    let ones = vec![1.0; p.len()];
    let mut series = Vec::new();
    for gamma in [0.0, 0.5, 1.0, 2.0, 5.0] {
        let focal = SigmoidFocal::new(-1.0, gamma)?.with_reduction(Reduction::None);
        let mut loss = vec![0.0; p.len()];
        focal.per_element(&logits, &ones, &mut loss)?;
        series.push((
            format!("gamma = {gamma}"),
            p.iter().copied().zip(loss).collect(),
        ));
    }
    Ok(svg::lines(
        "Focal loss: easy examples (p_t near 1) are down-weighted",
        "probability of the true class, p_t",
        "loss",
        &series,
        false,
        Some((0.0, 5.0)),
    ))
}

fn gradient_norms(reports: &[Report]) -> String {
    let counts = reports
        .iter()
        .find(|r| r.method == "bce")
        .or(reports.first())
        .map(|r| r.grad_norms.clone())
        .unwrap_or_default();
    let tot: u64 = counts.iter().sum();
    let n = counts.iter().filter(|&&c| c > 0).count().max(1) as f64;
    let weights: Vec<f64> = counts
        .iter()
        .map(|&c| {
            if c > 0 {
                tot as f64 / (n * c as f64)
            } else {
                0.0
            }
        })
        .collect();
    svg::histogram_with_line(
        "Gradient norms of a trained model's test examples",
        "gradient norm g = |sigmoid(x) - t|  (30 bins)",
        &counts,
        "examples",
        &weights,
        "GHM-C weight (right)",
    )
}

fn training_curves(reports: &[Report]) -> String {
    let series: Vec<svg::Series> = reports
        .iter()
        .map(|r| {
            let first = r.curve.first().map_or(1.0, |p| p.1.abs().max(1e-12));
            // A running mean over 5 points keeps single-scene noise readable.
            let pts: Vec<(f64, f64)> = r
                .curve
                .iter()
                .enumerate()
                .map(|(i, &(s, _))| {
                    let w = &r.curve[i.saturating_sub(4)..=i];
                    (
                        s as f64,
                        w.iter().map(|p| p.1).sum::<f64>() / w.len() as f64 / first,
                    )
                })
                .collect();
            (r.method.to_string(), pts)
        })
        .collect();
    svg::lines(
        "Training loss relative to the first step",
        "SGD step (one scene of 1,024 cells)",
        "loss / first loss (log)",
        &series,
        true,
        None,
    )
}

fn census(reports: &[Report]) -> String {
    let names: Vec<String> = reports.iter().map(|r| r.method.to_string()).collect();
    let groups = [
        "easy negatives",
        "hard negatives",
        "easy positives",
        "hard positives",
    ]
    .map(String::from);
    let values: Vec<Vec<f64>> = reports.iter().map(|r| r.census.to_vec()).collect();
    svg::stacked_bars(
        "Who carries the loss (trained models, test scenes)",
        "share of the method's loss",
        &names,
        &groups,
        &values,
    )
}

/// Runs the fine-tuning job with `opts` and writes the figures.
pub fn run(
    dir: &Path,
    opts: &finetune::Options,
    progress: &mut (dyn FnMut(&str, usize, usize) + Send),
) -> anyhow::Result<Vec<String>> {
    let reports = finetune::run(opts, progress)?;
    write_all(dir, &reports)
}
