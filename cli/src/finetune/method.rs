//! The training methods: what the classification branch and the box branch of the head learn
//! from, per scene. Every method sees the same anchors, assignment, scenes and step budget.

use super::scene::CLASSES;
use hardmine::{
    Asl1, BalancedSampler, BceWithLogits, Budget, ChannelBlockRotation, DistributionCe, GhmC, GhmR,
    OcclusionSearch, Ohem, Real, SOhem, Selection, SigmoidFocal, SmoothL1, SplitMix64, TopK,
    Weighting,
};

/// Anchors the miners keep per scene (of 2,400).
pub const MINED: usize = 64;
/// The positive fraction of the balanced sampler (1:3).
const POS_FRACTION: f64 = 0.25;
/// Smooth L1's beta (RetinaNet's, 1/9) as a count to divide one by.
const SMOOTH_L1_INV_BETA: usize = 9;
/// ASL1's mu, GHM-R's too (the GHM paper's).
const ASL1_MU: f64 = 0.02;

/// The classification methods, in report order.
pub const ALL: [Method; 10] = [
    Method::Bce,
    Method::Balanced,
    Method::Ohem,
    Method::Sohem,
    Method::Focal,
    Method::GhmC,
    Method::AfastSearch,
    Method::AfastAsdn,
    Method::Afast,
    Method::DistributionCe,
];

/// A classification-branch method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Method {
    /// BCE on every anchor that is not ignored.
    Bce,
    /// BCE on a random 1:3 sample of 64 anchors (mmdetection's `RandomSampler`).
    Balanced,
    /// BCE on the 64 anchors of highest loss `L_cls + L_loc`, after NMS 0.7 over their
    /// decoded boxes (OHEM, Shrivastava et al. 2016).
    Ohem,
    /// BCE on 64 anchors drawn from 4 strata of `alpha * L_cls + beta * L_loc`, the weights
    /// moving with the training stage (S-OHEM, Li et al. 2017).
    Sohem,
    /// Sigmoid focal loss, alpha 0.25, gamma 2 (Lin et al. 2017).
    Focal,
    /// GHM-C, 30 bins, momentum 0.75; its box branch is GHM-R (Li et al. 2019).
    GhmC,
    /// BCE plus a hard copy of each positive made in feature space by today's search-based
    /// adversaries: the feature cell of the head's 3 x 3 window whose occlusion lowers the
    /// true class's score most (ASDN), then the channel-block rotation that raises its loss
    /// most (ASTN) (A-Fast-RCNN, Wang et al. 2017).
    AfastSearch,
    /// BCE plus a hard copy of each positive whose dropped cell the learned ASDN chooses (a
    /// mask sampled from its scores: one of the 3 top cells), ASDN pretrained on the search's
    /// targets and then trained against the detector (A-Fast-RCNN's ASDN alone).
    AfastAsdn,
    /// A-Fast-RCNN as the paper trains it: the learned ASDN's masked copy, then rotated by the
    /// learned ASTN's angles (4 channel blocks, +-10 degrees), which is trained by gradient
    /// ascent on the detector's loss.
    Afast,
    /// Softmax CE over the digits and a background logit fixed at 0, logit-adjusted by the
    /// running class distribution (tau 1).
    DistributionCe,
}

impl Method {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Method::Bce => "bce",
            Method::Balanced => "balanced",
            Method::Ohem => "ohem",
            Method::Sohem => "sohem",
            Method::Focal => "focal",
            Method::GhmC => "ghm_c",
            Method::AfastSearch => "afast_search",
            Method::AfastAsdn => "afast_asdn",
            Method::Afast => "afast",
            Method::DistributionCe => "distribution_ce",
        }
    }

    /// Its box loss unless another is asked for: GHM-R beside GHM-C (the GHM paper's
    /// pairing), RetinaNet's smooth L1 otherwise.
    pub fn default_box_loss(self) -> BoxLoss {
        match self {
            Method::GhmC => BoxLoss::GhmR,
            _ => BoxLoss::SmoothL1,
        }
    }

    /// Whether it trains on a sample of the anchors (its losses are then normalised by the
    /// sample's size, as mmdetection does for sampling heads).
    fn samples(self) -> bool {
        matches!(self, Method::Balanced | Method::Ohem | Method::Sohem)
    }

    /// Whether it trains learned adversaries (ASDN; ASTN too for `afast`).
    pub fn learned_adversaries(self) -> bool {
        matches!(self, Method::AfastAsdn | Method::Afast)
    }
}

