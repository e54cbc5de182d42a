//! Rust tests of the C ABI through its raw-pointer entry points, against the core called
//! directly (the oracle: the C layer must add checks, never change a value). Small inputs, so
//! Miri runs them all in a few minutes (`.ci/run`).

use super::*;
use core::ptr::{null, null_mut};
use hardmine::{
    Asl1, BalancedSampler, BceWithLogits, Budget, Ohem, SigmoidFocal, SigmoidFocalLabels, SmoothL1,
    SoftmaxCrossEntropy, SoftmaxFocal,
};

const SUM: i32 = HmReduction::Sum as i32;
const MEAN: i32 = HmReduction::Mean as i32;
const NONE: i32 = HmReduction::None as i32;

fn data(seed: u64, n: usize, scale: f32) -> std::vec::Vec<f32> {
    let mut r = SplitMix64::new(seed);
    (0..n)
        .map(|_| (r.unit_f64() as f32 * 2.0 - 1.0) * scale)
        .collect()
}

fn unit(seed: u64, n: usize) -> std::vec::Vec<f32> {
    data(seed, n, 1.0).iter().map(|v| v.abs()).collect()
}

#[test]
fn version_matches_the_crate() {
    let v = env!("CARGO_PKG_VERSION");
    let want = std::format!("{HM_VERSION_MAJOR}.{HM_VERSION_MINOR}.{HM_VERSION_PATCH}");
    assert_eq!(v, want);
    assert_eq!(
        hm_version(),
        HM_VERSION_MAJOR << 16 | HM_VERSION_MINOR << 8 | HM_VERSION_PATCH
    );
}

#[test]
fn elementwise_losses_match_the_core_on_every_reduction() {
    let n = 7;
    let (x, t, w) = (data(1, n, 4.0), unit(2, n), unit(3, n));
    let f = 3.0f32;
    for red in [NONE, SUM, MEAN] {
        let r = reduction(red).unwrap();
        let factor = if red == SUM { null() } else { &f as *const f32 };
        let (mut loss, mut g, mut e) = (0.0f32, [0.0f32; 7], [0.0f32; 7]);
        let st = unsafe {
            hm_bce_f32(
                x.as_ptr(),
                t.as_ptr(),
                w.as_ptr(),
                n,
                red,
                factor,
                &mut loss,
                g.as_mut_ptr(),
                e.as_mut_ptr(),
            )
        };
        assert_eq!(st, HmStatus::Ok);
        let mut core = BceWithLogits::new().with_reduction(r);
        if red != SUM {
            core = core.with_avg_factor(f).unwrap();
        }
        let (mut g2, mut e2) = ([0.0f32; 7], [0.0f32; 7]);
        assert_eq!(
            loss,
            core.value_and_grad(&x, &t, Some(&w), &mut g2).unwrap()
        );
        assert_eq!(g, g2);
        if red == NONE {
            core.per_element(&x, &t, Some(&w), &mut e2).unwrap();
            assert_eq!(e, e2);
        } else {
            assert_eq!(e, [0.0; 7], "elements untouched unless NONE");
        }

        let st = unsafe {
            hm_sigmoid_focal_f32(
                x.as_ptr(),
                t.as_ptr(),
                n,
                0.25,
                2.0,
                red,
                null(),
                &mut loss,
                g.as_mut_ptr(),
                e.as_mut_ptr(),
            )
        };
        assert_eq!(st, HmStatus::Ok);
        let core = SigmoidFocal::new(0.25f32, 2.0).unwrap().with_reduction(r);
        assert_eq!(loss, core.value_and_grad(&x, &t, &mut g2).unwrap());
        assert_eq!(g, g2);

        let st = unsafe {
            hm_smooth_l1_f32(
                x.as_ptr(),
                t.as_ptr(),
                n,
                0.5,
                red,
                null(),
                &mut loss,
                g.as_mut_ptr(),
                e.as_mut_ptr(),
            )
        };
        assert_eq!(st, HmStatus::Ok);
        let core = SmoothL1::new(0.5f32).unwrap().with_reduction(r);
        assert_eq!(loss, core.value_and_grad(&x, &t, &mut g2).unwrap());
        assert_eq!(g, g2);

        let st = unsafe {
            hm_asl1_f32(
                x.as_ptr(),
                t.as_ptr(),
                n,
                0.02,
                red,
                null(),
                &mut loss,
                null_mut(),
                e.as_mut_ptr(),
            )
        };
        assert_eq!(st, HmStatus::Ok);
        let core = Asl1::new(0.02f32).unwrap().with_reduction(r);
        assert_eq!(loss, core.value(&x, &t).unwrap());
    }
}

