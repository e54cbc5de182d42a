//! C ABI for hardmine, `no_std` and allocation-free, on the f32 path (`*_f32`, `float`) and the
//! Q15.16 path (`*_q16`, `int32_t` raw values: the value times 2^16).
//!
//! Conventions (the header `hardmine.h` is generated from this file by cbindgen):
//! - every function returns an [`HmStatus`] (an `int32_t`); outputs and caller state are
//!   written only on `HM_STATUS_OK`: after any other status nothing the caller owns changed;
//! - enumerations cross the boundary as `int32_t` and are validated (`HM_REDUCTION_*`);
//! - arrays must be aligned for their element type, must not overlap an output, and a length
//!   of 0 allows a null pointer;
//! - state the caller places (GHM, RNG) carries a tag that `*_init` writes and every call
//!   checks through raw pointers before its bytes become a Rust value;
//! - the loss functions write the reduced scalar to `*loss`, the gradient of that scalar to
//!   `grad` unless it is null, and with `HM_REDUCTION_NONE` the per-element losses to
//!   `elements` (required then; ignored otherwise). `avg_factor` may be null (no factor).
//! - OHEM and the sampler take a caller scratch buffer (`hm_ohem_scratch_bytes`,
//!   `hm_sampler_scratch_bytes`); no call keeps a buffer that grows with its inputs on the stack.
#![no_std]
// Panic-freedom (the C firmware's link proves it): no unwrap, expect, panic or panicking index
// outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

// The host build (C programs and tests on a desktop) links std, which brings its panic
// handler; the bare-metal build (`target_os = "none"`) is `no_std` with the handler below.
#[cfg(any(test, not(target_os = "none")))]
extern crate std;

use core::mem::{align_of, size_of, MaybeUninit};
use hardmine::{Error, GhmC, GhmR, Real, Reduction, SplitMix64, Q16};

#[cfg(test)]
mod tests;

/// Major version of the library (the crate's version).
pub const HM_VERSION_MAJOR: u32 = 0;
/// Minor version.
pub const HM_VERSION_MINOR: u32 = 1;
/// Patch version.
pub const HM_VERSION_PATCH: u32 = 0;

/// Result of every call, an `int32_t`. Every status but `HM_STATUS_OK` leaves the caller's
/// outputs and state as they were.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmStatus {
    /// Success: the outputs were written.
    Ok = 0,
    /// Two lengths disagree, or a length times its element size overflows.
    LengthMismatch = 1,
    /// A NaN or infinite input (f32), or a non-finite parameter.
    NonFinite = 2,
    /// A target outside [0, 1], or a `positive` mask byte other than 0 or 1.
    InvalidTarget = 3,
    /// An inverted box (x2 < x1 or y2 < y1).
    InvalidBox = 4,
    /// A hyper-parameter outside its domain (gamma < 0, bins, k, num, momentum, avg_factor
    /// with `HM_REDUCTION_SUM`, ...).
    InvalidParameter = 5,
    /// A required pointer was null.
    NullPointer = 6,
    /// State not initialised by this type's `*_init` (never initialised, overwritten, or
    /// state of another type or path).
    Uninitialised = 7,
    /// A pointer not aligned for its type.
    Misaligned = 8,
    /// A reduction other than `HM_REDUCTION_NONE`, `_SUM`, `_MEAN`.
    InvalidReduction = 9,
    /// The scratch buffer is smaller than `hm_ohem_scratch_bytes` says.
    ScratchTooSmall = 10,
    /// An output overlaps an input or another output.
    Overlap = 11,
}

/// Reductions, passed as `int32_t`: any other value gives `HM_STATUS_INVALID_REDUCTION`.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmReduction {
    /// Per-element losses to `elements`; the scalar is their sum.
    None = 0,
    /// Sum.
    Sum = 1,
    /// Mean (over elements; softmax: over non-ignored rows), or sum / (avg_factor + 2^-23).
    Mean = 2,
}