/// A box-branch loss, on the positive anchors' encoded deltas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum BoxLoss {
    /// Smooth L1, beta 1/9 (RetinaNet's).
    SmoothL1,
    /// L1 (smooth L1 with beta 0).
    L1,
    /// ASL1, `sqrt(d^2 + mu^2) - mu`, mu 0.02 (the GHM paper's).
    Asl1,
    /// GHM-R over ASL1, mu 0.02, 10 bins, momentum 0.7, loss weight 10 (mmdetection's GHM
    /// RetinaNet).
    GhmR,
}

/// The box losses of the ablation, in report order.
pub const BOX_LOSSES: [BoxLoss; 4] = [BoxLoss::SmoothL1, BoxLoss::L1, BoxLoss::Asl1, BoxLoss::GhmR];

impl BoxLoss {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            BoxLoss::SmoothL1 => "smooth_l1",
            BoxLoss::L1 => "l1",
            BoxLoss::Asl1 => "asl1",
            BoxLoss::GhmR => "ghm_r",
        }
    }
}

/// One scene's targets, shared by every method: the assignment made once.
#[derive(Debug, Clone)]
pub struct Targets<T> {
    /// Anchors that are not ignored, ascending.
    pub valid: Vec<usize>,
    /// One-hot classification targets of the valid anchors, `[valid * CLASSES]`.
    pub cls: Vec<T>,
    /// The class of each valid anchor (`CLASSES` for background).
    pub labels: Vec<usize>,
    /// Positive anchors, ascending.
    pub positives: Vec<usize>,
    /// Each positive's row in `valid`.
    pub pos_rows: Vec<usize>,
    /// Encoded box targets of the positives, `[positives * 4]`.
    pub deltas: Vec<T>,
}

/// A method's losses, state and scratch, kept across steps.
pub struct Trainer<T: Real> {
    method: Method,
    box_loss: BoxLoss,
    ghm_c: GhmC<T, 30>,
    ghm_r: GhmR<T, 10>,
    dist: DistributionCe<T, 11>,
    rng: SplitMix64,
    // Scratch, grown to the largest scene.
    xs: Vec<T>,
    gx: Vec<T>,
    ts: Vec<T>,
    bx: Vec<T>,
    gb: Vec<T>,
    bt: Vec<T>,
    per_element: Vec<T>,
    l_cls: Vec<T>,
    l_loc: Vec<T>,
    boxes: Vec<T>,
    box_elements: Vec<T>,
    wide: Vec<T>,
    wide_grad: Vec<T>,
    wide_labels: Vec<usize>,
}

/// One step's losses (each already normalised).
#[derive(Debug, Clone, Copy)]
pub struct StepLoss<T> {
    /// The classification loss.
    pub cls: T,
    /// The box loss.
    pub boxes: T,
}

/// Copies the rows `rows` (of `width`) of `src` into `dst`'s front.
fn gather<T: Copy>(src: &[T], rows: &[usize], width: usize, dst: &mut Vec<T>) {
    dst.clear();
    for &r in rows {
        dst.extend_from_slice(&src[r * width..(r + 1) * width]);
    }
}

/// Writes `src`'s rows back to the rows `rows` (of `width`) of `dst`.
fn scatter<T: Copy>(src: &[T], rows: &[usize], width: usize, dst: &mut [T]) {
    for (s, &r) in src.chunks_exact(width).zip(rows) {
        dst[r * width..(r + 1) * width].copy_from_slice(s);
    }
}

/// The sum of each row of `values` (of `width`).
fn row_sums<T: Real>(values: &[T], width: usize, out: &mut Vec<T>) {
    out.clear();
    out.extend(
        values
            .chunks_exact(width)
            .map(|r| T::narrow(r.iter().fold(T::ZERO.widen(), |a, &v| a + v.widen()))),
    );
}

