//! Training steps with hardmine: a linear classifier on imbalanced data, trained once with
//! the sigmoid focal loss and once with GHM-C. Each step computes the logits, asks the loss
//! for its value and its gradient with respect to the logits (into a caller buffer: the core
//! allocates nothing), chains that gradient to the weights by hand and takes an SGD step.
//!
//! `cargo run -p hardmine --example train_step`
//!
//! The data: two features; positives (about 5 %) come from a Gaussian around (1.5, 1.5),
//! negatives from one around the origin. The held-out metric is average precision, which a
//! random ranking scores near the positive rate; the example exits with an error unless
//! both losses improve it.

use hardmine::{Error, GhmC, Reduction, SigmoidFocal, SplitMix64};

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut SplitMix64) -> f32 {
    let u = rng.unit_f64().max(1e-300);
    let v = rng.unit_f64();
    ((-2.0 * u.ln()).sqrt() * (2.0 * core::f64::consts::PI * v).cos()) as f32
}

/// `n` points `[n x 2]` and their 0/1 labels.
fn data(rng: &mut SplitMix64, n: usize) -> (Vec<[f32; 2]>, Vec<f32>) {
    (0..n)
        .map(|_| {
            let positive = rng.unit_f64() < 0.05;
            let centre = if positive { 1.5 } else { 0.0 };
            let p = [centre + normal(rng), centre + normal(rng)];
            (p, f32::from(u8::from(positive)))
        })
        .unzip()
}

/// Average precision: the mean precision at each positive's rank (descending score).
fn average_precision(scores: &[f32], labels: &[f32]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut hits, mut sum) = (0u32, 0.0);
    for (rank, &i) in order.iter().enumerate() {
        if labels[i] > 0.5 {
            hits += 1;
            sum += f64::from(hits) / (rank + 1) as f64;
        }
    }
    sum / f64::from(hits.max(1))
}

/// A linear classifier `w . x + b`.
#[derive(Clone, Copy)]
struct Linear {
    w: [f32; 2],
    b: f32,
}

impl Linear {
    fn logits(&self, xs: &[[f32; 2]], out: &mut [f32]) {
        for (o, x) in out.iter_mut().zip(xs) {
            *o = self.w[0] * x[0] + self.w[1] * x[1] + self.b;
        }
    }

    /// One SGD step from the loss's gradient with respect to the logits.
    fn step(&mut self, xs: &[[f32; 2]], grad: &[f32], lr: f32) {
        let (mut gw, mut gb) = ([0.0f32; 2], 0.0f32);
        for (x, &g) in xs.iter().zip(grad) {
            gw[0] += g * x[0];
            gw[1] += g * x[1];
            gb += g;
        }
        self.w[0] -= lr * gw[0];
        self.w[1] -= lr * gw[1];
        self.b -= lr * gb;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = SplitMix64::new(7);
    let (train_x, train_y) = data(&mut rng, 2000);
    let (test_x, test_y) = data(&mut rng, 2000);
    let positives = train_y.iter().filter(|&&y| y > 0.5).count();
    println!("train: 2000 points, {positives} positives; held out: 2000 points");

    // Both start from the same weights, which rank the held-out set backwards.
    let start = Linear {
        w: [-0.5, -0.5],
        b: -3.0,
    };
    let mut scores = vec![0.0f32; test_x.len()];
    start.logits(&test_x, &mut scores);
    let before = average_precision(&scores, &test_y);
    println!("held-out AP at the start: {before:.4}");

    let mut logits = vec![0.0f32; train_x.len()];
    let mut grad = vec![0.0f32; train_x.len()];

    // Focal loss (RetinaNet's alpha 0.25, gamma 2), normalised by the positive count as
    // RetinaNet does (mmdetection's avg_factor).
    let focal = SigmoidFocal::new(0.25f32, 2.0)?
        .with_reduction(Reduction::Mean)
        .with_avg_factor(positives as f32)?;
    let mut model = start;
    for step in 0..200 {
        model.logits(&train_x, &mut logits);
        let loss = focal.value_and_grad(&logits, &train_y, &mut grad)?;
        model.step(&train_x, &grad, 0.05);
        if step % 50 == 0 {
            println!("focal step {step:3}: loss {loss:.5}");
        }
    }
    model.logits(&test_x, &mut scores);
    let focal_ap = average_precision(&scores, &test_y);
    println!("focal: held-out AP {focal_ap:.4}");

    // GHM-C (the paper's 30 bins, momentum 0.75): its moving average lives in the loss, so
    // it is `mut`; each call is one batch and advances it once.
    let mut ghm = GhmC::<f32, 30>::new(30, 0.75, 1.0)?;
    let mut model = start;
    for step in 0..200 {
        model.logits(&train_x, &mut logits);
        let loss = ghm.value_and_grad(&logits, &train_y, None, &mut grad)?;
        model.step(&train_x, &grad, 0.5);
        if step % 50 == 0 {
            println!("GHM-C step {step:3}: loss {loss:.5}");
        }
    }
    model.logits(&test_x, &mut scores);
    let ghm_ap = average_precision(&scores, &test_y);
    println!("GHM-C: held-out AP {ghm_ap:.4}");

    // Bad input is an `Err`, never a panic: a target outside [0, 1].
    let refused = focal.value(&[0.0], &[2.0]);
    println!("a target of 2 is refused: {refused:?}");
    assert!(matches!(refused, Err(Error::InvalidTarget { .. })));

    if focal_ap > before && ghm_ap > before {
        Ok(())
    } else {
        Err("the held-out AP did not improve".into())
    }
}
