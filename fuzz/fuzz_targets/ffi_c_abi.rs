//! The C ABI (`hardmine-ffi`) through raw pointers, as a C caller could call it: null, aligned
//! and misaligned pointers, outputs over inputs, lengths of 0 and overflowing row counts, NaN,
//! reductions outside the enumeration, state never initialised (fuzzed bytes), of another type
//! or path, scratch too small. Every call returns a documented status; after any status but OK
//! nothing the caller owns changed (outputs and state compared byte for byte); an OK on valid
//! f32 input equals the core's own result.
#![no_main]
use core::mem::MaybeUninit;
use core::ptr::{null, null_mut};
use hardmine::{BceWithLogits, Reduction};
use hardmine_ffi::*;
use libfuzzer_sys::fuzz_target;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    op: u8,
    values: Vec<f32>,
    targets: Vec<f32>,
    labels: Vec<i8>,
    /// 0 valid, 1 null, 2 misaligned (the first input).
    input_mode: u8,
    /// 0 valid, 1 null, 2 misaligned, 3 over the first input (the gradient).
    output_mode: u8,
    reduction: i32,
    elements: bool,
    classes: u8,
    huge_rows: bool,
    param: f32,
    /// 0 initialised, 1 fuzzed bytes, 2 another type, 3 the other path.
    state_mode: u8,
    state_bytes: Vec<u8>,
    k: u8,
    scratch_short: bool,
}

/// A buffer of `len` values plus one, so a pointer one byte in stays inside it.
fn buffer(src: &[f32], len: usize) -> Vec<f32> {
    (0..=len)
        .map(|i| src.get(i).copied().unwrap_or(0.5))
        .collect()
}

fn ptr_in(buf: &[f32], mode: u8) -> *const f32 {
    match mode % 3 {
        0 => buf.as_ptr(),
        1 => null(),
        _ => buf.as_ptr().cast::<u8>().wrapping_add(1).cast(),
    }
}

fn ptr_out(buf: &mut [f32], input: *const f32, mode: u8) -> *mut f32 {
    match mode % 4 {
        0 => buf.as_mut_ptr(),
        1 => null_mut(),
        2 => buf.as_mut_ptr().cast::<u8>().wrapping_add(1).cast(),
        _ => input.cast_mut(),
    }
}

fn bytes<T>(v: &T) -> Vec<u8> {
    // SAFETY: reads of the caller's plain-old-data state as bytes, as C's memcmp would.
    unsafe { core::slice::from_raw_parts((v as *const T).cast::<u8>(), core::mem::size_of::<T>()) }
        .to_vec()
}

/// One valid GHM-C step on `state` (the path it was initialised for): status, loss and
/// gradient bits.
fn ghmc_probe(state: &mut HmGhmC, q16: bool) -> (HmStatus, Vec<u32>) {
    if q16 {
        let (x, t) = ([65536i32, -32768, 0, 131072], [65536i32, 0, 0, 65536]);
        let (mut l, mut g) = (0i32, [0i32; 4]);
        // SAFETY: valid pointers of the stated lengths.
        let s = unsafe {
            hm_ghmc_value_and_grad_q16(
                state,
                x.as_ptr(),
                t.as_ptr(),
                null(),
                4,
                &mut l,
                g.as_mut_ptr(),
            )
        };
        (s, core::iter::once(l).chain(g).map(|v| v as u32).collect())
    } else {
        let (x, t) = ([1.0f32, -0.5, 0.0, 2.0], [1.0f32, 0.0, 0.0, 1.0]);
        let (mut l, mut g) = (0f32, [0f32; 4]);
        // SAFETY: valid pointers of the stated lengths.
        let s = unsafe {
            hm_ghmc_value_and_grad_f32(
                state,
                x.as_ptr(),
                t.as_ptr(),
                null(),
                4,
                &mut l,
                g.as_mut_ptr(),
            )
        };
        (s, core::iter::once(l).chain(g).map(f32::to_bits).collect())
    }
}

fn known(s: HmStatus) {
    assert!(
        (0..=11).contains(&(s as i32)),
        "undocumented status {}",
        s as i32
    );
}

