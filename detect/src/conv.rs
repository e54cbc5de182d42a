//! 3x3 convolutions with padding 1 in HWC layout: forward, backward, ReLU.
//!
//! ```text
//! activation (y, x, c) of an h x w x c map:  x[(y * w + x) * c + ch]
//! parameters of a ConvSpec { in_ch, out_ch, stride }, one flat slice:
//!   weight (ky, kx, ic, oc):  p[((ky * 3 + kx) * in_ch + ic) * out_ch + oc]
//!   bias oc:                  p[9 * in_ch * out_ch + oc]
//! output size:  oh = (h - 1) / stride + 1,  ow = (w - 1) / stride + 1   (floor((h + 2 - 3) / s) + 1)
//! out(oy, ox, oc) = bias[oc] + sum_{ky, kx, ic} W(ky, kx, ic, oc) * in(oy*s + ky - 1, ox*s + kx - 1, ic)
//!   with in(...) = 0 outside the map (zero padding), then max(0, .) with ReLU
//! ```
//! The weight layout puts the output channels innermost, so every inner loop (forward: a
//! multiply-add of one input value into a run of output channels; backward: the weight
//! gradient of one input value) runs over contiguous memory and vectorises. Input values that
//! are exactly zero (ReLU's, and the padding) are skipped, and so are output locations whose
//! whole gradient row is zero (a miner's unselected anchors) in the backward pass.
//!
//! Sums: see [`Scalar`](crate::Scalar) (floats in their own type; Q15.16 exactly, rounded once
//! per output). The backward pass accumulates into the caller's `T` buffers: for Q15.16 each
//! product `input * grad` is rounded to the LSB before it is added (a product below half an
//! LSB, 7.6e-6, is lost: scale the loss up if gradients are that small).
//!
//! # Errors
//! `InvalidParameter("conv")` from [`ConvSpec::new`] for a zero channel count or stride, or
//! a parameter count that overflows; `InvalidParameter("height")` / `("width")` for a zero
//! map size or one whose length overflows; `LengthMismatch` for every slice, in argument
//! order; `NonFinite` (index into that slice) for non-finite parameters, then inputs
//! (forward), or gradients (backward). Nothing is written on `Err`.

use crate::math::{all_finite, length, parameter};
use crate::scalar::Scalar;
use hardmine::{Error, Real};

/// Output channels summed at once in the forward pass (a stack block of accumulators).
const BLOCK: usize = 32;

/// A 3x3 convolution with padding 1: input and output channels and stride.
///
/// # Examples
/// ```
/// use hardmine_detect::ConvSpec;
/// let conv = ConvSpec::new(1, 2, 2)?;
/// assert_eq!(conv.params_len(), 9 * 1 * 2 + 2);
/// assert_eq!(conv.out_hw(5, 4), (3, 2));
/// let mut params = [0.0f32; 20];
/// params[4 * 2] = 1.0; // centre tap, output channel 0: the identity
/// params[19] = 0.5; // bias of output channel 1
/// let input: Vec<f32> = (0..20).map(|v| v as f32).collect();
/// let mut out = [0.0f32; 12];
/// conv.forward(&params, &input, 5, 4, &mut out, true)?;
/// assert_eq!(&out[..4], &[0.0, 0.5, 2.0, 0.5]); // input (0, 0) and (0, 2), then the bias
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConvSpec {
    pub(crate) in_ch: usize,
    pub(crate) out_ch: usize,
    pub(crate) stride: usize,
}

/// `a * b`, or `InvalidParameter(name)` on overflow.
pub(crate) fn mul(a: usize, b: usize, name: &'static str) -> Result<usize, Error> {
    a.checked_mul(b).ok_or(Error::InvalidParameter(name))
}

impl ConvSpec {
    /// A 3x3, padding-1 convolution from `in_ch` to `out_ch` channels with `stride`.
    ///
    /// # Errors
    /// `InvalidParameter("conv")` if a count or the stride is 0, or the parameter count
    /// overflows `usize`.
    pub fn new(in_ch: usize, out_ch: usize, stride: usize) -> Result<Self, Error> {
        parameter(in_ch > 0 && out_ch > 0 && stride > 0, "conv")?;
        let weights = mul(mul(9, in_ch, "conv")?, out_ch, "conv")?;
        weights
            .checked_add(out_ch)
            .ok_or(Error::InvalidParameter("conv"))?;
        Ok(Self {
            in_ch,
            out_ch,
            stride,
        })
    }

    /// Input channels.
    pub fn in_ch(&self) -> usize {
        self.in_ch
    }

    /// Output channels.
    pub fn out_ch(&self) -> usize {
        self.out_ch
    }

    /// Stride (both directions).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Weights: `9 * in_ch * out_ch`.
    pub fn weights_len(&self) -> usize {
        9 * self.in_ch * self.out_ch
    }

    /// Parameters: the weights, then `out_ch` biases.
    pub fn params_len(&self) -> usize {
        self.weights_len() + self.out_ch
    }

