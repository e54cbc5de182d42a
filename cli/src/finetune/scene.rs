//! Detection scenes made from the vendored digits: an 80 x 80 canvas with 1 to 4 digits at
//! arbitrary pixel positions and several scales (area-resampled from the 8 x 8 images), which
//! may touch or overlap a little, each with its ink bounding box as ground truth.
//!
//! Two domains:
//! - **source** (pretraining): clean background, digits 8 and 12 pixels tall;
//! - **target** (fine-tuning): sensor noise, hard distractors made of real digits (a band of
//!   three stroke rows or columns, one quadrant of a digit) and a new scale, 16 pixels.
//!
//! The canvas and the anchors (`super::config`) are sized so that about half a percent of the
//! anchors are positive; the job reports the measured rate.

use super::data::{Digits, SIDE};
use hardmine::{iou, SplitMix64};

/// Canvas side in pixels.
pub const CANVAS: usize = 80;
/// Pixels of a canvas.
pub const CANVAS_PIXELS: usize = CANVAS * CANVAS;
/// Classes (digits).
pub const CLASSES: usize = 10;
/// The most digits in a scene.
pub const MAX_DIGITS: usize = 4;
/// The most an accepted digit's ink box may overlap (IoU) one already placed.
const MAX_OVERLAP: f64 = 0.2;

/// What a scene's background and digits look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// Clean background, digit sizes 8 and 12.
    Source,
    /// Sensor noise and distractors, digit sizes 8, 12 and 16.
    Target,
}

impl Domain {
    /// The digit sizes (pixels per side) it draws from.
    pub fn sizes(self) -> &'static [usize] {
        match self {
            Domain::Source => &[8, 12],
            Domain::Target => &[8, 12, 16],
        }
    }

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Domain::Source => "source",
            Domain::Target => "target",
        }
    }
}

/// One scene: pixels 0..=16 (the digits' own scale) and its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Row-major `[CANVAS * CANVAS]`.
    pub pixels: Vec<u8>,
    /// Ink bounding boxes `[x1, y1, x2, y2]`, continuous pixel coordinates (pixel `(r, c)`
    /// covers `[c, c + 1) x [r, r + 1)`).
    pub boxes: Vec<[f64; 4]>,
    /// The digit of each box.
    pub classes: Vec<u8>,
}

/// The `size x size` area resampling of an 8 x 8 image: each output pixel is the mean of the
/// source over its footprint, rounded to the nearest integer (exact, in integers).
fn resample(image: &[u8], size: usize) -> Vec<u8> {
    // In units of 1/(8 * size) of the digit's side: output pixel i spans [8i, 8i + 8) and
    // source pixel j spans [size * j, size * j + size); an output footprint is 64 units².
    let overlap = |i: usize, j: usize| -> u64 {
        let (a, b) = (i * SIDE, (i + 1) * SIDE);
        let (c, d) = (j * size, (j + 1) * size);
        b.min(d).saturating_sub(a.max(c)) as u64
    };
    let mut out = vec![0u8; size * size];
    let area = (SIDE * SIDE) as u64;
    for r in 0..size {
        for c in 0..size {
            let mut sum = 0u64;
            for sr in 0..SIDE {
                let wr = overlap(r, sr);
                if wr == 0 {
                    continue;
                }
                for sc in 0..SIDE {
                    sum += wr * overlap(c, sc) * u64::from(image[sr * SIDE + sc]);
                }
            }
            out[r * size + c] = ((sum + area / 2) / area) as u8;
        }
    }
    out
}

/// The ink bounding box of an 8 x 8 image drawn at `(x, y)` with side `size`: the source
/// pixels above zero, mapped to the canvas. `None` for an empty image.
fn ink_box(image: &[u8], x: usize, y: usize, size: usize) -> Option<[f64; 4]> {
    let ink = |r: usize, c: usize| image[r * SIDE + c] > 0;
    let rows: Vec<usize> = (0..SIDE)
        .filter(|&r| (0..SIDE).any(|c| ink(r, c)))
        .collect();
    let cols: Vec<usize> = (0..SIDE)
        .filter(|&c| (0..SIDE).any(|r| ink(r, c)))
        .collect();
    let (r0, r1) = (*rows.first()?, *rows.last()?);
    let (c0, c1) = (*cols.first()?, *cols.last()?);
    let k = size as f64 / SIDE as f64;
    Some([
        x as f64 + c0 as f64 * k,
        y as f64 + r0 as f64 * k,
        x as f64 + (c1 + 1) as f64 * k,
        y as f64 + (r1 + 1) as f64 * k,
    ])
}

/// Draws `patch` (`size x size`) onto the canvas at `(x, y)`, keeping the brighter value.
fn draw(pixels: &mut [u8], patch: &[u8], x: usize, y: usize, size: usize) {
    for r in 0..size {
        for c in 0..size {
            let p = &mut pixels[(y + r) * CANVAS + x + c];
            *p = (*p).max(patch[r * size + c]);
        }
    }
}

