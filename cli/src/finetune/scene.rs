//! Dense, imbalanced detection scenes: a 32 x 32 grid of 8 x 8 cells (1,024 anchors), one
//! real digit among them, the rest background: blank cells, sensor noise, and hard
//! distractors made of real digits (a partial stroke band, a digit shifted half out of its
//! cell, a quadrant fragment).

use super::data::{Digits, PIXELS};
use hardmine::SplitMix64;

/// Cells per side.
pub const GRID: usize = 32;
/// Cells (anchors) per scene.
pub const CELLS: usize = GRID * GRID;
/// Classes (digits).
pub const CLASSES: usize = 10;

/// One scene: `CELLS` cells of `PIXELS` sensor values 0..=16 and a label per cell
/// (-1: background).
#[derive(Debug, Clone)]
pub struct Scene {
    /// Row-major `[CELLS * PIXELS]`, each 0..=16 (the digits' own scale).
    pub pixels: Vec<u8>,
    /// The digit in each cell, or -1.
    pub labels: Vec<i32>,
}

/// What fills a background cell.
fn background(digits: &Digits, rng: &mut SplitMix64, cell: &mut [u8]) {
    let roll = rng.below(100);
    if roll < 55 {
        return; // blank
    }
    if roll >= 85 {
        let img = &digits.images[rng.below(digits.len() as u64) as usize];
        let kind = rng.below(3);
        let band = rng.below(6) as usize;
        let (dr, dc) = match rng.below(4) {
            0 => (4i64 + rng.below(2) as i64, 0),
            1 => (-(4 + rng.below(2) as i64), 0),
            2 => (0, 4 + rng.below(2) as i64),
            _ => (0, -(4 + rng.below(2) as i64)),
        };
        let quadrant = (rng.below(2) as usize * 4, rng.below(2) as usize * 4);
        for r in 0..8 {
            for c in 0..8 {
                let v = match kind {
                    // A stroke band: three rows (or columns) of a digit.
                    0 if band < 3 => (r / 3 == band).then(|| img[r * 8 + c]),
                    0 => (c / 3 == band - 3).then(|| img[r * 8 + c]),
                    // A digit shifted half out of the cell.
                    1 => {
                        let (sr, sc) = (r as i64 - dr, c as i64 - dc);
                        ((0..8).contains(&sr) && (0..8).contains(&sc))
                            .then(|| img[sr as usize * 8 + sc as usize])
                    }
                    // One quadrant of a digit, where it was.
                    _ => {
                        (r / 4 == quadrant.0 / 4 && c / 4 == quadrant.1 / 4).then(|| img[r * 8 + c])
                    }
                };
                cell[r * 8 + c] = v.unwrap_or(0);
            }
        }
    }
    // Sensor noise (on its own, or over a distractor).
    for v in cell.iter_mut() {
        if rng.below(100) < 15 {
            *v = (*v + 1 + rng.below(4) as u8).min(16);
        }
    }
}

impl Scene {
    /// A scene with one digit drawn from `digits` at a random cell.
    pub fn generate(digits: &Digits, rng: &mut SplitMix64) -> Self {
        let mut pixels = vec![0u8; CELLS * PIXELS];
        let mut labels = vec![-1; CELLS];
        let target = rng.below(CELLS as u64) as usize;
        for (k, cell) in pixels.chunks_exact_mut(PIXELS).enumerate() {
            if k == target {
                let d = rng.below(digits.len() as u64) as usize;
                cell.copy_from_slice(&digits.images[d]);
                labels[k] = i32::from(digits.labels[d]);
            } else {
                background(digits, rng, cell);
            }
        }
        Self { pixels, labels }
    }

    /// Whether cell `k` is all zeros (its first layer is just the bias).
    pub fn blank(&self, k: usize) -> bool {
        self.pixels[k * PIXELS..(k + 1) * PIXELS]
            .iter()
            .all(|&v| v == 0)
    }
}
