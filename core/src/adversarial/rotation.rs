//! Channel-block rotation, the ASTN of A-Fast-RCNN: the channels are split into blocks and
//! each block is rotated by its own small angle, making hard positives by deformation.
//!
//! ```text
//! blocks: C / B channels each, the last block takes the remainder
//! theta = [[cos a, -sin a, 0], [sin a, cos a, 0]]   (PyTorch affine_grid, align_corners=True)
//! output pixel (i, j), centred u = j - hx, v = i - hy, hx = (W-1)/2, hy = (H-1)/2:
//!     ix = hx + cos a u - sin a (hx/hy) v        iy = hy + sin a (hy/hx) u + cos a v
//!     (x_n = u/hx, y_n = v/hy rotated in normalised space, unnormalised by grid_sample;
//!      an axis of size 1 has hx or hy = 0 and its normalised coordinate is 0)
//! out = bilinear(in, ix, iy) with zero padding (grid_sample)
//! d out / d in  : the bilinear weights, scattered back
//! d out / d a   = d out/d ix * (-sin a u - cos a (hx/hy) v) + d out/d iy * (cos a (hy/hx) u - sin a v)
//! ```
//! Written in centred pixel form, angle 0 is exactly the identity. Positions within
//! `4 EPSILON max(1, |p|)` of an integer are taken as that integer, so a 90-degree turn of a
//! square map is an exact index permutation (the exact-arithmetic reference lands on integers
//! there; `pi/2` itself is not representable). At an integer position the derivative is the
//! one-sided one of `floor` (PyTorch's). Angles are limited to `+-max_angle` (default 10
//! degrees, the released code's range).
//! Accuracy: the golden `rotate_blocks` tolerances (1e-10 f64, 1e-5 f32, 2e-3 Q15.16).
//!
//! # Errors
//! `new`: `InvalidParameter("blocks")` unless `1 <= blocks <= channels`, and `MapShape`'s.
//! `with_max_angle`: `InvalidParameter("max_angle")` unless in `(0, pi]`. Calls:
//! `LengthMismatch` (features, outputs, one angle per block), `NonFinite` (feature, upstream
//! gradient or angle), `InvalidParameter("angles")` for an angle beyond the limit.

use super::shape::MapShape;
use crate::{check, Error, Real};

/// Per-block rotation of `[C x H x W]` feature maps.
///
/// # Examples
/// ```
/// use hardmine::ChannelBlockRotation;
/// let rot = ChannelBlockRotation::<f64>::new(2, 3, 3, 2)?;
/// let features: Vec<f64> = (0..18).map(f64::from).collect();
/// let mut out = [0.0; 18];
/// rot.forward(&features, &[0.0, 0.1], &mut out)?;
/// assert_eq!(&out[..9], &features[..9]); // block 0 turned by 0: the identity
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelBlockRotation<T> {
    shape: MapShape,
    blocks: usize,
    max_angle: T,
}

/// The sampling geometry of one block's angle.
#[derive(Clone, Copy)]
struct Geometry<T> {
    cos: T,
    sin: T,
    hx: T,
    hy: T,
    /// `hx / hy` (0 when `hy = 0`) and `hy / hx` (0 when `hx = 0`).
    ax: T,
    ay: T,
}

/// One output pixel's bilinear stencil: four corners (flat cell index or `None` when outside)
/// with weights, and the weights' derivatives along x and y.
struct Stencil<T> {
    cells: [Option<usize>; 4],
    weight: [T; 4],
    d_x: [T; 4],
    d_y: [T; 4],
    /// `d ix / d a`, `d iy / d a`.
    d_angle: (T, T),
}

/// `p`, or the integer next to it when closer than a few units of the type's resolution.
fn snapped<T: Real>(p: T) -> T {
    let n = T::from_int(p.floor_int());
    let up = n + T::ONE;
    let tol = T::EPSILON * (T::ONE + T::ONE + T::ONE + T::ONE) * p.abs().max(T::ONE);
    if p - n <= tol {
        n
    } else if up - p <= tol {
        up
    } else {
        p
    }
}

