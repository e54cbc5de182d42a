//! Naive f64 oracles, written the textbook way (as the reference projects do), independent of
//! the library's structure. They are accurate for the moderate inputs the random tests use
//! (|logit| <= 30, 12 for the focal oracle); extreme inputs are checked against the golden cases instead.

/// `1 / (1 + e^-x)`.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `-[t ln sigma(x) + (1 - t) ln sigma(-x)]`, the definition (`1 - sigma(x)` written as
/// `sigma(-x)`, so it holds for any moderate logit).
pub fn bce(x: f64, t: f64) -> f64 {
    -(t * sigmoid(x).ln() + (1.0 - t) * sigmoid(-x).ln())
}

/// torchvision's `sigmoid_focal_loss`, literally (alpha < 0 is off). Its `1 - p_t` is formed
/// by subtraction, so it is only an oracle for |x| <= 12 (relative error < 1e-10 there).
pub fn focal(x: f64, t: f64, alpha: f64, gamma: f64) -> f64 {
    let p = sigmoid(x);
    let ce = bce(x, t);
    let p_t = p * t + (1.0 - p) * (1.0 - t);
    let mut loss = ce * (1.0 - p_t).powf(gamma);
    if alpha >= 0.0 {
        loss *= alpha * t + (1.0 - alpha) * (1.0 - t);
    }
    loss
}

/// Per-row softmax probabilities.
pub fn softmax(row: &[f64]) -> Vec<f64> {
    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = row.iter().map(|x| (x - m).exp()).collect();
    let z: f64 = e.iter().sum();
    e.iter().map(|v| v / z).collect()
}

/// `-ln softmax(row)_y`.
pub fn softmax_ce(row: &[f64], y: usize) -> f64 {
    -softmax(row)[y].ln()
}

/// mmcv's softmax focal loss of one row.
pub fn softmax_focal(row: &[f64], y: usize, alpha: f64, gamma: f64) -> f64 {
    let p = softmax(row)[y];
    -alpha * (1.0 - p).powf(gamma) * p.ln()
}

/// PyTorch's `smooth_l1_loss` of one difference.
pub fn smooth_l1(d: f64, beta: f64) -> f64 {
    if d.abs() < beta {
        0.5 * d * d / beta
    } else {
        d.abs() - 0.5 * beta
    }
}

/// mmdetection's ASL1 of one difference.
pub fn asl1(d: f64, mu: f64) -> f64 {
    (d * d + mu * mu).sqrt() - mu
}

/// mmdetection 3.x `GHMC` / `GHMR`, transcribed loop for loop (state: `acc_sum`).
pub struct Ghm {
    /// Bin edges, the top one raised as mmdetection does.
    pub edges: Vec<f64>,
    /// The moving averages.
    pub acc_sum: Vec<f64>,
    /// EMA momentum.
    pub momentum: f64,
    /// The loss weight.
    pub loss_weight: f64,
}

impl Ghm {
    /// GHM-C edges (`top = 1 + 1e-6`) or GHM-R edges (`top = 1000`).
    pub fn new(bins: usize, momentum: f64, loss_weight: f64, top: f64) -> Self {
        let mut edges: Vec<f64> = (0..=bins).map(|i| i as f64 / bins as f64).collect();
        edges[bins] = top;
        Self {
            edges,
            acc_sum: vec![0.0; bins],
            momentum,
            loss_weight,
        }
    }

    /// One batch: gradient norms `g`, per-element losses `l`, label weights `w`, `tot`.
    pub fn batch(&mut self, g: &[f64], l: &[f64], w: &[f64], tot: f64) -> f64 {
        let bins = self.acc_sum.len();
        let mut weights = vec![0.0; g.len()];
        let mut n = 0;
        for i in 0..bins {
            let inds: Vec<usize> = (0..g.len())
                .filter(|&k| g[k] >= self.edges[i] && g[k] < self.edges[i + 1] && w[k] > 0.0)
                .collect();
            if inds.is_empty() {
                continue;
            }
            n += 1;
            let num = inds.len() as f64;
            let denom = if self.momentum > 0.0 {
                self.acc_sum[i] = self.momentum * self.acc_sum[i] + (1.0 - self.momentum) * num;
                self.acc_sum[i]
            } else {
                num
            };
            for k in inds {
                weights[k] = tot / denom;
            }
        }
        if n > 0 {
            weights.iter_mut().for_each(|v| *v /= n as f64);
        }
        let sum: f64 = weights.iter().zip(l).map(|(a, b)| a * b).sum();
        sum / tot * self.loss_weight
    }
}

/// Class weights of the distribution-aware CE, written from the papers' formulas.
pub fn class_weights(counts: &[u64], mode: &str, p: f64) -> Vec<f64> {
    let c = counts.len() as f64;
    let n: Vec<f64> = counts.iter().map(|&k| k as f64 + 1.0).collect();
    let raw: Vec<f64> = match mode {
        "inverse" => n.iter().map(|v| v.powf(-p)).collect(),
        "effective" => n.iter().map(|v| (1.0 - p) / (1.0 - p.powf(*v))).collect(),
        _ => unreachable!("unknown mode"),
    };
    let s: f64 = raw.iter().sum();
    raw.iter().map(|r| c * r / s).collect()
}