fuzz_target!(|inp: Input| {
    let n = inp.values.len().min(64);
    let x = buffer(&inp.values, n);
    let t: Vec<f32> = buffer(&inp.targets, n);
    let xp = ptr_in(&x, inp.input_mode);
    let mut grad = vec![7.0f32; n + 1];
    let mut elem = vec![9.0f32; n + 1];
    let gp = ptr_out(&mut grad, xp, inp.output_mode);
    let ep = if inp.elements {
        elem.as_mut_ptr()
    } else {
        null_mut()
    };
    let mut loss = 3.0f32;
    let (g0, e0) = (grad.clone(), elem.clone());
    // A quarter of the inputs keep their raw reduction (mostly outside 0..=2).
    let red = if inp.reduction.rem_euclid(4) == 3 {
        inp.reduction
    } else {
        inp.reduction.rem_euclid(3)
    };
    let s = match inp.op % 6 {
        0 => {
            // SAFETY: every non-null pointer covers n values (n + 1 allocated).
            let s =
                unsafe { hm_bce_f32(xp, t.as_ptr(), null(), n, red, null(), &mut loss, gp, ep) };
            known(s);
            let valid = inp.input_mode.is_multiple_of(3) && inp.output_mode.is_multiple_of(4);
            let targets_ok = t[..n].iter().all(|v| (0.0..=1.0).contains(v));
            if s == HmStatus::Ok {
                let r = [Reduction::None, Reduction::Sum, Reduction::Mean][red as usize];
                let mut g2 = vec![0.0f32; n];
                let want = BceWithLogits::new().with_reduction(r).value_and_grad(
                    &x[..n],
                    &t[..n],
                    None,
                    &mut g2,
                );
                assert_eq!(want.map(f32::to_bits), Ok(loss.to_bits()));
                if valid {
                    assert_eq!(
                        g2.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        grad[..n].iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                    );
                }
            } else if valid
                && targets_ok
                && (0..3).contains(&red)
                && x[..n].iter().all(|v| v.is_finite())
                && (red != 0 || inp.elements)
            {
                panic!("valid input refused: {s:?}");
            }
            s
        }
        1 => {
            let xq: Vec<i32> = x.iter().map(|v| (v * 65536.0) as i32).collect();
            let tq: Vec<i32> = t.iter().map(|v| (v * 65536.0) as i32).collect();
            let mut gq = vec![5i32; n + 1];
            let mut lq = 1i32;
            let gqp = if inp.output_mode.is_multiple_of(2) {
                gq.as_mut_ptr()
            } else {
                null_mut()
            };
            let xqp = if inp.input_mode % 3 == 1 {
                null()
            } else {
                xq.as_ptr()
            };
            let gamma = (inp.param * 65536.0) as i32;
            // SAFETY: as above.
            let s = unsafe {
                hm_sigmoid_focal_q16(
                    xqp,
                    tq.as_ptr(),
                    n,
                    16384,
                    gamma,
                    red,
                    null(),
                    &mut lq,
                    gqp,
                    null_mut(),
                )
            };
            known(s);
            if s != HmStatus::Ok {
                assert!(
                    lq == 1 && gq.iter().all(|&v| v == 5),
                    "outputs written on {s:?}"
                );
            }
            return;
        }
        2 => {
            let classes = usize::from(inp.classes % 6);
            let rows = if inp.huge_rows {
                usize::MAX / 2 + 1
            } else {
                n.checked_div(classes).unwrap_or(n)
            };
            let labels: Vec<i32> = (0..=rows.min(n))
                .map(|i| i32::from(inp.labels.get(i).copied().unwrap_or(0)))
                .collect();
            // SAFETY: rows * classes <= n values unless it overflows (refused before any read).
            let s = unsafe {
                hm_softmax_ce_f32(
                    xp,
                    labels.as_ptr(),
                    rows,
                    classes,
                    red,
                    null(),
                    &mut loss,
                    gp,
                    ep,
                )
            };
            known(s);
            if inp.huge_rows && classes > 1 && (0..3).contains(&red) {
                assert_eq!(s, HmStatus::LengthMismatch);
            }
            s
        }
        3 => {
            let mut state = HmGhmC::zeroed();
            // A twin initialised alike (modes 0 and 3): after an error, one more valid step on
            // both must give the same bits, so the failed call left the state as it was. (The
            // state's padding is uninitialised for Rust, so it is compared through the API;
            // mode 1's bytes are all written, so it is compared byte for byte.)
            let mut twin: Option<(HmGhmC, bool)> = None;
            match inp.state_mode % 4 {
                0 => {
                    let mut tw = HmGhmC::zeroed();
                    for st in [&mut state, &mut tw] {
                        // SAFETY: valid state memory.
                        assert_eq!(unsafe { hm_ghmc_init_f32(st, 10, 0.75, 1.0) }, HmStatus::Ok);
                    }
                    twin = Some((tw, false));
                }
                1 => {
                    for (i, w) in state.opaque.iter_mut().enumerate() {
                        let b = |j: usize| {
                            u64::from(inp.state_bytes.get(8 * i + j).copied().unwrap_or(0x7F))
                        };
                        *w = MaybeUninit::new((0..8).fold(0, |a, j| a | b(j) << (8 * j)));
                    }
                }
                2 => {
                    let mut r = HmGhmR::zeroed();
                    // SAFETY: valid state memory.
                    assert_eq!(
                        unsafe { hm_ghmr_init_f32(&mut r, 0.02, 10, 0.75, 1.0) },
                        HmStatus::Ok
                    );
                    state.opaque.copy_from_slice(&r.opaque[..65]);
                }
                _ => {
                    let mut tw = HmGhmC::zeroed();
                    for st in [&mut state, &mut tw] {
                        // SAFETY: valid state memory.
                        assert_eq!(
                            unsafe { hm_ghmc_init_q16(st, 10, 49152, 65536) },
                            HmStatus::Ok
                        );
                    }
                    twin = Some((tw, true));
                }
            }
            let before = (inp.state_mode % 4 == 1).then(|| bytes(&state));
            // SAFETY: as above; the state is readable and writable.
            let s = unsafe {
                hm_ghmc_value_and_grad_f32(&mut state, xp, t.as_ptr(), null(), n, &mut loss, gp)
            };
            known(s);
            if !inp.state_mode.is_multiple_of(4) {
                assert_eq!(
                    s,
                    HmStatus::Uninitialised,
                    "state mode {}",
                    inp.state_mode % 4
                );
            }
            if s != HmStatus::Ok {
                if let Some(b) = before {
                    assert!(bytes(&state) == b, "state changed on {s:?}");
                }
                if let Some((mut tw, q16)) = twin {
                    assert!(
                        ghmc_probe(&mut state, q16) == ghmc_probe(&mut tw, q16),
                        "state changed on {s:?}"
                    );
                }
            }
            s
        }
        4 => {
            let k = usize::from(inp.k % 8);
            let boxes: Vec<f32> = (0..4 * n)
                .map(|i| {
                    let v = inp.targets.get(i).copied().unwrap_or(1.0);
                    if i % 4 >= 2 {
                        v + 2.0
                    } else {
                        v
                    }
                })
                .collect();
            let labels: Vec<i32> = (0..n)
                .map(|i| i32::from(inp.labels.get(i).copied().unwrap_or(0)))
                .collect();
            let mut scratch = vec![0usize; n + 1];
            let bytes_needed = hm_ohem_scratch_bytes(n);
            let sb = if inp.scratch_short {
                bytes_needed.saturating_sub(1)
            } else {
                bytes_needed
            };
            let mut idx = vec![99usize; k + 1];
            let mut count = 77usize;
            let lp = if inp.elements {
                labels.as_ptr()
            } else {
                null()
            };
            // SAFETY: every buffer covers what the call documents.
            let s = unsafe {
                if inp.state_mode.is_multiple_of(2) {
                    hm_ohem_topk_nms_f32(
                        xp,
                        boxes.as_ptr(),
                        lp,
                        n,
                        k,
                        inp.param,
                        scratch.as_mut_ptr().cast(),
                        sb,
                        idx.as_mut_ptr(),
                        &mut count,
                    )
                } else {
                    hm_ohem_topk_f32(
                        xp,
                        n,
                        k,
                        scratch.as_mut_ptr().cast(),
                        sb,
                        idx.as_mut_ptr(),
                        &mut count,
                    )
                }
            };
            known(s);
            if s == HmStatus::Ok {
                assert!(
                    count <= k.min(n)
                        && idx[..count].windows(2).all(|w| w[0] < w[1])
                        && idx[..count].iter().all(|&i| i < n)
                );
            } else {
                assert!(
                    count == 77 && idx.iter().all(|&i| i == 99),
                    "outputs written on {s:?}"
                );
            }
            return;
        }
        _ => {
            let mut rng = HmRng { opaque: [0; 2] };
            if inp.state_mode.is_multiple_of(2) {
                // SAFETY: valid state memory.
                assert_eq!(
                    unsafe { hm_rng_init(&mut rng, u64::from(inp.k)) },
                    HmStatus::Ok
                );
            } else {
                rng.opaque[0] = u64::from_le_bytes(core::array::from_fn(|j| {
                    inp.state_bytes.get(j).copied().unwrap_or(0)
                }));
            }
            let mask: Vec<u8> = (0..n)
                .map(|i| inp.labels.get(i).copied().unwrap_or(0) as u8 % 3)
                .collect();
            let num = usize::from(inp.k % 16);
            let mut scratch = vec![0usize; num + 1];
            let mut idx = vec![99usize; num + 1];
            let mut count = 77usize;
            let before = rng.opaque;
            let sb = hm_sampler_scratch_bytes(num);
            // SAFETY: every buffer covers what the call documents.
            let s = unsafe {
                hm_balanced_sample_f32(
                    mask.as_ptr(),
                    n,
                    num,
                    inp.param,
                    -1.0,
                    &mut rng,
                    scratch.as_mut_ptr().cast(),
                    sb,
                    idx.as_mut_ptr(),
                    &mut count,
                )
            };
            known(s);
            if s == HmStatus::Ok {
                assert!(count <= num && idx[..count].iter().all(|&i| i < n && mask[i] <= 1));
            } else {
                assert!(
                    count == 77 && idx.iter().all(|&i| i == 99) && rng.opaque == before,
                    "written on {s:?}"
                );
            }
            return;
        }
    };
    if s != HmStatus::Ok {
        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same(&grad, &g0) && same(&elem, &e0) && loss == 3.0,
            "outputs written on {s:?}"
        );
    }
});
