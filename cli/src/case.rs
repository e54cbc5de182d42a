//! The golden cases (golden/README.md) as types: a line deserialises into a [`Case`], tagged by
//! its `op`, with typed params, inputs and expectations; results are [`Outcome`]s, which
//! serialise into the runner's output lines.

use crate::op::Op;
use hardmine::Reduction;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What every line has, whatever its op: the id the answer echoes (any JSON value, `null` when
/// absent) and the op's name (kept as text, so an op this runner lacks is told apart from a
/// malformed case).
#[derive(Debug, Deserialize)]
pub struct Header {
    /// The case's id.
    #[serde(default)]
    pub id: Value,
    /// The case's op.
    #[serde(default)]
    pub op: Option<Name>,
}

/// An `op` field: a name, or some other JSON value.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Name {
    /// A string.
    Text(String),
    /// Anything else.
    Other(serde::de::IgnoredAny),
}

/// One golden case.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Case {
    /// `bce_with_logits`.
    BceWithLogits {
        /// Hyper-parameters (all optional).
        #[serde(default)]
        params: ReductionOnly,
        /// Inputs.
        inputs: BceInputs,
        /// Expected result.
        #[serde(default)]
        expected: Option<LossGrad>,
    },
    /// `sigmoid_focal`.
    SigmoidFocal {
        /// Hyper-parameters.
        params: Focal,
        /// Inputs.
        inputs: BinaryInputs,
        /// Expected result.
        #[serde(default)]
        expected: Option<LossGrad>,
    },
    /// `sigmoid_focal_labels`.
    SigmoidFocalLabels {
        /// Hyper-parameters.
        params: FocalClasses,
        /// Inputs.
        inputs: LabelInputs,
        /// Expected result.
        #[serde(default)]
        expected: Option<LossGrad>,
    },
    /// `softmax_cross_entropy`.
    SoftmaxCrossEntropy {
        /// Hyper-parameters.
        params: Classes,
        /// Inputs.
        inputs: ClassInputs,
        /// Expected result.
        #[serde(default)]
        expected: Option<LossGrad>,
    },
    /// `softmax_focal`.
    SoftmaxFocal {
        /// Hyper-parameters.
        params: FocalClasses,
        /// Inputs.
        inputs: ClassInputs,
        /// Expected result.
        #[serde(default)]
        expected: Option<LossGrad>,
    },
    /// `smooth_l1`.
    SmoothL1 {
        /// Hyper-parameters.
        params: SmoothL1,
        /// Inputs.
        inputs: RegressionInputs,
        /// Expected result.
        #[serde(default)]
        expected: Option<LossGrad>,
    },
    /// `ghm_c`: one loss object over the batches, in order.
    GhmC {
        /// Hyper-parameters.
        params: GhmC,
        /// The batches.
        batches: Vec<Batch<Weighted<BinaryInputs>>>,
    },
    /// `ghm_r`: one loss object over the batches, in order.
    GhmR {
        /// Hyper-parameters.
        params: GhmR,
        /// The batches.
        batches: Vec<Batch<Weighted<RegressionInputs>>>,
    },
    /// `ohem`.
    Ohem {
        /// Hyper-parameters.
        params: Ohem,
        /// Inputs.
        inputs: OhemInputs,
        /// Expected result.
        #[serde(default)]
        expected: Option<Selected>,
    },
    /// `sohem`.
    Sohem {
        /// Hyper-parameters.
        params: Sohem,
        /// Inputs.
        inputs: SohemInputs,
        /// Expected result.
        #[serde(default)]
        expected: Option<Selected>,
    },
    /// `occlusion_search`.
    OcclusionSearch {
        /// Hyper-parameters.
        params: Occlusion,
        /// Inputs.
        inputs: OcclusionInputs,
        /// Expected result.
        #[serde(default)]
        expected: Option<Windows>,
    },
    /// `rotate_blocks`.
    RotateBlocks {
        /// Hyper-parameters.
        params: Rotation,
        /// Inputs.
        inputs: RotationInputs,
        /// Expected result.
        #[serde(default)]
        expected: Option<Rotated>,
    },
}

