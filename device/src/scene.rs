//! The device's digits and scenes.
//!
//! # Packed digits (`data/device_digits.bin`)
//! The vendored digits (`data/digits.csv.gz`, in file order) with their 17 grey levels
//! (0..=16) in 5 bits a pixel:
//!
//! ```text
//! bytes 0..8    magic "HMDIG5\0\1"
//! bytes 8..10   u16 LE: digit count n
//! then n times  1 byte label (0..=9), 40 bytes: pixel p (row-major 8 x 8) in bits
//!               5p..5p+5 of the little-endian bit stream (bit b is bit b % 8 of byte b / 8)
//! ```
//! [`pack`] writes it and [`Digits::new`] checks it; `hardmine pretrain --config device`
//! regenerates the committed file, and a CLI test checks that it is the CSV packed.
//!
//! Splits, as the CLI's: digit `i` is a test digit when `i % 5 == 0`, validation when
//! `i % 5 == 1`, train otherwise.
//!
//! # Scenes
//! The CLI's generator (`cli/src/finetune/scene.rs`) on a [`CANVAS`] x [`CANVAS`] canvas with
//! 1 to [`MAX_DIGITS`] digits: the same area resampling of the 8 x 8 digits to 8, 12 or 16
//! px, ink boxes, at most IoU 0.2 between digits; the target domain adds up to 3 distractors
//! (a band of three stroke rows or columns, or a quadrant, of a real digit, touching no box)
//! and sensor noise (10% of the pixels brighten by 1 to 4). All in integers (boxes in half
//! pixels), so every target makes the same scenes from the same seed.

use hardmine::{Error, SplitMix64};

/// Canvas side in pixels.
pub const CANVAS: usize = 40;
/// Pixels of a canvas.
pub const CANVAS_PIXELS: usize = CANVAS * CANVAS;
/// The most digits in a scene.
pub const MAX_DIGITS: usize = 3;
/// Side of a digit image.
pub const SIDE: usize = 8;
/// Pixels of a digit image.
pub const PIXELS: usize = SIDE * SIDE;
/// Bytes of one packed digit: its label and 64 pixels of 5 bits.
pub const PACKED: usize = 1 + PIXELS * 5 / 8;
/// The packed file's first bytes.
pub const MAGIC: &[u8; 8] = b"HMDIG5\0\x01";
/// The largest digit side drawn.
const MAX_SIZE: usize = 16;

