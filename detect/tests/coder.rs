//! The delta coder: round trips, mmdetection's docstring example, clamping and clipping.

use hardmine::{Error, Real, SplitMix64, Q16};
use hardmine_detect::DeltaXywhCoder;

fn random_box(rng: &mut SplitMix64) -> [f64; 4] {
    let x1 = rng.unit_f64() * 100.0 - 20.0;
    let y1 = rng.unit_f64() * 100.0 - 20.0;
    let w = 0.5 + rng.unit_f64() * 60.0;
    let h = 0.5 + rng.unit_f64() * 60.0;
    [x1, y1, x1 + w, y1 + h]
}

fn round_trip<T: Real>(tol: f64, means: [f64; 4], stds: [f64; 4]) {
    let coder = DeltaXywhCoder::<T>::new()
        .with_means_stds(means.map(T::from_f64), stds.map(T::from_f64))
        .unwrap();
    let mut rng = SplitMix64::new(3);
    let (n, mut anchors, mut gts) = (500, Vec::new(), Vec::new());
    for _ in 0..n {
        let a = random_box(&mut rng);
        let mut g = random_box(&mut rng);
        // Keep the size ratio inside the decode clamp (e^4.1).
        for k in [2, 3] {
            let (lo, side) = (
                g[k - 2],
                (g[k] - g[k - 2]).clamp((a[k] - a[k - 2]) / 50.0, (a[k] - a[k - 2]) * 50.0),
            );
            g[k] = lo + side;
        }
        anchors.extend(a.map(T::from_f64));
        gts.extend(g.map(T::from_f64));
    }
    let mut deltas = vec![T::ZERO; 4 * n];
    coder.encode(&anchors, &gts, &mut deltas).unwrap();
    let mut back = vec![T::ZERO; 4 * n];
    coder.decode(&anchors, &deltas, None, &mut back).unwrap();
    for i in 0..n {
        let g = &gts[4 * i..4 * i + 4];
        // Relative to the box's largest coordinate (f32's ULP at 100 is 7.6e-6).
        let scale = g.iter().fold(1.0f64, |m, v| m.max(v.to_f64().abs()));
        for (b, w) in back[4 * i..4 * i + 4].iter().zip(g) {
            let err = (b.to_f64() - w.to_f64()).abs() / scale;
            assert!(err <= tol, "box {i}: {err:e}");
        }
    }
}

#[test]
fn round_trip_f64_to_1e_12_and_f32_to_1e_6() {
    let id = ([0.0; 4], [1.0; 4]);
    let rcnn = ([0.01, -0.02, 0.0, 0.05], [0.1, 0.1, 0.2, 0.2]);
    for (m, s) in [id, rcnn] {
        round_trip::<f64>(1e-12, m, s);
        round_trip::<f32>(1e-6, m, s);
    }
    // Q15.16: a few LSB of the deltas, relative to the box size.
    round_trip::<Q16>(2e-3, id.0, id.1);
}

/// Encoding by hand, with means and stds.
#[test]
fn encode_by_hand() {
    let coder = DeltaXywhCoder::<f64>::new();
    let d = coder.encode_box(&[0.0, 0.0, 10.0, 20.0], &[1.0, 2.0, 21.0, 12.0]);
    // centres (5, 10) -> (11, 7); sizes (10, 20) -> (20, 10)
    assert_eq!(d[0], 0.6);
    assert_eq!(d[1], -0.15);
    assert!((d[2] - 2f64.ln()).abs() < 1e-15 && (d[3] + 2f64.ln()).abs() < 1e-15);
    let scaled = coder
        .with_means_stds([0.1, 0.0, 0.0, 0.0], [0.1, 0.1, 0.2, 0.2])
        .unwrap();
    let s = scaled.encode_box(&[0.0, 0.0, 10.0, 20.0], &[1.0, 2.0, 21.0, 12.0]);
    assert!((s[0] - 5.0).abs() < 1e-14 && (s[1] + 1.5).abs() < 1e-14);
    assert!((s[2] - 2f64.ln() / 0.2).abs() < 1e-14);
}

/// mmdetection's `delta2bbox` docstring example, with `max_shape = (32, 32)`.
#[test]
fn mmdet_delta2bbox_docstring_example() {
    let rois = [
        0., 0., 1., 1., 0., 0., 1., 1., 0., 0., 1., 1., 5., 5., 5., 5.,
    ];
    let deltas = [
        0., 0., 0., 0., 1., 1., 1., 1., 0., 0., 2., -1., 0.7, -1.9, -0.5, 0.3,
    ];
    #[rustfmt::skip]
    let want = [
        0.0000, 0.0000, 1.0000, 1.0000,
        0.1409, 0.1409, 2.8591, 2.8591,
        0.0000, 0.3161, 4.1945, 0.6839,
        5.0000, 5.0000, 5.0000, 5.0000,
    ];
    fn check<T: Real>(rois: &[f64], deltas: &[f64], want: &[f64], tol: f64) {
        let rois: Vec<T> = rois.iter().map(|&v| T::from_f64(v)).collect();
        let deltas: Vec<T> = deltas.iter().map(|&v| T::from_f64(v)).collect();
        let mut out = vec![T::ZERO; 16];
        let image = Some([T::from_f64(32.0), T::from_f64(32.0)]);
        DeltaXywhCoder::<T>::new()
            .decode(&rois, &deltas, image, &mut out)
            .unwrap();
        for (g, w) in out.iter().zip(want) {
            assert!((g.to_f64() - w).abs() <= tol, "{out:?}");
        }
    }
    check::<f64>(&rois, &deltas, &want, 5e-5);
    check::<f32>(&rois, &deltas, &want, 5e-5);
    check::<Q16>(&rois, &deltas, &want, 3e-4);
}

