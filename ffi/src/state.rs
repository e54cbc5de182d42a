//! State the caller places: GHM-C, GHM-R and the random generator.
//!
//! Layout: one `u64` tag, then the Rust value. A call first checks the pointer (null,
//! alignment), then reads the tag through a raw pointer; only when it is this type's tag are
//! the bytes after it read as the Rust value (a copy: every field of these values is an
//! integer or a float, so any bytes written by `*_init` and later calls are a valid value).
//! The copy is updated and written back only when the call succeeds.

use super::{
    input, optional, reg, region, status, GhmcF, GhmcQ, GhmrF, GhmrQ, HmGhmC, HmGhmR, HmRng,
    HmStatus, Outputs, HM_GHM_BINS, TAG_GHMC_F32, TAG_GHMC_Q16, TAG_GHMR_F32, TAG_GHMR_Q16,
    TAG_RNG,
};
use hardmine::{Error, Ghm, GhmKind, Real, SplitMix64, Q16};

/// Checks `state` and returns its tag word.
fn tag_of<S>(state: *const S) -> Result<u64, HmStatus> {
    match region(state, 1)? {
        None => Err(HmStatus::NullPointer),
        // SAFETY: non-null and aligned (`S` is `u64`-aligned); `S` starts with a `u64`, and
        // the caller's contract makes it readable. Any 8 bytes are a valid `u64`.
        Some(_) => Ok(unsafe { state.cast::<u64>().read() }),
    }
}

/// Reads the value of type `G` after a state's tag, if the tag is `tag`.
///
/// # Safety
/// `state` points to a readable `S` (checked: null, alignment); `S` holds a `G` after 8 bytes
/// (checked at compile time in lib.rs).
unsafe fn load<S, G>(state: *const S, tag: u64) -> Result<G, HmStatus> {
    if tag_of(state)? != tag {
        return Err(HmStatus::Uninitialised);
    }
    // SAFETY: the tag says `*_init` of this very type wrote a `G` there; aligned (8).
    Ok(unsafe { state.cast::<u64>().add(1).cast::<G>().read() })
}

/// Writes `g` and the tag.
///
/// # Safety
/// `state` points to a writable `S` (checked by the caller through [`tag_of`] or [`region`]).
unsafe fn store<S, G>(state: *mut S, tag: u64, g: G) {
    // SAFETY: per this function's contract; `S` holds a `u64` then a `G` (compile-time check).
    unsafe {
        state.cast::<u64>().add(1).cast::<G>().write(g);
        state.cast::<u64>().write(tag);
    }
}

/// `*_init`: makes the value, then writes it; nothing is written on an error.
///
/// # Safety
/// `state` is null or points to a writable `S`.
unsafe fn init<S, G>(state: *mut S, tag: u64, made: Result<G, Error>) -> HmStatus {
    match region(state.cast_const(), 1) {
        Err(s) => return s,
        Ok(None) => return HmStatus::NullPointer,
        Ok(Some(_)) => {}
    }
    match made {
        Ok(g) => {
            // SAFETY: checked above; writable by contract.
            unsafe { store(state, tag, g) };
            HmStatus::Ok
        }
        Err(e) => status(e),
    }
}

