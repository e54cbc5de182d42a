//! A-Fast-RCNN's learned adversaries (Wang, Shrivastava, Gupta, CVPR 2017) on the head's
//! 3 x 3 window of feature cells around a positive: [`Asdn`], which scores the window's cells
//! for dropping, and [`Astn`], which predicts one rotation angle per channel block.
//!
//! ```text
//! window (patch):  the head's receptive field at a positive, 3 x 3 x F, HWC ([ky][kx][F]),
//!                  as DetectorSpec::patch_at gathers it
//!
//! ASDN:  patch --3x3 conv F -> H, padding 1, ReLU--> hidden 3 x 3 x H
//!              --3x3 conv H -> 9, no padding (one output per cell)--> 9 cell logits
//!   params: [conv weights [ky][kx][F][H] | conv biases [H] | read-out [cell][9 H] | biases [9]]
//!
//! ASTN:  input (ASDN's masked patch, 9 F) --linear 9F -> H, ReLU--> hidden [H]
//!              --linear H -> B--> z [B];  angle_b = clamp(m * tanh(z_b), -m, m),  m = 10 deg
//!   params: [W1 [H][9F] | b1 [H] | W2 [B][H] | b2 [B]]
//! ```
//!
//! The read-out is a second 3 x 3 convolution without padding, so each cell's score has its
//! own weights: a convolution shared over the cells cannot tell a corner cell from the
//! centre, whose occlusion the head (with its own weights per tap) answers differently.
//!
//! # Training
//! - ASDN **pretraining** ([`Asdn::pretrain_grad`]): binary cross-entropy of the 9 logits
//!   against the occlusion search's target map (the cell whose dropping hurts the detector
//!   most: `hardmine::OcclusionSearch::target_map`), the mean over the cells; the detector
//!   fixed, as the released code pretrains it.
//! - ASDN **adversarial** update ([`Asdn::adversarial_grad`]): a mask is sampled from the
//!   scores (`hardmine::DropoutMask`: pick among the top cells), the detector's classification
//!   loss is measured with and without it, and ASDN's loss is BCE on the dropped cells only,
//!   toward 1 (drop it again) when the mask raised the detector's loss and toward 0 when it
//!   did not: the paper's "push the scores toward the masks that raised the loss, away from
//!   those that did not", with the sign of the change as the label (the released code's hard
//!   labels), not its size. The kept cells carry no information from that sample and get no
//!   gradient.
//! - ASTN: trained by gradient **ascent** on the detector's loss: the caller passes the
//!   angles' gradient of the detector loss (`ChannelBlockRotation::backward`) negated to
//!   [`Astn::backward`] and steps the result with a minimising [`Sgd`](crate::Sgd).
//!
//! # The angle bound
//! `angle = m * tanh(z)` keeps every angle inside `(-m, m)`, `m` = 10 degrees (the paper's
//! +-10), and its gradient `m (1 - tanh^2)` shrinks smoothly at the bound instead of vanishing
//! at a clip. `tanh` is `2 sigmoid(2 z) - 1` (the core's sigmoid, on every path); the result is
//! then clamped to `[-m, m]` with `m` rounded to `T` as `ChannelBlockRotation` rounds it, so a
//! rounding at the bound (Q15.16, or f32's tanh reaching 1) can never leave it. The backward
//! pass takes `1 - tanh^2` from the angle itself, `(m^2 - angle^2) / m`: 0 at the bound.
//!
//! # Memory
//! [`Asdn::tiny`] (F 16, H 8) and [`Astn::tiny`] (F 16, H 16, 4 blocks): see the crate's
//! memory table.
//!
//! # Errors
//! Constructors: `InvalidParameter("features")`, `("hidden")`, `("blocks")` for a zero count
//! (or more blocks than features or [`MAX_BLOCKS`]), `("size")` on overflow. Passes: `LengthMismatch` for every
//! slice, in argument order; `NonFinite` (index into that slice) for non-finite parameters,
//! inputs or gradients; `InvalidTarget` (its index) for a target or mask value other than 0 and 1. Nothing
//! is written on `Err`.

