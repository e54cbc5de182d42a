//! C ABI for hardmine (f32 path): sigmoid focal, BCE, GHM-C and GHM-R with state the caller
//! places (published size and alignment, so C can keep it in static memory), and OHEM top-k.
//!
//! Every function returns an [`HmStatus`]; outputs are written only on `HM_STATUS_OK` (a
//! failed call may leave an output array partly written; GHM state is unchanged). Null
//! pointers where an array is required give `HM_STATUS_NULL_POINTER`. The header `hardmine.h`
//! is generated from this file by cbindgen (`firmware/check.sh`).

use core::mem::{align_of, size_of, MaybeUninit};
use hardmine::{BceWithLogits, Error, GhmC, GhmR, Ohem, Reduction, SigmoidFocal};

/// Result of every call.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmStatus {
    /// Success.
    Ok = 0,
    /// Two lengths disagree.
    LengthMismatch = 1,
    /// A NaN or infinite input.
    NonFinite = 2,
    /// A target outside [0, 1].
    InvalidTarget = 3,
    /// An inverted box.
    InvalidBox = 4,
    /// A hyper-parameter outside its domain.
    InvalidParameter = 5,
    /// A required pointer was null.
    NullPointer = 6,
}

/// Reduction of per-element losses.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmReduction {
    /// The scalar is the sum (the per-element vector is not returned through this API).
    None = 0,
    /// Sum.
    Sum = 1,
    /// Mean over elements.
    Mean = 2,
}

impl From<HmReduction> for Reduction {
    fn from(r: HmReduction) -> Self {
        match r {
            HmReduction::None => Reduction::None,
            HmReduction::Sum => Reduction::Sum,
            HmReduction::Mean => Reduction::Mean,
        }
    }
}

fn status(e: Error) -> HmStatus {
    match e {
        Error::LengthMismatch { .. } => HmStatus::LengthMismatch,
        Error::NonFinite { .. } => HmStatus::NonFinite,
        Error::InvalidTarget { .. } => HmStatus::InvalidTarget,
        Error::InvalidBox { .. } => HmStatus::InvalidBox,
        _ => HmStatus::InvalidParameter,
    }
}

/// Bins of the GHM states (GHM-C's RetinaNet setting, the most any call may use).
pub const HM_GHM_BINS: usize = 30;
/// Bytes of an [`HmGhmC`] (at least the Rust state's size).
pub const HM_GHMC_BYTES: usize = 272;
/// Bytes of an [`HmGhmR`].
pub const HM_GHMR_BYTES: usize = 288;
/// Largest `k` of [`hm_ohem_topk`].
pub const HM_OHEM_MAX_K: usize = 1024;

/// GHM-C state, placed by the caller (static memory is fine), initialised by
/// [`hm_ghmc_init`]. Alignment 8.
#[repr(C, align(8))]
pub struct HmGhmC {
    /// Storage; not to be read or written by C.
    pub opaque: [u8; HM_GHMC_BYTES],
}

/// GHM-R state, placed by the caller, initialised by [`hm_ghmr_init`]. Alignment 8.
#[repr(C, align(8))]
pub struct HmGhmR {
    /// Storage; not to be read or written by C.
    pub opaque: [u8; HM_GHMR_BYTES],
}

type Ghmc = GhmC<f32, HM_GHM_BINS>;
type Ghmr = GhmR<f32, HM_GHM_BINS>;

const _: () =
    assert!(size_of::<Ghmc>() <= HM_GHMC_BYTES && align_of::<Ghmc>() <= align_of::<HmGhmC>());
const _: () =
    assert!(size_of::<Ghmr>() <= HM_GHMR_BYTES && align_of::<Ghmr>() <= align_of::<HmGhmR>());

/// A slice from a C pointer and length; `None` for a null pointer (an empty slice for n = 0).
///
/// # Safety
/// `p` must point to `n` readable values when not null.
unsafe fn input<'a>(p: *const f32, n: usize) -> Option<&'a [f32]> {
    if n == 0 {
        Some(&[])
    } else if p.is_null() {
        None
    } else {
        // SAFETY: the caller guarantees `n` readable values at `p`.
        Some(unsafe { core::slice::from_raw_parts(p, n) })
    }
}

/// A mutable slice from a C pointer and length.
///
/// # Safety
/// `p` must point to `n` writable values when not null.
unsafe fn output<'a>(p: *mut f32, n: usize) -> Option<&'a mut [f32]> {
    if n == 0 {
        Some(&mut [])
    } else if p.is_null() {
        None
    } else {
        // SAFETY: the caller guarantees `n` writable values at `p`.
        Some(unsafe { core::slice::from_raw_parts_mut(p, n) })
    }
}

