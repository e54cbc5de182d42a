//! The `(dx, dy, dw, dh)` box encoding of R-CNN, as mmdetection's `DeltaXYWHBBoxCoder`.
//!
//! ```text
//! encode (bbox2delta), proposal p and target g:
//!   px = (x1 + x2) * 0.5,  pw = x2 - x1   (likewise py, ph, gx, gy, gw, gh)
//!   d  = [(gx - px) / pw, (gy - py) / ph, ln(gw / pw), ln(gh / ph)]
//!   out = (d - means) / stds
//! decode (delta2bbox), roi p and output o:
//!   d  = o * stds + means
//!   dw, dh clamped to [-max_ratio, max_ratio],  max_ratio = |ln(wh_ratio_clip)|
//!   gx = px + pw * dx,  gw = pw * e^dw          (likewise y, h)
//!   box = [gx - gw * 0.5, gy - gh * 0.5, gx + gw * 0.5, gy + gh * 0.5]
//!   with an image [height, width] and clip_border: x in [0, width], y in [0, height]
//! ```
//! `bbox2delta` and `delta2bbox` of mmdetection's
//! `mmdet/models/task_modules/coders/delta_xywh_bbox_coder.py`, in the same order of
//! operations (no fused multiply-add), so f32 results differ from mmdetection's float32 only
//! by the last bit or two of `ln`/`exp`. `ln` is `k * ln 2 + ln_1p(m - 1)` from the public
//! [`hardmine::Real`] surface.
//!
//! # Defaults
//! [`DeltaXywhCoder::new`]: means `0`, stds `1` (RetinaNet's config), `wh_ratio_clip =
//! 16 / 1000` (so `e^dw <= 62.5`), `clip_border = true` (mmdetection's defaults).
//!
//! # Errors
//! Constructors: `InvalidParameter("means")` unless finite, `"stds"` unless finite and `> 0`,
//! `"wh_ratio_clip"` unless in `(0, 1]`. [`DeltaXywhCoder::encode`]: `LengthMismatch`;
//! `NonFinite`/`InvalidBox` from [`hardmine::check_boxes`] (proposals, then targets), and
//! `InvalidBox` for a box of zero width or height (its `ln` is `-inf`, which mmdetection
//! returns); `NonFinite` for a delta that overflows. [`DeltaXywhCoder::decode`]:
//! `LengthMismatch`, `NonFinite`/`InvalidBox` for the rois, `NonFinite` for a delta (its value
//! index) or the image size, `InvalidParameter("image")` for a negative image size, and
//! `NonFinite` (the box index) for a decoded box that overflows.

use crate::math::{all_finite, box_at, length, ln, parameter};
use hardmine::{check_boxes, Error, Real};

/// mmdetection's `DeltaXYWHBBoxCoder` (without YOLOF's centre clamp).
///
/// # Examples
/// ```
/// use hardmine_detect::DeltaXywhCoder;
/// let coder = DeltaXywhCoder::<f64>::new();
/// let anchor = [0.0, 0.0, 10.0, 20.0];
/// let gt = [1.0, 2.0, 13.0, 18.0];
/// let delta = coder.encode_box(&anchor, &gt);
/// assert_eq!(delta[0], 0.2); // (7 - 5) / 10
/// let back = coder.decode_box(&anchor, &delta, None);
/// assert!(back.iter().zip(&gt).all(|(a, b)| (a - b).abs() < 1e-12));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DeltaXywhCoder<T> {
    means: [T; 4],
    stds: [T; 4],
    max_ratio: T,
    clip_border: bool,
}

impl<T: Real> Default for DeltaXywhCoder<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// mmdetection's default `wh_ratio_clip`, `16 / 1000` (`max_ratio = |ln(16 / 1000)| = 4.135`).
const DEFAULT_WH_RATIO_CLIP: f64 = 16.0 / 1000.0;

impl<T: Real> DeltaXywhCoder<T> {
    /// Means 0, stds 1, `wh_ratio_clip = 16 / 1000`, clipping to the image on.
    pub fn new() -> Self {
        Self {
            means: [T::ZERO; 4],
            stds: [T::ONE; 4],
            max_ratio: T::from_f64(ln(DEFAULT_WH_RATIO_CLIP).abs()),
            clip_border: true,
        }
    }

    /// The same coder with target `means` and `stds` (Faster R-CNN's box head uses
    /// `[0.1, 0.1, 0.2, 0.2]`).
    ///
    /// # Errors
    /// `InvalidParameter("means")` unless finite; `"stds"` unless finite and `> 0`.
    pub fn with_means_stds(self, means: [T; 4], stds: [T; 4]) -> Result<Self, Error> {
        parameter(means.iter().all(|m| m.is_finite()), "means")?;
        parameter(stds.iter().all(|s| s.is_finite() && *s > T::ZERO), "stds")?;
        Ok(Self {
            means,
            stds,
            ..self
        })
    }

    /// The same coder with another `wh_ratio_clip`: decoding clamps `dw` and `dh` to
    /// `|ln(wh_ratio_clip)|`.
    ///
    /// # Errors
    /// `InvalidParameter("wh_ratio_clip")` unless in `(0, 1]`.
    pub fn with_wh_ratio_clip(self, wh_ratio_clip: f64) -> Result<Self, Error> {
        parameter(wh_ratio_clip > 0.0 && wh_ratio_clip <= 1.0, "wh_ratio_clip")?;
        Ok(Self {
            max_ratio: T::from_f64(ln(wh_ratio_clip).abs()),
            ..self
        })
    }