/// Logit offsets `tau ln prior` of logit adjustment.
pub fn logit_offsets(counts: &[u64], tau: f64) -> Vec<f64> {
    let all = counts.iter().sum::<u64>() as f64 + counts.len() as f64;
    counts
        .iter()
        .map(|&k| tau * ((k as f64 + 1.0) / all).ln())
        .collect()
}

/// IoU of `[x1, y1, x2, y2]` boxes, written out.
pub fn iou(a: &[f64], b: &[f64]) -> f64 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Indices sorted by loss descending, ties by index ascending (a full sort).
pub fn ranking(losses: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..losses.len()).collect();
    order.sort_by(|&a, &b| losses[b].partial_cmp(&losses[a]).unwrap().then(a.cmp(&b)));
    order
}

/// OHEM by brute force: the ranking walked with greedy NMS (per label when labels are given).
pub fn ohem(
    losses: &[f64],
    boxes: Option<&[f64]>,
    labels: Option<&[i64]>,
    thr: f64,
    k: usize,
) -> Vec<usize> {
    let mut kept: Vec<usize> = Vec::new();
    for i in ranking(losses) {
        if kept.len() == k {
            break;
        }
        let suppressed = boxes.is_some_and(|b| {
            kept.iter().any(|&j| {
                labels.is_none_or(|l| l[i] == l[j])
                    && iou(&b[4 * i..4 * i + 4], &b[4 * j..4 * j + 4]) > thr
            })
        });
        if !suppressed {
            kept.push(i);
        }
    }
    kept.sort_unstable();
    kept
}

/// PyTorch's `affine_grid(theta, align_corners=True)` + `grid_sample(bilinear, zeros,
/// align_corners=True)` of one channel block, transcribed: normalised `linspace(-1, 1, n)`
/// coordinates (0 for a size-1 axis), `theta = [[cos, -sin, 0], [sin, cos, 0]]`.
pub fn rotate_channel(src: &[f64], h: usize, w: usize, angle: f64) -> Vec<f64> {
    let lin = |k: usize, n: usize| {
        if n > 1 {
            -1.0 + 2.0 * k as f64 / (n - 1) as f64
        } else {
            0.0
        }
    };
    let (s, c) = angle.sin_cos();
    let at = |y: i64, x: i64| {
        if y >= 0 && y < h as i64 && x >= 0 && x < w as i64 {
            src[y as usize * w + x as usize]
        } else {
            0.0
        }
    };
    let mut out = vec![0.0; h * w];
    for i in 0..h {
        for j in 0..w {
            let (xn, yn) = (lin(j, w), lin(i, h));
            let (xs, ys) = (c * xn - s * yn, s * xn + c * yn);
            let ix = (xs + 1.0) / 2.0 * (w as f64 - 1.0);
            let iy = (ys + 1.0) / 2.0 * (h as f64 - 1.0);
            let (x0, y0) = (ix.floor(), iy.floor());
            let (fx, fy) = (ix - x0, iy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            out[i * w + j] = at(y0, x0) * (1.0 - fx) * (1.0 - fy)
                + at(y0, x0 + 1) * fx * (1.0 - fy)
                + at(y0 + 1, x0) * (1.0 - fx) * fy
                + at(y0 + 1, x0 + 1) * fx * fy;
        }
    }
    out
}

/// S-OHEM by brute force, following its documented definition step by step: combined losses,
/// a 256-bin histogram over their range, strata edges at the `j/S` quantiles of the bins,
/// quotas carried up to harder strata then given back down, and the hardest of each stratum
/// (ties to the lower index). Returns the selected indices, sorted.
pub fn sohem(c: &[f64], strata: usize, quotas: &[usize]) -> Vec<usize> {
    const BINS: usize = 256;
    let n = c.len();
    if n == 0 {
        return Vec::new();
    }
    let lo = c.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = c.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let span = hi - lo;
    let bin = |v: f64| {
        if span > 0.0 {
            (((v - lo) / span * BINS as f64).floor().max(0.0) as usize).min(BINS - 1)
        } else {
            0
        }
    };
    let mut hist = [0usize; BINS];
    for &v in c {
        hist[bin(v)] += 1;
    }
    let mut edges = vec![BINS; strata + 1];
    edges[0] = 0;
    let (mut below, mut j) = (0usize, 0usize);
    for (b, &h) in hist.iter().enumerate() {
        while j + 1 < strata && below * strata >= (j + 1) * n {
            j += 1;
            edges[j] = b;
        }
        below += h;
    }
    let stratum = |v: f64| edges[1..strata].iter().filter(|&&e| e <= bin(v)).count();
    let mut sizes = vec![0usize; strata];
    for &v in c {
        sizes[stratum(v)] += 1;
    }
    let mut take = vec![0usize; strata];
    let mut carry = 0;
    for s in 0..strata {
        let want = quotas[s] + carry;
        take[s] = want.min(sizes[s]);
        carry = want - take[s];
    }
    for s in (0..strata).rev() {
        let extra = carry.min(sizes[s] - take[s]);
        take[s] += extra;
        carry -= extra;
    }
    let order = ranking(c);
    let mut out: Vec<usize> = (0..strata)
        .flat_map(|s| {
            order
                .iter()
                .copied()
                .filter(move |&i| stratum(c[i]) == s)
                .take(take[s])
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort_unstable();
    out
}
