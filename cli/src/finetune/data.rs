//! The vendored handwritten digits (UCI optical digits, CC BY 4.0; see `data/README.md`).

use anyhow::Context as _;
use flate2::read::GzDecoder;
use std::io::Read;

/// The gzipped CSV, embedded so the command works from any directory.
const DIGITS_GZ: &[u8] = include_bytes!("../../../data/digits.csv.gz");

/// Side of a digit image.
pub const SIDE: usize = 8;
/// Pixels of one 8x8 digit.
pub const PIXELS: usize = SIDE * SIDE;

/// Digit images (pixels 0..16, row-major) with their labels.
#[derive(Debug, Clone, Default)]
pub struct Digits {
    /// One 8x8 image each.
    pub images: Vec<[u8; PIXELS]>,
    /// The digit of each image.
    pub labels: Vec<u8>,
}

/// The disjoint train, validation and test digits.
#[derive(Debug, Clone, Default)]
pub struct Splits {
    /// Training scenes draw on these.
    pub train: Digits,
    /// Validation scenes (`hardmine tune`, CI's check) draw on these.
    pub val: Digits,
    /// Test scenes draw on these.
    pub test: Digits,
}

impl Digits {
    /// Every vendored digit.
    pub fn load() -> anyhow::Result<Self> {
        let mut text = String::new();
        GzDecoder::new(DIGITS_GZ)
            .read_to_string(&mut text)
            .context("digits")?;
        let mut all = Digits::default();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let values: Vec<u8> = line
                .split(',')
                .map(|v| {
                    v.trim()
                        .parse::<u8>()
                        .with_context(|| format!("digits line {}", n + 1))
                })
                .collect::<Result<_, _>>()?;
            let Some((pixels, label)) = values.split_at_checked(PIXELS) else {
                anyhow::bail!("digits line {}: short", n + 1);
            };
            let image: [u8; PIXELS] = pixels
                .try_into()
                .map_err(|_| anyhow::anyhow!("digits line {}: short", n + 1))?;
            match label {
                [d] if *d < 10 => {
                    all.images.push(image);
                    all.labels.push(*d);
                }
                _ => anyhow::bail!("digits line {}: bad label", n + 1),
            }
        }
        Ok(all)
    }

    /// Three disjoint sets of digit images: test (index divisible by 5), validation (index 1
    /// modulo 5) and train (the other three fifths).
    pub fn split(&self) -> Splits {
        let mut parts: [Digits; 3] = Default::default();
        for (i, (img, &l)) in self.images.iter().zip(&self.labels).enumerate() {
            let part = &mut parts[(i % 5).min(2)];
            part.images.push(*img);
            part.labels.push(l);
        }
        let [test, val, train] = parts;
        Splits { train, val, test }
    }

    /// How many digits.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
}