/// Writes a freshly made GHM state to caller memory (the body of both `*_init` functions).
///
/// # Safety
/// `state` is null or points to writable memory of `T`'s size and alignment.
unsafe fn place<T>(state: *mut T, made: Result<T, Error>) -> HmStatus {
    if state.is_null() {
        return HmStatus::NullPointer;
    }
    match made {
        Ok(g) => {
            // SAFETY: per this function's contract; no old value is dropped.
            unsafe { state.cast::<MaybeUninit<T>>().write(MaybeUninit::new(g)) };
            HmStatus::Ok
        }
        Err(e) => status(e),
    }
}

/// One GHM batch on the state at `state` (the body of both `*_value_and_grad` functions).
///
/// # Safety
/// `state` points to an initialised `Ghm<f32, K, HM_GHM_BINS>`, exclusively for this call;
/// arrays as the callers' contracts.
unsafe fn ghm_step<K: hardmine::GhmKind<f32>>(
    state: *mut hardmine::Ghm<f32, K, HM_GHM_BINS>,
    xs: *const f32,
    ts: *const f32,
    label_weights: *const f32,
    n: usize,
    loss: *mut f32,
    grad: *mut f32,
) -> HmStatus {
    // SAFETY: per this function's contract.
    let (Some(x), Some(t), Some(g)) = (unsafe { input(xs, n) }, unsafe { input(ts, n) }, unsafe {
        output(grad, n)
    }) else {
        return HmStatus::NullPointer;
    };
    if state.is_null() || loss.is_null() {
        return HmStatus::NullPointer;
    }
    // SAFETY: per this function's contract.
    let w = if label_weights.is_null() {
        None
    } else {
        unsafe { input(label_weights, n) }
    };
    // SAFETY: initialised and exclusive (this function's contract).
    let ghm = unsafe { &mut *state };
    finish(ghm.value_and_grad(x, t, w, g), loss)
}

fn finish(r: Result<f32, Error>, loss: *mut f32) -> HmStatus {
    match r {
        Ok(v) => {
            // SAFETY: checked non-null by the callers.
            unsafe { *loss = v };
            HmStatus::Ok
        }
        Err(e) => status(e),
    }
}

/// Sigmoid focal loss of `n` logits against targets in [0, 1] (`alpha` in [0, 1] or -1 for
/// none, `gamma >= 0`), written to `*loss`, with the gradient to `grad` unless it is null.
///
/// # Safety
/// `logits` and `targets` point to `n` floats, `grad` (if not null) to `n` writable floats,
/// `loss` to one writable float.
#[no_mangle]
pub unsafe extern "C" fn hm_sigmoid_focal(
    logits: *const f32,
    targets: *const f32,
    n: usize,
    alpha: f32,
    gamma: f32,
    reduction: HmReduction,
    loss: *mut f32,
    grad: *mut f32,
) -> HmStatus {
    // SAFETY: per this function's contract.
    let (Some(x), Some(t)) = (unsafe { input(logits, n) }, unsafe { input(targets, n) }) else {
        return HmStatus::NullPointer;
    };
    if loss.is_null() {
        return HmStatus::NullPointer;
    }
    let focal = match SigmoidFocal::new(alpha, gamma) {
        Ok(f) => f.with_reduction(reduction.into()),
        Err(e) => return status(e),
    };
    // SAFETY: per this function's contract.
    let r = match unsafe { output(grad, n) } {
        Some(g) if !grad.is_null() || n == 0 => focal.value_and_grad(x, t, g),
        _ => focal.value(x, t),
    };
    finish(r, loss)
}

/// Binary cross-entropy with logits (`weights` may be null), written to `*loss`, with the
/// gradient to `grad` unless it is null.
///
/// # Safety
/// As [`hm_sigmoid_focal`]; `weights` (if not null) points to `n` floats.
#[no_mangle]
pub unsafe extern "C" fn hm_bce(
    logits: *const f32,
    targets: *const f32,
    weights: *const f32,
    n: usize,
    reduction: HmReduction,
    loss: *mut f32,
    grad: *mut f32,
) -> HmStatus {
    // SAFETY: per this function's contract.
    let (Some(x), Some(t)) = (unsafe { input(logits, n) }, unsafe { input(targets, n) }) else {
        return HmStatus::NullPointer;
    };
    if loss.is_null() {
        return HmStatus::NullPointer;
    }
    // SAFETY: per this function's contract.
    let w = if weights.is_null() {
        None
    } else {
        unsafe { input(weights, n) }
    };
    let bce = BceWithLogits::new().with_reduction(reduction.into());
    // SAFETY: per this function's contract.
    let r = match unsafe { output(grad, n) } {
        Some(g) if !grad.is_null() || n == 0 => bce.value_and_grad(x, t, w, g),
        _ => bce.value(x, t, w),
    };
    finish(r, loss)
}

