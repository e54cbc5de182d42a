//! A-Fast-RCNN pieces: rotation against a PyTorch-transcribed reference (non-square maps, 1 to
//! 4 blocks, angles to 90 degrees) on every path, finite-difference gradients, identity and
//! exact 90-degree permutation, a planted occlusion window, mask frequencies, bad inputs.

use hardmine::{ChannelBlockRotation, DropoutMask, Error, OcclusionSearch, Real, SplitMix64, Q16};
use hardmine_host_tests::random;
use hardmine_host_tests::reference as oracle;
use hardmine_host_tests::tolerance::{check_close, Path, Tolerance, F32_ABS_FRAC, F32_REL, FD_REL};
use std::f64::consts::FRAC_PI_2;

fn blocks_of(c: usize, b: usize) -> Vec<std::ops::Range<usize>> {
    let size = c / b;
    (0..b)
        .map(|k| k * size..if k + 1 == b { c } else { (k + 1) * size })
        .collect()
}

/// A random rotation geometry `(c, h, w, blocks)`: each of `c`, `h`, `w` is `lo + below(span)`
/// (drawn in that order), then 1 to `min(c, 4)` blocks.
fn random_geometry(r: &mut SplitMix64, lo: usize, spans: [u64; 3]) -> (usize, usize, usize, usize) {
    let (c, h, w) = (
        lo + r.below(spans[0]) as usize,
        lo + r.below(spans[1]) as usize,
        lo + r.below(spans[2]) as usize,
    );
    let b = 1 + r.below(c.min(4) as u64) as usize;
    (c, h, w, b)
}

/// A `c x h x w` rotation in `b` blocks with the angle limit raised to `max_angle`.
fn rotation<T: Real>(
    c: usize,
    h: usize,
    w: usize,
    b: usize,
    max_angle: T,
) -> ChannelBlockRotation<T> {
    ChannelBlockRotation::<T>::new(c, h, w, b)
        .unwrap()
        .with_max_angle(max_angle)
        .unwrap()
}

#[test]
fn rotation_matches_the_pytorch_transcription_on_every_path() {
    for (round, mut r) in random::rounds(2000, 30) {
        let (c, h, w, b) = random_geometry(&mut r, 1, [9, 9, 9]);
        let x = random::to_f64(&random::to_f32(&random::uniform(
            &mut r,
            c * h * w,
            -3.0,
            3.0,
        )));
        let angles = random::to_f64(&random::to_f32(&random::uniform(
            &mut r, b, -FRAC_PI_2, FRAC_PI_2,
        )));
        let mut exp = vec![0.0; c * h * w];
        for (k, chans) in blocks_of(c, b).into_iter().enumerate() {
            for ch in chans {
                let o = oracle::rotate_channel(&x[ch * h * w..(ch + 1) * h * w], h, w, angles[k]);
                exp[ch * h * w..(ch + 1) * h * w].copy_from_slice(&o);
            }
        }
        let name = format!("round {round}: {c}x{h}x{w}, {b} blocks");
        let pi = std::f64::consts::PI;
        let rot = rotation::<f64>(c, h, w, b, pi);
        let mut out = vec![0.0; c * h * w];
        rot.forward(&x, &angles, &mut out).unwrap();
        check_close(&out, &exp, 1e-10, 1e-12).unwrap_or_else(|e| panic!("{name} f64: {e}"));
        let rot = rotation::<f32>(c, h, w, b, pi as f32);
        let mut out = vec![0.0f32; c * h * w];
        rot.forward(&random::to_f32(&x), &random::to_f32(&angles), &mut out)
            .unwrap();
        check_close(&random::to_f64(&out), &exp, F32_REL, F32_ABS_FRAC)
            .unwrap_or_else(|e| panic!("{name} f32: {e}"));
        let q = |v: &[f64]| v.iter().map(|&x| Q16::from_f64(x)).collect::<Vec<_>>();
        let rot = rotation::<Q16>(c, h, w, b, Q16::from_f64(pi));
        let mut out = vec![Q16::ZERO; c * h * w];
        rot.forward(&q(&x), &q(&angles), &mut out).unwrap();
        let got: Vec<f64> = out.iter().map(|v| v.to_f64()).collect();
        Tolerance::of(Path::Fixed)
            .check(&got, &exp)
            .unwrap_or_else(|e| panic!("{name} fixed: {e}"));
    }
}

