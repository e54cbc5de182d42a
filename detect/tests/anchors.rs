//! Anchors against mmdetection's numbers and against values computed by hand.

use hardmine::{Error, Real, Q16};
use hardmine_detect::{Anchors, MAX_RATIOS, MAX_SCALES};

fn grid<T: Real>(a: &Anchors<T>, h: usize, w: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; a.anchors_len(h, w)];
    a.write(h, w, &mut out).unwrap();
    out
}

/// mmdetection's AnchorGenerator docstring: strides [16], ratios [1], scales [1], base size 9.
#[test]
fn mmdet_docstring_example() {
    let a = Anchors::new(16.0f32, &[1.0], &[1.0])
        .unwrap()
        .with_base_size(9.0)
        .unwrap();
    let want = [
        -4.5, -4.5, 4.5, 4.5, 11.5, -4.5, 20.5, 4.5, -4.5, 11.5, 4.5, 20.5, 11.5, 11.5, 20.5, 20.5,
    ];
    assert_eq!(grid(&a, 2, 2), want);
}

/// RetinaNet at stride 8 on a 1 x 2 map, from `tests/mmdet_formulas.py` (mmdetection's steps in
/// emulated float32): f32 agrees bit for bit.
#[rustfmt::skip]
const RETINA_STRIDE8_1X2: [[f32; 4]; 18] = [
    [-22.627416610717773, -11.313708305358887, 22.627416610717773, 11.313708305358887],
    [-28.508758544921875, -14.254379272460938, 28.508758544921875, 14.254379272460938],
    [-35.918785095214844, -17.959392547607422, 35.918785095214844, 17.959392547607422],
    [-16.0, -16.0, 16.0, 16.0],
    [-20.158737182617188, -20.158737182617188, 20.158737182617188, 20.158737182617188],
    [-25.39841651916504, -25.39841651916504, 25.39841651916504, 25.39841651916504],
    [-11.313708305358887, -22.627416610717773, 11.313708305358887, 22.627416610717773],
    [-14.254379272460938, -28.508758544921875, 14.254379272460938, 28.508758544921875],
    [-17.959392547607422, -35.918785095214844, 17.959392547607422, 35.918785095214844],
    [-14.627416610717773, -11.313708305358887, 30.627416610717773, 11.313708305358887],
    [-20.508758544921875, -14.254379272460938, 36.508758544921875, 14.254379272460938],
    [-27.918785095214844, -17.959392547607422, 43.918785095214844, 17.959392547607422],
    [-8.0, -16.0, 24.0, 16.0],
    [-12.158737182617188, -20.158737182617188, 28.158737182617188, 20.158737182617188],
    [-17.39841651916504, -25.39841651916504, 33.398414611816406, 25.39841651916504],
    [-3.3137083053588867, -22.627416610717773, 19.313709259033203, 22.627416610717773],
    [-6.2543792724609375, -28.508758544921875, 22.254379272460938, 28.508758544921875],
    [-9.959392547607422, -35.918785095214844, 25.959392547607422, 35.918785095214844],
];

#[test]
fn retinanet_f32_equals_mmdet_float32_bit_for_bit() {
    let a = Anchors::retinanet(8.0f32).unwrap();
    assert_eq!(a.per_location(), 9);
    let got = grid(&a, 1, 2);
    let want: Vec<f32> = RETINA_STRIDE8_1X2.iter().flatten().copied().collect();
    assert_eq!(got, want);
}

/// mmdetection's own test (`test_retina_anchor`): the base anchors at stride 8, to 4 decimals.
#[rustfmt::skip]
const MMDET_TEST_BASE_STRIDE8: [[f64; 4]; 9] = [
    [-22.6274, -11.3137, 22.6274, 11.3137],
    [-28.5088, -14.2544, 28.5088, 14.2544],
    [-35.9188, -17.9594, 35.9188, 17.9594],
    [-16.0000, -16.0000, 16.0000, 16.0000],
    [-20.1587, -20.1587, 20.1587, 20.1587],
    [-25.3984, -25.3984, 25.3984, 25.3984],
    [-11.3137, -22.6274, 11.3137, 22.6274],
    [-14.2544, -28.5088, 14.2544, 28.5088],
    [-17.9594, -35.9188, 17.9594, 35.9188],
];

fn base_anchors_match<T: Real>(tol: f64) {
    let a = Anchors::retinanet(T::from_f64(8.0)).unwrap();
    for (i, want) in MMDET_TEST_BASE_STRIDE8.iter().enumerate() {
        let got = a.base_anchor(i).unwrap();
        for (g, w) in got.iter().zip(want) {
            assert!((g.to_f64() - w).abs() <= tol, "{i}: {got:?} vs {want:?}");
        }
    }
    assert_eq!(a.base_anchor(9), None);
}

#[test]
fn retinanet_base_anchors_match_mmdet_test_on_every_path() {
    base_anchors_match::<f32>(5e-5);
    base_anchors_match::<f64>(5e-5);
    base_anchors_match::<Q16>(2e-3);
}

/// f64: each anchor against the closed form (std's powf and sqrt), to 1e-12.
#[test]
fn retinanet_f64_matches_closed_form() {
    let a = Anchors::retinanet(8.0f64).unwrap();
    let (h, w) = (3, 4);
    let got = grid(&a, h, w);
    let mut k = 0;
    for y in 0..h {
        for x in 0..w {
            for ratio in [0.5f64, 1.0, 2.0] {
                for s in 0..3 {
                    let scale = 4.0 * 2f64.powf(s as f64 / 3.0);
                    let ws = 8.0 / ratio.sqrt() * scale;
                    let hs = 8.0 * ratio.sqrt() * scale;
                    let (cx, cy) = (x as f64 * 8.0, y as f64 * 8.0);
                    let want = [cx - ws / 2.0, cy - hs / 2.0, cx + ws / 2.0, cy + hs / 2.0];
                    for (g, w) in got[4 * k..4 * k + 4].iter().zip(want) {
                        assert!((g - w).abs() < 1e-12, "anchor {k}");
                    }
                    k += 1;
                }
            }
        }
    }
    assert_eq!(k * 4, got.len());
}