#[test]
fn row_losses_match_the_core_on_both_paths() {
    let (rows, classes) = (3, 4);
    let x = data(5, rows * classes, 3.0);
    let labels = [2i32, -1, 4];
    let lw = [1.0f32, 0.5, 2.0];
    let ca = [0.1f32, 0.2, 0.3, 0.4];
    let (mut loss, mut g, mut e) = (0.0f32, [0.0f32; 12], [0.0f32; 12]);
    let st = unsafe {
        hm_sigmoid_focal_labels_f32(
            x.as_ptr(),
            labels.as_ptr(),
            lw.as_ptr(),
            rows,
            classes,
            0.25,
            ca.as_ptr(),
            2.0,
            NONE,
            null(),
            &mut loss,
            g.as_mut_ptr(),
            e.as_mut_ptr(),
        )
    };
    assert_eq!(st, HmStatus::Ok);
    let focal = SigmoidFocal::new(0.25f32, 2.0)
        .unwrap()
        .with_reduction(Reduction::None);
    let core = SigmoidFocalLabels::new(focal, classes)
        .unwrap()
        .with_class_alpha(&ca)
        .unwrap();
    let mut e2 = [0.0f32; 12];
    core.per_element(&x, &labels, Some(&lw), &mut e2).unwrap();
    assert_eq!(e, e2);
    assert_eq!(loss, core.value(&x, &labels, Some(&lw)).unwrap());

    // Softmax: negative labels are ignored rows; a label >= classes is an error.
    let labels = [2i32, -1, 3];
    let bad = [2i32, -1, 4];
    let st = unsafe {
        hm_softmax_ce_f32(
            x.as_ptr(),
            bad.as_ptr(),
            rows,
            classes,
            MEAN,
            null(),
            &mut loss,
            g.as_mut_ptr(),
            null_mut(),
        )
    };
    assert_eq!(st, HmStatus::InvalidTarget);
    let st = unsafe {
        hm_softmax_ce_f32(
            x.as_ptr(),
            labels.as_ptr(),
            rows,
            classes,
            MEAN,
            null(),
            &mut loss,
            g.as_mut_ptr(),
            null_mut(),
        )
    };
    assert_eq!(st, HmStatus::Ok);
    let mut g2 = [0.0f32; 12];
    let core = SoftmaxCrossEntropy::new(classes).unwrap();
    assert_eq!(loss, core.value_and_grad(&x, &labels, &mut g2).unwrap());
    assert_eq!(g, g2);

    let xq: std::vec::Vec<i32> = x
        .iter()
        .map(|&v| Q16::from_f64(f64::from(v)).to_bits())
        .collect();
    let (mut lq, mut gq) = (0i32, [0i32; 12]);
    let st = unsafe {
        hm_softmax_focal_q16(
            xq.as_ptr(),
            labels.as_ptr(),
            rows,
            classes,
            16384,
            131072,
            SUM,
            null(),
            &mut lq,
            gq.as_mut_ptr(),
            null_mut(),
        )
    };
    assert_eq!(st, HmStatus::Ok);
    let xs: std::vec::Vec<Q16> = xq.iter().map(|&b| Q16::from_bits(b)).collect();
    let core = SoftmaxFocal::new(Q16::from_bits(16384), Q16::from_bits(131072), classes)
        .unwrap()
        .with_reduction(Reduction::Sum);
    let mut g2 = [Q16::ZERO; 12];
    assert_eq!(
        lq,
        core.value_and_grad(&xs, &labels, &mut g2)
            .unwrap()
            .to_bits()
    );
    assert_eq!(
        gq.to_vec(),
        g2.iter().map(|q| q.to_bits()).collect::<std::vec::Vec<_>>()
    );
}

