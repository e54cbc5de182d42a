//! The detector network: a backbone of 3x3 convolutions with ReLU and a RetinaNet-style head
//! of two 3x3 convolutions on its last feature map (classification `F -> A * C`, box
//! regression `F -> A * 4`, no activation on their outputs).
//!
//! ```text
//! params (one flat slice, params_len):
//!   [backbone layer 0 | layer 1 | ... | layer L-1 | cls conv | box conv]
//!   each layer: weights [ky][kx][in][out], then biases [out] (see ConvSpec)
//!   backbone_params() = 0..B,  head_params() = B..params_len  (cls_params(), box_params())
//! image:     H x W x channels (HWC)
//! acts:      the outputs of layers 0..L-1 except the last, one after the other (HWC, after ReLU)
//! features:  the last layer's output, fh x fw x F (HWC, after ReLU)
//! cls:       fh x fw x (A * C): cls[((y * fw + x) * A + a) * C + c]
//! boxes:     fh x fw x (A * 4): boxes[((y * fw + x) * A + a) * 4 + k]
//! ```
//! The head's outputs are therefore anchor-major with anchor index `i = (y * fw + x) * A + a`,
//! the order of [`Anchors`](crate::Anchors), so `cls` is the `scores` and `boxes` the `deltas`
//! of a [`HeadOutput`](crate::HeadOutput) without any permutation.
//!
//! # Initialisation ([`DetectorSpec::init`])
//! Backbone: He (Kaiming) uniform for ReLU, `U(-b, b)` with `b = sqrt(6 / fan_in)` and
//! `fan_in = 9 * in_ch` (PyTorch's `kaiming_uniform_(nonlinearity='relu')`), biases 0. Head:
//! normal with std 0.01 (RetinaNet's), box biases 0, classification biases the caller's value
//! (RetinaNet's prior `-ln((1 - 0.01) / 0.01)`). Drawn in f64 from a
//! [`SplitMix64`] (Box-Muller for the normals), in parameter order, then rounded to `T`:
//! the same seed gives the same weights on every target, and the Q15.16 weights are the
//! f64 ones rounded.
//!
//! # Errors
//! [`DetectorSpec::new`]: `InvalidParameter("backbone")` for 0 or more than [`MAX_LAYERS`]
//! layers or a layer whose input channels are not the previous output's (the first's: the
//! image's); `"height"`, `"width"`, `"channels"`, `"anchors"`, `"classes"` for a zero value;
//! `"size"` when a length overflows. Passes: `LengthMismatch` for every slice, in argument
//! order; `NonFinite` (index into that slice) for non-finite parameters, inputs or gradients;
//! `InvalidParameter("location")` for a location outside the feature map. Nothing is written
//! on `Err`.

use crate::conv::{backward_params_at, forward_at, mul, relu_backward, row, ConvSpec};
use crate::math::{all_finite, length, parameter};
use crate::scalar::Scalar;
use core::ops::Range;
use hardmine::{Error, Real, SplitMix64};

/// The most backbone layers a [`DetectorSpec`] holds.
pub const MAX_LAYERS: usize = 8;

/// The shapes of a detector: input size, backbone layers, anchors per location and classes.
///
/// # Examples
/// ```
/// use hardmine_detect::DetectorSpec;
/// let spec = DetectorSpec::tiny();
/// assert_eq!(spec.feature_hw(), (20, 20));
/// let mut params = vec![0.0f32; spec.params_len()];
/// let prior = -((1.0f64 - 0.01) / 0.01).ln() as f32;
/// spec.init(&mut hardmine::SplitMix64::new(1), prior, &mut params)?;
/// let image = vec![0.5f32; spec.image_len()];
/// let mut acts = vec![0.0f32; spec.activations_len()];
/// let mut features = vec![0.0f32; spec.features_len()];
/// spec.backbone_forward(&params, &image, &mut acts, &mut features)?;
/// let mut cls = vec![0.0f32; spec.cls_len()];
/// let mut boxes = vec![0.0f32; spec.box_len()];
/// spec.head_forward(&params, &features, &mut cls, &mut boxes)?;
/// assert_eq!(cls.len(), 20 * 20 * 6 * 10);
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DetectorSpec {
    height: usize,
    width: usize,
    channels: usize,
    layers: [ConvSpec; MAX_LAYERS],
    n_layers: usize,
    anchors: usize,
    classes: usize,
}

