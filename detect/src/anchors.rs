//! The anchors of one feature map, in the order of mmdetection's `AnchorGenerator`.
//!
//! ```text
//! base anchor a = r * S + s          (ratios outer, scales inner: scale_major = True)
//!   h_ratio = sqrt(ratio_r),  w_ratio = 1 / h_ratio          (ratio = height / width)
//!   ws = base_size * w_ratio * scale_s,  hs = base_size * h_ratio * scale_s
//!   c  = center_offset * base_size
//!   base = [c - ws/2, c - hs/2, c + ws/2, c + hs/2]
//! anchor (y, x, a) = base_a + [x * stride, y * stride, x * stride, y * stride]
//! index  = (y * w + x) * A + a       (per location, row by row, then per base anchor)
//! octave scales: scale_s = octave_base_scale * 2^(s / scales_per_octave)
//! ```
//! This is `gen_single_level_base_anchors` and `single_level_grid_priors` of mmdetection's
//! `mmdet/models/task_modules/prior_generators/anchor_generator.py`, operation for operation
//! in `T` (the octave scales in f64, as numpy computes them), so f32 anchors equal mmdetection's
//! float32 ones. Boxes are `[x1, y1, x2, y2]`, continuous (no "+1").
//!
//! # Defaults
//! [`Anchors::retinanet`]: RetinaNet's `octave_base_scale = 4`, `scales_per_octave = 3`,
//! `ratios = [0.5, 1, 2]` (9 anchors per location, sides `32, 40.3, 50.8` at stride 8),
//! `base_size = stride`. The centre offset is mmdetection's default, `center_offset = 0`: the
//! anchors of cell `(y, x)` are centred on `(x * stride, y * stride)`, which is what RetinaNet
//! trained with, so anchors, assignments and deltas match mmdetection's bit for bit.
//! [`Anchors::with_center_offset`]`(0.5)` centres them on the cells instead (`(x + 0.5) *
//! stride`), the geometric centre of a cell's pixels.
//!
//! # Errors
//! `InvalidParameter`: `"stride"`, `"base_size"` unless finite and `> 0`; `"scales"`,
//! `"ratios"` unless 1 to [`MAX_SCALES`] / [`MAX_RATIOS`] finite values `> 0`;
//! `"octave_base_scale"` unless finite and `> 0`; `"scales_per_octave"` unless 1 to
//! [`MAX_SCALES`]; `"center_offset"` unless in `[0, 1]` (as mmdetection). [`Anchors::write`]:
//! `LengthMismatch` unless the buffer holds [`Anchors::anchors_len`] values.

use crate::math::{length, parameter};
use hardmine::{Error, Real};

/// The most scales an [`Anchors`] holds.
pub const MAX_SCALES: usize = 8;
/// The most aspect ratios an [`Anchors`] holds.
pub const MAX_RATIOS: usize = 8;

/// The anchor configuration of one feature level: stride, base size, scales, aspect ratios
/// and centre offset.
///
/// # Examples
/// ```
/// use hardmine_detect::Anchors;
/// // mmdetection's docstring example: AnchorGenerator([16], [1.], [1.], [9]) on a 2 x 2 map.
/// let anchors = Anchors::new(16.0f32, &[1.0], &[1.0])?.with_base_size(9.0)?;
/// let mut boxes = [0.0f32; 16];
/// assert_eq!(anchors.anchors_len(2, 2), boxes.len());
/// anchors.write(2, 2, &mut boxes)?;
/// assert_eq!(&boxes[..8], &[-4.5, -4.5, 4.5, 4.5, 11.5, -4.5, 20.5, 4.5]);
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Anchors<T> {
    stride: T,
    base_size: T,
    center_offset: T,
    scales: [T; MAX_SCALES],
    n_scales: usize,
    ratios: [T; MAX_RATIOS],
    n_ratios: usize,
}

/// `values` copied into a fixed array, each finite and `> 0`, 1 to `N` of them.
fn positive_list<T: Real, const N: usize>(
    values: &[T],
    name: &'static str,
) -> Result<([T; N], usize), Error> {
    parameter(
        (1..=N).contains(&values.len()) && values.iter().all(|v| v.is_finite() && *v > T::ZERO),
        name,
    )?;
    let mut out = [T::ZERO; N];
    for (o, v) in out.iter_mut().zip(values) {
        *o = *v;
    }
    Ok((out, values.len()))
}