/// Initialises a GHM-C state: `bins <= HM_GHM_BINS`, `momentum` in [0, 1), `loss_weight >= 0`.
///
/// # Safety
/// `state` points to writable memory of `HmGhmC`'s size and alignment.
#[no_mangle]
pub unsafe extern "C" fn hm_ghmc_init(
    state: *mut HmGhmC,
    bins: usize,
    momentum: f32,
    loss_weight: f32,
) -> HmStatus {
    // SAFETY: `state` is large and aligned enough (checked at compile time above).
    unsafe { place(state.cast::<Ghmc>(), Ghmc::new(bins, momentum, loss_weight)) }
}

/// One GHM-C batch: loss to `*loss`, gradient to `grad` (`label_weights` may be null). The
/// moving average advances once; it is unchanged after an error.
///
/// # Safety
/// `state` was initialised by [`hm_ghmc_init`]; arrays as [`hm_bce`], `grad` required.
#[no_mangle]
pub unsafe extern "C" fn hm_ghmc_value_and_grad(
    state: *mut HmGhmC,
    logits: *const f32,
    targets: *const f32,
    label_weights: *const f32,
    n: usize,
    loss: *mut f32,
    grad: *mut f32,
) -> HmStatus {
    // SAFETY: this function's contract is `ghm_step`'s.
    unsafe {
        ghm_step(
            state.cast::<Ghmc>(),
            logits,
            targets,
            label_weights,
            n,
            loss,
            grad,
        )
    }
}

/// Initialises a GHM-R state: `mu > 0`, `bins <= HM_GHM_BINS`, `momentum` in [0, 1),
/// `loss_weight >= 0`.
///
/// # Safety
/// `state` points to writable memory of `HmGhmR`'s size and alignment.
#[no_mangle]
pub unsafe extern "C" fn hm_ghmr_init(
    state: *mut HmGhmR,
    mu: f32,
    bins: usize,
    momentum: f32,
    loss_weight: f32,
) -> HmStatus {
    // SAFETY: `state` is large and aligned enough (checked at compile time above).
    unsafe {
        place(
            state.cast::<Ghmr>(),
            Ghmr::new(mu, bins, momentum, loss_weight),
        )
    }
}

/// One GHM-R batch (box deltas `pred - target`), as [`hm_ghmc_value_and_grad`].
///
/// # Safety
/// `state` was initialised by [`hm_ghmr_init`]; arrays as [`hm_ghmc_value_and_grad`].
#[no_mangle]
pub unsafe extern "C" fn hm_ghmr_value_and_grad(
    state: *mut HmGhmR,
    pred: *const f32,
    target: *const f32,
    label_weights: *const f32,
    n: usize,
    loss: *mut f32,
    grad: *mut f32,
) -> HmStatus {
    // SAFETY: this function's contract is `ghm_step`'s.
    unsafe {
        ghm_step(
            state.cast::<Ghmr>(),
            pred,
            target,
            label_weights,
            n,
            loss,
            grad,
        )
    }
}

/// OHEM: the indices of the `k <= HM_OHEM_MAX_K` largest losses (ties: lower index), ascending,
/// written to `indices` (room for `k`); their number to `*count`.
///
/// # Safety
/// `losses` points to `n` floats, `indices` to `k` writable `size_t`, `count` to one.
#[no_mangle]
pub unsafe extern "C" fn hm_ohem_topk(
    losses: *const f32,
    n: usize,
    k: usize,
    indices: *mut usize,
    count: *mut usize,
) -> HmStatus {
    // SAFETY: per this function's contract.
    let Some(l) = (unsafe { input(losses, n) }) else {
        return HmStatus::NullPointer;
    };
    if indices.is_null() || count.is_null() {
        return HmStatus::NullPointer;
    }
    let picked = match Ohem::<f32, HM_OHEM_MAX_K>::new(k).and_then(|o| o.select(l, None)) {
        Ok(p) => p,
        Err(e) => return status(e),
    };
    // SAFETY: `indices` has room for `k >= picked.len()` values; `count` is writable.
    unsafe {
        core::slice::from_raw_parts_mut(indices, picked.len()).copy_from_slice(picked.indices());
        *count = picked.len();
    }
    HmStatus::Ok
}