#[test]
fn an_out_of_range_reduction_is_refused_and_nothing_is_written() {
    let (x, t) = ([1.0f32, -1.0], [0.0f32, 1.0]);
    let (mut loss, mut g) = (42.0f32, [7.0f32; 2]);
    for red in [3, 7, -1, i32::MAX] {
        let st = unsafe {
            hm_sigmoid_focal_f32(
                x.as_ptr(),
                t.as_ptr(),
                2,
                0.25,
                2.0,
                red,
                null(),
                &mut loss,
                g.as_mut_ptr(),
                null_mut(),
            )
        };
        assert_eq!(st, HmStatus::InvalidReduction);
    }
    assert_eq!((loss, g), (42.0, [7.0; 2]));
}

#[test]
fn bad_inputs_give_their_status_and_leave_outputs_untouched() {
    let (x, t) = ([1.0f32, f32::NAN], [0.0f32, 1.0]);
    let (mut loss, mut g) = (42.0f32, [7.0f32; 2]);
    let call = |x: *const f32,
                n: usize,
                gamma: f32,
                loss: *mut f32,
                g: *mut f32,
                e: *mut f32,
                red: i32| unsafe {
        hm_sigmoid_focal_f32(x, t.as_ptr(), n, 0.25, gamma, red, null(), loss, g, e)
    };
    assert_eq!(
        call(
            x.as_ptr(),
            2,
            2.0,
            &mut loss,
            g.as_mut_ptr(),
            null_mut(),
            SUM
        ),
        HmStatus::NonFinite
    );
    let ok = [1.0f32, 2.0];
    assert_eq!(
        call(
            ok.as_ptr(),
            2,
            -1.0,
            &mut loss,
            g.as_mut_ptr(),
            null_mut(),
            SUM
        ),
        HmStatus::InvalidParameter
    );
    assert_eq!(
        call(null(), 2, 2.0, &mut loss, g.as_mut_ptr(), null_mut(), SUM),
        HmStatus::NullPointer
    );
    assert_eq!(
        call(
            ok.as_ptr(),
            2,
            2.0,
            null_mut(),
            g.as_mut_ptr(),
            null_mut(),
            SUM
        ),
        HmStatus::NullPointer
    );
    assert_eq!(
        call(
            ok.as_ptr(),
            2,
            2.0,
            &mut loss,
            g.as_mut_ptr(),
            null_mut(),
            NONE
        ),
        HmStatus::NullPointer
    );
    let mis = ok.as_ptr().cast::<u8>().wrapping_add(1).cast::<f32>();
    assert_eq!(
        call(mis, 1, 2.0, &mut loss, g.as_mut_ptr(), null_mut(), SUM),
        HmStatus::Misaligned
    );
    assert_eq!(
        call(
            ok.as_ptr(),
            usize::MAX / 2,
            2.0,
            &mut loss,
            g.as_mut_ptr(),
            null_mut(),
            SUM
        ),
        HmStatus::LengthMismatch
    );
    // Output over an input, and grad over the loss.
    let mut io = [1.0f32, 2.0];
    let p = io.as_mut_ptr();
    assert_eq!(
        call(p, 2, 2.0, &mut loss, p, null_mut(), SUM),
        HmStatus::Overlap
    );
    assert_eq!(
        call(
            ok.as_ptr(),
            2,
            2.0,
            g.as_mut_ptr(),
            g.as_mut_ptr(),
            null_mut(),
            SUM
        ),
        HmStatus::Overlap
    );
    assert_eq!((loss, g), (42.0, [7.0; 2]));
    // avg_factor with SUM: mmdetection's ValueError.
    let f = 2.0f32;
    let st = unsafe {
        hm_bce_f32(
            ok.as_ptr(),
            t.as_ptr(),
            null(),
            2,
            SUM,
            &f,
            &mut loss,
            null_mut(),
            null_mut(),
        )
    };
    assert_eq!(st, HmStatus::InvalidParameter);
    // n = 0 takes null arrays.
    let st = unsafe {
        hm_bce_f32(
            null(),
            null(),
            null(),
            0,
            MEAN,
            null(),
            &mut loss,
            null_mut(),
            null_mut(),
        )
    };
    assert_eq!(st, HmStatus::Ok);
}

