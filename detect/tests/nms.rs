//! Post-processing against a brute-force oracle (sort everything, decode, per-class greedy NMS)
//! and on hand-made cases.

use hardmine::{Error, SplitMix64};
use hardmine_detect::{Candidate, Detection, HeadOutput, PostProcess};

/// `delta2bbox` written out again (same operation order as mmdetection; means 0, stds 1).
fn oracle_decode(a: &[f64], d: &[f64], image: Option<[f64; 2]>) -> [f64; 4] {
    let max_ratio = (16.0f64 / 1000.0).ln().abs();
    let (px, py) = ((a[0] + a[2]) * 0.5, (a[1] + a[3]) * 0.5);
    let (pw, ph) = (a[2] - a[0], a[3] - a[1]);
    let (dw, dh) = (
        d[2].clamp(-max_ratio, max_ratio),
        d[3].clamp(-max_ratio, max_ratio),
    );
    let (gx, gy) = (px + pw * d[0], py + ph * d[1]);
    let (gw, gh) = (pw * dw.exp(), ph * dh.exp());
    let mut b = [gx - gw * 0.5, gy - gh * 0.5, gx + gw * 0.5, gy + gh * 0.5];
    if let Some([h, w]) = image {
        b = [
            b[0].clamp(0.0, w),
            b[1].clamp(0.0, h),
            b[2].clamp(0.0, w),
            b[3].clamp(0.0, h),
        ];
    }
    b
}

struct Case {
    anchors: Vec<f64>,
    deltas: Vec<f64>,
    scores: Vec<f64>,
    classes: usize,
}

/// Every (anchor, class) above the threshold sorted with std's sort, the first `nms_pre`
/// decoded, small boxes dropped, NMS class by class, merged by rank, the first `max_per_img`.
#[allow(clippy::too_many_arguments)]
fn oracle(
    c: &Case,
    thr: f64,
    iou_thr: f64,
    min_size: Option<f64>,
    image: Option<[f64; 2]>,
    nms_pre: usize,
    max_per_img: usize,
) -> Vec<(usize, u16, f64, [f64; 4])> {
    let mut all: Vec<(f64, usize, usize)> = Vec::new();
    for i in 0..c.anchors.len() / 4 {
        for k in 0..c.classes {
            let s = c.scores[i * c.classes + k];
            if s > thr {
                all.push((s, i, k));
            }
        }
    }
    all.sort_by(|a, b| {
        b.0.partial_cmp(&a.0)
            .unwrap()
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
    });
    all.truncate(nms_pre);
    let mut ranked = Vec::new();
    for (rank, &(s, i, k)) in all.iter().enumerate() {
        let b = oracle_decode(
            &c.anchors[4 * i..4 * i + 4],
            &c.deltas[4 * i..4 * i + 4],
            image,
        );
        if min_size.is_some_and(|m| !(b[2] - b[0] > m && b[3] - b[1] > m)) {
            continue;
        }
        ranked.push((rank, i, k, s, b));
    }
    let mut kept = Vec::new();
    for k in 0..c.classes {
        let mut class_kept: Vec<(usize, usize, f64, [f64; 4])> = Vec::new();
        for &(rank, i, kk, s, b) in &ranked {
            if kk == k
                && class_kept
                    .iter()
                    .all(|q| hardmine_host_tests::reference::iou(&q.3, &b) <= iou_thr)
            {
                class_kept.push((rank, i, s, b));
            }
        }
        kept.extend(
            class_kept
                .into_iter()
                .map(|(r, i, s, b)| (r, i, k as u16, s, b)),
        );
    }
    kept.sort_by_key(|q| q.0);
    kept.truncate(max_per_img);
    kept.into_iter()
        .map(|(_, i, k, s, b)| (i, k, s, b))
        .collect()
}

fn run(
    post: &PostProcess<f64>,
    c: &Case,
    image: Option<[f64; 2]>,
    nms_pre: usize,
    max_per_img: usize,
) -> Vec<(usize, u16, f64, [f64; 4])> {
    let head = HeadOutput {
        anchors: &c.anchors,
        deltas: &c.deltas,
        scores: &c.scores,
        num_classes: c.classes,
    };
    let mut pool = vec![Candidate::default(); nms_pre];
    let mut out = vec![Detection::default(); max_per_img];
    let n = post.run(&head, image, &mut pool, &mut out).unwrap();
    out[..n]
        .iter()
        .map(|d| (d.anchor, d.class, d.score, d.bbox))
        .collect()
}

