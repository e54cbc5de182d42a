//! Occlusion search: which window, zeroed in every channel, hurts the classifier most. How
//! A-Fast-RCNN (Wang, Shrivastava, Gupta, CVPR 2017) makes the ASDN's training targets, and a
//! search-based adversary on its own.
//!
//! ```text
//! starts(n) = 0, stride, 2 stride, ...  while start + window <= n,
//!             plus n - window when the last window does not reach the edge
//! for each window (row-major over row starts x column starts):
//!     score = scorer(features with the window zeroed in every channel)
//! best = the window of lowest score (the true-class probability drops most); ties: first
//! ```
//! The released code's setting is 2x2 windows at stride 2 on a 7x7 map: starts 0, 2, 4, 5,
//! 16 windows. Scratch: one copy of the map (`C * H * W`); each window is zeroed and restored
//! in place, so a search costs one copy plus `windows * C * window^2` writes besides the scorer.
//!
//! # Errors
//! `new`: `InvalidParameter("window")` for 0 or larger than the map, `"stride"` for 0, and
//! `MapShape`'s. `search`: `LengthMismatch` (features, scratch, scores), `NonFinite` (a feature,
//! index into features; or a score, index of the window).

use super::shape::MapShape;
use crate::{check, Error, Real};

/// Window search over a `[C x H x W]` map.
///
/// # Examples
/// ```
/// use hardmine::OcclusionSearch;
/// let search = OcclusionSearch::new(1, 4, 4, 2, 2)?;
/// let mut features = [1.0f32; 16];
/// features[10] = 9.0; // the classifier relies on this cell (row 2, column 2)
/// let (mut scratch, mut scores) = ([0.0; 16], [0.0; 4]);
/// let best = search.search(&features, &mut scratch, &mut scores, |f| f.iter().sum::<f32>() / 100.0)?;
/// assert_eq!(search.window(best), Some((2, 2)));
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OcclusionSearch {
    shape: MapShape,
    window: usize,
    stride: usize,
}

/// How many window starts fit `n` cells.
fn start_count(n: usize, window: usize, stride: usize) -> usize {
    let regular = (n - window) / stride + 1;
    regular + usize::from((regular - 1) * stride + window < n)
}

/// The `k`-th window start over `n` cells.
fn start(k: usize, n: usize, window: usize, stride: usize) -> usize {
    (k * stride).min(n - window)
}

impl OcclusionSearch {
    /// A search over `channels x height x width` maps with square windows.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn new(
        channels: usize,
        height: usize,
        width: usize,
        window: usize,
        stride: usize,
    ) -> Result<Self, Error> {
        let shape = MapShape::new(channels, height, width)?;
        if window == 0 || window > height || window > width {
            return Err(Error::InvalidParameter("window"));
        }
        check::parameter(stride > 0, "stride")?;
        Ok(Self {
            shape,
            window,
            stride,
        })
    }

    /// The map's shape.
    pub fn shape(&self) -> MapShape {
        self.shape
    }

    /// The number of windows searched.
    pub fn window_count(&self) -> usize {
        let rows = start_count(self.shape.height, self.window, self.stride);
        rows * start_count(self.shape.width, self.window, self.stride)
    }

    /// The `[row, column]` start of window `index`, or `None` past the last.
    pub fn window(&self, index: usize) -> Option<(usize, usize)> {
        let cols = start_count(self.shape.width, self.window, self.stride);
        (index < self.window_count()).then(|| {
            let (r, c) = (index / cols, index % cols);
            (
                start(r, self.shape.height, self.window, self.stride),
                start(c, self.shape.width, self.window, self.stride),
            )
        })
    }

    /// Sets window `index` of every channel of `map` to `value[i]` of `source` (zero when
    /// `source` is `None`).
    fn fill<T: Real>(&self, map: &mut [T], index: usize, source: Option<&[T]>) {
        let Some((r0, c0)) = self.window(index) else {
            return;
        };
        let (h, w) = (self.shape.height, self.shape.width);
        for ch in 0..self.shape.channels {
            for r in r0..r0 + self.window {
                let at = ch * h * w + r * w + c0;
                let span = at..at + self.window;
                if let Some(dst) = map.get_mut(span.clone()) {
                    match source.and_then(|s| s.get(span)) {
                        Some(src) => dst.copy_from_slice(src),
                        None => dst.iter_mut().for_each(|v| *v = T::ZERO),
                    }
                }
            }
        }
    }

    /// Scores every window with `scorer` (called on the map with that window zeroed), writes
    /// the scores to `scores` and returns the index of the lowest.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn search<T: Real, F>(
        &self,
        features: &[T],
        scratch: &mut [T],
        scores: &mut [T],
        mut scorer: F,
    ) -> Result<usize, Error>
    where
        F: FnMut(&[T]) -> T,
    {
        check::length(self.shape.len(), features.len())?;
        check::length(self.shape.len(), scratch.len())?;
        check::length(self.window_count(), scores.len())?;
        check::all_finite(features)?;
        scratch.copy_from_slice(features);
        let mut best: Option<(usize, T)> = None;
        for (index, score) in scores.iter_mut().enumerate() {
            self.fill(scratch, index, None);
            *score = check::finite(scorer(scratch), index)?;
            self.fill(scratch, index, Some(features));
            if best.is_none_or(|(_, b)| *score < b) {
                best = Some((index, *score));
            }
        }
        Ok(best.map_or(0, |(i, _)| i))
    }

    /// The ASDN training target of window `index`: 1 on its cells, 0 elsewhere (`H * W`).
    ///
    /// # Errors
    /// `LengthMismatch` unless `out` has `H * W` cells; `InvalidParameter("index")` past the
    /// last window.
    pub fn target_map<T: Real>(&self, index: usize, out: &mut [T]) -> Result<(), Error> {
        check::length(self.shape.cells(), out.len())?;
        let (r0, c0) = self.window(index).ok_or(Error::InvalidParameter("index"))?;
        let w = self.shape.width;
        for (cell, v) in out.iter_mut().enumerate() {
            let (r, c) = (cell / w, cell % w);
            let inside = (r0..r0 + self.window).contains(&r) && (c0..c0 + self.window).contains(&c);
            *v = if inside { T::ONE } else { T::ZERO };
        }
        Ok(())
    }
}