#[test]
fn rotation_gradients_match_central_differences() {
    for (round, mut r) in random::rounds(2100, 8) {
        let (c, h, w, b) = random_geometry(&mut r, 2, [4, 6, 6]);
        let x = random::uniform(&mut r, c * h * w, -2.0, 2.0);
        let up = random::uniform(&mut r, c * h * w, -1.0, 1.0);
        let angles = random::uniform(&mut r, b, -1.2, 1.2);
        let rot = rotation::<f64>(c, h, w, b, 1.5);
        let loss = |x: &[f64], a: &[f64]| {
            let mut out = vec![0.0; x.len()];
            rot.forward(x, a, &mut out).unwrap();
            out.iter().zip(&up).map(|(o, u)| o * u).sum::<f64>()
        };
        let mut gx = vec![0.0; x.len()];
        let mut ga = vec![0.0; b];
        rot.backward(&x, &angles, &up, &mut gx, &mut ga).unwrap();
        // Features: the map is linear in them, so the difference is exact up to rounding.
        let mut xp = x.clone();
        for i in 0..x.len() {
            xp[i] = x[i] + 1e-3;
            let fd = (loss(&xp, &angles) - loss(&x, &angles)) / 1e-3;
            xp[i] = x[i];
            assert!(
                (fd - gx[i]).abs() <= 1e-9 * (1.0 + gx[i].abs()),
                "round {round} feature {i}: {fd} vs {}",
                gx[i]
            );
        }
        // Angles: bilinear sampling is piecewise smooth; a small step stays on one piece
        // unless a sample position crosses a cell edge, which random angles make unlikely.
        let mut ap = angles.clone();
        for k in 0..b {
            let step = 1e-7;
            ap[k] = angles[k] + step;
            let up_l = loss(&x, &ap);
            ap[k] = angles[k] - step;
            let down_l = loss(&x, &ap);
            ap[k] = angles[k];
            let fd = (up_l - down_l) / (2.0 * step);
            assert!(
                (fd - ga[k]).abs() <= FD_REL * 10.0 * (1.0 + ga[k].abs()),
                "round {round} angle {k}: {fd} vs {}",
                ga[k]
            );
        }
    }
}

#[test]
fn zero_is_the_identity_and_90_degrees_a_permutation() {
    let (c, n) = (3, 6);
    let x: Vec<f64> = (0..c * n * n).map(|v| (v as f64 * 0.37).sin()).collect();
    let rot = rotation::<f64>(c, n, n, 3, std::f64::consts::PI);
    let mut out = vec![0.0; x.len()];
    rot.forward(&x, &[0.0; 3], &mut out).unwrap();
    assert_eq!(out, x, "angle 0 is exactly the identity");
    rot.forward(&x, &[FRAC_PI_2, -FRAC_PI_2, 0.0], &mut out)
        .unwrap();
    for i in 0..n {
        for j in 0..n {
            // +90 degrees samples (ix, iy) = (n-1-i, j); -90 degrees samples (i, n-1-j).
            assert_eq!(out[i * n + j], x[j * n + (n - 1 - i)], "+90 at ({i},{j})");
            assert_eq!(
                out[n * n + i * n + j],
                x[n * n + (n - 1 - j) * n + i],
                "-90 at ({i},{j})"
            );
        }
    }
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let rot32 = rotation::<f32>(c, n, n, 3, 3.1);
    let mut out32 = vec![0.0f32; x.len()];
    rot32
        .forward(&x32, &[std::f32::consts::FRAC_PI_2, 0.0, 0.0], &mut out32)
        .unwrap();
    for i in 0..n {
        for j in 0..n {
            assert_eq!(
                out32[i * n + j],
                x32[j * n + (n - 1 - i)],
                "f32 +90 at ({i},{j})"
            );
        }
    }
}