#[test]
fn decode_clamps_dw_dh_at_ln_of_wh_ratio_clip() {
    let coder = DeltaXywhCoder::<f64>::new();
    let max_ratio = (16.0f64 / 1000.0).ln().abs();
    assert!((coder.max_ratio() - max_ratio).abs() < 1e-15);
    let roi = [0.0, 0.0, 10.0, 10.0];
    let big = coder.decode_box(&roi, &[0.0, 0.0, 10.0, -10.0], None);
    let w = big[2] - big[0];
    let h = big[3] - big[1];
    assert!((w - 10.0 * 62.5).abs() < 1e-9, "{w}");
    assert!((h - 10.0 * 0.016).abs() < 1e-12, "{h}");
    // Just inside the clamp: unchanged.
    let inside = coder.decode_box(&roi, &[0.0, 0.0, 4.0, 0.0], None);
    assert!(((inside[2] - inside[0]) - 10.0 * 4f64.exp()).abs() < 1e-9);
    // Another clip.
    let wide = coder.with_wh_ratio_clip(0.5).unwrap();
    let b = wide.decode_box(&roi, &[0.0, 0.0, 3.0, 0.0], None);
    assert!(((b[2] - b[0]) - 20.0).abs() < 1e-12);
    assert_eq!(
        coder.with_wh_ratio_clip(0.0),
        Err(Error::InvalidParameter("wh_ratio_clip"))
    );
    assert_eq!(
        coder.with_wh_ratio_clip(1.5),
        Err(Error::InvalidParameter("wh_ratio_clip"))
    );
}

#[test]
fn decode_clips_to_the_image_only_when_asked() {
    let coder = DeltaXywhCoder::<f32>::new();
    let roi = [-5.0, 2.0, 15.0, 30.0];
    let image = Some([20.0, 12.0]); // height 20, width 12
    assert_eq!(
        coder.decode_box(&roi, &[0.0; 4], image),
        [0.0, 2.0, 12.0, 20.0]
    );
    assert_eq!(coder.decode_box(&roi, &[0.0; 4], None), roi);
    assert_eq!(
        coder
            .with_clip_border(false)
            .decode_box(&roi, &[0.0; 4], image),
        roi
    );
}

#[test]
fn bad_input_is_an_error() {
    let coder = DeltaXywhCoder::<f32>::new();
    let a = [0.0, 0.0, 10.0, 10.0, 0.0, 0.0, 4.0, 4.0];
    let mut out = [0.0f32; 8];
    // A target of zero width (its ln is -inf in mmdetection).
    let flat = [0.0, 0.0, 10.0, 10.0, 3.0, 0.0, 3.0, 4.0];
    assert_eq!(
        coder.encode(&a, &flat, &mut out),
        Err(Error::InvalidBox { index: 1 })
    );
    assert_eq!(
        coder.encode(&flat, &a, &mut out),
        Err(Error::InvalidBox { index: 1 })
    );
    assert_eq!(
        coder.encode(&a[..4], &a, &mut out),
        Err(Error::LengthMismatch {
            expected: 8,
            got: 4
        })
    );
    assert_eq!(
        coder.encode(&a, &a, &mut out[..7]),
        Err(Error::LengthMismatch {
            expected: 4,
            got: 7
        })
    );
    let mut deltas = [0.0f32; 8];
    deltas[5] = f32::INFINITY;
    assert_eq!(
        coder.decode(&a, &deltas, None, &mut out),
        Err(Error::NonFinite { index: 5 })
    );
    assert_eq!(
        coder.decode(&a, &[0.0; 8], Some([f32::NAN, 1.0]), &mut out),
        Err(Error::NonFinite { index: 0 })
    );
    assert_eq!(
        coder.decode(&a, &[0.0; 8], Some([-1.0, 1.0]), &mut out),
        Err(Error::InvalidParameter("image"))
    );
    // A decoded box that overflows f32.
    let huge = [0.0, 0.0, 3e38, 3e38];
    assert_eq!(
        coder.decode(&huge, &[0.0, 0.0, 1.0, 1.0], None, &mut out[..4]),
        Err(Error::NonFinite { index: 0 })
    );
    assert_eq!(
        coder.with_means_stds([0.0; 4], [1.0, 0.0, 1.0, 1.0]),
        Err(Error::InvalidParameter("stds"))
    );
    assert_eq!(
        coder.with_means_stds([f32::NAN, 0.0, 0.0, 0.0], [1.0; 4]),
        Err(Error::InvalidParameter("means"))
    );
}
