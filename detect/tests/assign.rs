//! RetinaNet's IoU assignment on hand-made cases and against a transcription of mmdetection's
//! `assign_wrt_overlaps` over the full overlap matrix.

use hardmine::{Error, Real, SplitMix64, Q16};
use hardmine_detect::{Assignment, Match, MaxIouAssigner};

fn run<T: Real>(
    a: &MaxIouAssigner<T>,
    anchors: &[f64],
    gts: &[f64],
) -> (Vec<Assignment<T>>, usize) {
    let anchors: Vec<T> = anchors.iter().map(|&v| T::from_f64(v)).collect();
    let gts: Vec<T> = gts.iter().map(|&v| T::from_f64(v)).collect();
    let mut out = vec![Assignment::default(); anchors.len() / 4];
    let pos = a.assign(&anchors, &gts, &mut out).unwrap();
    (out, pos)
}

fn matches<T: Real>(out: &[Assignment<T>]) -> Vec<Match> {
    out.iter().map(|a| a.matched).collect()
}

/// The ignore band `[0.4, 0.5)`: 0.39 negative, 0.4 and 0.45 ignored, 0.5 positive.
fn ignore_band<T: Real>() {
    let gt = [0.0, 0.0, 10.0, 10.0];
    #[rustfmt::skip]
    let anchors = [
        0.0, 0.0, 10.0, 3.9, // IoU 0.39
        0.0, 0.0, 10.0, 4.0, // 0.4
        0.0, 0.0, 10.0, 4.5, // 0.45
        0.0, 0.0, 10.0, 5.0, // 0.5
        0.0, 0.0, 10.0, 10.0, // 1: the box's best
    ];
    let (out, pos) = run(&MaxIouAssigner::<T>::retinanet(), &anchors, &gt);
    use Match::*;
    assert_eq!(
        matches(&out),
        [Negative, Ignored, Ignored, Positive(0), Positive(0)]
    );
    assert_eq!(pos, 2);
    assert!((out[2].max_iou.to_f64() - 0.45).abs() < 1e-4);
    assert_eq!(out[4].max_iou, T::ONE);
    assert_eq!(out[4].gt(), Some(0));
    assert_eq!(out[1].gt(), None);
}

#[test]
fn ignore_band_on_every_path() {
    ignore_band::<f32>();
    ignore_band::<f64>();
    ignore_band::<Q16>();
}

/// A box whose best anchor has IoU 1/7 (below the negative threshold) still gets it.
#[test]
fn best_anchor_rule_makes_a_low_iou_anchor_positive() {
    let gt = [0.0, 0.0, 10.0, 10.0];
    let anchors = [5.0, 5.0, 15.0, 15.0, 8.0, 8.0, 18.0, 18.0];
    let (out, pos) = run(&MaxIouAssigner::<f64>::retinanet(), &anchors, &gt);
    assert_eq!(matches(&out), [Match::Positive(0), Match::Negative]);
    assert_eq!(pos, 1);
    assert_eq!(out[0].max_iou, 25.0 / 175.0);
    // Without low-quality matches it is negative.
    let plain = MaxIouAssigner::<f64>::retinanet().with_match_low_quality(false);
    let (out, pos) = run(&plain, &anchors, &gt);
    assert_eq!(matches(&out), [Match::Negative, Match::Negative]);
    assert_eq!(pos, 0);
}

/// Step 3's tie between two boxes goes to the lower index.
#[test]
fn step3_tie_goes_to_the_lower_box() {
    let gts = [0.0, 0.0, 10.0, 8.0, 0.0, 2.0, 10.0, 10.0];
    // Anchor 0 has IoU 0.8 with both; anchors 1 and 2 are each box's best.
    let anchors = [
        0.0, 0.0, 10.0, 10.0, 0.0, 0.0, 10.0, 8.0, 0.0, 2.0, 10.0, 10.0,
    ];
    let (out, _) = run(&MaxIouAssigner::<f64>::retinanet(), &anchors, &gts);
    use Match::*;
    assert_eq!(matches(&out), [Positive(0), Positive(0), Positive(1)]);
    assert_eq!(out[0].max_iou, 0.8);
}