#[test]
fn ghm_state_is_tagged_checked_and_unchanged_after_an_error() {
    let (x, t) = (data(7, 6, 3.0), [0.0f32, 1.0, 0.0, 1.0, 1.0, 0.0]);
    let (mut loss, mut g) = (0.0f32, [0.0f32; 6]);
    // Never initialised: 0x7F bytes, zeros, and a state of another type.
    let mut s = HmGhmC {
        opaque: [MaybeUninit::new(0x7F7F_7F7F_7F7F_7F7F); 65],
    };
    let step = |s: *mut HmGhmC, loss: &mut f32, g: &mut [f32; 6]| unsafe {
        hm_ghmc_value_and_grad_f32(s, x.as_ptr(), t.as_ptr(), null(), 6, loss, g.as_mut_ptr())
    };
    assert_eq!(step(&mut s, &mut loss, &mut g), HmStatus::Uninitialised);
    s = HmGhmC::zeroed();
    assert_eq!(step(&mut s, &mut loss, &mut g), HmStatus::Uninitialised);
    assert_eq!(
        unsafe { hm_ghmc_init_q16(&mut s, 10, 49152, 65536) },
        HmStatus::Ok
    );
    assert_eq!(
        step(&mut s, &mut loss, &mut g),
        HmStatus::Uninitialised,
        "a Q15.16 state on the f32 path"
    );
    assert_eq!(step(null_mut(), &mut loss, &mut g), HmStatus::NullPointer);
    let mis = core::ptr::addr_of_mut!(s)
        .cast::<u8>()
        .wrapping_add(4)
        .cast::<HmGhmC>();
    assert_eq!(step(mis, &mut loss, &mut g), HmStatus::Misaligned);
    // An init error writes nothing: the Q15.16 state still works. (The state's padding is
    // not initialised memory for Rust, so it is compared through the API, not byte for byte;
    // the C test compares bytes.)
    assert_eq!(
        unsafe { hm_ghmc_init_f32(&mut s, 31, 0.75, 1.0) },
        HmStatus::InvalidParameter
    );
    let (xq, tq) = ([65536i32, -65536], [65536i32, 0]);
    let (mut lq, mut gq) = (0i32, [0i32; 2]);
    let st = unsafe {
        hm_ghmc_value_and_grad_q16(
            &mut s,
            xq.as_ptr(),
            tq.as_ptr(),
            null(),
            2,
            &mut lq,
            gq.as_mut_ptr(),
        )
    };
    assert_eq!(st, HmStatus::Ok);

    assert_eq!(
        unsafe { hm_ghmc_init_f32(&mut s, 10, 0.75, 1.0) },
        HmStatus::Ok
    );
    let mut core = GhmcF::new(10, 0.75, 1.0).unwrap();
    let mut g2 = [0.0f32; 6];
    for _ in 0..2 {
        assert_eq!(step(&mut s, &mut loss, &mut g), HmStatus::Ok);
        assert_eq!(loss, core.value_and_grad(&x, &t, None, &mut g2).unwrap());
        assert_eq!(g, g2);
    }
    let gb = g;
    let bad = [f32::NAN; 6];
    let st = unsafe {
        hm_ghmc_value_and_grad_f32(
            &mut s,
            bad.as_ptr(),
            t.as_ptr(),
            null(),
            6,
            &mut loss,
            g.as_mut_ptr(),
        )
    };
    assert_eq!(st, HmStatus::NonFinite);
    assert_eq!(g, gb);
    // The moving average did not advance: the next batch matches the core's third.
    assert_eq!(step(&mut s, &mut loss, &mut g), HmStatus::Ok);
    assert_eq!(loss, core.value_and_grad(&x, &t, None, &mut g2).unwrap());

    let mut r = HmGhmR::zeroed();
    assert_eq!(
        unsafe { hm_ghmr_init_f32(&mut r, 0.02, 10, 0.75, 1.0) },
        HmStatus::Ok
    );
    let st = unsafe {
        hm_ghmr_value_and_grad_f32(
            &mut r,
            x.as_ptr(),
            t.as_ptr(),
            null(),
            6,
            &mut loss,
            null_mut(),
        )
    };
    assert_eq!(st, HmStatus::Ok);
    let mut core = GhmrF::new(0.02, 10, 0.75, 1.0).unwrap();
    assert_eq!(loss, core.value(&x, &t, None).unwrap());
    // A GHM-R state handed to GHM-C (the C cast a caller could write).
    let st = unsafe {
        hm_ghmc_value_and_grad_f32(
            core::ptr::addr_of_mut!(r).cast(),
            x.as_ptr(),
            t.as_ptr(),
            null(),
            6,
            &mut loss,
            null_mut(),
        )
    };
    assert_eq!(st, HmStatus::Uninitialised);
}

