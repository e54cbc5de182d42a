//! Trains a small candle MLP (2 -> 16 -> 1) with GHM-C on imbalanced data and checks that its
//! held-out average precision improves; exits non-zero otherwise.
//!
//! The data: points uniform in `[-1, 1]^2`; positives are the points inside a disc of radius
//! 0.2 (about 3 % of them), so the model has to learn a non-linear region that a constant
//! "background" answer would miss. Training and held-out sets are drawn independently. The
//! metric is average precision (the mean precision at each positive's rank), which a
//! classifier that ranks at random scores near the positive rate.
//!
//! `cargo run --example ghm_train` (in `integrations/candle/`).

use std::process::ExitCode;

use candle_core::{Device, Result, Tensor, Var};
use hardmine::{GhmC, SplitMix64};
use hardmine_candle::Harmonized;

const CPU: Device = Device::Cpu;
const HIDDEN: usize = 16;

/// `n` points and their labels (1 inside the disc).
fn data(rng: &mut SplitMix64, n: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut xs, mut ys) = (Vec::with_capacity(2 * n), Vec::with_capacity(n));
    for _ in 0..n {
        let (a, b) = (2.0 * rng.unit_f64() - 1.0, 2.0 * rng.unit_f64() - 1.0);
        let inside = (a - 0.4).powi(2) + (b - 0.3).powi(2) < 0.2f64.powi(2);
        xs.extend([a as f32, b as f32]);
        ys.push(f32::from(u8::from(inside)));
    }
    (xs, ys)
}

/// Average precision of `scores` for binary `labels` (ranks by descending score).
fn average_precision(scores: &[f32], labels: &[f32]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut hits, mut sum) = (0usize, 0.0);
    for (rank, &i) in order.iter().enumerate() {
        if labels[i] > 0.5 {
            hits += 1;
            sum += hits as f64 / (rank + 1) as f64;
        }
    }
    if hits == 0 {
        0.0
    } else {
        sum / hits as f64
    }
}

struct Mlp {
    w1: Var,
    b1: Var,
    w2: Var,
    b2: Var,
}

impl Mlp {
    fn new(rng: &mut SplitMix64) -> Result<Self> {
        let mut init = |rows: usize, cols: usize, scale: f64| -> Result<Var> {
            let v: Vec<f32> = (0..rows * cols)
                .map(|_| (scale * (2.0 * rng.unit_f64() - 1.0)) as f32)
                .collect();
            Var::from_vec(v, (rows, cols), &CPU)
        };
        Ok(Self {
            w1: init(2, HIDDEN, 1.0)?,
            b1: init(1, HIDDEN, 1.0)?,
            w2: init(HIDDEN, 1, 0.25)?,
            // RetinaNet's prior: start near the positive rate.
            b2: Var::from_vec(vec![-3.0f32], (1, 1), &CPU)?,
        })
    }

    /// Logits `[N]` of points `[N, 2]`.
    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let h = x.matmul(&self.w1)?.broadcast_add(&self.b1)?.relu()?;
        h.matmul(&self.w2)?.broadcast_add(&self.b2)?.flatten_all()
    }

    fn vars(&self) -> [&Var; 4] {
        [&self.w1, &self.b1, &self.w2, &self.b2]
    }
}

fn held_out_ap(model: &Mlp, x: &Tensor, y: &[f32]) -> Result<f64> {
    let scores = model.logits(x)?.to_vec1::<f32>()?;
    Ok(average_precision(&scores, y))
}

fn run() -> Result<bool> {
    let mut rng = SplitMix64::new(2024);
    let (n_train, n_test) = (4000, 4000);
    let (xs, ys) = data(&mut rng, n_train);
    let (xt, yt) = data(&mut rng, n_test);
    let positives = ys.iter().filter(|&&y| y > 0.5).count();
    println!(
        "train: {n_train} points, {positives} positives ({:.1} %); held out: {n_test} points, {} positives",
        100.0 * positives as f64 / n_train as f64,
        yt.iter().filter(|&&y| y > 0.5).count()
    );
    let x_train = Tensor::from_vec(xs, (n_train, 2), &CPU)?;
    let y_train = Tensor::from_vec(ys, n_train, &CPU)?;
    let x_test = Tensor::from_vec(xt, (n_test, 2), &CPU)?;

    let model = Mlp::new(&mut rng)?;
    // The paper's RetinaNet setting: 30 bins, momentum 0.75.
    let ghm =
        Harmonized::new(GhmC::<f32, 30>::new(30, 0.75, 1.0).map_err(candle_core::Error::msg)?);
    let before = held_out_ap(&model, &x_test, &yt)?;
    println!("held-out AP before training: {before:.4}");

    // Full-batch SGD with momentum 0.9.
    let (lr, momentum, steps) = (0.5f64, 0.9f64, 200);
    let mut velocity: Vec<Tensor> = model
        .vars()
        .iter()
        .map(|v| v.as_tensor().zeros_like())
        .collect::<Result<_>>()?;
    for step in 0..steps {
        let loss = ghm.forward(&model.logits(&x_train)?, &y_train)?;
        let grads = loss.backward()?;
        for (var, vel) in model.vars().into_iter().zip(velocity.iter_mut()) {
            let g = grads
                .get(var.as_tensor())
                .ok_or_else(|| candle_core::Error::msg("no gradient reached a parameter"))?;
            *vel = ((&*vel * momentum)? + g)?;
            var.set(&(var.as_tensor() - (&*vel * lr)?)?)?;
        }
        if step % 50 == 49 {
            let ap = held_out_ap(&model, &x_test, &yt)?;
            println!(
                "step {:3}: GHM-C loss {:.5}, held-out AP {ap:.4}",
                step + 1,
                loss.to_scalar::<f32>()?
            );
        }
    }
    let after = held_out_ap(&model, &x_test, &yt)?;
    println!("held-out AP after {steps} steps: {after:.4} (before: {before:.4})");
    Ok(after > before)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("FAILED: the held-out AP did not improve");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