/// Step 4's tie between anchors: all of them (gt_max_assign_all), or the first one.
#[test]
fn step4_ties_between_anchors() {
    let gt = [0.0, 0.0, 10.0, 10.0];
    let anchors = [
        -5.0, 0.0, 5.0, 10.0, 5.0, 0.0, 15.0, 10.0, 30.0, 0.0, 40.0, 10.0,
    ];
    let (out, pos) = run(&MaxIouAssigner::<f64>::retinanet(), &anchors, &gt);
    use Match::*;
    assert_eq!(matches(&out), [Positive(0), Positive(0), Negative]);
    assert_eq!(pos, 2);
    let first = MaxIouAssigner::<f64>::retinanet().with_gt_max_assign_all(false);
    let (out, pos) = run(&first, &anchors, &gt);
    assert_eq!(matches(&out), [Positive(0), Negative, Negative]);
    assert_eq!(pos, 1);
}

/// Step 4 runs over the boxes in order: a later box takes the anchor (mmdetection's comment:
/// IoU 0.9 with box 0 and 0.5 with box 1, but it is box 1's best anchor), and the IoU reported
/// stays the anchor's best.
#[test]
fn step4_later_box_wins() {
    let gts = [0.0, 0.0, 10.0, 9.0, 0.0, 0.0, 10.0, 5.0];
    let anchors = [0.0, 0.0, 10.0, 10.0, 0.0, 5.0, 10.0, 15.0];
    let (out, _) = run(&MaxIouAssigner::<f64>::retinanet(), &anchors, &gts);
    assert_eq!(out[0].matched, Match::Positive(1));
    assert_eq!(out[0].max_iou, 0.9);
}

#[test]
fn no_ground_truth_makes_every_anchor_negative() {
    let anchors = [0.0, 0.0, 10.0, 10.0, 5.0, 5.0, 15.0, 15.0];
    let a = MaxIouAssigner::<f32>::retinanet();
    let mut out = [Assignment {
        matched: Match::Ignored,
        max_iou: 0.7,
    }; 2];
    assert_eq!(a.assign(&anchors, &[], &mut out), Ok(0));
    assert_eq!(
        out,
        [Assignment {
            matched: Match::Negative,
            max_iou: 0.0
        }; 2]
    );
    // No anchors: nothing to do.
    assert_eq!(a.assign(&[], &[0.0, 0.0, 1.0, 1.0], &mut []), Ok(0));
}

/// mmdetection's quirk with `min_pos_iou = 0`: a box overlapping no anchor has best IoU 0, and
/// every anchor it does not overlap becomes its positive. A positive `min_pos_iou` avoids it.
#[test]
fn box_overlapping_no_anchor_with_min_pos_iou_zero() {
    let gt = [100.0, 100.0, 110.0, 110.0];
    let anchors = [0.0, 0.0, 10.0, 10.0, 20.0, 0.0, 30.0, 10.0];
    let (out, pos) = run(&MaxIouAssigner::<f64>::retinanet(), &anchors, &gt);
    assert_eq!(matches(&out), [Match::Positive(0), Match::Positive(0)]);
    assert_eq!(pos, 2);
    let guarded = MaxIouAssigner::new(0.5, 0.4, 0.01).unwrap();
    let (out, pos) = run(&guarded, &anchors, &gt);
    assert_eq!(matches(&out), [Match::Negative, Match::Negative]);
    assert_eq!(pos, 0);
}

#[test]
fn bad_input_is_an_error_and_leaves_out_alone() {
    let a = MaxIouAssigner::<f32>::retinanet();
    let keep = Assignment {
        matched: Match::Ignored,
        max_iou: 0.25,
    };
    let mut out = [keep; 2];
    let good = [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 2.0, 2.0];
    let gt = [0.0, 0.0, 1.0, 1.0];
    assert_eq!(
        a.assign(&good[..4], &gt, &mut out),
        Err(Error::LengthMismatch {
            expected: 8,
            got: 4
        })
    );
    assert_eq!(
        a.assign(&good, &gt[..3], &mut out),
        Err(Error::LengthMismatch {
            expected: 0,
            got: 3
        })
    );
    let mut nan = good;
    nan[6] = f32::NAN;
    assert_eq!(
        a.assign(&nan, &gt, &mut out),
        Err(Error::NonFinite { index: 1 })
    );
    let mut inverted = good;
    inverted[5] = 3.0;
    assert_eq!(
        a.assign(&inverted, &gt, &mut out),
        Err(Error::InvalidBox { index: 1 })
    );
    assert_eq!(
        a.assign(&good, &[0.0, 0.0, -1.0, 1.0], &mut out),
        Err(Error::InvalidBox { index: 0 })
    );
    assert_eq!(out, [keep; 2]);
    let p = Error::InvalidParameter;
    assert_eq!(MaxIouAssigner::new(1.5f32, 0.4, 0.0), Err(p("pos_iou_thr")));
    assert_eq!(
        MaxIouAssigner::new(0.5f32, f32::NAN, 0.0),
        Err(p("neg_iou_thr"))
    );
    assert_eq!(MaxIouAssigner::new(0.5f32, 0.6, 0.0), Err(p("neg_iou_thr")));
    assert_eq!(
        MaxIouAssigner::new(0.5f32, 0.4, -0.1),
        Err(p("min_pos_iou"))
    );
    let r = MaxIouAssigner::<f64>::retinanet();
    assert_eq!(
        (r.pos_iou_thr(), r.neg_iou_thr(), r.min_pos_iou()),
        (0.5, 0.4, 0.0)
    );
}

