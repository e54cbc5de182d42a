//! OHEM top-k (with and without NMS, per label) and the balanced sampler (with the caller's
//! random generator), each in a caller scratch buffer.
//!
//! OHEM ranks the examples in the scratch buffer (`n` indices, heapsort: no recursion, no
//! hidden buffer), then takes the first `k` (without NMS) or walks the ranking keeping an
//! example unless its box has IoU > `iou` with a kept one (of the same label when labels are
//! given), as `hardmine::Ohem` does (its tests compare the two).

use super::state::{rng_load, rng_store};
use super::{input, optional, reg, region, status, HmRng, HmStatus, Outputs};
use hardmine::{check_boxes, iou, Budget, ClassLabel, Real, SplitMix64, Q16};

/// Bytes of scratch [`hm_ohem_topk_f32`] and the other OHEM calls need for `n` examples
/// (`n * sizeof(size_t)`, aligned as `size_t`); `SIZE_MAX` when that overflows.
///
/// Stack: at most 64 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
#[no_mangle]
pub extern "C" fn hm_ohem_scratch_bytes(n: usize) -> usize {
    n.saturating_mul(core::mem::size_of::<usize>())
}

/// `a` ranks before `b`: larger loss first, ties by lower index.
fn before<T: Real>(losses: &[T], a: usize, b: usize) -> bool {
    match (losses.get(a), losses.get(b)) {
        (Some(&x), Some(&y)) => x > y || (x == y && a < b),
        _ => a < b,
    }
}

fn swap(s: &mut [usize], a: usize, b: usize) {
    if let (Some(&x), Some(&y)) = (s.get(a), s.get(b)) {
        if let Some(p) = s.get_mut(a) {
            *p = y;
        }
        if let Some(p) = s.get_mut(b) {
            *p = x;
        }
    }
}

/// Heapsort of `s` so that `first(s[i], s[j])` holds for `i < j` (a strict total order).
fn heapsort(s: &mut [usize], first: impl Fn(usize, usize) -> bool) {
    // Max-heap under "ranks later": the root is the last in order.
    let later = |s: &[usize], i: usize, j: usize| match (s.get(i), s.get(j)) {
        (Some(&a), Some(&b)) => first(b, a),
        _ => false,
    };
    let sift = |s: &mut [usize], mut root: usize, end: usize| loop {
        let mut child = 2 * root + 1;
        if child >= end {
            break;
        }
        if child + 1 < end && later(s, child + 1, child) {
            child += 1;
        }
        if later(s, child, root) {
            swap(s, root, child);
            root = child;
        } else {
            break;
        }
    };
    let n = s.len();
    for start in (0..n / 2).rev() {
        sift(s, start, n);
    }
    for end in (1..n).rev() {
        swap(s, 0, end);
        sift(s, 0, end);
    }
}

fn box_at<T: Real>(boxes: &[T], i: usize) -> [T; 4] {
    let b = |j: usize| boxes.get(4 * i + j).copied().unwrap_or(T::ZERO);
    [b(0), b(1), b(2), b(3)]
}