impl<T: Real> ChannelBlockRotation<T> {
    /// Rotation of `channels x height x width` maps in `blocks` channel blocks, limited to
    /// 10 degrees.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn new(channels: usize, height: usize, width: usize, blocks: usize) -> Result<Self, Error> {
        let shape = MapShape::new(channels, height, width)?;
        check::parameter((1..=channels).contains(&blocks), "blocks")?;
        let max_angle = T::from_f64(10.0f64.to_radians());
        Ok(Self {
            shape,
            blocks,
            max_angle,
        })
    }

    /// The same rotation with angles limited to `+-max_angle` radians, `0 < max_angle <= pi`.
    ///
    /// # Errors
    /// `InvalidParameter("max_angle")`.
    pub fn with_max_angle(self, max_angle: T) -> Result<Self, Error> {
        if max_angle > T::ZERO && max_angle <= T::from_f64(core::f64::consts::PI) {
            Ok(Self { max_angle, ..self })
        } else {
            Err(Error::InvalidParameter("max_angle"))
        }
    }

    /// The map's shape.
    pub fn shape(&self) -> MapShape {
        self.shape
    }

    /// The channels of block `b`: `C / B` each, the last one the remainder.
    pub fn block_channels(&self, b: usize) -> core::ops::Range<usize> {
        let size = self.shape.channels / self.blocks;
        let start = b * size;
        let end = if b + 1 >= self.blocks {
            self.shape.channels
        } else {
            start + size
        };
        start.min(end)..end
    }

    fn geometry(&self, angle: T) -> Geometry<T> {
        let (sin, cos) = angle.sin_cos();
        let half = |n: usize| T::from_count(n.saturating_sub(1) as u64) * T::HALF;
        let (hx, hy) = (half(self.shape.width), half(self.shape.height));
        let ax = if hy > T::ZERO { hx / hy } else { T::ZERO };
        let ay = if hx > T::ZERO { hy / hx } else { T::ZERO };
        Geometry {
            cos,
            sin,
            hx,
            hy,
            ax,
            ay,
        }
    }

    fn stencil(&self, g: &Geometry<T>, i: usize, j: usize) -> Stencil<T> {
        let u = T::from_count(j as u64) - g.hx;
        let v = T::from_count(i as u64) - g.hy;
        let ix = snapped(g.hx + g.cos * u - g.sin * g.ax * v);
        let iy = snapped(g.hy + g.sin * g.ay * u + g.cos * v);
        let (x0, y0) = (ix.floor_int(), iy.floor_int());
        let fx = ix - T::from_int(x0);
        let fy = iy - T::from_int(y0);
        let (w, h) = (self.shape.width as i64, self.shape.height as i64);
        let cell = |y: i64, x: i64| {
            ((0..h).contains(&y) && (0..w).contains(&x)).then(|| (y * w + x) as usize)
        };
        let (gx, gy) = (T::ONE - fx, T::ONE - fy);
        Stencil {
            cells: [
                cell(y0, x0),
                cell(y0, x0 + 1),
                cell(y0 + 1, x0),
                cell(y0 + 1, x0 + 1),
            ],
            weight: [gx * gy, fx * gy, gx * fy, fx * fy],
            d_x: [-gy, gy, -fy, fy],
            d_y: [-gx, -fx, gx, fx],
            d_angle: (
                -(g.sin * u) - g.cos * g.ax * v,
                g.cos * g.ay * u - g.sin * v,
            ),
        }
    }

    fn check_angles(&self, angles: &[T]) -> Result<(), Error> {
        check::length(self.blocks, angles.len())?;
        check::all_finite(angles)?;
        if angles.iter().any(|&a| a.abs() > self.max_angle) {
            return Err(Error::InvalidParameter("angles"));
        }
        Ok(())
    }

    /// Rotates block `b`'s channels of `features` by `angle` into `out` (both full maps).
    fn forward_block(&self, b: usize, features: &[T], angle: T, out: &mut [T]) {
        let g = self.geometry(angle);
        let cells = self.shape.cells();
        for ch in self.block_channels(b) {
            let (Some(src), Some(dst)) = (
                features.get(ch * cells..(ch + 1) * cells),
                out.get_mut(ch * cells..(ch + 1) * cells),
            ) else {
                continue;
            };
            for (k, o) in dst.iter_mut().enumerate() {
                let st = self.stencil(&g, k / self.shape.width, k % self.shape.width);
                *o = st.cells.iter().zip(st.weight).fold(T::ZERO, |acc, (c, w)| {
                    match c.and_then(|c| src.get(c)) {
                        Some(&x) => acc + w * x,
                        None => acc,
                    }
                });
            }
        }
    }

    /// The rotated map: block `b` turned by `angles[b]`.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn forward(&self, features: &[T], angles: &[T], out: &mut [T]) -> Result<(), Error> {
        check::length(self.shape.len(), features.len())?;
        check::length(self.shape.len(), out.len())?;
        check::all_finite(features)?;
        self.check_angles(angles)?;
        for (b, &a) in angles.iter().enumerate() {
            self.forward_block(b, features, a, out);
        }
        Ok(())
    }

    /// Backward pass for an upstream gradient `upstream` (d loss / d output): writes
    /// d loss / d features to `grad_features` and d loss / d angle of each block to
    /// `grad_angles`.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn backward(
        &self,
        features: &[T],
        angles: &[T],
        upstream: &[T],
        grad_features: &mut [T],
        grad_angles: &mut [T],
    ) -> Result<(), Error> {
        let n = self.shape.len();
        check::length(n, features.len())?;
        check::length(n, upstream.len())?;
        check::length(n, grad_features.len())?;
        check::length(self.blocks, grad_angles.len())?;
        check::all_finite(features)?;
        check::all_finite(upstream)?;
        self.check_angles(angles)?;
        grad_features.iter_mut().for_each(|g| *g = T::ZERO);
        let cells = self.shape.cells();
        for ((b, &a), ga) in angles.iter().enumerate().zip(grad_angles.iter_mut()) {
            let g = self.geometry(a);
            let mut acc = T::ZERO.widen();
            for ch in self.block_channels(b) {
                let range = ch * cells..(ch + 1) * cells;
                let (Some(src), Some(up), Some(dst)) = (
                    features.get(range.clone()),
                    upstream.get(range.clone()),
                    grad_features.get_mut(range),
                ) else {
                    continue;
                };
                for (k, &u) in up.iter().enumerate() {
                    let st = self.stencil(&g, k / self.shape.width, k % self.shape.width);
                    let (mut dx, mut dy) = (T::ZERO, T::ZERO);
                    for (((c, w), wx), wy) in st.cells.iter().zip(st.weight).zip(st.d_x).zip(st.d_y)
                    {
                        if let Some(c) = *c {
                            if let (Some(&x), Some(d)) = (src.get(c), dst.get_mut(c)) {
                                *d = *d + w * u;
                                dx = dx + wx * x;
                                dy = dy + wy * x;
                            }
                        }
                    }
                    acc = acc + (u * (dx * st.d_angle.0 + dy * st.d_angle.1)).widen();
                }
            }
            *ga = T::narrow(acc);
        }
        Ok(())
    }

    /// The adversarial choice: per-block angles from a grid of `grid` values over
    /// `[-max_angle, max_angle]` (coordinate-wise, block by block, starting from 0) that raise
    /// `loss(rotated map)` most. Writes the angles and the rotated map (`out`); returns the loss.
    ///
    /// # Errors
    /// See the module documentation; `InvalidParameter("grid")` for 0, `NonFinite` when the
    /// loss is not finite (the index is the block).
    pub fn adversarial(
        &self,
        features: &[T],
        grid: usize,
        out: &mut [T],
        angles: &mut [T],
        mut loss: impl FnMut(&[T]) -> T,
    ) -> Result<T, Error> {
        check::parameter(grid > 0, "grid")?;
        check::length(self.shape.len(), features.len())?;
        check::length(self.shape.len(), out.len())?;
        check::length(self.blocks, angles.len())?;
        check::all_finite(features)?;
        out.copy_from_slice(features);
        angles.iter_mut().for_each(|a| *a = T::ZERO);
        let mut best_loss = check::finite(loss(out), 0)?;
        let step = if grid > 1 {
            (self.max_angle + self.max_angle) / T::from_count((grid - 1) as u64)
        } else {
            T::ZERO
        };
        for (b, angle) in angles.iter_mut().enumerate() {
            let mut best = (T::ZERO, best_loss);
            for k in 0..grid {
                let a = if grid > 1 {
                    -self.max_angle + step * T::from_count(k as u64)
                } else {
                    T::ZERO
                };
                let a = a.min(self.max_angle);
                self.forward_block(b, features, a, out);
                let l = check::finite(loss(out), b)?;
                if l > best.1 {
                    best = (a, l);
                }
            }
            *angle = best.0;
            best_loss = best.1;
            self.forward_block(b, features, best.0, out);
        }
        Ok(best_loss)
    }
}