/// mmdetection's `assign_wrt_overlaps`, transcribed over the full `[G, N]` matrix with its
/// `gt_inds` convention (-1 ignored, 0 negative, i + 1 box i).
fn oracle(
    anchors: &[f64],
    gts: &[f64],
    pos_thr: f64,
    neg_thr: f64,
    min_pos: f64,
) -> (Vec<i64>, Vec<f64>) {
    let n = anchors.len() / 4;
    let g = gts.len() / 4;
    let mut gt_inds = vec![-1i64; n];
    if g == 0 {
        return (vec![0; n], vec![0.0; n]);
    }
    let overlaps: Vec<Vec<f64>> = (0..g)
        .map(|i| {
            (0..n)
                .map(|j| {
                    hardmine_host_tests::reference::iou(
                        &gts[4 * i..4 * i + 4],
                        &anchors[4 * j..4 * j + 4],
                    )
                })
                .collect()
        })
        .collect();
    // max over dim 0 (first maximal index, as torch.max)
    let mut max_overlaps = vec![0.0; n];
    let mut argmax = vec![0usize; n];
    for j in 0..n {
        let mut best = overlaps[0][j];
        let mut arg = 0;
        for (i, row) in overlaps.iter().enumerate().skip(1) {
            if row[j] > best {
                best = row[j];
                arg = i;
            }
        }
        max_overlaps[j] = best;
        argmax[j] = arg;
    }
    let gt_max: Vec<f64> = overlaps
        .iter()
        .map(|r| r.iter().cloned().fold(f64::MIN, f64::max))
        .collect();
    for j in 0..n {
        if max_overlaps[j] >= 0.0 && max_overlaps[j] < neg_thr {
            gt_inds[j] = 0;
        }
    }
    for j in 0..n {
        if max_overlaps[j] >= pos_thr {
            gt_inds[j] = argmax[j] as i64 + 1;
        }
    }
    for i in 0..g {
        if gt_max[i] >= min_pos {
            for j in 0..n {
                if overlaps[i][j] == gt_max[i] {
                    gt_inds[j] = i as i64 + 1;
                }
            }
        }
    }
    (gt_inds, max_overlaps)
}

fn random_boxes(rng: &mut SplitMix64, n: usize, grid: u64) -> Vec<f64> {
    let mut v = Vec::with_capacity(4 * n);
    for _ in 0..n {
        let x1 = rng.below(grid) as f64;
        let y1 = rng.below(grid) as f64;
        let w = rng.below(grid / 2) as f64;
        let h = rng.below(grid / 2) as f64;
        v.extend_from_slice(&[x1, y1, x1 + w, y1 + h]);
    }
    v
}

/// Random boxes on a coarse integer grid (many exact ties, empty boxes, boxes overlapping no
/// anchor), against the oracle.
#[test]
fn matches_the_mmdetection_transcription_on_random_scenes() {
    let mut rng = SplitMix64::new(17);
    for round in 0..400 {
        let n = 1 + rng.below(40) as usize;
        let g = rng.below(5) as usize;
        let grid = 4 + rng.below(12);
        let anchors = random_boxes(&mut rng, n, grid);
        let gts = random_boxes(&mut rng, g, grid);
        let min_pos = if round % 2 == 0 { 0.0 } else { 0.1 };
        let (want, want_iou) = oracle(&anchors, &gts, 0.5, 0.4, min_pos);
        let assigner = MaxIouAssigner::new(0.5, 0.4, min_pos).unwrap();
        let mut out = vec![Assignment::default(); n];
        let pos = assigner.assign(&anchors, &gts, &mut out).unwrap();
        let got: Vec<i64> = out
            .iter()
            .map(|a| match a.matched {
                Match::Negative => 0,
                Match::Ignored => -1,
                Match::Positive(i) => i as i64 + 1,
            })
            .collect();
        assert_eq!(got, want, "round {round}");
        assert_eq!(out.iter().map(|a| a.max_iou).collect::<Vec<_>>(), want_iou);
        assert_eq!(pos, want.iter().filter(|&&k| k > 0).count());
    }
}