fn reduction(r: i32) -> Result<Reduction, HmStatus> {
    match r {
        0 => Ok(Reduction::None),
        1 => Ok(Reduction::Sum),
        2 => Ok(Reduction::Mean),
        _ => Err(HmStatus::InvalidReduction),
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

/// Bytes of an [`HmGhmC`] (either path).
pub const HM_GHMC_SIZE: usize = 520;
/// Alignment of an [`HmGhmC`].
pub const HM_GHMC_ALIGN: usize = 8;
/// Bytes of an [`HmGhmR`] (either path).
pub const HM_GHMR_SIZE: usize = 528;
/// Alignment of an [`HmGhmR`].
pub const HM_GHMR_ALIGN: usize = 8;
/// Bytes of an [`HmRng`].
pub const HM_RNG_SIZE: usize = 16;
/// Alignment of an [`HmRng`].
pub const HM_RNG_ALIGN: usize = 8;

/// GHM-C state (f32 or Q15.16, fixed by the `*_init` used), placed by the caller (static
/// memory is fine). Opaque: not to be read or written by C.
// The words are `MaybeUninit` because `*_init` stores the core's state value there, whose
// padding bytes are uninitialised in Rust's memory model: a Rust caller never reads them as
// `u64` (C sees plain `uint64_t`; cbindgen emits the same header either way).
#[repr(C)]
pub struct HmGhmC {
    /// Tag, then the state.
    pub opaque: [MaybeUninit<u64>; 65],
}

/// GHM-R state, as [`HmGhmC`].
#[repr(C)]
pub struct HmGhmR {
    /// Tag, then the state.
    pub opaque: [MaybeUninit<u64>; 66],
}

impl HmGhmC {
    /// Zeroed (not yet initialised) state memory, for Rust callers: `hm_ghmc_init_*` next.
    pub const fn zeroed() -> Self {
        Self {
            opaque: [MaybeUninit::new(0); 65],
        }
    }
}

impl HmGhmR {
    /// Zeroed (not yet initialised) state memory, for Rust callers: `hm_ghmr_init_*` next.
    pub const fn zeroed() -> Self {
        Self {
            opaque: [MaybeUninit::new(0); 66],
        }
    }
}

/// The caller's random generator (SplitMix64), initialised by `hm_rng_init`.
#[repr(C)]
pub struct HmRng {
    /// Tag, then the generator.
    pub opaque: [u64; 2],
}

/// Tags: "HMST" and a kind; no byte-repeating pattern (0x00.., 0x7F.., 0xFF..) is one.
const TAG: u64 = 0x484d_5354_a5c3_0000;
const TAG_GHMC_F32: u64 = TAG | 0x11;
const TAG_GHMC_Q16: u64 = TAG | 0x12;
const TAG_GHMR_F32: u64 = TAG | 0x21;
const TAG_GHMR_Q16: u64 = TAG | 0x22;
const TAG_RNG: u64 = TAG | 0x31;

type GhmcF = GhmC<f32, HM_GHM_BINS>;
type GhmcQ = GhmC<Q16, HM_GHM_BINS>;
type GhmrF = GhmR<f32, HM_GHM_BINS>;
type GhmrQ = GhmR<Q16, HM_GHM_BINS>;

/// A state type fits in its C type after the 8-byte tag, with its alignment.
const fn fits<S, G>(align: usize) -> bool {
    size_of::<G>() + 8 <= size_of::<S>() && align_of::<G>() <= 8 && align_of::<S>() == align
}
const _: () = assert!(size_of::<HmGhmC>() == HM_GHMC_SIZE && size_of::<HmGhmR>() == HM_GHMR_SIZE);
const _: () = assert!(size_of::<HmRng>() == HM_RNG_SIZE);
const _: () = assert!(fits::<HmGhmC, GhmcF>(HM_GHMC_ALIGN) && fits::<HmGhmC, GhmcQ>(HM_GHMC_ALIGN));
const _: () = assert!(fits::<HmGhmR, GhmrF>(HM_GHMR_ALIGN) && fits::<HmGhmR, GhmrQ>(HM_GHMR_ALIGN));
const _: () = assert!(fits::<HmRng, SplitMix64>(HM_RNG_ALIGN));
// Q15.16 is an i32 in memory (both `repr(transparent)`), so `int32_t *` casts to `*const Q16`.
const _: () = assert!(size_of::<Q16>() == 4 && align_of::<Q16>() == 4);

/// A validated pointer region `[addr, addr + bytes)`.
#[derive(Clone, Copy)]
struct Region(usize, usize);

impl Region {
    fn overlaps(self, o: Region) -> bool {
        self.1 != 0 && o.1 != 0 && self.0 < o.0 + o.1 && o.0 < self.0 + self.1
    }
}

/// Checks `p` for `n` values of `T`: `Ok(None)` for null (allowed only when `n == 0` or the
/// argument is optional, which the caller decides), misalignment and size overflow refused.
fn region<T>(p: *const T, n: usize) -> Result<Option<Region>, HmStatus> {
    let bytes = n
        .checked_mul(size_of::<T>())
        .filter(|&b| b <= isize::MAX as usize);
    let bytes = bytes.ok_or(HmStatus::LengthMismatch)?;
    if p.is_null() {
        return Ok(None);
    }
    let addr = p as usize;
    if !addr.is_multiple_of(align_of::<T>()) {
        return Err(HmStatus::Misaligned);
    }
    if addr.checked_add(bytes).is_none() {
        return Err(HmStatus::LengthMismatch);
    }
    Ok(Some(Region(addr, bytes)))
}

/// A required input array.
///
/// # Safety
/// When not null, `p` points to `n` readable values that stay unchanged during the call.
unsafe fn input<'a, T>(p: *const T, n: usize) -> Result<&'a [T], HmStatus> {
    match region(p, n)? {
        _ if n == 0 => Ok(&[]),
        None => Err(HmStatus::NullPointer),
        // SAFETY: non-null, aligned, in bounds of the address space; readable by contract.
        Some(_) => Ok(unsafe { core::slice::from_raw_parts(p, n) }),
    }
}

/// An optional input array (null: absent).
///
/// # Safety
/// As [`input`].
unsafe fn optional<'a, T>(p: *const T, n: usize) -> Result<Option<&'a [T]>, HmStatus> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: as this function's contract.
    unsafe { input(p, n) }.map(Some)
}

/// The outputs of one call, checked against each other and the inputs before any slice is
/// made (so `&mut` never aliases an input).
struct Outputs {
    regions: [Region; 4],
    len: usize,
}

impl Outputs {
    fn new() -> Self {
        Self {
            regions: [Region(0, 0); 4],
            len: 0,
        }
    }

    /// Registers output `p` of `n` values (null allowed: `Ok(false)`).
    fn add<T>(&mut self, p: *mut T, n: usize) -> Result<bool, HmStatus> {
        let Some(r) = region(p.cast_const(), n.max(1))? else {
            return Ok(false);
        };
        if self.regions.iter().take(self.len).any(|&o| o.overlaps(r)) {
            return Err(HmStatus::Overlap);
        }
        if let Some(slot) = self.regions.get_mut(self.len) {
            *slot = r;
            self.len += 1;
        }
        Ok(true)
    }

    /// Refuses an output overlapping input `r`.
    fn against(&self, r: Region) -> Result<(), HmStatus> {
        if self.regions.iter().take(self.len).any(|&o| o.overlaps(r)) {
            return Err(HmStatus::Overlap);
        }
        Ok(())
    }
}

/// The memory of an input slice.
fn reg<T>(s: &[T]) -> Region {
    Region(s.as_ptr() as usize, core::mem::size_of_val(s))
}

/// A checked output array.
///
/// # Safety
/// `p` was accepted by [`Outputs::add`] for `n` values and points to `n` writable values.
unsafe fn out<'a, T>(p: *mut T, n: usize) -> &'a mut [T] {
    if n == 0 {
        return &mut [];
    }
    // SAFETY: per this function's contract.
    unsafe { core::slice::from_raw_parts_mut(p, n) }
}

/// The three runs of a loss: validate only, gradient, per-element.
enum Run<'a, T> {
    Value,
    Grad(&'a mut [T]),
    Elements(&'a mut [T]),
}

/// The common body of every loss: checks the outputs (`grad` of `n_grad` values, `elements`
/// of `n_elem` with `NONE`), runs the loss once without writing (every input error surfaces
/// there), then writes gradient, per-element losses and the scalar.
///
/// # Safety
/// `loss` points to one writable `T`; `grad` (if not null) to `n_grad`, `elements` (if not
/// null) to `n_elem` writable values; `inputs` are the call's input arrays.
#[allow(clippy::too_many_arguments)]
unsafe fn run_loss<T: Real>(
    inputs: &[Region],
    red: Reduction,
    loss: *mut T,
    grad: *mut T,
    n_grad: usize,
    elements: *mut T,
    n_elem: usize,
    f: impl Fn(Run<'_, T>) -> Result<T, Error>,
) -> Result<(), HmStatus> {
    let mut outs = Outputs::new();
    if !outs.add(loss, 1)? {
        return Err(HmStatus::NullPointer);
    }
    let want_grad = outs.add(grad, n_grad)?;
    // With NONE the per-element vector is required, unless it is empty.
    let want_elem = red == Reduction::None && outs.add(elements, n_elem)?;
    if red == Reduction::None && !want_elem && n_elem > 0 {
        return Err(HmStatus::NullPointer);
    }
    for &r in inputs {
        outs.against(r)?;
    }
    let v = f(Run::Value).map_err(status)?;
    if want_grad {
        // SAFETY: accepted by `outs` for `n_grad` values; writable by contract.
        f(Run::Grad(unsafe { out(grad, n_grad) })).map_err(status)?;
    }
    if want_elem {
        // SAFETY: as above, `n_elem` values.
        f(Run::Elements(unsafe { out(elements, n_elem) })).map_err(status)?;
    }
    // SAFETY: accepted by `outs`: non-null, aligned, writable by contract.
    unsafe { loss.write(v) };
    Ok(())
}

fn code(r: Result<(), HmStatus>) -> HmStatus {
    match r {
        Ok(()) => HmStatus::Ok,
        Err(s) => s,
    }
}

/// The optional `avg_factor` argument.
///
/// # Safety
/// `p` is null or points to one readable `T`.
unsafe fn factor<T: Real>(p: *const T) -> Result<Option<T>, HmStatus> {
    // SAFETY: as this function's contract.
    Ok(unsafe { optional(p, 1) }?.and_then(|s| s.first().copied()))
}

/// `n * m` or `HM_STATUS_LENGTH_MISMATCH`.
fn product(n: usize, m: usize) -> Result<usize, HmStatus> {
    n.checked_mul(m).ok_or(HmStatus::LengthMismatch)
}

mod imp;
mod mining;
mod state;

pub use mining::*;
pub use state::*;

/// The library's version, `MAJOR << 16 | MINOR << 8 | PATCH`, to compare with the header's.
///
/// Stack: at most 64 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
#[no_mangle]
pub extern "C" fn hm_version() -> u32 {
    HM_VERSION_MAJOR << 16 | HM_VERSION_MINOR << 8 | HM_VERSION_PATCH
}

// ---- element-wise and row-wise losses ------------------------------------------------------

/// Binary cross-entropy with logits over `n` elements (`weights` may be null). See the
/// header's conventions for `loss`, `grad`, `elements`, `reduction` and `avg_factor`.
///
/// Stack: at most 3584 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// Every non-null pointer points to `n` values (`loss`, `avg_factor`: one).
#[no_mangle]
pub unsafe extern "C" fn hm_bce_f32(
    logits: *const f32,
    targets: *const f32,
    weights: *const f32,
    n: usize,
    reduction: i32,
    avg_factor: *const f32,
    loss: *mut f32,
    grad: *mut f32,
    elements: *mut f32,
) -> HmStatus {
    // SAFETY: this function's contract is `imp::bce`'s.
    code(unsafe {
        imp::bce(
            logits, targets, weights, n, reduction, avg_factor, loss, grad, elements,
        )
    })
}

/// [`hm_bce_f32`] on Q15.16 raw values.
///
/// Stack: at most 4096 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_bce_f32`].
#[no_mangle]
pub unsafe extern "C" fn hm_bce_q16(
    logits: *const i32,
    targets: *const i32,
    weights: *const i32,
    n: usize,
    reduction: i32,
    avg_factor: *const i32,
    loss: *mut i32,
    grad: *mut i32,
    elements: *mut i32,
) -> HmStatus {
    // SAFETY: Q16 is an i32 in memory; this function's contract is `imp::bce`'s.
    code(unsafe {
        imp::bce::<Q16>(
            logits.cast(),
            targets.cast(),
            weights.cast(),
            n,
            reduction,
            avg_factor.cast(),
            loss.cast(),
            grad.cast(),
            elements.cast(),
        )
    })
}

/// Sigmoid focal loss of `n` logits against targets in [0, 1]: `alpha` in [0, 1], or -1 for
/// none (Q15.16: -65536); `gamma >= 0`.
///
/// Stack: at most 3584 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_bce_f32`].
#[no_mangle]
pub unsafe extern "C" fn hm_sigmoid_focal_f32(
    logits: *const f32,
    targets: *const f32,
    n: usize,
    alpha: f32,
    gamma: f32,
    reduction: i32,
    avg_factor: *const f32,
    loss: *mut f32,
    grad: *mut f32,
    elements: *mut f32,
) -> HmStatus {
    // SAFETY: this function's contract is `imp::focal`'s.
    code(unsafe {
        imp::focal(
            logits, targets, n, alpha, gamma, reduction, avg_factor, loss, grad, elements,
        )
    })
}

/// [`hm_sigmoid_focal_f32`] on Q15.16 raw values.
///
/// Stack: at most 4864 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_bce_f32`].
#[no_mangle]
pub unsafe extern "C" fn hm_sigmoid_focal_q16(
    logits: *const i32,
    targets: *const i32,
    n: usize,
    alpha: i32,
    gamma: i32,
    reduction: i32,
    avg_factor: *const i32,
    loss: *mut i32,
    grad: *mut i32,
    elements: *mut i32,
) -> HmStatus {
    // SAFETY: Q16 is an i32 in memory; the contract is `imp::focal`'s.
    code(unsafe {
        imp::focal::<Q16>(
            logits.cast(),
            targets.cast(),
            n,
            Q16::from_bits(alpha),
            Q16::from_bits(gamma),
            reduction,
            avg_factor.cast(),
            loss.cast(),
            grad.cast(),
            elements.cast(),
        )
    })
}

/// Sigmoid focal loss on class labels: `logits` `[rows x classes]`, one `labels` entry per row
/// (outside `0..classes`: background, an all-zero target row), `label_weights` per row (may be
/// null), `class_alpha` one alpha per class (may be null: the scalar `alpha`, -1 for none). `grad` and `elements` have `rows * classes` values.
///
/// Stack: at most 1792 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// Every non-null pointer points to as many values as stated.
#[no_mangle]
pub unsafe extern "C" fn hm_sigmoid_focal_labels_f32(
    logits: *const f32,
    labels: *const i32,
    label_weights: *const f32,
    rows: usize,
    classes: usize,
    alpha: f32,
    class_alpha: *const f32,
    gamma: f32,
    reduction: i32,
    avg_factor: *const f32,
    loss: *mut f32,
    grad: *mut f32,
    elements: *mut f32,
) -> HmStatus {
    // SAFETY: this function's contract is `imp::focal_labels`'s.
    code(unsafe {
        imp::focal_labels(
            logits,
            labels,
            label_weights,
            rows,
            classes,
            alpha,
            class_alpha,
            gamma,
            reduction,
            avg_factor,
            loss,
            grad,
            elements,
        )
    })
}

/// [`hm_sigmoid_focal_labels_f32`] on Q15.16 raw values.
///
/// Stack: at most 2816 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_sigmoid_focal_labels_f32`].
#[no_mangle]
pub unsafe extern "C" fn hm_sigmoid_focal_labels_q16(
    logits: *const i32,
    labels: *const i32,
    label_weights: *const i32,
    rows: usize,
    classes: usize,
    alpha: i32,
    class_alpha: *const i32,
    gamma: i32,
    reduction: i32,
    avg_factor: *const i32,
    loss: *mut i32,
    grad: *mut i32,
    elements: *mut i32,
) -> HmStatus {
    // SAFETY: Q16 is an i32 in memory; the contract is `imp::focal_labels`'s.
    code(unsafe {
        imp::focal_labels::<Q16>(
            logits.cast(),
            labels,
            label_weights.cast(),
            rows,
            classes,
            Q16::from_bits(alpha),
            class_alpha.cast(),
            Q16::from_bits(gamma),
            reduction,
            avg_factor.cast(),
            loss.cast(),
            grad.cast(),
            elements.cast(),
        )
    })
}

/// Softmax cross-entropy: `logits` `[rows x classes]`, `labels` per row (negative: ignored).
/// `grad` has `rows * classes` values, `elements` `rows`.
///
/// Stack: at most 1024 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// Every non-null pointer points to as many values as stated.
#[no_mangle]
pub unsafe extern "C" fn hm_softmax_ce_f32(
    logits: *const f32,
    labels: *const i32,
    rows: usize,
    classes: usize,
    reduction: i32,
    avg_factor: *const f32,
    loss: *mut f32,
    grad: *mut f32,
    elements: *mut f32,
) -> HmStatus {
    // SAFETY: this function's contract is `imp::softmax_ce`'s.
    code(unsafe {
        imp::softmax_ce(
            logits, labels, rows, classes, reduction, avg_factor, loss, grad, elements,
        )
    })
}

/// [`hm_softmax_ce_f32`] on Q15.16 raw values.
///
/// Stack: at most 1536 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_softmax_ce_f32`].
#[no_mangle]
pub unsafe extern "C" fn hm_softmax_ce_q16(
    logits: *const i32,
    labels: *const i32,
    rows: usize,
    classes: usize,
    reduction: i32,
    avg_factor: *const i32,
    loss: *mut i32,
    grad: *mut i32,
    elements: *mut i32,
) -> HmStatus {
    // SAFETY: Q16 is an i32 in memory; the contract is `imp::softmax_ce`'s.
    code(unsafe {
        imp::softmax_ce::<Q16>(
            logits.cast(),
            labels,
            rows,
            classes,
            reduction,
            avg_factor.cast(),
            loss.cast(),
            grad.cast(),
            elements.cast(),
        )
    })
}

/// Softmax focal loss (`alpha` in [0, 1], `gamma >= 0`), shaped as [`hm_softmax_ce_f32`].
///
/// Stack: at most 1024 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_softmax_ce_f32`].
#[no_mangle]
pub unsafe extern "C" fn hm_softmax_focal_f32(
    logits: *const f32,
    labels: *const i32,
    rows: usize,
    classes: usize,
    alpha: f32,
    gamma: f32,
    reduction: i32,
    avg_factor: *const f32,
    loss: *mut f32,
    grad: *mut f32,
    elements: *mut f32,
) -> HmStatus {
    // SAFETY: this function's contract is `imp::softmax_focal`'s.
    code(unsafe {
        imp::softmax_focal(
            logits, labels, rows, classes, alpha, gamma, reduction, avg_factor, loss, grad,
            elements,
        )
    })
}

/// [`hm_softmax_focal_f32`] on Q15.16 raw values.
///
/// Stack: at most 2048 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_softmax_ce_f32`].
#[no_mangle]
pub unsafe extern "C" fn hm_softmax_focal_q16(
    logits: *const i32,
    labels: *const i32,
    rows: usize,
    classes: usize,
    alpha: i32,
    gamma: i32,
    reduction: i32,
    avg_factor: *const i32,
    loss: *mut i32,
    grad: *mut i32,
    elements: *mut i32,
) -> HmStatus {
    // SAFETY: Q16 is an i32 in memory; the contract is `imp::softmax_focal`'s.
    code(unsafe {
        imp::softmax_focal::<Q16>(
            logits.cast(),
            labels,
            rows,
            classes,
            Q16::from_bits(alpha),
            Q16::from_bits(gamma),
            reduction,
            avg_factor.cast(),
            loss.cast(),
            grad.cast(),
            elements.cast(),
        )
    })
}

/// Smooth L1 of `pred - target` with threshold `beta >= 0` (`beta = 0`: L1).
///
/// Stack: at most 2560 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_bce_f32`].
#[no_mangle]
pub unsafe extern "C" fn hm_smooth_l1_f32(
    pred: *const f32,
    target: *const f32,
    n: usize,
    beta: f32,
    reduction: i32,
    avg_factor: *const f32,
    loss: *mut f32,
    grad: *mut f32,
    elements: *mut f32,
) -> HmStatus {
    // SAFETY: this function's contract is `imp::smooth_l1`'s.
    code(unsafe {
        imp::smooth_l1(
            pred, target, n, beta, reduction, avg_factor, loss, grad, elements,
        )
    })
}

/// [`hm_smooth_l1_f32`] on Q15.16 raw values.
///
/// Stack: at most 3328 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_bce_f32`].
#[no_mangle]
pub unsafe extern "C" fn hm_smooth_l1_q16(
    pred: *const i32,
    target: *const i32,
    n: usize,
    beta: i32,
    reduction: i32,
    avg_factor: *const i32,
    loss: *mut i32,
    grad: *mut i32,
    elements: *mut i32,
) -> HmStatus {
    // SAFETY: Q16 is an i32 in memory; the contract is `imp::smooth_l1`'s.
    code(unsafe {
        imp::smooth_l1::<Q16>(
            pred.cast(),
            target.cast(),
            n,
            Q16::from_bits(beta),
            reduction,
            avg_factor.cast(),
            loss.cast(),
            grad.cast(),
            elements.cast(),
        )
    })
}

/// Adaptive smooth L1 (Libra R-CNN's balanced form, GHM-R's `mu > 0`) of `pred - target`.
///
/// Stack: at most 2560 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_bce_f32`].
#[no_mangle]
pub unsafe extern "C" fn hm_asl1_f32(
    pred: *const f32,
    target: *const f32,
    n: usize,
    mu: f32,
    reduction: i32,
    avg_factor: *const f32,
    loss: *mut f32,
    grad: *mut f32,
    elements: *mut f32,
) -> HmStatus {
    // SAFETY: this function's contract is `imp::asl1`'s.
    code(unsafe {
        imp::asl1(
            pred, target, n, mu, reduction, avg_factor, loss, grad, elements,
        )
    })
}

/// [`hm_asl1_f32`] on Q15.16 raw values.
///
/// Stack: at most 3328 bytes (Cortex-M4, hard and soft float; measured by
/// `examples/c-firmware/check.sh`, which fails above it).
///
/// # Safety
/// As [`hm_bce_f32`].
#[no_mangle]
pub unsafe extern "C" fn hm_asl1_q16(
    pred: *const i32,
    target: *const i32,
    n: usize,
    mu: i32,
    reduction: i32,
    avg_factor: *const i32,
    loss: *mut i32,
    grad: *mut i32,
    elements: *mut i32,
) -> HmStatus {
    // SAFETY: Q16 is an i32 in memory; the contract is `imp::asl1`'s.
    code(unsafe {
        imp::asl1::<Q16>(
            pred.cast(),
            target.cast(),
            n,
            Q16::from_bits(mu),
            reduction,
            avg_factor.cast(),
            loss.cast(),
            grad.cast(),
            elements.cast(),
        )
    })
}

/// Unreachable from every entry point: the C firmware example links with `--gc-sections`
/// against a `hardmine_panic_path_is_reachable` that is defined nowhere, so a reachable panic
/// is a link error. Only the bare-metal build has it.
#[cfg(all(not(test), target_os = "none"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    extern "C" {
        fn hardmine_panic_path_is_reachable() -> !;
    }
    // SAFETY: never called when the program links (see above).
    unsafe { hardmine_panic_path_is_reachable() }
}