impl Case {
    /// The case's op.
    pub fn op(&self) -> Op {
        match self {
            Case::BceWithLogits { .. } => Op::BceWithLogits,
            Case::SigmoidFocal { .. } => Op::SigmoidFocal,
            Case::SigmoidFocalLabels { .. } => Op::SigmoidFocalLabels,
            Case::SoftmaxCrossEntropy { .. } => Op::SoftmaxCrossEntropy,
            Case::SoftmaxFocal { .. } => Op::SoftmaxFocal,
            Case::SmoothL1 { .. } => Op::SmoothL1,
            Case::GhmC { .. } => Op::GhmC,
            Case::GhmR { .. } => Op::GhmR,
            Case::Ohem { .. } => Op::Ohem,
            Case::Sohem { .. } => Op::Sohem,
            Case::OcclusionSearch { .. } => Op::OcclusionSearch,
            Case::RotateBlocks { .. } => Op::RotateBlocks,
        }
    }

    /// The expectations, one per output line (a batch without one is left out).
    pub fn expectations(&self) -> Vec<Outcome> {
        fn one<E: Clone + Into<Outcome>>(e: &Option<E>) -> Vec<Outcome> {
            e.iter().cloned().map(Into::into).collect()
        }
        fn each<I>(batches: &[Batch<I>]) -> Vec<Outcome> {
            batches
                .iter()
                .filter_map(|b| b.expected.clone().map(Outcome::from))
                .collect()
        }
        match self {
            Case::BceWithLogits { expected, .. }
            | Case::SigmoidFocal { expected, .. }
            | Case::SigmoidFocalLabels { expected, .. }
            | Case::SoftmaxCrossEntropy { expected, .. }
            | Case::SoftmaxFocal { expected, .. }
            | Case::SmoothL1 { expected, .. } => one(expected),
            Case::GhmC { batches, .. } => each(batches),
            Case::GhmR { batches, .. } => each(batches),
            Case::Ohem { expected, .. } | Case::Sohem { expected, .. } => one(expected),
            Case::OcclusionSearch { expected, .. } => one(expected),
            Case::RotateBlocks { expected, .. } => one(expected),
        }
    }
}

/// A batch of a stateful case.
#[derive(Debug, Clone, Deserialize)]
pub struct Batch<I> {
    /// Inputs.
    pub inputs: I,
    /// Expected result.
    #[serde(default)]
    pub expected: Option<LossGrad>,
}

/// A loss's reduction by name (`mean` when absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReductionName {
    /// Mean.
    #[default]
    Mean,
    /// Sum.
    Sum,
    /// Per-element losses.
    None,
}

impl From<ReductionName> for Reduction {
    fn from(r: ReductionName) -> Self {
        match r {
            ReductionName::Mean => Reduction::Mean,
            ReductionName::Sum => Reduction::Sum,
            ReductionName::None => Reduction::None,
        }
    }
}

/// Params of a loss that has only a reduction.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReductionOnly {
    /// Reduction.
    #[serde(default)]
    pub reduction: ReductionName,
    /// mmdetection's `avg_factor`: a mean is `sum / (avg_factor + eps)` (absent: none).
    #[serde(default)]
    pub avg_factor: Option<f64>,
}

/// Params of the sigmoid focal loss.
#[derive(Debug, Clone, Deserialize)]
pub struct Focal {
    /// Weight of the positives (-1: off).
    pub alpha: f64,
    /// Focusing exponent.
    pub gamma: f64,
    /// Reduction.
    #[serde(default)]
    pub reduction: ReductionName,
    /// mmdetection's `avg_factor`: a mean is `sum / (avg_factor + eps)` (absent: none).
    #[serde(default)]
    pub avg_factor: Option<f64>,
}

/// Params of a focal loss over classes.
#[derive(Debug, Clone, Deserialize)]
pub struct FocalClasses {
    /// The focal loss.
    #[serde(flatten)]
    pub focal: Focal,
    /// Number of classes.
    pub classes: usize,
}

/// Params of the softmax cross-entropy.
#[derive(Debug, Clone, Deserialize)]
pub struct Classes {
    /// Number of classes.
    pub classes: usize,
    /// Reduction.
    #[serde(default)]
    pub reduction: ReductionName,
    /// mmdetection's `avg_factor`: a mean is `sum / (avg_factor + eps)` (absent: none).
    #[serde(default)]
    pub avg_factor: Option<f64>,
}