/// The body of every OHEM call.
///
/// # Safety
/// Non-null pointers point to: `losses` `n` values, `boxes` `4 n`, `labels` `n`, `scratch`
/// `scratch_bytes` writable bytes, `indices` `k` writable values, `count` one.
#[allow(clippy::too_many_arguments)]
unsafe fn ohem<T: Real>(
    losses: *const T,
    boxes: Option<*const T>,
    labels: *const i32,
    n: usize,
    k: usize,
    iou_threshold: T,
    scratch: *mut core::ffi::c_void,
    scratch_bytes: usize,
    indices: *mut usize,
    count: *mut usize,
) -> Result<(), HmStatus> {
    // SAFETY: per this function's contract.
    let l = unsafe { input(losses, n)? };
    let b = match boxes {
        // SAFETY: per this function's contract.
        Some(p) => Some(unsafe { input(p, super::product(n, 4)?)? }),
        None => None,
    };
    // SAFETY: per this function's contract.
    let y = unsafe { optional(labels, n)? };
    if k == 0 {
        return Err(HmStatus::InvalidParameter);
    }
    let mut outs = Outputs::new();
    if !outs.add(count, 1)? || !outs.add(indices, k)? {
        return Err(HmStatus::NullPointer);
    }
    let scratch = scratch.cast::<usize>();
    if n > 0 && !outs.add(scratch, n)? {
        return Err(HmStatus::NullPointer);
    }
    if scratch_bytes < hm_ohem_scratch_bytes(n) {
        return Err(HmStatus::ScratchTooSmall);
    }
    for r in [reg(l), reg(b.unwrap_or(&[])), reg(y.unwrap_or(&[]))] {
        outs.against(r)?;
    }
    hardmine::check::all_finite(l).map_err(status)?;
    if let Some(b) = b {
        hardmine::check::unit(iou_threshold, "nms_iou").map_err(status)?;
        check_boxes(b, n).map_err(status)?;
    }
    // SAFETY: all accepted by `outs` (disjoint, aligned, non-null); writable by contract.
    let (order, picked) = unsafe { (super::out(scratch, n), super::out(indices, k)) };
    for (i, o) in order.iter_mut().enumerate() {
        *o = i;
    }
    heapsort(order, |a, c| before(l, a, c));
    let mut kept = 0;
    match b {
        None => {
            for (p, &i) in picked.iter_mut().zip(order.iter()) {
                *p = i;
                kept += 1;
            }
        }
        Some(b) => {
            let label = |i: usize| y.and_then(|y| y.get(i)).and_then(|l| l.index());
            for &c in order.iter() {
                if kept >= k {
                    break;
                }
                let bc = box_at(b, c);
                let suppressed = picked.iter().take(kept).any(|&j| {
                    (y.is_none() || label(j) == label(c)) && iou(&box_at(b, j), &bc) > iou_threshold
                });
                if !suppressed {
                    if let Some(p) = picked.get_mut(kept) {
                        *p = c;
                        kept += 1;
                    }
                }
            }
        }
    }
    if let Some(p) = picked.get_mut(..kept) {
        heapsort(p, |a, c| a < c);
    }
    // SAFETY: accepted by `outs`.
    unsafe { count.write(kept) };
    Ok(())
}

/// OHEM without NMS: the indices of the `k >= 1` largest of `n` losses (ties: lower index),
/// ascending, to `indices` (room for `k`); their number, `min(k, n)`, to `*count`. `scratch`
/// holds `hm_ohem_scratch_bytes(n)` bytes aligned as `size_t` (may be null when `n == 0`).
///
/// Stack: at most 512 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// `losses` points to `n` values, `scratch` to `scratch_bytes` writable bytes, `indices` to
/// `k` writable `size_t`, `count` to one.
#[no_mangle]
pub unsafe extern "C" fn hm_ohem_topk_f32(
    losses: *const f32,
    n: usize,
    k: usize,
    scratch: *mut core::ffi::c_void,
    scratch_bytes: usize,
    indices: *mut usize,
    count: *mut usize,
) -> HmStatus {
    // SAFETY: this function's contract.
    super::code(unsafe {
        ohem(
            losses,
            None,
            core::ptr::null(),
            n,
            k,
            0.0,
            scratch,
            scratch_bytes,
            indices,
            count,
        )
    })
}

/// [`hm_ohem_topk_f32`] on Q15.16 raw losses.
///
/// Stack: at most 256 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_ohem_topk_f32`].
#[no_mangle]
pub unsafe extern "C" fn hm_ohem_topk_q16(
    losses: *const i32,
    n: usize,
    k: usize,
    scratch: *mut core::ffi::c_void,
    scratch_bytes: usize,
    indices: *mut usize,
    count: *mut usize,
) -> HmStatus {
    // SAFETY: this function's contract; Q16 is an i32 in memory.
    super::code(unsafe {
        ohem::<Q16>(
            losses.cast(),
            None,
            core::ptr::null(),
            n,
            k,
            Q16::ZERO,
            scratch,
            scratch_bytes,
            indices,
            count,
        )
    })
}

