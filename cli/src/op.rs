//! The names the command speaks: one [`Op`] enum for every computation `parity` and `bench` run,
//! and one [`Path`] enum for the numeric paths. Their spellings are the op names of
//! golden/README.md; `clap` and `serde` both derive them from the variants (snake case).

use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A computation of the library, by its canonical (golden/README.md) name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, Serialize, Deserialize,
)]
#[value(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Binary cross-entropy on logits (PyTorch `binary_cross_entropy_with_logits`).
    BceWithLogits,
    /// Sigmoid focal loss on soft or hard targets (torchvision `sigmoid_focal_loss`).
    SigmoidFocal,
    /// Sigmoid focal loss on class labels, `[rows x classes]` logits.
    SigmoidFocalLabels,
    /// Softmax cross-entropy over classes (PyTorch `cross_entropy`).
    SoftmaxCrossEntropy,
    /// Softmax focal loss (mmcv).
    SoftmaxFocal,
    /// Smooth L1 box regression (PyTorch `smooth_l1_loss`).
    SmoothL1,
    /// Gradient-harmonised classification loss (mmdetection `GHMC`), stateful.
    GhmC,
    /// Gradient-harmonised regression loss (mmdetection `GHMR`), stateful.
    GhmR,
    /// Online hard-example mining: the `k` largest losses, optionally with box NMS.
    Ohem,
    /// OHEM with box NMS at IoU 0.7 (bench only: golden `ohem` cases carry `nms_iou`).
    OhemNms,
    /// Stratified OHEM: `k` examples from strata of the combined loss.
    Sohem,
    /// The positive/negative balanced random sampler.
    BalancedSampler,
    /// A-Fast-RCNN's occlusion search over windows of a feature map.
    OcclusionSearch,
    /// A-Fast-RCNN's channel-block rotation, forward and backward.
    RotateBlocks,
}

impl Op {
    /// Every op, in the order of golden/README.md and then the bench-only ones.
    pub fn all() -> &'static [Op] {
        Op::value_variants()
    }

    /// The op's canonical name.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A numeric path: the type the library computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
#[value(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Path {
    /// Double precision.
    F64,
    /// Single precision.
    F32,
    /// Q15.16 fixed point.
    Fixed,
    /// CUDA (f32 on the device; a build with the `gpu` feature).
    Gpu,
}

impl Path {
    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Path::F64 => "f64",
            Path::F32 => "f32",
            Path::Fixed => "fixed",
            Path::Gpu => "gpu",
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why something was not run: the op or the path is not available here (not in this build, no
/// device, no kernel for it). `parity --check` counts it as skipped; every other error fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

impl Unsupported {
    /// Whether `e` is (or wraps) an [`Unsupported`].
    pub fn is(e: &anyhow::Error) -> bool {
        e.downcast_ref::<Unsupported>().is_some()
    }
}

/// The error of an op `command` has no entry for on `path` (or at all).
pub fn unsupported(what: impl fmt::Display) -> anyhow::Error {
    anyhow::Error::new(Unsupported(what.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_and_serde_spell_every_op_and_path_alike() {
        for op in Op::all() {
            let serde = serde_json::to_string(op).unwrap_or_default();
            assert_eq!(serde, format!("\"{}\"", op.name()));
            assert_eq!(Op::from_str(&op.name(), false), Ok(*op));
        }
        for path in Path::value_variants() {
            let serde = serde_json::to_string(path).unwrap_or_default();
            assert_eq!(serde, format!("\"{}\"", path.name()));
            assert_eq!(
                path.to_possible_value().map(|v| v.get_name().to_owned()),
                Some(path.name().to_owned())
            );
        }
        assert_eq!(Op::SmoothL1.name(), "smooth_l1");
        assert_eq!(Op::GhmC.name(), "ghm_c");
    }
}
