//! `hardmine plot`: the figures people want to look at, as SVG.
//!
//! (a) `training_curves.svg`: each run's training loss (cls + box) relative to its first step;
//! (b) `ap.svg`: each run's AP, AP50 and AP75 on the evaluation scenes;
//! (c) `scene.svg`: the busiest of the first 20 evaluation scenes, its ground truth and each method's
//!     detections (score 0.3 and above);
//! (d) `focal_loss.svg`: focal loss against p_t for gamma 0, 0.5, 1, 2, 5 (computed by the
//!     library's `SigmoidFocal`, alpha off).

use crate::finetune::{self, Report};
use crate::svg;
use anyhow::Context as _;
use hardmine::{Reduction, SigmoidFocal};
use std::path::Path;

/// Whether `reports` hold more than one seed.
fn several_seeds(reports: &[Report]) -> bool {
    reports.iter().any(|r| r.seed != reports[0].seed)
}

/// Detections drawn on the scene figure score at least this.
const SHOWN_SCORE: f64 = 0.3;

/// Writes the figures for `reports` (one per run) into `dir`; returns their paths.
pub fn write_all(
    dir: &Path,
    opts: &finetune::Options,
    reports: &[Report],
) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let figures = [
        ("training_curves.svg", training_curves(reports)),
        ("ap.svg", ap_bars(reports)),
        ("scene.svg", scene(opts, reports)?),
        ("focal_loss.svg", focal_curves()?),
    ];
    let mut written = Vec::new();
    for (name, body) in figures {
        let path = dir.join(name);
        std::fs::write(&path, body).with_context(|| path.display().to_string())?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

/// A report's name on the figures (with its seed when the figure holds several).
fn label(r: &Report, seeds: bool) -> String {
    let mut name = r.run.clone();
    if seeds {
        name += &format!(" s{}", r.seed);
    }
    if r.diverged.is_some() {
        name += " (diverged)";
    }
    name
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
            (label(r, several_seeds(reports)), pts)
        })
        .collect();
    svg::lines(
        "Fine-tuning loss (cls + box) relative to the first step",
        "SGD step (one target-domain scene)",
        "loss / first loss (log)",
        &series,
        true,
        None,
    )
}

fn ap_bars(reports: &[Report]) -> String {
    let names: Vec<String> = reports
        .iter()
        .map(|r| label(r, several_seeds(reports)))
        .collect();
    let series = ["AP 0.50:0.95", "AP50", "AP75", "AP before"].map(String::from);
    let values: Vec<Vec<f64>> = reports
        .iter()
        .map(|r| vec![r.ap, r.ap50, r.ap75, r.ap_before])
        .collect();
    svg::grouped_bars(
        "COCO-style AP after fine-tuning (target domain)",
        "AP",
        &names,
        &series,
        &values,
    )
}

fn scene(opts: &finetune::Options, reports: &[Report]) -> anyhow::Result<String> {
    let scenes = finetune::evaluation_scenes(opts)?;
    // The busiest of the first 20 scenes (the first of them on a tie).
    let Some((image, scene)) = scenes
        .iter()
        .enumerate()
        .take(20)
        .max_by_key(|(i, s)| (s.boxes.len(), std::cmp::Reverse(*i)))
    else {
        anyhow::bail!("no evaluation scenes");
    };
    let truth: Vec<svg::Labelled> = scene
        .boxes
        .iter()
        .zip(&scene.classes)
        .map(|(&b, c)| (b, c.to_string()))
        .collect();
    let panels: Vec<(String, Vec<svg::Labelled>)> = reports
        .iter()
        .filter(|r| r.seed == opts.seed)
        .map(|r| {
            let boxes = r
                .detections
                .iter()
                .filter(|d| d.image == image && d.score >= SHOWN_SCORE)
                .map(|d| (d.bbox, format!("{} {:.2}", d.class, d.score)))
                .collect();
            (label(r, false), boxes)
        })
        .collect();
    let split = match opts.split {
        finetune::Split::Test => "test",
        finetune::Split::Val => "validation",
    };
    Ok(svg::scene_panels(
        &format!("A {split} scene: ground truth (green, dashed), detections scoring 0.3 or more"),
        &scene.pixels,
        finetune::scene::CANVAS,
        16,
        &truth,
        &panels,
    ))
}

/// Runs the fine-tuning job with `opts` and writes the figures.
pub fn run(
    dir: &Path,
    opts: &finetune::Options,
    progress: &mut (dyn FnMut(&str, usize, usize) + Send),
) -> anyhow::Result<Vec<String>> {
    let reports = finetune::run(opts, progress)?;
    write_all(dir, opts, &reports)
}