use crate::conv::{mul, ConvSpec};
use crate::math::{all_finite, length, parameter};
use crate::scalar::Scalar;
use crate::DetectorSpec;
use hardmine::{BceWithLogits, Error, Real, SplitMix64};

/// Cells of the head's window (3 x 3).
pub const CELLS: usize = 9;

/// The paper's angle bound, 10 degrees, in radians.
pub const MAX_ANGLE: f64 = 10.0 * core::f64::consts::PI / 180.0;

/// The most channel blocks an [`Astn`] predicts angles for.
pub const MAX_BLOCKS: usize = 64;

/// `a + b`, or `InvalidParameter("size")` on overflow.
fn add(a: usize, b: usize) -> Result<usize, Error> {
    a.checked_add(b).ok_or(Error::InvalidParameter("size"))
}

/// `U(-b, b)` draws in f64, rounded to `T`.
fn uniform<T: Scalar>(rng: &mut SplitMix64, bound: f64, out: &mut [T]) {
    for p in out {
        *p = T::from_f64((2.0 * rng.unit_f64() - 1.0) * bound);
    }
}

/// Checks that every value is 0 or 1.
fn binary<T: Real>(xs: &[T]) -> Result<(), Error> {
    match xs.iter().position(|&v| v != T::ZERO && v != T::ONE) {
        None => Ok(()),
        Some(index) => Err(Error::InvalidTarget { index }),
    }
}

/// `out[o] = b[o] + sum_i W[o][i] x[i]` (`W` row-major `[out][in]`), ReLU when `relu`.
fn linear<T: Scalar>(weights: &[T], bias: &[T], x: &[T], out: &mut [T], relu: bool) {
    for ((o, row), &b) in out
        .iter_mut()
        .zip(weights.chunks_exact(x.len().max(1)))
        .zip(bias)
    {
        let v = T::dot(row, x) + b;
        *o = if relu { v.max(T::ZERO) } else { v };
    }
}

/// The backward pass of [`linear`] (before its ReLU): adds `g[o] x[i]` to `gw[o][i]` and
/// `g[o]` to `gb[o]`; overwrites `gx` (when given) with `sum_o W[o][i] g[o]`.
fn linear_backward<T: Scalar>(
    weights: &[T],
    x: &[T],
    g: &[T],
    gw: &mut [T],
    gb: &mut [T],
    gx: Option<&mut [T]>,
) {
    let n = x.len().max(1);
    for ((row, &go), b) in gw.chunks_exact_mut(n).zip(g).zip(gb.iter_mut()) {
        *b = *b + go;
        if go == T::ZERO {
            continue;
        }
        for (w, &xi) in row.iter_mut().zip(x) {
            *w = *w + go * xi;
        }
    }
    if let Some(gx) = gx {
        gx.iter_mut().for_each(|v| *v = T::ZERO);
        for (row, &go) in weights.chunks_exact(n).zip(g) {
            if go == T::ZERO {
                continue;
            }
            for (v, &w) in gx.iter_mut().zip(row) {
                *v = *v + w * go;
            }
        }
    }
}

/// ReLU's backward pass on validated slices: zero where the output is not positive.
fn relu_back<T: Real>(out: &[T], g: &mut [T]) {
    for (g, &o) in g.iter_mut().zip(out) {
        if o <= T::ZERO {
            *g = T::ZERO;
        }
    }
}

/// The adversarial spatial dropout network: cell scores (logits) of a positive's window.
///
/// # Examples
/// ```
/// use hardmine_detect::Asdn;
/// let asdn = Asdn::tiny();
/// let mut params = vec![0.0f32; asdn.params_len()];
/// asdn.init(&mut hardmine::SplitMix64::new(3), &mut params)?;
/// let patch = vec![0.5f32; asdn.patch_len()];
/// let mut hidden = vec![0.0f32; asdn.hidden_len()];
/// let mut scores = [0.0f32; 9];
/// asdn.forward(&params, &patch, &mut hidden, &mut scores)?;
/// assert!(scores.iter().all(|s| s.is_finite()));
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Asdn {
    features: usize,
    hidden: usize,
}