/// A finite value `> 0` (the core's rule), returned.
fn positive<T: Real>(v: T, name: &'static str) -> Result<T, Error> {
    hardmine::check::positive(v, name).map(|()| v)
}

impl<T: Real> Anchors<T> {
    /// Explicit `scales` and aspect `ratios` (height / width), `base_size = stride`, centre
    /// offset 0 (mmdetection's `AnchorGenerator(strides=[stride], ratios, scales)`).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn new(stride: T, scales: &[T], ratios: &[T]) -> Result<Self, Error> {
        let stride = positive(stride, "stride")?;
        let (scales, n_scales) = positive_list::<T, MAX_SCALES>(scales, "scales")?;
        let (ratios, n_ratios) = positive_list::<T, MAX_RATIOS>(ratios, "ratios")?;
        Ok(Self {
            stride,
            base_size: stride,
            center_offset: T::ZERO,
            scales,
            n_scales,
            ratios,
            n_ratios,
        })
    }

    /// Octave scales `octave_base_scale * 2^(i / scales_per_octave)` for `i` in
    /// `0..scales_per_octave` (computed in f64, as mmdetection's numpy), with `ratios`.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn octave(
        stride: T,
        octave_base_scale: T,
        scales_per_octave: usize,
        ratios: &[T],
    ) -> Result<Self, Error> {
        let base = positive(octave_base_scale, "octave_base_scale")?.to_f64();
        parameter(
            (1..=MAX_SCALES).contains(&scales_per_octave),
            "scales_per_octave",
        )?;
        let mut scales = [T::ZERO; MAX_SCALES];
        let per = scales_per_octave as f64;
        for (i, s) in scales.iter_mut().take(scales_per_octave).enumerate() {
            // 2^(i / n) = e^(ln 2 * i / n); i = 0 gives exactly 1.
            let octave = <f64 as Real>::exp(core::f64::consts::LN_2 * (i as f64) / per);
            *s = T::from_f64(octave * base);
        }
        Self::new(
            stride,
            scales.get(..scales_per_octave).unwrap_or(&[]),
            ratios,
        )
    }

    /// RetinaNet's anchors at `stride`: octave base scale 4, 3 scales per octave, ratios
    /// `[0.5, 1, 2]` (9 per location).
    ///
    /// # Errors
    /// `InvalidParameter("stride")` unless `stride` is finite and `> 0`.
    ///
    /// # Examples
    /// ```
    /// let anchors = hardmine_detect::Anchors::retinanet(8.0f64)?;
    /// assert_eq!(anchors.per_location(), 9);
    /// // Base anchor 4: ratio 1, scale 4 * 2^(1/3), centred on (0, 0).
    /// let side = 32.0 * 2f64.powf(1.0 / 3.0);
    /// let b = anchors.base_anchor(4).unwrap();
    /// assert!((b[2] - b[0] - side).abs() < 1e-12 && b[0] == -b[2]);
    /// # Ok::<(), hardmine::Error>(())
    /// ```
    pub fn retinanet(stride: T) -> Result<Self, Error> {
        let ratios = [T::HALF, T::ONE, T::from_f64(2.0)];
        Self::octave(stride, T::from_f64(4.0), 3, &ratios)
    }

    /// The same anchors with another base size (mmdetection's `base_sizes`; default: the
    /// stride).
    ///
    /// # Errors
    /// `InvalidParameter("base_size")` unless finite and `> 0`.
    pub fn with_base_size(self, base_size: T) -> Result<Self, Error> {
        Ok(Self {
            base_size: positive(base_size, "base_size")?,
            ..self
        })
    }

    /// The same anchors with their centres moved by `center_offset * base_size` from the
    /// cell's corner (mmdetection's `center_offset`; default 0, and 0.5 centres them on the
    /// cells when `base_size = stride`).
    ///
    /// # Errors
    /// `InvalidParameter("center_offset")` unless in `[0, 1]`.
    pub fn with_center_offset(self, center_offset: T) -> Result<Self, Error> {
        parameter(
            center_offset >= T::ZERO && center_offset <= T::ONE,
            "center_offset",
        )?;
        Ok(Self {
            center_offset,
            ..self
        })
    }

    /// The stride: the distance between neighbouring cells' anchors, in pixels.
    pub fn stride(&self) -> T {
        self.stride
    }

    /// The base size the scales multiply.
    pub fn base_size(&self) -> T {
        self.base_size
    }

    /// The centre offset, in units of the base size.
    pub fn center_offset(&self) -> T {
        self.center_offset
    }

    /// The scales, in order.
    pub fn scales(&self) -> &[T] {
        self.scales.get(..self.n_scales).unwrap_or(&[])
    }

    /// The aspect ratios (height / width), in order.
    pub fn ratios(&self) -> &[T] {
        self.ratios.get(..self.n_ratios).unwrap_or(&[])
    }

    /// Anchors per location, `A = ratios * scales`.
    pub fn per_location(&self) -> usize {
        self.n_ratios * self.n_scales
    }

    /// Anchors of an `h x w` map, `h * w * A` (saturating).
    pub fn count(&self, h: usize, w: usize) -> usize {
        h.saturating_mul(w).saturating_mul(self.per_location())
    }

    /// The length of the buffer [`write`](Self::write) fills: 4 values per anchor,
    /// `h * w * A * 4` (saturating at `usize::MAX`, which no slice of `T` reaches).
    pub fn anchors_len(&self, h: usize, w: usize) -> usize {
        self.count(h, w).saturating_mul(4)
    }

    /// Base anchor `a` (`a = r * S + s`), centred on `center_offset * base_size`; `None`
    /// for `a >= A`.
    pub fn base_anchor(&self, a: usize) -> Option<[T; 4]> {
        let ratio = *self.ratios().get(a / self.n_scales.max(1))?;
        let scale = *self.scales().get(a % self.n_scales.max(1))?;
        let h_ratio = ratio.sqrt();
        let w_ratio = T::ONE / h_ratio;
        let ws = self.base_size * w_ratio * scale;
        let hs = self.base_size * h_ratio * scale;
        let c = self.center_offset * self.base_size;
        let (half_w, half_h) = (T::HALF * ws, T::HALF * hs);
        Some([c - half_w, c - half_h, c + half_w, c + half_h])
    }

    /// Anchor `index` of an `h x w` map (mmdetection's `sparse_priors`); `None` past the
    /// end.
    pub fn anchor(&self, h: usize, w: usize, index: usize) -> Option<[T; 4]> {
        if index >= self.count(h, w) {
            return None;
        }
        let per = self.per_location();
        let cell = index / per;
        let base = self.base_anchor(index % per)?;
        Some(self.shifted(base, cell / w, cell % w))
    }

    /// `base` moved to cell `(y, x)`.
    fn shifted(&self, base: [T; 4], y: usize, x: usize) -> [T; 4] {
        let sx = T::from_count(x as u64) * self.stride;
        let sy = T::from_count(y as u64) * self.stride;
        let [x1, y1, x2, y2] = base;
        [x1 + sx, y1 + sy, x2 + sx, y2 + sy]
    }

    /// Writes the anchors of an `h x w` map into `out` (`[h * w * A * 4]`), in mmdetection's
    /// order: location by location (row-major), then base anchor by base anchor.
    ///
    /// # Errors
    /// `LengthMismatch` unless `out.len() == anchors_len(h, w)`.
    pub fn write(&self, h: usize, w: usize, out: &mut [T]) -> Result<(), Error> {
        length(self.anchors_len(h, w), out.len())?;
        let mut bases = [[T::ZERO; 4]; MAX_SCALES * MAX_RATIOS];
        for (a, b) in bases.iter_mut().enumerate().take(self.per_location()) {
            *b = self.base_anchor(a).unwrap_or([T::ZERO; 4]);
        }
        let bases = bases.get(..self.per_location()).unwrap_or(&[]);
        let mut chunks = out.chunks_exact_mut(4);
        for y in 0..h {
            for x in 0..w {
                for base in bases {
                    if let Some(chunk) = chunks.next() {
                        chunk.copy_from_slice(&self.shifted(*base, y, x));
                    }
                }
            }
        }
        Ok(())
    }
}