/// Params of the smooth L1 loss.
#[derive(Debug, Clone, Deserialize)]
pub struct SmoothL1 {
    /// Transition point (0: L1).
    pub beta: f64,
    /// Reduction.
    #[serde(default)]
    pub reduction: ReductionName,
    /// mmdetection's `avg_factor`: a mean is `sum / (avg_factor + eps)` (absent: none).
    #[serde(default)]
    pub avg_factor: Option<f64>,
}

/// Params of GHM-C (and the shared ones of GHM-R).
#[derive(Debug, Clone, Deserialize)]
pub struct GhmC {
    /// Bins.
    pub bins: usize,
    /// Moving-average momentum.
    pub momentum: f64,
    /// Loss weight.
    pub loss_weight: f64,
}

/// Params of GHM-R.
#[derive(Debug, Clone, Deserialize)]
pub struct GhmR {
    /// The ASL1 parameter.
    pub mu: f64,
    /// Bins, momentum and loss weight.
    #[serde(flatten)]
    pub ghm: GhmC,
}

/// Params of OHEM.
#[derive(Debug, Clone, Deserialize)]
pub struct Ohem {
    /// Examples kept.
    pub k: usize,
    /// NMS IoU threshold, if any.
    #[serde(default)]
    pub nms_iou: Option<f64>,
}

/// Params of S-OHEM.
#[derive(Debug, Clone, Deserialize)]
pub struct Sohem {
    /// Examples kept.
    pub k: usize,
    /// Strata of the combined loss.
    pub strata: usize,
    /// Training progress in [0, 1] (the schedule of the loss weights).
    pub progress: f64,
    /// Preset loss boundaries of the strata, if any (instead of quantiles).
    #[serde(default)]
    pub edges: Option<Vec<f64>>,
}

/// The shape of a feature map.
#[derive(Debug, Clone, Deserialize)]
pub struct Shape {
    /// Channels.
    pub channels: usize,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
}

/// Params of the occlusion search.
#[derive(Debug, Clone, Deserialize)]
pub struct Occlusion {
    /// The feature map's shape.
    #[serde(flatten)]
    pub shape: Shape,
    /// Window side.
    pub window: usize,
    /// Window stride.
    pub stride: usize,
}

/// Params of the channel-block rotation.
#[derive(Debug, Clone, Deserialize)]
pub struct Rotation {
    /// The feature map's shape.
    #[serde(flatten)]
    pub shape: Shape,
    /// Channel blocks.
    pub blocks: usize,
    /// One angle per block, radians.
    pub angles: Vec<f64>,
}

/// Inputs of a binary loss.
#[derive(Debug, Clone, Deserialize)]
pub struct BinaryInputs {
    /// Logits.
    pub logits: Vec<f64>,
    /// Targets in [0, 1].
    pub targets: Vec<f64>,
}

/// Inputs of `bce_with_logits`.
#[derive(Debug, Clone, Deserialize)]
pub struct BceInputs {
    /// Logits and targets.
    #[serde(flatten)]
    pub binary: BinaryInputs,
    /// Per-element weights, if any.
    #[serde(default)]
    pub weights: Option<Vec<f64>>,
}

/// Inputs of a softmax loss.
#[derive(Debug, Clone, Deserialize)]
pub struct ClassInputs {
    /// Logits `[rows x classes]`.
    pub logits: Vec<f64>,
    /// One label per row.
    pub labels: Vec<i64>,
}

/// Inputs of `sigmoid_focal_labels`.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelInputs {
    /// Logits and labels.
    #[serde(flatten)]
    pub classes: ClassInputs,
    /// Per-row weights, if any.
    #[serde(default)]
    pub label_weights: Option<Vec<f64>>,
}

/// Inputs of a regression loss.
#[derive(Debug, Clone, Deserialize)]
pub struct RegressionInputs {
    /// Predictions.
    pub pred: Vec<f64>,
    /// Targets.
    pub target: Vec<f64>,
}

