//! A few dozen fine-tuning steps of every run (each method, and the box-loss ablation) on both
//! paths, from the committed pretrained weights and the committed learning rates, improve the
//! detector on the validation scenes: AP50 rises above the pretrained detector's, no run
//! diverges, box regression beats the anchors alone, and the scenes stay imbalanced.

use hardmine_cli::finetune::{self, Options, Path, Split};

fn check(path: Path) {
    let opts = Options {
        path,
        steps: 40,
        eval_scenes: 100,
        split: Split::Val,
        ..Options::default()
    };
    let reports = finetune::run(&opts, &mut |_, _, _| {}).expect("fine-tuning runs");
    assert_eq!(reports.len(), opts.runs().len());
    for r in &reports {
        let name = format!("{}+{} on {}", r.method, r.box_loss, r.path);
        assert_eq!(r.diverged, None, "{name}");
        assert!(
            r.positive_rate > 0.0 && r.positive_rate <= 0.01,
            "{name}: positive rate {}",
            r.positive_rate
        );
        assert!(
            r.ap50 > r.ap50_before,
            "{name}: AP50 {} after 40 steps, {} before",
            r.ap50,
            r.ap50_before
        );
        assert!(
            r.ap75 > r.ap75_anchors_only,
            "{name}: AP75 {} against {} with the anchors alone",
            r.ap75,
            r.ap75_anchors_only
        );
        assert!(
            r.ap_source_before >= 0.6,
            "{name}: source AP50 {}",
            r.ap_source_before
        );
        assert!(r.train_loss.is_finite() && r.wall_s > 0.0 && r.ms_per_step > 0.0);
        assert!((0.0..=1.0).contains(&r.zero_update_share));
        let learned = r.method == "afast" || r.method == "afast_asdn";
        let agreement = [
            r.asdn_agreement_init,
            r.asdn_agreement_before,
            r.asdn_agreement_after,
        ];
        if learned {
            // ASDN's agreement with the search on the evaluation scenes' positives, reported
            // before and after joint training; pretraining (on the 40 training scenes here)
            // lifts it above the untrained network's.
            let [init, before, after] = agreement.map(|a| a.expect("agreement reported"));
            for a in [init, before, after] {
                assert!((0.0..=1.0).contains(&a), "{name}: agreement {a}");
            }
            assert!(
                before > init,
                "{name}: agreement {init} -> {before} by pretraining"
            );
            assert!(
                r.asdn_lr.is_some() && r.mask_raised_share.is_some(),
                "{name}"
            );
        } else {
            assert!(agreement.iter().all(Option::is_none), "{name}");
        }
        match r.angle_bound_share {
            Some(share) => {
                assert_eq!(r.method, "afast", "{name}");
                assert!((0.0..=0.9).contains(&share), "{name}: {share} at the bound");
            }
            None => assert_ne!(r.method, "afast", "{name}: no angle share"),
        }
    }
}

#[test]
fn every_run_improves_in_f32() {
    check(Path::F32);
}

#[test]
fn every_run_improves_in_q15_16() {
    check(Path::Fixed);
}

/// A learning rate far too large: each run is reported as diverged, with its step and rate,
/// and the others still report.
#[test]
fn a_diverging_run_is_reported_and_the_others_still_run() {
    use hardmine_cli::finetune::method::Method;
    let opts = Options {
        steps: 30,
        eval_scenes: 10,
        lr: Some(1e6),
        methods: vec![Method::Ohem, Method::Focal],
        ablation: false,
        ..Options::default()
    };
    let reports = finetune::run(&opts, &mut |_, _, _| {}).expect("the job itself runs");
    assert_eq!(reports.len(), 2);
    let ohem = reports[0]
        .diverged
        .as_deref()
        .expect("ohem diverges at lr 1e6");
    assert!(ohem.starts_with("ohem diverged at step "), "{ohem}");
    assert!(ohem.contains("(lr 1000000)"), "{ohem}");
    assert!(reports[0].ap.is_nan());
    // The second run went on after the first stopped (it may diverge too, at its own step).
    assert_eq!(reports[1].method, "focal");
    assert!(reports[1].diverged.is_some() || reports[1].ap.is_finite());
}

/// ASTN with a learning rate far too large drives its angles to the +-10 degree bound: the run
/// fails, saying how many sit there, and ASDN alone (no angles) still reports.
#[test]
fn an_astn_stuck_at_the_bound_fails_the_run() {
    use hardmine_cli::finetune::method::Method;
    let opts = Options {
        steps: 30,
        eval_scenes: 10,
        astn_lr: Some(1e4),
        methods: vec![Method::Afast, Method::AfastAsdn],
        ablation: false,
        ..Options::default()
    };
    let reports = finetune::run(&opts, &mut |_, _, _| {}).expect("the job itself runs");
    let why = reports[0].diverged.as_deref().expect("afast fails");
    assert!(why.starts_with("afast diverged at step 30"), "{why}");
    assert!(
        why.contains("of ASTN's angles at the +-10 degree bound (more than 90%)"),
        "{why}"
    );
    assert_eq!(reports[1].method, "afast_asdn");
    assert_eq!(reports[1].diverged, None);
    assert!(reports[1].ap.is_finite());
}