impl Asdn {
    /// The job's ASDN: over [`DetectorSpec::tiny`]'s 16 feature channels, 8 hidden.
    pub fn tiny() -> Self {
        Self {
            features: 16,
            hidden: 8,
        }
    }

    /// An ASDN over windows of `features` channels with `hidden` channels.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn new(features: usize, hidden: usize) -> Result<Self, Error> {
        parameter(features > 0, "features")?;
        parameter(hidden > 0, "hidden")?;
        let conv =
            ConvSpec::new(features, hidden, 1).map_err(|_| Error::InvalidParameter("size"))?;
        let h = mul(CELLS, hidden, "size")?;
        add(add(conv.params_len(), mul(CELLS, h, "size")?)?, CELLS)?;
        mul(CELLS, features, "size")?;
        Ok(Self { features, hidden })
    }

    /// The first convolution, `F -> H`, stride 1.
    pub fn conv(&self) -> ConvSpec {
        ConvSpec {
            in_ch: self.features,
            out_ch: self.hidden,
            stride: 1,
        }
    }

    /// Feature channels `F`.
    pub fn features(&self) -> usize {
        self.features
    }

    /// A window's values: `9 * F`.
    pub fn patch_len(&self) -> usize {
        CELLS * self.features
    }

    /// The hidden map (kept for the backward pass): `9 * H`.
    pub fn hidden_len(&self) -> usize {
        CELLS * self.hidden
    }

    /// Parameters: the convolution's, the read-out's `9 * 9 H` weights and 9 biases.
    pub fn params_len(&self) -> usize {
        self.conv().params_len() + CELLS * self.hidden_len() + CELLS
    }

    /// He-uniform convolution (`sqrt(6 / 9 F)`), read-out `U(-1/sqrt(9 H), 1/sqrt(9 H))`
    /// (PyTorch's default for a layer of that fan-in), biases 0; drawn in f64 in parameter
    /// order and rounded to `T`.
    ///
    /// # Errors
    /// `LengthMismatch` for `params`.
    pub fn init<T: Scalar>(&self, rng: &mut SplitMix64, params: &mut [T]) -> Result<(), Error> {
        length(self.params_len(), params.len())?;
        let conv = self.conv();
        let (cw, rest) = params.split_at_mut(conv.weights_len());
        let (cb, rest) = rest.split_at_mut(conv.out_ch);
        let (rw, rb) = rest.split_at_mut(CELLS * self.hidden_len());
        uniform(rng, Real::sqrt(6.0 / (9 * self.features) as f64), cw);
        cb.iter_mut().for_each(|v| *v = T::ZERO);
        uniform(rng, 1.0 / Real::sqrt(self.hidden_len() as f64), rw);
        rb.iter_mut().for_each(|v| *v = T::ZERO);
        Ok(())
    }

    /// `(conv, read-out weights, read-out biases)` of validated parameters.
    fn split<'a, T>(&self, params: &'a [T]) -> (&'a [T], &'a [T], &'a [T]) {
        let c = self.conv().params_len().min(params.len());
        let (conv, rest) = params.split_at(c);
        let (rw, rb) = rest.split_at((CELLS * self.hidden_len()).min(rest.len()));
        (conv, rw, rb)
    }

    /// The cell logits of `patch` (`patch_len`, HWC) into `scores` (9, row-major cells),
    /// keeping the hidden map in `hidden` (`hidden_len`).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn forward<T: Scalar>(
        &self,
        params: &[T],
        patch: &[T],
        hidden: &mut [T],
        scores: &mut [T],
    ) -> Result<(), Error> {
        length(self.params_len(), params.len())?;
        length(self.patch_len(), patch.len())?;
        length(self.hidden_len(), hidden.len())?;
        length(CELLS, scores.len())?;
        all_finite(params)?;
        all_finite(patch)?;
        let (conv, rw, rb) = self.split(params);
        self.conv()
            .forward_unchecked(conv, patch, 3, 3, hidden, true);
        linear(rw, rb, hidden, scores, false);
        Ok(())
    }

    /// The backward pass after [`forward`](Self::forward) of the same `params` and `patch`
    /// filled `hidden`: given the loss's gradient of the scores (`g_scores`, 9), adds the
    /// parameters' gradient to `grads` (`params_len`). `g_hidden` (`hidden_len`) is scratch.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn backward<T: Scalar>(
        &self,
        params: &[T],
        patch: &[T],
        hidden: &[T],
        g_scores: &[T],
        g_hidden: &mut [T],
        grads: &mut [T],
    ) -> Result<(), Error> {
        length(self.params_len(), params.len())?;
        length(self.patch_len(), patch.len())?;
        length(self.hidden_len(), hidden.len())?;
        length(CELLS, g_scores.len())?;
        length(self.hidden_len(), g_hidden.len())?;
        length(self.params_len(), grads.len())?;
        all_finite(params)?;
        all_finite(patch)?;
        all_finite(hidden)?;
        all_finite(g_scores)?;
        let (conv, rw, _) = self.split(params);
        let c = self.conv().params_len();
        let (g_conv, g_rest) = grads.split_at_mut(c);
        let (g_rw, g_rb) = g_rest.split_at_mut(CELLS * self.hidden_len());
        linear_backward(rw, hidden, g_scores, g_rw, g_rb, Some(&mut *g_hidden));
        relu_back(hidden, g_hidden);
        self.conv()
            .backward_unchecked(conv, patch, 3, 3, g_hidden, g_conv, None, false);
        Ok(())
    }

    /// Pretraining's loss: BCE of the `scores` against the search's `target` map (9 values, 0
    /// or 1), the mean over the cells; its gradient into `g_scores`.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn pretrain_grad<T: Scalar>(
        &self,
        scores: &[T],
        target: &[T],
        g_scores: &mut [T],
    ) -> Result<T, Error> {
        length(CELLS, scores.len())?;
        length(CELLS, target.len())?;
        length(CELLS, g_scores.len())?;
        all_finite(scores)?;
        all_finite(target)?;
        binary(target)?;
        BceWithLogits::new().value_and_grad(scores, target, None, g_scores)
    }

    /// The adversarial loss of one sampled `mask` (9 values, 0: dropped, 1: kept, as
    /// `DropoutMask::sample` writes them): BCE of the dropped cells' `scores` toward 1 when
    /// the mask `raised` the detector's loss, toward 0 otherwise, the mean over the dropped
    /// cells (0 and a zero gradient when none is dropped); its gradient into `g_scores`.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn adversarial_grad<T: Scalar>(
        &self,
        scores: &[T],
        mask: &[T],
        raised: bool,
        g_scores: &mut [T],
    ) -> Result<T, Error> {
        length(CELLS, scores.len())?;
        length(CELLS, mask.len())?;
        length(CELLS, g_scores.len())?;
        all_finite(scores)?;
        all_finite(mask)?;
        binary(mask)?;
        let dropped = mask.iter().filter(|&&m| m == T::ZERO).count();
        if dropped == 0 {
            g_scores.iter_mut().for_each(|g| *g = T::ZERO);
            return Ok(T::ZERO);
        }
        let label = if raised { T::ONE } else { T::ZERO };
        let mut targets = [T::ZERO; CELLS];
        let mut weights = [T::ZERO; CELLS];
        for ((t, w), &m) in targets.iter_mut().zip(weights.iter_mut()).zip(mask) {
            if m == T::ZERO {
                *t = label;
                *w = T::ONE;
            }
        }
        BceWithLogits::new()
            .with_avg_factor(T::from_count(dropped as u64))?
            .value_and_grad(scores, &targets, Some(&weights), g_scores)
    }
}

