//! The eight training methods: one loss (and miner) each, the same head, data and step budget.

use super::data::PIXELS;
use super::model::Head;
use super::scene::{CELLS, CLASSES};
use hardmine::{
    BalancedSampler, BceWithLogits, Budget, DistributionCe, GhmC, OcclusionSearch, Ohem, Real,
    Reduction, SOhem, Selection, SigmoidFocal, SplitMix64, Weighting,
};

/// Rows the miners keep per scene (of 1,024).
pub const MINED: usize = 64;

/// The methods, in report order.
pub const ALL: [Method; 8] = [
    Method::Bce,
    Method::Balanced,
    Method::Ohem,
    Method::Sohem,
    Method::Focal,
    Method::GhmC,
    Method::Afast,
    Method::DistributionCe,
];

/// A training method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Method {
    /// BCE on every cell.
    Bce,
    /// BCE on the 1:3 random sample (`num` 64, positive fraction 0.25).
    Balanced,
    /// BCE on the 64 hardest cells.
    Ohem,
    /// BCE on 64 cells from 4 strata of difficulty.
    Sohem,
    /// Sigmoid focal loss, alpha 0.25, gamma 2.
    Focal,
    /// GHM-C, 30 bins, momentum 0.75.
    GhmC,
    /// BCE plus an occluded copy of each positive (the window that hurts it most).
    Afast,
    /// Softmax CE over digits and background with logit adjustment (tau 1).
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
            Method::Afast => "afast",
            Method::DistributionCe => "distribution_ce",
        }
    }
}

/// A method's loss state and scratch, kept across steps.
pub struct Loss<T: Real> {
    method: Method,
    ghm: GhmC<T, 30>,
    dist: DistributionCe<T, 11>,
    rng: SplitMix64,
    targets: Vec<T>,
    per_element: Vec<T>,
    rows: Vec<T>,
    wide: Vec<T>,
    wide_grad: Vec<T>,
    wide_labels: Vec<i32>,
}

impl<T: Real> Loss<T> {
    /// The state of `method`.
    pub fn new(method: Method, seed: u64) -> anyhow::Result<Self> {
        // GHM-C as mmdetection's RetinaNet config has it (loss_weight 1 beside a focal loss
        // normalised by the positive count, as the summed losses here are: one positive a scene).
        let ghm = GhmC::new(30, T::from_f64(0.75), T::ONE)?;
        let dist = DistributionCe::new(11, Weighting::LogitAdjustment { tau: T::ONE })?
            .with_reduction(Reduction::Sum);
        Ok(Self {
            method,
            ghm,
            dist,
            rng: SplitMix64::new(seed ^ 0x5eed),
            targets: vec![T::ZERO; CELLS * CLASSES],
            per_element: vec![T::ZERO; CELLS * CLASSES],
            rows: vec![T::ZERO; CELLS],
            wide: vec![T::ZERO; CELLS * 11],
            wide_grad: vec![T::ZERO; CELLS * 11],
            wide_labels: vec![0; CELLS],
        })
    }

    /// The GHM-C state (for the census and the plots).
    pub fn ghm(&self) -> &GhmC<T, 30> {
        &self.ghm
    }

    /// Bytes of state this method keeps between steps, plus its fixed working heap.
    pub fn state_bytes(&self) -> usize {
        use core::mem::size_of;
        match self.method {
            Method::Bce | Method::Afast => size_of::<BceWithLogits>(),
            Method::Focal => size_of::<SigmoidFocal<T>>(),
            Method::Balanced => {
                size_of::<BalancedSampler<T, MINED>>() + size_of::<Selection<MINED>>()
            }
            Method::Ohem => size_of::<Ohem<T, MINED>>() + size_of::<hardmine::TopK<T, MINED>>(),
            Method::Sohem => size_of::<SOhem<T, MINED>>() + size_of::<hardmine::TopK<T, MINED>>(),
            Method::GhmC => size_of::<GhmC<T, 30>>(),
            Method::DistributionCe => size_of::<DistributionCe<T, 11>>(),
        }
    }