/// One GHM batch on the caller's state: validated on a copy first, so an error leaves state
/// and gradient untouched.
///
/// # Safety
/// `state` points to a readable and writable `S`; arrays per the C functions' contract.
#[allow(clippy::too_many_arguments)]
unsafe fn ghm_step<S, T: Real, K: GhmKind<T> + Copy>(
    state: *mut S,
    tag: u64,
    xs: *const T,
    ts: *const T,
    label_weights: *const T,
    n: usize,
    loss: *mut T,
    grad: *mut T,
) -> HmStatus {
    let step = || -> Result<(), HmStatus> {
        // SAFETY: per this function's contract.
        let mut g: Ghm<T, K, HM_GHM_BINS> = unsafe { load(state.cast_const(), tag)? };
        if !(1..=HM_GHM_BINS).contains(&g.density().bins()) {
            return Err(HmStatus::Uninitialised);
        }
        // SAFETY: per this function's contract.
        let (x, t, w) = unsafe { (input(xs, n)?, input(ts, n)?, optional(label_weights, n)?) };
        let mut outs = Outputs::new();
        if !outs.add(loss, 1)? {
            return Err(HmStatus::NullPointer);
        }
        let want_grad = outs.add(grad, n)?;
        let whole = region(state.cast_const(), 1)?.map_or(super::Region(0, 0), |r| r);
        if outs
            .regions
            .iter()
            .take(outs.len)
            .any(|&o| o.overlaps(whole))
        {
            return Err(HmStatus::Overlap);
        }
        for r in [reg(x), reg(t), reg(w.unwrap_or(&[]))] {
            outs.against(r)?;
        }
        let mut trial = g;
        let v = trial.value(x, t, w).map_err(status)?;
        if want_grad {
            // SAFETY: accepted by `outs`; writable by contract.
            g.value_and_grad(x, t, w, unsafe { super::out(grad, n) })
                .map_err(status)?;
        } else {
            g = trial;
        }
        // SAFETY: `loss` accepted by `outs`; `state` checked by `load`.
        unsafe {
            loss.write(v);
            store(state, tag, g);
        }
        Ok(())
    };
    super::code(step())
}

/// Initialises a GHM-C state for the f32 path: `1 <= bins <= HM_GHM_BINS`, `momentum` in
/// [0, 1), `loss_weight >= 0`. Nothing is written on an error.
///
/// Stack: at most 512 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// `state` is null or points to a writable `HmGhmC`.
#[no_mangle]
pub unsafe extern "C" fn hm_ghmc_init_f32(
    state: *mut HmGhmC,
    bins: usize,
    momentum: f32,
    loss_weight: f32,
) -> HmStatus {
    // SAFETY: this function's contract.
    unsafe { init(state, TAG_GHMC_F32, GhmcF::new(bins, momentum, loss_weight)) }
}

/// [`hm_ghmc_init_f32`] for the Q15.16 path (raw values).
///
/// Stack: at most 512 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_ghmc_init_f32`].
#[no_mangle]
pub unsafe extern "C" fn hm_ghmc_init_q16(
    state: *mut HmGhmC,
    bins: usize,
    momentum: i32,
    loss_weight: i32,
) -> HmStatus {
    let made = GhmcQ::new(bins, Q16::from_bits(momentum), Q16::from_bits(loss_weight));
    // SAFETY: this function's contract.
    unsafe { init(state, TAG_GHMC_Q16, made) }
}

/// One GHM-C batch of `n` logits and targets (`label_weights` may be null): the loss to
/// `*loss`, the gradient to `grad` unless it is null. The moving average advances once;
/// state and outputs are unchanged after an error. `HM_STATUS_UNINITIALISED` unless
/// `hm_ghmc_init_f32` initialised `state`.
///
/// Stack: at most 7680 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// `state` points to a readable and writable `HmGhmC`; arrays to `n` values.
#[no_mangle]
pub unsafe extern "C" fn hm_ghmc_value_and_grad_f32(
    state: *mut HmGhmC,
    logits: *const f32,
    targets: *const f32,
    label_weights: *const f32,
    n: usize,
    loss: *mut f32,
    grad: *mut f32,
) -> HmStatus {
    // SAFETY: this function's contract.
    unsafe {
        ghm_step::<_, f32, hardmine::Classification>(
            state,
            TAG_GHMC_F32,
            logits,
            targets,
            label_weights,
            n,
            loss,
            grad,
        )
    }
}

/// [`hm_ghmc_value_and_grad_f32`] for the Q15.16 path.
///
/// Stack: at most 7424 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_ghmc_value_and_grad_f32`].
#[no_mangle]
pub unsafe extern "C" fn hm_ghmc_value_and_grad_q16(
    state: *mut HmGhmC,
    logits: *const i32,
    targets: *const i32,
    label_weights: *const i32,
    n: usize,
    loss: *mut i32,
    grad: *mut i32,
) -> HmStatus {
    // SAFETY: this function's contract; Q16 is an i32 in memory.
    unsafe {
        ghm_step::<_, Q16, hardmine::Classification>(
            state,
            TAG_GHMC_Q16,
            logits.cast(),
            targets.cast(),
            label_weights.cast(),
            n,
            loss.cast(),
            grad.cast(),
        )
    }
}