/// The adversarial spatial transformer network: one rotation angle per channel block of a
/// window, bounded to `+-MAX_ANGLE` (see the module documentation).
///
/// # Examples
/// ```
/// use hardmine_detect::{Astn, MAX_ANGLE};
/// let astn = Astn::tiny();
/// let mut params = vec![0.0f32; astn.params_len()];
/// astn.init(&mut hardmine::SplitMix64::new(3), &mut params)?;
/// let patch = vec![100.0f32; astn.patch_len()];
/// let mut hidden = vec![0.0f32; astn.hidden_len()];
/// let mut angles = [0.0f32; 4];
/// astn.forward(&params, &patch, &mut hidden, &mut angles)?;
/// assert!(angles.iter().all(|a| a.abs() <= MAX_ANGLE as f32));
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Astn {
    features: usize,
    hidden: usize,
    blocks: usize,
}

impl Astn {
    /// The job's ASTN: 16 feature channels, 16 hidden, 4 channel blocks.
    pub fn tiny() -> Self {
        Self {
            features: 16,
            hidden: 16,
            blocks: 4,
        }
    }

    /// An ASTN over windows of `features` channels, `hidden` units and `blocks` angles.
    ///
    /// # Errors
    /// See the module documentation.
    pub fn new(features: usize, hidden: usize, blocks: usize) -> Result<Self, Error> {
        parameter(features > 0, "features")?;
        parameter(hidden > 0, "hidden")?;
        parameter((1..=features.min(MAX_BLOCKS)).contains(&blocks), "blocks")?;
        let input = mul(CELLS, features, "size")?;
        let first = add(mul(input, hidden, "size")?, hidden)?;
        let second = add(mul(hidden, blocks, "size")?, blocks)?;
        add(first, second)?;
        Ok(Self {
            features,
            hidden,
            blocks,
        })
    }