/// OHEM with NMS: as [`hm_ohem_topk_f32`], walking the ranking and skipping an example whose
/// box (`boxes`, `[n x 4]` as x1, y1, x2, y2) has IoU > `iou` (in [0, 1]) with a kept one; with
/// `labels` (`n`, may be null) only boxes of the same label suppress each other.
///
/// Stack: at most 512 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_ohem_topk_f32`]; `boxes` points to `4 n` values, `labels` (if not null) to `n`.
#[no_mangle]
pub unsafe extern "C" fn hm_ohem_topk_nms_f32(
    losses: *const f32,
    boxes: *const f32,
    labels: *const i32,
    n: usize,
    k: usize,
    iou: f32,
    scratch: *mut core::ffi::c_void,
    scratch_bytes: usize,
    indices: *mut usize,
    count: *mut usize,
) -> HmStatus {
    // SAFETY: this function's contract.
    super::code(unsafe {
        ohem(
            losses,
            Some(boxes),
            labels,
            n,
            k,
            iou,
            scratch,
            scratch_bytes,
            indices,
            count,
        )
    })
}

/// [`hm_ohem_topk_nms_f32`] on Q15.16 raw values.
///
/// Stack: at most 512 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_ohem_topk_nms_f32`].
#[no_mangle]
pub unsafe extern "C" fn hm_ohem_topk_nms_q16(
    losses: *const i32,
    boxes: *const i32,
    labels: *const i32,
    n: usize,
    k: usize,
    iou: i32,
    scratch: *mut core::ffi::c_void,
    scratch_bytes: usize,
    indices: *mut usize,
    count: *mut usize,
) -> HmStatus {
    // SAFETY: this function's contract; Q16 is an i32 in memory.
    super::code(unsafe {
        ohem::<Q16>(
            losses.cast(),
            Some(boxes.cast()),
            labels,
            n,
            k,
            Q16::from_bits(iou),
            scratch,
            scratch_bytes,
            indices,
            count,
        )
    })
}

/// Bytes of scratch [`hm_balanced_sample_f32`] needs for `num` (`num * sizeof(size_t)`,
/// aligned as `size_t`); `SIZE_MAX` when that overflows.
///
/// Stack: at most 64 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
#[no_mangle]
pub extern "C" fn hm_sampler_scratch_bytes(num: usize) -> usize {
    hm_ohem_scratch_bytes(num)
}

/// Algorithm R: offers the `seen`-th (0-based) item to the reservoir `res[..*len]` of
/// capacity `cap <= res.len()` (as `hardmine::BalancedSampler`).
fn offer(
    res: &mut [usize],
    len: &mut usize,
    cap: usize,
    seen: u64,
    item: usize,
    rng: &mut SplitMix64,
) {
    if *len < cap {
        if let Some(slot) = res.get_mut(*len) {
            *slot = item;
            *len += 1;
        }
    } else {
        let j = rng.below(seen + 1);
        if let Some(slot) = usize::try_from(j)
            .ok()
            .filter(|&j| j < *len)
            .and_then(|j| res.get_mut(j))
        {
            *slot = item;
        }
    }
}

/// mmdetection's `RandomSampler` as `hardmine::BalancedSampler::sample` computes it (the same
/// draws from the generator, in the same order; the tests compare the two), in caller memory:
/// the positive reservoir in `scratch`, the negative one in `out`, which then receives the
/// selection. Returns its length.
fn sample_into<T: Real>(
    budget: &Budget<T>,
    positive: &[u8],
    rng: &mut SplitMix64,
    scratch: &mut [usize],
    out: &mut [usize],
) -> usize {
    let (pos_cap, num) = (budget.expected_pos(), budget.num());
    let (mut n_pos, mut n_neg, mut seen_pos, mut seen_neg) = (0usize, 0usize, 0u64, 0u64);
    for (i, &p) in positive.iter().enumerate() {
        if p == 1 {
            offer(scratch, &mut n_pos, pos_cap, seen_pos, i, rng);
            seen_pos += 1;
        } else {
            offer(out, &mut n_neg, num, seen_neg, i, rng);
            seen_neg += 1;
        }
    }
    let take = budget.expected_neg(n_pos).min(n_neg);
    // A uniform `take`-subset of the negative reservoir: partial Fisher-Yates.
    for i in 0..take {
        let j = i.saturating_add(rng.below((n_neg - i) as u64) as usize);
        if j < n_neg {
            swap(out, i, j);
        }
    }
    let mut len = take;
    for &i in scratch.iter().take(n_pos) {
        if let Some(slot) = out.get_mut(len) {
            *slot = i;
            len += 1;
        }
    }
    if let Some(s) = out.get_mut(..len) {
        heapsort(s, |a, c| a < c);
    }
    len
}