    /// The output size of an `h x w` input: `((h - 1) / stride + 1, (w - 1) / stride + 1)`
    /// (0 for an empty side).
    pub fn out_hw(&self, h: usize, w: usize) -> (usize, usize) {
        let side = |n: usize| {
            if n == 0 {
                0
            } else {
                (n - 1) / self.stride.max(1) + 1
            }
        };
        (side(h), side(w))
    }

    /// `(input_len, output_len)` of an `h x w` input, checked.
    fn lens(&self, h: usize, w: usize) -> Result<(usize, usize), Error> {
        parameter(h > 0, "height")?;
        parameter(w > 0, "width")?;
        let (oh, ow) = self.out_hw(h, w);
        let input = mul(mul(h, w, "height")?, self.in_ch, "height")?;
        let output = mul(mul(oh, ow, "height")?, self.out_ch, "height")?;
        Ok((input, output))
    }

    /// The output of an `h x w x in_ch` input (`out` holds `oh * ow * out_ch` values, see
    /// [`out_hw`](Self::out_hw)), with ReLU when `relu`.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn forward<T: Scalar>(
        &self,
        params: &[T],
        input: &[T],
        h: usize,
        w: usize,
        out: &mut [T],
        relu: bool,
    ) -> Result<(), Error> {
        let (input_len, output_len) = self.lens(h, w)?;
        length(self.params_len(), params.len())?;
        length(input_len, input.len())?;
        length(output_len, out.len())?;
        all_finite(params)?;
        all_finite(input)?;
        self.forward_unchecked(params, input, h, w, out, relu);
        Ok(())
    }

    /// [`forward`](Self::forward) on validated slices.
    pub(crate) fn forward_unchecked<T: Scalar>(
        &self,
        params: &[T],
        input: &[T],
        h: usize,
        w: usize,
        out: &mut [T],
        relu: bool,
    ) {
        let (_, ow) = self.out_hw(h, w);
        let (weights, bias) = params.split_at(self.weights_len().min(params.len()));
        for (loc, out_row) in out.chunks_exact_mut(self.out_ch.max(1)).enumerate() {
            // `max(1)`: the sizes are validated non-zero; it keeps panics out of the binary.
            let taps = self.taps(input, h, w, loc / ow.max(1), loc % ow.max(1));
            forward_at(self, weights, bias, &taps, out_row, relu);
        }
    }

    /// The gradients of an `h x w x in_ch` input's convolution, given the gradient of the
    /// loss with respect to its output (`grad_out`, before the ReLU: apply
    /// [`relu_backward`] first when the forward pass had one). The parameters' gradient is
    /// added to `grad_params` (`params_len`); the input's gradient overwrites `grad_input`
    /// when given (`h * w * in_ch`).
    ///
    /// # Errors
    /// See the module documentation.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<T: Scalar>(
        &self,
        params: &[T],
        input: &[T],
        h: usize,
        w: usize,
        grad_out: &[T],
        grad_params: &mut [T],
        grad_input: Option<&mut [T]>,
    ) -> Result<(), Error> {
        let (input_len, output_len) = self.lens(h, w)?;
        length(self.params_len(), params.len())?;
        length(input_len, input.len())?;
        length(output_len, grad_out.len())?;
        length(self.params_len(), grad_params.len())?;
        if let Some(gi) = grad_input.as_deref() {
            length(input_len, gi.len())?;
        }
        all_finite(params)?;
        all_finite(input)?;
        all_finite(grad_out)?;
        self.backward_unchecked(
            params,
            input,
            h,
            w,
            grad_out,
            grad_params,
            grad_input,
            false,
        );
        Ok(())
    }

    /// [`backward`](Self::backward) on validated slices; `accumulate` adds the input's
    /// gradient to `grad_input` instead of overwriting it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward_unchecked<T: Scalar>(
        &self,
        params: &[T],
        input: &[T],
        h: usize,
        w: usize,
        grad_out: &[T],
        grad_params: &mut [T],
        mut grad_input: Option<&mut [T]>,
        accumulate: bool,
    ) {
        let (_, ow) = self.out_hw(h, w);
        let split = self.weights_len().min(params.len());
        let weights = params.split_at(split).0;
        let (gw, gb) = grad_params.split_at_mut(split.min(grad_params.len()));
        if let (Some(gi), false) = (grad_input.as_deref_mut(), accumulate) {
            gi.fill(T::ZERO);
        }
        for (loc, g_row) in grad_out.chunks_exact(self.out_ch.max(1)).enumerate() {
            if g_row.iter().all(|g| *g == T::ZERO) {
                continue;
            }
            let (oy, ox) = (loc / ow.max(1), loc % ow.max(1));
            let at = self.tap_locations(h, w, oy, ox);
            let taps = at.map(|l| l.and_then(|l| row(input, l, self.in_ch)));
            backward_params_at(self, &taps, g_row, gw, gb);
            if let Some(gi) = grad_input.as_deref_mut() {
                backward_input_at(self, weights, &at, g_row, gi);
            }
        }
    }

    /// The input locations (`y * w + x`) under the 9 taps of output `(oy, ox)`, in
    /// `ky * 3 + kx` order, `None` in the padding.
    pub(crate) fn tap_locations(
        &self,
        h: usize,
        w: usize,
        oy: usize,
        ox: usize,
    ) -> [Option<usize>; 9] {
        let mut at = [None; 9];
        for (t, slot) in at.iter_mut().enumerate() {
            // Coordinates plus one (the padding), so that they never go negative.
            let (y1, x1) = (oy * self.stride + t / 3, ox * self.stride + t % 3);
            if (1..=h).contains(&y1) && (1..=w).contains(&x1) {
                *slot = Some((y1 - 1) * w + (x1 - 1));
            }
        }
        at
    }

    /// The input rows under the 9 taps of output `(oy, ox)`.
    pub(crate) fn taps<'a, T>(
        &self,
        input: &'a [T],
        h: usize,
        w: usize,
        oy: usize,
        ox: usize,
    ) -> [Option<&'a [T]>; 9] {
        self.tap_locations(h, w, oy, ox)
            .map(|l| l.and_then(|l| row(input, l, self.in_ch)))
    }
}