    /// Channel blocks (angles).
    pub fn blocks(&self) -> usize {
        self.blocks
    }

    /// A window's values: `9 * F`.
    pub fn patch_len(&self) -> usize {
        CELLS * self.features
    }

    /// Hidden units (kept for the backward pass): `H`.
    pub fn hidden_len(&self) -> usize {
        self.hidden
    }

    /// Parameters: `9 F * H + H + H * B + B`.
    pub fn params_len(&self) -> usize {
        self.patch_len() * self.hidden + self.hidden + self.hidden * self.blocks + self.blocks
    }

    /// The bound `m` in `T`, rounded as `ChannelBlockRotation` rounds its default.
    pub fn max_angle<T: Real>(&self) -> T {
        T::from_f64(MAX_ANGLE)
    }

    /// Both layers `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, biases 0 (PyTorch's default for the
    /// weights), in f64, parameter order, rounded to `T`.
    ///
    /// # Errors
    /// `LengthMismatch` for `params`.
    pub fn init<T: Scalar>(&self, rng: &mut SplitMix64, params: &mut [T]) -> Result<(), Error> {
        length(self.params_len(), params.len())?;
        let (w1, b1, w2, b2) = self.split_mut(params);
        uniform(rng, 1.0 / Real::sqrt(self.patch_len() as f64), w1);
        b1.iter_mut().for_each(|v| *v = T::ZERO);
        uniform(rng, 1.0 / Real::sqrt(self.hidden as f64), w2);
        b2.iter_mut().for_each(|v| *v = T::ZERO);
        Ok(())
    }

