//! A short fine-tune of every method on both paths learns: test mAP far above chance, where
//! chance is computed here as the average precision a random ranking gets (the prevalence of a
//! class among the test cells), not a tuned number.

use hardmine_cli::finetune::{self, method, Options, Path};

fn short(path: Path) -> Vec<finetune::Report> {
    let opts = Options {
        path,
        steps: 150,
        test_scenes: 20,
        ..Options::default()
    };
    finetune::run(&opts, &mut |_, _, _| {}).expect("fine-tuning runs")
}

fn check(path: Path) {
    let reports = short(path);
    assert_eq!(reports.len(), method::ALL.len());
    for r in &reports {
        // A random score ranks a class's positives uniformly: its expected AP is the class's
        // prevalence, the positive rate spread over the ten digits.
        let chance = r.positive_rate / 10.0;
        assert!(
            r.positive_rate > 0.0 && r.positive_rate < 0.002,
            "{}: about one positive per thousand cells",
            r.method
        );
        assert!(
            r.map > 100.0 * chance,
            "{} on {}: mAP {} vs chance {chance}",
            r.method,
            r.path,
            r.map
        );
        assert!(r.train_loss.is_finite() && r.wall_s > 0.0);
        let shares: f64 = r.census.iter().sum();
        assert!(
            (shares - 1.0).abs() < 1e-9,
            "{}: census shares sum to {shares}",
            r.method
        );
    }
}

#[test]
fn every_method_learns_in_f32() {
    check(Path::F32);
}

#[test]
fn every_method_learns_in_fixed_point() {
    check(Path::Fixed);
}

#[test]
fn the_fixed_path_tracks_f32() {
    let opts = |path| Options {
        path,
        steps: 150,
        test_scenes: 20,
        methods: vec![method::Method::Bce],
        ..Options::default()
    };
    let a = finetune::run(&opts(Path::F32), &mut |_, _, _| {}).unwrap();
    let b = finetune::run(&opts(Path::Fixed), &mut |_, _, _| {}).unwrap();
    assert!(
        (a[0].map - b[0].map).abs() < 0.1,
        "f32 mAP {} vs fixed {}",
        a[0].map,
        b[0].map
    );
}