/// Inputs with per-element weights (a GHM batch).
#[derive(Debug, Clone, Deserialize)]
pub struct Weighted<I> {
    /// Predictions and targets.
    #[serde(flatten)]
    pub inputs: I,
    /// Per-element weights.
    pub label_weights: Vec<f64>,
}

/// Inputs that are predictions and their targets.
pub trait Pair {
    /// The predictions (logits) and the targets.
    fn pair(&self) -> (&[f64], &[f64]);
}

impl Pair for BinaryInputs {
    fn pair(&self) -> (&[f64], &[f64]) {
        (&self.logits, &self.targets)
    }
}

impl Pair for RegressionInputs {
    fn pair(&self) -> (&[f64], &[f64]) {
        (&self.pred, &self.target)
    }
}

/// Inputs of OHEM.
#[derive(Debug, Clone, Deserialize)]
pub struct OhemInputs {
    /// Per-example losses.
    pub losses: Vec<f64>,
    /// Boxes `[N x 4]` as x1, y1, x2, y2, if any.
    #[serde(default)]
    pub boxes: Option<Vec<f64>>,
}

/// Inputs of S-OHEM.
#[derive(Debug, Clone, Deserialize)]
pub struct SohemInputs {
    /// Classification losses.
    pub cls: Vec<f64>,
    /// Localisation losses.
    pub loc: Vec<f64>,
}

/// Inputs of the occlusion search.
#[derive(Debug, Clone, Deserialize)]
pub struct OcclusionInputs {
    /// Features `[channels x height x width]`.
    pub features: Vec<f64>,
    /// Weights of the linear scorer, one per feature.
    pub scorer_weights: Vec<f64>,
    /// Bias of the scorer.
    pub scorer_bias: f64,
}

/// Inputs of the channel-block rotation.
#[derive(Debug, Clone, Deserialize)]
pub struct RotationInputs {
    /// Features `[channels x height x width]`.
    pub features: Vec<f64>,
    /// Upstream gradient of the output.
    pub upstream: Vec<f64>,
}

/// A loss: a number, or one per element for reduction `none`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LossValue {
    /// The reduced loss.
    Scalar(f64),
    /// Per-element losses.
    PerElement(Vec<f64>),
}

/// A loss and its gradient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossGrad {
    /// Loss.
    pub loss: LossValue,
    /// Gradient with respect to the first input.
    pub grad: Vec<f64>,
}

/// A miner's kept indices (compared as sets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selected {
    /// Kept indices.
    pub selected: Vec<usize>,
}

/// The occlusion search's scores, windows and best window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Windows {
    /// Score of each window.
    pub scores: Vec<f64>,
    /// Top-left corner `[row, column]` of each window.
    pub windows: Vec<[usize; 2]>,
    /// Index of the best window.
    pub best: usize,
}

/// The rotation's output and gradients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rotated {
    /// Rotated features.
    pub output: Vec<f64>,
    /// Gradient with respect to the features.
    pub grad: Vec<f64>,
    /// Gradient with respect to the angles.
    pub grad_angles: Vec<f64>,
}

/// One result of a case (one per batch): the fields of an output line after `id` and `batch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Outcome {
    /// A loss and its gradient.
    LossGrad(LossGrad),
    /// A miner's selection.
    Selected(Selected),
    /// An occlusion search.
    Windows(Windows),
    /// A rotation.
    Rotated(Rotated),
}

macro_rules! outcome_from {
    ($($t:ident),*) => {$(
        impl From<$t> for Outcome {
            fn from(v: $t) -> Self {
                Outcome::$t(v)
            }
        }
    )*};
}
outcome_from!(LossGrad, Selected, Windows, Rotated);

/// An output line of one batch.
#[derive(Debug, Serialize)]
pub struct Line<'a> {
    /// The case's id.
    pub id: &'a Value,
    /// The batch (0 for stateless ops).
    pub batch: usize,
    /// The results.
    #[serde(flatten)]
    pub outcome: &'a Outcome,
}

/// The output line of a case this path could not run.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorLine<T> {
    /// The case's id.
    pub id: T,
    /// Why.
    pub error: String,
}

/// An output line read back (the checker's input when lines come as JSON).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    /// A runner error.
    Error(ErrorLine<serde::de::IgnoredAny>),
    /// A result.
    Outcome(Outcome),
}
