//! Shared inputs of the criterion benches: detector-shaped batches from a fixed seed (logits
//! uniform in [-8, 4], one positive per hundred), and the measurement settings.

use criterion::Criterion;
use hardmine::SplitMix64;
use std::time::Duration;

/// Elements per benched call.
pub const N: usize = 1 << 16;

/// Criterion settings: quick in the `short` feature (CI smoke), thorough otherwise.
pub fn criterion() -> Criterion {
    let c = Criterion::default();
    if cfg!(feature = "short") {
        c.warm_up_time(Duration::from_millis(100))
            .measurement_time(Duration::from_millis(300))
            .sample_size(10)
    } else {
        c
    }
}

/// Logits and hard targets.
pub fn batch(n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut r = SplitMix64::new(2026);
    let x = (0..n)
        .map(|_| (-8.0 + 12.0 * r.unit_f64()) as f32)
        .collect();
    let t = (0..n)
        .map(|_| f32::from(u8::from(r.below(100) == 0)))
        .collect();
    (x, t)
}