/// Initialises a GHM-R state for the f32 path: `mu > 0`, `1 <= bins <= HM_GHM_BINS`,
/// `momentum` in [0, 1), `loss_weight >= 0`. Nothing is written on an error.
///
/// Stack: at most 512 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// `state` is null or points to a writable `HmGhmR`.
#[no_mangle]
pub unsafe extern "C" fn hm_ghmr_init_f32(
    state: *mut HmGhmR,
    mu: f32,
    bins: usize,
    momentum: f32,
    loss_weight: f32,
) -> HmStatus {
    // SAFETY: this function's contract.
    unsafe {
        init(
            state,
            TAG_GHMR_F32,
            GhmrF::new(mu, bins, momentum, loss_weight),
        )
    }
}

/// [`hm_ghmr_init_f32`] for the Q15.16 path (raw values).
///
/// Stack: at most 512 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_ghmr_init_f32`].
#[no_mangle]
pub unsafe extern "C" fn hm_ghmr_init_q16(
    state: *mut HmGhmR,
    mu: i32,
    bins: usize,
    momentum: i32,
    loss_weight: i32,
) -> HmStatus {
    let q = Q16::from_bits;
    let made = GhmrQ::new(q(mu), bins, q(momentum), q(loss_weight));
    // SAFETY: this function's contract.
    unsafe { init(state, TAG_GHMR_Q16, made) }
}

/// One GHM-R batch (box deltas `pred - target`), as [`hm_ghmc_value_and_grad_f32`].
///
/// Stack: at most 6912 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_ghmc_value_and_grad_f32`], with an `HmGhmR`.
#[no_mangle]
pub unsafe extern "C" fn hm_ghmr_value_and_grad_f32(
    state: *mut HmGhmR,
    pred: *const f32,
    target: *const f32,
    label_weights: *const f32,
    n: usize,
    loss: *mut f32,
    grad: *mut f32,
) -> HmStatus {
    // SAFETY: this function's contract.
    unsafe {
        ghm_step::<_, f32, hardmine::Regression<f32>>(
            state,
            TAG_GHMR_F32,
            pred,
            target,
            label_weights,
            n,
            loss,
            grad,
        )
    }
}

/// [`hm_ghmr_value_and_grad_f32`] for the Q15.16 path.
///
/// Stack: at most 6912 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_ghmr_value_and_grad_f32`].
#[no_mangle]
pub unsafe extern "C" fn hm_ghmr_value_and_grad_q16(
    state: *mut HmGhmR,
    pred: *const i32,
    target: *const i32,
    label_weights: *const i32,
    n: usize,
    loss: *mut i32,
    grad: *mut i32,
) -> HmStatus {
    // SAFETY: this function's contract; Q16 is an i32 in memory.
    unsafe {
        ghm_step::<_, Q16, hardmine::Regression<Q16>>(
            state,
            TAG_GHMR_Q16,
            pred.cast(),
            target.cast(),
            label_weights.cast(),
            n,
            loss.cast(),
            grad.cast(),
        )
    }
}

/// Initialises the caller's random generator (SplitMix64) with `seed`.
///
/// Stack: at most 64 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// `rng` is null or points to a writable `HmRng`.
#[no_mangle]
pub unsafe extern "C" fn hm_rng_init(rng: *mut HmRng, seed: u64) -> HmStatus {
    // SAFETY: this function's contract.
    unsafe { init(rng, TAG_RNG, Ok(SplitMix64::new(seed))) }
}

/// The generator at `rng`, if initialised.
///
/// # Safety
/// `rng` is null or points to a readable `HmRng`.
pub(crate) unsafe fn rng_load(rng: *const HmRng) -> Result<SplitMix64, HmStatus> {
    // SAFETY: per this function's contract.
    unsafe { load(rng, TAG_RNG) }
}

/// Writes the advanced generator back.
///
/// # Safety
/// `rng` was accepted by [`rng_load`] and is writable.
pub(crate) unsafe fn rng_store(rng: *mut HmRng, g: SplitMix64) {
    // SAFETY: per this function's contract.
    unsafe { store(rng, TAG_RNG, g) }
}
