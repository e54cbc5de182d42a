//! The detector the job trains: the network, its anchors, the assignment, the box coder and
//! the inference post-processing, as one configuration every method shares.

use super::scene::{CANVAS, CLASSES};
use hardmine::Real;
use hardmine_detect::{Anchors, DeltaXywhCoder, DetectorSpec, MaxIouAssigner, PostProcess};

/// Anchor sizes, as multiples of the stride (4 px): 8, 12 and 16 px, the digits' sizes.
pub const ANCHOR_SCALES: [f64; 3] = [2.0, 3.0, 4.0];
/// Anchor aspect ratios (height / width): square, and the digits' typical 3:2.
pub const ANCHOR_RATIOS: [f64; 2] = [1.0, 1.5];
/// Anchors per location.
pub const A: usize = ANCHOR_SCALES.len() * ANCHOR_RATIOS.len();
/// Detections kept per image (COCOeval's `maxDets`, RetinaNet's `max_per_img`).
pub const MAX_PER_IMAGE: usize = 100;
/// Candidates before NMS (RetinaNet's `nms_pre`).
pub const NMS_PRE: usize = 1000;

/// Everything fixed about the detector, in `T`.
#[derive(Debug, Clone)]
pub struct Detector<T> {
    /// The network's shapes.
    pub spec: DetectorSpec,
    /// The anchors of the feature map, `[N * 4]`.
    pub anchors: Vec<T>,
    /// RetinaNet's assignment.
    pub assigner: MaxIouAssigner<T>,
    /// The box coder (RetinaNet's: means 0, stds 1).
    pub coder: DeltaXywhCoder<T>,
    /// Inference: score threshold 0.05, per-class NMS 0.5.
    pub post: PostProcess<T>,
}

impl<T: Real> Detector<T> {
    /// The job's detector.
    pub fn new() -> anyhow::Result<Self> {
        let spec = DetectorSpec::tiny();
        let (fh, fw) = spec.feature_hw();
        let stride = T::from_count((CANVAS / fw) as u64);
        let scales = ANCHOR_SCALES.map(T::from_f64);
        let ratios = ANCHOR_RATIOS.map(T::from_f64);
        let gen = Anchors::new(stride, &scales, &ratios)?;
        anyhow::ensure!(
            gen.per_location() == A && spec.num_anchors() == A,
            "anchor count"
        );
        anyhow::ensure!(spec.num_classes() == CLASSES, "class count");
        let mut anchors = vec![T::ZERO; gen.anchors_len(fh, fw)];
        gen.write(fh, fw, &mut anchors)?;
        Ok(Self {
            spec,
            anchors,
            assigner: MaxIouAssigner::retinanet(),
            coder: DeltaXywhCoder::new(),
            post: PostProcess::retinanet(),
        })
    }

    /// Anchors in the feature map.
    pub fn anchor_count(&self) -> usize {
        self.anchors.len() / 4
    }

    /// The image size the decoder clips to, `[height, width]`.
    pub fn image(&self) -> [T; 2] {
        let side = T::from_count(CANVAS as u64);
        [side, side]
    }
}