impl<T: Real> Trainer<T> {
    /// The state of `method` with `box_loss`.
    pub fn new(method: Method, box_loss: BoxLoss, seed: u64) -> anyhow::Result<Self> {
        Ok(Self {
            method,
            box_loss,
            ghm_c: GhmC::new(30, T::from_f64(0.75), T::ONE)?,
            ghm_r: GhmR::new(
                T::from_f64(ASL1_MU),
                10,
                T::from_f64(0.7),
                T::from_count(10),
            )?,
            dist: DistributionCe::new(11, Weighting::LogitAdjustment { tau: T::ONE })?,
            rng: SplitMix64::new(seed ^ 0x5eed),
            xs: Vec::new(),
            gx: Vec::new(),
            ts: Vec::new(),
            bx: Vec::new(),
            gb: Vec::new(),
            bt: Vec::new(),
            per_element: Vec::new(),
            l_cls: Vec::new(),
            l_loc: Vec::new(),
            boxes: Vec::new(),
            box_elements: Vec::new(),
            wide: Vec::new(),
            wide_grad: Vec::new(),
            wide_labels: Vec::new(),
        })
    }

    /// Bytes of state this method keeps between steps, plus its fixed working heap (the
    /// scratch vectors are the host's; on a device they are the head's output buffers).
    pub fn state_bytes(&self) -> usize {
        use core::mem::size_of;
        let boxes = match self.box_loss {
            BoxLoss::SmoothL1 | BoxLoss::L1 => size_of::<SmoothL1<T>>(),
            BoxLoss::Asl1 => size_of::<Asl1<T>>(),
            BoxLoss::GhmR => size_of::<GhmR<T, 10>>(),
        };
        boxes
            + match self.method {
                // The learned adversaries' state is the run's (`train::Adversaries`).
                Method::Bce | Method::AfastAsdn | Method::Afast => size_of::<BceWithLogits>(),
                Method::AfastSearch => {
                    // The searches and their buffers: four 3 x 3 x F patches, the window
                    // scores and mask, the block angles, and one location's head outputs
                    // and their gradients.
                    let spec = hardmine_detect::DetectorSpec::tiny();
                    let a = spec.num_anchors();
                    size_of::<BceWithLogits>()
                        + size_of::<OcclusionSearch>()
                        + size_of::<ChannelBlockRotation<T>>()
                        + size_of::<T>()
                            * (4 * spec.patch_len() + 9 + 9 + 4 + 2 * a * (CLASSES + 4))
                }
                Method::Focal => size_of::<SigmoidFocal<T>>(),
                Method::Balanced => {
                    size_of::<BalancedSampler<T, MINED>>() + size_of::<Selection<MINED>>()
                }
                Method::Ohem => size_of::<Ohem<T, MINED>>() + size_of::<TopK<T, MINED>>(),
                Method::Sohem => size_of::<SOhem<T, MINED>>() + size_of::<TopK<T, MINED>>(),
                Method::GhmC => size_of::<GhmC<T, 30>>(),
                Method::DistributionCe => size_of::<DistributionCe<T, 11>>(),
            }
    }

    /// The box loss of the gathered positives (`self.bx` against `self.bt`), normalised by
    /// `avg`, its gradient in `self.gb`.
    fn box_branch(&mut self, avg: T) -> anyhow::Result<T> {
        self.gb.clear();
        self.gb.resize(self.bx.len(), T::ZERO);
        if self.bx.is_empty() {
            return Ok(T::ZERO);
        }
        let (bx, bt, gb) = (&self.bx, &self.bt, &mut self.gb);
        Ok(match self.box_loss {
            BoxLoss::SmoothL1 => SmoothL1::new(T::ONE.div_count(SMOOTH_L1_INV_BETA))?
                .with_avg_factor(avg)?
                .value_and_grad(bx, bt, gb)?,
            BoxLoss::L1 => SmoothL1::new(T::ZERO)?
                .with_avg_factor(avg)?
                .value_and_grad(bx, bt, gb)?,
            BoxLoss::Asl1 => Asl1::new(T::from_f64(ASL1_MU))?
                .with_avg_factor(avg)?
                .value_and_grad(bx, bt, gb)?,
            BoxLoss::GhmR => self.ghm_r.value_and_grad(bx, bt, None, gb)?,
        })
    }

    /// Per-anchor box losses of the positives (unnormalised; GHM-R ranks by its ASL1), for
    /// the miners' rankings, into `self.per_element`.
    fn box_per_anchor(&mut self) -> anyhow::Result<()> {
        let out = &mut self.box_elements;
        out.clear();
        out.resize(self.bx.len(), T::ZERO);
        let (bx, bt) = (&self.bx, &self.bt);
        match self.box_loss {
            BoxLoss::SmoothL1 => {
                SmoothL1::new(T::ONE.div_count(SMOOTH_L1_INV_BETA))?.per_element(bx, bt, out)?
            }
            BoxLoss::L1 => SmoothL1::new(T::ZERO)?.per_element(bx, bt, out)?,
            BoxLoss::Asl1 | BoxLoss::GhmR => {
                Asl1::new(T::from_f64(ASL1_MU))?.per_element(bx, bt, out)?
            }
        }
        row_sums(&self.box_elements, 4, &mut self.per_element);
        Ok(())
    }