/// The body of both samplers.
///
/// # Safety
/// `positive` points to `n` bytes, `rng` to an `HmRng`, `scratch` to `scratch_bytes` writable
/// bytes, `indices` to `num` writable values, `count` to one.
#[allow(clippy::too_many_arguments)]
unsafe fn sample<T: Real>(
    positive: *const u8,
    n: usize,
    num: usize,
    pos_fraction: T,
    neg_pos_ub: T,
    rng: *mut HmRng,
    scratch: *mut core::ffi::c_void,
    scratch_bytes: usize,
    indices: *mut usize,
    count: *mut usize,
) -> Result<(), HmStatus> {
    // SAFETY: per this function's contract.
    let mask = unsafe { input(positive, n)? };
    // SAFETY: per this function's contract.
    let mut g = unsafe { rng_load(rng)? };
    if mask.iter().any(|&b| b > 1) {
        return Err(HmStatus::InvalidTarget);
    }
    let ub = (neg_pos_ub != -T::ONE).then_some(neg_pos_ub);
    let budget = Budget::new(num, pos_fraction, ub).map_err(status)?;
    let mut outs = Outputs::new();
    let scratch = scratch.cast::<usize>();
    if !outs.add(count, 1)? || !outs.add(indices, num)? || !outs.add(scratch, num)? {
        return Err(HmStatus::NullPointer);
    }
    if scratch_bytes < hm_sampler_scratch_bytes(num) {
        return Err(HmStatus::ScratchTooSmall);
    }
    let whole = region(rng.cast_const(), 1)?.map_or(super::Region(0, 0), |r| r);
    for r in [reg(mask), whole] {
        outs.against(r)?;
    }
    // SAFETY: accepted by `outs` (disjoint, aligned, non-null); writable by contract.
    let (s, dst) = unsafe { (super::out(scratch, num), super::out(indices, num)) };
    let len = sample_into(&budget, mask, &mut g, s, dst);
    // SAFETY: `count` accepted by `outs`, `rng` by `rng_load`.
    unsafe {
        count.write(len);
        rng_store(rng, g);
    }
    Ok(())
}

/// The balanced positive/negative sampler (mmdetection's `RandomSampler`): at most `num >= 1`
/// examples, `floor(num * pos_fraction)` positives at most, and at most `neg_pos_ub`
/// negatives per positive (-1: no cap). `positive` has one byte per example (0 or 1). The
/// indices go to `indices` (room for `num`), ascending; their number to `*count`. `scratch`
/// holds `hm_sampler_scratch_bytes(num)` bytes aligned as `size_t`. Every choice takes the
/// caller's generator `rng`, which advances.
///
/// Stack: at most 512 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// `positive` points to `n` bytes, `rng` to an `HmRng`, `scratch` to `scratch_bytes`
/// writable bytes, `indices` to `num` writable `size_t`, `count` to one.
#[no_mangle]
pub unsafe extern "C" fn hm_balanced_sample_f32(
    positive: *const u8,
    n: usize,
    num: usize,
    pos_fraction: f32,
    neg_pos_ub: f32,
    rng: *mut HmRng,
    scratch: *mut core::ffi::c_void,
    scratch_bytes: usize,
    indices: *mut usize,
    count: *mut usize,
) -> HmStatus {
    // SAFETY: this function's contract.
    super::code(unsafe {
        sample(
            positive,
            n,
            num,
            pos_fraction,
            neg_pos_ub,
            rng,
            scratch,
            scratch_bytes,
            indices,
            count,
        )
    })
}

/// [`hm_balanced_sample_f32`] with Q15.16 raw `pos_fraction` and `neg_pos_ub` (-65536: no cap).
///
/// Stack: at most 512 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_balanced_sample_f32`].
#[no_mangle]
pub unsafe extern "C" fn hm_balanced_sample_q16(
    positive: *const u8,
    n: usize,
    num: usize,
    pos_fraction: i32,
    neg_pos_ub: i32,
    rng: *mut HmRng,
    scratch: *mut core::ffi::c_void,
    scratch_bytes: usize,
    indices: *mut usize,
    count: *mut usize,
) -> HmStatus {
    // SAFETY: this function's contract.
    super::code(unsafe {
        sample(
            positive,
            n,
            num,
            Q16::from_bits(pos_fraction),
            Q16::from_bits(neg_pos_ub),
            rng,
            scratch,
            scratch_bytes,
            indices,
            count,
        )
    })
}