/// Packs `images` (pixels 0..=16) and `labels` (0..=9) into `out`
/// (`10 + PACKED * images.len()` bytes).
///
/// # Errors
/// `LengthMismatch` for `labels` or `out`; `InvalidParameter("pixel")` or `("label")` for a
/// value out of range, `("count")` for more than 65,535 digits. `out` is untouched on `Err`.
pub fn pack(images: &[[u8; PIXELS]], labels: &[u8], out: &mut [u8]) -> Result<(), Error> {
    let n = images.len();
    let count = u16::try_from(n).map_err(|_| Error::InvalidParameter("count"))?;
    if labels.len() != n {
        return Err(Error::LengthMismatch {
            expected: n,
            got: labels.len(),
        });
    }
    let len = 10 + PACKED * n;
    if out.len() != len {
        return Err(Error::LengthMismatch {
            expected: len,
            got: out.len(),
        });
    }
    if images.iter().flatten().any(|&p| p > 16) {
        return Err(Error::InvalidParameter("pixel"));
    }
    if labels.iter().any(|&l| l > 9) {
        return Err(Error::InvalidParameter("label"));
    }
    out.fill(0);
    let (head, body) = out.split_at_mut(10);
    head.get_mut(..8).unwrap_or(&mut []).copy_from_slice(MAGIC);
    head.get_mut(8..10)
        .unwrap_or(&mut [])
        .copy_from_slice(&count.to_le_bytes());
    for ((img, &label), slot) in images.iter().zip(labels).zip(body.chunks_exact_mut(PACKED)) {
        let Some((l, bits)) = slot.split_first_mut() else {
            continue;
        };
        *l = label;
        for (p, &v) in img.iter().enumerate() {
            for b in 0..5 {
                if v >> b & 1 == 1 {
                    let bit = 5 * p + b;
                    if let Some(byte) = bits.get_mut(bit / 8) {
                        *byte |= 1 << (bit % 8);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Which digits a scene draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Index 2, 3 or 4 modulo 5.
    Train,
    /// Index 1 modulo 5.
    Val,
    /// Index 0 modulo 5.
    Test,
}

/// The packed digits, checked.
#[derive(Debug, Clone, Copy)]
pub struct Digits<'a> {
    body: &'a [u8],
    count: usize,
}

impl<'a> Digits<'a> {
    /// The digits of a packed file (see the module documentation).
    ///
    /// # Errors
    /// `InvalidParameter("digits")` for a bad magic, a length that is not the count's, a
    /// pixel above 16, a label above 9 or fewer than 5 digits.
    pub fn new(bytes: &'a [u8]) -> Result<Self, Error> {
        let bad = Error::InvalidParameter("digits");
        let (Some(magic), Some(count)) = (bytes.get(..8), bytes.get(8..10)) else {
            return Err(bad);
        };
        let count = usize::from(u16::from_le_bytes([
            count.first().copied().unwrap_or(0),
            count.get(1).copied().unwrap_or(0),
        ]));
        let body = bytes.get(10..).unwrap_or(&[]);
        if magic != MAGIC || body.len() != count * PACKED || count < 5 {
            return Err(bad);
        }
        let digits = Self { body, count };
        for i in 0..count {
            if digits.label(i) > 9 || digits.image(i).iter().any(|&p| p > 16) {
                return Err(bad);
            }
        }
        Ok(digits)
    }

    /// How many digits.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none (never, once checked).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Digit `i`'s label (0 past the end).
    pub fn label(&self, i: usize) -> u8 {
        self.body.get(i * PACKED).copied().unwrap_or(0)
    }

    /// Digit `i`'s pixels (zeros past the end).
    pub fn image(&self, i: usize) -> [u8; PIXELS] {
        let bits = self
            .body
            .get(i * PACKED + 1..(i + 1) * PACKED)
            .unwrap_or(&[]);
        let mut out = [0u8; PIXELS];
        for (p, v) in out.iter_mut().enumerate() {
            for b in 0..5 {
                let bit = 5 * p + b;
                let set = bits
                    .get(bit / 8)
                    .is_some_and(|byte| byte >> (bit % 8) & 1 == 1);
                *v |= u8::from(set) << b;
            }
        }
        out
    }

    /// Digits in `split`.
    pub fn count(&self, split: Split) -> usize {
        let n = self.count;
        let (test, val) = (n.div_ceil(5), (n + 3) / 5);
        match split {
            Split::Test => test,
            Split::Val => val,
            Split::Train => n - test - val,
        }
    }

    /// The index of the `k`-th digit of `split`.
    pub fn index(&self, split: Split, k: usize) -> usize {
        match split {
            Split::Test => 5 * k,
            Split::Val => 5 * k + 1,
            Split::Train => 5 * (k / 3) + 2 + k % 3,
        }
    }

    /// A uniformly drawn digit of `split`.
    fn draw(&self, split: Split, rng: &mut SplitMix64) -> usize {
        self.index(split, rng.below(self.count(split) as u64) as usize)
    }
}

/// What a scene's background and digits look like (the CLI's domains).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// Clean background, digit sizes 8 and 12 (pretraining).
    Source,
    /// Sensor noise and distractors, digit sizes 8, 12 and 16 (fine-tuning and testing).
    Target,
}

impl Domain {
    fn sizes(self) -> &'static [usize] {
        match self {
            Domain::Source => &[8, 12],
            Domain::Target => &[8, 12, 16],
        }
    }
}

/// One scene: pixels 0..=16 and its ground truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scene {
    /// Row-major pixels.
    pub pixels: [u8; CANVAS_PIXELS],
    /// Ink boxes `[x1, y1, x2, y2]` in half pixels (divide by 2 for pixels).
    pub boxes: [[u16; 4]; MAX_DIGITS],
    /// The digit of each box.
    pub classes: [u8; MAX_DIGITS],
    /// How many boxes.
    pub len: usize,
}

impl Default for Scene {
    fn default() -> Self {
        Self {
            pixels: [0; CANVAS_PIXELS],
            boxes: [[0; 4]; MAX_DIGITS],
            classes: [0; MAX_DIGITS],
            len: 0,
        }
    }
}

/// Intersection and union areas of two half-pixel boxes (quarter pixels).
fn overlap(a: &[u16; 4], b: &[u16; 4]) -> (u32, u32) {
    let w = a[2].min(b[2]).saturating_sub(a[0].max(b[0]));
    let h = a[3].min(b[3]).saturating_sub(a[1].max(b[1]));
    let inter = u32::from(w) * u32::from(h);
    let area = |r: &[u16; 4]| u32::from(r[2] - r[0]) * u32::from(r[3] - r[1]);
    (inter, area(a) + area(b) - inter)
}

/// The `size x size` area resampling of an 8 x 8 image (the CLI's, exact in integers).
fn resample(image: &[u8; PIXELS], size: usize, out: &mut [u8; MAX_SIZE * MAX_SIZE]) {
    let overlap = |i: usize, j: usize| -> u32 {
        let (a, b) = (i * SIDE, (i + 1) * SIDE);
        let (c, d) = (j * size, (j + 1) * size);
        b.min(d).saturating_sub(a.max(c)) as u32
    };
    let area = (SIDE * SIDE) as u32;
    for r in 0..size {
        for c in 0..size {
            let mut sum = 0u32;
            for sr in 0..SIDE {
                let wr = overlap(r, sr);
                if wr == 0 {
                    continue;
                }
                for sc in 0..SIDE {
                    let v = image.get(sr * SIDE + sc).copied().unwrap_or(0);
                    sum += wr * overlap(c, sc) * u32::from(v);
                }
            }
            if let Some(o) = out.get_mut(r * size + c) {
                *o = ((sum + area / 2) / area) as u8;
            }
        }
    }
}

/// The ink box (half pixels) of an image drawn at `(x, y)` with side `size`; `None` when empty.
fn ink_box(image: &[u8; PIXELS], x: usize, y: usize, size: usize) -> Option<[u16; 4]> {
    let ink = |r: usize, c: usize| image.get(r * SIDE + c).is_some_and(|&v| v > 0);
    let rows = || (0..SIDE).filter(|&r| (0..SIDE).any(|c| ink(r, c)));
    let cols = || (0..SIDE).filter(|&c| (0..SIDE).any(|r| ink(r, c)));
    let (r0, r1) = (rows().next()?, rows().next_back()?);
    let (c0, c1) = (cols().next()?, cols().next_back()?);
    // Source pixel j spans size / 8 canvas pixels: 2 * size / 8 half pixels.
    let k = size / 4;
    let h = |v: usize| u16::try_from(v).unwrap_or(u16::MAX);
    Some([
        h(2 * x + c0 * k),
        h(2 * y + r0 * k),
        h(2 * x + (c1 + 1) * k),
        h(2 * y + (r1 + 1) * k),
    ])
}

/// Draws the resampled `patch` at `(x, y)`, keeping the brighter value.
fn draw(pixels: &mut [u8; CANVAS_PIXELS], patch: &[u8], x: usize, y: usize, size: usize) {
    for r in 0..size {
        for c in 0..size {
            let v = patch.get(r * size + c).copied().unwrap_or(0);
            if let Some(p) = pixels.get_mut((y + r) * CANVAS + x + c) {
                *p = (*p).max(v);
            }
        }
    }
}

impl Scene {
    /// Overwrites `self` with a scene of `domain` drawing on the `split` digits.
    pub fn generate(
        &mut self,
        digits: &Digits<'_>,
        split: Split,
        domain: Domain,
        rng: &mut SplitMix64,
    ) {
        self.pixels.fill(0);
        self.len = 0;
        let mut patch = [0u8; MAX_SIZE * MAX_SIZE];
        let wanted = 1 + rng.below(MAX_DIGITS as u64) as usize;
        let sizes = domain.sizes();
        let mut attempts = 0;
        while self.len < wanted && attempts < 50 {
            attempts += 1;
            let d = digits.draw(split, rng);
            let size = sizes
                .get(rng.below(sizes.len() as u64) as usize)
                .copied()
                .unwrap_or(8);
            let x = rng.below((CANVAS - size + 1) as u64) as usize;
            let y = rng.below((CANVAS - size + 1) as u64) as usize;
            let image = digits.image(d);
            let Some(b) = ink_box(&image, x, y, size) else {
                continue;
            };
            let placed = self.boxes.get(..self.len).unwrap_or(&[]);
            // IoU > 0.2: 5 * intersection > union.
            if placed.iter().any(|o| {
                let (i, u) = overlap(o, &b);
                5 * i > u
            }) {
                continue;
            }
            resample(&image, size, &mut patch);
            draw(&mut self.pixels, &patch, x, y, size);
            if let (Some(slot), Some(class)) =
                (self.boxes.get_mut(self.len), self.classes.get_mut(self.len))
            {
                *slot = b;
                *class = digits.label(d);
                self.len += 1;
            }
        }
        if domain == Domain::Target {
            for _ in 0..rng.below(4) {
                self.distractor(digits, split, rng, &mut patch);
            }
            for v in self.pixels.iter_mut() {
                if rng.below(100) < 10 {
                    *v = (*v + 1 + rng.below(4) as u8).min(16);
                }
            }
        }
    }

    /// A fragment of a real digit at a size and place touching no ground-truth box.
    fn distractor(
        &mut self,
        digits: &Digits<'_>,
        split: Split,
        rng: &mut SplitMix64,
        patch: &mut [u8; MAX_SIZE * MAX_SIZE],
    ) {
        let img = digits.image(digits.draw(split, rng));
        let mut frag = [0u8; PIXELS];
        let band = rng.below(6) as usize;
        let quadrant = (rng.below(2) as usize, rng.below(2) as usize);
        let kind = rng.below(2);
        for (i, (f, &v)) in frag.iter_mut().zip(&img).enumerate() {
            let (r, c) = (i / SIDE, i % SIDE);
            let keep = match kind {
                0 if band < 3 => r / 3 == band,
                0 => c / 3 == band - 3,
                _ => r / 4 == quadrant.0 && c / 4 == quadrant.1,
            };
            if keep {
                *f = v;
            }
        }
        let sizes = Domain::Target.sizes();
        let size = sizes
            .get(rng.below(sizes.len() as u64) as usize)
            .copied()
            .unwrap_or(8);
        for _ in 0..10 {
            let x = rng.below((CANVAS - size + 1) as u64) as usize;
            let y = rng.below((CANVAS - size + 1) as u64) as usize;
            let h = |v: usize| u16::try_from(2 * v).unwrap_or(u16::MAX);
            let area = [h(x), h(y), h(x + size), h(y + size)];
            let placed = self.boxes.get(..self.len).unwrap_or(&[]);
            if placed.iter().all(|b| overlap(b, &area).0 == 0) {
                resample(&frag, size, patch);
                draw(&mut self.pixels, patch, x, y, size);
                return;
            }
        }
    }

    /// The ground-truth boxes, in half pixels.
    pub fn boxes(&self) -> &[[u16; 4]] {
        self.boxes.get(..self.len).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn fake_digits() -> [u8; 10 + PACKED * 20] {
        let images: [[u8; PIXELS]; 20] =
            core::array::from_fn(|d| core::array::from_fn(|p| ((p * 7 + d) % 17) as u8));
        let labels: [u8; 20] = core::array::from_fn(|d| (d % 10) as u8);
        let mut out = [0u8; 10 + PACKED * 20];
        pack(&images, &labels, &mut out).unwrap();
        out
    }

    #[test]
    fn packing_round_trips_and_checks() {
        let bytes = fake_digits();
        let d = Digits::new(&bytes).unwrap();
        assert_eq!(d.len(), 20);
        for i in 0..20 {
            let want: [u8; PIXELS] = core::array::from_fn(|p| ((p * 7 + i) % 17) as u8);
            assert_eq!(d.image(i), want);
            assert_eq!(d.label(i), (i % 10) as u8);
        }
        let mut bad = bytes;
        bad[0] = b'X';
        assert!(Digits::new(&bad).is_err());
        assert!(Digits::new(&bytes[..bytes.len() - 1]).is_err());
        let mut out = [0u8; 10 + PACKED];
        assert!(pack(&[[17; PIXELS]], &[0], &mut out).is_err());
        assert!(pack(&[[0; PIXELS]], &[10], &mut out).is_err());
    }

    #[test]
    fn splits_are_the_cli_splits() {
        let bytes = fake_digits();
        let d = Digits::new(&bytes).unwrap();
        for (split, rem) in [
            (Split::Test, &[0][..]),
            (Split::Val, &[1]),
            (Split::Train, &[2, 3, 4]),
        ] {
            let want: Vec<usize> = (0..20).filter(|i| rem.contains(&(i % 5))).collect();
            let got: Vec<usize> = (0..d.count(split)).map(|k| d.index(split, k)).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn resampling_and_ink_boxes() {
        let img: [u8; PIXELS] = core::array::from_fn(|i| (i % 17) as u8);
        let mut out = [0u8; MAX_SIZE * MAX_SIZE];
        resample(&img, 16, &mut out);
        for r in 0..16 {
            for c in 0..16 {
                assert_eq!(out[r * 16 + c], img[(r / 2) * 8 + c / 2]);
            }
        }
        let mut one = [0u8; PIXELS];
        one[2 * 8 + 3] = 5;
        one[6 * 8 + 5] = 1;
        // Pixels: x 13..16, y 22..27 at size 8; at 12, columns 3..6 map to 4.5..9 px.
        assert_eq!(ink_box(&one, 10, 20, 8), Some([26, 44, 32, 54]));
        assert_eq!(ink_box(&one, 0, 0, 12), Some([9, 6, 18, 21]));
        assert_eq!(ink_box(&[0; PIXELS], 0, 0, 8), None);
    }

    #[test]
    fn scenes_are_in_bounds_with_little_overlap() {
        let bytes = fake_digits();
        let d = Digits::new(&bytes).unwrap();
        let mut rng = SplitMix64::new(3);
        let mut s = Scene::default();
        for domain in [Domain::Source, Domain::Target] {
            for _ in 0..200 {
                s.generate(&d, Split::Train, domain, &mut rng);
                assert!((1..=MAX_DIGITS).contains(&s.len));
                for (i, b) in s.boxes().iter().enumerate() {
                    assert!(b[2] as usize <= 2 * CANVAS && b[3] as usize <= 2 * CANVAS);
                    assert!(b[2] > b[0] && b[3] > b[1]);
                    for o in &s.boxes()[..i] {
                        let (inter, union) = overlap(o, b);
                        assert!(inter as f64 / union as f64 <= 0.2);
                    }
                }
                assert!(s.pixels.iter().all(|&p| p <= 16));
            }
        }
    }
}