fn random_case(rng: &mut SplitMix64) -> Case {
    let n = 1 + rng.below(60) as usize;
    let classes = 1 + rng.below(3) as usize;
    let mut anchors = Vec::new();
    for _ in 0..n {
        // A few anchor sizes on a coarse grid: many overlaps, some exact duplicates.
        let x = rng.below(6) as f64 * 4.0;
        let y = rng.below(6) as f64 * 4.0;
        let s = [4.0, 8.0, 12.0][rng.below(3) as usize];
        anchors.extend_from_slice(&[x, y, x + s, y + s]);
    }
    let deltas = (0..4 * n)
        .map(|k| {
            if rng.below(3) == 0 {
                0.0
            } else {
                (rng.unit_f64() - 0.5) * if k % 4 >= 2 { 12.0 } else { 1.0 }
            }
        })
        .collect();
    // Scores on a grid of tenths: many ties.
    let scores = (0..n * classes)
        .map(|_| rng.below(11) as f64 / 10.0)
        .collect();
    Case {
        anchors,
        deltas,
        scores,
        classes,
    }
}

#[test]
fn matches_the_brute_force_oracle() {
    let mut rng = SplitMix64::new(11);
    for round in 0..600 {
        let c = random_case(&mut rng);
        // Each setting from its own digit of `round` (mixed radix 5, 3, 3, 2, 3, 3): the 600
        // rounds cover all 810 combinations' first 600, every pair of settings among them.
        let digit = |place: usize, radix: usize| (round / place) % radix;
        let iou_thr = [0.0, 0.3, 0.5, 0.7, 1.0][digit(1, 5)];
        let thr = [0.05, 0.35, 0.0][digit(5, 3)];
        let min_size = [Some(0.0), None, Some(3.0)][digit(15, 3)];
        let image = [None, Some([20.0, 16.0])][digit(45, 2)];
        let nms_pre = [1000, 7, 1][digit(90, 3)];
        let max_per_img = [100, 3, 1][digit(270, 3)];
        let post = PostProcess::new(thr, iou_thr)
            .unwrap()
            .with_min_bbox_size(min_size)
            .unwrap();
        let want = oracle(&c, thr, iou_thr, min_size, image, nms_pre, max_per_img);
        let got = run(&post, &c, image, nms_pre, max_per_img);
        // Anchor, class and score exactly; boxes to 1e-9 (std's `exp` and libm's may differ
        // in the last bit).
        let key = |v: &[(usize, u16, f64, [f64; 4])]| -> Vec<(usize, u16, f64)> {
            v.iter().map(|d| (d.0, d.1, d.2)).collect()
        };
        assert_eq!(key(&got), key(&want), "round {round}");
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g.3.iter().zip(&w.3).all(|(a, b)| (a - b).abs() <= 1e-9),
                "round {round}"
            );
        }
    }
}

#[test]
fn retinanet_defaults() {
    let p = PostProcess::<f32>::retinanet();
    assert_eq!(
        (p.score_thr(), p.iou_thr(), p.min_bbox_size()),
        (0.05, 0.5, Some(0.0))
    );
    assert!(p.coder().clip_border());
}

/// One anchor can give several classes; the same box in two classes is not suppressed; ties in
/// score go to the lower anchor; scores at the threshold are dropped.
#[test]
fn per_class_ties_and_threshold_by_hand() {
    let c = Case {
        anchors: vec![
            0.0, 0.0, 10.0, 10.0, 0.0, 0.0, 10.0, 10.0, 50.0, 50.0, 60.0, 60.0,
        ],
        deltas: vec![0.0; 12],
        // anchor-major, 2 classes
        scores: vec![0.6, 0.6, 0.6, 0.9, 0.05, 0.3],
        classes: 2,
    };
    let post = PostProcess::<f64>::retinanet();
    let got = run(&post, &c, None, 10, 10);
    let b0 = [0.0, 0.0, 10.0, 10.0];
    let b2 = [50.0, 50.0, 60.0, 60.0];
    // (anchor 1, class 1) 0.9 first; (0, 0) 0.6 beats (0, 1) 0.6 (class) and (1, 0) 0.6
    // (anchor); (0, 1) is suppressed by (1, 1), (1, 0) by (0, 0); anchor 2's 0.05 is not above
    // the threshold.
    assert_eq!(got, vec![(1, 1, 0.9, b0), (0, 0, 0.6, b0), (2, 1, 0.3, b2)]);
    // max_per_img 2 keeps the best two.
    assert_eq!(run(&post, &c, None, 10, 2), got[..2].to_vec());
    // nms_pre 1 keeps only the best candidate.
    assert_eq!(run(&post, &c, None, 1, 10), got[..1].to_vec());
}

