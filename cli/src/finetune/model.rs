//! The detector head: one small MLP shared by every cell, 64 -> 32 ReLU -> 10 logits, trained
//! by plain SGD (what fits a microcontroller), generic over the numeric path.

use super::data::PIXELS;
use super::scene::CLASSES;
use hardmine::{Real, SplitMix64};

/// Hidden units.
pub const HIDDEN: usize = 32;

/// Weights of the head (or their gradients: same shapes).
#[derive(Debug, Clone)]
pub struct Head<T> {
    /// `[HIDDEN x PIXELS]`.
    pub w1: Vec<T>,
    /// `[HIDDEN]`.
    pub b1: Vec<T>,
    /// `[CLASSES x HIDDEN]`.
    pub w2: Vec<T>,
    /// `[CLASSES]`.
    pub b2: Vec<T>,
}

/// A dot product with four partial sums (vectorisable for floats).
#[inline]
fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let mut s = [T::ZERO; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            s[k] = s[k] + x[k] * y[k];
        }
    }
    (s[0] + s[1]) + (s[2] + s[3])
}

/// `y += a * x`.
#[inline]
fn axpy<T: Real>(a: T, x: &[T], y: &mut [T]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = *y + a * x;
    }
}

impl<T: Real> Head<T> {
    /// All zeros (a gradient buffer).
    pub fn zeros() -> Self {
        Self {
            w1: vec![T::ZERO; HIDDEN * PIXELS],
            b1: vec![T::ZERO; HIDDEN],
            w2: vec![T::ZERO; CLASSES * HIDDEN],
            b2: vec![T::ZERO; CLASSES],
        }
    }

    /// He-uniform first layer, Glorot-uniform second, and output biases at the prior
    /// `-ln((1 - 0.01) / 0.01)` (RetinaNet's initialisation, so no method starts by drowning
    /// in background loss).
    pub fn init(seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let mut uniform = |n: usize, a: f64| -> Vec<T> {
            (0..n)
                .map(|_| T::from_f64((2.0 * rng.unit_f64() - 1.0) * a))
                .collect()
        };
        let w1 = uniform(HIDDEN * PIXELS, (6.0 / PIXELS as f64).sqrt());
        let w2 = uniform(CLASSES * HIDDEN, (6.0 / (HIDDEN + CLASSES) as f64).sqrt());
        let prior = T::from_f64(-(0.99f64 / 0.01).ln());
        Self {
            w1,
            b1: vec![T::ZERO; HIDDEN],
            w2,
            b2: vec![prior; CLASSES],
        }
    }

    /// Hidden activations and logits of one cell (`blank`: the input is all zeros).
    pub fn forward(&self, x: &[T], blank: bool, hidden: &mut [T], logits: &mut [T]) {
        for (j, h) in hidden.iter_mut().enumerate() {
            let z = if blank {
                self.b1[j]
            } else {
                self.b1[j] + dot(&self.w1[j * PIXELS..(j + 1) * PIXELS], x)
            };
            *h = z.max(T::ZERO);
        }
        for (c, l) in logits.iter_mut().enumerate() {
            *l = self.b2[c] + dot(&self.w2[c * HIDDEN..(c + 1) * HIDDEN], hidden);
        }
    }

    /// Adds one cell's parameter gradients for logit gradient `g` to `grads`.
    pub fn backward(&self, x: &[T], blank: bool, hidden: &[T], g: &[T], grads: &mut Head<T>) {
        let mut dh = [T::ZERO; HIDDEN];
        for (c, &gc) in g.iter().enumerate() {
            if gc == T::ZERO {
                continue;
            }
            grads.b2[c] = grads.b2[c] + gc;
            axpy(gc, hidden, &mut grads.w2[c * HIDDEN..(c + 1) * HIDDEN]);
            axpy(gc, &self.w2[c * HIDDEN..(c + 1) * HIDDEN], &mut dh);
        }
        for (j, &d) in dh.iter().enumerate() {
            if d == T::ZERO || hidden[j] <= T::ZERO {
                continue;
            }
            grads.b1[j] = grads.b1[j] + d;
            if !blank {
                axpy(d, x, &mut grads.w1[j * PIXELS..(j + 1) * PIXELS]);
            }
        }
    }

    /// `self -= lr * grads`, then zeroes `grads`.
    pub fn step(&mut self, grads: &mut Head<T>, lr: T) {
        for (w, g) in [
            (&mut self.w1, &mut grads.w1),
            (&mut self.b1, &mut grads.b1),
            (&mut self.w2, &mut grads.w2),
            (&mut self.b2, &mut grads.b2),
        ] {
            for (w, g) in w.iter_mut().zip(g.iter_mut()) {
                *w = *w - lr * *g;
                *g = T::ZERO;
            }
        }
    }
}