    /// One scene's loss and its gradients with respect to the head's outputs (`cls`:
    /// `[N * CLASSES]` logits, `deltas`: `[N * 4]`), written to `g_cls` and `g_box` (zero
    /// where an anchor is not trained on). `avg` is the job's normaliser of the positive
    /// count; `progress` in [0, 1] the training stage (S-OHEM's schedule); `decoded` the
    /// anchors' boxes decoded with the current deltas (OHEM's NMS), `[N * 4]`.
    #[allow(clippy::too_many_arguments)]
    pub fn loss_and_grad(
        &mut self,
        cls: &[T],
        deltas: &[T],
        decoded: &[T],
        targets: &Targets<T>,
        avg: T,
        progress: T,
        g_cls: &mut [T],
        g_box: &mut [T],
    ) -> anyhow::Result<StepLoss<T>> {
        g_cls.fill(T::ZERO);
        g_box.fill(T::ZERO);
        gather(deltas, &targets.positives, 4, &mut self.bx);
        self.bt.clear();
        self.bt.extend_from_slice(&targets.deltas);
        if self.method.samples() {
            return self.sampled(cls, decoded, targets, progress, g_cls, g_box);
        }
        gather(cls, &targets.valid, CLASSES, &mut self.xs);
        self.gx.clear();
        self.gx.resize(self.xs.len(), T::ZERO);
        let (xs, ts, gx) = (&self.xs, &targets.cls, &mut self.gx);
        let cls_loss = match self.method {
            Method::Bce | Method::AfastSearch | Method::AfastAsdn | Method::Afast => {
                BceWithLogits::new()
                    .with_avg_factor(avg)?
                    .value_and_grad(xs, ts, None, gx)?
            }
            Method::Focal => SigmoidFocal::new(T::from_f64(0.25), T::from_count(2))?
                .with_avg_factor(avg)?
                .value_and_grad(xs, ts, gx)?,
            Method::GhmC => self.ghm_c.value_and_grad(xs, ts, None, gx)?,
            Method::DistributionCe => {
                widen(xs, &targets.labels, &mut self.wide, &mut self.wide_labels);
                self.dist.observe(&self.wide_labels)?;
                let wide_grad = &mut self.wide_grad;
                wide_grad.clear();
                wide_grad.resize(self.wide.len(), T::ZERO);
                let loss = self.dist.with_avg_factor(avg)?.value_and_grad(
                    &self.wide,
                    &self.wide_labels,
                    wide_grad,
                )?;
                for (g, w) in gx.chunks_exact_mut(CLASSES).zip(wide_grad.chunks_exact(11)) {
                    g.copy_from_slice(&w[..CLASSES]);
                }
                loss
            }
            Method::Balanced | Method::Ohem | Method::Sohem => unreachable_sampled()?,
        };
        scatter(&self.gx, &targets.valid, CLASSES, g_cls);
        let box_loss = self.box_branch(avg)?;
        scatter(&self.gb, &targets.positives, 4, g_box);
        Ok(StepLoss {
            cls: cls_loss,
            boxes: box_loss,
        })
    }

