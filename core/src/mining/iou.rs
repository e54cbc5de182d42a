//! Intersection over union of `[x1, y1, x2, y2]` boxes.
//!
//! ```text
//! inter = max(0, min(x2a, x2b) - max(x1a, x1b)) * max(0, min(y2a, y2b) - max(y1a, y1b))
//! iou   = inter / (area_a + area_b - inter)        (0 when the union is empty)
//! ```
//! Continuous coordinates (torchvision's `box_iou`; no "+1" pixel convention).
//!
//! # Errors
//! [`check_boxes`]: `LengthMismatch` unless 4 values per box, `NonFinite` (the box's index),
//! `InvalidBox` when `x2 < x1` or `y2 < y1`.

use crate::{check, Error, Real};

/// IoU of two boxes `[x1, y1, x2, y2]` (assumed valid).
///
/// # Examples
/// ```
/// assert_eq!(hardmine::iou(&[0.0f32, 0.0, 2.0, 2.0], &[1.0, 0.0, 3.0, 2.0]), 1.0 / 3.0);
/// ```
pub fn iou<T: Real>(a: &[T; 4], b: &[T; 4]) -> T {
    let [ax1, ay1, ax2, ay2] = *a;
    let [bx1, by1, bx2, by2] = *b;
    let w = (ax2.min(bx2) - ax1.max(bx1)).max(T::ZERO);
    let h = (ay2.min(by2) - ay1.max(by1)).max(T::ZERO);
    let inter = w * h;
    let union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter;
    if union > T::ZERO {
        inter / union
    } else {
        T::ZERO
    }
}

/// Box `i` of a flat `[N * 4]` slice (zeros past the end, which validated input never reaches).
#[inline]
pub fn box_at<T: Real>(boxes: &[T], i: usize) -> [T; 4] {
    let mut b = [T::ZERO; 4];
    if let Some(s) = boxes.get(i.saturating_mul(4)..i.saturating_mul(4).saturating_add(4)) {
        // Element by element: `copy_from_slice` keeps a length-mismatch panic the compiler
        // cannot always remove (the range saturates).
        b.iter_mut().zip(s).for_each(|(d, &v)| *d = v);
    }
    b
}

/// Validates `n` boxes in a flat `[n * 4]` slice.
///
/// # Errors
/// See the module documentation.
pub fn check_boxes<T: Real>(boxes: &[T], n: usize) -> Result<(), Error> {
    check::length(check::product(n, 4, "boxes")?, boxes.len())?;
    for (index, b) in boxes.chunks_exact(4).enumerate() {
        if !b.iter().all(|v| v.is_finite()) {
            return Err(Error::NonFinite { index });
        }
        if let [x1, y1, x2, y2] = *b {
            if x2 < x1 || y2 < y1 {
                return Err(Error::InvalidBox { index });
            }
        }
    }
    Ok(())
}