#[test]
fn adversarial_angles_raise_the_loss() {
    let (c, h, w) = (4, 7, 7);
    let mut r = random::rng(2200);
    let x = random::uniform(&mut r, c * h * w, -1.0, 1.0);
    let target = random::uniform(&mut r, c * h * w, -1.0, 1.0);
    let rot = ChannelBlockRotation::<f64>::new(c, h, w, 2).unwrap();
    let loss = |f: &[f64]| {
        f.iter()
            .zip(&target)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
    };
    let mut out = vec![0.0; x.len()];
    let mut angles = [0.0; 2];
    let best = rot.adversarial(&x, 5, &mut out, &mut angles, loss).unwrap();
    assert!(best >= loss(&x), "never below the unrotated loss");
    // It is the coordinate-wise maximum over the grid: no single-block grid change raises it.
    let max = 10f64.to_radians();
    for k in 0..2 {
        for g in 0..5 {
            let mut a = angles;
            a[k] = -max + g as f64 * max / 2.0;
            rot.forward(&x, &a, &mut out).unwrap();
            assert!(
                loss(&out) <= best + 1e-12,
                "block {k} angle {}: {} > {best}",
                a[k],
                loss(&out)
            );
        }
    }
    rot.forward(&x, &angles, &mut out).unwrap();
    assert!(
        (loss(&out) - best).abs() < 1e-12,
        "the returned map is the chosen rotation"
    );
}

#[test]
fn occlusion_finds_a_planted_window() {
    // A 7x7 map whose classifier relies on a 2x2 patch at (4, 5): the released setting.
    let search = OcclusionSearch::new(3, 7, 7, 2, 2).unwrap();
    assert_eq!(search.window_count(), 16);
    let starts: Vec<(usize, usize)> = (0..16).filter_map(|k| search.window(k)).collect();
    assert_eq!(&starts[..4], &[(0, 0), (0, 2), (0, 4), (0, 5)]);
    let mut x = vec![0.1f64; 3 * 49];
    for ch in 0..3 {
        for (r, c) in [(4, 5), (4, 6), (5, 5), (5, 6)] {
            x[ch * 49 + r * 7 + c] = 5.0;
        }
    }
    let (mut scratch, mut scores) = (vec![0.0; x.len()], vec![0.0; 16]);
    let score = |f: &[f64]| 1.0 / (1.0 + (-(f.iter().sum::<f64>() - 40.0)).exp());
    let best = search.search(&x, &mut scratch, &mut scores, score).unwrap();
    assert_eq!(search.window(best), Some((4, 5)));
    let mut map = vec![0.0; 49];
    search.target_map(best, &mut map).unwrap();
    assert_eq!(map.iter().sum::<f64>(), 4.0);
    assert_eq!(map[4 * 7 + 5], 1.0);
    // Ties go to the first window.
    let best = search
        .search(&vec![1.0; 3 * 49], &mut scratch, &mut scores, |_| 0.5)
        .unwrap();
    assert_eq!(best, 0);
}

#[test]
fn mask_frequencies_match_the_rule() {
    let masks = DropoutMask::new(2, 7, 7, 20, 15).unwrap();
    let scores: Vec<f32> = (0..49).map(|i| ((i * 37) % 49) as f32).collect();
    let mut top: Vec<usize> = (0..49).collect();
    top.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap().then(a.cmp(&b)));
    top.truncate(20);
    let mut rng = SplitMix64::new(42);
    let mut dropped = [0u32; 49];
    let draws = 20_000;
    let mut mask = vec![0.0f32; 49];
    for _ in 0..draws {
        masks.sample(&scores, &mut rng, &mut mask).unwrap();
        assert_eq!(mask.iter().filter(|&&m| m == 0.0).count(), 15);
        for (i, &m) in mask.iter().enumerate() {
            dropped[i] += u32::from(m == 0.0);
        }
    }
    let p = 15.0 / 20.0;
    for (i, &d) in dropped.iter().enumerate() {
        if top.contains(&i) {
            let f = f64::from(d) / f64::from(draws);
            // 5 sigma of a binomial(20000, 0.75) frequency.
            assert!(
                (f - p).abs() < 5.0 * (p * (1.0 - p) / f64::from(draws)).sqrt(),
                "cell {i}: {f}"
            );
        } else {
            assert_eq!(d, 0, "cell {i} is not in the top 20");
        }
    }
    let mut features = vec![2.0f32; 98];
    masks.apply(&mask, &mut features).unwrap();
    assert_eq!(features.iter().filter(|&&v| v == 0.0).count(), 30);
}