/// A small configuration by hand: stride 4, scales [1, 2], ratio 1, centre offset 0.5.
#[test]
fn small_config_by_hand() {
    let a = Anchors::new(4.0f64, &[1.0, 2.0], &[1.0])
        .unwrap()
        .with_center_offset(0.5)
        .unwrap();
    assert_eq!(a.anchors_len(2, 2), 2 * 2 * 2 * 4);
    #[rustfmt::skip]
    let want = [
        0.0, 0.0, 4.0, 4.0,   -2.0, -2.0, 6.0, 6.0,   // (0, 0)
        4.0, 0.0, 8.0, 4.0,   2.0, -2.0, 10.0, 6.0,   // (0, 1)
        0.0, 4.0, 4.0, 8.0,   -2.0, 2.0, 6.0, 10.0,   // (1, 0)
        4.0, 4.0, 8.0, 8.0,   2.0, 2.0, 10.0, 10.0,   // (1, 1)
    ];
    assert_eq!(grid(&a, 2, 2), want);
    // Ratio 4 (height / width): h_ratio 2, w_ratio 1/2; base 2, scale 1 -> 1 wide, 4 high.
    let tall = Anchors::new(2.0f32, &[1.0], &[4.0]).unwrap();
    assert_eq!(tall.base_anchor(0), Some([-0.5, -2.0, 0.5, 2.0]));
    // Ratios outer, scales inner: anchor a = r * S + s.
    let both = Anchors::new(2.0f64, &[1.0, 3.0], &[1.0, 4.0]).unwrap();
    assert_eq!(both.base_anchor(1), Some([-3.0, -3.0, 3.0, 3.0]));
    assert_eq!(both.base_anchor(2), Some([-0.5, -2.0, 0.5, 2.0]));
    assert_eq!(both.base_anchor(3), Some([-1.5, -6.0, 1.5, 6.0]));
}

#[test]
fn sparse_anchor_equals_the_grid() {
    let a = Anchors::retinanet(16.0f32)
        .unwrap()
        .with_center_offset(0.5)
        .unwrap();
    let (h, w) = (3, 5);
    let g = grid(&a, h, w);
    for i in 0..a.count(h, w) {
        assert_eq!(a.anchor(h, w, i).unwrap().as_slice(), &g[4 * i..4 * i + 4]);
    }
    assert_eq!(a.anchor(h, w, a.count(h, w)), None);
    assert_eq!(grid(&a, 0, 5), Vec::<f32>::new());
}

#[test]
fn octave_scales_and_accessors() {
    let a = Anchors::octave(8.0f64, 4.0, 2, &[1.0]).unwrap();
    assert_eq!(a.scales().len(), 2);
    assert_eq!(a.scales()[0], 4.0);
    assert!((a.scales()[1] - 4.0 * 2f64.sqrt()).abs() < 1e-14);
    assert_eq!(a.ratios(), &[1.0]);
    assert_eq!(
        (a.stride(), a.base_size(), a.center_offset()),
        (8.0, 8.0, 0.0)
    );
}

#[test]
fn bad_parameters_and_lengths_are_errors() {
    let p = Error::InvalidParameter;
    assert_eq!(Anchors::new(0.0f32, &[1.0], &[1.0]), Err(p("stride")));
    assert_eq!(Anchors::new(f32::NAN, &[1.0], &[1.0]), Err(p("stride")));
    assert_eq!(Anchors::new(1.0f32, &[], &[1.0]), Err(p("scales")));
    assert_eq!(Anchors::new(1.0f32, &[1.0, -1.0], &[1.0]), Err(p("scales")));
    assert_eq!(
        Anchors::new(1.0f32, &[1.0; MAX_SCALES + 1], &[1.0]),
        Err(p("scales"))
    );
    assert_eq!(Anchors::new(1.0f32, &[1.0], &[0.0]), Err(p("ratios")));
    assert_eq!(
        Anchors::new(1.0f32, &[1.0], &[1.0; MAX_RATIOS + 1]),
        Err(p("ratios"))
    );
    assert_eq!(
        Anchors::octave(1.0f32, 0.0, 3, &[1.0]),
        Err(p("octave_base_scale"))
    );
    assert_eq!(
        Anchors::octave(1.0f32, 4.0, 0, &[1.0]),
        Err(p("scales_per_octave"))
    );
    assert_eq!(
        Anchors::octave(1.0f32, 4.0, 9, &[1.0]),
        Err(p("scales_per_octave"))
    );
    let a = Anchors::retinanet(8.0f32).unwrap();
    assert_eq!(a.with_center_offset(1.5), Err(p("center_offset")));
    assert_eq!(a.with_center_offset(-0.1), Err(p("center_offset")));
    assert_eq!(a.with_base_size(f32::INFINITY), Err(p("base_size")));
    let mut short = vec![0.0f32; a.anchors_len(2, 2) - 1];
    assert_eq!(
        a.write(2, 2, &mut short),
        Err(Error::LengthMismatch {
            expected: 144,
            got: 143
        })
    );
    assert_eq!(a.anchors_len(usize::MAX, 2), usize::MAX);
}