    fn split<'a, T>(&self, p: &'a [T]) -> (&'a [T], &'a [T], &'a [T], &'a [T]) {
        let (w1, rest) = p.split_at((self.patch_len() * self.hidden).min(p.len()));
        let (b1, rest) = rest.split_at(self.hidden.min(rest.len()));
        let (w2, b2) = rest.split_at((self.hidden * self.blocks).min(rest.len()));
        (w1, b1, w2, b2)
    }

    #[allow(clippy::type_complexity)]
    fn split_mut<'a, T>(
        &self,
        p: &'a mut [T],
    ) -> (&'a mut [T], &'a mut [T], &'a mut [T], &'a mut [T]) {
        let n1 = (self.patch_len() * self.hidden).min(p.len());
        let (w1, rest) = p.split_at_mut(n1);
        let (b1, rest) = rest.split_at_mut(self.hidden.min(rest.len()));
        let (w2, b2) = rest.split_at_mut((self.hidden * self.blocks).min(rest.len()));
        (w1, b1, w2, b2)
    }

    /// The angles of `patch` (`patch_len`, HWC: ASDN's masked window) into `angles`
    /// (`blocks`, radians, within `+-max_angle`), keeping the hidden units in `hidden`
    /// (`hidden_len`).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn forward<T: Scalar>(
        &self,
        params: &[T],
        patch: &[T],
        hidden: &mut [T],
        angles: &mut [T],
    ) -> Result<(), Error> {
        length(self.params_len(), params.len())?;
        length(self.patch_len(), patch.len())?;
        length(self.hidden_len(), hidden.len())?;
        length(self.blocks, angles.len())?;
        all_finite(params)?;
        all_finite(patch)?;
        let (w1, b1, w2, b2) = self.split(params);
        linear(w1, b1, patch, hidden, true);
        linear(w2, b2, hidden, angles, false);
        let m = self.max_angle::<T>();
        let two = T::ONE + T::ONE;
        for a in angles.iter_mut() {
            let tanh = two * (two * *a).sigmoid() - T::ONE;
            *a = (m * tanh).max(T::ZERO - m).min(m);
        }
        Ok(())
    }

    /// The backward pass after [`forward`](Self::forward) of the same `params` and `patch`
    /// gave `hidden` and `angles`: given a loss's gradient of the angles (`g_angles`,
    /// `blocks`; pass the detector loss's gradient negated for gradient ascent), adds the
    /// parameters' gradient to `grads` (`params_len`). `g_hidden` (`hidden_len`) is scratch.
    ///
    /// # Errors
    /// See the module documentation.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<T: Scalar>(
        &self,
        params: &[T],
        patch: &[T],
        hidden: &[T],
        angles: &[T],
        g_angles: &[T],
        g_hidden: &mut [T],
        grads: &mut [T],
    ) -> Result<(), Error> {
        length(self.params_len(), params.len())?;
        length(self.patch_len(), patch.len())?;
        length(self.hidden_len(), hidden.len())?;
        length(self.blocks, angles.len())?;
        length(self.blocks, g_angles.len())?;
        length(self.hidden_len(), g_hidden.len())?;
        length(self.params_len(), grads.len())?;
        all_finite(params)?;
        all_finite(patch)?;
        all_finite(hidden)?;
        all_finite(angles)?;
        all_finite(g_angles)?;
        let m = self.max_angle::<T>();
        // dz = g * m (1 - tanh^2) = g * (m^2 - angle^2) / m.
        let mut g_z = [T::ZERO; MAX_BLOCKS];
        for ((gz, &g), &a) in g_z.iter_mut().zip(g_angles).zip(angles) {
            *gz = g * ((m * m - a * a) / m).max(T::ZERO);
        }
        let g_z = g_z.get(..self.blocks).unwrap_or(&[]);
        let (_, _, w2, _) = self.split(params);
        let (g_w1, g_b1, g_w2, g_b2) = self.split_mut(grads);
        linear_backward(w2, hidden, g_z, g_w2, g_b2, Some(&mut *g_hidden));
        relu_back(hidden, g_hidden);
        linear_backward(&[], patch, g_hidden, g_w1, g_b1, None);
        Ok(())
    }
}