/// RetinaNet's `min_bbox_size = 0` drops a box clipped to zero width.
#[test]
fn zero_width_boxes_are_dropped() {
    let c = Case {
        anchors: vec![-20.0, 0.0, -10.0, 10.0, 0.0, 0.0, 5.0, 5.0],
        deltas: vec![0.0; 8],
        scores: vec![0.9, 0.5],
        classes: 1,
    };
    let post = PostProcess::<f64>::retinanet();
    let got = run(&post, &c, Some([32.0, 32.0]), 10, 10);
    assert_eq!(got, vec![(1, 0, 0.5, [0.0, 0.0, 5.0, 5.0])]);
    let keep_all = post.with_min_bbox_size(None).unwrap();
    assert_eq!(run(&keep_all, &c, Some([32.0, 32.0]), 10, 10).len(), 2);
}

#[test]
fn bad_input_is_an_error() {
    let post = PostProcess::<f32>::retinanet();
    let anchors = [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 2.0, 2.0];
    let deltas = [0.0f32; 8];
    let scores = [0.5f32; 4];
    let head = |anchors, deltas, scores, num_classes| HeadOutput {
        anchors,
        deltas,
        scores,
        num_classes,
    };
    let mut pool = [Candidate::default(); 4];
    let mut out = [Detection::default(); 4];
    let p = Error::InvalidParameter;
    let mut go = |h: &HeadOutput<'_, f32>, image| post.run(h, image, &mut pool, &mut out);
    // IoU 1/4: nothing suppressed.
    assert_eq!(go(&head(&anchors, &deltas, &scores, 2), None), Ok(4));
    assert_eq!(
        go(&head(&anchors, &deltas, &scores, 0), None),
        Err(p("num_classes"))
    );
    assert_eq!(
        go(&head(&anchors, &deltas, &scores, 70_000), None),
        Err(p("num_classes"))
    );
    assert_eq!(
        go(&head(&anchors, &deltas, &scores, 3), None),
        Err(Error::LengthMismatch {
            expected: 3,
            got: 4
        })
    );
    assert_eq!(
        go(&head(&anchors, &deltas[..4], &scores, 2), None),
        Err(Error::LengthMismatch {
            expected: 8,
            got: 4
        })
    );
    let bad_scores = [0.5, f32::NAN, 0.5, 0.5];
    assert_eq!(
        go(&head(&anchors, &deltas, &bad_scores, 2), None),
        Err(Error::NonFinite { index: 1 })
    );
    let inverted = [0.0, 0.0, 1.0, 1.0, 3.0, 0.0, 2.0, 2.0];
    assert_eq!(
        go(&head(&inverted, &deltas, &scores, 2), None),
        Err(Error::InvalidBox { index: 1 })
    );
    assert_eq!(
        go(&head(&anchors, &deltas, &scores, 2), Some([-1.0, 4.0])),
        Err(p("image"))
    );
    let h = head(&anchors, &deltas, &scores, 2);
    assert_eq!(
        post.run(&h, None, &mut [], &mut [Detection::default()]),
        Err(p("nms_pre"))
    );
    assert_eq!(
        post.run(&h, None, &mut [Candidate::default()], &mut []),
        Err(p("max_per_img"))
    );
    assert_eq!(PostProcess::new(f32::NAN, 0.5), Err(p("score_thr")));
    assert_eq!(PostProcess::new(0.1f32, 1.5), Err(p("nms_iou")));
    assert_eq!(post.with_min_bbox_size(Some(-1.0)), Err(p("min_bbox_size")));
}

/// The pool keeps the best candidates, sorted, whatever the order they arrive in.
#[test]
fn candidates_hold_the_sorted_pool() {
    let n = 50;
    let anchors: Vec<f32> = (0..n)
        .flat_map(|i| [i as f32 * 100.0, 0.0, i as f32 * 100.0 + 10.0, 10.0])
        .collect();
    let scores: Vec<f32> = (0..n).map(|i| ((i * 37) % n) as f32 / n as f32).collect();
    let head = HeadOutput {
        anchors: &anchors,
        deltas: &vec![0.0; 4 * n],
        scores: &scores,
        num_classes: 1,
    };
    let mut pool = [Candidate::default(); 5];
    let mut out = [Detection::default(); 5];
    let post = PostProcess::new(0.0f32, 0.5).unwrap();
    assert_eq!(post.run(&head, None, &mut pool, &mut out), Ok(5));
    let got: Vec<f32> = pool.iter().map(|c| c.score()).collect();
    assert_eq!(got, [0.98, 0.96, 0.94, 0.92, 0.9]);
    assert!(pool
        .iter()
        .zip(&out)
        .all(|(c, d)| c.index() == d.anchor && c.score() == d.score));
}