#[test]
fn ohem_matches_the_core_with_and_without_nms_and_per_label() {
    let n = 24;
    let mut losses = data(11, n, 2.0);
    losses[3] = losses[5]; // a tie
    let mut boxes = std::vec::Vec::new();
    for (i, v) in data(12, n, 1.0).iter().enumerate() {
        let (x, y) = ((i % 5) as f32 * 3.0 + v, (i / 5) as f32 * 3.0);
        boxes.extend_from_slice(&[x, y, x + 4.0, y + 4.0]);
    }
    let labels: std::vec::Vec<i32> = (0..n as i32).map(|i| i % 3 - 1).collect();
    let mut scratch = std::vec![0usize; n];
    let bytes = hm_ohem_scratch_bytes(n);
    for k in [1, 5, 30] {
        let (mut idx, mut count) = (std::vec![usize::MAX; k], 0usize);
        let st = unsafe {
            hm_ohem_topk_f32(
                losses.as_ptr(),
                n,
                k,
                scratch.as_mut_ptr().cast(),
                bytes,
                idx.as_mut_ptr(),
                &mut count,
            )
        };
        assert_eq!(st, HmStatus::Ok);
        let want = Ohem::<f32, 64>::new(k)
            .unwrap()
            .select(&losses, None)
            .unwrap();
        assert_eq!(&idx[..count], want.indices());
        let st = unsafe {
            hm_ohem_topk_nms_f32(
                losses.as_ptr(),
                boxes.as_ptr(),
                null(),
                n,
                k,
                0.3,
                scratch.as_mut_ptr().cast(),
                bytes,
                idx.as_mut_ptr(),
                &mut count,
            )
        };
        assert_eq!(st, HmStatus::Ok);
        let ohem = Ohem::<f32, 64>::new(k).unwrap().with_nms(0.3).unwrap();
        assert_eq!(
            &idx[..count],
            ohem.select(&losses, Some(&boxes)).unwrap().indices()
        );
        let st = unsafe {
            hm_ohem_topk_nms_f32(
                losses.as_ptr(),
                boxes.as_ptr(),
                labels.as_ptr(),
                n,
                k,
                0.3,
                scratch.as_mut_ptr().cast(),
                bytes,
                idx.as_mut_ptr(),
                &mut count,
            )
        };
        assert_eq!(st, HmStatus::Ok);
        assert_eq!(
            &idx[..count],
            ohem.select_per_label(&losses, Some(&boxes), &labels)
                .unwrap()
                .indices()
        );
    }
    let (mut idx, mut count) = ([9usize; 4], 9usize);
    let sp = scratch.as_mut_ptr().cast();
    let st = unsafe {
        hm_ohem_topk_f32(
            losses.as_ptr(),
            n,
            4,
            sp,
            bytes - 1,
            idx.as_mut_ptr(),
            &mut count,
        )
    };
    assert_eq!(st, HmStatus::ScratchTooSmall);
    let st = unsafe {
        hm_ohem_topk_f32(
            losses.as_ptr(),
            n,
            0,
            sp,
            bytes,
            idx.as_mut_ptr(),
            &mut count,
        )
    };
    assert_eq!(st, HmStatus::InvalidParameter);
    let st = unsafe {
        hm_ohem_topk_f32(
            losses.as_ptr(),
            n,
            4,
            null_mut(),
            bytes,
            idx.as_mut_ptr(),
            &mut count,
        )
    };
    assert_eq!(st, HmStatus::NullPointer);
    let st = unsafe {
        hm_ohem_topk_nms_f32(
            losses.as_ptr(),
            null(),
            null(),
            n,
            4,
            0.5,
            sp,
            bytes,
            idx.as_mut_ptr(),
            &mut count,
        )
    };
    assert_eq!(st, HmStatus::NullPointer);
    boxes[2] = boxes[0] - 1.0;
    let st = unsafe {
        hm_ohem_topk_nms_f32(
            losses.as_ptr(),
            boxes.as_ptr(),
            null(),
            n,
            4,
            0.5,
            sp,
            bytes,
            idx.as_mut_ptr(),
            &mut count,
        )
    };
    assert_eq!(st, HmStatus::InvalidBox);
    assert_eq!((idx, count), ([9; 4], 9));
}