#[test]
fn adversarial_bad_inputs() {
    let p = |n| Err(Error::InvalidParameter(n));
    assert_eq!(
        ChannelBlockRotation::<f32>::new(3, 7, 7, 4).map(|_| ()),
        p("blocks")
    );
    assert_eq!(
        ChannelBlockRotation::<f32>::new(3, 7, 7, 0).map(|_| ()),
        p("blocks")
    );
    assert_eq!(
        ChannelBlockRotation::<f32>::new(0, 7, 7, 1).map(|_| ()),
        p("channels")
    );
    assert_eq!(
        ChannelBlockRotation::<f32>::new(2, 7, 7, 1)
            .unwrap()
            .with_max_angle(4.0)
            .map(|_| ()),
        p("max_angle")
    );
    assert_eq!(OcclusionSearch::new(1, 7, 7, 8, 2).map(|_| ()), p("window"));
    assert_eq!(OcclusionSearch::new(1, 7, 5, 6, 2).map(|_| ()), p("window"));
    assert_eq!(OcclusionSearch::new(1, 7, 7, 2, 0).map(|_| ()), p("stride"));
    assert_eq!(DropoutMask::new(1, 7, 7, 50, 15).map(|_| ()), p("top"));
    assert_eq!(DropoutMask::new(1, 7, 7, 20, 21).map(|_| ()), p("pick"));

    let rot = ChannelBlockRotation::<f32>::new(2, 3, 3, 2).unwrap();
    let x = [0.5f32; 18];
    let mut out = [0.0f32; 18];
    assert_eq!(
        rot.forward(&x, &[0.0, 0.5], &mut out),
        p("angles"),
        "beyond 10 degrees"
    );
    assert_eq!(
        rot.forward(&x, &[0.0, f32::NAN], &mut out),
        Err(Error::NonFinite { index: 1 })
    );
    let mut bad = x;
    bad[7] = f32::INFINITY;
    assert_eq!(
        rot.forward(&bad, &[0.0, 0.1], &mut out),
        Err(Error::NonFinite { index: 7 })
    );
    assert_eq!(
        rot.forward(&x, &[0.0], &mut out),
        Err(Error::LengthMismatch {
            expected: 2,
            got: 1
        })
    );
    assert_eq!(
        rot.forward(&x[..9], &[0.0, 0.1], &mut out),
        Err(Error::LengthMismatch {
            expected: 18,
            got: 9
        })
    );
    let (mut g, mut ga) = ([0.0f32; 18], [0.0f32; 2]);
    assert_eq!(
        rot.backward(&x, &[0.0, 0.1], &bad, &mut g, &mut ga),
        Err(Error::NonFinite { index: 7 })
    );
    assert_eq!(
        rot.adversarial(&x, 0, &mut out, &mut ga, |_| 0.0),
        Err(Error::InvalidParameter("grid"))
    );

    let search = OcclusionSearch::new(2, 3, 3, 2, 1).unwrap();
    let (mut scratch, mut scores) = ([0.0f32; 18], [0.0f32; 4]);
    assert_eq!(
        search.search(&bad, &mut scratch, &mut scores, |_| 0.0),
        Err(Error::NonFinite { index: 7 })
    );
    assert_eq!(
        search.search(&x, &mut scratch, &mut scores[..3], |_| 0.0),
        Err(Error::LengthMismatch {
            expected: 4,
            got: 3
        })
    );
    assert_eq!(
        search.search(&x, &mut scratch, &mut scores, |_| f32::NAN),
        Err(Error::NonFinite { index: 0 })
    );
    assert_eq!(search.target_map(9, &mut [0.0f32; 9]), p("index"));
}