/// A distractor: a fragment of a real digit (three stroke rows or columns, or one quadrant),
/// at a random size and place that does not touch any ground-truth box.
fn distractor(digits: &Digits, rng: &mut SplitMix64, boxes: &[[f64; 4]], pixels: &mut [u8]) {
    let img = &digits.images[rng.below(digits.len() as u64) as usize];
    let mut frag = [0u8; SIDE * SIDE];
    let band = rng.below(6) as usize;
    let quadrant = (rng.below(2) as usize, rng.below(2) as usize);
    let kind = rng.below(2);
    for r in 0..SIDE {
        for c in 0..SIDE {
            let keep = match kind {
                0 if band < 3 => r / 3 == band,
                0 => c / 3 == band - 3,
                _ => r / 4 == quadrant.0 && c / 4 == quadrant.1,
            };
            if keep {
                frag[r * SIDE + c] = img[r * SIDE + c];
            }
        }
    }
    let sizes = Domain::Target.sizes();
    let size = sizes[rng.below(sizes.len() as u64) as usize];
    for _ in 0..10 {
        let x = rng.below((CANVAS - size + 1) as u64) as usize;
        let y = rng.below((CANVAS - size + 1) as u64) as usize;
        let area = [x as f64, y as f64, (x + size) as f64, (y + size) as f64];
        if boxes.iter().all(|b| iou(b, &area) == 0.0) {
            draw(pixels, &resample(&frag, size), x, y, size);
            return;
        }
    }
}

impl Scene {
    /// A scene of `domain` whose digits come from `digits`.
    pub fn generate(digits: &Digits, domain: Domain, rng: &mut SplitMix64) -> Self {
        let mut pixels = vec![0u8; CANVAS_PIXELS];
        let (mut boxes, mut classes) = (Vec::new(), Vec::new());
        let wanted = 1 + rng.below(MAX_DIGITS as u64) as usize;
        let sizes = domain.sizes();
        let mut attempts = 0;
        while boxes.len() < wanted && attempts < 50 {
            attempts += 1;
            let d = rng.below(digits.len() as u64) as usize;
            let size = sizes[rng.below(sizes.len() as u64) as usize];
            let x = rng.below((CANVAS - size + 1) as u64) as usize;
            let y = rng.below((CANVAS - size + 1) as u64) as usize;
            let Some(b) = ink_box(&digits.images[d], x, y, size) else {
                continue;
            };
            if boxes.iter().any(|o| iou(o, &b) > MAX_OVERLAP) {
                continue;
            }
            draw(&mut pixels, &resample(&digits.images[d], size), x, y, size);
            boxes.push(b);
            classes.push(digits.labels[d]);
        }
        if domain == Domain::Target {
            for _ in 0..rng.below(4) {
                distractor(digits, rng, &boxes, &mut pixels);
            }
            // Sensor noise: 10% of the pixels brighten by 1 to 4.
            for v in pixels.iter_mut() {
                if rng.below(100) < 10 {
                    *v = (*v + 1 + rng.below(4) as u8).min(16);
                }
            }
        }
        Self {
            pixels,
            boxes,
            classes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits() -> Digits {
        Digits::load().unwrap().split().train
    }

    #[test]
    fn resampling_keeps_the_mean_and_identity() {
        let img: Vec<u8> = (0..64).map(|i| (i % 17) as u8).collect();
        assert_eq!(resample(&img, 8), img);
        // At 16, each source pixel becomes a 2 x 2 block of itself.
        let big = resample(&img, 16);
        for r in 0..16 {
            for c in 0..16 {
                assert_eq!(big[r * 16 + c], img[(r / 2) * 8 + c / 2]);
            }
        }
        // At 12, output pixel 0 spans [0, 8) of source pixel 0's [0, 12): its value.
        let mid = resample(&img, 12);
        assert_eq!(mid[0], img[0]);
        // Output (0, 1) covers [8, 16): 4 units of source 0 and 4 of source 1.
        assert_eq!(
            u32::from(mid[1]),
            (u32::from(img[0]) + u32::from(img[1])).div_ceil(2)
        );
    }

    #[test]
    fn ink_boxes_are_the_ink() {
        let mut img = [0u8; 64];
        img[2 * 8 + 3] = 5; // row 2, column 3
        img[6 * 8 + 5] = 1; // row 6, column 5
        assert_eq!(ink_box(&img, 10, 20, 8), Some([13.0, 22.0, 16.0, 27.0]));
        assert_eq!(ink_box(&img, 0, 0, 16), Some([6.0, 4.0, 12.0, 14.0]));
        assert_eq!(ink_box(&[0u8; 64], 0, 0, 8), None);
    }

    #[test]
    fn scenes_have_one_to_four_digits_in_bounds_and_little_overlap() {
        let d = digits();
        let mut rng = SplitMix64::new(3);
        for domain in [Domain::Source, Domain::Target] {
            for _ in 0..200 {
                let s = Scene::generate(&d, domain, &mut rng);
                assert!((1..=MAX_DIGITS).contains(&s.boxes.len()));
                assert_eq!(s.boxes.len(), s.classes.len());
                for (i, b) in s.boxes.iter().enumerate() {
                    assert!(b[0] >= 0.0 && b[1] >= 0.0);
                    assert!(b[2] <= CANVAS as f64 && b[3] <= CANVAS as f64);
                    assert!(b[2] > b[0] && b[3] > b[1]);
                    for o in &s.boxes[..i] {
                        assert!(iou(o, b) <= MAX_OVERLAP);
                    }
                }
                if domain == Domain::Source {
                    // Clean: every lit pixel is inside some digit's ink box.
                    for (i, &p) in s.pixels.iter().enumerate() {
                        let (x, y) = ((i % CANVAS) as f64 + 0.5, (i / CANVAS) as f64 + 0.5);
                        let inside = s.boxes.iter().any(|b| {
                            x > b[0] - 1.0 && x < b[2] + 1.0 && y > b[1] - 1.0 && y < b[3] + 1.0
                        });
                        assert!(p == 0 || inside, "lit pixel {i} outside every digit");
                    }
                }
            }
        }
    }
}
