//! Scenes made ready for one numeric path: the frozen backbone's features, computed once per
//! scene and shared by every method, and the RetinaNet assignment of the anchors.

use super::config::Detector;
use super::method::Targets;
use super::scene::{Domain, Scene, CANVAS_PIXELS, CLASSES};
use crate::coco::GroundTruth;
use hardmine::SplitMix64;
use hardmine_detect::{Assignment, Match, Scalar};

/// One scene on one path.
#[derive(Debug, Clone)]
pub struct Prepared<T> {
    /// The backbone's features, `spec.features_len()`.
    pub features: Vec<T>,
    /// The assignment's targets.
    pub targets: Targets<T>,
    /// Ground-truth boxes and classes (f64, for the evaluation).
    pub truth: Vec<([f64; 4], usize)>,
}

/// A set of scenes on one path.
#[derive(Debug, Clone, Default)]
pub struct SceneSet<T> {
    /// The scenes.
    pub scenes: Vec<Prepared<T>>,
    /// Positive anchors / all anchors over the set.
    pub positive_rate: f64,
}

impl<T> SceneSet<T> {
    /// The ground truth in the evaluator's form, image `i` the `i`-th scene.
    pub fn ground_truth(&self) -> Vec<GroundTruth> {
        self.scenes
            .iter()
            .enumerate()
            .flat_map(|(image, s)| {
                s.truth
                    .iter()
                    .map(move |&(bbox, class)| GroundTruth { image, class, bbox })
            })
            .collect()
    }
}

/// A scene's pixels as network input, `p / 16` (exact in every path).
pub fn image<T: Scalar>(scene: &Scene, out: &mut [T]) {
    for (v, &p) in out.iter_mut().zip(&scene.pixels) {
        *v = T::from_count(u64::from(p)).div_count(16);
    }
}

/// The assignment of one scene's anchors, as training targets.
pub fn targets<T: Scalar>(det: &Detector<T>, scene: &Scene) -> anyhow::Result<Targets<T>> {
    let gts: Vec<T> = scene
        .boxes
        .iter()
        .flat_map(|b| b.map(T::from_f64))
        .collect();
    let mut assigned = vec![
        Assignment {
            matched: Match::Negative,
            max_iou: T::ZERO
        };
        det.anchor_count()
    ];
    det.assigner.assign(&det.anchors, &gts, &mut assigned)?;
    let mut t = Targets {
        valid: Vec::new(),
        cls: Vec::new(),
        labels: Vec::new(),
        positives: Vec::new(),
        pos_rows: Vec::new(),
        deltas: Vec::new(),
    };
    for (i, a) in assigned.iter().enumerate() {
        let class = match a.matched {
            Match::Ignored => continue,
            Match::Negative => CLASSES,
            Match::Positive(g) => {
                let anchor: [T; 4] = core::array::from_fn(|k| det.anchors[i * 4 + k]);
                let gt: [T; 4] = core::array::from_fn(|k| gts[g * 4 + k]);
                t.positives.push(i);
                t.pos_rows.push(t.valid.len());
                t.deltas.extend(det.coder.encode_box(&anchor, &gt));
                usize::from(scene.classes[g])
            }
        };
        t.valid.push(i);
        t.labels.push(class);
        t.cls
            .extend((0..CLASSES).map(|c| if c == class { T::ONE } else { T::ZERO }));
    }
    Ok(t)
}

/// `count` scenes of `domain` drawn from `digits` with `seed`.
pub fn scenes(digits: &super::data::Digits, domain: Domain, count: usize, seed: u64) -> Vec<Scene> {
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|_| Scene::generate(digits, domain, &mut rng))
        .collect()
}

/// `scenes` prepared with the backbone of `params`.
pub fn scene_set<T: Scalar>(
    det: &Detector<T>,
    params: &[T],
    scenes: &[Scene],
) -> anyhow::Result<SceneSet<T>> {
    let spec = &det.spec;
    let mut input = vec![T::ZERO; CANVAS_PIXELS];
    let mut acts = vec![T::ZERO; spec.activations_len()];
    let (mut positives, mut out) = (0usize, Vec::with_capacity(scenes.len()));
    for scene in scenes {
        image(scene, &mut input);
        let mut features = vec![T::ZERO; spec.features_len()];
        spec.backbone_forward(params, &input, &mut acts, &mut features)?;
        let targets = targets(det, scene)?;
        positives += targets.positives.len();
        let truth = scene
            .boxes
            .iter()
            .zip(&scene.classes)
            .map(|(&b, &c)| (b, usize::from(c)))
            .collect();
        out.push(Prepared {
            features,
            targets,
            truth,
        });
    }
    Ok(SceneSet {
        positive_rate: positives as f64 / (scenes.len().max(1) * det.anchor_count()) as f64,
        scenes: out,
    })
}
