//! Test metrics: mean average precision over the digit classes, recall at one false positive
//! per scene, and the census of who carries the loss.

/// Average precision of one class: the area under its precision-recall curve, as the mean of
/// the precision at each positive in score order (scikit-learn's `average_precision_score`).
/// Ties in score are broken against the positives (pessimistic).
pub fn average_precision(mut scored: Vec<(f64, bool)>) -> Option<f64> {
    let positives = scored.iter().filter(|s| s.1).count();
    if positives == 0 {
        return None;
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let (mut tp, mut sum) = (0usize, 0.0);
    for (rank, &(_, pos)) in scored.iter().enumerate() {
        if pos {
            tp += 1;
            sum += tp as f64 / (rank + 1) as f64;
        }
    }
    Some(sum / positives as f64)
}

/// Recall over all (cell, class) detections at the threshold that admits `max_fp` false
/// positives.
pub fn recall_at_false_positives(mut scored: Vec<(f64, bool)>, max_fp: usize) -> f64 {
    let positives = scored.iter().filter(|s| s.1).count();
    if positives == 0 {
        return 0.0;
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let (mut tp, mut fp) = (0usize, 0usize);
    for &(_, pos) in &scored {
        if pos {
            tp += 1;
        } else {
            fp += 1;
            if fp > max_fp {
                break;
            }
        }
    }
    tp as f64 / positives as f64
}

#[cfg(test)]
mod tests {
    use super::{average_precision, recall_at_false_positives};

    #[test]
    fn perfect_and_worst_rankings() {
        let perfect = vec![(0.9, true), (0.8, true), (0.1, false), (0.0, false)];
        assert_eq!(average_precision(perfect.clone()), Some(1.0));
        let worst = vec![(0.9, false), (0.8, false), (0.1, true), (0.0, true)];
        assert!((average_precision(worst).unwrap() - (1.0 / 3.0 + 2.0 / 4.0) / 2.0).abs() < 1e-12);
        assert_eq!(recall_at_false_positives(perfect, 0), 1.0);
        assert_eq!(average_precision(vec![(0.5, false)]), None);
    }
}