#[test]
fn the_sampler_matches_the_core_and_advances_the_callers_generator() {
    let mut rng = HmRng { opaque: [0; 2] };
    let mut scratch = [0usize; 16];
    let (mut idx, mut count) = ([0usize; 16], 0usize);
    let bytes = hm_sampler_scratch_bytes(16);
    let mut sample = |rng: *mut HmRng,
                      mask: &[u8],
                      num: usize,
                      frac: f32,
                      ub: f32,
                      idx: &mut [usize; 16],
                      count: &mut usize| unsafe {
        hm_balanced_sample_f32(
            mask.as_ptr(),
            mask.len(),
            num,
            frac,
            ub,
            rng,
            scratch.as_mut_ptr().cast(),
            bytes,
            idx.as_mut_ptr(),
            count,
        )
    };
    let positive: std::vec::Vec<u8> = (0..40).map(|i| u8::from(i % 7 == 0)).collect();
    assert_eq!(
        sample(&mut rng, &positive, 16, 0.25, -1.0, &mut idx, &mut count),
        HmStatus::Uninitialised
    );
    // Several masks (few and many positives), budgets and caps, against the core's sampler.
    for (seed, every, num, frac, ub) in [
        (5u64, 7, 16, 0.25f32, -1.0f32),
        (6, 2, 12, 0.5, 1.0),
        (7, 3, 9, 0.75, 0.5),
        (8, 11, 16, 1.0, -1.0),
    ] {
        assert_eq!(unsafe { hm_rng_init(&mut rng, seed) }, HmStatus::Ok);
        let mask: std::vec::Vec<u8> = (0..40).map(|i| u8::from(i % every == 0)).collect();
        let bools: std::vec::Vec<bool> = mask.iter().map(|&b| b == 1).collect();
        let cap = (ub != -1.0).then_some(ub);
        let core = BalancedSampler::<f32, 16>::new(Budget::new(num, frac, cap).unwrap()).unwrap();
        let mut core_rng = SplitMix64::new(seed);
        for _ in 0..3 {
            assert_eq!(
                sample(&mut rng, &mask, num, frac, ub, &mut idx, &mut count),
                HmStatus::Ok
            );
            assert_eq!(&idx[..count], core.sample(&bools, &mut core_rng).indices());
        }
    }
    let before = rng.opaque;
    let mut bad = positive.clone();
    bad[3] = 2;
    assert_eq!(
        sample(&mut rng, &bad, 16, 0.25, -1.0, &mut idx, &mut count),
        HmStatus::InvalidTarget
    );
    assert_eq!(
        sample(&mut rng, &positive, 0, 0.25, -1.0, &mut idx, &mut count),
        HmStatus::InvalidParameter
    );
    assert_eq!(
        sample(&mut rng, &positive, 16, 1.5, -1.0, &mut idx, &mut count),
        HmStatus::InvalidParameter
    );
    let st = unsafe {
        hm_balanced_sample_f32(
            positive.as_ptr(),
            40,
            16,
            0.25,
            -1.0,
            &mut rng,
            scratch.as_mut_ptr().cast(),
            bytes - 1,
            idx.as_mut_ptr(),
            &mut count,
        )
    };
    assert_eq!(st, HmStatus::ScratchTooSmall);
    assert_eq!(rng.opaque, before);
}