    /// The same coder, clipping decoded boxes to the image (when one is given) or not.
    pub fn with_clip_border(self, clip_border: bool) -> Self {
        Self {
            clip_border,
            ..self
        }
    }

    /// The means.
    pub fn means(&self) -> [T; 4] {
        self.means
    }

    /// The standard deviations.
    pub fn stds(&self) -> [T; 4] {
        self.stds
    }

    /// The clamp of `dw` and `dh` in decoding, `|ln(wh_ratio_clip)|`.
    pub fn max_ratio(&self) -> T {
        self.max_ratio
    }

    /// Whether decoding clips boxes to the image.
    pub fn clip_border(&self) -> bool {
        self.clip_border
    }

    /// The deltas taking `proposal` to `target`, both of positive width and height (for
    /// other boxes the deltas are unspecified: non-finite for floats, as in mmdetection).
    pub fn encode_box(&self, proposal: &[T; 4], target: &[T; 4]) -> [T; 4] {
        let [px, py, pw, ph] = center_size(proposal);
        let [gx, gy, gw, gh] = center_size(target);
        let d = [(gx - px) / pw, (gy - py) / ph, ln(gw / pw), ln(gh / ph)];
        let mut out = [T::ZERO; 4];
        for (((o, d), m), s) in out.iter_mut().zip(d).zip(self.means).zip(self.stds) {
            *o = (d - m) / s;
        }
        out
    }

    /// The box `delta` makes of `roi`, clipped to `image = [height, width]` when given and
    /// [`clip_border`](Self::clip_border) is on.
    pub fn decode_box(&self, roi: &[T; 4], delta: &[T; 4], image: Option<[T; 2]>) -> [T; 4] {
        let mut d = [T::ZERO; 4];
        for (((d, o), m), s) in d.iter_mut().zip(delta).zip(self.means).zip(self.stds) {
            *d = *o * s + m;
        }
        let [dx, dy, dw, dh] = d;
        let [px, py, pw, ph] = center_size(roi);
        let clamp = |v: T| v.max(-self.max_ratio).min(self.max_ratio);
        let gx = px + pw * dx;
        let gy = py + ph * dy;
        let gw = pw * clamp(dw).exp();
        let gh = ph * clamp(dh).exp();
        let (hw, hh) = (gw * T::HALF, gh * T::HALF);
        let mut b = [gx - hw, gy - hh, gx + hw, gy + hh];
        if let (true, Some([height, width])) = (self.clip_border, image) {
            let limits = [width, height, width, height];
            for (v, limit) in b.iter_mut().zip(limits) {
                *v = v.max(T::ZERO).min(limit);
            }
        }
        b
    }

    /// Encodes `n` proposal/target pairs (`[n * 4]` each) into `out` (`[n * 4]`).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn encode(&self, proposals: &[T], targets: &[T], out: &mut [T]) -> Result<(), Error> {
        let n = out.len() / 4;
        length(n * 4, out.len())?;
        check_boxes(proposals, n)?;
        check_boxes(targets, n)?;
        for boxes in [proposals, targets] {
            if let Some(index) = (0..n).find(|&i| !positive_size(boxes, i)) {
                return Err(Error::InvalidBox { index });
            }
        }
        for (i, o) in out.chunks_exact_mut(4).enumerate() {
            let d = self.encode_box(&box_at(proposals, i), &box_at(targets, i));
            if !d.iter().all(|v| v.is_finite()) {
                return Err(Error::NonFinite { index: i });
            }
            o.iter_mut().zip(d).for_each(|(o, v)| *o = v);
        }
        Ok(())
    }

    /// Decodes `n` rois with their deltas (`[n * 4]` each) into `out` (`[n * 4]`), clipped to
    /// `image = [height, width]` when given (and clipping is on).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn decode(
        &self,
        rois: &[T],
        deltas: &[T],
        image: Option<[T; 2]>,
        out: &mut [T],
    ) -> Result<(), Error> {
        let n = out.len() / 4;
        length(n * 4, out.len())?;
        check_boxes(rois, n)?;
        length(n * 4, deltas.len())?;
        all_finite(deltas)?;
        check_image(image)?;
        for (i, o) in out.chunks_exact_mut(4).enumerate() {
            let b = self.decode_box(&box_at(rois, i), &box_at(deltas, i), image);
            if !b.iter().all(|v| v.is_finite()) {
                return Err(Error::NonFinite { index: i });
            }
            o.iter_mut().zip(b).for_each(|(o, v)| *o = v);
        }
        Ok(())
    }
}

/// An image size `[height, width]`: finite and `>= 0`.
pub(crate) fn check_image<T: Real>(image: Option<[T; 2]>) -> Result<(), Error> {
    if let Some(hw) = image {
        all_finite(&hw)?;
        parameter(hw.iter().all(|v| *v >= T::ZERO), "image")?;
    }
    Ok(())
}

/// `[cx, cy, w, h]` of a box, as mmdetection computes them.
fn center_size<T: Real>(b: &[T; 4]) -> [T; 4] {
    let [x1, y1, x2, y2] = *b;
    [(x1 + x2) * T::HALF, (y1 + y2) * T::HALF, x2 - x1, y2 - y1]
}

/// Whether box `i` has positive width and height.
fn positive_size<T: Real>(boxes: &[T], i: usize) -> bool {
    let [x1, y1, x2, y2] = box_at(boxes, i);
    x2 > x1 && y2 > y1
}