    /// The sampling methods: choose valid anchors, then BCE and the box loss on them,
    /// normalised by the sample's size.
    fn sampled(
        &mut self,
        cls: &[T],
        decoded: &[T],
        targets: &Targets<T>,
        progress: T,
        g_cls: &mut [T],
        g_box: &mut [T],
    ) -> anyhow::Result<StepLoss<T>> {
        let valid = &targets.valid;
        let picked: Selection<MINED> = match self.method {
            Method::Balanced => {
                let positive: Vec<bool> = targets.labels.iter().map(|&l| l < CLASSES).collect();
                let budget = Budget::new(MINED, T::from_f64(POS_FRACTION), None)?;
                BalancedSampler::<T, MINED>::new(budget)?.sample(&positive, &mut self.rng)
            }
            _ => {
                // Per-anchor L_cls (BCE summed over classes) and L_loc (box loss of positives).
                gather(cls, valid, CLASSES, &mut self.xs);
                self.per_element.clear();
                self.per_element.resize(self.xs.len(), T::ZERO);
                BceWithLogits::new().per_element(
                    &self.xs,
                    &targets.cls,
                    None,
                    &mut self.per_element,
                )?;
                let per_element = core::mem::take(&mut self.per_element);
                row_sums(&per_element, CLASSES, &mut self.l_cls);
                self.per_element = per_element;
                self.box_per_anchor()?;
                self.l_loc.clear();
                self.l_loc.resize(valid.len(), T::ZERO);
                for (&row, &l) in targets.pos_rows.iter().zip(&self.per_element) {
                    self.l_loc[row] = l;
                }
                if self.method == Method::Ohem {
                    gather(decoded, valid, 4, &mut self.boxes);
                    // OHEM ranks by L_cls + L_loc: summed in place.
                    for (c, &l) in self.l_cls.iter_mut().zip(&self.l_loc) {
                        *c = *c + l;
                    }
                    Ohem::<T, MINED>::new(MINED)?
                        .with_nms(T::from_f64(0.7))?
                        .select(&self.l_cls, Some(&self.boxes))?
                } else {
                    SOhem::<T, MINED>::new(MINED, 4)?.select(&self.l_cls, &self.l_loc, progress)?
                }
            }
        };
        // The chosen anchors (indices into `valid`), and the positives among them.
        let rows: Vec<usize> = picked.indices().to_vec();
        let anchors: Vec<usize> = rows.iter().map(|&r| valid[r]).collect();
        let n = T::from_count(rows.len().max(1) as u64);
        gather(cls, &anchors, CLASSES, &mut self.xs);
        gather(&targets.cls, &rows, CLASSES, &mut self.ts);
        self.gx.clear();
        self.gx.resize(self.xs.len(), T::ZERO);
        let cls_loss = BceWithLogits::new().with_avg_factor(n)?.value_and_grad(
            &self.xs,
            &self.ts,
            None,
            &mut self.gx,
        )?;
        scatter(&self.gx, &anchors, CLASSES, g_cls);
        // Box loss on the chosen positives.
        let chosen: Vec<usize> = (0..targets.positives.len())
            .filter(|&p| picked.contains(targets.pos_rows[p]))
            .collect();
        let pos: Vec<usize> = chosen.iter().map(|&p| targets.positives[p]).collect();
        let all_bx = core::mem::take(&mut self.bx);
        gather(&all_bx, &chosen, 4, &mut self.bx);
        gather(&targets.deltas, &chosen, 4, &mut self.bt);
        let box_loss = self.box_branch(n)?;
        scatter(&self.gb, &pos, 4, g_box);
        Ok(StepLoss {
            cls: cls_loss,
            boxes: box_loss,
        })
    }
}

/// Class scores for inference as `method` trains them: sigmoid probabilities, or for the
/// distribution-aware CE the softmax probabilities of the digits beside the background logit.
pub fn scores<T: Real>(method: Method, cls: &[T], out: &mut [T]) {
    if method == Method::DistributionCe {
        for (o, row) in out.chunks_exact_mut(CLASSES).zip(cls.chunks_exact(CLASSES)) {
            let m = row.iter().fold(T::ZERO, |a, &b| a.max(b));
            let mut total = (T::ZERO - m).exp();
            for (o, &v) in o.iter_mut().zip(row) {
                *o = (v - m).exp();
                total = total + *o;
            }
            for o in o.iter_mut() {
                *o = *o / total;
            }
        }
    } else {
        for (o, &v) in out.iter_mut().zip(cls) {
            *o = v.sigmoid();
        }
    }
}

/// A sampling method reached the dense branch: a bug, reported rather than a panic.
fn unreachable_sampled<T>() -> anyhow::Result<T> {
    anyhow::bail!("internal: a sampling method on the dense branch")
}

/// The rows as the distribution-aware CE sees them: the digit logits and a zero background
/// logit, and each row's class.
fn widen<T: Real>(xs: &[T], labels: &[usize], wide: &mut Vec<T>, wide_labels: &mut Vec<usize>) {
    wide.clear();
    for row in xs.chunks_exact(CLASSES) {
        wide.extend_from_slice(row);
        wide.push(T::ZERO);
    }
    wide_labels.clear();
    wide_labels.extend_from_slice(labels);
}