/// The gradient of a loss with respect to the head's window `patch` at one location, given
/// its gradients `g_cls` (`A * C`) and `g_box` (`A * 4`) of
/// [`DetectorSpec::head_forward_at`]'s outputs: overwrites `g_patch` (`patch_len`, HWC).
/// The head is linear in its window, so this does not need the patch.
///
/// # Errors
/// `LengthMismatch` for `params`, `g_cls`, `g_box`, `g_patch`; `NonFinite` for parameters or
/// gradients. Nothing is written on `Err`.
pub fn patch_gradient<T: Scalar>(
    spec: &DetectorSpec,
    params: &[T],
    g_cls: &[T],
    g_box: &[T],
    g_patch: &mut [T],
) -> Result<(), Error> {
    length(spec.params_len(), params.len())?;
    length(spec.num_anchors() * spec.num_classes(), g_cls.len())?;
    length(spec.num_anchors() * 4, g_box.len())?;
    length(spec.patch_len(), g_patch.len())?;
    all_finite(params)?;
    all_finite(g_cls)?;
    all_finite(g_box)?;
    g_patch.iter_mut().for_each(|v| *v = T::ZERO);
    for (conv, range, g) in [
        (spec.cls_conv(), spec.cls_params(), g_cls),
        (spec.box_conv(), spec.box_params(), g_box),
    ] {
        if g.iter().all(|v| *v == T::ZERO) {
            continue;
        }
        let p = params.get(range).unwrap_or(&[]);
        let weights = p.get(..conv.weights_len()).unwrap_or(&[]);
        // Weight (tap, in, out) at (tap * F + in) * O + out: one row of O per patch value.
        for (v, row) in g_patch.iter_mut().zip(weights.chunks_exact(conv.out_ch)) {
            *v = *v + T::dot(row, g);
        }
    }
    Ok(())
}

/// HWC `3 x 3 x f` (`hwc`, the head's window) to CHW `f x 3 x 3` (`chw`), the layout of the
/// core's adversaries (`OcclusionSearch`, `DropoutMask`, `ChannelBlockRotation`).
///
/// # Errors
/// `LengthMismatch` unless both hold `9 * f` values; then nothing is written.
pub fn to_chw<T: Copy>(hwc: &[T], f: usize, chw: &mut [T]) -> Result<(), Error> {
    transpose(hwc, CELLS, f, chw)
}

/// CHW `f x 3 x 3` (`chw`) to HWC `3 x 3 x f` (`hwc`), the inverse of [`to_chw`].
///
/// # Errors
/// `LengthMismatch` unless both hold `9 * f` values; then nothing is written.
pub fn from_chw<T: Copy>(chw: &[T], f: usize, hwc: &mut [T]) -> Result<(), Error> {
    transpose(chw, f, CELLS, hwc)
}

/// `dst[c * rows + r] = src[r * cols + c]`: the `rows x cols` matrix `src` transposed. One of
/// `rows`, `cols` is [`CELLS`], so their product is the window's `9 * f` values.
fn transpose<T: Copy>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) -> Result<(), Error> {
    let n = rows
        .checked_mul(cols)
        .ok_or(Error::InvalidParameter("size"))?;
    length(n, src.len())?;
    length(n, dst.len())?;
    for (r, row) in src.chunks_exact(cols.max(1)).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            if let Some(d) = dst.get_mut(c * rows + r) {
                *d = v;
            }
        }
    }
    Ok(())
}

/// Zeroes the cells of an HWC window (`patch`, `9 * f`) whose `mask` value (9) is 0, as
/// `DropoutMask::apply` does on CHW.
///
/// # Errors
/// `LengthMismatch`; `InvalidTarget` for a mask value other than 0 and 1. Nothing is written
/// on `Err`.
pub fn apply_mask<T: Real>(mask: &[T], f: usize, patch: &mut [T]) -> Result<(), Error> {
    let n = CELLS
        .checked_mul(f)
        .ok_or(Error::InvalidParameter("size"))?;
    length(CELLS, mask.len())?;
    length(n, patch.len())?;
    binary(mask)?;
    for (cell, &m) in patch.chunks_exact_mut(f.max(1)).zip(mask) {
        if m == T::ZERO {
            cell.iter_mut().for_each(|v| *v = T::ZERO);
        }
    }
    Ok(())
}