/// Row `index` of width `width` of a row-major slice.
#[inline]
pub(crate) fn row<T>(xs: &[T], index: usize, width: usize) -> Option<&[T]> {
    xs.get(index * width..(index + 1) * width)
}

/// One output location: `out_row = bias + sum over taps`, with ReLU when `relu`. `taps` are
/// the `in_ch` input values under each of the 9 taps (`None`: padding, skipped as zeros).
pub(crate) fn forward_at<T: Scalar>(
    conv: &ConvSpec,
    weights: &[T],
    bias: &[T],
    taps: &[Option<&[T]>; 9],
    out_row: &mut [T],
    relu: bool,
) {
    let per_tap = conv.in_ch * conv.out_ch;
    for (block, (out, b)) in out_row
        .chunks_mut(BLOCK)
        .zip(bias.chunks(BLOCK))
        .enumerate()
    {
        let (start, end) = (block * BLOCK, block * BLOCK + out.len());
        let mut acc = [T::Sum::default(); BLOCK];
        for (a, b) in acc.iter_mut().zip(b) {
            *a = b.start();
        }
        for (tap, w_tap) in taps.iter().zip(weights.chunks_exact(per_tap.max(1))) {
            let Some(xs) = tap else { continue };
            for (&x, w_row) in xs.iter().zip(w_tap.chunks_exact(conv.out_ch.max(1))) {
                if x == T::ZERO {
                    continue;
                }
                let Some(w_row) = w_row.get(start..end) else {
                    continue;
                };
                for (a, &wv) in acc.iter_mut().zip(w_row) {
                    *a = T::mac(*a, x, wv);
                }
            }
        }
        for (o, a) in out.iter_mut().zip(acc) {
            let v = T::finish(a);
            *o = if relu { v.max(T::ZERO) } else { v };
        }
    }
}

/// The parameters' gradient of one output location, added to `gw` (weights) and `gb`
/// (biases).
pub(crate) fn backward_params_at<T: Scalar>(
    conv: &ConvSpec,
    taps: &[Option<&[T]>; 9],
    g_row: &[T],
    gw: &mut [T],
    gb: &mut [T],
) {
    for (b, &g) in gb.iter_mut().zip(g_row) {
        *b = *b + g;
    }
    for (tap, gw_tap) in taps
        .iter()
        .zip(gw.chunks_exact_mut((conv.in_ch * conv.out_ch).max(1)))
    {
        let Some(xs) = tap else { continue };
        for (&x, gw_row) in xs.iter().zip(gw_tap.chunks_exact_mut(conv.out_ch.max(1))) {
            if x == T::ZERO {
                continue;
            }
            for (a, &g) in gw_row.iter_mut().zip(g_row) {
                *a = x.mul_add(g, *a);
            }
        }
    }
}

/// The input's gradient of one output location, added to `gi` at the taps' locations `at`.
fn backward_input_at<T: Scalar>(
    conv: &ConvSpec,
    weights: &[T],
    at: &[Option<usize>; 9],
    g_row: &[T],
    gi: &mut [T],
) {
    let in_ch = conv.in_ch;
    for (loc, w_tap) in at
        .iter()
        .zip(weights.chunks_exact((in_ch * conv.out_ch).max(1)))
    {
        let Some(gi_row) = loc.and_then(|l| gi.get_mut(l * in_ch..(l + 1) * in_ch)) else {
            continue;
        };
        for (v, w_row) in gi_row
            .iter_mut()
            .zip(w_tap.chunks_exact(conv.out_ch.max(1)))
        {
            *v = *v + T::dot(w_row, g_row);
        }
    }
}

/// ReLU's backward pass: zeroes `grad[i]` wherever `output[i] <= 0` (`output` is the ReLU's
/// output), as PyTorch's `threshold_backward`.
///
/// # Errors
/// `LengthMismatch` unless the lengths agree (then nothing is written).
pub fn relu_backward<T: Real>(output: &[T], grad: &mut [T]) -> Result<(), Error> {
    length(output.len(), grad.len())?;
    for (g, &o) in grad.iter_mut().zip(output) {
        if o <= T::ZERO {
            *g = T::ZERO;
        }
    }
    Ok(())
}
