//! Seeded random inputs. The seed can be overridden with `HARDMINE_SEED` to explore.

use hardmine::SplitMix64;

/// The generator for a test, seeded from `HARDMINE_SEED` (default `salt`-mixed 2026).
pub fn rng(salt: u64) -> SplitMix64 {
    let seed = std::env::var("HARDMINE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2026u64);
    SplitMix64::new(seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// `rounds` random rounds: each round's number and its generator, `rng(salt + round)`.
pub fn rounds(salt: u64, rounds: u64) -> impl Iterator<Item = (u64, SplitMix64)> {
    (0..rounds).map(move |round| (round, rng(salt + round)))
}

/// `n` uniform values in `[lo, hi)`.
pub fn uniform(r: &mut SplitMix64, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| lo + (hi - lo) * r.unit_f64()).collect()
}

/// `n` targets: hard 0/1 with probability `hard`, soft otherwise.
pub fn targets(r: &mut SplitMix64, n: usize, hard: f64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            if r.unit_f64() < hard {
                (r.below(2)) as f64
            } else {
                r.unit_f64()
            }
        })
        .collect()
}

/// `n` labels in `lo..hi` (may include negative and out-of-range values).
pub fn labels(r: &mut SplitMix64, n: usize, lo: i64, hi: i64) -> Vec<i64> {
    (0..n)
        .map(|_| lo + r.below((hi - lo) as u64) as i64)
        .collect()
}

/// The values rounded to f32 (so f32 and f64 paths see identical inputs).
pub fn to_f32(xs: &[f64]) -> Vec<f32> {
    xs.iter().map(|&x| x as f32).collect()
}

/// The f32 values widened back.
pub fn to_f64(xs: &[f32]) -> Vec<f64> {
    xs.iter().map(|&x| f64::from(x)).collect()
}