    /// Loss of one scene's logits and its gradient (rows of unselected cells are zero).
    /// `progress` in [0, 1] is the training stage (S-OHEM's schedule).
    pub fn value_and_grad(
        &mut self,
        logits: &[T],
        labels: &[i32],
        progress: T,
        grad: &mut [T],
    ) -> anyhow::Result<T> {
        for (row, &l) in self.targets.chunks_exact_mut(CLASSES).zip(labels) {
            for (c, t) in row.iter_mut().enumerate() {
                *t = if l == c as i32 { T::ONE } else { T::ZERO };
            }
        }
        let bce = BceWithLogits::new().with_reduction(Reduction::Sum);
        match self.method {
            Method::Bce | Method::Afast => {
                Ok(bce.value_and_grad(logits, &self.targets, None, grad)?)
            }
            Method::Focal => Ok(SigmoidFocal::new(T::from_f64(0.25), T::from_f64(2.0))?
                .with_reduction(Reduction::Sum)
                .value_and_grad(logits, &self.targets, grad)?),
            Method::GhmC => Ok(self.ghm.value_and_grad(logits, &self.targets, None, grad)?),
            Method::Balanced | Method::Ohem | Method::Sohem => {
                bce.per_element(logits, &self.targets, None, &mut self.per_element)?;
                for (r, e) in self
                    .rows
                    .iter_mut()
                    .zip(self.per_element.chunks_exact(CLASSES))
                {
                    *r = T::narrow(e.iter().fold(T::ZERO.widen(), |a, &v| a + v.widen()));
                }
                let picked: Selection<MINED> = match self.method {
                    Method::Ohem => {
                        Ohem::<T, MINED>::new(MINED).and_then(|o| o.select(&self.rows, None))
                    }
                    Method::Sohem => {
                        let zeros = vec![T::ZERO; CELLS]; // no box branch here: L_loc = 0
                        SOhem::<T, MINED>::new(MINED, 4)
                            .and_then(|s| s.select(&self.rows, &zeros, progress))
                    }
                    _ => {
                        let positive: Vec<bool> = labels.iter().map(|&l| l >= 0).collect();
                        Budget::new(MINED, T::from_f64(0.25), None)
                            .and_then(BalancedSampler::<T, MINED>::new)
                            .map(|s| s.sample(&positive, &mut self.rng))
                    }
                }?;
                bce.value_and_grad(logits, &self.targets, None, grad)?;
                picked.apply(grad, CLASSES)?;
                Ok(T::narrow(
                    picked
                        .indices()
                        .iter()
                        .fold(T::ZERO.widen(), |a, &i| a + self.rows[i].widen()),
                ))
            }
            Method::DistributionCe => {
                self.widen(logits, labels);
                self.dist.observe(&self.wide_labels)?;
                let loss =
                    self.dist
                        .value_and_grad(&self.wide, &self.wide_labels, &mut self.wide_grad)?;
                for (g, w) in grad
                    .chunks_exact_mut(CLASSES)
                    .zip(self.wide_grad.chunks_exact(11))
                {
                    g.copy_from_slice(&w[..CLASSES]);
                }
                Ok(loss)
            }
        }
    }

    /// The scene as the distribution-aware CE sees it: each row's digit logits and a zero
    /// background logit, and each row's class (background for negatives).
    fn widen(&mut self, logits: &[T], labels: &[i32]) {
        for ((w, l), (&label, wl)) in self
            .wide
            .chunks_exact_mut(11)
            .zip(logits.chunks_exact(CLASSES))
            .zip(labels.iter().zip(self.wide_labels.iter_mut()))
        {
            w[..CLASSES].copy_from_slice(l);
            w[CLASSES] = T::ZERO; // background logit
            *wl = if label >= 0 { label } else { CLASSES as i32 };
        }
    }

    /// Per-row `(loss, p_t)` of the distribution-aware CE under its current counts (for the
    /// census): the row's loss and the softmax probability of its true class.
    pub fn distribution_rows(
        &mut self,
        logits: &[T],
        labels: &[i32],
    ) -> anyhow::Result<Vec<(f64, f64)>> {
        let mut out = vec![T::ZERO; CELLS];
        self.widen(logits, labels);
        self.dist
            .per_element(&self.wide, &self.wide_labels, &mut out)?;
        Ok(out
            .iter()
            .zip(self.wide.chunks_exact(11).zip(&self.wide_labels))
            .map(|(l, (row, &y))| {
                let z: Vec<f64> = row.iter().map(|v| v.to_f64()).collect();
                let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let total: f64 = z.iter().map(|v| (v - m).exp()).sum();
                (l.to_f64(), (z[y as usize] - m).exp() / total)
            })
            .collect())
    }

    /// A-Fast-RCNN's hard positive: the positive cell with the window that lowers the true
    /// class's probability most zeroed. Returns the occluded copy and its label.
    pub fn hard_positive(&self, head: &Head<T>, cell: &[T], label: i32) -> anyhow::Result<Vec<T>> {
        let search = OcclusionSearch::new(1, 8, 8, 2, 2)?;
        let mut scratch = vec![T::ZERO; PIXELS];
        let mut scores = vec![T::ZERO; search.window_count()];
        let (mut hidden, mut logits) =
            (vec![T::ZERO; super::model::HIDDEN], vec![T::ZERO; CLASSES]);
        let class = label as usize;
        let best = search.search(cell, &mut scratch, &mut scores, |x| {
            head.forward(x, false, &mut hidden, &mut logits);
            logits[class].sigmoid()
        })?;
        let mut occluded = cell.to_vec();
        let mut mask = vec![T::ONE; PIXELS];
        search.target_map(best, &mut mask)?;
        for (v, m) in occluded.iter_mut().zip(&mask) {
            if *m == T::ONE {
                *v = T::ZERO;
            }
        }
        Ok(occluded)
    }
}