/// Layer `i`'s input size, and the feature map's (`i = n`).
fn hw_at(layers: &[ConvSpec], height: usize, width: usize, i: usize) -> (usize, usize) {
    layers
        .iter()
        .take(i)
        .fold((height, width), |(h, w), l| l.out_hw(h, w))
}

impl DetectorSpec {
    /// The CLI's detector: an 80 x 80 grey image; conv 1 -> 8 stride 2, 8 -> 16 stride 2,
    /// 16 -> 16 stride 1 (a 20 x 20 x 16 map at stride 4, receptive field 15 px, 23 px with the
    /// head's 3 x 3); 6 anchors per location and 10 classes.
    pub fn tiny() -> Self {
        let conv = |in_ch, out_ch, stride| ConvSpec {
            in_ch,
            out_ch,
            stride,
        };
        let mut layers = [conv(1, 1, 1); MAX_LAYERS];
        layers[0] = conv(1, 8, 2);
        layers[1] = conv(8, 16, 2);
        layers[2] = conv(16, 16, 1);
        Self {
            height: 80,
            width: 80,
            channels: 1,
            layers,
            n_layers: 3,
            anchors: 6,
            classes: 10,
        }
    }

    /// A detector on `height x width x channels` images with the `backbone` layers (each
    /// followed by ReLU), `anchors` per location and `classes`.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn new(
        height: usize,
        width: usize,
        channels: usize,
        backbone: &[ConvSpec],
        anchors: usize,
        classes: usize,
    ) -> Result<Self, Error> {
        parameter(height > 0, "height")?;
        parameter(width > 0, "width")?;
        parameter(channels > 0, "channels")?;
        parameter(anchors > 0, "anchors")?;
        parameter(classes > 0, "classes")?;
        parameter((1..=MAX_LAYERS).contains(&backbone.len()), "backbone")?;
        let mut in_ch = channels;
        let mut layers = [ConvSpec {
            in_ch: 1,
            out_ch: 1,
            stride: 1,
        }; MAX_LAYERS];
        for (slot, l) in layers.iter_mut().zip(backbone) {
            parameter(l.in_ch == in_ch, "backbone")?;
            in_ch = l.out_ch;
            *slot = *l;
        }
        let spec = Self {
            height,
            width,
            channels,
            layers,
            n_layers: backbone.len(),
            anchors,
            classes,
        };
        spec.checked_sizes()?;
        Ok(spec)
    }

    /// Every length the accessors compute, with checked arithmetic (so that they cannot
    /// overflow once this passed).
    fn checked_sizes(&self) -> Result<(), Error> {
        let add = |a: usize, b: usize| a.checked_add(b).ok_or(Error::InvalidParameter("size"));
        let f = self.feature_channels();
        let heads = [
            mul(self.anchors, self.classes, "size")?,
            mul(self.anchors, 4, "size")?,
        ];
        let (fh, fw) = self.feature_hw();
        let locations = mul(fh, fw, "size")?;
        let mut params = 0usize;
        let mut acts = mul(mul(self.height, self.width, "size")?, self.channels, "size")?;
        for (i, l) in self.backbone().iter().enumerate() {
            let conv = ConvSpec::new(l.in_ch, l.out_ch, l.stride)?;
            params = add(params, conv.params_len())?;
            let (h, w) = hw_at(self.backbone(), self.height, self.width, i + 1);
            acts = add(acts, mul(mul(h, w, "size")?, l.out_ch, "size")?)?;
        }
        for out in heads {
            let conv = ConvSpec::new(f, out, 1)?;
            params = add(params, conv.params_len())?;
            acts = add(acts, mul(locations, out, "size")?)?;
        }
        add(params, acts).map(|_| ())
    }

    /// The backbone's layers.
    pub fn backbone(&self) -> &[ConvSpec] {
        self.layers.get(..self.n_layers).unwrap_or(&[])
    }

    /// The classification branch, `F -> A * C`, stride 1.
    pub fn cls_conv(&self) -> ConvSpec {
        ConvSpec {
            in_ch: self.feature_channels(),
            out_ch: self.anchors * self.classes,
            stride: 1,
        }
    }

    /// The box branch, `F -> A * 4`, stride 1.
    pub fn box_conv(&self) -> ConvSpec {
        ConvSpec {
            in_ch: self.feature_channels(),
            out_ch: self.anchors * 4,
            stride: 1,
        }
    }

    /// Image `(height, width, channels)`.
    pub fn image_hwc(&self) -> (usize, usize, usize) {
        (self.height, self.width, self.channels)
    }

    /// Anchors per location (`A`).
    pub fn num_anchors(&self) -> usize {
        self.anchors
    }

    /// Classes (`C`).
    pub fn num_classes(&self) -> usize {
        self.classes
    }

    /// The feature map's channels `F` (the last layer's output channels).
    pub fn feature_channels(&self) -> usize {
        self.backbone().last().map_or(self.channels, |l| l.out_ch)
    }

    /// The feature map's `(height, width)`.
    pub fn feature_hw(&self) -> (usize, usize) {
        hw_at(self.backbone(), self.height, self.width, self.n_layers)
    }

    /// The feature map's stride in image pixels (the product of the layers' strides).
    pub fn feature_stride(&self) -> usize {
        self.backbone().iter().map(|l| l.stride).product()
    }

    /// Image values: `height * width * channels`.
    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Layer `i`'s output size `(h, w, channels)`.
    fn layer_out(&self, i: usize) -> (usize, usize, usize) {
        let (h, w) = hw_at(self.backbone(), self.height, self.width, i + 1);
        let c = self.backbone().get(i).map_or(0, |l| l.out_ch);
        (h, w, c)
    }

    /// Layer `i`'s output length.
    fn layer_out_len(&self, i: usize) -> usize {
        let (h, w, c) = self.layer_out(i);
        h * w * c
    }

    /// What [`backbone_forward`](Self::backbone_forward) keeps for the backward pass: the
    /// outputs of every backbone layer but the last (that one is the feature map).
    pub fn activations_len(&self) -> usize {
        (0..self.n_layers.saturating_sub(1))
            .map(|i| self.layer_out_len(i))
            .sum()
    }

    /// The scratch [`backbone_backward`](Self::backbone_backward) needs: the largest of
    /// the kept activations (0 for a single layer).
    pub fn scratch_len(&self) -> usize {
        (0..self.n_layers.saturating_sub(1))
            .map(|i| self.layer_out_len(i))
            .max()
            .unwrap_or(0)
    }

    /// Feature map values: `fh * fw * F`.
    pub fn features_len(&self) -> usize {
        let (fh, fw) = self.feature_hw();
        fh * fw * self.feature_channels()
    }

    /// Anchors over the feature map: `fh * fw * A`.
    pub fn anchors_len(&self) -> usize {
        let (fh, fw) = self.feature_hw();
        fh * fw * self.anchors
    }

    /// Classification outputs: `fh * fw * A * C`.
    pub fn cls_len(&self) -> usize {
        self.anchors_len() * self.classes
    }

    /// Box outputs: `fh * fw * A * 4`.
    pub fn box_len(&self) -> usize {
        self.anchors_len() * 4
    }

    /// A head patch (the 3 x 3 x F neighbourhood of one location): `9 * F`.
    pub fn patch_len(&self) -> usize {
        9 * self.feature_channels()
    }

    /// Parameters of the whole network.
    pub fn params_len(&self) -> usize {
        self.head_params().end
    }

    /// Layer `i`'s parameter range (empty past the last layer).
    pub fn layer_params(&self, i: usize) -> Range<usize> {
        let start: usize = self.backbone().iter().take(i).map(|l| l.params_len()).sum();
        let len = self.backbone().get(i).map_or(0, |l| l.params_len());
        start..start + len
    }

    /// The backbone's parameter range, `0..B`.
    pub fn backbone_params(&self) -> Range<usize> {
        0..self.backbone().iter().map(|l| l.params_len()).sum()
    }

    /// The head's parameter range (classification then box branch), `B..params_len()`.
    pub fn head_params(&self) -> Range<usize> {
        let b = self.backbone_params().end;
        b..self.box_params().end
    }

    /// The classification branch's parameter range.
    pub fn cls_params(&self) -> Range<usize> {
        let b = self.backbone_params().end;
        b..b + self.cls_conv().params_len()
    }

    /// The box branch's parameter range.
    pub fn box_params(&self) -> Range<usize> {
        let c = self.cls_params().end;
        c..c + self.box_conv().params_len()
    }

    /// Initialises `params` (see the module documentation), with `cls_bias` the
    /// classification biases.
    ///
    /// # Errors
    /// `LengthMismatch` for `params`; `NonFinite { index: 0 }` for a non-finite `cls_bias`.
    pub fn init<T: Scalar>(
        &self,
        rng: &mut SplitMix64,
        cls_bias: T,
        params: &mut [T],
    ) -> Result<(), Error> {
        length(self.params_len(), params.len())?;
        all_finite(&[cls_bias])?;
        let mut params_iter = params.iter_mut();
        for l in self.backbone() {
            let bound = Real::sqrt(6.0 / (9 * l.in_ch) as f64);
            for p in params_iter.by_ref().take(l.weights_len()) {
                *p = T::from_f64((2.0 * rng.unit_f64() - 1.0) * bound);
            }
            for p in params_iter.by_ref().take(l.out_ch) {
                *p = T::ZERO;
            }
        }
        for (conv, bias) in [(self.cls_conv(), cls_bias), (self.box_conv(), T::ZERO)] {
            for p in params_iter.by_ref().take(conv.weights_len()) {
                *p = T::from_f64(0.01 * normal(rng));
            }
            for p in params_iter.by_ref().take(conv.out_ch) {
                *p = bias;
            }
        }
        Ok(())
    }

    /// The backbone's forward pass: `image` (`image_len`) to `features` (`features_len`),
    /// keeping the intermediate outputs in `acts` (`activations_len`) for
    /// [`backbone_backward`](Self::backbone_backward).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn backbone_forward<T: Scalar>(
        &self,
        params: &[T],
        image: &[T],
        acts: &mut [T],
        features: &mut [T],
    ) -> Result<(), Error> {
        length(self.params_len(), params.len())?;
        length(self.image_len(), image.len())?;
        length(self.activations_len(), acts.len())?;
        length(self.features_len(), features.len())?;
        all_finite(params)?;
        all_finite(image)?;
        let mut offset = 0;
        for (i, l) in self.backbone().iter().enumerate() {
            let p = params.get(self.layer_params(i)).unwrap_or(&[]);
            let (h, w) = hw_at(self.backbone(), self.height, self.width, i);
            let len = self.layer_out_len(i);
            let last = i + 1 == self.n_layers;
            // The input (image or previous output) and this layer's output, split apart.
            let (done, rest) = acts.split_at_mut(offset.min(acts.len()));
            let input = if i == 0 {
                image
            } else {
                let prev = self.layer_out_len(i - 1);
                done.get(offset - prev..).unwrap_or(&[])
            };
            let out = if last {
                &mut *features
            } else {
                rest.get_mut(..len).unwrap_or(&mut [])
            };
            l.forward_unchecked(p, input, h, w, out, true);
            offset += len;
        }
        Ok(())
    }

    /// The head's forward pass on `features` (`features_len`): classification logits into
    /// `cls` (`cls_len`) and box deltas into `boxes` (`box_len`).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn head_forward<T: Scalar>(
        &self,
        params: &[T],
        features: &[T],
        cls: &mut [T],
        boxes: &mut [T],
    ) -> Result<(), Error> {
        length(self.params_len(), params.len())?;
        length(self.features_len(), features.len())?;
        length(self.cls_len(), cls.len())?;
        length(self.box_len(), boxes.len())?;
        all_finite(params)?;
        all_finite(features)?;
        let (fh, fw) = self.feature_hw();
        let head = [
            (self.cls_conv(), self.cls_params(), cls),
            (self.box_conv(), self.box_params(), boxes),
        ];
        for (conv, range, out) in head {
            let p = params.get(range).unwrap_or(&[]);
            conv.forward_unchecked(p, features, fh, fw, out, false);
        }
        Ok(())
    }

    /// The head's backward pass: given the loss's gradients with respect to `cls` and
    /// `boxes` (`g_cls`, `g_box`), adds the head parameters' gradient to `grad_head`
    /// (`head_params().len()`: the head's range of a gradient slice) and, when given,
    /// overwrites `grad_features` (`features_len`) with the features' gradient. Locations
    /// whose gradient rows are zero cost nothing.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn head_backward<T: Scalar>(
        &self,
        params: &[T],
        features: &[T],
        g_cls: &[T],
        g_box: &[T],
        grad_head: &mut [T],
        mut grad_features: Option<&mut [T]>,
    ) -> Result<(), Error> {
        length(self.params_len(), params.len())?;
        length(self.features_len(), features.len())?;
        length(self.cls_len(), g_cls.len())?;
        length(self.box_len(), g_box.len())?;
        length(self.head_params().len(), grad_head.len())?;
        if let Some(g) = grad_features.as_deref() {
            length(self.features_len(), g.len())?;
        }
        all_finite(params)?;
        all_finite(features)?;
        all_finite(g_cls)?;
        all_finite(g_box)?;
        let (fh, fw) = self.feature_hw();
        let (g_cls_params, g_box_params) =
            grad_head.split_at_mut(self.cls_conv().params_len().min(grad_head.len()));
        let head = [
            (self.cls_conv(), self.cls_params(), g_cls, g_cls_params),
            (self.box_conv(), self.box_params(), g_box, g_box_params),
        ];
        for (k, (conv, range, g, gp)) in head.into_iter().enumerate() {
            let p = params.get(range).unwrap_or(&[]);
            let gf = grad_features.as_deref_mut();
            conv.backward_unchecked(p, features, fh, fw, g, gp, gf, k > 0);
        }
        Ok(())
    }

    /// The backbone's backward pass (for training the whole network), after
    /// [`backbone_forward`](Self::backbone_forward) of the same `params` and `image` filled
    /// `acts` and `features`: given the loss's gradient with respect to the features
    /// (`grad_features`, e.g. from [`head_backward`](Self::head_backward)), adds the
    /// backbone parameters' gradient to `grad_backbone` (`backbone_params().len()`).
    /// `scratch` holds `scratch_len` values. On return `grad_features` holds the gradient
    /// before the last ReLU and `acts` the gradients of the intermediate outputs (the
    /// activations are consumed: run the forward pass again before another backward pass).
    ///
    /// # Errors
    /// See the module documentation.
    #[allow(clippy::too_many_arguments)]
    pub fn backbone_backward<T: Scalar>(
        &self,
        params: &[T],
        image: &[T],
        acts: &mut [T],
        features: &[T],
        grad_features: &mut [T],
        grad_backbone: &mut [T],
        scratch: &mut [T],
    ) -> Result<(), Error> {
        length(self.params_len(), params.len())?;
        length(self.image_len(), image.len())?;
        length(self.activations_len(), acts.len())?;
        length(self.features_len(), features.len())?;
        length(self.features_len(), grad_features.len())?;
        length(self.backbone_params().len(), grad_backbone.len())?;
        length(self.scratch_len(), scratch.len())?;
        all_finite(params)?;
        all_finite(image)?;
        all_finite(acts)?;
        all_finite(features)?;
        all_finite(grad_features)?;
        relu_backward(features, grad_features)?;
        // acts[offset(i)..] is layer i's output; after layer i + 1's backward pass it holds
        // the gradient with respect to that output.
        let offsets = |i: usize| -> usize { (0..i).map(|j| self.layer_out_len(j)).sum() };
        for i in (0..self.n_layers).rev() {
            let Some(l) = self.backbone().get(i) else {
                continue;
            };
            let p = params.get(self.layer_params(i)).unwrap_or(&[]);
            let gp = grad_backbone
                .get_mut(self.layer_params(i))
                .unwrap_or(&mut []);
            let (h, w) = hw_at(self.backbone(), self.height, self.width, i);
            if i == 0 {
                let g: &[T] = if self.n_layers == 1 {
                    grad_features
                } else {
                    acts.get(..self.layer_out_len(0)).unwrap_or(&[])
                };
                l.backward_unchecked(p, image, h, w, g, gp, None, false);
                continue;
            }
            let (in_start, in_len) = (offsets(i - 1), self.layer_out_len(i - 1));
            let gi = scratch.get_mut(..in_len).unwrap_or(&mut []);
            {
                let input = acts.get(in_start..in_start + in_len).unwrap_or(&[]);
                let g: &[T] = if i + 1 == self.n_layers {
                    grad_features
                } else {
                    acts.get(offsets(i)..offsets(i) + self.layer_out_len(i))
                        .unwrap_or(&[])
                };
                l.backward_unchecked(p, input, h, w, g, gp, Some(&mut *gi), false);
                relu_backward(input, gi)?;
            }
            if let Some(slot) = acts.get_mut(in_start..in_start + in_len) {
                slot.copy_from_slice(gi);
            }
        }
        Ok(())
    }

    /// Gathers the 3 x 3 x F neighbourhood of feature location `(y, x)` into `patch`
    /// (`patch_len`, `[ky][kx][F]`), zeros outside the map: the head's receptive field
    /// there, for [`head_forward_at`](Self::head_forward_at).
    ///
    /// # Errors
    /// `InvalidParameter("location")` outside the map; `LengthMismatch`.
    pub fn patch_at<T: Scalar>(
        &self,
        features: &[T],
        y: usize,
        x: usize,
        patch: &mut [T],
    ) -> Result<(), Error> {
        let (fh, fw) = self.feature_hw();
        parameter(y < fh && x < fw, "location")?;
        length(self.features_len(), features.len())?;
        length(self.patch_len(), patch.len())?;
        let taps = self.cls_conv().taps(features, fh, fw, y, x);
        for (tap, dst) in taps
            .iter()
            .zip(patch.chunks_exact_mut(self.feature_channels().max(1)))
        {
            match tap {
                Some(src) => dst.copy_from_slice(src),
                None => dst.fill(T::ZERO),
            }
        }
        Ok(())
    }

    /// The head at one location from its `patch` (see [`patch_at`](Self::patch_at)):
    /// `A * C` logits into `cls_out` and `A * 4` deltas into `box_out`, equal bit for bit to
    /// [`head_forward`](Self::head_forward)'s at that location when the patch is the
    /// gathered one (an edited patch gives the head's answer to the edited features).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn head_forward_at<T: Scalar>(
        &self,
        params: &[T],
        patch: &[T],
        cls_out: &mut [T],
        box_out: &mut [T],
    ) -> Result<(), Error> {
        length(self.params_len(), params.len())?;
        length(self.patch_len(), patch.len())?;
        length(self.anchors * self.classes, cls_out.len())?;
        length(self.anchors * 4, box_out.len())?;
        all_finite(params)?;
        all_finite(patch)?;
        let taps = self.patch_taps(patch);
        for (conv, range, out) in [
            (self.cls_conv(), self.cls_params(), cls_out),
            (self.box_conv(), self.box_params(), box_out),
        ] {
            let p = params.get(range).unwrap_or(&[]);
            let (weights, bias) = p.split_at(conv.weights_len().min(p.len()));
            forward_at(&conv, weights, bias, &taps, out, false);
        }
        Ok(())
    }

    /// The head parameters' gradient at one location (it does not depend on the
    /// parameters): given the gradients `g_cls` (`A * C`)
    /// and `g_box` (`A * 4`) of [`head_forward_at`](Self::head_forward_at)'s outputs on
    /// `patch`, adds to `grad_head` (`head_params().len()`). Equal to
    /// [`head_backward`](Self::head_backward) with those rows at that location and zeros
    /// elsewhere.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn head_backward_at<T: Scalar>(
        &self,
        patch: &[T],
        g_cls: &[T],
        g_box: &[T],
        grad_head: &mut [T],
    ) -> Result<(), Error> {
        length(self.patch_len(), patch.len())?;
        length(self.anchors * self.classes, g_cls.len())?;
        length(self.anchors * 4, g_box.len())?;
        length(self.head_params().len(), grad_head.len())?;
        all_finite(patch)?;
        all_finite(g_cls)?;
        all_finite(g_box)?;
        let taps = self.patch_taps(patch);
        let (g_cls_params, g_box_params) =
            grad_head.split_at_mut(self.cls_conv().params_len().min(grad_head.len()));
        for (conv, g, gp) in [
            (self.cls_conv(), g_cls, g_cls_params),
            (self.box_conv(), g_box, g_box_params),
        ] {
            if g.iter().all(|v| *v == T::ZERO) {
                continue;
            }
            let (gw, gb) = gp.split_at_mut(conv.weights_len().min(gp.len()));
            backward_params_at(&conv, &taps, g, gw, gb);
        }
        Ok(())
    }

    /// A patch's 9 rows as taps.
    fn patch_taps<'a, T>(&self, patch: &'a [T]) -> [Option<&'a [T]>; 9] {
        let f = self.feature_channels();
        core::array::from_fn(|t| row(patch, t, f))
    }
}

/// A standard normal draw (Box-Muller, the cosine half), in f64.
fn normal(rng: &mut SplitMix64) -> f64 {
    let u1 = 1.0 - rng.unit_f64(); // (0, 1]
    let u2 = rng.unit_f64();
    let r = Real::sqrt(-2.0 * hardmine::kernels::ln(u1));
    r * hardmine::kernels::sin_cos(core::f64::consts::TAU * u2).1
}
